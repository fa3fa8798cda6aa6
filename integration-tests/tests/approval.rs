//! Human approval through the real Envoy and the real approver (in-process):
//! a `require_approval` rule holds the request inside Envoy while a reviewer
//! decides; approved requests reach the upstream exactly as sent, everything
//! else never does, and every held request ends within its bound.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use integration_tests::approver::{approvals, decide, start_approver, wait_pending, FILTER_KEY};
use integration_tests::gateway::{Gateway, Options};
use serde_json::{json, Value};
use tokio::net::TcpListener;

/// Requests to `/export` need an approval; everything else passes.
fn policy(max_wait_secs: u64, poll_secs: u64, timeout_ms: u64) -> String {
    json!({
        "masking": { "profiles": { "pii": { "detectors": ["email", "credit_card"] } } },
        "default_action": "allow",
        "rules": [
            { "name": "export-needs-approval", "match": { "path": { "prefix": "/export" } },
              "action": "require_approval" }
        ],
        "approval": {
            "cluster": "approver", "api_key": FILTER_KEY,
            "max_wait_secs": max_wait_secs, "poll_secs": poll_secs, "timeout_ms": timeout_ms,
            "preview_bytes": 2048, "preview_profile": "pii"
        }
    })
    .to_string()
}

struct Stack {
    gw: Gateway,
    approver: SocketAddr,
    _stop: tokio::sync::oneshot::Sender<()>,
}

async fn stack(name: &str, max_wait_secs: u64) -> Stack {
    let opts = Options::for_test(name, &policy(max_wait_secs, 25, 2000)).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let approver = listener.local_addr().unwrap();
    let (stop, _) = start_approver(&opts.dir.join("approver.sqlite"), listener);
    let gw = Gateway::start(opts.with_approver(approver)).await.unwrap();
    Stack {
        gw,
        approver,
        _stop: stop,
    }
}

/// A gateway whose approver cluster points at `addr` (a fake or nothing).
async fn gateway_with_fake(name: &str, addr: SocketAddr, timeout_ms: u64) -> Gateway {
    let opts = Options::for_test(name, &policy(10, 25, timeout_ms)).unwrap();
    Gateway::start(opts.with_approver(addr)).await.unwrap()
}

/// Sends the export request (body `body`) and returns status, headers, JSON body.
async fn export(gw: &Gateway, body: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = gw
        .client()
        .unwrap()
        .post(gw.url("/export/customers?format=csv"))
        .header("content-type", "application/json")
        .header("x-agent-note", "nightly job")
        .body(body.to_string())
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let v = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, v)
}

fn spawn_export(gw: &Gateway, body: &str) -> tokio::task::JoinHandle<(u16, Value)> {
    let client = gw.client().unwrap();
    let url = gw.url("/export/customers?format=csv");
    let body = body.to_string();
    tokio::spawn(async move {
        let r = client
            .post(url)
            .header("content-type", "application/json")
            .header("x-agent-note", "nightly job")
            .body(body)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        let text = r.text().await.unwrap();
        (
            status,
            serde_json::from_str(&text).unwrap_or(Value::String(text)),
        )
    })
}

const BODY_A: &str = r#"{"customers":"all","notify":"jane@example.com"}"#;
const BODY_B: &str = r#"{"customers":"vip","notify":"jane@example.com"}"#;

/// The `n`th audit record (1-based), after checking every record so far
/// against `docs/audit.schema.json`.
fn last_record(gw: &Gateway, n: usize) -> Value {
    let records = gw.wait_for_audit_records(n);
    assert!(records.len() >= n, "{records:?}");
    let text = std::fs::read_to_string(
        integration_tests::paths::workspace_root().join("docs/audit.schema.json"),
    )
    .unwrap();
    let schema = jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap();
    for r in &records {
        let errors: Vec<String> = schema.iter_errors(r).map(|e| e.to_string()).collect();
        assert!(
            errors.is_empty(),
            "record {r} breaks the schema: {errors:?}"
        );
    }
    records[n - 1].clone()
}

