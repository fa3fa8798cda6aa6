//! `cargo xtask demo`: the whole product on loopback, in this one process:
//! the dev token issuer, the approver, the demo customers API, and Envoy with
//! the filter running `examples/policies/demo.json` (the stack is
//! `integration_tests::demo`, which `tests/demo.rs` also runs).

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use integration_tests::demo::{DemoOptions, DemoStack, Ports, REVIEWER};
use integration_tests::paths::workspace_root;
use integration_tests::{gateway, issuer};

use crate::setup;

pub fn run() -> Result<()> {
    setup::ensure_wasm_target()?;
    let envoy = setup::ensure_envoy()?;
    setup::build_wasm()?;
    // The harness reads these, as in the tests.
    std::env::set_var("TG_ENVOY_BIN", &envoy);
    // The approver's log lines (new approvals, decisions) on stderr.
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
                tracing_subscriber::EnvFilter::new("transit_guard_approver=info")
            }),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();

    let dir = workspace_root().join("target/demo");
    clear_run_dir(&dir, &issuer::default_dir())?;
    let opts = DemoOptions::new(dir.clone(), issuer::default_dir(), Ports::DEMO);

    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let stack = DemoStack::start(opts).await.context(
            "starting the demo (are ports 10443, 9901, 18443, 18080 and 8088 free? \
             another demo may be running)",
        )?;
        let ca = dir.join("ca.pem");
        std::fs::copy(stack.gateway.pki.path("ca.pem"), &ca)?;
        print_banner(&stack, &ca);
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
        eprintln!("\nxtask: stopping Envoy, the demo upstream, the issuer and the approver");
        stack.stop().await
    })
}

/// Empties the run folder but for `keep` (the issuer key: tokens already
/// minted stay valid across demo runs).
fn clear_run_dir(dir: &Path, keep: &Path) -> Result<()> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Ok(());
    };
    for entry in entries {
        let path = entry?.path();
        if path == keep {
            continue;
        }
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(&path)
        } else {
            std::fs::remove_file(&path)
        };
        removed.with_context(|| format!("clearing {}", path.display()))?;
    }
    Ok(())
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

fn print_banner(stack: &DemoStack, ca: &Path) {
    let gw = &stack.gateway;
    let ca = shown(ca);
    let log = shown(&gw.envoy.log_path);
    let audit = shown(&gateway::audit_log_path(&gw.pki.dir));
    let policy = shown(&stack.policy_path);
    let credential = shown(&stack.gateway.dir.join("upstream-credential.yaml"));
    let key = shown(&stack.issuer.key_path());
    let listen = gw.listen_addr("https").port();
    let admin = gw.envoy.admin;
    let upstream = gw.upstream.addr;
    let idp = stack.jwks.addr;
    let approver = stack.approver_url();
    let reviewer = &stack.reviewer_token;
    let filter_key = &stack.filter_key;
    let curl = format!("curl -s --cacert {ca}");
    let url = format!("https://localhost:{listen}");
    let auth = "-H \"Authorization: Bearer $TOKEN\"";
    let approval = if stack.approval_wired() {
        format!(
            "  # an export waits for a human (up to 120 s): run this, it holds...
  {curl} {auth} {url}/customers/export -d '{{\"format\":\"csv\"}}'
  # ...then open {approver}, paste the reviewer token above, approve: the curl completes
  # (deny instead, and it gets 403 approval_denied)
"
        )
    } else {
        "  # approval: this policy has no approval section, so no request is held for a reviewer\n"
            .to_string()
    };
    println!(
        "
transit-guard demo is running. Ctrl-C stops it.

  gateway   {url}   Envoy 1.40 + transit_guard.wasm, TLS (CA: {ca})
  upstream  https://{upstream}   demo customers API; Envoy verifies its certificate and name
  issuer    http://{idp}    dev token issuer, ES256, JWKS at /jwks (key: {key})
  approver  {approver}     reviewer page; reviewer {REVIEWER:?}, token (this run only):
            {reviewer}
            the filter's key for it (approval.api_key, this run only): {filter_key}
  admin     http://{admin}
  upstream credential  {credential}   Envoy injects it for the upstream; agents never hold it
  policy    {policy}   (examples/policies/demo.json as running)
  logs      {log}
  audit     {audit}   one JSON record per request

Try, in another shell in this folder:

  # a token for alice of the support group, from the dev issuer (1 hour)
  TOKEN=$(cargo xtask token --sub alice --group support)

  # customer records through both TLS legs, masked: emails hashed, phones and SSNs redacted, cards to the last 4
  {curl} {auth} {url}/customers

  # no token: 401 with a WWW-Authenticate challenge
  curl -si --cacert {ca} {url}/customers

  # a caller outside the support group: 403 (rule customers-support-only)
  {curl} -H \"Authorization: Bearer $(cargo xtask token --sub bob --group sales)\" {url}/customers

  # deletes are refused, whoever asks: 403 (rule no-deletes)
  {curl} {auth} -X DELETE {url}/customers/c-1001

  # DROP TABLE in a body: 403 (rule no-drop-table); the upstream never sees it
  {curl} {auth} {url}/v1/query -H 'content-type: application/json' -d '{{\"sql\":\"DROP TABLE customers\"}}'

  # a secret sent to /v1 is masked out of the body before it leaves (the audit record counts it)
  {curl} {auth} {url}/v1/chat/completions -H 'content-type: application/json' \\
    -d '{{\"messages\":[{{\"role\":\"user\",\"content\":\"deploy with ghp_0123456789abcdefghijABCDEFGHIJ456789\"}}]}}'

{approval}
  # a body over limits.max_body_bytes (1 MiB): 413
  head -c 2000000 /dev/zero | curl -s --http1.1 --cacert {ca} {auth} {url}/upload --data-binary @-

  # the audit trail (who, what, decision, rules, masked counts), and the same outcomes as Prometheus counters
  tail -n 5 {audit}
  curl -s http://{admin}/stats/prometheus | grep ^transit_guard
"
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_new_run_keeps_only_the_issuer_key() {
        let dir = integration_tests::paths::scratch_dir("xtask-clear").unwrap();
        let keep = dir.join("issuer");
        std::fs::create_dir_all(keep.join("x")).unwrap();
        std::fs::write(keep.join("signing-key.pem"), "k").unwrap();
        std::fs::create_dir_all(dir.join("certs")).unwrap();
        std::fs::write(dir.join("certs/ca.pem"), "c").unwrap();
        std::fs::write(dir.join("audit.log"), "a").unwrap();
        clear_run_dir(&dir, &keep).unwrap();
        let left: Vec<_> = std::fs::read_dir(&dir)
            .unwrap()
            .map(|e| e.unwrap().file_name())
            .collect();
        assert_eq!(left, ["issuer"]);
        assert!(keep.join("signing-key.pem").exists());
        clear_run_dir(&dir.join("missing"), &keep).unwrap();
    }
}
