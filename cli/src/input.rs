//! Reading the CLI's inputs: the policy, request files, cases files.

use std::path::Path;

use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::Value;
use transit_guard::config::Policy;
use transit_guard::identity::Identity;
use transit_guard::policy::PolicyError;
use transit_guard::rules::RequestView;

/// A failure that is not the policy's fault: exit code 2.
#[derive(Debug)]
pub struct InputError(pub String);

pub fn read(path: &Path) -> Result<Vec<u8>, InputError> {
    std::fs::read(path).map_err(|e| InputError(format!("cannot read {}: {e}", path.display())))
}

/// Parses a JSON file, or YAML when the name ends in `.yaml`/`.yml`.
pub fn parse<T: DeserializeOwned>(path: &Path) -> Result<T, InputError> {
    let text = read(path)?;
    let yaml = path
        .extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| e.eq_ignore_ascii_case("yaml") || e.eq_ignore_ascii_case("yml"));
    let result = if yaml {
        serde_yaml_ng::from_slice(&text).map_err(|e| e.to_string())
    } else {
        // The policy's reader: errors name the field, duplicate members are refused.
        transit_guard::policy::doc::from_slice(&text)
            .map_err(|e| format!("at {}: {}", e.path, e.reason))
    };
    result.map_err(|e| InputError(format!("{}: {e}", path.display())))
}

/// The policy exactly as Envoy loads it ([`Policy::from_json`]): errors are
/// what Envoy logs after `transit-guard: `.
pub fn load_policy(text: &[u8]) -> Result<Policy, PolicyError> {
    Policy::from_json(text)
}

/// A request, as written in a request or cases file.
#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RequestDoc {
    #[serde(default = "default_method")]
    pub method: String,
    #[serde(default)]
    pub authority: String,
    #[serde(default = "default_path")]
    pub path: String,
    /// `{"name": "value" | ["v1", "v2"]}`.
    #[serde(default)]
    pub headers: std::collections::BTreeMap<String, HeaderValues>,
    /// Absent or `null`: no verified identity.
    #[serde(default)]
    pub identity: Option<CallerDoc>,
    /// A string is sent as is; any other JSON value is sent serialized.
    /// Absent: the request has no body.
    #[serde(default)]
    pub body: Option<Value>,
    /// The body as hex, for bodies that are not UTF-8.
    #[serde(default)]
    pub body_hex: Option<String>,
}

fn default_method() -> String {
    "GET".into()
}

fn default_path() -> String {
    "/".into()
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
pub enum HeaderValues {
    One(String),
    Many(Vec<String>),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct CallerDoc {
    pub subject: String,
    #[serde(default)]
    pub groups: Vec<String>,
    #[serde(default)]
    pub scopes: Vec<String>,
    #[serde(default)]
    pub issuer: String,
    #[serde(default)]
    pub provider: String,
}

/// A request ready to be viewed by the rules.
pub struct Request {
    pub method: String,
    pub authority: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub identity: Option<Identity>,
    pub body: Vec<u8>,
}

impl Request {
    pub fn from_doc(doc: &RequestDoc) -> Result<Request, String> {
        let mut headers = Vec::new();
        for (k, v) in &doc.headers {
            match v {
                HeaderValues::One(s) => headers.push((k.to_ascii_lowercase(), s.clone())),
                HeaderValues::Many(l) => {
                    for s in l {
                        headers.push((k.to_ascii_lowercase(), s.clone()));
                    }
                }
            }
        }
        let body = match (&doc.body, &doc.body_hex) {
            (Some(_), Some(_)) => return Err("give `body` or `body_hex`, not both".into()),
            (Some(Value::String(s)), None) => s.as_bytes().to_vec(),
            (Some(v), None) => serde_json::to_vec(v).map_err(|e| e.to_string())?,
            (None, Some(h)) => hex(h)?,
            (None, None) => Vec::new(),
        };
        Ok(Request {
            method: doc.method.clone(),
            authority: doc.authority.clone(),
            path: doc.path.clone(),
            headers,
            identity: doc.identity.as_ref().map(|i| Identity {
                provider: i.provider.clone(),
                issuer: i.issuer.clone(),
                subject: i.subject.clone(),
                groups: i.groups.clone(),
                scopes: i.scopes.clone(),
            }),
            body,
        })
    }

    /// The view for phase 1 (`with_body == false`) or phase 2.
    pub fn view(&self, with_body: bool) -> RequestView<'_> {
        RequestView {
            method: &self.method,
            authority: &self.authority,
            path: &self.path,
            headers: &self.headers,
            identity: self.identity.as_ref(),
            body: with_body.then_some(self.body.as_slice()),
        }
    }
}

fn hex(s: &str) -> Result<Vec<u8>, String> {
    let digits: Vec<u8> = s.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    if !digits.len().is_multiple_of(2) {
        return Err("`body_hex` has an odd number of digits".into());
    }
    digits
        .chunks(2)
        .map(|p| {
            std::str::from_utf8(p)
                .ok()
                .and_then(|p| u8::from_str_radix(p, 16).ok())
                .ok_or_else(|| "`body_hex` is not hexadecimal".to_string())
        })
        .collect()
}
