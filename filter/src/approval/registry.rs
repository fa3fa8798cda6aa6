//! The worker's requests held for a human approval, each with its
//! [`Wait`]: which callout is in flight, when to ask again, when to give up.
//!
//! Pure, with time passed in: every method returns the [`Effect`]s for the
//! caller to carry out through Envoy ([`crate::worker`]), and learns how a
//! callout went from [`Registry::dispatched`] and [`Registry::answered`].
//! The tick ([`Registry::tick`]) wakes retries and ends any request whose
//! callout is overdue: Envoy may never time out a callout to a cluster with
//! no healthy endpoint (Kuadrant wasm-shim #425). Requests are keyed by
//! their stream's context id.

use std::collections::BTreeMap;

use super::config::ApprovalConfig;
use super::wait::{Callout, Next, Outcome, Wait};
use crate::local_reply::LocalReply;

/// What the approver is asked about a held request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalStart {
    /// The body of `POST /v1/approvals`.
    pub create_body: Vec<u8>,
    /// The `require_approval` rules, joined with `,`.
    pub rule: String,
}

/// What the caller does for the registry.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Effect {
    /// Make this callout for the request held in `context`, then report the
    /// token (or the failure) with [`Registry::dispatched`].
    Call { context: u32, callout: Callout },
    /// Let the held request go on: it was approved.
    Resume { context: u32, request_id: String },
    /// Answer the held request with this reply.
    Reply {
        context: u32,
        request_id: String,
        reply: LocalReply,
    },
}

#[derive(Debug)]
struct Held {
    wait: Wait,
    rule: String,
    request_id: String,
    /// The callout in flight.
    token: Option<u32>,
    /// When to poll again after a transient failure (ms).
    wake_at: Option<u64>,
    /// Set once the request was resumed or answered; kept for the audit.
    outcome: Option<Outcome>,
}

#[derive(Debug, Default)]
pub struct Registry {
    held: BTreeMap<u32, Held>,
}

impl Registry {
    /// Starts the approval of the request held in `context`.
    pub fn begin(
        &mut self,
        cfg: &ApprovalConfig,
        context: u32,
        start: ApprovalStart,
        request_id: String,
        now_ms: u64,
    ) -> Effect {
        let (wait, callout) = Wait::start(cfg, now_ms, start.create_body);
        self.held.insert(
            context,
            Held {
                wait,
                rule: start.rule,
                request_id,
                token: None,
                wake_at: None,
                outcome: None,
            },
        );
        Effect::Call { context, callout }
    }

    /// How an [`Effect::Call`] went: its token, or `Err` if Envoy refused it
    /// (the request is then answered: fail closed).
    pub fn dispatched(&mut self, context: u32, token: Result<u32, ()>) -> Option<Effect> {
        let held = self.held.get_mut(&context)?;
        match token {
            Ok(token) => {
                held.token = Some(token);
                None
            }
            Err(()) => {
                let outcome = held.wait.on_dispatch_failed();
                self.finish(context, outcome)
            }
        }
    }

    /// A callout answered. A late answer (to a call already given up on, or
    /// for a request already decided) is ignored.
    pub fn answered(
        &mut self,
        cfg: &ApprovalConfig,
        context: u32,
        token: u32,
        now_ms: u64,
        status: Option<u16>,
        body: &[u8],
    ) -> Option<Effect> {
        let held = self.held.get_mut(&context)?;
        if held.token != Some(token) || held.outcome.is_some() {
            return None;
        }
        held.token = None;
        let status = status.map(|s| s.to_string());
        let next = held.wait.on_response(cfg, now_ms, status.as_deref(), body);
        self.next(context, next)
    }

    /// Wakes retries that are due and ends waits whose callout is overdue.
    pub fn tick(&mut self, cfg: &ApprovalConfig, now_ms: u64) -> Vec<Effect> {
        let mut due = Vec::new();
        for (context, held) in self.held.iter_mut().filter(|(_, h)| h.outcome.is_none()) {
            if held.wake_at.is_some_and(|at| at <= now_ms) {
                held.wake_at = None;
                due.push((*context, held.wait.on_wake(cfg, now_ms)));
            } else if held.token.is_some() && held.wait.overdue_at().is_some_and(|at| at <= now_ms)
            {
                held.token = None;
                log::warn!(
                    "transit-guard: the approver did not answer in time for request {}; refusing it",
                    held.request_id
                );
                due.push((*context, Next::Done(held.wait.on_overdue())));
            }
        }
        due.into_iter()
            .filter_map(|(context, next)| self.next(context, next))
            .collect()
    }

    /// The request's stream ended: forget it. Returns how its approval ended
    /// (for the audit), if it did, and the callout still in flight, whose
    /// answer now has nobody to go to: an approval it brings stays unused
    /// (the approver's answers never use one; only this request's `use` call
    /// would have), so the agent's retry can pass on it.
    pub fn forget(&mut self, context: u32) -> (Option<Outcome>, Option<u32>) {
        match self.held.remove(&context) {
            Some(held) => (held.outcome, held.token),
            None => (None, None),
        }
    }

    /// Requests still waiting for a decision.
    pub fn waiting(&self) -> usize {
        self.held.values().filter(|h| h.outcome.is_none()).count()
    }

    fn next(&mut self, context: u32, next: Next) -> Option<Effect> {
        match next {
            Next::Call(callout) => Some(Effect::Call { context, callout }),
            Next::RetryAt(at) => {
                let held = self.held.get_mut(&context)?;
                held.wake_at = Some(at);
                log::warn!(
                    "transit-guard: the approver failed while request {} waits for its approval; asking again shortly",
                    held.request_id
                );
                None
            }
            Next::Done(outcome) => self.finish(context, outcome),
        }
    }

    /// Resumes the request (approved) or answers it.
    fn finish(&mut self, context: u32, outcome: Outcome) -> Option<Effect> {
        let held = self.held.get_mut(&context)?;
        let reply = outcome.reply(&held.rule);
        held.outcome = Some(outcome);
        held.token = None;
        held.wake_at = None;
        let request_id = held.request_id.clone();
        Some(match reply {
            None => Effect::Resume {
                context,
                request_id,
            },
            Some(reply) => Effect::Reply {
                context,
                request_id,
                reply,
            },
        })
    }
}
