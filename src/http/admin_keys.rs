//! `GET /admin/keys` and `POST /admin/keys/{key_id}/deactivate|activate`: every key at a
//! glance for the operator (the dashboard's operator view), with the admin key in
//! `X-Admin-Key`. A customer's Bearer key opens none of them (403 `admin_forbidden`).
//!
//! The figures are the admin CLI's: this month's use is the quota ledger (`admin verify-key`),
//! the limit the key's effective monthly limit, the status `active` / `deactivated` /
//! `expired`. A deactivation holds on this instance from the next request, and on every other
//! instance within the half second of its key cache.

use axum::extract::{Path, State};
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::admin::require_admin;
use super::error::ApiError;
use super::json::ApiQuery;
use super::server::ClientAddr;
use crate::keys::{KeyId, KeyRecord, Tier, is_public_id};
use crate::quota::Period;

/// At most this many keys per answer.
pub const MAX_KEYS: u32 = 10_000;

#[derive(Debug, Deserialize)]
pub struct KeysParams {
    pub tier: Option<String>,
    pub limit: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct KeysResponse {
    /// The quota period the `used` figures are for (`YYYY-MM`, UTC).
    pub period: Period,
    pub resets_at: jiff::Timestamp,
    pub count: usize,
    /// Newest first.
    pub keys: Vec<KeyOverview>,
}

/// One key as the operator sees it. Never the secret, nor its hash.
#[derive(Debug, Serialize)]
pub struct KeyOverview {
    pub key_id: String,
    pub user_id: String,
    pub tier: Tier,
    pub email: Option<String>,
    pub company: Option<String>,
    /// `active`, `deactivated` or `expired`.
    pub status: &'static str,
    pub active: bool,
    pub created_at: jiff::Timestamp,
    pub expires_at: Option<jiff::Timestamp>,
    /// The key's effective monthly limit; `null` with `unlimited: true` when it has none.
    pub monthly_limit: Option<u64>,
    pub used: u64,
    pub remaining: Option<u64>,
    pub usage_percent: Option<f64>,
    pub unlimited: bool,
    /// The key's last successful use: its latest usage record, or a later `/count-tokens` or
    /// `/validate` (kept to the minute); `null` if it has none.
    pub last_used_at: Option<jiff::Timestamp>,
    /// The model that use named, when known.
    pub last_used_model: Option<String>,
}

pub async fn list(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    ApiQuery(params): ApiQuery<KeysParams>,
) -> Result<axum::Json<KeysResponse>, ApiError> {
    require_admin(&state, addr, &headers)?;
    let tier = match params.tier.as_deref().filter(|t| !t.is_empty()) {
        None => None,
        Some(raw) => Some(
            raw.parse::<Tier>()
                .map_err(|_| ApiError::InvalidRequest(format!("tier must be free, pro or enterprise, got {raw:?}")))?,
        ),
    };
    let limit = match params.limit.as_deref() {
        None => 1000,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_KEYS).contains(&n) => n,
            _ => {
                return Err(ApiError::InvalidRequest(format!(
                    "limit must be an integer from 1 to {MAX_KEYS}, got {raw:?}"
                )));
            }
        },
    };
    let now = state.clock.now();
    let period = Period::of(now);
    let records = state.store.list_keys(tier, limit).await?;
    let used = state.store.quota_used_by_key(period).await?;
    let ids: Vec<KeyId> = records.iter().map(|r| r.id).collect();
    let last_use = state.store.last_use_by_key(&ids).await?;
    let keys: Vec<KeyOverview> = records
        .into_iter()
        .map(|record| {
            let (used, last) = (used.get(&record.id).copied().unwrap_or(0), last_use.get(&record.id).copied());
            overview(&state, record, used, last, now)
        })
        .collect();
    Ok(axum::Json(KeysResponse { period, resets_at: Period::of(now).resets_at(), count: keys.len(), keys }))
}

pub async fn deactivate(
    state: State<AppState>,
    addr: ClientAddr,
    headers: HeaderMap,
    key_id: Path<String>,
) -> Result<axum::Json<KeyOverview>, ApiError> {
    set_active(state, addr, headers, key_id, false).await
}

pub async fn activate(
    state: State<AppState>,
    addr: ClientAddr,
    headers: HeaderMap,
    key_id: Path<String>,
) -> Result<axum::Json<KeyOverview>, ApiError> {
    set_active(state, addr, headers, key_id, true).await
}

async fn set_active(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    Path(key_id): Path<String>,
    active: bool,
) -> Result<axum::Json<KeyOverview>, ApiError> {
    require_admin(&state, addr, &headers)?;
    if !is_public_id(&key_id) {
        let shown: String = key_id.chars().take(64).collect();
        return Err(ApiError::InvalidRequest(format!("key_id must be a key id like om_pro_AbCdEfGh, got {shown:?}")));
    }
    let mut record = state.store.key_by_public_id(&key_id).await?.ok_or(ApiError::KeyNotFound(key_id))?;
    state.store.set_key_active(record.id, active).await?;
    state.keys.forget(record.id);
    let verb = if active { "activated" } else { "deactivated" };
    tracing::info!(key = %record.public_id, user_id = %record.user_id, "api key {verb} from the admin API");
    record.active = active;
    let now = state.clock.now();
    let used = state.store.quota_used(record.id, Period::of(now)).await?;
    let last = state.store.last_use_by_key(&[record.id]).await?.get(&record.id).copied();
    Ok(axum::Json(overview(&state, record, used, last, now)))
}

fn overview(
    state: &AppState,
    record: KeyRecord,
    used: u64,
    last_used_at: Option<jiff::Timestamp>,
    now: jiff::Timestamp,
) -> KeyOverview {
    let limit = state.settings.policy_for(&record).monthly_limit;
    let (last_used_at, last_used_model) = state.last_use.latest_of(&record, last_used_at);
    let status = record.status(now);
    KeyOverview {
        status,
        active: record.active,
        monthly_limit: limit,
        used,
        remaining: limit.map(|l| l.saturating_sub(used)),
        usage_percent: limit.map(|l| if l == 0 { 100.0 } else { used as f64 * 100.0 / l as f64 }),
        unlimited: limit.is_none(),
        last_used_at,
        last_used_model,
        key_id: record.public_id,
        user_id: record.user_id,
        tier: record.tier,
        email: record.email,
        company: record.company,
        created_at: record.created_at,
        expires_at: record.expires_at,
    }
}
