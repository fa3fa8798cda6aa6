//! SQLite storage, the embedded default: every approval and grant survives a
//! restart of the one process that owns the file.
//!
//! All state changes go through one connection behind a mutex, each in a
//! transaction, so "find or create", "consume once" and "decide if pending"
//! are atomic. Callers run these (short) calls on the blocking pool.
//! The schema is versioned with `PRAGMA user_version`; [`MIGRATIONS`] brings
//! an older file up to date in one transaction.

use std::path::Path;

use anyhow::{bail, Context};
use rusqlite::{params, Connection, OptionalExtension, Row, TransactionBehavior};

use super::vote::{self, Ballot};
use super::Created;
use crate::error::ApiError;
use crate::model::{Approval, GrantKind, Identity, NewApproval, Status};

/// Version N is reached by running `MIGRATIONS[N-1]`.
const MIGRATIONS: &[&str] = &[V1, V2];

const V1: &str = "
CREATE TABLE approvals (
    id          TEXT PRIMARY KEY,
    request_id  TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    sub         TEXT NOT NULL,
    iss         TEXT NOT NULL,
    groups_json TEXT NOT NULL,
    rule        TEXT NOT NULL,
    method      TEXT NOT NULL,
    authority   TEXT NOT NULL,
    path        TEXT NOT NULL,
    preview     TEXT NOT NULL,
    status      TEXT NOT NULL CHECK (status IN ('pending', 'approved', 'denied', 'expired')),
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL,
    decided_at  INTEGER,
    reviewer    TEXT,
    reason      TEXT,
    grant_kind  TEXT CHECK (grant_kind IN ('once', 'ttl', 'grant')),
    grant_id    TEXT,
    consumed_at INTEGER
);
CREATE INDEX approvals_match ON approvals (fingerprint, sub, iss, rule, status);
CREATE INDEX approvals_status ON approvals (status, created_at);
CREATE TABLE grants (
    id          TEXT PRIMARY KEY,
    sub         TEXT NOT NULL,
    iss         TEXT NOT NULL,
    rule        TEXT NOT NULL,
    reviewer    TEXT NOT NULL,
    reason      TEXT,
    approval_id TEXT NOT NULL,
    created_at  INTEGER NOT NULL,
    expires_at  INTEGER NOT NULL
);
CREATE INDEX grants_match ON grants (sub, iss, rule, expires_at);
";

/// Policies per rule: each reviewer's vote; the headers the reviewer sees.
const V2: &str = "
ALTER TABLE approvals ADD COLUMN votes_json TEXT NOT NULL DEFAULT '[]';
ALTER TABLE approvals ADD COLUMN headers_json TEXT NOT NULL DEFAULT '[]';
";

const COLUMNS: &str = "id, request_id, fingerprint, sub, iss, groups_json, rule, method, \
    authority, path, preview, status, created_at, expires_at, decided_at, reviewer, reason, \
    grant_kind, grant_id, consumed_at, votes_json, headers_json";

pub struct Sqlite {
    conn: Connection,
}

impl Sqlite {
    pub fn open(path: &Path) -> anyhow::Result<Sqlite> {
        let mut conn =
            Connection::open(path).with_context(|| format!("opening {}", path.display()))?;
        conn.pragma_update(None, "journal_mode", "WAL")?;
        conn.pragma_update(None, "synchronous", "FULL")?;
        conn.busy_timeout(std::time::Duration::from_secs(5))?;
        let version: i64 = conn.pragma_query_value(None, "user_version", |r| r.get(0))?;
        let known = MIGRATIONS.len() as i64;
        if version > known {
            bail!(
                "{} has schema version {version}; this build knows {known}",
                path.display()
            );
        }
        if version < known {
            let tx = conn.transaction_with_behavior(TransactionBehavior::Exclusive)?;
            for (i, sql) in MIGRATIONS.iter().enumerate().skip(version.max(0) as usize) {
                tx.execute_batch(sql)
                    .with_context(|| format!("migrating to schema version {}", i + 1))?;
            }
            tx.pragma_update(None, "user_version", known)?;
            tx.commit()?;
        }
        Ok(Sqlite { conn })
    }

