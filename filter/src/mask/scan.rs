//! Finding sensitive values in bytes: every pattern of every enabled detector
//! in one multi-pattern regex (one lazy-DFA pass over the input, whatever the
//! number of detectors), then the detector's check on each candidate.
//!
//! Built on `regex-automata`'s meta regex, the engine inside the `regex`
//! crate, used directly because it reports *which* pattern matched and can
//! retry one pattern anchored at a position: when a candidate fails its check
//! (a Luhn-invalid card), the lower-priority patterns get their turn at the
//! same start before the search moves on.

use std::sync::{Arc, Mutex};

use regex_automata::hybrid::dfa::{Cache as LazyCache, DFA as LazyDfa};
use regex_automata::meta::Regex;
use regex_automata::util::syntax;
use regex_automata::{Anchored, Input, MatchKind, PatternID};

use super::checks::{Check, Span, Verdict};

/// A value to mask: byte span in the scanned input, and the label (detector) index.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Hit {
    pub start: usize,
    pub end: usize,
    pub label: usize,
}

/// One pattern of the combined regex.
#[derive(Debug, Clone)]
pub(crate) struct PatternInfo {
    pub label: usize,
    pub check: Check,
    pub value_group: bool,
}

#[derive(Debug, Clone)]
pub(crate) struct Scanner {
    re: Option<Regex>,
    patterns: Vec<PatternInfo>,
    /// Every pattern, anchored, all matches kept (`MatchKind::All`): walked
    /// byte by byte to tell whether some value could still start at an
    /// offset (see [`Scanner::open_from`]). Lazy, so it costs nothing until a
    /// stream is masked.
    prefixes: Option<LazyDfa>,
    /// The lazy DFA's states, built once and shared by every stream of the
    /// worker (building them per stream cost milliseconds per response).
    prefix_cache: Arc<Mutex<Option<LazyCache>>>,
}

/// Bytes a check reads past a candidate's end (`continues_number` reads two:
/// `-7`): a candidate is only final once that many bytes follow it.
pub(crate) const LOOKAHEAD: usize = 2;

/// Bytes a check reads before a candidate's start (`starts_inside_number`
/// reads four: `1 2 4111...`), context words aside.
pub(crate) const READS_BEFORE: usize = 4;

/// ASCII classes, byte-oriented: see `detectors`.
pub(crate) fn syntax_config() -> syntax::Config {
    syntax::Config::new().unicode(false).utf8(false)
}

/// Builds one regex (for checking a custom detector on its own).
pub(crate) fn build_one(pattern: &str) -> Result<Regex, String> {
    Regex::builder()
        .syntax(syntax_config())
        .configure(Regex::config().utf8_empty(false))
        .build(pattern)
        .map_err(|e| e.to_string())
}

impl Scanner {
    pub(crate) fn new(patterns: Vec<(String, PatternInfo)>) -> Result<Scanner, String> {
        if patterns.is_empty() {
            return Ok(Scanner {
                re: None,
                patterns: Vec::new(),
                prefixes: None,
                prefix_cache: Arc::default(),
            });
        }
        let regexes: Vec<&str> = patterns.iter().map(|(r, _)| r.as_str()).collect();
        let re = Regex::builder()
            .syntax(syntax_config())
            .configure(
                Regex::config()
                    .utf8_empty(false)
                    // Many patterns make many DFA states: room for them, so the
                    // lazy DFA does not thrash and fall back to the slow engine.
                    .hybrid_cache_capacity(8 * 1024 * 1024),
            )
            .build_many(&regexes)
            .map_err(|e| e.to_string())?;
        let prefixes = LazyDfa::builder()
            .syntax(syntax_config())
            .configure(
                LazyDfa::config()
                    .match_kind(MatchKind::All)
                    .cache_capacity(2 * 1024 * 1024),
            )
            .build_many(&regexes)
            .map_err(|e| e.to_string())?;
        Ok(Scanner {
            re: Some(re),
            patterns: patterns.into_iter().map(|(_, i)| i).collect(),
            prefixes: Some(prefixes),
            prefix_cache: Arc::default(),
        })
    }

    /// Some pattern's check reads context words (see [`super::chain`]).
    pub(crate) fn reads_context(&self) -> bool {
        self.patterns.iter().any(|p| p.check.reads_context())
    }

    /// The first offset in `from..hay.len()` where a value may start that is
    /// not settled yet: some pattern, anchored there, still matches a prefix
    /// of `hay[at..]`, or its automaton died less than [`LOOKAHEAD`] bytes
    /// before the end (a check may still read those bytes). Every candidate
    /// starting before the returned offset is final: more bytes cannot
    /// change it. `hay.len()` if there is none. Fails safe: when the lazy
    /// DFA gives up, the offset counts as open.
    pub(crate) fn open_from(&self, hay: &[u8], from: usize) -> usize {
        let Some(dfa) = &self.prefixes else {
            return hay.len();
        };
        // Single-threaded in Envoy (a VM per worker); a poisoned lock still
        // holds a usable cache.
        let mut slot = match self.prefix_cache.lock() {
            Ok(g) => g,
            Err(poisoned) => poisoned.into_inner(),
        };
        let cache = slot.get_or_insert_with(|| dfa.create_cache());
        for at in from..hay.len() {
            let input = Input::new(hay).span(at..hay.len()).anchored(Anchored::Yes);
            let Ok(mut sid) = dfa.start_state_forward(cache, &input) else {
                return at;
            };
            let mut dead_at = None;
            for (i, &b) in hay.iter().enumerate().skip(at) {
                match dfa.next_state(cache, sid, b) {
                    Ok(next) if next.is_dead() => {
                        dead_at = Some(i);
                        break;
                    }
                    Ok(next) if next.is_quit() => break,
                    Ok(next) => sid = next,
                    Err(_) => break,
                }
            }
            match dead_at {
                // Died on byte `i`: every candidate from `at` ends at or
                // before `i`, and its check reads up to `i + 1`.
                Some(i) if i + LOOKAHEAD <= hay.len() => {}
                _ => return at,
            }
        }
        hay.len()
    }

