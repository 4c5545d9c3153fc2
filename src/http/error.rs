//! The one table from failures to HTTP status and stable `code`, and the one error body shape
//! `{"detail": …, "code": …}`. Only this module knows status codes.

use axum::Json;
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};

use crate::store::StoreError;

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
    #[error("Admin access denied")]
    AdminForbidden,
    #[error("Malformed JSON body: {0}")]
    InvalidJson(String),
    #[error("{0}")]
    InvalidRequest(String),
    #[error("Expected 'Content-Type: application/json'")]
    UnsupportedMediaType,
    #[error("Request body is larger than the limit of {0} bytes")]
    PayloadTooLarge(usize),
    #[error("No such endpoint")]
    NotFound,
    #[error("Method not allowed on this endpoint")]
    MethodNotAllowed,
    #[error("Storage unavailable: {0}")]
    StorageUnavailable(StoreError),
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
            AdminForbidden => (StatusCode::FORBIDDEN, "admin_forbidden"),
            InvalidJson(_) => (StatusCode::BAD_REQUEST, "invalid_json"),
            InvalidRequest(_) => (StatusCode::UNPROCESSABLE_ENTITY, "invalid_request"),
            UnsupportedMediaType => (StatusCode::UNSUPPORTED_MEDIA_TYPE, "unsupported_media_type"),
            PayloadTooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, "payload_too_large"),
            NotFound => (StatusCode::NOT_FOUND, "not_found"),
            MethodNotAllowed => (StatusCode::METHOD_NOT_ALLOWED, "method_not_allowed"),
            StorageUnavailable(_) => (StatusCode::SERVICE_UNAVAILABLE, "storage_unavailable"),
            Internal(_) => (StatusCode::INTERNAL_SERVER_ERROR, "internal_error"),
        }
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Timeout(_) => ApiError::StorageUnavailable(e),
            StoreError::Database(
                sqlx::Error::PoolTimedOut | sqlx::Error::PoolClosed | sqlx::Error::Io(_),
            ) => ApiError::StorageUnavailable(e),
            other => ApiError::Internal(other.into()),
        }
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
        let mut response = (
            status,
            Json(ErrorBody {
                detail: self.to_string(),
                code,
            }),
        )
            .into_response();
        if status == StatusCode::UNAUTHORIZED {
            response
                .headers_mut()
                .insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}
