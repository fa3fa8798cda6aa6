//! Where approvals and grants live: SQLite for one process (the embedded
//! default), Postgres for replicas that share state.
//!
//! Both backends keep the same semantics, tested by one suite
//! (`tests/store.rs`):
//! - `create` finds or creates atomically: a time-bound grant approves at
//!   once; an approved, unused one-time approval of the same request is used
//!   by it (or, when the filter confirms, returned unused); a pending one is
//!   returned; else a new pending one.
//! - An approved one-time approval is used exactly once, whoever asks
//!   (`poll`, a repeated `create`, or `use_once` for a filter that
//!   confirms), on whatever replica.
//! - A reviewer's vote is applied by [`vote::apply`] with the row locked.
//! - Expiry is decided by the stored `expires_at` against the caller's clock.
//!
//! [`Store::changes`] carries the id of every approval a reviewer voted on,
//! here or (Postgres) on any replica, so the long-polls waiting for it wake
//! at once and the others sleep on.

mod postgres;
mod sqlite;
pub mod vote;

use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use tokio::sync::broadcast;

use crate::error::ApiError;
use crate::model::{Approval, NewApproval, Status};
pub use vote::Ballot;

/// Which database: a SQLite file, or a Postgres URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Database {
    Sqlite(PathBuf),
    Postgres(String),
}

impl Database {
    /// `postgres://…` or `postgresql://…` is Postgres; `sqlite:PATH` or a bare path is SQLite.
    pub fn from_url(url: &str) -> Database {
        if url.starts_with("postgres://") || url.starts_with("postgresql://") {
            Database::Postgres(url.to_string())
        } else {
            Database::Sqlite(PathBuf::from(url.strip_prefix("sqlite:").unwrap_or(url)))
        }
    }

    /// For logs: the path, or the URL without its password.
    pub fn describe(&self) -> String {
        match self {
            Database::Sqlite(p) => format!("sqlite:{}", p.display()),
            Database::Postgres(url) => postgres::redact(url),
        }
    }
}

/// What `create` did.
#[derive(Debug, Clone)]
pub enum Created {
    /// A new pending approval: the caller fires the webhook.
    New(Approval),
    /// A pending one with the same fingerprint already existed.
    Existing(Approval),
    /// An approved, unused one-time approval with the same fingerprint, now used.
    Consumed(Approval),
    /// The same, left unused: the filter confirms ([`NewApproval::confirm`])
    /// with [`Store::use_once`].
    Approved(Approval),
    /// An unexpired time-bound grant covered it: a new approval, approved and used.
    Granted(Approval),
}

impl Created {
    pub fn approval(&self) -> &Approval {
        match self {
            Created::New(a)
            | Created::Existing(a)
            | Created::Consumed(a)
            | Created::Approved(a)
            | Created::Granted(a) => a,
        }
    }
}

#[derive(Clone)]
enum Backend {
    Sqlite(Arc<Mutex<sqlite::Sqlite>>),
    Postgres(postgres::Postgres),
}

/// Sent on [`Store::changes`] when any approval may have changed (the
/// Postgres listener reconnected and may have missed notices).
pub const ANY_CHANGE: &str = "*";

/// How many change notices a slow long-poll may fall behind before it
/// rereads its approval anyway.
const CHANGES_CAPACITY: usize = 1024;

/// A handle on the store; clones share it.
#[derive(Clone)]
pub struct Store {
    backend: Backend,
    changes: Arc<broadcast::Sender<Arc<str>>>,
}

impl Store {
    /// Opens the database and brings its schema up to date.
    pub async fn open(db: &Database) -> anyhow::Result<Store> {
        let changes = Arc::new(broadcast::Sender::new(CHANGES_CAPACITY));
        let backend = match db {
            Database::Sqlite(path) => {
                let path = path.clone();
                let s = tokio::task::spawn_blocking(move || sqlite::Sqlite::open(&path)).await??;
                Backend::Sqlite(Arc::new(Mutex::new(s)))
            }
            Database::Postgres(url) => {
                Backend::Postgres(postgres::Postgres::open(url, Arc::downgrade(&changes)).await?)
            }
        };
        Ok(Store { backend, changes })
    }

