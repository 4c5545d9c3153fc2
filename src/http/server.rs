//! The connection layer under the router: accepts TCP connections and speaks HTTP/1.1 on them
//! with hyper, within bounds a slow or hostile client cannot stretch.
//!
//! - At most `max_connections` open at once; past that the server stops accepting (new
//!   connections wait in the kernel's queue) instead of running out of file descriptors, and
//!   the budget is checked against the process's descriptor limit at start.
//! - A request's headers must arrive within `header_timeout`, counted from the connection's
//!   start or the end of the previous response: so the same bound closes idle keep-alive
//!   connections and slow-header (slowloris) ones.
//! - The body timeout is applied where bodies are read (`json.rs`), the size bound before.
//!
//! What it does not do: routing, authentication, error bodies (the router's job). Each
//! request carries the peer's address as axum's `ConnectInfo`.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioIo, TokioTimer};
use tokio::net::TcpListener;
use tower::ServiceExt as _;

/// File descriptors kept for everything but client connections: storage pools, the health
/// probe's connections, SQLite's WAL and shared-memory files, Redis, logs.
pub const RESERVED_DESCRIPTORS: u64 = 128;

#[derive(Debug, Clone, Copy)]
pub struct ConnectionLimits {
    pub max_connections: usize,
    pub header_timeout: Duration,
}

/// How long shutdown waits for requests in flight before closing their connections.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Serves `router` on `listener` until `shutdown` resolves, then lets requests in flight finish.
pub async fn serve_connections(
    listener: TcpListener,
    router: Router,
    limits: ConnectionLimits,
    shutdown: impl Future<Output = ()>,
) {
    let permits = Arc::new(tokio::sync::Semaphore::new(limits.max_connections.max(1)));
    let graceful = hyper_util::server::graceful::GracefulShutdown::new();
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new()).header_read_timeout(limits.header_timeout);
    tokio::pin!(shutdown);
    loop {
        let permit = tokio::select! {
            permit = permits.clone().acquire_owned() => match permit {
                Ok(permit) => permit,
                Err(_) => break,
            },
            () = &mut shutdown => break,
        };
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    // Out of descriptors or a connection reset before accept: wait a moment
                    // rather than spin; the listener itself stays usable.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            () = &mut shutdown => break,
        };
        let _ = stream.set_nodelay(true);
        let router = router.clone();
        let service = hyper::service::service_fn(move |mut request: hyper::Request<hyper::body::Incoming>| {
            request.extensions_mut().insert(ConnectInfo(peer));
            router.clone().oneshot(request.map(axum::body::Body::new))
        });
        let connection = graceful.watch(http.serve_connection(TokioIo::new(stream), service));
        tokio::spawn(async move {
            // Timeouts and clients that hang up end here; nothing to report per connection.
            let _ = connection.await;
            drop(permit);
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("requests still running after {DRAIN_TIMEOUT:?}; closing their connections");
    }
}

/// The connection cap that fits the process's file-descriptor limit, raising the soft limit
/// towards the hard one if needed. `requested: None` is the default cap, lowered to fit with a
/// warning; a cap the operator asked for that cannot fit is an error.
pub fn fit_connection_cap(requested: Option<usize>, default: usize) -> anyhow::Result<usize> {
    let wanted = requested.unwrap_or(default);
    let needed = wanted as u64 + RESERVED_DESCRIPTORS;
    let limit = rlimit::increase_nofile_limit(needed).unwrap_or_else(|e| {
        tracing::warn!("cannot read the file-descriptor limit ({e}); assuming {needed}");
        needed
    });
    if limit >= needed {
        return Ok(wanted);
    }
    let fits = limit.saturating_sub(RESERVED_DESCRIPTORS) as usize;
    match requested {
        Some(n) => anyhow::bail!(
            "max_connections = {n} needs {needed} file descriptors, but this process may open only {limit} \
             (ulimit -n); lower OMNIMEMORY_MAX_CONNECTIONS to at most {fits} or raise the limit"
        ),
        None if fits >= 1 => {
            tracing::warn!("file-descriptor limit {limit}: serving at most {fits} connections at once");
            Ok(fits)
        }
        None => anyhow::bail!("this process may open only {limit} file descriptors (ulimit -n); too few to serve"),
    }
}

/// The client's IP address, when the request came through [`serve_connections`] (never a
/// refusal: a router served some other way sees `None`).
pub struct ClientAddr(pub Option<std::net::IpAddr>);

impl<S: Send + Sync> axum::extract::FromRequestParts<S> for ClientAddr {
    type Rejection = std::convert::Infallible;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, _: &S) -> Result<Self, Self::Rejection> {
        Ok(ClientAddr(parts.extensions.get::<ConnectInfo<SocketAddr>>().map(|c| c.0.ip())))
    }
}
