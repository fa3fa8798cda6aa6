//! Evaluation tests: every matcher, the combination rules, the two phases.

use super::*;
use serde_json::json;

/// The rules sections of a policy document, compiled alone (the policy
/// loader also checks that masking profiles exist; these tests need none).
fn from_sections(v: serde_json::Value) -> Result<Rules, PolicyError> {
    #[derive(serde::Deserialize)]
    struct Sections {
        #[serde(default)]
        rules: Vec<RuleDoc>,
        #[serde(default)]
        default_action: Option<DefaultAction>,
    }
    let s: Sections = crate::policy::doc::from_slice(v.to_string().as_bytes())?;
    compile(s.rules, s.default_action)
}

fn rules(v: serde_json::Value) -> Rules {
    from_sections(v).unwrap()
}

fn err(v: serde_json::Value) -> PolicyError {
    from_sections(v).unwrap_err()
}

/// A request builder for tests.
#[derive(Clone)]
struct Req {
    method: &'static str,
    authority: &'static str,
    path: String,
    headers: Vec<(String, String)>,
    identity: Option<Identity>,
    body: Option<Vec<u8>>,
}

fn get(path: &str) -> Req {
    Req {
        method: "GET",
        authority: "api.internal",
        path: path.to_string(),
        headers: Vec::new(),
        identity: None,
        body: None,
    }
}

fn post(path: &str, body: impl Into<Vec<u8>>) -> Req {
    Req {
        method: "POST",
        body: Some(body.into()),
        ..get(path)
    }
}

impl Req {
    fn method(mut self, m: &'static str) -> Self {
        self.method = m;
        self
    }
    fn authority(mut self, a: &'static str) -> Self {
        self.authority = a;
        self
    }
    fn header(mut self, k: &str, v: &str) -> Self {
        self.headers.push((k.into(), v.into()));
        self
    }
    fn who(mut self, sub: &str, groups: &[&str], scopes: &[&str]) -> Self {
        self.identity = Some(Identity {
            provider: "corp".into(),
            issuer: "https://idp".into(),
            subject: sub.into(),
            groups: groups.iter().map(|s| s.to_string()).collect(),
            scopes: scopes.iter().map(|s| s.to_string()).collect(),
        });
        self
    }
    fn no_body(mut self) -> Self {
        self.body = None;
        self
    }
    fn eval(&self, r: &Rules) -> Evaluation {
        r.evaluate(&RequestView {
            method: self.method,
            authority: self.authority,
            path: &self.path,
            headers: &self.headers,
            identity: self.identity.as_ref(),
            body: self.body.as_deref(),
        })
    }
    /// Evaluates with the body if given, else with an empty body: the final decision.
    fn kind(&self, r: &Rules) -> &'static str {
        let mut req = self.clone();
        if req.body.is_none() {
            req.body = Some(Vec::new());
        }
        let e = req.eval(r);
        assert!(!e.needs_body);
        e.decision.kind()
    }
}

/// A policy with one deny rule with this `match`, default allow.
fn deny_if(m: serde_json::Value) -> Rules {
    rules(
        json!({"default_action": "allow", "rules": [{"name": "r", "match": m, "action": "deny"}]}),
    )
}

// ---- request matchers ----

#[test]
fn methods_any_case_insensitive() {
    let r = deny_if(json!({"methods": ["DELETE", "put"]}));
    assert_eq!(get("/").method("DELETE").kind(&r), "deny");
    assert_eq!(get("/").method("delete").kind(&r), "deny");
    assert_eq!(get("/").method("PUT").kind(&r), "deny");
    assert_eq!(get("/").kind(&r), "allow");
}

#[test]
fn authority_exact_wildcard_and_ports() {
    let r = deny_if(json!({"authority": ["api.internal", "*.corp.example:8443"]}));
    assert_eq!(get("/").kind(&r), "deny");
    assert_eq!(get("/").authority("API.internal:443").kind(&r), "deny");
    assert_eq!(get("/").authority("api.internal.").kind(&r), "deny");
    assert_eq!(get("/").authority("x.corp.example:8443").kind(&r), "deny");
    assert_eq!(get("/").authority("x.corp.example").kind(&r), "allow");
    assert_eq!(get("/").authority("corp.example:8443").kind(&r), "allow");
    assert_eq!(get("/").authority("api.internal.evil").kind(&r), "allow");
}

#[test]
fn path_exact_prefix_regex() {
    let r = deny_if(json!({"path": {"exact": "/admin"}}));
    assert_eq!(get("/admin").kind(&r), "deny");
    assert_eq!(get("/admin/x").kind(&r), "allow");
    let r = deny_if(json!({"path": {"prefix": ["/admin/", "/internal"]}}));
    assert_eq!(get("/admin").kind(&r), "deny");
    assert_eq!(get("/admin/users?x=1").kind(&r), "deny");
    assert_eq!(get("/internal/x").kind(&r), "deny");
    assert_eq!(get("/administrator").kind(&r), "allow");
    let r = deny_if(json!({"path": {"regex": "^/customers/[0-9]+/cards$"}}));
    assert_eq!(get("/customers/42/cards").kind(&r), "deny");
    assert_eq!(get("/customers/42/cards/").kind(&r), "deny");
    assert_eq!(get("/customers/x/cards").kind(&r), "allow");
}

