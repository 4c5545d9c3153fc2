//! `omnimemory compress`, `count-tokens` and `eval`: local, no server, no key.

use crate::harness::{Backend, TestEnv};

const PASSAGES: &str = "Title: Rust\nRust is a programming language focused on safety and speed. \
It was first released in 2015 by Mozilla Research. Its compiler is called rustc.\n\n\
Title: Python\nPython is a programming language created by Guido van Rossum. It was first \
released in 1991. It emphasises readability.\n\nTitle: Go\nGo is a language designed at \
Google by Robert Griesemer, Rob Pike and Ken Thompson. It appeared in 2009.";

fn json(out: &crate::harness::CliOutput) -> serde_json::Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {} {}", out.stdout, out.stderr))
}

#[test]
fn compress_reads_stdin_and_keeps_what_the_query_asks_for() {
    let env = TestEnv::new(Backend::Sqlite);
    let args = ["compress", "--query", "when was Python first released", "--target", "0.6", "--json"];
    let out = env.cli(&args, Some(PASSAGES));
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v = json(&out);
    let text = v["compressed_text"].as_str().unwrap();
    assert!(text.contains("1991"), "{text}");
    assert!(v["compressed_tokens"].as_u64().unwrap() <= v["budget_tokens"].as_u64().unwrap());
    assert!(v["compressed_tokens"].as_u64() < v["original_tokens"].as_u64());
    assert_eq!((v["model_id"].as_str(), v["tokenizer"].as_str()), (Some("gpt-4"), Some("cl100k_base")));

    let plain = env.cli(&["compress", "-", "--target", "0.5"], Some(PASSAGES));
    assert_eq!(plain.code, 0);
    assert!(!plain.stdout.trim().is_empty() && plain.stdout.len() < PASSAGES.len());
}

#[test]
fn a_missing_file_is_named_in_the_error() {
    let env = TestEnv::new(Backend::Sqlite);
    let out = env.cli(&["compress", "/nonexistent/notes.txt"], None);
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("/nonexistent/notes.txt"), "{}", out.stderr);
}

