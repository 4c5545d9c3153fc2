//! Criterion benchmarks for the numbers the README quotes:
//! - token counting, bpe-openai (ours) vs tiktoken-rs, on the same ~10 KB of text;
//! - `compress` on a 2,500-token multi-passage item (with and without query, 4x);
//! - `compress` on a ~100,000-token document;
//! - no quadratic blow-up: 1 MB of one repeated character, and one 1 MB line of words.
//!
//! `cargo bench -p omnimemory-engine --bench engine`

use criterion::{Criterion, criterion_group, criterion_main};
use omnimemory_engine::compress::{Budget, CompressRequest, compress};
use omnimemory_engine::tokens::Encoding;
use std::hint::black_box;

/// A deterministic multi-passage text in the shape of the nq-multidoc items.
fn passages(n: usize, seed: u64) -> String {
    const WORDS: &[&str] = &[
        "the",
        "song",
        "was",
        "released",
        "by",
        "band",
        "in",
        "1971",
        "album",
        "first",
        "single",
        "written",
        "Barry",
        "Robin",
        "Gibb",
        "chart",
        "reached",
        "number",
        "one",
        "weeks",
        "United",
        "States",
        "film",
        "directed",
        "Steven",
        "Spielberg",
        "based",
        "life",
        "of",
        "river",
        "mountain",
        "capital",
        "city",
        "population",
        "3.2",
        "million",
        "war",
        "treaty",
        "signed",
        "president",
        "elected",
        "season",
        "episode",
        "character",
        "played",
        "actor",
        "protein",
        "cell",
        "membrane",
        "energy",
        "and",
        "a",
        "with",
        "for",
        "its",
        "which",
    ];
    let mut x = seed;
    let mut next = || {
        x = x
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        (x >> 33) as usize
    };
    let mut out = String::new();
    for p in 0..n {
        if p > 0 {
            out.push_str("\n\n");
        }
        out.push_str(&format!(
            "Title: Passage {p} {}\n",
            WORDS[next() % WORDS.len()]
        ));
        for s in 0..5 {
            let len = 12 + next() % 14;
            for w in 0..len {
                let word = WORDS[next() % WORDS.len()];
                if w == 0 {
                    let mut c = word.chars();
                    let first = c.next().unwrap().to_uppercase().collect::<String>();
                    out.push_str(&first);
                    out.push_str(c.as_str());
                } else {
                    out.push(' ');
                    out.push_str(word);
                }
            }
            out.push('.');
            if s < 4 {
                out.push(' ');
            }
        }
    }
    out
}

fn counting(c: &mut Criterion) {
    let text = passages(20, 1);
    let tiktoken = tiktoken_rs::cl100k_base().unwrap();
    let bytes = text.len();
    let mut g = c.benchmark_group(format!("count_cl100k_{bytes}B"));
    g.bench_function("bpe-openai", |b| {
        b.iter(|| Encoding::Cl100k.count(black_box(&text)))
    });
    g.bench_function("tiktoken-rs", |b| {
        b.iter(|| tiktoken.encode_ordinary(black_box(&text)).len())
    });
    g.finish();
}

fn compress_items(c: &mut Criterion) {
    let item = passages(20, 2);
    eprintln!(
        "nq-like item: {} cl100k tokens",
        Encoding::Cl100k.count(&item)
    );
    let query = "who wrote the first single of the band album";
    let mut g = c.benchmark_group("compress");
    g.bench_function("item_2500_tokens_query_4x", |b| {
        b.iter(|| {
            compress(
                &CompressRequest {
                    context: black_box(&item),
                    query: Some(query),
                    budget: Budget::Ratio(0.75),
                },
                Encoding::Cl100k,
            )
        })
    });
    g.bench_function("item_2500_tokens_no_query_4x", |b| {
        b.iter(|| {
            compress(
                &CompressRequest {
                    context: black_box(&item),
                    query: None,
                    budget: Budget::Ratio(0.75),
                },
                Encoding::Cl100k,
            )
        })
    });
    let big = passages(800, 3);
    eprintln!(
        "big document: {} cl100k tokens",
        Encoding::Cl100k.count(&big)
    );
    g.sample_size(10);
    g.bench_function("doc_100k_tokens_query_2x", |b| {
        b.iter(|| {
            compress(
                &CompressRequest {
                    context: black_box(&big),
                    query: Some(query),
                    budget: Budget::Ratio(0.5),
                },
                Encoding::Cl100k,
            )
        })
    });
    g.bench_function("doc_100k_tokens_no_query_2x", |b| {
        b.iter(|| {
            compress(
                &CompressRequest {
                    context: black_box(&big),
                    query: None,
                    budget: Budget::Ratio(0.5),
                },
                Encoding::Cl100k,
            )
        })
    });
    let same = "a".repeat(1 << 20);
    g.bench_function("one_char_1MB_4x", |b| {
        b.iter(|| {
            compress(
                &CompressRequest {
                    context: black_box(&same),
                    query: None,
                    budget: Budget::Ratio(0.75),
                },
                Encoding::Cl100k,
            )
        })
    });
    let line = passages(1700, 4).replace('\n', " ");
    let line = &line[..line.len().min(1 << 20)];
    g.bench_function("one_line_1MB_query_4x", |b| {
        b.iter(|| {
            compress(
                &CompressRequest {
                    context: black_box(line),
                    query: Some(query),
                    budget: Budget::Ratio(0.75),
                },
                Encoding::Cl100k,
            )
        })
    });
    g.finish();
}

criterion_group!(benches, counting, compress_items);
criterion_main!(benches);
