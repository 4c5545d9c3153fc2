//! Ranking: how useful each segment is, with or without a query.
//!
//! Both modes share one analysis: every word gets a term id (lower-cased, Snowball-stemmed),
//! and every term an inverse document frequency computed **within the input** over its
//! segments (`idf = ln(1 + (S − df + ½) / (df + ½))`), so rare words, names and numbers weigh more
//! than words every sentence repeats. No corpus statistics and no I/O; the only model is the
//! table of static word vectors of [`semantic`], compiled in.
//!
//! **With a query** (passage-then-sentence):
//! 1. each block (passage) is scored by BM25 of the query's content terms over the block's words,
//!    plus a bonus for query terms in its title/heading, plus a proximity bonus for pairs of query
//!    terms that stand next to each other in the query and within a few content words in the block;
//!    Query words the stemmer does not join to an input word get weaker variants (a word that
//!    extends or is extended by a query word of ≥ 6 letters by ≤ 3 letters, the compound of two
//!    adjacent query words: `pace maker` → `pacemaker`, other spellings of small numbers:
//!    `5` → `fifth`; see [`query_variants`]);
//!    a block's lexical score divided by the best block's (`z_block`) is then mixed with its
//!    semantic relevance: `z_block += SEMANTIC_WEIGHT · (sem − 1)`, where `sem` is the cosine
//!    between the static vectors of the query and of the block (distilled from all-MiniLM-L6-v2,
//!    see [`semantic`]), min-max scaled over the blocks so the most similar block has 1. It
//!    finds the passage that answers in other words than the question's;
//! 2. each sentence is scored the same way on its own words (lexically only: the semantic
//!    signal did not help at sentence level);
//! 3. a sentence's utility is `exp(τ·(z_block − 1)) · (α + rel_sentence + lead)`, where α grows
//!    with the share of the input the budget keeps (whole passages when it is generous), `z_block` is
//!    the block score divided by the best block score and `rel_sentence` the sentence score divided
//!    by the best sentence score of the block, `lead` a small bonus for a block's first sentence.
//!    Whole good passages therefore come first, then the best sentences of the next passages.
//!
//! **Without a query**: the leads of sections and passages first, then whole passages in the
//! order of how much they share with the others, see [`agnostic_utilities`]. A word's
//! information (idf; stopwords ≈ 0; frequent English words × 0.5; numbers and capitalised words
//! inside a sentence × 1.5) orders sentences of similar standing.
//!
//! The packer divides utility by token cost, so utilities only need to be comparable, not
//! normalised. Word weights are also returned: the packer uses them to pick the best window of
//! words when it fills the last bit of budget, and `quality_score` uses them to measure the
//! information kept.

use super::query::QueryWords;
use super::segment::{SegKind, Segment, is_title, title_name};
use super::semantic;
use super::text::{Lexicon, for_each_word, is_common, is_stopword};

/// One word occurrence inside a segment.
#[derive(Debug, Clone, Copy)]
pub struct Word {
    pub start: usize,
    pub end: usize,
    pub term: u32,
}

/// Per-input analysis shared by ranking, packing and scoring.
pub struct Analysis {
    pub words: Vec<Word>,
    /// `seg_words[i]..seg_words[i + 1]` are the words of segment `i`.
    pub seg_words: Vec<usize>,
    /// Information weight of each word (same indexing as `words`).
    pub word_weight: Vec<f64>,
    pub idf: Vec<f64>,
    /// Per block, in [0, 1]: how much of its vocabulary it shares with other blocks (1 = the most
    /// central block). All 1.0 when there are fewer than 4 blocks.
    pub block_centrality: Vec<f64>,
    pub lexicon: Lexicon,
}

impl Analysis {
    pub fn new(text: &str, segs: &[Segment]) -> Self {
        let mut lexicon = Lexicon::new();
        let mut words = Vec::with_capacity(text.len() / 5);
        let mut seg_words = Vec::with_capacity(segs.len() + 1);
        for s in segs {
            seg_words.push(words.len());
            let base = s.start;
            for_each_word(&text[s.start..s.end], |a, b| {
                let term = lexicon.term(&text[base + a..base + b]);
                words.push(Word { start: base + a, end: base + b, term });
            });
        }
        seg_words.push(words.len());

        // Sentence-level document frequency.
        let nterms = lexicon.len();
        let mut df = vec![0u32; nterms];
        let mut last_seen = vec![u32::MAX; nterms];
        for (si, w) in seg_words.windows(2).enumerate() {
            for word in &words[w[0]..w[1]] {
                let t = word.term as usize;
                if last_seen[t] != si as u32 {
                    last_seen[t] = si as u32;
                    df[t] += 1;
                }
            }
        }
        let n = segs.len().max(1) as f64;
        let idf: Vec<f64> = df.iter().map(|&d| (1.0 + (n - d as f64 + 0.5) / (d as f64 + 0.5)).ln()).collect();

        // Word weights use block-level idf when there are enough blocks (passages): a name
        // repeated inside its own passage is that passage's topic, not filler.
        let nblocks = segs.last().map_or(0, |s| s.block + 1);
        let mut block_centrality = vec![1.0; nblocks];
        let weight_idf: Vec<f64> = if nblocks >= 4 {
            let mut dfb = vec![0u32; nterms];
            each_block_term(segs, &words, &seg_words, nterms, |_, term| dfb[term as usize] += 1);
            let nb = nblocks as f64;
            let weights: Vec<f64> =
                dfb.iter().map(|&d| (1.0 + (nb - d as f64 + 0.5) / (d as f64 + 0.5)).ln()).collect();
            // Centrality, linear time: each distinct content term of a block adds its block idf
            // times (1 + its rarity in English) times the number of other blocks that share it;
            // divided by the block's distinct terms.
            let mut rarity = vec![f64::NAN; nterms];
            // Each term's first word, whose surface form its rarity is read from.
            let mut first = vec![usize::MAX; nterms];
            for (k, w) in words.iter().enumerate().rev() {
                first[w.term as usize] = k;
            }
            let mut score = vec![0.0f64; nblocks];
            let mut distinct = vec![0usize; nblocks];
            // Passages of one source (the same `Title:` line) do not vouch for each other: an
            // article cut into several passages is not for that reason what the others are about.
            let siblings = same_source_counts(text, segs, &words, &seg_words, nblocks, nterms);
            each_block_term(segs, &words, &seg_words, nterms, |b, term| {
                if !lexicon.is_stop(term) {
                    let t = term as usize;
                    distinct[b] += 1;
                    let shared_within = siblings.as_ref().map_or(1, |(group, same)| same[&(group[b], term)]);
                    let others = dfb[t] - shared_within;
                    if others > 0 {
                        if rarity[t].is_nan() {
                            let w = &words[first[t]];
                            rarity[t] = english_rarity(&text[w.start..w.end]);
                        }
                        score[b] += weights[t] * (1.0 + rarity[t]) * others as f64;
                    }
                }
            });
            for (s, d) in score.iter_mut().zip(&distinct) {
                *s /= (*d).max(1) as f64;
            }
            let best = score.iter().cloned().fold(0.0, f64::max);
            if best > 0.0 {
                block_centrality = score.iter().map(|s| s / best).collect();
            }
            weights
        } else {
            idf.clone()
        };

        let mut word_weight = Vec::with_capacity(words.len());
        for w in seg_words.windows(2) {
            for (k, word) in words[w[0]..w[1]].iter().enumerate() {
                let t = word.term as usize;
                let surface = &text[word.start..word.end];
                let capitalised = k > 0 && surface.chars().next().is_some_and(char::is_uppercase);
                if lexicon.is_stop(word.term) && !capitalised {
                    word_weight.push(0.05);
                    continue;
                }
                let mut weight = weight_idf[t];
                if surface.len() <= 12 && is_common(&surface.to_ascii_lowercase()) {
                    weight *= 0.5;
                }
                if surface.bytes().any(|b| b.is_ascii_digit()) || capitalised {
                    weight *= 1.5;
                }
                word_weight.push(weight);
            }
        }
        Analysis { words, seg_words, word_weight, idf, block_centrality, lexicon }
    }

    pub fn seg_range(&self, i: usize) -> std::ops::Range<usize> {
        self.seg_words[i]..self.seg_words[i + 1]
    }

