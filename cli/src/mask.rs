//! `transit-guard mask`: a body masked exactly as the filter masks it, to
//! try a profile on one's own samples before rollout.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::Path;

use serde_json::json;
use transit_guard::mask::{BodyKind, Masker, Tokens};

use crate::input::InputError;

/// The content type a file is read as when `--content-type` is not given:
/// by extension, else plain text.
pub fn content_type_for(path: Option<&Path>) -> &'static str {
    let ext = path
        .and_then(|p| p.extension())
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("json") => "application/json",
        Some("ndjson" | "jsonl") => "application/x-ndjson",
        Some("xml") => "application/xml",
        Some("yaml" | "yml") => "application/yaml",
        Some("csv") => "text/csv",
        Some("html" | "htm") => "text/html",
        Some("form") => "application/x-www-form-urlencoded",
        _ => "text/plain",
    }
}

/// The input: FILE, or standard input when absent or `-`.
pub fn read_input(path: Option<&Path>) -> Result<Vec<u8>, InputError> {
    match path {
        Some(p) if p != Path::new("-") => crate::input::read(p),
        _ => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| InputError(format!("cannot read standard input: {e}")))?;
            Ok(buf)
        }
    }
}

/// Masks `body` (each line on its own with `each_line`), writes the result to
/// `out`, and returns the report for standard error: how the body was read
/// and the masked values by detector (and, for a `tokenize` profile, the
/// tokenised ones: the output shows the tokens the upstream would get).
pub fn run(
    masker: &Masker,
    content_type: &str,
    body: &[u8],
    each_line: bool,
    out: &mut impl Write,
) -> std::io::Result<serde_json::Value> {
    let mut counts: BTreeMap<String, u32> = BTreeMap::new();
    let mut tokenized: BTreeMap<String, u32> = BTreeMap::new();
    let mut kind = BodyKind::of(Some(content_type));
    let bodies: Vec<&[u8]> = if each_line {
        body.split_inclusive(|&b| b == b'\n').collect()
    } else {
        vec![body]
    };
    for part in bodies {
        // A line's own newline is not part of the body the filter would see.
        let (text, newline) = match part.strip_suffix(b"\n") {
            Some(t) if each_line => (t, &b"\n"[..]),
            _ => (part, &b""[..]),
        };
        // One token map per body, as the filter keeps one per request, with
        // token-shaped text already in it reserved (never issued).
        let mut tokens = Tokens::default();
        if masker.tokenizes().is_some() {
            tokens.reserve(text);
        }
        let outcome = masker.mask_with(Some(content_type), text, &mut tokens);
        if outcome.kind == BodyKind::InvalidJson {
            kind = BodyKind::InvalidJson;
        }
        for (name, n) in &outcome.counts {
            *counts.entry(name.clone()).or_insert(0) += n;
        }
        for (name, n) in &outcome.tokenized {
            *tokenized.entry(name.clone()).or_insert(0) += n;
        }
        out.write_all(outcome.body.as_deref().unwrap_or(text))?;
        out.write_all(newline)?;
    }
    out.flush()?;
    let total: u32 = counts.values().sum();
    let mut report = json!({
        "content_type": content_type,
        "read_as": kind.as_str(),
        "masked": counts,
        "total": total,
    });
    if masker.tokenizes().is_some() {
        report["tokenized"] = json!(tokenized);
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use transit_guard::mask::{compile, MaskingDoc};

    fn masker() -> Masker {
        let doc: MaskingDoc = serde_json::from_str(r#"{"profiles":{"p":{}}}"#).unwrap();
        compile(&doc).unwrap().profile("p").unwrap().clone()
    }

    #[test]
    fn types_by_extension() {
        assert_eq!(
            content_type_for(Some(Path::new("a.JSON"))),
            "application/json"
        );
        assert_eq!(
            content_type_for(Some(Path::new("a.jsonl"))),
            "application/x-ndjson"
        );
        assert_eq!(content_type_for(Some(Path::new("a.log"))), "text/plain");
        assert_eq!(content_type_for(None), "text/plain");
    }

    #[test]
    fn lines_are_masked_one_by_one() {
        let mut out = Vec::new();
        let report = run(
            &masker(),
            "text/plain",
            b"mail bob@example.com\nno pii\ncall +44 20 7946 0958\n",
            true,
            &mut out,
        )
        .unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "mail [REDACTED:email]\nno pii\ncall [REDACTED:phone]\n"
        );
        assert_eq!(report["masked"]["email"], 1);
        assert_eq!(report["masked"]["phone"], 1);
        assert_eq!(report["total"], 2);
        assert!(report.get("tokenized").is_none());
    }

    #[test]
    fn a_tokenize_profile_shows_the_tokens_the_upstream_gets() {
        let doc: MaskingDoc = serde_json::from_str(
            r#"{"profiles":{"p":{"detectors":["email"],"strategies":{"email":"tokenize"}}}}"#,
        )
        .unwrap();
        let m = compile(&doc).unwrap().profile("p").unwrap().clone();
        let mut out = Vec::new();
        let body = b"a@example.com, <EMAIL_1>, b@example.com, a@example.com\nc@example.com\n";
        let report = run(&m, "text/plain", body, true, &mut out).unwrap();
        // Typed token-shaped text is kept and never issued; each line is a body.
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "<EMAIL_2>, <EMAIL_1>, <EMAIL_3>, <EMAIL_2>\n<EMAIL_1>\n"
        );
        assert_eq!(report["masked"]["email"], 4);
        assert_eq!(report["tokenized"]["email"], 4);
    }
}
