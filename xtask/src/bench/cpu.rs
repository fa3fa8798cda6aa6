//! The front Envoy's cost, measured from outside: its CPU time (user + system,
//! every thread) from `/proc/<pid>/stat` over a measured window, and CPU
//! pinning with `taskset` so the front Envoy has a core to itself while the
//! upstream and the load generator share the other.
//!
//! CPU time per request is the figure users budget with, and it is far less
//! sensitive to a busy machine than requests/s: time spent waiting for a
//! core is not counted.

use std::process::Command;

use anyhow::{bail, Context, Result};

/// The core the front Envoy under test runs on.
pub const FRONT_CPU: usize = 0;
/// The core the upstream Envoy and wrk share.
pub const LOAD_CPU: usize = 1;

/// Whether pinning makes sense here: two cores at least, and `taskset`.
pub fn can_pin() -> bool {
    std::thread::available_parallelism().is_ok_and(|n| n.get() >= 2)
        && Command::new("taskset")
            .arg("-V")
            .output()
            .is_ok_and(|o| o.status.success())
}

/// Pins every thread of `pid` to `cpu` (Envoy has started its workers by the
/// time it is ready; threads it makes later inherit the affinity).
pub fn pin(pid: u32, cpu: usize) -> Result<()> {
    let out = Command::new("taskset")
        .args(["-a", "-p", "-c", &cpu.to_string(), &pid.to_string()])
        .output()
        .context("running taskset")?;
    if !out.status.success() {
        bail!(
            "taskset -a -p -c {cpu} {pid}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(())
}

/// Clock ticks per second (`getconf CLK_TCK`; 100 on Linux if unknown).
pub fn ticks_per_sec() -> f64 {
    Command::new("getconf")
        .arg("CLK_TCK")
        .output()
        .ok()
        .and_then(|o| String::from_utf8(o.stdout).ok())
        .and_then(|s| s.trim().parse().ok())
        .unwrap_or(100.0)
}

/// User plus system CPU time of process `pid` so far, in clock ticks.
pub fn ticks(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    parse_stat(&stat).with_context(|| format!("reading {path}: {stat:.200}"))
}

/// `utime` and `stime` (fields 14 and 15) of a `/proc/<pid>/stat` line. The
/// command name (field 2) is in parentheses and may hold spaces: count from
/// the last `)`.
fn parse_stat(stat: &str) -> Result<u64> {
    let (_, rest) = stat.rsplit_once(')').context("no ')' in stat")?;
    // rest starts at field 3 (state): utime is the 12th field after it.
    let mut fields = rest.split_whitespace().skip(11);
    let utime: u64 = fields.next().context("no utime")?.parse()?;
    let stime: u64 = fields.next().context("no stime")?.parse()?;
    Ok(utime + stime)
}

/// Resident memory of process `pid` in bytes (`VmRSS` in `/proc/<pid>/status`).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let path = format!("/proc/{pid}/status");
    let status = std::fs::read_to_string(&path).with_context(|| format!("reading {path}"))?;
    let kib: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.split_whitespace().next())
        .context("no VmRSS")?
        .parse()?;
    Ok(kib * 1024)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stat_line_is_read_past_a_command_with_spaces() {
        let line = "4242 (envoy (main) x) S 1 4242 4242 0 -1 4194560 9431 0 0 0 1234 56 0 0 20 0 9 0 100 1000 200";
        assert_eq!(parse_stat(line).unwrap(), 1290);
        assert!(parse_stat("garbage").is_err());
    }

    #[test]
    fn own_process_is_measured() {
        let me = std::process::id();
        ticks(me).unwrap();
        assert!(rss_bytes(me).unwrap() > 0);
        assert!(ticks_per_sec() > 0.0);
    }
}
