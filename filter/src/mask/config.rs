//! The `masking` section of the policy: serde types and their compilation.
//!
//! ```json
//! "masking": {
//!   "hash_key": "at least 16 bytes of secret",
//!   "profiles": {
//!     "pii": {
//!       "detectors": ["email", "phone", "credit_card", "ssn", "iban"],
//!       "custom": [{ "name": "employee_id", "regex": "EMP-\\d{6}" }],
//!       "json_fields": ["password", "ssn"],
//!       "json_pointers": ["/customers/*/phone"],
//!       "strategies": { "default": "redact", "credit_card": { "partial": 4 }, "email": "hash" }
//!     }
//!   }
//! }
//! ```
//!
//! - `detectors`: `"all"` (the default when absent) or a list of built-in names.
//! - `custom[].name`: `[a-z0-9_]`, not a built-in name; `regex`: the `regex`
//!   crate's syntax, ASCII classes (`\d` is `[0-9]`), must not match "".
//! - `json_fields`: keys (any case) whose values are masked whole, in JSON
//!   and form bodies. `json_pointers`: RFC 6901 pointers, `*` for any one key
//!   or index. Both count and redact under their own text (`[REDACTED:ssn]`).
//! - `strategies`: keys are `default`, a detector of the profile, a
//!   `json_fields` or a `json_pointers` entry; values `"redact"`, `"hash"`
//!   (needs `hash_key`), `"tokenize"` (reversible: request profiles only,
//!   checked by the policy loader) or `{"partial": N}`. Unnamed ones use
//!   `default`, which is `redact` unless set.
//! - `context`: per detector with context-gated forms (`phone`,
//!   `aba_routing`, `ca_sin`, `in_aadhaar`, `us_passport`,
//!   `us_driver_license`), the words that must come shortly before an
//!   ambiguous value; replaces the built-in list, `[]` turns those forms off.

use std::collections::BTreeMap;

use serde::Deserialize;

use std::sync::Arc;

use super::checks::{context, Check, Kind};
use super::detectors::{builtin_names, BUILTINS, SECRET_KEYS};
use super::scan::{build_one, PatternInfo, Scanner};
use super::strategy::{HashKey, Strategy};
use super::{Label, Masker, Masking, Seg};
use crate::policy::PolicyError;

/// The `masking` section.
#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MaskingDoc {
    /// The HMAC key for the `hash` strategy.
    #[serde(default)]
    pub hash_key: Option<String>,
    #[serde(default)]
    pub profiles: BTreeMap<String, ProfileDoc>,
}

#[derive(Debug, Clone, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ProfileDoc {
    #[serde(default)]
    pub detectors: Option<DetectorsDoc>,
    #[serde(default)]
    pub custom: Vec<CustomDoc>,
    #[serde(default)]
    pub json_fields: Vec<String>,
    #[serde(default)]
    pub json_pointers: Vec<String>,
    #[serde(default)]
    pub strategies: BTreeMap<String, StrategyDoc>,
    /// Context words per detector (see the module docs).
    #[serde(default)]
    pub context: BTreeMap<String, Vec<String>>,
}

