//! The one contract of the structured content kinds (JSON, code, logs, chat), and the one
//! packer they share.
//!
//! Each kind supplies only what is its own:
//! - **units**: how the input is cut (JSON members and elements, code items and the lines of
//!   a body, log lines, chat turns);
//! - **groups**: which unit must be shown for another to be shown (`parent`: a method's
//!   header before its body lines, a turn's label before its sentences);
//! - **what must stay**: the priority order of the units (imports and signatures, error
//!   templates, the most recent turn and the query's own message first);
//! - **how an elision is marked**: its `render` (`{ … }` with a comment, `...`, `pass  # …`
//!   in code, `  [… N similar lines omitted]` in logs; chat drops whole turns, each kept line
//!   keeps its speaker).
//!
//! Every kind has one entry point of the same shape, `compress_<kind>(text, query, budget,
//! count) -> Option<Packed>` ([`Handler`](super::Handler)), and counts with the caller's one
//! counter (`count`; the engine's is a [`PieceCounter`](crate::tokens::PieceCounter), which
//! knows the input's own count already and counts the pieces of candidate outputs from a
//! cache). [`fit_units`] fits the prioritised units to the budget for all of them.
//!
//! Not here: parsing, ranking or rendering of any kind.

use super::Packed;
use crate::tokens::PieceCounter;

/// How a kind counts its candidate outputs: exactly as the caller's encoding does. Any
/// `Fn(&str) -> usize` is one; the engine's is the input's [`PieceCounter`], which also counts
/// a text made of copies of the input's stretches from the input's own pieces.
pub trait Count {
    /// The tokens of `text`.
    fn count(&self, text: &str) -> usize;
    /// `count(text)` for a `text` in which each run `(at, start, len)` (ascending, apart) is a
    /// copy of `input[start..start + len]` at `text[at..at + len]`; a counter that knows the
    /// input's pieces reads only the joins.
    fn count_spliced(&self, text: &str, runs: &[(usize, usize, usize)]) -> usize {
        let _ = runs;
        self.count(text)
    }
}

impl<F: Fn(&str) -> usize> Count for F {
    fn count(&self, text: &str) -> usize {
        self(text)
    }
}

impl Count for PieceCounter<'_> {
    fn count(&self, text: &str) -> usize {
        PieceCounter::count(self, text)
    }
    fn count_spliced(&self, text: &str, runs: &[(usize, usize, usize)]) -> usize {
        PieceCounter::count_spliced(self, text, runs)
    }
}

/// Finds the largest prefix of a priority order whose rendering fits `budget`.
///
/// `est_prefix[k]` is an estimate of the tokens of the first `k` units (ascending, length
/// `n + 1`); `render(k)` builds the text of the first `k` units. The real `measure` (a token count) decides:
/// the estimate only guides the search, so the counter need not be additive. Returns the
/// best fitting `(k, text, tokens)` with `k >= 1`, or `None` when even one unit does not fit.
fn fit_prefix<R: Default>(
    est_prefix: &[usize],
    render: &dyn Fn(usize) -> R,
    measure: &dyn Fn(&R) -> usize,
    budget: usize,
) -> Option<(usize, R, usize)> {
    let n = est_prefix.len().saturating_sub(1);
    if n == 0 {
        return None;
    }
    let largest_with = |est: f64| -> usize {
        // Largest k in 1..=n with est_prefix[k] <= est (at least 1).
        let p = est_prefix.partition_point(|&e| (e as f64) <= est);
        p.saturating_sub(1).clamp(1, n)
    };
    let mut lo = 0usize; // largest k known to fit
    let mut lo_text = R::default();
    let mut lo_tokens = 0;
    let mut hi = n + 1; // smallest k known not to fit
    let mut k = largest_with(budget as f64);
    for _ in 0..24 {
        let text = render(k);
        let c = measure(&text);
        if c <= budget {
            lo = k;
            lo_text = text;
            lo_tokens = c;
            if k == n || c * 100 >= budget * 95 {
                break;
            }
            let target = est_prefix[k] as f64 * budget as f64 / c.max(1) as f64;
            k = largest_with(target).max(k + 1);
        } else {
            hi = k;
            let target = est_prefix[k] as f64 * budget as f64 / c as f64 * 0.99;
            k = largest_with(target).min(k - 1);
        }
        if k <= lo || k >= hi {
            // Interpolation left the bracket: bisect.
            if hi - lo <= 1 {
                break;
            }
            k = lo + (hi - lo) / 2;
        }
        if k == 0 {
            break;
        }
    }
    (lo > 0).then_some((lo, lo_text, lo_tokens))
}

/// The line that stands for `n` dropped lines where a kind has no comment syntax of its own
/// (a diff's hunk, a markdown section): `[… 6 lines omitted]`.
pub(crate) fn lines_omitted(n: usize) -> String {
    omitted(n, "line")
}

/// `[… 9 items omitted]`: `n` dropped `unit`s (singular; an `s` is added for several).
pub(crate) fn omitted(n: usize, unit: &str) -> String {
    format!("[\u{2026} {n} {unit}{} omitted]", if n == 1 { "" } else { "s" })
}

