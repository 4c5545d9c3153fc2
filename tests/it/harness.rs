//! Starts the real `omnimemory` binary on port 0 with a temporary data folder, and runs the CLI.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use omnimemory::clock::FakeClock;
use omnimemory::config::{Overrides, Settings};

pub const ADMIN_KEY: &str = "test-admin-secret-0123456789abcdef";

/// Why a test that runs only with a test server configured finds none: the tests were built
/// with the variable set (`build.rs`), and run without it.
pub const UNCONFIGURED: &str =
    "OMNIMEMORY_TEST_DATABASE_URL / OMNIMEMORY_TEST_REDIS_URL were set when the tests were built but not now";

/// Where a test's server keeps its data: SQLite in its data folder, or a fresh schema of the
/// PostgreSQL database named by `OMNIMEMORY_TEST_DATABASE_URL`.
#[derive(Debug, Clone)]
pub enum Backend {
    Sqlite,
    /// PostgreSQL, plus Redis limits (under a prefix of its own) when `OMNIMEMORY_TEST_REDIS_URL` is set.
    Postgres {
        url: String,
        redis: Option<(String, String)>,
    },
}

impl Backend {
    /// PostgreSQL with Redis limits, for tests ignored unless both are configured.
    pub async fn shared() -> Backend {
        match Backend::postgres().await.expect(UNCONFIGURED) {
            b @ Backend::Postgres { redis: Some(_), .. } => b,
            _ => panic!("{UNCONFIGURED}"),
        }
    }

    /// A new empty schema, or `None` when no test database is configured.
    pub async fn postgres() -> Option<Backend> {
        use sqlx::{Connection as _, Executor as _};
        let base = std::env::var("OMNIMEMORY_TEST_DATABASE_URL").ok().filter(|u| !u.is_empty())?;
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);
        let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
        let n = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let schema = format!("it_{}_{nanos:x}_{n}", std::process::id());
        let mut conn = sqlx::PgConnection::connect(&base).await.expect("connect to OMNIMEMORY_TEST_DATABASE_URL");
        if n == 0 {
            drop_stale_schemas(&mut conn, nanos).await;
        }
        conn.execute(sqlx::AssertSqlSafe(format!("CREATE SCHEMA {schema}"))).await.unwrap();
        let sep = if base.contains('?') { '&' } else { '?' };
        let redis =
            std::env::var("OMNIMEMORY_TEST_REDIS_URL").ok().filter(|u| !u.is_empty()).map(|u| (u, schema.clone()));
        Some(Backend::Postgres { url: format!("{base}{sep}options[search_path]={schema}"), redis })
    }

    /// Environment that points the binary at this backend.
    pub fn env(&self) -> Vec<(&'static str, String)> {
        match self {
            Backend::Sqlite => vec![],
            Backend::Postgres { url, redis } => {
                let mut env = vec![("OMNIMEMORY_DATABASE_URL", url.clone())];
                if let Some((redis_url, prefix)) = redis {
                    env.push(("OMNIMEMORY_REDIS_URL", redis_url.clone()));
                    env.push(("OMNIMEMORY_REDIS_PREFIX", prefix.clone()));
                }
                env
            }
        }
    }

    /// A connection to the database holding `table`'s data (`api_keys.db` or `usage.db` on SQLite).
    pub async fn connect(&self, home: &Path, table: &str) -> sqlx::AnyConnection {
        use sqlx::Connection as _;
        sqlx::any::install_default_drivers();
        let url = match self {
            Backend::Sqlite => {
                let file = if table == "api_keys" { "api_keys.db" } else { "usage.db" };
                format!("sqlite://{}", home.join(file).display())
            }
            Backend::Postgres { url, .. } => url.clone(),
        };
        sqlx::AnyConnection::connect(&url).await.unwrap()
    }
}

/// Drops the schemas of test runs that started over an hour ago, so the test database does not
/// grow run after run.
async fn drop_stale_schemas(conn: &mut sqlx::PgConnection, now_nanos: u128) {
    use sqlx::Executor as _;
    let names: Vec<(String,)> = sqlx::query_as("SELECT nspname::text FROM pg_namespace WHERE nspname LIKE 'it\\_%'")
        .fetch_all(&mut *conn)
        .await
        .unwrap_or_default();
    for (name,) in names {
        let started = name.split('_').nth(2).and_then(|hex| u128::from_str_radix(hex, 16).ok());
        if started.is_some_and(|t| now_nanos.saturating_sub(t) > 3_600_000_000_000) {
            let _ = conn.execute(sqlx::AssertSqlSafe(format!("DROP SCHEMA IF EXISTS {name} CASCADE"))).await;
        }
    }
}

