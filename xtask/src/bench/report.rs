//! The markdown report: the side-by-side table, SSE time to first byte,
//! memory, module size, the core's micro-benchmarks and the goals.

use std::fmt::Write as _;

use anyhow::Result;

use super::upstream::{body_name, BODIES};
use super::{
    fronts_for, memory, wrk, Front, Results, ALONE, ALONE_LOGS, FLOOR_CALLS, FLOOR_EMPTY,
    FLOOR_HEADERS, JWT_AUTHN, TG_BASE, TG_FULL, TG_JWT,
};

/// The `q` quantile (0..=1) by nearest rank.
fn quantile(xs: &[f64], q: f64) -> f64 {
    let mut v = xs.to_vec();
    v.sort_by(f64::total_cmp);
    let i = ((v.len() as f64 - 1.0) * q).round() as usize;
    v.get(i).copied().unwrap_or(0.0)
}

/// Min, median and max of per-round figures.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Spread {
    pub min: f64,
    pub median: f64,
    pub max: f64,
}

impl Spread {
    pub fn of(xs: &[f64]) -> Spread {
        Spread {
            min: quantile(xs, 0.0),
            median: quantile(xs, 0.5),
            max: quantile(xs, 1.0),
        }
    }
}

impl std::fmt::Display for Spread {
    /// `0.74 (0.71-0.76)`: the median, then the range.
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:.2} ({:.2}-{:.2})", self.median, self.min, self.max)
    }
}

fn samples(r: &Results, body: usize, front: usize) -> &[wrk::Sample] {
    r.http.get(&(body, front)).map(Vec::as_slice).unwrap_or(&[])
}

/// Per round, `front`'s figure against `base`'s on the same body: req/s as
/// front / base, CPU per request as base / front, so both read "fraction of
/// the baseline's throughput" (1.0 = as cheap, higher = better).
fn ratios(r: &Results, body: usize, front: usize, base: usize, cpu: bool) -> Spread {
    let xs: Vec<f64> = samples(r, body, front)
        .iter()
        .zip(samples(r, body, base))
        .map(|(f, b)| {
            if cpu {
                b.cpu_us_per_req / f.cpu_us_per_req.max(f64::MIN_POSITIVE)
            } else {
                f.rps / b.rps.max(f64::MIN_POSITIVE)
            }
        })
        .collect();
    Spread::of(&xs)
}

