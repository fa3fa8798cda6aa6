//! Attack-class and happy-path tests, with tokens minted here from fixed test
//! keys (RSA key generation is far too slow in debug wasm).

use super::jwt::{b64url_decode, b64url_encode};
use super::*;
use hmac::{Hmac, KeyInit, Mac};
use rand::SeedableRng;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use sha2::{Sha256, Sha384, Sha512};
use std::sync::OnceLock;

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://idp.test";
const AUD: &str = "agent-gateway";
/// 32 bytes, base64url: the HS256 test provider's secret.
const HMAC_SECRET: &[u8; 32] = b"0123456789abcdef0123456789abcdef";

// ---------------------------------------------------------------- test keys

pub(crate) enum TestKey {
    Rsa(Box<rsa::RsaPrivateKey>),
    P256(p256::ecdsa::SigningKey),
    P384(p384::ecdsa::SigningKey),
    Ed(ed25519_dalek::SigningKey),
    Hmac(Vec<u8>),
}

fn rsa_key() -> &'static rsa::RsaPrivateKey {
    static K: OnceLock<rsa::RsaPrivateKey> = OnceLock::new();
    K.get_or_init(|| {
        rsa::RsaPrivateKey::from_pkcs8_pem(include_str!("testdata/rsa2048.pem")).unwrap()
    })
}

fn key(name: &str) -> TestKey {
    match name {
        "rsa" => TestKey::Rsa(Box::new(rsa_key().clone())),
        "ec256" => TestKey::P256(p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap()),
        "ec384" => TestKey::P384(p384::ecdsa::SigningKey::from_slice(&[9u8; 48]).unwrap()),
        "ed" => TestKey::Ed(ed25519_dalek::SigningKey::from_bytes(&[5u8; 32])),
        // An attacker's own keys.
        "evil256" => TestKey::P256(p256::ecdsa::SigningKey::from_slice(&[66u8; 32]).unwrap()),
        "hmac" => TestKey::Hmac(HMAC_SECRET.to_vec()),
        other => panic!("no test key {other}"),
    }
}

fn trim(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[i..]
}

/// The public JWK of a test key.
fn jwk(k: &TestKey, kid: &str) -> Value {
    match k {
        TestKey::Rsa(k) => {
            let p = k.to_public_key();
            json!({"kty":"RSA","kid":kid,"use":"sig",
                   "n": b64url_encode(trim(&p.n().to_be_bytes())),
                   "e": b64url_encode(trim(&p.e().to_be_bytes()))})
        }
        TestKey::P256(k) => {
            let pt = k.verifying_key().to_sec1_bytes();
            json!({"kty":"EC","crv":"P-256","kid":kid,
                   "x": b64url_encode(&pt[1..33]), "y": b64url_encode(&pt[33..65])})
        }
        TestKey::P384(k) => {
            let pt = k.verifying_key().to_sec1_bytes();
            json!({"kty":"EC","crv":"P-384","kid":kid,
                   "x": b64url_encode(&pt[1..49]), "y": b64url_encode(&pt[49..97])})
        }
        TestKey::Ed(k) => {
            json!({"kty":"OKP","crv":"Ed25519","kid":kid,
                   "x": b64url_encode(&k.verifying_key().to_bytes())})
        }
        TestKey::Hmac(_) => panic!("no JWK for HMAC"),
    }
}

fn sign(k: &TestKey, alg: &str, input: &[u8]) -> Vec<u8> {
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    match (k, alg) {
        (TestKey::Rsa(k), "RS256") => rsa::pkcs1v15::SigningKey::<Sha256>::new((**k).clone())
            .sign(input)
            .to_vec(),
        (TestKey::Rsa(k), "RS384") => rsa::pkcs1v15::SigningKey::<Sha384>::new((**k).clone())
            .sign(input)
            .to_vec(),
        (TestKey::Rsa(k), "RS512") => rsa::pkcs1v15::SigningKey::<Sha512>::new((**k).clone())
            .sign(input)
            .to_vec(),
        (TestKey::Rsa(k), "PS256") => rsa::pss::SigningKey::<Sha256>::new((**k).clone())
            .sign_with_rng(&mut rng, input)
            .to_vec(),
        (TestKey::Rsa(k), "PS384") => rsa::pss::SigningKey::<Sha384>::new((**k).clone())
            .sign_with_rng(&mut rng, input)
            .to_vec(),
        (TestKey::Rsa(k), "PS512") => rsa::pss::SigningKey::<Sha512>::new((**k).clone())
            .sign_with_rng(&mut rng, input)
            .to_vec(),
        (TestKey::P256(k), _) => {
            let s: p256::ecdsa::Signature = k.sign(input);
            s.to_bytes().to_vec()
        }
        (TestKey::P384(k), _) => {
            let s: p384::ecdsa::Signature = k.sign(input);
            s.to_bytes().to_vec()
        }
        (TestKey::Ed(k), _) => k.sign(input).to_bytes().to_vec(),
        (TestKey::Hmac(secret), "HS384") => Hmac::<Sha384>::new_from_slice(secret)
            .unwrap()
            .chain_update(input)
            .finalize()
            .into_bytes()
            .to_vec(),
        (TestKey::Hmac(secret), _) => Hmac::<Sha256>::new_from_slice(secret)
            .unwrap()
            .chain_update(input)
            .finalize()
            .into_bytes()
            .to_vec(),
        _ => panic!("cannot sign {alg}"),
    }
}

/// Mints a token from raw header and payload JSON text (so tests can write
/// duplicate members), signing with `k` under the header's `alg`.
fn mint_raw(header: &str, payload: &str, k: &TestKey) -> String {
    let h: Value = serde_json::from_str(header).unwrap();
    let alg = h["alg"].as_str().unwrap().to_string();
    let input = format!(
        "{}.{}",
        b64url_encode(header.as_bytes()),
        b64url_encode(payload.as_bytes())
    );
    let sig = sign(k, &alg, input.as_bytes());
    format!("{input}.{}", b64url_encode(&sig))
}

fn mint(header: Value, claims: Value, k: &TestKey) -> String {
    mint_raw(&header.to_string(), &claims.to_string(), k)
}

fn claims() -> Value {
    json!({"iss": ISS, "aud": AUD, "sub": "agent-7", "exp": NOW + 3600, "iat": NOW,
           "realm_access": {"roles": ["dev", "ops"]}, "scope": "read write",
           "email": "a7@example.com"})
}

fn with(mut v: Value, k: &str, x: Value) -> Value {
    v[k] = x;
    v
}

fn without(mut v: Value, k: &str) -> Value {
    v.as_object_mut().unwrap().remove(k);
    v
}

// ---------------------------------------------------------------- policy

