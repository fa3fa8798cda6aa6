//! Masking sensitive values in request and response bodies.
//!
//! The host compiles the policy's `masking` section once ([`compile`], the
//! shape is in [`config`]) and, per body, picks a profile and calls
//! [`Masker::mask`] with the body's content type and bytes:
//!
//! ```
//! use transit_guard::mask::{compile, BodyKind, MaskingDoc};
//! let doc: MaskingDoc = serde_json::from_str(r#"{"profiles":{"pii":{}}}"#).unwrap();
//! let masking = compile(&doc).unwrap();
//! let out = masking.profile("pii").unwrap()
//!     .mask(Some("application/json"), br#"{"email":"alice@example.com"}"#);
//! assert_eq!(out.kind, BodyKind::Json);
//! assert_eq!(out.body.as_deref(), Some(&br#"{"email":"[REDACTED:email]"}"#[..]));
//! assert_eq!(out.counts.get("email"), Some(&1));
//! ```
//!
//! How a body is read, by content type (parameters and case ignored):
//! - `application/json`, `*/*+json`: JSON ([`json`]); if it does not parse,
//!   the whole body is scanned as text ([`BodyKind::InvalidJson`]).
//! - `application/x-www-form-urlencoded`: form pairs ([`text`]).
//! - `text/*`, XML, JavaScript, YAML, NDJSON,
//!   GraphQL, `multipart/form-data`, and a missing content type: text.
//! - anything else (images, `application/octet-stream`, ...): passed through
//!   unscanned, reported as [`BodyKind::Passthrough`] for the audit record.
//!
//! The host must decompress first: compressed bytes are not text.
//!
//! Scanning ([`scan`]) is one multi-pattern regex pass, then per-candidate
//! checks ([`checks`]: Luhn, mod-97, SSN ranges, ...). Detectors are listed
//! in [`detectors`]; replacements in [`strategy`]. A body passed on in
//! chunks goes through [`Masker::stream`] instead; SSE responses through
//! [`crate::sse`], which reassembles each OpenAI output's text across
//! events. OpenAI requests are masked only in their texts ([`openai`]).
//!
//! Built-in detectors, in priority order: `private_key`, `jwt`,
//! `aws_access_key`, `aws_secret_key` (in context: `aws_secret_access_key=`
//! or such a JSON key), `github_token`, `anthropic_key`, `openai_key`,
//! `slack_token`, `stripe_key`, `google_api_key`, `credential` (`password=`,
//! `Bearer ...`, and JSON/form keys such as `password`, `client_secret`),
//! `email`, `iban`, `credit_card`, `ssn`, `phone`, `ipv6`, `ipv4`,
//! `uk_nino`, `in_pan`, `eu_vat`, `crypto_wallet`; then the context-gated
//! forms (a context word must come shortly before them: `checks::context`):
//! `in_aadhaar`, `aba_routing`, `ca_sin`, `us_passport`,
//! `us_driver_license`, and last any other phone-shaped number.
//!
//! Known limits: JSON keys are never masked (masking could merge keys); a
//! password in prose ("my password is x") is not found; emails are ASCII
//! (no internationalized domains); a value split across SSE events inside
//! JSON of an unknown (not OpenAI) shape is not reassembled; the AWS documentation key `AKIAIOSFODNN7EXAMPLE`
//! is masked like any access key id (telling examples apart would need a
//! list of them, and masking one costs nothing).

pub mod apply;
pub mod config;
pub mod openai;
pub mod strategy;
pub mod stream;
pub mod tokens;

mod chain;
mod checks;
mod detectors;
mod json;
mod scan;
mod text;

use std::collections::BTreeMap;

pub use config::{compile, MaskingDoc};
pub use strategy::Strategy;
pub use stream::{StreamMasker, StreamState, DEFAULT_WINDOW};
pub use tokens::{RestoreStream, Tokens};

use crate::body::json::Doc;
use crate::body::Reading;
use json::{pointer_matches, Step};
use scan::{Hit, Scanner};