#[test]
fn path_ignore_case_for_case_insensitive_upstreams() {
    let r = deny_if(json!({"path": {"prefix": "/Admin", "ignore_case": true}}));
    assert_eq!(get("/ADMIN/x").kind(&r), "deny");
    assert_eq!(get("/admin").kind(&r), "deny");
    assert_eq!(get("/%41dmin").kind(&r), "deny");
    assert_eq!(get("/administrator").kind(&r), "allow");
    let r = deny_if(json!({"path": {"exact": "/admin", "ignore_case": true}}));
    assert_eq!(get("/AdMiN/").kind(&r), "deny");
    let r = deny_if(json!({"path": {"exact": "/admin"}}));
    assert_eq!(get("/ADMIN").kind(&r), "allow");
}

#[test]
fn path_bypass_attempts_are_caught() {
    let exact = deny_if(json!({"path": {"exact": "/admin"}}));
    let prefix = deny_if(json!({"path": {"prefix": "/admin"}}));
    let regex = deny_if(json!({"path": {"regex": "^/admin(/|$)"}}));
    for p in [
        "/api/../admin",
        "/%2e%2e/admin",
        "/%2E%2E/admin",
        "//admin",
        "/admin;x=1",
        "/./admin",
        "/admin/",
        "/api/..;/admin",
        "/api%2f..%2fadmin",
        "/api\\..\\admin",
        "/%61dmin",
        "/admin?x=1",
        "/admin#x",
    ] {
        assert_eq!(get(p).kind(&exact), "deny", "exact {p}");
        assert_eq!(get(p).kind(&prefix), "deny", "prefix {p}");
        assert_eq!(get(p).kind(&regex), "deny", "regex {p}");
    }
    assert_eq!(get("/admin/users/..;/x").kind(&prefix), "deny");
}

#[test]
fn ambiguous_paths_can_be_refused() {
    let r = deny_if(json!({"path": {"ambiguous": true}}));
    assert_eq!(get("/a%2fb").kind(&r), "deny");
    assert_eq!(get("/../etc").kind(&r), "deny");
    assert_eq!(get("/a/b").kind(&r), "allow");
    assert_eq!(get("/a/../b").kind(&r), "allow");
}

#[test]
fn allow_list_cannot_be_escaped_by_dot_segments() {
    let r = rules(json!({"default_action": "deny", "rules": [
        {"name": "customers", "match": {"path": {"prefix": "/customers"}}, "action": "allow"}]}));
    assert_eq!(get("/customers/1").kind(&r), "allow");
    assert_eq!(get("/customers/../admin").kind(&r), "deny");
    assert_eq!(get("/customers/%2e%2e/admin").kind(&r), "deny");
    assert_eq!(get("/customers%2f..%2fadmin").kind(&r), "deny");
    assert_eq!(get("/customersX").kind(&r), "deny");
}

#[test]
fn headers_present_exact_regex() {
    let r = deny_if(json!({"headers": [{"name": "X-Debug", "present": true}]}));
    assert_eq!(get("/").header("x-debug", "1").kind(&r), "deny");
    assert_eq!(get("/").kind(&r), "allow");
    let r = deny_if(json!({"headers": [{"name": "x-debug", "present": false}]}));
    assert_eq!(get("/").kind(&r), "deny");
    let r = deny_if(json!({"headers": [{"name": "user-agent", "exact": "curl/8"}]}));
    assert_eq!(get("/").header("User-Agent", "curl/8").kind(&r), "deny");
    assert_eq!(get("/").header("user-agent", "curl/9").kind(&r), "allow");
    let r = deny_if(json!({"headers": [
        {"name": "content-type", "regex": "(?i)^text/"},
        {"name": "x-tenant", "exact": "a"}]}));
    // Every header condition must hold; any value of a repeated header counts.
    let req = get("/")
        .header("content-type", "TEXT/plain")
        .header("x-tenant", "b");
    assert_eq!(req.kind(&r), "allow");
    assert_eq!(req.header("x-tenant", "a").kind(&r), "deny");
}

// ---- identity ----

#[test]
fn identity_authenticated() {
    let r = deny_if(json!({"identity": {"authenticated": false}}));
    assert_eq!(get("/").kind(&r), "deny");
    assert_eq!(get("/").who("a", &[], &[]).kind(&r), "allow");
    let r = deny_if(json!({"identity": {"authenticated": true}}));
    assert_eq!(get("/").kind(&r), "allow");
    assert_eq!(get("/").who("a", &[], &[]).kind(&r), "deny");
}

