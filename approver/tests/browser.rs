//! The reviewer page in headless Chromium: a request created through the API
//! shows up, the browser approves it (and denies another), and the API then
//! reports the decisions.
//!
//! Needs Node (>= 20) and Debian's Chromium (`apt-get install -y chromium`;
//! `CHROMIUM` overrides `/usr/bin/chromium`). `playwright-core` is installed
//! with `npm ci` into `approver/tests/browser/node_modules` when missing (no
//! browser is ever downloaded: the script points it at the system Chromium).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use common::*;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use transit_guard_approver::oidc::OidcConfig;
use transit_guard_approver::policy::Policies;

fn browser_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/browser")
}

fn chromium() -> PathBuf {
    let path = std::env::var_os("CHROMIUM")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/bin/chromium"));
    assert!(
        path.exists(),
        "{} is missing: install Debian's Chromium with `apt-get update && apt-get install -y chromium` \
         (or set CHROMIUM); `cargo xtask test` does this for you",
        path.display()
    );
    path
}

/// `npm ci` in tests/browser unless playwright-core and oidc-provider are there.
fn ensure_playwright() {
    let dir = browser_dir();
    if ["playwright-core", "oidc-provider"].iter().all(|p| {
        dir.join("node_modules")
            .join(p)
            .join("package.json")
            .exists()
    }) {
        return;
    }
    let status = Command::new("npm")
        .args(["ci", "--no-audit", "--no-fund"])
        .current_dir(&dir)
        .status()
        .unwrap_or_else(|e| panic!("running npm (Node is needed for the browser test): {e}"));
    assert!(status.success(), "npm ci in {} failed", dir.display());
}

#[tokio::test]
async fn a_reviewer_approves_and_denies_in_the_browser() {
    let chromium = chromium();
    ensure_playwright();
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(dir.path())).await;
    let mut req = request("fp-1", "agent-7", "card-export");
    req["preview"] =
        json!("{\"email\":\"[email]\",\"note\":\"<img src=x onerror=window.__xss=1>\"}");
    let approve_id = create_ok(&s, &req).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let deny_id = create_ok(&s, &request("fp-2", "agent-9", "card-export")).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut node = tokio::process::Command::new("node");
    node.arg(browser_dir().join("review.mjs"))
        .current_dir(browser_dir())
        .env("APPROVER_URL", &s.base)
        .env("REVIEWER_TOKEN", ALICE)
        .env("APPROVE_ID", &approve_id)
        .env("DENY_ID", &deny_id)
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(120), node.output())
        .await
        .expect("the browser script took more than 120 s")
        .expect("running node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "review.mjs failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stdout.contains("review.mjs: ok"), "{stdout}");

    // The API agrees with what the browser did.
    let (code, v) = poll(&s, &approve_id, 0).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "approved");
    assert_eq!(v["reviewer"], "alice");
    assert_eq!(v["reason"], "checked by the browser test");
    let (_, v) = poll(&s, &deny_id, 0).await;
    assert_eq!(v["status"], "denied");
    assert_eq!(v["reason"], "not this one");
}

/// The reviewers' identity provider: `idp.mjs` (npm oidc-provider) on a free
/// loopback port, signing ID tokens with `alg`; its issuer URL once it listens.
async fn start_idp(redirect_uri: &str, alg: &str) -> (String, tokio::process::Child) {
    let port = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port();
    let mut child = tokio::process::Command::new("node")
        .arg(browser_dir().join("idp.mjs"))
        .arg(port.to_string())
        .arg(redirect_uri)
        .arg(alg)
        .current_dir(browser_dir())
        .stdout(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("running node");
    let mut lines = BufReader::new(child.stdout.take().unwrap()).lines();
    let issuer = tokio::time::timeout(Duration::from_secs(30), async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(issuer) = line.strip_prefix("READY ") {
                return issuer.to_string();
            }
        }
        panic!("idp.mjs exited without READY");
    })
    .await
    .expect("the identity provider did not start within 30 s");
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    (issuer, child)
}

#[tokio::test]
async fn reviewers_sign_in_with_oidc_and_the_policy_needs_two_of_dba() {
    sign_in_scenario("RS256").await;
}

/// The same with a provider that signs ID tokens with ES256 (its only key is
/// a P-256 key: an approver that read only RS256 could sign no one in).
#[tokio::test]
async fn reviewers_sign_in_with_es256_id_tokens() {
    sign_in_scenario("ES256").await;
}

/// carol and dave (dba) sign in through the real provider in Chromium and
/// give the two approvals the rule's policy needs; erin (dev) may not.
async fn sign_in_scenario(alg: &str) {
    let chromium = chromium();
    ensure_playwright();
    let dir = tempfile::tempdir().unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (issuer, _idp) = start_idp(&format!("{base}/auth/callback"), alg).await;

    let mut cfg = config(dir.path()).policies(
        Policies::from_json(
            br#"{"rules": {"card-export": {"groups": ["dba"], "approvals": 2, "max_grant_secs": 3600}}}"#,
        )
        .unwrap(),
    );
    cfg.public_url = Some(base.clone());
    cfg.session_secret = Some("session-secret-0123456789abcdef0123".into());
    cfg.oidc = Some(OidcConfig {
        issuer,
        client_id: "approver".into(),
        client_secret: "approver-secret-0123456789".into(),
        name_claim: "sub".into(),
        groups_claim: "groups".into(),
        session_ttl_secs: 3600,
    });
    let s = Server::start_on(cfg, listener);
    let mut req = request("fp-1", "agent-7", "card-export");
    req["headers"] = json!([
        {"name": "authorization", "value": "[REDACTED]"},
        {"name": "content-type", "value": "application/json"}
    ]);
    let id = create_ok(&s, &req).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut node = tokio::process::Command::new("node");
    node.arg(browser_dir().join("signin.mjs"))
        .current_dir(browser_dir())
        .env("APPROVER_URL", &s.base)
        .env("APPROVE_ID", &id)
        .env("CHROMIUM", &chromium)
        .kill_on_drop(true);
    let out = tokio::time::timeout(Duration::from_secs(180), node.output())
        .await
        .expect("the sign-in script took more than 180 s")
        .expect("running node");
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        out.status.success(),
        "signin.mjs failed ({})\nstdout:\n{stdout}\nstderr:\n{stderr}",
        out.status
    );
    assert!(stdout.contains("signin.mjs: ok"), "{stdout}");

    // The filter sees one approval by both reviewers, each one recorded.
    let (code, v) = poll(&s, &id, 0).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "approved");
    assert_eq!(v["reviewer"], "carol, dave");
    let (_, l) = list(&s, ALICE, "approved").await;
    let votes = &l["approvals"][0]["votes"];
    assert_eq!(votes[0]["reviewer"], "carol");
    assert_eq!(votes[0]["reason"], "carol checked it");
    assert_eq!(votes[1]["reviewer"], "dave");
}
