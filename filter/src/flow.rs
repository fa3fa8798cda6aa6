//! One request's way through the policy, for the host adapter to carry out.
//!
//! The host calls, in order, [`Flow::on_request_headers`], then (if told to
//! hold) [`Flow::on_request_body`] with the whole body, then
//! [`Flow::on_response_headers`] and (if told to hold)
//! [`Flow::on_response_body`], or (if told to stream: SSE with response
//! masks) [`Flow::on_response_chunk`] for every chunk as it passes.
//! Each returns what to do; [`Flow::header_edits`]
//! lists request header changes to make before the request goes on. The flow
//! fills the request's audit [`Exchange`] as it decides.
//!
//! Order within the request: transport and size checks, then the caller's
//! token (`identity`), then the rules (`docs/rules.md`: deny >
//! require_approval > mask > allow), then masking.
//! `mode: "monitor"` (the whole policy) decides and records but never refuses
//! or rewrites.

use crate::approval::{self, HeldRequest, Outcome};
use crate::audit::{AuditApproval, Decision, Exchange, Recording};
use crate::config::{Mode, Policy};
use crate::identity::authenticate::Authenticated;
use crate::identity::error::AuthError;
use crate::identity::Identity;
use crate::mask::openai::{self, Scope};
use crate::mask::{BodyKind, Masker};
use crate::reply::LocalReply;
use crate::request::{self, RequestHead, Verdict};
use crate::rules::config::OpenAiApi;
use crate::rules::{self, Evaluation, RequestView};
use crate::stream::ResponseStream;

/// What the host does next with the request or the response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step {
    /// Let it go on (after [`Flow::header_edits`], for the request).
    Continue,
    /// Hold the headers and buffer the whole body, then call the body step.
    Hold,
    /// Refuse with this local reply; nothing more goes upstream or downstream.
    Refuse(LocalReply),
    /// Keep holding the whole request and ask the approver (see
    /// [`Flow::on_approval`] for its answer).
    Approve(ApprovalStart),
}

/// What the host needs to ask the approver about a held request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApprovalStart {
    /// The body of `POST /v1/approvals`.
    pub create_body: Vec<u8>,
    /// The `require_approval` rules, joined with `,`.
    pub rule: String,
}

/// What the host does with a response, once its headers are in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseStep {
    Continue,
    /// Hold the headers and buffer the whole body, then call
    /// [`Flow::on_response_body`].
    Hold,
    /// Let the headers go without `content-length` and pass every body
    /// chunk through [`Flow::on_response_chunk`].
    Stream,
    Refuse(LocalReply),
}

/// What to do with one chunk of a streamed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkStep {
    /// Pass these bytes on instead of the chunk (maybe none yet).
    Emit(Vec<u8>),
    /// The stream cannot be masked safely: reset it (the headers are gone).
    Abort,
}

/// A change to the request's headers before it goes upstream.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeaderEdit {
    Set(String, String),
    /// Remove every value.
    Remove(String),
}

/// What to do with a whole buffered body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum BodyStep {
    Continue,
    /// Replace the body with this (and fix `content-length`).
    Replace(Vec<u8>),
    Refuse(LocalReply),
    /// Ask the approver; if `replace` is set, replace the body first (masks
    /// that apply once approved). The approval is for the body as received.
    Approve {
        start: ApprovalStart,
        replace: Option<Vec<u8>>,
    },
}

#[derive(Debug, Default)]
pub struct Flow {
    pub exchange: Exchange,
    request_masks: Vec<String>,
    response_masks: Vec<String>,
    /// The request's new body length, once replaced.
    new_content_length: Option<usize>,
    /// The rules have made their final decision (else the body decides).
    decided: bool,
    /// Header changes from authentication: token stripped, claim headers set.
    auth_edits: Vec<HeaderEdit>,
    /// The response being masked as it streams.
    response_stream: Option<ResponseStream>,
    /// Masked counts before the response stream started (the stream's own
    /// are added to these as it goes, so an aborted stream still counts).
    masked_before_stream: std::collections::BTreeMap<String, u32>,
    /// The `require_approval` rules that hold this request, if any.
    approval_rules: Option<Vec<String>>,
    /// A carried-out rule asked for session recording.
    record: bool,
}

