//! Issue 14, "no walk-arounds", through the real Envoy and the real module:
//! each body an upstream's parser would read differently from the filter, each
//! header game, is denied, refused with a reason, or masked; and requests
//! Envoy refuses before the filter runs still leave an audit record.

use std::sync::Arc;

use integration_tests::gateway::Gateway;
use integration_tests::paths;
use rustls::pki_types::pem::PemObject;
use serde_json::{json, Value};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// The issue's policy for the body cases: a deny rule on `drop table` (as a
/// keyword and as a regex) and an email mask on every request.
const POLICY: &str = r#"{
  "mode": "enforce",
  "masking": { "profiles": { "pii": { "detectors": ["email"] } } },
  "default_action": "allow",
  "rules": [
    { "name": "no-drop-kw", "match": { "body": { "keywords": ["drop table"] } }, "action": "deny" },
    { "name": "no-drop-re", "match": { "body": { "regex": "(?i)drop\\s+table" } }, "action": "deny" },
    { "name": "pii", "match": {}, "action": "mask", "mask": { "request": ["pii"] } }
  ]
}"#;

const EMAIL: &str = "alice@example.com";

fn utf16le(s: &str, bom: bool) -> Vec<u8> {
    let mut out = if bom { vec![0xFF, 0xFE] } else { Vec::new() };
    out.extend(s.encode_utf16().flat_map(u16::to_le_bytes));
    out
}

fn nest(n: usize, inner: &str) -> String {
    format!("{}{inner}{}", "[".repeat(n), "]".repeat(n))
}

/// Every finding of the issue's first two items and the method overrides:
/// (name, content type, extra header, path, body, status, reason code).
type Case = (
    &'static str,
    &'static str,
    Option<(&'static str, &'static str)>,
    &'static str,
    Vec<u8>,
    u16,
    &'static str,
);