fn jwks_doc() -> Value {
    json!({"keys": [
        jwk(&key("rsa"), "rsa1"),
        jwk(&key("ec256"), "ec1"),
        jwk(&key("ec384"), "ec384"),
        jwk(&key("ed"), "ed1"),
    ]})
}

fn policy() -> Value {
    json!({
        "exempt_paths": [{"exact": "/healthz"}, {"prefix": "/public/"}],
        "exempt_routes": ["status"],
        "providers": [{
            "name": "corp",
            "issuer": ISS,
            "audiences": [AUD, "other"],
            "algorithms": ["RS256","RS384","RS512","PS256","PS384","PS512","ES256","ES384","EdDSA"],
            "local_jwks": jwks_doc(),
            "groups_claim": "realm_access.roles",
            "claims_to_headers": {"sub": "x-agent-subject", "email": "X-Agent-Email"}
        }, {
            "name": "svc",
            "issuer": "https://svc.test",
            "audiences": [AUD],
            "algorithms": ["HS256"],
            "hmac_secret": b64url_encode(HMAC_SECRET),
            "from_headers": [{"name": "x-svc-token"}],
            "from_params": ["access_token"],
            "forward_token": false
        }]
    })
}

fn compile_json(v: Value) -> Result<Authenticator, crate::policy::PolicyError> {
    let doc: IdentityDoc = serde_json::from_value(v).unwrap();
    compile(doc).map(Authenticator::new)
}

struct World {
    auth: Authenticator,
    keys: KeyStore,
    cache: TokenCache,
}

fn world_from(v: Value) -> World {
    let auth = compile_json(v).unwrap();
    let keys = auth.new_key_store();
    let cache = auth.new_cache();
    World { auth, keys, cache }
}

fn world() -> World {
    world_from(policy())
}

impl World {
    fn run(&mut self, req: &PlainRequest, now: u64) -> Result<Authenticated, AuthError> {
        self.auth
            .authenticate(req, &self.keys, &mut self.cache, now)
    }
    fn bearer(&mut self, token: &str) -> Result<Authenticated, AuthError> {
        let req = PlainRequest::new("/v1/chat").header("authorization", &format!("Bearer {token}"));
        self.run(&req, NOW)
    }
    fn code(&mut self, token: &str) -> &'static str {
        match self.bearer(token) {
            Ok(_) => "ok",
            Err(e) => e.code(),
        }
    }
}

fn hdr(alg: &str, kid: &str) -> Value {
    json!({"alg": alg, "kid": kid, "typ": "JWT"})
}

// ---------------------------------------------------------------- happy paths

#[test]
fn every_algorithm_verifies() {
    let mut w = world();
    for (alg, k, kid) in [
        ("RS256", "rsa", "rsa1"),
        ("RS384", "rsa", "rsa1"),
        ("RS512", "rsa", "rsa1"),
        ("PS256", "rsa", "rsa1"),
        ("PS384", "rsa", "rsa1"),
        ("PS512", "rsa", "rsa1"),
        ("ES256", "ec256", "ec1"),
        ("ES384", "ec384", "ec384"),
        ("EdDSA", "ed", "ed1"),
    ] {
        let t = mint(hdr(alg, kid), claims(), &key(k));
        let a = w.bearer(&t).unwrap_or_else(|e| panic!("{alg}: {e}"));
        let id = a.identity.unwrap();
        assert_eq!(id.subject, "agent-7", "{alg}");
        assert_eq!(id.provider, "corp");
        assert_eq!(id.issuer, ISS);
        assert_eq!(a.provider_index, Some(0));
        assert!(!a.from_cache);
    }
}

#[test]
fn hs256_with_configured_secret_verifies() {
    let mut w = world();
    let c = with(claims(), "iss", json!("https://svc.test"));
    let t = mint(json!({"alg":"HS256"}), c, &key("hmac"));
    let req = PlainRequest::new("/x").header("x-svc-token", &t);
    let a = w.run(&req, NOW).unwrap();
    assert_eq!(a.identity.unwrap().provider, "svc");
    assert!(a.remove_headers.contains(&"x-svc-token".to_string()));
}

#[test]
fn token_without_kid_tries_every_fitting_key() {
    let mut w = world();
    let t = mint(json!({"alg":"ES256"}), claims(), &key("ec256"));
    assert_eq!(w.code(&t), "ok");
}

#[test]
fn groups_scopes_and_claim_headers() {
    let mut w = world();
    let c = with(claims(), "scp", json!(["admin", "read"]));
    let t = mint(hdr("ES256", "ec1"), c, &key("ec256"));
    let req = PlainRequest::new("/v1")
        .header("authorization", &format!("bearer {t}"))
        .header("x-agent-subject", "spoofed-admin");
    let a = w.run(&req, NOW).unwrap();
    let id = a.identity.unwrap();
    assert_eq!(id.groups, vec!["dev", "ops"]);
    assert_eq!(id.scopes, vec!["read", "write", "admin"]);
    // Client-sent claim headers are removed, then set from the token.
    assert!(a.remove_headers.contains(&"x-agent-subject".to_string()));
    assert!(a.remove_headers.contains(&"x-agent-email".to_string()));
    assert!(
        a.remove_headers.contains(&"authorization".to_string()),
        "not forwarded by default"
    );
    assert_eq!(
        a.set_headers,
        vec![
            ("x-agent-email".to_string(), "a7@example.com".to_string()),
            ("x-agent-subject".to_string(), "agent-7".to_string()),
        ]
    );
}

#[test]
fn groups_claim_variants() {
    use super::claims::groups;
    let m = |v: Value| v.as_object().unwrap().clone();
    assert_eq!(
        groups(&m(json!({"groups": "solo"})), Some("groups")).unwrap(),
        vec!["solo"]
    );
    assert_eq!(
        groups(
            &m(json!({"https://ex.com/groups": ["a", "a", "b"]})),
            Some("https://ex.com/groups")
        )
        .unwrap(),
        vec!["a", "b"]
    );
    assert_eq!(
        groups(&m(json!({})), Some("groups")).unwrap(),
        Vec::<String>::new()
    );
    assert_eq!(
        groups(&m(json!({"groups": [1]})), Some("groups"))
            .unwrap_err()
            .code(),
        "token_malformed"
    );
    assert_eq!(
        super::claims::scopes(&m(json!({"scp": "a b", "scope": "b c"}))).unwrap(),
        vec!["b", "c", "a"]
    );
}

#[test]
fn claim_header_values_never_carry_control_characters() {
    let mut w = world();
    let c = with(claims(), "email", json!("a@b\r\nx-admin: 1"));
    let t = mint(hdr("ES256", "ec1"), c, &key("ec256"));
    let a = w.bearer(&t).unwrap();
    assert!(a.set_headers.iter().all(|(h, _)| h != "x-agent-email"));
}

