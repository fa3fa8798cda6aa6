//! The flow's states and transitions, phase by phase (`request.rs`,
//! `response.rs`, `approval.rs`), with policies written as in production.

mod approval;
mod request;
mod response;

use super::*;
use crate::identity::authenticate::Authenticated;
use crate::identity::error::AuthError;

pub(super) fn policy(json: &str) -> Policy {
    Policy::from_json(json.as_bytes()).unwrap()
}

/// Request headers as Envoy hands them over.
pub(super) fn headers(method: &str, path: &str, extra: &[(&str, &str)]) -> Vec<(String, String)> {
    let mut h = vec![
        (":method".to_string(), method.to_string()),
        (":authority".to_string(), "api.internal".to_string()),
        (":path".to_string(), path.to_string()),
        ("x-request-id".to_string(), "req-1".to_string()),
    ];
    h.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    h
}

pub(super) fn no_identity() -> Option<Result<Authenticated, AuthError>> {
    None
}

/// A flow past its request headers (TLS, no identity).
pub(super) fn started(
    p: &Policy,
    h: &[(String, String)],
    end_of_stream: bool,
) -> (Flow, HeadersStep) {
    let mut f = Flow::default();
    let step = f.on_request_headers(p, h, true, no_identity, end_of_stream);
    (f, step)
}

#[test]
fn a_new_flow_waits_for_headers_on_both_sides() {
    let f = Flow::default();
    assert_eq!(f.request_state(), RequestState::Headers);
    assert_eq!(f.response_state(), ResponseState::Headers);
}

#[test]
fn a_failed_host_call_refuses_and_is_audited_with_its_reason() {
    for failure in [
        HostFailure::RequestHeaders,
        HostFailure::RequestHeaderEdit,
        HostFailure::ReadBody,
        HostFailure::ReplaceBody,
        HostFailure::ResponseHeaders,
        HostFailure::ResponseHeaderEdit,
    ] {
        let mut f = Flow::default();
        let reply = f.on_host_failure(failure);
        assert_eq!(reply.status, 500);
        assert_eq!(reply.error, failure.code());
        assert_eq!(f.exchange.refused, Some((Decision::Error, failure.code())));
        assert_eq!(f.request_state(), RequestState::Refused);
    }
}

#[test]
fn a_host_failure_after_the_response_headers_refuses_the_response() {
    let p = policy(
        r#"{"masking":{"profiles":{"pii":{"detectors":["email"]}}},"default_action":"allow",
            "rules":[{"name":"m","match":{},"action":"mask","mask":{"response":["pii"]}}]}"#,
    );
    let (mut f, _) = started(&p, &headers("GET", "/", &[]), true);
    assert_eq!(
        f.on_response_headers(&p, Some("application/json"), None, false),
        ResponseHeadersStep::Hold
    );
    let reply = f.on_host_failure(HostFailure::ResponseHeaderEdit);
    assert_eq!(reply.error, "response_header_edit_failed");
    assert_eq!(f.request_state(), RequestState::Forwarded);
    assert_eq!(f.response_state(), ResponseState::Refused);
}
