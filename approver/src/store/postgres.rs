//! Postgres storage, for replicas that share state.
//!
//! Each operation is one transaction on a pooled connection (READ COMMITTED):
//! - `create` takes a transaction-scoped advisory lock on (subject, issuer,
//!   rule), so two replicas never create two pending approvals for one request;
//! - every change to one approval first locks its row (`SELECT … FOR UPDATE`),
//!   so "use a one-time approval" and "decide if pending" happen once, whichever
//!   replica asks first, and the others see the result;
//! - a vote runs `pg_notify`, delivered on commit to every replica's
//!   `LISTEN` connection, which wakes that replica's long-polls.
//!
//! Migrations are versioned in `tg_schema_migrations` and applied at start
//! under a session advisory lock, so replicas starting together migrate once.

use std::sync::Weak;
use std::time::Duration;

use anyhow::{bail, Context};
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use futures_util::StreamExt;
use std::sync::Arc;

use tokio::sync::{broadcast, mpsc, oneshot};
use tokio_postgres::{AsyncMessage, NoTls, Row};

use super::sqlite::to_json;
use super::vote::{self, Ballot};
use super::{Created, ANY_CHANGE};
use crate::error::ApiError;
use crate::model::{Approval, GrantKind, Identity, NewApproval, Status};

/// Version N is reached by running `MIGRATIONS[N-1]`.
const MIGRATIONS: &[&str] = &[V1];

const V1: &str = "
CREATE TABLE approvals (
    seq          BIGSERIAL NOT NULL,
    id           TEXT PRIMARY KEY,
    request_id   TEXT NOT NULL,
    fingerprint  TEXT NOT NULL,
    sub          TEXT NOT NULL,
    iss          TEXT NOT NULL,
    groups_json  TEXT NOT NULL,
    rule         TEXT NOT NULL,
    method       TEXT NOT NULL,
    authority    TEXT NOT NULL,
    path         TEXT NOT NULL,
    preview      TEXT NOT NULL,
    status       TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    created_at   BIGINT NOT NULL,
    expires_at   BIGINT NOT NULL,
    decided_at   BIGINT,
    reviewer     TEXT,
    reason       TEXT,
    grant_kind   TEXT CHECK (grant_kind IN ('once', 'ttl', 'grant')),
    grant_id     TEXT,
    consumed_at  BIGINT,
    votes_json   TEXT NOT NULL DEFAULT '[]',
    headers_json TEXT NOT NULL DEFAULT '[]'
);
CREATE INDEX approvals_match ON approvals (fingerprint, sub, iss, rule, status);
CREATE INDEX approvals_status ON approvals (status, created_at);
CREATE INDEX approvals_due ON approvals (expires_at) WHERE status IN ('pending', 'approved');
CREATE TABLE grants (
    id          TEXT PRIMARY KEY,
    sub         TEXT NOT NULL,
    iss         TEXT NOT NULL,
    rule        TEXT NOT NULL,
    reviewer    TEXT NOT NULL,
    reason      TEXT,
    approval_id TEXT NOT NULL,
    created_at  BIGINT NOT NULL,
    expires_at  BIGINT NOT NULL
);
CREATE INDEX grants_match ON grants (sub, iss, rule, expires_at);
";

/// How long `open` waits for its `LISTEN` connection.
const LISTEN_START_TIMEOUT: Duration = Duration::from_secs(10);

/// The channel every replica listens on.
const CHANNEL: &str = "tg_approver_changes";
/// Key of the session advisory lock held while migrating.
const MIGRATION_LOCK: i64 = 0x7467_6170_7072_6d31; // "tgapprm1"
/// The most pooled connections per replica.
const POOL_SIZE: usize = 16;

const COLUMNS: &str = "id, request_id, fingerprint, sub, iss, groups_json, rule, method, \
    authority, path, preview, status, created_at, expires_at, decided_at, reviewer, reason, \
    grant_kind, grant_id, consumed_at, votes_json, headers_json";