#[tokio::test(flavor = "multi_thread")]
async fn approved_request_reaches_the_upstream_exactly_as_sent() {
    let s = stack("approval-approve", 30).await;
    let held = spawn_export(&s.gw, BODY_A);
    let p = wait_pending(s.approver, 1).await;
    assert!(
        s.gw.upstream.requests().is_empty(),
        "nothing goes upstream while held"
    );
    // The reviewer sees a masked preview and the anonymous identity.
    assert_eq!(p[0]["rule"], "export-needs-approval");
    assert_eq!(p[0]["method"], "POST");
    assert_eq!(p[0]["path"], "/export/customers?format=csv");
    assert_eq!(p[0]["identity"]["sub"], "anonymous");
    let preview = p[0]["preview"].as_str().unwrap();
    assert!(
        !preview.contains("jane@example.com") && preview.contains("\"customers\":\"all\""),
        "{preview}"
    );
    let id = p[0]["id"].as_str().unwrap().to_string();
    decide(
        s.approver,
        &id,
        "approve",
        json!({"reason": "nightly export"}),
    )
    .await;
    let (status, _) = held.await.unwrap();
    assert_eq!(status, 200);
    let seen = s.gw.upstream.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/export/customers?format=csv");
    assert_eq!(seen[0].body, BODY_A.as_bytes(), "the exact original body");
    assert_eq!(seen[0].header("x-agent-note"), Some("nightly job"));
    assert_eq!(seen[0].header("content-type"), Some("application/json"));
    assert_eq!(
        seen[0].header("content-length"),
        Some(BODY_A.len().to_string().as_str())
    );
    let r = last_record(&s.gw, 1);
    assert_eq!(r["decision"], "approval_approved");
    assert_eq!(r["approval"]["id"], id.as_str());
    assert_eq!(r["approval"]["reviewer"], "alice");
    assert_eq!(r["status"], 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn denied_request_gets_403_and_never_reaches_the_upstream() {
    let s = stack("approval-deny", 30).await;
    let held = spawn_export(&s.gw, BODY_A);
    let p = wait_pending(s.approver, 1).await;
    let id = p[0]["id"].as_str().unwrap().to_string();
    decide(
        s.approver,
        &id,
        "deny",
        json!({"reason": "not during business hours"}),
    )
    .await;
    let (status, body) = held.await.unwrap();
    assert_eq!(status, 403);
    assert_eq!(body["error"], "approval_denied");
    assert_eq!(body["reason"], "not during business hours");
    assert_eq!(body["approval_id"], id.as_str());
    assert_eq!(body["reviewer"], "alice");
    assert_eq!(body["rule"], "export-needs-approval");
    assert!(s.gw.upstream.requests().is_empty());
    let r = last_record(&s.gw, 1);
    assert_eq!(r["decision"], "approval_denied");
    assert_eq!(r["reason"], "approval_denied");
    assert_eq!(r["approval"]["id"], id.as_str());
    let prom = s.gw.envoy.admin_get("/stats/prometheus").unwrap();
    assert!(
        prom.contains("transit_guard_approvals{outcome=\"approval_denied\"} 1"),
        "{prom}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn still_pending_at_max_wait_then_a_retry_after_approval_passes_once() {
    let s = stack("approval-expiry", 2).await;
    let t = Instant::now();
    let (status, headers, body) = export(&s.gw, BODY_A).await;
    let took = t.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "approval_pending");
    let id = body["approval_id"].as_str().unwrap().to_string();
    assert!(body["reason"].as_str().unwrap().contains(&id));
    let retry: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=30).contains(&retry));
    // Held until max_wait_secs (2 s), then answered: far sooner than Envoy's
    // own 180 s route timeout.
    assert!(
        took >= Duration::from_millis(900) && took < Duration::from_secs(10),
        "{took:?}"
    );
    assert!(s.gw.upstream.requests().is_empty());
    let r = last_record(&s.gw, 1);
    assert_eq!(r["decision"], "approval_expired");
    assert_eq!(r["reason"], "approval_pending");
    assert_eq!(r["approval"]["id"], id.as_str());

    decide(s.approver, &id, "approve", json!({})).await;
    let (status, _, _) = export(&s.gw, BODY_A).await;
    assert_eq!(status, 200, "the retry of the approved request passes");
    assert_eq!(s.gw.upstream.requests().len(), 1);
    // Once: the next retry waits for a new approval.
    let (status, _, body) = export(&s.gw, BODY_A).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "approval_pending");
    assert_ne!(body["approval_id"], id.as_str());
    assert_eq!(s.gw.upstream.requests().len(), 1);
    let records = s.gw.wait_for_audit_records(3);
    assert_eq!(records[1]["decision"], "approval_approved");
    assert_eq!(records[2]["decision"], "approval_expired");
}

