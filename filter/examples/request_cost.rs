//! The module's own work per request, without Envoy: the bench's requests
//! (`GET /customers/3k` or `64k`, no request body, the response in 16 KB
//! pieces, the log) through [`HttpFilter`] against a stand-in Envoy whose
//! calls copy what the real ones copy (headers into `String`s, properties
//! and bodies into a `Vec`) and do nothing else, with the bench's policies:
//! base (TLS check, limits), JWT only, and the full policy
//! (`customers-api.json` with the bench's RS256 identity; the response
//! masked). What Envoy does around it (entering the VM, the host calls'
//! native side) is the floor the bench measures.
//!
//! ```sh
//! cargo run --release -p transit-guard --example request_cost [SECS]
//! CARGO_TARGET_WASM32_WASIP1_RUNNER="node xtask/wasi-runner.mjs" \
//!   cargo run --release --target wasm32-wasip1 -p transit-guard --example request_cost
//! ```
//!
//! Prints the CPU time per request (µs, per second of the process's CPU
//! time) for each row; `REQUEST_CASE=i` runs only the i-th (0: base,
//! 1: JWT only, 2: full 3 KB, 3: full 64 KB). `REQUEST_RUNS=N` runs N
//! requests untimed instead, for
//! `valgrind --tool=callgrind` (instructions per request: the difference
//! between two values of N, over their difference).

// Measurement code, like tests, may panic: it never runs inside Envoy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::cell::Cell;
use std::hint::black_box;
use std::rc::Rc;
use std::time::{Duration, Instant, SystemTime};

use rsa::pkcs8::DecodePrivateKey;
use rsa::signature::{SignatureEncoding, Signer};
use rsa::traits::PublicKeyParts;
use serde_json::{json, Value};
use sha2::Sha256;
use transit_guard::config::Policy;
use transit_guard::envoy::{Body, CalloutRequest, CalloutResponse, Envoy, HostError, Shared};
use transit_guard::http_filter::{Action, HttpFilter};
use transit_guard::identity::jwt::b64url_encode;
use transit_guard::worker::Worker;

/// The bench's base policy (`xtask/src/bench/mod.rs`).
const BASE: &str = r#"{"mode":"enforce","require_tls":true,"limits":{"max_body_bytes":1048576}}"#;
/// As in `xtask/src/bench/policies.rs`.
const ISSUER: &str = "https://idp.bench.transit-guard.test";
const AUDIENCE: &str = "agent-gateway";
/// Real Envoy hands a buffered response body to the filter as it reads it
/// from the upstream's TLS connection: 16 KB records, one callback each
/// (with the size buffered so far), the last with `end`.
const CHUNK: usize = 16 * 1024;

#[path = "common/cpu.rs"]
mod cpu;
use cpu::cpu_secs;

/// The bench rows this reproduces: (name, policy, response body size).
#[derive(Clone, Copy)]
enum Row {
    Base,
    JwtOnly,
    Full,
}

const CASES: &[(&str, Row, usize)] = &[
    ("base policy, 3 KB", Row::Base, 3 * 1024),
    ("JWT only, 3 KB", Row::JwtOnly, 3 * 1024),
    ("full policy, 3 KB", Row::Full, 3 * 1024),
    ("full policy, 64 KB", Row::Full, 64 * 1024),
];

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2.0);
    // `REQUEST_CASE=3`: only the fourth row (full policy, 64 KB).
    let only: Option<usize> = std::env::var("REQUEST_CASE")
        .ok()
        .and_then(|c| c.parse().ok());
    let id = BenchIdentity::new();
    for (i, (name, row, size)) in CASES.iter().enumerate() {
        if only.is_some_and(|o| o != i) {
            continue;
        }
        let policy = match row {
            Row::Base => BASE.to_string(),
            Row::JwtOnly => id.jwt_only_policy(),
            Row::Full => id.full_policy(),
        };
        let worker = Rc::new(Worker::new(Policy::from_json(policy.as_bytes()).unwrap()));
        let token = (!matches!(row, Row::Base)).then_some(id.token.as_str());
        let envoy = bench_request(token, *size);
        let request = || {
            let mut f = HttpFilter::new(7, Some(worker.clone()));
            assert_eq!(f.on_request_headers(&envoy, true), Action::Continue);
            // A masked body is held (`Pause`) until its end.
            let _ = f.on_response_headers(&envoy, false);
            let mut sent = 0;
            while sent < envoy.body.len() {
                sent = (sent + CHUNK).min(envoy.body.len());
                let end = sent == envoy.body.len();
                let step = f.on_response_body(&envoy, sent, end);
                assert!(
                    !end || step == Action::Continue,
                    "{name}: the body was refused"
                );
            }
            f.on_log(&envoy);
            assert!(
                envoy.sent_reply.get().is_none(),
                "{name}: the request was refused"
            );
        };
        if let Some(runs) = std::env::var("REQUEST_RUNS")
            .ok()
            .and_then(|r| r.parse::<u32>().ok())
        {
            for _ in 0..runs {
                request();
            }
            continue;
        }
        let warm = Instant::now();
        while warm.elapsed() < Duration::from_secs_f64(secs / 4.0) {
            request();
        }
        let (start, cpu0, mut n) = (Instant::now(), cpu_secs(), 0u64);
        while start.elapsed() < Duration::from_secs_f64(secs) {
            request();
            n += 1;
        }
        let us = (cpu_secs() - cpu0) * 1e6 / n as f64;
        println!("{name}: {us:.2} µs of CPU per request ({n} requests)");
    }
}

