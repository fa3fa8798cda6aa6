use super::config::MAX_PREVIEW_BYTES;
use super::reply::{read, Failure, Status};
use super::request::{preview, review_headers, ANONYMOUS_ISSUER, ANONYMOUS_SUBJECT};
use super::*;
use crate::audit::Decision;
use crate::config::Policy;
use crate::identity::Identity;

const KEY: &str = "filter-key-0123456789";

fn policy(approval: &str) -> Result<Policy, crate::policy::PolicyError> {
    Policy::from_json(
        format!(
            r#"{{"masking":{{"profiles":{{"pii":{{"detectors":["email"]}}}}}},
                "default_action":"allow",
                "rules":[{{"name":"export","match":{{}},"action":"require_approval"}}],
                "approval":{approval}}}"#
        )
        .as_bytes(),
    )
}

fn cfg() -> ApprovalConfig {
    policy(&format!(
        r#"{{"cluster":"approver","api_key":"{KEY}","max_wait_secs":60,"poll_secs":25,"timeout_ms":5000}}"#
    ))
    .unwrap()
    .approval
    .unwrap()
}

fn ident(sub: &str) -> Identity {
    Identity {
        provider: "corp".into(),
        issuer: "https://idp.example.com".into(),
        subject: sub.into(),
        groups: vec!["agents".into()],
        scopes: vec!["read".into()],
    }
}

const RULES: &[String] = &[];

fn held<'a>(id: Option<&'a Identity>, rules: &'a [String], body: &'a [u8]) -> HeldRequest<'a> {
    HeldRequest {
        request_id: "req-1",
        identity: id,
        rules,
        method: "POST",
        authority: "api.internal",
        path: "/customers/export?format=csv",
        content_type: Some("application/json"),
        headers: &[],
        body,
    }
}

