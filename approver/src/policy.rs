//! Approval policies per rule: who may decide, how many distinct approvals a
//! request needs, and what grant a reviewer may give.
//!
//! Loaded from a JSON file (`--policies FILE`):
//!
//! ```json
//! {
//!   "default": {"approvals": 1},
//!   "rules": {
//!     "db-write": {"groups": ["dba"], "approvals": 2, "max_grant_secs": 3600},
//!     "card-export": {"grants": false}
//!   },
//!   "reviewers": {"alice": {"groups": ["dba"]}}
//! }
//! ```
//!
//! The filter's `rule` field selects the policy; when several rules fired
//! (`"a,b"`) every one of them applies: a reviewer must be allowed by each,
//! the most approvals and the shortest grant win, and a grant is allowed only
//! if every rule allows it. `reviewers` gives token reviewers their groups
//! (OIDC reviewers bring theirs in the ID token).

use std::collections::BTreeMap;
use std::path::Path;

use anyhow::{bail, Context, Result};
use serde::{Deserialize, Serialize};

use crate::error::ApiError;
use crate::model::{Decision, Reviewer, MAX_GRANT_TTL_SECS};

/// The most approvals a policy can ask for.
pub const MAX_APPROVALS: u32 = 10;

/// One rule's policy.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RulePolicy {
    /// Reviewer groups that may decide; empty: every reviewer.
    #[serde(default)]
    pub groups: Vec<String>,
    /// Distinct approvals needed (one denial denies).
    #[serde(default = "one")]
    pub approvals: u32,
    /// The longest time-bound grant a reviewer may give.
    #[serde(default = "max_grant")]
    pub max_grant_secs: u64,
    /// Whether "approve for ..." is allowed at all.
    #[serde(default = "yes")]
    pub grants: bool,
}

fn one() -> u32 {
    1
}
fn max_grant() -> u64 {
    MAX_GRANT_TTL_SECS
}
fn yes() -> bool {
    true
}

impl Default for RulePolicy {
    fn default() -> Self {
        RulePolicy {
            groups: Vec::new(),
            approvals: 1,
            max_grant_secs: MAX_GRANT_TTL_SECS,
            grants: true,
        }
    }
}

#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct ReviewerEntry {
    #[serde(default)]
    groups: Vec<String>,
}

/// Every rule's policy, and the groups of token reviewers.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Policies {
    #[serde(default)]
    default: RulePolicy,
    #[serde(default)]
    rules: BTreeMap<String, RulePolicy>,
    #[serde(default)]
    reviewers: BTreeMap<String, ReviewerEntry>,
}

/// The policy that applies to one approval, as the reviewer page shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct PolicyView {
    /// Each inner list: the reviewer must be in one of these groups (one list
    /// per rule that restricts reviewers).
    pub groups: Vec<Vec<String>>,
    pub approvals: u32,
    pub max_grant_secs: u64,
    pub grants: bool,
}

impl Policies {
    pub fn load(path: &Path) -> Result<Policies> {
        let text = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
        Policies::from_json(&text).with_context(|| format!("in {}", path.display()))
    }

    pub fn from_json(text: &[u8]) -> Result<Policies> {
        let p: Policies = serde_json::from_slice(text).context("invalid policies")?;
        for (name, r) in std::iter::once(("default", &p.default))
            .chain(p.rules.iter().map(|(n, r)| (n.as_str(), r)))
        {
            if !(1..=MAX_APPROVALS).contains(&r.approvals) {
                bail!("{name}: approvals must be between 1 and {MAX_APPROVALS}");
            }
            if r.max_grant_secs > MAX_GRANT_TTL_SECS {
                bail!("{name}: max_grant_secs is at most {MAX_GRANT_TTL_SECS}");
            }
        }
        Ok(p)
    }

    /// Groups of a token reviewer, from the `reviewers` section.
    pub fn reviewer_groups(&self, name: &str) -> Vec<String> {
        self.reviewers
            .get(name)
            .map(|r| r.groups.clone())
            .unwrap_or_default()
    }

