//! Signature verification per algorithm (RustCrypto, pure Rust).

use super::jwks::KeyMaterial;
use super::jwt::Alg;
use hmac::{Hmac, KeyInit, Mac};
use rsa::signature::Verifier;
use rsa::{Pkcs1v15Sign, Pss};
use sha2::{Digest, Sha256, Sha384, Sha512};

/// Whether `signature` is a valid `alg` signature of `input` by `key`. A key
/// that does not fit the algorithm never verifies.
pub fn verify(alg: Alg, key: &KeyMaterial, input: &[u8], signature: &[u8]) -> bool {
    if !key.fits(alg) {
        return false;
    }
    match key {
        KeyMaterial::Rsa(k) => {
            // The rsa crate also checks the signature length against the modulus.
            let r = match alg {
                Alg::RS256 => k.verify(
                    Pkcs1v15Sign::new::<Sha256>(),
                    &Sha256::digest(input),
                    signature,
                ),
                Alg::RS384 => k.verify(
                    Pkcs1v15Sign::new::<Sha384>(),
                    &Sha384::digest(input),
                    signature,
                ),
                Alg::RS512 => k.verify(
                    Pkcs1v15Sign::new::<Sha512>(),
                    &Sha512::digest(input),
                    signature,
                ),
                // Salt length = hash length (RFC 7518 section 3.5), enforced.
                Alg::PS256 => k.verify(Pss::<Sha256>::new(), &Sha256::digest(input), signature),
                Alg::PS384 => k.verify(Pss::<Sha384>::new(), &Sha384::digest(input), signature),
                Alg::PS512 => k.verify(Pss::<Sha512>::new(), &Sha512::digest(input), signature),
                _ => return false,
            };
            r.is_ok()
        }
        KeyMaterial::P256(k) => {
            // JWS ECDSA signatures are r||s, fixed width (RFC 7518 section 3.4).
            if signature.len() != 64 || !ecdsa_halves_nonzero(signature) {
                return false;
            }
            match p256::ecdsa::Signature::from_slice(signature) {
                Ok(sig) => k.verify(input, &sig).is_ok(),
                Err(_) => false,
            }
        }
        KeyMaterial::P384(k) => {
            if signature.len() != 96 || !ecdsa_halves_nonzero(signature) {
                return false;
            }
            match p384::ecdsa::Signature::from_slice(signature) {
                Ok(sig) => k.verify(input, &sig).is_ok(),
                Err(_) => false,
            }
        }
        KeyMaterial::Ed25519(k) => {
            let Ok(bytes) = <[u8; 64]>::try_from(signature) else {
                return false;
            };
            let sig = ed25519_dalek::Signature::from_bytes(&bytes);
            k.verify_strict(input, &sig).is_ok()
        }
        KeyMaterial::Hmac(secret) => match alg {
            Alg::HS256 => hmac_ok::<Hmac<Sha256>>(secret, input, signature),
            Alg::HS384 => hmac_ok::<Hmac<Sha384>>(secret, input, signature),
            Alg::HS512 => hmac_ok::<Hmac<Sha512>>(secret, input, signature),
            _ => false,
        },
    }
}

/// CVE-2022-21449 ("psychic signatures"): r = 0 or s = 0 must never verify.
/// The ecdsa crate refuses them too; this check does not depend on it.
fn ecdsa_halves_nonzero(sig: &[u8]) -> bool {
    let (r, s) = sig.split_at(sig.len() / 2);
    r.iter().any(|b| *b != 0) && s.iter().any(|b| *b != 0)
}

fn hmac_ok<M: Mac + KeyInit>(secret: &[u8], input: &[u8], signature: &[u8]) -> bool {
    match <M as KeyInit>::new_from_slice(secret) {
        Ok(mut mac) => {
            mac.update(input);
            // Constant-time comparison.
            mac.verify_slice(signature).is_ok()
        }
        Err(_) => false,
    }
}
