//! The protocol's JSON types.

use serde::{Deserialize, Serialize};

use crate::error::ApiError;

/// The longest preview accepted, in bytes (the filter masks and cuts it).
pub const MAX_PREVIEW_BYTES: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub sub: String,
    #[serde(default)]
    pub iss: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// `POST /v1/approvals`, from the filter.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApproval {
    pub request_id: String,
    pub fingerprint: String,
    pub identity: Identity,
    pub rule: String,
    pub method: String,
    pub authority: String,
    pub path: String,
    #[serde(default)]
    pub preview: String,
}

impl NewApproval {
    pub fn validate(&self) -> Result<(), ApiError> {
        let required = [
            ("fingerprint", &self.fingerprint),
            ("identity.sub", &self.identity.sub),
            ("rule", &self.rule),
            ("method", &self.method),
            ("authority", &self.authority),
            ("path", &self.path),
        ];
        for (name, value) in required {
            if value.trim().is_empty() {
                return Err(ApiError::InvalidRequest(format!(
                    "{name} must not be empty"
                )));
            }
        }
        if self.preview.len() > MAX_PREVIEW_BYTES {
            return Err(ApiError::InvalidRequest(format!(
                "preview is {} bytes, more than {MAX_PREVIEW_BYTES}",
                self.preview.len()
            )));
        }
        Ok(())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Status {
    Pending,
    Approved,
    Denied,
    Expired,
}

impl Status {
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Pending => "pending",
            Status::Approved => "approved",
            Status::Denied => "denied",
            Status::Expired => "expired",
        }
    }

    pub fn parse(s: &str) -> Option<Status> {
        match s {
            "pending" => Some(Status::Pending),
            "approved" => Some(Status::Approved),
            "denied" => Some(Status::Denied),
            "expired" => Some(Status::Expired),
            _ => None,
        }
    }
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
}

/// What the filter gets back from `POST /v1/approvals` and `GET /v1/approvals/{id}`.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq, Eq)]
pub struct FilterReply {
    pub id: String,
    pub status: Status,
    pub reviewer: Option<String>,
    pub reason: Option<String>,
    pub expires_at: i64,
    pub retry_after_secs: u64,
}

/// The suggested `Retry-After` for a pending approval: at most this long.
pub const RETRY_AFTER_CAP_SECS: i64 = 30;

impl FilterReply {
    pub fn from(a: &Approval, now: i64) -> FilterReply {
        let retry_after_secs = match a.status {
            Status::Pending => (a.expires_at - now).clamp(1, RETRY_AFTER_CAP_SECS) as u64,
            _ => 0,
        };
        FilterReply {
            id: a.id.clone(),
            status: a.status,
            reviewer: a.reviewer.clone(),
            reason: a.reason.clone(),
            expires_at: a.expires_at,
            retry_after_secs,
        }
    }
}

/// One entry of the reviewer list.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewItem {
    pub id: String,
    pub request_id: String,
    pub status: Status,
    pub identity: Identity,
    pub rule: String,
    pub method: String,
    pub authority: String,
    pub path: String,
    pub preview: String,
    pub created_at: i64,
    pub age_secs: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    pub reviewer: Option<String>,
    pub reason: Option<String>,
    pub grant: Option<GrantKind>,
    pub consumed: bool,
}

impl ReviewItem {
    pub fn from(a: Approval, now: i64) -> ReviewItem {
        ReviewItem {
            age_secs: (now - a.created_at).max(0),
            consumed: a.consumed_at.is_some(),
            id: a.id,
            request_id: a.request_id,
            status: a.status,
            identity: a.identity,
            rule: a.rule,
            method: a.method,
            authority: a.authority,
            path: a.path,
            preview: a.preview,
            created_at: a.created_at,
            expires_at: a.expires_at,
            decided_at: a.decided_at,
            reviewer: a.reviewer,
            reason: a.reason,
            grant: a.grant,
        }
    }
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
