//! A real, independent OpenID provider for the tests: npm `oidc-provider`
//! (`integration-tests/oidc/`), run by Node on loopback. Client-credentials
//! grants return RS256 `at+jwt` access tokens with audience `agent-gateway`.

use std::io::{BufRead, BufReader};
use std::net::TcpListener;
use std::process::{Child, Command, Stdio};

use anyhow::{anyhow, bail, Context, Result};

use crate::envoy::die_with_parent;
use crate::paths::workspace_root;
use crate::wait::{self, Check};

pub const AUDIENCE: &str = "agent-gateway";
pub const CLIENT_ID: &str = "agent";
const CLIENT_SECRET: &str = "agent-secret";

pub struct OidcProvider {
    child: Child,
    pub issuer: String,
    pub port: u16,
}

impl OidcProvider {
    /// Starts the provider on `port` with a fresh signing key named `kid`.
    /// Restarting on the same port with another kid rotates the key.
    pub fn start(port: u16, kid: &str) -> Result<OidcProvider> {
        let dir = workspace_root().join("integration-tests/oidc");
        if !dir.join("node_modules/oidc-provider").exists() {
            bail!(
                "oidc-provider is not installed: run `cargo xtask test` (it runs `npm ci` in {})",
                dir.display()
            );
        }
        let mut cmd = Command::new("node");
        cmd.arg("provider.mjs")
            .arg(port.to_string())
            .arg(kid)
            .current_dir(&dir)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null());
        die_with_parent(&mut cmd);
        let mut child = cmd.spawn().context("starting node provider.mjs")?;
        let stdout = child.stdout.take().ok_or_else(|| anyhow!("no stdout"))?;
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines().map_while(Result::ok) {
                if let Some(issuer) = line.strip_prefix("READY ") {
                    let _ = tx.send(issuer.to_string());
                }
            }
        });
        let ready = wait::until("the OpenID provider to print READY", || {
            if let Ok(issuer) = rx.try_recv() {
                return Check::Done(issuer);
            }
            match child.try_wait() {
                Ok(Some(status)) => Check::Failed(anyhow!("the OpenID provider exited ({status})")),
                Ok(None) => Check::NotYet("node running, no READY line yet".into()),
                Err(e) => Check::Failed(e.into()),
            }
        });
        let issuer = match ready {
            Ok(issuer) => issuer,
            Err(e) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(e);
            }
        };
        Ok(OidcProvider {
            child,
            issuer,
            port,
        })
    }

    /// A client-credentials access token for the gateway audience.
    pub async fn token(&self, scope: &str) -> Result<String> {
        let resp = reqwest::Client::new()
            .post(format!("{}/token", self.issuer))
            .basic_auth(CLIENT_ID, Some(CLIENT_SECRET))
            .header("content-type", "application/x-www-form-urlencoded")
            .body(serde_urlencoded::to_string([
                ("grant_type", "client_credentials"),
                ("scope", scope),
            ])?)
            .send()
            .await?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await?;
        body["access_token"]
            .as_str()
            .map(str::to_string)
            .ok_or_else(|| anyhow!("token endpoint answered {status}: {body}"))
    }

    /// Stops the provider (the port is free again once this returns).
    pub fn stop(mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Drop for OidcProvider {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A loopback port that was free a moment ago (the provider must know its own
/// issuer URL before it listens, so it cannot take port 0).
pub fn free_port() -> Result<u16> {
    Ok(TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}
