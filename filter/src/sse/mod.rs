//! Masking a response body as it streams (`text/event-stream`), without
//! buffering it whole and without ever passing on part of a value.
//!
//! The host creates a [`ResponseStream`] when the response headers say SSE,
//! feeds it each body chunk ([`ResponseStream::push`]) and passes on what it
//! returns instead of the chunk, then calls [`ResponseStream::finish`] at the
//! end of the stream. Every call takes the response's [`Stage`]s, in order:
//! the request's tokens restored first (`tokenize`, [`crate::mask::tokens`]),
//! then each masking profile (a value masked by the first is seen masked by
//! the next; a restored value a profile finds is masked: the response policy
//! wins).
//!
//! ## Two modes, chosen at the first event that has data
//!
//! - **OpenAI** ([`openai`]): the first data is `[DONE]` or JSON shaped like
//!   a Chat Completions chunk (`choices`, `chat.completion.chunk`) or a
//!   Responses API event (`type: "response.…"`). Events are parsed one by
//!   one; the text of each output (a choice's `delta.content`, `refusal`,
//!   each tool call's `function.arguments`; a Responses item's
//!   `*.delta` text) is reassembled into one logical text per output across
//!   events and masked incrementally ([`crate::mask::StreamState`]), so a
//!   value split across deltas, events and TCP writes is caught. Every
//!   other part of each event is masked as JSON on its own (complete values:
//!   `*.done` events, `response.completed`). See [`openai`] for how deltas
//!   are rewritten.
//! - **Text**: any other event stream. The raw bytes go through the
//!   incremental text masker as they are: values inside one event, or split
//!   across events as plain text, are masked; a value split across two JSON
//!   events of an unknown shape is not reassembled (its JSON framing sits
//!   between the halves). A policy choice: unknown shapes are scanned as
//!   text, never passed on unscanned.
//!
//! ## What is held back, and time to first token
//!
//! Per output, only the tail from the first offset where a value could
//! still be in progress (in prose, the last word or number; see
//! [`crate::mask::stream`]), never more than `window` bytes
//! ([`crate::mask::DEFAULT_WINDOW`], 4 KiB) except a value already found
//! that is still growing. Each event is held until its terminating empty
//! line arrives (OpenAI sends each event in one write). So the first visible
//! token is typically delayed by one inter-token gap (the next delta shows
//! where the first word ends), never by more than the time to stream
//! `window` bytes of one output. `docs/streaming.md` has the figures.

pub(crate) mod events;
pub(crate) mod openai;

use std::collections::BTreeMap;

use crate::mask::{Masker, RestoreStream, StreamState, Tokens, DEFAULT_WINDOW};
use events::{Event, Splitter};
use openai::Outputs;

/// The stream cannot be masked safely: the host must abort it (the headers
/// have gone, so this is a reset, never a pass-through).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamError {
    /// An event grew past the limit without ending.
    EventTooLarge(usize),
}

/// How the stream is read (for the audit record).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum StreamKind {
    /// No event with data yet.
    Undecided,
    OpenAi,
    Text,
}

impl StreamKind {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamKind::Undecided => "sse",
            StreamKind::OpenAi => "sse_openai",
            StreamKind::Text => "sse_text",
        }
    }
}

/// One step of a streamed response, in order: restoring the request's
/// tokens, then masking with a profile.
#[derive(Clone, Copy)]
pub enum Stage<'a> {
    Restore(&'a Tokens),
    Mask(&'a Masker),
}

/// What a stream did, for the audit: values masked and restored, by label.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counts {
    pub masked: BTreeMap<String, u32>,
    pub restored: BTreeMap<String, u32>,
}

/// One stage's state on one text.
enum StageState {
    Restore(RestoreStream),
    Mask(StreamState),
}

/// One text through every stage in turn.
pub(crate) struct TextChain {
    states: Vec<StageState>,
}

