//! JWS compact serialization: strict base64url, strict JSON (duplicate member
//! names are refused at every depth), and the protected header.
//!
//! Nothing here trusts the token: it only takes it apart. The header's `jwk`,
//! `jku`, `x5u`, `x5c` and `x5t` members are never read: keys come from the
//! provider's configured key set only.

use super::error::{AuthError, AuthErrorKind};
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::{alphabet, Engine};
use serde::de::{self, Deserialize, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::fmt;

/// base64url without padding, canonical only: padding, non-alphabet bytes and
/// non-zero trailing bits are all refused (RFC 7515 section 2, RFC 4648 section 3.5).
const B64URL: GeneralPurpose = GeneralPurpose::new(
    &alphabet::URL_SAFE,
    GeneralPurposeConfig::new()
        .with_encode_padding(false)
        .with_decode_allow_trailing_bits(false)
        .with_decode_padding_mode(DecodePaddingMode::RequireNone),
);

/// Strict base64url decoding.
pub fn b64url_decode(s: &str) -> Option<Vec<u8>> {
    B64URL.decode(s).ok()
}

/// base64url encoding without padding.
pub fn b64url_encode(bytes: &[u8]) -> String {
    B64URL.encode(bytes)
}

/// The JWS algorithms the filter knows. `none` is not one of them, in any spelling.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
    HS256,
    HS384,
    HS512,
}

impl Alg {
    pub const ALL: [Alg; 12] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
        Alg::HS256,
        Alg::HS384,
        Alg::HS512,
    ];

    /// Exact, case-sensitive (RFC 7515 section 4.1.1): `rs256` is not `RS256`.
    pub fn parse(s: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.name() == s)
    }

    pub fn name(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
            Alg::HS256 => "HS256",
            Alg::HS384 => "HS384",
            Alg::HS512 => "HS512",
        }
    }

    pub fn is_hmac(self) -> bool {
        matches!(self, Alg::HS256 | Alg::HS384 | Alg::HS512)
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A token taken apart, not yet verified.
#[derive(Debug)]
pub struct Decoded<'t> {
    pub alg: Alg,
    pub kid: Option<String>,
    pub typ: Option<String>,
    pub claims: Map<String, Value>,
    /// `header.payload`, the bytes the signature covers.
    pub signing_input: &'t [u8],
    pub signature: Vec<u8>,
}

fn malformed(detail: &str) -> AuthError {
    AuthError::new(AuthErrorKind::TokenMalformed, detail)
}

/// Takes a compact JWS apart. The size limit is the caller's (checked before
/// this). Refuses: not three parts (a JWE has five), non-canonical base64url,
/// JSON that is not an object or repeats a member name, `alg` `none` or
/// unknown, a non-empty `crit`, an empty signature.
pub fn decode(token: &str) -> Result<Decoded<'_>, AuthError> {
    let mut parts = token.split('.');
    let (h, p, s) = match (parts.next(), parts.next(), parts.next(), parts.next()) {
        (Some(h), Some(p), Some(s), None) => (h, p, s),
        _ => {
            return Err(malformed(
                "not a JWS compact token (three dot-separated parts)",
            ))
        }
    };
    if h.is_empty() || p.is_empty() {
        return Err(malformed("empty header or payload"));
    }
    let header_bytes = b64url_decode(h).ok_or_else(|| malformed("header is not base64url"))?;
    let header = strict_object(&header_bytes)
        .ok_or_else(|| malformed("header is not a JSON object with unique member names"))?;
    let alg = match header.get("alg") {
        Some(Value::String(a)) => Alg::parse(a).ok_or_else(|| {
            AuthError::new(
                AuthErrorKind::AlgNotAllowed,
                "alg is not an accepted algorithm",
            )
        })?,
        _ => return Err(malformed("header has no alg")),
    };
    match header.get("crit") {
        None => {}
        Some(_) => {
            return Err(AuthError::new(
                AuthErrorKind::CritUnsupported,
                "header lists critical extensions the gateway does not understand",
            ))
        }
    }
    let kid = match header.get("kid") {
        None => None,
        Some(Value::String(k)) => Some(k.clone()),
        Some(_) => return Err(malformed("kid is not a string")),
    };
    let typ = match header.get("typ") {
        None => None,
        Some(Value::String(t)) => Some(t.clone()),
        Some(_) => return Err(malformed("typ is not a string")),
    };
    let payload_bytes = b64url_decode(p).ok_or_else(|| malformed("payload is not base64url"))?;
    let claims = strict_object(&payload_bytes)
        .ok_or_else(|| malformed("payload is not a JSON object with unique claim names"))?;
    if s.is_empty() {
        return Err(AuthError::new(
            AuthErrorKind::BadSignature,
            "the token has no signature",
        ));
    }
    let signature = b64url_decode(s).ok_or_else(|| malformed("signature is not base64url"))?;
    let signing_input = token
        .get(..h.len() + 1 + p.len())
        .ok_or_else(|| malformed("token"))?
        .as_bytes();
    Ok(Decoded {
        alg,
        kid,
        typ,
        claims,
        signing_input,
        signature,
    })
}

