//! The baselines of `shared/spec/EVAL.md`, computed at the same exact budget as the engine, and
//! the readability measures of a compressed text.
//!
//! They follow the independent scorer (`shared/tools/compression_eval.py`, `ood_qa_eval.py`)
//! so both print the same figures: cl100k counts, sentences cut after `.` `!` `?` before an
//! upper-case letter, digit, quote or bracket, and at every newline; passages are the blocks
//! between blank lines; BM25 (k1 = 1.5, b = 0.75) over lower-cased `\w+` words, unstemmed.
//!
//! - `head`: the longest prefix of the input within the budget.
//! - `lead-rr`: sentence 0 of every passage, then sentence 1, … in input order, while it fits.
//! - `bm25-passage`, `bm25-sent`: whole passages (sentences) by BM25 with the query, best first,
//!   while they fit, rendered in input order.
//! - `bm25-fill`: `bm25-passage`, then the leftover budget filled with the best BM25 sentences
//!   of the passages it left out.
//!
//! Not here: I/O. Everything is pure.

use std::collections::{HashMap, HashSet};

use crate::compress::text::balanced;
use crate::tokens::Encoding;

/// The baselines for a run with (`true`) or without a query, in the order they are printed.
pub fn names(use_query: bool) -> &'static [&'static str] {
    if use_query { &["head", "bm25-passage", "bm25-sent", "bm25-fill"] } else { &["head", "lead-rr"] }
}

/// The output of baseline `name` for `context` within `budget` cl100k tokens.
pub fn run(name: &str, context: &str, query: &str, budget: usize) -> String {
    match name {
        "head" => head(context, budget),
        "lead-rr" => lead_rr(context, budget),
        "bm25-passage" => {
            let paras = passages(context);
            let scores = bm25(&paras, query);
            select(&paras, &scores, budget, "\n\n")
        }
        "bm25-sent" => {
            let sents = sentences(context);
            let scores = bm25(&sents, query);
            select(&sents, &scores, budget, " ")
        }
        "bm25-fill" => bm25_fill(context, query, budget),
        _ => String::new(),
    }
}

pub(crate) fn ntok(s: &str) -> usize {
    Encoding::Cl100k.count(s)
}

/// Sentences as the scorer cuts them (its `SENT` expression).
pub fn sentences(text: &str) -> Vec<&str> {
    fn push<'t>(text: &'t str, s: usize, e: usize, out: &mut Vec<&'t str>) {
        if !text[s..e].trim().is_empty() {
            out.push(&text[s..e]);
        }
    }
    let b = text.as_bytes();
    let mut out = Vec::new();
    let mut start = 0;
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\n' {
            let mut j = i;
            while j < b.len() && b[j] == b'\n' {
                j += 1;
            }
            push(text, start, i, &mut out);
            start = j;
            i = j;
            continue;
        }
        if b[i].is_ascii_whitespace() && i > 0 && matches!(b[i - 1], b'.' | b'!' | b'?') {
            let mut j = i;
            while j < b.len() && b[j].is_ascii_whitespace() && b[j] != b'\n' {
                j += 1;
            }
            let next = text[j..].chars().next();
            if j < b.len()
                && b[j] != b'\n'
                && next.is_some_and(|c| c.is_uppercase() || c.is_ascii_digit() || "\"'([".contains(c))
            {
                push(text, start, i, &mut out);
                start = j;
                i = j;
                continue;
            }
        }
        i += 1;
    }
    push(text, start, b.len(), &mut out);
    out
}

/// Blocks between blank lines.
pub fn passages(text: &str) -> Vec<&str> {
    text.split("\n\n").filter(|p| !p.trim().is_empty()).collect()
}

fn words(s: &str) -> Vec<String> {
    let mut v = Vec::new();
    crate::compress::text::for_each_word(s, |a, b| v.push(s[a..b].to_lowercase()));
    v
}

