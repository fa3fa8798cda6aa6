//! Who is calling: the filter (a shared key) or a reviewer.
//!
//! A reviewer proves who they are with a bearer token (`--reviewer
//! NAME=TOKEN`, for headless use) or with the session cookie of an OIDC
//! sign-in ([`crate::oidc`]). A cookie is sent by the browser on its own, so
//! a state-changing call made with it must also carry the session's CSRF
//! token; a bearer token is never ambient and needs none. Handlers only ever
//! see the resulting [`Reviewer`].

use std::sync::Arc;

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::error::ApiError;
pub use crate::model::Reviewer;
use crate::oidc::Oidc;

pub use transit_guard_wire::FILTER_KEY_HEADER;

/// Checks `x-approver-key` against the configured filter keys (several keys
/// allow rotation without downtime).
#[derive(Clone)]
pub struct FilterAuth {
    keys: Vec<Vec<u8>>,
}

impl FilterAuth {
    pub fn new(keys: &[String]) -> FilterAuth {
        FilterAuth {
            keys: keys.iter().map(|k| k.as_bytes().to_vec()).collect(),
        }
    }

    pub fn check(&self, headers: &HeaderMap) -> Result<(), ApiError> {
        let Some(given) = headers.get(FILTER_KEY_HEADER) else {
            return Err(ApiError::Unauthorized("missing x-approver-key"));
        };
        if any_equal(&self.keys, given.as_bytes()) {
            Ok(())
        } else {
            Err(ApiError::Unauthorized("wrong x-approver-key"))
        }
    }
}

/// One way a reviewer can authenticate.
#[derive(Clone)]
pub enum ReviewerMethod {
    /// A static bearer token mapped to a reviewer name and groups.
    Token {
        name: String,
        token: Vec<u8>,
        groups: Vec<String>,
    },
}

#[derive(Clone)]
pub struct ReviewerAuth {
    methods: Vec<ReviewerMethod>,
    oidc: Option<Arc<Oidc>>,
}

impl ReviewerAuth {
    pub fn new(methods: Vec<ReviewerMethod>, oidc: Option<Arc<Oidc>>) -> ReviewerAuth {
        ReviewerAuth { methods, oidc }
    }

    /// The reviewer behind a bearer token or a session cookie;
    /// `state_changing` calls made with the cookie need the CSRF token too.
    pub fn authenticate(
        &self,
        headers: &HeaderMap,
        state_changing: bool,
        now: i64,
    ) -> Result<Reviewer, ApiError> {
        if headers.contains_key(axum::http::header::AUTHORIZATION) || self.oidc.is_none() {
            return self.bearer(headers);
        }
        self.authenticate_session(headers, state_changing, now)
    }

    /// The reviewer of a valid session cookie.
    fn authenticate_session(
        &self,
        headers: &HeaderMap,
        state_changing: bool,
        now: i64,
    ) -> Result<Reviewer, ApiError> {
        let session = self
            .oidc
            .as_ref()
            .ok_or(ApiError::Unauthorized(
                "missing Authorization: Bearer token or sign-in session",
            ))?
            .signed_in(headers, state_changing, now)?;
        Ok(Reviewer {
            name: session.name,
            groups: session.groups,
        })
    }

    fn bearer(&self, headers: &HeaderMap) -> Result<Reviewer, ApiError> {
        let Some(value) = headers.get(axum::http::header::AUTHORIZATION) else {
            return Err(ApiError::Unauthorized(
                "missing Authorization: Bearer token",
            ));
        };
        let value = value.as_bytes();
        let token = match value.get(..7) {
            Some(scheme) if scheme.eq_ignore_ascii_case(b"bearer ") => {
                value.get(7..).unwrap_or_default()
            }
            _ => {
                return Err(ApiError::Unauthorized(
                    "Authorization is not a Bearer token",
                ))
            }
        };
        let token = token.trim_ascii();
        let mut found: Option<(&str, &[String])> = None;
        // Compare with every token, in constant time each, whatever matches.
        for method in &self.methods {
            match method {
                ReviewerMethod::Token {
                    name,
                    token: t,
                    groups,
                } => {
                    if bool::from(t.as_slice().ct_eq(token)) && !t.is_empty() {
                        found = Some((name, groups));
                    }
                }
            }
        }
        match found {
            Some((name, groups)) => Ok(Reviewer {
                name: name.to_string(),
                groups: groups.to_vec(),
            }),
            None => Err(ApiError::Unauthorized("unknown reviewer token")),
        }
    }
}

fn any_equal(keys: &[Vec<u8>], given: &[u8]) -> bool {
    let mut ok = false;
    for k in keys {
        ok |= !k.is_empty() && bool::from(k.as_slice().ct_eq(given));
    }
    ok
}
