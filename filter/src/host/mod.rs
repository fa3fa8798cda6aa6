//! The proxy-wasm adapter: the only code that talks to Envoy.
//!
//! It reads what the core needs from Envoy, asks the core, and carries out the
//! answer. Host calls go through `proxy_wasm::hostcalls`, which return
//! `Result`, never through the SDK's trait helpers, which unwrap and would trap
//! the worker's VM on an unexpected host status.

mod approval;
mod collector;
mod http;
mod identity;
mod jwks;
mod metrics;
mod props;
mod root;

use proxy_wasm::types::LogLevel;

proxy_wasm::main! {{
    proxy_wasm::set_log_level(LogLevel::Info);
    proxy_wasm::set_root_context(|_| -> Box<dyn proxy_wasm::traits::RootContext> {
        Box::new(root::Root::default())
    });
}}