impl Flow {
    pub fn new(exchange: Exchange) -> Flow {
        Flow {
            exchange,
            ..Flow::default()
        }
    }

    /// The request as the rules see it: method, authority and path from the
    /// exchange, with the request's headers and identity.
    fn view<'a>(
        &'a self,
        headers: &'a [(String, String)],
        body: Option<&'a [u8]>,
    ) -> RequestView<'a> {
        RequestView {
            method: &self.exchange.method,
            authority: &self.exchange.authority,
            path: &self.exchange.path,
            headers,
            identity: self.exchange.identity.as_ref(),
            body,
        }
    }

    /// The verified caller, once authenticated.
    pub fn identity(&self) -> Option<&Identity> {
        self.exchange.identity.as_ref()
    }

    /// Request headers arrived; `end_of_stream` means there is no body.
    /// `authenticate` verifies the caller's token (when the policy has an
    /// `identity` section); it is called only once transport checks passed.
    pub fn on_request_headers(
        &mut self,
        policy: &Policy,
        head: &RequestHead<'_>,
        headers: &[(String, String)],
        authenticate: impl FnOnce() -> Option<Result<Authenticated, AuthError>>,
        end_of_stream: bool,
    ) -> Step {
        let content_encoding = header_value(headers, "content-encoding");
        // Transport first (no token is read over plaintext), then who is
        // calling (so every later refusal is audited with the caller), then size.
        if let Some(step) = self.check(request::check_transport(policy, head)) {
            return step;
        }
        if let Some(result) = authenticate() {
            if let Some(step) = self.on_authentication(policy, result) {
                return step;
            }
        }
        if let Some(step) = self.check(request::check_declared_size(policy, head)) {
            return step;
        }
        // issue 14: method overrides are refused before any rule runs.
        let verdict = crate::body::check_head(policy, headers, &self.exchange.path);
        if let Some(step) = self.check(verdict) {
            return step;
        }
        let body: Option<&[u8]> = if end_of_stream { Some(&[]) } else { None };
        let eval = policy.rules.evaluate(&self.view(headers, body));
        if eval.needs_body {
            return self.hold_request(content_encoding);
        }
        match self.decide(policy, &eval) {
            Some(step) => step,
            // The fingerprint covers the body: hold it all before asking.
            None if self.approval_rules.is_some() && !end_of_stream => {
                self.hold_request(content_encoding)
            }
            None if self.approval_rules.is_some() => self.approval_step(policy, headers, &[]),
            None if (!self.request_masks.is_empty() || self.record) && !end_of_stream => {
                self.hold_request(content_encoding)
            }
            None => Step::Continue,
        }
    }

    /// Carries out a header check's verdict: `Some` when it ends the request.
    fn check(&mut self, verdict: Verdict) -> Option<Step> {
        match verdict {
            Verdict::Continue => None,
            Verdict::WouldRefuse(_, reply) => {
                self.exchange.would.push(reply.error.to_string());
                None
            }
            Verdict::Refuse(decision, reply) => Some(self.refuse(decision, reply)),
        }
    }

    /// A streamed (not held) request body has reached `seen` bytes.
    pub fn on_request_progress(&mut self, policy: &Policy, seen: u64) -> Step {
        match request::check_body_progress(policy, seen) {
            Verdict::Continue => Step::Continue,
            Verdict::WouldRefuse(_, reply) => {
                if !self.exchange.would.iter().any(|w| w == reply.error) {
                    self.exchange.would.push(reply.error.to_string());
                }
                Step::Continue
            }
            Verdict::Refuse(decision, reply) => self.refuse(decision, reply),
        }
    }

    /// A held response body has reached `seen` bytes: refuse once it is
    /// larger than can be masked (fail closed), before buffering more.
    pub fn on_response_progress(&mut self, policy: &Policy, seen: u64) -> Step {
        if seen <= policy.limits.max_body_bytes {
            return Step::Continue;
        }
        self.refuse(
            Decision::Oversize,
            LocalReply::new(
                502,
                "response_too_large",
                format!(
                    "the response exceeds limits.max_body_bytes ({} bytes) and cannot be masked; it was not passed on",
                    policy.limits.max_body_bytes
                ),
            ),
        )
    }

    /// The whole request body, held because a rule or a mask needs it.
    pub fn on_request_body(
        &mut self,
        policy: &Policy,
        headers: &[(String, String)],
        body: &[u8],
    ) -> BodyStep {
        if let Verdict::Refuse(decision, reply) =
            request::check_body_progress(policy, body.len() as u64)
        {
            return body_refusal(self.refuse(decision, reply));
        }
        // issue 14: a body rules and masks cannot read as the upstream would is refused.
        if let Some(step) = self.check(crate::body::check_request(policy, headers, body)) {
            return body_refusal(step);
        }
        // A body-dependent rule is decided now; otherwise the plan stands.
        if !self.decided {
            let eval = policy.rules.evaluate(&self.view(headers, Some(body)));
            if let Some(step) = self.decide(policy, &eval) {
                return body_refusal(step);
            }
        }
        let content_type = header_value(headers, "content-type");
        let approval = if self.approval_rules.is_some() {
            match self.approval_step(policy, headers, body) {
                Step::Approve(start) => Some(start),
                other => return body_refusal(other),
            }
        } else {
            None
        };
        let masks = self.request_masks.clone();
        let masked = self.mask(policy, &masks, content_type, body, "request");
        if self.record {
            let shown = masked.as_deref().unwrap_or(body);
            let (text, cut) = record_body(policy, content_type, shown, !masks.is_empty());
            let rec = self.recording();
            rec.request = Some(text);
            rec.truncated |= cut;
        }
        if let Some(m) = &masked {
            self.new_content_length = Some(m.len());
        }
        match (approval, masked) {
            (Some(start), replace) => BodyStep::Approve { start, replace },
            (None, Some(masked)) => BodyStep::Replace(masked),
            (None, None) => BodyStep::Continue,
        }
    }

    /// The approval step for the whole request (`body` as received).
    fn approval_step(
        &mut self,
        policy: &Policy,
        headers: &[(String, String)],
        body: &[u8],
    ) -> Step {
        let content_type = header_value(headers, "content-type");
        // issue 14: the fingerprint binds the headers that reach the upstream.
        let upstream_headers = self.upstream_headers(headers);
        let rules = self.approval_rules.clone().unwrap_or_default();
        let Some(cfg) = &policy.approval else {
            // The loader refuses require_approval without an approval section.
            return self.refuse(
                Decision::ApprovalFailed,
                LocalReply::new(
                    503,
                    "approval_unavailable",
                    "this request needs a human approval and no approver is configured; it was not forwarded",
                )
                .with_rule(rules.join(",")),
            );
        };
        let req = HeldRequest {
            request_id: &self.exchange.request_id,
            identity: self.exchange.identity.as_ref(),
            rules: &rules,
            method: &self.exchange.method,
            authority: &self.exchange.authority,
            path: &self.exchange.path,
            content_type,
            headers: &upstream_headers,
            body,
        };
        let start = ApprovalStart {
            create_body: approval::create_body(cfg, &req),
            rule: req.rule(),
        };
        self.exchange.approval = Some(AuditApproval::default());
        Step::Approve(start)
    }

    /// `headers` without those authentication removes (the caller's token).
    fn upstream_headers(&self, headers: &[(String, String)]) -> Vec<(String, String)> {
        let removed = |k: &str| {
            self.auth_edits
                .iter()
                .any(|e| matches!(e, HeaderEdit::Remove(n) if n.eq_ignore_ascii_case(k)))
        };
        headers
            .iter()
            .filter(|(k, _)| !removed(k))
            .cloned()
            .collect()
    }

    /// How the approval ended: records it, and returns the reply that ends
    /// the request, or `None` to let it go on (approved).
    pub fn on_approval(&mut self, outcome: &Outcome) -> Option<LocalReply> {
        self.exchange.approval = Some(AuditApproval {
            id: outcome.approval_id().map(str::to_string),
            reviewer: outcome.reviewer().map(str::to_string),
        });
        let rule = self.approval_rules.clone().unwrap_or_default().join(",");
        match outcome.reply(&rule) {
            None => {
                self.exchange.approved = true;
                None
            }
            Some(reply) => {
                let (decision, code) = outcome.audit();
                self.exchange.refuse(decision, code);
                Some(reply)
            }
        }
    }

    /// Request header changes to make before the request goes upstream.
    pub fn header_edits(&self) -> Vec<HeaderEdit> {
        let mut edits = self.auth_edits.clone();
        if !self.response_masks.is_empty() {
            // Compressed bytes cannot be scanned: ask the upstream for plain ones.
            edits.push(HeaderEdit::Set("accept-encoding".into(), "identity".into()));
        }
        if let Some(n) = self.new_content_length {
            edits.push(HeaderEdit::Set("content-length".into(), n.to_string()));
        }
        edits
    }

    /// The token was checked: keep the identity and the header edits, or
    /// refuse (401/403). Monitor mode records the failure and goes on without
    /// an identity (claim headers still removed: a client never sets them).
    fn on_authentication(
        &mut self,
        policy: &Policy,
        result: Result<Authenticated, AuthError>,
    ) -> Option<Step> {
        match result {
            Ok(a) => {
                self.exchange.identity = a.identity;
                self.auth_edits = a
                    .remove_headers
                    .into_iter()
                    .map(HeaderEdit::Remove)
                    .collect();
                self.auth_edits.extend(
                    a.set_headers
                        .into_iter()
                        .map(|(k, v)| HeaderEdit::Set(k, v)),
                );
                if let Some(path) = a.new_path {
                    self.auth_edits.push(HeaderEdit::Set(":path".into(), path));
                }
                None
            }
            Err(e) => {
                self.exchange.auth_failure = Some(e.code());
                let auth = policy.auth.as_ref()?;
                if policy.mode == Mode::Monitor {
                    self.exchange.would.push(e.code().to_string());
                    self.auth_edits = auth
                        .claim_header_names()
                        .iter()
                        .map(|h| HeaderEdit::Remove(h.clone()))
                        .collect();
                    return None;
                }
                let decision = if e.status() == 403 {
                    Decision::Forbidden
                } else {
                    Decision::Unauthenticated
                };
                Some(self.refuse(decision, e.to_reply(&auth.config.realm)))
            }
        }
    }

    /// Response headers arrived. An event stream (`text/event-stream`) with
    /// response masks is masked as it streams (`docs/streaming.md`); other
    /// scannable bodies are held whole.
    pub fn on_response_headers(
        &mut self,
        policy: &Policy,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
        end_of_stream: bool,
    ) -> ResponseStep {
        let masking = !self.response_masks.is_empty();
        if !(masking || self.record) || end_of_stream {
            return ResponseStep::Continue;
        }
        if is_compressed(content_encoding) && !masking {
            self.recording().response = Some("[compressed body, not recorded]".into());
            return ResponseStep::Continue;
        }
        // An event stream is never held whole (that would stop it
        // streaming): masked as it passes, and not recorded.
        if is_event_stream(content_type) {
            if self.record {
                self.recording().response = Some(binary_note(content_type));
            }
            if !masking {
                return ResponseStep::Continue;
            }
        }
        if is_compressed(content_encoding) {
            return match self.refuse(
                Decision::Error,
                LocalReply::new(
                    502,
                    "response_not_scannable",
                    "the upstream sent a compressed response that the policy must mask; it was not passed on",
                ),
            ) {
                Step::Refuse(reply) => ResponseStep::Refuse(reply),
                _ => ResponseStep::Continue,
            };
        }
        if is_event_stream(content_type) {
            let max_event = usize::try_from(policy.limits.max_body_bytes).unwrap_or(usize::MAX);
            self.response_stream = Some(ResponseStream::new(max_event));
            self.masked_before_stream = self.exchange.masked.clone();
            return ResponseStep::Stream;
        }
        if BodyKind::of(content_type) == BodyKind::Passthrough {
            if masking {
                self.exchange.unscanned.push(format!(
                    "response: {} is not scanned",
                    content_type.unwrap_or("(no content-type)")
                ));
            }
            if self.record {
                self.recording().response = Some(binary_note(content_type));
            }
            return ResponseStep::Continue;
        }
        ResponseStep::Hold
    }

    /// One chunk of a streamed response (`end_of_stream`: the last one).
    /// Never returns unmasked bytes: what may still become part of a value
    /// is held for the next chunk.
    pub fn on_response_chunk(
        &mut self,
        policy: &Policy,
        chunk: &[u8],
        end_of_stream: bool,
    ) -> ChunkStep {
        let Some(stream) = self.response_stream.as_mut() else {
            return ChunkStep::Emit(chunk.to_vec());
        };
        let maskers: Vec<&Masker> = self
            .response_masks
            .iter()
            .filter_map(|name| policy.masking.profile(name))
            .collect();
        let step = match stream.push(&maskers, chunk) {
            Ok(mut out) => {
                if end_of_stream {
                    out.extend(stream.finish(&maskers));
                }
                ChunkStep::Emit(out)
            }
            Err(_) => ChunkStep::Abort,
        };
        let mut masked = self.masked_before_stream.clone();
        for (detector, n) in stream.counts(&maskers) {
            *masked.entry(detector).or_insert(0) += n;
        }
        self.exchange.masked = masked;
        if step == ChunkStep::Abort {
            self.exchange
                .refuse(Decision::Error, "response_event_too_large");
        }
        step
    }

    /// The whole response body, held for masking.
    pub fn on_response_body(
        &mut self,
        policy: &Policy,
        content_type: Option<&str>,
        body: &[u8],
    ) -> BodyStep {
        if let Step::Refuse(reply) = self.on_response_progress(policy, body.len() as u64) {
            return BodyStep::Refuse(reply);
        }
        // issue 14: a response masks cannot read as the client would is refused (502).
        if let Some(step) = self.check(crate::body::check_response(policy, content_type, body)) {
            return body_refusal(step);
        }
        let masks = self.response_masks.clone();
        let masked = self.mask(policy, &masks, content_type, body, "response");
        if self.record {
            let shown = masked.as_deref().unwrap_or(body);
            let (text, cut) = record_body(policy, content_type, shown, !masks.is_empty());
            let rec = self.recording();
            rec.response = Some(text);
            rec.truncated |= cut;
        }
        match masked {
            Some(masked) => BodyStep::Replace(masked),
            None => BodyStep::Continue,
        }
    }

    fn recording(&mut self) -> &mut Recording {
        self.exchange
            .recording
            .get_or_insert_with(Recording::default)
    }

    /// Acts on a final rules evaluation: `Some` when it ends the request.
    fn decide(&mut self, policy: &Policy, eval: &Evaluation) -> Option<Step> {
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
            rules::Decision::Allow => None,
            rules::Decision::Mask(plan) if monitor => {
                self.exchange
                    .would
                    .push(format!("mask: {}", plan.rules.join(",")));
                None
            }
            rules::Decision::Mask(plan) => {
                self.request_masks = plan.request.clone();
                self.response_masks = plan.response.clone();
                None
            }
            rules::Decision::Deny(denial) => {
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
            rules::Decision::RequireApproval { rules, masks } => {
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

    fn hold_request(&mut self, content_encoding: Option<&str>) -> Step {
        if is_compressed(content_encoding) {
            return self.refuse(
                Decision::Error,
                LocalReply::new(
                    415,
                    "compressed_body",
                    "the policy inspects this request's body: send it uncompressed",
                ),
            );
        }
        Step::Hold
    }

    /// Applies the named profiles in order; records counts; `None` if unchanged.
    fn mask(
        &mut self,
        policy: &Policy,
        profiles: &[String],
        content_type: Option<&str>,
        body: &[u8],
        direction: &str,
    ) -> Option<Vec<u8>> {
        let mut current: Option<Vec<u8>> = None;
        for name in profiles {
            let Some(masker) = policy.masking.profile(name) else {
                continue; // the loader refuses unknown profiles
            };
            let input = current.as_deref().unwrap_or(body);
            let out = match self.openai_request_scope(direction, content_type) {
                Some(scope) => masker.mask_json_in(input, &scope),
                None => masker.mask(content_type, input),
            };
            if out.kind == BodyKind::Passthrough {
                self.exchange.unscanned.push(format!(
                    "{direction}: {} is not scanned",
                    content_type.unwrap_or("(no content-type)")
                ));
                return None;
            }
            for (detector, n) in out.counts {
                *self.exchange.masked.entry(detector).or_insert(0) += n;
            }
            if let Some(b) = out.body {
                current = Some(b);
            }
        }
        current
    }

    /// A JSON request to an OpenAI API: only its texts are masked
    /// (`mask::openai`), never roles, the model or ids.
    fn openai_request_scope(&self, direction: &str, content_type: Option<&str>) -> Option<Scope> {
        if direction != "request" || BodyKind::of(content_type) != BodyKind::Json {
            return None;
        }
        let path = rules::path::normalize(&self.exchange.path);
        match rules::shapes::openai_api(&self.exchange.method, &path)? {
            OpenAiApi::ChatCompletions => Some(openai::CHAT),
            OpenAiApi::Responses => Some(openai::RESPONSES),
        }
    }

    fn refuse(&mut self, decision: Decision, reply: LocalReply) -> Step {
        self.exchange.refuse(decision, reply.error);
        Step::Refuse(reply)
    }
}

fn carried_out(eval: &Evaluation) -> Vec<String> {
    match &eval.decision {
        rules::Decision::Deny(d) => d.rule.iter().cloned().collect(),
        rules::Decision::RequireApproval { rules, .. } => rules.clone(),
        rules::Decision::Mask(plan) => plan.rules.clone(),
        rules::Decision::Allow => eval
            .fired
            .iter()
            .filter(|h| !h.monitor && h.action == rules::ActionKind::Allow)
            .map(|h| h.rule.clone())
            .collect(),
    }
}

/// A body as it goes into a session recording: masked (with the recording
/// profile unless a mask rule already masked it), cut at `record_max_bytes`
/// on a character boundary. Returns the text and whether it was cut.
fn record_body(
    policy: &Policy,
    content_type: Option<&str>,
    body: &[u8],
    already_masked: bool,
) -> (String, bool) {
    if BodyKind::of(content_type) == BodyKind::Passthrough {
        return (binary_note(content_type), false);
    }
    let masked = if already_masked {
        None
    } else {
        policy.audit.record_masker.mask(content_type, body).body
    };
    let text = String::from_utf8_lossy(masked.as_deref().unwrap_or(body)).into_owned();
    let max = policy.audit.record_max_bytes;
    if text.len() <= max {
        return (text, false);
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    (text.get(..cut).unwrap_or_default().to_string(), true)
}

fn binary_note(content_type: Option<&str>) -> String {
    format!("[{} body, not recorded]", content_type.unwrap_or("untyped"))
}

fn body_refusal(step: Step) -> BodyStep {
    match step {
        Step::Refuse(r) => BodyStep::Refuse(r),
        Step::Approve(start) => BodyStep::Approve {
            start,
            replace: None,
        },
        Step::Continue | Step::Hold => BodyStep::Continue,
    }
}

/// The first value of header `name` (any case) in a header list.
pub fn header_value<'a>(headers: &'a [(String, String)], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|(k, _)| k.eq_ignore_ascii_case(name))
        .map(|(_, v)| v.as_str())
}

fn is_event_stream(content_type: Option<&str>) -> bool {
    content_type.is_some_and(|ct| {
        ct.split(';')
            .next()
            .unwrap_or("")
            .trim()
            .eq_ignore_ascii_case("text/event-stream")
    })
}

fn is_compressed(content_encoding: Option<&str>) -> bool {
    content_encoding.is_some_and(|e| {
        let e = e.trim();
        !e.is_empty() && !e.eq_ignore_ascii_case("identity")
    })
}
