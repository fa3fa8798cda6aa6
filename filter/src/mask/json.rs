//! JSON bodies: a walk over the tokens of the shared reader
//! ([`crate::body::json`]) that rewrites only the string and number tokens
//! it masks. Everything else (key order, whitespace, number spelling,
//! duplicate keys) stays byte for byte, so an unmasked body is returned
//! unchanged and large integers keep their digits.
//!
//! A value is masked whole when its key is in `json_fields` (any case), its
//! path matches a `json_pointers` entry, or its key names a secret
//! (`password`, `aws_secret_access_key`: see `detectors::SECRET_KEYS`); if
//! that value is an object or array, every string and number inside it is.
//! Other strings are scanned (decoded, so `\u0040` is an `@`) and re-encoded;
//! a number in which a detector finds something (a card number) becomes a
//! string. `true`, `false`, `null`, `NaN` and `Infinity` are left alone.
//!
//! The reader is the one rules use, so masks read exactly what rules read
//! (`1e400`, lone surrogates, `NaN`, nesting up to
//! [`crate::body::json::MAX_DEPTH_CEILING`]; the flow refuses deeper bodies
//! by the policy's own limit first). What it cannot read returns `Err`.
//!
//! Speed: the detectors run once over the raw body (one regex pass, as for
//! text), and each hit that lies inside a string or number token without
//! escapes is that token's hit: the quotes around a token read as the start
//! and end of input to every pattern and check. Only a token with escapes,
//! or one a hit crosses into (a custom pattern matching `"`), is decoded and
//! scanned on its own. Scanning each string separately cost about 70 ns a
//! string and halved the throughput on typical API responses.

use crate::body::json::{decode, escape_into, quote, Doc, Kind, MAX_DEPTH_CEILING};
use crate::body::visible;

pub(crate) use crate::body::json::Step;

use super::scan::Hit;
use super::{Masker, Seg, Tally};

pub(crate) struct Invalid;

type Res<T> = Result<T, Invalid>;

/// Which values a pass may mask.
#[derive(Clone, Copy)]
pub(crate) enum Scope {
    /// Every value.
    All,
    /// Every value except those at these structural paths
    /// ([`crate::body::visible`]).
    Except(&'static [&'static str]),
}

/// An open object or array.
struct Frame {
    array: bool,
    next: usize,
    /// The label masking everything inside (a matched field).
    forced: Option<usize>,
}

struct Walker<'a, 'm> {
    b: &'a [u8],
    m: &'m Masker,
    counts: &'m mut Tally,
    out: Vec<u8>,
    copied: usize,
    path: Vec<Step<'a>>,
    /// Hits of the pass over the whole body, and the first one not yet behind us.
    raw_hits: &'m [Hit],
    next_hit: usize,
    /// Scratch for tokens scanned on their own.
    hits: Vec<Hit>,
    /// Scratch for one value's replacement.
    replacement: String,
    keys: KeyMemo<'a>,
    scope: Scope,
}

/// The labels of the keys seen so far in a body, by a hash of their bytes:
/// the records of an array repeat the same few keys, so each is looked up
/// once. Open addressing over a few slots; a key that finds them taken by
/// others is looked up every time (a body of many distinct keys).
struct KeyMemo<'a> {
    slots: Vec<Option<Seen<'a>>>,
}

/// A key met in this body: its [`KeyMemo::hash`], its bytes, its label.
#[derive(Clone, Copy)]
struct Seen<'a> {
    hash: u64,
    key: &'a [u8],
    label: Option<usize>,
}

impl<'a> KeyMemo<'a> {
    /// 64 slots: a record's keys, with room to spare.
    const BITS: u32 = 6;
    const PROBES: usize = 4;

    /// The length and the last eight bytes. Up to seven bytes it is the
    /// key itself: the length sits above the bytes, so two keys of the same
    /// length under eight bytes are equal exactly when their hashes are.
    fn hash(key: &[u8]) -> u64 {
        let mut h = key.len() as u64;
        for &b in key.iter().rev().take(8) {
            h = h.rotate_left(8) ^ u64::from(b);
        }
        h
    }

