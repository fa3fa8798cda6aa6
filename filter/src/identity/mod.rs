//! Who is calling: the identity built from a verified token.

/// A caller, as rules, audit and headers see it. Built only from a token whose
/// signature, issuer, audience and lifetime were verified.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Identity {
    /// The `identity.providers[].name` that verified the token.
    pub provider: String,
    /// `iss`.
    pub issuer: String,
    /// `sub`.
    pub subject: String,
    /// From the provider's groups claim (string or array, nested paths allowed).
    pub groups: Vec<String>,
    /// From `scope` (space-separated string) or `scp` (array).
    pub scopes: Vec<String>,
}
