//! The built-in detectors: a name, one or more patterns, and the check each
//! candidate must pass.
//!
//! Patterns are ASCII-only and compiled with Unicode off, so `\b`, `\d` and
//! `\s` are ASCII and the lazy DFA never has to give up on non-ASCII input;
//! every match starts and ends on an ASCII byte, so it never splits UTF-8.
//! Bounded repetitions are kept small (each `{m,n}` copies the sub-automaton):
//! long tails are `+` and the check bounds them.
//!
//! Order is priority: when two patterns match at the same position the
//! earlier one wins (leftmost-first), so specific token formats come before
//! the broad ones (Anthropic before OpenAI, JWT before bearer). A pattern's
//! `tier` moves it down: tier 1 (context-gated bare numbers) comes after
//! every tier-0 pattern, tier 2 (any phone-like digit run) last: most of
//! their candidates are rejected, and a rejected candidate costs a retry of
//! each lower-priority pattern at its start.

use super::checks::{Kind, PhoneForm};

/// One pattern of a detector.
pub(crate) struct Pattern {
    pub regex: &'static str,
    pub check: Kind,
    /// The secret is capture group 1 (`password=<secret>`), not the whole match.
    pub value_group: bool,
    /// Patterns are ordered by tier, then as listed (see above).
    pub tier: u8,
}

pub(crate) struct Builtin {
    pub name: &'static str,
    pub patterns: &'static [Pattern],
}

const fn p(regex: &'static str, check: Kind) -> Pattern {
    Pattern {
        regex,
        check,
        value_group: false,
        tier: 0,
    }
}

const fn v(regex: &'static str, check: Kind) -> Pattern {
    Pattern {
        regex,
        check,
        value_group: true,
        tier: 0,
    }
}

/// A context-gated pattern: `tier` 1, or 2 for the broadest.
const fn late(tier: u8, regex: &'static str, check: Kind) -> Pattern {
    Pattern {
        regex,
        check,
        value_group: false,
        tier,
    }
}

