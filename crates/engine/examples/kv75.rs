//! Quick check of the JSON compressor on the kv75 evaluation set.
//!
//! `cargo run --release -p omnimemory-engine --example kv75 [-- PATH]` (default
//! `/work/shared/data/kv75-dev.jsonl`). For each item and ratio (2x, 4x, 10x) it compresses the
//! context with its query at budget `floor(n × 0.5 / 0.25 / 0.1)` cl100k tokens, and reports
//! retention (the answer string is in the output), JSON validity, the achieved ratio and time.
//! Pass `--no-query` to run without the query.

use std::time::Instant;

use omnimemory_engine::compress::json::compress_json;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let no_query = args.iter().any(|a| a == "--no-query");
    let path = args
        .iter()
        .find(|a| !a.starts_with("--"))
        .cloned()
        .unwrap_or_else(|| "/work/shared/data/kv75-dev.jsonl".to_string());
    let data = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
    let bpe = bpe_openai::cl100k_base();
    let count = |s: &str| bpe.count(s);
    println!("{path}, query: {}", if no_query { "no" } else { "yes" });
    println!("ratio  items  retained  valid_json  within_5%  mean_achieved  ms/item");
    for keep in [0.5f64, 0.25, 0.1] {
        let (mut items, mut retained, mut valid, mut close) = (0, 0, 0, 0);
        let mut achieved = 0.0;
        let started = Instant::now();
        for line in data.lines().filter(|l| !l.trim().is_empty()) {
            let item: serde_json::Value = serde_json::from_str(line).expect("jsonl line");
            let context = item["context"].as_str().unwrap_or_default();
            let query = item["query"].as_str().filter(|_| !no_query);
            let answers: Vec<&str> = item["answers"]
                .as_array()
                .map(|a| a.iter().filter_map(|v| v.as_str()).collect())
                .unwrap_or_default();
            let n = count(context);
            let budget = (n as f64 * keep).floor() as usize;
            items += 1;
            let Some(p) = compress_json(context, query, budget, &count) else {
                continue;
            };
            let c = count(&p.text);
            assert!(c <= budget, "over budget on {}", item["id"]);
            if answers.iter().any(|a| p.text.contains(a)) {
                retained += 1;
            }
            if serde_json::from_str::<serde_json::Value>(&p.text).is_ok() {
                valid += 1;
            }
            if c as f64 >= budget as f64 * 0.95 {
                close += 1;
            }
            achieved += n as f64 / c.max(1) as f64;
        }
        let ms = started.elapsed().as_secs_f64() * 1000.0 / items.max(1) as f64;
        let pct = |x: usize| 100.0 * x as f64 / items.max(1) as f64;
        println!(
            "{:>4.0}x  {items:>5}  {:>7.1}%  {:>9.1}%  {:>8.1}%  {:>12.2}x  {ms:>7.3}",
            1.0 / keep,
            pct(retained),
            pct(valid),
            pct(close),
            achieved / items.max(1) as f64,
        );
    }
}
