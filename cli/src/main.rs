//! `transit-guard`: check, explain and test policies, and mask samples,
//! with the filter's own engine.
//!
//! Exit codes: 0 success; 1 the policy is invalid or a test case failed;
//! 2 a usage error or an input that cannot be read or parsed (a request or
//! cases file, not the policy), or an unknown masking profile.

mod cases;
mod explain;
mod input;
mod lint;
mod mask;
mod replay;

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};

use input::InputError;
use transit_guard::policy::Mode;
use transit_guard::rules::DefaultAction;

#[derive(Parser)]
#[command(
    name = "transit-guard",
    version,
    about = "Check, explain and test transit-guard policies; mask samples with a profile"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Validate a policy exactly as Envoy loads it. Prints the error line
    /// Envoy would log (`invalid policy at PATH: REASON`) and exits 1 if invalid.
    /// Warns about rules that can never match or never take effect.
    Check {
        policy: PathBuf,
        /// Exit 1 on any warning too.
        #[arg(long)]
        strict: bool,
    },
    /// Show which rules fire on a request, why, and the final decision.
    Explain {
        policy: PathBuf,
        /// A JSON (or .yaml) file: method, authority, path, headers, identity, body.
        request: PathBuf,
    },
    /// Run policy unit tests: a cases file of requests and expected decisions.
    Test {
        policy: PathBuf,
        /// A JSON (or .yaml) file: {"cases": [{"name", "request", "expect"}]}.
        cases: PathBuf,
    },
    /// Mask FILE (or standard input) exactly as the filter masks a body of
    /// that content type with the profile. The masked body goes to standard
    /// output; the masked values' counts by detector, as JSON, to standard error.
    Mask {
        policy: PathBuf,
        /// A profile of the policy's `masking.profiles`.
        #[arg(long)]
        profile: String,
        /// The body's content type; by default from FILE's extension
        /// (.json, .jsonl/.ndjson, .xml, .yaml, .csv, .html, .form), else text/plain.
        #[arg(long)]
        content_type: Option<String>,
        /// Mask each line as a body of its own (a corpus, one record a line).
        #[arg(long)]
        each_line: bool,
        /// The body; standard input when absent or `-`.
        file: Option<PathBuf>,
    },
    /// Replay an audit log (JSON lines) against a candidate policy: which
    /// recorded decisions would change, grouped by rule, with examples.
    /// Exits 1 if a request that passed would now be denied.
    Replay { policy: PathBuf, audit_log: PathBuf },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli.command) {
        Ok(code) => code,
        Err(InputError(msg)) => {
            eprintln!("transit-guard: {msg}");
            ExitCode::from(2)
        }
    }
}

fn run(cmd: Command) -> Result<ExitCode, InputError> {
    match cmd {
        Command::Mask {
            policy,
            profile,
            content_type,
            each_line,
            file,
        } => {
            let text = input::read(&policy)?;
            let base = match input::load_policy(&text) {
                Ok(p) => p,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(1));
                }
            };
            let Some(masker) = base.masking.profile(&profile) else {
                let known: Vec<&str> = base.masking.profile_names().collect();
                return Err(InputError(format!(
                    "no masking profile \"{profile}\" in {}; profiles: {}",
                    policy.display(),
                    if known.is_empty() {
                        "none".to_string()
                    } else {
                        known.join(", ")
                    }
                )));
            };
            let body = mask::read_input(file.as_deref())?;
            let ct = content_type.unwrap_or_else(|| mask::content_type_for(file.as_deref()).into());
            let report = mask::run(masker, &ct, &body, each_line, &mut std::io::stdout().lock())
                .map_err(|e| InputError(format!("cannot write standard output: {e}")))?;
            eprintln!("{report}");
            Ok(ExitCode::SUCCESS)
        }
        Command::Check { policy, strict } => {
            let text = input::read(&policy)?;
            match input::load_policy(&text) {
                Ok(policy_) => {
                    let rules = &policy_.rules;
                    let mode = match policy_.mode {
                        Mode::Enforce => "enforce",
                        Mode::Monitor => "monitor",
                    };
                    let default = match rules.default_action() {
                        DefaultAction::Allow => "allow",
                        DefaultAction::Deny => "deny",
                    };
                    println!(
                        "{}: valid (mode {mode}, {} rules, default_action {default})",
                        policy.display(),
                        rules.len(),
                    );
                    // The policy compiled, so it is JSON.
                    let doc: serde_json::Value = serde_json::from_slice(&text).unwrap_or_default();
                    let warnings = lint::warnings(&doc);
                    for w in &warnings {
                        println!("warning: {w}");
                    }
                    Ok(if strict && !warnings.is_empty() {
                        ExitCode::from(1)
                    } else {
                        ExitCode::SUCCESS
                    })
                }
                Err(e) => {
                    eprintln!("{e}");
                    Ok(ExitCode::from(1))
                }
            }
        }
        Command::Explain { policy, request } => {
            let text = input::read(&policy)?;
            let doc: input::RequestDoc = input::parse(&request)?;
            let req = input::Request::from_doc(&doc)
                .map_err(|e| InputError(format!("{}: {e}", request.display())))?;
            let rules = match input::load_policy(&text) {
                Ok(p) => p.rules,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(1));
                }
            };
            print!("{}", explain::explain(&rules, &req));
            Ok(ExitCode::SUCCESS)
        }
        Command::Replay { policy, audit_log } => {
            let text = input::read(&policy)?;
            let log = input::read(&audit_log)?;
            let log = String::from_utf8(log)
                .map_err(|_| InputError(format!("{}: not UTF-8", audit_log.display())))?;
            let rules = match input::load_policy(&text) {
                Ok(p) => p.rules,
                Err(e) => {
                    eprintln!("{e}");
                    return Ok(ExitCode::from(1));
                }
            };
            let report = replay::replay(&rules, &log)
                .map_err(|e| InputError(format!("{}: {e}", audit_log.display())))?;
            print!("{}", report.render());
            Ok(if report.newly_denied > 0 {
                ExitCode::from(1)
            } else {
                ExitCode::SUCCESS
            })
        }
        Command::Test { policy, cases } => {
            let text = input::read(&policy)?;
            let doc: cases::CasesDoc = input::parse(&cases)?;
            if doc.cases.is_empty() {
                return Err(InputError(format!("{}: no cases", cases.display())));
            }
            let rules = match input::load_policy(&text) {
                Ok(p) => p.rules,
                Err(e) => {
                    eprintln!("{e}");
                    println!(
                        "0 passed, {n} failed, {n} total (the policy is invalid)",
                        n = doc.cases.len()
                    );
                    return Ok(ExitCode::from(1));
                }
            };
            let mut failed = 0;
            for (i, case) in doc.cases.iter().enumerate() {
                let name = case
                    .name
                    .clone()
                    .unwrap_or_else(|| format!("case {}", i + 1));
                match cases::run_case(&rules, case) {
                    Ok(()) => println!("PASS  {name}"),
                    Err(why) => {
                        failed += 1;
                        println!("FAIL  {name}");
                        for w in why {
                            println!("      {w}");
                        }
                    }
                }
            }
            let total = doc.cases.len();
            println!("{} passed, {failed} failed, {total} total", total - failed);
            Ok(if failed == 0 {
                ExitCode::SUCCESS
            } else {
                ExitCode::from(1)
            })
        }
    }
}
