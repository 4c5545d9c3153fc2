//! The OpenAPI document against the server's real answers: every answer a client can provoke
//! on each route has its status listed for that route (or, for the refusals of the HTTP layer,
//! under `default`), its error `code` named in that status's description, and a body that the
//! listed schema accepts. The schemas are checked structurally (`$ref`, `type`, `const`, `enum`,
//! `required`, `properties`, `items`, `additionalProperties`, `oneOf`), which is all the
//! document uses.

use std::collections::BTreeSet;
use std::time::Duration;

use serde_json::{Value, json};
use tokio::io::{AsyncReadExt as _, AsyncWriteExt as _};

use crate::harness::{ADMIN_KEY, Backend, Server, client};

/// The codes the HTTP layer may give any route before its handler runs (`default` lists them).
const HTTP_LAYER_CODES: &[&str] = &[
    "malformed_request",
    "method_not_allowed",
    "payload_too_large",
    "uri_too_long",
    "unsupported_media_type",
    "headers_too_large",
    "internal_error",
];

/// One answer: the route it was sent to (as the document names it), and what came back.
struct Answer {
    method: &'static str,
    route: &'static str,
    status: u16,
    content_type: String,
    body: String,
}

async fn answer(method: &'static str, route: &'static str, resp: reqwest::Response) -> Answer {
    let status = resp.status().as_u16();
    let content_type = resp.headers().get("content-type").map_or("", |v| v.to_str().unwrap()).to_string();
    Answer { method, route, status, content_type, body: resp.text().await.unwrap() }
}

/// Sends raw bytes (for answers a well-behaved client cannot provoke) and reads the answer.
async fn raw(server: &Server, method: &'static str, route: &'static str, request: String) -> Answer {
    let mut conn = tokio::net::TcpStream::connect(server.base.trim_start_matches("http://")).await.unwrap();
    conn.write_all(request.as_bytes()).await.unwrap();
    let mut bytes = Vec::new();
    let mut buf = [0u8; 8192];
    loop {
        match tokio::time::timeout(Duration::from_secs(60), conn.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => break,
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => panic!("no answer to {method} {route}"),
        }
        let text = String::from_utf8_lossy(&bytes);
        if let Some((head, body)) = text.split_once("\r\n\r\n") {
            let length =
                head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-length: ").map(str::to_string));
            if length.is_some_and(|n| body.len() >= n.trim().parse::<usize>().unwrap()) {
                break;
            }
        }
    }
    let text = String::from_utf8_lossy(&bytes).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let status = head.split(' ').nth(1).unwrap().parse().unwrap();
    let content_type =
        head.lines().find_map(|l| l.to_ascii_lowercase().strip_prefix("content-type: ").map(str::to_string));
    Answer { method, route, status, content_type: content_type.unwrap_or_default(), body: body.to_string() }
}

/// Where `value` breaks `schema` (empty when it does not).
fn violations(doc: &Value, schema: &Value, value: &Value, at: &str) -> Vec<String> {
    let mut found = Vec::new();
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.strip_prefix("#/components/schemas/").expect("a local schema reference");
        return violations(doc, &doc["components"]["schemas"][name], value, at);
    }
    if let Some(options) = schema["oneOf"].as_array() {
        let passing = options.iter().filter(|o| violations(doc, o, value, at).is_empty()).count();
        if passing != 1 {
            found.push(format!("{at}: matches {passing} of the oneOf schemas"));
        }
    }
    if let Some(c) = schema.get("const")
        && c != value
    {
        found.push(format!("{at}: {value} is not {c}"));
    }
    if let Some(options) = schema["enum"].as_array()
        && !options.contains(value)
    {
        found.push(format!("{at}: {value} is not one of {options:?}"));
    }
    let types: Vec<&str> = match &schema["type"] {
        Value::String(t) => vec![t.as_str()],
        Value::Array(ts) => ts.iter().filter_map(Value::as_str).collect(),
        _ => vec![],
    };
    let is = |t: &str| match t {
        "object" => value.is_object(),
        "array" => value.is_array(),
        "string" => value.is_string(),
        "boolean" => value.is_boolean(),
        "null" => value.is_null(),
        "number" => value.is_number(),
        "integer" => value.is_i64() || value.is_u64(),
        other => panic!("type {other} in the document"),
    };
    if !types.is_empty() && !types.iter().any(|t| is(t)) {
        found.push(format!("{at}: {value} is not of type {types:?}"));
    }
    if let Some(object) = value.as_object() {
        for name in schema["required"].as_array().into_iter().flatten().filter_map(Value::as_str) {
            if !object.contains_key(name) {
                found.push(format!("{at}: required field {name} is missing"));
            }
        }
        for (name, field) in object {
            let field_at = format!("{at}.{name}");
            match schema["properties"].get(name) {
                Some(s) => found.extend(violations(doc, s, field, &field_at)),
                None if schema["additionalProperties"].is_object() => {
                    found.extend(violations(doc, &schema["additionalProperties"], field, &field_at))
                }
                None if schema["additionalProperties"] == false => found.push(format!("{field_at}: not allowed")),
                None => {}
            }
        }
    }
    if let (Some(items), Some(schema)) = (value.as_array(), schema.get("items")) {
        for (i, item) in items.iter().enumerate() {
            found.extend(violations(doc, schema, item, &format!("{at}[{i}]")));
        }
    }
    found
}

