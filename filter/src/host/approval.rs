//! Held requests waiting for a human approval: the worker's registry of them,
//! and the calls that carry out what [`crate::approval::Wait`] plans.
//!
//! Callouts are answered in the context that dispatched them: the HTTP
//! context for the first ones, the root context for those started by the
//! tick (retries). Both hand the answer to [`on_response`], which finds the
//! held request by callout token. The root's tick ([`tick`]) wakes retries
//! and ends any request whose callout is overdue: Envoy may never time out a
//! callout to a cluster with no healthy endpoint (Kuadrant wasm-shim #425).
//! The registry is per worker VM (Rust statics are), as are contexts.
//!
//! No `RefCell` borrow is held across a host call: a host call may re-enter
//! the module.

use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::Duration;

use proxy_wasm::hostcalls;
use proxy_wasm::types::{BufferType, MapType};

use crate::approval::{Next, Outcome, Wait};
use crate::config::Policy;
use crate::flow::ApprovalStart;

/// The root's tick while requests are held.
pub const TICK: Duration = Duration::from_millis(250);

struct Held {
    policy: Rc<Policy>,
    wait: Wait,
    rule: String,
    request_id: String,
    /// The callout in flight.
    token: Option<u32>,
    /// When to poll again after a transient failure.
    wake_at: Option<u64>,
    /// Set once the request was resumed or answered; kept for the audit.
    outcome: Option<Outcome>,
}

thread_local! {
    static HELD: RefCell<BTreeMap<u32, Held>> = const { RefCell::new(BTreeMap::new()) };
    static TOKENS: RefCell<HashMap<u32, u32>> = RefCell::new(HashMap::new());
    /// Whether the root's tick runs (it may also run for JWKS refreshes).
    static TICKING: Cell<bool> = const { Cell::new(false) };
}

pub fn now_ms() -> u64 {
    hostcalls::get_current_time()
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or(0)
}

/// The root set the tick for its own reasons (JWKS refresh).
pub fn note_ticking() {
    TICKING.with(|t| t.set(true));
}

/// Whether something is still waiting (the root keeps ticking while so).
pub fn any_waiting() -> bool {
    HELD.with(|h| h.borrow().values().any(|e| e.outcome.is_none()))
}

/// Starts the approval of the request held in context `ctx` (the current one).
/// The caller pauses the request; this resumes or answers it later.
pub fn begin(ctx: u32, policy: Rc<Policy>, start: ApprovalStart, request_id: String) {
    let Some(cfg) = policy.approval.as_ref() else {
        return;
    };
    let (wait, call) = Wait::start(cfg, now_ms(), start.create_body);
    HELD.with(|h| {
        h.borrow_mut().insert(
            ctx,
            Held {
                policy: policy.clone(),
                wait,
                rule: start.rule,
                request_id,
                token: None,
                wake_at: None,
                outcome: None,
            },
        )
    });
    ensure_ticking();
    drive(ctx, Next::Call(call));
}

/// The request's stream ended: forget it, and return how its approval ended.
pub fn forget(ctx: u32) -> Option<Outcome> {
    let held = HELD.with(|h| h.borrow_mut().remove(&ctx))?;
    if let Some(token) = held.token {
        TOKENS.with(|t| t.borrow_mut().remove(&token));
    }
    held.outcome
}

/// Whether `token` is one of ours (the root also makes JWKS callouts).
pub fn owns(token: u32) -> bool {
    TOKENS.with(|t| t.borrow().contains_key(&token))
}

/// A callout answered (in whichever context dispatched it).
pub fn on_response(token: u32, body_size: usize) {
    let Some(ctx) = TOKENS.with(|t| t.borrow_mut().remove(&token)) else {
        return;
    };
    let status = hostcalls::get_map_value(MapType::HttpCallResponseHeaders, ":status")
        .ok()
        .flatten();
    let body = if body_size == 0 {
        Vec::new()
    } else {
        hostcalls::get_buffer(BufferType::HttpCallResponseBody, 0, body_size)
            .ok()
            .flatten()
            .unwrap_or_default()
    };
    let now = now_ms();
    let next = HELD.with(|h| {
        let mut h = h.borrow_mut();
        let e = h.get_mut(&ctx)?;
        if e.token != Some(token) || e.outcome.is_some() {
            return None; // a late answer to a call already given up on
        }
        e.token = None;
        let cfg = e.policy.approval.as_ref()?;
        Some(e.wait.on_response(cfg, now, status.as_deref(), &body))
    });
    if let Some(next) = next {
        drive(ctx, next);
    }
}

