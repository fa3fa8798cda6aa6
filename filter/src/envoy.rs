//! What the filter asks of Envoy, as a trait: the host calls of one worker.
//!
//! [`crate::host`] implements it with proxy-wasm's host calls (and nothing
//! else); the unit tests with [`mock::MockEnvoy`], which can be told to fail
//! any call. Every call that can fail returns a `Result`, and the callers
//! fail closed. Calls about "the current stream" act on the stream whose
//! callback is running; the `*_stream` calls act on another one (a request
//! held for approval, ended from a callout's answer or the tick).

use std::time::{Duration, SystemTime};

/// A host call failed; the text names the call and Envoy's status.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HostError(pub String);

impl std::fmt::Display for HostError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl HostError {
    /// A compare-and-swap write lost to another writer (retry it).
    pub fn is_cas_mismatch(&self) -> bool {
        self.0.ends_with("CasMismatch")
    }
}

/// Which body buffer of the current stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Body {
    Request,
    Response,
}

/// An HTTP call to an Envoy cluster (`dispatch_http_call`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CalloutRequest {
    pub cluster: String,
    /// All headers, pseudo-headers (`:method`, `:path`, `:authority`) first.
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
    pub timeout: Duration,
}

/// A callout's answer as Envoy reports it. A reset or a timeout has no
/// status (Envoy reports zero headers).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CalloutResponse {
    pub status: Option<u16>,
    pub body: Vec<u8>,
}

/// A value in Envoy's shared data and its compare-and-swap token.
pub type Shared = (Option<Vec<u8>>, Option<u32>);

pub trait Envoy {
    /// Envoy's clock: the only clock the filter reads.
    fn now(&self) -> SystemTime;

    /// Every request header of the current stream, in one call.
    fn request_headers(&self) -> Result<Vec<(String, String)>, HostError>;
    /// Sets (or with `None` removes) a request header of the current stream.
    fn set_request_header(&self, name: &str, value: Option<&str>) -> Result<(), HostError>;
    /// Every response header of the current stream, in one call.
    fn response_headers(&self) -> Result<Vec<(String, String)>, HostError>;
    fn remove_response_header(&self, name: &str) -> Result<(), HostError>;
    /// The first `size` bytes of a body buffer (`usize::MAX`: all of it).
    fn read_body(&self, body: Body, size: usize) -> Result<Vec<u8>, HostError>;
    /// Replaces the first `size` bytes of a body buffer with `new`.
    fn replace_body(&self, body: Body, size: usize, new: &[u8]) -> Result<(), HostError>;
    /// Answers the current stream with a local reply.
    fn send_reply(
        &self,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError>;
    /// Resets the current stream's response (its headers are gone).
    fn reset_response(&self) -> Result<(), HostError>;
    /// An Envoy attribute (`connection.tls_version`, `response.code`, ...).
    fn property(&self, path: &[&str]) -> Option<Vec<u8>>;
    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError>;

    /// Lets another (held) stream go on.
    fn resume_stream(&self, context_id: u32) -> Result<(), HostError>;
    /// Answers another (held) stream with a local reply.
    fn reply_to_stream(
        &self,
        context_id: u32,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError>;

    /// Starts a callout; its answer comes back by token.
    fn dispatch(&self, call: &CalloutRequest) -> Result<u32, HostError>;
    /// The answer to the callout being reported now.
    fn callout_response(&self, body_size: usize) -> CalloutResponse;

    fn shared_get(&self, key: &str) -> Result<Shared, HostError>;
    /// Writes shared data; with `cas`, only if nobody wrote since that read.
    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), HostError>;

    /// Adds `n` to the counter of `family` (`requests`) and `label`
    /// (`allowed`), defined on first use under the name `metrics::name`
    /// gives it: the host keeps its id, so a request formats no name.
    fn count(&self, family: &'static str, label: &str, n: u64);
}

/// Reads an Envoy integer attribute (8 bytes, little-endian).
pub fn u64_property(envoy: &impl Envoy, path: &[&str]) -> Option<u64> {
    let b = envoy.property(path)?;
    let arr: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(arr))
}

/// Milliseconds since the epoch by Envoy's clock.
pub fn now_ms(envoy: &impl Envoy) -> u64 {
    envoy
        .now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

#[cfg(test)]
pub mod mock;