#[test]
fn forward_token_keeps_the_header() {
    let mut p = policy();
    p["providers"][0]["forward_token"] = json!(true);
    let mut w = world_from(p);
    let t = mint(hdr("ES256", "ec1"), claims(), &key("ec256"));
    let a = w.bearer(&t).unwrap();
    assert!(!a.remove_headers.contains(&"authorization".to_string()));
}

#[test]
fn query_parameter_source_is_taken_out_of_the_path() {
    let mut w = world();
    let c = with(claims(), "iss", json!("https://svc.test"));
    let t = mint(json!({"alg":"HS256"}), c, &key("hmac"));
    let req = PlainRequest::new(&format!("/x?a=1&access_token={t}&b=2"));
    let a = w.run(&req, NOW).unwrap();
    assert_eq!(a.new_path.as_deref(), Some("/x?a=1&b=2"));
    // Only where configured: the corp provider reads no query parameter.
    let t = mint(hdr("ES256", "ec1"), claims(), &key("ec256"));
    let req = PlainRequest::new(&format!("/x?access_token={t}"));
    assert_eq!(w.run(&req, NOW).unwrap_err().code(), "issuer_mismatch");
}

#[test]
fn missing_token_and_other_schemes() {
    let mut w = world();
    let e = w.run(&PlainRequest::new("/v1"), NOW).unwrap_err();
    assert_eq!(e.code(), "token_missing");
    let r = e.to_reply("transit-guard");
    assert_eq!(r.status, 401);
    assert_eq!(r.headers[0].1, "Bearer realm=\"transit-guard\"");
    let req = PlainRequest::new("/v1").header("authorization", "Basic YTpi");
    assert_eq!(w.run(&req, NOW).unwrap_err().code(), "token_missing");
    let req = PlainRequest::new("/v1").header("authorization", "Bearer ");
    assert_eq!(w.run(&req, NOW).unwrap_err().code(), "token_malformed");
}

#[test]
fn two_different_tokens_are_refused() {
    let mut w = world();
    let t1 = mint(hdr("ES256", "ec1"), claims(), &key("ec256"));
    let t2 = mint(hdr("EdDSA", "ed1"), claims(), &key("ed"));
    let req = PlainRequest::new("/v1")
        .header("authorization", &format!("Bearer {t1}"))
        .header("authorization", &format!("Bearer {t2}"));
    assert_eq!(w.run(&req, NOW).unwrap_err().code(), "token_malformed");
}

#[test]
fn exempt_routes_by_name() {
    let mut w = world();
    let a = w
        .run(&PlainRequest::new("/anything").route("status"), NOW)
        .unwrap();
    assert_eq!(a.identity, None);
    let e = w
        .run(&PlainRequest::new("/anything").route("api"), NOW)
        .unwrap_err();
    assert_eq!(e.code(), "token_missing");
}

#[test]
fn exempt_paths_fail_closed() {
    let mut w = world();
    let req = PlainRequest::new("/healthz").header("x-agent-subject", "spoof");
    let a = w.run(&req, NOW).unwrap();
    assert_eq!(a.identity, None);
    assert!(
        a.remove_headers.contains(&"x-agent-subject".to_string()),
        "stripped even when exempt"
    );
    for p in ["/healthz?x=1", "/public/docs", "/public"] {
        assert!(w.auth.is_exempt(p), "{p}");
    }
    for p in [
        "/healthz/x",
        "/healthzx",
        "/publicity",
        "/public/../admin",
        "/public/%2e%2e/admin",
        "/public//x",
        "/public;x/y",
        "/public\\..\\admin",
        "healthz",
    ] {
        assert!(!w.auth.is_exempt(p), "{p}");
        assert_eq!(
            w.run(&PlainRequest::new(p), NOW).unwrap_err().code(),
            "token_missing",
            "{p}"
        );
    }
}

// ---------------------------------------------------------------- attacks

#[test]
fn alg_none_in_every_spelling_is_refused() {
    let mut w = world();
    for alg in ["none", "None", "NONE", "nOnE"] {
        let h = b64url_encode(json!({"alg": alg, "kid": "rsa1"}).to_string().as_bytes());
        let p = b64url_encode(claims().to_string().as_bytes());
        for t in [format!("{h}.{p}."), format!("{h}.{p}.c2ln")] {
            assert_eq!(w.code(&t), "alg_not_allowed", "{alg}");
        }
    }
}

#[test]
fn empty_signature_is_refused() {
    let mut w = world();
    let t = mint(hdr("RS256", "rsa1"), claims(), &key("rsa"));
    let stripped = &t[..=t.rfind('.').unwrap()];
    assert_eq!(w.code(stripped), "bad_signature");
}

#[test]
fn hs256_signed_with_the_rsa_public_key_is_refused() {
    let mut w = world();
    let public = rsa_key().to_public_key();
    // The classic confusion: the public key's bytes used as an HMAC secret.
    for secret in [
        trim(&public.n().to_be_bytes()).to_vec(),
        jwks_doc()["keys"][0].to_string().into_bytes(),
    ] {
        let t = mint(hdr("HS256", "rsa1"), claims(), &TestKey::Hmac(secret));
        assert_eq!(w.code(&t), "alg_not_allowed");
    }
    // And the policy cannot be written to allow it.
    let mut p = policy();
    p["providers"][0]["algorithms"] = json!(["RS256", "HS256"]);
    let e = compile_json(p).unwrap_err();
    assert_eq!(e.path, "identity.providers[0].algorithms");
}

#[test]
fn embedded_jwk_is_never_used() {
    let mut w = world();
    let evil = key("evil256");
    let h = json!({"alg": "ES256", "kid": "evil", "jwk": jwk(&evil, "evil")});
    assert_eq!(w.code(&mint(h, claims(), &evil)), "unknown_kid");
    let h = json!({"alg": "ES256", "kid": "ec1", "jwk": jwk(&evil, "ec1")});
    assert_eq!(w.code(&mint(h, claims(), &evil)), "bad_signature");
    let h = json!({"alg": "ES256", "jwk": jwk(&evil, "x")});
    assert_eq!(w.code(&mint(h, claims(), &evil)), "bad_signature");
}

#[test]
fn jku_x5u_x5c_are_never_used() {
    let mut w = world();
    let evil = key("evil256");
    for (m, v) in [
        ("jku", json!("https://evil.test/jwks.json")),
        ("x5u", json!("https://evil.test/cert.pem")),
        ("x5c", json!(["MIIBdummy"])),
    ] {
        let h = json!({"alg": "ES256", "kid": "ec1", m: v});
        assert_eq!(w.code(&mint(h, claims(), &evil)), "bad_signature", "{m}");
        // Nothing gets fetched: inline keys never schedule a fetch.
        assert!(w.keys.due_fetches(NOW).is_empty());
    }
}

