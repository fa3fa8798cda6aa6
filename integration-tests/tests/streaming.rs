//! Streamed LLM responses (SSE) through the real Envoy: masked as they
//! stream, with no value leaking across deltas, events or TCP writes, and
//! still parsed by the real OpenAI Python SDK.

use std::time::{Duration, Instant};

use integration_tests::gateway::Gateway;
use integration_tests::paths::workspace_root;
use integration_tests::upstream::{CHAT_ANSWER, CHAT_DELTAS};

const POLICY: &str = r#"{
  "mode": "enforce",
  "limits": { "max_body_bytes": 65536 },
  "masking": {
    "profiles": {
      "pii": { "detectors": ["email", "phone", "credit_card", "ssn"] }
    }
  },
  "default_action": "allow",
  "rules": [
    { "name": "llm-pii", "match": { "path": { "prefix": "/v1/" } }, "action": "mask",
      "mask": { "request": ["pii"], "response": ["pii"] } }
  ]
}"#;

const MASKED_ANSWER: &str =
    "Sure. Contact [REDACTED:email] or pay with [REDACTED:credit_card] today.";

async fn gateway(name: &str) -> Gateway {
    Gateway::for_test(name, POLICY).await.unwrap()
}

fn request_body() -> String {
    serde_json::json!({
        "model": "gpt-4o-mini", "stream": true,
        "messages": [{"role": "user", "content": "hello"}]
    })
    .to_string()
}

/// The `data:` payloads of an SSE body; every one must be JSON or `[DONE]`.
fn events(body: &str) -> Vec<serde_json::Value> {
    body.split("\n\n")
        .filter(|e| !e.trim().is_empty())
        .filter_map(|e| {
            let data: String = e
                .lines()
                .filter_map(|l| l.strip_prefix("data: "))
                .collect::<Vec<_>>()
                .join("\n");
            if data == "[DONE]" {
                return None;
            }
            Some(serde_json::from_str(&data).unwrap_or_else(|err| panic!("{err}: {data}")))
        })
        .collect()
}

fn content(events: &[serde_json::Value]) -> String {
    events
        .iter()
        .flat_map(|e| e["choices"].as_array().cloned().unwrap_or_default())
        .filter_map(|c| c["delta"]["content"].as_str().map(str::to_string))
        .collect()
}

