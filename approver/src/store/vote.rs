//! What a reviewer's decision does to an approval: the one rule both
//! backends apply, with the approval row locked (pure, unit-tested).

use crate::error::ApiError;
use crate::model::{Approval, Decision, GrantKind, Status, Vote};

/// A decision to record, with what the policy asks.
#[derive(Debug, Clone)]
pub struct Ballot {
    pub reviewer: String,
    pub decision: Decision,
    pub reason: Option<String>,
    /// Distinct approvals the rule's policy needs (at least 1).
    pub approvals_needed: u32,
    /// How long an approved one-time approval stays usable.
    pub approved_ttl_secs: i64,
}

/// The approval's new state after a vote.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Outcome {
    pub status: Status,
    pub votes: Vec<Vote>,
    pub expires_at: i64,
    /// Set once decided.
    pub decided: Option<Decided>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decided {
    /// Every approver (or the one who denied), joined with `, `.
    pub reviewer: String,
    pub reason: Option<String>,
    pub grant: Option<GrantKind>,
    /// For [`GrantKind::Ttl`]: when the grant ends.
    pub grant_until: Option<i64>,
}

/// Applies one vote to a pending approval (already expired by the caller if
/// due). Refuses self-approval, a decided approval and a second vote from
/// the same reviewer.
pub fn apply(a: &Approval, b: &Ballot, now: i64) -> Result<Outcome, ApiError> {
    if a.identity.sub == b.reviewer {
        return Err(ApiError::SelfApproval(b.reviewer.clone()));
    }
    if a.status != Status::Pending {
        return Err(ApiError::NotPending {
            id: a.id.clone(),
            status: a.status.as_str(),
        });
    }
    if a.votes.iter().any(|v| v.reviewer == b.reviewer) {
        return Err(ApiError::AlreadyVoted(b.reviewer.clone()));
    }
    let mut votes = a.votes.clone();
    votes.push(Vote {
        reviewer: b.reviewer.clone(),
        approve: b.decision != Decision::Deny,
        grant_ttl_secs: match b.decision {
            Decision::ApproveFor { ttl_secs } => Some(ttl_secs),
            _ => None,
        },
        reason: b.reason.clone(),
        at: now,
    });
    if b.decision == Decision::Deny {
        return Ok(Outcome {
            status: Status::Denied,
            votes,
            expires_at: a.expires_at,
            decided: Some(Decided {
                reviewer: b.reviewer.clone(),
                reason: b.reason.clone(),
                grant: None,
                grant_until: None,
            }),
        });
    }
    let approvers: Vec<&Vote> = votes.iter().filter(|v| v.approve).collect();
    if approvers.len() < b.approvals_needed.max(1) as usize {
        return Ok(Outcome {
            status: Status::Pending,
            votes,
            expires_at: a.expires_at,
            decided: None,
        });
    }
    // The grant is the least every approver agreed to: once if any said once,
    // else the shortest time-bound grant.
    let ttl = approvers
        .iter()
        .map(|v| v.grant_ttl_secs)
        .try_fold(i64::MAX, |min, t| t.map(|t| min.min(t)));
    let once_until = now.saturating_add(b.approved_ttl_secs);
    let (grant, grant_until, expires_at) = match ttl {
        None => (GrantKind::Once, None, once_until),
        Some(t) => {
            let until = now.saturating_add(t);
            // The held request itself may still pass once after the grant
            // ends, within the usual window for a one-time approval.
            (GrantKind::Ttl, Some(until), until.max(once_until))
        }
    };
    let reviewer = approvers
        .iter()
        .map(|v| v.reviewer.as_str())
        .collect::<Vec<_>>()
        .join(", ");
    let reasons: Vec<&str> = approvers
        .iter()
        .filter_map(|v| v.reason.as_deref())
        .collect();
    Ok(Outcome {
        status: Status::Approved,
        expires_at,
        decided: Some(Decided {
            reviewer,
            reason: (!reasons.is_empty()).then(|| reasons.join("; ")),
            grant: Some(grant),
            grant_until,
        }),
        votes,
    })
}

