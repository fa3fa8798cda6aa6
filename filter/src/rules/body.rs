//! The request body as matchers see it: text, decoded strings, JSON
//! Pointers with `*`.
//!
//! The body is read once ([`crate::body::Reading`]: the flow's readability
//! check made it, and masks rewrite from the same parse): text matchers (`body.regex`, `body.keywords`) see the raw text and
//! every decoded string in it (JSON strings and keys, decoded form names and
//! values, multipart text parts), so `"drop\u0020table"` or
//! `sql=DROP+TABLE` cannot hide from a keyword list. The JSON reader accepts
//! what upstream parsers accept (`1e400`, lone surrogates, `NaN`, deep
//! nesting); a body that is still not JSON has no JSON. Bodies that cannot be
//! read as the upstream would are refused by the flow before rules run
//! (`inspection.unreadable`).

use regex::Regex;
use serde_json::Value;
use std::borrow::Cow;
use std::cell::OnceCell;

use crate::body::{json::Doc, Reading};
use crate::policy::PolicyError;

/// A body: the flow's reading of it, or read lazily at most once per
/// evaluation (the CLI, tests).
pub(crate) struct Body<'a> {
    raw: &'a [u8],
    content_type: Option<&'a str>,
    text: OnceCell<Cow<'a, str>>,
    given: Option<&'a Reading<'a>>,
    decoded: OnceCell<Reading<'a>>,
    json: OnceCell<Option<Value>>,
}

impl<'a> Body<'a> {
    pub(crate) fn new(raw: &'a [u8], content_type: Option<&'a str>) -> Self {
        Body {
            raw,
            content_type,
            text: OnceCell::new(),
            given: None,
            decoded: OnceCell::new(),
            json: OnceCell::new(),
        }
    }

    /// The body as `reading` read it (its `raw` is the body).
    pub(crate) fn read(reading: &'a Reading<'a>, content_type: Option<&'a str>) -> Self {
        Body {
            given: Some(reading),
            ..Body::new(reading.raw, content_type)
        }
    }

    /// The body as text (lossy for non-UTF-8).
    pub(crate) fn text(&self) -> &str {
        self.text.get_or_init(|| String::from_utf8_lossy(self.raw))
    }

    fn decoded(&self) -> &Reading<'a> {
        match self.given {
            Some(r) => r,
            None => self
                .decoded
                .get_or_init(|| Reading::lenient(self.content_type, self.raw)),
        }
    }

    /// The JSON document, if the body is JSON.
    pub(crate) fn doc(&self) -> Option<&Doc<'a>> {
        self.decoded().json.as_ref()
    }

    /// The body as a JSON value, if it is JSON (containers past
    /// [`crate::body::json::VALUE_DEPTH`] read as `null`).
    pub(crate) fn json(&self) -> Option<&Value> {
        self.json
            .get_or_init(|| self.doc().map(Doc::value))
            .as_ref()
    }

    /// Whether `re` matches the raw text or any decoded string.
    pub(crate) fn text_matches(&self, re: &Regex) -> bool {
        re.is_match(self.text()) || self.decoded().any_string(|s| re.is_match(s))
    }
}

/// A compiled JSON Pointer: RFC 6901 tokens, `*` matching every item.
#[derive(Debug)]
pub(crate) struct Pointer {
    text: String,
    tokens: Vec<Token>,
}

#[derive(Debug)]
enum Token {
    Key(String),
    Any,
}

impl Pointer {
    pub(crate) fn parse(text: &str, path: &str) -> Result<Pointer, PolicyError> {
        if text.is_empty() {
            return Ok(Pointer {
                text: String::new(),
                tokens: Vec::new(),
            });
        }
        let Some(rest) = text.strip_prefix('/') else {
            return Err(PolicyError::at(
                path,
                format!("a JSON Pointer starts with `/` (or is empty for the whole document), got {text:?}"),
            ));
        };
        let tokens = rest
            .split('/')
            .map(|t| match t {
                "*" => Token::Any,
                t => Token::Key(t.replace("~1", "/").replace("~0", "~")),
            })
            .collect();
        Ok(Pointer {
            text: text.to_string(),
            tokens,
        })
    }

    pub(crate) fn as_str(&self) -> &str {
        &self.text
    }

    /// Every value the pointer reaches in `root`.
    pub(crate) fn resolve<'v>(&self, root: &'v Value) -> Vec<&'v Value> {
        let mut out = Vec::new();
        walk(root, &self.tokens, &mut out);
        out
    }
}

fn walk<'v>(v: &'v Value, tokens: &[Token], out: &mut Vec<&'v Value>) {
    let Some((first, rest)) = tokens.split_first() else {
        out.push(v);
        return;
    };
    match (first, v) {
        (Token::Any, Value::Array(a)) => a.iter().for_each(|x| walk(x, rest, out)),
        (Token::Any, Value::Object(m)) => m.values().for_each(|x| walk(x, rest, out)),
        (Token::Key(k), Value::Object(m)) => {
            if let Some(x) = m.get(k) {
                walk(x, rest, out)
            }
        }
        (Token::Key(k), Value::Array(a)) => {
            // RFC 6901: an index is digits without a leading zero.
            let valid = k == "0" || (!k.starts_with('0') && k.bytes().all(|b| b.is_ascii_digit()));
            if let Some(x) = k
                .parse::<usize>()
                .ok()
                .filter(|_| valid)
                .and_then(|i| a.get(i))
            {
                walk(x, rest, out)
            }
        }
        _ => {}
    }
}