/// Runs each named `async fn(Backend)` as a test on SQLite, and on PostgreSQL when
/// `OMNIMEMORY_TEST_DATABASE_URL` is set; without it, the PostgreSQL variants are reported as
/// ignored with that reason (`build.rs` sets the `omnimemory_test_postgres` cfg), not as passed.
#[macro_export]
macro_rules! on_both_backends {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            async fn $name() {
                super::$name($crate::harness::Backend::Sqlite).await
            })*
        }
        mod postgres {
            $(#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
            #[cfg_attr(not(omnimemory_test_postgres), ignore = "needs OMNIMEMORY_TEST_DATABASE_URL")]
            async fn $name() {
                super::$name($crate::harness::Backend::postgres().await.expect($crate::harness::UNCONFIGURED)).await
            })*
        }
    };
}

/// The app itself (`omnimemory::http::App`, as `serve` runs it) on a loopback port, with a fake
/// clock; the admin CLI's commands run in process on the same clock ([`InProcess::admin`]), so
/// a test moves time for both.
pub struct InProcess {
    pub base: String,
    pub clock: Arc<FakeClock>,
    /// The data folder, removed when the test ends.
    _home: tempfile::TempDir,
    settings: Settings,
    /// Ends `run_until`; sent by `stop`, or when the test drops the app.
    stop: Option<tokio::sync::oneshot::Sender<()>>,
    task: Option<tokio::task::JoinHandle<()>>,
}

impl Drop for InProcess {
    fn drop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }
}

/// `omnimemory admin …` as clap parses it, for [`InProcess::admin`].
#[derive(clap::Parser)]
struct AdminCli {
    #[command(flatten)]
    args: omnimemory::admin::AdminArgs,
}

impl InProcess {
    pub async fn start(backend: &Backend, now: &str, config_toml: &str) -> InProcess {
        let home = tempfile::tempdir().unwrap();
        std::fs::write(home.path().join("config.toml"), config_toml).unwrap();
        let mut env = backend.env();
        env.push(("OMNIMEMORY_HOME", home.path().to_string_lossy().to_string()));
        env.push(("OMNIMEMORY_ADMIN_KEY", ADMIN_KEY.to_string()));
        env.push(("OMNIMEMORY_ADDR", "127.0.0.1:0".to_string()));
        let lookup = |k: &str| env.iter().find(|(name, _)| *name == k).map(|(_, v)| v.clone());
        let settings = Settings::load_from(&Overrides::default(), lookup).unwrap();
        let clock = Arc::new(FakeClock::new(now.parse().unwrap()));
        let app = omnimemory::http::App::bind(settings.clone(), clock.clone()).await.unwrap();
        let base = format!("http://{}", app.address());
        let (stop, stopped) = tokio::sync::oneshot::channel::<()>();
        let task = tokio::spawn(app.run_until(async move {
            let _ = stopped.await;
        }));
        InProcess { base, clock, _home: home, settings, stop: Some(stop), task: Some(task) }
    }

    /// Stops the app as `serve` stops on SIGTERM: drains, flushes the usage writer, closes storage.
    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        if let Some(task) = self.task.take() {
            task.await.unwrap();
        }
    }

    /// `omnimemory admin ARGS` on this server's data, at its clock's time; its JSON output.
    pub async fn admin(&self, args: &[&str]) -> serde_json::Value {
        use clap::Parser as _;
        let all = ["admin", "--json"].iter().chain(args);
        let cli = AdminCli::try_parse_from(all).unwrap_or_else(|e| panic!("admin {args:?}: {e}"));
        let outcome = omnimemory::admin::run(&cli.args, &self.settings, self.clock.as_ref()).await.unwrap();
        outcome.json
    }

    /// A new key's full secret, created by `admin create-key` at this server's time.
    pub async fn key(&self, user: &str, tier: &str, extra: &[&str]) -> String {
        let mut args = vec!["create-key", "--user-id", user, "--tier", tier];
        args.extend_from_slice(extra);
        let created = self.admin(&args).await;
        created["api_key"].as_str().unwrap_or_else(|| panic!("{created}")).to_string()
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    pub async fn compress(&self, key: &str, context: &str) -> reqwest::Response {
        client()
            .post(self.url("/compress"))
            .bearer_auth(key)
            .json(&serde_json::json!({"context": context, "target_compression": 0.5}))
            .send()
            .await
            .unwrap()
    }
}

/// A data folder and a backend, for tests that run the CLI without a server.
pub struct TestEnv {
    pub home: PathBuf,
    pub backend: Backend,
    _dir: tempfile::TempDir,
}

