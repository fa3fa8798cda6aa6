//! OpenAI streams: Chat Completions chunks and Responses API events.
//!
//! Each output's text is one logical stream across events, masked
//! incrementally; the events are rewritten so that every one stays valid SSE
//! and valid JSON of the same shape, and the texts the SDK assembles are the
//! masked texts. How deltas are rewritten:
//!
//! - **Chat Completions** (`choices[].delta`): per choice `index`, the
//!   `content`, `refusal`, `reasoning_content` and `reasoning` strings, and
//!   per tool call `index` its `function.arguments`, are each a stream. A
//!   delta's text is replaced by what may be emitted now: the held-back
//!   tail of earlier deltas that is now settled, plus the settled part of
//!   its own text; possibly `""` (the key stays, so the chunk keeps its
//!   shape). When a choice's `finish_reason` arrives, its streams are
//!   flushed into that same chunk's delta (a tool call's rest as a
//!   `tool_calls` entry with its `index`). Streams still open at `[DONE]`
//!   or at the end of the body are flushed as extra chunks (the last
//!   chunk's `id`, `model`, `created`, … with one choice and one delta)
//!   before `[DONE]`.
//! - **Responses** (`type: "response.….delta"` with a string `delta`): per
//!   event family (`response.output_text`, `response.function_call_arguments`,
//!   `response.refusal`, `response.reasoning_summary_text`, …) and
//!   `output_index`, `content_index`, `summary_index`, the `delta` is a
//!   stream, rewritten the same way. Before the family's `.done` event (and
//!   before `response.output_item.done` for that output, and before
//!   `response.completed`, `.failed`, `.incomplete` and `error`), the rest
//!   is sent as an extra delta event: a copy of the last delta event of that
//!   stream (same `sequence_number`) with the rest as its `delta`.
//! - **Everything else** in these events (ids, names, `usage`, the full
//!   texts of `.done` and `response.completed`, unknown fields) is masked as
//!   JSON, event by event: those values arrive whole.
//! - `logprobs` carry each token's text and bytes, which would spell out a
//!   masked value token by token: a non-empty `logprobs` is replaced by
//!   `null` (Chat) or `[]` (Responses). Fail closed: masking wins over
//!   log-probabilities.
//!
//! An event whose JSON is not rewritten is passed on byte for byte.

use std::collections::BTreeMap;

use serde_json::{Map, Value};

use super::events::{event_bytes, Event};
use super::{mask_whole, render_plain, Counts, Stage, TextChain};

/// Chat delta fields that carry output text.
const CHAT_TEXT: &[&str] = &["content", "refusal", "reasoning_content", "reasoning"];

/// The first data of a stream says it is OpenAI's.
pub(crate) fn is_openai(data: &[u8]) -> bool {
    if data.trim_ascii() == b"[DONE]" {
        return true;
    }
    let Ok(Value::Object(v)) = serde_json::from_slice::<Value>(data) else {
        return false;
    };
    v.get("choices").is_some_and(Value::is_array)
        || v.get("object")
            .and_then(Value::as_str)
            .is_some_and(|o| o.starts_with("chat.completion"))
        || v.get("type")
            .and_then(Value::as_str)
            .is_some_and(|t| t.starts_with("response."))
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Part {
    Field(&'static str),
    Tool(u64),
}

#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Chat {
        choice: u64,
        part: Part,
    },
    Responses {
        family: String,
        output: u64,
        content: u64,
        summary: u64,
    },
}

struct Output {
    text: TextChain,
    /// Responses: the last delta event of this stream (`event:` name, JSON).
    template: Option<(Option<Vec<u8>>, Value)>,
}

/// Every output stream of one response.
pub(crate) struct Outputs {
    window: usize,
    outputs: BTreeMap<Key, Output>,
    /// Chat: the last chunk's top-level fields (not `choices`, `usage`).
    chat_template: Map<String, Value>,
}

impl Outputs {
    pub(crate) fn new(window: usize) -> Outputs {
        Outputs {
            window,
            outputs: BTreeMap::new(),
            chat_template: Map::new(),
        }
    }

