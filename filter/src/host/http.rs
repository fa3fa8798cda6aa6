//! The HTTP context: one per request stream, forwarding each callback to
//! the core's [`HttpFilter`].

use proxy_wasm::traits::{Context, HttpContext};
use proxy_wasm::types::Action;

use super::envoy::ProxyWasm;
use crate::http_filter::{self, HttpFilter};
use crate::worker::Worker;
use std::rc::Rc;

pub struct Http {
    filter: HttpFilter,
}

impl Http {
    pub fn new(context_id: u32, worker: Option<Rc<Worker>>) -> Self {
        Http {
            filter: HttpFilter::new(context_id, worker),
        }
    }
}

fn action(a: http_filter::Action) -> Action {
    match a {
        http_filter::Action::Continue => Action::Continue,
        http_filter::Action::Pause => Action::Pause,
    }
}

impl Context for Http {
    /// Approval callouts made while this stream held its request.
    fn on_http_call_response(&mut self, token: u32, _: usize, body_size: usize, _: usize) {
        self.filter
            .on_callout_response(&ProxyWasm, token, body_size);
    }
}

impl HttpContext for Http {
    fn on_http_request_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
        action(self.filter.on_request_headers(&ProxyWasm, end_of_stream))
    }

    fn on_http_request_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        action(
            self.filter
                .on_request_body(&ProxyWasm, body_size, end_of_stream),
        )
    }

    fn on_http_request_trailers(&mut self, _: usize) -> Action {
        action(self.filter.on_request_trailers(&ProxyWasm))
    }

    fn on_http_response_headers(&mut self, _: usize, end_of_stream: bool) -> Action {
        action(self.filter.on_response_headers(&ProxyWasm, end_of_stream))
    }

    fn on_http_response_body(&mut self, body_size: usize, end_of_stream: bool) -> Action {
        action(
            self.filter
                .on_response_body(&ProxyWasm, body_size, end_of_stream),
        )
    }

    fn on_log(&mut self) {
        self.filter.on_log(&ProxyWasm);
    }
}
