//! Applying a decision's masking profiles to one whole body, as if in
//! order (in one pass where the loader compiled the list:
//! [`super::chain`]), and counting what they masked. The flow calls this for buffered request and
//! response bodies; streamed responses go through [`crate::sse`].

use std::collections::BTreeMap;

use super::openai::Scope;
use super::{BodyKind, MaskOutcome, Masker, Masking, Tokens};
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

/// Applies `profiles` (names the policy loader checked) as if in order,
/// each to the previous one's output. `scope` limits JSON masking to an
/// API's text fields (OpenAI requests, [`Scope::for_request`]). `reading`
/// is the flow's parse of `body`, rewritten from instead of parsing again.
/// `tokenize` adds to `tokens` (the exchange's map); token-shaped text the
/// body already holds is reserved first, so it is never restored.
///
/// A list the loader compiled into one masker ([`super::chain`]) is
/// applied in one pass: a later profile then does not scan an earlier
/// one's replacement text (`****1111`, `tok_…`). Where two of its profiles
/// would act on the same value, or the list was not compiled, each profile
/// masks the previous one's output.
pub fn apply(
    masking: &Masking,
    profiles: &[String],
    content_type: Option<&str>,
    body: &[u8],
    scope: Option<&Scope>,
    reading: Option<&Reading<'_>>,
    tokens: &mut Tokens,
) -> Applied {
    if let Some(chain) = masking.chain(profiles) {
        // The tokens a discarded pass would have issued are taken back.
        let before = chain.tokenizes().map(|_| tokens.clone());
        if before.is_some() {
            tokens.reserve(body);
        }
        let out = mask_one(chain, content_type, body, scope, reading, tokens);
        if !out.conflict {
            return applied(out);
        }
        if let Some(before) = before {
            *tokens = before;
        }
    }
    apply_in_order(
        masking,
        profiles,
        content_type,
        body,
        scope,
        reading,
        tokens,
    )
}

/// [`apply`] profile by profile, each to the previous one's output (the
/// first rewrites from `reading`, later ones read the rewritten bytes).
pub fn apply_in_order(
    masking: &Masking,
    profiles: &[String],
    content_type: Option<&str>,
    body: &[u8],
    scope: Option<&Scope>,
    reading: Option<&Reading<'_>>,
    tokens: &mut Tokens,
) -> Applied {
    let mut all = Applied::default();
    let maskers: Vec<_> = profiles.iter().filter_map(|n| masking.profile(n)).collect();
    if maskers.iter().any(|m| m.tokenizes().is_some()) {
        tokens.reserve(body);
    }
    for masker in maskers {
        let input = all.body.as_deref().unwrap_or(body);
        let out = applied(mask_one(
            masker,
            content_type,
            input,
            scope,
            reading,
            tokens,
        ));
        if out.unscanned {
            return out;
        }
        for (detector, n) in out.counts {
            *all.counts.entry(detector).or_insert(0) += n;
        }
        for (detector, n) in out.tokenized {
            *all.tokenized.entry(detector).or_insert(0) += n;
        }
        if let Some(b) = out.body {
            all.body = Some(b);
        }
    }
    all
}

fn mask_one(
    masker: &Masker,
    content_type: Option<&str>,
    body: &[u8],
    scope: Option<&Scope>,
    reading: Option<&Reading<'_>>,
    tokens: &mut Tokens,
) -> MaskOutcome {
    match scope {
        Some(scope) => masker.mask_json_in_read(body, scope, reading, tokens),
        None => masker.mask_read(content_type, body, reading, tokens),
    }
}

