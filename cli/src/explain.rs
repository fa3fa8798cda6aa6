//! `transit-guard explain`: which rules fire on a request, why, and the decision.

use std::fmt::Write;

use transit_guard::rules::path::normalize;
use transit_guard::rules::{Evaluation, MatchResult, Rules, Ruling};

use crate::input::Request;

/// A decision in one line.
pub fn decision_line(d: &Ruling) -> String {
    match d {
        Ruling::Allow => "allow".into(),
        Ruling::Mask(m) => format!(
            "mask (request: {:?}, response: {:?}; rules {:?})",
            m.request, m.response, m.rules
        ),
        Ruling::RequireApproval { rules, masks } => {
            let mut s = format!("require_approval (rules {rules:?}");
            if !masks.rules.is_empty() {
                let _ = write!(
                    s,
                    "; once approved mask request: {:?}, response: {:?}",
                    masks.request, masks.response
                );
            }
            s.push(')');
            s
        }
        Ruling::Deny(d) => {
            let by = match &d.rule {
                Some(r) => format!("rule {r:?}"),
                None => "default_action".into(),
            };
            format!(
                "deny by {by}: {} {}",
                d.status,
                d.reply().body("REQUEST_ID")
            )
        }
    }
}

fn mark(r: MatchResult) -> &'static str {
    match r {
        MatchResult::Match => "[match]   ",
        MatchResult::NoMatch => "[no match]",
        MatchResult::NeedsBody => "[body?]   ",
    }
}

pub fn fired_line(e: &Evaluation) -> String {
    if e.fired.is_empty() {
        return "none".into();
    }
    e.fired
        .iter()
        .map(|h| {
            if h.monitor {
                format!("{} ({}, monitor)", h.rule, h.action.as_str())
            } else {
                format!("{} ({})", h.rule, h.action.as_str())
            }
        })
        .collect::<Vec<_>>()
        .join(", ")
}

/// The whole explanation, as printed.
pub fn explain(rules: &Rules, req: &Request) -> String {
    let mut out = String::new();
    let np = normalize(&req.path);
    let _ = writeln!(
        out,
        "request: {} {} {} ({} body bytes)",
        req.method,
        req.authority,
        req.path,
        req.body.len()
    );
    let _ = writeln!(
        out,
        "normalised path: {}{}",
        np.path,
        if np.ambiguous { " (ambiguous)" } else { "" }
    );
    match &req.identity {
        Some(i) => {
            let _ = writeln!(
                out,
                "identity: subject {:?}, groups {:?}, scopes {:?}",
                i.subject, i.groups, i.scopes
            );
        }
        None => {
            let _ = writeln!(out, "identity: none (unauthenticated)");
        }
    }

    let head = rules.evaluate(&req.view(false));
    let _ = writeln!(
        out,
        "headers phase: {}",
        if head.needs_body {
            "needs the body (a rule could still fire on it): the request is held"
        } else {
            "final (the body is not needed)"
        }
    );

    let _ = writeln!(out);
    for t in rules.explain(&req.view(true)) {
        let mode = if t.monitor { ", monitor" } else { "" };
        let verdict = match t.result {
            MatchResult::Match => "FIRES",
            MatchResult::NoMatch => "does not fire",
            MatchResult::NeedsBody => "needs the body",
        };
        let _ = writeln!(
            out,
            "rule {} ({}{mode}): {verdict}",
            t.rule,
            t.action.as_str()
        );
        if t.conditions.is_empty() {
            let _ = writeln!(out, "  [match]    (empty match: every request)");
        }
        for (what, r) in &t.conditions {
            let _ = writeln!(out, "  {} {what}", mark(*r));
        }
    }

    let e = rules.evaluate(&req.view(true));
    let _ = writeln!(out);
    let _ = writeln!(out, "fired: {}", fired_line(&e));
    let _ = writeln!(out, "decision: {}", decision_line(&e.decision));
    if let Some(m) = &e.monitor_decision {
        let _ = writeln!(
            out,
            "monitor: enforcing the monitor rules would decide {}",
            decision_line(m)
        );
    }
    out
}
