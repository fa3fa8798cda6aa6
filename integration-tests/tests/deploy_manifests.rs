//! The deployment manifests, checked with real tools: the Helm chart rendered
//! and linted by Helm's engine, its output and the Istio and Envoy Gateway
//! examples validated against Kubernetes' schemas (PyPI
//! `kubernetes-validate`, core kinds), every custom resource of a documented
//! apiVersion and kind, every embedded policy accepted by the filter's own
//! parser, and the compose file accepted by `docker-compose config`.
//! No Kubernetes control plane runs here: nothing is applied to a cluster.

use std::path::{Path, PathBuf};
use std::process::Command;

use integration_tests::containers::checked;
use integration_tests::paths::{scratch_dir, workspace_root};
use serde_json::Value;

/// The custom resources the examples use, as their projects document them.
const CUSTOM_KINDS: &[(&str, &str)] = &[
    ("extensions.istio.io/v1alpha1", "WasmPlugin"),
    ("networking.istio.io/v1", "ServiceEntry"),
    ("networking.istio.io/v1", "DestinationRule"),
    ("networking.istio.io/v1", "Gateway"),
    ("networking.istio.io/v1", "VirtualService"),
    ("gateway.envoyproxy.io/v1alpha1", "EnvoyExtensionPolicy"),
    ("gateway.envoyproxy.io/v1alpha1", "EnvoyPatchPolicy"),
    ("gateway.networking.k8s.io/v1", "HTTPRoute"),
];

fn python() -> PathBuf {
    workspace_root().join(".venv/bin/python")
}

fn examples() -> Vec<PathBuf> {
    let mut files = Vec::new();
    for dir in ["examples/istio", "examples/envoy-gateway"] {
        for e in std::fs::read_dir(workspace_root().join(dir)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "yaml") {
                files.push(p);
            }
        }
    }
    files.sort();
    assert!(files.len() >= 5, "examples missing: {files:?}");
    files
}

fn documents(path: &Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap();
    serde_yaml_ng::Deserializer::from_str(&text)
        .map(|d| {
            let v: serde_yaml_ng::Value = serde::Deserialize::deserialize(d)
                .unwrap_or_else(|e| panic!("{}: not YAML: {e}", path.display()));
            serde_json::to_value(v).unwrap()
        })
        .filter(|v| !v.is_null())
        .collect()
}

/// Renders the chart with these values into `out` (fails on lint warnings).
fn render_chart(values: &Value, out: &Path) -> std::process::Output {
    Command::new(python())
        .arg(workspace_root().join("integration-tests/deploy/render_chart.py"))
        .arg(workspace_root().join("deploy/helm/transit-guard-approver"))
        .arg(values.to_string())
        .arg(out)
        .args(["transit-guard-approver", "transit-guard"])
        .output()
        .unwrap()
}

/// kubernetes-validate --strict: core kinds must pass; the only warnings
/// allowed are the missing schemas of the custom kinds above.
fn kubernetes_validate(files: &[PathBuf]) {
    let out = checked(
        Command::new(workspace_root().join(".venv/bin/kubernetes-validate"))
            .args(["--strict", "--quiet"])
            .args(files),
    )
    .unwrap();
    let text =
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr);
    for line in text.lines().filter(|l| !l.trim().is_empty()) {
        let custom = CUSTOM_KINDS.iter().any(|(api, kind)| {
            line.contains(&format!(
                "Couldn't find schema for kind {kind} with api version {api}"
            ))
        });
        assert!(custom, "kubernetes-validate: {line}");
    }
}

