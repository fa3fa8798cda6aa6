//! `transit-guard replay POLICY AUDIT_LOG`: the candidate policy's rules on
//! the requests an audit log recorded, and the decisions that would change.
//!
//! A record holds the identity (subject, issuer, groups), method, authority,
//! path (credential parameters redacted) and, where session recording kept
//! it, the request body (masked, maybe truncated). It holds no headers and no
//! scopes: rules on those see none. A request whose body the record does not
//! hold (and whose `bytes_in` is not 0) cannot be judged by a body rule: it is
//! reported as not replayed rather than guessed.

use std::collections::BTreeMap;
use std::fmt::Write;

use serde_json::Value;
use transit_guard::identity::Identity;
use transit_guard::rules::{ActionKind, Evaluation, RequestView, Rules, Ruling};

/// How many example requests are printed per group.
const EXAMPLES: usize = 3;

/// What the recorded request got, as the rules see it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Kind {
    Allow,
    Mask,
    RequireApproval,
    Deny,
}

impl Kind {
    fn as_str(self) -> &'static str {
        match self {
            Kind::Allow => "allow",
            Kind::Mask => "mask",
            Kind::RequireApproval => "require_approval",
            Kind::Deny => "deny",
        }
    }

    fn of(r: &Ruling) -> Kind {
        match r {
            Ruling::Allow => Kind::Allow,
            Ruling::Mask(_) => Kind::Mask,
            Ruling::RequireApproval { .. } => Kind::RequireApproval,
            Ruling::Deny(_) => Kind::Deny,
        }
    }
}

/// One change: from what was recorded to what the candidate decides.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
struct Group {
    from: Kind,
    to: Kind,
    /// The rules that decide now (or, for a loosening to allow, decided then).
    rules: String,
}

#[derive(Debug, Default)]
pub struct Report {
    pub replayed: usize,
    pub total: usize,
    /// Records not replayed, by why.
    skipped: BTreeMap<String, usize>,
    changes: BTreeMap<Group, Vec<String>>,
    /// Requests that passed and would now be denied.
    pub newly_denied: usize,
}

impl Report {
    pub fn changed(&self) -> usize {
        self.changes.values().map(Vec::len).sum()
    }

    pub fn render(&self) -> String {
        let mut out = String::new();
        let skipped: usize = self.skipped.values().sum();
        let _ = writeln!(
            out,
            "replayed {} of {} records ({skipped} not replayed)",
            self.replayed, self.total
        );
        for (why, n) in &self.skipped {
            let _ = writeln!(out, "  {n} {why}");
        }
        let _ = writeln!(out, "{} decisions would change", self.changed());
        for (g, examples) in &self.changes {
            let _ = writeln!(
                out,
                "  {} -> {} ({}): {}",
                g.from.as_str(),
                g.to.as_str(),
                g.rules,
                examples.len()
            );
            for e in examples.iter().take(EXAMPLES) {
                let _ = writeln!(out, "    {e}");
            }
            if examples.len() > EXAMPLES {
                let _ = writeln!(out, "    ... and {} more", examples.len() - EXAMPLES);
            }
        }
        if self.newly_denied > 0 {
            let _ = writeln!(
                out,
                "{} requests that passed would now be denied",
                self.newly_denied
            );
        }
        out
    }
}

/// Replays every record of `log` (JSON lines); a line that is not a JSON
/// object is an input error naming its line number.
pub fn replay(rules: &Rules, log: &str) -> Result<Report, String> {
    let mut report = Report::default();
    for (i, line) in log.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let record: Value = serde_json::from_str(line)
            .map_err(|e| format!("line {}: not a JSON record: {e}", i + 1))?;
        if !record.is_object() {
            return Err(format!("line {}: not a JSON object", i + 1));
        }
        report.total += 1;
        match replay_one(rules, &record) {
            Ok(None) => report.replayed += 1,
            Ok(Some((group, passed))) => {
                report.replayed += 1;
                if passed && group.to == Kind::Deny {
                    report.newly_denied += 1;
                }
                report
                    .changes
                    .entry(group)
                    .or_default()
                    .push(example(&record));
            }
            Err(why) => *report.skipped.entry(why).or_insert(0) += 1,
        }
    }
    Ok(report)
}

