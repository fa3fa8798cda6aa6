//! `transit-guard test`: policy unit tests.
//!
//! A cases file (JSON, or YAML for `.yaml`/`.yml`):
//!
//! ```yaml
//! cases:
//!   - name: support reads a customer
//!     request: { method: GET, authority: api.internal, path: /customers/42,
//!                identity: { subject: agent-1, groups: [support] } }
//!     expect: { decision: mask, fired: [customers-read], mask: { response: [pii] } }
//! ```
//!
//! `expect.decision` is required; every other expectation is checked only
//! when given.

use serde::Deserialize;
use transit_guard::rules::{Rules, Ruling};

use crate::explain::{decision_line, fired_line};
use crate::input::{Request, RequestDoc};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CasesDoc {
    pub cases: Vec<CaseDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CaseDoc {
    #[serde(default)]
    pub name: Option<String>,
    pub request: RequestDoc,
    pub expect: Expect,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Kind {
    Allow,
    Mask,
    RequireApproval,
    Deny,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Expect {
    /// The final decision.
    pub decision: Kind,
    /// For `deny`: the rule that denied.
    #[serde(default)]
    pub rule: Option<String>,
    /// For `deny`: `true` when `default_action` denied (no rule).
    #[serde(default)]
    pub by_default: Option<bool>,
    /// For `deny`: the status.
    #[serde(default)]
    pub status: Option<u16>,
    /// Exactly the rules that fire (enforced and monitor), in policy order.
    #[serde(default)]
    pub fired: Option<Vec<String>>,
    /// For `mask` and `require_approval`: the profiles, per direction.
    #[serde(default)]
    pub mask: Option<MaskExpect>,
    /// For `require_approval`: the approval rules.
    #[serde(default)]
    pub approval_rules: Option<Vec<String>>,
    /// Whether the headers phase holds the request for its body.
    #[serde(default)]
    pub needs_body: Option<bool>,
    /// What enforcing the monitor rules would decide, or `none` for no difference.
    #[serde(default)]
    pub monitor_decision: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskExpect {
    #[serde(default)]
    pub request: Vec<String>,
    #[serde(default)]
    pub response: Vec<String>,
}

fn kind_str(k: &Kind) -> &'static str {
    match k {
        Kind::Allow => "allow",
        Kind::Mask => "mask",
        Kind::RequireApproval => "require_approval",
        Kind::Deny => "deny",
    }
}

/// Runs one case: `Ok(())` or the reasons it failed.
pub fn run_case(rules: &Rules, case: &CaseDoc) -> Result<(), Vec<String>> {
    let req = Request::from_doc(&case.request).map_err(|e| vec![format!("bad request: {e}")])?;
    let head = rules.evaluate(&req.view(false));
    let e = rules.evaluate(&req.view(true));
    let x = &case.expect;
    let mut why = Vec::new();

    let got = e.decision.kind();
    if got != kind_str(&x.decision) {
        why.push(format!(
            "expected decision {}, got {}",
            kind_str(&x.decision),
            decision_line(&e.decision)
        ));
    }
    if let Ruling::Deny(d) = &e.decision {
        if let Some(r) = &x.rule {
            if d.rule.as_ref() != Some(r) {
                why.push(format!(
                    "expected deny by rule {r:?}, got {}",
                    d.rule
                        .as_deref()
                        .map_or("default_action".to_string(), |r| format!("rule {r:?}"))
                ));
            }
        }
        if let Some(b) = x.by_default {
            if d.rule.is_none() != b {
                why.push(format!("expected by_default {b}, got {}", d.rule.is_none()));
            }
        }
        if let Some(s) = x.status {
            if d.status != s {
                why.push(format!("expected status {s}, got {}", d.status));
            }
        }
    }
    if let Some(f) = &x.fired {
        let got: Vec<&str> = e.fired.iter().map(|h| h.rule.as_str()).collect();
        if got != *f {
            why.push(format!("expected fired {f:?}, got {got:?}"));
        }
    }
    if let Some(m) = &x.mask {
        let plan = match &e.decision {
            Ruling::Mask(p) | Ruling::RequireApproval { masks: p, .. } => Some(p),
            _ => None,
        };
        match plan {
            Some(p) if p.request == m.request && p.response == m.response => {}
            Some(p) => why.push(format!(
                "expected mask request {:?} response {:?}, got request {:?} response {:?}",
                m.request, m.response, p.request, p.response
            )),
            None => why.push("expected masks, but the decision carries none".into()),
        }
    }
    if let Some(a) = &x.approval_rules {
        match &e.decision {
            Ruling::RequireApproval { rules, .. } if rules == a => {}
            Ruling::RequireApproval { rules, .. } => {
                why.push(format!("expected approval rules {a:?}, got {rules:?}"))
            }
            _ => {
                why.push("expected approval rules, but the decision is not require_approval".into())
            }
        }
    }
    if let Some(nb) = x.needs_body {
        if head.needs_body != nb {
            why.push(format!(
                "expected needs_body {nb} in the headers phase, got {}",
                head.needs_body
            ));
        }
    }
    if let Some(md) = &x.monitor_decision {
        let got = e.monitor_decision.as_ref().map_or("none", Ruling::kind);
        if got != md {
            why.push(format!("expected monitor_decision {md}, got {got}"));
        }
    }
    if why.is_empty() {
        Ok(())
    } else {
        why.push(format!("fired: {}", fired_line(&e)));
        Err(why)
    }
}
