//! One reading of each body, shared by rules and masks, so both see what the
//! upstream's parser will see (`docs/rules.md`, "What rules and masks cannot see").
//!
//! - [`classify`]: the content type and charset say how the body is read.
//! - [`check`]: whether it can be read that way. What cannot be read (JSON
//!   that still does not parse, nesting past `inspection.max_json_depth`,
//!   UTF-16/32 by byte order mark or charset, invalid UTF-8, multipart with a
//!   binary part) is [`Unreadable`]: refused by default (`inspection`).
//! - [`Decoded`]: every string the upstream would decode (JSON strings and
//!   keys, form names and values, multipart text parts), for rules.
//! - [`json`]: the JSON reader (a superset of Python's `json` and
//!   `JSON.parse`), [`form`], [`multipart`], [`visible`] (what an OpenAI or
//!   MCP request shows the model), [`method_override`].

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

/// The essence (`type/subtype`, lowercase) of a content type.
fn essence(content_type: &str) -> String {
    content_type
        .split(';')
        .next()
        .unwrap_or("")
        .trim()
        .to_ascii_lowercase()
}

/// A content type parameter's value (`charset`, `boundary`), unquoted.
fn param<'a>(content_type: &'a str, name: &str) -> Option<&'a str> {
    content_type.split(';').skip(1).find_map(|p| {
        let (k, v) = p.split_once('=')?;
        k.trim()
            .eq_ignore_ascii_case(name)
            .then(|| v.trim().trim_matches('"'))
    })
}

/// Whether the content type's charset (if any) reads UTF-8 bytes as UTF-8.
pub(crate) fn charset_is_utf8(content_type: &str) -> bool {
    param(content_type, "charset").is_none_or(|c| {
        matches!(
            c.to_ascii_lowercase().as_str(),
            "utf-8" | "utf8" | "us-ascii" | "ascii"
        )
    })
}

/// A charset that reads ASCII bytes as ASCII (so an all-ASCII body means
/// the same in it as in UTF-8). UTF-7, UTF-16 and the like do not.
fn charset_is_ascii_compatible(content_type: &str) -> bool {
    param(content_type, "charset").is_none_or(|c| {
        let c = c.to_ascii_lowercase();
        charset_is_utf8(content_type)
            || c.starts_with("iso-8859-")
            || c.starts_with("windows-125")
            || matches!(c.as_str(), "latin1" | "latin-1" | "cp1252")
    })
}

/// How a body with this content type is read.
pub fn classify(content_type: Option<&str>) -> Form {
    let Some(ct) = content_type else {
        return Form::Text;
    };
    let e = essence(ct);
    let (top, sub) = e.split_once('/').unwrap_or((e.as_str(), ""));
    match (top, sub) {
        ("application", "json") => Form::Json,
        (_, s) if s.ends_with("+json") => Form::Json,
        ("application", "x-www-form-urlencoded") => Form::UrlEncoded,
        ("multipart", "form-data") => {
            Form::Multipart(param(ct, "boundary").unwrap_or_default().to_string())
        }
        ("text", _) => Form::Text,
        ("application", s) if crate::headers::is_textual_application(s) => Form::Text,
        _ => Form::Binary,
    }
}

/// Whether a body can be read as its content type says (the bytes an
/// upstream decodes are the bytes rules and masks read). A binary type or
/// an empty body always can (binary bodies are not inspected).
pub fn check(content_type: Option<&str>, body: &[u8], max_depth: usize) -> Result<(), Unreadable> {
    let form = classify(content_type);
    if body.is_empty() || form == Form::Binary {
        return Ok(());
    }
    if has_wide_bom(body) {
        return Err(CHARSET);
    }
    let ct = content_type.unwrap_or("");
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
    match form {
        Form::Json => json_check(body, max_depth, true),
        // Text: the whole, or else each line (JSON lines), may be JSON.
        Form::Text => json_check(body, max_depth, false).and_then(|()| {
            body.split(|&b| b == b'\n')
                .try_for_each(|line| json_check(line, max_depth, false))
        }),
        Form::UrlEncoded => json_check(body, max_depth, false),
        Form::Binary => Ok(()),
        Form::Multipart(boundary) => {
            let parts = multipart::parts(body, &boundary).map_err(|_| MULTIPART)?;
            for p in parts {
                let content = body.get(p.start..p.end).unwrap_or_default();
                json_check(content, max_depth, p.json)?;
            }
            Ok(())
        }
    }
}

