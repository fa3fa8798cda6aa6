//! The policy rules engine: `rules[]` and `default_action`.
//!
//! Pure Rust, no proxy-wasm: the host adapter builds a [`RequestView`] and
//! carries out the [`Evaluation`]; the `transit-guard` CLI uses the same code.
//! The reference for policy authors is `docs/rules.md`.
//!
//! # Shape
//!
//! ```json
//! {
//!   "default_action": "deny",
//!   "rules": [
//!     { "name": "no-deletes", "match": { "methods": ["DELETE"] }, "action": "deny",
//!       "deny": { "status": 405, "message": "deletes are not allowed" } },
//!     { "name": "customers-read", "match": { "methods": ["GET"], "path": { "prefix": "/customers" },
//!       "identity": { "groups_any": ["support"] } }, "action": "mask",
//!       "mask": { "response": ["pii"] } },
//!     { "name": "hold-refunds", "match": { "mcp": { "tools": ["refund_*"] } },
//!       "action": "require_approval", "mode": "monitor" }
//!   ]
//! }
//! ```
//!
//! A rule matches when **every** condition of its `match` holds (an empty
//! `match` matches everything). Lists inside one condition are alternatives
//! (`"methods": ["GET","HEAD"]`), except `groups_all`/`scopes_all`/`*_none`.
//!
//! # Ruling (what the policy decides)
//!
//! 1. Every rule is evaluated (policy order is the order of
//!    [`Evaluation::fired`], it does not change the outcome).
//! 2. Among the **enforced** rules that matched, the strongest action wins:
//!    `deny` > `require_approval` > `mask` > `allow`.
//!    - `deny`: the first matching deny rule (policy order) gives the status
//!      and message.
//!    - `require_approval`: names every matching approval rule.
//!    - masks **accumulate**: the profiles of every matching enforced mask
//!      rule, per direction, deduplicated in policy order, are carried by
//!      `mask` and by `require_approval` (to apply once approved).
//!    - `allow` alone: allow, with no masks.
//! 3. If no enforced rule matched: `default_action`.
//! 4. `mode: "monitor"` rules are evaluated the same way and listed in
//!    `fired` with `monitor: true`, but never change the decision (masks
//!    included). The decision the policy would reach if they were enforced
//!    is [`Evaluation::monitor_decision`] when it differs.
//!
//! # Two phases
//!
//! The host calls [`Rules::evaluate`] when the request headers arrive, with
//! `body: None`:
//!
//! - `needs_body == false`: `decision` is final; act on it. (Always the case
//!   when no rule has a body condition, or an enforced deny already matched.)
//! - `needs_body == true`: some rule (enforced or monitor) matched on
//!   everything but its body conditions, so its outcome depends on the body.
//!   `decision` and `fired` are provisional and must not be acted on. Hold the
//!   request until the body is complete (bounded by `limits.max_body_bytes`)
//!   and call `evaluate` again with `body: Some(whole_body)`; that evaluation
//!   is always final (`needs_body == false`).
//!
//! A request without a body (headers with end of stream) is evaluated with
//! `body: Some(&[])` at once. Bodies are never trusted: invalid JSON or bytes
//! that are not UTF-8 only mean JSON conditions do not match; text conditions
//! still apply (see [`body`]).

pub mod body;
pub mod config;
mod decide;
pub mod matchers;
pub mod path;
pub mod shapes;

use std::collections::HashMap;
use std::sync::Arc;

use crate::identity::Identity;
use crate::local_reply::LocalReply;
use crate::policy::{Mode, PolicyError};

pub use config::{ActionKind, DefaultAction, RuleDoc};
pub use matchers::MatchResult;

use matchers::{compile_match, Cond, Ctx};

/// The request as rules see it. Header names are compared case-insensitively;
/// a repeated header is several entries (a condition holds if any value does).
#[derive(Debug, Clone, Copy)]
pub struct RequestView<'a> {
    /// `:method`.
    pub method: &'a str,
    /// `:authority` (or `host`), with or without a port.
    pub authority: &'a str,
    /// `:path` as received, query included: normalised here (see [`path`]).
    pub path: &'a str,
    /// All request headers, as Envoy gives them (`get_http_request_headers`).
    pub headers: &'a [(String, String)],
    /// The verified caller, if any.
    pub identity: Option<&'a Identity>,
    /// `None` on the first phase (headers only); the whole body on the second.
    pub body: Option<&'a [u8]>,
}

