//! Response states: Headers -> Passing | Buffering | Streaming | Refused;
//! Buffering -> Done | Refused; Streaming -> Done | Aborted.

use super::*;

const MASK_RESPONSES: &str = r#"{"masking":{"profiles":{"pii":{"detectors":["email"]}}},
    "default_action":"allow",
    "rules":[{"name":"pii","match":{},"action":"mask","mask":{"response":["pii"]}}]}"#;

fn masking(p: &Policy) -> Flow {
    let (f, _) = started(p, &headers("GET", "/customers", &[]), true);
    f
}

#[test]
fn a_response_nobody_masks_or_records_passes() {
    let p = policy("{}");
    let mut f = masking(&p);
    assert!(!f.watches_response());
    assert_eq!(
        f.on_response_headers(&p, None, None, false),
        ResponseHeadersStep::Continue
    );
    assert_eq!(f.response_state(), ResponseState::Passing);
    assert_eq!(f.on_response_data(&p, 10, true), ResponseDataStep::Continue);
}

#[test]
fn a_masked_response_is_held_then_replaced() {
    let p = policy(MASK_RESPONSES);
    let mut f = masking(&p);
    assert!(f.watches_response());
    assert_eq!(
        f.on_response_headers(&p, Some("application/json"), None, false),
        ResponseHeadersStep::Hold
    );
    assert_eq!(f.response_state(), ResponseState::Buffering);
    assert_eq!(f.on_response_data(&p, 10, false), ResponseDataStep::Wait);
    assert_eq!(f.on_response_data(&p, 40, true), ResponseDataStep::Complete);
    let ResponseBodyStep::Replace(new) = f.on_response_body(&p, br#"{"email":"bob@example.com"}"#)
    else {
        panic!("the email is masked")
    };
    assert!(!String::from_utf8(new).unwrap().contains("bob@example.com"));
    assert_eq!(f.response_state(), ResponseState::Done);
    assert_eq!(f.exchange.masked.get("email"), Some(&1));
    // Nothing found: passed on as it was.
    let mut f = masking(&p);
    let _ = f.on_response_headers(&p, Some("application/json"), None, false);
    assert_eq!(
        f.on_response_body(&p, br#"{"n":1}"#),
        ResponseBodyStep::Continue
    );
}

#[test]
fn a_response_too_large_to_mask_is_refused_with_502() {
    let p = policy(&MASK_RESPONSES.replace(
        r#""default_action""#,
        r#""limits":{"max_body_bytes":16},"default_action""#,
    ));
    let mut f = masking(&p);
    let _ = f.on_response_headers(&p, Some("text/plain"), None, false);
    let ResponseDataStep::Refuse(reply) = f.on_response_data(&p, 17, false) else {
        panic!("over the limit")
    };
    assert_eq!((reply.status, reply.error), (502, "response_too_large"));
    assert_eq!(f.response_state(), ResponseState::Refused);
    assert_eq!(f.on_response_data(&p, 1, true), ResponseDataStep::Wait);
}

#[test]
fn a_compressed_response_that_must_be_masked_is_refused() {
    let p = policy(MASK_RESPONSES);
    let mut f = masking(&p);
    let ResponseHeadersStep::Refuse(reply) =
        f.on_response_headers(&p, Some("application/json"), Some("gzip"), false)
    else {
        panic!("compressed bytes cannot be scanned")
    };
    assert_eq!((reply.status, reply.error), (502, "response_not_scannable"));
    assert_eq!(f.response_state(), ResponseState::Refused);
}

#[test]
fn a_body_of_a_type_the_masker_cannot_read_passes_and_is_reported() {
    let p = policy(MASK_RESPONSES);
    let mut f = masking(&p);
    assert_eq!(
        f.on_response_headers(&p, Some("image/png"), None, false),
        ResponseHeadersStep::Continue
    );
    assert_eq!(f.exchange.unscanned, ["response: image/png is not scanned"]);
}

#[test]
fn an_event_stream_is_masked_piece_by_piece() {
    let p = policy(MASK_RESPONSES);
    let mut f = masking(&p);
    assert_eq!(
        f.on_response_headers(&p, Some("text/event-stream"), None, false),
        ResponseHeadersStep::Stream
    );
    assert_eq!(f.response_state(), ResponseState::Streaming);
    assert_eq!(f.on_response_data(&p, 10, false), ResponseDataStep::Chunk);
    let ChunkStep::Emit(a) = f.on_response_chunk(&p, b"data: mail bob@exa", false) else {
        panic!()
    };
    let ChunkStep::Emit(b) = f.on_response_chunk(&p, b"mple.com now\n\n", true) else {
        panic!()
    };
    let out = String::from_utf8([a, b].concat()).unwrap();
    assert!(!out.contains("bob@example.com"), "{out}");
    assert_eq!(f.response_state(), ResponseState::Done);
    assert_eq!(f.exchange.masked.get("email"), Some(&1));
}

#[test]
fn an_event_too_large_to_mask_aborts_the_stream() {
    let p = policy(&MASK_RESPONSES.replace(
        r#""default_action""#,
        r#""limits":{"max_body_bytes":16},"default_action""#,
    ));
    let mut f = masking(&p);
    let _ = f.on_response_headers(&p, Some("text/event-stream"), None, false);
    let long = vec![b'a'; 64];
    assert_eq!(f.on_response_chunk(&p, &long, false), ChunkStep::Abort);
    assert_eq!(f.response_state(), ResponseState::Aborted);
    assert_eq!(
        f.exchange.refused,
        Some((Decision::Error, "response_event_too_large"))
    );
    assert_eq!(f.on_response_data(&p, 1, false), ResponseDataStep::Wait);
}

#[test]
fn a_recorded_exchange_keeps_both_bodies_masked() {
    let p = policy(
        r#"{"default_action":"allow",
            "rules":[{"name":"rec","match":{},"action":"allow","record":true}]}"#,
    );
    let h = headers("POST", "/x", &[("content-type", "text/plain")]);
    let (mut f, step) = started(&p, &h, false);
    assert_eq!(step, HeadersStep::Hold, "a recorded body is held");
    assert_eq!(
        f.on_request_body(&p, &h, b"from bob@example.com"),
        RequestBodyStep::Continue
    );
    assert_eq!(
        f.on_response_headers(&p, Some("text/plain"), None, false),
        ResponseHeadersStep::Hold
    );
    assert_eq!(
        f.on_response_body(&p, b"to eve@example.com"),
        ResponseBodyStep::Continue
    );
    let rec = f.exchange.recording.clone().unwrap();
    let (req, resp) = (rec.request.unwrap(), rec.response.unwrap());
    assert!(!req.contains("bob@example.com") && !resp.contains("eve@example.com"));
    // An event stream is noted, never recorded (that would hold it).
    let (mut f, _) = started(&p, &headers("GET", "/", &[]), true);
    assert_eq!(
        f.on_response_headers(&p, Some("text/event-stream"), None, false),
        ResponseHeadersStep::Continue
    );
    assert_eq!(
        f.exchange.recording.unwrap().response.as_deref(),
        Some("[text/event-stream body, not recorded]")
    );
}

const TOKENIZE: &str = r#"{"masking":{"profiles":{
        "tok":{"detectors":["email"],"strategies":{"email":"tokenize"}},
        "pii":{"detectors":["email"]}}},
    "default_action":"allow",
    "rules":[{"name":"tok","match":{},"action":"mask","mask":{"request":["tok"]}}]}"#;

