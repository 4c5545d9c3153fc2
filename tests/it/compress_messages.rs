//! `POST /compress` with an OpenAI-style `messages` array instead of `context`.

use serde_json::{Value, json};

use crate::harness::{Backend, Server, client, count_tokens, error_code, get_json};

const SYSTEM: &str = "You are a concise assistant for the city library. Answer in one paragraph.";

/// A few sentences about one topic, `n` times over with numbered details.
fn long(topic: &str, n: usize) -> String {
    (0..n)
        .map(|i| {
            format!("The {topic} report lists item {i} with a cost of {} euros and a delay of {} days. ", i * 37, i % 9)
        })
        .collect()
}

/// system, then user / assistant turns; the last user message is short unless `big_last_user`.
fn conversation(big_last_user: bool) -> Value {
    let last = if big_last_user {
        format!("Here are my own notes before you answer. {}", long("renovation", 40))
    } else {
        "So how much did the new roof cost in the end?".to_string()
    };
    json!([
        {"role": "system", "content": SYSTEM},
        {"role": "user", "content": "What happened with the library renovation?"},
        {"role": "assistant", "content": long("renovation", 12)},
        {"role": "user", "content": "And the opening hours?"},
        {"role": "assistant", "content": long("opening hours", 12), "name": "helper"},
        {"role": "user", "content": last},
    ])
}

async fn compress(server: &Server, key: &str, body: Value) -> Value {
    let resp = client().post(server.url("/compress")).bearer_auth(key).json(&body).send().await.unwrap();
    let status = resp.status();
    let answer: Value = resp.json().await.unwrap();
    assert_eq!(status, 200, "{answer}");
    answer
}

fn indices(answer: &Value) -> Vec<usize> {
    answer["retained_indices"].as_array().unwrap().iter().map(|v| v.as_u64().unwrap() as usize).collect()
}

