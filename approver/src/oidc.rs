//! Reviewer sign-in with OpenID Connect: the authorization-code flow with
//! PKCE (S256), a `state` and a `nonce`, against the team's identity provider.
//!
//! - `GET /auth/login` makes a verifier, state and nonce, keeps them in a
//!   signed, HttpOnly cookie (`SameSite=Lax`, path `/auth`: it must come back
//!   on the provider's redirect) and redirects to the provider.
//! - `GET /auth/callback` checks the state, exchanges the code (with the
//!   verifier and the client secret) at the token endpoint, checks the ID
//!   token's `iss`, `aud`, `exp` and `nonce`, and sets the session cookie
//!   (HttpOnly, Secure, `SameSite=Strict`) with the reviewer's name and groups.
//!   The ID token's RS256 or ES256 signature is verified with the provider's
//!   JWKS (`jwks_uri`, fetched at each sign-in so key rotation needs nothing).
//! - `GET /auth/me` tells the page who is signed in and its CSRF token;
//!   `POST /auth/logout` ends the session.

use std::sync::Arc;

use anyhow::{bail, Context, Result};
use axum::extract::{Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use rsa::{BoxedUint, Pkcs1v15Sign, RsaPublicKey};
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use tokio::sync::OnceCell;

use crate::clock::Clock;
use crate::error::ApiError;
use crate::session::{
    cookie, pkce_challenge, random_token, set_cookie, LoginState, Session, Signer, CSRF_HEADER,
    LOGIN_COOKIE, SESSION_COOKIE,
};

/// How long a sign-in may take at the provider.
const LOGIN_TTL_SECS: i64 = 600;

/// The OIDC settings (all of `--oidc-*`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OidcConfig {
    pub issuer: String,
    pub client_id: String,
    pub client_secret: String,
    /// The claim that names the reviewer (compared with requesters' `sub`).
    pub name_claim: String,
    pub groups_claim: String,
    pub session_ttl_secs: i64,
}

/// What discovery tells.
#[derive(Debug, Clone, Deserialize)]
struct Metadata {
    issuer: String,
    authorization_endpoint: String,
    token_endpoint: String,
    jwks_uri: String,
}

/// What the sign-in routes need of the service's state (`api` derives it
/// from its own state with axum's `FromRef`).
#[derive(Clone)]
pub struct SignIn {
    pub oidc: Option<Arc<Oidc>>,
    pub clock: Clock,
}

pub struct Oidc {
    config: OidcConfig,
    signer: Signer,
    redirect_uri: String,
    client: reqwest::Client,
    metadata: OnceCell<Metadata>,
}

