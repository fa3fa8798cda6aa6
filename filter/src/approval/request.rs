//! What the filter tells the approver about a held request: the fingerprint,
//! the create body (`POST /v1/approvals`) and the masked body preview.

use sha2::{Digest, Sha256};

use super::config::ApprovalConfig;
use crate::identity::Identity;
use crate::rules::path::normalize;
use transit_guard_wire::{Header, Identity as WireIdentity, NewApproval};

/// Who a request without a verified identity is, for the approver (which
/// requires a non-empty `sub`). Every anonymous caller is this one identity,
/// so a time-bound grant given to it covers every anonymous caller of the rule.
pub const ANONYMOUS_ISSUER: &str = "urn:transit-guard:anonymous";
pub const ANONYMOUS_SUBJECT: &str = "anonymous";

/// A held request, as approvals see it.
#[derive(Debug, Clone, Copy)]
pub struct HeldRequest<'a> {
    pub request_id: &'a str,
    pub identity: Option<&'a Identity>,
    /// The `require_approval` rules that fired (joined with `,` for the approver).
    pub rules: &'a [String],
    pub method: &'a str,
    pub authority: &'a str,
    /// `:path` as received, query included.
    pub path: &'a str,
    pub content_type: Option<&'a str>,
    /// The headers as they reach the upstream (the caller's token removed
    /// when identity strips it). See [`fingerprint`] for those left out.
    pub headers: &'a [(String, String)],
    pub body: &'a [u8],
}

impl HeldRequest<'_> {
    fn issuer_subject(&self) -> (&str, &str) {
        match self.identity {
            Some(i) => (i.issuer.as_str(), i.subject.as_str()),
            None => (ANONYMOUS_ISSUER, ANONYMOUS_SUBJECT),
        }
    }

    pub fn rule(&self) -> String {
        self.rules.join(",")
    }
}

/// SHA-256 (hex) over issuer, subject, method, authority, path, content
/// type, headers and body, each prefixed with its length so no two different
/// requests collide by concatenation (`("ab","c")` vs `("a","bc")`).
///
/// The path is the normalised one plus the raw query (`/a/./b/?x=1` and
/// `/a/b?x=1` are one request), except for an ambiguous path (encoded `/`,
/// `..` above the root, …), which is taken as received: upstreams may read
/// it differently from its normalised form, so it must not share an approval
/// with it. The authority is compared without case (hosts are case-insensitive).
///
/// Headers: every header that reaches the upstream, names lowercased, sorted,
/// except [`UNBOUND_HEADERS`] and `x-envoy-*` (hop-by-hop, per attempt, or
/// covered by another field), so a retry with `X-Export-Scope: everything`
/// added, or another content type, is another request.
pub fn fingerprint(req: &HeldRequest<'_>) -> String {
    let (iss, sub) = req.issuer_subject();
    let authority = req.authority.to_ascii_lowercase();
    let path = path_key(req.path);
    let content_type = req.content_type.unwrap_or("").trim().to_ascii_lowercase();
    let headers = bound_headers(req.headers, req.identity.is_some());
    let mut h = Sha256::new();
    for field in [
        b"transit-guard.approval/v2".as_slice(),
        iss.as_bytes(),
        sub.as_bytes(),
        req.method.as_bytes(),
        authority.as_bytes(),
        path.as_bytes(),
        content_type.as_bytes(),
        headers.as_slice(),
        req.body,
    ] {
        h.update((field.len() as u64).to_be_bytes());
        h.update(field);
    }
    hex(&h.finalize())
}

/// Headers an approval does not bind: hop-by-hop (RFC 9110 7.6.1), set per
/// attempt by clients or Envoy (ids, tracing, forwarding), or covered by
/// another field (`content-type`, `content-length` by the body, `host` by the
/// authority). Pseudo-headers (`:path`, ...) are bound by their own fields.
pub const UNBOUND_HEADERS: &[&str] = &[
    "connection",
    "keep-alive",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
    "content-length",
    "content-type",
    "host",
    "x-request-id",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-forwarded-host",
    "x-forwarded-port",
    "forwarded",
    "via",
    "traceparent",
    "tracestate",
    "b3",
    "x-b3-traceid",
    "x-b3-spanid",
    "x-b3-parentspanid",
    "x-b3-sampled",
    "x-b3-flags",
    "x-amzn-trace-id",
    // OpenAI and Anthropic SDKs count their retries of one call.
    "x-stainless-retry-count",
];

/// The bound headers as one length-prefixed byte string. With a verified
/// identity, `authorization` is left out too: issuer and subject are bound,
/// and a refreshed token for the same caller is the same request.
fn bound_headers(headers: &[(String, String)], verified: bool) -> Vec<u8> {
    let mut bound: Vec<(String, &str)> = headers
        .iter()
        .map(|(k, v)| (k.to_ascii_lowercase(), v.trim()))
        .filter(|(k, _)| {
            let unbound = k.starts_with(':')
                || k.starts_with("x-envoy-")
                || (verified && k == "authorization")
                || UNBOUND_HEADERS.contains(&k.as_str());
            !unbound
        })
        .collect();
    bound.sort();
    let mut out = Vec::new();
    for (k, v) in bound {
        for part in [k.as_bytes(), v.as_bytes()] {
            out.extend_from_slice(&(part.len() as u64).to_be_bytes());
            out.extend_from_slice(part);
        }
    }
    out
}

