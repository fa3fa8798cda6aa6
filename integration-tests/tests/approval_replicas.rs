//! Two approver replicas on one real Postgres serve one filter through the
//! real Envoy: 200 requests held at once, reviewers approving through both
//! replicas, one replica killed in the middle of the waits, and every
//! request reaching the upstream exactly once, none lost.
//!
//! Envoy reaches the replicas through one cluster with both as endpoints,
//! round robin, as a Kubernetes Service would spread them: each of the
//! filter's calls (the create, every long-poll) may land on either, so the
//! shared state, not the replica, has to carry every decision. An active
//! health check on `/healthz` takes a dead replica out of the rotation; until
//! it does, the filter's retry of a failed long-poll (1 s later, a transient
//! failure) may pick the dead one again and simply retries once more.
//!
//! One Envoy worker (`--concurrency 1`): one V8 VM to start on a shared
//! 2-core machine, and one worker holds all 200 requests, as the filter's
//! registry must. The replicas run in this process, each on a Tokio runtime
//! of its own; killing one drops that runtime, which closes every socket it
//! holds at once (the long-polls Envoy is waiting on, its Postgres
//! connections, its listener), as a crash of the process would.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;

use integration_tests::approver::{decide, pending, FILTER_KEY};
use integration_tests::gateway::{Gateway, Options};
use integration_tests::tokens::{self, KeyKind, SigningKey, TokenBuilder};
use integration_tests::wait::{self, Check};
use serde_json::json;
use transit_guard_approver::store::Database;
use transit_guard_approver::Config;

/// The Postgres helper of the approver's own tests (Debian's binaries,
/// `initdb` into a temp folder, one server per test process).
#[allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]
#[path = "../../approver/tests/common/postgres.rs"]
mod postgres;

const N: usize = 200;

/// The cluster the policy names: both replicas, round robin, health checked.
const CLUSTER: &str = "approver_replicas";

/// Each held request comes from its own agent: the approver serialises the
/// creates of one identity and rule (to keep one pending approval per
/// request across replicas), and 200 agents is the load this test is about.
const ISSUER: &str = "https://idp.test";

fn policy(key: &SigningKey) -> String {
    json!({
        "identity": { "providers": [tokens::provider_json("corp", ISSUER, "gw", &[key])] },
        "default_action": "allow",
        "rules": [
            { "name": "export-needs-approval", "match": { "path": { "prefix": "/export" } },
              "action": "require_approval" }
        ],
        "approval": {
            "cluster": CLUSTER, "api_key": FILTER_KEY,
            // Generous: the test ends as soon as every request is decided,
            // so long bounds cost nothing and survive a loaded machine (200
            // creates at once queue for the replicas' 2 x 16 connections).
            "max_wait_secs": 240, "poll_secs": 25, "timeout_ms": 20000
        }
    })
    .to_string()
}

/// Added to the shipped gateway config (`--config-yaml` appends clusters).
fn cluster(a: SocketAddr, b: SocketAddr) -> String {
    let endpoint = |s: SocketAddr| {
        format!(
            "{{ endpoint: {{ address: {{ socket_address: {{ address: {}, port_value: {} }} }} }} }}",
            s.ip(),
            s.port()
        )
    };
    format!(
        "static_resources:
  clusters:
  - name: {CLUSTER}
    type: STATIC
    connect_timeout: 2s
    lb_policy: ROUND_ROBIN
    health_checks:
    # Two failed checks (a refused connection fails at once) take a replica
    # out; a slow answer on a loaded machine is not a failure. Envoy checks
    # every 60 s until the cluster carries traffic (no_traffic_interval):
    # the same pace from the start here.
    - {{ interval: 0.5s, no_traffic_interval: 0.5s, timeout: 10s,
        unhealthy_threshold: 2, healthy_threshold: 1,
        http_health_check: {{ path: /healthz }} }}
    load_assignment:
      cluster_name: {CLUSTER}
      endpoints:
      - lb_endpoints: [ {}, {} ]
",
        endpoint(a),
        endpoint(b)
    )
}

/// One approver replica, in this process on a runtime of its own.
struct Replica {
    addr: SocketAddr,
    runtime: Option<tokio::runtime::Runtime>,
}

