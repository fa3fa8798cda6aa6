//! The `approval` section of the policy: how the filter reaches the approver.
//!
//! ```json
//! "approval": {
//!   "cluster": "approver", "authority": "approver", "api_key": "…at least 16…",
//!   "max_wait_secs": 120, "poll_secs": 25, "timeout_ms": 5000,
//!   "preview_bytes": 2048, "preview_profile": "pii"
//! }
//! ```

use serde::Deserialize;

use crate::mask::{self, Masker, Masking, MaskingDoc};
use crate::policy::PolicyError;

/// The approver refuses previews over this many bytes (`docs/approver.md`):
/// the one figure in the wire crate both sides share.
pub use transit_guard_wire::MAX_PREVIEW_BYTES;
/// The approver caps a long-poll's `wait` at 30 s.
pub const MAX_POLL_SECS: u64 = 30;
/// Longer than any shipped route timeout (180 s) would be useless; 1 h is a
/// hard ceiling for configs with longer ones.
pub const MAX_WAIT_CEILING_SECS: u64 = 3600;
const MIN_API_KEY: usize = 16;

/// The `approval` section, as written.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApprovalDoc {
    /// The Envoy cluster of the approver.
    pub cluster: String,
    /// `:authority` of the callouts; default: the cluster name.
    #[serde(default)]
    pub authority: Option<String>,
    /// Sent as `x-approver-key`.
    pub api_key: String,
    #[serde(default = "default_max_wait_secs")]
    pub max_wait_secs: u64,
    #[serde(default = "default_poll_secs")]
    pub poll_secs: u64,
    #[serde(default = "default_timeout_ms")]
    pub timeout_ms: u64,
    #[serde(default = "default_preview_bytes")]
    pub preview_bytes: usize,
    /// A `masking.profiles` name; default: every built-in detector.
    #[serde(default)]
    pub preview_profile: Option<String>,
}

fn default_max_wait_secs() -> u64 {
    120
}
fn default_poll_secs() -> u64 {
    25
}
fn default_timeout_ms() -> u64 {
    5000
}
fn default_preview_bytes() -> usize {
    2048
}

/// The compiled `approval` section.
#[derive(Debug, Clone)]
pub struct ApprovalConfig {
    pub cluster: String,
    pub authority: String,
    pub api_key: String,
    pub max_wait_secs: u64,
    pub poll_secs: u64,
    pub timeout_ms: u64,
    pub preview_bytes: usize,
    /// Masks the preview before it leaves the gateway.
    pub preview_masker: Masker,
}

/// Compiles the section; `masking` is the policy's compiled masking section
/// (for `preview_profile`).
pub fn compile(doc: ApprovalDoc, masking: &Masking) -> Result<ApprovalConfig, PolicyError> {
    let at = |f: &str| format!("approval.{f}");
    if doc.cluster.trim().is_empty() {
        return Err(PolicyError::at(&at("cluster"), "must not be empty"));
    }
    let authority = doc.authority.unwrap_or_else(|| doc.cluster.clone());
    if authority.is_empty() || !authority.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(PolicyError::at(
            &at("authority"),
            "must be a non-empty host[:port] of visible ASCII characters",
        ));
    }
    if doc.api_key.len() < MIN_API_KEY {
        return Err(PolicyError::at(
            &at("api_key"),
            format!("must be at least {MIN_API_KEY} characters"),
        ));
    }
    // It travels as a header value: no spaces or control characters.
    if !doc.api_key.bytes().all(|b| b.is_ascii_graphic()) {
        return Err(PolicyError::at(
            &at("api_key"),
            "must be visible ASCII characters only (it is sent as a header)",
        ));
    }
    if doc.max_wait_secs == 0 || doc.max_wait_secs > MAX_WAIT_CEILING_SECS {
        return Err(PolicyError::at(
            &at("max_wait_secs"),
            format!(
                "must be between 1 and {MAX_WAIT_CEILING_SECS}, got {} (and below Envoy's route and stream idle timeouts)",
                doc.max_wait_secs
            ),
        ));
    }
    if doc.poll_secs == 0 || doc.poll_secs > MAX_POLL_SECS {
        return Err(PolicyError::at(
            &at("poll_secs"),
            format!(
                "must be between 1 and {MAX_POLL_SECS} (the approver's long-poll cap), got {}",
                doc.poll_secs
            ),
        ));
    }
    if doc.timeout_ms < 100 || doc.timeout_ms > 60_000 {
        return Err(PolicyError::at(
            &at("timeout_ms"),
            format!("must be between 100 and 60000, got {}", doc.timeout_ms),
        ));
    }
    if doc.preview_bytes > MAX_PREVIEW_BYTES {
        return Err(PolicyError::at(
            &at("preview_bytes"),
            format!(
                "must be at most {MAX_PREVIEW_BYTES} (the approver's limit), got {}",
                doc.preview_bytes
            ),
        ));
    }
    let preview_masker = match &doc.preview_profile {
        Some(name) => masking.profile(name).cloned().ok_or_else(|| {
            let known: Vec<&str> = masking.profile_names().collect();
            PolicyError::at(
                &at("preview_profile"),
                format!(
                    "no masking profile {name:?} (masking.profiles has: {})",
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                ),
            )
        })?,
        None => every_detector()?,
    };
    Ok(ApprovalConfig {
        cluster: doc.cluster,
        authority,
        api_key: doc.api_key,
        max_wait_secs: doc.max_wait_secs,
        poll_secs: doc.poll_secs,
        timeout_ms: doc.timeout_ms,
        preview_bytes: doc.preview_bytes,
        preview_masker,
    })
}

/// A profile with every built-in detector, redacting (no hash key needed).
fn every_detector() -> Result<Masker, PolicyError> {
    const NAME: &str = "approval-preview";
    let mut doc = MaskingDoc::default();
    doc.profiles.insert(NAME.to_string(), Default::default());
    mask::compile(&doc)?
        .profile(NAME)
        .cloned()
        .ok_or_else(|| PolicyError::at("approval", "cannot build the default preview masker"))
}
