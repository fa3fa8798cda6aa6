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
//! the broad ones (Anthropic before OpenAI, JWT before bearer).

use super::checks::Check;

/// One pattern of a detector.
pub(crate) struct Pattern {
    pub regex: &'static str,
    pub check: Check,
    /// The secret is capture group 1 (`password=<secret>`), not the whole match.
    pub value_group: bool,
}

pub(crate) struct Builtin {
    pub name: &'static str,
    pub patterns: &'static [Pattern],
}

const fn p(regex: &'static str, check: Check) -> Pattern {
    Pattern {
        regex,
        check,
        value_group: false,
    }
}

const fn v(regex: &'static str, check: Check) -> Pattern {
    Pattern {
        regex,
        check,
        value_group: true,
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
            Check::None,
        )],
    },
    Builtin {
        name: "jwt",
        patterns: &[p(
            r"\beyJ[A-Za-z0-9_-]{8,}\.eyJ[A-Za-z0-9_-]{8,}\.[A-Za-z0-9_-]*",
            Check::Jwt,
        )],
    },
    Builtin {
        name: "aws_access_key",
        patterns: &[p(
            r"\b(?:AKIA|ASIA|ABIA|ACCA|AGPA|AIDA|AIPA|ANPA|ANVA|AROA|APKA|ASCA)[A-Z0-9]{16}\b",
            Check::None,
        )],
    },
    Builtin {
        name: "aws_secret_key",
        // 40 base64 characters carry no signature of their own: only in context.
        patterns: &[v(
            r#"(?i)aws_?secret_?(?:access_?)?key["']?\s{0,4}[:=]\s{0,4}["']?([A-Za-z0-9/+]{40})"#,
            Check::Base64End,
        )],
    },
    Builtin {
        name: "github_token",
        patterns: &[p(
            r"\b(?:gh[pousr]_[A-Za-z0-9]{36,}|github_pat_[A-Za-z0-9_]{22,})",
            Check::TokenEnd,
        )],
    },
    Builtin {
        name: "anthropic_key",
        patterns: &[p(r"\bsk-ant-[A-Za-z0-9_-]{20,}", Check::TokenEnd)],
    },
    Builtin {
        name: "openai_key",
        patterns: &[p(
            r"\bsk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_-]{20,}",
            Check::TokenWithDigit,
        )],
    },
    Builtin {
        name: "slack_token",
        patterns: &[
            p(r"\bxox[abposre]-[A-Za-z0-9-]{10,}", Check::TokenEnd),
            p(r"\bxapp-[0-9]-[A-Za-z0-9-]{10,}", Check::TokenEnd),
            p(
                r"https://hooks\.slack\.com/(?:services|workflows)/[A-Za-z0-9_/]{8,}",
                Check::None,
            ),
        ],
    },
    Builtin {
        name: "stripe_key",
        patterns: &[p(
            r"\b(?:(?:sk|rk)_(?:live|test)_[A-Za-z0-9]{16,}|whsec_[A-Za-z0-9]{24,})",
            Check::TokenEnd,
        )],
    },
    Builtin {
        name: "google_api_key",
        patterns: &[p(r"\bAIza[0-9A-Za-z_-]{35}", Check::TokenEnd)],
    },
    Builtin {
        name: "credential",
        patterns: &[
            v(
                r#"(?i)\b(?:password|passwd|pwd|passphrase|secret|client_secret|api[_-]?key|access[_-]?token|refresh[_-]?token|auth[_-]?token)["']?\s{0,3}[:=]\s{0,3}["']?([^\s"'&,;<>]+)"#,
                Check::Credential,
            ),
            v(
                r"(?i)\b(?:bearer|basic|token)\s+([A-Za-z0-9._~+/-]+=*)",
                Check::Bearer,
            ),
        ],
    },
    Builtin {
        name: "email",
        patterns: &[p(
            r"[A-Za-z0-9._%+-]{1,64}@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+",
            Check::Email,
        )],
    },
    Builtin {
        name: "iban",
        patterns: &[p(
            r"\b[A-Z]{2}[0-9]{2}(?: ?[A-Za-z0-9]){11,32}",
            Check::Iban,
        )],
    },
    Builtin {
        name: "credit_card",
        patterns: &[p(
            r"\b(?:[0-9]{13,19}|[0-9]{4}(?:[ -][0-9]{4}){2,3}(?:[ -][0-9]{1,4})?|[0-9]{4}[ -][0-9]{6}[ -][0-9]{4,5})\b",
            Check::Card,
        )],
    },
    Builtin {
        name: "ssn",
        patterns: &[p(r"\b[0-9]{3}[- ][0-9]{2}[- ][0-9]{4}\b", Check::Ssn)],
    },
    Builtin {
        name: "phone",
        patterns: &[
            // E.164 and international formats: +CC then 6-14 more digits,
            // up to two separators (space . - ( )) between digits.
            p(r"\+[1-9](?:[ .()-]{0,2}[0-9]){6,14}", Check::Phone),
            // North American: (415) 555-2671, 415-555-2671, 1 415.555.2671.
            p(
                r"(?:\b1[ .-]?)?(?:\([2-9][0-9]{2}\) ?|\b[2-9][0-9]{2}[ .-])[2-9][0-9]{2}[ .-][0-9]{4}\b",
                Check::Phone,
            ),
            // National with a trunk 0: 020 7946 0958, 030 1234 5678, 06 12 34 56 78.
            p(
                r"\b(?:0[1-9][0-9]{1,3}[ -][0-9]{3,4}[ -]?[0-9]{3,4}|0[1-9](?:[ .][0-9]{2}){4})\b",
                Check::Phone,
            ),
        ],
    },
    Builtin {
        name: "ipv6",
        patterns: &[p(
            r"(?:(?:[0-9A-Fa-f]{1,4}:){7}[0-9A-Fa-f]{1,4}|(?:[0-9A-Fa-f]{1,4}:){1,6}:|::)(?:[0-9A-Fa-f]{1,4}:){0,5}(?:[0-9]{1,3}(?:\.[0-9]{1,3}){3}|[0-9A-Fa-f]{1,4})?",
            Check::Ipv6,
        )],
    },
    Builtin {
        name: "ipv4",
        patterns: &[p(
            r"\b(?:(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\.){3}(?:25[0-5]|2[0-4][0-9]|1[0-9]{2}|[1-9]?[0-9])\b",
            Check::Ipv4,
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
