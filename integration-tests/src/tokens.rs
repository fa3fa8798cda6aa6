//! Test identity provider in a box: signing keys (RSA, P-256, P-384,
//! Ed25519; generated or loaded from PKCS#8 PEM), the JWKS JSON to publish,
//! and tokens minted with chosen claims and header (including deliberately
//! broken ones, for attack tests). For the integration tests, and for the
//! demo's dev issuer (`issuer.rs`, `cargo xtask token`).
//!
//! ```no_run
//! use integration_tests::tokens::{jwks, KeyKind, SigningKey, TokenBuilder, now};
//! let key = SigningKey::generate(KeyKind::P256, "k1").unwrap();
//! let jwks_json = jwks(&[&key]).to_string(); // serve it, or put it in local_jwks
//! let token = TokenBuilder::new("https://idp.test", "agent-gateway", "agent-1", now())
//!     .claim("groups", serde_json::json!(["dev"]))
//!     .sign(&key)
//!     .unwrap();
//! ```

use anyhow::{anyhow, bail, Context, Result};
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use p256::elliptic_curve::Generate;
use rsa::pkcs8::{DecodePrivateKey, EncodePrivateKey, LineEnding};
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use serde_json::{json, Map, Value};
use sha2::{Sha256, Sha384, Sha512};
use std::time::{SystemTime, UNIX_EPOCH};

/// Seconds since the epoch.
pub fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0)
}

