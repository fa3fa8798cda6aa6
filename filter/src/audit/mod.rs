//! The audit record: exactly one JSON object per request, whatever happened.
//!
//! The host fills an [`Exchange`] as the request flows (who, what, what the
//! filter decided), and at the end of the stream adds what Envoy knows
//! ([`EnvoyFacts`]: status, bytes, latency, how the stream ended). [`record`]
//! turns both into an [`AuditRecord`], which Envoy's access log writes out
//! (see `docs/audit.md`). Nothing in it is a secret: no token, no header
//! value, no body, no detected value; sensitive query parameters are redacted.

use std::collections::BTreeMap;
use std::time::{Duration, SystemTime};

use serde::Serialize;

use crate::identity::Identity;

pub mod collector;
pub mod config;
pub mod metrics;
pub mod recording;
pub mod sink;

pub use recording::Recording;

/// Bumped on any incompatible change; `docs/audit.schema.json` describes it.
pub const SCHEMA: &str = "transit-guard.audit/v1";

/// Bytes reserved for one record's line: a plain request's is about 450.
const LINE_CAPACITY: usize = 1024;

/// What happened to the request, from the agent's point of view.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Decision {
    /// Forwarded and answered by the upstream, unchanged.
    Allowed,
    /// Forwarded, with sensitive values masked in a body.
    Masked,
    /// Refused by a rule.
    Denied,
    /// Refused: no valid token.
    Unauthenticated,
    /// Refused: valid token, but not allowed (e.g. audience).
    Forbidden,
    /// Refused: reached Envoy over plaintext.
    TlsRequired,
    /// Refused: body over `limits.max_body_bytes`.
    Oversize,
    /// Refused: the identity is over a `quotas` limit.
    RateLimited,
    ApprovalApproved,
    ApprovalDenied,
    ApprovalExpired,
    ApprovalFailed,
    /// Forwarded, but the upstream failed (connect failure, reset, timeout).
    UpstreamError,
    /// The agent went away before the response was complete.
    ClientAbort,
    /// The filter itself could not decide (fail closed).
    Error,
}

impl Decision {
    /// The snake_case name, as in the record and the metric labels.
    pub fn as_str(self) -> &'static str {
        match self {
            Decision::Allowed => "allowed",
            Decision::Masked => "masked",
            Decision::Denied => "denied",
            Decision::Unauthenticated => "unauthenticated",
            Decision::Forbidden => "forbidden",
            Decision::TlsRequired => "tls_required",
            Decision::Oversize => "oversize",
            Decision::RateLimited => "rate_limited",
            Decision::ApprovalApproved => "approval_approved",
            Decision::ApprovalDenied => "approval_denied",
            Decision::ApprovalExpired => "approval_expired",
            Decision::ApprovalFailed => "approval_failed",
            Decision::UpstreamError => "upstream_error",
            Decision::ClientAbort => "client_abort",
            Decision::Error => "error",
        }
    }
}

/// What the filter learned about one request as it flowed.
#[derive(Debug, Clone, Default)]
pub struct Exchange {
    pub request_id: String,
    pub method: String,
    pub authority: String,
    /// The request path as received (query included; redacted on output).
    pub path: String,
    pub identity: Option<Identity>,
    /// Set when the filter refused the request: the decision and its reason code.
    pub refused: Option<(Decision, &'static str)>,
    /// Rules that fired and were carried out.
    pub rules: Vec<String>,
    /// Monitor mode: what would have happened (`"rule-or-check: code"`).
    pub would: Vec<String>,
    /// Masked values by detector name (counts only, never values).
    pub masked: BTreeMap<String, u32>,
    /// The part of `masked` in the request replaced by `tokenize` tokens,
    /// and the tokens put back into the response, by detector (counts only).
    pub tokenized: BTreeMap<String, u32>,
    pub restored: BTreeMap<String, u32>,
    /// Bodies a mask applied to but could not scan (binary content types).
    pub unscanned: Vec<String>,
    /// The rule that denied the request (`default_action` for the default).
    pub deny_rule: Option<String>,
    /// MCP: tools removed from a `tools/list` answer, and a pinned tool
    /// whose definition changed.
    pub tools_hidden: Vec<String>,
    pub tool_pin: Option<crate::mcp::PinMismatch>,
    /// The `quotas` limit the request went over (also in monitor mode).
    pub quota: Option<String>,
    /// The reason code of a failed token check (also in monitor mode).
    pub auth_failure: Option<&'static str>,
    /// Set once a human approval was asked for.
    pub approval: Option<AuditApproval>,
    /// A reviewer (or a grant) approved the request and it was forwarded.
    pub approved: bool,
    /// Session recording, when a rule with `record: true` was carried out.
    pub recording: Option<Recording>,
}

/// The approval a held request waited for.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct AuditApproval {
    /// The approver's id (`apr_…`); `null` if it never answered.
    pub id: Option<String>,
    pub reviewer: Option<String>,
}

