//! Two approver processes (the real binary) on one real Postgres serve one
//! filter: a long-poll on one sees a decision made on the other, a replica
//! killed in the middle of a wait loses nothing, and 200 concurrent approvals
//! are each used exactly once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::{client, request, BOB, FILTER_KEY};
use serde_json::{json, Value};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Child;

/// One approver process.
struct Replica {
    addr: SocketAddr,
    base: String,
    child: Child,
}

impl Replica {
    async fn start(url: &str) -> Replica {
        Replica::start_with(url, &[]).await
    }

    async fn start_with(url: &str, extra: &[&str]) -> Replica {
        let mut child = tokio::process::Command::new(env!("CARGO_BIN_EXE_transit-guard-approver"))
            .args(["--listen", "127.0.0.1:0", "--database-url", url])
            .args(extra)
            .args(["--filter-key", FILTER_KEY])
            .args(["--reviewer", &format!("bob={BOB}")])
            .env("RUST_LOG", "info")
            .stderr(std::process::Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .unwrap();
        let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
        let addr = tokio::time::timeout(Duration::from_secs(30), async {
            while let Some(line) = lines.next_line().await.unwrap() {
                if let Some(rest) = line.split("addr=").nth(1) {
                    let addr: SocketAddr = rest.split_whitespace().next().unwrap().parse().unwrap();
                    return addr;
                }
            }
            panic!("the replica exited without listening");
        })
        .await
        .expect("the replica did not listen within 30 s");
        // Keep reading its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Replica {
            addr,
            base: format!("http://{addr}"),
            child,
        }
    }

    /// SIGKILL: no graceful stop, connections cut.
    async fn kill(mut self) {
        self.child.kill().await.unwrap();
    }

    async fn create(&self, body: &Value) -> Value {
        let r = client()
            .post(format!("{}/v1/approvals", self.base))
            .header("x-approver-key", FILTER_KEY)
            .json(body)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        r.json().await.unwrap()
    }

    fn poll(
        &self,
        id: &str,
        wait: u64,
    ) -> impl std::future::Future<Output = reqwest::Result<(u16, Value)>> {
        let req = client()
            .get(format!("{}/v1/approvals/{id}?wait={wait}", self.base))
            .header("x-approver-key", FILTER_KEY);
        async move {
            let r = req.send().await?;
            let code = r.status().as_u16();
            Ok((code, r.json().await?))
        }
    }

    async fn approve(&self, id: &str) -> (u16, Value) {
        let r = client()
            .post(format!("{}/v1/approvals/{id}/approve", self.base))
            .bearer_auth(BOB)
            .json(&json!({}))
            .send()
            .await
            .unwrap();
        let code = r.status().as_u16();
        (code, r.json().await.unwrap())
    }
}

