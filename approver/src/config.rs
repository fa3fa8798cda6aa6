//! The service's configuration: flags and environment variables (clap), or
//! built directly by tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Parser;

use crate::clock::Clock;

/// The approver service for transit-guard.
#[derive(Debug, Parser)]
#[command(name = "transit-guard-approver", version, about)]
pub struct Args {
    /// Address to listen on (plain HTTP: keep it on loopback or a private network).
    #[arg(long, env = "TG_APPROVER_LISTEN", default_value = "127.0.0.1:8088")]
    pub listen: SocketAddr,
    /// The SQLite database file (created if missing).
    #[arg(long, env = "TG_APPROVER_DB", default_value = "approver.sqlite")]
    pub db: PathBuf,
    /// The key the filter sends in `x-approver-key`. Repeatable (key rotation);
    /// in the environment, comma-separated.
    #[arg(
        long = "filter-key",
        env = "TG_APPROVER_FILTER_KEY",
        value_delimiter = ',',
        required = true,
        hide_env_values = true
    )]
    pub filter_keys: Vec<String>,
    /// A reviewer as NAME=TOKEN. Repeatable; in the environment, comma-separated.
    #[arg(
        long = "reviewer",
        env = "TG_APPROVER_REVIEWERS",
        value_delimiter = ',',
        hide_env_values = true
    )]
    pub reviewers: Vec<String>,
    /// Slack-compatible webhook URL told about each new pending approval.
    #[arg(long, env = "TG_APPROVER_WEBHOOK")]
    pub webhook: Option<String>,
    /// Seconds the webhook call may take before it is abandoned.
    #[arg(long, env = "TG_APPROVER_WEBHOOK_TIMEOUT_SECS", default_value_t = 5)]
    pub webhook_timeout_secs: u64,
    /// The reviewer page's address as reviewers reach it, for links in the
    /// webhook message (default: http://LISTEN).
    #[arg(long, env = "TG_APPROVER_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// A pending approval expires after this many seconds.
    #[arg(long, env = "TG_APPROVER_PENDING_TTL_SECS", default_value_t = 600)]
    pub pending_ttl_secs: u64,
    /// An approved one-time approval must be used within this many seconds.
    #[arg(long, env = "TG_APPROVER_APPROVED_TTL_SECS", default_value_t = 3600)]
    pub approved_ttl_secs: u64,
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub db: PathBuf,
    pub filter_keys: Vec<String>,
    /// (name, token)
    pub reviewers: Vec<(String, String)>,
    pub webhook: Option<String>,
    pub webhook_timeout: Duration,
    /// Base of the links in webhook messages; `None`: `http://` + the listen address.
    pub public_url: Option<String>,
    pub pending_ttl_secs: u64,
    pub approved_ttl_secs: u64,
    pub clock: Clock,
}

impl Config {
    /// A configuration with the defaults, for tests and embedding.
    pub fn new(db: impl Into<PathBuf>, filter_key: impl Into<String>) -> Config {
        Config {
            db: db.into(),
            filter_keys: vec![filter_key.into()],
            reviewers: Vec::new(),
            webhook: None,
            webhook_timeout: Duration::from_secs(5),
            public_url: None,
            pending_ttl_secs: 600,
            approved_ttl_secs: 3600,
            clock: Clock::system(),
        }
    }

    pub fn reviewer(mut self, name: &str, token: &str) -> Config {
        self.reviewers.push((name.to_string(), token.to_string()));
        self
    }

    pub fn from_args(args: Args) -> Result<Config> {
        let mut reviewers = Vec::new();
        for r in &args.reviewers {
            let Some((name, token)) = r.split_once('=') else {
                bail!(
                    "--reviewer {:?}: expected NAME=TOKEN",
                    r.split('=').next().unwrap_or("")
                );
            };
            reviewers.push((name.trim().to_string(), token.trim().to_string()));
        }
        Ok(Config {
            db: args.db,
            filter_keys: args.filter_keys,
            reviewers,
            webhook: args.webhook,
            webhook_timeout: Duration::from_secs(args.webhook_timeout_secs),
            public_url: args.public_url,
            pending_ttl_secs: args.pending_ttl_secs,
            approved_ttl_secs: args.approved_ttl_secs,
            clock: Clock::system(),
        })
    }