async fn messages_in_messages_out_roles_kept_and_charged_like_a_context(backend: Backend) {
    let server = Server::start(&backend);
    let key = server.create_key("chat", "pro");
    let input = conversation(false);
    let out =
        compress(&server, &key, json!({"messages": input, "target_compression": 0.5, "model_id": "gpt-4o"})).await;

    assert_eq!((out["content_type"].as_str(), out["tokenizer"].as_str()), (Some("chat"), Some("o200k_base")), "{out}");
    let budget = out["budget_tokens"].as_u64().unwrap();
    assert!(out["compressed_tokens"].as_u64().unwrap() <= budget, "{out}");
    assert_eq!(out["over_budget"], false);
    let kept = out["messages"].as_array().unwrap();
    let at = indices(&out);
    assert!(kept.len() < 6 && kept.len() == at.len() && at.windows(2).all(|w| w[0] < w[1]), "{out}");
    for (m, &i) in kept.iter().zip(&at) {
        assert_eq!(m["role"], input[i]["role"], "{out}");
        assert!(input[i]["content"].as_str().unwrap().contains(m["content"].as_str().unwrap()));
        assert_eq!(m.as_object().unwrap().len(), 2, "only role and content: {m}");
    }
    assert_eq!((at[0], &kept[0]["content"]), (0, &input[0]["content"]), "the system message, whole");
    assert_eq!(
        (at[at.len() - 1], &kept[kept.len() - 1]["content"]),
        (5, &input[5]["content"]),
        "the last user message"
    );
    let contents: Vec<&str> = kept.iter().map(|m| m["content"].as_str().unwrap()).collect();
    assert_eq!(out["compressed_text"].as_str().unwrap(), contents.join("\n\n"));

    // original_tokens is the sum over the contents, and that is what is charged.
    let mut sum = 0;
    for m in input.as_array().unwrap() {
        sum += count_tokens(&server, &key, m["content"].as_str().unwrap(), "gpt-4o").await;
    }
    let original = out["original_tokens"].as_u64().unwrap();
    assert_eq!(original, sum);
    let stats = get_json(server.url("/usage/stats"), &key).await;
    assert_eq!(stats["stats"]["total_original_tokens"].as_u64(), Some(original), "{stats}");
    let quota = get_json(server.url("/usage/quota"), &key).await;
    assert_eq!(quota["quota"]["usage"]["current_usage"].as_u64(), Some(original), "{quota}");

    // A context request is charged the same way, and its answer has no `messages`.
    let context = compress(&server, &key, json!({"context": long("budget", 10), "target_compression": 0.5})).await;
    assert!(context.get("messages").is_none(), "{context}");
    assert_ne!(context["content_type"], "chat");
    let both = original + context["original_tokens"].as_u64().unwrap();
    let stats = get_json(server.url("/usage/stats"), &key).await;
    assert_eq!(stats["stats"]["total_original_tokens"].as_u64(), Some(both), "{stats}");
    assert_eq!(stats["stats"]["total_compressions"].as_u64(), Some(2), "{stats}");
    let quota = get_json(server.url("/usage/quota"), &key).await;
    assert_eq!(quota["quota"]["usage"]["current_usage"].as_u64(), Some(both), "{quota}");

    // Above the inline size (32 KiB) the messages are counted in their lane: the same charge
    // (a key whose request rate leaves room for the counts below).
    let key = server.create_key("chat-large", "enterprise");
    let big: Vec<Value> = (0..5)
        .map(|i| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": long(&format!("wing {i}"), 100)}))
        .collect();
    assert!(big.iter().map(|m| m["content"].as_str().unwrap().len()).sum::<usize>() > 32 * 1024);
    let out = compress(&server, &key, json!({"messages": big, "target_compression": 0.75})).await;
    let mut sum = 0;
    for m in &big {
        sum += count_tokens(&server, &key, m["content"].as_str().unwrap(), "gpt-4").await;
    }
    assert_eq!(out["original_tokens"].as_u64(), Some(sum), "{out}");
    assert!(out["compressed_tokens"].as_u64().unwrap() <= out["budget_tokens"].as_u64().unwrap(), "{out}");
    let quota = get_json(server.url("/usage/quota"), &key).await;
    assert_eq!(quota["quota"]["usage"]["current_usage"].as_u64(), Some(sum), "{quota}");
}

async fn keep_last_user_false_lets_a_big_last_user_message_go(backend: Backend) {
    let server = Server::start(&backend);
    let key = server.create_key("chat", "pro");
    let input = conversation(true);
    let last = input[5]["content"].as_str().unwrap();

    // Kept whole by default, even past the budget.
    let kept = compress(&server, &key, json!({"messages": input, "target_compression": 0.5})).await;
    assert_eq!(kept["messages"].as_array().unwrap().last().unwrap()["content"], last, "{kept}");
    assert_eq!(indices(&kept).last(), Some(&5));

    let out = compress(
        &server,
        &key,
        json!({"messages": input, "target_compression": 0.5, "keep_last_user": false, "keep_system": true}),
    )
    .await;
    assert!(out["compressed_tokens"].as_u64().unwrap() <= out["budget_tokens"].as_u64().unwrap(), "{out}");
    let messages = out["messages"].as_array().unwrap();
    assert!(messages.iter().all(|m| m["content"] != last), "{out}");
    assert_eq!((indices(&out)[0], &messages[0]["content"]), (0, &input[0]["content"]));

    // keep_system: false lets the system message compete like any other.
    let small = compress(
        &server,
        &key,
        json!({"messages": input, "target_tokens": 40, "keep_last_user": false,
                                                "keep_system": false}),
    )
    .await;
    assert!(small["compressed_tokens"].as_u64().unwrap() <= 40, "{small}");

    // Over 32 KiB of contents: counted and compressed on the blocking pool, same answer shape.
    let big: Vec<Value> = (0..60)
        .map(|i| json!({"role": if i % 2 == 0 { "user" } else { "assistant" }, "content": long(&format!("topic {i}"), 10)}))
        .collect();
    assert!(big.iter().map(|m| m["content"].as_str().unwrap().len()).sum::<usize>() > 40 * 1024);
    let out = compress(&server, &key, json!({"messages": big, "target_compression": 0.8})).await;
    assert!(out["compressed_tokens"].as_u64().unwrap() <= out["budget_tokens"].as_u64().unwrap(), "{out}");
    assert!(indices(&out).contains(&58), "the last user message: {out}");
}

async fn context_or_messages_exactly_one_and_bad_items_are_named(backend: Backend) {
    let server = Server::start(&backend);
    let key = server.create_key("chat", "enterprise");
    let ok = json!({"role": "user", "content": "hello"});
    let cases = [
        (json!({"context": "a", "messages": [ok]}), vec!["context", "messages", "not both"]),
        (json!({"query": "q"}), vec!["context", "messages", "required"]),
        (json!({"context": null, "messages": null}), vec!["context", "messages"]),
        (json!({"messages": []}), vec!["messages", "1 to 10000"]),
        (json!({"messages": [ok, ok, {"role": "user"}]}), vec!["messages[2].content"]),
        (json!({"messages": [ok, ok, ok, {"role": "user", "content": 42}]}), vec!["messages[3].content", "string"]),
        (json!({"messages": [{"content": "x"}]}), vec!["messages[0].role"]),
        (json!({"messages": [ok, {"role": "r".repeat(65), "content": "x"}]}), vec!["messages[1].role", "64"]),
        (json!({"messages": [ok, "hello"]}), vec!["messages[1]"]),
        (json!({"messages": "hello"}), vec!["messages"]),
        (json!({"messages": [ok], "granularity": "word"}), vec!["granularity"]),
    ];
    for (body, words) in cases {
        let resp = client().post(server.url("/compress")).bearer_auth(&key).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 422, "{body}");
        let answer: Value = resp.json().await.unwrap();
        assert_eq!(answer["code"], "invalid_request", "{answer}");
        let detail = answer["detail"].as_str().unwrap();
        assert!(words.iter().all(|w| detail.contains(w)) && detail.len() < 200, "{body}: {detail}");
    }
    let too_many: Vec<Value> = (0..10_001).map(|_| ok.clone()).collect();
    let resp = client().post(server.url("/compress")).bearer_auth(&key).json(&json!({"messages": too_many})).send();
    let detail = resp.await.unwrap().json::<Value>().await.unwrap()["detail"].as_str().unwrap().to_string();
    assert!(detail.contains("10000") && detail.contains("10001"), "{detail}");
    // Nothing of the refused requests was charged or recorded.
    let stats = get_json(server.url("/usage/stats"), &key).await;
    assert_eq!(stats["stats"]["total_compressions"], 0, "{stats}");
}

