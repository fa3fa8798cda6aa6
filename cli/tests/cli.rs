//! Runs the `transit-guard` binary as a user or CI would.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn bin() -> Command {
    Command::new(env!("CARGO_BIN_EXE_transit-guard"))
}

fn root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

fn example(name: &str) -> PathBuf {
    root().join("examples/policies").join(name)
}

/// A scratch file under the target dir, unique per test.
fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

fn run(args: &[&Path]) -> (i32, String, String) {
    let Output {
        status,
        stdout,
        stderr,
    } = bin().args(args).output().unwrap();
    (
        status.code().unwrap(),
        String::from_utf8(stdout).unwrap(),
        String::from_utf8(stderr).unwrap(),
    )
}

fn cmd(sub: &str) -> PathBuf {
    PathBuf::from(sub)
}

#[test]
fn check_accepts_every_example_policy() {
    for entry in std::fs::read_dir(root().join("examples/policies")).unwrap() {
        let p = entry.unwrap().path();
        let name = p.file_name().unwrap().to_str().unwrap().to_string();
        if !name.ends_with(".json") || name.contains(".cases.") {
            continue;
        }
        let (code, out, err) = run(&[&cmd("check"), &p]);
        assert_eq!(code, 0, "{name}: {out}{err}");
        assert!(out.contains(": valid (mode "), "{out}");
    }
}

#[test]
fn check_prints_the_line_envoy_logs_and_exits_1() {
    let p = scratch(
        "bad-regex.json",
        r#"{"default_action":"allow","rules":[{"name":"a","action":"deny","match":{"path":{"regex":"a("}}}]}"#,
    );
    let (code, out, err) = run(&[&cmd("check"), &p]);
    assert_eq!(code, 1);
    assert_eq!(out, "");
    assert_eq!(
        err,
        "invalid policy at rules[0].match.path.regex: invalid regex: unclosed group\n"
    );

    let p = scratch(
        "bad-mode.json",
        r#"{"mode":"block","default_action":"deny","rules":[]}"#,
    );
    let (code, _, err) = run(&[&cmd("check"), &p]);
    assert_eq!(code, 1);
    assert_eq!(
        err,
        "invalid policy at mode: unknown variant `block`, expected `enforce` or `monitor`\n"
    );

    let p = scratch(
        "unknown-field.json",
        r#"{"default_action":"deny","rules":[{"name":"a","action":"deny","match":{"methds":["GET"]}}]}"#,
    );
    let (code, _, err) = run(&[&cmd("check"), &p]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("invalid policy at rules[0].match.methds: unknown field `methds`"),
        "{err}"
    );

    let p = scratch(
        "missing-default.json",
        r#"{"rules":[{"name":"a","action":"allow"}]}"#,
    );
    let (code, _, err) = run(&[&cmd("check"), &p]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("invalid policy at default_action: required"),
        "{err}"
    );

    let p = scratch("empty.json", "  ");
    let (code, _, err) = run(&[&cmd("check"), &p]);
    assert_eq!(code, 1);
    assert!(err.starts_with("invalid policy at .: "), "{err}");
}

