//! Bad days: a full disk, a database that refuses connections, slow and idle clients, a
//! second server on the same folder, oversized strings, admin-key guessing.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::json;
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::harness::{ADMIN_KEY, Backend, Server, bin, client, error_code, prose};

const TEXT: &str = "The launch moved to March 3. Budget stays at 2 million. The team grows by four engineers.";

/// About 1,500 tokens: a request whose record is committed while the engine runs
/// (`UsageWriter::open`), where `TEXT`'s is committed after.
fn long_text() -> String {
    (0..120).map(|i| format!("Item {i} of the plan moves to week {} with owner number {}. ", i % 13, i * 7)).collect()
}

/// What the load saw: acknowledged request ids and every status.
#[derive(Default)]
struct Load {
    acked: Mutex<Vec<String>>,
    statuses: Mutex<std::collections::BTreeMap<u16, usize>>,
    storage_refusals: Mutex<usize>,
    other_codes: Mutex<Vec<String>>,
}

fn spawn_load(
    server: &Server,
    key: &str,
    load: &Arc<Load>,
    stop: &Arc<AtomicBool>,
) -> Vec<tokio::task::JoinHandle<()>> {
    (0..6)
        .map(|worker| {
            let (c, url, key, load, stop) =
                (client(), server.url("/compress"), key.to_string(), load.clone(), stop.clone());
            let text = if worker % 2 == 0 { TEXT.to_string() } else { long_text() };
            tokio::spawn(async move {
                while !stop.load(Ordering::Relaxed) {
                    let Ok(resp) = c.post(&url).bearer_auth(&key).json(&json!({"context": text})).send().await else {
                        break;
                    };
                    let status = resp.status().as_u16();
                    *load.statuses.lock().unwrap().entry(status).or_default() += 1;
                    if status == 200 {
                        let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
                        load.acked.lock().unwrap().push(id);
                    } else {
                        let body: serde_json::Value = resp.json().await.unwrap_or_default();
                        if status == 503 && body["code"] == "storage_unavailable" {
                            *load.storage_refusals.lock().unwrap() += 1;
                        } else {
                            load.other_codes.lock().unwrap().push(format!("{status} {body}"));
                        }
                    }
                }
            })
        })
        .collect()
}

