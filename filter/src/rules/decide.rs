//! Combining the rules that matched into one decision.
//!
//! 1. Every rule is evaluated (order in the policy does not change the
//!    outcome; it is the order of [`super::Evaluation::fired`]).
//! 2. Among the **enforced** rules that matched, the strongest action wins:
//!    `deny` > `require_approval` > `mask` > `allow`.
//!    - `deny`: the first matching deny rule (policy order) gives the status
//!      and message.
//!    - `require_approval`: names every matching approval rule.
//!    - masks **accumulate**: the profiles of every matching enforced mask rule,
//!      per direction, deduplicated in policy order, are carried by `mask` and
//!      by `require_approval` (to apply once approved).
//!    - `allow` alone: allow, with no masks.
//! 3. If no enforced rule matched: `default_action`.
//! 4. `mode: "monitor"` rules are evaluated the same way and listed in `fired`
//!    with `monitor: true`, but never change the decision. The decision the
//!    policy would reach if they were enforced is reported as
//!    `monitor_decision` when it differs.

use super::config::{ActionKind, DefaultAction};
use super::{Decision, Denial, MaskPlan, Rule};

/// Combines the matched rules (in policy order) into a decision.
pub(crate) fn combine(matched: &[&Rule], default: DefaultAction) -> Decision {
    let strongest = matched.iter().map(|r| r.action).max();
    let masks = || {
        let mut plan = MaskPlan::default();
        for r in matched.iter().filter(|r| r.action == ActionKind::Mask) {
            plan.add(r);
        }
        plan
    };
    match strongest {
        None => match default {
            DefaultAction::Allow => Decision::Allow,
            DefaultAction::Deny => Decision::Deny(Denial::by_default()),
        },
        Some(ActionKind::Allow) => Decision::Allow,
        Some(ActionKind::Mask) => Decision::Mask(masks()),
        Some(ActionKind::RequireApproval) => Decision::RequireApproval {
            rules: matched
                .iter()
                .filter(|r| r.action == ActionKind::RequireApproval)
                .map(|r| r.name.clone())
                .collect(),
            masks: masks(),
        },
        Some(ActionKind::Deny) => {
            let first = matched.iter().find(|r| r.action == ActionKind::Deny);
            match first {
                Some(r) => Decision::Deny(r.denial()),
                None => Decision::Deny(Denial::by_default()),
            }
        }
    }
}