#[test]
fn the_chart_renders_to_valid_kubernetes_objects() {
    let dir = scratch_dir("deploy-chart").unwrap();
    let out = dir.join("approver.yaml");
    let values = serde_json::json!({
        "secret": {
            "filterKeys": ["0123456789abcdef0123456789abcdef"],
            "reviewers": [{ "name": "alice", "token": "alice-token-0123456789abcdef" }]
        },
        "webhook": { "url": "https://hooks.example.com/x" }
    });
    let r = render_chart(&values, &out);
    assert!(
        r.status.success(),
        "{}",
        String::from_utf8_lossy(&r.stdout) + String::from_utf8_lossy(&r.stderr)
    );
    kubernetes_validate(std::slice::from_ref(&out));

    let docs = documents(&out);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(
        kinds,
        ["Deployment", "PersistentVolumeClaim", "Secret", "Service"]
    );
    let deploy = &docs[0];
    let pod = &deploy["spec"]["template"]["spec"];
    let c = &pod["containers"][0];
    assert_eq!(pod["securityContext"]["runAsNonRoot"], true);
    assert_eq!(c["securityContext"]["readOnlyRootFilesystem"], true);
    assert_eq!(c["securityContext"]["allowPrivilegeEscalation"], false);
    assert_eq!(c["livenessProbe"]["httpGet"]["path"], "/healthz");
    assert_eq!(c["readinessProbe"]["httpGet"]["path"], "/healthz");
    assert!(c["resources"]["limits"]["memory"].is_string());
    assert_eq!(deploy["spec"]["strategy"]["type"], "Recreate");
    assert_eq!(
        pod["volumes"][0]["persistentVolumeClaim"]["claimName"],
        "transit-guard-approver"
    );
    let env: Vec<&str> = c["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["name"].as_str().unwrap())
        .collect();
    for name in [
        "TG_APPROVER_FILTER_KEY",
        "TG_APPROVER_REVIEWERS",
        "TG_APPROVER_DB",
        "TG_APPROVER_WEBHOOK",
    ] {
        assert!(env.contains(&name), "{name} missing: {env:?}");
    }
    let secret = &docs[2];
    assert_eq!(
        secret["stringData"]["reviewers"],
        "alice=alice-token-0123456789abcdef"
    );
    assert_eq!(docs[3]["metadata"]["name"], "transit-guard-approver");

    // An existing Secret and no volume: no Secret, no PVC rendered.
    let out2 = dir.join("existing.yaml");
    let values = serde_json::json!({
        "secret": { "existingSecret": "approver-keys" },
        "persistence": { "enabled": false }
    });
    let r = render_chart(&values, &out2);
    assert!(r.status.success(), "{}", String::from_utf8_lossy(&r.stderr));
    let docs = documents(&out2);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["Deployment", "Service"]);

    // No key at all: the chart refuses to render.
    let r = render_chart(&serde_json::json!({}), &dir.join("none.yaml"));
    assert!(!r.status.success());
    assert!(String::from_utf8_lossy(&r.stderr).contains("secret.filterKeys"));
}

/// The container's environment: name -> the entry (value or valueFrom).
fn env_of(deploy: &Value) -> std::collections::BTreeMap<String, Value> {
    deploy["spec"]["template"]["spec"]["containers"][0]["env"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["name"].as_str().unwrap().to_string(), e.clone()))
        .collect()
}

/// Every environment variable the approver reads (its clap `env` names).
fn approver_env_names() -> std::collections::BTreeSet<String> {
    use clap::CommandFactory;
    transit_guard_approver::Args::command()
        .get_arguments()
        .filter_map(|a| a.get_env())
        .map(|e| e.to_string_lossy().into_owned())
        .collect()
}

