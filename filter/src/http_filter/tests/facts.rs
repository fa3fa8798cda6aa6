//! The audit record's end facts (status, sizes, latency, how the stream
//! ended): from what went through the filter on a plain exchange, from
//! Envoy's attributes wherever the filter's view could differ.

use std::time::Duration;

use super::{audit, get, post, worker, HttpFilter};
use crate::envoy::mock::MockEnvoy;

fn headers(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn set_u64(envoy: &MockEnvoy, name: &str, v: u64) {
    let mut s = envoy.0.borrow_mut();
    s.properties.insert(name.into(), v.to_le_bytes().to_vec());
}

/// Attributes read after the request headers (which read the TLS version).
fn reads_at_log(envoy: &MockEnvoy) -> Vec<String> {
    let s = envoy.0.borrow();
    s.property_reads
        .iter()
        .filter(|r| *r != "connection.tls_version")
        .cloned()
        .collect()
}

#[test]
fn a_plain_exchange_is_recorded_from_the_stream_without_reading_attributes() {
    let envoy = get("/customers");
    let mut f = HttpFilter::new(1, Some(worker("{}")));
    f.on_request_headers(&envoy, true);
    envoy.0.borrow_mut().response_headers =
        headers(&[(":status", "200"), ("content-length", "42")]);
    f.on_response_headers(&envoy, false);
    f.on_response_body(&envoy, 30, false);
    f.on_response_body(&envoy, 12, true);
    envoy.advance(Duration::from_micros(2500));
    f.on_log(&envoy);
    let rec = audit(&envoy);
    assert_eq!(rec["decision"], "allowed");
    assert_eq!(rec["status"], 200);
    assert_eq!(rec["bytes_in"], 0);
    assert_eq!(rec["bytes_out"], 42);
    assert_eq!(rec["latency_ms"], 2.5);
    assert!(
        reads_at_log(&envoy).is_empty(),
        "{:?}",
        reads_at_log(&envoy)
    );
}

#[test]
fn a_request_body_is_counted_by_its_content_length() {
    let envoy = post("/upload", "text/plain", b"hello");
    envoy
        .0
        .borrow_mut()
        .request_headers
        .push(("content-length".into(), "5".into()));
    let mut f = HttpFilter::new(1, Some(worker("{}")));
    f.on_request_headers(&envoy, false);
    f.on_request_body(&envoy, 5, true);
    envoy.0.borrow_mut().response_headers = headers(&[(":status", "204")]);
    f.on_response_headers(&envoy, true);
    f.on_log(&envoy);
    let rec = audit(&envoy);
    assert_eq!(
        (rec["bytes_in"].as_u64(), rec["bytes_out"].as_u64()),
        (Some(5), Some(0))
    );
    assert!(
        reads_at_log(&envoy).is_empty(),
        "{:?}",
        reads_at_log(&envoy)
    );
}

#[test]
fn a_chunked_request_body_is_sized_by_envoy() {
    let envoy = post("/upload", "text/plain", b"hello");
    set_u64(&envoy, "request.size", 5);
    let mut f = HttpFilter::new(1, Some(worker("{}")));
    f.on_request_headers(&envoy, false);
    f.on_request_body(&envoy, 5, true);
    envoy.0.borrow_mut().response_headers = headers(&[(":status", "204")]);
    f.on_response_headers(&envoy, true);
    f.on_log(&envoy);
    assert_eq!(audit(&envoy)["bytes_in"], 5);
    assert_eq!(reads_at_log(&envoy), ["request.size"]);
}

#[test]
fn a_5xx_may_be_envoys_own_answer_to_an_upstream_failure_so_its_flags_are_read() {
    let envoy = get("/customers");
    set_u64(&envoy, "response.flags", 1 << 5); // UF: connection failure
    envoy.0.borrow_mut().properties.insert(
        "response.code_details".into(),
        b"upstream_reset_before_response_started{connection_failure}".to_vec(),
    );
    let mut f = HttpFilter::new(1, Some(worker("{}")));
    f.on_request_headers(&envoy, true);
    envoy.0.borrow_mut().response_headers =
        headers(&[(":status", "503"), ("content-length", "91")]);
    f.on_response_headers(&envoy, false);
    f.on_response_body(&envoy, 91, true);
    f.on_log(&envoy);
    let rec = audit(&envoy);
    assert_eq!(rec["decision"], "upstream_error");
    assert_eq!(rec["status"], 503);
    assert!(rec["reason"]
        .as_str()
        .unwrap()
        .contains("connection_failure"));
}

#[test]
fn a_response_that_never_ended_is_a_client_abort_sized_by_envoy() {
    let envoy = get("/customers");
    set_u64(&envoy, "response.flags", 1 << 14); // DC: downstream terminated
    set_u64(&envoy, "response.size", 30);
    let mut f = HttpFilter::new(1, Some(worker("{}")));
    f.on_request_headers(&envoy, true);
    envoy.0.borrow_mut().response_headers =
        headers(&[(":status", "200"), ("content-length", "42")]);
    f.on_response_headers(&envoy, false);
    f.on_response_body(&envoy, 30, false);
    f.on_log(&envoy);
    let rec = audit(&envoy);
    assert_eq!(rec["decision"], "client_abort");
    assert_eq!(rec["status"], 200);
    assert_eq!(
        rec["bytes_out"], 30,
        "what was sent, not what was announced"
    );
}

#[test]
fn a_refusal_the_filter_answered_takes_envoys_status() {
    let envoy = get("/admin");
    set_u64(&envoy, "response.code", 403);
    let policy = r#"{"default_action":"allow",
        "rules":[{"name":"no-admin","match":{"path":{"prefix":"/admin"}},"action":"deny"}]}"#;
    let mut f = HttpFilter::new(1, Some(worker(policy)));
    f.on_request_headers(&envoy, true);
    assert_eq!(envoy.replies()[0].1, 403);
    f.on_log(&envoy);
    let rec = audit(&envoy);
    assert_eq!(rec["decision"], "denied");
    assert_eq!(rec["status"], 403);
}