    /// Refuses configurations that would be insecure or useless.
    pub fn validate(&self) -> Result<()> {
        if self.filter_keys.is_empty() {
            bail!("at least one --filter-key is needed");
        }
        for k in &self.filter_keys {
            if k.len() < 16 {
                bail!("a --filter-key must be at least 16 characters");
            }
        }
        let mut names = std::collections::HashSet::new();
        let mut tokens = std::collections::HashSet::new();
        for (name, token) in &self.reviewers {
            if name.is_empty() {
                bail!("--reviewer with an empty name");
            }
            if token.len() < 16 {
                bail!("--reviewer {name}: the token must be at least 16 characters");
            }
            if !names.insert(name) {
                bail!("--reviewer {name} is given twice");
            }
            if !tokens.insert(token) || self.filter_keys.contains(token) {
                bail!("--reviewer {name}: the token is not unique");
            }
        }
        if self.pending_ttl_secs == 0 || self.approved_ttl_secs == 0 {
            bail!("--pending-ttl-secs and --approved-ttl-secs must be at least 1");
        }
        if let Some(url) = &self.webhook {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("--webhook must be an http:// or https:// URL");
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(args: &[&str]) -> Result<Config> {
        let mut all = vec!["transit-guard-approver"];
        all.extend_from_slice(args);
        let args = Args::try_parse_from(all)?;
        let config = Config::from_args(args)?;
        config.validate()?;
        Ok(config)
    }

    #[test]
    fn flags_build_the_config() {
        let c = parse(&[
            "--db",
            "/tmp/x.sqlite",
            "--filter-key",
            "0123456789abcdef",
            "--reviewer",
            "alice=alice-token-0123456789",
            "--reviewer",
            "bob=bob-token-0123456789ab",
            "--webhook",
            "https://hooks.example/x",
            "--pending-ttl-secs",
            "120",
        ])
        .unwrap();
        assert_eq!(c.db, PathBuf::from("/tmp/x.sqlite"));
        assert_eq!(c.filter_keys, vec!["0123456789abcdef".to_string()]);
        assert_eq!(
            c.reviewers,
            vec![
                ("alice".to_string(), "alice-token-0123456789".to_string()),
                ("bob".to_string(), "bob-token-0123456789ab".to_string())
            ]
        );
        assert_eq!(c.webhook.as_deref(), Some("https://hooks.example/x"));
        assert_eq!(c.pending_ttl_secs, 120);
        assert_eq!(c.approved_ttl_secs, 3600);
    }

    #[test]
    fn unsafe_or_useless_configs_are_refused() {
        let key = "0123456789abcdef";
        for (args, why) in [
            (vec![], "no filter key"),
            (vec!["--filter-key", "short"], "short filter key"),
            (vec!["--filter-key", key, "--reviewer", "alice"], "no token"),
            (
                vec!["--filter-key", key, "--reviewer", "alice=short"],
                "short token",
            ),
            (
                vec!["--filter-key", key, "--reviewer", "=alice-token-0123456789"],
                "no name",
            ),
            (
                vec![
                    "--filter-key",
                    key,
                    "--reviewer",
                    "a=alice-token-0123456789",
                    "--reviewer",
                    "a=other-token-0123456789",
                ],
                "duplicate name",
            ),
            (
                vec![
                    "--filter-key",
                    key,
                    "--reviewer",
                    "a=alice-token-0123456789",
                    "--reviewer",
                    "b=alice-token-0123456789",
                ],
                "shared token",
            ),
            (
                vec!["--filter-key", key, "--reviewer", &format!("a={key}")],
                "token = filter key",
            ),
            (
                vec!["--filter-key", key, "--pending-ttl-secs", "0"],
                "zero ttl",
            ),
            (
                vec!["--filter-key", key, "--webhook", "ftp://x"],
                "bad webhook",
            ),
        ] {
            assert!(parse(&args).is_err(), "{why} was accepted");
        }
    }
}
