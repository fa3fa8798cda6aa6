//! One request stream, callback by callback: reads what the [`Flow`] needs
//! from [`Envoy`], asks the flow, and carries out its step. Any host call
//! that fails ends the request with a refusal (or, once the response's
//! headers are gone, a reset): nothing passes because something failed.
//! The host's `HttpContext` forwards each callback here unchanged.

mod facts;

use std::rc::Rc;
use std::time::SystemTime;

use crate::audit::metrics::{self, Family};
use crate::audit::{self, Decision};
use crate::envoy::{Body, Envoy, HostError};
use crate::flow::{
    ChunkStep, Flow, HeaderEdit, HeadersStep, HostFailure, RequestBodyStep, RequestDataStep,
    ResponseBodyStep, ResponseDataStep, ResponseHeadersStep,
};
use crate::headers;
use crate::local_reply::LocalReply;
use crate::quota;
use crate::worker::Worker;

/// What Envoy does with the stream after a callback.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Action {
    Continue,
    /// Hold it (buffering, waiting for an approval, or answered locally).
    Pause,
}

pub struct HttpFilter {
    context: u32,
    /// `None` only if the policy failed to load: every request is refused.
    worker: Option<Rc<Worker>>,
    flow: Flow,
    /// Kept while the request is held, for the rules' second phase.
    request_headers: Vec<(String, String)>,
    /// What went by of the stream, for the audit record's end facts.
    seen: facts::Seen,
    /// Who this request is counted against (`quotas`), once admitted.
    quota_key: Option<String>,
    /// The carried-out rules were charged to `rule_matches` limits.
    quota_rules_charged: bool,
}

impl HttpFilter {
    pub fn new(context: u32, worker: Option<Rc<Worker>>) -> HttpFilter {
        HttpFilter {
            context,
            worker,
            flow: Flow::default(),
            request_headers: Vec::new(),
            seen: facts::Seen::default(),
            quota_key: None,
            quota_rules_charged: false,
        }
    }

    /// A callout this stream dispatched answered: the worker routes it.
    pub fn on_callout_response(&self, envoy: &impl Envoy, token: u32, body_size: usize) {
        if let Some(worker) = &self.worker {
            worker.on_callout_response(envoy, token, body_size);
        }
    }

    /// The flow, for tests and the audit.
    pub fn flow(&self) -> &Flow {
        &self.flow
    }

    pub fn on_request_headers(&mut self, envoy: &impl Envoy, end_of_stream: bool) -> Action {
        let now = envoy.now();
        self.seen.start = Some(now);
        self.seen.request_bodiless = end_of_stream;
        let Some(worker) = self.worker.clone() else {
            self.flow
                .exchange
                .refuse(Decision::Error, "policy_unavailable");
            let reply = LocalReply::new(
                500,
                "policy_unavailable",
                "the gateway has no valid policy loaded",
            );
            return self.send(envoy, &reply);
        };
        // One host call for every header; the flow reads what it needs from it.
        self.request_headers = match envoy.request_headers() {
            Ok(h) => h,
            Err(e) => return self.host_failure(envoy, HostFailure::RequestHeaders, &e),
        };
        self.seen.request_length =
            headers::first(&self.request_headers, "content-length").map(str::to_string);
        let tls = envoy
            .property(&["connection", "tls_version"])
            .is_some_and(|v| !v.is_empty());
        let headers = &self.request_headers;
        let identity = worker.identity.as_ref();
        let now_secs = now
            .duration_since(SystemTime::UNIX_EPOCH)
            .map_or(0, |d| d.as_secs());
        let authenticate = || {
            let path = headers::first(headers, ":path").unwrap_or_default();
            identity.map(|i| i.authenticate(envoy, headers, path, now_secs))
        };
        let step =
            self.flow
                .on_request_headers(&worker.policy, headers, tls, authenticate, end_of_stream);
        // A request the rules let on is counted against its identity's limits.
        let step = match step {
            HeadersStep::Refuse(_) => step,
            other => match self.charge_quota(envoy, &worker, 1) {
                Some(reply) => HeadersStep::Refuse(reply),
                None => other,
            },
        };
        match step {
            HeadersStep::Continue => self.release(envoy),
            // Headers are held (the plugin sets allow_on_headers_stop_iteration)
            // while Envoy buffers the body: the upstream sees nothing yet.
            HeadersStep::Hold => Action::Pause,
            HeadersStep::Refuse(reply) => self.send(envoy, &reply),
            HeadersStep::Approve(start) => self.hold_for_approval(envoy, &worker, start),
        }
    }

