//! Local replies: what the agent gets when the filter refuses a request.
//!
//! Every refusal has a precise status, a stable machine-readable `error` code
//! (reused by audit and metrics) and a JSON body naming the request id, so an
//! agent's logs can be matched with the gateway's.

use serde::Serialize;

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LocalReply {
    pub status: u16,
    /// Stable code, e.g. `tls_required`.
    pub error: &'static str,
    /// A sentence for the human reading the agent's logs.
    pub reason: String,
    /// Extra response headers (e.g. `upgrade`, `www-authenticate`).
    pub headers: Vec<(&'static str, String)>,
    /// The policy rule that refused, if one did (`rule` in the body).
    pub rule: Option<String>,
    /// More body members (e.g. `approval_id`), after the standard ones.
    pub fields: Vec<(&'static str, serde_json::Value)>,
}

#[derive(Serialize)]
struct Body<'a> {
    error: &'a str,
    reason: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'a str>,
    request_id: &'a str,
}

impl LocalReply {
    pub fn new(status: u16, error: &'static str, reason: impl Into<String>) -> Self {
        LocalReply {
            status,
            error,
            reason: reason.into(),
            headers: Vec::new(),
            rule: None,
            fields: Vec::new(),
        }
    }

    /// Names the policy rule that refused.
    pub fn with_rule(mut self, rule: impl Into<String>) -> Self {
        self.rule = Some(rule.into());
        self
    }

    /// Adds a member to the JSON body (`null` for `None`).
    pub fn with_field(mut self, name: &'static str, value: impl Into<serde_json::Value>) -> Self {
        self.fields.push((name, value.into()));
        self
    }

    pub fn with_header(mut self, name: &'static str, value: impl Into<String>) -> Self {
        self.headers.push((name, value.into()));
        self
    }

    /// The JSON body: `{"error", "reason", "rule" (if any), "request_id"}`.
    pub fn body(&self, request_id: &str) -> String {
        let body = Body {
            error: self.error,
            reason: &self.reason,
            rule: self.rule.as_deref(),
            request_id,
        };
        // Serializing a struct of strings cannot fail; keep a valid body anyway.
        let fallback = || format!("{{\"error\":\"{}\"}}", self.error);
        let Ok(mut value) = serde_json::to_value(&body) else {
            return fallback();
        };
        if let Some(obj) = value.as_object_mut() {
            for (k, v) in &self.fields {
                obj.insert((*k).to_string(), v.clone());
            }
        }
        serde_json::to_string(&value).unwrap_or_else(|_| fallback())
    }

    /// All headers to send, `content-type` first.
    pub fn all_headers(&self) -> Vec<(&str, &str)> {
        let mut out = vec![("content-type", "application/json")];
        out.extend(self.headers.iter().map(|(k, v)| (*k, v.as_str())));
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn body_is_json_with_code_reason_and_request_id() {
        let r = LocalReply::new(426, "tls_required", "use \"https\"");
        let v: serde_json::Value = serde_json::from_str(&r.body("abc-1")).unwrap();
        assert_eq!(v["error"], "tls_required");
        assert_eq!(v["reason"], "use \"https\"");
        assert_eq!(v["request_id"], "abc-1");
    }

    #[test]
    fn body_names_the_rule_when_there_is_one() {
        let r = LocalReply::new(403, "policy_denied", "no").with_rule("no-deletes");
        let v: serde_json::Value = serde_json::from_str(&r.body("id-2")).unwrap();
        assert_eq!(v["rule"], "no-deletes");
        assert_eq!(v["request_id"], "id-2");
        let v: serde_json::Value =
            serde_json::from_str(&LocalReply::new(403, "x", "y").body("i")).unwrap();
        assert!(v.get("rule").is_none());
    }

    #[test]
    fn content_type_comes_first() {
        let r = LocalReply::new(426, "tls_required", "x").with_header("upgrade", "TLS/1.2");
        assert_eq!(
            r.all_headers(),
            vec![("content-type", "application/json"), ("upgrade", "TLS/1.2")]
        );
    }
}
