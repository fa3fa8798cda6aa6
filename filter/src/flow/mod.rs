//! One request's way through the policy: an explicit state machine that the
//! host adapter drives and carries out. Pure Rust: every state and
//! transition is unit-tested (`flow/tests/`).
//!
//! The host calls, per Envoy callback, the phase of the same name; each
//! returns only the steps that can happen there ([`steps`]):
//!
//! ```text
//! request:  Headers --on_request_headers--> Streaming | Buffering | AwaitingApproval | Forwarded | Refused
//!           Streaming --on_request_data (counted)--> Streaming | Refused
//!           Buffering --on_request_data (complete)--> on_request_body --> Forwarded | AwaitingApproval | Refused
//!           AwaitingApproval --on_approval--> Forwarded | Refused
//! response: Headers --on_response_headers--> Passing | Buffering | Streaming | Refused
//!           Buffering --on_response_data (complete)--> on_response_body --> Done | Refused
//!           Streaming --on_response_chunk--> Streaming | Done | Aborted
//! ```
//!
//! Order within the request: transport and size checks, then the caller's
//! token (`identity`), then the rules (`docs/rules.md`: deny >
//! require_approval > mask > allow), then masking. `mode: "monitor"` (the
//! whole policy) decides and records but never refuses or rewrites. A host
//! call that fails ([`Flow::on_host_failure`]) refuses the request: nothing
//! passes because something failed. The flow fills the request's audit
//! [`Exchange`] as it decides.

mod checks;
mod inspection;
mod quota;
mod request_phase;
mod response_phase;
pub mod steps;

#[cfg(test)]
mod tests;

use std::collections::BTreeMap;

use crate::audit::{Decision, Exchange, Recording};
use crate::config::Policy;
use crate::local_reply::LocalReply;
use crate::policy::Mode;
use crate::rules::{self, Evaluation};
use crate::sse::ResponseStream;
use checks::Check;

pub use steps::{
    ApprovalStart, ChunkStep, HeaderEdit, HeadersStep, HostFailure, RequestBodyStep,
    RequestDataStep, ResponseBodyStep, ResponseDataStep, ResponseHeadersStep,
};

/// Where the request is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RequestState {
    /// Its headers have not arrived.
    #[default]
    Headers,
    /// Forwarded while its body streams; the body is counted against the limit.
    Streaming { seen: u64 },
    /// Headers held while Envoy buffers the whole body.
    Buffering,
    /// Held whole while a human decides.
    AwaitingApproval,
    /// Released to the upstream whole.
    Forwarded,
    /// Answered locally; nothing more goes upstream.
    Refused,
}

/// Where the response is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ResponseState {
    /// Its headers have not arrived.
    #[default]
    Headers,
    /// Passed on as it comes: nothing to mask or record.
    Passing,
    /// Headers held while Envoy buffers the whole body.
    Buffering,
    /// Masked piece by piece as it streams (SSE).
    Streaming,
    /// Passed on whole (masked or recorded).
    Done,
    /// Answered locally instead of the upstream's response.
    Refused,
    /// Reset: its headers were gone when it could no longer be masked.
    Aborted,
}

#[derive(Debug, Default)]
pub struct Flow {
    pub exchange: Exchange,
    request: RequestState,
    response: ResponseState,
    /// The rules have made their final decision (else the body decides).
    decided: bool,
    /// Masking profiles to apply, per direction.
    request_masks: Vec<String>,
    response_masks: Vec<String>,
    /// The `require_approval` rules that hold this request, if any.
    approval_rules: Option<Vec<String>>,
    /// A carried-out rule asked for session recording.
    record: bool,
    /// Header changes from authentication: token stripped, claim headers set.
    auth_edits: Vec<HeaderEdit>,
    /// The request's new body length, once replaced.
    new_content_length: Option<usize>,
    /// The response's content type (for the body phase).
    response_content_type: Option<String>,
    /// The response being masked as it streams.
    response_stream: Option<ResponseStream>,
    /// A `tools/list` request: its headers, to ask the rules about each
    /// listed tool when the answer comes.
    tools_list_headers: Option<Vec<(String, String)>>,
    /// The `tools/list` answer being filtered as it streams (SSE).
    tools_stream: Option<crate::mcp::sse::ToolsStream>,
    /// Masked counts before the response stream started (the stream's own
    /// are added to these as it goes, so an aborted stream still counts).
    masked_before_stream: BTreeMap<String, u32>,
    /// The request's `tokenize` map: token -> value, for this exchange
    /// only; restored into the response, dropped when it ends.
    tokens: crate::mask::Tokens,
}

impl Flow {
    pub fn request_state(&self) -> RequestState {
        self.request
    }

    pub fn response_state(&self) -> ResponseState {
        self.response
    }

