//! Blast-radius limits (`quotas`) through the real Envoy 1.40 with the real
//! module: counters in Envoy's shared data are shared by its workers, the
//! 21st approval ask in the window is refused before the approver hears of
//! it, and Envoy's own `local_ratelimit` keys on the subject header the
//! filter sets from the verified token.

use std::time::Duration;

use integration_tests::approver::{pending, start_approver, wait_pending, FILTER_KEY};
use integration_tests::gateway::{gateway_template, Gateway, Options};
use integration_tests::tokens::{self, KeyKind, SigningKey, TokenBuilder};
use integration_tests::wait::{self, Check};
use serde_json::{json, Value};
use tokio::net::TcpListener;

const ISSUER: &str = "https://idp.transit-guard.test";

/// The policy's identity section: tokens signed by `key`, the verified
/// subject in `x-agent-subject`.
fn identity(key: &SigningKey) -> Value {
    let mut provider = tokens::provider_json("corp", ISSUER, "gw", &[key]);
    provider["claims_to_headers"] = json!({"sub": "x-agent-subject"});
    json!({"providers": [provider]})
}

fn token(key: &SigningKey, sub: &str) -> String {
    TokenBuilder::new(ISSUER, "gw", sub, tokens::now())
        .sign(key)
        .unwrap()
}

/// Waits until at least `margin` seconds are left in the current
/// `window`-second window, so a burst is counted in one window.
async fn inside_one_window(window: u64, margin: u64) {
    wait::until_async_within(
        "a fresh quota window",
        Duration::from_secs(margin + 5),
        || async move {
            let left = window - tokens::now() % window;
            if left >= margin {
                Check::Done(())
            } else {
                Check::NotYet(format!("{left} s left in the window"))
            }
        },
    )
    .await
    .unwrap();
}

/// One GET on a new connection (so Envoy spreads them over its workers).
async fn get(gw: &Gateway, path: &str, token: &str) -> (u16, reqwest::header::HeaderMap, Value) {
    let r = gw
        .client()
        .unwrap()
        .get(gw.url(path))
        .bearer_auth(token)
        .send()
        .await
        .unwrap();
    let status = r.status().as_u16();
    let headers = r.headers().clone();
    let text = r.text().await.unwrap();
    let body = serde_json::from_str(&text).unwrap_or(Value::String(text));
    (status, headers, body)
}

