//! Validation beyond the regex: checksums, excluded ranges, and the bytes
//! around a candidate (the regex engine has no look-around).
//!
//! Every check takes the haystack and the candidate span and returns the span
//! to mask (some shrink it: an IBAN regex may run into the next word), or
//! `None` to reject the candidate. Identifier checksums are in [`ids`];
//! context words (for the ambiguous forms) in [`context`].

pub(crate) mod context;
pub(crate) mod ids;
#[cfg(test)]
mod reference;

use std::net::Ipv6Addr;
use std::sync::Arc;

/// Which extra check a detector's candidates go through.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Kind {
    /// The regex is the whole rule (custom detectors, prefixed tokens).
    None,
    Email,
    Phone(PhoneForm),
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
    /// ABA routing number (checksum), in context.
    Aba,
    /// Canadian SIN (Luhn), in context.
    CaSin,
    /// Aadhaar (Verhoeff), in context.
    Aadhaar,
    InPan,
    UkNino,
    EuVat,
    /// Base58Check or bech32 address.
    Wallet,
    /// US passport number, in context.
    Passport,
    /// US driver's licence number, in context.
    DriverLicense,
}

/// Which phone pattern matched: each has its own digit-count rule.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum PhoneForm {
    /// `+CC`, `(+CC)` or `00CC` first.
    International,
    /// `(415) 555-2671`, `415.555.2671`.
    NorthAmerican,
    /// A trunk `0` first: `020 7946 0958`.
    Trunk,
    /// Any other phone-shaped digits: only after a context word.
    InContext,
}

/// A pattern's check: its kind and, for detectors with context-gated forms,
/// the profile's context words (lowercase).
#[derive(Debug, Clone)]
pub(crate) struct Check {
    kind: Kind,
    context: Option<Arc<[Box<str>]>>,
}

impl Check {
    pub(crate) fn new(kind: Kind, context: Option<Arc<[Box<str>]>>) -> Check {
        Check { kind, context }
    }

    /// The check looks for context words.
    pub(crate) fn reads_context(&self) -> bool {
        self.context.is_some()
    }

