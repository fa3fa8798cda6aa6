//! Reversible masking (`"tokenize"`): the exchange's token map, and putting
//! the values back into the response.
//!
//! On the request, each value a `tokenize` strategy masks becomes
//! `<DETECTOR_N>`: the label upper-cased (`email` -> `EMAIL`, a field or
//! pointer with other characters as `_`) and the order of first appearance
//! in the exchange, counted over every detector (`<EMAIL_1>`, `<PHONE_2>`).
//! An equal value gets the same token again, so the model can still tell
//! two customers apart.
//!
//! Text of token shape already in the request (`<EMAIL_1>` typed by the
//! user, or JSON-escaped as `\u003cEMAIL_1\u003e`) is reserved before
//! masking ([`Tokens::reserve`]): no token is issued with that text, so it
//! is never restored, and restoring only ever produces values this request
//! carried. There is no random infix: the map belongs to one request, so a
//! token guessed from another exchange resolves, at worst, to a value of the
//! same request, and the fixed shape keeps the model's view readable.
//!
//! On the response, [`Tokens::restore`] replaces every token of the map in a
//! whole body (inside JSON strings decoded, the value re-escaped; a string
//! that itself holds JSON, like tool-call `arguments`, is restored as JSON),
//! and [`RestoreStream`] does the same for one streamed text, holding back
//! only a possible token prefix. Unknown token-shaped text is left alone.
//!
//! The map lives in the request's flow only: never in logs, the audit record
//! (counts only), metrics or shared data. Its `Debug` shows no value.

use std::collections::{BTreeMap, BTreeSet};

use crate::body::json::{decode, escape_into, quote, Doc, Kind, MAX_DEPTH_CEILING};
use crate::body::looks_like_json;

use super::BodyKind;

/// The longest token shape read (`<` name `_` digits `>`): longer text of
/// that shape is not a token.
const MAX_TOKEN: usize = 96;

/// How deep a string holding JSON is restored as JSON (tool arguments in a
/// message: two levels).
const MAX_NESTING: usize = 4;

/// One exchange's tokens: token -> value, value -> token.
#[derive(Clone, Default)]
pub struct Tokens {
    /// Token text -> (its label, the value).
    values: BTreeMap<String, (String, Vec<u8>)>,
    by_value: BTreeMap<Vec<u8>, String>,
    /// Token-shaped text the request already had: never issued.
    reserved: BTreeSet<String>,
    /// The last number issued.
    issued: u32,
}

impl std::fmt::Debug for Tokens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // Never the values (a Flow may be logged with `{:?}`).
        f.debug_struct("Tokens")
            .field("issued", &self.values.len())
            .finish()
    }
}

/// Restored values by label (counts only).
pub type Restored = BTreeMap<String, u32>;

impl Tokens {
    /// No token was issued: the response needs no restoring.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// The token for `value`, found under `label`: the one it already has,
    /// else the next free number.
    pub(crate) fn token(&mut self, label: &str, value: &[u8]) -> String {
        if let Some(t) = self.by_value.get(value) {
            return t.clone();
        }
        let name = token_name(label);
        let token = loop {
            self.issued = self.issued.saturating_add(1);
            let t = format!("<{name}_{}>", self.issued);
            if !self.reserved.contains(&t) || self.issued == u32::MAX {
                break t;
            }
        };
        self.by_value.insert(value.to_vec(), token.clone());
        self.values
            .insert(token.clone(), (label.to_string(), value.to_vec()));
        token
    }

    /// Reserves every token-shaped text in a request body: as written, and
    /// inside JSON strings as decoded (`\u003cEMAIL_1\u003e`).
    pub fn reserve(&mut self, body: &[u8]) {
        self.reserve_in(body);
        if !looks_like_json(body) {
            return;
        }
        let Ok(doc) = Doc::parse(body, MAX_DEPTH_CEILING) else {
            return;
        };
        for t in doc
            .tokens
            .iter()
            .filter(|t| t.escaped && matches!(t.kind, Kind::String | Kind::Key))
        {
            self.reserve_in(doc.text(t).as_bytes());
        }
    }

