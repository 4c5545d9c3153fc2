//! `GET /usage/stats`, `/usage/quota`, `/usage/daily` and `/usage/recent`: the caller's own
//! usage, never another key's.

use axum::extract::State;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Authenticated;
use super::error::ApiError;
use super::json::ApiQuery;
use crate::keys::Tier;
use crate::quota::Period;
use crate::store::{DailyUsage, RecentRecord, TagName, TagUsage, UsageSummary, is_tag_name};

pub const MAX_DAYS: u32 = 3650;

/// Only these parameters are read; anything naming another key or user is ignored.
#[derive(Debug, Deserialize)]
pub struct StatsParams {
    pub days: Option<String>,
    pub group_by: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct StatsResponse {
    pub tracking_enabled: bool,
    pub days: u32,
    pub stats: UsageSummary,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub group_by: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub groups: Option<Vec<TagUsage>>,
}

/// A metadata key to group by: 1 to 64 of `A-Z a-z 0-9 _ - .`.
pub fn parse_group_by(raw: Option<&str>) -> Result<Option<String>, ApiError> {
    let Some(tag) = raw.filter(|t| !t.is_empty()) else { return Ok(None) };
    if !is_tag_name(tag) {
        return Err(ApiError::InvalidRequest("group_by must be 1 to 64 characters of A-Z a-z 0-9 _ - .".into()));
    }
    Ok(Some(tag.to_string()))
}

pub fn parse_days(raw: Option<&str>) -> Result<u32, ApiError> {
    let Some(raw) = raw else { return Ok(30) };
    match raw.parse::<u32>() {
        Ok(d) if (1..=MAX_DAYS).contains(&d) => Ok(d),
        _ => Err(ApiError::InvalidRequest(format!("days must be an integer from 1 to {MAX_DAYS}, got {raw:?}"))),
    }
}

pub async fn stats(
    State(state): State<AppState>,
    Authenticated(key): Authenticated,
    ApiQuery(params): ApiQuery<StatsParams>,
) -> Result<axum::Json<StatsResponse>, ApiError> {
    let days = parse_days(params.days.as_deref())?;
    let group_by = parse_group_by(params.group_by.as_deref())?;
    let since = state.clock.now() - jiff::SignedDuration::from_hours(24 * i64::from(days));
    let stats = state.store.usage_summary(key.id, since).await?;
    let groups = match &group_by {
        Some(tag) => Some(state.store.usage_by_tag(key.id, since, tag).await?),
        None => None,
    };
    Ok(axum::Json(StatsResponse { tracking_enabled: true, days, stats, group_by, groups }))
}

#[derive(Debug, Serialize)]
pub struct QuotaResponse {
    pub authenticated: bool,
    pub tier: Tier,
    pub user_id: String,
    pub key_id: String,
    /// The key's last successful use before this request (`null` if none) and its model.
    pub last_used_at: Option<jiff::Timestamp>,
    pub last_used_model: Option<String>,
    pub quota: Quota,
}

#[derive(Debug, Serialize)]
pub struct Quota {
    pub usage: QuotaUsage,
    pub rate_limit: QuotaRate,
}

/// Limits that are unlimited are `null`, with `unlimited: true`.
#[derive(Debug, Serialize)]
pub struct QuotaUsage {
    pub monthly_limit: Option<u64>,
    pub current_usage: u64,
    pub reserved: u64,
    pub remaining: Option<u64>,
    pub usage_percent: Option<f64>,
    pub unlimited: bool,
    pub period: Period,
    pub resets_at: jiff::Timestamp,
}

#[derive(Debug, Serialize)]
pub struct QuotaRate {
    pub tier: Tier,
    pub tokens_available: Option<u64>,
    pub tokens_capacity: Option<u64>,
    pub refill_rate: Option<f64>,
    pub unlimited: bool,
    pub requests_per_second: f64,
    pub burst: u64,
    pub requests_available: u64,
}

pub async fn quota(
    State(state): State<AppState>,
    Authenticated(key): Authenticated,
) -> Result<axum::Json<QuotaResponse>, ApiError> {
    let policy = state.settings.policy_for(&key);
    let status = state.limiter.status(&state.store, key.id, &policy, state.clock.now()).await?;
    let limit = status.monthly_limit;
    let usage = QuotaUsage {
        monthly_limit: limit,
        current_usage: status.used,
        reserved: status.reserved,
        remaining: limit.map(|l| l.saturating_sub(status.used)),
        usage_percent: limit.map(|l| if l == 0 { 100.0 } else { status.used as f64 * 100.0 / l as f64 }),
        unlimited: limit.is_none(),
        period: status.period,
        resets_at: status.resets_at,
    };
    let tokens = status.tokens.as_ref();
    let rate_limit = QuotaRate {
        tier: key.tier,
        tokens_available: tokens.map(|t| t.available.floor() as u64),
        tokens_capacity: tokens.map(|t| t.capacity as u64),
        refill_rate: tokens.map(|t| (t.per_second * 100.0).round() / 100.0),
        unlimited: tokens.is_none(),
        requests_per_second: status.requests_per_second,
        burst: status.burst,
        requests_available: status.requests_remaining,
    };
    // This instance's memory is fresher than storage, which is written once a minute.
    let (last_used_at, last_used_model) = state.last_use.latest_of(&key, None);
    Ok(axum::Json(QuotaResponse {
        authenticated: true,
        last_used_at,
        last_used_model,
        tier: key.tier,
        user_id: key.user_id,
        key_id: key.public_id,
        quota: Quota { usage, rate_limit },
    }))
}

/// `GET /usage/daily`: `days` (as for `/usage/stats`).
#[derive(Debug, Deserialize)]
pub struct DailyParams {
    pub days: Option<String>,
}

/// The caller's usage per UTC day over the same window as `/usage/stats?days=N` (the last
/// N × 24 hours), so `totals` equal its totals: the first and the last day are partial.
#[derive(Debug, Serialize)]
pub struct DailyResponse {
    pub days: u32,
    pub since: jiff::Timestamp,
    pub until: jiff::Timestamp,
    /// Every UTC day from `since`'s to `until`'s, in order; days without requests are zeros.
    pub daily: Vec<DailyUsage>,
    pub totals: DailyTotals,
    /// The metadata tag names on the window's latest 1,000 tagged records, most used first:
    /// what `group_by` takes.
    pub tags: Vec<TagName>,
}

#[derive(Debug, Default, Serialize)]
pub struct DailyTotals {
    pub requests: u64,
    pub original_tokens: u64,
    pub compressed_tokens: u64,
    pub tokens_saved: u64,
}

pub async fn daily(
    State(state): State<AppState>,
    Authenticated(key): Authenticated,
    ApiQuery(params): ApiQuery<DailyParams>,
) -> Result<axum::Json<DailyResponse>, ApiError> {
    let days = parse_days(params.days.as_deref())?;
    let until = state.clock.now();
    let since = until - jiff::SignedDuration::from_hours(24 * i64::from(days));
    let found = state.store.usage_by_day(key.id, since).await?;
    let tags = state.store.tag_names(key.id, since).await?.into_iter().filter(|t| is_tag_name(&t.name)).collect();
    let daily = every_day(since, until, found);
    let mut totals = DailyTotals::default();
    for d in &daily {
        totals.requests += d.requests;
        totals.original_tokens += d.original_tokens;
        totals.compressed_tokens += d.compressed_tokens;
        totals.tokens_saved += d.tokens_saved;
    }
    Ok(axum::Json(DailyResponse { days, since, until, daily, totals, tags }))
}

/// One entry per UTC day from `since`'s to `until`'s: the days found, zeros for the others.
fn every_day(since: jiff::Timestamp, until: jiff::Timestamp, found: Vec<DailyUsage>) -> Vec<DailyUsage> {
    let utc = |ts: jiff::Timestamp| jiff::tz::Offset::UTC.to_datetime(ts).date();
    let (first, last) = (utc(since), utc(until));
    let mut found = found.into_iter().peekable();
    let mut all = Vec::new();
    let mut day = first;
    while day <= last {
        let date = day.strftime("%Y-%m-%d").to_string();
        // Found days are never before `since`'s; a day after `until`'s (a record stamped by an
        // instance whose clock runs ahead) is left out, like any day outside the window.
        while found.peek().is_some_and(|f| f.date < date) {
            found.next();
        }
        match found.next_if(|f| f.date == date) {
            Some(f) => all.push(f),
            None => all.push(DailyUsage { date, ..DailyUsage::default() }),
        }
        let Ok(next) = day.tomorrow() else { break };
        day = next;
    }
    all
}

/// `GET /usage/recent`: `limit`, 1 to 100 (default 20).
#[derive(Debug, Deserialize)]
pub struct RecentParams {
    pub limit: Option<String>,
}

pub const MAX_RECENT: u32 = 100;

#[derive(Debug, Serialize)]
pub struct RecentResponse {
    pub limit: u32,
    /// The caller's latest usage records, newest first.
    pub requests: Vec<RecentRecord>,
}

pub async fn recent(
    State(state): State<AppState>,
    Authenticated(key): Authenticated,
    ApiQuery(params): ApiQuery<RecentParams>,
) -> Result<axum::Json<RecentResponse>, ApiError> {
    let limit = match params.limit.as_deref() {
        None => 20,
        Some(raw) => match raw.parse::<u32>() {
            Ok(n) if (1..=MAX_RECENT).contains(&n) => n,
            _ => {
                return Err(ApiError::InvalidRequest(format!(
                    "limit must be an integer from 1 to {MAX_RECENT}, got {raw:?}"
                )));
            }
        },
    };
    let requests = state.store.recent_usage(key.id, limit).await?;
    Ok(axum::Json(RecentResponse { limit, requests }))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn day(date: &str, requests: u64) -> DailyUsage {
        DailyUsage { date: date.into(), requests, ..DailyUsage::default() }
    }

    #[test]
    fn every_day_of_the_window_is_listed_once_in_order() {
        let since: jiff::Timestamp = "2026-02-26T10:00:00Z".parse().unwrap();
        let until: jiff::Timestamp = "2026-03-02T09:00:00Z".parse().unwrap();
        let filled = every_day(since, until, vec![day("2026-02-27", 3), day("2026-03-02", 1)]);
        let dates: Vec<(&str, u64)> = filled.iter().map(|d| (d.date.as_str(), d.requests)).collect();
        assert_eq!(
            dates,
            [("2026-02-26", 0), ("2026-02-27", 3), ("2026-02-28", 0), ("2026-03-01", 0), ("2026-03-02", 1)]
        );
    }
}
