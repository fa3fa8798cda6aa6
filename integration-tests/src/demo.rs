//! The demo's whole stack in one process: the dev token issuer (JWKS over
//! HTTP), the approval service, the demo customers upstream and Envoy with the
//! filter, running `examples/policies/demo.json`. `cargo xtask demo` starts it
//! on fixed ports; `tests/demo.rs` starts the same stack on ephemeral ones.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::Value;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

use crate::gateway::{gateway_template, Gateway, Options};
use crate::issuer::{Issuer, TokenRequest};
use crate::paths::workspace_root;
use crate::tokens::JwksServer;

/// The reviewer the demo's approver knows (never a caller's `sub`: reviewers
/// cannot approve their own requests).
pub const REVIEWER: &str = "reviewer";

/// Ports; 0 lets the kernel choose.
#[derive(Debug, Clone, Copy)]
pub struct Ports {
    pub listen: u16,
    pub admin: u16,
    pub upstream: u16,
    pub issuer: u16,
    pub approver: u16,
}

impl Ports {
    /// What the demo prints and the README documents.
    pub const DEMO: Ports = Ports {
        listen: 10443,
        admin: 9901,
        upstream: 18443,
        issuer: crate::issuer::PORT,
        approver: 8088,
    };
    pub const EPHEMERAL: Ports = Ports {
        listen: 0,
        admin: 0,
        upstream: 0,
        issuer: 0,
        approver: 0,
    };
}

pub struct DemoOptions {
    /// The run's folder: certificates, Envoy's config and logs, the audit
    /// log, the approver's database, the rendered policy.
    pub dir: PathBuf,
    /// Where the issuer key is kept (created if missing).
    pub issuer_dir: PathBuf,
    pub policy_path: PathBuf,
    pub ports: Ports,
}

impl DemoOptions {
    pub fn new(dir: PathBuf, issuer_dir: PathBuf, ports: Ports) -> DemoOptions {
        DemoOptions {
            dir,
            issuer_dir,
            policy_path: demo_policy_path(),
            ports,
        }
    }
}

pub fn demo_policy_path() -> PathBuf {
    workspace_root().join("examples/policies/demo.json")
}

pub struct DemoStack {
    // Field order is drop order: Envoy goes before the services it calls.
    pub gateway: Gateway,
    pub jwks: JwksServer,
    pub issuer: Issuer,
    pub issuer_created: bool,
    pub approver_addr: SocketAddr,
    /// The reviewer's bearer token for the approver's page and API.
    pub reviewer_token: String,
    /// The key the filter sends the approver (`approval.api_key`).
    pub filter_key: String,
    /// The policy Envoy runs (demo.json with this run's filter key), and
    /// where it was written.
    pub policy: Value,
    pub policy_path: PathBuf,
    approver_stop: oneshot::Sender<()>,
    approver_task: JoinHandle<Result<()>>,
}

impl DemoStack {
    /// Starts everything. Needs a multi-threaded Tokio runtime.
    pub async fn start(opts: DemoOptions) -> Result<DemoStack> {
        std::fs::create_dir_all(&opts.dir)
            .with_context(|| format!("creating {}", opts.dir.display()))?;
        let (issuer, issuer_created) = Issuer::load_or_create(&opts.issuer_dir)?;
        let jwks = JwksServer::start_on(loopback(opts.ports.issuer), &issuer.jwks()).await?;

        let filter_key = random_token();
        let reviewer_token = random_token();
        let template = std::fs::read_to_string(&opts.policy_path)
            .with_context(|| format!("reading {}", opts.policy_path.display()))?;
        let policy = render_policy(&template, &filter_key)
            .with_context(|| format!("rendering {}", opts.policy_path.display()))?;
        let policy_json = serde_json::to_string_pretty(&policy)?;
        let policy_path = opts.dir.join("policy.json");
        std::fs::write(&policy_path, &policy_json)?;

        let listener = tokio::net::TcpListener::bind(loopback(opts.ports.approver))
            .await
            .with_context(|| format!("binding the approver to port {}", opts.ports.approver))?;
        let approver_addr = listener.local_addr()?;
        let config = transit_guard_approver::Config::new(
            opts.dir.join("approver.sqlite"),
            filter_key.clone(),
        )
        .reviewer(REVIEWER, &reviewer_token);
        config.validate()?;
        let (approver_stop, stopped) = oneshot::channel::<()>();
        let approver_task = tokio::spawn(transit_guard_approver::serve_with_shutdown(
            config,
            listener,
            async move {
                let _ = stopped.await;
            },
        ));

        let gateway = Gateway::start(
            Options {
                dir: opts.dir.clone(),
                policy_json,
                template: gateway_template(),
                listen_port: opts.ports.listen,
                admin_port: opts.ports.admin,
                upstream_port: opts.ports.upstream,
                extra_vars: Default::default(),
                concurrency: crate::envoy::DEFAULT_CONCURRENCY,
                overlay: None,
            }
            .with_idp(jwks.addr)
            .with_approver(approver_addr),
        )
        .await;
        let gateway = match gateway {
            Ok(g) => g,
            Err(e) => {
                let _ = approver_stop.send(());
                return Err(e);
            }
        };
        let stack = DemoStack {
            gateway,
            jwks,
            issuer,
            issuer_created,
            approver_addr,
            reviewer_token,
            filter_key,
            policy,
            policy_path,
            approver_stop,
            approver_task,
        };
        if let Err(e) = stack.wait_for_keys().await {
            let _ = stack.stop().await;
            return Err(e);
        }
        Ok(stack)
    }