async fn a_retried_messages_request_gets_the_first_answer_uncharged(backend: Backend) {
    let server = Server::start(&backend);
    let key = server.create_key("chat", "pro");
    let send = |idem: &'static str, body: Value| {
        client().post(server.url("/compress")).bearer_auth(&key).header("Idempotency-Key", idem).json(&body).send()
    };
    let body = json!({"messages": conversation(false), "target_compression": 0.5});
    let first = send("chat-1", body.clone()).await.unwrap();
    assert_eq!(first.status(), 200);
    let id = first.headers()["x-request-id"].to_str().unwrap().to_string();
    let answer: Value = first.json().await.unwrap();
    assert!(answer["messages"].is_array());

    let again = send("chat-1", body.clone()).await.unwrap();
    assert_eq!((again.status().as_u16(), again.headers()["idempotent-replayed"].to_str().ok()), (200, Some("true")));
    assert_eq!(again.headers()["x-request-id"].to_str().unwrap(), id);
    assert_eq!(again.json::<Value>().await.unwrap(), answer);

    // Another conversation, or other keep options, under the same key: refused.
    let mut other = conversation(false);
    other[3]["content"] = json!("And on Sundays?");
    for changed in [
        json!({"messages": other, "target_compression": 0.5}),
        json!({"messages": conversation(false), "target_compression": 0.5, "keep_last_user": false}),
        json!({"messages": conversation(false), "target_compression": 0.5, "keep_system": false}),
        json!({"context": "What happened with the library renovation?", "target_compression": 0.5}),
    ] {
        let resp = send("chat-1", changed).await.unwrap();
        assert_eq!(error_code(resp, 422).await, "idempotency_key_reused");
    }
    let stats = get_json(server.url("/usage/stats"), &key).await;
    assert_eq!(stats["stats"]["total_compressions"].as_u64(), Some(1), "{stats}");
    let quota = get_json(server.url("/usage/quota"), &key).await;
    assert_eq!(quota["quota"]["usage"]["current_usage"], answer["original_tokens"], "{quota}");
}

crate::on_both_backends! {
    messages_in_messages_out_roles_kept_and_charged_like_a_context,
    keep_last_user_false_lets_a_big_last_user_message_go,
    context_or_messages_exactly_one_and_bad_items_are_named,
    a_retried_messages_request_gets_the_first_answer_uncharged,
}
