//! Session recording (`record: true` on a rule): what the agent sent and
//! received, masked and cut to `audit.record_max_bytes`, kept in the audit
//! record. Event streams and binary bodies are noted, never recorded.

use serde::Serialize;

use super::config::AuditConfig;
use crate::mask::BodyKind;

/// What the agent sent and received, masked and size-capped.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Recording {
    pub request: Option<String>,
    pub response: Option<String>,
    /// A body was longer than `audit.record_max_bytes` and was cut.
    pub truncated: bool,
}

impl Recording {
    /// Records the request body (as forwarded: `already_masked` if a mask
    /// rule rewrote it, else masked here with the recording profile).
    pub fn request_body(
        &mut self,
        audit: &AuditConfig,
        content_type: Option<&str>,
        body: &[u8],
        already_masked: bool,
    ) {
        let (text, cut) = recorded(audit, content_type, body, already_masked);
        self.request = Some(text);
        self.truncated |= cut;
    }

    /// Records the response body, as for [`Recording::request_body`].
    pub fn response_body(
        &mut self,
        audit: &AuditConfig,
        content_type: Option<&str>,
        body: &[u8],
        already_masked: bool,
    ) {
        let (text, cut) = recorded(audit, content_type, body, already_masked);
        self.response = Some(text);
        self.truncated |= cut;
    }
}

/// The note kept instead of a body that is not recorded.
pub fn not_recorded(content_type: Option<&str>) -> String {
    format!("[{} body, not recorded]", content_type.unwrap_or("untyped"))
}

/// The note kept instead of a compressed body.
pub const COMPRESSED: &str = "[compressed body, not recorded]";

/// A body as it goes into a recording: masked unless `already_masked`, cut
/// at `record_max_bytes` on a character boundary. Returns it and whether it
/// was cut.
fn recorded(
    audit: &AuditConfig,
    content_type: Option<&str>,
    body: &[u8],
    already_masked: bool,
) -> (String, bool) {
    if BodyKind::of(content_type) == BodyKind::Passthrough {
        return (not_recorded(content_type), false);
    }
    let masked = if already_masked {
        None
    } else {
        audit.record_masker.mask(content_type, body).body
    };
    let text = String::from_utf8_lossy(masked.as_deref().unwrap_or(body)).into_owned();
    let max = audit.record_max_bytes;
    if text.len() <= max {
        return (text, false);
    }
    let mut cut = max;
    while !text.is_char_boundary(cut) {
        cut -= 1;
    }
    (text.get(..cut).unwrap_or_default().to_string(), true)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Policy;

    fn audit(max: usize) -> AuditConfig {
        let p =
            Policy::from_json(format!(r#"{{"audit":{{"record_max_bytes":{max}}}}}"#).as_bytes())
                .unwrap();
        p.audit
    }

    #[test]
    fn bodies_are_masked_with_the_recording_profile_unless_already_masked() {
        let a = audit(1000);
        let mut r = Recording::default();
        r.request_body(&a, Some("text/plain"), b"mail bob@example.com", false);
        let req = r.request.clone().unwrap();
        assert!(!req.contains("bob@example.com"), "{req}");
        r.response_body(&a, Some("text/plain"), b"mail bob@example.com", true);
        assert_eq!(r.response.as_deref(), Some("mail bob@example.com"));
        assert!(!r.truncated);
    }

    #[test]
    fn long_bodies_are_cut_on_a_character_boundary() {
        let a = audit(5);
        let mut r = Recording::default();
        r.request_body(&a, Some("text/plain"), "abcdé€".as_bytes(), true);
        assert_eq!(r.request.as_deref(), Some("abcd"));
        assert!(r.truncated);
    }

    #[test]
    fn binary_bodies_are_noted_not_recorded() {
        let mut r = Recording::default();
        r.response_body(&audit(100), Some("image/png"), b"\x89PNG", false);
        assert_eq!(
            r.response.as_deref(),
            Some("[image/png body, not recorded]")
        );
    }
}
