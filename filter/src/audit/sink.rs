//! The HTTP collector sink: the worker's queue of audit records
//! ([`super::collector::Collector`]) sent in NDJSON batches to
//! `audit.collector.cluster` on the tick. One batch in flight at a time;
//! a refused or failed batch is dropped and counted, never retried into a
//! growing queue.

use std::time::Duration;

use super::collector::Collector;
use super::config::CollectorConfig;
use super::metrics::{self, Family};
use crate::callout::{Callouts, Owner};
use crate::envoy::{now_ms, CalloutRequest, Envoy};

#[derive(Debug)]
pub struct Sink {
    pub queue: Collector,
    config: CollectorConfig,
    in_flight: Option<u32>,
    last_flush_ms: u64,
}

impl Sink {
    pub fn new(config: &CollectorConfig) -> Sink {
        Sink {
            queue: Collector::new(config.queue_max, config.batch_size),
            config: config.clone(),
            in_flight: None,
            last_flush_ms: 0,
        }
    }

    /// Queues a record; a full queue drops it (counted).
    pub fn push(&mut self, envoy: &impl Envoy, record: String) {
        if !self.queue.push(record) {
            metrics::incr(envoy, Family::Audit, "dropped");
        }
    }

    /// Sends a batch when one is full or `flush_ms` has passed.
    pub fn tick(&mut self, envoy: &impl Envoy, callouts: &mut Callouts) {
        let now = now_ms(envoy);
        let due = self.queue.len() >= self.config.batch_size
            || now.saturating_sub(self.last_flush_ms) >= self.config.flush_ms;
        if !due || self.in_flight.is_some() {
            return;
        }
        let Some(body) = self.queue.next_batch() else {
            return;
        };
        self.last_flush_ms = now;
        let call = CalloutRequest {
            cluster: self.config.cluster.clone(),
            headers: vec![
                (":method".into(), "POST".into()),
                (":path".into(), self.config.path.clone()),
                (":authority".into(), self.config.authority.clone()),
                ("content-type".into(), "application/x-ndjson".into()),
            ],
            body: Some(body),
            timeout: Duration::from_millis(self.config.timeout_ms),
        };
        match callouts.dispatch(envoy, &call, Owner::Collector) {
            Ok(token) => self.in_flight = Some(token),
            Err(e) => {
                log::warn!(
                    "transit-guard: cannot send audit records to cluster {}: {e}",
                    self.config.cluster
                );
                self.sent(envoy, false);
            }
        }
    }

    /// The collector answered the batch in flight (2xx: accepted).
    pub fn answered(&mut self, envoy: &impl Envoy, status: Option<u16>) {
        self.in_flight = None;
        let accepted = status.is_some_and(|s| (200..300).contains(&s));
        if !accepted {
            log::warn!("transit-guard: the audit collector refused a batch ({status:?})");
        }
        self.sent(envoy, accepted);
    }

    fn sent(&mut self, envoy: &impl Envoy, accepted: bool) {
        let n = self.queue.on_sent(accepted);
        if n > 0 {
            metrics::add(envoy, Family::Audit, "dropped", n as u64);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envoy::mock::MockEnvoy;

    fn config() -> CollectorConfig {
        CollectorConfig {
            cluster: "collector".into(),
            path: "/ingest".into(),
            authority: "collector".into(),
            batch_size: 2,
            flush_ms: 1000,
            queue_max: 3,
            timeout_ms: 500,
        }
    }

    #[test]
    fn full_batches_are_sent_and_a_refused_batch_is_counted_as_dropped() {
        let envoy = MockEnvoy::with_request(&[]);
        let mut callouts = Callouts::default();
        let mut sink = Sink::new(&config());
        sink.push(&envoy, "{\"a\":1}".into());
        sink.push(&envoy, "{\"a\":2}".into());
        sink.tick(&envoy, &mut callouts);
        let sent = envoy.0.borrow().callouts.clone();
        assert_eq!(sent.len(), 1);
        assert_eq!(
            sent[0].body.as_deref(),
            Some(&b"{\"a\":1}\n{\"a\":2}\n"[..])
        );
        assert_eq!(callouts.take(1), Some(Owner::Collector));
        sink.answered(&envoy, Some(503));
        assert_eq!(
            envoy.0.borrow().counters.get("transit_guard.audit.dropped"),
            Some(&2)
        );
    }

    #[test]
    fn a_full_queue_drops_and_counts() {
        let envoy = MockEnvoy::with_request(&[]);
        let mut sink = Sink::new(&config());
        for i in 0..4 {
            sink.push(&envoy, format!("{i}"));
        }
        assert_eq!(
            envoy.0.borrow().counters.get("transit_guard.audit.dropped"),
            Some(&1)
        );
    }
}
