//! Checks on the request that need no body: transport and declared size.
//!
//! The flow gathers [`RequestHead`] from the request headers and carries out
//! the [`Check`].

use crate::audit::Decision;
use crate::config::Policy;
use crate::local_reply::LocalReply;
use crate::policy::Mode;

/// What the filter knows about a request when its headers arrive.
#[derive(Debug, Clone, Default)]
pub struct RequestHead<'a> {
    /// Whether the downstream connection is TLS (Envoy's `connection.tls_version`).
    pub downstream_tls: bool,
    /// The `content-length` header, if the client sent one.
    pub content_length: Option<&'a str>,
}

/// What to do with a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// Nothing to refuse.
    Pass,
    /// Refuse with this local reply; the upstream sees nothing more.
    Refuse(Decision, LocalReply),
    /// Monitor mode: the policy would have refused; log it and let it pass.
    WouldRefuse(Decision, LocalReply),
}

impl Check {
    fn refuse(policy: &Policy, decision: Decision, reply: LocalReply) -> Check {
        match policy.mode {
            Mode::Enforce => Check::Refuse(decision, reply),
            Mode::Monitor => Check::WouldRefuse(decision, reply),
        }
    }
}

/// Plaintext is refused before anything else is read (a token included).
pub fn check_transport(policy: &Policy, head: &RequestHead<'_>) -> Check {
    if policy.require_tls && !head.downstream_tls {
        return Check::refuse(policy, Decision::TlsRequired, tls_required());
    }
    Check::Pass
}

/// A declared `content-length` over the limit is refused before the body is read.
pub fn check_declared_size(policy: &Policy, head: &RequestHead<'_>) -> Check {
    let declared = head
        .content_length
        .and_then(|v| v.trim().parse::<u64>().ok());
    if let Some(len) = declared {
        if len > policy.limits.max_body_bytes {
            return Check::refuse(policy, Decision::Oversize, too_large(policy));
        }
    }
    Check::Pass
}

/// Decides on a streamed request body once `seen` bytes of it have arrived:
/// a body without `content-length` is counted as it flows.
pub fn check_body_progress(policy: &Policy, seen: u64) -> Check {
    if seen > policy.limits.max_body_bytes {
        return Check::refuse(policy, Decision::Oversize, too_large(policy));
    }
    Check::Pass
}

fn tls_required() -> LocalReply {
    LocalReply::new(
        426,
        "tls_required",
        "this gateway accepts requests over TLS only; use https://",
    )
    .with_header("upgrade", "TLS/1.2, HTTP/1.1")
    .with_header("connection", "Upgrade")
}

fn too_large(policy: &Policy) -> LocalReply {
    LocalReply::new(
        413,
        "body_too_large",
        format!(
            "the request body exceeds limits.max_body_bytes ({} bytes)",
            policy.limits.max_body_bytes
        ),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn policy(json: &str) -> Policy {
        Policy::from_json(json.as_bytes()).unwrap()
    }

    /// Both header checks, in the flow's order.
    fn check_head(policy: &Policy, head: &RequestHead<'_>) -> Check {
        match check_transport(policy, head) {
            Check::Pass => check_declared_size(policy, head),
            verdict => verdict,
        }
    }

    fn tls() -> RequestHead<'static> {
        RequestHead {
            downstream_tls: true,
            content_length: None,
        }
    }

    #[test]
    fn tls_request_passes() {
        assert_eq!(check_head(&policy("{}"), &tls()), Check::Pass);
    }

    #[test]
    fn plaintext_is_refused_with_426() {
        let v = check_head(&policy("{}"), &RequestHead::default());
        let Check::Refuse(Decision::TlsRequired, r) = v else {
            panic!("{v:?}")
        };
        assert_eq!(r.status, 426);
        assert_eq!(r.error, "tls_required");
        assert!(r.headers.iter().any(|(k, _)| *k == "upgrade"));
    }

    #[test]
    fn plaintext_passes_when_tls_not_required() {
        let p = policy(r#"{"require_tls":false}"#);
        assert_eq!(check_head(&p, &RequestHead::default()), Check::Pass);
    }

    #[test]
    fn monitor_mode_only_reports() {
        let p = policy(r#"{"mode":"monitor"}"#);
        let v = check_head(&p, &RequestHead::default());
        assert!(
            matches!(v, Check::WouldRefuse(Decision::TlsRequired, ref r) if r.status == 426),
            "{v:?}"
        );
    }

    #[test]
    fn declared_oversize_body_is_refused_before_it_is_read() {
        let p = policy(r#"{"limits":{"max_body_bytes":10}}"#);
        let head = RequestHead {
            content_length: Some("11"),
            ..tls()
        };
        let v = check_head(&p, &head);
        assert!(
            matches!(v, Check::Refuse(Decision::Oversize, ref r) if r.status == 413),
            "{v:?}"
        );
        let head = RequestHead {
            content_length: Some("10"),
            ..tls()
        };
        assert_eq!(check_head(&p, &head), Check::Pass);
    }

    #[test]
    fn streamed_body_is_counted() {
        let p = policy(r#"{"limits":{"max_body_bytes":10}}"#);
        assert_eq!(check_body_progress(&p, 10), Check::Pass);
        assert!(
            matches!(check_body_progress(&p, 11), Check::Refuse(Decision::Oversize, ref r) if r.status == 413)
        );
    }
}