pub(crate) fn bm25(units: &[&str], query: &str) -> Vec<f64> {
    let (k1, b) = (1.5, 0.75);
    let tf: Vec<HashMap<String, usize>> = units
        .iter()
        .map(|u| {
            let mut m = HashMap::new();
            for w in words(u) {
                *m.entry(w).or_insert(0) += 1;
            }
            m
        })
        .collect();
    let lens: Vec<f64> = tf.iter().map(|t| t.values().sum::<usize>().max(1) as f64).collect();
    let avg = lens.iter().sum::<f64>() / lens.len().max(1) as f64;
    let mut df: HashMap<&str, usize> = HashMap::new();
    for t in &tf {
        for w in t.keys() {
            *df.entry(w.as_str()).or_insert(0) += 1;
        }
    }
    let n = units.len() as f64;
    let q: HashSet<String> = words(query).into_iter().collect();
    tf.iter()
        .zip(&lens)
        .map(|(t, &len)| {
            q.iter()
                .filter_map(|w| {
                    let f = *t.get(w)? as f64;
                    let d = df[w.as_str()] as f64;
                    let idf = (1.0 + (n - d + 0.5) / (d + 0.5)).ln();
                    Some(idf * f * (k1 + 1.0) / (f + k1 * (1.0 - b + b * len / avg)))
                })
                .sum()
        })
        .collect()
}

/// Best first while they fit (each unit's own count), rendered in input order.
fn select(units: &[&str], scores: &[f64], budget: usize, sep: &str) -> String {
    let mut order: Vec<usize> = (0..units.len()).collect();
    order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
    let mut keep = vec![false; units.len()];
    let mut used = 0;
    for i in order {
        let t = ntok(units[i]);
        if used + t <= budget {
            keep[i] = true;
            used += t;
        }
    }
    units.iter().zip(&keep).filter(|(_, k)| **k).map(|(u, _)| *u).collect::<Vec<_>>().join(sep)
}

pub(crate) fn head(text: &str, budget: usize) -> String {
    // Longest char-boundary prefix within the budget (binary search).
    let (mut lo, mut hi) = (0usize, text.len());
    while lo < hi {
        let mut mid = (lo + hi).div_ceil(2);
        while !text.is_char_boundary(mid) {
            mid += 1;
        }
        if mid > hi {
            break;
        }
        if ntok(&text[..mid]) <= budget {
            lo = mid;
        } else {
            hi = mid - 1;
            while !text.is_char_boundary(hi) {
                hi -= 1;
            }
        }
    }
    text[..lo].to_string()
}

fn lead_rr(text: &str, budget: usize) -> String {
    let sents: Vec<Vec<&str>> = passages(text).into_iter().map(sentences).collect();
    let mut keep: HashSet<(usize, usize)> = HashSet::new();
    let mut used = 0;
    let deepest = sents.iter().map(Vec::len).max().unwrap_or(0);
    for depth in 0..deepest {
        for (i, s) in sents.iter().enumerate() {
            if let Some(x) = s.get(depth) {
                let t = ntok(x) + 1;
                if used + t <= budget {
                    keep.insert((i, depth));
                    used += t;
                }
            }
        }
    }
    let mut out: Vec<String> = sents
        .iter()
        .enumerate()
        .filter_map(|(i, s)| {
            let ks: Vec<&str> = (0..s.len()).filter(|j| keep.contains(&(i, *j))).map(|j| s[j]).collect();
            (!ks.is_empty()).then(|| ks.join(" "))
        })
        .collect();
    let mut text = out.join("\n\n");
    while ntok(&text) > budget && !out.is_empty() {
        out.pop();
        text = out.join("\n\n");
    }
    text
}

