//! The approver's API, end to end over HTTP against the in-process server.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::time::{Duration, Instant};

use axum::routing::post;
use axum::{Json, Router};
use common::*;
use serde_json::{json, Value};
use tokio::sync::mpsc;
use transit_guard_approver::Clock;

fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64
}

#[tokio::test]
async fn create_makes_a_pending_approval() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(dir.path())).await;
    let v = create_ok(&s, &request("fp-1", "agent-7", "card-export")).await;
    assert!(v["id"].as_str().unwrap().starts_with("apr_"), "{v}");
    assert_eq!(v["status"], "pending");
    assert_eq!(v["reviewer"], Value::Null);
    assert_eq!(v["reason"], Value::Null);
    let expires = v["expires_at"].as_i64().unwrap();
    assert!((now() + 598..=now() + 601).contains(&expires), "{v}");
    let retry = v["retry_after_secs"].as_u64().unwrap();
    assert!((1..=30).contains(&retry), "{v}");
}

#[tokio::test]
async fn the_same_fingerprint_returns_the_same_pending_approval() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(dir.path())).await;
    let a = create_ok(&s, &request("fp-1", "agent-7", "card-export")).await;
    let b = create_ok(&s, &request("fp-1", "agent-7", "card-export")).await;
    assert_eq!(a["id"], b["id"]);
    let c = create_ok(&s, &request("fp-2", "agent-7", "card-export")).await;
    assert_ne!(a["id"], c["id"]);
    let (code, list) = list(&s, ALICE, "pending").await;
    assert_eq!(code, 200);
    let items = list["approvals"].as_array().unwrap();
    assert_eq!(items.len(), 2, "{list}");
    // Newest first, with what a reviewer needs to decide.
    assert_eq!(items[0]["id"], c["id"]);
    assert_eq!(items[1]["id"], a["id"]);
    let first = &items[1];
    assert_eq!(first["identity"]["sub"], "agent-7");
    assert_eq!(first["identity"]["iss"], "https://idp.test");
    assert_eq!(first["identity"]["groups"], json!(["agents"]));
    assert_eq!(first["rule"], "card-export");
    assert_eq!(first["method"], "POST");
    assert_eq!(first["authority"], "api.internal");
    assert_eq!(first["path"], "/customers/export");
    assert_eq!(first["preview"], "{\"email\":\"[email]\"}");
    assert!(first["age_secs"].as_i64().unwrap() >= 0);
}

#[tokio::test]
async fn approve_once_reaches_the_long_poll_and_is_used_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(dir.path())).await;
    let req = request("fp-1", "agent-7", "card-export");
    let id = create_ok(&s, &req).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let poller = poll_in_flight(s.addr, &id, 20).await;
    let (code, v) = decide(
        &s,
        BOB,
        &id,
        "approve",
        json!({"reason": "ticket 42", "grant": "once"}),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "approved");
    assert_eq!(v["grant"], "once");

    let (code, v) = poller.await.unwrap();
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "approved");
    assert_eq!(v["reviewer"], "bob");
    assert_eq!(v["reason"], "ticket 42");
    assert_eq!(v["retry_after_secs"], 0);

    // Used: asking again is refused, and the same request must be asked anew.
    let (code, v) = poll(&s, &id, 0).await;
    assert_eq!(code, 410, "{v}");
    assert_eq!(v["error"], "consumed");
    let again = create_ok(&s, &req).await;
    assert_eq!(again["status"], "pending");
    assert_ne!(again["id"], id.as_str());
}

#[tokio::test]
async fn an_approved_request_retried_passes_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(dir.path())).await;
    let req = request("fp-1", "agent-7", "card-export");
    let id = create_ok(&s, &req).await["id"].clone();
    let (code, _) = decide(&s, BOB, id.as_str().unwrap(), "approve", json!({})).await;
    assert_eq!(code, 200);
    // The held request timed out; the agent retries the same request.
    let retry = create_ok(&s, &req).await;
    assert_eq!(retry["id"], id);
    assert_eq!(retry["status"], "approved");
    assert_eq!(retry["reviewer"], "bob");
    // A second retry is a new request for approval.
    let third = create_ok(&s, &req).await;
    assert_eq!(third["status"], "pending");
    assert_ne!(third["id"], id);
    // Approving one request never lets a different one through.
    let other = create_ok(&s, &request("fp-2", "agent-7", "card-export")).await;
    assert_eq!(other["status"], "pending");
}

