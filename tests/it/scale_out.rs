//! Several instances on PostgreSQL + Redis: shared limits, the Redis failure modes.
//! These run when both `OMNIMEMORY_TEST_DATABASE_URL` and `OMNIMEMORY_TEST_REDIS_URL` are set,
//! and are reported as ignored otherwise.

use std::collections::HashSet;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Backend, Server, UNCONFIGURED, client, error_code};

const TEXT: &str = "Quota reservations are atomic under concurrency.";

/// A redis-server of the test's own, so stopping it disturbs no other test.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    /// Whether `redis-server` can be started here. When it cannot, a test that needs it prints
    /// `SKIP:` and returns, unless `OMNIMEMORY_TEST_REDIS_URL` is set (CI), where that is a failure.
    fn available(test: &str) -> bool {
        if Command::new("redis-server").arg("--version").stdout(Stdio::null()).status().is_ok() {
            return true;
        }
        assert!(
            std::env::var("OMNIMEMORY_TEST_REDIS_URL").is_err(),
            "{test}: redis-server is not on PATH, but OMNIMEMORY_TEST_REDIS_URL is set"
        );
        println!("SKIP: {test}: redis-server is not on PATH");
        false
    }

    fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut redis = PrivateRedis { port, child: None };
        redis.restart();
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    fn restart(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string(), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server on PATH (.ci/run installs it)");
        self.child = Some(child);
        let deadline = Instant::now() + Duration::from_secs(10);
        while std::net::TcpStream::connect(("127.0.0.1", self.port)).is_err() {
            assert!(Instant::now() < deadline, "redis-server did not start");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// FLUSHALL: every key of every prefix gone at once, as after a restart without persistence.
    fn flush(&self) {
        use std::io::{Read, Write};
        let Ok(mut conn) = std::net::TcpStream::connect(("127.0.0.1", self.port)) else { return };
        let _ = conn.write_all(b"*1\r\n$8\r\nFLUSHALL\r\n");
        let _ = conn.read(&mut [0u8; 16]);
    }

    fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

fn with_private_redis(backend: Backend, redis: &PrivateRedis) -> Backend {
    match backend {
        Backend::Postgres { url, redis: Some((_, prefix)) } => {
            Backend::Postgres { url, redis: Some((redis.url(), prefix)) }
        }
        other => other,
    }
}

async fn status_and_code(resp: reqwest::Response) -> (u16, String) {
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap();
    (status, body["code"].as_str().unwrap_or("").to_string())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(omnimemory_test_postgres, omnimemory_test_redis)),
    ignore = "needs OMNIMEMORY_TEST_DATABASE_URL and OMNIMEMORY_TEST_REDIS_URL"
)]
async fn while_redis_is_down_the_quota_fails_closed_and_rates_fail_open() {
    let shared = Backend::shared().await;
    let mut redis = PrivateRedis::start();
    let backend = with_private_redis(shared, &redis);
    let server = Server::start(&backend);
    let key = server.create_key("outage", "pro");
    let c = client();
    let compress = || c.post(server.url("/compress")).bearer_auth(&key).json(&json!({"context": TEXT})).send();
    let count = || c.post(server.url("/count-tokens")).bearer_auth(&key).json(&json!({"text": TEXT})).send();

    assert_eq!(compress().await.unwrap().status(), 200);
    let health: serde_json::Value = c.get(server.url("/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["limits"], "redis ok", "{health}");

    redis.stop();
    assert_eq!(status_and_code(compress().await.unwrap()).await, (503, "limiter_unavailable".to_string()));
    // The client is told what is down, not the driver's words.
    let body: serde_json::Value = compress().await.unwrap().json().await.unwrap();
    let detail = body["detail"].as_str().unwrap().to_lowercase();
    assert!(!detail.contains("refused") && !detail.contains("os error") && !detail.contains("127.0.0.1"), "{body}");
    assert_eq!(count().await.unwrap().status(), 200, "rate limits fail open");
    let health = c.get(server.url("/health")).send().await.unwrap();
    assert_eq!(error_code(health, 503).await, "limiter_unavailable");

    redis.restart();
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        if compress().await.unwrap().status() == 200 {
            break;
        }
        assert!(Instant::now() < deadline, "no recovery after Redis came back");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    assert_eq!(c.get(server.url("/health")).send().await.unwrap().status(), 200);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(omnimemory_test_postgres, omnimemory_test_redis)),
    ignore = "needs OMNIMEMORY_TEST_DATABASE_URL and OMNIMEMORY_TEST_REDIS_URL"
)]
async fn an_operator_may_let_the_quota_fail_open() {
    let shared = Backend::shared().await;
    let mut redis = PrivateRedis::start();
    let backend = with_private_redis(shared, &redis);
    let server = Server::builder(&backend)
        .env("OMNIMEMORY_ADMIN_KEY", crate::harness::ADMIN_KEY)
        .env("OMNIMEMORY_REDIS_QUOTA_FAILURE", "open")
        .start();
    let key = server.create_key("lenient", "pro");
    redis.stop();
    let c = client();
    let resp = c.post(server.url("/compress")).bearer_auth(&key).json(&json!({"context": TEXT})).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let health: serde_json::Value = c.get(server.url("/health")).send().await.unwrap().json().await.unwrap();
    assert_eq!(health["status"], "degraded", "{health}");
}

