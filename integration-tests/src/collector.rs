//! An HTTP audit collector for the tests: takes NDJSON batches on
//! `POST /v1/audit` and keeps every line; can be told to refuse.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use anyhow::Result;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::routing::post;
use axum::Router;

#[derive(Default)]
struct Shared {
    lines: Mutex<Vec<String>>,
    batches: Mutex<usize>,
    refuse: AtomicBool,
}

pub struct AuditCollector {
    pub addr: SocketAddr,
    shared: Arc<Shared>,
    task: tokio::task::JoinHandle<()>,
}

impl AuditCollector {
    pub async fn start() -> Result<AuditCollector> {
        let shared = Arc::new(Shared::default());
        let app = Router::new()
            .route("/v1/audit", post(take))
            .with_state(shared.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(AuditCollector { addr, shared, task })
    }

    /// Every record received so far.
    pub fn lines(&self) -> Vec<String> {
        self.shared
            .lines
            .lock()
            .map(|l| l.clone())
            .unwrap_or_default()
    }

    pub fn batches(&self) -> usize {
        self.shared.batches.lock().map(|b| *b).unwrap_or(0)
    }

    /// Answer 503 to every batch from now on.
    pub fn refuse(&self) {
        self.shared.refuse.store(true, Ordering::SeqCst);
    }
}

impl Drop for AuditCollector {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn take(State(shared): State<Arc<Shared>>, body: Bytes) -> StatusCode {
    if shared.refuse.load(Ordering::SeqCst) {
        return StatusCode::SERVICE_UNAVAILABLE;
    }
    if let Ok(mut b) = shared.batches.lock() {
        *b += 1;
    }
    if let Ok(mut lines) = shared.lines.lock() {
        lines.extend(String::from_utf8_lossy(&body).lines().map(str::to_string));
    }
    StatusCode::NO_CONTENT
}