/// `POST /v1/approvals/{id}/use` with the filter's key: (status, body).
async fn use_approval(s: &Server, id: &str, key: &str) -> (u16, Value) {
    let r = client()
        .post(format!("{}/v1/approvals/{id}/use", s.base))
        .header("x-approver-key", key)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap())
}

/// A filter that confirms: no answer uses an approval (one that reaches an
/// agent who left costs nothing); `…/use` does, once.
#[tokio::test]
async fn a_confirming_filter_uses_the_approval_itself_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(dir.path())).await;
    let mut req = request("fp-1", "agent-7", "card-export");
    req["confirm"] = json!(true);
    let id = create_ok(&s, &req).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, v) = use_approval(&s, &id, FILTER_KEY).await;
    assert_eq!(
        (code, v["error"].as_str()),
        (409, Some("not_approved")),
        "{v}"
    );
    let (code, _) = decide(&s, BOB, &id, "approve", json!({"reason": "ok"})).await;
    assert_eq!(code, 200);
    // The held request's long-poll and the agent's retry both hear
    // "approved, confirm"; neither uses it.
    for _ in 0..2 {
        let r = client()
            .get(format!("{}/v1/approvals/{id}?wait=5&confirm=true", s.base))
            .header("x-approver-key", FILTER_KEY)
            .send()
            .await
            .unwrap();
        assert_eq!(r.status(), 200);
        let v: Value = r.json().await.unwrap();
        assert_eq!(
            (v["status"].as_str(), v["confirm"].as_bool()),
            (Some("approved"), Some(true)),
            "{v}"
        );
        let retry = create_ok(&s, &req).await;
        assert_eq!(retry["id"], id.as_str());
        assert_eq!(retry["status"], "approved");
        assert_eq!(retry["confirm"], true);
    }
    let (_, l) = list(&s, BOB, "approved").await;
    assert_eq!(l["approvals"][0]["consumed"], false);
    // A reviewer's token is not the filter's key.
    let (code, _) = use_approval(&s, &id, ALICE).await;
    assert_eq!(code, 401);
    let (code, v) = use_approval(&s, &id, FILTER_KEY).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(
        (v["status"].as_str(), v["reviewer"].as_str()),
        (Some("approved"), Some("bob"))
    );
    assert!(v.get("confirm").is_none(), "{v}");
    let (code, v) = use_approval(&s, &id, FILTER_KEY).await;
    assert_eq!((code, v["error"].as_str()), (410, Some("consumed")), "{v}");
    let (_, l) = list(&s, BOB, "approved").await;
    assert_eq!(l["approvals"][0]["consumed"], true);
    let (code, _) = use_approval(&s, "apr_0123", FILTER_KEY).await;
    assert_eq!(code, 404);
    // A filter that does not confirm still has every answer use it.
    let (code, v) = poll(&s, &id, 0).await;
    assert_eq!(code, 410, "{v}");
}

#[tokio::test]
async fn deny_with_a_reason() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(dir.path())).await;
    let req = request("fp-1", "agent-7", "card-export");
    let id = create_ok(&s, &req).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, v) = decide(
        &s,
        ALICE,
        &id,
        "deny",
        json!({"reason": "  not during the freeze "}),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    let (code, v) = poll(&s, &id, 5).await;
    assert_eq!(code, 200);
    assert_eq!(v["status"], "denied");
    assert_eq!(v["reviewer"], "alice");
    assert_eq!(v["reason"], "not during the freeze");
    // A denial stays a denial when asked again.
    let (_, v) = poll(&s, &id, 0).await;
    assert_eq!(v["status"], "denied");
    // Deciding it again is a conflict.
    let (code, v) = decide(&s, BOB, &id, "approve", json!({})).await;
    assert_eq!(code, 409, "{v}");
    assert_eq!(v["error"], "not_pending");
    // The denied list shows it.
    let (_, l) = list(&s, BOB, "denied").await;
    assert_eq!(l["approvals"][0]["id"], id.as_str());
    assert_eq!(l["approvals"][0]["reason"], "not during the freeze");
}

