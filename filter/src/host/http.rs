//! The HTTP context: one per request stream. It reads from Envoy, asks the
//! core's [`Flow`] what to do, and does it.

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, BufferType, MapType};

use super::collector::Queue;
use super::identity::IdentityState;
use super::{approval, metrics, props};
use crate::approval::{Failure, Outcome};
use crate::audit::{self, Decision, EnvoyFacts, Exchange};
use crate::config::Policy;
use crate::flow::{
    header_value, ApprovalStart, BodyStep, ChunkStep, Flow, HeaderEdit, ResponseStep, Step,
};
use crate::reply::LocalReply;
use crate::request::RequestHead;

pub struct Http {
    context_id: u32,
    /// `None` only if the policy failed to load; every request is then refused.
    policy: Option<Rc<Policy>>,
    flow: Flow,
    /// The worker's key store and token cache (when the policy has `identity`).
    identity: Option<Rc<IdentityState>>,
    /// The audit collector's queue (when `audit.collector` is set).
    collector: Option<Queue>,
    start: Option<std::time::SystemTime>,
    /// Kept while the request is held, for the rules' second phase.
    request_headers: Vec<(String, String)>,
    holding_request: bool,
    holding_response: bool,
    /// The response body is masked chunk by chunk as it passes (SSE).
    streaming_response: bool,
    response_content_type: Option<String>,
    body_seen: u64,
}

impl Http {
    pub fn new(
        context_id: u32,
        policy: Option<Rc<Policy>>,
        identity: Option<Rc<IdentityState>>,
        collector: Option<Queue>,
    ) -> Self {
        Http {
            context_id,
            policy,
            flow: Flow::default(),
            identity,
            collector,
            start: None,
            request_headers: Vec::new(),
            holding_request: false,
            holding_response: false,
            streaming_response: false,
            response_content_type: None,
            body_seen: 0,
        }
    }

    fn request_id(&self) -> &str {
        &self.flow.exchange.request_id
    }

    /// Sends a local reply and stops the stream.
    fn refuse(&self, reply: &LocalReply) -> Action {
        let body = reply.body(self.request_id());
        if let Err(status) = hostcalls::send_http_response(
            u32::from(reply.status),
            reply.all_headers(),
            Some(body.as_bytes()),
        ) {
            // Never continue after a failed refusal: the stream stays paused
            // until Envoy's own timeouts end it.
            log::error!(
                "transit-guard: cannot send the {} reply for request {}: {status:?}",
                reply.status,
                self.request_id()
            );
        }
        Action::Pause
    }

    /// Request header edits the flow asks for, then let the request go.
    fn release_request(&self) -> Action {
        match self.apply_header_edits() {
            Ok(()) => Action::Continue,
            Err(action) => action,
        }
    }

    /// Keeps the whole request held (header edits made) while the approver
    /// is asked; `host::approval` resumes or answers it.
    fn hold_for_approval(&mut self, policy: &Rc<Policy>, start: ApprovalStart) -> Action {
        if policy.approval.is_none() {
            // The loader refuses require_approval without an approval section;
            // never leave a request paused with nobody to end it.
            let outcome = Outcome::Failed {
                failure: Failure::DispatchFailed,
                id: None,
            };
            return match self.flow.on_approval(&outcome) {
                Some(reply) => self.refuse(&reply),
                None => self.refuse(&internal_error()),
            };
        }
        if let Err(action) = self.apply_header_edits() {
            return action;
        }
        approval::begin(
            self.context_id,
            policy.clone(),
            start,
            self.request_id().to_string(),
        );
        Action::Pause
    }

    /// The approval ended (or the stream did): record it for the audit.
    fn record_approval(&mut self) {
        if let Some(outcome) = approval::forget(self.context_id) {
            let _ = self.flow.on_approval(&outcome);
            metrics::incr("approvals", outcome.audit().1);
        }
    }