/// The compiled `masking` section: profiles by name, and the lists of
/// profiles rules name compiled into one masker each ([`chain`]).
#[derive(Debug, Clone, Default)]
pub struct Masking {
    profiles: BTreeMap<String, Masker>,
    chains: BTreeMap<Vec<String>, Masker>,
}

impl Masking {
    pub fn profile(&self, name: &str) -> Option<&Masker> {
        self.profiles.get(name)
    }

    /// Compiles a rule's list of profiles into one masker, once per
    /// distinct list, if the list allows it ([`chain`]). For the policy
    /// loader; an unknown name leaves the list to the in-order path.
    pub fn add_chain(&mut self, names: &[String]) {
        if names.len() < 2 || self.chains.contains_key(names) {
            return;
        }
        let profiles: Option<Vec<&Masker>> = names.iter().map(|n| self.profile(n)).collect();
        if let Some(chain) = profiles.and_then(|p| chain::compile(&p)) {
            self.chains.insert(names.to_vec(), chain);
        }
    }

    /// The list `names` compiled into one masker, if it was.
    pub(crate) fn chain(&self, names: &[String]) -> Option<&Masker> {
        self.chains.get(names)
    }

    pub fn profile_names(&self) -> impl Iterator<Item = &str> {
        self.profiles.keys().map(String::as_str)
    }
}

/// How a body was read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyKind {
    Json,
    /// Declared JSON that does not parse: scanned as text.
    InvalidJson,
    Text,
    Form,
    /// A content type that is not scanned (binary): passed on unchanged.
    Passthrough,
}

impl BodyKind {
    /// The kind a content type is read as.
    pub fn of(content_type: Option<&str>) -> BodyKind {
        let Some(ct) = content_type else {
            return BodyKind::Text;
        };
        let (top, sub) = crate::headers::media_type(ct);
        match (top.as_str(), sub.as_str()) {
            ("application", "json") => BodyKind::Json,
            (_, s) if s.ends_with("+json") => BodyKind::Json,
            ("application", "x-www-form-urlencoded") => BodyKind::Form,
            ("text", _) | ("multipart", "form-data") => BodyKind::Text,
            ("application", s) if crate::headers::is_textual_application(s) => BodyKind::Text,
            _ => BodyKind::Passthrough,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            BodyKind::Json => "json",
            BodyKind::InvalidJson => "invalid_json",
            BodyKind::Text => "text",
            BodyKind::Form => "form",
            BodyKind::Passthrough => "passthrough",
        }
    }
}

/// What [`Masker::mask`] did to one body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MaskOutcome {
    /// The masked body; `None` when it is unchanged (nothing found, or passthrough).
    pub body: Option<Vec<u8>>,
    /// Masked values by detector name, `json_fields` entry or `json_pointers`
    /// entry. Never the values themselves.
    pub counts: BTreeMap<String, u32>,
    /// The part of `counts` masked with `tokenize` (restored in the response).
    pub tokenized: BTreeMap<String, u32>,
    pub kind: BodyKind,
    /// A chain's profiles touched the same value: mask them in order
    /// instead ([`chain`]). Always false for one profile.
    pub(crate) conflict: bool,
}

impl MaskOutcome {
    /// How many values were masked in all.
    pub fn total(&self) -> u32 {
        self.counts.values().sum()
    }
}

/// What masking one body counts (per label), and the exchange's token map
/// the `tokenize` strategy adds to.
#[derive(Debug, Default)]
pub(crate) struct Tally {
    pub(crate) counts: Vec<u32>,
    pub(crate) tokens: Tokens,
    /// A chain's later profile would have read an earlier one's
    /// replacement: the result must be discarded ([`chain`]).
    pub(crate) conflict: bool,
}

impl Tally {
    pub(crate) fn new(m: &Masker, tokens: Tokens) -> Tally {
        Tally {
            counts: vec![0; m.labels.len()],
            tokens,
            conflict: false,
        }
    }
}

/// What values are masked under: a detector, a field or a pointer.
#[derive(Debug, Clone)]
pub(crate) struct Label {
    name: String,
    strategy: Strategy,
}

