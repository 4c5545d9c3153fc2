//! What is read from a request besides its headers: `ApiJson<T>` (axum's JSON extractor with a
//! time bound on the body and its rejections mapped onto the API's error shape), `ApiQuery<T>`
//! (the query string, refused as 422 when it does not parse), and `refuse_unreadable_bodies`,
//! the middleware that turns away, before any byte of the body is read, a body declared larger
//! than the limit (413) or sent compressed (415).

use axum::extract::rejection::{JsonRejection, QueryRejection};
use axum::extract::{FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts;
use axum::http::{StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

use super::AppState;
use super::error::ApiError;

pub struct ApiJson<T>(pub T);

impl<T: serde::de::DeserializeOwned> FromRequest<AppState> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &AppState) -> Result<Self, Self::Rejection> {
        let within = state.settings.body_timeout;
        match tokio::time::timeout(within, axum::Json::<T>::from_request(req, state)).await {
            Ok(Ok(axum::Json(value))) => Ok(ApiJson(value)),
            Ok(Err(rejection)) => Err(map_rejection(rejection, state.settings.max_body_bytes)),
            Err(_) => Err(ApiError::RequestTimeout(within.as_secs())),
        }
    }
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