fn text<'a>(r: &'a Value, k: &str) -> &'a str {
    r.get(k).and_then(Value::as_str).unwrap_or_default()
}

fn example(r: &Value) -> String {
    let who = r
        .pointer("/identity/sub")
        .and_then(Value::as_str)
        .unwrap_or("anonymous");
    format!(
        "{} {} {}{} ({who})",
        text(r, "request_id"),
        text(r, "method"),
        text(r, "authority"),
        text(r, "path")
    )
}

/// `Ok(None)`: unchanged; `Ok(Some((change, passed)))`: changed, and
/// whether the request had passed; `Err(why)`: not replayed.
fn replay_one(rules: &Rules, r: &Value) -> Result<Option<(Group, bool)>, String> {
    let decision = text(r, "decision");
    let (from, passed) = match decision {
        "allowed" | "upstream_error" | "client_abort" => (Kind::Allow, true),
        "masked" => (Kind::Mask, true),
        "denied" => (Kind::Deny, false),
        "approval_approved" => (Kind::RequireApproval, true),
        "approval_denied" | "approval_expired" | "approval_failed" => {
            (Kind::RequireApproval, false)
        }
        "rate_limited" => return Err("refused by quotas (after the rules)".into()),
        other => return Err(format!("refused before the rules ({other})")),
    };
    let recorded_rules: Vec<String> = r
        .get("rules")
        .and_then(Value::as_array)
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(str::to_string)
                .collect()
        })
        .unwrap_or_default();
    let identity = r
        .get("identity")
        .filter(|v| v.is_object())
        .map(|i| Identity {
            provider: String::new(),
            issuer: text(i, "iss").to_string(),
            subject: text(i, "sub").to_string(),
            groups: i
                .get("groups")
                .and_then(Value::as_array)
                .map(|a| {
                    a.iter()
                        .filter_map(Value::as_str)
                        .map(str::to_string)
                        .collect()
                })
                .unwrap_or_default(),
            scopes: Vec::new(),
        });
    let recorded_body = r.pointer("/recording/request").and_then(Value::as_str);
    let empty = r.get("bytes_in").and_then(Value::as_u64) == Some(0);
    let body: Option<&[u8]> = match recorded_body {
        Some(b) => Some(b.as_bytes()),
        None if empty => Some(&[]),
        None => None,
    };
    let headers = Vec::new();
    let view = RequestView {
        method: text(r, "method"),
        authority: text(r, "authority"),
        path: text(r, "path"),
        headers: &headers,
        identity: identity.as_ref(),
        body,
    };
    let eval = rules.evaluate(&view);
    if eval.needs_body {
        return Err("need a request body the record does not hold".into());
    }
    let to = Kind::of(&eval.decision);
    let now_rules = carried_out(&eval);
    // Forwarded either way: a mask rule that found nothing was recorded as
    // `allowed` with its rule; the same rules mean the same decision.
    let forwarded = |k| matches!(k, Kind::Allow | Kind::Mask);
    let same = from == to || (forwarded(from) && forwarded(to) && now_rules == recorded_rules);
    if same {
        return Ok(None);
    }
    let rules_named = if to == Kind::Allow {
        if recorded_rules.is_empty() {
            "no rule".to_string()
        } else {
            format!("no longer {}", recorded_rules.join(", "))
        }
    } else if now_rules.is_empty() {
        "default_action".to_string()
    } else {
        format!("rule {}", now_rules.join(", "))
    };
    Ok(Some((
        Group {
            from,
            to,
            rules: rules_named,
        },
        passed,
    )))
}

/// The rules that made the decision, as the filter audits them.
fn carried_out(eval: &Evaluation) -> Vec<String> {
    match &eval.decision {
        Ruling::Deny(d) => d.rule.iter().cloned().collect(),
        Ruling::RequireApproval { rules, .. } => rules.clone(),
        Ruling::Mask(plan) => plan.rules.clone(),
        Ruling::Allow => eval
            .fired
            .iter()
            .filter(|h| !h.monitor && h.action == ActionKind::Allow)
            .map(|h| h.rule.clone())
            .collect(),
    }
}
