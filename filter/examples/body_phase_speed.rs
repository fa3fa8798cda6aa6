//! The whole request body phase of a full policy (readability check, a
//! body rule, a request mask) on the `mask_json/pii` bodies of
//! `benches/mask.rs`: what `Flow::on_request_body` costs per body, parse
//! included. Natively, or under Node like `mask_speed`:
//!
//! ```sh
//! cargo run --release -p transit-guard --example body_phase_speed [SECS]
//! valgrind --tool=callgrind target/release/examples/body_phase_speed calls 200
//! ```
//!
//! Prints one markdown row per body, MB/s (10^6 bytes) per second of the
//! process's CPU time. `calls N` instead runs the 64 KB body N times and
//! prints nothing (for callgrind's instruction counts).

// Measurement code, like tests, may panic: it never runs inside Envoy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

#[path = "../benches/data/customers.rs"]
mod customers;

use std::hint::black_box;
use std::time::{Duration, Instant};

use transit_guard::config::Policy;
use transit_guard::flow::{Flow, HeadersStep, RequestBodyStep};

/// A deny rule on the body and every detector on the request body.
const POLICY: &str = r#"{
    "default_action": "allow",
    "masking": {"profiles": {"pii": {"detectors": "all"}}},
    "rules": [
        {"name": "no-drop", "match": {"body": {"keywords": ["drop table"]}}, "action": "deny"},
        {"name": "pii-in", "match": {}, "action": "mask", "mask": {"request": ["pii"]}}
    ]
}"#;

fn one(policy: &Policy, headers: &[(String, String)], body: &[u8]) -> bool {
    let mut flow = Flow::default();
    let held = flow.on_request_headers(policy, headers, true, || None, false);
    assert!(matches!(held, HeadersStep::Hold), "{held:?}");
    matches!(
        flow.on_request_body(policy, headers, black_box(body)),
        RequestBodyStep::Replace(_)
    )
}

#[path = "common/cpu.rs"]
mod cpu;
use cpu::cpu_secs;

fn main() {
    let policy = Policy::from_json(POLICY.as_bytes()).unwrap();
    let mut args = std::env::args().skip(1);
    let first = args.next();
    let headers: Vec<(String, String)> = [
        (":method", "POST"),
        (":authority", "api.internal"),
        (":path", "/customers"),
        ("content-type", "application/json"),
        ("x-request-id", "bench"),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if first.as_deref() == Some("calls") {
        let n: u64 = args.next().and_then(|a| a.parse().ok()).unwrap_or(100);
        let body = customers::customers_json(64 << 10, true);
        for _ in 0..n {
            assert!(one(&policy, &headers, &body));
        }
        return;
    }
    let secs: f64 = first.and_then(|a| a.parse().ok()).unwrap_or(2.0);
    println!("| body | MB/s |");
    println!("| --- | ---: |");
    for (name, size) in [("4KB", 4 << 10), ("64KB", 64 << 10), ("512KB", 512 << 10)] {
        let body = customers::customers_json(size, true);
        assert!(one(&policy, &headers, &body), "the body is masked");
        let warm = Instant::now();
        while warm.elapsed() < Duration::from_secs_f64(secs / 4.0) {
            black_box(one(&policy, &headers, &body));
        }
        let (start, cpu0, mut n) = (Instant::now(), cpu_secs(), 0u64);
        while start.elapsed() < Duration::from_secs_f64(secs) {
            black_box(one(&policy, &headers, &body));
            n += 1;
        }
        let mbs = (body.len() as u64 * n) as f64 / (cpu_secs() - cpu0) / 1e6;
        println!("| {name} | {mbs:.0} |");
    }
}
