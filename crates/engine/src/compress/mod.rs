//! Context compression: detect the content type, segment, rank, and pack into a token budget.
//!
//! [`compress`] is the one entry point. It counts the input with the caller's [`Encoding`],
//! turns the request's [`Budget`] into a token budget, and then:
//! - inputs that are blank, shorter than [`MIN_TOKENS`] tokens, or already within budget come
//!   back unchanged (`quality_score` 1.0);
//! - JSON, code and logs go to their own handlers (`json`, `code`, `logs`); when a handler gives
//!   up, code and logs are packed line by line, and JSON that parses falls back to its minified
//!   form or, if even that does not fit, to an empty container of the same kind — JSON in never
//!   gives invalid JSON out. Text that starts with `{`/`[` and parses as JSON is treated as JSON
//!   whatever `detect` says;
//! - a code handler's output under half its budget means it misread the text: the next
//!   handler, or the line packer, is tried;
//! - prose, markdown and chat are segmented ([`segment`]), ranked ([`rank`]: query-aware BM25
//!   with title and proximity signals, or information-based without a query; an email
//!   thread's greetings, signatures and senders weighed by `email`) and packed ([`pack`]) into
//!   the budget.
//!
//! # Guarantees (the budget rules of API.md)
//! - `compressed_tokens` is the count of the actual output text and is ≤ the budget, unless the
//!   smallest non-empty output (one protected word) is larger: then `over_budget` is true.
//! - Within 5 % under the budget whenever the input allows (leftover budget is filled with whole
//!   sentences, then a window of words of one more sentence).
//! - Output pieces are byte-exact slices of the input, in input order, joined only by the
//!   input's own white space; never cut inside a UTF-8 character; words are cut only at white
//!   space (or between CJK characters), so numbers, URLs, paths and identifiers are whole or
//!   absent. The one exception: a run of more than 2 KiB without white space may be cut.
//! - A non-empty input never gives an empty output.
//!
//! # `quality_score`
//! The information-weighted fraction kept: the sum of the kept words' weights over the sum of
//! all words' weights (weight = idf within the input, stopwords ≈ 0, numbers and names × 1.5;
//! see [`rank`]). With a query that has content terms in the input, the score is the mean of that
//! fraction and the query-term coverage (share of the query's content terms present in the input
//! that are still present in the output). It is 1.0 only when nothing was dropped, and at most
//! 0.999 otherwise. For JSON/code/logs handlers it is the handler's `kept_information`.
//!
//! Not here: I/O, async, HTTP, storage. Everything is pure and deterministic.

use crate::tokens::{Encoding, PieceCounter};

/// How much to keep.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Budget {
    /// Fraction of tokens to remove, in [0, 1). Budget = floor(original * (1 - r)).
    Ratio(f64),
    /// Absolute number of tokens to keep at most.
    Tokens(usize),
}

/// The smallest piece of prose the engine may keep or drop.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Granularity {
    /// Whole sentences, lines, list items, table rows, headings and code blocks (the default):
    /// every kept piece reads as it did in the input.
    #[default]
    Sentence,
    /// Words inside sentences may be dropped (opt-in): more facts per token, telegraphic text.
    Word,
}

#[derive(Debug, Clone, Copy)]
pub struct CompressRequest<'a> {
    pub context: &'a str,
    pub query: Option<&'a str>,
    pub budget: Budget,
    pub granularity: Granularity,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ContentType {
    Prose,
    Markdown,
    Code,
    Json,
    Logs,
    Chat,
}