/// Sends `total` requests over `workers` tasks, alternating between the servers; returns the
/// request ids of the 200s and the other statuses.
async fn drive(servers: &[&Server], key: &str, workers: usize, total: usize) -> (Vec<String>, Vec<u16>) {
    let urls: Vec<String> = servers.iter().map(|s| s.url("/compress")).collect();
    let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let mut tasks = Vec::new();
    for _ in 0..workers {
        let (c, urls, key, next) = (client(), urls.clone(), key.to_string(), next.clone());
        tasks.push(tokio::spawn(async move {
            let (mut ok, mut other) = (Vec::new(), Vec::new());
            loop {
                let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                if i >= total {
                    return (ok, other);
                }
                let resp = c.post(&urls[i % urls.len()]).bearer_auth(&key).json(&json!({"context": TEXT})).send();
                let resp = resp.await.unwrap();
                match resp.status().as_u16() {
                    200 => ok.push(resp.headers()["x-request-id"].to_str().unwrap().to_string()),
                    s => other.push(s),
                }
            }
        }));
    }
    let (mut ok, mut other) = (Vec::new(), Vec::new());
    for t in tasks {
        let (o, x) = t.await.unwrap();
        ok.extend(o);
        other.extend(x);
    }
    (ok, other)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(omnimemory_test_postgres, omnimemory_test_redis)),
    ignore = "needs OMNIMEMORY_TEST_DATABASE_URL and OMNIMEMORY_TEST_REDIS_URL"
)]
async fn two_instances_share_one_keys_rate() {
    let backend = Backend::shared().await;
    let a = Server::start(&backend);
    let b = Server::start(&backend);
    let key = a.create_key_with("twin", "pro", &["--requests-per-second", "20", "--burst", "5"]);

    let started = Instant::now();
    let mut admitted = 0;
    while started.elapsed() < Duration::from_secs(2) {
        let (ok, other) = drive(&[&a, &b], &key, 8, 40).await;
        assert!(other.iter().all(|&s| s == 429), "{other:?}");
        admitted += ok.len();
    }
    let elapsed = started.elapsed().as_secs_f64();
    let bound = 20.0 * elapsed + 5.0 + 1.0;
    assert!((admitted as f64) <= bound, "{admitted} admitted in {elapsed:.2} s, bound {bound:.1}");
    assert!((admitted as f64) >= 20.0 * elapsed * 0.5, "{admitted} admitted in {elapsed:.2} s: limiter too strict");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(omnimemory_test_postgres, omnimemory_test_redis)),
    ignore = "needs OMNIMEMORY_TEST_DATABASE_URL and OMNIMEMORY_TEST_REDIS_URL"
)]
async fn two_instances_never_pass_the_quota_and_record_each_request_once() {
    let backend = Backend::shared().await;
    let a = Server::start(&backend);
    let b = Server::start(&backend);
    let n = 50;
    let limit = (8 * n).to_string(); // TEXT is 8 cl100k tokens
    let key = a.create_key_with(
        "quota-twin",
        "enterprise",
        &["--monthly-tokens", &limit, "--requests-per-second", "100000", "--burst", "100000"],
    );

    let (ok, other) = drive(&[&a, &b], &key, 16, 200).await;
    assert_eq!(ok.len(), n, "admitted; others: {other:?}");
    assert!(other.iter().all(|&s| s == 402), "{other:?}");

    let mut db = a.db("usage_records").await;
    let ids: Vec<(String,)> = sqlx::query_as("SELECT request_id FROM usage_records").fetch_all(&mut db).await.unwrap();
    let recorded: Vec<String> = ids.into_iter().map(|(id,)| id).collect();
    assert_eq!(recorded.len(), n, "one record per acknowledged request");
    assert_eq!(recorded.iter().collect::<HashSet<_>>(), ok.iter().collect::<HashSet<_>>());
    let (used,): (i64,) =
        sqlx::query_as("SELECT CAST(SUM(used) AS BIGINT) FROM quota_ledger").fetch_one(&mut db).await.unwrap();
    assert_eq!(used, 8 * n as i64);
}

