//! Sharing fetched key sets between Envoy's workers.
//!
//! Each worker runs its own VM with its own key store; without sharing, every
//! worker would fetch every JWKS. Through Envoy's shared data (one namespace
//! per `vm_id`), one worker fetches and publishes; the others adopt what it
//! published. A lock entry, taken with compare-and-swap, keeps at most one
//! fetch per provider in flight. The host does the shared-data calls; this
//! module is the format and the rules.

/// Shared-data key of a provider's published JWKS body.
pub fn body_key(provider: &str) -> String {
    format!("transit_guard.jwks.{provider}")
}

/// Shared-data key of when that body was fetched (8 bytes, little-endian
/// seconds): read every tick, so the body is copied only when it is new.
pub fn stamp_key(provider: &str) -> String {
    format!("transit_guard.jwks_at.{provider}")
}

/// Shared-data key of the fetch lock: until when (seconds) a worker's fetch
/// is in flight.
pub fn lock_key(provider: &str) -> String {
    format!("transit_guard.jwks_lock.{provider}")
}

pub fn encode_secs(secs: u64) -> [u8; 8] {
    secs.to_le_bytes()
}

/// A stamp or lock value; anything malformed reads as 0 (never fetched, free).
pub fn decode_secs(bytes: Option<&[u8]>) -> u64 {
    bytes
        .and_then(|b| b.get(..8))
        .and_then(|b| <[u8; 8]>::try_from(b).ok())
        .map(u64::from_le_bytes)
        .unwrap_or(0)
}

/// Whether another worker's fetch is still in flight: its lock names a time
/// still to come. A worker that died mid-fetch frees the lock by expiry.
pub fn lock_held(value: Option<&[u8]>, now: u64) -> bool {
    decode_secs(value) > now
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stamps_round_trip_and_garbage_reads_as_zero() {
        assert_eq!(
            decode_secs(Some(&encode_secs(1_700_000_000))),
            1_700_000_000
        );
        assert_eq!(decode_secs(None), 0);
        assert_eq!(decode_secs(Some(b"abc")), 0);
    }

    #[test]
    fn a_lock_is_held_until_its_time_passes() {
        let lock = encode_secs(100);
        assert!(lock_held(Some(&lock), 99));
        assert!(!lock_held(Some(&lock), 100));
        assert!(!lock_held(None, 5));
    }

    #[test]
    fn keys_are_per_provider() {
        assert_ne!(body_key("a"), body_key("b"));
        assert_ne!(body_key("a"), stamp_key("a"));
        assert_ne!(stamp_key("a"), lock_key("a"));
    }
}