    pub fn on_request_body(&mut self, envoy: &impl Envoy, size: usize, end: bool) -> Action {
        let Some(worker) = self.worker.clone() else {
            return Action::Pause;
        };
        match self.flow.on_request_data(&worker.policy, size, end) {
            RequestDataStep::Continue => Action::Continue,
            RequestDataStep::Wait => Action::Pause,
            RequestDataStep::Refuse(reply) => self.send(envoy, &reply),
            RequestDataStep::Complete => self.finish_request_body(envoy, &worker, size),
        }
    }

    /// With trailers the body callback never sees its end (HTTP/2).
    pub fn on_request_trailers(&mut self, envoy: &impl Envoy) -> Action {
        let Some(worker) = self.worker.clone() else {
            return Action::Pause;
        };
        match self.flow.on_request_trailers() {
            RequestDataStep::Continue => Action::Continue,
            RequestDataStep::Wait => Action::Pause,
            RequestDataStep::Refuse(reply) => self.send(envoy, &reply),
            RequestDataStep::Complete => self.finish_request_body(envoy, &worker, usize::MAX),
        }
    }

    pub fn on_response_headers(&mut self, envoy: &impl Envoy, end_of_stream: bool) -> Action {
        let Some(worker) = self.worker.clone() else {
            return Action::Continue;
        };
        // One read of every header: the status and length for the audit
        // record; the content type and encoding when the response is masked
        // or recorded, which cannot go on unread. Unwatched, a failed read
        // only costs the audit record Envoy's attributes instead.
        let response_headers = match envoy.response_headers() {
            Ok(h) => h,
            Err(e) if self.flow.watches_response() => {
                return self.host_failure(envoy, HostFailure::ResponseHeaders, &e)
            }
            Err(_) => Vec::new(),
        };
        self.seen.response_headers(&response_headers, end_of_stream);
        let (content_type, encoding) = if self.flow.watches_response() {
            (
                headers::first(&response_headers, "content-type"),
                headers::first(&response_headers, "content-encoding"),
            )
        } else {
            (None, None)
        };
        let step =
            self.flow
                .on_response_headers(&worker.policy, content_type, encoding, end_of_stream);
        if matches!(
            step,
            ResponseHeadersStep::Stream | ResponseHeadersStep::Hold
        ) {
            // The body will not be the one `content-length` announced.
            self.seen.response_rewritten = true;
        }
        match step {
            ResponseHeadersStep::Continue => Action::Continue,
            // The body changes length as it streams.
            ResponseHeadersStep::Stream => match envoy.remove_response_header("content-length") {
                Ok(()) => Action::Continue,
                Err(e) => self.host_failure(envoy, HostFailure::ResponseHeaderEdit, &e),
            },
            // The body will change length; the headers are held so a
            // refusal (too large to mask) can still change the status.
            ResponseHeadersStep::Hold => match envoy.remove_response_header("content-length") {
                Ok(()) => Action::Pause,
                Err(e) => self.host_failure(envoy, HostFailure::ResponseHeaderEdit, &e),
            },
            ResponseHeadersStep::Refuse(reply) => self.send(envoy, &reply),
        }
    }

