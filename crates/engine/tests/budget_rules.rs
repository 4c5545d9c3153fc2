//! Property tests of the budget rules of API.md over arbitrary input: never a panic, the
//! reported count is the real count of the output, never over budget unless flagged, non-empty
//! output for non-empty input, kept text taken from the input in order, JSON in gives JSON out.

use omnimemory_engine::compress::{Budget, CompressRequest, compress};
use omnimemory_engine::tokens::Encoding;
use proptest::prelude::*;

/// Is `needle` (white space removed) a subsequence of `hay` (white space removed), by chars?
fn is_char_subsequence(needle: &str, hay: &str) -> bool {
    let mut h = hay.chars().filter(|c| !c.is_whitespace());
    needle.chars().filter(|c| !c.is_whitespace()).all(|c| h.any(|x| x == c))
}

/// Every white-space separated run of `out` occurs in `input`, in order, without overlap.
fn runs_in_order(out: &str, input: &str) -> bool {
    let mut at = 0;
    for run in out.split_whitespace() {
        match input[at..].find(run) {
            Some(i) => at += i + run.len(),
            None => return false,
        }
    }
    true
}

fn check(text: &str, query: Option<&str>, budget: Budget, enc: Encoding) -> omnimemory_engine::compress::Compressed {
    let c = compress(&CompressRequest { context: text, query, budget, granularity: Default::default() }, enc);
    assert_eq!(c.compressed_tokens, enc.count(&c.text), "reported count is the real count");
    assert_eq!(c.original_tokens, enc.count(text));
    if !c.over_budget {
        assert!(c.compressed_tokens <= c.budget_tokens, "{} > {}", c.compressed_tokens, c.budget_tokens);
    }
    if !text.is_empty() {
        assert!(!c.text.is_empty(), "non-empty input gave empty output");
    }
    assert!((0.0..=1.0).contains(&c.quality_score));
    // 1.0 only when nothing but surrounding white space was dropped.
    if c.text.trim() != text.trim() {
        assert!(c.quality_score < 1.0, "{:?} from {:?}", c.text, text);
    }
    assert!(c.retained_indices.windows(2).all(|w| w[0] < w[1]));
    assert!(is_char_subsequence(&c.text, text), "output is not taken from the input");
    c
}

fn budget() -> impl Strategy<Value = Budget> {
    prop_oneof![(0.0f64..0.99).prop_map(Budget::Ratio), (0usize..300).prop_map(Budget::Tokens),]
}

