//! Server-sent events, incrementally: bytes in, complete events out.
//!
//! An event ends at an empty line; lines end with `\n`, `\r\n` or `\r`
//! (the WHATWG grammar). Events may be split across chunks at any byte: the
//! splitter keeps the incomplete tail until its end arrives. A lone `\r` at
//! the end of a chunk waits for the next byte (it may be half of `\r\n`).

/// Splits a byte stream into raw events (each with its terminating empty line).
#[derive(Debug, Default)]
pub(crate) struct Splitter {
    buf: Vec<u8>,
    /// Next byte to examine.
    pos: usize,
    /// Start of the current line.
    line_start: usize,
}

impl Splitter {
    /// Appends `chunk` and returns the events it completes, in order.
    pub(crate) fn push(&mut self, chunk: &[u8]) -> Vec<Vec<u8>> {
        self.buf.extend_from_slice(chunk);
        let mut events = Vec::new();
        while let Some(&b) = self.buf.get(self.pos) {
            let next = match b {
                b'\n' => self.pos + 1,
                b'\r' => match self.buf.get(self.pos + 1) {
                    Some(b'\n') => self.pos + 2,
                    Some(_) => self.pos + 1,
                    None => break,
                },
                _ => {
                    self.pos += 1;
                    continue;
                }
            };
            if self.pos == self.line_start {
                // An empty line: the event is complete.
                let rest = self.buf.split_off(next);
                events.push(std::mem::replace(&mut self.buf, rest));
                self.pos = 0;
                self.line_start = 0;
            } else {
                self.pos = next;
                self.line_start = next;
            }
        }
        events
    }

    /// The incomplete tail (at the end of the stream).
    pub(crate) fn take_rest(&mut self) -> Vec<u8> {
        self.pos = 0;
        self.line_start = 0;
        std::mem::take(&mut self.buf)
    }

    /// Bytes of the incomplete event held.
    pub(crate) fn pending(&self) -> usize {
        self.buf.len()
    }
}

