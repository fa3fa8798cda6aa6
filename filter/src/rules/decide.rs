//! Combining the rules that matched into one decision: the order is
//! documented on the `rules` module ("Decision").

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