fn median_of(r: &Results, body: usize, front: usize, field: fn(&wrk::Sample) -> f64) -> f64 {
    let xs: Vec<f64> = samples(r, body, front).iter().map(field).collect();
    quantile(&xs, 0.5)
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
         rounds of {} s{}. {} Every request carries the same RS256 token and \
         `Host: customers.internal`.\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        r.load_before,
        r.load_after,
        s.warmup_secs,
        s.rounds,
        s.secs,
        if s.quick {
            " (`--quick`: short runs to check the harness, the figures are rough)"
        } else {
            ""
        },
        if s.pinned {
            "The front under test runs alone on core 0 (`taskset`), the upstream Envoy and wrk on core 1."
        } else {
            "**Not pinned** (fewer than 2 cores, or no `taskset`): fronts, upstream and wrk share the cores."
        }
    )?;
    writeln!(
        o,
        "Ratios are per round against Envoy alone on the same body in the same round, shown as \
         median (min-max over the rounds). CPU is the front Envoy's user + system time (all \
         threads, `/proc/<pid>/stat`) over the round, per completed request; its ratio is Envoy \
         alone's CPU per request over the row's (1.00 = costs what Envoy alone costs). `busy` is \
         the front's CPU time over wall time: near 1.00 the front's core was the bottleneck; \
         lower, the load generator or upstream was.\n"
    )?;
    writeln!(
        o,
        "| configuration | body | req/s | ratio (req/s) | CPU µs/req | ratio (CPU) | busy | p50 ms | p99 ms | errors |"
    )?;
    writeln!(
        o,
        "| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |"
    )?;
    for (b, (path, _)) in BODIES.iter().enumerate() {
        for &f in fronts_for(path) {
            writeln!(
                o,
                "| {} | {} | {:.0} | {} | {:.1} | {} | {:.2} | {:.2} | {:.2} | {} |",
                fronts[f].label,
                body_name(path),
                median_of(r, b, f, |x| x.rps),
                ratios(r, b, f, ALONE, false),
                median_of(r, b, f, |x| x.cpu_us_per_req),
                ratios(r, b, f, ALONE, true),
                median_of(r, b, f, |x| x.busy),
                median_of(r, b, f, |x| x.p50_ms),
                median_of(r, b, f, |x| x.p99_ms),
                samples(r, b, f).iter().map(|x| x.errors).sum::<u64>()
            )?;
        }
    }
    let k3 = index_of("3k");
    writeln!(
        o,
        "\ntransit-guard JWT only against Envoy's `jwt_authn` (3 KB, same rounds): req/s {}, \
         CPU {}.",
        ratios(r, k3, TG_JWT, JWT_AUTHN, false),
        ratios(r, k3, TG_JWT, JWT_AUTHN, true)
    )?;
    writeln!(
        o,
        "\nThe floor (3 KB, same rounds, CPU per request against Envoy alone): the gateway's two \
         access logs without a module {}; a Rust proxy-wasm module that does nothing (with those \
         logs) {}; one that reads the request headers and sets one property at log, {}; one \
         that makes the base policy's host calls and nothing else, {}. transit-guard's base \
         policy against the empty module: {}; against the one with the two host calls: {}; \
         against the one with its own host calls: {} (1.00 = costs what that floor costs).",
        ratios(r, k3, ALONE_LOGS, ALONE, true),
        ratios(r, k3, FLOOR_EMPTY, ALONE, true),
        ratios(r, k3, FLOOR_HEADERS, ALONE, true),
        ratios(r, k3, FLOOR_CALLS, ALONE, true),
        ratios(r, k3, TG_BASE, FLOOR_EMPTY, true),
        ratios(r, k3, TG_BASE, FLOOR_HEADERS, true),
        ratios(r, k3, TG_BASE, FLOOR_CALLS, true)
    )?;

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
        "Fresh fronts per worker count (`--concurrency`), each driven for a moment on the 3 KB \
         and 64 KB bodies, then read: Envoy's allocator (admin `/memory`, `allocated`) and the \
         process's resident memory (`VmRSS`, which also counts V8's own mappings: compiled \
         code, each VM's wasm memory). Each worker has its own VM: what the module adds per \
         worker is the slope between 1 and 4 workers; the rest is paid once per process.\n"
    )?;
    writeln!(
        o,
        "| workers | allocated: alone | with the module | added | RSS: alone | with the module | added |"
    )?;
    writeln!(o, "| ---: | ---: | ---: | ---: | ---: | ---: | ---: |")?;
    for w in memory::WORKERS {
        let Some((alone, tg)) = heap_pair(r, w) else {
            continue;
        };
        writeln!(
            o,
            "| {w} | {:.1} MiB | {:.1} MiB | +{:.1} MiB | {:.1} MiB | {:.1} MiB | +{:.1} MiB |",
            mib(alone.allocated),
            mib(tg.allocated),
            added(alone.allocated, tg.allocated),
            mib(alone.rss),
            mib(tg.rss),
            added(alone.rss, tg.rss),
        )?;
    }
    if let Some((alloc, rss)) = per_worker(r) {
        writeln!(
            o,
            "\nPer worker (slope from 1 to 4 workers): allocated {alloc:+.1} MiB, RSS {rss:+.1} MiB."
        )?;
    }
    writeln!(
        o,
        "\nModule: `transit_guard.wasm`, {} KiB ({} bytes).",
        r.module_bytes / 1024,
        r.module_bytes
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

    writeln!(o, "\n### Masking per CPU second, native and in V8\n")?;
    writeln!(
        o,
        "`filter/examples/mask_speed.rs` natively and compiled to wasm32-wasip1 (release) and \
         run under Node (V8, the engine Envoy runs the module in): the `mask_json/pii` bodies of \
         the criterion bench, every built-in detector on, MB per second of the process's CPU \
         time (criterion above is wall time, which a busy machine inflates).\n"
    )?;
    writeln!(o, "| body | MB/s native | MB/s in V8 |")?;
    writeln!(o, "| --- | ---: | ---: |")?;
    for (name, v8) in &r.v8_mask {
        let native = r
            .native_mask
            .iter()
            .find(|(n, _)| n == name)
            .map_or("-".to_string(), |(_, v)| format!("{v:.0}"));
        writeln!(o, "| {name} | {native} | {v8:.0} |")?;
    }

    goals(&mut o, r)?;
    Ok(o)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / 1048576.0
}

