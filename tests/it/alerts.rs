//! Quota alerts: a local receiver gets a signed webhook for each threshold a key crosses,
//! though the server is killed (SIGKILL) between the crossing and the delivery and the
//! receiver refused the first attempts.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use hmac::{KeyInit as _, Mac as _};
use serde_json::{Value, json};

use crate::harness::{Backend, Server, client, count_tokens};

const SECRET: &str = "webhook-secret-for-tests-0123456789";

/// What the receiver saw: the bodies it accepted with their signatures, and every attempt.
#[derive(Default)]
struct Receiver {
    accepted: Mutex<Vec<(String, String)>>,
    attempts: AtomicUsize,
    refusing: AtomicBool,
}

/// The `X-OmniMemory-Signature` the server must send with `body`, computed here independently.
fn signed(body: &str) -> String {
    let mut mac = hmac::Hmac::<sha2::Sha256>::new_from_slice(SECRET.as_bytes()).unwrap();
    mac.update(body.as_bytes());
    let hex: String = mac.finalize().into_bytes().iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256={hex}")
}

/// `POST /hook`: counts the attempt, refuses it while `refusing`, else keeps body and signature.
fn hook_app(seen: Arc<Receiver>) -> axum::Router {
    axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: String| {
            let seen = seen.clone();
            async move {
                seen.attempts.fetch_add(1, Ordering::SeqCst);
                if seen.refusing.load(Ordering::SeqCst) {
                    return axum::http::StatusCode::SERVICE_UNAVAILABLE;
                }
                let signature = headers["x-omnimemory-signature"].to_str().unwrap().to_string();
                seen.accepted.lock().unwrap().push((body, signature));
                axum::http::StatusCode::NO_CONTENT
            }
        }),
    )
}

async fn start_receiver() -> (Arc<Receiver>, String) {
    let receiver = Arc::new(Receiver::default());
    receiver.refusing.store(true, Ordering::SeqCst);
    let app = hook_app(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (receiver, url)
}

/// An `https://` receiver with a certificate for 127.0.0.1 from the test CA in `fixtures/`:
/// it takes every alert and keeps its body and signature.
async fn start_https_receiver() -> (Arc<Receiver>, String) {
    use tokio_rustls::rustls::pki_types::pem::PemObject as _;
    use tokio_rustls::rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures");
    let certs: Vec<CertificateDer<'static>> =
        CertificateDer::pem_file_iter(dir.join("webhook-receiver.pem")).unwrap().map(Result::unwrap).collect();
    let key = PrivateKeyDer::from_pem_file(dir.join("webhook-receiver.key")).unwrap();
    let config =
        tokio_rustls::rustls::ServerConfig::builder().with_no_client_auth().with_single_cert(certs, key).unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(config));

    let receiver = Arc::new(Receiver::default());
    let app = hook_app(receiver.clone());
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("https://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move {
        loop {
            let (tcp, _) = listener.accept().await.unwrap();
            let (acceptor, app) = (acceptor.clone(), app.clone());
            tokio::spawn(async move {
                // A client that does not trust the certificate ends the handshake: nothing to serve.
                let Ok(tls) = acceptor.accept(tcp).await else { return };
                let service = hyper_util::service::TowerToHyperService::new(app);
                let io = hyper_util::rt::TokioIo::new(tls);
                let _ = hyper::server::conn::http1::Builder::new().serve_connection(io, service).await;
            });
        }
    });
    (receiver, url)
}

fn start_server(backend: &Backend, home: Option<&std::path::Path>, url: &str) -> Server {
    let mut builder = Server::builder(backend)
        .env("OMNIMEMORY_WEBHOOK_URL", url)
        .env("OMNIMEMORY_WEBHOOK_SECRET", SECRET)
        .env("OMNIMEMORY_WEBHOOK_RETRY_BASE_MS", "50");
    if let Some(home) = home {
        builder = builder.home(home);
    }
    builder.start()
}

