//! OpenAI requests: mask only the text sent to the model.
//!
//! A Chat Completions or Responses request is masked with a JSON pass
//! scoped to the values that carry text ([`CHAT_TEXT`], [`RESPONSES_TEXT`]):
//! message contents and their text parts, tool call arguments, tool
//! outputs, instructions, and the free-text `user` and `metadata` values.
//! Roles, the model, ids, tool names, schemas and every other field are
//! never rewritten, so the request stays valid for the provider (a
//! detector can no longer mangle a `call_id` or a JSON schema). Detectors,
//! `json_fields` (inside those values) and strategies apply as usual.
//! A body that is not JSON is masked as before (scanned whole as text).

use super::config::parse_pointer;
use super::{json, BodyKind, MaskOutcome, Masker, Seg};
use crate::rules::config::OpenAiApi;

/// Chat Completions (`POST …/chat/completions`).
pub const CHAT_TEXT: &[&str] = &[
    "/messages/*/content",
    "/messages/*/content/*/text",
    "/messages/*/tool_calls/*/function/arguments",
    "/messages/*/function_call/arguments",
    "/user",
    "/metadata/*",
];

/// Responses (`POST …/responses`).
pub const RESPONSES_TEXT: &[&str] = &[
    "/instructions",
    "/input",
    "/input/*/content",
    "/input/*/content/*/text",
    "/input/*/arguments",
    "/input/*/output",
    "/input/*/output/*/text",
    "/user",
    "/metadata/*",
];

/// Compiled paths for [`Masker::mask_json_in`].
#[derive(Debug, Clone)]
pub struct Scope(Vec<Vec<Seg>>);

impl Scope {
    /// The text fields of a JSON request to an OpenAI API (by method and
    /// path, as the rules' `openai` condition recognises them), else `None`.
    pub fn for_request(method: &str, path: &str, content_type: Option<&str>) -> Option<Scope> {
        if BodyKind::of(content_type) != BodyKind::Json {
            return None;
        }
        let path = crate::rules::path::normalize(path);
        match crate::rules::shapes::openai_api(method, &path)? {
            OpenAiApi::ChatCompletions => Some(Scope::new(CHAT_TEXT)),
            OpenAiApi::Responses => Some(Scope::new(RESPONSES_TEXT)),
        }
    }

    /// `pointers`: RFC 6901 with `*`; an invalid one is skipped.
    pub fn new(pointers: &[&str]) -> Scope {
        Scope(
            pointers
                .iter()
                .filter_map(|p| parse_pointer(p).ok())
                .collect(),
        )
    }
}

impl Masker {
    /// Masks a JSON body, only the values at `scope`'s paths. A body that is
    /// not JSON is masked as [`Masker::mask`] would (as text).
    pub fn mask_json_in(&self, body: &[u8], scope: &Scope) -> MaskOutcome {
        let mut counts = vec![0u32; self.labels.len()];
        let mut hits = Vec::new();
        self.scanner.scan(body, &mut hits);
        match json::mask_in(self, body, &hits, &mut counts, Some(&scope.0)) {
            Ok(masked) => MaskOutcome {
                body: masked,
                counts: self.named_counts(&counts),
                kind: BodyKind::Json,
            },
            Err(_) => self.mask(Some("application/json"), body),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::{compile, MaskingDoc};
    use serde_json::{json, Value};

    fn all() -> Masker {
        let doc: MaskingDoc = serde_json::from_str(r#"{"profiles":{"p":{}}}"#).unwrap();
        compile(&doc).unwrap().profile("p").unwrap().clone()
    }

    fn masked(body: &Value, scope: &[&str]) -> (Value, std::collections::BTreeMap<String, u32>) {
        let out = all().mask_json_in(body.to_string().as_bytes(), &Scope::new(scope));
        let v = out
            .body
            .map(|b| serde_json::from_slice(&b).unwrap())
            .unwrap_or_else(|| body.clone());
        (v, out.counts)
    }

    #[test]
    fn chat_texts_are_masked_and_nothing_else() {
        let body = json!({
            "model": "gpt-4o-mini-192.168.1.20",
            "user": "bob@example.com",
            "messages": [
                {"role": "system", "content": "card 4111 1111 1111 1111"},
                {"role": "user", "content": [
                    {"type": "text", "text": "mail alice@example.com"},
                    {"type": "image_url", "image_url": {"url": "https://x.test/a@b.example.com"}}]},
                {"role": "assistant", "content": null, "tool_calls": [{
                    "id": "call_4111111111111111", "type": "function",
                    "function": {"name": "send_to_bob@example.com",
                                 "arguments": "{\"to\":\"carol@example.com\"}"}}]},
                {"role": "tool", "tool_call_id": "call_4111111111111111",
                 "content": "ssn 123-45-6789"}
            ]
        });
        let (v, counts) = masked(&body, CHAT_TEXT);
        assert_eq!(v["model"], body["model"]);
        assert_eq!(v["user"], "[REDACTED:email]");
        assert_eq!(v["messages"][0]["content"], "card [REDACTED:credit_card]");
        assert_eq!(
            v["messages"][1]["content"][0]["text"],
            "mail [REDACTED:email]"
        );
        assert_eq!(
            v["messages"][1]["content"][1],
            body["messages"][1]["content"][1]
        );
        let call = &v["messages"][2]["tool_calls"][0];
        assert_eq!(call["id"], "call_4111111111111111");
        assert_eq!(call["function"]["name"], "send_to_bob@example.com");
        assert_eq!(
            call["function"]["arguments"],
            "{\"to\":\"[REDACTED:email]\"}"
        );
        assert_eq!(v["messages"][3]["tool_call_id"], "call_4111111111111111");
        assert_eq!(v["messages"][3]["content"], "ssn [REDACTED:ssn]");
        assert_eq!(counts.get("email"), Some(&3));
    }

    #[test]
    fn responses_texts_are_masked() {
        let body = json!({
            "model": "gpt-4.1", "instructions": "never mail bob@example.com",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "card 4111111111111111"}]},
                {"type": "function_call", "call_id": "call_1", "name": "lookup",
                 "arguments": "{\"email\":\"x@example.com\"}"},
                {"type": "function_call_output", "call_id": "call_1", "output": "ssn 123-45-6789"}
            ]
        });
        let (v, _) = masked(&body, RESPONSES_TEXT);
        assert_eq!(v["instructions"], "never mail [REDACTED:email]");
        assert_eq!(
            v["input"][0]["content"][0]["text"],
            "card [REDACTED:credit_card]"
        );
        assert_eq!(
            v["input"][1]["arguments"],
            "{\"email\":\"[REDACTED:email]\"}"
        );
        assert_eq!(v["input"][2]["output"], "ssn [REDACTED:ssn]");
        let (v, _) = masked(&json!({"input": "to bob@example.com"}), RESPONSES_TEXT);
        assert_eq!(v["input"], "to [REDACTED:email]");
    }

    #[test]
    fn not_json_is_masked_as_text() {
        let out = all().mask_json_in(b"{bob@example.com", &Scope::new(CHAT_TEXT));
        assert_eq!(out.body.as_deref(), Some(&b"{[REDACTED:email]"[..]));
    }
}
