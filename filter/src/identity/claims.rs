//! Claims: lifetime (`exp`, `nbf` with clock skew), audience, and what the
//! identity and the claim headers are built from (`sub`, groups, scopes).

use super::error::{AuthError, AuthErrorKind};
use serde_json::{Map, Value};

fn malformed(detail: &str) -> AuthError {
    AuthError::new(AuthErrorKind::TokenMalformed, detail)
}

/// A NumericDate (RFC 7519 section 2): a non-negative JSON number of seconds;
/// fractions are truncated.
fn numeric_date(v: &Value) -> Option<u64> {
    if let Some(u) = v.as_u64() {
        return Some(u);
    }
    let f = v.as_f64()?;
    (f.is_finite() && (0.0..1.0e15).contains(&f)).then_some(f as u64)
}

/// Checks `exp` and `nbf` against `now` with `skew` seconds of tolerance.
/// Returns `exp` when the token has one.
pub fn check_lifetime(
    claims: &Map<String, Value>,
    now: u64,
    skew: u64,
    require_exp: bool,
) -> Result<Option<u64>, AuthError> {
    let exp = match claims.get("exp") {
        None if require_exp => {
            return Err(AuthError::new(
                AuthErrorKind::ExpMissing,
                "the token has no exp",
            ))
        }
        None => None,
        Some(v) => Some(numeric_date(v).ok_or_else(|| malformed("exp is not a NumericDate"))?),
    };
    if let Some(exp) = exp {
        if now > exp.saturating_add(skew) {
            return Err(AuthError::new(
                AuthErrorKind::TokenExpired,
                "the token has expired",
            ));
        }
    }
    if let Some(v) = claims.get("nbf") {
        let nbf = numeric_date(v).ok_or_else(|| malformed("nbf is not a NumericDate"))?;
        if nbf > now.saturating_add(skew) {
            return Err(AuthError::new(
                AuthErrorKind::TokenNotYetValid,
                "the token is not valid yet (nbf)",
            ));
        }
    }
    if let Some(v) = claims.get("iat") {
        numeric_date(v).ok_or_else(|| malformed("iat is not a NumericDate"))?;
    }
    Ok(exp)
}

/// `iss` as a string.
pub fn issuer(claims: &Map<String, Value>) -> Result<&str, AuthError> {
    match claims.get("iss") {
        Some(Value::String(s)) => Ok(s),
        None => Err(AuthError::new(
            AuthErrorKind::IssuerMismatch,
            "the token has no iss",
        )),
        Some(_) => Err(malformed("iss is not a string")),
    }
}

/// Whether `aud` (a string or an array of strings) names one of `audiences`.
pub fn check_audience(claims: &Map<String, Value>, audiences: &[String]) -> Result<(), AuthError> {
    let ok = match claims.get("aud") {
        Some(Value::String(a)) => audiences.iter().any(|x| x == a),
        Some(Value::Array(items)) => {
            let mut any = false;
            for it in items {
                match it {
                    Value::String(a) => any |= audiences.iter().any(|x| x == a),
                    _ => return Err(malformed("aud holds a non-string")),
                }
            }
            any
        }
        None => false,
        Some(_) => return Err(malformed("aud is neither a string nor an array")),
    };
    if ok {
        Ok(())
    } else {
        Err(AuthError::new(
            AuthErrorKind::AudienceMismatch,
            "the token is not meant for this gateway (aud)",
        ))
    }
}

/// `sub`, required: every identity has a subject.
pub fn subject(claims: &Map<String, Value>) -> Result<String, AuthError> {
    match claims.get("sub") {
        Some(Value::String(s)) if !s.is_empty() => Ok(s.clone()),
        None => Err(malformed("the token has no sub")),
        Some(_) => Err(malformed("sub is not a non-empty string")),
    }
}

/// Looks a claim up by name; when there is no top-level claim of that exact
/// name (`https://example.com/groups` is one claim), walks a dotted path
/// (`realm_access.roles`).
pub fn lookup<'a>(claims: &'a Map<String, Value>, path: &str) -> Option<&'a Value> {
    if let Some(v) = claims.get(path) {
        return Some(v);
    }
    let mut parts = path.split('.');
    let mut cur = claims.get(parts.next()?)?;
    for p in parts {
        cur = cur.as_object()?.get(p)?;
    }
    Some(cur)
}

/// Strings from a string or an array of strings. `split` splits a string on
/// spaces (for `scope`).
fn strings(v: &Value, split: bool, what: &str) -> Result<Vec<String>, AuthError> {
    match v {
        Value::String(s) if split => Ok(s
            .split(' ')
            .filter(|x| !x.is_empty())
            .map(str::to_string)
            .collect()),
        Value::String(s) => Ok(vec![s.clone()]),
        Value::Array(items) => items
            .iter()
            .map(|i| match i {
                Value::String(s) => Ok(s.clone()),
                _ => Err(malformed(&format!("{what} holds a non-string"))),
            })
            .collect(),
        _ => Err(malformed(&format!(
            "{what} is neither a string nor an array of strings"
        ))),
    }
}

fn dedup(mut v: Vec<String>) -> Vec<String> {
    let mut seen = std::collections::HashSet::new();
    v.retain(|s| seen.insert(s.clone()));
    v
}

/// Groups from the provider's claim (absent: none).
pub fn groups(claims: &Map<String, Value>, claim: Option<&str>) -> Result<Vec<String>, AuthError> {
    match claim.and_then(|c| lookup(claims, c)) {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(v) => Ok(dedup(strings(v, false, "the groups claim")?)),
    }
}

/// Scopes from `scope` (space-separated, RFC 8693) and `scp` (array, or a
/// space-separated string as Azure AD sends it), merged.
pub fn scopes(claims: &Map<String, Value>) -> Result<Vec<String>, AuthError> {
    let mut out = Vec::new();
    for name in ["scope", "scp"] {
        if let Some(v) = claims.get(name) {
            out.extend(strings(v, true, name)?);
        }
    }
    Ok(dedup(out))
}

/// A header value from a claim: strings as they are, numbers and booleans
/// printed, arrays of those joined with `,`. `None` when absent, of another
/// shape, or when the value holds characters a header may not carry (control
/// characters, non-ASCII): such a claim is left out rather than mangled.
pub fn header_value(claims: &Map<String, Value>, path: &str) -> Option<String> {
    fn scalar(v: &Value) -> Option<String> {
        match v {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => None,
        }
    }
    let v = lookup(claims, path)?;
    let s = match v {
        Value::Array(items) => {
            let parts: Option<Vec<String>> = items.iter().map(scalar).collect();
            parts?.join(",")
        }
        other => scalar(other)?,
    };
    let clean = s
        .chars()
        .all(|c| c == ' ' || c == '\t' || c.is_ascii_graphic());
    (clean && s.len() <= 4096).then_some(s)
}