fn sentence_text() -> impl Strategy<Value = String> {
    let word = prop_oneof![
        "[a-z]{1,9}",
        "[A-Z][a-z]{1,8}",
        "[0-9]{1,4}(\\.[0-9]{1,2})?",
        Just("https://example.com/a.b".to_string()),
        Just("snake_case_id".to_string()),
        Just("Dr.".to_string()),
        Just("U.S.".to_string()),
        Just("日本語。".to_string()),
    ];
    let sentence = prop::collection::vec(word, 1..14).prop_map(|w| w.join(" ") + ".");
    let para = prop::collection::vec(sentence, 1..6).prop_map(|s| s.join(" "));
    let title = "[A-Z][a-z]{2,8}".prop_map(|t| format!("Title: {t}\n"));
    prop::collection::vec((prop::option::of(title), para), 1..8)
        .prop_map(|ps| ps.into_iter().map(|(t, p)| t.unwrap_or_default() + &p).collect::<Vec<_>>().join("\n\n"))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 96, ..ProptestConfig::default() })]

    #[test]
    fn arbitrary_unicode_obeys_the_rules(
        text in "\\PC{0,600}",
        query in prop::option::of("\\PC{0,40}"),
        budget in budget(),
    ) {
        check(&text, query.as_deref(), budget, Encoding::Cl100k);
    }

    #[test]
    fn control_characters_and_odd_white_space(
        text in "[\\x00-\\x1f \\u{a0}\\u{2028}\\u{3000}a-z。.!?\\n]{0,400}",
        budget in budget(),
    ) {
        check(&text, None, budget, Encoding::O200k);
    }

    #[test]
    fn sentences_keep_whole_words_in_order(
        text in sentence_text(),
        query in prop::option::of("[a-z]{2,8}( [a-z]{2,8}){0,4}"),
        budget in budget(),
        enc in prop_oneof![Just(Encoding::Cl100k), Just(Encoding::O200k), Just(Encoding::Approx)],
    ) {
        let c = check(&text, query.as_deref(), budget, enc);
        prop_assert!(runs_in_order(&c.text, &text), "{:?} not in order in {:?}", c.text, text);
        // Whole sentences only: what is left of the budget is less than a paragraph (else a
        // sentence of it would still have fitted).
        let longest_paragraph = text.lines().map(|l| enc.count(l)).max().unwrap_or(0);
        if !c.over_budget && c.text != text && c.budget_tokens >= 60 {
            prop_assert!(c.compressed_tokens + longest_paragraph + 2 >= c.budget_tokens,
                "{} tokens for a budget of {}", c.compressed_tokens, c.budget_tokens);
        }
    }

    #[test]
    fn json_in_gives_json_out(
        value in prop::collection::btree_map("[a-z]{1,8}", prop_oneof![
            any::<i64>().prop_map(serde_json::Value::from),
            "[a-zA-Z ]{0,30}".prop_map(serde_json::Value::from),
            prop::collection::vec(any::<u16>(), 0..6).prop_map(serde_json::Value::from),
        ], 1..30),
        budget in budget(),
    ) {
        let text = serde_json::to_string_pretty(&value).unwrap();
        let c = check_json(&text, budget);
        prop_assert!(serde_json::from_str::<serde_json::Value>(&c).is_ok(), "{c}");
    }
}

fn check_json(text: &str, budget: Budget) -> String {
    let c = compress(
        &CompressRequest { context: text, query: None, budget, granularity: Default::default() },
        Encoding::Cl100k,
    );
    assert!(!c.text.is_empty());
    c.text
}

#[test]
fn empty_and_blank_inputs_come_back_unchanged() {
    for text in ["", " ", "\n\n\t"] {
        let c = check(text, Some("q"), Budget::Ratio(0.9), Encoding::Cl100k);
        assert_eq!(c.text, text);
        assert_eq!(c.quality_score, 1.0);
    }
}

#[test]
fn huge_line_and_repeated_character_stay_within_budget() {
    let line = "word ".repeat(40_000);
    let c = check(&line, Some("word"), Budget::Ratio(0.9), Encoding::Cl100k);
    // Whole pieces only (a long run is cut into pieces of about 400 tokens here): the budget is
    // filled up to less than one piece.
    assert!(c.compressed_tokens + 450 >= c.budget_tokens, "{} of {}", c.compressed_tokens, c.budget_tokens);
    let same = "x".repeat(100_000);
    let c = check(&same, None, Budget::Ratio(0.75), Encoding::Cl100k);
    assert!(c.compressed_tokens <= c.budget_tokens);
}

#[test]
fn text_that_looks_like_json_but_is_not_is_packed_as_prose() {
    let text = "{ this is not json, it only starts with a brace. It goes on for a while with \
                several sentences. Another sentence follows here. And one more to make it long. \
                The end is near now.";
    let c = check(text, None, Budget::Ratio(0.5), Encoding::Cl100k);
    assert!(c.compressed_tokens <= c.budget_tokens);
}

#[test]
fn deeply_nested_json_stays_valid() {
    let mut text = String::new();
    for _ in 0..100 {
        text.push_str("{\"a\": [1, 2, 3, ");
    }
    text.push('0');
    for _ in 0..100 {
        text.push_str("]}");
    }
    let out = check_json(&text, Budget::Ratio(0.5));
    assert!(serde_json::from_str::<serde_json::Value>(&out).is_ok(), "{out}");
}