/// Waits (without a timed assertion: the bound only stops a hung test) until `done` holds.
async fn eventually(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(90);
    while !done().await {
        assert!(Instant::now() < deadline, "never happened: {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A 503 from /health that names no file, database, driver or path.
async fn health_says_storage_is_down(server: &Server, secrets: &[&str]) -> bool {
    let resp = client().get(server.url("/health")).send().await.unwrap();
    if resp.status() != 503 {
        return false;
    }
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["code"], "storage_unavailable", "{body}");
    let detail = body["detail"].as_str().unwrap();
    for secret in secrets {
        assert!(!detail.to_lowercase().contains(&secret.to_lowercase()), "{detail:?} names {secret:?}");
    }
    true
}

async fn recorded_ids(server: &Server) -> std::collections::HashSet<String> {
    let mut db = server.db("usage_records").await;
    let ids: Vec<(String,)> = sqlx::query_as("SELECT request_id FROM usage_records").fetch_all(&mut db).await.unwrap();
    ids.into_iter().map(|(id,)| id).collect()
}

async fn ledger_matches_records(server: &Server) {
    let mut db = server.db("usage_records").await;
    let (sum,): (i64,) = sqlx::query_as("SELECT CAST(COALESCE(SUM(original_tokens), 0) AS BIGINT) FROM usage_records")
        .fetch_one(&mut db)
        .await
        .unwrap();
    let (used,): (i64,) = sqlx::query_as("SELECT CAST(COALESCE(SUM(used), 0) AS BIGINT) FROM quota_ledger")
        .fetch_one(&mut db)
        .await
        .unwrap();
    assert_eq!(used, sum, "the quota ledger differs from the sum of the records");
}

fn fast_key(server: &Server, user: &str) -> String {
    server.create_key_with(user, "enterprise", &["--requests-per-second", "100000", "--burst", "100000"])
}

/// A full disk under load, for real: the server may write no file past a size limit
/// (`RLIMIT_FSIZE`), which makes SQLite's writes to its write-ahead log fail at commit as they
/// do on a full disk; lifting the limit is the space coming back.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_full_disk_gives_503_then_heals_by_itself_and_every_200_has_its_record() {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("data");
    let mut server = Server::builder(&Backend::Sqlite).home(&home).file_size_limit(256 * 1024).start();
    let key = fast_key(&server, "full-disk");
    let (load, stop) = (Arc::new(Load::default()), Arc::new(AtomicBool::new(false)));
    let workers = spawn_load(&server, &key, &load, &stop);
    eventually("some requests acknowledged", async || load.acked.lock().unwrap().len() >= 20).await;

    eventually("writes refused with 503 storage_unavailable", async || *load.storage_refusals.lock().unwrap() >= 20)
        .await;
    let secrets = ["usage.db", "sqlite", "disk is full", home.to_str().unwrap()];
    eventually("/health says storage is down", async || health_says_storage_is_down(&server, &secrets).await).await;

    // Space comes back: no restart, the same process serves again.
    server.lift_file_size_limit();
    let acked_before = load.acked.lock().unwrap().len();
    eventually("requests acknowledged again", async || load.acked.lock().unwrap().len() >= acked_before + 20).await;
    eventually("/health healthy again", async || {
        client().get(server.url("/health")).send().await.unwrap().status() == 200
    })
    .await;
    stop.store(true, Ordering::Relaxed);
    for w in workers {
        w.await.unwrap();
    }

    let statuses = load.statuses.lock().unwrap().clone();
    assert!(load.other_codes.lock().unwrap().is_empty(), "{:?} {statuses:?}", load.other_codes.lock().unwrap());
    let acked = load.acked.lock().unwrap().clone();
    let ids = recorded_ids(&server).await;
    let missing = acked.iter().filter(|id| !ids.contains(*id)).count();
    assert_eq!(missing, 0, "{missing} of {} acknowledged requests have no record", acked.len());
    ledger_matches_records(&server).await;

    // And after a crash: what was acknowledged is still there.
    server.signal("KILL");
    let restarted = Server::builder(&Backend::Sqlite).home(&home).start();
    let ids = recorded_ids(&restarted).await;
    let missing = acked.iter().filter(|id| !ids.contains(*id)).count();
    assert_eq!(missing, 0, "after SIGKILL, {missing} of {} acknowledged requests have no record", acked.len());
    assert_eq!(ids.len(), acked.len(), "records of requests that were refused");
    ledger_matches_records(&restarted).await;
}

/// A proxy in front of PostgreSQL that can refuse connections (accept and close at once) and
/// cut the open ones: a database that went away.
struct FlakyProxy {
    addr: std::net::SocketAddr,
    refusing: Arc<AtomicBool>,
    generation: Arc<tokio::sync::watch::Sender<u64>>,
}

impl FlakyProxy {
    async fn start(target: String) -> FlakyProxy {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let refusing = Arc::new(AtomicBool::new(false));
        let generation = Arc::new(tokio::sync::watch::channel(0u64).0);
        let (r, g) = (refusing.clone(), generation.clone());
        tokio::spawn(async move {
            loop {
                let Ok((mut inbound, _)) = listener.accept().await else { break };
                if r.load(Ordering::SeqCst) {
                    continue;
                }
                let target = target.clone();
                let mut cut = g.subscribe();
                tokio::spawn(async move {
                    let Ok(mut outbound) = tokio::net::TcpStream::connect(&target).await else { return };
                    tokio::select! {
                        _ = tokio::io::copy_bidirectional(&mut inbound, &mut outbound) => {}
                        _ = cut.changed() => {}
                    }
                });
            }
        });
        FlakyProxy { addr, refusing, generation }
    }

    fn go_down(&self) {
        self.refusing.store(true, Ordering::SeqCst);
        self.generation.send_modify(|g| *g += 1);
    }

    fn come_back(&self) {
        self.refusing.store(false, Ordering::SeqCst);
    }
}

/// PostgreSQL only (with `OMNIMEMORY_TEST_DATABASE_URL`): SQLite has no connections to refuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
#[cfg_attr(not(omnimemory_test_postgres), ignore = "needs OMNIMEMORY_TEST_DATABASE_URL")]
async fn a_database_that_refuses_connections_is_503_not_500() {
    let Some(Backend::Postgres { url, redis }) = Backend::postgres().await else {
        panic!("{}", crate::harness::UNCONFIGURED)
    };
    // The test database's URL, with its host and port replaced by the proxy's.
    let parsed = reqwest::Url::parse(&url).unwrap();
    let target = format!("{}:{}", parsed.host_str().unwrap(), parsed.port().unwrap_or(5432));
    let proxy = FlakyProxy::start(target).await;
    let mut via_proxy = parsed.clone();
    via_proxy.set_port(Some(proxy.addr.port())).unwrap();
    let db_name = parsed.path().trim_start_matches('/').to_string();
    let backend = Backend::Postgres { url: via_proxy.to_string(), redis };
    let server = Server::start(&backend);
    let key = fast_key(&server, "db-outage");
    let compress = || client().post(server.url("/compress")).bearer_auth(&key).json(&json!({"context": TEXT})).send();
    assert_eq!(compress().await.unwrap().status(), 200);

    proxy.go_down();
    let secrets = ["postgres", "refused", "127.0.0.1", db_name.as_str()];
    eventually("/health says storage is down", async || health_says_storage_is_down(&server, &secrets).await).await;
    for _ in 0..3 {
        // Past the key cache's half second, so the key lookup meets the outage too.
        tokio::time::sleep(Duration::from_millis(600)).await;
        let resp = compress().await.unwrap();
        assert_eq!(error_code(resp, 503).await, "storage_unavailable");
    }

    proxy.come_back();
    eventually("requests served again", async || compress().await.unwrap().status() == 200).await;
    eventually("/health healthy again", async || {
        client().get(server.url("/health")).send().await.unwrap().status() == 200
    })
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_second_server_on_the_same_sqlite_folder_refuses_to_start() {
    let server = Server::start(&Backend::Sqlite);
    let second = std::process::Command::new(bin())
        .args(["serve", "--port", "0"])
        .env("OMNIMEMORY_HOME", &server.home)
        .env_remove("OMNIMEMORY_DATABASE_URL")
        .env_remove("OMNIMEMORY_ADMIN_KEY")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&second.stderr);
    assert_eq!(second.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("another omnimemory server is using the data folder"), "{stderr}");
    // The admin CLI still works beside the running server, and the server still serves.
    let key = server.create_key("beside", "pro");
    let resp = client().post(server.url("/count-tokens")).bearer_auth(&key).json(&json!({"text": "hi"})).send();
    assert_eq!(resp.await.unwrap().status(), 200);
}

#[cfg(unix)]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_data_folder_and_its_files_are_private() {
    use std::os::unix::fs::PermissionsExt as _;
    let server = Server::start(&Backend::Sqlite);
    let mode = |name: &str| std::fs::metadata(server.home.join(name)).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode(""), 0o700);
    let key = server.create_key("private", "pro");
    let resp = client().post(server.url("/compress")).bearer_auth(&key).json(&json!({"context": TEXT})).send();
    assert_eq!(resp.await.unwrap().status(), 200);
    for entry in std::fs::read_dir(&server.home).unwrap() {
        let name = entry.unwrap().file_name().to_string_lossy().to_string();
        assert_eq!(mode(&name), 0o600, "{name}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_short_admin_key() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin())
        .args(["serve", "--port", "0"])
        .env("OMNIMEMORY_HOME", dir.path())
        .env("OMNIMEMORY_ADMIN_KEY", "short-key")
        .env_remove("OMNIMEMORY_DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("shorter than 32 characters") && !stderr.contains("short-key"), "{stderr}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn serve_refuses_a_connection_cap_the_descriptor_limit_cannot_hold() {
    let dir = tempfile::tempdir().unwrap();
    let out = std::process::Command::new(bin())
        .args(["serve", "--port", "0"])
        .env("OMNIMEMORY_HOME", dir.path())
        .env("OMNIMEMORY_MAX_CONNECTIONS", "100000000")
        .env_remove("OMNIMEMORY_ADMIN_KEY")
        .env_remove("OMNIMEMORY_DATABASE_URL")
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("file descriptors") && stderr.contains("OMNIMEMORY_MAX_CONNECTIONS"), "{stderr}");
}

async fn wrong_admin_keys_are_throttled_per_address(backend: Backend) {
    let server = Server::start(&backend);
    let c = client();
    let attempt = |admin: &str| {
        c.post(server.url("/admin/api-key")).header("X-Admin-Key", admin).json(&json!({"user_id": "u"})).send()
    };
    for i in 0..10 {
        assert_eq!(error_code(attempt(&format!("guess-{i}")).await.unwrap(), 403).await, "admin_forbidden");
    }
    let throttled = attempt("guess-10").await.unwrap();
    assert!(throttled.headers()["retry-after"].to_str().unwrap().parse::<u64>().unwrap() >= 1);
    assert_eq!(error_code(throttled, 429).await, "admin_rate_limited");
    // While throttled the right key is refused too: the answers tell a guesser nothing.
    assert_eq!(error_code(attempt(ADMIN_KEY).await.unwrap(), 429).await, "admin_rate_limited");
    // Keys are not affected.
    let key = server.create_key("unthrottled", "pro");
    let resp = c.post(server.url("/count-tokens")).bearer_auth(&key).json(&json!({"text": "hi"})).send();
    assert_eq!(resp.await.unwrap().status(), 200);
}

async fn every_stored_or_echoed_string_is_bounded_and_the_refusal_names_the_bound(backend: Backend) {
    let server = Server::start(&backend);
    let key = server.create_key("bounds", "pro");
    let c = client();
    let cases = [
        ("/compress", json!({"context": "a", "model_id": "x".repeat(9000)}), ["model_id", "128"]),
        ("/compress", json!({"context": "a", "model_id": "gpt-4\n"}), ["model_id", "control"]),
        ("/count-tokens", json!({"text": "a", "model_id": "x".repeat(129)}), ["model_id", "128"]),
        ("/compress", json!({"context": "a", "tool_id": "t".repeat(257)}), ["tool_id", "256"]),
        ("/compress", json!({"context": "a", "session_id": "s".repeat(257)}), ["session_id", "256"]),
        ("/compress", json!({"context": "a", "metadata": {"k".repeat(65): "v"}}), ["metadata", "64"]),
        ("/compress", json!({"context": "a", "metadata": {"team": "v".repeat(513)}}), ["metadata", "512"]),
    ];
    for (path, body, words) in cases {
        let resp = c.post(server.url(path)).bearer_auth(&key).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 422);
        let body: serde_json::Value = resp.json().await.unwrap();
        let detail = body["detail"].as_str().unwrap();
        assert!(words.iter().all(|w| detail.contains(w)) && detail.len() < 200, "{detail}");
    }
    let many: serde_json::Map<String, serde_json::Value> = (0..33).map(|i| (format!("t{i}"), json!("v"))).collect();
    let resp = c.post(server.url("/compress")).bearer_auth(&key).json(&json!({"context": "a", "metadata": many}));
    let body: serde_json::Value = resp.send().await.unwrap().json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().contains("32"), "{body}");
    let resp = c.post(server.url("/compress")).bearer_auth(&key).header("X-Tool-ID", "h".repeat(300));
    let resp = resp.json(&json!({"context": "a"})).send().await.unwrap();
    assert_eq!(error_code(resp, 422).await, "invalid_request");
    let resp = c
        .post(server.url("/admin/api-key"))
        .header("X-Admin-Key", ADMIN_KEY)
        .json(&json!({"user_id": "u", "tier": "g".repeat(100_000)}))
        .send()
        .await
        .unwrap();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert!(body["detail"].as_str().unwrap().len() < 200, "{body}");
    // Nothing of the refused requests was stored.
    let stats = crate::harness::get_json(server.url("/usage/stats"), &key).await;
    assert_eq!(stats["stats"]["total_compressions"], 0, "{stats}");
}

