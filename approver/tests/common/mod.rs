//! Starts the approver in-process on an ephemeral port, and talks to it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use serde_json::{json, Value};
use tokio::net::TcpListener;
use transit_guard_approver::{serve, Config};

pub mod postgres;

pub const FILTER_KEY: &str = "filter-key-0123456789";
pub const ALICE: &str = "alice-token-0123456789";
pub const BOB: &str = "bob-token-0123456789ab";

pub struct Server {
    pub addr: SocketAddr,
    pub base: String,
    task: tokio::task::JoinHandle<anyhow::Result<()>>,
}

impl Server {
    pub async fn start(config: Config) -> Server {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        Server::start_on(config, listener)
    }

    /// On a listener bound already (when the config needs its address).
    pub fn start_on(config: Config, listener: TcpListener) -> Server {
        let addr = listener.local_addr().unwrap();
        let task = tokio::spawn(serve(config, listener));
        Server {
            addr,
            base: format!("http://{addr}"),
            task,
        }
    }

    /// Stops the server as a crash would: the task is dropped mid-flight.
    pub async fn kill(mut self) {
        self.task.abort();
        let _ = (&mut self.task).await;
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        self.task.abort();
    }
}

/// A config on a fresh database in `dir`, with reviewers alice and bob.
pub fn config(dir: &Path) -> Config {
    Config::new(db(dir), FILTER_KEY)
        .reviewer("alice", ALICE)
        .reviewer("bob", BOB)
}

pub fn db(dir: &Path) -> PathBuf {
    dir.join("approver.sqlite")
}

pub fn client() -> reqwest::Client {
    reqwest::Client::builder().build().unwrap()
}

pub fn request(fingerprint: &str, sub: &str, rule: &str) -> Value {
    json!({
        "request_id": format!("req-{fingerprint}"),
        "fingerprint": fingerprint,
        "identity": { "sub": sub, "iss": "https://idp.test", "groups": ["agents"] },
        "rule": rule,
        "method": "POST",
        "authority": "api.internal",
        "path": "/customers/export",
        "preview": "{\"email\":\"[email]\"}"
    })
}

/// The filter's POST; returns (status, body).
pub async fn create(s: &Server, body: &Value) -> (u16, Value) {
    let r = client()
        .post(format!("{}/v1/approvals", s.base))
        .header("x-approver-key", FILTER_KEY)
        .json(body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// The filter's POST, which must answer 200; returns the body.
pub async fn create_ok(s: &Server, body: &Value) -> Value {
    let (status, v) = create(s, body).await;
    assert_eq!(status, 200, "{v}");
    v
}

/// The filter's long-poll.
pub async fn poll(s: &Server, id: &str, wait: u64) -> (u16, Value) {
    let r = client()
        .get(format!("{}/v1/approvals/{id}?wait={wait}", s.base))
        .header("x-approver-key", FILTER_KEY)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// A reviewer's decision: `action` is "approve" or "deny".
pub async fn decide(s: &Server, token: &str, id: &str, action: &str, body: Value) -> (u16, Value) {
    let r = client()
        .post(format!("{}/v1/approvals/{id}/{action}", s.base))
        .bearer_auth(token)
        .json(&body)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

pub async fn list(s: &Server, token: &str, status: &str) -> (u16, Value) {
    let r = client()
        .get(format!("{}/v1/approvals?status={status}", s.base))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let code = r.status().as_u16();
    (code, r.json().await.unwrap())
}

/// How long a test waits for something that should happen at once (a poll
/// reaching the server, a webhook arriving): far above what it takes on a
/// quiet machine, so only a real failure reaches it.
pub const PATIENCE: std::time::Duration = std::time::Duration::from_secs(60);

/// Starts the filter's long-poll for `id` and returns once the server has
/// read it, so a decision (or a stop) that follows finds the poll waiting,
/// never racing it. The task answers (status, body).
pub async fn poll_in_flight(
    addr: SocketAddr,
    id: &str,
    wait: u64,
) -> tokio::task::JoinHandle<(u16, Value)> {
    let raw = raw_poll_in_flight(addr, id, wait).await;
    tokio::spawn(async move {
        let reply = String::from_utf8(raw.await.unwrap()).unwrap();
        let (head, body) = reply.split_once("\r\n\r\n").unwrap();
        let status = head.split(' ').nth(1).unwrap().parse().unwrap();
        (status, serde_json::from_str(body).unwrap())
    })
}

/// [`poll_in_flight`], whose task answers the raw reply: whatever the server
/// sent before it closed the connection (nothing, if it died first).
pub async fn raw_poll_in_flight(
    addr: SocketAddr,
    id: &str,
    wait: u64,
) -> tokio::task::JoinHandle<Vec<u8>> {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut stream = tokio::net::TcpStream::connect(addr).await.unwrap();
    let client = stream.local_addr().unwrap();
    let head = format!(
        "GET /v1/approvals/{id}?wait={wait} HTTP/1.1\r\nhost: {addr}\r\n\
         x-approver-key: {FILTER_KEY}\r\nconnection: close\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    let started = std::time::Instant::now();
    while !read_by_server(addr, client) {
        assert!(
            started.elapsed() < PATIENCE,
            "the server did not read the long-poll within {PATIENCE:?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(10)).await;
    }
    tokio::spawn(async move {
        let mut reply = Vec::new();
        // A reset keeps what was read before it.
        let _ = stream.read_to_end(&mut reply).await;
        reply
    })
}

/// Whether the server side of the loopback connection `client` -> `server`
/// exists and has nothing left unread in its receive queue (Linux
/// `/proc/net/tcp`: `local rem state tx_queue:rx_queue ...`, addresses as
/// `HEXIP:HEXPORT` with the IP in host byte order).
fn read_by_server(server: SocketAddr, client: SocketAddr) -> bool {
    let hex = |a: SocketAddr| match a {
        SocketAddr::V4(v4) => format!(
            "{:08X}:{:04X}",
            u32::from_ne_bytes(v4.ip().octets()),
            v4.port()
        ),
        SocketAddr::V6(_) => String::new(),
    };
    let (local, remote) = (hex(server), hex(client));
    let table = std::fs::read_to_string("/proc/net/tcp").unwrap_or_default();
    table.lines().any(|l| {
        let f: Vec<&str> = l.split_whitespace().collect();
        f.len() > 4
            && f[1] == local
            && f[2] == remote
            && f[4].split_once(':').is_some_and(|(_, rx)| rx == "00000000")
    })
}