/// Waits (at most 30 s) until `done` holds.
async fn until(what: &str, done: impl Fn() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !done() {
        assert!(Instant::now() < deadline, "gave up waiting: {what}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// A context of exactly `tokens` tokens for gpt-4 (" hello" is one token).
async fn context_of(server: &Server, key: &str, tokens: u64) -> String {
    let text = format!("hello{}", " hello".repeat(tokens as usize - 1));
    assert_eq!(count_tokens(server, key, &text, "gpt-4").await, tokens);
    text
}

async fn compress(server: &Server, key: &str, context: &str) {
    let resp = client().post(server.url("/compress")).bearer_auth(key).json(&json!({"context": context})).send();
    let resp = resp.await.unwrap();
    assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
}

async fn each_threshold_alerts_once_signed_across_a_crash(backend: Backend) {
    let (receiver, url) = start_receiver().await;
    let mut server = start_server(&backend, None, &url);
    let flags = ["--monthly-tokens", "100", "--requests-per-second", "100", "--burst", "100"];
    let key = server.create_key_with("alerted", "free", &flags);

    // 85 of 100 tokens: the 80% alert is queued with the charge; the receiver refuses it.
    compress(&server, &key, &context_of(&server, &key, 85).await).await;
    until("a refused first attempt and a retry", || receiver.attempts.load(Ordering::SeqCst) >= 2).await;
    server.signal("KILL");

    // After a restart the queued alert is delivered, once the receiver takes it.
    receiver.refusing.store(false, Ordering::SeqCst);
    let home = server.home.clone();
    let server = start_server(&backend, Some(&home), &url);
    until("the 80% alert", || !receiver.accepted.lock().unwrap().is_empty()).await;

    // The last 15 tokens: the 100% alert.
    compress(&server, &key, &context_of(&server, &key, 15).await).await;
    let has_both = || {
        let seen = receiver.accepted.lock().unwrap();
        let thresholds: std::collections::BTreeSet<u64> = seen
            .iter()
            .map(|(b, _)| serde_json::from_str::<Value>(b).unwrap()["threshold"].as_u64().unwrap())
            .collect();
        thresholds.len() == 2
    };
    until("the 100% alert", has_both).await;

    let accepted = receiver.accepted.lock().unwrap().clone();
    let mut events = std::collections::BTreeMap::new();
    for (body, signature) in &accepted {
        assert_eq!(signature, &signed(body), "{body}");
        let v: Value = serde_json::from_str(body).unwrap();
        assert_eq!(
            (v["key_id"].as_str(), v["user_id"].as_str(), v["tier"].as_str(), v["limit"].as_u64()),
            (Some(&key[..16]), Some("alerted"), Some("free"), Some(100)),
            "{v}"
        );
        assert_eq!(v["period"].as_str().unwrap(), jiff::Timestamp::now().strftime("%Y-%m").to_string());
        // At least once: a repeat carries the same event id.
        let first = events.entry(v["threshold"].as_u64().unwrap()).or_insert_with(|| v.clone());
        assert_eq!(first["event_id"], v["event_id"]);
    }
    assert_eq!(events[&80]["used"], 85);
    assert_eq!(events[&100]["used"], 100);
    assert_ne!(events[&80]["event_id"], events[&100]["event_id"]);

    // Once per key and period: the outbox holds one row per threshold, both delivered. The
    // server marks a row delivered after the receiver's answer, so a loaded machine may show
    // the mark a moment after the receiver saw the body.
    let mut db = server.db("usage_records").await;
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let rows: Vec<(i64, Option<String>)> =
            sqlx::query_as("SELECT threshold, delivered_at FROM alert_outbox ORDER BY threshold")
                .fetch_all(&mut db)
                .await
                .unwrap();
        assert_eq!(rows.len(), 2, "{rows:?}");
        if rows.iter().all(|(_, delivered)| delivered.is_some()) {
            break;
        }
        assert!(Instant::now() < deadline, "never marked delivered: {rows:?}");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    assert!(!server.logs().contains(SECRET));
    let metrics = client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap();
    assert!(metrics.contains(r#"omnimemory_quota_alert_attempts_total{outcome="delivered"}"#), "{metrics}");
}

/// A reset and a second climb in the same month alert no more: one alert per threshold.
async fn a_threshold_alerts_once_per_month_even_after_a_reset(backend: Backend) {
    let (_receiver, url) = start_receiver().await;
    let server = start_server(&backend, None, &url);
    // Enterprise: no token bucket in the way of the second climb.
    let key = server.create_key_with("resetting", "enterprise", &["--monthly-tokens", "100"]);
    let context = context_of(&server, &key, 85).await;
    compress(&server, &key, &context).await;
    let reset = server.cli(&["admin", "reset-usage", "--key", &key, "--yes"], None);
    assert_eq!(reset.code, 0, "{}", reset.stdout);
    // The reset reaches the running server's ledger within its 250 ms look.
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let resp = client().post(server.url("/compress")).bearer_auth(&key).json(&json!({"context": context})).send();
        let status = resp.await.unwrap().status();
        if status == 200 {
            break;
        }
        assert_eq!(status, 402);
        assert!(Instant::now() < deadline, "the reset never reached the server");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut db = server.db("usage_records").await;
    let rows: Vec<(i64, i64)> = sqlx::query_as("SELECT threshold, COUNT(*) FROM alert_outbox GROUP BY threshold")
        .fetch_all(&mut db)
        .await
        .unwrap();
    assert_eq!(rows, vec![(80, 1)]);
}

#[tokio::test]
async fn an_https_receiver_gets_its_alert_when_its_ca_is_trusted() {
    let (receiver, url) = start_https_receiver().await;
    let ca = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/it/fixtures/webhook-ca.pem");
    let server = Server::builder(&Backend::Sqlite)
        .env("OMNIMEMORY_WEBHOOK_URL", &url)
        .env("OMNIMEMORY_WEBHOOK_SECRET", SECRET)
        .env("OMNIMEMORY_WEBHOOK_CA_FILE", ca.to_str().unwrap())
        .start();
    let key = server.create_key_with("tls", "enterprise", &["--monthly-tokens", "100"]);
    compress(&server, &key, &context_of(&server, &key, 85).await).await;
    until("the 80% alert over https", || !receiver.accepted.lock().unwrap().is_empty()).await;
    let (body, signature) = receiver.accepted.lock().unwrap()[0].clone();
    assert_eq!(signature, signed(&body));
    assert_eq!(serde_json::from_str::<Value>(&body).unwrap()["threshold"], 80);
}

#[tokio::test]
async fn an_https_receiver_with_an_untrusted_certificate_gets_nothing() {
    let (receiver, url) = start_https_receiver().await;
    // No CA file: the test CA is not among the system's roots, so the handshake fails.
    let server = start_server(&Backend::Sqlite, None, &url);
    let key = server.create_key_with("untrusted", "enterprise", &["--monthly-tokens", "100"]);
    compress(&server, &key, &context_of(&server, &key, 85).await).await;
    let metrics = || async { client().get(server.url("/metrics")).send().await.unwrap().text().await.unwrap() };
    let deadline = Instant::now() + Duration::from_secs(30);
    while !metrics().await.contains(r#"omnimemory_quota_alert_attempts_total{outcome="failed"}"#) {
        assert!(Instant::now() < deadline, "no failed attempt");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(receiver.attempts.load(Ordering::SeqCst), 0);
}

#[test]
fn a_webhook_ca_file_that_is_not_pem_stops_serve_with_a_clear_error() {
    let dir = std::env::temp_dir().join(format!("om-ca-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let bad = dir.join("ca.pem");
    std::fs::write(&bad, "not a certificate").unwrap();
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_omnimemory"))
        .args(["serve", "--port", "0"])
        .env("OMNIMEMORY_HOME", &dir)
        .env("OMNIMEMORY_WEBHOOK_URL", "https://127.0.0.1:9/hook")
        .env("OMNIMEMORY_WEBHOOK_SECRET", SECRET)
        .env("OMNIMEMORY_WEBHOOK_CA_FILE", &bad)
        .output()
        .unwrap();
    let _ = std::fs::remove_dir_all(&dir);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("OMNIMEMORY_WEBHOOK_CA_FILE") && err.contains("PEM"), "{err}");
}

crate::on_both_backends! {
    each_threshold_alerts_once_signed_across_a_crash,
    a_threshold_alerts_once_per_month_even_after_a_reset,
}
