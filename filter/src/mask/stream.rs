//! Incremental masking of a text stream (`text/event-stream` and other
//! bodies the host passes on chunk by chunk instead of buffering).
//!
//! Each chunk is appended to a buffer and everything up to `window` bytes
//! before its end is emitted, masked. The held-back tail is where a value
//! could still be cut by the chunk boundary; a value found across the cut
//! pulls the cut back to its start, so a value is never emitted in part.
//! The last `CONTEXT` emitted bytes stay as look-behind (for `password=`
//! before a value, word boundaries, the digit group before a number).
//!
//! The bound: a value is masked as in one piece only if it is at most
//! `window` bytes (a PEM private key in the stream needs a window of a few
//! KiB; 4 KiB, the default, covers RSA-2048 keys); a longer one that is still
//! growing at the cut is held until it ends, so memory is bounded by the
//! host's body limit. The masked output equals that of masking the whole
//! text at once (the property test splits planted values at every offset).
//!
//! SSE caveat: a value that an LLM streams as several `data:` events (a
//! token per event, inside JSON) is not reassembled here.

use std::collections::BTreeMap;

use super::scan::Hit;
use super::Masker;

/// Look-behind kept after emitting, for patterns whose match starts before
/// the value (`aws_secret_access_key = ...`) and for the checks' context.
const CONTEXT: usize = 256;

/// The default held-back tail.
pub const DEFAULT_WINDOW: usize = 4096;

pub struct StreamMasker<'m> {
    masker: &'m Masker,
    window: usize,
    /// Emitted context, then the pending bytes.
    buf: Vec<u8>,
    /// `buf[..emitted]` has been emitted.
    emitted: usize,
    counts: Vec<u32>,
    hits: Vec<Hit>,
}

impl<'m> StreamMasker<'m> {
    /// `window`: the held-back tail, at least 64 bytes.
    pub fn new(masker: &'m Masker, window: usize) -> Self {
        StreamMasker {
            masker,
            window: window.max(64),
            buf: Vec::new(),
            emitted: 0,
            counts: vec![0; masker.labels.len()],
            hits: Vec::new(),
        }
    }

    /// Takes the next chunk; returns the bytes that can be passed on now.
    pub fn push(&mut self, chunk: &[u8]) -> Vec<u8> {
        self.buf.extend_from_slice(chunk);
        let cut = self.buf.len().saturating_sub(self.window);
        self.emit_until(cut)
    }

    /// The end of the stream: the rest, masked, and the counts for the audit.
    pub fn finish(mut self) -> (Vec<u8>, BTreeMap<String, u32>) {
        let out = self.emit_until(self.buf.len());
        (out, self.masker.named_counts(&self.counts))
    }

    /// Bytes held back, not yet emitted.
    pub fn pending(&self) -> usize {
        self.buf.len() - self.emitted
    }

    fn emit_until(&mut self, cut: usize) -> Vec<u8> {
        if cut <= self.emitted {
            return Vec::new();
        }
        self.hits.clear();
        self.masker.scanner.scan(&self.buf, &mut self.hits);
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
            out.extend(self.masker.whole(h.label, value, &mut self.counts));
            copied = h.end;
        }
        out.extend_from_slice(self.buf.get(copied..cut).unwrap_or_default());
        let keep_from = cut.saturating_sub(CONTEXT);
        self.buf.drain(..keep_from);
        self.emitted = copied.max(cut) - keep_from;
        out
    }
}