#[test]
fn batch_mode_answers_each_line_with_its_id_and_names_bad_lines() {
    let env = TestEnv::new(Backend::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    let output = dir.path().join("out.jsonl");
    let good = serde_json::json!({"id": "a", "context": PASSAGES, "target_compression": 0.5, "prefer_online": null});
    let lines =
        [good.to_string(), "{not json".to_string(), r#"{"id": 7, "context": "x", "target_compression": 2}"#.into()];
    std::fs::write(&input, lines.join("\n")).unwrap();
    let out = env.cli(&["compress", "--jsonl", input.to_str().unwrap(), "--out", output.to_str().unwrap()], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("in.jsonl:2:") && out.stderr.contains("in.jsonl:3:"), "{}", out.stderr);
    let written: Vec<serde_json::Value> =
        std::fs::read_to_string(&output).unwrap().lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(written.len(), 3);
    assert_eq!(written[0]["id"], "a");
    assert!(written[0]["compressed_tokens"].as_u64().unwrap() <= written[0]["budget_tokens"].as_u64().unwrap());
    assert_eq!(written[2]["id"], 7);
    assert_eq!(written[2]["error"]["code"], "invalid_request");
}

#[test]
fn batch_mode_takes_messages_and_answers_messages() {
    let env = TestEnv::new(Backend::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("chat.jsonl");
    let system = "You answer questions about programming languages in one sentence.";
    let messages = serde_json::json!([
        {"role": "system", "content": system},
        {"role": "user", "content": "Tell me about some languages."},
        {"role": "assistant", "content": PASSAGES},
        {"role": "user", "content": "When was Python first released?"},
    ]);
    let lines = [
        serde_json::json!({"id": "chat", "messages": messages, "target_compression": 0.5}).to_string(),
        serde_json::json!({"id": "bad", "messages": [{"role": "user", "content": "hi"}, {"role": 1, "content": "x"}]})
            .to_string(),
    ];
    std::fs::write(&input, lines.join("\n")).unwrap();
    let out = env.cli(&["compress", "--jsonl", input.to_str().unwrap()], None);
    assert_eq!(out.code, 1, "{}", out.stderr);
    assert!(out.stderr.contains("chat.jsonl:2: messages[1].role"), "{}", out.stderr);
    let written: Vec<serde_json::Value> = out.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let v = &written[0];
    assert_eq!((v["id"].as_str(), v["content_type"].as_str()), (Some("chat"), Some("chat")), "{v}");
    assert!(v["compressed_tokens"].as_u64().unwrap() <= v["budget_tokens"].as_u64().unwrap(), "{v}");
    let kept = v["messages"].as_array().unwrap();
    assert_eq!((kept[0]["role"].as_str(), kept[0]["content"].as_str()), (Some("system"), Some(system)), "{v}");
    let last = kept.last().unwrap();
    assert_eq!(
        (last["role"].as_str(), last["content"].as_str()),
        (Some("user"), Some("When was Python first released?"))
    );
    assert_eq!(v["retained_indices"].as_array().unwrap().last().unwrap(), 3);
    assert_eq!(
        (written[1]["id"].as_str(), written[1]["error"]["code"].as_str()),
        (Some("bad"), Some("invalid_request"))
    );
}

#[test]
fn count_tokens_is_exact_for_openai_models_and_labelled_approximate_otherwise() {
    let env = TestEnv::new(Backend::Sqlite);
    let exact = json(&env.cli(&["count-tokens", "--model", "gpt-4", "--json"], Some("hello world")));
    assert_eq!((exact["token_count"].as_u64(), exact["is_exact"].as_bool()), (Some(2), Some(true)));
    let approx = json(&env.cli(&["count-tokens", "--model", "claude-3-5-sonnet", "--json"], Some("hello world")));
    assert_eq!(approx["is_exact"], false);
    assert_eq!(approx["strategy_used"], "approximation");
    assert!(approx["token_count"].as_u64().unwrap() >= 1);
}

#[test]
fn eval_reports_retention_and_ratio_per_ratio() {
    let env = TestEnv::new(Backend::Sqlite);
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("items.jsonl");
    let items = [
        serde_json::json!({"id": 1, "query": "who created Python", "answers": ["Guido van Rossum"], "context": PASSAGES}),
        serde_json::json!({"id": 2, "query": "when did Go appear", "answers": ["2009"], "context": PASSAGES}),
    ];
    std::fs::write(&data, items.iter().map(|i| i.to_string()).collect::<Vec<_>>().join("\n")).unwrap();
    let out = env.cli(&["eval", data.to_str().unwrap(), "--ratios", "2", "--json"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let report = json(&out);
    let row = &report["rows"][0];
    assert_eq!((row["items"].as_u64(), row["over_budget"].as_u64()), (Some(2), Some(0)), "{report}");
    assert!(row["achieved_ratio"].as_f64().unwrap() >= 1.9, "{report}");

    // A folder stands for its .jsonl files: one report per file.
    std::fs::copy(&data, dir.path().join("more.jsonl")).unwrap();
    let out = env.cli(&["eval", dir.path().to_str().unwrap(), "--ratios", "2", "--json"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    let all = json(&out);
    let files: Vec<&str> = all.as_array().unwrap().iter().map(|r| r["file"].as_str().unwrap()).collect();
    assert!(files[0].ends_with("items.jsonl") && files[1].ends_with("more.jsonl"), "{all}");
    assert_eq!(all[1]["report"]["rows"][0]["items"], 2);

    let bad = env.cli(&["eval", "/nonexistent/items.jsonl"], None);
    assert_eq!(bad.code, 1);
    assert!(bad.stderr.contains("/nonexistent/items.jsonl"));
}
