//! Retention metrics between an original text and a compressed one (`POST /validate`).
//!
//! Words are alphanumeric runs, lower-cased (CJK characters count one by one). `details` holds:
//! - `rouge_l_precision`, `rouge_l_recall`, `rouge_l_f1`: ROUGE-L on words, from the exact longest
//!   common subsequence (linear time when one text's words are an in-order selection of the
//!   other's, as an extractive compressor's are; otherwise a bit-parallel pass of at most
//!   n·m/64 steps, refused above [`MAX_ROUGE_L_WORD_PAIRS`]);
//! - `unigram_recall`: share of the original's distinct content words (not stopwords) still
//!   present;
//! - `number_retention`: share of the original's distinct numbers (words holding a digit) present;
//! - `entity_retention`: share of the original's distinct capitalised words that do not start a
//!   sentence (names, places, products) present;
//! - `query_coverage` (only with a query): share of the query's content words (stemmed) found in
//!   the original that are still in the compressed text;
//! - `novel_word_rate`: share of the compressed text's words that never occur in the original
//!   (0 for an extractive compressor; > 0 means rewritten or invented content);
//! - `original_words`, `compressed_words`, `length_ratio`.
//!
//! `passed` is true when the compressed text is faithful and a reader loses little of the
//! original ([`PASS_RULE`]): `rouge_l_f1 ≥ 0.5`, `unigram_recall ≥ 0.5`, the mean of
//! `number_retention` and `entity_retention` (each 1.0 when the original has none) ≥ 0.5,
//! `novel_word_rate ≤ 0.02`, and `query_coverage ≥ 0.75` when a query is given. A text cut to a
//! few of the original's words cannot pass; text compressed 4x or more usually does not either,
//! by design: its details say what was kept. The rule always uses every metric, whatever
//! `metrics` asks to report. `rouge_l_score` is `rouge_l_f1`. No model is involved;
//! `bertscore_f1` is left to the caller (null).
//!
//! [`Metric`] names what a caller may ask to see in `details` (`metrics` in `POST /validate`).
//!
//! Work is bounded: memory is linear in the two texts, and so is time except for the LCS, whose
//! worst case [`MAX_ROUGE_L_WORD_PAIRS`] caps ([`TooLargeToCompare`] above it). It does not decide
//! where the work runs or how many comparisons run at once: that is the caller's.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};

use super::text::{Lexicon, for_each_word, is_stopword};

/// The rule behind `passed`, as the API documents it.
pub const PASS_RULE: &str = "rouge_l_f1 >= 0.5, unigram_recall >= 0.5, mean of number_retention and entity_retention >= 0.5, novel_word_rate <= 0.02, query_coverage >= 0.75 with a query";

/// A group of `details` a caller may select with `metrics`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Metric {
    /// `rouge_l_precision`, `rouge_l_recall`, `rouge_l_f1`.
    RougeL,
    UnigramRecall,
    NumberRetention,
    EntityRetention,
    QueryCoverage,
    NovelWordRate,
    /// `original_words`, `compressed_words`, `length_ratio`.
    Length,
}

impl Metric {
    pub const ALL: [Metric; 7] = [
        Metric::RougeL,
        Metric::UnigramRecall,
        Metric::NumberRetention,
        Metric::EntityRetention,
        Metric::QueryCoverage,
        Metric::NovelWordRate,
        Metric::Length,
    ];

    /// The metric a caller's name means: `rouge-l` (or `rouge`, `rouge_l`), `unigram_recall`,
    /// `number_retention`, `entity_retention`, `query_coverage`, `novel_word_rate`, `length`.
    pub fn parse(name: &str) -> Option<Metric> {
        Some(match name.to_ascii_lowercase().replace('-', "_").as_str() {
            "rouge_l" | "rouge" | "rougel" => Metric::RougeL,
            "unigram_recall" => Metric::UnigramRecall,
            "number_retention" => Metric::NumberRetention,
            "entity_retention" => Metric::EntityRetention,
            "query_coverage" => Metric::QueryCoverage,
            "novel_word_rate" => Metric::NovelWordRate,
            "length" => Metric::Length,
            _ => return None,
        })
    }

