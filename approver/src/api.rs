//! The HTTP API: the filter's endpoints, the reviewers' endpoints, the page.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::{BytesRejection, PathRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, FromRef, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::json;
use tokio::sync::broadcast::error::RecvError;
use tokio::sync::watch;
use tokio::time::Instant;

use crate::auth::{FilterAuth, Reviewer, ReviewerAuth, ReviewerMethod};
use crate::clock::Clock;
use crate::config::Config;
use crate::error::ApiError;
use crate::model::{
    clean_reason, filter_reply, validate, Approval, ApprovalReply, ApproveBody, Decision, DenyBody,
    GrantKind, Header, Identity, NewApproval, Status, Vote,
};
use crate::oidc::{self, Oidc, SignIn};
use crate::policy::{Policies, PolicyView};
use crate::store::{Ballot, Created, Store, ANY_CHANGE};
use crate::webhook::Webhook;
use crate::{assets, new_id};

/// The longest long-poll, in seconds.
pub use transit_guard_wire::MAX_WAIT_SECS;
/// The largest request body accepted (a preview is at most 4 KiB).
pub const MAX_BODY_BYTES: usize = 64 * 1024;

/// Shared by every request: storage, credentials, the decision signal.
#[derive(Clone)]
pub struct AppState {
    inner: Arc<Inner>,
}

struct Inner {
    store: Store,
    oidc: Option<Arc<Oidc>>,
    policies: Policies,
    filter: FilterAuth,
    reviewers: ReviewerAuth,
    webhook: Option<Webhook>,
    clock: Clock,
    pending_ttl_secs: i64,
    approved_ttl_secs: i64,
    /// A waiting long-poll rereads its approval at least this often, in case
    /// a change notice from another replica was lost.
    recheck: Duration,
    /// Set when the service begins to stop: waiting long-polls answer at once.
    stopping: watch::Sender<bool>,
}

impl AppState {
    /// Opens (or creates) the database. `public_url` is the base of webhook links.
    pub async fn new(config: &Config, public_url: &str) -> anyhow::Result<AppState> {
        config.validate()?;
        let store = Store::open(&config.db).await?;
        let webhook = match &config.webhook {
            Some(url) => Some(Webhook::new(
                url.clone(),
                public_url.to_string(),
                config.webhook_timeout,
                config.webhook_secret.clone(),
                config.webhook_retry,
            )?),
            None => None,
        };
        let methods = config
            .reviewers
            .iter()
            .map(|(name, token)| ReviewerMethod::Token {
                name: name.clone(),
                token: token.as_bytes().to_vec(),
                groups: config.policies.reviewer_groups(name),
            })
            .collect();
        let oidc = match (&config.oidc, &config.session_secret) {
            (Some(o), Some(secret)) => Some(Arc::new(Oidc::new(o.clone(), secret, public_url)?)),
            _ => None,
        };
        Ok(AppState {
            inner: Arc::new(Inner {
                store,
                oidc: oidc.clone(),
                policies: config.policies.clone(),
                filter: FilterAuth::new(&config.filter_keys),
                reviewers: ReviewerAuth::new(methods, oidc),
                webhook,
                clock: config.clock.clone(),
                pending_ttl_secs: secs(config.pending_ttl_secs),
                approved_ttl_secs: secs(config.approved_ttl_secs),
                recheck: config.poll_recheck,
                stopping: watch::Sender::new(false),
            }),
        })
    }

    /// Waiting long-polls answer with the status they have, so a graceful stop
    /// does not wait for them and the filter can ask the next instance.
    pub fn begin_shutdown(&self) {
        self.inner.stopping.send_replace(true);
    }

    pub(crate) fn now(&self) -> i64 {
        self.inner.clock.now()
    }
}

