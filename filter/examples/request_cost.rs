//! The module's own work per request, without Envoy: the bench's base-policy
//! request (`GET /customers/3k`, no request body, a 3 KB response in one
//! chunk, the log) through [`HttpFilter`] against a stand-in Envoy whose
//! calls copy what the real ones copy (headers into `String`s, properties
//! into a `Vec`) and do nothing else. What Envoy does around it (entering
//! the VM, the host calls' native side) is the floor the bench measures.
//!
//! ```sh
//! cargo run --release -p transit-guard --example request_cost [SECS]
//! CARGO_TARGET_WASM32_WASIP1_RUNNER="node xtask/wasi-runner.mjs" \
//!   cargo run --release --target wasm32-wasip1 -p transit-guard --example request_cost
//! ```
//!
//! Prints the CPU time per request (µs, per second of the process's CPU
//! time). `REQUEST_RUNS=N` runs N requests untimed instead, for
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

use transit_guard::config::Policy;
use transit_guard::envoy::{Body, CalloutRequest, CalloutResponse, Envoy, HostError, Shared};
use transit_guard::http_filter::{Action, HttpFilter};
use transit_guard::worker::Worker;

/// The bench's base policy (`xtask/src/bench/mod.rs`).
const BASE: &str = r#"{"mode":"enforce","require_tls":true,"limits":{"max_body_bytes":1048576}}"#;

#[path = "common/cpu.rs"]
mod cpu;
use cpu::cpu_secs;

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2.0);
    let worker = Rc::new(Worker::new(Policy::from_json(BASE.as_bytes()).unwrap()));
    let envoy = bench_request();
    let request = || {
        let mut f = HttpFilter::new(7, Some(worker.clone()));
        assert_eq!(f.on_request_headers(&envoy, true), Action::Continue);
        assert_eq!(f.on_response_headers(&envoy, false), Action::Continue);
        assert_eq!(f.on_response_body(&envoy, 3072, true), Action::Continue);
        f.on_log(&envoy);
    };
    if let Some(runs) = std::env::var("REQUEST_RUNS")
        .ok()
        .and_then(|r| r.parse::<u32>().ok())
    {
        for _ in 0..runs {
            request();
        }
        return;
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
    println!("base policy: {us:.2} µs of CPU per request ({n} requests)");
}

/// One bench request as the filter sees it: wrk's headers plus what Envoy
/// adds, and the upstream's answer.
struct BenchEnvoy {
    request: Vec<(&'static str, &'static str)>,
    response: Vec<(&'static str, &'static str)>,
    clock: Cell<u64>,
}

fn bench_request() -> BenchEnvoy {
    BenchEnvoy {
        request: vec![
            (":authority", "customers.internal"),
            (":path", "/customers/3k"),
            (":method", "GET"),
            (":scheme", "https"),
            ("authorization", "Bearer eyJhbGciOiJSUzI1NiJ9.e30.c2ln"),
            ("x-forwarded-for", "127.0.0.1"),
            ("x-forwarded-proto", "https"),
            ("x-request-id", "6f1c2a3e-8f4b-4c1d-9a7e-0b5d2c3f4a6b"),
        ],
        response: vec![
            (":status", "200"),
            ("content-type", "application/json"),
            ("content-length", "3072"),
            ("date", "Wed, 02 Dec 2026 14:00:00 GMT"),
            ("server", "envoy"),
            ("x-envoy-upstream-service-time", "0"),
        ],
        clock: Cell::new(1_800_000_000_000),
    }
}

fn owned(list: &[(&str, &str)]) -> Vec<(String, String)> {
    list.iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn unused(call: &str) -> HostError {
    panic!("the base policy's request made {call}")
}

impl Envoy for BenchEnvoy {
    fn now(&self) -> SystemTime {
        self.clock.set(self.clock.get() + 1);
        SystemTime::UNIX_EPOCH + Duration::from_millis(self.clock.get())
    }
    fn request_headers(&self) -> Result<Vec<(String, String)>, HostError> {
        Ok(owned(&self.request))
    }
    fn set_request_header(&self, _: &str, _: Option<&str>) -> Result<(), HostError> {
        Err(unused("set_request_header"))
    }
    fn response_headers(&self) -> Result<Vec<(String, String)>, HostError> {
        Ok(owned(&self.response))
    }
    fn remove_response_header(&self, _: &str) -> Result<(), HostError> {
        Err(unused("remove_response_header"))
    }
    fn read_body(&self, _: Body, _: usize) -> Result<Vec<u8>, HostError> {
        Err(unused("read_body"))
    }
    fn replace_body(&self, _: Body, _: usize, _: &[u8]) -> Result<(), HostError> {
        Err(unused("replace_body"))
    }
    fn send_reply(&self, _: u16, _: &[(&str, &str)], _: &[u8]) -> Result<(), HostError> {
        Err(unused("send_reply"))
    }
    fn reset_response(&self) -> Result<(), HostError> {
        Err(unused("reset_response"))
    }
    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        (path == ["connection", "tls_version"]).then(|| b"TLSv1.3".to_vec())
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