    /// [`Masker::key_label`] of an unescaped key.
    fn label(&mut self, key: &'a [u8], m: &Masker) -> Option<usize> {
        if self.slots.is_empty() {
            self.slots = vec![None; 1 << Self::BITS];
        }
        let h = Self::hash(key);
        // Multiplied into the top bits.
        let first = (h.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> (64 - Self::BITS)) as usize;
        let mask = (1 << Self::BITS) - 1;
        // Most keys are short: their hash compares them (no `memcmp`).
        let same =
            |sh: u64, k: &[u8]| sh == h && k.len() == key.len() && (key.len() < 8 || k == key);
        for probe in 0..Self::PROBES {
            match self.slots.get_mut((first + probe) & mask) {
                Some(Some(seen)) if same(seen.hash, seen.key) => return seen.label,
                Some(Some(_)) => {}
                Some(empty) => {
                    let label = m.key_label(key);
                    *empty = Some(Seen {
                        hash: h,
                        key,
                        label,
                    });
                    return label;
                }
                None => break,
            }
        }
        m.key_label(key)
    }
}

/// Masks a JSON document given the hits of a scan over all of it;
/// `Ok(None)` when nothing was masked. `doc` is `body` already parsed (the
/// flow's reading, [`crate::body::Reading::doc_of`]); without it (or if it
/// is of other bytes) the body is parsed here.
pub(crate) fn mask<'a>(
    m: &Masker,
    body: &'a [u8],
    doc: Option<&Doc<'a>>,
    raw_hits: &[Hit],
    counts: &mut Tally,
) -> Res<Option<Vec<u8>>> {
    mask_in(m, body, doc, raw_hits, counts, Scope::All)
}

/// As [`mask`], touching only the values `scope` allows.
pub(crate) fn mask_in<'a>(
    m: &Masker,
    body: &'a [u8],
    doc: Option<&Doc<'a>>,
    raw_hits: &[Hit],
    counts: &mut Tally,
    scope: Scope,
) -> Res<Option<Vec<u8>>> {
    let parsed;
    let doc = match doc.filter(|d| std::ptr::eq(d.src, body)) {
        Some(doc) => doc,
        None => {
            parsed = Doc::parse(body, MAX_DEPTH_CEILING).map_err(|_| Invalid)?;
            &parsed
        }
    };
    let mut w = Walker {
        b: body,
        m,
        counts,
        out: Vec::new(),
        copied: 0,
        path: Vec::new(),
        raw_hits,
        next_hit: 0,
        hits: Vec::new(),
        replacement: String::new(),
        keys: KeyMemo { slots: Vec::new() },
        scope,
    };
    w.walk(doc)?;
    if w.copied == 0 {
        return Ok(None);
    }
    let mut out = std::mem::take(&mut w.out);
    out.extend_from_slice(w.b.get(w.copied..).ok_or(Invalid)?);
    Ok(Some(out))
}

