//! The root context: loads the policy once per worker VM.

use std::rc::Rc;

use proxy_wasm::hostcalls;
use proxy_wasm::traits::{Context, HttpContext, RootContext};
use proxy_wasm::types::{BufferType, ContextType};

use super::http::Http;
use crate::config::Policy;

#[derive(Default)]
pub struct Root {
    policy: Option<Rc<Policy>>,
}

impl Context for Root {}

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
        match Policy::from_json(&text) {
            Ok(policy) => {
                log::info!(
                    "transit-guard: policy loaded (mode {:?}, require_tls {})",
                    policy.mode,
                    policy.require_tls
                );
                self.policy = Some(Rc::new(policy));
                true
            }
            Err(e) => {
                log::error!("transit-guard: {e}");
                false
            }
        }
    }

    fn create_http_context(&self, _context_id: u32) -> Option<Box<dyn HttpContext>> {
        Some(Box::new(Http::new(self.policy.clone())))
    }

    fn get_type(&self) -> Option<ContextType> {
        Some(ContextType::HttpContext)
    }
}
