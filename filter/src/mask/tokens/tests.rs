use super::*;
use crate::mask::apply::apply;
use crate::mask::{compile, Masking, MaskingDoc};

fn masking() -> Masking {
    let doc: MaskingDoc = serde_json::from_str(
        r#"{"profiles":{
            "tok":{"detectors":["email","phone"],"strategies":{"default":"tokenize"}},
            "quoted":{"detectors":[],"custom":[{"name":"odd","regex":"Q\"[a-z]+\\\\x"}],
                      "strategies":{"odd":"tokenize"}}}}"#,
    )
    .unwrap();
    compile(&doc).unwrap()
}

/// The request `body` tokenised with `profile`: the body the upstream gets
/// and the exchange's map.
fn tokenize(profile: &str, content_type: &str, body: &str) -> (String, Tokens) {
    let mut tokens = Tokens::default();
    let out = apply(
        &masking(),
        &[profile.to_string()],
        Some(content_type),
        body.as_bytes(),
        None,
        None,
        &mut tokens,
    );
    let sent = String::from_utf8(out.body.unwrap_or_else(|| body.as_bytes().to_vec())).unwrap();
    (sent, tokens)
}

fn restore(tokens: &Tokens, content_type: &str, body: &str) -> (String, Restored) {
    let mut restored = Restored::new();
    let out = tokens.restore(Some(content_type), body.as_bytes(), &mut restored);
    let out = out.unwrap_or_else(|| body.as_bytes().to_vec());
    (String::from_utf8(out).unwrap(), restored)
}

const EMAIL: &str = "ada.lovelace@example.com";

#[test]
fn values_become_numbered_tokens_and_equal_values_share_one() {
    let (sent, tokens) = tokenize(
        "tok",
        "text/plain",
        &format!("mail {EMAIL} or call +1 415 555 2671, again {EMAIL}"),
    );
    assert_eq!(sent, "mail <EMAIL_1> or call <PHONE_2>, again <EMAIL_1>");
    let (back, restored) = restore(&tokens, "text/plain", "write <EMAIL_1>, ring <PHONE_2>");
    assert_eq!(back, format!("write {EMAIL}, ring +1 415 555 2671"));
    assert_eq!(restored.get("email"), Some(&1));
    assert_eq!(restored.get("phone"), Some(&1));
    // The map's Debug never shows a value.
    assert!(!format!("{tokens:?}").contains("ada"));
}

#[test]
fn the_tokenized_counts_are_the_tokenised_part_of_the_masked_counts() {
    let mut tokens = Tokens::default();
    let out = apply(
        &masking(),
        &["tok".to_string()],
        Some("text/plain"),
        format!("{EMAIL} {EMAIL}").as_bytes(),
        None,
        None,
        &mut tokens,
    );
    assert_eq!(out.counts.get("email"), Some(&2));
    assert_eq!(out.tokenized.get("email"), Some(&2));
}

