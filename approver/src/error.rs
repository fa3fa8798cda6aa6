//! Every error a client can see: a status and `{"error": code, "reason": text}`.

use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::json;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// 400: the body or the query is malformed or out of bounds.
    #[error("{0}")]
    InvalidRequest(String),
    /// 401: no or wrong credentials for this endpoint.
    #[error("{0}")]
    Unauthorized(&'static str),
    /// 403: a reviewer tried to decide a request made by themselves.
    #[error("reviewer {0:?} is the requester of this approval and cannot decide it")]
    SelfApproval(String),
    /// 403: the rule's policy does not let this reviewer decide, or not this way.
    #[error("{0}")]
    NotAllowed(String),
    /// 403: a state-changing call from the page without its CSRF token.
    #[error("missing or wrong CSRF token")]
    Csrf,
    /// 409: a reviewer who already voted on this approval votes again.
    #[error("reviewer {0:?} already decided on this approval; another reviewer must")]
    AlreadyVoted(String),
    /// 404
    #[error("no approval with id {0:?}")]
    NotFound(String),
    /// 409: deciding an approval that is no longer pending.
    #[error("approval {id} is {status}, not pending")]
    NotPending { id: String, status: &'static str },
    /// 409: using an approval that is not approved (pending, denied, expired).
    #[error("approval {id} is {status}, not approved")]
    NotApproved { id: String, status: &'static str },
    /// 410: an approved one-time approval that an earlier request already used.
    #[error("approval {0} was already used by an earlier request")]
    Consumed(String),
    /// 413: the request body is over the limit.
    #[error("the request body is larger than {0} bytes")]
    TooLarge(usize),
    /// 500: storage failed; details are logged, not sent.
    #[error("internal error")]
    Internal(#[from] anyhow::Error),
}

impl ApiError {
    pub fn status(&self) -> StatusCode {
        match self {
            ApiError::InvalidRequest(_) => StatusCode::BAD_REQUEST,
            ApiError::Unauthorized(_) => StatusCode::UNAUTHORIZED,
            ApiError::SelfApproval(_) => StatusCode::FORBIDDEN,
            ApiError::NotAllowed(_) | ApiError::Csrf => StatusCode::FORBIDDEN,
            ApiError::AlreadyVoted(_) => StatusCode::CONFLICT,
            ApiError::NotFound(_) => StatusCode::NOT_FOUND,
            ApiError::NotPending { .. } | ApiError::NotApproved { .. } => StatusCode::CONFLICT,
            ApiError::Consumed(_) => StatusCode::GONE,
            ApiError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            ApiError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    pub fn code(&self) -> &'static str {
        match self {
            ApiError::InvalidRequest(_) => "invalid_request",
            ApiError::Unauthorized(_) => "unauthorized",
            ApiError::SelfApproval(_) => "self_approval",
            ApiError::NotAllowed(_) => "not_allowed",
            ApiError::Csrf => "csrf",
            ApiError::AlreadyVoted(_) => "already_voted",
            ApiError::NotFound(_) => "not_found",
            ApiError::NotPending { .. } => "not_pending",
            ApiError::NotApproved { .. } => "not_approved",
            ApiError::Consumed(_) => "consumed",
            ApiError::TooLarge(_) => "body_too_large",
            ApiError::Internal(_) => "internal",
        }
    }
}

impl From<rusqlite::Error> for ApiError {
    fn from(e: rusqlite::Error) -> Self {
        ApiError::Internal(anyhow::Error::new(e).context("sqlite"))
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        if let ApiError::Internal(e) = &self {
            tracing::error!("internal error: {e:#}");
        }
        let mut resp = (
            self.status(),
            Json(json!({ "error": self.code(), "reason": self.to_string() })),
        )
            .into_response();
        if let ApiError::Unauthorized(_) = self {
            resp.headers_mut().insert(
                axum::http::header::WWW_AUTHENTICATE,
                axum::http::HeaderValue::from_static("Bearer"),
            );
        }
        resp
    }
}
