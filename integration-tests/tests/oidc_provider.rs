//! The test OpenID provider is real and behaves as the identity tests expect.

use integration_tests::oidc::{free_port, OidcProvider, AUDIENCE, CLIENT_ID};

fn claims(token: &str) -> (serde_json::Value, serde_json::Value) {
    use base64::Engine;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    let mut parts = token.split('.');
    let header = b64.decode(parts.next().unwrap()).unwrap();
    let payload = b64.decode(parts.next().unwrap()).unwrap();
    (
        serde_json::from_slice(&header).unwrap(),
        serde_json::from_slice(&payload).unwrap(),
    )
}

#[tokio::test(flavor = "multi_thread")]
async fn client_credentials_token_is_an_rs256_access_token_for_the_gateway() {
    let idp = OidcProvider::start(free_port().unwrap(), "kid-a").unwrap();
    let token = idp.token("customers:read").await.unwrap();
    let (header, payload) = claims(&token);
    assert_eq!(header["alg"], "RS256");
    assert_eq!(header["typ"], "at+jwt");
    assert_eq!(header["kid"], "kid-a");
    assert_eq!(payload["iss"], idp.issuer.as_str());
    assert_eq!(payload["aud"], AUDIENCE);
    assert_eq!(payload["sub"], CLIENT_ID);
    assert_eq!(payload["scope"], "customers:read");
    let jwks: serde_json::Value = reqwest::get(format!("{}/jwks", idp.issuer))
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(jwks["keys"][0]["kid"], "kid-a");
    assert!(
        jwks["keys"][0].get("d").is_none(),
        "private key material published"
    );
}
