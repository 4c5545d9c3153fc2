//! The answer-retention evaluation of `shared/spec/EVAL.md`, as a library.
//!
//! Input: items `{id, query, answers, context}` (one JSON object per line; extra fields are
//! ignored). For each compression factor `k` (default 2, 4, 10; EVAL.md's "2x / 4x / 10x",
//! which the CLI's `--ratios` and the JSON report's `ratio` name as EVAL.md does) every item's
//! context is compressed with `target_compression = 1 − 1/k` (the share removed, the API's
//! meaning of "ratio"), counted in `cl100k_base`, with or without the item's query.
//!
//! - **Retained**: some answer, normalised, occurs on word boundaries in the normalised output.
//!   Normalisation: NFKC, lower case, punctuation removed, articles `a`/`an`/`the` removed, white
//!   space collapsed (the SQuAD convention).
//! - **JSON valid**: for items whose context parses as JSON, the output must parse too; such an
//!   item only counts as retained when its output is valid JSON.
//! - **Achieved factor** (`achieved_ratio` in the report): original tokens / output tokens, reported as the total over all items
//!   and as the median per item; **within ±5 %**: share of items whose achieved ratio is within
//!   5 % of `k` (`|achieved / k − 1| ≤ 0.05`); **over budget**: items above their budget.
//!
//! - **Baselines** ([`baselines`]): `head` and, with the query, `bm25-passage`, `bm25-sent`,
//!   `bm25-fill`; without it, `lead-rr`; each at the same exact budget as the engine.
//! - **Readability**, without a query: the share of output sentences that are whole input
//!   sentences (`verbatim`) and the outputs with a bracket, quote or link broken that the input
//!   had whole (`unbalanced`).
//!
//! No I/O except in [`load_jsonl`]; [`run`] is pure CPU and uses up to two threads.

pub mod baselines;
pub mod structure;

use std::sync::mpsc;

use unicode_normalization::UnicodeNormalization;

use crate::compress::{Budget, CompressRequest, compress};
use crate::tokens::Encoding;

#[derive(Debug, Clone, serde::Deserialize)]
pub struct Item {
    #[serde(default)]
    pub id: serde_json::Value,
    #[serde(default)]
    pub query: Option<String>,
    pub answers: Vec<String>,
    pub context: String,
}

/// Per-ratio results.
#[derive(Debug, Clone, serde::Serialize)]
pub struct RatioReport {
    /// The compression factor asked for (original / output tokens: 2 keeps half), what
    /// EVAL.md and the JSON report call the ratio.
    #[serde(rename = "ratio")]
    pub factor: f64,
    pub target_compression: f64,
    pub items: usize,
    pub retained: usize,
    /// `retained / items`, in percent.
    pub retention_pct: f64,
    /// Items whose context is JSON, and how many of their outputs parse.
    pub json_items: usize,
    pub json_valid: usize,
    /// Sum of original tokens / sum of output tokens.
    #[serde(rename = "achieved_ratio")]
    pub achieved_factor: f64,
    /// Median over items of original / output tokens.
    #[serde(rename = "median_item_ratio")]
    pub median_item_factor: f64,
    /// Share (percent) of items whose achieved ratio is within ±5 % of `ratio`.
    pub within_5pct: f64,
    pub over_budget: usize,
    /// Median compression time per item, milliseconds.
    pub median_ms: f64,
    /// Ids of the items whose answer was lost.
    pub missed: Vec<String>,
    /// The baselines at the same budgets.
    pub baselines: Vec<BaselineReport>,
    /// Without a query: share (percent) of output sentences that are whole input sentences.
    pub verbatim_pct: Option<f64>,
    /// Without a query: outputs with a bracket, quote or link broken that the input had whole.
    pub unbalanced: Option<usize>,
}

/// One baseline's results at one ratio.
#[derive(Debug, Clone, serde::Serialize)]
pub struct BaselineReport {
    pub name: &'static str,
    pub retention_pct: f64,
    /// Sum of original tokens / sum of output tokens.
    #[serde(rename = "achieved_ratio")]
    pub achieved_factor: f64,
    pub over_budget: usize,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct Report {
    pub use_query: bool,
    pub rows: Vec<RatioReport>,
}

impl std::fmt::Display for Report {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        writeln!(
            f,
            "query: {}\n{:>6} {:>6} {:>9} {:>10} {:>9} {:>9} {:>8} {:>5} {:>8}",
            if self.use_query { "yes" } else { "no" },
            "ratio",
            "items",
            "retained",
            "json ok",
            "achieved",
            "median",
            "±5%",
            "over",
            "ms/item"
        )?;
        for r in &self.rows {
            let json = if r.json_items > 0 { format!("{}/{}", r.json_valid, r.json_items) } else { "-".to_string() };
            writeln!(
                f,
                "{:>5}x {:>6} {:>8.1}% {:>10} {:>8.2}x {:>8.2}x {:>7.1}% {:>5} {:>8.2}",
                r.factor,
                r.items,
                r.retention_pct,
                json,
                r.achieved_factor,
                r.median_item_factor,
                r.within_5pct,
                r.over_budget,
                r.median_ms
            )?;
            if let (Some(verbatim), Some(unbalanced)) = (r.verbatim_pct, r.unbalanced) {
                writeln!(f, "{:>7}  verbatim sentences {verbatim:.1}%, unbalanced outputs {unbalanced}", "")?;
            }
            for b in &r.baselines {
                writeln!(
                    f,
                    "{:>7}  {:<13} {:>7.1}% {:>10} {:>8.2}x {:>9} {:>8} {:>5}",
                    "", b.name, b.retention_pct, "", b.achieved_factor, "", "", b.over_budget
                )?;
            }
        }
        Ok(())
    }
}