    /// Information weight of segment `i` (sum of its word weights).
    pub fn seg_info(&self, i: usize) -> f64 {
        self.word_weight[self.seg_range(i)].iter().sum()
    }
}

/// Content terms of the query that occur in the input, in query order, with their idf.
pub fn query_terms(analysis: &mut Analysis, query: &str) -> Vec<(u32, f64)> {
    let terms: Vec<u32> =
        QueryWords::read(query, &[]).words.iter().filter_map(|w| analysis.lexicon.lookup(w)).collect();
    let mut seen = std::collections::HashSet::new();
    terms.into_iter().filter(|t| seen.insert(*t)).map(|t| (t, analysis.idf[t as usize])).collect()
}

/// Input terms that are probably forms of the query's words the stemmer does not join, with
/// [`VARIANT_WEIGHT`] times their idf: a word that extends a query word of at least 6 letters
/// by at most 3 letters or that it extends (`europe`/`european`, `africa`/`african`), the
/// compound of two adjacent query words (`pace maker` → `pacemaker`), and the other spellings
/// of a number from 1 to 12 (`5`, `five`, `fifth`, `5th`). Terms already in `qterms` are left
/// out.
pub fn query_variants(analysis: &Analysis, query: &str, qterms: &[(u32, f64)]) -> Vec<(u32, f64)> {
    let mut qwords: Vec<String> = Vec::new();
    for_each_word(query, |a, b| {
        let w = query[a..b].to_lowercase();
        if w.bytes().all(|c| c.is_ascii_alphabetic()) && !is_stopword(&w) {
            qwords.push(w);
        }
    });
    let mut out: Vec<(u32, f64)> = Vec::new();
    let add = |t: u32, out: &mut Vec<(u32, f64)>| {
        if !qterms.iter().any(|&(q, _)| q == t) && !out.iter().any(|&(q, _)| q == t) {
            out.push((t, VARIANT_WEIGHT * analysis.idf[t as usize]));
        }
    };
    for pair in qwords.windows(2) {
        let compound = format!("{}{}", pair[0], pair[1]);
        if let Some(t) = analysis.lexicon.surface_id(&compound) {
            add(t, &mut out);
        }
    }
    // Numbers in the query: the other ways of writing them (`5`, `five`, `fifth`, `5th`).
    let mut numbers: Vec<usize> = Vec::new();
    for_each_word(query, |a, b| {
        let w = query[a..b].to_lowercase();
        if let Some(n) = NUMBER_WORDS
            .iter()
            .position(|&(c, o)| c == w || o == w)
            .map(|i| i + 1)
            .or_else(|| w.parse::<usize>().ok())
            .or_else(|| {
                w.strip_suffix(['t', 'd', 'h'].as_slice())
                    .and_then(|x| x.strip_suffix(['s', 'n', 'r', 't'].as_slice()))
                    .and_then(|x| x.parse().ok())
            })
            && (1..=NUMBER_WORDS.len()).contains(&n)
        {
            numbers.push(n);
        }
    });
    for n in numbers {
        let (cardinal, ordinal) = NUMBER_WORDS[n - 1];
        let suffix = match n {
            1 => "st",
            2 => "nd",
            3 => "rd",
            _ => "th",
        };
        for form in [n.to_string(), cardinal.to_string(), ordinal.to_string(), format!("{n}{suffix}")] {
            if let Some(t) = analysis.lexicon.surface_id(&form)
                && !analysis.lexicon.is_stop(t)
            {
                add(t, &mut out);
            }
        }
    }
    let long_words: Vec<&String> = qwords.iter().filter(|w| w.len() >= 6).collect();
    if !long_words.is_empty() {
        for (s, t) in analysis.lexicon.surfaces() {
            if s.len() < 6 || !s.bytes().all(|c| c.is_ascii_alphabetic()) {
                continue;
            }
            let related = long_words.iter().any(|q| {
                let (short, long) = if q.len() <= s.len() { (q.as_str(), s) } else { (s, q.as_str()) };
                short != long && long.len() - short.len() <= 3 && long.starts_with(short)
            });
            if related && !analysis.lexicon.is_stop(t) {
                add(t, &mut out);
            }
        }
    }
    out.sort_by_key(|&(t, _)| t);
    out
}

/// Cardinal and ordinal words of 1 to 12.
const NUMBER_WORDS: &[(&str, &str)] = &[
    ("one", "first"),
    ("two", "second"),
    ("three", "third"),
    ("four", "fourth"),
    ("five", "fifth"),
    ("six", "sixth"),
    ("seven", "seventh"),
    ("eight", "eighth"),
    ("nine", "ninth"),
    ("ten", "tenth"),
    ("eleven", "eleventh"),
    ("twelve", "twelfth"),
];

/// Weight of a query variant relative to its idf.
const VARIANT_WEIGHT: f64 = 0.7;

/// Tuning constants, named so the doc above can refer to them.
const K1: f64 = 1.2;
const B: f64 = 0.75;
const TITLE_WEIGHT: f64 = 1.0;
const PROXIMITY_WEIGHT: f64 = 1.0;
const TAU: f64 = 6.0;
const ALPHA: f64 = 0.3;
const ALPHA_GROWTH: f64 = 2.4;
const LEAD: f64 = 0.2;
const SPILL: f64 = 0.25;
const ANSWER_SHAPE: f64 = 0.4;
/// Weight of the semantic block relevance next to the lexical one (`z_block` ∈ [0, 1]).
const SEMANTIC_WEIGHT: f64 = 0.5;
/// Which passages may lift the passages they name ([`hops`]): the `sources` best, and how far
/// below its namer a named passage lands.
#[derive(Clone, Copy)]
struct Hops {
    sources: usize,
    gap: f64,
}

impl Hops {
    /// With a query: the two best passages, a named one just below its namer.
    const QUERY: Hops = Hops { sources: 2, gap: 0.1 };
    /// Without one (block centrality): every passage, a named one level with its namer.
    const ALL_NAMERS: Hops = Hops { sources: usize::MAX, gap: 0.0 };
}
/// Longer titles are never looked for in the query or in other passages.
const MAX_TITLE_WORDS: usize = 12;

/// Utility of every segment for `query`, whose content terms `qterms` ([`query_terms`], not
/// empty: without them the caller ranks with [`agnostic_utilities`]).
/// `keep_fraction` is the share of the input's tokens the budget allows: with a generous budget
/// a passage's weaker sentences are worth almost as much as its best ones (whole passages are
/// kept), with a tight one only the best sentences count.
pub fn utilities(
    analysis: &mut Analysis,
    text: &str,
    segs: &[Segment],
    query: &str,
    qterms: &[(u32, f64)],
    keep_fraction: f64,
) -> Vec<f64> {
    let kind = answer_kind(query);
    let alpha = ALPHA + ALPHA_GROWTH * (keep_fraction - 0.1).max(0.0);
    // Variants follow the query's own terms, each after a term that never occurs, so that the
    // proximity bonus (terms adjacent in the query) only pairs the query's own words.
    let mut terms = qterms.to_vec();
    for v in query_variants(analysis, query, qterms) {
        terms.push((u32::MAX, 0.0));
        terms.push(v);
    }
    let sem = block_semantic(analysis, text, segs, query);
    let mut qseq: Vec<u32> = Vec::new();
    for_each_word(query, |x, y| qseq.push(analysis.lexicon.lookup(&query[x..y]).unwrap_or(u32::MAX)));
    let q = ParsedQuery { terms: &terms, words: &qseq, kind };
    query_utilities(analysis, text, segs, &q, alpha, sem.as_deref())
}

/// Per-term static vectors (of the first surface form seen), zero for unknown words.
fn term_vectors(a: &Analysis, text: &str) -> Vec<[f32; semantic::DIM]> {
    let mut out = vec![[0.0f32; semantic::DIM]; a.lexicon.len()];
    let mut done = vec![false; a.lexicon.len()];
    let mut e = semantic::Embedder::new();
    for w in &a.words {
        let t = w.term as usize;
        if !done[t] {
            done[t] = true;
            if let Some(v) = e.word(&text[w.start..w.end]) {
                out[t] = v;
            }
        }
    }
    out
}

