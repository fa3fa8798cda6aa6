//! The `rules` and `default_action` sections of the policy, as written.
//!
//! These are the serde document types (`deny_unknown_fields` everywhere);
//! [`super::compile`] turns them into [`super::Rules`]. The policy loader
//! embeds them as two top-level fields:
//!
//! ```ignore
//! #[serde(default)] rules: Vec<rules::RuleDoc>,
//! #[serde(default)] default_action: Option<rules::DefaultAction>,
//! ```

use serde::de::{self, Deserializer, SeqAccess, Visitor};
use serde::Deserialize;
use std::fmt;

use crate::policy::Mode;

/// What happens when no enforced rule matches. Required whenever `rules` is
/// not empty.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DefaultAction {
    Allow,
    Deny,
}

/// A rule's action.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum ActionKind {
    // Declared weakest first: the derived `Ord` is the combination order.
    Allow,
    Mask,
    RequireApproval,
    Deny,
}

impl ActionKind {
    pub fn as_str(self) -> &'static str {
        match self {
            ActionKind::Allow => "allow",
            ActionKind::Mask => "mask",
            ActionKind::RequireApproval => "require_approval",
            ActionKind::Deny => "deny",
        }
    }
}

/// One entry of `rules`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RuleDoc {
    pub name: String,
    /// Every condition given must hold; an empty `match` matches every request.
    #[serde(rename = "match", default)]
    pub matcher: MatchDoc,
    pub action: ActionKind,
    /// `monitor`: decide and report, never block or rewrite.
    #[serde(default)]
    pub mode: Mode,
    /// Only with `action: deny`.
    #[serde(default)]
    pub deny: Option<DenyDoc>,
    /// Required with `action: mask`, refused otherwise.
    #[serde(default)]
    pub mask: Option<MaskDoc>,
    /// Session recording: the request's and response's bodies, masked and
    /// size-capped (`audit.record_max_bytes`), go into its audit record.
    #[serde(default)]
    pub record: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyDoc {
    /// 400 to 599; default 403.
    #[serde(default)]
    pub status: Option<u16>,
    /// The `reason` of the JSON reply.
    #[serde(default)]
    pub message: Option<String>,
}

/// Masking profiles by name, per direction.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskDoc {
    #[serde(default)]
    pub request: StringList,
    #[serde(default)]
    pub response: StringList,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchDoc {
    /// Any of these methods (case-insensitive).
    #[serde(default)]
    pub methods: Option<StringList>,
    /// Any of: `host`, `host:port`, `*.suffix`, `*.suffix:port`.
    #[serde(default)]
    pub authority: Option<StringList>,
    #[serde(default)]
    pub path: Option<PathDoc>,
    /// Every header condition must hold.
    #[serde(default)]
    pub headers: Vec<HeaderDoc>,
    #[serde(default)]
    pub identity: Option<IdentityMatchDoc>,
    #[serde(default)]
    pub body: Option<BodyDoc>,
    #[serde(default)]
    pub openai: Option<OpenAiDoc>,
    #[serde(default)]
    pub mcp: Option<McpDoc>,
    /// Holds when this nested `match` does not (it must not be empty).
    #[serde(default)]
    pub not: Option<Box<MatchDoc>>,
}

/// On the normalised path (see [`super::path`]). Every field given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathDoc {
    /// Any of these paths, exactly (after normalising both).
    #[serde(default)]
    pub exact: Option<StringList>,
    /// Any of these prefixes, segment-aware (`/admin` covers `/admin/x`, not `/administrator`).
    #[serde(default)]
    pub prefix: Option<StringList>,
    /// Unanchored; use `^…$`.
    #[serde(default)]
    pub regex: Option<String>,
    /// Whether the raw path was ambiguous (encoded `/`, `..` above the root, …).
    #[serde(default)]
    pub ambiguous: Option<bool>,
    /// `exact` and `prefix` ignore case (for upstreams that do); use `(?i)` in `regex`.
    #[serde(default)]
    pub ignore_case: bool,
}

/// One header condition: exactly one of `present`, `exact`, `regex`.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderDoc {
    pub name: String,
    #[serde(default)]
    pub present: Option<bool>,
    #[serde(default)]
    pub exact: Option<String>,
    #[serde(default)]
    pub regex: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityMatchDoc {
    /// `true`: a verified identity is present; `false`: none is.
    #[serde(default)]
    pub authenticated: Option<bool>,
    /// Any of these subjects.
    #[serde(default)]
    pub subject: Option<StringList>,
    #[serde(default)]
    pub groups_any: Option<StringList>,
    #[serde(default)]
    pub groups_all: Option<StringList>,
    #[serde(default)]
    pub groups_none: Option<StringList>,
    #[serde(default)]
    pub scopes_any: Option<StringList>,
    #[serde(default)]
    pub scopes_all: Option<StringList>,
    #[serde(default)]
    pub scopes_none: Option<StringList>,
}

/// Text and JSON conditions on the request body. Every field given must hold.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct BodyDoc {
    #[serde(default)]
    pub regex: Option<String>,
    /// Any of these, case-insensitive.
    #[serde(default)]
    pub keywords: Option<StringList>,
    /// Every JSON condition must hold.
    #[serde(default)]
    pub json: Vec<JsonDoc>,
}

/// A JSON Pointer (RFC 6901, plus `*` for every array item or object member)
/// and exactly one test.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct JsonDoc {
    pub pointer: String,
    #[serde(default)]
    pub equals: Option<serde_json::Value>,
    #[serde(default)]
    pub regex: Option<String>,
    #[serde(default)]
    pub exists: Option<bool>,
    /// With `equals`/`regex`: every value the pointer reaches must pass (and
    /// there must be one), instead of any one of them.
    #[serde(default)]
    pub all: bool,
}

/// OpenAI Chat Completions and Responses requests.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct OpenAiDoc {
    /// Which API; default both.
    #[serde(default)]
    pub api: Option<OpenAiApi>,
    /// Any of these models (`*` is a wildcard: `gpt-4o*`).
    #[serde(default)]
    pub models: Option<StringList>,
    /// Text of messages / input / instructions matches this regex.
    #[serde(default)]
    pub text_regex: Option<String>,
    /// Text contains any of these, case-insensitive.
    #[serde(default)]
    pub text_keywords: Option<StringList>,
    /// Any declared or called tool/function has one of these names (`*` wildcard).
    #[serde(default)]
    pub tools: Option<StringList>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum OpenAiApi {
    ChatCompletions,
    Responses,
}

/// MCP JSON-RPC requests (Streamable HTTP: one message or a batch per POST).
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpDoc {
    /// Any of these JSON-RPC methods (`*` wildcard: `resources/*`).
    #[serde(default)]
    pub methods: Option<StringList>,
    /// `tools/call` of any of these tools (`*` wildcard).
    #[serde(default)]
    pub tools: Option<StringList>,
    /// Conditions on `params.arguments` of a `tools/call` (pointers relative to it).
    #[serde(default)]
    pub arguments: Vec<JsonDoc>,
}

/// A string or a list of strings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StringList(pub Vec<String>);

impl<'de> Deserialize<'de> for StringList {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V;
        impl<'de> Visitor<'de> for V {
            type Value = StringList;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string or a list of strings")
            }
            fn visit_str<E: de::Error>(self, v: &str) -> Result<StringList, E> {
                Ok(StringList(vec![v.to_string()]))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StringList, A::Error> {
                let mut out = Vec::new();
                while let Some(s) = seq.next_element::<String>()? {
                    out.push(s);
                }
                Ok(StringList(out))
            }
        }
        d.deserialize_any(V)
    }
}
