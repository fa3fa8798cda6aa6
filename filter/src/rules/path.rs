//! Path normalisation: what path rules match against.
//!
//! An agent must not be able to dodge a rule on `/admin` by spelling the path
//! differently from how the upstream will read it. The `:path` header is
//! normalised once per request, in this order:
//!
//! 1. the query (`?…`) and fragment (`#…`) are cut off;
//! 2. percent-escapes are decoded **once** (`%2e%2e` → `..`, `%2F` → `/`,
//!    `%5C` → `\`, `%3B` → `;`); an escape that is not two hex digits is kept
//!    as it is; bytes that are not UTF-8 become U+FFFD;
//! 3. `\` is read as `/` (some upstreams do);
//! 4. the path is split on `/`; in each segment everything from the first `;`
//!    (path parameters, `/admin;x=1`, `/..;/admin`) is dropped; empty segments
//!    (`//`) and `.` are dropped; `..` removes the previous segment;
//! 5. the result is `/` + the segments joined with `/`: no trailing slash
//!    (`/admin/` is `/admin`), and never above the root.
//!
//! Case is kept: paths are case-sensitive (for an upstream that is not, use
//! `"ignore_case": true` on `exact`/`prefix`, or `(?i)` in a regex).
//!
//! A path is **ambiguous** when upstreams may disagree on what it means: it had
//! an encoded separator (`%2F`, `%5C`) or a raw `\`, an encoded NUL, an invalid
//! escape, a `..` that climbs above the root, or still looks percent-encoded
//! after one decoding (`%252e`). Rules always match the normalised path; a
//! policy that wants such requests refused says so with
//! `"path": {"ambiguous": true}` on a deny rule.

/// A request path as rules see it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NormalizedPath {
    /// Always starts with `/`; no query, no dot segments, no empty segments,
    /// no trailing slash (except the root itself).
    pub path: String,
    /// See the module docs.
    pub ambiguous: bool,
}

/// Normalises a raw `:path` value (see the module docs).
pub fn normalize(raw: &str) -> NormalizedPath {
    let end = raw.find(['?', '#']).unwrap_or(raw.len());
    let raw = raw.get(..end).unwrap_or(raw);
    let mut ambiguous = false;

    let bytes = raw.as_bytes();
    let mut decoded: Vec<u8> = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        if b == b'%' {
            let hi = bytes.get(i + 1).and_then(|c| hex(*c));
            let lo = bytes.get(i + 2).and_then(|c| hex(*c));
            if let (Some(hi), Some(lo)) = (hi, lo) {
                let v = hi * 16 + lo;
                if matches!(v, b'/' | b'\\' | 0) {
                    ambiguous = true;
                }
                decoded.push(v);
                i += 3;
                continue;
            }
            ambiguous = true;
        } else if b == b'\\' {
            ambiguous = true;
        }
        decoded.push(b);
        i += 1;
    }
    // Still percent-encoded after one decoding: double encoding.
    if decoded
        .windows(3)
        .any(|w| matches!(w, [b'%', a, b] if hex(*a).is_some() && hex(*b).is_some()))
    {
        ambiguous = true;
    }
    let text = String::from_utf8_lossy(&decoded);

    let mut segments: Vec<&str> = Vec::new();
    for seg in text.split(['/', '\\']) {
        let seg = seg.split(';').next().unwrap_or("");
        match seg {
            "" | "." => {}
            ".." => {
                if segments.pop().is_none() {
                    ambiguous = true;
                }
            }
            s => segments.push(s),
        }
    }
    let mut path = String::with_capacity(text.len() + 1);
    if segments.is_empty() {
        path.push('/');
    }
    for s in segments {
        path.push('/');
        path.push_str(s);
    }
    NormalizedPath { path, ambiguous }
}

fn hex(c: u8) -> Option<u8> {
    match c {
        b'0'..=b'9' => Some(c - b'0'),
        b'a'..=b'f' => Some(c - b'a' + 10),
        b'A'..=b'F' => Some(c - b'A' + 10),
        _ => None,
    }
}

/// Whether `path` (normalised) is `prefix` or lies below it. `prefix` is
/// normalised too, so `/admin/` and `/admin` mean the same; `/` matches all.
/// Segment-aware: `/admin` does not match `/administrator`.
pub fn has_prefix(path: &str, prefix: &str) -> bool {
    if prefix == "/" {
        return true;
    }
    match path.strip_prefix(prefix) {
        Some(rest) => rest.is_empty() || rest.starts_with('/'),
        None => false,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn n(raw: &str) -> String {
        normalize(raw).path
    }

    #[test]
    fn plain_paths_are_kept() {
        assert_eq!(n("/"), "/");
        assert_eq!(n(""), "/");
        assert_eq!(n("/customers/42"), "/customers/42");
        assert_eq!(n("/Customers"), "/Customers");
        assert!(!normalize("/customers/42?x=1").ambiguous);
    }

    #[test]
    fn query_and_fragment_are_cut() {
        assert_eq!(n("/admin?x=/../y"), "/admin");
        assert_eq!(n("/admin#frag"), "/admin");
    }

    #[test]
    fn bypass_spellings_all_normalise_to_admin() {
        for raw in [
            "/admin",
            "/admin/",
            "//admin",
            "///admin//",
            "/./admin",
            "/api/../admin",
            "/api/v1/../../admin",
            "/%2e%2e/admin",
            "/%2E%2E/admin",
            "/api/%2e%2e/admin",
            "/api/.%2e/admin",
            "/admin;x=1",
            "/admin;jsessionid=abc/",
            "/api/..;/admin",
            "/%61dmin",
            "/api%2F..%2Fadmin",
            "/api\\..\\admin",
            "/admin%3Bx=1",
            "/../admin",
            "/../../admin",
        ] {
            assert_eq!(n(raw), "/admin", "{raw}");
        }
    }

    #[test]
    fn ambiguity_is_flagged() {
        for raw in [
            "/api%2F..%2Fadmin",
            "/a%2fb",
            "/a%5cb",
            "/a\\b",
            "/a%00b",
            "/a%zzb",
            "/a%2",
            "/../admin",
            "/%252e%252e/admin",
        ] {
            assert!(normalize(raw).ambiguous, "{raw}");
        }
        for raw in ["/a/b", "/a/../b", "/a;x", "/%61", "/a?%2f"] {
            assert!(!normalize(raw).ambiguous, "{raw}");
        }
    }

    #[test]
    fn double_encoding_is_decoded_once_only() {
        assert_eq!(n("/%252e%252e/admin"), "/%2e%2e/admin");
    }

    #[test]
    fn non_utf8_escapes_do_not_crash() {
        assert_eq!(n("/a%ff%fe/b"), "/a\u{fffd}\u{fffd}/b");
    }

    #[test]
    fn prefix_is_segment_aware() {
        assert!(has_prefix("/admin", "/admin"));
        assert!(has_prefix("/admin/users", "/admin"));
        assert!(!has_prefix("/administrator", "/admin"));
        assert!(has_prefix("/anything", "/"));
        assert!(!has_prefix("/", "/admin"));
    }
}