    pub fn on_response_body(&mut self, envoy: &impl Envoy, size: usize, end: bool) -> Action {
        self.seen.response_ended |= end;
        let Some(worker) = self.worker.clone() else {
            return Action::Pause;
        };
        match self.flow.on_response_data(&worker.policy, size, end) {
            ResponseDataStep::Continue => Action::Continue,
            ResponseDataStep::Wait => Action::Pause,
            ResponseDataStep::Refuse(reply) => self.send(envoy, &reply),
            ResponseDataStep::Chunk => self.stream_chunk(envoy, &worker, size, end),
            ResponseDataStep::Complete => {
                let body = match envoy.read_body(Body::Response, size) {
                    Ok(b) => b,
                    Err(e) => return self.host_failure(envoy, HostFailure::ReadBody, &e),
                };
                match self.flow.on_response_body(&worker.policy, &body) {
                    ResponseBodyStep::Continue => {
                        self.seen.response_handed_on = Some(body.len() as u64);
                        Action::Continue
                    }
                    ResponseBodyStep::Replace(new) => {
                        match envoy.replace_body(Body::Response, size, &new) {
                            Ok(()) => {
                                self.seen.response_handed_on = Some(new.len() as u64);
                                Action::Continue
                            }
                            Err(e) => self.host_failure(envoy, HostFailure::ReplaceBody, &e),
                        }
                    }
                    ResponseBodyStep::Refuse(reply) => self.send(envoy, &reply),
                }
            }
        }
    }

    /// Exactly one audit record per request, whatever happened: published
    /// as filter state for Envoy's access log
    /// (`%FILTER_STATE(wasm.transit_guard.audit:PLAIN)%`), queued for the
    /// collector, and counted.
    pub fn on_log(&mut self, envoy: &impl Envoy) {
        // A stream whose headers never reached the filter (Envoy refused it
        // first, e.g. `OPTIONS *`) is recorded by Envoy's own access log
        // (`refused_by_envoy`, envoy/gateway.yaml), not as an empty record.
        if self.seen.start.is_none() {
            return;
        }
        if let Some(outcome) = self
            .worker
            .as_ref()
            .and_then(|w| w.end_approval(self.context))
        {
            let _ = self.flow.on_approval(&outcome);
            metrics::incr(envoy, Family::Approvals, outcome.audit().1);
        }
        let ex = &self.flow.exchange;
        if !ex.would.is_empty() {
            // Monitor mode: what enforcing would have done, for the rollout.
            log::warn!(
                "transit-guard: monitor mode, would refuse request {}: {}",
                ex.request_id,
                ex.would.join("; ")
            );
        }
        let record = audit::record(ex, &self.seen.facts(envoy));
        let line = record.to_json();
        if let Err(e) = envoy.set_property(&["transit_guard.audit"], line.as_bytes()) {
            log::error!(
                "transit-guard: cannot publish the audit record of request {}: {e}",
                ex.request_id
            );
            metrics::incr(envoy, Family::Audit, "dropped");
        }
        metrics::incr(envoy, Family::Requests, record.decision.as_str());
        for (detector, n) in &record.masked {
            metrics::add(envoy, Family::Masked, detector, u64::from(*n));
        }
        for (detector, n) in &ex.tokenized {
            metrics::add(envoy, Family::Tokenized, detector, u64::from(*n));
        }
        for (detector, n) in &ex.restored {
            metrics::add(envoy, Family::Restored, detector, u64::from(*n));
        }
        if let Some(rule) = &ex.deny_rule {
            metrics::incr(envoy, Family::Denied, rule);
        }
        if let Some(reason) = ex.auth_failure {
            metrics::incr(envoy, Family::AuthFailures, reason);
        }
        if let Some(limit) = &ex.quota {
            metrics::incr(envoy, Family::QuotaExceeded, limit);
        }
        if let Some(worker) = &self.worker {
            self.charge_bytes(envoy, worker, record.bytes_in, record.bytes_out);
            worker.collect(envoy, line);
        }
    }

