//! JSON bodies: a strict, allocation-light walk over the raw bytes that
//! rewrites only the string and number tokens it masks. Everything else
//! (key order, whitespace, number spelling, duplicate keys) stays byte for
//! byte, so an unmasked body is returned unchanged and large integers keep
//! their digits.
//!
//! A value is masked whole when its key is in `json_fields` (any case), its
//! path matches a `json_pointers` entry, or its key names a secret
//! (`password`, `aws_secret_access_key`: see `detectors::SECRET_KEYS`); if
//! that value is an object or array, every string and number inside it is.
//! Other strings are scanned (decoded, so `\u0040` is an `@`) and re-encoded;
//! a number in which a detector finds something (a card number) becomes a
//! string. `true`, `false` and `null` are left alone.
//!
//! Any syntax error (or nesting past 128) returns `Err` and the caller scans
//! the body as text instead: declared JSON is never passed on unscanned.
//!
//! Speed: the detectors run once over the raw body (one regex pass, as for
//! text), and each hit that lies inside a string or number token without
//! escapes is that token's hit: the quotes around a token read as the start
//! and end of input to every pattern and check. Only a token with escapes,
//! or one a hit crosses into (a custom pattern matching `"`), is decoded and
//! scanned on its own. Scanning each string separately cost about 70 ns a
//! string and halved the throughput on typical API responses.

use std::borrow::Cow;

use super::scan::Hit;
use super::{Masker, Seg};

const MAX_DEPTH: usize = 128;

pub(crate) struct Invalid;

type Res<T> = Result<T, Invalid>;

/// A step of the current path, for `json_pointers`.
pub(crate) enum Step<'a> {
    Key(Cow<'a, str>),
    Index(usize),
}

struct Walker<'a, 'm> {
    b: &'a [u8],
    i: usize,
    m: &'m Masker,
    counts: &'m mut [u32],
    out: Vec<u8>,
    copied: usize,
    path: Vec<Step<'a>>,
    /// Hits of the pass over the whole body, and the first one not yet behind us.
    raw_hits: &'m [Hit],
    next_hit: usize,
    /// Scratch for tokens scanned on their own.
    hits: Vec<Hit>,
    /// Only values at these paths are masked (`None`: every value).
    scope: Option<&'m [Vec<Seg>]>,
}

/// Masks a JSON document given the hits of a scan over all of it;
/// `Ok(None)` when nothing was masked.
pub(crate) fn mask(
    m: &Masker,
    body: &[u8],
    raw_hits: &[Hit],
    counts: &mut [u32],
) -> Res<Option<Vec<u8>>> {
    mask_in(m, body, raw_hits, counts, None)
}

