//! The demo's dev token issuer: one ES256 (P-256) signing key, generated once
//! into a folder (`target/demo/issuer/` for the demo) and kept across runs, so
//! a token minted with `cargo xtask token` stays valid through demo restarts.
//! The demo serves its JWKS over plain HTTP on loopback; the filter fetches it
//! through the `idp` cluster. A stand-in for a real IdP, never for production.
//!
//! ES256 rather than RSA: generating a P-256 key is instant even in the
//! unoptimised debug build of xtask, where 2048-bit RSA takes seconds.

use std::io::Write;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context, Result};
use serde_json::{json, Value};
use sha2::{Digest, Sha256};

use crate::paths::workspace_root;
use crate::tokens::{b64url, jwks, now, KeyKind, SigningKey, TokenBuilder};

/// The demo issuer's `iss`: where the demo serves its JWKS.
pub const ISSUER: &str = "http://127.0.0.1:18080";
/// The audience the demo policy accepts (`cargo xtask token`'s default `aud`).
pub const AUDIENCE: &str = "transit-guard-demo";
/// The demo issuer's port (the `idp` cluster points here).
pub const PORT: u16 = 18080;

const KEY_FILE: &str = "signing-key.pem";

/// Where the demo keeps its issuer key.
pub fn default_dir() -> PathBuf {
    workspace_root().join("target/demo/issuer")
}

/// What a token says about its caller.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TokenRequest {
    pub sub: String,
    pub groups: Vec<String>,
    pub scopes: Vec<String>,
    pub ttl_secs: u64,
    pub audience: String,
}

impl TokenRequest {
    /// A one-hour token for `sub` with the demo audience, no groups or scopes.
    pub fn new(sub: &str) -> TokenRequest {
        TokenRequest {
            sub: sub.to_string(),
            groups: Vec::new(),
            scopes: Vec::new(),
            ttl_secs: 3600,
            audience: AUDIENCE.to_string(),
        }
    }

    pub fn group(mut self, group: &str) -> TokenRequest {
        self.groups.push(group.to_string());
        self
    }
}

pub struct Issuer {
    pub key: SigningKey,
    pub dir: PathBuf,
}

impl Issuer {
    /// The key saved in `dir`; an error naming the remedy if there is none.
    pub fn load(dir: &Path) -> Result<Issuer> {
        let path = dir.join(KEY_FILE);
        let pem = match std::fs::read_to_string(&path) {
            Ok(pem) => pem,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                bail!("no demo issuer key at {}", path.display())
            }
            Err(e) => return Err(e).with_context(|| format!("reading {}", path.display())),
        };
        let probe = SigningKey::from_pkcs8_pem(&pem, "")
            .with_context(|| format!("reading the key in {}", path.display()))?;
        if probe.kind() != KeyKind::P256 {
            bail!("{} is not a P-256 key", path.display());
        }
        let kid = thumbprint(&probe.public_jwk());
        Ok(Issuer {
            key: SigningKey::from_pkcs8_pem(&pem, &kid)?,
            dir: dir.to_path_buf(),
        })
    }

    /// The key saved in `dir`, generating and saving one first if there is
    /// none. Returns whether it was created. Two processes creating at once
    /// agree on one key: the file appears atomically and the first one wins.
    pub fn load_or_create(dir: &Path) -> Result<(Issuer, bool)> {
        let path = dir.join(KEY_FILE);
        if path.exists() {
            return Ok((Issuer::load(dir)?, false));
        }
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let key = SigningKey::generate(KeyKind::P256, "")?;
        let tmp = dir.join(format!(".{KEY_FILE}.{}", std::process::id()));
        write_private(&tmp, key.to_pkcs8_pem()?.as_bytes())?;
        let created = match std::fs::hard_link(&tmp, &path) {
            Ok(()) => true,
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => false,
            Err(e) => {
                let _ = std::fs::remove_file(&tmp);
                return Err(e).with_context(|| format!("saving {}", path.display()));
            }
        };
        let _ = std::fs::remove_file(&tmp);
        Ok((Issuer::load(dir)?, created))
    }

    /// The key file.
    pub fn key_path(&self) -> PathBuf {
        self.dir.join(KEY_FILE)
    }

    /// `{"keys": [the public key]}`, as the demo serves it.
    pub fn jwks(&self) -> Value {
        jwks(&[&self.key])
    }

    /// A signed ES256 token: `iss`, `aud`, `sub`, `iat`, `exp`, `groups`
    /// (always, possibly empty) and `scope` (space-separated, when any).
    pub fn mint(&self, req: &TokenRequest) -> Result<String> {
        self.builder(req, now()).sign(&self.key)
    }

    /// The unsigned token for `req` at time `now` (tests adjust it).
    pub fn builder(&self, req: &TokenRequest, now: u64) -> TokenBuilder {
        let mut b = TokenBuilder::new(ISSUER, &req.audience, &req.sub, now)
            .claim("exp", json!(now + req.ttl_secs))
            .claim("groups", json!(req.groups));
        if !req.scopes.is_empty() {
            b = b.claim("scope", json!(req.scopes.join(" ")));
        }
        b
    }
}

