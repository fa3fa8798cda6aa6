//! The request phases: headers, body pieces, the whole held body, and the
//! approval's outcome.

use super::checks::{self as request, RequestHead};
use super::inspection;
use super::{
    ApprovalStart, Flow, HeaderEdit, HeadersStep, RequestBodyStep, RequestDataStep, RequestState,
};
use crate::approval::{self, HeldRequest, Outcome};
use crate::audit::{AuditApproval, Decision};
use crate::body::Reading;
use crate::config::Policy;
use crate::headers::{self, HeaderList};
use crate::identity::authenticate::Authenticated;
use crate::identity::error::AuthError;
use crate::local_reply::LocalReply;
use crate::mask::apply::apply;
use crate::mask::openai::Scope;
use crate::policy::Mode;
use crate::rules::RequestView;

impl Flow {
    /// The request headers arrived; `end_of_stream`: there is no body.
    /// `downstream_tls` is Envoy's word on the connection. `authenticate`
    /// verifies the caller's token (when the policy has an `identity`
    /// section); it is called only once the transport check passed.
    pub fn on_request_headers(
        &mut self,
        policy: &Policy,
        headers: &HeaderList,
        downstream_tls: bool,
        authenticate: impl FnOnce() -> Option<Result<Authenticated, AuthError>>,
        end_of_stream: bool,
    ) -> HeadersStep {
        let get = |name: &str| {
            headers::first(headers, name)
                .unwrap_or_default()
                .to_string()
        };
        self.exchange.request_id = get("x-request-id");
        self.exchange.method = get(":method");
        self.exchange.authority = get(":authority");
        self.exchange.path = get(":path");
        let head = RequestHead {
            downstream_tls,
            content_length: headers::first(headers, "content-length"),
        };
        // Transport first (no token is read over plaintext), then who is
        // calling (so every later refusal is audited with the caller), then size.
        if let Some(reply) = self.check(request::check_transport(policy, &head)) {
            return HeadersStep::Refuse(reply);
        }
        if let Some(result) = authenticate() {
            if let Some(reply) = self.on_authentication(policy, result) {
                return HeadersStep::Refuse(reply);
            }
        }
        if let Some(reply) = self.check(request::check_declared_size(policy, &head)) {
            return HeadersStep::Refuse(reply);
        }
        // Method overrides are refused before any rule runs.
        let overrides = inspection::check_head(policy, headers, &self.exchange.path);
        if let Some(reply) = self.check(overrides) {
            return HeadersStep::Refuse(reply);
        }
        let body: Option<&[u8]> = if end_of_stream { Some(&[]) } else { None };
        let eval = policy.rules.evaluate(&self.view(headers, body));
        let encoding = headers::first(headers, "content-encoding");
        if eval.needs_body {
            return self.hold_body(encoding);
        }
        if let Some(reply) = self.decide(policy, &eval) {
            return HeadersStep::Refuse(reply);
        }
        // An MCP request is read to find `tools/list` (its answer is filtered).
        let mcp = policy.mode == Mode::Enforce
            && policy
                .mcp
                .as_ref()
                .is_some_and(|m| m.covers(&self.exchange.method, &self.exchange.path));
        let needs_body =
            self.approval_rules.is_some() || !self.request_masks.is_empty() || self.record || mcp;
        if end_of_stream {
            if self.approval_rules.is_some() {
                return match self.approval_start(policy, headers, &[]) {
                    Ok(start) => {
                        self.request = RequestState::AwaitingApproval;
                        HeadersStep::Approve(start)
                    }
                    Err(reply) => HeadersStep::Refuse(reply),
                };
            }
            self.request = RequestState::Forwarded;
            return HeadersStep::Continue;
        }
        // The fingerprint and masks cover the body: hold it all.
        if needs_body {
            return self.hold_body(encoding);
        }
        self.request = RequestState::Streaming { seen: 0 };
        HeadersStep::Continue
    }