impl<'a> Walker<'a, '_> {
    /// The path is tracked (for `json_pointers` or a scope).
    fn tracking(&self) -> bool {
        !matches!(self.scope, Scope::All) || self.m.has_pointers()
    }

    /// The current value may be masked (it is in scope).
    fn in_scope(&self) -> bool {
        match self.scope {
            Scope::All => true,
            Scope::Except(list) => !visible::is_structural(list, &self.path),
        }
    }

    fn walk(&mut self, doc: &Doc<'a>) -> Res<()> {
        let tracking = self.tracking();
        let mut frames: Vec<Frame> = Vec::new();
        // The label of the object member whose key was just read.
        let mut member: Option<usize> = None;
        for t in &doc.tokens {
            let label = match (t.kind, frames.last_mut()) {
                (Kind::Key, parent) => {
                    // A key without escapes is its own bytes (the document
                    // is UTF-8): decoded only when escaped or for the path.
                    let key = (t.escaped || tracking).then(|| doc.text(t));
                    let forced = parent.and_then(|f| f.forced);
                    let by_key = forced.or_else(|| match &key {
                        Some(key) if t.escaped => self.m.key_label(key.as_bytes()),
                        _ => self.keys.label(doc.raw(t), self.m),
                    });
                    if let Some(key) = key.filter(|_| tracking) {
                        self.path.push(Step::Key(key));
                    }
                    member = by_key.or_else(|| self.pointer_label());
                    continue;
                }
                (Kind::ObjectEnd | Kind::ArrayEnd, _) => {
                    frames.pop();
                    if tracking && !frames.is_empty() {
                        self.path.pop();
                    }
                    continue;
                }
                (_, Some(f)) if f.array => {
                    let index = f.next;
                    f.next += 1;
                    let forced = f.forced;
                    if tracking {
                        self.path.push(Step::Index(index));
                    }
                    forced.or_else(|| self.pointer_label())
                }
                (_, Some(_)) => member.take(),
                (_, None) => self.pointer_label(),
            };
            match t.kind {
                Kind::ObjectStart | Kind::ArrayStart => {
                    frames.push(Frame {
                        array: t.kind == Kind::ArrayStart,
                        next: 0,
                        forced: label,
                    });
                    continue;
                }
                Kind::String => self.masked_string(t.start, t.end, t.escaped, label)?,
                Kind::Number => self.masked_number(t.start, t.end, label)?,
                _ => {}
            }
            if tracking && !frames.is_empty() {
                self.path.pop();
            }
        }
        Ok(())
    }

    /// The `json_pointers` label of the current path, if pointers are set.
    fn pointer_label(&self) -> Option<usize> {
        if self.m.has_pointers() {
            self.m.pointer_label(&self.path)
        } else {
            None
        }
    }

    /// Copies the input not yet copied, up to `start`, to the output (the
    /// first time, the output is sized for the whole body).
    fn copy_to(&mut self, start: usize) -> Res<()> {
        if self.out.capacity() == 0 {
            self.out.reserve(self.b.len() + self.b.len() / 8);
        }
        self.out
            .extend_from_slice(self.b.get(self.copied..start).ok_or(Invalid)?);
        Ok(())
    }

    /// Replaces `start..end` of the input with `with` in the output.
    fn replace(&mut self, start: usize, end: usize, with: &[u8]) -> Res<()> {
        self.copy_to(start)?;
        self.out.extend_from_slice(with);
        self.copied = end;
        Ok(())
    }

    /// The raw-pass hits inside token `s..e` (a range of `raw_hits`), or
    /// `None` if one crosses the token's edge.
    fn token_hits(&mut self, s: usize, e: usize) -> Option<std::ops::Range<usize>> {
        while self.raw_hits.get(self.next_hit).is_some_and(|h| h.end <= s) {
            self.next_hit += 1;
        }
        let first = self.next_hit;
        let mut last = first;
        for h in self.raw_hits.iter().skip(first) {
            if h.start >= e {
                break;
            }
            if h.start < s || h.end > e {
                return None;
            }
            last += 1;
        }
        Some(first..last)
    }

    /// Writes token `s..e` (its contents, quotes outside) with the raw-pass
    /// hits `hits` replaced, straight into the output: `quotes` adds them
    /// (a number becoming a string). The raw text between hits needs no
    /// escaping: the token has no escapes.
    fn write_raw_masked(
        &mut self,
        s: usize,
        e: usize,
        hits: std::ops::Range<usize>,
        quotes: bool,
    ) -> Res<()> {
        self.copy_to(s)?;
        if quotes {
            self.out.push(b'"');
        }
        let mut at = s;
        let raw_hits = self.raw_hits;
        for h in raw_hits.get(hits).ok_or(Invalid)? {
            self.out
                .extend_from_slice(self.b.get(at..h.start).ok_or(Invalid)?);
            let value = self.b.get(h.start..h.end).ok_or(Invalid)?;
            self.replacement.clear();
            self.m
                .whole_into(h.label, value, self.counts, &mut self.replacement);
            escape_into(&self.replacement, &mut self.out);
            at = h.end;
        }
        self.out
            .extend_from_slice(self.b.get(at..e).ok_or(Invalid)?);
        if quotes {
            self.out.push(b'"');
        }
        self.copied = e;
        Ok(())
    }

    fn masked_string(&mut self, s: usize, e: usize, esc: bool, forced: Option<usize>) -> Res<()> {
        let raw = self.b.get(s..e).ok_or(Invalid)?;
        if raw.is_empty() || !self.in_scope() {
            return Ok(());
        }
        let masked = match (forced, esc, self.token_hits(s, e)) {
            (Some(label), _, _) => {
                let text = decode(raw, esc);
                self.m.whole(label, text.as_bytes(), self.counts)
            }
            (None, false, Some(hits)) if hits.is_empty() => return Ok(()),
            (None, false, Some(hits)) => return self.write_raw_masked(s, e, hits, false),
            // Escapes, or a hit crossing the token's edge: scan its value alone.
            (None, _, _) => {
                let text = decode(raw, esc);
                self.hits.clear();
                self.m.scan(text.as_bytes(), &mut self.hits, self.counts);
                if self.hits.is_empty() {
                    return Ok(());
                }
                let hits = std::mem::take(&mut self.hits);
                let masked = self.m.render(text.as_bytes(), &hits, self.counts);
                self.hits = hits;
                masked
            }
        };
        let quoted = quote(&String::from_utf8_lossy(&masked));
        // The token with its quotes.
        self.replace(s - 1, e + 1, &quoted)
    }

    fn masked_number(&mut self, s: usize, e: usize, forced: Option<usize>) -> Res<()> {
        let raw = self.b.get(s..e).ok_or(Invalid)?;
        if !self.in_scope() {
            return Ok(());
        }
        let masked = match (forced, self.token_hits(s, e)) {
            (Some(label), _) => self.m.whole(label, raw, self.counts),
            (None, Some(hits)) if hits.is_empty() => return Ok(()),
            (None, Some(hits)) => return self.write_raw_masked(s, e, hits, true),
            (None, None) => {
                self.hits.clear();
                self.m.scan(raw, &mut self.hits, self.counts);
                if self.hits.is_empty() {
                    return Ok(());
                }
                let hits = std::mem::take(&mut self.hits);
                let masked = self.m.render(raw, &hits, self.counts);
                self.hits = hits;
                masked
            }
        };
        let quoted = quote(&String::from_utf8_lossy(&masked));
        self.replace(s, e, &quoted)
    }
}

