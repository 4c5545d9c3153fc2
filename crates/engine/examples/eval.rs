//! Runs the EVAL.md protocol on a JSONL file and prints the table.
//!
//! `cargo run --release -p omnimemory-engine --example eval -- DATA.jsonl [--ratios 2,4,10]
//! [--no-query] [--both] [--limit N] [--missed]`

use omnimemory_engine::eval;

fn main() {
    let mut args = std::env::args().skip(1);
    let mut path = None;
    let mut ratios = vec![2.0, 4.0, 10.0];
    let mut modes = vec![true];
    let mut limit = usize::MAX;
    let mut show_missed = false;
    // --dump OUT.jsonl: also write every output (id, ratio, query mode, answers, text, retained).
    let mut dump: Option<String> = None;
    while let Some(a) = args.next() {
        match a.as_str() {
            "--ratios" => {
                ratios = args
                    .next()
                    .expect("--ratios needs a value")
                    .split(',')
                    .map(|r| r.trim().parse().expect("ratio must be a number"))
                    .collect()
            }
            "--no-query" => modes = vec![false],
            "--both" => modes = vec![true, false],
            "--limit" => limit = args.next().and_then(|n| n.parse().ok()).expect("--limit N"),
            "--missed" => show_missed = true,
            "--dump" => dump = args.next(),
            _ => path = Some(a),
        }
    }
    let path = path.expect("usage: eval DATA.jsonl [--ratios 2,4,10] [--no-query|--both]");
    let mut items = match eval::load_jsonl(std::path::Path::new(&path)) {
        Ok(items) => items,
        Err(e) => {
            eprintln!("error: {e}");
            std::process::exit(1);
        }
    };
    items.truncate(limit);
    if let Some(out) = &dump {
        use omnimemory_engine::compress::{Budget, CompressRequest, compress};
        use omnimemory_engine::tokens::Encoding;
        use std::io::Write;
        let mut f = std::io::BufWriter::new(std::fs::File::create(out).expect("dump file"));
        for use_query in &modes {
            for item in &items {
                for &k in &ratios {
                    let c = compress(
                        &CompressRequest {
                            context: &item.context,
                            query: if *use_query {
                                item.query.as_deref()
                            } else {
                                None
                            },
                            budget: Budget::Ratio(1.0 - 1.0 / k),
                            granularity: Default::default(),
                        },
                        Encoding::Cl100k,
                    );
                    let line = serde_json::json!({
                        "id": item.id, "ratio": k, "query": use_query, "answers": item.answers,
                        "retained": eval::retained(&c.text, &item.answers), "text": c.text,
                    });
                    writeln!(f, "{line}").unwrap();
                }
            }
        }
    }
    for use_query in modes {
        let t0 = std::time::Instant::now();
        let report = eval::run(&items, &ratios, use_query, &mut || {});
        print!("{report}");
        println!(
            "({} items in {:.1} s)",
            items.len(),
            t0.elapsed().as_secs_f64()
        );
        if show_missed {
            for r in &report.rows {
                println!("missed at {}x: {}", r.ratio, r.missed.join(" "));
            }
        }
    }
}
