//! Retention metrics between an original text and a compressed one (`POST /validate`).
//!
//! Words are alphanumeric runs, lower-cased (CJK characters count one by one). `details` holds:
//! - `rouge_l_precision`, `rouge_l_recall`, `rouge_l_f1`: ROUGE-L on words, from the longest
//!   common subsequence (bit-parallel LCS, O(n·m/64), so a 100k-word original is fine);
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

use std::collections::HashSet;

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
        let keep: HashSet<&str> = metrics
            .iter()
            .flat_map(|m| m.keys().iter().copied())
            .collect();
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

struct Words {
    lower: Vec<String>,
    numbers: HashSet<String>,
    entities: HashSet<String>,
}

fn words(text: &str) -> Words {
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
        let l = w.to_lowercase();
        if w.bytes().any(|c| c.is_ascii_digit()) {
            numbers.insert(l.clone());
        } else if !sentence_start && w.chars().next().is_some_and(char::is_uppercase) {
            entities.insert(l.clone());
        }
        lower.push(l);
        sentence_start = false;
        last_end = b;
    });
    Words {
        lower,
        numbers,
        entities,
    }
}

/// Length of the longest common subsequence of `a` and `b` (symbol ids), bit-parallel
/// (Hyyrö 2004) over the shorter sequence.
pub fn lcs_len(a: &[u32], b: &[u32]) -> usize {
    let (pat, txt) = if a.len() <= b.len() { (a, b) } else { (b, a) };
    let m = pat.len();
    if m == 0 {
        return 0;
    }
    let words = m.div_ceil(64);
    let mut peq: std::collections::HashMap<u32, Vec<u64>> = std::collections::HashMap::new();
    for (i, &s) in pat.iter().enumerate() {
        peq.entry(s).or_insert_with(|| vec![0; words])[i / 64] |= 1 << (i % 64);
    }
    let mut v = vec![u64::MAX; words];
    for s in txt {
        let Some(mask) = peq.get(s) else { continue };
        let mut carry = 0u64;
        for k in 0..words {
            let u = v[k] & mask[k];
            let (sum1, c1) = v[k].overflowing_add(u);
            let (sum2, c2) = sum1.overflowing_add(carry);
            carry = u64::from(c1 || c2);
            v[k] = sum2 | (v[k] & !mask[k]);
        }
    }
    let mut zeros = 0;
    for (k, &x) in v.iter().enumerate() {
        let bits = if k + 1 == words && m % 64 != 0 {
            m % 64
        } else {
            64
        };
        let mask = if bits == 64 {
            u64::MAX
        } else {
            (1u64 << bits) - 1
        };
        zeros += bits - (x & mask).count_ones() as usize;
    }
    zeros
}

fn share(kept: &HashSet<String>, of: &HashSet<String>) -> f64 {
    if of.is_empty() {
        1.0
    } else {
        of.iter().filter(|w| kept.contains(*w)).count() as f64 / of.len() as f64
    }
}

