//! One reading of each body, shared by rules and masks, so both see what the
//! upstream's parser will see (`docs/rules.md`, "What rules and masks cannot see").
//!
//! - [`classify`]: the content type and charset say how the body is read.
//! - [`check`]: whether it can be read that way. What cannot be read (JSON
//!   that still does not parse, nesting past `inspection.max_json_depth`,
//!   UTF-16/32 by byte order mark or charset, invalid UTF-8, multipart with a
//!   binary part) is [`Unreadable`]: refused by default (`inspection`).
//! - [`read`]: the check and the reading in one parse: a [`Reading`] holds
//!   the JSON document(s) and every string the upstream would decode (JSON
//!   strings and keys, form names and values, multipart text parts); rules
//!   match on it and masks rewrite from it, so the three always agree.
//! - [`json`]: the JSON reader (a superset of Python's `json` and
//!   `JSON.parse`), [`form`], [`multipart`], [`visible`] (what an OpenAI or
//!   MCP request shows the model), [`method_override`].

mod bytes;
pub mod config;
pub mod form;
pub mod json;
pub mod method_override;
pub mod multipart;
pub mod visible;

pub use config::{Inspection, InspectionDoc, OnMethodOverride, OnUnreadable};

use std::borrow::Cow;

/// How a body is read, from its declared content type.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Form {
    /// `application/json`, `*/*+json`.
    Json,
    /// `application/x-www-form-urlencoded`.
    UrlEncoded,
    /// `multipart/form-data` with its boundary.
    Multipart(String),
    /// `text/*`, XML, YAML, NDJSON, ..., or no content type: text, and JSON
    /// if it reads as JSON (upstreams that ignore the type will parse it).
    Text,
    /// Anything else: not inspected (passed on, reported as unscanned).
    Binary,
}

/// A body the filter cannot read as the upstream would.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The reason code in the reply and the audit record.
    pub code: &'static str,
    pub reason: &'static str,
}

const INVALID_JSON: Unreadable = Unreadable {
    code: "body_invalid_json",
    reason: "the body is declared JSON but is not JSON",
};
const TOO_DEEP: Unreadable = Unreadable {
    code: "body_too_deep",
    reason: "the body's JSON nests deeper than inspection.max_json_depth",
};
const CHARSET: Unreadable = Unreadable {
    code: "body_unsupported_charset",
    reason: "the body is not UTF-8 (a UTF-16/32 byte order mark, NUL bytes or another charset)",
};
const INVALID_UTF8: Unreadable = Unreadable {
    code: "body_invalid_utf8",
    reason: "the body is not valid UTF-8",
};
const MULTIPART: Unreadable = Unreadable {
    code: "body_multipart_unreadable",
    reason: "the multipart body has a binary or encoded part, or broken framing",
};

/// A parameter of a content type or a part's `Content-Disposition`
/// (`charset`, `boundary`, `name`), as every upstream reads it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Param<'a> {
    Absent,
    /// Given once, plainly: unquoted.
    One(&'a str),
    /// Upstreams read it differently, so no reading of it can be trusted:
    /// given twice (Werkzeug and python-multipart keep the last), in RFC
    /// 2231's `name*=` or `name*0=` form (Werkzeug decodes and joins them),
    /// or with a backslash, a stray quote or unbalanced quotes (Werkzeug
    /// unescapes `\"` and `%22` in quoted values; `;` inside quotes splits
    /// it here).
    Ambiguous,
}

/// The parameter `name` (any case) of `header` (`type; k=v; ...`).
pub(crate) fn param<'a>(header: &'a str, name: &str) -> Param<'a> {
    let mut found = Param::Absent;
    for p in header.split(';').skip(1) {
        let Some((key, value)) = p.split_once('=') else {
            continue;
        };
        let key = key.trim();
        let base = key.split('*').next().unwrap_or(key).trim();
        if !base.eq_ignore_ascii_case(name) {
            continue;
        }
        found = match (found, key.len() == base.len(), unquote(value.trim())) {
            (Param::Absent, true, Some(v)) => Param::One(v),
            _ => return Param::Ambiguous,
        };
    }
    found
}

