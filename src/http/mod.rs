//! The HTTP service: routes, shared state, the auth extractor, and the error table.
//!
//! A request's path: `Authenticated` (key lookup by hash) → handler (parse the body into
//! domain types) → limiter admission → engine → usage record → JSON response with the rate
//! headers. Every failure becomes an `ApiError`, which is the only place that knows status
//! codes.

mod admin;
mod admin_keys;
mod admin_rotate;
mod auth;
mod compress;
mod dashboard;
mod docs;
mod embedded;
mod error;
mod json;
mod limits;
mod metrics;
mod rate_headers;
pub mod server;
mod token_floor;
mod usage;
mod usage_export;
mod work;

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::Router;
use axum::extract::{DefaultBodyLimit, State};
use axum::routing::{get, post};

pub use error::ApiError;

use crate::clock::{Clock, SystemClock};
use crate::config::Settings;
use crate::limits::{Limiter, LimiterHealth};
use crate::store::{FolderLock, Outage, Store, StoreError};
use crate::usage::UsageWriter;
use omnimemory_engine::tokens::Registry;

/// What every request shares, behind one `Arc`: a request's extractors each clone the state,
/// and one pointer is cheaper than a dozen handles (about 4% of the server's CPU under
/// small-request load went to cloning and dropping them).
#[derive(Clone)]
pub struct AppState(Arc<Shared>);

impl std::ops::Deref for AppState {
    type Target = Shared;
    fn deref(&self) -> &Shared {
        &self.0
    }
}

/// The handles behind [`AppState`].
pub struct Shared {
    pub store: Store,
    pub registry: Arc<Registry>,
    pub settings: Arc<Settings>,
    pub limiter: Limiter,
    pub writer: UsageWriter,
    pub keys: auth::KeyCache,
    /// Where engine work runs: inline, or in the blocking pool's standard or large lane.
    pub engine_lanes: work::EngineLanes,
    pub clock: Arc<dyn Clock>,
    pub storage_check: StorageCheck,
    pub admin_throttle: admin::AdminThrottle,
    /// `(key id, Idempotency-Key)` of the requests running now.
    pub idempotent_in_flight: compress::InFlight,
    /// Each key's last successful use, written at most once a minute per key.
    pub last_use: crate::usage::last_use::LastUseTracker,
}

/// How long after a failed usage batch `/health` keeps answering 503 without a newer batch.
const WRITE_FAILURE_WINDOW: Duration = Duration::from_secs(5);
/// How long a passed storage probe is trusted.
const PROBE_TRUSTED_FOR: Duration = Duration::from_secs(1);

/// The storage probe behind `/health`: one at a time, a pass trusted for a second, a result
/// shared with every caller that waited for it. `/health` needs no key, so however often it is
/// called, storage sees at most one probe running and about one write a second.
#[derive(Clone, Default)]
pub struct StorageCheck {
    /// When the latest probe finished, and the outage it found (`None`: storage is fine).
    last: Arc<tokio::sync::Mutex<Option<ProbeOutcome>>>,
}

type ProbeOutcome = (Instant, Option<Outage>);

impl StorageCheck {
    async fn run(&self, store: &Store, now: jiff::Timestamp) -> Result<(), StoreError> {
        let asked = Instant::now();
        let mut last = self.last.lock().await;
        if let Some((at, outcome)) = *last
            && (at >= asked || (outcome.is_none() && at.elapsed() < PROBE_TRUSTED_FOR))
        {
            return outcome.map_or(Ok(()), |outage| Err(StoreError::Unavailable(outage)));
        }
        let result = store.check_health(Duration::from_secs(1), now).await;
        *last = Some((Instant::now(), result.as_ref().err().map(|e| e.outage().unwrap_or(Outage::Failed))));
        result
    }
}

/// The service's state plus its background tasks; `shutdown` drains and closes them.
struct Service {
    pub state: AppState,
    writer_task: tokio::task::JoinHandle<()>,
    last_use_task: tokio::task::JoinHandle<()>,
    /// Applies admin quota resets to the limiter.
    reset_task: tokio::task::JoinHandle<()>,
    /// Forgets expired idempotent answers.
    purge_task: tokio::task::JoinHandle<()>,
    /// Quota alerts' webhook deliverer, when alerts are on.
    alerts_task: Option<tokio::task::JoinHandle<()>>,
    /// SQLite only: this process's claim on the data folder, released after storage closes.
    folder_lock: Option<FolderLock>,
}