    /// The filter's `POST /v1/approvals`.
    pub fn create(
        &mut self,
        req: &NewApproval,
        id: String,
        now: i64,
        pending_ttl_secs: i64,
    ) -> Result<Created, ApiError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        sweep(&tx, now)?;
        let ident = &req.identity;

        // 1. A time-bound grant for this identity and rule.
        let grant: Option<(String, String, Option<String>, i64)> = tx
            .query_row(
                "SELECT id, reviewer, reason, expires_at FROM grants
                 WHERE sub = ?1 AND iss = ?2 AND rule = ?3 AND expires_at > ?4
                 ORDER BY expires_at DESC LIMIT 1",
                params![ident.sub, ident.iss, req.rule, now],
                |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)),
            )
            .optional()?;
        if let Some((grant_id, reviewer, reason, grant_expires)) = grant {
            insert(
                &tx,
                req,
                &id,
                Status::Approved,
                now,
                grant_expires,
                Some(now),
                Some(&reviewer),
                reason.as_deref(),
                Some(GrantKind::Grant),
                Some(&grant_id),
                Some(now),
            )?;
            let a = get(&tx, &id)?.ok_or_else(|| ApiError::NotFound(id.clone()))?;
            tx.commit()?;
            return Ok(Created::Granted(a));
        }

        // 2. An approved one-time approval of the same request, not used yet.
        let approved: Option<String> = tx
            .query_row(
                "SELECT id FROM approvals
                 WHERE fingerprint = ?1 AND sub = ?2 AND iss = ?3 AND rule = ?4
                   AND status = 'approved' AND consumed_at IS NULL
                 ORDER BY decided_at ASC LIMIT 1",
                params![req.fingerprint, ident.sub, ident.iss, req.rule],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(existing) = approved {
            if req.confirm {
                // The filter uses it once the request is about to pass.
                let a = get(&tx, &existing)?.ok_or(ApiError::NotFound(existing))?;
                tx.commit()?;
                return Ok(Created::Approved(a));
            }
            tx.execute(
                "UPDATE approvals SET consumed_at = ?2 WHERE id = ?1",
                params![existing, now],
            )?;
            let a = get(&tx, &existing)?.ok_or(ApiError::NotFound(existing))?;
            tx.commit()?;
            return Ok(Created::Consumed(a));
        }

        // 3. A pending approval of the same request.
        let pending: Option<String> = tx
            .query_row(
                "SELECT id FROM approvals
                 WHERE fingerprint = ?1 AND sub = ?2 AND iss = ?3 AND rule = ?4
                   AND status = 'pending'
                 ORDER BY created_at DESC LIMIT 1",
                params![req.fingerprint, ident.sub, ident.iss, req.rule],
                |r| r.get(0),
            )
            .optional()?;
        if let Some(existing) = pending {
            let a = get(&tx, &existing)?.ok_or(ApiError::NotFound(existing))?;
            tx.commit()?;
            return Ok(Created::Existing(a));
        }

        // 4. A new pending approval.
        insert(
            &tx,
            req,
            &id,
            Status::Pending,
            now,
            now.saturating_add(pending_ttl_secs),
            None,
            None,
            None,
            None,
            None,
            None,
        )?;
        let a = get(&tx, &id)?.ok_or_else(|| ApiError::NotFound(id.clone()))?;
        tx.commit()?;
        Ok(Created::New(a))
    }

    /// The filter's `GET /v1/approvals/{id}`: an approved one-time approval is
    /// used by this call; asking again for a used one is `Consumed`.
    pub fn poll(&mut self, id: &str, now: i64) -> Result<Approval, ApiError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        sweep(&tx, now)?;
        let a = get(&tx, id)?.ok_or_else(|| ApiError::NotFound(id.to_string()))?;
        if a.status == Status::Approved {
            if a.consumed_at.is_some() {
                return Err(ApiError::Consumed(a.id));
            }
            tx.execute(
                "UPDATE approvals SET consumed_at = ?2 WHERE id = ?1",
                params![id, now],
            )?;
        }
        tx.commit()?;
        Ok(a)
    }

    /// Uses an approved one-time approval (a filter that confirms).
    pub fn use_once(&mut self, id: &str, now: i64) -> Result<Approval, ApiError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        sweep(&tx, now)?;
        let a = get(&tx, id)?.ok_or_else(|| ApiError::NotFound(id.to_string()))?;
        super::usable(&a)?;
        tx.execute(
            "UPDATE approvals SET consumed_at = ?2 WHERE id = ?1",
            params![id, now],
        )?;
        let a = get(&tx, id)?.ok_or_else(|| ApiError::NotFound(id.to_string()))?;
        tx.commit()?;
        Ok(a)
    }

    /// A reviewer's vote on a pending approval; decides it once the policy's
    /// approvals are in (see [`vote::apply`]).
    pub fn decide(
        &mut self,
        id: &str,
        ballot: &Ballot,
        grant_id: String,
        now: i64,
    ) -> Result<Approval, ApiError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        sweep(&tx, now)?;
        let a = get(&tx, id)?.ok_or_else(|| ApiError::NotFound(id.to_string()))?;
        let out = vote::apply(&a, ballot, now)?;
        let votes = to_json(&out.votes)?;
        match &out.decided {
            None => {
                tx.execute(
                    "UPDATE approvals SET votes_json = ?2 WHERE id = ?1 AND status = 'pending'",
                    params![id, votes],
                )?;
            }
            Some(d) => {
                let grant_id = d.grant_until.map(|_| grant_id);
                if let (Some(gid), Some(until)) = (&grant_id, d.grant_until) {
                    tx.execute(
                        "INSERT INTO grants (id, sub, iss, rule, reviewer, reason, approval_id,
                                             created_at, expires_at)
                         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9)",
                        params![
                            gid,
                            a.identity.sub,
                            a.identity.iss,
                            a.rule,
                            d.reviewer,
                            d.reason,
                            a.id,
                            now,
                            until
                        ],
                    )?;
                }
                tx.execute(
                    "UPDATE approvals SET status = ?2, decided_at = ?3, reviewer = ?4, reason = ?5,
                            grant_kind = ?6, grant_id = ?7, expires_at = ?8, votes_json = ?9
                     WHERE id = ?1 AND status = 'pending'",
                    params![
                        id,
                        out.status.as_str(),
                        now,
                        d.reviewer,
                        d.reason,
                        d.grant.map(GrantKind::as_str),
                        grant_id,
                        out.expires_at,
                        votes
                    ],
                )?;
            }
        }
        let a = get(&tx, id)?.ok_or_else(|| ApiError::NotFound(id.to_string()))?;
        tx.commit()?;
        Ok(a)
    }

    /// The reviewer list, newest first; `None` lists every status.
    pub fn list(
        &mut self,
        status: Option<Status>,
        now: i64,
        limit: u32,
    ) -> Result<Vec<Approval>, ApiError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        sweep(&tx, now)?;
        let sql = format!(
            "SELECT {COLUMNS} FROM approvals WHERE (?1 IS NULL OR status = ?1)
             ORDER BY created_at DESC, rowid DESC LIMIT ?2"
        );
        let rows = {
            let mut stmt = tx.prepare(&sql)?;
            let rows = stmt.query_map(params![status.map(Status::as_str), limit], from_row)?;
            rows.collect::<Result<Vec<_>, _>>()?
        };
        tx.commit()?;
        Ok(rows)
    }

    /// One approval, without side effects other than expiry.
    pub fn get(&mut self, id: &str, now: i64) -> Result<Approval, ApiError> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        sweep(&tx, now)?;
        let a = get(&tx, id)?.ok_or_else(|| ApiError::NotFound(id.to_string()))?;
        tx.commit()?;
        Ok(a)
    }
}

