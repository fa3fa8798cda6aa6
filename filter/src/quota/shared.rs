//! The counters in Envoy's shared data, shared by every worker of one Envoy.
//!
//! A bounded table: `max_identities` slots, keys `NAMESPACE.INDEX`. An
//! identity's slot is found by open addressing from its digest over
//! [`PROBES`] slots; a slot whose counters have all left their windows is
//! free and may be taken (eviction). Every write is a compare-and-swap on
//! the value read, retried on a conflict. A key never written is first
//! created empty (Envoy's shared data has no create-if-absent), then
//! claimed by compare-and-swap: two workers creating the same slot at once
//! can lose at most the increments made in between, once per slot.

use sha2::{Digest, Sha256};

use super::config::Quotas;
use super::table::{apply, Charge, Exceeded, Slot};
use crate::envoy::{Envoy, HostError};

/// Slots looked at per identity.
pub const PROBES: u32 = 8;
/// Compare-and-swap attempts before giving up (fail closed).
const ATTEMPTS: u32 = 16;

/// Why a charge was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refusal {
    /// Over a limit.
    Exceeded(Exceeded),
    /// Every slot this identity may use counts another live identity.
    Full { retry_after: u64 },
}

/// The identity's digest: never 0 (0 marks an empty slot).
pub fn owner_of(identity_key: &str) -> u64 {
    let digest = Sha256::digest(identity_key.as_bytes());
    let mut first = [0u8; 8];
    first.copy_from_slice(digest.get(..8).unwrap_or(&[0; 8]));
    u64::from_le_bytes(first).max(1)
}

/// Charges the identity's counters. `Ok(Err(_))`: refused by the quotas;
/// `Err`: the counters could not be read or written (the caller fails closed).
pub fn charge(
    envoy: &impl Envoy,
    quotas: &Quotas,
    identity_key: &str,
    now: u64,
    charge: &Charge,
) -> Result<Result<(), Refusal>, HostError> {
    let owner = owner_of(identity_key);
    let n = quotas.limits.len();
    let size = u64::from(quotas.max_identities);
    let start = owner % size;
    for _ in 0..ATTEMPTS {
        let mut mine = None;
        let mut free = None;
        let mut soonest = u64::MAX;
        for p in 0..u64::from(PROBES.min(quotas.max_identities)) {
            let key = format!("{}.{}", quotas.namespace, (start + p) % size);
            let (value, cas) = envoy.shared_get(&key)?;
            let slot = Slot::decode(value.as_deref(), n);
            if slot.owner == owner {
                mine = Some((key, slot, cas));
                break;
            }
            if !slot.is_live(&quotas.limits, now) {
                if free.is_none() {
                    free = Some((key, slot, cas));
                }
            } else {
                soonest = soonest.min(slot.free_in(&quotas.limits, now));
            }
        }
        let Some((key, mut slot, cas)) = mine.or(free) else {
            return Ok(Err(Refusal::Full {
                retry_after: soonest.max(1),
            }));
        };
        let Some(cas) = cas else {
            // Never written: create it empty, then claim it by CAS.
            envoy.shared_set(&key, &Slot::empty(n).encode(), None)?;
            continue;
        };
        if slot.owner != owner {
            slot = Slot::empty(n);
            slot.owner = owner;
        }
        if let Err(e) = apply(&quotas.limits, &mut slot, now, charge) {
            return Ok(Err(Refusal::Exceeded(e)));
        }
        match envoy.shared_set(&key, &slot.encode(), Some(cas)) {
            Ok(()) => return Ok(Ok(())),
            Err(e) if e.is_cas_mismatch() => continue,
            Err(e) => return Err(e),
        }
    }
    Err(HostError(format!(
        "quota counters: {ATTEMPTS} compare-and-swap conflicts in a row"
    )))
}
