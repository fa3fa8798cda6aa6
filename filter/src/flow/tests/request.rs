//! Request states: Headers -> Streaming | Buffering | Forwarded | Refused.

use super::*;

const MASK_REQUESTS: &str = r#"{"masking":{"profiles":{"secrets":{"detectors":["openai_key"]}}},
    "default_action":"allow",
    "rules":[{"name":"secrets","match":{},"action":"mask","mask":{"request":["secrets"]}}]}"#;

const KEY: &str = "sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD";

#[test]
fn a_request_without_a_body_is_forwarded_at_its_headers() {
    let (f, step) = started(&policy("{}"), &headers("GET", "/", &[]), true);
    assert_eq!(step, HeadersStep::Continue);
    assert_eq!(f.request_state(), RequestState::Forwarded);
    assert_eq!(f.exchange.method, "GET");
    assert_eq!(f.exchange.path, "/");
    assert_eq!(f.exchange.request_id, "req-1");
}

#[test]
fn a_body_nobody_inspects_streams_and_is_counted_against_the_limit() {
    let p = policy(r#"{"limits":{"max_body_bytes":10}}"#);
    let (mut f, step) = started(&p, &headers("POST", "/", &[]), false);
    assert_eq!(step, HeadersStep::Continue);
    assert_eq!(f.request_state(), RequestState::Streaming { seen: 0 });
    assert_eq!(f.on_request_data(&p, 6, false), RequestDataStep::Continue);
    assert_eq!(f.request_state(), RequestState::Streaming { seen: 6 });
    let RequestDataStep::Refuse(reply) = f.on_request_data(&p, 5, true) else {
        panic!("11 bytes are over the limit")
    };
    assert_eq!(reply.status, 413);
    assert_eq!(f.request_state(), RequestState::Refused);
    assert_eq!(
        f.exchange.refused,
        Some((Decision::Oversize, "body_too_large"))
    );
    // A refused request passes nothing more.
    assert_eq!(f.on_request_data(&p, 1, true), RequestDataStep::Wait);
    assert_eq!(f.on_request_trailers(), RequestDataStep::Wait);
}

#[test]
fn a_declared_oversize_body_is_refused_at_the_headers() {
    let p = policy(r#"{"limits":{"max_body_bytes":10}}"#);
    let (f, step) = started(
        &p,
        &headers("POST", "/", &[("content-length", "11")]),
        false,
    );
    let HeadersStep::Refuse(reply) = step else {
        panic!("{step:?}")
    };
    assert_eq!(reply.status, 413);
    assert_eq!(f.request_state(), RequestState::Refused);
}

#[test]
fn plaintext_is_refused_before_the_token_is_read() {
    let p = policy("{}");
    let mut f = Flow::default();
    let mut asked = false;
    let step = f.on_request_headers(
        &p,
        &headers("GET", "/", &[]),
        false,
        || {
            asked = true;
            None
        },
        true,
    );
    let HeadersStep::Refuse(reply) = step else {
        panic!("{step:?}")
    };
    assert_eq!(reply.status, 426);
    assert!(!asked, "no token is read over plaintext");
    assert_eq!(
        f.exchange.refused,
        Some((Decision::TlsRequired, "tls_required"))
    );
}

#[test]
fn monitor_mode_records_what_it_would_refuse_and_goes_on() {
    let p = policy(
        r#"{"mode":"monitor","default_action":"allow",
            "rules":[{"name":"no-deletes","match":{"methods":["DELETE"]},"action":"deny"}]}"#,
    );
    let (f, step) = started(&p, &headers("DELETE", "/x", &[]), false);
    assert_eq!(step, HeadersStep::Continue);
    assert!(
        f.exchange.would.iter().any(|w| w == "no-deletes: deny"),
        "{:?}",
        f.exchange.would
    );
    assert_eq!(f.exchange.refused, None);
    // Plaintext in monitor mode: recorded, not refused.
    let mut f = Flow::default();
    let step = f.on_request_headers(&p, &headers("GET", "/", &[]), false, no_identity, true);
    assert_eq!(step, HeadersStep::Continue);
    assert!(f.exchange.would.contains(&"tls_required".to_string()));
}

#[test]
fn a_header_rule_denies_at_the_headers() {
    let p = policy(
        r#"{"default_action":"allow",
            "rules":[{"name":"no-deletes","match":{"methods":["DELETE"]},"action":"deny"}]}"#,
    );
    let (f, step) = started(&p, &headers("DELETE", "/x", &[]), false);
    let HeadersStep::Refuse(reply) = step else {
        panic!("{step:?}")
    };
    assert_eq!(
        (reply.status, reply.rule.as_deref()),
        (403, Some("no-deletes"))
    );
    assert_eq!(f.exchange.deny_rule.as_deref(), Some("no-deletes"));
    assert_eq!(f.exchange.rules, ["no-deletes"]);
    assert_eq!(f.request_state(), RequestState::Refused);
}

