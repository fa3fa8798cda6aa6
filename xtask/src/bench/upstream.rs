//! The bench's upstream: an Envoy answering fixed customer-records bodies over
//! TLS (`envoy/bench/upstream.yaml`), so the front under test is the only
//! variable, and passing `/customers/stream` to the SSE source.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::path::Path;

use anyhow::Result;
use integration_tests::certs::Pki;
use integration_tests::envoy::{Envoy, EnvoyConfig};
use integration_tests::paths::workspace_root;

/// Response bodies: the upstream's path and the body's approximate size.
pub const BODIES: &[(&str, usize)] = &[
    ("/customers/1k", 1024),
    ("/customers/3k", 3 * 1024),
    ("/customers/64k", 64 * 1024),
    ("/customers/1m", 1024 * 1024),
];

/// The SSE route (served by [`super::sse`]).
pub const STREAM_PATH: &str = "/customers/stream";

/// `1k` for `/customers/1k`: the body's name in tables and file names.
pub fn body_name(path: &str) -> &str {
    path.rsplit('/').next().unwrap_or(path)
}

pub fn start(dir: &Path, pki: &Pki, sse_port: u16) -> Result<Envoy> {
    let body_dir = dir.join("bodies");
    write_bodies(&body_dir)?;
    let run_dir = dir.join("upstream");
    std::fs::create_dir_all(&run_dir)?;
    Envoy::start(&EnvoyConfig {
        template: workspace_root().join("envoy/bench/upstream.yaml"),
        vars: BTreeMap::from([
            ("ADMIN_PORT", "0".to_string()),
            ("UPSTREAM_PORT", "0".to_string()),
            ("CERT_DIR", pki.dir.display().to_string()),
            ("BODY_DIR", body_dir.display().to_string()),
            ("SSE_PORT", sse_port.to_string()),
        ]),
        dir: run_dir,
    })
}

/// Customer records (emails, phones, cards, SSNs) to about `size` bytes.
pub fn customer_records(size: usize) -> String {
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

fn write_bodies(dir: &Path) -> Result<()> {
    std::fs::create_dir_all(dir)?;
    for (path, size) in BODIES {
        std::fs::write(
            dir.join(format!("{}.json", body_name(path))),
            customer_records(*size),
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bodies_have_the_size_asked_for() {
        for (_, size) in BODIES {
            let body = customer_records(*size);
            assert!(
                body.len() <= *size && body.len() + 400 > *size,
                "{} vs {size}",
                body.len()
            );
            serde_json::from_str::<serde_json::Value>(&body).unwrap();
        }
    }

    #[test]
    fn the_upstream_config_serves_every_body() {
        let yaml =
            std::fs::read_to_string(workspace_root().join("envoy/bench/upstream.yaml")).unwrap();
        for (path, _) in BODIES {
            assert!(yaml.contains(&format!("path: \"{path}\"")), "{path}");
            assert!(
                yaml.contains(&format!("{}.json", body_name(path))),
                "{path}"
            );
        }
        assert!(yaml.contains(&format!("path: \"{STREAM_PATH}\"")));
    }
}