#[test]
fn kid_injection_finds_no_key() {
    let mut w = world();
    let evil = key("evil256");
    for kid in [
        "../../../../dev/null",
        "' OR '1'='1",
        "rsa1\u{0}",
        "ec1 ",
        "*",
        "",
    ] {
        let t = mint(json!({"alg": "ES256", "kid": kid}), claims(), &evil);
        assert_eq!(w.code(&t), "unknown_kid", "{kid:?}");
    }
    let t = mint(json!({"alg": "ES256", "kid": 5}), claims(), &key("ec256"));
    assert_eq!(w.code(&t), "token_malformed");
}

#[test]
fn key_type_and_key_alg_must_fit() {
    let mut w = world();
    // An ES256 token naming the RSA key.
    let t = mint(hdr("ES256", "rsa1"), claims(), &key("ec256"));
    assert_eq!(w.code(&t), "unknown_kid");
    // A JWK restricted to PS256 does not verify RS256.
    let mut p = policy();
    p["providers"][0]["local_jwks"]["keys"][0]["alg"] = json!("PS256");
    let mut w = world_from(p);
    assert_eq!(
        w.code(&mint(hdr("RS256", "rsa1"), claims(), &key("rsa"))),
        "unknown_kid"
    );
    assert_eq!(
        w.code(&mint(hdr("PS256", "rsa1"), claims(), &key("rsa"))),
        "ok"
    );
}

#[test]
fn a_key_without_kid_serves_any_kid() {
    let mut p = policy();
    p["providers"][0]["local_jwks"] = json!({"keys": [without(jwk(&key("ec256"), "x"), "kid")]});
    let mut w = world_from(p);
    assert_eq!(
        w.code(&mint(hdr("ES256", "whatever"), claims(), &key("ec256"))),
        "ok"
    );
    assert_eq!(
        w.code(&mint(hdr("ES256", "whatever"), claims(), &key("evil256"))),
        "bad_signature"
    );
    assert_eq!(
        w.code(&mint(hdr("EdDSA", "ed1"), claims(), &key("ed"))),
        "unknown_kid"
    );
}

#[test]
fn alg_outside_the_allowed_set_is_refused() {
    let mut p = policy();
    p["providers"][0]["algorithms"] = json!(["ES256"]);
    let mut w = world_from(p);
    assert_eq!(
        w.code(&mint(hdr("RS256", "rsa1"), claims(), &key("rsa"))),
        "alg_not_allowed"
    );
    assert_eq!(
        w.code(&mint(hdr("ES256", "ec1"), claims(), &key("ec256"))),
        "ok"
    );
    let t = mint(
        json!({"alg": "rs256", "kid": "rsa1"}),
        claims(),
        &key("hmac"),
    );
    assert_eq!(w.code(&t), "alg_not_allowed");
}

#[test]
fn expiry_at_the_skew_boundary() {
    let mut w = world();
    let ok = mint(
        hdr("ES256", "ec1"),
        with(claims(), "exp", json!(NOW - 59)),
        &key("ec256"),
    );
    assert_eq!(w.code(&ok), "ok");
    let late = mint(
        hdr("ES256", "ec1"),
        with(claims(), "exp", json!(NOW - 61)),
        &key("ec256"),
    );
    assert_eq!(w.code(&late), "token_expired");
    let early = mint(
        hdr("ES256", "ec1"),
        with(claims(), "nbf", json!(NOW + 59)),
        &key("ec256"),
    );
    assert_eq!(w.code(&early), "ok");
    let future = mint(
        hdr("ES256", "ec1"),
        with(claims(), "nbf", json!(NOW + 61)),
        &key("ec256"),
    );
    assert_eq!(w.code(&future), "token_not_yet_valid");
    let bad = mint(
        hdr("ES256", "ec1"),
        with(claims(), "exp", json!("tomorrow")),
        &key("ec256"),
    );
    assert_eq!(w.code(&bad), "token_malformed");
}

#[test]
fn missing_exp_is_refused_unless_allowed() {
    let t = mint(hdr("ES256", "ec1"), without(claims(), "exp"), &key("ec256"));
    assert_eq!(world().code(&t), "exp_missing");
    let mut p = policy();
    p["providers"][0]["require_exp"] = json!(false);
    assert_eq!(world_from(p).code(&t), "ok");
}

#[test]
fn wrong_issuer_and_audience() {
    let mut w = world();
    let t = mint(
        hdr("ES256", "ec1"),
        with(claims(), "iss", json!("https://evil.test")),
        &key("ec256"),
    );
    assert_eq!(w.code(&t), "issuer_mismatch");
    let t = mint(hdr("ES256", "ec1"), without(claims(), "iss"), &key("ec256"));
    assert_eq!(w.code(&t), "issuer_mismatch");
    let t = mint(
        hdr("ES256", "ec1"),
        with(claims(), "aud", json!("someone-else")),
        &key("ec256"),
    );
    let e = w.bearer(&t).unwrap_err();
    assert_eq!(e.code(), "audience_mismatch");
    assert_eq!(e.status(), 403);
    assert!(e.to_reply("tg").headers[0]
        .1
        .contains("error=\"insufficient_scope\""));
    let t = mint(hdr("ES256", "ec1"), without(claims(), "aud"), &key("ec256"));
    assert_eq!(w.code(&t), "audience_mismatch");
    let t = mint(
        hdr("ES256", "ec1"),
        with(claims(), "aud", json!(["x", AUD])),
        &key("ec256"),
    );
    assert_eq!(w.code(&t), "ok");
    // A forged token for another audience gets 401, never 403.
    let t = mint(
        hdr("ES256", "ec1"),
        with(claims(), "aud", json!("x")),
        &key("evil256"),
    );
    assert_eq!(w.code(&t), "bad_signature");
}

#[test]
fn modified_payload_or_header_breaks_the_signature() {
    let mut w = world();
    for (alg, k, kid) in [
        ("RS256", "rsa", "rsa1"),
        ("ES256", "ec256", "ec1"),
        ("EdDSA", "ed", "ed1"),
    ] {
        let t = mint(hdr(alg, kid), claims(), &key(k));
        let parts: Vec<&str> = t.split('.').collect();
        let forged = b64url_encode(with(claims(), "sub", json!("admin")).to_string().as_bytes());
        assert_eq!(
            w.code(&format!("{}.{forged}.{}", parts[0], parts[2])),
            "bad_signature",
            "{alg}"
        );
        let h2 = b64url_encode(
            with(hdr(alg, kid), "cty", json!("x"))
                .to_string()
                .as_bytes(),
        );
        assert_eq!(
            w.code(&format!("{h2}.{}.{}", parts[1], parts[2])),
            "bad_signature",
            "{alg}"
        );
    }
}

