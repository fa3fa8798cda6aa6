//! Test harness for transit-guard: runs the real wasm module in the real Envoy
//! binary, with TLS on both legs, against upstreams that record what reached
//! them. `cargo xtask demo` uses the same pieces.

pub mod certs;
pub mod client;
pub mod collector;
pub mod envoy;
pub mod gateway;
pub mod oidc;
pub mod paths;
pub mod sse;
pub mod template;
pub mod tokens;
pub mod upstream;
