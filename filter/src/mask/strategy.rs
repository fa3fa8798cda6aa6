//! What a masked value becomes.

use hmac::{Hmac, KeyInit, Mac};
use sha2::Sha256;

use super::tokens::Tokens;

/// The `hash` strategy's key, with both of HMAC's key blocks (inner and
/// outer) already absorbed: two SHA-256 compressions per short value
/// instead of three, with `sha2`'s compression (about 40 % fewer
/// instructions than `hmac_sha256`'s; docs/performance.md).
#[derive(Clone)]
pub(crate) struct HashKey(Hmac<Sha256>);

impl HashKey {
    /// HMAC takes keys of any length; `hmac`'s signature still allows an
    /// error, which the policy loader reports.
    pub(crate) fn new(key: &[u8]) -> Result<Self, String> {
        Hmac::new_from_slice(key)
            .map(HashKey)
            .map_err(|e| format!("masking.hash_key cannot key HMAC-SHA256: {e}"))
    }
}

impl std::fmt::Debug for HashKey {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("HashKey(..)")
    }
}

/// How one detector's (or field's) values are replaced.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strategy {
    /// `[REDACTED:email]`.
    Redact,
    /// Every character but the last N becomes `*`: `************1111`. Never
    /// keeps more than half the value, so a short value is not shown whole.
    Partial(usize),
    /// `tok_` and 16 hex digits of HMAC-SHA256(hash_key, value): equal values
    /// give equal tokens, so they can be correlated without being exposed.
    Hash,
    /// `<EMAIL_1>`: a token of the exchange's map, restored in the response
    /// ([`super::tokens`]). Request profiles only (checked at load).
    Tokenize,
}

impl Strategy {
    /// Appends the replacement for `value` (found by `label`) to `out`.
    /// `key` is present whenever a profile uses `Hash` (checked at compile);
    /// `tokens` is the exchange's map (`Tokenize` adds to it).
    pub(crate) fn apply(
        self,
        label: &str,
        value: &[u8],
        key: &HashKey,
        tokens: &mut Tokens,
        out: &mut String,
    ) {
        match self {
            Strategy::Tokenize => out.push_str(&tokens.token(label, value)),
            Strategy::Redact => {
                out.push_str("[REDACTED:");
                out.push_str(label);
                out.push(']');
            }
            Strategy::Partial(n) => {
                let text = String::from_utf8_lossy(value);
                let total = text.chars().count();
                let keep = n.min(total / 2);
                out.extend(std::iter::repeat_n('*', total - keep));
                out.extend(text.chars().skip(total - keep));
            }
            Strategy::Hash => {
                let mut h = key.0.clone();
                h.update(value);
                let mac = h.finalize().into_bytes();
                out.push_str("tok_");
                for b in mac.iter().take(8) {
                    out.push(hex(b >> 4));
                    out.push(hex(b & 0xF));
                }
            }
        }
    }
}

fn hex(n: u8) -> char {
    char::from(if n < 10 { b'0' + n } else { b'a' + n - 10 })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(s: Strategy, v: &str) -> String {
        let mut out = String::new();
        s.apply(
            "card",
            v.as_bytes(),
            &HashKey::new(b"0123456789abcdef0123").unwrap(),
            &mut Tokens::default(),
            &mut out,
        );
        out
    }

    fn hex_of(b: &[u8]) -> String {
        b.iter().map(|x| format!("{x:02x}")).collect()
    }

    #[test]
    fn redact_names_the_label() {
        assert_eq!(run(Strategy::Redact, "x"), "[REDACTED:card]");
    }

    #[test]
    fn partial_keeps_last_n_but_never_half() {
        assert_eq!(
            run(Strategy::Partial(4), "4111111111111111"),
            "************1111"
        );
        assert_eq!(run(Strategy::Partial(4), "abcd"), "**cd");
        assert_eq!(run(Strategy::Partial(4), "é1234567"), "****4567");
        assert_eq!(run(Strategy::Partial(0), "secret"), "******");
    }

    #[test]
    fn tokenize_numbers_values_in_order_and_repeats_equal_ones() {
        let mut tokens = Tokens::default();
        let mut run = |label: &str, v: &str| {
            let mut out = String::new();
            let key = HashKey::new(b"0123456789abcdef0123").unwrap();
            Strategy::Tokenize.apply(label, v.as_bytes(), &key, &mut tokens, &mut out);
            out
        };
        assert_eq!(run("email", "a@example.com"), "<EMAIL_1>");
        assert_eq!(run("phone", "+1 415 555 0100"), "<PHONE_2>");
        assert_eq!(run("email", "a@example.com"), "<EMAIL_1>");
        assert_eq!(run("/customers/*/ssn", "123-45-6789"), "<CUSTOMERS_SSN_3>");
    }

    #[test]
    fn hash_is_stable_keyed_and_short() {
        let a = run(Strategy::Hash, "alice@example.com");
        assert_eq!(a, run(Strategy::Hash, "alice@example.com"));
        assert_ne!(a, run(Strategy::Hash, "bob@example.com"));
        assert!(a.starts_with("tok_") && a.len() == 20, "{a}");
        let mut other = String::new();
        let key = HashKey::new(b"another key 123456").unwrap();
        Strategy::Hash.apply(
            "x",
            b"alice@example.com",
            &key,
            &mut Tokens::default(),
            &mut other,
        );
        assert_eq!(
            &run(Strategy::Hash, "alice@example.com")[4..],
            &hex_of(&hmac_sha256::HMAC::mac(b"alice@example.com", b"0123456789abcdef0123")[..8]),
            "plain HMAC-SHA256, first 8 bytes"
        );
        assert_ne!(a, other);
    }
}
