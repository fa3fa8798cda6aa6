//! Masking throughput on the `mask_json/pii` bodies of `benches/mask.rs`,
//! runnable where criterion is not: compiled to wasm32-wasip1 and run under
//! Node, it measures the engine in V8, the runtime Envoy gives the module.
//! `cargo xtask bench` runs it so; natively it prints the same table.
//!
//! ```sh
//! CARGO_TARGET_WASM32_WASIP1_RUNNER="node xtask/wasi-runner.mjs" \
//!   cargo run --release --target wasm32-wasip1 -p transit-guard --example mask_speed [SECS]
//! ```
//!
//! Prints one markdown row per body: `| 64KB | 412 |` (MB/s, 10^6 bytes).

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

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2.0);
    let m = customers::masker();
    println!("| body | MB/s |");
    println!("| --- | ---: |");
    for (name, size) in [("4KB", 4 << 10), ("64KB", 64 << 10), ("1MB", 1 << 20)] {
        let body = customers::customers_json(size, true);
        let mask = || m.mask(Some("application/json"), black_box(&body));
        assert!(mask().body.is_some(), "nothing masked in {name}");
        // Warm up (V8 tiers the code up), then time whole batches for `secs`.
        let warm = Instant::now();
        while warm.elapsed() < Duration::from_secs_f64(secs / 4.0) {
            black_box(mask());
        }
        let (start, mut n) = (Instant::now(), 0u64);
        while start.elapsed() < Duration::from_secs_f64(secs) {
            black_box(mask());
            n += 1;
        }
        let mbs = (body.len() as u64 * n) as f64 / start.elapsed().as_secs_f64() / 1e6;
        println!("| {name} | {mbs:.0} |");
    }
}