fn reply_json(id: &str, status: &str) -> Vec<u8> {
    format!(r#"{{"id":"{id}","status":"{status}","reviewer":"alice","reason":"ok","expires_at":1,"retry_after_secs":7}}"#)
        .into_bytes()
}

// ---------- config ----------

#[test]
fn config_defaults_and_authority() {
    let c = cfg();
    assert_eq!(c.cluster, "approver");
    assert_eq!(c.authority, "approver");
    assert_eq!(c.poll_secs, 25);
    assert_eq!(c.preview_bytes, 2048);
    let p = policy(&format!(
        r#"{{"cluster":"appr","authority":"approver.internal:8088","api_key":"{KEY}","preview_profile":"pii"}}"#
    ))
    .unwrap();
    let a = p.approval.unwrap();
    assert_eq!(a.authority, "approver.internal:8088");
    assert_eq!(a.max_wait_secs, 120);
    assert_eq!(a.timeout_ms, 5000);
}

#[test]
fn config_errors_name_their_field() {
    let cases = [
        (
            r#"{"cluster":"a","api_key":"short"}"#.to_string(),
            "approval.api_key",
        ),
        (
            format!(r#"{{"cluster":"","api_key":"{KEY}"}}"#),
            "approval.cluster",
        ),
        (
            format!(r#"{{"cluster":"a","api_key":"{KEY}","max_wait_secs":0}}"#),
            "approval.max_wait_secs",
        ),
        (
            format!(r#"{{"cluster":"a","api_key":"{KEY}","max_wait_secs":3601}}"#),
            "approval.max_wait_secs",
        ),
        (
            format!(r#"{{"cluster":"a","api_key":"{KEY}","poll_secs":31}}"#),
            "approval.poll_secs",
        ),
        (
            format!(r#"{{"cluster":"a","api_key":"{KEY}","poll_secs":0}}"#),
            "approval.poll_secs",
        ),
        (
            format!(r#"{{"cluster":"a","api_key":"{KEY}","timeout_ms":10}}"#),
            "approval.timeout_ms",
        ),
        (
            format!(r#"{{"cluster":"a","api_key":"{KEY}","preview_bytes":4097}}"#),
            "approval.preview_bytes",
        ),
        (
            format!(r#"{{"cluster":"a","api_key":"{KEY}","preview_profile":"nope"}}"#),
            "approval.preview_profile",
        ),
        (
            format!(r#"{{"cluster":"a","api_key":"{KEY}","authority":"a b"}}"#),
            "approval.authority",
        ),
        (
            r#"{"cluster":"a","api_key":"has a space in it ok"}"#.to_string(),
            "approval.api_key",
        ),
        (
            format!(r#"{{"cluster":"a","api_key":"{KEY}","wait":1}}"#),
            "approval.wait",
        ),
        (r#"{"api_key":"0123456789abcdef"}"#.to_string(), "approval"),
    ];
    for (doc, path) in cases {
        let e = policy(&doc).unwrap_err();
        assert_eq!(e.path, path, "{doc}: {e}");
    }
    let e = policy(&format!(
        r#"{{"cluster":"a","api_key":"{KEY}","preview_profile":"nope"}}"#
    ))
    .unwrap_err();
    assert!(e.reason.contains("masking.profiles has: pii"), "{e}");
}

#[test]
fn require_approval_without_the_section_is_refused_at_the_rule() {
    let e = Policy::from_json(
        br#"{"default_action":"allow","rules":[
            {"name":"a","match":{},"action":"deny"},
            {"name":"b","match":{},"action":"require_approval","mode":"monitor"}]}"#,
    )
    .unwrap_err();
    assert_eq!(e.path, "rules[1].action");
    assert!(e.reason.contains("\"approval\" section"), "{e}");
    // Without such a rule the section is optional.
    assert!(Policy::from_json(b"{}").unwrap().approval.is_none());
}

// ---------- fingerprint ----------

#[test]
fn fingerprint_is_sha256_hex_and_stable() {
    let i = ident("agent-7");
    let f = fingerprint(&held(Some(&i), RULES, b"{\"a\":1}"));
    assert_eq!(f.len(), 64);
    assert!(f
        .bytes()
        .all(|b| b.is_ascii_hexdigit() && !b.is_ascii_uppercase()));
    assert_eq!(f, fingerprint(&held(Some(&i), RULES, b"{\"a\":1}")));
}

#[test]
fn fingerprint_changes_with_every_field() {
    let i = ident("agent-7");
    let base = held(Some(&i), RULES, b"body");
    let f0 = fingerprint(&base);
    let h = |pairs: &[(&str, &str)]| -> Vec<(String, String)> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    };
    let scope_header = h(&[("x-export-scope", "everything")]);
    let override_header = h(&[("X-HTTP-Method-Override", "DELETE")]);
    let per_attempt = h(&[
        ("x-request-id", "r2"),
        ("traceparent", "00-abc-def-01"),
        ("content-length", "4"),
        ("x-envoy-expected-rq-timeout-ms", "15000"),
        ("x-forwarded-for", "10.0.0.9"),
    ]);
    let other_sub = ident("agent-8");
    let mut other_iss = ident("agent-7");
    other_iss.issuer = "https://other.example.com".into();
    let variants = [
        HeldRequest {
            identity: Some(&other_sub),
            ..base
        },
        HeldRequest {
            identity: Some(&other_iss),
            ..base
        },
        HeldRequest {
            identity: None,
            ..base
        },
        HeldRequest {
            method: "PUT",
            ..base
        },
        HeldRequest {
            authority: "api.other",
            ..base
        },
        HeldRequest {
            path: "/customers/export?format=json",
            ..base
        },
        HeldRequest {
            path: "/customers/export",
            ..base
        },
        HeldRequest {
            path: "/customers/%2e%2e%2fexport?format=csv",
            ..base
        },
        HeldRequest {
            body: b"body2",
            ..base
        },
        HeldRequest { body: b"", ..base },
        // issue 14: the content type and the headers that reach the upstream.
        HeldRequest {
            content_type: None,
            ..base
        },
        HeldRequest {
            content_type: Some("text/plain"),
            ..base
        },
        HeldRequest {
            headers: &scope_header,
            ..base
        },
        HeldRequest {
            headers: &override_header,
            ..base
        },
    ];
    for v in variants {
        assert_ne!(fingerprint(&v), f0, "{v:?}");
    }
    // Not part of it: request id, groups, rules (the approver keys on the rule
    // itself), per-attempt and hop-by-hop headers, header name case and order.
    let mut more_groups = ident("agent-7");
    more_groups.groups.push("admins".into());
    let rules = vec!["r".to_string()];
    let same = [
        HeldRequest {
            request_id: "req-2",
            ..base
        },
        HeldRequest {
            headers: &per_attempt,
            ..base
        },
        HeldRequest {
            identity: Some(&more_groups),
            ..base
        },
        HeldRequest {
            rules: &rules,
            ..base
        },
    ];
    for v in same {
        assert_eq!(fingerprint(&v), f0, "{v:?}");
    }
    let ab = h(&[("X-A", "1"), ("x-b", "2")]);
    let ba = h(&[("x-b", "2"), ("x-a", "1")]);
    assert_eq!(
        fingerprint(&HeldRequest {
            headers: &ab,
            ..base
        }),
        fingerprint(&HeldRequest {
            headers: &ba,
            ..base
        })
    );
}

#[test]
fn a_refreshed_token_is_the_same_request_only_for_a_verified_caller() {
    let i = ident("agent-7");
    let t1 = vec![("authorization".to_string(), "Bearer t1".to_string())];
    let t2 = vec![("authorization".to_string(), "Bearer t2".to_string())];
    let f = |id: Option<&Identity>, h: &[(String, String)]| {
        fingerprint(&HeldRequest {
            identity: id,
            headers: h,
            ..held(None, RULES, b"body")
        })
    };
    // Verified: issuer and subject are bound, the token itself is not.
    assert_eq!(f(Some(&i), &t1), f(Some(&i), &t2));
    // Anonymous: the token is all that tells callers apart.
    assert_ne!(f(None, &t1), f(None, &t2));
}

#[test]
fn fingerprint_fields_cannot_collide_by_concatenation() {
    let a = ident("ab");
    let b = ident("a");
    let x = HeldRequest {
        method: "c",
        ..held(Some(&a), RULES, b"")
    };
    let y = HeldRequest {
        method: "bc",
        ..held(Some(&b), RULES, b"")
    };
    assert_ne!(fingerprint(&x), fingerprint(&y));
    let x = HeldRequest {
        path: "/p",
        ..held(None, RULES, b"?x")
    };
    let y = HeldRequest {
        path: "/p?x",
        ..held(None, RULES, b"")
    };
    assert_ne!(fingerprint(&x), fingerprint(&y));
}

#[test]
fn fingerprint_uses_the_normalised_path_unless_ambiguous() {
    let base = held(None, RULES, b"");
    let f = |p: &'static str| fingerprint(&HeldRequest { path: p, ..base });
    assert_eq!(f("/a/b?x=1"), f("/a/./b/?x=1"));
    assert_eq!(f("/a/b?x=1"), f("//a/c/../b?x=1"));
    assert_ne!(f("/a/b?x=1"), f("/a/b?x=2"));
    assert_ne!(f("/a/b"), f("/a/b?"));
    // An encoded slash may mean something else upstream: not the same request.
    assert_ne!(f("/a/b"), f("/a%2Fb"));
    // Host case does not matter.
    let g = fingerprint(&HeldRequest {
        authority: "API.Internal",
        ..base
    });
    assert_eq!(g, fingerprint(&base));
}

// ---------- create body and preview ----------

#[test]
fn create_body_has_exactly_the_protocol_fields() {
    let i = ident("agent-7");
    let rules = vec!["export".to_string(), "cards".to_string()];
    let body = br#"{"email":"jane@example.com","n":1}"#;
    let req = HeldRequest {
        path: "/customers/export?token=s3cr3t&format=csv",
        ..held(Some(&i), &rules, body)
    };
    let v: serde_json::Value = serde_json::from_slice(&create_body(&cfg(), &req)).unwrap();
    let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "authority",
            "confirm",
            "fingerprint",
            "identity",
            "method",
            "path",
            "preview",
            "request_id",
            "rule"
        ]
    );
    assert_eq!(v["confirm"], true, "the filter uses approvals itself");
    assert_eq!(
        v["identity"],
        serde_json::json!({"sub":"agent-7","iss":"https://idp.example.com","groups":["agents"]})
    );
    assert_eq!(v["rule"], "export,cards");
    assert_eq!(v["method"], "POST");
    assert_eq!(v["request_id"], "req-1");
    assert_eq!(v["fingerprint"], fingerprint(&req));
    let path = v["path"].as_str().unwrap();
    assert!(
        !path.contains("s3cr3t") && path.contains("format=csv"),
        "{path}"
    );
    let preview = v["preview"].as_str().unwrap();
    assert!(!preview.contains("jane@example.com"), "{preview}");
    assert!(preview.contains("\"n\":1"), "{preview}");
}

#[test]
fn the_create_body_is_the_shared_wire_type_the_approver_reads() {
    let i = ident("agent-7");
    let req = held(Some(&i), RULES, br#"{"a":1}"#);
    let body: transit_guard_wire::NewApproval =
        serde_json::from_slice(&create_body(&cfg(), &req)).unwrap();
    assert_eq!(body.identity.sub, "agent-7");
    assert_eq!(body.identity.groups, vec!["agents".to_string()]);
    assert_eq!(body.fingerprint, fingerprint(&req));
    assert!(body.headers.is_empty());
}

#[test]
fn reviewers_see_headers_with_credentials_redacted_and_secrets_masked() {
    let h = |k: &str, v: &str| (k.to_string(), v.to_string());
    let shown = review_headers(
        &cfg(),
        &[
            h(":path", "/x"),
            h("Authorization", "Bearer eyJhbGciOi.x.y"),
            h("cookie", "session=abc"),
            h("X-Upstream-Token", "t0k3n"),
            h("x-envoy-expected-rq-timeout-ms", "1000"),
            h("x-export-scope", "everything"),
            h("x-note", "mail jane@example.com"),
        ],
    );
    let pairs: Vec<(&str, &str)> = shown
        .iter()
        .map(|h| (h.name.as_str(), h.value.as_str()))
        .collect();
    assert_eq!(pairs.len(), 5, "{pairs:?}");
    assert_eq!(pairs[0], ("authorization", "[REDACTED]"));
    assert_eq!(pairs[1], ("cookie", "[REDACTED]"));
    assert_eq!(pairs[2], ("x-upstream-token", "[REDACTED]"));
    assert_eq!(pairs[3], ("x-export-scope", "everything"));
    assert_eq!(pairs[4].0, "x-note");
    assert!(!pairs[4].1.contains("jane@example.com"), "{pairs:?}");
}

#[test]
fn anonymous_requests_are_one_documented_identity() {
    let v: serde_json::Value =
        serde_json::from_slice(&create_body(&cfg(), &held(None, RULES, b""))).unwrap();
    assert_eq!(v["identity"]["sub"], ANONYMOUS_SUBJECT);
    assert_eq!(v["identity"]["iss"], ANONYMOUS_ISSUER);
    assert_eq!(v["identity"]["groups"], serde_json::json!([]));
    assert_eq!(v["preview"], "");
}

#[test]
fn preview_masks_then_cuts_on_a_char_boundary() {
    let mut c = cfg();
    c.preview_bytes = 10;
    assert_eq!(
        preview(&c, Some("text/plain"), "ééééééé".as_bytes()),
        "ééééé"
    );
    assert_eq!(
        preview(&c, Some("text/plain"), "aéééééé".as_bytes()),
        "aéééé"
    );
    c.preview_bytes = MAX_PREVIEW_BYTES;
    let secret = "key sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD card 4111 1111 1111 1111 mail a@b.example";
    let p = preview(&c, Some("text/plain"), secret.as_bytes());
    assert!(
        !p.contains("abcdefghijklmnop") && !p.contains("4111 1111") && !p.contains("a@b.example"),
        "{p}"
    );
    // A secret cut in half by the limit is masked before the cut.
    c.preview_bytes = 20;
    let p = preview(&c, Some("text/plain"), b"card 4111 1111 1111 1111");
    assert!(!p.contains("4111 1111"), "{p}");
    // Binary bodies are described, never shown; invalid UTF-8 is replaced.
    let p = preview(&cfg(), Some("application/octet-stream"), b"\x00\x01secret");
    assert!(p.starts_with("[8 bytes of application/octet-stream"), "{p}");
    let p = preview(&cfg(), Some("text/plain"), b"ok \xff\xfe");
    assert!(p.starts_with("ok "), "{p}");
    c.preview_bytes = 0;
    assert_eq!(preview(&c, None, b"x"), "");
}

#[test]
fn preview_uses_the_named_profile() {
    let p = policy(&format!(
        r#"{{"cluster":"a","api_key":"{KEY}","preview_profile":"pii"}}"#
    ))
    .unwrap();
    let c = p.approval.unwrap();
    // pii masks email only: a card number stays (the operator's choice).
    let out = preview(&c, Some("text/plain"), b"a@b.example 4111 1111 1111 1111");
    assert!(
        !out.contains("a@b.example") && out.contains("4111 1111 1111 1111"),
        "{out}"
    );
}

// ---------- reading replies ----------

#[test]
fn reads_good_replies() {
    let r = read(Some("200"), &reply_json("apr_0123abcd", "pending"), false).unwrap();
    assert_eq!(r.status, Status::Pending);
    assert_eq!(r.retry_after_secs, 7);
    let r = read(Some("200"), br#"{"id":"apr_1","status":"approved","reviewer":null,"reason":null,"expires_at":0,"retry_after_secs":0,"new":1}"#, false).unwrap();
    assert_eq!(r.status, Status::Approved);
    assert_eq!(r.reviewer, None);
}

#[test]
fn every_bad_reply_is_a_failure_with_its_code() {
    let good = reply_json("apr_1", "approved");
    let cases: &[(Option<&str>, &[u8], bool, Failure)] = &[
        (None, b"", false, Failure::Unreachable),
        (None, b"", true, Failure::Timeout),
        (
            Some("504"),
            b"upstream request timeout",
            true,
            Failure::Timeout,
        ),
        (Some("504"), b"", false, Failure::ServerError),
        (
            Some("500"),
            br#"{"error":"internal"}"#,
            false,
            Failure::ServerError,
        ),
        (
            Some("503"),
            b"upstream connect error",
            false,
            Failure::ServerError,
        ),
        (
            Some("401"),
            br#"{"error":"unauthorized"}"#,
            false,
            Failure::Unauthorized,
        ),
        (
            Some("410"),
            br#"{"error":"consumed"}"#,
            false,
            Failure::Consumed,
        ),
        (Some("404"), b"", false, Failure::NotFound),
        (Some("400"), b"", false, Failure::Rejected),
        (Some("413"), b"", false, Failure::Rejected),
        (Some("302"), &good, false, Failure::BadResponse),
        (Some("201"), &good, false, Failure::BadResponse),
        (Some("abc"), &good, false, Failure::BadResponse),
        (Some("200"), b"not json", false, Failure::BadResponse),
        (Some("200"), b"", false, Failure::BadResponse),
        (
            Some("200"),
            br#"{"id":"apr_1"}"#,
            false,
            Failure::BadResponse,
        ),
        (
            Some("200"),
            br#"{"id":"apr_1","status":"maybe"}"#,
            false,
            Failure::BadResponse,
        ),
        (
            Some("200"),
            br#"{"id":"","status":"approved"}"#,
            false,
            Failure::BadResponse,
        ),
        (
            Some("200"),
            br#"{"id":"../admin?x","status":"pending"}"#,
            false,
            Failure::BadResponse,
        ),
        (
            Some("200"),
            br#"{"id":1,"status":"approved"}"#,
            false,
            Failure::BadResponse,
        ),
        (Some("200"), br#"[]"#, false, Failure::BadResponse),
    ];
    for (status, body, timed_out, want) in cases {
        assert_eq!(
            read(*status, body, *timed_out),
            Err(*want),
            "{status:?} {:?}",
            String::from_utf8_lossy(body)
        );
    }
    let codes: std::collections::BTreeSet<&str> = [
        Failure::DispatchFailed,
        Failure::Unreachable,
        Failure::Timeout,
        Failure::ServerError,
        Failure::Unauthorized,
        Failure::Consumed,
        Failure::NotFound,
        Failure::Rejected,
        Failure::BadResponse,
    ]
    .iter()
    .map(|f| f.code())
    .collect();
    assert_eq!(codes.len(), 9, "codes are distinct");
}

// ---------- the state machine ----------

const T0: u64 = 1_800_000_000_000;

fn started() -> (Wait, Callout) {
    Wait::start(&cfg(), T0, b"{}".to_vec())
}

fn header<'a>(c: &'a Callout, name: &str) -> &'a str {
    c.headers
        .iter()
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.as_str())
        .unwrap()
}

#[test]
fn create_call_is_a_post_with_the_key() {
    let (w, c) = started();
    assert_eq!(header(&c, ":method"), "POST");
    assert_eq!(header(&c, ":path"), "/v1/approvals");
    assert_eq!(header(&c, ":authority"), "approver");
    assert_eq!(header(&c, "x-approver-key"), KEY);
    assert_eq!(header(&c, "content-type"), "application/json");
    assert_eq!(c.body.as_deref(), Some(b"{}".as_slice()));
    assert_eq!(c.timeout_ms, 5000);
    assert_eq!(w.overdue_at(), Some(T0 + 5000 + wait::OVERDUE_GRACE_MS));
    assert_eq!(w.deadline_ms(), T0 + 60_000);
}

#[test]
fn approved_or_denied_at_creation_ends_at_once() {
    let (mut w, _) = started();
    let next = w.on_response(
        &cfg(),
        T0 + 5,
        Some("200"),
        &reply_json("apr_1", "approved"),
    );
    assert_eq!(
        next,
        Next::Done(Outcome::Approved {
            id: "apr_1".into(),
            reviewer: Some("alice".into())
        })
    );
    let (mut w, _) = started();
    let Next::Done(out) =
        w.on_response(&cfg(), T0 + 5, Some("200"), &reply_json("apr_2", "denied"))
    else {
        panic!()
    };
    assert_eq!(
        out,
        Outcome::Denied {
            id: "apr_2".into(),
            reviewer: Some("alice".into()),
            reason: Some("ok".into())
        }
    );
    assert_eq!(out.audit(), (Decision::ApprovalDenied, "approval_denied"));
    let r = out.reply("export").unwrap();
    assert_eq!(r.status, 403);
    let v: serde_json::Value = serde_json::from_str(&r.body("req-1")).unwrap();
    assert_eq!(v["error"], "approval_denied");
    assert_eq!(v["reason"], "ok");
    assert_eq!(v["approval_id"], "apr_2");
    assert_eq!(v["reviewer"], "alice");
    assert_eq!(v["rule"], "export");
    assert_eq!(v["request_id"], "req-1");
}

#[test]
fn pending_long_polls_until_decided() {
    let c = cfg();
    let (mut w, _) = started();
    let Next::Call(poll) = w.on_response(&c, T0 + 10, Some("200"), &reply_json("apr_9", "pending"))
    else {
        panic!()
    };
    assert_eq!(header(&poll, ":method"), "GET");
    assert_eq!(poll.path(), "/v1/approvals/apr_9?wait=25&confirm=true");
    assert_eq!(header(&poll, "x-approver-key"), KEY);
    assert!(poll.body.is_none());
    assert_eq!(poll.timeout_ms, 25_000 + 5000);
    assert_eq!(
        w.overdue_at(),
        Some(T0 + 10 + 30_000 + wait::OVERDUE_GRACE_MS)
    );
    // Still pending after 25 s: ask again with what is left (60 - 25.01 → 34 s, capped at 25).
    let Next::Call(p2) = w.on_response(
        &c,
        T0 + 25_010,
        Some("200"),
        &reply_json("apr_9", "pending"),
    ) else {
        panic!()
    };
    assert_eq!(p2.path(), "/v1/approvals/apr_9?wait=25&confirm=true");
    let Next::Call(p3) = w.on_response(
        &c,
        T0 + 50_010,
        Some("200"),
        &reply_json("apr_9", "pending"),
    ) else {
        panic!()
    };
    assert_eq!(
        p3.path(),
        "/v1/approvals/apr_9?wait=9&confirm=true",
        "never past the deadline"
    );
    let out = w.on_response(
        &c,
        T0 + 52_000,
        Some("200"),
        &reply_json("apr_9", "approved"),
    );
    assert!(
        matches!(out, Next::Done(Outcome::Approved { .. })),
        "{out:?}"
    );
}

#[test]
fn still_pending_at_the_deadline_names_the_approval_with_retry_after() {
    let c = cfg();
    let (mut w, _) = started();
    w.on_response(&c, T0 + 10, Some("200"), &reply_json("apr_9", "pending"));
    let Next::Done(out) = w.on_response(
        &c,
        T0 + 59_500,
        Some("200"),
        &reply_json("apr_9", "pending"),
    ) else {
        panic!()
    };
    assert_eq!(
        out,
        Outcome::StillPending {
            id: "apr_9".into(),
            retry_after_secs: 7
        }
    );
    assert_eq!(out.audit(), (Decision::ApprovalExpired, "approval_pending"));
    let r = out.reply("export").unwrap();
    assert_eq!(r.status, 503);
    assert!(r.headers.contains(&("retry-after", "7".to_string())));
    let v: serde_json::Value = serde_json::from_str(&r.body("req-1")).unwrap();
    assert_eq!(v["error"], "approval_pending");
    assert_eq!(v["approval_id"], "apr_9");
    assert_eq!(v["retry_after_secs"], 7);
    assert!(v["reason"].as_str().unwrap().contains("apr_9"));
}

#[test]
fn expired_by_the_approver_is_its_own_outcome() {
    let (mut w, _) = started();
    let Next::Done(out) = w.on_response(&cfg(), T0, Some("200"), &reply_json("apr_3", "expired"))
    else {
        panic!()
    };
    assert_eq!(out.audit(), (Decision::ApprovalExpired, "approval_expired"));
    assert_eq!(out.reply("r").unwrap().status, 403);
}

#[test]
fn create_failures_fail_closed_at_once() {
    for (status, body, at, want) in [
        (None, &b""[..], 10, Failure::Unreachable),
        (None, b"", 4950, Failure::Timeout),
        (Some("500"), b"", 10, Failure::ServerError),
        (Some("401"), b"", 10, Failure::Unauthorized),
        (Some("200"), b"{", 10, Failure::BadResponse),
    ] {
        let (mut w, _) = started();
        let Next::Done(out) = w.on_response(&cfg(), T0 + at, status, body) else {
            panic!("{status:?}")
        };
        assert_eq!(
            out,
            Outcome::Failed {
                failure: want,
                id: None
            }
        );
        assert_eq!(out.audit(), (Decision::ApprovalFailed, want.code()));
        let r = out.reply("export").unwrap();
        assert_eq!(r.status, 503);
        let v: serde_json::Value = serde_json::from_str(&r.body("q")).unwrap();
        assert_eq!(v["error"], "approval_failed");
        assert_eq!(v["reason_code"], want.code());
        assert!(v["approval_id"].is_null());
    }
}

#[test]
fn transient_poll_failures_are_retried_within_the_deadline() {
    let c = cfg();
    let (mut w, _) = started();
    w.on_response(&c, T0 + 10, Some("200"), &reply_json("apr_9", "pending"));
    // The approver restarts: connection refused (Envoy's 503), then reset.
    assert_eq!(
        w.on_response(&c, T0 + 100, Some("503"), b""),
        Next::RetryAt(T0 + 1100)
    );
    assert_eq!(
        w.overdue_at(),
        None,
        "nothing in flight while waiting to retry"
    );
    let Next::Call(p) = w.on_wake(&c, T0 + 1100) else {
        panic!()
    };
    assert_eq!(p.path(), "/v1/approvals/apr_9?wait=25&confirm=true");
    assert_eq!(
        w.on_response(&c, T0 + 1200, None, b""),
        Next::RetryAt(T0 + 2200)
    );
    let Next::Call(_) = w.on_wake(&c, T0 + 2200) else {
        panic!()
    };
    let out = w.on_response(&c, T0 + 3000, Some("200"), &reply_json("apr_9", "approved"));
    assert!(matches!(out, Next::Done(Outcome::Approved { .. })));
}

#[test]
fn final_poll_failures_end_the_wait_with_the_id() {
    let c = cfg();
    for (status, want) in [
        (Some("401"), Failure::Unauthorized),
        (Some("200"), Failure::BadResponse),
    ] {
        let (mut w, _) = started();
        w.on_response(&c, T0 + 10, Some("200"), &reply_json("apr_9", "pending"));
        let Next::Done(out) = w.on_response(&c, T0 + 100, status, b"garbage") else {
            panic!()
        };
        assert_eq!(
            out,
            Outcome::Failed {
                failure: want,
                id: Some("apr_9".into())
            }
        );
        let v: serde_json::Value =
            serde_json::from_str(&out.reply("r").unwrap().body("q")).unwrap();
        assert_eq!(v["approval_id"], "apr_9");
    }
    // A transient failure too close to the deadline is final.
    let (mut w, _) = started();
    w.on_response(&c, T0 + 10, Some("200"), &reply_json("apr_9", "pending"));
    let out = w.on_response(&c, T0 + 58_500, Some("500"), b"");
    assert_eq!(
        out,
        Next::Done(Outcome::Failed {
            failure: Failure::ServerError,
            id: Some("apr_9".into())
        })
    );
}

#[test]
fn an_answer_about_another_approval_is_refused() {
    let c = cfg();
    let (mut w, _) = started();
    w.on_response(&c, T0 + 10, Some("200"), &reply_json("apr_9", "pending"));
    let out = w.on_response(&c, T0 + 20, Some("200"), &reply_json("apr_8", "approved"));
    assert_eq!(
        out,
        Next::Done(Outcome::Failed {
            failure: Failure::BadResponse,
            id: Some("apr_9".into())
        })
    );
}

#[test]
fn overdue_and_dispatch_failures_fail_closed() {
    let (mut w, _) = started();
    assert_eq!(
        w.on_overdue(),
        Outcome::Failed {
            failure: Failure::Timeout,
            id: None
        }
    );
    let (mut w, _) = started();
    let out = w.on_dispatch_failed();
    assert_eq!(
        out.audit(),
        (Decision::ApprovalFailed, "approver_dispatch_failed")
    );
}

#[test]
fn every_wait_ends_within_timeout_plus_one_second_of_the_deadline() {
    // Whatever the answers' timing, the last callout's overdue time is
    // at most deadline + timeout + grace.
    let c = cfg();
    for step in [1u64, 333, 999, 1000, 1001, 7_777, 24_999, 25_000] {
        let (mut w, _) = started();
        let mut now = T0 + 1;
        let mut next = w.on_response(&c, now, Some("200"), &reply_json("apr_1", "pending"));
        let mut n = 0;
        loop {
            n += 1;
            assert!(n < 100_000);
            if let Some(o) = w.overdue_at() {
                assert!(
                    o <= w.deadline_ms() + c.timeout_ms + wait::OVERDUE_GRACE_MS,
                    "step {step}"
                );
            }
            match next {
                Next::Done(out) => {
                    assert!(now <= w.deadline_ms() + c.timeout_ms, "step {step}");
                    assert!(matches!(out, Outcome::StillPending { .. }));
                    break;
                }
                Next::RetryAt(_) => panic!("no failure was given"),
                Next::Call(call) => {
                    // An answer never comes later than the callout's timeout.
                    now += step.min(call.timeout_ms);
                    next = w.on_response(&c, now, Some("200"), &reply_json("apr_1", "pending"));
                }
            }
        }
    }
}

// ---------- using a one-time approval: only the request that passes ----------

fn confirm_json(id: &str) -> Vec<u8> {
    format!(r#"{{"id":"{id}","status":"approved","reviewer":"alice","reason":"ok","expires_at":1,"retry_after_secs":0,"confirm":true}}"#)
        .into_bytes()
}

/// A wait whose poll of `apr_9` is in flight.
fn polling() -> Wait {
    let (mut w, _) = started();
    let Next::Call(_) = w.on_response(
        &cfg(),
        T0 + 10,
        Some("200"),
        &reply_json("apr_9", "pending"),
    ) else {
        panic!()
    };
    w
}

#[test]
fn an_approval_left_unused_is_used_before_the_request_passes() {
    let c = cfg();
    let mut w = polling();
    let Next::Call(used) = w.on_response(&c, T0 + 20, Some("200"), &confirm_json("apr_9")) else {
        panic!("approved and unused: the request does not pass yet")
    };
    assert_eq!(header(&used, ":method"), "POST");
    assert_eq!(used.path(), "/v1/approvals/apr_9/use");
    assert_eq!(header(&used, "x-approver-key"), KEY);
    assert!(used.body.is_none());
    assert_eq!(used.timeout_ms, c.timeout_ms);
    assert_eq!(
        w.overdue_at(),
        Some(T0 + 20 + c.timeout_ms + wait::OVERDUE_GRACE_MS)
    );
    let out = w.on_response(&c, T0 + 30, Some("200"), &reply_json("apr_9", "approved"));
    assert_eq!(
        out,
        Next::Done(Outcome::Approved {
            id: "apr_9".into(),
            reviewer: Some("alice".into())
        })
    );
    // The same at creation (a repeated request finds an approved one).
    let (mut w, _) = started();
    let Next::Call(used) = w.on_response(&c, T0 + 5, Some("200"), &confirm_json("apr_4")) else {
        panic!()
    };
    assert_eq!(used.path(), "/v1/approvals/apr_4/use");
    assert!(matches!(
        w.on_response(&c, T0 + 9, Some("200"), &reply_json("apr_4", "approved")),
        Next::Done(Outcome::Approved { .. })
    ));
}

#[test]
fn a_late_approval_is_used_within_the_bound_or_left_for_the_retry() {
    let c = cfg();
    // Approved as the last poll ends (deadline T0 + 60 s): the use call
    // fits in what is left of deadline + timeout_ms.
    let mut w = polling();
    let Next::Call(used) = w.on_response(&c, T0 + 63_000, Some("200"), &confirm_json("apr_9"))
    else {
        panic!()
    };
    assert_eq!(used.timeout_ms, 2000);
    assert_eq!(
        w.overdue_at(),
        Some(w.deadline_ms() + c.timeout_ms + wait::OVERDUE_GRACE_MS)
    );
    // Too late for a use: not used, so the agent's retry passes on it.
    let mut w = polling();
    assert_eq!(
        w.on_response(&c, T0 + 64_900, Some("200"), &confirm_json("apr_9")),
        Next::Done(Outcome::StillPending {
            id: "apr_9".into(),
            retry_after_secs: 1
        })
    );
}

#[test]
fn a_use_that_fails_is_never_repeated_blindly_and_never_passes() {
    let c = cfg();
    for (status, body, at, want) in [
        (
            Some("409"),
            &br#"{"error":"not_approved","reason":"expired"}"#[..],
            100,
            Failure::Rejected,
        ),
        (Some("404"), b"", 100, Failure::NotFound),
        (Some("200"), b"{", 100, Failure::BadResponse),
    ] {
        let mut w = polling();
        let Next::Call(_) = w.on_response(&c, T0 + 20, Some("200"), &confirm_json("apr_9")) else {
            panic!()
        };
        assert_eq!(
            w.on_response(&c, T0 + 20 + at, status, body),
            Next::Done(Outcome::Failed {
                failure: want,
                id: Some("apr_9".into())
            }),
            "{status:?}"
        );
    }
    // A transient failure (the replica died, a timeout): it may have been
    // applied, so the wait polls again rather than using it again.
    for (status, at) in [(Some("503"), 100), (None, 100), (None, 5050)] {
        let mut w = polling();
        w.on_response(&c, T0 + 20, Some("200"), &confirm_json("apr_9"));
        let now = T0 + 20 + at;
        assert_eq!(
            w.on_response(&c, now, status, b""),
            Next::RetryAt(now + wait::RETRY_MS)
        );
        let Next::Call(poll) = w.on_wake(&c, now + wait::RETRY_MS) else {
            panic!()
        };
        assert_eq!(poll.path(), "/v1/approvals/apr_9?wait=25&confirm=true");
        // Not applied: still unused, used now.
        let Next::Call(used) = w.on_response(&c, now + 1100, Some("200"), &confirm_json("apr_9"))
        else {
            panic!()
        };
        assert_eq!(used.path(), "/v1/approvals/apr_9/use");
        // Applied after all: 410, and a new approval is asked for.
        let mut w2 = w.clone();
        let Next::Call(again) = w2.on_response(&c, now + 1200, Some("410"), b"") else {
            panic!()
        };
        assert_eq!(again.path(), "/v1/approvals");
        assert!(matches!(
            w.on_response(
                &c,
                now + 1200,
                Some("200"),
                &reply_json("apr_9", "approved")
            ),
            Next::Done(Outcome::Approved { .. })
        ));
    }
    // A 200 about another approval, or not saying approved, does not pass.
    for body in [
        reply_json("apr_8", "approved"),
        reply_json("apr_9", "pending"),
    ] {
        let mut w = polling();
        w.on_response(&c, T0 + 20, Some("200"), &confirm_json("apr_9"));
        assert_eq!(
            w.on_response(&c, T0 + 30, Some("200"), &body),
            Next::Done(Outcome::Failed {
                failure: Failure::BadResponse,
                id: Some("apr_9".into())
            })
        );
    }
}

#[test]
fn losing_the_approval_to_another_request_asks_again_by_fingerprint() {
    let c = cfg();
    let mut w = polling();
    w.on_response(&c, T0 + 20, Some("200"), &confirm_json("apr_9"));
    // Another request with the same fingerprint used it first.
    let Next::Call(again) = w.on_response(&c, T0 + 30, Some("410"), b"") else {
        panic!()
    };
    assert_eq!(header(&again, ":method"), "POST");
    assert_eq!(again.path(), "/v1/approvals");
    assert_eq!(
        again.body.as_deref(),
        Some(b"{}".as_slice()),
        "the same request"
    );
    // A new approval (another id is expected now), held as before.
    let Next::Call(poll) =
        w.on_response(&c, T0 + 40, Some("200"), &reply_json("apr_10", "pending"))
    else {
        panic!()
    };
    assert_eq!(poll.path(), "/v1/approvals/apr_10?wait=25&confirm=true");
    // A poll told 410 (used by another request meanwhile) asks again too.
    let Next::Call(again) = w.on_response(&c, T0 + 50, Some("410"), b"") else {
        panic!()
    };
    assert_eq!(again.path(), "/v1/approvals");
    // At most MAX_ASK_AGAIN times.
    w.on_response(&c, T0 + 60, Some("200"), &reply_json("apr_11", "pending"));
    assert_eq!(
        w.on_response(&c, T0 + 70, Some("410"), b""),
        Next::Done(Outcome::Failed {
            failure: Failure::Consumed,
            id: Some("apr_11".into())
        })
    );
    // Nor when the deadline is too near for another call.
    let mut w = polling();
    assert_eq!(
        w.on_response(&c, T0 + 56_000, Some("410"), b""),
        Next::Done(Outcome::Failed {
            failure: Failure::Consumed,
            id: Some("apr_9".into())
        })
    );
}