    /// Charges a new request (`requests` 1), or the rules decided on its
    /// body (`requests` 0), to the identity's `quotas` counters: `Some` when
    /// that refuses it. Requests without a verified identity are not counted.
    fn charge_quota(
        &mut self,
        envoy: &impl Envoy,
        worker: &Rc<Worker>,
        requests: u64,
    ) -> Option<crate::local_reply::LocalReply> {
        let quotas = worker.policy.quotas.as_ref()?;
        let key = match (&self.quota_key, requests) {
            (Some(k), 0) => k.clone(),
            (_, 0) => return None,
            _ => quota::identity_key(self.flow.exchange.identity.as_ref()?),
        };
        if requests == 0 && (self.quota_rules_charged || !self.flow.decided()) {
            return None;
        }
        let rules = if self.flow.decided() {
            self.quota_rules_charged = true;
            self.flow.exchange.rules.clone()
        } else {
            Vec::new()
        };
        let declared = headers::first(&self.request_headers, "content-length")
            .and_then(|v| v.trim().parse().ok())
            .unwrap_or(0);
        let charge = quota::Charge {
            requests,
            declared_request_bytes: declared,
            rules: &rules,
            enforce: true,
            ..quota::Charge::default()
        };
        let result = quota::shared::charge(envoy, quotas, &key, now_secs(envoy), &charge);
        let admitted = matches!(result, Ok(Ok(())));
        let reply = self.flow.on_quota(&worker.policy, result);
        if admitted || reply.is_none() {
            self.quota_key = Some(key);
        }
        reply
    }

    /// At the end of an admitted request: the bytes it moved.
    fn charge_bytes(&self, envoy: &impl Envoy, worker: &Worker, bytes_in: u64, bytes_out: u64) {
        let (Some(quotas), Some(key)) = (&worker.policy.quotas, &self.quota_key) else {
            return;
        };
        if !quotas.limits.iter().any(|l| l.counts.is_bytes()) {
            return;
        }
        let charge = quota::Charge {
            request_bytes: bytes_in,
            response_bytes: bytes_out,
            ..quota::Charge::default()
        };
        match quota::shared::charge(envoy, quotas, key, now_secs(envoy), &charge) {
            Ok(Ok(())) => {}
            // Not refusable any more: the next request meets the counts.
            Ok(Err(_)) | Err(_) => {
                log::warn!(
                    "transit-guard: the bytes of request {} could not be counted",
                    self.flow.exchange.request_id
                );
                metrics::incr(envoy, Family::QuotaExceeded, "uncounted");
            }
        }
    }

    /// The whole held request body is here: decide, maybe rewrite, release.
    fn finish_request_body(
        &mut self,
        envoy: &impl Envoy,
        worker: &Rc<Worker>,
        size: usize,
    ) -> Action {
        let body = match envoy.read_body(Body::Request, size) {
            Ok(b) => b,
            Err(e) => return self.host_failure(envoy, HostFailure::ReadBody, &e),
        };
        let step = self
            .flow
            .on_request_body(&worker.policy, &self.request_headers, &body);
        let (replace, approval) = match step {
            RequestBodyStep::Continue => (None, None),
            RequestBodyStep::Replace(new) => (Some(new), None),
            RequestBodyStep::Refuse(reply) => return self.send(envoy, &reply),
            RequestBodyStep::Approve { start, replace } => (replace, Some(start)),
        };
        // Rules decided on the body are counted now.
        if let Some(reply) = self.charge_quota(envoy, worker, 0) {
            return self.send(envoy, &reply);
        }
        if let Some(new) = replace {
            self.seen.request_rewritten = true;
            if let Err(e) = envoy.replace_body(Body::Request, size, &new) {
                return self.host_failure(envoy, HostFailure::ReplaceBody, &e);
            }
        }
        match approval {
            Some(start) => self.hold_for_approval(envoy, worker, start),
            None => self.release(envoy),
        }
    }

    /// Makes the flow's request header edits, then lets the request go.
    fn release(&mut self, envoy: &impl Envoy) -> Action {
        match self.apply_header_edits(envoy) {
            Ok(()) => Action::Continue,
            Err(action) => action,
        }
    }

    /// Keeps the whole request held (header edits made) while the approver
    /// is asked; the worker resumes or answers it.
    fn hold_for_approval(
        &mut self,
        envoy: &impl Envoy,
        worker: &Rc<Worker>,
        start: crate::flow::ApprovalStart,
    ) -> Action {
        if worker.policy.approval.is_none() {
            // The loader refuses require_approval without an approval
            // section; never leave a request paused with nobody to end it.
            let outcome = crate::approval::Outcome::Failed {
                failure: crate::approval::Failure::DispatchFailed,
                id: None,
            };
            if let Some(reply) = self.flow.on_approval(&outcome) {
                return self.send(envoy, &reply);
            }
            return Action::Pause;
        }
        if let Err(action) = self.apply_header_edits(envoy) {
            return action;
        }
        let request_id = self.flow.exchange.request_id.clone();
        worker.begin_approval(envoy, self.context, start, request_id);
        Action::Pause
    }