/// One run of `a_redis_that_loses_its_state_under_load_lets_no_key_past_its_quota_or_rate`.
/// `instances` servers share the storage and the Redis (several need PostgreSQL).
async fn redis_state_lost_under_load(backend: Backend, instances: usize) {
    let mut redis = PrivateRedis::start();
    let servers: Vec<Server> = (0..instances)
        .map(|_| {
            Server::builder(&backend)
                .env("OMNIMEMORY_ADMIN_KEY", crate::harness::ADMIN_KEY)
                .env("OMNIMEMORY_REDIS_URL", &redis.url())
                .env("OMNIMEMORY_REDIS_PREFIX", "lost")
                // While Redis restarts, refuse rather than admit unlimited: the rate bound holds too.
                .env("OMNIMEMORY_REDIS_RATE_FAILURE", "closed")
                .start()
        })
        .collect();
    let server = &servers[0];
    // Three keys whose quotas run out at different moments of the run (TEXT is 8 tokens), and
    // one bound by its request rate.
    let quotas = [("q40", 40u64), ("q120", 120), ("q300", 300)];
    let mut keys: Vec<(String, String)> = Vec::new();
    for (user, n) in quotas {
        let limit = (8 * n).to_string();
        let flags = ["--monthly-tokens", &limit, "--requests-per-second", "100000", "--burst", "100000"];
        keys.push((user.to_string(), server.create_key_with(user, "enterprise", &flags)));
    }
    let (rps, burst) = (20.0, 5.0);
    let rated = server.create_key_with("rated", "pro", &["--requests-per-second", "20", "--burst", "5"]);

    let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let started = Instant::now();
    let mut workers = Vec::new();
    for w in 0..8usize {
        let (c, stop, keys, rated) = (client(), stop.clone(), keys.clone(), rated.clone());
        // Each worker sends to one instance; with two, half the load goes to each.
        let to = &servers[w % servers.len()];
        let (compress, count) = (to.url("/compress"), to.url("/count-tokens"));
        workers.push(tokio::spawn(async move {
            // (user, status, code) of every answer.
            let mut seen: Vec<(String, u16, String)> = Vec::new();
            let mut i = w;
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                i += 1;
                let (user, resp) = match i % 4 {
                    3 => ("rated".to_string(), c.post(&count).bearer_auth(&rated).json(&json!({"text": TEXT})).send()),
                    k => {
                        let (user, key) = &keys[k];
                        (user.clone(), c.post(&compress).bearer_auth(key).json(&json!({"context": TEXT})).send())
                    }
                };
                let resp = resp.await.unwrap();
                let status = resp.status().as_u16();
                let body: serde_json::Value = resp.json().await.unwrap();
                seen.push((user, status, body["code"].as_str().unwrap_or("").to_string()));
            }
            seen
        }));
    }
    // The state goes, again and again, while requests run: flushes every few milliseconds (so
    // some land while a key's last requests are in flight), a restart, flushes again.
    for round in 0..400 {
        tokio::time::sleep(Duration::from_millis(5)).await;
        if round == 200 {
            redis.stop();
            tokio::time::sleep(Duration::from_millis(300)).await;
            redis.restart();
        } else {
            redis.flush();
        }
    }
    tokio::time::sleep(Duration::from_millis(300)).await;
    stop.store(true, std::sync::atomic::Ordering::Relaxed);
    let mut seen = Vec::new();
    for w in workers {
        seen.extend(w.await.unwrap());
    }
    let elapsed = started.elapsed().as_secs_f64();

    for (user, status, code) in &seen {
        // Just after a loss every request bucket refills from empty, so any key may see a 429.
        let expected = match (user.as_str(), status) {
            (_, 200) => "",
            (_, 429) => "request_rate_limited",
            ("rated", _) => "limiter_unavailable",
            (_, 402) => "quota_exceeded",
            (_, _) => "limiter_unavailable",
        };
        assert_eq!((code.as_str(), [200, 402, 429, 503].contains(status)), (expected, true), "{user}: {status}");
    }
    let ok = |who: &str| seen.iter().filter(|(u, s, _)| u == who && *s == 200).count();
    let admitted = ok("rated") as f64;
    let bound = burst + rps * elapsed + 1.0;
    assert!(admitted <= bound, "rated: {admitted} admitted in {elapsed:.2} s, bound {bound:.1}");

    let mut db = server.db("usage_records").await;
    for (user, n) in quotas {
        let served = ok(user) as u64;
        let (records, tokens): (i64, i64) = sqlx::query_as(
            "SELECT COUNT(*), CAST(COALESCE(SUM(original_tokens), 0) AS BIGINT) FROM usage_records WHERE user_id = $1",
        )
        .bind(user)
        .fetch_one(&mut db)
        .await
        .unwrap();
        assert_eq!(records as u64, served, "{user}: one record per answer served");
        assert!(tokens as u64 <= 8 * n, "{user}: {tokens} tokens recorded, quota {}", 8 * n);
        assert!(served > 0, "{user}: nothing served");
    }
    let (recorded,): (i64,) =
        sqlx::query_as("SELECT CAST(COALESCE(SUM(original_tokens), 0) AS BIGINT) FROM usage_records")
            .fetch_one(&mut db)
            .await
            .unwrap();
    let (used,): (i64,) = sqlx::query_as("SELECT CAST(COALESCE(SUM(used), 0) AS BIGINT) FROM quota_ledger")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(used, recorded, "the ledger equals the records");

    // Once Redis holds still, the rate-bound key is served again, by every instance.
    for server in &servers {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let count = client().post(server.url("/count-tokens")).bearer_auth(&rated).json(&json!({"text": TEXT}));
            if count.send().await.unwrap().status() == 200 {
                break;
            }
            assert!(Instant::now() < deadline, "no recovery after Redis came back");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_redis_that_loses_its_state_under_load_lets_no_key_past_its_quota_or_rate() {
    let test = "a_redis_that_loses_its_state_under_load_lets_no_key_past_its_quota_or_rate";
    if !PrivateRedis::available(test) {
        return;
    }
    // SQLite with one instance.
    redis_state_lost_under_load(Backend::Sqlite, 1).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(omnimemory_test_postgres), ignore = "needs OMNIMEMORY_TEST_DATABASE_URL")]
