//! When to fetch remote key sets: a pure state machine per provider, and the
//! [`KeyStore`] that holds every provider's current keys.
//!
//! The host owns one `KeyStore` per worker and drives it from its tick and its
//! HTTP callouts:
//!
//! - `for req in store.due_fetches(now)`: dispatch `GET req.path` to
//!   `req.cluster` (`:authority` = `req.authority`, timeout `req.timeout_ms`),
//!   then call `store.on_fetch_started(req.provider_index, now)`.
//! - On the response: `store.on_fetched(i, now, Ok(body))` for a 200 with a
//!   body, `store.on_fetched(i, now, Err(reason))` for anything else
//!   (other status, timeout, reset). A body that is not a usable JWKS counts
//!   as a failure; the last good keys stay.
//! - After `authenticate` fails with `unknown_kid` for a remote provider:
//!   `store.on_unknown_kid(i, now)` (rate limited: at most one forced refetch
//!   per [`UNKNOWN_KID_MIN_INTERVAL_SECS`]).
//! - Tick at least every `store.next_wakeup(now)` seconds.
//!
//! Policy: fetch at start; refresh every `refresh_secs` after a success; on
//! failure retry with exponential backoff (1 s, 2 s, 4 s … at most
//! [`MAX_BACKOFF_SECS`], and never later than the regular refresh); a fetch
//! without an answer after `timeout + 5 s` counts as failed; failures never
//! drop keys that were good.

use super::config::{KeySource, Providers, RemoteJwks};
use super::jwks::{parse_jwks, KeySet};
use std::rc::Rc;

/// At most one refetch forced by an unknown `kid` per provider in this many seconds.
pub const UNKNOWN_KID_MIN_INTERVAL_SECS: u64 = 30;
/// The longest wait between retries after failures.
pub const MAX_BACKOFF_SECS: u64 = 300;
/// The largest JWKS body accepted (real ones are a few KiB).
pub const MAX_JWKS_BYTES: usize = 256 * 1024;
/// Slack after a fetch's own timeout before the state machine gives up on it.
pub const LOST_FETCH_GRACE_SECS: u64 = 5;

/// The fetch schedule of one remote key set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchSchedule {
    refresh_secs: u64,
    timeout_secs: u64,
    /// When the next fetch is due.
    next_due: u64,
    /// When the fetch in flight started.
    in_flight_since: Option<u64>,
    /// Consecutive failures.
    failures: u32,
    last_success: Option<u64>,
    last_forced: Option<u64>,
}

impl FetchSchedule {
    /// A schedule that wants its first fetch at once.
    pub fn new(refresh_secs: u64, timeout_ms: u64) -> Self {
        FetchSchedule {
            refresh_secs: refresh_secs.max(1),
            timeout_secs: timeout_ms.div_ceil(1000),
            next_due: 0,
            in_flight_since: None,
            failures: 0,
            last_success: None,
            last_forced: None,
        }
    }

    fn lost(&self, now: u64) -> bool {
        self.in_flight_since
            .is_some_and(|t| now >= t + self.timeout_secs + LOST_FETCH_GRACE_SECS)
    }

    /// Whether a fetch should start now.
    pub fn wants_fetch(&self, now: u64) -> bool {
        (self.in_flight_since.is_none() || self.lost(now)) && now >= self.next_due
    }

    pub fn on_fetch_started(&mut self, now: u64) {
        if self.lost(now) {
            // The previous one never answered: count it as a failure.
            self.failures = self.failures.saturating_add(1);
        }
        self.in_flight_since = Some(now);
    }

    /// Records the outcome of a fetch.
    pub fn on_fetched(&mut self, now: u64, ok: bool) {
        self.in_flight_since = None;
        if ok {
            self.failures = 0;
            self.last_success = Some(now);
            self.next_due = now.saturating_add(self.refresh_secs);
        } else {
            self.failures = self.failures.saturating_add(1);
            self.next_due = now.saturating_add(self.backoff());
        }
    }

    /// 1, 2, 4 … seconds, capped by `MAX_BACKOFF_SECS` and `refresh_secs`.
    fn backoff(&self) -> u64 {
        let exp = self.failures.saturating_sub(1).min(16);
        (1u64 << exp).min(MAX_BACKOFF_SECS).min(self.refresh_secs)
    }

