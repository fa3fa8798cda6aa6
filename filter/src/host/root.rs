//! The root context: loads the policy once per worker VM, and keeps the
//! worker's JWKS fresh (fetched through Envoy clusters on a tick).

use std::collections::HashMap;
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType, MapType};

use super::http::Http;
use super::identity::{now_secs, IdentityState};
use super::metrics;
use crate::config::Policy;

/// How often the root wakes to see whether a key set is due for a fetch.
const TICK: Duration = Duration::from_millis(250);

#[derive(Default)]
pub struct Root {
    policy: Option<Rc<Policy>>,
    identity: Option<Rc<IdentityState>>,
    /// JWKS callouts in flight: callout token -> provider index.
    fetches: HashMap<u32, usize>,
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        let Some(provider) = self.fetches.remove(&token) else {
            return;
        };
        let Some(identity) = &self.identity else {
            return;
        };
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
        let name = identity.provider_name(provider);
        match identity
            .keys
            .borrow_mut()
            .on_fetched(provider, now_secs(), result)
        {
            Ok(n) => log::info!("transit-guard: fetched {n} keys for provider {name}"),
            Err(e) => {
                log::warn!("transit-guard: JWKS refresh for provider {name} failed, keeping the last good keys: {e}");
                metrics::incr("jwks_fetch_failures", &name);
            }
        }
    }
}

impl RootContext for Root {
    /// Returning false makes Envoy refuse the plugin (and, at boot, refuse to
    /// start): a bad policy must never leave a gateway running without it.
    fn on_configure(&mut self, _size: usize) -> bool {
        let text = match hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX) {
            Ok(Some(bytes)) => bytes,
            Ok(None) => Vec::new(),
            Err(status) => {
                log::error!("transit-guard: cannot read the plugin configuration: {status:?}");
                return false;
            }
        };
        let policy = match Policy::from_json(&text) {
            Ok(policy) => Rc::new(policy),
            Err(e) => {
                log::error!("transit-guard: {e}");
                return false;
            }
        };
        log::info!(
            "transit-guard: policy loaded (mode {:?}, require_tls {}, {} rules, identity {})",
            policy.mode,
            policy.require_tls,
            policy.rules.len(),
            if policy.auth.is_some() { "on" } else { "off" }
        );
        self.identity = policy.auth.as_ref().map(|a| Rc::new(IdentityState::new(a)));
        if self.identity.as_ref().is_some_and(|i| i.has_remote_keys()) {
            if let Err(status) = hostcalls::set_tick_period(TICK) {
                log::error!("transit-guard: cannot start the JWKS refresh timer: {status:?}");
                return false;
            }
        }
        self.policy = Some(policy);
        true
    }

    fn on_tick(&mut self) {
        let Some(identity) = &self.identity else {
            return;
        };
        let now = now_secs();
        let due = identity.keys.borrow().due_fetches(now);
        for f in due {
            let headers = vec![
                (":method", "GET"),
                (":path", f.path.as_str()),
                (":authority", f.authority.as_str()),
                ("accept", "application/json"),
            ];
            let timeout = Duration::from_millis(f.timeout_ms);
            match hostcalls::dispatch_http_call(&f.cluster, headers, None, vec![], timeout) {
                Ok(token) => {
                    self.fetches.insert(token, f.provider_index);
                    identity
                        .keys
                        .borrow_mut()
                        .on_fetch_started(f.provider_index, now);
                }
                Err(status) => {
                    let name = identity.provider_name(f.provider_index);
                    log::warn!("transit-guard: cannot fetch the JWKS of provider {name} from cluster {}: {status:?}", f.cluster);
                    metrics::incr("jwks_fetch_failures", &name);
                    let mut keys = identity.keys.borrow_mut();
                    keys.on_fetch_started(f.provider_index, now);
                    let _ = keys.on_fetched(
                        f.provider_index,
                        now,
                        Err(format!("dispatch failed: {status:?}")),
                    );
                }
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http::new(
            self.policy.clone(),
            self.identity.clone(),
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
