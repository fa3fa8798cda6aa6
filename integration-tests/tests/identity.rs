//! Identity through the real Envoy: tokens from a real, independent OpenID
//! provider (npm oidc-provider), its JWKS fetched through an Envoy cluster;
//! claims to headers, token stripping, key rotation, an IdP down at start.

use std::net::SocketAddr;
use std::time::Duration;

use integration_tests::gateway::{Gateway, Options};
use integration_tests::oidc::{free_port, OidcProvider, AUDIENCE};
use integration_tests::tokens::{self, KeyKind, SigningKey, TokenBuilder};
use integration_tests::wait::{self, Check};
use serde_json::json;

/// A policy trusting `issuer` through the `idp` cluster.
fn oidc_policy(issuer: &str, refresh_secs: u64) -> String {
    json!({
        "identity": {
            "realm": "transit-guard-test",
            "providers": [{
                "name": "oidc", "issuer": issuer, "audiences": [AUDIENCE], "algorithms": ["RS256"],
                "typ": "at+jwt",
                "remote_jwks": {"cluster": "idp", "path": "/jwks", "refresh_secs": refresh_secs, "timeout_ms": 2000,
                                "authority": issuer.trim_start_matches("http://")},
                "claims_to_headers": {"sub": "x-agent-subject"}
            }]
        },
        "default_action": "allow",
        "rules": [{"name": "writes-need-scope", "match": {"methods": ["POST"],
                   "identity": {"scopes_none": ["customers:write"]}}, "action": "deny"}]
    })
    .to_string()
}

async fn gateway_with_idp(name: &str, policy: &str, idp_port: u16) -> Gateway {
    let idp = SocketAddr::from(([127, 0, 0, 1], idp_port));
    Gateway::start(Options::for_test(name, policy).unwrap().with_idp(idp))
        .await
        .unwrap()
}

/// Sends `GET path` with the token until the status is `want`; returns it.
/// Slow by design: the first JWKS fetch happens on the filter's timer, and a
/// refetch for an unknown key is rate limited to one per 30 s.
async fn until_status(gw: &Gateway, path: &str, token: &str, want: u16) -> u16 {
    let what = format!("GET {path} to answer {want}");
    wait::until_async_within(&what, Duration::from_secs(120), || async move {
        let resp = gw
            .client()
            .unwrap()
            .get(gw.url(path))
            .bearer_auth(token)
            .send()
            .await
            .unwrap();
        let status = resp.status().as_u16();
        if status == want {
            return Check::Done(status);
        }
        let body = resp.text().await.unwrap_or_default();
        Check::NotYet(format!("{status} {body}"))
    })
    .await
    .unwrap_or_else(|e| panic!("{e:#}"))
}

#[tokio::test(flavor = "multi_thread")]
async fn a_token_from_a_real_openid_provider_is_accepted_and_stripped() {
    let idp = OidcProvider::start(free_port().unwrap(), "kid-1").unwrap();
    let gw = gateway_with_idp("identity-oidc", &oidc_policy(&idp.issuer, 600), idp.port).await;
    let token = idp.token("customers:read").await.unwrap();
    assert_eq!(until_status(&gw, "/v1/echo", &token, 200).await, 200);

    // A client-sent copy of a claim header is replaced, never trusted.
    let resp = gw
        .client()
        .unwrap()
        .get(gw.url("/v1/echo"))
        .bearer_auth(&token)
        .header("x-agent-subject", "admin")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let seen = gw.upstream.requests();
    let last = seen.last().unwrap();
    assert_eq!(last.header("x-agent-subject"), Some("agent"));
    // The agent's token was stripped; Envoy injected the upstream credential.
    let credential = integration_tests::gateway::upstream_credential(&gw.pki.dir).unwrap();
    assert_eq!(
        last.header("authorization"),
        Some(credential.as_str()),
        "the agent's token reached the upstream"
    );

    // Rules see the scopes: a POST without customers:write is denied.
    let post = gw
        .client()
        .unwrap()
        .post(gw.url("/v1/echo"))
        .bearer_auth(&token)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 403);
    let write_token = idp.token("customers:read customers:write").await.unwrap();
    let post = gw
        .client()
        .unwrap()
        .post(gw.url("/v1/echo"))
        .bearer_auth(&write_token)
        .body("x")
        .send()
        .await
        .unwrap();
    assert_eq!(post.status(), 200);

    // The last request's record (the JWKS wait may have written several).
    let records = gw.wait_for_audit("the allowed POST's audit record", |rs| {
        rs.iter()
            .any(|r| r["method"] == "POST" && r["status"] == 200)
    });
    let last = records.last().unwrap();
    assert_eq!(last["method"], "POST", "{records:?}");
    assert_eq!(last["identity"]["sub"], "agent");
    assert_eq!(last["identity"]["iss"], idp.issuer.as_str());
    let audit =
        std::fs::read_to_string(integration_tests::gateway::audit_log_path(&gw.pki.dir)).unwrap();
    assert!(!audit.contains(&token), "a token reached the audit log");
}