#[tokio::test(flavor = "multi_thread")]
async fn sse_deltas_are_masked_as_they_stream() {
    assert_eq!(CHAT_DELTAS.concat(), CHAT_ANSWER);
    let gw = gateway("stream-sse").await;
    let start = Instant::now();
    let mut resp = gw
        .client()
        .unwrap()
        .post(gw.url("/v1/chat/completions?delay_ms=100"))
        .header("content-type", "application/json")
        .body(request_body())
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(
        resp.headers()["content-type"].to_str().unwrap(),
        "text/event-stream"
    );
    assert!(resp.headers().get("content-length").is_none());
    let mut body = Vec::new();
    let mut first_content: Option<Duration> = None;
    while let Some(chunk) = resp.chunk().await.unwrap() {
        body.extend_from_slice(&chunk);
        if first_content.is_none() && integration_tests::sse::has_content(&body) {
            first_content = Some(start.elapsed());
        }
    }
    let total = start.elapsed();
    let text = String::from_utf8(body).unwrap();
    for raw in ["ada.love", "lace@exam", "example.com", "4111", "1111 1111"] {
        assert!(!text.contains(raw), "{raw} leaked: {text}");
    }
    let evs = events(&text);
    assert_eq!(content(&evs), MASKED_ANSWER);
    assert!(text.ends_with("data: [DONE]\n\n"), "{text}");
    // Streamed, not buffered: the upstream takes ~2.4 s (24 writes, 100 ms
    // apart); the first text arrives long before the end.
    let first = first_content.unwrap();
    assert!(
        first + Duration::from_millis(1000) < total,
        "first content at {first:?}, end at {total:?}"
    );
    let records = gw.wait_for_audit_records(1);
    assert_eq!(records[0]["decision"], "masked", "{records:?}");
    assert_eq!(records[0]["masked"]["email"], 1, "{records:?}");
    assert_eq!(records[0]["masked"]["credit_card"], 1, "{records:?}");
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openai_python_sdk_streams_through_the_gateway() {
    let python = workspace_root().join(".venv/bin/python");
    assert!(
        python.exists(),
        "{} is missing: `cargo xtask test` creates it (with the openai package)",
        python.display()
    );
    let gw = gateway("stream-openai-sdk").await;
    let script = workspace_root().join("integration-tests/scripts/openai_stream.py");
    let base_url = gw.url("/v1");
    let ca = gw.pki.dir.join("ca.pem");
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(&python)
            .arg(&script)
            .arg(&base_url)
            .arg(&ca)
            .output()
            .unwrap()
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the SDK failed: {stderr}");
    let result: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    assert_eq!(result["text"], MASKED_ANSWER, "{result}");
    assert_eq!(result["helper_text"], MASKED_ANSWER, "{result}");
    assert_eq!(result["finish"], "stop");
    assert_eq!(result["usage"], 10 + CHAT_DELTAS.len() as u64);
    // The request's card was masked before it left for the "provider".
    let seen = gw.upstream.requests();
    assert_eq!(seen.len(), 2);
    for r in &seen {
        let body = String::from_utf8_lossy(&r.body);
        assert!(!body.contains("5555 5555 5555 4444"), "{body}");
        assert!(body.contains("[REDACTED:credit_card]"), "{body}");
    }
}

/// Added time to first byte and to first token: the same SSE stream (50
/// deltas) through a gateway that masks responses and one whose policy
/// masks nothing, alternated over several rounds, with each event written
/// whole 20 ms apart (as OpenAI does) and split in two writes 10 ms apart.
/// Prints the medians; asserts only that masking keeps it streaming (first
/// content well before the end).
#[tokio::test(flavor = "multi_thread")]
async fn time_to_first_token_with_and_without_masking() {
    use integration_tests::sse::{time_chat_stream, SseTiming};
    let masked = gateway("stream-ttfb-masked").await;
    let plain = Gateway::for_test(
        "stream-ttfb-plain",
        r#"{"mode": "enforce", "default_action": "allow", "rules": []}"#,
    )
    .await
    .unwrap();
    let (mc, pc) = (masked.client().unwrap(), plain.client().unwrap());
    for (label, path) in [
        (
            "events written whole, 20 ms apart",
            "/v1/chat/completions?deltas=50&delay_ms=20&split=0",
        ),
        (
            "events split in two writes, 10 ms apart",
            "/v1/chat/completions?deltas=50&delay_ms=10",
        ),
    ] {
        let mut m = Vec::new();
        let mut p = Vec::new();
        for round in 0..12 {
            let a = time_chat_stream(&mc, &masked.url(path)).await.unwrap();
            let b = time_chat_stream(&pc, &plain.url(path)).await.unwrap();
            if round >= 2 {
                m.push(a);
                p.push(b);
            }
        }
        let stat = |v: &[SseTiming], f: fn(&SseTiming) -> Duration| {
            let mut xs: Vec<Duration> = v.iter().map(f).collect();
            xs.sort();
            xs[xs.len() / 2]
        };
        let (mb, pb) = (stat(&m, |t| t.first_byte), stat(&p, |t| t.first_byte));
        let (mf, pf) = (stat(&m, |t| t.first_content), stat(&p, |t| t.first_content));
        let (mt, pt) = (stat(&m, |t| t.total), stat(&p, |t| t.total));
        println!(
            "SSE through Envoy, 50 deltas, {label}, medians of 10:\n\
             \x20 first byte:    masked {mb:?}  unmasked {pb:?}\n\
             \x20 first content: masked {mf:?}  unmasked {pf:?}\n\
             \x20 end of stream: masked {mt:?}  unmasked {pt:?}"
        );
        assert!(mf + Duration::from_millis(500) < mt, "{mf:?} {mt:?}");
    }
}

/// Reversible masking: emails leave as `<EMAIL_N>` tokens and come back.
const TOKENIZE_POLICY: &str = r#"{
  "mode": "enforce",
  "limits": { "max_body_bytes": 65536 },
  "masking": {
    "profiles": {
      "customer": { "detectors": ["email"], "strategies": { "email": "tokenize" } }
    }
  },
  "default_action": "allow",
  "rules": [
    { "name": "llm-tokens", "match": { "path": { "prefix": "/v1/" } }, "action": "mask",
      "mask": { "request": ["customer"] } }
  ]
}"#;

