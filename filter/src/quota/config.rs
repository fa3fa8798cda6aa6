//! The `quotas` section: blast-radius limits per verified identity.
//!
//! ```json
//! "quotas": {
//!   "max_identities": 4096,
//!   "limits": [
//!     { "name": "requests", "counts": "requests", "max": 600, "window_secs": 60 },
//!     { "name": "approval-asks", "counts": "rule_matches", "rule": "export",
//!       "max": 20, "window_secs": 3600 },
//!     { "name": "download", "counts": "response_bytes", "max": 10485760, "window_secs": 3600 }
//!   ]
//! }
//! ```

use serde::Deserialize;
use sha2::{Digest, Sha256};

use crate::policy::PolicyError;

/// The most limits one policy may set: every request reads and writes one
/// slot holding all of them.
pub const MAX_LIMITS: usize = 16;
/// The most identities counted at once (bounded shared memory).
pub const MAX_IDENTITIES_CEILING: u32 = 1 << 20;
/// The longest window: a day.
pub const MAX_WINDOW_SECS: u64 = 86_400;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct QuotasDoc {
    #[serde(default = "default_max_identities")]
    max_identities: u32,
    limits: Vec<LimitDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitDoc {
    name: String,
    counts: Counts,
    #[serde(default)]
    rule: Option<String>,
    max: u64,
    window_secs: u64,
}

fn default_max_identities() -> u32 {
    4096
}

/// What a limit counts, per identity and window.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Counts {
    /// Requests that passed authentication and were not refused by a rule.
    Requests,
    /// Request bytes Envoy received (declared `content-length` is checked up front).
    RequestBytes,
    /// Response bytes sent to the agent.
    ResponseBytes,
    /// Times the named rule was carried out (e.g. approval asks).
    RuleMatches,
}

impl Counts {
    pub fn is_bytes(self) -> bool {
        matches!(self, Counts::RequestBytes | Counts::ResponseBytes)
    }
}

/// One compiled limit.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limit {
    pub name: String,
    pub counts: Counts,
    /// For `rule_matches`: the rule counted.
    pub rule: Option<String>,
    pub max: u64,
    pub window_secs: u64,
}

/// The compiled `quotas` section.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Quotas {
    pub max_identities: u32,
    pub limits: Vec<Limit>,
    /// Shared-data key prefix: a digest of the limits, so a changed policy
    /// never reads counters laid out for another.
    pub namespace: String,
}

/// Compiles the section; `rule_names` are the policy's rules (a
/// `rule_matches` limit must name one), `has_identity` whether the policy
/// verifies tokens (limits are per verified identity).
pub fn compile(
    doc: QuotasDoc,
    rule_names: &[&str],
    has_identity: bool,
) -> Result<Quotas, PolicyError> {
    if !has_identity {
        return Err(PolicyError::at(
            "quotas",
            "limits are per verified identity: the policy needs an \"identity\" section",
        ));
    }
    if doc.max_identities == 0 || doc.max_identities > MAX_IDENTITIES_CEILING {
        return Err(PolicyError::at(
            "quotas.max_identities",
            format!(
                "must be between 1 and {MAX_IDENTITIES_CEILING}, got {}",
                doc.max_identities
            ),
        ));
    }
    if doc.limits.is_empty() || doc.limits.len() > MAX_LIMITS {
        return Err(PolicyError::at(
            "quotas.limits",
            format!("give 1 to {MAX_LIMITS} limits"),
        ));
    }
    let mut limits: Vec<Limit> = Vec::with_capacity(doc.limits.len());
    for (i, d) in doc.limits.into_iter().enumerate() {
        let at = |f: &str| format!("quotas.limits[{i}].{f}");
        let name_ok = !d.name.is_empty()
            && d.name.len() <= 64
            && d.name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_'));
        // `uncounted` labels the metric of bytes that could not be counted.
        if !name_ok || d.name == "uncounted" {
            return Err(PolicyError::at(
                &at("name"),
                format!(
                    "invalid limit name {:?}: 1 to 64 of A-Z a-z 0-9 - _, not \"uncounted\"",
                    d.name
                ),
            ));
        }
        if limits.iter().any(|l| l.name == d.name) {
            return Err(PolicyError::at(
                &at("name"),
                format!("duplicate limit name {:?}", d.name),
            ));
        }
        if d.max == 0 {
            return Err(PolicyError::at(&at("max"), "must be at least 1"));
        }
        if d.window_secs == 0 || d.window_secs > MAX_WINDOW_SECS {
            return Err(PolicyError::at(
                &at("window_secs"),
                format!("must be between 1 and {MAX_WINDOW_SECS}"),
            ));
        }
        match (d.counts, &d.rule) {
            (Counts::RuleMatches, None) => {
                return Err(PolicyError::at(
                    &at("rule"),
                    "`rule_matches` needs the rule it counts",
                ))
            }
            (Counts::RuleMatches, Some(r)) if !rule_names.contains(&r.as_str()) => {
                return Err(PolicyError::at(&at("rule"), format!("no rule named {r:?}")))
            }
            (Counts::RuleMatches, Some(_)) | (_, None) => {}
            (_, Some(_)) => {
                return Err(PolicyError::at(
                    &at("rule"),
                    "only for `counts: rule_matches`",
                ))
            }
        }
        limits.push(Limit {
            name: d.name,
            counts: d.counts,
            rule: d.rule,
            max: d.max,
            window_secs: d.window_secs,
        });
    }
    let namespace = namespace(doc.max_identities, &limits);
    Ok(Quotas {
        max_identities: doc.max_identities,
        limits,
        namespace,
    })
}