#[test]
fn a_body_rule_holds_the_request_until_the_body_is_complete() {
    let p = policy(
        r#"{"default_action":"allow",
            "rules":[{"name":"no-drop","match":{"body":{"regex":"(?i)drop\\s+table"}},"action":"deny"}]}"#,
    );
    let h = headers("POST", "/sql", &[("content-type", "text/plain")]);
    let (mut f, step) = started(&p, &h, false);
    assert_eq!(step, HeadersStep::Hold);
    assert_eq!(f.request_state(), RequestState::Buffering);
    assert_eq!(f.on_request_data(&p, 4, false), RequestDataStep::Wait);
    assert_eq!(f.on_request_data(&p, 15, true), RequestDataStep::Complete);
    let RequestBodyStep::Refuse(reply) = f.on_request_body(&p, &h, b"DROP TABLE users") else {
        panic!("the body matches the deny rule")
    };
    assert_eq!(reply.rule.as_deref(), Some("no-drop"));
    assert_eq!(f.request_state(), RequestState::Refused);

    let (mut f, _) = started(&p, &h, false);
    assert_eq!(
        f.on_request_body(&p, &h, b"SELECT 1"),
        RequestBodyStep::Continue
    );
    assert_eq!(f.request_state(), RequestState::Forwarded);
    assert!(f.header_edits().is_empty());
}

#[test]
fn trailers_complete_a_buffered_body() {
    let p = policy(MASK_REQUESTS);
    let (mut f, _) = started(&p, &headers("POST", "/", &[]), false);
    assert_eq!(f.on_request_trailers(), RequestDataStep::Complete);
    let (mut f, _) = started(&policy("{}"), &headers("POST", "/", &[]), false);
    assert_eq!(f.on_request_trailers(), RequestDataStep::Continue);
}

#[test]
fn a_held_body_over_the_limit_is_refused_while_buffering() {
    let p = policy(&MASK_REQUESTS.replace(
        r#""default_action""#,
        r#""limits":{"max_body_bytes":8},"default_action""#,
    ));
    let (mut f, step) = started(&p, &headers("POST", "/", &[]), false);
    assert_eq!(step, HeadersStep::Hold);
    let RequestDataStep::Refuse(reply) = f.on_request_data(&p, 9, false) else {
        panic!("over the limit")
    };
    assert_eq!(reply.status, 413);
    assert_eq!(f.request_state(), RequestState::Refused);
}

#[test]
fn a_compressed_body_the_policy_must_read_is_refused() {
    let p = policy(MASK_REQUESTS);
    let h = headers("POST", "/", &[("content-encoding", "gzip")]);
    let (f, step) = started(&p, &h, false);
    let HeadersStep::Refuse(reply) = step else {
        panic!("{step:?}")
    };
    assert_eq!((reply.status, reply.error), (415, "compressed_body"));
    assert_eq!(f.request_state(), RequestState::Refused);
}

#[test]
fn a_masked_body_is_replaced_and_its_length_fixed() {
    let p = policy(MASK_REQUESTS);
    let h = headers("POST", "/v1/x", &[("content-type", "text/plain")]);
    let (mut f, step) = started(&p, &h, false);
    assert_eq!(step, HeadersStep::Hold);
    let body = format!("key {KEY}");
    let RequestBodyStep::Replace(new) = f.on_request_body(&p, &h, body.as_bytes()) else {
        panic!("the key is masked")
    };
    let new = String::from_utf8(new).unwrap();
    assert!(!new.contains(KEY), "{new}");
    assert_eq!(f.exchange.masked.get("openai_key"), Some(&1));
    assert!(f.header_edits().contains(&HeaderEdit::Set(
        "content-length".into(),
        new.len().to_string()
    )));
    assert_eq!(f.request_state(), RequestState::Forwarded);
}

