//! The service's configuration: flags and environment variables (clap), or
//! built directly by tests.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use anyhow::{bail, Result};
use clap::Parser;

use crate::clock::Clock;
use crate::oidc::OidcConfig;
use crate::policy::Policies;
use crate::store::Database;

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
    /// The database as a URL: `postgres://USER:PASSWORD@HOST:PORT/DB` for
    /// replicas that share state, or `sqlite:PATH`. Overrides `--db`.
    #[arg(long, env = "TG_APPROVER_DATABASE_URL", hide_env_values = true)]
    pub database_url: Option<String>,
    /// Approval policies per rule and reviewer groups (JSON; see docs/approver.md).
    #[arg(long, env = "TG_APPROVER_POLICIES")]
    pub policies: Option<PathBuf>,
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
    /// Signs each webhook payload (HMAC-SHA256; see docs/approver.md). At
    /// least 16 characters.
    #[arg(long, env = "TG_APPROVER_WEBHOOK_SECRET", hide_env_values = true)]
    pub webhook_secret: Option<String>,
    /// Webhook delivery attempts in all (retried with backoff on failure).
    #[arg(long, env = "TG_APPROVER_WEBHOOK_ATTEMPTS", default_value_t = 5)]
    pub webhook_attempts: u32,
    /// Seconds the webhook call may take before it is abandoned.
    #[arg(long, env = "TG_APPROVER_WEBHOOK_TIMEOUT_SECS", default_value_t = 5)]
    pub webhook_timeout_secs: u64,
    /// The reviewer page's address as reviewers reach it, for links in the
    /// webhook message (default: http://LISTEN).
    #[arg(long, env = "TG_APPROVER_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Reviewer sign-in: the OpenID provider's issuer URL (needs the client
    /// id and secret, `--session-secret` and `--public-url`).
    #[arg(long, env = "TG_APPROVER_OIDC_ISSUER")]
    pub oidc_issuer: Option<String>,
    #[arg(long, env = "TG_APPROVER_OIDC_CLIENT_ID")]
    pub oidc_client_id: Option<String>,
    #[arg(long, env = "TG_APPROVER_OIDC_CLIENT_SECRET", hide_env_values = true)]
    pub oidc_client_secret: Option<String>,
    /// The ID token claim that names the reviewer.
    #[arg(long, env = "TG_APPROVER_OIDC_NAME_CLAIM", default_value = "sub")]
    pub oidc_name_claim: String,
    /// The ID token claim with the reviewer's groups.
    #[arg(long, env = "TG_APPROVER_OIDC_GROUPS_CLAIM", default_value = "groups")]
    pub oidc_groups_claim: String,
    /// Signs session cookies; the same on every replica. At least 32 characters.
    #[arg(long, env = "TG_APPROVER_SESSION_SECRET", hide_env_values = true)]
    pub session_secret: Option<String>,
    /// How long a sign-in lasts.
    #[arg(long, env = "TG_APPROVER_SESSION_TTL_SECS", default_value_t = 8 * 3600)]
    pub session_ttl_secs: u64,
    /// A pending approval expires after this many seconds.
    #[arg(long, env = "TG_APPROVER_PENDING_TTL_SECS", default_value_t = 600)]
    pub pending_ttl_secs: u64,
    /// A waiting long-poll rereads its approval at least this often (a safety
    /// net for a lost change notice between replicas).
    #[arg(long, env = "TG_APPROVER_POLL_RECHECK_SECS", default_value_t = 5)]
    pub poll_recheck_secs: u64,
    /// An approved one-time approval must be used within this many seconds.
    #[arg(long, env = "TG_APPROVER_APPROVED_TTL_SECS", default_value_t = 3600)]
    pub approved_ttl_secs: u64,
}

/// Everything `serve` needs.
#[derive(Debug, Clone)]
pub struct Config {
    pub db: Database,
    pub policies: Policies,
    pub filter_keys: Vec<String>,
    /// (name, token)
    pub reviewers: Vec<(String, String)>,
    pub webhook: Option<String>,
    pub webhook_timeout: Duration,
    pub webhook_secret: Option<String>,
    pub webhook_retry: crate::webhook::Retry,
    /// Base of the links in webhook messages; `None`: `http://` + the listen address.
    pub public_url: Option<String>,
    pub pending_ttl_secs: u64,
    pub approved_ttl_secs: u64,
    pub poll_recheck: Duration,
    pub clock: Clock,
    pub oidc: Option<OidcConfig>,
    pub session_secret: Option<String>,
}

