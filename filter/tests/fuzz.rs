//! Fuzzing on stable Rust, each target with an oracle (issue 14).
//!
//! cargo-fuzz needs a nightly toolchain (libFuzzer's sanitizer coverage) and
//! afl.rs its own instrumented build and runtime (`cargo afl`): neither fits
//! a stable-only CI. So these are structure-aware generators plus byte
//! mutations from a seeded PRNG, run for a bounded time per target, each
//! asserting a property rather than "does not crash" alone:
//!
//! - `json_reader`: anything serde_json accepts, the reader accepts, with
//!   the same value (a differential oracle); the masker never panics and its
//!   output is JSON again.
//! - `json_planted`: any serialisation of a value holding a planted email and
//!   `drop table` (escapes, whitespace, `1e400`, `NaN`, lone surrogates,
//!   nesting) is refused, or denied, or forwarded with the email masked as
//!   serde_json (or, where serde refuses, the reader) decodes it.
//! - `rules_body`: `drop table` in a form (any percent-encoding), JSON,
//!   multipart or text body never passes the deny rule.
//! - `form`: pairs survive any encoding (`+`, `%20`, `%XX` per byte) and a
//!   planted email is masked however it is encoded.
//! - `sse`: a planted email split across deltas and chunks at random points
//!   never reaches the client; random bytes never panic.
//! - `jwt`: the token parser never panics; what it accepts has the claims
//!   an independent base64url + serde_json decoding gives.
//!
//! `TG_FUZZ_SECS` (default 2) bounds each target: the run inside `cargo
//! xtask test`. `cargo xtask fuzz [SECS]` runs this in release, longer.
//! `TG_FUZZ_SEED` replays a run; every finding prints its seed and input.

// Test code: panicking is how it fails.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing
)]

use std::time::{Duration, Instant};

use base64::Engine;
use serde_json::{json, Value};
use transit_guard::body::json::Doc;
use transit_guard::config::Policy;
use transit_guard::flow::{Flow, HeadersStep, RequestBodyStep};
use transit_guard::sse::{ResponseStream, Stage};

const EMAIL: &str = "alice@example.com";

/// xorshift64*: small, seedable, good enough to drive generators.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 >> 12;
        self.0 ^= self.0 << 25;
        self.0 ^= self.0 >> 27;
        self.0.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
    fn pick<T: Copy>(&mut self, items: &[T]) -> T {
        items[self.below(items.len())]
    }
}

/// Runs `case` with fresh seeds until the time budget is spent; returns
/// the number of executions.
fn fuzz(name: &str, mut case: impl FnMut(&mut Rng)) -> u64 {
    let secs: f64 = std::env::var("TG_FUZZ_SECS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(2.0);
    let base: u64 = std::env::var("TG_FUZZ_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map(|d| d.as_nanos() as u64)
                .unwrap_or(1)
        });
    let deadline = Instant::now() + Duration::from_secs_f64(secs);
    let mut n = 0u64;
    while Instant::now() < deadline {
        for _ in 0..16 {
            let seed = base.wrapping_add(n).wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
            let mut rng = Rng(seed);
            let r = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| case(&mut rng)));
            if let Err(e) = r {
                let msg = e
                    .downcast_ref::<String>()
                    .cloned()
                    .or_else(|| e.downcast_ref::<&str>().map(|s| s.to_string()))
                    .unwrap_or_default();
                panic!("fuzz {name}: finding at TG_FUZZ_SEED={base} execution {n} (case seed {seed}): {msg}");
            }
            n += 1;
        }
    }
    eprintln!("fuzz {name}: {n} executions in {secs} s, 0 findings (TG_FUZZ_SEED={base})");
    n
}

fn policy() -> Policy {
    Policy::from_json(
        br#"{"masking":{"profiles":{"pii":{"detectors":["email"]}}},
             "default_action":"allow",
             "rules":[
               {"name":"no-drop","match":{"body":{"keywords":["drop table"]}},"action":"deny"},
               {"name":"no-drop-re","match":{"body":{"regex":"(?i)drop\\s+table"}},"action":"deny"},
               {"name":"pii","match":{},"action":"mask","mask":{"request":["pii"],"response":["pii"]}}]}"#,
    )
    .unwrap()
}

