//! Masking throughput (MB/s) on JSON API responses of 4 KB, 64 KB and 1 MB
//! with every built-in detector on (`pii/*`), plus: a body with nothing to
//! mask (`clean`), the strategies' extra cost (`strategies`: HMAC per email,
//! partial cards, a pointer and a field), and the same body read as text.
//!
//! `cargo bench -p transit-guard --bench mask -- --measurement-time 3`

// Bench code, like tests, may panic: it never runs inside Envoy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use criterion::{criterion_group, criterion_main, BenchmarkId, Criterion, Throughput};
use std::hint::black_box;

#[path = "data/customers.rs"]
mod customers;
use customers::{customers_json, masker, masker_with_strategies};

fn bench(c: &mut Criterion) {
    let m = masker();
    let mut g = c.benchmark_group("mask_json");
    for (name, size) in [("4KB", 4 << 10), ("64KB", 64 << 10), ("1MB", 1 << 20)] {
        let body = customers_json(size, true);
        assert!(m.mask(Some("application/json"), &body).body.is_some());
        g.throughput(Throughput::Bytes(body.len() as u64));
        g.bench_with_input(BenchmarkId::new("pii", name), &body, |b, body| {
            b.iter(|| m.mask(Some("application/json"), black_box(body)))
        });
    }
    let clean = customers_json(64 << 10, false);
    g.throughput(Throughput::Bytes(clean.len() as u64));
    g.bench_with_input(BenchmarkId::new("clean", "64KB"), &clean, |b, body| {
        b.iter(|| m.mask(Some("application/json"), black_box(body)))
    });
    let strategies = masker_with_strategies();
    let body = customers_json(64 << 10, true);
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_with_input(BenchmarkId::new("strategies", "64KB"), &body, |b, body| {
        b.iter(|| strategies.mask(Some("application/json"), black_box(body)))
    });
    let text = customers_json(64 << 10, true);
    g.throughput(Throughput::Bytes(text.len() as u64));
    g.bench_with_input(BenchmarkId::new("as_text", "64KB"), &text, |b, body| {
        b.iter(|| m.mask(Some("text/plain"), black_box(body)))
    });
    g.finish();
}

/// A streamed chat completion: 200 chunks of ~4 bytes of prose each (an
/// email and a card among them), as one SSE body pushed event by event
/// through `stream::ResponseStream`. Reported per event (`elements`).
fn bench_sse(c: &mut Criterion) {
    use transit_guard::sse::{ResponseStream, Stage};
    let m = masker();
    let text =
        "Sure, I can help. Contact ada.lovelace@example.com or pay with 4111 1111 1111 1111 \
                today; the order ships tomorrow and the invoice follows by mail. "
            .repeat(6);
    let mut events: Vec<Vec<u8>> = Vec::new();
    let bytes = text.as_bytes();
    for part in bytes.chunks(4) {
        let delta = String::from_utf8_lossy(part);
        let chunk = serde_json::json!({"id":"chatcmpl-1","object":"chat.completion.chunk",
            "created":1700000000,"model":"gpt-4o-mini",
            "choices":[{"index":0,"delta":{"content":delta},"logprobs":null,"finish_reason":null}]});
        events.push(format!("data: {chunk}\n\n").into_bytes());
    }
    events.push(b"data: [DONE]\n\n".to_vec());
    let mut g = c.benchmark_group("sse");
    g.throughput(Throughput::Elements(events.len() as u64));
    g.bench_function("chat_event", |b| {
        b.iter(|| {
            let mut s = ResponseStream::new(1 << 20);
            let mut n = 0;
            for e in &events {
                n += s.push(&[Stage::Mask(&m)], black_box(e)).unwrap().len();
            }
            n + s.finish(&[Stage::Mask(&m)]).len()
        })
    });
    g.finish();
}

criterion_group!(benches, bench, bench_sse);
criterion_main!(benches);
