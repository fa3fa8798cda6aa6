//! Envoy's memory with and without the module, at 1, 2 and 4 workers: each
//! worker has its own wasm VM, so the module's cost is per worker. Fresh
//! fronts (Envoy alone, and transit-guard with the full policy) are started
//! per worker count, driven for a moment on the 3 KB and 64 KB bodies (so
//! every VM has compiled its policy and grown its caches), then read: the
//! heap Envoy's allocator reports (admin `/memory`) and the process's
//! resident memory (`VmRSS`, which also counts V8's own mappings).

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::Path;

use anyhow::Result;
use integration_tests::certs::Pki;
use integration_tests::envoy::Envoy;
use integration_tests::gateway::gateway_template;
use integration_tests::paths::workspace_root;

use super::{cpu, start_front_with, wrk};

pub const WORKERS: [u32; 3] = [1, 2, 4];

/// One Envoy's memory after its warm-up.
pub struct Heap {
    pub workers: u32,
    /// False for Envoy alone.
    pub module: bool,
    /// Bytes in use by Envoy's allocator (`/memory` `allocated`).
    pub allocated: u64,
    pub rss: u64,
}

pub struct Setup<'a> {
    pub dir: &'a Path,
    pub pki: &'a Pki,
    pub upstream: SocketAddr,
    /// The full policy.
    pub policy: &'a str,
    pub headers: &'a [String],
    pub pinned: bool,
    pub quick: bool,
}

pub fn measure(s: &Setup) -> Result<Vec<Heap>> {
    let mut out = Vec::new();
    for workers in WORKERS {
        for module in [false, true] {
            let (name, template, policy) = if module {
                ("mem-tg", gateway_template(), s.policy)
            } else {
                (
                    "mem-alone",
                    workspace_root().join("envoy/bench/router-only.yaml"),
                    "{}",
                )
            };
            let envoy = start_front_with(
                s.dir,
                &format!("{name}-{workers}"),
                &template,
                s.pki,
                policy,
                s.upstream,
                &BTreeMap::new(),
                workers,
            )?;
            out.push(read(&envoy, workers, module, s)?);
        }
    }
    Ok(out)
}

fn read(envoy: &Envoy, workers: u32, module: bool, s: &Setup) -> Result<Heap> {
    let load_cpu = s.pinned.then_some(cpu::LOAD_CPU);
    // wrk's 16 connections spread over the workers (one listener socket
    // per worker, SO_REUSEPORT).
    let port = envoy.listener("https").port();
    for path in ["/customers/3k", "/customers/64k"] {
        wrk::run(
            port,
            path,
            s.headers,
            if s.quick { 1 } else { 2 },
            envoy.pid(),
            load_cpu,
        )?;
    }
    let mem: serde_json::Value = serde_json::from_str(&envoy.admin_get("/memory")?)?;
    let field = |k: &str| mem[k].as_str().and_then(|v| v.parse().ok()).unwrap_or(0);
    Ok(Heap {
        workers,
        module,
        allocated: field("allocated"),
        rss: cpu::rss_bytes(envoy.pid())?,
    })
}
