//! OpenAI requests: mask every string the model can read.
//!
//! A Chat Completions or Responses request is masked with a JSON pass over
//! every string value except the structural fields of
//! [`crate::body::visible`] (roles, the model, ids, types, tool names,
//! enumerated options): the one list the rules' `openai.text_*` conditions
//! use too. So message contents and names, tool and schema descriptions,
//! `stop`, `prediction`, `refusal`, metadata are all masked, and a field the
//! provider adds later is masked until it is listed as structural. The
//! request stays valid for the provider (a detector never mangles a
//! `call_id`). Detectors, `json_fields` and strategies apply as usual.
//! A body that is not JSON is masked as before (scanned whole as text).

use super::json::{self, Scope as Pass};
use super::{BodyKind, MaskOutcome, Masker, Tally, Tokens};
use crate::body::{visible, Reading};
use crate::rules::config::OpenAiApi;

/// Which values of an OpenAI request are masked: all but the structural.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Scope(&'static [&'static str]);

/// Chat Completions (`POST …/chat/completions`).
pub const CHAT: Scope = Scope(visible::CHAT_STRUCTURAL);

/// Responses (`POST …/responses`).
pub const RESPONSES: Scope = Scope(visible::RESPONSES_STRUCTURAL);

impl Scope {
    /// The scope of a JSON request to an OpenAI API (by method and path, as
    /// the rules' `openai` condition recognises them), else `None`.
    pub fn for_request(method: &str, path: &str, content_type: Option<&str>) -> Option<Scope> {
        if BodyKind::of(content_type) != BodyKind::Json {
            return None;
        }
        let path = crate::rules::path::normalize(path);
        match crate::rules::shapes::openai_api(method, &path)? {
            OpenAiApi::ChatCompletions => Some(CHAT),
            OpenAiApi::Responses => Some(RESPONSES),
        }
    }
}

impl Masker {
    /// Masks a JSON body, every value but `scope`'s structural fields. A body
    /// that is not JSON is masked as [`Masker::mask`] would (as text).
    /// `tokenize` adds to the exchange's `tokens`.
    pub fn mask_json_in(&self, body: &[u8], scope: &Scope, tokens: &mut Tokens) -> MaskOutcome {
        self.mask_json_in_read(body, scope, None, tokens)
    }

    /// [`Masker::mask_json_in`], rewriting from `reading`'s parse of `body`.
    pub fn mask_json_in_read(
        &self,
        body: &[u8],
        scope: &Scope,
        reading: Option<&Reading<'_>>,
        tokens: &mut Tokens,
    ) -> MaskOutcome {
        let mut tally = Tally::new(self, std::mem::take(tokens));
        let mut hits = Vec::new();
        self.scan(body, &mut hits, &mut tally);
        let doc = reading.and_then(|r| r.doc_of(body));
        let result = json::mask_in(self, body, doc, &hits, &mut tally, Pass::Except(scope.0));
        *tokens = std::mem::take(&mut tally.tokens);
        match result {
            Ok(masked) => self.outcome(masked, &tally, BodyKind::Json),
            Err(_) => self.mask_read(Some("application/json"), body, reading, tokens),
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

    fn masked(body: &Value, scope: Scope) -> (Value, std::collections::BTreeMap<String, u32>) {
        let out = all().mask_json_in(body.to_string().as_bytes(), &scope, &mut Tokens::default());
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
        let (v, counts) = masked(&body, CHAT);
        assert_eq!(v["model"], body["model"]);
        assert_eq!(v["user"], "[REDACTED:email]");
        assert_eq!(v["messages"][0]["content"], "card [REDACTED:credit_card]");
        assert_eq!(
            v["messages"][1]["content"][0]["text"],
            "mail [REDACTED:email]"
        );
        // The provider fetches an image URL: it leaves like any text.
        assert_eq!(
            v["messages"][1]["content"][1]["image_url"]["url"],
            "https://x.test/[REDACTED:email]"
        );
        assert_eq!(v["messages"][1]["content"][1]["type"], "image_url");
        let call = &v["messages"][2]["tool_calls"][0];
        assert_eq!(call["id"], "call_4111111111111111");
        assert_eq!(call["function"]["name"], "send_to_bob@example.com");
        assert_eq!(
            call["function"]["arguments"],
            "{\"to\":\"[REDACTED:email]\"}"
        );
        assert_eq!(v["messages"][3]["tool_call_id"], "call_4111111111111111");
        assert_eq!(v["messages"][3]["content"], "ssn [REDACTED:ssn]");
        assert_eq!(counts.get("email"), Some(&4));
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
        let (v, _) = masked(&body, RESPONSES);
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
        let (v, _) = masked(&json!({"input": "to bob@example.com"}), RESPONSES);
        assert_eq!(v["input"], "to [REDACTED:email]");
    }

    #[test]
    fn not_json_is_masked_as_text() {
        let out = all().mask_json_in(b"{bob@example.com", &CHAT, &mut Tokens::default());
        assert_eq!(out.body.as_deref(), Some(&b"{[REDACTED:email]"[..]));
    }
}
