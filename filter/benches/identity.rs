//! Token verification per request, natively: a whole `authenticate` call
//! with the cache off (`cold`: decode, checks, signature) for each asymmetric
//! algorithm family, and a cache hit (`cached`). The same calls in V8 are
//! timed by the ignored test `identity::tests::identity_timing`
//! (`cargo xtask bench` runs both).
//!
//! `cargo bench -p transit-guard --bench identity -- --measurement-time 3`

// Bench code, like tests, may panic: it never runs inside Envoy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion};
use rand::SeedableRng;
use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{RandomizedSigner, SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use sha2::Sha256;
use std::hint::black_box;
use transit_guard::identity::jwt::b64url_encode;
use transit_guard::identity::{compile, Authenticator, IdentityDoc, PlainRequest, TokenCache};

const NOW: u64 = 1_700_000_000;
const ISS: &str = "https://idp.bench.test";
const AUD: &str = "agent-gateway";

fn trim(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    &b[i..]
}

/// The test keys' public JWKs, and a token per algorithm, signed by them.
fn keys_and_tokens() -> (Value, Vec<(&'static str, String)>) {
    let rsa =
        rsa::RsaPrivateKey::from_pkcs8_pem(include_str!("../src/identity/testdata/rsa2048.pem"))
            .unwrap();
    let p256 = p256::ecdsa::SigningKey::from_slice(&[7u8; 32]).unwrap();
    let p384 = p384::ecdsa::SigningKey::from_slice(&[9u8; 48]).unwrap();
    let ed = ed25519_dalek::SigningKey::from_bytes(&[5u8; 32]);
    let pub_rsa = rsa.to_public_key();
    let pt256 = p256.verifying_key().to_sec1_bytes();
    let pt384 = p384.verifying_key().to_sec1_bytes();
    let jwks = json!({"keys": [
        {"kty":"RSA","kid":"rsa","n": b64url_encode(trim(&pub_rsa.n().to_be_bytes())),
         "e": b64url_encode(trim(&pub_rsa.e().to_be_bytes()))},
        {"kty":"EC","crv":"P-256","kid":"ec256","x": b64url_encode(&pt256[1..33]), "y": b64url_encode(&pt256[33..65])},
        {"kty":"EC","crv":"P-384","kid":"ec384","x": b64url_encode(&pt384[1..49]), "y": b64url_encode(&pt384[49..97])},
        {"kty":"OKP","crv":"Ed25519","kid":"ed","x": b64url_encode(&ed.verifying_key().to_bytes())}
    ]});
    let claims = json!({"iss": ISS, "aud": AUD, "sub": "agent-7", "exp": NOW + 3600, "iat": NOW,
                        "scope": "read write", "groups": ["dev"]});
    let mut rng = rand::rngs::StdRng::seed_from_u64(42);
    let mut tokens = Vec::new();
    for (alg, kid) in [
        ("RS256", "rsa"),
        ("PS256", "rsa"),
        ("ES256", "ec256"),
        ("ES384", "ec384"),
        ("EdDSA", "ed"),
    ] {
        let input = format!(
            "{}.{}",
            b64url_encode(
                json!({"alg": alg, "kid": kid, "typ": "JWT"})
                    .to_string()
                    .as_bytes()
            ),
            b64url_encode(claims.to_string().as_bytes())
        );
        let sig: Vec<u8> = match alg {
            "RS256" => rsa::pkcs1v15::SigningKey::<Sha256>::new(rsa.clone())
                .sign(input.as_bytes())
                .to_vec(),
            "PS256" => rsa::pss::SigningKey::<Sha256>::new(rsa.clone())
                .sign_with_rng(&mut rng, input.as_bytes())
                .to_vec(),
            "ES256" => {
                let s: p256::ecdsa::Signature = p256.sign(input.as_bytes());
                s.to_bytes().to_vec()
            }
            "ES384" => {
                let s: p384::ecdsa::Signature = p384.sign(input.as_bytes());
                s.to_bytes().to_vec()
            }
            _ => ed.sign(input.as_bytes()).to_bytes().to_vec(),
        };
        tokens.push((alg, format!("{input}.{}", b64url_encode(&sig))));
    }
    (jwks, tokens)
}

fn bench(c: &mut Criterion) {
    let (jwks, tokens) = keys_and_tokens();
    let doc: IdentityDoc = serde_json::from_value(json!({"providers": [{
        "name": "corp", "issuer": ISS, "audiences": [AUD],
        "algorithms": ["RS256", "PS256", "ES256", "ES384", "EdDSA"], "local_jwks": jwks}]}))
    .unwrap();
    let auth = Authenticator::new(compile(doc).unwrap());
    let keys = auth.new_key_store();
    let request =
        |t: &str| PlainRequest::new("/v1/chat").header("authorization", &format!("Bearer {t}"));
    let mut g = c.benchmark_group("identity");
    for (alg, token) in &tokens {
        let req = request(token);
        // Capacity 0: every call verifies the signature.
        let mut off = TokenCache::new(0, 300);
        assert!(
            !auth
                .authenticate(&req, &keys, &mut off, NOW)
                .unwrap()
                .from_cache
        );
        g.bench_function(BenchmarkId::new("cold", alg), |b| {
            b.iter(|| auth.authenticate(black_box(&req), &keys, &mut off, NOW))
        });
    }
    let req = request(&tokens[0].1);
    let mut cache = auth.new_cache();
    auth.authenticate(&req, &keys, &mut cache, NOW).unwrap();
    assert!(
        auth.authenticate(&req, &keys, &mut cache, NOW)
            .unwrap()
            .from_cache
    );
    g.bench_function(BenchmarkId::new("cached", "RS256"), |b| {
        b.iter(|| auth.authenticate(black_box(&req), &keys, &mut cache, NOW))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