/// As [`mask`], touching only the values whose path is one of `scope`
/// (exactly; `*` for any key or index).
pub(crate) fn mask_in(
    m: &Masker,
    body: &[u8],
    raw_hits: &[Hit],
    counts: &mut [u32],
    scope: Option<&[Vec<Seg>]>,
) -> Res<Option<Vec<u8>>> {
    // One UTF-8 check for the whole body; tokens need none after it.
    std::str::from_utf8(body).map_err(|_| Invalid)?;
    let mut w = Walker {
        b: body,
        i: 0,
        m,
        counts,
        out: Vec::new(),
        copied: 0,
        path: Vec::new(),
        raw_hits,
        next_hit: 0,
        hits: Vec::new(),
        scope,
    };
    if w.b.starts_with(b"\xEF\xBB\xBF") {
        w.i = 3;
    }
    w.ws();
    let root = w.m.pointer_label(&w.path);
    w.value(0, root)?;
    w.ws();
    if w.i != w.b.len() {
        return Err(Invalid);
    }
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
        self.scope.is_some() || self.m.has_pointers()
    }

    /// The current value may be masked (it is in scope).
    fn in_scope(&self) -> bool {
        self.scope
            .is_none_or(|sc| sc.iter().any(|p| pointer_matches(p, &self.path)))
    }

    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    fn eat(&mut self, c: u8) -> Res<()> {
        if self.peek() == Some(c) {
            self.i += 1;
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    /// Replaces `start..end` of the input with `with` in the output.
    fn replace(&mut self, start: usize, end: usize, with: &[u8]) -> Res<()> {
        self.out
            .extend_from_slice(self.b.get(self.copied..start).ok_or(Invalid)?);
        self.out.extend_from_slice(with);
        self.copied = end;
        Ok(())
    }

    /// `forced`: the label that masks this whole value (a matched field).
    fn value(&mut self, depth: usize, forced: Option<usize>) -> Res<()> {
        if depth > MAX_DEPTH {
            return Err(Invalid);
        }
        match self.peek().ok_or(Invalid)? {
            b'{' => self.object(depth, forced),
            b'[' => self.array(depth, forced),
            b'"' => {
                let (s, e, esc) = self.string()?;
                self.masked_string(s, e, esc, forced)
            }
            b'-' | b'0'..=b'9' => {
                let (s, e) = self.number()?;
                self.masked_number(s, e, forced)
            }
            b't' => self.literal(b"true"),
            b'f' => self.literal(b"false"),
            b'n' => self.literal(b"null"),
            _ => Err(Invalid),
        }
    }

    fn object(&mut self, depth: usize, forced: Option<usize>) -> Res<()> {
        self.eat(b'{')?;
        self.ws();
        if self.peek() == Some(b'}') {
            self.i += 1;
            return Ok(());
        }
        loop {
            let (s, e, esc) = self.string()?;
            let key = decode(self.b.get(s..e).ok_or(Invalid)?, esc)?;
            self.ws();
            self.eat(b':')?;
            self.ws();
            let by_key = match forced {
                Some(_) => forced,
                None => self.m.key_label(&key),
            };
            let pointers = self.tracking();
            if pointers {
                self.path.push(Step::Key(key));
            }
            let label = match by_key {
                Some(_) => by_key,
                None if self.m.has_pointers() => self.m.pointer_label(&self.path),
                None => None,
            };
            self.value(depth + 1, label)?;
            if pointers {
                self.path.pop();
            }
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(b'}') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Invalid),
            }
        }
    }

    fn array(&mut self, depth: usize, forced: Option<usize>) -> Res<()> {
        self.eat(b'[')?;
        self.ws();
        if self.peek() == Some(b']') {
            self.i += 1;
            return Ok(());
        }
        let mut index = 0;
        loop {
            let pointers = (forced.is_none() && self.m.has_pointers()) || self.scope.is_some();
            if pointers {
                self.path.push(Step::Index(index));
            }
            let label = match forced {
                Some(_) => forced,
                None if self.m.has_pointers() => self.m.pointer_label(&self.path),
                None => None,
            };
            self.value(depth + 1, label)?;
            if pointers {
                self.path.pop();
            }
            index += 1;
            self.ws();
            match self.peek() {
                Some(b',') => {
                    self.i += 1;
                    self.ws();
                }
                Some(b']') => {
                    self.i += 1;
                    return Ok(());
                }
                _ => return Err(Invalid),
            }
        }
    }

    fn literal(&mut self, word: &[u8]) -> Res<()> {
        if self.b.get(self.i..self.i + word.len()) == Some(word) {
            self.i += word.len();
            Ok(())
        } else {
            Err(Invalid)
        }
    }

    /// A string token: the span of its contents (between the quotes) and
    /// whether it has escapes. Validates escapes, control characters, UTF-8.
    fn string(&mut self) -> Res<(usize, usize, bool)> {
        self.eat(b'"')?;
        let start = self.i;
        let mut esc = false;
        loop {
            // Skip the plain run in one go.
            let rest = self.b.get(self.i..).ok_or(Invalid)?;
            self.i += rest
                .iter()
                .position(|&c| c == b'"' || c == b'\\' || c < 0x20)
                .ok_or(Invalid)?;
            match self.peek().ok_or(Invalid)? {
                b'"' => break,
                b'\\' => {
                    esc = true;
                    match self.b.get(self.i + 1).ok_or(Invalid)? {
                        b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                        b'u' => {
                            let hex = self.b.get(self.i + 2..self.i + 6).ok_or(Invalid)?;
                            if !hex.iter().all(u8::is_ascii_hexdigit) {
                                return Err(Invalid);
                            }
                            self.i += 6;
                        }
                        _ => return Err(Invalid),
                    }
                }
                0..=0x1F => return Err(Invalid),
                _ => self.i += 1,
            }
        }
        let end = self.i;
        self.i += 1;
        Ok((start, end, esc))
    }

    fn number(&mut self) -> Res<(usize, usize)> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Invalid),
        }
        if self.peek() == Some(b'.') {
            self.i += 1;
            self.digits1()?;
        }
        if matches!(self.peek(), Some(b'e' | b'E')) {
            self.i += 1;
            if matches!(self.peek(), Some(b'+' | b'-')) {
                self.i += 1;
            }
            self.digits1()?;
        }
        Ok((start, self.i))
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn digits1(&mut self) -> Res<()> {
        let s = self.i;
        self.digits();
        if self.i == s {
            Err(Invalid)
        } else {
            Ok(())
        }
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
        self.out
            .extend_from_slice(self.b.get(self.copied..s).ok_or(Invalid)?);
        if quotes {
            self.out.push(b'"');
        }
        let mut at = s;
        for h in self.raw_hits.get(hits).ok_or(Invalid)? {
            self.out
                .extend_from_slice(self.b.get(at..h.start).ok_or(Invalid)?);
            let value = self.b.get(h.start..h.end).ok_or(Invalid)?;
            let replacement = self.m.whole(h.label, value, self.counts);
            escape_into(&String::from_utf8_lossy(&replacement), &mut self.out);
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
                let text = decode(raw, esc)?;
                self.m.whole(label, text.as_bytes(), self.counts)
            }
            (None, false, Some(hits)) if hits.is_empty() => return Ok(()),
            (None, false, Some(hits)) => return self.write_raw_masked(s, e, hits, false),
            // Escapes, or a hit crossing the token's edge: scan its value alone.
            (None, _, _) => {
                let text = decode(raw, esc)?;
                self.hits.clear();
                self.m.scanner.scan(text.as_bytes(), &mut self.hits);
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
                self.m.scanner.scan(raw, &mut self.hits);
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

/// The string's value. A lone surrogate escape (valid JSON, not valid
/// Unicode) decodes to U+FFFD; that only shows if the string is rewritten.
fn decode(raw: &[u8], esc: bool) -> Res<Cow<'_, str>> {
    let text = std::str::from_utf8(raw).map_err(|_| Invalid)?;
    if !esc {
        return Ok(Cow::Borrowed(text));
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next().ok_or(Invalid)? {
            'n' => out.push('\n'),
            't' => out.push('\t'),
            'r' => out.push('\r'),
            'b' => out.push('\u{8}'),
            'f' => out.push('\u{c}'),
            'u' => {
                let hi = hex4(&mut chars)?;
                let c = if (0xD800..0xDC00).contains(&hi) {
                    let mut ahead = chars.clone();
                    let lo = match (ahead.next(), ahead.next()) {
                        (Some('\\'), Some('u')) => hex4(&mut ahead).ok(),
                        _ => None,
                    };
                    match lo {
                        Some(lo) if (0xDC00..0xE000).contains(&lo) => {
                            chars = ahead;
                            char::from_u32(0x10000 + ((hi - 0xD800) << 10) + (lo - 0xDC00))
                        }
                        _ => None,
                    }
                } else {
                    char::from_u32(hi)
                };
                out.push(c.unwrap_or('\u{FFFD}'));
            }
            other => out.push(other),
        }
    }
    Ok(Cow::Owned(out))
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Res<u32> {
    let mut v = 0;
    for _ in 0..4 {
        v = v * 16 + chars.next().and_then(|c| c.to_digit(16)).ok_or(Invalid)?;
    }
    Ok(v)
}

/// A JSON string token for `text`.
pub(crate) fn quote(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    out.push(b'"');
    escape_into(text, &mut out);
    out.push(b'"');
    out
}

/// Appends `text` escaped for the inside of a JSON string.
fn escape_into(text: &str, out: &mut Vec<u8>) {
    if !text.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        out.extend_from_slice(text.as_bytes());
        return;
    }
    for c in text.chars() {
        match c {
            '"' => out.extend_from_slice(b"\\\""),
            '\\' => out.extend_from_slice(b"\\\\"),
            '\n' => out.extend_from_slice(b"\\n"),
            '\r' => out.extend_from_slice(b"\\r"),
            '\t' => out.extend_from_slice(b"\\t"),
            c if u32::from(c) < 0x20 => {
                out.extend_from_slice(format!("\\u{:04x}", u32::from(c)).as_bytes())
            }
            c => {
                let mut buf = [0u8; 4];
                out.extend_from_slice(c.encode_utf8(&mut buf).as_bytes());
            }
        }
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
