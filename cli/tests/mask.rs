//! `transit-guard mask`, run as an operator would: a policy, a profile, a file
//! or standard input.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

const POLICY: &str = r#"{"masking": {"hash_key": "0123456789abcdef-test", "profiles": {
    "pii": {"detectors": ["email", "phone", "credit_card"], "strategies": {"credit_card": {"partial": 4}}},
    "secrets": {"detectors": ["openai_key"]}
}}}"#;

/// A scratch file under the target dir, unique per test.
fn scratch(name: &str, text: &str) -> PathBuf {
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("cli-mask-tests");
    std::fs::create_dir_all(&dir).unwrap();
    let p = dir.join(name);
    std::fs::write(&p, text).unwrap();
    p
}

/// Runs `transit-guard mask ARGS` with `stdin`; (exit code, stdout, stderr).
fn mask(args: &[&str], stdin: &str) -> (i32, String, String) {
    let mut child = Command::new(env!("CARGO_BIN_EXE_transit-guard"))
        .arg("mask")
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let written = child.stdin.take().unwrap().write_all(stdin.as_bytes());
    // A command refused before it reads its input (an unknown profile) may exit
    // and close the pipe while the input is still being written.
    if let Err(e) = written {
        assert_eq!(e.kind(), std::io::ErrorKind::BrokenPipe, "{e}");
    }
    let out = child.wait_with_output().unwrap();
    (
        out.status.code().unwrap(),
        String::from_utf8(out.stdout).unwrap(),
        String::from_utf8(out.stderr).unwrap(),
    )
}

#[test]
fn masks_a_json_file_as_json_and_reports_counts() {
    let policy = scratch("policy-json.json", POLICY);
    let body = scratch(
        "body.json",
        r#"{"email":"alice@example.com","card":"4111 1111 1111 1111","role":"user"}"#,
    );
    let (code, out, err) = mask(
        &[
            policy.to_str().unwrap(),
            "--profile",
            "pii",
            body.to_str().unwrap(),
        ],
        "",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(
        out,
        r#"{"email":"[REDACTED:email]","card":"***************1111","role":"user"}"#
    );
    let report: serde_json::Value = serde_json::from_str(err.trim()).unwrap();
    assert_eq!(report["read_as"], "json");
    assert_eq!(report["content_type"], "application/json");
    assert_eq!(report["masked"]["email"], 1);
    assert_eq!(report["masked"]["credit_card"], 1);
    assert_eq!(report["total"], 2);
}

#[test]
fn masks_standard_input_as_text_or_the_given_type() {
    let policy = scratch("policy-stdin.json", POLICY);
    let p = policy.to_str().unwrap();
    let (code, out, err) = mask(
        &[p, "--profile", "pii"],
        "call +44 20 7946 0958 or mail bob@example.com\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "call [REDACTED:phone] or mail [REDACTED:email]\n");
    assert!(err.contains(r#""read_as":"text""#), "{err}");
    // A body declared JSON that does not parse is scanned as text, as in the filter.
    let (code, out, err) = mask(
        &[p, "--profile", "pii", "--content-type", "application/json"],
        "{not json bob@example.com",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "{not json [REDACTED:email]");
    assert!(err.contains(r#""read_as":"invalid_json""#), "{err}");
    // Binary types pass unscanned, as in the filter.
    let (_, out, err) = mask(
        &[p, "--profile", "pii", "--content-type", "image/png"],
        "bob@example.com",
    );
    assert_eq!(out, "bob@example.com");
    assert!(err.contains(r#""read_as":"passthrough""#), "{err}");
}

#[test]
fn each_line_masks_lines_as_bodies_of_their_own() {
    let policy = scratch("policy-lines.json", POLICY);
    let (code, out, err) = mask(
        &[
            policy.to_str().unwrap(),
            "--profile",
            "secrets",
            "--each-line",
        ],
        "key sk-proj-Abc123Def456Ghi789Jkl012Mno345\nnothing\n",
    );
    assert_eq!(code, 0, "{err}");
    assert_eq!(out, "key [REDACTED:openai_key]\nnothing\n");
}

#[test]
fn unknown_profile_and_unreadable_input_exit_2_invalid_policy_exits_1() {
    let policy = scratch("policy-errors.json", POLICY);
    let p = policy.to_str().unwrap();
    let (code, _, err) = mask(&[p, "--profile", "nope"], "x");
    assert_eq!(code, 2);
    assert!(err.contains(r#"no masking profile "nope""#), "{err}");
    assert!(err.contains("pii, secrets"), "{err}");
    // More input than a pipe holds: refused the same, however much is unread.
    let (code, _, err) = mask(&[p, "--profile", "nope"], &"x".repeat(1 << 20));
    assert_eq!(code, 2);
    assert!(err.contains(r#"no masking profile "nope""#), "{err}");
    let (code, _, err) = mask(&[p, "--profile", "pii", "/nonexistent/body.txt"], "");
    assert_eq!(code, 2);
    assert!(err.contains("cannot read /nonexistent/body.txt"), "{err}");
    let bad = scratch(
        "policy-bad.json",
        r#"{"masking":{"profiles":{"p":{"detectors":["nope"]}}}}"#,
    );
    let (code, _, err) = mask(&[bad.to_str().unwrap(), "--profile", "p"], "x");
    assert_eq!(code, 1);
    assert!(err.contains("masking.profiles.p.detectors[0]"), "{err}");
}
