//! The whole stack for one test or the demo: a run-time PKI, a recording TLS
//! upstream and Envoy with the filter in front of it.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use anyhow::Result;

use crate::certs::{Pki, UPSTREAM_NAME};
use crate::envoy::{Envoy, EnvoyConfig};
use crate::paths;
use crate::template::policy_literal;
use crate::upstream::Upstream;
use crate::wait::{self, Check};

/// The shipped gateway config.
pub fn gateway_template() -> PathBuf {
    paths::workspace_root().join("envoy/gateway.yaml")
}

pub struct Options {
    /// Folder for certificates, the rendered config and logs.
    pub dir: PathBuf,
    pub policy_json: String,
    pub template: PathBuf,
    /// 0 lets the kernel choose (tests); the demo uses fixed ports.
    pub listen_port: u16,
    pub admin_port: u16,
    pub upstream_port: u16,
    /// Placeholder values that replace the defaults (e.g. `IDP_PORT`).
    pub extra_vars: BTreeMap<&'static str, String>,
    /// Envoy worker threads.
    pub concurrency: u32,
    /// Bootstrap YAML merged over the rendered config (an extra cluster).
    pub overlay: Option<String>,
}

impl Options {
    /// A test's stack: its own folder under `target/it/`, ephemeral ports.
    pub fn for_test(name: &str, policy_json: &str) -> Result<Options> {
        Ok(Options {
            dir: paths::scratch_dir(name)?,
            policy_json: policy_json.to_string(),
            template: gateway_template(),
            listen_port: 0,
            admin_port: 0,
            upstream_port: 0,
            extra_vars: BTreeMap::new(),
            concurrency: crate::envoy::DEFAULT_CONCURRENCY,
            overlay: None,
        })
    }

    /// The mis-wired plaintext listener fixture (`integration-tests/envoy/`)
    /// instead of the shipped TLS listener: for `require_tls` tests.
    pub fn plaintext(mut self) -> Options {
        self.template =
            paths::workspace_root().join("integration-tests/envoy/plaintext-listener.yaml");
        self
    }

    /// Points the `idp` cluster at an OpenID provider.
    pub fn with_idp(mut self, addr: SocketAddr) -> Options {
        self.extra_vars.insert("IDP_HOST", addr.ip().to_string());
        self.extra_vars.insert("IDP_PORT", addr.port().to_string());
        self
    }

    /// Points the `audit_collector` cluster at an HTTP audit collector.
    pub fn with_collector(mut self, addr: SocketAddr) -> Options {
        self.extra_vars
            .insert("COLLECTOR_HOST", addr.ip().to_string());
        self.extra_vars
            .insert("COLLECTOR_PORT", addr.port().to_string());
        self
    }

    /// Points the `approver` cluster at the approval service.
    pub fn with_approver(mut self, addr: SocketAddr) -> Options {
        self.extra_vars
            .insert("APPROVER_HOST", addr.ip().to_string());
        self.extra_vars
            .insert("APPROVER_PORT", addr.port().to_string());
        self
    }
}

