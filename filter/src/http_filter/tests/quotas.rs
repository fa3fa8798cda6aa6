//! `quotas` through the stream: counters in (mock) shared data, 429 with
//! `Retry-After` naming the limit, audit and metric, fail closed.

use std::rc::Rc;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use super::{audit, worker, HttpFilter};
use crate::envoy::mock::MockEnvoy;
use crate::http_filter::Action;
use crate::worker::Worker;

const SECRET: &[u8] = b"0123456789abcdef0123456789abcdef";
const NOW: u64 = 1_800_000_000;

fn b64(b: &[u8]) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(b)
}

/// An HS256 token for `sub`, valid at the mock's clock.
fn token(sub: &str) -> String {
    let header = b64(br#"{"alg":"HS256","typ":"JWT"}"#);
    let claims = json!({"iss": "https://idp.test", "aud": "gw", "sub": sub,
                        "iat": NOW, "exp": NOW + 86_400});
    let input = format!("{header}.{}", b64(claims.to_string().as_bytes()));
    let sig = hmac_sha256::HMAC::mac(input.as_bytes(), SECRET);
    format!("{input}.{}", b64(&sig))
}

fn policy(limits: Value, mode: &str) -> Rc<Worker> {
    worker(
        &json!({
            "mode": mode,
            "identity": {"providers": [{
                "name": "corp", "issuer": "https://idp.test", "audiences": ["gw"],
                "algorithms": ["HS256"], "hmac_secret": b64(SECRET)
            }]},
            "default_action": "allow",
            "rules": [{"name": "export", "match": {"path": {"prefix": "/export"}}, "action": "deny"}],
            "quotas": {"limits": limits}
        })
        .to_string(),
    )
}

/// A GET from `sub`, sharing `shared` (the Envoy's shared data) with others.
fn request(sub: &str, path: &str, shared: &MockEnvoy) -> MockEnvoy {
    let envoy = MockEnvoy::with_request(&[
        (":method", "GET"),
        (":authority", "api.internal"),
        (":path", path),
        ("x-request-id", "req-q"),
        ("authorization", &format!("Bearer {}", token(sub))),
    ]);
    {
        let from = shared.0.borrow();
        let mut s = envoy.0.borrow_mut();
        s.shared = from.shared.clone();
        s.now = from.now;
    }
    envoy
}

/// Runs one request through a new stream and carries the shared data back.
fn run(w: &Rc<Worker>, sub: &str, path: &str, shared: &MockEnvoy) -> (Action, MockEnvoy) {
    let envoy = request(sub, path, shared);
    let mut f = HttpFilter::new(1, Some(w.clone()));
    let action = f.on_request_headers(&envoy, true);
    f.on_log(&envoy);
    shared.0.borrow_mut().shared = envoy.0.borrow().shared.clone();
    (action, envoy)
}

fn clock() -> MockEnvoy {
    MockEnvoy::with_request(&[])
}

#[test]
fn one_identity_is_cut_at_its_limit_while_another_passes() {
    let w = policy(
        json!([{"name": "per-minute", "counts": "requests", "max": 3, "window_secs": 60}]),
        "enforce",
    );
    let shared = clock();
    for _ in 0..3 {
        assert_eq!(run(&w, "alice", "/", &shared).0, Action::Continue);
    }
    let (action, envoy) = run(&w, "alice", "/", &shared);
    assert_eq!(action, Action::Pause);
    let replies = envoy.replies();
    assert_eq!(replies[0].1, 429);
    let body: Value = serde_json::from_str(&replies[0].2).unwrap();
    assert_eq!(body["error"], "quota_exceeded");
    assert_eq!(body["limit"], "per-minute");
    let rec = audit(&envoy);
    assert_eq!(rec["decision"], "rate_limited");
    assert_eq!(rec["quota"], "per-minute");
    assert_eq!(
        envoy
            .0
            .borrow()
            .counters
            .get("transit_guard.quota_exceeded.per-minute"),
        Some(&1)
    );
    assert_eq!(run(&w, "bob", "/", &shared).0, Action::Continue);
    // The next window starts at zero.
    shared.advance(Duration::from_secs(60));
    assert_eq!(run(&w, "alice", "/", &shared).0, Action::Continue);
}

#[test]
fn the_reply_carries_retry_after_until_the_window_ends() {
    let w = policy(
        json!([{"name": "hourly", "counts": "requests", "max": 1, "window_secs": 3600}]),
        "enforce",
    );
    let shared = clock();
    run(&w, "alice", "/", &shared);
    shared.advance(Duration::from_secs(2_000));
    let envoy = request("alice", "/", &shared);
    let mut f = HttpFilter::new(1, Some(w.clone()));
    f.on_request_headers(&envoy, true);
    let s = envoy.0.borrow();
    let retry = s
        .reply_headers
        .iter()
        .find(|(k, _)| k == "retry-after")
        .map(|(_, v)| v.clone());
    // 1_800_000_000 starts an hour; 2_000 s of it have gone.
    assert_eq!(retry.as_deref(), Some("1600"));
}

#[test]
fn rule_matches_are_counted_per_rule() {
    let w = policy(
        json!([{"name": "exports", "counts": "rule_matches", "rule": "export", "max": 2, "window_secs": 60}]),
        "enforce",
    );
    let shared = clock();
    for _ in 0..2 {
        let (_, envoy) = run(&w, "alice", "/export/x", &shared);
        assert_eq!(envoy.replies()[0].1, 403, "the rule refuses");
    }
    assert_eq!(run(&w, "alice", "/other", &shared).0, Action::Continue);
}

#[test]
fn a_counter_error_refuses_the_request() {
    let w = policy(
        json!([{"name": "rpm", "counts": "requests", "max": 5, "window_secs": 60}]),
        "enforce",
    );
    let envoy = request("alice", "/", &clock());
    envoy.fail("shared_get");
    let mut f = HttpFilter::new(1, Some(w));
    assert_eq!(f.on_request_headers(&envoy, true), Action::Pause);
    assert_eq!(envoy.replies()[0].1, 503);
    f.on_log(&envoy);
    assert_eq!(audit(&envoy)["reason"], "quota_unavailable");
}

#[test]
fn monitor_mode_records_the_excess_and_lets_it_pass() {
    let w = policy(
        json!([{"name": "rpm", "counts": "requests", "max": 1, "window_secs": 60}]),
        "monitor",
    );
    let shared = clock();
    run(&w, "alice", "/", &shared);
    let (action, envoy) = run(&w, "alice", "/", &shared);
    assert_eq!(action, Action::Continue);
    let rec = audit(&envoy);
    assert_eq!(rec["would"][0], "quota rpm: quota_exceeded");
}

#[test]
fn response_bytes_refuse_the_next_request_once_used_up() {
    let w = policy(
        json!([{"name": "download", "counts": "response_bytes", "max": 100, "window_secs": 60}]),
        "enforce",
    );
    let shared = clock();
    let envoy = request("alice", "/", &shared);
    envoy
        .0
        .borrow_mut()
        .properties
        .insert("response.size".into(), 150u64.to_le_bytes().to_vec());
    let mut f = HttpFilter::new(1, Some(w.clone()));
    assert_eq!(f.on_request_headers(&envoy, true), Action::Continue);
    f.on_log(&envoy);
    shared.0.borrow_mut().shared = envoy.0.borrow().shared.clone();
    let (_, envoy) = run(&w, "alice", "/", &shared);
    assert_eq!(envoy.replies()[0].1, 429);
    assert_eq!(run(&w, "bob", "/", &shared).0, Action::Continue);
}

#[test]
fn a_full_table_refuses_new_identities_until_a_slot_frees() {
    let w = worker(
        &json!({
            "identity": {"providers": [{
                "name": "corp", "issuer": "https://idp.test", "audiences": ["gw"],
                "algorithms": ["HS256"], "hmac_secret": b64(SECRET)
            }]},
            "quotas": {"max_identities": 1,
                       "limits": [{"name": "rpm", "counts": "requests", "max": 9, "window_secs": 60}]}
        })
        .to_string(),
    );
    let shared = clock();
    assert_eq!(run(&w, "alice", "/", &shared).0, Action::Continue);
    let (_, envoy) = run(&w, "bob", "/", &shared);
    let body: Value = serde_json::from_str(&envoy.replies()[0].2).unwrap();
    assert_eq!(body["error"], "quota_capacity");
    shared.advance(Duration::from_secs(60));
    assert_eq!(run(&w, "bob", "/", &shared).0, Action::Continue);
}
