//! The promise to users, with the real SDKs: an OpenAI Agents SDK agent
//! (`examples/openai-agents/agent.py`, PyPI `openai-agents` in the project
//! venv) changed only in base URL, CA and token, runs a scenario through the
//! gateway: its LLM calls and its tool calls to the customers API are all
//! governed and audited.

use integration_tests::approver::{decide, pending, start_approver, FILTER_KEY};
use integration_tests::gateway::{upstream_credential, Gateway, Options};
use integration_tests::paths::workspace_root;
use integration_tests::tokens::{self, KeyKind, SigningKey, TokenBuilder};
use integration_tests::wait::{self, Check};
use serde_json::{json, Value};

const ISSUER: &str = "https://idp.transit-guard.test";

fn policy(key: &SigningKey) -> String {
    json!({
        "identity": {"providers": [tokens::provider_json("corp", ISSUER, "gw", &[key])]},
        "masking": {"profiles": {
            "pii": {"detectors": ["email", "phone", "credit_card", "ssn"]},
            "secrets": {"detectors": ["openai_key", "aws_access_key", "github_token"]}
        }},
        "default_action": "allow",
        "rules": [
            {"name": "no-deletes", "match": {"methods": ["DELETE"]}, "action": "deny"},
            {"name": "hold-export", "match": {"methods": ["POST"], "path": {"exact": "/customers/export"}},
             "action": "require_approval"},
            {"name": "pii-back", "match": {"methods": ["GET"], "path": {"prefix": "/customers"}},
             "action": "mask", "mask": {"response": ["pii"]}},
            {"name": "secrets-to-llm", "match": {"path": {"prefix": "/scripted/"}},
             "action": "mask", "mask": {"request": ["secrets"]}}
        ],
        // No approver runs in this test (the cluster points at the discard
        // port): the held export fails closed.
        "approval": {"cluster": "approver", "api_key": FILTER_KEY, "max_wait_secs": 60}
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn an_agents_sdk_agent_is_governed_end_to_end() {
    let key = SigningKey::generate(KeyKind::P256, "k1").unwrap();
    // The approver, with reviewer alice, behind the gateway's approver cluster.
    let opts = Options::for_test("agents-sdk", &policy(&key)).unwrap();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let approver = listener.local_addr().unwrap();
    let (_stop, _) = start_approver(&opts.dir.join("approver.sqlite"), listener);
    let gw = Gateway::start(opts.with_approver(approver)).await.unwrap();
    let token = TokenBuilder::new(ISSUER, "gw", "agent-7", tokens::now())
        .claim("groups", json!(["support"]))
        .sign(&key)
        .unwrap();
    let root = workspace_root();
    let mut agent = tokio::process::Command::new(root.join(".venv/bin/python"))
        .arg(root.join("examples/openai-agents/agent.py"))
        .env("GATEWAY_URL", gw.url(""))
        .env("GATEWAY_CA", gw.pki.path("ca.pem"))
        .env("AGENT_TOKEN", &token)
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("the project venv's python (cargo xtask test installs openai-agents)");

    // The export is held in Envoy: a reviewer sees it (as agent-7's) and approves.
    // Python's start and the agent's first five calls come first: slow on
    // a loaded machine, hence the long deadline; an agent that dies ends the
    // wait at once.
    let what = "the agent's export held for approval";
    let waited = wait::until_async_within(what, std::time::Duration::from_secs(300), || {
        let exited = agent.try_wait().ok().flatten();
        async move {
            if let Some(status) = exited {
                return Check::Failed(anyhow::anyhow!("the agent exited ({status})"));
            }
            let p = pending(approver).await;
            Check::found((!p.is_empty()).then_some(p), || {
                "no pending approval".into()
            })
        }
    })
    .await;
    let held = match waited {
        Ok(held) => held,
        Err(e) => {
            let _ = agent.start_kill();
            let out = agent.wait_with_output().await.unwrap();
            panic!("{e:#}\nagent: {}", String::from_utf8_lossy(&out.stderr));
        }
    };
    assert_eq!(held.len(), 1, "{held:?}");
    assert_eq!(held[0]["identity"]["sub"], "agent-7");
    assert_eq!(held[0]["rule"], "hold-export");
    assert_eq!(held[0]["path"], "/customers/export");
    let id = held[0]["id"].as_str().unwrap().to_string();
    decide(
        approver,
        &id,
        "approve",
        json!({"reason": "quarterly export", "grant": "once"}),
    )
    .await;
    let out = agent.wait_with_output().await.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "the agent failed:\n{stderr}");
    let run: Value =
        serde_json::from_slice(&out.stdout).unwrap_or_else(|e| panic!("{e}: {stderr}"));
    let tools = run["tools"].as_array().unwrap();
    assert_eq!(tools.len(), 3, "{run}");

    // What the agent saw: masked records, a refused delete, a held export.
    assert_eq!(tools[0]["status"], 200);
    let customers = tools[0]["body"].as_str().unwrap();
    assert!(
        customers.contains("Ada Lovelace") && customers.contains("[REDACTED:email]"),
        "{customers}"
    );
    for raw in [
        "ada.lovelace@example.com",
        "4111 1111 1111 1111",
        "123-45-6789",
    ] {
        assert!(!customers.contains(raw), "{raw} reached the agent");
    }
    assert_eq!(tools[1]["status"], 403);
    assert!(tools[1]["body"].as_str().unwrap().contains("no-deletes"));
    assert_eq!(tools[2]["status"], 200, "the approved export: {}", tools[2]);
    assert!(run["final_output"].as_str().unwrap().starts_with("Done."));

    // What the upstreams received: no delete, the export once (approved), no
    // planted key in any prompt, never the agent's token, always the injected
    // credential.
    let credential = upstream_credential(&gw.pki.dir).unwrap();
    let seen = gw.upstream.requests();
    assert!(seen.iter().all(|r| r.method != "DELETE"));
    assert_eq!(
        seen.iter()
            .filter(|r| r.path == "/customers/export")
            .count(),
        1
    );
    let llm_calls: Vec<_> = seen
        .iter()
        .filter(|r| r.path.starts_with("/scripted/"))
        .collect();
    assert_eq!(llm_calls.len(), 4, "one LLM call per step");
    for r in &seen {
        assert_eq!(r.header("authorization"), Some(credential.as_str()));
        let text = String::from_utf8_lossy(&r.body);
        assert!(
            !text.contains("sk-proj-PlantedPromptKey0123456789abcd"),
            "a secret reached the LLM"
        );
        assert!(!text.contains(&token));
    }

    // Every step audited, with the agent's identity.
    let records = gw.wait_for_audit_records(7);
    assert_eq!(records.len(), 7, "4 LLM calls + 3 tool calls");
    assert!(records.iter().all(|r| r["identity"]["sub"] == "agent-7"));
    let decisions: Vec<&str> = records
        .iter()
        .map(|r| r["decision"].as_str().unwrap())
        .collect();
    assert!(
        decisions.contains(&"denied") && decisions.contains(&"approval_approved"),
        "{decisions:?}"
    );
    let export = records
        .iter()
        .find(|r| r["path"] == "/customers/export")
        .unwrap();
    assert_eq!(export["approval"]["reviewer"], "alice");
    assert!(records
        .iter()
        .any(|r| r["path"] == "/customers" && r["decision"] == "masked"));
}
