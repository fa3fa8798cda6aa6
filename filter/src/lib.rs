//! transit-guard: a proxy-wasm HTTP filter that governs what AI agents send and
//! receive, in transit, inside Envoy.
//!
//! The crate is split the way Kuadrant's wasm-shim is: everything outside
//! [`host`] is plain Rust with no proxy-wasm import, unit-tested on the native
//! target (and compiled to `wasm32-wasip1` and run under V8 by `cargo xtask
//! test`). `host` is the thin adapter that reads from Envoy, asks the core, and
//! writes back.

pub mod approval;
pub mod audit;
pub mod body;
pub mod callout;
pub mod config;
pub mod envoy;
pub mod flow;
pub mod headers;
pub mod http_filter;
pub mod identity;
pub mod local_reply;
pub mod mask;
pub mod mcp;
pub mod policy;
pub mod quota;
pub mod rules;
pub mod sse;
pub mod worker;

#[cfg(all(target_arch = "wasm32", not(test)))]
mod host;