#[tokio::test]
async fn pending_approvals_expire() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::system();
    let mut cfg = config(dir.path());
    cfg.clock = clock.clone();
    let s = Server::start(cfg).await;
    let req = request("fp-1", "agent-7", "card-export");
    let v = create_ok(&s, &req).await;
    let id = v["id"].as_str().unwrap().to_string();
    clock.advance(601);
    let (code, v) = poll(&s, &id, 0).await;
    assert_eq!(code, 200);
    assert_eq!(v["status"], "expired");
    let (code, v) = decide(&s, BOB, &id, "approve", json!({})).await;
    assert_eq!(code, 409, "{v}");
    let (_, l) = list(&s, BOB, "pending").await;
    assert_eq!(l["approvals"], json!([]));
    // The same request asks anew.
    let again = create_ok(&s, &req).await;
    assert_eq!(again["status"], "pending");
    assert_ne!(again["id"], id.as_str());
}

#[tokio::test]
async fn an_approval_not_used_in_time_expires() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::system();
    let mut cfg = config(dir.path());
    cfg.clock = clock.clone();
    cfg.approved_ttl_secs = 60;
    let s = Server::start(cfg).await;
    let req = request("fp-1", "agent-7", "card-export");
    let id = create_ok(&s, &req).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(decide(&s, BOB, &id, "approve", json!({})).await.0, 200);
    clock.advance(61);
    let (_, v) = poll(&s, &id, 0).await;
    assert_eq!(v["status"], "expired");
    assert_eq!(create_ok(&s, &req).await["status"], "pending");
}

#[tokio::test]
async fn a_long_poll_returns_expired_when_the_approval_expires() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.pending_ttl_secs = 1;
    let s = Server::start(cfg).await;
    let id = create_ok(&s, &request("fp-1", "agent-7", "card-export")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = Instant::now();
    let (code, v) = poll(&s, &id, 20).await;
    assert_eq!(code, 200);
    assert_eq!(v["status"], "expired");
    // At the approval's 1 s expiry: far sooner than the poll's own 20 s.
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

#[tokio::test]
async fn a_time_bound_grant_covers_the_identity_and_rule_until_it_ends() {
    let dir = tempfile::tempdir().unwrap();
    let clock = Clock::system();
    let mut cfg = config(dir.path());
    cfg.clock = clock.clone();
    let s = Server::start(cfg).await;
    let id = create_ok(&s, &request("fp-1", "agent-7", "card-export")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, v) = decide(
        &s,
        BOB,
        &id,
        "approve",
        json!({"reason": "export week", "grant": {"ttl_secs": 3600}}),
    )
    .await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["grant"], "ttl");
    // The held request itself passes.
    assert_eq!(poll(&s, &id, 0).await.1["status"], "approved");

    // A different request, same identity and rule: approved at once.
    let v = create_ok(&s, &request("fp-2", "agent-7", "card-export")).await;
    assert_eq!(v["status"], "approved", "{v}");
    assert_eq!(v["reviewer"], "bob");
    assert_eq!(v["reason"], "export week");
    assert_ne!(v["id"], id.as_str());
    // ... and again (a grant is not used up).
    assert_eq!(
        create_ok(&s, &request("fp-3", "agent-7", "card-export")).await["status"],
        "approved"
    );
    // Another rule or another identity is not covered.
    assert_eq!(
        create_ok(&s, &request("fp-4", "agent-7", "other-rule")).await["status"],
        "pending"
    );
    assert_eq!(
        create_ok(&s, &request("fp-5", "agent-8", "card-export")).await["status"],
        "pending"
    );
    // The same sub from another issuer is another identity.
    let mut foreign = request("fp-6", "agent-7", "card-export");
    foreign["identity"]["iss"] = json!("https://other-idp.test");
    assert_eq!(create_ok(&s, &foreign).await["status"], "pending");

    // Past the TTL, the grant no longer applies.
    clock.advance(3601);
    assert_eq!(
        create_ok(&s, &request("fp-7", "agent-7", "card-export")).await["status"],
        "pending"
    );
}

#[tokio::test]
async fn a_reviewer_cannot_decide_their_own_request() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(dir.path())).await;
    let id = create_ok(&s, &request("fp-1", "alice", "card-export")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    for action in ["approve", "deny"] {
        let (code, v) = decide(&s, ALICE, &id, action, json!({"reason": "mine"})).await;
        assert_eq!(code, 403, "{v}");
        assert_eq!(v["error"], "self_approval");
        assert!(v["reason"].as_str().unwrap().contains("alice"));
    }
    assert_eq!(poll(&s, &id, 0).await.1["status"], "pending");
    assert_eq!(decide(&s, BOB, &id, "approve", json!({})).await.0, 200);
}

