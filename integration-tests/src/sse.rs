//! Time to first byte of a streamed (SSE) chat completion, for the
//! streaming tests and `cargo xtask bench`: POST a `stream: true` request
//! to the upstream's `/v1/chat/completions` (directly or through a gateway)
//! and time the first body byte, the first non-empty `delta.content` and
//! the end of the stream.

use std::time::{Duration, Instant};

use anyhow::{bail, Result};

/// When things arrived, from the moment the request was sent.
#[derive(Debug, Clone, Copy)]
pub struct SseTiming {
    /// The response headers.
    pub headers: Duration,
    /// The first body byte.
    pub first_byte: Duration,
    /// The first chunk whose `delta.content` is not empty (what a user sees).
    pub first_content: Duration,
    pub total: Duration,
    pub bytes: usize,
}

/// Streams one chat completion from `url` (e.g.
/// `https://localhost:PORT/v1/chat/completions?deltas=50&delay_ms=10`).
pub async fn time_chat_stream(client: &reqwest::Client, url: &str) -> Result<SseTiming> {
    let body = serde_json::json!({
        "model": "gpt-4o-mini", "stream": true,
        "messages": [{"role": "user", "content": "hello"}]
    });
    let start = Instant::now();
    let mut resp = client.post(url).json(&body).send().await?;
    let headers = start.elapsed();
    if !resp.status().is_success() {
        bail!("{url}: {}", resp.status());
    }
    let mut buf = Vec::new();
    let (mut first_byte, mut first_content) = (None, None);
    while let Some(chunk) = resp.chunk().await? {
        if first_byte.is_none() && !chunk.is_empty() {
            first_byte = Some(start.elapsed());
        }
        buf.extend_from_slice(&chunk);
        if first_content.is_none() && has_content(&buf) {
            first_content = Some(start.elapsed());
        }
    }
    let total = start.elapsed();
    Ok(SseTiming {
        headers,
        first_byte: first_byte.unwrap_or(total),
        first_content: first_content.unwrap_or(total),
        total,
        bytes: buf.len(),
    })
}

/// Some complete event in `buf` has a non-empty `delta.content`.
pub fn has_content(buf: &[u8]) -> bool {
    String::from_utf8_lossy(buf)
        .split("\n\n")
        .filter_map(|e| e.strip_prefix("data: "))
        .filter_map(|d| serde_json::from_str::<serde_json::Value>(d).ok())
        .any(|v| {
            v["choices"].as_array().into_iter().flatten().any(|c| {
                c["delta"]["content"]
                    .as_str()
                    .is_some_and(|s| !s.is_empty())
            })
        })
}
