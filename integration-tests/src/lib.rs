//! Test harness for transit-guard: runs the real wasm module in the real Envoy
//! binary, with TLS on both legs, against upstreams that record what reached
//! them. `cargo xtask demo` runs the stack in `demo.rs`, and `cargo xtask token`
//! mints tokens with its dev issuer (`issuer.rs`).

pub mod approver;
pub mod certs;
pub mod client;
pub mod collector;
pub mod containers;
pub mod demo;
pub mod envoy;
pub mod gateway;
pub mod issuer;
pub mod mcp_server;
pub mod oci;
pub mod oidc;
pub mod paths;
pub mod sse;
pub mod template;
pub mod tokens;
pub mod upstream;
pub mod wait;
