//! Who is calling: the filter (a shared key) or a reviewer (a bearer token).
//!
//! Reviewer authentication goes through [`ReviewerAuth`], a list of methods
//! tried in order. Today the only method is a static token per reviewer
//! (`--reviewer NAME=TOKEN`). A JWT method (tokens from the same OIDC issuer the
//! filter trusts, the reviewer name taken from `sub`) is one more variant of
//! [`ReviewerMethod`]; handlers only ever see the resulting [`Reviewer`].

use axum::http::HeaderMap;
use subtle::ConstantTimeEq;

use crate::error::ApiError;

pub const FILTER_KEY_HEADER: &str = "x-approver-key";

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

/// A reviewer who proved who they are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reviewer {
    /// Compared with the requester's `identity.sub` to refuse self-approval.
    pub name: String,
}

/// One way a reviewer can authenticate.
#[derive(Clone)]
pub enum ReviewerMethod {
    /// A static bearer token mapped to a reviewer name.
    Token { name: String, token: Vec<u8> },
    // Next: `Jwt { issuer, audiences, jwks, name_claim }`, verified like the
    // filter's identity providers, the reviewer name taken from `name_claim`
    // (default `sub`) so self-approval compares like with like.
}

#[derive(Clone)]
pub struct ReviewerAuth {
    methods: Vec<ReviewerMethod>,
}

impl ReviewerAuth {
    pub fn new(methods: Vec<ReviewerMethod>) -> ReviewerAuth {
        ReviewerAuth { methods }
    }

    pub fn authenticate(&self, headers: &HeaderMap) -> Result<Reviewer, ApiError> {
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
        let mut found: Option<&str> = None;
        // Compare with every token, in constant time each, whatever matches.
        for method in &self.methods {
            match method {
                ReviewerMethod::Token { name, token: t } => {
                    if bool::from(t.as_slice().ct_eq(token)) && !t.is_empty() {
                        found = Some(name);
                    }
                }
            }
        }
        match found {
            Some(name) => Ok(Reviewer {
                name: name.to_string(),
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
