//! Who is calling: JWT access-token validation against configured providers
//! (JWKS inline or fetched), the identity built from a verified token, and a
//! per-worker cache of verified tokens. Pure Rust, no proxy-wasm import: the
//! host adapter drives it, and time is always a parameter (seconds since the
//! epoch).
//!
//! # What the host does
//!
//! Once per policy: `let auth = Authenticator::new(identity::config::compile(doc)?);`
//! and, per worker, `let mut keys = auth.new_key_store(); let mut cache = auth.new_cache();`
//! (rebuild both when the policy changes).
//!
//! On request headers:
//!
//! ```text
//! match auth.authenticate(&request, &keys, &mut cache, now) {
//!     Ok(a) => {
//!         remove every value of each header in a.remove_headers;
//!         then set each (name, value) in a.set_headers;
//!         if let Some(p) = a.new_path { set :path to p }
//!         a.identity (None on an exempt path) goes to rules and audit
//!     }
//!     Err(e) => {
//!         if e.kind == AuthErrorKind::UnknownKid { if let Some(i) = e.provider_index { keys.on_unknown_kid(i, now) } }
//!         send e.to_reply(&auth.config.realm)  // 401 + WWW-Authenticate, or 403
//!     }
//! }
//! ```
//!
//! Remote key sets: see [`fetch`] for the calls (`due_fetches`,
//! `on_fetch_started`, `on_fetched`, `on_unknown_kid`, `next_wakeup`). Until a
//! remote set's first successful fetch its provider's tokens fail with
//! `jwks_unavailable`.
//!
//! # Checks, in order
//!
//! 1. Token found in exactly one form (the provider's `from_headers`, default
//!    `Authorization: Bearer`, or `from_params`); two different tokens refused.
//! 2. Cache: a hit (SHA-256 of the whole token; entries end at `exp` and at
//!    `cache.max_ttl_secs`) skips to step 9.
//! 3. Size (`max_token_bytes`, default 8 KiB) before any decoding.
//! 4. Three parts, canonical unpadded base64url, JSON objects with no
//!    duplicate member names at any depth, `alg` known (`none` in any spelling
//!    is not), no `crit`, non-empty signature. `jwk`, `jku`, `x5u`, `x5c`
//!    header members are never used.
//! 5. `iss` picks the provider (issuers are unique per policy).
//! 6. `alg` in the provider's `algorithms`; `typ` when required.
//! 7. `exp` (required by default) and `nbf` with `clock_skew_secs` (default 60).
//! 8. Keys by `kid` (all keys fitting `alg` when the token has none), key type
//!    and the key's own `alg` must fit; signature verified (ECDSA r or s = 0
//!    refused up front, Ed25519 strict, PSS salt = hash length).
//! 9. `aud` (403 when only this fails), `sub`, groups, scopes, claim headers.
//!
//! # Crypto backend (measured)
//!
//! RustCrypto crates directly (`rsa` 0.10, `p256`/`p384` 0.14,
//! `ed25519-dalek` 3, `hmac`, `sha2`), chosen by timing one signature
//! verification in V8 (Node 20 WASI, wasm32-wasip1 release, 2048-bit RSA):
//! RS256 0.39-0.50 ms with rsa 0.10 vs 0.72-0.80 ms with rsa 0.9 (what
//! jwt-simple's pure-Rust backend uses: 0.69 ms); ES384 2.3-2.6 ms with p384
//! 0.14 vs 6.2-7.0 ms with 0.13; ES256 ~0.85 ms and EdDSA ~0.12 ms either way.
//! Whole `authenticate` calls, cold and cached, are timed by the ignored test
//! `identity::tests::identity_timing`; figures in `docs/identity.md`.

pub mod authenticate;
pub mod cache;
pub mod claims;
pub mod config;
pub mod error;
pub mod fetch;
pub mod jwks;
pub mod jwt;
pub mod refresh;
pub mod shared;
pub mod state;
pub mod verify;

#[cfg(test)]
mod tests;

pub use authenticate::{Authenticated, Authenticator, PlainRequest, TokenSources};
pub use cache::TokenCache;
pub use config::{compile, IdentityDoc, Providers};
pub use error::{AuthError, AuthErrorKind};
pub use fetch::{FetchRequest, KeyStore};

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