/// `"all"` or a list of names.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum DetectorsDoc {
    Word(String),
    List(Vec<String>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CustomDoc {
    pub name: String,
    pub regex: String,
}

/// `"redact"`, `"hash"` or `{"partial": N}`.
#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum StrategyDoc {
    Name(String),
    Partial(PartialDoc),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PartialDoc {
    pub partial: usize,
}

const MIN_HASH_KEY: usize = 16;

/// Compiles the `masking` section. Errors name the field as
/// `masking.profiles.pii.custom[0].regex`.
pub fn compile(doc: &MaskingDoc) -> Result<Masking, PolicyError> {
    let key = doc.hash_key.as_deref().unwrap_or("");
    if doc.hash_key.is_some() && key.len() < MIN_HASH_KEY {
        return Err(PolicyError::at(
            "masking.hash_key",
            format!("must be at least {MIN_HASH_KEY} bytes"),
        ));
    }
    let mut profiles = BTreeMap::new();
    for (name, p) in &doc.profiles {
        let path = format!("masking.profiles.{name}");
        profiles.insert(
            name.clone(),
            compile_profile(p, &path, doc.hash_key.as_deref())?,
        );
    }
    Ok(Masking {
        profiles,
        chains: BTreeMap::new(),
    })
}

fn compile_profile(doc: &ProfileDoc, path: &str, key: Option<&str>) -> Result<Masker, PolicyError> {
    // Built-ins, in priority order.
    let enabled: Vec<&'static str> = match &doc.detectors {
        None => builtin_names().collect(),
        Some(DetectorsDoc::Word(w)) if w == "all" => builtin_names().collect(),
        Some(DetectorsDoc::Word(w)) => {
            return Err(PolicyError::at(
                &format!("{path}.detectors"),
                format!("expected \"all\" or a list of detector names, got \"{w}\""),
            ))
        }
        Some(DetectorsDoc::List(names)) => {
            for (i, n) in names.iter().enumerate() {
                if !builtin_names().any(|b| b == n) {
                    return Err(PolicyError::at(
                        &format!("{path}.detectors[{i}]"),
                        format!(
                            "unknown detector \"{n}\"; built-in detectors: {}",
                            builtin_names().collect::<Vec<_>>().join(", ")
                        ),
                    ));
                }
            }
            builtin_names()
                .filter(|b| names.iter().any(|n| n == b))
                .collect()
        }
    };

    let mut labels: Vec<String> = Vec::new();
    let mut patterns: Vec<(String, PatternInfo)> = Vec::new();
    // Custom detectors first: at the same start, the operator's pattern wins.
    for (i, c) in doc.custom.iter().enumerate() {
        let at = format!("{path}.custom[{i}]");
        let name_ok = !c.name.is_empty()
            && c.name.len() <= 64
            && c.name
                .bytes()
                .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_');
        if !name_ok {
            return Err(PolicyError::at(
                &format!("{at}.name"),
                "must be 1-64 characters of a-z, 0-9 and _",
            ));
        }
        if builtin_names().any(|b| b == c.name) || labels.contains(&c.name) {
            return Err(PolicyError::at(
                &format!("{at}.name"),
                format!("\"{}\" is already a detector name", c.name),
            ));
        }
        let re = build_one(&c.regex)
            .map_err(|e| PolicyError::at(&format!("{at}.regex"), format!("invalid regex: {e}")))?;
        if re.is_match("") {
            return Err(PolicyError::at(
                &format!("{at}.regex"),
                "matches the empty string",
            ));
        }
        patterns.push((
            c.regex.clone(),
            PatternInfo {
                label: labels.len(),
                check: Check::new(Kind::None, None),
                value_group: false,
            },
        ));
        labels.push(c.name.clone());
    }
    let words = context_words(doc, path, &enabled)?;
    // Built-ins by tier (context-gated forms last), then in priority order.
    let mut builtin_patterns = Vec::new();
    for b in BUILTINS.iter().filter(|b| enabled.contains(&b.name)) {
        let label = labels.len();
        let ctx = words.get(b.name).cloned();
        // Context-gated patterns (tier > 0) with no words can never match.
        let no_words = ctx.as_ref().is_some_and(|w| w.is_empty());
        for p in b.patterns.iter().filter(|p| p.tier == 0 || !no_words) {
            builtin_patterns.push((p.tier, p, label, ctx.clone()));
        }
        labels.push(b.name.to_string());
    }
    builtin_patterns.sort_by_key(|(tier, ..)| *tier);
    for (_, p, label, ctx) in builtin_patterns {
        patterns.push((
            p.regex.to_string(),
            PatternInfo {
                label,
                check: Check::new(p.check, ctx),
                value_group: p.value_group,
            },
        ));
    }
    let scanner = Scanner::new(patterns)
        .map_err(|e| PolicyError::at(&format!("{path}.custom"), format!("invalid regex: {e}")))?;

    let secret_keys: Vec<(&'static str, usize)> = SECRET_KEYS
        .iter()
        .filter_map(|(det, keys)| {
            let label = labels.iter().position(|l| l == det)?;
            Some(keys.iter().map(move |k| (*k, label)))
        })
        .flatten()
        .collect();

    let mut fields = Vec::new();
    for (i, f) in doc.json_fields.iter().enumerate() {
        if f.is_empty() {
            return Err(PolicyError::at(
                &format!("{path}.json_fields[{i}]"),
                "must not be empty",
            ));
        }
        fields.push((f.clone(), labels.len()));
        labels.push(f.clone());
    }
    let mut pointers = Vec::new();
    for (i, p) in doc.json_pointers.iter().enumerate() {
        let segs = parse_pointer(p)
            .map_err(|e| PolicyError::at(&format!("{path}.json_pointers[{i}]"), e))?;
        pointers.push((segs, labels.len()));
        labels.push(p.clone());
    }

    let mut default = Strategy::Redact;
    // The first `strategies` key that tokenizes (for the loader's message).
    let mut tokenize_key: Option<String> = None;
    let mut chosen: Vec<Option<Strategy>> = vec![None; labels.len()];
    for (name, s) in &doc.strategies {
        let at = format!("{path}.strategies.{name}");
        let strategy = match s {
            StrategyDoc::Name(n) if n == "redact" => Strategy::Redact,
            StrategyDoc::Name(n) if n == "hash" => Strategy::Hash,
            StrategyDoc::Name(n) if n == "tokenize" => Strategy::Tokenize,
            StrategyDoc::Name(n) => {
                return Err(PolicyError::at(
                    &at,
                    format!(
                    "unknown strategy \"{n}\"; expected \"redact\", \"hash\", \"tokenize\" or {{\"partial\": N}}"
                ),
                ))
            }
            StrategyDoc::Partial(p) => Strategy::Partial(p.partial),
        };
        if strategy == Strategy::Hash && key.is_none() {
            return Err(PolicyError::at(
                &at,
                "the hash strategy needs masking.hash_key",
            ));
        }
        if strategy == Strategy::Tokenize && tokenize_key.is_none() {
            tokenize_key = Some(name.clone());
        }
        if name == "default" {
            default = strategy;
            continue;
        }
        // A field and a detector may share a name ("ssn"): the entry sets both.
        let mut found = false;
        for (l, slot) in labels.iter().zip(chosen.iter_mut()) {
            if l.eq_ignore_ascii_case(name) {
                *slot = Some(strategy);
                found = true;
            }
        }
        if !found {
            return Err(PolicyError::at(
                &at,
                format!(
                    "\"{name}\" is not a detector, json_fields or json_pointers entry of this profile"
                ),
            ));
        }
    }

    let hash_key = HashKey::new(key.unwrap_or("").as_bytes())
        .map_err(|e| PolicyError::at("masking.hash_key", e))?;
    Ok(Masker {
        scanner,
        labels: labels
            .into_iter()
            .zip(chosen)
            .map(|(name, s)| Label {
                name,
                strategy: s.unwrap_or(default),
            })
            .collect(),
        fields,
        pointers,
        secret_shapes: super::secret_shapes(&secret_keys),
        secret_keys,
        hash_key,
        tokenize_key,
        later: Vec::new(),
    })
}

/// One detector's context words, lowercase, shared by its patterns' checks.
type Words = Arc<[Box<str>]>;

/// The context words of each enabled detector that has context-gated forms:
/// the profile's list (lowercased) or the built-in one.
fn context_words(
    doc: &ProfileDoc,
    path: &str,
    enabled: &[&'static str],
) -> Result<BTreeMap<&'static str, Words>, PolicyError> {
    for (name, list) in &doc.context {
        let at = format!("{path}.context.{name}");
        if !context::DETECTORS.contains(&name.as_str()) {
            return Err(PolicyError::at(
                &at,
                format!(
                    "\"{name}\" has no context-gated forms; detectors that do: {}",
                    context::DETECTORS.join(", ")
                ),
            ));
        }
        if !enabled.contains(&name.as_str()) {
            return Err(PolicyError::at(
                &at,
                format!("\"{name}\" is not a detector of this profile"),
            ));
        }
        if let Some(i) = list.iter().position(|w| w.trim().is_empty()) {
            return Err(PolicyError::at(&format!("{at}[{i}]"), "must not be empty"));
        }
    }
    let mut words: BTreeMap<&'static str, Words> = context::DETECTORS
        .iter()
        .filter(|d| enabled.contains(d))
        .map(|&d| {
            let list: Vec<Box<str>> = match doc.context.get(d) {
                Some(custom) => custom
                    .iter()
                    .map(|w| w.trim().to_lowercase().into())
                    .collect(),
                None => context::default_words(d)
                    .iter()
                    .map(|&w| w.into())
                    .collect(),
            };
            (d, Arc::from(list))
        })
        .collect();
    // A 12-digit Maestro number can also be a valid Aadhaar: after an Aadhaar
    // word, the card check leaves it to `in_aadhaar`.
    if let Some(aadhaar) = words.get("in_aadhaar").cloned() {
        words.insert("credit_card", aadhaar);
    }
    Ok(words)
}

/// RFC 6901, plus `*` for any one key or array index.
pub(crate) fn parse_pointer(p: &str) -> Result<Vec<Seg>, String> {
    if p.is_empty() {
        return Ok(Vec::new());
    }
    let Some(rest) = p.strip_prefix('/') else {
        return Err(format!(
            "\"{p}\" is not a JSON pointer: it must start with /"
        ));
    };
    Ok(rest
        .split('/')
        .map(|t| {
            if t == "*" {
                Seg::Any
            } else {
                let t = t.replace("~1", "/").replace("~0", "~");
                let index = t
                    .parse()
                    .ok()
                    .filter(|_| !(t.len() > 1 && t.starts_with('0')));
                Seg::Token(t, index)
            }
        })
        .collect())
}
