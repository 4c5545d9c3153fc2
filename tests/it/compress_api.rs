//! `/compress`, `/count-tokens` and `/validate` over HTTP, as the original SDK calls them.

use serde_json::json;

use crate::harness::{Backend, Server, client};

async fn post(server: &Server, key: &str, path: &str, body: serde_json::Value) -> serde_json::Value {
    let resp = client().post(server.url(path)).bearer_auth(key).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200, "{path}");
    resp.json().await.unwrap()
}

#[tokio::test]
async fn json_in_gives_valid_json_out_within_budget() {
    let server = Server::start(&Backend::Sqlite);
    let key = server.create_key("json", "enterprise");
    let object: serde_json::Map<String, serde_json::Value> =
        (0..60).map(|i| (format!("key-{i:03}"), json!(format!("value number {i} of the map")))).collect();
    let context = serde_json::to_string_pretty(&object).unwrap();
    let out = post(
        &server,
        &key,
        "/compress",
        json!({"context": context, "query": "What is the value of \"key-042\"?", "target_compression": 0.9,
               "model_id": "gpt-4o", "prefer_online": null, "metrics": null, "file_path": null}),
    )
    .await;
    let text = out["compressed_text"].as_str().unwrap();
    let parsed: serde_json::Value = serde_json::from_str(text).expect("output parses as JSON");
    assert_eq!(parsed["key-042"], "value number 42 of the map", "{text}");
    assert_eq!((out["content_type"].as_str(), out["tokenizer"].as_str()), (Some("json"), Some("o200k_base")));
    assert!(out["compressed_tokens"].as_u64().unwrap() <= out["budget_tokens"].as_u64().unwrap());
    assert_eq!(out["model_id"], "gpt-4o");
}

#[tokio::test]
async fn prose_keeps_input_order_and_honours_target_tokens() {
    let server = Server::start(&Backend::Sqlite);
    let key = server.create_key("prose", "enterprise");
    let sentences: Vec<String> =
        (0..40).map(|i| format!("Sentence {i} talks about topic {} with detail number {}.", i % 7, i * 13)).collect();
    let context = sentences.join(" ");
    let out =
        post(&server, &key, "/compress", json!({"context": context, "target_tokens": 120, "target_compression": 0.1}))
            .await;
    assert!(out["compressed_tokens"].as_u64().unwrap() <= 120, "{out}");
    assert_eq!(out["budget_tokens"], 120);
    let indices: Vec<u64> = out["retained_indices"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap()).collect();
    assert!(!indices.is_empty() && indices.windows(2).all(|w| w[0] < w[1]), "{indices:?}");
    assert!(out["quality_score"].as_f64().unwrap() < 1.0 && out["quality_score"].as_f64().unwrap() > 0.0);
    let ratio = out["compression_ratio"].as_f64().unwrap();
    let expected = 1.0 - out["compressed_tokens"].as_f64().unwrap() / out["original_tokens"].as_f64().unwrap();
    assert!((ratio - expected).abs() < 1e-9);

    let empty = post(&server, &key, "/compress", json!({"context": ""})).await;
    assert_eq!((empty["original_tokens"].as_u64(), empty["compression_ratio"].as_f64()), (Some(0), Some(0.0)));
    let tiny = post(&server, &key, "/compress", json!({"context": "Keep me."})).await;
    assert_eq!((tiny["compressed_text"].as_str(), tiny["quality_score"].as_f64()), (Some("Keep me."), Some(1.0)));
}

#[tokio::test]
async fn count_tokens_and_validate_answer_the_documented_shapes() {
    let server = Server::start(&Backend::Sqlite);
    let key = server.create_key("shapes", "enterprise");
    let count = post(&server, &key, "/count-tokens", json!({"text": "hello world", "model_id": "gpt-4o-mini"})).await;
    assert_eq!((count["token_count"].as_u64(), count["tokenizer"].as_str()), (Some(2), Some("o200k_base")));
    assert_eq!((count["is_exact"].as_bool(), count["strategy_used"].as_str()), (Some(true), Some("bpe")));
    let unknown = post(&server, &key, "/count-tokens", json!({"text": "hello world", "model_id": "my-model"})).await;
    assert_eq!(unknown["is_exact"], false);

    let original = "The launch is on 12 March 2027 in Lisbon. Tickets cost 40 euros.";
    let same = post(&server, &key, "/validate", json!({"original": original, "compressed": original})).await;
    assert_eq!((same["passed"].as_bool(), same["bertscore_f1"].is_null()), (Some(true), true), "{same}");
    assert!(same["rouge_l_score"].as_f64().unwrap() > 0.99);
    let lossy = post(&server, &key, "/validate", json!({"original": original, "compressed": "Tickets."})).await;
    assert!(lossy["rouge_l_score"].as_f64().unwrap() < same["rouge_l_score"].as_f64().unwrap());
    assert!(lossy["details"].as_object().is_some_and(|d| !d.is_empty()), "{lossy}");
}

