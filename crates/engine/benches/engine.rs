//! Criterion benchmarks for the numbers the README quotes:
//! - token counting, bpe-openai (ours) vs tiktoken-rs, on the same ~10 KB of text;
//! - `compress` on a 2,500-token multi-passage item (with and without query, 4x);
//! - `compress` on a ~100,000-token document (prose with and without query, and JSON, logs
//!   and Rust code of about 100,000 tokens, each through its structure handler);
//! - no quadratic blow-up: 1 MB of one repeated character, one 1 MB line of words, 1 MB of
//!   JSON and 1 MB of logs.
//!
//! `cargo bench -p omnimemory-engine --bench engine`

use criterion::{Criterion, criterion_group, criterion_main};
use omnimemory_engine::compress::{Budget, CompressRequest, compress};
use omnimemory_engine::tokens::Encoding;
use std::hint::black_box;

#[path = "support/inputs.rs"]
mod inputs;

use inputs::passages;

fn counting(c: &mut Criterion) {
    let text = passages(20, 1);
    let tiktoken = tiktoken_rs::cl100k_base().unwrap();
    let bytes = text.len();
    let mut g = c.benchmark_group(format!("count_cl100k_{bytes}B"));
    g.bench_function("bpe-openai", |b| b.iter(|| Encoding::Cl100k.count(black_box(&text))));
    g.bench_function("tiktoken-rs", |b| b.iter(|| tiktoken.encode_ordinary(black_box(&text)).len()));
    g.finish();
}

fn compress_items(c: &mut Criterion) {
    let item = passages(20, 2);
    eprintln!("nq-like item: {} cl100k tokens", Encoding::Cl100k.count(&item));
    let query = "who wrote the first single of the band album";
    let mut g = c.benchmark_group("compress");
    g.bench_function("item_2500_tokens_query_4x", |b| {
        b.iter(|| {
            compress(
                &CompressRequest {
                    context: black_box(&item),
                    query: Some(query),
                    budget: Budget::Ratio(0.75),
                    granularity: Default::default(),
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
                    granularity: Default::default(),
                },
                Encoding::Cl100k,
            )
        })
    });
    // The small request of `scripts/load.sh`: two sentences at half, so no whole sentence fits
    // and the tiny-budget path picks a phrase. Its cost is per request under load.
    let small = "OmniMemory keeps what the model needs. The rest is noise that costs tokens and accuracy.";
    g.bench_function("small_17_tokens_2x", |b| {
        b.iter(|| {
            compress(
                &CompressRequest {
                    context: black_box(small),
                    query: None,
                    budget: Budget::Ratio(0.5),
                    granularity: Default::default(),
                },
                Encoding::Cl100k,
            )
        })
    });
    let big = passages(880, 3);
    eprintln!("big document: {} cl100k tokens", Encoding::Cl100k.count(&big));
    g.sample_size(10);
    g.bench_function("doc_100k_tokens_query_2x", |b| {
        b.iter(|| {
            compress(
                &CompressRequest {
                    context: black_box(&big),
                    query: Some(query),
                    budget: Budget::Ratio(0.5),
                    granularity: Default::default(),
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
                    granularity: Default::default(),
                },
                Encoding::Cl100k,
            )
        })
    });
    let structured = [
        ("json_100k_tokens_query_4x", inputs::json_records(350, 5), Some("orders of user42@example.com")),
        ("logs_100k_tokens_4x", inputs::service_log(2300, 6), None),
        ("code_100k_tokens_query_4x", inputs::rust_code(175, 7), Some("update entries total")),
    ];
    for (name, text, q) in &structured {
        eprintln!("{name}: {} cl100k tokens", Encoding::Cl100k.count(text));
        g.bench_function(*name, |b| {
            b.iter(|| {
                compress(
                    &CompressRequest {
                        context: black_box(text),
                        query: *q,
                        budget: Budget::Ratio(0.75),
                        granularity: Default::default(),
                    },
                    Encoding::Cl100k,
                )
            })
        });
    }
    let same = "a".repeat(1 << 20);
    g.bench_function("one_char_1MB_4x", |b| {
        b.iter(|| {
            compress(
                &CompressRequest {
                    context: black_box(&same),
                    query: None,
                    budget: Budget::Ratio(0.75),
                    granularity: Default::default(),
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
                    granularity: Default::default(),
                },
                Encoding::Cl100k,
            )
        })
    });
    for (name, text) in
        [("json_1MB_4x", inputs::json_records(1_000, 8)), ("logs_1MB_4x", inputs::service_log(8_000, 9))]
    {
        g.bench_function(name, |b| {
            b.iter(|| {
                compress(
                    &CompressRequest {
                        context: black_box(&text),
                        query: None,
                        budget: Budget::Ratio(0.75),
                        granularity: Default::default(),
                    },
                    Encoding::Cl100k,
                )
            })
        });
    }
    g.finish();
}

criterion_group!(benches, counting, compress_items);
criterion_main!(benches);
