//! The `quotas` verdict on a request: the host charges the identity's
//! counters (they live in Envoy's shared data) and hands the result here.

use super::Flow;
use crate::audit::Decision;
use crate::config::Policy;
use crate::envoy::HostError;
use crate::local_reply::LocalReply;
use crate::policy::Mode;
use crate::quota::{self, Refusal};

impl Flow {
    /// Whether the rules have decided (their carried-out rules are final).
    pub fn decided(&self) -> bool {
        self.decided
    }

    /// The counters' answer: `Some` when it ends the request. Monitor mode
    /// records what would have been refused and lets the request go.
    pub fn on_quota(
        &mut self,
        policy: &Policy,
        result: Result<Result<(), Refusal>, HostError>,
    ) -> Option<LocalReply> {
        let monitor = policy.mode == Mode::Monitor;
        let (decision, reply) = match result {
            Ok(Ok(())) => return None,
            Ok(Err(refusal)) => {
                if let Refusal::Exceeded(e) = &refusal {
                    self.exchange.quota = Some(e.limit.clone());
                }
                (Decision::RateLimited, quota::reply(&refusal))
            }
            Err(e) => {
                log::error!(
                    "transit-guard: quota counters of request {}: {e}",
                    self.exchange.request_id
                );
                (Decision::Error, quota::unavailable_reply())
            }
        };
        if monitor {
            let what = match &self.exchange.quota {
                Some(limit) => format!("quota {limit}: {}", reply.error),
                None => reply.error.to_string(),
            };
            self.exchange.would.push(what);
            return None;
        }
        // Refused before any approval was asked.
        self.exchange.approval = None;
        Some(self.refuse(decision, reply))
    }
}