impl TestEnv {
    pub fn new(backend: Backend) -> TestEnv {
        let dir = tempfile::tempdir().unwrap();
        TestEnv { home: dir.path().join("data"), backend, _dir: dir }
    }

    /// The CLI on an existing data folder (its owner keeps the folder alive).
    pub fn at(home: &Path, backend: Backend) -> TestEnv {
        TestEnv { home: home.to_path_buf(), backend, _dir: tempfile::tempdir().unwrap() }
    }

    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> CliOutput {
        cli_with(&self.home, &self.backend.env(), args, stdin)
    }
}

pub fn bin() -> &'static str {
    env!("CARGO_BIN_EXE_omnimemory")
}

/// A running server; killed on drop if not stopped.
pub struct Server {
    child: Option<Child>,
    pub base: String,
    pub home: PathBuf,
    pub backend: Backend,
    logs: Arc<Mutex<Vec<String>>>,
    _dir: Option<tempfile::TempDir>,
}

pub struct ServerBuilder {
    env: Vec<(String, String)>,
    home: Option<PathBuf>,
    backend: Backend,
    file_size_limit: Option<u64>,
}

impl ServerBuilder {
    pub fn env(mut self, k: &str, v: &str) -> Self {
        self.env.push((k.into(), v.into()));
        self
    }
    /// Uses an existing data folder (to restart a server on the same data).
    pub fn home(mut self, home: &Path) -> Self {
        self.home = Some(home.to_path_buf());
        self
    }
    /// Starts the server with this soft limit on the size of any file it writes
    /// (`RLIMIT_FSIZE`), so a write past it fails as on a full disk; `Server::lift_file_size_limit`
    /// is the space coming back. SIGXFSZ is ignored, as a full disk sends no signal either.
    pub fn file_size_limit(mut self, bytes: u64) -> Self {
        self.file_size_limit = Some(bytes);
        self
    }
    pub fn start(self) -> Server {
        let (dir, home) = match self.home {
            Some(h) => (None, h),
            None => {
                let d = tempfile::tempdir().unwrap();
                let h = d.path().join("data");
                (Some(d), h)
            }
        };
        let mut cmd = match self.file_size_limit {
            None => Command::new(bin()),
            Some(bytes) => {
                let mut sh = Command::new("sh");
                let limit = format!("--fsize={bytes}:unlimited");
                sh.args(["-c", "trap '' XFSZ; exec prlimit \"$0\" -- \"$@\"", &limit, bin()]);
                sh
            }
        };
        cmd.args(["serve", "--port", "0"])
            .env("OMNIMEMORY_HOME", &home)
            .env_remove("OMNIMEMORY_ADMIN_KEY")
            .env_remove("OMNIMEMORY_ADDR")
            .env_remove("OMNIMEMORY_DATABASE_URL")
            .env("RUST_LOG", "info")
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        for (k, v) in &self.backend.env() {
            cmd.env(k, v);
        }
        for (k, v) in &self.env {
            cmd.env(k, v);
        }
        let mut child = cmd.spawn().expect("start omnimemory serve");
        let stderr = child.stderr.take().unwrap();
        let logs = Arc::new(Mutex::new(Vec::new()));
        let (tx, rx) = std::sync::mpsc::channel();
        let sink = logs.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.split("listening on http://").nth(1) {
                    let _ = tx.send(rest.split_whitespace().next().unwrap_or("").to_string());
                }
                sink.lock().unwrap().push(line);
            }
        });
        let addr = rx.recv_timeout(Duration::from_secs(30)).unwrap_or_else(|_| {
            panic!("server did not start; logs: {:?}", logs.lock().unwrap());
        });
        Server { child: Some(child), base: format!("http://{addr}"), home, backend: self.backend, logs, _dir: dir }
    }
}

impl Server {
    pub fn builder(backend: &Backend) -> ServerBuilder {
        ServerBuilder { env: Vec::new(), home: None, backend: backend.clone(), file_size_limit: None }
    }

    /// A server with the admin key configured.
    pub fn start(backend: &Backend) -> Server {
        Server::builder(backend).env("OMNIMEMORY_ADMIN_KEY", ADMIN_KEY).start()
    }

    /// Runs the CLI against this server's data.
    pub fn cli(&self, args: &[&str], stdin: Option<&str>) -> CliOutput {
        cli_with(&self.home, &self.backend.env(), args, stdin)
    }