impl Exchange {
    /// Records a refusal; the first one wins (it is the one the agent saw).
    pub fn refuse(&mut self, decision: Decision, code: &'static str) {
        if self.refused.is_none() {
            self.refused = Some((decision, code));
        }
    }
}

/// What Envoy knows at the end of the stream (its `request.*`/`response.*`
/// attributes).
#[derive(Debug, Clone, Default)]
pub struct EnvoyFacts {
    /// When the request started.
    pub start: Option<SystemTime>,
    /// `response.code`; 0 or absent when no response was sent.
    pub response_code: Option<u64>,
    /// `response.code_details`, e.g. `via_upstream`.
    pub code_details: Option<String>,
    /// `response.flags`: Envoy's response flag bits.
    pub response_flags: u64,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub duration: Option<Duration>,
}

/// Envoy's response flag bits (StreamInfo::CoreResponseFlag) that mean the
/// upstream failed, and that the downstream went away.
mod flags {
    pub const NO_HEALTHY_UPSTREAM: u64 = 1 << 1;
    pub const UPSTREAM_REQUEST_TIMEOUT: u64 = 1 << 2;
    pub const UPSTREAM_REMOTE_RESET: u64 = 1 << 4;
    pub const UPSTREAM_CONNECTION_FAILURE: u64 = 1 << 5;
    pub const UPSTREAM_CONNECTION_TERMINATION: u64 = 1 << 6;
    pub const UPSTREAM_OVERFLOW: u64 = 1 << 7;
    pub const DOWNSTREAM_CONNECTION_TERMINATION: u64 = 1 << 14;
    pub const UPSTREAM_PROTOCOL_ERROR: u64 = 1 << 23;
    pub const DOWNSTREAM_REMOTE_RESET: u64 = 1 << 27;

    pub const UPSTREAM_FAILED: u64 = NO_HEALTHY_UPSTREAM
        | UPSTREAM_REQUEST_TIMEOUT
        | UPSTREAM_REMOTE_RESET
        | UPSTREAM_CONNECTION_FAILURE
        | UPSTREAM_CONNECTION_TERMINATION
        | UPSTREAM_OVERFLOW
        | UPSTREAM_PROTOCOL_ERROR;
    pub const CLIENT_GONE: u64 = DOWNSTREAM_CONNECTION_TERMINATION | DOWNSTREAM_REMOTE_RESET;
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditIdentity {
    pub sub: String,
    pub iss: String,
    pub groups: Vec<String>,
}

/// One line of the audit log. Field meanings: `docs/audit.md`.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct AuditRecord {
    pub schema: &'static str,
    pub time: String,
    pub request_id: String,
    pub identity: Option<AuditIdentity>,
    pub method: String,
    pub authority: String,
    pub path: String,
    pub decision: Decision,
    /// Stable reason code: the refusal's code, or how the stream ended.
    pub reason: Option<String>,
    pub rules: Vec<String>,
    pub would: Vec<String>,
    pub masked: BTreeMap<String, u32>,
    pub unscanned: Vec<String>,
    pub recording: Option<Recording>,
    pub status: Option<u64>,
    pub bytes_in: u64,
    pub bytes_out: u64,
    pub latency_ms: Option<f64>,
    /// Only for requests that waited for a human approval.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub approval: Option<AuditApproval>,
    /// Only for requests over a `quotas` limit: the limit's name.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub quota: Option<String>,
    /// Only for MCP `tools/list` answers the filter changed or refused.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub mcp: Option<AuditMcp>,
    /// Only when the request had values tokenised (`tokenize`): their
    /// counts by detector, and of the tokens restored in the response.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub tokenized: Option<BTreeMap<String, u32>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub restored: Option<BTreeMap<String, u32>>,
}

