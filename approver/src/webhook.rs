//! Tells a chat channel about each new pending approval: a Slack-compatible
//! incoming-webhook POST, in the background (a decision never waits for it).
//!
//! - Everything taken from the request is escaped: Slack's `&`, `<`, `>`,
//!   control characters and line breaks flattened to spaces, and each value
//!   shown as inline code (backticks inside replaced), so a request cannot
//!   forge text such as "*approved by alice*" or a link in the message.
//! - With a secret, the payload is signed: `x-transit-guard-timestamp: T`
//!   and `x-transit-guard-signature: v1=HEX(HMAC-SHA256(secret, "v1:T:" + body))`
//!   (receivers check it and refuse old timestamps).
//! - Delivery is retried with exponential backoff on a connection failure,
//!   a timeout, 429 or 5xx; other answers end it.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use crate::model::Approval;

pub const SIGNATURE_HEADER: &str = "x-transit-guard-signature";
pub const TIMESTAMP_HEADER: &str = "x-transit-guard-timestamp";

/// The longest value from the request shown in a message, in characters.
const MAX_VALUE_CHARS: usize = 200;

/// How deliveries are retried.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Retry {
    /// Attempts in all (at least 1).
    pub attempts: u32,
    /// The first delay; each next one doubles, up to `max_delay`.
    pub first_delay: Duration,
    pub max_delay: Duration,
}

impl Default for Retry {
    fn default() -> Self {
        Retry {
            attempts: 5,
            first_delay: Duration::from_secs(1),
            max_delay: Duration::from_secs(30),
        }
    }
}

#[derive(Clone)]
pub struct Webhook {
    client: reqwest::Client,
    url: String,
    public_url: String,
    secret: Option<Vec<u8>>,
    retry: Retry,
}

impl Webhook {
    pub fn new(
        url: String,
        public_url: String,
        timeout: Duration,
        secret: Option<String>,
        retry: Retry,
    ) -> Result<Webhook> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .context("building the webhook client")?;
        Ok(Webhook {
            client,
            url,
            public_url: public_url.trim_end_matches('/').to_string(),
            secret: secret.map(String::into_bytes),
            retry,
        })
    }

    /// Posts in the background; failures are logged and never reach the caller.
    pub fn notify(&self, a: &Approval, now: i64) {
        let body = json!({ "text": message(a, &self.public_url) }).to_string();
        let this = self.clone();
        let id = a.id.clone();
        tokio::spawn(async move { this.deliver(&id, body, now).await });
    }

    async fn deliver(&self, id: &str, body: String, now: i64) {
        let mut delay = self.retry.first_delay;
        for attempt in 1..=self.retry.attempts.max(1) {
            let mut req = self
                .client
                .post(&self.url)
                .header(reqwest::header::CONTENT_TYPE, "application/json")
                .body(body.clone());
            if let Some(secret) = &self.secret {
                req = req
                    .header(TIMESTAMP_HEADER, now.to_string())
                    .header(SIGNATURE_HEADER, sign(secret, now, body.as_bytes()));
            }
            let retry_after = match req.send().await {
                Ok(resp) if resp.status().is_success() => {
                    tracing::debug!(approval = %id, attempt, "webhook delivered");
                    return;
                }
                Ok(resp) if resp.status().is_server_error() || resp.status().as_u16() == 429 => {
                    tracing::warn!(approval = %id, attempt, status = %resp.status(), "webhook failed, will retry");
                    resp.headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok())
                        .map(Duration::from_secs)
                }
                Ok(resp) => {
                    tracing::warn!(approval = %id, status = %resp.status(), "webhook refused");
                    return;
                }
                Err(e) => {
                    tracing::warn!(approval = %id, attempt, error = %e.without_url(), "webhook failed, will retry");
                    None
                }
            };
            if attempt == self.retry.attempts {
                break;
            }
            let wait = retry_after.unwrap_or(delay).min(self.retry.max_delay);
            tokio::time::sleep(wait).await;
            delay = (delay * 2).min(self.retry.max_delay);
        }
        tracing::warn!(approval = %id, attempts = self.retry.attempts, "webhook given up");
    }
}

