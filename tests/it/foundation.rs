//! Service foundation: health, authentication, the admin endpoint, the error shape, secrets.

use std::time::Duration;

use serde_json::json;

use sqlx::Executor as _;

use crate::harness::{ADMIN_KEY, Backend, InProcess, Server, client, error_code};

async fn serve_creates_the_data_folder_and_reports_health(backend: Backend) {
    let server = Server::start(&backend);
    assert!(!server.base.ends_with(":0"));
    let resp = client().get(server.url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!(body["status"], "healthy");
    if let Backend::Sqlite = backend {
        for file in ["api_keys.db", "usage.db"] {
            assert!(server.home.join(file).exists(), "{file} missing");
        }
    }
    let logs = server.logs();
    let line = logs.lines().find(|l| l.contains("listening on")).unwrap();
    assert!(line.contains(&server.base) && line.contains(&server.home.display().to_string()), "{line}");
}

async fn health_is_503_with_the_reason_while_storage_does_not_answer(backend: Backend) {
    let server = Server::start(&backend);
    // Another process holds the write lock (SQLite) or an exclusive table lock (PostgreSQL).
    let mut blocker = server.db("usage_records").await;
    match backend {
        Backend::Sqlite => blocker.execute("BEGIN IMMEDIATE").await.unwrap(),
        Backend::Postgres { .. } => {
            blocker.execute("BEGIN").await.unwrap();
            blocker.execute("LOCK TABLE usage_records IN ACCESS EXCLUSIVE MODE").await.unwrap()
        }
    };

    let resp = client().get(server.url("/health")).send().await.unwrap();
    let status = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.unwrap();
    assert_eq!((status, body["code"].as_str()), (503, Some("storage_unavailable")), "{body}");
    assert!(body["detail"].as_str().unwrap().contains("Storage unavailable"), "{body}");

    blocker.execute("ROLLBACK").await.unwrap();
    let resp = client().get(server.url("/health")).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    // The failed probe left nothing stuck behind: requests that write still go through.
    let key = server.create_key("after-outage", "pro");
    let resp = client().post(server.url("/compress")).bearer_auth(&key).json(&json!({"context": "still works"})).send();
    assert_eq!(resp.await.unwrap().status(), 200);
}

async fn sigterm_and_ctrl_c_stop_the_server_cleanly(backend: Backend) {
    for signal in ["TERM", "INT"] {
        let mut server = Server::start(&backend);
        assert_eq!(client().get(server.url("/health")).send().await.unwrap().status(), 200);
        let status = server.signal(signal);
        assert!(status.success(), "SIG{signal}: exit status {status:?}");
        assert!(server.logs().contains("stopped"), "{}", server.logs());
    }
}

async fn every_kind_of_bad_credential_is_401_with_its_own_code(backend: Backend) {
    let server = Server::start(&backend);
    let key = server.create_key("alice", "pro");
    let url = server.url("/count-tokens");
    let body = json!({"text": "hello world"});
    let c = client();

    let cases: Vec<(Option<String>, &str)> = vec![
        (None, "missing_api_key"),
        (Some(format!("Basic {key}")), "missing_api_key"),
        (Some("Bearer".into()), "missing_api_key"),
        (Some("Bearer not-a-key".into()), "invalid_api_key"),
        (Some(format!("Bearer om_pro_{}", "A".repeat(43))), "invalid_api_key"),
        (Some(format!("Bearer {}x", key)), "invalid_api_key"),
    ];
    for (header, code) in cases {
        let mut req = c.post(&url).json(&body);
        if let Some(h) = &header {
            req = req.header("Authorization", h);
        }
        let resp = req.send().await.unwrap();
        assert_eq!(resp.headers()["www-authenticate"], "Bearer", "{header:?}");
        assert_eq!(error_code(resp, 401).await, code, "{header:?}");
    }
    let ok = c.post(&url).bearer_auth(&key).json(&body).send().await.unwrap();
    assert_eq!(ok.status(), 200);
}

async fn a_deactivated_key_is_refused_within_a_second_and_accepted_again_after_activation(backend: Backend) {
    let server = Server::start(&backend);
    let key = server.create_key("bob", "pro");
    let c = client();
    let count = || c.post(server.url("/count-tokens")).bearer_auth(&key).json(&json!({"text": "hi"})).send();
    // The first answer after `changed` with a status other than `before`, polled for at most a second.
    let within_a_second = |before: u16| async move {
        let changed = std::time::Instant::now();
        loop {
            let resp = count().await.unwrap();
            if resp.status() != before || changed.elapsed() > Duration::from_secs(1) {
                return resp;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    };

    assert_eq!(count().await.unwrap().status(), 200);
    assert_eq!(server.cli(&["admin", "deactivate-key", &key], None).code, 0);
    assert_eq!(error_code(within_a_second(200).await, 401).await, "api_key_deactivated");
    assert_eq!(server.cli(&["admin", "activate-key", &key], None).code, 0);
    assert_eq!(within_a_second(401).await.status(), 200);
}

async fn keys_are_found_by_an_index_not_a_scan(backend: Backend) {
    let server = Server::start(&backend);
    server.create_key("indexed", "pro");
    let mut db = server.db("api_keys").await;
    let plan: Vec<String> = match backend {
        Backend::Sqlite => {
            let rows: Vec<(i64, i64, i64, String)> =
                sqlx::query_as("EXPLAIN QUERY PLAN SELECT id FROM api_keys WHERE key_hash = x'00'")
                    .fetch_all(&mut db)
                    .await
                    .unwrap();
            rows.into_iter().map(|r| r.3).collect()
        }
        Backend::Postgres { .. } => {
            db.execute("SET enable_seqscan = off").await.unwrap();
            let rows: Vec<(String,)> = sqlx::query_as("EXPLAIN SELECT id FROM api_keys WHERE key_hash = '\\x00'")
                .fetch_all(&mut db)
                .await
                .unwrap();
            rows.into_iter().map(|r| r.0).collect()
        }
    };
    let plan = plan.join("\n");
    assert!(plan.contains("INDEX") || plan.contains("Index"), "{plan}");
    assert!(!plan.contains("SCAN api_keys") && !plan.contains("Seq Scan"), "{plan}");
}

async fn an_expired_key_is_refused(backend: Backend) {
    let app = InProcess::start(&backend, "2026-11-27T10:00:00Z", "").await;
    let key = app.key("carol", "pro", &["--expires-in-days", "1"]).await;
    let count = || client().post(app.url("/count-tokens")).bearer_auth(&key).json(&json!({"text": "x"})).send();
    assert_eq!(count().await.unwrap().status(), 200);
    app.clock.advance(jiff::SignedDuration::from_hours(24) - jiff::SignedDuration::from_secs(1));
    assert_eq!(count().await.unwrap().status(), 200);
    app.clock.advance(jiff::SignedDuration::from_secs(1));
    assert_eq!(error_code(count().await.unwrap(), 401).await, "api_key_expired");
    let verified = app.admin(&["verify-key", &key]).await;
    assert_eq!(verified["status"], "expired", "{verified}");
}

async fn admin_endpoint_is_403_while_no_admin_key_is_configured(backend: Backend) {
    let server = Server::builder(&backend).start();
    let resp = client()
        .post(server.url("/admin/api-key"))
        .header("X-Admin-Key", "")
        .json(&json!({"user_id": "u", "tier": "pro", "admin_key": ""}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(resp, 403).await, "admin_forbidden");
}

async fn admin_endpoint_creates_working_keys_and_never_logs_the_admin_key(backend: Backend) {
    let server = Server::start(&backend);
    let c = client();
    let create = |admin_header: Option<&str>, body: serde_json::Value| {
        let mut req = c.post(server.url("/admin/api-key")).json(&body);
        if let Some(h) = admin_header {
            req = req.header("X-Admin-Key", h);
        }
        req.send()
    };
    let body = json!({"user_id": "dave", "tier": "enterprise", "email": "d@corp.io", "company": "Corp"});

    let wrong = create(Some("wrong"), body.clone()).await.unwrap();
    assert_eq!(error_code(wrong, 403).await, "admin_forbidden");
    let none = create(None, body.clone()).await.unwrap();
    assert_eq!(error_code(none, 403).await, "admin_forbidden");

    let resp = create(Some(ADMIN_KEY), body.clone()).await.unwrap();
    assert_eq!(resp.status(), 201);
    let created: serde_json::Value = resp.json().await.unwrap();
    let key = created["api_key"].as_str().unwrap().to_string();
    assert!(key.starts_with("om_enterprise_"), "{created}");
    assert_eq!((created["email"].as_str(), created["company"].as_str()), (Some("d@corp.io"), Some("Corp")));

    let mut in_body = body.clone();
    in_body["admin_key"] = json!(ADMIN_KEY);
    in_body["expires_in_days"] = json!(30);
    let expiring: serde_json::Value = create(None, in_body).await.unwrap().json().await.unwrap();
    assert!(expiring["expires_at"].is_string() && created["expires_at"].is_null(), "{expiring}");

    let bad_tier = create(Some(ADMIN_KEY), json!({"user_id": "e", "tier": "gold"})).await.unwrap();
    assert_eq!(error_code(bad_tier, 422).await, "invalid_request");
    let no_user = create(Some(ADMIN_KEY), json!({"tier": "pro"})).await.unwrap();
    assert_eq!(error_code(no_user, 422).await, "invalid_request");

    let used = c.post(server.url("/count-tokens")).bearer_auth(&key).json(&json!({"text": "hi"})).send().await;
    assert_eq!(used.unwrap().status(), 200);
    let listed = server.cli(&["admin", "list-users", "--json"], None);
    let listed: serde_json::Value = serde_json::from_str(&listed.stdout).unwrap();
    let dave = listed["keys"].as_array().unwrap().iter().find(|k| k["user_id"] == "dave").unwrap();
    assert_eq!((dave["email"].as_str(), dave["company"].as_str()), (Some("d@corp.io"), Some("Corp")));
    assert!(!server.logs().contains(ADMIN_KEY));
}

async fn every_error_has_the_same_shape(backend: Backend) {
    let server = Server::builder(&backend)
        .env("OMNIMEMORY_ADMIN_KEY", ADMIN_KEY)
        .env("OMNIMEMORY_MAX_BODY_BYTES", "2048")
        .start();
    let key = server.create_key("erin", "pro");
    let c = client();
    let url = server.url("/count-tokens");

    let malformed = c.post(&url).bearer_auth(&key).header("content-type", "application/json").body("{\"text\": ");
    assert_eq!(error_code(malformed.send().await.unwrap(), 400).await, "invalid_json");
    let wrong_type = c.post(&url).bearer_auth(&key).header("content-type", "text/plain").body("{\"text\": \"x\"}");
    assert_eq!(error_code(wrong_type.send().await.unwrap(), 415).await, "unsupported_media_type");
    let missing_field = c.post(&url).bearer_auth(&key).json(&json!({"txt": "x"}));
    assert_eq!(error_code(missing_field.send().await.unwrap(), 422).await, "invalid_request");
    let too_big = c.post(&url).bearer_auth(&key).json(&json!({"text": "x".repeat(4096)}));
    assert_eq!(error_code(too_big.send().await.unwrap(), 413).await, "payload_too_large");
    let unknown = c.get(server.url("/nope")).send().await.unwrap();
    assert_eq!(error_code(unknown, 404).await, "not_found");
    let wrong_method = c.get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(error_code(wrong_method, 405).await, "method_not_allowed");
    let bad_days = c.get(server.url("/usage/stats?days=zero")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(error_code(bad_days, 422).await, "invalid_request");
    let bad_target = c
        .post(server.url("/compress"))
        .bearer_auth(&key)
        .json(&json!({"context": "some text", "target_compression": 1.5}))
        .send()
        .await
        .unwrap();
    assert_eq!(error_code(bad_target, 422).await, "invalid_request");
    // The largest double below 1 is a valid target, read exactly (not rounded up to 1).
    let almost_all = c
        .post(server.url("/compress"))
        .bearer_auth(&key)
        .json(&json!({"context": "some text", "target_compression": 0.9999999999999999}))
        .send()
        .await
        .unwrap();
    assert_eq!(almost_all.status(), 200);
    for bad in [
        json!({"context": "x", "tool_id": "t".repeat(300)}),
        json!({"context": "x", "metadata": {"team": 7}}),
        json!({"context": "x", "target_tokens": -5}),
        json!({"context": 12}),
    ] {
        let resp = c.post(server.url("/compress")).bearer_auth(&key).json(&bad).send().await.unwrap();
        assert_eq!(error_code(resp, 422).await, "invalid_request", "{bad}");
    }
}

async fn the_secret_never_reaches_the_data_folder_or_the_logs(backend: Backend) {
    let mut server = Server::start(&backend);
    let c = client();
    let from_cli = server.create_key("frank", "pro");
    let resp = c
        .post(server.url("/admin/api-key"))
        .header("X-Admin-Key", ADMIN_KEY)
        .json(&json!({"user_id": "gina", "tier": "free"}))
        .send()
        .await
        .unwrap();
    let from_http = resp.json::<serde_json::Value>().await.unwrap()["api_key"].as_str().unwrap().to_string();
    for key in [&from_cli, &from_http] {
        let resp = c.post(server.url("/compress")).bearer_auth(key).json(&json!({"context": "a b c"})).send().await;
        assert_eq!(resp.unwrap().status(), 200);
        let verify = server.cli(&["admin", "verify-key", key], None);
        assert_eq!(verify.code, 0);
    }
    server.signal("TERM");
    tokio::time::sleep(Duration::from_millis(100)).await;

    let keys = [&from_cli, &from_http];
    let leaks = |bytes: &[u8]| {
        keys.iter().any(|k| contains(bytes, k.as_bytes()) || contains(bytes, &k.as_bytes()[k.len() - 43..]))
    };
    match &backend {
        Backend::Sqlite => {
            let mut files = 0;
            for entry in std::fs::read_dir(&server.home).unwrap() {
                let path = entry.unwrap().path();
                assert!(!leaks(&std::fs::read(&path).unwrap()), "{path:?}");
                files += 1;
            }
            assert!(files >= 2);
        }
        Backend::Postgres { .. } => {
            let mut db = server.db("api_keys").await;
            for table in ["api_keys", "usage_records", "quota_ledger", "quota_resets", "rate_buckets"] {
                let rows: Vec<(String,)> =
                    sqlx::query_as(sqlx::AssertSqlSafe(format!("SELECT CAST(t AS TEXT) FROM {table} t")))
                        .fetch_all(&mut db)
                        .await
                        .unwrap();
                assert!(rows.iter().all(|(row,)| !leaks(row.as_bytes())), "{table}");
            }
        }
    }
    let logs = server.logs();
    assert!(!logs.contains(&from_cli) && !logs.contains(&from_http));
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

crate::on_both_backends! {
    keys_are_found_by_an_index_not_a_scan,
    serve_creates_the_data_folder_and_reports_health,
    health_is_503_with_the_reason_while_storage_does_not_answer,
    sigterm_and_ctrl_c_stop_the_server_cleanly,
    every_kind_of_bad_credential_is_401_with_its_own_code,
    a_deactivated_key_is_refused_within_a_second_and_accepted_again_after_activation,
    an_expired_key_is_refused,
    admin_endpoint_is_403_while_no_admin_key_is_configured,
    admin_endpoint_creates_working_keys_and_never_logs_the_admin_key,
    every_error_has_the_same_shape,
    the_secret_never_reaches_the_data_folder_or_the_logs,
}
