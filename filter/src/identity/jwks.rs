//! JSON Web Key Sets: parsing into verification keys, refusing weak or
//! malformed keys.
//!
//! Accepted: `RSA` (modulus 2048 to 8192 bits, odd exponent 3 to 2^33-1),
//! `EC` on `P-256` and `P-384` (the point must be on the curve), `OKP`
//! `Ed25519` (small-order points refused). A key's `use`, when present, must be
//! `sig`; its `key_ops`, when present, must include `verify`; its `alg`, when
//! present, must be one the key type can do and then is the only one it is
//! used for. Symmetric (`oct`) keys are never taken from a JWKS: HS* needs an
//! explicitly configured secret.

use super::jwt::{b64url_decode, Alg};
use rsa::{BoxedUint, RsaPublicKey};
use serde_json::{Map, Value};
use std::fmt;

pub const RSA_MIN_BITS: usize = 2048;
pub const RSA_MAX_BITS: usize = 8192;

/// A verification key.
#[derive(Clone)]
pub enum KeyMaterial {
    Rsa(Box<RsaPublicKey>),
    P256(p256::ecdsa::VerifyingKey),
    P384(p384::ecdsa::VerifyingKey),
    Ed25519(ed25519_dalek::VerifyingKey),
    /// An HMAC secret, only from `hmac_secret` in the policy.
    Hmac(Vec<u8>),
}

impl fmt::Debug for KeyMaterial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            KeyMaterial::Rsa(_) => "Rsa",
            KeyMaterial::P256(_) => "P256",
            KeyMaterial::P384(_) => "P384",
            KeyMaterial::Ed25519(_) => "Ed25519",
            KeyMaterial::Hmac(_) => "Hmac(redacted)",
        })
    }
}

impl KeyMaterial {
    /// Whether this key type can verify `alg` at all.
    pub fn fits(&self, alg: Alg) -> bool {
        match self {
            KeyMaterial::Rsa(_) => matches!(
                alg,
                Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512
            ),
            KeyMaterial::P256(_) => alg == Alg::ES256,
            KeyMaterial::P384(_) => alg == Alg::ES384,
            KeyMaterial::Ed25519(_) => alg == Alg::EdDSA,
            KeyMaterial::Hmac(_) => alg.is_hmac(),
        }
    }
}

/// One key of a set.
#[derive(Debug, Clone)]
pub struct Key {
    pub kid: Option<String>,
    /// When the JWK names an `alg`, the key is used for that one only.
    pub alg: Option<Alg>,
    pub material: KeyMaterial,
}

impl Key {
    pub fn accepts(&self, alg: Alg) -> bool {
        self.material.fits(alg) && self.alg.is_none_or(|a| a == alg)
    }
}

/// A provider's keys.
#[derive(Debug, Clone, Default)]
pub struct KeySet {
    pub keys: Vec<Key>,
}

impl KeySet {
    /// The keys that may verify a token with this `kid` and `alg`: keys that
    /// fit the `alg` (key type, and the key's own `alg` if it names one) and
    /// whose `kid` equals the token's. A token without `kid` tries every
    /// fitting key, and a key without `kid` is tried for any token (both as
    /// Envoy's jwt_authn does).
    pub fn candidates<'a>(
        &'a self,
        kid: Option<&'a str>,
        alg: Alg,
    ) -> impl Iterator<Item = &'a Key> + 'a {
        self.keys.iter().filter(move |k| {
            k.accepts(alg)
                && match (kid, k.kid.as_deref()) {
                    (Some(want), Some(have)) => want == have,
                    _ => true,
                }
        })
    }
}

/// The outcome of parsing a JWKS document.
#[derive(Debug)]
pub struct ParsedJwks {
    pub set: KeySet,
    /// Keys left out and why (`keys[2]: RSA modulus of 1024 bits, under 2048`).
    /// Keys that are simply not for us (`use: enc`, unknown `kty`) are listed too.
    pub skipped: Vec<String>,
}

/// Parses a JWKS (`{"keys":[…]}`) strictly: duplicate member names refused.
/// Each unusable key is skipped with a reason; the set fails only when it is
/// not a JWKS at all or no key is usable.
pub fn parse_jwks(bytes: &[u8]) -> Result<ParsedJwks, String> {
    let doc =
        super::jwt::strict_object(bytes).ok_or("not a JSON object with unique member names")?;
    parse_jwks_value(&doc)
}

pub fn parse_jwks_value(doc: &Map<String, Value>) -> Result<ParsedJwks, String> {
    let keys = match doc.get("keys") {
        Some(Value::Array(k)) => k,
        _ => return Err("no \"keys\" array".to_string()),
    };
    let mut set = KeySet::default();
    let mut skipped = Vec::new();
    for (i, k) in keys.iter().enumerate() {
        match parse_jwk(k) {
            Ok(key) => set.keys.push(key),
            Err(why) => skipped.push(format!("keys[{i}]: {why}")),
        }
    }
    if set.keys.is_empty() {
        let why = if skipped.is_empty() {
            "the key set is empty".to_string()
        } else {
            format!("no usable signing key ({})", skipped.join("; "))
        };
        return Err(why);
    }
    Ok(ParsedJwks { set, skipped })
}