    fn reserve_in(&mut self, text: &[u8]) {
        let mut i = 0;
        while let Some(p) = memchr(b'<', text, i) {
            match token_at(text, p) {
                Some(end) => {
                    let shape = String::from_utf8_lossy(text.get(p..end).unwrap_or_default());
                    self.reserved.insert(shape.into_owned());
                    i = end;
                }
                None => i = p + 1,
            }
        }
    }

    /// A whole response body with every token of the map replaced by its
    /// value (`None` if unchanged), read by content type as the masker reads
    /// it: JSON strings decoded and re-escaped, text as bytes. Binary
    /// bodies are not read (`None`).
    pub fn restore(
        &self,
        content_type: Option<&str>,
        body: &[u8],
        restored: &mut Restored,
    ) -> Option<Vec<u8>> {
        if self.is_empty() || body.is_empty() {
            return None;
        }
        match BodyKind::of(content_type) {
            BodyKind::Passthrough => None,
            BodyKind::Json | BodyKind::InvalidJson => self
                .restore_json(body, restored, 0)
                .unwrap_or_else(|| self.restore_text(body, false, restored)),
            BodyKind::Text | BodyKind::Form if looks_like_json(body) => self
                .restore_json(body, restored, 0)
                .unwrap_or_else(|| self.restore_text(body, false, restored)),
            BodyKind::Text | BodyKind::Form => self.restore_text(body, false, restored),
        }
    }

    /// `text` with the map's tokens replaced; `json_escape`: the text is the
    /// inside of a JSON string, so values are escaped.
    pub(crate) fn restore_text(
        &self,
        text: &[u8],
        json_escape: bool,
        restored: &mut Restored,
    ) -> Option<Vec<u8>> {
        let mut out = Vec::new();
        let mut copied = 0;
        let mut i = 0;
        while let Some(p) = memchr(b'<', text, i) {
            let found = token_at(text, p).and_then(|end| {
                let t = std::str::from_utf8(text.get(p..end)?).ok()?;
                Some((end, self.values.get(t)?))
            });
            let Some((end, (label, value))) = found else {
                i = p + 1;
                continue;
            };
            out.extend_from_slice(text.get(copied..p).unwrap_or_default());
            if json_escape {
                escape_into(&String::from_utf8_lossy(value), &mut out);
            } else {
                out.extend_from_slice(value);
            }
            *restored.entry(label.clone()).or_insert(0) += 1;
            copied = end;
            i = end;
        }
        if copied == 0 {
            return None;
        }
        out.extend_from_slice(text.get(copied..).unwrap_or_default());
        Some(out)
    }

    /// A JSON document with the tokens in its string values restored:
    /// `Some(None)` unchanged, `None` not JSON. Keys are left alone (as
    /// masking leaves them: rewriting could merge keys).
    fn restore_json(
        &self,
        body: &[u8],
        restored: &mut Restored,
        depth: usize,
    ) -> Option<Option<Vec<u8>>> {
        let doc = Doc::parse(body, MAX_DEPTH_CEILING).ok()?;
        let mut out = Vec::new();
        let mut copied = 0;
        for t in doc.tokens.iter().filter(|t| t.kind == Kind::String) {
            let raw = doc.raw(t);
            // A token is `<...>`, written as is or escaped (`\u003c...`).
            if !t.escaped && !raw.contains(&b'<') {
                continue;
            }
            let text = decode(raw, t.escaped);
            let bytes = text.as_bytes();
            let new = if depth < MAX_NESTING && looks_like_json(bytes) {
                match self.restore_json(bytes, restored, depth + 1) {
                    Some(inner) => inner,
                    None => self.restore_text(bytes, false, restored),
                }
            } else {
                self.restore_text(bytes, false, restored)
            };
            let Some(new) = new else {
                continue;
            };
            // The token with its quotes.
            let (s, e) = (t.start.saturating_sub(1), t.end + 1);
            out.extend_from_slice(body.get(copied..s).unwrap_or_default());
            out.extend(quote(&String::from_utf8_lossy(&new)));
            copied = e;
        }
        if copied == 0 {
            return Some(None);
        }
        out.extend_from_slice(body.get(copied..).unwrap_or_default());
        Some(Some(out))
    }

