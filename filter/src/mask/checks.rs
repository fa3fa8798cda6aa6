//! Validation beyond the regex: checksums, excluded ranges, and the bytes
//! around a candidate (the regex engine has no look-around).
//!
//! Every check takes the haystack and the candidate span and returns the span
//! to mask (some shrink it: an IBAN regex may run into the next word), or
//! `None` to reject the candidate.

use std::net::Ipv6Addr;

/// Which extra check a detector's candidates go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Check {
    /// The regex is the whole rule (custom detectors, prefixed tokens).
    None,
    Email,
    Phone,
    Card,
    Ssn,
    Iban,
    Ipv4,
    Ipv6,
    Jwt,
    /// The token must not continue past the match: `[A-Za-z0-9_-]`.
    TokenEnd,
    /// As `TokenEnd`, and at least one digit (keeps `sk-learn-style-names` out).
    TokenWithDigit,
    /// A base64 secret that must not continue past the match (`[A-Za-z0-9/+=]`).
    Base64End,
    /// The value after `password=`: anything non-empty.
    Credential,
    /// The token after `Bearer `: long enough and not a plain lowercase word
    /// ("the bearer of this letter" stays).
    Bearer,
}

pub(crate) type Span = (usize, usize);

/// What a check says about a candidate.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Verdict {
    /// Mask this span.
    Mask(Span),
    /// Not this detector; other patterns may still match here.
    Reject,
    /// Not a value, and nothing inside it is either: resume the search at
    /// this offset. An IBAN-shaped token with a bad check digit is a mistyped
    /// IBAN, not a card or phone number that happens to sit in its tail.
    Skip(usize),
}

fn before(hay: &[u8], s: usize) -> Option<u8> {
    s.checked_sub(1).and_then(|i| hay.get(i)).copied()
}

fn after(hay: &[u8], e: usize) -> Option<u8> {
    hay.get(e).copied()
}

fn is_word(b: Option<u8>) -> bool {
    b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_')
}

/// `-7`, `.7`, `/7`: the number goes on (a longer id, a date, a version).
fn continues_number(hay: &[u8], e: usize) -> bool {
    matches!(after(hay, e), Some(b'-' | b'.' | b'/' | b':'))
        && hay.get(e + 1).is_some_and(u8::is_ascii_digit)
}

fn starts_inside_number(hay: &[u8], s: usize) -> bool {
    let digit_at = |back: usize| {
        s.checked_sub(back)
            .and_then(|i| hay.get(i))
            .is_some_and(u8::is_ascii_digit)
    };
    match before(hay, s) {
        Some(b'-' | b'.' | b'/' | b':' | b'+' | b'#') => digit_at(2),
        // The tail of a longer run of digit groups (`6011 0807 7656 0570`, a
        // Luhn-invalid card, is not the phone number `0807 7656 0570`); a
        // lone count before it (`qty 2 4111 ...`) does not count.
        Some(b' ') => digit_at(2) && digit_at(3) && digit_at(4),
        _ => false,
    }
}

impl Check {
    pub(crate) fn run(self, hay: &[u8], s: usize, e: usize) -> Verdict {
        let Some(text) = hay.get(s..e) else {
            return Verdict::Reject;
        };
        let ok = match self {
            Check::None => !text.is_empty(),
            Check::Email => {
                // Not the tail of a longer (rejected) local part: `a..b@x.com`.
                !matches!(before(hay, s), Some(b) if b.is_ascii_alphanumeric() || b"._%+-".contains(&b))
                    && email(text)
            }
            Check::Phone => phone(hay, s, e, text),
            Check::Card => card(hay, s, e, text),
            Check::Ssn => ssn(hay, s, e, text),
            Check::Iban => return iban(hay, s),
            Check::Ipv4 => {
                !is_word(before(hay, s))
                    && before(hay, s) != Some(b'.')
                    && !is_word(after(hay, e))
                    && !continues_number(hay, e)
            }
            Check::Ipv6 => ipv6(hay, s, e, text),
            Check::Jwt => jwt(text),
            Check::TokenEnd => !token_char(after(hay, e)),
            Check::TokenWithDigit if !text.iter().any(u8::is_ascii_digit) => {
                // A long run of `sk-` words without a digit holds no value of
                // any kind; skipping it whole keeps `sk-sk-sk-...` linear.
                return Verdict::Skip(e);
            }
            Check::TokenWithDigit => !token_char(after(hay, e)),
            Check::Base64End => {
                !matches!(after(hay, e), Some(b) if b.is_ascii_alphanumeric() || b"/+=".contains(&b))
            }
            // Never rejected for length: a rejected candidate running to the end of
            // the input would be found again from every later `password=`.
            Check::Credential => !text.is_empty(),
            Check::Bearer => text.len() >= 12 && !text.iter().all(u8::is_ascii_lowercase),
        };
        if ok {
            Verdict::Mask((s, e))
        } else {
            Verdict::Reject
        }
    }
}

