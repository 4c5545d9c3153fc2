//! Content types through the public entry point `compress::compress`: what each kind of input
//! keeps, measured the way EVAL.md measures it.

use omnimemory_engine::compress::{Budget, CompressRequest, ContentType, compress};
use omnimemory_engine::eval;
use omnimemory_engine::tokens::Encoding;

/// A deterministic pseudo-UUID (lower-case hex, 8-4-4-4-12).
fn uuid(i: u64) -> String {
    let h = i.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ 0x0123_4567_89AB_CDEF;
    let g = h.rotate_left(23).wrapping_mul(0x2545_F491_4F6C_DD1D);
    format!(
        "{:08x}-{:04x}-4{:03x}-{:x}{:03x}-{:012x}",
        h >> 32,
        h & 0xffff,
        g & 0xfff,
        8 + (g >> 12) % 4,
        (g >> 16) & 0xfff,
        (g >> 28) & 0xffff_ffff_ffff
    )
}

/// The kv75 construction of EVAL.md: a pretty-printed object of 75 UUID pairs.
fn kv75(seed: u64) -> (String, Vec<(String, String)>) {
    let pairs: Vec<(String, String)> = (0..75)
        .map(|i| (uuid(seed * 1000 + 2 * i), uuid(seed * 1000 + 2 * i + 1)))
        .collect();
    let body: Vec<String> = pairs
        .iter()
        .map(|(k, v)| format!(" \"{k}\": \"{v}\""))
        .collect();
    (format!("{{\n{}\n}}", body.join(",\n")), pairs)
}

#[test]
fn kv75_answer_is_retained_as_eval_measures_it_and_output_is_json() {
    for seed in 0..3 {
        let (doc, pairs) = kv75(seed);
        for (i, (k, v)) in pairs.iter().enumerate().step_by(11) {
            let query = format!("What is the value associated with key \"{k}\"?");
            for ratio in [0.5, 0.75, 0.9] {
                let c = compress(
                    &CompressRequest {
                        context: &doc,
                        query: Some(&query),
                        budget: Budget::Ratio(ratio),
                    },
                    Encoding::Cl100k,
                );
                assert_eq!(c.content_type, ContentType::Json);
                assert!(c.compressed_tokens <= c.budget_tokens, "over budget");
                let parsed: serde_json::Value =
                    serde_json::from_str(&c.text).expect("output parses as JSON");
                assert_eq!(parsed[k.as_str()].as_str(), Some(v.as_str()));
                assert!(
                    eval::retained(&c.text, std::slice::from_ref(v)),
                    "member {i} at {ratio}: the value is not a word of the normalised output: {}",
                    c.text
                );
                // The key is a separate word too.
                assert!(eval::retained(&c.text, std::slice::from_ref(k)));
            }
        }
    }
}
