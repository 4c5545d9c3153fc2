//! Usage export: `GET /usage/export` (the caller's own key) and `admin export-usage` give every
//! record with its tags, totals equal to `/usage/stats`, streamed in bounded memory.

use serde_json::{Value, json};

use crate::harness::{Backend, Server, client, error_code, get_json};

/// The JSON lines of a body, parsed.
fn lines(body: &str) -> Vec<Value> {
    body.lines().map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("{e}: {l}"))).collect()
}

fn sums(records: &[Value]) -> [u64; 4] {
    let sum = |f: &str| records.iter().map(|r| r[f].as_u64().unwrap()).sum::<u64>();
    [records.len() as u64, sum("original_tokens"), sum("compressed_tokens"), sum("tokens_saved")]
}

fn stats_sums(stats: &Value) -> [u64; 4] {
    let s = &stats["stats"];
    ["total_compressions", "total_original_tokens", "total_compressed_tokens", "total_tokens_saved"]
        .map(|f| s[f].as_u64().unwrap())
}

async fn a_customer_exports_their_own_records_with_tags_and_the_totals_of_stats(backend: Backend) {
    let server = Server::start(&backend);
    let key = server.create_key("exporter", "pro");
    let other = server.create_key("someone-else", "pro");
    let c = client();
    let text = "The launch moved to March 3. Budget stays at 2 million. The team grows by four engineers.";
    for (i, team) in ["search", "a,b \"quoted\"", "=SUM(A1)"].iter().enumerate() {
        let body = json!({"context": format!("{text} Item {i}."), "metadata": {"team": team}, "model_id": "gpt-4o"});
        let resp = c.post(server.url("/compress")).bearer_auth(&key).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 200);
    }
    let resp = c.post(server.url("/compress")).bearer_auth(&other).json(&json!({"context": text})).send().await;
    assert_eq!(resp.unwrap().status(), 200);

    // JSON lines: every record of the caller's key, oldest first, with its tags.
    let resp = c.get(server.url("/usage/export?format=jsonl")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    assert_eq!(resp.headers()["content-type"], "application/x-ndjson");
    let disposition = resp.headers()["content-disposition"].to_str().unwrap().to_string();
    assert!(disposition.contains(&format!("usage-{}.jsonl", &key[..15])), "{disposition}");
    let records = lines(&resp.text().await.unwrap());
    assert_eq!(records.len(), 3);
    assert!(records.iter().all(|r| r["api_key"] == key[..15] && r["user_id"] == "exporter"), "{records:?}");
    assert_eq!(records[1]["metadata"], json!({"team": "a,b \"quoted\""}));
    assert_eq!(records[2]["metadata"], json!({"team": "=SUM(A1)"}));
    assert!(records.windows(2).all(|w| w[0]["timestamp"].as_str() <= w[1]["timestamp"].as_str()));
    let stats = get_json(server.url("/usage/stats?days=1"), &key).await;
    assert_eq!(sums(&records), stats_sums(&stats));

    // CSV by default: a header, one line per record, tags quoted, formulas defused.
    let resp = c.get(server.url("/usage/export")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(resp.headers()["content-type"], "text/csv; charset=utf-8");
    let csv = resp.text().await.unwrap();
    let rows: Vec<&str> = csv.split("\r\n").filter(|l| !l.is_empty()).collect();
    assert_eq!(rows.len(), 4, "{csv}");
    assert!(rows[0].starts_with("timestamp,request_id,api_key,user_id,") && rows[0].ends_with(",metadata"));
    assert!(rows[2].ends_with(r#","{""team"":""a,b \""quoted\""""}""#), "{}", rows[2]);
    assert!(rows[3].ends_with(r#","{""team"":""=SUM(A1)""}""#), "{}", rows[3]);

    // A range: nothing before the records, nothing after.
    let tomorrow = (jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24)).strftime("%Y-%m-%d").to_string();
    let later = c.get(server.url(&format!("/usage/export?format=jsonl&since={tomorrow}"))).bearer_auth(&key).send();
    assert_eq!(later.await.unwrap().text().await.unwrap(), "");
    let until = c.get(server.url(&format!("/usage/export?format=jsonl&until={tomorrow}"))).bearer_auth(&key).send();
    assert_eq!(lines(&until.await.unwrap().text().await.unwrap()).len(), 3);

    // Refusals: the one error shape.
    let get = |path: &str| c.get(server.url(path)).bearer_auth(&key).send();
    assert_eq!(error_code(get("/usage/export?format=xml").await.unwrap(), 422).await, "invalid_request");
    assert_eq!(error_code(get("/usage/export?since=yesterday").await.unwrap(), 422).await, "invalid_request");
    let backwards = format!("/usage/export?since={tomorrow}&until=2020-01-01");
    assert_eq!(error_code(get(&backwards).await.unwrap(), 422).await, "invalid_request");
    let no_key = c.get(server.url("/usage/export")).send().await.unwrap();
    assert_eq!(error_code(no_key, 401).await, "missing_api_key");
    // An export takes from the key's request bucket, as /count-tokens does.
    let slow = server.create_key_with("slow-exporter", "pro", &["--requests-per-second", "0.001", "--burst", "1"]);
    let first = c.get(server.url("/usage/export")).bearer_auth(&slow).send().await.unwrap();
    assert_eq!((first.status().as_u16(), first.headers()["x-ratelimit-remaining"].to_str().unwrap()), (200, "0"));
    let second = c.get(server.url("/usage/export")).bearer_auth(&slow).send().await.unwrap();
    assert!(second.headers().contains_key("retry-after"));
    assert_eq!(error_code(second, 429).await, "request_rate_limited");

    // The admin CLI: by key (full or public id), by user, all keys; the same records.
    let out = server.cli(&["admin", "export-usage", "--key", &key[..15], "--format", "jsonl"], None);
    assert_eq!(out.code, 0, "{}", out.stderr);
    assert_eq!(lines(&out.stdout), records);
    assert!(out.stderr.contains("Exported 3 records"), "{}", out.stderr);
    let out = server.cli(&["admin", "export-usage", "--user", "someone-else", "--format", "csv"], None);
    assert_eq!((out.code, out.stdout.split("\r\n").filter(|l| !l.is_empty()).count()), (0, 2), "{}", out.stdout);
    let out = server.cli(&["admin", "export-usage", "--format", "jsonl", "--since", "2020-01-01"], None);
    assert_eq!(lines(&out.stdout).len(), 4);
    let out = server.cli(&["admin", "export-usage", "--format", "jsonl", "--until", "2020-01-01"], None);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""));
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("usage.jsonl");
    let out = server
        .cli(&["admin", "export-usage", "--key", &key, "--format", "jsonl", "--out", file.to_str().unwrap()], None);
    assert_eq!((out.code, out.stdout.as_str()), (0, ""));
    assert_eq!(lines(&std::fs::read_to_string(&file).unwrap()), records);
    assert_eq!(server.cli(&["admin", "export-usage", "--format", "xml"], None).code, 2);
    assert_eq!(server.cli(&["admin", "export-usage", "--format", "csv", "--since", "soon"], None).code, 2);
    assert_eq!(server.cli(&["admin", "export-usage", "--user", "nobody", "--format", "csv"], None).code, 1);
    let help = server.cli(&["admin", "export-usage", "--help"], None);
    assert!(
        help.stdout.contains("Example") && help.stdout.contains("omnimemory admin export-usage"),
        "{}",
        help.stdout
    );
}

/// Records inserted by the database itself (one statement), a second before now.
const MANY: u32 = 200_000;

async fn seed(server: &Server, key: &str) {
    use sqlx::Executor as _;
    let public_id = &key[.."om_enterprise_".len() + 8];
    let mut keys = server.db("api_keys").await;
    let key_id: i64 = sqlx::query_scalar("SELECT id FROM api_keys WHERE public_id = $1")
        .bind(public_id)
        .fetch_one(&mut keys)
        .await
        .unwrap();
    let at = (jiff::Timestamp::now() - jiff::SignedDuration::from_secs(1)).strftime("%Y-%m-%dT%H:%M:%S%.3fZ");
    let mut usage = server.db("usage_records").await;
    let seed = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {MANY})
         INSERT INTO usage_records (request_id, api_key, key_id, user_id, operation, original_tokens,
             compressed_tokens, tokens_saved, model_id, compression_ratio, quality_score, tool_id, session_id,
             metadata, timestamp)
         SELECT 'seed-' || i, '{public_id}', {key_id}, 'bulk', 'compress', 1000 + i % 500, 250, 750 + i % 500,
             'gpt-4o', 0.75, 0.9, 'tool-with-a-longish-name', 'session-0123456789abcdef',
             '{{\"team\":\"search\",\"env\":\"production\",\"cost_center\":\"cc-1234\"}}', '{at}'
         FROM n"
    );
    usage.execute(sqlx::AssertSqlSafe(seed)).await.unwrap();
}