/// The real OpenAI SDK sends an email; the recording fake LLM never sees
/// it, answers with its token split across two deltas at every byte offset
/// (each event also cut across two TCP writes), and once buffered; the SDK
/// gets the email back every time. Each audit record counts one tokenised
/// and one restored value, holds no value, and is schema-valid.
#[tokio::test(flavor = "multi_thread")]
async fn tokenized_values_come_back_to_the_openai_sdk_streamed_and_buffered() {
    let python = workspace_root().join(".venv/bin/python");
    assert!(python.exists(), "{} is missing", python.display());
    let gw = Gateway::for_test("stream-tokenize", TOKENIZE_POLICY)
        .await
        .unwrap();
    let script = workspace_root().join("integration-tests/scripts/openai_tokenize.py");
    let (email, token) = ("ada.lovelace@example.com", "<EMAIL_1>");
    let answer = format!("Sure, I will write to {token} today.");
    let ca = gw.pki.dir.join("ca.pem");
    let out = tokio::task::block_in_place(|| {
        std::process::Command::new(&python)
            .arg(&script)
            .arg(gw.url("/v1"))
            .arg(&ca)
            .args([email, &answer, token])
            .output()
            .unwrap()
    });
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the SDK failed: {stderr}");
    let result: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&out.stdout)));
    let want = format!("Sure, I will write to {email} today.");
    let streamed = result["streamed"].as_array().unwrap();
    assert_eq!(streamed.len(), token.len() + 1, "{result}");
    for (k, text) in streamed.iter().enumerate() {
        assert_eq!(text, &want, "token split at byte {k}");
    }
    assert_eq!(result["buffered"], want.as_str(), "{result}");

    let requests = token.len() + 2;
    let seen = gw.upstream.requests();
    assert_eq!(seen.len(), requests);
    for r in &seen {
        let body = String::from_utf8_lossy(&r.body);
        assert!(!body.contains(email), "the upstream saw the email: {body}");
        assert!(body.contains("a note to <EMAIL_1>."), "{body}");
    }

    let schema = jsonschema::validator_for(
        &serde_json::from_str(
            &std::fs::read_to_string(workspace_root().join("docs/audit.schema.json")).unwrap(),
        )
        .unwrap(),
    )
    .unwrap();
    let records = gw.wait_for_audit_records(requests);
    for r in &records {
        assert!(!r.to_string().contains("lovelace"), "a value in {r}");
        assert_eq!(r["decision"], "masked", "{r}");
        assert_eq!(r["tokenized"], serde_json::json!({"email": 1}), "{r}");
        assert_eq!(r["restored"], serde_json::json!({"email": 1}), "{r}");
        let errors: Vec<String> = schema.iter_errors(r).map(|e| e.to_string()).collect();
        assert!(errors.is_empty(), "{r} breaks the schema: {errors:?}");
    }
    gw.envoy
        .wait_for_metric(
            r#"transit_guard_restored{detector="email"}"#,
            requests as u64,
        )
        .unwrap();
    gw.envoy
        .wait_for_metric(
            r#"transit_guard_tokenized{detector="email"}"#,
            requests as u64,
        )
        .unwrap();
}

/// The walk-around: token-shaped text typed into the request (as is, and
/// JSON-escaped) is kept as text and never becomes a token, so an answer
/// echoing it gets no value; the email gets the next free token. Buffered.
#[tokio::test(flavor = "multi_thread")]
async fn token_text_typed_in_the_request_is_never_restored() {
    let gw = Gateway::for_test("tokenize-typed", TOKENIZE_POLICY)
        .await
        .unwrap();
    let email = "grace@navy.example.org";
    let body = format!(
        r#"{{"model":"m","messages":[{{"role":"user","content":"keep <EMAIL_1> and \u003cEMAIL_2\u003e, mail {email}"}}]}}"#
    );
    let answer = "<EMAIL_1> <EMAIL_2> <EMAIL_3> <EMAIL_4>";
    let resp = gw
        .client()
        .unwrap()
        .post(gw.url("/v1/chat/completions"))
        .query(&[("answer", answer), ("cut", "0")])
        .header("content-type", "application/json")
        .body(body)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        v["choices"][0]["message"]["content"],
        format!("<EMAIL_1> <EMAIL_2> {email} <EMAIL_4>"),
        "{v}"
    );
    let seen = gw.upstream.requests();
    let sent = String::from_utf8_lossy(&seen[0].body);
    assert!(!sent.contains(email), "{sent}");
    assert!(sent.contains("mail <EMAIL_3>"), "{sent}");
    let records = gw.wait_for_audit_records(1);
    assert_eq!(records[0]["tokenized"], serde_json::json!({"email": 1}));
    assert_eq!(records[0]["restored"], serde_json::json!({"email": 1}));
}