impl TextChain {
    /// `json_escape`: the text is the inside of a JSON string (tool-call
    /// arguments), so restored values are escaped.
    pub(crate) fn new(stages: &[Stage<'_>], window: usize, json_escape: bool) -> TextChain {
        TextChain {
            states: stages
                .iter()
                .map(|s| match s {
                    Stage::Restore(_) => StageState::Restore(RestoreStream::new(json_escape)),
                    Stage::Mask(m) => StageState::Mask(StreamState::new(m, window)),
                })
                .collect(),
        }
    }

    pub(crate) fn push(&mut self, stages: &[Stage<'_>], chunk: &[u8]) -> Vec<u8> {
        let mut data = chunk.to_vec();
        for (s, stage) in self.states.iter_mut().zip(stages) {
            data = match (s, stage) {
                (StageState::Restore(r), Stage::Restore(t)) => r.push(t, &data),
                (StageState::Mask(s), Stage::Mask(m)) => s.push(m, &data),
                // The states are built from the same stages.
                _ => data,
            };
        }
        data
    }

    pub(crate) fn finish(&mut self, stages: &[Stage<'_>]) -> Vec<u8> {
        let mut carry = Vec::new();
        for (s, stage) in self.states.iter_mut().zip(stages) {
            carry = match (s, stage) {
                (StageState::Restore(r), Stage::Restore(t)) => {
                    let mut out = r.push(t, &carry);
                    out.extend(r.finish(t));
                    out
                }
                (StageState::Mask(s), Stage::Mask(m)) => {
                    let mut out = s.push(m, &carry);
                    out.extend(s.finish(m));
                    out
                }
                _ => carry,
            };
        }
        carry
    }

    pub(crate) fn add_counts(&self, stages: &[Stage<'_>], into: &mut Counts) {
        for (s, stage) in self.states.iter().zip(stages) {
            match (s, stage) {
                (StageState::Restore(r), _) => add(&mut into.restored, r.restored()),
                (StageState::Mask(s), Stage::Mask(m)) => add(&mut into.masked, &s.counts(m)),
                _ => {}
            }
        }
    }

    /// Bytes held back by every stage.
    pub(crate) fn pending(&self) -> usize {
        self.states
            .iter()
            .map(|s| match s {
                StageState::Restore(r) => r.pending(),
                StageState::Mask(s) => s.pending(),
            })
            .sum()
    }
}

fn add(into: &mut BTreeMap<String, u32>, counts: &BTreeMap<String, u32>) {
    for (k, n) in counts {
        *into.entry(k.clone()).or_insert(0) += n;
    }
}

/// Puts one whole piece (a complete JSON event, a comment) through every
/// stage; `None` if unchanged. Counts go to `counts`.
pub(crate) fn mask_whole(
    stages: &[Stage<'_>],
    content_type: &str,
    body: &[u8],
    counts: &mut Counts,
) -> Option<Vec<u8>> {
    let mut current: Option<Vec<u8>> = None;
    for stage in stages {
        let input = current.as_deref().unwrap_or(body);
        let out = match stage {
            Stage::Restore(t) => t.restore(Some(content_type), input, &mut counts.restored),
            Stage::Mask(m) => {
                let out = m.mask(Some(content_type), input);
                add(&mut counts.masked, &out.counts);
                out.body
            }
        };
        if out.is_some() {
            current = out;
        }
    }
    current
}

enum Mode {
    Undecided,
    OpenAi(Outputs),
    Text(TextChain),
}

/// A `text/event-stream` response body being masked. See the module docs.
pub struct ResponseStream {
    mode: Mode,
    splitter: Splitter,
    window: usize,
    max_event: usize,
    /// Counts of values masked or restored whole (events, comments).
    counts: Counts,
    /// A UTF-8 byte order mark at the start has been dealt with.
    started: bool,
}

impl std::fmt::Debug for ResponseStream {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ResponseStream")
            .field("kind", &self.kind())
            .field("pending", &self.pending())
            .finish()
    }
}

impl ResponseStream {
    /// `max_event`: the largest event held while incomplete (the policy's
    /// body limit); past it the stream fails ([`StreamError`]).
    pub fn new(max_event: usize) -> ResponseStream {
        ResponseStream::with_window(max_event, DEFAULT_WINDOW)
    }

    pub fn with_window(max_event: usize, window: usize) -> ResponseStream {
        ResponseStream {
            mode: Mode::Undecided,
            splitter: Splitter::default(),
            window,
            max_event,
            counts: Counts::default(),
            started: false,
        }
    }

    pub fn kind(&self) -> StreamKind {
        match self.mode {
            Mode::Undecided => StreamKind::Undecided,
            Mode::OpenAi(_) => StreamKind::OpenAi,
            Mode::Text(_) => StreamKind::Text,
        }
    }

    /// Takes the next chunk of the body; returns what may be passed on now.
    pub fn push(&mut self, stages: &[Stage<'_>], chunk: &[u8]) -> Result<Vec<u8>, StreamError> {
        let mut out = Vec::new();
        let mut chunk = chunk;
        if !self.started && !chunk.is_empty() {
            self.started = true;
            if let Some(rest) = chunk.strip_prefix(b"\xEF\xBB\xBF") {
                out.extend_from_slice(b"\xEF\xBB\xBF");
                chunk = rest;
            }
        }
        if let Mode::Text(text) = &mut self.mode {
            out.extend(text.push(stages, chunk));
            return Ok(out);
        }
        let events = self.splitter.push(chunk);
        for (i, raw) in events.iter().enumerate() {
            if let Mode::Undecided = self.mode {
                self.decide(stages, raw);
            }
            match &mut self.mode {
                Mode::OpenAi(outputs) => {
                    out.extend(outputs.event(stages, raw, &mut self.counts));
                }
                Mode::Text(text) => {
                    // This and every later byte go through the text masker.
                    for r in events.iter().skip(i) {
                        out.extend(text.push(stages, r));
                    }
                    let rest = self.splitter.take_rest();
                    out.extend(text.push(stages, &rest));
                    return Ok(out);
                }
                Mode::Undecided => {
                    // No data yet (comments, `retry:`): mask comments, pass on.
                    out.extend(render_plain(stages, raw, &mut self.counts));
                }
            }
        }
        if self.splitter.pending() > self.max_event {
            return Err(StreamError::EventTooLarge(self.splitter.pending()));
        }
        Ok(out)
    }

    /// The end of the body: everything still held, masked.
    pub fn finish(&mut self, stages: &[Stage<'_>]) -> Vec<u8> {
        let rest = self.splitter.take_rest();
        if let Mode::Undecided = self.mode {
            self.decide(stages, &rest);
        }
        match &mut self.mode {
            Mode::Text(text) => {
                let mut out = text.push(stages, &rest);
                out.extend(text.finish(stages));
                out
            }
            Mode::OpenAi(outputs) => {
                let mut out = Vec::new();
                if !rest.is_empty() {
                    out.extend(outputs.event(stages, &rest, &mut self.counts));
                }
                out.extend(outputs.flush_all(stages));
                out
            }
            Mode::Undecided => {
                // An unterminated tail that never became an event: as text.
                let mut text = TextChain::new(stages, self.window, false);
                let mut out = text.push(stages, &rest);
                out.extend(text.finish(stages));
                text.add_counts(stages, &mut self.counts);
                out
            }
        }
    }

    /// Values masked and restored so far, by label.
    pub fn counts(&self, stages: &[Stage<'_>]) -> Counts {
        let mut all = self.counts.clone();
        match &self.mode {
            Mode::OpenAi(outputs) => outputs.add_counts(stages, &mut all),
            Mode::Text(text) => text.add_counts(stages, &mut all),
            Mode::Undecided => {}
        }
        all
    }

    /// Bytes received and not passed on yet.
    pub fn pending(&self) -> usize {
        self.splitter.pending()
            + match &self.mode {
                Mode::OpenAi(outputs) => outputs.pending(),
                Mode::Text(text) => text.pending(),
                Mode::Undecided => 0,
            }
    }

    /// Picks the mode from the first event that has data.
    fn decide(&mut self, stages: &[Stage<'_>], raw: &[u8]) {
        let Some(data) = Event::parse(raw).data() else {
            return;
        };
        self.mode = if openai::is_openai(&data) {
            Mode::OpenAi(Outputs::new(self.window))
        } else {
            Mode::Text(TextChain::new(stages, self.window, false))
        };
    }
}

/// An event with no data: comments masked as text, the rest unchanged.
pub(crate) fn render_plain(stages: &[Stage<'_>], raw: &[u8], counts: &mut Counts) -> Vec<u8> {
    let ev = Event::parse(raw);
    let mut changed = false;
    let mut out = Vec::with_capacity(raw.len());
    for l in &ev.lines {
        let (prefix, text): (&[u8], &[u8]) = match l {
            events::Line::Comment(c) => match mask_whole(stages, "text/plain", c, counts) {
                Some(m) => {
                    changed = true;
                    out.push(b':');
                    out.extend(m);
                    out.push(b'\n');
                    continue;
                }
                None => (b":", c),
            },
            events::Line::Data(d) => (b"data: ", d),
            events::Line::Other(o) => (b"", o),
        };
        out.extend_from_slice(prefix);
        out.extend_from_slice(text);
        out.push(b'\n');
    }
    out.push(b'\n');
    if changed {
        out
    } else {
        raw.to_vec()
    }
}

#[cfg(test)]
mod tests;
