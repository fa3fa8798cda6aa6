//! An HTTPS client that trusts only the run's CA, as an agent configured with
//! the gateway CA would.

use std::net::SocketAddr;

use anyhow::Result;

pub fn https_client(ca_pem: &str, gateway: SocketAddr) -> Result<reqwest::Client> {
    Ok(reqwest::Client::builder()
        .add_root_certificate(reqwest::Certificate::from_pem(ca_pem.as_bytes())?)
        .tls_built_in_root_certs(false)
        .resolve("localhost", gateway)
        .https_only(true)
        .build()?)
}
