//! The JSON reader every body inspection uses (rules, masks, previews).
//!
//! Its language is a superset of what the upstreams' parsers accept (Python's
//! `json`, Node's `JSON.parse`, serde_json), so nothing an upstream reads can
//! be hidden from the filter by a parser difference:
//! - numbers of any size or precision (`1e400`, 300-digit integers);
//! - `NaN`, `Infinity`, `-Infinity` (Python accepts them);
//! - any `\u` escape, lone surrogates included (decoded as U+FFFD);
//! - raw control characters inside strings (Python's `strict=False`);
//! - duplicate keys (both are read; upstreams keep the last);
//! - a leading UTF-8 byte order mark (Python's `json.loads(bytes)` skips it);
//! - nesting as deep as the caller allows: the reader is iterative, so depth
//!   costs memory, never stack.
//!
//! The input must be UTF-8 (callers refuse other encodings first). The result
//! is a flat list of [`Token`]s with byte spans into the input, so a masker can
//! rewrite exactly the tokens it masks and leave every other byte alone.

use std::borrow::Cow;

/// The deepest nesting any policy may allow (`inspection.max_json_depth`).
pub const MAX_DEPTH_CEILING: usize = 100_000;

/// How deep [`Doc::value`] builds containers.
pub const VALUE_DEPTH: usize = 128;

#[cfg(test)]
thread_local! {
    /// How many documents this thread parsed (tests count the parses of a body).
    pub(crate) static PARSES: std::cell::Cell<usize> = const { std::cell::Cell::new(0) };
}

/// How many documents this thread parsed so far (tests only).
#[cfg(test)]
pub(crate) fn parses() -> usize {
    PARSES.with(std::cell::Cell::get)
}

/// One token, with its byte span in the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Token {
    pub kind: Kind,
    /// For strings and keys: the contents between the quotes.
    pub start: usize,
    pub end: usize,
    /// A string or key with backslash escapes (its bytes are not its value).
    pub escaped: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    ObjectStart,
    ObjectEnd,
    ArrayStart,
    ArrayEnd,
    Key,
    String,
    Number,
    /// `true`, `false`, `null`, `NaN`, `Infinity`, `-Infinity`.
    Literal,
}

/// Why a document could not be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Error {
    /// Not JSON, even by the most lenient upstream parser's rules.
    Syntax,
    /// Nested deeper than the limit.
    TooDeep,
}

/// A parsed document: the input and its tokens in order.
#[derive(Debug, Clone)]
pub struct Doc<'a> {
    pub src: &'a [u8],
    pub tokens: Vec<Token>,
}

/// One step of a value's path: an object key or an array index.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Step<'a> {
    Key(Cow<'a, str>),
    Index(usize),
}

impl<'a> Doc<'a> {
    /// Reads `src` (UTF-8, or an error) nested at most `max_depth` deep.
    pub fn parse(src: &'a [u8], max_depth: usize) -> Result<Doc<'a>, Error> {
        #[cfg(test)]
        PARSES.with(|n| n.set(n.get() + 1));
        if std::str::from_utf8(src).is_err() {
            return Err(Error::Syntax);
        }
        let mut r = Reader {
            b: src,
            i: 0,
            // About one token in eight bytes of a typical API body.
            tokens: Vec::with_capacity(src.len() / 8),
        };
        if r.b.starts_with(b"\xEF\xBB\xBF") {
            r.i = 3;
        }
        r.document(max_depth)?;
        Ok(Doc {
            src,
            tokens: r.tokens,
        })
    }

    /// The decoded value of a string or key token.
    pub fn text(&self, t: &Token) -> Cow<'a, str> {
        let raw = self.src.get(t.start..t.end).unwrap_or_default();
        decode(raw, t.escaped)
    }

