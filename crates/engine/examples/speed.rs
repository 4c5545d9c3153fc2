//! Quick timing of `compress` on the benchmark inputs (median of a few runs each), for use
//! while developing; `cargo bench -p omnimemory-engine --bench engine` gives the careful
//! numbers. Prints the median wall time and the mean CPU time per call.
//!
//! `cargo run --release -p omnimemory-engine --example speed [-- RUNS] [FILTER]`

#[path = "../benches/support/inputs.rs"]
mod inputs;

use omnimemory_engine::compress::{Budget, CompressRequest, compress};
use omnimemory_engine::tokens::Encoding;
use std::time::Instant;

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let runs: usize = args.iter().find_map(|a| a.parse().ok()).unwrap_or(5);
    let filter = args.iter().find(|a| a.parse::<usize>().is_err()).cloned().unwrap_or_default();
    let query = "who wrote the first single of the band album";
    let item = inputs::passages(20, 2);
    let big = inputs::passages(880, 3);
    let json = inputs::json_records(350, 5);
    let logs = inputs::service_log(2300, 6);
    let code = inputs::rust_code(175, 7);
    let same = "a".repeat(1 << 20);
    let line = inputs::passages(1700, 4).replace('\n', " ");
    let line = line[..line.len().min(1 << 20)].to_string();
    let json_1mb = inputs::json_records(1_000, 8);
    let logs_1mb = inputs::service_log(8_000, 9);
    let cases: Vec<(&str, &str, Option<&str>, f64)> = vec![
        ("item_2500_query_4x", &item, Some(query), 0.75),
        ("item_2500_no_query_4x", &item, None, 0.75),
        ("prose_100k_query_2x", &big, Some(query), 0.5),
        ("prose_100k_no_query_2x", &big, None, 0.5),
        ("json_100k_query_4x", &json, Some("orders of user42@example.com"), 0.75),
        ("json_100k_no_query_4x", &json, None, 0.75),
        ("logs_100k_4x", &logs, None, 0.75),
        ("logs_100k_query_4x", &logs, Some("payment timeout"), 0.75),
        ("code_100k_4x", &code, None, 0.75),
        ("code_100k_query_4x", &code, Some("update entries total"), 0.75),
        ("one_char_1MB_4x", &same, None, 0.75),
        ("one_line_1MB_query_4x", &line, Some(query), 0.75),
        ("json_1MB_4x", &json_1mb, None, 0.75),
        ("logs_1MB_4x", &logs_1mb, None, 0.75),
    ];
    for (name, text, q, r) in cases {
        if !name.contains(filter.as_str()) {
            continue;
        }
        let mut times = Vec::new();
        let mut last = None;
        // Small inputs run more often so the CPU-time clock (10 ms ticks) can see them.
        let runs = if text.len() < 100_000 { runs * 100 } else { runs };
        let cpu0 = cpu_ms();
        for _ in 0..runs {
            let t0 = Instant::now();
            let c = compress(
                &CompressRequest { context: text, query: q, budget: Budget::Ratio(r), granularity: Default::default() },
                Encoding::Cl100k,
            );
            times.push(t0.elapsed().as_secs_f64() * 1e3);
            last = Some(c);
        }
        let cpu = (cpu_ms() - cpu0) / runs as f64;
        times.sort_by(f64::total_cmp);
        let c = last.unwrap();
        println!(
            "{name:28} {:>9.2} ms (cpu {:>7.2} ms)  {:>7} -> {:>6} tokens (budget {:>6})  {}",
            times[times.len() / 2],
            cpu,
            c.original_tokens,
            c.compressed_tokens,
            c.budget_tokens,
            c.content_type.as_str()
        );
    }
}

/// User + system CPU time of this process so far, in ms (Linux `/proc`; 0 elsewhere). Unlike
/// wall time it leaves out time the machine gave to other work.
fn cpu_ms() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else {
        return 0.0;
    };
    // Fields after the ")" that ends the command name: utime and stime are the 12th and 13th.
    let rest = stat.rsplit_once(')').map_or("", |(_, r)| r);
    let f: Vec<&str> = rest.split_whitespace().collect();
    let ticks: f64 =
        f.get(11).and_then(|v| v.parse().ok()).unwrap_or(0.0) + f.get(12).and_then(|v| v.parse().ok()).unwrap_or(0.0);
    ticks * 10.0
}