/// A declared JSON body must parse; text that looks like JSON may fail
/// (it is text), but never by nesting too deep (an upstream that parses it
/// anyway would read what the filter did not).
fn json_check(body: &[u8], max_depth: usize, declared: bool) -> Result<(), Unreadable> {
    if !declared && !looks_like_json(body) {
        return Ok(());
    }
    match json::Doc::parse(body, max_depth) {
        Ok(_) => Ok(()),
        Err(json::Error::TooDeep) => Err(TOO_DEEP),
        Err(json::Error::Syntax) if declared => Err(INVALID_JSON),
        Err(json::Error::Syntax) => Ok(()),
    }
}

/// The first non-blank byte opens a JSON value an upstream may parse.
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

/// A body as rules read it: its text and every string an upstream would
/// decode from it. Built once per evaluation.
pub struct Decoded<'a> {
    pub raw: &'a [u8],
    /// The JSON document, when the body (or, for text, its content) is JSON.
    pub json: Option<json::Doc<'a>>,
    /// Decoded form names and values, multipart part contents (and their
    /// JSON strings), in order.
    pub fields: Vec<Cow<'a, str>>,
}

impl<'a> Decoded<'a> {
    /// Reads `raw` as `content_type` says, as leniently as any upstream
    /// would (nesting up to [`json::MAX_DEPTH_CEILING`]: the flow has refused
    /// deeper bodies already, by the policy's own limit).
    pub fn read(content_type: Option<&str>, raw: &'a [u8]) -> Decoded<'a> {
        let mut d = Decoded {
            raw,
            json: None,
            fields: Vec::new(),
        };
        match classify(content_type) {
            Form::UrlEncoded => {
                // JSON sent as a form: an upstream that sniffs parses it.
                if looks_like_json(raw) {
                    d.json = json::Doc::parse(raw, json::MAX_DEPTH_CEILING).ok();
                }
                for f in form::fields(raw) {
                    d.fields
                        .push(Cow::Owned(String::from_utf8_lossy(&f.name).into_owned()));
                    d.fields
                        .push(Cow::Owned(String::from_utf8_lossy(&f.value).into_owned()));
                }
            }
            Form::Multipart(boundary) => {
                for p in multipart::parts(raw, &boundary).unwrap_or_default() {
                    let content = raw.get(p.start..p.end).unwrap_or_default();
                    d.fields.push(String::from_utf8_lossy(content));
                    if let Ok(doc) = json::Doc::parse(content, json::MAX_DEPTH_CEILING) {
                        for t in doc.tokens.iter().filter(|t| is_text(t)) {
                            d.fields.push(doc.text(t));
                        }
                    }
                }
            }
            // Any other type, binary included: JSON if it parses (an
            // upstream may parse it whatever the type says), else JSON lines.
            _ => {
                d.json = json::Doc::parse(raw, json::MAX_DEPTH_CEILING).ok();
                if d.json.is_none() && raw.contains(&b'\n') {
                    for line in raw.split(|&b| b == b'\n').filter(|l| looks_like_json(l)) {
                        if let Ok(doc) = json::Doc::parse(line, json::MAX_DEPTH_CEILING) {
                            for t in doc.tokens.iter().filter(|t| is_text(t)) {
                                d.fields.push(doc.text(t));
                            }
                        }
                    }
                }
            }
        }
        d
    }

    /// Calls `f` on every decoded string (JSON strings and keys, form names
    /// and values, multipart parts) until it returns true.
    pub fn any_string(&self, mut f: impl FnMut(&str) -> bool) -> bool {
        if self.fields.iter().any(|s| f(s)) {
            return true;
        }
        let Some(doc) = &self.json else {
            return false;
        };
        doc.tokens
            .iter()
            .filter(|t| is_text(t))
            .any(|t| f(&doc.text(t)))
    }
}

fn is_text(t: &json::Token) -> bool {
    matches!(t.kind, json::Kind::String | json::Kind::Key)
}

#[cfg(test)]
mod tests;
