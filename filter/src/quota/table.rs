//! One identity's counters, as one shared-data value (a "slot"), and the
//! pure rules for charging them. Windows are fixed and aligned to the epoch
//! (`now / window_secs`): a counter from an older window reads as zero.
//!
//! Layout, little-endian: the owner (a 64-bit digest of the identity, 0 for
//! none), then per limit of the policy its window number and count.

use super::config::{Counts, Limit};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counter {
    pub window: u64,
    pub count: u64,
}

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Slot {
    /// Digest of the identity counted here; 0: nobody.
    pub owner: u64,
    /// One per limit, in the policy's order.
    pub counters: Vec<Counter>,
}

/// What one request adds.
#[derive(Debug, Clone, Copy, Default)]
pub struct Charge<'a> {
    /// 1 when a new request is admitted.
    pub requests: u64,
    /// The request's declared `content-length`, checked against the
    /// `request_bytes` limits before anything is forwarded (not added).
    pub declared_request_bytes: u64,
    /// Rules carried out for the request.
    pub rules: &'a [String],
    /// Bytes that went through, added at the end of the stream.
    pub request_bytes: u64,
    pub response_bytes: u64,
    /// Refuse when over a limit (else only add: the end-of-stream bytes).
    pub enforce: bool,
}

/// A limit the request would go over.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Exceeded {
    pub limit: String,
    pub max: u64,
    pub window_secs: u64,
    /// Seconds until the limit's window ends.
    pub retry_after: u64,
}

fn window_of(limit: &Limit, now: u64) -> u64 {
    now / limit.window_secs
}

fn window_end(limit: &Limit, now: u64) -> u64 {
    let next = window_of(limit, now).saturating_add(1);
    next.saturating_mul(limit.window_secs)
        .saturating_sub(now)
        .max(1)
}

impl Slot {
    pub fn empty(limits: usize) -> Slot {
        Slot {
            owner: 0,
            counters: vec![Counter::default(); limits],
        }
    }

    /// Reads a stored slot; anything malformed or laid out for a different
    /// number of limits reads as empty.
    pub fn decode(bytes: Option<&[u8]>, limits: usize) -> Slot {
        let Some(bytes) = bytes else {
            return Slot::empty(limits);
        };
        if bytes.len() != 8 + 16 * limits {
            return Slot::empty(limits);
        }
        let words: Vec<u64> = bytes
            .chunks_exact(8)
            .filter_map(|c| <[u8; 8]>::try_from(c).ok())
            .map(u64::from_le_bytes)
            .collect();
        let Some((owner, rest)) = words.split_first() else {
            return Slot::empty(limits);
        };
        Slot {
            owner: *owner,
            counters: rest
                .chunks_exact(2)
                .map(|p| Counter {
                    window: p.first().copied().unwrap_or(0),
                    count: p.get(1).copied().unwrap_or(0),
                })
                .collect(),
        }
    }

    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(8 + 16 * self.counters.len());
        out.extend_from_slice(&self.owner.to_le_bytes());
        for c in &self.counters {
            out.extend_from_slice(&c.window.to_le_bytes());
            out.extend_from_slice(&c.count.to_le_bytes());
        }
        out
    }

    /// Whether any counter still counts in its current window: a slot
    /// that is not live may be taken by another identity (eviction).
    pub fn is_live(&self, limits: &[Limit], now: u64) -> bool {
        self.owner != 0
            && limits
                .iter()
                .zip(&self.counters)
                .any(|(l, c)| c.count > 0 && c.window == window_of(l, now))
    }

    /// Seconds until the slot is no longer live.
    pub fn free_in(&self, limits: &[Limit], now: u64) -> u64 {
        limits
            .iter()
            .zip(&self.counters)
            .filter(|(l, c)| c.count > 0 && c.window == window_of(l, now))
            .map(|(l, _)| window_end(l, now))
            .max()
            .unwrap_or(0)
    }
}