/// base64url without padding.
pub fn b64url(bytes: &[u8]) -> String {
    URL_SAFE_NO_PAD.encode(bytes)
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyKind {
    /// RSA with this many modulus bits (2048 is the filter's minimum).
    Rsa(usize),
    P256,
    P384,
    Ed25519,
}

enum Inner {
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed25519(ed25519_dalek::SigningKey),
}

/// A private signing key with its `kid`.
pub struct SigningKey {
    pub kid: String,
    inner: Inner,
}

impl SigningKey {
    /// A fresh key. RSA generation takes a moment (about a second for 2048 bits in debug).
    pub fn generate(kind: KeyKind, kid: &str) -> Result<SigningKey> {
        let mut rng = rand::rng();
        let inner = match kind {
            KeyKind::Rsa(bits) => Inner::Rsa(Box::new(
                rsa::RsaPrivateKey::new(&mut rng, bits).context("RSA key generation")?,
            )),
            KeyKind::P256 => Inner::P256(p256::ecdsa::SigningKey::generate_from_rng(&mut rng)),
            KeyKind::P384 => Inner::P384(p384::ecdsa::SigningKey::generate_from_rng(&mut rng)),
            KeyKind::Ed25519 => Inner::Ed25519(ed25519_dalek::SigningKey::generate(&mut rng)),
        };
        Ok(SigningKey {
            kid: kid.to_string(),
            inner,
        })
    }

    /// Loads a PKCS#8 PEM private key of any supported kind.
    pub fn from_pkcs8_pem(pem: &str, kid: &str) -> Result<SigningKey> {
        let inner = if let Ok(k) = rsa::RsaPrivateKey::from_pkcs8_pem(pem) {
            Inner::Rsa(Box::new(k))
        } else if let Ok(k) = p256::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            Inner::P256(k)
        } else if let Ok(k) = p384::ecdsa::SigningKey::from_pkcs8_pem(pem) {
            Inner::P384(k)
        } else if let Ok(k) = ed25519_dalek::SigningKey::from_pkcs8_pem(pem) {
            Inner::Ed25519(k)
        } else {
            bail!("not a PKCS#8 RSA, P-256, P-384 or Ed25519 private key");
        };
        Ok(SigningKey {
            kid: kid.to_string(),
            inner,
        })
    }

    /// The private key as PKCS#8 PEM (to keep it between runs).
    pub fn to_pkcs8_pem(&self) -> Result<String> {
        let pem = match &self.inner {
            Inner::Rsa(k) => k.to_pkcs8_pem(LineEnding::LF).map(|p| p.to_string()),
            Inner::P256(k) => k.to_pkcs8_pem(LineEnding::LF).map(|p| p.to_string()),
            Inner::P384(k) => k.to_pkcs8_pem(LineEnding::LF).map(|p| p.to_string()),
            Inner::Ed25519(k) => k.to_pkcs8_pem(LineEnding::LF).map(|p| p.to_string()),
        };
        pem.map_err(|e| anyhow!("PKCS#8 encoding: {e}"))
    }

    pub fn kind(&self) -> KeyKind {
        match &self.inner {
            Inner::Rsa(k) => KeyKind::Rsa(k.size() * 8),
            Inner::P256(_) => KeyKind::P256,
            Inner::P384(_) => KeyKind::P384,
            Inner::Ed25519(_) => KeyKind::Ed25519,
        }
    }

    /// The algorithm tokens get unless told otherwise.
    pub fn default_alg(&self) -> &'static str {
        match self.inner {
            Inner::Rsa(_) => "RS256",
            Inner::P256(_) => "ES256",
            Inner::P384(_) => "ES384",
            Inner::Ed25519(_) => "EdDSA",
        }
    }

    /// The public JWK (`kid`, `use: sig`; no `alg`, so one RSA key serves RS* and PS*).
    pub fn public_jwk(&self) -> Value {
        fn trim(b: &[u8]) -> &[u8] {
            let i = b.iter().position(|x| *x != 0).unwrap_or(b.len());
            b.get(i..).unwrap_or_default()
        }
        match &self.inner {
            Inner::Rsa(k) => {
                let p = k.to_public_key();
                json!({"kty": "RSA", "kid": self.kid, "use": "sig",
                       "n": b64url(trim(&p.n().to_be_bytes())),
                       "e": b64url(trim(&p.e().to_be_bytes()))})
            }
            Inner::P256(k) => {
                let pt = k.verifying_key().to_sec1_bytes();
                json!({"kty": "EC", "crv": "P-256", "kid": self.kid, "use": "sig",
                       "x": b64url(&pt[1..33]), "y": b64url(&pt[33..65])})
            }
            Inner::P384(k) => {
                let pt = k.verifying_key().to_sec1_bytes();
                json!({"kty": "EC", "crv": "P-384", "kid": self.kid, "use": "sig",
                       "x": b64url(&pt[1..49]), "y": b64url(&pt[49..97])})
            }
            Inner::Ed25519(k) => json!({"kty": "OKP", "crv": "Ed25519", "kid": self.kid,
                                        "use": "sig", "x": b64url(&k.verifying_key().to_bytes())}),
        }
    }

    /// Signs `input` with `alg` (JWS encoding: r||s for ECDSA).
    pub fn sign(&self, alg: &str, input: &[u8]) -> Result<Vec<u8>> {
        let mut rng = rand::rng();
        Ok(match (&self.inner, alg) {
            (Inner::Rsa(k), "RS256") => rsa::pkcs1v15::SigningKey::<Sha256>::new((**k).clone())
                .sign(input)
                .to_vec(),
            (Inner::Rsa(k), "RS384") => rsa::pkcs1v15::SigningKey::<Sha384>::new((**k).clone())
                .sign(input)
                .to_vec(),
            (Inner::Rsa(k), "RS512") => rsa::pkcs1v15::SigningKey::<Sha512>::new((**k).clone())
                .sign(input)
                .to_vec(),
            (Inner::Rsa(k), "PS256") => rsa::pss::SigningKey::<Sha256>::new((**k).clone())
                .sign_with_rng(&mut rng, input)
                .to_vec(),
            (Inner::Rsa(k), "PS384") => rsa::pss::SigningKey::<Sha384>::new((**k).clone())
                .sign_with_rng(&mut rng, input)
                .to_vec(),
            (Inner::Rsa(k), "PS512") => rsa::pss::SigningKey::<Sha512>::new((**k).clone())
                .sign_with_rng(&mut rng, input)
                .to_vec(),
            (Inner::P256(k), "ES256") => {
                let s: p256::ecdsa::Signature = k.sign(input);
                s.to_bytes().to_vec()
            }
            (Inner::P384(k), "ES384") => {
                let s: p384::ecdsa::Signature = k.sign(input);
                s.to_bytes().to_vec()
            }
            (Inner::Ed25519(k), "EdDSA") => k.sign(input).to_bytes().to_vec(),
            (_, alg) => bail!("a {:?} key cannot sign {alg}", self.kind()),
        })
    }
}