/// `v1=` + hex HMAC-SHA256 over `v1:{timestamp}:{body}`.
pub fn sign(secret: &[u8], timestamp: i64, body: &[u8]) -> String {
    let mut input = format!("v1:{timestamp}:").into_bytes();
    input.extend_from_slice(body);
    let mac = hmac_sha256::HMAC::mac(&input, secret);
    let mut out = String::with_capacity(3 + 64);
    out.push_str("v1=");
    for b in mac {
        out.push_str(&format!("{b:02x}"));
    }
    out
}

/// ``Pending approval: `agent-7` wants `POST api.internal/x` (rule `card-export`): <URL/#apr_…|review>``
pub fn message(a: &Approval, public_url: &str) -> String {
    format!(
        "Pending approval: {} wants {} (rule {}): <{}/#{}|review>",
        code(&a.identity.sub),
        code(&format!("{} {}{}", a.method, a.authority, a.path)),
        code(&a.rule),
        public_url,
        a.id
    )
}

/// A value from the request as inline code, so Slack shows it literally.
fn code(s: &str) -> String {
    format!("`{}`", escape(s))
}

/// Slack's three control characters escaped; line breaks and other control
/// characters become spaces; backticks (which would end the code span)
/// become a look-alike; cut to `MAX_VALUE_CHARS`.
fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for (n, c) in s.chars().enumerate() {
        if n == MAX_VALUE_CHARS {
            out.push('…');
            break;
        }
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '`' => out.push('\u{02CB}'),
            c if c.is_control() || c == '\u{2028}' || c == '\u{2029}' => out.push(' '),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Identity, Status};

    fn approval(sub: &str, path: &str, rule: &str) -> Approval {
        Approval {
            id: "apr_1".into(),
            request_id: "r".into(),
            fingerprint: "f".into(),
            identity: Identity {
                sub: sub.into(),
                iss: "i".into(),
                groups: vec![],
            },
            rule: rule.into(),
            method: "DELETE".into(),
            authority: "api".into(),
            path: path.into(),
            preview: String::new(),
            status: Status::Pending,
            created_at: 0,
            expires_at: 1,
            decided_at: None,
            reviewer: None,
            reason: None,
            grant: None,
            grant_id: None,
            consumed_at: None,
            headers: vec![],
            votes: vec![],
        }
    }

    #[test]
    fn the_message_names_who_what_and_links_the_review() {
        assert_eq!(
            message(&approval("bot <x>", "/a?b=<c>", "r&d"), "http://approver"),
            "Pending approval: `bot &lt;x&gt;` wants `DELETE api/a?b=&lt;c&gt;` (rule `r&amp;d`): <http://approver/#apr_1|review>"
        );
    }

    #[test]
    fn a_request_cannot_forge_text_links_or_lines() {
        let forged = "x`\n*Approved by alice* <https://evil.example|review> <!channel>";
        let m = message(
            &approval(forged, "/p\r\n✅ approved", "r`"),
            "http://approver",
        );
        assert!(!m.contains('\n') && !m.contains('\r'), "{m}");
        assert!(
            !m.contains("<https://evil") && !m.contains("<!channel>"),
            "{m}"
        );
        // Exactly the backticks the message adds: three values, two each.
        assert_eq!(m.matches('`').count(), 6, "{m}");
        // The only link is the review link.
        assert_eq!(m.matches('<').count(), 1, "{m}");
        let long = "a".repeat(1000);
        assert!(message(&approval(&long, "/", "r"), "u").len() < 400);
    }

    #[test]
    fn the_signature_covers_timestamp_and_body() {
        let s = sign(b"secret-0123456789", 1700000000, b"{\"text\":\"x\"}");
        assert!(s.starts_with("v1=") && s.len() == 67, "{s}");
        assert_eq!(
            s,
            sign(b"secret-0123456789", 1700000000, b"{\"text\":\"x\"}")
        );
        assert_ne!(
            s,
            sign(b"secret-0123456789", 1700000001, b"{\"text\":\"x\"}")
        );
        assert_ne!(
            s,
            sign(b"secret-0123456789", 1700000000, b"{\"text\":\"y\"}")
        );
        assert_ne!(
            s,
            sign(b"other-secret-0123", 1700000000, b"{\"text\":\"x\"}")
        );
    }
}
