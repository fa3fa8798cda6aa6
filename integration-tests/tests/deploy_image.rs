//! The module as users fetch it: the OCI image `cargo xtask image` builds,
//! pushed to a real registry (CNCF distribution) and pulled back by digest
//! with skopeo; and Envoy 1.40 loading the module from an HTTP source with
//! its sha256, as Envoy Gateway hands modules to its Envoys.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use integration_tests::containers::{checked, wait_for, Registry};
use integration_tests::envoy::{admin_get, command};
use integration_tests::gateway::{gateway_template, Gateway, Options};
use integration_tests::oci::{self, LAYER_MEDIA_TYPE, MANIFEST_MEDIA_TYPE, PLUGIN_FILE};
use integration_tests::paths::{scratch_dir, wasm_module};
use serde_json::Value;

fn skopeo(args: &[&str]) -> Vec<u8> {
    checked(Command::new("skopeo").args(args)).unwrap().stdout
}

#[test]
fn the_module_image_goes_through_a_registry_unchanged() {
    let dir = scratch_dir("deploy-oci").unwrap();
    let wasm = wasm_module().unwrap();
    let module = std::fs::read(&wasm).unwrap();

    // Reproducible: two builds of the same module, one digest.
    let image = oci::build(&wasm, &dir.join("layout"), "test").unwrap();
    let again = oci::build(&wasm, &dir.join("again"), "test").unwrap();
    assert_eq!(image.digest, again.digest);

    let registry = Registry::start(&dir.join("registry")).unwrap();
    let repo = format!("{}/transit-guard", registry.addr);
    oci::push(&image, &format!("{repo}:test"), false).unwrap();

    // Pulled back by digest: the manifest is the one we built, one layer of
    // the media type Istio and Envoy Gateway read.
    let by_digest = format!("docker://{repo}@{}", image.digest);
    let raw = skopeo(&["inspect", "--tls-verify=false", "--raw", &by_digest]);
    assert_eq!(oci::sha256_digest(&raw), image.digest);
    let manifest: Value = serde_json::from_slice(&raw).unwrap();
    assert_eq!(manifest["mediaType"], MANIFEST_MEDIA_TYPE);
    assert_eq!(manifest["layers"].as_array().unwrap().len(), 1);
    assert_eq!(manifest["layers"][0]["mediaType"], LAYER_MEDIA_TYPE);
    // The tag resolves to the same digest.
    let tagged: Value = serde_json::from_slice(&skopeo(&[
        "inspect",
        "--tls-verify=false",
        &format!("docker://{repo}:test"),
    ]))
    .unwrap();
    assert_eq!(tagged["Digest"], image.digest.as_str());

    let pulled = dir.join("pulled");
    skopeo(&[
        "copy",
        "--quiet",
        "--src-tls-verify=false",
        &by_digest,
        &format!("oci:{}:pulled", pulled.display()),
    ]);
    let layer = manifest["layers"][0]["digest"].as_str().unwrap();
    let blob = pulled
        .join("blobs/sha256")
        .join(layer.trim_start_matches("sha256:"));
    let out = dir.join("unpacked");
    std::fs::create_dir_all(&out).unwrap();
    let listing = checked(
        Command::new("tar")
            .arg("-xzvf")
            .arg(&blob)
            .arg("-C")
            .arg(&out),
    )
    .unwrap();
    assert_eq!(String::from_utf8_lossy(&listing.stdout).trim(), PLUGIN_FILE);
    assert!(
        std::fs::read(out.join(PLUGIN_FILE)).unwrap() == module,
        "the pulled plugin.wasm differs from the module"
    );
}

/// `envoy/gateway.yaml` with the module fetched over HTTP (`code.remote`,
/// with `sha256`) from a `wasm_source` cluster instead of a local file.
fn remote_module_template(dir: &Path) -> PathBuf {
    let text = std::fs::read_to_string(gateway_template()).unwrap();
    let local = r#"code: { local: { filename: "${WASM}" } }"#;
    assert!(
        text.contains(local),
        "envoy/gateway.yaml changed its code line"
    );
    let remote = r#"code: { remote: { http_uri: { uri: "http://127.0.0.1:${WASM_PORT}/plugin.wasm", cluster: wasm_source, timeout: 10s }, sha256: "${WASM_SHA256}", retry_policy: { num_retries: 1 } } }"#;
    let mut text = text.replace(local, remote);
    text.push_str(
        r#"
  # Where the module is fetched from (Envoy Gateway's own HTTP server in a cluster).
  - name: wasm_source
    type: STATIC
    connect_timeout: 2s
    load_assignment:
      cluster_name: wasm_source
      endpoints:
      - lb_endpoints:
        - endpoint:
            address: { socket_address: { address: 127.0.0.1, port_value: ${WASM_PORT} } }
"#,
    );
    let path = dir.join("remote-module.yaml");
    std::fs::write(&path, text).unwrap();
    path
}

