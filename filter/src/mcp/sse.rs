//! `tools/list` answers framed as server-sent events (MCP Streamable HTTP
//! may answer a POST with `text/event-stream`). Events are cut at their
//! blank line and each event's `data` is filtered like a JSON answer; the
//! bytes of an event are held only until it is complete.

use super::{filter_answer, Caller, McpPolicy, PinMismatch};
use crate::rules::Rules;

/// Why a stream cannot go on.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum StreamError {
    /// An event grew past the limit without ending.
    EventTooLarge,
    Pin(PinMismatch),
}

#[derive(Debug, Default)]
pub struct ToolsStream {
    pending: Vec<u8>,
    max_event: usize,
    pub hidden: Vec<String>,
}

impl ToolsStream {
    pub fn new(max_event: usize) -> ToolsStream {
        ToolsStream {
            max_event,
            ..ToolsStream::default()
        }
    }

    /// The bytes to pass on for `chunk`: every event completed by it,
    /// filtered. `end`: the stream ends here (what is held goes out as is).
    pub fn push(
        &mut self,
        policy: &McpPolicy,
        rules: &Rules,
        caller: &Caller,
        chunk: &[u8],
        end: bool,
    ) -> Result<Vec<u8>, StreamError> {
        self.pending.extend_from_slice(chunk);
        let mut out = Vec::new();
        while let Some(cut) = event_end(&self.pending) {
            let event: Vec<u8> = self.pending.drain(..cut).collect();
            out.extend(self.filter_event(policy, rules, caller, &event)?);
        }
        if end {
            let rest = std::mem::take(&mut self.pending);
            out.extend(self.filter_event(policy, rules, caller, &rest)?);
        } else if self.pending.len() > self.max_event {
            return Err(StreamError::EventTooLarge);
        }
        Ok(out)
    }

    fn filter_event(
        &mut self,
        policy: &McpPolicy,
        rules: &Rules,
        caller: &Caller,
        event: &[u8],
    ) -> Result<Vec<u8>, StreamError> {
        let text = String::from_utf8_lossy(event);
        let mut data = Vec::new();
        let mut other = Vec::new();
        for line in text.lines() {
            match line.strip_prefix("data:") {
                Some(d) => data.push(d.strip_prefix(' ').unwrap_or(d)),
                None if !line.is_empty() => other.push(line),
                None => {}
            }
        }
        if data.is_empty() {
            return Ok(event.to_vec());
        }
        let joined = data.join("\n");
        let filtered =
            filter_answer(policy, rules, caller, joined.as_bytes()).map_err(StreamError::Pin)?;
        let Some(body) = filtered.body else {
            return Ok(event.to_vec());
        };
        self.hidden.extend(filtered.hidden);
        let mut out = String::new();
        for l in other {
            out.push_str(l);
            out.push('\n');
        }
        out.push_str("data: ");
        out.push_str(&String::from_utf8_lossy(&body));
        out.push_str("\n\n");
        Ok(out.into_bytes())
    }
}

/// Where the first complete event ends (after its blank line).
fn event_end(b: &[u8]) -> Option<usize> {
    let lf = b.windows(2).position(|w| w == b"\n\n").map(|i| i + 2);
    let crlf = b.windows(4).position(|w| w == b"\r\n\r\n").map(|i| i + 4);
    match (lf, crlf) {
        (Some(a), Some(c)) => Some(a.min(c)),
        (a, c) => a.or(c),
    }
}
