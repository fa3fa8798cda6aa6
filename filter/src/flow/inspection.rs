//! The flow's three inspection steps, as [`Check`]s (monitor mode logs
//! them as `would`): method overrides in the head, then a body's
//! readability and overrides, on the request (400) and response (502) paths.

use super::checks::Check;
use crate::audit::Decision;
use crate::body::{method_override, read, OnMethodOverride, OnUnreadable, Reading, Unreadable};
use crate::config::Policy;
use crate::headers::{self, HeaderList};
use crate::local_reply::LocalReply;
use crate::policy::Mode;

fn verdict(policy: &Policy, decision: Decision, reply: LocalReply) -> Check {
    match policy.mode {
        Mode::Enforce => Check::Refuse(decision, reply),
        Mode::Monitor => Check::WouldRefuse(decision, reply),
    }
}

fn method_override_reply(found: String) -> LocalReply {
    LocalReply::new(
        400,
        "method_override",
        format!(
            "the request asks for another HTTP method ({found}); send the method in the request line"
        ),
    )
}

/// Before any rule: a method override in the headers or the query.
pub fn check_head(policy: &Policy, headers: &HeaderList, path: &str) -> Check {
    if policy.inspection.method_overrides == OnMethodOverride::Allow {
        return Check::Pass;
    }
    match method_override::in_head(headers, path) {
        Some(found) => verdict(policy, Decision::Denied, method_override_reply(found)),
        None => Check::Pass,
    }
}

/// A held request body, before rules read it: the check, and the reading
/// rules and masks then use (`None` when the body could not be read: with
/// `scan_as_text` they read it leniently themselves).
pub fn check_request<'a>(
    policy: &Policy,
    headers: &HeaderList,
    body: &'a [u8],
) -> (Check, Option<Reading<'a>>) {
    let content_type = headers::first(headers, "content-type");
    let reading = match read(content_type, body, policy.inspection.max_json_depth) {
        Ok(r) => r,
        Err(u) => return (unreadable(policy, u, 400, "request"), None),
    };
    if policy.inspection.method_overrides == OnMethodOverride::Refuse {
        if let Some(found) = method_override::in_read(content_type, body, Some(&reading)) {
            let refusal = verdict(policy, Decision::Denied, method_override_reply(found));
            return (refusal, Some(reading));
        }
    }
    (Check::Pass, Some(reading))
}

/// A held response body, before masks read it (as [`check_request`]).
pub fn check_response<'a>(
    policy: &Policy,
    content_type: Option<&str>,
    body: &'a [u8],
) -> (Check, Option<Reading<'a>>) {
    match read(content_type, body, policy.inspection.max_json_depth) {
        Ok(r) => (Check::Pass, Some(r)),
        Err(u) => (unreadable(policy, u, 502, "response"), None),
    }
}

/// `scan_as_text` goes on (recorded as `would`); `refuse` refuses.
fn unreadable(policy: &Policy, u: Unreadable, status: u16, what: &str) -> Check {
    let reply = LocalReply::new(
        status,
        u.code,
        format!("{}: {what} not passed on", u.reason),
    );
    match policy.inspection.unreadable {
        OnUnreadable::Refuse => verdict(policy, Decision::Error, reply),
        OnUnreadable::ScanAsText => Check::WouldRefuse(Decision::Error, reply),
    }
}
