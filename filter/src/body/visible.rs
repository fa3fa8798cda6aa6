//! What an OpenAI request shows the model: every string, except an
//! explicit list of structural fields (roles, the model, ids, types, tool
//! names, enumerated options). The one list used by the rules
//! (`rules::shapes`: `openai.text_*` conditions) and by masking
//! (`mask::openai`): a field the provider adds later is model-visible, and
//! so masked and matched, until it is listed here.
//!
//! Patterns are JSON Pointers where `*` is any key or index.

use super::json::Step;

/// Chat Completions (`POST …/chat/completions`): fields never masked.
pub const CHAT_STRUCTURAL: &[&str] = &[
    "/model",
    "/messages/*/role",
    "/messages/*/tool_call_id",
    "/messages/*/tool_calls/*/id",
    "/messages/*/tool_calls/*/type",
    "/messages/*/tool_calls/*/function/name",
    "/messages/*/function_call/name",
    "/messages/*/content/*/type",
    "/messages/*/content/*/image_url/detail",
    "/messages/*/content/*/input_audio/format",
    "/messages/*/content/*/file/file_id",
    "/messages/*/audio/id",
    "/tools/*/type",
    "/tools/*/function/name",
    "/functions/*/name",
    "/function_call",
    "/function_call/name",
    "/tool_choice",
    "/tool_choice/type",
    "/tool_choice/function/name",
    "/response_format/type",
    "/response_format/json_schema/name",
    "/reasoning_effort",
    "/service_tier",
    "/modalities/*",
    "/audio/voice",
    "/audio/format",
    "/prediction/type",
    "/verbosity",
    "/web_search_options/search_context_size",
];

/// Responses (`POST …/responses`): fields never masked.
pub const RESPONSES_STRUCTURAL: &[&str] = &[
    "/model",
    "/previous_response_id",
    "/conversation",
    "/conversation/id",
    "/input/*/role",
    "/input/*/type",
    "/input/*/id",
    "/input/*/call_id",
    "/input/*/status",
    "/input/*/name",
    "/input/*/content/*/type",
    "/input/*/content/*/detail",
    "/input/*/content/*/file_id",
    "/tools/*/type",
    "/tools/*/name",
    "/tools/*/server_label",
    "/tools/*/require_approval",
    "/tool_choice",
    "/tool_choice/type",
    "/tool_choice/name",
    "/text/format/type",
    "/text/format/name",
    "/text/verbosity",
    "/reasoning/effort",
    "/reasoning/summary",
    "/include/*",
    "/service_tier",
    "/truncation",
    "/prompt/id",
    "/prompt/version",
];

/// Whether `path` is one of `patterns` (exactly; `*` for any one step).
pub fn is_structural(patterns: &[&str], path: &[Step<'_>]) -> bool {
    patterns.iter().any(|p| matches(p, path))
}

fn matches(pattern: &str, path: &[Step<'_>]) -> bool {
    let mut segs = pattern.split('/').skip(1);
    for step in path {
        let Some(seg) = segs.next() else {
            return false;
        };
        let ok = seg == "*"
            || match step {
                Step::Key(k) => k == seg,
                Step::Index(i) => seg.parse::<usize>().is_ok_and(|n| n == *i),
            };
        if !ok {
            return false;
        }
    }
    segs.next().is_none()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::borrow::Cow;

    fn path(p: &[&str]) -> Vec<Step<'static>> {
        p.iter()
            .map(|s| match s.parse::<usize>() {
                Ok(i) => Step::Index(i),
                Err(_) => Step::Key(Cow::Owned(s.to_string())),
            })
            .collect()
    }

    #[test]
    fn structural_fields_are_exact_paths() {
        assert!(is_structural(CHAT_STRUCTURAL, &path(&["model"])));
        assert!(is_structural(
            CHAT_STRUCTURAL,
            &path(&["messages", "3", "role"])
        ));
        assert!(!is_structural(
            CHAT_STRUCTURAL,
            &path(&["messages", "3", "content"])
        ));
        assert!(!is_structural(
            CHAT_STRUCTURAL,
            &path(&["tools", "0", "function", "description"])
        ));
        assert!(!is_structural(CHAT_STRUCTURAL, &path(&["model", "x"])));
        assert!(!is_structural(CHAT_STRUCTURAL, &path(&[])));
    }
}
