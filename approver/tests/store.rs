//! The store's semantics, one suite run on both backends: SQLite (a file in a
//! temp dir) and a real Postgres (see `common/postgres.rs`).

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

mod common;

use std::sync::Arc;

use transit_guard_approver::model::{Decision, GrantKind, Header, Identity, NewApproval, Status};
use transit_guard_approver::store::{Ballot, Created, Database, Store};
use transit_guard_approver::ApiError;

const T0: i64 = 1_800_000_000;
const PENDING_TTL: i64 = 600;
const APPROVED_TTL: i64 = 3600;

/// A database that can be opened more than once (a restart, a replica).
struct Db {
    db: Database,
    _dir: Option<tempfile::TempDir>,
}

impl Db {
    async fn sqlite() -> Db {
        let dir = tempfile::tempdir().unwrap();
        Db {
            db: Database::Sqlite(dir.path().join("a.sqlite")),
            _dir: Some(dir),
        }
    }

    async fn postgres() -> Db {
        Db {
            db: Database::Postgres(common::postgres::database().await),
            _dir: None,
        }
    }

    async fn open(&self) -> Store {
        Store::open(&self.db).await.unwrap()
    }
}

fn req(fp: &str, sub: &str, rule: &str) -> NewApproval {
    NewApproval {
        request_id: format!("req-{fp}"),
        fingerprint: fp.into(),
        identity: Identity {
            sub: sub.into(),
            iss: "https://idp.test".into(),
            groups: vec!["agents".into()],
        },
        rule: rule.into(),
        method: "POST".into(),
        authority: "api.internal".into(),
        path: "/customers/export".into(),
        preview: "{\"email\":\"[email]\"}".into(),
        headers: vec![Header {
            name: "authorization".into(),
            value: "[REDACTED]".into(),
        }],
        confirm: false,
    }
}

/// The same request from a filter that uses approvals itself.
fn confirming(fp: &str, sub: &str, rule: &str) -> NewApproval {
    NewApproval {
        confirm: true,
        ..req(fp, sub, rule)
    }
}

fn ballot(who: &str, decision: Decision, needed: u32) -> Ballot {
    Ballot {
        reviewer: who.into(),
        decision,
        reason: Some(format!("ok by {who}")),
        approvals_needed: needed,
        approved_ttl_secs: APPROVED_TTL,
    }
}

async fn create(s: &Store, r: &NewApproval, now: i64) -> Created {
    s.create(r.clone(), new_id(), now, PENDING_TTL)
        .await
        .unwrap()
}

fn new_id() -> String {
    use std::sync::atomic::{AtomicU64, Ordering};
    static N: AtomicU64 = AtomicU64::new(0);
    format!(
        "apr_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::SeqCst)
    )
}

async fn approve(
    s: &Store,
    id: &str,
    who: &str,
    d: Decision,
    now: i64,
) -> Result<transit_guard_approver::model::Approval, ApiError> {
    s.decide(id, ballot(who, d, 1), format!("grt_{id}_{who}"), now)
        .await
}

// ---- the scenarios ----------------------------------------------------------

async fn create_finds_or_creates(db: Db) {
    let s = db.open().await;
    let Created::New(a) = create(&s, &req("fp-1", "agent", "export"), T0).await else {
        panic!("not new")
    };
    assert_eq!(a.status, Status::Pending);
    assert_eq!(a.expires_at, T0 + PENDING_TTL);
    assert_eq!(a.headers[0].name, "authorization");
    assert_eq!(a.identity.groups, vec!["agents".to_string()]);
    let Created::Existing(b) = create(&s, &req("fp-1", "agent", "export"), T0 + 1).await else {
        panic!("not existing")
    };
    assert_eq!(a.id, b.id);
    for other in [
        req("fp-2", "agent", "export"),
        req("fp-1", "agent-2", "export"),
        req("fp-1", "agent", "other"),
    ] {
        assert!(matches!(create(&s, &other, T0 + 2).await, Created::New(_)));
    }
    let list = s.list(Some(Status::Pending), T0 + 3, 100).await.unwrap();
    assert_eq!(list.len(), 4);
    assert_eq!(list[3].id, a.id, "newest first");
    assert_eq!(
        s.list(Some(Status::Approved), T0 + 3, 100)
            .await
            .unwrap()
            .len(),
        0
    );
    assert_eq!(s.list(None, T0 + 3, 2).await.unwrap().len(), 2);
}

