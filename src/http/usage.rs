//! `GET /usage/stats`: the caller's own usage, never another key's.

use axum::extract::{Query, State};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Authenticated;
use super::error::ApiError;
use crate::store::UsageSummary;

pub const MAX_DAYS: u32 = 3650;

#[derive(Debug, Deserialize)]
pub struct StatsParams {
    pub days: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StatsResponse {
    pub tracking_enabled: bool,
    pub days: u32,
    pub stats: UsageSummary,
}

pub fn parse_days(raw: Option<&str>) -> Result<u32, ApiError> {
    let Some(raw) = raw else { return Ok(30) };
    match raw.parse::<u32>() {
        Ok(d) if (1..=MAX_DAYS).contains(&d) => Ok(d),
        _ => Err(ApiError::InvalidRequest(format!(
            "days must be an integer from 1 to {MAX_DAYS}, got {raw:?}"
        ))),
    }
}

pub async fn stats(
    State(state): State<AppState>,
    Authenticated(key): Authenticated,
    Query(params): Query<StatsParams>,
) -> Result<axum::Json<StatsResponse>, ApiError> {
    let days = parse_days(params.days.as_deref())?;
    let since = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(24 * i64::from(days));
    let stats = state.store.usage_summary(key.id, since).await?;
    Ok(axum::Json(StatsResponse {
        tracking_enabled: true,
        days,
        stats,
    }))
}
