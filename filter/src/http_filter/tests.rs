//! The stream, callback by callback, against a mock Envoy: what reaches
//! Envoy, and that every failed host call ends in a refusal or a reset.

use std::rc::Rc;

use super::*;
use crate::config::Policy;
use crate::envoy::mock::MockEnvoy;

const KEY: &str = "filter-key-0123456789";

fn worker(json: &str) -> Rc<Worker> {
    Rc::new(Worker::new(Policy::from_json(json.as_bytes()).unwrap()))
}

fn get(path: &str) -> MockEnvoy {
    MockEnvoy::with_request(&[
        (":method", "GET"),
        (":authority", "api.internal"),
        (":path", path),
        ("x-request-id", "req-1"),
    ])
}

fn post(path: &str, content_type: &str, body: &[u8]) -> MockEnvoy {
    let envoy = MockEnvoy::with_request(&[
        (":method", "POST"),
        (":authority", "api.internal"),
        (":path", path),
        ("x-request-id", "req-1"),
        ("content-type", content_type),
    ]);
    envoy.0.borrow_mut().request_body = body.to_vec();
    envoy
}

/// The audit record `on_log` published.
fn audit(envoy: &MockEnvoy) -> serde_json::Value {
    let s = envoy.0.borrow();
    let line = s.properties.get("transit_guard.audit").expect("a record");
    serde_json::from_slice(line).unwrap()
}

#[test]
fn an_allowed_request_goes_on_and_is_audited_and_counted() {
    let envoy = get("/");
    let mut f = HttpFilter::new(1, Some(worker("{}")));
    assert_eq!(f.on_request_headers(&envoy, true), Action::Continue);
    assert_eq!(f.on_response_headers(&envoy, true), Action::Continue);
    f.on_log(&envoy);
    assert_eq!(audit(&envoy)["request_id"], "req-1");
    assert_eq!(
        envoy
            .0
            .borrow()
            .counters
            .get("transit_guard.requests.client_abort"),
        Some(&1),
        "no response code: the mock never answered"
    );
}

#[test]
fn unreadable_request_headers_refuse_the_request() {
    let envoy = get("/");
    envoy.fail("request_headers");
    let mut f = HttpFilter::new(1, Some(worker("{}")));
    assert_eq!(f.on_request_headers(&envoy, true), Action::Pause);
    let replies = envoy.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!(replies[0].1, 500);
    assert!(
        replies[0].2.contains("request_headers_unreadable"),
        "{replies:?}"
    );
    f.on_log(&envoy);
    let rec = audit(&envoy);
    assert_eq!(rec["decision"], "error");
    assert_eq!(rec["reason"], "request_headers_unreadable");
}

#[test]
fn a_failed_content_length_removal_refuses_the_response() {
    let w = worker(
        r#"{"masking":{"profiles":{"pii":{"detectors":["email"]}}},"default_action":"allow",
            "rules":[{"name":"m","match":{},"action":"mask","mask":{"response":["pii"]}}]}"#,
    );
    for (content_type, what) in [
        ("application/json", "held"),
        ("text/event-stream", "streamed"),
    ] {
        let envoy = get("/");
        envoy.0.borrow_mut().response_headers = vec![
            ("content-type".into(), content_type.into()),
            ("content-length".into(), "40".into()),
        ];
        envoy.fail("remove_response_header");
        let mut f = HttpFilter::new(1, Some(w.clone()));
        assert_eq!(f.on_request_headers(&envoy, true), Action::Continue);
        assert_eq!(
            f.on_response_headers(&envoy, false),
            Action::Pause,
            "{what}"
        );
        let replies = envoy.replies();
        assert_eq!(replies.len(), 1, "{what}");
        assert_eq!(replies[0].1, 500);
        assert!(replies[0].2.contains("response_header_edit_failed"));
        assert_eq!(
            f.flow().response_state(),
            crate::flow::ResponseState::Refused
        );
    }
}

