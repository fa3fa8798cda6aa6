//! The approver protocol's JSON, shared by the filter (which sends a
//! [`NewApproval`] and reads an [`ApprovalReply`]) and the approver (which
//! reads the one and writes the other). One definition, so the two sides
//! cannot drift apart; `docs/approver.md` describes the protocol.
//!
//! serde only, no I/O: it compiles for `wasm32-wasip1`.

use serde::{Deserialize, Serialize};

/// The header that carries the filter's key.
pub const FILTER_KEY_HEADER: &str = "x-approver-key";

/// The longest preview the approver accepts, in bytes (the filter masks and
/// cuts the body to at most this).
pub const MAX_PREVIEW_BYTES: usize = 4096;

/// The longest `wait` of a long-poll (`GET /v1/approvals/{id}?wait=N`), in seconds.
pub const MAX_WAIT_SECS: u64 = 30;

/// The path that uses an approved one-time approval (`POST`), for a filter
/// that confirms ([`NewApproval::confirm`]).
pub fn use_path(id: &str) -> String {
    format!("/v1/approvals/{id}/use")
}

/// The long-poll's path: `wait` seconds at most; `confirm` leaves an
/// approved one-time approval unused (see [`NewApproval::confirm`]).
pub fn poll_path(id: &str, wait_secs: u64, confirm: bool) -> String {
    if confirm {
        format!("/v1/approvals/{id}?wait={wait_secs}&confirm=true")
    } else {
        format!("/v1/approvals/{id}?wait={wait_secs}")
    }
}

/// The requester, from the filter's verified identity.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Identity {
    pub sub: String,
    #[serde(default)]
    pub iss: String,
    #[serde(default)]
    pub groups: Vec<String>,
}

/// One request header as it will reach the upstream (sensitive values
/// already masked by the filter).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Header {
    pub name: String,
    pub value: String,
}

/// `POST /v1/approvals`: the held request, as the filter describes it.
/// The approver refuses unknown fields, so a typo on either side fails loudly.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct NewApproval {
    pub request_id: String,
    /// SHA-256 (hex) of the request: the same request asked again matches.
    pub fingerprint: String,
    pub identity: Identity,
    /// The `require_approval` rules that fired, joined with `,`.
    pub rule: String,
    pub method: String,
    pub authority: String,
    /// `:path`, with credential-like query values redacted.
    pub path: String,
    /// The masked body preview.
    #[serde(default)]
    pub preview: String,
    /// The headers that reach the upstream, sensitive values masked
    /// (optional: omitted when the filter sends none).
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub headers: Vec<Header>,
    /// The filter confirms the use of a one-time approval itself: a reply
    /// never uses one, it says [`ApprovalReply::confirm`] and the request
    /// passes only on the 200 of `POST /v1/approvals/{id}/use`. So a
    /// decision that reaches a request nobody waits for any more stays
    /// usable by the agent's retry. `false` (omitted): the reply uses it.
    #[serde(default, skip_serializing_if = "is_false")]
    pub confirm: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// An approval's status.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
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

/// The `200` reply of `POST /v1/approvals` and `GET /v1/approvals/{id}`.
/// Unknown fields are ignored (the approver may add some); absent optional
/// ones take their defaults.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ApprovalReply {
    pub id: String,
    pub status: Status,
    /// Who decided (several reviewers joined with `, ` when a policy needs
    /// more than one approval).
    #[serde(default)]
    pub reviewer: Option<String>,
    #[serde(default)]
    pub reason: Option<String>,
    /// Unix seconds: when a pending approval expires, or when an approved
    /// one stops being usable.
    #[serde(default)]
    pub expires_at: i64,
    /// How long to wait before asking again (pending only; 0 otherwise).
    #[serde(default)]
    pub retry_after_secs: u64,
    /// `approved`, and not used by this reply (the caller asked to
    /// [`NewApproval::confirm`]): the request may pass only once
    /// `POST /v1/approvals/{id}/use` answered 200.
    #[serde(default, skip_serializing_if = "is_false")]
    pub confirm: bool,
}

