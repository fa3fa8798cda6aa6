//! What crosses the wire: the agent holds only its own JWT, Envoy injects the
//! upstream credential; both legs are TLS, proven by capturing loopback
//! traffic (tcpdump) during a scenario and finding none of the planted
//! secrets in it; plaintext is refused on either leg.

use std::io::{Read, Write};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use integration_tests::gateway::{audit_log_path, upstream_credential, Gateway};
use integration_tests::tokens::{self, KeyKind, SigningKey, TokenBuilder};
use integration_tests::wait::{self, Check};
use serde_json::json;

const ISSUER: &str = "https://idp.transit-guard.test";

fn policy(key: &SigningKey) -> String {
    json!({
        "identity": {"providers": [tokens::provider_json("corp", ISSUER, "gw", &[key])]},
        "masking": {"profiles": {"secrets": {"detectors": ["openai_key", "aws_access_key"]},
                                 "pii": {"detectors": ["email", "credit_card", "ssn"]}}},
        "default_action": "allow",
        "rules": [
            {"name": "secrets-out", "match": {"path": {"prefix": "/v1/"}}, "action": "mask", "mask": {"request": ["secrets"]}},
            {"name": "pii-back", "match": {"path": {"prefix": "/customers"}}, "action": "mask", "mask": {"response": ["pii"]}}
        ]
    })
    .to_string()
}

#[tokio::test(flavor = "multi_thread")]
async fn the_upstream_credential_is_injected_and_goes_nowhere_else() {
    let key = SigningKey::generate(KeyKind::P256, "k1").unwrap();
    let gw = Gateway::for_test("transit-credential", &policy(&key))
        .await
        .unwrap();
    let credential = upstream_credential(&gw.pki.dir).unwrap();
    let token = TokenBuilder::new(ISSUER, "gw", "agent-7", tokens::now())
        .sign(&key)
        .unwrap();
    let resp = gw
        .client()
        .unwrap()
        .post(gw.url("/v1/echo"))
        .bearer_auth(&token)
        .body("hello")
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let headers = format!("{:?}", resp.headers());
    let body = resp.text().await.unwrap();
    let seen = gw.upstream.requests();
    assert_eq!(
        seen[0].header("authorization"),
        Some(credential.as_str()),
        "credential not injected"
    );
    assert!(
        seen[0].headers.iter().all(|(_, v)| !v.contains(&token)),
        "the agent's token reached the upstream"
    );
    // Never back to the agent, never in the audit trail or Envoy's log.
    let secret = credential.trim_start_matches("Bearer ");
    assert!(!headers.contains(secret) && !body.contains(secret));
    gw.wait_for_audit_records(1);
    assert!(!std::fs::read_to_string(audit_log_path(&gw.pki.dir))
        .unwrap()
        .contains(secret));
    assert!(!gw.envoy.log().contains(secret));
}

/// tcpdump on loopback, writing a pcap.
struct Capture {
    child: Child,
    path: std::path::PathBuf,
}

impl Capture {
    /// Starts capturing `ports`; returns once the file shows a probe sent to
    /// `probe_port` (so the capture sees everything the test sends next).
    fn start(path: std::path::PathBuf, ports: &[u16], probe_port: u16) -> Capture {
        let filter = ports
            .iter()
            .map(|p| format!("tcp port {p}"))
            .collect::<Vec<_>>()
            .join(" or ");
        let mut child = Command::new("tcpdump")
            // --immediate-mode and -U: each packet is written to the file as
            // it comes, not in ~1 s blocks.
            .args(["-i", "lo", "--immediate-mode", "-U", "-s", "0", "-w"])
            .arg(&path)
            .arg(filter)
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("tcpdump (cargo xtask test installs it; capturing needs root)");
        let mut stderr = std::io::BufReader::new(child.stderr.take().unwrap());
        let mut line = String::new();
        let _ = std::io::BufRead::read_line(&mut stderr, &mut line);
        assert!(
            line.contains("listening on"),
            "tcpdump did not start: {line}"
        );
        std::thread::spawn(move || std::io::copy(&mut stderr, &mut std::io::sink()));
        let capture = Capture { child, path };
        let probe = "CAPTURE-READY-PROBE";
        capture.wait_for(probe, || {
            if let Ok(mut s) = std::net::TcpStream::connect(("127.0.0.1", probe_port)) {
                let _ = s.write_all(probe.as_bytes());
            }
        });
        capture
    }

    /// Waits until the capture file holds `marker`, calling `poke` before
    /// each look.
    fn wait_for(&self, marker: &str, poke: impl Fn()) -> Vec<u8> {
        wait::until(&format!("{marker} in the capture"), || {
            poke();
            let pcap = std::fs::read(&self.path).unwrap_or_default();
            if contains(&pcap, marker) {
                Check::Done(pcap)
            } else {
                Check::NotYet(format!("{} bytes captured", pcap.len()))
            }
        })
        .unwrap()
    }

