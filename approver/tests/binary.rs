//! The real binary: flags, the listening line, a request, a clean stop on SIGTERM.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::Value;
use tokio::io::{AsyncBufReadExt, BufReader};

#[tokio::test]
async fn the_binary_serves_and_stops_on_sigterm() {
    let dir = tempfile::tempdir().unwrap();
    let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_transit-guard-approver"))
        .args(["--listen", "127.0.0.1:0", "--db"])
        .arg(dir.path().join("a.sqlite"))
        .args(["--filter-key", "filter-key-0123456789"])
        .args(["--reviewer", "alice=alice-token-0123456789"])
        .env_remove("RUST_LOG")
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = tokio::time::timeout(common::PATIENCE, async {
        while let Some(line) = lines.next_line().await.unwrap() {
            if let Some(rest) = line.split("addr=").nth(1) {
                return rest.split_whitespace().next().unwrap().to_string();
            }
        }
        panic!("the binary exited without listening");
    })
    .await
    .expect("no listening line");

    let r = reqwest::Client::new()
        .get(format!("http://{addr}/v1/approvals"))
        .bearer_auth("alice-token-0123456789")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let v: Value = r.json().await.unwrap();
    assert_eq!(v["approvals"], serde_json::json!([]));

    // A long-poll in flight when the service is told to stop answers at once
    // with the status it has (pending), and the stop does not wait 30 s for it.
    let r = reqwest::Client::new()
        .post(format!("http://{addr}/v1/approvals"))
        .header("x-approver-key", "filter-key-0123456789")
        .json(&serde_json::json!({
            "request_id": "r1", "fingerprint": "f1",
            "identity": {"sub": "agent-7", "iss": "i", "groups": []},
            "rule": "card-export", "method": "POST", "authority": "api.internal",
            "path": "/customers/export", "preview": ""
        }))
        .send()
        .await
        .unwrap();
    let id = r.json::<Value>().await.unwrap()["id"]
        .as_str()
        .unwrap()
        .to_string();
    let addr: SocketAddr = addr.parse().unwrap();
    let poll = common::poll_in_flight(addr, &id, 30).await;

    let stopped = std::time::Instant::now();
    let pid = child.id().unwrap() as libc::pid_t;
    assert_eq!(unsafe { libc::kill(pid, libc::SIGTERM) }, 0);
    let (status, v) = poll.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(v["status"], "pending");
    // Far sooner than the poll's own 30 s.
    assert!(
        stopped.elapsed() < Duration::from_secs(10),
        "{:?}",
        stopped.elapsed()
    );
    let status = tokio::time::timeout(common::PATIENCE, child.wait())
        .await
        .expect("no exit after SIGTERM")
        .unwrap();
    assert!(status.success(), "{status}");
}

#[tokio::test]
async fn the_binary_refuses_a_config_without_filter_key() {
    let out = tokio::process::Command::new(env!("CARGO_BIN_EXE_transit-guard-approver"))
        .args(["--listen", "127.0.0.1:0", "--db", "/nonexistent/x.sqlite"])
        .env_remove("TG_APPROVER_FILTER_KEY")
        .output()
        .await
        .unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("--filter-key"), "{stderr}");
}
