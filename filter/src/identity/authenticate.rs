//! The entry point the host calls on request headers: find the token, verify
//! it (or take it from the cache), build the [`Identity`] and say which
//! headers to remove and set.

use super::cache::{token_key, TokenCache, Verified};
use super::claims;
use super::config::{normalize_typ, PathMatch, Provider, Providers};
use super::error::{AuthError, AuthErrorKind};
use super::fetch::KeyStore;
use super::jwt;
use super::verify::verify;
use super::Identity;
use std::rc::Rc;

/// What the host reads from the request.
pub trait TokenSources {
    /// Every value of the request header `name` (lowercase), in order.
    fn header_values(&self, name: &str) -> Vec<String>;
    /// `:path`, with its query string.
    fn path(&self) -> &str;
    /// The name of the Envoy route the request matched (`xds.route_name`),
    /// for `identity.exempt_routes`. `None` when unknown: never exempt.
    fn route_name(&self) -> Option<String> {
        None
    }
}

/// A request as plain data: for tests, and for hosts that collect headers first.
#[derive(Debug, Clone, Default)]
pub struct PlainRequest {
    /// (lowercase name, value).
    pub headers: Vec<(String, String)>,
    pub path: String,
    pub route_name: Option<String>,
}

impl PlainRequest {
    pub fn new(path: &str) -> Self {
        PlainRequest {
            headers: Vec::new(),
            path: path.to_string(),
            route_name: None,
        }
    }

    pub fn route(mut self, name: &str) -> Self {
        self.route_name = Some(name.to_string());
        self
    }

    pub fn header(mut self, name: &str, value: &str) -> Self {
        self.headers
            .push((name.to_ascii_lowercase(), value.to_string()));
        self
    }
}

impl TokenSources for PlainRequest {
    fn header_values(&self, name: &str) -> Vec<String> {
        self.headers
            .iter()
            .filter(|(n, _)| n == name)
            .map(|(_, v)| v.clone())
            .collect()
    }
    fn path(&self) -> &str {
        &self.path
    }
    fn route_name(&self) -> Option<String> {
        self.route_name.clone()
    }
}

/// A request that may go on, and what to do to it first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Authenticated {
    /// `None` on an exempt path or route.
    pub identity: Option<Identity>,
    pub provider_index: Option<usize>,
    /// Remove these request headers (every value): every header any provider
    /// sets from claims (a client must never choose them), and the header that
    /// carried the token unless the provider forwards it.
    pub remove_headers: Vec<String>,
    /// Then set these (after the removal).
    pub set_headers: Vec<(String, String)>,
    /// Replace `:path` with this: the token's query parameter taken out.
    pub new_path: Option<String>,
    /// Whether the verification came from the cache.
    pub from_cache: bool,
}

/// The compiled identity section, ready to authenticate requests.
#[derive(Debug, Clone)]
pub struct Authenticator {
    pub config: Providers,
    claim_header_names: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Source {
    Header(String),
    Param(String),
}

fn malformed(detail: &str) -> AuthError {
    AuthError::new(AuthErrorKind::TokenMalformed, detail)
}

impl Authenticator {
    pub fn new(config: Providers) -> Self {
        let mut claim_header_names: Vec<String> = Vec::new();
        for p in &config.providers {
            for (_, h) in &p.claims_to_headers {
                if !claim_header_names.contains(h) {
                    claim_header_names.push(h.clone());
                }
            }
        }
        Authenticator {
            config,
            claim_header_names,
        }
    }

    /// Every header any provider sets from claims. On a refused request the
    /// reply goes back to the agent and nothing is forwarded; a host that
    /// forwards anyway (monitor mode) must still remove these.
    pub fn claim_header_names(&self) -> &[String] {
        &self.claim_header_names
    }

    pub fn providers(&self) -> &[Provider] {
        &self.config.providers
    }

    /// A fresh cache sized by the policy (one per worker).
    pub fn new_cache(&self) -> TokenCache {
        TokenCache::new(
            self.config.cache_max_entries,
            self.config.cache_max_ttl_secs,
        )
    }

    /// A fresh key store (one per worker).
    pub fn new_key_store(&self) -> KeyStore {
        KeyStore::new(&self.config)
    }

    /// Whether `path` needs no token. Fails closed: a path with percent
    /// escapes, dot segments, `//`, `\` or `;` is never exempt, since Envoy
    /// and the upstream may read it differently from a plain string compare.
    pub fn is_exempt(&self, path: &str) -> bool {
        let path = path.split(['?', '#']).next().unwrap_or("");
        if self.config.exempt_paths.is_empty()
            || !path.starts_with('/')
            || path.contains(['%', '\\', ';'])
            || path.contains("//")
            || path.split('/').any(|s| s == "." || s == "..")
        {
            return false;
        }
        self.config.exempt_paths.iter().any(|m| match m {
            PathMatch::Exact(e) => path == e,
            PathMatch::Prefix(p) => {
                path == p
                    || path
                        .strip_prefix(p.as_str())
                        .is_some_and(|r| r.starts_with('/'))
            }
        })
    }

