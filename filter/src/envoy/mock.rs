//! An Envoy for unit tests: holds one stream's headers and bodies, records
//! what the filter did, and fails whichever host call a test names.

use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, SystemTime};

use super::{Body, CalloutRequest, CalloutResponse, Envoy, HostError, Shared};

#[derive(Debug, Default)]
pub struct State {
    pub now: Option<SystemTime>,
    pub request_headers: Vec<(String, String)>,
    pub response_headers: Vec<(String, String)>,
    pub request_body: Vec<u8>,
    pub response_body: Vec<u8>,
    pub properties: BTreeMap<String, Vec<u8>>,
    /// Every attribute the filter read, in order (`response.code`).
    pub property_reads: Vec<String>,
    /// Local replies sent: (context id or `None` for the current stream,
    /// status, body).
    pub replies: Vec<(Option<u32>, u16, String)>,
    /// The headers of the last local reply to the current stream.
    pub reply_headers: Vec<(String, String)>,
    pub resumed: Vec<u32>,
    pub reset: bool,
    pub callouts: Vec<CalloutRequest>,
    pub next_token: u32,
    pub callout_response: CalloutResponse,
    pub shared: BTreeMap<String, (Vec<u8>, u32)>,
    pub counters: BTreeMap<String, u64>,
    /// Names of host calls that fail (`"request_headers"`, ...).
    pub failing: BTreeSet<&'static str>,
    /// Every host call made, in order (`"request_headers"`,
    /// `"property(connection.tls_version)"`, `"count"`, ...): what a
    /// request costs Envoy beyond the callbacks themselves.
    pub calls: Vec<String>,
}

#[derive(Debug, Default)]
pub struct MockEnvoy(pub RefCell<State>);

impl MockEnvoy {
    /// A TLS stream with these request headers, at a fixed time.
    pub fn with_request(headers: &[(&str, &str)]) -> MockEnvoy {
        let m = MockEnvoy::default();
        {
            let mut s = m.0.borrow_mut();
            s.request_headers = headers
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
            s.properties
                .insert("connection.tls_version".into(), b"TLSv1.3".to_vec());
            s.now = Some(SystemTime::UNIX_EPOCH + Duration::from_secs(1_800_000_000));
        }
        m
    }

    /// Makes the host call `name` fail from now on.
    pub fn fail(&self, name: &'static str) {
        self.0.borrow_mut().failing.insert(name);
    }

    pub fn advance(&self, by: Duration) {
        let mut s = self.0.borrow_mut();
        s.now = Some(s.now.unwrap_or(SystemTime::UNIX_EPOCH) + by);
    }

    /// Host calls made so far, then forgets them.
    pub fn take_calls(&self) -> Vec<String> {
        std::mem::take(&mut self.0.borrow_mut().calls)
    }

    /// Logs the host call `name`, then fails it if a test said so.
    fn check(&self, name: &'static str) -> Result<(), HostError> {
        self.0.borrow_mut().calls.push(name.to_string());
        if self.0.borrow().failing.contains(name) {
            return Err(HostError(format!("{name}: InternalFailure (mock)")));
        }
        Ok(())
    }

    pub fn header(&self, name: &str) -> Option<String> {
        crate::headers::first(&self.0.borrow().request_headers, name).map(str::to_string)
    }

    pub fn replies(&self) -> Vec<(Option<u32>, u16, String)> {
        self.0.borrow().replies.clone()
    }
}

fn set(list: &mut Vec<(String, String)>, name: &str, value: Option<&str>) {
    list.retain(|(k, _)| !k.eq_ignore_ascii_case(name));
    if let Some(v) = value {
        list.push((name.to_string(), v.to_string()));
    }
}

impl Envoy for MockEnvoy {
    fn now(&self) -> SystemTime {
        self.0.borrow_mut().calls.push("now".into());
        self.0.borrow().now.unwrap_or(SystemTime::UNIX_EPOCH)
    }

    fn request_headers(&self) -> Result<Vec<(String, String)>, HostError> {
        self.check("request_headers")?;
        Ok(self.0.borrow().request_headers.clone())
    }

