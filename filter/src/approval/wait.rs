//! One held request's conversation with the approver, with time injected
//! (milliseconds since the epoch), so every path is unit-tested.
//!
//! `POST /v1/approvals` → approved / denied / expired at once, or pending →
//! `GET /v1/approvals/{id}?wait=N` until decided or `max_wait_secs` have
//! passed → an [`Outcome`]. While an approval is pending, a transient failure
//! (unreachable, timeout, 5xx: the approver restarting) is retried after
//! [`RETRY_MS`] within the deadline; any other failure ends the wait.
//!
//! A one-time approval is used by this request only: the approver's answers
//! leave it unused (`confirm`), and the wait uses it with
//! `POST /v1/approvals/{id}/use` before the request passes. An answer that
//! reaches a request already gone is never acted on, so the decision stays
//! for the agent's retry. Losing the use to another request with the same
//! fingerprint (`410`) asks again by fingerprint, at most [`MAX_ASK_AGAIN`]
//! times: a new approval, or one the other request gave back. A use that
//! fails transiently is not repeated (it may have been applied): the wait
//! polls again and learns which (unused: use it; used: `410`, ask again),
//! so the approval is never used twice.
//!
//! Bounds: each callout carries a timeout (`timeout_ms`, plus the long-poll's
//! wait), a poll never waits past the deadline, and [`Wait::overdue_at`] tells
//! the host when to stop waiting for a callout whose timeout Envoy never fires.
//! So every held request ends by `deadline + timeout_ms + OVERDUE_GRACE_MS`
//! (plus the host's tick period).

use super::config::ApprovalConfig;
use super::reply::{self, Failure, Status};
use transit_guard_wire::{poll_path, use_path};

use crate::audit::Decision;
use crate::local_reply::LocalReply;

/// Pause before asking again after a transient failure.
pub const RETRY_MS: u64 = 1000;
/// How long past a callout's own timeout the host waits for Envoy to report it.
pub const OVERDUE_GRACE_MS: u64 = 500;
/// How often a wait asks again by fingerprint after another request used
/// its approval first.
pub const MAX_ASK_AGAIN: u8 = 2;
/// The shortest `use` call worth making (ms); with less time left the
/// approval is left for the agent's retry.
pub const MIN_USE_MS: u64 = 200;

/// A call for the host to make through `dispatch_http_call`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Callout {
    /// All headers, pseudo-headers first.
    pub headers: Vec<(&'static str, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout_ms: u64,
}

impl Callout {
    fn new(
        cfg: &ApprovalConfig,
        method: &str,
        path: String,
        body: Option<Vec<u8>>,
        wait_secs: u64,
    ) -> Callout {
        let mut headers = vec![
            (":method", method.to_string()),
            (":path", path),
            (":authority", cfg.authority.clone()),
            ("x-approver-key", cfg.api_key.clone()),
            ("accept", "application/json".to_string()),
        ];
        if body.is_some() {
            headers.push(("content-type", "application/json".to_string()));
        }
        Callout {
            headers,
            body,
            timeout_ms: wait_secs
                .saturating_mul(1000)
                .saturating_add(cfg.timeout_ms),
        }
    }

    pub fn path(&self) -> &str {
        self.headers
            .iter()
            .find(|(k, _)| *k == ":path")
            .map_or("", |(_, v)| v.as_str())
    }
}

/// What the host does next.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next {
    Call(Callout),
    /// Call [`Wait::on_wake`] at this time (ms).
    RetryAt(u64),
    Done(Outcome),
}

/// How the wait ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Outcome {
    /// Forward the original request.
    Approved {
        id: String,
        reviewer: Option<String>,
    },
    Denied {
        id: String,
        reviewer: Option<String>,
        reason: Option<String>,
    },
    /// The approver let the approval expire undecided.
    Expired { id: String },
    /// Still pending at `max_wait_secs`: the agent may retry after approval.
    StillPending { id: String, retry_after_secs: u64 },
    Failed {
        failure: Failure,
        id: Option<String>,
    },
}

impl Outcome {
    pub fn approval_id(&self) -> Option<&str> {
        match self {
            Outcome::Approved { id, .. }
            | Outcome::Denied { id, .. }
            | Outcome::Expired { id }
            | Outcome::StillPending { id, .. } => Some(id),
            Outcome::Failed { id, .. } => id.as_deref(),
        }
    }

    pub fn reviewer(&self) -> Option<&str> {
        match self {
            Outcome::Approved { reviewer, .. } | Outcome::Denied { reviewer, .. } => {
                reviewer.as_deref()
            }
            _ => None,
        }
    }

    /// The audit decision and reason code.
    pub fn audit(&self) -> (Decision, &'static str) {
        match self {
            Outcome::Approved { .. } => (Decision::ApprovalApproved, "approval_approved"),
            Outcome::Denied { .. } => (Decision::ApprovalDenied, "approval_denied"),
            Outcome::Expired { .. } => (Decision::ApprovalExpired, "approval_expired"),
            Outcome::StillPending { .. } => (Decision::ApprovalExpired, "approval_pending"),
            Outcome::Failed { failure, .. } => (Decision::ApprovalFailed, failure.code()),
        }
    }