#[derive(Clone)]
pub struct Postgres {
    pool: Pool,
}

/// `postgres://user:secret@host/db` → `postgres://user:***@host/db`, for logs.
pub fn redact(url: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return "postgres://…".into();
    };
    match rest.rsplit_once('@') {
        Some((userinfo, host)) => {
            let user = userinfo.split(':').next().unwrap_or("");
            format!("{scheme}://{user}:***@{host}")
        }
        None => url.to_string(),
    }
}

fn db_err(e: tokio_postgres::Error) -> ApiError {
    ApiError::Internal(anyhow::Error::new(e).context("postgres"))
}

fn pool_err(e: deadpool_postgres::PoolError) -> ApiError {
    ApiError::Internal(anyhow::Error::new(e).context("postgres pool"))
}

impl Postgres {
    /// Connects, migrates, and starts listening for other replicas' votes
    /// (each one's approval id is sent on `changes` while the store lives).
    /// Returns once the `LISTEN` is in place, so no vote made after `open`
    /// goes unheard; a replica that cannot listen does not start.
    pub async fn open(
        url: &str,
        changes: Weak<broadcast::Sender<Arc<str>>>,
    ) -> anyhow::Result<Postgres> {
        let config: tokio_postgres::Config = url
            .parse()
            .with_context(|| format!("parsing the database URL {}", redact(url)))?;
        migrate(&config)
            .await
            .with_context(|| format!("migrating {}", redact(url)))?;
        let manager = Manager::from_config(
            config.clone(),
            NoTls,
            ManagerConfig {
                recycling_method: RecyclingMethod::Fast,
            },
        );
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(Duration::from_secs(10)))
            .create_timeout(Some(Duration::from_secs(5)))
            .build()
            .context("building the connection pool")?;
        let (listening, ready) = oneshot::channel();
        tokio::spawn(listen(config, changes, listening));
        match tokio::time::timeout(LISTEN_START_TIMEOUT, ready).await {
            Ok(Ok(())) => Ok(Postgres { pool }),
            _ => bail!(
                "no LISTEN on {} within {} s: this replica would not hear other replicas' votes",
                redact(url),
                LISTEN_START_TIMEOUT.as_secs()
            ),
        }
    }

    pub async fn create(
        &self,
        req: &NewApproval,
        id: &str,
        now: i64,
        pending_ttl_secs: i64,
    ) -> Result<Created, ApiError> {
        let mut client = self.pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(db_err)?;
        let ident = &req.identity;
        let key = format!("{}\n{}\n{}", ident.sub, ident.iss, req.rule);
        tx.execute(
            "SELECT pg_advisory_xact_lock(hashtextextended($1, 17))",
            &[&key],
        )
        .await
        .map_err(db_err)?;

        // 1. A time-bound grant for this identity and rule.
        let grant = tx
            .query_opt(
                "SELECT id, reviewer, reason, expires_at FROM grants
                 WHERE sub = $1 AND iss = $2 AND rule = $3 AND expires_at > $4
                 ORDER BY expires_at DESC LIMIT 1",
                &[&ident.sub, &ident.iss, &req.rule, &now],
            )
            .await
            .map_err(db_err)?;
        if let Some(g) = grant {
            let grant_id: String = g.try_get(0).map_err(db_err)?;
            let reviewer: String = g.try_get(1).map_err(db_err)?;
            let reason: Option<String> = g.try_get(2).map_err(db_err)?;
            let until: i64 = g.try_get(3).map_err(db_err)?;
            let a = insert(
                &tx,
                req,
                id,
                Status::Approved,
                now,
                until,
                Decided {
                    reviewer: Some(reviewer),
                    reason,
                    grant: Some(GrantKind::Grant),
                    grant_id: Some(grant_id),
                    consumed_at: Some(now),
                },
            )
            .await?;
            tx.commit().await.map_err(db_err)?;
            return Ok(Created::Granted(a));
        }

        // 2. An approved one-time approval of the same request, not used yet:
        //    used here, unless a poll on any replica used it first; left
        //    unused for a filter that confirms (it uses it with `use_once`).
        let set = if req.confirm {
            "consumed_at = consumed_at"
        } else {
            "consumed_at = $5"
        };
        let consumed = tx
            .query_opt(
                &format!(
                    "UPDATE approvals SET {set}
                     WHERE id = (SELECT id FROM approvals
                                 WHERE fingerprint = $1 AND sub = $2 AND iss = $3 AND rule = $4
                                   AND status = 'approved' AND consumed_at IS NULL
                                   AND expires_at > $5
                                 ORDER BY decided_at ASC LIMIT 1 FOR UPDATE)
                       AND consumed_at IS NULL
                     RETURNING {COLUMNS}"
                ),
                &[&req.fingerprint, &ident.sub, &ident.iss, &req.rule, &now],
            )
            .await
            .map_err(db_err)?;
        if let Some(row) = consumed {
            let a = from_row(&row)?;
            tx.commit().await.map_err(db_err)?;
            return Ok(if req.confirm {
                Created::Approved(a)
            } else {
                Created::Consumed(a)
            });
        }

        // 3. A pending approval of the same request.
        let pending = tx
            .query_opt(
                &format!(
                    "SELECT {COLUMNS} FROM approvals
                     WHERE fingerprint = $1 AND sub = $2 AND iss = $3 AND rule = $4
                       AND status = 'pending' AND expires_at > $5
                     ORDER BY created_at DESC, seq DESC LIMIT 1"
                ),
                &[&req.fingerprint, &ident.sub, &ident.iss, &req.rule, &now],
            )
            .await
            .map_err(db_err)?;
        if let Some(row) = pending {
            let a = from_row(&row)?;
            tx.commit().await.map_err(db_err)?;
            return Ok(Created::Existing(a));
        }

        // 4. A new pending approval.
        let a = insert(
            &tx,
            req,
            id,
            Status::Pending,
            now,
            now.saturating_add(pending_ttl_secs),
            Decided::default(),
        )
        .await?;
        tx.commit().await.map_err(db_err)?;
        Ok(Created::New(a))
    }

    pub async fn poll(&self, id: &str, now: i64) -> Result<Approval, ApiError> {
        let mut client = self.pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(db_err)?;
        let a = lock(&tx, id, now).await?;
        if a.status == Status::Approved {
            if a.consumed_at.is_some() {
                return Err(ApiError::Consumed(a.id));
            }
            tx.execute(
                "UPDATE approvals SET consumed_at = $2 WHERE id = $1",
                &[&id, &now],
            )
            .await
            .map_err(db_err)?;
        }
        tx.commit().await.map_err(db_err)?;
        Ok(a)
    }

    pub async fn use_once(&self, id: &str, now: i64) -> Result<Approval, ApiError> {
        let mut client = self.pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(db_err)?;
        let a = lock(&tx, id, now).await?;
        super::usable(&a)?;
        let row = tx
            .query_one(
                &format!("UPDATE approvals SET consumed_at = $2 WHERE id = $1 RETURNING {COLUMNS}"),
                &[&id, &now],
            )
            .await
            .map_err(db_err)?;
        let a = from_row(&row)?;
        tx.commit().await.map_err(db_err)?;
        Ok(a)
    }

    pub async fn decide(
        &self,
        id: &str,
        ballot: &Ballot,
        grant_id: String,
        now: i64,
    ) -> Result<Approval, ApiError> {
        let mut client = self.pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(db_err)?;
        let a = lock(&tx, id, now).await?;
        let out = vote::apply(&a, ballot, now)?;
        let votes = to_json(&out.votes)?;
        match &out.decided {
            None => {
                tx.execute(
                    "UPDATE approvals SET votes_json = $2 WHERE id = $1",
                    &[&id, &votes],
                )
                .await
                .map_err(db_err)?;
            }
            Some(d) => {
                let grant_id = d.grant_until.map(|_| grant_id);
                if let (Some(gid), Some(until)) = (&grant_id, d.grant_until) {
                    tx.execute(
                        "INSERT INTO grants (id, sub, iss, rule, reviewer, reason, approval_id,
                                             created_at, expires_at)
                         VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
                        &[
                            gid,
                            &a.identity.sub,
                            &a.identity.iss,
                            &a.rule,
                            &d.reviewer,
                            &d.reason,
                            &a.id,
                            &now,
                            &until,
                        ],
                    )
                    .await
                    .map_err(db_err)?;
                }
                tx.execute(
                    "UPDATE approvals SET status = $2, decided_at = $3, reviewer = $4, reason = $5,
                            grant_kind = $6, grant_id = $7, expires_at = $8, votes_json = $9
                     WHERE id = $1",
                    &[
                        &id,
                        &out.status.as_str(),
                        &now,
                        &d.reviewer,
                        &d.reason,
                        &d.grant.map(GrantKind::as_str),
                        &grant_id,
                        &out.expires_at,
                        &votes,
                    ],
                )
                .await
                .map_err(db_err)?;
            }
        }
        // Delivered to every replica's listener when this commits.
        tx.execute("SELECT pg_notify($1, $2)", &[&CHANNEL, &id])
            .await
            .map_err(db_err)?;
        let a = get_row(&tx, id).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(a)
    }

    pub async fn list(
        &self,
        status: Option<Status>,
        now: i64,
        limit: u32,
    ) -> Result<Vec<Approval>, ApiError> {
        let client = self.pool.get().await.map_err(pool_err)?;
        // Rows another transaction holds are left to it (it expires them
        // itself): no waiting, no deadlock.
        client
            .execute(
                "UPDATE approvals SET status = 'expired'
                 WHERE id IN (SELECT id FROM approvals
                              WHERE expires_at <= $1
                                AND (status = 'pending'
                                     OR (status = 'approved' AND consumed_at IS NULL))
                              FOR UPDATE SKIP LOCKED)",
                &[&now],
            )
            .await
            .map_err(db_err)?;
        let status = status.map(Status::as_str);
        let limit = i64::from(limit);
        let rows = client
            .query(
                &format!(
                    "SELECT {COLUMNS} FROM approvals WHERE ($1::TEXT IS NULL OR status = $1)
                     ORDER BY created_at DESC, seq DESC LIMIT $2"
                ),
                &[&status, &limit],
            )
            .await
            .map_err(db_err)?;
        rows.iter().map(from_row).collect()
    }

    pub async fn get(&self, id: &str, now: i64) -> Result<Approval, ApiError> {
        let mut client = self.pool.get().await.map_err(pool_err)?;
        let tx = client.transaction().await.map_err(db_err)?;
        let a = lock(&tx, id, now).await?;
        tx.commit().await.map_err(db_err)?;
        Ok(a)
    }
}

