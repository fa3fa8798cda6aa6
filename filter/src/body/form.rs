//! `application/x-www-form-urlencoded`: the pairs as the upstream decodes them.
//!
//! Decoding follows the WHATWG URL standard (what browsers, Python's
//! `parse_qsl` and Node's `URLSearchParams` do): pairs split on `&`, name and
//! value on the first `=`, `+` is a space, `%XY` a byte, a malformed escape is
//! kept as it is. The value's span in the body lets a masker rewrite it.

/// One `name=value` pair: the decoded name and value, and their raw spans.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Field {
    pub name: Vec<u8>,
    pub value: Vec<u8>,
    /// The raw (encoded) name's byte span in the body.
    pub name_start: usize,
    pub name_end: usize,
    /// The raw (encoded) value's byte span in the body.
    pub start: usize,
    pub end: usize,
}

/// Every pair of a form body, in order (empty pairs skipped).
pub fn fields(body: &[u8]) -> Vec<Field> {
    let mut out = Vec::new();
    let mut pos = 0;
    for pair in body.split(|&b| b == b'&') {
        let pair_start = pos;
        pos += pair.len() + 1;
        if pair.is_empty() {
            continue;
        }
        let (name, value, value_start) = match pair.iter().position(|&b| b == b'=') {
            Some(eq) => (
                pair.get(..eq).unwrap_or_default(),
                pair.get(eq + 1..).unwrap_or_default(),
                pair_start + eq + 1,
            ),
            None => (pair, &[][..], pair_start + pair.len()),
        };
        out.push(Field {
            name_start: pair_start,
            name_end: pair_start + name.len(),
            name: percent_decode(name),
            value: percent_decode(value),
            start: value_start,
            end: value_start + value.len(),
        });
    }
    out
}

/// `+` is a space, `%XY` a byte; a malformed escape is kept as it is.
pub fn percent_decode(raw: &[u8]) -> Vec<u8> {
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

/// Appends `bytes` form-encoded.
pub fn percent_encode(bytes: &[u8], out: &mut Vec<u8>) {
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
    fn pairs_are_decoded_like_urlsearchparams() {
        let f = fields(b"sql=DROP+TABLE+customers&&e=a%40b.com&flag&x=%zz%4");
        let pairs: Vec<(&[u8], &[u8])> = f
            .iter()
            .map(|f| (f.name.as_slice(), f.value.as_slice()))
            .collect();
        assert_eq!(
            pairs,
            vec![
                (&b"sql"[..], &b"DROP TABLE customers"[..]),
                (b"e", b"a@b.com"),
                (b"flag", b""),
                (b"x", b"%zz%4"),
            ]
        );
        assert_eq!((f[1].start, f[1].end), (28, 37));
    }

    #[test]
    fn percent_round_trip() {
        assert_eq!(percent_decode(b"a%40b.com+x%zz"), b"a@b.com x%zz");
        let mut out = Vec::new();
        percent_encode(b"[REDACTED:email] **11", &mut out);
        assert_eq!(out, b"%5BREDACTED%3Aemail%5D+**11");
    }
}
