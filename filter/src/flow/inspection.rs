//! The flow's three inspection steps, as [`Check`]s (monitor mode logs
//! them as `would`): method overrides in the head, then a body's
//! readability and overrides, on the request (400) and response (502) paths.

use super::checks::Check;
use crate::audit::Decision;
use crate::body::{check, method_override, OnMethodOverride, OnUnreadable, Unreadable};
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

/// A held request body, before rules read it.
pub fn check_request(policy: &Policy, headers: &HeaderList, body: &[u8]) -> Check {
    let content_type = headers::first(headers, "content-type");
    if let Err(u) = check(content_type, body, policy.inspection.max_json_depth) {
        return unreadable(policy, u, 400, "request");
    }
    if policy.inspection.method_overrides == OnMethodOverride::Refuse {
        if let Some(found) = method_override::in_body(content_type, body) {
            return verdict(policy, Decision::Denied, method_override_reply(found));
        }
    }
    Check::Pass
}

/// A held response body, before masks read it.
pub fn check_response(policy: &Policy, content_type: Option<&str>, body: &[u8]) -> Check {
    match check(content_type, body, policy.inspection.max_json_depth) {
        Ok(()) => Check::Pass,
        Err(u) => unreadable(policy, u, 502, "response"),
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