fn id_of(v: &Value) -> String {
    v["id"].as_str().unwrap().to_string()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_long_poll_on_one_replica_wakes_on_a_decision_made_on_the_other() {
    let url = common::postgres::database().await;
    // A never rereads on its own within the wait: only B's NOTIFY can wake it.
    let a = Replica::start_with(&url, &["--poll-recheck-secs", "600"]).await;
    let b = Replica::start(&url).await;
    let id = id_of(&a.create(&request("fp-1", "agent-7", "card-export")).await);
    // B knows it: one database.
    let (code, v) = b.poll(&id, 0).await.unwrap();
    assert_eq!((code, &v["status"]), (200, &json!("pending")));

    // The poll is waiting on A (A has read it) before B decides.
    let waiting = common::poll_in_flight(a.addr, &id, 30).await;
    assert_eq!(b.approve(&id).await.0, 200);
    let (code, v) = waiting.await.unwrap();
    assert_eq!(code, 200, "{v}");
    // "approved", not "pending" at the end of the 30 s wait: the decision on
    // B woke the poll on A.
    assert_eq!(v["status"], "approved", "{v}");
    assert_eq!(v["reviewer"], "bob");
    // Used on A: B refuses it too.
    assert_eq!(b.poll(&id, 0).await.unwrap().0, 410);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_mid_wait_loses_nothing() {
    let url = common::postgres::database().await;
    let a = Replica::start(&url).await;
    let b = Replica::start(&url).await;
    let req = request("fp-1", "agent-7", "card-export");
    let id = id_of(&a.create(&req).await);
    // A has read the poll, so the kill cuts it in the middle of its wait.
    let waiting = common::raw_poll_in_flight(a.addr, &id, 25).await;
    a.kill().await;
    // The filter's call fails (a transient failure: it asks again, and
    // Envoy's cluster sends it to the replica that is left).
    let cut = waiting.await.unwrap();
    assert!(
        cut.is_empty(),
        "the killed replica answered: {}",
        String::from_utf8_lossy(&cut)
    );
    // The same request again finds the same pending approval on B.
    assert_eq!(id_of(&b.create(&req).await), id);
    let waiting = common::poll_in_flight(b.addr, &id, 25).await;
    assert_eq!(b.approve(&id).await.0, 200);
    let (code, v) = waiting.await.unwrap();
    assert_eq!((code, &v["status"]), (200, &json!("approved")), "{v}");
    // Used exactly once, even by a new replica on the same database.
    let c = Replica::start(&url).await;
    assert_eq!(c.poll(&id, 0).await.unwrap().0, 410);
    assert_eq!(c.create(&req).await["status"], "pending");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_replicas_serve_200_concurrent_approvals_with_none_lost_or_doubled() {
    const N: usize = 200;
    let url = common::postgres::database().await;
    let replicas = std::sync::Arc::new([Replica::start(&url).await, Replica::start(&url).await]);
    let run = async {
        // 200 held requests, created alternately on each replica.
        let creates: Vec<_> = (0..N)
            .map(|i| {
                let r = replicas.clone();
                tokio::spawn(async move {
                    let v = r[i % 2]
                        .create(&request(
                            &format!("fp-{i}"),
                            &format!("agent-{i}"),
                            "card-export",
                        ))
                        .await;
                    assert_eq!(v["status"], "pending", "{v}");
                    id_of(&v)
                })
            })
            .collect();
        let mut ids = Vec::new();
        for c in creates {
            ids.push(c.await.unwrap());
        }
        // Two consumers per approval, one on each replica (a filter retrying
        // through the other endpoint), both long-polling.
        let mut consumers = Vec::new();
        for id in &ids {
            for side in 0..2 {
                let r = replicas.clone();
                let id = id.clone();
                consumers.push(tokio::spawn(async move {
                    let (code, v) = r[side].poll(&id, 30).await.unwrap();
                    (id, code, v)
                }));
            }
        }
        // Every approval decided, concurrently, on the replica that did not create it.
        let decisions: Vec<_> = ids
            .iter()
            .enumerate()
            .map(|(i, id)| {
                let r = replicas.clone();
                let id = id.clone();
                tokio::spawn(async move { r[(i + 1) % 2].approve(&id).await })
            })
            .collect();
        for d in decisions {
            let (code, v) = d.await.unwrap();
            assert_eq!(code, 200, "{v}");
        }
        let mut approved = std::collections::HashMap::<String, usize>::new();
        let mut refused = 0;
        for c in consumers {
            let (id, code, v) = c.await.unwrap();
            match (code, v["status"].as_str(), v["error"].as_str()) {
                (200, Some("approved"), _) => *approved.entry(id).or_default() += 1,
                (410, _, Some("consumed")) => refused += 1,
                // Still pending at the end of its wait: a lost decision.
                _ => panic!("approval {id}: unexpected {code} {v}"),
            }
        }
        assert_eq!(approved.len(), N, "approvals lost: {}", N - approved.len());
        let doubled: Vec<_> = approved.iter().filter(|(_, n)| **n != 1).collect();
        assert!(doubled.is_empty(), "used more than once: {doubled:?}");
        assert_eq!(refused, N);
        // The reviewer list agrees: 200 approved, each used, each by bob.
        let r = client()
            .get(format!(
                "{}/v1/approvals?status=approved&limit=500",
                replicas[0].base
            ))
            .bearer_auth(BOB)
            .send()
            .await
            .unwrap();
        let list: Value = r.json().await.unwrap();
        let items = list["approvals"].as_array().unwrap();
        assert_eq!(items.len(), N);
        assert!(items
            .iter()
            .all(|a| a["consumed"] == true && a["votes"].as_array().unwrap().len() == 1));
    };
    tokio::time::timeout(Duration::from_secs(180), run)
        .await
        .expect("200 concurrent approvals did not finish within 180 s");
}