async fn a_one_time_approval_is_used_once(db: Db) {
    let s = db.open().await;
    let r = req("fp-1", "agent", "export");
    let id = create(&s, &r, T0).await.approval().id.clone();
    let a = approve(&s, &id, "bob", Decision::ApproveOnce, T0 + 5)
        .await
        .unwrap();
    assert_eq!(
        (a.status, a.grant),
        (Status::Approved, Some(GrantKind::Once))
    );
    assert_eq!(a.reviewer.as_deref(), Some("bob"));
    assert_eq!(a.expires_at, T0 + 5 + APPROVED_TTL);
    assert_eq!(a.votes.len(), 1);
    let p = s.poll(&id, T0 + 6).await.unwrap();
    assert_eq!(p.status, Status::Approved);
    assert!(matches!(
        s.poll(&id, T0 + 7).await,
        Err(ApiError::Consumed(_))
    ));
    // The same request again needs a new approval.
    let Created::New(again) = create(&s, &r, T0 + 8).await else {
        panic!("a used approval was used again")
    };
    assert_ne!(again.id, id);
}

async fn a_repeated_request_uses_an_approval_instead_of_the_poll(db: Db) {
    let s = db.open().await;
    let r = req("fp-1", "agent", "export");
    let id = create(&s, &r, T0).await.approval().id.clone();
    approve(&s, &id, "bob", Decision::ApproveOnce, T0 + 1)
        .await
        .unwrap();
    let Created::Consumed(c) = create(&s, &r, T0 + 2).await else {
        panic!("not consumed")
    };
    assert_eq!(c.id, id);
    assert!(matches!(
        s.poll(&id, T0 + 3).await,
        Err(ApiError::Consumed(_))
    ));
}

async fn deny_is_final(db: Db) {
    let s = db.open().await;
    let id = create(&s, &req("fp-1", "agent", "export"), T0)
        .await
        .approval()
        .id
        .clone();
    let a = approve(&s, &id, "alice", Decision::Deny, T0 + 1)
        .await
        .unwrap();
    assert_eq!(a.status, Status::Denied);
    assert_eq!(a.reason.as_deref(), Some("ok by alice"));
    assert_eq!(s.poll(&id, T0 + 2).await.unwrap().status, Status::Denied);
    assert_eq!(s.poll(&id, T0 + 3).await.unwrap().status, Status::Denied);
    assert!(matches!(
        approve(&s, &id, "bob", Decision::ApproveOnce, T0 + 4).await,
        Err(ApiError::NotPending { .. })
    ));
    assert!(matches!(
        approve(&s, "apr_missing", "bob", Decision::ApproveOnce, T0 + 4).await,
        Err(ApiError::NotFound(_))
    ));
}

async fn pending_and_unused_approvals_expire(db: Db) {
    let s = db.open().await;
    let r = req("fp-1", "agent", "export");
    let id = create(&s, &r, T0).await.approval().id.clone();
    assert_eq!(
        s.get(&id, T0 + PENDING_TTL - 1).await.unwrap().status,
        Status::Pending
    );
    assert_eq!(
        s.poll(&id, T0 + PENDING_TTL).await.unwrap().status,
        Status::Expired
    );
    assert!(matches!(
        approve(&s, &id, "bob", Decision::ApproveOnce, T0 + PENDING_TTL).await,
        Err(ApiError::NotPending { .. })
    ));
    let Created::New(b) = create(&s, &r, T0 + PENDING_TTL).await else {
        panic!("an expired approval was returned")
    };
    approve(&s, &b.id, "bob", Decision::ApproveOnce, T0 + PENDING_TTL)
        .await
        .unwrap();
    let late = T0 + PENDING_TTL + APPROVED_TTL;
    assert_eq!(s.poll(&b.id, late).await.unwrap().status, Status::Expired);
    assert!(matches!(create(&s, &r, late).await, Created::New(_)));
    // The list sweeps too.
    let c = create(&s, &req("fp-9", "agent", "export"), T0)
        .await
        .approval()
        .id
        .clone();
    let expired = s.list(Some(Status::Expired), late + 1, 100).await.unwrap();
    assert!(expired.iter().any(|a| a.id == c), "{expired:?}");
}

