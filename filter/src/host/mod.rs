//! The proxy-wasm adapter: the only code that talks to Envoy, and nothing
//! else. [`envoy::ProxyWasm`] implements [`crate::envoy::Envoy`] with
//! proxy-wasm's host calls; the contexts forward every callback to the core
//! ([`crate::worker::Worker`], [`crate::http_filter::HttpFilter`]) unchanged.
//!
//! Host calls go through `proxy_wasm::hostcalls`, which return `Result`,
//! never through the SDK's trait helpers, which unwrap and would trap the
//! worker's VM on an unexpected host status.

mod envoy;
mod http;
mod root;

use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::Root::default())
    });
}}