    /// Stops once the capture holds `last` (what the test sent last).
    fn stop(mut self, last: &str) -> Vec<u8> {
        self.wait_for(last, || {});
        // SIGINT: tcpdump flushes and exits.
        unsafe { libc::kill(self.child.id() as i32, libc::SIGINT) };
        let _ = self.child.wait();
        std::fs::read(&self.path).unwrap()
    }
}

impl Drop for Capture {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn contains(haystack: &[u8], needle: &str) -> bool {
    haystack
        .windows(needle.len())
        .any(|w| w == needle.as_bytes())
}

#[tokio::test(flavor = "multi_thread")]
async fn no_plaintext_on_either_leg() {
    let key = SigningKey::generate(KeyKind::P256, "k1").unwrap();
    let gw = Gateway::for_test("transit-capture", &policy(&key))
        .await
        .unwrap();
    let gateway_port = gw.listen_addr("https").port();
    let upstream_port = gw.upstream.addr.port();
    let credential = upstream_credential(&gw.pki.dir).unwrap();
    let token = TokenBuilder::new(ISSUER, "gw", "agent-7", tokens::now())
        .sign(&key)
        .unwrap();
    let prompt_secret = "PLANTED-PROMPT-confidential-merger-plan-1234";
    let api_key = "sk-proj-Zx9Yw8Vu7Ts6Rq5Po4Nm3Lk2Jh1Gf0Ed";

    let capture = Capture::start(
        gw.dir.join("loopback.pcap"),
        &[gateway_port, upstream_port],
        gateway_port,
    );
    let client = gw.client().unwrap();
    let chat = json!({"model": "gpt-4o-mini", "messages": [{"role": "user",
                      "content": format!("{prompt_secret}; my key is {api_key}")}]});
    let resp = client
        .post(gw.url("/v1/chat/completions"))
        .bearer_auth(&token)
        .json(&chat)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let resp = client
        .get(gw.url("/customers"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let _ = resp.bytes().await;
    // Control: bytes an agent sends in clear (refused by the TLS listener) do
    // show up in the capture, so the capture can see payloads at all.
    let marker = "PLAINTEXT-CONTROL-MARKER";
    tokio::task::block_in_place(|| {
        let mut s = std::net::TcpStream::connect(("127.0.0.1", gateway_port)).unwrap();
        let _ = s.write_all(format!("GET /{marker} HTTP/1.1\r\n\r\n").as_bytes());
        let mut sink = Vec::new();
        s.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = s.read_to_end(&mut sink);
    });
    let pcap = tokio::task::block_in_place(|| capture.stop(marker));

    // Traffic was captured on both legs (TLS records: content type 0x16/0x17, version 3.x)...
    assert!(
        pcap.len() > 4000,
        "capture too small ({} bytes): nothing captured?",
        pcap.len()
    );
    assert!(
        pcap.windows(3).any(|w| w == [0x17, 0x03, 0x03]),
        "no TLS application data in the capture"
    );
    assert!(
        contains(&pcap, marker),
        "the capture cannot see payloads: the check below would prove nothing"
    );
    // ...and none of the real traffic is readable.
    for secret in [
        token.as_str(),
        credential.trim_start_matches("Bearer "),
        prompt_secret,
        api_key,
        "ada.lovelace@example.com",
        "4111 1111 1111 1111",
        "gpt-4o-mini",
        "/v1/chat/completions",
    ] {
        assert!(!contains(&pcap, secret), "{secret} is readable on the wire");
    }
    // The upstream did get the prompt (decrypted at the far end), with the key masked.
    let seen = gw.upstream.requests();
    let body = String::from_utf8_lossy(&seen[0].body);
    assert!(
        body.contains(prompt_secret) && !body.contains(api_key),
        "{body}"
    );
}

/// Sends a plaintext HTTP request to a TLS port and returns what came back.
fn plaintext_attempt(port: u16) -> Vec<u8> {
    let mut s = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(3))).unwrap();
    let _ = s.write_all(b"GET /customers HTTP/1.1\r\nHost: localhost\r\n\r\n");
    let mut out = Vec::new();
    let _ = s.read_to_end(&mut out);
    out
}

#[tokio::test(flavor = "multi_thread")]
async fn plaintext_is_refused_on_both_legs() {
    let key = SigningKey::generate(KeyKind::P256, "k1").unwrap();
    let gw = Gateway::for_test("transit-plaintext", &policy(&key))
        .await
        .unwrap();
    for port in [gw.listen_addr("https").port(), gw.upstream.addr.port()] {
        let answer = tokio::task::block_in_place(|| plaintext_attempt(port));
        assert!(
            !contains(&answer, "HTTP/1.1 200"),
            "port {port} served plaintext"
        );
        assert!(
            !contains(&answer, "customers"),
            "port {port} leaked data over plaintext"
        );
    }
    assert!(gw.upstream.requests().is_empty());
}