/// A compiled `json_pointers` segment: `*`, or a key (and the index it names, if numeric).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Seg {
    Any,
    Token(String, Option<usize>),
}

/// One compiled masking profile.
#[derive(Debug, Clone)]
pub struct Masker {
    scanner: Scanner,
    /// Detectors first (custom, then built-in), then fields, then pointers.
    labels: Vec<Label>,
    /// `json_fields` entries (matched in any ASCII case) and their label.
    fields: Vec<(String, usize)>,
    pointers: Vec<(Vec<Seg>, usize)>,
    /// Normalized secret key names (`awssecretaccesskey`) and their detector.
    secret_keys: Vec<(&'static str, usize)>,
    /// By first letter (`a`..`z`), the lengths of `secret_keys`, one bit each.
    secret_shapes: [u64; 26],
    hash_key: strategy::HashKey,
    /// The `strategies` key that set `tokenize`, if any (`email`, `default`).
    tokenize_key: Option<String>,
    /// A chain's later profiles (see [`chain`]); empty for one profile.
    later: Vec<chain::Later>,
}

impl Masker {
    /// Masks one whole body. Never panics, whatever the bytes. `tokenize`
    /// numbers its tokens for this body alone.
    pub fn mask(&self, content_type: Option<&str>, body: &[u8]) -> MaskOutcome {
        self.mask_with(content_type, body, &mut Tokens::default())
    }

    /// As [`Masker::mask`], with `tokenize` adding to the exchange's `tokens`.
    pub fn mask_with(
        &self,
        content_type: Option<&str>,
        body: &[u8],
        tokens: &mut Tokens,
    ) -> MaskOutcome {
        self.mask_read(content_type, body, None, tokens)
    }

    /// [`Masker::mask_with`], rewriting from `reading`'s parse of `body` (the
    /// flow's, made by its readability check and read by rules) instead of
    /// parsing again. A reading of other bytes is not used.
    pub fn mask_read(
        &self,
        content_type: Option<&str>,
        body: &[u8],
        reading: Option<&Reading<'_>>,
        tokens: &mut Tokens,
    ) -> MaskOutcome {
        let mut tally = Tally::new(self, std::mem::take(tokens));
        let out = self.mask_tally(content_type, body, reading, &mut tally);
        *tokens = tally.tokens;
        out
    }

    fn mask_tally(
        &self,
        content_type: Option<&str>,
        body: &[u8],
        reading: Option<&Reading<'_>>,
        counts: &mut Tally,
    ) -> MaskOutcome {
        let doc = |src: &[u8]| reading.and_then(|r| r.doc_of(src));
        let mut kind = BodyKind::of(content_type);
        let masked = match kind {
            _ if body.is_empty() => None,
            BodyKind::Passthrough => None,
            BodyKind::Json | BodyKind::InvalidJson => {
                let mut hits = Vec::new();
                self.scan(body, &mut hits, counts);
                match json::mask(self, body, doc(body), &hits, counts) {
                    Ok(m) => m,
                    Err(_) => {
                        kind = BodyKind::InvalidJson;
                        // Whatever the walk counted before failing is
                        // discarded (tokens it issued stay unused).
                        counts.counts.iter_mut().for_each(|c| *c = 0);
                        (!hits.is_empty()).then(|| self.render(body, &hits, counts))
                    }
                }
            }
            // Text that is JSON (or JSON lines) is masked as JSON: an
            // upstream that parses it anyway decodes its escapes.
            BodyKind::Text => self.mask_text_or_json(body, reading, counts),
            BodyKind::Form => self.mask_form_or_json(body, doc(body), counts),
        };
        self.outcome(masked, counts, kind)
    }

    fn outcome(&self, body: Option<Vec<u8>>, tally: &Tally, kind: BodyKind) -> MaskOutcome {
        let counts = &tally.counts;
        let tokenized: Vec<u32> = self
            .labels
            .iter()
            .zip(counts)
            .map(|(l, &n)| {
                if l.strategy == Strategy::Tokenize {
                    n
                } else {
                    0
                }
            })
            .collect();
        MaskOutcome {
            body,
            counts: self.named_counts(counts),
            tokenized: self.named_counts(&tokenized),
            kind,
            conflict: tally.conflict,
        }
    }