    /// Makes the request header edits; on failure the request is refused.
    fn apply_header_edits(&self) -> Result<(), Action> {
        for edit in self.flow.header_edits() {
            let (name, value) = match &edit {
                HeaderEdit::Set(name, value) => (name, Some(value.as_str())),
                HeaderEdit::Remove(name) => (name, None),
            };
            if let Err(status) = hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value)
            {
                log::error!(
                    "transit-guard: cannot edit {name} on request {}: {status:?}",
                    self.request_id()
                );
                return Err(self.refuse(&internal_error()));
            }
        }
        Ok(())
    }

    /// Reads `size` bytes of a body buffer; `None` (logged) if Envoy refuses:
    /// the caller then fails closed.
    fn read_body(&self, buffer: BufferType, size: usize) -> Option<Vec<u8>> {
        match hostcalls::get_buffer(buffer, 0, size) {
            Ok(bytes) => Some(bytes.unwrap_or_default()),
            Err(status) => {
                log::error!(
                    "transit-guard: cannot read the {buffer:?} of request {}: {status:?}",
                    self.request_id()
                );
                None
            }
        }
    }

    /// Replaces the first `size` bytes of a body buffer; false (logged) if
    /// Envoy refuses: the caller then fails closed.
    fn replace_body(&self, buffer: BufferType, size: usize, new: &[u8]) -> bool {
        match hostcalls::set_buffer(buffer, 0, size, new) {
            Ok(()) => true,
            Err(status) => {
                log::error!(
                    "transit-guard: cannot rewrite the {buffer:?} of request {}: {status:?}",
                    self.request_id()
                );
                false
            }
        }
    }

    /// The whole held request body is here: decide, maybe rewrite, release.
    fn finish_request_body(&mut self, policy: &Rc<Policy>, size: usize) -> Action {
        self.holding_request = false;
        let Some(body) = self.read_body(BufferType::HttpRequestBody, size) else {
            return self.refuse(&internal_error());
        };
        let step = self
            .flow
            .on_request_body(policy, &self.request_headers, &body);
        match step {
            BodyStep::Continue => self.release_request(),
            BodyStep::Replace(new) => {
                if !self.replace_body(BufferType::HttpRequestBody, size, &new) {
                    return self.refuse(&internal_error());
                }
                self.release_request()
            }
            BodyStep::Refuse(reply) => self.refuse(&reply),
            BodyStep::Approve { start, replace } => {
                if let Some(new) = replace {
                    if !self.replace_body(BufferType::HttpRequestBody, size, &new) {
                        return self.refuse(&internal_error());
                    }
                }
                self.hold_for_approval(policy, start)
            }
        }
    }

    /// One chunk of a streamed response: replaced by what the masker lets
    /// out now. Anything that fails resets the stream: unmasked bytes never
    /// pass.
    fn stream_response_chunk(&mut self, policy: &Policy, size: usize, end: bool) -> Action {
        let Some(chunk) = self.read_body(BufferType::HttpResponseBody, size) else {
            return self.abort_response();
        };
        let out = match self.flow.on_response_chunk(policy, &chunk, end) {
            ChunkStep::Emit(out) => out,
            ChunkStep::Abort => {
                log::error!(
                    "transit-guard: response of {} cannot be masked as it streams; reset",
                    self.request_id()
                );
                return self.abort_response();
            }
        };
        if out != chunk && !self.replace_body(BufferType::HttpResponseBody, size, &out) {
            return self.abort_response();
        }
        Action::Continue
    }

    /// Ends a response whose headers have gone: a reset, never a pass.
    fn abort_response(&mut self) -> Action {
        self.streaming_response = false;
        if let Err(status) = hostcalls::reset_http_response() {
            log::error!(
                "transit-guard: cannot reset the response of {}: {status:?}",
                self.request_id()
            );
        }
        Action::Pause
    }

    fn envoy_facts(&self) -> EnvoyFacts {
        EnvoyFacts {
            start: self.start,
            response_code: props::u64_prop(&["response", "code"]),
            code_details: props::string_prop(&["response", "code_details"]),
            response_flags: props::u64_prop(&["response", "flags"]).unwrap_or(0),
            bytes_in: props::u64_prop(&["request", "size"]).unwrap_or(0),
            bytes_out: props::u64_prop(&["response", "size"]).unwrap_or(0),
            duration: props::duration_prop(&["request", "duration"]),
        }
    }
}

fn internal_error() -> LocalReply {
    LocalReply::new(
        500,
        "filter_error",
        "the gateway could not apply its policy; the request was not forwarded",
    )
}

fn header(map: MapType, name: &str) -> Option<String> {
    hostcalls::get_map_value(map, name).ok().flatten()
}

impl Context for Http {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        approval::on_response(token, body_size);
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        self.start = hostcalls::get_current_time().ok();
        // One host call for every header; the fields below are read from it.
        self.request_headers = hostcalls::get_map(MapType::HttpRequestHeaders).unwrap_or_default();
        let get = |name: &str| {
            header_value(&self.request_headers, name)
                .unwrap_or_default()
                .to_string()
        };
        self.flow = Flow::new(Exchange {
            request_id: get("x-request-id"),
            method: get(":method"),
            authority: get(":authority"),
            path: get(":path"),
            ..Exchange::default()
        });
        let Some(policy) = self.policy.clone() else {
            self.flow
                .exchange
                .refuse(Decision::Error, "policy_unavailable");
            return self.refuse(&LocalReply::new(
                500,
                "policy_unavailable",
                "the gateway has no valid policy loaded",
            ));
        };
        let head = RequestHead {
            downstream_tls: props::downstream_tls(),
            content_length: header_value(&self.request_headers, "content-length"),
        };
        let identity = self.identity.clone();
        let headers = &self.request_headers;
        let path = self.flow.exchange.path.clone();
        let step = self.flow.on_request_headers(
            &policy,
            &head,
            headers,
            || identity.map(|i| i.authenticate(headers, &path)),
            end_of_stream,
        );
        match step {
            Step::Continue => self.release_request(),
            // Headers are held (the plugin sets allow_on_headers_stop_iteration)
            // while Envoy buffers the body: the upstream sees nothing yet.
            Step::Hold => {
                self.holding_request = true;
                Action::Pause
            }
            Step::Refuse(reply) => self.refuse(&reply),
            Step::Approve(start) => self.hold_for_approval(&policy, start),
        }
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        let Some(policy) = self.policy.clone() else {
            return Action::Pause;
        };
        if !self.holding_request {
            self.body_seen = self.body_seen.saturating_add(body_size as u64);
            return match self.flow.on_request_progress(&policy, self.body_seen) {
                Step::Refuse(reply) => self.refuse(&reply),
                Step::Continue | Step::Hold | Step::Approve(_) => Action::Continue,
            };
        }
        // Held: Envoy accumulates the body; body_size is all of it so far.
        if let Step::Refuse(reply) = self.flow.on_request_progress(&policy, body_size as u64) {
            return self.refuse(&reply);
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.finish_request_body(&policy, body_size)
    }