    /// One complete event in; the bytes to pass on for it (maybe more
    /// than one event: flushed rests come first).
    pub(crate) fn event(
        &mut self,
        stages: &[Stage<'_>],
        raw: &[u8],
        counts: &mut Counts,
    ) -> Vec<u8> {
        let ev = Event::parse(raw);
        let Some(data) = ev.data() else {
            return render_plain(stages, raw, counts);
        };
        if data.trim_ascii() == b"[DONE]" {
            let mut out = self.flush_all(stages);
            out.extend(render_plain(stages, raw, counts));
            return out;
        }
        let v = match serde_json::from_slice::<Value>(&data) {
            Ok(v @ Value::Object(_)) => v,
            // Not a JSON object: masked whole, as JSON or as text.
            Ok(_) => return whole(stages, &ev, raw, &data, "application/json", counts),
            Err(_) => return whole(stages, &ev, raw, &data, "text/plain", counts),
        };
        if v.get("choices").is_some_and(Value::is_array) {
            return self.chat(stages, &ev, raw, v, counts);
        }
        match v.get("type").and_then(Value::as_str).map(str::to_string) {
            Some(t) if t.starts_with("response.") || t == "error" => {
                self.responses(stages, &ev, raw, v, &t, counts)
            }
            _ => whole(stages, &ev, raw, &data, "application/json", counts),
        }
    }

    /// Every stream's rest, as extra events (end of the body, `[DONE]`).
    pub(crate) fn flush_all(&mut self, stages: &[Stage<'_>]) -> Vec<u8> {
        let keys: Vec<Key> = self.outputs.keys().cloned().collect();
        self.flush(stages, keys)
    }

    pub(crate) fn add_counts(&self, stages: &[Stage<'_>], into: &mut Counts) {
        for o in self.outputs.values() {
            o.text.add_counts(stages, into);
        }
    }

    pub(crate) fn pending(&self) -> usize {
        self.outputs.values().map(|o| o.text.pending()).sum()
    }

    fn output(&mut self, stages: &[Stage<'_>], key: Key) -> &mut Output {
        let window = self.window;
        // Tool-call arguments are JSON: a value restored into them is escaped.
        let json_escape = match &key {
            Key::Chat { part, .. } => matches!(part, Part::Tool(_)),
            Key::Responses { family, .. } => family.ends_with("_arguments"),
        };
        self.outputs.entry(key).or_insert_with(|| Output {
            text: TextChain::new(stages, window, json_escape),
            template: None,
        })
    }

    /// Pushes `text` into `key`'s stream; what may go out now.
    fn push(&mut self, stages: &[Stage<'_>], key: Key, text: &str) -> String {
        let out = self.output(stages, key).text.push(stages, text.as_bytes());
        String::from_utf8_lossy(&out).into_owned()
    }

    /// The rest of `key`'s stream.
    fn rest(&mut self, stages: &[Stage<'_>], key: &Key) -> String {
        match self.outputs.get_mut(key) {
            Some(o) => String::from_utf8_lossy(&o.text.finish(stages)).into_owned(),
            None => String::new(),
        }
    }

    /// The rests of `keys`' streams as extra events.
    fn flush(&mut self, stages: &[Stage<'_>], keys: Vec<Key>) -> Vec<u8> {
        let mut out = Vec::new();
        for key in keys {
            let rest = self.rest(stages, &key);
            if rest.is_empty() {
                continue;
            }
            let event = match &key {
                Key::Chat { choice, part } => {
                    let mut chunk = self.chat_template.clone();
                    chunk.insert(
                        "choices".into(),
                        Value::Array(vec![chat_choice(*choice, part, rest)]),
                    );
                    event_bytes(None, &json_bytes(&Value::Object(chunk)))
                }
                Key::Responses { .. } => {
                    let Some((name, mut v)) =
                        self.outputs.get(&key).and_then(|o| o.template.clone())
                    else {
                        continue;
                    };
                    if let Some(obj) = v.as_object_mut() {
                        obj.insert("delta".into(), Value::String(rest));
                    }
                    event_bytes(name.as_deref(), &json_bytes(&v))
                }
            };
            out.extend(event);
        }
        out
    }

    fn chat(
        &mut self,
        stages: &[Stage<'_>],
        ev: &Event<'_>,
        raw: &[u8],
        mut v: Value,
        counts: &mut Counts,
    ) -> Vec<u8> {
        let mut changed = false;
        // Take the texts out: (choice position, slot, key, text).
        let mut texts: Vec<(usize, Slot, Key, String)> = Vec::new();
        let mut finished: Vec<(usize, u64)> = Vec::new();
        if let Some(choices) = v.get_mut("choices").and_then(Value::as_array_mut) {
            for (pos, c) in choices.iter_mut().enumerate() {
                let idx = c.get("index").and_then(Value::as_u64).unwrap_or(pos as u64);
                if let Some(delta) = c.get_mut("delta") {
                    for field in CHAT_TEXT {
                        if let Some(Value::String(s)) = delta.get_mut(*field) {
                            let key = Key::Chat {
                                choice: idx,
                                part: Part::Field(field),
                            };
                            texts.push((pos, Slot::Field(field), key, std::mem::take(s)));
                        }
                    }
                    if let Some(calls) = delta.get_mut("tool_calls").and_then(Value::as_array_mut) {
                        for (tpos, call) in calls.iter_mut().enumerate() {
                            let t = call
                                .get("index")
                                .and_then(Value::as_u64)
                                .unwrap_or(tpos as u64);
                            if let Some(Value::String(s)) = call.pointer_mut("/function/arguments")
                            {
                                let key = Key::Chat {
                                    choice: idx,
                                    part: Part::Tool(t),
                                };
                                texts.push((pos, Slot::Tool(tpos), key, std::mem::take(s)));
                            }
                        }
                    }
                }
                if let Some(lp) = c.get_mut("logprobs") {
                    if !lp.is_null() {
                        *lp = Value::Null;
                        changed = true;
                    }
                }
                if c.get("finish_reason").is_some_and(|f| !f.is_null()) {
                    finished.push((pos, idx));
                }
            }
        }
        // The rest of the chunk, masked as JSON on its own.
        if let Some(masked) = mask_whole(stages, "application/json", &json_bytes(&v), counts) {
            if let Ok(m) = serde_json::from_slice::<Value>(&masked) {
                v = m;
                changed = true;
            }
        }
        if let Some(obj) = v.as_object() {
            self.chat_template = obj
                .iter()
                .filter(|(k, _)| *k != "choices" && *k != "usage")
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect();
        }
        for (pos, slot, key, text) in texts {
            let out = self.push(stages, key, &text);
            changed |= out != text;
            set_slot(&mut v, pos, &slot, out);
        }
        for (pos, idx) in finished {
            let keys: Vec<Key> = self
                .outputs
                .keys()
                .filter(|k| matches!(k, Key::Chat { choice, .. } if *choice == idx))
                .cloned()
                .collect();
            for key in keys {
                let rest = self.rest(stages, &key);
                if rest.is_empty() {
                    continue;
                }
                changed = true;
                if let Key::Chat { part, .. } = &key {
                    append_rest(&mut v, pos, part, rest);
                }
            }
        }
        if !changed {
            return raw.to_vec();
        }
        render(stages, ev, &json_bytes(&v), counts)
    }

    fn responses(
        &mut self,
        stages: &[Stage<'_>],
        ev: &Event<'_>,
        raw: &[u8],
        mut v: Value,
        t: &str,
        counts: &mut Counts,
    ) -> Vec<u8> {
        let index = |v: &Value, name: &str| v.get(name).and_then(Value::as_u64).unwrap_or(0);
        let (output, content, summary) = (
            index(&v, "output_index"),
            index(&v, "content_index"),
            index(&v, "summary_index"),
        );
        if let (Some(family), Some(Value::String(_))) = (t.strip_suffix(".delta"), v.get("delta")) {
            let key = Key::Responses {
                family: family.to_string(),
                output,
                content,
                summary,
            };
            let text = match v.get_mut("delta") {
                Some(Value::String(s)) => std::mem::take(s),
                _ => String::new(),
            };
            let mut changed = false;
            if let Some(lp) = v.get_mut("logprobs") {
                if lp.as_array().is_some_and(|a| !a.is_empty()) || lp.is_object() {
                    *lp = Value::Array(Vec::new());
                    changed = true;
                }
            }
            if let Some(masked) = mask_whole(stages, "application/json", &json_bytes(&v), counts) {
                if let Ok(m) = serde_json::from_slice::<Value>(&masked) {
                    v = m;
                    changed = true;
                }
            }
            let name = ev.name().map(<[u8]>::to_vec);
            self.output(stages, key.clone()).template = Some((name, v.clone()));
            let out = self.push(stages, key, &text);
            changed |= out != text;
            if let Some(obj) = v.as_object_mut() {
                obj.insert("delta".into(), Value::String(out));
            }
            if !changed {
                return raw.to_vec();
            }
            return render(stages, ev, &json_bytes(&v), counts);
        }
        // Streams this event closes: their rests go out first.
        let closes: Vec<Key> = self
            .outputs
            .keys()
            .filter(|k| match k {
                Key::Responses {
                    family,
                    output: o,
                    content: c,
                    summary: s,
                } => match t.strip_suffix(".done") {
                    _ if matches!(
                        t,
                        "response.completed" | "response.failed" | "response.incomplete" | "error"
                    ) =>
                    {
                        true
                    }
                    _ if t == "response.output_item.done" => *o == output,
                    Some(f) => f == family && *o == output && *c == content && *s == summary,
                    None => false,
                },
                Key::Chat { .. } => false,
            })
            .cloned()
            .collect();
        let mut out = self.flush(stages, closes);
        let data = ev.data().unwrap_or_default();
        out.extend(whole(stages, ev, raw, &data, "application/json", counts));
        out
    }
}

/// Where a chat text sits in its choice.
enum Slot {
    Field(&'static str),
    Tool(usize),
}

fn set_slot(v: &mut Value, pos: usize, slot: &Slot, text: String) {
    let Some(delta) = v
        .get_mut("choices")
        .and_then(|c| c.get_mut(pos))
        .and_then(|c| c.get_mut("delta"))
    else {
        return;
    };
    let target = match slot {
        Slot::Field(f) => delta.get_mut(*f),
        Slot::Tool(t) => delta
            .get_mut("tool_calls")
            .and_then(|c| c.get_mut(*t))
            .and_then(|c| c.pointer_mut("/function/arguments")),
    };
    if let Some(target) = target {
        *target = Value::String(text);
    }
}

/// Adds a flushed rest to choice `pos`'s delta in this chunk.
fn append_rest(v: &mut Value, pos: usize, part: &Part, rest: String) {
    let Some(choice) = v
        .get_mut("choices")
        .and_then(|c| c.get_mut(pos))
        .and_then(Value::as_object_mut)
    else {
        return;
    };
    let delta = choice
        .entry("delta")
        .or_insert_with(|| Value::Object(Map::new()));
    if !delta.is_object() {
        *delta = Value::Object(Map::new());
    }
    let Some(delta) = delta.as_object_mut() else {
        return;
    };
    match part {
        Part::Field(f) => {
            let before = delta.get(*f).and_then(Value::as_str).unwrap_or("");
            let joined = format!("{before}{rest}");
            delta.insert((*f).to_string(), Value::String(joined));
        }
        Part::Tool(t) => {
            let calls = delta
                .entry("tool_calls")
                .or_insert_with(|| Value::Array(Vec::new()));
            if !calls.is_array() {
                *calls = Value::Array(Vec::new());
            }
            let Some(calls) = calls.as_array_mut() else {
                return;
            };
            let existing = calls
                .iter_mut()
                .find(|c| c.get("index").and_then(Value::as_u64) == Some(*t));
            match existing {
                Some(call) => {
                    let before = call
                        .pointer("/function/arguments")
                        .and_then(Value::as_str)
                        .unwrap_or("")
                        .to_string();
                    if let Some(obj) = call.as_object_mut() {
                        let f = obj
                            .entry("function")
                            .or_insert_with(|| Value::Object(Map::new()));
                        if let Some(f) = f.as_object_mut() {
                            f.insert("arguments".into(), Value::String(before + &rest));
                        }
                    }
                }
                None => calls.push(tool_delta(*t, rest)),
            }
        }
    }
}

fn tool_delta(t: u64, arguments: String) -> Value {
    let mut function = Map::new();
    function.insert("arguments".into(), Value::String(arguments));
    let mut call = Map::new();
    call.insert("index".into(), Value::from(t));
    call.insert("function".into(), Value::Object(function));
    Value::Object(call)
}

/// A choice carrying only a flushed rest.
fn chat_choice(choice: u64, part: &Part, rest: String) -> Value {
    let mut delta = Map::new();
    match part {
        Part::Field(f) => {
            delta.insert((*f).to_string(), Value::String(rest));
        }
        Part::Tool(t) => {
            delta.insert(
                "tool_calls".into(),
                Value::Array(vec![tool_delta(*t, rest)]),
            );
        }
    }
    let mut c = Map::new();
    c.insert("index".into(), Value::from(choice));
    c.insert("delta".into(), Value::Object(delta));
    c.insert("finish_reason".into(), Value::Null);
    Value::Object(c)
}

fn json_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).unwrap_or_default()
}

/// An event whose data is masked whole (`content_type` says how); the raw
/// bytes if nothing was masked.
fn whole(
    stages: &[Stage<'_>],
    ev: &Event<'_>,
    raw: &[u8],
    data: &[u8],
    content_type: &str,
    counts: &mut Counts,
) -> Vec<u8> {
    match mask_whole(stages, content_type, data, counts) {
        Some(masked) => render(stages, ev, &masked, counts),
        None => render_plain(stages, raw, counts),
    }
}

/// `ev` with `data`, its comments masked as text.
fn render(stages: &[Stage<'_>], ev: &Event<'_>, data: &[u8], counts: &mut Counts) -> Vec<u8> {
    ev.render(data, |c| {
        mask_whole(stages, "text/plain", c, counts).unwrap_or_else(|| c.to_vec())
    })
}