/// What the flow does with a POST of `body` to `path` as `content_type`:
/// `Err(status)` refused, `Ok(bytes)` what reaches the upstream.
fn send(p: &Policy, path: &str, content_type: &str, body: &[u8]) -> Result<Vec<u8>, u16> {
    let mut f = Flow::default();
    let h: Vec<(String, String)> = [
        (":method", "POST"),
        (":authority", "api.internal"),
        (":path", path),
        ("x-request-id", "fuzz"),
        ("content-type", content_type),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    match f.on_request_headers(p, &h, true, || None, false) {
        HeadersStep::Hold => {}
        HeadersStep::Refuse(r) => return Err(r.status),
        other => panic!("unexpected {other:?}"),
    }
    match f.on_request_body(p, &h, body) {
        RequestBodyStep::Continue => Ok(body.to_vec()),
        RequestBodyStep::Replace(b) => Ok(b),
        RequestBodyStep::Refuse(r) => Err(r.status),
        other => panic!("unexpected {other:?}"),
    }
}

/// Every string (and key) an upstream's JSON parser decodes: serde_json's
/// reading where it accepts the body, else the reader's.
fn upstream_strings(body: &[u8]) -> Vec<String> {
    fn walk(v: &Value, out: &mut Vec<String>) {
        match v {
            Value::String(s) => out.push(s.clone()),
            Value::Array(a) => a.iter().for_each(|x| walk(x, out)),
            Value::Object(m) => m.iter().for_each(|(k, x)| {
                out.push(k.clone());
                walk(x, out)
            }),
            _ => {}
        }
    }
    let mut out = Vec::new();
    let trimmed = body.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(body);
    let mut de = serde_json::Deserializer::from_slice(trimmed);
    de.disable_recursion_limit();
    if let Ok(v) = serde::Deserialize::deserialize(&mut de).map(|v: Value| v) {
        if de.end().is_ok() {
            walk(&v, &mut out);
            // A deep Value is dropped recursively: flatten it first.
            let mut stack = vec![v];
            while let Some(v) = stack.pop() {
                match v {
                    Value::Array(a) => stack.extend(a),
                    Value::Object(m) => stack.extend(m.into_iter().map(|(_, x)| x)),
                    _ => {}
                }
            }
            return out;
        }
    }
    if let Ok(doc) = Doc::parse(body, 1_000_000) {
        for t in &doc.tokens {
            out.push(doc.text(t).into_owned());
        }
    }
    out.push(String::from_utf8_lossy(body).into_owned());
    out
}

/// A random JSON value; `plant` strings are put in some of its strings.
fn gen_value(rng: &mut Rng, depth: usize, plant: &[&str]) -> Value {
    let k = if depth > 4 {
        rng.below(4)
    } else {
        rng.below(7)
    };
    match k {
        0 => Value::Null,
        1 => json!(rng.chance(2)),
        2 => json!(rng.next() as i64 >> rng.below(60)),
        3 => {
            let mut s = String::new();
            for _ in 0..rng.below(4) {
                s.push_str(rng.pick(&["a", " ", "ü", "😀", "\"", "\\", "\n", "x y", "\u{7f}"]));
            }
            if !plant.is_empty() && rng.chance(2) {
                s.push_str(rng.pick(plant));
            }
            Value::String(s)
        }
        4 => json!(rng.next() as f64 / 7.0),
        5 => Value::Array(
            (0..rng.below(4))
                .map(|_| gen_value(rng, depth + 1, plant))
                .collect(),
        ),
        _ => Value::Object(
            (0..rng.below(4))
                .map(|i| {
                    let key = rng
                        .pick(&["messages", "content", "q", "sql", "user", "password", "k"])
                        .to_string();
                    (format!("{key}{i}"), gen_value(rng, depth + 1, plant))
                })
                .collect(),
        ),
    }
}

/// `v` serialised the way some client might: escapes where a string may
/// have them, random whitespace, sometimes an extra `1e400`, `NaN` or
/// lone-surrogate element, sometimes wrapped in deep arrays.
fn serialise(rng: &mut Rng, v: &Value, out: &mut String) {
    let ws = |rng: &mut Rng, out: &mut String| {
        if rng.chance(4) {
            out.push_str(rng.pick(&[" ", "\n", "\t", "\r\n  "]));
        }
    };
    ws(rng, out);
    match v {
        Value::String(s) => {
            out.push('"');
            for c in s.chars() {
                match c {
                    '"' => out.push_str("\\\""),
                    '\\' => out.push_str("\\\\"),
                    c if (c as u32) < 0x20 => out.push_str(&format!("\\u{:04x}", c as u32)),
                    c if rng.chance(3) => {
                        let mut buf = [0u16; 2];
                        for u in c.encode_utf16(&mut buf) {
                            if rng.chance(2) {
                                out.push_str(&format!("\\u{u:04X}"));
                            } else {
                                out.push_str(&format!("\\u{u:04x}"));
                            }
                        }
                    }
                    '/' if rng.chance(2) => out.push_str("\\/"),
                    c => out.push(c),
                }
            }
            out.push('"');
        }
        Value::Array(a) => {
            out.push('[');
            let mut items: Vec<Option<&Value>> = a.iter().map(Some).collect();
            if rng.chance(5) {
                items.insert(rng.below(items.len() + 1), None);
            }
            for (i, x) in items.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                match x {
                    Some(x) => serialise(rng, x, out),
                    None => out.push_str(rng.pick(&[
                        "1e400",
                        "NaN",
                        "-Infinity",
                        "\"\\ud800\"",
                        "123456789012345678901234567890",
                    ])),
                }
                ws(rng, out);
            }
            out.push(']');
        }
        Value::Object(m) => {
            out.push('{');
            for (i, (k, x)) in m.iter().enumerate() {
                if i > 0 {
                    out.push(',');
                }
                serialise(rng, &Value::String(k.clone()), out);
                ws(rng, out);
                out.push(':');
                serialise(rng, x, out);
            }
            out.push('}');
        }
        other => out.push_str(&other.to_string()),
    }
    ws(rng, out);
}

fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>) {
    for _ in 0..1 + rng.below(4) {
        let at = rng.below(bytes.len() + 1);
        match rng.below(5) {
            0 if !bytes.is_empty() => {
                bytes.remove(at.min(bytes.len() - 1));
            }
            1 => bytes.insert(at, rng.pick(b"{}[]\",:\\u0e+-.NaIfty \x00\xff")),
            2 if at < bytes.len() => bytes[at] = rng.next() as u8,
            3 => {
                let piece = rng.pick(&[
                    "\\ud800",
                    "1e400",
                    "NaN",
                    "[[[[",
                    "\u{feff}",
                    "\"drop table\"",
                ]);
                for (i, b) in piece.bytes().enumerate() {
                    bytes.insert((at + i).min(bytes.len()), b);
                }
            }
            _ => {}
        }
    }
}

#[test]
fn json_reader() {
    let p = policy();
    let masker = p.masking.profile("pii").unwrap();
    fuzz("json_reader", |rng| {
        let v = gen_value(rng, 0, &[EMAIL]);
        let mut s = String::new();
        serialise(rng, &v, &mut s);
        let mut bytes = s.into_bytes();
        if rng.chance(2) {
            mutate(rng, &mut bytes);
        }
        let serde: Result<Value, _> = serde_json::from_slice(&bytes);
        let doc = Doc::parse(&bytes, 1000);
        if let Ok(sv) = &serde {
            let doc = doc.as_ref().unwrap_or_else(|e| {
                panic!(
                    "serde_json reads what the reader refuses ({e:?}): {:?}",
                    String::from_utf8_lossy(&bytes)
                )
            });
            assert_eq!(&doc.value(), sv, "{:?}", String::from_utf8_lossy(&bytes));
        }
        let out = masker.mask(Some("application/json"), &bytes);
        if doc.is_ok() {
            let masked = out.body.unwrap_or(bytes.clone());
            assert!(
                Doc::parse(&masked, 1000).is_ok(),
                "masked JSON no longer JSON: {:?}",
                String::from_utf8_lossy(&masked)
            );
        }
    });
}

#[test]
fn json_planted() {
    let p = policy();
    fuzz("json_planted", |rng| {
        let keyword = rng.chance(2);
        let plant: &[&str] = if keyword {
            &[EMAIL, "drop table"]
        } else {
            &[EMAIL]
        };
        let mut v = gen_value(rng, 0, plant);
        // Make sure something is planted.
        v = json!([v, rng.pick(plant)]);
        for _ in 0..rng.below(3) * rng.below(150) {
            v = json!([v]);
        }
        let mut s = String::new();
        serialise(rng, &v, &mut s);
        let bom = if rng.chance(8) { "\u{feff}" } else { "" };
        let body = format!("{bom}{s}");
        let ct = rng.pick(&[
            "application/json",
            "application/json; charset=utf-8",
            "text/plain",
            "application/vnd.api+json",
        ]);
        let path = rng.pick(&["/v1/query", "/v1/chat/completions", "/v1/responses"]);
        match send(&p, path, ct, body.as_bytes()) {
            Err(400 | 403) => {}
            Err(other) => panic!("refused with {other}"),
            Ok(fwd) => {
                let strings = upstream_strings(&fwd);
                for s in &strings {
                    assert!(
                        !s.to_lowercase().contains("drop table"),
                        "keyword passed: {body:?}"
                    );
                    assert!(!s.contains(EMAIL), "email passed in {s:?}: {body:.400?}");
                }
            }
        }
    });
}

