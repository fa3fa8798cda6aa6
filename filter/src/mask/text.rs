//! Text and form bodies.
//!
//! Text is scanned as bytes, so a body that is not valid UTF-8 is handled
//! losslessly: bytes outside a masked value pass through unchanged.
//!
//! A form (`application/x-www-form-urlencoded`) is split into `name=value`
//! pairs; each value is percent-decoded before scanning (so `%40` is an `@`)
//! and re-encoded only if masked. A field named in `json_fields` or naming a
//! secret (`password`) is masked whole, as in JSON. Names are scanned too.
//! The pairs are the ones rules read ([`crate::body::form`]).

use super::scan::Hit;
use super::{Masker, Tally};
use crate::body::form;

/// Masks `body` as text; `None` when nothing was masked.
pub(crate) fn mask_text(m: &Masker, body: &[u8], counts: &mut Tally) -> Option<Vec<u8>> {
    let mut hits = Vec::new();
    m.scan(body, &mut hits, counts);
    if hits.is_empty() {
        return None;
    }
    Some(m.render(body, &hits, counts))
}

/// Masks a form body; `None` when nothing was masked. The pairs are the
/// ones rules read ([`crate::body::form`]).
pub(crate) fn mask_form(m: &Masker, body: &[u8], counts: &mut Tally) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let mut copied = 0;
    let mut hits: Vec<Hit> = Vec::new();
    for f in form::fields(body) {
        // A name is scanned too (`alice@example.com` alone is a name).
        hits.clear();
        m.scan(&f.name, &mut hits, counts);
        if !hits.is_empty() {
            let masked = m.render(&f.name, &hits, counts);
            out.extend_from_slice(body.get(copied..f.name_start).unwrap_or_default());
            form::percent_encode(&masked, &mut out);
            copied = f.name_end;
        }
        if f.value.is_empty() {
            continue;
        }
        let masked = match m.key_label(String::from_utf8_lossy(&f.name).as_bytes()) {
            Some(label) => m.whole(label, &f.value, counts),
            None => {
                hits.clear();
                m.scan(&f.value, &mut hits, counts);
                if hits.is_empty() {
                    continue;
                }
                m.render(&f.value, &hits, counts)
            }
        };
        out.extend_from_slice(body.get(copied..f.start).unwrap_or_default());
        form::percent_encode(&masked, &mut out);
        copied = f.end;
    }
    if copied == 0 {
        return None;
    }
    out.extend_from_slice(body.get(copied..).unwrap_or_default());
    Some(out)
}