    /// `size` more bytes of the request body arrived (while buffering,
    /// `size` is all of it so far, as Envoy reports it).
    pub fn on_request_data(&mut self, policy: &Policy, size: usize, end: bool) -> RequestDataStep {
        let size = size as u64;
        match self.request {
            RequestState::Streaming { seen } => {
                let seen = seen.saturating_add(size);
                self.request = RequestState::Streaming { seen };
                match self.check(request::check_body_progress(policy, seen)) {
                    Some(reply) => RequestDataStep::Refuse(reply),
                    None => RequestDataStep::Continue,
                }
            }
            RequestState::Buffering => {
                match self.check(request::check_body_progress(policy, size)) {
                    Some(reply) => RequestDataStep::Refuse(reply),
                    None if end => RequestDataStep::Complete,
                    None => RequestDataStep::Wait,
                }
            }
            // Headers not seen (never from Envoy), or the request is
            // held for approval or refused: nothing more passes.
            RequestState::Headers | RequestState::AwaitingApproval | RequestState::Refused => {
                RequestDataStep::Wait
            }
            RequestState::Forwarded => RequestDataStep::Continue,
        }
    }

    /// Request trailers arrived: with them the body callback never sees its
    /// end (HTTP/2), so a buffered body is complete now.
    pub fn on_request_trailers(&mut self) -> RequestDataStep {
        match self.request {
            RequestState::Buffering => RequestDataStep::Complete,
            RequestState::AwaitingApproval | RequestState::Refused | RequestState::Headers => {
                RequestDataStep::Wait
            }
            RequestState::Streaming { .. } | RequestState::Forwarded => RequestDataStep::Continue,
        }
    }

