//! `GET /metrics`: Prometheus text exposition of the service's counters (no authentication,
//! like `/health`). What is measured: every request by route and status, its latency, tokens in
//! and out of `/compress`, and the usage writer's batch sizes.

use std::sync::OnceLock;
use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::http::header;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use metrics_exporter_prometheus::{PrometheusBuilder, PrometheusHandle};

static RECORDER: OnceLock<Option<PrometheusHandle>> = OnceLock::new();

/// Installs the process-wide recorder once; later calls reuse it.
pub fn install() {
    RECORDER.get_or_init(|| {
        let buckets = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0];
        let builder = PrometheusBuilder::new().set_buckets(&buckets).ok()?;
        builder.install_recorder().map_err(|e| tracing::warn!("metrics disabled: {e}")).ok()
    });
}

/// Middleware: counts each request by route template (never the raw path) and status.
pub async fn track(request: Request, next: Next) -> Response {
    let route = request.extensions().get::<MatchedPath>().map_or("unmatched", |p| p.as_str()).to_string();
    let started = Instant::now();
    let response = next.run(request).await;
    let status = response.status().as_u16().to_string();
    metrics::counter!("omnimemory_http_requests_total", "route" => route.clone(), "status" => status).increment(1);
    metrics::histogram!("omnimemory_http_request_duration_seconds", "route" => route)
        .record(started.elapsed().as_secs_f64());
    response
}

pub async fn render() -> Response {
    let body = RECORDER.get().and_then(Option::as_ref).map(PrometheusHandle::render).unwrap_or_default();
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4")], body).into_response()
}
