//! A labelled corpus: planted sensitive values (and near-miss decoys) in
//! prose, masked as text and inside JSON. Prints precision and recall per
//! detector, and fails if any planted value survives in the output.
//!
//! The corpus is `tests/data/mask_corpus.jsonl` (hand-written edge cases)
//! plus records generated here from a fixed seed (valid Luhn cards, mod-97
//! IBANs, SSNs in range, tokens of each format, and decoys that fail those
//! checks). A record: `{"text", "planted": [[detector, fragment, ...]],
//! "decoys": [...]}`; every fragment of a planted value must be gone from the
//! output, every decoy must still be there.
//!
//! `cargo test -p transit-guard --test mask_corpus -- --nocapture` shows the table.

// Test code: panicking is how it fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::collections::BTreeMap;
use transit_guard::mask::{compile, Masker, MaskingDoc};

struct Record {
    text: String,
    planted: Vec<(String, Vec<String>)>,
    decoys: Vec<String>,
}

fn masker() -> Masker {
    let doc: MaskingDoc =
        serde_json::from_str(r#"{"profiles":{"all":{"detectors":"all"}}}"#).unwrap();
    compile(&doc).unwrap().profile("all").unwrap().clone()
}

fn load_file() -> Vec<Record> {
    let text = include_str!("data/mask_corpus.jsonl");
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).unwrap();
            Record {
                text: v["text"].as_str().unwrap().to_string(),
                planted: v["planted"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|p| {
                        let p = p.as_array().unwrap();
                        let strs: Vec<String> =
                            p.iter().map(|s| s.as_str().unwrap().to_string()).collect();
                        (strs[0].clone(), strs[1..].to_vec())
                    })
                    .collect(),
                decoys: v["decoys"]
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|s| s.as_str().unwrap().to_string())
                    .collect(),
            }
        })
        .collect()
}

/// xorshift64*: reproducible without a dependency.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }
    fn pick<'a>(&mut self, xs: &[&'a str]) -> &'a str {
        xs[self.below(xs.len() as u64) as usize]
    }
    fn chars(&mut self, alphabet: &[u8], n: usize) -> String {
        (0..n)
            .map(|_| alphabet[self.below(alphabet.len() as u64) as usize] as char)
            .collect()
    }
    fn digits(&mut self, n: usize) -> String {
        self.chars(b"0123456789", n)
    }
}

const ALNUM: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789";
const B64: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

fn luhn_digit(body: &str) -> u32 {
    let sum: u32 = body
        .bytes()
        .rev()
        .enumerate()
        .map(|(i, b)| {
            let d = u32::from(b - b'0');
            if i % 2 == 0 {
                let x = d * 2;
                if x > 9 {
                    x - 9
                } else {
                    x
                }
            } else {
                d
            }
        })
        .sum();
    (10 - sum % 10) % 10
}

fn card(r: &mut Rng, valid: bool) -> String {
    let (prefix, len) = match r.below(4) {
        0 => ("4", 16),
        1 => ("5", 16),
        2 => ("37", 15),
        _ => ("6011", 16),
    };
    let body = format!("{prefix}{}", r.digits(len - prefix.len() - 1));
    let check = luhn_digit(&body);
    let check = if valid {
        check
    } else {
        (check + 1 + r.below(9) as u32) % 10
    };
    let n = format!("{body}{check}");
    match (r.below(3), len) {
        (0, _) => n,
        (1, 16) => format!("{} {} {} {}", &n[0..4], &n[4..8], &n[8..12], &n[12..16]),
        (_, 16) => format!("{}-{}-{}-{}", &n[0..4], &n[4..8], &n[8..12], &n[12..16]),
        (_, _) => format!("{} {} {}", &n[0..4], &n[4..10], &n[10..15]),
    }
}

fn mod97(s: &str) -> u32 {
    s.bytes().fold(0, |acc, b| match b {
        b'0'..=b'9' => (acc * 10 + u32::from(b - b'0')) % 97,
        _ => (acc * 100 + u32::from(b - b'A' + 10)) % 97,
    })
}

