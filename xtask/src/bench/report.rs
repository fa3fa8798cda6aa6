//! The markdown report: the side-by-side table, SSE time to first byte,
//! memory, module size, the core's micro-benchmarks and the goals.

use std::fmt::Write as _;

use anyhow::Result;

use super::upstream::{body_name, BODIES};
use super::{fronts_for, Front, Results, ALONE, JWT_AUTHN, TG_FULL, TG_JWT};

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.collect();
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

/// The `q` quantile (0..=1) by nearest rank.
fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).copied().unwrap_or(0.0)
}

/// Mean requests/s of a front on a body (0 when not measured).
fn rps(r: &Results, body: usize, front: usize) -> f64 {
    mean(
        r.http
            .get(&(body, front))
            .into_iter()
            .flatten()
            .map(|s| s.rps),
    )
}

fn index_of(name: &str) -> usize {
    BODIES
        .iter()
        .position(|(p, _)| body_name(p) == name)
        .unwrap_or(0)
}

pub fn render(fronts: &[Front], r: &Results) -> Result<String> {
    let s = &r.settings;
    let mut o = String::new();
    writeln!(
        o,
        "## Benchmark: transit-guard in Envoy 1.40, side by side\n"
    )?;
    writeln!(
        o,
        "One run on this machine ({} cores, load average {} before and {} after: 1, 5, 15 min). \
         Each front Envoy `--concurrency 1`, TLS on both legs, to an upstream Envoy answering \
         fixed customer records; wrk `-t1 -c16`, {} s warm-up per row, then {} alternating \
         rounds of {} s{}. Every request carries the same RS256 token and `Host: customers.internal`. \
         Ratios are to Envoy alone on the same body in the same run.\n",
        std::thread::available_parallelism().map(|n| n.get()).unwrap_or(0),
        r.load_before,
        r.load_after,
        s.warmup_secs,
        s.rounds,
        s.secs,
        if s.quick {
            " (`--quick`: short runs to check the harness, the figures are rough)"
        } else {
            ""
        }
    )?;
    writeln!(
        o,
        "| configuration | body | req/s | p50 ms | p99 ms | ratio to Envoy alone | errors |"
    )?;
    writeln!(o, "| --- | --- | ---: | ---: | ---: | ---: | ---: |")?;
    for (b, (path, _)) in BODIES.iter().enumerate() {
        let base = rps(r, b, ALONE);
        for &f in fronts_for(path) {
            let samples = r.http.get(&(b, f)).cloned().unwrap_or_default();
            let x = rps(r, b, f);
            writeln!(
                o,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
                fronts[f].label,
                body_name(path),
                x,
                mean(samples.iter().map(|x| x.p50_ms)),
                mean(samples.iter().map(|x| x.p99_ms)),
                if base > 0.0 { x / base } else { 0.0 },
                samples.iter().map(|x| x.errors).sum::<u64>()
            )?;
        }
    }

    writeln!(o, "\n### Streamed response (SSE): time to first byte\n")?;
    writeln!(
        o,
        "`GET /customers/stream`: {} events {} ms apart (the first at once, each with an email \
         address) from a small source in `cargo xtask bench`, behind the upstream Envoy; one \
         HTTPS/1.1 connection per front, {} requests per front and round. TTFB is from sending \
         the request to the first body byte.\n",
        super::sse::EVENTS,
        super::sse::INTERVAL.as_millis(),
        s.sse_requests
    )?;
    writeln!(
        o,
        "| configuration | TTFB p50 ms | TTFB max ms | added TTFB (p50) ms | last byte p50 ms |"
    )?;
    writeln!(o, "| --- | ---: | ---: | ---: | ---: |")?;
    let ttfb =
        |f: usize| -> Vec<f64> { r.sse.get(&f).into_iter().flatten().map(|t| t.0).collect() };
    let last =
        |f: usize| -> Vec<f64> { r.sse.get(&f).into_iter().flatten().map(|t| t.1).collect() };
    let base = quantile(&ttfb(ALONE), 0.5);
    let mut held = Vec::new();
    for (f, front) in fronts.iter().enumerate() {
        let (first, end) = (quantile(&ttfb(f), 0.5), quantile(&last(f), 0.5));
        writeln!(
            o,
            "| {} | {:.2} | {:.2} | {:+.2} | {:.1} |",
            front.label,
            first,
            quantile(&ttfb(f), 1.0),
            first - base,
            end
        )?;
        if end > 0.0 && first > 0.8 * end {
            held.push(front.label);
        }
    }
    if !held.is_empty() {
        writeln!(
            o,
            "\nHeld until the stream ended (first byte after 80 % of the stream's time): {}. \
             The full policy masks this route's response, and the filter buffers a masked \
             response whole; streaming masking of SSE is the `sse` branch's work.",
            held.join(", ")
        )?;
    }

    writeln!(o, "\n### Memory and module\n")?;
    writeln!(
        o,
        "| configuration | Envoy heap allocated | Envoy heap size |"
    )?;
    writeln!(o, "| --- | ---: | ---: |")?;
    for (label, allocated, heap) in &r.memory {
        writeln!(
            o,
            "| {label} | {:.1} MiB | {:.1} MiB |",
            *allocated as f64 / 1048576.0,
            *heap as f64 / 1048576.0
        )?;
    }
    writeln!(
        o,
        "\nAfter the run (admin `/memory`). Module: `transit_guard.wasm`, {} KiB.",
        r.module_bytes / 1024
    )?;

    writeln!(o, "\n### JWT verification in the module (V8)\n")?;
    writeln!(
        o,
        "`authenticate` on one token per algorithm, compiled to wasm32-wasip1 (release) and run in \
         Node's V8, the engine Envoy runs the module in (ignored test \
         `identity::tests::identity_timing`): the very first call, then per call with the cache \
         off (cold: decode, checks, signature) and on a cache hit. 2048-bit RSA.\n"
    )?;
    writeln!(o, "{}", r.v8_jwt)?;

    writeln!(o, "\n### Core micro-benchmarks (native, criterion)\n")?;
    writeln!(
        o,
        "`filter/benches/`: `mask` (every built-in detector on customer records), `rules` \
         (example policies; headers phase, and a 4 KB Chat Completions body), `identity` (cold \
         per algorithm, cached). Native code on this machine; in V8 expect slower.\n"
    )?;
    writeln!(o, "| benchmark | time per op | MB/s |")?;
    writeln!(o, "| --- | ---: | ---: |")?;
    for m in &r.micro {
        writeln!(
            o,
            "| {} | {} | {} |",
            m.id,
            duration(m.mean_ns),
            m.mb_per_s.map(|v| format!("{v:.0}")).unwrap_or_default()
        )?;
    }

    writeln!(o, "\n### Goals (reported, not asserted)\n")?;
    writeln!(o, "| goal | this run | |")?;
    writeln!(o, "| --- | ---: | --- |")?;
    let k3 = index_of("3k");
    let full = rps(r, k3, TG_FULL) / rps(r, k3, ALONE).max(f64::MIN_POSITIVE);
    let jwt = rps(r, k3, TG_JWT) / rps(r, k3, JWT_AUTHN).max(f64::MIN_POSITIVE);
    let mask = r
        .micro
        .iter()
        .filter(|m| m.id.starts_with("mask_json/pii/"))
        .filter_map(|m| m.mb_per_s)
        .fold(f64::INFINITY, f64::min);
    let verdict = |ok: bool| if ok { "met" } else { "**below**" };
    writeln!(
        o,
        "| full policy ≥ 0.90 of Envoy alone (3 KB) | {full:.2} | {} |",
        verdict(full >= 0.90)
    )?;
    writeln!(
        o,
        "| JWT only ≥ native `jwt_authn` (3 KB, req/s ratio) | {jwt:.2} | {} |",
        verdict(jwt >= 1.0)
    )?;
    writeln!(
        o,
        "| masking engine ≥ 300 MB/s (slowest `mask_json/pii`, native) | {mask:.0} MB/s | {} |",
        verdict(mask >= 300.0)
    )?;
    Ok(o)
}

/// `812 ns`, `12.3 µs`, `1.24 ms`.
fn duration(ns: f64) -> String {
    if ns < 1e3 {
        format!("{ns:.0} ns")
    } else if ns < 1e6 {
        format!("{:.1} µs", ns / 1e3)
    } else {
        format!("{:.2} ms", ns / 1e6)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quantiles_and_durations() {
        assert_eq!(quantile(&[3.0, 1.0, 2.0], 0.5), 2.0);
        assert_eq!(quantile(&[3.0, 1.0, 2.0], 1.0), 3.0);
        assert_eq!(quantile(&[], 0.5), 0.0);
        assert_eq!(duration(812.0), "812 ns");
        assert_eq!(duration(12_340.0), "12.3 µs");
        assert_eq!(duration(1_240_000.0), "1.24 ms");
    }
}