    /// Appends the values found in `hay` to `hits`, in order, never overlapping.
    pub(crate) fn scan(&self, hay: &[u8], hits: &mut Vec<Hit>) {
        self.scan_noting(hay, hits, &mut None);
    }

    /// [`Scanner::scan`], also noting in `seen` the extent of every
    /// candidate the patterns matched, kept or not: from its start to the
    /// furthest end a pattern or check gave it (a skip's target included).
    /// What a check reads around that extent is [`READS_BEFORE`] and
    /// [`LOOKAHEAD`] bytes more.
    pub(crate) fn scan_noting(
        &self,
        hay: &[u8],
        hits: &mut Vec<Hit>,
        seen: &mut Option<&mut Vec<Span>>,
    ) {
        let Some(re) = &self.re else {
            return;
        };
        let mut at = 0;
        while at < hay.len() {
            let Some(m) = re.search(&Input::new(hay).span(at..hay.len())) else {
                break;
            };
            let start = m.start();
            let mut furthest = m.end();
            let found = self.confirm(re, hay, start, m.pattern().as_usize(), &mut furthest);
            match found {
                Found::Hit(hit) => {
                    at = hit.end.max(start + 1);
                    furthest = furthest.max(hit.end);
                    hits.push(hit);
                }
                Found::Skip(to) => {
                    at = to.max(start + 1);
                    furthest = furthest.max(to);
                }
                Found::Nothing => at = start + 1,
            }
            if let Some(seen) = seen {
                seen.push((start, furthest));
            }
        }
    }

    /// The candidate at `start` by pattern `pid` (ending at `end`), else a
    /// lower-priority pattern matching at the same start, checked; `end`
    /// becomes the furthest end of the patterns tried.
    fn confirm(&self, re: &Regex, hay: &[u8], start: usize, pid: usize, end: &mut usize) -> Found {
        match self.check(re, hay, start, *end, pid) {
            Found::Nothing => {}
            found => return found,
        }
        for q in pid + 1..self.patterns.len() {
            if let Some(m) = anchored(re, hay, start, q) {
                *end = (*end).max(m);
                match self.check(re, hay, start, m, q) {
                    Found::Nothing => {}
                    found => return found,
                }
            }
        }
        Found::Nothing
    }

    fn check(&self, re: &Regex, hay: &[u8], start: usize, end: usize, pid: usize) -> Found {
        let Some(info) = self.patterns.get(pid) else {
            return Found::Nothing;
        };
        let (s, e) = if info.value_group {
            match value_span(re, hay, start, pid) {
                Some(span) => span,
                None => return Found::Nothing,
            }
        } else {
            (start, end)
        };
        let (s, e) = match info.check.run(hay, s, e) {
            Verdict::Mask(span) => span,
            Verdict::Reject => return Found::Nothing,
            Verdict::Skip(to) => return Found::Skip(to),
        };
        if info.value_group {
            // `Bearer eyJ...`: a value with a format of its own is counted as that.
            if let Some(hit) = self.specific(re, hay, s, e) {
                return Found::Hit(hit);
            }
        }
        let (s, e) = widen_to_chars(hay, s, e);
        if e > s {
            Found::Hit(Hit {
                start: s,
                end: e,
                label: info.label,
            })
        } else {
            Found::Nothing
        }
    }

    /// A plain (not value-group) pattern matching exactly `s..e`, checked.
    fn specific(&self, re: &Regex, hay: &[u8], s: usize, e: usize) -> Option<Hit> {
        self.patterns.iter().enumerate().find_map(|(q, info)| {
            if info.value_group || anchored(re, hay, s, q)? != e {
                return None;
            }
            match info.check.run(hay, s, e) {
                Verdict::Mask((hs, he)) if (hs, he) == (s, e) => Some(Hit {
                    start: s,
                    end: e,
                    label: info.label,
                }),
                _ => None,
            }
        })
    }
}

enum Found {
    Hit(Hit),
    Skip(usize),
    Nothing,
}

/// The end of pattern `pid`'s match starting exactly at `start`.
fn anchored(re: &Regex, hay: &[u8], start: usize, pid: usize) -> Option<usize> {
    let qid = PatternID::new(pid).ok()?;
    let input = Input::new(hay)
        .span(start..hay.len())
        .anchored(Anchored::Pattern(qid));
    re.search(&input).map(|m| m.end())
}

/// Capture group 1 of pattern `pid` matched at `start`.
fn value_span(re: &Regex, hay: &[u8], start: usize, pid: usize) -> Option<Span> {
    let qid = PatternID::new(pid).ok()?;
    let mut caps = re.create_captures();
    let input = Input::new(hay)
        .span(start..hay.len())
        .anchored(Anchored::Pattern(qid));
    re.search_captures(&input, &mut caps);
    let g = caps.get_group(1)?;
    Some((g.start, g.end))
}

/// A custom pattern may start or end inside a multi-byte character (`.`
/// matches one byte here): mask whole characters.
fn widen_to_chars(hay: &[u8], mut s: usize, mut e: usize) -> Span {
    let cont = |i: usize| hay.get(i).is_some_and(|b| b & 0xC0 == 0x80);
    while s > 0 && cont(s) {
        s -= 1;
    }
    while cont(e) {
        e += 1;
    }
    (s, e)
}
