use super::events::{Event, Splitter};
use super::*;
use crate::mask::{compile, MaskingDoc};
use serde_json::{json, Value};

fn masker(profile: &str) -> Masker {
    let doc: MaskingDoc = serde_json::from_str(&format!(
        r#"{{"hash_key":"0123456789abcdef-test","profiles":{{"p":{profile}}}}}"#
    ))
    .unwrap();
    compile(&doc).unwrap().profile("p").unwrap().clone()
}

fn all() -> Masker {
    masker("{}")
}

/// The text masked whole, as the reference.
fn whole(m: &Masker, text: &str) -> String {
    let out = m.mask(Some("text/plain"), text.as_bytes());
    String::from_utf8(out.body.unwrap_or_else(|| text.as_bytes().to_vec())).unwrap()
}

fn chunk(i: usize, delta: Value, finish: Option<&str>) -> String {
    let c = json!({
        "id": "chatcmpl-1", "object": "chat.completion.chunk", "created": 1700000000,
        "model": "gpt-4o-mini",
        "choices": [{"index": i, "delta": delta, "logprobs": null, "finish_reason": finish}]
    });
    format!("data: {c}\n\n")
}

/// A chat stream whose content is `parts`, one delta each.
fn chat_stream(parts: &[&str]) -> String {
    let mut s = chunk(0, json!({"role": "assistant", "content": ""}), None);
    for p in parts {
        s.push_str(&chunk(0, json!({ "content": p }), None));
    }
    s.push_str(&chunk(0, json!({}), Some("stop")));
    s.push_str("data: [DONE]\n\n");
    s
}

/// Runs `body` through a stream in the given chunks.
fn run(m: &Masker, body: &[u8], cuts: &[usize]) -> (Vec<u8>, BTreeMap<String, u32>, StreamKind) {
    let (out, counts, kind) = run_stages(&[Stage::Mask(m)], body, cuts);
    (out, counts.masked, kind)
}

/// Runs `body` through a stream with these stages in the given chunks.
fn run_stages(stages: &[Stage<'_>], body: &[u8], cuts: &[usize]) -> (Vec<u8>, Counts, StreamKind) {
    let mut s = ResponseStream::new(1 << 20);
    let mut out = Vec::new();
    let mut last = 0;
    for &c in cuts {
        out.extend(s.push(stages, &body[last..c]).unwrap());
        last = c;
    }
    out.extend(s.push(stages, &body[last..]).unwrap());
    out.extend(s.finish(stages));
    (out, s.counts(stages), s.kind())
}

/// What an SDK assembles: per choice, content and tool arguments. Every
/// event must be valid SSE with JSON data (or `[DONE]`).
#[derive(Debug, Default, PartialEq)]
struct Assembled {
    content: BTreeMap<u64, String>,
    tools: BTreeMap<(u64, u64), String>,
    responses: BTreeMap<String, String>,
    done_texts: Vec<String>,
    events: usize,
    saw_done: bool,
}

fn assemble(out: &[u8]) -> Assembled {
    let mut a = Assembled::default();
    let mut sp = Splitter::default();
    let events = sp.push(out);
    assert_eq!(
        sp.pending(),
        0,
        "unterminated event in {}",
        String::from_utf8_lossy(out)
    );
    for raw in events {
        let ev = Event::parse(&raw);
        let Some(data) = ev.data() else { continue };
        a.events += 1;
        if data == b"[DONE]" {
            assert!(!a.saw_done, "two [DONE]");
            a.saw_done = true;
            continue;
        }
        assert!(!a.saw_done, "event after [DONE]");
        let v: Value = serde_json::from_slice(&data)
            .unwrap_or_else(|e| panic!("{e}: {}", String::from_utf8_lossy(&data)));
        if let Some(choices) = v["choices"].as_array() {
            for c in choices {
                let i = c["index"].as_u64().unwrap();
                if let Some(t) = c["delta"]["content"].as_str() {
                    a.content.entry(i).or_default().push_str(t);
                }
                for call in c["delta"]["tool_calls"].as_array().into_iter().flatten() {
                    let t = call["index"].as_u64().unwrap();
                    if let Some(args) = call["function"]["arguments"].as_str() {
                        a.tools.entry((i, t)).or_default().push_str(args);
                    }
                }
            }
        } else if let Some(t) = v["type"].as_str() {
            if let Some(fam) = t.strip_suffix(".delta") {
                let key = format!("{fam}/{}/{}", v["output_index"], v["content_index"]);
                a.responses
                    .entry(key)
                    .or_default()
                    .push_str(v["delta"].as_str().unwrap());
            }
            if t == "response.output_text.done" {
                a.done_texts.push(v["text"].as_str().unwrap().to_string());
            }
        }
    }
    a
}

/// Planted values from the detector corpus, with their texts.
fn corpus() -> Vec<(String, Vec<String>)> {
    let mut recs: Vec<(String, Vec<String>)> = include_str!("../../tests/data/mask_corpus.jsonl")
        .lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: Value = serde_json::from_str(l).unwrap();
            let planted = v["planted"]
                .as_array()
                .unwrap()
                .iter()
                .flat_map(|p| p.as_array().unwrap()[1..].to_vec())
                .map(|f| f.as_str().unwrap().to_string())
                .collect();
            (v["text"].as_str().unwrap().to_string(), planted)
        })
        .filter(|(_, p): &(String, Vec<String>)| !p.is_empty())
        .collect();
    recs.push((
        "mail bob.o@example.com, card 4111 1111 1111 1111, ssn 123-45-6789, \
         call +1 (415) 555-2671, key AKIAIOSFODNN7EXAMPLE, password=hunter2x ok é"
            .to_string(),
        vec![
            "bob.o@example.com".into(),
            "4111 1111 1111 1111".into(),
            "123-45-6789".into(),
            "555-2671".into(),
            "AKIAIOSFODNN7EXAMPLE".into(),
            "hunter2x".into(),
        ],
    ));
    recs
}