/// The values for the placeholders of the configs in `envoy/`. Files Envoy
/// writes (the audit log) go next to the certificates' folder.
pub fn template_vars(
    pki_dir: &Path,
    policy_json: &str,
    listen_port: u16,
    admin_port: u16,
    upstream: SocketAddr,
) -> Result<BTreeMap<&'static str, String>> {
    Ok(BTreeMap::from([
        ("LISTEN_PORT", listen_port.to_string()),
        ("ADMIN_PORT", admin_port.to_string()),
        ("CERT_DIR", pki_dir.display().to_string()),
        ("UPSTREAM_HOST", upstream.ip().to_string()),
        ("UPSTREAM_PORT", upstream.port().to_string()),
        ("UPSTREAM_SNI", UPSTREAM_NAME.to_string()),
        ("WASM", paths::wasm_module()?.display().to_string()),
        ("POLICY", policy_literal(policy_json)),
        ("AUDIT_LOG", audit_log_path(pki_dir).display().to_string()),
        // No IdP or approver unless a test or the demo says so: the discard
        // port, where any connection fails (and the filter fails closed).
        ("IDP_HOST", "127.0.0.1".to_string()),
        ("IDP_PORT", "9".to_string()),
        ("APPROVER_HOST", "127.0.0.1".to_string()),
        ("APPROVER_PORT", "9".to_string()),
        ("COLLECTOR_HOST", "127.0.0.1".to_string()),
        ("COLLECTOR_PORT", "9".to_string()),
        (
            "CREDENTIAL_SDS",
            credential_sds(pki_dir)?.display().to_string(),
        ),
        // Bench twins only (envoy/bench/): the keys of Envoy's own
        // jwt_authn, and the bench's SSE source (none: the discard port).
        ("JWKS", policy_literal(PLACEHOLDER_JWKS)),
        ("SSE_PORT", "9".to_string()),
    ]))
}

/// Envoy refuses a `jwt_authn` without a usable key: until the bench puts
/// its own, RFC 7515 appendix A.2's public RSA key (no token of ours verifies).
const PLACEHOLDER_JWKS: &str = r#"{"keys":[{"kty":"RSA","e":"AQAB","n":"ofgWCuLjybRlzo0tZWJjNiuSfb4p4fAkd_wWJcyQoTbji9k0l8W26mPddxHmfHQp-Vaw-4qPCJrcS2mJPMEzP1Pt0Bm4d4QlL-yRT-SFd2lZS-pCgNMsD1W_YpRPEwOWvG6b32690r2jZ47soMZo9wGzjb_7OMg0LOL-bSf63kpaSHSXndS5z5rexMdbBYUsLA9e-KXBdQOS-UTo7WTBEMa2R2CapHg665xsmtdVMTBQY4uDZlxvb3qCo5ZwKh9kG4LT6_I5IhlJH7aGhyxXFvUK-DWNmoudF8NAco9_h9iaGNj8q2ethFkMLs91kzk2PAcDTW9gb54h4FRWyuXpoQ"}]}"#;

/// The run's upstream credential, as Envoy injects it (`authorization`).
pub fn upstream_credential(pki_dir: &Path) -> Result<String> {
    let text = std::fs::read_to_string(credential_sds(pki_dir)?)?;
    text.lines()
        .find_map(|l| l.trim().strip_prefix("inline_string: "))
        .map(|v| v.trim_matches('"').to_string())
        .ok_or_else(|| anyhow::anyhow!("no credential in the SDS file"))
}

/// Writes (once per run folder) an SDS file with a fresh upstream credential
/// beside the certificates, and returns its path (absolute, as SDS wants).
fn credential_sds(pki_dir: &Path) -> Result<PathBuf> {
    let path = pki_dir
        .parent()
        .unwrap_or(pki_dir)
        .join("upstream-credential.yaml");
    if !path.exists() {
        let nonce = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0);
        let credential = format!("Bearer tg-upstream-{:x}{nonce:x}", std::process::id());
        std::fs::write(
            &path,
            format!(
                "resources:\n- \"@type\": type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.Secret\n  \
                 name: upstream-credential\n  generic_secret:\n    secret:\n      inline_string: \"{credential}\"\n"
            ),
        )?;
    }
    Ok(std::path::absolute(&path)?)
}

/// Where Envoy writes the audit trail for a run whose certificates are in `pki_dir`.
pub fn audit_log_path(pki_dir: &Path) -> PathBuf {
    pki_dir.parent().unwrap_or(pki_dir).join("audit.log")
}

pub struct Gateway {
    // Field order is drop order: Envoy stops before its upstream.
    pub envoy: Envoy,
    pub upstream: Upstream,
    pub pki: Pki,
    pub dir: PathBuf,
}

