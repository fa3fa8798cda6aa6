//! The full policy's response masks (`examples/policies/customers-api.json`:
//! `"response": ["pii", "cards"]`) on the bench's customer records (3 KB
//! and 64 KB, as `xtask/src/bench/upstream.rs` makes them), in one pass
//! (the loader's chain, [`transit_guard::mask::apply::apply`]) or profile
//! by profile (`apply_in_order`, as before the chain), for callgrind:
//!
//! ```sh
//! valgrind --tool=callgrind target/release/examples/chain_cost one_pass 3072 3
//! valgrind --tool=callgrind target/release/examples/chain_cost in_order 3072 3
//! ```
//!
//! Arguments: `one_pass`, `in_order` or `pii_only` (the first profile
//! alone: the floor), the body's size, the runs. The
//! difference between 3 runs and 1 is two requests' masking, parse of the
//! readability check included (the flow's reading, reused by the masks).

// Measurement code, like tests, may panic: it never runs inside Envoy.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::fmt::Write;
use std::hint::black_box;

use transit_guard::body::Reading;
use transit_guard::config::Policy;
use transit_guard::mask::apply::{apply, apply_in_order};
use transit_guard::mask::Tokens;

/// `xtask/src/bench/upstream.rs`'s records, to about `size` bytes.
fn customer_records(size: usize) -> String {
    let mut out = String::from("{\"customers\":[");
    let mut i = 0u32;
    while out.len() + 260 < size {
        if i > 0 {
            out.push(',');
        }
        let _ = write!(
            out,
            "{{\"id\":\"c-{i:06}\",\"name\":\"Customer {i}\",\"email\":\"customer{i}@example.com\",\
             \"phone\":\"+1 415 555 {:04}\",\"card\":\"4111 1111 1111 1111\",\"ssn\":\"123-45-6789\",\
             \"note\":\"order {i} shipped, contact by email\"}}",
            i % 10000
        );
        i += 1;
    }
    out.push_str("]}");
    out
}

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mode = args.first().map(String::as_str);
    let (one_pass, n) = match mode {
        Some("one_pass") => (true, 2),
        Some("in_order") => (false, 2),
        Some("pii_only") => (false, 1),
        _ => panic!("usage: chain_cost one_pass|in_order|pii_only SIZE RUNS"),
    };
    let size: usize = args.get(1).map_or(3072, |s| s.parse().unwrap());
    let runs: usize = args.get(2).map_or(1, |s| s.parse().unwrap());
    let policy =
        Policy::from_json(include_bytes!("../../examples/policies/customers-api.json")).unwrap();
    let profiles = ["pii".to_string(), "cards".to_string()];
    let body = customer_records(size);
    let ct = Some("application/json");
    let mut masked = 0;
    for _ in 0..runs {
        let reading = Reading::lenient(ct, black_box(body.as_bytes()));
        let run = if one_pass { apply } else { apply_in_order };
        let out = run(
            &policy.masking,
            &profiles[..n],
            ct,
            body.as_bytes(),
            None,
            Some(&reading),
            &mut Tokens::default(),
        );
        masked += out.body.map_or(0, |b| b.len());
    }
    println!(
        "{} bytes, {runs} runs, {masked} bytes masked out",
        body.len()
    );
}
