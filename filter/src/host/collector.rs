//! The optional HTTP collector sink: HTTP contexts queue audit records, the
//! root context sends them in NDJSON batches to `audit.collector.cluster` on
//! its tick. Requests never wait for it; what cannot be delivered is dropped
//! and counted (`transit_guard_audit{event="dropped"}`).

use std::cell::RefCell;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MapType;

use super::metrics;
use crate::audit::collector::Collector;
use crate::audit::config::CollectorConfig;

/// The queue HTTP contexts push to.
pub type Queue = Rc<RefCell<Collector>>;

pub struct CollectorSink {
    pub queue: Queue,
    config: CollectorConfig,
    in_flight: Option<u32>,
    last_flush_ms: u128,
}

impl CollectorSink {
    pub fn new(config: &CollectorConfig) -> CollectorSink {
        CollectorSink {
            queue: Rc::new(RefCell::new(Collector::new(
                config.queue_max,
                config.batch_size,
            ))),
            config: config.clone(),
            in_flight: None,
            last_flush_ms: 0,
        }
    }

    /// On the root's tick: send a batch when one is due (full, or
    /// `flush_ms` since the last) and none is in flight.
    pub fn tick(&mut self) {
        let now = now_ms();
        let due = self.queue.borrow().len() >= self.config.batch_size
            || now.saturating_sub(self.last_flush_ms) >= u128::from(self.config.flush_ms);
        if !due || self.in_flight.is_some() {
            return;
        }
        let Some(body) = self.queue.borrow_mut().next_batch() else {
            return;
        };
        self.last_flush_ms = now;
        let headers = vec![
            (":method", "POST"),
            (":path", self.config.path.as_str()),
            (":authority", self.config.authority.as_str()),
            ("content-type", "application/x-ndjson"),
        ];
        let timeout = Duration::from_millis(self.config.timeout_ms);
        match hostcalls::dispatch_http_call(
            &self.config.cluster,
            headers,
            Some(&body),
            vec![],
            timeout,
        ) {
            Ok(token) => self.in_flight = Some(token),
            Err(status) => {
                log::warn!(
                    "transit-guard: cannot send audit records to cluster {}: {status:?}",
                    self.config.cluster
                );
                self.dropped(false);
            }
        }
    }

    /// A callout answered; false if it was not the batch in flight.
    pub fn on_response(&mut self, token: u32) -> bool {
        if self.in_flight != Some(token) {
            return false;
        }
        self.in_flight = None;
        let status = hostcalls::get_map(MapType::HttpCallResponseHeaders)
            .unwrap_or_default()
            .into_iter()
            .find(|(k, _)| k == ":status")
            .and_then(|(_, v)| v.parse::<u16>().ok());
        let accepted = status.is_some_and(|s| (200..300).contains(&s));
        if !accepted {
            log::warn!("transit-guard: the audit collector refused a batch ({status:?})");
        }
        self.dropped(accepted);
        true
    }

    fn dropped(&mut self, accepted: bool) {
        let n = self.queue.borrow_mut().on_sent(accepted);
        if n > 0 {
            metrics::add("audit", "dropped", n as u64);
        }
    }
}

fn now_ms() -> u128 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_millis())
        .unwrap_or(0)
}