#[test]
fn rules_body() {
    let p = policy();
    fuzz("rules_body", |rng| {
        let kw = rng
            .pick(&["drop table", "DROP TABLE", "Drop\tTable", "drop  table"])
            .to_string();
        let (ct, body): (String, Vec<u8>) = match rng.below(5) {
            0 => {
                let mut enc = Vec::new();
                for b in kw.bytes() {
                    match (b, rng.below(3)) {
                        (b' ', 0) => enc.push(b'+'),
                        (_, 1) => enc.extend(format!("%{b:02X}").bytes()),
                        (_, 2) => enc.extend(format!("%{b:02x}").bytes()),
                        _ => enc.push(b),
                    }
                }
                let mut body = b"a=1&sql=".to_vec();
                body.extend(enc);
                ("application/x-www-form-urlencoded".into(), body)
            }
            1 => {
                let mut s = String::new();
                serialise(rng, &json!({"q": [kw]}), &mut s);
                (
                    (rng.pick(&["application/json", "text/plain", "application/x-ndjson"]))
                        .to_string(),
                    s.into_bytes(),
                )
            }
            2 => {
                let mut s = String::new();
                serialise(rng, &json!({"q": kw}), &mut s);
                let part_ct = rng.pick(&[
                    "",
                    "Content-Type: application/json\r\n",
                    "Content-Type: text/plain\r\n",
                ]);
                let body = format!("--bnd\r\nContent-Disposition: form-data; name=\"q\"\r\n{part_ct}\r\n{s}\r\n--bnd--\r\n");
                (
                    "multipart/form-data; boundary=bnd".into(),
                    body.into_bytes(),
                )
            }
            3 => ("text/plain".into(), format!("please {kw} now").into_bytes()),
            _ => {
                let mut b = format!("{{\"q\":\"{kw}\"}}").into_bytes();
                mutate(rng, &mut b);
                let ct = rng.pick(&[
                    "application/json",
                    "text/plain",
                    "application/octet-stream",
                    "multipart/form-data; boundary=x",
                    "application/x-www-form-urlencoded",
                ]);
                // Random bytes: no panic, and no keyword the reader decodes passes.
                if let Ok(fwd) = send(&p, "/v1/query", ct, &b) {
                    if ct != "application/octet-stream" {
                        for s in upstream_strings(&fwd) {
                            assert!(
                                !s.to_lowercase().contains("drop table"),
                                "{:?}",
                                String::from_utf8_lossy(&b)
                            );
                        }
                    }
                }
                return;
            }
        };
        let r = send(&p, "/v1/query", &ct, &body);
        assert!(
            matches!(r, Err(400 | 403)),
            "{ct} {:?} passed: {r:?}",
            String::from_utf8_lossy(&body)
        );
    });
}

#[test]
fn form() {
    let p = policy();
    let masker = p.masking.profile("pii").unwrap();
    fuzz("form", |rng| {
        let pairs: Vec<(Vec<u8>, Vec<u8>)> = (0..1 + rng.below(4))
            .map(|_| {
                let gen = |rng: &mut Rng| -> Vec<u8> {
                    let mut v: Vec<u8> = (0..rng.below(6))
                        .map(|_| rng.pick(b"a &=+%\xc3\xa9z"))
                        .collect();
                    if rng.chance(3) {
                        v.extend_from_slice(EMAIL.as_bytes());
                    }
                    v
                };
                (gen(rng), gen(rng))
            })
            .filter(|(n, _)| !n.is_empty())
            .collect();
        let mut body = Vec::new();
        for (i, (n, v)) in pairs.iter().enumerate() {
            if i > 0 {
                body.push(b'&');
            }
            for (j, part) in [n, v].into_iter().enumerate() {
                if j == 1 {
                    body.push(b'=');
                }
                for &b in part {
                    let safe = b.is_ascii_alphanumeric() || b == b'.' || b == b'@';
                    match (b, safe, rng.below(3)) {
                        (b' ', _, 0) => body.push(b'+'),
                        (_, true, 0) => body.push(b),
                        (_, _, 2) => body.extend(format!("%{b:02x}").bytes()),
                        _ => body.extend(format!("%{b:02X}").bytes()),
                    }
                }
            }
        }
        let fields = transit_guard::body::form::fields(&body);
        let got: Vec<(Vec<u8>, Vec<u8>)> = fields.into_iter().map(|f| (f.name, f.value)).collect();
        assert_eq!(got, pairs, "{:?}", String::from_utf8_lossy(&body));
        let out = masker.mask(Some("application/x-www-form-urlencoded"), &body);
        let masked = out.body.unwrap_or(body.clone());
        for f in transit_guard::body::form::fields(&masked) {
            assert!(
                !f.value.windows(EMAIL.len()).any(|w| w == EMAIL.as_bytes()),
                "{:?}",
                String::from_utf8_lossy(&masked)
            );
            assert!(
                !f.name.windows(EMAIL.len()).any(|w| w == EMAIL.as_bytes()),
                "{:?}",
                String::from_utf8_lossy(&masked)
            );
        }
    });
}