const EMAIL: &str = "ada.lovelace@example.com";

/// A chat request through `p` whose body holds `content`; the flow and the
/// body the upstream gets.
fn tokenized(p: &Policy, content: &str) -> (Flow, String) {
    let h = headers(
        "POST",
        "/v1/chat/completions",
        &[("content-type", "application/json")],
    );
    let (mut f, _) = started(p, &h, false);
    let body =
        serde_json::json!({"model": "m", "messages": [{"role": "user", "content": content}]});
    let sent = match f.on_request_body(p, &h, body.to_string().as_bytes()) {
        RequestBodyStep::Replace(b) => String::from_utf8(b).unwrap(),
        RequestBodyStep::Continue => body.to_string(),
        other => panic!("{other:?}"),
    };
    (f, sent)
}

#[test]
fn tokens_of_the_request_are_restored_in_a_buffered_response() {
    let p = policy(TOKENIZE);
    let (mut f, sent) = tokenized(&p, &format!("write to {EMAIL}"));
    assert!(
        !sent.contains(EMAIL) && sent.contains("write to <EMAIL_1>"),
        "{sent}"
    );
    assert_eq!(f.exchange.tokenized.get("email"), Some(&1));
    assert_eq!(f.exchange.masked.get("email"), Some(&1));
    // Tokens to restore: the response is read, and uncompressed.
    assert!(f.watches_response());
    assert!(f.header_edits().contains(&HeaderEdit::Set(
        "accept-encoding".into(),
        "identity".into()
    )));
    assert_eq!(
        f.on_response_headers(&p, Some("application/json"), None, false),
        ResponseHeadersStep::Hold
    );
    let answer = r#"{"choices":[{"message":{"content":"Sent to <EMAIL_1>, not <EMAIL_2>."}}]}"#;
    let ResponseBodyStep::Replace(new) = f.on_response_body(&p, answer.as_bytes()) else {
        panic!("the token is restored")
    };
    let v: serde_json::Value = serde_json::from_slice(&new).unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        format!("Sent to {EMAIL}, not <EMAIL_2>.")
    );
    assert_eq!(f.exchange.restored.get("email"), Some(&1));
    // The exchange is over: its map is gone.
    assert!(f.tokens.is_empty());
}

