//! The bottom of the policy: what every section compiler shares, and nothing
//! else. Sections (`rules`, `mask`, `identity`, `approval`, `audit`) import
//! from here; the whole policy ([`crate::config::Policy`]) imports the
//! sections. Nothing here imports a section, so the modules form no cycle.

pub mod doc;
mod error;
mod mode;

pub use error::PolicyError;
pub use mode::Mode;
