//! The policy: JSON from the Wasm filter's `configuration`, parsed once in
//! `on_configure` and compiled into a validated [`Policy`].
//!
//! Parsing is strict: unknown fields are errors, and every error names the
//! field path (`limits.max_body_bytes`) so an operator can fix it from the one
//! log line Envoy prints before refusing the plugin.

use serde::Deserialize;

use crate::approval::{self, ApprovalConfig, ApprovalDoc};
use crate::audit::config::{AuditConfig, AuditDoc};
use crate::body::{Inspection, InspectionDoc};
use crate::identity::authenticate::Authenticator;
use crate::identity::config::IdentityDoc;
use crate::mask::{self, Masking, MaskingDoc};
use crate::mcp::{McpPolicy, McpSectionDoc};
use crate::policy::{Mode, PolicyError};
use crate::quota::{Quotas, QuotasDoc};
use crate::rules::{self, config::ActionKind, DefaultAction, RuleDoc, Rules};

/// The most a policy may ask Envoy to buffer for one body: bodies are held in
/// the worker's memory while they are scanned.
pub const MAX_BODY_BYTES_CEILING: u64 = 64 * 1024 * 1024;

/// `limits.on_oversize`: accepted for clarity in policies, with one choice.
/// A body larger than `limits.max_body_bytes` is refused (413 on requests,
/// 502 on responses that must be masked): it cannot be scanned, so it is
/// never passed on. There is nothing to carry into the compiled policy.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
enum OnOversize {
    #[default]
    Deny,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyDoc {
    #[serde(default)]
    mode: Mode,
    #[serde(default = "default_true")]
    require_tls: bool,
    #[serde(default)]
    limits: LimitsDoc,
    #[serde(default)]
    identity: Option<IdentityDoc>,
    #[serde(default)]
    masking: MaskingDoc,
    #[serde(default)]
    rules: Vec<RuleDoc>,
    #[serde(default)]
    default_action: Option<DefaultAction>,
    #[serde(default)]
    approval: Option<ApprovalDoc>,
    #[serde(default)]
    audit: AuditDoc,
    #[serde(default)]
    inspection: InspectionDoc,
    #[serde(default)]
    quotas: Option<QuotasDoc>,
    #[serde(default)]
    mcp: Option<McpSectionDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct LimitsDoc {
    #[serde(default = "default_max_body_bytes")]
    max_body_bytes: u64,
    #[serde(default, rename = "on_oversize")]
    _on_oversize: OnOversize,
}

impl Default for LimitsDoc {
    fn default() -> Self {
        LimitsDoc {
            max_body_bytes: default_max_body_bytes(),
            _on_oversize: OnOversize::default(),
        }
    }
}

fn default_true() -> bool {
    true
}

fn default_max_body_bytes() -> u64 {
    1024 * 1024
}

/// A compiled, validated policy, shared by every HTTP context of a worker.
#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: Mode,
    pub require_tls: bool,
    pub limits: Limits,
    /// JWT validation (`identity`); `None`: requests carry no identity.
    pub auth: Option<Authenticator>,
    /// Masking profiles by name (`masking`), used by `mask` rules.
    pub masking: Masking,
    /// `rules` and `default_action` (see `docs/rules.md`).
    pub rules: Rules,
    /// How `require_approval` rules reach the approver; required when one exists.
    pub approval: Option<ApprovalConfig>,
    /// Session recording and the collector sink (`audit`).
    pub audit: AuditConfig,
    /// Unreadable bodies, JSON depth, method overrides (`inspection`).
    pub inspection: Inspection,
    /// Blast-radius limits per verified identity (`quotas`).
    pub quotas: Option<Quotas>,
    /// MCP tool lists filtered and tool definitions pinned (`mcp`).
    pub mcp: Option<McpPolicy>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Limits {
    pub max_body_bytes: u64,
}

impl Policy {
    /// Parses and validates a policy document.
    pub fn from_json(text: &[u8]) -> Result<Policy, PolicyError> {
        if text.iter().all(u8::is_ascii_whitespace) {
            return Err(PolicyError::at(
                ".",
                "the plugin configuration is empty; transit-guard needs a policy",
            ));
        }
        Policy::compile(crate::policy::doc::from_slice(text)?)
    }

    fn compile(doc: PolicyDoc) -> Result<Policy, PolicyError> {
        let max = doc.limits.max_body_bytes;
        if max == 0 || max > MAX_BODY_BYTES_CEILING {
            return Err(PolicyError::at(
                "limits.max_body_bytes",
                format!("must be between 1 and {MAX_BODY_BYTES_CEILING}, got {max}"),
            ));
        }
        let auth = match doc.identity {
            Some(d) => Some(Authenticator::new(crate::identity::config::compile(d)?)),
            None => None,
        };
        let mut masking = mask::compile(&doc.masking)?;
        if doc.approval.is_none() {
            if let Some(i) = doc
                .rules
                .iter()
                .position(|r| r.action == ActionKind::RequireApproval)
            {
                return Err(PolicyError::at(
                    &format!("rules[{i}].action"),
                    "require_approval needs the policy's \"approval\" section (how to reach the approver)",
                ));
            }
        }
        let approval = match doc.approval {
            Some(d) => Some(approval::compile(d, &masking)?),
            None => None,
        };
        let quotas = match doc.quotas {
            Some(q) => {
                let names: Vec<&str> = doc.rules.iter().map(|r| r.name.as_str()).collect();
                Some(crate::quota::compile(q, &names, auth.is_some())?)
            }
            None => None,
        };
        let mcp = doc.mcp.map(crate::mcp::compile).transpose()?;
        let rules = rules::compile(doc.rules, doc.default_action)?;
        for r in rules.mask_references() {
            // A response value has nothing to be restored into.
            let tokenizes = masking.profile(&r.profile).and_then(|m| m.tokenizes());
            if let (Some(key), true) = (tokenizes, r.path.ends_with(".response")) {
                return Err(PolicyError::at(
                    &r.path,
                    format!(
                        "profile {:?} tokenizes (masking.profiles.{}.strategies.{key}): tokenize is for request profiles only",
                        r.profile, r.profile
                    ),
                ));
            }
            if masking.profile(&r.profile).is_none() {
                let known: Vec<&str> = masking.profile_names().collect();
                return Err(PolicyError::at(
                    &r.path,
                    format!(
                        "no masking profile {:?} (masking.profiles has: {})",
                        r.profile,
                        if known.is_empty() {
                            "none".to_string()
                        } else {
                            known.join(", ")
                        }
                    ),
                ));
            }
        }
        // A list of profiles is masked in one pass where it can be.
        for list in rules.mask_lists() {
            masking.add_chain(&list);
        }
        let audit = crate::audit::config::compile(doc.audit, &masking)?;
        let inspection = crate::body::config::compile(&doc.inspection)?;
        Ok(Policy {
            audit,
            inspection,
            mode: doc.mode,
            require_tls: doc.require_tls,
            limits: Limits {
                max_body_bytes: max,
            },
            auth,
            masking,
            rules,
            approval,
            quotas,
            mcp,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn err(json: &str) -> PolicyError {
        Policy::from_json(json.as_bytes()).unwrap_err()
    }

    #[test]
    fn minimal_policy_gets_secure_defaults() {
        let p = Policy::from_json(b"{}").unwrap();
        assert_eq!(p.mode, Mode::Enforce);
        assert!(p.require_tls);
        assert_eq!(p.limits.max_body_bytes, 1024 * 1024);
    }

    #[test]
    fn full_policy_parses() {
        let p = Policy::from_json(
            br#"{"mode":"monitor","require_tls":false,
                 "limits":{"max_body_bytes":4096,"on_oversize":"deny"}}"#,
        )
        .unwrap();
        assert_eq!(p.mode, Mode::Monitor);
        assert!(!p.require_tls);
        assert_eq!(p.limits.max_body_bytes, 4096);
    }

    #[test]
    fn unknown_field_is_refused_and_named() {
        let e = err(r#"{"mdoe":"enforce"}"#);
        assert_eq!(e.path, "mdoe");
        assert!(e.reason.contains("unknown field `mdoe`"), "{e}");
    }

    #[test]
    fn nested_unknown_field_is_named_by_its_path() {
        let e = err(r#"{"limits":{"max_bytes":1}}"#);
        assert_eq!(e.path, "limits.max_bytes");
        assert!(e.reason.contains("unknown field `max_bytes`"), "{e}");
    }

    #[test]
    fn wrong_type_names_the_field() {
        let e = err(r#"{"limits":{"max_body_bytes":"lots"}}"#);
        assert_eq!(e.path, "limits.max_body_bytes");
        assert!(e.reason.contains("expected u64"), "{e}");
        assert_eq!(
            e.to_string(),
            "invalid policy at limits.max_body_bytes: invalid type: string \"lots\", expected u64"
        );
    }

    #[test]
    fn bad_enum_value_lists_the_choices() {
        let e = err(r#"{"mode":"block"}"#);
        assert_eq!(e.path, "mode");
        assert!(
            e.reason.contains("`enforce`") && e.reason.contains("`monitor`"),
            "{e}"
        );
    }

    #[test]
    fn out_of_range_limit_is_refused() {
        assert_eq!(
            err(r#"{"limits":{"max_body_bytes":0}}"#).path,
            "limits.max_body_bytes"
        );
        let e = err(r#"{"limits":{"max_body_bytes":1000000000}}"#);
        assert_eq!(e.path, "limits.max_body_bytes");
        assert!(e.reason.contains("between 1 and"), "{e}");
    }

    #[test]
    fn rules_and_masking_sections_are_compiled() {
        let p = Policy::from_json(
            br#"{"masking":{"profiles":{"pii":{"detectors":["email"]}}},
                 "default_action":"allow",
                 "rules":[{"name":"pii-out","match":{},"action":"mask","mask":{"response":["pii"]}}]}"#,
        )
        .unwrap();
        assert_eq!(p.rules.len(), 1);
        assert!(p.masking.profile("pii").is_some());
    }

    /// Each rule's list is compiled into one pass when the policy loads,
    /// as a decision carries it (deduplicated); other lists are not.
    #[test]
    fn a_rules_list_of_profiles_is_compiled_once_at_load() {
        let p = Policy::from_json(
            br#"{"masking":{"profiles":{"pii":{"detectors":["email"]},"cards":{"detectors":["credit_card"]}}},
                 "default_action":"allow",
                 "rules":[{"name":"out","match":{},"action":"mask","mask":{"response":["pii","cards","pii"],"request":["pii"]}}]}"#,
        )
        .unwrap();
        let list = |l: &[&str]| l.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(p.masking.chain(&list(&["pii", "cards"])).is_some());
        assert!(p.masking.chain(&list(&["cards", "pii"])).is_none());
        assert!(p.masking.chain(&list(&["pii"])).is_none());
    }

    #[test]
    fn a_rule_naming_a_missing_profile_is_refused_at_its_path() {
        let e = err(
            r#"{"masking":{"profiles":{"pii":{}}},"default_action":"allow",
                 "rules":[{"name":"a","match":{},"action":"mask","mask":{"response":["secrets"]}}]}"#,
        );
        assert_eq!(e.path, "rules[0].mask.response");
        assert!(
            e.reason
                .contains("no masking profile \"secrets\" (masking.profiles has: pii)"),
            "{e}"
        );
    }

    #[test]
    fn a_tokenizing_profile_is_refused_on_responses_and_allowed_on_requests() {
        let policy = |dir: &str| {
            format!(
                r#"{{"masking":{{"profiles":{{"pii":{{"detectors":["email"],"strategies":{{"email":"tokenize"}}}}}}}},
                    "default_action":"allow",
                    "rules":[{{"name":"a","match":{{}},"action":"mask","mask":{{"{dir}":["pii"]}}}}]}}"#
            )
        };
        let e = err(&policy("response"));
        assert_eq!(e.path, "rules[0].mask.response");
        assert!(
            e.reason.contains("masking.profiles.pii.strategies.email")
                && e.reason.contains("request profiles only"),
            "{e}"
        );
        assert!(!e.to_string().contains('\n'), "one line: {e}");
        let p = Policy::from_json(policy("request").as_bytes()).unwrap();
        assert_eq!(p.masking.profile("pii").unwrap().tokenizes(), Some("email"));
        let e = err(r#"{"masking":{"profiles":{"p":{"strategies":{"default":"tokenise"}}}}}"#);
        assert_eq!(e.path, "masking.profiles.p.strategies.default");
        assert!(e.reason.contains("\"tokenize\""), "{e}");
    }

    #[test]
    fn errors_inside_sections_name_their_full_path() {
        let e = err(
            r#"{"default_action":"allow","rules":[{"name":"a","match":{"path":{"regex":"("}},"action":"deny"}]}"#,
        );
        assert_eq!(e.path, "rules[0].match.path.regex");
        let e = err(r#"{"masking":{"profiles":{"p":{"custom":[{"name":"x","regex":"("}]}}}}"#);
        assert!(e.path.starts_with("masking.profiles.p.custom[0]"), "{e}");
        let e = err(r#"{"rules":[{"name":"a","match":{},"action":"deny"}]}"#);
        assert_eq!(e.path, "default_action");
    }

    #[test]
    fn a_section_given_twice_is_refused_not_merged_or_overwritten() {
        let e = err(r#"{"mode":"monitor","mode":"enforce"}"#);
        assert_eq!(e.path, "mode");
        assert!(e.reason.contains("duplicate member name `mode`"), "{e}");
        let e = err(
            r#"{"masking":{"profiles":{"pii":{"detectors":["email"]},"pii":{"detectors":[]}}}}"#,
        );
        assert_eq!(e.path, "masking.profiles.pii");
    }

    #[test]
    fn empty_and_malformed_documents_are_refused() {
        assert!(err("  ").reason.contains("empty"));
        let e = err(r#"{"mode":"enforce""#);
        assert_eq!(e.path, ".");
        assert!(e.reason.contains("EOF"), "{e}");
        let e = err(r#"{} trailing"#);
        assert!(e.reason.contains("trailing"), "{e}");
    }
}
