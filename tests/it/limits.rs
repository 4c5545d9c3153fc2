//! Rate limits, quotas and usage on the request path.
//!
//! Tests that move time run the real router in-process on a loopback port with a fake clock;
//! the others drive the real binary.

use std::sync::Arc;
use std::time::Duration;

use serde_json::json;

use crate::harness::{Backend, InProcess, Server, client, count_tokens, created_key, error_code, get_json};

async fn a_free_keys_second_request_waits_one_second(backend: Backend) {
    let app = InProcess::start(&backend, "2026-11-27T10:00:00Z", "").await;
    let key = app.key("free-user", "free", &[]).await;

    let first = app.compress(&key, "The quick brown fox jumps over the lazy dog.").await;
    assert_eq!(first.status(), 200);
    assert_eq!(first.headers()["x-ratelimit-limit"], "1");
    assert_eq!(first.headers()["x-ratelimit-remaining"], "0");
    assert!(first.headers()["ratelimit-policy"].to_str().unwrap().contains("\"requests\";q=1;w=1"));

    let second = app.compress(&key, "The quick brown fox jumps over the lazy dog.").await;
    assert_eq!(second.headers()["retry-after"], "1");
    assert_eq!(second.headers()["x-ratelimit-remaining"], "0");
    assert!(second.headers().contains_key("ratelimit"));
    let body: serde_json::Value = second.json().await.unwrap();
    assert_eq!(body["code"], "request_rate_limited");
    assert_eq!(body["detail"], "Request rate limit exceeded for tier 'free'");

    app.clock.advance(jiff::SignedDuration::from_millis(999));
    assert_eq!(app.compress(&key, "still too early").await.status(), 429);
    app.clock.advance(jiff::SignedDuration::from_millis(1));
    assert_eq!(app.compress(&key, "now it is time").await.status(), 200);
}