#[tokio::test]
async fn unauthenticated_calls_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(dir.path())).await;
    let id = create_ok(&s, &request("fp-1", "agent-7", "card-export")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let c = client();
    let body = request("fp-2", "agent-7", "card-export");
    let calls = vec![
        // The filter's endpoints: no key, a wrong key, a reviewer's token.
        c.post(format!("{}/v1/approvals", s.base)).json(&body),
        c.post(format!("{}/v1/approvals", s.base))
            .header("x-approver-key", "wrong-key-0123456789")
            .json(&body),
        c.post(format!("{}/v1/approvals", s.base))
            .header("x-approver-key", ALICE)
            .json(&body),
        c.post(format!("{}/v1/approvals", s.base))
            .bearer_auth(ALICE)
            .json(&body),
        c.get(format!("{}/v1/approvals/{id}", s.base)),
        c.get(format!("{}/v1/approvals/{id}", s.base))
            .bearer_auth(ALICE),
        // The reviewers' endpoints: no token, a wrong one, the filter's key.
        c.get(format!("{}/v1/approvals?status=pending", s.base)),
        c.get(format!("{}/v1/approvals?status=pending", s.base))
            .bearer_auth("nobody-0123456789abc"),
        c.get(format!("{}/v1/approvals?status=pending", s.base))
            .header("x-approver-key", FILTER_KEY),
        c.get(format!("{}/v1/approvals?status=pending", s.base))
            .bearer_auth(FILTER_KEY),
        c.get(format!("{}/v1/approvals?status=pending", s.base))
            .header("authorization", format!("Basic {ALICE}")),
        c.post(format!("{}/v1/approvals/{id}/approve", s.base))
            .json(&json!({})),
        c.post(format!("{}/v1/approvals/{id}/approve", s.base))
            .header("x-approver-key", FILTER_KEY)
            .json(&json!({})),
        c.post(format!("{}/v1/approvals/{id}/deny", s.base))
            .bearer_auth("")
            .json(&json!({})),
    ];
    let n = calls.len();
    for (i, call) in calls.into_iter().enumerate() {
        let r = call.send().await.unwrap();
        assert_eq!(r.status().as_u16(), 401, "call {i} of {n}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], "unauthorized", "call {i}: {v}");
        assert!(v["reason"].is_string(), "call {i}: {v}");
    }
    // Nothing was created or decided.
    let (_, l) = list(&s, BOB, "all").await;
    assert_eq!(l["approvals"].as_array().unwrap().len(), 1);
    assert_eq!(l["approvals"][0]["status"], "pending");
}

#[tokio::test]
async fn a_long_poll_wakes_promptly_on_a_decision() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(dir.path())).await;
    let id = create_ok(&s, &request("fp-1", "agent-7", "card-export")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let poller = poll_in_flight(s.addr, &id, 25).await;
    // Half a second in which the poll must keep waiting (a sample: no event
    // marks "still waiting", and a slow machine cannot make this fail).
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        !poller.is_finished(),
        "the long-poll returned before any decision"
    );
    let decided = Instant::now();
    assert_eq!(
        decide(&s, BOB, &id, "deny", json!({"reason": "no"}))
            .await
            .0,
        200
    );
    let (code, v) = poller.await.unwrap();
    assert_eq!(code, 200);
    assert_eq!(v["status"], "denied");
    // Woken by the decision: far sooner than the poll's own 25 s.
    assert!(
        decided.elapsed() < Duration::from_secs(10),
        "woke {:?} after the decision",
        decided.elapsed()
    );
}

#[tokio::test]
async fn a_long_poll_without_decision_returns_pending_at_its_deadline() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(dir.path())).await;
    let id = create_ok(&s, &request("fp-1", "agent-7", "card-export")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let t = Instant::now();
    let (code, v) = poll(&s, &id, 1).await;
    assert_eq!(code, 200);
    assert_eq!(v["status"], "pending");
    assert!(
        t.elapsed() >= Duration::from_millis(900),
        "{:?}",
        t.elapsed()
    );
    // At its own 1 s deadline, not the service's longest wait.
    assert!(t.elapsed() < Duration::from_secs(10), "{:?}", t.elapsed());
}

