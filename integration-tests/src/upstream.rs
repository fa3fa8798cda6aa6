//! A TLS upstream that records every request it receives, so tests can assert
//! what did, and did not, reach the target behind the gateway.
//!
//! `GET /customers` serves demo customer records full of personal data;
//! `POST /v1/chat/completions` is a small OpenAI-compatible model (see
//! [`chat_completions`]: SSE with `stream: true`); `POST /relay` writes back
//! each piece of the request body as it arrives ([`relay`]); every other
//! path echoes what it received as JSON.

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use anyhow::{Context, Result};
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, Method, Request, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::service::TowerToHyperService;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer};
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;

use crate::certs::Pki;

/// One request as the upstream saw it.
#[derive(Debug, Clone)]
pub struct Recorded {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Recorded {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }
}

type Log = Arc<Mutex<Vec<Recorded>>>;

pub struct Upstream {
    pub addr: SocketAddr,
    log: Log,
    task: tokio::task::JoinHandle<()>,
}

impl Upstream {
    /// Starts on an ephemeral loopback port with the PKI's upstream certificate.
    pub async fn start(pki: &Pki) -> Result<Upstream> {
        Self::start_on(pki, SocketAddr::from(([127, 0, 0, 1], 0))).await
    }

    pub async fn start_on(pki: &Pki, addr: SocketAddr) -> Result<Upstream> {
        let tls = tls_acceptor(pki)?;
        let listener = TcpListener::bind(addr).await.context("binding upstream")?;
        let addr = listener.local_addr()?;
        let log: Log = Arc::default();
        let app = Router::new()
            .route("/customers", get(customers))
            .route("/slow", get(slow))
            .route("/customers/gz", get(customers_gzip))
            .route("/customers/utf16", get(customers_utf16))
            .route("/v1/chat/completions", post(chat_completions))
            .route("/scripted/v1/chat/completions", post(scripted_llm))
            .route("/mcp", post(mcp))
            .route("/mcp/sse", post(mcp_sse))
            .route("/relay", post(relay))
            .fallback(echo)
            .with_state(log.clone());
        let task = tokio::spawn(async move {
            loop {
                let Ok((tcp, _)) = listener.accept().await else {
                    continue;
                };
                let tls = tls.clone();
                let app = app.clone();
                tokio::spawn(async move {
                    let Ok(stream) = tls.accept(tcp).await else {
                        return;
                    };
                    let svc = TowerToHyperService::new(app);
                    let _ = auto::Builder::new(TokioExecutor::new())
                        .serve_connection(TokioIo::new(stream), svc)
                        .await;
                });
            }
        });
        Ok(Upstream { addr, log, task })
    }

    /// Every request received so far, in order.
    pub fn requests(&self) -> Vec<Recorded> {
        self.log.lock().map(|l| l.clone()).unwrap_or_default()
    }
}

impl Drop for Upstream {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn tls_acceptor(pki: &Pki) -> Result<TlsAcceptor> {
    let certs =
        CertificateDer::pem_file_iter(pki.path("upstream.pem"))?.collect::<Result<Vec<_>, _>>()?;
    let key = PrivateKeyDer::from_pem_file(pki.path("upstream-key.pem"))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut config = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()?
        .with_no_client_auth()
        .with_single_cert(certs, key)?;
    config.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(config)))
}

fn record(log: &Log, method: &Method, uri: &Uri, headers: &HeaderMap, body: &[u8]) {
    let rec = Recorded {
        method: method.to_string(),
        path: uri
            .path_and_query()
            .map(|p| p.to_string())
            .unwrap_or_default(),
        headers: headers
            .iter()
            .map(|(k, v)| {
                (
                    k.to_string(),
                    String::from_utf8_lossy(v.as_bytes()).into_owned(),
                )
            })
            .collect(),
        body: body.to_vec(),
    };
    if let Ok(mut l) = log.lock() {
        l.push(rec);
    }
}

