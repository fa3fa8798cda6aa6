//! The response phases: headers, body pieces, the whole held body, and
//! pieces of a stream masked as they pass.

use super::inspection;
use super::{
    ChunkStep, Flow, ResponseBodyStep, ResponseDataStep, ResponseHeadersStep, ResponseState,
};
use crate::audit::{recording, Decision};
use crate::config::Policy;
use crate::headers;
use crate::local_reply::LocalReply;
use crate::mask::apply::apply;
use crate::mask::{BodyKind, Tokens};
use crate::mcp::sse::{StreamError, ToolsStream};
use crate::mcp::{filter_answer, Caller, PinMismatch};
use crate::rules::RequestView;
use crate::sse::{ResponseStream, Stage};

impl Flow {
    /// The response headers arrived. An event stream (`text/event-stream`)
    /// with response masks or tokens to restore is rewritten as it streams
    /// (`docs/streaming.md`); other scannable bodies are held whole; nothing
    /// else is touched (a response with neither passes unread).
    pub fn on_response_headers(
        &mut self,
        policy: &Policy,
        content_type: Option<&str>,
        content_encoding: Option<&str>,
        end_of_stream: bool,
    ) -> ResponseHeadersStep {
        self.response_content_type = content_type.map(str::to_string);
        self.response = ResponseState::Passing;
        // Masked, or the request's tokens to restore.
        let masking = self.rewrites_response();
        let tools_list = self.tools_list_headers.is_some();
        // Masked, or a tools list to filter: the body must be read.
        let must_read = masking || tools_list;
        if !(must_read || self.record) || end_of_stream {
            return ResponseHeadersStep::Continue;
        }
        let compressed = headers::is_compressed(content_encoding);
        let event_stream = headers::is_event_stream(content_type);
        if compressed && !must_read {
            self.recording().response = Some(recording::COMPRESSED.into());
            return ResponseHeadersStep::Continue;
        }
        // An event stream is never held whole (that would stop it
        // streaming): masked as it passes, and not recorded.
        if event_stream && self.record {
            self.recording().response = Some(recording::not_recorded(content_type));
        }
        if event_stream && !must_read {
            return ResponseHeadersStep::Continue;
        }
        if compressed {
            return ResponseHeadersStep::Refuse(self.refuse(
                Decision::Error,
                LocalReply::new(
                    502,
                    "response_not_scannable",
                    "the upstream sent a compressed response that the policy must read; it was not passed on",
                ),
            ));
        }
        if event_stream {
            let max_event = usize::try_from(policy.limits.max_body_bytes).unwrap_or(usize::MAX);
            if tools_list {
                self.tools_stream = Some(ToolsStream::new(max_event));
            }
            if masking {
                self.response_stream = Some(ResponseStream::new(max_event));
            }
            self.masked_before_stream = self.exchange.masked.clone();
            self.response = ResponseState::Streaming;
            return ResponseHeadersStep::Stream;
        }
        if BodyKind::of(content_type) == BodyKind::Passthrough {
            if masking {
                self.exchange.unscanned.push(format!(
                    "response: {} is not scanned",
                    content_type.unwrap_or("(no content-type)")
                ));
            }
            if self.record {
                self.recording().response = Some(recording::not_recorded(content_type));
            }
            return ResponseHeadersStep::Continue;
        }
        self.response = ResponseState::Buffering;
        ResponseHeadersStep::Hold
    }

    /// `size` more bytes of the response body arrived (while buffering,
    /// `size` is all of it so far).
    pub fn on_response_data(
        &mut self,
        policy: &Policy,
        size: usize,
        end: bool,
    ) -> ResponseDataStep {
        match self.response {
            ResponseState::Buffering => {
                if let Some(reply) = self.response_too_large(policy, size as u64) {
                    return ResponseDataStep::Refuse(reply);
                }
                if end {
                    ResponseDataStep::Complete
                } else {
                    ResponseDataStep::Wait
                }
            }
            ResponseState::Streaming => ResponseDataStep::Chunk,
            // A refused or reset response passes nothing more.
            ResponseState::Refused | ResponseState::Aborted => ResponseDataStep::Wait,
            ResponseState::Headers | ResponseState::Passing | ResponseState::Done => {
                ResponseDataStep::Continue
            }
        }
    }