/// What the filter did to an MCP tool list.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditMcp {
    /// Tools the caller may not call, removed from the list.
    pub tools_hidden: Vec<String>,
    /// A pinned tool whose definition changed (the answer was refused).
    pub pin_mismatch: Option<AuditPin>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct AuditPin {
    pub tool: String,
    /// SHA-256 (hex) the policy pins, and of the definition seen.
    pub pinned: String,
    pub seen: String,
}

impl AuditRecord {
    pub fn to_json(&self) -> String {
        // Sized for a typical record up front: grown from empty, the buffer
        // was reallocated about eight times per request (a third of the
        // record's cost, docs/performance.md).
        let mut line = Vec::with_capacity(LINE_CAPACITY);
        let encoded = serde_json::to_writer(&mut line, self)
            .map_err(|e| e.to_string())
            .and_then(|()| String::from_utf8(line).map_err(|e| e.to_string()));
        // A struct of strings and numbers always serializes; keep a line anyway.
        encoded.unwrap_or_else(|e| {
            format!("{{\"schema\":\"{SCHEMA}\",\"decision\":\"error\",\"reason\":\"audit_encode: {e}\"}}")
        })
    }
}

/// Builds the record for a finished request.
pub fn record(ex: &Exchange, facts: &EnvoyFacts) -> AuditRecord {
    let (decision, reason) = decide(ex, facts);
    AuditRecord {
        schema: SCHEMA,
        time: facts
            .start
            .map(|t| humantime::format_rfc3339_millis(t).to_string())
            .unwrap_or_default(),
        request_id: ex.request_id.clone(),
        identity: ex.identity.as_ref().map(|i| AuditIdentity {
            sub: i.subject.clone(),
            iss: i.issuer.clone(),
            groups: i.groups.clone(),
        }),
        method: ex.method.clone(),
        authority: ex.authority.clone(),
        path: redact_query(&ex.path),
        decision,
        reason,
        rules: ex.rules.clone(),
        would: ex.would.clone(),
        masked: ex.masked.clone(),
        unscanned: ex.unscanned.clone(),
        recording: ex.recording.clone(),
        status: facts.response_code.filter(|c| *c != 0),
        bytes_in: facts.bytes_in,
        bytes_out: facts.bytes_out,
        latency_ms: facts.duration.map(|d| (d.as_micros() as f64) / 1000.0),
        approval: ex.approval.clone(),
        quota: ex.quota.clone(),
        mcp: (!ex.tools_hidden.is_empty() || ex.tool_pin.is_some()).then(|| AuditMcp {
            tools_hidden: ex.tools_hidden.clone(),
            pin_mismatch: ex.tool_pin.as_ref().map(|p| AuditPin {
                tool: p.tool.clone(),
                pinned: p.pinned.clone(),
                seen: p.seen.clone(),
            }),
        }),
        tokenized: (!ex.tokenized.is_empty()).then(|| ex.tokenized.clone()),
        restored: (!ex.tokenized.is_empty()).then(|| ex.restored.clone()),
    }
}

