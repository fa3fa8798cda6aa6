//! The `identity` section of the policy: serde document types (unknown fields
//! refused) and [`compile`] into validated [`Providers`].
//!
//! ```json
//! "identity": {
//!   "realm": "transit-guard",
//!   "exempt_paths": [{ "exact": "/healthz" }, { "prefix": "/public/" }],
//!   "exempt_routes": ["health"],
//!   "cache": { "max_entries": 1024, "max_ttl_secs": 300 },
//!   "providers": [{
//!     "name": "corp",
//!     "issuer": "https://idp.example.com",
//!     "audiences": ["agent-gateway"],
//!     "algorithms": ["RS256", "ES256"],
//!     "remote_jwks": { "cluster": "idp", "path": "/jwks", "refresh_secs": 600 },
//!     "from_headers": [{ "name": "authorization", "value_prefix": "Bearer " }],
//!     "from_params": [],
//!     "clock_skew_secs": 60,
//!     "require_exp": true,
//!     "max_token_bytes": 8192,
//!     "typ": "at+jwt",
//!     "groups_claim": "realm_access.roles",
//!     "claims_to_headers": { "sub": "x-agent-subject" },
//!     "forward_token": false
//!   }]
//! }
//! ```
//!
//! Exactly one key source per provider: `local_jwks` (a JWKS object, inline),
//! `remote_jwks` (fetched by the host through an Envoy cluster), or
//! `hmac_secret` (base64url, only for HS256/384/512, which must then be the
//! only algorithms).

use super::jwks::{parse_jwks_value, KeyMaterial, KeySet};
use super::jwt::{b64url_decode, Alg};
use crate::policy::PolicyError;
use serde::Deserialize;
use std::collections::BTreeMap;

pub const DEFAULT_CLOCK_SKEW_SECS: u64 = 60;
pub const MAX_CLOCK_SKEW_SECS: u64 = 600;
pub const DEFAULT_MAX_TOKEN_BYTES: usize = 8 * 1024;
pub const MAX_MAX_TOKEN_BYTES: usize = 64 * 1024;
pub const DEFAULT_REFRESH_SECS: u64 = 600;
pub const MIN_REFRESH_SECS: u64 = 30;
pub const MAX_REFRESH_SECS: u64 = 7 * 24 * 3600;
pub const DEFAULT_FETCH_TIMEOUT_MS: u64 = 5000;
pub const DEFAULT_CACHE_ENTRIES: usize = 1024;
pub const DEFAULT_CACHE_MAX_TTL_SECS: u64 = 300;
/// Eviction scans the cache when it is full: keep that scan short.
pub const MAX_CACHE_ENTRIES: usize = 100_000;

/// `identity`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct IdentityDoc {
    #[serde(default)]
    pub providers: Vec<ProviderDoc>,
    /// Paths that need no token. The claim headers are still stripped there.
    #[serde(default)]
    pub exempt_paths: Vec<PathMatchDoc>,
    /// Envoy route names (`route.name`, the `xds.route_name` property) that
    /// need no token. The claim headers are still stripped there.
    #[serde(default)]
    pub exempt_routes: Vec<String>,
    /// `realm` in `WWW-Authenticate`.
    #[serde(default)]
    pub realm: Option<String>,
    #[serde(default)]
    pub cache: Option<CacheDoc>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CacheDoc {
    #[serde(default)]
    pub max_entries: Option<usize>,
    #[serde(default)]
    pub max_ttl_secs: Option<u64>,
}

