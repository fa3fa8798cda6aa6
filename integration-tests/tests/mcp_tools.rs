//! MCP tool lists through the real Envoy 1.40 with the real module and a
//! real (small) MCP server: a tool the caller may not call disappears from
//! `tools/list` (JSON and SSE answers), and a tool whose definition no longer
//! matches its pin is refused and audited with both hashes.

use integration_tests::gateway::Gateway;
use integration_tests::mcp_server;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

fn policy(pins: Value) -> String {
    json!({
        "default_action": "allow",
        "rules": [
            {"name": "no-deletes", "match": {"mcp": {"tools": ["delete_*"]}}, "action": "deny"}
        ],
        "mcp": {"paths": ["/mcp"], "pins": pins}
    })
    .to_string()
}

/// The pin of a tool definition, computed as `docs/mcp.md` says.
fn pin(tool: &Value) -> String {
    fn canonical(v: &Value) -> String {
        match v {
            Value::Object(m) => {
                let mut keys: Vec<&String> = m.keys().collect();
                keys.sort();
                let items: Vec<String> = keys
                    .into_iter()
                    .map(|k| format!("{}:{}", serde_json::to_string(k).unwrap(), canonical(&m[k])))
                    .collect();
                format!("{{{}}}", items.join(","))
            }
            Value::Array(a) => format!(
                "[{}]",
                a.iter().map(canonical).collect::<Vec<_>>().join(",")
            ),
            s => serde_json::to_string(s).unwrap(),
        }
    }
    let def = json!({"name": tool["name"], "description": tool["description"],
                     "inputSchema": tool["inputSchema"]});
    let digest = Sha256::digest(canonical(&def).as_bytes());
    format!(
        "sha256:{}",
        digest
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect::<String>()
    )
}

async fn rpc(gw: &Gateway, path: &str, body: Value) -> (u16, String) {
    let r = gw
        .client()
        .unwrap()
        .post(gw.url(path))
        .header("content-type", "application/json")
        .header("accept", "application/json, text/event-stream")
        .json(&body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap())
}

fn names(answer: &Value) -> Vec<String> {
    answer["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap().to_string())
        .collect()
}

fn list() -> Value {
    json!({"jsonrpc": "2.0", "id": 1, "method": "tools/list"})
}

#[tokio::test(flavor = "multi_thread")]
async fn a_denied_tool_disappears_from_tools_list() {
    let gw = Gateway::for_test("mcp-tools-list", &policy(json!({})))
        .await
        .unwrap();
    let (status, text) = rpc(&gw, "/mcp", list()).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(names(&v), vec!["get_customer", "refund"]);

    // The same answer framed as a server-sent event.
    let (status, text) = rpc(&gw, "/mcp/sse", list()).await;
    assert_eq!(status, 200, "{text}");
    let data = text
        .lines()
        .find_map(|l| l.strip_prefix("data: "))
        .unwrap_or_else(|| panic!("no data line: {text:?}"));
    let v: Value = serde_json::from_str(data).unwrap();
    assert_eq!(names(&v), vec!["get_customer", "refund"]);

    // In a batch, the list is filtered and a call to the tool is refused.
    let batch = json!([list(), {"jsonrpc": "2.0", "id": 2, "method": "tools/call",
                               "params": {"name": "get_customer", "arguments": {"id": "c-1"}}}]);
    let (status, text) = rpc(&gw, "/mcp", batch).await;
    assert_eq!(status, 200, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(names(&v[0]), vec!["get_customer", "refund"]);
    assert_eq!(v[1]["result"]["content"][0]["text"], "called get_customer");
    let batch = json!([list(), {"jsonrpc": "2.0", "id": 3, "method": "tools/call",
                               "params": {"name": "delete_customer", "arguments": {"id": "c-1"}}}]);
    let (status, text) = rpc(&gw, "/mcp", batch).await;
    assert_eq!(status, 403, "{text}");
    assert_eq!(
        gw.upstream.requests().len(),
        3,
        "the refused batch never reached the server"
    );

    let records = gw.wait_for_audit_records(4);
    assert_eq!(
        records[0]["mcp"]["tools_hidden"],
        json!(["delete_customer"]),
        "{}",
        records[0]
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn a_changed_tool_description_is_refused() {
    let tools = mcp_server::tools();
    let get = &tools[0];
    // The pin a reviewer took before the server changed the description.
    let mut before = get.clone();
    before["description"] = json!("Reads one customer record (support only)");
    let pins = json!({"get_customer": pin(&before), "refund": pin(&tools[2])});
    let gw = Gateway::for_test("mcp-tools-pin", &policy(pins))
        .await
        .unwrap();
    let (status, text) = rpc(&gw, "/mcp", list()).await;
    assert_eq!(status, 502, "{text}");
    let v: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(v["error"], "tool_definition_changed");
    assert_eq!(v["tool"], "get_customer");
    // Streamed, the headers are gone: the stream is reset.
    let sse = gw
        .client()
        .unwrap()
        .post(gw.url("/mcp/sse"))
        .json(&list())
        .send()
        .await;
    let reset = match sse {
        Err(_) => true,
        Ok(r) => r.text().await.map_or(true, |t| !t.contains("get_customer")),
    };
    assert!(reset, "the changed definition never reaches the agent");

    let records = gw.wait_for_audit_records(2);
    let pinned = &records[0]["mcp"]["pin_mismatch"];
    assert_eq!(pinned["tool"], "get_customer", "{}", records[0]);
    assert_eq!(
        format!("sha256:{}", pinned["pinned"].as_str().unwrap()),
        pin(&before)
    );
    assert_eq!(
        format!("sha256:{}", pinned["seen"].as_str().unwrap()),
        pin(get)
    );
    assert_eq!(records[0]["reason"], "tool_definition_changed");
    assert_eq!(records[1]["reason"], "tool_definition_changed");

    // With the current definition pinned, the list passes.
    let pins = json!({"get_customer": pin(get)});
    let gw = Gateway::for_test("mcp-tools-pin-ok", &policy(pins))
        .await
        .unwrap();
    let (status, text) = rpc(&gw, "/mcp", list()).await;
    assert_eq!(status, 200, "{text}");
}