async fn a_time_bound_grant_covers_identity_and_rule_until_it_ends(db: Db) {
    let s = db.open().await;
    let id = create(&s, &req("fp-1", "agent", "export"), T0)
        .await
        .approval()
        .id
        .clone();
    let a = approve(&s, &id, "bob", Decision::ApproveFor { ttl_secs: 900 }, T0)
        .await
        .unwrap();
    assert_eq!(a.grant, Some(GrantKind::Ttl));
    assert_eq!(s.poll(&id, T0 + 1).await.unwrap().status, Status::Approved);
    let Created::Granted(g) = create(&s, &req("fp-2", "agent", "export"), T0 + 899).await else {
        panic!("the grant did not apply")
    };
    assert_eq!(
        (g.status, g.grant),
        (Status::Approved, Some(GrantKind::Grant))
    );
    assert_eq!(g.reviewer.as_deref(), Some("bob"));
    assert!(g.consumed_at.is_some());
    assert!(matches!(
        create(&s, &req("fp-3", "agent", "other"), T0 + 2).await,
        Created::New(_)
    ));
    assert!(matches!(
        create(&s, &req("fp-4", "agent-2", "export"), T0 + 2).await,
        Created::New(_)
    ));
    // Every replica (every store on this database) ends it at the same second.
    let other = db.open().await;
    assert!(matches!(
        create(&other, &req("fp-5", "agent", "export"), T0 + 899).await,
        Created::Granted(_)
    ));
    assert!(matches!(
        create(&other, &req("fp-6", "agent", "export"), T0 + 900).await,
        Created::New(_)
    ));
    assert!(matches!(
        create(&s, &req("fp-7", "agent", "export"), T0 + 900).await,
        Created::New(_)
    ));
}

async fn a_policy_of_two_needs_two_distinct_reviewers(db: Db) {
    let s = db.open().await;
    let id = create(&s, &req("fp-1", "agent", "db-write"), T0)
        .await
        .approval()
        .id
        .clone();
    let a = s
        .decide(
            &id,
            ballot("bob", Decision::ApproveOnce, 2),
            "g1".into(),
            T0 + 1,
        )
        .await
        .unwrap();
    assert_eq!(a.status, Status::Pending);
    assert_eq!(a.votes.len(), 1);
    // A pending approval with one vote is still pending for the filter.
    assert_eq!(s.poll(&id, T0 + 1).await.unwrap().status, Status::Pending);
    assert!(matches!(
        s.decide(
            &id,
            ballot("bob", Decision::ApproveOnce, 2),
            "g2".into(),
            T0 + 2
        )
        .await,
        Err(ApiError::AlreadyVoted(_))
    ));
    assert!(matches!(
        s.decide(
            &id,
            ballot("agent", Decision::ApproveOnce, 2),
            "g3".into(),
            T0 + 2
        )
        .await,
        Err(ApiError::SelfApproval(_))
    ));
    let a = s
        .decide(
            &id,
            ballot("carol", Decision::ApproveOnce, 2),
            "g4".into(),
            T0 + 3,
        )
        .await
        .unwrap();
    assert_eq!(a.status, Status::Approved);
    assert_eq!(a.reviewer.as_deref(), Some("bob, carol"));
    let who: Vec<&str> = a.votes.iter().map(|v| v.reviewer.as_str()).collect();
    assert_eq!(who, ["bob", "carol"]);
    // Decisions survive a reopen with every vote.
    drop(s);
    let s = db.open().await;
    let a = s.get(&id, T0 + 4).await.unwrap();
    assert_eq!(a.votes.len(), 2);
    assert_eq!(a.request_id, "req-fp-1");
}