async fn a_redis_that_loses_its_state_under_load_on_two_postgres_instances_lets_no_key_past_its_limits() {
    let test = "a_redis_that_loses_its_state_under_load_on_two_postgres_instances_lets_no_key_past_its_limits";
    if !PrivateRedis::available(test) {
        return;
    }
    // Two instances, each noticing the losses by itself.
    redis_state_lost_under_load(Backend::postgres().await.expect(UNCONFIGURED), 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(
    not(all(omnimemory_test_postgres, omnimemory_test_redis)),
    ignore = "needs OMNIMEMORY_TEST_DATABASE_URL and OMNIMEMORY_TEST_REDIS_URL"
)]
async fn two_instances_given_one_idempotency_key_at_the_same_instant_charge_it_once() {
    let backend = Backend::shared().await;
    let a = Server::start(&backend);
    let b = Server::start(&backend);
    let key = a.create_key("twin-retry", "enterprise");
    // About 50 KB, so that each run lasts long enough for the other instance to start its own.
    let context: String = (0..1100).map(|n| format!("Sentence {n} of a request sent twice at once. ")).collect();
    let body = json!({"context": context, "target_compression": 0.8});
    let rounds = 3;
    for round in 0..rounds {
        let idem = format!("same-instant-{round}");
        let sends: Vec<_> = (0..8)
            .map(|i| {
                let server = if i % 2 == 0 { &a } else { &b };
                let req = client().post(server.url("/compress")).bearer_auth(&key).header("Idempotency-Key", &idem);
                let send = req.json(&body).send();
                async move {
                    let resp = send.await.unwrap();
                    let id = resp.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_string());
                    (resp.status().as_u16(), id)
                }
            })
            .collect();
        let mut ids = HashSet::new();
        for handle in sends.into_iter().map(tokio::spawn).collect::<Vec<_>>() {
            match handle.await.unwrap() {
                (200, Some(id)) => {
                    ids.insert(id);
                }
                (409, _) => {}
                other => panic!("round {round}: {other:?}"),
            }
        }
        assert_eq!(ids.len(), 1, "round {round}: every 200 is the one answer, got request ids {ids:?}");
    }
    let mut db = a.db("usage_records").await;
    let (records, tokens): (i64, i64) =
        sqlx::query_as("SELECT COUNT(*), CAST(COALESCE(SUM(original_tokens), 0) AS BIGINT) FROM usage_records")
            .fetch_one(&mut db)
            .await
            .unwrap();
    assert_eq!(records, rounds, "one record per Idempotency-Key");
    let (used,): (i64,) =
        sqlx::query_as("SELECT CAST(SUM(used) AS BIGINT) FROM quota_ledger").fetch_one(&mut db).await.unwrap();
    assert_eq!(used, tokens, "charged once per Idempotency-Key");
}
