//! `cargo xtask token --sub S [--group G]... [--scope S]... [--ttl SECS] [--aud A]`:
//! prints a token signed by the demo's dev issuer, for `curl -H "Authorization:
//! Bearer $TOKEN"` against `cargo xtask demo`.
//!
//! The issuer key lives in `target/demo/issuer/`. If it does not exist yet it
//! is created here (and said so on stderr), so tokens can be minted before the
//! demo starts: the demo serves the same key.

use std::path::Path;

use anyhow::{bail, Context, Result};
use integration_tests::issuer::{self, Issuer, TokenRequest};

pub const USAGE: &str =
    "cargo xtask token --sub S [--group G]... [--scope S]... [--ttl SECS] [--aud A]";

/// Tokens last at most a day: they are for trying the demo.
const MAX_TTL_SECS: u64 = 86_400;

pub fn run(args: &[&str]) -> Result<()> {
    if args.iter().any(|a| matches!(*a, "-h" | "--help")) {
        println!("usage: {USAGE}\n\nA token from the demo's dev issuer ({}), for `cargo xtask demo`.\nDefaults: --ttl 3600 (at most 86400), --aud {}. Creates the issuer key in\n{} if it does not exist yet.", issuer::ISSUER, issuer::AUDIENCE, issuer::default_dir().display());
        return Ok(());
    }
    let req = parse(args)?;
    let dir = issuer::default_dir();
    let (token, created) = mint(&req, &dir)?;
    if created {
        eprintln!(
            "xtask: created the demo issuer key {} (cargo xtask demo serves it as {})",
            dir.join("signing-key.pem").display(),
            issuer::ISSUER
        );
    }
    println!("{token}");
    Ok(())
}

/// The token for `req` with the key in `dir` (created if missing), and
/// whether the key was created.
pub fn mint(req: &TokenRequest, dir: &Path) -> Result<(String, bool)> {
    let (issuer, created) = Issuer::load_or_create(dir)?;
    Ok((issuer.mint(req)?, created))
}

pub fn parse(args: &[&str]) -> Result<TokenRequest> {
    let mut req = TokenRequest::new("");
    let mut sub = None;
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        // `--flag value` and `--flag=value` both work.
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v)),
            _ => (*arg, None),
        };
        let value = match inline {
            Some(v) => v.to_string(),
            None => it
                .next()
                .with_context(|| format!("{flag} needs a value\nusage: {USAGE}"))?
                .to_string(),
        };
        if value.trim().is_empty() {
            bail!("{flag} needs a non-empty value");
        }
        match flag {
            "--sub" => sub = Some(value),
            "--group" => req.groups.push(value),
            "--scope" => req.scopes.push(value),
            "--aud" => req.audience = value,
            "--ttl" => {
                req.ttl_secs = value
                    .parse()
                    .ok()
                    .filter(|t| (1..=MAX_TTL_SECS).contains(t))
                    .with_context(|| {
                        format!("--ttl {value:?}: seconds, from 1 to {MAX_TTL_SECS}")
                    })?
            }
            other => bail!("unknown option {other:?}\nusage: {USAGE}"),
        }
    }
    req.sub = sub.with_context(|| format!("--sub is required\nusage: {USAGE}"))?;
    Ok(req)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose::URL_SAFE_NO_PAD;
    use base64::Engine;
    use serde_json::{json, Value};

    fn part(token: &str, i: usize) -> Value {
        let b64 = token.split('.').nth(i).unwrap();
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(b64).unwrap()).unwrap()
    }

    #[test]
    fn the_token_carries_what_was_asked() {
        let dir = integration_tests::paths::scratch_dir("xtask-token").unwrap();
        let req = parse(&[
            "--sub",
            "alice",
            "--group",
            "support",
            "--group=oncall",
            "--scope",
            "customers:read",
            "--scope",
            "customers:export",
            "--ttl",
            "600",
        ])
        .unwrap();
        let before = integration_tests::tokens::now();
        let (token, created) = mint(&req, &dir).unwrap();
        assert!(created);
        let header = part(&token, 0);
        let claims = part(&token, 1);
        let issuer = Issuer::load(&dir).unwrap();
        assert_eq!(
            header,
            json!({"alg": "ES256", "typ": "JWT", "kid": issuer.key.kid})
        );
        let iat = claims["iat"].as_u64().unwrap();
        assert!(iat >= before && iat <= before + 5);
        assert_eq!(
            claims,
            json!({"iss": "http://127.0.0.1:18080", "aud": "transit-guard-demo", "sub": "alice",
                   "iat": iat, "exp": iat + 600, "groups": ["support", "oncall"],
                   "scope": "customers:read customers:export"})
        );
        // The same key next time: the key file is kept.
        let (again, created) = mint(&TokenRequest::new("bob"), &dir).unwrap();
        assert!(!created);
        assert_eq!(part(&again, 0)["kid"], json!(issuer.key.kid));
        let bob = part(&again, 1);
        assert_eq!(bob["groups"], json!([]));
        assert_eq!(
            bob["exp"].as_u64().unwrap() - bob["iat"].as_u64().unwrap(),
            3600
        );
        assert!(bob.get("scope").is_none());
    }

    #[test]
    fn the_audience_can_be_changed_and_bad_arguments_are_refused() {
        let req = parse(&["--aud", "other", "--sub=x"]).unwrap();
        assert_eq!(req.audience, "other");
        assert_eq!(req.sub, "x");
        for (args, error) in [
            (&[][..], "--sub is required"),
            (&["--sub"][..], "--sub needs a value"),
            (&["--sub", " "][..], "non-empty"),
            (&["--sub", "a", "--ttl", "0"][..], "from 1 to 86400"),
            (&["--sub", "a", "--ttl", "lots"][..], "from 1 to 86400"),
            (
                &["--sub", "a", "--role", "x"][..],
                "unknown option \"--role\"",
            ),
        ] {
            let e = parse(args).unwrap_err().to_string();
            assert!(e.contains(error), "{args:?}: {e}");
        }
    }
}