#[test]
fn a_failed_header_edit_refuses_the_request() {
    let w = worker(
        r#"{"masking":{"profiles":{"pii":{}}},"default_action":"allow",
            "rules":[{"name":"m","match":{},"action":"mask","mask":{"response":["pii"]}}]}"#,
    );
    let envoy = get("/");
    envoy.fail("set_request_header");
    let mut f = HttpFilter::new(1, Some(w));
    assert_eq!(f.on_request_headers(&envoy, true), Action::Pause);
    assert!(envoy.replies()[0].2.contains("request_header_edit_failed"));
}

#[test]
fn a_masked_request_body_is_rewritten_or_refused_if_it_cannot_be() {
    let w = worker(
        r#"{"masking":{"profiles":{"pii":{"detectors":["email"]}}},"default_action":"allow",
            "rules":[{"name":"m","match":{},"action":"mask","mask":{"request":["pii"]}}]}"#,
    );
    let envoy = post("/", "text/plain", b"to bob@example.com");
    let mut f = HttpFilter::new(1, Some(w.clone()));
    assert_eq!(f.on_request_headers(&envoy, false), Action::Pause);
    assert_eq!(f.on_request_body(&envoy, 18, true), Action::Continue);
    let s = envoy.0.borrow();
    let body = String::from_utf8(s.request_body.clone()).unwrap();
    assert!(!body.contains("bob@example.com"), "{body}");
    let length = crate::headers::first(&s.request_headers, "content-length").unwrap();
    assert_eq!(length, body.len().to_string());
    drop(s);

    for failing in ["read_body", "replace_body"] {
        let envoy = post("/", "text/plain", b"to bob@example.com");
        envoy.fail(failing);
        let mut f = HttpFilter::new(1, Some(w.clone()));
        assert_eq!(f.on_request_headers(&envoy, false), Action::Pause);
        assert_eq!(
            f.on_request_body(&envoy, 18, true),
            Action::Pause,
            "{failing}"
        );
        assert_eq!(envoy.replies()[0].1, 500, "{failing}");
    }
}

#[test]
fn a_stream_that_cannot_be_rewritten_is_reset() {
    let w = worker(
        r#"{"masking":{"profiles":{"pii":{"detectors":["email"]}}},"default_action":"allow",
            "rules":[{"name":"m","match":{},"action":"mask","mask":{"response":["pii"]}}]}"#,
    );
    let envoy = get("/");
    envoy.0.borrow_mut().response_headers =
        vec![("content-type".into(), "text/event-stream".into())];
    let mut f = HttpFilter::new(1, Some(w));
    assert_eq!(f.on_request_headers(&envoy, true), Action::Continue);
    assert_eq!(f.on_response_headers(&envoy, false), Action::Continue);
    envoy.0.borrow_mut().response_body = b"data: bob@example.com\n\n".to_vec();
    envoy.fail("replace_body");
    assert_eq!(f.on_response_body(&envoy, 23, false), Action::Pause);
    assert!(envoy.0.borrow().reset, "unmasked bytes never pass");
    assert_eq!(
        f.flow().response_state(),
        crate::flow::ResponseState::Aborted
    );
}

fn approval_policy() -> String {
    format!(
        r#"{{"default_action":"allow",
            "rules":[{{"name":"export","match":{{"path":{{"prefix":"/export"}}}},"action":"require_approval"}}],
            "approval":{{"cluster":"approver","api_key":"{KEY}"}}}}"#
    )
}

#[test]
fn a_held_request_is_resumed_once_approved() {
    let w = worker(&approval_policy());
    let envoy = get("/export");
    let mut f = HttpFilter::new(7, Some(w.clone()));
    assert_eq!(f.on_request_headers(&envoy, true), Action::Pause);
    let call = envoy.0.borrow().callouts[0].clone();
    assert_eq!(call.cluster, "approver");
    assert!(call
        .headers
        .contains(&(":path".into(), "/v1/approvals".into())));
    envoy.0.borrow_mut().callout_response = crate::envoy::CalloutResponse {
        status: Some(200),
        body: br#"{"id":"apr_1","status":"approved","reviewer":"alice"}"#.to_vec(),
    };
    w.on_callout_response(&envoy, 1, 60);
    assert_eq!(envoy.0.borrow().resumed, [7]);
    f.on_log(&envoy);
    assert_eq!(audit(&envoy)["approval"]["reviewer"], "alice");
    assert_eq!(
        envoy
            .0
            .borrow()
            .counters
            .get("transit_guard.approvals.approval_approved"),
        Some(&1)
    );
}