fn char_boundaries(s: &str) -> impl Iterator<Item = usize> + '_ {
    (0..=s.len()).filter(|&i| s.is_char_boundary(i))
}

fn assert_no_leak(out: &[u8], planted: &[String], what: &str) {
    let text = String::from_utf8_lossy(out);
    for p in planted {
        assert!(!text.contains(p.as_str()), "{p} leaked ({what}): {text}");
    }
}

#[test]
fn a_value_split_across_two_deltas_at_every_offset_is_masked() {
    let m = all();
    for (text, planted) in corpus() {
        let expected = whole(&m, &text);
        for p in &planted {
            assert!(!expected.contains(p.as_str()), "{p} not masked whole");
        }
        for k in char_boundaries(&text) {
            let body = chat_stream(&[&text[..k], &text[k..]]);
            let (out, counts, kind) = run(&m, body.as_bytes(), &[]);
            assert_eq!(kind, StreamKind::OpenAi);
            let a = assemble(&out);
            assert_eq!(
                a.content.get(&0).map(String::as_str),
                Some(expected.as_str()),
                "split at {k}"
            );
            assert!(a.saw_done);
            assert_no_leak(&out, &planted, &format!("delta split {k}"));
            assert_eq!(counts, m.mask(Some("text/plain"), text.as_bytes()).counts);
        }
    }
}

#[test]
fn a_value_split_across_deltas_and_chunks_at_every_byte_is_masked() {
    let m = all();
    for (text, planted) in corpus() {
        let expected = whole(&m, &text);
        for p in &planted {
            let Some(at) = text.find(p.as_str()) else {
                continue;
            };
            // Split the value in its middle across two deltas, and the SSE
            // bytes at every offset across two chunks.
            let mut k = at + p.len() / 2;
            while !text.is_char_boundary(k) {
                k += 1;
            }
            let body = chat_stream(&[&text[..k], &text[k..]]);
            // Every byte of the two delta events (the others hold no value).
            let first = body[1..].find("data: ").unwrap() + 1;
            let end = first + body[first..].match_indices("data: ").nth(2).unwrap().0;
            for cut in first..=end {
                let (out, _, _) = run(&m, body.as_bytes(), &[cut]);
                let a = assemble(&out);
                assert_eq!(a.content[&0], expected, "delta {k} chunk {cut}");
                assert_no_leak(&out, &planted, &format!("delta {k} chunk {cut}"));
            }
        }
    }
}