fn str_field<'a>(m: &'a Map<String, Value>, name: &str) -> Result<Option<&'a str>, String> {
    match m.get(name) {
        None => Ok(None),
        Some(Value::String(s)) => Ok(Some(s)),
        Some(_) => Err(format!("\"{name}\" is not a string")),
    }
}

fn b64_field(m: &Map<String, Value>, name: &str) -> Result<Vec<u8>, String> {
    let s = str_field(m, name)?.ok_or_else(|| format!("no \"{name}\""))?;
    b64url_decode(s).ok_or_else(|| format!("\"{name}\" is not canonical base64url"))
}

fn trim_zeros(b: &[u8]) -> &[u8] {
    let i = b.iter().position(|x| *x != 0).unwrap_or(b.len());
    b.get(i..).unwrap_or_default()
}

/// One JWK.
pub fn parse_jwk(v: &Value) -> Result<Key, String> {
    let m = v.as_object().ok_or("not a JSON object")?;
    let kty = str_field(m, "kty")?.ok_or("no \"kty\"")?;
    if let Some(u) = str_field(m, "use")? {
        if u != "sig" {
            return Err(format!("\"use\" is \"{u}\", not \"sig\""));
        }
    }
    if let Some(ops) = m.get("key_ops") {
        let ok = ops
            .as_array()
            .is_some_and(|a| a.iter().any(|o| o.as_str() == Some("verify")));
        if !ok {
            return Err("\"key_ops\" does not include \"verify\"".to_string());
        }
    }
    let kid = str_field(m, "kid")?.map(str::to_string);
    let alg = match str_field(m, "alg")? {
        None => None,
        Some(a) => Some(Alg::parse(a).ok_or_else(|| format!("unsupported \"alg\" {a:?}"))?),
    };
    let material = match kty {
        "RSA" => {
            if m.contains_key("d") || m.contains_key("p") {
                return Err("an RSA private key in a public key set".to_string());
            }
            let n = b64_field(m, "n")?;
            let e = b64_field(m, "e")?;
            // Leading zero bytes are not minimal (RFC 7518 section 6.3.1) but
            // some IdPs send them; they change nothing, so they are accepted.
            let e = trim_zeros(&e);
            let n = BoxedUint::from_be_slice_vartime(&n);
            let bits = n.bits_vartime() as usize;
            if bits < RSA_MIN_BITS {
                return Err(format!("RSA modulus of {bits} bits, under {RSA_MIN_BITS}"));
            }
            if e.is_empty() || e.len() > 8 {
                return Err("RSA exponent too large".to_string());
            }
            let e = BoxedUint::from_be_slice_vartime(e);
            if e < BoxedUint::from(3u64) {
                return Err("RSA exponent under 3".to_string());
            }
            let key = RsaPublicKey::new_with_size_limits(n, e, RSA_MIN_BITS..=RSA_MAX_BITS)
                .map_err(|err| format!("invalid RSA key: {err}"))?;
            KeyMaterial::Rsa(Box::new(key))
        }
        "EC" => {
            if m.contains_key("d") {
                return Err("an EC private key in a public key set".to_string());
            }
            let crv = str_field(m, "crv")?.ok_or("no \"crv\"")?;
            let x = b64_field(m, "x")?;
            let y = b64_field(m, "y")?;
            let size = match crv {
                "P-256" => 32,
                "P-384" => 48,
                other => return Err(format!("unsupported curve {other:?}")),
            };
            if x.len() != size || y.len() != size {
                return Err(format!("\"x\"/\"y\" must be {size} bytes for {crv}"));
            }
            let mut sec1 = Vec::with_capacity(1 + 2 * size);
            sec1.push(4u8);
            sec1.extend_from_slice(&x);
            sec1.extend_from_slice(&y);
            if size == 32 {
                KeyMaterial::P256(
                    p256::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                        .map_err(|_| "not a point on P-256".to_string())?,
                )
            } else {
                KeyMaterial::P384(
                    p384::ecdsa::VerifyingKey::from_sec1_bytes(&sec1)
                        .map_err(|_| "not a point on P-384".to_string())?,
                )
            }
        }
        "OKP" => {
            if m.contains_key("d") {
                return Err("an OKP private key in a public key set".to_string());
            }
            let crv = str_field(m, "crv")?.ok_or("no \"crv\"")?;
            if crv != "Ed25519" {
                return Err(format!("unsupported OKP curve {crv:?}"));
            }
            let x: [u8; 32] = b64_field(m, "x")?
                .try_into()
                .map_err(|_| "\"x\" must be 32 bytes for Ed25519".to_string())?;
            let key = ed25519_dalek::VerifyingKey::from_bytes(&x)
                .map_err(|_| "not an Ed25519 point".to_string())?;
            if key.is_weak() {
                return Err("a small-order Ed25519 key".to_string());
            }
            KeyMaterial::Ed25519(key)
        }
        "oct" => return Err("symmetric keys are not taken from a key set".to_string()),
        other => return Err(format!("unsupported \"kty\" {other:?}")),
    };
    if let Some(a) = alg {
        if !material.fits(a) {
            return Err(format!("\"alg\" {a} does not fit \"kty\" {kty}"));
        }
    }
    Ok(Key { kid, alg, material })
}
