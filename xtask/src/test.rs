//! `cargo xtask test` and `cargo xtask lint`.

use std::process::Command;

use anyhow::Result;
use integration_tests::paths::workspace_root;

use crate::setup::{self, cargo};

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
