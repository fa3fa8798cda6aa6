//! `transit-guard-demo-peers`: the demo's dev token issuer and customers API
//! in a container of their own, for `docker-compose.yml` (the same pieces
//! `cargo xtask demo` runs in-process: `integration_tests::demo`).
//!
//! `serve` (the default) makes the run's PKI, renders Envoy's config from
//! `envoy/gateway.yaml` and `examples/policies/demo.json` into the run folder
//! (the Envoy container mounts it read-only), then serves the issuer's JWKS
//! (127.0.0.1:18080) and the customers API (127.0.0.1:18443) until SIGTERM.
//! `token --sub S [--group G]...` prints a token from the issuer;
//! `healthcheck` exits 0 once `serve` is ready (compose's healthcheck).
//!
//! Environment (compose sets it): TG_RUN_DIR (default /run/transit-guard),
//! TG_TEMPLATE, TG_POLICY, TG_WASM (the module's path, the same in the Envoy
//! container), TG_FILTER_KEY (the approver's `--filter-key`), TG_AUDIT_LOG,
//! TG_ENVOY_UID (who Envoy runs as: it must read the gateway's key), and the
//! ports: TG_LISTEN_PORT, TG_ADMIN_PORT, TG_APPROVER_PORT, TG_ISSUER_PORT,
//! TG_UPSTREAM_PORT (the demo's by default: 10443, 9901, 8088, 18080, 18443).

use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{bail, Context, Result};
use integration_tests::certs::Pki;
use integration_tests::demo::{render_policy, Ports};
use integration_tests::gateway::template_vars;
use integration_tests::issuer::{Issuer, TokenRequest};
use integration_tests::template::render;
use integration_tests::tokens::JwksServer;
use integration_tests::upstream::Upstream;

fn env_or(name: &str, default: &str) -> String {
    std::env::var(name).unwrap_or_else(|_| default.to_string())
}

fn run_dir() -> PathBuf {
    PathBuf::from(env_or("TG_RUN_DIR", "/run/transit-guard"))
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        None | Some("serve") => serve(),
        Some("token") => token(&args[1..]),
        Some("healthcheck") => healthcheck(),
        Some(other) => {
            bail!("unknown command {other:?}: serve | token --sub S [--group G]... | healthcheck")
        }
    }
}

/// The demo's ports, or those the environment names.
fn ports() -> Result<Ports> {
    let port = |name: &str, default: u16| -> Result<u16> {
        match std::env::var(name) {
            Ok(v) => v.parse().with_context(|| format!("{name}={v:?}")),
            Err(_) => Ok(default),
        }
    };
    let d = Ports::DEMO;
    Ok(Ports {
        listen: port("TG_LISTEN_PORT", d.listen)?,
        admin: port("TG_ADMIN_PORT", d.admin)?,
        upstream: port("TG_UPSTREAM_PORT", d.upstream)?,
        issuer: port("TG_ISSUER_PORT", d.issuer)?,
        approver: port("TG_APPROVER_PORT", d.approver)?,
    })
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

fn serve() -> Result<()> {
    let run = run_dir();
    let gateway_dir = run.join("gateway");
    let ready = gateway_dir.join("ready");
    let _ = std::fs::remove_file(&ready);
    let pki = Pki::generate(&gateway_dir.join("certs"))?;
    std::fs::copy(pki.path("ca.pem"), run.join("ca.pem"))?;
    let (issuer, created) = Issuer::load_or_create(&run.join("issuer"))?;
    if created {
        eprintln!(
            "demo-peers: created the issuer key in {}",
            issuer.dir.display()
        );
    }

    let rt = tokio::runtime::Runtime::new()?;
    rt.block_on(async move {
        let ports = ports()?;
        let jwks = JwksServer::start_on(loopback(ports.issuer), &issuer.jwks()).await?;
        let upstream = Upstream::start_on(&pki, loopback(ports.upstream)).await?;
        render_envoy_config(&pki, upstream.addr, ports)?;
        std::fs::write(&ready, "ready\n")?;
        eprintln!(
            "demo-peers: issuer http://{} (JWKS), customers API https://{}; Envoy config {}",
            jwks.addr,
            upstream.addr,
            gateway_dir.join("envoy.yaml").display()
        );
        let mut term = tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate())?;
        tokio::select! {
            r = tokio::signal::ctrl_c() => r?,
            _ = term.recv() => {}
        }
        let _ = std::fs::remove_file(&ready);
        eprintln!("demo-peers: stopping");
        Ok(())
    })
}

