//! The stack `cargo xtask demo` runs (dev issuer, approver, demo upstream,
//! Envoy with `examples/policies/demo.json`), on ephemeral ports, and the
//! outcomes of the commands the demo prints.

use integration_tests::demo::{DemoOptions, DemoStack, Ports};
use integration_tests::gateway::upstream_credential;
use integration_tests::paths::scratch_dir;
use integration_tests::upstream::DEMO_CUSTOMERS;
use integration_tests::wait::{self, Check};
use serde_json::Value;

async fn start(name: &str) -> DemoStack {
    let dir = scratch_dir(name).unwrap();
    DemoStack::start(DemoOptions::new(
        dir.join("run"),
        dir.join("issuer"),
        Ports::EPHEMERAL,
    ))
    .await
    .unwrap()
}

async fn json(resp: reqwest::Response) -> Value {
    let text = resp.text().await.unwrap();
    serde_json::from_str(&text).unwrap_or_else(|_| panic!("not JSON: {text}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_scenario_has_the_printed_outcomes() {
    let demo = start("demo-scenario").await;
    let gw = &demo.gateway;
    let client = gw.client().unwrap();
    let alice = demo.token("alice", &["support"]).unwrap();
    let bob = demo.token("bob", &["sales"]).unwrap();

    // Support reads the customers, masked.
    let resp = client
        .get(gw.url("/customers"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let body: Value = serde_json::from_str(&text).expect("masked body is still JSON");
    assert_eq!(body["customers"][0]["name"], "Ada Lovelace");
    for raw in [
        "ada.lovelace@example.com",
        "+1 415 555 0132",
        "4111 1111 1111 1111",
        "123-45-6789",
        "grace@navy.example.org",
    ] {
        assert!(DEMO_CUSTOMERS.contains(raw), "test data changed: {raw}");
        assert!(!text.contains(raw), "{raw} reached the agent: {text}");
    }
    let card = body["customers"][0]["card"].as_str().unwrap();
    assert!(card.ends_with("1111"), "cards keep their last 4: {card}");

    // No token: 401 and a challenge.
    let resp = client.get(gw.url("/customers")).send().await.unwrap();
    assert_eq!(resp.status(), 401);
    let challenge = resp.headers()["www-authenticate"].to_str().unwrap();
    assert!(
        challenge.starts_with("Bearer realm=\"transit-guard-demo\""),
        "{challenge}"
    );
    assert_eq!(json(resp).await["error"], "token_missing");

    // Someone outside support: 403 by rule.
    let resp = client
        .get(gw.url("/customers"))
        .bearer_auth(&bob)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(json(resp).await["rule"], "customers-support-only");

    // DELETE: 403, whoever asks.
    let resp = client
        .delete(gw.url("/customers/c-1001"))
        .bearer_auth(&alice)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(json(resp).await["rule"], "no-deletes");

    // DROP TABLE in a body: 403.
    let resp = client
        .post(gw.url("/v1/query"))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .body(r#"{"sql":"DROP TABLE customers"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    assert_eq!(json(resp).await["rule"], "no-drop-table");

    // A secret sent to /v1 is masked before the upstream sees it.
    let secret = "ghp_0123456789abcdefghijABCDEFGHIJ456789";
    let resp = client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .body(format!(
            r#"{{"messages":[{{"role":"user","content":"deploy with {secret}"}}]}}"#
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);

    // Only the allowed requests reached the upstream, with the gateway's
    // credential (Envoy injects it) instead of the agent's token.
    let seen = gw.upstream.requests();
    let credential = upstream_credential(&gw.pki.dir).unwrap();
    let paths: Vec<(&str, &str)> = seen
        .iter()
        .map(|r| (r.method.as_str(), r.path.as_str()))
        .collect();
    assert_eq!(
        paths,
        [("GET", "/customers"), ("POST", "/v1/chat/completions")]
    );
    for r in &seen {
        assert_eq!(r.header("authorization"), Some(credential.as_str()));
    }
    let sent = String::from_utf8_lossy(&seen[1].body);
    assert!(!sent.contains(secret), "{sent}");
    assert!(sent.contains("deploy with"), "{sent}");

    // The audit trail names the caller and the rule.
    let records = gw.wait_for_audit_records(6);
    let summary: Vec<(Value, Value, Value)> = records
        .iter()
        .map(|r| {
            (
                r["identity"]["sub"].clone(),
                r["decision"].clone(),
                r["status"].clone(),
            )
        })
        .collect();
    assert_eq!(
        summary,
        [
            ("alice".into(), "masked".into(), 200.into()),
            (Value::Null, "unauthenticated".into(), 401.into()),
            ("bob".into(), "denied".into(), 403.into()),
            ("alice".into(), "denied".into(), 403.into()),
            ("alice".into(), "denied".into(), 403.into()),
            ("alice".into(), "masked".into(), 200.into()),
        ],
        "{records:#?}"
    );
    demo.stop().await.unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn the_demo_stack_stops_cleanly() {
    let demo = start("demo-stop").await;
    let approver = demo.approver_url();
    let health = reqwest::get(format!("{approver}/healthz")).await.unwrap();
    assert_eq!(health.status(), 200);
    let jwks: Value = reqwest::get(format!("http://{}/jwks", demo.jwks.addr))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks, demo.issuer.jwks());
    let admin = demo.gateway.envoy.admin;
    demo.stop().await.unwrap();
    for addr in [
        format!("{approver}/healthz"),
        format!("http://{admin}/ready"),
    ] {
        assert!(reqwest::get(&addr).await.is_err(), "{addr} still answers");
    }
}

/// The approval walk-through the demo prints: the export is held until the
/// reviewer approves it on the approver, then completes.
#[tokio::test(flavor = "multi_thread")]
async fn an_export_waits_for_the_reviewer() {
    let demo = start("demo-approval").await;
    let gw = &demo.gateway;
    let alice = demo.token("alice", &["support"]).unwrap();
    let export = gw
        .client()
        .unwrap()
        .post(gw.url("/customers/export"))
        .bearer_auth(&alice)
        .header("content-type", "application/json")
        .body(r#"{"format":"csv","notify":"ada.lovelace@example.com"}"#)
        .send();
    assert!(demo.approval_wired(), "demo.json has an approval section");
    let held = tokio::spawn(export);

    // The reviewer sees it, with a masked preview.
    let api = reqwest::Client::new();
    let approver = demo.approver_url();
    let approval = wait::until_async("the export pending at the approver", || {
        let (api, approver, token) = (&api, &approver, &demo.reviewer_token);
        async move {
            let list: Value = api
                .get(format!("{approver}/v1/approvals?status=pending"))
                .bearer_auth(token)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            Check::found(list["approvals"].get(0).cloned(), || list.to_string())
        }
    })
    .await
    .unwrap();
    assert_eq!(approval["identity"]["sub"], "alice");
    assert_eq!(approval["rule"], "export-needs-approval");
    assert_eq!(approval["path"], "/customers/export");
    let preview = approval["preview"].as_str().unwrap_or_default();
    assert!(!preview.contains("ada.lovelace@example.com"), "{preview}");
    assert!(!held.is_finished(), "the export did not wait");
    assert!(gw.upstream.requests().is_empty());

    let decided = api
        .post(format!(
            "{approver}/v1/approvals/{}/approve",
            approval["id"].as_str().unwrap()
        ))
        .bearer_auth(&demo.reviewer_token)
        .json(&serde_json::json!({"reason": "demo"}))
        .send()
        .await
        .unwrap();
    assert_eq!(decided.status(), 200);
    let resp = tokio::time::timeout(std::time::Duration::from_secs(30), held)
        .await
        .expect("the held export completes after the approval")
        .unwrap()
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(json(resp).await["path"], "/customers/export");
    let seen = gw.upstream.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].path, "/customers/export");
    let records = gw.wait_for_audit_records(1);
    assert_eq!(records[0]["decision"], "approval_approved", "{records:#?}");
    demo.stop().await.unwrap();
}