/// `{"keys": [...]}` with the public JWKs.
pub fn jwks(keys: &[&SigningKey]) -> Value {
    json!({"keys": keys.iter().map(|k| k.public_jwk()).collect::<Vec<_>>()})
}

/// A JWKS endpoint over plain HTTP on loopback (`GET` any path), for remote
/// key tests: rotate the keys or make it fail while Envoy runs, and count the
/// fetches. Stops when dropped.
pub struct JwksServer {
    pub addr: std::net::SocketAddr,
    state: std::sync::Arc<std::sync::Mutex<(u16, String)>>,
    hits: std::sync::Arc<std::sync::atomic::AtomicUsize>,
    task: tokio::task::JoinHandle<()>,
}

impl JwksServer {
    pub async fn start(jwks: &Value) -> Result<JwksServer> {
        JwksServer::start_on(std::net::SocketAddr::from(([127, 0, 0, 1], 0)), jwks).await
    }

    /// As [`JwksServer::start`], on a chosen address (the demo's fixed port).
    pub async fn start_on(addr: std::net::SocketAddr, jwks: &Value) -> Result<JwksServer> {
        use axum::extract::State;
        use std::sync::atomic::{AtomicUsize, Ordering};
        use std::sync::{Arc, Mutex};
        type Shared = (Arc<Mutex<(u16, String)>>, Arc<AtomicUsize>);
        async fn serve(State((state, hits)): State<Shared>) -> axum::response::Response {
            use axum::response::IntoResponse;
            hits.fetch_add(1, Ordering::SeqCst);
            let (status, body) = state
                .lock()
                .map(|s| s.clone())
                .unwrap_or((500, String::new()));
            let status = axum::http::StatusCode::from_u16(status)
                .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR);
            (status, [("content-type", "application/json")], body).into_response()
        }
        let state = Arc::new(Mutex::new((200, jwks.to_string())));
        let hits = Arc::new(AtomicUsize::new(0));
        let app = axum::Router::new()
            .fallback(serve)
            .with_state((state.clone(), hits.clone()));
        let listener = tokio::net::TcpListener::bind(addr)
            .await
            .with_context(|| format!("binding the JWKS server to {addr}"))?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(JwksServer {
            addr,
            state,
            hits,
            task,
        })
    }

    /// Serve these keys from now on (a key rotation).
    pub fn set(&self, jwks: &Value) {
        if let Ok(mut s) = self.state.lock() {
            *s = (200, jwks.to_string());
        }
    }

    /// Answer every fetch with this status and an empty body.
    pub fn fail_with(&self, status: u16) {
        if let Ok(mut s) = self.state.lock() {
            *s = (status, String::new());
        }
    }

    /// Requests served so far.
    pub fn hits(&self) -> usize {
        self.hits.load(std::sync::atomic::Ordering::SeqCst)
    }
}

impl Drop for JwksServer {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// An `identity.providers[]` entry trusting `keys` inline (`local_jwks`), for
/// test policies. Adjust fields with `v["field"] = …` before use.
pub fn provider_json(name: &str, issuer: &str, audience: &str, keys: &[&SigningKey]) -> Value {
    let mut algs: Vec<&str> = Vec::new();
    for k in keys {
        let more: &[&str] = match k.kind() {
            KeyKind::Rsa(_) => &["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"],
            KeyKind::P256 => &["ES256"],
            KeyKind::P384 => &["ES384"],
            KeyKind::Ed25519 => &["EdDSA"],
        };
        for a in more {
            if !algs.contains(a) {
                algs.push(a);
            }
        }
    }
    json!({"name": name, "issuer": issuer, "audiences": [audience],
           "algorithms": algs, "local_jwks": jwks(keys)})
}

/// HMAC signature for HS256/384/512.
pub fn hmac_sign(alg: &str, secret: &[u8], input: &[u8]) -> Result<Vec<u8>> {
    fn mac<M: Mac + KeyInit>(secret: &[u8], input: &[u8]) -> Result<Vec<u8>> {
        let mut m = <M as KeyInit>::new_from_slice(secret).map_err(|e| anyhow!("{e}"))?;
        m.update(input);
        Ok(m.finalize().into_bytes().to_vec())
    }
    match alg {
        "HS256" => mac::<Hmac<Sha256>>(secret, input),
        "HS384" => mac::<Hmac<Sha384>>(secret, input),
        "HS512" => mac::<Hmac<Sha512>>(secret, input),
        _ => bail!("{alg} is not an HMAC algorithm"),
    }
}

/// Builds a token: standard claims preset, everything overridable.
#[derive(Debug, Clone)]
pub struct TokenBuilder {
    pub header: Map<String, Value>,
    pub claims: Map<String, Value>,
    alg: Option<String>,
}

impl TokenBuilder {
    /// `iss`, `aud`, `sub`, `iat` = `now`, `exp` = `now` + 1 hour.
    pub fn new(issuer: &str, audience: &str, subject: &str, now: u64) -> TokenBuilder {
        let claims = json!({"iss": issuer, "aud": audience, "sub": subject,
                            "iat": now, "exp": now + 3600});
        TokenBuilder {
            header: Map::new(),
            claims: claims.as_object().cloned().unwrap_or_default(),
            alg: None,
        }
    }

