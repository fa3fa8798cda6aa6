//! `cargo xtask bench`: the same Envoy config with and without transit-guard,
//! measured side by side in one run, the way Coraza's load test does it.
//!
//! Every front Envoy (`--concurrency 1`, TLS both legs) proxies to one upstream
//! Envoy answering fixed JSON bodies (`upstream`); wrk drives each front in
//! turn, warmed up, then measured alternately over several rounds. With two
//! cores or more the front under test is pinned to one core and the upstream
//! and wrk to the other (`cpu`), and the front's CPU time per request is
//! measured besides req/s and latency. The fronts:
//! Envoy alone, Envoy's native `jwt_authn`, Envoy alone with the gateway's
//! two access logs (CEL-filtered), the proxy-wasm floor (a Rust
//! module that does nothing, and one that makes the two host calls every
//! transit-guard request makes), transit-guard with only
//! `identity`, transit-guard with a base policy (TLS check and limits: the
//! module's own cost) and with a full policy (`policies`). An SSE
//! route (`sse`) gives the time to first byte; Envoy's heap is read with 1, 2
//! and 4 workers (`memory`). Then the core's criterion
//! benches and the JWT timing in V8 (`micro`). Only ratios measured in the
//! same run mean anything; nothing here asserts a time.

mod cpu;
mod memory;
mod micro;
mod policies;
mod report;
mod sse;
mod upstream;
mod wrk;

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::{bail, Context, Result};
use integration_tests::certs::Pki;
use integration_tests::envoy::{check_log_for_wasm_crash, Envoy, EnvoyConfig};
use integration_tests::gateway::{gateway_template, template_vars};
use integration_tests::paths::workspace_root;
use integration_tests::template::policy_literal;

use crate::setup;
use policies::{BenchIdentity, AUTHORITY};
use upstream::{body_name, BODIES, STREAM_PATH};

/// How long and how often; `--quick` is for checking the harness.
pub struct Settings {
    pub quick: bool,
    pub warmup_secs: u32,
    pub secs: u32,
    pub rounds: u32,
    /// SSE requests per front and round.
    pub sse_requests: usize,
    /// Front on one core, upstream and wrk on the other (`cpu`).
    pub pinned: bool,
}

/// One Envoy under test.
pub struct Front {
    pub label: &'static str,
    pub envoy: Envoy,
    /// Refuses a request without the token (checked before measuring).
    pub needs_token: bool,
    /// Masks the response bodies (checked before measuring).
    pub masks: bool,
}

// Indexes into the fronts.
pub const ALONE: usize = 0;
pub const JWT_AUTHN: usize = 1;
/// Envoy alone with the gateway's two access logs (`gateway-logs.yaml`).
pub const ALONE_LOGS: usize = 2;
/// The proxy-wasm floor (`filter/examples/floor.rs`): a module that does
/// nothing, one that reads the request headers and sets one property, and
/// one that makes the base policy's host calls and nothing else.
pub const FLOOR_EMPTY: usize = 3;
pub const FLOOR_HEADERS: usize = 4;
pub const FLOOR_CALLS: usize = 5;
pub const TG_BASE: usize = 6;
pub const TG_JWT: usize = 7;
pub const TG_FULL: usize = 8;

/// Which fronts are measured on which body: every front on 3 KB (the JWT
/// comparison, and the module's own cost with a policy that checks only TLS
/// and limits), Envoy alone and the full policy on every size.
pub fn fronts_for(path: &str) -> &'static [usize] {
    if body_name(path) == "3k" {
        &[
            ALONE,
            JWT_AUTHN,
            ALONE_LOGS,
            FLOOR_EMPTY,
            FLOOR_HEADERS,
            FLOOR_CALLS,
            TG_BASE,
            TG_JWT,
            TG_FULL,
        ]
    } else {
        &[ALONE, TG_FULL]
    }
}

/// Everything measured, for the report.
pub struct Results {
    pub settings: Settings,
    /// (body index, front index) to one sample per round.
    pub http: BTreeMap<(usize, usize), Vec<wrk::Sample>>,
    /// Front index to (TTFB ms, last byte ms) per request.
    pub sse: BTreeMap<usize, Vec<(f64, f64)>>,
    /// Envoy's memory with and without the module, per worker count.
    pub memory: Vec<memory::Heap>,
    pub module_bytes: u64,
    pub micro: Vec<micro::Micro>,
    pub v8_jwt: String,
    /// `mask_json/pii` bodies in V8: (body, MB/s).
    pub v8_mask: Vec<(String, f64)>,
    /// The same natively, per CPU second.
    pub native_mask: Vec<(String, f64)>,
    pub load_before: String,
    pub load_after: String,
}

