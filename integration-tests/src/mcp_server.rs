//! A small MCP server (Streamable HTTP) on the test upstream: `POST /mcp`
//! answers JSON-RPC (one message or a batch) as JSON, `POST /mcp/sse` the
//! same answers as one server-sent event. `tools/list` lists [`tools`];
//! `tools/call` answers `called NAME`.

use serde_json::{json, Value};

/// The tools the server lists.
pub fn tools() -> Value {
    json!([
        {"name": "get_customer", "description": "Reads one customer record",
         "inputSchema": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}},
        {"name": "delete_customer", "description": "Deletes one customer record",
         "inputSchema": {"type": "object", "properties": {"id": {"type": "string"}}, "required": ["id"]}},
        {"name": "refund", "description": "Refunds an order",
         "inputSchema": {"type": "object", "properties": {"amount": {"type": "number"}}}}
    ])
}

fn answer(msg: &Value) -> Option<Value> {
    let id = msg.get("id")?.clone();
    let result = match msg.get("method").and_then(Value::as_str) {
        Some("tools/list") => json!({"tools": tools()}),
        Some("tools/call") => {
            let name = msg
                .pointer("/params/name")
                .and_then(Value::as_str)
                .unwrap_or("");
            json!({"content": [{"type": "text", "text": format!("called {name}")}]})
        }
        _ => {
            return Some(json!({"jsonrpc": "2.0", "id": id,
                                "error": {"code": -32601, "message": "method not found"}}))
        }
    };
    Some(json!({"jsonrpc": "2.0", "id": id, "result": result}))
}

/// The answer to a request body: one answer, or a batch of them.
pub fn respond(body: &[u8]) -> Value {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => Value::Array(items.iter().filter_map(answer).collect()),
        Ok(one) => answer(&one).unwrap_or(Value::Null),
        Err(_) => json!({"jsonrpc": "2.0", "id": null,
                         "error": {"code": -32700, "message": "parse error"}}),
    }
}