impl Config {
    /// A configuration with the defaults, for tests and embedding.
    pub fn new(db: impl Into<PathBuf>, filter_key: impl Into<String>) -> Config {
        Config {
            db: Database::Sqlite(db.into()),
            policies: Policies::default(),
            filter_keys: vec![filter_key.into()],
            reviewers: Vec::new(),
            webhook: None,
            webhook_timeout: Duration::from_secs(5),
            webhook_secret: None,
            webhook_retry: crate::webhook::Retry::default(),
            public_url: None,
            pending_ttl_secs: 600,
            approved_ttl_secs: 3600,
            poll_recheck: Duration::from_secs(5),
            clock: Clock::system(),
            oidc: None,
            session_secret: None,
        }
    }

    pub fn reviewer(mut self, name: &str, token: &str) -> Config {
        self.reviewers.push((name.to_string(), token.to_string()));
        self
    }

    /// Another database (a Postgres URL for replicas).
    pub fn database(mut self, db: Database) -> Config {
        self.db = db;
        self
    }

    pub fn policies(mut self, policies: Policies) -> Config {
        self.policies = policies;
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
        let policies = match &args.policies {
            Some(path) => Policies::load(path)?,
            None => Policies::default(),
        };
        Ok(Config {
            db: match &args.database_url {
                Some(url) => Database::from_url(url),
                None => Database::Sqlite(args.db),
            },
            policies,
            filter_keys: args.filter_keys,
            reviewers,
            webhook: args.webhook,
            webhook_timeout: Duration::from_secs(args.webhook_timeout_secs),
            webhook_secret: args.webhook_secret,
            webhook_retry: crate::webhook::Retry {
                attempts: args.webhook_attempts,
                ..Default::default()
            },
            public_url: args.public_url,
            pending_ttl_secs: args.pending_ttl_secs,
            approved_ttl_secs: args.approved_ttl_secs,
            poll_recheck: Duration::from_secs(args.poll_recheck_secs),
            clock: Clock::system(),
            oidc: match args.oidc_issuer {
                None => None,
                Some(issuer) => Some(OidcConfig {
                    issuer,
                    client_id: args.oidc_client_id.unwrap_or_default(),
                    client_secret: args.oidc_client_secret.unwrap_or_default(),
                    name_claim: args.oidc_name_claim,
                    groups_claim: args.oidc_groups_claim,
                    session_ttl_secs: i64::try_from(args.session_ttl_secs).unwrap_or(i64::MAX),
                }),
            },
            session_secret: args.session_secret,
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
        if self.poll_recheck.is_zero() {
            bail!("--poll-recheck-secs must be at least 1");
        }
        if self.pending_ttl_secs == 0 || self.approved_ttl_secs == 0 {
            bail!("--pending-ttl-secs and --approved-ttl-secs must be at least 1");
        }
        if let Some(url) = &self.webhook {
            if !(url.starts_with("http://") || url.starts_with("https://")) {
                bail!("--webhook must be an http:// or https:// URL");
            }
        }
        if let Some(o) = &self.oidc {
            if o.client_id.is_empty() || o.client_secret.is_empty() {
                bail!("--oidc-issuer needs --oidc-client-id and --oidc-client-secret");
            }
            if !(o.issuer.starts_with("https://") || o.issuer.starts_with("http://")) {
                bail!("--oidc-issuer must be an https:// URL");
            }
            if self.session_secret.as_ref().is_none_or(|s| s.len() < 32) {
                bail!("--oidc-issuer needs a --session-secret of at least 32 characters");
            }
            if self.public_url.is_none() {
                bail!("--oidc-issuer needs --public-url (the redirect URI is built from it)");
            }
            if o.session_ttl_secs < 60 {
                bail!("--session-ttl-secs must be at least 60");
            }
        }
        if self.webhook_secret.as_ref().is_some_and(|s| s.len() < 16) {
            bail!("--webhook-secret must be at least 16 characters");
        }
        if !(1..=20).contains(&self.webhook_retry.attempts) {
            bail!("--webhook-attempts must be between 1 and 20");
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
        assert_eq!(c.db, Database::Sqlite(PathBuf::from("/tmp/x.sqlite")));
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
    fn a_database_url_selects_the_backend() {
        let key = "0123456789abcdef";
        let c = parse(&[
            "--filter-key",
            key,
            "--database-url",
            "postgres://tg:secret@db:5432/approver",
        ])
        .unwrap();
        assert_eq!(
            c.db,
            Database::Postgres("postgres://tg:secret@db:5432/approver".into())
        );
        assert_eq!(c.db.describe(), "postgres://tg:***@db:5432/approver");
        let c = parse(&["--filter-key", key, "--database-url", "sqlite:/x/a.db"]).unwrap();
        assert_eq!(c.db, Database::Sqlite(PathBuf::from("/x/a.db")));
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
