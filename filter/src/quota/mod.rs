//! Blast-radius limits per verified identity (`quotas`): requests, request
//! bytes, response bytes and rule matches per fixed window, counted in
//! Envoy's shared data so every worker of one Envoy sees the same counts.
//! Over a limit the request gets 429 with `Retry-After` and a JSON reason
//! naming the limit; a counter that cannot be read or written refuses (503).
//! See `docs/quotas.md`.

pub mod config;
pub mod shared;
pub mod table;

pub use config::{compile, Counts, Limit, Quotas, QuotasDoc};
pub use shared::Refusal;
pub use table::Charge;

use crate::identity::Identity;
use crate::local_reply::LocalReply;

/// Who is counted: the verified subject, per issuer (two providers' `sub`
/// values never share counters).
pub fn identity_key(identity: &Identity) -> String {
    format!("{}\n{}", identity.issuer, identity.subject)
}

/// The agent's answer to a refused charge.
pub fn reply(refusal: &Refusal) -> LocalReply {
    match refusal {
        Refusal::Exceeded(e) => LocalReply::new(
            429,
            "quota_exceeded",
            format!(
                "this identity is over the limit {:?} ({} per {} s); retry after {} s",
                e.limit, e.max, e.window_secs, e.retry_after
            ),
        )
        .with_field("limit", e.limit.clone())
        .with_header("retry-after", e.retry_after.to_string()),
        Refusal::Full { retry_after } => LocalReply::new(
            429,
            "quota_capacity",
            "the gateway counts as many identities as its policy allows (quotas.max_identities); retry later",
        )
        .with_header("retry-after", retry_after.to_string()),
    }
}

/// The answer when the counters cannot be read or written (fail closed).
pub fn unavailable_reply() -> LocalReply {
    LocalReply::new(
        503,
        "quota_unavailable",
        "the gateway could not count this request against its limits; it was not passed on",
    )
    .with_header("retry-after", "1")
}