impl Gateway {
    pub async fn start(opts: Options) -> Result<Gateway> {
        let pki = Pki::generate(&opts.dir.join("certs"))?;
        let upstream =
            Upstream::start_on(&pki, SocketAddr::from(([127, 0, 0, 1], opts.upstream_port)))
                .await?;
        let mut vars = template_vars(
            &pki.dir,
            &opts.policy_json,
            opts.listen_port,
            opts.admin_port,
            upstream.addr,
        )?;
        vars.extend(opts.extra_vars.clone());
        let config = EnvoyConfig {
            template: opts.template.clone(),
            vars,
            dir: opts.dir.clone(),
        };
        let envoy = tokio::task::block_in_place(|| {
            Envoy::start_with_overlay(&config, opts.concurrency, opts.overlay.as_deref())
        })?;
        Ok(Gateway {
            envoy,
            upstream,
            pki,
            dir: opts.dir,
        })
    }

    /// A test's stack with the shipped gateway config and this policy.
    pub async fn for_test(name: &str, policy_json: &str) -> Result<Gateway> {
        Gateway::start(Options::for_test(name, policy_json)?).await
    }

    /// The first listener's address (the agent-facing port).
    pub fn listen_addr(&self, listener: &str) -> SocketAddr {
        self.envoy.listener(listener)
    }

    /// `https://localhost:PORT{path}` on the agent-facing TLS listener.
    pub fn url(&self, path: &str) -> String {
        format!(
            "https://localhost:{}{path}",
            self.listen_addr("https").port()
        )
    }

    /// The audit records written so far, parsed.
    pub fn audit_records(&self) -> Vec<serde_json::Value> {
        read_audit_log(&audit_log_path(&self.pki.dir))
    }

    /// Waits until at least `n` audit records were written (Envoy flushes
    /// the access log every 100 ms); returns all of them.
    #[track_caller]
    pub fn wait_for_audit_records(&self, n: usize) -> Vec<serde_json::Value> {
        self.wait_for_audit(&format!("{n} audit records"), |r| r.len() >= n)
    }

    /// Waits until the audit records written so far satisfy `done` (`what`
    /// names the condition in the failure message); returns them. Waiting
    /// for the record a test is about, rather than for a count, keeps the
    /// test right when earlier steps wrote more records than it assumed.
    #[track_caller]
    pub fn wait_for_audit(
        &self,
        what: &str,
        done: impl Fn(&[serde_json::Value]) -> bool,
    ) -> Vec<serde_json::Value> {
        wait_for_audit_log(&audit_log_path(&self.pki.dir), what, done)
    }

    /// `http://127.0.0.1:PORT{path}` on the plaintext fixture's listener.
    pub fn plaintext_url(&self, path: &str) -> String {
        format!(
            "http://127.0.0.1:{}{path}",
            self.listen_addr("plaintext").port()
        )
    }

    /// An HTTPS client that trusts only this run's CA.
    pub fn client(&self) -> Result<reqwest::Client> {
        crate::client::https_client(&self.pki.ca_pem, self.listen_addr("https"))
    }
}

/// Parses an audit log; a line that is not JSON is kept as a JSON string so
/// tests see (and fail on) it.
pub fn read_audit_log(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|l| {
            serde_json::from_str(l).unwrap_or_else(|_| serde_json::Value::String(l.to_string()))
        })
        .collect()
}

/// [`Gateway::wait_for_audit`] on the audit log at `path` (for tests that
/// took the gateway apart).
#[track_caller]
pub fn wait_for_audit_log(
    path: &Path,
    what: &str,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let found = wait::until(what, || {
        let records = read_audit_log(path);
        if done(&records) {
            Check::Done(records)
        } else {
            let last = records
                .get(records.len().saturating_sub(3)..)
                .unwrap_or_default();
            Check::NotYet(format!(
                "{} records in {}, the last: {last:?}",
                records.len(),
                path.display()
            ))
        }
    });
    match found {
        Ok(records) => records,
        Err(e) => panic!("{e:#}"),
    }
}
