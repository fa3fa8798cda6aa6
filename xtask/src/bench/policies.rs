//! The bench's identity and policies: one RSA key (the filter's RS256 test
//! key), one token for every JWT row, the same issuer and audience as
//! `envoy/bench/jwt-authn.yaml`.

use anyhow::{Context, Result};
use integration_tests::paths::workspace_root;
use integration_tests::tokens::{jwks, now, provider_json, SigningKey, TokenBuilder};
use serde_json::{json, Value};

/// As in `envoy/bench/jwt-authn.yaml`.
pub const ISSUER: &str = "https://idp.bench.transit-guard.test";
pub const AUDIENCE: &str = "agent-gateway";
/// The authority `customers-api.json` serves; sent by every client (wrk's
/// `Host`), so every front sees the same request.
pub const AUTHORITY: &str = "customers.internal";

pub struct BenchIdentity {
    key: SigningKey,
    /// RS256, scope `customers:read`, valid for an hour.
    pub token: String,
}

impl BenchIdentity {
    pub fn new() -> Result<BenchIdentity> {
        // A fixed key: RSA generation in a debug xtask takes seconds.
        let pem_path = workspace_root().join("filter/src/identity/testdata/rsa2048.pem");
        let pem = std::fs::read_to_string(&pem_path)
            .with_context(|| format!("reading {}", pem_path.display()))?;
        let key = SigningKey::from_pkcs8_pem(&pem, "bench-rsa")?;
        let token = TokenBuilder::new(ISSUER, AUDIENCE, "bench-agent", now())
            .claim("scope", json!("customers:read"))
            .claim("groups", json!(["support"]))
            .sign(&key)?;
        Ok(BenchIdentity { key, token })
    }

    /// The public keys, for Envoy's `jwt_authn` (`${JWKS}`).
    pub fn jwks(&self) -> String {
        jwks(&[&self.key]).to_string()
    }

    fn identity_section(&self) -> Value {
        let mut provider = provider_json("bench", ISSUER, AUDIENCE, &[&self.key]);
        provider["algorithms"] = json!(["RS256"]);
        json!({ "providers": [provider] })
    }

    /// Only `identity`: the counterpart of Envoy's `jwt_authn`.
    pub fn jwt_only_policy(&self) -> String {
        json!({"mode": "enforce", "require_tls": true, "identity": self.identity_section()})
            .to_string()
    }

    /// `examples/policies/customers-api.json` (deny rules, masking of
    /// personal data and cards on reads) with the bench's `identity`.
    pub fn full_policy(&self) -> Result<String> {
        let path = workspace_root().join("examples/policies/customers-api.json");
        let mut policy: Value = serde_json::from_str(&std::fs::read_to_string(&path)?)
            .with_context(|| format!("reading {}", path.display()))?;
        policy["identity"] = self.identity_section();
        Ok(policy.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jwt_authn_twin_trusts_the_same_issuer_and_audience() {
        let yaml =
            std::fs::read_to_string(workspace_root().join("envoy/bench/jwt-authn.yaml")).unwrap();
        assert!(yaml.contains(&format!("issuer: \"{ISSUER}\"")));
        assert!(yaml.contains(&format!("audiences: [\"{AUDIENCE}\"]")));
        assert!(yaml.contains("${JWKS}"));
    }

    #[test]
    fn full_policy_keeps_the_example_and_adds_identity() {
        let id = BenchIdentity::new().unwrap();
        let p: Value = serde_json::from_str(&id.full_policy().unwrap()).unwrap();
        assert_eq!(p["identity"]["providers"][0]["issuer"], ISSUER);
        assert!(p["rules"].as_array().unwrap().len() > 5);
        assert_eq!(id.token.split('.').count(), 3);
    }
}
