//! `cargo xtask bench`: the same Envoy config with and without transit-guard,
//! measured side by side in one run, the way Coraza's load test does it.
//!
//! Every front Envoy (`--concurrency 1`) proxies over TLS to one upstream
//! Envoy answering fixed JSON bodies; wrk drives each front in turn, warmed up,
//! then measured alternately over several rounds. Only ratios measured in the
//! same run mean anything. Nothing here asserts a time.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use integration_tests::certs::Pki;
use integration_tests::envoy::{Envoy, EnvoyConfig};
use integration_tests::gateway::{gateway_template, template_vars};
use integration_tests::paths::workspace_root;

use crate::setup;

/// Response bodies served by the upstream: path and approximate size.
const BODIES: &[(&str, usize)] = &[
    ("/1k", 1024),
    ("/3k", 3 * 1024),
    ("/64k", 64 * 1024),
    ("/1m", 1024 * 1024),
];

/// One Envoy under test.
struct Front {
    name: &'static str,
    envoy: Envoy,
}

#[derive(Default, Clone)]
struct Sample {
    rps: f64,
    p50_ms: f64,
    p99_ms: f64,
    errors: u64,
}

pub fn run(args: &[&str]) -> Result<()> {
    let quick = args.contains(&"--quick");
    let (secs, rounds) = if quick { (3, 2) } else { (8, 3) };
    setup::ensure_wasm_target()?;
    let envoy_bin = setup::ensure_envoy()?;
    setup::ensure_wrk()?;
    let wasm = setup::build_wasm()?;
    std::env::set_var("TG_ENVOY_BIN", &envoy_bin);
    std::env::set_var("TG_WASM", &wasm);

    let dir = workspace_root().join("target/bench");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let pki = Pki::generate(&dir.join("certs"))?;
    let body_dir = dir.join("bodies");
    write_bodies(&body_dir)?;

    let upstream = start_upstream(&dir, &pki, &body_dir)?;
    let upstream_addr = upstream.listener("upstream");
    let fronts = vec![
        Front {
            name: "Envoy alone (router only)",
            envoy: start_front(
                &dir,
                "router-only",
                &workspace_root().join("envoy/bench/router-only.yaml"),
                &pki,
                "{}",
                upstream_addr,
            )?,
        },
        Front {
            name: "transit-guard (policy: examples/policies/demo.json)",
            envoy: start_front(
                &dir,
                "transit-guard",
                &gateway_template(),
                &pki,
                &std::fs::read_to_string(workspace_root().join("examples/policies/demo.json"))?,
                upstream_addr,
            )?,
        },
    ];

    eprintln!("xtask: bench: warming up");
    for front in &fronts {
        for (path, _) in BODIES {
            wrk(front, path, 1)?;
        }
    }
    let mut samples: BTreeMap<(&str, usize), Vec<Sample>> = BTreeMap::new();
    for round in 1..=rounds {
        for (path, _) in BODIES {
            for (i, front) in fronts.iter().enumerate() {
                eprintln!(
                    "xtask: bench: round {round}/{rounds}: {} {path}",
                    front.name
                );
                samples
                    .entry((path, i))
                    .or_default()
                    .push(wrk(front, path, secs)?);
            }
        }
    }

    let report = report(&fronts, &samples, &wasm, quick, secs, rounds)?;
    println!("{report}");
    let out = dir.join("report.md");
    std::fs::write(&out, &report)?;
    eprintln!("xtask: bench: report written to {}", out.display());
    Ok(())
}

fn start_upstream(dir: &Path, pki: &Pki, body_dir: &Path) -> Result<Envoy> {
    let run_dir = dir.join("upstream");
    std::fs::create_dir_all(&run_dir)?;
    let config = EnvoyConfig {
        template: workspace_root().join("envoy/bench/upstream.yaml"),
        vars: BTreeMap::from([
            ("ADMIN_PORT", "0".to_string()),
            ("UPSTREAM_PORT", "0".to_string()),
            ("CERT_DIR", pki.dir.display().to_string()),
            ("BODY_DIR", body_dir.display().to_string()),
        ]),
        dir: run_dir,
    };
    Envoy::start(&config)
}

fn start_front(
    dir: &Path,
    name: &str,
    template: &Path,
    pki: &Pki,
    policy: &str,
    upstream: std::net::SocketAddr,
) -> Result<Envoy> {
    let run_dir = dir.join(name);
    std::fs::create_dir_all(&run_dir)?;
    let mut vars = template_vars(&pki.dir, policy, 0, 0, upstream)?;
    vars.insert(
        "AUDIT_LOG",
        run_dir.join("access.log").display().to_string(),
    );
    Envoy::start(&EnvoyConfig {
        template: template.to_path_buf(),
        vars,
        dir: run_dir,
    })
}

/// Customer records (emails, phones, cards, SSNs) to about `size` bytes.
fn customer_records(size: usize) -> String {
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
    out
}

fn write_bodies(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (path, size) in BODIES {
        std::fs::write(
            dir.join(format!("{}.json", &path[1..])),
            customer_records(*size),
        )?;
    }
    Ok(())
}