async fn refusals_decided_before_the_body_have_the_error_shape(backend: Backend) {
    let server = Server::builder(&backend)
        .env("OMNIMEMORY_ADMIN_KEY", ADMIN_KEY)
        .env("OMNIMEMORY_MAX_BODY_BYTES", "4096")
        .start();
    let key = server.create_key("shape", "pro");
    let c = client();
    let duplicated = c.get(server.url("/usage/stats?days=1&days=2")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(error_code(duplicated, 422).await, "invalid_request");
    let gzip = c
        .post(server.url("/compress"))
        .bearer_auth(&key)
        .header("content-type", "application/json")
        .header("content-encoding", "gzip")
        .body(vec![0x1f, 0x8b, 0x08, 0x00])
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(gzip, 415).await, "unsupported_media_type");

    // A 100 GB Content-Length with 1 KB sent: refused at once, from the header alone.
    let addr = server.base.trim_start_matches("http://").to_string();
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /compress HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n\
         Content-Length: 100000000000\r\n\r\n"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    conn.write_all(&[b' '; 1024]).await.unwrap();
    let answer = read_answer(&mut conn).await;
    assert!(answer.starts_with("HTTP/1.1 413"), "{answer}");
    assert!(answer.contains("\"code\":\"payload_too_large\""), "{answer}");
}

