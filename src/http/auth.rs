//! Authentication: the `Authenticated` extractor (Bearer API keys) and the admin-key check.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use crate::keys::{ApiKey, KeyRecord};

/// The caller's key record, proven active and unexpired. Handlers that take it are authenticated.
#[derive(Debug, Clone)]
pub struct Authenticated(pub KeyRecord);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(AUTHORIZATION).ok_or(ApiError::MissingApiKey)?;
        let value = header.to_str().map_err(|_| ApiError::InvalidApiKey)?.trim();
        let (scheme, token) = value.split_once(' ').ok_or(ApiError::MissingApiKey)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::MissingApiKey);
        }
        let key = ApiKey::parse(token.trim()).map_err(|_| ApiError::InvalidApiKey)?;
        let record = state.store.key_by_hash(&key.hash()).await?.ok_or(ApiError::InvalidApiKey)?;
        if !record.active {
            return Err(ApiError::ApiKeyDeactivated);
        }
        if record.is_expired(jiff::Timestamp::now()) {
            return Err(ApiError::ApiKeyExpired);
        }
        Ok(Authenticated(record))
    }
}

/// Whether the request carries the operator's admin key (header first, then the body field).
/// Always false while no admin key is configured.
pub fn is_admin(state: &AppState, header: Option<&str>, body_field: Option<&str>) -> bool {
    let Some(admin) = &state.settings.admin_key else {
        return false;
    };
    header.is_some_and(|h| admin.matches(h)) || body_field.is_some_and(|b| admin.matches(b))
}
