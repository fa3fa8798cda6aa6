//! The proxy-wasm floor for `cargo xtask bench`: an HTTP filter that decides
//! nothing, loaded exactly like transit-guard (same plugin config, V8, TLS on
//! both legs), so the bench can tell what any Rust proxy-wasm module costs
//! Envoy per request from what transit-guard adds on top.
//!
//! Its plugin configuration picks the variant:
//! - `"empty"`: every callback returns at once (the SDK's defaults). What is
//!   left is Envoy entering the VM for each callback and the SDK's dispatch.
//! - `"headers"`: reads the request headers once (`get_header_map_pairs`) and
//!   publishes a fixed audit line at log (`set_property`), the two host calls
//!   every transit-guard request makes whatever its policy.
//! - `"calls"`: every host call transit-guard's base policy makes, in the same
//!   order and with a record of the same size, and nothing else: the base
//!   policy's cost minus this is the module's own code.
//!
//! Built with `cargo build -p transit-guard --target wasm32-wasip1 --release
//! --example floor`; on other targets it is an empty library.

#[cfg(target_arch = "wasm32")]
mod module {
    use proxy_wasm::hostcalls;
    use proxy_wasm::traits::{Context, HttpContext, RootContext};
    use proxy_wasm::types::{Action, BufferType, ContextType, MapType, MetricType};

    proxy_wasm::main! {{
        proxy_wasm::set_root_context(|_| -> Box<dyn RootContext> { Box::new(Root { variant: Variant::Empty }) });
    }}

    #[derive(Clone, Copy)]
    enum Variant {
        Empty,
        Headers,
        /// With the counter's id.
        Calls(u32),
    }

    struct Root {
        variant: Variant,
    }

    impl Context for Root {}

    impl RootContext for Root {
        fn on_configure(&mut self, _: usize) -> bool {
            let config = hostcalls::get_buffer(BufferType::PluginConfiguration, 0, usize::MAX);
            self.variant = match config {
                Ok(Some(c)) if c == b"empty" => Variant::Empty,
                Ok(Some(c)) if c == b"headers" => Variant::Headers,
                Ok(Some(c)) if c == b"calls" => {
                    match hostcalls::define_metric(MetricType::Counter, "floor.requests") {
                        Ok(id) => Variant::Calls(id),
                        Err(_) => return false,
                    }
                }
                // Anything else is a typo in the bench: refuse the plugin.
                _ => return false,
            };
            true
        }

        fn create_http_context(&self, _: u32) -> Option<Box<dyn HttpContext>> {
            match self.variant {
                Variant::Empty => Some(Box::new(Empty)),
                Variant::Headers => Some(Box::new(Headers)),
                Variant::Calls(counter) => Some(Box::new(Calls { counter })),
            }
        }

        fn get_type(&self) -> Option<ContextType> {
            Some(ContextType::HttpContext)
        }
    }

    /// Every callback is the SDK's default: continue.
    struct Empty;
    impl Context for Empty {}
    impl HttpContext for Empty {}

    /// One read of the request headers, one property at log.
    struct Headers;
    impl Context for Headers {}
    impl HttpContext for Headers {
        fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
            // The headers are read (and dropped) as the real filter reads them.
            let _ = hostcalls::get_map(MapType::HttpRequestHeaders);
            Action::Continue
        }

        fn on_log(&mut self) {
            // A line of the audit record's size would be more bytes to copy;
            // this measures the call.
            let _ = hostcalls::set_property(
                vec!["transit_guard.audit"],
                Some(br#"{"schema":"transit-guard.audit/v1","decision":"allow"}"#),
            );
        }
    }

    /// The base policy's host calls (`http_filter/tests/host_calls.rs`).
    struct Calls {
        counter: u32,
    }
    impl Context for Calls {}
    impl HttpContext for Calls {
        fn on_http_request_headers(&mut self, _: usize, _: bool) -> Action {
            let _ = hostcalls::get_current_time();
            let _ = hostcalls::get_map(MapType::HttpRequestHeaders);
            let _ = hostcalls::get_property(vec!["connection", "tls_version"]);
            Action::Continue
        }

        fn on_http_response_headers(&mut self, _: usize, _: bool) -> Action {
            let _ = hostcalls::get_map(MapType::HttpResponseHeaders);
            Action::Continue
        }

        fn on_log(&mut self) {
            let _ = hostcalls::get_current_time();
            let _ = hostcalls::set_property(vec!["transit_guard.audit"], Some(&RECORD[..]));
            let _ = hostcalls::increment_metric(self.counter, 1);
        }
    }

    /// A base-policy request's audit record, as long as a real one.
    const RECORD: [u8; 450] = [b' '; 450];
}
