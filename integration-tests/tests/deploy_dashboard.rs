//! `deploy/grafana/transit-guard.json` asks only for series that exist: every
//! metric its queries name, and every label they group or filter by, is in a
//! live Envoy's `/stats/prometheus` once the demo stack has seen each kind of
//! event (a masked answer, a denial, a missing token, an approval that fails,
//! a JWKS fetch that fails, an audit batch the collector never takes).

use std::collections::{BTreeMap, BTreeSet};

use integration_tests::demo::{DemoOptions, DemoStack, Ports};
use integration_tests::paths::{scratch_dir, workspace_root};
use serde_json::{json, Value};

/// Every PromQL expression in the dashboard.
fn queries(dashboard: &Value) -> Vec<String> {
    let mut out = Vec::new();
    for panel in dashboard["panels"].as_array().expect("panels") {
        assert!(panel["title"].is_string(), "untitled panel: {panel}");
        for t in panel["targets"].as_array().expect("targets") {
            out.push(t["expr"].as_str().expect("expr").to_string());
        }
    }
    out
}

/// The metric names an expression uses (ours and Envoy's), and the label
/// names it groups by or matches on.
fn names_in(expr: &str) -> (BTreeSet<String>, BTreeSet<String>) {
    let mut metrics = BTreeSet::new();
    let mut labels = BTreeSet::new();
    let tokens: Vec<(usize, &str)> = expr
        .match_indices(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
        .fold((0, Vec::new()), |(start, mut acc), (i, sep)| {
            if i > start {
                acc.push((start, &expr[start..i]));
            }
            (i + sep.len(), acc)
        })
        .1;
    for (at, tok) in tokens {
        if tok.starts_with("transit_guard_")
            || (tok.starts_with("envoy_") && expr[at + tok.len()..].starts_with(['{', '[']))
        {
            metrics.insert(tok.to_string());
        }
        let rest = &expr[at + tok.len()..];
        // label="..." inside a selector
        if rest.starts_with("=\"") || rest.starts_with("=~") || rest.starts_with("!=") {
            labels.insert(tok.to_string());
        }
    }
    // by (a, b)
    for part in expr.split("by (").skip(1) {
        if let Some(list) = part.split(')').next() {
            labels.extend(list.split(',').map(|l| l.trim().to_string()));
        }
    }
    (metrics, labels)
}

/// `/stats/prometheus`: metric name (histograms by their `_bucket` series)
/// to the label names seen on it.
fn exported(text: &str) -> BTreeMap<String, BTreeSet<String>> {
    let mut out: BTreeMap<String, BTreeSet<String>> = BTreeMap::new();
    for line in text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
    {
        let (name, rest) = match line.find(['{', ' ']) {
            Some(i) => line.split_at(i),
            None => continue,
        };
        let labels = out.entry(name.to_string()).or_default();
        if let Some(body) = rest.strip_prefix('{').and_then(|r| r.split('}').next()) {
            for pair in body.split("\",") {
                if let Some((k, _)) = pair.split_once('=') {
                    labels.insert(k.trim().to_string());
                }
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn every_dashboard_query_names_a_live_series() {
    let text = std::fs::read_to_string(workspace_root().join("deploy/grafana/transit-guard.json"))
        .unwrap();
    let dashboard: Value = serde_json::from_str(&text).expect("the dashboard is JSON");
    let queries = queries(&dashboard);
    assert!(queries.len() >= 10, "{queries:?}");

    // The demo policy, with an approver, a collector and a second IdP that
    // all point at the discard port (the `audit_collector` cluster's default):
    // each fails, and is counted.
    let dir = scratch_dir("deploy-dashboard").unwrap();
    let mut policy: Value = serde_json::from_str(
        &std::fs::read_to_string(integration_tests::demo::demo_policy_path()).unwrap(),
    )
    .unwrap();
    policy["approval"]["cluster"] = json!("audit_collector");
    policy["audit"] = json!({ "collector": { "cluster": "audit_collector", "path": "/v1/audit", "flush_ms": 100, "timeout_ms": 500 } });
    let providers = policy["identity"]["providers"].as_array_mut().unwrap();
    providers.push(json!({
        "name": "offline", "issuer": "https://offline.invalid", "audiences": ["x"], "algorithms": ["ES256"],
        "remote_jwks": { "cluster": "audit_collector", "authority": "offline", "path": "/jwks", "refresh_secs": 30, "timeout_ms": 500 }
    }));
    let policy_path = dir.join("policy-template.json");
    std::fs::write(&policy_path, policy.to_string()).unwrap();
    let mut opts = DemoOptions::new(dir.join("run"), dir.join("issuer"), Ports::EPHEMERAL);
    opts.policy_path = policy_path;
    let demo = DemoStack::start(opts).await.unwrap();
    let gw = &demo.gateway;
    let client = gw.client().unwrap();
    let alice = demo.token("alice", &["support"]).unwrap();
    let bob = demo.token("bob", &["sales"]).unwrap();
    let get = |token: Option<&String>| {
        let mut req = client.get(gw.url("/customers"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        req.send()
    };
    assert_eq!(get(Some(&alice)).await.unwrap().status(), 200);
    assert_eq!(get(None).await.unwrap().status(), 401);
    assert_eq!(get(Some(&bob)).await.unwrap().status(), 403);
    let export = client
        .post(gw.url("/customers/export"))
        .bearer_auth(&alice)
        .body("{}")
        .send()
        .await
        .unwrap();
    assert_eq!(
        export.status(),
        503,
        "the approver is unreachable: fail closed"
    );

    // Every query's series and labels, once the counters exist (the
    // collector and the second IdP fail on their own schedule).
    let mut missing = Vec::new();
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(20);
    loop {
        let stats = exported(&gw.envoy.admin_get("/stats/prometheus").unwrap());
        missing.clear();
        for q in &queries {
            let (metrics, labels) = names_in(q);
            assert!(!metrics.is_empty(), "no metric in {q}");
            for m in &metrics {
                let series = stats.get(m).or_else(|| stats.get(&format!("{m}_bucket")));
                match series {
                    None => missing.push(format!("{m} (in {q})")),
                    Some(have) => {
                        for l in labels
                            .iter()
                            .filter(|l| *l != "le" || m.ends_with("_bucket"))
                        {
                            if !have.contains(l) {
                                missing.push(format!("label {l} of {m} (in {q}); it has {have:?}"));
                            }
                        }
                    }
                }
            }
        }
        if missing.is_empty() {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "not exported: {missing:#?}"
        );
        tokio::time::sleep(std::time::Duration::from_millis(250)).await;
    }
    demo.stop().await.unwrap();
}

#[test]
fn expressions_are_read_for_metrics_and_labels() {
    let (m, l) = names_in(r#"sum by (rule) (rate(transit_guard_denied[5m]))"#);
    assert_eq!(m.into_iter().collect::<Vec<_>>(), ["transit_guard_denied"]);
    assert_eq!(l.into_iter().collect::<Vec<_>>(), ["rule"]);
    let (m, l) = names_in(
        r#"histogram_quantile(0.99, sum by (le) (rate(envoy_http_downstream_rq_time_bucket{envoy_http_conn_manager_prefix="gateway"}[1m])))"#,
    );
    assert_eq!(
        m.into_iter().collect::<Vec<_>>(),
        ["envoy_http_downstream_rq_time_bucket"]
    );
    assert_eq!(
        l.into_iter().collect::<Vec<_>>(),
        ["envoy_http_conn_manager_prefix", "le"]
    );
}