fn path_key(raw: &str) -> String {
    let n = normalize(raw);
    if n.ambiguous {
        return raw.to_string();
    }
    let query = raw
        .split_once('?')
        .map(|(_, q)| q.split('#').next().unwrap_or(""));
    match query {
        Some(q) => format!("{}?{q}", n.path),
        None => n.path,
    }
}

fn hex(bytes: &[u8]) -> String {
    use std::fmt::Write;
    let mut s = String::with_capacity(bytes.len() * 2);
    for b in bytes {
        let _ = write!(s, "{b:02x}");
    }
    s
}

/// The JSON body of `POST /v1/approvals` (the shared
/// [`transit_guard_wire::NewApproval`]). The path shown to reviewers has its
/// sensitive query parameters redacted, as in the audit record.
pub fn create_body(cfg: &ApprovalConfig, req: &HeldRequest<'_>) -> Vec<u8> {
    let (iss, sub) = req.issuer_subject();
    let body = NewApproval {
        request_id: req.request_id.to_string(),
        fingerprint: fingerprint(req),
        identity: WireIdentity {
            sub: sub.to_string(),
            iss: iss.to_string(),
            groups: req.identity.map(|i| i.groups.clone()).unwrap_or_default(),
        },
        rule: req.rule(),
        method: req.method.to_string(),
        authority: req.authority.to_string(),
        path: crate::audit::redact_query(req.path),
        preview: preview(cfg, req.content_type, req.body),
        headers: review_headers(cfg, req.headers),
        // The filter uses a one-time approval itself, only for a request
        // that is still there to pass (`wait.rs`).
        confirm: true,
    };
    // A struct of strings always serializes; an empty body fails closed at the approver.
    serde_json::to_vec(&body).unwrap_or_default()
}

/// The body as reviewers see it: masked with the preview profile (values
/// found by its detectors are replaced before anything is cut), lossily
/// decoded, then cut to `preview_bytes` at a character boundary. A body the
/// masker cannot read (binary content types) is never shown, only described.
pub fn preview(cfg: &ApprovalConfig, content_type: Option<&str>, body: &[u8]) -> String {
    if body.is_empty() || cfg.preview_bytes == 0 {
        return String::new();
    }
    let out = cfg.preview_masker.mask(content_type, body);
    if out.kind == crate::mask::BodyKind::Passthrough {
        return truncate(
            format!(
                "[{} bytes of {}, not shown]",
                body.len(),
                content_type.unwrap_or("(no content-type)")
            ),
            cfg.preview_bytes,
        );
    }
    let masked = out.body.as_deref().unwrap_or(body);
    truncate(
        String::from_utf8_lossy(masked).into_owned(),
        cfg.preview_bytes,
    )
}

/// Cuts `s` to at most `max` bytes without splitting a character.
fn truncate(mut s: String, max: usize) -> String {
    if s.len() <= max {
        return s;
    }
    let mut end = max;
    while end > 0 && !s.is_char_boundary(end) {
        end -= 1;
    }
    s.truncate(end);
    s
}

/// Header names whose values are credentials: shown to reviewers as
/// `[REDACTED]`, whatever they hold.
const SECRET_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "set-cookie",
    "x-api-key",
    "api-key",
    "x-auth-token",
    "x-amz-security-token",
];

/// The headers that will reach the upstream, as reviewers see them (the
/// create body's `headers`): pseudo-headers and Envoy's own left out,
/// credential headers (by name, or a name ending in `-token`, `-key`,
/// `-secret`, or holding `password`) redacted, every other value masked with
/// the preview profile, each cut to 512 bytes.
pub fn review_headers(cfg: &ApprovalConfig, headers: &[(String, String)]) -> Vec<Header> {
    headers
        .iter()
        .filter(|(k, _)| !k.starts_with(':') && !k.to_ascii_lowercase().starts_with("x-envoy-"))
        .map(|(k, v)| {
            let name = k.to_ascii_lowercase();
            let secret = SECRET_HEADERS.contains(&name.as_str())
                || name.ends_with("-token")
                || name.ends_with("-key")
                || name.ends_with("-secret")
                || name.contains("password");
            let value = if secret {
                "[REDACTED]".to_string()
            } else {
                let out = cfg.preview_masker.mask(Some("text/plain"), v.as_bytes());
                let masked = out.body.as_deref().unwrap_or(v.as_bytes());
                truncate(String::from_utf8_lossy(masked).into_owned(), 512)
            };
            Header { name, value }
        })
        .collect()
}