    fn set_request_header(&self, name: &str, value: Option<&str>) -> Result<(), HostError> {
        self.check("set_request_header")?;
        set(&mut self.0.borrow_mut().request_headers, name, value);
        Ok(())
    }

    fn response_headers(&self) -> Result<Vec<(String, String)>, HostError> {
        self.check("response_headers")?;
        Ok(self.0.borrow().response_headers.clone())
    }

    fn remove_response_header(&self, name: &str) -> Result<(), HostError> {
        self.check("remove_response_header")?;
        set(&mut self.0.borrow_mut().response_headers, name, None);
        Ok(())
    }

    fn read_body(&self, body: Body, size: usize) -> Result<Vec<u8>, HostError> {
        self.check("read_body")?;
        let s = self.0.borrow();
        let b = match body {
            Body::Request => &s.request_body,
            Body::Response => &s.response_body,
        };
        Ok(b.iter().take(size).copied().collect())
    }

    fn replace_body(&self, body: Body, size: usize, new: &[u8]) -> Result<(), HostError> {
        self.check("replace_body")?;
        let mut s = self.0.borrow_mut();
        let b = match body {
            Body::Request => &mut s.request_body,
            Body::Response => &mut s.response_body,
        };
        let keep: Vec<u8> = b.iter().skip(size).copied().collect();
        *b = new.to_vec();
        b.extend(keep);
        Ok(())
    }

    fn send_reply(
        &self,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        self.check("send_reply")?;
        self.0.borrow_mut().reply_headers = headers
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        self.0.borrow_mut().replies.push((
            None,
            status,
            String::from_utf8_lossy(body).into_owned(),
        ));
        Ok(())
    }

    fn reset_response(&self) -> Result<(), HostError> {
        self.check("reset_response")?;
        self.0.borrow_mut().reset = true;
        Ok(())
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        let name = path.join(".");
        let mut s = self.0.borrow_mut();
        let value = s.properties.get(&name).cloned();
        s.calls.push(format!("property({name})"));
        s.property_reads.push(name);
        value
    }

    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError> {
        self.check("set_property")?;
        self.0
            .borrow_mut()
            .properties
            .insert(path.join("."), value.to_vec());
        Ok(())
    }

    fn resume_stream(&self, context_id: u32) -> Result<(), HostError> {
        self.check("resume_stream")?;
        self.0.borrow_mut().resumed.push(context_id);
        Ok(())
    }

    fn reply_to_stream(
        &self,
        context_id: u32,
        status: u16,
        _headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        self.check("reply_to_stream")?;
        self.0.borrow_mut().replies.push((
            Some(context_id),
            status,
            String::from_utf8_lossy(body).into_owned(),
        ));
        Ok(())
    }

    fn dispatch(&self, call: &CalloutRequest) -> Result<u32, HostError> {
        self.check("dispatch")?;
        let mut s = self.0.borrow_mut();
        s.callouts.push(call.clone());
        s.next_token += 1;
        Ok(s.next_token)
    }

    fn callout_response(&self, _body_size: usize) -> CalloutResponse {
        self.0.borrow_mut().calls.push("callout_response".into());
        self.0.borrow().callout_response.clone()
    }

    fn shared_get(&self, key: &str) -> Result<Shared, HostError> {
        self.check("shared_get")?;
        Ok(match self.0.borrow().shared.get(key) {
            Some((v, cas)) => (Some(v.clone()), Some(*cas)),
            None => (None, None),
        })
    }

    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), HostError> {
        self.check("shared_set")?;
        let mut s = self.0.borrow_mut();
        let current = s.shared.get(key).map(|(_, c)| *c);
        if cas.is_some() && cas != current {
            return Err(HostError("shared_set: CasMismatch".into()));
        }
        let next = current.unwrap_or(0) + 1;
        s.shared.insert(key.to_string(), (value.to_vec(), next));
        Ok(())
    }

    fn count(&self, family: &'static str, label: &str, n: u64) {
        self.0.borrow_mut().calls.push("count".into());
        *self
            .0
            .borrow_mut()
            .counters
            .entry(crate::audit::metrics::name(family, label))
            .or_insert(0) += n;
    }
}