impl Service {
    pub async fn open(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<Service> {
        use anyhow::Context as _;
        metrics::install();
        let folder_lock = match settings.database_url {
            Some(_) => None,
            None => Some(FolderLock::acquire(&settings.home)?),
        };
        let store =
            Store::open(&settings.home, settings.database_url.as_deref()).await.context("cannot open storage")?;
        let store = match &settings.alerts {
            Some(alerts) => store.with_quota_alerts(&alerts.thresholds),
            None => store,
        };
        let alerts_task =
            settings.alerts.clone().map(|a| crate::alerts::Deliverer::start(store.clone(), a, clock.clone()));
        let registry = Registry::load(&settings.home).context("cannot load the model registry")?;
        let limiter = Limiter::from_settings(&settings).context("cannot set up the rate limiter")?;
        tokio::task::spawn_blocking(warm_up_engine).await.context("engine warm-up failed")?;
        let (writer, writer_task) = UsageWriter::start(store.clone(), limiter.clone());
        let reset_task = crate::limits::watch_quota_resets(store.clone(), limiter.clone(), clock.clone());
        let purge_task = crate::usage::start_answer_purge(store.clone(), clock.clone());
        let (last_use, last_use_task) = crate::usage::last_use::LastUseTracker::start(store.clone());
        let state = AppState(Arc::new(Shared {
            store,
            registry: Arc::new(registry),
            settings: Arc::new(settings),
            limiter,
            writer,
            keys: auth::KeyCache::default(),
            engine_lanes: work::EngineLanes::for_this_machine(),
            clock,
            storage_check: StorageCheck::default(),
            admin_throttle: admin::AdminThrottle::default(),
            idempotent_in_flight: compress::InFlight::default(),
            last_use,
        }));
        Ok(Service { state, writer_task, last_use_task, reset_task, purge_task, alerts_task, folder_lock })
    }

    /// Call once every router clone is gone: flushes the usage writer and closes storage.
    pub async fn shutdown(self) {
        let Service { state, writer_task, last_use_task, reset_task, purge_task, alerts_task, folder_lock } = self;
        for task in [Some(reset_task), Some(purge_task), alerts_task].into_iter().flatten() {
            task.abort();
        }
        state.last_use.flush().await;
        last_use_task.abort();
        let (store, limiter) = (state.store.clone(), state.limiter.clone());
        drop(state);
        if let Err(e) = writer_task.await {
            tracing::error!("usage writer failed: {e}");
        }
        // Every handler is gone and the last batch is settled: save every key's bucket levels.
        if let Err(e) = limiter.save_levels(&store).await {
            tracing::error!("cannot save rate-limit state at shutdown: {e}");
        }
        drop(limiter);
        store.close().await;
        drop(folder_lock);
    }
}

pub fn router(state: AppState) -> Router {
    let body_limit = state.settings.max_body_bytes;
    Router::new()
        .route("/health", get(health))
        .route("/metrics", get(metrics::render))
        .route("/openapi.json", get(openapi))
        .route("/docs", get(|| async { docs::PAGE.page() }))
        .merge(docs::PAGE.asset_routes())
        .route("/dashboard", get(|| async { dashboard::PAGE.page() }))
        .merge(dashboard::PAGE.asset_routes())
        .route("/compress", post(compress::compress))
        // The original service's name for it; ours is content-aware already.
        .route("/compress/content-aware", post(compress::compress))
        .route("/count-tokens", post(compress::count_tokens))
        .route("/validate", post(compress::validate))
        .route("/usage/stats", get(usage::stats))
        .route("/usage/quota", get(usage::quota))
        .route("/usage/daily", get(usage::daily))
        .route("/usage/recent", get(usage::recent))
        .route("/usage/export", get(usage_export::export))
        .route("/admin/api-key", post(admin::create_key))
        .route("/admin/api-key/{key_id}/rotate", post(admin_rotate::rotate))
        .route("/admin/keys", get(admin_keys::list))
        .route("/admin/keys/{key_id}/deactivate", post(admin_keys::deactivate))
        .route("/admin/keys/{key_id}/activate", post(admin_keys::activate))
        .fallback(|| async { ApiError::NotFound })
        .method_not_allowed_fallback(|| async { ApiError::MethodNotAllowed })
        .layer(axum::middleware::from_fn_with_state(state.clone(), json::refuse_unreadable_bodies))
        .layer(axum::middleware::from_fn(metrics::track))
        .layer(DefaultBodyLimit::max(body_limit))
        .with_state(state)
}

/// The API's description (`docs/openapi.json`, kept true by a test over every route).
async fn openapi() -> impl axum::response::IntoResponse {
    ([(axum::http::header::CONTENT_TYPE, "application/json")], include_str!("../../docs/openapi.json"))
}

/// Builds the engine's lazily made tables (BPE vocabularies, word vectors) before the first
/// request, so no client pays for them.
fn warm_up_engine() {
    use omnimemory_engine::compress::{Budget, CompressRequest, compress};
    use omnimemory_engine::tokens::Encoding;
    let context = "Warm-up text. The service builds its tokenizer tables and word vectors once, \
                   at start, so that the first request of a client is as fast as any other request.";
    for encoding in [Encoding::Cl100k, Encoding::O200k] {
        let request = CompressRequest {
            context,
            query: Some("first request"),
            budget: Budget::Ratio(0.5),
            granularity: Default::default(),
        };
        let _ = compress(&request, encoding);
    }
}

#[derive(serde::Serialize)]
struct Health {
    status: &'static str,
    storage: &'static str,
    limits: String,
    version: &'static str,
}

/// 200 when storage takes writes and the limiter answers; 200 `degraded` when Redis is down but
/// every failure mode is open; 503 with the reason otherwise. Storage is not ok while usage
/// batches fail (within the last few seconds, none committed since) or while the probe fails.
async fn health(State(state): State<AppState>) -> Result<axum::Json<Health>, ApiError> {
    if let Some(outage) = state.writer.recent_failure(WRITE_FAILURE_WINDOW) {
        return Err(ApiError::storage(StoreError::Unavailable(outage)));
    }
    state.storage_check.run(&state.store, state.clock.now()).await.map_err(ApiError::storage)?;
    let (status, limits) = match state.limiter.health().await {
        LimiterHealth::Refusing { reason } => {
            let reason = format!("{reason}; requests that need it are refused");
            return Err(ApiError::LimiterUnavailable { reason, cause: None });
        }
        LimiterHealth::FailingOpen { reason } => {
            ("degraded", format!("{reason}; limits are not enforced meanwhile (failing open)"))
        }
        LimiterHealth::Working(where_state_lives) => ("healthy", where_state_lives.to_string()),
    };
    Ok(axum::Json(Health { status, storage: "ok", limits, version: env!("CARGO_PKG_VERSION") }))
}

/// The application: the service bound to its address. `serve` and the tests both start it
/// this way (`bind`, then `run_until`), so a test runs what production runs, shutdown included.
pub struct App {
    service: Service,
    listener: tokio::net::TcpListener,
    limits: server::ConnectionLimits,
}

impl App {
    /// Checks the settings, opens storage and the limiter, starts the background tasks, and
    /// binds `settings.addr` (port 0: any free port, see [`App::address`]). Every "now" comes
    /// from `clock`.
    pub async fn bind(settings: Settings, clock: Arc<dyn Clock>) -> anyhow::Result<App> {
        use anyhow::Context as _;
        if settings.admin_key.as_ref().is_some_and(|k| !k.is_long_enough()) {
            anyhow::bail!(
                "the admin key is shorter than {} characters; set a longer OMNIMEMORY_ADMIN_KEY \
                 (e.g. `openssl rand -base64 32`), or unset it to turn the admin endpoint off",
                crate::config::MIN_ADMIN_KEY_CHARS
            );
        }
        let addr = settings.addr;
        let limits = server::ConnectionLimits {
            max_connections: server::fit_connection_cap(
                settings.max_connections,
                crate::config::DEFAULT_MAX_CONNECTIONS,
            )?,
            header_timeout: settings.header_timeout,
        };
        let service = Service::open(settings, clock).await?;
        let listener = tokio::net::TcpListener::bind(addr).await.with_context(|| format!("cannot listen on {addr}"))?;
        Ok(App { service, listener, limits })
    }

