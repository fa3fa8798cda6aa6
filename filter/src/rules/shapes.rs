//! Agent traffic shapes: what an OpenAI or MCP request says, read from its JSON.
//!
//! **OpenAI** (a `POST` whose normalised path ends in `/chat/completions` or
//! `/responses`, so `/v1/…` and gateway prefixes both count):
//!
//! | | Chat Completions | Responses |
//! | --- | --- | --- |
//! | model | `model` | `model` |
//! | text | every string but the structural fields of `crate::body::visible` (roles, model, ids, types, tool names): contents, names, tool descriptions and schemas, `stop`, `prediction`, ... | the same, with the Responses list |
//! | tools | `tools[].function.name`, `functions[].name`, `function_call.name`, `tool_choice.function.name`, `messages[].tool_calls[].function.name` | `tools[].name` (or `.type` for built-in tools: `web_search`, `mcp`…), `tool_choice.name`, `input[].name` of `function_call` items |
//!
//! **MCP** (JSON-RPC 2.0 over Streamable HTTP, any path): the body is one
//! request object `{"jsonrpc":"2.0","method":…,"params":…}` or a batch (array)
//! of them; a rule matches if one message satisfies all its `mcp` conditions.
//! For `tools/call`, the tool is `params.name` and its arguments
//! `params.arguments`.

use serde_json::{Map, Value};
use std::borrow::Cow;

use crate::body::json::Doc;
use crate::body::visible;

use super::config::OpenAiApi;
use super::path::NormalizedPath;

/// Which OpenAI API a request is for, from its method and normalised path.
pub fn openai_api(method: &str, path: &NormalizedPath) -> Option<OpenAiApi> {
    if !method.eq_ignore_ascii_case("POST") {
        return None;
    }
    if path.path.ends_with("/chat/completions") {
        Some(OpenAiApi::ChatCompletions)
    } else if path.path.ends_with("/responses") {
        Some(OpenAiApi::Responses)
    } else {
        None
    }
}

pub(crate) fn model(body: &Value) -> Option<&str> {
    body.get("model").and_then(Value::as_str)
}

/// The text an OpenAI request shows the model: every string value except
/// the structural fields of [`crate::body::visible`] (the list masking uses).
pub(crate) fn openai_texts<'a>(api: OpenAiApi, doc: &Doc<'a>) -> Vec<Cow<'a, str>> {
    let structural = structural(api);
    let mut out = Vec::new();
    doc.each_string(|path, _, s| {
        if !visible::is_structural(structural, path) {
            out.push(s);
        }
    });
    out
}

/// The structural (never masked, never matched as text) fields of an API.
pub(crate) fn structural(api: OpenAiApi) -> &'static [&'static str] {
    match api {
        OpenAiApi::ChatCompletions => visible::CHAT_STRUCTURAL,
        OpenAiApi::Responses => visible::RESPONSES_STRUCTURAL,
    }
}

/// Tool and function names an OpenAI request declares or has called.
pub(crate) fn openai_tools(api: OpenAiApi, body: &Value) -> Vec<&str> {
    let mut out = Vec::new();
    let tool_choice = body.get("tool_choice");
    match api {
        OpenAiApi::ChatCompletions => {
            for t in array(body, "tools") {
                push_str(t.get("function").and_then(|f| f.get("name")), &mut out);
            }
            for f in array(body, "functions") {
                push_str(f.get("name"), &mut out);
            }
            push_str(
                body.get("function_call").and_then(|f| f.get("name")),
                &mut out,
            );
            push_str(
                tool_choice
                    .and_then(|c| c.get("function"))
                    .and_then(|f| f.get("name")),
                &mut out,
            );
            for m in array(body, "messages") {
                for call in array(m, "tool_calls") {
                    push_str(call.get("function").and_then(|f| f.get("name")), &mut out);
                }
            }
        }
        OpenAiApi::Responses => {
            for t in array(body, "tools") {
                match t.get("name").and_then(Value::as_str) {
                    Some(n) => out.push(n),
                    None => push_str(t.get("type"), &mut out),
                }
            }
            push_str(tool_choice.and_then(|c| c.get("name")), &mut out);
            if let Some(Value::Array(items)) = body.get("input") {
                for item in items {
                    if item.get("type").and_then(Value::as_str) == Some("function_call") {
                        push_str(item.get("name"), &mut out);
                    }
                }
            }
        }
    }
    out
}