    fn on_http_request_trailers(&mut self, _num_trailers: usize) -> Action {
        // With trailers the body callback never sees end of stream (HTTP/2).
        let Some(policy) = self.policy.clone() else {
            return Action::Pause;
        };
        if !self.holding_request {
            return Action::Continue;
        }
        self.finish_request_body(&policy, usize::MAX)
    }

    fn on_http_response_headers(&mut self, _num_headers: usize, end_of_stream: bool) -> Action {
        let resp = MapType::HttpResponseHeaders;
        self.response_content_type = header(resp, "content-type");
        let encoding = header(resp, "content-encoding");
        let Some(policy) = self.policy.clone() else {
            return Action::Continue;
        };
        match self.flow.on_response_headers(
            &policy,
            self.response_content_type.as_deref(),
            encoding.as_deref(),
            end_of_stream,
        ) {
            ResponseStep::Continue => Action::Continue,
            ResponseStep::Stream => {
                // The body changes length as it streams.
                let _ = hostcalls::remove_map_value(resp, "content-length");
                self.streaming_response = true;
                Action::Continue
            }
            ResponseStep::Hold => {
                // The body will change length; hold the headers so a refusal
                // (too large to mask) can still change the status.
                let _ = hostcalls::remove_map_value(resp, "content-length");
                self.holding_response = true;
                Action::Pause
            }
            ResponseStep::Refuse(reply) => self.refuse(&reply),
        }
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        if !self.holding_response && !self.streaming_response {
            return Action::Continue;
        }
        let Some(policy) = self.policy.clone() else {
            return Action::Pause;
        };
        if self.streaming_response {
            return self.stream_response_chunk(&policy, body_size, end_of_stream);
        }
        if let Step::Refuse(reply) = self.flow.on_response_progress(&policy, body_size as u64) {
            return self.refuse(&reply);
        }
        if !end_of_stream {
            return Action::Pause;
        }
        self.holding_response = false;
        let Some(body) = self.read_body(BufferType::HttpResponseBody, body_size) else {
            return self.refuse(&internal_error());
        };
        let content_type = self.response_content_type.clone();
        match self
            .flow
            .on_response_body(&policy, content_type.as_deref(), &body)
        {
            BodyStep::Continue => Action::Continue,
            BodyStep::Replace(new) => {
                if !self.replace_body(BufferType::HttpResponseBody, body_size, &new) {
                    return self.refuse(&internal_error());
                }
                Action::Continue
            }
            BodyStep::Refuse(reply) => self.refuse(&reply),
            BodyStep::Approve { .. } => self.refuse(&internal_error()),
        }
    }

    /// Exactly one audit record per request, whatever happened: published as
    /// filter state for Envoy's access log (`%FILTER_STATE(wasm.transit_guard.audit:PLAIN)%`).
    fn on_log(&mut self) {
        // issue 14: a stream whose headers never reached the filter (Envoy
        // refused it first, e.g. `OPTIONS *`) is recorded by Envoy's own
        // access log (`refused_by_envoy`, envoy/gateway.yaml), not as an
        // empty record here.
        if self.start.is_none() {
            return;
        }
        self.record_approval();
        let ex = &self.flow.exchange;
        if !ex.would.is_empty() {
            // Monitor mode: what enforcing would have done, for the rollout.
            log::warn!(
                "transit-guard: monitor mode, would refuse request {}: {}",
                ex.request_id,
                ex.would.join("; ")
            );
        }
        let record = audit::record(ex, &self.envoy_facts());
        let line = record.to_json();
        if let Err(status) =
            hostcalls::set_property(vec!["transit_guard.audit"], Some(line.as_bytes()))
        {
            log::error!(
                "transit-guard: cannot publish the audit record of request {}: {status:?}",
                ex.request_id
            );
            metrics::incr("audit", "dropped");
        }
        if let Some(queue) = &self.collector {
            if !queue.borrow_mut().push(line) {
                metrics::incr("audit", "dropped");
            }
        }
        metrics::incr("requests", record.decision.as_str());
        for (detector, n) in &record.masked {
            metrics::add("masked", detector, u64::from(*n));
        }
        if let Some(rule) = &ex.deny_rule {
            metrics::incr("denied", rule);
        }
        if let Some(reason) = ex.auth_failure {
            metrics::incr("auth_failures", reason);
        }
    }
}