/// Serves the module over plain HTTP on loopback; counts the fetches.
async fn serve_module(
    module: Vec<u8>,
) -> (SocketAddr, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::sync::atomic::{AtomicUsize, Ordering};
    let hits = std::sync::Arc::new(AtomicUsize::new(0));
    let counter = hits.clone();
    let app = axum::Router::new().route(
        "/plugin.wasm",
        axum::routing::get(move || {
            counter.fetch_add(1, Ordering::SeqCst);
            let body = module.clone();
            async move { body }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        let _ = axum::serve(listener, app).await;
    });
    (addr, hits)
}

const POLICY: &str = r#"{
  "mode": "enforce",
  "default_action": "allow",
  "rules": [{ "name": "no-deletes", "match": { "methods": ["DELETE"] }, "action": "deny" }]
}"#;

#[tokio::test(flavor = "multi_thread")]
async fn envoy_loads_the_module_over_http_with_its_sha256() {
    let module = std::fs::read(wasm_module().unwrap()).unwrap();
    let (source, hits) = serve_module(module.clone()).await;
    let mut opts = Options::for_test("deploy-remote-module", POLICY).unwrap();
    opts.template = remote_module_template(&opts.dir);
    opts.extra_vars
        .insert("WASM_PORT", source.port().to_string());
    opts.extra_vars
        .insert("WASM_SHA256", oci::sha256_hex(&module));
    let gw = Gateway::start(opts).await.unwrap();
    assert!(hits.load(std::sync::atomic::Ordering::SeqCst) >= 1);

    // The fetched module is the filter: it denies by rule and lets the rest through.
    let client = gw.client().unwrap();
    let resp = client.get(gw.url("/customers")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client
        .delete(gw.url("/customers/c-1"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 403);
    let body: Value = resp.json().await.unwrap();
    assert_eq!(body["rule"], "no-deletes");
    assert_eq!(gw.upstream.requests().len(), 1);
}

/// A module whose bytes do not match `sha256` is never run. Envoy 1.40 does
/// not refuse to start over it: the listener comes up and, the filter being
/// FAIL_CLOSED, answers every request 503 without reaching the upstream (the
/// gateway-wide outage docs/deploy.md warns about).
#[tokio::test(flavor = "multi_thread")]
async fn a_module_with_the_wrong_sha256_is_never_run() {
    let module = std::fs::read(wasm_module().unwrap()).unwrap();
    let (source, hits) = serve_module(module.clone()).await;
    let dir = scratch_dir("deploy-wrong-sha").unwrap();
    let pki = integration_tests::certs::Pki::generate(&dir.join("certs")).unwrap();
    let upstream = integration_tests::upstream::Upstream::start(&pki)
        .await
        .unwrap();
    let mut vars: BTreeMap<&'static str, String> =
        integration_tests::gateway::template_vars(&pki.dir, POLICY, 0, 0, upstream.addr).unwrap();
    vars.insert("WASM_PORT", source.port().to_string());
    let mut wrong = oci::sha256_hex(&module).into_bytes();
    wrong[0] = if wrong[0] == b'0' { b'1' } else { b'0' };
    vars.insert("WASM_SHA256", String::from_utf8(wrong).unwrap());
    let config = integration_tests::envoy::EnvoyConfig {
        template: remote_module_template(&dir),
        vars,
        dir: dir.clone(),
    }
    .render()
    .unwrap();
    // Started by hand: the harness's Envoy fails any test whose log shows a
    // critical wasm line, and here that line is the point.
    let log = dir.join("envoy.log");
    let admin_file = dir.join("admin.address");
    let mut envoy = command(&config, &log, &admin_file, 1)
        .unwrap()
        .spawn()
        .unwrap();
    let admin = || -> Option<SocketAddr> {
        std::fs::read_to_string(&admin_file)
            .ok()?
            .trim()
            .parse()
            .ok()
    };
    wait_for("Envoy ready", Duration::from_secs(30), || {
        admin().is_some_and(|a| admin_get(a, "/ready").is_ok_and(|b| b.contains("LIVE")))
    })
    .unwrap();
    let failed = "Plugin configured to fail closed failed to load";
    let mut text = String::new();
    wait_for(
        "the module refused in Envoy's log",
        Duration::from_secs(30),
        || {
            text = std::fs::read_to_string(&log).unwrap_or_default();
            text.contains(failed)
        },
    )
    .unwrap_or_else(|e| panic!("{e}: {text}"));
    assert!(hits.load(std::sync::atomic::Ordering::SeqCst) >= 1);

    let listeners = admin_get(admin().unwrap(), "/listeners?format=json").unwrap();
    let v: Value = serde_json::from_str(&listeners).unwrap();
    let port = v["listener_statuses"][0]["local_address"]["socket_address"]["port_value"]
        .as_u64()
        .unwrap();
    let client = integration_tests::client::https_client(
        &pki.ca_pem,
        SocketAddr::from(([127, 0, 0, 1], port as u16)),
    )
    .unwrap();
    for _ in 0..3 {
        let resp = client
            .get(format!("https://localhost:{port}/customers"))
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 503);
    }
    assert!(
        upstream.requests().is_empty(),
        "a request reached the upstream"
    );
    let _ = envoy.kill();
    let _ = envoy.wait();
}