/// One of `exact` or `prefix` (segment-aware: `/public` matches `/public` and
/// `/public/x`, not `/publicity`).
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PathMatchDoc {
    #[serde(default)]
    pub exact: Option<String>,
    #[serde(default)]
    pub prefix: Option<String>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProviderDoc {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<String>,
    #[serde(default)]
    pub local_jwks: Option<serde_json::Map<String, serde_json::Value>>,
    #[serde(default)]
    pub remote_jwks: Option<RemoteJwksDoc>,
    #[serde(default)]
    pub hmac_secret: Option<String>,
    #[serde(default)]
    pub from_headers: Option<Vec<HeaderSourceDoc>>,
    #[serde(default)]
    pub from_params: Vec<String>,
    #[serde(default)]
    pub clock_skew_secs: Option<u64>,
    #[serde(default)]
    pub require_exp: Option<bool>,
    #[serde(default)]
    pub max_token_bytes: Option<usize>,
    #[serde(default)]
    pub typ: Option<String>,
    #[serde(default)]
    pub groups_claim: Option<String>,
    #[serde(default)]
    pub claims_to_headers: BTreeMap<String, String>,
    #[serde(default)]
    pub forward_token: bool,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RemoteJwksDoc {
    pub cluster: String,
    pub path: String,
    /// `:authority` of the fetch; default: the issuer's host.
    #[serde(default)]
    pub authority: Option<String>,
    #[serde(default)]
    pub refresh_secs: Option<u64>,
    #[serde(default)]
    pub timeout_ms: Option<u64>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct HeaderSourceDoc {
    pub name: String,
    #[serde(default)]
    pub value_prefix: Option<String>,
}

/// Where keys come from.
#[derive(Debug, Clone)]
pub enum KeySource {
    /// Inline: installed at start, never fetched.
    Static(KeySet),
    Remote(RemoteJwks),
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RemoteJwks {
    pub cluster: String,
    pub path: String,
    pub authority: String,
    pub refresh_secs: u64,
    pub timeout_ms: u64,
}

/// A header that may carry the token: lowercase name, and the prefix its value
/// must start with (compared case-insensitively; empty for the whole value).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct HeaderSource {
    pub name: String,
    pub value_prefix: String,
}

/// A compiled provider.
#[derive(Debug, Clone)]
pub struct Provider {
    pub name: String,
    pub issuer: String,
    pub audiences: Vec<String>,
    pub algorithms: Vec<Alg>,
    pub keys: KeySource,
    pub from_headers: Vec<HeaderSource>,
    pub from_params: Vec<String>,
    pub clock_skew_secs: u64,
    pub require_exp: bool,
    pub max_token_bytes: usize,
    /// Required `typ` (lowercase, without `application/`).
    pub typ: Option<String>,
    pub groups_claim: Option<String>,
    /// (claim path, lowercase header name), in header-name order.
    pub claims_to_headers: Vec<(String, String)>,
    pub forward_token: bool,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PathMatch {
    Exact(String),
    Prefix(String),
}

/// The compiled `identity` section.
#[derive(Debug, Clone)]
pub struct Providers {
    pub providers: Vec<Provider>,
    pub exempt_paths: Vec<PathMatch>,
    pub exempt_routes: Vec<String>,
    pub realm: String,
    pub cache_max_entries: usize,
    pub cache_max_ttl_secs: u64,
}

/// Headers a claim may never be copied into: they carry routing, framing or
/// credentials that belong to Envoy and the client.
const RESERVED_HEADERS: &[&str] = &[
    "authorization",
    "proxy-authorization",
    "cookie",
    "host",
    "content-length",
    "content-type",
    "transfer-encoding",
    "connection",
    "te",
    "upgrade",
    "keep-alive",
    "x-forwarded-for",
    "x-forwarded-proto",
    "x-request-id",
    "x-envoy-original-path",
];

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || "!#$%&'*+-.^_`|~".contains(c)
}

fn valid_header_name(n: &str) -> bool {
    !n.is_empty() && n.chars().all(is_token_char)
}

/// Compiles the section. `identity` prefixes every error path.
pub fn compile(doc: IdentityDoc) -> Result<Providers, PolicyError> {
    if doc.providers.is_empty() {
        return Err(PolicyError::at(
            "identity.providers",
            "list at least one provider (leave the identity section out to turn identity off)",
        ));
    }
    let mut providers = Vec::with_capacity(doc.providers.len());
    for (i, p) in doc.providers.into_iter().enumerate() {
        providers.push(compile_provider(i, p)?);
    }
    for (i, p) in providers.iter().enumerate() {
        for (j, q) in providers.iter().enumerate().take(i) {
            if p.name == q.name {
                return Err(PolicyError::at(
                    &format!("identity.providers[{i}].name"),
                    format!("\"{}\" is also the name of providers[{j}]", p.name),
                ));
            }
            if p.issuer == q.issuer {
                return Err(PolicyError::at(
                    &format!("identity.providers[{i}].issuer"),
                    format!(
                        "providers[{j}] has the same issuer; a token's iss must pick one provider"
                    ),
                ));
            }
        }
    }
    let mut exempt_paths = Vec::new();
    for (i, m) in doc.exempt_paths.into_iter().enumerate() {
        let at = format!("identity.exempt_paths[{i}]");
        let (raw, pm) = match (m.exact, m.prefix) {
            (Some(e), None) => (e.clone(), PathMatch::Exact(e)),
            (None, Some(p)) => (
                p.clone(),
                PathMatch::Prefix(p.trim_end_matches('/').to_string()),
            ),
            _ => return Err(PolicyError::at(&at, "give exactly one of exact or prefix")),
        };
        if !raw.starts_with('/')
            || raw.contains(['?', '#', '%', '\\', ';'])
            || raw.contains("//")
            || raw.split('/').any(|seg| seg == "." || seg == "..")
        {
            return Err(PolicyError::at(
                &at,
                "a path starts with / and has no query, fragment, percent-encoding, ;, // or dot segments",
            ));
        }
        if matches!(&pm, PathMatch::Prefix(p) if p.is_empty()) {
            return Err(PolicyError::at(
                &at,
                "prefix \"/\" would exempt everything: remove the providers instead",
            ));
        }
        exempt_paths.push(pm);
    }
    for (i, r) in doc.exempt_routes.iter().enumerate() {
        if r.is_empty() {
            return Err(PolicyError::at(
                &format!("identity.exempt_routes[{i}]"),
                "must not be empty",
            ));
        }
    }
    let realm = doc.realm.unwrap_or_else(|| "transit-guard".to_string());
    if realm.is_empty()
        || !realm
            .chars()
            .all(|c| (' '..='~').contains(&c) && c != '"' && c != '\\')
    {
        return Err(PolicyError::at(
            "identity.realm",
            "printable ASCII without quotes or backslashes",
        ));
    }
    let (cache_max_entries, cache_max_ttl_secs) = match doc.cache {
        None => (DEFAULT_CACHE_ENTRIES, DEFAULT_CACHE_MAX_TTL_SECS),
        Some(c) => (
            c.max_entries.unwrap_or(DEFAULT_CACHE_ENTRIES),
            c.max_ttl_secs.unwrap_or(DEFAULT_CACHE_MAX_TTL_SECS),
        ),
    };
    if cache_max_entries > MAX_CACHE_ENTRIES {
        return Err(PolicyError::at(
            "identity.cache.max_entries",
            format!("at most {MAX_CACHE_ENTRIES} (0 turns the cache off)"),
        ));
    }
    if cache_max_ttl_secs > 86400 {
        return Err(PolicyError::at(
            "identity.cache.max_ttl_secs",
            "at most 86400",
        ));
    }
    Ok(Providers {
        providers,
        exempt_paths,
        exempt_routes: doc.exempt_routes,
        realm,
        cache_max_entries,
        cache_max_ttl_secs,
    })
}

fn compile_provider(i: usize, p: ProviderDoc) -> Result<Provider, PolicyError> {
    let at = |f: &str| format!("identity.providers[{i}].{f}");
    let err = |f: &str, r: String| PolicyError::at(&at(f), r);
    if p.name.is_empty()
        || !p
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
    {
        return Err(err("name", "letters, digits, - _ . only, not empty".into()));
    }
    if p.issuer.is_empty() {
        return Err(err("issuer", "must not be empty".into()));
    }
    if p.audiences.is_empty() || p.audiences.iter().any(String::is_empty) {
        return Err(err(
            "audiences",
            "list at least one audience; tokens for other audiences are refused".into(),
        ));
    }
    let mut algorithms = Vec::new();
    for (j, a) in p.algorithms.iter().enumerate() {
        let alg = Alg::parse(a).ok_or_else(|| {
            err(
                &format!("algorithms[{j}]"),
                format!("unknown algorithm {a:?}; one of RS256 RS384 RS512 PS256 PS384 PS512 ES256 ES384 EdDSA HS256 HS384 HS512"),
            )
        })?;
        if !algorithms.contains(&alg) {
            algorithms.push(alg);
        }
    }
    if algorithms.is_empty() {
        return Err(err("algorithms", "list at least one algorithm".into()));
    }
    let any_hmac = algorithms.iter().any(|a| a.is_hmac());
    let keys = match (p.local_jwks, p.remote_jwks, p.hmac_secret) {
        (Some(jwks), None, None) => {
            let parsed = parse_jwks_value(&jwks).map_err(|e| err("local_jwks", e))?;
            if let Some(first) = parsed.skipped.first() {
                return Err(err("local_jwks", format!("unusable key: {first}")));
            }
            KeySource::Static(parsed.set)
        }
        (None, Some(r), None) => {
            if r.cluster.is_empty() {
                return Err(err("remote_jwks.cluster", "must not be empty".into()));
            }
            if !r.path.starts_with('/') {
                return Err(err("remote_jwks.path", "must start with /".into()));
            }
            let refresh_secs = r.refresh_secs.unwrap_or(DEFAULT_REFRESH_SECS);
            if !(MIN_REFRESH_SECS..=MAX_REFRESH_SECS).contains(&refresh_secs) {
                return Err(err(
                    "remote_jwks.refresh_secs",
                    format!("between {MIN_REFRESH_SECS} and {MAX_REFRESH_SECS}"),
                ));
            }
            let timeout_ms = r.timeout_ms.unwrap_or(DEFAULT_FETCH_TIMEOUT_MS);
            if !(100..=60_000).contains(&timeout_ms) {
                return Err(err(
                    "remote_jwks.timeout_ms",
                    "between 100 and 60000".into(),
                ));
            }
            let authority = match r.authority {
                Some(a) if !a.is_empty() => a,
                Some(_) => return Err(err("remote_jwks.authority", "must not be empty".into())),
                None => issuer_host(&p.issuer).ok_or_else(|| {
                    err(
                        "remote_jwks.authority",
                        "the issuer is not an https URL: give the authority".into(),
                    )
                })?,
            };
            KeySource::Remote(RemoteJwks {
                cluster: r.cluster,
                path: r.path,
                authority,
                refresh_secs,
                timeout_ms,
            })
        }
        (None, None, Some(secret)) => {
            let bytes = b64url_decode(&secret)
                .ok_or_else(|| err("hmac_secret", "must be base64url without padding".into()))?;
            let needed = algorithms
                .iter()
                .map(|a| match a {
                    Alg::HS256 => 32,
                    Alg::HS384 => 48,
                    _ => 64,
                })
                .max()
                .unwrap_or(64);
            if bytes.len() < needed {
                return Err(err(
                    "hmac_secret",
                    format!(
                        "{} bytes; the algorithms need at least {needed}",
                        bytes.len()
                    ),
                ));
            }
            if !algorithms.iter().all(|a| a.is_hmac()) {
                return Err(err(
                    "algorithms",
                    "with hmac_secret only HS256, HS384 and HS512 are allowed".into(),
                ));
            }
            KeySource::Static(KeySet {
                keys: vec![super::jwks::Key {
                    kid: None,
                    alg: None,
                    material: KeyMaterial::Hmac(bytes),
                }],
            })
        }
        _ => {
            return Err(err(
                "local_jwks",
                "give exactly one of local_jwks, remote_jwks or hmac_secret".into(),
            ))
        }
    };
    if any_hmac
        && !matches!(&keys, KeySource::Static(s) if s.keys.iter().all(|k| matches!(k.material, KeyMaterial::Hmac(_))))
    {
        return Err(err(
            "algorithms",
            "HS256/HS384/HS512 need an explicit hmac_secret, never a key set".into(),
        ));
    }
    let from_headers = match p.from_headers {
        None => vec![HeaderSource {
            name: "authorization".into(),
            value_prefix: "Bearer ".into(),
        }],
        Some(hs) => {
            let mut out = Vec::new();
            for (j, h) in hs.into_iter().enumerate() {
                let name = h.name.to_ascii_lowercase();
                if !valid_header_name(&name) {
                    return Err(err(
                        &format!("from_headers[{j}].name"),
                        "not a header name".into(),
                    ));
                }
                out.push(HeaderSource {
                    name,
                    value_prefix: h.value_prefix.unwrap_or_default(),
                });
            }
            out
        }
    };
    for (j, q) in p.from_params.iter().enumerate() {
        if q.is_empty()
            || !q
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        {
            return Err(err(
                &format!("from_params[{j}]"),
                "letters, digits, - _ . only".into(),
            ));
        }
    }
    if from_headers.is_empty() && p.from_params.is_empty() {
        return Err(err(
            "from_headers",
            "no token source: give a header or a parameter".into(),
        ));
    }
    let clock_skew_secs = p.clock_skew_secs.unwrap_or(DEFAULT_CLOCK_SKEW_SECS);
    if clock_skew_secs > MAX_CLOCK_SKEW_SECS {
        return Err(err(
            "clock_skew_secs",
            format!("at most {MAX_CLOCK_SKEW_SECS}"),
        ));
    }
    let max_token_bytes = p.max_token_bytes.unwrap_or(DEFAULT_MAX_TOKEN_BYTES);
    if !(256..=MAX_MAX_TOKEN_BYTES).contains(&max_token_bytes) {
        return Err(err(
            "max_token_bytes",
            format!("between 256 and {MAX_MAX_TOKEN_BYTES}"),
        ));
    }
    let typ = match p.typ {
        None => None,
        Some(t) if t.is_empty() => return Err(err("typ", "must not be empty".into())),
        Some(t) => Some(normalize_typ(&t)),
    };
    let groups_claim = match p.groups_claim {
        None => Some("groups".to_string()),
        Some(g) if g.is_empty() => None,
        Some(g) => Some(g),
    };
    let mut claims_to_headers = Vec::new();
    for (claim, header) in p.claims_to_headers {
        let h = header.to_ascii_lowercase();
        let f = format!("claims_to_headers.{claim}");
        if claim.is_empty() {
            return Err(err("claims_to_headers", "empty claim name".into()));
        }
        if !valid_header_name(&h) {
            return Err(err(&f, format!("{header:?} is not a header name")));
        }
        if RESERVED_HEADERS.contains(&h.as_str())
            || h.starts_with("x-envoy-")
            || h.starts_with("x-forwarded-")
            || from_headers.iter().any(|s| s.name == h)
        {
            return Err(err(&f, format!("{h} may not carry a claim")));
        }
        if claims_to_headers.iter().any(|(_, o)| o == &h) {
            return Err(err(&f, format!("{h} is already set from another claim")));
        }
        claims_to_headers.push((claim, h));
    }
    Ok(Provider {
        name: p.name,
        issuer: p.issuer,
        audiences: p.audiences,
        algorithms,
        keys,
        from_headers,
        from_params: p.from_params,
        clock_skew_secs,
        require_exp: p.require_exp.unwrap_or(true),
        max_token_bytes,
        typ,
        groups_claim,
        claims_to_headers,
        forward_token: p.forward_token,
    })
}

/// `typ` compares case-insensitively, with `application/` optional (RFC 7515 section 4.1.9).
pub fn normalize_typ(t: &str) -> String {
    let t = t.to_ascii_lowercase();
    match t.strip_prefix("application/") {
        Some(rest) => rest.to_string(),
        None => t,
    }
}

/// `https://host[:port]/…` -> `host[:port]`.
fn issuer_host(issuer: &str) -> Option<String> {
    let rest = issuer.strip_prefix("https://")?;
    let host = rest.split(['/', '?', '#']).next()?;
    (!host.is_empty() && !host.contains('@')).then(|| host.to_string())
}