/// Connections each of Envoy's workers accepted on the agent listener.
fn connections_per_worker(gw: &Gateway) -> Vec<u64> {
    let body = gw
        .envoy
        .admin_get("/stats?filter=worker_[0-9]+\\.downstream_cx_total")
        .unwrap();
    body.lines()
        .filter(|l| l.starts_with("listener.127.0.0.1_"))
        .filter_map(|l| l.rsplit(": ").next()?.trim().parse().ok())
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn a_flood_from_one_subject_is_cut_at_its_limit_across_workers() {
    let key = SigningKey::generate(KeyKind::P256, "k1").unwrap();
    let policy = json!({
        "identity": identity(&key),
        "quotas": {"limits": [
            {"name": "agent-requests", "counts": "requests", "max": 10, "window_secs": 3600}
        ]}
    })
    .to_string();
    let mut opts = Options::for_test("quotas-flood", &policy).unwrap();
    opts.concurrency = 2;
    let gw = Gateway::start(opts).await.unwrap();
    let (mallory, alice) = (token(&key, "mallory"), token(&key, "alice"));
    inside_one_window(3600, 60).await;

    // 30 at once from mallory, each on its own connection, with alice's
    // traffic interleaved.
    let mut floods = Vec::new();
    for i in 0..30 {
        let (client, url, t) = (
            gw.client().unwrap(),
            gw.url(&format!("/m/{i}")),
            mallory.clone(),
        );
        floods.push(tokio::spawn(async move {
            let r = client.get(url).bearer_auth(t).send().await.unwrap();
            let status = r.status().as_u16();
            let retry = r
                .headers()
                .get("retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            (status, retry, r.text().await.unwrap())
        }));
    }
    for i in 0..5 {
        let (status, _, body) = get(&gw, &format!("/a/{i}"), &alice).await;
        assert_eq!(status, 200, "alice is not mallory: {body}");
    }
    let mut passed = 0;
    for f in floods {
        let (status, retry, text) = f.await.unwrap();
        match status {
            200 => passed += 1,
            429 => {
                let v: Value = serde_json::from_str(&text).unwrap();
                assert_eq!(v["error"], "quota_exceeded");
                assert_eq!(v["limit"], "agent-requests");
                let secs: u64 = retry.expect("Retry-After").parse().unwrap();
                assert!((1..=3600).contains(&secs), "{secs}");
            }
            other => panic!("unexpected {other}: {text}"),
        }
    }
    assert_eq!(
        passed, 10,
        "exactly the limit passes, whichever worker served it"
    );
    let seen = gw.upstream.requests();
    assert_eq!(
        seen.iter().filter(|r| r.path.starts_with("/m/")).count(),
        10
    );
    assert_eq!(seen.iter().filter(|r| r.path.starts_with("/a/")).count(), 5);
    let workers = connections_per_worker(&gw);
    assert_eq!(workers.len(), 2, "{workers:?}");
    assert!(
        workers.iter().all(|n| *n > 0),
        "both workers took connections: {workers:?}"
    );
    // Audited and counted by limit.
    let records = gw.wait_for_audit("20 rate_limited records", |r| {
        r.iter().filter(|x| x["decision"] == "rate_limited").count() >= 20
    });
    let limited: Vec<&Value> = records
        .iter()
        .filter(|x| x["decision"] == "rate_limited")
        .collect();
    assert_eq!(limited.len(), 20);
    assert!(limited.iter().all(|r| r["quota"] == "agent-requests"
        && r["reason"] == "quota_exceeded"
        && r["identity"]["sub"] == "mallory"));
    gw.envoy
        .wait_for_stat(
            "wasmcustom.transit_guard.quota_exceeded.agent-requests",
            "== 20",
            |v| v == 20,
        )
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_21st_approval_ask_in_the_window_gets_429() {
    let key = SigningKey::generate(KeyKind::P256, "k1").unwrap();
    let policy = json!({
        "identity": identity(&key),
        "default_action": "allow",
        "rules": [{"name": "export", "match": {"path": {"prefix": "/export"}},
                   "action": "require_approval"}],
        "approval": {"cluster": "approver", "api_key": FILTER_KEY,
                     "max_wait_secs": 60, "poll_secs": 25, "timeout_ms": 2000},
        "quotas": {"limits": [
            {"name": "approval-asks", "counts": "rule_matches", "rule": "export",
             "max": 20, "window_secs": 3600}
        ]}
    })
    .to_string();
    let opts = Options::for_test("quotas-approvals", &policy).unwrap();
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let approver = listener.local_addr().unwrap();
    let (_stop, _) = start_approver(&opts.dir.join("approver.sqlite"), listener);
    let gw = Gateway::start(opts.with_approver(approver)).await.unwrap();
    let alice = token(&key, "alice");
    inside_one_window(3600, 90).await;

    // 20 asks, held while they wait for a reviewer.
    let mut held = Vec::new();
    for i in 0..20 {
        let (client, url, t) = (
            gw.client().unwrap(),
            gw.url(&format!("/export/{i}")),
            alice.clone(),
        );
        held.push(tokio::spawn(async move {
            client.get(url).bearer_auth(t).send().await
        }));
    }
    wait_pending(approver, 20).await;
    let (status, headers, body) = get(&gw, "/export/21", &alice).await;
    assert_eq!(status, 429, "{body}");
    assert_eq!(body["limit"], "approval-asks");
    assert!(headers.contains_key("retry-after"));
    assert_eq!(
        pending(approver).await.len(),
        20,
        "the 21st never reached the approver"
    );
    // Other requests of alice's, and bob's asks, are not this limit's business.
    assert_eq!(get(&gw, "/report", &alice).await.0, 200);
    let bob = gw
        .client()
        .unwrap()
        .get(gw.url("/export/bob"))
        .bearer_auth(token(&key, "bob"));
    held.push(tokio::spawn(async move { bob.send().await }));
    wait_pending(approver, 21).await;
    let records = gw.wait_for_audit("the rate_limited record", |r| {
        r.iter().any(|x| x["decision"] == "rate_limited")
    });
    let r = records
        .iter()
        .find(|x| x["decision"] == "rate_limited")
        .unwrap();
    assert_eq!(r["quota"], "approval-asks");
    assert_eq!(r["path"], "/export/21");
    assert!(r.get("approval").is_none(), "no approval was asked: {r}");
    for h in held {
        h.abort();
    }
}

/// Envoy's `local_ratelimit` after the filter, keyed on the verified
/// subject header (`claims_to_headers`), as `docs/quotas.md` shows.
const LOCAL_RATELIMIT: &str = r#"          - name: envoy.filters.http.local_ratelimit
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit
              stat_prefix: agent_ratelimit
              token_bucket: { max_tokens: 1000, tokens_per_fill: 1000, fill_interval: 3600s }
              filter_enabled: { default_value: { numerator: 100, denominator: HUNDRED } }
              filter_enforced: { default_value: { numerator: 100, denominator: HUNDRED } }
              rate_limits:
              - actions:
                - request_headers: { header_name: x-agent-subject, descriptor_key: agent }
              descriptors:
              - entries: [{ key: agent, value: mallory }]
                token_bucket: { max_tokens: 2, tokens_per_fill: 2, fill_interval: 3600s }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn envoy_local_ratelimit_keys_on_the_verified_subject() {
    let key = SigningKey::generate(KeyKind::P256, "k1").unwrap();
    let policy = json!({"identity": identity(&key)}).to_string();
    let mut opts = Options::for_test("quotas-local-ratelimit", &policy).unwrap();
    // The shipped gateway with local_ratelimit between the filter and the
    // credential injector.
    let shipped = std::fs::read_to_string(gateway_template()).unwrap();
    let anchor = "          - name: envoy.filters.http.credential_injector\n";
    assert!(shipped.contains(anchor));
    let template = opts.dir.join("gateway-local-ratelimit.yaml");
    std::fs::write(
        &template,
        shipped.replacen(anchor, &format!("{LOCAL_RATELIMIT}{anchor}"), 1),
    )
    .unwrap();
    opts.template = template;
    opts.concurrency = 2;
    let gw = Gateway::start(opts).await.unwrap();
    let (mallory, alice) = (token(&key, "mallory"), token(&key, "alice"));

    assert_eq!(get(&gw, "/1", &mallory).await.0, 200);
    assert_eq!(get(&gw, "/2", &mallory).await.0, 200);
    let (status, _, body) = get(&gw, "/3", &mallory).await;
    assert_eq!(status, 429, "Envoy's bucket for mallory is empty");
    assert_eq!(
        body, "local_rate_limited",
        "Envoy's reply, not the filter's"
    );
    // The header is the filter's, from the token: a claimed one is replaced.
    let spoof = gw
        .client()
        .unwrap()
        .get(gw.url("/4"))
        .bearer_auth(&alice)
        .header("x-agent-subject", "someone-else")
        .send()
        .await
        .unwrap();
    assert_eq!(spoof.status(), 200);
    let mallory_as_alice = gw
        .client()
        .unwrap()
        .get(gw.url("/5"))
        .bearer_auth(&mallory)
        .header("x-agent-subject", "alice")
        .send()
        .await
        .unwrap();
    assert_eq!(
        mallory_as_alice.status(),
        429,
        "a claimed subject is not trusted"
    );
    let seen = gw.upstream.requests();
    assert_eq!(seen.len(), 3, "{seen:?}");
    assert_eq!(seen[2].header("x-agent-subject"), Some("alice"));
    gw.envoy
        .wait_for_stat(
            "agent_ratelimit.http_local_rate_limit.rate_limited",
            "== 2",
            |v| v == 2,
        )
        .unwrap();
}