fn decide(ex: &Exchange, facts: &EnvoyFacts) -> (Decision, Option<String>) {
    if let Some((decision, code)) = ex.refused {
        return (decision, Some(code.to_string()));
    }
    let details = facts.code_details.clone().filter(|d| !d.is_empty());
    // No response was ever sent and the filter refused nothing: the agent went
    // away first (Envoy does not always flag a downstream reset).
    let no_response = facts.response_code.unwrap_or(0) == 0;
    if facts.response_flags & flags::CLIENT_GONE != 0 || no_response {
        return (
            Decision::ClientAbort,
            details.or(Some("downstream_disconnect".into())),
        );
    }
    if facts.response_flags & flags::UPSTREAM_FAILED != 0 {
        return (
            Decision::UpstreamError,
            details.or(Some("upstream_failure".into())),
        );
    }
    if ex.approved {
        return (Decision::ApprovalApproved, Some("approval_approved".into()));
    }
    if ex.masked.values().any(|n| *n > 0) {
        return (Decision::Masked, None);
    }
    (Decision::Allowed, None)
}

/// Query parameters whose values are credentials or one-time secrets.
const SENSITIVE_PARAMS: &[&str] = &[
    "access_token",
    "id_token",
    "token",
    "code",
    "key",
    "api_key",
    "apikey",
    "secret",
    "password",
    "passwd",
    "pwd",
    "signature",
    "sig",
    "auth",
    "authorization",
    "session",
    "x-amz-signature",
    "x-amz-credential",
    "x-amz-security-token",
];

/// Keeps the path and the query's parameter names, but replaces the values of
/// credential-like parameters with `[REDACTED]`.
pub fn redact_query(path: &str) -> String {
    let Some((base, query)) = path.split_once('?') else {
        return path.to_string();
    };
    let params: Vec<String> = query
        .split('&')
        .map(|kv| match kv.split_once('=') {
            Some((k, _)) if is_sensitive_param(k) => format!("{k}=[REDACTED]"),
            _ => kv.to_string(),
        })
        .collect();
    format!("{base}?{}", params.join("&"))
}