async fn twelve_rapid_requests_on_a_pro_key_admit_exactly_ten(backend: Backend) {
    let app = InProcess::start(&backend, "2026-11-27T10:00:00Z", "").await;
    let key = app.key("pro-user", "pro", &[]).await;
    let mut tasks = Vec::new();
    for _ in 0..12 {
        let (url, key) = (format!("{}/compress", app.base), key.clone());
        tasks.push(tokio::spawn(async move {
            let body = json!({"context": "Some short text to compress."});
            client().post(url).bearer_auth(key).json(&body).send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count(), 10, "{statuses:?}");
    assert_eq!(statuses.iter().filter(|&&s| s == 429).count(), 2, "{statuses:?}");
}

async fn the_quota_is_402_until_the_month_turns(backend: Backend) {
    let app = InProcess::start(&backend, "2026-11-30T23:59:00Z", "").await;
    let text = "Monthly quotas are counted in original tokens of each request.";
    // Enterprise: no token rate, so only the monthly ledger stands in the way.
    let key = app.key("quota-user", "enterprise", &["--monthly-tokens", "30"]).await;

    let (mut spent, mut each) = (0, 0);
    loop {
        let resp = app.compress(&key, text).await;
        if resp.status() != 200 {
            assert_eq!(resp.headers()["x-quota-reset"], "2026-12-01T00:00:00Z");
            let detail = resp.json::<serde_json::Value>().await.unwrap();
            assert_eq!(detail["code"], "quota_exceeded", "{detail}");
            assert!(detail["detail"].as_str().unwrap().contains("2026-12-01T00:00:00Z"), "{detail}");
            // What the request needed against what is left, not only what was used.
            let expected = format!("this request needs {each} tokens and {} of this month's 30 are left", 30 - spent);
            assert!(detail["detail"].as_str().unwrap().contains(&expected), "{detail} lacks {expected:?}");
            break;
        }
        each = resp.json::<serde_json::Value>().await.unwrap()["original_tokens"].as_u64().unwrap();
        spent += each;
        app.clock.advance(jiff::SignedDuration::from_secs(1));
    }
    assert!(spent <= 30 && spent > 0);
    let quota: serde_json::Value = get_json(format!("{}/usage/quota", app.base), &key).await;
    assert_eq!(quota["quota"]["usage"]["current_usage"].as_u64(), Some(spent), "{quota}");
    assert_eq!(quota["quota"]["usage"]["monthly_limit"], 30);

    app.clock.set("2026-12-01T00:00:01Z".parse().unwrap());
    assert_eq!(app.compress(&key, text).await.status(), 200);
    // Stopped as `serve` stops: the writer drains and storage closes.
    app.stop().await;
}

async fn usage_stats_honour_the_days_asked_for(backend: Backend) {
    let app = InProcess::start(&backend, "2026-11-10T12:00:00Z", "").await;
    let key = app.key("days", "enterprise", &[]).await;
    assert_eq!(app.compress(&key, "An old request, ten days before the question.").await.status(), 200);
    app.clock.advance(jiff::SignedDuration::from_hours(24 * 10));
    assert_eq!(app.compress(&key, "A recent request, on the day of the question.").await.status(), 200);
    let stats = |days: u32| {
        let url = format!("{}/usage/stats?days={days}", app.base);
        let key = key.clone();
        async move { client().get(url).bearer_auth(key).send().await.unwrap().json::<serde_json::Value>().await.unwrap() }
    };
    assert_eq!(stats(7).await["stats"]["total_compressions"], 1);
    assert_eq!(stats(30).await["stats"]["total_compressions"], 2);

    // The CLI counts back from the same clock.
    let cli = |days: &'static str| {
        let args = ["usage-stats", key.as_str(), "--days", days].map(String::from);
        let app = &app;
        async move {
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            app.admin(&args).await["stats"]["total_compressions"].clone()
        }
    };
    assert_eq!((cli("7").await, cli("30").await), (serde_json::json!(1), serde_json::json!(2)));
}

async fn anonymous_access_is_off_unless_turned_on_and_then_has_its_own_limits(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("data");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("config.toml"), "[anonymous]\nrequests_per_second = 0.01\nburst = 2\n").unwrap();
    let c = client();
    let send = |server: &Server, key: Option<String>| {
        let mut req = c.post(server.url("/compress")).json(&json!({"context": TEXT}));
        if let Some(key) = key {
            req = req.bearer_auth(key);
        }
        req.send()
    };

    let off = Server::builder(&backend).home(&home).env("OMNIMEMORY_ANONYMOUS", "off").start();
    assert_eq!(error_code(send(&off, None).await.unwrap(), 401).await, "missing_api_key");
    drop(off);

    let on = Server::builder(&backend).home(&home).start();
    for _ in 0..2 {
        assert_eq!(send(&on, None).await.unwrap().status(), 200);
    }
    assert_eq!(error_code(send(&on, None).await.unwrap(), 429).await, "request_rate_limited");
    let key = on.create_key("keyed", "pro");
    assert_eq!(send(&on, Some(key)).await.unwrap().status(), 200, "keys keep their own limits");
    let stats: serde_json::Value = c.get(on.url("/usage/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["stats"]["total_compressions"], 2, "{stats}");
}

async fn unlimited_values_are_null_with_unlimited_true(backend: Backend) {
    let app = InProcess::start(&backend, "2026-11-27T10:00:00Z", "").await;
    let key = app.key("ent", "enterprise", &[]).await;
    let quota: serde_json::Value = get_json(format!("{}/usage/quota", app.base), &key).await;
    let rate = &quota["quota"]["rate_limit"];
    assert_eq!((rate["tokens_available"].is_null(), rate["unlimited"].as_bool()), (true, Some(true)), "{quota}");
    assert_eq!(quota["quota"]["usage"]["monthly_limit"], 1_000_000_000);
    assert_eq!(quota["tier"], "enterprise");

    let free = app.key("f", "free", &[]).await;
    let quota: serde_json::Value = get_json(format!("{}/usage/quota", app.base), &free).await;
    assert_eq!(quota["quota"]["rate_limit"]["tokens_capacity"], 1_000_000);
    assert_eq!(quota["quota"]["rate_limit"]["refill_rate"], 0.39);
    assert_eq!(quota["quota"]["usage"]["remaining"], 1_000_000);
}

/// A short context for the tests that count requests rather than text.
const TEXT: &str = "Quota reservations are atomic under concurrency.";

async fn two_hundred_concurrent_requests_on_a_quota_for_n_admit_exactly_n(backend: Backend) {
    let server = Server::start(&backend);
    let probe = server.create_key("probe", "pro");
    let per_request = count_tokens(&server, &probe, TEXT, "gpt-4").await;
    let n = 37;
    let limit = (per_request * n).to_string();
    let key = server.create_key_with(
        "racer",
        "enterprise",
        &["--monthly-tokens", &limit, "--requests-per-second", "100000", "--burst", "100000"],
    );

    let c = client();
    let mut tasks = Vec::new();
    for _ in 0..200 {
        let (c, url, key) = (c.clone(), server.url("/compress"), key.clone());
        tasks.push(tokio::spawn(async move {
            c.post(url).bearer_auth(key).json(&json!({"context": TEXT})).send().await.unwrap().status().as_u16()
        }));
    }
    let mut statuses = Vec::new();
    for t in tasks {
        statuses.push(t.await.unwrap());
    }
    assert_eq!(statuses.iter().filter(|&&s| s == 200).count() as u64, n, "{statuses:?}");
    assert!(statuses.iter().all(|&s| s == 200 || s == 402), "{statuses:?}");

    let quota: serde_json::Value = get_json(server.url("/usage/quota"), &key).await;
    assert_eq!(quota["quota"]["usage"]["current_usage"].as_u64(), Some(per_request * n), "{quota}");
    let stats: serde_json::Value = get_json(server.url("/usage/stats"), &key).await;
    assert_eq!(stats["stats"]["total_compressions"].as_u64(), Some(n));
    assert_eq!(stats["stats"]["total_original_tokens"].as_u64(), Some(per_request * n));
}

async fn a_key_reads_nothing_of_another_keys_usage(backend: Backend) {
    let server = Server::start(&backend);
    let a = server.create_key("alice", "pro");
    let b = server.create_key("bob", "pro");
    let c = client();
    let resp = c.post(server.url("/compress")).bearer_auth(&b).json(&json!({"context": TEXT})).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let b_id = &b[..15];
    for query in [
        String::new(),
        format!("?api_key={b}"),
        format!("?key_id={b_id}&user_id=bob"),
        "?user_id=bob&days=30".to_string(),
        format!("?group_by=team&api_key={b}"),
    ] {
        let stats: serde_json::Value = get_json(server.url(&format!("/usage/stats{query}")), &a).await;
        assert_eq!(stats["stats"]["total_compressions"], 0, "{query}: {stats}");
        let quota: serde_json::Value = get_json(server.url(&format!("/usage/quota{query}")), &a).await;
        assert_eq!(
            (quota["user_id"].as_str(), quota["quota"]["usage"]["current_usage"].as_u64()),
            (Some("alice"), Some(0))
        );
    }
}

async fn usage_is_tagged_for_cost_allocation_and_headers_win_over_the_body(backend: Backend) {
    let server = Server::start(&backend);
    let key = server.create_key("tagger", "pro");
    let c = client();
    for (team, n) in [("search", 2), ("chat", 1)] {
        for _ in 0..n {
            let resp = c
                .post(server.url("/compress"))
                .bearer_auth(&key)
                .header("X-Tool-ID", "from-header")
                .json(&json!({"context": TEXT, "tool_id": "from-body", "session_id": "s1",
                              "metadata": {"team": team}, "prefer_online": null, "memory_layer": null}))
                .send()
                .await
                .unwrap();
            assert_eq!(resp.status(), 200);
        }
    }
    let stats: serde_json::Value = get_json(server.url("/usage/stats?days=1&group_by=team"), &key).await;
    let groups = stats["groups"].as_array().unwrap();
    let count = |v: &str| groups.iter().find(|g| g["value"] == v).map(|g| g["count"].as_u64().unwrap());
    assert_eq!((count("search"), count("chat")), (Some(2), Some(1)), "{stats}");

    let mut db = server.db("usage_records").await;
    let tools: Vec<(String, String)> =
        sqlx::query_as("SELECT tool_id, session_id FROM usage_records").fetch_all(&mut db).await.unwrap();
    assert_eq!(tools.len(), 3);
    assert!(tools.iter().all(|(t, s)| t == "from-header" && s == "s1"), "{tools:?}");

    let cli_stats = server.cli(&["admin", "usage-stats", &key, "--days", "1", "--group-by", "team", "--json"], None);
    let cli_stats: serde_json::Value = serde_json::from_str(&cli_stats.stdout).unwrap();
    assert_eq!(cli_stats["stats"]["total_compressions"], 3);
    assert_eq!(cli_stats["groups"].as_array().unwrap().len(), 2);
}

async fn restarting_the_server_is_no_way_around_a_limit(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("data");
    std::fs::create_dir_all(&home).unwrap();
    std::fs::write(home.join("config.toml"), "[tiers.free]\nrequests_per_second = 0.01\nburst = 2\n").unwrap();
    let mut server = Server::builder(&backend).home(&home).start();
    let env = crate::harness::TestEnv::at(&home, backend.clone());
    let key = server.create_key("slow", "free");
    let c = client();
    for _ in 0..2 {
        let r = c.post(server.url("/count-tokens")).bearer_auth(&key).json(&json!({"text": "x"})).send().await;
        assert_eq!(r.unwrap().status(), 200);
    }
    server.signal("TERM");
    let info = env.cli(&["admin", "rate-limit-info", &key, "--json"], None);
    let info: serde_json::Value = serde_json::from_str(&info.stdout).unwrap();
    assert_eq!((info["saved_state"].as_bool(), info["requests_available"].as_u64()), (Some(true), Some(0)), "{info}");

    let server = Server::builder(&backend).home(&home).start();
    let r = c.post(server.url("/count-tokens")).bearer_auth(&key).json(&json!({"text": "x"})).send().await.unwrap();
    assert!(r.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(error_code(r, 429).await, "request_rate_limited");
}

async fn admin_reset_usage_frees_the_quota_of_a_running_server(backend: Backend) {
    // The last minute of a month: the reset and the server agree on which month it is because
    // both read the same clock.
    let app = InProcess::start(&backend, "2026-11-30T23:59:00Z", "").await;
    // TEXT is 8 cl100k tokens: a quota of 12 covers one request and not two.
    let key = app.key("resetme", "enterprise", &["--monthly-tokens", "12"]).await;
    let c = client();
    let send = || c.post(app.url("/compress")).bearer_auth(&key).json(&json!({"context": TEXT})).send();
    assert_eq!(send().await.unwrap().status(), 200);
    assert_eq!(error_code(send().await.unwrap(), 402).await, "quota_exceeded");

    let verify = app.admin(&["verify-key", &key]).await;
    assert!(verify["usage"]["current_usage"].as_u64().unwrap() > 0, "{verify}");

    let reset = app.admin(&["reset-usage", "--key", &key, "--yes"]).await;
    assert_eq!((reset["reset"].as_bool(), reset["period"].as_str()), (Some(true), Some("2026-11")), "{reset}");
    let deadline = std::time::Instant::now() + Duration::from_secs(3);
    loop {
        let status = send().await.unwrap().status();
        if status == 200 {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "quota still refused after the reset");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    app.stop().await;
}

async fn after_a_crash_every_acknowledged_request_has_its_record(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("data");
    let mut server = Server::builder(&backend).home(&home).start();
    let env = crate::harness::TestEnv::at(&home, backend.clone());
    let key = created_key(&env.cli(
        &[
            "admin",
            "create-key",
            "--user-id",
            "crash",
            "--tier",
            "enterprise",
            "--requests-per-second",
            "100000",
            "--burst",
            "100000",
            "--json",
        ],
        None,
    ));

    let acked = Arc::new(std::sync::Mutex::new(Vec::<String>::new()));
    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let mut workers = Vec::new();
    for _ in 0..8 {
        let (c, url, key, acked, stop) = (client(), server.url("/compress"), key.clone(), acked.clone(), stop.clone());
        workers.push(tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                let Ok(resp) = c.post(&url).bearer_auth(&key).json(&json!({"context": TEXT})).send().await else {
                    break;
                };
                if resp.status() == 200 {
                    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
                    acked.lock().unwrap().push(id);
                }
            }
        }));
    }
    while acked.lock().unwrap().len() < 100 {
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    server.signal("KILL");
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }
    let acked = acked.lock().unwrap().clone();

    let restarted = Server::builder(&backend).home(&home).start();
    let mut db = restarted.db("usage_records").await;
    let ids: Vec<(String,)> = sqlx::query_as("SELECT request_id FROM usage_records").fetch_all(&mut db).await.unwrap();
    let ids: std::collections::HashSet<String> = ids.into_iter().map(|(id,)| id).collect();
    let missing = acked.iter().filter(|id| !ids.contains(*id)).count();
    assert_eq!(missing, 0, "{missing} of {} acknowledged requests have no record", acked.len());
    let (sum,): (i64,) = sqlx::query_as("SELECT CAST(SUM(original_tokens) AS BIGINT) FROM usage_records")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let (used,): (i64,) =
        sqlx::query_as("SELECT CAST(SUM(used) AS BIGINT) FROM quota_ledger").fetch_one(&mut db).await.unwrap();
    assert_eq!(used, sum);
    let quota: serde_json::Value = get_json(restarted.url("/usage/quota"), &key).await;
    assert_eq!(quota["quota"]["usage"]["current_usage"].as_i64(), Some(sum), "{quota}");
}

/// Two instances whose clocks disagree share one Redis bucket: the one behind must not move the
/// bucket's time backwards, which would refill it a second time for the same interval.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(omnimemory_test_postgres, omnimemory_test_redis)),
    ignore = "needs OMNIMEMORY_TEST_DATABASE_URL and OMNIMEMORY_TEST_REDIS_URL"
)]
async fn a_clock_behind_never_refills_a_shared_redis_bucket_twice() {
    let backend = Backend::shared().await;
    let ahead = InProcess::start(&backend, "2026-11-27T10:00:10Z", "").await;
    let behind = InProcess::start(&backend, "2026-11-27T10:00:00Z", "").await;
    let key = ahead.key("two-clocks", "pro", &["--requests-per-second", "1", "--burst", "2"]).await;
    assert_eq!(ahead.compress(&key, "first of a burst of two").await.status(), 200);
    assert_eq!(behind.compress(&key, "second of a burst of two").await.status(), 200);
    // No time passed on either clock: the bucket is empty for both.
    assert_eq!(ahead.compress(&key, "one too many").await.status(), 429);
    assert_eq!(behind.compress(&key, "one too many").await.status(), 429);
}

crate::on_both_backends! {
    anonymous_access_is_off_unless_turned_on_and_then_has_its_own_limits,
    usage_stats_honour_the_days_asked_for,
    a_free_keys_second_request_waits_one_second,
    twelve_rapid_requests_on_a_pro_key_admit_exactly_ten,
    the_quota_is_402_until_the_month_turns,
    unlimited_values_are_null_with_unlimited_true,
    two_hundred_concurrent_requests_on_a_quota_for_n_admit_exactly_n,
    a_key_reads_nothing_of_another_keys_usage,
    usage_is_tagged_for_cost_allocation_and_headers_win_over_the_body,
    restarting_the_server_is_no_way_around_a_limit,
    admin_reset_usage_frees_the_quota_of_a_running_server,
    after_a_crash_every_acknowledged_request_has_its_record,
}