fn bm25_fill(text: &str, query: &str, budget: usize) -> String {
    let paras = passages(text);
    let ps = bm25(&paras, query);
    let mut order: Vec<usize> = (0..paras.len()).collect();
    order.sort_by(|&a, &b| ps[b].total_cmp(&ps[a]).then(a.cmp(&b)));
    let mut keep = vec![false; paras.len()];
    let mut used = 0;
    for i in order {
        let t = ntok(paras[i]) + 1;
        if used + t <= budget {
            keep[i] = true;
            used += t;
        }
    }
    let units: Vec<(usize, usize, &str)> = paras
        .iter()
        .enumerate()
        .filter(|(i, _)| !keep[*i])
        .flat_map(|(i, p)| sentences(p).into_iter().enumerate().map(move |(j, s)| (i, j, s)))
        .collect();
    let texts: Vec<&str> = units.iter().map(|u| u.2).collect();
    let ss = if units.is_empty() { Vec::new() } else { bm25(&texts, query) };
    let mut by_score: Vec<usize> = (0..units.len()).collect();
    by_score.sort_by(|&a, &b| ss[b].total_cmp(&ss[a]).then(a.cmp(&b)));
    let mut extra = Vec::new();
    for k in by_score {
        let t = ntok(units[k].2) + 1;
        if used + t <= budget {
            extra.push(k);
            used += t;
        }
    }
    let render = |extra: &[usize]| -> String {
        let mut part: HashMap<usize, Vec<(usize, &str)>> = HashMap::new();
        for &k in extra {
            let (i, j, s) = units[k];
            part.entry(i).or_default().push((j, s));
        }
        let mut out = Vec::new();
        for (i, p) in paras.iter().enumerate() {
            if keep[i] {
                out.push(p.to_string());
            } else if let Some(v) = part.get_mut(&i) {
                v.sort();
                out.push(v.iter().map(|x| x.1).collect::<Vec<_>>().join(" "));
            }
        }
        out.join("\n\n")
    };
    let mut text = render(&extra);
    extra.sort_by(|&a, &b| ss[a].total_cmp(&ss[b]).then(b.cmp(&a)));
    while ntok(&text) > budget && !extra.is_empty() {
        extra.remove(0);
        text = render(&extra);
    }
    text
}

/// Readability of `output` against its `input`: (output sentences that are whole input
/// sentences, all output sentences, whether some output passage has an unbalanced bracket,
/// quote or link that the input passage it comes from did not have).
pub fn readability(input: &str, output: &str) -> (usize, usize, bool) {
    let input_sentences: HashSet<&str> = sentences(input).into_iter().map(str::trim).collect();
    let out = sentences(output);
    let verbatim = out.iter().filter(|s| input_sentences.contains(s.trim())).count();
    let in_passages = passages(input);
    let unbalanced = passages(output).into_iter().any(|p| {
        if balanced(p) {
            return false;
        }
        // The input passage it comes from: the one holding its first sentence (its first line
        // may join sentences that were apart in the input, once a title is left out).
        let first = sentences(p).into_iter().next().unwrap_or("").trim();
        !in_passages.iter().any(|ip| ip.contains(first) && !balanced(ip))
    });
    (verbatim, out.len(), unbalanced)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sentences_are_cut_like_the_scorer() {
        let t = "Title: A b\nOne two. Three (four). five. 6 seven!\n\nEight";
        assert_eq!(sentences(t), ["Title: A b", "One two.", "Three (four). five.", "6 seven!", "Eight"]);
    }

    #[test]
    fn baselines_stay_within_budget_and_pick_what_they_should() {
        let ctx = "Title: Trains\nTrains run on rails. They carry goods.\n\n\
                   Title: Songs\nThe Bee Gees sang a song. It was a hit in 1971.";
        let b = ntok(ctx) * 2 / 3;
        for name in names(true).iter().chain(names(false)) {
            let out = run(name, ctx, "who sang the song", b);
            assert!(ntok(&out) <= b, "{name}: {out:?}");
        }
        assert!(run("bm25-passage", ctx, "who sang the song", b).contains("Bee Gees"));
        assert!(run("lead-rr", ctx, "", b).starts_with("Title: Trains"));
    }

    #[test]
    fn readability_counts_verbatim_sentences_and_broken_brackets() {
        let input = "Ripgrep (rg) is fast. It searches files.";
        assert_eq!(readability(input, "Ripgrep (rg) is fast."), (1, 1, false));
        assert_eq!(readability(input, "(rg) fast searches."), (0, 1, false));
        assert_eq!(readability(input, "Ripgrep (rg is fast."), (0, 1, true));
    }
}