#[test]
fn non_canonical_base64url_is_refused() {
    let mut w = world();
    let t = mint(hdr("ES256", "ec1"), claims(), &key("ec256"));
    let parts: Vec<&str> = t.split('.').collect();
    // Padding.
    let padded = base64::Engine::encode(
        &base64::engine::general_purpose::URL_SAFE,
        claims().to_string(),
    );
    if padded.ends_with('=') {
        assert_eq!(
            w.code(&format!("{}.{padded}.{}", parts[0], parts[2])),
            "token_malformed"
        );
    }
    assert_eq!(
        w.code(&format!("{}=.{}.{}", parts[0], parts[1], parts[2])),
        "token_malformed"
    );
    // Standard alphabet.
    let std_sig = parts[2].replace('-', "+").replace('_', "/");
    if std_sig != parts[2] {
        assert_eq!(
            w.code(&format!("{}.{}.{std_sig}", parts[0], parts[1])),
            "token_malformed"
        );
    }
    // Non-zero trailing bits in the signature (64 bytes: 4 spare bits).
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let last = parts[2].as_bytes()[parts[2].len() - 1];
    let v = alphabet.iter().position(|c| *c == last).unwrap();
    assert_eq!(v & 0xf, 0);
    let mutated = format!(
        "{}{}",
        &parts[2][..parts[2].len() - 1],
        alphabet[v | 1] as char
    );
    assert!(
        b64url_decode(&mutated).is_none(),
        "the mutation only touches spare bits"
    );
    assert_eq!(
        w.code(&format!("{}.{}.{mutated}", parts[0], parts[1])),
        "token_malformed"
    );
    // Whitespace, wrong part counts, a JWE.
    assert_eq!(
        w.code(&format!("{} .{}.{}", parts[0], parts[1], parts[2])),
        "token_malformed"
    );
    assert_eq!(
        w.code(&format!("{}.{}", parts[0], parts[1])),
        "token_malformed"
    );
    assert_eq!(w.code(&format!("{t}.x.y")), "token_malformed");
}

#[test]
fn ecdsa_zero_signatures_are_refused() {
    let mut w = world();
    for (alg, k, kid, n) in [
        ("ES256", "ec256", "ec1", 32),
        ("ES384", "ec384", "ec384", 48),
    ] {
        let t = mint(hdr(alg, kid), claims(), &key(k));
        let parts: Vec<&str> = t.split('.').collect();
        let real = b64url_decode(parts[2]).unwrap();
        let zero = vec![0u8; 2 * n];
        let mut r0 = real.clone();
        r0[..n].fill(0);
        let mut s0 = real.clone();
        s0[n..].fill(0);
        for sig in [zero, r0, s0] {
            let forged = format!("{}.{}.{}", parts[0], parts[1], b64url_encode(&sig));
            assert_eq!(w.code(&forged), "bad_signature", "{alg}");
            let material = &w
                .keys
                .keys(0)
                .unwrap()
                .candidates(Some(kid), super::jwt::Alg::parse(alg).unwrap())
                .next()
                .unwrap()
                .material;
            assert!(!super::verify::verify(
                super::jwt::Alg::parse(alg).unwrap(),
                material,
                b"",
                &sig
            ));
        }
        // DER instead of r||s, and a truncated signature.
        let short = format!(
            "{}.{}.{}",
            parts[0],
            parts[1],
            b64url_encode(&real[..real.len() - 1])
        );
        assert_eq!(w.code(&short), "bad_signature");
    }
}

#[test]
fn unknown_crit_is_refused() {
    let mut w = world();
    let h = json!({"alg": "ES256", "kid": "ec1", "crit": ["exp"], "exp": NOW + 10});
    assert_eq!(
        w.code(&mint(h, claims(), &key("ec256"))),
        "crit_unsupported"
    );
    let h = json!({"alg": "ES256", "kid": "ec1", "crit": []});
    assert_eq!(
        w.code(&mint(h, claims(), &key("ec256"))),
        "crit_unsupported"
    );
}

#[test]
fn duplicate_claim_names_are_refused() {
    let mut w = world();
    let body = claims().to_string();
    let dup = format!("{{\"sub\":\"admin\",{}", &body[1..]);
    let t = mint_raw(&hdr("ES256", "ec1").to_string(), &dup, &key("ec256"));
    assert_eq!(w.code(&t), "token_malformed");
    let nested = body.replace("\"roles\":", "\"roles\":[\"admin\"],\"roles\":");
    assert_ne!(nested, body);
    let t = mint_raw(&hdr("ES256", "ec1").to_string(), &nested, &key("ec256"));
    assert_eq!(w.code(&t), "token_malformed");
    let h = r#"{"alg":"ES256","kid":"nope","kid":"ec1"}"#;
    let t = mint_raw(h, &body, &key("ec256"));
    assert_eq!(w.code(&t), "token_malformed");
}

#[test]
fn oversized_tokens_are_refused_before_decoding() {
    let mut w = world();
    let big = with(claims(), "pad", json!("x".repeat(9000)));
    let t = mint(hdr("ES256", "ec1"), big, &key("ec256"));
    assert_eq!(w.code(&t), "token_too_large");
    assert_eq!(w.code(&"!".repeat(9000)), "token_too_large");
    let mut p = policy();
    p["providers"][0]["max_token_bytes"] = json!(16384);
    let big = with(claims(), "pad", json!("x".repeat(9000)));
    assert_eq!(
        world_from(p).code(&mint(hdr("ES256", "ec1"), big, &key("ec256"))),
        "ok"
    );
}

#[test]
fn typ_is_checked_when_required() {
    let mut p = policy();
    p["providers"][0]["typ"] = json!("at+jwt");
    let mut w = world_from(p);
    let t = mint(hdr("ES256", "ec1"), claims(), &key("ec256"));
    assert_eq!(w.code(&t), "typ_mismatch");
    let t = mint(
        json!({"alg":"ES256","kid":"ec1","typ":"application/AT+JWT"}),
        claims(),
        &key("ec256"),
    );
    assert_eq!(w.code(&t), "ok");
}

#[test]
fn subject_is_required() {
    let mut w = world();
    let t = mint(hdr("ES256", "ec1"), without(claims(), "sub"), &key("ec256"));
    assert_eq!(w.code(&t), "token_malformed");
}

