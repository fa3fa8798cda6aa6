//! The filter's counters: every name in one place. Envoy shows them on
//! `/stats` as `wasmcustom.transit_guard.FAMILY.LABEL` and on
//! `/stats/prometheus` as `wasmcustom_transit_guard_FAMILY_LABEL`
//! (`docs/audit.md`, "Metrics").

use crate::envoy::Envoy;

/// A family of counters; the label is the name's last segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Family {
    /// Every request, by audit decision (`allowed`, `denied`, ...).
    Requests,
    /// Requests refused by a rule, by rule name.
    Denied,
    /// Masked values, by detector.
    Masked,
    /// Values replaced by `tokenize` tokens in requests, by detector.
    Tokenized,
    /// Tokens put back into responses, by detector.
    Restored,
    /// Failed token checks, by reason code.
    AuthFailures,
    /// Finished approval waits, by outcome code.
    Approvals,
    /// Failed JWKS fetches, by provider.
    JwksFetchFailures,
    /// Audit records (`dropped`: not published or not delivered).
    Audit,
    /// Requests over a `quotas` limit, by limit name.
    QuotaExceeded,
}

impl Family {
    pub fn as_str(self) -> &'static str {
        match self {
            Family::Requests => "requests",
            Family::Denied => "denied",
            Family::Masked => "masked",
            Family::Tokenized => "tokenized",
            Family::Restored => "restored",
            Family::AuthFailures => "auth_failures",
            Family::Approvals => "approvals",
            Family::JwksFetchFailures => "jwks_fetch_failures",
            Family::Audit => "audit",
            Family::QuotaExceeded => "quota_exceeded",
        }
    }
}

/// The counter's full name: `transit_guard.FAMILY.LABEL`, the label cut to
/// one segment of safe characters (stat names are dotted). The host calls
/// it once per counter, when it defines it.
pub fn name(family: &str, label: &str) -> String {
    let label: String = label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("transit_guard.{family}.{label}")
}

/// Adds `n` to a counter.
pub fn add(envoy: &impl Envoy, family: Family, label: &str, n: u64) {
    envoy.count(family.as_str(), label, n);
}

/// Adds one to a counter.
pub fn incr(envoy: &impl Envoy, family: Family, label: &str) {
    add(envoy, family, label, 1);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_become_one_safe_segment() {
        assert_eq!(
            name(Family::Denied.as_str(), "no-deletes"),
            "transit_guard.denied.no-deletes"
        );
        assert_eq!(
            name(Family::Denied.as_str(), "db/drop.table"),
            "transit_guard.denied.db_drop_table"
        );
        assert_eq!(
            name(Family::JwksFetchFailures.as_str(), "corp"),
            "transit_guard.jwks_fetch_failures.corp"
        );
    }
}
