//! `multipart/form-data`: the parts an upstream reads, or a refusal.
//!
//! A part is read as text (UTF-8) when its own `content-type` is absent,
//! `text/*` or JSON; any other part (a file upload of binary data) cannot
//! be inspected, so the whole body is unreadable. A body that does not follow
//! RFC 7578 framing for its declared boundary is unreadable too: upstream
//! parsers differ on broken framing, so no reading of it can be trusted.

use super::Param;

/// One readable part: its field name and its content's span in the body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Part {
    pub name: String,
    pub start: usize,
    pub end: usize,
    /// The part declares JSON.
    pub json: bool,
}

/// Why a multipart body cannot be read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// Framing does not follow the declared boundary.
    Malformed,
    /// A part is binary, or in another encoding.
    BinaryPart,
}

/// The parts of `body` framed by `boundary` (the content type's parameter).
pub fn parts(body: &[u8], boundary: &str) -> Result<Vec<Part>, Refusal> {
    if !is_boundary(boundary) {
        return Err(Refusal::Malformed);
    }
    let delim = format!("--{boundary}");
    let delim = delim.as_bytes();
    let mut out = Vec::new();
    // The body starts with the first delimiter (a preamble is refused).
    if !body.starts_with(delim) {
        return Err(Refusal::Malformed);
    }
    let mut at = delim.len();
    loop {
        let rest = body.get(at..).ok_or(Refusal::Malformed)?;
        if rest.starts_with(b"--") {
            // The close delimiter: only line breaks may follow.
            let tail = rest.get(2..).unwrap_or_default();
            return if tail.iter().all(|b| matches!(b, b'\r' | b'\n')) {
                Ok(out)
            } else {
                Err(Refusal::Malformed)
            };
        }
        let rest = rest.strip_prefix(b"\r\n").ok_or(Refusal::Malformed)?;
        at = body.len() - rest.len();
        let head_end = find(rest, b"\r\n\r\n").ok_or(Refusal::Malformed)?;
        let head = String::from_utf8_lossy(rest.get(..head_end).unwrap_or_default()).into_owned();
        let start = at + head_end + 4;
        let mut next = Vec::with_capacity(delim.len() + 2);
        next.extend_from_slice(b"\r\n");
        next.extend_from_slice(delim);
        let len = find(body.get(start..).unwrap_or_default(), &next).ok_or(Refusal::Malformed)?;
        let end = start + len;
        let (name, ct) = part_head(&head)?;
        let (json, text) = match ct.as_deref().map(crate::headers::media_type) {
            None => (false, true),
            Some((top, sub)) => {
                let json = (top == "application" && sub == "json") || sub.ends_with("+json");
                (json, json || top == "text")
            }
        };
        let charset_ok = ct.as_deref().is_none_or(super::charset_is_utf8);
        let content = body.get(start..end).unwrap_or_default();
        if !text || !charset_ok || std::str::from_utf8(content).is_err() || content.contains(&0) {
            return Err(Refusal::BinaryPart);
        }
        out.push(Part {
            name,
            start,
            end,
            json,
        });
        at = end + next.len();
    }
}

/// The part's field name and content type, from its header lines. A header
/// given twice, or a `name` upstreams read differently ([`super::Param`]),
/// is broken framing: Rack takes the first `Content-Disposition` and the
/// last `name=` in it, others the last header.
fn part_head(head: &str) -> Result<(String, Option<String>), Refusal> {
    let mut name = None;
    let mut ct = None;
    let mut encoding = None;
    for line in head.split("\r\n") {
        let (k, v) = line.split_once(':').ok_or(Refusal::Malformed)?;
        let k = k.trim().to_ascii_lowercase();
        let slot = match k.as_str() {
            "content-disposition" => &mut name,
            "content-type" => &mut ct,
            "content-transfer-encoding" => &mut encoding,
            _ => continue,
        };
        if slot.replace(v.trim()).is_some() {
            return Err(Refusal::Malformed);
        }
    }
    // base64 or quoted-printable parts hide their text.
    if let Some(v) = encoding {
        let v = v.to_ascii_lowercase();
        if !matches!(v.as_str(), "7bit" | "8bit" | "binary") {
            return Err(Refusal::BinaryPart);
        }
    }
    let name = match name.map_or(Param::Absent, |d| super::param(d, "name")) {
        Param::One(n) => n.to_string(),
        Param::Absent => String::new(),
        Param::Ambiguous => return Err(Refusal::Malformed),
    };
    Ok((name, ct.map(str::to_string)))
}

/// RFC 2046's boundary: 1 to 70 `bchars`, not ending in a space. Anything
/// else (`%22`, a backslash) an upstream may unescape into another boundary.
fn is_boundary(b: &str) -> bool {
    (1..=70).contains(&b.len())
        && !b.ends_with(' ')
        && b.bytes()
            .all(|c| c.is_ascii_alphanumeric() || b"'()+_,-./:=? ".contains(&c))
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    if needle.is_empty() {
        return Some(0);
    }
    hay.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    const BODY: &[u8] = b"--XyZ\r\nContent-Disposition: form-data; name=\"q\"\r\n\r\nDROP TABLE x\r\n--XyZ\r\nContent-Disposition: form-data; name=\"j\"\r\nContent-Type: application/json\r\n\r\n{\"a\":1}\r\n--XyZ--\r\n";

    #[test]
    fn text_parts_are_read() {
        let p = parts(BODY, "XyZ").unwrap();
        assert_eq!(p.len(), 2);
        assert_eq!(p[0].name, "q");
        assert_eq!(&BODY[p[0].start..p[0].end], b"DROP TABLE x");
        assert!(p[1].json);
        assert_eq!(&BODY[p[1].start..p[1].end], b"{\"a\":1}");
    }

    #[test]
    fn binary_parts_and_broken_framing_are_refused() {
        let bin = b"--b\r\nContent-Disposition: form-data; name=\"f\"\r\nContent-Type: application/octet-stream\r\n\r\n\x00\x01\r\n--b--";
        assert_eq!(parts(bin, "b"), Err(Refusal::BinaryPart));
        let b64 = b"--b\r\nContent-Disposition: form-data; name=\"f\"\r\nContent-Transfer-Encoding: base64\r\n\r\nZHJvcCB0YWJsZQ==\r\n--b--";
        assert_eq!(parts(b64, "b"), Err(Refusal::BinaryPart));
        assert_eq!(parts(b"preamble\r\n--b--", "b"), Err(Refusal::Malformed));
        assert_eq!(
            parts(b"--b\r\nX: y\r\n\r\nno end", "b"),
            Err(Refusal::Malformed)
        );
        assert_eq!(parts(BODY, ""), Err(Refusal::Malformed));
    }
}