    /// Authenticates a request at `now` (seconds since the epoch).
    ///
    /// On `Err` the host sends `err.to_reply(&authenticator.config.realm)`; if
    /// the error is `unknown_kid` with a `provider_index`, it also calls
    /// `keys.on_unknown_kid(index, now)`.
    pub fn authenticate(
        &self,
        req: &dyn TokenSources,
        keys: &KeyStore,
        cache: &mut TokenCache,
        now: u64,
    ) -> Result<Authenticated, AuthError> {
        let mut out = Authenticated {
            identity: None,
            provider_index: None,
            remove_headers: self.claim_header_names.clone(),
            set_headers: Vec::new(),
            new_path: None,
            from_cache: false,
        };
        // The route name is a host call: made only if some route is exempt.
        let exempt_route = !self.config.exempt_routes.is_empty()
            && req
                .route_name()
                .is_some_and(|r| self.config.exempt_routes.contains(&r));
        if self.config.providers.is_empty() || exempt_route || self.is_exempt(req.path()) {
            return Ok(out);
        }
        let (token, sources, eligible) = self.find_token(req)?;
        // Before hashing or decoding anything.
        self.check_size(&token, &eligible)?;
        let verified = match cache.get(&token_key(&token), now) {
            Some(v) if eligible.contains(&v.provider_index) => {
                out.from_cache = true;
                v
            }
            _ => {
                let v = Rc::new(self.verify_token(&token, &eligible, keys, now)?);
                cache.insert(token_key(&token), v.clone(), now);
                v
            }
        };
        let provider = self
            .config
            .providers
            .get(verified.provider_index)
            .ok_or_else(|| malformed("provider"))?;
        if !provider.forward_token {
            let mut params = Vec::new();
            for s in &sources {
                match s {
                    Source::Header(h) => {
                        if !out.remove_headers.contains(h) {
                            out.remove_headers.push(h.clone());
                        }
                    }
                    Source::Param(p) => params.push(p.as_str()),
                }
            }
            if !params.is_empty() {
                out.new_path = Some(remove_params(req.path(), &params));
            }
        }
        out.identity = Some(verified.identity.clone());
        out.provider_index = Some(verified.provider_index);
        out.set_headers = verified.claim_headers.clone();
        Ok(out)
    }

    /// The one token the request carries, where it was, and which providers
    /// accept it from there. Two different tokens are refused.
    fn find_token(
        &self,
        req: &dyn TokenSources,
    ) -> Result<(String, Vec<Source>, Vec<usize>), AuthError> {
        let mut token: Option<String> = None;
        let mut sources: Vec<Source> = Vec::new();
        let mut eligible: Vec<usize> = Vec::new();
        let query = req.path().split_once('?').map(|(_, q)| q).unwrap_or("");
        let query = query.split('#').next().unwrap_or("");
        for (i, p) in self.config.providers.iter().enumerate() {
            let mut found: Vec<(String, Source)> = Vec::new();
            for h in &p.from_headers {
                for v in req.header_values(&h.name) {
                    let pre = h.value_prefix.len();
                    let matches = v
                        .get(..pre)
                        .is_some_and(|head| head.eq_ignore_ascii_case(&h.value_prefix));
                    if let (true, Some(rest)) = (matches, v.get(pre..)) {
                        found.push((rest.trim().to_string(), Source::Header(h.name.clone())));
                    }
                }
            }
            for name in &p.from_params {
                for pair in query.split('&') {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    if k == name {
                        found.push((v.to_string(), Source::Param(name.clone())));
                    }
                }
            }
            for (t, s) in found {
                if t.is_empty() {
                    return Err(malformed("an empty token"));
                }
                match &token {
                    None => token = Some(t),
                    Some(prev) if *prev == t => {}
                    Some(_) => return Err(malformed("more than one token in the request")),
                }
                if !sources.contains(&s) {
                    sources.push(s);
                }
                if !eligible.contains(&i) {
                    eligible.push(i);
                }
            }
        }
        match token {
            Some(t) => Ok((t, sources, eligible)),
            None => Err(AuthError::new(
                AuthErrorKind::TokenMissing,
                "no bearer token",
            )),
        }
    }