    /// A token named a `kid` the keys do not have: the IdP may have rotated.
    /// Brings the next fetch forward, at most once per
    /// `UNKNOWN_KID_MIN_INTERVAL_SECS`, and never ahead of a failure backoff.
    /// Returns whether it did.
    pub fn on_unknown_kid(&mut self, now: u64) -> bool {
        if self.failures > 0 || self.next_due <= now {
            return false;
        }
        if self
            .last_forced
            .is_some_and(|t| now < t.saturating_add(UNKNOWN_KID_MIN_INTERVAL_SECS))
        {
            return false;
        }
        if self
            .last_success
            .is_some_and(|t| now < t.saturating_add(UNKNOWN_KID_MIN_INTERVAL_SECS))
        {
            // Keys fetched moments ago are as fresh as a refetch would make them.
            return false;
        }
        self.last_forced = Some(now);
        self.next_due = now;
        true
    }

    /// Seconds until this schedule next needs attention.
    pub fn next_wakeup(&self, now: u64) -> u64 {
        match self.in_flight_since {
            Some(t) => (t + self.timeout_secs + LOST_FETCH_GRACE_SECS).saturating_sub(now),
            None => self.next_due.saturating_sub(now),
        }
    }

    pub fn consecutive_failures(&self) -> u32 {
        self.failures
    }
}

/// What the host should fetch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FetchRequest {
    pub provider_index: usize,
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub timeout_ms: u64,
}

#[derive(Debug)]
struct Slot {
    keys: Option<Rc<KeySet>>,
    remote: Option<(RemoteJwks, FetchSchedule)>,
}

/// Every provider's current keys (index = provider index), with the fetch
/// schedules of remote ones.
#[derive(Debug)]
pub struct KeyStore {
    slots: Vec<Slot>,
}

impl KeyStore {
    /// Inline keys are installed now; remote ones are empty until fetched.
    pub fn new(providers: &Providers) -> Self {
        let slots = providers
            .providers
            .iter()
            .map(|p| match &p.keys {
                KeySource::Static(set) => Slot {
                    keys: Some(Rc::new(set.clone())),
                    remote: None,
                },
                KeySource::Remote(r) => Slot {
                    keys: None,
                    remote: Some((r.clone(), FetchSchedule::new(r.refresh_secs, r.timeout_ms))),
                },
            })
            .collect();
        KeyStore { slots }
    }

    /// The provider's keys, `None` while a remote set was never fetched.
    pub fn keys(&self, provider_index: usize) -> Option<&KeySet> {
        self.slots.get(provider_index)?.keys.as_deref()
    }

    pub fn wants_fetch(&self, provider_index: usize, now: u64) -> bool {
        self.slots
            .get(provider_index)
            .and_then(|s| s.remote.as_ref())
            .is_some_and(|(_, sched)| sched.wants_fetch(now))
    }

    /// The fetches to start now.
    pub fn due_fetches(&self, now: u64) -> Vec<FetchRequest> {
        self.slots
            .iter()
            .enumerate()
            .filter_map(|(i, s)| {
                let (r, sched) = s.remote.as_ref()?;
                sched.wants_fetch(now).then(|| FetchRequest {
                    provider_index: i,
                    cluster: r.cluster.clone(),
                    path: r.path.clone(),
                    authority: r.authority.clone(),
                    timeout_ms: r.timeout_ms,
                })
            })
            .collect()
    }

    pub fn on_fetch_started(&mut self, provider_index: usize, now: u64) {
        if let Some((_, sched)) = self
            .slots
            .get_mut(provider_index)
            .and_then(|s| s.remote.as_mut())
        {
            sched.on_fetch_started(now);
        }
    }

