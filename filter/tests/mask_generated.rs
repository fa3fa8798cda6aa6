//! The acceptance bar on a sample of the generated corpus (`cargo xtask
//! corpus` makes the full one; this sample is `generate.py --records 1200
//! --seed 2026 --jsonl ...`, committed so the test needs no Python):
//! precision >= 0.99 for every detector, phone recall >= 0.8, and each
//! detector masks under 0.5% of the negatives (order numbers, timestamps,
//! versions, UUIDs, prices, ISBNs, tracking numbers, bad checksums).
//!
//! `cargo test -p transit-guard --test mask_generated -- --nocapture` prints the table.

// Test code: panicking is how it fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use transit_guard::mask::{compile, MaskingDoc};

#[derive(Default)]
struct Score {
    planted: u32,
    found: u32,
    false_positives: u32,
    negatives_hit: u32,
}

#[test]
fn generated_sample_meets_the_bar() {
    let doc: MaskingDoc = serde_json::from_str(r#"{"profiles":{"all":{}}}"#).unwrap();
    let masking = compile(&doc).unwrap();
    let m = masking.profile("all").unwrap();
    let mut scores: BTreeMap<String, Score> = BTreeMap::new();
    let mut negatives = 0u32;
    let mut misses = Vec::new();
    for line in include_str!("data/generated_sample.jsonl").lines() {
        let rec: serde_json::Value = serde_json::from_str(line).unwrap();
        let text = rec["text"].as_str().unwrap();
        let out = m.mask(Some("text/plain"), text.as_bytes());
        let masked =
            String::from_utf8(out.body.unwrap_or_else(|| text.as_bytes().to_vec())).unwrap();
        let mut counts = out.counts.clone();
        for p in rec["planted"].as_array().unwrap() {
            let (det, value) = (p[0].as_str().unwrap(), p[1].as_str().unwrap());
            let s = scores.entry(det.to_string()).or_default();
            s.planted += 1;
            let n = counts.entry(det.to_string()).or_default();
            if *n > 0 && !masked.contains(value) {
                s.found += 1;
                *n -= 1;
            } else {
                misses.push(format!("{det} missed: {masked}"));
            }
        }
        let negative = !rec["negative"].is_null();
        negatives += u32::from(negative);
        for (det, n) in counts.into_iter().filter(|(_, n)| *n > 0) {
            let s = scores.entry(det.clone()).or_default();
            s.false_positives += n;
            s.negatives_hit += u32::from(negative);
            misses.push(format!("{det} masked wrongly: {masked}"));
        }
    }
    println!(
        "{:<18} {:>7} {:>6} {:>4} {:>9} {:>7} {:>8}",
        "detector", "planted", "found", "fp", "precision", "recall", "neg fp%"
    );
    let mut failures = Vec::new();
    for (det, s) in &scores {
        let precision = f64::from(s.found) / f64::from((s.found + s.false_positives).max(1));
        let recall = f64::from(s.found) / f64::from(s.planted.max(1));
        let fp_rate = 100.0 * f64::from(s.negatives_hit) / f64::from(negatives.max(1));
        println!(
            "{det:<18} {:>7} {:>6} {:>4} {precision:>9.3} {recall:>7.3} {fp_rate:>7.2}%",
            s.planted, s.found, s.false_positives
        );
        if precision < 0.99 {
            failures.push(format!("{det}: precision {precision:.3} < 0.99"));
        }
        if fp_rate >= 0.5 {
            failures.push(format!("{det}: masks {fp_rate:.2}% of the negatives"));
        }
    }
    let phone = &scores["phone"];
    let phone_recall = f64::from(phone.found) / f64::from(phone.planted);
    if phone_recall < 0.8 {
        failures.push(format!("phone recall {phone_recall:.3} < 0.8"));
    }
    assert!(negatives >= 300, "the sample has {negatives} negatives");
    for m in &misses {
        println!("  {m}");
    }
    assert!(failures.is_empty(), "{failures:#?}");
}
