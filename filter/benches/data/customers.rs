//! The masking benchmarks' inputs, shared by `benches/mask.rs` (criterion,
//! native) and `examples/mask_speed.rs` (the same bodies timed in V8).

#![allow(dead_code)]

use transit_guard::mask::{compile, Masker, MaskingDoc};

/// Every built-in detector, `redact`: the cost of finding values.
pub fn masker() -> Masker {
    profile(r#"{"detectors":"all"}"#)
}

/// The same plus a field, a pointer, `hash` (one HMAC-SHA256 per email) and
/// `partial`: the cost of the strategies on top.
pub fn masker_with_strategies() -> Masker {
    profile(
        r#"{"detectors":"all","json_fields":["password"],"json_pointers":["/customers/*/address"],
            "strategies":{"credit_card":{"partial":4},"email":"hash"}}"#,
    )
}

pub fn profile(json: &str) -> Masker {
    let doc: MaskingDoc = serde_json::from_str(&format!(
        r#"{{"hash_key":"bench-key-0123456789","profiles":{{"p":{json}}}}}"#
    ))
    .unwrap();
    compile(&doc).unwrap().profile("p").unwrap().clone()
}

/// A customers API page: about one value in four sensitive, the rest ids,
/// names, dates, prose.
pub fn customers_json(target: usize, with_pii: bool) -> Vec<u8> {
    let mut out = String::from("{\"page\":1,\"customers\":[");
    let mut i = 0u64;
    while out.len() < target {
        if i > 0 {
            out.push(',');
        }
        let (email, phone, card, ssn) = if with_pii {
            (
                format!("user{i}@example.com"),
                format!("+1 415 555 {:04}", i % 10000),
                "4111 1111 1111 1111".to_string(),
                format!(
                    "{:03}-{:02}-{:04}",
                    100 + i % 500,
                    10 + i % 80,
                    1000 + i % 8000
                ),
            )
        } else {
            (
                format!("user{i}"),
                "unlisted".to_string(),
                "none".to_string(),
                "n/a".to_string(),
            )
        };
        out.push_str(&format!(
            r#"{{"id":{i},"uuid":"7f9c{i:08x}-1c2d-4e5f-8a9b-0c1d2e3f4a5b","name":"Customer Number {i}","email":"{email}","phone":"{phone}","card":"{card}","ssn":"{ssn}","address":{{"street":"{n} Market Street","city":"San Francisco","zip":"94105"}},"created_at":"2024-03-{d:02}T10:15:30Z","plan":"enterprise","active":true,"balance":{b}.25,"notes":"Customer asked about the invoice from last month and wants a callback next week; no further action needed.","tags":["priority","west","renewal"]}}"#,
            n = 100 + i % 900,
            d = 1 + i % 28,
            b = i * 37 % 10000,
        ));
        i += 1;
    }
    out.push_str("]}");
    out.into_bytes()
}
