//! The root context: loads the policy once per worker VM, owns the tick,
//! and forwards the callout answers it receives to the core's [`Worker`].

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType};

use super::envoy::ProxyWasm;
use super::http::Http;
use crate::worker::{Worker, TICK};

#[derive(Default)]
pub struct Root {
    worker: Option<Rc<Worker>>,
}

impl Context for Root {
    /// Callouts started on the tick (JWKS, collector, approval polls).
    fn on_http_call_response(&mut self, token: u32, _: usize, body_size: usize, _: usize) {
        if let Some(worker) = &self.worker {
            worker.on_callout_response(&ProxyWasm, token, body_size);
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
        let worker = match Worker::configure(&text) {
            Ok(w) => w,
            Err(e) => {
                log::error!("transit-guard: {e}");
                return false;
            }
        };
        if worker.needs_tick() {
            if let Err(status) = hostcalls::set_tick_period(TICK) {
                log::error!("transit-guard: cannot start the timer: {status:?}");
                return false;
            }
        }
        self.worker = Some(Rc::new(worker));
        true
    }

    fn on_tick(&mut self) {
        if let Some(worker) = &self.worker {
            worker.on_tick(&ProxyWasm);
        }
    }

    fn create_http_context(&self, context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http::new(context_id, self.worker.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
