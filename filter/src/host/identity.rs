//! A worker's identity state: its key store and verified-token cache, shared
//! by the root context (which refreshes keys) and every HTTP context.

use std::cell::RefCell;

use proxy_wasm::hostcalls;

use crate::identity::authenticate::{Authenticated, Authenticator, TokenSources};
use crate::identity::cache::TokenCache;
use crate::identity::config::KeySource;
use crate::identity::error::{AuthError, AuthErrorKind};
use crate::identity::fetch::KeyStore;

pub struct IdentityState {
    pub auth: Authenticator,
    pub keys: RefCell<KeyStore>,
    pub cache: RefCell<TokenCache>,
}

impl IdentityState {
    pub fn new(auth: &Authenticator) -> IdentityState {
        IdentityState {
            keys: RefCell::new(auth.new_key_store()),
            cache: RefCell::new(auth.new_cache()),
            auth: auth.clone(),
        }
    }

    pub fn has_remote_keys(&self) -> bool {
        self.auth
            .providers()
            .iter()
            .any(|p| matches!(p.keys, KeySource::Remote(_)))
    }

    pub fn provider_name(&self, index: usize) -> String {
        self.auth
            .providers()
            .get(index)
            .map(|p| p.name.clone())
            .unwrap_or_else(|| index.to_string())
    }

    /// Verifies the request's token; an unknown `kid` brings the next JWKS
    /// fetch forward (rate limited by the key store).
    pub fn authenticate(
        &self,
        headers: &[(String, String)],
        path: &str,
    ) -> Result<Authenticated, AuthError> {
        let req = HostRequest { headers, path };
        let now = now_secs();
        let result = {
            let keys = self.keys.borrow();
            let mut cache = self.cache.borrow_mut();
            self.auth.authenticate(&req, &keys, &mut cache, now)
        };
        if let Err(e) = &result {
            if e.kind == AuthErrorKind::UnknownKid {
                if let Some(i) = e.provider_index {
                    self.keys.borrow_mut().on_unknown_kid(i, now);
                }
            }
        }
        result
    }
}

/// The request's headers as Envoy gave them (names are lowercase).
struct HostRequest<'a> {
    headers: &'a [(String, String)],
    path: &'a str,
}

impl TokenSources for HostRequest<'_> {
    fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.clone())
            .collect()
    }

    fn path(&self) -> &str {
        self.path
    }

    fn route_name(&self) -> Option<String> {
        super::props::string_prop(&["xds", "route_name"]).filter(|n| !n.is_empty())
    }
}

/// Seconds since the epoch, from Envoy's clock.
pub fn now_secs() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| d.as_secs())
        .unwrap_or(0)
}
