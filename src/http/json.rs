//! What is read from a request besides its headers: `ApiJson<T>` (the body within a time bound,
//! parsed as JSON, with refusals in the API's error shape; a body above
//! [`STANDARD_MAX_BYTES`] is parsed in its key's turn of the large lane, like engine work,
//! so a flood of large bodies cannot hold the async executor or every core), `BodyReader`
//! (the same, piece by piece, for a handler that looks at a body while it arrives), `ApiQuery<T>`
//! (the query string, refused as 422 when it does not parse), and `refuse_unreadable_bodies`,
//! the middleware that turns away, before any byte of the body is read, a body declared larger
//! than the limit (413) or sent compressed (415).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use futures_util::StreamExt as _;

use super::AppState;
use super::auth::CallerKeyId;
use super::error::ApiError;
use super::work::STANDARD_MAX_BYTES;
use crate::keys::KeyId;

pub struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned + Send + 'static> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let mut body = BodyReader::new(req, state)?;
        while body.read_more().await? {}
        body.parse(state).await.map(ApiJson)
    }
}

/// A JSON request body being read as it arrives, within the body timeout and the size limit,
/// so that a handler can look at what has come (`received`) and refuse the request before the
/// rest is read. `parse` then parses it: bodies up to [`STANDARD_MAX_BYTES`] on the spot (a few
/// milliseconds at most), larger ones in the large lane, on the blocking pool in their key's
/// turn, never on the core kept for everyone else.
pub struct BodyReader {
    stream: axum::body::BodyDataStream,
    received: Vec<u8>,
    /// The body limit, and the time the body may take to arrive.
    limit: usize,
    within: std::time::Duration,
    deadline: tokio::time::Instant,
    /// Whose turn of the large lane a large body is parsed in.
    key_id: Option<KeyId>,
}

impl BodyReader {
    /// Starts reading `req`'s body; a content type other than JSON is refused unread (415).
    pub fn new(req: Request, state: &AppState) -> Result<BodyReader, ApiError> {
        if !is_json(req.headers()) {
            return Err(ApiError::UnsupportedMediaType);
        }
        let key_id = req.extensions().get::<CallerKeyId>().map(|k| k.0);
        let within = state.settings.body_timeout;
        Ok(BodyReader {
            stream: req.into_body().into_data_stream(),
            received: Vec::new(),
            limit: state.settings.max_body_bytes,
            within,
            deadline: tokio::time::Instant::now() + within,
            key_id,
        })
    }

    /// Reads the next piece that arrives; `false` once the body has ended.
    pub async fn read_more(&mut self) -> Result<bool, ApiError> {
        let piece = match tokio::time::timeout_at(self.deadline, self.stream.next()).await {
            Ok(Some(Ok(piece))) => piece,
            Ok(None) => return Ok(false),
            Ok(Some(Err(e))) => return Err(ApiError::InvalidJson(format!("Failed to buffer the request body: {e}"))),
            Err(_) => return Err(ApiError::RequestTimeout(self.within.as_secs())),
        };
        if self.received.len() + piece.len() > self.limit {
            return Err(ApiError::PayloadTooLarge(self.limit));
        }
        self.received.extend_from_slice(&piece);
        Ok(true)
    }

    /// The body's bytes received so far.
    pub fn received(&self) -> &[u8] {
        &self.received
    }

    /// The whole body (read it first) as `T`.
    pub async fn parse<T: serde::de::DeserializeOwned + Send + 'static>(self, state: &AppState) -> Result<T, ApiError> {
        let BodyReader { received, limit, key_id, .. } = self;
        let size = received.len();
        let parse = move || axum::Json::<T>::from_bytes(&received);
        let parsed =
            if size <= STANDARD_MAX_BYTES { parse() } else { state.engine_lanes.run(key_id, size, parse).await? };
        match parsed {
            Ok(axum::Json(value)) => Ok(value),
            Err(rejection) => Err(map_rejection(rejection, limit)),
        }
    }
}

/// `Content-Type: application/json` (or `application/<anything>+json`), as axum's JSON extractor
/// asks.
fn is_json(headers: &axum::http::HeaderMap) -> bool {
    let Some(value) = headers.get(header::CONTENT_TYPE).and_then(|v| v.to_str().ok()) else { return false };
    let essence = value.split(';').next().unwrap_or_default().trim().to_ascii_lowercase();
    essence == "application/json" || (essence.starts_with("application/") && essence.ends_with("+json"))
}

fn map_rejection(rejection: JsonRejection, limit: usize) -> ApiError {
    match rejection {
        JsonRejection::MissingJsonContentType(_) => ApiError::UnsupportedMediaType,
        JsonRejection::JsonDataError(e) => ApiError::InvalidRequest(e.body_text()),
        JsonRejection::JsonSyntaxError(e) => ApiError::InvalidJson(e.body_text()),
        other if other.status() == StatusCode::PAYLOAD_TOO_LARGE => ApiError::PayloadTooLarge(limit),
        other => ApiError::InvalidJson(other.body_text()),
    }
}

/// The query string as `T`; a malformed or repeated parameter is a 422 naming it.
pub struct ApiQuery<T>(pub T);

impl<T: serde::de::DeserializeOwned, S: Send + Sync> FromRequestParts<S> for ApiQuery<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, Self::Rejection> {
        match axum::extract::Query::<T>::from_request_parts(parts, state).await {
            Ok(axum::extract::Query(value)) => Ok(ApiQuery(value)),
            Err(rejection) => Err(ApiError::InvalidRequest(query_message(&rejection))),
        }
    }
}

fn query_message(rejection: &QueryRejection) -> String {
    format!("Bad query string: {}", rejection.body_text().trim_start_matches("Failed to deserialize query string: "))
}

/// Middleware: a declared `Content-Length` above the body limit is 413 and a `Content-Encoding`
/// other than `identity` is 415, before authentication and before the body is read.
pub async fn refuse_unreadable_bodies(State(state): State<AppState>, request: Request, next: Next) -> Response {
    let headers = request.headers();
    let declared = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.trim().parse::<u64>().ok());
    if declared.is_some_and(|n| n > state.settings.max_body_bytes as u64) {
        return ApiError::PayloadTooLarge(state.settings.max_body_bytes).into_response();
    }
    if let Some(encoding) = headers.get(header::CONTENT_ENCODING) {
        let name = String::from_utf8_lossy(encoding.as_bytes()).trim().to_ascii_lowercase();
        if !name.is_empty() && name != "identity" {
            return ApiError::UnsupportedEncoding(name.chars().take(32).collect()).into_response();
        }
    }
    next.run(request).await
}
