//! `cargo xtask demo`: the gateway on loopback with TLS on both legs.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use integration_tests::gateway::{gateway_template, Gateway, Options};
use integration_tests::paths::workspace_root;

use crate::setup;

pub const LISTEN_PORT: u16 = 10443;
pub const ADMIN_PORT: u16 = 9901;
pub const UPSTREAM_PORT: u16 = 18443;

pub fn run() -> Result<()> {
    setup::ensure_wasm_target()?;
    let envoy = setup::ensure_envoy()?;
    setup::build_wasm()?;
    // The harness reads these, as in the tests.
    std::env::set_var("TG_ENVOY_BIN", &envoy);

    let root = workspace_root();
    let dir = root.join("target/demo");
    if dir.exists() {
        std::fs::remove_dir_all(&dir).with_context(|| format!("clearing {}", dir.display()))?;
    }
    let policy_path = root.join("examples/policies/demo.json");
    let policy_json = std::fs::read_to_string(&policy_path)
        .with_context(|| format!("reading {}", policy_path.display()))?;
    let opts = Options {
        dir: dir.clone(),
        policy_json,
        template: gateway_template(),
        listen_port: LISTEN_PORT,
        admin_port: ADMIN_PORT,
        upstream_port: UPSTREAM_PORT,
        extra_vars: Default::default(),
        concurrency: integration_tests::envoy::DEFAULT_CONCURRENCY,
    };

    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let gw = Gateway::start(opts)
            .await
            .context("starting the demo (are ports 10443, 9901 and 18443 free?)")?;
        let ca = dir.join("ca.pem");
        std::fs::copy(gw.pki.path("ca.pem"), &ca)?;
        let audit = integration_tests::gateway::audit_log_path(&gw.pki.dir);
        print_banner(
            &shown(&ca),
            &shown(&gw.envoy.log_path),
            &shown(&audit),
            &shown(&policy_path),
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
        eprintln!("\nxtask: stopping Envoy and the demo upstream");
        drop(gw);
        Ok(())
    })
}

/// A path as the user should type it: relative to the workspace root when
/// they are standing in it.
fn shown(path: &Path) -> String {
    let root = workspace_root();
    let cwd = std::env::current_dir().unwrap_or_default();
    match path.strip_prefix(&root) {
        Ok(rel) if cwd == root => rel.display().to_string(),
        _ => PathBuf::from(path).display().to_string(),
    }
}

fn print_banner(ca: &str, log: &str, audit: &str, policy: &str) {
    println!(
        "
transit-guard demo is running. Ctrl-C stops it.

  gateway   https://localhost:{LISTEN_PORT}   Envoy 1.40 + transit_guard.wasm, TLS (CA: {ca})
  upstream  https://127.0.0.1:{UPSTREAM_PORT}  demo customers API; Envoy verifies its certificate and name
  admin     http://127.0.0.1:{ADMIN_PORT}
  policy    {policy}
  logs      {log}
  audit     {audit}   one JSON record per request

Try:
  # customer records through both TLS legs
  curl --cacert {ca} https://localhost:{LISTEN_PORT}/customers

  # any other path: the upstream echoes what it received
  curl --cacert {ca} https://localhost:{LISTEN_PORT}/v1/echo -d 'hello from an agent'

  # a body over limits.max_body_bytes (1 MiB) is refused with 413 and a JSON error
  # (HTTP/1.1: over HTTP/2 curl reports the early reply's stream reset as an error)
  head -c 2000000 /dev/zero | curl --http1.1 --cacert {ca} https://localhost:{LISTEN_PORT}/upload --data-binary @-

  # the audit trail, and the same outcomes as Prometheus counters
  tail -f {audit}
  curl -s http://127.0.0.1:{ADMIN_PORT}/stats/prometheus | grep ^transit_guard
"
    );
}