/// The sign-in routes (`oidc`) see only the provider and the clock.
impl FromRef<AppState> for SignIn {
    fn from_ref(state: &AppState) -> SignIn {
        SignIn {
            oidc: state.inner.oidc.clone(),
            clock: state.inner.clock.clone(),
        }
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
        .route("/auth/login", get(oidc::login))
        .route("/auth/callback", get(oidc::callback))
        .route("/auth/me", get(oidc::me))
        .route("/auth/logout", post(oidc::logout))
        .route("/v1/approvals", post(create).get(list))
        .route("/v1/approvals/{id}", get(poll))
        .route("/v1/approvals/{id}/use", post(use_approval))
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
) -> Result<Json<ApprovalReply>, ApiError> {
    state.inner.filter.check(&headers)?;
    let req: NewApproval = parse(body)?;
    validate(&req)?;
    let id = new_id("apr")?;
    let ttl = state.inner.pending_ttl_secs;
    let now = state.now();
    let created = state.inner.store.create(req, id, now, ttl).await?;
    let a = created.approval();
    match &created {
        Created::New(a) => {
            tracing::info!(approval = %a.id, sub = %a.identity.sub, rule = %a.rule,
                method = %a.method, authority = %a.authority, path = %a.path, "pending");
            if let Some(w) = &state.inner.webhook {
                w.notify(a, now);
            }
        }
        Created::Existing(a) => tracing::debug!(approval = %a.id, "same request, still pending"),
        Created::Consumed(a) => {
            tracing::info!(approval = %a.id, "one-time approval used by a repeated request")
        }
        Created::Approved(a) => {
            tracing::debug!(approval = %a.id, "one-time approval offered to a repeated request")
        }
        Created::Granted(a) => tracing::info!(approval = %a.id, grant = ?a.grant_id,
            sub = %a.identity.sub, rule = %a.rule, "approved by a time-bound grant"),
    }
    let mut reply = filter_reply(a, now);
    reply.confirm = matches!(created, Created::Approved(_));
    Ok(Json(reply))
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct WaitQuery {
    wait: Option<u64>,
    /// The filter uses an approved one-time approval itself (`POST …/use`):
    /// this poll leaves it unused.
    #[serde(default)]
    confirm: bool,
}

async fn poll(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    query: Result<Query<WaitQuery>, QueryRejection>,
) -> Result<Json<ApprovalReply>, ApiError> {
    state.inner.filter.check(&headers)?;
    let id = path_id(id)?;
    let Query(q) = query.map_err(|e| ApiError::InvalidRequest(e.body_text()))?;
    let wait = Duration::from_secs(q.wait.unwrap_or(0).min(MAX_WAIT_SECS));
    let deadline = Instant::now() + wait;
    let mut changes = state.inner.store.changes();
    let mut stopping = state.inner.stopping.subscribe();
    loop {
        let now = state.now();
        let a = if q.confirm {
            let a = state.inner.store.get(&id, now).await?;
            if a.status == Status::Approved && a.consumed_at.is_some() {
                return Err(ApiError::Consumed(a.id));
            }
            a
        } else {
            state.inner.store.poll(&id, now).await?
        };
        let remaining = deadline.saturating_duration_since(Instant::now());
        if a.status != Status::Pending || remaining.is_zero() || *stopping.borrow_and_update() {
            let mut reply = filter_reply(&a, now);
            if a.status == Status::Approved {
                // Unused when the filter confirms: a reply that reaches no
                // one (the agent left) then costs nothing.
                reply.confirm = q.confirm;
                if !q.confirm {
                    tracing::info!(approval = %a.id, "approval used by the held request");
                }
            }
            return Ok(Json(reply));
        }
        // Wake on a vote on this approval, at expiry, or at the deadline.
        let to_expiry = Duration::from_secs(u64::try_from(a.expires_at - now).unwrap_or(0))
            .max(Duration::from_millis(250));
        let nap = remaining.min(to_expiry).min(state.inner.recheck);
        let this = async {
            loop {
                match changes.recv().await {
                    Ok(changed) if *changed != *id && &*changed != ANY_CHANGE => continue,
                    Ok(_) | Err(RecvError::Lagged(_)) => return,
                    Err(RecvError::Closed) => std::future::pending::<()>().await,
                }
            }
        };
        tokio::select! {
            _ = this => {}
            _ = tokio::time::sleep(nap) => {}
            _ = stopping.changed() => {}
        }
    }
}

/// `POST /v1/approvals/{id}/use`: the held request is about to pass on this
/// one-time approval (a filter that confirms). `200` once; `410` after.
async fn use_approval(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
) -> Result<Json<ApprovalReply>, ApiError> {
    state.inner.filter.check(&headers)?;
    let id = path_id(id)?;
    let now = state.now();
    let a = state.inner.store.use_once(&id, now).await?;
    tracing::info!(approval = %a.id, "approval used by the held request");
    Ok(Json(filter_reply(&a, now)))
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
    let _reviewer = state
        .inner
        .reviewers
        .authenticate(&headers, false, state.now())?;
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
    let now = state.now();
    let rows = state.inner.store.list(status, now, limit).await?;
    let items: Vec<ReviewItem> = rows
        .into_iter()
        .map(|a| review_item(&state, a, now))
        .collect();
    Ok(Json(json!({ "approvals": items, "now": now })))
}

async fn approve(
    State(state): State<AppState>,
    headers: HeaderMap,
    id: Result<Path<String>, PathRejection>,
    body: Result<Bytes, BytesRejection>,
) -> Result<Json<ReviewItem>, ApiError> {
    let reviewer = state
        .inner
        .reviewers
        .authenticate(&headers, true, state.now())?;
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
    let reviewer = state
        .inner
        .reviewers
        .authenticate(&headers, true, state.now())?;
    let id = path_id(id)?;
    let body: DenyBody = parse(body)?;
    let reason = clean_reason(body.reason)?;
    decide(state, reviewer, id, Decision::Deny, reason).await
}

/// A reviewer's view of one approval, with what its rule's policy asks.
/// One entry of the reviewer list.
#[derive(Debug, Clone, Serialize)]
pub struct ReviewItem {
    pub id: String,
    pub request_id: String,
    pub status: Status,
    pub identity: Identity,
    pub rule: String,
    pub method: String,
    pub authority: String,
    pub path: String,
    pub preview: String,
    pub created_at: i64,
    pub age_secs: i64,
    pub expires_at: i64,
    pub decided_at: Option<i64>,
    pub reviewer: Option<String>,
    pub reason: Option<String>,
    pub grant: Option<GrantKind>,
    pub consumed: bool,
    /// The headers that reach the upstream (sensitive values masked by the filter).
    pub headers: Vec<Header>,
    /// Every reviewer's decision so far.
    pub votes: Vec<Vote>,
    /// What the rule's policy asks (set by the API).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub policy: Option<PolicyView>,
}

impl ReviewItem {
    pub fn from(a: Approval, now: i64) -> ReviewItem {
        ReviewItem {
            age_secs: (now - a.created_at).max(0),
            consumed: a.consumed_at.is_some(),
            id: a.id,
            request_id: a.request_id,
            status: a.status,
            identity: a.identity,
            rule: a.rule,
            method: a.method,
            authority: a.authority,
            path: a.path,
            preview: a.preview,
            created_at: a.created_at,
            expires_at: a.expires_at,
            decided_at: a.decided_at,
            reviewer: a.reviewer,
            reason: a.reason,
            grant: a.grant,
            headers: a.headers,
            votes: a.votes,
            policy: None,
        }
    }
}

fn review_item(state: &AppState, a: Approval, now: i64) -> ReviewItem {
    let policy = state.inner.policies.for_rule(&a.rule);
    let mut item = ReviewItem::from(a, now);
    item.policy = Some(policy);
    item
}

async fn decide(
    state: AppState,
    reviewer: Reviewer,
    id: String,
    decision: Decision,
    reason: Option<String>,
) -> Result<Json<ReviewItem>, ApiError> {
    let grant_id = new_id("grt")?;
    let now = state.now();
    // The rule never changes: the policy read here is the one that applies.
    let current = state.inner.store.get(&id, now).await?;
    let policy = state.inner.policies.for_rule(&current.rule);
    policy.check(&reviewer, &decision)?;
    let ballot = Ballot {
        reviewer: reviewer.name.clone(),
        decision,
        reason,
        approvals_needed: policy.approvals,
        approved_ttl_secs: state.inner.approved_ttl_secs,
    };
    let a = state.inner.store.decide(&id, ballot, grant_id, now).await?;
    tracing::info!(approval = %a.id, request_id = %a.request_id, status = a.status.as_str(),
        reviewer = %reviewer.name, votes = a.votes.len(), grant = ?a.grant, "decided");
    Ok(Json(review_item(&state, a, now)))
}
