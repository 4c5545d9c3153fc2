//! `/docs`: the interactive API docs, over HTTP and in a real headless browser.
//!
//! The browser tests need Debian's `chromium` (and `chromium-driver` for "try it out"), which
//! `.ci/run` installs. Without them a test prints `SKIP: …` on the terminal and returns,
//! unless `OMNIMEMORY_TEST_REQUIRE_BROWSER` is set (CI sets it): then a missing browser fails.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Backend, Server, client};

/// Every operation of the API, as the page must list it.
const OPERATIONS: &[&str] =
    &["/compress", "/compress/content-aware", "/count-tokens", "/validate", "/usage/stats", "/usage/quota"];

#[tokio::test]
async fn the_docs_page_and_its_assets_come_from_the_binary_with_a_strict_csp() {
    let server = Server::start(&Backend::Sqlite);
    let page = client().get(server.url("/docs")).send().await.unwrap();
    assert_eq!(page.status(), 200);
    let csp = page.headers()["content-security-policy"].to_str().unwrap().to_string();
    for directive in ["default-src 'none'", "script-src 'self'", "connect-src 'self'", "frame-ancestors 'none'"] {
        assert!(csp.contains(directive), "{csp}");
    }
    assert_eq!(page.headers()["content-type"], "text/html; charset=utf-8");
    let html = page.text().await.unwrap();
    // Nothing on the page points at another host: every asset is the service's own.
    assert!(!html.contains("http:") && !html.contains("https:") && !html.contains("//"), "{html}");
    assert!(html.contains(r#"src="docs/swagger-ui-bundle.js""#), "{html}");

    for (asset, content_type, at_least) in [
        ("swagger-ui-bundle.js", "text/javascript; charset=utf-8", 1_000_000),
        ("swagger-ui.css", "text/css; charset=utf-8", 100_000),
        ("init.js", "text/javascript; charset=utf-8", 100),
        ("page.css", "text/css; charset=utf-8", 10),
    ] {
        let resp = client().get(server.url(&format!("/docs/{asset}"))).send().await.unwrap();
        assert_eq!((resp.status().as_u16(), resp.headers()["content-type"].to_str().unwrap()), (200, content_type));
        assert_eq!(resp.headers()["x-content-type-options"], "nosniff");
        assert!(resp.bytes().await.unwrap().len() >= at_least, "{asset}");
    }
    let init = client().get(server.url("/docs/init.js")).send().await.unwrap().text().await.unwrap();
    assert!(init.contains(r#"url: "openapi.json""#), "{init}");

    let missing = client().get(server.url("/docs/swagger-ui.js.map")).send().await.unwrap();
    assert_eq!(crate::harness::error_code(missing, 404).await, "not_found");
    let no_redirects = reqwest::Client::builder().redirect(reqwest::redirect::Policy::none()).build().unwrap();
    let slash = no_redirects.get(server.url("/docs/")).send().await.unwrap();
    assert_eq!((slash.status().as_u16(), slash.headers()["location"].to_str().unwrap()), (308, "../docs"));
}

#[tokio::test]
async fn a_headless_browser_shows_every_operation_of_the_api() {
    let Some(chromium) = browser_or_skip("a_headless_browser_shows_every_operation_of_the_api", CHROMIUM) else {
        return;
    };
    let server = Server::start(&Backend::Sqlite);
    let profile = tempfile::tempdir().unwrap();
    let mut command = Command::new(chromium);
    command.arg("--headless").args(QUIET_CHROMIUM).args(["--virtual-time-budget=10000", "--dump-dom"]);
    command.arg(format!("--user-data-dir={}", profile.path().display())).arg(server.url("/docs"));
    let dom = run_with_deadline(command, Duration::from_secs(90));

    // Swagger UI rendered the document it fetched: one block per operation, in its order.
    let listed: Vec<&str> = dom.split(r#"data-path=""#).skip(1).filter_map(|rest| rest.split('"').next()).collect();
    for path in OPERATIONS.iter().chain(&["/admin/api-key", "/health", "/docs"]) {
        assert!(listed.contains(path), "{path} is not listed; the page lists {listed:?}");
    }
    assert!(dom.contains("OmniMemory") && dom.contains("Authorize"), "{dom}");
}

#[tokio::test]
async fn try_it_out_sends_the_bearer_key_typed_into_authorize() {
    let test = "try_it_out_sends_the_bearer_key_typed_into_authorize";
    let (Some(chromium), Some(driver)) = (browser_or_skip(test, CHROMIUM), browser_or_skip(test, &["chromedriver"]))
    else {
        return;
    };
    let server = Server::start(&Backend::Sqlite);
    let key = server.create_key("docs-user", "pro");
    let browser = Browser::start(&driver, &chromium).await;
    browser.open(&server.url("/docs")).await;
    browser.wait_for("document.querySelectorAll('.opblock').length >= 10", "the operations").await;

    browser.click("button.authorize").await;
    browser.type_into(".modal-ux input[aria-label='auth-bearer-value']", &key).await;
    browser.click_found(BEARER_FORM_SUBMIT).await;
    browser.click(".modal-ux .btn-done").await;
    browser.wait_for("!document.querySelector('.modal-ux')", "the Authorize dialog to close").await;

    // The operation's example body, as the page fills it in, is a request the service answers.
    let op = "#operations-default-post_compress";
    browser.click(&format!("{op} .opblock-summary-control")).await;
    browser.wait_for(&format!("document.querySelector(\"{op} textarea.body-param__text\")"), "the request body").await;
    browser.click(&format!("{op} button.execute")).await;
    let status_cell = format!("document.querySelector(\"{op} .live-responses-table tbody .response-col_status\")");
    let status = browser.wait_for(&format!("{status_cell} && {status_cell}.innerText.trim()"), "the answer").await;
    let answer =
        browser.script(&format!("return document.querySelector(\"{op} .live-responses-table tbody\").innerText")).await;
    assert_eq!(status, "200", "{answer}");
    assert!(answer.as_str().unwrap().contains("compressed_text"), "{answer}");
    let curl = browser.script(&format!("return document.querySelector(\"{op} .curl-command\").innerText")).await;
    assert!(curl.as_str().unwrap().contains(&format!("Authorization: Bearer {key}")), "{curl}");

    // The page loaded and ran without one error: no refused asset, no script the policy blocked.
    let errors = browser.severe_console_messages().await;
    assert!(errors.is_empty(), "{errors:#?}");
    // The policy is really in force: the page cannot send anything to another host.
    browser.script("fetch('http://127.0.0.1:9/elsewhere').catch(() => {}); return null").await;
    let refused = browser.wait_for_console("connect-src").await;
    assert!(refused.contains("violates the following Content Security Policy"), "{refused}");
    browser.quit().await;
}

pub(crate) const CHROMIUM: &[&str] = &["chromium", "chromium-browser", "google-chrome"];

/// Root needs `--no-sandbox`; the rest keep Chromium from reaching for any host but the test
/// server (updates, sync, sign-in, metrics): the machine's network is closed, and no name but
/// 127.0.0.1 resolves, so not even a DNS query leaves it.
const QUIET_CHROMIUM: &[&str] = &[
    "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--no-default-browser-check",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-default-apps",
    "--disable-extensions",
    "--disable-domain-reliability",
    "--disable-client-side-phishing-detection",
    "--metrics-recording-only",
];

/// The "Authorize" button of the bearer scheme's form (the admin key's form has one too).
const BEARER_FORM_SUBMIT: &str =
    "document.querySelector(\"input[aria-label='auth-bearer-value']\").closest('form').querySelector('[type=submit]')";

/// The first of `names` on `PATH`; `None` with a SKIP line on the terminal when there is none,
/// or a failure when `OMNIMEMORY_TEST_REQUIRE_BROWSER` says the browser must be there.
pub(crate) fn browser_or_skip(test: &str, names: &[&str]) -> Option<PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    let found =
        std::env::split_paths(&path).flat_map(|dir| names.iter().map(move |n| dir.join(n))).find(|p| p.is_file());
    if found.is_none() {
        let message = format!("{test}: none of {names:?} on PATH (apt-get install chromium chromium-driver)");
        assert!(std::env::var_os("OMNIMEMORY_TEST_REQUIRE_BROWSER").is_none(), "{message}");
        // Straight to the terminal: the test harness would swallow a captured eprintln!.
        let _ = writeln!(std::io::stderr(), "SKIP: {message}");
    }
    found
}

/// Runs `command` to its end and returns its standard output; fails the test past `deadline`.
fn run_with_deadline(mut command: Command, deadline: Duration) -> String {
    let mut child = command.stdin(Stdio::null()).stdout(Stdio::piped()).stderr(Stdio::null()).spawn().unwrap();
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut out = String::new();
        let _ = stdout.read_to_string(&mut out);
        out
    });
    let started = Instant::now();
    while child.try_wait().unwrap().is_none() {
        if started.elapsed() > deadline {
            let _ = child.kill();
            let _ = child.wait();
            panic!("{command:?} did not finish within {deadline:?}");
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    reader.join().unwrap()
}

/// A headless Chromium driven over WebDriver (plain HTTP and JSON, so reqwest is enough).
pub(crate) struct Browser {
    driver: Child,
    port: u16,
    session: String,
    profile: tempfile::TempDir,
}

const ELEMENT: &str = "element-6066-11e4-a52e-4f735466cecf";
const WAIT: Duration = Duration::from_secs(30);

impl Browser {
    pub(crate) async fn start(driver: &Path, chromium: &Path) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let driver = Command::new(driver)
            .arg(format!("--port={port}"))
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let profile = tempfile::tempdir().unwrap();
        let mut browser = Browser { driver, port, session: String::new(), profile };
        let started = Instant::now();
        while client().get(browser.url("/status")).send().await.is_err() {
            assert!(started.elapsed() < WAIT, "chromedriver did not start");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let mut args: Vec<String> = QUIET_CHROMIUM.iter().map(|flag| flag.to_string()).collect();
        args.push("--headless=new".into());
        args.push("--window-size=1280,2000".into());
        args.push(format!("--user-data-dir={}", browser.profile.path().display()));
        let capabilities = json!({"capabilities": {"alwaysMatch": {
            "goog:loggingPrefs": {"browser": "ALL"},
            "goog:chromeOptions": {"binary": chromium, "args": args},
        }}});
        let session = browser.call(reqwest::Method::POST, "/session", capabilities).await;
        browser.session = session["sessionId"].as_str().unwrap_or_else(|| panic!("no session: {session}")).into();
        browser
    }

    fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// One WebDriver command; its `value`.
    pub(crate) async fn call(&self, method: reqwest::Method, path: &str, body: Value) -> Value {
        let path = if path == "/session" { path.to_string() } else { format!("/session/{}{path}", self.session) };
        let mut request = client().request(method.clone(), self.url(&path));
        if method != reqwest::Method::GET && method != reqwest::Method::DELETE {
            request = request.json(&body);
        }
        let resp = request.send().await.unwrap();
        let status = resp.status();
        let mut answer: Value = resp.json().await.unwrap();
        assert!(status.is_success(), "{method} {path}: {status} {answer}");
        answer["value"].take()
    }

    pub(crate) async fn open(&self, url: &str) {
        self.call(reqwest::Method::POST, "/url", json!({"url": url})).await;
    }

    pub(crate) async fn script(&self, js: &str) -> Value {
        self.call(reqwest::Method::POST, "/execute/sync", json!({"script": js, "args": []})).await
    }

    /// Polls `expression` until it is truthy; its value.
    pub(crate) async fn wait_for(&self, expression: &str, what: &str) -> Value {
        let started = Instant::now();
        loop {
            let value = self.script(&format!("return ({expression}) || null")).await;
            if !value.is_null() {
                return value;
            }
            assert!(started.elapsed() < WAIT, "{what} did not appear within {WAIT:?} ({expression})");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// A real click (as a user's) on the element `js` returns, once it exists.
    pub(crate) async fn click_found(&self, js: &str) {
        let element = self.wait_for(js, js).await;
        let id = element[ELEMENT].as_str().unwrap_or_else(|| panic!("not an element: {element}"));
        self.call(reqwest::Method::POST, &format!("/element/{id}/click"), json!({})).await;
    }

    pub(crate) async fn click(&self, css: &str) {
        self.click_found(&format!("document.querySelector({css:?})")).await;
    }

    /// Types `text` into the element `css` names, key by key, as a user would.
    pub(crate) async fn type_into(&self, css: &str, text: &str) {
        let element = self.wait_for(&format!("document.querySelector({css:?})"), css).await;
        let id = element[ELEMENT].as_str().unwrap();
        self.call(reqwest::Method::POST, &format!("/element/{id}/value"), json!({"text": text})).await;
    }

    /// The browser console's errors since the last call.
    pub(crate) async fn severe_console_messages(&self) -> Vec<String> {
        let entries = self.call(reqwest::Method::POST, "/se/log", json!({"type": "browser"})).await;
        entries
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["level"] == "SEVERE")
            .map(|e| e["message"].as_str().unwrap_or_default().to_string())
            .collect()
    }

    /// Waits for a console error that mentions `needle`.
    pub(crate) async fn wait_for_console(&self, needle: &str) -> String {
        let started = Instant::now();
        loop {
            if let Some(m) = self.severe_console_messages().await.into_iter().find(|m| m.contains(needle)) {
                return m;
            }
            assert!(started.elapsed() < WAIT, "no console error mentioning {needle}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    pub(crate) async fn quit(mut self) {
        self.call(reqwest::Method::DELETE, "", json!(null)).await;
        self.session.clear();
    }
}

impl Drop for Browser {
    /// Closes the browser even when the test failed halfway, then stops the driver.
    fn drop(&mut self) {
        if !self.session.is_empty()
            && let Ok(mut stream) = std::net::TcpStream::connect(("127.0.0.1", self.port))
        {
            let request = format!(
                "DELETE /session/{} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 0\r\nConnection: close\r\n\r\n",
                self.session
            );
            let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
            let _ = stream.write_all(request.as_bytes());
            let _ = stream.read_to_end(&mut Vec::new());
        }
        let _ = self.driver.kill();
        let _ = self.driver.wait();
    }
}