/// Checks one answer against the document; returns the (route, status) it exercised.
fn check(doc: &Value, a: &Answer) -> (String, String) {
    let what = format!("{} {} → {}: {}", a.method, a.route, a.status, a.body.chars().take(300).collect::<String>());
    let operation = &doc["paths"][a.route][a.method.to_lowercase()];
    assert!(operation.is_object(), "{what}: no such operation in the document");
    let code = serde_json::from_str::<Value>(&a.body).ok().and_then(|b| b["code"].as_str().map(str::to_string));
    let listed = &operation["responses"][a.status.to_string()];
    // A status the route lists, for a reason it names; otherwise one of the HTTP layer's.
    let names_it = |d: &Value| code.as_deref().is_none_or(|c| d.as_str().unwrap_or_default().contains(c));
    let (listed, key) = if listed.is_object() && names_it(&listed["description"]) {
        (listed, a.status.to_string())
    } else {
        let code = code.as_deref().unwrap_or_default();
        assert!(HTTP_LAYER_CODES.contains(&code), "{what}: status {} is not listed for this route", a.status);
        let name = operation["responses"]["default"]["$ref"].as_str().expect("a default response");
        let name = name.strip_prefix("#/components/responses/").unwrap();
        (&doc["components"]["responses"][name], "default".to_string())
    };
    if let Some(code) = &code {
        let description = listed["description"].as_str().unwrap();
        assert!(description.contains(code.as_str()), "{what}: code {code} not named in {description:?}");
    }
    let content = listed["content"].as_object().unwrap_or_else(|| panic!("{what}: no content listed"));
    let (media, body) = content.iter().next().unwrap();
    assert!(a.content_type.starts_with(media.as_str()), "{what}: content type {} not {media}", a.content_type);
    if media == "application/json" {
        let value: Value = serde_json::from_str(&a.body).unwrap_or_else(|e| panic!("{what}: not JSON ({e})"));
        let broken = violations(doc, &body["schema"], &value, "body");
        assert!(broken.is_empty(), "{what}: {broken:#?}");
    }
    (format!("{} {}", a.method, a.route), key)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_matches_what_the_openapi_document_lists_for_its_route() {
    let server = Server::builder(&Backend::Sqlite)
        .env("OMNIMEMORY_ADMIN_KEY", ADMIN_KEY)
        .env("OMNIMEMORY_BODY_TIMEOUT_SECS", "1")
        .env("OMNIMEMORY_MAX_BODY_BYTES", "200000")
        .start();
    let doc: Value = client().get(server.url("/openapi.json")).send().await.unwrap().json().await.unwrap();
    let c = client();
    let pro = server.create_key("pro-user", "pro");
    let unlimited = server.create_key("big-user", "enterprise");
    let spent = server.create_key_with("spent-user", "free", &["--monthly-tokens", "5"]);
    let slow = server.create_key_with("slow-user", "pro", &["--requests-per-second", "0.001", "--burst", "1"]);
    let text = "The launch moved to March 3. Budget stays at 2 million. The team grows by four engineers.";
    let post = |path: &str, key: &str, body: Value| c.post(server.url(path)).bearer_auth(key).json(&body).send();
    let get = |path: &str, key: &str| c.get(server.url(path)).bearer_auth(key).send();
    let mut answers = Vec::new();

    // /compress and its alias.
    let body = json!({"context": text, "metadata": {"team": "search"}});
    answers.push(answer("POST", "/compress", post("/compress", &pro, body.clone()).await.unwrap()).await);
    let messages = json!({"messages": [{"role": "user", "content": text}, {"role": "assistant", "content": text}]});
    answers.push(answer("POST", "/compress", post("/compress", &pro, messages).await.unwrap()).await);
    let alias = post("/compress/content-aware", &pro, body.clone()).await.unwrap();
    answers.push(answer("POST", "/compress/content-aware", alias).await);
    let idempotent = |idem: &'static str, body: Value| {
        c.post(server.url("/compress")).bearer_auth(&pro).header("idempotency-key", idem).json(&body).send()
    };
    answers.push(answer("POST", "/compress", idempotent("once", body.clone()).await.unwrap()).await);
    answers.push(answer("POST", "/compress", idempotent("once", body.clone()).await.unwrap()).await);
    answers.push(answer("POST", "/compress", idempotent("once", json!({"context": "other"})).await.unwrap()).await);
    answers.push(answer("POST", "/compress", post("/compress", &spent, body.clone()).await.unwrap()).await);
    let too_much = json!({"context": text, "target_compression": 1.0});
    answers.push(answer("POST", "/compress", post("/compress", &pro, too_much).await.unwrap()).await);
    let no_key = c.post(server.url("/compress")).json(&body).send().await.unwrap();
    answers.push(answer("POST", "/compress", no_key).await);
    let broken = c.post(server.url("/compress")).bearer_auth(&pro).header("content-type", "application/json");
    answers.push(answer("POST", "/compress", broken.body("{").send().await.unwrap()).await);
    let plain = c.post(server.url("/compress")).bearer_auth(&pro).header("content-type", "text/plain");
    answers.push(answer("POST", "/compress", plain.body(text).send().await.unwrap()).await);
    let head = |path: &str, key: &str, length: usize| {
        format!(
            "POST {path} HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {key}\r\nContent-Type: application/json\r\n\
             Content-Length: {length}\r\n\r\n"
        )
    };
    answers.push(raw(&server, "POST", "/compress", head("/compress", &pro, 300_000)).await);
    answers.push(raw(&server, "POST", "/compress", format!("{}{{\"context\": ", head("/compress", &pro, 100))).await);

    // /count-tokens and /validate.
    let count = json!({"text": text, "model_id": "claude-3-5-sonnet"});
    answers.push(answer("POST", "/count-tokens", post("/count-tokens", &pro, count.clone()).await.unwrap()).await);
    answers.push(answer("POST", "/count-tokens", post("/count-tokens", &pro, json!({})).await.unwrap()).await);
    let broken = c.post(server.url("/count-tokens")).bearer_auth(&pro).header("content-type", "application/json");
    answers.push(answer("POST", "/count-tokens", broken.body("[").send().await.unwrap()).await);
    let no_key = c.post(server.url("/validate")).json(&json!({"original": text, "compressed": text})).send();
    answers.push(answer("POST", "/validate", no_key.await.unwrap()).await);
    let validate = json!({"original": text, "compressed": "The launch moved to March 3.", "query": "launch"});
    answers.push(answer("POST", "/validate", post("/validate", &pro, validate).await.unwrap()).await);
    let some = json!({"original": text, "compressed": text, "metrics": ["rouge-l", "bertscore"]});
    answers.push(answer("POST", "/validate", post("/validate", &pro, some).await.unwrap()).await);
    let unknown = json!({"original": text, "compressed": text, "metrics": ["bleu"]});
    answers.push(answer("POST", "/validate", post("/validate", &pro, unknown).await.unwrap()).await);
    for path in ["/count-tokens", "/validate", "/compress"] {
        let route = match path {
            "/count-tokens" => "/count-tokens",
            "/validate" => "/validate",
            _ => "/compress",
        };
        let body = json!({"text": "hi", "original": "hi", "compressed": "hi", "context": "hi"});
        // The slow key's one request, then its refusal.
        let _ = post(path, &slow, body.clone()).await.unwrap();
        answers.push(answer("POST", route, post(path, &slow, body).await.unwrap()).await);
    }

    // Usage.
    answers.push(answer("GET", "/usage/stats", get("/usage/stats?group_by=team", &pro).await.unwrap()).await);
    answers.push(answer("GET", "/usage/stats", get("/usage/stats?days=7", &unlimited).await.unwrap()).await);
    answers.push(answer("GET", "/usage/stats", get("/usage/stats?days=0", &pro).await.unwrap()).await);
    answers.push(answer("GET", "/usage/stats", c.get(server.url("/usage/stats")).send().await.unwrap()).await);
    for key in [&pro, &unlimited, &spent] {
        answers.push(answer("GET", "/usage/quota", get("/usage/quota", key).await.unwrap()).await);
    }
    answers.push(answer("GET", "/usage/quota", get("/usage/quota", "om_pro_nosuchkey").await.unwrap()).await);
    let gzip = c.get(server.url("/usage/quota")).bearer_auth(&pro).header("content-encoding", "gzip");
    answers.push(answer("GET", "/usage/quota", gzip.send().await.unwrap()).await);
    answers.push(
        answer("GET", "/usage/export", get("/usage/export?format=jsonl&since=2026-01-01", &pro).await.unwrap()).await,
    );
    answers.push(answer("GET", "/usage/export", get("/usage/export?format=xml", &pro).await.unwrap()).await);
    answers.push(answer("GET", "/usage/export", c.get(server.url("/usage/export")).send().await.unwrap()).await);
    answers.push(answer("GET", "/usage/export", get("/usage/export", &slow).await.unwrap()).await);

    // Admin.
    let admin = |body: Value, admin_key: &str| {
        c.post(server.url("/admin/api-key")).header("x-admin-key", admin_key).json(&body).send()
    };
    let created = admin(json!({"user_id": "new-user", "tier": "pro", "email": "a@example.com"}), ADMIN_KEY);
    answers.push(answer("POST", "/admin/api-key", created.await.unwrap()).await);
    let bad_tier = admin(json!({"user_id": "new-user", "tier": "platinum"}), ADMIN_KEY);
    answers.push(answer("POST", "/admin/api-key", bad_tier.await.unwrap()).await);
    let wrong = admin(json!({"user_id": "new-user", "tier": "pro"}), "not-the-admin-key");
    answers.push(answer("POST", "/admin/api-key", wrong.await.unwrap()).await);
    let rotate =
        |path: String, admin_key: &'static str| c.post(server.url(&path)).header("x-admin-key", admin_key).send();
    let route = "/admin/api-key/{key_id}/rotate";
    let rotated = rotate(format!("/admin/api-key/{}/rotate?grace_hours=0", &slow[..15]), ADMIN_KEY);
    answers.push(answer("POST", route, rotated.await.unwrap()).await);
    let rotated_out = post("/count-tokens", &slow, json!({"text": "hi"})).await.unwrap();
    answers.push(answer("POST", "/count-tokens", rotated_out).await);
    answers.push(
        answer("POST", route, rotate("/admin/api-key/om_pro_NoSuchKy/rotate".into(), ADMIN_KEY).await.unwrap()).await,
    );
    answers
        .push(answer("POST", route, rotate("/admin/api-key/nonsense/rotate".into(), ADMIN_KEY).await.unwrap()).await);
    let wrong = rotate(format!("/admin/api-key/{}/rotate", &pro[..15]), "not-the-admin-key");
    answers.push(answer("POST", route, wrong.await.unwrap()).await);

    // The routes without a key, and a method a route does not take.
    for route in ["/health", "/metrics", "/openapi.json", "/docs"] {
        answers.push(answer("GET", route, c.get(server.url(route)).send().await.unwrap()).await);
    }
    let nul = "POST /compress HTTP/1.1\r\nHost: x\r\nX-A: a\x00b\r\n\r\n".to_string();
    answers.push(raw(&server, "POST", "/compress", nul).await);

    let mut seen = BTreeSet::new();
    for a in &answers {
        let route_status = check(&doc, a);
        seen.insert(route_status);
    }
    // What this test provokes, so that a route losing one of these answers is noticed too.
    let provoked: BTreeSet<(String, String)> = [
        ("POST /compress", ["200", "400", "401", "402", "408", "413", "415", "422", "429"].as_slice()),
        ("POST /compress", &["default"]),
        ("POST /compress/content-aware", &["200"]),
        ("POST /count-tokens", &["200", "400", "401", "422", "429"]),
        ("POST /validate", &["200", "401", "422", "429"]),
        ("GET /usage/stats", &["200", "401", "422"]),
        ("GET /usage/quota", &["200", "401", "default"]),
        ("GET /usage/export", &["200", "401", "422", "429"]),
        ("POST /admin/api-key", &["201", "403", "422"]),
        ("POST /admin/api-key/{key_id}/rotate", &["200", "403", "404", "422"]),
        ("GET /health", &["200"]),
        ("GET /metrics", &["200"]),
        ("GET /openapi.json", &["200"]),
        ("GET /docs", &["200"]),
    ]
    .iter()
    .flat_map(|(route, statuses)| statuses.iter().map(move |s| (route.to_string(), s.to_string())))
    .collect();
    assert_eq!(seen, provoked);

    // Every other status a route lists is one that other tests provoke: the document lists no
    // status its route never answers (a status added to it must be added here, with its test).
    let elsewhere: BTreeSet<(String, String)> = [
        // hardening.rs: the 409 of a concurrent retry, 503 of a full disk or a refused database;
        // scale_out.rs: 503 limiter_unavailable.
        ("POST /compress", ["409", "503"].as_slice()),
        // compat.rs: the alias answers as /compress does.
        ("POST /compress/content-aware", &["400", "401", "402", "408", "409", "413", "415", "422", "429", "503"]),
        // The same body extractor and key check as /compress (provoked there).
        ("POST /count-tokens", &["408", "413", "415", "503"]),
        // engine_work.rs: 413 too_large_to_compare.
        ("POST /validate", &["400", "408", "413", "415", "503"]),
        ("GET /usage/stats", &["503"]),
        ("GET /usage/quota", &["503"]),
        ("GET /usage/export", &["503"]),
        // hardening.rs: 429 admin_rate_limited after ten wrong admin keys.
        ("POST /admin/api-key", &["400", "408", "413", "415", "429", "503"]),
        ("GET /health", &["503"]),
        // The same admin check and storage as /admin/api-key.
        ("POST /admin/api-key/{key_id}/rotate", &["429", "503"]),
    ]
    .iter()
    .flat_map(|(route, statuses)| statuses.iter().map(move |s| (route.to_string(), s.to_string())))
    .collect();
    for route in provoked.iter().map(|(r, _)| r.clone()).collect::<BTreeSet<_>>() {
        let (method, path) = route.split_once(' ').unwrap();
        let responses = doc["paths"][path][method.to_lowercase()]["responses"].as_object().unwrap();
        // `default` is the HTTP layer's, the same for every route (provoked on two above).
        for status in responses.keys().filter(|s| *s != "default") {
            let pair = (route.clone(), status.clone());
            assert!(provoked.contains(&pair) || elsewhere.contains(&pair), "{route} lists {status}: answered where?");
        }
        // Success schemas name their fields.
        for (status, response) in responses.iter().filter(|(s, _)| s.starts_with('2')) {
            if let Some(schema) = response["content"]["application/json"].get("schema")
                && path != "/openapi.json"
            {
                let bare = bare_objects(&doc, schema, &format!("{route} {status}"));
                assert!(bare.is_empty(), "objects that name no fields: {bare:?}");
            }
        }
    }
}

/// The places in `schema` where an object names neither its fields nor its values' schema.
fn bare_objects(doc: &Value, schema: &Value, at: &str) -> Vec<String> {
    if let Some(reference) = schema["$ref"].as_str() {
        let name = reference.strip_prefix("#/components/schemas/").unwrap();
        return bare_objects(doc, &doc["components"]["schemas"][name], &format!("{at} ({name})"));
    }
    let mut found = Vec::new();
    if schema["type"] == "object" && schema.get("properties").is_none() && !schema["additionalProperties"].is_object() {
        found.push(at.to_string());
    }
    for (name, field) in schema["properties"].as_object().into_iter().flatten() {
        found.extend(bare_objects(doc, field, &format!("{at}.{name}")));
    }
    for nested in [&schema["items"], &schema["additionalProperties"]] {
        if nested.is_object() {
            found.extend(bare_objects(doc, nested, at));
        }
    }
    for option in schema["oneOf"].as_array().into_iter().flatten() {
        found.extend(bare_objects(doc, option, at));
    }
    found
}