/// Locks one approval's row and expires it if it is due.
async fn lock(
    tx: &tokio_postgres::Transaction<'_>,
    id: &str,
    now: i64,
) -> Result<Approval, ApiError> {
    let row = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM approvals WHERE id = $1 FOR UPDATE"),
            &[&id],
        )
        .await
        .map_err(db_err)?
        .ok_or_else(|| ApiError::NotFound(id.to_string()))?;
    let mut a = from_row(&row)?;
    if vote::is_due(&a, now) {
        tx.execute(
            "UPDATE approvals SET status = 'expired' WHERE id = $1",
            &[&id],
        )
        .await
        .map_err(db_err)?;
        a.status = Status::Expired;
    }
    Ok(a)
}

async fn get_row(tx: &tokio_postgres::Transaction<'_>, id: &str) -> Result<Approval, ApiError> {
    let row = tx
        .query_opt(
            &format!("SELECT {COLUMNS} FROM approvals WHERE id = $1"),
            &[&id],
        )
        .await
        .map_err(db_err)?
        .ok_or_else(|| ApiError::NotFound(id.to_string()))?;
    from_row(&row)
}

/// The decision fields of a row inserted already decided (by a grant).
#[derive(Default)]
struct Decided {
    reviewer: Option<String>,
    reason: Option<String>,
    grant: Option<GrantKind>,
    grant_id: Option<String>,
    consumed_at: Option<i64>,
}

