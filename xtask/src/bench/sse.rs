//! The SSE measurement. A direct_response cannot stream, so a tiny source
//! here speaks HTTP/1.1 on loopback behind the upstream Envoy: each response
//! is `EVENTS` server-sent events `INTERVAL` apart (the first at once), the
//! deltas carrying an email address, like an LLM answer quoting a record.
//! The client times, per request, the first body byte (TTFB) and the last.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use anyhow::{bail, Context, Result};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

pub const EVENTS: usize = 8;
pub const INTERVAL: Duration = Duration::from_millis(25);

/// Starts the source on an ephemeral loopback port; it runs until the
/// runtime stops.
pub async fn start_source() -> Result<SocketAddr> {
    let listener = TcpListener::bind(("127.0.0.1", 0))
        .await
        .context("binding the SSE source")?;
    let addr = listener.local_addr()?;
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            tokio::spawn(async move {
                let _ = serve(stream).await;
            });
        }
    });
    Ok(addr)
}

/// One request per connection (`connection: close`): simple, and Envoy
/// pools nothing to this cluster that could skew the first request.
async fn serve(mut stream: TcpStream) -> std::io::Result<()> {
    let mut head = Vec::new();
    let mut buf = [0u8; 4096];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        let n = stream.read(&mut buf).await?;
        if n == 0 || head.len() > 65536 {
            return Ok(());
        }
        head.extend_from_slice(buf.get(..n).unwrap_or_default());
    }
    stream
        .write_all(
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ncache-control: no-cache\r\n\
              transfer-encoding: chunked\r\nconnection: close\r\n\r\n",
        )
        .await?;
    for i in 0..EVENTS {
        if i > 0 {
            tokio::time::sleep(INTERVAL).await;
        }
        let event = format!(
            "data: {{\"index\":{i},\"delta\":\"customer{i}@example.com asked about invoice {}\"}}\n\n",
            1000 + i
        );
        stream
            .write_all(format!("{:x}\r\n{event}\r\n", event.len()).as_bytes())
            .await?;
        stream.flush().await?;
    }
    stream.write_all(b"0\r\n\r\n").await?;
    stream.shutdown().await
}

/// A client for one front: HTTP/1.1 (as wrk), trusting the run's CA.
pub fn client(ca_pem: &str, front: SocketAddr) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes())?)
        .tls_built_in_root_certs(false)
        .resolve("localhost", front)
        .http1_only()
        .build()?)
}

/// Time to the first body byte and to the end, in ms, of one SSE request.
pub async fn fetch(
    client: &reqwest::Client,
    url: &str,
    authority: &str,
    token: &str,
) -> Result<(f64, f64)> {
    let t0 = Instant::now();
    let mut resp = client
        .get(url)
        .header("host", authority)
        .bearer_auth(token)
        .send()
        .await?;
    if resp.status() != 200 {
        bail!("{url}: status {}", resp.status());
    }
    let mut first = None;
    let mut bytes = 0;
    while let Some(chunk) = resp.chunk().await? {
        if first.is_none() && !chunk.is_empty() {
            first = Some(t0.elapsed());
        }
        bytes += chunk.len();
    }
    let last = t0.elapsed();
    let Some(first) = first else {
        bail!("{url}: empty stream");
    };
    if bytes < EVENTS * 40 {
        bail!("{url}: the stream ended early ({bytes} bytes)");
    }
    Ok((first.as_secs_f64() * 1e3, last.as_secs_f64() * 1e3))
}