/// Every built-in detector, in priority order.
pub(crate) const BUILTINS: &[Builtin] = &[
    Builtin {
        name: "private_key",
        // To the END line, or (truncated key) as far as the body goes. The
        // body is base64, whitespace, `\n` escapes (a key inside JSON scanned
        // as text) and `Proc-Type: 4,ENCRYPTED` headers, never `--`: kept that
        // narrow because the engine's reverse pass (finding where any match
        // starts) runs back for as long as some pattern could still match.
        patterns: &[p(
            r"-----BEGIN[A-Z ]{0,24}PRIVATE KEY( BLOCK)?-----(?:[A-Za-z0-9+/=\s\:,]|-[A-Za-z0-9+/=\s\:,])*(?:-----END[A-Z ]{0,24}PRIVATE KEY( BLOCK)?-----)?",
            Kind::None,
        )],
    },
    Builtin {
        name: "jwt",
        patterns: &[p(
            r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
            Kind::Jwt,
        )],
    },
    Builtin {
        name: "aws_access_key",
        patterns: &[p(
            r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{16}\b",
            Kind::None,
        )],
    },
    Builtin {
        name: "aws_secret_key",
        // 40 base64 characters carry no signature of their own: only in context.
        patterns: &[v(
            r#"(?i)aws_?secret_?(?:access_?)?key["']?\s{0,4}[:=]\s{0,4}["']?([A-Za-z0-9/+]{40})"#,
            Kind::Base64End,
        )],
    },
    Builtin {
        name: "github_token",
        patterns: &[p(
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
            Kind::TokenEnd,
        )],
    },
    Builtin {
        name: "anthropic_key",
        patterns: &[p(r"\bsk-ant-[A-Za-z0-9_-]{20,}", Kind::TokenEnd)],
    },
    Builtin {
        name: "openai_key",
        patterns: &[p(
            r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
            Kind::TokenWithDigit,
        )],
    },
    Builtin {
        name: "slack_token",
        patterns: &[
            p(r"\bxox[abposre]-[A-Za-z0-9-]{10,}", Kind::TokenEnd),
            p(r"\bxapp-[0-9]-[A-Za-z0-9-]{10,}", Kind::TokenEnd),
            p(
                r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9_/]{8,}",
                Kind::None,
            ),
        ],
    },
    Builtin {
        name: "stripe_key",
        patterns: &[p(
            r"\b(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{24,})",
            Kind::TokenEnd,
        )],
    },
    Builtin {
        name: "google_api_key",
        patterns: &[p(r"\bAIza[0-9A-Za-z_-]{35}", Kind::TokenEnd)],
    },
    Builtin {
        name: "credential",
        patterns: &[
            v(
                r#"(?i)\b(?:password|passwd|pwd|passphrase|secret|client_secret|api[_-]?key|access[_-]?token|refresh[_-]?token|auth[_-]?token)["']?\s{0,3}[:=]\s{0,3}["']?([^\s"'&,;<>]+)"#,
                Kind::Credential,
            ),
            v(
                r"(?i)\b(?:bearer|basic|token)\s+([A-Za-z0-9._~+/-]+=*)",
                Kind::Bearer,
            ),
        ],
    },
    Builtin {
        name: "email",
        patterns: &[p(
            r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+",
            Kind::Email,
        )],
    },
    Builtin {
        name: "iban",
        patterns: &[p(
            r"\b[A-Za-z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,32}",
            Kind::Iban,
        )],
    },
    Builtin {
        name: "credit_card",
        patterns: &[p(
            r"\b(?:[0-9]{12,19}|[0-9]{4}(?:[ -][0-9]{4}){2,3}(?:[ -][0-9]{1,4})?|[0-9]{4}[ -][0-9]{6}[ -][0-9]{4,5})\b",
            Kind::Card,
        )],
    },
    Builtin {
        name: "ssn",
        patterns: &[p(r"\b[0-9]{3}[- ][0-9]{2}[- ][0-9]{4}\b", Kind::Ssn)],
    },
    Builtin {
        name: "phone",
        // Each form may end in an extension: `x565`, ` ext. 12`, ` extension 12`.
        patterns: &[
            // International: +CC, (+CC), 00CC, then 6-14 more digits with up
            // to two separators (space . - ( )) between digits: `+44 (0)20
            // 7946 0958`, `(+358) 083778353`, `0044 20 7946 0958`.
            p(
                r"(?:\(\+|\+ ?\(?|\b00 ?)[1-9](?:[ .()-]{0,2}[0-9]){6,14}(?:(?i: ?(?:x|ext\.?|extension) ?)[0-9]{1,6})?",
                Kind::Phone(PhoneForm::International),
            ),
            // North American: (415) 555-2671, 415-555-2671, 1 415.555.2671.
            p(
                r"(?:\b1[ .-]?)?(?:\([2-9][0-9]{2}\) ?|\b[2-9][0-9]{2}[ .-])[0-9]{3}[ .-][0-9]{4}(?:(?i: ?(?:x|ext\.?|extension) ?)[0-9]{1,6})?",
                Kind::Phone(PhoneForm::NorthAmerican),
            ),
            // National with a trunk 0, 9-13 digits in 2-5 groups (two
            // only if the second has 5+ digits: `03-01` of a date is no
            // candidate): 020 7946 0958, (08) 8747 6301, 0688 872 49 99.
            p(
                r"(?:\(0[1-9][0-9]{0,4}\)[ -]?|\b0[1-9][0-9]{0,4}[ .-])(?:[0-9]{5,8}|[0-9]{2,8}(?:[ .-][0-9]{2,8}){1,3})(?:(?i: ?(?:x|ext\.?|extension) ?)[0-9]{1,6})?",
                Kind::Phone(PhoneForm::Trunk),
            ),
            // Anything else phone-shaped (7-15 digits, `99 577450`,
            // `3420837783`), only after a context word (`call`, `tel`, ...).
            // Its first group is never four digits and a dash: an ISO date
            // (`2024-03-01` in every timestamp) is not even a candidate.
            late(
                2,
                r"(?:\([0-9]{1,4}\)[ /]?|\b)(?:[0-9]{1,3}[ ./-]|[0-9]{4}[ ./]|[0-9]{5})(?:[ ./-]?[0-9]){4,13}(?:(?i: ?(?:x|ext\.?|extension) ?)[0-9]{1,6})?",
                Kind::Phone(PhoneForm::InContext),
            ),
        ],
    },
    Builtin {
        name: "ipv6",
        patterns: &[p(
            r"(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){1,6}:|::)(?:[0-9A-Fa-f]{1,4}:){0,5}(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{1,4})?",
            Kind::Ipv6,
        )],
    },
    Builtin {
        name: "ipv4",
        patterns: &[p(
            r"\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\b",
            Kind::Ipv4,
        )],
    },
    Builtin {
        name: "uk_nino",
        patterns: &[p(
            r"\b[A-Z]{2}(?:[0-9]{6}|(?: [0-9]{2}){3} )[A-D]\b",
            Kind::UkNino,
        )],
    },
    Builtin {
        name: "in_pan",
        patterns: &[p(
            r"\b[A-Z]{3}[PCHFATBLJG][A-Z][0-9]{4}[A-Z]\b",
            Kind::InPan,
        )],
    },
    Builtin {
        name: "eu_vat",
        // The member states whose numbers have a check (see checks::ids).
        patterns: &[p(
            r"\b(?:AT ?U[0-9]{8}|BE ?[01][0-9]{9}|(?:DE|EL|PT|EE) ?[0-9]{9}|(?:DK|FI|HU|LU|SI) ?[0-9]{8}|ES ?[0-9A-Z][0-9]{7}[0-9A-Z]|(?:FR|HR|IT) ?[0-9]{11}|NL ?[0-9]{9}B[0-9]{2}|PL ?[0-9]{10}|SE ?[0-9]{10}01)\b",
            Kind::EuVat,
        )],
    },
    Builtin {
        name: "crypto_wallet",
        // Base58Check (Bitcoin, Litecoin, Dogecoin) and bech32/bech32m segwit.
        patterns: &[p(
            r"\b(?:[13LMD][1-9A-HJ-NP-Za-km-z]{25,34}|(?:bc|tb|ltc)1[02-9ac-hj-np-z]{38,}|(?:BC|TB|LTC)1[02-9AC-HJ-NP-Z]{38,})\b",
            Kind::Wallet,
        )],
    },
    Builtin {
        name: "in_aadhaar",
        // In context only: `2345 6789 0124` is also a tracking number's shape.
        patterns: &[late(
            1,
            r"\b[2-9][0-9]{3}(?:[0-9]{8}| [0-9]{4} [0-9]{4}|-[0-9]{4}-[0-9]{4})\b",
            Kind::Aadhaar,
        )],
    },
    Builtin {
        name: "aba_routing",
        patterns: &[late(1, r"\b[0-9]{9}\b", Kind::Aba)],
    },
    Builtin {
        name: "ca_sin",
        patterns: &[late(
            1,
            r"\b[0-9]{3}(?:[0-9]{6}|-[0-9]{3}-[0-9]{3}| [0-9]{3} [0-9]{3})\b",
            Kind::CaSin,
        )],
    },
    Builtin {
        name: "us_passport",
        patterns: &[late(1, r"\b(?:[0-9]{9}|[A-Z][0-9]{8})\b", Kind::Passport)],
    },
    Builtin {
        name: "us_driver_license",
        patterns: &[late(
            1,
            r"\b(?:[A-Z][0-9]{3,14}|[A-Z]{2}[0-9]{5,9}|[0-9]{7,12})\b",
            Kind::DriverLicense,
        )],
    },
];

/// JSON keys and form field names whose whole value is a secret, by the
/// detector that claims it. Compared after lowercasing and dropping `_` and `-`.
pub(crate) const SECRET_KEYS: &[(&str, &[&str])] = &[
    (
        "aws_secret_key",
        &["awssecretaccesskey", "awssecretkey", "secretaccesskey"],
    ),
    (
        "credential",
        &[
            "password",
            "passwd",
            "pwd",
            "passphrase",
            "secret",
            "clientsecret",
            "apikey",
            "accesstoken",
            "refreshtoken",
            "authtoken",
            "idtoken",
            "authorization",
            "privatekey",
        ],
    ),
];

pub(crate) fn builtin_names() -> impl Iterator<Item = &'static str> {
    BUILTINS.iter().map(|b| b.name)
}