#[tokio::test(flavor = "multi_thread")]
async fn approving_one_request_never_lets_another_through() {
    let s = stack("approval-fingerprint", 2).await;
    let (_, _, a) = export(&s.gw, BODY_A).await;
    let id_a = a["approval_id"].as_str().unwrap().to_string();
    decide(s.approver, &id_a, "approve", json!({})).await;
    // Same agent, same rule, other body: not covered.
    let (status, _, b) = export(&s.gw, BODY_B).await;
    assert_eq!(status, 503);
    assert_eq!(b["error"], "approval_pending");
    assert_ne!(b["approval_id"], id_a.as_str());
    assert!(s.gw.upstream.requests().is_empty());
    // A itself still passes, once.
    let (status, _, _) = export(&s.gw, BODY_A).await;
    assert_eq!(status, 200);
    let seen = s.gw.upstream.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, BODY_A.as_bytes());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_one_time_approval_of_a_held_request_cannot_be_used_twice() {
    let s = stack("approval-once", 2).await;
    let held = spawn_export(&s.gw, BODY_A);
    let id = wait_pending(s.approver, 1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    decide(s.approver, &id, "approve", json!({"grant": "once"})).await;
    assert_eq!(held.await.unwrap().0, 200);
    // The held request used it: the same request again is held anew.
    let (status, _, body) = export(&s.gw, BODY_A).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "approval_pending");
    assert_eq!(s.gw.upstream.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_time_bound_grant_lets_the_same_agent_and_rule_through_until_it_ends() {
    let s = stack("approval-grant", 2).await;
    let held = spawn_export(&s.gw, BODY_A);
    let id = wait_pending(s.approver, 1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    decide(
        s.approver,
        &id,
        "approve",
        json!({"grant": {"ttl_secs": 3}}),
    )
    .await;
    assert_eq!(held.await.unwrap().0, 200);
    // Another request of the same (anonymous) agent and rule passes without
    // a reviewer (held instead, it would end 503 at max_wait).
    let (status, _, _) = export(&s.gw, BODY_B).await;
    assert_eq!(status, 200);
    assert_eq!(s.gw.upstream.requests().len(), 2);
    let r = last_record(&s.gw, 2);
    assert_eq!(r["decision"], "approval_approved");
    assert_eq!(r["approval"]["reviewer"], "alice");
    // After the TTL it needs an approval again. Letting the grant's 3 s run
    // out is what this step tests; 3.5 s from the decision is past it on
    // any machine (a loaded one only adds time), and no event marks it.
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let (status, _, body) = export(&s.gw, BODY_B).await;
    assert_eq!(status, 503);
    assert_eq!(body["error"], "approval_pending");
    assert_eq!(s.gw.upstream.requests().len(), 2);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decision_after_an_approver_restart_reaches_the_waiting_request() {
    let opts = Options::for_test("approval-restart", &policy(30, 25, 2000)).unwrap();
    let db = opts.dir.join("approver.sqlite");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, task) = start_approver(&db, listener);
    let gw = Gateway::start(opts.with_approver(addr)).await.unwrap();
    let held = spawn_export(&gw, BODY_A);
    let id = wait_pending(addr, 1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    // Stop (the long-poll answers `pending` at once), stay down until the
    // filter has found it down (a refused connection), restart.
    stop.send(()).unwrap();
    task.await.unwrap();
    gw.envoy
        .wait_for_stat("cluster.approver.upstream_cx_connect_fail", ">= 1", |n| {
            n >= 1
        })
        .unwrap();
    let listener = TcpListener::bind(addr).await.unwrap();
    let (_stop2, _) = start_approver(&db, listener);
    decide(addr, &id, "approve", json!({})).await;
    let (status, _) = held.await.unwrap();
    assert_eq!(status, 200);
    assert_eq!(gw.upstream.requests().len(), 1);
    let r = last_record(&gw, 1);
    assert_eq!(r["decision"], "approval_approved");
    assert_eq!(r["approval"]["id"], id.as_str());
}

// ---------- the approver failing: 503 approval_failed, fast, nothing upstream ----------

/// Sends the export request to a gateway whose approver misbehaves; checks
/// the fail-closed reply, its reason code, the bound and the audit record.
async fn assert_fails_closed(gw: &Gateway, codes: &[&str], bound: Duration) -> Duration {
    let t = Instant::now();
    let (status, _, body) = export(gw, BODY_A).await;
    let took = t.elapsed();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "approval_failed");
    let code = body["reason_code"].as_str().unwrap().to_string();
    assert!(codes.contains(&code.as_str()), "{code} not in {codes:?}");
    assert!(took < bound, "took {took:?}, bound {bound:?}");
    assert!(gw.upstream.requests().is_empty());
    let r = last_record(gw, 1);
    assert_eq!(r["decision"], "approval_failed");
    assert_eq!(r["reason"], code.as_str());
    eprintln!("{codes:?}: {code} in {took:?}");
    took
}

/// A fake approver answering every request with `status` and `body`.
async fn fake_approver(status: u16, body: &'static str) -> SocketAddr {
    use axum::http::StatusCode;
    let app = axum::Router::new().fallback(move || async move {
        (
            StatusCode::from_u16(status).unwrap(),
            [("content-type", "application/json")],
            body,
        )
    });
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    addr
}

#[tokio::test(flavor = "multi_thread")]
async fn approver_down_fails_closed() {
    // Nothing listens on the discard port.
    let gw = gateway_with_fake("approval-down", SocketAddr::from(([127, 0, 0, 1], 9)), 1000).await;
    assert_fails_closed(
        &gw,
        &["approver_error", "approver_unreachable"],
        Duration::from_secs(2),
    )
    .await;
}

#[tokio::test(flavor = "multi_thread")]
async fn approver_500_fails_closed() {
    let addr = fake_approver(500, r#"{"error":"internal","reason":"storage"}"#).await;
    let gw = gateway_with_fake("approval-500", addr, 1000).await;
    assert_fails_closed(&gw, &["approver_error"], Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn approver_401_fails_closed() {
    let addr = fake_approver(401, r#"{"error":"unauthorized","reason":"key"}"#).await;
    let gw = gateway_with_fake("approval-401", addr, 1000).await;
    assert_fails_closed(&gw, &["approver_unauthorized"], Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn malformed_answer_fails_closed() {
    let addr = fake_approver(200, r#"{"id":"apr_1","status":"#).await;
    let gw = gateway_with_fake("approval-garbage", addr, 1000).await;
    assert_fails_closed(&gw, &["approver_bad_response"], Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn approver_that_never_answers_is_abandoned_within_timeout_plus_one_second() {
    // Accepts connections and never reads or answers.
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let _keep = std::thread::spawn(move || {
        let mut held = Vec::new();
        for c in listener.incoming() {
            held.push(c);
        }
    });
    let gw = gateway_with_fake("approval-silent", addr, 1000).await;
    let took = assert_fails_closed(&gw, &["approver_timeout"], Duration::from_secs(2)).await;
    assert!(took >= Duration::from_millis(900), "{took:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn approver_cluster_with_no_endpoint_fails_closed() {
    // The name never resolves: the cluster has no host at all.
    let mut opts = Options::for_test("approval-no-endpoint", &policy(10, 25, 1000)).unwrap();
    opts.extra_vars
        .insert("APPROVER_HOST", "approver.invalid".to_string());
    opts.extra_vars.insert("APPROVER_PORT", "8088".to_string());
    let gw = Gateway::start(opts).await.unwrap();
    assert_fails_closed(&gw, &["approver_dispatch_failed"], Duration::from_secs(2)).await;
}

#[tokio::test(flavor = "multi_thread")]
async fn approver_that_hangs_while_pending_is_abandoned_within_max_wait_plus_timeout_plus_one_second(
) {
    use axum::routing::{get, post};
    // Creates answer `pending`; long-polls never answer.
    let app = axum::Router::new()
        .route(
            "/v1/approvals",
            post(|| async {
                (
                    [("content-type", "application/json")],
                    r#"{"id":"apr_hang","status":"pending","reviewer":null,"reason":null,"expires_at":0,"retry_after_secs":5}"#,
                )
            }),
        )
        .route(
            "/v1/approvals/{id}",
            get(|| async {
                tokio::time::sleep(Duration::from_secs(3600)).await;
                ""
            }),
        );
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    let opts = Options::for_test("approval-hang-pending", &policy(3, 25, 1000)).unwrap();
    let gw = Gateway::start(opts.with_approver(addr)).await.unwrap();
    let t = Instant::now();
    let (status, _, body) = export(&gw, BODY_A).await;
    let took = t.elapsed();
    eprintln!("hung long-poll: {body} in {took:?}");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "approval_failed");
    assert_eq!(body["reason_code"], "approver_timeout");
    assert_eq!(body["approval_id"], "apr_hang");
    // max_wait_secs 3 + timeout_ms 1000 + 1 s.
    assert!(took < Duration::from_secs(5), "{took:?}");
    assert!(gw.upstream.requests().is_empty());
    let r = last_record(&gw, 1);
    assert_eq!(r["decision"], "approval_failed");
    assert_eq!(r["reason"], "approver_timeout");
    assert_eq!(r["approval"]["id"], "apr_hang");
}

/// With identity on: the approver sees the verified agent, and a time-bound
/// grant covers that agent and rule only.
#[tokio::test(flavor = "multi_thread")]
async fn a_grant_covers_the_verified_agent_and_no_other() {
    use integration_tests::tokens::{self, KeyKind, SigningKey, TokenBuilder};
    const ISSUER: &str = "https://idp.transit-guard.test";
    let key = SigningKey::generate(KeyKind::P256, "k1").unwrap();
    let mut doc: Value = serde_json::from_str(&policy(2, 25, 2000)).unwrap();
    doc["identity"] = json!({"providers": [tokens::provider_json("corp", ISSUER, "gw", &[&key])]});
    let opts = Options::for_test("approval-identity", &doc.to_string()).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let approver = listener.local_addr().unwrap();
    let (_stop, _) = start_approver(&opts.dir.join("approver.sqlite"), listener);
    let gw = Gateway::start(opts.with_approver(approver)).await.unwrap();
    let token = |sub: &str| {
        TokenBuilder::new(ISSUER, "gw", sub, tokens::now())
            .claim("groups", json!(["agents"]))
            .sign(&key)
            .unwrap()
    };
    let send = |sub: &str, body: &'static str| {
        let client = gw.client().unwrap();
        let url = gw.url("/export/customers?format=csv");
        let bearer = token(sub);
        tokio::spawn(async move {
            let r = client
                .post(url)
                .bearer_auth(bearer)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .unwrap();
            let status = r.status().as_u16();
            let v: Value = r.json().await.unwrap_or(Value::Null);
            (status, v)
        })
    };
    let held = send("agent-7", BODY_A);
    let p = wait_pending(approver, 1).await;
    assert_eq!(
        p[0]["identity"],
        json!({"sub": "agent-7", "iss": ISSUER, "groups": ["agents"]})
    );
    let id = p[0]["id"].as_str().unwrap().to_string();
    decide(approver, &id, "approve", json!({"grant": {"ttl_secs": 60}})).await;
    assert_eq!(held.await.unwrap().0, 200);
    // The same agent and rule, another request: covered by the grant.
    assert_eq!(send("agent-7", BODY_B).await.unwrap().0, 200);
    // Another agent: not covered.
    let (status, body) = send("agent-8", BODY_B).await.unwrap();
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "approval_pending");
    let seen = gw.upstream.requests();
    assert_eq!(seen.len(), 2);
    // The agent's token never reaches the upstream.
    assert!(seen
        .iter()
        .all(|r| !r.header("authorization").unwrap_or("").contains("eyJ")));
    let records = gw.wait_for_audit_records(3);
    assert_eq!(records[1]["identity"]["sub"], "agent-7");
    assert_eq!(records[1]["decision"], "approval_approved");
    assert_eq!(records[2]["identity"]["sub"], "agent-8");
    assert_eq!(records[2]["reason"], "approval_pending");
}

// ---------- a client that leaves while held (issue 14, item 5) ----------

/// The agent gives up on its held request: the connection is dropped. Waits
/// until the filter wrote that request's audit record (the stream is gone).
fn leave(gw: &Gateway, held: tokio::task::JoinHandle<(u16, Value)>, records: usize) {
    held.abort();
    let r = gw.wait_for_audit_records(records);
    eprintln!(
        "record of the request whose client left: {}",
        r[records - 1]
    );
}

/// After a reviewer approved a request whose agent had left, the same
/// request sent again passes on that approval, once; nothing else is created.
async fn assert_retry_passes_once(gw: &Gateway, approver: SocketAddr, id: &str, records: usize) {
    let (status, _, body) = export(gw, BODY_A).await;
    assert_eq!(status, 200, "the retry passes on the approval: {body}");
    let seen = gw.upstream.requests();
    assert_eq!(seen.len(), 1, "exactly one request went upstream");
    assert_eq!(seen[0].body, BODY_A.as_bytes());
    let r = last_record(gw, records);
    assert_eq!(r["decision"], "approval_approved");
    assert_eq!(r["approval"]["id"], id);
    let all = approvals(approver, "all").await;
    assert_eq!(all.len(), 1, "no second approval was created: {all:?}");
    assert_eq!(all[0]["consumed"], true);
    // Used once: the next identical request waits for a new approval.
    let (status, _, body) = export(gw, BODY_A).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["error"], "approval_pending");
    assert_ne!(body["approval_id"], id);
    assert_eq!(gw.upstream.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_decision_for_an_agent_that_left_is_used_by_its_retry() {
    let s = stack("approval-left", 4).await;
    let held = spawn_export(&s.gw, BODY_A);
    let id = wait_pending(s.approver, 1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    leave(&s.gw, held, 1);
    decide(s.approver, &id, "approve", json!({"reason": "ok"})).await;
    assert_retry_passes_once(&s.gw, s.approver, &id, 2).await;
}

/// The same, when the held request's long-poll is the worker's own (made on
/// the tick after the approver restarted): Envoy does not cancel it when the
/// agent leaves, so its answer arrives for a request that is gone.
#[tokio::test(flavor = "multi_thread")]
async fn a_decision_answering_a_poll_of_a_request_that_is_gone_stays_usable() {
    let (gw, approver, id, _stop) = held_then_left_after_a_restart("approval-left-orphan").await;
    decide(approver, &id, "approve", json!({})).await;
    assert_retry_passes_once(&gw, approver, &id, 2).await;
}

/// The agent left, its retry waits on the same approval beside the orphaned
/// long-poll; the reviewer approves: the retry passes, whoever is answered first.
#[tokio::test(flavor = "multi_thread")]
async fn a_retry_waiting_beside_an_orphaned_poll_gets_the_decision() {
    let (gw, approver, id, _stop) = held_then_left_after_a_restart("approval-left-race").await;
    let retry = spawn_export(&gw, BODY_A);
    // The retry found the same approval (no second one) and long-polls it
    // beside the orphan.
    gw.envoy
        .wait_for_stat("cluster.approver.upstream_rq_active", ">= 2", |n| n >= 2)
        .unwrap();
    assert_eq!(wait_pending(approver, 1).await[0]["id"], id.as_str());
    decide(approver, &id, "approve", json!({})).await;
    let (status, body) = retry.await.unwrap();
    assert_eq!(status, 200, "{body}");
    assert_eq!(gw.upstream.requests().len(), 1);
    let r = last_record(&gw, 2);
    assert_eq!(r["decision"], "approval_approved");
    assert_eq!(r["approval"]["id"], id.as_str());
}

/// A request held while the approver restarts (so the worker long-polls on
/// its tick, not on the stream), then abandoned by its agent. Returns the
/// gateway, the approver, the pending approval's id and the approver's stop.
async fn held_then_left_after_a_restart(
    name: &str,
) -> (
    Gateway,
    SocketAddr,
    String,
    tokio::sync::oneshot::Sender<()>,
) {
    let opts = Options::for_test(name, &policy(30, 25, 2000)).unwrap();
    let db = opts.dir.join("approver.sqlite");
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, task) = start_approver(&db, listener);
    let gw = Gateway::start(opts.with_approver(addr)).await.unwrap();
    let held = spawn_export(&gw, BODY_A);
    let id = wait_pending(addr, 1).await[0]["id"]
        .as_str()
        .unwrap()
        .to_string();
    stop.send(()).unwrap();
    task.await.unwrap();
    gw.envoy
        .wait_for_stat("cluster.approver.upstream_cx_connect_fail", ">= 1", |n| {
            n >= 1
        })
        .unwrap();
    let listener = TcpListener::bind(addr).await.unwrap();
    let (stop2, _) = start_approver(&db, listener);
    // The worker's retry reached the restarted approver and waits there.
    gw.envoy
        .wait_for_stat("cluster.approver.upstream_rq_active", ">= 1", |n| n >= 1)
        .unwrap();
    leave(&gw, held, 1);
    (gw, addr, id, stop2)
}