    /// The ids of approvals voted on (on any replica sharing a Postgres),
    /// or [`ANY_CHANGE`].
    pub fn changes(&self) -> broadcast::Receiver<Arc<str>> {
        self.changes.subscribe()
    }

    /// The filter's `POST /v1/approvals`.
    pub async fn create(
        &self,
        req: NewApproval,
        id: String,
        now: i64,
        pending_ttl_secs: i64,
    ) -> Result<Created, ApiError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                sqlite_call(s, move |s| s.create(&req, id, now, pending_ttl_secs)).await
            }
            Backend::Postgres(p) => p.create(&req, &id, now, pending_ttl_secs).await,
        }
    }

    /// The filter's `GET /v1/approvals/{id}`: an approved one-time approval is
    /// used by this call; asking again for a used one is `Consumed`.
    pub async fn poll(&self, id: &str, now: i64) -> Result<Approval, ApiError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let id = id.to_string();
                sqlite_call(s, move |s| s.poll(&id, now)).await
            }
            Backend::Postgres(p) => p.poll(id, now).await,
        }
    }

    /// Uses an approved one-time approval for the request that now passes (a
    /// filter that confirms): `Consumed` if it was used already,
    /// `NotApproved` unless approved.
    pub async fn use_once(&self, id: &str, now: i64) -> Result<Approval, ApiError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let id = id.to_string();
                sqlite_call(s, move |s| s.use_once(&id, now)).await
            }
            Backend::Postgres(p) => p.use_once(id, now).await,
        }
    }

    /// A reviewer's vote; the approval as it is afterwards.
    pub async fn decide(
        &self,
        id: &str,
        ballot: Ballot,
        grant_id: String,
        now: i64,
    ) -> Result<Approval, ApiError> {
        let a = match &self.backend {
            Backend::Sqlite(s) => {
                let id = id.to_string();
                sqlite_call(s, move |s| s.decide(&id, &ballot, grant_id, now)).await?
            }
            Backend::Postgres(p) => p.decide(id, &ballot, grant_id, now).await?,
        };
        // No receiver is not an error: nobody is waiting.
        let _ = self.changes.send(Arc::from(a.id.as_str()));
        Ok(a)
    }

    /// The reviewer list, newest first; `None` lists every status.
    pub async fn list(
        &self,
        status: Option<Status>,
        now: i64,
        limit: u32,
    ) -> Result<Vec<Approval>, ApiError> {
        match &self.backend {
            Backend::Sqlite(s) => sqlite_call(s, move |s| s.list(status, now, limit)).await,
            Backend::Postgres(p) => p.list(status, now, limit).await,
        }
    }

    /// One approval, without side effects other than expiry.
    pub async fn get(&self, id: &str, now: i64) -> Result<Approval, ApiError> {
        match &self.backend {
            Backend::Sqlite(s) => {
                let id = id.to_string();
                sqlite_call(s, move |s| s.get(&id, now)).await
            }
            Backend::Postgres(p) => p.get(id, now).await,
        }
    }
}

/// Whether `a` can be used now by [`Store::use_once`]: approved and unused.
fn usable(a: &Approval) -> Result<(), ApiError> {
    match (a.status, a.consumed_at) {
        (Status::Approved, None) => Ok(()),
        (Status::Approved, Some(_)) => Err(ApiError::Consumed(a.id.clone())),
        (status, _) => Err(ApiError::NotApproved {
            id: a.id.clone(),
            status: status.as_str(),
        }),
    }
}

/// Runs a SQLite call on the blocking pool, holding the connection's lock.
async fn sqlite_call<T, F>(s: &Arc<Mutex<sqlite::Sqlite>>, f: F) -> Result<T, ApiError>
where
    T: Send + 'static,
    F: FnOnce(&mut sqlite::Sqlite) -> Result<T, ApiError> + Send + 'static,
{
    let s = s.clone();
    tokio::task::spawn_blocking(move || {
        let mut store = s
            .lock()
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("the store lock is poisoned")))?;
        f(&mut store)
    })
    .await
    .map_err(|e| ApiError::Internal(anyhow::Error::new(e)))?
}
