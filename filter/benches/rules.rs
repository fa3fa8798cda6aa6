//! Rule evaluation per request on the example policies: the headers phase
//! (what every request pays) and the body phase of a 4 KB Chat Completions
//! request (OpenAI matchers, keywords, tools, models on the parsed body).
//!
//! `cargo bench -p transit-guard --bench rules -- --measurement-time 3`

// Bench code, like tests, may panic: it never runs inside Envoy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use serde_json::json;
use std::hint::black_box;
use transit_guard::config::Policy;
use transit_guard::identity::Identity;
use transit_guard::rules::{RequestView, Ruling};

/// A Chat Completions request of about `size` bytes: a system prompt, a
/// conversation of user and assistant turns, two tools.
fn chat_body(size: usize) -> Vec<u8> {
    let mut messages = vec![json!({"role": "system",
        "content": "You are a support agent for the customers API. Answer briefly and cite the record id."})];
    let mut i = 0;
    while serde_json::to_vec(&messages).unwrap().len() + 250 < size {
        messages.push(json!({"role": if i % 2 == 0 { "user" } else { "assistant" },
            "content": format!("Turn {i}: the customer asked about invoice {} and whether the refund \
                                for last month was processed; please check the ledger and reply.", 1000 + i)}));
        i += 1;
    }
    serde_json::to_vec(&json!({
        "model": "gpt-4o-mini",
        "messages": messages,
        "tools": [
            {"type": "function", "function": {"name": "lookup_customer", "parameters": {"type": "object"}}},
            {"type": "function", "function": {"name": "list_invoices", "parameters": {"type": "object"}}}
        ],
        "temperature": 0.2
    }))
    .unwrap()
}

fn headers(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
    pairs
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

fn bench(c: &mut Criterion) {
    let mut g = c.benchmark_group("rules");

    // customers-api.json: a masked read, decided on the headers.
    let customers = Policy::from_json(include_bytes!("../../examples/policies/customers-api.json"))
        .unwrap()
        .rules;
    let reader = Identity {
        provider: "corp".into(),
        issuer: "https://idp.test".into(),
        subject: "agent-7".into(),
        groups: vec!["support".into()],
        scopes: vec!["customers:read".into()],
    };
    let h = headers(&[
        (":method", "GET"),
        (":authority", "customers.internal"),
        (":path", "/customers/42?expand=orders"),
        ("accept", "application/json"),
        ("user-agent", "agent/1.0"),
        ("x-request-id", "5f0c1c9e-3f7a-4d1b-9c55-1f4a2b3c4d5e"),
    ]);
    let req = RequestView {
        method: "GET",
        authority: "customers.internal",
        path: "/customers/42?expand=orders",
        headers: &h,
        identity: Some(&reader),
        body: None,
    };
    let e = customers.evaluate(&req);
    assert!(
        matches!(e.decision, Ruling::Mask(_)) && !e.needs_body,
        "{e:?}"
    );
    g.bench_function("customers_api/headers", |b| {
        b.iter(|| customers.evaluate(black_box(&req)))
    });

    // openai-egress.json: a chat completion, headers then the 4 KB body.
    let openai = Policy::from_json(include_bytes!("../../examples/policies/openai-egress.json"))
        .unwrap()
        .rules;
    let agent = Identity {
        groups: vec!["agents".into()],
        ..reader.clone()
    };
    let h = headers(&[
        (":method", "POST"),
        (":authority", "api.openai.com"),
        (":path", "/v1/chat/completions"),
        ("content-type", "application/json"),
        ("authorization", "Bearer sk-redacted"),
        ("user-agent", "agent/1.0"),
    ]);
    let body = chat_body(4096);
    let mut req = RequestView {
        method: "POST",
        authority: "api.openai.com",
        path: "/v1/chat/completions",
        headers: &h,
        identity: Some(&agent),
        body: None,
    };
    assert!(openai.evaluate(&req).needs_body);
    g.bench_function("openai_egress/headers", |b| {
        b.iter(|| openai.evaluate(black_box(&req)))
    });
    req.body = Some(&body);
    let e = openai.evaluate(&req);
    assert!(
        matches!(e.decision, Ruling::Mask(_)) && !e.needs_body,
        "{e:?}"
    );
    g.throughput(Throughput::Bytes(body.len() as u64));
    g.bench_function("openai_egress/body_4KB", |b| {
        b.iter(|| openai.evaluate(black_box(&req)))
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);
