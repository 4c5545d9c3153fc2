//! `POST /admin/api-key/{key_id}/rotate?grace_hours=H` (`X-Admin-Key`): a new secret for a key,
//! shown once; the key keeps its id, user, tier, limits, quota ledger and usage history. The
//! old secret keeps working for the grace period (default 24 hours, 0 = refused at once) and
//! is then refused with `api_key_rotated`. On this instance the old secret's cached entry is
//! dropped at once; other instances see the rotation within their key cache's half second.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::admin::require_admin;
use super::error::ApiError;
use super::json::ApiQuery;
use super::server::ClientAddr;
use crate::keys::{ApiKey, Tier, is_public_id};

/// The longest grace period: a year.
pub const MAX_GRACE_HOURS: u32 = 8760;
pub const DEFAULT_GRACE_HOURS: u32 = 24;

#[derive(Debug, Deserialize)]
pub struct RotateParams {
    pub grace_hours: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Rotated {
    /// The new secret: shown here once, never again.
    pub api_key: String,
    pub key_id: String,
    pub user_id: String,
    pub tier: Tier,
    pub rotated_at: jiff::Timestamp,
    pub grace_hours: u32,
    /// Until when the previous secret is accepted (`rotated_at` when the grace is 0).
    pub previous_key_valid_until: jiff::Timestamp,
    pub message: String,
}

pub async fn rotate(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Path(key_id): Path<String>,
    ApiQuery(params): ApiQuery<RotateParams>,
) -> Result<axum::Json<Rotated>, ApiError> {
    require_admin(&state, addr, &headers)?;
    if !is_public_id(&key_id) {
        let shown: String = key_id.chars().take(64).collect();
        return Err(ApiError::InvalidRequest(format!("key_id must be a key id like om_pro_AbCdEfGh, got {shown:?}")));
    }
    let grace_hours = match params.grace_hours.as_deref() {
        None => DEFAULT_GRACE_HOURS,
        Some(raw) => match raw.parse::<u32>() {
            Ok(h) if h <= MAX_GRACE_HOURS => h,
            _ => {
                return Err(ApiError::InvalidRequest(format!(
                    "grace_hours must be an integer from 0 to {MAX_GRACE_HOURS}, got {raw:?}"
                )));
            }
        },
    };
    let record = state.store.key_by_public_id(&key_id).await?.ok_or(ApiError::KeyNotFound(key_id))?;
    let new = ApiKey::rotate(&record.public_id).map_err(|e| ApiError::Internal(e.into()))?;
    let now = state.clock.now();
    let valid_until = now + jiff::SignedDuration::from_hours(i64::from(grace_hours));
    if !state.store.rotate_key(record.id, &new.hash(), now, valid_until).await? {
        return Err(ApiError::KeyNotFound(record.public_id));
    }
    state.keys.forget(record.id);
    tracing::info!(key = %record.public_id, user_id = %record.user_id, grace_hours, "api key rotated from the admin API");
    Ok(axum::Json(Rotated {
        api_key: new.expose_secret().to_string(),
        key_id: record.public_id,
        user_id: record.user_id,
        tier: record.tier,
        rotated_at: now,
        grace_hours,
        previous_key_valid_until: valid_until,
        message: "API key rotated. Store the new key now: it is shown only once.".to_string(),
    }))
}