/// The root's tick: wakes retries, ends overdue waits, and stops the tick
/// when nothing waits (unless `keep` says the root needs it).
pub fn tick(keep: bool) {
    let now = now_ms();
    let due: Vec<(u32, Next)> = HELD.with(|h| {
        let mut h = h.borrow_mut();
        let mut due = Vec::new();
        for (ctx, e) in h.iter_mut().filter(|(_, e)| e.outcome.is_none()) {
            let Some(cfg) = e.policy.approval.as_ref() else {
                continue;
            };
            if e.wake_at.is_some_and(|at| at <= now) {
                e.wake_at = None;
                due.push((*ctx, e.wait.on_wake(cfg, now)));
            } else if e.token.is_some() && e.wait.overdue_at().is_some_and(|at| at <= now) {
                if let Some(token) = e.token.take() {
                    TOKENS.with(|t| t.borrow_mut().remove(&token));
                }
                log::warn!(
                    "transit-guard: the approver did not answer in time for request {}; refusing it",
                    e.request_id
                );
                due.push((*ctx, Next::Done(e.wait.on_overdue())));
            }
        }
        due
    });
    for (ctx, next) in due {
        drive(ctx, next);
    }
    if !keep
        && !any_waiting()
        && TICKING.with(Cell::get)
        && hostcalls::set_tick_period(Duration::ZERO).is_ok()
    {
        TICKING.with(|t| t.set(false));
    }
}

fn ensure_ticking() {
    if TICKING.with(Cell::get) {
        return;
    }
    match hostcalls::set_tick_period(TICK) {
        Ok(()) => TICKING.with(|t| t.set(true)),
        // Without the tick a hung callout is ended only by Envoy's timeouts.
        Err(status) => log::error!("transit-guard: cannot start the approval timer: {status:?}"),
    }
}

fn drive(ctx: u32, next: Next) {
    match next {
        Next::Call(call) => dispatch(ctx, call),
        Next::RetryAt(at) => {
            let id = HELD.with(|h| {
                let mut h = h.borrow_mut();
                let e = h.get_mut(&ctx)?;
                e.wake_at = Some(at);
                Some(e.request_id.clone())
            });
            if let Some(id) = id {
                log::warn!("transit-guard: the approver failed while request {id} waits for its approval; asking again shortly");
            }
        }
        Next::Done(outcome) => finish(ctx, outcome),
    }
}

fn dispatch(ctx: u32, call: crate::approval::Callout) {
    let Some(cluster) = HELD.with(|h| {
        h.borrow()
            .get(&ctx)
            .and_then(|e| e.policy.approval.as_ref().map(|c| c.cluster.clone()))
    }) else {
        return;
    };
    let headers: Vec<(&str, &str)> = call.headers.iter().map(|(k, v)| (*k, v.as_str())).collect();
    let timeout = Duration::from_millis(call.timeout_ms);
    match hostcalls::dispatch_http_call(&cluster, headers, call.body.as_deref(), vec![], timeout) {
        Ok(token) => {
            TOKENS.with(|t| t.borrow_mut().insert(token, ctx));
            HELD.with(|h| {
                if let Some(e) = h.borrow_mut().get_mut(&ctx) {
                    e.token = Some(token);
                }
            });
        }
        Err(status) => {
            log::error!("transit-guard: cannot call the approver on cluster {cluster}: {status:?}");
            let outcome = HELD.with(|h| {
                h.borrow_mut()
                    .get_mut(&ctx)
                    .map(|e| e.wait.on_dispatch_failed())
            });
            if let Some(outcome) = outcome {
                finish(ctx, outcome);
            }
        }
    }
}

/// Resumes the request (approved) or answers it.
fn finish(ctx: u32, outcome: Outcome) {
    let Some((reply, request_id)) = HELD.with(|h| {
        let mut h = h.borrow_mut();
        let e = h.get_mut(&ctx)?;
        let reply = outcome.reply(&e.rule);
        e.outcome = Some(outcome);
        e.token = None;
        e.wake_at = None;
        Some((reply, e.request_id.clone()))
    }) else {
        return;
    };
    if let Err(status) = hostcalls::set_effective_context(ctx) {
        // The stream is gone (the agent left): nothing to resume or answer.
        log::info!(
            "transit-guard: held request {request_id} ended before its approval: {status:?}"
        );
        return;
    }
    let result = match &reply {
        None => hostcalls::resume_http_request(),
        Some(r) => {
            let body = r.body(&request_id);
            hostcalls::send_http_response(
                u32::from(r.status),
                r.all_headers(),
                Some(body.as_bytes()),
            )
        }
    };
    if let Err(status) = result {
        log::error!("transit-guard: cannot end held request {request_id}: {status:?}");
    }
}