#[tokio::test]
async fn a_restart_loses_no_approval() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(dir.path())).await;
    let req = request("fp-1", "agent-7", "card-export");
    let id = create_ok(&s, &req).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let denied = create_ok(&s, &request("fp-2", "agent-7", "card-export")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    assert_eq!(
        decide(&s, BOB, &denied, "deny", json!({"reason": "before"}))
            .await
            .0,
        200
    );
    s.kill().await;

    // A new process on the same database.
    let s = Server::start(config(dir.path())).await;
    assert_eq!(
        create_ok(&s, &req).await["id"],
        id.as_str(),
        "the pending one survived"
    );
    let (_, v) = poll(&s, &denied, 0).await;
    assert_eq!(v["status"], "denied");
    assert_eq!(v["reason"], "before");

    let poller = poll_in_flight(s.addr, &id, 20).await;
    let decided = Instant::now();
    let body = json!({"reason": "after restart"});
    assert_eq!(decide(&s, ALICE, &id, "approve", body).await.0, 200);
    let (code, v) = poller.await.unwrap();
    // Woken by the decision: far sooner than the poll's own 20 s.
    assert!(
        decided.elapsed() < Duration::from_secs(10),
        "{:?}",
        decided.elapsed()
    );
    assert_eq!(code, 200);
    assert_eq!(v["status"], "approved");
    assert_eq!(v["reason"], "after restart");
}

#[tokio::test]
async fn a_time_bound_grant_survives_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(dir.path())).await;
    let id = create_ok(&s, &request("fp-1", "agent-7", "card-export")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let body = json!({"grant": {"ttl_secs": 3600}});
    assert_eq!(decide(&s, BOB, &id, "approve", body).await.0, 200);
    s.kill().await;
    let s = Server::start(config(dir.path())).await;
    assert_eq!(
        create_ok(&s, &request("fp-2", "agent-7", "card-export")).await["status"],
        "approved"
    );
}

