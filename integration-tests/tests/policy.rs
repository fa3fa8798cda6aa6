//! Rules and masking through the real Envoy: what is denied never reaches the
//! upstream, what is masked never reaches the agent (or the LLM provider).

use integration_tests::gateway::Gateway;
use integration_tests::upstream::DEMO_CUSTOMERS;

/// A policy in the shape of `examples/policies/`: deny rules on method, body
/// and MCP tool; masking of personal data in responses and secrets in requests.
const POLICY: &str = r#"{
  "mode": "enforce",
  "limits": { "max_body_bytes": 65536 },
  "masking": {
    "hash_key": "test-hash-key-0123456789",
    "profiles": {
      "pii": { "detectors": ["email", "phone", "credit_card", "ssn"] },
      "secrets": { "detectors": ["openai_key", "aws_access_key", "github_token"] }
    }
  },
  "default_action": "allow",
  "rules": [
    { "name": "no-deletes", "match": { "methods": ["DELETE"] }, "action": "deny" },
    { "name": "no-drop-table", "match": { "body": { "regex": "(?i)\\bdrop\\s+table\\b" } }, "action": "deny",
      "deny": { "message": "destructive SQL is not allowed" } },
    { "name": "no-shell-tool", "match": { "mcp": { "tools": ["run_shell"] } }, "action": "deny" },
    { "name": "pii-out", "match": { "path": { "prefix": "/customers" } }, "action": "mask",
      "mask": { "response": ["pii"] } },
    { "name": "secrets-to-llm", "match": { "path": { "prefix": "/v1/" } }, "action": "mask",
      "mask": { "request": ["secrets"] } }
  ]
}"#;