async fn concurrent_consumers_use_an_approval_once(db: Db) {
    // Two stores on one database: two replicas.
    let stores = [db.open().await, db.open().await];
    let r = req("fp-1", "agent", "export");
    let id = create(&stores[0], &r, T0).await.approval().id.clone();
    approve(&stores[1], &id, "bob", Decision::ApproveOnce, T0 + 1)
        .await
        .unwrap();
    let mut tasks = Vec::new();
    for i in 0..24 {
        let s = stores[i % 2].clone();
        let id = id.clone();
        let r = r.clone();
        tasks.push(tokio::spawn(async move {
            if i % 3 == 0 {
                matches!(create(&s, &r, T0 + 2).await, Created::Consumed(_))
            } else {
                match s.poll(&id, T0 + 2).await {
                    Ok(a) => a.status == Status::Approved,
                    Err(ApiError::Consumed(_)) => false,
                    Err(e) => panic!("{e}"),
                }
            }
        }));
    }
    let mut passed = 0;
    for t in tasks {
        passed += usize::from(t.await.unwrap());
    }
    assert_eq!(
        passed, 1,
        "a one-time approval let {passed} requests through"
    );
}

async fn concurrent_creates_make_one_pending_approval(db: Db) {
    let stores = [db.open().await, db.open().await];
    let r = req("fp-1", "agent", "export");
    let tasks: Vec<_> = (0..16)
        .map(|i| {
            let s = stores[i % 2].clone();
            let r = r.clone();
            tokio::spawn(async move { create(&s, &r, T0).await.approval().id.clone() })
        })
        .collect();
    let mut ids = std::collections::BTreeSet::new();
    for t in tasks {
        ids.insert(t.await.unwrap());
    }
    assert_eq!(ids.len(), 1, "{ids:?}");
}

async fn a_vote_is_announced_to_every_store_on_the_database(db: Db) {
    let a = db.open().await;
    let b = db.open().await;
    let id = create(&a, &req("fp-1", "agent", "export"), T0)
        .await
        .approval()
        .id
        .clone();
    let mut here = a.changes();
    let mut there = b.changes();
    approve(&a, &id, "bob", Decision::ApproveOnce, T0)
        .await
        .unwrap();
    let got: Arc<str> = tokio::time::timeout(std::time::Duration::from_secs(10), here.recv())
        .await
        .expect("no change notice within 10 s")
        .unwrap();
    assert_eq!(&*got, id.as_str());
    if matches!(db.db, Database::Postgres(_)) {
        // The other replica hears of it through LISTEN/NOTIFY (`open`
        // returns only once its LISTEN is in place, so none is missed).
        let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
        loop {
            let got = tokio::time::timeout_at(deadline, there.recv())
                .await
                .expect("the other replica heard nothing within 10 s")
                .unwrap();
            if &*got == id.as_str() {
                break;
            }
        }
    }
}

/// No TLS to Postgres yet: a URL that asks for it is refused when the store
/// opens, never served in plain text.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_postgres_url_asking_for_tls_is_refused_not_served_in_plain_text() {
    let url = common::postgres::database().await;
    for mode in ["require", "verify-ca", "verify-full"] {
        let opened = Store::open(&Database::Postgres(format!("{url}?sslmode={mode}"))).await;
        let e = format!("{:#}", opened.err().expect("opened without TLS"));
        assert!(
            e.to_lowercase().contains("tls") || e.contains("sslmode"),
            "{mode}: {e}"
        );
    }
}

