//! What the original service's clients call and read: `/compress/content-aware` and the
//! `message` of a created key.

use serde_json::json;

use crate::harness::{ADMIN_KEY, Backend, Server, client, error_code, get_json};

#[tokio::test]
async fn compress_content_aware_answers_and_charges_as_compress_does() {
    let server = Server::start(&Backend::Sqlite);
    let key = server.create_key("legacy-client", "pro");
    let context = "The deploy failed at 14:02 because the migration locked the users table. \
                   The on-call engineer rolled back at 14:09. Nobody was paged for the cache warning. \
                   A fix adds a lock timeout to every migration. The cache warning was a false alarm.";
    // As the original SDK sends it: nulls for the fields it does not set.
    let body = json!({"context": context, "query": "Why did the deploy fail?", "target_compression": 0.5,
                      "model_id": "gpt-4", "quality_threshold": null, "file_path": null, "memory_layer": null});
    let mut answers = Vec::new();
    for path in ["/compress", "/compress/content-aware"] {
        let resp = client().post(server.url(path)).bearer_auth(&key).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{path}");
        assert!(resp.headers().contains_key("x-ratelimit-remaining"), "{path}");
        answers.push(resp.json::<serde_json::Value>().await.unwrap());
    }
    assert_eq!(answers[0], answers[1]);
    assert!(answers[1]["compressed_text"].as_str().unwrap().contains("migration locked the users table"));

    // Both are compressions on the key's bill.
    let stats = get_json(server.url("/usage/stats"), &key).await;
    let original = answers[0]["original_tokens"].as_u64().unwrap();
    assert_eq!(stats["stats"]["total_compressions"].as_u64(), Some(2), "{stats}");
    assert_eq!(stats["stats"]["total_original_tokens"].as_u64(), Some(2 * original), "{stats}");

    // And its refusals are /compress's.
    let no_key = client().post(server.url("/compress/content-aware")).json(&body).send().await.unwrap();
    assert_eq!(error_code(no_key, 401).await, "missing_api_key");
    let everything = json!({"context": context, "target_compression": 1.0});
    let refused = client().post(server.url("/compress/content-aware")).bearer_auth(&key).json(&everything).send();
    assert_eq!(error_code(refused.await.unwrap(), 422).await, "invalid_request");
}

#[test]
fn the_openapi_document_describes_the_alias_as_compress_itself() {
    let doc: serde_json::Value = serde_json::from_str(include_str!("../../docs/openapi.json")).unwrap();
    let mut compress = doc["paths"]["/compress"]["post"].clone();
    let mut alias = doc["paths"]["/compress/content-aware"]["post"].clone();
    let description = alias["description"].as_str().unwrap_or_default().to_string();
    assert!(description.contains("POST /compress"), "{description}");
    for op in [&mut compress, &mut alias] {
        let op = op.as_object_mut().unwrap();
        op.remove("summary");
        op.remove("description");
    }
    // Same body, same parameters, same answers: an edit to one that misses the other fails here.
    assert_eq!(compress, alias);
}

#[tokio::test]
async fn a_created_key_comes_with_the_message_the_original_clients_print() {
    let server = Server::start(&Backend::Sqlite);
    let resp = client()
        .post(server.url("/admin/api-key"))
        .header("X-Admin-Key", ADMIN_KEY)
        .json(&json!({"user_id": "migrated", "tier": "free"}))
        .send()
        .await
        .unwrap();
    assert_eq!(resp.status(), 201);
    let created: serde_json::Value = resp.json().await.unwrap();
    let message = created["message"].as_str().unwrap_or_else(|| panic!("no message in {created}"));
    assert!(message.contains("shown only once"), "{message}");
    let key = created["api_key"].as_str().unwrap();
    let quota = get_json(server.url("/usage/quota"), key).await;
    assert_eq!(quota["tier"], "free", "{quota}");
}
