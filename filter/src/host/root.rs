//! The root context: loads the policy once per worker VM, and keeps the
//! worker's JWKS fresh on a tick (`jwks.rs`).

use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType};

use super::approval;
use super::collector::CollectorSink;
use super::http::Http;
use super::identity::IdentityState;
use super::jwks::JwksFetcher;
use crate::config::Policy;

/// How often the root wakes to see whether a key set is due for a fetch.
const TICK: Duration = Duration::from_millis(250);

#[derive(Default)]
pub struct Root {
    policy: Option<Rc<Policy>>,
    identity: Option<Rc<IdentityState>>,
    jwks: JwksFetcher,
    collector: Option<CollectorSink>,
}

impl Context for Root {
    fn on_http_call_response(
        &mut self,
        token: u32,
        _headers: usize,
        body_size: usize,
        _trailers: usize,
    ) {
        // Approval polls started by the tick are answered here.
        if approval::owns(token) {
            approval::on_response(token, body_size);
            return;
        }
        if let Some(identity) = &self.identity {
            if self.jwks.on_response(identity, token, body_size) {
                return;
            }
        }
        if let Some(sink) = &mut self.collector {
            sink.on_response(token);
        }
    }
}

impl Root {
    /// The tick runs always for JWKS refreshes and the collector; approvals
    /// start it while a request waits (`host::approval`).
    fn needs_tick(&self) -> bool {
        self.identity.as_ref().is_some_and(|i| i.has_remote_keys()) || self.collector.is_some()
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
        self.collector = policy.audit.collector.as_ref().map(CollectorSink::new);
        if self.needs_tick() {
            if let Err(status) = hostcalls::set_tick_period(TICK) {
                log::error!("transit-guard: cannot start the JWKS refresh timer: {status:?}");
                return false;
            }
            approval::note_ticking();
        }
        self.policy = Some(policy);
        true
    }

    fn on_tick(&mut self) {
        // Approvals first: they have deadlines. The tick stops when nothing
        // else needs it and no request waits.
        approval::tick(self.needs_tick());
        if let Some(identity) = &self.identity {
            self.jwks.tick(identity);
        }
        if let Some(sink) = &mut self.collector {
            sink.tick();
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        let collector = self.collector.as_ref().map(|c| c.queue.clone());
        Some(Box::new(Http::new(
            context_id,
            self.policy.clone(),
            self.identity.clone(),
            collector,
        )))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
