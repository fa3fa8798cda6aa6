//! Reading the approver's answers. Anything but a well-formed `200` with a
//! known status is a [`Failure`]: the request does not pass (fail closed).

/// The reply and its status are the protocol's shared types
/// (`transit-guard-wire`), so the filter reads exactly what the approver writes.
pub use transit_guard_wire::{ApprovalReply as ApproverReply, Status};

/// Why the approval step failed; each has a stable code (audit `reason`, the
/// reply's `reason_code`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Failure {
    /// The callout could not be sent (unknown cluster, bad headers).
    DispatchFailed,
    /// The callout ended without a response (`:status` missing: connection
    /// refused or reset before the timeout).
    Unreachable,
    /// No answer within the callout's timeout (Envoy's, or the filter's own
    /// deadline when Envoy's never fires).
    Timeout,
    /// 5xx (Envoy answers 503 itself when it cannot connect).
    ServerError,
    /// 401: the filter's `api_key` is not one the approver knows.
    Unauthorized,
    /// 410: the one-time approval was already used.
    Consumed,
    /// 404: the approver does not know the approval (another database?).
    NotFound,
    /// Another 4xx: the approver refused what the filter sent.
    Rejected,
    /// A 200 that is not the JSON the protocol says, or any other status.
    BadResponse,
}

impl Failure {
    pub fn code(self) -> &'static str {
        match self {
            Failure::DispatchFailed => "approver_dispatch_failed",
            Failure::Unreachable => "approver_unreachable",
            Failure::Timeout => "approver_timeout",
            Failure::ServerError => "approver_error",
            Failure::Unauthorized => "approver_unauthorized",
            Failure::Consumed => "approval_consumed",
            Failure::NotFound => "approval_not_found",
            Failure::Rejected => "approver_rejected",
            Failure::BadResponse => "approver_bad_response",
        }
    }

    /// Worth asking again while the deadline allows (the approver may be
    /// restarting); the others are answers that will not change.
    pub fn transient(self) -> bool {
        matches!(
            self,
            Failure::Unreachable | Failure::Timeout | Failure::ServerError
        )
    }
}

/// Reads one callout's result: `status` is `:status` (`None` when the
/// response had no headers, as after a reset or a timeout), `timed_out` says
/// the callout lasted its whole timeout.
pub fn read(status: Option<&str>, body: &[u8], timed_out: bool) -> Result<ApproverReply, Failure> {
    let Some(status) = status else {
        return Err(if timed_out {
            Failure::Timeout
        } else {
            Failure::Unreachable
        });
    };
    let code: u16 = status.trim().parse().map_err(|_| Failure::BadResponse)?;
    match code {
        200 => {}
        401 => return Err(Failure::Unauthorized),
        404 => return Err(Failure::NotFound),
        410 => return Err(Failure::Consumed),
        // Envoy's own answer to a callout that timed out.
        504 if timed_out => return Err(Failure::Timeout),
        500..=599 => return Err(Failure::ServerError),
        400..=499 => return Err(Failure::Rejected),
        _ => return Err(Failure::BadResponse),
    }
    let reply: ApproverReply = serde_json::from_slice(body).map_err(|_| Failure::BadResponse)?;
    // The id goes into the next request's path: only the approver's own shape.
    let id_ok = !reply.id.is_empty()
        && reply.id.len() <= 128
        && reply
            .id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'_' || b == b'-');
    if !id_ok {
        return Err(Failure::BadResponse);
    }
    Ok(reply)
}
