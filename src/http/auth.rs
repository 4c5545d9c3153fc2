//! Authentication: the `Authenticated` extractor (Bearer API keys) and the admin-key check.

use axum::extract::FromRequestParts;
use axum::http::header::AUTHORIZATION;
use axum::http::request::Parts;

use super::AppState;
use super::error::ApiError;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::keys::{ApiKey, KeyHash, KeyId, KeyRecord};
use crate::store::{Store, StoreError};

/// The caller's key record, proven active and unexpired. Handlers that take it are authenticated.
#[derive(Debug, Clone)]
pub struct Authenticated(pub KeyRecord);

/// The authenticated key's id, left in the request's extensions for what reads the body: a
/// large body is parsed in that key's turn of the large lane (`json::ApiJson`).
#[derive(Debug, Clone, Copy)]
pub struct CallerKeyId(pub KeyId);

impl FromRequestParts<AppState> for Authenticated {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Some(header) = parts.headers.get(AUTHORIZATION) else {
            // Keyless requests are refused unless the operator turned anonymous access on.
            return match state.settings.anonymous {
                Some(_) => {
                    let record = KeyRecord::anonymous(state.clock.now());
                    parts.extensions.insert(CallerKeyId(record.id));
                    Ok(Authenticated(record))
                }
                None => Err(ApiError::MissingApiKey),
            };
        };
        let value = header.to_str().map_err(|_| ApiError::InvalidApiKey)?.trim();
        let (scheme, token) = value.split_once(' ').ok_or(ApiError::MissingApiKey)?;
        if !scheme.eq_ignore_ascii_case("bearer") {
            return Err(ApiError::MissingApiKey);
        }
        let key = ApiKey::parse(token.trim()).map_err(|_| ApiError::InvalidApiKey)?;
        let now = state.clock.now();
        let record = match state.keys.lookup(&state.store, key.hash(), now).await? {
            Some(record) => record,
            // A secret replaced by a rotation, past its grace period, is told apart.
            None if state.store.retired_until(&key.hash()).await?.is_some() => return Err(ApiError::ApiKeyRotated),
            None => return Err(ApiError::InvalidApiKey),
        };
        if !record.active {
            return Err(ApiError::ApiKeyDeactivated);
        }
        if record.is_expired(now) {
            return Err(ApiError::ApiKeyExpired);
        }
        parts.extensions.insert(CallerKeyId(record.id));
        Ok(Authenticated(record))
    }
}

/// Found keys, remembered for half a second: a deactivation in storage reaches every
/// instance within that time, and a busy key costs one lookup per interval, not per request.
#[derive(Clone, Default)]
pub struct KeyCache {
    entries: Arc<Mutex<HashMap<KeyHash, (Instant, KeyRecord)>>>,
}

const KEY_CACHE_TTL: Duration = Duration::from_millis(500);
const KEY_CACHE_MAX: usize = 10_000;

impl KeyCache {
    /// The key whose secret hashes to `hash`, or the rotated key whose old secret it is, still
    /// in its grace period at `now`.
    async fn lookup(
        &self,
        store: &Store,
        hash: KeyHash,
        now: jiff::Timestamp,
    ) -> Result<Option<KeyRecord>, StoreError> {
        let fresh = |at: &Instant| at.elapsed() < KEY_CACHE_TTL;
        if let Some((at, record)) = self.lock().get(&hash)
            && fresh(at)
        {
            return Ok(Some(record.clone()));
        }
        let found = match store.key_by_hash(&hash).await? {
            Some(record) => Some(record),
            // The old secret of a rotated key, within its grace period.
            None => store.key_in_grace(&hash, now).await?,
        };
        let mut entries = self.lock();
        if entries.len() >= KEY_CACHE_MAX {
            entries.retain(|_, (at, _)| fresh(at));
        }
        match &found {
            Some(record) => entries.insert(hash, (Instant::now(), record.clone())),
            None => entries.remove(&hash),
        };
        Ok(found)
    }

    /// Forgets the key with storage id `key_id`, so that a change made through this instance
    /// (a deactivation from `/admin/keys/…`) holds here from the next request on.
    pub fn forget(&self, key_id: KeyId) {
        self.lock().retain(|_, (_, record)| record.id != key_id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<KeyHash, (Instant, KeyRecord)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
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