/// Semantic relevance of each block: the cosine between the query's and the block's static
/// vectors (see [`semantic`]), min-max scaled to [0, 1] over the blocks. The query vector
/// weights its content words by idf (words absent from the input get the highest idf: they are
/// what lexical matching cannot see); a block's vector weights its words by `word_weight`.
/// `None` when the input has fewer than two blocks or the similarities do not differ.
fn block_semantic(a: &mut Analysis, text: &str, segs: &[Segment], query: &str) -> Option<Vec<f64>> {
    let nblocks = segs.last().map_or(0, |s| s.block + 1);
    if nblocks < 2 {
        return None;
    }
    let tv = term_vectors(a, text);
    let max_idf = (1.0 + (segs.len() as f64 + 0.5) / 0.5).ln();
    let mut e = semantic::Embedder::new();
    let mut qv = [0.0f32; semantic::DIM];
    for_each_word(query, |x, y| {
        let w = &query[x..y];
        if is_stopword(&w.to_lowercase()) {
            return;
        }
        let weight = match a.lexicon.lookup(w) {
            Some(t) => a.idf[t as usize],
            None => max_idf,
        };
        if let Some(v) = e.word(w) {
            semantic::axpy(&mut qv, weight as f32, &v);
        }
    });
    let mut bv = vec![[0.0f32; semantic::DIM]; nblocks];
    for (i, s) in segs.iter().enumerate() {
        for k in a.seg_range(i) {
            let t = a.words[k].term as usize;
            semantic::axpy(&mut bv[s.block], a.word_weight[k] as f32, &tv[t]);
        }
    }
    let cos: Vec<f64> = bv.iter().map(|v| semantic::cosine(&qv, v) as f64).collect();
    let (lo, hi) = cos.iter().fold((f64::MAX, f64::MIN), |(l, h), &c| (l.min(c), h.max(c)));
    (hi > lo).then(|| cos.iter().map(|c| (c - lo) / (hi - lo)).collect())
}

/// What kind of answer a question asks for, from its wh-word.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AnswerKind {
    /// who / whom / whose
    Person,
    /// when / what year / what date
    Time,
    /// how many / how much / how long / how old / how far
    Quantity,
    /// where
    Place,
    Other,
}

pub fn answer_kind(query: &str) -> AnswerKind {
    let q = format!(" {} ", query.to_lowercase());
    let has = |w: &str| q.contains(w);
    if has(" how many ")
        || has(" how much ")
        || has(" how long ")
        || has(" how old ")
        || has(" how far ")
        || has(" how tall ")
        || has(" how big ")
        || has(" percentage ")
    {
        AnswerKind::Quantity
    } else if has(" when ") || has(" what year ") || has(" which year ") || has(" what date ") {
        AnswerKind::Time
    } else if has(" who ") || has(" whom ") || has(" whose ") {
        AnswerKind::Person
    } else if has(" where ") {
        AnswerKind::Place
    } else {
        AnswerKind::Other
    }
}

/// The months' names, in order.
pub(crate) const MONTHS: &[&str] = &[
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
];

/// Does the sentence hold a plausible answer of `kind` (a name that is not in the query, a year
/// or month, a number)?
fn has_answer_shape(text: &str, words: &[Word], qterms: &[(u32, f64)], kind: AnswerKind) -> bool {
    match kind {
        AnswerKind::Other => false,
        AnswerKind::Person | AnswerKind::Place => words.iter().skip(1).any(|w| {
            text[w.start..w.end].chars().next().is_some_and(char::is_uppercase)
                && !qterms.iter().any(|&(t, _)| t == w.term)
        }),
        AnswerKind::Time => words.iter().any(|w| {
            let s = &text[w.start..w.end];
            (s.len() == 4 && s.bytes().all(|b| b.is_ascii_digit()) && (s.starts_with('1') || s.starts_with("20")))
                || (s.len() >= 3 && MONTHS.contains(&s.to_lowercase().as_str()))
        }),
        AnswerKind::Quantity => words.iter().any(|w| text[w.start..w.end].bytes().any(|b| b.is_ascii_digit())),
    }
}

/// The position prior of the `j`-th sentence of a section: `1 + LEAD_PRIOR` for its first,
/// `1 + FOLLOW_PRIOR / (1 + j)` after (31, 13.5, 9.3, 7.3, 6, …). The lead is worth a little
/// over twice the second sentence: enough for the leads to come first at the same standing,
/// little enough for a central passage's body to come before a peripheral passage's lead.
const LEAD_PRIOR: f64 = 30.0;
const FOLLOW_PRIOR: f64 = 25.0;
/// Exponent of the block's centrality (relative to the mean) for sentences after the lead.
const CENTRALITY_POWER: f64 = 2.5;
/// Exponent of a lead's block centrality relative to the median, for blocks below it.
const LEAD_CENTRALITY_POWER: f64 = 1.0;
/// Exponent of a lead's block centrality relative to the median, for blocks above it: gentle,
/// so the leads of central passages keep their place before later sentences and only their
/// order among themselves follows the centrality, not the input's order, when not all of them
/// fit. nq-multidoc-dev without a query at 4x: 69.5% (input order) → 69.9% (0.03 / 0.2 / 0.3:
/// 69.5 / 69.6 / 69.7); SQuAD unchanged, multi-hop 61.3 → 61.3 (62.0 at 0.2 and 0.3). Only for
/// sets of titled passages: in a document with headings the author's order is the better one
/// (markdown-dev at 4x: the queried section kept 90 → 80%).
const LEAD_ORDER_POWER: f64 = 0.1;
/// A document's front matter is worth this share of its last section lead, per token.
const FRONT_MATTER: f64 = 0.5;
/// How much a later sentence's information per word (over the mean sentence's) raises it.
const DENSITY_POWER: f64 = 0.5;

/// How much longer than the budget the passages' leads may be for the `Title:` lines to wait
/// behind them (see [`late_titles`]).
const LEADS_OVER_BUDGET: f64 = 1.25;

/// The `Title:` lines to hold back behind the passages' first sentences, when the text is a
/// set of titled passages whose first sentences (nearly) all fit in `budget`: each lead then
/// says more than its title, and the titles come back only if room is left. When the leads
/// are far more than the budget, the titles stay first (empty answer): a title is then the
/// cheapest way to name a passage that would otherwise be missing altogether.
///
/// Measured without a query (2x / 4x, first 300 items of each QA dev set, Python model of the
/// packer): titles always after the leads: nq-multidoc +0 / +11, SQuAD +0 / +5, multi-hop
/// +2 / −4 (2WikiMultihop's long leads at 4x, where the title alone holds the answer entity);
/// with the fit rule: nq +0 / +8, SQuAD +0 / +3, multi-hop +2 / +1.
pub fn late_titles(text: &str, segs: &[Segment], cost: &dyn Fn(usize) -> usize, budget: usize) -> Vec<bool> {
    let n = segs.len();
    let mut late = vec![false; n];
    let mut leads = 0usize;
    let mut titles = 0usize;
    for i in 0..n {
        let s = &segs[i];
        if is_title(text, s) {
            late[i] = true;
            titles += 1;
            // The passage's first sentence.
            if let Some(j) =
                (i + 1..n).take_while(|&j| segs[j].block == s.block).find(|&j| segs[j].kind == SegKind::Sentence)
            {
                leads += cost(j);
            }
        }
    }
    if titles < 2 || leads as f64 > budget as f64 * LEADS_OVER_BUDGET {
        return Vec::new();
    }
    late
}