/// Whether a compiled pointer matches the current path.
pub(crate) fn pointer_matches(pointer: &[Seg], path: &[Step<'_>]) -> bool {
    pointer.len() == path.len()
        && pointer
            .iter()
            .zip(path)
            .all(|(seg, step)| match (seg, step) {
                (Seg::Any, _) => true,
                (Seg::Token(t, _), Step::Key(k)) => t == k,
                (Seg::Token(_, Some(n)), Step::Index(i)) => n == i,
                (Seg::Token(_, None), Step::Index(_)) => false,
            })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masker() -> Masker {
        let doc: crate::mask::MaskingDoc = serde_json::from_str(
            r#"{"profiles":{"p":{"detectors":"all","json_fields":["zip","ab"]}}}"#,
        )
        .unwrap();
        crate::mask::compile(&doc)
            .unwrap()
            .profile("p")
            .unwrap()
            .clone()
    }

    /// The memo answers what `key_label` answers, for every key: secret
    /// names, fields, keys of every length from 0 to 12 over a small
    /// alphabet (so they share slots and hashes' low bits), and keys built
    /// to have the hash of a secret name with another length.
    #[test]
    fn key_memo_answers_as_key_label() {
        let m = masker();
        let mut keys: Vec<Vec<u8>> = [
            "passwd", "pwd", "secret", "zip", "ZIP", "ab", "password", "api_key", "",
        ]
        .iter()
        .map(|k| k.as_bytes().to_vec())
        .collect();
        // Eight bytes hashing like `passwd` (six): the length is XORed in
        // differently, so only the length check tells them apart.
        let h = KeyMemo::hash(b"passwd") ^ 8;
        keys.push((0..8).map(|i| (h >> (8 * i)) as u8).collect());
        assert_eq!(
            KeyMemo::hash(keys.last().unwrap()),
            KeyMemo::hash(b"passwd")
        );
        let mut state = 7u64;
        for _ in 0..3_000 {
            state = state
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            let len = (state >> 60) as usize % 13;
            keys.push(
                (0..len)
                    .map(|i| b"adpswz_"[((state >> (4 * i)) % 7) as usize])
                    .collect(),
            );
        }
        // Twice over, so the second round is answered from the memo.
        let mut memo = KeyMemo { slots: Vec::new() };
        for _ in 0..2 {
            for k in &keys {
                assert_eq!(
                    memo.label(k, &m),
                    m.key_label(k),
                    "{:?}",
                    String::from_utf8_lossy(k)
                );
            }
        }
    }
}
