//! What the flow tells the host to do, one type per phase: each holds only
//! the steps that can happen in that phase.

pub use crate::approval::registry::ApprovalStart;
use crate::local_reply::LocalReply;

/// After the request headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum HeadersStep {
    /// Make [`super::Flow::header_edits`] and let the request go on.
    Continue,
    /// Hold the headers while Envoy buffers the whole body
    /// (see [`super::Flow::on_request_data`]).
    Hold,
    /// Answer with this local reply; nothing goes upstream.
    Refuse(LocalReply),
    /// Make the header edits, keep the request held and ask the approver;
    /// its answer goes to [`super::Flow::on_approval`].
    Approve(ApprovalStart),
}

/// After a piece of the request body arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestDataStep {
    /// Let this piece go on.
    Continue,
    /// Keep buffering (or keep the request held): more is to come.
    Wait,
    /// The body is complete: read it whole and call
    /// [`super::Flow::on_request_body`].
    Complete,
    /// Answer with this local reply.
    Refuse(LocalReply),
}

/// After a piece of the response body arrived.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseDataStep {
    /// Let this piece go on.
    Continue,
    /// Keep buffering (or keep the response held): more is to come.
    Wait,
    /// The body is complete: read it whole and call
    /// [`super::Flow::on_response_body`].
    Complete,
    /// A streamed response: read this piece and call
    /// [`super::Flow::on_response_chunk`].
    Chunk,
    /// Answer with this local reply.
    Refuse(LocalReply),
}

/// After the whole held request body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RequestBodyStep {
    /// Make the header edits and let the request go on.
    Continue,
    /// Replace the body with this, make the header edits (they fix
    /// `content-length`), and let it go on.
    Replace(Vec<u8>),
    Refuse(LocalReply),
    /// Replace the body first if `replace` is set (masks that apply once
    /// approved), make the header edits, and ask the approver. The approval
    /// covers the body as received.
    Approve {
        start: ApprovalStart,
        replace: Option<Vec<u8>>,
    },
}

/// After the response headers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseHeadersStep {
    Continue,
    /// Remove `content-length` (the body will change length), hold the
    /// headers and buffer the whole body, so a refusal can still change
    /// the status.
    Hold,
    /// Remove `content-length` and let the headers go; every body piece
    /// goes through [`super::Flow::on_response_chunk`].
    Stream,
    Refuse(LocalReply),
}

/// After the whole held response body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ResponseBodyStep {
    Continue,
    /// Replace the body with this.
    Replace(Vec<u8>),
    Refuse(LocalReply),
}

/// What to do with one piece of a streamed response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ChunkStep {
    /// Pass these bytes on instead of the piece (maybe none yet).
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

/// A host call the filter could not make: the request is refused (fail
/// closed), audited with this reason code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HostFailure {
    /// Envoy would not hand over the request headers.
    RequestHeaders,
    /// A request header could not be set or removed (token, claims,
    /// `content-length`).
    RequestHeaderEdit,
    /// A held body could not be read.
    ReadBody,
    /// A body could not be replaced with its masked version.
    ReplaceBody,
    /// The response's `content-type` or `content-encoding` could not be read.
    ResponseHeaders,
    /// `content-length` could not be removed before a response body changes.
    ResponseHeaderEdit,
}

impl HostFailure {
    /// The reason code in the reply and the audit record.
    pub fn code(self) -> &'static str {
        match self {
            HostFailure::RequestHeaders => "request_headers_unreadable",
            HostFailure::RequestHeaderEdit => "request_header_edit_failed",
            HostFailure::ReadBody => "body_unreadable",
            HostFailure::ReplaceBody => "body_rewrite_failed",
            HostFailure::ResponseHeaders => "response_headers_unreadable",
            HostFailure::ResponseHeaderEdit => "response_header_edit_failed",
        }
    }

    /// The reply: 500, the code, and that nothing was forwarded.
    pub fn reply(self) -> LocalReply {
        LocalReply::new(
            500,
            self.code(),
            "the gateway could not apply its policy to this request; it was not passed on",
        )
    }
}