impl Replica {
    async fn start(database_url: &str) -> Replica {
        let config = Config::new("unused.sqlite", FILTER_KEY)
            .database(Database::from_url(database_url))
            .reviewer("alice", integration_tests::approver::ALICE);
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let addr = listener.local_addr().unwrap();
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .thread_name("replica")
            .enable_all()
            .build()
            .unwrap();
        let task = runtime.spawn(async move {
            let listener = tokio::net::TcpListener::from_std(listener)?;
            transit_guard_approver::serve(config, listener).await
        });
        // `serve` opens the database (migrations) before it answers.
        let client = reqwest::Client::new();
        wait::until_async(&format!("replica {addr} to answer /healthz"), || {
            let health = client.get(format!("http://{addr}/healthz")).send();
            let finished = task.is_finished();
            async move {
                if finished {
                    return Check::Failed(anyhow::anyhow!("the replica stopped"));
                }
                match health.await {
                    Ok(r) if r.status() == 200 => Check::Done(()),
                    other => Check::NotYet(format!("{other:?}")),
                }
            }
        })
        .await
        .unwrap();
        Replica {
            addr,
            runtime: Some(runtime),
        }
    }

    /// A crash: every task and socket of the replica dropped at once.
    fn kill(&mut self) {
        if let Some(rt) = self.runtime.take() {
            rt.shutdown_background();
        }
    }
}

impl Drop for Replica {
    fn drop(&mut self) {
        self.kill();
    }
}

/// One field of each endpoint of the cluster, from Envoy's admin
/// `/clusters` (`CLUSTER::IP:PORT::FIELD::VALUE`).
fn endpoints(gw: &Gateway, field: &str) -> BTreeMap<SocketAddr, String> {
    let text = gw.envoy.admin_get("/clusters").unwrap_or_default();
    text.lines()
        .filter_map(|l| {
            let rest = l.strip_prefix(&format!("{CLUSTER}::"))?;
            let (host, value) = rest.split_once(&format!("::{field}::"))?;
            Some((host.parse().ok()?, value.trim().to_string()))
        })
        .collect()
}

/// Envoy's count of requests in flight to each endpoint.
fn active_requests(gw: &Gateway) -> BTreeMap<SocketAddr, u64> {
    endpoints(gw, "rq_active")
        .into_iter()
        .filter_map(|(host, n)| Some((host, n.parse().ok()?)))
        .collect()
}

/// Waits until Envoy has requests in flight to the replicas that satisfy
/// `done` (`what` names it).
fn wait_active(gw: &Gateway, what: &str, done: impl Fn(&BTreeMap<SocketAddr, u64>) -> bool) {
    wait::until(what, || {
        let active = active_requests(gw);
        Check::found(done(&active).then_some(()), || format!("{active:?}"))
    })
    .unwrap();
}

/// Approves every approval in `ids`, all at once, each through `via(i)`.
async fn approve_all(ids: &[String], via: impl Fn(usize) -> SocketAddr) {
    let calls: Vec<_> = ids
        .iter()
        .enumerate()
        .map(|(i, id)| {
            let (addr, id) = (via(i), id.clone());
            tokio::spawn(async move {
                let v = decide(addr, &id, "approve", json!({})).await;
                assert_eq!(v["status"], "approved", "{v}");
            })
        })
        .collect();
    for c in calls {
        c.await.unwrap();
    }
}

fn body(i: usize) -> String {
    format!("{{\"job\":\"export-{i}\"}}")
}