/// One line of an event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum Line<'a> {
    /// `data: value` (one leading space dropped from the value).
    Data(&'a [u8]),
    /// `: comment`
    Comment(&'a [u8]),
    /// Any other field (`event`, `id`, `retry`, unknown ones): kept verbatim.
    Other(&'a [u8]),
}

/// A parsed event: its lines (without line endings), in order.
#[derive(Debug)]
pub(crate) struct Event<'a> {
    pub lines: Vec<Line<'a>>,
}

impl<'a> Event<'a> {
    /// Parses one raw event from [`Splitter::push`] (or an unterminated tail).
    pub(crate) fn parse(raw: &'a [u8]) -> Event<'a> {
        let mut lines = Vec::new();
        let mut rest = raw;
        while !rest.is_empty() {
            let end = rest
                .iter()
                .position(|&b| b == b'\n' || b == b'\r')
                .unwrap_or(rest.len());
            let line = rest.get(..end).unwrap_or_default();
            let mut skip = end + 1;
            if rest.get(end) == Some(&b'\r') && rest.get(end + 1) == Some(&b'\n') {
                skip += 1;
            }
            rest = rest.get(skip..).unwrap_or_default();
            if line.is_empty() {
                continue;
            }
            lines.push(match line.strip_prefix(b":") {
                Some(comment) => Line::Comment(comment),
                None => match line.strip_prefix(b"data") {
                    Some(v) if v.is_empty() => Line::Data(v),
                    Some(v) if v.first() == Some(&b':') => {
                        let v = v.get(1..).unwrap_or_default();
                        Line::Data(v.strip_prefix(b" ").unwrap_or(v))
                    }
                    _ => Line::Other(line),
                },
            });
        }
        Event { lines }
    }

    /// The data lines joined with `\n`; `None` if there is none.
    pub(crate) fn data(&self) -> Option<Vec<u8>> {
        let mut out: Option<Vec<u8>> = None;
        for l in &self.lines {
            if let Line::Data(d) = l {
                match &mut out {
                    Some(o) => {
                        o.push(b'\n');
                        o.extend_from_slice(d);
                    }
                    None => out = Some(d.to_vec()),
                }
            }
        }
        out
    }

    /// The `event:` field's value, if any.
    pub(crate) fn name(&self) -> Option<&'a [u8]> {
        self.lines.iter().rev().find_map(|l| match l {
            Line::Other(o) => {
                let v = o.strip_prefix(b"event:")?;
                Some(v.strip_prefix(b" ").unwrap_or(v))
            }
            _ => None,
        })
    }

    /// The event again, with its data replaced by `data` (one `data:` line
    /// per line of it, where the first data line was) and comments by
    /// `comment(text)`. Lines end with `\n`.
    pub(crate) fn render(&self, data: &[u8], mut comment: impl FnMut(&[u8]) -> Vec<u8>) -> Vec<u8> {
        let mut out = Vec::with_capacity(data.len() + 64);
        let mut data_written = false;
        for l in &self.lines {
            match l {
                Line::Data(_) if data_written => {}
                Line::Data(_) => {
                    data_written = true;
                    write_data(data, &mut out);
                }
                Line::Comment(c) => {
                    out.push(b':');
                    out.extend(comment(c));
                    out.push(b'\n');
                }
                Line::Other(o) => {
                    out.extend_from_slice(o);
                    out.push(b'\n');
                }
            }
        }
        if !data_written {
            write_data(data, &mut out);
        }
        out.push(b'\n');
        out
    }
}

/// `data: ` lines for `data` (a `\n` in it starts another line).
fn write_data(data: &[u8], out: &mut Vec<u8>) {
    for line in data.split(|&b| b == b'\n') {
        out.extend_from_slice(b"data: ");
        out.extend_from_slice(line.strip_suffix(b"\r").unwrap_or(line));
        out.push(b'\n');
    }
}

/// A minimal event: `event: NAME` (if any) and the data.
pub(crate) fn event_bytes(name: Option<&[u8]>, data: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(data.len() + 32);
    if let Some(n) = name {
        out.extend_from_slice(b"event: ");
        out.extend_from_slice(n);
        out.push(b'\n');
    }
    write_data(data, &mut out);
    out.push(b'\n');
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn split_all(input: &[u8], cut: usize) -> Vec<Vec<u8>> {
        let mut s = Splitter::default();
        let mut ev = s.push(&input[..cut]);
        ev.extend(s.push(&input[cut..]));
        assert_eq!(s.pending(), 0, "cut {cut}");
        ev
    }

    #[test]
    fn events_split_at_every_byte() {
        let input = b"data: a\n\n: ping\r\n\r\nevent: x\rdata: b\rdata: c\r\rdata: d\r\n\n";
        let expected: Vec<&[u8]> = vec![
            b"data: a\n\n",
            b": ping\r\n\r\n",
            b"event: x\rdata: b\rdata: c\r\r",
            b"data: d\r\n\n",
        ];
        for cut in 0..=input.len() {
            assert_eq!(split_all(input, cut), expected, "cut {cut}");
        }
    }

    #[test]
    fn lone_cr_at_the_end_waits() {
        let mut s = Splitter::default();
        assert!(s.push(b"data: a\r\r").is_empty());
        assert_eq!(s.push(b"\n"), vec![b"data: a\r\r\n".to_vec()]);
    }

    #[test]
    fn parses_fields() {
        let raw = b"event: message\r\ndata:{\"a\":1}\ndata: two\n: hi\nid: 7\n\n";
        let ev = Event::parse(raw);
        assert_eq!(ev.data().unwrap(), b"{\"a\":1}\ntwo");
        assert_eq!(ev.name(), Some(&b"message"[..]));
        assert_eq!(
            ev.render(b"X", |c| c.to_vec()),
            b"event: message\ndata: X\n: hi\nid: 7\n\n"
        );
        assert_eq!(Event::parse(b"data\n\n").data().unwrap(), b"");
        assert!(Event::parse(b"datum: x\n\n").data().is_none());
    }
}