#[test]
fn the_chart_runs_replicas_on_postgres_with_oidc_and_policies() {
    let dir = scratch_dir("deploy-chart-teams").unwrap();
    let out = dir.join("approver.yaml");
    let policies = serde_json::json!({
        "default": { "approvals": 1 },
        "rules": {
            "db-write": { "groups": ["dba"], "approvals": 2, "max_grant_secs": 3600 },
            "card-export": { "grants": false }
        },
        "reviewers": { "alice": { "groups": ["dba"] } }
    });
    let values = serde_json::json!({
        "replicaCount": 3,
        "secret": {
            "filterKeys": ["0123456789abcdef0123456789abcdef"],
            "webhookSecret": "webhook-secret-0123456789",
            "oidcClientSecret": "client-secret-0123456789",
            "sessionSecret": "session-secret-0123456789abcdef0123456789"
        },
        "postgres": { "existingSecret": "approver-db" },
        "oidc": { "issuer": "https://idp.example.com", "clientId": "approver" },
        "publicUrl": "https://approvals.example.com",
        "webhook": { "url": "https://hooks.example.com/x" },
        "policies": policies
    });
    let r = render_chart(&values, &out);
    assert!(
        r.status.success(),
        "{}",
        String::from_utf8_lossy(&r.stdout) + String::from_utf8_lossy(&r.stderr)
    );
    kubernetes_validate(std::slice::from_ref(&out));
    let docs = documents(&out);
    let kinds: Vec<&str> = docs.iter().map(|d| d["kind"].as_str().unwrap()).collect();
    // Postgres holds the state: no PersistentVolumeClaim.
    assert_eq!(kinds, ["ConfigMap", "Deployment", "Secret", "Service"]);
    let (config_map, deploy, secret) = (&docs[0], &docs[1], &docs[2]);
    assert_eq!(deploy["spec"]["replicas"], 3);
    assert_eq!(deploy["spec"]["strategy"]["type"], "RollingUpdate");

    // Every variable is one the approver reads; secrets come from Secrets.
    let env = env_of(deploy);
    let known = approver_env_names();
    for name in env.keys().filter(|n| n.starts_with("TG_APPROVER_")) {
        assert!(known.contains(name), "the approver reads no {name}");
    }
    let secret_ref = |name: &str| env[name]["valueFrom"]["secretKeyRef"].clone();
    assert_eq!(
        secret_ref("TG_APPROVER_DATABASE_URL"),
        serde_json::json!({ "name": "approver-db", "key": "database-url" })
    );
    assert!(
        !env.contains_key("TG_APPROVER_DB"),
        "no SQLite file: {env:?}"
    );
    for (var, key) in [
        ("TG_APPROVER_OIDC_CLIENT_SECRET", "oidc-client-secret"),
        ("TG_APPROVER_SESSION_SECRET", "session-secret"),
        ("TG_APPROVER_WEBHOOK_SECRET", "webhook-secret"),
        ("TG_APPROVER_FILTER_KEY", "filter-key"),
    ] {
        assert_eq!(secret_ref(var)["name"], "transit-guard-approver", "{var}");
        assert_eq!(secret_ref(var)["key"], key, "{var}");
        assert!(
            secret["stringData"][key]
                .as_str()
                .is_some_and(|v| v.len() >= 16),
            "{key} missing from the Secret"
        );
    }
    assert_eq!(
        env["TG_APPROVER_OIDC_ISSUER"]["value"],
        "https://idp.example.com"
    );
    assert_eq!(env["TG_APPROVER_OIDC_CLIENT_ID"]["value"], "approver");
    assert_eq!(
        env["TG_APPROVER_PUBLIC_URL"]["value"],
        "https://approvals.example.com"
    );

    // The policies: a ConfigMap the approver's own parser accepts, mounted
    // where TG_APPROVER_POLICIES points.
    let text = config_map["data"]["policies.json"].as_str().unwrap();
    assert_eq!(serde_json::from_str::<Value>(text).unwrap(), policies);
    transit_guard_approver::policy::Policies::from_json(text.as_bytes()).unwrap();
    let pod = &deploy["spec"]["template"]["spec"];
    let mount = &pod["containers"][0]["volumeMounts"][0];
    assert_eq!(mount["name"], "policies");
    assert_eq!(
        env["TG_APPROVER_POLICIES"]["value"],
        format!("{}/policies.json", mount["mountPath"].as_str().unwrap())
    );
    assert_eq!(
        pod["volumes"][0]["configMap"]["name"],
        config_map["metadata"]["name"]
    );

    // Refused with the fix named: values that would start a broken approver.
    for (values, says) in [
        (
            serde_json::json!({ "replicaCount": 2, "secret": { "existingSecret": "k" } }),
            "replicaCount > 1 needs Postgres",
        ),
        (
            serde_json::json!({ "secret": { "existingSecret": "k" },
                "oidc": { "issuer": "https://idp.example.com", "clientId": "approver" } }),
            "oidc.issuer needs publicUrl",
        ),
        (
            serde_json::json!({ "secret": { "filterKeys": ["0123456789abcdef"], "sessionSecret": "short" },
                "publicUrl": "https://a.example.com",
                "oidc": { "issuer": "https://idp.example.com", "clientId": "approver" } }),
            "secret.oidcClientSecret",
        ),
        (
            serde_json::json!({ "secret": { "filterKeys": ["0123456789abcdef"], "oidcClientSecret": "x",
                    "sessionSecret": "short" },
                "publicUrl": "https://a.example.com",
                "oidc": { "issuer": "https://idp.example.com", "clientId": "approver" } }),
            "secret.sessionSecret of at least 32",
        ),
    ] {
        let r = render_chart(&values, &dir.join("refused.yaml"));
        let err =
            String::from_utf8_lossy(&r.stderr).to_string() + &String::from_utf8_lossy(&r.stdout);
        assert!(!r.status.success(), "{values} rendered");
        assert!(err.contains(says), "{values}: {err}");
    }
}

