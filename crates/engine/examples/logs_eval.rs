//! Log compression on Loghub-style data, its variants and synthetic unseen formats.
//!
//! `cargo run --release -p omnimemory-engine --example logs_eval -- DATA_DIR OUT_DIR
//! [--variant NAME] [--missed]`
//!
//! For each variant (`original`, `epoch`, `yymmdd-hhmmss`, `iso8601-zone`, `no-timestamp`,
//! `interleaved`, `synthetic`) it compresses every system at targets 0.75 and 0.9 through
//! `compress` (cl100k), prints template and error-template coverage, the achieved ratio and
//! the share of output lines that are neither input lines nor collapse lines, and writes
//! `OUT_DIR/<variant>/` (`<System>.log` and a `<System>.csv` that `log_eval.py` reads) and
//! `OUT_DIR/<variant>.jsonl` for `log_eval.py score OUT_DIR/<variant> OUT_DIR/<variant>.jsonl`.

#[path = "../tests/support/loghub.rs"]
mod loghub;

#[path = "../benches/support/inputs.rs"]
mod inputs;

use loghub::{System, TimeFormat};
use omnimemory_engine::compress::{Budget, CompressRequest, compress, logs::is_collapse_line};
use omnimemory_engine::tokens::Encoding;
use std::collections::HashSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let positional: Vec<&String> = args.iter().filter(|a| !a.starts_with("--")).collect();
    let only = args.iter().position(|a| a == "--variant").and_then(|p| args.get(p + 1));
    let missed = args.iter().any(|a| a == "--missed");
    if args.first().is_some_and(|a| a == "--detect") {
        detect_files(&args[1..]);
        return;
    }
    if args.iter().any(|a| a == "--bench") {
        bench();
        return;
    }
    let (Some(data), Some(out)) = (positional.first(), positional.get(1)) else {
        eprintln!("usage: logs_eval DATA_DIR OUT_DIR [--variant NAME] [--missed]");
        std::process::exit(2);
    };
    let data = Path::new(data.as_str());
    let out = PathBuf::from(out.as_str());
    let systems: Vec<System> = loghub::SYSTEMS.iter().filter_map(|s| loghub::load_system(data, s)).collect();
    let mut variants: Vec<(String, Vec<System>)> = vec![("original".into(), systems.clone())];
    for f in TimeFormat::ALL {
        variants.push((f.name().into(), systems.iter().map(|s| loghub::rewrite_timestamps(s, f)).collect()));
    }
    let by_name = |n: &str| systems.iter().find(|s| s.name == n);
    variants.push((
        "interleaved".into(),
        loghub::PAIRS.iter().filter_map(|(a, b)| Some(loghub::interleave(by_name(a)?, by_name(b)?))).collect(),
    ));
    variants.push(("synthetic".into(), loghub::synthetic_systems(2000)));

    for (name, systems) in &variants {
        if only.is_some_and(|o| o != name) || systems.is_empty() {
            continue;
        }
        let dir = out.join(name);
        std::fs::create_dir_all(&dir).expect("create output folder");
        let mut jsonl = std::fs::File::create(out.join(format!("{name}.jsonl"))).unwrap();
        for target in [0.75, 0.9] {
            let (mut cov, mut err, mut n_err, mut ratio, mut foreign, mut over) = (0.0, 0.0, 0, 0.0, 0usize, 0usize);
            let mut ms = 0.0;
            let mut kinds = Vec::new();
            for sys in systems {
                let text = sys.text();
                std::fs::write(dir.join(format!("{}.log", sys.name)), &text).unwrap();
                std::fs::write(dir.join(format!("{}.csv", sys.name)), loghub::scorer_csv(sys)).unwrap();
                let start = Instant::now();
                let c = compress(
                    &CompressRequest {
                        context: &text,
                        query: None,
                        budget: Budget::Ratio(target),
                        granularity: Default::default(),
                    },
                    Encoding::Cl100k,
                );
                ms += start.elapsed().as_secs_f64() * 1e3;
                kinds.push(c.content_type.as_str());
                over += usize::from(c.compressed_tokens > c.budget_tokens);
                let row = serde_json::json!({
                    "id": format!("{}|{target}", sys.name),
                    "compressed_text": c.text,
                });
                writeln!(jsonl, "{row}").unwrap();
                let t = loghub::templates(sys);
                let (tc, ec, miss) = loghub::coverage(&c.text, &t);
                cov += tc;
                if let Some(e) = ec {
                    err += e;
                    n_err += 1;
                }
                ratio += c.original_tokens as f64 / c.compressed_tokens.max(1) as f64;
                let input: HashSet<&str> = sys.lines.iter().map(String::as_str).collect();
                foreign += c.text.split('\n').filter(|l| !input.contains(l) && !is_collapse_line(l)).count();
                if missed && !miss.is_empty() {
                    println!("  {} @{target}: missed {}", sys.name, miss.len());
                    for m in miss.iter().take(12) {
                        let e = t.parts.iter().position(|(x, _)| x == m).is_some_and(|p| t.errors[p]);
                        println!("      {}{m}", if e { "[ERR] " } else { "" });
                    }
                }
            }
            let n = systems.len() as f64;
            println!(
                "{name:14} {target}: coverage {:5.1}%  errors {:5.1}% ({n_err} systems)  achieved {:4.1}x  over budget {over}  foreign lines {foreign}  {:.1} ms/item  {:?}",
                100.0 * cov / n,
                100.0 * err / n_err.max(1) as f64,
                ratio / n,
                ms / n,
                kinds
            );
        }
    }
}