/// Pending approvals, and approved ones not used yet, past `expires_at` become
/// `expired`. Denied and used approvals keep their status.
fn sweep(conn: &Connection, now: i64) -> rusqlite::Result<usize> {
    conn.execute(
        "UPDATE approvals SET status = 'expired'
         WHERE expires_at <= ?1
           AND (status = 'pending' OR (status = 'approved' AND consumed_at IS NULL))",
        params![now],
    )
}

fn get(conn: &Connection, id: &str) -> rusqlite::Result<Option<Approval>> {
    conn.query_row(
        &format!("SELECT {COLUMNS} FROM approvals WHERE id = ?1"),
        params![id],
        from_row,
    )
    .optional()
}

#[allow(clippy::too_many_arguments)]
fn insert(
    conn: &Connection,
    req: &NewApproval,
    id: &str,
    status: Status,
    now: i64,
    expires_at: i64,
    decided_at: Option<i64>,
    reviewer: Option<&str>,
    reason: Option<&str>,
    grant: Option<GrantKind>,
    grant_id: Option<&str>,
    consumed_at: Option<i64>,
) -> Result<(), ApiError> {
    let groups = to_json(&req.identity.groups)?;
    let headers = to_json(&req.headers)?;
    conn.execute(
        &format!("INSERT INTO approvals ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, '[]', ?21)"),
        params![
            id,
            req.request_id,
            req.fingerprint,
            req.identity.sub,
            req.identity.iss,
            groups,
            req.rule,
            req.method,
            req.authority,
            req.path,
            req.preview,
            status.as_str(),
            now,
            expires_at,
            decided_at,
            reviewer,
            reason,
            grant.map(GrantKind::as_str),
            grant_id,
            consumed_at,
            headers
        ],
    )?;
    Ok(())
}