/// `sorted` (all units `0..n`, by priority) with each unit's missing ancestors placed just before it,
/// outermost first, so that every prefix of the result can be shown.
pub(crate) fn ancestors_first(sorted: &[usize], parent: &dyn Fn(usize) -> Option<usize>) -> Vec<usize> {
    let mut order = Vec::with_capacity(sorted.len());
    let mut placed = vec![false; sorted.len()];
    let mut chain = Vec::new();
    for &u in sorted {
        let mut at = Some(u);
        while let Some(c) = at {
            if placed[c] {
                break;
            }
            chain.push(c);
            at = parent(c);
        }
        for c in chain.drain(..).rev() {
            placed[c] = true;
            order.push(c);
        }
    }
    order
}

/// Chooses units by priority so that the rendering fits `budget`: the longest fitting
/// prefix of `order` (see [`fit_prefix`]), then later units that still fit in what is left
/// (a large unit does not stop smaller ones after it). `est[i]` estimates the tokens of
/// `order[i]`; `parent(u)` is a unit that must be shown for `u` to be shown. Returns the
/// chosen units (any order) and their rendering, which `measure` says fits.
pub(crate) fn fit_units<R: Default>(
    order: &[usize],
    est: &[usize],
    parent: &dyn Fn(usize) -> Option<usize>,
    render: &dyn Fn(&[usize]) -> R,
    measure: &dyn Fn(&R) -> usize,
    budget: usize,
) -> Option<(Vec<usize>, R)> {
    let mut est_prefix = Vec::with_capacity(est.len() + 1);
    est_prefix.push(0usize);
    for &e in est {
        let last = *est_prefix.last().unwrap_or(&0);
        est_prefix.push(last + e);
    }
    let (k, out, c) = fit_prefix(&est_prefix, &|k| render(&order[..k]), measure, budget)?;
    if k == order.len() || c * 100 >= budget * 95 {
        return Some((order[..k].to_vec(), out));
    }
    let mut best = (order[..k].to_vec(), out);
    let slack = budget - c;
    let max_unit = order.iter().copied().max().unwrap_or(0);
    for factor in [1.0, 0.6, 0.3] {
        let mut room = (slack as f64 * factor) as usize;
        let mut chosen = best.0.clone();
        let mut included = vec![false; max_unit + 1];
        for &u in &chosen {
            included[u] = true;
        }
        let before = chosen.len();
        for (pos, &u) in order.iter().enumerate().skip(k) {
            if est[pos] <= room && parent(u).is_none_or(|p| included[p]) {
                room -= est[pos];
                included[u] = true;
                chosen.push(u);
            }
        }
        if chosen.len() == before {
            break;
        }
        let text = render(&chosen);
        if measure(&text) <= budget {
            best = (chosen, text);
            break;
        }
    }
    Some(best)
}

/// A kind whose units are sets of whole lines of its input (the outline, diffs), for
/// [`LineUnits::fit`].
pub(crate) struct LineUnits<'a> {
    pub text: &'a str,
    pub lines: &'a [&'a str],
    /// Each unit's line numbers.
    pub unit_lines: &'a dyn Fn(usize) -> &'a [usize],
    /// The unit that must be shown for another to be shown.
    pub parent: &'a dyn Fn(usize) -> Option<usize>,
    /// What a line is worth, for `kept_information`.
    pub weight: &'a dyn Fn(usize) -> f64,
}

/// A rendering of chosen units: the text, and the input lines it shows, ascending.
pub(crate) type Rendering = (String, Vec<usize>);

impl LineUnits<'_> {
    /// [`fit_units`] over these units: each unit's estimate is its lines' bytes at the input's
    /// tokens per byte, plus one for its line break; `kept_information` is the weight of the
    /// chosen units' lines over that of all lines. `None` when not even the first unit of
    /// `order` fits.
    pub(crate) fn fit(
        &self,
        order: &[usize],
        render: &dyn Fn(&[usize]) -> Rendering,
        budget: usize,
        count: &dyn Count,
    ) -> Option<Packed> {
        let (lines, unit_lines, weight) = (self.lines, self.unit_lines, self.weight);
        let per_byte = count.count(self.text) as f64 / self.text.len().max(1) as f64;
        let est: Vec<usize> = order
            .iter()
            .map(|&u| {
                let bytes: usize = unit_lines(u).iter().map(|&l| lines[l].len() + 1).sum();
                (bytes as f64 * per_byte).ceil() as usize + 1
            })
            .collect();
        let measure = |r: &Rendering| if r.0.is_empty() { usize::MAX } else { count.count(&r.0) };
        let (chosen, (text, kept)) = fit_units(order, &est, self.parent, render, &measure, budget)?;
        let total: f64 = (0..lines.len()).map(weight).sum();
        let kept_weight: f64 = chosen.iter().flat_map(|&u| unit_lines(u).iter()).map(|&l| weight(l)).sum();
        Some(Packed { text, retained_indices: kept, kept_information: kept_weight / total.max(1.0) })
    }
}