#[test]
fn identity_subject_groups_scopes() {
    let r = deny_if(json!({"identity": {"subject": ["agent-7", "agent-8"]}}));
    assert_eq!(get("/").who("agent-8", &[], &[]).kind(&r), "deny");
    assert_eq!(get("/").who("agent-9", &[], &[]).kind(&r), "allow");
    assert_eq!(get("/").kind(&r), "allow");

    let any = deny_if(json!({"identity": {"groups_any": ["a", "b"]}}));
    let all = deny_if(json!({"identity": {"groups_all": ["a", "b"]}}));
    let none = deny_if(json!({"identity": {"groups_none": ["a", "b"]}}));
    let who = |g: &[&str]| get("/").who("s", g, &[]);
    assert_eq!(who(&["b"]).kind(&any), "deny");
    assert_eq!(who(&["c"]).kind(&any), "allow");
    assert_eq!(who(&["a"]).kind(&all), "allow");
    assert_eq!(who(&["b", "a", "c"]).kind(&all), "deny");
    assert_eq!(who(&["c"]).kind(&none), "deny");
    assert_eq!(who(&["c", "a"]).kind(&none), "allow");
    // No identity: no groups. `none` holds, `any` and `all` do not.
    assert_eq!(get("/").kind(&none), "deny");
    assert_eq!(get("/").kind(&any), "allow");
    assert_eq!(get("/").kind(&all), "allow");

    let r = deny_if(json!({"identity": {"scopes_all": ["customers:read", "customers:write"]}}));
    assert_eq!(
        get("/").who("s", &[], &["customers:read"]).kind(&r),
        "allow"
    );
    assert_eq!(
        get("/")
            .who("s", &[], &["customers:write", "customers:read"])
            .kind(&r),
        "deny"
    );
    let r = deny_if(json!({"identity": {"scopes_any": ["admin"]}}));
    assert_eq!(get("/").who("s", &[], &["admin"]).kind(&r), "deny");
    let r = deny_if(json!({"identity": {"scopes_none": ["customers:read"]}}));
    assert_eq!(get("/").who("s", &[], &["x"]).kind(&r), "deny");
    assert_eq!(
        get("/").who("s", &[], &["customers:read"]).kind(&r),
        "allow"
    );
}

// ---- body ----

#[test]
fn body_regex_and_keywords() {
    let r = deny_if(json!({"body": {"regex": "(?i)\\bdrop\\s+table\\b"}}));
    assert_eq!(post("/q", "select 1; DROP   TABLE x").kind(&r), "deny");
    assert_eq!(post("/q", "droptable").kind(&r), "allow");
    let r = deny_if(json!({"body": {"keywords": ["BEGIN PRIVATE KEY", "password"]}}));
    assert_eq!(post("/q", "my Password is").kind(&r), "deny");
    assert_eq!(post("/q", "-----begin private key-----").kind(&r), "deny");
    assert_eq!(post("/q", "nothing").kind(&r), "allow");
    // Keywords are literal, not regex.
    let r = deny_if(json!({"body": {"keywords": ["a.c"]}}));
    assert_eq!(post("/q", "abc").kind(&r), "allow");
    assert_eq!(post("/q", "A.C").kind(&r), "deny");
}

