//! The worker's callouts (`dispatch_http_call`): who is waiting for which
//! token. A callout's answer arrives in whichever context dispatched it (a
//! stream's or the root's); both hand it here, and it goes to its owner.

use std::collections::HashMap;

use crate::envoy::{CalloutRequest, Envoy, HostError};

/// Who a callout's answer is for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Owner {
    /// The approval of the request held in this stream context.
    Approval { context: u32 },
    /// A JWKS fetch for this identity provider (by index).
    Jwks { provider: usize },
    /// A batch of audit records to the collector.
    Collector,
}

#[derive(Debug, Default)]
pub struct Callouts {
    owners: HashMap<u32, Owner>,
}

impl Callouts {
    /// Dispatches `call` for `owner`; returns the token.
    pub fn dispatch(
        &mut self,
        envoy: &impl Envoy,
        call: &CalloutRequest,
        owner: Owner,
    ) -> Result<u32, HostError> {
        let token = envoy.dispatch(call)?;
        self.owners.insert(token, owner);
        Ok(token)
    }

    /// The owner of an answered callout (each token answers once).
    pub fn take(&mut self, token: u32) -> Option<Owner> {
        self.owners.remove(&token)
    }

    /// Forgets a callout given up on (its late answer is then ignored).
    pub fn forget(&mut self, token: u32) {
        self.owners.remove(&token);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::envoy::mock::MockEnvoy;
    use std::time::Duration;

    fn call() -> CalloutRequest {
        CalloutRequest {
            cluster: "approver".into(),
            headers: vec![(":method".into(), "GET".into())],
            body: None,
            timeout: Duration::from_secs(1),
        }
    }

    #[test]
    fn answers_go_to_their_owner_once() {
        let envoy = MockEnvoy::default();
        let mut c = Callouts::default();
        let a = c
            .dispatch(&envoy, &call(), Owner::Approval { context: 7 })
            .unwrap();
        let b = c.dispatch(&envoy, &call(), Owner::Collector).unwrap();
        assert_eq!(c.take(b), Some(Owner::Collector));
        assert_eq!(c.take(a), Some(Owner::Approval { context: 7 }));
        assert_eq!(c.take(a), None);
    }

    #[test]
    fn a_refused_dispatch_owns_nothing() {
        let envoy = MockEnvoy::default();
        envoy.fail("dispatch");
        let mut c = Callouts::default();
        assert!(c.dispatch(&envoy, &call(), Owner::Collector).is_err());
        assert_eq!(c.take(1), None);
    }
}