pub fn run(args: &[&str]) -> Result<()> {
    let quick = args.contains(&"--quick");
    // Envoy rows only: for profiling the fronts without rebuilding the benches.
    let no_micro = args.contains(&"--no-micro");
    if let Some(a) = args
        .iter()
        .find(|a| !matches!(**a, "--quick" | "--no-micro"))
    {
        bail!("unknown bench option {a:?} (only --quick, --no-micro)");
    }
    let settings = if quick {
        Settings {
            quick,
            warmup_secs: 1,
            secs: 3,
            rounds: 2,
            sse_requests: 5,
            pinned: cpu::can_pin(),
        }
    } else {
        Settings {
            quick,
            warmup_secs: 2,
            secs: 8,
            rounds: 5,
            sse_requests: 20,
            pinned: cpu::can_pin(),
        }
    };
    let load_before = loadavg();
    setup::ensure_wasm_target()?;
    let envoy_bin = setup::ensure_envoy()?;
    setup::ensure_wrk()?;
    // `TG_BENCH_WASM=path`: bench a module built elsewhere (another
    // branch's, to compare two builds on the same machine and day).
    let wasm = match std::env::var_os("TG_BENCH_WASM") {
        Some(path) => std::path::PathBuf::from(path),
        None => setup::build_wasm()?,
    };
    std::env::set_var("TG_ENVOY_BIN", &envoy_bin);
    std::env::set_var("TG_WASM", &wasm);
    // The floor fronts load this module instead, configured by name.
    let floor = BTreeMap::from([("WASM", setup::build_floor_wasm()?.display().to_string())]);

    // The core first: a build failure shows before the long part.
    let (micro, v8_jwt, v8_mask, native_mask) = if no_micro {
        let skipped = "(skipped: `--no-micro`)".to_string();
        (Vec::new(), skipped, Vec::new(), Vec::new())
    } else {
        (
            micro::criterion(quick)?,
            micro::wasm_identity_timing(quick)?,
            micro::mask_speed(quick, true)?,
            micro::mask_speed(quick, false)?,
        )
    };

    let dir = workspace_root().join("target/bench");
    if dir.exists() {
        std::fs::remove_dir_all(&dir)?;
    }
    let pki = Pki::generate(&dir.join("certs"))?;
    let ca_pem = std::fs::read_to_string(pki.path("ca.pem"))?;
    let id = BenchIdentity::new()?;
    let rt = tokio::runtime::Runtime::new()?;
    let sse_addr = rt.block_on(sse::start_source())?;
    let upstream = upstream::start(&dir, &pki, sse_addr.port())?;
    let up = upstream.listener("upstream");
    let load_cpu = settings.pinned.then_some(cpu::LOAD_CPU);
    if settings.pinned {
        cpu::pin(upstream.pid(), cpu::LOAD_CPU)?;
    }
    let jwks = BTreeMap::from([("JWKS", policy_literal(&id.jwks()))]);
    let bench = workspace_root().join("envoy/bench");
    let none = BTreeMap::new();
    let gateway = gateway_template();
    // One Envoy per row, started in this order: (label, run dir, config,
    // policy or plugin config, extra template values), then what the checks
    // expect of it (refuses without the token, masks the bodies).
    let front = |label, name: &str, config: &Path, policy: &str, extra, needs_token, masks| {
        let envoy = start_front(&dir, name, config, &pki, policy, up, extra)?;
        anyhow::Ok(Front {
            label,
            envoy,
            needs_token,
            masks,
        })
    };
    let fronts = vec![
        front(
            "Envoy alone (router only)",
            "alone",
            &bench.join("router-only.yaml"),
            "{}",
            &none,
            false,
            false,
        )?,
        front(
            "Envoy `jwt_authn` (RS256, local JWKS)",
            "jwt-authn",
            &bench.join("jwt-authn.yaml"),
            "{}",
            &jwks,
            true,
            false,
        )?,
        front(
            "Envoy alone with the gateway's access logs",
            "alone-logs",
            &bench.join("gateway-logs.yaml"),
            "{}",
            &none,
            false,
            false,
        )?,
        front(
            "floor: empty proxy-wasm module",
            "floor-empty",
            &gateway,
            "empty",
            &floor,
            false,
            false,
        )?,
        front(
            "floor: module reading the headers, one property at log",
            "floor-headers",
            &gateway,
            "headers",
            &floor,
            false,
            false,
        )?,
        front(
            "floor: module making the base policy's host calls",
            "floor-calls",
            &gateway,
            "calls",
            &floor,
            false,
            false,
        )?,
        front(
            "transit-guard, base policy (TLS check, limits)",
            "tg-base",
            &gateway,
            &base_policy()?,
            &none,
            false,
            false,
        )?,
        front(
            "transit-guard, JWT only",
            "tg-jwt",
            &gateway,
            &id.jwt_only_policy(),
            &none,
            true,
            false,
        )?,
        front(
            "transit-guard, full policy",
            "tg-full",
            &gateway,
            &id.full_policy()?,
            &none,
            true,
            true,
        )?,
    ];
    if settings.pinned {
        for front in &fronts {
            cpu::pin(front.envoy.pid(), cpu::FRONT_CPU)?;
        }
    }
    rt.block_on(check_fronts(&fronts, &ca_pem, &id.token))?;

    let headers = [
        format!("Host: {AUTHORITY}"),
        format!("Authorization: Bearer {}", id.token),
    ];
    let measure = |f: usize, path: &str, secs: u32| {
        let envoy = &fronts[f].envoy;
        let port = envoy.listener("https").port();
        wrk::run(port, path, &headers, secs, envoy.pid(), load_cpu)
    };
    eprintln!("xtask: bench: warming up");
    for (path, _) in BODIES {
        for &f in fronts_for(path) {
            measure(f, path, settings.warmup_secs)?;
        }
    }
    let mut http: BTreeMap<(usize, usize), Vec<wrk::Sample>> = BTreeMap::new();
    for round in 1..=settings.rounds {
        for (b, (path, _)) in BODIES.iter().enumerate() {
            for &f in fronts_for(path) {
                eprintln!(
                    "xtask: bench: round {round}/{}: {} {path}",
                    settings.rounds, fronts[f].label
                );
                let s = measure(f, path, settings.secs)?;
                http.entry((b, f)).or_default().push(s);
            }
        }
    }

    eprintln!("xtask: bench: SSE time to first byte");
    let sse = rt.block_on(measure_sse(&fronts, &ca_pem, &id.token, &settings))?;

    for front in &fronts {
        check_log_for_wasm_crash(&front.envoy.log())
            .with_context(|| format!("{} crashed during the run", front.label))?;
    }
    eprintln!("xtask: bench: Envoy's heap with 1, 2 and 4 workers");
    let full_policy = id.full_policy()?;
    let memory = memory::measure(&memory::Setup {
        dir: &dir,
        pki: &pki,
        upstream: up,
        policy: &full_policy,
        headers: &headers,
        pinned: settings.pinned,
        quick,
    })?;

    let results = Results {
        settings,
        http,
        sse,
        memory,
        module_bytes: std::fs::metadata(&wasm)?.len(),
        micro,
        v8_jwt,
        v8_mask,
        native_mask,
        load_before,
        load_after: loadavg(),
    };
    let report = report::render(&fronts, &results)?;
    println!("{report}");
    let out = dir.join("report.md");
    std::fs::write(&out, &report)?;
    eprintln!("xtask: bench: report written to {}", out.display());
    Ok(())
}