    /// A context word comes shortly before `s` (see [`context`]).
    fn in_context(&self, hay: &[u8], s: usize) -> bool {
        self.context
            .as_deref()
            .is_some_and(|words| context::has_context(hay, s, words))
    }
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
    pub(crate) fn run(&self, hay: &[u8], s: usize, e: usize) -> Verdict {
        let Some(text) = hay.get(s..e) else {
            return Verdict::Reject;
        };
        // Identifiers must stand alone: not inside a word or a longer number.
        let standalone = || {
            !is_word(before(hay, s))
                && !is_word(after(hay, e))
                && !starts_inside_number(hay, s)
                && !continues_number(hay, e)
        };
        let ok = match self.kind {
            Kind::None => !text.is_empty(),
            Kind::Email => {
                // Not the tail of a longer (rejected) local part: `a..b@x.com`.
                !matches!(before(hay, s), Some(b) if b.is_ascii_alphanumeric() || b"._%+-".contains(&b))
                    && email(text)
            }
            Kind::Phone(form) => {
                phone(hay, s, e, text, form)
                    && (form != PhoneForm::InContext || self.in_context(hay, s))
            }
            Kind::Card => {
                card(hay, s, e, text)
                    && !(digits(text).count() == 12
                        && ids::aadhaar(text)
                        && self.in_context(hay, s))
            }
            Kind::Ssn => ssn(hay, s, e, text),
            Kind::Iban => return iban(hay, s),
            Kind::Aba => standalone() && ids::aba(text) && self.in_context(hay, s),
            Kind::CaSin => standalone() && ids::ca_sin(text) && self.in_context(hay, s),
            Kind::Aadhaar => standalone() && ids::aadhaar(text) && self.in_context(hay, s),
            Kind::InPan => standalone() && ids::in_pan(text),
            Kind::UkNino => standalone() && ids::uk_nino(text),
            Kind::EuVat => standalone() && ids::eu_vat(text),
            Kind::Wallet => {
                let lower = |n: usize| text.get(..n).map(<[u8]>::to_ascii_lowercase);
                let bech = lower(3).as_deref() == Some(b"bc1")
                    || lower(3).as_deref() == Some(b"tb1")
                    || lower(4).as_deref() == Some(b"ltc1");
                standalone()
                    && if bech {
                        ids::bech32(text)
                    } else {
                        ids::base58check(text)
                    }
            }
            Kind::Passport | Kind::DriverLicense => {
                let d = ids::digit_values(text);
                standalone()
                    && !d.first().is_some_and(|f| d.iter().all(|x| x == f))
                    && self.in_context(hay, s)
            }
            Kind::Ipv4 => {
                !is_word(before(hay, s))
                    && before(hay, s) != Some(b'.')
                    && !is_word(after(hay, e))
                    && !continues_number(hay, e)
            }
            Kind::Ipv6 => ipv6(hay, s, e, text),
            Kind::Jwt => jwt(text),
            Kind::TokenEnd => !token_char(after(hay, e)),
            Kind::TokenWithDigit if !text.iter().any(u8::is_ascii_digit) => {
                // A long run of `sk-` words without a digit holds no value of
                // any kind; skipping it whole keeps `sk-sk-sk-...` linear.
                return Verdict::Skip(e);
            }
            Kind::TokenWithDigit => !token_char(after(hay, e)),
            Kind::Base64End => {
                !matches!(after(hay, e), Some(b) if b.is_ascii_alphanumeric() || b"/+=".contains(&b))
            }
            // Never rejected for length: a rejected candidate running to the end of
            // the input would be found again from every later `password=`.
            Kind::Credential => !text.is_empty(),
            Kind::Bearer => text.len() >= 12 && !text.iter().all(u8::is_ascii_lowercase),
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

fn phone(hay: &[u8], s: usize, e: usize, text: &[u8], form: PhoneForm) -> bool {
    // The surroundings first: they reject most candidates, cheaply.
    let alone = !starts_inside_number(hay, s)
        && !is_word(before(hay, s))
        && !matches!(before(hay, s), Some(b'-' | b'.' | b'/' | b'+'))
        && !is_word(after(hay, e))
        && !continues_number(hay, e);
    if !alone {
        return false;
    }
    // The extension (`x565`, ` ext. 12`) starts at the first letter.
    let number = text
        .iter()
        .position(u8::is_ascii_alphabetic)
        .and_then(|i| text.get(..i))
        .unwrap_or(text)
        .trim_ascii_end();
    // One pass over the number (this runs for every phone-shaped
    // candidate): its digits, parentheses and digit groups.
    let runs = DigitRuns::of(number);
    let n = runs.digits;
    let digits_ok = match form {
        // `00` is the international call prefix, not part of the number;
        // written out without any separator it is a zero-padded id.
        PhoneForm::International if number.starts_with(b"00") => {
            (9..=17).contains(&n) && number.iter().skip(2).any(|b| !b.is_ascii_digit())
        }
        PhoneForm::International | PhoneForm::InContext => (7..=15).contains(&n),
        PhoneForm::NorthAmerican => (10..=11).contains(&n),
        PhoneForm::Trunk => (9..=13).contains(&n),
    };
    if !digits_ok || runs.opens != runs.closes || runs.opens > 2 {
        return false;
    }
    // A one-digit group after the first reads as an ISBN (`978-3-16-148410-0`)
    // or a version (`10.0.19045`), except after a country code (`+33 1 83`);
    // groups of 3-2-4 are an SSN's shape (a mistyped one is no phone either);
    // groups of four only (`0660 7231 3406`) are a card's or a tracking
    // number's shape, unless a `+` says it is dialled.
    let groups = runs.groups();
    let len = |g: &Group| g.len;
    let not_phone_shape = (form != PhoneForm::International
        && groups.iter().skip(1).any(|g| g.len == 1))
        || groups.iter().map(len).eq([3, 2, 4])
        || (groups.len() >= 3 && groups.iter().all(|g| g.len == 4) && !runs.plus);
    let is_date = if runs.count <= MAX_GROUPS {
        groups_look_like_date(groups)
    } else {
        looks_like_date(number)
    };
    !not_phone_shape && !runs.same && !is_date
}

/// Digit groups recorded by [`DigitRuns`]: more than any phone form has.
const MAX_GROUPS: usize = 16;

/// A run of digits: its length, and its value when it has one or two
/// digits (all [`groups_look_like_date`] reads).
#[derive(Clone, Copy, Default)]
struct Group {
    /// Saturates: only lengths up to 4 are compared.
    len: u8,
    small: u8,
}

/// What the phone check reads of a number's bytes, in one pass.
struct DigitRuns {
    digits: usize,
    /// Every digit is the first one (true without digits).
    same: bool,
    opens: usize,
    closes: usize,
    plus: bool,
    /// The first [`MAX_GROUPS`] runs of digits; `count` of them in all.
    runs: [Group; MAX_GROUPS],
    count: usize,
}

impl DigitRuns {
    fn of(text: &[u8]) -> DigitRuns {
        let mut r = DigitRuns {
            digits: 0,
            same: true,
            opens: 0,
            closes: 0,
            plus: false,
            runs: [Group::default(); MAX_GROUPS],
            count: 0,
        };
        let mut first = None;
        let mut run = Group::default();
        for &b in text {
            if b.is_ascii_digit() {
                let d = b - b'0';
                match first {
                    None => first = Some(d),
                    Some(f) => r.same &= f == d,
                }
                r.digits += 1;
                run.len = run.len.saturating_add(1);
                if run.len <= 2 {
                    run.small = run.small * 10 + d;
                }
                continue;
            }
            r.push(&mut run);
            match b {
                b'(' => r.opens += 1,
                b')' => r.closes += 1,
                b'+' => r.plus = true,
                _ => {}
            }
        }
        r.push(&mut run);
        r
    }

    /// Ends the current run of digits, if any.
    fn push(&mut self, run: &mut Group) {
        if run.len > 0 {
            if let Some(slot) = self.runs.get_mut(self.count) {
                *slot = *run;
            }
            self.count += 1;
            *run = Group::default();
        }
    }

    /// The recorded groups (the first [`MAX_GROUPS`]).
    fn groups(&self) -> &[Group] {
        self.runs
            .get(..self.count.min(MAX_GROUPS))
            .unwrap_or_default()
    }
}

/// [`looks_like_date`] on groups already split (all of them).
fn groups_look_like_date(groups: &[Group]) -> bool {
    let day_month = |d: &Group, m: &Group| {
        d.len <= 2 && m.len <= 2 && (1..=31).contains(&d.small) && (1..=12).contains(&m.small)
    };
    let mut groups = groups.iter();
    let (Some(mut a), Some(mut b)) = (groups.next(), groups.next()) else {
        return false;
    };
    for c in groups {
        if (c.len == 4 && (day_month(a, b) || day_month(b, a))) || (a.len == 4 && day_month(c, b)) {
            return true;
        }
        (a, b) = (b, c);
    }
    false
}

/// Three digit groups that read as a date (`15.01.2024 10`, `2024-01-15`).
fn looks_like_date(text: &[u8]) -> bool {
    let num = |g: &[u8]| {
        g.iter()
            .fold(0u32, |a, b| a.saturating_mul(10) + u32::from(b - b'0'))
    };
    let day_month = |d: &[u8], m: &[u8]| {
        d.len() <= 2 && m.len() <= 2 && (1..=31).contains(&num(d)) && (1..=12).contains(&num(m))
    };
    let mut groups = text
        .split(|b| !b.is_ascii_digit())
        .filter(|g| !g.is_empty());
    let (Some(mut a), Some(mut b)) = (groups.next(), groups.next()) else {
        return false;
    };
    for c in groups {
        if (c.len() == 4 && (day_month(a, b) || day_month(b, a)))
            || (a.len() == 4 && day_month(c, b))
        {
            return true;
        }
        (a, b) = (b, c);
    }
    false
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

/// 12-19 digits, one kind of separator, Luhn, and a prefix some card
/// network issues at that length: order numbers, timestamps and tracking
/// numbers that happen to pass Luhn (one in ten does) mostly fail it.
/// - 12: Maestro (50, 56-58, 0604, 6304, 6390, 67);
/// - 13: Visa (4); 14: Diners (30, 36, 38, 39);
/// - 15: Amex (34, 37), JCB (1800, 2131);
/// - 16-19: 2 (Mastercard, Mir), 3 (JCB), 4 (Visa), 5 (Mastercard,
///   Maestro), 6 (Discover, UnionPay, Maestro), Maestro's 0604.
fn card(hay: &[u8], s: usize, e: usize, text: &[u8]) -> bool {
    // One pass (this runs for every card-shaped candidate): the digit
    // count, the first four digits, the separators, and the Luhn sum.
    let first = text
        .iter()
        .find(|b| b.is_ascii_digit())
        .map(|b| u32::from(b - b'0'));
    let (mut n, mut p4, mut same) = (0usize, 0u32, true);
    let (mut sep, mut one_sep) = (None, true);
    // Luhn doubles every second digit from the right: which ones depends on
    // the count, known at the end, so both sums are kept: for an even
    // count, an odd one.
    let (mut even, mut odd) = (0u32, 0u32);
    for &b in text {
        let d = u32::from(b.wrapping_sub(b'0'));
        if d > 9 {
            match sep {
                None => sep = Some(b),
                Some(x) => one_sep &= x == b,
            }
            continue;
        }
        if n < 4 {
            p4 = p4 * 10 + d;
        }
        same &= Some(d) == first;
        let doubled = if d > 4 { 2 * d - 9 } else { 2 * d };
        if n % 2 == 0 {
            (even, odd) = (even + doubled, odd + d);
        } else {
            (even, odd) = (even + d, odd + doubled);
        }
        n += 1;
    }
    let p2 = p4 / 100;
    let network = match n {
        12 => matches!(p2, 50 | 56..=58 | 67) || matches!(p4, 604 | 6304 | 6390),
        13 => first == Some(4),
        14 => matches!(p2, 30 | 36 | 38 | 39),
        15 => matches!(p2, 34 | 37) || matches!(p4, 1800 | 2131),
        16..=19 => matches!(first, Some(2..=6)) || p4 == 604,
        _ => false,
    };
    let luhn = if n % 2 == 0 { even } else { odd }.is_multiple_of(10);
    network
        && one_sep
        && !same
        && luhn
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
    let country = hay.get(s..s + 2).map(<[u8]>::to_ascii_uppercase);
    let Some(len) = country.as_deref().and_then(iban_length) else {
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

    /// Candidates built from the bytes the phone and card patterns read
    /// (digits, separators, `+`, parentheses, extension letters), inside
    /// random surroundings: the one-pass checks give the verdicts of the
    /// checks they replaced ([`reference`]) on every one.
    #[test]
    fn one_pass_checks_agree_with_the_reference() {
        const BYTES: &[u8] = b"0123456789012345678901234567890123456789 -.()+/:#x";
        let mut state = 0x2545_F491_4F6C_DD1Du64;
        let mut next = |n: usize| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            (state % n as u64) as usize
        };
        let forms = [
            PhoneForm::International,
            PhoneForm::NorthAmerican,
            PhoneForm::Trunk,
            PhoneForm::InContext,
        ];
        let (mut phones, mut cards) = (0, 0);
        for _ in 0..400_000 {
            let mut hay = Vec::new();
            let (pre, len, post) = (next(4), next(40), next(4));
            for _ in 0..pre + len + post {
                hay.push(BYTES[next(BYTES.len())]);
            }
            // Up to 40 bytes: past 16 digit groups too. Mostly digits
            // with few separators, like real candidates.
            if next(2) == 0 {
                for b in hay.iter_mut().skip(pre).take(len) {
                    if next(4) != 0 {
                        *b = b'0' + next(10) as u8;
                    }
                }
            }
            let (s, e) = (pre, pre + len);
            let text = &hay[s..e];
            for form in forms {
                let want = reference::phone(&hay, s, e, text, form);
                assert_eq!(
                    phone(&hay, s, e, text, form),
                    want,
                    "{form:?} {:?}",
                    String::from_utf8_lossy(&hay)
                );
                phones += usize::from(want);
            }
            let want = reference::card(&hay, s, e, text);
            assert_eq!(
                card(&hay, s, e, text),
                want,
                "{:?}",
                String::from_utf8_lossy(&hay)
            );
            cards += usize::from(want);
        }
        // More digit groups than are recorded (no form allows the digits
        // that takes, so the groups past 16 are never read).
        for text in [
            "1 2 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9 0",
            "12 12 12 12 12 12 12 12 12 12 12 12 12 12 12 12 01 01 2024",
            "+1 (2) 3 4 5 6 7 8 9 0 1 2 3 4 5 6 7 8 9",
        ] {
            let hay = format!("x {text} y");
            let (s, e) = (2, 2 + text.len());
            for form in forms {
                let want = reference::phone(hay.as_bytes(), s, e, text.as_bytes(), form);
                assert_eq!(
                    phone(hay.as_bytes(), s, e, text.as_bytes(), form),
                    want,
                    "{text}"
                );
            }
        }
        // Both verdicts were seen often enough to mean something.
        assert!(
            phones > 1_000 && cards > 100,
            "{phones} phones, {cards} cards"
        );
    }

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