async fn customers(State(log): State<Log>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    record(&log, &parts.method, &parts.uri, &parts.headers, b"");
    (
        [("content-type", "application/json")],
        DEMO_CUSTOMERS.to_string(),
    )
        .into_response()
}

/// The customers, gzip-compressed whatever the client asked for: a masking
/// gateway must never pass this on unscanned.
/// The customers as UTF-16LE JSON with a byte order mark: what a masker
/// reading UTF-8 would pass on unmasked (issue 14).
async fn customers_utf16(State(log): State<Log>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    record(&log, &parts.method, &parts.uri, &parts.headers, b"");
    let mut body = vec![0xFF, 0xFE];
    body.extend(DEMO_CUSTOMERS.encode_utf16().flat_map(u16::to_le_bytes));
    ([("content-type", "application/json")], body).into_response()
}

async fn customers_gzip(State(log): State<Log>, req: Request<Body>) -> Response {
    use std::io::Write;
    let (parts, _) = req.into_parts();
    record(&log, &parts.method, &parts.uri, &parts.headers, b"");
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    let _ = gz.write_all(DEMO_CUSTOMERS.as_bytes());
    let body = gz.finish().unwrap_or_default();
    (
        [
            ("content-type", "application/json"),
            ("content-encoding", "gzip"),
        ],
        body,
    )
        .into_response()
}

/// A scripted OpenAI-compatible LLM (Chat Completions, not streamed) for
/// agent tests: the Nth tool result in the conversation decides the next
/// step, so an agent's tool calls are deterministic: list customers, delete
/// one, export them all, then answer with what the tools returned.
async fn scripted_llm(State(log): State<Log>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    record(&log, &parts.method, &parts.uri, &parts.headers, &body);
    let chat: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let messages = chat["messages"].as_array().cloned().unwrap_or_default();
    let tool_results: Vec<String> = messages
        .iter()
        .filter(|m| m["role"] == "tool")
        .map(|m| m["content"].as_str().unwrap_or_default().to_string())
        .collect();
    let call = |name: &str, args: serde_json::Value| {
        serde_json::json!({"role": "assistant", "content": null, "tool_calls": [{
            "id": format!("call_{}", tool_results.len() + 1), "type": "function",
            "function": {"name": name, "arguments": args.to_string()}}]})
    };
    let (message, finish) = match tool_results.len() {
        0 => (call("get_customers", serde_json::json!({})), "tool_calls"),
        1 => (
            call(
                "delete_customer",
                serde_json::json!({"customer_id": "c-1002"}),
            ),
            "tool_calls",
        ),
        2 => (
            call("export_customers", serde_json::json!({})),
            "tool_calls",
        ),
        _ => (
            serde_json::json!({"role": "assistant", "content": format!("Done. Tool results: {}", tool_results.join(" | "))}),
            "stop",
        ),
    };
    axum::Json(serde_json::json!({
        "id": "chatcmpl-scripted", "object": "chat.completion", "created": 0, "model": "scripted",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2}
    }))
    .into_response()
}

/// The MCP server of [`crate::mcp_server`], answering as JSON.
async fn mcp(State(log): State<Log>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    record(&log, &parts.method, &parts.uri, &parts.headers, &body);
    axum::Json(crate::mcp_server::respond(&body)).into_response()
}

/// The same answers as one server-sent event.
async fn mcp_sse(State(log): State<Log>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let Ok(body) = axum::body::to_bytes(body, usize::MAX).await else {
        return StatusCode::BAD_REQUEST.into_response();
    };
    record(&log, &parts.method, &parts.uri, &parts.headers, &body);
    let event = format!(
        "event: message\ndata: {}\n\n",
        crate::mcp_server::respond(&body)
    );
    ([("content-type", "text/event-stream")], event).into_response()
}