#[test]
fn token_shaped_text_already_in_the_request_is_never_restored() {
    // The user typed `<EMAIL_1>` (as is, and JSON-escaped as `<EMAIL_2>`):
    // the email gets the next free number, and the typed text stays text.
    let body = format!(r#"{{"a":"see <EMAIL_1>","b":"and \u003cEMAIL_2\u003e","c":"{EMAIL}"}}"#);
    let (sent, tokens) = tokenize("tok", "application/json", &body);
    assert!(sent.contains(r#""c":"<EMAIL_3>""#), "{sent}");
    let (back, restored) = restore(&tokens, "text/plain", "<EMAIL_1> <EMAIL_2> <EMAIL_3>");
    assert_eq!(back, format!("<EMAIL_1> <EMAIL_2> {EMAIL}"));
    assert_eq!(restored.get("email"), Some(&1));
}

#[test]
fn unknown_and_malformed_tokens_are_left_alone() {
    let (_, tokens) = tokenize("tok", "text/plain", EMAIL);
    for text in [
        "<EMAIL_2>",
        "<PHONE_1>",
        "<email_1>",
        "<EMAIL_1",
        "EMAIL_1>",
        "<EMAIL_01>",
        "< EMAIL_1>",
        "<<EMAIL_1",
        "",
    ] {
        let (back, restored) = restore(&tokens, "text/plain", text);
        assert_eq!(back, text);
        assert!(restored.is_empty(), "{text}");
    }
    let (back, _) = restore(&tokens, "text/plain", "<<EMAIL_1>>");
    assert_eq!(back, format!("<{EMAIL}>"));
}

#[test]
fn values_are_re_escaped_inside_json_strings() {
    let value = "Q\"ab\\x";
    let (sent, tokens) = tokenize(
        "quoted",
        "application/json",
        r#"{"note":"key Q\"ab\\x here"}"#,
    );
    assert_eq!(sent, r#"{"note":"key <ODD_1> here"}"#);
    // Buffered JSON: the string is decoded, restored and re-escaped.
    let (back, restored) = restore(
        &tokens,
        "application/json",
        r#"{"text":"it is <ODD_1>!","esc":"\u003cODD_1\u003e","n":1}"#,
    );
    let v: serde_json::Value = serde_json::from_str(&back).unwrap();
    assert_eq!(v["text"], format!("it is {value}!"));
    assert_eq!(v["esc"], value);
    assert_eq!(v["n"], 1);
    assert_eq!(restored.get("odd"), Some(&2));
    // A string holding JSON (tool-call arguments) stays valid JSON inside.
    let args = serde_json::json!({"to": "<ODD_1>"}).to_string();
    let body = serde_json::json!({"arguments": args}).to_string();
    let (back, _) = restore(&tokens, "application/json", &body);
    let v: serde_json::Value = serde_json::from_str(&back).unwrap();
    let inner: serde_json::Value = serde_json::from_str(v["arguments"].as_str().unwrap()).unwrap();
    assert_eq!(inner["to"], value);
    // As text, the value goes in as it was.
    let (back, _) = restore(&tokens, "text/plain", "<ODD_1>");
    assert_eq!(back, value);
}

#[test]
fn binary_bodies_and_an_empty_map_restore_nothing() {
    let (_, tokens) = tokenize("tok", "text/plain", EMAIL);
    let mut r = Restored::new();
    assert_eq!(
        tokens.restore(Some("image/png"), b"<EMAIL_1>", &mut r),
        None
    );
    assert_eq!(Tokens::default().restore(None, b"<EMAIL_1>", &mut r), None);
    assert!(r.is_empty());
}

/// A stream restored piece by piece, split at `cuts`.
fn streamed(
    tokens: &Tokens,
    text: &[u8],
    cuts: &[usize],
    json_escape: bool,
) -> (Vec<u8>, Restored) {
    let mut s = RestoreStream::new(json_escape);
    let mut out = Vec::new();
    let mut last = 0;
    for &c in cuts {
        out.extend(s.push(tokens, &text[last..c]));
        last = c;
    }
    out.extend(s.push(tokens, &text[last..]));
    out.extend(s.finish(tokens));
    (out, s.restored().clone())
}

#[test]
fn a_token_split_at_every_byte_is_restored() {
    let (_, tokens) = tokenize("tok", "text/plain", &format!("{EMAIL} +1 415 555 2671"));
    let text = b"Hi <EMAIL_1>, <PHONE_2> and <EMAIL_1> < <EMAIL_9>";
    let want = format!("Hi {EMAIL}, +1 415 555 2671 and {EMAIL} < <EMAIL_9>");
    for i in 0..=text.len() {
        for j in i..=text.len() {
            let (out, restored) = streamed(&tokens, text, &[i, j], false);
            assert_eq!(String::from_utf8(out).unwrap(), want, "cut at {i}, {j}");
            assert_eq!(restored.get("email"), Some(&2));
            assert_eq!(restored.get("phone"), Some(&1));
        }
    }
    let every: Vec<usize> = (1..text.len()).collect();
    let (out, _) = streamed(&tokens, text, &every, false);
    assert_eq!(String::from_utf8(out).unwrap(), want, "byte by byte");
}

#[test]
fn only_a_possible_token_prefix_is_held_back() {
    let (_, tokens) = tokenize("tok", "text/plain", EMAIL);
    let mut s = RestoreStream::new(false);
    assert_eq!(s.push(&tokens, b"Hello"), b"Hello");
    assert_eq!(s.push(&tokens, b" a < b"), b" a < b");
    assert_eq!(s.push(&tokens, b" write <EMA"), b" write ");
    assert_eq!(s.pending(), 4);
    assert_eq!(s.push(&tokens, b"IL_1"), b"");
    assert_eq!(s.push(&tokens, b"> ok"), format!("{EMAIL} ok").as_bytes());
    // `<EMAIL_1` could still be `<EMAIL_10>`, which is not a token here: held
    // until it ends either way.
    assert_eq!(s.push(&tokens, b"<EMAIL_1"), b"");
    assert_eq!(s.push(&tokens, b"0>"), b"<EMAIL_10>");
    assert_eq!(s.push(&tokens, b"<PHONE"), b"<PHONE");
    assert_eq!(s.push(&tokens, b" <EM"), b" ");
    assert_eq!(s.finish(&tokens), b"<EM");
}

#[test]
fn a_token_in_a_streamed_json_string_gets_an_escaped_value() {
    let (_, tokens) = tokenize("quoted", "text/plain", "Q\"ab\\x");
    let text = br#"{"to":"<ODD_1>"}"#;
    for i in 0..=text.len() {
        let (out, _) = streamed(&tokens, text, &[i], true);
        let v: serde_json::Value = serde_json::from_slice(&out).unwrap();
        assert_eq!(v["to"], "Q\"ab\\x", "cut at {i}");
    }
}

#[test]
fn labels_become_token_names() {
    assert_eq!(token_name("email"), "EMAIL");
    assert_eq!(token_name("employee_id"), "EMPLOYEE_ID");
    assert_eq!(token_name("/customers/*/phone"), "CUSTOMERS_PHONE");
    assert_eq!(token_name("*"), "VALUE");
}