fn iban(r: &mut Rng, valid: bool) -> String {
    let (cc, bban) = match r.below(3) {
        0 => ("DE", r.digits(18)),
        1 => (
            "GB",
            format!(
                "{}{}",
                r.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4),
                r.digits(14)
            ),
        ),
        _ => (
            "NL",
            format!(
                "{}{}",
                r.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ", 4),
                r.digits(10)
            ),
        ),
    };
    let check = 98 - mod97(&format!("{bban}{cc}00"));
    let check = if valid { check } else { (check + 1) % 100 };
    let s = format!("{cc}{check:02}{bban}");
    if r.below(2) == 0 {
        s
    } else {
        s.as_bytes()
            .chunks(4)
            .map(|c| std::str::from_utf8(c).unwrap())
            .collect::<Vec<_>>()
            .join(" ")
    }
}

fn ssn(r: &mut Rng, valid: bool) -> String {
    if valid {
        let area = loop {
            let a = 1 + r.below(899);
            if a != 666 {
                break a;
            }
        };
        format!("{area:03}-{:02}-{:04}", 1 + r.below(99), 1 + r.below(9999))
    } else {
        match r.below(4) {
            0 => format!("000-{:02}-{:04}", 1 + r.below(99), 1 + r.below(9999)),
            1 => format!("666-{:02}-{:04}", 1 + r.below(99), 1 + r.below(9999)),
            2 => format!(
                "9{}-{:02}-{:04}",
                r.digits(2),
                1 + r.below(99),
                1 + r.below(9999)
            ),
            _ => format!("{:03}-00-{:04}", 1 + r.below(665), 1 + r.below(9999)),
        }
    }
}

fn phone(r: &mut Rng) -> String {
    let ex = 2 + r.below(8);
    match r.below(6) {
        0 => format!("+1 415 {ex}{} {}", r.digits(2), r.digits(4)),
        1 => format!("+44 20 7946 {}", r.digits(4)),
        2 => format!(
            "({}{}) {ex}{}-{}",
            2 + r.below(8),
            r.digits(2),
            r.digits(2),
            r.digits(4)
        ),
        3 => format!(
            "{}{}-{ex}{}-{}",
            2 + r.below(8),
            r.digits(2),
            r.digits(2),
            r.digits(4)
        ),
        4 => format!("+49{}", r.digits(11)),
        _ => format!(
            "+33 6 {} {} {} {}",
            r.digits(2),
            r.digits(2),
            r.digits(2),
            r.digits(2)
        ),
    }
}

fn b64url(bytes: &[u8]) -> String {
    const A: &[u8] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut out = String::new();
    for c in bytes.chunks(3) {
        let n = c.iter().fold(0u32, |a, b| (a << 8) | u32::from(*b)) << (8 * (3 - c.len()));
        for i in 0..=c.len() {
            out.push(A[((n >> (18 - 6 * i)) & 63) as usize] as char);
        }
    }
    out
}