/// How rare a word is in English, from its rank in `cl100k_base`'s vocabulary (the BPE merges
/// came in order of frequency): `ln(1 + rank) − 6` for a word that is one token with its leading
/// space, at least 0 ("the", "and" and "first" are near 0, "heart" 2.5, "intestine" 5.4), and
/// 5.5 for a word of several tokens (a rarer word, a number, a name in another script).
///
/// A term many passages share says what the whole text is about mostly when it is rare in
/// English: passages retrieved for one question share its rare words, unrelated passages share
/// common ones. The rank of the gold passage by centrality on nq-multidoc-dev (1,000 items,
/// Python model) is in the top 1 / 4 / 8 for 8.9 / 36.1 / 68.5% of items with the text's own
/// block idf, 12.9 / 40.3 / 72.1% with this rarity. In the engine, block centrality weighs a
/// shared term by idf × (1 + rarity) (rarity alone: multi-hop −8 / −6 points without a query).
fn english_rarity(word: &str) -> f64 {
    const MULTI: f64 = 11.5;
    let mut buf = [0u8; 48];
    let lower = word.as_bytes();
    if lower.len() + 1 > buf.len() || !word.is_ascii() {
        return MULTI - 6.0;
    }
    buf[0] = b' ';
    for (d, c) in buf[1..].iter_mut().zip(lower) {
        *d = c.to_ascii_lowercase();
    }
    let ids = bpe_openai::cl100k_base().bpe.encode_via_backtracking(&buf[..lower.len() + 1]);
    let ln_rank = if ids.len() == 1 { (1.0 + ids[0] as f64).ln() } else { MULTI };
    (ln_rank - 6.0).max(0.0)
}

/// Per (source block, term): how many blocks of that source hold the term.
type SourceTermCounts = std::collections::HashMap<(usize, u32), u32, crate::tokens::FxBuild>;

/// For block centrality, when some passages share a `Title:` line: each block's source (the
/// first block with its title, else itself) and, per source and term, how many of its blocks
/// hold the term. `None` when every title is distinct (each block its own source).
fn same_source_counts(
    text: &str,
    segs: &[Segment],
    words: &[Word],
    seg_words: &[usize],
    nblocks: usize,
    nterms: usize,
) -> Option<(Vec<usize>, SourceTermCounts)> {
    let mut source: Vec<usize> = (0..nblocks).collect();
    let mut first_with: std::collections::HashMap<&str, usize> = Default::default();
    let mut shared = false;
    for s in segs.iter().filter(|s| is_title(text, s)) {
        let title = text[s.start..s.end].trim();
        if s.block < nblocks {
            let first = *first_with.entry(title).or_insert(s.block);
            shared |= first != s.block;
            source[s.block] = first;
        }
    }
    if !shared {
        return None;
    }
    let mut counts = SourceTermCounts::default();
    each_block_term(segs, words, seg_words, nterms, |b, term| *counts.entry((source[b], term)).or_default() += 1);
    Some((source, counts))
}

/// Calls `f(block, term)` once for each distinct term of each block (segments of one block
/// are consecutive).
fn each_block_term(
    segs: &[Segment],
    words: &[Word],
    seg_words: &[usize],
    nterms: usize,
    mut f: impl FnMut(usize, u32),
) {
    let mut last_block = vec![usize::MAX; nterms];
    for (si, w) in seg_words.windows(2).enumerate() {
        let b = segs[si].block;
        for word in &words[w[0]..w[1]] {
            let t = word.term as usize;
            if last_block[t] != b {
                last_block[t] = b;
                f(b, word.term);
            }
        }
    }
}

/// Query-agnostic utilities, for packing whole segments. The *value* of a segment (what the
/// packer sorts by, since it divides utility by cost) is
/// - for a sentence: its position prior in its section (a passage, or the text under a
///   heading; see [`LEAD_PRIOR`]), times its block's *standing*: the block centrality, raised to that of a
///   passage naming it (a passage another one names by its title is a second hop, however
///   little it shares with the rest). For a lead, the standing counts only below the median
///   block's (`(c / median)`, at most 1): the leads of passages that share least with the others
///   wait, the rest stay in input order; in a text without titles or headings, the opening
///   paragraph never waits (a contract's preamble names its parties once). For later sentences it counts steeply
///   (`(c / mean)^`[`CENTRALITY_POWER`]),
///   so whole central passages come before the rest, and among those the sentences dense in
///   rare words, names and numbers (information per word over the mean sentence's, square root).
///   A section's lead is raised to its best later sentence, so it never comes after them;
/// - for a header (`Title:` line, heading): the best sentence value, so titles come first,
///   except the `Title:` lines in `late_titles`, which come right after the last lead.
///
/// Measured on the QA dev sets without a query (all items, 2x / 4x), each change against the
/// one before. Session 5: `Title:` lines after the leads when the leads fit ([`late_titles`]):
/// nq +0.2 / +9.9, SQuAD +0 / +0.7, multi-hop +0 / −1.3. Session 6: passages of one source
/// (one `Title:`) not counted in each other's centrality: nq +0.7 / 0, SQuAD +2.4 / +0.3.
/// Session 8, from nq 78.6 / 48.6, multi-hop 79.0 / 57.0, SQuAD 64.7 / 34.3:
/// - leads below the median standing wait, in proportion (power 1): nq +0.7 / +9.4, SQuAD
///   +0.3 / +3.4, multi-hop +1.7 / +0.3. This needs the standing lifted for named passages: on
///   the plain centrality (session 7) leads by centrality cost multi-hop 2 to 6 points at 4x,
///   below `lead-rr`, as its answer is mostly in the lead of a second-hop passage that the
///   others do not resemble;
/// - later sentences by centrality to the power 4 instead of 0.25: nq +5.1 / +5.3, SQuAD
///   +6.3 / +3.6, multi-hop −0.4 / 0 (powers 2 / 3 / 6: nq 82.7 / 83.1 / 86.2 at 2x,
///   multi-hop 57.7 / 57.7 / 56.7 at 4x);
/// - a flatter position prior (lead 31, then 13.5, 9.3, 7.3, … instead of 101, 13.5, 4.7,
///   2.6, …), and a lead never worth less than a later sentence of its section (a central
///   passage's body no longer comes before its own lead): nq +4.6 / +2.6, SQuAD +2.4 / +5.4,
///   multi-hop 0 / +2.0. Neighbours (lead 21 or 51, decay 1/(1+j)^½ or ^2) move nq by −2.5 to
///   +0.7 and multi-hop by −3 to −0.3.
///
/// Session 9, from nq 89.0 / 65.9, multi-hop 80.3 / 59.3, SQuAD 73.7 / 46.7:
/// - shared terms weighed by their rarity in English too ([`english_rarity`]): nq +0.6 / +1.1,
///   multi-hop +0.4 / +1.7, SQuAD −0.7 / −1.0;
/// - a chunk that opens mid-sentence leads with its first whole sentence ([`opens_mid_sentence`];
///   8% of nq's passages): nq +0.9 / +0.5, the others unchanged;
/// - later sentences by centrality to the power 2.5 instead of 4 (the rarer-word centrality is
///   more spread out): nq 0 / +1.5, multi-hop +0.3 / +0.3, SQuAD 0 / 0 (power 3: nq 90.3 / 69.3,
///   multi-hop 79.3 / 62.0). Together: nq 90.5 / 69.0, multi-hop 81.0 / 61.3, SQuAD 73.0 / 45.7.
///   Their cost is on markdown without a query: the queried section's lines kept 55.6 / 31.9% at
///   2x / 4x instead of 57.1 / 40.1% (head truncation: 61.0 / 30.3); 62.3 / 40.5% once HTML
///   blocks became whole segments and bare wrapper tags worthless (`only_tags`).
///
/// Session 13, from nq 90.5 / 69.0, multi-hop 81.0 / 61.3, SQuAD 73.0 / 45.7: a title that
/// repeats an earlier one is not kept alone (the packer): nq +0 / +0.1, SQuAD +0 / +0.6; a
/// chunk's cut-off last sentence is worth nothing ([`cut_at_end`]): nq +0.1 / +0.4; leads above
/// the median ordered by centrality among titled passages ([`LEAD_ORDER_POWER`]): nq 0 / +0.4.
/// Together: nq 90.6 / 69.9, multi-hop 81.0 / 61.3, SQuAD 73.0 / 46.3; markdown unchanged.
///
/// `cost(i)` is segment `i`'s token estimate. Returned utilities are value × cost.
pub fn agnostic_utilities(
    a: &Analysis,
    text: &str,
    segs: &[Segment],
    cost: &dyn Fn(usize) -> usize,
    late_titles: &[bool],
) -> Vec<f64> {
    let n = segs.len();
    let nblocks = a.block_centrality.len().max(1);
    // A passage another passage names (the second hop of a linked pair) stands with its namer.
    let mut standing = a.block_centrality.clone();
    hops(a, text, segs, &block_ranges(a, segs, standing.len()), &[], &mut standing, Hops::ALL_NAMERS);
    let mean_centrality = standing.iter().sum::<f64>() / nblocks as f64;
    let median_centrality = {
        let mut sorted = standing.clone();
        sorted.sort_by(f64::total_cmp);
        sorted.get(sorted.len() / 2).copied().unwrap_or(0.0)
    };
    let mut value = vec![0.0; n];
    // Information per word of a segment.
    let density = |i: usize| {
        let r = a.seg_range(i);
        a.seg_info(i) / (r.end - r.start).max(1) as f64
    };
    let (mut dsum, mut dn) = (0.0, 0usize);
    for (i, s) in segs.iter().enumerate() {
        if s.kind == SegKind::Sentence && !a.seg_range(i).is_empty() {
            dsum += density(i);
            dn += 1;
        }
    }
    let mean_density = if dn > 0 { dsum / dn as f64 } else { 0.0 };
    // A plain document (no titles, no headings: a letter, a contract, an article) opens with
    // what it is about: its first paragraph (not a title line above it) never waits. Passages
    // with titles (retrieved contexts) and sections with headings rank as they are.
    let opening = if segs.iter().any(|s| s.kind == SegKind::Header) {
        None
    } else {
        segs.iter()
            .find(|s| s.kind == SegKind::Sentence && text[s.start..s.end].split_whitespace().nth(7).is_some())
            .map(|s| s.block)
    };
    // Separate passages (`Title:` lines), whose order says little of their worth.
    let passages = segs.iter().filter(|s| is_title(text, s)).nth(1).is_some();
    let mut j = 0usize;
    let mut leads: Vec<usize> = Vec::new();
    let mut lead: Option<usize> = None;
    let mut after_fragment = false;
    for (i, s) in segs.iter().enumerate() {
        let mut new_section = i == 0 || segs[i - 1].block != s.block || segs[i - 1].kind == SegKind::Header;
        if new_section {
            j = 0;
            lead = None;
        } else if std::mem::take(&mut after_fragment) {
            new_section = true;
        }
        if s.kind == SegKind::Header {
            continue;
        }
        // Table headers and speaker labels come only with what they introduce; a piece without
        // a word (a rule, a lone marker) says nothing.
        if matches!(s.kind, SegKind::TableHead | SegKind::Label)
            || a.seg_info(i) <= 0.0
            || only_tags(&text[s.start..s.end])
        {
            continue;
        }
        // A passage cut mid-sentence (a retrieved chunk) opens on a sentence's tail: its lead is
        // the first whole sentence, and the tail ranks as a later sentence.
        let fragment = new_section && s.kind == SegKind::Sentence && opens_mid_sentence(&text[s.start..s.end]);
        // A chunk cut mid-sentence at its end ("… in 1999. The academy announces"): the
        // sentence's opening without its end says nothing sure.
        if !new_section && cut_at_end(text, segs, i) {
            continue;
        }
        let pos = if fragment { 1 } else { j };
        let prior = 1.0 + if pos == 0 { LEAD_PRIOR } else { FOLLOW_PRIOR / (1 + pos) as f64 };
        // The leads of passages that share less with the others than the median one wait, in
        // proportion; the others stay in input order in a document, whose order is its
        // author's, and follow their centrality, gently, in a set of titled passages. After
        // the lead, the passages that share most with the others first, steeply: whole central
        // passages before the rest.
        let centrality = match standing.get(s.block) {
            Some(&c) if pos > 0 && mean_centrality > 0.0 => (c / mean_centrality).powf(CENTRALITY_POWER),
            Some(_) if Some(s.block) == opening => 1.0,
            Some(&c) if median_centrality > 0.0 && c < median_centrality => {
                (c / median_centrality).powf(LEAD_CENTRALITY_POWER)
            }
            Some(&c) if median_centrality > 0.0 && passages => (c / median_centrality).powf(LEAD_ORDER_POWER),
            _ => 1.0,
        };
        // After the lead: sentences dense in rare words, names and numbers first.
        let dense = if pos > 0 && mean_density > 0.0 { (density(i) / mean_density).powf(DENSITY_POWER) } else { 1.0 };
        value[i] = prior * centrality * dense;
        if fragment {
            after_fragment = true;
            continue;
        }
        if s.kind == SegKind::Sentence {
            if new_section {
                lead = Some(i);
                leads.push(i);
            } else if let Some(l) = lead {
                // A section's lead is never worth less than the sentences after it.
                value[l] = value[l].max(value[i]);
            }
            j += 1;
        }
    }
    // Held-back titles come right after the last lead, and a document's front matter (its
    // title, author, date and tags) after the leads too: the opening it precedes says more of
    // what the document holds, and the title is most often the first heading's too.
    let last_lead = leads.iter().map(|&l| value[l]).fold(f64::INFINITY, f64::min);
    let best = value.iter().cloned().fold(0.0, f64::max).max(1e-9);
    for (i, s) in segs.iter().enumerate() {
        if s.kind == SegKind::Header {
            value[i] = if late_titles.get(i) == Some(&true) && last_lead.is_finite() { 0.99 * last_lead } else { best };
        }
    }
    if segs.first().is_some_and(|s| super::segment::is_front_matter(text, s)) && last_lead.is_finite() {
        // Half the last lead's worth per token: below it even when the lead's heading comes
        // with it (the packer weighs a segment by its own cost and its headings').
        value[0] = value[0].min(FRONT_MATTER * last_lead);
    }
    (0..n).map(|i| value[i] * cost(i).max(1) as f64).collect()
}

