//! The end of the exchange for the audit record (status, sizes, duration,
//! how it ended), from what the filter saw as the stream went by, so a plain
//! exchange costs no host call at its end but the clock. Each of Envoy's
//! attributes is still read where the filter's view could differ from it:
//!
//! - `response.code`: the `:status` of the response headers the filter saw;
//!   read when it saw none.
//! - `response.flags` and `.code_details`: they only matter when the upstream
//!   failed or the agent went away, and both leave a mark the filter sees:
//!   no response end, or a 5xx (which Envoy's own replies to an upstream
//!   failure are). Read then; otherwise no flag is set.
//! - `request.size` is Envoy's `content-length` (or, without one, the bytes
//!   received): the header the filter read, 0 for a request that ended with
//!   its headers; read when the body was chunked or the filter rewrote it.
//! - `response.size` is the body bytes sent: the response's `content-length`
//!   (0 when it ended with its headers) when the filter passed the body on
//!   unchanged to its end; the length of the body it handed on when it held
//!   the body whole (masked or not); read otherwise (a streamed rewrite).
//! - `request.duration`: Envoy's clock at the end minus at the request
//!   headers (the start of the stream, to within the filter's own setup).
//!
//! The filter sees the response as it leaves when it is the first HTTP filter
//! (last on the way back), as in `envoy/gateway.yaml`; a filter listed before
//! it that rewrote the status or the body would not be seen.

use std::time::{Duration, SystemTime};

use crate::audit::EnvoyFacts;
use crate::envoy::{u64_property, Envoy};
use crate::headers;

/// What the filter saw of the stream's ends and sizes.
#[derive(Debug, Default)]
pub(super) struct Seen {
    pub start: Option<SystemTime>,
    /// The request ended with its headers.
    pub request_bodiless: bool,
    /// The request's `content-length`, if it had one.
    pub request_length: Option<String>,
    /// The filter rewrote the request body or its `content-length`.
    pub request_rewritten: bool,
    /// `:status` of the response headers that went through the filter.
    pub status: Option<u64>,
    /// The response's `content-length`, if it had one.
    pub response_length: Option<String>,
    /// The response ended with its headers.
    pub response_bodiless: bool,
    /// The response's end went through the filter.
    pub response_ended: bool,
    /// The filter rewrote the response body or dropped its `content-length`.
    pub response_rewritten: bool,
    /// The length of the whole body the filter held and then handed on
    /// (masked or as it came) at its end.
    pub response_handed_on: Option<u64>,
}

impl Seen {
    /// The response headers as they went through the filter.
    pub fn response_headers(&mut self, list: &headers::HeaderList, end_of_stream: bool) {
        self.status = headers::first(list, ":status").and_then(|s| s.trim().parse().ok());
        self.response_length = headers::first(list, "content-length").map(str::to_string);
        self.response_bodiless = end_of_stream;
        self.response_ended |= end_of_stream;
    }

    /// The filter answered or reset the stream itself: what it saw of the
    /// response is no longer what the agent got (Envoy's own reply may or
    /// may not pass through the filter again).
    pub fn replied(&mut self) {
        self.status = None;
        self.response_ended = false;
    }

    /// Envoy's facts about the stream, reading only what the filter's view
    /// does not settle (see the module's doc).
    pub fn facts(&self, envoy: &impl Envoy) -> EnvoyFacts {
        let status = self.status.filter(|c| *c != 0);
        // Upstream failures end in Envoy's 5xx or in a reset; an agent that
        // goes away leaves the response unfinished.
        let plain = status.is_some_and(|c| c < 500) && self.response_ended;
        let (response_flags, code_details) = if plain {
            (0, None)
        } else {
            (
                u64_property(envoy, &["response", "flags"]).unwrap_or(0),
                envoy
                    .property(&["response", "code_details"])
                    .map(|b| String::from_utf8_lossy(&b).into_owned()),
            )
        };
        let bytes_in = match (&self.request_length, self.request_bodiless) {
            _ if self.request_rewritten => None,
            // As Envoy: a `content-length` that does not parse gives no size.
            (Some(len), _) => Some(len.trim().parse().unwrap_or(0)),
            (None, true) => Some(0),
            (None, false) => None,
        };
        let bytes_out = match (&self.response_length, self.response_bodiless) {
            _ if !plain => None,
            _ if self.response_rewritten => self.response_handed_on,
            (_, true) => Some(0),
            (Some(len), false) => len.trim().parse().ok(),
            (None, false) => None,
        };
        let now = envoy.now();
        EnvoyFacts {
            start: self.start,
            response_code: status.or_else(|| u64_property(envoy, &["response", "code"])),
            code_details,
            response_flags,
            bytes_in: bytes_in
                .or_else(|| u64_property(envoy, &["request", "size"]))
                .unwrap_or(0),
            bytes_out: bytes_out
                .or_else(|| u64_property(envoy, &["response", "size"]))
                .unwrap_or(0),
            duration: self
                .start
                .map(|s| now.duration_since(s).unwrap_or(Duration::ZERO)),
        }
    }
}