fn answer(envoy: &MockEnvoy, status: u16, body: &str) {
    envoy.0.borrow_mut().callout_response = crate::envoy::CalloutResponse {
        status: Some(status),
        body: body.as_bytes().to_vec(),
    };
}

fn called_paths(envoy: &MockEnvoy) -> Vec<String> {
    envoy
        .0
        .borrow()
        .callouts
        .iter()
        .filter_map(|c| {
            c.headers
                .iter()
                .find(|(k, _)| k == ":path")
                .map(|(_, v)| v.clone())
        })
        .collect()
}

const APPROVED_UNUSED: &str =
    r#"{"id":"apr_1","status":"approved","reviewer":"alice","confirm":true}"#;

#[test]
fn a_held_request_uses_its_approval_then_passes() {
    let w = worker(&approval_policy());
    let envoy = get("/export");
    let mut f = HttpFilter::new(7, Some(w.clone()));
    assert_eq!(f.on_request_headers(&envoy, true), Action::Pause);
    answer(&envoy, 200, r#"{"id":"apr_1","status":"pending"}"#);
    w.on_callout_response(&envoy, 1, 40);
    answer(&envoy, 200, APPROVED_UNUSED);
    w.on_callout_response(&envoy, 2, 70);
    assert!(
        envoy.0.borrow().resumed.is_empty(),
        "not before the approval is used"
    );
    assert_eq!(
        called_paths(&envoy),
        [
            "/v1/approvals",
            "/v1/approvals/apr_1?wait=25&confirm=true",
            "/v1/approvals/apr_1/use"
        ]
    );
    answer(
        &envoy,
        200,
        r#"{"id":"apr_1","status":"approved","reviewer":"alice"}"#,
    );
    w.on_callout_response(&envoy, 3, 60);
    assert_eq!(envoy.0.borrow().resumed, [7]);
    f.on_log(&envoy);
    assert_eq!(
        audit(&envoy)["approval"],
        serde_json::json!({"id": "apr_1", "reviewer": "alice"})
    );
}

#[test]
fn an_approval_reaching_a_request_that_left_is_never_used() {
    let w = worker(&approval_policy());
    let envoy = get("/export");
    let mut f = HttpFilter::new(7, Some(w.clone()));
    assert_eq!(f.on_request_headers(&envoy, true), Action::Pause);
    answer(&envoy, 200, r#"{"id":"apr_1","status":"pending"}"#);
    w.on_callout_response(&envoy, 1, 40);
    // The agent leaves while the long-poll (token 2) is out.
    f.on_log(&envoy);
    // The reviewer approves; the poll's answer arrives (a poll made on the
    // tick is not cancelled with the stream).
    answer(&envoy, 200, APPROVED_UNUSED);
    w.on_callout_response(&envoy, 2, 70);
    assert_eq!(
        called_paths(&envoy).len(),
        2,
        "no use: the approval stays for the retry"
    );
    assert!(envoy.0.borrow().resumed.is_empty());
    assert!(envoy.replies().is_empty());
    // The same when the agent leaves while the use is in flight: its
    // answer resumes nothing (the approval was used by nobody: lost, the
    // safe direction).
    let envoy = get("/export");
    let mut f = HttpFilter::new(8, Some(w.clone()));
    assert_eq!(f.on_request_headers(&envoy, true), Action::Pause);
    answer(&envoy, 200, APPROVED_UNUSED);
    w.on_callout_response(&envoy, 1, 70);
    assert_eq!(called_paths(&envoy)[1], "/v1/approvals/apr_1/use");
    f.on_log(&envoy);
    answer(
        &envoy,
        200,
        r#"{"id":"apr_1","status":"approved","reviewer":"alice"}"#,
    );
    w.on_callout_response(&envoy, 2, 60);
    assert!(envoy.0.borrow().resumed.is_empty());
    assert!(envoy.replies().is_empty());
}

#[test]
fn a_refused_callout_answers_the_held_request_at_once() {
    let w = worker(&approval_policy());
    let envoy = get("/export");
    envoy.fail("dispatch");
    let mut f = HttpFilter::new(7, Some(w));
    assert_eq!(f.on_request_headers(&envoy, true), Action::Pause);
    let replies = envoy.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!((replies[0].0, replies[0].1), (Some(7), 503));
    assert!(replies[0].2.contains("approval_failed"));
}

#[test]
fn a_missing_approval_section_never_leaves_a_request_paused_unanswered() {
    let mut policy = Policy::from_json(approval_policy().as_bytes()).unwrap();
    policy.approval = None;
    let w = Rc::new(Worker::new(policy));
    let envoy = get("/export");
    let mut f = HttpFilter::new(7, Some(w));
    assert_eq!(f.on_request_headers(&envoy, true), Action::Pause);
    let replies = envoy.replies();
    assert_eq!(replies.len(), 1, "paused requests are always answered");
    assert_eq!(replies[0].1, 503);
    assert!(envoy.0.borrow().callouts.is_empty());
}

#[test]
fn the_tick_ends_a_callout_envoy_never_answers() {
    let w = worker(&approval_policy().replace(
        r#""api_key""#,
        r#""timeout_ms":1000,"max_wait_secs":5,"api_key""#,
    ));
    let envoy = get("/export");
    let mut f = HttpFilter::new(7, Some(w.clone()));
    assert_eq!(f.on_request_headers(&envoy, true), Action::Pause);
    w.on_tick(&envoy);
    assert!(envoy.replies().is_empty(), "not overdue yet");
    envoy.advance(std::time::Duration::from_millis(1600));
    w.on_tick(&envoy);
    let replies = envoy.replies();
    assert_eq!(replies.len(), 1);
    assert_eq!((replies[0].0, replies[0].1), (Some(7), 503));
    assert!(replies[0].2.contains("approver_timeout"), "{replies:?}");
}

#[test]
fn without_a_policy_every_request_is_refused() {
    let envoy = get("/");
    let mut f = HttpFilter::new(1, None);
    assert_eq!(f.on_request_headers(&envoy, true), Action::Pause);
    assert_eq!(envoy.replies()[0].1, 500);
    assert!(envoy.replies()[0].2.contains("policy_unavailable"));
}

mod facts;
mod host_calls;
mod quotas;

#[test]
fn a_tools_list_answer_loses_the_tools_the_caller_may_not_call() {
    let policy = r#"{"default_action":"allow","mcp":{},
        "rules":[{"name":"no-deletes","match":{"mcp":{"tools":["delete_*"]}},"action":"deny"}]}"#;
    let list = br#"{"jsonrpc":"2.0","id":1,"method":"tools/list"}"#;
    let envoy = post("/mcp", "application/json", list);
    let mut f = HttpFilter::new(1, Some(worker(policy)));
    assert_eq!(f.on_request_headers(&envoy, false), Action::Pause);
    assert_eq!(
        f.on_request_body(&envoy, list.len(), true),
        Action::Continue
    );
    assert_eq!(envoy.header("accept-encoding").as_deref(), Some("identity"));
    let answer =
        br#"{"jsonrpc":"2.0","id":1,"result":{"tools":[{"name":"get"},{"name":"delete_all"}]}}"#;
    {
        let mut s = envoy.0.borrow_mut();
        s.response_headers = vec![("content-type".into(), "application/json".into())];
        s.response_body = answer.to_vec();
    }
    assert_eq!(f.on_response_headers(&envoy, false), Action::Pause);
    assert_eq!(
        f.on_response_body(&envoy, answer.len(), true),
        Action::Continue
    );
    let body: serde_json::Value = serde_json::from_slice(&envoy.0.borrow().response_body).unwrap();
    assert_eq!(
        body["result"]["tools"],
        serde_json::json!([{"name": "get"}])
    );
    f.on_log(&envoy);
    assert_eq!(
        audit(&envoy)["mcp"]["tools_hidden"],
        serde_json::json!(["delete_all"])
    );
}
