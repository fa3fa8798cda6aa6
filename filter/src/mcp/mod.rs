//! MCP tool lists: `tools/list` answers filtered by the policy (a tool the
//! caller may not call is removed from the list it sees) and tool
//! definitions pinned by hash (a changed definition, a "rug pull", is
//! refused). Buffered JSON answers and SSE-framed ones (`sse.rs`) alike.
//! See `docs/mcp.md`.

pub mod config;
pub mod sse;

use serde_json::{json, Map, Value};
use sha2::{Digest, Sha256};

pub use config::{compile, McpPolicy, McpSectionDoc};

use crate::rules::{RequestView, Rules, Ruling};

/// The ids of the `tools/list` requests in an MCP request body (one
/// message or a batch); empty if there are none.
pub fn tools_list_ids(body: &[u8]) -> Vec<Value> {
    let Ok(v) = serde_json::from_slice::<Value>(body) else {
        return Vec::new();
    };
    let one = |m: &Value| {
        (m.get("method").and_then(Value::as_str) == Some("tools/list"))
            .then(|| m.get("id").cloned().unwrap_or(Value::Null))
    };
    match &v {
        Value::Array(items) => items.iter().filter_map(one).collect(),
        other => one(other).into_iter().collect(),
    }
}

/// The SHA-256 (hex) of a tool's definition: its `name`, `description` and
/// `inputSchema`, serialized with sorted keys and no spaces ([`canonical`]).
pub fn definition_hash(tool: &Map<String, Value>) -> String {
    let def = json!({
        "name": tool.get("name").cloned().unwrap_or(Value::Null),
        "description": tool.get("description").cloned().unwrap_or(Value::Null),
        "inputSchema": tool.get("inputSchema").cloned().unwrap_or(Value::Null),
    });
    let mut text = String::new();
    canonical(&def, &mut text);
    Sha256::digest(text.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

/// JSON with every object's keys sorted and no whitespace (Python's
/// `json.dumps(v, sort_keys=True, separators=(",", ":"), ensure_ascii=False)`).
pub fn canonical(v: &Value, out: &mut String) {
    match v {
        Value::Object(m) => {
            let mut keys: Vec<&String> = m.keys().collect();
            keys.sort();
            out.push('{');
            for (i, k) in keys.into_iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                out.push_str(&serde_json::to_string(k).unwrap_or_default());
                out.push(':');
                if let Some(x) = m.get(k) {
                    canonical(x, out);
                }
            }
            out.push('}');
        }
        Value::Array(a) => {
            out.push('[');
            for (i, x) in a.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                canonical(x, out);
            }
            out.push(']');
        }
        scalar => out.push_str(&serde_json::to_string(scalar).unwrap_or_default()),
    }
}

/// A pinned tool whose definition changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PinMismatch {
    pub tool: String,
    pub pinned: String,
    pub seen: String,
}

/// What filtering one answer did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Filtered {
    /// Tools removed, by name.
    pub hidden: Vec<String>,
    /// The answer rewritten, if anything was removed.
    pub body: Option<Vec<u8>>,
}

/// The request as the rules saw it, to ask them about each listed tool.
pub struct Caller<'a> {
    pub view: RequestView<'a>,
}

impl Caller<'_> {
    /// Whether the rules would refuse a `tools/call` of `name` (with no
    /// arguments: a tool refused only for some arguments stays listed).
    fn may_not_call(&self, rules: &Rules, name: &str) -> bool {
        let call = json!({"jsonrpc": "2.0", "id": 0, "method": "tools/call",
                          "params": {"name": name, "arguments": {}}});
        let body = serde_json::to_vec(&call).unwrap_or_default();
        let view = RequestView {
            body: Some(&body),
            ..self.view
        };
        matches!(rules.evaluate(&view).decision, Ruling::Deny(_))
    }
}

/// Filters one JSON-RPC answer (or a batch of them) to a `tools/list`
/// request: tools the caller may not call are removed; a pinned tool whose
/// definition changed is an error. Anything that is not a tools list
/// passes unchanged.
pub fn filter_answer(
    policy: &McpPolicy,
    rules: &Rules,
    caller: &Caller,
    body: &[u8],
) -> Result<Filtered, PinMismatch> {
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
        return Ok(Filtered::default());
    };
    let mut hidden = Vec::new();
    match &mut v {
        Value::Array(items) => {
            for item in items.iter_mut() {
                filter_one(policy, rules, caller, item, &mut hidden)?;
            }
        }
        one => filter_one(policy, rules, caller, one, &mut hidden)?,
    }
    let body = (!hidden.is_empty()).then(|| serde_json::to_vec(&v).unwrap_or_default());
    Ok(Filtered { hidden, body })
}

fn filter_one(
    policy: &McpPolicy,
    rules: &Rules,
    caller: &Caller,
    answer: &mut Value,
    hidden: &mut Vec<String>,
) -> Result<(), PinMismatch> {
    let Some(tools) = answer
        .get_mut("result")
        .and_then(|r| r.get_mut("tools"))
        .and_then(Value::as_array_mut)
    else {
        return Ok(());
    };
    for tool in tools.iter().filter_map(Value::as_object) {
        let name = tool.get("name").and_then(Value::as_str).unwrap_or_default();
        if let Some(pinned) = policy.pins.get(name) {
            let seen = definition_hash(tool);
            if &seen != pinned {
                return Err(PinMismatch {
                    tool: name.to_string(),
                    pinned: pinned.clone(),
                    seen,
                });
            }
        }
    }
    if policy.filter_tools_list {
        tools.retain(|t| {
            let name = t.get("name").and_then(Value::as_str).unwrap_or_default();
            let keep = !caller.may_not_call(rules, name);
            if !keep {
                hidden.push(name.to_string());
            }
            keep
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests;