/// A token or a quoted string without escapes, unquoted.
fn unquote(value: &str) -> Option<&str> {
    let inner = match value.strip_prefix('"') {
        Some(rest) => rest.strip_suffix('"')?,
        None => value,
    };
    (!inner.contains(['"', '\\'])).then_some(inner)
}

/// Whether the content type's charset (if any) reads UTF-8 bytes as UTF-8.
pub(crate) fn charset_is_utf8(content_type: &str) -> bool {
    match param(content_type, "charset") {
        Param::Absent => true,
        Param::One(c) => is_utf8_name(c),
        Param::Ambiguous => false,
    }
}

fn is_utf8_name(charset: &str) -> bool {
    matches!(
        charset.to_ascii_lowercase().as_str(),
        "utf-8" | "utf8" | "us-ascii" | "ascii"
    )
}

/// A charset that reads ASCII bytes as ASCII (so an all-ASCII body means
/// the same in it as in UTF-8). UTF-7, UTF-16 and the like do not.
fn charset_is_ascii_compatible(content_type: &str) -> bool {
    match param(content_type, "charset") {
        Param::Absent => true,
        Param::One(c) => {
            let c = c.to_ascii_lowercase();
            is_utf8_name(&c)
                || c.starts_with("iso-8859-")
                || c.starts_with("windows-125")
                || matches!(c.as_str(), "latin1" | "latin-1" | "cp1252")
        }
        Param::Ambiguous => false,
    }
}

/// How a body with this content type is read.
pub fn classify(content_type: Option<&str>) -> Form {
    let Some(ct) = content_type else {
        return Form::Text;
    };
    // As the masker reads it (`mask::BodyKind`): one reading of the type.
    let (top, sub) = crate::headers::media_type(ct);
    match (top.as_str(), sub.as_str()) {
        ("application", "json") => Form::Json,
        (_, s) if s.ends_with("+json") => Form::Json,
        ("application", "x-www-form-urlencoded") => Form::UrlEncoded,
        // An ambiguous boundary is none: the body is then refused.
        ("multipart", "form-data") => Form::Multipart(match param(ct, "boundary") {
            Param::One(b) => b.to_string(),
            Param::Absent | Param::Ambiguous => String::new(),
        }),
        ("text", _) => Form::Text,
        ("application", s) if crate::headers::is_textual_application(s) => Form::Text,
        _ => Form::Binary,
    }
}

/// Whether a body can be read as its content type says (the bytes an
/// upstream decodes are the bytes rules and masks read). A binary type or
/// an empty body always can (binary bodies are not inspected).
pub fn check(content_type: Option<&str>, body: &[u8], max_depth: usize) -> Result<(), Unreadable> {
    read(content_type, body, max_depth).map(drop)
}

/// Reads a body as its content type says, refusing what cannot be read as
/// the upstream would ([`check`]), and keeps the reading: the one parse
/// that rules match on and masks rewrite from.
pub fn read<'a>(
    content_type: Option<&str>,
    body: &'a [u8],
    max_depth: usize,
) -> Result<Reading<'a>, Unreadable> {
    Reader {
        max_depth,
        strict: true,
    }
    .read(content_type, body)
}

/// How [`read`] (strict: refuses) or [`Reading::lenient`] reads.
struct Reader {
    max_depth: usize,
    strict: bool,
}

