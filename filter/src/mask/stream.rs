//! Incremental masking of a text stream (`text/event-stream` and other
//! bodies the host passes on chunk by chunk instead of buffering, and the
//! text of each streamed LLM output in [`crate::sse`]).
//!
//! Each chunk is appended to a buffer and everything that can no longer
//! become part of a value is emitted at once, masked. What is held back is
//! the tail from the first offset where a value may still be in progress:
//! some detector's pattern, anchored there, still matches a prefix of the
//! rest (a word may be the local part of an email, `+1 415` the start of a
//! phone number, `-----BEGIN` a private key), or ended less than two bytes
//! before the end (the checks read up to two bytes past a value: `7-1`).
//! In prose that is the last word or number: a delta is held until the next
//! one shows where the word ends.
//!
//! The bound: the held-back tail never exceeds `window` bytes, except for a
//! value already found that crosses the cut (it is held until it ends, so a
//! value is never emitted in part; memory is then bounded by the host). A
//! value is masked as in one piece only if it is at most `window` bytes (a
//! PEM private key needs a few KiB; 4 KiB, the default, covers RSA-2048).
//! The last `CONTEXT` emitted bytes stay as look-behind (for `password=`
//! before a value, word boundaries, the digit group before a number). The
//! masked output equals that of masking the whole text at once (the property
//! tests split planted values at every offset).
//!
//! This masks one text. SSE carrying JSON (LLM deltas) is parsed and each
//! output's text reassembled in [`crate::sse`], which runs one of these
//! per output.

use std::collections::BTreeMap;

use super::scan::Hit;
use super::{Masker, Tally};

/// Look-behind kept after emitting, for patterns whose match starts before
/// the value (`aws_secret_access_key = ...`) and for the checks' context.
const CONTEXT: usize = 256;

/// The default held-back tail.
pub const DEFAULT_WINDOW: usize = 4096;

/// A stream masker bound to its profile.
pub struct StreamMasker<'m> {
    masker: &'m Masker,
    state: StreamState,
}

impl<'m> StreamMasker<'m> {
    /// `window`: the most bytes held back, at least 64.
    pub fn new(masker: &'m Masker, window: usize) -> Self {
        StreamMasker {
            masker,
            state: StreamState::new(masker, window),
        }
    }

    /// Takes the next chunk; returns the bytes that can be passed on now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.state.push(self.masker, chunk)
    }

    /// The end of the stream: the rest, masked, and the counts for the audit.
    pub fn finish(mut self) -> (Vec<u8>, BTreeMap<String, u32>) {
        let out = self.state.finish(self.masker);
        (out, self.masker.named_counts(&self.state.counts.counts))
    }

    /// Bytes held back, not yet emitted.
    pub fn pending(&self) -> usize {
        self.state.pending()
    }
}

/// The state of one masked text stream, without a borrow of its profile (so
/// the host can keep it across callbacks): every call takes the same masker.
pub struct StreamState {
    window: usize,
    /// Emitted context, then the pending bytes.
    buf: Vec<u8>,
    /// `buf[..emitted]` has been emitted.
    emitted: usize,
    /// Offsets in `emitted..settled` can start no unsettled value.
    settled: usize,
    /// A response is never tokenised (the loader refuses it): the tally's
    /// tokens stay empty.
    counts: Tally,
    hits: Vec<Hit>,
}

impl StreamState {
    pub fn new(masker: &Masker, window: usize) -> Self {
        StreamState {
            window: window.max(64),
            buf: Vec::new(),
            emitted: 0,
            settled: 0,
            counts: Tally::new(masker, Default::default()),
            hits: Vec::new(),
        }
    }

    /// Takes the next chunk; returns the bytes that can be passed on now.
    pub fn push(&mut self, masker: &Masker, chunk: &[u8]) -> Vec<u8> {
        if chunk.is_empty() {
            return Vec::new();
        }
        self.buf.extend_from_slice(chunk);
        let from = self.settled.max(self.emitted);
        let open = masker.scanner.open_from(&self.buf, from);
        self.settled = open;
        let cut = open.max(self.buf.len().saturating_sub(self.window));
        self.emit_until(masker, cut)
    }

    /// The end of the stream: the rest, masked.
    pub fn finish(&mut self, masker: &Masker) -> Vec<u8> {
        self.emit_until(masker, self.buf.len())
    }

    /// Masked values so far, by detector name.
    pub fn counts(&self, masker: &Masker) -> BTreeMap<String, u32> {
        masker.named_counts(&self.counts.counts)
    }

    /// Bytes held back, not yet emitted.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.emitted
    }

    fn emit_until(&mut self, masker: &Masker, cut: usize) -> Vec<u8> {
        if cut <= self.emitted {
            return Vec::new();
        }
        self.hits.clear();
        masker.scanner.scan(&self.buf, &mut self.hits);
        let mut cut = cut;
        // Hits are ordered and disjoint: only one can cross the cut.
        if let Some(h) = self.hits.iter().find(|h| h.start < cut && h.end > cut) {
            cut = h.start;
        }
        while self.buf.get(cut).is_some_and(|b| b & 0xC0 == 0x80) && cut > self.emitted {
            cut -= 1;
        }
        if cut <= self.emitted {
            return Vec::new();
        }
        let mut out = Vec::with_capacity(cut - self.emitted);
        let mut copied = self.emitted;
        for h in self
            .hits
            .iter()
            .filter(|h| h.end > self.emitted && h.start < cut)
        {
            // A hit reaching back into emitted context (a value longer than
            // the window): mask what has not gone out yet.
            let start = h.start.max(copied);
            out.extend_from_slice(self.buf.get(copied..start).unwrap_or_default());
            let value = self.buf.get(h.start..h.end).unwrap_or_default();
            out.extend(masker.whole(h.label, value, &mut self.counts));
            copied = h.end;
        }
        out.extend_from_slice(self.buf.get(copied..cut).unwrap_or_default());
        let keep_from = cut.saturating_sub(CONTEXT);
        self.buf.drain(..keep_from);
        self.emitted = copied.max(cut) - keep_from;
        self.settled = self.settled.saturating_sub(keep_from);
        out
    }
}
