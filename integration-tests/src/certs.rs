//! A throwaway PKI made at run time: one CA, a gateway certificate for the
//! agent-facing listener and an upstream certificate. Nothing is committed.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use rcgen::{BasicConstraints, CertificateParams, DnType, IsCa, KeyPair, KeyUsagePurpose, SanType};

/// The name the demo and test upstreams answer to; Envoy verifies it.
pub const UPSTREAM_NAME: &str = "upstream.transit-guard.test";

pub struct Pki {
    pub dir: PathBuf,
    pub ca_pem: String,
}

impl Pki {
    /// Writes `ca.pem`, `gateway.pem`/`gateway-key.pem` (localhost, 127.0.0.1)
    /// and `upstream.pem`/`upstream-key.pem` ([`UPSTREAM_NAME`]) into `dir`.
    pub fn generate(dir: &Path) -> Result<Pki> {
        std::fs::create_dir_all(dir)?;
        let ca_key = KeyPair::generate()?;
        let mut ca_params = CertificateParams::new(Vec::<String>::new())?;
        ca_params
            .distinguished_name
            .push(DnType::CommonName, "transit-guard dev CA");
        ca_params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca_params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::CrlSign];
        let ca = ca_params.self_signed(&ca_key)?;
        let issuer = rcgen::Issuer::new(ca_params, ca_key);

        let leaf = |names: &[&str], file: &str| -> Result<()> {
            let mut params = CertificateParams::new(Vec::<String>::new())?;
            params.distinguished_name.push(DnType::CommonName, names[0]);
            for name in names {
                params.subject_alt_names.push(match name.parse() {
                    Ok(ip) => SanType::IpAddress(ip),
                    Err(_) => SanType::DnsName((*name).try_into()?),
                });
            }
            let key = KeyPair::generate()?;
            let cert = params.signed_by(&key, &issuer)?;
            write(dir, &format!("{file}.pem"), &cert.pem())?;
            write(dir, &format!("{file}-key.pem"), &key.serialize_pem())
        };
        leaf(&["localhost", "127.0.0.1", "::1"], "gateway")?;
        leaf(&[UPSTREAM_NAME, "localhost"], "upstream")?;
        write(dir, "ca.pem", &ca.pem())?;
        Ok(Pki {
            dir: dir.to_path_buf(),
            ca_pem: ca.pem(),
        })
    }

    pub fn path(&self, file: &str) -> PathBuf {
        self.dir.join(file)
    }
}

fn write(dir: &Path, name: &str, text: &str) -> Result<()> {
    let path = dir.join(name);
    std::fs::write(&path, text).with_context(|| format!("writing {}", path.display()))
}