    /// The address the app listens on.
    pub fn address(&self) -> std::net::SocketAddr {
        self.listener.local_addr().unwrap_or(self.service.state.settings.addr)
    }

    /// Serves until `shutdown` completes, then drains the requests in flight, the usage writer
    /// and the background tasks, and closes storage.
    pub async fn run_until(self, shutdown: impl std::future::Future<Output = ()>) {
        let App { service, listener, limits } = self;
        server::serve_connections(listener, router(service.state.clone()), limits, shutdown).await;
        service.shutdown().await;
    }
}

/// Runs the service until Ctrl-C or SIGTERM, then drains in-flight requests and closes storage.
pub async fn serve(settings: Settings) -> anyhow::Result<()> {
    let home = settings.home.clone();
    let app = App::bind(settings, Arc::new(SystemClock)).await?;
    tracing::info!("listening on http://{} (data folder {})", app.address(), home.display());
    app.run_until(shutdown_signal()).await;
    tracing::info!("stopped");
    Ok(())
}

async fn shutdown_signal() {
    let ctrl_c = async {
        let _ = tokio::signal::ctrl_c().await;
    };
    #[cfg(unix)]
    let terminate = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        _ = ctrl_c => {},
        _ = terminate => {},
    }
    tracing::info!("shutting down");
}