/// Answers after `?ms=N` milliseconds (default 2000): for client-abort tests.
async fn slow(State(log): State<Log>, req: Request<Body>) -> Response {
    let (parts, _) = req.into_parts();
    record(&log, &parts.method, &parts.uri, &parts.headers, b"");
    let ms = parts
        .uri
        .query()
        .and_then(|q| q.strip_prefix("ms="))
        .and_then(|v| v.parse().ok())
        .unwrap_or(2000);
    tokio::time::sleep(std::time::Duration::from_millis(ms)).await;
    axum::Json(serde_json::json!({"upstream": "slow", "ms": ms})).into_response()
}

async fn echo(State(log): State<Log>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    record(&log, &parts.method, &parts.uri, &parts.headers, &body);
    let reply = serde_json::json!({
        "upstream": "echo",
        "method": parts.method.as_str(),
        "path": parts.uri.path(),
        "body_bytes": body.len(),
    });
    axum::Json(reply).into_response()
}

/// Recorded as soon as its headers arrive (with an empty body), then each
/// piece of the request body is written back as a piece of the JSON
/// response as it arrives: whatever holds the request or the response whole
/// on the way shows as a piece that does not come back until the end.
async fn relay(State(log): State<Log>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    record(&log, &parts.method, &parts.uri, &parts.headers, b"");
    (
        [("content-type", "application/json")],
        Body::from_stream(body.into_data_stream()),
    )
        .into_response()
}

/// The assistant's answer of [`chat_completions`]: an email and a card.
pub const CHAT_ANSWER: &str =
    "Sure. Contact ada.lovelace@example.com or pay with 4111 1111 1111 1111 today.";

/// How [`chat_completions`] streams [`CHAT_ANSWER`]: the email and the card
/// number are each split across deltas.
pub const CHAT_DELTAS: &[&str] = &[
    "Sure.",
    " Contact ada.love",
    "lace@exam",
    "ple.com or pay",
    " with 4111 11",
    "11 1111 ",
    "1111 today.",
];