    fn keys(self) -> &'static [&'static str] {
        match self {
            Metric::RougeL => &["rouge_l_precision", "rouge_l_recall", "rouge_l_f1"],
            Metric::UnigramRecall => &["unigram_recall"],
            Metric::NumberRetention => &["number_retention"],
            Metric::EntityRetention => &["entity_retention"],
            Metric::QueryCoverage => &["query_coverage"],
            Metric::NovelWordRate => &["novel_word_rate"],
            Metric::Length => &["original_words", "compressed_words", "length_ratio"],
        }
    }
}

impl Validation {
    /// Keeps in `details` only the metrics asked for.
    pub fn only(mut self, metrics: &[Metric]) -> Validation {
        let keep: HashSet<&str> = metrics.iter().flat_map(|m| m.keys().iter().copied()).collect();
        self.details.retain(|k, _| keep.contains(k.as_str()));
        self
    }
}

/// Retention metrics between an original and a compressed text (`POST /validate`).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Validation {
    pub passed: bool,
    pub rouge_l_score: f64,
    /// Documented metrics, serialized as the response's `details`.
    pub details: serde_json::Map<String, serde_json::Value>,
}

struct Words<'t> {
    /// Every word, lower-cased (borrowed from the text when it already is).
    lower: Vec<Cow<'t, str>>,
    numbers: HashSet<Cow<'t, str>>,
    entities: HashSet<Cow<'t, str>>,
}

/// `w.to_lowercase()`, borrowed when that changes nothing (most words), so a long text costs
/// no allocation per word.
fn lower_case(w: &str) -> Cow<'_, str> {
    let unchanged = w.chars().all(|c| {
        let mut l = c.to_lowercase();
        l.next() == Some(c) && l.next().is_none()
    });
    if unchanged { Cow::Borrowed(w) } else { Cow::Owned(w.to_lowercase()) }
}

fn words(text: &str) -> Words<'_> {
    let mut lower = Vec::new();
    let mut numbers = HashSet::new();
    let mut entities = HashSet::new();
    let mut sentence_start = true;
    let mut last_end = 0;
    for_each_word(text, |a, b| {
        let w = &text[a..b];
        let between = &text[last_end..a];
        if between.contains(['.', '!', '?', '\n', '。']) {
            sentence_start = true;
        }
        let l = lower_case(w);
        if w.bytes().any(|c| c.is_ascii_digit()) {
            numbers.insert(l.clone());
        } else if !sentence_start && w.chars().next().is_some_and(char::is_uppercase) {
            entities.insert(l.clone());
        }
        lower.push(l);
        sentence_start = false;
        last_end = b;
    });
    Words { lower, numbers, entities }
}

/// `validate` compares texts whose word counts multiply to at most this many word pairs
/// (250,000 words each, or 1,000,000 and 64,000), unless one text's words are an in-order
/// selection of the other's, which is checked in linear time whatever the sizes. The bound
/// keeps the bit-parallel LCS under about 10⁹ machine-word steps (about a second).
pub const MAX_ROUGE_L_WORD_PAIRS: u64 = 64_000_000_000;

/// The two texts are too large to compare: the longest common subsequence behind ROUGE-L
/// would need more than [`MAX_ROUGE_L_WORD_PAIRS`] word pairs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error(
    "original ({original_words} words) and compressed ({compressed_words} words) are too large to compare: \
     ROUGE-L needs original words × compressed words ≤ {max} (e.g. 250,000 words each), unless one text's words \
     are an in-order selection of the other's",
    max = MAX_ROUGE_L_WORD_PAIRS
)]
pub struct TooLargeToCompare {
    pub original_words: usize,
    pub compressed_words: usize,
}

