//! The walking skeleton, end to end: the real wasm module in the real Envoy
//! 1.40, TLS on both legs, policy loading, plaintext refused.

use integration_tests::envoy::{Envoy, EnvoyConfig};
use integration_tests::gateway::{template_vars, Gateway, Options};
use integration_tests::paths;

const POLICY: &str = r#"{"mode":"enforce","require_tls":true,"limits":{"max_body_bytes":1024}}"#;

#[tokio::test(flavor = "multi_thread")]
async fn request_crosses_both_tls_legs_and_returns() {
    let gw = Gateway::for_test("both-legs", POLICY).await.unwrap();
    let resp = gw
        .client()
        .unwrap()
        .post(gw.url("/v1/echo?x=1"))
        .header("x-agent", "test")
        .body("hello upstream")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["upstream"], "echo");
    assert_eq!(body["path"], "/v1/echo");

    let seen = gw.upstream.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].method, "POST");
    assert_eq!(seen[0].path, "/v1/echo?x=1");
    assert_eq!(seen[0].body, b"hello upstream");
    assert_eq!(seen[0].header("x-agent"), Some("test"));
    // Envoy verified the upstream's name, and sent it as the authority.
    assert_eq!(seen[0].header("host"), Some("upstream.transit-guard.test"));
    // The filter ran in this Envoy (and said so at load).
    gw.envoy
        .wait_for_log("transit-guard: policy loaded")
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn demo_customers_come_back_through_the_gateway() {
    let gw = Gateway::for_test("customers", POLICY).await.unwrap();
    let resp = gw
        .client()
        .unwrap()
        .get(gw.url("/customers"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["customers"].as_array().map(Vec::len), Some(3));
}

#[tokio::test(flavor = "multi_thread")]
async fn declared_oversize_body_gets_413_and_never_reaches_upstream() {
    let gw = Gateway::for_test("oversize", POLICY).await.unwrap();
    let resp = gw
        .client()
        .unwrap()
        .post(gw.url("/upload"))
        .body(vec![b'a'; 1025])
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "body_too_large");
    assert!(!body["request_id"].as_str().unwrap_or_default().is_empty());
    assert!(gw.upstream.requests().is_empty());
}

#[tokio::test(flavor = "multi_thread")]
async fn streamed_oversize_body_is_cut_off_with_413() {
    let gw = Gateway::for_test("oversize-stream", POLICY).await.unwrap();
    // No content-length: the filter counts the bytes as they flow.
    let chunks: Vec<Result<Vec<u8>, std::io::Error>> =
        (0..8).map(|_| Ok(vec![b'b'; 512])).collect();
    let body = reqwest::Body::wrap_stream(futures_stream(chunks));
    let resp = gw
        .client()
        .unwrap()
        .post(gw.url("/upload"))
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    // The upstream may have seen the start of the stream, never a whole request.
    assert!(gw.upstream.requests().iter().all(|r| r.body.len() <= 1024));
}