#[test]
fn token_sized_deltas_in_byte_chunks() {
    let m = all();
    for (text, planted) in corpus() {
        let expected = whole(&m, &text);
        let mut parts = Vec::new();
        let mut i = 0;
        while i < text.len() {
            let mut j = (i + 3).min(text.len());
            while !text.is_char_boundary(j) {
                j += 1;
            }
            parts.push(&text[i..j]);
            i = j;
        }
        let body = chat_stream(&parts);
        let cuts: Vec<usize> = (1..body.len()).step_by(7).collect();
        let (out, _, _) = run(&m, body.as_bytes(), &cuts);
        assert_eq!(assemble(&out).content[&0], expected);
        assert_no_leak(&out, &planted, "token deltas");
    }
}

#[test]
fn tool_call_arguments_are_one_stream_per_call() {
    let m = all();
    let args = r#"{"to":"alice@example.com","card":"4111111111111111"}"#;
    for k in char_boundaries(args) {
        let mut body = String::new();
        let call = |i: u64, a: &str, first: bool| {
            let mut c = json!({"index": i, "function": {"arguments": a}});
            if first {
                c["id"] = json!(format!("call_{i}"));
                c["type"] = json!("function");
                c["function"]["name"] = json!("send");
            }
            c
        };
        body.push_str(&chunk(
            0,
            json!({"role":"assistant","tool_calls":[call(0, &args[..k], true)]}),
            None,
        ));
        body.push_str(&chunk(
            0,
            json!({"tool_calls":[call(1, &args[..k], true)]}),
            None,
        ));
        body.push_str(&chunk(
            0,
            json!({"tool_calls":[call(0, &args[k..], false)]}),
            None,
        ));
        body.push_str(&chunk(
            0,
            json!({"tool_calls":[call(1, &args[k..], false)]}),
            None,
        ));
        body.push_str(&chunk(0, json!({}), Some("tool_calls")));
        body.push_str("data: [DONE]\n\n");
        let (out, counts, _) = run(&m, body.as_bytes(), &[]);
        let a = assemble(&out);
        let expected = r#"{"to":"[REDACTED:email]","card":"[REDACTED:credit_card]"}"#;
        assert_eq!(a.tools[&(0, 0)], expected, "split {k}");
        assert_eq!(a.tools[&(0, 1)], expected, "split {k}");
        assert_eq!(counts.get("email"), Some(&2));
        assert_no_leak(
            &out,
            &["alice@example.com".into(), "4111111111111111".into()],
            "tools",
        );
    }
}

#[test]
fn choices_are_separate_streams() {
    let m = all();
    let mut body = String::new();
    body.push_str(&chunk(0, json!({"content": "mail bob@exa"}), None));
    body.push_str(&chunk(1, json!({"content": "call 415-555-"}), None));
    body.push_str(&chunk(0, json!({"content": "mple.com now"}), None));
    body.push_str(&chunk(1, json!({"content": "2671 now"}), None));
    body.push_str(&chunk(0, json!({}), Some("stop")));
    body.push_str(&chunk(1, json!({}), Some("stop")));
    let (out, _, _) = run(&m, body.as_bytes(), &[]);
    let a = assemble(&out);
    assert_eq!(a.content[&0], "mail [REDACTED:email] now");
    assert_eq!(a.content[&1], "call [REDACTED:phone] now");
}

