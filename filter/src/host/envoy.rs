//! [`Envoy`] with proxy-wasm's host calls: one call each, errors passed up.

use std::cell::RefCell;
use std::collections::HashMap;
use std::time::SystemTime;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType, MetricType, Status};

use crate::envoy::{Body, CalloutRequest, CalloutResponse, Envoy, HostError, Shared};

/// The running Envoy. Stateless but for the worker's metric ids.
#[derive(Default)]
pub struct ProxyWasm;

thread_local! {
    /// Counter ids by family, then label, defined on first use (per worker
    /// VM): a request looks its counters up without formatting a name.
    static METRIC_IDS: RefCell<Vec<(&'static str, HashMap<String, u32>)>> =
        const { RefCell::new(Vec::new()) };
}

fn err(call: &str, status: Status) -> HostError {
    HostError(format!("{call}: {status:?}"))
}

fn buffer(body: Body) -> BufferType {
    match body {
        Body::Request => BufferType::HttpRequestBody,
        Body::Response => BufferType::HttpResponseBody,
    }
}

impl Envoy for ProxyWasm {
    fn now(&self) -> SystemTime {
        hostcalls::get_current_time().unwrap_or(SystemTime::UNIX_EPOCH)
    }

    fn request_headers(&self) -> Result<Vec<(String, String)>, HostError> {
        hostcalls::get_map(MapType::HttpRequestHeaders).map_err(|s| err("get_map(request)", s))
    }

    fn set_request_header(&self, name: &str, value: Option<&str>) -> Result<(), HostError> {
        hostcalls::set_map_value(MapType::HttpRequestHeaders, name, value)
            .map_err(|s| err("set_map_value(request)", s))
    }

    fn response_headers(&self) -> Result<Vec<(String, String)>, HostError> {
        hostcalls::get_map(MapType::HttpResponseHeaders).map_err(|s| err("get_map(response)", s))
    }

    fn remove_response_header(&self, name: &str) -> Result<(), HostError> {
        hostcalls::remove_map_value(MapType::HttpResponseHeaders, name)
            .map_err(|s| err("remove_map_value(response)", s))
    }

    fn read_body(&self, body: Body, size: usize) -> Result<Vec<u8>, HostError> {
        hostcalls::get_buffer(buffer(body), 0, size)
            .map(Option::unwrap_or_default)
            .map_err(|s| err("get_buffer", s))
    }

    fn replace_body(&self, body: Body, size: usize, new: &[u8]) -> Result<(), HostError> {
        hostcalls::set_buffer(buffer(body), 0, size, new).map_err(|s| err("set_buffer", s))
    }

    fn send_reply(
        &self,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        hostcalls::send_http_response(u32::from(status), headers.to_vec(), Some(body))
            .map_err(|s| err("send_http_response", s))
    }

    fn reset_response(&self) -> Result<(), HostError> {
        hostcalls::reset_http_response().map_err(|s| err("reset_http_response", s))
    }

    fn property(&self, path: &[&str]) -> Option<Vec<u8>> {
        hostcalls::get_property(path.to_vec()).ok().flatten()
    }

    fn set_property(&self, path: &[&str], value: &[u8]) -> Result<(), HostError> {
        hostcalls::set_property(path.to_vec(), Some(value)).map_err(|s| err("set_property", s))
    }

    fn resume_stream(&self, context_id: u32) -> Result<(), HostError> {
        hostcalls::set_effective_context(context_id)
            .map_err(|s| err("set_effective_context", s))?;
        hostcalls::resume_http_request().map_err(|s| err("resume_http_request", s))
    }

    fn reply_to_stream(
        &self,
        context_id: u32,
        status: u16,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> Result<(), HostError> {
        hostcalls::set_effective_context(context_id)
            .map_err(|s| err("set_effective_context", s))?;
        self.send_reply(status, headers, body)
    }

    fn dispatch(&self, call: &CalloutRequest) -> Result<u32, HostError> {
        let headers: Vec<(&str, &str)> = call
            .headers
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_str()))
            .collect();
        hostcalls::dispatch_http_call(
            &call.cluster,
            headers,
            call.body.as_deref(),
            vec![],
            call.timeout,
        )
        .map_err(|s| err(&format!("dispatch_http_call({})", call.cluster), s))
    }

    fn callout_response(&self, body_size: usize) -> CalloutResponse {
        // A reset reaches us with no headers: no status, a failure.
        let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
            .ok()
            .flatten()
            .and_then(|s| s.parse().ok());
        let body = if body_size == 0 {
            Vec::new()
        } else {
            hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
                .ok()
                .flatten()
                .unwrap_or_default()
        };
        CalloutResponse { status, body }
    }

    fn shared_get(&self, key: &str) -> Result<Shared, HostError> {
        hostcalls::get_shared_data(key).map_err(|s| err("get_shared_data", s))
    }

    fn shared_set(&self, key: &str, value: &[u8], cas: Option<u32>) -> Result<(), HostError> {
        hostcalls::set_shared_data(key, Some(value), cas).map_err(|s| err("set_shared_data", s))
    }

    fn count(&self, family: &'static str, label: &str, n: u64) {
        let id = METRIC_IDS.with(|ids| {
            let mut ids = ids.borrow_mut();
            // A handful of families: a scan beats hashing the name.
            let at = match ids.iter().position(|(f, _)| *f == family) {
                Some(at) => at,
                None => {
                    ids.push((family, HashMap::new()));
                    ids.len() - 1
                }
            };
            let (_, labels) = ids.get_mut(at)?;
            if let Some(id) = labels.get(label) {
                return Some(*id);
            }
            let name = crate::audit::metrics::name(family, label);
            let id = hostcalls::define_metric(MetricType::Counter, &name).ok()?;
            labels.insert(label.to_string(), id);
            Some(id)
        });
        if let Some(id) = id {
            let _ = hostcalls::increment_metric(id, i64::try_from(n).unwrap_or(i64::MAX));
        }
    }
}
