//! The HTTP API: the filter's endpoints, the reviewers' endpoints, the page.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::json;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::auth::{FilterAuth, Reviewer, ReviewerAuth, ReviewerMethod};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::ApiError;
use crate::model::{
    clean_reason, ApproveBody, Decision, DenyBody, FilterReply, NewApproval, ReviewItem, Status,
};
use crate::store::{Created, Store};
use crate::webhook::Webhook;
use crate::{assets, new_id};

/// The longest long-poll, in seconds.
pub const MAX_WAIT_SECS: u64 = 30;
/// The largest request body accepted (a preview is at most 4 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Shared by every request: storage, credentials, the decision signal.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Mutex<Store>,
    filter: FilterAuth,
    reviewers: ReviewerAuth,
    webhook: Option<Webhook>,
    clock: Clock,
    pending_ttl_secs: i64,
    approved_ttl_secs: i64,
    /// Bumped after every decision; long-polls wait on it.
    decisions: watch::Sender<u64>,
    /// Set when the service begins to stop: waiting long-polls answer at once.
    stopping: watch::Sender<bool>,
}

impl AppState {
    /// Opens (or creates) the database. `public_url` is the base of webhook links.
    pub fn new(config: &Config, public_url: &str) -> anyhow::Result<AppState> {
        config.validate()?;
        let store = Store::open(&config.db)?;
        let webhook = match &config.webhook {
            Some(url) => Some(Webhook::new(
                url.clone(),
                public_url.to_string(),
                config.webhook_timeout,
            )?),
            None => None,
        };
        let methods = config
            .reviewers
            .iter()
            .map(|(name, token)| ReviewerMethod::Token {
                name: name.clone(),
                token: token.as_bytes().to_vec(),
            })
            .collect();
        Ok(AppState {
            inner: Arc::new(Inner {
                store: Mutex::new(store),
                filter: FilterAuth::new(&config.filter_keys),
                reviewers: ReviewerAuth::new(methods),
                webhook,
                clock: config.clock.clone(),
                pending_ttl_secs: secs(config.pending_ttl_secs),
                approved_ttl_secs: secs(config.approved_ttl_secs),
                decisions: watch::Sender::new(0),
                stopping: watch::Sender::new(false),
            }),
        })
    }

    /// Waiting long-polls answer with the status they have, so a graceful stop
    /// does not wait for them and the filter can ask the next instance.
    pub fn begin_shutdown(&self) {
        self.inner.stopping.send_replace(true);
    }

    /// Runs a storage call on the blocking pool.
    async fn db<T, F>(&self, f: F) -> Result<T, ApiError>
    where
        T: Send + 'static,
        F: FnOnce(&mut Store, i64) -> Result<T, ApiError> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let now = inner.clock.now();
            let mut store = inner
                .store
                .lock()
                .map_err(|_| ApiError::Internal(anyhow::anyhow!("the store lock is poisoned")))?;
            f(&mut store, now)
        })
        .await
        .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?
    }
}

fn secs(s: u64) -> i64 {
    i64::try_from(s).unwrap_or(i64::MAX)
}

pub fn router(state: AppState) -> Router {
    Router::new()
        .route("/", get(assets::index))
        .route("/app.js", get(assets::script))
        .route("/app.css", get(assets::style))
        .route("/favicon.ico", get(|| async { StatusCode::NO_CONTENT }))
        .route("/healthz", get(healthz))
        .route("/v1/approvals", post(create).get(list))
        .route("/v1/approvals/{id}", get(poll))
        .route("/v1/approvals/{id}/approve", post(approve))
        .route("/v1/approvals/{id}/deny", post(deny))
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .layer(DefaultBodyLimit::max(MAX_BODY_BYTES))
        .with_state(state)
}

async fn healthz() -> Json<serde_json::Value> {
    Json(json!({ "status": "ok" }))
}

async fn not_found() -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::NOT_FOUND,
        Json(json!({ "error": "not_found", "reason": "no such endpoint" })),
    )
}

async fn method_not_allowed() -> (StatusCode, Json<serde_json::Value>) {
    (
        StatusCode::METHOD_NOT_ALLOWED,
        Json(
            json!({ "error": "method_not_allowed", "reason": "method not allowed on this endpoint" }),
        ),
    )
}

/// A JSON body, whatever the content type; errors are JSON replies.
fn parse<T: DeserializeOwned>(body: Result<Bytes, BytesRejection>) -> Result<T, ApiError> {
    let body = body.map_err(|e| {
        if e.status() == StatusCode::PAYLOAD_TOO_LARGE {
            ApiError::TooLarge(MAX_BODY_BYTES)
        } else {
            ApiError::InvalidRequest(e.body_text())
        }
    })?;
    serde_json::from_slice(&body)
        .map_err(|e| ApiError::InvalidRequest(format!("invalid JSON body: {e}")))
}

fn path_id(id: Result<Path<String>, PathRejection>) -> Result<String, ApiError> {
    id.map(|Path(id)| id)
        .map_err(|e| ApiError::InvalidRequest(e.body_text()))
}

// ---- the filter's endpoints --------------------------------------------------