/// The outcome of evaluating the rules on a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Evaluation {
    /// What to do (provisional while `needs_body`).
    pub decision: Ruling,
    /// Every rule that matched, enforced and monitor, in policy order. When
    /// the headers phase is final because an enforced deny rule matched, rules
    /// that would have needed the body were not evaluated and are not listed.
    pub fired: Vec<Hit>,
    /// See the module docs: hold the request, evaluate again with the body.
    pub needs_body: bool,
    /// When monitor rules matched and enforcing them would change the
    /// decision: the decision they would have caused (for the log/audit).
    pub monitor_decision: Option<Ruling>,
    /// An enforced rule that matched asks for session recording.
    pub record: bool,
}

/// A rule that matched.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hit {
    pub rule: String,
    pub action: ActionKind,
    /// A `mode: "monitor"` rule: reported, never acted on.
    pub monitor: bool,
}

/// What the policy decides for a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ruling {
    /// Forward unchanged.
    Allow,
    /// Forward, masking with these profiles.
    Mask(MaskPlan),
    /// Hold for a human; if approved, forward with `masks` applied.
    RequireApproval { rules: Vec<String>, masks: MaskPlan },
    /// Refuse with a local reply: [`Denial::reply`].
    Deny(Denial),
}

impl Ruling {
    /// `allow`, `mask`, `require_approval` or `deny`: for logs and audit.
    pub fn kind(&self) -> &'static str {
        match self {
            Ruling::Allow => "allow",
            Ruling::Mask(_) => "mask",
            Ruling::RequireApproval { .. } => "require_approval",
            Ruling::Deny(_) => "deny",
        }
    }
}

/// Masking profiles to apply, by name, per direction.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MaskPlan {
    pub request: Vec<String>,
    pub response: Vec<String>,
    /// The mask rules these came from.
    pub rules: Vec<String>,
}

impl MaskPlan {
    fn add(&mut self, rule: &Rule) {
        for p in &rule.mask.request {
            if !self.request.contains(p) {
                self.request.push(p.clone());
            }
        }
        for p in &rule.mask.response {
            if !self.response.contains(p) {
                self.response.push(p.clone());
            }
        }
        self.rules.push(rule.name.clone());
    }
}

/// A refusal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Denial {
    /// The deny rule, or `None` for `default_action: deny`.
    pub rule: Option<String>,
    pub status: u16,
    pub message: String,
}

impl Denial {
    fn by_default() -> Denial {
        Denial {
            rule: None,
            status: 403,
            message: "no rule allows this request".into(),
        }
    }

    /// The local reply: `status`, and
    /// `{"error":"policy_denied","reason":MESSAGE,"rule":NAME,"request_id":ID}`
    /// (no `rule` for the default action).
    pub fn reply(&self) -> LocalReply {
        let r = LocalReply::new(self.status, "policy_denied", self.message.clone());
        match &self.rule {
            Some(name) => r.with_rule(name.clone()),
            None => r,
        }
    }
}

/// Where a mask rule names a masking profile: for the loader to check that
/// the profile exists, and blame `path` if it does not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskRef {
    /// e.g. `rules[3].mask.response`.
    pub path: String,
    pub profile: String,
}

#[derive(Debug)]
pub(crate) struct Rule {
    pub(crate) name: String,
    pub(crate) action: ActionKind,
    pub(crate) monitor: bool,
    conds: Vec<Cond>,
    status: u16,
    message: Option<String>,
    pub(crate) mask: MaskNames,
    record: bool,
}

#[derive(Debug, Default)]
pub(crate) struct MaskNames {
    request: Vec<String>,
    response: Vec<String>,
}

impl Rule {
    fn denial(&self) -> Denial {
        Denial {
            rule: Some(self.name.clone()),
            status: self.status,
            message: self
                .message
                .clone()
                .unwrap_or_else(|| format!("denied by policy rule {:?}", self.name)),
        }
    }