#[test]
fn body_text_matchers_see_decoded_json_strings() {
    let r = deny_if(json!({"body": {"keywords": ["drop table"]}}));
    assert_eq!(
        post("/q", r#"{"sql":"DROP\u0020TABLE x"}"#).kind(&r),
        "deny"
    );
}

#[test]
fn non_utf8_and_invalid_json_bodies_never_crash() {
    let text = deny_if(json!({"body": {"regex": "secret"}}));
    let json_eq = deny_if(json!({"body": {"json": [{"pointer": "/a", "exists": false}]}}));
    let bad: Vec<Vec<u8>> = vec![
        b"\xff\xfe\x00secret\xc3".to_vec(),
        b"{\"a\": ".to_vec(),
        b"{\"a\": \"\xff secret\"}".to_vec(),
        vec![0u8; 100],
        b"".to_vec(),
        b"[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[[".to_vec(),
    ];
    for b in &bad {
        let e = post("/q", b.clone()).eval(&text);
        assert!(!e.needs_body);
        // Text matchers still apply to bodies that are not UTF-8 or not JSON.
        let want = if String::from_utf8_lossy(b).contains("secret") {
            "deny"
        } else {
            "allow"
        };
        assert_eq!(e.decision.kind(), want, "{b:?}");
        // JSON conditions never match a body that is not JSON, even `exists: false`.
        assert_eq!(post("/q", b.clone()).kind(&json_eq), "allow", "{b:?}");
    }
    assert_eq!(post("/q", b"\xff\xfesecret".to_vec()).kind(&text), "deny");
}

#[test]
fn body_json_pointer_conditions() {
    let r = deny_if(json!({"body": {"json": [{"pointer": "/customers/*/ssn", "exists": true}]}}));
    assert_eq!(
        post("/c", r#"{"customers":[{"id":1},{"ssn":"x"}]}"#).kind(&r),
        "deny"
    );
    assert_eq!(post("/c", r#"{"customers":[{"id":1}]}"#).kind(&r), "allow");
    let r = deny_if(json!({"body": {"json": [
        {"pointer": "/amount", "equals": 1000},
        {"pointer": "/currency", "regex": "^(USD|EUR)$"}]}}));
    assert_eq!(
        post("/p", r#"{"amount":1000,"currency":"EUR"}"#).kind(&r),
        "deny"
    );
    assert_eq!(
        post("/p", r#"{"amount":1000,"currency":"GBP"}"#).kind(&r),
        "allow"
    );
    assert_eq!(
        post("/p", r#"{"amount":"1000","currency":"EUR"}"#).kind(&r),
        "allow"
    );
    let r = deny_if(json!({"body": {"json": [{"pointer": "/debug", "exists": false}]}}));
    assert_eq!(post("/p", "{}").kind(&r), "deny");
    assert_eq!(post("/p", r#"{"debug":1}"#).kind(&r), "allow");
}

// ---- shapes ----

fn chat(model: &str, text: &str, tools: &[&str]) -> Req {
    let tools: Vec<_> = tools
        .iter()
        .map(|t| json!({"type": "function", "function": {"name": t, "parameters": {}}}))
        .collect();
    post(
        "/v1/chat/completions",
        json!({"model": model, "messages": [{"role": "user", "content": text}], "tools": tools})
            .to_string(),
    )
    .authority("api.openai.com")
}

#[test]
fn openai_chat_completions() {
    let r = deny_if(json!({"openai": {"models": ["gpt-4o*"]}}));
    assert_eq!(chat("gpt-4o-mini", "hi", &[]).kind(&r), "deny");
    assert_eq!(chat("o3", "hi", &[]).kind(&r), "allow");
    // The endpoint must be an OpenAI one: the same body elsewhere is not.
    let mut other = chat("gpt-4o", "hi", &[]);
    other.path = "/v1/embeddings".into();
    assert_eq!(other.kind(&r), "allow");
    let r = deny_if(
        json!({"openai": {"api": "chat_completions", "text_keywords": ["project bluebird"]}}),
    );
    assert_eq!(
        chat("m", "tell me about Project Bluebird", &[]).kind(&r),
        "deny"
    );
    assert_eq!(chat("m", "hello", &[]).kind(&r), "allow");
    let r = deny_if(json!({"openai": {"text_regex": "\\b\\d{3}-\\d{2}-\\d{4}\\b"}}));
    assert_eq!(chat("m", "ssn 123-45-6789", &[]).kind(&r), "deny");
    let r = deny_if(json!({"openai": {"tools": ["shell", "delete_*"]}}));
    assert_eq!(
        chat("m", "x", &["lookup", "delete_customer"]).kind(&r),
        "deny"
    );
    assert_eq!(chat("m", "x", &["lookup"]).kind(&r), "allow");
}

#[test]
fn openai_responses() {
    let r = deny_if(
        json!({"openai": {"api": "responses", "models": "gpt-4.1", "tools": ["web_search"]}}),
    );
    let body = json!({"model": "gpt-4.1", "input": "hi", "tools": [{"type": "web_search"}]});
    assert_eq!(post("/v1/responses", body.to_string()).kind(&r), "deny");
    assert_eq!(
        post("/v1/chat/completions", body.to_string()).kind(&r),
        "allow"
    );
    let r = deny_if(json!({"openai": {"text_keywords": ["confidential"]}}));
    let body = json!({"model": "m", "input": [{"role": "user", "content": [{"type": "input_text", "text": "CONFIDENTIAL memo"}]}]});
    assert_eq!(post("/v1/responses", body.to_string()).kind(&r), "deny");
}

#[test]
fn openai_text_applies_to_bodies_that_are_not_json() {
    let r = deny_if(json!({"openai": {"text_keywords": ["secret"]}}));
    assert_eq!(
        post("/v1/chat/completions", b"\xffsecret{".to_vec()).kind(&r),
        "deny"
    );
    let r = deny_if(json!({"openai": {"models": ["*"]}}));
    assert_eq!(
        post("/v1/chat/completions", b"\xff".to_vec()).kind(&r),
        "allow"
    );
}

fn mcp(method: &str, params: serde_json::Value) -> Req {
    post(
        "/mcp",
        json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params}).to_string(),
    )
}

#[test]
fn mcp_methods_tools_arguments() {
    let r = deny_if(json!({"mcp": {"tools": ["delete_*", "drop_table"]}}));
    assert_eq!(
        mcp(
            "tools/call",
            json!({"name": "delete_customer", "arguments": {}})
        )
        .kind(&r),
        "deny"
    );
    assert_eq!(
        mcp("tools/call", json!({"name": "get_customer"})).kind(&r),
        "allow"
    );
    assert_eq!(mcp("tools/list", json!({})).kind(&r), "allow");
    let r = deny_if(json!({"mcp": {"methods": ["resources/*"]}}));
    assert_eq!(mcp("resources/read", json!({"uri": "x"})).kind(&r), "deny");
    assert_eq!(mcp("tools/list", json!({})).kind(&r), "allow");
    let r = deny_if(
        json!({"mcp": {"tools": "refund", "arguments": [{"pointer": "/amount", "regex": "^[0-9]{4,}$"}]}}),
    );
    assert_eq!(
        mcp(
            "tools/call",
            json!({"name": "refund", "arguments": {"amount": 5000}})
        )
        .kind(&r),
        "deny"
    );
    assert_eq!(
        mcp(
            "tools/call",
            json!({"name": "refund", "arguments": {"amount": 50}})
        )
        .kind(&r),
        "allow"
    );
    assert_eq!(
        mcp(
            "tools/call",
            json!({"name": "other", "arguments": {"amount": 5000}})
        )
        .kind(&r),
        "allow"
    );
    // Not JSON-RPC: no match.
    assert_eq!(
        post(
            "/mcp",
            r#"{"method":"tools/call","params":{"name":"refund"}}"#
        )
        .kind(&r),
        "allow"
    );
}

#[test]
fn mcp_batch_needs_one_message_to_match_every_condition() {
    let r = deny_if(
        json!({"mcp": {"tools": "refund", "arguments": [{"pointer": "/amount", "equals": 5000}]}}),
    );
    let split = json!([
        {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": {"name": "refund", "arguments": {"amount": 1}}},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "other", "arguments": {"amount": 5000}}}
    ]);
    assert_eq!(post("/mcp", split.to_string()).kind(&r), "allow");
    let hit = json!([
        {"jsonrpc": "2.0", "method": "notifications/initialized"},
        {"jsonrpc": "2.0", "id": 2, "method": "tools/call", "params": {"name": "refund", "arguments": {"amount": 5000}}}
    ]);
    assert_eq!(post("/mcp", hit.to_string()).kind(&r), "deny");
}

#[test]
fn not_negates_a_nested_match() {
    let r =
        deny_if(json!({"openai": {}, "not": {"openai": {"models": ["gpt-4o-mini", "gpt-4.1*"]}}}));
    assert_eq!(chat("gpt-4o-mini", "x", &[]).kind(&r), "allow");
    assert_eq!(chat("gpt-4.1-nano", "x", &[]).kind(&r), "allow");
    assert_eq!(chat("o1-pro", "x", &[]).kind(&r), "deny");
    // Decidable from headers when the nested part already fails on them.
    let r = deny_if(json!({"not": {"methods": ["GET"], "body": {"keywords": ["x"]}}}));
    let e = post("/", "").no_body().eval(&r);
    assert!(!e.needs_body);
    assert_eq!(e.decision.kind(), "deny");
    let e = get("/").eval(&r);
    assert!(e.needs_body);
    assert_eq!(get("/").kind(&r), "deny");
    assert_eq!(post("/", "x").method("GET").kind(&r), "allow");
    let e = err(
        json!({"default_action": "allow", "rules": [{"name": "a", "action": "deny", "match": {"not": {}}}]}),
    );
    assert_eq!(e.path, "rules[0].match.not");
    let e = err(
        json!({"default_action": "allow", "rules": [{"name": "a", "action": "deny", "match": {"not": {"path": {"regex": "("}}}}]}),
    );
    assert_eq!(e.path, "rules[0].match.not.path.regex");
}

// ---- combination ----

fn four() -> Rules {
    rules(json!({"default_action": "deny", "rules": [
        {"name": "allow-all", "match": {}, "action": "allow"},
        {"name": "mask-a", "match": {"headers": [{"name": "a", "present": true}]}, "action": "mask",
         "mask": {"request": "secrets", "response": ["pii"]}},
        {"name": "mask-b", "match": {"headers": [{"name": "b", "present": true}]}, "action": "mask",
         "mask": {"response": ["pii", "cards"]}},
        {"name": "approve", "match": {"headers": [{"name": "c", "present": true}]}, "action": "require_approval"},
        {"name": "deny-d", "match": {"headers": [{"name": "d", "present": true}]}, "action": "deny",
         "deny": {"status": 451, "message": "not here"}},
        {"name": "deny-e", "match": {"headers": [{"name": "e", "present": true}]}, "action": "deny"}
    ]}))
}

#[test]
fn strongest_action_wins() {
    let r = four();
    let with = |hs: &[&str]| {
        let mut q = get("/");
        for h in hs {
            q = q.header(h, "1");
        }
        q.body = Some(Vec::new());
        q.eval(&r)
    };
    assert_eq!(with(&[]).decision, Ruling::Allow);
    assert_eq!(with(&["a"]).decision.kind(), "mask");
    assert_eq!(with(&["a", "c"]).decision.kind(), "require_approval");
    assert_eq!(with(&["a", "c", "d"]).decision.kind(), "deny");
    assert_eq!(with(&["d", "e"]).decision.kind(), "deny");
    // The first deny rule in policy order names the refusal.
    let Ruling::Deny(d) = with(&["e", "d"]).decision else {
        panic!()
    };
    assert_eq!(d.rule.as_deref(), Some("deny-d"));
    assert_eq!(d.status, 451);
    let reply = d.reply();
    assert_eq!(reply.status, 451);
    let body: serde_json::Value = serde_json::from_str(&reply.body("req-1")).unwrap();
    assert_eq!(
        body,
        json!({"error": "policy_denied", "reason": "not here", "rule": "deny-d", "request_id": "req-1"})
    );
    let Ruling::Deny(d) = with(&["e"]).decision else {
        panic!()
    };
    assert_eq!(d.status, 403);
    assert_eq!(d.message, "denied by policy rule \"deny-e\"");
    // Every matching rule is reported, in policy order.
    let fired: Vec<_> = with(&["d", "a"])
        .fired
        .into_iter()
        .map(|h| h.rule)
        .collect();
    assert_eq!(fired, ["allow-all", "mask-a", "deny-d"]);
}

#[test]
fn masks_accumulate() {
    let r = four();
    let q = get("/").header("a", "1").header("b", "1").header("c", "1");
    let e = q.eval(&r);
    let Ruling::RequireApproval { rules, masks } = e.decision else {
        panic!("{:?}", e.decision)
    };
    assert_eq!(rules, ["approve"]);
    assert_eq!(masks.request, ["secrets"]);
    assert_eq!(masks.response, ["pii", "cards"]);
    assert_eq!(masks.rules, ["mask-a", "mask-b"]);
    let e = get("/").header("b", "1").eval(&r);
    assert_eq!(
        e.decision,
        Ruling::Mask(MaskPlan {
            request: vec![],
            response: vec!["pii".into(), "cards".into()],
            rules: vec!["mask-b".into()]
        })
    );
}

#[test]
fn default_action_applies_only_when_no_enforced_rule_matches() {
    let r = rules(json!({"default_action": "deny", "rules": [
        {"name": "reads", "match": {"methods": ["GET"]}, "action": "allow"}]}));
    assert_eq!(get("/").kind(&r), "allow");
    let e = get("/").method("POST").eval(&r);
    let Ruling::Deny(d) = &e.decision else {
        panic!()
    };
    assert_eq!(d.rule, None);
    assert_eq!(d.status, 403);
    assert!(e.fired.is_empty());
    let body: serde_json::Value = serde_json::from_str(&d.reply().body("i")).unwrap();
    assert!(body.get("rule").is_none());
    let r = rules(json!({"default_action": "allow", "rules": []}));
    assert_eq!(get("/").kind(&r), "allow");
    assert_eq!(
        rules(json!({}))
            .evaluate(&RequestView {
                method: "GET",
                authority: "",
                path: "",
                headers: &[],
                identity: None,
                body: None,
            })
            .decision,
        Ruling::Allow
    );
}

#[test]
fn monitor_rules_never_change_the_outcome() {
    let r = rules(json!({"default_action": "allow", "rules": [
        {"name": "would-deny", "match": {"methods": ["DELETE"]}, "action": "deny", "mode": "monitor"},
        {"name": "would-mask", "match": {}, "action": "mask", "mode": "monitor", "mask": {"response": "pii"}},
        {"name": "enforced-mask", "match": {"methods": ["PUT"]}, "action": "mask", "mask": {"response": "cards"}}
    ]}));
    let e = get("/").method("DELETE").eval(&r);
    assert_eq!(e.decision, Ruling::Allow);
    assert_eq!(
        e.fired,
        vec![
            Hit {
                rule: "would-deny".into(),
                action: ActionKind::Deny,
                monitor: true
            },
            Hit {
                rule: "would-mask".into(),
                action: ActionKind::Mask,
                monitor: true
            },
        ]
    );
    assert_eq!(e.monitor_decision.as_ref().map(Ruling::kind), Some("deny"));
    // Monitor masks are not applied either.
    let e = get("/").method("PUT").eval(&r);
    let Ruling::Mask(m) = &e.decision else {
        panic!()
    };
    assert_eq!(m.response, ["cards"]);
    let Some(Ruling::Mask(would)) = &e.monitor_decision else {
        panic!()
    };
    assert_eq!(would.response, ["pii", "cards"]);
    // Same outcome either way: no monitor decision reported.
    let r = rules(json!({"default_action": "allow", "rules": [
        {"name": "m", "match": {}, "action": "allow", "mode": "monitor"}]}));
    let e = get("/").eval(&r);
    assert_eq!(e.decision, Ruling::Allow);
    assert_eq!(e.fired.len(), 1);
    assert_eq!(e.monitor_decision, None);
}

// ---- two phases ----

#[test]
fn headers_only_is_final_without_body_rules() {
    let r = four();
    let e = get("/").header("d", "1").eval(&r);
    assert!(!e.needs_body);
    assert!(!r.inspects_body());
}

#[test]
fn needs_body_only_when_a_body_rule_could_still_fire() {
    let r = rules(json!({"default_action": "allow", "rules": [
        {"name": "no-drop", "match": {"methods": ["POST"], "body": {"keywords": ["drop table"]}}, "action": "deny"},
        {"name": "no-admin", "match": {"path": {"prefix": "/admin"}}, "action": "deny"}
    ]}));
    assert!(r.inspects_body());
    // A GET can never fire the body rule: final at once.
    let e = get("/x").eval(&r);
    assert!(!e.needs_body);
    assert_eq!(e.decision, Ruling::Allow);
    // A POST could: hold it, provisional decision.
    let e = post("/x", "").no_body().eval(&r);
    assert!(e.needs_body);
    // A deny that already matched is final: no need to wait for the body.
    let e = post("/admin", "").no_body().eval(&r);
    assert!(!e.needs_body);
    assert_eq!(e.decision.kind(), "deny");
    // Second phase: always final.
    let e = post("/x", "please DROP TABLE users").eval(&r);
    assert!(!e.needs_body);
    assert_eq!(e.decision.kind(), "deny");
    let e = post("/x", "fine").eval(&r);
    assert!(!e.needs_body);
    assert_eq!(e.decision, Ruling::Allow);
}

#[test]
fn needs_body_with_default_deny_and_monitor_rules() {
    // Default deny is not final: a body allow rule could still allow.
    let r = rules(json!({"default_action": "deny", "rules": [
        {"name": "only-small-model", "match": {"openai": {"models": ["gpt-4o-mini"]}}, "action": "allow"},
        {"name": "watch", "match": {"mcp": {"methods": ["tools/call"]}}, "action": "deny", "mode": "monitor"}
    ]}));
    let mut q = chat("gpt-4o-mini", "hi", &[]);
    let body = q.body.take();
    let e = q.eval(&r);
    assert!(e.needs_body);
    assert_eq!(e.decision.kind(), "deny", "provisional");
    q.body = body;
    assert_eq!(q.eval(&r).decision, Ruling::Allow);
    // Monitor rules with body conditions hold the request too (to report them).
    let e = post("/mcp", "").no_body().eval(&r);
    assert!(e.needs_body);
}

// ---- configuration errors ----

#[test]
fn config_errors_name_the_field() {
    let cases = [
        (
            json!({"rules": [{"name": "a", "action": "allow"}]}),
            "default_action",
            "required",
        ),
        (
            json!({"default_action": "block"}),
            "default_action",
            "unknown variant",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "allow", "mtach": {}}]}),
            "rules[0].mtach",
            "unknown field",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "allow"}, {"name": "b", "action": "nope"}]}),
            "rules[1].action",
            "unknown variant",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "allow", "match": {"path": {"regex": "a(b"}}}]}),
            "rules[0].match.path.regex",
            "invalid regex: ",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "allow", "match": {"path": {"prefix": "admin"}}}]}),
            "rules[0].match.path.prefix",
            "starts with `/`",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "allow", "match": {"path": {}}}]}),
            "rules[0].match.path",
            "at least one",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "allow"}, {"name": "a", "action": "deny"}]}),
            "rules[1].name",
            "duplicate rule name \"a\" (also rules[0])",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "", "action": "allow"}]}),
            "rules[0].name",
            "invalid rule name",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "mask"}]}),
            "rules[0].mask",
            "required",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "mask", "mask": {}}]}),
            "rules[0].mask",
            "name a masking profile",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "allow", "mask": {"request": "x"}}]}),
            "rules[0].mask",
            "only for",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "allow", "deny": {}}]}),
            "rules[0].deny",
            "only for",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "deny", "deny": {"status": 200}}]}),
            "rules[0].deny.status",
            "between 400 and 599",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "deny", "match": {"methods": []}}]}),
            "rules[0].match.methods",
            "empty",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "deny", "match": {"methods": "GE T"}}]}),
            "rules[0].match.methods",
            "invalid method",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "deny", "match": {"methods": 5}}]}),
            "rules[0].match.methods",
            "a string or a list of strings",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "deny", "match": {"authority": "*.x:99999"}}]}),
            "rules[0].match.authority",
            "invalid port",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "deny", "match": {"headers": [{"name": "x"}]}}]}),
            "rules[0].match.headers[0]",
            "exactly one",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "deny", "match": {"headers": [{"name": "x", "regex": "("}]}}]}),
            "rules[0].match.headers[0].regex",
            "invalid regex",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "deny", "match": {"identity": {}}}]}),
            "rules[0].match.identity",
            "at least one",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "deny", "match": {"body": {"json": [{"pointer": "a", "exists": true}]}}}]}),
            "rules[0].match.body.json[0].pointer",
            "starts with `/`",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "deny", "match": {"body": {"json": [{"pointer": "/a", "exists": true, "equals": 1}]}}}]}),
            "rules[0].match.body.json[0]",
            "exactly one",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "deny", "match": {"body": {"keywords": ["a", ""]}}}]}),
            "rules[0].match.body.keywords",
            "empty",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "deny", "match": {"openai": {"api": "embeddings"}}}]}),
            "rules[0].match.openai.api",
            "unknown variant",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "deny", "match": {"mcp": {"methods": ["tools/list"], "tools": ["x"]}}}]}),
            "rules[0].match.mcp.methods",
            "excludes",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "deny", "match": {"mcp": {"arguments": [{"pointer": "/a", "regex": "["}]}}}]}),
            "rules[0].match.mcp.arguments[0].regex",
            "invalid regex",
        ),
        (
            json!({"default_action": "allow", "rules": [{"name": "a", "action": "deny", "mode": "shadow"}]}),
            "rules[0].mode",
            "unknown variant",
        ),
    ];
    let mut cases = cases.to_vec();
    cases.push((
        json!({"default_action": "allow", "rules": [{"name": "a", "action": "deny",
            "match": {"body": {"json": [{"pointer": "/a", "exists": true, "all": true}]}}}]}),
        "rules[0].match.body.json[0].all",
        "applies to",
    ));
    for (doc, path, reason) in cases {
        let e = err(doc.clone());
        assert_eq!(e.path, path, "{doc} -> {e}");
        assert!(e.reason.contains(reason), "{doc} -> {e}");
        assert!(!e.reason.contains('\n'), "{e}");
    }
}