/// True for HTML that is only tags (`<div align="center">`, `<br />`, `</p>`): a wrapper with
/// nothing to read in it; and for a `<script>`, `<style>` or `<svg>` element.
fn only_tags(piece: &str) -> bool {
    let t = piece.trim();
    // A script, style or SVG element: code and drawing, nothing to read.
    if super::segment::raw_element(t).is_some() {
        return true;
    }
    if !t.starts_with('<') || !t.ends_with('>') {
        return false;
    }
    let mut inside = false;
    for c in t.chars() {
        match c {
            '<' => inside = true,
            '>' => inside = false,
            c if !inside && !c.is_whitespace() => return false,
            _ => {}
        }
    }
    true
}

/// True when `sentence` starts inside a sentence: its first word is in lower case (a word with a
/// capital later, "iPhone", "eBay", is a name), it starts with closing punctuation, or it closes
/// a bracket it did not open.
fn opens_mid_sentence(sentence: &str) -> bool {
    let t = sentence.trim_start();
    match t.chars().next() {
        Some(c) if c.is_lowercase() => {
            t.split(|c: char| !c.is_alphanumeric()).next().is_some_and(|w| !w.chars().any(char::is_uppercase))
        }
        Some(')' | ']' | ',' | ';' | ':' | '.') => true,
        // "Dyke Parks worked). Antonio Ortiz wrote …": a bracket closed before any opened.
        Some(_) => {
            let mut depth = 0i32;
            for b in t.bytes() {
                match b {
                    b'(' => depth += 1,
                    b')' if depth == 0 => return true,
                    b')' => depth -= 1,
                    _ => {}
                }
            }
            false
        }
        None => false,
    }
}

/// True when segment `i` is the last sentence of its block, on the line of the sentence before
/// it, which ends a sentence while it ends none: the tail of a chunk cut mid-sentence, an opening
/// without its end, worth nothing with or without a query (with one, nq-multidoc-dev at 10x:
/// 90.6 → 91.3%, multi-hop 44.7 → 45.3%; the items within 5% of the budget 93.9 → 88.5%, as
/// these cheap pieces no longer top outputs up).
fn cut_at_end(text: &str, segs: &[Segment], i: usize) -> bool {
    let s = &segs[i];
    let last = segs.get(i + 1).is_none_or(|n| n.block != s.block);
    let ends = |t: &str| t.trim_end().ends_with(['.', '!', '?', '"', '\'', ')', ']', ':', ';', '…', '”', '’']);
    let Some(prev) = i.checked_sub(1).map(|p| &segs[p]) else { return false };
    last && s.kind == SegKind::Sentence
        && prev.kind == SegKind::Sentence
        && prev.block == s.block
        && !text[prev.end..s.start].contains('\n')
        && ends(&text[prev.start..prev.end])
        && !ends(&text[s.start..s.end])
}

