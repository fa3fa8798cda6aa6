//! The policy's `inspection` section: what to do with bodies the filter
//! cannot read, how deep JSON may nest, and HTTP method overrides.
//!
//! ```json
//! "inspection": { "unreadable": "refuse", "max_json_depth": 1000, "method_overrides": "refuse" }
//! ```

use serde::Deserialize;

use super::json::MAX_DEPTH_CEILING;
use crate::policy::PolicyError;

/// What to do with a body the filter cannot read (`docs/policy.md`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnUnreadable {
    /// 400 (request) or 502 (response), audited with the reason.
    #[default]
    Refuse,
    /// Scan the raw bytes as text and go on. Weaker: an upstream that reads
    /// the body another way (escapes, another charset) sees what rules and
    /// masks did not.
    ScanAsText,
}

/// What to do with `X-HTTP-Method-Override`, `X-HTTP-Method`,
/// `X-Method-Override` and `_method` (query, form field, JSON member).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum OnMethodOverride {
    /// 400 before any rule runs: rules judge the method the upstream acts on.
    #[default]
    Refuse,
    /// Pass it on. Weaker: rules see the request line's method only.
    Allow,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct InspectionDoc {
    #[serde(default)]
    pub unreadable: OnUnreadable,
    #[serde(default = "default_depth")]
    pub max_json_depth: usize,
    #[serde(default)]
    pub method_overrides: OnMethodOverride,
}

impl Default for InspectionDoc {
    fn default() -> Self {
        InspectionDoc {
            unreadable: OnUnreadable::default(),
            max_json_depth: default_depth(),
            method_overrides: OnMethodOverride::default(),
        }
    }
}

fn default_depth() -> usize {
    1000
}

/// The compiled section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Inspection {
    pub unreadable: OnUnreadable,
    pub max_json_depth: usize,
    pub method_overrides: OnMethodOverride,
}

impl Default for Inspection {
    fn default() -> Self {
        // The defaults always compile.
        compile(&InspectionDoc::default()).unwrap_or(Inspection {
            unreadable: OnUnreadable::Refuse,
            max_json_depth: default_depth(),
            method_overrides: OnMethodOverride::Refuse,
        })
    }
}

pub fn compile(doc: &InspectionDoc) -> Result<Inspection, PolicyError> {
    if doc.max_json_depth == 0 || doc.max_json_depth > MAX_DEPTH_CEILING {
        return Err(PolicyError::at(
            "inspection.max_json_depth",
            format!(
                "must be between 1 and {MAX_DEPTH_CEILING}, got {}",
                doc.max_json_depth
            ),
        ));
    }
    Ok(Inspection {
        unreadable: doc.unreadable,
        max_json_depth: doc.max_json_depth,
        method_overrides: doc.method_overrides,
    })
}
