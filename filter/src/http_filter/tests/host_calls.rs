//! What a request costs Envoy in host calls, call by call: each one is a
//! crossing between Envoy and the VM (and a data-returning one a second
//! crossing, for Envoy to allocate the answer in the VM's memory). Pinned
//! here so that a call added on the common path is a decision, not an
//! accident (docs/performance.md, "Where a request's time goes").
//! Also: a response no mask applies to is never read, and a request whose
//! rules need only its headers is never held for its body.

use super::{get, post, worker, HttpFilter};
use crate::envoy::mock::MockEnvoy;
use crate::http_filter::Action;

/// The bench's base policy: transport and size checks only.
const BASE: &str = r#"{"mode":"enforce","require_tls":true,"limits":{"max_body_bytes":1048576}}"#;

/// A mask on `/customers` responses, a body rule on `/notes` writes, a
/// header rule on deletes.
const SCOPED: &str = r#"{
    "masking": {"profiles": {"pii": {"detectors": ["email"]}}},
    "default_action": "allow",
    "rules": [
        {"name": "pii", "match": {"methods": ["GET"], "path": {"prefix": "/customers"}},
         "action": "mask", "mask": {"response": ["pii"]}},
        {"name": "no-drop", "match": {"methods": ["POST"], "path": {"prefix": "/notes"},
         "body": {"keywords": ["drop table"]}}, "action": "deny"},
        {"name": "no-deletes", "match": {"methods": ["DELETE"]}, "action": "deny"}
    ]
}"#;

const RESPONSE: &[u8] = br#"{"email":"ada@example.com"}"#;

/// An upstream answer with a body, as the bench's.
fn respond(envoy: &MockEnvoy) {
    let mut s = envoy.0.borrow_mut();
    s.response_headers = vec![
        (":status".into(), "200".into()),
        ("content-type".into(), "application/json".into()),
        ("content-length".into(), RESPONSE.len().to_string()),
    ];
    s.response_body = RESPONSE.to_vec();
}

/// The response's callbacks in two chunks, then the log; the calls made.
fn response_and_log(f: &mut HttpFilter, envoy: &MockEnvoy) -> (Vec<Action>, Vec<String>) {
    respond(envoy);
    let half = RESPONSE.len() / 2;
    let actions = vec![
        f.on_response_headers(envoy, false),
        f.on_response_body(envoy, half, false),
        f.on_response_body(envoy, RESPONSE.len(), true),
    ];
    f.on_log(envoy);
    (actions, envoy.take_calls())
}

#[test]
fn a_base_policy_request_costs_seven_host_calls() {
    let envoy = get("/customers/3k");
    let mut f = HttpFilter::new(1, Some(worker(BASE)));
    assert_eq!(f.on_request_headers(&envoy, true), Action::Continue);
    assert_eq!(
        envoy.take_calls(),
        ["now", "request_headers", "property(connection.tls_version)"]
    );
    let (actions, calls) = response_and_log(&mut f, &envoy);
    assert_eq!(actions, [Action::Continue; 3]);
    // The status and length for the record come from the response headers;
    // the body chunks cost nothing but Envoy's own call into the VM.
    assert_eq!(
        calls,
        ["response_headers", "now", "set_property", "count"],
        "no attribute read, no body read"
    );
    assert_eq!(
        envoy.0.borrow().response_body,
        RESPONSE,
        "passed as it came"
    );
}

#[test]
fn a_response_no_mask_applies_to_is_never_read_or_held() {
    let envoy = get("/orders");
    let mut f = HttpFilter::new(1, Some(worker(SCOPED)));
    assert_eq!(f.on_request_headers(&envoy, true), Action::Continue);
    envoy.take_calls();
    let (actions, calls) = response_and_log(&mut f, &envoy);
    assert_eq!(actions, [Action::Continue; 3], "nothing held");
    assert_eq!(calls, ["response_headers", "now", "set_property", "count"]);
    assert!(
        envoy.header("accept-encoding").is_none(),
        "nothing asked of the upstream"
    );

    // The control: where the mask applies, the response is held whole and read.
    let envoy = get("/customers");
    let mut f = HttpFilter::new(1, Some(worker(SCOPED)));
    assert_eq!(f.on_request_headers(&envoy, true), Action::Continue);
    envoy.take_calls();
    let (actions, calls) = response_and_log(&mut f, &envoy);
    assert_eq!(actions, [Action::Pause, Action::Pause, Action::Continue]);
    assert!(calls.contains(&"read_body".to_string()), "{calls:?}");
    assert!(!envoy.0.borrow().response_body.starts_with(RESPONSE));
}