    fn eval(&self, ctx: &Ctx<'_, '_>) -> MatchResult {
        matchers::all(&self.conds, ctx)
    }
}

/// The compiled `rules` and `default_action`, shared by every request.
/// Cloning is cheap (the compiled rules are shared).
#[derive(Debug, Clone)]
pub struct Rules {
    rules: Arc<Vec<Rule>>,
    default_action: DefaultAction,
}

impl Default for Rules {
    fn default() -> Self {
        Rules::none()
    }
}

/// Compiles `rules` and `default_action` (error paths are full: `rules[2].match.path.regex`).
///
/// `default_action` is required when `rules` is not empty; with no rules and
/// no default every request is allowed (a policy without rules).
pub fn compile(
    docs: Vec<RuleDoc>,
    default_action: Option<DefaultAction>,
) -> Result<Rules, PolicyError> {
    let default = match (default_action, docs.is_empty()) {
        (Some(d), _) => d,
        (None, true) => DefaultAction::Allow,
        (None, false) => {
            return Err(PolicyError::at(
                "default_action",
                "required when rules are given: \"allow\" or \"deny\"",
            ))
        }
    };
    let mut seen: HashMap<&str, usize> = HashMap::new();
    let mut rules = Vec::with_capacity(docs.len());
    for (i, d) in docs.iter().enumerate() {
        let at = |f: &str| format!("rules[{i}].{f}");
        if d.name.is_empty()
            || d.name.len() > 128
            || !d
                .name
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.' | b':' | b'/'))
        {
            return Err(PolicyError::at(
                &at("name"),
                format!(
                    "invalid rule name {:?}: 1 to 128 of A-Z a-z 0-9 - _ . : /",
                    d.name
                ),
            ));
        }
        if let Some(j) = seen.insert(&d.name, i) {
            return Err(PolicyError::at(
                &at("name"),
                format!("duplicate rule name {:?} (also rules[{j}])", d.name),
            ));
        }
        let conds = compile_match(&d.matcher, &at("match"))?;
        let mut status = 403;
        let mut message = None;
        if let Some(deny) = &d.deny {
            if d.action != ActionKind::Deny {
                return Err(PolicyError::at(&at("deny"), "only for `action: deny`"));
            }
            if let Some(s) = deny.status {
                if !(400..=599).contains(&s) {
                    return Err(PolicyError::at(
                        &at("deny.status"),
                        format!("must be between 400 and 599, got {s}"),
                    ));
                }
                status = s;
            }
            message = deny.message.clone();
        }
        let mut mask = MaskNames::default();
        match (&d.mask, d.action) {
            (Some(m), ActionKind::Mask) => {
                for (dir, list) in [("request", &m.request), ("response", &m.response)] {
                    if list.0.iter().any(String::is_empty) {
                        return Err(PolicyError::at(
                            &at(&format!("mask.{dir}")),
                            "profile names must not be empty",
                        ));
                    }
                }
                if m.request.0.is_empty() && m.response.0.is_empty() {
                    return Err(PolicyError::at(
                        &at("mask"),
                        "name a masking profile for `request`, `response` or both",
                    ));
                }
                mask.request = m.request.0.clone();
                mask.response = m.response.0.clone();
            }
            (None, ActionKind::Mask) => {
                return Err(PolicyError::at(
                    &at("mask"),
                    "required for `action: mask`: {\"request\": PROFILE, \"response\": PROFILE}",
                ))
            }
            (Some(_), _) => return Err(PolicyError::at(&at("mask"), "only for `action: mask`")),
            (None, _) => {}
        }
        rules.push(Rule {
            name: d.name.clone(),
            action: d.action,
            monitor: d.mode == Mode::Monitor,
            conds,
            status,
            message,
            mask,
            record: d.record,
        });
    }
    Ok(Rules {
        rules: Arc::new(rules),
        default_action: default,
    })
}