/// The JSON-RPC request objects in an MCP body (one, or each of a batch).
pub(crate) fn mcp_messages(body: &Value) -> Vec<&Map<String, Value>> {
    fn is_rpc(m: &Map<String, Value>) -> bool {
        m.get("jsonrpc").and_then(Value::as_str) == Some("2.0")
            && m.get("method").is_some_and(Value::is_string)
    }
    match body {
        Value::Object(m) if is_rpc(m) => vec![m],
        Value::Array(items) => items
            .iter()
            .filter_map(Value::as_object)
            .filter(|m| is_rpc(m))
            .collect(),
        _ => Vec::new(),
    }
}

fn array<'v>(v: &'v Value, key: &str) -> &'v [Value] {
    v.get(key)
        .and_then(Value::as_array)
        .map(Vec::as_slice)
        .unwrap_or(&[])
}

fn push_str<'v>(v: Option<&'v Value>, out: &mut Vec<&'v str>) {
    if let Some(s) = v.and_then(Value::as_str) {
        out.push(s);
    }
}

#[cfg(test)]
mod tests {
    use super::super::path::normalize;
    use super::*;
    use serde_json::json;

    fn texts(api: OpenAiApi, body: &Value) -> Vec<String> {
        let src = body.to_string();
        let doc = Doc::parse(src.as_bytes(), 100).unwrap();
        openai_texts(api, &doc)
            .into_iter()
            .map(|s| s.into_owned())
            .collect()
    }

    #[test]
    fn endpoints_are_recognised_after_normalisation() {
        let api = |m, p| openai_api(m, &normalize(p));
        assert_eq!(
            api("POST", "/v1/chat/completions"),
            Some(OpenAiApi::ChatCompletions)
        );
        assert_eq!(
            api("post", "/v1//chat/./completions/"),
            Some(OpenAiApi::ChatCompletions)
        );
        assert_eq!(api("POST", "/v1/responses"), Some(OpenAiApi::Responses));
        assert_eq!(api("GET", "/v1/responses"), None);
        assert_eq!(api("POST", "/v1/embeddings"), None);
    }

    #[test]
    fn chat_completions_text_and_tools() {
        let body = json!({
            "model": "gpt-4o",
            "messages": [
                {"role": "system", "content": "be nice"},
                {"role": "user", "content": [{"type": "text", "text": "hello"}]},
                {"role": "assistant", "tool_calls": [{"id": "c1", "type": "function",
                  "function": {"name": "lookup", "arguments": "{\"id\":1}"}}]}
            ],
            "tools": [{"type": "function", "function": {"name": "delete_customer"}}],
            "tool_choice": {"type": "function", "function": {"name": "forced"}}
        });
        assert_eq!(model(&body), Some("gpt-4o"));
        assert_eq!(
            texts(OpenAiApi::ChatCompletions, &body),
            vec!["be nice", "hello", "{\"id\":1}"]
        );
        assert_eq!(
            openai_tools(OpenAiApi::ChatCompletions, &body),
            vec!["delete_customer", "forced", "lookup"]
        );
    }

    #[test]
    fn responses_text_and_tools() {
        let body = json!({
            "model": "gpt-4.1",
            "instructions": "sys",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": "hi"}]},
                {"type": "function_call", "name": "get_weather", "arguments": "{}", "call_id": "c"},
                {"type": "function_call_output", "call_id": "c", "output": "sunny"}
            ],
            "tools": [{"type": "function", "name": "get_weather"}, {"type": "web_search"}]
        });
        assert_eq!(
            texts(OpenAiApi::Responses, &body),
            // serde_json's map is sorted: `input` comes before `instructions`.
            vec!["hi", "{}", "sunny", "sys"]
        );
        assert_eq!(
            openai_tools(OpenAiApi::Responses, &body),
            vec!["get_weather", "web_search", "get_weather"]
        );
        let s = json!({"model": "m", "input": "plain"});
        assert_eq!(texts(OpenAiApi::Responses, &s), vec!["plain"]);
    }

    #[test]
    fn mcp_single_and_batch() {
        let one =
            json!({"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "x"}});
        assert_eq!(mcp_messages(&one).len(), 1);
        let batch = json!([one, {"jsonrpc": "2.0", "method": "notifications/initialized"}, 5]);
        assert_eq!(mcp_messages(&batch).len(), 2);
        assert!(mcp_messages(&json!({"method": "x"})).is_empty());
        assert!(mcp_messages(&json!("x")).is_empty());
    }
}