    /// The whole held request body.
    pub fn on_request_body(
        &mut self,
        policy: &Policy,
        headers: &HeaderList,
        body: &[u8],
    ) -> RequestBodyStep {
        if let Some(reply) = self.check(request::check_body_progress(policy, body.len() as u64)) {
            return RequestBodyStep::Refuse(reply);
        }
        // A body rules and masks cannot read as the upstream would is
        // refused; the check's reading is the one rules and masks use.
        let (check, reading) = inspection::check_request(policy, headers, body);
        if let Some(reply) = self.check(check) {
            return RequestBodyStep::Refuse(reply);
        }
        // A body-dependent rule is decided now; otherwise the plan stands.
        if !self.decided {
            let view = self.view(headers, Some(body));
            let eval = policy.rules.evaluate_read(&view, reading.as_ref());
            if let Some(reply) = self.decide(policy, &eval) {
                return RequestBodyStep::Refuse(reply);
            }
        }
        let content_type = headers::first(headers, "content-type");
        let mcp = policy
            .mcp
            .as_ref()
            .is_some_and(|m| m.covers(&self.exchange.method, &self.exchange.path));
        // Monitor mode never rewrites or refuses: tool lists pass untouched.
        let monitor = policy.mode == Mode::Monitor;
        if mcp && !monitor && !crate::mcp::tools_list_ids(body).is_empty() {
            self.tools_list_headers = Some(headers.to_vec());
        }
        let approval = if self.approval_rules.is_some() {
            match self.approval_start(policy, headers, body) {
                Ok(start) => Some(start),
                Err(reply) => return RequestBodyStep::Refuse(reply),
            }
        } else {
            None
        };
        let masked = self.mask_request(policy, content_type, body, reading.as_ref());
        if self.record {
            let shown = masked.as_deref().unwrap_or(body);
            let already = !self.request_masks.is_empty();
            let audit = &policy.audit;
            self.recording()
                .request_body(audit, content_type, shown, already);
        }
        if let Some(m) = &masked {
            self.new_content_length = Some(m.len());
        }
        match (approval, masked) {
            (Some(start), replace) => {
                self.request = RequestState::AwaitingApproval;
                RequestBodyStep::Approve { start, replace }
            }
            (None, Some(masked)) => {
                self.request = RequestState::Forwarded;
                RequestBodyStep::Replace(masked)
            }
            (None, None) => {
                self.request = RequestState::Forwarded;
                RequestBodyStep::Continue
            }
        }
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
                if self.request == RequestState::AwaitingApproval {
                    self.request = RequestState::Forwarded;
                }
                None
            }
            Some(reply) => {
                let (decision, code) = outcome.audit();
                self.exchange.refuse(decision, code);
                if self.request == RequestState::AwaitingApproval {
                    self.request = RequestState::Refused;
                }
                Some(reply)
            }
        }
    }

    /// The request as the rules see it.
    fn view<'a>(&'a self, headers: &'a HeaderList, body: Option<&'a [u8]>) -> RequestView<'a> {
        RequestView {
            method: &self.exchange.method,
            authority: &self.exchange.authority,
            path: &self.exchange.path,
            headers,
            identity: self.exchange.identity.as_ref(),
            body,
        }
    }

    fn hold_body(&mut self, content_encoding: Option<&str>) -> HeadersStep {
        if headers::is_compressed(content_encoding) {
            return HeadersStep::Refuse(self.refuse(
                Decision::Error,
                LocalReply::new(
                    415,
                    "compressed_body",
                    "the policy inspects this request's body: send it uncompressed",
                ),
            ));
        }
        self.request = RequestState::Buffering;
        HeadersStep::Hold
    }

    /// What to ask the approver for the whole request (`body` as received).
    fn approval_start(
        &mut self,
        policy: &Policy,
        headers: &HeaderList,
        body: &[u8],
    ) -> Result<ApprovalStart, LocalReply> {
        let content_type = headers::first(headers, "content-type");
        // The fingerprint binds the headers that reach the upstream.
        let upstream_headers = self.upstream_headers(headers);
        let rules = self.approval_rules.clone().unwrap_or_default();
        let Some(cfg) = &policy.approval else {
            // The loader refuses require_approval without an approval section.
            return Err(self.refuse(
                Decision::ApprovalFailed,
                LocalReply::new(
                    503,
                    "approval_unavailable",
                    "this request needs a human approval and no approver is configured; it was not forwarded",
                )
                .with_rule(rules.join(",")),
            ));
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
        Ok(start)
    }

    /// `headers` without those authentication removes (the caller's token).
    fn upstream_headers(&self, headers: &HeaderList) -> Vec<(String, String)> {
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

    /// The request masks applied to the body: `None` if unchanged.
    fn mask_request(
        &mut self,
        policy: &Policy,
        content_type: Option<&str>,
        body: &[u8],
        reading: Option<&Reading<'_>>,
    ) -> Option<Vec<u8>> {
        if self.request_masks.is_empty() {
            return None;
        }
        // OpenAI requests are masked in their texts only, never roles or ids.
        let scope = Scope::for_request(&self.exchange.method, &self.exchange.path, content_type);
        let out = apply(
            &policy.masking,
            &self.request_masks,
            content_type,
            body,
            scope.as_ref(),
            reading,
            &mut self.tokens,
        );
        self.note_masked("request", content_type, &out);
        for (detector, n) in &out.tokenized {
            *self.exchange.tokenized.entry(detector.clone()).or_insert(0) += n;
        }
        out.body
    }

    /// Adds a mask's counts (or its unscanned note) to the audit.
    pub(super) fn note_masked(
        &mut self,
        direction: &str,
        content_type: Option<&str>,
        out: &crate::mask::apply::Applied,
    ) {
        if out.unscanned {
            self.exchange.unscanned.push(format!(
                "{direction}: {} is not scanned",
                content_type.unwrap_or("(no content-type)")
            ));
        }
        for (detector, n) in &out.counts {
            *self.exchange.masked.entry(detector.clone()).or_insert(0) += n;
        }
    }

    /// The token was checked: keep the identity and the header edits, or
    /// refuse (401/403). Monitor mode records the failure and goes on without
    /// an identity (claim headers still removed: a client never sets them).
    fn on_authentication(
        &mut self,
        policy: &Policy,
        result: Result<Authenticated, AuthError>,
    ) -> Option<LocalReply> {
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
}
