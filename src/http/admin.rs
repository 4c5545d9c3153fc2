//! `POST /admin/api-key`: create a key. The admin key comes in `X-Admin-Key` or the body's
//! `admin_key`, never in the URL; without a configured admin key the answer is always 403.
//!
//! Guessing is throttled per client address: 10 failed attempts, then one more a minute;
//! while an address is throttled even the right key is 429 `admin_rate_limited`, so the
//! answers tell a guesser nothing. Successes cost nothing.

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::is_admin;
use super::error::ApiError;
use super::json::ApiJson;
use super::server::ClientAddr;
use crate::keys::{KeyRequest, Tier};
use crate::policy::{Bucket, Denied, Rate};

const ADMIN_FAILURES: Rate = Rate { capacity: 10.0, per_second: 1.0 / 60.0 };
/// Addresses tracked at once; past it, those that have recovered are forgotten first.
const ADMIN_THROTTLE_MAX: usize = 10_000;

/// Failed admin-key attempts per client address (a token bucket each).
#[derive(Clone, Default)]
pub struct AdminThrottle {
    failures: Arc<Mutex<HashMap<Option<IpAddr>, Bucket>>>,
}

impl AdminThrottle {
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Option<IpAddr>, Bucket>> {
        self.failures.lock().unwrap_or_else(|e| e.into_inner())
    }

    /// `Err(retry_after)` while `addr` may not try again.
    fn check(&self, addr: Option<IpAddr>, now_ms: i64) -> Result<(), u64> {
        match self.lock().get(&addr) {
            Some(bucket) if bucket.available(ADMIN_FAILURES, now_ms) < 1.0 => {
                let mut probe = *bucket;
                match probe.take(ADMIN_FAILURES, 1.0, now_ms) {
                    Err(Denied::RetryAfter(s)) => Err(s),
                    _ => Err(1),
                }
            }
            _ => Ok(()),
        }
    }

    fn failed(&self, addr: Option<IpAddr>, now_ms: i64) {
        let mut failures = self.lock();
        if failures.len() >= ADMIN_THROTTLE_MAX && !failures.contains_key(&addr) {
            failures.retain(|_, b| b.available(ADMIN_FAILURES, now_ms) < ADMIN_FAILURES.capacity);
        }
        let bucket = failures.entry(addr).or_insert_with(|| Bucket::full(ADMIN_FAILURES, now_ms));
        let _ = bucket.take(ADMIN_FAILURES, 1.0, now_ms);
    }
}

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

/// The answer's `message`, which the original service's clients print.
const CREATED_MESSAGE: &str = "API key created successfully. Store it now: it is shown only once.";

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
    message: &'static str,
}

pub async fn create_key(
    State(state): State<AppState>,
    ClientAddr(addr): ClientAddr,
    headers: HeaderMap,
    body: Result<ApiJson<CreateKeyBody>, ApiError>,
) -> Result<(StatusCode, axum::Json<CreatedKey>), ApiError> {
    let now_ms = state.clock.now().as_millisecond();
    state.admin_throttle.check(addr, now_ms).map_err(|retry_after| ApiError::AdminRateLimited { retry_after })?;
    let header = headers.get("x-admin-key").and_then(|v| v.to_str().ok());
    let body_key = body.as_ref().ok().and_then(|b| b.0.admin_key.as_deref());
    // The admin check comes first: a caller without the admin key learns nothing about the body.
    if !is_admin(&state, header, body_key) {
        // Only a guess counts: with no admin key configured nothing can be guessed.
        if state.settings.admin_key.is_some() {
            state.admin_throttle.failed(addr, now_ms);
        }
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
        Some(days @ 1..=3650) => Some(state.clock.now() + jiff::SignedDuration::from_hours(24 * i64::from(days))),
        Some(other) => {
            return Err(ApiError::InvalidRequest(format!("expires_in_days must be from 1 to 3650, got {other}")));
        }
    };
    let (key, new) = KeyRequest { expires_at, ..request }.issue(state.clock.now());
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
            message: CREATED_MESSAGE,
        }),
    ))
}

/// The admin check of the admin endpoints that take the admin key in `X-Admin-Key` only
/// (`/admin/keys…`), throttled per address like `create_key`'s.
pub(super) fn require_admin(state: &AppState, addr: Option<IpAddr>, headers: &HeaderMap) -> Result<(), ApiError> {
    let now_ms = state.clock.now().as_millisecond();
    state.admin_throttle.check(addr, now_ms).map_err(|retry_after| ApiError::AdminRateLimited { retry_after })?;
    let header = headers.get("x-admin-key").and_then(|v| v.to_str().ok());
    if !is_admin(state, header, None) {
        if state.settings.admin_key.is_some() {
            state.admin_throttle.failed(addr, now_ms);
        }
        return Err(ApiError::AdminForbidden);
    }
    Ok(())
}