/// A test on the values a pointer reaches.
#[derive(Debug)]
pub(crate) enum JsonTest {
    Equals(Value),
    Regex(Regex),
    Exists(bool),
}

/// `pointer` + test: the `body.json[]` and `mcp.arguments[]` items.
#[derive(Debug)]
pub(crate) struct JsonCond {
    pub(crate) pointer: Pointer,
    pub(crate) test: JsonTest,
    /// Every reached value must pass (`equals`/`regex`), not just one.
    pub(crate) all: bool,
}

impl JsonCond {
    /// Whether the condition holds on `root`.
    pub(crate) fn matches(&self, root: &Value) -> bool {
        let found = self.pointer.resolve(root);
        let pass = |v: &&Value| match &self.test {
            JsonTest::Exists(_) => true,
            JsonTest::Equals(want) => *v == want,
            JsonTest::Regex(re) => match v {
                Value::String(s) => re.is_match(s),
                other => re.is_match(&other.to_string()),
            },
        };
        match &self.test {
            JsonTest::Exists(want) => found.is_empty() != *want,
            _ if self.all => !found.is_empty() && found.iter().all(pass),
            _ => found.iter().any(pass),
        }
    }

    pub(crate) fn describe(&self) -> String {
        let p = self.pointer.as_str();
        let p = if self.all {
            format!("every {p:?}")
        } else {
            format!("{p:?}")
        };
        match &self.test {
            JsonTest::Exists(true) => format!("{p} exists"),
            JsonTest::Exists(false) => format!("{p} does not exist"),
            JsonTest::Equals(v) => format!("{p} equals {v}"),
            JsonTest::Regex(re) => format!("{p} matches /{}/", re.as_str()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn ptr(p: &str) -> Pointer {
        Pointer::parse(p, "x").unwrap()
    }

    #[test]
    fn pointers_resolve_with_wildcards() {
        let doc = json!({"customers":[{"phone":"1"},{"phone":"2"},{"name":"x"}],"a/b":{"~":3}});
        assert_eq!(ptr("/customers/*/phone").resolve(&doc), vec!["1", "2"]);
        assert_eq!(ptr("/customers/1/phone").resolve(&doc), vec!["2"]);
        assert!(ptr("/customers/01/phone").resolve(&doc).is_empty());
        assert!(ptr("/customers/9/phone").resolve(&doc).is_empty());
        assert_eq!(ptr("/a~1b/~0").resolve(&doc), vec![3]);
        assert_eq!(ptr("").resolve(&doc).len(), 1);
        assert_eq!(ptr("/*/*").resolve(&doc).len(), 4);
        assert!(Pointer::parse("customers", "rules[0]").is_err());
    }

    #[test]
    fn json_tests() {
        let doc = json!({"n": 5, "s": "Hello", "b": true, "o": {"k": [1]}});
        let c = |p: &str, test| JsonCond {
            pointer: ptr(p),
            test,
            all: false,
        };
        assert!(c("/n", JsonTest::Equals(json!(5))).matches(&doc));
        assert!(!c("/n", JsonTest::Equals(json!("5"))).matches(&doc));
        assert!(c("/s", JsonTest::Regex(Regex::new("^Hel").unwrap())).matches(&doc));
        assert!(c("/n", JsonTest::Regex(Regex::new("^5$").unwrap())).matches(&doc));
        assert!(c("/o", JsonTest::Regex(Regex::new(r"\[1\]").unwrap())).matches(&doc));
        assert!(c("/b", JsonTest::Exists(true)).matches(&doc));
        assert!(c("/zz", JsonTest::Exists(false)).matches(&doc));
        assert!(!c("/zz", JsonTest::Exists(true)).matches(&doc));
    }

    #[test]
    fn all_requires_every_value_and_at_least_one() {
        let doc = json!({"to": ["a@corp.example", "b@gmail.example"], "cc": []});
        let c = |p: &str, all| JsonCond {
            pointer: ptr(p),
            test: JsonTest::Regex(Regex::new("@corp[.]example$").unwrap()),
            all,
        };
        assert!(c("/to/*", false).matches(&doc));
        assert!(!c("/to/*", true).matches(&doc));
        assert!(c("/to/0", true).matches(&doc));
        assert!(!c("/cc/*", true).matches(&doc));
    }

    #[test]
    fn non_utf8_and_invalid_json_bodies_are_text() {
        let b = Body::new(b"\xff\xfe drop table {", None);
        assert!(b.json().is_none());
        assert!(b.text().contains("drop table"));
        assert!(b.text_matches(&Regex::new("(?i)DROP TABLE").unwrap()));
    }

    #[test]
    fn a_byte_order_mark_does_not_hide_json() {
        let b = Body::new(b"\xEF\xBB\xBF{\"model\":\"o1\"}", None);
        assert_eq!(b.json(), Some(&serde_json::json!({"model": "o1"})));
    }

    #[test]
    fn escaped_json_strings_are_matched_decoded() {
        let b = Body::new(br#"{"q":"drop\u0020table"}"#, None);
        assert!(b.text_matches(&Regex::new("drop table").unwrap()));
    }
}