fn is_sensitive_param(name: &str) -> bool {
    let lower = name.to_ascii_lowercase();
    SENSITIVE_PARAMS.contains(&lower.as_str())
        || lower.ends_with("_token")
        || lower.ends_with("_key")
        || lower.ends_with("_secret")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exchange() -> Exchange {
        Exchange {
            request_id: "r-1".into(),
            method: "GET".into(),
            authority: "api.internal".into(),
            path: "/customers?limit=5".into(),
            ..Exchange::default()
        }
    }

    fn facts(code: u64, flags: u64) -> EnvoyFacts {
        EnvoyFacts {
            start: Some(SystemTime::UNIX_EPOCH + Duration::from_millis(1_700_000_000_123)),
            response_code: Some(code),
            code_details: Some("via_upstream".into()),
            response_flags: flags,
            bytes_in: 10,
            bytes_out: 20,
            duration: Some(Duration::from_micros(1500)),
        }
    }

    #[test]
    fn allowed_request_record_has_every_field() {
        let r = record(&exchange(), &facts(200, 0));
        let v: serde_json::Value = serde_json::from_str(&r.to_json()).unwrap();
        assert_eq!(v["schema"], SCHEMA);
        assert_eq!(v["time"], "2023-11-14T22:13:20.123Z");
        assert_eq!(v["request_id"], "r-1");
        assert_eq!(v["decision"], "allowed");
        assert_eq!(v["reason"], serde_json::Value::Null);
        assert_eq!(v["status"], 200);
        assert_eq!(v["bytes_in"], 10);
        assert_eq!(v["bytes_out"], 20);
        assert_eq!(v["latency_ms"], 1.5);
        assert_eq!(v["path"], "/customers?limit=5");
    }

    #[test]
    fn refusal_wins_and_first_refusal_is_kept() {
        let mut ex = exchange();
        ex.refuse(Decision::TlsRequired, "tls_required");
        ex.refuse(Decision::Oversize, "body_too_large");
        let r = record(&ex, &facts(426, 0));
        assert_eq!(r.decision, Decision::TlsRequired);
        assert_eq!(r.reason.as_deref(), Some("tls_required"));
        assert_eq!(r.status, Some(426));
    }

    #[test]
    fn upstream_failure_and_client_abort_are_told_apart() {
        let r = record(&exchange(), &facts(503, flags::UPSTREAM_CONNECTION_FAILURE));
        assert_eq!(r.decision, Decision::UpstreamError);
        let r = record(
            &exchange(),
            &facts(0, flags::DOWNSTREAM_CONNECTION_TERMINATION),
        );
        assert_eq!(r.decision, Decision::ClientAbort);
        assert_eq!(r.status, None);
    }

    #[test]
    fn masked_counts_make_the_decision_masked() {
        let mut ex = exchange();
        ex.masked.insert("email".into(), 2);
        let r = record(&ex, &facts(200, 0));
        assert_eq!(r.decision, Decision::Masked);
        assert!(r.to_json().contains(r#""masked":{"email":2}"#));
    }

    #[test]
    fn tokenized_and_restored_counts_appear_only_when_values_were_tokenized() {
        let mut ex = exchange();
        let json = record(&ex, &facts(200, 0)).to_json();
        assert!(
            !json.contains("tokenized") && !json.contains("restored"),
            "{json}"
        );
        ex.masked.insert("email".into(), 2);
        ex.tokenized.insert("email".into(), 2);
        let v: serde_json::Value =
            serde_json::from_str(&record(&ex, &facts(200, 0)).to_json()).unwrap();
        assert_eq!(v["decision"], "masked");
        assert_eq!(v["tokenized"], serde_json::json!({"email": 2}));
        // Nothing restored yet (or the model never echoed a token): `{}`.
        assert_eq!(v["restored"], serde_json::json!({}));
        ex.restored.insert("email".into(), 1);
        let v: serde_json::Value =
            serde_json::from_str(&record(&ex, &facts(200, 0)).to_json()).unwrap();
        assert_eq!(v["restored"], serde_json::json!({"email": 1}));
    }

    #[test]
    fn approvals_carry_their_id_and_reviewer() {
        let mut ex = exchange();
        assert!(!record(&ex, &facts(200, 0)).to_json().contains("approval"));
        ex.approval = Some(AuditApproval {
            id: Some("apr_1".into()),
            reviewer: Some("alice".into()),
        });
        ex.approved = true;
        let v: serde_json::Value =
            serde_json::from_str(&record(&ex, &facts(200, 0)).to_json()).unwrap();
        assert_eq!(v["decision"], "approval_approved");
        assert_eq!(v["reason"], "approval_approved");
        assert_eq!(
            v["approval"],
            serde_json::json!({"id": "apr_1", "reviewer": "alice"})
        );
        // An upstream failure after the approval is still an upstream failure.
        let r = record(&ex, &facts(503, flags::UPSTREAM_CONNECTION_FAILURE));
        assert_eq!(r.decision, Decision::UpstreamError);
        ex.approved = false;
        ex.refuse(Decision::ApprovalDenied, "approval_denied");
        assert_eq!(
            record(&ex, &facts(403, 0)).decision,
            Decision::ApprovalDenied
        );
    }

    #[test]
    fn decision_names_match_the_record() {
        use Decision::*;
        for d in [
            Allowed,
            Masked,
            Denied,
            Unauthenticated,
            Forbidden,
            TlsRequired,
            Oversize,
            ApprovalApproved,
            ApprovalDenied,
            ApprovalExpired,
            ApprovalFailed,
            UpstreamError,
            ClientAbort,
            Error,
        ] {
            assert_eq!(serde_json::to_value(d).unwrap(), d.as_str());
        }
    }

    #[test]
    fn credentials_in_the_query_are_redacted() {
        assert_eq!(
            redact_query("/cb?code=abc&state=x&access_token=eyJ&ok=1&my_api_key=k"),
            "/cb?code=[REDACTED]&state=x&access_token=[REDACTED]&ok=1&my_api_key=[REDACTED]"
        );
        assert_eq!(redact_query("/plain"), "/plain");
    }
}
