//! Each key's last successful use (time and model): seen at once by `/usage/quota` on the
//! instance that served it, written to storage at most once a minute per key (not once per
//! request) and at shutdown, and shown by `admin verify-key` and `admin list-users`.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Backend, Server, client, get_json};

fn verify(server: &Server, key: &str) -> Value {
    let out = server.cli(&["admin", "verify-key", key, "--json"], None);
    serde_json::from_str(&out.stdout).unwrap_or_else(|e| panic!("{e}: {}", out.stdout))
}

async fn a_keys_last_use_is_shown_and_written_at_most_once_a_minute(backend: Backend) {
    let mut server = Server::start(&backend);
    let key = server.create_key("last-use", "pro");
    let never = verify(&server, &key);
    assert!(never["last_used_at"].is_null() && never["last_used_model"].is_null(), "{never}");
    assert!(get_json(server.url("/usage/quota"), &key).await["last_used_at"].is_null());
    let c = client();
    let body = json!({"context": "The launch moved to March 3. Budget stays at 2 million.", "model_id": "gpt-4o"});
    assert_eq!(c.post(server.url("/compress")).bearer_auth(&key).json(&body).send().await.unwrap().status(), 200);
    let quota = get_json(server.url("/usage/quota"), &key).await;
    assert_eq!(quota["last_used_model"], "gpt-4o", "{quota}");
    let first_use: jiff::Timestamp = quota["last_used_at"].as_str().unwrap().parse().unwrap();

    // The first use of a key is written within moments.
    let deadline = Instant::now() + Duration::from_secs(20);
    let stored = loop {
        let v = verify(&server, &key);
        if !v["last_used_at"].is_null() {
            break v;
        }
        assert!(Instant::now() < deadline, "the first use was never written: {v}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    assert_eq!(stored["last_used_model"], "gpt-4o");
    assert_eq!(stored["last_used_at"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap(), first_use);
    let listed: Value = serde_json::from_str(&server.cli(&["admin", "list-users", "--json"], None).stdout).unwrap();
    assert_eq!(listed["keys"][0]["last_used_model"], "gpt-4o", "{listed}");
    let text = server.cli(&["admin", "list-users"], None).stdout;
    assert!(text.contains("Last used") && text.contains("(gpt-4o)"), "{text}");
    assert!(server.cli(&["admin", "verify-key", &key], None).stdout.contains("UTC (gpt-4o)"));

    // More uses: this instance sees each, storage is not written again within the minute.
    for _ in 0..5 {
        let body = json!({"text": "count me", "model_id": "claude-3-5-sonnet"});
        let resp = c.post(server.url("/count-tokens")).bearer_auth(&key).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    let quota = get_json(server.url("/usage/quota"), &key).await;
    assert_eq!(quota["last_used_model"], "claude-3-5-sonnet");
    let latest = quota["last_used_at"].clone();
    assert_eq!(verify(&server, &key)["last_used_model"], "gpt-4o");
    // The operator's list says the same: the latest use, later than the latest usage record.
    let keys: Value = c
        .get(server.url("/admin/keys"))
        .header("x-admin-key", crate::harness::ADMIN_KEY)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let row = keys["keys"].as_array().unwrap().iter().find(|k| k["key_id"] == key[..15]).unwrap();
    assert_eq!((&row["last_used_at"], row["last_used_model"].as_str()), (&latest, Some("claude-3-5-sonnet")), "{row}");

    // A clean stop writes what is left.
    assert!(server.signal("TERM").success());
    let after = verify(&server, &key);
    assert_eq!(
        (after["last_used_model"].as_str(), after["last_used_at"].as_str()),
        (Some("claude-3-5-sonnet"), latest.as_str())
    );
}

crate::on_both_backends! {
    a_keys_last_use_is_shown_and_written_at_most_once_a_minute,
}
