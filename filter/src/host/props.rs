//! Reading Envoy's attributes (`request.*`, `response.*`, `connection.*`).
//! Integers arrive as 8-byte little-endian values; strings as bytes.

use std::time::Duration;

use proxy_wasm::hostcalls;

fn bytes(path: &[&str]) -> Option<Vec<u8>> {
    hostcalls::get_property(path.to_vec()).ok().flatten()
}

pub fn u64_prop(path: &[&str]) -> Option<u64> {
    let b = bytes(path)?;
    let arr: [u8; 8] = b.get(..8)?.try_into().ok()?;
    Some(u64::from_le_bytes(arr))
}

pub fn string_prop(path: &[&str]) -> Option<String> {
    bytes(path).map(|b| String::from_utf8_lossy(&b).into_owned())
}

pub fn duration_prop(path: &[&str]) -> Option<Duration> {
    u64_prop(path).map(Duration::from_nanos)
}

/// True when the downstream connection is TLS. Any failure to tell counts as
/// plaintext, so `require_tls` fails closed.
pub fn downstream_tls() -> bool {
    bytes(&["connection", "tls_version"]).is_some_and(|v| !v.is_empty())
}