/// MiB the module adds over Envoy alone (may be negative: allocator noise).
fn added(alone: u64, with: u64) -> f64 {
    mib(with) - mib(alone)
}

/// What one more worker costs with the module over Envoy alone, in MiB of
/// (allocated, RSS): the slope of the added memory from the fewest to the
/// most workers measured.
fn per_worker(r: &Results) -> Option<(f64, f64)> {
    let (lo, hi) = (memory::WORKERS.first()?, memory::WORKERS.last()?);
    let (a_lo, t_lo) = heap_pair(r, *lo)?;
    let (a_hi, t_hi) = heap_pair(r, *hi)?;
    let n = f64::from(hi - lo);
    Some((
        (added(a_hi.allocated, t_hi.allocated) - added(a_lo.allocated, t_lo.allocated)) / n,
        (added(a_hi.rss, t_hi.rss) - added(a_lo.rss, t_lo.rss)) / n,
    ))
}

/// Envoy alone and with the module at `workers` workers.
fn heap_pair(r: &Results, workers: u32) -> Option<(&memory::Heap, &memory::Heap)> {
    let find = |module: bool| {
        r.memory
            .iter()
            .find(|h| h.workers == workers && h.module == module)
    };
    Some((find(false)?, find(true)?))
}

/// The performance issue's targets, each against this run's figure.
fn goals(o: &mut String, r: &Results) -> Result<()> {
    let (k3, k64) = (index_of("3k"), index_of("64k"));
    writeln!(o, "\n### Goals (reported, not asserted)\n")?;
    writeln!(
        o,
        "Ratios as median (min-max over the rounds); a goal is met when its median is.\n"
    )?;
    writeln!(o, "| goal | this run | |")?;
    writeln!(o, "| --- | ---: | --- |")?;
    let verdict = |ok: bool| if ok { "met" } else { "**below**" };
    let rows: [(&str, Spread, f64); 8] = [
        (
            "base policy ≥ 0.95 of Envoy alone, req/s (3 KB)",
            ratios(r, k3, TG_BASE, ALONE, false),
            0.95,
        ),
        (
            "base policy ≥ 0.95 of Envoy alone, CPU per request (3 KB)",
            ratios(r, k3, TG_BASE, ALONE, true),
            0.95,
        ),
        (
            "JWT only ≥ native `jwt_authn`, req/s (3 KB)",
            ratios(r, k3, TG_JWT, JWT_AUTHN, false),
            1.0,
        ),
        (
            "JWT only ≥ native `jwt_authn`, CPU per request (3 KB)",
            ratios(r, k3, TG_JWT, JWT_AUTHN, true),
            1.0,
        ),
        (
            "full policy ≥ 0.80 of Envoy alone, req/s (3 KB)",
            ratios(r, k3, TG_FULL, ALONE, false),
            0.80,
        ),
        (
            "full policy ≥ 0.80 of Envoy alone, CPU per request (3 KB)",
            ratios(r, k3, TG_FULL, ALONE, true),
            0.80,
        ),
        (
            "full policy ≥ 0.50 of Envoy alone, req/s (64 KB)",
            ratios(r, k64, TG_FULL, ALONE, false),
            0.50,
        ),
        (
            "full policy ≥ 0.50 of Envoy alone, CPU per request (64 KB)",
            ratios(r, k64, TG_FULL, ALONE, true),
            0.50,
        ),
    ];
    for (goal, spread, target) in rows {
        writeln!(
            o,
            "| {goal} | {spread} | {} |",
            verdict(spread.median >= target)
        )?;
    }
    // What no module reaches: the base policy's goal is measured against it.
    writeln!(
        o,
        "| (not a goal) the gateway's two access logs, no module, CPU per request against Envoy alone (3 KB) | {} | |",
        ratios(r, k3, ALONE_LOGS, ALONE, true)
    )?;
    writeln!(
        o,
        "| (not a goal) the proxy-wasm floor: an empty module, CPU per request against Envoy alone (3 KB) | {} | |",
        ratios(r, k3, FLOOR_EMPTY, ALONE, true)
    )?;
    writeln!(
        o,
        "| (not a goal) the floor with transit-guard's two unavoidable host calls (headers read, property at log) | {} | |",
        ratios(r, k3, FLOOR_HEADERS, ALONE, true)
    )?;
    writeln!(
        o,
        "| (not a goal) the floor with the base policy's host calls and no logic | {} | |",
        ratios(r, k3, FLOOR_CALLS, ALONE, true)
    )?;
    let native = |size: &str| {
        r.native_mask
            .iter()
            .find(|(n, _)| n == size)
            .map(|(_, v)| *v)
    };
    let v8 = |size: &str| r.v8_mask.iter().find(|(n, _)| n == size).map(|(_, v)| *v);
    // Not measured (`--no-micro`) reads as "-" and "below".
    let mbs = |v: Option<f64>| v.map_or("-".to_string(), |v| format!("{v:.0}"));
    let at_least =
        |vs: &[Option<f64>], target: f64| vs.iter().all(|v| v.is_some_and(|v| v >= target));
    let (n64, n1m, n4) = (native("64KB"), native("1MB"), native("4KB"));
    writeln!(
        o,
        "| masking ≥ 1000 MB/s native (per CPU second), `mask_json/pii` 64 KB and 1 MB | {} / {} MB/s | {} |",
        mbs(n64),
        mbs(n1m),
        verdict(at_least(&[n64, n1m], 1000.0))
    )?;
    let (v64, v1m) = (v8("64KB"), v8("1MB"));
    writeln!(
        o,
        "| masking ≥ 600 MB/s in V8 (per CPU second), `mask_json/pii` 64 KB and 1 MB | {} / {} MB/s | {} |",
        mbs(v64),
        mbs(v1m),
        verdict(at_least(&[v64, v1m], 600.0))
    )?;
    writeln!(
        o,
        "| masking at 4 KB no worse than before (154 MB/s native, 2026-12-02, quiet) | {} MB/s | {} |",
        mbs(n4),
        verdict(at_least(&[n4], 154.0))
    )?;
    match per_worker(r) {
        Some((alloc, rss)) => writeln!(
            o,
            "| module's memory per worker ≤ 8 MiB over Envoy alone (RSS slope, 1 to 4 workers) | {rss:+.1} MiB (allocated {alloc:+.1} MiB) | {} |",
            verdict(rss <= 8.0)
        )?,
        None => writeln!(o, "| module's memory per worker ≤ 8 MiB | - | **below** |")?,
    }
    if let Some((alone, tg)) = heap_pair(r, 1) {
        writeln!(
            o,
            "| (not a goal) memory the module adds once per Envoy, 1 worker | allocated {:+.1} MiB, RSS {:+.1} MiB | |",
            added(alone.allocated, tg.allocated),
            added(alone.rss, tg.rss)
        )?;
    }
    writeln!(
        o,
        "| module ≤ 1.2 MB | {:.2} MB | {} |",
        r.module_bytes as f64 / 1e6,
        verdict(r.module_bytes <= 1_200_000)
    )?;
    Ok(())
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
        let sp = Spread::of(&[0.8, 0.7, 0.75]);
        assert_eq!((sp.min, sp.median, sp.max), (0.7, 0.75, 0.8));
        assert_eq!(sp.to_string(), "0.75 (0.70-0.80)");
    }
}
