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
//! - A request hyper refuses while parsing it (bad framing or header syntax, a URI or headers
//!   over its limits) gets the API's error body too (`FramingErrorBodies`).
//!
//! What it does not do: routing, authentication, the error bodies of handled requests (the
//! router's job). Each request carries the peer's address as axum's `ConnectInfo`.

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
        let io = TokioIo::new(FramingErrorBodies::new(stream));
        let connection = graceful.watch(http.serve_connection(io, service));
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

/// The connection's byte stream, with one change: the bare answer hyper writes on its own when
/// a request cannot be parsed (`400`/`414`/`431`, `content-length: 0`, then the connection
/// closes) is replaced by the same status with the API's `{"detail","code"}` body.
///
/// Recognised exactly: hyper's refusal is one write holding a whole response head of status
/// 4xx with `connection: close` and `content-length: 0` and nothing after it. No answer of the
/// router looks like that: its error answers all have a JSON body, and its bodies (JSON, with
/// control characters escaped) never hold a raw CR LF. Writes are not vectored, so hyper hands
/// over a response head in one buffer.
pub struct FramingErrorBodies<T> {
    inner: T,
    /// A replacement answer not yet fully written, and how much of it was.
    pending: Option<(Vec<u8>, usize)>,
}

impl<T> FramingErrorBodies<T> {
    pub fn new(inner: T) -> Self {
        FramingErrorBodies { inner, pending: None }
    }
}

fn is_bare_refusal(buf: &[u8]) -> Option<u16> {
    const MARK: &[u8] = b"\r\nconnection: close\r\ncontent-length: 0\r\n";
    if !buf.starts_with(b"HTTP/1.1 4") || !buf.ends_with(b"\r\n\r\n") || buf.len() > 512 {
        return None;
    }
    if !buf.windows(MARK.len()).any(|w| w == MARK) {
        return None;
    }
    std::str::from_utf8(buf.get(9..12)?).ok()?.parse().ok()
}

impl<T: tokio::io::AsyncWrite + Unpin> FramingErrorBodies<T> {
    fn poll_pending(&mut self, cx: &mut std::task::Context<'_>) -> std::task::Poll<std::io::Result<()>> {
        use std::task::Poll;
        while let Some((bytes, written)) = self.pending.as_mut() {
            if *written == bytes.len() {
                self.pending = None;
                break;
            }
            match std::pin::Pin::new(&mut self.inner).poll_write(cx, &bytes[*written..]) {
                Poll::Ready(Ok(0)) => return Poll::Ready(Err(std::io::ErrorKind::WriteZero.into())),
                Poll::Ready(Ok(n)) => *written += n,
                Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
                Poll::Pending => return Poll::Pending,
            }
        }
        Poll::Ready(Ok(()))
    }
}

impl<T: tokio::io::AsyncRead + Unpin> tokio::io::AsyncRead for FramingErrorBodies<T> {
    fn poll_read(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &mut tokio::io::ReadBuf<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::pin::Pin::new(&mut self.inner).poll_read(cx, buf)
    }
}

impl<T: tokio::io::AsyncWrite + Unpin> tokio::io::AsyncWrite for FramingErrorBodies<T> {
    fn poll_write(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
        buf: &[u8],
    ) -> std::task::Poll<std::io::Result<usize>> {
        use std::task::Poll;
        match self.poll_pending(cx) {
            Poll::Ready(Ok(())) => {}
            Poll::Ready(Err(e)) => return Poll::Ready(Err(e)),
            Poll::Pending => return Poll::Pending,
        }
        if let Some(status) = is_bare_refusal(buf) {
            self.pending = Some((crate::http::ApiError::framing_response(status), 0));
            // The replacement now stands for `buf`; what is not written yet goes out on flush.
            return match self.poll_pending(cx) {
                Poll::Ready(Err(e)) => Poll::Ready(Err(e)),
                _ => Poll::Ready(Ok(buf.len())),
            };
        }
        std::pin::Pin::new(&mut self.inner).poll_write(cx, buf)
    }

    fn poll_flush(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        std::pin::Pin::new(&mut self.inner).poll_flush(cx)
    }

    fn poll_shutdown(
        mut self: std::pin::Pin<&mut Self>,
        cx: &mut std::task::Context<'_>,
    ) -> std::task::Poll<std::io::Result<()>> {
        std::task::ready!(self.poll_pending(cx))?;
        std::pin::Pin::new(&mut self.inner).poll_shutdown(cx)
    }

    fn is_write_vectored(&self) -> bool {
        false
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn only_hypers_bare_refusals_are_recognised() {
        let bare = b"HTTP/1.1 431 Request Header Fields Too Large\r\nconnection: close\r\ncontent-length: 0\r\ndate: Tue, 01 Dec 2026 22:40:53 GMT\r\n\r\n";
        assert_eq!(super::is_bare_refusal(bare), Some(431));
        let ours = b"HTTP/1.1 408 Request Timeout\r\ncontent-type: application/json\r\nconnection: close\r\ncontent-length: 60\r\n\r\n";
        assert_eq!(super::is_bare_refusal(ours), None);
        let ok = b"HTTP/1.1 200 OK\r\nconnection: close\r\ncontent-length: 0\r\n\r\n";
        assert_eq!(super::is_bare_refusal(ok), None);
    }
}
