//! The approver service for transit-guard.
//!
//! The filter holds a request that a `require_approval` rule caught and asks
//! this service (over an Envoy cluster) whether it may pass; reviewers decide
//! on a web page or through the API. The protocol is in `docs/approver.md`.
//!
//! - [`serve`] runs the service on a listener until it fails;
//!   [`serve_with_shutdown`] stops gracefully on a signal.
//! - [`router`] is the axum router, for embedding; [`AppState::new`] opens the
//!   database and builds what the router needs.
//!
//! State lives in SQLite (`rusqlite`, bundled) for one process, or in
//! Postgres for replicas that share it ([`store`]): a restart loses no
//! pending or decided approval, and no grant. Approval policies per rule
//! ([`policy`]) say who may decide and how many approvals a request needs.

pub mod api;
mod assets;
pub mod auth;
pub mod clock;
pub mod config;
pub mod error;
pub mod model;
pub mod oidc;
pub mod policy;
pub mod session;
pub mod store;
pub mod webhook;

use std::future::Future;

use anyhow::{Context, Result};
use tokio::net::TcpListener;

pub use api::{router, AppState};
pub use clock::Clock;
pub use config::{Args, Config};
pub use error::ApiError;

/// Serves until the listener fails.
pub async fn serve(config: Config, listener: TcpListener) -> Result<()> {
    serve_with_shutdown(config, listener, std::future::pending()).await
}

/// Serves until `shutdown` completes, then finishes the requests in flight.
pub async fn serve_with_shutdown(
    config: Config,
    listener: TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<()> {
    let addr = listener
        .local_addr()
        .context("reading the listen address")?;
    let public_url = config
        .public_url
        .clone()
        .unwrap_or_else(|| format!("http://{addr}"));
    let state = AppState::new(&config, &public_url).await?;
    tracing::info!(%addr, db = %config.db.describe(), reviewers = config.reviewers.len(),
        webhook = config.webhook.is_some(), "transit-guard-approver listening");
    let stopping = state.clone();
    let shutdown = async move {
        shutdown.await;
        stopping.begin_shutdown();
    };
    axum::serve(listener, router(state))
        .with_graceful_shutdown(shutdown)
        .await
        .context("serving")
}

/// A random id with a prefix: `apr_` + 32 hex digits (128 bits).
pub(crate) fn new_id(prefix: &str) -> Result<String, ApiError> {
    let mut bytes = [0u8; 16];
    getrandom::getrandom(&mut bytes)
        .map_err(|e| ApiError::Internal(anyhow::anyhow!("no randomness: {e}")))?;
    let mut id = String::with_capacity(prefix.len() + 33);
    id.push_str(prefix);
    id.push('_');
    for b in bytes {
        id.push_str(&format!("{b:02x}"));
    }
    Ok(id)
}