impl Oidc {
    pub fn new(config: OidcConfig, session_secret: &str, public_url: &str) -> Result<Oidc> {
        let client = reqwest::Client::builder()
            .timeout(std::time::Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the OIDC client")?;
        Ok(Oidc {
            redirect_uri: format!("{}/auth/callback", public_url.trim_end_matches('/')),
            signer: Signer::new(session_secret.as_bytes()),
            config,
            client,
            metadata: OnceCell::new(),
        })
    }

    async fn metadata(&self) -> Result<&Metadata> {
        self.metadata
            .get_or_try_init(|| async {
                let url = format!(
                    "{}/.well-known/openid-configuration",
                    self.config.issuer.trim_end_matches('/')
                );
                let m: Metadata = self
                    .client
                    .get(&url)
                    .send()
                    .await
                    .and_then(|r| r.error_for_status())
                    .context("fetching the provider's discovery document")?
                    .json()
                    .await
                    .context("reading the provider's discovery document")?;
                if m.issuer != self.config.issuer {
                    bail!("the discovery document names issuer {:?}", m.issuer);
                }
                Ok(m)
            })
            .await
    }

    /// The session in the request's cookie, if valid now.
    pub fn session(&self, headers: &HeaderMap, now: i64) -> Option<Session> {
        let sealed = cookie(headers, SESSION_COOKIE)?;
        self.signer
            .open("session", sealed, now, |s: &Session| s.exp)
    }

    /// The request's valid session; `state_changing` calls must also carry
    /// its CSRF token.
    pub fn signed_in(
        &self,
        headers: &HeaderMap,
        state_changing: bool,
        now: i64,
    ) -> Result<Session, ApiError> {
        let session = self.session(headers, now).ok_or(ApiError::Unauthorized(
            "missing Authorization: Bearer token or sign-in session",
        ))?;
        if state_changing && !csrf_ok(&session, headers) {
            return Err(ApiError::Csrf);
        }
        Ok(session)
    }

    /// The code-for-tokens exchange and the ID token's checks.
    async fn finish(&self, code: &str, login: &LoginState, now: i64) -> Result<Session> {
        let m = self.metadata().await?;
        let resp = self
            .client
            .post(&m.token_endpoint)
            .basic_auth(&self.config.client_id, Some(&self.config.client_secret))
            .form(&[
                ("grant_type", "authorization_code"),
                ("code", code),
                ("redirect_uri", self.redirect_uri.as_str()),
                ("code_verifier", login.verifier.as_str()),
            ])
            .send()
            .await
            .context("calling the token endpoint")?;
        if !resp.status().is_success() {
            bail!("the token endpoint answered {}", resp.status());
        }
        let tokens: Value = resp.json().await.context("reading the token response")?;
        let id_token = tokens["id_token"]
            .as_str()
            .context("no id_token in the token response")?;
        let jwks: Value = self
            .client
            .get(&m.jwks_uri)
            .send()
            .await
            .and_then(|r| r.error_for_status())
            .context("fetching the provider's JWKS")?
            .json()
            .await
            .context("reading the provider's JWKS")?;
        let claims = verify_id_token(id_token, &jwks)?;
        if claims["iss"].as_str() != Some(m.issuer.as_str()) {
            bail!("the ID token's iss is not the provider's");
        }
        let aud_ok = match &claims["aud"] {
            Value::String(a) => *a == self.config.client_id,
            Value::Array(a) => a.iter().any(|x| x.as_str() == Some(&self.config.client_id)),
            _ => false,
        };
        if !aud_ok {
            bail!("the ID token is not for this client");
        }
        if claims["exp"].as_i64().is_none_or(|exp| exp <= now) {
            bail!("the ID token has expired");
        }
        if claims["nonce"].as_str() != Some(login.nonce.as_str()) {
            bail!("the ID token's nonce is not this sign-in's");
        }
        let name = claims[self.config.name_claim.as_str()]
            .as_str()
            .filter(|n| !n.is_empty())
            .with_context(|| format!("the ID token has no {:?} claim", self.config.name_claim))?
            .to_string();
        let groups = match &claims[self.config.groups_claim.as_str()] {
            Value::Array(a) => a
                .iter()
                .filter_map(|g| g.as_str().map(str::to_string))
                .collect(),
            Value::String(g) => vec![g.clone()],
            _ => Vec::new(),
        };
        Ok(Session {
            name,
            groups,
            exp: now.saturating_add(self.config.session_ttl_secs),
            csrf: random_token().context("no randomness")?,
        })
    }
}

fn b64(part: &str) -> Result<Vec<u8>> {
    URL_SAFE_NO_PAD
        .decode(part)
        .context("the ID token is not base64url")
}

/// The signature algorithms an ID token may use, each bound to one kind of
/// key: an RS256 token is checked only with RSA keys, an ES256 one only with
/// P-256 keys, so no key is ever used with an algorithm it was not made for.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Alg {
    Rs256,
    Es256,
}

impl Alg {
    fn name(self) -> &'static str {
        match self {
            Alg::Rs256 => "RS256",
            Alg::Es256 => "ES256",
        }
    }

    /// Whether the JWK `k` verifies `signature` over `input` with this algorithm.
    fn verifies(self, k: &Value, input: &[u8], signature: &[u8]) -> bool {
        match self {
            Alg::Rs256 => rsa_key(k).is_some_and(|key| {
                key.verify(
                    Pkcs1v15Sign::new::<Sha256>(),
                    &Sha256::digest(input),
                    signature,
                )
                .is_ok()
            }),
            Alg::Es256 => {
                use p256::ecdsa::signature::Verifier;
                // JWS ECDSA signatures are r||s, 32 bytes each (RFC 7518 3.4).
                let sig = (signature.len() == 64)
                    .then(|| p256::ecdsa::Signature::from_slice(signature).ok())
                    .flatten();
                match (p256_key(k), sig) {
                    (Some(key), Some(sig)) => key.verify(input, &sig).is_ok(),
                    _ => false,
                }
            }
        }
    }
}

/// An RSA JWK of 2048 to 8192 bits.
fn rsa_key(k: &Value) -> Option<RsaPublicKey> {
    if k["kty"].as_str() != Some("RSA") {
        return None;
    }
    let n = URL_SAFE_NO_PAD.decode(k["n"].as_str()?).ok()?;
    let e = URL_SAFE_NO_PAD.decode(k["e"].as_str()?).ok()?;
    RsaPublicKey::new_with_size_limits(
        BoxedUint::from_be_slice_vartime(&n),
        BoxedUint::from_be_slice_vartime(&e),
        2048..=8192,
    )
    .ok()
}

