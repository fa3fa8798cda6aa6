//! Applying a decision's masking profiles to one whole body, in order, and
//! counting what they masked. The flow calls this for buffered request and
//! response bodies; streamed responses go through [`crate::sse`].

use std::collections::BTreeMap;

use super::openai::Scope;
use super::{BodyKind, Masking, Tokens};
use crate::body::Reading;

/// What the profiles did to a body.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Applied {
    /// The masked body, or `None` if nothing changed.
    pub body: Option<Vec<u8>>,
    /// Masked values by detector, summed over the profiles.
    pub counts: BTreeMap<String, u32>,
    /// The part of `counts` masked with `tokenize`.
    pub tokenized: BTreeMap<String, u32>,
    /// The content type is not one the masker reads: passed on unscanned.
    pub unscanned: bool,
}

/// Applies `profiles` (names the policy loader checked) in order, each to
/// the previous one's output. `scope` limits JSON masking to an API's text
/// fields (OpenAI requests, [`Scope::for_request`]). `reading` is the
/// flow's parse of `body`: the first profile rewrites from it (later ones
/// read the rewritten bytes). `tokenize` adds to `tokens` (the exchange's
/// map); token-shaped text the body already holds is reserved first, so it
/// is never restored.
pub fn apply(
    masking: &Masking,
    profiles: &[String],
    content_type: Option<&str>,
    body: &[u8],
    scope: Option<&Scope>,
    reading: Option<&Reading<'_>>,
    tokens: &mut Tokens,
) -> Applied {
    let mut applied = Applied::default();
    let maskers: Vec<_> = profiles.iter().filter_map(|n| masking.profile(n)).collect();
    if maskers.iter().any(|m| m.tokenizes().is_some()) {
        tokens.reserve(body);
    }
    for masker in maskers {
        let input = applied.body.as_deref().unwrap_or(body);
        let out = match scope {
            Some(scope) => masker.mask_json_in_read(input, scope, reading, tokens),
            None => masker.mask_read(content_type, input, reading, tokens),
        };
        if out.kind == BodyKind::Passthrough {
            return Applied {
                unscanned: true,
                ..Applied::default()
            };
        }
        for (detector, n) in out.counts {
            *applied.counts.entry(detector).or_insert(0) += n;
        }
        for (detector, n) in out.tokenized {
            *applied.tokenized.entry(detector).or_insert(0) += n;
        }
        if let Some(b) = out.body {
            applied.body = Some(b);
        }
    }
    applied
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mask::{compile, MaskingDoc};

    fn masking() -> Masking {
        let doc: MaskingDoc = serde_json::from_str(
            r#"{"profiles":{"email":{"detectors":["email"]},"ssn":{"detectors":["ssn"]}}}"#,
        )
        .unwrap();
        compile(&doc).unwrap()
    }

    #[test]
    fn profiles_apply_in_order_and_counts_add_up() {
        let m = masking();
        let names = ["email".to_string(), "ssn".to_string()];
        let out = apply(
            &m,
            &names,
            Some("text/plain"),
            b"a@example.com 123-45-6789",
            None,
            None,
            &mut Tokens::default(),
        );
        let body = String::from_utf8(out.body.unwrap()).unwrap();
        assert!(
            !body.contains("a@example.com") && !body.contains("123-45-6789"),
            "{body}"
        );
        assert_eq!(out.counts.get("email"), Some(&1));
        assert_eq!(out.counts.get("ssn"), Some(&1));
        assert!(!out.unscanned);
    }

    #[test]
    fn unreadable_content_types_are_reported_unscanned() {
        let out = apply(
            &masking(),
            &["email".to_string()],
            Some("image/png"),
            b"a@example.com",
            None,
            None,
            &mut Tokens::default(),
        );
        assert!(out.unscanned);
        assert_eq!(out.body, None);
    }

    #[test]
    fn nothing_found_leaves_the_body_alone() {
        let out = apply(
            &masking(),
            &["email".to_string()],
            None,
            b"hello",
            None,
            None,
            &mut Tokens::default(),
        );
        assert_eq!(out, Applied::default());
    }
}
