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
//! Prints one markdown row per body: `| 64KB | 412 |`, MB/s (10^6 bytes)
//! per second of the process's CPU time, not of wall time: on a shared
//! machine the time spent waiting for a core is not the engine's.
//!
//! `MASK_RUNS=N` masks each body N times instead, untimed: for
//! `valgrind --tool=callgrind`, whose instruction counts (minus a run with
//! `MASK_RUNS=0`) stay put on a busy machine where timings do not.

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

#[path = "common/cpu.rs"]
mod cpu;
use cpu::cpu_secs;

fn main() {
    let secs: f64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(2.0);
    // `MASK_DETECTORS='["email","ssn"]'`: time a subset (what each detector costs).
    let m = match std::env::var("MASK_DETECTORS") {
        Ok(list) => customers::profile(&format!(r#"{{"detectors":{list}}}"#)),
        Err(_) => customers::masker(),
    };
    if let Some(runs) = std::env::var("MASK_RUNS")
        .ok()
        .and_then(|r| r.parse::<u32>().ok())
    {
        for size in [4 << 10, 64 << 10, 1 << 20] {
            let body = customers::customers_json(size, true);
            for _ in 0..runs {
                black_box(m.mask(Some("application/json"), black_box(&body)));
            }
        }
        return;
    }
    println!("| body | MB/s |");
    println!("| --- | ---: |");
    for (name, size) in [("4KB", 4 << 10), ("64KB", 64 << 10), ("1MB", 1 << 20)] {
        let body = customers::customers_json(size, true);
        let mask = || m.mask(Some("application/json"), black_box(&body));
        black_box(mask());
        // Warm up (V8 tiers the code up), then time whole batches for `secs`.
        let warm = Instant::now();
        while warm.elapsed() < Duration::from_secs_f64(secs / 4.0) {
            black_box(mask());
        }
        let (start, cpu0, mut n) = (Instant::now(), cpu_secs(), 0u64);
        while start.elapsed() < Duration::from_secs_f64(secs) {
            black_box(mask());
            n += 1;
        }
        let mbs = (body.len() as u64 * n) as f64 / (cpu_secs() - cpu0) / 1e6;
        println!("| {name} | {mbs:.0} |");
    }
}