fn applied(out: MaskOutcome) -> Applied {
    if out.kind == BodyKind::Passthrough {
        return Applied {
            unscanned: true,
            ..Applied::default()
        };
    }
    Applied {
        body: out.body,
        counts: out.counts,
        tokenized: out.tokenized,
        unscanned: false,
    }
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

    /// `profiles` (a `masking.profiles` object) with `hash_key`, and the
    /// chain of `names` compiled as the loader does.
    fn chained(profiles: &str, names: &[&str]) -> (Masking, Vec<String>) {
        let doc: MaskingDoc = serde_json::from_str(&format!(
            r#"{{"hash_key":"0123456789abcdef0123","profiles":{profiles}}}"#
        ))
        .unwrap();
        let mut m = compile(&doc).unwrap();
        let names: Vec<String> = names.iter().map(|n| n.to_string()).collect();
        m.add_chain(&names);
        (m, names)
    }

    /// The two profiles of `customers-api.json`.
    const BENCH: &str = r#"{
        "pii": {"detectors": ["email", "phone", "ssn", "iban", "ipv4", "ipv6"],
                "json_fields": ["ssn", "date_of_birth", "dob"],
                "strategies": {"default": "redact", "email": "hash"}},
        "cards": {"detectors": ["credit_card"],
                  "strategies": {"credit_card": {"partial": 4}}}}"#;

    /// Runs `apply` and the in-order path on one body: they must agree.
    /// Returns the result and whether the one pass gave it (no conflict).
    fn both(
        m: &Masking,
        names: &[String],
        ct: Option<&str>,
        body: &str,
        scope: Option<&Scope>,
    ) -> (Applied, bool) {
        let mut tokens = Tokens::default();
        let got = apply(m, names, ct, body.as_bytes(), scope, None, &mut tokens);
        let mut in_order_tokens = Tokens::default();
        let want = apply_in_order(
            m,
            names,
            ct,
            body.as_bytes(),
            scope,
            None,
            &mut in_order_tokens,
        );
        assert_eq!(got, want, "{body}");
        assert_eq!(format!("{tokens:?}"), format!("{in_order_tokens:?}"));
        let one_pass = m.chain(names).is_some_and(|c| {
            let out = mask_one(c, ct, body.as_bytes(), scope, None, &mut Tokens::default());
            !out.conflict
        });
        (got, one_pass)
    }

    fn text(a: &Applied) -> String {
        String::from_utf8(a.body.clone().unwrap()).unwrap()
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
    fn the_bench_records_are_masked_in_one_pass_as_in_order() {
        let (m, names) = chained(BENCH, &["pii", "cards"]);
        assert!(m.chain(&names).is_some());
        let records: Vec<String> = (0..20)
            .map(|i| {
                format!(
                    r#"{{"id":"c-{i:06}","name":"Customer {i}","email":"customer{i}@example.com","phone":"+1 415 555 {i:04}","card":"4111 1111 1111 1111","ssn":"123-45-6789","note":"order {i} shipped, contact by email"}}"#
                )
            })
            .collect();
        let body = format!(r#"{{"customers":[{}]}}"#, records.join(","));
        let (out, one_pass) = both(&m, &names, Some("application/json"), &body, None);
        assert!(one_pass, "the bench's body needs no second pass");
        let masked = text(&out);
        assert!(
            masked.contains(r#""card":"***************1111""#),
            "{masked}"
        );
        assert!(masked.contains(r#""ssn":"[REDACTED:ssn]""#), "{masked}");
        assert!(!masked.contains("@example.com"), "{masked}");
        assert_eq!(out.counts.get("credit_card"), Some(&20));
        assert_eq!(out.counts.get("email"), Some(&20));
        assert_eq!(out.counts.get("phone"), Some(&20));
        assert_eq!(out.counts.get("ssn"), Some(&20));
        // As text, and as JSON lines, the same.
        let lines = records.join("\n");
        assert!(both(&m, &names, Some("text/plain"), &lines, None).1);
        assert!(both(&m, &names, Some("text/plain"), &body, None).1);
    }

    /// Where both profiles would mask the same text, the first one's
    /// detector and strategy win, and the second never sees the value.
    #[test]
    fn the_earlier_profile_wins_a_value_both_would_mask() {
        let (m, names) = chained(
            r#"{"red": {"detectors": ["credit_card"]},
                "part": {"detectors": ["credit_card"], "strategies": {"default": {"partial": 4}}}}"#,
            &["red", "part"],
        );
        for (ct, body) in [
            (Some("text/plain"), "pay 4111 1111 1111 1111 now"),
            (Some("application/json"), r#"{"c":"4111111111111111"}"#),
            (Some("application/json"), r#"{"c":4111111111111111}"#),
            (
                Some("application/x-www-form-urlencoded"),
                "c=4111111111111111&d=1",
            ),
        ] {
            let (out, _) = both(&m, &names, ct, body, None);
            assert!(text(&out).contains("REDACTED"), "{:?}", out);
            assert!(!text(&out).contains("1111"), "{:?}", out);
            assert_eq!(out.counts.get("credit_card"), Some(&1));
        }
    }

    /// A later pattern over an earlier value (a custom id that holds an
    /// SSN), or a later candidate whose check reads an earlier value's
    /// bytes (`4111...-123-45-6789`): masked profile by profile.
    #[test]
    fn candidates_touching_an_earlier_value_are_masked_in_order() {
        let (m, names) = chained(
            r#"{"ssn": {"detectors": ["ssn"]},
                "ids": {"detectors": ["credit_card"],
                        "custom": [{"name": "case_id", "regex": "CASE [0-9-]{6,}"}]}}"#,
            &["ssn", "ids"],
        );
        for body in [
            "see CASE 123-45-6789 today",
            "card 4111111111111111-123-45-6789",
            "123-45-6789 4111111111111111",
            "4111111111111111 123-45-6789",
            r#"{"a":"CASE 123-45-6789","b":"x 123-45-6789 CASE 99-99-99"}"#,
        ] {
            let (out, one_pass) = both(&m, &names, Some("text/plain"), body, None);
            assert!(!one_pass || !body.contains("CASE 1"), "{body}");
            let masked = out.body.map(|b| String::from_utf8(b).unwrap());
            assert!(masked.is_some() || body.contains("-123"), "{body}");
        }
        // Far apart, one pass.
        assert!(
            both(
                &m,
                &names,
                Some("text/plain"),
                "123-45-6789 and then 4111111111111111",
                None
            )
            .1
        );
    }

    /// A field of the first profile masks its value whole: a later
    /// profile's hits inside it are not applied (in order, the later one
    /// saw the replacement).
    #[test]
    fn the_first_profiles_fields_mask_whole_values() {
        let (m, names) = chained(
            r#"{"f": {"detectors": ["email"], "json_fields": ["card"]},
                "cards": {"detectors": ["credit_card"], "strategies": {"default": {"partial": 4}}}}"#,
            &["f", "cards"],
        );
        let body = r#"{"card":"4111111111111111","other":"4111111111111111","n":{"card":{"x":"4111111111111111"}}}"#;
        let (out, one_pass) = both(&m, &names, Some("application/json"), body, None);
        assert!(one_pass);
        assert_eq!(
            text(&out),
            r#"{"card":"[REDACTED:card]","other":"************1111","n":{"card":{"x":"[REDACTED:card]"}}}"#
        );
        assert_eq!(out.counts.get("card"), Some(&2));
        assert_eq!(out.counts.get("credit_card"), Some(&1));
        let form = "card=4111111111111111&other=4111111111111111";
        assert!(
            both(
                &m,
                &names,
                Some("application/x-www-form-urlencoded"),
                form,
                None
            )
            .1
        );
    }

    /// Escaped strings are scanned on their own, by every profile.
    #[test]
    fn escaped_strings_and_invalid_json_are_masked_as_in_order() {
        let (m, names) = chained(BENCH, &["pii", "cards"]);
        for body in [
            r#"{"a":"mail bob@example.com card 4111 1111 1111 1111"}"#,
            r#"{"a":"4111111111111111", "b": bob@example.com"#,
            r#"[4111111111111111, 1e400, "+1 415 555 0100"]"#,
            "",
        ] {
            both(&m, &names, Some("application/json"), body, None);
        }
    }

    /// A tokenizing first profile: the same tokens, numbered the same, in
    /// one pass or in order; a discarded pass gives its tokens back.
    #[test]
    fn tokenize_issues_the_same_tokens() {
        let (m, names) = chained(
            r#"{"t": {"detectors": ["email", "ssn"], "strategies": {"default": "tokenize"}},
                "cards": {"detectors": ["credit_card"]}}"#,
            &["t", "cards"],
        );
        let body = r#"{"messages":[{"role":"user","content":"a@example.com, card 4111111111111111 <EMAIL_1> b@example.com a@example.com"}]}"#;
        let (out, one_pass) = both(
            &m,
            &names,
            Some("application/json"),
            body,
            Some(&super::super::openai::CHAT),
        );
        assert!(one_pass);
        assert!(text(&out).contains("<EMAIL_2>"), "{}", text(&out));
        assert_eq!(out.tokenized.get("email"), Some(&3));
        // A conflict (a card right after an SSN) retries with no token used up.
        let (out, one_pass) = both(
            &m,
            &names,
            Some("text/plain"),
            "a@example.com 4111111111111111-123-45-6789",
            None,
        );
        assert!(!one_pass);
        assert!(text(&out).contains("<EMAIL_1>"), "{}", text(&out));
    }

    /// Lists whose later profiles read more than their own candidates are
    /// not compiled: fields, pointers or secret keys (whole values) and
    /// context words.
    #[test]
    fn later_profiles_with_whole_values_or_context_are_not_chained() {
        for later in [
            r#"{"json_fields": ["card"]}"#,
            r#"{"detectors": ["credit_card"], "json_pointers": ["/a"]}"#,
            r#"{"detectors": ["credential"]}"#,
            r#"{"detectors": ["phone"]}"#,
            r#"{"detectors": ["credit_card", "in_aadhaar"]}"#,
        ] {
            let (m, names) = chained(
                &format!(r#"{{"a": {{"detectors": ["email"]}}, "b": {later}}}"#),
                &["a", "b"],
            );
            assert!(m.chain(&names).is_none(), "{later}");
            both(
                &m,
                &names,
                Some("text/plain"),
                "a@example.com 4111111111111111",
                None,
            );
        }
        // As the first profile, any of them.
        let (m, names) = chained(
            r#"{"a": {"detectors": ["phone", "credential"], "json_fields": ["x"]}, "b": {"detectors": ["email"]}}"#,
            &["a", "b"],
        );
        assert!(m.chain(&names).is_some());
    }

    /// The documented change: a later profile no longer scans an earlier
    /// one's replacement (here a `tok_` hash a custom pattern would match).
    #[test]
    fn a_later_profile_no_longer_reads_the_earlier_replacement() {
        let (m, names) = chained(
            r#"{"h": {"detectors": ["email"], "strategies": {"email": "hash"}},
                "t": {"detectors": [], "custom": [{"name": "tok", "regex": "tok_[0-9a-f]{16}"}]}}"#,
            &["h", "t"],
        );
        let body = b"mail a@example.com";
        let one = apply(&m, &names, None, body, None, None, &mut Tokens::default());
        let in_order = apply_in_order(&m, &names, None, body, None, None, &mut Tokens::default());
        assert!(text(&one).starts_with("mail tok_"), "{}", text(&one));
        assert_eq!(text(&in_order), "mail [REDACTED:tok]");
        assert_eq!(one.counts.get("tok"), None);
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
        let (m, names) = chained(BENCH, &["pii", "cards"]);
        let (out, _) = both(&m, &names, Some("image/png"), "a@example.com", None);
        assert!(out.unscanned);
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
        let (m, names) = chained(BENCH, &["pii", "cards"]);
        assert_eq!(both(&m, &names, None, "hello", None).0, Applied::default());
    }
}