/// One generated value: (detector, the text to plant, the fragments that
/// must disappear).
fn planted(r: &mut Rng, detector: &str) -> (String, Vec<String>) {
    let v = match detector {
        "email" => format!(
            "{}.{}{}@{}.{}",
            r.pick(&["ana", "li", "marc", "zoe", "ken"]),
            r.pick(&["ruiz", "wong", "smith", "okafor"]),
            r.below(100),
            r.pick(&["example", "corp-mail", "uni"]),
            r.pick(&["com", "org", "co.uk", "io"])
        ),
        "phone" => phone(r),
        "credit_card" => card(r, true),
        "ssn" => ssn(r, true),
        "iban" => iban(r, true),
        "ipv4" => format!("10.{}.{}.{}", r.below(256), r.below(256), 1 + r.below(254)),
        "ipv6" => format!("2001:db8:{:x}::{:x}", r.below(65536), 1 + r.below(65535)),
        "jwt" => format!(
            "{}.{}.{}",
            b64url(br#"{"alg":"RS256","typ":"JWT"}"#),
            b64url(format!(r#"{{"sub":"user{}","exp":1700000000}}"#, r.below(1000)).as_bytes()),
            r.chars(ALNUM, 43)
        ),
        "aws_access_key" => format!("AKIA{}", r.chars(b"ABCDEFGHIJKLMNOPQRSTUVWXYZ234567", 16)),
        "github_token" => format!("ghp_{}", r.chars(ALNUM, 36)),
        "anthropic_key" => format!("sk-ant-api03-{}", r.chars(ALNUM, 80)),
        "openai_key" => format!("sk-proj-{}9", r.chars(ALNUM, 40)),
        "slack_token" => format!(
            "xoxb-{}-{}-{}",
            r.digits(12),
            r.digits(13),
            r.chars(ALNUM, 24)
        ),
        "stripe_key" => format!("sk_live_{}", r.chars(ALNUM, 24)),
        "google_api_key" => format!("AIza{}", r.chars(ALNUM, 35)),
        "aws_secret_key" => {
            let secret = r.chars(B64, 40);
            return (format!("aws_secret_access_key={secret}"), vec![secret]);
        }
        "credential" => {
            let secret = format!("{}{}!", r.pick(&["Hunter", "Summer", "Blue"]), r.digits(4));
            return (format!("password: {secret}"), vec![secret]);
        }
        "private_key" => {
            let (l1, l2) = (r.chars(B64, 64), r.chars(B64, 40));
            return (
                format!("-----BEGIN PRIVATE KEY-----\n{l1}\n{l2}\n-----END PRIVATE KEY-----"),
                vec![l1, l2],
            );
        }
        other => panic!("no generator for {other}"),
    };
    (v.clone(), vec![v])
}

/// Values that look like one but must not be masked.
fn decoy(r: &mut Rng) -> String {
    match r.below(10) {
        0 => card(r, false),
        1 => ssn(r, false),
        2 => iban(r, false),
        3 => format!("2024-{:02}-{:02}", 1 + r.below(12), 1 + r.below(28)),
        4 => format!("{:02}:{:02}:{:02}", r.below(24), r.below(60), r.below(60)),
        5 => format!("order #{}", r.digits(8)),
        6 => format!("v{}.{}.{}", r.below(10), r.below(20), r.below(50)),
        7 => format!("{:x}{:x}", r.next(), r.next()),
        8 => format!("ts {}", 1_600_000_000 + r.below(100_000_000)),
        _ => format!("{} units", r.below(100_000)),
    }
}

const DETECTORS: &[&str] = &[
    "email",
    "phone",
    "credit_card",
    "ssn",
    "iban",
    "ipv4",
    "ipv6",
    "jwt",
    "private_key",
    "aws_access_key",
    "aws_secret_key",
    "github_token",
    "anthropic_key",
    "openai_key",
    "slack_token",
    "stripe_key",
    "google_api_key",
    "credential",
];

fn generate(n: usize) -> Vec<Record> {
    let mut r = Rng(0x5EED_CAFE_F00D_1234);
    let fillers = [
        "Customer wrote in about the last invoice.",
        "Please update the record and close the ticket.",
        "Shipment left the warehouse on time.",
        "The agent summarised the call for the account team.",
    ];
    (0..n)
        .map(|i| {
            let mut text = String::new();
            let mut planted_vals = Vec::new();
            let mut decoys = Vec::new();
            for k in 0..3 {
                text.push_str(r.pick(&fillers));
                text.push(' ');
                let det = DETECTORS[(i * 3 + k) % DETECTORS.len()];
                let (v, frags) = planted(&mut r, det);
                text.push_str(&format!("Ref: {v}. "));
                planted_vals.push((det.to_string(), frags));
                let d = decoy(&mut r);
                text.push_str(&format!("Seen {d} before. "));
                decoys.push(d);
            }
            Record {
                text,
                planted: planted_vals,
                decoys,
            }
        })
        .collect()
}

#[derive(Default)]
struct Score {
    planted: u32,
    found: u32,
    hits: u32,
}

fn evaluate(
    m: &Masker,
    records: &[Record],
    as_json: bool,
) -> (BTreeMap<String, Score>, Vec<String>) {
    let mut scores: BTreeMap<String, Score> = BTreeMap::new();
    let mut failures = Vec::new();
    for rec in records {
        let (ct, body) = if as_json {
            (
                "application/json",
                serde_json::to_string(
                    &serde_json::json!({"messages":[{"role":"user","content":rec.text}]}),
                )
                .unwrap(),
            )
        } else {
            ("text/plain", rec.text.clone())
        };
        let out = m.mask(Some(ct), body.as_bytes());
        let masked = String::from_utf8(
            out.body
                .clone()
                .unwrap_or_else(|| body.clone().into_bytes()),
        )
        .unwrap();
        // Compare on the decoded text for JSON (escapes such as \n).
        let masked = if as_json {
            let v: serde_json::Value = serde_json::from_str(&masked).unwrap();
            v["messages"][0]["content"].as_str().unwrap().to_string()
        } else {
            masked
        };
        let mut expected: BTreeMap<&str, u32> = BTreeMap::new();
        for (det, frags) in &rec.planted {
            *expected.entry(det).or_default() += 1;
            let s = scores.entry(det.clone()).or_default();
            s.planted += 1;
            let leaked: Vec<&String> = frags
                .iter()
                .filter(|f| masked.contains(f.as_str()))
                .collect();
            if leaked.is_empty() && out.counts.get(det).copied().unwrap_or(0) > 0 {
                s.found += 1;
            }
            if !leaked.is_empty() {
                failures.push(format!("{det} {leaked:?} leaked in: {masked}"));
            }
        }
        for d in &rec.decoys {
            if !masked.contains(d.as_str()) {
                failures.push(format!("decoy {d:?} was masked: {masked} {:?}", out.counts));
            }
        }
        for (det, n) in &out.counts {
            let s = scores.entry(det.clone()).or_default();
            s.hits += n;
            let exp = expected.get(det.as_str()).copied().unwrap_or(0);
            if *n > exp {
                failures.push(format!("{det}: {n} masked, {exp} planted: {masked}"));
            }
        }
    }
    (scores, failures)
}

fn report(title: &str, scores: &BTreeMap<String, Score>) -> (f64, f64) {
    println!(
        "\n{title}\n{:<16} {:>7} {:>7} {:>9} {:>7}",
        "detector", "planted", "masked", "precision", "recall"
    );
    let (mut tp, mut hits, mut planted) = (0, 0, 0);
    for (det, s) in scores {
        let tp_d = s.found.min(s.hits);
        let precision = if s.hits == 0 {
            1.0
        } else {
            f64::from(tp_d) / f64::from(s.hits)
        };
        let recall = if s.planted == 0 {
            1.0
        } else {
            f64::from(s.found) / f64::from(s.planted)
        };
        println!(
            "{det:<16} {:>7} {:>7} {precision:>9.3} {recall:>7.3}",
            s.planted, s.hits
        );
        tp += tp_d;
        hits += s.hits;
        planted += s.planted;
    }
    let p = f64::from(tp) / f64::from(hits.max(1));
    let r = f64::from(scores.values().map(|s| s.found).sum::<u32>()) / f64::from(planted.max(1));
    println!("{:<16} {planted:>7} {hits:>7} {p:>9.3} {r:>7.3}", "all");
    (p, r)
}

#[test]
fn corpus_precision_recall_and_no_leaks() {
    let m = masker();
    let mut records = load_file();
    let generated = generate(300);
    assert!(generated.iter().all(|r| !r.planted.is_empty()));
    records.extend(generated);
    let mut all_failures = Vec::new();
    for as_json in [false, true] {
        let (scores, failures) = evaluate(&m, &records, as_json);
        let (p, r) = report(if as_json { "as JSON" } else { "as text" }, &scores);
        for f in &failures {
            println!("FAIL: {f}");
        }
        assert!(p >= 0.99 && r >= 0.99, "precision {p} recall {r}");
        all_failures.extend(failures);
    }
    assert!(
        all_failures.is_empty(),
        "{} failures (printed above)",
        all_failures.len()
    );
}