fn token_char(b: Option<u8>) -> bool {
    b.is_some_and(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-')
}

fn email(text: &[u8]) -> bool {
    let Some(at) = text.iter().rposition(|&b| b == b'@') else {
        return false;
    };
    let (local, domain) = (
        text.get(..at).unwrap_or(&[]),
        text.get(at + 1..).unwrap_or(&[]),
    );
    let local_ok = (1..=64).contains(&local.len())
        && local.first() != Some(&b'.')
        && local.last() != Some(&b'.')
        && !local.windows(2).any(|w| w == b"..");
    let labels_ok = domain.len() <= 253
        && domain.split(|&b| b == b'.').all(|l| {
            !l.is_empty() && l.len() <= 63 && l.first() != Some(&b'-') && l.last() != Some(&b'-')
        });
    let tld_ok = domain
        .rsplit(|&b| b == b'.')
        .next()
        .is_some_and(|t| t.len() >= 2 && t.iter().all(u8::is_ascii_alphabetic));
    local_ok && labels_ok && tld_ok
}

fn digits(text: &[u8]) -> impl Iterator<Item = u8> + '_ {
    text.iter().filter(|b| b.is_ascii_digit()).map(|b| b - b'0')
}

fn phone(hay: &[u8], s: usize, e: usize, text: &[u8]) -> bool {
    let n = digits(text).count();
    let opens = text.iter().filter(|&&b| b == b'(').count();
    let closes = text.iter().filter(|&&b| b == b')').count();
    let first = digits(text).next();
    (7..=15).contains(&n)
        && opens == closes
        && opens <= 1
        && !digits(text).all(|d| Some(d) == first)
        && !starts_inside_number(hay, s)
        && !is_word(before(hay, s))
        && !matches!(before(hay, s), Some(b'-' | b'.' | b'/' | b'+'))
        && !is_word(after(hay, e))
        && !continues_number(hay, e)
}

/// Luhn (mod 10) over the digits of `text`.
pub(crate) fn luhn(text: &[u8]) -> bool {
    let mut sum = 0u32;
    for (i, d) in text
        .iter()
        .rev()
        .filter(|b| b.is_ascii_digit())
        .map(|b| u32::from(b - b'0'))
        .enumerate()
    {
        sum += if i % 2 == 1 {
            let x = d * 2;
            if x > 9 {
                x - 9
            } else {
                x
            }
        } else {
            d
        };
    }
    sum.is_multiple_of(10)
}

/// 13-19 digits, one kind of separator, Luhn, and a first digit some card
/// network issues (1 UATP, 2 Mastercard/Mir, 3 Amex/Diners/JCB, 4 Visa,
/// 5 Mastercard/Maestro, 6 Discover/UnionPay): order numbers that happen to
/// pass Luhn (one in ten does) mostly start elsewhere.
fn card(hay: &[u8], s: usize, e: usize, text: &[u8]) -> bool {
    let n = digits(text).count();
    let mut seps = text.iter().filter(|b| !b.is_ascii_digit());
    let sep = seps.next();
    let first = digits(text).next();
    (13..=19).contains(&n)
        && seps.all(|b| Some(b) == sep)
        && matches!(first, Some(1..=6))
        && !digits(text).all(|d| Some(d) == first)
        && luhn(text)
        && !starts_inside_number(hay, s)
        && !continues_number(hay, e)
}

/// US SSN `AAA-GG-SSSS`: never area 000, 666 or 9xx, group 00, serial 0000.
pub(crate) fn ssn_parts_valid(area: u32, group: u32, serial: u32) -> bool {
    area != 0 && area != 666 && area < 900 && group != 0 && serial != 0
}

fn ssn(hay: &[u8], s: usize, e: usize, text: &[u8]) -> bool {
    let num = |r: std::ops::Range<usize>| -> Option<u32> {
        text.get(r)?.iter().try_fold(0u32, |acc, b| {
            b.is_ascii_digit().then(|| acc * 10 + u32::from(b - b'0'))
        })
    };
    let (Some(a), Some(g), Some(sr)) = (num(0..3), num(4..6), num(7..11)) else {
        return false;
    };
    text.len() == 11
        && text.get(3) == text.get(6)
        && ssn_parts_valid(a, g, sr)
        && !starts_inside_number(hay, s)
        && !continues_number(hay, e)
}

/// IBAN lengths by country (ISO 13616 registry, the common ones).
const IBAN_LENGTHS: &str =
    "AD24AE23AL28AT20AZ28BA20BE16BG22BH22BR29BY28CH21CR22CY28CZ24DE22DK18DO28\
EE20EG29ES24FI18FO18FR27GB22GE22GI23GL18GR27GT28HR21HU28IE22IL23IQ23IS26IT27JO30KW30KZ20LB28LC32\
LI21LT20LU20LV21MC27MD24ME22MK19MR27MT31MU30NL18NO15PK24PL28PS29PT25QA29RO24RS22SA24SC31SE24SI19\
SK24SM27ST25SV28TL23TN24TR26UA29VA22VG24XK20";