async fn insert(
    tx: &tokio_postgres::Transaction<'_>,
    req: &NewApproval,
    id: &str,
    status: Status,
    now: i64,
    expires_at: i64,
    d: Decided,
) -> Result<Approval, ApiError> {
    let groups = to_json(&req.identity.groups)?;
    let headers = to_json(&req.headers)?;
    let decided_at = d.reviewer.as_ref().map(|_| now);
    let row = tx
        .query_one(
            &format!(
                "INSERT INTO approvals ({COLUMNS}) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9,
                 $10, $11, $12, $13, $14, $15, $16, $17, $18, $19, $20, '[]', $21)
                 RETURNING {COLUMNS}"
            ),
            &[
                &id,
                &req.request_id,
                &req.fingerprint,
                &req.identity.sub,
                &req.identity.iss,
                &groups,
                &req.rule,
                &req.method,
                &req.authority,
                &req.path,
                &req.preview,
                &status.as_str(),
                &now,
                &expires_at,
                &decided_at,
                &d.reviewer,
                &d.reason,
                &d.grant.map(GrantKind::as_str),
                &d.grant_id,
                &d.consumed_at,
                &headers,
            ],
        )
        .await
        .map_err(db_err)?;
    from_row(&row)
}

fn from_row(r: &Row) -> Result<Approval, ApiError> {
    let bad = |what: &str| ApiError::Internal(anyhow::anyhow!("invalid {what} in the database"));
    let groups_json: String = r.try_get(5).map_err(db_err)?;
    let status: String = r.try_get(11).map_err(db_err)?;
    let grant: Option<String> = r.try_get(17).map_err(db_err)?;
    let votes_json: String = r.try_get(20).map_err(db_err)?;
    let headers_json: String = r.try_get(21).map_err(db_err)?;
    Ok(Approval {
        id: r.try_get(0).map_err(db_err)?,
        request_id: r.try_get(1).map_err(db_err)?,
        fingerprint: r.try_get(2).map_err(db_err)?,
        identity: Identity {
            sub: r.try_get(3).map_err(db_err)?,
            iss: r.try_get(4).map_err(db_err)?,
            groups: serde_json::from_str(&groups_json).map_err(|_| bad("groups_json"))?,
        },
        rule: r.try_get(6).map_err(db_err)?,
        method: r.try_get(7).map_err(db_err)?,
        authority: r.try_get(8).map_err(db_err)?,
        path: r.try_get(9).map_err(db_err)?,
        preview: r.try_get(10).map_err(db_err)?,
        status: Status::parse(&status).ok_or_else(|| bad("status"))?,
        created_at: r.try_get(12).map_err(db_err)?,
        expires_at: r.try_get(13).map_err(db_err)?,
        decided_at: r.try_get(14).map_err(db_err)?,
        reviewer: r.try_get(15).map_err(db_err)?,
        reason: r.try_get(16).map_err(db_err)?,
        grant: match grant {
            None => None,
            Some(g) => Some(GrantKind::parse(&g).ok_or_else(|| bad("grant_kind"))?),
        },
        grant_id: r.try_get(18).map_err(db_err)?,
        consumed_at: r.try_get(19).map_err(db_err)?,
        votes: serde_json::from_str(&votes_json).map_err(|_| bad("votes_json"))?,
        headers: serde_json::from_str(&headers_json).map_err(|_| bad("headers_json"))?,
    })
}

