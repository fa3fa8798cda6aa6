//! The `audit` section: session recording limits and the optional HTTP
//! collector sink.
//!
//! ```json
//! "audit": {
//!   "record_max_bytes": 16384,
//!   "record_profile": "pii",
//!   "collector": { "cluster": "audit_collector", "path": "/v1/audit", "authority": "collector",
//!                  "batch_size": 100, "flush_ms": 1000, "queue_max": 10000, "timeout_ms": 2000 }
//! }
//! ```

use serde::Deserialize;

use crate::policy::PolicyError;
use std::collections::BTreeMap;

use crate::mask::{self, Masker, Masking, MaskingDoc};

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct AuditDoc {
    #[serde(default)]
    record_max_bytes: Option<usize>,
    #[serde(default)]
    record_profile: Option<String>,
    #[serde(default)]
    collector: Option<CollectorDoc>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct CollectorDoc {
    cluster: String,
    #[serde(default = "default_collector_path")]
    path: String,
    #[serde(default)]
    authority: Option<String>,
    #[serde(default = "default_batch_size")]
    batch_size: usize,
    #[serde(default = "default_flush_ms")]
    flush_ms: u64,
    #[serde(default = "default_queue_max")]
    queue_max: usize,
    #[serde(default = "default_timeout_ms")]
    timeout_ms: u64,
}

fn default_collector_path() -> String {
    "/v1/audit".into()
}
fn default_batch_size() -> usize {
    100
}
fn default_flush_ms() -> u64 {
    1000
}
fn default_queue_max() -> usize {
    10_000
}
fn default_timeout_ms() -> u64 {
    2000
}

/// The compiled `audit` section.
#[derive(Debug, Clone)]
pub struct AuditConfig {
    /// Most bytes of each body kept in a session recording.
    pub record_max_bytes: usize,
    /// Masks recorded bodies that no mask rule already masked.
    pub record_masker: Masker,
    pub collector: Option<CollectorConfig>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CollectorConfig {
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub batch_size: usize,
    pub flush_ms: u64,
    pub queue_max: usize,
    pub timeout_ms: u64,
}

pub const DEFAULT_RECORD_MAX_BYTES: usize = 16 * 1024;

/// Compiles the section; `masking` holds the policy's profiles.
pub fn compile(doc: AuditDoc, masking: &Masking) -> Result<AuditConfig, PolicyError> {
    let record_max_bytes = doc.record_max_bytes.unwrap_or(DEFAULT_RECORD_MAX_BYTES);
    if record_max_bytes == 0 || record_max_bytes > 1024 * 1024 {
        return Err(PolicyError::at(
            "audit.record_max_bytes",
            format!("must be between 1 and 1048576, got {record_max_bytes}"),
        ));
    }
    let record_masker = match &doc.record_profile {
        Some(name) => masking.profile(name).cloned().ok_or_else(|| {
            PolicyError::at(
                "audit.record_profile",
                format!("no masking profile {name:?}"),
            )
        })?,
        None => every_detector()?,
    };
    let collector = match doc.collector {
        None => None,
        Some(c) => {
            let at = |f: &str| format!("audit.collector.{f}");
            if c.cluster.is_empty() {
                return Err(PolicyError::at(
                    &at("cluster"),
                    "must name an Envoy cluster",
                ));
            }
            if !c.path.starts_with('/') {
                return Err(PolicyError::at(&at("path"), "must start with /"));
            }
            if !(1..=10_000).contains(&c.batch_size) {
                return Err(PolicyError::at(
                    &at("batch_size"),
                    "must be between 1 and 10000",
                ));
            }
            if !(10..=60_000).contains(&c.flush_ms) {
                return Err(PolicyError::at(
                    &at("flush_ms"),
                    "must be between 10 and 60000",
                ));
            }
            if !(1..=1_000_000).contains(&c.queue_max) {
                return Err(PolicyError::at(
                    &at("queue_max"),
                    "must be between 1 and 1000000",
                ));
            }
            if !(100..=60_000).contains(&c.timeout_ms) {
                return Err(PolicyError::at(
                    &at("timeout_ms"),
                    "must be between 100 and 60000",
                ));
            }
            Some(CollectorConfig {
                authority: c.authority.unwrap_or_else(|| c.cluster.clone()),
                cluster: c.cluster,
                path: c.path,
                batch_size: c.batch_size,
                flush_ms: c.flush_ms,
                queue_max: c.queue_max,
                timeout_ms: c.timeout_ms,
            })
        }
    };
    Ok(AuditConfig {
        record_max_bytes,
        record_masker,
        collector,
    })
}

/// A profile with every built-in detector: what recordings are masked with
/// unless the policy names a profile.
fn every_detector() -> Result<Masker, PolicyError> {
    let doc = MaskingDoc {
        hash_key: None,
        profiles: BTreeMap::from([("record".to_string(), Default::default())]),
    };
    mask::compile(&doc)?
        .profile("record")
        .cloned()
        .ok_or_else(|| PolicyError::at("audit", "cannot build the recording profile"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile_json(json: &str) -> Result<AuditConfig, PolicyError> {
        compile(serde_json::from_str(json).unwrap(), &Masking::default())
    }

    #[test]
    fn defaults_record_16_kib_masked_with_every_detector() {
        let c = compile_json("{}").unwrap();
        assert_eq!(c.record_max_bytes, DEFAULT_RECORD_MAX_BYTES);
        let out = c
            .record_masker
            .mask(Some("text/plain"), b"mail ada@example.com now");
        assert_eq!(out.counts.get("email"), Some(&1));
        assert!(c.collector.is_none());
    }

    #[test]
    fn collector_defaults_and_bounds() {
        let c = compile_json(r#"{"collector":{"cluster":"sink"}}"#).unwrap();
        let col = c.collector.unwrap();
        assert_eq!(col.authority, "sink");
        assert_eq!(col.path, "/v1/audit");
        let e = compile_json(r#"{"collector":{"cluster":"sink","batch_size":0}}"#).unwrap_err();
        assert_eq!(e.path, "audit.collector.batch_size");
        let e = compile_json(r#"{"record_profile":"nope"}"#).unwrap_err();
        assert_eq!(e.path, "audit.record_profile");
    }
}