    /// The agent's reply; `None` when the request goes on (approved).
    pub fn reply(&self, rule: &str) -> Option<LocalReply> {
        let reply = match self {
            Outcome::Approved { .. } => return None,
            Outcome::Denied {
                id,
                reviewer,
                reason,
            } => LocalReply::new(
                403,
                "approval_denied",
                reason
                    .clone()
                    .filter(|r| !r.is_empty())
                    .unwrap_or_else(|| "a reviewer denied this request".to_string()),
            )
            .with_field("approval_id", id.as_str())
            .with_field("reviewer", reviewer.clone()),
            Outcome::Expired { id } => LocalReply::new(
                403,
                "approval_expired",
                "no reviewer decided on this request before its approval expired; it was not forwarded (sending it again asks again)",
            )
            .with_field("approval_id", id.as_str()),
            Outcome::StillPending {
                id,
                retry_after_secs,
            } => LocalReply::new(
                503,
                "approval_pending",
                format!(
                    "this request is waiting for a human approval ({id}); it was not forwarded. Send the same request again after it is approved: it will pass once"
                ),
            )
            .with_header("retry-after", retry_after_secs.to_string())
            .with_field("approval_id", id.as_str())
            .with_field("retry_after_secs", *retry_after_secs),
            Outcome::Failed { failure, id } => LocalReply::new(
                503,
                "approval_failed",
                "this request needs a human approval and the approval service could not be asked; it was not forwarded",
            )
            .with_field("reason_code", failure.code())
            .with_field("approval_id", id.clone()),
        };
        Some(reply.with_rule(rule))
    }
}

/// The state of one held request's wait.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Wait {
    deadline_ms: u64,
    id: Option<String>,
    retry_after_secs: u64,
    /// The callout in flight: when it was issued and its timeout.
    in_flight: Option<(u64, u64)>,
    /// The create body, to ask again by fingerprint.
    create_body: Vec<u8>,
    /// `POST …/use` is in flight; who approved.
    using: Option<Option<String>>,
    /// How often the wait asked again after losing a one-time approval.
    asked_again: u8,
}

impl Wait {
    /// Starts the wait at `now_ms` with the create call (`create_body` from
    /// [`super::request::create_body`]).
    pub fn start(cfg: &ApprovalConfig, now_ms: u64, create_body: Vec<u8>) -> (Wait, Callout) {
        let mut wait = Wait {
            deadline_ms: now_ms.saturating_add(cfg.max_wait_secs.saturating_mul(1000)),
            id: None,
            retry_after_secs: 1,
            in_flight: None,
            create_body,
            using: None,
            asked_again: 0,
        };
        let call = wait.create(cfg, now_ms);
        (wait, call)
    }

    pub fn deadline_ms(&self) -> u64 {
        self.deadline_ms
    }

    pub fn approval_id(&self) -> Option<&str> {
        self.id.as_deref()
    }

    /// When the host stops waiting for the callout in flight (Envoy's timeout
    /// may never fire for a cluster with no healthy endpoint).
    pub fn overdue_at(&self) -> Option<u64> {
        self.in_flight
            .map(|(at, timeout)| at.saturating_add(timeout).saturating_add(OVERDUE_GRACE_MS))
    }

    /// The callout in flight answered: `status` is its `:status` (`None`
    /// when there was none).
    pub fn on_response(
        &mut self,
        cfg: &ApprovalConfig,
        now_ms: u64,
        status: Option<&str>,
        body: &[u8],
    ) -> Next {
        let timed_out = self
            .in_flight
            .take()
            .is_some_and(|(at, timeout)| now_ms.saturating_add(100) >= at.saturating_add(timeout));
        let read = reply::read(status, body, timed_out);
        if let Some(reviewer) = self.using.take() {
            return self.on_used(cfg, now_ms, read, reviewer);
        }
        match read {
            Err(Failure::Consumed) => self.ask_again(cfg, now_ms),
            Err(f) => self.on_failure(f, now_ms),
            Ok(r) => {
                if self.id.as_deref().is_some_and(|id| id != r.id) {
                    // A poll answered about another approval: not to be trusted.
                    return Next::Done(self.failed(Failure::BadResponse));
                }
                self.id = Some(r.id.clone());
                match r.status {
                    // Approved and left unused: this request uses it now.
                    Status::Approved if r.confirm => self.use_it(cfg, now_ms, r),
                    // Used by this very answer (a time-bound grant).
                    Status::Approved => Next::Done(Outcome::Approved {
                        id: r.id,
                        reviewer: r.reviewer,
                    }),
                    Status::Denied => Next::Done(Outcome::Denied {
                        id: r.id,
                        reviewer: r.reviewer,
                        reason: r.reason,
                    }),
                    Status::Expired => Next::Done(Outcome::Expired { id: r.id }),
                    Status::Pending => {
                        self.retry_after_secs = r.retry_after_secs.clamp(1, 30);
                        self.poll(cfg, now_ms)
                    }
                }
            }
        }
    }

