//! Requests held for a human approval: when the approver is asked, over
//! what, and how each outcome ends the request.

use super::*;
use crate::approval::{fingerprint, Failure, HeldRequest, Outcome};
use crate::audit::{record, EnvoyFacts};

const KEY: &str = "filter-key-0123456789";

fn approval_policy(extra_rules: &str) -> Policy {
    Policy::from_json(
        format!(
            r#"{{"masking":{{"profiles":{{"secrets":{{"detectors":["openai_key"]}}}}}},
                "default_action":"allow",
                "rules":[{{"name":"export","match":{{"path":{{"prefix":"/export"}}}},"action":"require_approval"}}{extra_rules}],
                "approval":{{"cluster":"approver","api_key":"{KEY}"}}}}"#
        )
        .as_bytes(),
    )
    .unwrap()
}

fn request(path: &str) -> Vec<(String, String)> {
    headers("POST", path, &[("content-type", "application/json")])
}

#[test]
fn a_request_with_a_body_is_held_then_the_approval_asked_over_the_body() {
    let p = approval_policy("");
    let h = request("/export/x");
    let (mut f, step) = started(&p, &h, false);
    assert_eq!(step, HeadersStep::Hold);
    assert_eq!(f.request_state(), RequestState::Buffering);
    let body = br#"{"all":true}"#;
    let RequestBodyStep::Approve { start, replace } = f.on_request_body(&p, &h, body) else {
        panic!("expected an approval step")
    };
    assert_eq!(replace, None, "approved requests go on unchanged");
    assert_eq!(start.rule, "export");
    let v: serde_json::Value = serde_json::from_slice(&start.create_body).unwrap();
    let rules = vec!["export".to_string()];
    let want = fingerprint(&HeldRequest {
        request_id: "req-1",
        identity: None,
        rules: &rules,
        method: "POST",
        authority: "api.internal",
        path: "/export/x",
        content_type: Some("application/json"),
        headers: &[],
        body,
    });
    assert_eq!(v["fingerprint"], want);
    assert_eq!(v["preview"], r#"{"all":true}"#);
}

#[test]
fn a_request_without_a_body_is_asked_for_at_the_headers() {
    let p = approval_policy("");
    let (f, step) = started(&p, &request("/export/x"), true);
    let HeadersStep::Approve(start) = step else {
        panic!("expected an approval step")
    };
    assert_eq!(f.request_state(), RequestState::AwaitingApproval);
    let v: serde_json::Value = serde_json::from_slice(&start.create_body).unwrap();
    assert_eq!(v["preview"], "");
    // Other paths are not held.
    let (f, step) = started(&p, &request("/other"), true);
    assert_eq!(step, HeadersStep::Continue);
    assert_eq!(f.request_state(), RequestState::Forwarded);
}

#[test]
fn request_masks_of_the_same_request_apply_once_approved() {
    let p = approval_policy(
        r#",{"name":"secrets","match":{},"action":"mask","mask":{"request":["secrets"]}}"#,
    );
    let h = request("/export/x");
    let (mut f, step) = started(&p, &h, false);
    assert_eq!(step, HeadersStep::Hold);
    assert_eq!(f.request_state(), RequestState::Buffering);
    let body = br#"{"key":"sk-proj-abcdefghijklmnopqrstuvwxyz0123456789ABCD"}"#;
    let RequestBodyStep::Approve { start, replace } = f.on_request_body(&p, &h, body) else {
        panic!()
    };
    let replaced = String::from_utf8(replace.unwrap()).unwrap();
    assert!(!replaced.contains("sk-proj-abc"), "{replaced}");
    // The fingerprint is over the body as the agent sent it.
    let v: serde_json::Value = serde_json::from_slice(&start.create_body).unwrap();
    let rules = vec!["export".to_string()];
    let f0 = fingerprint(&HeldRequest {
        request_id: "req-1",
        identity: None,
        rules: &rules,
        method: "POST",
        authority: "api.internal",
        path: "/export/x",
        content_type: Some("application/json"),
        headers: &[],
        body,
    });
    assert_eq!(v["fingerprint"], f0);
}

#[test]
fn monitor_mode_only_records_that_it_would_ask() {
    let p = Policy::from_json(
        format!(
            r#"{{"mode":"monitor","default_action":"allow",
                "rules":[{{"name":"export","match":{{}},"action":"require_approval"}}],
                "approval":{{"cluster":"approver","api_key":"{KEY}"}}}}"#
        )
        .as_bytes(),
    )
    .unwrap();
    let (f, step) = started(&p, &request("/export/x"), true);
    assert_eq!(step, HeadersStep::Continue);
    assert_eq!(
        f.exchange.would,
        vec!["export: require_approval".to_string()]
    );
}

#[test]
fn each_outcome_is_recorded_for_the_audit() {
    let cases = [
        (
            Outcome::Approved {
                id: "apr_1".into(),
                reviewer: Some("alice".into()),
            },
            "approval_approved",
            "approval_approved",
            None,
        ),
        (
            Outcome::Denied {
                id: "apr_1".into(),
                reviewer: Some("alice".into()),
                reason: None,
            },
            "approval_denied",
            "approval_denied",
            Some(403),
        ),
        (
            Outcome::Expired { id: "apr_1".into() },
            "approval_expired",
            "approval_expired",
            Some(403),
        ),
        (
            Outcome::StillPending {
                id: "apr_1".into(),
                retry_after_secs: 3,
            },
            "approval_expired",
            "approval_pending",
            Some(503),
        ),
        (
            Outcome::Failed {
                failure: Failure::Timeout,
                id: None,
            },
            "approval_failed",
            "approver_timeout",
            Some(503),
        ),
    ];
    let p = approval_policy("");
    for (outcome, decision, reason, status) in cases {
        let (mut f, _) = started(&p, &request("/export/x"), true);
        let reply = f.on_approval(&outcome);
        let want = if reply.is_some() {
            RequestState::Refused
        } else {
            RequestState::Forwarded
        };
        assert_eq!(f.request_state(), want, "{outcome:?}");
        assert_eq!(reply.as_ref().map(|r| r.status), status, "{outcome:?}");
        if let Some(r) = &reply {
            assert_eq!(r.rule.as_deref(), Some("export"));
        }
        let facts = EnvoyFacts {
            response_code: Some(u64::from(status.unwrap_or(200))),
            ..EnvoyFacts::default()
        };
        let rec = record(&f.exchange, &facts);
        assert_eq!(rec.decision.as_str(), decision, "{outcome:?}");
        assert_eq!(rec.reason.as_deref(), Some(reason));
        let a = rec.approval.unwrap();
        assert_eq!(a.id, outcome.approval_id().map(str::to_string));
        assert_eq!(rec.rules, vec!["export".to_string()]);
    }
}
