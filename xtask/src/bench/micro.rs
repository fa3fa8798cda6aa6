//! The core's micro-benchmarks: the criterion benches of the filter crate
//! (natively), read back from criterion's JSON, and the cold/cached JWT
//! verification timing in V8 (the ignored test `identity_timing`, run under
//! Node's WASI like the rest of the wasm tests).

use std::path::Path;
use std::time::SystemTime;

use anyhow::{bail, Context, Result};
use integration_tests::paths::workspace_root;

use crate::setup;

/// One criterion benchmark: its id, mean time per iteration, and throughput
/// in MB/s (10^6 bytes) when it declares bytes.
pub struct Micro {
    pub id: String,
    pub mean_ns: f64,
    pub mb_per_s: Option<f64>,
}

/// Runs `mask`, `rules` and `identity` with short measurement times and
/// returns what this run measured.
pub fn criterion(quick: bool) -> Result<Vec<Micro>> {
    let started = SystemTime::now();
    let timing: &[&str] = if quick {
        &[
            "--warm-up-time",
            "0.3",
            "--measurement-time",
            "0.7",
            "--sample-size",
            "10",
        ]
    } else {
        &[
            "--warm-up-time",
            "1",
            "--measurement-time",
            "3",
            "--sample-size",
            "30",
        ]
    };
    eprintln!("xtask: bench: criterion (mask, rules, identity)");
    let out = setup::cargo()
        .args(["bench", "--quiet", "-p", "transit-guard"])
        .args([
            "--bench", "mask", "--bench", "rules", "--bench", "identity", "--",
        ])
        .args(timing)
        .current_dir(workspace_root())
        .output()
        .context("running cargo bench")?;
    if !out.status.success() {
        bail!(
            "cargo bench failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut found = Vec::new();
    collect(
        &workspace_root().join("target/criterion"),
        started,
        &mut found,
    )?;
    found.sort_by(|a, b| a.id.cmp(&b.id));
    if found.is_empty() {
        bail!("criterion wrote no results under target/criterion");
    }
    Ok(found)
}

/// Every `new/benchmark.json` written since `since` (older ones are other
/// runs' results), with its `new/estimates.json`.
fn collect(dir: &Path, since: SystemTime, out: &mut Vec<Micro>) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if !path.is_dir() {
            continue;
        }
        let bench = path.join("new/benchmark.json");
        let fresh = std::fs::metadata(&bench)
            .and_then(|m| m.modified())
            .is_ok_and(|t| t >= since);
        if fresh {
            out.push(read_result(&path.join("new"))?);
        } else {
            collect(&path, since, out)?;
        }
    }
    Ok(())
}

fn read_result(dir: &Path) -> Result<Micro> {
    let read = |name: &str| -> Result<serde_json::Value> {
        let p = dir.join(name);
        serde_json::from_str(&std::fs::read_to_string(&p)?)
            .with_context(|| format!("reading {}", p.display()))
    };
    let bench = read("benchmark.json")?;
    let estimates = read("estimates.json")?;
    let mean_ns = estimates["mean"]["point_estimate"]
        .as_f64()
        .context("no mean in estimates.json")?;
    let bytes = bench["throughput"]["Bytes"].as_f64();
    Ok(Micro {
        id: bench["full_id"].as_str().unwrap_or("?").to_string(),
        mean_ns,
        mb_per_s: bytes.map(|b| b / mean_ns * 1e3),
    })
}

/// The markdown table `identity_timing` prints: `authenticate` cold (cache
/// off, signature verified) and cached, per algorithm, in V8.
pub fn wasm_identity_timing(quick: bool) -> Result<String> {
    eprintln!("xtask: bench: JWT verification in V8 (identity_timing)");
    let runner = format!(
        "node --no-warnings {}",
        workspace_root().join("xtask/wasi-runner.mjs").display()
    );
    let out = setup::cargo()
        .args(["test", "--quiet", "-p", "transit-guard", "--lib"])
        .args(["--target", "wasm32-wasip1", "--release"])
        .args(["--", "--ignored", "--nocapture", "--exact"])
        .arg("identity::tests::identity_timing")
        .env("CARGO_TARGET_WASM32_WASIP1_RUNNER", runner)
        .env("TG_BENCH_N", if quick { "50" } else { "200" })
        .current_dir(workspace_root())
        .output()
        .context("running identity_timing under node")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let table: Vec<&str> = text.lines().filter(|l| l.starts_with('|')).collect();
    if !out.status.success() || table.len() < 3 {
        bail!(
            "identity_timing failed:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(table.join("\n"))
}

/// `examples/mask_speed.rs` in V8 (`wasm`) or natively: MB/s per CPU
/// second per `mask_json/pii` body, as (body name, MB/s). Per CPU second, so
/// a busy machine does not pass for a slow engine (criterion's wall time does).
pub fn mask_speed(quick: bool, wasm: bool) -> Result<Vec<(String, f64)>> {
    let mut cmd = setup::cargo();
    cmd.args(["run", "--quiet", "--release", "-p", "transit-guard"]);
    if wasm {
        eprintln!("xtask: bench: masking in V8 (examples/mask_speed.rs)");
        let runner = format!(
            "node --no-warnings {}",
            workspace_root().join("xtask/wasi-runner.mjs").display()
        );
        cmd.args(["--target", "wasm32-wasip1"])
            .env("CARGO_TARGET_WASM32_WASIP1_RUNNER", runner);
    } else {
        eprintln!("xtask: bench: masking natively (examples/mask_speed.rs)");
    }
    let out = cmd
        .args(["--example", "mask_speed", "--"])
        .arg(if quick { "0.5" } else { "2" })
        .current_dir(workspace_root())
        .output()
        .context("running mask_speed")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let rows = parse_rows(&text);
    if !out.status.success() || rows.is_empty() {
        bail!(
            "mask_speed failed:\n{text}{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    Ok(rows)
}

/// `| 64KB | 412 |` rows of a markdown table (the header has no number).
fn parse_rows(text: &str) -> Vec<(String, f64)> {
    text.lines()
        .filter_map(|l| {
            let cells: Vec<&str> = l.split('|').map(str::trim).collect();
            match cells.as_slice() {
                ["", name, v, ""] => Some((name.to_string(), v.parse().ok()?)),
                _ => None,
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn criterion_results_are_read() {
        let dir = std::env::temp_dir().join(format!("xtask-micro-{}", std::process::id()));
        let new = dir.join("g/f/new");
        std::fs::create_dir_all(&new).unwrap();
        std::fs::write(
            new.join("benchmark.json"),
            r#"{"full_id":"g/f/4KB","throughput":{"Bytes":4000}}"#,
        )
        .unwrap();
        std::fs::write(
            new.join("estimates.json"),
            r#"{"mean":{"point_estimate":2000.0}}"#,
        )
        .unwrap();
        let mut found = Vec::new();
        collect(&dir, SystemTime::UNIX_EPOCH, &mut found).unwrap();
        std::fs::remove_dir_all(&dir).unwrap();
        assert_eq!(found.len(), 1);
        assert_eq!(found[0].id, "g/f/4KB");
        assert_eq!(found[0].mb_per_s, Some(2000.0));
    }

    #[test]
    fn mask_speed_rows_are_read() {
        let rows = parse_rows("| body | MB/s |\n| --- | ---: |\n| 4KB | 210 |\n| 1MB | 305 |\n");
        assert_eq!(rows, vec![("4KB".into(), 210.0), ("1MB".into(), 305.0)]);
    }
}
