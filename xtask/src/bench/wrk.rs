//! wrk: one measurement of one front on one path, and reading its report;
//! the front Envoy's CPU time over the same window (`cpu`).

use std::process::Command;
use std::time::Instant;

use anyhow::{bail, Context, Result};

use super::cpu;

#[derive(Default, Clone, Debug)]
pub struct Sample {
    pub rps: f64,
    pub p50_ms: f64,
    pub p99_ms: f64,
    /// Responses completed in the window.
    pub requests: u64,
    /// The front Envoy's CPU time (every thread, user + system) per request, µs.
    pub cpu_us_per_req: f64,
    /// The front Envoy's CPU time over the window's wall time: near 1.0 when
    /// it is the bottleneck (it has one worker and a core to itself).
    pub busy: f64,
    /// Non-2xx/3xx responses plus socket errors: a row with errors measured
    /// something else than it says.
    pub errors: u64,
}

/// `wrk -t1 -c16` for `secs` seconds on `https://localhost:{port}{path}`,
/// with extra request headers (`Name: value`), on core `cpu` when given;
/// the CPU time of process `front` (the Envoy under test) is read before and
/// after.
pub fn run(
    port: u16,
    path: &str,
    headers: &[String],
    secs: u32,
    front: u32,
    cpu: Option<usize>,
) -> Result<Sample> {
    let url = format!("https://localhost:{port}{path}");
    let mut cmd = match cpu {
        Some(c) => {
            let mut t = Command::new("taskset");
            t.args(["-c", &c.to_string(), "wrk"]);
            t
        }
        None => Command::new("wrk"),
    };
    cmd.args(["-t1", "-c16", &format!("-d{secs}s"), "--latency"]);
    for h in headers {
        cmd.args(["-H", h]);
    }
    let (ticks0, t0) = (cpu::ticks(front)?, Instant::now());
    let out = cmd.arg(&url).output().context("running wrk")?;
    let (ticks1, wall) = (cpu::ticks(front)?, t0.elapsed().as_secs_f64());
    let text = String::from_utf8_lossy(&out.stdout);
    if !out.status.success() {
        bail!(
            "wrk failed on {url}: {text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut s = parse(&text).with_context(|| format!("reading wrk's report:\n{text}"))?;
    let cpu_secs = ticks1.saturating_sub(ticks0) as f64 / cpu::ticks_per_sec();
    s.busy = cpu_secs / wall.max(f64::MIN_POSITIVE);
    s.cpu_us_per_req = cpu_secs * 1e6 / s.requests.max(1) as f64;
    Ok(s)
}

pub fn parse(text: &str) -> Result<Sample> {
    let mut s = Sample::default();
    for line in text.lines().map(str::trim) {
        let mut words = line.split_whitespace();
        match (words.next(), words.next()) {
            (Some("Requests/sec:"), Some(v)) => s.rps = v.parse()?,
            (Some("50%"), Some(v)) => s.p50_ms = millis(v)?,
            (Some("99%"), Some(v)) => s.p99_ms = millis(v)?,
            (Some(n), Some("requests")) => s.requests = n.parse()?,
            (Some("Non-2xx"), _) => {
                s.errors += line.rsplit(' ').next().unwrap_or("0").parse::<u64>()?
            }
            // `Socket errors: connect 0, read 2, write 0, timeout 1`
            (Some("Socket"), Some("errors:")) => {
                for part in line.trim_start_matches("Socket errors:").split(',') {
                    s.errors += part
                        .split_whitespace()
                        .last()
                        .unwrap_or("0")
                        .parse::<u64>()?;
                }
            }
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wrk_report_is_read() {
        let text = "Running 3s test @ https://localhost:1/3k\n  1 threads and 16 connections\n  Latency Distribution\n     50%  812.00us\n     75%    1.10ms\n     99%    4.20ms\n  1234 requests in 3.00s, 4.00MB read\n  Socket errors: connect 0, read 2, write 0, timeout 1\n  Non-2xx or 3xx responses: 7\nRequests/sec:   2469.50\nTransfer/sec:      8.00MB\n";
        let s = parse(text).unwrap();
        assert_eq!(s.rps, 2469.5);
        assert!((s.p50_ms - 0.812).abs() < 1e-9);
        assert_eq!(s.p99_ms, 4.2);
        assert_eq!(s.errors, 10);
        assert_eq!(s.requests, 1234);
        assert_eq!(millis("1.02s").unwrap(), 1020.0);
        assert!(parse("nothing").is_err());
    }
}
