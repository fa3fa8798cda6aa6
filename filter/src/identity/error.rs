//! Why a request was not authenticated: stable reason codes, and the local
//! reply (401 with `WWW-Authenticate`, or 403) the agent gets.

use crate::local_reply::LocalReply;
use std::fmt;

/// A refusal. The code ([`AuthError::code`]) is stable: audit, metrics and the
/// reply body's `error` field use it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AuthError {
    pub kind: AuthErrorKind,
    /// A short sentence for the agent's logs. Never contains the token or any
    /// claim value beyond what the agent itself sent.
    pub detail: String,
    /// The provider the token was matched to, when one was.
    pub provider_index: Option<usize>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AuthErrorKind {
    /// No token in any configured source.
    TokenMissing,
    /// Not a well-formed JWS compact token (parts, base64url, JSON, claim types).
    TokenMalformed,
    /// Over the provider's `max_token_bytes` (checked before decoding).
    TokenTooLarge,
    /// `exp` is past (beyond the clock skew).
    TokenExpired,
    /// `nbf` is in the future (beyond the clock skew).
    TokenNotYetValid,
    /// `exp` absent while the provider requires it.
    ExpMissing,
    /// The signature does not verify with the selected key.
    BadSignature,
    /// No configured key has the token's `kid` (or fits its `alg`).
    UnknownKid,
    /// `alg` is `none`, unknown, or not in the provider's `algorithms`.
    AlgNotAllowed,
    /// The `typ` header is not the one the provider requires.
    TypMismatch,
    /// A `crit` header parameter the filter does not understand.
    CritUnsupported,
    /// `iss` matches no provider that accepts the token from where it was found.
    IssuerMismatch,
    /// Authentic token, but for another audience (403).
    AudienceMismatch,
    /// The provider's keys have not been fetched (yet).
    JwksUnavailable,
}

impl AuthErrorKind {
    /// Stable machine-readable code.
    pub fn code(self) -> &'static str {
        match self {
            AuthErrorKind::TokenMissing => "token_missing",
            AuthErrorKind::TokenMalformed => "token_malformed",
            AuthErrorKind::TokenTooLarge => "token_too_large",
            AuthErrorKind::TokenExpired => "token_expired",
            AuthErrorKind::TokenNotYetValid => "token_not_yet_valid",
            AuthErrorKind::ExpMissing => "exp_missing",
            AuthErrorKind::BadSignature => "bad_signature",
            AuthErrorKind::UnknownKid => "unknown_kid",
            AuthErrorKind::AlgNotAllowed => "alg_not_allowed",
            AuthErrorKind::TypMismatch => "typ_mismatch",
            AuthErrorKind::CritUnsupported => "crit_unsupported",
            AuthErrorKind::IssuerMismatch => "issuer_mismatch",
            AuthErrorKind::AudienceMismatch => "audience_mismatch",
            AuthErrorKind::JwksUnavailable => "jwks_unavailable",
        }
    }

    /// 403 for an authentic token meant for someone else; 401 otherwise.
    pub fn status(self) -> u16 {
        match self {
            AuthErrorKind::AudienceMismatch => 403,
            _ => 401,
        }
    }
}

impl AuthError {
    pub fn new(kind: AuthErrorKind, detail: impl Into<String>) -> Self {
        AuthError {
            kind,
            detail: detail.into(),
            provider_index: None,
        }
    }

    pub(crate) fn for_provider(mut self, index: usize) -> Self {
        self.provider_index = Some(index);
        self
    }

    pub fn code(&self) -> &'static str {
        self.kind.code()
    }

    pub fn status(&self) -> u16 {
        self.kind.status()
    }

    /// The local reply, with `WWW-Authenticate` (RFC 6750 section 3):
    /// `Bearer realm="…"` alone when no token was sent (401);
    /// `error="invalid_token"` and a description for every other 401; for the
    /// 403 (an authentic token for another audience), `error="insufficient_scope"`,
    /// RFC 6750's code for "authenticated, but not allowed here".
    pub fn to_reply(&self, realm: &str) -> LocalReply {
        let reply = LocalReply::new(self.status(), self.code(), self.detail.clone());
        let realm = quoted(realm);
        let value = match self.kind {
            AuthErrorKind::TokenMissing => format!("Bearer realm=\"{realm}\""),
            kind => format!(
                "Bearer realm=\"{realm}\", error=\"{}\", error_description=\"{}\"",
                if kind.status() == 403 {
                    "insufficient_scope"
                } else {
                    "invalid_token"
                },
                quoted(&self.detail)
            ),
        };
        reply.with_header("www-authenticate", value)
    }
}

impl fmt::Display for AuthError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code(), self.detail)
    }
}

impl std::error::Error for AuthError {}

/// Makes `s` safe inside an RFC 7230 quoted-string header value: printable
/// ASCII only, `"` and `\` dropped (RFC 6750 forbids them in error_description).
fn quoted(s: &str) -> String {
    s.chars()
        .filter(|c| (' '..='~').contains(c) && *c != '"' && *c != '\\')
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn missing_token_gets_a_bare_challenge() {
        let r = AuthError::new(AuthErrorKind::TokenMissing, "no bearer token").to_reply("tg");
        assert_eq!(r.status, 401);
        assert_eq!(r.error, "token_missing");
        assert_eq!(
            r.headers,
            vec![("www-authenticate", "Bearer realm=\"tg\"".to_string())]
        );
    }

    #[test]
    fn invalid_token_challenge_is_quoted_safely() {
        let r = AuthError::new(AuthErrorKind::BadSignature, "bad \"sig\"\r\n").to_reply("a\"b");
        assert_eq!(r.status, 401);
        assert_eq!(
            r.headers[0].1,
            "Bearer realm=\"ab\", error=\"invalid_token\", error_description=\"bad sig\""
        );
    }

    #[test]
    fn wrong_audience_is_403() {
        let r = AuthError::new(AuthErrorKind::AudienceMismatch, "x").to_reply("tg");
        assert_eq!(r.status, 403);
        assert_eq!(r.error, "audience_mismatch");
    }
}