fn start_front(
    dir: &Path,
    name: &str,
    template: &Path,
    pki: &Pki,
    policy: &str,
    upstream: SocketAddr,
    extra: &BTreeMap<&'static str, String>,
) -> Result<Envoy> {
    start_front_with(dir, name, template, pki, policy, upstream, extra, 1)
}

/// As [`start_front`], with `workers` worker threads.
#[allow(clippy::too_many_arguments)]
pub(crate) fn start_front_with(
    dir: &Path,
    name: &str,
    template: &Path,
    pki: &Pki,
    policy: &str,
    upstream: SocketAddr,
    extra: &BTreeMap<&'static str, String>,
    workers: u32,
) -> Result<Envoy> {
    let run_dir = dir.join(name);
    std::fs::create_dir_all(&run_dir)?;
    let mut vars = template_vars(&pki.dir, policy, 0, 0, upstream)?;
    vars.insert(
        "AUDIT_LOG",
        run_dir.join("access.log").display().to_string(),
    );
    vars.extend(extra.clone());
    Envoy::start_with(
        &EnvoyConfig {
            template: template.to_path_buf(),
            vars,
            dir: run_dir,
        },
        workers,
    )
    .with_context(|| format!("starting the {name} front"))
}

/// Before measuring: every front answers 200 with the token on each of its
/// bodies, masks when it should (and only then), and refuses the request
/// without the token when it checks identity; otherwise the rows would
/// measure error replies.
async fn check_fronts(fronts: &[Front], ca_pem: &str, token: &str) -> Result<()> {
    for (i, front) in fronts.iter().enumerate() {
        let client = sse::client(ca_pem, front.envoy.listener("https"))?;
        let port = front.envoy.listener("https").port();
        for (path, _) in BODIES.iter().filter(|(p, _)| fronts_for(p).contains(&i)) {
            let url = format!("https://localhost:{port}{path}");
            let resp = client
                .get(&url)
                .header("host", AUTHORITY)
                .bearer_auth(token)
                .send()
                .await?;
            let status = resp.status();
            let body = resp.text().await?;
            if status != 200 {
                bail!("{}: {path} answered {status}: {body:.300}", front.label);
            }
            // Every record carries this SSN; the full policy redacts it.
            if body.contains("123-45-6789") == front.masks {
                bail!(
                    "{}: {path} was {}masked",
                    front.label,
                    if front.masks { "not " } else { "" }
                );
            }
        }
        let resp = client
            .get(format!("https://localhost:{port}/customers/3k"))
            .header("host", AUTHORITY)
            .send()
            .await?;
        if front.needs_token != (resp.status() == 401) {
            bail!(
                "{}: a request without a token answered {}",
                front.label,
                resp.status()
            );
        }
    }
    Ok(())
}

