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

    /// A deserialization error, blamed on the field `serde_path_to_error` saw.
    pub fn from_serde(e: &serde_path_to_error::Error<serde_json::Error>) -> Self {
        // A syntax error has no field to blame: serde_path_to_error says `?`.
        let path = match e.path().to_string() {
            p if p == "?" || p.is_empty() => ".".to_string(),
            p => p,
        };
        PolicyError::at(&path, strip_position(&e.inner().to_string()))
    }

    /// Trailing input after the document, or a syntax error found at the end.
    pub fn from_syntax(e: &serde_json::Error) -> Self {
        PolicyError::at(".", strip_position(&e.to_string()))
    }
}

/// serde_json appends " at line L column C"; keep it only when the path alone
/// would not locate the problem (syntax errors).
fn strip_position(msg: &str) -> String {
    match msg.rfind(" at line ") {
        Some(i) if !msg.starts_with("expected") && !msg.contains("EOF") => {
            msg.get(..i).unwrap_or(msg).to_string()
        }
        _ => msg.to_string(),
    }
}