/// Peak resident memory of a process so far, in KiB (Linux).
fn peak_rss_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

async fn a_large_export_streams_in_bounded_memory(backend: Backend) {
    let server = Server::start(&backend);
    let key = server.create_key("bulk", "enterprise");
    seed(&server, &key).await;
    let stats = get_json(server.url("/usage/stats?days=1"), &key).await;
    let before = peak_rss_kib(server.pid());
    let mut resp = client().get(server.url("/usage/export?format=jsonl")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(resp.status(), 200);
    let (mut bytes, mut records, mut original, mut rest) = (0usize, 0u64, 0u64, Vec::new());
    while let Some(chunk) = resp.chunk().await.unwrap() {
        bytes += chunk.len();
        rest.extend_from_slice(&chunk);
        let end = rest.iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        for line in rest[..end].split(|&b| b == b'\n').filter(|l| !l.is_empty()) {
            let record: Value = serde_json::from_slice(line).unwrap();
            records += 1;
            original += record["original_tokens"].as_u64().unwrap();
        }
        rest.drain(..end);
    }
    assert!(rest.is_empty());
    assert_eq!(records, u64::from(MANY));
    assert_eq!(original, stats["stats"]["total_original_tokens"].as_u64().unwrap());
    let grown_mib = peak_rss_kib(server.pid()).saturating_sub(before) / 1024;
    let body_mib = bytes / (1 << 20);
    eprintln!("exported {records} records, {body_mib} MiB; the server's peak memory grew by {grown_mib} MiB");
    // The body is far larger than what the server held at any moment for it.
    assert!(body_mib >= 60, "{body_mib} MiB");
    assert!(grown_mib < 24, "the server's peak memory grew by {grown_mib} MiB for a {body_mib} MiB export");
}

crate::on_both_backends! {
    a_customer_exports_their_own_records_with_tags_and_the_totals_of_stats,
    a_large_export_streams_in_bounded_memory,
}