    /// The raw bytes of a token.
    pub fn raw(&self, t: &Token) -> &'a [u8] {
        self.src.get(t.start..t.end).unwrap_or_default()
    }

    /// Calls `f` with every string value (not key) and its path.
    pub fn each_string(&self, mut f: impl FnMut(&[Step<'a>], &Token, Cow<'a, str>)) {
        self.walk(|path, t| {
            if t.kind == Kind::String {
                f(path, t, self.text(t));
            }
        });
    }

    /// Calls `f` with every scalar (string, number, literal) and its path.
    pub fn walk(&self, mut f: impl FnMut(&[Step<'a>], &Token)) {
        let mut path: Vec<Step<'a>> = Vec::new();
        // Per open container: is it an array, and the next index.
        let mut frames: Vec<(bool, usize)> = Vec::new();
        for t in &self.tokens {
            // A value inside an array gets its index pushed first.
            let in_array = matches!(
                t.kind,
                Kind::ObjectStart | Kind::ArrayStart | Kind::String | Kind::Number | Kind::Literal
            ) && frames.last().is_some_and(|(arr, _)| *arr);
            if in_array {
                if let Some((_, next)) = frames.last_mut() {
                    path.push(Step::Index(*next));
                    *next += 1;
                }
            }
            match t.kind {
                Kind::Key => {
                    path.push(Step::Key(self.text(t)));
                    continue;
                }
                Kind::ObjectStart => {
                    frames.push((false, 0));
                    continue;
                }
                Kind::ArrayStart => {
                    frames.push((true, 0));
                    continue;
                }
                Kind::ObjectEnd | Kind::ArrayEnd => {
                    frames.pop();
                }
                Kind::String | Kind::Number | Kind::Literal => f(&path, t),
            }
            // The value at the top of the path is done.
            path.pop();
        }
    }

    /// The document as a `serde_json::Value` (for JSON Pointer conditions).
    /// Numbers serde_json cannot hold (`1e400`, `NaN`) become strings of their
    /// spelling; duplicate keys keep the last value, as upstreams do.
    /// Containers nested deeper than [`VALUE_DEPTH`] become `null`: a `Value`
    /// is dropped recursively, and a pointer never reaches that deep.
    pub fn value(&self) -> serde_json::Value {
        use serde_json::{Map, Value};
        enum Open {
            Obj(Map<String, Value>, Option<String>),
            Arr(Vec<Value>),
        }
        let mut stack: Vec<Open> = Vec::new();
        let mut root = Value::Null;
        // Open containers being skipped (too deep).
        let mut skip = 0usize;
        for t in &self.tokens {
            let opens = matches!(t.kind, Kind::ObjectStart | Kind::ArrayStart);
            let closes = matches!(t.kind, Kind::ObjectEnd | Kind::ArrayEnd);
            if opens && (skip > 0 || stack.len() >= VALUE_DEPTH) {
                skip += 1;
                continue;
            }
            let v = if skip > 0 {
                skip -= usize::from(closes);
                if skip > 0 {
                    continue;
                }
                Value::Null
            } else {
                match t.kind {
                    Kind::ObjectStart => {
                        stack.push(Open::Obj(Map::new(), None));
                        continue;
                    }
                    Kind::ArrayStart => {
                        stack.push(Open::Arr(Vec::new()));
                        continue;
                    }
                    Kind::Key => {
                        if let Some(Open::Obj(_, key)) = stack.last_mut() {
                            *key = Some(self.text(t).into_owned());
                        }
                        continue;
                    }
                    Kind::ObjectEnd | Kind::ArrayEnd => match stack.pop() {
                        Some(Open::Obj(m, _)) => Value::Object(m),
                        Some(Open::Arr(a)) => Value::Array(a),
                        None => Value::Null,
                    },
                    Kind::String => Value::String(self.text(t).into_owned()),
                    Kind::Number | Kind::Literal => {
                        let raw = String::from_utf8_lossy(self.raw(t));
                        serde_json::from_str::<Value>(&raw)
                            .unwrap_or(Value::String(raw.into_owned()))
                    }
                }
            };
            match stack.last_mut() {
                Some(Open::Obj(m, key)) => {
                    if let Some(k) = key.take() {
                        m.insert(k, v);
                    }
                }
                Some(Open::Arr(a)) => a.push(v),
                None => root = v,
            }
        }
        root
    }
}

struct Reader<'a> {
    b: &'a [u8],
    i: usize,
    tokens: Vec<Token>,
}

impl Reader<'_> {
    fn peek(&self) -> Option<u8> {
        self.b.get(self.i).copied()
    }

    fn ws(&mut self) {
        while matches!(self.peek(), Some(b' ' | b'\n' | b'\r' | b'\t')) {
            self.i += 1;
        }
    }

    fn push(&mut self, kind: Kind, start: usize, end: usize, escaped: bool) {
        self.tokens.push(Token {
            kind,
            start,
            end,
            escaped,
        });
    }

    /// The whole document: one value, whitespace around it.
    fn document(&mut self, max_depth: usize) -> Result<(), Error> {
        // Per open container: whether it is an object.
        let mut open: Vec<bool> = Vec::new();
        self.ws();
        loop {
            // A value is expected here.
            match self.peek().ok_or(Error::Syntax)? {
                c @ (b'{' | b'[') => {
                    let object = c == b'{';
                    if open.len() >= max_depth {
                        return Err(Error::TooDeep);
                    }
                    let kind = if object {
                        Kind::ObjectStart
                    } else {
                        Kind::ArrayStart
                    };
                    self.push(kind, self.i, self.i + 1, false);
                    self.i += 1;
                    self.ws();
                    let close = if object { b'}' } else { b']' };
                    if self.peek() == Some(close) {
                        let end = if object {
                            Kind::ObjectEnd
                        } else {
                            Kind::ArrayEnd
                        };
                        self.push(end, self.i, self.i + 1, false);
                        self.i += 1;
                    } else {
                        open.push(object);
                        if object {
                            self.key()?;
                        }
                        continue;
                    }
                }
                b'"' => {
                    let (s, e, esc) = self.string()?;
                    self.push(Kind::String, s, e, esc);
                }
                b'-' | b'0'..=b'9' => self.number()?,
                _ => self.literal()?,
            }
            // A value ended: close containers, or go on to the next item.
            loop {
                self.ws();
                let Some(&object) = open.last() else {
                    return if self.i == self.b.len() {
                        Ok(())
                    } else {
                        Err(Error::Syntax)
                    };
                };
                let close = if object { b'}' } else { b']' };
                match self.peek() {
                    Some(b',') => {
                        self.i += 1;
                        self.ws();
                        if object {
                            self.key()?;
                        }
                        break;
                    }
                    Some(c) if c == close => {
                        let kind = if object {
                            Kind::ObjectEnd
                        } else {
                            Kind::ArrayEnd
                        };
                        self.push(kind, self.i, self.i + 1, false);
                        self.i += 1;
                        open.pop();
                    }
                    _ => return Err(Error::Syntax),
                }
            }
        }
    }

    /// `"key"` `:`, leaving the reader at the value.
    #[inline]
    fn key(&mut self) -> Result<(), Error> {
        if self.peek() != Some(b'"') {
            return Err(Error::Syntax);
        }
        let (s, e, esc) = self.string()?;
        self.push(Kind::Key, s, e, esc);
        self.ws();
        if self.peek() != Some(b':') {
            return Err(Error::Syntax);
        }
        self.i += 1;
        self.ws();
        Ok(())
    }

    /// A string token: the span of its contents and whether it has escapes.
    #[inline]
    fn string(&mut self) -> Result<(usize, usize, bool), Error> {
        self.i += 1; // the opening quote
        let start = self.i;
        let mut esc = false;
        loop {
            let rest = self.b.get(self.i..).ok_or(Error::Syntax)?;
            // Most strings have no escape: one search for the closing quote,
            // eight bytes at a time.
            self.i += super::bytes::quote_or_backslash(rest).ok_or(Error::Syntax)?;
            if self.peek() == Some(b'"') {
                break;
            }
            esc = true;
            match self.b.get(self.i + 1).ok_or(Error::Syntax)? {
                b'"' | b'\\' | b'/' | b'b' | b'f' | b'n' | b'r' | b't' => self.i += 2,
                b'u' => {
                    let hex = self.b.get(self.i + 2..self.i + 6).ok_or(Error::Syntax)?;
                    if !hex.iter().all(u8::is_ascii_hexdigit) {
                        return Err(Error::Syntax);
                    }
                    self.i += 6;
                }
                _ => return Err(Error::Syntax),
            }
        }
        let end = self.i;
        self.i += 1;
        Ok((start, end, esc))
    }

    /// A JSON number of any size, or `-Infinity`.
    fn number(&mut self) -> Result<(), Error> {
        let start = self.i;
        if self.peek() == Some(b'-') {
            self.i += 1;
            if self
                .b
                .get(self.i..)
                .is_some_and(|r| r.starts_with(b"Infinity"))
            {
                self.i += 8;
                self.push(Kind::Literal, start, self.i, false);
                return Ok(());
            }
        }
        match self.peek() {
            Some(b'0') => self.i += 1,
            Some(b'1'..=b'9') => self.digits(),
            _ => return Err(Error::Syntax),
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
        self.push(Kind::Number, start, self.i, false);
        Ok(())
    }

    fn digits(&mut self) {
        while self.peek().is_some_and(|b| b.is_ascii_digit()) {
            self.i += 1;
        }
    }

    fn digits1(&mut self) -> Result<(), Error> {
        let s = self.i;
        self.digits();
        if self.i == s {
            Err(Error::Syntax)
        } else {
            Ok(())
        }
    }

    fn literal(&mut self) -> Result<(), Error> {
        let rest = self.b.get(self.i..).unwrap_or_default();
        for word in [&b"true"[..], b"false", b"null", b"NaN", b"Infinity"] {
            if rest.starts_with(word) {
                self.push(Kind::Literal, self.i, self.i + word.len(), false);
                self.i += word.len();
                return Ok(());
            }
        }
        Err(Error::Syntax)
    }
}

/// A string's value from its raw contents. A lone surrogate escape decodes to
/// U+FFFD; a malformed escape (which the reader never lets through) is kept.
pub fn decode(raw: &[u8], escaped: bool) -> Cow<'_, str> {
    let text = String::from_utf8_lossy(raw);
    if !escaped {
        return text;
    }
    let mut out = String::with_capacity(text.len());
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            out.push(c);
            continue;
        }
        match chars.next() {
            Some('n') => out.push('\n'),
            Some('t') => out.push('\t'),
            Some('r') => out.push('\r'),
            Some('b') => out.push('\u{8}'),
            Some('f') => out.push('\u{c}'),
            Some('u') => {
                let Some(hi) = hex4(&mut chars) else {
                    out.push('\u{FFFD}');
                    continue;
                };
                let c = if (0xD800..0xDC00).contains(&hi) {
                    let mut ahead = chars.clone();
                    let lo = match (ahead.next(), ahead.next()) {
                        (Some('\\'), Some('u')) => hex4(&mut ahead),
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
            Some(other) => out.push(other),
            None => {}
        }
    }
    Cow::Owned(out)
}

fn hex4(chars: &mut std::str::Chars<'_>) -> Option<u32> {
    let mut v = 0;
    for _ in 0..4 {
        v = v * 16 + chars.next()?.to_digit(16)?;
    }
    Some(v)
}

/// A JSON string token (with quotes) for `text`.
pub fn quote(text: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(text.len() + 2);
    out.push(b'"');
    escape_into(text, &mut out);
    out.push(b'"');
    out
}

/// Appends `text` escaped for the inside of a JSON string.
pub fn escape_into(text: &str, out: &mut Vec<u8>) {
    if !super::bytes::needs_escape(text.as_bytes()) {
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

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(src: &str) -> Vec<String> {
        let doc = Doc::parse(src.as_bytes(), 1000).unwrap();
        let mut out = Vec::new();
        doc.each_string(|_, _, s| out.push(s.into_owned()));
        out
    }

    #[test]
    fn what_python_and_node_accept_is_read() {
        for ok in [
            "1e400",
            "-1e400",
            "123456789012345678901234567890123456789",
            "NaN",
            "[Infinity,-Infinity,NaN]",
            r#""\ud800""#,
            r#"{"a":1,"a":2}"#,
            "\u{feff}{}",
            " \t\r\n[] ",
            "\"tab\there\"",
            r#"{"k":"\u0000"}"#,
        ] {
            assert!(Doc::parse(ok.as_bytes(), 1000).is_ok(), "{ok:?}");
        }
    }

    #[test]
    fn what_every_parser_refuses_is_refused() {
        for bad in [
            "",
            "{",
            "[1,]",
            "{\"a\"}",
            "01",
            "1.",
            ".5",
            "+1",
            "'x'",
            "\"\\x\"",
            "\"\\u12\"",
            "[1] 2",
            "tru",
            "nan",
            "{a:1}",
            "\"abc",
            "[\"a\" \"b\"]",
            "{\"a\":1,}",
        ] {
            assert_eq!(
                Doc::parse(bad.as_bytes(), 1000).err(),
                Some(Error::Syntax),
                "{bad:?}"
            );
        }
        assert!(Doc::parse(b"\"\xff\"", 1000).is_err());
    }

    #[test]
    fn depth_is_limited_without_recursion() {
        let deep = |n: usize| format!("{}\"x\"{}", "[".repeat(n), "]".repeat(n));
        assert!(Doc::parse(deep(128).as_bytes(), 128).is_ok());
        assert_eq!(
            Doc::parse(deep(129).as_bytes(), 128).err(),
            Some(Error::TooDeep)
        );
        let deepest = deep(100_000);
        let doc = Doc::parse(deepest.as_bytes(), MAX_DEPTH_CEILING).unwrap();
        assert_eq!(doc.tokens.len(), 200_001);
    }

    #[test]
    fn strings_are_decoded_with_their_paths() {
        assert_eq!(
            strings(r#"{"q":"drop\u0020table","a":["x\ud800y",{"b":"\ud83d\ude00"}]}"#),
            vec!["drop table", "x\u{FFFD}y", "\u{1F600}"]
        );
        let doc = Doc::parse(br#"{"a":[{"b":"v"},"w"],"c":"z"}"#, 10).unwrap();
        let mut paths = Vec::new();
        doc.each_string(|p, _, s| {
            let p: Vec<String> = p
                .iter()
                .map(|s| match s {
                    Step::Key(k) => k.to_string(),
                    Step::Index(i) => i.to_string(),
                })
                .collect();
            paths.push((p.join("/"), s.into_owned()));
        });
        assert_eq!(
            paths,
            vec![
                ("a/0/b".to_string(), "v".to_string()),
                ("a/1".to_string(), "w".to_string()),
                ("c".to_string(), "z".to_string())
            ]
        );
    }

    #[test]
    fn values_match_serde_json_where_it_reads_them() {
        let src = r#"{"a":[1,2.5,"x",true,null,{}],"b":{"c":-3}}"#;
        let doc = Doc::parse(src.as_bytes(), 10).unwrap();
        assert_eq!(
            doc.value(),
            serde_json::from_str::<serde_json::Value>(src).unwrap()
        );
        let doc = Doc::parse(br#"{"n":1e400,"m":NaN,"d":1,"d":2}"#, 10).unwrap();
        assert_eq!(
            doc.value(),
            serde_json::json!({"n":"1e400","m":"NaN","d":2})
        );
    }
}
