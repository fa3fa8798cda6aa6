//! `cargo xtask test` and `cargo xtask lint`.

use std::process::Command;

use anyhow::Result;
use integration_tests::paths::workspace_root;

use crate::setup::{self, cargo};

#[cfg(test)]
mod lints;

pub fn lint() -> Result<()> {
    eprintln!("xtask: lint (fmt, clippy on host and wasm32-wasip1)");
    setup::run(cargo().args(["fmt", "--all", "--check"]))?;
    setup::run(cargo().args([
        "clippy",
        "--quiet",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    setup::run(cargo().args([
        "clippy",
        "--quiet",
        "-p",
        "transit-guard",
        "--target",
        "wasm32-wasip1",
        "--",
        "-D",
        "warnings",
    ]))
}

pub fn run(args: &[&str]) -> Result<()> {
    setup::ensure_wasm_target()?;
    let envoy = setup::ensure_envoy()?;
    // A real OpenID provider for the identity tests.
    setup::ensure_npm("integration-tests/oidc")?;
    // The real SDKs users have, for the agent scenario.
    setup::ensure_python_packages()?;
    // Capturing loopback traffic proves both legs are encrypted.
    setup::ensure_tcpdump()?;
    if !args.contains(&"--no-lint") {
        lint()?;
    }
    let wasm = setup::build_wasm()?;
    // The deployment tests: docker, compose, registry, skopeo, Helm's engine,
    // and the static binaries their images hold.
    let (approver_static, peers_static) = setup::ensure_deploy_tools()?;
    // The approver's browser test: headless Debian Chromium driven by playwright-core.
    let chromium = setup::ensure_chromium()?;
    setup::ensure_npm("approver/tests/browser")?;
    // The approver's store suite and replica tests run a real Postgres.
    let pg_bindir = setup::ensure_postgres()?;

    eprintln!("xtask: the core's unit tests compiled to wasm32-wasip1, run in V8 (node)");
    let runner = format!(
        "node --no-warnings {}",
        workspace_root().join("xtask/wasi-runner.mjs").display()
    );
    setup::run(
        cargo()
            .args([
                "test",
                "--quiet",
                "-p",
                "transit-guard",
                "--lib",
                "--target",
                "wasm32-wasip1",
            ])
            .env("CARGO_TARGET_WASM32_WASIP1_RUNNER", runner),
    )?;

    policies()?;

    eprintln!(
        "xtask: unit and integration tests (Envoy: {})",
        envoy.display()
    );
    let mut tests = if has_nextest() {
        let mut c = cargo();
        c.args(["nextest", "run", "--workspace", "--no-fail-fast"]);
        c
    } else {
        let mut c = cargo();
        c.args(["test", "--workspace", "--no-fail-fast"]);
        c
    };
    setup::run(
        tests
            .env("TG_ENVOY_BIN", &envoy)
            .env("TG_WASM", &wasm)
            .env("CHROMIUM", &chromium)
            .env("TG_PG_BINDIR", &pg_bindir)
            .env("TG_APPROVER_STATIC", &approver_static)
            .env("TG_DEMO_PEERS_STATIC", &peers_static),
    )
}

fn has_nextest() -> bool {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["nextest", "--version"])
        .output()
        .is_ok_and(|o| o.status.success())
}

/// `cargo xtask fuzz [SECS]`: every fuzz target for SECS seconds (default
/// 60), optimised without LTO (fast to build), one target at a time so each
/// has a core. Each prints its executions and seed (`TG_FUZZ_SEED` replays).
pub fn fuzz(args: &[&str]) -> Result<()> {
    let secs = args.first().copied().unwrap_or("60");
    anyhow::ensure!(
        secs.parse::<f64>().is_ok_and(|s| s > 0.0),
        "usage: cargo xtask fuzz [SECS]"
    );
    eprintln!("xtask: fuzz targets, {secs} s each (filter/tests/fuzz.rs)");
    setup::run(
        cargo()
            .args([
                "test",
                "--release",
                "-p",
                "transit-guard",
                "--test",
                "fuzz",
                "--",
                "--nocapture",
                "--test-threads=1",
            ])
            .env("TG_FUZZ_SECS", secs)
            .env("CARGO_PROFILE_RELEASE_LTO", "false")
            .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "16"),
    )
}

/// Every example policy: `transit-guard test` with its cases file
/// (`NAME.cases.yaml`, `.yml` or `.json` beside `NAME.json`), else `check`.
pub fn policies() -> Result<()> {
    eprintln!("xtask: example policies (transit-guard check / test)");
    let dir = workspace_root().join("examples/policies");
    let mut names: Vec<String> = std::fs::read_dir(&dir)?
        .filter_map(|e| e.ok())
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .filter(|n| n.ends_with(".json") && !n.contains(".cases."))
        .collect();
    names.sort();
    for name in names {
        let stem = name.trim_end_matches(".json");
        let policy = dir.join(&name);
        let cases = ["yaml", "yml", "json"]
            .iter()
            .map(|ext| dir.join(format!("{stem}.cases.{ext}")))
            .find(|p| p.exists());
        let mut cmd = cargo();
        cmd.args(["run", "--quiet", "-p", "transit-guard-cli", "--"]);
        match cases {
            Some(cases) => cmd.arg("test").arg(&policy).arg(cases),
            None => cmd.arg("check").arg(&policy),
        };
        setup::run(&mut cmd)?;
    }
    Ok(())
}
