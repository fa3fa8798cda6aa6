//! Signed cookies: the reviewer's session after an OIDC sign-in, and the
//! short-lived state of a sign-in in progress.
//!
//! A cookie value is `base64url(JSON) "." base64url(HMAC-SHA256(key, purpose "." base64url(JSON)))`:
//! stateless, so every replica that shares `--session-secret` accepts it, and
//! a cookie made for one purpose (login state) is never accepted as another
//! (session). The session carries its own CSRF token: the page reads it from
//! `GET /auth/me` and sends it in `x-csrf-token` on every state-changing call.

use axum::http::HeaderMap;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use subtle::ConstantTimeEq;

pub const SESSION_COOKIE: &str = "tg_session";
pub const LOGIN_COOKIE: &str = "tg_login";
pub const CSRF_HEADER: &str = "x-csrf-token";

/// A signed-in reviewer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Session {
    pub name: String,
    pub groups: Vec<String>,
    /// Unix seconds.
    pub exp: i64,
    pub csrf: String,
}

/// A sign-in in progress (between `/auth/login` and `/auth/callback`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LoginState {
    pub state: String,
    pub nonce: String,
    pub verifier: String,
    pub exp: i64,
}

#[derive(Clone)]
pub struct Signer {
    key: Vec<u8>,
}

impl Signer {
    pub fn new(key: &[u8]) -> Signer {
        Signer { key: key.to_vec() }
    }

    fn mac(&self, purpose: &str, payload: &str) -> [u8; 32] {
        hmac_sha256::HMAC::mac(format!("{purpose}.{payload}").as_bytes(), &self.key)
    }

    pub fn seal<T: Serialize>(&self, purpose: &str, value: &T) -> Option<String> {
        let json = serde_json::to_vec(value).ok()?;
        let payload = URL_SAFE_NO_PAD.encode(json);
        let mac = URL_SAFE_NO_PAD.encode(self.mac(purpose, &payload));
        Some(format!("{payload}.{mac}"))
    }

    /// The value if the signature is this key's for this purpose and `exp`
    /// (read by `exp_of`) is after `now`.
    pub fn open<T: DeserializeOwned>(
        &self,
        purpose: &str,
        sealed: &str,
        now: i64,
        exp_of: impl Fn(&T) -> i64,
    ) -> Option<T> {
        let (payload, mac) = sealed.split_once('.')?;
        let mac = URL_SAFE_NO_PAD.decode(mac).ok()?;
        if !bool::from(self.mac(purpose, payload).as_slice().ct_eq(&mac)) {
            return None;
        }
        let value: T = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(payload).ok()?).ok()?;
        (exp_of(&value) > now).then_some(value)
    }
}

/// A cookie's value from the request's `Cookie` headers.
pub fn cookie<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get_all(axum::http::header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|kv| kv.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v)
}

/// `Set-Cookie` for a cookie only this site's pages send back, never
/// readable by scripts, only over HTTPS.
pub fn set_cookie(name: &str, value: &str, path: &str, same_site: &str, max_age: i64) -> String {
    format!(
        "{name}={value}; Path={path}; Max-Age={max_age}; HttpOnly; Secure; SameSite={same_site}"
    )
}

/// 32 random bytes, base64url.
pub fn random_token() -> Option<String> {
    let mut b = [0u8; 32];
    getrandom::getrandom(&mut b).ok()?;
    Some(URL_SAFE_NO_PAD.encode(b))
}

/// The PKCE S256 challenge of a verifier.
pub fn pkce_challenge(verifier: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac_sha256::Hash::hash(verifier.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn session(exp: i64) -> Session {
        Session {
            name: "carol".into(),
            groups: vec!["dba".into()],
            exp,
            csrf: "c".into(),
        }
    }

    #[test]
    fn a_sealed_session_opens_only_with_its_key_purpose_and_time() {
        let s = Signer::new(b"0123456789abcdef0123456789abcdef");
        let sealed = s.seal("session", &session(100)).unwrap();
        let open = |signer: &Signer, purpose: &str, v: &str, now: i64| {
            signer.open::<Session>(purpose, v, now, |s| s.exp)
        };
        assert_eq!(open(&s, "session", &sealed, 99), Some(session(100)));
        assert_eq!(open(&s, "session", &sealed, 100), None, "expired");
        assert_eq!(open(&s, "login", &sealed, 99), None, "other purpose");
        let other = Signer::new(b"another key, 32 bytes long......");
        assert_eq!(open(&other, "session", &sealed, 99), None, "other key");
        // A changed payload with the old signature.
        let (_, mac) = sealed.split_once('.').unwrap();
        let forged = format!(
            "{}.{mac}",
            URL_SAFE_NO_PAD.encode(serde_json::to_vec(&session(10_000)).unwrap())
        );
        assert_eq!(open(&s, "session", &forged, 99), None, "forged");
        assert_eq!(open(&s, "session", "garbage", 99), None);
    }

    #[test]
    fn cookies_are_found_and_set_safely() {
        let mut h = HeaderMap::new();
        h.insert("cookie", "a=1; tg_session=xyz; b=2".parse().unwrap());
        assert_eq!(cookie(&h, SESSION_COOKIE), Some("xyz"));
        assert_eq!(cookie(&h, "c"), None);
        let c = set_cookie(SESSION_COOKIE, "v", "/", "Strict", 60);
        assert!(c.contains("HttpOnly") && c.contains("Secure") && c.contains("SameSite=Strict"));
        // base64url(SHA-256(verifier)), unpadded (value from Python's hashlib).
        assert_eq!(
            pkce_challenge("dBjftJeZ4CVP-mA3K6z4Zo_ILx8Mz3DqFyVVmqeC8qM"),
            "XNRgmVqNuTWuSyCusFJHN6NUQQhhB7vnu7_JrUVhSmE"
        );
    }
}