#[test]
fn a_request_whose_rules_need_only_headers_is_never_held_for_its_body() {
    let body = b"please drop table users";
    // A POST no body rule can fire on (another path): forwarded at its
    // headers, every body chunk passed on unread.
    let envoy = post("/orders", "text/plain", body);
    let mut f = HttpFilter::new(1, Some(worker(SCOPED)));
    assert_eq!(f.on_request_headers(&envoy, false), Action::Continue);
    assert_eq!(f.on_request_body(&envoy, 7, false), Action::Continue);
    assert_eq!(
        f.on_request_body(&envoy, body.len() - 7, true),
        Action::Continue
    );
    let calls = envoy.take_calls();
    assert!(!calls.contains(&"read_body".to_string()), "{calls:?}");
    // A header rule decides at the headers too, body or not.
    let envoy = MockEnvoy::with_request(&[
        (":method", "DELETE"),
        (":authority", "api.internal"),
        (":path", "/notes/1"),
        ("x-request-id", "req-1"),
    ]);
    let mut f = HttpFilter::new(1, Some(worker(SCOPED)));
    assert_eq!(f.on_request_headers(&envoy, false), Action::Pause);
    assert_eq!(envoy.replies()[0].1, 403);
    assert!(!envoy.take_calls().contains(&"read_body".to_string()));

    // The control: where the body rule could fire, the body is held and read.
    let envoy = post("/notes", "text/plain", body);
    let mut f = HttpFilter::new(1, Some(worker(SCOPED)));
    assert_eq!(f.on_request_headers(&envoy, false), Action::Pause);
    assert_eq!(f.on_request_body(&envoy, 7, false), Action::Pause);
    assert_eq!(f.on_request_body(&envoy, body.len(), true), Action::Pause);
    assert!(envoy.take_calls().contains(&"read_body".to_string()));
    let replies = envoy.replies();
    assert_eq!(replies[0].1, 403, "{replies:?}");
    assert!(replies[0].2.contains("no-drop"), "{replies:?}");
}

/// An HS256 identity (`exempt_routes` as given) and a request carrying a
/// token it accepts: the calls its request headers cost.
fn jwt_request_calls(exempt_routes: &str) -> Vec<String> {
    use crate::identity::jwt::b64url_encode;
    use hmac::{Hmac, KeyInit, Mac};
    let secret = [7u8; 32];
    let policy = format!(
        r#"{{"mode":"enforce","require_tls":true,"identity":{{"exempt_routes":{exempt_routes},
            "providers":[{{"name":"idp","issuer":"https://idp.test","audiences":["gw"],
            "algorithms":["HS256"],"hmac_secret":"{}"}}]}}}}"#,
        b64url_encode(&secret)
    );
    let input = format!(
        "{}.{}",
        b64url_encode(br#"{"alg":"HS256","typ":"JWT"}"#),
        b64url_encode(br#"{"iss":"https://idp.test","aud":"gw","sub":"agent","exp":4102444800}"#)
    );
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(&secret).unwrap();
    mac.update(input.as_bytes());
    let token = format!("{input}.{}", b64url_encode(&mac.finalize().into_bytes()));
    let envoy = MockEnvoy::with_request(&[
        (":method", "GET"),
        (":authority", "api.internal"),
        (":path", "/customers/3k"),
        ("x-request-id", "req-1"),
        ("authorization", &format!("Bearer {token}")),
    ]);
    let mut f = HttpFilter::new(1, Some(worker(&policy)));
    assert_eq!(f.on_request_headers(&envoy, true), Action::Continue);
    assert!(
        f.flow().exchange.identity.is_some(),
        "the token was accepted"
    );
    envoy.take_calls()
}

#[test]
fn a_jwt_request_reads_the_route_name_only_if_a_route_is_exempt() {
    // The route name is one more host call (and VM entry) per request.
    assert_eq!(
        jwt_request_calls("[]"),
        [
            "now",
            "request_headers",
            "property(connection.tls_version)",
            "set_request_header"
        ]
    );
    assert!(jwt_request_calls(r#"["health"]"#).contains(&"property(xds.route_name)".to_string()));
}