    /// Makes the request header edits; on failure the request is refused.
    fn apply_header_edits(&mut self, envoy: &impl Envoy) -> Result<(), Action> {
        for edit in self.flow.header_edits() {
            let (HeaderEdit::Set(name, _) | HeaderEdit::Remove(name)) = &edit;
            if name.eq_ignore_ascii_case("content-length") {
                self.seen.request_rewritten = true;
            }
            let done = match &edit {
                HeaderEdit::Set(name, value) => envoy.set_request_header(name, Some(value)),
                HeaderEdit::Remove(name) => envoy.set_request_header(name, None),
            };
            if let Err(e) = done {
                return Err(self.host_failure(envoy, HostFailure::RequestHeaderEdit, &e));
            }
        }
        Ok(())
    }

    /// One piece of a streamed response, replaced by what the masker lets
    /// out now. Anything that fails resets the stream: unmasked bytes never
    /// pass.
    fn stream_chunk(
        &mut self,
        envoy: &impl Envoy,
        worker: &Rc<Worker>,
        size: usize,
        end: bool,
    ) -> Action {
        let chunk = match envoy.read_body(Body::Response, size) {
            Ok(c) => c,
            Err(e) => return self.abort_response(envoy, HostFailure::ReadBody.code(), &e.0),
        };
        let out = match self.flow.on_response_chunk(&worker.policy, &chunk, end) {
            ChunkStep::Emit(out) => out,
            ChunkStep::Abort => {
                let why = "the response cannot be masked as it streams";
                return self.abort_response(envoy, "response_event_too_large", why);
            }
        };
        if out != chunk {
            self.seen.response_rewritten = true;
            if let Err(e) = envoy.replace_body(Body::Response, size, &out) {
                return self.abort_response(envoy, HostFailure::ReplaceBody.code(), &e.0);
            }
        }
        Action::Continue
    }

    /// Ends a response whose headers have gone: a reset, never a pass.
    fn abort_response(&mut self, envoy: &impl Envoy, code: &'static str, why: &str) -> Action {
        self.seen.replied();
        log::error!(
            "transit-guard: response of {} reset: {why}",
            self.flow.exchange.request_id
        );
        self.flow.on_stream_aborted(code);
        if let Err(e) = envoy.reset_response() {
            log::error!(
                "transit-guard: cannot reset the response of {}: {e}",
                self.flow.exchange.request_id
            );
        }
        Action::Pause
    }

    /// A host call failed: refuse (fail closed), naming what failed.
    fn host_failure(&mut self, envoy: &impl Envoy, failure: HostFailure, e: &HostError) -> Action {
        log::error!(
            "transit-guard: refusing request {}: {} ({e})",
            self.flow.exchange.request_id,
            failure.code()
        );
        let reply = self.flow.on_host_failure(failure);
        self.send(envoy, &reply)
    }

    /// Sends a local reply and keeps the stream stopped.
    fn send(&mut self, envoy: &impl Envoy, reply: &LocalReply) -> Action {
        self.seen.replied();
        let body = reply.body(&self.flow.exchange.request_id);
        if let Err(e) = envoy.send_reply(reply.status, &reply.all_headers(), body.as_bytes()) {
            // Never continue after a failed refusal: the stream stays paused
            // until Envoy's own timeouts end it.
            log::error!(
                "transit-guard: cannot send the {} reply for request {}: {e}",
                reply.status,
                self.flow.exchange.request_id
            );
        }
        Action::Pause
    }
}

fn now_secs(envoy: &impl Envoy) -> u64 {
    crate::envoy::now_ms(envoy) / 1000
}

#[cfg(test)]
mod tests;