/// The bench's identity (`xtask/src/bench/policies.rs`): the RS256 test
/// key, and one token with scope `customers:read`, valid past the stand-in
/// Envoy's clock.
struct BenchIdentity {
    jwk: Value,
    token: String,
}

impl BenchIdentity {
    fn new() -> BenchIdentity {
        let key = rsa::RsaPrivateKey::from_pkcs8_pem(include_str!(
            "../src/identity/testdata/rsa2048.pem"
        ))
        .unwrap();
        let public = key.to_public_key();
        let unpadded = |b: Vec<u8>| {
            let zeros = b.iter().take_while(|x| **x == 0).count();
            b64url_encode(&b[zeros..])
        };
        let jwk = json!({"kty": "RSA", "kid": "bench-rsa", "use": "sig",
            "n": unpadded(public.n().to_be_bytes().to_vec()),
            "e": unpadded(public.e().to_be_bytes().to_vec())});
        let now = CLOCK_START_MS / 1000;
        let claims = json!({"iss": ISSUER, "aud": AUDIENCE, "sub": "bench-agent",
            "iat": now, "nbf": now, "exp": now + 3600,
            "scope": "customers:read", "groups": ["support"]});
        let header = json!({"alg": "RS256", "kid": "bench-rsa", "typ": "JWT"});
        let input = format!(
            "{}.{}",
            b64url_encode(header.to_string().as_bytes()),
            b64url_encode(claims.to_string().as_bytes())
        );
        let signature = rsa::pkcs1v15::SigningKey::<Sha256>::new(key)
            .sign(input.as_bytes())
            .to_vec();
        let token = format!("{input}.{}", b64url_encode(&signature));
        BenchIdentity { jwk, token }
    }

    fn identity_section(&self) -> Value {
        json!({"providers": [{"name": "bench", "issuer": ISSUER, "audiences": [AUDIENCE],
            "algorithms": ["RS256"], "local_jwks": {"keys": [self.jwk]}}]})
    }

    fn jwt_only_policy(&self) -> String {
        json!({"mode": "enforce", "require_tls": true, "identity": self.identity_section()})
            .to_string()
    }

    /// `examples/policies/customers-api.json` with the bench's identity.
    fn full_policy(&self) -> String {
        let mut policy: Value =
            serde_json::from_str(include_str!("../../examples/policies/customers-api.json"))
                .unwrap();
        policy["identity"] = self.identity_section();
        policy.to_string()
    }
}

/// The bench upstream's customer records to about `size` bytes (as
/// `xtask/src/bench/upstream.rs` writes them: four of seven values masked).
fn customer_records(size: usize) -> Vec<u8> {
    use std::fmt::Write as _;
    let mut out = String::from("{\"customers\":[");
    let mut i = 0u32;
    while out.len() + 260 < size {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"id\":\"c-{i:06}\",\"name\":\"Customer {i}\",\"email\":\"customer{i}@example.com\",\
             \"phone\":\"+1 415 555 {:04}\",\"card\":\"4111 1111 1111 1111\",\"ssn\":\"123-45-6789\",\
             \"note\":\"order {i} shipped, contact by email\"}}",
            i % 10000
        );
        i += 1;
    }
    out.push_str("]}");
    out.into_bytes()
}

const CLOCK_START_MS: u64 = 1_800_000_000_000;

