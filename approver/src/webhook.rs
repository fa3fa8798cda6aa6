//! Tells a chat channel about each new pending approval: a Slack-compatible
//! incoming-webhook POST, fire-and-forget with a timeout.

use std::time::Duration;

use anyhow::{Context, Result};
use serde_json::json;

use crate::model::Approval;

#[derive(Clone)]
pub struct Webhook {
    client: reqwest::Client,
    url: String,
    public_url: String,
}

impl Webhook {
    pub fn new(url: String, public_url: String, timeout: Duration) -> Result<Webhook> {
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
        })
    }

    /// Posts in the background; a failure is logged and never reaches the caller.
    pub fn notify(&self, a: &Approval) {
        let body = json!({ "text": message(a, &self.public_url) });
        let client = self.client.clone();
        let url = self.url.clone();
        let id = a.id.clone();
        tokio::spawn(async move {
            match client.post(&url).json(&body).send().await {
                Ok(resp) if resp.status().is_success() => {
                    tracing::debug!(approval = %id, "webhook delivered");
                }
                Ok(resp) => {
                    tracing::warn!(approval = %id, status = %resp.status(), "webhook refused");
                }
                Err(e) => {
                    tracing::warn!(approval = %id, error = %e.without_url(), "webhook failed");
                }
            }
        });
    }
}

/// `alice wants POST api.internal/customers/export (rule card-export): <URL/#apr_…|review>`
pub fn message(a: &Approval, public_url: &str) -> String {
    format!(
        "{} wants {} {}{} (rule {}): <{}/#{}|review>",
        escape(&a.identity.sub),
        escape(&a.method),
        escape(&a.authority),
        escape(&a.path),
        escape(&a.rule),
        public_url,
        a.id
    )
}

/// Slack's three control characters in message text.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Identity, Status};

    #[test]
    fn the_message_names_who_what_and_links_the_review() {
        let a = Approval {
            id: "apr_1".into(),
            request_id: "r".into(),
            fingerprint: "f".into(),
            identity: Identity {
                sub: "bot <x>".into(),
                iss: "i".into(),
                groups: vec![],
            },
            rule: "r&d".into(),
            method: "DELETE".into(),
            authority: "api".into(),
            path: "/a?b=<c>".into(),
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
        };
        assert_eq!(
            message(&a, "http://approver"),
            "bot &lt;x&gt; wants DELETE api/a?b=&lt;c&gt; (rule r&amp;d): <http://approver/#apr_1|review>"
        );
    }
}
