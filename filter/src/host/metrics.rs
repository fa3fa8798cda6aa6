//! Counters, through proxy-wasm metrics: Envoy shows them on `/stats`
//! (`wasmcustom.transit_guard.*`) and `/stats/prometheus`.
//!
//! Names carry their label as the last segment (`transit_guard.requests.denied`);
//! ids are defined on first use and cached per worker VM.

use std::cell::RefCell;
use std::collections::HashMap;

use proxy_wasm::hostcalls;
use proxy_wasm::types::MetricType;

thread_local! {
    static IDS: RefCell<HashMap<String, u32>> = RefCell::new(HashMap::new());
}

/// Adds one to the counter `transit_guard.{family}.{label}`.
pub fn incr(family: &str, label: &str) {
    add(family, label, 1);
}

pub fn add(family: &str, label: &str, n: u64) {
    let name = format!("transit_guard.{family}.{}", sanitize(label));
    let id = IDS.with(|ids| {
        let mut ids = ids.borrow_mut();
        if let Some(id) = ids.get(&name) {
            return Some(*id);
        }
        let id = hostcalls::define_metric(MetricType::Counter, &name).ok()?;
        ids.insert(name.clone(), id);
        Some(id)
    });
    if let Some(id) = id {
        let _ = hostcalls::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
    }
}

/// Stat names are dotted: keep labels to one segment of safe characters.
fn sanitize(label: &str) -> String {
    label
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '_' || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect()
}