    /// The retry time given by [`Next::RetryAt`] has come.
    pub fn on_wake(&mut self, cfg: &ApprovalConfig, now_ms: u64) -> Next {
        self.poll(cfg, now_ms)
    }

    /// `dispatch_http_call` refused the callout.
    pub fn on_dispatch_failed(&mut self) -> Outcome {
        self.in_flight = None;
        self.using = None;
        self.failed(Failure::DispatchFailed)
    }

    /// [`Wait::overdue_at`] passed with no answer.
    pub fn on_overdue(&mut self) -> Outcome {
        self.in_flight = None;
        self.using = None;
        self.failed(Failure::Timeout)
    }

    /// Uses the approval (`POST …/use`) within the wait's bound (deadline +
    /// `timeout_ms`); with too little time left it is not used, and the
    /// agent's retry passes on it.
    fn use_it(&mut self, cfg: &ApprovalConfig, now_ms: u64, r: reply::ApproverReply) -> Next {
        let left = self
            .deadline_ms
            .saturating_add(cfg.timeout_ms)
            .saturating_sub(now_ms);
        if left < MIN_USE_MS {
            return Next::Done(Outcome::StillPending {
                id: r.id,
                retry_after_secs: 1,
            });
        }
        let mut call = Callout::new(cfg, "POST", use_path(&r.id), None, 0);
        call.timeout_ms = call.timeout_ms.min(left);
        self.in_flight = Some((now_ms, call.timeout_ms));
        self.using = Some(r.reviewer);
        Next::Call(call)
    }

    /// The answer to `POST …/use`: the request passes only on its `200`.
    fn on_used(
        &mut self,
        cfg: &ApprovalConfig,
        now_ms: u64,
        read: Result<reply::ApproverReply, Failure>,
        reviewer: Option<String>,
    ) -> Next {
        match read {
            Ok(r) if Some(r.id.as_str()) == self.id.as_deref() && r.status == Status::Approved => {
                Next::Done(Outcome::Approved {
                    id: r.id,
                    reviewer: r.reviewer.or(reviewer),
                })
            }
            Ok(_) => Next::Done(self.failed(Failure::BadResponse)),
            // Another request with the same fingerprint used it first.
            Err(Failure::Consumed) => self.ask_again(cfg, now_ms),
            // Not repeated blindly (it may have been applied): the wait polls
            // again after RETRY_MS, and hears `approved, confirm` (not used:
            // use it now) or `410` (used: ask again by fingerprint).
            Err(f) if f.transient() => self.on_failure(f, now_ms),
            Err(f) => Next::Done(self.failed(f)),
        }
    }

    /// The approval was used by another request: asks again by fingerprint
    /// (a new pending approval, or one given back), while the deadline and
    /// [`MAX_ASK_AGAIN`] allow.
    fn ask_again(&mut self, cfg: &ApprovalConfig, now_ms: u64) -> Next {
        if self.asked_again >= MAX_ASK_AGAIN
            || now_ms.saturating_add(cfg.timeout_ms) > self.deadline_ms
        {
            return Next::Done(self.failed(Failure::Consumed));
        }
        self.asked_again += 1;
        self.id = None;
        Next::Call(self.create(cfg, now_ms))
    }

    /// `POST /v1/approvals` with the held request's description.
    fn create(&mut self, cfg: &ApprovalConfig, now_ms: u64) -> Callout {
        let call = Callout::new(
            cfg,
            "POST",
            "/v1/approvals".to_string(),
            Some(self.create_body.clone()),
            0,
        );
        self.in_flight = Some((now_ms, call.timeout_ms));
        call
    }

    /// Long-polls for the rest of the wait; never past the deadline.
    fn poll(&mut self, cfg: &ApprovalConfig, now_ms: u64) -> Next {
        let Some(id) = self.id.clone() else {
            return Next::Done(self.failed(Failure::BadResponse));
        };
        let wait_secs = (self.deadline_ms.saturating_sub(now_ms) / 1000).min(cfg.poll_secs);
        if wait_secs == 0 {
            return Next::Done(Outcome::StillPending {
                id,
                retry_after_secs: self.retry_after_secs,
            });
        }
        let call = Callout::new(cfg, "GET", poll_path(&id, wait_secs, true), None, wait_secs);
        self.in_flight = Some((now_ms, call.timeout_ms));
        Next::Call(call)
    }

    fn on_failure(&mut self, f: Failure, now_ms: u64) -> Next {
        let retry_at = now_ms.saturating_add(RETRY_MS);
        if self.id.is_some() && f.transient() && retry_at.saturating_add(1000) <= self.deadline_ms {
            return Next::RetryAt(retry_at);
        }
        Next::Done(self.failed(f))
    }

    fn failed(&self, failure: Failure) -> Outcome {
        Outcome::Failed {
            failure,
            id: self.id.clone(),
        }
    }
}