impl Reader {
    fn read<'a>(
        &self,
        content_type: Option<&str>,
        body: &'a [u8],
    ) -> Result<Reading<'a>, Unreadable> {
        let form = classify(content_type);
        let mut r = Reading {
            raw: body,
            json: None,
            lines: Vec::new(),
            fields: Vec::new(),
        };
        if body.is_empty() {
            return Ok(r);
        }
        if self.strict && form != Form::Binary {
            check_encoding(content_type.unwrap_or(""), body)?;
        }
        match form {
            Form::Json => {
                r.json = self.json(body, true)?;
                // Leniently (strictly it was refused): JSON lines sent as JSON.
                if r.json.is_none() {
                    r.lines = self.lines(body)?;
                }
            }
            Form::UrlEncoded => {
                // JSON sent as a form: an upstream that sniffs parses it.
                if looks_like_json(body) {
                    r.json = self.json(body, false)?;
                }
                for f in form::fields(body) {
                    r.fields
                        .push(Cow::Owned(String::from_utf8_lossy(&f.name).into_owned()));
                    r.fields
                        .push(Cow::Owned(String::from_utf8_lossy(&f.value).into_owned()));
                }
            }
            Form::Multipart(boundary) => {
                let parts = match multipart::parts(body, &boundary) {
                    Ok(parts) => parts,
                    Err(_) if self.strict => return Err(MULTIPART),
                    Err(_) => Vec::new(),
                };
                for p in parts {
                    let content = body.get(p.start..p.end).unwrap_or_default();
                    r.fields.push(String::from_utf8_lossy(content));
                    if let Some(doc) = self.json(content, p.json)? {
                        r.fields.extend(strings(&doc));
                    }
                }
            }
            // Text: the whole, or else each line (JSON lines), may be JSON.
            Form::Text => {
                r.json = self.json(body, false)?;
                // Every line is checked (a line nesting too deep is refused
                // even inside a whole that parses); kept when the whole is not JSON.
                if self.strict || r.json.is_none() {
                    let lines = self.lines(body)?;
                    if r.json.is_none() {
                        r.lines = lines;
                    }
                }
            }
            // Not inspected, never refused; JSON if it parses (an upstream
            // may parse it whatever the type says), else JSON lines.
            Form::Binary => {
                let lenient = Reader {
                    max_depth: json::MAX_DEPTH_CEILING,
                    strict: false,
                };
                r.json = lenient.json(body, false)?;
                if r.json.is_none() {
                    r.lines = lenient.lines(body)?;
                }
            }
        }
        Ok(r)
    }

    /// The lines of a multi-line body that are JSON.
    fn lines<'a>(&self, body: &'a [u8]) -> Result<Vec<json::Doc<'a>>, Unreadable> {
        let mut docs = Vec::new();
        if body.iter().any(|&b| is_line_end(b)) {
            for line in body
                .split(|&b| is_line_end(b))
                .filter(|l| looks_like_json(l))
            {
                docs.extend(self.json(line, false)?);
            }
        }
        Ok(docs)
    }

    /// `src` as JSON: `None` when it is not JSON (refused when `declared`
    /// JSON, strictly); nesting past the limit is refused, strictly.
    fn json<'a>(&self, src: &'a [u8], declared: bool) -> Result<Option<json::Doc<'a>>, Unreadable> {
        match json::Doc::parse(src, self.max_depth) {
            Ok(doc) => Ok(Some(doc)),
            Err(json::Error::TooDeep) if self.strict => Err(TOO_DEEP),
            Err(json::Error::Syntax) if self.strict && declared => Err(INVALID_JSON),
            Err(_) => Ok(None),
        }
    }
}

/// The bytes are UTF-8 as the content type says (or ASCII in a charset that
/// reads ASCII as ASCII), with no UTF-16/32 byte order mark and no NUL.
fn check_encoding(ct: &str, body: &[u8]) -> Result<(), Unreadable> {
    if has_wide_bom(body) {
        return Err(CHARSET);
    }
    let ascii = body.is_ascii();
    if !(charset_is_utf8(ct) || ascii && charset_is_ascii_compatible(ct)) {
        return Err(CHARSET);
    }
    if std::str::from_utf8(body).is_err() {
        return Err(INVALID_UTF8);
    }
    // UTF-8 has no NUL in text; UTF-16 without a byte order mark has many.
    if body.contains(&0) {
        return Err(CHARSET);
    }
    Ok(())
}

