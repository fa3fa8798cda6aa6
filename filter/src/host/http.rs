//! The HTTP context: one per request stream.

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType};

use super::{metrics, props};
use crate::audit::{self, Decision, EnvoyFacts, Exchange};
use crate::config::Policy;
use crate::reply::LocalReply;
use crate::request::{self, RequestHead, Verdict};

pub struct Http {
    /// `None` only if the policy failed to load; every request is then refused.
    policy: Option<Rc<Policy>>,
    exchange: Exchange,
    start: Option<std::time::SystemTime>,
    body_seen: u64,
}

impl Http {
    pub fn new(policy: Option<Rc<Policy>>) -> Self {
        Http {
            policy,
            exchange: Exchange::default(),
            start: None,
            body_seen: 0,
        }
    }

    /// Carries out a verdict: a refusal becomes a local reply and stops the
    /// stream; in monitor mode it is only noted.
    fn act(&mut self, verdict: Verdict) -> Action {
        match verdict {
            Verdict::Continue => Action::Continue,
            Verdict::WouldRefuse(_, reply) => {
                log::warn!(
                    "transit-guard: monitor mode, would refuse request {} with {} {}",
                    self.exchange.request_id,
                    reply.status,
                    reply.error
                );
                self.exchange.would.push(reply.error.to_string());
                Action::Continue
            }
            Verdict::Refuse(decision, reply) => self.refuse(decision, &reply),
        }
    }

    fn refuse(&mut self, decision: Decision, reply: &LocalReply) -> Action {
        self.exchange.refuse(decision, reply.error);
        let body = reply.body(&self.exchange.request_id);
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
                self.exchange.request_id
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

fn request_header(name: &str) -> Option<String> {
    hostcalls::get_map_value(MapType::HttpRequestHeaders, name)
        .ok()
        .flatten()
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.start = hostcalls::get_current_time().ok();
        self.exchange.request_id = request_header("x-request-id").unwrap_or_default();
        self.exchange.method = request_header(":method").unwrap_or_default();
        self.exchange.authority = request_header(":authority").unwrap_or_default();
        self.exchange.path = request_header(":path").unwrap_or_default();
        let Some(policy) = self.policy.clone() else {
            let reply = LocalReply::new(
                500,
                "policy_unavailable",
                "the gateway has no valid policy loaded",
            );
            return self.refuse(Decision::Error, &reply);
        };
        let content_length = request_header("content-length");
        let head = RequestHead {
            downstream_tls: props::downstream_tls(),
            content_length: content_length.as_deref(),
        };
        self.act(request::check_head(&policy, &head))
    }

    fn on_http_request_body(&mut self, body_size: usize, _end_of_stream: bool) -> Action {
        let Some(policy) = self.policy.clone() else {
            return Action::Pause;
        };
        self.body_seen = self.body_seen.saturating_add(body_size as u64);
        self.act(request::check_body_progress(&policy, self.body_seen))
    }

    /// Exactly one audit record per request, whatever happened: published as
    /// filter state for Envoy's access log (`%FILTER_STATE(wasm.transit_guard.audit:PLAIN)%`).
    fn on_log(&mut self) {
        let record = audit::record(&self.exchange, &self.envoy_facts());
        let line = record.to_json();
        if let Err(status) =
            hostcalls::set_property(vec!["transit_guard.audit"], Some(line.as_bytes()))
        {
            log::error!(
                "transit-guard: cannot publish the audit record of request {}: {status:?}",
                self.exchange.request_id
            );
            metrics::incr("audit", "dropped");
        }
        metrics::incr("requests", record.decision.as_str());
        for (detector, n) in &record.masked {
            metrics::add("masked", detector, u64::from(*n));
        }
        for rule in &record.rules {
            if record.decision == Decision::Denied {
                metrics::incr("denied", rule);
            }
        }
    }
}