    pub async fn db(&self, table: &str) -> sqlx::AnyConnection {
        self.backend.connect(&self.home, table).await
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The server's process id.
    pub fn pid(&self) -> u32 {
        self.child.as_ref().expect("server running").id()
    }

    pub fn logs(&self) -> String {
        self.logs.lock().unwrap().join("\n")
    }

    /// Sends a signal and waits for the exit; returns the exit status.
    pub fn signal(&mut self, signal: &str) -> std::process::ExitStatus {
        let mut child = self.child.take().expect("server running");
        Command::new("kill").args([&format!("-{signal}"), &child.id().to_string()]).status().unwrap();
        let deadline = Instant::now() + Duration::from_secs(20);
        loop {
            if let Some(status) = child.try_wait().unwrap() {
                // Give the log reader a moment to drain the pipe.
                std::thread::sleep(Duration::from_millis(50));
                return status;
            }
            assert!(Instant::now() < deadline, "server did not exit after SIG{signal}");
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Lifts the limit set by `ServerBuilder::file_size_limit`.
    pub fn lift_file_size_limit(&self) {
        let pid = self.child.as_ref().expect("server running").id().to_string();
        let status = Command::new("prlimit").args(["--pid", &pid, "--fsize=unlimited:unlimited"]).status().unwrap();
        assert!(status.success());
    }

    /// Creates a key through the CLI against this server's data folder; returns the full key.
    pub fn create_key(&self, user: &str, tier: &str) -> String {
        self.create_key_with(user, tier, &[])
    }

    /// Same, with more `create-key` flags (the key's own limits).
    pub fn create_key_with(&self, user: &str, tier: &str, flags: &[&str]) -> String {
        created_key(
            &self.cli(&[&["admin", "create-key", "--user-id", user, "--tier", tier, "--json"], flags].concat(), None),
        )
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// The full key printed by `admin create-key --json`.
pub fn created_key(out: &CliOutput) -> String {
    assert_eq!(out.code, 0, "{}", out.stderr);
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    v["api_key"].as_str().unwrap().to_string()
}

pub struct CliOutput {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `omnimemory ARGS` with `OMNIMEMORY_HOME=home`, feeding `stdin` if given.
pub fn cli_with(home: &Path, env: &[(&str, String)], args: &[&str], stdin: Option<&str>) -> CliOutput {
    let mut child = Command::new(bin())
        .args(args)
        .env("OMNIMEMORY_HOME", home)
        .env_remove("OMNIMEMORY_DATABASE_URL")
        .env_remove("OMNIMEMORY_REDIS_URL")
        .envs(env.iter().map(|(k, v)| (k, v)))
        .env_remove("OMNIMEMORY_ADMIN_KEY")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut input = child.stdin.take().unwrap();
    if let Some(s) = stdin {
        // A command that fails before reading its input closes the pipe; that is its answer.
        let _ = input.write_all(s.as_bytes());
    }
    drop(input);
    let out = child.wait_with_output().unwrap();
    CliOutput {
        code: out.status.code().unwrap_or(-1),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

pub fn client() -> reqwest::Client {
    reqwest::Client::new()
}

/// Prose of about `bytes` bytes (a sentence past it at most): sentences of distinct-looking
/// words, the same for the same seed.
pub fn prose(bytes: usize, seed: u64) -> String {
    let mut state = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
    let mut next = move || {
        state = state.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
        (state >> 33) as usize
    };
    let mut text = String::with_capacity(bytes + 64);
    while text.len() < bytes {
        for i in 0..(8 + next() % 12) {
            text.push_str(if i == 0 { "" } else { " " });
            text.extend((0..(3 + next() % 6)).map(|_| (b'a' + (next() % 26) as u8) as char));
        }
        text.push_str(". ");
    }
    text
}

/// `GET url` with a key; the JSON body.
pub async fn get_json(url: impl reqwest::IntoUrl, key: &str) -> serde_json::Value {
    client().get(url).bearer_auth(key).send().await.unwrap().json().await.unwrap()
}

/// `POST /count-tokens` with a key: the `token_count` of `text` for `model_id`.
pub async fn count_tokens(server: &Server, key: &str, text: &str, model_id: &str) -> u64 {
    let body = serde_json::json!({"text": text, "model_id": model_id});
    let counted: serde_json::Value = client()
        .post(server.url("/count-tokens"))
        .bearer_auth(key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    counted["token_count"].as_u64().unwrap()
}

/// Asserts the one error shape and returns the `code`.
pub async fn error_code(resp: reqwest::Response, status: u16) -> String {
    let got = resp.status().as_u16();
    let body: serde_json::Value = resp.json().await.expect("error body is JSON");
    assert_eq!(got, status, "body: {body}");
    assert!(body["detail"].is_string(), "no detail in {body}");
    body["code"].as_str().expect("code is a string").to_string()
}