#[test]
fn every_single_character_change_is_refused() {
    let mut w = world();
    let small = json!({"iss": ISS, "aud": AUD, "sub": "a", "exp": NOW + 60});
    let t = mint(json!({"alg": "EdDSA", "kid": "ed1"}), small, &key("ed"));
    assert_eq!(w.code(&t), "ok");
    w.cache.clear();
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_.=+/ ";
    let bytes = t.as_bytes();
    for i in 0..bytes.len() {
        for c in [b'A', b'_', b'.', alphabet[(i * 7) % alphabet.len()]] {
            if c == bytes[i] {
                continue;
            }
            let mut m = bytes.to_vec();
            m[i] = c;
            let m = String::from_utf8(m).unwrap();
            assert_ne!(w.code(&m), "ok", "position {i} -> {}", c as char);
        }
    }
    assert!(w.cache.is_empty());
}

// ---------------------------------------------------------------- cache

#[test]
fn cache_hits_until_exp_and_never_after() {
    let mut w = world();
    let t = mint(
        hdr("ES256", "ec1"),
        with(claims(), "exp", json!(NOW + 100)),
        &key("ec256"),
    );
    let req = PlainRequest::new("/v1").header("authorization", &format!("Bearer {t}"));
    let first = w.run(&req, NOW).unwrap();
    assert!(!first.from_cache);
    let second = w.run(&req, NOW + 99).unwrap();
    assert!(second.from_cache);
    assert_eq!(first.identity, second.identity);
    assert_eq!(first.set_headers, second.set_headers);
    // At exp the cache no longer answers; inside the skew it re-verifies.
    let third = w.run(&req, NOW + 100).unwrap();
    assert!(!third.from_cache);
    assert_eq!(w.run(&req, NOW + 161).unwrap_err().code(), "token_expired");
}

#[test]
fn cache_entry_needs_an_eligible_source() {
    // A token cached for the svc provider (header x-svc-token) is not accepted
    // from the Authorization header, which only corp reads.
    let mut w = world();
    let c = with(claims(), "iss", json!("https://svc.test"));
    let t = mint(json!({"alg":"HS256"}), c, &key("hmac"));
    w.run(&PlainRequest::new("/x").header("x-svc-token", &t), NOW)
        .unwrap();
    let e = w.bearer(&t).unwrap_err();
    assert_eq!(e.code(), "issuer_mismatch");
}

#[test]
fn refusals_are_not_cached() {
    let mut w = world();
    let t = mint(
        hdr("ES256", "ec1"),
        with(claims(), "aud", json!("x")),
        &key("ec256"),
    );
    assert_eq!(w.code(&t), "audience_mismatch");
    assert!(w.cache.is_empty());
}

// ---------------------------------------------------------------- remote keys

fn remote_policy() -> Value {
    let mut p = policy();
    let prov = p["providers"][0].as_object_mut().unwrap();
    prov.remove("local_jwks");
    prov.insert(
        "remote_jwks".into(),
        json!({"cluster": "idp", "path": "/jwks", "refresh_secs": 600}),
    );
    p
}

#[test]
fn remote_keys_lifecycle() {
    let mut w = world_from(remote_policy());
    let fetches = w.keys.due_fetches(NOW);
    assert_eq!(
        fetches,
        vec![FetchRequest {
            provider_index: 0,
            cluster: "idp".into(),
            path: "/jwks".into(),
            authority: "idp.test".into(),
            timeout_ms: 5000,
        }]
    );
    let t = mint(hdr("ES256", "ec1"), claims(), &key("ec256"));
    assert_eq!(w.code(&t), "jwks_unavailable");
    w.keys.on_fetch_started(0, NOW);
    assert!(w.keys.due_fetches(NOW).is_empty());
    // Only the P-256 key at first.
    let body = json!({"keys": [jwk(&key("ec256"), "ec1")]}).to_string();
    assert_eq!(w.keys.on_fetched(0, NOW, Ok(body.as_bytes())), Ok(1));
    assert_eq!(w.code(&t), "ok");
    // A rotated-in key is unknown: the host asks for a refetch (rate limited).
    let t2 = mint(hdr("EdDSA", "ed1"), claims(), &key("ed"));
    let e = w.bearer(&t2).unwrap_err();
    assert_eq!((e.code(), e.provider_index), ("unknown_kid", Some(0)));
    assert!(!w.keys.on_unknown_kid(0, NOW + 5), "fresh keys");
    assert!(w.keys.on_unknown_kid(0, NOW + 31));
    assert!(w.keys.wants_fetch(0, NOW + 31));
    w.keys.on_fetch_started(0, NOW + 31);
    // A failed refresh keeps the last good keys.
    assert!(w.keys.on_fetched(0, NOW + 32, Err("503".into())).is_err());
    assert!(w.keys.on_fetched(0, NOW + 32, Ok(b"<html>")).is_err());
    let huge = vec![b' '; fetch::MAX_JWKS_BYTES + 1];
    assert!(w
        .keys
        .on_fetched(0, NOW + 32, Ok(&huge))
        .unwrap_err()
        .contains("over"));
    assert_eq!(w.code(&t), "ok");
    let body = jwks_doc().to_string();
    w.keys.on_fetch_started(0, NOW + 40);
    assert_eq!(w.keys.on_fetched(0, NOW + 40, Ok(body.as_bytes())), Ok(4));
    assert_eq!(w.code(&t2), "ok");
    assert_eq!(w.keys.next_wakeup(NOW + 40), Some(600));
}

// ---------------------------------------------------------------- JWKS

