//! The protocol's JSON types.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The protocol's shared types (`transit-guard-wire`): the filter sends a
/// [`NewApproval`] and reads an [`ApprovalReply`].
pub use transit_guard_wire::{
    ApprovalReply, Header, Identity, NewApproval, Status, MAX_PREVIEW_BYTES,
};

/// The most headers a create body may list.
pub const MAX_HEADERS: usize = 100;

/// Checks what the filter sent beyond its JSON shape.
pub fn validate(req: &NewApproval) -> Result<(), ApiError> {
    let required = [
        ("fingerprint", &req.fingerprint),
        ("identity.sub", &req.identity.sub),
        ("rule", &req.rule),
        ("method", &req.method),
        ("authority", &req.authority),
        ("path", &req.path),
    ];
    for (name, value) in required {
        if value.trim().is_empty() {
            return Err(ApiError::InvalidRequest(format!(
                "{name} must not be empty"
            )));
        }
    }
    if req.preview.len() > MAX_PREVIEW_BYTES {
        return Err(ApiError::InvalidRequest(format!(
            "preview is {} bytes, more than {MAX_PREVIEW_BYTES}",
            req.preview.len()
        )));
    }
    let header_bytes: usize = req
        .headers
        .iter()
        .map(|h| h.name.len() + h.value.len())
        .sum();
    if req.headers.len() > MAX_HEADERS || header_bytes > 16 * 1024 {
        return Err(ApiError::InvalidRequest(format!(
            "headers: at most {MAX_HEADERS} and 16 KiB"
        )));
    }
    Ok(())
}

/// How an approval was granted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum GrantKind {
    /// One time, for this fingerprint.
    Once,
    /// A time-bound grant for the identity and rule (created by this approval).
    Ttl,
    /// Approved on creation by an existing time-bound grant.
    Grant,
}

impl GrantKind {
    pub fn as_str(self) -> &'static str {
        match self {
            GrantKind::Once => "once",
            GrantKind::Ttl => "ttl",
            GrantKind::Grant => "grant",
        }
    }

    pub fn parse(s: &str) -> Option<GrantKind> {
        match s {
            "once" => Some(GrantKind::Once),
            "ttl" => Some(GrantKind::Ttl),
            "grant" => Some(GrantKind::Grant),
            _ => None,
        }
    }
}

/// One approval as stored.
#[derive(Debug, Clone)]
pub struct Approval {
    pub id: String,
    pub request_id: String,
    pub fingerprint: String,
    pub identity: Identity,
    pub rule: String,
    pub method: String,
    pub authority: String,
    pub path: String,
    pub preview: String,
    pub status: Status,
    pub created_at: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    pub reviewer: Option<String>,
    pub reason: Option<String>,
    pub grant: Option<GrantKind>,
    pub grant_id: Option<String>,
    pub consumed_at: Option<i64>,
    /// The headers that reach the upstream, as the filter sent them.
    pub headers: Vec<Header>,
    /// Every reviewer's decision so far, in order.
    pub votes: Vec<Vote>,
}

/// One reviewer's decision on an approval (several when a policy needs more
/// than one approval).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Vote {
    pub reviewer: String,
    pub approve: bool,
    /// The time-bound grant asked for, in seconds; `None`: once.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub grant_ttl_secs: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub reason: Option<String>,
    pub at: i64,
}

/// The suggested `Retry-After` for a pending approval: at most this long.
pub const RETRY_AFTER_CAP_SECS: i64 = 30;

/// What the filter gets back from `POST /v1/approvals` and `GET /v1/approvals/{id}`.
pub fn filter_reply(a: &Approval, now: i64) -> ApprovalReply {
    let retry_after_secs = match a.status {
        Status::Pending => (a.expires_at - now).clamp(1, RETRY_AFTER_CAP_SECS) as u64,
        _ => 0,
    };
    ApprovalReply {
        id: a.id.clone(),
        status: a.status,
        reviewer: a.reviewer.clone(),
        reason: a.reason.clone(),
        expires_at: a.expires_at,
        retry_after_secs,
        confirm: false,
    }
}

/// A reviewer who proved who they are (`auth`: a bearer token or a
/// sign-in session).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewer {
    /// Compared with the requester's `identity.sub` to refuse self-approval.
    pub name: String,
    /// For the rules' policies: from the policies file (token reviewers) or
    /// the ID token (OIDC reviewers).
    pub groups: Vec<String>,
}

/// `grant` in an approve body: `"once"` or `{"ttl_secs": N}`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum GrantSpec {
    Word(GrantWord),
    Ttl { ttl_secs: u64 },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
pub enum GrantWord {
    #[serde(rename = "once")]
    Once,
}

/// The longest time-bound grant a reviewer can give: 30 days.
pub const MAX_GRANT_TTL_SECS: u64 = 30 * 24 * 3600;

/// The longest reason kept, in bytes.
pub const MAX_REASON_BYTES: usize = 1024;

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ApproveBody {
    #[serde(default)]
    pub reason: Option<String>,
    #[serde(default)]
    pub grant: Option<GrantSpec>,
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DenyBody {
    #[serde(default)]
    pub reason: Option<String>,
}

/// A reviewer's decision, validated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    ApproveOnce,
    ApproveFor { ttl_secs: i64 },
    Deny,
}

/// Trims a reason; empty becomes none; too long is refused.
pub fn clean_reason(reason: Option<String>) -> Result<Option<String>, ApiError> {
    let Some(r) = reason else { return Ok(None) };
    let r = r.trim();
    if r.len() > MAX_REASON_BYTES {
        return Err(ApiError::InvalidRequest(format!(
            "reason is longer than {MAX_REASON_BYTES} bytes"
        )));
    }
    Ok((!r.is_empty()).then(|| r.to_string()))
}

impl ApproveBody {
    pub fn decision(&self) -> Result<Decision, ApiError> {
        match self.grant {
            None | Some(GrantSpec::Word(GrantWord::Once)) => Ok(Decision::ApproveOnce),
            Some(GrantSpec::Ttl { ttl_secs }) if (1..=MAX_GRANT_TTL_SECS).contains(&ttl_secs) => {
                Ok(Decision::ApproveFor {
                    ttl_secs: ttl_secs as i64,
                })
            }
            Some(GrantSpec::Ttl { .. }) => Err(ApiError::InvalidRequest(format!(
                "grant.ttl_secs must be between 1 and {MAX_GRANT_TTL_SECS}"
            ))),
        }
    }
}
