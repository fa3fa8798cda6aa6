//! A worker's identity state: the policy's [`Authenticator`], the key sets
//! it verifies with (fetched or inline), and its cache of verified tokens.
//! One per worker VM, shared by the worker's streams.

use std::cell::RefCell;

use super::authenticate::{Authenticated, Authenticator, TokenSources};
use super::cache::TokenCache;
use super::config::KeySource;
use super::error::{AuthError, AuthErrorKind};
use super::fetch::KeyStore;
use crate::envoy::Envoy;
use crate::headers::{self, HeaderList};

#[derive(Debug)]
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

    /// Whether a provider's keys are fetched (the tick then refreshes them).
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

    /// Verifies the caller's token in `headers` (the route name, for
    /// per-route providers, is read from Envoy only if a provider asks).
    /// An unknown `kid` makes the key store refetch (rate limited).
    pub fn authenticate(
        &self,
        envoy: &impl Envoy,
        headers: &HeaderList,
        path: &str,
        now_secs: u64,
    ) -> Result<Authenticated, AuthError> {
        let req = StreamRequest {
            headers,
            path,
            route_name: || {
                envoy
                    .property(&["xds", "route_name"])
                    .map(|b| String::from_utf8_lossy(&b).into_owned())
                    .filter(|n| !n.is_empty())
            },
        };
        let result = {
            let keys = self.keys.borrow();
            let mut cache = self.cache.borrow_mut();
            self.auth.authenticate(&req, &keys, &mut cache, now_secs)
        };
        if let Err(e) = &result {
            if e.kind == AuthErrorKind::UnknownKid {
                if let Some(i) = e.provider_index {
                    self.keys.borrow_mut().on_unknown_kid(i, now_secs);
                }
            }
        }
        result
    }
}

/// The current stream's request, as the authenticator reads it.
struct StreamRequest<'a, F> {
    headers: &'a HeaderList,
    path: &'a str,
    route_name: F,
}

impl<F: Fn() -> Option<String>> TokenSources for StreamRequest<'_, F> {
    fn header_values(&self, name: &str) -> Vec<String> {
        headers::values(self.headers, name)
            .map(str::to_string)
            .collect()
    }

    fn path(&self) -> &str {
        self.path
    }

    fn route_name(&self) -> Option<String> {
        (self.route_name)()
    }
}