    /// A host call failed: the request (or the response, while it can still
    /// be answered) is refused, and the audit names what failed.
    pub fn on_host_failure(&mut self, failure: HostFailure) -> LocalReply {
        let reply = failure.reply();
        self.refuse(Decision::Error, reply)
    }

    /// Whether the response is masked, restored or recorded: if not, the
    /// host need not read its headers or body at all.
    pub fn watches_response(&self) -> bool {
        self.rewrites_response() || self.record || self.tools_list_headers.is_some()
    }

    /// The response body is rewritten: masked, or the request's tokens
    /// restored into it.
    fn rewrites_response(&self) -> bool {
        !self.response_masks.is_empty() || !self.tokens.is_empty()
    }

    /// Request header changes to make before the request goes upstream.
    pub fn header_edits(&self) -> Vec<HeaderEdit> {
        let mut edits = self.auth_edits.clone();
        if self.rewrites_response() || self.tools_list_headers.is_some() {
            // Compressed bytes cannot be scanned: ask the upstream for plain ones.
            edits.push(HeaderEdit::Set("accept-encoding".into(), "identity".into()));
        }
        if let Some(n) = self.new_content_length {
            edits.push(HeaderEdit::Set("content-length".into(), n.to_string()));
        }
        edits
    }

    /// Records a refusal (the first wins) and moves the side that is open
    /// to its refused state: the response once its headers arrived, else
    /// the request.
    fn refuse(&mut self, decision: Decision, reply: LocalReply) -> LocalReply {
        self.exchange.refuse(decision, reply.error);
        if self.response == ResponseState::Headers {
            self.request = RequestState::Refused;
        } else {
            self.response = ResponseState::Refused;
        }
        reply
    }

    /// Carries out a header check's verdict: `Some` when it ends the request.
    fn check(&mut self, verdict: Check) -> Option<LocalReply> {
        match verdict {
            Check::Pass => None,
            Check::WouldRefuse(_, reply) => {
                if !self.exchange.would.iter().any(|w| w == reply.error) {
                    self.exchange.would.push(reply.error.to_string());
                }
                None
            }
            Check::Refuse(decision, reply) => Some(self.refuse(decision, reply)),
        }
    }

    fn recording(&mut self) -> &mut Recording {
        self.exchange
            .recording
            .get_or_insert_with(Recording::default)
    }

    /// Acts on a final rules evaluation: `Some` when it ends the request.
    fn decide(&mut self, policy: &Policy, eval: &Evaluation) -> Option<LocalReply> {
        self.decided = true;
        for hit in eval.fired.iter().filter(|h| h.monitor) {
            self.exchange
                .would
                .push(format!("{}: {}", hit.rule, hit.action.as_str()));
        }
        let monitor = policy.mode == Mode::Monitor;
        if !monitor {
            // The rules carried out: those that made the decision.
            self.exchange.rules = carried_out(eval);
            self.record = eval.record;
        }
        match &eval.decision {
            rules::Ruling::Allow => None,
            rules::Ruling::Mask(plan) if monitor => {
                self.exchange
                    .would
                    .push(format!("mask: {}", plan.rules.join(",")));
                None
            }
            rules::Ruling::Mask(plan) => {
                self.request_masks = plan.request.clone();
                self.response_masks = plan.response.clone();
                None
            }
            rules::Ruling::Deny(denial) => {
                let rule = denial
                    .rule
                    .clone()
                    .unwrap_or_else(|| "default_action".to_string());
                if monitor {
                    self.exchange.would.push(format!("{rule}: deny"));
                    return None;
                }
                self.exchange.deny_rule = Some(rule);
                Some(self.refuse(Decision::Denied, denial.reply()))
            }
            rules::Ruling::RequireApproval { rules, masks } => {
                if monitor {
                    self.exchange
                        .would
                        .push(format!("{}: require_approval", rules.join(",")));
                    return None;
                }
                // Held until a human decides; masks apply once approved.
                self.approval_rules = Some(rules.clone());
                self.request_masks = masks.request.clone();
                self.response_masks = masks.response.clone();
                None
            }
        }
    }
}

/// The rules that made the decision (for the audit record).
fn carried_out(eval: &Evaluation) -> Vec<String> {
    match &eval.decision {
        rules::Ruling::Deny(d) => d.rule.iter().cloned().collect(),
        rules::Ruling::RequireApproval { rules, .. } => rules.clone(),
        rules::Ruling::Mask(plan) => plan.rules.clone(),
        rules::Ruling::Allow => eval
            .fired
            .iter()
            .filter(|h| !h.monitor && h.action == rules::ActionKind::Allow)
            .map(|h| h.rule.clone())
            .collect(),
    }
}