/// `envoy/gateway.yaml` with the demo's ports and this run's policy, PKI and
/// filter key, as the Envoy container sees the paths.
fn render_envoy_config(pki: &Pki, upstream: SocketAddr, ports: Ports) -> Result<()> {
    let template_path = env_or("TG_TEMPLATE", "/etc/transit-guard/gateway.yaml");
    let policy_path = env_or("TG_POLICY", "/etc/transit-guard/demo.json");
    let filter_key = std::env::var("TG_FILTER_KEY").context("TG_FILTER_KEY is not set")?;
    let policy_template =
        std::fs::read_to_string(&policy_path).with_context(|| format!("reading {policy_path}"))?;
    let policy = serde_json::to_string_pretty(&render_policy(&policy_template, &filter_key)?)?;
    let mut vars = template_vars(&pki.dir, &policy, ports.listen, ports.admin, upstream)?;
    let audit_log = env_or("TG_AUDIT_LOG", "/var/log/transit-guard/audit.log");
    for (name, value) in [
        ("AUDIT_LOG", audit_log),
        ("IDP_HOST", "127.0.0.1".to_string()),
        ("IDP_PORT", ports.issuer.to_string()),
        ("APPROVER_HOST", "127.0.0.1".to_string()),
        ("APPROVER_PORT", ports.approver.to_string()),
    ] {
        vars.insert(name, value);
    }
    let template = std::fs::read_to_string(&template_path)
        .with_context(|| format!("reading {template_path}"))?;
    let gateway_dir = pki.dir.parent().unwrap_or(&pki.dir);
    std::fs::write(gateway_dir.join("envoy.yaml"), render(&template, &vars)?)?;
    std::fs::write(gateway_dir.join("policy.json"), policy)?;

    // Envoy runs as its own user: it reads the gateway key and writes the
    // audit log; nothing else may.
    // Its log folder is `RUN/log` here (mounted where TG_AUDIT_LOG points).
    let uid: u32 = env_or("TG_ENVOY_UID", "101")
        .parse()
        .context("TG_ENVOY_UID")?;
    chown(&pki.path("gateway-key.pem"), uid)?;
    let log_dir = run_dir().join("log");
    std::fs::create_dir_all(&log_dir)?;
    chown(&log_dir, uid)?;
    Ok(())
}

fn chown(path: &Path, uid: u32) -> Result<()> {
    std::os::unix::fs::chown(path, Some(uid), Some(uid))
        .with_context(|| format!("chown {uid} {}", path.display()))
}

/// A token from the issuer this container serves.
fn token(args: &[String]) -> Result<()> {
    let mut req = TokenRequest::new("");
    let mut it = args.iter();
    while let Some(flag) = it.next() {
        let value = it.next().with_context(|| format!("{flag} needs a value"))?;
        match flag.as_str() {
            "--sub" => req.sub = value.clone(),
            "--group" => req.groups.push(value.clone()),
            "--scope" => req.scopes.push(value.clone()),
            "--ttl" => req.ttl_secs = value.parse().context("--ttl")?,
            other => bail!("unknown flag {other}"),
        }
    }
    if req.sub.is_empty() {
        bail!("usage: token --sub S [--group G]... [--scope S]... [--ttl SECS]");
    }
    let issuer = Issuer::load(&run_dir().join("issuer"))?;
    println!("{}", issuer.mint(&req)?);
    Ok(())
}

/// Ready: the config is rendered and the issuer answers.
fn healthcheck() -> Result<()> {
    if !run_dir().join("gateway/ready").exists() {
        bail!("not ready yet");
    }
    TcpStream::connect_timeout(&loopback(ports()?.issuer), Duration::from_secs(1))
        .context("the issuer does not answer")?;
    Ok(())
}