#[test]
fn mask_references_name_their_place() {
    let r = four();
    assert_eq!(
        r.mask_references(),
        vec![
            MaskRef {
                path: "rules[1].mask.request".into(),
                profile: "secrets".into()
            },
            MaskRef {
                path: "rules[1].mask.response".into(),
                profile: "pii".into()
            },
            MaskRef {
                path: "rules[2].mask.response".into(),
                profile: "pii".into()
            },
            MaskRef {
                path: "rules[2].mask.response".into(),
                profile: "cards".into()
            },
        ]
    );
}

#[test]
fn rules_clone_cheaply() {
    let a = four();
    let b = a.clone();
    assert!(
        std::sync::Arc::ptr_eq(&a.rules, &b.rules),
        "the compiled rules are shared"
    );
    assert_eq!(b.len(), 6);
    assert_eq!(a.default_action(), DefaultAction::Deny);
    assert_eq!(a.len(), 6);
}

#[test]
fn explain_lists_every_condition() {
    let r = rules(json!({"default_action": "allow", "rules": [
        {"name": "x", "match": {"methods": ["POST"], "path": {"prefix": "/admin"}, "body": {"keywords": ["k"]}}, "action": "deny"}]}));
    let t = get("/admin/../x").explain_with(&r);
    assert_eq!(t.len(), 1);
    let t0 = &t[0];
    assert_eq!(t0.result, MatchResult::NoMatch);
    let results: Vec<_> = t0.conditions.iter().map(|c| c.1).collect();
    assert_eq!(
        results,
        [
            MatchResult::NoMatch,
            MatchResult::NoMatch,
            MatchResult::NeedsBody
        ]
    );
    assert!(t0.conditions[1].0.contains("/admin"), "{:?}", t0.conditions);
}

