//! Keeping the worker's fetched key sets fresh, on the tick: fetch what is
//! due through the provider's Envoy cluster, share it with the other workers
//! ([`super::shared`]: one fetch in flight per provider, taken with
//! compare-and-swap), and adopt what another worker published.

use std::collections::HashMap;
use std::time::Duration;

use super::shared;
use super::state::IdentityState;
use crate::audit::metrics::{self, Family};
use crate::callout::{Callouts, Owner};
use crate::envoy::{CalloutRequest, CalloutResponse, Envoy};

#[derive(Debug, Default)]
pub struct Refresh {
    /// When each provider's shared body was last adopted (its stamp).
    adopted: HashMap<usize, u64>,
}

impl Refresh {
    /// Adopts newly shared key sets, then starts the fetches that are due.
    pub fn tick(
        &mut self,
        envoy: &impl Envoy,
        identity: &IdentityState,
        callouts: &mut Callouts,
        now: u64,
    ) {
        for i in 0..identity.auth.providers().len() {
            self.adopt_shared(envoy, identity, i, now);
        }
        let due = identity.keys.borrow().due_fetches(now);
        for f in due {
            let name = identity.provider_name(f.provider_index);
            let until = now + f.timeout_ms.div_ceil(1000) + 5;
            if !take_lock(envoy, &name, now, until) {
                continue; // another worker is fetching; adopt its result next tick
            }
            let call = CalloutRequest {
                cluster: f.cluster.clone(),
                headers: vec![
                    (":method".into(), "GET".into()),
                    (":path".into(), f.path.clone()),
                    (":authority".into(), f.authority.clone()),
                    ("accept".into(), "application/json".into()),
                ],
                body: None,
                timeout: Duration::from_millis(f.timeout_ms),
            };
            identity
                .keys
                .borrow_mut()
                .on_fetch_started(f.provider_index, now);
            let owner = Owner::Jwks {
                provider: f.provider_index,
            };
            if let Err(e) = callouts.dispatch(envoy, &call, owner) {
                release_lock(envoy, &name);
                log::warn!(
                    "transit-guard: cannot fetch the JWKS of provider {name} from cluster {}: {e}",
                    f.cluster
                );
                metrics::incr(envoy, Family::JwksFetchFailures, &name);
                let _ = identity.keys.borrow_mut().on_fetched(
                    f.provider_index,
                    now,
                    Err(format!("dispatch failed: {e}")),
                );
            }
        }
    }

    /// A provider's fetch answered: adopt and share the keys, or keep the
    /// last good ones.
    pub fn answered(
        &mut self,
        envoy: &impl Envoy,
        identity: &IdentityState,
        provider: usize,
        response: &CalloutResponse,
        now: u64,
    ) {
        let name = identity.provider_name(provider);
        let result = match response.status {
            Some(200) => Ok(response.body.as_slice()),
            Some(s) => Err(format!("the JWKS endpoint answered {s}")),
            None => Err("the JWKS fetch failed (no response)".to_string()),
        };
        let fetched = identity.keys.borrow_mut().on_fetched(provider, now, result);
        match fetched {
            Ok(n) => {
                log::info!("transit-guard: fetched {n} keys for provider {name}");
                publish(envoy, &name, now, &response.body);
                self.adopted.insert(provider, now);
            }
            Err(e) => {
                log::warn!("transit-guard: JWKS refresh for provider {name} failed, keeping the last good keys: {e}");
                metrics::incr(envoy, Family::JwksFetchFailures, &name);
            }
        }
        // Released after publishing: a VM that takes the lock next finds the
        // new keys on its tick instead of fetching them again.
        release_lock(envoy, &name);
    }

    fn adopt_shared(
        &mut self,
        envoy: &impl Envoy,
        identity: &IdentityState,
        provider: usize,
        now: u64,
    ) {
        let name = identity.provider_name(provider);
        let stamp = shared::decode_secs(shared_value(envoy, &shared::stamp_key(&name)).as_deref());
        if stamp == 0
            || self
                .adopted
                .get(&provider)
                .is_some_and(|seen| *seen >= stamp)
        {
            return;
        }
        let Some(body) = shared_value(envoy, &shared::body_key(&name)) else {
            return;
        };
        self.adopted.insert(provider, stamp);
        let mut keys = identity.keys.borrow_mut();
        keys.on_fetch_started(provider, now);
        // The log line marks the adoption: tests and the demo wait for it.
        match keys.on_fetched(provider, now, Ok(&body)) {
            Ok(n) => log::info!("transit-guard: adopted {n} shared keys for provider {name}"),
            Err(e) => {
                log::warn!("transit-guard: the shared JWKS of provider {name} is unusable: {e}")
            }
        }
    }
}

fn shared_value(envoy: &impl Envoy, key: &str) -> Option<Vec<u8>> {
    envoy.shared_get(key).ok().and_then(|(v, _)| v)
}

/// Takes the provider's fetch lock until `until`; false if another
/// worker's fetch holds it.
fn take_lock(envoy: &impl Envoy, provider: &str, now: u64, until: u64) -> bool {
    let key = shared::lock_key(provider);
    let Ok((value, cas)) = envoy.shared_get(&key) else {
        return true; // no shared data: fetch alone rather than never
    };
    if shared::lock_held(value.as_deref(), now) {
        return false;
    }
    envoy
        .shared_set(&key, &shared::encode_secs(until), cas)
        .is_ok()
}

fn release_lock(envoy: &impl Envoy, provider: &str) {
    let _ = envoy.shared_set(&shared::lock_key(provider), &shared::encode_secs(0), None);
}

fn publish(envoy: &impl Envoy, provider: &str, now: u64, body: &[u8]) {
    let ok = envoy
        .shared_set(&shared::body_key(provider), body, None)
        .is_ok()
        && envoy
            .shared_set(
                &shared::stamp_key(provider),
                &shared::encode_secs(now),
                None,
            )
            .is_ok();
    if !ok {
        log::warn!(
            "transit-guard: cannot share the JWKS of provider {provider} with the other workers"
        );
    }
}