    /// Whether `tail` (starting with `<`) is an unfinished start of one of
    /// the map's tokens.
    fn could_become_token(&self, tail: &[u8]) -> bool {
        if tail.contains(&b'>') {
            return false;
        }
        let Ok(tail) = std::str::from_utf8(tail) else {
            return false;
        };
        self.values
            .range::<str, _>((std::ops::Bound::Included(tail), std::ops::Bound::Unbounded))
            .next()
            .is_some_and(|(t, _)| t.starts_with(tail))
    }
}

/// One streamed text being restored: everything is passed on at once but a
/// tail that could still become one of the map's tokens (from its last `<`,
/// at most the longest token's length).
#[derive(Debug, Default)]
pub struct RestoreStream {
    held: Vec<u8>,
    /// The text is the inside of a JSON string (tool-call arguments).
    json_escape: bool,
    restored: Restored,
}

impl RestoreStream {
    pub fn new(json_escape: bool) -> RestoreStream {
        RestoreStream {
            json_escape,
            ..RestoreStream::default()
        }
    }

    /// Takes the next piece of text; returns what may be passed on now.
    pub fn push(&mut self, tokens: &Tokens, chunk: &[u8]) -> Vec<u8> {
        self.held.extend_from_slice(chunk);
        // A token holds no `<`: only the last one can start an open token.
        let cut = match self.held.iter().rposition(|&b| b == b'<') {
            Some(p) if tokens.could_become_token(self.held.get(p..).unwrap_or_default()) => p,
            _ => self.held.len(),
        };
        let rest = self.held.split_off(cut);
        let ready = std::mem::replace(&mut self.held, rest);
        self.restore(tokens, ready)
    }

    /// The end of the text: the rest.
    pub fn finish(&mut self, tokens: &Tokens) -> Vec<u8> {
        let ready = std::mem::take(&mut self.held);
        self.restore(tokens, ready)
    }

    fn restore(&mut self, tokens: &Tokens, ready: Vec<u8>) -> Vec<u8> {
        tokens
            .restore_text(&ready, self.json_escape, &mut self.restored)
            .unwrap_or(ready)
    }

    pub fn pending(&self) -> usize {
        self.held.len()
    }

    pub fn restored(&self) -> &Restored {
        &self.restored
    }
}

/// A label as a token's name: ASCII letters and digits upper-cased, runs of
/// anything else one `_` (`/customers/*/phone` -> `CUSTOMERS_PHONE`).
fn token_name(label: &str) -> String {
    let mut name = String::with_capacity(label.len());
    for c in label.chars() {
        if c.is_ascii_alphanumeric() {
            name.push(c.to_ascii_uppercase());
        } else if !name.is_empty() && !name.ends_with('_') {
            name.push('_');
        }
    }
    while name.ends_with('_') {
        name.pop();
    }
    if name.is_empty() {
        name.push_str("VALUE");
    }
    name
}

/// The end of the token shape `<NAME_N>` (`NAME`: `A-Z`, `0-9`, `_`; `N`:
/// digits) starting at `at`, if there is one.
fn token_at(text: &[u8], at: usize) -> Option<usize> {
    let rest = text.get(at..)?.strip_prefix(b"<")?;
    let len = rest
        .iter()
        .take(MAX_TOKEN)
        .position(|&b| !(b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_'))?;
    if rest.get(len) != Some(&b'>') {
        return None;
    }
    let inner = rest.get(..len)?;
    let us = inner.iter().rposition(|&b| b == b'_')?;
    let (name, digits) = (inner.get(..us)?, inner.get(us + 1..)?);
    (!name.is_empty() && !digits.is_empty() && digits.iter().all(u8::is_ascii_digit))
        .then_some(at + 1 + len + 1)
}

fn memchr(needle: u8, hay: &[u8], from: usize) -> Option<usize> {
    hay.get(from..)?
        .iter()
        .position(|&b| b == needle)
        .map(|p| p + from)
}

#[cfg(test)]
mod tests;
