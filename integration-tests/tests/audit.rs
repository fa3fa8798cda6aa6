//! The audit trail: exactly one schema-valid record per request, for every
//! outcome, with nothing sensitive in it.

use std::collections::{BTreeMap, HashSet};
use std::sync::Arc;

use integration_tests::gateway::{audit_log_path, wait_for_audit_log, Gateway, Options};
use integration_tests::paths;
use integration_tests::wait::{self, Check};

const POLICY: &str = r#"{"mode":"enforce","limits":{"max_body_bytes":1024}}"#;

fn schema() -> jsonschema::Validator {
    let text =
        std::fs::read_to_string(paths::workspace_root().join("docs/audit.schema.json")).unwrap();
    jsonschema::validator_for(&serde_json::from_str(&text).unwrap()).unwrap()
}

fn assert_valid(schema: &jsonschema::Validator, record: &serde_json::Value) {
    let errors: Vec<String> = schema
        .iter_errors(record)
        .map(|e| format!("{e} at {}", e.instance_path()))
        .collect();
    assert!(
        errors.is_empty(),
        "record {record} breaks the schema: {errors:?}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn allowed_and_oversize_requests_each_get_one_valid_record() {
    let gw = Gateway::for_test("audit-outcomes", POLICY).await.unwrap();
    let client = gw.client().unwrap();
    let ok = client
        .get(gw.url("/customers?limit=2"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
    let ok_id = ok.headers()["x-request-id"].to_str().unwrap().to_string();
    let big = client
        .post(gw.url("/upload"))
        .body(vec![b'x'; 2000])
        .send()
        .await
        .unwrap();
    assert_eq!(big.status(), 413);

    let records = gw.wait_for_audit_records(2);
    assert_eq!(records.len(), 2, "{records:?}");
    let schema = schema();
    records.iter().for_each(|r| assert_valid(&schema, r));
    let allowed = &records[0];
    assert_eq!(allowed["decision"], "allowed");
    assert_eq!(allowed["request_id"], ok_id.as_str());
    assert_eq!(allowed["method"], "GET");
    assert_eq!(allowed["path"], "/customers?limit=2");
    assert_eq!(allowed["status"], 200);
    assert!(allowed["bytes_out"].as_u64().unwrap() > 100);
    let oversize = &records[1];
    assert_eq!(oversize["decision"], "oversize");
    assert_eq!(oversize["reason"], "body_too_large");
    assert_eq!(oversize["status"], 413);

    // The same outcomes as labelled Prometheus counters.
    for decision in ["allowed", "oversize"] {
        let series = format!("transit_guard_requests{{decision=\"{decision}\"}}");
        gw.envoy.wait_for_metric(&series, 1).unwrap();
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_refusal_is_audited() {
    let gw = Gateway::start(
        Options::for_test("audit-plaintext", POLICY)
            .unwrap()
            .plaintext(),
    )
    .await
    .unwrap();
    let url = gw.plaintext_url("/x");
    assert_eq!(reqwest::get(&url).await.unwrap().status(), 426);
    let records = gw.wait_for_audit_records(1);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_valid(&schema(), &records[0]);
    assert_eq!(records[0]["decision"], "tls_required");
    assert_eq!(records[0]["status"], 426);
}

#[tokio::test(flavor = "multi_thread")]
async fn upstream_failure_is_audited_as_upstream_error() {
    let gw = Gateway::for_test("audit-upstream-down", POLICY)
        .await
        .unwrap();
    let Gateway {
        envoy,
        upstream,
        pki,
        ..
    } = gw;
    // Stop the upstream before any request: Envoy's connection to it fails.
    drop(upstream);
    let gateway = envoy.listener("https");
    let client = integration_tests::client::https_client(&pki.ca_pem, gateway).unwrap();
    let url = format!("https://localhost:{}/customers", gateway.port());
    assert_eq!(client.get(&url).send().await.unwrap().status(), 503);
    let log = audit_log_path(&pki.dir);
    let records = wait_for_audit_log(&log, "1 audit record", |r| !r.is_empty());
    assert_eq!(records.len(), 1, "{records:?}");
    assert_valid(&schema(), &records[0]);
    assert_eq!(records[0]["decision"], "upstream_error");
    assert_eq!(records[0]["status"], 503);
    assert!(
        records[0]["reason"].as_str().unwrap().contains("upstream"),
        "{}",
        records[0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn client_abort_is_audited() {
    let gw = Gateway::for_test("audit-abort", POLICY).await.unwrap();
    let client = gw.client().unwrap();
    // The agent gives up once its request is at the (slow) upstream.
    let slow = tokio::spawn(client.get(gw.url("/slow?ms=60000")).send());
    wait::until("the slow request at the upstream", || {
        let seen = gw.upstream.requests();
        Check::found(
            seen.iter()
                .any(|r| r.path.starts_with("/slow"))
                .then_some(()),
            || format!("{seen:?}"),
        )
    })
    .unwrap();
    slow.abort();
    let records = gw.wait_for_audit_records(1);
    assert_eq!(records.len(), 1, "{records:?}");
    assert_valid(&schema(), &records[0]);
    assert_eq!(records[0]["decision"], "client_abort");
}

#[tokio::test(flavor = "multi_thread")]
async fn planted_secrets_never_reach_the_audit_trail_or_envoy_log() {
    let gw = Gateway::for_test("audit-secrets", POLICY).await.unwrap();
    let secret_header = "sk-proj-PLANTEDheaderSECRET0123456789abcdef";
    let secret_query = "PLANTEDquerySECRET0123456789";
    let secret_body = "PLANTEDbodySECRET0123456789";
    let resp = gw
        .client()
        .unwrap()
        .post(gw.url(&format!("/v1/echo?access_token={secret_query}&page=2")))
        .header("authorization", format!("Bearer {secret_header}"))
        .header("x-api-key", secret_header)
        .body(format!("{{\"prompt\":\"my password is {secret_body}\"}}"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let records = gw.wait_for_audit_records(1);
    assert_eq!(records.len(), 1);
    assert_eq!(
        records[0]["path"],
        "/v1/echo?access_token=[REDACTED]&page=2"
    );
    let audit = std::fs::read_to_string(audit_log_path(&gw.pki.dir)).unwrap();
    let envoy_log = gw.envoy.log();
    for secret in [secret_header, secret_query, secret_body] {
        assert!(!audit.contains(secret), "{secret} in the audit log");
        assert!(!envoy_log.contains(secret), "{secret} in Envoy's log");
    }
}

/// 20,000 requests at concurrency 32, mixed outcomes: exactly one record
/// each, unique request ids, every record valid, decisions matching what the
/// agents saw.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_request_of_a_load_run_has_exactly_one_record() {
    const REQUESTS: usize = 20_000;
    const CONCURRENCY: usize = 32;
    let gw = Arc::new(Gateway::for_test("audit-load", POLICY).await.unwrap());
    let client = gw.client().unwrap();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..CONCURRENCY {
        let (gw, client, next) = (gw.clone(), client.clone(), next.clone());
        tasks.push(tokio::spawn(async move {
            let mut seen: Vec<(String, u16)> = Vec::new();
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= REQUESTS {
                    return seen;
                }
                let req = match i % 4 {
                    0 => client.get(gw.url("/customers")),
                    1 | 2 => client.post(gw.url("/v1/echo")).body(format!("n={i}")),
                    _ => client.post(gw.url("/upload")).body(vec![b'z'; 1500]),
                };
                let resp = req.send().await.unwrap();
                let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
                seen.push((id, resp.status().as_u16()));
                let _ = resp.bytes().await;
            }
        }));
    }
    let mut sent: BTreeMap<String, u16> = BTreeMap::new();
    for t in tasks {
        for (id, status) in t.await.unwrap() {
            assert!(sent.insert(id, status).is_none(), "duplicate request id");
        }
    }
    assert_eq!(sent.len(), REQUESTS);

    let records = wait_for_audit_log(
        &audit_log_path(&gw.pki.dir),
        &format!("{REQUESTS} audit records"),
        |r| r.len() >= REQUESTS,
    );
    assert_eq!(records.len(), REQUESTS, "records != requests");
    let schema = schema();
    let mut ids = HashSet::new();
    for r in &records {
        assert_valid(&schema, r);
        let id = r["request_id"].as_str().unwrap();
        assert!(ids.insert(id.to_string()), "two records for {id}");
        let status = sent
            .get(id)
            .unwrap_or_else(|| panic!("record for unknown request {id}"));
        let expected = if *status == 413 {
            "oversize"
        } else {
            "allowed"
        };
        assert_eq!(r["decision"], expected, "{r}");
        assert_eq!(r["status"], *status);
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_recorded_session_keeps_masked_capped_bodies_in_the_record() {
    let policy = r#"{
      "audit": { "record_max_bytes": 200 },
      "default_action": "allow",
      "rules": [ { "name": "record-echo", "match": { "path": { "prefix": "/v1/" } }, "action": "allow", "record": true } ]
    }"#;
    let gw = Gateway::for_test("audit-recording", policy).await.unwrap();
    let client = gw.client().unwrap();
    let body = r#"{"prompt":"email ada.lovelace@example.com about card 4111 1111 1111 1111"}"#;
    let resp = client
        .post(gw.url("/v1/echo"))
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    // The upstream got the request unchanged: recording masks only the copy.
    assert_eq!(gw.upstream.requests()[0].body, body.as_bytes());
    // A second one, longer than record_max_bytes.
    let long = format!(r#"{{"prompt":"{}"}}"#, "x".repeat(500));
    client
        .post(gw.url("/v1/echo"))
        .header("content-type", "application/json")
        .body(long)
        .send()
        .await
        .unwrap();
    // Paths outside the rule are not recorded.
    client.get(gw.url("/customers")).send().await.unwrap();

    let records = gw.wait_for_audit_records(3);
    let schema = schema();
    records.iter().for_each(|r| assert_valid(&schema, r));
    let rec = &records[0]["recording"];
    let request = rec["request"].as_str().unwrap();
    assert!(
        request.contains("[REDACTED:email]") && request.contains("[REDACTED:credit_card]"),
        "{rec}"
    );
    assert!(!request.contains("ada.lovelace@example.com"), "{rec}");
    assert!(
        rec["response"]
            .as_str()
            .unwrap()
            .contains("\"upstream\":\"echo\""),
        "{rec}"
    );
    assert_eq!(rec["truncated"], false);
    assert_eq!(records[1]["recording"]["truncated"], true);
    assert_eq!(
        records[1]["recording"]["request"].as_str().unwrap().len(),
        200
    );
    assert_eq!(records[2]["recording"], serde_json::Value::Null);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_http_collector_receives_every_record_in_batches() {
    let collector = integration_tests::collector::AuditCollector::start()
        .await
        .unwrap();
    let policy =
        r#"{"audit":{"collector":{"cluster":"audit_collector","batch_size":10,"flush_ms":200}}}"#;
    let opts = Options::for_test("audit-collector", policy)
        .unwrap()
        .with_collector(collector.addr);
    let gw = Gateway::start(opts).await.unwrap();
    let client = gw.client().unwrap();
    let mut ids = Vec::new();
    for _ in 0..25 {
        let resp = client.get(gw.url("/customers")).send().await.unwrap();
        ids.push(resp.headers()["x-request-id"].to_str().unwrap().to_string());
    }
    let lines = wait::until("25 records at the collector", || {
        let lines = collector.lines();
        if lines.len() >= 25 {
            Check::Done(lines)
        } else {
            Check::NotYet(format!("{} records: {lines:?}", lines.len()))
        }
    })
    .unwrap();
    assert_eq!(lines.len(), 25, "records lost on the way to the collector");
    assert!(
        collector.batches() >= 3,
        "not batched: {} batches",
        collector.batches()
    );
    let schema = schema();
    for (line, id) in lines.iter().zip(&ids) {
        let v: serde_json::Value = serde_json::from_str(line).unwrap();
        assert_valid(&schema, &v);
        assert_eq!(v["request_id"], id.as_str(), "out of order");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_failing_collector_never_holds_requests_and_drops_are_counted() {
    let collector = integration_tests::collector::AuditCollector::start()
        .await
        .unwrap();
    collector.refuse();
    let policy =
        r#"{"audit":{"collector":{"cluster":"audit_collector","batch_size":5,"flush_ms":100}}}"#;
    let opts = Options::for_test("audit-collector-down", policy)
        .unwrap()
        .with_collector(collector.addr);
    let gw = Gateway::start(opts).await.unwrap();
    let client = gw.client().unwrap();
    for _ in 0..10 {
        assert_eq!(
            client
                .get(gw.url("/customers"))
                .send()
                .await
                .unwrap()
                .status(),
            200
        );
    }
    gw.envoy
        .wait_for_metric(r#"transit_guard_audit{event="dropped"}"#, 10)
        .unwrap();
    // The access log still has every record.
    assert_eq!(gw.wait_for_audit_records(10).len(), 10);
}

#[tokio::test(flavor = "multi_thread")]
async fn a_masked_response_is_sized_as_the_agent_received_it() {
    // The filter knows the length of the body it hands on; Envoy's own
    // `response.size` is no longer read for it: they must agree.
    let policy = r#"{
      "masking": { "profiles": { "pii": { "detectors": ["email", "phone"] } } },
      "default_action": "allow",
      "rules": [ { "name": "pii", "match": { "path": { "prefix": "/customers" } },
                   "action": "mask", "mask": { "response": ["pii"] } } ]
    }"#;
    let gw = Gateway::for_test("audit-masked-size", policy)
        .await
        .unwrap();
    let client = gw.client().unwrap();
    let resp = client.get(gw.url("/customers")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body = resp.bytes().await.unwrap();
    let text = String::from_utf8_lossy(&body);
    assert!(
        text.contains("[REDACTED:email]") && !text.contains("ada.lovelace@example.com"),
        "{text}"
    );
    assert_ne!(
        body.len(),
        integration_tests::upstream::DEMO_CUSTOMERS.len()
    );
    let records = gw.wait_for_audit_records(1);
    assert_valid(&schema(), &records[0]);
    assert_eq!(records[0]["bytes_out"], body.len(), "{}", records[0]);
}