async fn gateway(name: &str) -> Gateway {
    Gateway::for_test(name, POLICY).await.unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_is_denied_before_the_upstream_sees_it() {
    let gw = gateway("policy-delete").await;
    let resp = gw
        .client()
        .unwrap()
        .delete(gw.url("/customers/c-1001"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "policy_denied");
    assert_eq!(body["rule"], "no-deletes");
    assert!(gw.upstream.requests().is_empty());
    let records = gw.wait_for_audit_records(1);
    assert_eq!(records[0]["decision"], "denied");
    assert_eq!(records[0]["rules"], serde_json::json!(["no-deletes"]));
    let prom = gw.envoy.admin_get("/stats/prometheus").unwrap();
    assert!(
        prom.contains("transit_guard_denied{rule=\"no-deletes\"} 1"),
        "{prom}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn drop_table_in_a_body_is_denied_and_no_byte_reaches_the_upstream() {
    let gw = gateway("policy-drop-table").await;
    let resp = gw
        .client()
        .unwrap()
        .post(gw.url("/db/query"))
        .header("content-type", "application/json")
        .body(r#"{"sql": "select 1; DROP   TABLE customers; --"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["rule"], "no-drop-table");
    assert_eq!(body["reason"], "destructive SQL is not allowed");
    assert!(
        gw.upstream.requests().is_empty(),
        "the upstream saw part of a denied request"
    );

    // The same endpoint with a harmless body passes, body intact.
    let ok = gw
        .client()
        .unwrap()
        .post(gw.url("/db/query"))
        .header("content-type", "application/json")
        .body(r#"{"sql": "select name from customers"}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let seen = gw.upstream.requests();
    assert_eq!(seen.len(), 1);
    assert_eq!(seen[0].body, br#"{"sql": "select name from customers"}"#);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_forbidden_mcp_tool_call_is_denied_and_others_pass() {
    let gw = gateway("policy-mcp").await;
    let call = |tool: &str| {
        serde_json::json!({"jsonrpc": "2.0", "id": 7, "method": "tools/call",
                           "params": {"name": tool, "arguments": {"cmd": "rm -rf /"}}})
        .to_string()
    };
    let client = gw.client().unwrap();
    let denied = client
        .post(gw.url("/mcp"))
        .header("content-type", "application/json")
        .body(call("run_shell"))
        .send()
        .await
        .unwrap();
    assert_eq!(denied.status(), 403);
    assert!(gw.upstream.requests().is_empty());
    let allowed = client
        .post(gw.url("/mcp"))
        .header("content-type", "application/json")
        .body(call("search_docs"))
        .send()
        .await
        .unwrap();
    assert_eq!(allowed.status(), 200);
    assert_eq!(gw.upstream.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn customer_records_come_back_masked() {
    let gw = gateway("policy-mask-response").await;
    let resp = gw
        .client()
        .unwrap()
        .get(gw.url("/customers"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    let body: serde_json::Value = serde_json::from_str(&text).expect("masked body is still JSON");
    let first = &body["customers"][0];
    assert_eq!(first["name"], "Ada Lovelace", "non-sensitive data is kept");
    assert_eq!(first["id"], "c-1001");
    for raw in [
        "ada.lovelace@example.com",
        "4111 1111 1111 1111",
        "123-45-6789",
        "+1 415 555 0132",
        "5555-5555-5555-4444",
        "378282246310005",
        "grace@navy.example.org",
        "alan@bletchley.example",
    ] {
        assert!(DEMO_CUSTOMERS.contains(raw), "test data changed: {raw}");
        assert!(!text.contains(raw), "{raw} reached the agent: {text}");
    }
    // The upstream was asked for an uncompressed body it can be scanned in.
    assert_eq!(
        gw.upstream.requests()[0].header("accept-encoding"),
        Some("identity")
    );
    let records = gw.wait_for_audit_records(1);
    assert_eq!(records[0]["decision"], "masked");
    assert_eq!(records[0]["rules"], serde_json::json!(["pii-out"]));
    let masked = &records[0]["masked"];
    assert!(masked["email"].as_u64().unwrap() >= 4, "{masked}");
    assert_eq!(masked["credit_card"], 3, "{masked}");
    assert_eq!(masked["ssn"], 3, "{masked}");
    let audit =
        std::fs::read_to_string(integration_tests::gateway::audit_log_path(&gw.pki.dir)).unwrap();
    assert!(!audit.contains("ada.lovelace@example.com"));
}

/// The full policy's two response profiles (`customers-api.json`'s `pii`
/// and `cards`), which the loader compiles into one pass.
const TWO_PROFILES: &str = r#"{
  "masking": {
    "hash_key": "test-hash-key-0123456789",
    "profiles": {
      "pii": { "detectors": ["email", "phone", "ssn", "iban", "ipv4", "ipv6"],
               "json_fields": ["ssn", "date_of_birth", "dob"],
               "strategies": { "default": "redact", "email": "hash" } },
      "cards": { "detectors": ["credit_card"], "strategies": { "credit_card": { "partial": 4 } } }
    }
  },
  "default_action": "allow",
  "rules": [
    { "name": "pii-out", "match": { "path": { "prefix": "/customers" } }, "action": "mask",
      "mask": { "response": ["pii", "cards"] } }
  ]
}"#;

/// What the agent gets through Envoy (the wasm module, one pass) is byte
/// for byte what the profiles give applied one after the other natively.
#[tokio::test(flavor = "multi_thread")]
async fn two_profiles_mask_the_records_in_one_pass_as_in_order() {
    use transit_guard::config::Policy;
    use transit_guard::mask::apply::apply_in_order;
    use transit_guard::mask::Tokens;

    let gw = Gateway::for_test("policy-mask-two-profiles", TWO_PROFILES)
        .await
        .unwrap();
    let resp = gw
        .client()
        .unwrap()
        .get(gw.url("/customers"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let got = resp.text().await.unwrap();
    let policy = Policy::from_json(TWO_PROFILES.as_bytes()).unwrap();
    let want = apply_in_order(
        &policy.masking,
        &["pii".to_string(), "cards".to_string()],
        Some("application/json"),
        DEMO_CUSTOMERS.as_bytes(),
        None,
        None,
        &mut Tokens::default(),
    );
    let want_body = String::from_utf8(want.body.unwrap()).unwrap();
    assert_eq!(got, want_body);
    let body: serde_json::Value = serde_json::from_str(&got).unwrap();
    assert_eq!(body["customers"][0]["card"], "***************1111");
    assert_eq!(body["customers"][0]["ssn"], "[REDACTED:ssn]");
    let records = gw.wait_for_audit_records(1);
    let masked = &records[0]["masked"];
    for (detector, n) in &want.counts {
        assert_eq!(masked[detector], *n, "{detector}: {masked}");
    }
    assert_eq!(masked["credit_card"], 3, "{masked}");
}

#[tokio::test(flavor = "multi_thread")]
async fn a_prompt_carrying_an_api_key_reaches_the_upstream_masked() {
    let gw = gateway("policy-mask-request").await;
    let key = "sk-proj-Ab3dEf6hIj9kLm2nOp5qRs8tUv1wXy4z";
    let prompt = serde_json::json!({
        "model": "gpt-4o-mini",
        "messages": [{"role": "user", "content": format!("debug this: OPENAI_API_KEY={key} fails")}]
    })
    .to_string();
    let resp = gw
        .client()
        .unwrap()
        .post(gw.url("/v1/chat/completions"))
        .header("content-type", "application/json")
        .body(prompt.clone())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = gw.upstream.requests();
    assert_eq!(seen.len(), 1);
    let body = String::from_utf8(seen[0].body.clone()).unwrap();
    assert!(!body.contains(key), "the key reached the upstream: {body}");
    let v: serde_json::Value = serde_json::from_str(&body).expect("still JSON");
    assert_eq!(v["model"], "gpt-4o-mini");
    assert_eq!(v["messages"][0]["role"], "user");
    // content-length was fixed to the new body.
    assert_eq!(
        seen[0].header("content-length"),
        Some(body.len().to_string().as_str())
    );
    assert_ne!(body.len(), prompt.len());
}

#[tokio::test(flavor = "multi_thread")]
async fn a_gzip_response_is_never_passed_on_unscanned() {
    let gw = gateway("policy-gzip").await;
    let resp = gw
        .client()
        .unwrap()
        .get(gw.url("/customers/gz"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "response_not_scannable");
}

#[tokio::test(flavor = "multi_thread")]
async fn monitor_mode_lets_a_denied_request_through_and_records_the_would_be_decision() {
    let policy = POLICY.replacen(r#""mode": "enforce""#, r#""mode": "monitor""#, 1);
    let gw = Gateway::for_test("policy-monitor", &policy).await.unwrap();
    let resp = gw
        .client()
        .unwrap()
        .delete(gw.url("/orders/1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(gw.upstream.requests().len(), 1);
    let records = gw.wait_for_audit_records(1);
    assert_eq!(records[0]["decision"], "allowed");
    assert_eq!(records[0]["would"], serde_json::json!(["no-deletes: deny"]));
}