/// Times the pieces of the engine bench's `logs_100k_tokens_4x` case: counting the input,
/// building the piece counter, and the whole `compress` call (best of 15).
fn bench() {
    let text = inputs::service_log(2300, 6);
    let best = |f: &dyn Fn() -> usize| {
        let mut best = f64::MAX;
        let mut out = 0;
        for _ in 0..15 {
            let t = Instant::now();
            out = f();
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
        }
        (best, out)
    };
    let (count_ms, tokens) = best(&|| Encoding::Cl100k.count(&text));
    let (piece_ms, _) = best(&|| omnimemory_engine::tokens::PieceCounter::new(Encoding::Cl100k, &text).source_tokens());
    let (detect_ms, _) = best(&|| omnimemory_engine::compress::detect::detect(&text) as usize);
    let (all_ms, out) = best(&|| {
        compress(
            &CompressRequest {
                context: &text,
                query: None,
                budget: Budget::Ratio(0.75),
                granularity: Default::default(),
            },
            Encoding::Cl100k,
        )
        .compressed_tokens
    });
    println!(
        "{tokens} tokens -> {out}: count {count_ms:.1} ms, piece counter {piece_ms:.1} ms, detect {detect_ms:.2} ms, compress {all_ms:.1} ms"
    );
    // The handler alone, with the time and number of its counts.
    let counter = omnimemory_engine::tokens::PieceCounter::new(Encoding::Cl100k, &text);
    let calls = std::cell::Cell::new((0usize, 0.0f64));
    let count = |s: &str| {
        let t = Instant::now();
        let n = counter.count(s);
        let (c, ms) = calls.get();
        calls.set((c + 1, ms + t.elapsed().as_secs_f64() * 1e3));
        n
    };
    let (handler_ms, _) = best(&|| {
        calls.set((0, 0.0));
        omnimemory_engine::compress::logs::compress_logs(&text, None, tokens / 4, &count).map_or(0, |p| p.text.len())
    });
    let (c, ms) = calls.get();
    println!("handler {handler_ms:.1} ms, of which {c} counts {ms:.1} ms");
    let out = omnimemory_engine::compress::logs::compress_logs(&text, None, tokens / 4, &count)
        .map(|p| p.text)
        .unwrap_or_default();
    let (whole_ms, _) = best(&|| counter.count(&text));
    let (out_ms, _) = best(&|| counter.count(&out));
    println!("cached count of the input {whole_ms:.1} ms, of the output ({} bytes) {out_ms:.1} ms", out.len());
}

/// Prints how many of the files (or, for `.jsonl`, the lines' `context`) are detected as each
/// content type, and names those detected as logs.
fn detect_files(paths: &[String]) {
    use omnimemory_engine::compress::detect::detect;
    let mut counts = std::collections::BTreeMap::<&str, usize>::new();
    for p in paths {
        let Ok(text) = std::fs::read_to_string(p) else {
            continue;
        };
        let items: Vec<(String, String)> = if p.ends_with(".jsonl") {
            text.lines()
                .filter_map(|l| serde_json::from_str::<serde_json::Value>(l).ok())
                .filter_map(|v| Some((format!("{p}:{}", v.get("id")?), v.get("context")?.as_str()?.to_string())))
                .collect()
        } else {
            vec![(p.clone(), text)]
        };
        for (name, t) in items {
            let kind = detect(&t).as_str();
            *counts.entry(kind).or_default() += 1;
            if kind == "logs" {
                println!("logs: {name}");
            }
        }
    }
    println!("{counts:?}");
}
