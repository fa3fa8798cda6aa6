//! Finding the bytes JSON gives a meaning to inside a string (`"`, `\`,
//! controls) eight at a time, in a `u64` ("SIMD within a register").
//!
//! Most of a JSON body is the contents of strings without escapes: the
//! reader skips them, and the masker copies its replacements, by these
//! searches. They are plain integer code, as fast in V8 (wasm has 64-bit
//! integers, `simd128` is not enabled: docs/performance.md) as natively,
//! and cheaper than `memchr`'s vector set-up on strings of a few words.

const ONES: u64 = 0x0101_0101_0101_0101;
const HIGHS: u64 = 0x8080_8080_8080_8080;

/// The bytes of `w` that are zero, flagged by their high bit. Exact for the
/// lowest flagged byte (a borrow can only flag bytes above a zero byte).
const fn zeros(w: u64) -> u64 {
    w.wrapping_sub(ONES) & !w & HIGHS
}

/// The bytes of `w` equal to `b` (exact for the lowest one).
const fn equal(w: u64, b: u8) -> u64 {
    zeros(w ^ (ONES * b as u64))
}

/// The bytes of `w` below 0x20, controls (exact for the lowest one).
const fn control(w: u64) -> u64 {
    w.wrapping_sub(ONES * 0x20) & !w & HIGHS
}

/// The offset of the first byte of `s` that `word` flags (eight bytes at a
/// time) or `byte` accepts (the tail).
fn first(s: &[u8], word: impl Fn(u64) -> u64, byte: impl Fn(u8) -> bool) -> Option<usize> {
    let mut words = s.chunks_exact(8);
    let mut at = 0;
    for w in &mut words {
        let w = u64::from_le_bytes(<[u8; 8]>::try_from(w).ok()?);
        let flags = word(w);
        if flags != 0 {
            // Little-endian: the lowest flag is the first byte in memory.
            return Some(at + flags.trailing_zeros() as usize / 8);
        }
        at += 8;
    }
    words
        .remainder()
        .iter()
        .position(|&b| byte(b))
        .map(|p| at + p)
}

/// The offset of the first `"` or `\` in `s`: where a string's contents end
/// or its next escape starts.
pub fn quote_or_backslash(s: &[u8]) -> Option<usize> {
    first(
        s,
        |w| equal(w, b'"') | equal(w, b'\\'),
        |b| b == b'"' || b == b'\\',
    )
}

/// `s` holds a byte that a JSON string must escape (`"`, `\`, a control).
pub fn needs_escape(s: &[u8]) -> bool {
    first(
        s,
        |w| equal(w, b'"') | equal(w, b'\\') | control(w),
        |b| b == b'"' || b == b'\\' || b < 0x20,
    )
    .is_some()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every position and neighbour of the searched bytes, against the
    /// byte-at-a-time answer (a borrow must never flag a byte too early).
    #[test]
    fn word_searches_agree_with_a_byte_loop() {
        let fill = [
            b'a', 0x00, 0x1f, 0x20, b'!', b'#', b'[', b']', 0x7f, 0x80, 0xff,
        ];
        for len in 0..24 {
            for at in 0..=len {
                for &f in &fill {
                    for special in [b'"', b'\\', 0x01, 0x1f, b'x'] {
                        let mut s = vec![f; len];
                        if at < len {
                            s[at] = special;
                        }
                        let q = s.iter().position(|&b| b == b'"' || b == b'\\');
                        assert_eq!(quote_or_backslash(&s), q, "{s:?}");
                        let e = s.iter().any(|&b| b == b'"' || b == b'\\' || b < 0x20);
                        assert_eq!(needs_escape(&s), e, "{s:?}");
                    }
                }
            }
        }
    }
}