/// Parses a JSON object, refusing duplicate member names at any depth
/// (serde_json alone keeps the last one silently) and trailing bytes.
pub fn strict_object(bytes: &[u8]) -> Option<Map<String, Value>> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = StrictValue::deserialize(&mut de).ok()?;
    de.end().ok()?;
    match v.0 {
        Value::Object(m) => Some(m),
        _ => None,
    }
}

/// Parses any JSON value strictly (see [`strict_object`]).
pub fn strict_value(bytes: &[u8]) -> Option<Value> {
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let v = StrictValue::deserialize(&mut de).ok()?;
    de.end().ok()?;
    Some(v.0)
}

struct StrictValue(Value);

impl<'de> Deserialize<'de> for StrictValue {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        d.deserialize_any(StrictVisitor)
    }
}

struct StrictVisitor;

impl<'de> Visitor<'de> for StrictVisitor {
    type Value = StrictValue;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("JSON")
    }
    fn visit_bool<E: de::Error>(self, v: bool) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Bool(v)))
    }
    fn visit_i64<E: de::Error>(self, v: i64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }
    fn visit_u64<E: de::Error>(self, v: u64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::from(v)))
    }
    fn visit_str<E: de::Error>(self, v: &str) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v.to_string())))
    }
    fn visit_string<E: de::Error>(self, v: String) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::String(v)))
    }
    fn visit_unit<E: de::Error>(self) -> Result<StrictValue, E> {
        Ok(StrictValue(Value::Null))
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<StrictValue, A::Error> {
        let mut out = Vec::new();
        while let Some(StrictValue(v)) = seq.next_element()? {
            out.push(v);
        }
        Ok(StrictValue(Value::Array(out)))
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<StrictValue, A::Error> {
        let mut out = Map::new();
        while let Some(k) = map.next_key::<String>()? {
            let StrictValue(v) = map.next_value()?;
            if out.insert(k, v).is_some() {
                return Err(de::Error::custom("duplicate member name"));
            }
        }
        Ok(StrictValue(Value::Object(out)))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn base64url_is_strict() {
        assert_eq!(b64url_decode("YQ").unwrap(), b"a");
        assert!(b64url_decode("YQ==").is_none(), "padding");
        assert!(b64url_decode("YR").is_none(), "non-zero trailing bits");
        assert!(b64url_decode("Y+").is_none(), "standard alphabet");
        assert!(b64url_decode("Y Q").is_none());
        assert!(b64url_decode("Y").is_none(), "impossible length");
    }

    #[test]
    fn duplicate_members_are_refused_at_any_depth() {
        assert!(strict_object(br#"{"a":1,"b":{"c":1}}"#).is_some());
        assert!(strict_object(br#"{"a":1,"a":2}"#).is_none());
        assert!(strict_object(br#"{"a":{"c":1,"c":1}}"#).is_none());
        assert!(strict_object(br#"{"a":[{"c":1,"c":1}]}"#).is_none());
        assert!(strict_object(br#"{"a":1} x"#).is_none());
        assert!(strict_object(br#"[1]"#).is_none());
    }

    #[test]
    fn alg_names_are_exact() {
        assert_eq!(Alg::parse("RS256"), Some(Alg::RS256));
        assert_eq!(Alg::parse("EdDSA"), Some(Alg::EdDSA));
        for a in [
            "none", "None", "NONE", "nOnE", "rs256", "", "ES256K", "RS256 ",
        ] {
            assert_eq!(Alg::parse(a), None, "{a}");
        }
    }
}