fn corpus() -> Vec<Case> {
    let kw = r#""drop\u0020table""#;
    let json = "application/json";
    vec![
        ("129 levels", json, None, "/q", nest(129, kw).into_bytes(), 403, "policy_denied"),
        ("200 levels", json, None, "/q", nest(200, kw).into_bytes(), 403, "policy_denied"),
        ("past the depth limit", json, None, "/q", nest(1001, kw).into_bytes(), 400, "body_too_deep"),
        ("100k levels", json, None, "/q", nest(100_000, kw).into_bytes(), 400, "body_too_deep"),
        ("1e400", json, None, "/q", format!(r#"{{"n":1e400,"q":{kw}}}"#).into_bytes(), 403, "policy_denied"),
        ("lone surrogate", json, None, "/q", format!(r#"{{"s":"\ud800","q":{kw}}}"#).into_bytes(), 403, "policy_denied"),
        ("NaN", json, None, "/q", format!(r#"{{"n":NaN,"q":{kw}}}"#).into_bytes(), 403, "policy_denied"),
        ("undeclared JSON", "text/plain", None, "/q", format!(r#"{{"q":{kw}}}"#).into_bytes(), 403, "policy_denied"),
        ("invalid UTF-8", json, None, "/q", b"{\"q\":\"drop\xff table\"}".to_vec(), 400, "body_invalid_utf8"),
        ("declared JSON that is not", json, None, "/q", br#"{"q":"drop\u0020table",}"#.to_vec(), 400, "body_invalid_json"),
        ("UTF-16LE with BOM", json, None, "/q", utf16le(r#"{"q":"drop table"}"#, true), 400, "body_unsupported_charset"),
        ("UTF-16LE without BOM", json, None, "/q", utf16le(r#"{"q":"drop table"}"#, false), 400, "body_unsupported_charset"),
        ("UTF-16 charset", "application/json; charset=utf-16", None, "/q", br#"{"q":1}"#.to_vec(), 400, "body_unsupported_charset"),
        ("form, + for space", "application/x-www-form-urlencoded", None, "/q", b"sql=DROP+TABLE+customers".to_vec(), 403, "policy_denied"),
        ("form, %20", "application/x-www-form-urlencoded", None, "/q", b"sql=drop%20%74able".to_vec(), 403, "policy_denied"),
        ("JSON sent as a form", "application/x-www-form-urlencoded", None, "/q", format!(r#"{{"q":{kw}}}"#).into_bytes(), 403, "policy_denied"),
        ("multipart part", "multipart/form-data; boundary=b", None, "/q",
            b"--b\r\nContent-Disposition: form-data; name=\"q\"\r\nContent-Type: application/json\r\n\r\n{\"q\":\"drop\\u0020table\"}\r\n--b--\r\n".to_vec(), 403, "policy_denied"),
        ("multipart base64 part", "multipart/form-data; boundary=b", None, "/q",
            b"--b\r\nContent-Disposition: form-data; name=\"q\"\r\nContent-Transfer-Encoding: base64\r\n\r\nZHJvcCB0YWJsZQ==\r\n--b--\r\n".to_vec(), 400, "body_multipart_unreadable"),
        ("X-HTTP-Method-Override", json, Some(("x-http-method-override", "DELETE")), "/q", b"{}".to_vec(), 400, "method_override"),
        ("X-HTTP-Method", json, Some(("X-HTTP-Method", "DELETE")), "/q", b"{}".to_vec(), 400, "method_override"),
        ("_method in the query", json, None, "/q?_method=DELETE", b"{}".to_vec(), 400, "method_override"),
        ("_method in a form", "application/x-www-form-urlencoded", None, "/q", b"a=1&_method=DELETE".to_vec(), 400, "method_override"),
        ("_method in JSON", json, None, "/q", br#"{"_method":"DELETE"}"#.to_vec(), 400, "method_override"),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn what_the_upstream_would_read_is_denied_or_refused_with_a_reason() {
    let gw = Gateway::for_test("walkaround-corpus", POLICY)
        .await
        .unwrap();
    let client = gw.client().unwrap();
    let cases = corpus();
    // Every case runs; the failures are reported together.
    let mut wrong = Vec::new();
    for (name, ct, header, path, body, status, code) in &cases {
        let mut req = client
            .post(gw.url(path))
            .header("content-type", *ct)
            .body(body.clone());
        if let Some((k, v)) = header {
            req = req.header(*k, *v);
        }
        let resp = req.send().await.unwrap();
        let got = resp.status().as_u16();
        let reply: Value = resp.json().await.unwrap_or(Value::Null);
        if got != *status || reply["error"] != *code {
            wrong.push(format!("{name}: {got} {reply}, want {status} {code}"));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} of {} cases:\n{}",
        wrong.len(),
        cases.len(),
        wrong.join("\n")
    );
    assert!(
        gw.upstream.requests().is_empty(),
        "a walk-around reached the upstream: {:?}",
        gw.upstream
            .requests()
            .iter()
            .map(|r| String::from_utf8_lossy(&r.body).into_owned())
            .collect::<Vec<_>>()
    );
    // Each refusal is audited with its reason code.
    let records = gw.wait_for_audit_records(cases.len());
    assert_eq!(records.len(), cases.len(), "{records:?}");
    for ((name, _, _, _, _, status, code), r) in cases.iter().zip(&records) {
        assert_eq!(r["status"], *status, "{name}: {r}");
        // An unreadable body is an error; a rule or a method override, a denial.
        let decision = if code.starts_with("body_") {
            "error"
        } else {
            "denied"
        };
        assert_eq!(r["decision"], decision, "{name}: {r}");
        if *code != "policy_denied" {
            assert_eq!(r["reason"], *code, "{name}: {r}");
        }
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn every_string_the_model_reads_is_masked_and_structure_is_kept() {
    let gw = Gateway::for_test("walkaround-openai", POLICY)
        .await
        .unwrap();
    let chat = json!({
        "model": "gpt-4o",
        "messages": [
            {"role": "system", "name": format!("ops {EMAIL}"), "content": "be brief"},
            {"role": "assistant", "refusal": format!("no, {EMAIL}"), "content": null,
             "tool_calls": [{"id": "call_1", "type": "function",
                             "function": {"name": "lookup", "arguments": "{}"}}]},
            {"role": "tool", "tool_call_id": "call_1", "content": "ok"}
        ],
        "tools": [{"type": "function", "function": {"name": "lookup",
            "description": format!("mail {EMAIL}"),
            "parameters": {"type": "object", "properties": {"to": {"type": "string", "description": EMAIL}}}}}],
        "stop": [EMAIL],
        "prediction": {"type": "content", "content": EMAIL},
        "response_format": {"type": "json_schema", "json_schema": {"name": "out",
            "schema": {"type": "object", "description": EMAIL}}}
    });
    let responses = json!({
        "model": "gpt-4.1",
        "input": "hi",
        "tools": [{"type": "function", "name": "lookup", "description": EMAIL,
                   "parameters": {"type": "object"}}],
        "text": {"format": {"type": "json_schema", "name": "out", "description": EMAIL,
                            "schema": {"type": "object"}}}
    });
    let client = gw.client().unwrap();
    for (path, body) in [
        ("/v1/chat/completions", &chat),
        ("/v1/responses", &responses),
    ] {
        let resp = client
            .post(gw.url(path))
            .header("content-type", "application/json")
            .body(body.to_string())
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200, "{path}");
    }
    let seen = gw.upstream.requests();
    assert_eq!(seen.len(), 2);
    for (r, sent) in seen.iter().zip([&chat, &responses]) {
        let text = String::from_utf8_lossy(&r.body);
        assert!(
            !text.contains(EMAIL),
            "{} reached the model: {text}",
            r.path
        );
        let v: Value = serde_json::from_str(&text).expect("still JSON");
        assert_eq!(v["model"], sent["model"]);
        assert_eq!(v["tools"][0]["type"], sent["tools"][0]["type"]);
    }
    let v: Value = serde_json::from_slice(&seen[0].body).unwrap();
    assert_eq!(v["messages"][1]["tool_calls"][0]["id"], "call_1");
    assert_eq!(v["messages"][2]["tool_call_id"], "call_1");
    assert_eq!(v["tools"][0]["function"]["name"], "lookup");
    assert_eq!(v["response_format"]["type"], "json_schema");
    assert_eq!(v["stop"][0], "[REDACTED:email]");
}

/// Sends `raw` on a fresh TLS connection to the gateway; returns what came back.
async fn raw_tls(gw: &Gateway, raw: &[u8]) -> String {
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(gw.pki.ca_pem.as_bytes()) {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .unwrap()
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let tcp = tokio::net::TcpStream::connect(gw.listen_addr("https"))
        .await
        .unwrap();
    let name = rustls::pki_types::ServerName::try_from("localhost").unwrap();
    let mut tls = connector.connect(name, tcp).await.unwrap();
    tls.write_all(raw).await.unwrap();
    let mut out = Vec::new();
    // Envoy answers a malformed request and closes; a deadline, not a sleep.
    let _ = tokio::time::timeout(
        std::time::Duration::from_secs(10),
        tls.read_to_end(&mut out),
    )
    .await;
    String::from_utf8_lossy(&out).into_owned()
}

#[tokio::test(flavor = "multi_thread")]
async fn requests_envoy_refuses_before_the_filter_are_audited_by_envoy() {
    let gw = Gateway::for_test("walkaround-envoy-refusals", POLICY)
        .await
        .unwrap();
    let options = raw_tls(
        &gw,
        b"OPTIONS * HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
    )
    .await;
    assert!(options.starts_with("HTTP/1.1 4"), "{options}");
    let malformed = raw_tls(&gw, b"GET /a b c HTTP/1.1\r\nHost: localhost\r\n\r\n").await;
    assert!(malformed.starts_with("HTTP/1.1 400"), "{malformed}");
    // And one the filter judges: its own record, not a second one from Envoy.
    let ok = gw
        .client()
        .unwrap()
        .get(gw.url("/customers"))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);

    let records = gw.wait_for_audit_records(3);
    assert_eq!(records.len(), 3, "{records:?}");
    let schema_text =
        std::fs::read_to_string(paths::workspace_root().join("docs/audit.schema.json")).unwrap();
    let schema = jsonschema::validator_for(&serde_json::from_str(&schema_text).unwrap()).unwrap();
    for r in &records {
        let errors: Vec<String> = schema.iter_errors(r).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{r} breaks the schema: {errors:?}");
    }
    let by_envoy: Vec<&Value> = records
        .iter()
        .filter(|r| r["decision"] == "refused_by_envoy")
        .collect();
    assert_eq!(by_envoy.len(), 2, "{records:?}");
    let options = by_envoy
        .iter()
        .find(|r| r["method"] == "OPTIONS")
        .expect("OPTIONS * recorded");
    assert_eq!(options["path"], "*");
    assert!(
        options["status"].as_u64().is_some_and(|s| s >= 400),
        "{options}"
    );
    let malformed = by_envoy
        .iter()
        .find(|r| r["status"] == 400)
        .expect("malformed line recorded");
    assert!(
        malformed["reason"]
            .as_str()
            .is_some_and(|r| r.starts_with("http1.")),
        "{malformed}"
    );
    let judged: Vec<&Value> = records
        .iter()
        .filter(|r| r["decision"] == "allowed")
        .collect();
    assert_eq!(judged.len(), 1, "{records:?}");
}

/// Issue 14, finding 4: an approval binds the content type and every header
/// that reaches the upstream; method overrides never reach the approval step.
#[tokio::test(flavor = "multi_thread")]
async fn an_approval_does_not_cover_other_headers_or_another_content_type() {
    use integration_tests::approver::{decide, start_approver, FILTER_KEY};
    use integration_tests::gateway::Options;

    let policy = json!({
        "default_action": "allow",
        "rules": [{ "name": "export-needs-approval", "match": { "path": { "prefix": "/export" } },
                    "action": "require_approval" }],
        "approval": { "cluster": "approver", "api_key": FILTER_KEY, "max_wait_secs": 1,
                      "poll_secs": 1, "timeout_ms": 2000 }
    })
    .to_string();
    let opts = Options::for_test("walkaround-approval-headers", &policy).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let approver = listener.local_addr().unwrap();
    let (_stop, _) = start_approver(&opts.dir.join("approver.sqlite"), listener);
    let gw = Gateway::start(opts.with_approver(approver)).await.unwrap();
    let client = gw.client().unwrap();
    let body = r#"{"customers":"vip"}"#;
    let send = |headers: Vec<(&'static str, &'static str)>| {
        let mut req = client
            .post(gw.url("/export/customers"))
            .header("x-agent-note", "nightly")
            .body(body);
        for (k, v) in headers {
            req = req.header(k, v);
        }
        async move {
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            (status, r.json::<Value>().await.unwrap_or(Value::Null))
        }
    };
    let json_ct = ("content-type", "application/json");
    let (status, first) = send(vec![json_ct]).await;
    assert_eq!(status, 503, "{first}");
    let id = first["approval_id"].as_str().unwrap().to_string();
    decide(approver, &id, "approve", json!({})).await;

    for (name, headers) in [
        ("another content type", vec![("content-type", "text/plain")]),
        (
            "an extra header",
            vec![json_ct, ("x-export-scope", "everything")],
        ),
        (
            "another header value",
            vec![json_ct, ("x-agent-note", "all of it")],
        ),
    ] {
        let (status, reply) = send(headers).await;
        assert_eq!(status, 503, "{name}: {reply}");
        assert_eq!(reply["error"], "approval_pending", "{name}");
        assert_ne!(reply["approval_id"], id.as_str(), "{name}");
    }
    let (status, reply) = send(vec![json_ct, ("x-http-method-override", "DELETE")]).await;
    assert_eq!(status, 400, "{reply}");
    assert_eq!(reply["error"], "method_override");
    assert!(gw.upstream.requests().is_empty());
    // The approved request itself passes, once; per-attempt headers differ.
    let (status, reply) = send(vec![
        json_ct,
        ("x-request-id", "retry-2"),
        (
            "traceparent",
            "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01",
        ),
    ])
    .await;
    assert_eq!(status, 200, "{reply}");
    assert_eq!(gw.upstream.requests().len(), 1);
}

/// The response path: a body masks cannot read as the client will is
/// refused with 502, never passed on unmasked.
#[tokio::test(flavor = "multi_thread")]
async fn a_response_masks_cannot_read_is_refused_with_502() {
    let policy = r#"{"masking": {"profiles": {"pii": {"detectors": ["email"]}}},
        "default_action": "allow",
        "rules": [{"name": "pii-back", "match": {"path": {"prefix": "/customers"}},
                   "action": "mask", "mask": {"response": ["pii"]}}]}"#;
    let gw = Gateway::for_test("walkaround-response", policy)
        .await
        .unwrap();
    let resp = gw
        .client()
        .unwrap()
        .get(gw.url("/customers/utf16"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 502);
    let reply: Value = resp.json().await.unwrap();
    assert_eq!(reply["error"], "body_unsupported_charset", "{reply}");
    let records = gw.wait_for_audit_records(1);
    assert_eq!(records[0]["decision"], "error", "{records:?}");
    assert_eq!(records[0]["reason"], "body_unsupported_charset");
}