#[test]
fn rests_are_flushed_before_done_and_at_the_end() {
    let m = all();
    // No finish_reason: the rest goes out as an extra chunk before [DONE].
    let body = format!(
        "{}data: [DONE]\n\n",
        chunk(0, json!({"content": "ends with bob@example.com"}), None)
    );
    let (out, _, _) = run(&m, body.as_bytes(), &[]);
    let a = assemble(&out);
    assert_eq!(a.content[&0], "ends with [REDACTED:email]");
    assert!(a.saw_done);
    // No [DONE] and no trailing empty line at all.
    let body = chunk(0, json!({"content": "to bob@example.com"}), None);
    let body = body.trim_end();
    let (out, _, _) = run(&m, body.as_bytes(), &[]);
    assert_eq!(assemble(&out).content[&0], "to [REDACTED:email]");
}

#[test]
fn logprobs_are_dropped_and_other_fields_masked() {
    let m = all();
    let c = json!({"id":"x","object":"chat.completion.chunk","choices":[{"index":0,
        "delta":{"content":"hi "},"finish_reason":null,
        "logprobs":{"content":[{"token":"bob@example.com","logprob":-0.1,"bytes":[98]}]}}],
        "note":"ping alice@example.com"});
    let body = format!("data: {c}\n\ndata: [DONE]\n\n");
    let (out, counts, _) = run(&m, body.as_bytes(), &[]);
    let text = String::from_utf8_lossy(&out);
    assert!(!text.contains("example.com"), "{text}");
    assert!(text.contains(r#""logprobs":null"#), "{text}");
    assert_eq!(counts.get("email"), Some(&1));
}

#[test]
fn unchanged_events_pass_byte_for_byte() {
    let m = all();
    let body = format!(
        "{}: keep-alive\n\n{}data: [DONE]\n\n",
        chunk(0, json!({"role": "assistant", "content": ""}), None),
        chunk(0, json!({}), Some("stop"))
    );
    let (out, counts, _) = run(&m, body.as_bytes(), &[]);
    assert_eq!(String::from_utf8(out).unwrap(), body);
    assert!(counts.is_empty());
}

fn responses_stream(parts: &[&str], full: &str) -> String {
    let mut s = String::new();
    let mut seq = 0;
    let mut ev = |v: Value| {
        seq += 1;
        let mut v = v;
        v["sequence_number"] = json!(seq);
        s.push_str(&format!(
            "event: {}\ndata: {v}\n\n",
            v["type"].as_str().unwrap()
        ));
    };
    ev(
        json!({"type":"response.created","response":{"id":"resp_1","status":"in_progress","output":[]}}),
    );
    for p in parts {
        ev(
            json!({"type":"response.output_text.delta","item_id":"msg_1","output_index":0,
                  "content_index":0,"delta":p,"logprobs":[]}),
        );
    }
    ev(
        json!({"type":"response.output_text.done","item_id":"msg_1","output_index":0,
              "content_index":0,"text":full,"logprobs":[]}),
    );
    ev(
        json!({"type":"response.completed","response":{"id":"resp_1","status":"completed",
              "output":[{"type":"message","content":[{"type":"output_text","text":full}]}]}}),
    );
    s
}

#[test]
fn responses_deltas_split_at_every_offset() {
    let m = all();
    for (text, planted) in corpus() {
        let expected = whole(&m, &text);
        for k in char_boundaries(&text).step_by(3) {
            let body = responses_stream(&[&text[..k], &text[k..]], &text);
            let (out, _, kind) = run(&m, body.as_bytes(), &[body.len() / 2]);
            assert_eq!(kind, StreamKind::OpenAi);
            let a = assemble(&out);
            assert_eq!(
                a.responses["response.output_text/0/0"], expected,
                "split {k}"
            );
            assert_eq!(a.done_texts, vec![expected.clone()]);
            assert_no_leak(&out, &planted, "responses");
            // The extra delta (if any) comes before the .done event.
            let text_out = String::from_utf8_lossy(&out);
            let done_at = text_out.find("response.output_text.done").unwrap();
            assert!(text_out.rfind("response.output_text.delta").unwrap() < done_at);
        }
    }
}

#[test]
fn other_event_streams_are_masked_as_text_across_events() {
    let m = all();
    let body =
        "event: log\ndata: user bob@exa\n\ndata: mple.com card 4111 1111\ndata: 1111 1111 end\n\n";
    let expected = whole(&m, body);
    for cut in 0..=body.len() {
        let (out, _, kind) = run(&m, body.as_bytes(), &[cut]);
        assert_eq!(String::from_utf8_lossy(&out), expected, "cut {cut}");
        assert!(cut < 30 || kind == StreamKind::Text);
    }
}

#[test]
fn prose_is_held_back_by_about_one_word() {
    let m = all();
    let maskers = [Stage::Mask(&m)];
    let mut s = ResponseStream::new(1 << 20);
    let first = s
        .push(
            &maskers,
            chunk(0, json!({"content": "Hello"}), None).as_bytes(),
        )
        .unwrap();
    assert_eq!(assemble(&first).content[&0], "");
    let second = s
        .push(
            &maskers,
            chunk(0, json!({"content": " there, how"}), None).as_bytes(),
        )
        .unwrap();
    assert_eq!(assemble(&second).content[&0], "Hello there, ");
    assert!(s.pending() <= 4, "{}", s.pending());
}

#[test]
fn an_endless_event_fails_closed() {
    let m = all();
    let mut s = ResponseStream::new(1000);
    let big = format!("data: {}", "a".repeat(2000));
    assert_eq!(
        s.push(&[Stage::Mask(&m)], big.as_bytes()),
        Err(StreamError::EventTooLarge(2006))
    );
}

#[test]
fn several_profiles_apply_in_turn() {
    let emails = masker(r#"{"detectors":["email"]}"#);
    let cards = masker(r#"{"detectors":["credit_card"]}"#);
    let maskers = [Stage::Mask(&emails), Stage::Mask(&cards)];
    let body = chat_stream(&["a bob@exam", "ple.com 4111 1111 ", "1111 1111 z"]);
    let mut s = ResponseStream::new(1 << 20);
    let mut out = s.push(&maskers, body.as_bytes()).unwrap();
    out.extend(s.finish(&maskers));
    assert_eq!(
        assemble(&out).content[&0],
        "a [REDACTED:email] [REDACTED:credit_card] z"
    );
    let counts = s.counts(&maskers).masked;
    assert_eq!(
        (counts.get("email"), counts.get("credit_card")),
        (Some(&1), Some(&1))
    );
}

#[test]
fn corpus_texts_byte_by_byte_equal_masking_whole() {
    let m = all();
    for (text, planted) in corpus() {
        let mut s = m.stream(crate::mask::DEFAULT_WINDOW);
        let mut out = Vec::new();
        for b in text.as_bytes() {
            out.extend(s.push(std::slice::from_ref(b)));
            // Held back: never more than the open tail.
            assert!(s.pending() <= text.len());
        }
        let (rest, _) = s.finish();
        out.extend(rest);
        assert_eq!(String::from_utf8(out.clone()).unwrap(), whole(&m, &text));
        assert_no_leak(&out, &planted, "byte by byte");
    }
}

/// The map of a request whose email (and, with `phone`, phone number) was
/// tokenised: `<EMAIL_1>` (and `<PHONE_2>`).
fn request_tokens(text: &str) -> crate::mask::Tokens {
    let doc: MaskingDoc = serde_json::from_str(
        r#"{"profiles":{"t":{"detectors":["email","phone"],"strategies":{"default":"tokenize"}}}}"#,
    )
    .unwrap();
    let masking = compile(&doc).unwrap();
    let mut tokens = crate::mask::Tokens::default();
    let out = crate::mask::apply::apply(
        &masking,
        &["t".to_string()],
        Some("text/plain"),
        text.as_bytes(),
        None,
        None,
        &mut tokens,
    );
    assert_eq!(
        out.tokenized.values().sum::<u32>(),
        out.counts.values().sum::<u32>()
    );
    tokens
}

const EMAIL: &str = "ada.lovelace@example.com";

#[test]
fn a_token_split_across_deltas_and_writes_at_every_byte_is_restored() {
    let tokens = request_tokens(EMAIL);
    let stages = [Stage::Restore(&tokens)];
    let token = "<EMAIL_1>";
    let text = format!("Write to {token} today.");
    let want = format!("Write to {EMAIL} today.");
    let at = text.find(token).unwrap();
    for k in at..=at + token.len() {
        let body = chat_stream(&[&text[..k], &text[k..]]);
        // Whole, then every TCP write boundary inside the stream.
        let cuts: Vec<Vec<usize>> = std::iter::once(vec![])
            .chain((1..body.len()).map(|c| vec![c]))
            .collect();
        for cut in cuts {
            let (out, counts, kind) = run_stages(&stages, body.as_bytes(), &cut);
            assert_eq!(kind, StreamKind::OpenAi);
            let a = assemble(&out);
            assert_eq!(a.content[&0], want, "delta split {k}, write cut {cut:?}");
            assert!(a.saw_done);
            assert_eq!(counts.restored.get("email"), Some(&1));
            assert!(counts.masked.is_empty());
        }
    }
    // A token in one delta per byte.
    let bytes: Vec<String> = text.chars().map(String::from).collect();
    let parts: Vec<&str> = bytes.iter().map(String::as_str).collect();
    let (out, _, _) = run_stages(&stages, chat_stream(&parts).as_bytes(), &[]);
    assert_eq!(assemble(&out).content[&0], want);
}

#[test]
fn restored_values_are_escaped_in_tool_arguments_and_done_events() {
    let tokens = request_tokens(&format!("{EMAIL} +1 415 555 2671"));
    let stages = [Stage::Restore(&tokens)];
    let args = r#"{"to":"<EMAIL_1>","tel":"<PHONE_2>"}"#;
    for k in 0..=args.len() {
        let call = |a: &str| json!({"index": 0, "function": {"arguments": a}});
        let mut body = chunk(
            0,
            json!({"role":"assistant","tool_calls":[call(&args[..k])]}),
            None,
        );
        body.push_str(&chunk(0, json!({"tool_calls":[call(&args[k..])]}), None));
        body.push_str(&chunk(0, json!({}), Some("tool_calls")));
        body.push_str("data: [DONE]\n\n");
        let (out, counts, _) = run_stages(&stages, body.as_bytes(), &[]);
        let a = assemble(&out);
        let v: Value = serde_json::from_str(&a.tools[&(0, 0)]).unwrap();
        assert_eq!(
            v,
            json!({"to": EMAIL, "tel": "+1 415 555 2671"}),
            "split {k}"
        );
        assert_eq!(counts.restored.get("email"), Some(&1));
    }
    // Responses API: deltas restored, and the full texts of `.done` and
    // `response.completed` too.
    let full = "Mail <EMAIL_1> now";
    for k in 0..=full.len() {
        let body = responses_stream(&[&full[..k], &full[k..]], full);
        let (out, counts, _) = run_stages(&stages, body.as_bytes(), &[body.len() / 3]);
        let a = assemble(&out);
        let want = format!("Mail {EMAIL} now");
        assert_eq!(a.responses["response.output_text/0/0"], want, "split {k}");
        assert_eq!(a.done_texts, vec![want.clone()]);
        assert!(!String::from_utf8_lossy(&out).contains("<EMAIL_1>"));
        assert_eq!(counts.restored.get("email"), Some(&3));
    }
}

#[test]
fn restoring_comes_first_and_the_response_masks_still_win() {
    let tokens = request_tokens(EMAIL);
    let emails = masker(r#"{"detectors":["email"]}"#);
    let stages = [Stage::Restore(&tokens), Stage::Mask(&emails)];
    let body = chat_stream(&["to <EMA", "IL_1> and <EMAIL_7>"]);
    let (out, counts, _) = run_stages(&stages, body.as_bytes(), &[]);
    assert_eq!(
        assemble(&out).content[&0],
        "to [REDACTED:email] and <EMAIL_7>"
    );
    assert!(!String::from_utf8_lossy(&out).contains(EMAIL));
    assert_eq!(counts.restored.get("email"), Some(&1));
    assert_eq!(counts.masked.get("email"), Some(&1));
}