/// The policy JSON an example embeds, by kind.
fn embedded_policies(doc: &Value) -> Vec<Value> {
    match doc["kind"].as_str() {
        Some("WasmPlugin") => vec![doc["spec"]["pluginConfig"].clone()],
        Some("EnvoyExtensionPolicy") => doc["spec"]["wasm"]
            .as_array()
            .unwrap()
            .iter()
            .map(|w| w["config"].clone())
            .collect(),
        _ => vec![],
    }
}

#[test]
fn the_istio_and_envoy_gateway_examples_are_well_formed() {
    let files = examples();
    kubernetes_validate(&files);
    let mut policies = 0;
    for file in &files {
        for doc in documents(file) {
            let (api, kind) = (
                doc["apiVersion"].as_str().unwrap(),
                doc["kind"].as_str().unwrap(),
            );
            assert!(
                CUSTOM_KINDS.contains(&(api, kind)),
                "{}: {api} {kind} is not a documented kind",
                file.display()
            );
            assert!(
                doc["metadata"]["name"].is_string(),
                "{}: unnamed {kind}",
                file.display()
            );
            for policy in embedded_policies(&doc) {
                transit_guard::config::Policy::from_json(policy.to_string().as_bytes())
                    .unwrap_or_else(|e| panic!("{}: {kind}'s policy: {e:?}", file.display()));
                policies += 1;
            }
            // The module by digest, and the same digest in sha256.
            if kind == "WasmPlugin" {
                let spec = &doc["spec"];
                let url = spec["url"].as_str().unwrap();
                let digest = url
                    .rsplit_once("@sha256:")
                    .map(|(_, d)| d)
                    .unwrap_or_else(|| panic!("{url}: not by digest"));
                assert!(url.starts_with("oci://"));
                assert_eq!(spec["sha256"].as_str(), Some(digest));
                assert_eq!(spec["failStrategy"], "FAIL_CLOSE");
                assert!(spec["phase"].is_string() && spec["imagePullPolicy"].is_string());
            }
            if kind == "EnvoyExtensionPolicy" {
                for w in doc["spec"]["wasm"].as_array().unwrap() {
                    let image = &w["code"]["image"];
                    let url = image["url"].as_str().unwrap();
                    let digest = url
                        .rsplit_once("@sha256:")
                        .map(|(_, d)| d)
                        .unwrap_or_else(|| panic!("{url}: not by digest"));
                    assert_eq!(w["code"]["type"], "Image");
                    assert_eq!(image["sha256"].as_str(), Some(digest));
                    assert_eq!(w["failOpen"], false);
                    assert_eq!(w["rootID"], "transit_guard");
                }
            }
        }
    }
    assert_eq!(
        policies, 3,
        "one policy in each WasmPlugin and EnvoyExtensionPolicy"
    );
}

#[test]
fn the_compose_file_passes_docker_compose_config() {
    let out = checked(
        Command::new("docker-compose")
            .current_dir(workspace_root())
            .env_remove("ENVOY_IMAGE")
            .args(["config"]),
    )
    .unwrap();
    let config = String::from_utf8_lossy(&out.stdout);
    let doc: serde_yaml_ng::Value = serde_yaml_ng::from_str(&config).unwrap();
    let doc = serde_json::to_value(doc).unwrap();
    for service in ["envoy", "approver", "demo"] {
        assert_eq!(
            doc["services"][service]["network_mode"], "host",
            "{service}"
        );
        assert_eq!(doc["services"][service]["read_only"], true, "{service}");
    }
    assert_eq!(
        doc["services"]["envoy"]["image"],
        "envoyproxy/envoy:v1.40.0"
    );
    assert_eq!(doc["services"]["envoy"]["user"], "101:101");
    // Module and configs read-only in Envoy.
    let volumes = doc["services"]["envoy"]["volumes"].to_string();
    assert!(volumes.contains("transit_guard.wasm:ro"), "{volumes}");
    assert!(
        volumes.contains("/run/transit-guard/gateway:ro"),
        "{volumes}"
    );
}