/// A small OpenAI-compatible Chat Completions endpoint. With `stream: true`
/// it answers SSE: a role chunk, one chunk per [`CHAT_DELTAS`] entry, a
/// finish chunk, a usage chunk and `[DONE]`. Each event is written in two
/// TCP writes (split in the middle, so events are cut across writes) with
/// `delay_ms` (query, default 20) between writes; `?split=0` writes each
/// event whole, `delay_ms` apart (as OpenAI does). `?deltas=N` streams N
/// filler deltas (`word0 word1 ...`) instead, for time-to-first-byte
/// measurements (`cargo xtask bench`); `?answer=TEXT&cut=K` streams TEXT in
/// two deltas split at byte K (reversible masking: a token the gateway must
/// restore, split at every offset). Without `stream` it answers one
/// `chat.completion` JSON with the deltas' text.
async fn chat_completions(State(log): State<Log>, req: Request<Body>) -> Response {
    let (parts, body) = req.into_parts();
    let body: Bytes = match axum::body::to_bytes(body, usize::MAX).await {
        Ok(b) => b,
        Err(_) => return StatusCode::BAD_REQUEST.into_response(),
    };
    record(&log, &parts.method, &parts.uri, &parts.headers, &body);
    let request: serde_json::Value = serde_json::from_slice(&body).unwrap_or_default();
    let query: std::collections::HashMap<String, String> =
        serde_urlencoded::from_str(parts.uri.query().unwrap_or("")).unwrap_or_default();
    let delay_ms: u64 = query
        .get("delay_ms")
        .and_then(|v| v.parse().ok())
        .unwrap_or(20);
    let cut = |a: &String| {
        let k = query
            .get("cut")
            .and_then(|v| v.parse::<usize>().ok())
            .unwrap_or(0)
            .min(a.len());
        let (x, y) = a.split_at(k);
        vec![x.to_string(), y.to_string()]
    };
    let deltas: Vec<String> = match query.get("deltas").and_then(|v| v.parse::<usize>().ok()) {
        Some(n) => (0..n).map(|i| format!("word{i} ")).collect(),
        None => match query.get("answer") {
            Some(a) => cut(a),
            None => CHAT_DELTAS.iter().map(|d| d.to_string()).collect(),
        },
    };
    let split = query.get("split").map(String::as_str) != Some("0");
    let model = request["model"]
        .as_str()
        .unwrap_or("gpt-4o-mini")
        .to_string();
    if request["stream"] != serde_json::json!(true) {
        return axum::Json(serde_json::json!({
            "id": "chatcmpl-test", "object": "chat.completion", "created": 1700000000,
            "model": model,
            "choices": [{"index": 0, "finish_reason": "stop",
                         "message": {"role": "assistant", "content": deltas.concat()}}],
            "usage": {"prompt_tokens": 10, "completion_tokens": 20, "total_tokens": 30}
        }))
        .into_response();
    }
    let chunk = |choices: serde_json::Value, usage: serde_json::Value| {
        let c = serde_json::json!({
            "id": "chatcmpl-test", "object": "chat.completion.chunk", "created": 1700000000,
            "model": model, "system_fingerprint": "fp_test", "choices": choices, "usage": usage
        });
        format!("data: {c}\n\n")
    };
    let mut events = vec![chunk(
        serde_json::json!([{"index": 0, "delta": {"role": "assistant", "content": ""},
                            "logprobs": null, "finish_reason": null}]),
        serde_json::Value::Null,
    )];
    for d in &deltas {
        events.push(chunk(
            serde_json::json!([{"index": 0, "delta": {"content": d},
                                "logprobs": null, "finish_reason": null}]),
            serde_json::Value::Null,
        ));
    }
    events.push(chunk(
        serde_json::json!([{"index": 0, "delta": {}, "logprobs": null, "finish_reason": "stop"}]),
        serde_json::Value::Null,
    ));
    events.push(chunk(
        serde_json::json!([]),
        serde_json::json!({"prompt_tokens": 10, "completion_tokens": deltas.len(), "total_tokens": 10 + deltas.len()}),
    ));
    events.push("data: [DONE]\n\n".to_string());
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(4);
    tokio::spawn(async move {
        for (i, e) in events.into_iter().enumerate() {
            let (a, b) = e.as_bytes().split_at(if split { e.len() / 2 } else { 0 });
            for part in [a, b].into_iter().filter(|p| !p.is_empty()) {
                if i > 0 || part.as_ptr() != e.as_ptr() {
                    tokio::time::sleep(std::time::Duration::from_millis(delay_ms)).await;
                }
                if tx.send(Bytes::copy_from_slice(part)).await.is_err() {
                    return;
                }
            }
        }
    });
    (
        [
            ("content-type", "text/event-stream"),
            ("cache-control", "no-cache"),
        ],
        Body::from_stream(Chunks(rx)),
    )
        .into_response()
}

/// A channel as a body stream: each message is one write.
struct Chunks(tokio::sync::mpsc::Receiver<Bytes>);

impl futures_core::Stream for Chunks {
    type Item = Result<Bytes, std::io::Error>;

    fn poll_next(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<Option<Self::Item>> {
        self.0.poll_recv(cx).map(|m| m.map(Ok))
    }
}

/// Demo customer records: every sensitive kind the masking engine must catch.
/// Card numbers are the card networks' Luhn-valid test numbers.
pub const DEMO_CUSTOMERS: &str = r#"{
  "customers": [
    {"id": "c-1001", "name": "Ada Lovelace", "email": "ada.lovelace@example.com",
     "phone": "+1 415 555 0132", "card": "4111 1111 1111 1111", "ssn": "123-45-6789",
     "note": "prefers email; card on file"},
    {"id": "c-1002", "name": "Grace Hopper", "email": "grace@navy.example.org",
     "phone": "+44 20 7946 0958", "card": "5555-5555-5555-4444", "ssn": "219-09-9999",
     "note": "call +44 20 7946 0958 before shipping"},
    {"id": "c-1003", "name": "Alan Turing", "email": "alan.turing@example.co.uk",
     "phone": "(212) 555-0199", "card": "378282246310005", "ssn": "078-05-1120",
     "note": "backup contact alan@bletchley.example"}
  ]
}"#;
