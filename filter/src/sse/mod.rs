//! Masking a response body as it streams (`text/event-stream`), without
//! buffering it whole and without ever passing on part of a value.
//!
//! The host creates a [`ResponseStream`] when the response headers say SSE,
//! feeds it each body chunk ([`ResponseStream::push`]) and passes on what it
//! returns instead of the chunk, then calls [`ResponseStream::finish`] at the
//! end of the stream. Every call takes the response's masking profiles, in
//! order (a value masked by the first is seen masked by the next).
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

use crate::mask::{Masker, StreamState, DEFAULT_WINDOW};
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

/// One text masked by several profiles in turn.
pub(crate) struct TextChain {
    states: Vec<StreamState>,
}

impl TextChain {
    pub(crate) fn new(maskers: &[&Masker], window: usize) -> TextChain {
        TextChain {
            states: maskers
                .iter()
                .map(|m| StreamState::new(m, window))
                .collect(),
        }
    }

    pub(crate) fn push(&mut self, maskers: &[&Masker], chunk: &[u8]) -> Vec<u8> {
        let mut data = chunk.to_vec();
        for (s, m) in self.states.iter_mut().zip(maskers) {
            data = s.push(m, &data);
        }
        data
    }

    pub(crate) fn finish(&mut self, maskers: &[&Masker]) -> Vec<u8> {
        let mut carry = Vec::new();
        for (s, m) in self.states.iter_mut().zip(maskers) {
            let mut out = s.push(m, &carry);
            out.extend(s.finish(m));
            carry = out;
        }
        carry
    }

    pub(crate) fn add_counts(&self, maskers: &[&Masker], into: &mut BTreeMap<String, u32>) {
        for (s, m) in self.states.iter().zip(maskers) {
            for (k, n) in s.counts(m) {
                *into.entry(k).or_insert(0) += n;
            }
        }
    }

    /// Bytes held back by the first profile (the others hold less).
    pub(crate) fn pending(&self) -> usize {
        self.states.iter().map(StreamState::pending).sum()
    }
}

/// Masks one whole piece (a complete JSON event, a comment) with every
/// profile; `None` if unchanged. Counts go to `counts`.
pub(crate) fn mask_whole(
    maskers: &[&Masker],
    content_type: &str,
    body: &[u8],
    counts: &mut BTreeMap<String, u32>,
) -> Option<Vec<u8>> {
    let mut current: Option<Vec<u8>> = None;
    for m in maskers {
        let out = m.mask(Some(content_type), current.as_deref().unwrap_or(body));
        for (k, n) in out.counts {
            *counts.entry(k).or_insert(0) += n;
        }
        if out.body.is_some() {
            current = out.body;
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
    /// Counts of values masked whole (events, comments).
    counts: BTreeMap<String, u32>,
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
            counts: BTreeMap::new(),
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
    pub fn push(&mut self, maskers: &[&Masker], chunk: &[u8]) -> Result<Vec<u8>, StreamError> {
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
            out.extend(text.push(maskers, chunk));
            return Ok(out);
        }
        let events = self.splitter.push(chunk);
        for (i, raw) in events.iter().enumerate() {
            if let Mode::Undecided = self.mode {
                self.decide(maskers, raw);
            }
            match &mut self.mode {
                Mode::OpenAi(outputs) => {
                    out.extend(outputs.event(maskers, raw, &mut self.counts));
                }
                Mode::Text(text) => {
                    // This and every later byte go through the text masker.
                    for r in events.iter().skip(i) {
                        out.extend(text.push(maskers, r));
                    }
                    let rest = self.splitter.take_rest();
                    out.extend(text.push(maskers, &rest));
                    return Ok(out);
                }
                Mode::Undecided => {
                    // No data yet (comments, `retry:`): mask comments, pass on.
                    out.extend(render_plain(maskers, raw, &mut self.counts));
                }
            }
        }
        if self.splitter.pending() > self.max_event {
            return Err(StreamError::EventTooLarge(self.splitter.pending()));
        }
        Ok(out)
    }

    /// The end of the body: everything still held, masked.
    pub fn finish(&mut self, maskers: &[&Masker]) -> Vec<u8> {
        let rest = self.splitter.take_rest();
        if let Mode::Undecided = self.mode {
            self.decide(maskers, &rest);
        }
        match &mut self.mode {
            Mode::Text(text) => {
                let mut out = text.push(maskers, &rest);
                out.extend(text.finish(maskers));
                out
            }
            Mode::OpenAi(outputs) => {
                let mut out = Vec::new();
                if !rest.is_empty() {
                    out.extend(outputs.event(maskers, &rest, &mut self.counts));
                }
                out.extend(outputs.flush_all(maskers));
                out
            }
            Mode::Undecided => {
                // An unterminated tail that never became an event: as text.
                let mut text = TextChain::new(maskers, self.window);
                let mut out = text.push(maskers, &rest);
                out.extend(text.finish(maskers));
                text.add_counts(maskers, &mut self.counts);
                out
            }
        }
    }

    /// Values masked so far, by detector.
    pub fn counts(&self, maskers: &[&Masker]) -> BTreeMap<String, u32> {
        let mut all = self.counts.clone();
        match &self.mode {
            Mode::OpenAi(outputs) => outputs.add_counts(maskers, &mut all),
            Mode::Text(text) => text.add_counts(maskers, &mut all),
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
    fn decide(&mut self, maskers: &[&Masker], raw: &[u8]) {
        let Some(data) = Event::parse(raw).data() else {
            return;
        };
        self.mode = if openai::is_openai(&data) {
            Mode::OpenAi(Outputs::new(self.window))
        } else {
            Mode::Text(TextChain::new(maskers, self.window))
        };
    }
}

/// An event with no data: comments masked as text, the rest unchanged.
pub(crate) fn render_plain(
    maskers: &[&Masker],
    raw: &[u8],
    counts: &mut BTreeMap<String, u32>,
) -> Vec<u8> {
    let ev = Event::parse(raw);
    let mut changed = false;
    let mut out = Vec::with_capacity(raw.len());
    for l in &ev.lines {
        let (prefix, text): (&[u8], &[u8]) = match l {
            events::Line::Comment(c) => match mask_whole(maskers, "text/plain", c, counts) {
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