/// SSE requests through each front, alternating fronts per round, after one
/// unmeasured request each.
async fn measure_sse(
    fronts: &[Front],
    ca_pem: &str,
    token: &str,
    settings: &Settings,
) -> Result<BTreeMap<usize, Vec<(f64, f64)>>> {
    let mut clients = Vec::new();
    for front in fronts {
        let addr = front.envoy.listener("https");
        let client = sse::client(ca_pem, addr)?;
        let url = format!("https://localhost:{}{STREAM_PATH}", addr.port());
        sse::fetch(&client, &url, AUTHORITY, token)
            .await
            .with_context(|| front.label)?;
        clients.push((client, url));
    }
    let mut out: BTreeMap<usize, Vec<(f64, f64)>> = BTreeMap::new();
    for _ in 0..settings.rounds {
        for (f, (client, url)) in clients.iter().enumerate() {
            for _ in 0..settings.sse_requests {
                let t = sse::fetch(client, url, AUTHORITY, token).await?;
                out.entry(f).or_default().push(t);
            }
        }
    }
    Ok(out)
}

/// Transport and size checks only (no identity, rules or masking): what the
/// module costs before it has anything to decide.
fn base_policy() -> Result<String> {
    Ok(r#"{"mode":"enforce","require_tls":true,"limits":{"max_body_bytes":1048576}}"#.to_string())
}

/// `/proc/loadavg`'s 1, 5 and 15 minute averages (the machine is shared).
fn loadavg() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

#[cfg(test)]
mod tests {
    use integration_tests::paths::workspace_root;

    /// The access logs from `access_log:` to `route_config:`.
    fn access_logs(file: &str) -> String {
        let yaml = std::fs::read_to_string(workspace_root().join(file)).unwrap();
        let (start, end) = (
            yaml.find("          access_log:\n").unwrap(),
            yaml.find("          route_config:\n").unwrap(),
        );
        yaml[start..end].to_string()
    }

    #[test]
    fn the_logs_twin_logs_as_the_gateway_does() {
        assert_eq!(
            access_logs("envoy/bench/gateway-logs.yaml"),
            access_logs("envoy/gateway.yaml")
        );
    }
}