    /// Records a fetch outcome. `Ok(body)`: the response body of a 200.
    /// Returns the number of keys installed, or why nothing was (the host logs
    /// it); on any error the previous keys stay.
    pub fn on_fetched(
        &mut self,
        provider_index: usize,
        now: u64,
        body: Result<&[u8], String>,
    ) -> Result<usize, String> {
        let slot = self
            .slots
            .get_mut(provider_index)
            .ok_or_else(|| format!("no provider {provider_index}"))?;
        let Some((_, sched)) = slot.remote.as_mut() else {
            return Err("the provider's keys are not remote".to_string());
        };
        let parsed = body.and_then(|b| {
            if b.len() > MAX_JWKS_BYTES {
                return Err(format!("JWKS body over {MAX_JWKS_BYTES} bytes"));
            }
            parse_jwks(b).map_err(|e| format!("unusable JWKS: {e}"))
        });
        match parsed {
            Ok(p) => {
                sched.on_fetched(now, true);
                let n = p.set.keys.len();
                slot.keys = Some(Rc::new(p.set));
                Ok(n)
            }
            Err(e) => {
                sched.on_fetched(now, false);
                Err(e)
            }
        }
    }

    /// See [`FetchSchedule::on_unknown_kid`]; no-op for inline keys.
    pub fn on_unknown_kid(&mut self, provider_index: usize, now: u64) -> bool {
        match self
            .slots
            .get_mut(provider_index)
            .and_then(|s| s.remote.as_mut())
        {
            Some((_, sched)) => sched.on_unknown_kid(now),
            None => false,
        }
    }

    /// Seconds until the store next needs a tick (`None`: never, all inline).
    pub fn next_wakeup(&self, now: u64) -> Option<u64> {
        self.slots
            .iter()
            .filter_map(|s| s.remote.as_ref().map(|(_, sched)| sched.next_wakeup(now)))
            .min()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fetches_at_start_then_every_refresh() {
        let mut s = FetchSchedule::new(600, 5000);
        assert!(s.wants_fetch(1000));
        s.on_fetch_started(1000);
        assert!(!s.wants_fetch(1001), "one fetch in flight at a time");
        s.on_fetched(1001, true);
        assert!(!s.wants_fetch(1600));
        assert!(s.wants_fetch(1601));
        assert_eq!(s.next_wakeup(1001), 600);
    }

    #[test]
    fn failures_back_off_exponentially_and_are_capped() {
        let mut s = FetchSchedule::new(120, 5000);
        let mut now = 0;
        let mut waits = Vec::new();
        for _ in 0..10 {
            assert!(s.wants_fetch(now));
            s.on_fetch_started(now);
            s.on_fetched(now, false);
            let w = s.next_wakeup(now);
            waits.push(w);
            now += w;
        }
        assert_eq!(waits, vec![1, 2, 4, 8, 16, 32, 64, 120, 120, 120]);
        s.on_fetch_started(now);
        s.on_fetched(now, true);
        assert_eq!(s.consecutive_failures(), 0);
        assert_eq!(s.next_wakeup(now), 120);
    }

    #[test]
    fn lost_fetch_is_retried() {
        let mut s = FetchSchedule::new(600, 5000);
        s.on_fetch_started(0);
        assert!(!s.wants_fetch(9));
        assert!(s.wants_fetch(10), "timeout 5 s + grace 5 s");
        s.on_fetch_started(10);
        assert_eq!(s.consecutive_failures(), 1);
    }

    #[test]
    fn unknown_kid_refetch_is_rate_limited() {
        let mut s = FetchSchedule::new(600, 5000);
        s.on_fetch_started(0);
        s.on_fetched(0, true);
        assert!(!s.on_unknown_kid(10), "keys fetched 10 s ago are fresh");
        assert!(s.on_unknown_kid(40));
        assert!(s.wants_fetch(40));
        s.on_fetch_started(40);
        s.on_fetched(41, true);
        assert!(!s.on_unknown_kid(50));
        assert!(!s.on_unknown_kid(69), "30 s since the last forced fetch");
        assert!(s.on_unknown_kid(71));
    }

    #[test]
    fn unknown_kid_never_overrides_failure_backoff() {
        let mut s = FetchSchedule::new(600, 5000);
        s.on_fetch_started(0);
        s.on_fetched(0, false);
        assert!(!s.on_unknown_kid(0));
        assert!(!s.wants_fetch(0));
        assert!(s.wants_fetch(1));
    }
}
