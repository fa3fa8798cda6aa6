//! Waiting for something a test expects to happen soon: an audit record to be
//! flushed, a counter to move, a log line, a peer to be ready, a reviewer to
//! see a pending approval. Every such wait in the tests goes through here.
//!
//! A wait polls its check until the check holds, and gives up only after a
//! generous deadline with a message naming what was awaited and what was
//! last seen. On a loaded machine no fixed "long enough" sleep is long
//! enough, and a generous deadline costs nothing when things work: the wait
//! ends as soon as the condition holds.

use std::future::Future;
use std::time::{Duration, Instant};

use anyhow::{anyhow, Result};

/// How long a wait may take before the test fails. Far above what anything
/// needs on a quiet machine (milliseconds to a few seconds), and above what
/// it needs on a 2-core machine shared with a dozen busy processes: only a
/// real failure should ever reach it.
pub const PATIENCE: Duration = Duration::from_secs(60);

/// Time between two checks.
const INTERVAL: Duration = Duration::from_millis(50);

/// What one check found.
pub enum Check<T> {
    /// The condition holds.
    Done(T),
    /// Not yet; what was seen instead (quoted if the wait gives up).
    NotYet(String),
    /// It never will (e.g. the process exited): stop waiting.
    Failed(anyhow::Error),
}

impl<T> Check<T> {
    /// `Done` when `value` is `Some`, else `NotYet(seen)`.
    pub fn found(value: Option<T>, seen: impl FnOnce() -> String) -> Check<T> {
        match value {
            Some(v) => Check::Done(v),
            None => Check::NotYet(seen()),
        }
    }
}

/// Polls `check` until it is `Done` (or `Failed`), for up to [`PATIENCE`].
/// `what` completes "waiting for ...", e.g. "3 audit records".
pub fn until<T>(what: &str, check: impl FnMut() -> Check<T>) -> Result<T> {
    until_within(what, PATIENCE, check)
}

/// [`until`] with another deadline (for conditions that are slow by design).
pub fn until_within<T>(
    what: &str,
    patience: Duration,
    mut check: impl FnMut() -> Check<T>,
) -> Result<T> {
    let deadline = Deadline::new(what, patience);
    blocking(|| loop {
        if let Some(result) = deadline.settle(check()) {
            return result;
        }
        std::thread::sleep(INTERVAL);
    })
}

/// [`until`] for checks that await (HTTP calls to in-process peers).
pub async fn until_async<T, F, Fut>(what: &str, check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Check<T>>,
{
    until_async_within(what, PATIENCE, check).await
}

/// [`until_async`] with another deadline.
pub async fn until_async_within<T, F, Fut>(
    what: &str,
    patience: Duration,
    mut check: F,
) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Check<T>>,
{
    let deadline = Deadline::new(what, patience);
    loop {
        if let Some(result) = deadline.settle(check().await) {
            return result;
        }
        tokio::time::sleep(INTERVAL).await;
    }
}

struct Deadline<'a> {
    what: &'a str,
    started: Instant,
    patience: Duration,
}

impl<'a> Deadline<'a> {
    fn new(what: &'a str, patience: Duration) -> Deadline<'a> {
        Deadline {
            what,
            started: Instant::now(),
            patience,
        }
    }

    /// The wait's result, or `None` to check again.
    fn settle<T>(&self, check: Check<T>) -> Option<Result<T>> {
        match check {
            Check::Done(v) => Some(Ok(v)),
            Check::Failed(e) => Some(Err(e.context(format!("while waiting for {}", self.what)))),
            Check::NotYet(seen) if self.started.elapsed() >= self.patience => Some(Err(anyhow!(
                "gave up waiting for {} after {:?}; last seen: {seen}",
                self.what,
                self.patience
            ))),
            Check::NotYet(_) => None,
        }
    }
}

/// Runs a blocking wait; inside a multi-threaded Tokio runtime, tells it so,
/// so in-process peers (upstream, approver, collector) keep being served
/// while this thread sleeps.
fn blocking<R>(f: impl FnOnce() -> R) -> R {
    use tokio::runtime::{Handle, RuntimeFlavor};
    match Handle::try_current() {
        Ok(h) if h.runtime_flavor() == RuntimeFlavor::MultiThread => tokio::task::block_in_place(f),
        _ => f(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_wait_returns_as_soon_as_the_check_holds() {
        let mut n = 0;
        let v = until("the third check", || {
            n += 1;
            Check::found((n == 3).then_some(n), || format!("check {n}"))
        })
        .unwrap();
        assert_eq!(v, 3);
    }

    #[test]
    fn a_wait_that_gives_up_names_what_it_awaited_and_saw() {
        let e = until_within("a record", Duration::from_millis(120), || {
            Check::<()>::NotYet("2 records: [a, b]".into())
        })
        .unwrap_err()
        .to_string();
        assert!(e.contains("waiting for a record"), "{e}");
        assert!(e.contains("last seen: 2 records: [a, b]"), "{e}");
    }

    #[test]
    fn a_failed_check_ends_the_wait_at_once() {
        let t = Instant::now();
        let e = until("envoy to be ready", || {
            Check::<()>::Failed(anyhow!("envoy exited (code 1)"))
        })
        .unwrap_err();
        assert!(t.elapsed() < PATIENCE);
        assert!(format!("{e:#}").contains("envoy exited"), "{e:#}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 1)]
    async fn a_blocking_wait_on_the_only_worker_lets_other_tasks_run() {
        let (tx, rx) = std::sync::mpsc::channel();
        // The wait blocks the runtime's one worker thread...
        let waiter = tokio::spawn(async move {
            until("the other task's value", || {
                Check::found(rx.try_recv().ok(), || "nothing yet".into())
            })
        });
        // ...and this task still runs (it would starve without block_in_place).
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let _ = tx.send(7);
        });
        assert_eq!(waiter.await.unwrap().unwrap(), 7);
    }

    #[tokio::test]
    async fn an_async_wait_awaits_its_check() {
        let mut n = 0;
        let v = until_async("the second check", || {
            n += 1;
            let n = n;
            async move { Check::found((n == 2).then_some(n), || "first".into()) }
        })
        .await
        .unwrap();
        assert_eq!(v, 2);
    }
}