#[test]
fn a_request_without_tokens_leaves_the_response_unread() {
    let p = policy(TOKENIZE);
    let (mut f, sent) = tokenized(&p, "nothing personal");
    assert!(sent.contains("nothing personal"));
    assert!(!f.watches_response());
    assert!(!f
        .header_edits()
        .iter()
        .any(|e| matches!(e, HeaderEdit::Set(k, _) if k == "accept-encoding")));
    assert_eq!(
        f.on_response_headers(&p, Some("application/json"), None, false),
        ResponseHeadersStep::Continue
    );
    assert_eq!(f.response_state(), ResponseState::Passing);
}

#[test]
fn tokens_are_restored_in_a_stream_without_response_masks() {
    let p = policy(TOKENIZE);
    let (mut f, _) = tokenized(&p, &format!("write to {EMAIL}"));
    assert_eq!(
        f.on_response_headers(&p, Some("text/event-stream"), None, false),
        ResponseHeadersStep::Stream
    );
    let event = |t: &str| {
        let c = serde_json::json!({"object":"chat.completion.chunk",
            "choices":[{"index":0,"delta":{"content":t},"finish_reason":null}]});
        format!("data: {c}\n\n")
    };
    let body = format!("{}{}data: [DONE]\n\n", event("to <EMA"), event("IL_1>!"));
    let mut out = Vec::new();
    for (i, b) in body.as_bytes().chunks(7).enumerate() {
        let end = (i + 1) * 7 >= body.len();
        let ChunkStep::Emit(o) = f.on_response_chunk(&p, b, end) else {
            panic!()
        };
        out.extend(o);
    }
    let out = String::from_utf8(out).unwrap();
    assert!(out.contains(EMAIL) && !out.contains("<EMAIL_1>"), "{out}");
    assert_eq!(f.exchange.restored.get("email"), Some(&1));
    assert_eq!(f.response_state(), ResponseState::Done);
    assert!(f.tokens.is_empty());
}

#[test]
fn a_restored_value_the_response_policy_masks_is_masked() {
    let p = policy(&TOKENIZE.replace(
        r#""mask":{"request":["tok"]}"#,
        r#""mask":{"request":["tok"],"response":["pii"]}"#,
    ));
    let (mut f, _) = tokenized(&p, &format!("write to {EMAIL}"));
    let _ = f.on_response_headers(&p, Some("text/plain"), None, false);
    let ResponseBodyStep::Replace(new) = f.on_response_body(&p, b"sent to <EMAIL_1>") else {
        panic!()
    };
    assert_eq!(String::from_utf8(new).unwrap(), "sent to [REDACTED:email]");
    assert_eq!(f.exchange.restored.get("email"), Some(&1));
    assert_eq!(f.exchange.masked.get("email"), Some(&2));
}

#[test]
fn a_compressed_response_with_tokens_to_restore_is_refused() {
    let p = policy(TOKENIZE);
    let (mut f, _) = tokenized(&p, EMAIL);
    let ResponseHeadersStep::Refuse(reply) =
        f.on_response_headers(&p, Some("application/json"), Some("gzip"), false)
    else {
        panic!()
    };
    assert_eq!((reply.status, reply.error), (502, "response_not_scannable"));
}