impl Req {
    fn explain_with(&self, r: &Rules) -> Vec<RuleTrace> {
        r.explain(&RequestView {
            method: self.method,
            authority: self.authority,
            path: &self.path,
            headers: &self.headers,
            identity: self.identity.as_ref(),
            body: self.body.as_deref(),
        })
    }
}

/// Deterministic pseudo-random inputs: no path, header or body makes any
/// matcher panic (a panic would kill the Envoy worker's VM).
#[test]
fn arbitrary_inputs_never_panic() {
    let r = rules(json!({"default_action": "deny", "rules": [
        {"name": "p", "match": {"path": {"prefix": "/a", "regex": "b"}, "authority": ["*.x", "y:1"]}, "action": "deny"},
        {"name": "amb", "match": {"path": {"ambiguous": true}}, "action": "allow"},
        {"name": "h", "match": {"headers": [{"name": "x", "regex": "."}], "methods": ["GET"]}, "action": "mask", "mask": {"request": "s"}},
        {"name": "b", "match": {"body": {"regex": "z", "keywords": ["q"], "json": [{"pointer": "/*/0/*", "regex": "."}]}}, "action": "deny"},
        {"name": "o", "match": {"openai": {"models": "*", "text_keywords": ["a"], "tools": ["t*"]}}, "action": "deny"},
        {"name": "m", "match": {"mcp": {"tools": "*", "arguments": [{"pointer": "/*", "equals": 1, "all": true}]}}, "action": "require_approval"},
        {"name": "n", "match": {"not": {"identity": {"groups_all": ["g"]}, "body": {"keywords": ["k"]}}}, "action": "allow", "mode": "monitor"}
    ]}));
    let mut seed: u64 = 0x9e37_79b9_7f4a_7c15;
    let mut next = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        seed
    };
    let alphabet: &[&[u8]] = &[
        b"/",
        b"%",
        b"2e",
        b"2f",
        b"5c",
        b".",
        b"..",
        b";",
        b"?",
        b"#",
        b"\\",
        b"a",
        b"b",
        b"%zz",
        b"\xff",
        b"\xc3",
        b"{",
        b"}",
        b"[",
        b"]",
        b"\"",
        b":",
        b",",
        b"0",
        b"1",
        b"jsonrpc",
        b"\"2.0\"",
        b"method",
        b"tools/call",
        b"params",
        b"name",
        b"model",
        b"messages",
        b"content",
        b"input",
        b"tools",
        b"*",
        b"@",
        b" ",
        b"\x00",
    ];
    let mut gen = |n: usize| {
        let mut out = Vec::new();
        for _ in 0..n {
            let i = (next() as usize) % alphabet.len();
            out.extend_from_slice(alphabet.get(i).copied().unwrap_or(b""));
        }
        out
    };
    for round in 0..3000 {
        let path = String::from_utf8_lossy(&gen(round % 23)).into_owned();
        let authority = String::from_utf8_lossy(&gen(round % 5)).into_owned();
        let header = String::from_utf8_lossy(&gen(round % 7)).into_owned();
        let body = gen(round % 61);
        let headers = vec![("x".to_string(), header)];
        let id = Identity {
            groups: vec!["g".into()],
            ..Identity::default()
        };
        for with_body in [false, true] {
            let view = RequestView {
                method: if round % 2 == 0 { "GET" } else { "POST" },
                authority: &authority,
                path: &path,
                headers: &headers,
                identity: (round % 3 == 0).then_some(&id),
                body: with_body.then_some(body.as_slice()),
            };
            let e = r.evaluate(&view);
            assert!(!(with_body && e.needs_body));
            let _ = r.explain(&view);
        }
    }
    // Valid MCP and OpenAI shapes with wrong types inside never panic either.
    for body in [
        json!({"jsonrpc": "2.0", "method": "tools/call", "params": 5}),
        json!({"jsonrpc": "2.0", "method": "tools/call", "params": {"name": 5, "arguments": "x"}}),
        json!([{"jsonrpc": "2.0", "method": 1}, null, []]),
        json!({"model": 5, "messages": "x", "tools": {"a": 1}, "input": {"a": 1}}),
        json!({"model": "m", "messages": [null, 1, {"content": 5, "tool_calls": "x"}]}),
    ] {
        for path in ["/v1/chat/completions", "/v1/responses", "/mcp"] {
            let _ = post(path, body.to_string()).eval(&r);
        }
    }
}