    /// The largest `max_token_bytes` of the providers that could take it.
    fn check_size(&self, token: &str, eligible: &[usize]) -> Result<(), AuthError> {
        let limit = eligible
            .iter()
            .filter_map(|i| self.config.providers.get(*i))
            .map(|p| p.max_token_bytes)
            .max()
            .unwrap_or(0);
        if token.len() > limit {
            return Err(AuthError::new(
                AuthErrorKind::TokenTooLarge,
                format!("the token is over {limit} bytes"),
            ));
        }
        Ok(())
    }

    /// Full verification of `token` against the providers in `eligible`.
    pub fn verify_token(
        &self,
        token: &str,
        eligible: &[usize],
        keys: &KeyStore,
        now: u64,
    ) -> Result<Verified, AuthError> {
        self.check_size(token, eligible)?;
        let d = jwt::decode(token)?;
        let iss = claims::issuer(&d.claims)?;
        let (index, p) = eligible
            .iter()
            .filter_map(|i| self.config.providers.get(*i).map(|p| (*i, p)))
            .find(|(_, p)| p.issuer == iss)
            .ok_or_else(|| {
                AuthError::new(
                    AuthErrorKind::IssuerMismatch,
                    "the token's issuer is not trusted here",
                )
            })?;
        self.verify_for(index, p, token, d, keys, now)
            .map_err(|e| e.for_provider(index))
    }

    fn verify_for(
        &self,
        index: usize,
        p: &Provider,
        token: &str,
        d: jwt::Decoded<'_>,
        keys: &KeyStore,
        now: u64,
    ) -> Result<Verified, AuthError> {
        if token.len() > p.max_token_bytes {
            return Err(AuthError::new(
                AuthErrorKind::TokenTooLarge,
                format!("the token is over {} bytes", p.max_token_bytes),
            ));
        }
        if !p.algorithms.contains(&d.alg) {
            return Err(AuthError::new(
                AuthErrorKind::AlgNotAllowed,
                format!("alg {} is not accepted from this issuer", d.alg),
            ));
        }
        if let Some(want) = &p.typ {
            if d.typ.as_deref().map(normalize_typ).as_ref() != Some(want) {
                return Err(AuthError::new(
                    AuthErrorKind::TypMismatch,
                    format!("the token's typ is not {want}"),
                ));
            }
        }
        let exp = claims::check_lifetime(&d.claims, now, p.clock_skew_secs, p.require_exp)?;
        let set = keys.keys(index).ok_or_else(|| {
            AuthError::new(
                AuthErrorKind::JwksUnavailable,
                "the issuer's keys are not available yet",
            )
        })?;
        let mut any_key = false;
        let mut ok = false;
        for k in set.candidates(d.kid.as_deref(), d.alg) {
            any_key = true;
            if verify(d.alg, &k.material, d.signing_input, &d.signature) {
                ok = true;
                break;
            }
        }
        if !any_key {
            return Err(AuthError::new(
                AuthErrorKind::UnknownKid,
                match d.kid {
                    Some(_) => "no key with the token's kid",
                    None => "no key for the token's alg",
                },
            ));
        }
        if !ok {
            return Err(AuthError::new(
                AuthErrorKind::BadSignature,
                "the signature does not verify",
            ));
        }
        claims::check_audience(&d.claims, &p.audiences)?;
        let identity = Identity {
            provider: p.name.clone(),
            issuer: p.issuer.clone(),
            subject: claims::subject(&d.claims)?,
            groups: claims::groups(&d.claims, p.groups_claim.as_deref())?,
            scopes: claims::scopes(&d.claims)?,
        };
        let claim_headers = p
            .claims_to_headers
            .iter()
            .filter_map(|(c, h)| claims::header_value(&d.claims, c).map(|v| (h.clone(), v)))
            .collect();
        Ok(Verified {
            provider_index: index,
            identity,
            claim_headers,
            exp,
        })
    }
}

/// `path` without the query parameters named in `names`.
fn remove_params(path: &str, names: &[&str]) -> String {
    let (base, query) = match path.split_once('?') {
        Some((b, q)) => (b, q),
        None => return path.to_string(),
    };
    let (query, frag) = match query.split_once('#') {
        Some((q, f)) => (q, Some(f)),
        None => (query, None),
    };
    let kept: Vec<&str> = query
        .split('&')
        .filter(|pair| {
            let k = pair.split_once('=').map_or(*pair, |(k, _)| k);
            !pair.is_empty() && !names.contains(&k)
        })
        .collect();
    let mut out = base.to_string();
    if !kept.is_empty() {
        out.push('?');
        out.push_str(&kept.join("&"));
    }
    if let Some(f) = frag {
        out.push('#');
        out.push_str(f);
    }
    out
}
