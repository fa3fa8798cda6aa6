//! The approval service (`approver/`) in-process for tests, and the reviewer
//! calls a test makes: list pending approvals, approve or deny.

use std::net::SocketAddr;
use std::path::Path;

use serde_json::Value;
use tokio::net::TcpListener;
use transit_guard_approver::{serve_with_shutdown, Config};

use crate::wait::{self, Check};

/// The filter's key (`approval.api_key`) and the reviewer alice's token.
pub const FILTER_KEY: &str = "filter-key-0123456789";
pub const ALICE: &str = "alice-token-0123456789";

/// The approver on `listener` until the returned sender is dropped or fired.
pub fn start_approver(
    db: &Path,
    listener: TcpListener,
) -> (
    tokio::sync::oneshot::Sender<()>,
    tokio::task::JoinHandle<()>,
) {
    let config = Config::new(db, FILTER_KEY).reviewer("alice", ALICE);
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let task = tokio::spawn(async move {
        let _ = serve_with_shutdown(config, listener, async move {
            let _ = rx.await;
        })
        .await;
    });
    (tx, task)
}

fn reviewer() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

/// The approvals in `status` (`pending`, `approved`, `all`, ...), newest
/// first (up to 500).
pub async fn approvals(approver: SocketAddr, status: &str) -> Vec<Value> {
    let v: Value = reviewer()
        .get(format!(
            "http://{approver}/v1/approvals?status={status}&limit=500"
        ))
        .bearer_auth(ALICE)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["approvals"].as_array().cloned().unwrap_or_default()
}

/// The pending approvals, newest first (up to 500).
pub async fn pending(approver: SocketAddr) -> Vec<Value> {
    approvals(approver, "pending").await
}

/// Waits until `n` approvals are pending (and fails if more are); returns them.
pub async fn wait_pending(approver: SocketAddr, n: usize) -> Vec<Value> {
    let found = wait::until_async(&format!("{n} pending approvals"), || async move {
        let p = pending(approver).await;
        if p.len() >= n {
            Check::Done(p)
        } else {
            Check::NotYet(format!("{} pending: {p:?}", p.len()))
        }
    })
    .await;
    let p = found.unwrap_or_else(|e| panic!("{e:#}"));
    assert_eq!(p.len(), n, "pending approvals: {p:?}");
    p
}

pub async fn decide(approver: SocketAddr, id: &str, action: &str, body: Value) -> Value {
    let r = reviewer()
        .post(format!("http://{approver}/v1/approvals/{id}/{action}"))
        .bearer_auth(ALICE)
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    r.json().await.unwrap()
}