#[test]
fn openai_requests_are_masked_in_their_texts_only() {
    let p = policy(MASK_REQUESTS);
    let h = headers(
        "POST",
        "/v1/chat/completions",
        &[("content-type", "application/json")],
    );
    let (mut f, _) = started(&p, &h, false);
    let body =
        format!(r#"{{"model":"{KEY}","messages":[{{"role":"user","content":"use {KEY}"}}]}}"#);
    let RequestBodyStep::Replace(new) = f.on_request_body(&p, &h, body.as_bytes()) else {
        panic!()
    };
    let v: serde_json::Value = serde_json::from_slice(&new).unwrap();
    assert_eq!(v["model"], KEY, "the model is structural, never rewritten");
    assert!(!v["messages"][0]["content"].as_str().unwrap().contains(KEY));
}

#[test]
fn response_masks_ask_the_upstream_for_uncompressed_bodies() {
    let p = policy(
        r#"{"masking":{"profiles":{"pii":{}}},"default_action":"allow",
            "rules":[{"name":"m","match":{},"action":"mask","mask":{"response":["pii"]}}]}"#,
    );
    let (f, _) = started(&p, &headers("GET", "/", &[]), true);
    assert!(f.header_edits().contains(&HeaderEdit::Set(
        "accept-encoding".into(),
        "identity".into()
    )));
}

#[test]
fn a_bad_token_is_refused_with_401() {
    let p = policy(
        r#"{"identity":{"providers":[{"name":"corp","issuer":"https://idp","audiences":["a"],
            "algorithms":["HS256"],"hmac_secret":"YWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWFhYWE"}]}}"#,
    );
    let mut f = Flow::default();
    let h = headers("GET", "/", &[("authorization", "Bearer x.y.z")]);
    let auth = p.auth.clone().unwrap();
    let step = f.on_request_headers(
        &p,
        &h,
        true,
        || {
            let req = crate::identity::authenticate::PlainRequest::new("/")
                .header("authorization", "Bearer x.y.z");
            let keys = auth.new_key_store();
            let mut cache = auth.new_cache();
            Some(auth.authenticate(&req, &keys, &mut cache, 1_800_000_000))
        },
        true,
    );
    let HeadersStep::Refuse(reply) = step else {
        panic!("{step:?}")
    };
    assert_eq!(reply.status, 401);
    assert!(f.exchange.auth_failure.is_some());
    assert_eq!(
        f.exchange.refused.map(|r| r.0),
        Some(Decision::Unauthenticated)
    );
}

/// The full-policy path (readability check, a body rule, a method-override
/// check, a request mask) parses a JSON body once: the check's reading is
/// what rules match and masks rewrite from.
#[test]
fn a_json_body_is_parsed_once_for_the_check_rules_and_masks() {
    let p = policy(
        r#"{"default_action":"allow",
            "masking":{"profiles":{"pii":{"detectors":["email"]}}},
            "rules":[{"name":"no-drop","match":{"body":{"keywords":["drop table"]}},"action":"deny"},
                     {"name":"pii","match":{},"action":"mask","mask":{"request":["pii"]}}]}"#,
    );
    let h = headers(
        "POST",
        "/customers",
        &[("content-type", "application/json")],
    );
    let body = br#"{"note":"call ada@example.com","q":"select 1"}"#;
    let (mut f, _) = started(&p, &h, false);
    let before = crate::body::json::parses();
    let RequestBodyStep::Replace(masked) = f.on_request_body(&p, &h, body) else {
        panic!("the email is masked")
    };
    assert_eq!(crate::body::json::parses() - before, 1, "one parse");
    assert!(!String::from_utf8_lossy(&masked).contains("ada@example.com"));
    // The rule reads the same parse: an escaped keyword is still found.
    let (mut f, _) = started(&p, &h, false);
    let before = crate::body::json::parses();
    let RequestBodyStep::Refuse(reply) =
        f.on_request_body(&p, &h, br#"{"q":"DROP\u0020TABLE users"}"#)
    else {
        panic!("denied")
    };
    assert_eq!(reply.rule.as_deref(), Some("no-drop"));
    assert_eq!(crate::body::json::parses() - before, 1);
}

/// JSON lines split by a bare `\r` (or another ASCII separator of Python's
/// `splitlines`) are lines here too: the escaped text in the second one is
/// what the body rule reads, as an upstream splitting on `\r` would.
#[test]
fn json_lines_split_by_a_bare_carriage_return_are_read_line_by_line() {
    let p = policy(
        r#"{"default_action":"allow",
            "rules":[{"name":"no-drop","match":{"body":{"regex":"(?i)drop\\s+table"}},"action":"deny"}]}"#,
    );
    let h = headers("POST", "/sql", &[("content-type", "text/plain")]);
    for sep in ["\r", "\r\n", "\x0b", "\x0c", "\x1e"] {
        let body = format!("{{\"a\":1}}{sep}{{\"q\":\"drop\\u0020table\"}}");
        let (mut f, _) = started(&p, &h, false);
        let step = f.on_request_body(&p, &h, body.as_bytes());
        assert!(
            matches!(step, RequestBodyStep::Refuse(_)),
            "{sep:?}: {step:?}"
        );
    }
}
