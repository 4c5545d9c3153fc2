//! Work per request is bounded and large requests do not starve small ones: what a client of
//! the service notices while another client sends it megabytes.

use serde_json::json;

use crate::harness::{Backend, Server, client, error_code, prose};

/// `omnimemory_engine_jobs{lane, state}` as `/metrics` shows it now.
async fn engine_jobs(server: &Server, lane: &str, state: &str) -> f64 {
    let text = client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("omnimemory_engine_jobs{"))
        .filter(|l| l.contains(&format!("lane=\"{lane}\"")) && l.contains(&format!("state=\"{state}\"")))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// `omnimemory_engine_jobs_finished_total{lane}` as `/metrics` shows it now.
async fn engine_jobs_finished(server: &Server, lane: &str) -> f64 {
    let text = client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with("omnimemory_engine_jobs_finished_total{") && l.contains(&format!("lane=\"{lane}\"")))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

#[tokio::test]
async fn small_and_medium_requests_are_answered_while_large_ones_run() {
    let server = Server::start(&Backend::Sqlite);
    let other = server.create_key("other-tenant", "enterprise");

    // Five tenants send a 6 MB compression each, with a long query (seconds per step of the
    // work, even alone): the large lane is full and the others queue.
    let large = prose(6 * 1024 * 1024, 1);
    let query = large[..4000].to_string();
    let mut big = Vec::new();
    for tenant in 0..5 {
        let key = server.create_key(&format!("big-tenant-{tenant}"), "enterprise");
        let (url, context, query) = (server.url("/compress"), large.clone(), query.clone());
        big.push(tokio::spawn(async move {
            let body = json!({"context": context, "query": query, "target_compression": 0.9});
            client().post(url).bearer_auth(key).json(&body).send().await.unwrap().status().as_u16()
        }));
    }
    let mut waited = 0;
    while engine_jobs(&server, "large", "running").await < 1.0 || engine_jobs(&server, "large", "waiting").await < 2.0 {
        waited += 1;
        assert!(waited < 1200, "the large requests never filled the large lane");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    }

    // Another tenant's 40 KB request does not wait for the queued large jobs: while it runs, at
    // most the large jobs already running finish a step (before the lanes, it waited for every
    // queued step ahead of it).
    let (running, finished) =
        (engine_jobs(&server, "large", "running").await, engine_jobs_finished(&server, "large").await);
    let body = json!({"context": prose(40 * 1024, 3), "query": "first words"});
    let resp = client().post(server.url("/compress")).bearer_auth(&other).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let finished_meanwhile = engine_jobs_finished(&server, "large").await - finished;
    assert!(finished_meanwhile <= running, "{finished_meanwhile} large steps finished while it waited");

    // Its other requests, inline (1 KB) and in the standard lane, are answered too, and none of
    // them waited for a large request to finish.
    for (path, body) in [
        ("/compress", json!({"context": prose(1024, 2), "query": "first words"})),
        ("/count-tokens", json!({"text": prose(100 * 1024, 4)})),
        ("/validate", json!({"original": prose(60 * 1024, 5), "compressed": prose(20 * 1024, 5)})),
    ] {
        let started = std::time::Instant::now();
        let resp = client().post(server.url(path)).bearer_auth(&other).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        eprintln!("{path}: {:?} while large requests ran", started.elapsed());
    }
    assert!(big.iter().all(|b| !b.is_finished()), "a large request finished before the small ones were answered");
    assert!(engine_jobs(&server, "large", "waiting").await >= 1.0, "large requests were still queued");
}

#[tokio::test]
async fn a_query_beyond_the_bound_is_refused_naming_the_field() {
    let server = Server::start(&Backend::Sqlite);
    let key = server.create_key("queries", "enterprise");
    let context = prose(8 * 1024, 6);
    let post = |path: &'static str, body: serde_json::Value| {
        client().post(server.url(path)).bearer_auth(&key).json(&body).send()
    };
    // 4096 bytes is within the bound; one more byte is not, on /compress and on /validate.
    let at_bound = "why ".repeat(1024);
    let resp = post("/compress", json!({"context": context, "query": at_bound})).await.unwrap();
    assert_eq!(resp.status(), 200);
    let beyond = format!("{at_bound}?");
    for (path, body) in [
        ("/compress", json!({"context": context, "query": beyond})),
        ("/validate", json!({"original": context, "compressed": context, "query": beyond})),
    ] {
        let resp = post(path, body).await.unwrap();
        assert_eq!(resp.status(), 422, "{path}");
        let body: serde_json::Value = resp.json().await.unwrap();
        assert_eq!(body["code"], "invalid_request");
        let detail = body["detail"].as_str().unwrap();
        assert!(detail.contains("query") && detail.contains("4096") && detail.contains("4097"), "{detail}");
    }
    // The original issue's request: the context repeated as the query is refused at once.
    let resp = post("/compress", json!({"context": context, "query": context})).await.unwrap();
    assert_eq!(error_code(resp, 422).await, "invalid_request");
}

#[tokio::test]
async fn validate_compares_large_extractive_texts_and_refuses_what_it_cannot_bound() {
    let server = Server::start(&Backend::Sqlite);
    let key = server.create_key("validate-large", "enterprise");
    // 300,000 distinct words (about 2.5 MB): once more than 3 GB of memory.
    let words: Vec<String> = (0..300_000).map(|i| format!("w{i}")).collect();
    let original = words.join(" ");
    let kept: String = words.iter().step_by(2).map(String::as_str).collect::<Vec<_>>().join(" ");
    let resp = client()
        .post(server.url("/validate"))
        .bearer_auth(&key)
        .json(&json!({"original": original, "compressed": kept, "metrics": ["rouge-l", "length"]}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 200);
    let v: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(
        (v["details"]["rouge_l_precision"].as_f64(), v["details"]["rouge_l_recall"].as_f64()),
        (Some(1.0), Some(0.5))
    );

    // The same words in reverse order cannot be compared within the bound: 413, saying why.
    let reversed: String = words.iter().rev().map(String::as_str).collect::<Vec<_>>().join(" ");
    let resp = client()
        .post(server.url("/validate"))
        .bearer_auth(&key)
        .json(&json!({"original": original, "compressed": reversed}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 413);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "too_large_to_compare");
    let detail = body["detail"].as_str().unwrap();
    assert!(detail.contains("300000 words") && detail.contains("in-order selection"), "{detail}");
}

#[tokio::test]
async fn a_large_request_its_quota_cannot_cover_is_refused_without_being_counted() {
    let server = Server::start(&Backend::Sqlite);
    let free = server.create_key("free-and-large", "free");
    // About 1.2 million words against a quota of 1,000,000 tokens (the body is well within the
    // 10 MB limit, and the quota is untouched: only the request's size can refuse it).
    let body = json!({"context": prose(8 * 1024 * 1024, 7)});
    let resp = client().post(server.url("/compress")).bearer_auth(&free).json(&body).send().await.unwrap();
    assert!(resp.headers().contains_key("x-ratelimit-limit"));
    let code = error_code(resp, 402).await;
    assert_eq!(code, "quota_exceeded");
    // No job ran in the large lane, neither a parse of its body nor a count: the refusal came
    // from a byte scan of the body as it arrived.
    assert_eq!(engine_jobs_finished(&server, "large").await, 0.0);
    // The key is not charged for it and still compresses what it can pay for.
    let ok = client()
        .post(server.url("/compress"))
        .bearer_auth(&free)
        .json(&json!({"context": prose(2 * 1024, 8)}))
        .send()
        .await
        .unwrap();
    assert_eq!(ok.status(), 200);
}