/// A P-256 JWK (a point on the curve).
fn p256_key(k: &Value) -> Option<p256::ecdsa::VerifyingKey> {
    if k["kty"].as_str() != Some("EC") || k["crv"].as_str() != Some("P-256") {
        return None;
    }
    let x = URL_SAFE_NO_PAD.decode(k["x"].as_str()?).ok()?;
    let y = URL_SAFE_NO_PAD.decode(k["y"].as_str()?).ok()?;
    if x.len() != 32 || y.len() != 32 {
        return None;
    }
    let mut sec1 = Vec::with_capacity(65);
    sec1.push(4u8);
    sec1.extend_from_slice(&x);
    sec1.extend_from_slice(&y);
    p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1).ok()
}

/// The claims of an ID token signed with RS256 or ES256 that one of the
/// JWKS's keys of that kind verifies (`kid` matched when both name one, the
/// key's `alg` when it names one).
pub fn verify_id_token(jwt: &str, jwks: &Value) -> Result<Value> {
    let mut parts = jwt.split('.');
    let (Some(h), Some(p), Some(s), None) =
        (parts.next(), parts.next(), parts.next(), parts.next())
    else {
        bail!("the ID token is not a signed JWT");
    };
    let header: Value = serde_json::from_slice(&b64(h)?).context("the ID token's header")?;
    let alg = match header["alg"].as_str() {
        Some("RS256") => Alg::Rs256,
        Some("ES256") => Alg::Es256,
        _ => bail!("the ID token is not signed with RS256 or ES256"),
    };
    let kid = header["kid"].as_str();
    let signature = b64(s)?;
    let input = format!("{h}.{p}");
    let keys = jwks["keys"].as_array().context("the JWKS has no keys")?;
    let verified = keys.iter().any(|k| {
        let fits = k["use"].as_str().is_none_or(|u| u == "sig")
            && k["alg"].as_str().is_none_or(|a| a == alg.name())
            && match (kid, k["kid"].as_str()) {
                (Some(want), Some(have)) => want == have,
                _ => true,
            };
        fits && alg.verifies(k, input.as_bytes(), &signature)
    });
    if !verified {
        bail!("no key of the provider's JWKS verifies the ID token");
    }
    serde_json::from_slice(&b64(p)?).context("the ID token's payload is not JSON")
}