/// Everything the server sends until it closes the connection.
async fn read_answer(conn: &mut tokio::net::TcpStream) -> String {
    let mut answer = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        match tokio::time::timeout(Duration::from_secs(60), conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => {
                answer.extend_from_slice(&buf[..n]);
                if answer.windows(4).any(|w| w == b"\r\n\r\n") && answer.ends_with(b"}") {
                    break;
                }
            }
            Err(_) => panic!("no answer; got {:?}", String::from_utf8_lossy(&answer)),
        }
    }
    String::from_utf8_lossy(&answer).into_owned()
}

/// Whether the server closed `conn` (a read ends), as opposed to the test giving up.
async fn closed_by_server(conn: &mut tokio::net::TcpStream) -> bool {
    let mut buf = [0u8; 1024];
    loop {
        match tokio::time::timeout(Duration::from_secs(60), conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return true,
            Ok(Ok(_)) => continue,
            Err(_) => return false,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn slow_and_idle_connections_are_closed_and_health_still_answers() {
    let server = Server::builder(&Backend::Sqlite)
        .env("OMNIMEMORY_ADMIN_KEY", ADMIN_KEY)
        .env("OMNIMEMORY_MAX_CONNECTIONS", "8")
        .env("OMNIMEMORY_HEADER_TIMEOUT_SECS", "1")
        .env("OMNIMEMORY_BODY_TIMEOUT_SECS", "1")
        .start();
    let key = server.create_key("patient", "pro");
    let addr = server.base.trim_start_matches("http://").to_string();
    // Every connection the server will take: idle ones, and slowloris ones that trickle a header.
    let mut idle = Vec::new();
    for _ in 0..5 {
        idle.push(tokio::net::TcpStream::connect(&addr).await.unwrap());
    }
    let mut slow = Vec::new();
    for _ in 0..3 {
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        conn.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n").await.unwrap();
        slow.push(conn);
    }
    let trickle = tokio::spawn(async move {
        for i in 0.. {
            for conn in slow.iter_mut() {
                if conn.write_all(format!("X-Slow-{i}: 1\r\n").as_bytes()).await.is_err() {
                    return slow;
                }
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
        slow
    });
    // More clients than the cap: /health answers once the server has shed the stalled ones.
    let resp = client().get(server.url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    for conn in idle.iter_mut() {
        assert!(closed_by_server(conn).await, "an idle connection stayed open");
    }
    let mut slow = trickle.await.unwrap();
    for conn in slow.iter_mut() {
        assert!(closed_by_server(conn).await, "a slowloris connection stayed open");
    }

    // A body that stops arriving: 408 with the error shape, and the connection is closed.
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    let head = format!(
        "POST /count-tokens HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"text\": "
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    let answer = read_answer(&mut conn).await;
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer}");
    assert!(answer.contains("\"code\":\"request_timeout\""), "{answer}");
}

/// Runs the futures at once and returns their outputs in order.
async fn futures_join<F: std::future::Future + Send + 'static>(futures: Vec<F>) -> Vec<F::Output>
where
    F::Output: Send + 'static,
{
    let tasks: Vec<_> = futures.into_iter().map(tokio::spawn).collect();
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Sends only the headers of a large request and returns the answer: one decided without the
/// body (a server that waited for it would answer 408 after the body timeout instead).
async fn answer_to_headers_alone(server: &Server, path: &str, key: &str) -> String {
    answer_to_the_start_of(server, path, key, "", 5_000_000, "").await
}

/// Sends the headers of a `declared`-byte request (plus `extra_headers`) and the first bytes of
/// its body, no more, and returns the answer.
async fn answer_to_the_start_of(
    server: &Server,
    path: &str,
    key: &str,
    extra_headers: &str,
    declared: usize,
    start: &str,
) -> String {
    let mut conn = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://")).await.unwrap();
    let head = format!(
        "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n\
         {extra_headers}Content-Length: {declared}\r\n\r\n{start}"
    );
    conn.write_all(head.as_bytes()).await.unwrap();
    read_answer(&mut conn).await
}

async fn a_10_mb_body_with_an_idempotency_key_is_refused_unread_unless_its_answer_is_stored(backend: Backend) {
    let server = Server::start(&backend);
    let c = client();
    // A body over the 64 KiB above which the buckets are looked at before reading.
    let context = "Every refusal should cost the server a lookup, not a read. ".repeat(1500);
    let body = json!({"context": context, "target_compression": 0.5});
    let probe = server.create_key("probe", "pro");
    let tokens = crate::harness::count_tokens(&server, &probe, &context, "gpt-4").await;
    let key = server.create_key_with("exact", "enterprise", &["--monthly-tokens", &tokens.to_string()]);
    let compress = |idem: &'static str| {
        c.post(server.url("/compress")).bearer_auth(&key).header("idempotency-key", idem).json(&body).send()
    };
    // The first request spends the whole month.
    let first = compress("spend-it").await.unwrap();
    assert_eq!(first.status(), 200);
    let first_id = first.headers()["x-request-id"].clone();

    // A new Idempotency-Key on a 10 MB body: 402 from the headers and the first kilobyte.
    let start = format!("{{\"context\": \"{}", "a ".repeat(512));
    let answer = answer_to_the_start_of(&server, "/compress", &key, "Idempotency-Key: new\r\n", 10_000_000, &start);
    let answer = answer.await;
    assert!(answer.starts_with("HTTP/1.1 402") && answer.contains("\"code\":\"quota_exceeded\""), "{answer}");
    assert!(answer.contains("x-quota-reset: "), "{answer}");

    // The retry of the answered request is still owed its answer, whatever the quota holds.
    let retry = compress("spend-it").await.unwrap();
    assert_eq!(retry.status(), 200);
    assert_eq!(retry.headers()["idempotent-replayed"], "true");
    assert_eq!(retry.headers()["x-request-id"], first_id);

    // An empty request bucket, with an Idempotency-Key: 429 before the body.
    let slow = server.create_key_with("slow", "pro", &["--requests-per-second", "0.001", "--burst", "1"]);
    let first = c.post(server.url("/count-tokens")).bearer_auth(&slow).json(&json!({"text": "hi"})).send().await;
    assert_eq!(first.unwrap().status(), 200);
    let answer = answer_to_the_start_of(&server, "/compress", &slow, "Idempotency-Key: k\r\n", 10_000_000, &start);
    let answer = answer.await;
    assert!(answer.starts_with("HTTP/1.1 429") && answer.contains("retry-after: "), "{answer}");
}

async fn a_large_request_its_key_cannot_pass_is_refused_before_its_body_is_read(backend: Backend) {
    let server = Server::start(&backend);
    let c = client();
    // A spent quota: the first request takes exactly what the month allows.
    let probe = server.create_key("probe", "pro");
    let count = c.post(server.url("/count-tokens")).bearer_auth(&probe).json(&json!({"text": TEXT})).send().await;
    let tokens = count.unwrap().json::<serde_json::Value>().await.unwrap()["token_count"].as_u64().unwrap();
    let key = server.create_key_with("spent", "enterprise", &["--monthly-tokens", &tokens.to_string()]);
    let first = c.post(server.url("/compress")).bearer_auth(&key).json(&json!({"context": TEXT})).send().await;
    assert_eq!(first.unwrap().status(), 200);
    let answer = answer_to_headers_alone(&server, "/compress", &key).await;
    assert!(answer.starts_with("HTTP/1.1 402") && answer.contains("\"code\":\"quota_exceeded\""), "{answer}");

    // An empty request bucket (one request per 1,000 s).
    let slow = server.create_key_with("slow", "pro", &["--requests-per-second", "0.001", "--burst", "1"]);
    let first = c.post(server.url("/count-tokens")).bearer_auth(&slow).json(&json!({"text": "hi"})).send().await;
    assert_eq!(first.unwrap().status(), 200);
    for path in ["/count-tokens", "/validate", "/compress"] {
        let answer = answer_to_headers_alone(&server, path, &slow).await;
        assert!(answer.starts_with("HTTP/1.1 429"), "{path}: {answer}");
        assert!(answer.contains("\"code\":\"request_rate_limited\"") && answer.contains("retry-after: "), "{answer}");
    }
}

/// A key with part of its month left, but far less than a 10 MB body holds, gets its 402 while
/// that body is still on its way: the client sends the headers and the first 2 MB, no more,
/// and is answered (a server that waited for the rest would answer 408 after the body
/// timeout). Nothing is charged, and the key still compresses what it can pay for. A key
/// whose month covers the same start waits for the rest, as before.
async fn a_large_body_its_key_cannot_pay_for_is_refused_before_the_rest_arrives(backend: Backend) {
    let server = Server::builder(&backend)
        .env("OMNIMEMORY_ADMIN_KEY", ADMIN_KEY)
        .env("OMNIMEMORY_BODY_TIMEOUT_SECS", "3")
        .start();
    let c = client();
    let key = server.create_key_with("some-left", "enterprise", &["--monthly-tokens", "200000"]);
    let first = c.post(server.url("/compress")).bearer_auth(&key).json(&json!({"context": TEXT})).send().await;
    assert_eq!(first.unwrap().status(), 200);
    let quota = crate::harness::get_json(server.url("/usage/quota"), &key).await;
    let used = quota["quota"]["usage"]["current_usage"].as_u64().unwrap();
    assert!(used > 0 && used < 200_000, "{quota}");

    // About 1.5 million words, as a context and as a conversation; 2 MB of either hold more
    // words than the 200,000 tokens left.
    let context = prose(10_000_000, 21);
    let as_context = json!({"context": context, "target_compression": 0.5}).to_string();
    let messages: Vec<serde_json::Value> = context
        .as_bytes()
        .chunks(20_000)
        .enumerate()
        .map(|(i, part)| {
            let role = if i % 2 == 0 { "user" } else { "assistant" };
            json!({"role": role, "content": String::from_utf8_lossy(part)})
        })
        .collect();
    let as_messages = json!({"messages": messages}).to_string();
    for body in [&as_context, &as_messages] {
        assert!(body.len() > 10_000_000);
        let answer = answer_to_the_start_of(&server, "/compress", &key, "", body.len(), &body[..2_000_000]).await;
        assert!(answer.starts_with("HTTP/1.1 402") && answer.contains("\"code\":\"quota_exceeded\""), "{answer}");
        assert!(answer.contains("x-quota-reset: ") && answer.contains("x-ratelimit-limit: "), "{answer}");
    }
    // Nothing was charged or reserved for them.
    let quota = crate::harness::get_json(server.url("/usage/quota"), &key).await;
    assert_eq!(quota["quota"]["usage"]["current_usage"].as_u64(), Some(used), "{quota}");
    let again = c.post(server.url("/compress")).bearer_auth(&key).json(&json!({"context": TEXT})).send().await;
    assert_eq!(again.unwrap().status(), 200);

    // A key whose month covers what was sent is not refused from it: the server waits for the
    // rest of the body.
    let roomy = server.create_key("roomy", "enterprise");
    let answer = answer_to_the_start_of(&server, "/compress", &roomy, "", as_context.len(), &as_context[..2_000_000]);
    let answer = answer.await;
    assert!(answer.starts_with("HTTP/1.1 408") && answer.contains("\"code\":\"request_timeout\""), "{answer}");
}

/// The value of the `/metrics` series `name` whose labels include `labels` (0 when absent).
async fn metric(server: &Server, name: &str, labels: &str) -> f64 {
    let text = client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines()
        .filter(|l| l.starts_with(&format!("{name}{{")) && l.contains(labels))
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
        .unwrap_or(0.0)
}

/// Large requests queued behind their key's running one, whose clients hang up: they leave
/// the queue without running, are counted as abandoned, and are not charged; the running one
/// is answered and charged alone.
async fn queued_large_requests_whose_clients_hang_up_are_dropped_uncharged(backend: Backend) {
    let server = Server::start(&backend);
    let key = fast_key(&server, "hangs-up");
    // A long request: 8 MB with a 4 KB query (seconds of engine work). One large job per key
    // runs at a time, so the key's next large requests queue behind it.
    let context = prose(8 * 1024 * 1024, 31);
    let body = json!({"context": context, "query": &context[..4000], "target_compression": 0.9});
    let running = tokio::spawn(client().post(server.url("/compress")).bearer_auth(&key).json(&body).send());
    // Its body parsed (one large job finished), its count and compression running.
    eventually("the long request's compression started", async || {
        metric(&server, "omnimemory_engine_jobs_finished_total", "lane=\"large\"").await >= 1.0
            && metric(&server, "omnimemory_engine_jobs", "state=\"running\"").await >= 1.0
    })
    .await;

    // Three more large requests of the key, sent whole: each waits for the key's turn.
    let mut hung_up = Vec::new();
    for i in 0..3 {
        let body = json!({"context": prose(400 * 1024, 40 + i)}).to_string();
        let mut conn = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://")).await.unwrap();
        let head = format!(
            "POST /compress HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        conn.write_all(head.as_bytes()).await.unwrap();
        conn.write_all(body.as_bytes()).await.unwrap();
        hung_up.push(conn);
    }
    eventually("three large requests queued", async || {
        metric(&server, "omnimemory_engine_jobs", "state=\"waiting\"").await >= 3.0
    })
    .await;
    // Their clients hang up.
    drop(hung_up);
    eventually("the queue emptied", async || {
        metric(&server, "omnimemory_engine_jobs", "state=\"waiting\"").await == 0.0
    })
    .await;
    assert_eq!(metric(&server, "omnimemory_engine_jobs_abandoned_total", "lane=\"large\"").await, 3.0);

    // The long request is answered, and it is all the key was charged for.
    let answer = running.await.unwrap().unwrap();
    assert_eq!(answer.status(), 200);
    let answer: serde_json::Value = answer.json().await.unwrap();
    let stats = crate::harness::get_json(server.url("/usage/stats"), &key).await;
    assert_eq!(stats["stats"]["total_compressions"].as_u64(), Some(1), "{stats}");
    let quota = crate::harness::get_json(server.url("/usage/quota"), &key).await;
    assert_eq!(quota["quota"]["usage"]["current_usage"], answer["original_tokens"], "{quota}");
    // Only its own large jobs ran: the parse of its body and its compression.
    assert_eq!(metric(&server, "omnimemory_engine_jobs_finished_total", "lane=\"large\"").await, 2.0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_the_http_layer_cannot_parse_get_the_error_shape_too() {
    let server = Server::start(&Backend::Sqlite);
    let addr = server.base.trim_start_matches("http://").to_string();
    let many: String = (0..200).map(|i| format!("X-{i}: 1\r\n")).collect();
    let cases: Vec<(Vec<u8>, &str, &str)> = vec![
        (b"GET /health HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n".to_vec(), "400", "malformed_request"),
        (format!("GET /health HTTP/1.1\r\nHost: x\r\n{many}\r\n").into_bytes(), "431", "headers_too_large"),
        (
            format!("GET /health HTTP/1.1\r\nX-Big: {}\r\n\r\n", "a".repeat(1 << 20)).into_bytes(),
            "431",
            "headers_too_large",
        ),
        (format!("GET /{} HTTP/1.1\r\nHost: x\r\n\r\n", "a".repeat(100_000)).into_bytes(), "414", "uri_too_long"),
    ];
    for (request, status, code) in cases {
        let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
        // The server may answer and close before it has read everything sent.
        let _ = conn.write_all(&request).await;
        let answer = read_answer(&mut conn).await;
        assert!(answer.starts_with(&format!("HTTP/1.1 {status} ")), "{answer}");
        assert!(answer.contains("content-type: application/json"), "{answer}");
        assert!(answer.contains(&format!("\"code\":\"{code}\"")), "{answer}");
    }
    // A good request before a bad one on the same connection is answered as usual.
    let mut conn = tokio::net::TcpStream::connect(&addr).await.unwrap();
    conn.write_all(b"GET /health HTTP/1.1\r\nHost: x\r\n\r\nGET /health HTTP/1.1\r\nX-A: a\x00b\r\n\r\n")
        .await
        .unwrap();
    let mut answer = Vec::new();
    let _ = tokio::time::timeout(Duration::from_secs(60), conn.read_to_end(&mut answer)).await;
    let answer = String::from_utf8_lossy(&answer);
    assert!(answer.starts_with("HTTP/1.1 200 OK") && answer.contains("\"status\":\"healthy\""), "{answer}");
    assert!(answer.contains("\"code\":\"malformed_request\""), "{answer}");
}

async fn a_retry_with_the_same_idempotency_key_gets_the_first_answer_uncharged(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("data");
    let mut server = Server::builder(&backend).home(&home).start();
    let key = server.create_key("retrying", "pro");
    let send = |server: &Server, idem: &str, context: &str| {
        let req = client().post(server.url("/compress")).bearer_auth(&key).header("Idempotency-Key", idem);
        req.json(&json!({"context": context, "metadata": {"order": "1"}})).send()
    };
    let first = send(&server, "order-1", TEXT).await.unwrap();
    assert_eq!(first.status(), 200);
    assert!(first.headers().get("idempotent-replayed").is_none());
    let id = first.headers()["x-request-id"].to_str().unwrap().to_string();
    let answer: serde_json::Value = first.json().await.unwrap();

    let again = send(&server, "order-1", TEXT).await.unwrap();
    assert_eq!(again.status(), 200);
    assert_eq!(again.headers()["idempotent-replayed"], "true");
    assert_eq!(again.headers()["x-request-id"].to_str().unwrap(), id);
    // A replay takes nothing from the buckets, and tells their levels as every answer does.
    for name in ["x-ratelimit-limit", "x-ratelimit-remaining", "x-ratelimit-reset", "ratelimit-policy", "ratelimit"] {
        assert!(again.headers().contains_key(name), "a replay without {name}");
    }
    assert_eq!(again.json::<serde_json::Value>().await.unwrap(), answer);

    let other_body = send(&server, "order-1", "Another text entirely.").await.unwrap();
    assert_eq!(error_code(other_body, 422).await, "idempotency_key_reused");
    let malformed = send(&server, "has space", TEXT).await.unwrap();
    assert_eq!(error_code(malformed, 422).await, "invalid_request");
    let another_key = send(&server, "order-2", TEXT).await.unwrap();
    assert_eq!(another_key.status(), 200);

    // Eight at once with one key: each is answered or told to retry (409), one is charged.
    let burst: Vec<_> = (0..8).map(|_| send(&server, "order-3", TEXT)).collect();
    let mut statuses = Vec::new();
    for resp in futures_join(burst).await {
        statuses.push(resp.unwrap().status().as_u16());
    }
    assert!(statuses.iter().all(|s| [200, 409].contains(s)) && statuses.contains(&200), "{statuses:?}");

    // Charged once per key, and the answer outlives a crash.
    let charged = |stats: &serde_json::Value| stats["stats"]["total_compressions"].as_u64();
    let stats = crate::harness::get_json(server.url("/usage/stats"), &key).await;
    assert_eq!(charged(&stats), Some(3), "{stats}");
    server.signal("KILL");
    let restarted = Server::builder(&backend).home(&home).start();
    let after = send(&restarted, "order-1", TEXT).await.unwrap();
    assert_eq!(after.headers()["idempotent-replayed"], "true");
    assert_eq!(after.headers()["x-request-id"].to_str().unwrap(), id);
    let stats = crate::harness::get_json(restarted.url("/usage/stats"), &key).await;
    assert_eq!(charged(&stats), Some(3), "{stats}");
    let quota = crate::harness::get_json(restarted.url("/usage/quota"), &key).await;
    let tokens = answer["original_tokens"].as_u64().unwrap();
    assert_eq!(quota["quota"]["usage"]["current_usage"].as_u64(), Some(3 * tokens), "{quota}");
}

/// Sends the requests, each with its `Idempotency-Key` (`job-<i>`), at once; returns each one's
/// answer (`None`: the connection ended without one) with its `X-Request-Id` and replay mark.
async fn send_all(url: String, key: String, bodies: Vec<serde_json::Value>) -> Vec<Option<(u16, String, bool)>> {
    let sends: Vec<_> = bodies
        .into_iter()
        .enumerate()
        .map(|(i, body)| {
            let req = client().post(&url).bearer_auth(&key).header("Idempotency-Key", format!("job-{i}"));
            let req = req.json(&body).timeout(Duration::from_secs(120));
            async move {
                let resp = req.send().await.ok()?;
                let status = resp.status().as_u16();
                let id = resp.headers().get("x-request-id").map(|v| v.to_str().unwrap().to_string());
                let replayed = resp.headers().get("idempotent-replayed").is_some();
                resp.bytes().await.ok()?;
                Some((status, id.unwrap_or_default(), replayed))
            }
        })
        .collect();
    futures_join(sends).await
}

/// Exactly-once billing across a crash: SIGKILL while `/compress` requests with an
/// `Idempotency-Key` are in flight, restart, retry every one. Each is answered and charged
/// once: an answer the client saw is replayed with its request id; a request that got no
/// answer is replayed if it was charged before the kill, else run for the first time.
async fn a_crash_mid_request_and_a_retry_charge_each_request_once(backend: Backend) {
    let dir = tempfile::tempdir().unwrap();
    let home = dir.path().join("data");
    let mut server = Server::builder(&backend).home(&home).start();
    let key = server.create_key("crash-retry", "enterprise");
    // Twelve requests of about 55 KB: the engine runs two at a time, so most are in flight
    // when the first is charged.
    let bodies: Vec<serde_json::Value> = (0..12)
        .map(|i| {
            let context: String =
                (0..1200).map(|n| format!("Request {i} of the batch, sentence number {n}. ")).collect();
            json!({"context": context, "query": format!("request {i}"), "target_compression": 0.8})
        })
        .collect();
    let in_flight = tokio::spawn(send_all(server.url("/compress"), key.clone(), bodies.clone()));
    // Kill as soon as the first record is committed: the others are queued, running, or being
    // recorded, and that one's answer may not have left yet.
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let stats = crate::harness::get_json(server.url("/usage/stats"), &key).await;
        if stats["stats"]["total_compressions"].as_u64().unwrap_or(0) > 0 {
            break;
        }
        assert!(Instant::now() < deadline, "no request was charged");
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    server.signal("KILL");
    let before: Vec<Option<(u16, String, bool)>> =
        in_flight.await.unwrap().into_iter().map(|a| a.filter(|(status, _, _)| *status == 200)).collect();
    let unanswered = before.iter().filter(|a| a.is_none()).count();
    assert!(unanswered > 0, "the kill came after every answer: {before:?}");

    let server = Server::builder(&backend).home(&home).start();
    let after = send_all(server.url("/compress"), key.clone(), bodies.clone()).await;
    let (mut ids, mut charged_unanswered) = (std::collections::BTreeSet::new(), 0);
    for (i, (was, now)) in before.iter().zip(&after).enumerate() {
        let (status, id, replayed) = now.clone().unwrap_or_else(|| panic!("retry {i} got no answer"));
        assert_eq!(status, 200, "retry {i}");
        match was {
            Some((_, first_id, _)) => {
                assert!(replayed, "retry {i} of an answered request was run again");
                assert_eq!(&id, first_id, "retry {i}");
            }
            None => charged_unanswered += usize::from(replayed),
        }
        ids.insert(id);
    }
    assert_eq!(ids.len(), bodies.len(), "one request id per request");

    // Charged once each: twelve records, with the ids the client was given; the ledger their sum.
    let mut db = server.db("usage_records").await;
    let rows: Vec<(String, i64)> =
        sqlx::query_as("SELECT request_id, original_tokens FROM usage_records").fetch_all(&mut db).await.unwrap();
    let recorded: std::collections::BTreeSet<String> = rows.iter().map(|(id, _)| id.clone()).collect();
    assert_eq!(rows.len(), bodies.len(), "records: {rows:?}");
    assert_eq!(recorded, ids);
    let quota = crate::harness::get_json(server.url("/usage/quota"), &key).await;
    let charged: i64 = rows.iter().map(|(_, t)| t).sum();
    assert_eq!(quota["quota"]["usage"]["current_usage"].as_i64(), Some(charged), "{quota}");
    println!(
        "{unanswered} of {} requests had no answer at the kill, {charged_unanswered} of them already charged",
        bodies.len()
    );
}

/// A request long enough for its record to be committed while the engine runs: once it is
/// answered, its record and its charge are in storage; the output's size follows.
async fn a_long_requests_record_is_charged_before_its_answer_and_completed_after(backend: Backend) {
    let server = Server::start(&backend);
    let key = fast_key(&server, "long");
    // Before it, a long one and a short one (recorded whole after its engine work): the
    // statements it goes through were prepared for either kind of record.
    let body = json!({"context": long_text(), "target_compression": 0.75, "tool_id": "bot"});
    for first in [body.clone(), json!({"context": TEXT})] {
        let resp = client().post(server.url("/compress")).bearer_auth(&key).json(&first).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    let resp = client().post(server.url("/compress")).bearer_auth(&key).json(&body).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let id = resp.headers()["x-request-id"].to_str().unwrap().to_string();
    // Where its time went, step by step, in milliseconds.
    let timing = resp.headers()["server-timing"].to_str().unwrap().to_string();
    let steps: Vec<(&str, f64)> = timing
        .split(", ")
        .map(|step| {
            let (name, ms) = step.split_once(";dur=").unwrap();
            (name, ms.parse().unwrap())
        })
        .collect();
    assert_eq!(steps.iter().map(|s| s.0).collect::<Vec<_>>(), ["count", "admit", "engine", "record"], "{timing}");
    assert!(steps.iter().all(|s| s.1 >= 0.0) && steps[2].1 > 0.0, "{timing}");
    let answer: serde_json::Value = resp.json().await.unwrap();
    let (original, compressed) =
        (answer["original_tokens"].as_i64().unwrap(), answer["compressed_tokens"].as_i64().unwrap());
    assert!(original >= 1000 && compressed * 2 < original, "{answer}");
    assert!(recorded_ids(&server).await.contains(&id));
    ledger_matches_records(&server).await;
    let row = async || {
        let mut db = server.db("usage_records").await;
        let row: (i64, i64, i64, f64, Option<f64>, Option<String>) = sqlx::query_as(
            "SELECT original_tokens, compressed_tokens, tokens_saved, compression_ratio, quality_score, tool_id
             FROM usage_records WHERE request_id = $1",
        )
        .bind(&id)
        .fetch_one(&mut db)
        .await
        .unwrap();
        row
    };
    eventually("the record carries the answer's output", async || row().await.1 == compressed).await;
    let (charged, _, saved, ratio, quality, tool) = row().await;
    assert_eq!((charged, saved, tool.as_deref()), (original, original - compressed, Some("bot")));
    assert!((ratio - answer["compression_ratio"].as_f64().unwrap()).abs() < 1e-9, "{ratio} {answer}");
    assert_eq!(quality, answer["quality_score"].as_f64());
    // And the customer's view agrees.
    let recent: serde_json::Value =
        client().get(server.url("/usage/recent")).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert_eq!(recent["requests"][0]["compressed_tokens"].as_i64(), Some(compressed), "{recent}");
}

crate::on_both_backends! {
    a_long_requests_record_is_charged_before_its_answer_and_completed_after,
    wrong_admin_keys_are_throttled_per_address,
    every_stored_or_echoed_string_is_bounded_and_the_refusal_names_the_bound,
    refusals_decided_before_the_body_have_the_error_shape,
    a_large_request_its_key_cannot_pass_is_refused_before_its_body_is_read,
    a_retry_with_the_same_idempotency_key_gets_the_first_answer_uncharged,
    a_10_mb_body_with_an_idempotency_key_is_refused_unread_unless_its_answer_is_stored,
    a_large_body_its_key_cannot_pay_for_is_refused_before_the_rest_arrives,
    queued_large_requests_whose_clients_hang_up_are_dropped_uncharged,
    a_crash_mid_request_and_a_retry_charge_each_request_once,
}
