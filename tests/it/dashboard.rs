//! `/dashboard` and the JSON endpoints behind it (`/usage/daily`, `/usage/recent`,
//! `/admin/keys`): over HTTP against the CLI's figures, and in a real headless Chromium against
//! the API's, with 100,000 usage records in the store.
//!
//! The browser test follows `docs.rs`: without `chromium` and `chromedriver` it prints `SKIP: …`
//! and returns, unless `OMNIMEMORY_TEST_REQUIRE_BROWSER` is set. It writes a screenshot of each
//! view (laptop and phone widths) to `$CARGO_TARGET_TMPDIR/screenshots`, and to
//! `docs/screenshots/` (the README's) when `OMNIMEMORY_UPDATE_SCREENSHOTS` is set.

use std::time::Instant;

use serde_json::{Value, json};

use crate::docs::{Browser, CHROMIUM, browser_or_skip};
use crate::harness::{ADMIN_KEY, Backend, Server, client, error_code, get_json};
use crate::on_both_backends;

#[tokio::test]
async fn the_dashboard_page_and_its_assets_come_from_the_binary_with_a_strict_csp() {
    let server = Server::start(&Backend::Sqlite);
    let page = client().get(server.url("/dashboard")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    for directive in
        ["default-src 'none'", "script-src 'self'", "style-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"]
    {
        assert!(csp.contains(directive), "{csp}");
    }
    assert!(!csp.contains("unsafe"), "{csp}");
    let html = page.text().await.unwrap();
    // Every asset is the service's own, and nothing on the page is inline code.
    assert!(!html.contains("http:") && !html.contains("https:") && !html.contains("//"), "{html}");
    assert!(!html.contains("<script>") && !html.contains(" style=") && !html.contains("<style"), "{html}");
    for asset in ["dashboard/chart.umd.js", "dashboard/dashboard.js", "dashboard/dashboard.css"] {
        assert!(html.contains(&format!("\"{asset}\"")), "{asset} is not on the page");
    }
    for (asset, content_type, at_least) in [
        ("chart.umd.js", "text/javascript; charset=utf-8", 150_000),
        ("dashboard.js", "text/javascript; charset=utf-8", 1_000),
        ("dashboard.css", "text/css; charset=utf-8", 500),
    ] {
        let resp = client().get(server.url(&format!("/dashboard/{asset}"))).send().await.unwrap();
        assert_eq!((resp.status().as_u16(), resp.headers()["content-type"].to_str().unwrap()), (200, content_type));
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        assert!(resp.bytes().await.unwrap().len() >= at_least, "{asset}");
    }
    // The script writes what the service sends as text only.
    let script = client().get(server.url("/dashboard/dashboard.js")).send().await.unwrap().text().await.unwrap();
    for markup in ["innerHTML", "outerHTML", "insertAdjacentHTML", "document.write", "eval("] {
        assert!(!script.contains(markup), "dashboard.js uses {markup}");
    }
    let missing = client().get(server.url("/dashboard/chart.umd.js.map")).send().await.unwrap();
    assert_eq!(error_code(missing, 404).await, "not_found");
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let slash = no_redirects.get(server.url("/dashboard/")).send().await.unwrap();
    assert_eq!((slash.status().as_u16(), slash.headers()["location"].to_str().unwrap()), (308, "../dashboard"));
}

/// Three `/compress` requests of `key`: two models, a `team` tag on two of them.
async fn record_usage(server: &Server, key: &str) {
    let context = "The launch moved to March. Engineers fixed the cooling loop. The budget grew by a tenth. \
                   Reviewers asked for more tests. The board approved the plan on Friday. "
        .repeat(6);
    for (model, metadata) in [
        ("gpt-4o", json!({"team": "search", "project": "alpha"})),
        ("gpt-4", json!({"team": "<img src=x onerror=alert(1)>"})),
        ("gpt-4o", Value::Null),
    ] {
        let body = json!({"context": context, "model_id": model, "metadata": metadata, "target_compression": 0.5});
        let resp = client().post(server.url("/compress")).bearer_auth(key).json(&body).send().await.unwrap();
        assert_eq!(resp.status(), 200, "{}", resp.text().await.unwrap());
    }
}

fn admin_get(server: &Server, path: &str) -> reqwest::RequestBuilder {
    client().get(server.url(path)).header("x-admin-key", ADMIN_KEY)
}

async fn the_json_endpoints_answer_what_the_cli_prints(backend: Backend) {
    let server = Server::start(&backend);
    let key = server.create_key("dash-api", "pro");
    let other = server.create_key("someone-else", "free");
    record_usage(&server, &key).await;

    let daily = get_json(server.url("/usage/daily?days=7"), &key).await;
    let days = daily["daily"].as_array().unwrap();
    // The window is /usage/stats's (the last 7 × 24 h): 8 UTC days, the last one today.
    assert_eq!(days.len(), 8, "{daily}");
    let today = jiff::Timestamp::now().strftime("%Y-%m-%d").to_string();
    assert_eq!(days.last().unwrap()["date"], today.as_str());
    assert_eq!(days.last().unwrap()["requests"], 3);
    assert_eq!(daily["totals"]["requests"], 3);
    assert_eq!(daily["tags"][0]["name"], "team", "{daily}");
    assert_eq!(daily["tags"][0]["count"], 2, "{daily}");

    // The same totals as /usage/stats and as `admin usage-stats`.
    let stats = get_json(server.url("/usage/stats?days=7"), &key).await;
    let cli = server.cli(&["admin", "usage-stats", &key, "--days", "7", "--json"], None);
    let cli: Value = serde_json::from_str(&cli.stdout).unwrap();
    for (daily_field, stats_field) in [
        ("requests", "total_compressions"),
        ("original_tokens", "total_original_tokens"),
        ("compressed_tokens", "total_compressed_tokens"),
        ("tokens_saved", "total_tokens_saved"),
    ] {
        assert_eq!(daily["totals"][daily_field], stats["stats"][stats_field], "{daily_field}");
        assert_eq!(daily["totals"][daily_field], cli["stats"][stats_field], "{daily_field}");
        let summed: u64 = days.iter().map(|d| d[daily_field].as_u64().unwrap()).sum();
        assert_eq!(daily["totals"][daily_field], summed, "{daily_field}");
    }

    let recent = get_json(server.url("/usage/recent?limit=2"), &key).await;
    let records = recent["requests"].as_array().unwrap();
    assert_eq!(records.len(), 2, "{recent}");
    // Newest first: the third request had no tags, the second the HTML-looking one, as sent.
    assert_eq!((records[0]["model_id"].as_str(), records[0]["metadata"].clone()), (Some("gpt-4o"), json!({})));
    assert_eq!(records[1]["metadata"], json!({"team": "<img src=x onerror=alert(1)>"}));
    // Compared as instants: as text, "…:03.1Z" sorts after "…:03.12Z".
    let at = |r: &Value| r["timestamp"].as_str().unwrap().parse::<jiff::Timestamp>().unwrap();
    assert!(at(&records[0]) >= at(&records[1]), "{recent}");
    for field in ["original_tokens", "compressed_tokens", "tokens_saved", "compression_ratio", "quality_score"] {
        assert!(records[0][field].is_number(), "{field}: {recent}");
    }
    // Another key sees none of it.
    let theirs = get_json(server.url("/usage/recent"), &other).await;
    assert_eq!(theirs["requests"], json!([]));
    assert_eq!(get_json(server.url("/usage/daily?days=7"), &other).await["totals"]["requests"], 0);

    // The operator's list: this month's use as `admin verify-key` prints it, the last use.
    let keys: Value = admin_get(&server, "/admin/keys").send().await.unwrap().json().await.unwrap();
    assert_eq!(keys["count"], 2, "{keys}");
    let public_id = get_json(server.url("/usage/quota"), &key).await["key_id"].as_str().unwrap().to_string();
    let row = keys["keys"].as_array().unwrap().iter().find(|k| k["key_id"] == public_id.as_str()).unwrap().clone();
    let verify = server.cli(&["admin", "verify-key", &key, "--json"], None);
    let verify: Value = serde_json::from_str(&verify.stdout).unwrap();
    assert_eq!(row["used"], verify["usage"]["current_usage"]);
    assert_eq!(row["used"], daily["totals"]["original_tokens"]);
    assert_eq!(row["monthly_limit"], verify["usage"]["monthly_limit"]);
    assert_eq!(
        (row["tier"].as_str(), row["status"].as_str(), row["user_id"].as_str()),
        (Some("pro"), Some("active"), Some("dash-api"))
    );
    assert_eq!(
        row["last_used_at"],
        get_json(server.url("/usage/recent?limit=1"), &key).await["requests"][0]["timestamp"]
    );
    let idle = keys["keys"].as_array().unwrap().iter().find(|k| k["user_id"] == "someone-else").unwrap();
    assert_eq!((idle["used"].as_u64(), idle["last_used_at"].is_null()), (Some(0), true));
    assert!(!keys.to_string().contains(&key[..20]), "a secret in {keys}");

    // Deactivation from the admin API: the next request with the key is refused (the key was
    // just used, so this instance's key cache held it: the deactivation cleared it).
    let url = server.url(&format!("/admin/keys/{public_id}/deactivate"));
    let done: Value = client().post(&url).header("x-admin-key", ADMIN_KEY).send().await.unwrap().json().await.unwrap();
    assert_eq!((done["status"].as_str(), done["active"].as_bool()), (Some("deactivated"), Some(false)), "{done}");
    let refused = client().get(server.url("/usage/quota")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(error_code(refused, 401).await, "api_key_deactivated");
    let url = server.url(&format!("/admin/keys/{public_id}/activate"));
    let done: Value = client().post(&url).header("x-admin-key", ADMIN_KEY).send().await.unwrap().json().await.unwrap();
    assert_eq!(done["status"], "active");
    assert_eq!(get_json(server.url("/usage/quota"), &key).await["authenticated"], true);
}

/// A refusal's `code`, after checking that `docs/openapi.json` lists its status for the route
/// and names the code.
async fn documented_refusal(resp: reqwest::Response, status: u16, method: &str, route: &str) -> String {
    let code = error_code(resp, status).await;
    let doc: Value = serde_json::from_str(include_str!("../../docs/openapi.json")).unwrap();
    let listed = &doc["paths"][route][method]["responses"][status.to_string()]["description"];
    assert!(listed.as_str().is_some_and(|d| d.contains(&code)), "{method} {route}: {status} {code} is not documented");
    code
}

async fn bad_input_and_customer_keys_get_clear_refusals(backend: Backend) {
    let server = Server::start(&backend);
    let key = server.create_key("dash-refusals", "free");
    let refusal = |path: &str| client().get(server.url(path)).bearer_auth(&key).send();
    for (path, route) in [
        ("/usage/daily?days=0", "/usage/daily"),
        ("/usage/daily?days=ten", "/usage/daily"),
        ("/usage/recent?limit=0", "/usage/recent"),
        ("/usage/recent?limit=101", "/usage/recent"),
    ] {
        let resp = refusal(path).await.unwrap();
        assert_eq!(documented_refusal(resp, 422, "get", route).await, "invalid_request", "{path}");
    }
    for route in ["/usage/daily", "/usage/recent"] {
        let keyless = client().get(server.url(route)).send().await.unwrap();
        assert_eq!(documented_refusal(keyless, 401, "get", route).await, "missing_api_key");
    }

    // The operator's endpoints open to the admin key only: a customer's key is 403.
    let with_customer_key = client().get(server.url("/admin/keys")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(documented_refusal(with_customer_key, 403, "get", "/admin/keys").await, "admin_forbidden");
    let as_admin_header = client().get(server.url("/admin/keys")).header("x-admin-key", &key).send().await.unwrap();
    assert_eq!(error_code(as_admin_header, 403).await, "admin_forbidden");
    let public_id = get_json(server.url("/usage/quota"), &key).await["key_id"].as_str().unwrap().to_string();
    let deactivate = server.url(&format!("/admin/keys/{public_id}/deactivate"));
    let own = client().post(&deactivate).bearer_auth(&key).send().await.unwrap();
    let route = "/admin/keys/{key_id}/deactivate";
    assert_eq!(documented_refusal(own, 403, "post", route).await, "admin_forbidden");

    for path in ["/admin/keys?limit=0", "/admin/keys?tier=gold"] {
        let resp = admin_get(&server, path).send().await.unwrap();
        assert_eq!(documented_refusal(resp, 422, "get", "/admin/keys").await, "invalid_request", "{path}");
    }
    let admin_post = |path: String| client().post(server.url(&path)).header("x-admin-key", ADMIN_KEY).send();
    let unknown = admin_post("/admin/keys/om_pro_AAAAAAAA/deactivate".into()).await.unwrap();
    assert_eq!(documented_refusal(unknown, 404, "post", route).await, "key_not_found");
    let malformed = admin_post("/admin/keys/not-a-key/activate".into()).await.unwrap();
    let route = "/admin/keys/{key_id}/activate";
    assert_eq!(documented_refusal(malformed, 422, "post", route).await, "invalid_request");
    // The key is still usable: nothing above changed it.
    assert_eq!(get_json(server.url("/usage/quota"), &key).await["authenticated"], true);
}

on_both_backends!(the_json_endpoints_answer_what_the_cli_prints, bad_input_and_customer_keys_get_clear_refusals);

/// Records evenly over the last 90 days, oldest first, as a busy key accumulates them (SQLite
/// only: one statement in the database). None lies within ten minutes of the 7-, 30- or 90-day
/// windows' start, so the page and a later API call see the same records in each window. The
/// quota ledger gets this month's share, as the usage writer would have charged it.
const SEEDED_RECORDS: u32 = 100_000;

/// Returns the key's public id.
async fn seed_records(server: &Server, user_id: &str) -> String {
    use sqlx::Executor as _;
    let mut keys = server.db("api_keys").await;
    let (key_id, public_id): (i64, String) = sqlx::query_as("SELECT id, public_id FROM api_keys WHERE user_id = $1")
        .bind(user_id)
        .fetch_one(&mut keys)
        .await
        .unwrap();
    let mut usage = server.db("usage_records").await;
    let started = Instant::now();
    let seed = format!(
        "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < {SEEDED_RECORDS}),
         a AS (SELECT i, ({SEEDED_RECORDS} - i) * 7776000 / {SEEDED_RECORDS} + 60 AS ago FROM n),
         r AS (SELECT i, 800 + (i * 37) % 1200 AS original, 20 + i % 15 AS kept_percent,
                      CASE WHEN abs(ago - 604800) < 600 OR abs(ago - 2592000) < 600 OR ago > 7775400
                           THEN ago - 1200 ELSE ago END AS ago FROM a)
         INSERT INTO usage_records (request_id, api_key, key_id, user_id, operation, original_tokens,
             compressed_tokens, tokens_saved, model_id, compression_ratio, quality_score, tool_id, session_id,
             metadata, timestamp)
         SELECT 'seed-' || i, '{public_id}', {key_id}, '{user_id}', 'compress', original,
             original * kept_percent / 100, original - original * kept_percent / 100,
             CASE WHEN i % 10 < 5 THEN 'gpt-4o' WHEN i % 10 < 8 THEN 'claude-3-5-sonnet' ELSE 'gpt-4' END,
             1.0 - (original * kept_percent / 100) * 1.0 / original, 0.85 + (i % 15) / 100.0, NULL, NULL,
             json_object('team', CASE i % 4 WHEN 0 THEN 'search' WHEN 1 THEN 'support' WHEN 2 THEN 'billing'
                 ELSE 'research' END, 'env', CASE WHEN i % 7 = 0 THEN 'staging' ELSE 'production' END),
             strftime('%Y-%m-%dT%H:%M:%fZ', 'now', '-' || ago || ' seconds')
         FROM r;
         INSERT INTO quota_ledger (key_id, period, used)
         SELECT key_id, substr(timestamp, 1, 7), SUM(original_tokens) FROM usage_records
         WHERE key_id = {key_id} AND substr(timestamp, 1, 7) = strftime('%Y-%m', 'now') GROUP BY 1, 2
         ON CONFLICT (key_id, period) DO UPDATE SET used = quota_ledger.used + excluded.used;"
    );
    usage.execute(sqlx::AssertSqlSafe(seed)).await.unwrap();
    eprintln!("seeded {SEEDED_RECORDS} usage records in {:?}", started.elapsed());
    public_id
}

/// `1234567` → `1,234,567`, as the page writes figures.
fn thousands(n: u64) -> String {
    let digits = n.to_string();
    let mut out = String::new();
    for (i, c) in digits.chars().enumerate() {
        if i > 0 && (digits.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn utc(ts: &Value) -> String {
    ts.as_str().unwrap().replace('T', " ")[..19].to_string()
}

async fn text_of(browser: &Browser, id: &str) -> String {
    browser.script(&format!("return document.getElementById({id:?}).textContent")).await.as_str().unwrap().to_string()
}

/// The rows of a table's body, as lists of cell texts.
async fn rows_of(browser: &Browser, id: &str) -> Vec<Vec<String>> {
    let rows = browser
        .script(&format!(
            "return [...document.querySelectorAll('#{id} tbody tr')].map(r => [...r.cells].map(c => c.textContent))"
        ))
        .await;
    serde_json::from_value(rows).unwrap()
}

async fn screenshot(browser: &Browser, name: &str, width: u32, height: u32) {
    use base64::Engine as _;
    browser.call(reqwest::Method::POST, "/window/rect", json!({"width": width, "height": height})).await;
    // Chart.js redraws on resize; give it a frame.
    browser.script("return new Promise(r => requestAnimationFrame(() => requestAnimationFrame(() => r(null))))").await;
    let png = browser.call(reqwest::Method::GET, "/screenshot", json!(null)).await;
    let bytes = base64::engine::general_purpose::STANDARD.decode(png.as_str().unwrap()).unwrap();
    assert!(bytes.starts_with(b"\x89PNG"), "not a PNG");
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join(format!("{name}.png")), &bytes).unwrap();
    if std::env::var_os("OMNIMEMORY_UPDATE_SCREENSHOTS").is_some() {
        let docs = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("docs/screenshots");
        std::fs::create_dir_all(&docs).unwrap();
        std::fs::write(docs.join(format!("{name}.png")), &bytes).unwrap();
    }
}

/// Signs in from the sign-in form as `role` with `key`.
async fn sign_in(browser: &Browser, role: &str, key: &str) {
    browser.wait_for("!document.getElementById('signin').hidden", "the sign-in form").await;
    browser.click(&format!("input[name=role][value={role}]")).await;
    browser.type_into("#key-input", key).await;
    browser.click("#signin-button").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_customer_and_the_operator_see_the_apis_figures_in_a_headless_browser() {
    let test = "a_customer_and_the_operator_see_the_apis_figures_in_a_headless_browser";
    let (Some(chromium), Some(driver)) = (browser_or_skip(test, CHROMIUM), browser_or_skip(test, &["chromedriver"]))
    else {
        return;
    };
    let server = Server::start(&Backend::Sqlite);
    let key = server.create_key("acme-analytics", "pro");
    let fresh = server.create_key("beta-labs", "free");
    server.create_key("corp-enterprise", "enterprise");
    // Seeded before the key's first request, so the server reads its ledger with the seed in it.
    let public_id = seed_records(&server, "acme-analytics").await;
    record_usage(&server, &key).await;

    let browser = Browser::start(&driver, &chromium).await;
    browser.call(reqwest::Method::POST, "/window/rect", json!({"width": 1280, "height": 900})).await;
    let opened = Instant::now();
    browser.open(&server.url("/dashboard")).await;
    sign_in(&browser, "customer", &key).await;
    browser.wait_for("document.body.dataset.view === 'customer'", "the customer's view").await;
    let wall = opened.elapsed();
    let page_ms = browser.script("return document.body.dataset.loadMs").await;
    // A measurement, not an assertion (the machine is shared): the README quotes it.
    eprintln!(
        "dashboard with {} records: signed in and drawn in {page_ms} ms (page's own measure); \
         open + sign in + draw {wall:?} (WebDriver round trips included)",
        SEEDED_RECORDS + 3
    );

    // The gauge and the buckets: /usage/quota's figures.
    let quota = get_json(server.url("/usage/quota"), &key).await;
    let usage = &quota["quota"]["usage"];
    assert_eq!(text_of(&browser, "quota-used").await, thousands(usage["current_usage"].as_u64().unwrap()));
    assert_eq!(text_of(&browser, "quota-limit").await, thousands(usage["monthly_limit"].as_u64().unwrap()));
    assert_eq!(text_of(&browser, "quota-remaining").await, thousands(usage["remaining"].as_u64().unwrap()));
    assert_eq!(text_of(&browser, "quota-resets").await, format!("{} UTC", utc(&usage["resets_at"])));
    let percent = format!("{:.1}% of the monthly limit used", usage["usage_percent"].as_f64().unwrap());
    assert_eq!(text_of(&browser, "quota-percent").await, percent);
    let bar = browser.script("return document.getElementById('gauge-used').getBoundingClientRect().width").await;
    let style = browser.script("const g = document.getElementById('gauge-used'); return [g.style.width, getComputedStyle(g).display, document.getElementById('quota-gauge').getBoundingClientRect().width]").await;
    assert!(bar.as_f64().unwrap() > 0.0, "the gauge's bar is empty: {style} {quota}");
    assert!(text_of(&browser, "requests-available").await.ends_with(" of 10"));

    // Totals, the daily charts and the tables: /usage/daily, /usage/stats, /usage/recent (30 days).
    let daily = get_json(server.url("/usage/daily?days=30"), &key).await;
    let stats = get_json(server.url("/usage/stats?days=30"), &key).await;
    assert_eq!(text_of(&browser, "total-requests").await, thousands(daily["totals"]["requests"].as_u64().unwrap()));
    assert_eq!(text_of(&browser, "total-saved").await, thousands(daily["totals"]["tokens_saved"].as_u64().unwrap()));
    let chart = browser
        .script(
            "const c = Chart.getChart('chart-tokens'); const box = c.canvas.getBoundingClientRect();
             return {labels: c.data.labels, tokens_in: c.data.datasets[0].data, width: box.width, height: box.height}",
        )
        .await;
    let dates: Vec<&Value> = daily["daily"].as_array().unwrap().iter().map(|d| &d["date"]).collect();
    let tokens_in: Vec<&Value> = daily["daily"].as_array().unwrap().iter().map(|d| &d["original_tokens"]).collect();
    assert_eq!(chart["labels"].as_array().unwrap().iter().collect::<Vec<_>>(), dates);
    assert_eq!(chart["tokens_in"].as_array().unwrap().iter().collect::<Vec<_>>(), tokens_in);
    assert!(chart["width"].as_f64().unwrap() > 300.0 && chart["height"].as_f64().unwrap() > 150.0, "{chart}");
    let requests_chart = browser.script("return Chart.getChart('chart-requests').data.datasets[0].data").await;
    let requests: Vec<&Value> = daily["daily"].as_array().unwrap().iter().map(|d| &d["requests"]).collect();
    assert_eq!(requests_chart.as_array().unwrap().iter().collect::<Vec<_>>(), requests);

    let models: Vec<Vec<String>> = stats["stats"]["by_model"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| {
            let n = |f: &str| thousands(m[f].as_u64().unwrap());
            vec![m["model_id"].as_str().unwrap().to_string(), n("count"), n("tokens_saved")]
        })
        .collect();
    assert_eq!(rows_of(&browser, "models-table").await, models);
    assert_eq!(models.len(), 3, "{models:?}");

    let tag = browser.script("return document.getElementById('tag-select').value").await;
    assert_eq!(tag, "team", "the most used tag is shown first");
    let groups = get_json(server.url("/usage/stats?days=30&group_by=team"), &key).await;
    let expected: Vec<Vec<String>> = groups["groups"]
        .as_array()
        .unwrap()
        .iter()
        .map(|g| {
            let n = |f: &str| thousands(g[f].as_u64().unwrap());
            let value = g["value"].as_str().unwrap_or("(untagged)").to_string();
            vec![value, n("count"), n("original_tokens"), n("tokens_saved")]
        })
        .collect();
    let shown = rows_of(&browser, "tags-table").await;
    assert_eq!(shown, expected);
    // A tag value that looks like markup is shown as the text it is, and no element came of it.
    assert!(shown.iter().any(|row| row[0] == "<img src=x onerror=alert(1)>"), "{shown:?}");
    assert_eq!(browser.script("return document.querySelectorAll('main img').length").await, 0);

    let recent = get_json(server.url("/usage/recent?limit=20"), &key).await;
    let first = &recent["requests"][0];
    let rows = rows_of(&browser, "recent-table").await;
    assert_eq!(rows.len(), 20);
    assert_eq!(rows[0][0], utc(&first["timestamp"]));
    assert_eq!(rows[0][1], first["model_id"].as_str().unwrap());
    assert_eq!(rows[0][2], thousands(first["original_tokens"].as_u64().unwrap()));
    assert_eq!(rows[1][6], "team=<img src=x onerror=alert(1)>");
    screenshot(&browser, "dashboard-customer", 1280, 2300).await;
    screenshot(&browser, "dashboard-customer-phone", 390, 1400).await;
    let overflow = browser.script("return document.documentElement.scrollWidth").await;
    assert!(overflow.as_u64().unwrap() <= 390, "the page is wider than a phone: {overflow}");
    browser.call(reqwest::Method::POST, "/window/rect", json!({"width": 1280, "height": 900})).await;

    // Another range: the figures follow.
    browser.click(".range-button[data-days='7']").await;
    browser.wait_for("document.getElementById('range-text').textContent === 'last 7 days'", "the 7-day range").await;
    let week = get_json(server.url("/usage/daily?days=7"), &key).await;
    assert_eq!(text_of(&browser, "total-in").await, thousands(week["totals"]["original_tokens"].as_u64().unwrap()));
    let labels = browser.script("return Chart.getChart('chart-tokens').data.labels.length").await;
    assert_eq!(labels, week["daily"].as_array().unwrap().len());

    // The CSV is the range shown, a line a day.
    let csv = browser
        .script(
            "const made = URL.createObjectURL; let blob = null;
             URL.createObjectURL = b => { blob = b; return made.call(URL, b); };
             HTMLAnchorElement.prototype.click = function () {};
             document.getElementById('csv').click();
             URL.createObjectURL = made;
             return blob.text()",
        )
        .await;
    let csv = csv.as_str().unwrap();
    let mut lines = csv.lines();
    assert_eq!(lines.next(), Some("date,requests,tokens_in,tokens_out,tokens_saved"));
    let expected: Vec<String> = week["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let n = |f: &str| d[f].as_u64().unwrap().to_string();
            format!(
                "{},{},{},{},{}",
                d["date"].as_str().unwrap(),
                n("requests"),
                n("original_tokens"),
                n("compressed_tokens"),
                n("tokens_saved")
            )
        })
        .collect();
    assert_eq!(lines.map(str::to_string).collect::<Vec<_>>(), expected);

    // The longest range: every seeded record (a measurement, printed).
    browser.click(".range-button[data-days='90']").await;
    browser.wait_for("document.getElementById('range-text').textContent === 'last 90 days'", "the 90-day range").await;
    let all = get_json(server.url("/usage/daily?days=90"), &key).await;
    assert_eq!(text_of(&browser, "total-requests").await, thousands(all["totals"]["requests"].as_u64().unwrap()));
    let page_ms = browser.script("return document.body.dataset.loadMs").await;
    eprintln!("dashboard: the 90-day range ({} records) fetched and drawn in {page_ms} ms", all["totals"]["requests"]);

    // The key lives in the tab's session storage only: no cookie, nothing in the URL.
    let url = browser.script("return location.href + document.cookie").await;
    assert!(!url.as_str().unwrap().contains(&key[..12]), "{url}");

    // A customer's key does not open the operator's view.
    browser.click("#sign-out").await;
    sign_in(&browser, "operator", &key).await;
    let error = browser.wait_for("document.getElementById('signin-error').textContent", "the refusal").await;
    assert!(error.as_str().unwrap().contains("not the admin key"), "{error}");
    assert_eq!(browser.script("return document.getElementById('operator').hidden").await, true);
    // The browser logs that 403; it is the only error so far (no asset refused, nothing blocked).
    let errors = browser.severe_console_messages().await;
    assert!(errors.iter().all(|e| e.contains("/admin/keys") && e.contains("403")), "{errors:#?}");

    // A key without any usage yet: zeros and an empty state, not an error.
    sign_in(&browser, "customer", &fresh).await;
    browser.wait_for("document.body.dataset.view === 'customer'", "the new customer's view").await;
    assert_eq!(text_of(&browser, "total-requests").await, "0");
    assert_eq!(text_of(&browser, "quota-used").await, "0");
    assert_eq!(text_of(&browser, "requests-available").await, "1 of 1");
    assert_eq!(browser.script("return document.getElementById('no-tags').hidden").await, false);
    assert!(rows_of(&browser, "recent-table").await.is_empty());
    browser.click("#sign-out").await;

    // The operator: every key, its use this month against its limit, sortable, deactivatable.
    sign_in(&browser, "operator", ADMIN_KEY).await;
    browser.wait_for("document.body.dataset.view === 'operator'", "the operator's view").await;
    let listed: Value = admin_get(&server, "/admin/keys").send().await.unwrap().json().await.unwrap();
    let rows = rows_of(&browser, "keys-table").await;
    assert_eq!(rows.len(), 3);
    let ours = listed["keys"].as_array().unwrap().iter().find(|k| k["key_id"] == public_id.as_str()).unwrap();
    let row = rows.iter().find(|r| r[0] == public_id).unwrap();
    assert_eq!(
        row[1..6],
        [
            "acme-analytics".to_string(),
            "pro".into(),
            "active".into(),
            thousands(ours["used"].as_u64().unwrap()),
            thousands(ours["monthly_limit"].as_u64().unwrap()),
        ]
    );
    assert_eq!(row[7], utc(&ours["last_used_at"]));
    assert_eq!(ours["used"], quota["quota"]["usage"]["current_usage"]);

    // Sorted by use, most first (a second click turns the order).
    browser.click("th[data-sort='used'] button").await;
    browser.click("th[data-sort='used'] button").await;
    let users: Vec<String> = rows_of(&browser, "keys-table").await.into_iter().map(|r| r[1].clone()).collect();
    assert_eq!(users[0], "acme-analytics", "{users:?}");
    screenshot(&browser, "dashboard-operator", 1280, 700).await;
    screenshot(&browser, "dashboard-operator-phone", 390, 844).await;
    let overflow = browser.script("return document.documentElement.scrollWidth").await;
    assert!(overflow.as_u64().unwrap() <= 390, "the keys are wider than a phone: {overflow}");
    browser.call(reqwest::Method::POST, "/window/rect", json!({"width": 1280, "height": 900})).await;

    // Deactivate, with confirmation: cancelled, nothing changes; confirmed, the key is refused
    // from then on; activated again, it works again.
    browser.click("#keys-table tbody tr:first-child button").await;
    browser.wait_for("document.getElementById('confirm').open", "the confirmation").await;
    assert!(text_of(&browser, "confirm-text").await.contains(&public_id));
    browser.click("#confirm-cancel").await;
    browser.wait_for("!document.getElementById('confirm').open", "the confirmation to close").await;
    let listed: Value = admin_get(&server, "/admin/keys").send().await.unwrap().json().await.unwrap();
    assert!(listed["keys"].as_array().unwrap().iter().all(|k| k["status"] == "active"), "{listed}");
    browser.click("#keys-table tbody tr:first-child button").await;
    browser.wait_for("document.getElementById('confirm').open", "the confirmation").await;
    browser.click("#confirm-ok").await;
    browser
        .wait_for(
            "document.querySelector('#keys-table tbody tr:first-child').cells[3].textContent === 'deactivated'",
            "the new status",
        )
        .await;
    let listed: Value = admin_get(&server, "/admin/keys").send().await.unwrap().json().await.unwrap();
    let ours = listed["keys"].as_array().unwrap().iter().find(|k| k["key_id"] == public_id.as_str()).unwrap();
    assert_eq!(ours["status"], "deactivated");
    let refused = client().get(server.url("/usage/quota")).bearer_auth(&key).send().await.unwrap();
    assert_eq!(error_code(refused, 401).await, "api_key_deactivated");
    let button =
        browser.script("return document.querySelector('#keys-table tbody tr:first-child button').textContent").await;
    assert_eq!(button, "Activate");
    browser.click("#keys-table tbody tr:first-child button").await;
    browser.wait_for("document.getElementById('confirm').open", "the confirmation").await;
    browser.click("#confirm-ok").await;
    browser
        .wait_for(
            "document.querySelector('#keys-table tbody tr:first-child').cells[3].textContent === 'active'",
            "the key active again",
        )
        .await;
    assert_eq!(get_json(server.url("/usage/quota"), &key).await["authenticated"], true);

    // Nothing since was refused or blocked by the policy.
    let errors = browser.severe_console_messages().await;
    assert!(errors.is_empty(), "{errors:#?}");
    browser.quit().await;
}
