//! The HTTP context: one per request stream.

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::{Action, MapType};

use crate::config::Policy;
use crate::reply::LocalReply;
use crate::request::{self, RequestHead, Verdict};

pub struct Http {
    /// `None` only if the policy failed to load; every request is then refused.
    policy: Option<Rc<Policy>>,
    request_id: String,
    body_seen: u64,
}

impl Http {
    pub fn new(policy: Option<Rc<Policy>>) -> Self {
        Http {
            policy,
            request_id: String::new(),
            body_seen: 0,
        }
    }

    /// Carries out a verdict: a refusal becomes a local reply and stops the stream.
    fn act(&self, verdict: Verdict) -> Action {
        match verdict {
            Verdict::Continue => Action::Continue,
            Verdict::WouldRefuse(reply) => {
                log::warn!(
                    "transit-guard: monitor mode, would refuse request {} with {} {}",
                    self.request_id,
                    reply.status,
                    reply.error
                );
                Action::Continue
            }
            Verdict::Refuse(reply) => self.refuse(&reply),
        }
    }

    fn refuse(&self, reply: &LocalReply) -> Action {
        let body = reply.body(&self.request_id);
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
                self.request_id
            );
        }
        Action::Pause
    }
}

fn request_header(name: &str) -> Option<String> {
    hostcalls::get_map_value(MapType::HttpRequestHeaders, name)
        .ok()
        .flatten()
}

/// True when the downstream connection is TLS. Any failure to tell counts as
/// plaintext, so `require_tls` fails closed.
fn downstream_tls() -> bool {
    matches!(
        hostcalls::get_property(vec!["connection", "tls_version"]),
        Ok(Some(v)) if !v.is_empty()
    )
}

impl Context for Http {}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _num_headers: usize, _end_of_stream: bool) -> Action {
        self.request_id = request_header("x-request-id").unwrap_or_default();
        let Some(policy) = self.policy.clone() else {
            return self.refuse(&LocalReply::new(
                500,
                "policy_unavailable",
                "the gateway has no valid policy loaded",
            ));
        };
        let content_length = request_header("content-length");
        let head = RequestHead {
            downstream_tls: downstream_tls(),
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
}
