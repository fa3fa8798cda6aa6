//! `cargo xtask corpus [--records N] [--seed S]`: per-detector precision and
//! recall of the built-in detectors, measured through `transit-guard mask`.
//!
//! Generates a labelled corpus with Faker in many locales
//! (`xtask/corpus/generate.py`, checksummed values confirmed by
//! python-stdnum) into `target/corpus/`, masks it one record per line with
//! every detector on, and scores it (`xtask/corpus/evaluate.py`), plus the
//! hand-written `filter/tests/data/mask_corpus.jsonl`. The report goes to
//! standard output and `target/corpus/report.md`; the records each detector
//! missed or masked wrongly to `target/corpus/misses.txt`.

use std::process::{Command, Stdio};

use anyhow::{bail, Context, Result};
use integration_tests::paths::workspace_root;

use crate::setup::{self, cargo};

/// A policy with one profile, every built-in detector, default options.
const POLICY: &str = r#"{"masking": {"profiles": {"all": {"detectors": "all"}}}}"#;

pub fn run(args: &[&str]) -> Result<()> {
    let mut records = "6000".to_string();
    let mut seed = "16".to_string();
    let mut it = args.iter();
    while let Some(a) = it.next() {
        match *a {
            "--records" => records = it.next().context("--records needs a number")?.to_string(),
            "--seed" => seed = it.next().context("--seed needs a number")?.to_string(),
            other => bail!("unknown argument {other:?} (expected --records N, --seed S)"),
        }
    }
    let python = setup::ensure_corpus_packages()?;
    let root = workspace_root();
    let out = root.join("target/corpus");
    std::fs::create_dir_all(&out)?;
    let policy = out.join("policy.json");
    std::fs::write(&policy, POLICY)?;

    eprintln!(
        "xtask: generating {records} records (seed {seed}) into {}",
        out.display()
    );
    setup::run(
        Command::new(&python)
            .arg(root.join("xtask/corpus/generate.py"))
            .arg(&out)
            .args(["--records", &records, "--seed", &seed]),
    )?;

    setup::run(cargo().args(["build", "--quiet", "-p", "transit-guard-cli"]))?;
    let cli = root.join("target/debug/transit-guard");
    let masked = std::fs::File::create(out.join("masked.txt"))?;
    setup::run(
        Command::new(&cli)
            .arg("mask")
            .arg(&policy)
            .args(["--profile", "all", "--each-line"])
            .arg(out.join("generated.txt"))
            .stdout(masked)
            .stderr(Stdio::null()),
    )?;

    let evaluate = root.join("xtask/corpus/evaluate.py");
    let generated = Command::new(&python)
        .arg(&evaluate)
        .arg("generated")
        .arg(out.join("generated.labels.jsonl"))
        .arg(out.join("masked.txt"))
        .output()?;
    let existing = Command::new(&python)
        .arg(&evaluate)
        .arg("existing")
        .arg(root.join("filter/tests/data/mask_corpus.jsonl"))
        .arg(&cli)
        .arg(&policy)
        .output()?;
    for o in [&generated, &existing] {
        if !o.status.success() {
            bail!("evaluate.py failed: {}", String::from_utf8_lossy(&o.stderr));
        }
    }
    let report = format!(
        "Corpus: {records} generated records (seed {seed}), `cargo xtask corpus`.\n\n{}\n{}",
        String::from_utf8_lossy(&generated.stdout),
        String::from_utf8_lossy(&existing.stdout)
    );
    print!("{report}");
    std::fs::write(out.join("report.md"), &report)?;
    let mut misses = generated.stderr;
    misses.extend(existing.stderr);
    std::fs::write(out.join("misses.txt"), misses)?;
    eprintln!(
        "xtask: report in {}, misses in {}",
        out.join("report.md").display(),
        out.join("misses.txt").display()
    );
    Ok(())
}