async fn create(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<FilterReply>, ApiError> {
    state.inner.filter.check(&headers)?;
    let req: NewApproval = parse(body)?;
    req.validate()?;
    let id = new_id("apr")?;
    let ttl = state.inner.pending_ttl_secs;
    let (created, now) = state
        .db(move |s, now| Ok((s.create(&req, id, now, ttl)?, now)))
        .await?;
    let a = created.approval();
    match &created {
        Created::New(a) => {
            tracing::info!(approval = %a.id, sub = %a.identity.sub, rule = %a.rule,
                method = %a.method, authority = %a.authority, path = %a.path, "pending");
            if let Some(w) = &state.inner.webhook {
                w.notify(a);
            }
        }
        Created::Existing(a) => tracing::debug!(approval = %a.id, "same request, still pending"),
        Created::Consumed(a) => {
            tracing::info!(approval = %a.id, "one-time approval used by a repeated request")
        }
        Created::Granted(a) => tracing::info!(approval = %a.id, grant = ?a.grant_id,
            sub = %a.identity.sub, rule = %a.rule, "approved by a time-bound grant"),
    }
    Ok(Json(FilterReply::from(a, now)))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    wait: Option<u64>,
}

async fn poll(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<WaitQuery>, QueryRejection>,
) -> Result<Json<FilterReply>, ApiError> {
    state.inner.filter.check(&headers)?;
    let id = path_id(id)?;
    let Query(q) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let wait = Duration::from_secs(q.wait.unwrap_or(0).min(MAX_WAIT_SECS));
    let deadline = Instant::now() + wait;
    let mut decisions = state.inner.decisions.subscribe();
    let mut stopping = state.inner.stopping.subscribe();
    loop {
        decisions.borrow_and_update();
        let id = id.clone();
        let (a, now) = state.db(move |s, now| Ok((s.poll(&id, now)?, now))).await?;
        let remaining = deadline.saturating_duration_since(Instant::now());
        if a.status != Status::Pending || remaining.is_zero() || *stopping.borrow_and_update() {
            if a.status == Status::Approved {
                tracing::info!(approval = %a.id, "approval used by the held request");
            }
            return Ok(Json(FilterReply::from(&a, now)));
        }
        // Wake on a decision, at expiry, or at the deadline.
        let to_expiry = Duration::from_secs(u64::try_from(a.expires_at - now).unwrap_or(0))
            .max(Duration::from_millis(250));
        let nap = remaining.min(to_expiry);
        tokio::select! {
            changed = decisions.changed() => {
                if changed.is_err() {
                    tokio::time::sleep(nap).await;
                }
            }
            _ = tokio::time::sleep(nap) => {}
            _ = stopping.changed() => {}
        }
    }
}

// ---- the reviewers' endpoints ------------------------------------------------

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct ListQuery {
    status: Option<String>,
    limit: Option<u32>,
}

async fn list(
    State(state): State<AppState>,
    headers: HeaderMap,
    query: Result<Query<ListQuery>, QueryRejection>,
) -> Result<Json<serde_json::Value>, ApiError> {
    let _reviewer = state.inner.reviewers.authenticate(&headers)?;
    let Query(q) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let status = match q.status.as_deref() {
        None => Some(Status::Pending),
        Some("all") => None,
        Some(s) => Some(Status::parse(s).ok_or_else(|| {
            ApiError::InvalidRequest(format!(
                "status must be pending, approved, denied, expired or all, not {s:?}"
            ))
        })?),
    };
    let limit = q.limit.unwrap_or(100).clamp(1, 500);
    let (rows, now) = state
        .db(move |s, now| Ok((s.list(status, now, limit)?, now)))
        .await?;
    let items: Vec<ReviewItem> = rows.into_iter().map(|a| ReviewItem::from(a, now)).collect();
    Ok(Json(json!({ "approvals": items, "now": now })))
}

async fn approve(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ReviewItem>, ApiError> {
    let reviewer = state.inner.reviewers.authenticate(&headers)?;
    let id = path_id(id)?;
    let body: ApproveBody = parse(body)?;
    let decision = body.decision()?;
    let reason = clean_reason(body.reason)?;
    decide(state, reviewer, id, decision, reason).await
}

async fn deny(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ReviewItem>, ApiError> {
    let reviewer = state.inner.reviewers.authenticate(&headers)?;
    let id = path_id(id)?;
    let body: DenyBody = parse(body)?;
    let reason = clean_reason(body.reason)?;
    decide(state, reviewer, id, Decision::Deny, reason).await
}

async fn decide(
    state: AppState,
    reviewer: Reviewer,
    id: String,
    decision: Decision,
    reason: Option<String>,
) -> Result<Json<ReviewItem>, ApiError> {
    let grant_id = new_id("grt")?;
    let approved_ttl = state.inner.approved_ttl_secs;
    let name = reviewer.name.clone();
    let (a, now) = state
        .db(move |s, now| {
            let a = s.decide(
                &id,
                &name,
                &decision,
                reason.as_deref(),
                grant_id,
                now,
                approved_ttl,
            )?;
            Ok((a, now))
        })
        .await?;
    state
        .inner
        .decisions
        .send_modify(|n| *n = n.wrapping_add(1));
    tracing::info!(approval = %a.id, status = a.status.as_str(), reviewer = %reviewer.name,
        grant = ?a.grant, "decided");
    Ok(Json(ReviewItem::from(a, now)))
}
