use std::fmt;

/// Why a policy was refused: the field path and the reason. Envoy logs it as
/// `transit-guard: invalid policy at PATH: REASON` and refuses the plugin.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PolicyError {
    /// Dotted path to the offending field (`limits.max_body_bytes`; for an
    /// unknown field, the unknown field's own path), or `.` for the document.
    pub path: String,
    pub reason: String,
}

impl fmt::Display for PolicyError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "invalid policy at {}: {}", self.path, self.reason)
    }
}

impl std::error::Error for PolicyError {}

impl PolicyError {
    /// An error at `path` (dotted, with `[i]` for list items: `rules[2].match`).
    pub fn at(path: &str, reason: impl Into<String>) -> Self {
        PolicyError {
            path: path.to_string(),
            reason: reason.into(),
        }
    }

    /// A document serde_json cannot parse (syntax, trailing input): no field
    /// to blame, so serde_json's line and column stay in the reason.
    pub fn from_syntax(e: &serde_json::Error) -> Self {
        PolicyError::at(".", e.to_string())
    }
}