/// Applies the migrations this database lacks, one transaction each, under a
/// session advisory lock (replicas starting together wait for each other).
async fn migrate(config: &tokio_postgres::Config) -> anyhow::Result<()> {
    let (mut client, conn) = config.connect(NoTls).await.context("connecting")?;
    let driver = tokio::spawn(conn);
    let result: anyhow::Result<()> = async {
        client
            .execute("SELECT pg_advisory_lock($1)", &[&MIGRATION_LOCK])
            .await?;
        client
            .batch_execute(
                "CREATE TABLE IF NOT EXISTS tg_schema_migrations (
                     version    BIGINT PRIMARY KEY,
                     applied_at TIMESTAMPTZ NOT NULL DEFAULT now())",
            )
            .await?;
        let row = client
            .query_one(
                "SELECT COALESCE(MAX(version), 0) FROM tg_schema_migrations",
                &[],
            )
            .await?;
        let version: i64 = row.try_get(0)?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            bail!("the database has schema version {version}; this build knows {known}");
        }
        for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
            let v = i as i64 + 1;
            let tx = client.transaction().await?;
            tx.batch_execute(sql)
                .await
                .with_context(|| format!("schema version {v}"))?;
            tx.execute(
                "INSERT INTO tg_schema_migrations (version) VALUES ($1)",
                &[&v],
            )
            .await?;
            tx.commit().await?;
            tracing::info!(version = v, "postgres schema migrated");
        }
        client
            .execute("SELECT pg_advisory_unlock($1)", &[&MIGRATION_LOCK])
            .await?;
        Ok(())
    }
    .await;
    drop(client);
    let _ = driver.await;
    result
}