/// Length of the longest common subsequence of `a` and `b` (symbol ids), exact, in memory
/// linear in their lengths. See [`lcs_len_within`] for the time it takes.
pub fn lcs_len(a: &[u32], b: &[u32]) -> usize {
    lcs_len_within(a, b, u64::MAX).unwrap_or_default()
}

/// [`lcs_len`], or `None` when it would need the bit-parallel pass over more than `max_pairs`
/// pairs of symbols. When the shorter sequence is a subsequence of the longer one (what an
/// extractive compressor returns) the answer is its length, found in linear time whatever
/// `max_pairs`; otherwise the common prefix and suffix are matched directly and the rest goes
/// to a bit-parallel pass (Hyyrö 2004) over the shorter sequence, O(n·m/64) steps at worst.
pub fn lcs_len_within(a: &[u32], b: &[u32], max_pairs: u64) -> Option<usize> {
    let (pat, txt) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    if is_subsequence(pat, txt) {
        return Some(pat.len());
    }
    if (pat.len() as u64).saturating_mul(txt.len() as u64) > max_pairs {
        return None;
    }
    let prefix = pat.iter().zip(txt).take_while(|(x, y)| x == y).count();
    let (pat, txt) = (&pat[prefix..], &txt[prefix..]);
    let suffix = pat.iter().rev().zip(txt.iter().rev()).take_while(|(x, y)| x == y).count();
    let (pat, txt) = (&pat[..pat.len() - suffix], &txt[..txt.len() - suffix]);
    Some(prefix + suffix + bit_parallel_lcs(pat, txt))
}

/// Is `short` a subsequence of `long` (greedy, linear)?
fn is_subsequence(short: &[u32], long: &[u32]) -> bool {
    let mut rest = long.iter();
    short.iter().all(|s| rest.any(|t| t == s))
}

/// Where a symbol occurs in the pattern: a symbol with fewer occurrences than the pattern has
/// machine words keeps their positions (set into a scratch mask when needed), a frequent one
/// its own mask. At most 64 symbols can be frequent, so memory stays linear in the pattern.
enum Occurrences {
    Few(Vec<u32>),
    Many(Vec<u64>),
}

/// LCS length by Hyyrö's bit-vector recurrence, `pat` being the shorter sequence. Each step
/// touches only the machine words from the symbol's first occurrence to its last, plus the
/// carry's run, so texts of mostly distinct words take far fewer than n·m/64 word operations.
fn bit_parallel_lcs(pat: &[u32], txt: &[u32]) -> usize {
    let m = pat.len();
    if m == 0 {
        return 0;
    }
    let words = m.div_ceil(64);
    let mut positions: HashMap<u32, Vec<u32>> = HashMap::new();
    for (i, &s) in pat.iter().enumerate() {
        positions.entry(s).or_default().push(i as u32);
    }
    let occurrences: HashMap<u32, Occurrences> = positions
        .into_iter()
        .map(|(s, pos)| {
            if pos.len() < words {
                (s, Occurrences::Few(pos))
            } else {
                let mut mask = vec![0u64; words];
                for p in pos {
                    mask[p as usize / 64] |= 1 << (p % 64);
                }
                (s, Occurrences::Many(mask))
            }
        })
        .collect();
    let mut v = vec![u64::MAX; words];
    let mut scratch = vec![0u64; words];
    for s in txt {
        match occurrences.get(s) {
            None => {}
            Some(Occurrences::Many(mask)) => advance(&mut v, mask, 0, words - 1),
            Some(Occurrences::Few(pos)) => {
                for &p in pos {
                    scratch[p as usize / 64] |= 1 << (p % 64);
                }
                let (first, last) = (pos[0] as usize / 64, pos[pos.len() - 1] as usize / 64);
                advance(&mut v, &scratch, first, last);
                for &p in pos {
                    scratch[p as usize / 64] = 0;
                }
            }
        }
    }
    let mut zeros = 0;
    for (k, &x) in v.iter().enumerate() {
        let bits = if k + 1 == words && !m.is_multiple_of(64) { m % 64 } else { 64 };
        let mask = if bits == 64 { u64::MAX } else { (1u64 << bits) - 1 };
        zeros += bits - (x & mask).count_ones() as usize;
    }
    zeros
}