    pub fn claim(mut self, name: &str, value: Value) -> Self {
        self.claims.insert(name.to_string(), value);
        self
    }

    pub fn without_claim(mut self, name: &str) -> Self {
        self.claims.remove(name);
        self
    }

    /// A header member (`typ`, `kid`, even `jwk`/`jku` for attack tests).
    pub fn header(mut self, name: &str, value: Value) -> Self {
        self.header.insert(name.to_string(), value);
        self
    }

    /// The `alg` to sign with (default: the key's [`SigningKey::default_alg`]).
    pub fn alg(mut self, alg: &str) -> Self {
        self.alg = Some(alg.to_string());
        self
    }

    fn signing_input(&self, alg: &str, kid: Option<&str>) -> String {
        let mut header = Map::new();
        header.insert("alg".into(), json!(alg));
        if let Some(kid) = kid {
            header.insert("kid".into(), json!(kid));
        }
        header.insert("typ".into(), json!("JWT"));
        for (k, v) in &self.header {
            header.insert(k.clone(), v.clone());
        }
        format!(
            "{}.{}",
            b64url(Value::Object(header).to_string().as_bytes()),
            b64url(Value::Object(self.claims.clone()).to_string().as_bytes())
        )
    }

    /// Signs with `key`; the header gets `kid` = the key's (overridable with `.header("kid", …)`).
    pub fn sign(&self, key: &SigningKey) -> Result<String> {
        let alg = self.alg.as_deref().unwrap_or(key.default_alg());
        let input = self.signing_input(alg, Some(&key.kid));
        let sig = key.sign(alg, input.as_bytes())?;
        Ok(format!("{input}.{}", b64url(&sig)))
    }

    /// Signs with an HMAC secret (`alg` must be HS*; default HS256).
    pub fn sign_hmac(&self, secret: &[u8]) -> Result<String> {
        let alg = self.alg.as_deref().unwrap_or("HS256");
        let input = self.signing_input(alg, None);
        let sig = hmac_sign(alg, secret, input.as_bytes())?;
        Ok(format!("{input}.{}", b64url(&sig)))
    }