fn namespace(max_identities: u32, limits: &[Limit]) -> String {
    let mut spec = format!("{max_identities}");
    for l in limits {
        spec.push_str(&format!(
            "|{}:{:?}:{:?}:{}:{}",
            l.name, l.counts, l.rule, l.max, l.window_secs
        ));
    }
    let digest = Sha256::digest(spec.as_bytes());
    let hex: String = digest.iter().take(6).map(|b| format!("{b:02x}")).collect();
    format!("transit_guard.quota.{hex}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn compile_json(json: &str, rules: &[&str]) -> Result<Quotas, PolicyError> {
        let doc: QuotasDoc = serde_json::from_str(json).unwrap();
        compile(doc, rules, true)
    }

    #[test]
    fn limits_compile_and_the_namespace_follows_them() {
        let a = compile_json(
            r#"{"limits":[{"name":"asks","counts":"rule_matches","rule":"export","max":20,"window_secs":3600}]}"#,
            &["export"],
        )
        .unwrap();
        assert_eq!(a.max_identities, 4096);
        assert_eq!(a.limits[0].rule.as_deref(), Some("export"));
        let b = compile_json(
            r#"{"limits":[{"name":"asks","counts":"rule_matches","rule":"export","max":21,"window_secs":3600}]}"#,
            &["export"],
        )
        .unwrap();
        assert_ne!(a.namespace, b.namespace);
    }

    #[test]
    fn mistakes_are_named_by_their_path() {
        let e = compile_json(
            r#"{"limits":[{"name":"a","counts":"rule_matches","rule":"nope","max":1,"window_secs":1}]}"#,
            &["export"],
        )
        .unwrap_err();
        assert_eq!(e.path, "quotas.limits[0].rule");
        let e = compile_json(
            r#"{"limits":[{"name":"a","counts":"requests","max":0,"window_secs":1}]}"#,
            &[],
        )
        .unwrap_err();
        assert_eq!(e.path, "quotas.limits[0].max");
        let e = compile_json(
            r#"{"limits":[{"name":"a","counts":"requests","max":1,"window_secs":1},
                          {"name":"a","counts":"requests","max":1,"window_secs":1}]}"#,
            &[],
        )
        .unwrap_err();
        assert_eq!(e.path, "quotas.limits[1].name");
        let e = compile_json(
            r#"{"limits":[{"name":"a","counts":"requests","rule":"x","max":1,"window_secs":1}]}"#,
            &["x"],
        )
        .unwrap_err();
        assert_eq!(e.path, "quotas.limits[0].rule");
        let e = compile_json(
            r#"{"limits":[{"name":"uncounted","counts":"requests","max":1,"window_secs":1}]}"#,
            &[],
        )
        .unwrap_err();
        assert_eq!(e.path, "quotas.limits[0].name");
        let e = compile_json(r#"{"limits":[]}"#, &[]).unwrap_err();
        assert_eq!(e.path, "quotas.limits");
    }

    #[test]
    fn quotas_need_an_identity_section() {
        let doc: QuotasDoc = serde_json::from_str(
            r#"{"limits":[{"name":"a","counts":"requests","max":1,"window_secs":1}]}"#,
        )
        .unwrap();
        assert_eq!(compile(doc, &[], false).unwrap_err().path, "quotas");
    }
}
