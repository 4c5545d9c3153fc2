//! `POST /admin/api-key`: create a key. The admin key comes in `X-Admin-Key` or the body's
//! `admin_key`, never in the URL; without a configured admin key the answer is always 403.

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::is_admin;
use super::error::ApiError;
use super::json::ApiJson;
use crate::keys::{KeyRequest, Tier};

#[derive(Deserialize)]
pub struct CreateKeyBody {
    admin_key: Option<String>,
    user_id: Option<String>,
    tier: Option<String>,
    email: Option<String>,
    company: Option<String>,
    /// The key stops working this many days after creation (1 to 3650).
    expires_in_days: Option<u32>,
}

#[derive(Serialize)]
pub struct CreatedKey {
    api_key: String,
    key_id: String,
    user_id: String,
    tier: Tier,
    email: Option<String>,
    company: Option<String>,
    created_at: jiff::Timestamp,
    expires_at: Option<jiff::Timestamp>,
}

pub async fn create_key(
    State(state): State<AppState>,
    headers: HeaderMap,
    body: Result<ApiJson<CreateKeyBody>, ApiError>,
) -> Result<(StatusCode, axum::Json<CreatedKey>), ApiError> {
    let header = headers.get("x-admin-key").and_then(|v| v.to_str().ok());
    let body_key = body.as_ref().ok().and_then(|b| b.0.admin_key.as_deref());
    // The admin check comes first: a caller without the admin key learns nothing about the body.
    if !is_admin(&state, header, body_key) {
        return Err(ApiError::AdminForbidden);
    }
    let ApiJson(body) = body?;
    let request = KeyRequest::parse(
        body.user_id.as_deref().unwrap_or(""),
        body.tier.as_deref().unwrap_or("free"),
        body.email.as_deref(),
        body.company.as_deref(),
    )
    .map_err(|e| ApiError::InvalidRequest(e.to_string()))?;
    let expires_at = match body.expires_in_days {
        None => None,
        Some(days @ 1..=3650) => Some(jiff::Timestamp::now() + jiff::SignedDuration::from_hours(24 * i64::from(days))),
        Some(other) => {
            return Err(ApiError::InvalidRequest(format!("expires_in_days must be from 1 to 3650, got {other}")));
        }
    };
    let (key, new) = KeyRequest { expires_at, ..request }.issue();
    let record = state.store.insert_key(&new).await?;
    tracing::info!(key = %record.public_id, user_id = %record.user_id, tier = %record.tier, "api key created");
    Ok((
        StatusCode::CREATED,
        axum::Json(CreatedKey {
            api_key: key.expose_secret().to_string(),
            key_id: record.public_id,
            user_id: record.user_id,
            tier: record.tier,
            email: record.email,
            company: record.company,
            created_at: record.created_at,
            expires_at: record.expires_at,
        }),
    ))
}