    /// An unsigned token (`alg` as given, e.g. `none`; empty signature).
    pub fn unsigned(&self, alg: &str) -> String {
        format!("{}.", self.signing_input(alg, None))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use transit_guard::identity::{compile, Authenticator, IdentityDoc, PlainRequest};

    fn authenticate(jwks: Value, algs: &[&str], token: &str, now: u64) -> Result<String, String> {
        let provider = json!({"name": "idp", "issuer": "https://idp.test", "audiences": ["gw"],
                              "algorithms": algs, "local_jwks": jwks});
        authenticate_with(provider, token, now)
    }

    fn authenticate_with(provider: Value, token: &str, now: u64) -> Result<String, String> {
        let doc: IdentityDoc = serde_json::from_value(json!({ "providers": [provider] }))
            .map_err(|e| e.to_string())?;
        let auth = Authenticator::new(compile(doc).map_err(|e| e.to_string())?);
        let keys = auth.new_key_store();
        let mut cache = auth.new_cache();
        let req = PlainRequest::new("/").header("authorization", &format!("Bearer {token}"));
        auth.authenticate(&req, &keys, &mut cache, now)
            .map(|a| a.identity.map(|i| i.subject).unwrap_or_default())
            .map_err(|e| e.code().to_string())
    }

    #[test]
    fn minted_tokens_verify_in_the_filter_core() {
        let now = now();
        let rsa = SigningKey::generate(KeyKind::Rsa(2048), "r").unwrap();
        let keys = [
            SigningKey::generate(KeyKind::P256, "e").unwrap(),
            SigningKey::generate(KeyKind::P384, "f").unwrap(),
            SigningKey::generate(KeyKind::Ed25519, "d").unwrap(),
        ];
        let set = jwks(&[&rsa, &keys[0], &keys[1], &keys[2]]);
        let all = [
            "RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA",
        ];
        let b = TokenBuilder::new("https://idp.test", "gw", "agent-1", now);
        for alg in ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512"] {
            let t = b.clone().alg(alg).sign(&rsa).unwrap();
            assert_eq!(
                authenticate(set.clone(), &all, &t, now),
                Ok("agent-1".into()),
                "{alg}"
            );
        }
        for k in &keys {
            let t = b.sign(k).unwrap();
            assert_eq!(
                authenticate(set.clone(), &all, &t, now),
                Ok("agent-1".into())
            );
        }
        let expired = b
            .clone()
            .claim("exp", json!(now - 120))
            .sign(&keys[0])
            .unwrap();
        assert_eq!(
            authenticate(set.clone(), &all, &expired, now),
            Err("token_expired".into())
        );
        assert_eq!(
            authenticate(set.clone(), &all, &b.unsigned("none"), now),
            Err("alg_not_allowed".into())
        );
        let other = SigningKey::generate(KeyKind::P256, "e").unwrap();
        let forged = b.sign(&other).unwrap();
        assert_eq!(
            authenticate(set, &all, &forged, now),
            Err("bad_signature".into())
        );
    }

    #[test]
    fn provider_json_is_a_valid_policy_entry() {
        let now = now();
        let k = SigningKey::generate(KeyKind::Ed25519, "d").unwrap();
        let e = SigningKey::generate(KeyKind::P256, "e").unwrap();
        let p = provider_json("idp", "https://idp.test", "gw", &[&k, &e]);
        assert_eq!(p["algorithms"], json!(["EdDSA", "ES256"]));
        let t = TokenBuilder::new("https://idp.test", "gw", "s", now)
            .sign(&e)
            .unwrap();
        assert_eq!(authenticate_with(p, &t, now), Ok("s".into()));
    }

    #[tokio::test]
    async fn jwks_server_serves_rotates_and_fails() {
        let a = SigningKey::generate(KeyKind::P256, "a").unwrap();
        let b = SigningKey::generate(KeyKind::Ed25519, "b").unwrap();
        let server = JwksServer::start(&jwks(&[&a])).await.unwrap();
        let url = format!("http://{}/jwks", server.addr);
        let client = reqwest::Client::new();
        let got: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        assert_eq!(got, jwks(&[&a]));
        server.set(&jwks(&[&a, &b]));
        let got: Value = client.get(&url).send().await.unwrap().json().await.unwrap();
        assert_eq!(got["keys"].as_array().unwrap().len(), 2);
        server.fail_with(503);
        assert_eq!(
            client.get(&url).send().await.unwrap().status().as_u16(),
            503
        );
        assert_eq!(server.hits(), 3);
    }

    #[test]
    fn keys_survive_a_pem_round_trip() {
        for kind in [KeyKind::P256, KeyKind::P384, KeyKind::Ed25519] {
            let k = SigningKey::generate(kind, "k").unwrap();
            let again = SigningKey::from_pkcs8_pem(&k.to_pkcs8_pem().unwrap(), "k").unwrap();
            assert_eq!(again.kind(), kind);
            assert_eq!(again.public_jwk(), k.public_jwk());
        }
        assert!(SigningKey::from_pkcs8_pem("junk", "k").is_err());
    }
}