    /// The policy for an approval's `rule` field (`,`-joined rule names).
    pub fn for_rule(&self, rule: &str) -> PolicyView {
        let mut view = PolicyView {
            groups: Vec::new(),
            approvals: 1,
            max_grant_secs: MAX_GRANT_TTL_SECS,
            grants: true,
        };
        for name in rule.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            let p = self.rules.get(name).unwrap_or(&self.default);
            if !p.groups.is_empty() && !view.groups.contains(&p.groups) {
                view.groups.push(p.groups.clone());
            }
            view.approvals = view.approvals.max(p.approvals);
            view.max_grant_secs = view.max_grant_secs.min(p.max_grant_secs);
            view.grants &= p.grants;
        }
        view
    }
}

impl PolicyView {
    /// May this reviewer decide at all?
    pub fn may_decide(&self, reviewer: &Reviewer) -> bool {
        self.groups
            .iter()
            .all(|any_of| any_of.iter().any(|g| reviewer.groups.contains(g)))
    }

    /// Refuses a reviewer outside the groups, or a grant the policy forbids.
    pub fn check(&self, reviewer: &Reviewer, decision: &Decision) -> Result<(), ApiError> {
        if !self.may_decide(reviewer) {
            return Err(ApiError::NotAllowed(format!(
                "reviewer {:?} is not in the groups this rule's policy names",
                reviewer.name
            )));
        }
        if let Decision::ApproveFor { ttl_secs } = decision {
            if !self.grants {
                return Err(ApiError::NotAllowed(
                    "this rule's policy allows no time-bound grant: approve once".into(),
                ));
            }
            if u64::try_from(*ttl_secs).unwrap_or(u64::MAX) > self.max_grant_secs {
                return Err(ApiError::NotAllowed(format!(
                    "this rule's policy allows grants of at most {} s",
                    self.max_grant_secs
                )));
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reviewer(groups: &[&str]) -> Reviewer {
        Reviewer {
            name: "r".into(),
            groups: groups.iter().map(|g| g.to_string()).collect(),
        }
    }

    fn policies() -> Policies {
        Policies::from_json(
            br#"{"rules": {
                "db": {"groups": ["dba"], "approvals": 2, "max_grant_secs": 600},
                "pay": {"groups": ["finance", "cfo"], "grants": false}
             },
             "reviewers": {"alice": {"groups": ["dba"]}}}"#,
        )
        .unwrap()
    }

    #[test]
    fn a_rule_without_policy_gets_the_default() {
        let v = policies().for_rule("other");
        assert_eq!(v.approvals, 1);
        assert!(v.grants && v.groups.is_empty());
        assert!(v.may_decide(&reviewer(&[])));
    }

    #[test]
    fn groups_approvals_and_grants_are_enforced() {
        let v = policies().for_rule("db");
        assert_eq!(v.approvals, 2);
        assert!(v.check(&reviewer(&["dba"]), &Decision::ApproveOnce).is_ok());
        assert!(v.check(&reviewer(&["dev"]), &Decision::Deny).is_err());
        assert!(v
            .check(&reviewer(&["dba"]), &Decision::ApproveFor { ttl_secs: 600 })
            .is_ok());
        assert!(v
            .check(&reviewer(&["dba"]), &Decision::ApproveFor { ttl_secs: 601 })
            .is_err());
        let pay = policies().for_rule("pay");
        assert!(pay
            .check(&reviewer(&["cfo"]), &Decision::ApproveFor { ttl_secs: 1 })
            .is_err());
        assert!(pay
            .check(&reviewer(&["cfo"]), &Decision::ApproveOnce)
            .is_ok());
    }

    #[test]
    fn several_rules_apply_together() {
        let v = policies().for_rule("db,pay");
        assert_eq!(v.approvals, 2);
        assert!(!v.grants);
        assert!(!v.may_decide(&reviewer(&["dba"])));
        assert!(v.may_decide(&reviewer(&["dba", "finance"])));
    }

    #[test]
    fn bad_policies_are_refused() {
        for bad in [
            r#"{"rules": {"x": {"approvals": 0}}}"#,
            r#"{"rules": {"x": {"approvals": 11}}}"#,
            r#"{"rules": {"x": {"max_grant_secs": 99999999999}}}"#,
            r#"{"rules": {"x": {"group": ["a"]}}}"#,
            r#"{"rule": {}}"#,
        ] {
            assert!(Policies::from_json(bad.as_bytes()).is_err(), "{bad}");
        }
        assert_eq!(policies().reviewer_groups("alice"), vec!["dba".to_string()]);
        assert!(policies().reviewer_groups("bob").is_empty());
    }
}
