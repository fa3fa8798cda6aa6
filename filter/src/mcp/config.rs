//! The `mcp` section: what the filter does to MCP tool lists.
//!
//! ```json
//! "mcp": {
//!   "paths": ["/mcp"],
//!   "filter_tools_list": true,
//!   "pins": { "get_customer": "sha256:9f2c…" }
//! }
//! ```

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::policy::PolicyError;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct McpSectionDoc {
    #[serde(default = "default_paths")]
    paths: Vec<String>,
    #[serde(default = "default_true")]
    filter_tools_list: bool,
    #[serde(default)]
    pins: BTreeMap<String, String>,
}

fn default_paths() -> Vec<String> {
    vec!["/mcp".into()]
}

fn default_true() -> bool {
    true
}

/// The compiled `mcp` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct McpPolicy {
    /// Path prefixes where MCP (Streamable HTTP) is spoken.
    pub paths: Vec<String>,
    /// Remove from `tools/list` answers the tools the caller may not call.
    pub filter_tools_list: bool,
    /// Tool name -> the SHA-256 (hex) of its definition.
    pub pins: BTreeMap<String, String>,
}

impl McpPolicy {
    /// Whether a request to `path` may be an MCP message the filter reads.
    pub fn covers(&self, method: &str, path: &str) -> bool {
        method.eq_ignore_ascii_case("POST")
            && self.paths.iter().any(|p| path.starts_with(p.as_str()))
    }
}

pub fn compile(doc: McpSectionDoc) -> Result<McpPolicy, PolicyError> {
    if doc.paths.is_empty() || doc.paths.iter().any(|p| !p.starts_with('/')) {
        return Err(PolicyError::at(
            "mcp.paths",
            "give one or more path prefixes, each starting with /",
        ));
    }
    let mut pins = BTreeMap::new();
    for (tool, pin) in doc.pins {
        let hex = pin
            .strip_prefix("sha256:")
            .unwrap_or(&pin)
            .to_ascii_lowercase();
        if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(PolicyError::at(
                &format!("mcp.pins.{tool}"),
                "must be \"sha256:\" and 64 hex digits (`transit-guard`'s docs/mcp.md: how to compute it)",
            ));
        }
        pins.insert(tool, hex);
    }
    Ok(McpPolicy {
        paths: doc.paths,
        filter_tools_list: doc.filter_tools_list,
        pins,
    })
}