/// One bench request as the filter sees it: wrk's headers plus what Envoy
/// adds, and the upstream's answer.
struct BenchEnvoy {
    request: Vec<(&'static str, String)>,
    response: Vec<(&'static str, String)>,
    body: Vec<u8>,
    clock: Cell<u64>,
    /// A local reply's status: a refusal, which the bench never sees.
    sent_reply: Cell<Option<u16>>,
}

fn bench_request(token: Option<&str>, size: usize) -> BenchEnvoy {
    let body = customer_records(size);
    let token = token.unwrap_or("eyJhbGciOiJSUzI1NiJ9.e30.c2ln");
    let s = |v: &str| v.to_string();
    BenchEnvoy {
        request: vec![
            (":authority", s("customers.internal")),
            (":path", format!("/customers/{}k", size / 1024)),
            (":method", s("GET")),
            (":scheme", s("https")),
            ("authorization", format!("Bearer {token}")),
            ("x-forwarded-for", s("127.0.0.1")),
            ("x-forwarded-proto", s("https")),
            ("x-request-id", s("6f1c2a3e-8f4b-4c1d-9a7e-0b5d2c3f4a6b")),
        ],
        response: vec![
            (":status", s("200")),
            ("content-type", s("application/json")),
            ("content-length", body.len().to_string()),
            ("date", s("Wed, 02 Dec 2026 14:00:00 GMT")),
            ("server", s("envoy")),
            ("x-envoy-upstream-service-time", s("0")),
        ],
        body,
        clock: Cell::new(CLOCK_START_MS),
        sent_reply: Cell::new(None),
    }
}

fn owned(list: &[(&str, String)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.clone()))
        .collect()
}

fn unused(call: &str) -> HostError {
    panic!("the bench's request made {call}")
}

impl Envoy for BenchEnvoy {
    fn now(&self) -> SystemTime {
        self.clock.set(self.clock.get() + 1);
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.clock.get())
    }
    fn request_headers(&self) -> Result<Vec<(String, String)>, HostError> {
        Ok(owned(&self.request))
    }
    fn set_request_header(&self, name: &str, value: Option<&str>) -> Result<(), HostError> {
        black_box((name, value));
        Ok(())
    }
    fn response_headers(&self) -> Result<Vec<(String, String)>, HostError> {
        Ok(owned(&self.response))
    }
    fn remove_response_header(&self, name: &str) -> Result<(), HostError> {
        black_box(name);
        Ok(())
    }
    /// The body buffered so far, copied out (as `get_buffer_bytes` does).
    fn read_body(&self, body: Body, size: usize) -> Result<Vec<u8>, HostError> {
        assert!(matches!(body, Body::Response));
        Ok(self.body[..size].to_vec())
    }
    /// Copied in (as `set_buffer_bytes` does).
    fn replace_body(&self, _: Body, _: usize, new: &[u8]) -> Result<(), HostError> {
        black_box(new.to_vec());
        Ok(())
    }
    fn send_reply(&self, status: u16, _: &[(&str, &str)], _: &[u8]) -> Result<(), HostError> {
        self.sent_reply.set(Some(status));
        Ok(())
    }
    fn reset_response(&self) -> Result<(), HostError> {
        Err(unused("reset_response"))
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        match path {
            ["connection", "tls_version"] => Some(b"TLSv1.3".to_vec()),
            // Envoy's properties of numbers are 8 bytes, little-endian.
            ["response", "size"] => Some((self.body.len() as u64).to_le_bytes().to_vec()),
            _ => None,
        }
    }
    fn set_property(&self, _: &[&str], value: &[u8]) -> Result<(), HostError> {
        black_box(value);
        Ok(())
    }
    fn resume_stream(&self, _: u32) -> Result<(), HostError> {
        Err(unused("resume_stream"))
    }
    fn reply_to_stream(
        &self,
        _: u32,
        _: u16,
        _: &[(&str, &str)],
        _: &[u8],
    ) -> Result<(), HostError> {
        Err(unused("reply_to_stream"))
    }
    fn dispatch(&self, _: &CalloutRequest) -> Result<u32, HostError> {
        Err(unused("dispatch"))
    }
    fn callout_response(&self, _: usize) -> CalloutResponse {
        CalloutResponse::default()
    }
    fn shared_get(&self, _: &str) -> Result<Shared, HostError> {
        Err(unused("shared_get"))
    }
    fn shared_set(&self, _: &str, _: &[u8], _: Option<u32>) -> Result<(), HostError> {
        Err(unused("shared_set"))
    }
    fn count(&self, family: &'static str, label: &str, n: u64) {
        black_box((family, label, n));
    }
}