#[test]
fn unreadable_inputs_and_usage_errors_exit_2() {
    let (code, _, err) = run(&[&cmd("check"), Path::new("/nonexistent/policy.json")]);
    assert_eq!(code, 2);
    assert!(err.contains("cannot read"), "{err}");
    let (code, _, _) = run(&[&cmd("frobnicate")]);
    assert_eq!(code, 2);
    let bad_cases = scratch(
        "bad.cases.json",
        r#"{"cases":[{"request":{},"expect":{"decision":"maybe"}}]}"#,
    );
    let (code, _, err) = run(&[&cmd("test"), &example("mcp-tools.json"), &bad_cases]);
    assert_eq!(code, 2, "{err}");
    assert!(err.contains("unknown variant `maybe`"), "{err}");
    let no_cases = scratch("none.cases.json", r#"{"cases":[]}"#);
    let (code, _, err) = run(&[&cmd("test"), &example("mcp-tools.json"), &no_cases]);
    assert_eq!(code, 2);
    assert!(err.contains("no cases"), "{err}");
}

#[test]
fn test_runs_every_example_with_its_cases() {
    for (policy, cases, n) in [
        ("customers-api.json", "customers-api.cases.yaml", 15),
        ("openai-egress.json", "openai-egress.cases.yaml", 13),
        ("mcp-tools.json", "mcp-tools.cases.json", 15),
    ] {
        let (code, out, err) = run(&[&cmd("test"), &example(policy), &example(cases)]);
        assert_eq!(code, 0, "{policy}: {out}{err}");
        assert!(
            out.ends_with(&format!("{n} passed, 0 failed, {n} total\n")),
            "{out}"
        );
        assert_eq!(out.matches("PASS  ").count(), n);
    }
}

#[test]
fn failing_cases_are_reported_and_exit_1() {
    let cases = scratch(
        "failing.cases.yaml",
        r#"
cases:
  - name: passes
    request: { method: DELETE, authority: customers.internal, path: /customers/1,
               identity: { subject: a } }
    expect: { decision: deny, rule: no-deletes, status: 405 }
  - name: wrong decision
    request: { method: GET, authority: customers.internal, path: /customers/1 }
    expect: { decision: allow }
  - request: { method: DELETE, authority: customers.internal, path: /customers/1,
               identity: { subject: a } }
    expect: { decision: deny, rule: admin-is-off-limits, status: 403, fired: [] }
"#,
    );
    let (code, out, _) = run(&[&cmd("test"), &example("customers-api.json"), &cases]);
    assert_eq!(code, 1, "{out}");
    assert!(out.contains("PASS  passes\n"), "{out}");
    assert!(out.contains("FAIL  wrong decision\n"), "{out}");
    assert!(
        out.contains("expected decision allow, got deny by rule \"agents-must-authenticate\": 401"),
        "{out}"
    );
    assert!(out.contains("FAIL  case 3\n"), "{out}");
    assert!(
        out.contains("expected deny by rule \"admin-is-off-limits\", got rule \"no-deletes\""),
        "{out}"
    );
    assert!(out.contains("expected status 403, got 405"), "{out}");
    assert!(
        out.contains("expected fired [], got [\"no-deletes\"]"),
        "{out}"
    );
    assert!(out.ends_with("1 passed, 2 failed, 3 total\n"), "{out}");
}

#[test]
fn test_with_an_invalid_policy_exits_1() {
    let p = scratch("bad-for-test.json", r#"{"default_action":"nope"}"#);
    let (code, out, err) = run(&[&cmd("test"), &p, &example("mcp-tools.cases.json")]);
    assert_eq!(code, 1);
    assert!(
        err.starts_with("invalid policy at default_action: "),
        "{err}"
    );
    assert!(out.contains("the policy is invalid"), "{out}");
}

#[test]
fn explain_shows_rules_conditions_and_decision() {
    let req = scratch(
        "req.json",
        r#"{"method":"GET","authority":"customers.internal","path":"/customers/%2e%2e/admin",
            "identity":{"subject":"agent-1","scopes":["customers:read"]}}"#,
    );
    let (code, out, err) = run(&[&cmd("explain"), &example("customers-api.json"), &req]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("normalised path: /admin\n"), "{out}");
    assert!(
        out.contains("rule admin-is-off-limits (deny): FIRES\n"),
        "{out}"
    );
    assert!(
        out.contains("  [match]    normalised path under any of [\"/admin\"]\n"),
        "{out}"
    );
    assert!(
        out.contains("rule no-deletes (deny): does not fire\n"),
        "{out}"
    );
    assert!(
        out.contains("  [no match] method in [\"DELETE\"]\n"),
        "{out}"
    );
    assert!(out.contains("fired: admin-is-off-limits (deny)\n"), "{out}");
    assert!(
        out.contains(
            r#"decision: deny by rule "admin-is-off-limits": 403 {"error":"policy_denied","#
        ),
        "{out}"
    );
}

#[test]
fn explain_reports_the_headers_phase_and_monitor_rules() {
    let req = scratch(
        "req-monitor.yaml",
        r#"
method: PATCH
authority: customers.internal
path: /customers/42
identity: { subject: s, groups: [support], scopes: [customers:write] }
body: { notes: "refund please" }
"#,
    );
    let (code, out, err) = run(&[&cmd("explain"), &example("customers-api.json"), &req]);
    assert_eq!(code, 0, "{err}");
    assert!(out.contains("headers phase: needs the body"), "{out}");
    assert!(
        out.contains("rule watch-refund-notes (require_approval, monitor): FIRES"),
        "{out}"
    );
    assert!(out.contains("decision: allow\n"), "{out}");
    assert!(
        out.contains("monitor: enforcing the monitor rules would decide require_approval"),
        "{out}"
    );
}

#[test]
fn explain_with_a_bad_request_file_exits_2() {
    let req = scratch("req-bad.json", r#"{"methd":"GET"}"#);
    let (code, _, err) = run(&[&cmd("explain"), &example("customers-api.json"), &req]);
    assert_eq!(code, 2);
    assert!(err.contains("unknown field `methd`"), "{err}");
}

// ---- replay ----

fn fixture(name: &str) -> PathBuf {
    root().join("cli/tests/fixtures").join(name)
}

/// demo.json with `edit` applied to its JSON, as a scratch file.
fn demo_variant(name: &str, edit: impl FnOnce(&mut serde_json::Value)) -> PathBuf {
    let mut p: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(example("demo.json")).unwrap()).unwrap();
    edit(&mut p);
    scratch(name, &p.to_string())
}

#[test]
fn replay_of_the_demo_log_with_its_own_policy_changes_nothing() {
    let (code, out, err) = run(&[
        &cmd("replay"),
        &example("demo.json"),
        &fixture("demo-audit.jsonl"),
    ]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("0 decisions would change"), "{out}");
    assert!(
        out.contains("1 refused before the rules (unauthenticated)"),
        "{out}"
    );
}

#[test]
fn replay_with_a_stricter_policy_names_exactly_the_requests_that_change() {
    let stricter = demo_variant("stricter.json", |p| {
        p["rules"].as_array_mut().unwrap().insert(
            0,
            serde_json::json!({"name": "customers-need-ticket",
                "match": {"path": {"prefix": "/customers"},
                          "identity": {"groups_none": ["support-leads"]}},
                "action": "deny"}),
        );
    });
    let (code, out, err) = run(&[&cmd("replay"), &stricter, &fixture("demo-audit.jsonl")]);
    assert_eq!(code, 1, "allow -> deny fails the rollout: {out}{err}");
    assert!(out.contains("2 decisions would change"), "{out}");
    assert!(
        out.contains("mask -> deny (rule customers-need-ticket): 1\n    c1681523-e5f5-4606-9a34-6ced4d74d434 GET localhost:45287/customers (alice)"),
        "{out}"
    );
    assert!(
        out.contains("require_approval -> deny (rule customers-need-ticket): 1\n    f2700c91-5397-4cb4-8d0e-36d8c8e247c7 POST"),
        "{out}"
    );
    assert!(
        out.contains("2 requests that passed would now be denied"),
        "{out}"
    );
    // bob was denied already (by another rule): not a change.
    assert!(!out.contains("(bob)"), "{out}");
}

#[test]
fn replay_with_a_looser_policy_reports_the_loosening_and_passes() {
    let looser = demo_variant("looser.json", |p| {
        p["rules"]
            .as_array_mut()
            .unwrap()
            .retain(|r| r["name"] != "no-deletes");
    });
    let (code, out, err) = run(&[&cmd("replay"), &looser, &fixture("demo-audit.jsonl")]);
    assert_eq!(code, 0, "{out}{err}");
    assert!(out.contains("1 decisions would change"), "{out}");
    // The DELETE of a customer now falls to the masking rule.
    assert!(
        out.contains("deny -> mask (rule customers-masked): 1\n    05405cb5-3a57-4ba7-b42b-1f6a99654b34 DELETE"),
        "{out}"
    );
}

#[test]
fn replay_judges_recorded_bodies_and_refuses_a_broken_log() {
    let record = serde_json::json!({
        "schema": "transit-guard.audit/v1", "request_id": "r-1",
        "identity": {"sub": "alice", "iss": "x", "groups": ["support"]},
        "method": "POST", "authority": "db", "path": "/v1/query",
        "decision": "allowed", "rules": [], "bytes_in": 40,
        "recording": {"request": "{\"sql\":\"DROP TABLE customers\"}", "response": null, "truncated": false}
    });
    let log = scratch("recorded-body.jsonl", &format!("{record}\n"));
    let (code, out, _) = run(&[&cmd("replay"), &example("demo.json"), &log]);
    assert_eq!(code, 1, "{out}");
    assert!(
        out.contains("allow -> deny (rule no-drop-table): 1"),
        "{out}"
    );

    let broken = scratch("broken.jsonl", &format!("{record}\nnot json\n"));
    let (code, _, err) = run(&[&cmd("replay"), &example("demo.json"), &broken]);
    assert_eq!(code, 2);
    assert!(err.contains("line 2: not a JSON record"), "{err}");
}

#[test]
fn check_warns_about_rules_that_never_take_effect_and_strict_fails() {
    let policy = scratch(
        "shadowed.json",
        r#"{"default_action":"allow","rules":[
            {"name":"no-admin","match":{"path":{"prefix":"/admin"}},"action":"deny"},
            {"name":"admin-reads-held","match":{"path":{"prefix":"/admin"},"methods":["GET"]},"action":"deny"},
            {"name":"admin-writes-allowed","match":{"path":{"prefix":"/admin"},"methods":["POST"]},"action":"allow"},
            {"name":"get-body","match":{"methods":["GET"],"body":{"regex":"drop"}},"action":"deny"}]}"#,
    );
    let (code, out, err) = run(&[&cmd("check"), &policy]);
    assert_eq!(code, 0, "warnings alone pass: {out}{err}");
    assert!(
        out.contains("warning: rules[2] \"admin-writes-allowed\": never takes effect: rules[0] \"no-admin\" (deny)"),
        "{out}"
    );
    assert!(
        out.contains("warning: rules[3] \"get-body\": can never match"),
        "{out}"
    );
    assert_eq!(out.matches("warning:").count(), 2, "{out}");
    let (code, _, _) = run(&[&cmd("check"), &PathBuf::from("--strict"), &policy]);
    assert_eq!(code, 1);
    let (code, out, _) = run(&[
        &cmd("check"),
        &PathBuf::from("--strict"),
        &example("demo.json"),
    ]);
    assert_eq!(code, 0, "{out}");
}