async fn a_confirming_filter_uses_an_approval_only_with_use_once(db: Db) {
    let s = db.open().await;
    let r = confirming("fp-1", "agent", "export");
    let id = create(&s, &r, T0).await.approval().id.clone();
    assert!(matches!(
        s.use_once(&id, T0 + 1).await,
        Err(ApiError::NotApproved {
            status: "pending",
            ..
        })
    ));
    approve(&s, &id, "bob", Decision::ApproveOnce, T0 + 2)
        .await
        .unwrap();
    // Answers that reach nobody (the agent left) use nothing: reading it,
    // and the retry's create, leave it approved and unused.
    let a = s.get(&id, T0 + 3).await.unwrap();
    assert_eq!((a.status, a.consumed_at), (Status::Approved, None));
    let Created::Approved(offered) = create(&s, &r, T0 + 4).await else {
        panic!("not offered")
    };
    assert_eq!(
        (offered.id.as_str(), offered.consumed_at),
        (id.as_str(), None)
    );
    let Created::Approved(_) = create(&s, &r, T0 + 5).await else {
        panic!("an offer is not a use")
    };
    // The request that passes uses it, once.
    let used = s.use_once(&id, T0 + 6).await.unwrap();
    assert_eq!(
        (used.status, used.consumed_at),
        (Status::Approved, Some(T0 + 6))
    );
    assert!(matches!(
        s.use_once(&id, T0 + 7).await,
        Err(ApiError::Consumed(_))
    ));
    assert!(matches!(
        s.poll(&id, T0 + 7).await,
        Err(ApiError::Consumed(_))
    ));
    let Created::New(again) = create(&s, &r, T0 + 8).await else {
        panic!("a used approval was offered again")
    };
    assert_ne!(again.id, id);
    // Denied, expired and unknown approvals are never used.
    let denied = again.id;
    approve(&s, &denied, "bob", Decision::Deny, T0 + 9)
        .await
        .unwrap();
    assert!(matches!(
        s.use_once(&denied, T0 + 10).await,
        Err(ApiError::NotApproved {
            status: "denied",
            ..
        })
    ));
    let late = create(&s, &confirming("fp-2", "agent", "export"), T0)
        .await
        .approval()
        .id
        .clone();
    approve(&s, &late, "bob", Decision::ApproveOnce, T0 + 1)
        .await
        .unwrap();
    assert!(matches!(
        s.use_once(&late, T0 + 1 + APPROVED_TTL).await,
        Err(ApiError::NotApproved {
            status: "expired",
            ..
        })
    ));
    assert!(matches!(
        s.use_once("apr_nope", T0).await,
        Err(ApiError::NotFound(_))
    ));
}

async fn concurrent_confirming_users_use_an_approval_once(db: Db) {
    let stores = [db.open().await, db.open().await];
    let r = confirming("fp-1", "agent", "export");
    let id = create(&stores[0], &r, T0).await.approval().id.clone();
    approve(&stores[1], &id, "bob", Decision::ApproveOnce, T0 + 1)
        .await
        .unwrap();
    let tasks: Vec<_> = (0..24)
        .map(|i| {
            let s = stores[i % 2].clone();
            let (id, r) = (id.clone(), r.clone());
            tokio::spawn(async move {
                // Half find it by fingerprint, half by id; all try to use it.
                if i % 2 == 0 {
                    assert!(matches!(
                        create(&s, &r, T0 + 2).await,
                        Created::Approved(_) | Created::New(_) | Created::Existing(_)
                    ));
                }
                match s.use_once(&id, T0 + 2).await {
                    Ok(a) => a.status == Status::Approved,
                    Err(ApiError::Consumed(_)) => false,
                    Err(e) => panic!("{e}"),
                }
            })
        })
        .collect();
    let mut passed = 0;
    for t in tasks {
        passed += usize::from(t.await.unwrap());
    }
    assert_eq!(
        passed, 1,
        "a one-time approval let {passed} requests through"
    );
}

macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Db::sqlite().await).await
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Db::postgres().await).await
                }
            )*
        }
    };
}

on_both_backends!(
    create_finds_or_creates,
    a_one_time_approval_is_used_once,
    a_repeated_request_uses_an_approval_instead_of_the_poll,
    deny_is_final,
    pending_and_unused_approvals_expire,
    a_time_bound_grant_covers_identity_and_rule_until_it_ends,
    a_policy_of_two_needs_two_distinct_reviewers,
    concurrent_consumers_use_an_approval_once,
    concurrent_creates_make_one_pending_approval,
    a_vote_is_announced_to_every_store_on_the_database,
    a_confirming_filter_uses_an_approval_only_with_use_once,
    concurrent_confirming_users_use_an_approval_once,
);