impl ContentType {
    pub fn as_str(&self) -> &'static str {
        match self {
            ContentType::Prose => "prose",
            ContentType::Markdown => "markdown",
            ContentType::Code => "code",
            ContentType::Json => "json",
            ContentType::Logs => "logs",
            ContentType::Chat => "chat",
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Compressed {
    pub text: String,
    pub original_tokens: usize,
    pub compressed_tokens: usize,
    /// The budget the request asked for, in tokens.
    pub budget_tokens: usize,
    /// True when protected content alone exceeded the budget and was kept anyway.
    pub over_budget: bool,
    pub quality_score: f64,
    pub content_type: ContentType,
    /// Ascending indices of the input segments that were kept (whole or in part).
    pub retained_indices: Vec<usize>,
    /// The input came back as it was: blank, under [`MIN_TOKENS`], or already within budget.
    pub unchanged: bool,
}

/// Inputs with fewer tokens than this come back unchanged: there is nothing worth dropping.
pub const MIN_TOKENS: usize = 16;

/// A code handler whose output is under 1/`THIN_FILL` of its budget misread its input: the
/// next handler, or the line packer after the last, is tried. (A chat's whole turns may well
/// leave half the budget unused.)
const THIN_FILL: usize = 2;

/// The token budget for a request: `floor(original × (1 − r))` (r clamped to [0, 1]), or the
/// absolute `target_tokens`.
pub fn budget_tokens(budget: Budget, original_tokens: usize) -> usize {
    match budget {
        Budget::Ratio(r) => {
            let r = if r.is_nan() { 0.0 } else { r.clamp(0.0, 1.0) };
            (original_tokens as f64 * (1.0 - r)).floor() as usize
        }
        Budget::Tokens(t) => t,
    }
}

pub fn compress(req: &CompressRequest<'_>, encoding: Encoding) -> Compressed {
    compress_counted(req, &PieceCounter::new(encoding, req.context))
}

/// [`compress`] with the input already counted: `counter` must be `PieceCounter::new(encoding,
/// req.context)` (the caller that needed the count first, to reserve quota, passes its counter
/// so the input is tokenized once).
pub fn compress_counted(req: &CompressRequest<'_>, counter: &PieceCounter<'_>) -> Compressed {
    debug_assert!(std::ptr::eq(counter.source(), req.context));
    let count = |s: &str| counter.count(s);
    let text = req.context;
    let original_tokens = counter.source_tokens();
    let est = |a: usize, b: usize| counter.estimate(a, b);
    let budget = budget_tokens(req.budget, original_tokens);
    let content_type = detect::detect(text);
    let query = req.query.filter(|q| !q.trim().is_empty());

    let unchanged = |content_type| Compressed {
        text: text.to_string(),
        original_tokens,
        compressed_tokens: original_tokens,
        budget_tokens: budget,
        over_budget: original_tokens > budget,
        quality_score: 1.0,
        content_type,
        retained_indices: if text.trim().is_empty() { vec![] } else { vec![0] },
        unchanged: true,
    };
    if text.trim().is_empty() || original_tokens <= budget || original_tokens < MIN_TOKENS {
        return unchanged(content_type);
    }

    // A diff is read as a diff; code in a language without a grammar here falls back to the
    // indentation's outline.
    let handlers: &[Handler] = match content_type {
        ContentType::Json => &[json::compress_json],
        ContentType::Code => &[diff::compress_diff, code::compress_code, outline::compress_outline],
        ContentType::Logs => &[logs::compress_logs],
        ContentType::Chat => &[chat::compress_chat],
        _ => &[],
    };
    for handler in handlers {
        let Some(p) = handler(text, query, budget, counter) else { continue };
        let t = count(&p.text);
        let valid = content_type != ContentType::Json || json_syntax::minify(&p.text).is_some();
        if t <= budget && valid && !p.text.is_empty() {
            // A structure its handler misread (Terraform's output parsed as Python) comes back
            // a sliver of its budget: the next handler, or the line packer, reads it better.
            if content_type == ContentType::Code && t * THIN_FILL < budget {
                continue;
            }
            let dropped = p.text != text;
            return Compressed {
                compressed_tokens: t,
                text: p.text,
                original_tokens,
                budget_tokens: budget,
                over_budget: false,
                quality_score: clamp_quality(p.kept_information, dropped),
                content_type,
                retained_indices: p.retained_indices,
                unchanged: false,
            };
        }
    }
    if content_type == ContentType::Json
        && let Some(minified) = json_syntax::minify(text)
    {
        return json_fallback(text, minified, original_tokens, budget, &count);
    }

    let opts = segment::SegmentOptions {
        chat: content_type == ContentType::Chat,
        lines: matches!(content_type, ContentType::Code | ContentType::Logs),
    };
    let mut segs = segment::segment(text, opts);
    // An email thread: who wrote each message, and what is only its wrapping.
    let email =
        matches!(content_type, ContentType::Prose | ContentType::Markdown).then(|| email::roles(text, &segs)).flatten();
    if let Some(roles) = &email {
        for (s, &p) in segs.iter_mut().zip(&roles.parent) {
            s.parent = p;
        }
    }
    let weigh = |utility: &mut Vec<f64>| {
        if let Some(roles) = &email {
            roles.apply(utility, &|i| est(segs[i].start, segs[i].end));
        }
        // A stack trace pasted into a message ends with what went wrong (`HTTPError: 429 Too
        // Many Requests …`): that line is worth as much per token as the best one, so it is
        // never the one the trace's frames leave out.
        let exceptions: Vec<usize> =
            (0..segs.len()).filter(|&i| detect::is_exception_line(&text[segs[i].start..segs[i].end])).collect();
        if !exceptions.is_empty() {
            let cost = |i: usize| est(segs[i].start, segs[i].end).max(1) as f64;
            let best = (0..segs.len()).map(|i| utility[i] / cost(i)).fold(0.0, f64::max);
            for i in exceptions {
                utility[i] = utility[i].max(best * cost(i));
            }
        }
    };
    let mut analysis = rank::Analysis::new(text, &segs);
    let qterms = match query {
        Some(q) => rank::query_terms(&mut analysis, q),
        None => Vec::new(),
    };
    let packing = if req.granularity == Granularity::Word && qterms.is_empty() {
        // Opt-in: keep the most informative words of every sentence.
        pack::pack_words(text, &segs, &analysis, budget, counter)
    } else if qterms.is_empty() {
        let cost = |i: usize| est(segs[i].start, segs[i].end);
        let late = rank::late_titles(text, &segs, &cost, budget);
        let mut utility = rank::agnostic_utilities(&analysis, text, &segs, &cost, &late);
        weigh(&mut utility);
        if late.is_empty() {
            pack::pack(text, &segs, &analysis, &utility, budget, counter)
        } else {
            // A held-back title is no longer a sentence's parent: it comes in on its own value.
            let detached: Vec<segment::Segment> =
                segs.iter().map(|s| segment::Segment { parent: s.parent.filter(|&p| !late[p]), ..*s }).collect();
            pack::pack(text, &detached, &analysis, &utility, budget, counter)
        }
    } else {
        let keep_fraction = budget as f64 / original_tokens.max(1) as f64;
        let mut utility = rank::utilities(&mut analysis, text, &segs, query.unwrap_or(""), &qterms, keep_fraction);
        weigh(&mut utility);
        pack::pack(text, &segs, &analysis, &utility, budget, counter)
    };

    let total_weight: f64 = (0..segs.len()).map(|i| analysis.seg_info(i)).sum();
    let info = if total_weight > 0.0 {
        packing.kept_weight / total_weight
    } else {
        packing.text.len() as f64 / text.len() as f64
    };
    let quality = match query {
        Some(_) => {
            if qterms.is_empty() {
                info
            } else {
                let mut present = vec![false; analysis.lexicon.len()];
                text::for_each_word(&packing.text, |a, b| {
                    if let Some(t) = analysis.lexicon.lookup(&packing.text[a..b])
                        && let Some(p) = present.get_mut(t as usize)
                    {
                        *p = true;
                    }
                });
                let covered = qterms.iter().filter(|(t, _)| present.get(*t as usize).is_some_and(|p| *p)).count();
                0.5 * info + 0.5 * covered as f64 / qterms.len() as f64
            }
        }
        None => info,
    };
    let dropped = packing.text.len() < text.trim().len() || packing.kept.len() < segs.len();
    Compressed {
        text: packing.text,
        original_tokens,
        compressed_tokens: packing.tokens,
        budget_tokens: budget,
        over_budget: packing.over_budget,
        quality_score: clamp_quality(quality, dropped),
        content_type,
        retained_indices: packing.kept,
        unchanged: false,
    }
}

/// The one entry point every structured kind has (see [`units`]): the text, the query, the
/// budget in tokens and the counter; `None` when the kind cannot handle this input within the
/// budget (the caller then packs it as text).
pub type Handler = fn(&str, Option<&str>, usize, &dyn units::Count) -> Option<Packed>;

fn clamp_quality(q: f64, dropped: bool) -> f64 {
    let q = if q.is_finite() { q.clamp(0.0, 1.0) } else { 0.0 };
    if dropped { q.min(0.999) } else { 1.0 }
}

/// Last resort when the JSON handler gave up: the minified document if it fits, else an empty
/// container of the same kind (still valid JSON), else the original (over budget).
fn json_fallback(
    text: &str,
    minified: String,
    original_tokens: usize,
    budget: usize,
    count: &dyn Fn(&str) -> usize,
) -> Compressed {
    let (out, quality) = if count(&minified) <= budget && !minified.is_empty() {
        (minified, 0.999)
    } else if minified.starts_with('{') {
        ("{}".to_string(), 0.0)
    } else if minified.starts_with('[') {
        ("[]".to_string(), 0.0)
    } else {
        (text.to_string(), 1.0)
    };
    let t = count(&out);
    Compressed {
        compressed_tokens: t,
        over_budget: t > budget,
        retained_indices: if quality > 0.0 { vec![0] } else { vec![] },
        text: out,
        original_tokens,
        budget_tokens: budget,
        quality_score: quality,
        content_type: ContentType::Json,
        unchanged: false,
    }
}

pub use validate::{Metric, Validation, validate};

pub mod chat;
pub mod code;
pub mod detect;
pub mod diff;
pub(crate) mod drain;
pub(crate) mod email;
pub mod json;
pub(crate) mod json_syntax;
pub mod logs;
pub mod outline;
pub(crate) mod pack;
pub(crate) mod query;
pub(crate) mod rank;
pub(crate) mod segment;
pub(crate) mod semantic;
pub(crate) mod text;
pub(crate) mod units;
pub mod validate;

/// What a content-specific compressor returns: text within its budget, plus bookkeeping.
#[derive(Debug, Clone, PartialEq)]
pub struct Packed {
    /// The compressed text; its token count is at most the budget it was given.
    pub text: String,
    /// Ascending indices of the handler's own segments that were kept.
    pub retained_indices: Vec<usize>,
    /// Fraction in [0, 1] of the input's information weight that was kept (1.0 only if nothing dropped).
    pub kept_information: f64,
}