/// Every error reply: `{"error": code, "reason": text}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ErrorReply {
    pub error: String,
    pub reason: String,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn new_approval() -> NewApproval {
        NewApproval {
            request_id: "req-1".into(),
            fingerprint: "f".into(),
            identity: Identity {
                sub: "agent-7".into(),
                iss: "https://idp".into(),
                groups: vec!["agents".into()],
            },
            rule: "export".into(),
            method: "POST".into(),
            authority: "api.internal".into(),
            path: "/x".into(),
            preview: "{}".into(),
            headers: Vec::new(),
            confirm: false,
        }
    }

    #[test]
    fn the_create_body_has_exactly_the_protocol_fields() {
        let v = serde_json::to_value(new_approval()).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(
            keys,
            [
                "authority",
                "fingerprint",
                "identity",
                "method",
                "path",
                "preview",
                "request_id",
                "rule"
            ]
        );
        let back: NewApproval = serde_json::from_value(v).unwrap();
        assert_eq!(back, new_approval());
    }

    #[test]
    fn headers_are_sent_only_when_there_are_some() {
        let mut a = new_approval();
        a.headers.push(Header {
            name: "authorization".into(),
            value: "[REDACTED]".into(),
        });
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(
            v["headers"],
            json!([{"name": "authorization", "value": "[REDACTED]"}])
        );
        assert_eq!(serde_json::from_value::<NewApproval>(v).unwrap(), a);
    }

    #[test]
    fn confirm_is_sent_and_answered_only_when_true() {
        let mut a = new_approval();
        a.confirm = true;
        let v = serde_json::to_value(&a).unwrap();
        assert_eq!(v["confirm"], json!(true));
        assert_eq!(serde_json::from_value::<NewApproval>(v).unwrap(), a);
        let r: ApprovalReply =
            serde_json::from_value(json!({"id": "apr_1", "status": "approved", "confirm": true}))
                .unwrap();
        assert!(r.confirm);
        let mut r2 = r.clone();
        r2.confirm = false;
        let v = serde_json::to_value(&r2).unwrap();
        assert!(v.get("confirm").is_none(), "{v}");
        assert_eq!(use_path("apr_1"), "/v1/approvals/apr_1/use");
        assert_eq!(
            poll_path("apr_1", 25, true),
            "/v1/approvals/apr_1?wait=25&confirm=true"
        );
        assert_eq!(poll_path("apr_1", 3, false), "/v1/approvals/apr_1?wait=3");
    }

    #[test]
    fn the_approver_refuses_unknown_fields_in_what_the_filter_sends() {
        let mut v = serde_json::to_value(new_approval()).unwrap();
        v["extra"] = json!(1);
        assert!(serde_json::from_value::<NewApproval>(v).is_err());
        let mut v = serde_json::to_value(new_approval()).unwrap();
        v["identity"]["email"] = json!("x");
        assert!(serde_json::from_value::<NewApproval>(v).is_err());
    }

    #[test]
    fn the_filter_reads_replies_with_extra_or_missing_optional_fields() {
        let r: ApprovalReply =
            serde_json::from_value(json!({"id": "apr_1", "status": "pending", "new": 1})).unwrap();
        assert_eq!(r.status, Status::Pending);
        assert_eq!((r.reviewer, r.expires_at, r.retry_after_secs), (None, 0, 0));
        for s in [
            Status::Pending,
            Status::Approved,
            Status::Denied,
            Status::Expired,
        ] {
            assert_eq!(Status::parse(s.as_str()), Some(s));
            assert_eq!(serde_json::to_value(s).unwrap(), json!(s.as_str()));
        }
        assert!(
            serde_json::from_value::<ApprovalReply>(json!({"id": "a", "status": "maybe"})).is_err()
        );
    }
}
