//! What `cargo xtask lint` relies on: the filter's panic-free lints bite. A
//! crate carrying the filter's own `[lints]` table and `clippy.toml` is
//! refused by clippy for an `unwrap`, an `expect`, a `panic!` or an index in
//! non-test code, and allowed them in tests.

use std::process::Command;

use integration_tests::paths;

/// The filter's `[lints.clippy]` table, verbatim.
fn filter_lints() -> String {
    let manifest =
        std::fs::read_to_string(paths::workspace_root().join("filter/Cargo.toml")).unwrap();
    let start = manifest
        .find("[lints.clippy]")
        .expect("filter/Cargo.toml has [lints.clippy]");
    let table = &manifest[start..];
    let end = table[1..].find("\n[").map(|i| i + 1).unwrap_or(table.len());
    table[..end].to_string()
}

/// Runs clippy on a scratch crate whose lib.rs is `code`; returns (passed, output).
fn clippy_on(name: &str, code: &str) -> (bool, String) {
    let dir = paths::scratch_dir(name).unwrap();
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(
        dir.join("Cargo.toml"),
        format!(
            "[package]\nname = \"lint-probe\"\nversion = \"0.0.0\"\nedition = \"2021\"\n\n[workspace]\n\n{}",
            filter_lints()
        ),
    )
    .unwrap();
    std::fs::copy(
        paths::workspace_root().join("filter/clippy.toml"),
        dir.join("clippy.toml"),
    )
    .unwrap();
    std::fs::write(dir.join("src/lib.rs"), code).unwrap();
    let out = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()))
        .args(["clippy", "--quiet", "--all-targets", "--", "-D", "warnings"])
        .current_dir(&dir)
        .env("CARGO_TARGET_DIR", dir.join("target"))
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stderr).into_owned();
    (out.status.success(), text)
}

#[test]
fn unwrap_expect_panic_and_indexing_are_refused_outside_tests() {
    let (ok, out) = clippy_on(
        "lint-probe-bad",
        "pub fn a(x: Option<u8>) -> u8 { x.unwrap() }\n\
         pub fn b(x: Option<u8>) -> u8 { x.expect(\"x\") }\n\
         pub fn c() { panic!(\"no\") }\n\
         pub fn d(v: &[u8]) -> u8 { v[0] }\n",
    );
    assert!(!ok, "clippy accepted panicking code:\n{out}");
    for lint in [
        "unwrap_used",
        "expect_used",
        "clippy::panic",
        "indexing_slicing",
    ] {
        assert!(out.contains(lint), "no {lint} in:\n{out}");
    }
}

#[test]
fn tests_may_unwrap() {
    let code = r#"
pub fn a(x: Option<u8>) -> Option<u8> {
    x
}

#[cfg(test)]
mod tests {
    #[test]
    fn unwraps_and_indexes() {
        let v = [super::a(Some(1)).unwrap()];
        assert_eq!(v[0], super::a(Some(1)).expect("one"));
    }
}
"#;
    let (ok, out) = clippy_on("lint-probe-tests", code);
    assert!(ok, "clippy refused test-only unwrap:\n{out}");
}
