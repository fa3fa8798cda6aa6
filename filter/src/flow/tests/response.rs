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