async fn webhook_receiver() -> (
    String,
    mpsc::UnboundedReceiver<Value>,
    tokio::task::JoinHandle<()>,
) {
    let (tx, rx) = mpsc::unbounded_channel();
    let app = Router::new().route(
        "/hook",
        post(move |Json(v): Json<Value>| {
            let tx = tx.clone();
            async move {
                let _ = tx.send(v);
                "ok"
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    let task = tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (url, rx, task)
}

#[tokio::test]
async fn the_webhook_receives_slack_json_for_each_new_pending_approval() {
    let dir = tempfile::tempdir().unwrap();
    let (url, mut rx, _task) = webhook_receiver().await;
    let mut cfg = config(dir.path());
    cfg.webhook = Some(url);
    cfg.public_url = Some("https://approver.example/".into());
    let s = Server::start(cfg).await;
    let mut req = request("fp-1", "agent-7", "card-export");
    req["path"] = json!("/customers/export?x=<b>&y=1");
    let id = create_ok(&s, &req).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let v = tokio::time::timeout(PATIENCE, rx.recv())
        .await
        .expect("no webhook arrived")
        .unwrap();
    let text = v["text"].as_str().unwrap();
    assert_eq!(
        text,
        format!(
            "Pending approval: `agent-7` wants `POST api.internal/customers/export?x=&lt;b&gt;&amp;y=1` (rule `card-export`): <https://approver.example/#{id}|review>"
        )
    );
    assert_eq!(v.as_object().unwrap().len(), 1, "{v}");
    // The same request again is not a new approval: no second message (in
    // a 0.7 s window: no event marks "none will come", and a slow machine
    // can only make this miss a late message, never fail a correct server).
    create_ok(&s, &req).await;
    assert!(tokio::time::timeout(Duration::from_millis(700), rx.recv())
        .await
        .is_err());
}

#[tokio::test]
async fn the_webhook_is_signed_and_retried_with_backoff() {
    use std::sync::atomic::{AtomicUsize, Ordering};
    use std::sync::Arc;
    let dir = tempfile::tempdir().unwrap();
    // Fails twice (500, then 429), then accepts.
    let (tx, mut rx) = mpsc::unbounded_channel::<(String, String, Vec<u8>)>();
    let calls = Arc::new(AtomicUsize::new(0));
    let app = Router::new().route(
        "/hook",
        post(
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let tx = tx.clone();
                let n = calls.fetch_add(1, Ordering::SeqCst);
                async move {
                    let h = |name: &str| headers.get(name).unwrap().to_str().unwrap().to_string();
                    let _ = tx.send((
                        h("x-transit-guard-timestamp"),
                        h("x-transit-guard-signature"),
                        body.to_vec(),
                    ));
                    match n {
                        0 => axum::http::StatusCode::INTERNAL_SERVER_ERROR,
                        1 => axum::http::StatusCode::TOO_MANY_REQUESTS,
                        _ => axum::http::StatusCode::OK,
                    }
                }
            },
        ),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    let mut cfg = config(dir.path());
    cfg.webhook = Some(url);
    cfg.webhook_secret = Some("webhook-secret-0123456789".into());
    cfg.webhook_retry = transit_guard_approver::webhook::Retry {
        attempts: 5,
        first_delay: Duration::from_millis(50),
        max_delay: Duration::from_millis(200),
    };
    let s = Server::start(cfg).await;
    create_ok(&s, &request("fp-1", "agent-7", "card-export")).await;
    let mut got = Vec::new();
    for _ in 0..3 {
        got.push(
            tokio::time::timeout(Duration::from_secs(10), rx.recv())
                .await
                .expect("the webhook was not retried within 10 s")
                .unwrap(),
        );
    }
    for (ts, sig, body) in &got {
        let ts: i64 = ts.parse().unwrap();
        assert_eq!(
            sig,
            &transit_guard_approver::webhook::sign(b"webhook-secret-0123456789", ts, body)
        );
        assert_eq!(body, &got[0].2, "every attempt sends the same payload");
    }
    // Delivered on the third attempt: no fourth.
    assert!(tokio::time::timeout(Duration::from_millis(700), rx.recv())
        .await
        .is_err());
}

#[tokio::test]
async fn a_webhook_that_is_down_or_slow_never_blocks() {
    let dir = tempfile::tempdir().unwrap();
    // A listener that accepts and never answers.
    let silent = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let silent_url = format!("http://{}/hook", silent.local_addr().unwrap());
    let mut cfg = config(dir.path());
    cfg.webhook = Some(silent_url);
    cfg.webhook_timeout = Duration::from_secs(60);
    let s = Server::start(cfg).await;
    let t = Instant::now();
    for i in 0..3 {
        let v = create_ok(&s, &request(&format!("fp-{i}"), "agent-7", "card-export")).await;
        assert_eq!(v["status"], "pending");
    }
    // Waiting on the webhook would take 60 s at least.
    assert!(t.elapsed() < Duration::from_secs(20), "{:?}", t.elapsed());
    drop(silent);
}

#[tokio::test]
async fn malformed_requests_get_json_errors() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(dir.path())).await;
    let c = client();
    let id = create_ok(&s, &request("fp-1", "agent-7", "card-export")).await["id"]
        .as_str()
        .unwrap()
        .to_string();

    let mut too_long = request("fp-2", "agent-7", "card-export");
    too_long["preview"] = json!("x".repeat(4097));
    let mut no_sub = request("fp-3", "", "card-export");
    no_sub["identity"]["sub"] = json!("");
    let mut extra = request("fp-4", "agent-7", "card-export");
    extra["surprise"] = json!(1);
    let cases: Vec<(reqwest::RequestBuilder, u16, &str)> = vec![
        (
            c.post(format!("{}/v1/approvals", s.base))
                .header("x-approver-key", FILTER_KEY)
                .body("{not json"),
            400,
            "invalid_request",
        ),
        (
            c.post(format!("{}/v1/approvals", s.base))
                .header("x-approver-key", FILTER_KEY)
                .json(&too_long),
            400,
            "invalid_request",
        ),
        (
            c.post(format!("{}/v1/approvals", s.base))
                .header("x-approver-key", FILTER_KEY)
                .json(&no_sub),
            400,
            "invalid_request",
        ),
        (
            c.post(format!("{}/v1/approvals", s.base))
                .header("x-approver-key", FILTER_KEY)
                .json(&extra),
            400,
            "invalid_request",
        ),
        (
            c.post(format!("{}/v1/approvals", s.base))
                .header("x-approver-key", FILTER_KEY)
                .body(vec![b'x'; 100_000]),
            413,
            "body_too_large",
        ),
        (
            c.get(format!("{}/v1/approvals/apr_nope", s.base))
                .header("x-approver-key", FILTER_KEY),
            404,
            "not_found",
        ),
        (
            c.get(format!("{}/v1/approvals/{id}?wait=soon", s.base))
                .header("x-approver-key", FILTER_KEY),
            400,
            "invalid_request",
        ),
        (
            c.get(format!("{}/v1/approvals?status=maybe", s.base))
                .bearer_auth(ALICE),
            400,
            "invalid_request",
        ),
        (
            c.post(format!("{}/v1/approvals/{id}/approve", s.base))
                .bearer_auth(ALICE)
                .json(&json!({"grant": "forever"})),
            400,
            "invalid_request",
        ),
        (
            c.post(format!("{}/v1/approvals/{id}/approve", s.base))
                .bearer_auth(ALICE)
                .json(&json!({"grant": {"ttl_secs": 0}})),
            400,
            "invalid_request",
        ),
        (
            c.post(format!("{}/v1/approvals/{id}/approve", s.base))
                .bearer_auth(ALICE)
                .body("nope"),
            400,
            "invalid_request",
        ),
        (
            c.post(format!("{}/v1/approvals/apr_nope/deny", s.base))
                .bearer_auth(ALICE)
                .json(&json!({})),
            404,
            "not_found",
        ),
        (
            c.delete(format!("{}/v1/approvals", s.base)),
            405,
            "method_not_allowed",
        ),
        (c.get(format!("{}/v2/nothing", s.base)), 404, "not_found"),
    ];
    for (i, (call, status, error)) in cases.into_iter().enumerate() {
        let r = call.send().await.unwrap();
        assert_eq!(r.status().as_u16(), status, "case {i}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["error"], error, "case {i}: {v}");
        assert!(v["reason"].is_string(), "case {i}: {v}");
    }
    // None of it changed the approval.
    assert_eq!(poll(&s, &id, 0).await.1["status"], "pending");
}

#[tokio::test]
async fn the_page_and_health_are_served() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(dir.path())).await;
    let r = client().get(format!("{}/", s.base)).send().await.unwrap();
    assert_eq!(r.status(), 200);
    let csp = r.headers()["content-security-policy"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(csp.contains("script-src 'self'"), "{csp}");
    assert!(r.text().await.unwrap().contains("/app.js"));
    let r = client()
        .get(format!("{}/app.js", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    let r = client()
        .get(format!("{}/healthz", s.base))
        .send()
        .await
        .unwrap();
    assert_eq!(r.json::<Value>().await.unwrap(), json!({"status": "ok"}));
}

#[tokio::test]
async fn concurrent_polls_use_a_one_time_approval_once() {
    let dir = tempfile::tempdir().unwrap();
    let s = Server::start(config(dir.path())).await;
    let req = request("fp-1", "agent-7", "card-export");
    let id = create_ok(&s, &req).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let mut pollers = Vec::new();
    for _ in 0..6 {
        pollers.push(poll_in_flight(s.addr, &id, 20).await);
    }
    // And retries of the same request, racing the polls once it is approved.
    assert_eq!(decide(&s, BOB, &id, "approve", json!({})).await.0, 200);
    let retries: Vec<_> = (0..4)
        .map(|_| {
            let base = s.base.clone();
            let req = req.clone();
            tokio::spawn(async move {
                let r = client()
                    .post(format!("{base}/v1/approvals"))
                    .header("x-approver-key", FILTER_KEY)
                    .json(&req)
                    .send()
                    .await
                    .unwrap();
                r.json::<Value>().await.unwrap()
            })
        })
        .collect();
    let mut passed = 0;
    for p in pollers {
        let (code, v) = p.await.unwrap();
        match code {
            200 if v["status"] == "approved" => passed += 1,
            410 => assert_eq!(v["error"], "consumed"),
            _ => panic!("unexpected poll reply {code} {v}"),
        }
    }
    for r in retries {
        let v = r.await.unwrap();
        if v["status"] == "approved" {
            assert_eq!(v["id"], id.as_str());
            passed += 1;
        } else {
            assert_eq!(v["status"], "pending", "{v}");
        }
    }
    assert_eq!(
        passed, 1,
        "a one-time approval let {passed} requests through"
    );
}

#[tokio::test]
async fn a_rule_policy_needs_two_distinct_reviewers_of_its_group() {
    const CAROL: &str = "carol-token-0123456789";
    let dir = tempfile::tempdir().unwrap();
    let cfg = config(dir.path()).reviewer("carol", CAROL).policies(
        transit_guard_approver::policy::Policies::from_json(
            br#"{"rules": {"db-write": {"groups": ["dba"], "approvals": 2, "max_grant_secs": 600},
                           "no-grants": {"grants": false}},
                 "reviewers": {"alice": {"groups": ["dba"]}, "bob": {"groups": ["dba"]},
                               "carol": {"groups": ["dev"]}}}"#,
        )
        .unwrap(),
    );
    let s = Server::start(cfg).await;
    let id = create_ok(&s, &request("fp-1", "agent-7", "db-write")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // The reviewer list says what the policy asks.
    let (_, l) = list(&s, CAROL, "pending").await;
    assert_eq!(
        l["approvals"][0]["policy"],
        json!({"groups": [["dba"]], "approvals": 2, "max_grant_secs": 600, "grants": true})
    );
    // Not in dba: refused, whatever the decision.
    for action in ["approve", "deny"] {
        let (code, v) = decide(&s, CAROL, &id, action, json!({})).await;
        assert_eq!(
            (code, v["error"].as_str()),
            (403, Some("not_allowed")),
            "{v}"
        );
    }
    // A grant longer than the policy allows: refused.
    let (code, v) = decide(
        &s,
        ALICE,
        &id,
        "approve",
        json!({"grant": {"ttl_secs": 601}}),
    )
    .await;
    assert_eq!(
        (code, v["error"].as_str()),
        (403, Some("not_allowed")),
        "{v}"
    );
    // One of two: still pending for the filter.
    let (code, v) = decide(&s, ALICE, &id, "approve", json!({"reason": "looks fine"})).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "pending");
    assert_eq!(v["votes"][0]["reviewer"], "alice");
    assert_eq!(poll(&s, &id, 0).await.1["status"], "pending");
    let (code, v) = decide(&s, ALICE, &id, "approve", json!({})).await;
    assert_eq!(
        (code, v["error"].as_str()),
        (409, Some("already_voted")),
        "{v}"
    );
    // The second distinct dba reviewer decides it.
    let (code, v) = decide(&s, BOB, &id, "approve", json!({"reason": "agreed"})).await;
    assert_eq!(code, 200, "{v}");
    assert_eq!(v["status"], "approved");
    let (_, v) = poll(&s, &id, 0).await;
    assert_eq!(v["status"], "approved");
    assert_eq!(v["reviewer"], "alice, bob");
    assert_eq!(v["reason"], "looks fine; agreed");

    // A rule whose policy allows no grant: approve once only.
    let id = create_ok(&s, &request("fp-2", "agent-7", "no-grants")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    let (code, _) = decide(
        &s,
        CAROL,
        &id,
        "approve",
        json!({"grant": {"ttl_secs": 60}}),
    )
    .await;
    assert_eq!(code, 403);
    let (code, v) = decide(&s, CAROL, &id, "approve", json!({"grant": "once"})).await;
    assert_eq!((code, &v["status"]), (200, &json!("approved")));
}

#[tokio::test]
async fn a_forged_or_missing_session_cookie_is_not_a_reviewer() {
    let dir = tempfile::tempdir().unwrap();
    let mut cfg = config(dir.path());
    cfg.public_url = Some("http://127.0.0.1:1".into());
    cfg.session_secret = Some("session-secret-0123456789abcdef0123".into());
    cfg.oidc = Some(transit_guard_approver::oidc::OidcConfig {
        issuer: "http://127.0.0.1:1".into(),
        client_id: "approver".into(),
        client_secret: "secret".into(),
        name_claim: "sub".into(),
        groups_claim: "groups".into(),
        session_ttl_secs: 3600,
    });
    let s = Server::start(cfg).await;
    let id = create_ok(&s, &request("fp-1", "agent-7", "card-export")).await["id"]
        .as_str()
        .unwrap()
        .to_string();
    // A session sealed with another key.
    let other = transit_guard_approver::session::Signer::new(b"not the approver's secret at all!!");
    let forged = other
        .seal(
            "session",
            &transit_guard_approver::session::Session {
                name: "mallory".into(),
                groups: vec!["dba".into()],
                exp: now() + 3600,
                csrf: "x".into(),
            },
        )
        .unwrap();
    for cookie in [None, Some(format!("tg_session={forged}"))] {
        let mut r = client()
            .post(format!("{}/v1/approvals/{id}/approve", s.base))
            .header("x-csrf-token", "x")
            .json(&json!({}));
        if let Some(c) = &cookie {
            r = r.header("cookie", c);
        }
        let r = r.send().await.unwrap();
        assert_eq!(r.status(), 401, "{cookie:?}");
    }
    // The page learns that sign-in is offered, and that nobody is signed in.
    let me: Value = client()
        .get(format!("{}/auth/me", s.base))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(me, json!({"signed_in": false, "oidc": true}));
    // Bearer tokens still work beside OIDC.
    assert_eq!(decide(&s, BOB, &id, "approve", json!({})).await.0, 200);
}