pub(crate) fn to_json<T: serde::Serialize + ?Sized>(v: &T) -> Result<String, ApiError> {
    serde_json::to_string(v).map_err(|e| ApiError::Internal(anyhow::Error::new(e)))
}

fn from_row(r: &Row<'_>) -> rusqlite::Result<Approval> {
    let bad = |i: usize, what: &str| {
        rusqlite::Error::FromSqlConversionFailure(
            i,
            rusqlite::types::Type::Text,
            format!("invalid {what} in the database").into(),
        )
    };
    let groups_json: String = r.get(5)?;
    let groups: Vec<String> =
        serde_json::from_str(&groups_json).map_err(|_| bad(5, "groups_json"))?;
    let votes_json: String = r.get(20)?;
    let headers_json: String = r.get(21)?;
    let status: String = r.get(11)?;
    let grant: Option<String> = r.get(17)?;
    Ok(Approval {
        id: r.get(0)?,
        request_id: r.get(1)?,
        fingerprint: r.get(2)?,
        identity: Identity {
            sub: r.get(3)?,
            iss: r.get(4)?,
            groups,
        },
        rule: r.get(6)?,
        method: r.get(7)?,
        authority: r.get(8)?,
        path: r.get(9)?,
        preview: r.get(10)?,
        status: Status::parse(&status).ok_or_else(|| bad(11, "status"))?,
        created_at: r.get(12)?,
        expires_at: r.get(13)?,
        decided_at: r.get(14)?,
        reviewer: r.get(15)?,
        reason: r.get(16)?,
        grant: match grant {
            None => None,
            Some(g) => Some(GrantKind::parse(&g).ok_or_else(|| bad(17, "grant_kind"))?),
        },
        grant_id: r.get(18)?,
        consumed_at: r.get(19)?,
        votes: serde_json::from_str(&votes_json).map_err(|_| bad(20, "votes_json"))?,
        headers: serde_json::from_str(&headers_json).map_err(|_| bad(21, "headers_json"))?,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_version_1_database_is_migrated_and_keeps_its_approvals() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("old.sqlite");
        {
            let conn = Connection::open(&path).unwrap();
            conn.execute_batch(V1).unwrap();
            conn.execute(
                "INSERT INTO approvals (id, request_id, fingerprint, sub, iss, groups_json, rule,
                    method, authority, path, preview, status, created_at, expires_at)
                 VALUES ('apr_old', 'r', 'f', 'agent', 'i', '[]', 'rule', 'POST', 'a', '/',
                    '', 'pending', 1, 100)",
                [],
            )
            .unwrap();
            conn.pragma_update(None, "user_version", 1).unwrap();
        }
        let mut s = Sqlite::open(&path).unwrap();
        let a = s.get("apr_old", 2).unwrap();
        assert_eq!(
            (a.status, a.votes.len(), a.headers.len()),
            (Status::Pending, 0, 0)
        );
        drop(s);
        // Opening again changes nothing; a newer file is refused.
        Sqlite::open(&path).unwrap();
        let conn = Connection::open(&path).unwrap();
        conn.pragma_update(None, "user_version", 99).unwrap();
        drop(conn);
        assert!(Sqlite::open(&path).is_err());
    }
}
