//! Text and form bodies.
//!
//! Text is scanned as bytes, so a body that is not valid UTF-8 is handled
//! losslessly: bytes outside a masked value pass through unchanged.
//!
//! A form (`application/x-www-form-urlencoded`) is split into `name=value`
//! pairs; each value is percent-decoded before scanning (so `%40` is an `@`)
//! and re-encoded only if masked. A field named in `json_fields` or naming a
//! secret (`password`) is masked whole, as in JSON. Names are not scanned.

use super::scan::Hit;
use super::Masker;

/// Masks `body` as text; `None` when nothing was masked.
pub(crate) fn mask_text(m: &Masker, body: &[u8], counts: &mut [u32]) -> Option<Vec<u8>> {
    let mut hits = Vec::new();
    m.scanner.scan(body, &mut hits);
    if hits.is_empty() {
        return None;
    }
    Some(m.render(body, &hits, counts))
}

/// Masks a form body; `None` when nothing was masked.
pub(crate) fn mask_form(m: &Masker, body: &[u8], counts: &mut [u32]) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut copied = 0;
    let mut hits: Vec<Hit> = Vec::new();
    let mut pos = 0;
    for pair in body.split(|&b| b == b'&') {
        let pair_start = pos;
        pos += pair.len() + 1;
        let (name, value, value_start) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (
                pair.get(..eq).unwrap_or_default(),
                pair.get(eq + 1..).unwrap_or_default(),
                pair_start + eq + 1,
            ),
            None => (&[][..], pair, pair_start),
        };
        if value.is_empty() {
            continue;
        }
        let decoded = percent_decode(value);
        let masked = match m.key_label(&String::from_utf8_lossy(&percent_decode(name))) {
            Some(label) => m.whole(label, &decoded, counts),
            None => {
                hits.clear();
                m.scanner.scan(&decoded, &mut hits);
                if hits.is_empty() {
                    continue;
                }
                m.render(&decoded, &hits, counts)
            }
        };
        out.extend_from_slice(body.get(copied..value_start).unwrap_or_default());
        percent_encode(&masked, &mut out);
        copied = value_start + value.len();
    }
    if copied == 0 {
        return None;
    }
    out.extend_from_slice(body.get(copied..).unwrap_or_default());
    Some(out)
}

/// `+` is a space, `%XY` a byte; a malformed escape is kept as it is.
fn percent_decode(raw: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(raw.len());
    let mut i = 0;
    while let Some(&b) = raw.get(i) {
        let hex = |j: usize| raw.get(j).and_then(|c| char::from(*c).to_digit(16));
        match (b, hex(i + 1), hex(i + 2)) {
            (b'%', Some(h), Some(l)) => {
                out.push((h * 16 + l) as u8);
                i += 3;
            }
            (b'+', _, _) => {
                out.push(b' ');
                i += 1;
            }
            _ => {
                out.push(b);
                i += 1;
            }
        }
    }
    out
}

fn percent_encode(bytes: &[u8], out: &mut Vec<u8>) {
    const HEX: &[u8; 16] = b"0123456789ABCDEF";
    for &b in bytes {
        match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'.' | b'_' | b'~' | b'*' => {
                out.push(b)
            }
            b' ' => out.push(b'+'),
            _ => {
                out.push(b'%');
                out.extend(HEX.get(usize::from(b >> 4)));
                out.extend(HEX.get(usize::from(b & 0xF)));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn percent_round_trip() {
        assert_eq!(percent_decode(b"a%40b.com+x%zz"), b"a@b.com x%zz");
        let mut out = Vec::new();
        percent_encode(b"[REDACTED:email] **11", &mut out);
        assert_eq!(out, b"%5BREDACTED%3Aemail%5D+**11");
    }
}