fn iban_length(country: &[u8]) -> Option<usize> {
    IBAN_LENGTHS
        .as_bytes()
        .chunks(4)
        .find(|c| c.get(..2) == Some(country))
        .and_then(|c| std::str::from_utf8(c.get(2..)?).ok()?.parse().ok())
}

/// Takes as many characters as the country's IBAN length (single spaces
/// allowed between them), then checks mod-97 == 1.
fn iban(hay: &[u8], s: usize) -> Verdict {
    let Some(len) = hay.get(s..s + 2).and_then(iban_length) else {
        return Verdict::Reject;
    };
    let mut chars = Vec::with_capacity(len);
    let mut i = s;
    while chars.len() < len {
        let Some(&b) = hay.get(i) else {
            return Verdict::Reject;
        };
        if b.is_ascii_alphanumeric() {
            chars.push(b.to_ascii_uppercase());
        } else if !(b == b' '
            && !chars.is_empty()
            && hay.get(i + 1).is_some_and(u8::is_ascii_alphanumeric))
        {
            return Verdict::Reject;
        }
        i += 1;
    }
    if is_word(after(hay, i)) || is_word(before(hay, s)) {
        return Verdict::Reject;
    }
    if mod97(&chars) == 1 {
        Verdict::Mask((s, i))
    } else {
        Verdict::Skip(i)
    }
}

/// The IBAN remainder: first four characters moved to the end, letters as 10..35.
pub(crate) fn mod97(chars: &[u8]) -> u32 {
    let (head, tail) = chars.split_at(chars.len().min(4));
    tail.iter().chain(head).fold(0u32, |acc, &b| match b {
        b'0'..=b'9' => (acc * 10 + u32::from(b - b'0')) % 97,
        b'A'..=b'Z' => (acc * 100 + u32::from(b - b'A' + 10)) % 97,
        _ => acc,
    })
}

fn ipv6(hay: &[u8], s: usize, e: usize, text: &[u8]) -> bool {
    let hex = text.iter().filter(|b| b.is_ascii_hexdigit()).count();
    let colons = text.iter().filter(|&&b| b == b':').count();
    hex >= 2
        && colons >= 2
        && !is_word(before(hay, s))
        && !matches!(before(hay, s), Some(b':' | b'.'))
        && !is_word(after(hay, e))
        && after(hay, e) != Some(b':')
        && std::str::from_utf8(text)
            .ok()
            .is_some_and(|t| t.parse::<Ipv6Addr>().is_ok())
}

/// A JWT's first segment is base64url JSON naming its algorithm.
fn jwt(text: &[u8]) -> bool {
    let header = text.split(|&b| b == b'.').next().unwrap_or(&[]);
    let Some(json) = base64url(header) else {
        return false;
    };
    json.first() == Some(&b'{') && json.windows(5).any(|w| w == b"\"alg\"" || w == b"\"typ\"")
}

fn base64url(text: &[u8]) -> Option<Vec<u8>> {
    let mut out = Vec::with_capacity(text.len() * 3 / 4);
    let (mut acc, mut bits) = (0u32, 0u32);
    for &b in text {
        let v = match b {
            b'A'..=b'Z' => b - b'A',
            b'a'..=b'z' => b - b'a' + 26,
            b'0'..=b'9' => b - b'0' + 52,
            b'-' | b'+' => 62,
            b'_' | b'/' => 63,
            b'=' => break,
            _ => return None,
        };
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    Some(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn luhn_known_values() {
        assert!(luhn(b"4111111111111111"));
        assert!(luhn(b"4111 1111 1111 1111"));
        assert!(luhn(b"378282246310005"));
        assert!(!luhn(b"4111111111111112"));
    }

    #[test]
    fn mod97_known_values() {
        assert_eq!(mod97(b"GB82WEST12345698765432"), 1);
        assert_eq!(mod97(b"DE89370400440532013000"), 1);
        assert_ne!(mod97(b"DE88370400440532013000"), 1);
    }

    #[test]
    fn ssn_ranges() {
        assert!(ssn_parts_valid(123, 45, 6789));
        assert!(!ssn_parts_valid(0, 45, 6789));
        assert!(!ssn_parts_valid(666, 45, 6789));
        assert!(!ssn_parts_valid(900, 45, 6789));
        assert!(!ssn_parts_valid(123, 0, 6789));
        assert!(!ssn_parts_valid(123, 45, 0));
    }

    #[test]
    fn base64url_decodes_jwt_header() {
        assert_eq!(
            base64url(b"eyJhbGciOiJIUzI1NiJ9").unwrap(),
            br#"{"alg":"HS256"}"#
        );
    }

    #[test]
    fn iban_lengths_table_parses() {
        assert_eq!(iban_length(b"DE"), Some(22));
        assert_eq!(iban_length(b"NO"), Some(15));
        assert_eq!(iban_length(b"ZZ"), None);
    }
}
