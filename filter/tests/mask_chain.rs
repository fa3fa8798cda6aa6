//! A list of profiles in one pass ([`transit_guard::mask::apply::apply`],
//! compiled by the loader) against the same list applied profile by
//! profile (`apply_in_order`, the reference) over the labelled corpora:
//! each record as text, inside a JSON document, as JSON lines and as a
//! form field, under several two- and three-profile lists. Every output,
//! count and token must be the same; the test prints how many bodies the
//! one pass masked alone (the rest went back to the in-order path).

// Test code: panicking is how it fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use transit_guard::mask::apply::{apply, apply_in_order};
use transit_guard::mask::{compile, MaskingDoc, Tokens};

const PROFILES: &str = r#"{
  "hash_key": "0123456789abcdef0123",
  "profiles": {
    "pii": {"detectors": ["email", "phone", "ssn", "iban", "ipv4", "ipv6"],
            "json_fields": ["ssn", "date_of_birth", "dob"],
            "strategies": {"default": "redact", "email": "hash"}},
    "cards": {"detectors": ["credit_card"], "strategies": {"credit_card": {"partial": 4}}},
    "secrets": {"detectors": ["private_key", "jwt", "aws_access_key", "aws_secret_key",
                              "github_token", "openai_key", "credential"],
                "strategies": {"default": "hash"}},
    "ids": {"detectors": ["iban", "uk_nino", "in_pan", "eu_vat", "crypto_wallet", "ssn"],
            "strategies": {"default": {"partial": 3}}},
    "tok": {"detectors": ["email", "ssn"], "strategies": {"default": "tokenize"}},
    "all": {}
  }
}"#;

fn texts() -> Vec<String> {
    let files = [
        include_str!("data/mask_corpus.jsonl"),
        include_str!("data/generated_sample.jsonl"),
    ];
    files
        .iter()
        .flat_map(|f| f.lines())
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            v["text"].as_str().unwrap().to_string()
        })
        .collect()
}

#[test]
fn one_pass_masks_the_corpus_as_profile_by_profile() {
    let doc: MaskingDoc = serde_json::from_str(PROFILES).unwrap();
    let mut masking = compile(&doc).unwrap();
    let lists: Vec<Vec<String>> = [
        &["pii", "cards"][..],
        &["cards", "pii"],
        &["secrets", "cards"],
        &["all", "cards"],
        &["pii", "ids"],
        &["tok", "cards", "ids"],
        &["pii", "secrets", "cards"],
    ]
    .iter()
    .map(|l| l.iter().map(|s| s.to_string()).collect())
    .collect();
    for l in &lists {
        masking.add_chain(l);
    }
    let texts = texts();
    let mut bodies: Vec<(&str, String)> = Vec::new();
    for t in &texts {
        bodies.push(("text/plain", t.clone()));
        bodies.push((
            "application/json",
            serde_json::json!({"id": 7, "note": t, "nested": [{"text": t}]}).to_string(),
        ));
        bodies.push((
            "application/x-www-form-urlencoded",
            format!("q={}&n=1", t.replace('%', "%25").replace('&', "%26")),
        ));
    }
    for chunk in texts.chunks(25) {
        let lines: Vec<String> = chunk
            .iter()
            .map(|t| serde_json::json!({ "t": t }).to_string())
            .collect();
        bodies.push(("text/plain", lines.join("\n")));
        bodies.push(("application/json", format!("[{}]", lines.join(","))));
    }
    let mut masked = 0;
    for list in &lists {
        for (ct, body) in &bodies {
            let mut one_tokens = Tokens::default();
            let one = apply(
                &masking,
                list,
                Some(ct),
                body.as_bytes(),
                None,
                None,
                &mut one_tokens,
            );
            let mut in_order_tokens = Tokens::default();
            let in_order = apply_in_order(
                &masking,
                list,
                Some(ct),
                body.as_bytes(),
                None,
                None,
                &mut in_order_tokens,
            );
            assert_eq!(
                one,
                in_order,
                "{list:?} {ct}: {body}\none pass: {}\nin order: {}",
                String::from_utf8_lossy(one.body.as_deref().unwrap_or_default()),
                String::from_utf8_lossy(in_order.body.as_deref().unwrap_or_default())
            );
            assert_eq!(format!("{one_tokens:?}"), format!("{in_order_tokens:?}"));
            masked += usize::from(one.body.is_some());
        }
    }
    println!(
        "{} bodies x {} lists, {masked} masked: the same in one pass and in order",
        bodies.len(),
        lists.len()
    );
    assert!(masked > bodies.len(), "the corpus masks something");
}