/// The first non-blank byte opens a JSON value an upstream may parse.
/// Where a line of a text body ends, for JSON lines: `\n`, a `\r` alone or
/// before `\n` (Python's universal newlines), and the other ASCII separators
/// of `str.splitlines`. No JSON document holds any of them raw, so splitting
/// on all of them never cuts a line an upstream reads whole, and a line an
/// upstream splits off is a line here too. (U+2028, U+2029 and U+0085 can be
/// raw inside JSON strings; they are not split on: docs/rules.md.)
pub(crate) fn is_line_end(b: u8) -> bool {
    matches!(b, b'\n' | b'\r' | 0x0b | 0x0c | 0x1c..=0x1e)
}

pub(crate) fn looks_like_json(body: &[u8]) -> bool {
    let body = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    matches!(
        body.iter().find(|b| !b.is_ascii_whitespace()),
        Some(b'{' | b'[' | b'"')
    )
}

/// A UTF-16 or UTF-32 byte order mark.
fn has_wide_bom(body: &[u8]) -> bool {
    body.starts_with(b"\xFF\xFE")
        || body.starts_with(b"\xFE\xFF")
        || body.starts_with(b"\x00\x00\xFE\xFF")
}

/// A body as rules and masks read it: its JSON document(s) and every string
/// an upstream would decode from it. Made once per body ([`read`]), so the
/// readability check, rules and masks read the same parse.
pub struct Reading<'a> {
    pub raw: &'a [u8],
    /// The JSON document, when the whole body is JSON.
    pub json: Option<json::Doc<'a>>,
    /// Text that is not JSON as a whole: its lines that are (JSON lines),
    /// in order.
    pub lines: Vec<json::Doc<'a>>,
    /// Decoded form names and values, multipart part contents (and their
    /// JSON strings), in order.
    pub fields: Vec<Cow<'a, str>>,
}

impl<'a> Reading<'a> {
    /// Reads `raw` as leniently as any upstream would, refusing nothing
    /// (nesting up to [`json::MAX_DEPTH_CEILING`]): the reading when the
    /// check is not wanted (the CLI, `scan_as_text` after a failed check).
    pub fn lenient(content_type: Option<&str>, raw: &'a [u8]) -> Reading<'a> {
        let reader = Reader {
            max_depth: json::MAX_DEPTH_CEILING,
            strict: false,
        };
        reader.read(content_type, raw).unwrap_or(Reading {
            raw,
            json: None,
            lines: Vec::new(),
            fields: Vec::new(),
        })
    }

    /// Calls `f` on every decoded string (JSON strings and keys, form names
    /// and values, multipart parts) until it returns true.
    pub fn any_string(&self, mut f: impl FnMut(&str) -> bool) -> bool {
        self.fields.iter().any(|s| f(s))
            || self
                .json
                .iter()
                .chain(&self.lines)
                .any(|doc| strings(doc).any(|s| f(&s)))
    }

    /// The document parsed from exactly `src` (the body, or one of its
    /// lines), if this reading has one: a masker rewrites from it instead
    /// of parsing again.
    pub fn doc_of(&self, src: &[u8]) -> Option<&json::Doc<'a>> {
        let same = |d: &&json::Doc<'a>| std::ptr::eq(d.src, src);
        self.json.iter().find(same).or_else(|| {
            // Lines are in order: a binary search by position.
            let at = src.as_ptr() as usize;
            let i = self
                .lines
                .partition_point(|d| (d.src.as_ptr() as usize) < at);
            self.lines.get(i).filter(same)
        })
    }
}

/// The decoded strings and keys of a document, in order.
fn strings<'d, 'a>(doc: &'d json::Doc<'a>) -> impl Iterator<Item = Cow<'a, str>> + 'd {
    doc.tokens
        .iter()
        .filter(|t| is_text(t))
        .map(|t| doc.text(t))
}

fn is_text(t: &json::Token) -> bool {
    matches!(t.kind, json::Kind::String | json::Kind::Key)
}

#[cfg(test)]
mod tests;