#[test]
fn sse() {
    let p = policy();
    let masker = p.masking.profile("pii").unwrap();
    fuzz("sse", |rng| {
        let text = format!("write to {EMAIL} today, or {EMAIL}.");
        // Split the text into deltas at random character boundaries.
        let chars: Vec<char> = text.chars().collect();
        let mut deltas = Vec::new();
        let mut at = 0;
        while at < chars.len() {
            let n = 1 + rng.below(6);
            deltas.push(
                chars[at..(at + n).min(chars.len())]
                    .iter()
                    .collect::<String>(),
            );
            at += n;
        }
        let mut stream = String::new();
        for d in &deltas {
            let c = json!({"id":"c","object":"chat.completion.chunk","model":"m",
                "choices":[{"index":0,"delta":{"content":d},"finish_reason":null}]});
            stream.push_str(&format!("data: {c}\n\n"));
        }
        stream.push_str("data: [DONE]\n\n");
        let mut bytes = stream.into_bytes();
        let random = rng.chance(4);
        if random {
            mutate(rng, &mut bytes);
        }
        let maskers = [Stage::Mask(masker)];
        let mut s = ResponseStream::new(1 << 20);
        let mut out = Vec::new();
        let mut last = 0;
        let mut failed = false;
        while last < bytes.len() {
            let next = (last + 1 + rng.below(40)).min(bytes.len());
            match s.push(&maskers, &bytes[last..next]) {
                Ok(o) => out.extend(o),
                Err(_) => {
                    failed = true;
                    break;
                }
            }
            last = next;
        }
        if failed {
            return; // the stream is reset: nothing more reaches the client
        }
        out.extend(s.finish(&maskers));
        if random {
            return; // no panic is the property for random bytes
        }
        // What an SDK assembles from the events.
        let mut content = String::new();
        for line in String::from_utf8_lossy(&out).lines() {
            if let Some(data) = line.strip_prefix("data: ") {
                if let Ok(v) = serde_json::from_str::<Value>(data) {
                    if let Some(t) = v["choices"][0]["delta"]["content"].as_str() {
                        content.push_str(t);
                    }
                }
            }
        }
        assert!(!content.contains(EMAIL), "{content:?} from {deltas:?}");
        assert!(!String::from_utf8_lossy(&out).contains(EMAIL));
    });
}

#[test]
fn jwt() {
    use transit_guard::identity::jwt;
    let b64 = base64::engine::general_purpose::URL_SAFE_NO_PAD;
    fuzz("jwt", |rng| {
        let header = rng.pick(&[
            r#"{"alg":"RS256","kid":"k1","typ":"JWT"}"#,
            r#"{"alg":"ES256"}"#,
            r#"{"alg":"none"}"#,
            r#"{"alg":"HS256","crit":["x"]}"#,
            r#"{"alg":"RS256","alg":"HS256"}"#,
            r#"[1]"#,
        ]);
        let claims = gen_value(rng, 1, &["alice"]);
        let payload = if rng.chance(4) {
            claims.to_string()
        } else {
            json!({"sub": "alice", "x": claims}).to_string()
        };
        let sig: Vec<u8> = (0..rng.below(70)).map(|_| rng.next() as u8).collect();
        let mut token = format!(
            "{}.{}.{}",
            b64.encode(header),
            b64.encode(&payload),
            b64.encode(&sig)
        )
        .into_bytes();
        if rng.chance(2) {
            mutate(rng, &mut token);
        }
        let token = String::from_utf8_lossy(&token).into_owned();
        if let Ok(d) = jwt::decode(&token) {
            let parts: Vec<&str> = token.split('.').collect();
            assert_eq!(parts.len(), 3);
            let payload = b64.decode(parts[1]).expect("accepted payload is base64url");
            let want: Value = serde_json::from_slice(&payload).expect("accepted payload is JSON");
            assert_eq!(Value::Object(d.claims), want, "{token}");
        }
    });
}