#[tokio::test(flavor = "multi_thread")]
async fn two_replicas_behind_envoy_decide_200_held_requests_exactly_once_through_a_crash() {
    let url = postgres::database().await;
    let mut a = Replica::start(&url).await;
    let b = Replica::start(&url).await;
    let key = SigningKey::generate(KeyKind::P256, "k1").unwrap();
    let mut opts = Options::for_test("approval-replicas", &policy(&key)).unwrap();
    opts.overlay = Some(cluster(a.addr, b.addr));
    let gw = Gateway::start(opts).await.unwrap();
    // Both in the rotation before any request (a check that timed out while
    // Envoy was busy starting its VM leaves a replica out until the next).
    wait::until("both replicas healthy in Envoy", || {
        let health = endpoints(&gw, "health_flags");
        let healthy = health.len() == 2 && health.values().all(|f| f == "healthy");
        Check::found(healthy.then_some(()), || format!("{health:?}"))
    })
    .unwrap();

    // 200 different requests (their agents and bodies differ), held at once.
    let client = gw.client().unwrap();
    let held: Vec<_> = (0..N)
        .map(|i| {
            let token = TokenBuilder::new(ISSUER, "gw", &format!("agent-{i}"), tokens::now())
                .sign(&key)
                .unwrap();
            let req = client
                .post(gw.url("/export/customers"))
                .bearer_auth(token)
                .header("content-type", "application/json")
                .body(body(i));
            tokio::spawn(async move {
                let r = req.send().await.unwrap();
                let status = r.status().as_u16();
                (i, status, r.text().await.unwrap())
            })
        })
        .collect();
    let ids = wait::until_async("200 pending approvals", || async {
        let p = pending(b.addr).await;
        let failed = gw.audit_records();
        if !failed.is_empty() {
            // A request answered while it should be held.
            return Check::Failed(anyhow::anyhow!("answered early: {failed:?}"));
        }
        let ids: Vec<String> = p
            .iter()
            .map(|a| a["id"].as_str().unwrap().to_string())
            .collect();
        Check::found((ids.len() == N).then_some(ids), || {
            format!("{} pending", p.len())
        })
    })
    .await
    .unwrap();
    assert_eq!(ids.iter().collect::<HashSet<_>>().len(), N);
    // Every request is in a long-poll, and round robin put some on each.
    wait_active(&gw, "200 long-polls spread over both replicas", |m| {
        m.get(&a.addr).is_some_and(|n| *n > 0)
            && m.get(&b.addr).is_some_and(|n| *n > 0)
            && m.values().sum::<u64>() >= N as u64
    });
    assert!(
        gw.upstream.requests().is_empty(),
        "nothing passes while held"
    );

    // Half approved, concurrently, alternately through each replica.
    let (first, rest) = ids.split_at(N / 2);
    approve_all(first, |i| if i % 2 == 0 { a.addr } else { b.addr }).await;
    wait::until("the first 100 approved requests upstream", || {
        let n = gw.upstream.requests().len();
        Check::found((n >= N / 2).then_some(()), || format!("{n} upstream"))
    })
    .unwrap();

    // A dies while it holds some of the remaining waits.
    wait_active(&gw, "replica A holding long-polls", |m| {
        m.get(&a.addr).is_some_and(|n| *n > 0)
    });
    a.kill();
    gw.envoy
        .wait_for_stat(
            &format!("cluster.{CLUSTER}.upstream_cx_destroy_remote_with_active_rq"),
            ">= 1 (waits cut by the crash)",
            |n| n >= 1,
        )
        .unwrap();
    // The rest decided through B alone.
    approve_all(rest, |_| b.addr).await;

    for h in held {
        let (i, status, text) = tokio::time::timeout(wait::PATIENCE, h)
            .await
            .unwrap_or_else(|_| panic!("a held request was never answered"))
            .unwrap();
        assert_eq!(status, 200, "request {i}: {text}");
    }
    // Each request upstream exactly once: none lost, none doubled.
    let mut seen = BTreeMap::<Vec<u8>, usize>::new();
    for r in gw.upstream.requests() {
        *seen.entry(r.body).or_default() += 1;
    }
    let expected: BTreeMap<Vec<u8>, usize> = (0..N).map(|i| (body(i).into_bytes(), 1)).collect();
    assert_eq!(seen, expected);

    // The audit agrees: 200 approvals, each its own agent's, each by alice.
    let records = gw.wait_for_audit_records(N);
    assert_eq!(records.len(), N);
    let mut approvals = HashSet::new();
    let mut agents = HashSet::new();
    for r in &records {
        assert_eq!(r["decision"], "approval_approved", "{r}");
        assert_eq!(r["approval"]["reviewer"], "alice", "{r}");
        approvals.insert(r["approval"]["id"].as_str().unwrap().to_string());
        agents.insert(r["identity"]["sub"].as_str().unwrap().to_string());
    }
    assert_eq!(agents.len(), N);
    assert_eq!(approvals, ids.iter().cloned().collect::<HashSet<_>>());
    // And B's reviewer list: 200 approved, each used once.
    let items = integration_tests::approver::approvals(b.addr, "approved").await;
    assert_eq!(items.len(), N);
    assert!(items.iter().all(|a| a["consumed"] == true), "{items:?}");
}