fn futures_stream(
    chunks: Vec<Result<Vec<u8>, std::io::Error>>,
) -> impl futures_core::Stream<Item = Result<Vec<u8>, std::io::Error>> {
    tokio_stream::iter(chunks)
}

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_request_is_refused_with_426() {
    let gw = Gateway::start(Options::for_test("plaintext", POLICY).unwrap().plaintext())
        .await
        .unwrap();
    let upstream = &gw.upstream;
    let url = gw.plaintext_url("/v1/echo");
    let resp = reqwest::Client::new()
        .post(&url)
        .body("secret")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 426);
    assert_eq!(resp.headers()["content-type"], "application/json");
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "tls_required");
    assert!(!body["request_id"].as_str().unwrap_or_default().is_empty());
    assert!(
        upstream.requests().is_empty(),
        "plaintext request reached the upstream"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn monitor_mode_lets_plaintext_through_but_logs_it() {
    let gw = Gateway::start(
        Options::for_test("plaintext-monitor", r#"{"mode":"monitor"}"#)
            .unwrap()
            .plaintext(),
    )
    .await
    .unwrap();
    let (envoy, upstream) = (&gw.envoy, &gw.upstream);
    let url = gw.plaintext_url("/v1/echo");
    let resp = reqwest::Client::new().get(&url).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(upstream.requests().len(), 1);
    let line = envoy.wait_for_log("monitor mode, would refuse").unwrap();
    assert!(line.contains("tls_required"), "{line}");
}

/// Starts Envoy with a bad policy and returns its log: Envoy must refuse to
/// start, and the log must name the field.
async fn refused_policy_log(name: &str, policy: &str) -> String {
    let dir = paths::scratch_dir(name).unwrap();
    let pki = integration_tests::certs::Pki::generate(&dir.join("certs")).unwrap();
    let upstream = std::net::SocketAddr::from(([127, 0, 0, 1], 9));
    let config = EnvoyConfig {
        template: paths::workspace_root().join("envoy/gateway.yaml"),
        vars: template_vars(&pki.dir, policy, 0, 0, upstream).unwrap(),
        dir,
    };
    tokio::task::block_in_place(|| Envoy::expect_refusal(&config)).unwrap()
}

#[tokio::test(flavor = "multi_thread")]
async fn bad_policy_type_makes_envoy_refuse_to_start_naming_the_field() {
    let log = refused_policy_log("bad-type", r#"{"limits":{"max_body_bytes":"lots"}}"#).await;
    let line = log
        .lines()
        .find(|l| l.contains("transit-guard: invalid policy"))
        .unwrap_or_else(|| panic!("no policy error in log:\n{log}"));
    assert!(line.contains("at limits.max_body_bytes"), "{line}");
    assert!(line.contains("expected u64"), "{line}");
}

#[tokio::test(flavor = "multi_thread")]
async fn unknown_policy_field_makes_envoy_refuse_to_start() {
    let log = refused_policy_log("bad-field", r#"{"mode":"enforce","requre_tls":true}"#).await;
    assert!(
        log.lines()
            .any(|l| l.contains("invalid policy at requre_tls: unknown field `requre_tls`")),
        "{log}"
    );
}

#[test]
fn every_shipped_envoy_config_validates() {
    let root = paths::workspace_root();
    let dir = paths::scratch_dir("validate").unwrap();
    let pki = integration_tests::certs::Pki::generate(&dir.join("certs")).unwrap();
    let mut vars = template_vars(
        &pki.dir,
        r#"{"mode":"enforce"}"#,
        10443,
        9901,
        std::net::SocketAddr::from(([127, 0, 0, 1], 8443)),
    )
    .unwrap();
    // The bench upstream serves bodies from files Envoy reads at load.
    let bodies = dir.join("bodies");
    std::fs::create_dir_all(&bodies).unwrap();
    for name in ["1k", "3k", "64k", "1m"] {
        std::fs::write(bodies.join(format!("{name}.json")), "{}").unwrap();
    }
    vars.insert("BODY_DIR", bodies.display().to_string());
    let mut configs = Vec::new();
    for folder in ["envoy", "examples", "integration-tests/envoy"] {
        collect_envoy_configs(&root.join(folder), &mut configs);
    }
    assert!(configs.len() >= 4, "found {configs:?}");
    for template in configs {
        let config = EnvoyConfig {
            template: template.clone(),
            vars: vars.clone(),
            dir: dir.clone(),
        };
        let rendered = config.render().unwrap();
        let out = std::process::Command::new(paths::envoy_bin().unwrap())
            .args([
                "--mode",
                "validate",
                "--use-dynamic-base-id",
                "-l",
                "error",
                "-c",
            ])
            .arg(&rendered)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{} does not validate:\n{}{}",
            template.display(),
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

/// Every YAML file that is a whole Envoy bootstrap (has `static_resources`).
fn collect_envoy_configs(dir: &std::path::Path, out: &mut Vec<std::path::PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let path = entry.path();
        if path.is_dir() {
            collect_envoy_configs(&path, out);
        } else if path.extension().is_some_and(|e| e == "yaml" || e == "yml")
            && std::fs::read_to_string(&path).is_ok_and(|t| t.contains("static_resources:"))
        {
            out.push(path);
        }
    }
}

/// A mask on `/customers` responses and a body rule on `/notes` writes:
/// neither applies to `/relay`.
const SCOPED: &str = r#"{
    "masking": {"profiles": {"pii": {"detectors": ["email"]}}},
    "default_action": "allow",
    "rules": [
        {"name": "pii", "match": {"methods": ["GET"], "path": {"prefix": "/customers"}},
         "action": "mask", "mask": {"response": ["pii"]}},
        {"name": "no-drop", "match": {"methods": ["POST"], "path": {"prefix": "/notes"},
         "body": {"keywords": ["drop table"]}}, "action": "deny"}
    ]
}"#;

/// Rules that need only the headers never wait for the body, and a response
/// no mask applies to is never buffered: the upstream writes back each piece
/// of the request as it arrives, and the first piece makes the round trip
/// while the agent still holds the rest of its body. Were the filter holding
/// either side whole, that piece would never come back and the wait would
/// reach its deadline.
#[tokio::test(flavor = "multi_thread")]
async fn what_no_rule_or_mask_reads_streams_through_both_ways() {
    use integration_tests::wait;
    let gw = Gateway::for_test("passthrough", SCOPED).await.unwrap();
    let (tx, rx) = tokio::sync::mpsc::channel::<Result<Vec<u8>, std::io::Error>>(4);
    tx.send(Ok(br#"{"first":"ada@example.com","#.to_vec()))
        .await
        .unwrap();
    let body = reqwest::Body::wrap_stream(tokio_stream::wrappers::ReceiverStream::new(rx));
    let client = gw.client().unwrap();
    let request = client
        .post(gw.url("/relay"))
        .header("content-type", "application/json")
        .body(body)
        .send();
    // Each wait has the harness's deadline: a held side never answers.
    let mut resp = tokio::time::timeout(wait::PATIENCE, request)
        .await
        .expect("the response headers came while the request was still open")
        .unwrap();
    assert_eq!(resp.status(), 200);
    let piece = br#"{"first":"ada@example.com","#;
    let mut first = Vec::new();
    while first.len() < piece.len() {
        let chunk = tokio::time::timeout(wait::PATIENCE, resp.chunk())
            .await
            .expect("the first piece came back while the request was still open")
            .unwrap()
            .expect("the response went on");
        first.extend_from_slice(&chunk);
    }
    assert_eq!(first, piece, "as sent: no mask applies");
    // The upstream saw the request before its body ended.
    assert_eq!(gw.upstream.requests().len(), 1);
    tx.send(Ok(br#""last":1}"#.to_vec())).await.unwrap();
    drop(tx);
    let mut rest = Vec::new();
    while let Some(chunk) = resp.chunk().await.unwrap() {
        rest.extend_from_slice(&chunk);
    }
    assert_eq!(rest, br#""last":1}"#);
    let records = gw.wait_for_audit_records(1);
    assert_eq!(records[0]["decision"], "allowed", "{records:?}");
    assert_eq!(records[0]["path"], "/relay");
}