#[tokio::test]
async fn the_data_folders_model_registry_extends_the_built_in_one() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("data");
    std::fs::create_dir_all(&home).unwrap();
    let registry = r#"{"models": [{"pattern": "acme-chat-*", "family": "acme", "encoding": "o200k_base", "context_window": 32768}]}"#;
    std::fs::write(home.join("model_registry.json"), registry).unwrap();
    let server = Server::builder(&Backend::Sqlite).home(&home).start();
    let key = server.create_key("registry", "enterprise");
    let count = post(&server, &key, "/count-tokens", json!({"text": "hello world", "model_id": "acme-chat-7b"})).await;
    assert_eq!((count["tokenizer"].as_str(), count["is_exact"].as_bool()), (Some("o200k_base"), Some(true)), "{count}");
    assert_eq!(
        (count["metadata"]["family"].as_str(), count["metadata"]["context_window"].as_u64()),
        (Some("acme"), Some(32768))
    );

    std::fs::write(home.join("model_registry.json"), r#"{"models": [{"pattern": "x", "encodin": "o200k_base"}]}"#)
        .unwrap();
    let out = crate::harness::cli_with(&home, &[], &["count-tokens", "--model", "x"], Some("hi"));
    assert_eq!(out.code, 1);
    assert!(out.stderr.contains("model_registry.json"), "{}", out.stderr);
}

#[tokio::test]
async fn large_inputs_are_compressed_off_the_executor_within_budget() {
    let server = Server::start(&Backend::Sqlite);
    let key = server.create_key("large", "enterprise");
    let context: String =
        (0..1200).map(|i| format!("Line {i} records event {} at node-{}.\n", i * 7 % 13, i % 17)).collect();
    assert!(context.len() > 40 * 1024);
    let (a, b) = tokio::join!(
        post(&server, &key, "/compress", json!({"context": context, "target_compression": 0.8})),
        post(&server, &key, "/count-tokens", json!({"text": context})),
    );
    assert!(a["compressed_tokens"].as_u64().unwrap() <= a["budget_tokens"].as_u64().unwrap(), "{}", a["budget_tokens"]);
    assert_eq!(a["original_tokens"], b["token_count"]);
}

#[tokio::test]
async fn metrics_are_exposed_without_a_key_and_name_routes_not_paths() {
    let server = Server::start(&Backend::Sqlite);
    let key = server.create_key("metrics", "pro");
    post(&server, &key, "/compress", json!({"context": "Count me in the metrics, please, twice over."})).await;
    let _ = client().get(server.url("/no/such/path/123")).send().await.unwrap();
    let resp = client().get(server.url("/metrics")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let text = resp.text().await.unwrap();
    assert!(text.contains(r#"omnimemory_http_requests_total{route="/compress",status="200"} 1"#), "{text}");
    assert!(text.contains("omnimemory_compress_original_tokens_total"), "{text}");
    // Where the request's time went, step by step.
    for stage in ["count", "admit", "engine", "record"] {
        let line = format!(r#"omnimemory_compress_stage_seconds_count{{stage="{stage}"}} 1"#);
        assert!(text.contains(&line), "{line} in {text}");
    }
    assert!(text.contains(r#"route="unmatched""#) && !text.contains("/no/such/path"), "{text}");
    assert!(!text.contains(&key[..15]));
}

#[tokio::test]
async fn the_openapi_document_describes_exactly_the_routes_the_server_has() {
    let server = Server::start(&Backend::Sqlite);
    let resp = client().get(server.url("/openapi.json")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let doc: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(doc["openapi"], "3.1.0");
    let documented: std::collections::BTreeSet<(String, String)> = doc["paths"]
        .as_object()
        .unwrap()
        .iter()
        .flat_map(|(path, ops)| ops.as_object().unwrap().keys().map(move |m| (path.clone(), m.clone())))
        .collect();
    // The routes as the router declares them: `.route("/path", get(…))`.
    let source = include_str!("../../src/http/mod.rs");
    let routed: std::collections::BTreeSet<(String, String)> = source
        .lines()
        .filter_map(|l| l.trim().strip_prefix(".route(\""))
        .map(|rest| {
            let (path, call) = rest.split_once("\", ").unwrap();
            (path.to_string(), call.split('(').next().unwrap().to_string())
        })
        .collect();
    assert_eq!(documented, routed);
    for (path, method) in &routed {
        let resp = client().request(method.to_uppercase().parse().unwrap(), server.url(path)).send().await.unwrap();
        assert!(![404, 405].contains(&resp.status().as_u16()), "{method} {path}");
    }
}
