use serde::Deserialize;

/// Whether decisions are carried out or only logged (per policy and per rule).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize, Default)]
#[serde(rename_all = "snake_case")]
pub enum Mode {
    /// Decisions are carried out: requests are refused, bodies rewritten.
    #[default]
    Enforce,
    /// Decisions are logged but never block or rewrite: how a policy is rolled out.
    Monitor,
}
