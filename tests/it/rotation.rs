//! Key rotation: a new secret for the same key (usage, quota and limits carry over); the old
//! secret works for the grace period, then is refused with `api_key_rotated`.

use serde_json::{Value, json};

use crate::harness::{ADMIN_KEY, Backend, Server, client, error_code, get_json};

fn json_of(out: &crate::harness::CliOutput) -> Value {
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {} {}", out.stdout, out.stderr))
}

async fn compress(server: &Server, key: &str) -> reqwest::Response {
    let body = json!({"context": "The launch moved to March 3. Budget stays at 2 million. The team grows by four."});
    client().post(server.url("/compress")).bearer_auth(key).json(&body).send().await.unwrap()
}

async fn a_rotated_key_keeps_its_usage_and_the_old_secret_works_for_the_grace_period(backend: Backend) {
    let server = Server::start(&backend);
    let first = server.create_key_with("rotating", "pro", &["--monthly-tokens", "50000"]);
    assert_eq!(compress(&server, &first).await.status(), 200);

    // The CLI, default grace: both secrets work; one key, one history, one quota.
    let out = server.cli(&["admin", "rotate-key", &first[..15], "--json"], None);
    assert_eq!(out.code, 0, "{} {}", out.stdout, out.stderr);
    let rotated = json_of(&out);
    let second = rotated["api_key"].as_str().unwrap().to_string();
    assert_ne!(second, first);
    assert_eq!((rotated["key_id"].as_str(), rotated["grace_hours"].as_u64()), (Some(&first[..15]), Some(24)));
    let until: jiff::Timestamp = rotated["previous_key_valid_until"].as_str().unwrap().parse().unwrap();
    let hours = (until - jiff::Timestamp::now()).as_secs_f64() / 3600.0;
    assert!((23.9..=24.0).contains(&hours), "{hours}");
    assert_eq!(compress(&server, &second).await.status(), 200);
    assert_eq!(compress(&server, &first).await.status(), 200);
    let stats = get_json(server.url("/usage/stats?days=1"), &second).await;
    assert_eq!(stats["stats"]["total_compressions"], 3, "{stats}");
    let quota = get_json(server.url("/usage/quota"), &second).await;
    assert_eq!(quota["quota"]["usage"]["monthly_limit"], 50000, "{quota}");
    assert_eq!(quota["key_id"].as_str(), Some(&first[..15]));
    let text = server.cli(&["admin", "rotate-key", &second, "--grace-hours", "5"], None);
    assert!(text.stdout.contains("shown only once") && text.stdout.contains("API Key:"), "{}", text.stdout);
    let third = text.stdout.lines().find_map(|l| l.trim().strip_prefix("API Key:")).unwrap().trim().to_string();

    // The admin API, no grace: the previous secret is refused at once, and so is the first
    // (its 24 hours do not outlive the new rotation).
    let c = client();
    let url = server.url(&format!("/admin/api-key/{}/rotate?grace_hours=0", &first[..15]));
    let resp = c.post(&url).header("x-admin-key", ADMIN_KEY).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let rotated: Value = resp.json().await.unwrap();
    let fourth = rotated["api_key"].as_str().unwrap().to_string();
    assert_eq!(rotated["previous_key_valid_until"], rotated["rotated_at"]);
    for old in [&first, &second, &third] {
        assert_eq!(error_code(compress(&server, old).await, 401).await, "api_key_rotated");
    }
    assert_eq!(compress(&server, &fourth).await.status(), 200);
    let stats = get_json(server.url("/usage/stats?days=1"), &fourth).await;
    assert_eq!(stats["stats"]["total_compressions"], 4, "{stats}");
    let verified = json_of(&server.cli(&["admin", "verify-key", &fourth, "--json"], None));
    assert_eq!((verified["valid"].as_bool(), verified["key_id"].as_str()), (Some(true), Some(&first[..15])));
    // A secret that was never issued is still just invalid.
    let unknown = format!("{}{}", &first[..15], "A".repeat(35));
    assert_eq!(error_code(compress(&server, &unknown).await, 401).await, "invalid_api_key");

    // Refusals of the endpoint.
    let post = |path: String, admin: &'static str| c.post(server.url(&path)).header("x-admin-key", admin).send();
    let none = post("/admin/api-key/om_pro_NoSuchKy/rotate".into(), ADMIN_KEY).await.unwrap();
    assert_eq!(error_code(none, 404).await, "key_not_found");
    let bad = post(format!("/admin/api-key/{}/rotate?grace_hours=-1", &first[..15]), ADMIN_KEY).await.unwrap();
    assert_eq!(error_code(bad, 422).await, "invalid_request");
    let wrong = post(format!("/admin/api-key/{}/rotate", &first[..15]), "not-the-admin-key-0123456789abcdef");
    assert_eq!(error_code(wrong.await.unwrap(), 403).await, "admin_forbidden");
    let help = server.cli(&["admin", "rotate-key", "--help"], None);
    assert!(help.stdout.contains("Examples:") && help.stdout.contains("--grace-hours 0"), "{}", help.stdout);
    assert_eq!(server.cli(&["admin", "rotate-key", &fourth, "--grace-hours", "9000"], None).code, 2);
    assert!(!server.logs().contains(&fourth[15..]), "a secret reached the log");
}

