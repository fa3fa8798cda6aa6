//! The verified-token cache: per worker, bounded, keyed by the SHA-256 of the
//! whole token, never used past the token's `exp` (nor past `max_ttl_secs`
//! after it was verified, which bounds how long a key removed from the JWKS
//! keeps its tokens alive).
//!
//! Eviction when full: expired entries first, then the least recently used.
//! The scan is O(capacity) and happens only on an insert into a full cache.

use super::Identity;
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::rc::Rc;

/// What a verified token yields, shared by every request that presents it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Verified {
    pub provider_index: usize,
    pub identity: Identity,
    /// (header name, value) from the provider's `claims_to_headers`.
    pub claim_headers: Vec<(String, String)>,
    /// `exp`, when the token has one.
    pub exp: Option<u64>,
}

#[derive(Debug)]
struct Entry {
    verified: Rc<Verified>,
    valid_until: u64,
    last_used: u64,
}

#[derive(Debug)]
pub struct TokenCache {
    map: HashMap<[u8; 32], Entry>,
    capacity: usize,
    max_ttl_secs: u64,
    clock: u64,
    pub hits: u64,
    pub misses: u64,
}

pub fn token_key(token: &str) -> [u8; 32] {
    Sha256::digest(token.as_bytes()).into()
}

impl TokenCache {
    /// `capacity` 0 turns the cache off.
    pub fn new(capacity: usize, max_ttl_secs: u64) -> Self {
        TokenCache {
            map: HashMap::with_capacity(capacity.min(4096)),
            capacity,
            max_ttl_secs,
            clock: 0,
            hits: 0,
            misses: 0,
        }
    }

    pub fn len(&self) -> usize {
        self.map.len()
    }

    pub fn is_empty(&self) -> bool {
        self.map.is_empty()
    }

    /// The cached verification of `key`, if still valid at `now`.
    pub fn get(&mut self, key: &[u8; 32], now: u64) -> Option<Rc<Verified>> {
        self.clock += 1;
        let clock = self.clock;
        let hit = match self.map.get_mut(key) {
            Some(e) if now < e.valid_until => {
                e.last_used = clock;
                Some(e.verified.clone())
            }
            Some(_) => {
                self.map.remove(key);
                None
            }
            None => None,
        };
        if hit.is_some() {
            self.hits += 1;
        } else {
            self.misses += 1;
        }
        hit
    }

    /// Remembers a verification made at `now`. A token whose `exp` is already
    /// reached (it passed thanks to the clock skew) is not cached.
    pub fn insert(&mut self, key: [u8; 32], verified: Rc<Verified>, now: u64) {
        if self.capacity == 0 {
            return;
        }
        let cap = now.saturating_add(self.max_ttl_secs);
        let valid_until = verified.exp.map_or(cap, |e| e.min(cap));
        if valid_until <= now {
            return;
        }
        if self.map.len() >= self.capacity && !self.map.contains_key(&key) {
            self.map.retain(|_, e| now < e.valid_until);
            if self.map.len() >= self.capacity {
                let oldest = self
                    .map
                    .iter()
                    .min_by_key(|(_, e)| e.last_used)
                    .map(|(k, _)| *k);
                if let Some(k) = oldest {
                    self.map.remove(&k);
                }
            }
        }
        self.clock += 1;
        self.map.insert(
            key,
            Entry {
                verified,
                valid_until,
                last_used: self.clock,
            },
        );
    }

    pub fn clear(&mut self) {
        self.map.clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(exp: Option<u64>) -> Rc<Verified> {
        Rc::new(Verified {
            provider_index: 0,
            identity: Identity::default(),
            claim_headers: vec![],
            exp,
        })
    }

    #[test]
    fn entries_end_at_exp() {
        let mut c = TokenCache::new(10, 300);
        let k = token_key("a");
        c.insert(k, v(Some(1100)), 1000);
        assert!(c.get(&k, 1099).is_some());
        assert!(c.get(&k, 1100).is_none(), "never at or past exp");
        assert!(c.is_empty());
    }

    #[test]
    fn entries_end_at_max_ttl() {
        let mut c = TokenCache::new(10, 300);
        let k = token_key("a");
        c.insert(k, v(Some(100_000)), 1000);
        assert!(c.get(&k, 1299).is_some());
        assert!(c.get(&k, 1300).is_none());
        c.insert(k, v(None), 1000);
        assert!(c.get(&k, 1299).is_some());
    }

    #[test]
    fn expired_token_within_skew_is_not_cached() {
        let mut c = TokenCache::new(10, 300);
        let k = token_key("a");
        c.insert(k, v(Some(990)), 1000);
        assert!(c.is_empty());
    }

    #[test]
    fn least_recently_used_is_evicted() {
        let mut c = TokenCache::new(2, 300);
        let (a, b, d) = (token_key("a"), token_key("b"), token_key("d"));
        c.insert(a, v(None), 0);
        c.insert(b, v(None), 0);
        assert!(c.get(&a, 1).is_some());
        c.insert(d, v(None), 1);
        assert_eq!(c.len(), 2);
        assert!(c.get(&b, 1).is_none(), "b was least recently used");
        assert!(c.get(&a, 1).is_some());
        assert!(c.get(&d, 1).is_some());
    }

    #[test]
    fn zero_capacity_disables() {
        let mut c = TokenCache::new(0, 300);
        c.insert(token_key("a"), v(None), 0);
        assert!(c.is_empty());
    }
}