/// Reads a JSONL file of items; the error names the file and the line.
pub fn load_jsonl(path: &std::path::Path) -> Result<Vec<Item>, String> {
    let text = std::fs::read_to_string(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut items = Vec::new();
    for (n, line) in text.lines().enumerate() {
        if line.trim().is_empty() {
            continue;
        }
        let item: Item = serde_json::from_str(line).map_err(|e| format!("{}:{}: {e}", path.display(), n + 1))?;
        items.push(item);
    }
    Ok(items)
}

/// NFKC, lower case, punctuation read as white space, articles dropped, white space collapsed
/// (as `shared/tools/compression_eval.py` normalises).
pub fn normalize(text: &str) -> String {
    let lowered: String = text
        .nfkc()
        .flat_map(char::to_lowercase)
        .map(|c| if c.is_alphanumeric() || c == '_' { c } else { ' ' })
        .collect();
    let mut out = String::with_capacity(lowered.len());
    for w in lowered.split_whitespace() {
        if matches!(w, "a" | "an" | "the") {
            continue;
        }
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(w);
    }
    out
}

/// Does some answer occur, normalised and on word boundaries, in the normalised output?
pub fn retained(output: &str, answers: &[String]) -> bool {
    let hay = format!(" {} ", normalize(output));
    answers.iter().any(|a| {
        let a = normalize(a);
        !a.is_empty() && hay.contains(&format!(" {a} "))
    })
}

struct Outcome {
    factor_index: usize,
    retained: bool,
    json: Option<bool>,
    original: usize,
    output: usize,
    over: bool,
    ms: f64,
    id: String,
    budget: usize,
    /// Per baseline: (retained, output tokens).
    baselines: Vec<(bool, usize)>,
    /// Without a query: (verbatim sentences, output sentences, unbalanced).
    readability: Option<(usize, usize, bool)>,
}

fn evaluate(item: &Item, factors: &[f64], use_query: bool) -> Vec<Outcome> {
    let is_json = {
        let t = item.context.trim_start();
        (t.starts_with('{') || t.starts_with('['))
            && serde_json::from_str::<serde::de::IgnoredAny>(&item.context).is_ok()
    };
    factors
        .iter()
        .enumerate()
        .map(|(ri, &k)| {
            let req = CompressRequest {
                context: &item.context,
                query: if use_query { item.query.as_deref() } else { None },
                budget: Budget::Ratio(1.0 - 1.0 / k),
                granularity: Default::default(),
            };
            let t0 = std::time::Instant::now();
            let c = compress(&req, Encoding::Cl100k);
            let ms = t0.elapsed().as_secs_f64() * 1e3;
            let json_ok = is_json.then(|| serde_json::from_str::<serde::de::IgnoredAny>(&c.text).is_ok());
            let query = if use_query { item.query.as_deref().unwrap_or("") } else { "" };
            let base = if is_json {
                Vec::new()
            } else {
                baselines::names(use_query)
                    .iter()
                    .map(|name| {
                        let out = baselines::run(name, &item.context, query, c.budget_tokens);
                        (retained(&out, &item.answers), Encoding::Cl100k.count(&out))
                    })
                    .collect()
            };
            Outcome {
                factor_index: ri,
                retained: retained(&c.text, &item.answers) && json_ok.unwrap_or(true),
                json: json_ok,
                original: c.original_tokens,
                output: c.compressed_tokens,
                over: c.compressed_tokens > c.budget_tokens,
                ms,
                id: match &item.id {
                    serde_json::Value::String(s) => s.clone(),
                    other => other.to_string(),
                },
                budget: c.budget_tokens,
                baselines: base,
                readability: (!use_query).then(|| baselines::readability(&item.context, &c.text)),
            }
        })
        .collect()
}

fn median(v: &mut [f64]) -> f64 {
    if v.is_empty() {
        return 0.0;
    }
    v.sort_by(f64::total_cmp);
    let m = v.len() / 2;
    if v.len() % 2 == 1 { v[m] } else { (v[m - 1] + v[m]) / 2.0 }
}

/// Runs the protocol on `items` for each ratio; `on_item_done` is called once per item, on the
/// calling thread, so it can drive a progress bar.
pub fn run(items: &[Item], factors: &[f64], use_query: bool, on_item_done: &mut dyn FnMut()) -> Report {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).clamp(1, 2);
    let mut outcomes: Vec<Outcome> = Vec::with_capacity(items.len() * factors.len());
    let (tx, rx) = mpsc::channel::<Vec<Outcome>>();
    std::thread::scope(|scope| {
        for t in 0..threads {
            let tx = tx.clone();
            scope.spawn(move || {
                for item in items.iter().skip(t).step_by(threads) {
                    if tx.send(evaluate(item, factors, use_query)).is_err() {
                        return;
                    }
                }
            });
        }
        drop(tx);
        for batch in rx {
            outcomes.extend(batch);
            on_item_done();
        }
    });

    let rows = factors
        .iter()
        .enumerate()
        .map(|(ri, &k)| {
            let rs: Vec<&Outcome> = outcomes.iter().filter(|o| o.factor_index == ri).collect();
            let n = rs.len();
            let retained = rs.iter().filter(|o| o.retained).count();
            let orig: usize = rs.iter().map(|o| o.original).sum();
            let out: usize = rs.iter().map(|o| o.output).sum();
            let mut per_item: Vec<f64> = rs.iter().map(|o| o.original as f64 / o.output.max(1) as f64).collect();
            let within = per_item.iter().filter(|&&r| (r / k - 1.0).abs() <= 0.05).count();
            let mut ms: Vec<f64> = rs.iter().map(|o| o.ms).collect();
            let mut missed: Vec<String> = rs.iter().filter(|o| !o.retained).map(|o| o.id.clone()).collect();
            missed.sort();
            let pct = |x: usize| {
                if n == 0 { 0.0 } else { 100.0 * x as f64 / n as f64 }
            };
            RatioReport {
                factor: k,
                target_compression: 1.0 - 1.0 / k,
                items: n,
                retained,
                retention_pct: pct(retained),
                json_items: rs.iter().filter(|o| o.json.is_some()).count(),
                json_valid: rs.iter().filter(|o| o.json == Some(true)).count(),
                achieved_factor: orig as f64 / out.max(1) as f64,
                median_item_factor: median(&mut per_item),
                within_5pct: pct(within),
                over_budget: rs.iter().filter(|o| o.over).count(),
                median_ms: median(&mut ms),
                missed,
                baselines: baselines::names(use_query)
                    .iter()
                    .enumerate()
                    .filter(|_| rs.iter().all(|o| !o.baselines.is_empty()) && n > 0)
                    .map(|(bi, &name)| {
                        let out: usize = rs.iter().map(|o| o.baselines[bi].1).sum();
                        BaselineReport {
                            name,
                            retention_pct: pct(rs.iter().filter(|o| o.baselines[bi].0).count()),
                            achieved_factor: orig as f64 / out.max(1) as f64,
                            over_budget: rs.iter().filter(|o| o.baselines[bi].1 > o.budget).count(),
                        }
                    })
                    .collect(),
                verbatim_pct: (!use_query).then(|| {
                    let (v, all) = rs.iter().filter_map(|o| o.readability).fold((0, 0), |(v, a), r| (v + r.0, a + r.1));
                    if all == 0 { 100.0 } else { 100.0 * v as f64 / all as f64 }
                }),
                unbalanced: (!use_query).then(|| rs.iter().filter(|o| o.readability.is_some_and(|r| r.2)).count()),
            }
        })
        .collect();
    Report { use_query, rows }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn normalisation_follows_the_squad_convention() {
        assert_eq!(normalize("The  Bee-Gees!"), "bee gees");
        assert_eq!(normalize("An Ｆｕｌｌ width, a test"), "full width test");
        assert_eq!(normalize("T-Bone Walker"), "t bone walker");
    }

    #[test]
    fn retention_needs_word_boundaries() {
        let answers = vec!["Bee Gees".to_string()];
        assert!(retained("It was the Bee Gees, in 1971.", &answers));
        assert!(!retained("The Bee Geese flew.", &answers));
        assert!(!retained("", &answers));
    }

    #[test]
    fn run_reports_retention_and_ratios() {
        let filler = "Unrelated filler sentence about weather and trains. ".repeat(20);
        let items = vec![Item {
            id: serde_json::json!("x1"),
            query: Some("who sang how can you mend a broken heart".into()),
            answers: vec!["Bee Gees".into()],
            context: format!(
                "Title: Trains\n{filler}\n\nTitle: How Can You Mend a Broken Heart\n\
                 \"How Can You Mend a Broken Heart\" is a song released by the Bee Gees in 1971.\n\n\
                 Title: Weather\n{filler}"
            ),
        }];
        let mut done = 0;
        let report = run(&items, &[2.0, 4.0], true, &mut || done += 1);
        assert_eq!(done, 1);
        assert_eq!(report.rows.len(), 2);
        for r in &report.rows {
            assert_eq!(r.retained, 1, "{report}");
            assert_eq!(r.over_budget, 0);
            assert!(r.achieved_factor >= r.factor);
        }
    }
}