/// The RFC 7638 JWK thumbprint of a public EC key: a `kid` that changes
/// whenever the key does, so a token from a replaced key is `unknown_kid`.
fn thumbprint(jwk: &Value) -> String {
    let canonical = json!({"crv": jwk["crv"], "kty": jwk["kty"], "x": jwk["x"], "y": jwk["y"]});
    b64url(&Sha256::digest(canonical.to_string().as_bytes()))
}

/// Writes a file only its owner can read.
fn write_private(path: &Path, bytes: &[u8]) -> Result<()> {
    let mut opts = std::fs::OpenOptions::new();
    opts.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        opts.mode(0o600);
    }
    let mut f = opts
        .open(path)
        .with_context(|| format!("writing {}", path.display()))?;
    f.write_all(bytes)?;
    f.sync_all()?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use transit_guard::identity::{compile, Authenticator, IdentityDoc, PlainRequest};

    fn scratch(name: &str) -> PathBuf {
        crate::paths::scratch_dir(name).unwrap()
    }

    #[test]
    fn key_is_created_once_and_kept() {
        let dir = scratch("issuer-once");
        let (a, created) = Issuer::load_or_create(&dir).unwrap();
        assert!(created);
        let (b, created) = Issuer::load_or_create(&dir).unwrap();
        assert!(!created);
        assert_eq!(a.key.public_jwk(), b.key.public_jwk());
        assert_eq!(a.key.kid, b.key.kid);
        assert_eq!(a.key.kid.len(), 43, "a SHA-256 thumbprint");
        #[cfg(unix)]
        {
            use std::os::unix::fs::PermissionsExt;
            let mode = std::fs::metadata(a.key_path())
                .unwrap()
                .permissions()
                .mode();
            assert_eq!(mode & 0o077, 0, "the key is private: {mode:o}");
        }
        let missing = Issuer::load(&dir.join("nowhere")).err().unwrap();
        assert!(
            missing.to_string().contains("no demo issuer key"),
            "{missing}"
        );
    }

    #[test]
    fn the_thumbprint_is_rfc_7638() {
        // RFC 7638 §3.1 is RSA; this is the same construction over the EC
        // members, checked against an independent computation of the digest.
        let jwk = json!({"kty": "EC", "crv": "P-256", "kid": "x", "use": "sig",
                         "x": "f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU",
                         "y": "x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"});
        let text = r#"{"crv":"P-256","kty":"EC","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}"#;
        assert_eq!(thumbprint(&jwk), b64url(&Sha256::digest(text.as_bytes())));
    }

    /// The demo policy's own `identity` section accepts what the issuer
    /// mints, with the groups and scopes asked for.
    #[test]
    fn minted_tokens_pass_the_demo_policy_identity() {
        let dir = scratch("issuer-demo-policy");
        let (issuer, _) = Issuer::load_or_create(&dir).unwrap();
        let policy: Value = serde_json::from_str(
            &std::fs::read_to_string(workspace_root().join("examples/policies/demo.json")).unwrap(),
        )
        .unwrap();
        let mut identity = policy["identity"].clone();
        let provider = &mut identity["providers"][0];
        assert_eq!(provider["issuer"], ISSUER);
        assert_eq!(provider["audiences"], json!([AUDIENCE]));
        // Inline keys instead of the fetch the filter makes through `idp`.
        let provider = provider.as_object_mut().unwrap();
        provider.remove("remote_jwks");
        provider.insert("local_jwks".into(), issuer.jwks());
        let doc: IdentityDoc = serde_json::from_value(identity).unwrap();
        let auth = Authenticator::new(compile(doc).unwrap());
        let keys = auth.new_key_store();
        let mut cache = auth.new_cache();
        let check = |token: &str, cache: &mut _| {
            let req =
                PlainRequest::new("/customers").header("authorization", &format!("Bearer {token}"));
            auth.authenticate(&req, &keys, cache, now())
                .map(|a| a.identity.unwrap())
                .map_err(|e| e.code().to_string())
        };

        let mut req = TokenRequest::new("alice").group("support");
        req.scopes = vec!["customers:read".into(), "customers:export".into()];
        let id = check(&issuer.mint(&req).unwrap(), &mut cache).unwrap();
        assert_eq!(id.subject, "alice");
        assert_eq!(id.groups, vec!["support".to_string()]);
        assert!(id.scopes.iter().any(|s| s == "customers:export"));

        let mut other = TokenRequest::new("bob");
        other.audience = "someone-else".into();
        assert_eq!(
            check(&issuer.mint(&other).unwrap(), &mut cache),
            Err("audience_mismatch".into())
        );
        let expired = issuer
            .builder(&TokenRequest::new("carol"), now() - 7200)
            .sign(&issuer.key)
            .unwrap();
        assert_eq!(check(&expired, &mut cache), Err("token_expired".into()));
    }
}