/// Charges `charge` to `slot` at `now` (seconds). With `enforce`, a charge
/// that would go over any limit changes nothing and names the first one.
pub fn apply(limits: &[Limit], slot: &mut Slot, now: u64, charge: &Charge) -> Result<(), Exceeded> {
    let mut next = slot.clone();
    next.counters.resize(limits.len(), Counter::default());
    for (limit, counter) in limits.iter().zip(next.counters.iter_mut()) {
        let window = window_of(limit, now);
        if counter.window != window {
            *counter = Counter { window, count: 0 };
        }
        let amount = match limit.counts {
            Counts::Requests => charge.requests,
            Counts::RequestBytes => charge.request_bytes,
            Counts::ResponseBytes => charge.response_bytes,
            Counts::RuleMatches => {
                let hit = limit
                    .rule
                    .as_ref()
                    .is_some_and(|r| charge.rules.iter().any(|x| x == r));
                u64::from(hit)
            }
        };
        if charge.enforce {
            let over = if limit.counts.is_bytes() {
                // Bytes are known at the end: a new request is refused once
                // the window's bytes are used up, or when it declares more.
                let declared = match limit.counts {
                    Counts::RequestBytes => charge.declared_request_bytes,
                    _ => 0,
                };
                charge.requests > 0
                    && (counter.count >= limit.max
                        || counter.count.saturating_add(declared) > limit.max)
            } else {
                amount > 0 && counter.count.saturating_add(amount) > limit.max
            };
            if over {
                return Err(Exceeded {
                    limit: limit.name.clone(),
                    max: limit.max,
                    window_secs: limit.window_secs,
                    retry_after: window_end(limit, now),
                });
            }
        }
        counter.count = counter.count.saturating_add(amount);
    }
    *slot = next;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limit(name: &str, counts: Counts, rule: Option<&str>, max: u64, window_secs: u64) -> Limit {
        Limit {
            name: name.into(),
            counts,
            rule: rule.map(str::to_string),
            max,
            window_secs,
        }
    }

    fn admit(requests: u64, rules: &[String]) -> Charge<'_> {
        Charge {
            requests,
            rules,
            enforce: true,
            ..Charge::default()
        }
    }

    #[test]
    fn slots_round_trip_and_garbage_reads_as_empty() {
        let s = Slot {
            owner: 7,
            counters: vec![
                Counter {
                    window: 3,
                    count: 9
                };
                2
            ],
        };
        assert_eq!(Slot::decode(Some(&s.encode()), 2), s);
        assert_eq!(Slot::decode(Some(&s.encode()), 3), Slot::empty(3));
        assert_eq!(Slot::decode(Some(b"xyz"), 1), Slot::empty(1));
        assert_eq!(Slot::decode(None, 1), Slot::empty(1));
    }

    #[test]
    fn the_request_over_the_limit_is_refused_until_the_window_ends() {
        let limits = [limit("rpm", Counts::Requests, None, 3, 60)];
        let mut slot = Slot::empty(1);
        for _ in 0..3 {
            apply(&limits, &mut slot, 120, &admit(1, &[])).unwrap();
        }
        let e = apply(&limits, &mut slot, 130, &admit(1, &[])).unwrap_err();
        assert_eq!(e.limit, "rpm");
        assert_eq!(e.retry_after, 50);
        assert_eq!(slot.counters[0].count, 3, "a refusal adds nothing");
        apply(&limits, &mut slot, 180, &admit(1, &[])).unwrap();
        assert_eq!(slot.counters[0].count, 1, "a new window starts at zero");
    }

    #[test]
    fn rule_matches_count_only_their_rule() {
        let limits = [limit("asks", Counts::RuleMatches, Some("export"), 2, 3600)];
        let mut slot = Slot::empty(1);
        let export = ["export".to_string()];
        let other = ["read".to_string()];
        apply(&limits, &mut slot, 0, &admit(1, &other)).unwrap();
        apply(&limits, &mut slot, 0, &admit(1, &export)).unwrap();
        apply(&limits, &mut slot, 0, &admit(0, &export)).unwrap();
        let e = apply(&limits, &mut slot, 10, &admit(1, &export)).unwrap_err();
        assert_eq!((e.limit.as_str(), e.retry_after), ("asks", 3590));
        apply(&limits, &mut slot, 10, &admit(1, &other)).unwrap();
    }

    #[test]
    fn bytes_refuse_new_requests_once_used_up_or_declared_over() {
        let limits = [
            limit("up", Counts::RequestBytes, None, 100, 60),
            limit("down", Counts::ResponseBytes, None, 1000, 60),
        ];
        let mut slot = Slot::empty(2);
        let mut declared = admit(1, &[]);
        declared.declared_request_bytes = 101;
        assert_eq!(
            apply(&limits, &mut slot, 0, &declared).unwrap_err().limit,
            "up"
        );
        let used = Charge {
            request_bytes: 60,
            response_bytes: 1500,
            ..Charge::default()
        };
        apply(&limits, &mut slot, 0, &used).unwrap();
        assert_eq!(
            apply(&limits, &mut slot, 0, &admit(1, &[]))
                .unwrap_err()
                .limit,
            "down"
        );
    }

    #[test]
    fn a_slot_is_live_while_a_counter_counts_in_its_window() {
        let limits = [limit("rpm", Counts::Requests, None, 3, 60)];
        let mut slot = Slot::empty(1);
        slot.owner = 5;
        assert!(!slot.is_live(&limits, 0));
        apply(&limits, &mut slot, 10, &admit(1, &[])).unwrap();
        assert!(slot.is_live(&limits, 59));
        assert_eq!(slot.free_in(&limits, 50), 10);
        assert!(!slot.is_live(&limits, 60));
    }
}
