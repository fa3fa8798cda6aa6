//! A rule's list of masking profiles (`"response": ["pii", "cards"]`)
//! compiled into one masker, so a body is parsed, walked and rewritten once
//! instead of once per profile.
//!
//! Applied in order, each profile masks the previous one's output. The
//! chain gives the same result without reading that output:
//!
//! - its labels are the profiles' labels one after the other (so counts,
//!   strategies and replacement text stay each profile's), its `json_fields`,
//!   pointers and secret keys are the first profile's: a value they mask
//!   whole is the first profile's, as it was;
//! - each profile's detectors scan the original bytes on their own (the
//!   same hits as alone); a later profile's hit is kept beside the earlier
//!   ones'. Where a later profile's candidate, or a byte its checks read
//!   around it ([`READS_BEFORE`], [`LOOKAHEAD`]), touches an earlier
//!   profile's hit, the later profile would have read the earlier one's
//!   replacement instead: the body is then marked and masked profile by
//!   profile ([`super::apply`]), as before.
//!
//! Compiled only for lists whose later profiles read nothing beyond that:
//! no `json_fields`, `json_pointers` or secret key names (a later profile's
//! whole-value mask would cover the earlier one's replacement), no context
//! words (they are read up to 48 bytes back, across values). Other lists
//! are always masked profile by profile.
//!
//! What differs from applying them in order: a later profile no longer
//! scans the earlier one's replacement text (the digits a `partial` keeps,
//! a `tok_` hash, `[REDACTED:…]`), so it cannot mask it again or count it,
//! nor a value it would only have found by reading part of that text. Every
//! value a profile finds in the original body is masked as before, with
//! that profile's strategy and label.

use super::scan::{Hit, Scanner, LOOKAHEAD, READS_BEFORE};
use super::{Masker, Tally};

/// A later profile of a chain: its detectors, and where its labels start
/// among the chain's.
#[derive(Debug, Clone)]
pub(crate) struct Later {
    scanner: Scanner,
    offset: usize,
}

/// `profiles` as one masker, or `None` if a later one reads more than its
/// own candidates (see the module docs) or there is only one.
pub(crate) fn compile(profiles: &[&Masker]) -> Option<Masker> {
    let (first, rest) = profiles.split_first()?;
    if rest.is_empty() {
        return None;
    }
    let mut chain = (*first).clone();
    for p in rest {
        let reads_more = !p.fields.is_empty()
            || !p.pointers.is_empty()
            || !p.secret_keys.is_empty()
            || p.scanner.reads_context()
            || !p.later.is_empty();
        if reads_more {
            return None;
        }
        chain.later.push(Later {
            scanner: p.scanner.clone(),
            offset: chain.labels.len(),
        });
        chain.labels.extend(p.labels.iter().cloned());
        if chain.tokenize_key.is_none() {
            chain.tokenize_key.clone_from(&p.tokenize_key);
        }
    }
    Some(chain)
}

/// Appends the values of `hay` to `hits`, in order, never overlapping: the
/// masker's own, then each later profile's. A later candidate touching an
/// earlier hit sets `counts.conflict` (the hits are then not all there).
pub(crate) fn scan(m: &Masker, hay: &[u8], hits: &mut Vec<Hit>, counts: &mut Tally) {
    let first = hits.len();
    m.scanner.scan(hay, hits);
    if m.later.is_empty() {
        return;
    }
    let mut own = Vec::new();
    let mut seen = Vec::new();
    for later in &m.later {
        own.clear();
        seen.clear();
        later
            .scanner
            .scan_noting(hay, &mut own, &mut Some(&mut seen));
        let earlier = hits.get(first..).unwrap_or_default();
        let touches = seen.iter().any(|&(s, e)| {
            overlaps(
                earlier,
                s.saturating_sub(READS_BEFORE),
                e.saturating_add(LOOKAHEAD),
            )
        });
        if touches {
            counts.conflict = true;
            return;
        }
        hits.extend(own.iter().map(|h| Hit {
            label: h.label + later.offset,
            ..*h
        }));
        if let Some(all) = hits.get_mut(first..) {
            all.sort_by_key(|h| h.start);
        }
    }
}

/// Some hit of `hits` (ordered, disjoint) overlaps `from..to`.
fn overlaps(hits: &[Hit], from: usize, to: usize) -> bool {
    let i = hits.partition_point(|h| h.end <= from);
    hits.get(i).is_some_and(|h| h.start < to)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn hit(start: usize, end: usize) -> Hit {
        Hit {
            start,
            end,
            label: 0,
        }
    }

    #[test]
    fn overlaps_finds_a_hit_across_either_edge_and_nothing_beside() {
        let hits = [hit(10, 20), hit(30, 40)];
        assert!(overlaps(&hits, 19, 25));
        assert!(overlaps(&hits, 25, 31));
        assert!(overlaps(&hits, 0, 100));
        assert!(overlaps(&hits, 12, 13));
        assert!(!overlaps(&hits, 20, 30));
        assert!(!overlaps(&hits, 0, 10));
        assert!(!overlaps(&hits, 40, 50));
        assert!(!overlaps(&[], 0, 10));
    }
}