    /// The `strategies` key that makes this profile tokenize (`email`,
    /// `default`), if one does: for the loader, which allows such profiles
    /// on requests only.
    pub fn tokenizes(&self) -> Option<&str> {
        self.tokenize_key.as_deref()
    }

    /// A form, and first as JSON if it reads as JSON (an upstream that
    /// sniffs the body parses it so): both readings are masked.
    fn mask_form_or_json<'a>(
        &self,
        body: &'a [u8],
        doc: Option<&Doc<'a>>,
        counts: &mut Tally,
    ) -> Option<Vec<u8>> {
        let mut as_json = None;
        if crate::body::looks_like_json(body) {
            let mut hits = Vec::new();
            self.scan(body, &mut hits, counts);
            as_json = json::mask(self, body, doc, &hits, counts).ok().flatten();
        }
        let current = as_json.as_deref().unwrap_or(body);
        text::mask_form(self, current, counts).or(as_json)
    }

    /// Text, where the whole body or each of its lines that reads as JSON
    /// is masked as JSON (so `alice\u0040example.com` is found), then the
    /// whole scanned as text (values spanning lines, a PEM key, included).
    fn mask_text_or_json(
        &self,
        body: &[u8],
        reading: Option<&Reading<'_>>,
        counts: &mut Tally,
    ) -> Option<Vec<u8>> {
        use crate::body::{is_line_end, looks_like_json};
        let doc = |src: &[u8]| reading.and_then(|r| r.doc_of(src));
        let mut hits = Vec::new();
        if looks_like_json(body) {
            self.scan(body, &mut hits, counts);
            if let Ok(m) = json::mask(self, body, doc(body), &hits, counts) {
                return m;
            }
        }
        if !body.split(|&b| is_line_end(b)).any(looks_like_json) {
            return text::mask_text(self, body, counts);
        }
        let mut lines = Vec::with_capacity(body.len());
        let mut changed = false;
        // Each line with its own end, so the body keeps its bytes.
        for piece in body.split_inclusive(|&b| is_line_end(b)) {
            let line = match piece.split_last() {
                Some((&end, line)) if is_line_end(end) => line,
                _ => piece,
            };
            let end = piece.get(line.len()..).unwrap_or_default();
            let masked = if looks_like_json(line) {
                hits.clear();
                self.scan(line, &mut hits, counts);
                json::mask(self, line, doc(line), &hits, counts)
                    .ok()
                    .flatten()
            } else {
                None
            };
            changed |= masked.is_some();
            lines.extend_from_slice(masked.as_deref().unwrap_or(line));
            lines.extend_from_slice(end);
        }
        match text::mask_text(self, &lines, counts) {
            Some(m) => Some(m),
            None => changed.then_some(lines),
        }
    }