#[test]
fn a_held_body_is_sized_by_what_the_filter_handed_on() {
    let policy = r#"{"masking":{"profiles":{"pii":{"detectors":["email"]}}},"default_action":"allow",
        "rules":[{"name":"pii","match":{"path":{"prefix":"/customers"}},
                  "action":"mask","mask":{"response":["pii"]}}]}"#;
    // Masked: shorter or longer than the upstream's body and its
    // (dropped) content-length.
    for (body, masked) in [
        (&br#"{"email":"ada@example.com"}"#[..], true),
        (br#"{"note":"nothing to mask"}"#, false),
    ] {
        let envoy = get("/customers");
        set_u64(&envoy, "response.size", 999);
        let mut f = HttpFilter::new(1, Some(worker(policy)));
        f.on_request_headers(&envoy, true);
        {
            let mut s = envoy.0.borrow_mut();
            s.response_headers = headers(&[
                (":status", "200"),
                ("content-type", "application/json"),
                ("content-length", &body.len().to_string()),
            ]);
            s.response_body = body.to_vec();
        }
        f.on_response_headers(&envoy, false);
        f.on_response_body(&envoy, body.len(), true);
        f.on_log(&envoy);
        let sent = envoy.0.borrow().response_body.len();
        assert_eq!(sent != body.len(), masked, "{body:?}");
        let rec = audit(&envoy);
        assert_eq!(rec["bytes_out"], sent, "{body:?}");
        assert!(
            reads_at_log(&envoy).is_empty(),
            "{:?}",
            reads_at_log(&envoy)
        );
    }
}

#[test]
fn a_held_body_refused_is_sized_by_envoy() {
    let policy = r#"{"limits":{"max_body_bytes":8},
        "masking":{"profiles":{"pii":{"detectors":["email"]}}},"default_action":"allow",
        "rules":[{"name":"pii","match":{"path":{"prefix":"/customers"}},
                  "action":"mask","mask":{"response":["pii"]}}]}"#;
    let body = br#"{"email":"ada@example.com"}"#;
    let envoy = get("/customers");
    set_u64(&envoy, "response.size", 77);
    let mut f = HttpFilter::new(1, Some(worker(policy)));
    f.on_request_headers(&envoy, true);
    {
        let mut s = envoy.0.borrow_mut();
        s.response_headers = headers(&[(":status", "200"), ("content-type", "application/json")]);
        s.response_body = body.to_vec();
    }
    f.on_response_headers(&envoy, false);
    f.on_response_body(&envoy, body.len(), true);
    f.on_log(&envoy);
    assert_eq!(
        audit(&envoy)["bytes_out"],
        77,
        "Envoy's count of its own reply"
    );
}