/// BM25 of `qterms` over the words `words`, with document length `len` and average `avg`.
pub(crate) fn bm25(tf: &[(u32, u32)], qterms: &[(u32, f64)], len: f64, avg: f64) -> f64 {
    let mut score = 0.0;
    for &(t, idf) in qterms {
        if let Some(&(_, f)) = tf.iter().find(|(x, _)| *x == t) {
            let f = f as f64;
            score += idf * f * (K1 + 1.0) / (f + K1 * (1.0 - B + B * len / avg.max(1.0)));
        }
    }
    score
}

/// Query-term frequencies among `words` (only query terms are counted).
pub(crate) fn qtf(words: &[Word], qterms: &[(u32, f64)]) -> Vec<(u32, u32)> {
    let mut tf: Vec<(u32, u32)> = qterms.iter().map(|&(t, _)| (t, 0)).collect();
    for w in words {
        if let Some(e) = tf.iter_mut().find(|(t, _)| *t == w.term) {
            e.1 += 1;
        }
    }
    tf.retain(|e| e.1 > 0);
    tf
}

/// Bonus for pairs of terms adjacent in the query found within 3 content words of each other.
fn proximity(words: &[Word], a: &Analysis, qterms: &[(u32, f64)]) -> f64 {
    let qpos = |t: u32| qterms.iter().position(|&(q, _)| q == t);
    let content: Vec<(usize, u32)> = words
        .iter()
        .filter(|w| !a.lexicon.is_stop(w.term))
        .enumerate()
        .filter_map(|(k, w)| qpos(w.term).map(|p| (k, p as u32)))
        .collect();
    let mut found: Vec<(u32, u32)> = Vec::new();
    let mut bonus = 0.0;
    for (x, &(ka, pa)) in content.iter().enumerate() {
        for &(kb, pb) in content[x + 1..].iter() {
            if kb - ka > 3 {
                break;
            }
            if pa.abs_diff(pb) == 1 {
                let key = (pa.min(pb), pa.max(pb));
                if !found.contains(&key) {
                    found.push(key);
                    bonus += (qterms[pa as usize].1 + qterms[pb as usize].1) / 2.0;
                }
            }
        }
    }
    bonus
}

/// Each block's word range (segments of a block are contiguous); `(usize::MAX, 0)` for a block
/// without words.
fn block_ranges(a: &Analysis, segs: &[Segment], nblocks: usize) -> Vec<(usize, usize)> {
    let mut block_range = vec![(usize::MAX, 0usize); nblocks];
    for (i, s) in segs.iter().enumerate() {
        let r = a.seg_range(i);
        let e = &mut block_range[s.block];
        e.0 = e.0.min(r.start);
        e.1 = e.1.max(r.end);
    }
    block_range
}

/// Passages the question names, and the second hop of a question.
///
/// A passage whose whole title the query names ("Which film came out first, *Duty Is Duty* or
/// *Frontier Woman*?") ranks with the best passage. A passage whose title one of the
/// `bridge.sources` best passages names ("the director of film X": the passage about X names
/// its director, whose own passage holds the answer) is lifted to `bridge.gap` below the
/// passage that names it. Titles are
/// `Title:` lines and headings, all the words of their name in order (see
/// [`title_name`]: `(1915 film)` is left out); a title of stopwords alone names nothing.
fn hops(
    a: &Analysis,
    text: &str,
    segs: &[Segment],
    block_range: &[(usize, usize)],
    qseq: &[u32],
    zs: &mut [f64],
    bridge: Hops,
) {
    let nblocks = zs.len();
    if nblocks < 3 {
        return;
    }
    let mut keys: Vec<Vec<u32>> = vec![Vec::new(); nblocks];
    for (i, s) in segs.iter().enumerate() {
        if s.kind != SegKind::Header || !keys[s.block].is_empty() {
            continue;
        }
        let name = title_name(text, s);
        keys[s.block] = a.words[a.seg_range(i)]
            .iter()
            .filter(|w| name.start <= w.start && w.end <= name.end)
            .map(|w| w.term)
            .collect();
        if keys[s.block].len() > MAX_TITLE_WORDS || keys[s.block].iter().all(|&t| a.lexicon.is_stop(t)) {
            keys[s.block].clear();
        }
    }
    // A title is named when its words are a run of a text's words: every run as long as some
    // title is looked up, linear in the text for each distinct title length (at most
    // MAX_TITLE_WORDS).
    let mut titled: std::collections::HashMap<&[u32], Vec<usize>, crate::tokens::FxBuild> = Default::default();
    for (b, k) in keys.iter().enumerate().filter(|(_, k)| !k.is_empty()) {
        titled.entry(k.as_slice()).or_default().push(b);
    }
    let mut lengths: Vec<usize> = titled.keys().map(|k| k.len()).collect();
    lengths.sort_unstable();
    lengths.dedup();
    let named_in = |hay: &[u32], f: &mut dyn FnMut(&[usize])| {
        for &l in &lengths {
            for run in hay.windows(l) {
                if let Some(blocks) = titled.get(run) {
                    f(blocks);
                }
            }
        }
    };
    let top = zs.iter().cloned().fold(0.0, f64::max);
    named_in(qseq, &mut |blocks| {
        for &b in blocks {
            zs[b] = zs[b].max(top);
        }
    });
    let mut order: Vec<usize> = (0..nblocks).collect();
    order.sort_by(|&x, &y| zs[y].total_cmp(&zs[x]));
    let mut lifted: Vec<(usize, f64)> = Vec::new();
    let mut body: Vec<u32> = Vec::new();
    for &src in order.iter().take(bridge.sources) {
        let (ws, we) = block_range[src];
        if ws == usize::MAX {
            continue;
        }
        body.clear();
        body.extend(a.words[ws..we].iter().map(|w| w.term));
        named_in(&body, &mut |blocks| {
            for &b in blocks {
                if keys[b] != keys[src] {
                    lifted.push((b, zs[src] - bridge.gap));
                }
            }
        });
    }
    for (b, z) in lifted {
        zs[b] = zs[b].max(z);
    }
}

/// A query as the ranking reads it: its content terms with their weights (variants
/// included), every word's term id in order (`u32::MAX` for a word the input lacks) and the kind
/// of answer it asks for.
struct ParsedQuery<'a> {
    terms: &'a [(u32, f64)],
    words: &'a [u32],
    kind: AnswerKind,
}

