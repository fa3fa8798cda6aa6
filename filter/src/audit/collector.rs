//! The HTTP collector sink's queue: records wait here (bounded) until the
//! root context sends them in batches. Requests never wait for it: a full
//! queue or a failed batch drops records, and the drops are counted.

use std::collections::VecDeque;

#[derive(Debug)]
pub struct Collector {
    queue: VecDeque<String>,
    max: usize,
    batch_size: usize,
    /// A batch is in flight; one at a time keeps ordering and bounds memory.
    in_flight: Option<usize>,
}

impl Collector {
    pub fn new(queue_max: usize, batch_size: usize) -> Collector {
        Collector {
            queue: VecDeque::new(),
            max: queue_max,
            batch_size,
            in_flight: None,
        }
    }

    /// Queues a record; false (dropped) when the queue is full.
    pub fn push(&mut self, record: String) -> bool {
        if self.queue.len() >= self.max {
            return false;
        }
        self.queue.push_back(record);
        true
    }

    /// The next batch as NDJSON, if none is in flight and records wait.
    pub fn next_batch(&mut self) -> Option<Vec<u8>> {
        if self.in_flight.is_some() || self.queue.is_empty() {
            return None;
        }
        let n = self.batch_size.min(self.queue.len());
        let mut body = Vec::new();
        for line in self.queue.iter().take(n) {
            body.extend_from_slice(line.as_bytes());
            body.push(b'\n');
        }
        self.in_flight = Some(n);
        Some(body)
    }

    /// The batch in flight ended; returns how many records were dropped
    /// (all of the batch when the collector did not take it).
    pub fn on_sent(&mut self, accepted: bool) -> usize {
        let n = self.in_flight.take().unwrap_or(0);
        for _ in 0..n {
            self.queue.pop_front();
        }
        if accepted {
            0
        } else {
            n
        }
    }

    pub fn len(&self) -> usize {
        self.queue.len()
    }

    pub fn is_empty(&self) -> bool {
        self.queue.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batches_in_order_one_in_flight() {
        let mut c = Collector::new(10, 2);
        for i in 0..3 {
            assert!(c.push(format!("{{\"n\":{i}}}")));
        }
        assert_eq!(c.next_batch().unwrap(), b"{\"n\":0}\n{\"n\":1}\n");
        assert!(c.next_batch().is_none(), "one batch at a time");
        assert_eq!(c.on_sent(true), 0);
        assert_eq!(c.next_batch().unwrap(), b"{\"n\":2}\n");
        assert_eq!(
            c.on_sent(false),
            1,
            "a refused batch is dropped and counted"
        );
        assert!(c.is_empty());
    }

    #[test]
    fn a_full_queue_drops_new_records() {
        let mut c = Collector::new(2, 10);
        assert!(c.push("a".into()));
        assert!(c.push("b".into()));
        assert!(!c.push("c".into()));
        assert_eq!(c.len(), 2);
    }
}