/// Whether a stored approval is past its time: pending, or approved and not
/// used yet, at or after `expires_at`.
pub fn is_due(a: &Approval, now: i64) -> bool {
    a.expires_at <= now
        && (a.status == Status::Pending
            || (a.status == Status::Approved && a.consumed_at.is_none()))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::Identity;

    fn pending() -> Approval {
        Approval {
            id: "apr_1".into(),
            request_id: "r".into(),
            fingerprint: "f".into(),
            identity: Identity {
                sub: "agent".into(),
                iss: "i".into(),
                groups: vec![],
            },
            rule: "db".into(),
            method: "POST".into(),
            authority: "a".into(),
            path: "/".into(),
            preview: String::new(),
            status: Status::Pending,
            created_at: 0,
            expires_at: 600,
            decided_at: None,
            reviewer: None,
            reason: None,
            grant: None,
            grant_id: None,
            consumed_at: None,
            headers: vec![],
            votes: vec![],
        }
    }

    fn ballot(who: &str, decision: Decision, needed: u32) -> Ballot {
        Ballot {
            reviewer: who.into(),
            decision,
            reason: Some(format!("by {who}")),
            approvals_needed: needed,
            approved_ttl_secs: 3600,
        }
    }

    fn with(a: &Approval, o: &Outcome) -> Approval {
        Approval {
            status: o.status,
            votes: o.votes.clone(),
            ..a.clone()
        }
    }

    #[test]
    fn one_approval_decides_by_default() {
        let o = apply(&pending(), &ballot("bob", Decision::ApproveOnce, 1), 10).unwrap();
        assert_eq!(o.status, Status::Approved);
        assert_eq!(o.expires_at, 3610);
        let d = o.decided.unwrap();
        assert_eq!(
            (d.reviewer.as_str(), d.grant),
            ("bob", Some(GrantKind::Once))
        );
    }

    #[test]
    fn two_of_a_group_need_two_distinct_reviewers() {
        let a = pending();
        let o = apply(
            &a,
            &ballot("bob", Decision::ApproveFor { ttl_secs: 900 }, 2),
            10,
        )
        .unwrap();
        assert_eq!(o.status, Status::Pending);
        assert!(o.decided.is_none());
        let a = with(&a, &o);
        assert!(matches!(
            apply(&a, &ballot("bob", Decision::ApproveOnce, 2), 11),
            Err(ApiError::AlreadyVoted(_))
        ));
        let o = apply(
            &a,
            &ballot("carol", Decision::ApproveFor { ttl_secs: 300 }, 2),
            12,
        )
        .unwrap();
        assert_eq!(o.status, Status::Approved);
        let d = o.decided.unwrap();
        assert_eq!(d.reviewer, "bob, carol");
        assert_eq!(d.reason.as_deref(), Some("by bob; by carol"));
        // The shortest grant both agreed to.
        assert_eq!((d.grant, d.grant_until), (Some(GrantKind::Ttl), Some(312)));
    }

    #[test]
    fn once_wins_over_a_grant_and_one_denial_denies() {
        let a = pending();
        let o = apply(
            &a,
            &ballot("bob", Decision::ApproveFor { ttl_secs: 900 }, 2),
            10,
        )
        .unwrap();
        let o2 = apply(
            &with(&a, &o),
            &ballot("carol", Decision::ApproveOnce, 2),
            11,
        )
        .unwrap();
        assert_eq!(o2.decided.unwrap().grant, Some(GrantKind::Once));
        let o3 = apply(&with(&a, &o), &ballot("dave", Decision::Deny, 2), 11).unwrap();
        assert_eq!(o3.status, Status::Denied);
        assert_eq!(o3.decided.unwrap().reviewer, "dave");
        assert_eq!(o3.votes.len(), 2);
    }

    #[test]
    fn self_approval_and_decided_approvals_are_refused() {
        assert!(matches!(
            apply(&pending(), &ballot("agent", Decision::ApproveOnce, 1), 1),
            Err(ApiError::SelfApproval(_))
        ));
        let denied = Approval {
            status: Status::Denied,
            ..pending()
        };
        assert!(matches!(
            apply(&denied, &ballot("bob", Decision::ApproveOnce, 1), 1),
            Err(ApiError::NotPending { .. })
        ));
        assert!(is_due(&pending(), 600) && !is_due(&pending(), 599));
    }
}