    /// The whole held response body.
    pub fn on_response_body(&mut self, policy: &Policy, body: &[u8]) -> ResponseBodyStep {
        if let Some(reply) = self.response_too_large(policy, body.len() as u64) {
            return ResponseBodyStep::Refuse(reply);
        }
        let content_type = self.response_content_type.clone();
        let content_type = content_type.as_deref();
        // A response masks cannot read as the client would is refused (502);
        // masks rewrite from the check's reading.
        let (check, reading) = inspection::check_response(policy, content_type, body);
        if let Some(reply) = self.check(check) {
            return ResponseBodyStep::Refuse(reply);
        }
        // A tools list first loses the tools the caller may not call.
        let filtered = match self.filter_tools(policy, body) {
            Ok(f) => f,
            Err(reply) => return ResponseBodyStep::Refuse(reply),
        };
        let received = body;
        // The request's tokens go back first; the response masks then see
        // the values (the response policy wins).
        let restored = self.restore_tokens(content_type, filtered.as_deref().unwrap_or(received));
        let current = restored.or(filtered);
        let body = current.as_deref().unwrap_or(received);
        let masked = if self.response_masks.is_empty() {
            current.clone()
        } else {
            // A filtered tools list or restored tokens are other bytes: the
            // reading is then not used.
            let out = apply(
                &policy.masking,
                &self.response_masks,
                content_type,
                body,
                None,
                reading.as_ref(),
                &mut Tokens::default(),
            );
            self.note_masked("response", content_type, &out);
            out.body.or_else(|| current.clone())
        };
        if self.record {
            let shown = masked.as_deref().unwrap_or(body);
            // Restored values are masked again for the recording.
            let already = !self.response_masks.is_empty() && self.exchange.restored.is_empty();
            let audit = &policy.audit;
            self.recording()
                .response_body(audit, content_type, shown, already);
        }
        self.response = ResponseState::Done;
        self.tokens = Tokens::default();
        match masked {
            Some(masked) => ResponseBodyStep::Replace(masked),
            None => ResponseBodyStep::Continue,
        }
    }

    /// One piece of a streamed response (`end`: the last one). Never returns
    /// unmasked bytes: what may still become part of a value is held for the
    /// next piece.
    pub fn on_response_chunk(&mut self, policy: &Policy, chunk: &[u8], end: bool) -> ChunkStep {
        // A tools list streamed as events is filtered event by event first.
        let filtered = match self.filter_tools_chunk(policy, chunk, end) {
            Ok(f) => f,
            Err(code) => {
                self.on_stream_aborted(code);
                return ChunkStep::Abort;
            }
        };
        let chunk = filtered.as_deref().unwrap_or(chunk);
        let Some(stream) = self.response_stream.as_mut() else {
            // Only a streaming response has pieces to mask.
            if end {
                self.response = ResponseState::Done;
            }
            return ChunkStep::Emit(chunk.to_vec());
        };
        // Restore the request's tokens, then mask.
        let restore = (!self.tokens.is_empty()).then_some(Stage::Restore(&self.tokens));
        let stages: Vec<Stage<'_>> = restore
            .into_iter()
            .chain(
                self.response_masks
                    .iter()
                    .filter_map(|name| policy.masking.profile(name))
                    .map(Stage::Mask),
            )
            .collect();
        let step = match stream.push(&stages, chunk) {
            Ok(mut out) => {
                if end {
                    out.extend(stream.finish(&stages));
                }
                ChunkStep::Emit(out)
            }
            Err(_) => ChunkStep::Abort,
        };
        let counts = stream.counts(&stages);
        let mut masked = self.masked_before_stream.clone();
        for (detector, n) in counts.masked {
            *masked.entry(detector).or_insert(0) += n;
        }
        self.exchange.masked = masked;
        self.exchange.restored = counts.restored;
        match step {
            ChunkStep::Abort => self.on_stream_aborted("response_event_too_large"),
            ChunkStep::Emit(_) if end => self.response = ResponseState::Done,
            ChunkStep::Emit(_) => {}
        }
        if self.response != ResponseState::Streaming {
            // The exchange is over: its token map goes.
            self.tokens = Tokens::default();
        }
        step
    }