/// One rule's evaluation, condition by condition: for `transit-guard explain`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuleTrace {
    pub rule: String,
    pub action: ActionKind,
    pub monitor: bool,
    pub result: MatchResult,
    /// Each condition, described, with its own result (all are evaluated).
    pub conditions: Vec<(String, MatchResult)>,
}

impl Rules {
    /// No rules, default allow.
    pub fn none() -> Rules {
        Rules {
            rules: Arc::new(Vec::new()),
            default_action: DefaultAction::Allow,
        }
    }

    pub fn len(&self) -> usize {
        self.rules.len()
    }

    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    pub fn default_action(&self) -> DefaultAction {
        self.default_action
    }

    /// Each rule's lists of masking profiles, per direction, as a decision
    /// carries them (deduplicated): the loader compiles each list once.
    pub fn mask_lists(&self) -> Vec<Vec<String>> {
        let mut out = Vec::new();
        for r in self.rules.iter() {
            let mut plan = MaskPlan::default();
            plan.add(r);
            out.push(plan.request);
            out.push(plan.response);
        }
        out
    }

    /// Every masking profile a rule names, with its place in the policy.
    pub fn mask_references(&self) -> Vec<MaskRef> {
        let mut out = Vec::new();
        for (i, r) in self.rules.iter().enumerate() {
            for (dir, list) in [("request", &r.mask.request), ("response", &r.mask.response)] {
                for p in list {
                    out.push(MaskRef {
                        path: format!("rules[{i}].mask.{dir}"),
                        profile: p.clone(),
                    });
                }
            }
        }
        out
    }

    /// Whether any rule has a body condition (if none, the first phase is
    /// always final).
    pub fn inspects_body(&self) -> bool {
        self.rules
            .iter()
            .any(|r| r.conds.iter().any(Cond::needs_body))
    }

    /// Evaluates every rule on `req` and combines the results (module docs).
    pub fn evaluate(&self, req: &RequestView<'_>) -> Evaluation {
        self.evaluate_read(req, None)
    }

    /// [`Rules::evaluate`] on the flow's reading of the body (made by its
    /// readability check; masks rewrite from the same parse).
    pub fn evaluate_read<'a>(
        &self,
        req: &RequestView<'a>,
        reading: Option<&'a crate::body::Reading<'a>>,
    ) -> Evaluation {
        // Built on the first rule: a policy without rules (the base policy)
        // normalises no path and splits no authority per request.
        let ctx = std::cell::OnceCell::new();
        let mut enforced: Vec<&Rule> = Vec::new();
        let mut all: Vec<&Rule> = Vec::new();
        let mut pending = false;
        for r in self.rules.iter() {
            match r.eval(ctx.get_or_init(|| Ctx::read(req, reading))) {
                MatchResult::Match => {
                    all.push(r);
                    if !r.monitor {
                        enforced.push(r);
                    }
                }
                MatchResult::NeedsBody => pending = true,
                MatchResult::NoMatch => {}
            }
        }
        let decision = decide::combine(&enforced, self.default_action);
        let needs_body = pending && !matches!(decision, Ruling::Deny(Denial { rule: Some(_), .. }));
        let monitor_decision = if all.len() != enforced.len() {
            let d = decide::combine(&all, self.default_action);
            (d != decision).then_some(d)
        } else {
            None
        };
        Evaluation {
            record: enforced.iter().any(|r| r.record),
            decision,
            fired: all
                .iter()
                .map(|r| Hit {
                    rule: r.name.clone(),
                    action: r.action,
                    monitor: r.monitor,
                })
                .collect(),
            needs_body,
            monitor_decision,
        }
    }

    /// Every rule with every condition's result: what `evaluate` saw.
    pub fn explain(&self, req: &RequestView<'_>) -> Vec<RuleTrace> {
        let ctx = Ctx::new(req);
        self.rules
            .iter()
            .map(|r| RuleTrace {
                rule: r.name.clone(),
                action: r.action,
                monitor: r.monitor,
                result: r.eval(&ctx),
                conditions: r
                    .conds
                    .iter()
                    .map(|c| (c.describe(), c.eval(&ctx)))
                    .collect(),
            })
            .collect()
    }
}

#[cfg(test)]
mod tests;
