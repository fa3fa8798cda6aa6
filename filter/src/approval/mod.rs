//! Human approval of held requests: the filter side of the approver protocol
//! (`docs/approver.md`). Pure Rust, no proxy-wasm: the host adapter
//! ([`crate::worker`], through [`crate::envoy::Envoy`]) makes the calls
//! this module plans.
//!
//! - [`config`]: the policy's `approval` section.
//! - [`request`]: fingerprint, create body, masked preview.
//! - [`reply`]: reading the approver's answers; failures and their codes.
//! - [`wait`]: the state machine from create to outcome, time injected.
//! - [`registry`]: the worker's held requests, their callouts and the tick.

pub mod config;
pub mod registry;
pub mod reply;
pub mod request;
pub mod wait;

#[cfg(test)]
mod tests;

pub use config::{compile, ApprovalConfig, ApprovalDoc};
pub use reply::Failure;
pub use request::{create_body, fingerprint, HeldRequest};
pub use wait::{Callout, Next, Outcome, Wait};
