//! One worker VM's filter: the policy, and what the worker's streams share
//! (identity keys and verified tokens, requests held for approval, the
//! callouts in flight, the audit sink). The host's root context creates it
//! ([`Worker::configure`]), forwards its tick and callout answers here, and
//! gives each stream an [`crate::http_filter::HttpFilter`].
//!
//! No `RefCell` borrow is held across a host call that can re-enter the
//! module (a local reply runs this filter's response callbacks).

use std::cell::RefCell;
use std::time::Duration;

use crate::approval::registry::{ApprovalStart, Effect, Registry};
use crate::approval::Outcome;
use crate::audit::sink::Sink;
use crate::callout::{Callouts, Owner};
use crate::config::Policy;
use crate::envoy::{now_ms, CalloutRequest, Envoy};
use crate::identity::refresh::Refresh;
use crate::identity::state::IdentityState;
use crate::policy::PolicyError;

/// How often the root ticks (when [`Worker::needs_tick`]): approval retries
/// and overdue callouts, JWKS refreshes, collector flushes.
pub const TICK: Duration = Duration::from_millis(250);

#[derive(Debug)]
pub struct Worker {
    pub policy: Policy,
    pub identity: Option<IdentityState>,
    refresh: RefCell<Refresh>,
    sink: Option<RefCell<Sink>>,
    approvals: RefCell<Registry>,
    callouts: RefCell<Callouts>,
}

impl Worker {
    pub fn new(policy: Policy) -> Worker {
        Worker {
            identity: policy.auth.as_ref().map(IdentityState::new),
            sink: policy
                .audit
                .collector
                .as_ref()
                .map(|c| RefCell::new(Sink::new(c))),
            refresh: RefCell::default(),
            approvals: RefCell::default(),
            callouts: RefCell::default(),
            policy,
        }
    }

    /// Loads the plugin configuration. An error is the one line Envoy logs
    /// before refusing the plugin.
    pub fn configure(config: &[u8]) -> Result<Worker, PolicyError> {
        let policy = Policy::from_json(config)?;
        log::info!(
            "transit-guard: policy loaded (mode {:?}, require_tls {}, {} rules, identity {})",
            policy.mode,
            policy.require_tls,
            policy.rules.len(),
            if policy.auth.is_some() { "on" } else { "off" }
        );
        Ok(Worker::new(policy))
    }

    /// Whether anything here runs on the tick. The root then ticks for the
    /// worker's whole life: one owner, never started or stopped per request.
    pub fn needs_tick(&self) -> bool {
        self.identity.as_ref().is_some_and(|i| i.has_remote_keys())
            || self.sink.is_some()
            || self.policy.approval.is_some()
    }

    /// The tick: approvals first (they have deadlines), then key refreshes,
    /// then the audit sink.
    pub fn on_tick(&self, envoy: &impl Envoy) {
        let now = now_ms(envoy);
        if let Some(cfg) = &self.policy.approval {
            let effects = self.approvals.borrow_mut().tick(cfg, now);
            for effect in effects {
                self.carry_out(envoy, effect);
            }
        }
        if let Some(identity) = &self.identity {
            let mut callouts = self.callouts.borrow_mut();
            self.refresh
                .borrow_mut()
                .tick(envoy, identity, &mut callouts, now / 1000);
        }
        if let Some(sink) = &self.sink {
            sink.borrow_mut()
                .tick(envoy, &mut self.callouts.borrow_mut());
        }
    }

    /// A callout answered (in whichever context dispatched it).
    pub fn on_callout_response(&self, envoy: &impl Envoy, token: u32, body_size: usize) {
        let Some(owner) = self.callouts.borrow_mut().take(token) else {
            return; // given up on, or not ours
        };
        let response = envoy.callout_response(body_size);
        let now = now_ms(envoy);
        match owner {
            Owner::Approval { context } => {
                let Some(cfg) = &self.policy.approval else {
                    return;
                };
                let effect = self.approvals.borrow_mut().answered(
                    cfg,
                    context,
                    token,
                    now,
                    response.status,
                    &response.body,
                );
                if let Some(effect) = effect {
                    self.carry_out(envoy, effect);
                }
            }
            Owner::Jwks { provider } => {
                if let Some(identity) = &self.identity {
                    self.refresh.borrow_mut().answered(
                        envoy,
                        identity,
                        provider,
                        &response,
                        now / 1000,
                    );
                }
            }
            Owner::Collector => {
                if let Some(sink) = &self.sink {
                    sink.borrow_mut().answered(envoy, response.status);
                }
            }
        }
    }

    /// Starts asking the approver about the request held in `context`; the
    /// worker resumes or answers it later. The caller checked that the
    /// policy has an approval section (else it refuses the request itself).
    pub fn begin_approval(
        &self,
        envoy: &impl Envoy,
        context: u32,
        start: ApprovalStart,
        request_id: String,
    ) {
        let Some(cfg) = &self.policy.approval else {
            return;
        };
        let effect =
            self.approvals
                .borrow_mut()
                .begin(cfg, context, start, request_id, now_ms(envoy));
        self.carry_out(envoy, effect);
    }

    /// The stream ended: how its approval ended, if it had one. A callout
    /// still in flight is forgotten: Envoy cancels the stream's own, and the
    /// answer to one made on the tick is dropped (never acted on).
    pub fn end_approval(&self, context: u32) -> Option<Outcome> {
        let (outcome, in_flight) = self.approvals.borrow_mut().forget(context);
        if let Some(token) = in_flight {
            self.callouts.borrow_mut().forget(token);
        }
        outcome
    }

    /// Queues an audit record for the collector, if one is configured.
    pub fn collect(&self, envoy: &impl Envoy, line: String) {
        if let Some(sink) = &self.sink {
            sink.borrow_mut().push(envoy, line);
        }
    }

    /// Carries out what the approval registry asks, until it asks nothing.
    fn carry_out(&self, envoy: &impl Envoy, effect: Effect) {
        let mut next = Some(effect);
        while let Some(effect) = next.take() {
            next = match effect {
                Effect::Call { context, callout } => {
                    let Some(cfg) = &self.policy.approval else {
                        return;
                    };
                    let call = CalloutRequest {
                        cluster: cfg.cluster.clone(),
                        headers: callout
                            .headers
                            .iter()
                            .map(|(k, v)| ((*k).to_string(), v.clone()))
                            .collect(),
                        body: callout.body.clone(),
                        timeout: Duration::from_millis(callout.timeout_ms),
                    };
                    let token = self.callouts.borrow_mut().dispatch(
                        envoy,
                        &call,
                        Owner::Approval { context },
                    );
                    if let Err(e) = &token {
                        log::error!(
                            "transit-guard: cannot call the approver on cluster {}: {e}",
                            cfg.cluster
                        );
                    }
                    self.approvals
                        .borrow_mut()
                        .dispatched(context, token.map_err(|_| ()))
                }
                Effect::Resume {
                    context,
                    request_id,
                } => {
                    if let Err(e) = envoy.resume_stream(context) {
                        // The stream is gone (the agent left): nothing to resume.
                        log::info!("transit-guard: held request {request_id} ended before its approval: {e}");
                    }
                    None
                }
                Effect::Reply {
                    context,
                    request_id,
                    reply,
                } => {
                    let body = reply.body(&request_id);
                    let sent = envoy.reply_to_stream(
                        context,
                        reply.status,
                        &reply.all_headers(),
                        body.as_bytes(),
                    );
                    if let Err(e) = sent {
                        log::info!("transit-guard: held request {request_id} ended before its approval: {e}");
                    }
                    None
                }
            };
        }
    }
}