#[tokio::test(flavor = "multi_thread")]
async fn missing_and_bad_tokens_get_401_with_www_authenticate() {
    let idp = OidcProvider::start(free_port().unwrap(), "kid-1").unwrap();
    let gw = gateway_with_idp("identity-401", &oidc_policy(&idp.issuer, 600), idp.port).await;
    let token = idp.token("customers:read").await.unwrap();
    assert_eq!(until_status(&gw, "/v1/echo", &token, 200).await, 200);
    let before = gw.upstream.requests().len();

    let resp = gw
        .client()
        .unwrap()
        .get(gw.url("/v1/echo"))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    assert_eq!(
        resp.headers()["www-authenticate"],
        "Bearer realm=\"transit-guard-test\""
    );
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "token_missing");
    assert!(body["request_id"].as_str().is_some_and(|id| !id.is_empty()));

    // A token whose payload was changed: bad signature.
    let mut parts: Vec<String> = token.split('.').map(str::to_string).collect();
    parts[1] =
        tokens::b64url(br#"{"sub":"admin","iss":"x","aud":"agent-gateway","exp":4102444800}"#);
    let forged = parts.join(".");
    let resp = gw
        .client()
        .unwrap()
        .get(gw.url("/v1/echo"))
        .bearer_auth(&forged)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let www = resp.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .to_string();
    assert!(www.contains("error=\"invalid_token\""), "{www}");
    assert_eq!(
        gw.upstream.requests().len(),
        before,
        "a refused request reached the upstream"
    );

    // The JWKS wait above may have written any number of records (refusals
    // with jwks_unavailable among them): wait for the token_missing record
    // and the forged token's after it, not for a count.
    let missing_at =
        |rs: &[serde_json::Value]| rs.iter().position(|r| r["reason"] == "token_missing");
    let records = gw.wait_for_audit("the two refusals' audit records", |rs| {
        missing_at(rs).is_some_and(|i| rs.len() > i + 1)
    });
    let i = missing_at(&records).unwrap();
    let (missing, forged) = (&records[i], &records[i + 1]);
    assert_eq!(forged["decision"], "unauthenticated", "{forged}");
    assert_eq!(missing["decision"], "unauthenticated");
    assert_eq!(missing["identity"], serde_json::Value::Null);
    gw.envoy
        .wait_for_metric(r#"transit_guard_auth_failures{reason="token_missing"}"#, 1)
        .unwrap();
}

#[tokio::test(flavor = "multi_thread")]
async fn key_rotation_at_the_provider_needs_no_envoy_restart() {
    let port = free_port().unwrap();
    let idp = OidcProvider::start(port, "kid-old").unwrap();
    let gw = gateway_with_idp("identity-rotation", &oidc_policy(&idp.issuer, 30), port).await;
    let old = idp.token("customers:read").await.unwrap();
    assert_eq!(until_status(&gw, "/v1/echo", &old, 200).await, 200);

    // The provider restarts with a new signing key.
    idp.stop();
    let idp = OidcProvider::start(port, "kid-new").unwrap();
    let new = idp.token("customers:read").await.unwrap();
    assert_eq!(
        until_status(&gw, "/v1/echo", &new, 200).await,
        200,
        "the new key was never fetched"
    );
    drop(idp);
}

#[tokio::test(flavor = "multi_thread")]
async fn provider_down_at_start_gives_jwks_unavailable_then_recovers() {
    let port = free_port().unwrap();
    let issuer = format!("http://127.0.0.1:{port}");
    let gw = gateway_with_idp("identity-idp-down", &oidc_policy(&issuer, 30), port).await;
    // A well-formed token for this issuer, signed by a key nobody published.
    let key = SigningKey::generate(KeyKind::Rsa(2048), "kid-x").unwrap();
    let token = TokenBuilder::new(&issuer, AUDIENCE, "agent", tokens::now())
        .header("typ", json!("at+jwt"))
        .sign(&key)
        .unwrap();
    let resp = gw
        .client()
        .unwrap()
        .get(gw.url("/v1/echo"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 401);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["error"], "jwks_unavailable");

    // The provider comes up: its tokens are accepted without restarting Envoy.
    let idp = OidcProvider::start(port, "kid-1").unwrap();
    let good = idp.token("customers:read").await.unwrap();
    assert_eq!(until_status(&gw, "/v1/echo", &good, 200).await, 200);
    let prom = gw.envoy.admin_get("/stats/prometheus").unwrap();
    assert!(
        prom.contains("transit_guard_jwks_fetch_failures{provider=\"oidc\"}"),
        "{prom}"
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_group_only_route_admits_the_group_and_refuses_others() {
    let key = SigningKey::generate(KeyKind::P256, "k1").unwrap();
    let issuer = "https://idp.transit-guard.test";
    let policy = json!({
        "identity": {"providers": [tokens::provider_json("corp", issuer, "gw", &[&key])]},
        "default_action": "allow",
        "rules": [{"name": "dba-only", "match": {"path": {"prefix": "/admin"},
                   "identity": {"groups_none": ["dba"]}}, "action": "deny"}]
    })
    .to_string();
    let gw = Gateway::for_test("identity-groups", &policy).await.unwrap();
    let token = |groups: serde_json::Value| {
        TokenBuilder::new(issuer, "gw", "alice", tokens::now())
            .claim("groups", groups)
            .sign(&key)
            .unwrap()
    };
    let client = gw.client().unwrap();
    let dba = client
        .get(gw.url("/admin/tables"))
        .bearer_auth(token(json!(["dba", "staff"])))
        .send()
        .await
        .unwrap();
    assert_eq!(dba.status(), 200);
    let staff = client
        .get(gw.url("/admin/tables"))
        .bearer_auth(token(json!(["staff"])))
        .send()
        .await
        .unwrap();
    assert_eq!(staff.status(), 403);
    let body: serde_json::Value = staff.json().await.unwrap();
    assert_eq!(body["rule"], "dba-only");
    assert_eq!(gw.upstream.requests().len(), 1);
}

#[tokio::test(flavor = "multi_thread")]
async fn workers_share_one_jwks_fetch() {
    let key = SigningKey::generate(KeyKind::P256, "k1").unwrap();
    let jwks = integration_tests::tokens::JwksServer::start(&tokens::jwks(&[&key]))
        .await
        .unwrap();
    let issuer = "https://idp.transit-guard.test";
    let mut provider = tokens::provider_json("corp", issuer, "gw", &[&key]);
    provider.as_object_mut().unwrap().remove("local_jwks");
    provider["remote_jwks"] = json!({"cluster": "idp", "path": "/jwks", "refresh_secs": 600,
                                     "authority": jwks.addr.to_string()});
    let policy = json!({"identity": {"providers": [provider]}}).to_string();
    let mut opts = Options::for_test("identity-shared-jwks", &policy)
        .unwrap()
        .with_idp(jwks.addr);
    opts.concurrency = 4;
    let gw = Gateway::start(opts).await.unwrap();
    let token = TokenBuilder::new(issuer, "gw", "alice", tokens::now())
        .sign(&key)
        .unwrap();
    // Four workers and the main thread each run a VM: one fetches and logs
    // "fetched", each other one adopts the shared keys on its next tick and
    // logs "adopted". Five such lines with one hit on the JWKS server: one
    // fetch served every VM.
    let vms = 5;
    gw.envoy
        .wait_for_log_count("keys for provider corp", vms)
        .unwrap();
    let log = gw.envoy.log();
    let fetched = log
        .lines()
        .filter(|l| l.contains("transit-guard: fetched"))
        .count();
    assert_eq!(fetched, 1, "one VM fetched, the others adopted:\n{log}");
    assert_eq!(jwks.hits(), 1, "workers fetched the JWKS separately");
    // Requests on fresh connections land on every worker; all of them verify.
    for _ in 0..16 {
        let client = gw.client().unwrap();
        let resp = client
            .get(gw.url("/v1/echo"))
            .bearer_auth(&token)
            .send()
            .await
            .unwrap();
        assert_eq!(resp.status(), 200);
    }
    assert_eq!(jwks.hits(), 1, "workers fetched the JWKS separately");
}