    /// A whole response body with the request's tokens put back (`None`
    /// if unchanged or no token was issued); counted for the audit.
    fn restore_tokens(&mut self, content_type: Option<&str>, body: &[u8]) -> Option<Vec<u8>> {
        if self.tokens.is_empty() {
            return None;
        }
        self.tokens
            .restore(content_type, body, &mut self.exchange.restored)
    }

    /// The caller's view of the request, to ask the rules about tools.
    fn tools_caller<'a>(&'a self, headers: &'a [(String, String)]) -> Caller<'a> {
        Caller {
            view: RequestView {
                method: &self.exchange.method,
                authority: &self.exchange.authority,
                path: &self.exchange.path,
                headers,
                identity: self.exchange.identity.as_ref(),
                body: None,
            },
        }
    }

    /// A held `tools/list` answer, filtered: `Ok(None)` if unchanged; a
    /// changed pinned definition refuses the answer (502).
    fn filter_tools(
        &mut self,
        policy: &Policy,
        body: &[u8],
    ) -> Result<Option<Vec<u8>>, LocalReply> {
        let (Some(mcp), Some(headers)) = (&policy.mcp, &self.tools_list_headers) else {
            return Ok(None);
        };
        let result = filter_answer(mcp, &policy.rules, &self.tools_caller(headers), body);
        match result {
            Ok(f) => {
                self.exchange.tools_hidden.extend(f.hidden);
                Ok(f.body)
            }
            Err(pin) => Err(self.refuse_pin(pin)),
        }
    }

    /// A piece of a streamed `tools/list` answer, filtered: `Err` names why
    /// the stream must be reset.
    fn filter_tools_chunk(
        &mut self,
        policy: &Policy,
        chunk: &[u8],
        end: bool,
    ) -> Result<Option<Vec<u8>>, &'static str> {
        let (Some(mcp), Some(headers)) = (&policy.mcp, &self.tools_list_headers) else {
            return Ok(None);
        };
        let Some(mut stream) = self.tools_stream.take() else {
            return Ok(None);
        };
        let result = stream.push(mcp, &policy.rules, &self.tools_caller(headers), chunk, end);
        self.exchange.tools_hidden = stream.hidden.clone();
        self.tools_stream = Some(stream);
        match result {
            Ok(out) => Ok(Some(out)),
            Err(StreamError::EventTooLarge) => Err("response_event_too_large"),
            Err(StreamError::Pin(pin)) => {
                log::warn!(
                    "transit-guard: tool {:?} changed its definition (pinned {}, seen {})",
                    pin.tool,
                    pin.pinned,
                    pin.seen
                );
                self.exchange.tool_pin = Some(pin);
                Err("tool_definition_changed")
            }
        }
    }

    fn refuse_pin(&mut self, pin: PinMismatch) -> LocalReply {
        log::warn!(
            "transit-guard: tool {:?} changed its definition (pinned {}, seen {})",
            pin.tool,
            pin.pinned,
            pin.seen
        );
        let reply = LocalReply::new(
            502,
            "tool_definition_changed",
            format!(
                "the MCP server's definition of tool {:?} is not the one the policy pins; the tool list was not passed on",
                pin.tool
            ),
        )
        .with_field("tool", pin.tool.clone());
        self.exchange.tool_pin = Some(pin);
        self.refuse(Decision::Error, reply)
    }

    /// A streamed response was reset (its headers are gone): audited with
    /// `code`. Also for host failures while streaming.
    pub fn on_stream_aborted(&mut self, code: &'static str) {
        self.exchange.refuse(Decision::Error, code);
        self.response = ResponseState::Aborted;
    }

    /// A held response over the limit is refused before more is buffered
    /// (fail closed: it cannot be masked).
    fn response_too_large(&mut self, policy: &Policy, seen: u64) -> Option<LocalReply> {
        if seen <= policy.limits.max_body_bytes {
            return None;
        }
        Some(self.refuse(
            Decision::Oversize,
            LocalReply::new(
                502,
                "response_too_large",
                format!(
                    "the response exceeds limits.max_body_bytes ({} bytes) and cannot be masked; it was not passed on",
                    policy.limits.max_body_bytes
                ),
            ),
        ))
    }
}