    /// Waits until every Wasm VM (one per worker and the main thread's) has
    /// the issuer's keys, so the first request is not refused with
    /// `jwks_unavailable`: one VM logs "fetched N keys for provider", the
    /// others "adopted N shared keys for provider" on their next tick.
    async fn wait_for_keys(&self) -> Result<()> {
        let vms = crate::envoy::DEFAULT_CONCURRENCY as usize + 1;
        self.gateway
            .envoy
            .wait_for_log_count(" keys for provider ", vms)
            .context("not every VM of the filter has the demo issuer's keys")?;
        Ok(())
    }

    /// Whether the running policy has an `approval` section (the filter asks
    /// the approver); without one, `require_approval` fails closed.
    pub fn approval_wired(&self) -> bool {
        self.policy.get("approval").is_some()
    }

    /// A token from the demo issuer.
    pub fn token(&self, sub: &str, groups: &[&str]) -> Result<String> {
        let mut req = TokenRequest::new(sub);
        req.groups = groups.iter().map(|g| g.to_string()).collect();
        self.issuer.mint(&req)
    }

    /// `http://ADDR` of the approver (its page and API).
    pub fn approver_url(&self) -> String {
        format!("http://{}", self.approver_addr)
    }

    /// Stops Envoy first (no request is in flight any more), then the
    /// issuer and the approver (gracefully: long-polls answer at once).
    pub async fn stop(self) -> Result<()> {
        let DemoStack {
            gateway,
            jwks,
            approver_stop,
            approver_task,
            ..
        } = self;
        drop(gateway);
        drop(jwks);
        let _ = approver_stop.send(());
        tokio::time::timeout(Duration::from_secs(10), approver_task)
            .await
            .context("the approver did not stop within 10 s")?
            .context("the approver's task")?
    }
}

fn loopback(port: u16) -> SocketAddr {
    SocketAddr::from(([127, 0, 0, 1], port))
}

/// 32 random bytes as hex: the per-run filter key and reviewer token.
pub fn random_token() -> String {
    let bytes: [u8; 32] = rand::random();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The policy for this run: the template with `approval.api_key` set to this
/// run's filter key (when the template has an `approval` section).
pub fn render_policy(template: &str, filter_key: &str) -> Result<Value> {
    let mut policy: Value = serde_json::from_str(template)?;
    if let Some(approval) = policy.get_mut("approval").and_then(Value::as_object_mut) {
        approval.insert("api_key".into(), Value::String(filter_key.to_string()));
    }
    Ok(policy)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_filter_key_goes_into_the_approval_section() {
        let p = render_policy(
            r#"{"approval": {"cluster": "approver", "api_key": "x"}}"#,
            "k",
        )
        .unwrap();
        assert_eq!(
            p,
            serde_json::json!({"approval": {"cluster": "approver", "api_key": "k"}})
        );
        let p = render_policy(r#"{"mode": "enforce"}"#, "k").unwrap();
        assert_eq!(p, serde_json::json!({"mode": "enforce"}));
        assert_eq!(random_token().len(), 64);
        assert_ne!(random_token(), random_token());
    }
}