#[test]
fn weak_and_malformed_keys_are_refused() {
    use super::jwks::parse_jwk;
    let weak = rsa::RsaPrivateKey::from_pkcs8_pem(include_str!("testdata/rsa1024.pem")).unwrap();
    let wp = weak.to_public_key();
    let weak_jwk = json!({"kty":"RSA","n": b64url_encode(trim(&wp.n().to_be_bytes())), "e":"AQAB"});
    assert!(parse_jwk(&weak_jwk).unwrap_err().contains("1024 bits"));
    let good = jwk(&key("rsa"), "k");
    assert!(parse_jwk(&good).is_ok());
    // Non-minimal (leading zero) encodings of n and e are tolerated.
    let n = b64url_decode(good["n"].as_str().unwrap()).unwrap();
    let padded = with(
        with(good.clone(), "e", json!("AAEAAQ")),
        "n",
        json!(b64url_encode(&[&[0u8][..], &n].concat())),
    );
    assert!(parse_jwk(&padded).is_ok());
    let cases = [
        (with(good.clone(), "use", json!("enc")), "use"),
        (with(good.clone(), "alg", json!("ES256")), "does not fit"),
        (with(good.clone(), "alg", json!("RSA-OAEP")), "unsupported"),
        (with(good.clone(), "key_ops", json!(["encrypt"])), "key_ops"),
        (with(good.clone(), "d", json!("AQAB")), "private"),
        (with(good.clone(), "e", json!("AQ")), "exponent"),
        (with(good.clone(), "e", json!("AAAA")), "exponent"),
        (with(good.clone(), "n", json!("AQAB=")), "base64url"),
        (json!({"kty":"oct","k":"c2VjcmV0"}), "symmetric"),
        (
            json!({"kty":"EC","crv":"P-256","x": b64url_encode(&[1u8;32]),"y": b64url_encode(&[2u8;32])}),
            "not a point",
        ),
        (json!({"kty":"EC","crv":"P-521","x":"AA","y":"AA"}), "curve"),
        (
            json!({"kty":"EC","crv":"P-256","x":"AA","y":"AA"}),
            "32 bytes",
        ),
        (
            json!({"kty":"OKP","crv":"Ed25519","x": b64url_encode(&[0u8;32])}),
            "small-order",
        ),
        (
            json!({"kty":"OKP","crv":"X25519","x": b64url_encode(&[9u8;32])}),
            "curve",
        ),
        (json!({"n":"AQAB"}), "kty"),
        (json!({"kty":"RSA","n":"","e":"AQAB"}), "bits"),
        (json!({"kty":"RSA","n":"AAAA","e":"AQAB"}), "bits"),
        (
            json!({"kty":"RSA","n": good["n"].clone(),"e":""}),
            "exponent",
        ),
        (
            json!({"kty":"RSA","n": good["n"].clone(),"e":"AQ"}),
            "exponent",
        ),
        (json!({"kty":"RSA","n": good["n"].clone(),"e":"Ag"}), "RSA"),
        (
            json!({"kty":"RSA","n": good["n"].clone(),"e":"AQAB", "alg": 5}),
            "alg",
        ),
        (json!({"kty":"EC","crv":"P-256","x":"","y":""}), "32 bytes"),
        (json!({"kty":"OKP","crv":"Ed25519","x":""}), "32 bytes"),
        (json!("RSA"), "object"),
    ];
    for (k, why) in cases {
        let e = parse_jwk(&k).unwrap_err();
        assert!(e.contains(why), "{k}: {e}");
    }
    // A set keeps its usable keys and says what it skipped; none usable fails.
    let set = json!({"keys": [weak_jwk, good]}).to_string();
    let parsed = super::jwks::parse_jwks(set.as_bytes()).unwrap();
    assert_eq!(parsed.set.keys.len(), 1);
    assert_eq!(parsed.skipped.len(), 1);
    assert!(super::jwks::parse_jwks(br#"{"keys":[]}"#).is_err());
    assert!(super::jwks::parse_jwks(br#"{"keys":[{"kty":"oct","k":"AA"}]}"#).is_err());
    assert!(super::jwks::parse_jwks(br#"{"keys":[],"keys":[]}"#).is_err());
}

// ---------------------------------------------------------------- config

#[test]
fn config_errors_name_the_field() {
    type Change = Box<dyn Fn(&mut Value)>;
    let cases: Vec<(Change, &str)> = vec![
        (
            Box::new(|p| p["providers"][0]["audiences"] = json!([])),
            "identity.providers[0].audiences",
        ),
        (
            Box::new(|p| p["providers"][0]["algorithms"] = json!(["none"])),
            "identity.providers[0].algorithms[0]",
        ),
        (
            Box::new(|p| p["providers"][0]["algorithms"] = json!([])),
            "identity.providers[0].algorithms",
        ),
        (
            Box::new(|p| p["providers"][0]["clock_skew_secs"] = json!(3600)),
            "identity.providers[0].clock_skew_secs",
        ),
        (
            Box::new(|p| p["providers"][0]["max_token_bytes"] = json!(10)),
            "identity.providers[0].max_token_bytes",
        ),
        (
            Box::new(|p| p["providers"][1]["name"] = json!("corp")),
            "identity.providers[1].name",
        ),
        (
            Box::new(|p| p["providers"][1]["issuer"] = json!(ISS)),
            "identity.providers[1].issuer",
        ),
        (
            Box::new(|p| p["providers"][1]["hmac_secret"] = json!("c2hvcnQ")),
            "identity.providers[1].hmac_secret",
        ),
        (
            Box::new(|p| p["providers"][0]["claims_to_headers"] = json!({"sub": "authorization"})),
            "identity.providers[0].claims_to_headers.sub",
        ),
        (
            Box::new(|p| p["providers"][0]["claims_to_headers"] = json!({"sub": "bad header"})),
            "identity.providers[0].claims_to_headers.sub",
        ),
        (
            Box::new(|p| {
                p["providers"][0]["remote_jwks"] = json!({"cluster": "idp", "path": "/jwks"});
            }),
            "identity.providers[0].local_jwks",
        ),
        (
            Box::new(|p| p["providers"][0]["local_jwks"]["keys"][0]["use"] = json!("enc")),
            "identity.providers[0].local_jwks",
        ),
        (
            Box::new(|p| p["exempt_paths"] = json!([{"prefix": "/"}])),
            "identity.exempt_paths[0]",
        ),
        (
            Box::new(|p| p["exempt_paths"] = json!([{"exact": "/a/../b"}])),
            "identity.exempt_paths[0]",
        ),
        (
            Box::new(|p| p["exempt_paths"] = json!([{"exact": "/a", "prefix": "/b"}])),
            "identity.exempt_paths[0]",
        ),
        (
            Box::new(|p| p["providers"][0]["from_headers"] = json!([])),
            "identity.providers[0].from_headers",
        ),
    ];
    for (change, path) in cases {
        let mut p = policy();
        change(&mut p);
        let e = compile_json(p).unwrap_err();
        assert_eq!(e.path, path, "{e}");
    }
    let mut p = remote_policy();
    p["providers"][0]["remote_jwks"]["refresh_secs"] = json!(1);
    assert_eq!(
        compile_json(p).unwrap_err().path,
        "identity.providers[0].remote_jwks.refresh_secs"
    );
    // Unknown fields are refused by serde.
    let mut p = policy();
    p["providers"][0]["audience"] = json!("x");
    assert!(serde_json::from_value::<IdentityDoc>(p).is_err());
}

#[test]
fn defaults() {
    let w = world();
    let p = &w.auth.providers()[0];
    assert_eq!(p.clock_skew_secs, 60);
    assert!(p.require_exp);
    assert_eq!(p.max_token_bytes, 8192);
    assert!(!p.forward_token);
    assert_eq!(p.from_headers[0].name, "authorization");
    assert_eq!(p.from_headers[0].value_prefix, "Bearer ");
    assert!(p.from_params.is_empty());
    assert_eq!(w.auth.config.realm, "transit-guard");
}

// ---------------------------------------------------------------- timing

/// Times verification through `authenticate` per algorithm: the first call,
/// cold (cache off: decode, signature, claims) and cached. Ignored by default;
/// run it in V8 with an optimized build:
///
/// ```sh
/// CARGO_TARGET_WASM32_WASIP1_RUNNER="node --no-warnings xtask/wasi-runner.mjs" \
///   cargo test -p transit-guard --release --lib --target wasm32-wasip1 \
///   -- --ignored --nocapture identity_timing
/// ```
#[test]
#[ignore]
fn identity_timing() {
    use std::time::Instant;
    let n: u32 = std::env::var("TG_BENCH_N")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(200);
    let mut p = policy();
    p["providers"][0]["algorithms"] = json!(["RS256", "PS256", "ES256", "ES384", "EdDSA"]);
    let w = world_from(p);
    println!("\n| alg | first call (us) | cold (us/op) | cached (us/op) |");
    println!("| --- | --- | --- | --- |");
    for (alg, k, kid) in [
        ("RS256", "rsa", "rsa1"),
        ("PS256", "rsa", "rsa1"),
        ("ES256", "ec256", "ec1"),
        ("ES384", "ec384", "ec384"),
        ("EdDSA", "ed", "ed1"),
    ] {
        let t = mint(hdr(alg, kid), claims(), &key(k));
        let req = PlainRequest::new("/v1/chat").header("authorization", &format!("Bearer {t}"));
        let mut off = TokenCache::new(0, 300);
        let t0 = Instant::now();
        let a = w.auth.authenticate(&req, &w.keys, &mut off, NOW).unwrap();
        let first = t0.elapsed().as_secs_f64() * 1e6;
        assert!(!a.from_cache);
        let t0 = Instant::now();
        for _ in 0..n {
            w.auth.authenticate(&req, &w.keys, &mut off, NOW).unwrap();
        }
        let cold = t0.elapsed().as_secs_f64() * 1e6 / f64::from(n);
        let mut cache = w.auth.new_cache();
        w.auth.authenticate(&req, &w.keys, &mut cache, NOW).unwrap();
        let m = n * 20;
        let t0 = Instant::now();
        for _ in 0..m {
            assert!(
                w.auth
                    .authenticate(&req, &w.keys, &mut cache, NOW)
                    .unwrap()
                    .from_cache
            );
        }
        let cached = t0.elapsed().as_secs_f64() * 1e6 / f64::from(m);
        println!("| {alg} | {first:.0} | {cold:.1} | {cached:.2} |");
    }
}

// ---------------------------------------------------------------- known answers

/// Published vectors (RFC 7515 appendix A.1, A.2, A.3; RFC 8037 A.4): the
/// signature layer agrees with independent implementations, not only with the
/// signers used in these tests.
#[test]
fn rfc_known_answer_vectors() {
    use super::jwks::{parse_jwk, KeyMaterial};
    use super::jwt::{decode, Alg};
    use super::verify::verify;
    const PAYLOAD: &str = "eyJpc3MiOiJqb2UiLA0KICJleHAiOjEzMDA4MTkzODAsDQogImh0dHA6Ly9leGFtcGxlLmNvbS9pc19yb290Ijp0cnVlfQ";
    let rsa_n = "ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ";
    let cases: Vec<(Alg, KeyMaterial, String)> = vec![
        (
            Alg::HS256,
            KeyMaterial::Hmac(b64url_decode("AyM1SysPpbyDfgZld3umj1qzKObwVMkoqQ-EstJQLr_T-1qS0gZH75aKtMN3Yj0iPS4hcgUuTwjAzZr1Z9CAow").unwrap()),
            format!("eyJ0eXAiOiJKV1QiLA0KICJhbGciOiJIUzI1NiJ9.{PAYLOAD}.dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"),
        ),
        (
            Alg::RS256,
            parse_jwk(&json!({"kty": "RSA", "n": rsa_n, "e": "AQAB"})).unwrap().material,
            format!("eyJhbGciOiJSUzI1NiJ9.{PAYLOAD}.cC4hiUPoj9Eetdgtv3hF80EGrhuB__dzERat0XF9g2VtQgr9PJbu3XOiZj5RZmh7AAuHIm4Bh-0Qc_lF5YKt_O8W2Fp5jujGbds9uJdbF9CUAr7t1dnZcAcQjbKBYNX4BAynRFdiuB--f_nZLgrnbyTyWzO75vRK5h6xBArLIARNPvkSjtQBMHlb1L07Qe7K0GarZRmB_eSN9383LcOLn6_dO--xi12jzDwusC-eOkHWEsqtFZESc6BfI7noOPqvhJ1phCnvWh6IeYI2w9QOYEUipUTI8np6LbgGY9Fs98rqVt5AXLIhWkWywlVmtVrBp0igcN_IoypGlUPQGe77Rw"),
        ),
        (
            Alg::ES256,
            parse_jwk(&json!({"kty": "EC", "crv": "P-256",
                "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"})).unwrap().material,
            format!("eyJhbGciOiJFUzI1NiJ9.{PAYLOAD}.DtEhU3ljbEg8L38VWAfUAqOyKAM6-Xx-F4GawxaepmXFCgfTjDxw5djxLa8ISlSApmWQxfKTUJqPP3-Kg6NU1Q"),
        ),
        (
            Alg::EdDSA,
            parse_jwk(&json!({"kty": "OKP", "crv": "Ed25519",
                "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"})).unwrap().material,
            "eyJhbGciOiJFZERTQSJ9.RXhhbXBsZSBvZiBFZDI1NTE5IHNpZ25pbmc.hgyY0il_MGCjP0JzlnLWG1PPOt7-09PGcvMg3AIbQR6dWbhijcNR4ki4iylGjg5BhVsPt9g7sVvpAr_MuM0KAg".to_string(),
        ),
    ];
    for (alg, key, token) in cases {
        let (input, sig) = token.rsplit_once('.').unwrap();
        let sig = b64url_decode(sig).unwrap();
        assert!(verify(alg, &key, input.as_bytes(), &sig), "{alg}");
        let mut bad = sig.clone();
        let last = bad.len() - 1;
        bad[last] ^= 1;
        assert!(!verify(alg, &key, input.as_bytes(), &bad), "{alg} tampered");
        if alg != Alg::EdDSA {
            // RFC 8037's payload is not JSON; the others go through decode too.
            let d = decode(&token).unwrap();
            assert_eq!(d.alg, alg);
            assert!(verify(alg, &key, d.signing_input, &d.signature));
        }
    }
}