fn redirect(to: &str, cookies: &[String]) -> Response {
    let mut r = (StatusCode::SEE_OTHER, [(header::LOCATION, to.to_string())]).into_response();
    for c in cookies {
        if let Ok(v) = c.parse() {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

fn oidc(state: &SignIn) -> Result<&Arc<Oidc>, ApiError> {
    state
        .oidc
        .as_ref()
        .ok_or_else(|| ApiError::InvalidRequest("OIDC sign-in is not configured".into()))
}

pub async fn login(State(state): State<SignIn>) -> Result<Response, ApiError> {
    let o = oidc(&state)?;
    let m = o.metadata().await.map_err(ApiError::Internal)?;
    let none = || ApiError::Internal(anyhow::anyhow!("no randomness"));
    let login = LoginState {
        state: random_token().ok_or_else(none)?,
        nonce: random_token().ok_or_else(none)?,
        verifier: random_token().ok_or_else(none)?,
        exp: state.clock.now().saturating_add(LOGIN_TTL_SECS),
    };
    let mut url = reqwest::Url::parse(&m.authorization_endpoint)
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?;
    url.query_pairs_mut()
        .append_pair("response_type", "code")
        .append_pair("client_id", &o.config.client_id)
        .append_pair("redirect_uri", &o.redirect_uri)
        .append_pair("scope", "openid profile groups")
        .append_pair("state", &login.state)
        .append_pair("nonce", &login.nonce)
        .append_pair("code_challenge", &pkce_challenge(&login.verifier))
        .append_pair("code_challenge_method", "S256");
    let sealed = o.signer.seal("login", &login).ok_or_else(none)?;
    Ok(redirect(
        url.as_str(),
        &[set_cookie(
            LOGIN_COOKIE,
            &sealed,
            "/auth",
            "Lax",
            LOGIN_TTL_SECS,
        )],
    ))
}

#[derive(Deserialize)]
pub struct Callback {
    code: Option<String>,
    state: Option<String>,
    error: Option<String>,
}

pub async fn callback(
    State(state): State<SignIn>,
    headers: HeaderMap,
    Query(q): Query<Callback>,
) -> Result<Response, ApiError> {
    let o = oidc(&state)?;
    let now = state.clock.now();
    let refused = |why: &'static str| ApiError::Unauthorized(why);
    if q.error.is_some() {
        return Err(refused("the identity provider refused the sign-in"));
    }
    let login: LoginState = cookie(&headers, LOGIN_COOKIE)
        .and_then(|c| o.signer.open("login", c, now, |l: &LoginState| l.exp))
        .ok_or_else(|| refused("no sign-in in progress (or it took too long): start again"))?;
    let given = q.state.unwrap_or_default();
    if !bool::from(subtle::ConstantTimeEq::ct_eq(
        given.as_bytes(),
        login.state.as_bytes(),
    )) {
        return Err(refused("the sign-in's state does not match"));
    }
    let code = q.code.ok_or_else(|| refused("no authorization code"))?;
    let session = o.finish(&code, &login, now).await.map_err(|e| {
        tracing::warn!(error = %format!("{e:#}"), "OIDC sign-in failed");
        refused("the sign-in could not be completed")
    })?;
    tracing::info!(reviewer = %session.name, groups = ?session.groups, "reviewer signed in");
    let sealed = o
        .signer
        .seal("session", &session)
        .ok_or_else(|| ApiError::Internal(anyhow::anyhow!("sealing the session")))?;
    Ok(redirect(
        "/",
        &[
            set_cookie(
                SESSION_COOKIE,
                &sealed,
                "/",
                "Strict",
                o.config.session_ttl_secs,
            ),
            set_cookie(LOGIN_COOKIE, "", "/auth", "Lax", 0),
        ],
    ))
}

/// Who is signed in (with the session's CSRF token), or `signed_in: false`;
/// `oidc` tells the page whether to offer the sign-in.
pub async fn me(State(state): State<SignIn>, headers: HeaderMap) -> Response {
    let oidc = state.oidc.is_some();
    let now = state.clock.now();
    let body = match state.oidc.as_ref().and_then(|o| o.session(&headers, now)) {
        Some(s) => json!({ "signed_in": true, "oidc": oidc, "name": s.name,
            "groups": s.groups, "csrf": s.csrf, "exp": s.exp }),
        None => json!({ "signed_in": false, "oidc": oidc }),
    };
    let mut r = Json(body).into_response();
    r.headers_mut().insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-store"),
    );
    r
}

pub async fn logout(State(state): State<SignIn>, headers: HeaderMap) -> Result<Response, ApiError> {
    // Only the page that holds the session's CSRF token can end it.
    oidc(&state)?.signed_in(&headers, true, state.clock.now())?;
    let mut r = Json(json!({ "signed_out": true })).into_response();
    if let Ok(v) = set_cookie(SESSION_COOKIE, "", "/", "Strict", 0).parse() {
        r.headers_mut().insert(header::SET_COOKIE, v);
    }
    Ok(r)
}

/// Checks a session's CSRF token against the request's `x-csrf-token`.
fn csrf_ok(session: &Session, headers: &HeaderMap) -> bool {
    headers.get(CSRF_HEADER).is_some_and(|v| {
        bool::from(subtle::ConstantTimeEq::ct_eq(
            v.as_bytes(),
            session.csrf.as_bytes(),
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use rsa::pkcs8::DecodePrivateKey;
    use rsa::signature::{SignatureEncoding, Signer};
    use rsa::traits::PublicKeyParts;

    fn key() -> rsa::RsaPrivateKey {
        rsa::RsaPrivateKey::from_pkcs8_pem(include_str!("testdata/rsa2048.pem")).unwrap()
    }

    fn jwks(kid: &str) -> Value {
        let p = key().to_public_key();
        let minimal = |b: Box<[u8]>| -> String {
            let start = b.iter().position(|x| *x != 0).unwrap_or(b.len());
            URL_SAFE_NO_PAD.encode(&b[start..])
        };
        json!({"keys": [{"kty": "RSA", "kid": kid, "use": "sig",
            "n": minimal(p.n().to_be_bytes()), "e": minimal(p.e().to_be_bytes())}]})
    }

    fn token(header: &Value, claims: &Value) -> String {
        let h = URL_SAFE_NO_PAD.encode(header.to_string());
        let p = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{h}.{p}");
        let sig = rsa::pkcs1v15::SigningKey::<Sha256>::new(key())
            .sign(input.as_bytes())
            .to_vec();
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig))
    }

    #[test]
    fn only_a_token_signed_by_a_key_of_the_jwks_is_read() {
        let claims = json!({"sub": "carol", "groups": ["dba"]});
        let good = token(&json!({"alg": "RS256", "kid": "k1"}), &claims);
        assert_eq!(verify_id_token(&good, &jwks("k1")).unwrap(), claims);
        // Another kid, a changed payload, another alg, no signature: refused.
        assert!(verify_id_token(&good, &jwks("k2")).is_err());
        let (hp, sig) = good.rsplit_once('.').unwrap();
        let (h, _) = hp.split_once('.').unwrap();
        let forged = format!(
            "{h}.{}.{sig}",
            URL_SAFE_NO_PAD.encode(json!({"sub": "mallory", "groups": ["dba"]}).to_string())
        );
        assert!(verify_id_token(&forged, &jwks("k1")).is_err());
        let hs = token(&json!({"alg": "HS256", "kid": "k1"}), &claims);
        assert!(verify_id_token(&hs, &jwks("k1")).is_err());
        let none = format!("{hp}.");
        assert!(verify_id_token(&none, &jwks("k1")).is_err());
        assert!(verify_id_token("a.b", &jwks("k1")).is_err());
    }

    fn ec_key(seed: u8) -> p256::ecdsa::SigningKey {
        p256::ecdsa::SigningKey::from_slice(&[seed; 32]).unwrap()
    }

    fn ec_jwks(seed: u8, kid: &str) -> Value {
        let point = ec_key(seed).verifying_key().to_sec1_point(false);
        let bytes = point.as_bytes();
        json!({"keys": [{"kty": "EC", "crv": "P-256", "kid": kid, "use": "sig",
            "x": URL_SAFE_NO_PAD.encode(&bytes[1..33]),
            "y": URL_SAFE_NO_PAD.encode(&bytes[33..65])}]})
    }

    fn ec_token(seed: u8, header: &Value, claims: &Value) -> String {
        let h = URL_SAFE_NO_PAD.encode(header.to_string());
        let p = URL_SAFE_NO_PAD.encode(claims.to_string());
        let input = format!("{h}.{p}");
        let sig: p256::ecdsa::Signature = ec_key(seed).sign(input.as_bytes());
        format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.to_bytes()))
    }

    #[test]
    fn an_es256_token_is_read_only_with_a_p256_key_of_the_jwks() {
        let claims = json!({"sub": "carol", "groups": ["dba"]});
        let good = ec_token(7, &json!({"alg": "ES256", "kid": "e1"}), &claims);
        assert_eq!(verify_id_token(&good, &ec_jwks(7, "e1")).unwrap(), claims);
        // Another key, another kid, an RSA key set: refused.
        assert!(verify_id_token(&good, &ec_jwks(8, "e1")).is_err());
        assert!(verify_id_token(&good, &ec_jwks(7, "e2")).is_err());
        assert!(verify_id_token(&good, &jwks("e1")).is_err());
        // A key whose alg says otherwise is not used for ES256.
        let mut other_alg = ec_jwks(7, "e1");
        other_alg["keys"][0]["alg"] = json!("ES384");
        assert!(verify_id_token(&good, &other_alg).is_err());
        // A changed payload, a DER or zero signature, an RS256 header over
        // the ES256 signature: refused.
        let (hp, sig) = good.rsplit_once('.').unwrap();
        let (h, _) = hp.split_once('.').unwrap();
        let forged = format!(
            "{h}.{}.{sig}",
            URL_SAFE_NO_PAD.encode(json!({"sub": "mallory", "groups": ["dba"]}).to_string())
        );
        assert!(verify_id_token(&forged, &ec_jwks(7, "e1")).is_err());
        let der: p256::ecdsa::Signature = ec_key(7).sign(hp.as_bytes());
        let der = format!("{hp}.{}", URL_SAFE_NO_PAD.encode(der.to_der().as_bytes()));
        assert!(verify_id_token(&der, &ec_jwks(7, "e1")).is_err());
        let zero = format!("{hp}.{}", URL_SAFE_NO_PAD.encode([0u8; 64]));
        assert!(verify_id_token(&zero, &ec_jwks(7, "e1")).is_err());
        let rs = format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(json!({"alg": "RS256", "kid": "e1"}).to_string()),
            good.split_once('.').unwrap().1
        );
        assert!(verify_id_token(&rs, &ec_jwks(7, "e1")).is_err());
    }
}