fn wrk(front: &Front, path: &str, secs: u32) -> Result<Sample> {
    let url = format!(
        "https://localhost:{}{path}",
        front.envoy.listener("https").port()
    );
    let out = Command::new("wrk")
        .args(["-t1", "-c16", &format!("-d{secs}s"), "--latency", &url])
        .output()
        .context("running wrk")?;
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed on {url}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    parse_wrk(&text).with_context(|| format!("reading wrk's report:\n{text}"))
}

fn parse_wrk(text: &str) -> Result<Sample> {
    let mut s = Sample::default();
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(v)) => s.rps = v.parse()?,
            (Some("50%"), Some(v)) => s.p50_ms = millis(v)?,
            (Some("99%"), Some(v)) => s.p99_ms = millis(v)?,
            (Some("Non-2xx"), _) => {
                s.errors += line.rsplit(' ').next().unwrap_or("0").parse::<u64>()?
            }
            (Some("Socket"), _) => s.errors += 1,
            _ => {}
        }
    }
    if s.rps == 0.0 {
        bail!("no Requests/sec line");
    }
    Ok(s)
}

/// wrk prints latencies as `812.00us`, `1.23ms` or `1.02s`.
fn millis(v: &str) -> Result<f64> {
    let (num, factor) = if let Some(n) = v.strip_suffix("us") {
        (n, 0.001)
    } else if let Some(n) = v.strip_suffix("ms") {
        (n, 1.0)
    } else if let Some(n) = v.strip_suffix('s') {
        (n, 1000.0)
    } else {
        bail!("unknown latency {v}")
    };
    Ok(num.parse::<f64>()? * factor)
}

fn mean(xs: impl Iterator<Item = f64>) -> f64 {
    let v: Vec<f64> = xs.collect();
    if v.is_empty() {
        0.0
    } else {
        v.iter().sum::<f64>() / v.len() as f64
    }
}

fn report(
    fronts: &[Front],
    samples: &BTreeMap<(&str, usize), Vec<Sample>>,
    wasm: &PathBuf,
    quick: bool,
    secs: u32,
    rounds: u32,
) -> Result<String> {
    let mut r = String::new();
    writeln!(
        r,
        "## Benchmark: transit-guard in Envoy 1.40, side by side\n"
    )?;
    writeln!(
        r,
        "One run on this machine ({} cores): each Envoy `--concurrency 1`, TLS on both legs, \
         wrk `-t1 -c16 -d{secs}s`, {rounds} alternating rounds after a warm-up{}. \
         Ratios are to Envoy alone on the same body in the same run.\n",
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(0),
        if quick { " (`--quick`)" } else { "" }
    )?;
    writeln!(
        r,
        "| configuration | body | req/s | p50 ms | p99 ms | ratio | errors |"
    )?;
    writeln!(r, "| --- | --- | ---: | ---: | ---: | ---: | ---: |")?;
    for (path, _) in BODIES {
        let base = mean(
            samples
                .get(&(*path, 0))
                .into_iter()
                .flatten()
                .map(|s| s.rps),
        );
        for (i, front) in fronts.iter().enumerate() {
            let s = samples.get(&(*path, i)).cloned().unwrap_or_default();
            let rps = mean(s.iter().map(|x| x.rps));
            writeln!(
                r,
                "| {} | {} | {:.0} | {:.2} | {:.2} | {:.2} | {} |",
                front.name,
                &path[1..],
                rps,
                mean(s.iter().map(|x| x.p50_ms)),
                mean(s.iter().map(|x| x.p99_ms)),
                if base > 0.0 { rps / base } else { 0.0 },
                s.iter().map(|x| x.errors).sum::<u64>()
            )?;
        }
    }
    writeln!(
        r,
        "\n| configuration | Envoy heap allocated after the run |"
    )?;
    writeln!(r, "| --- | ---: |")?;
    for front in fronts {
        let mem: serde_json::Value = serde_json::from_str(&front.envoy.admin_get("/memory")?)?;
        let allocated = mem["allocated"]
            .as_str()
            .and_then(|v| v.parse::<u64>().ok())
            .unwrap_or(0);
        writeln!(
            r,
            "| {} | {:.1} MiB |",
            front.name,
            allocated as f64 / 1048576.0
        )?;
    }
    writeln!(
        r,
        "\nModule: `transit_guard.wasm`, {} KiB.",
        std::fs::metadata(wasm)?.len() / 1024
    )?;
    Ok(r)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_report_is_read() {
        let text = "Running 3s test @ https://localhost:1/3k\n  1 threads and 16 connections\n  Latency Distribution\n     50%  812.00us\n     75%    1.10ms\n     99%    4.20ms\n  1234 requests in 3.00s, 4.00MB read\n  Non-2xx or 3xx responses: 7\nRequests/sec:   2469.50\nTransfer/sec:      8.00MB\n";
        let s = parse_wrk(text).unwrap();
        assert_eq!(s.rps, 2469.5);
        assert!((s.p50_ms - 0.812).abs() < 1e-9);
        assert_eq!(s.p99_ms, 4.2);
        assert_eq!(s.errors, 7);
        assert!(parse_wrk("nothing").is_err());
    }

    #[test]
    fn bodies_have_the_size_asked_for() {
        for (_, size) in BODIES {
            let body = customer_records(*size);
            assert!(
                body.len() <= *size && body.len() + 400 > *size,
                "{} vs {size}",
                body.len()
            );
            serde_json::from_str::<serde_json::Value>(&body).unwrap();
        }
    }
}