/// Keeps a `LISTEN` connection open while the store lives, sending each
/// notice's approval id on `changes`; reconnects with backoff. After
/// (re)connecting it sends [`ANY_CHANGE`], so a vote made while it was away
/// is not missed. `listening` is told once, when the first `LISTEN` is in place.
async fn listen(
    config: tokio_postgres::Config,
    changes: Weak<broadcast::Sender<Arc<str>>>,
    listening: oneshot::Sender<()>,
) {
    let mut listening = Some(listening);
    let tick = |id: &str| match changes.upgrade() {
        Some(c) => {
            let _ = c.send(Arc::from(id));
            true
        }
        None => false,
    };
    let mut backoff = Duration::from_millis(100);
    loop {
        if changes.strong_count() == 0 {
            return;
        }
        match config.connect(NoTls).await {
            Ok((client, mut conn)) => {
                let (tx, mut rx) = mpsc::unbounded_channel();
                let driver = tokio::spawn(async move {
                    let mut messages = futures_util::stream::poll_fn(|cx| conn.poll_message(cx));
                    while let Some(m) = messages.next().await {
                        match m {
                            Ok(AsyncMessage::Notification(n)) => {
                                if tx.send(n.payload().to_string()).is_err() {
                                    return;
                                }
                            }
                            Ok(_) => {}
                            Err(e) => {
                                tracing::warn!(error = %e, "postgres listener connection failed");
                                return;
                            }
                        }
                    }
                });
                match client.batch_execute(&format!("LISTEN {CHANNEL}")).await {
                    Ok(()) => {
                        backoff = Duration::from_millis(100);
                        if !tick(ANY_CHANGE) {
                            driver.abort();
                            return;
                        }
                        if let Some(l) = listening.take() {
                            let _ = l.send(());
                        }
                        loop {
                            tokio::select! {
                                m = rx.recv() => match m {
                                    Some(id) => if !tick(&id) { driver.abort(); return; },
                                    None => break,
                                },
                                _ = tokio::time::sleep(Duration::from_secs(5)) => {
                                    if changes.strong_count() == 0 {
                                        driver.abort();
                                        return;
                                    }
                                }
                            }
                        }
                    }
                    Err(e) => tracing::warn!(error = %e, "postgres LISTEN failed"),
                }
                driver.abort();
            }
            Err(e) => tracing::warn!(error = %e, "postgres listener cannot connect"),
        }
        tokio::time::sleep(backoff).await;
        backoff = (backoff * 2).min(Duration::from_secs(5));
    }
}
