//! The one table from failures to HTTP status and stable `code`, and the one error body shape
//! `{"detail": …, "code": …}`. Only this module knows status codes.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::rate_headers::rate_headers;
use crate::limits::{AdmitError, RateStatus, Refusal};
use crate::store::{ErrorClass, Outage, StoreError};
use crate::usage::WriteError;

#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error("Missing API key: send 'Authorization: Bearer om_<tier>_<secret>'")]
    MissingApiKey,
    #[error("Invalid API key")]
    InvalidApiKey,
    #[error("API key is deactivated")]
    ApiKeyDeactivated,
    #[error("API key has expired")]
    ApiKeyExpired,
    #[error("API key was rotated and its grace period is over; use the key's new secret")]
    ApiKeyRotated,
    #[error("Admin access denied")]
    AdminForbidden,
    #[error("Malformed JSON body: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Expected 'Content-Type: application/json'")]
    UnsupportedMediaType,
    #[error("Content-Encoding '{0}' is not accepted; send the body uncompressed")]
    UnsupportedEncoding(String),
    #[error("The request body did not arrive within {0} s")]
    RequestTimeout(u64),
    #[error("Too many failed admin-key attempts from this address; retry after {retry_after} s")]
    AdminRateLimited { retry_after: u64 },
    #[error("Request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    /// `/validate`'s two texts would take more than the documented work to compare.
    #[error("{0}")]
    TooLargeToCompare(#[from] omnimemory_engine::compress::validate::TooLargeToCompare),
    #[error("Malformed HTTP request: it breaks HTTP/1.1 framing or header syntax")]
    MalformedRequest,
    #[error("Request URI is too long")]
    UriTooLong,
    #[error("Request headers are too large (at most 100 headers, about 400 KB in all)")]
    HeadersTooLarge,
    #[error("This Idempotency-Key was already used with another request body")]
    IdempotencyKeyReused,
    #[error("A request with this Idempotency-Key is still running; retry when it is answered")]
    IdempotentRequestInProgress,
    #[error("No such endpoint")]
    NotFound,
    /// An admin operation named a key id that no key has.
    #[error("No API key has the id {0:?}")]
    KeyNotFound(String),
    #[error("Method not allowed on this endpoint")]
    MethodNotAllowed,
    #[error("Request rate limit exceeded for tier '{}'", .status.tier)]
    RequestRateLimited { retry_after: u64, status: Box<RateStatus> },
    #[error("Token rate limit exceeded for tier '{}'", .status.tier)]
    TokenRateLimited { retry_after: u64, status: Box<RateStatus> },
    #[error("Monthly token quota exceeded: {}; it resets at {resets_at}", quota_left(*.limit, *.used, *.requested))]
    QuotaExceeded { limit: u64, used: u64, requested: Option<u64>, resets_at: jiff::Timestamp, status: Box<RateStatus> },
    /// `reason` is for the client; the limiter's own words, if any, go to the log only.
    #[error("Rate limiter unavailable: {reason}")]
    LimiterUnavailable {
        reason: String,
        #[source]
        cause: Option<Box<dyn std::error::Error + Send + Sync>>,
    },
    /// The client sees only the kind of outage; the driver's words go to the log.
    #[error("Storage unavailable: {}; retry later", .outage.describe())]
    StorageUnavailable {
        outage: Outage,
        #[source]
        cause: StoreError,
    },
    #[error("Internal error")]
    Internal(#[source] anyhow::Error),
}

impl ApiError {
    /// The table: status and stable code of every failure a client can see.
    fn status_and_code(&self) -> (StatusCode, &'static str) {
        use ApiError::*;
        match self {
            MissingApiKey => (StatusCode::UNAUTHORIZED, "missing_api_key"),
            InvalidApiKey => (StatusCode::UNAUTHORIZED, "invalid_api_key"),
            ApiKeyDeactivated => (StatusCode::UNAUTHORIZED, "api_key_deactivated"),
            ApiKeyExpired => (StatusCode::UNAUTHORIZED, "api_key_expired"),
            ApiKeyRotated => (StatusCode::UNAUTHORIZED, "api_key_rotated"),
            AdminForbidden => (StatusCode::FORBIDDEN, "admin_forbidden"),
            InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            InvalidRequest(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
            UnsupportedMediaType | UnsupportedEncoding(_) => {
                (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type")
            }
            RequestTimeout(_) => (StatusCode::REQUEST_TIMEOUT, "request_timeout"),
            AdminRateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "admin_rate_limited"),
            PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            TooLargeToCompare(_) => (StatusCode::PAYLOAD_TOO_LARGE, "too_large_to_compare"),
            MalformedRequest => (StatusCode::BAD_REQUEST, "malformed_request"),
            UriTooLong => (StatusCode::URI_TOO_LONG, "uri_too_long"),
            HeadersTooLarge => (StatusCode::REQUEST_HEADER_FIELDS_TOO_LARGE, "headers_too_large"),
            IdempotencyKeyReused => (StatusCode::UNPROCESSABLE_ENTITY, "idempotency_key_reused"),
            IdempotentRequestInProgress => (StatusCode::CONFLICT, "request_in_progress"),
            NotFound => (StatusCode::NOT_FOUND, "not_found"),
            KeyNotFound(_) => (StatusCode::NOT_FOUND, "key_not_found"),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            RequestRateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "request_rate_limited"),
            TokenRateLimited { .. } => (StatusCode::TOO_MANY_REQUESTS, "token_rate_limited"),
            QuotaExceeded { .. } => (StatusCode::PAYMENT_REQUIRED, "quota_exceeded"),
            LimiterUnavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "limiter_unavailable"),
            StorageUnavailable { .. } => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

impl ApiError {
    /// Storage failed: a 503 naming only the kind of outage, also for a failure that has none
    /// (a health probe that fails for any reason says storage is not ok).
    pub fn storage(cause: StoreError) -> ApiError {
        let outage = match cause.class() {
            ErrorClass::Unavailable(outage) => outage,
            ErrorClass::Conflict | ErrorClass::Corrupt | ErrorClass::Bug => Outage::Failed,
        };
        ApiError::StorageUnavailable { outage, cause }
    }
}

/// What a 402 tells: what the request needed (when counted) against what the month has left.
fn quota_left(limit: u64, used: u64, requested: Option<u64>) -> String {
    let left = limit.saturating_sub(used);
    match requested {
        Some(n) => format!("this request needs {n} tokens and {left} of this month's {limit} are left"),
        None => format!("{left} of this month's {limit} tokens are left"),
    }
}

impl From<Refusal> for ApiError {
    fn from(r: Refusal) -> Self {
        match r {
            Refusal::RequestRate { retry_after, status } => ApiError::RequestRateLimited { retry_after, status },
            Refusal::TokenRate { retry_after, status } => ApiError::TokenRateLimited { retry_after, status },
            Refusal::QuotaExceeded { limit, used, requested, resets_at, status } => {
                ApiError::QuotaExceeded { limit, used, requested, resets_at, status }
            }
        }
    }
}

impl From<AdmitError> for ApiError {
    fn from(e: AdmitError) -> Self {
        match e {
            AdmitError::Refused(r) => r.into(),
            AdmitError::Unavailable(detail) => ApiError::LimiterUnavailable {
                reason: "the rate limiter cannot be reached; retry later".into(),
                cause: Some(detail.into()),
            },
            AdmitError::Store(e) => e.into(),
        }
    }
}

impl From<WriteError> for ApiError {
    fn from(e: WriteError) -> Self {
        match e {
            WriteError::Store(cause) => ApiError::storage(cause),
            // The handler answers these itself (402 with the key's rate status; the replay).
            WriteError::Stopped | WriteError::OverQuota { .. } | WriteError::AnsweredElsewhere => {
                ApiError::Internal(e.into())
            }
        }
    }
}

impl From<StoreError> for ApiError {
    /// Storage that cannot serve now is a 503 the client may retry. A conflict, corrupt data or
    /// a bug is a 500: no request path expects one, and the client can do nothing about it.
    fn from(cause: StoreError) -> Self {
        match cause.class() {
            ErrorClass::Unavailable(outage) => ApiError::StorageUnavailable { outage, cause },
            ErrorClass::Conflict | ErrorClass::Corrupt | ErrorClass::Bug => ApiError::Internal(cause.into()),
        }
    }
}

impl ApiError {
    /// The complete response (head and `{"detail","code"}` body) for a request the HTTP library
    /// refused while parsing it, before any handler ran (`status` is the one it chose).
    pub fn framing_response(status: u16) -> Vec<u8> {
        let error = match status {
            414 => ApiError::UriTooLong,
            431 => ApiError::HeadersTooLarge,
            _ => ApiError::MalformedRequest,
        };
        let (status, code) = error.status_and_code();
        let body = serde_json::to_string(&ErrorBody { detail: error.to_string(), code }).unwrap_or_default();
        format!(
            "HTTP/1.1 {} {}\r\ncontent-type: application/json\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
            status.as_u16(),
            status.canonical_reason().unwrap_or(""),
            body.len()
        )
        .into_bytes()
    }
}

#[derive(serde::Serialize)]
pub struct ErrorBody {
    pub detail: String,
    pub code: &'static str,
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let (status, code) = self.status_and_code();
        if status.is_server_error() {
            // Logged once, here, with the cause chain; the client sees only the summary.
            let cause: &dyn std::error::Error = &self;
            let mut chain = String::new();
            let mut source = cause.source();
            while let Some(s) = source {
                chain.push_str(": ");
                chain.push_str(&s.to_string());
                source = s.source();
            }
            tracing::error!(code, "{self}{chain}");
        }
        let mut response = (status, Json(ErrorBody { detail: self.to_string(), code })).into_response();
        let headers = response.headers_mut();
        match &self {
            ApiError::MissingApiKey
            | ApiError::InvalidApiKey
            | ApiError::ApiKeyDeactivated
            | ApiError::ApiKeyExpired
            | ApiError::ApiKeyRotated => {
                headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            }
            ApiError::RequestRateLimited { retry_after, status }
            | ApiError::TokenRateLimited { retry_after, status } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
                rate_headers(headers, status);
            }
            ApiError::AdminRateLimited { retry_after } => {
                headers.insert(header::RETRY_AFTER, HeaderValue::from(*retry_after));
            }
            ApiError::RequestTimeout(_) => {
                headers.insert(header::CONNECTION, HeaderValue::from_static("close"));
            }
            ApiError::QuotaExceeded { resets_at, status, .. } => {
                if let Ok(v) = HeaderValue::from_str(&resets_at.to_string()) {
                    headers.insert("x-quota-reset", v);
                }
                rate_headers(headers, status);
            }
            _ => {}
        }
        response
    }
}