fn query_utilities(
    a: &Analysis,
    text: &str,
    segs: &[Segment],
    q: &ParsedQuery,
    alpha: f64,
    sem: Option<&[f64]>,
) -> Vec<f64> {
    let (qterms, qseq, kind) = (q.terms, q.words, q.kind);
    let nblocks = segs.last().map_or(0, |s| s.block + 1);
    let block_range = block_ranges(a, segs, nblocks);
    let avg_block = a.words.len() as f64 / nblocks.max(1) as f64;
    let mut block_score = vec![0.0; nblocks];
    for (b, &(ws, we)) in block_range.iter().enumerate() {
        if ws == usize::MAX {
            continue;
        }
        let words = &a.words[ws..we];
        let tf = qtf(words, qterms);
        block_score[b] =
            bm25(&tf, qterms, words.len() as f64, avg_block) + PROXIMITY_WEIGHT * proximity(words, a, qterms);
    }
    // Title bonus, to the header's block and to the other blocks of its section (a markdown
    // heading is a block of its own: "## What broke" vouches for the paragraphs under it).
    let mut title_bonus = vec![0.0; segs.len()];
    for (i, s) in segs.iter().enumerate() {
        if s.kind == SegKind::Header {
            let tf = qtf(&a.words[a.seg_range(i)], qterms);
            title_bonus[i] = TITLE_WEIGHT * tf.iter().map(|&(t, _)| a.idf[t as usize]).sum::<f64>();
            block_score[s.block] += title_bonus[i];
        }
    }
    let mut section_bonus = vec![0.0f64; nblocks];
    for s in segs {
        if let Some(p) = s.parent.filter(|&p| segs[p].kind == SegKind::Header && segs[p].block != s.block) {
            section_bonus[s.block] = section_bonus[s.block].max(title_bonus[p]);
        }
    }
    for (score, bonus) in block_score.iter_mut().zip(&section_bonus) {
        *score += bonus;
    }
    let best_block = block_score.iter().cloned().fold(0.0, f64::max);

    let avg_seg = a.words.len() as f64 / segs.len().max(1) as f64;
    let mut sent_score: Vec<f64> = Vec::with_capacity(segs.len());
    for i in 0..segs.len() {
        let words = &a.words[a.seg_range(i)];
        let tf = qtf(words, qterms);
        sent_score
            .push(bm25(&tf, qterms, words.len() as f64, avg_seg) + PROXIMITY_WEIGHT * proximity(words, a, qterms));
    }
    let mut best_in_block = vec![0.0f64; nblocks];
    for (i, s) in segs.iter().enumerate() {
        best_in_block[s.block] = best_in_block[s.block].max(sent_score[i]);
    }

    let mut zs: Vec<f64> = (0..nblocks)
        .map(|b| {
            let z = if best_block > 0.0 { block_score[b] / best_block } else { 1.0 };
            z + sem.map_or(0.0, |sem| SEMANTIC_WEIGHT * (sem[b] - 1.0))
        })
        .collect();
    hops(a, text, segs, &block_range, qseq, &mut zs, Hops::QUERY);

    let mut out = Vec::with_capacity(segs.len());
    for (i, s) in segs.iter().enumerate() {
        let z = zs[s.block];
        let rel_of = |k: usize| {
            if best_in_block[segs[k].block] > 0.0 { sent_score[k] / best_in_block[segs[k].block] } else { 0.0 }
        };
        let mut rel = rel_of(i);
        // The sentence after a matching one often carries the answer ("He …", "It …").
        if i > 0 && segs[i - 1].block == s.block && segs[i - 1].kind == SegKind::Sentence {
            rel += SPILL * rel_of(i - 1);
        }
        if s.kind == SegKind::Sentence && has_answer_shape(text, &a.words[a.seg_range(i)], qterms, kind) {
            rel += ANSWER_SHAPE;
        }
        let first = i == 0
            || segs[i - 1].block != s.block
            || (segs[i - 1].kind == SegKind::Header && s.kind == SegKind::Sentence);
        let lead = if first { LEAD } else { 0.0 };
        let kind = if s.kind == SegKind::Header {
            0.5
        } else if cut_at_end(text, segs, i) {
            0.0
        } else {
            1.0
        };
        out.push(kind * (TAU * (z - 1.0)).exp() * (alpha + rel + lead));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::compress::segment::{SegmentOptions, segment};

    #[test]
    fn semantic_relevance_lifts_a_paraphrasing_passage() {
        // Neither of the first two passages shares a word with the query; only the semantic
        // signal can tell that the first one is about it.
        let text = "The doctor earns a good wage at the hospital every month.\n\n\
                    The river flows slowly through the valley to the sea.\n\n\
                    A salary survey was published in the spring.\n\n\
                    Bright paint covered the old wooden fence.";
        let segs = segment(text, SegmentOptions::default());
        assert_eq!(segs.last().unwrap().block, 3, "{segs:?}");
        let mut a = Analysis::new(text, &segs);
        let qterms = query_terms(&mut a, "physician salary");
        let u = utilities(&mut a, text, &segs, "physician salary", &qterms, 0.5);
        let first = |b: usize| segs.iter().position(|s| s.block == b).unwrap();
        assert!(u[first(0)] > u[first(1)], "{u:?}");
        assert!(u[first(0)] > u[first(3)], "{u:?}");
        let sem = block_semantic(&mut a, text, &segs, "physician salary").unwrap();
        assert!(sem[0] > sem[1] && sem[0] > sem[3], "{sem:?}");
        assert!(sem.iter().all(|x| (0.0..=1.0).contains(x)));
    }

    #[test]
    fn passages_of_one_source_do_not_make_each_other_central() {
        let text = "Title: Alps\nGlaciers carve valleys near Grindelwald and Zermatt.\n\n\
                    Title: Alps\nGlaciers near Grindelwald and Zermatt feed the Rhone.\n\n\
                    Title: Espresso\nBaristas grind arabica beans finely.\n\n\
                    Title: Coffee\nArabica beans need a fine grind for espresso.\n\n\
                    Title: Tides\nThe moon pulls oceans twice daily.\n";
        let segs = crate::compress::segment::segment(text, Default::default());
        let a = Analysis::new(text, &segs);
        let c = &a.block_centrality;
        assert_eq!(c.len(), 5, "{c:?}");
        // The two Alps passages share only with each other; the coffee ones across sources.
        assert!(c[0] < c[2] && c[1] < c[3], "{c:?}");
    }

    #[test]
    fn without_a_query_off_topic_leads_wait_and_named_passages_do_not() {
        // Four passages about espresso, one about Naples that an espresso passage names (a
        // second hop), one about tides that nothing names and that shares nothing.
        let text = "Title: Espresso\nEspresso is brewed by forcing hot water through finely ground arabica beans. \
                    A good espresso has crema.\n\n\
                    Title: Crema\nCrema is the foam on espresso, made by hot water and ground beans. \
                    It fades fast.\n\n\
                    Title: Moka pot\nA moka pot brews strong coffee from ground arabica beans and hot water. \
                    It was invented in Naples.\n\n\
                    Title: Grinder\nA burr grinder makes the fine ground beans espresso and crema need. \
                    Blades grind unevenly.\n\n\
                    Title: Naples\nNaples is a city in southern Italy on the Tyrrhenian coast. \
                    Vesuvius overlooks its bay.\n\n\
                    Title: Tides\nThe moon pulls the oceans twice a day. \
                    Spring tides follow full moons.\n";
        let segs = segment(text, SegmentOptions::default());
        let a = Analysis::new(text, &segs);
        let u = agnostic_utilities(&a, text, &segs, &|_| 1, &[]);
        let sentence = |b: usize, k: usize| {
            segs.iter().enumerate().filter(|(_, s)| s.block == b && s.kind == SegKind::Sentence).nth(k).unwrap().0
        };
        let (espresso, moka, naples, tides) = (0, 2, 4, 5);
        // The unrelated passage's lead waits for the others' leads.
        assert!(u[sentence(tides, 0)] < u[sentence(espresso, 0)], "{u:?}");
        assert!(u[sentence(tides, 0)] < u[sentence(naples, 0)], "{u:?}");
        // Naples shares few words but the moka pot passage names it: it stands with its namer.
        assert!(u[sentence(naples, 0)] >= u[sentence(moka, 0)], "{u:?}");
        // After the leads, the central passages' sentences before the unrelated one's.
        assert!(u[sentence(espresso, 1)] > u[sentence(tides, 1)], "{u:?}");
        // A central passage's body does not come before its own lead.
        for b in 0..6 {
            assert!(u[sentence(b, 0)] >= u[sentence(b, 1)], "{b}: {u:?}");
        }
    }

    #[test]
    fn a_plain_documents_opening_paragraph_never_waits() {
        // A contract: the preamble names the parties once; the clauses share their own words.
        let text = "SERVICES AGREEMENT\n\n\
                    This agreement is made on 1 March 2026 between Acme Analytics Ltd of London and \
                    Northwind Traders Inc of Delaware.\n\n\
                    1.1 The supplier shall provide the services in each statement of work.\n\n\
                    1.2 The supplier shall invoice the fees for the services monthly.\n\n\
                    1.3 The customer shall pay the fees for the services within thirty days.\n\n\
                    1.4 The customer may end the services with thirty days of notice.\n";
        let segs = segment(text, SegmentOptions::default());
        let a = Analysis::new(text, &segs);
        let u = agnostic_utilities(&a, text, &segs, &|_| 1, &[]);
        let at = |needle: &str| segs.iter().position(|s| text[s.start..s.end].contains(needle)).unwrap();
        let preamble = u[at("Acme Analytics")];
        for clause in ["1.1 The supplier", "1.2 The supplier", "1.3 The customer", "1.4 The customer"] {
            assert!(preamble >= u[at(clause)], "{clause}: {u:?}");
        }
        // With titles (retrieved passages), the first passage has no such privilege: see
        // `without_a_query_off_topic_leads_wait_and_named_passages_do_not`.
    }

    #[test]
    fn a_chunk_cut_mid_sentence_leads_with_its_first_whole_sentence() {
        // Retrieved chunks: the second opens on the tail of a sentence cut off before it.
        let text = "Title: Heart\nThe heart pumps blood through the body. It has four chambers.\n\n\
                    Title: Valves\nof the heart, and closes with each beat. Heart valves keep blood flowing one way. \
                    The mitral valve has two cusps.\n\n\
                    Title: Pulse\nThe heart rate is felt as a pulse. Athletes have a slow pulse.\n\n\
                    Title: Blood\nBlood carries oxygen from the heart. Red cells hold haemoglobin.\n";
        let segs = segment(text, SegmentOptions::default());
        let a = Analysis::new(text, &segs);
        let u = agnostic_utilities(&a, text, &segs, &|_| 1, &[]);
        let sentence = |b: usize, k: usize| {
            segs.iter().enumerate().filter(|(_, s)| s.block == b && s.kind == SegKind::Sentence).nth(k).unwrap().0
        };
        assert!(text[segs[sentence(1, 0)].start..].starts_with("of the heart"));
        // The whole sentence stands as the passage's lead; the tail ranks as a later sentence.
        assert!(u[sentence(1, 1)] > u[sentence(1, 0)], "{u:?}");
        assert!(u[sentence(1, 1)] >= u[sentence(1, 2)], "{u:?}");
        assert!(u[sentence(1, 0)] < u[sentence(0, 0)], "{u:?}");
    }

    #[test]
    fn a_chunk_cut_mid_sentence_at_its_end_is_worth_nothing() {
        let text = "Title: Awards\nThe awards were first given in 1929. They honour films of the year. The academy announces\n\n\
                    Title: Menu\nThe menu changes with the seasons. Two dishes stay all year:\n- bread and olives\n";
        let segs = segment(text, SegmentOptions::default());
        let a = Analysis::new(text, &segs);
        let u = agnostic_utilities(&a, text, &segs, &|_| 1, &[]);
        let at = |p: &str| segs.iter().position(|s| text[s.start..s.end].trim() == p).unwrap();
        assert_eq!(u[at("The academy announces")], 0.0, "{u:?}");
        assert!(u[at("They honour films of the year.")] > 0.0, "{u:?}");
        // A line of its own without a full stop (a list item) is no cut sentence.
        assert!(u[at("- bread and olives")] > 0.0, "{u:?}");
        // Nor is it worth anything when it holds the query's words.
        let mut a = Analysis::new(text, &segs);
        let q = "what does the academy announce";
        let qterms = query_terms(&mut a, q);
        let u = utilities(&mut a, text, &segs, q, &qterms, 0.5);
        assert_eq!(u[at("The academy announces")], 0.0, "{u:?}");
        assert!(u[at("They honour films of the year.")] > 0.0, "{u:?}");
    }

    #[test]
    fn leads_of_titled_passages_follow_centrality_and_a_documents_keep_its_order() {
        // Four passages on one subject and a lone one: the more central leads first among
        // passages; in a document with headings, every lead from the median up alike.
        let body = [
            "Glaciers carve valleys as the ice moves downhill.",
            "Glacier ice moves downhill and carves valleys and fjords in glacier country.",
            "Fjords form where glacier valleys meet the sea.",
            "Glacier valleys hold lakes where the ice melted.",
            "Pianos have eighty-eight keys.",
        ];
        let leads = |titled: bool| {
            let text: String = body
                .iter()
                .enumerate()
                .map(|(i, b)| if titled { format!("Title: Part {i}\n{b}") } else { format!("# Part {i}\n\n{b}") })
                .collect::<Vec<_>>()
                .join("\n\n");
            let segs = segment(&text, SegmentOptions::default());
            let a = Analysis::new(&text, &segs);
            let u = agnostic_utilities(&a, &text, &segs, &|_| 1, &[]);
            body.iter()
                .map(|b| u[segs.iter().position(|s| text[s.start..s.end].starts_with(b)).unwrap()])
                .collect::<Vec<f64>>()
        };
        let titled = leads(true);
        // Passages 0 and 1 share most with the others, 2 is the median, 4 the least.
        assert!(titled[0] > titled[2] && titled[1] > titled[2] && titled[2] > titled[4], "{titled:?}");
        let document = leads(false);
        assert!(document[0] == document[2] && document[1] == document[2] && document[2] > document[4], "{document:?}");
    }

    #[test]
    fn a_wrapper_tag_without_words_is_never_worth_keeping() {
        let text = "<div align=\"center\">\n\n# Project\n\nProject does one thing well.\n\n<br />\n\n</div>\n";
        let segs = segment(text, SegmentOptions::default());
        let a = Analysis::new(text, &segs);
        let u = agnostic_utilities(&a, text, &segs, &|_| 1, &[]);
        for (i, s) in segs.iter().enumerate() {
            let piece = &text[s.start..s.end];
            assert_eq!(u[i] == 0.0, only_tags(piece), "{piece}: {u:?}");
        }
        assert!(!only_tags("<a href=\"x\">Read the docs</a>"));
    }

    #[test]
    fn a_script_or_style_element_is_one_segment_worth_nothing_without_a_query() {
        let text = "<p>The service keeps usage records.</p>\n<script>\nconst theme = \"dark\";\n\nif (theme) { apply(theme); }\n</script>\n<style>\nbody { margin: 0; }\n</style>\n<p>Records are kept for a year.</p>\n";
        let segs = segment(text, SegmentOptions::default());
        let script = segs.iter().position(|s| text[s.start..].starts_with("<script>")).unwrap();
        assert!(text[segs[script].start..segs[script].end].ends_with("</script>"), "{segs:?}");
        let a = Analysis::new(text, &segs);
        let u = agnostic_utilities(&a, text, &segs, &|_| 1, &[]);
        for (i, s) in segs.iter().enumerate() {
            let piece = &text[s.start..s.end];
            assert_eq!(u[i] == 0.0, piece.starts_with("<script>") || piece.starts_with("<style>"), "{piece}: {u:?}");
        }
    }

    #[test]
    fn what_opens_mid_sentence() {
        for tail in ["of the heart, and closes.", "Dyke Parks worked). Ortiz wrote it.", ", then left.", ") and more."]
        {
            assert!(opens_mid_sentence(tail), "{tail}");
        }
        for whole in [
            "The heart pumps.",
            "iPhone sales rose.",
            "eBay (an auction site) grew.",
            "\"Quoted\" words.",
            "1994 was a year.",
        ] {
            assert!(!opens_mid_sentence(whole), "{whole}");
        }
    }

    #[test]
    fn english_rarity_orders_common_below_rare_words() {
        let r = english_rarity;
        assert!(r("the") < 0.5 && r("and") < 0.5, "{} {}", r("the"), r("and"));
        assert!(r("the") < r("heart") && r("heart") < r("intestine"), "{} {}", r("heart"), r("intestine"));
        // Case does not matter; a word of several tokens counts as rare.
        assert_eq!(r("Heart"), r("heart"));
        assert_eq!(r("chymotrypsinogen"), 5.5);
        assert_eq!(r("Zürich"), 5.5);
    }

    #[test]
    fn query_variants_join_compounds_and_close_word_forms_only() {
        let text = "A pacemaker regulates the heart. European ships sailed south. \
                    The organization met. Maker faire. The fifth volume premiered.";
        let segs = segment(text, SegmentOptions::default());
        let mut a = Analysis::new(text, &segs);
        let query = "which pace maker did the europe ships use for the organ in season 5";
        let qterms = query_terms(&mut a, query);
        let v = query_variants(&a, query, &qterms);
        let (pacemaker, european, organization, maker) = (
            a.lexicon.lookup("pacemaker").unwrap(),
            a.lexicon.lookup("european").unwrap(),
            a.lexicon.lookup("organization").unwrap(),
            a.lexicon.lookup("maker").unwrap(),
        );
        let found: Vec<u32> = v.iter().map(|x| x.0).collect();
        assert!(found.contains(&pacemaker), "{found:?}");
        assert!(found.contains(&european));
        assert!(found.contains(&a.lexicon.lookup("fifth").unwrap()));
        // `organ` is too short to stand for `organization`; `maker` is a query term already.
        assert!(!found.contains(&organization));
        assert!(!found.contains(&maker));
        assert!(v.iter().all(|&(_, w)| w > 0.0));
    }
}