pub fn validate(original: &str, compressed: &str, query: Option<&str>) -> Validation {
    let o = words(original);
    let c = words(compressed);
    let mut ids: std::collections::HashMap<&str, u32> = std::collections::HashMap::new();
    let mut oid = Vec::with_capacity(o.lower.len());
    let mut cid = Vec::with_capacity(c.lower.len());
    for (list, out) in [(&o.lower, &mut oid), (&c.lower, &mut cid)] {
        for w in list {
            let n = ids.len() as u32;
            out.push(*ids.entry(w.as_str()).or_insert(n));
        }
    }
    let lcs = lcs_len(&oid, &cid) as f64;
    let precision = if cid.is_empty() {
        0.0
    } else {
        lcs / cid.len() as f64
    };
    let recall = if oid.is_empty() {
        0.0
    } else {
        lcs / oid.len() as f64
    };
    let f1 = if precision + recall > 0.0 {
        2.0 * precision * recall / (precision + recall)
    } else if oid.is_empty() && cid.is_empty() {
        1.0
    } else {
        0.0
    };

    let oset: HashSet<String> = o.lower.iter().cloned().collect();
    let cset: HashSet<String> = c.lower.iter().cloned().collect();
    let content: HashSet<String> = oset.iter().filter(|w| !is_stopword(w)).cloned().collect();
    let unigram_recall = share(&cset, &content);
    let number_retention = share(&cset, &o.numbers);
    let entity_retention = share(&cset, &o.entities);
    let novel = c.lower.iter().filter(|w| !oset.contains(*w)).count();
    let novel_word_rate = if c.lower.is_empty() {
        0.0
    } else {
        novel as f64 / c.lower.len() as f64
    };

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
    put(
        "length_ratio",
        round(if o.lower.is_empty() {
            1.0
        } else {
            c.lower.len() as f64 / o.lower.len() as f64
        }),
    );

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
    Validation {
        passed,
        rouge_l_score: (f1 * 10_000.0).round() / 10_000.0,
        details,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_cut_down_text_with_the_key_content_gone_does_not_pass() {
        let original = "The quick brown fox jumps over the lazy dog near the old river bank today.";
        assert!(!validate(original, "Fox dog.", None).passed);
        assert!(!validate(original, "The", None).passed);
        assert!(validate(original, original, None).passed);
        assert!(
            validate(
                original,
                "The quick brown fox jumps over the lazy dog near the old river.",
                None
            )
            .passed
        );
    }

    #[test]
    fn metrics_select_what_is_reported() {
        let v =
            validate("One two three.", "One two.", None).only(&[Metric::parse("rouge-l").unwrap()]);
        let keys: Vec<&String> = v.details.keys().collect();
        assert_eq!(keys, ["rouge_l_f1", "rouge_l_precision", "rouge_l_recall"]);
        assert_eq!(Metric::parse("bogus"), None);
    }

    fn naive_lcs(a: &[u32], b: &[u32]) -> usize {
        let mut dp = vec![vec![0usize; b.len() + 1]; a.len() + 1];
        for i in 0..a.len() {
            for j in 0..b.len() {
                dp[i + 1][j + 1] = if a[i] == b[j] {
                    dp[i][j] + 1
                } else {
                    dp[i][j + 1].max(dp[i + 1][j])
                };
            }
        }
        dp[a.len()][b.len()]
    }

    #[test]
    fn bit_parallel_lcs_matches_the_textbook_one() {
        let mut seed = 7u64;
        let mut rnd = |n: u64| {
            seed = seed
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (seed >> 33) % n
        };
        for _ in 0..50 {
            let la = rnd(150) as usize;
            let lb = rnd(150) as usize;
            let a: Vec<u32> = (0..la).map(|_| rnd(6) as u32).collect();
            let b: Vec<u32> = (0..lb).map(|_| rnd(6) as u32).collect();
            assert_eq!(lcs_len(&a, &b), naive_lcs(&a, &b));
        }
    }

    #[test]
    fn identical_texts_pass_with_full_scores() {
        let t = "The Bee Gees released it in 1971. Barry Gibb wrote it.";
        let v = validate(t, t, Some("who released it"));
        assert!(v.passed);
        assert_eq!(v.rouge_l_score, 1.0);
        assert_eq!(v.details["number_retention"], 1.0);
        assert_eq!(v.details["novel_word_rate"], 0.0);
    }

    #[test]
    fn dropping_the_facts_or_inventing_words_fails() {
        let t = "The Bee Gees released it in 1971. Barry Gibb wrote it in London.";
        let lossy = validate(t, "released it. wrote it.", None);
        assert!(!lossy.passed);
        assert_eq!(lossy.details["number_retention"], 0.0);
        let invented = validate(t, "The Beatles released it in 1971 in Paris.", None);
        assert!(!invented.passed);
        assert!(invented.details["novel_word_rate"].as_f64().unwrap() > 0.02);
        let missing_query = validate(
            t,
            "Barry Gibb wrote it in London 1971.",
            Some("Bee Gees release"),
        );
        assert_eq!(missing_query.details["query_coverage"], 0.0);
        assert!(!missing_query.passed);
    }
}