/// One step of the recurrence for a symbol whose mask is zero outside words `first..=last`:
/// words before `first` do not change, and after `last` only while a carry runs.
fn advance(v: &mut [u64], mask: &[u64], first: usize, last: usize) {
    let mut carry = 0u64;
    let mut k = first;
    while k < v.len() && (k <= last || carry != 0) {
        let u = v[k] & mask[k];
        let (sum1, c1) = v[k].overflowing_add(u);
        let (sum2, c2) = sum1.overflowing_add(carry);
        carry = u64::from(c1 || c2);
        v[k] = sum2 | (v[k] & !mask[k]);
        k += 1;
    }
}

fn share<'t>(kept: &HashSet<&str>, of: &HashSet<Cow<'t, str>>) -> f64 {
    if of.is_empty() { 1.0 } else { of.iter().filter(|w| kept.contains(w.as_ref())).count() as f64 / of.len() as f64 }
}

/// Retention metrics between `original` and `compressed` (see the module docs), or a refusal
/// when the two are too large to compare ([`MAX_ROUGE_L_WORD_PAIRS`]). Time and memory are
/// linear in the texts' lengths apart from the LCS, which the bound keeps to about a second.
pub fn validate(original: &str, compressed: &str, query: Option<&str>) -> Result<Validation, TooLargeToCompare> {
    let o = words(original);
    let c = words(compressed);
    let mut ids: HashMap<&str, u32> = HashMap::new();
    let mut oid = Vec::with_capacity(o.lower.len());
    let mut cid = Vec::with_capacity(c.lower.len());
    for (list, out) in [(&o.lower, &mut oid), (&c.lower, &mut cid)] {
        for w in list {
            let n = ids.len() as u32;
            out.push(*ids.entry(w.as_ref()).or_insert(n));
        }
    }
    let lcs = lcs_len_within(&oid, &cid, MAX_ROUGE_L_WORD_PAIRS)
        .ok_or(TooLargeToCompare { original_words: oid.len(), compressed_words: cid.len() })? as f64;
    let precision = if cid.is_empty() { 0.0 } else { lcs / cid.len() as f64 };
    let recall = if oid.is_empty() { 0.0 } else { lcs / oid.len() as f64 };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else if oid.is_empty() && cid.is_empty() {
        1.0
    } else {
        0.0
    };

    let oset: HashSet<&str> = o.lower.iter().map(AsRef::as_ref).collect();
    let cset: HashSet<&str> = c.lower.iter().map(AsRef::as_ref).collect();
    let content: HashSet<Cow<'_, str>> = oset.iter().filter(|w| !is_stopword(w)).map(|w| Cow::Borrowed(*w)).collect();
    let unigram_recall = share(&cset, &content);
    let number_retention = share(&cset, &o.numbers);
    let entity_retention = share(&cset, &o.entities);
    let novel = c.lower.iter().filter(|w| !oset.contains(w.as_ref())).count();
    let novel_word_rate = if c.lower.is_empty() { 0.0 } else { novel as f64 / c.lower.len() as f64 };

    let mut details = serde_json::Map::new();
    let mut put = |k: &str, v: serde_json::Value| {
        details.insert(k.to_string(), v);
    };
    let round = |x: f64| serde_json::json!((x * 10_000.0).round() / 10_000.0);
    put("rouge_l_precision", round(precision));
    put("rouge_l_recall", round(recall));
    put("rouge_l_f1", round(f1));
    put("unigram_recall", round(unigram_recall));
    put("number_retention", round(number_retention));
    put("entity_retention", round(entity_retention));
    put("novel_word_rate", round(novel_word_rate));
    put("original_words", serde_json::json!(o.lower.len()));
    put("compressed_words", serde_json::json!(c.lower.len()));
    put("length_ratio", round(if o.lower.is_empty() { 1.0 } else { c.lower.len() as f64 / o.lower.len() as f64 }));

    let mut query_ok = true;
    if let Some(q) = query.filter(|q| !q.trim().is_empty()) {
        let mut lex = Lexicon::new();
        let mut terms = |t: &str| {
            let mut set = HashSet::new();
            for_each_word(t, |a, b| {
                let w = &t[a..b];
                if !is_stopword(&w.to_lowercase()) {
                    set.insert(lex.term(w));
                }
            });
            set
        };
        let qs = terms(q);
        let os = terms(original);
        let cs = terms(compressed);
        let relevant: Vec<_> = qs.iter().filter(|t| os.contains(t)).collect();
        let coverage = if relevant.is_empty() {
            1.0
        } else {
            relevant.iter().filter(|t| cs.contains(t)).count() as f64 / relevant.len() as f64
        };
        put("query_coverage", round(coverage));
        query_ok = coverage >= 0.75;
    }

    let passed = f1 >= 0.5
        && unigram_recall >= 0.5
        && novel_word_rate <= 0.02
        && (number_retention + entity_retention) / 2.0 >= 0.5
        && query_ok
        && (original.trim().is_empty() || !compressed.trim().is_empty());
    Ok(Validation { passed, rouge_l_score: (f1 * 10_000.0).round() / 10_000.0, details })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn check(original: &str, compressed: &str, query: Option<&str>) -> Validation {
        validate(original, compressed, query).expect("small texts are always compared")
    }

    #[test]
    fn a_cut_down_text_with_the_key_content_gone_does_not_pass() {
        let original = "The quick brown fox jumps over the lazy dog near the old river bank today.";
        assert!(!check(original, "Fox dog.", None).passed);
        assert!(!check(original, "The", None).passed);
        assert!(check(original, original, None).passed);
        assert!(check(original, "The quick brown fox jumps over the lazy dog near the old river.", None).passed);
    }

    #[test]
    fn metrics_select_what_is_reported() {
        let v = check("One two three.", "One two.", None).only(&[Metric::parse("rouge-l").unwrap()]);
        let keys: Vec<&String> = v.details.keys().collect();
        assert_eq!(keys, ["rouge_l_f1", "rouge_l_precision", "rouge_l_recall"]);
        assert_eq!(Metric::parse("bogus"), None);
    }

    fn naive_lcs(a: &[u32], b: &[u32]) -> usize {
        let mut dp = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in 0..a.len() {
            for j in 0..b.len() {
                dp[i + 1][j + 1] = if a[i] == b[j] { dp[i][j] + 1 } else { dp[i][j + 1].max(dp[i + 1][j]) };
            }
        }
        dp[a.len()][b.len()]
    }

    #[test]
    fn bit_parallel_lcs_matches_the_textbook_one() {
        let mut seed = 7u64;
        let mut rnd = |n: u64| {
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        // Small alphabets make every symbol frequent (one mask each), large ones rare
        // (positions set into the scratch mask); lengths up to 400 span several machine words.
        for alphabet in [2, 6, 40, 500] {
            for _ in 0..40 {
                let la = rnd(400) as usize;
                let lb = rnd(400) as usize;
                let a: Vec<u32> = (0..la).map(|_| rnd(alphabet) as u32).collect();
                let mut b: Vec<u32> = (0..lb).map(|_| rnd(alphabet) as u32).collect();
                assert_eq!(lcs_len(&a, &b), naive_lcs(&a, &b), "alphabet {alphabet}");
                // Sharing a prefix and a suffix, and one being a subsequence of the other.
                b.splice(0..0, a[..la / 3].iter().copied());
                b.extend_from_slice(&a[la / 2..]);
                assert_eq!(lcs_len(&a, &b), naive_lcs(&a, &b), "alphabet {alphabet}");
                let kept: Vec<u32> =
                    a.iter().copied().enumerate().filter(|(i, _)| !i.is_multiple_of(3)).map(|(_, s)| s).collect();
                assert_eq!(lcs_len(&a, &kept), kept.len());
            }
        }
    }

    #[test]
    fn large_texts_are_compared_within_the_bound_and_refused_beyond_it() {
        // 300,000 distinct words each (the size that once needed more than 3 GB).
        let n = 300_000u32;
        let original: Vec<u32> = (0..n).collect();
        // An in-order selection is compared whatever its size.
        let every_other: Vec<u32> = (0..n).step_by(2).collect();
        assert_eq!(lcs_len_within(&original, &original, MAX_ROUGE_L_WORD_PAIRS), Some(n as usize));
        assert_eq!(lcs_len_within(&original, &every_other, MAX_ROUGE_L_WORD_PAIRS), Some(n as usize / 2));
        // The same words in another order are beyond the bound: refused, not computed.
        let reordered: Vec<u32> = (0..n).rev().collect();
        assert_eq!(lcs_len_within(&original, &reordered, MAX_ROUGE_L_WORD_PAIRS), None);
        // Within it, a reordering is computed exactly.
        let m = 20_000u32;
        let halves: Vec<u32> = (m / 2..m).chain(0..m / 2).collect();
        let first: Vec<u32> = (0..m).collect();
        assert_eq!(lcs_len_within(&first, &halves, MAX_ROUGE_L_WORD_PAIRS), Some(m as usize / 2));
    }

    #[test]
    fn a_refusal_names_both_word_counts_and_the_bound() {
        let words = 260_000;
        let original: String = (0..words).map(|i| format!("w{i} ")).collect();
        let reordered: String = (0..words).rev().map(|i| format!("w{i} ")).collect();
        let refusal = validate(&original, &reordered, None).unwrap_err();
        assert_eq!(refusal, TooLargeToCompare { original_words: words, compressed_words: words });
        let message = refusal.to_string();
        assert!(message.contains("260000 words") && message.contains("64000000000"), "{message}");
        // What an extractive compressor returns is compared at any size.
        let kept: String = (0..words).filter(|i| !i.is_multiple_of(4)).map(|i| format!("w{i} ")).collect();
        let v = validate(&original, &kept, None).unwrap();
        assert_eq!(v.details["rouge_l_precision"], 1.0);
    }

    #[test]
    fn identical_texts_pass_with_full_scores() {
        let t = "The Bee Gees released it in 1971. Barry Gibb wrote it.";
        let v = check(t, t, Some("who released it"));
        assert!(v.passed);
        assert_eq!(v.rouge_l_score, 1.0);
        assert_eq!(v.details["number_retention"], 1.0);
        assert_eq!(v.details["novel_word_rate"], 0.0);
    }

    #[test]
    fn dropping_the_facts_or_inventing_words_fails() {
        let t = "The Bee Gees released it in 1971. Barry Gibb wrote it in London.";
        let lossy = check(t, "released it. wrote it.", None);
        assert!(!lossy.passed);
        assert_eq!(lossy.details["number_retention"], 0.0);
        let invented = check(t, "The Beatles released it in 1971 in Paris.", None);
        assert!(!invented.passed);
        assert!(invented.details["novel_word_rate"].as_f64().unwrap() > 0.02);
        let missing_query = check(t, "Barry Gibb wrote it in London 1971.", Some("Bee Gees release"));
        assert_eq!(missing_query.details["query_coverage"], 0.0);
        assert!(!missing_query.passed);
    }

    #[test]
    fn upper_case_words_match_their_lower_case_forms() {
        let v = check("Paris is in France. PARIS has museums.", "paris is in france. paris has museums.", None);
        assert_eq!(v.rouge_l_score, 1.0);
        assert_eq!(v.details["entity_retention"], 1.0);
    }
}