async fn the_old_secret_is_refused_once_its_grace_period_is_over(backend: Backend) {
    let server = Server::start(&backend);
    let old = server.create_key("grace", "free");
    let rotated = json_of(&server.cli(&["admin", "rotate-key", &old, "--grace-hours", "1", "--json"], None));
    let new = rotated["api_key"].as_str().unwrap();
    // The hour passes (in storage: the server has not seen the old secret since the rotation).
    let mut db = server.db("api_keys").await;
    let past = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1)).strftime("%Y-%m-%dT%H:%M:%S%.3fZ");
    sqlx::query("UPDATE retired_keys SET valid_until = $1").bind(past.to_string()).execute(&mut db).await.unwrap();
    let resp = client().get(server.url("/usage/quota")).bearer_auth(&old).send().await.unwrap();
    assert_eq!(resp.headers()["www-authenticate"], "Bearer");
    assert_eq!(error_code(resp, 401).await, "api_key_rotated");
    let quota = get_json(server.url("/usage/quota"), new).await;
    assert_eq!(quota["authenticated"], true);
}

/// A data folder (or database) made before rotation and last use existed is migrated forward
/// when opened.
async fn a_data_folder_from_before_rotation_is_upgraded(backend: Backend) {
    use sqlx::Executor as _;
    let env = crate::harness::TestEnv::new(backend.clone());
    let created = json_of(&env.cli(&["admin", "create-key", "--user-id", "old", "--tier", "pro", "--json"], None));
    let mut db = backend.connect(&env.home, "api_keys").await;
    let downgrade = match backend {
        Backend::Sqlite => {
            "DROP TABLE retired_keys; ALTER TABLE api_keys DROP COLUMN last_used_at;
             ALTER TABLE api_keys DROP COLUMN last_used_model; PRAGMA user_version = 2"
        }
        Backend::Postgres { .. } => {
            // One database: the quota-alert outbox came after them.
            "DROP TABLE retired_keys; ALTER TABLE api_keys DROP COLUMN last_used_at, DROP COLUMN last_used_model;
             DROP TABLE alert_outbox; UPDATE omnimemory_schema SET version = version - 3"
        }
    };
    db.execute(downgrade).await.unwrap();
    drop(db);
    let out = env.cli(&["admin", "rotate-key", created["key_id"].as_str().unwrap(), "--json"], None);
    assert_eq!(out.code, 0, "{} {}", out.stdout, out.stderr);
    let server = Server::builder(&backend).home(&env.home).start();
    let old = created["api_key"].as_str().unwrap();
    assert_eq!(compress(&server, old).await.status(), 200);
    assert_eq!(compress(&server, json_of(&out)["api_key"].as_str().unwrap()).await.status(), 200);
    let quota = crate::harness::get_json(server.url("/usage/quota"), old).await;
    assert!(quota["last_used_at"].is_string(), "{quota}");
}

crate::on_both_backends! {
    a_data_folder_from_before_rotation_is_upgraded,
    a_rotated_key_keeps_its_usage_and_the_old_secret_works_for_the_grace_period,
    the_old_secret_is_refused_once_its_grace_period_is_over,
}
