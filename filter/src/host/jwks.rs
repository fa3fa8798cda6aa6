//! Keeping a worker's JWKS fresh: adopt what another worker published in
//! shared data, else take the provider's fetch lock and fetch through the
//! provider's Envoy cluster, then publish. See `identity::shared`.

use std::collections::HashMap;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};

use super::identity::{now_secs, IdentityState};
use super::metrics;
use crate::identity::shared;

#[derive(Default)]
pub struct JwksFetcher {
    /// Callouts in flight: token -> provider index.
    in_flight: HashMap<u32, usize>,
    /// Per provider: the stamp of the shared body this worker last loaded.
    adopted: HashMap<usize, u64>,
}

impl JwksFetcher {
    /// Called on the root's tick.
    pub fn tick(&mut self, identity: &IdentityState) {
        let now = now_secs();
        for i in 0..identity.auth.providers().len() {
            self.adopt_shared(identity, i, now);
        }
        let due = identity.keys.borrow().due_fetches(now);
        for f in due {
            let name = identity.provider_name(f.provider_index);
            let until = now + f.timeout_ms.div_ceil(1000) + 5;
            if !take_lock(&name, now, until) {
                continue; // another worker is fetching; adopt its result next tick
            }
            let headers = vec![
                (":method", "GET"),
                (":path", f.path.as_str()),
                (":authority", f.authority.as_str()),
                ("accept", "application/json"),
            ];
            let timeout = Duration::from_millis(f.timeout_ms);
            let mut keys = identity.keys.borrow_mut();
            keys.on_fetch_started(f.provider_index, now);
            match hostcalls::dispatch_http_call(&f.cluster, headers, None, vec![], timeout) {
                Ok(token) => {
                    self.in_flight.insert(token, f.provider_index);
                }
                Err(status) => {
                    release_lock(&name);
                    log::warn!(
                        "transit-guard: cannot fetch the JWKS of provider {name} from cluster {}: {status:?}",
                        f.cluster
                    );
                    metrics::incr("jwks_fetch_failures", &name);
                    let _ = keys.on_fetched(
                        f.provider_index,
                        now,
                        Err(format!("dispatch failed: {status:?}")),
                    );
                }
            }
        }
    }

    /// A callout answered; false if it was not one of ours.
    pub fn on_response(&mut self, identity: &IdentityState, token: u32, body_size: usize) -> bool {
        let Some(provider) = self.in_flight.remove(&token) else {
            return false;
        };
        let name = identity.provider_name(provider);
        release_lock(&name);
        let status = hostcalls::get_map(MapType::HttpCallResponseHeaders)
            .unwrap_or_default()
            .into_iter()
            .find(|(k, _)| k == ":status")
            .map(|(_, v)| v);
        let body = hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default();
        // A reset callout arrives with no headers at all: no status is a failure.
        let result = match status.as_deref() {
            Some("200") => Ok(body.as_slice()),
            Some(s) => Err(format!("the JWKS endpoint answered {s}")),
            None => Err("the JWKS fetch failed (no response)".to_string()),
        };
        let now = now_secs();
        match identity.keys.borrow_mut().on_fetched(provider, now, result) {
            Ok(n) => {
                log::info!("transit-guard: fetched {n} keys for provider {name}");
                publish(&name, now, &body);
                self.adopted.insert(provider, now);
            }
            Err(e) => {
                log::warn!("transit-guard: JWKS refresh for provider {name} failed, keeping the last good keys: {e}");
                metrics::incr("jwks_fetch_failures", &name);
            }
        }
        true
    }

    /// Loads a body another worker published, if newer than ours.
    fn adopt_shared(&mut self, identity: &IdentityState, provider: usize, now: u64) {
        let name = identity.provider_name(provider);
        let stamp = shared::decode_secs(shared_value(&shared::stamp_key(&name)).as_deref());
        if stamp == 0
            || self
                .adopted
                .get(&provider)
                .is_some_and(|seen| *seen >= stamp)
        {
            return;
        }
        let Some(body) = shared_value(&shared::body_key(&name)) else {
            return;
        };
        self.adopted.insert(provider, stamp);
        let mut keys = identity.keys.borrow_mut();
        keys.on_fetch_started(provider, now);
        if let Err(e) = keys.on_fetched(provider, now, Ok(&body)) {
            log::warn!("transit-guard: the shared JWKS of provider {name} is unusable: {e}");
        }
    }
}

fn shared_value(key: &str) -> Option<Vec<u8>> {
    hostcalls::get_shared_data(key).ok().and_then(|(v, _)| v)
}

/// Takes the provider's fetch lock until `until`, unless another worker holds
/// it. Compare-and-swap: of two workers racing, one wins.
fn take_lock(provider: &str, now: u64, until: u64) -> bool {
    let key = shared::lock_key(provider);
    let Ok((value, cas)) = hostcalls::get_shared_data(&key) else {
        return true; // no shared data: fetch alone rather than never
    };
    if shared::lock_held(value.as_deref(), now) {
        return false;
    }
    hostcalls::set_shared_data(&key, Some(&shared::encode_secs(until)), cas).is_ok()
}

fn release_lock(provider: &str) {
    let _ = hostcalls::set_shared_data(
        &shared::lock_key(provider),
        Some(&shared::encode_secs(0)),
        None,
    );
}

/// Body first, then its stamp: a worker that sees the stamp finds the body.
fn publish(provider: &str, now: u64, body: &[u8]) {
    let ok = hostcalls::set_shared_data(&shared::body_key(provider), Some(body), None).is_ok()
        && hostcalls::set_shared_data(
            &shared::stamp_key(provider),
            Some(&shared::encode_secs(now)),
            None,
        )
        .is_ok();
    if !ok {
        log::warn!(
            "transit-guard: cannot share the JWKS of provider {provider} with the other workers"
        );
    }
}
