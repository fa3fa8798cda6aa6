//! Combining the rules that matched into one decision: the order is
//! documented on the `rules` module ("Ruling").

use super::config::{ActionKind, DefaultAction};
use super::{Denial, MaskPlan, Rule, Ruling};

/// Combines the matched rules (in policy order) into a decision.
pub(crate) fn combine(matched: &[&Rule], default: DefaultAction) -> Ruling {
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
            DefaultAction::Allow => Ruling::Allow,
            DefaultAction::Deny => Ruling::Deny(Denial::by_default()),
        },
        Some(ActionKind::Allow) => Ruling::Allow,
        Some(ActionKind::Mask) => Ruling::Mask(masks()),
        Some(ActionKind::RequireApproval) => Ruling::RequireApproval {
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
                Some(r) => Ruling::Deny(r.denial()),
                None => Ruling::Deny(Denial::by_default()),
            }
        }
    }
}