    /// A masker for a body passed on in chunks (see [`stream`]).
    #[cfg(test)]
    pub fn stream(&self, window: usize) -> StreamMasker<'_> {
        StreamMasker::new(self, window)
    }

    fn named_counts(&self, counts: &[u32]) -> BTreeMap<String, u32> {
        let mut by_name = BTreeMap::new();
        for (label, &n) in self.labels.iter().zip(counts) {
            if n > 0 {
                *by_name.entry(label.name.clone()).or_insert(0) += n;
            }
        }
        by_name
    }

    /// Masks plain text (a header value, a log line): `None` if unchanged.
    pub fn mask_text(&self, text: &str) -> (Option<String>, BTreeMap<String, u32>) {
        let out = self.mask(Some("text/plain"), text.as_bytes());
        let masked = out.body.map(|b| String::from_utf8_lossy(&b).into_owned());
        (masked, out.counts)
    }

    /// The names of the detectors this profile runs, in priority order.
    pub fn detector_names(&self) -> impl Iterator<Item = &str> {
        let n = self.labels.len() - self.fields.len() - self.pointers.len();
        self.labels.iter().take(n).map(|l| l.name.as_str())
    }

    /// `value` masked whole under `label`.
    fn whole(&self, label: usize, value: &[u8], counts: &mut Tally) -> Vec<u8> {
        let mut out = String::new();
        self.whole_into(label, value, counts, &mut out);
        out.into_bytes()
    }

    /// [`Masker::whole`], appended to `out` (no allocation of its own).
    fn whole_into(&self, label: usize, value: &[u8], counts: &mut Tally, out: &mut String) {
        if let (Some(l), Some(c)) = (self.labels.get(label), counts.counts.get_mut(label)) {
            *c += 1;
            let tokens = &mut counts.tokens;
            l.strategy
                .apply(&l.name, value, &self.hash_key, tokens, out);
        } else {
            out.push_str("[REDACTED]");
        }
    }

    /// `hay` with every hit replaced.
    fn render(&self, hay: &[u8], hits: &[Hit], counts: &mut Tally) -> Vec<u8> {
        let mut out = Vec::with_capacity(hay.len());
        let mut copied = 0;
        for h in hits {
            out.extend_from_slice(hay.get(copied..h.start).unwrap_or_default());
            out.extend(self.whole(h.label, hay.get(h.start..h.end).unwrap_or_default(), counts));
            copied = h.end;
        }
        out.extend_from_slice(hay.get(copied..).unwrap_or_default());
        out
    }

    /// The label masking a value under `key` (its decoded bytes) whole: a
    /// `json_fields` entry, else a secret key.
    fn key_label(&self, key: &[u8]) -> Option<usize> {
        if let Some((_, l)) = self
            .fields
            .iter()
            .find(|(f, _)| f.as_bytes().eq_ignore_ascii_case(key))
        {
            return Some(*l);
        }
        // Most keys are not secret names: rule them out by first letter and
        // length before comparing (this runs for every key of every object).
        let mut norm = key.iter().filter(|b| **b != b'_' && **b != b'-');
        let first = *norm.next()?;
        let len = 1 + norm.count();
        if self
            .secret_shapes
            .get(usize::from(first.to_ascii_lowercase().wrapping_sub(b'a')))
            .is_none_or(|lens| len >= 64 || lens & (1 << len) == 0)
        {
            return None;
        }
        self.secret_keys
            .iter()
            .find(|(k, _)| secret_key_eq(key, k))
            .map(|(_, l)| *l)
    }

    /// Appends the values of `hay` to `hits`, in order, never overlapping:
    /// this profile's, or a chain's (see [`chain`]).
    fn scan(&self, hay: &[u8], hits: &mut Vec<Hit>, counts: &mut Tally) {
        chain::scan(self, hay, hits, counts);
    }

    fn has_pointers(&self) -> bool {
        !self.pointers.is_empty()
    }

    fn pointer_label(&self, path: &[Step<'_>]) -> Option<usize> {
        self.pointers
            .iter()
            .find(|(p, _)| pointer_matches(p, path))
            .map(|(_, l)| *l)
    }
}

/// The `secret_shapes` filter for normalized secret key names.
fn secret_shapes(keys: &[(&'static str, usize)]) -> [u64; 26] {
    let mut shapes = [0u64; 26];
    for (k, _) in keys {
        let slot = k
            .bytes()
            .next()
            .and_then(|b| shapes.get_mut(usize::from(b.wrapping_sub(b'a'))));
        if let Some(bits) = slot {
            *bits |= 1 << k.len().min(63);
        }
    }
    shapes
}

/// `key` equals the normalized name `norm` once lowercased without `_` and `-`.
fn secret_key_eq(key: &[u8], norm: &str) -> bool {
    let mut k = key.iter().copied().filter(|b| *b != b'_' && *b != b'-');
    let mut n = norm.bytes();
    loop {
        match (k.next(), n.next()) {
            (None, None) => return true,
            (Some(a), Some(b)) if a.to_ascii_lowercase() == b => {}
            _ => return false,
        }
    }
}

#[cfg(test)]
mod tests;
