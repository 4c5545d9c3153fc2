//! Admission on the request path: admits or refuses through the limiter (its headers are
//! written by `rate_headers`). `Admissible` turns away, before the
//! body is read, a large request its key could not be admitted for anyway.

use axum::extract::FromRequestParts;
use axum::http::request::Parts;
use axum::http::{HeaderMap, header};

use super::AppState;
use super::auth::Authenticated;
use super::error::ApiError;
use crate::keys::KeyRecord;
use crate::limits::{Admission, RateStatus, Refusal};
use crate::store::ANSWERS_KEPT_FOR;

/// Bodies declared larger than this are worth a look at the key's buckets before reading them
/// (below it, reading and parsing cost less than the look, which is a Redis round trip when the
/// limits are shared).
const PRECHECK_ABOVE_BYTES: u64 = 64 * 1024;

/// The caller's key, authenticated, and, when the declared body is large, found able to pass
/// admission right now: an empty request bucket (and, with `CHARGES_TOKENS`, a spent quota or
/// token bucket) is refused from the headers alone, so a refused 10 MB request costs a lookup,
/// not a 10 MB read and parse. Only a filter: `admit` after parsing still decides, atomically;
/// when the limiter cannot answer, the filter lets the request through to it.
pub struct Admissible<const CHARGES_TOKENS: bool>(pub KeyRecord);

impl<const CHARGES_TOKENS: bool> FromRequestParts<AppState> for Admissible<CHARGES_TOKENS> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let Authenticated(key) = Authenticated::from_request_parts(parts, state).await?;
        let declared = parts.headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        // Chunked bodies declare no length: look at those too. A retry with an Idempotency-Key
        // whose answer is stored is owed it whatever the buckets hold: no look for it (a key
        // with no stored answer is looked at like any other request).
        if declared.is_none_or(|n| n > PRECHECK_ABOVE_BYTES)
            && !(CHARGES_TOKENS && owed_a_stored_answer(&parts.headers, state, &key).await)
        {
            let policy = state.settings.policy_for(&key);
            if let Ok(status) = state.limiter.status(&state.store, key.id, &policy, state.clock.now()).await
                && let Some(refusal) = certain_refusal(status, CHARGES_TOKENS)
            {
                return Err(refusal.into());
            }
        }
        Ok(Admissible(key))
    }
}

/// Whether the request carries an `Idempotency-Key` with an answer stored for this key (or
/// storage cannot say): its body must be read to compare it, and a replay is never refused by
/// the limits.
pub async fn owed_a_stored_answer(headers: &HeaderMap, state: &AppState, key: &KeyRecord) -> bool {
    let Some(idem_key) = headers.get("idempotency-key").and_then(|v| v.to_str().ok()) else { return false };
    let since = state.clock.now() - ANSWERS_KEPT_FOR;
    !matches!(state.store.idempotent_answer(key.id, idem_key, since).await, Ok(None))
}

/// The refusal `admit` would give any request of this key now (one that charges at least one
/// token when `charges_tokens`), if there is one.
fn certain_refusal(status: RateStatus, charges_tokens: bool) -> Option<Refusal> {
    if status.requests_remaining == 0 {
        // At most one request's worth of waiting: the exact figure needs the bucket's fraction.
        let one = (1.0 / status.requests_per_second.max(f64::MIN_POSITIVE)).ceil() as u64;
        let retry_after = status.requests_reset_secs.min(one).max(1);
        return Some(Refusal::RequestRate { retry_after, status: Box::new(status) });
    }
    if !charges_tokens {
        return None;
    }
    if let Some(limit) = status.monthly_limit
        && status.used + status.reserved >= limit
    {
        let (used, resets_at) = (status.used + status.reserved, status.resets_at);
        return Some(Refusal::QuotaExceeded { limit, used, requested: None, resets_at, status: Box::new(status) });
    }
    if let Some(tokens) = &status.tokens
        && tokens.available < 1.0
    {
        let retry_after = ((1.0 - tokens.available) / tokens.per_second.max(f64::MIN_POSITIVE)).ceil().max(1.0);
        return Some(Refusal::TokenRate { retry_after: retry_after as u64, status: Box::new(status) });
    }
    None
}

/// Admits one request of `key`, charging `tokens` to its token bucket and quota.
pub async fn admit(state: &AppState, key: &KeyRecord, tokens: u64) -> Result<Admission, ApiError> {
    let policy = state.settings.policy_for(key);
    Ok(state.limiter.admit(&state.store, key.id, &policy, tokens, state.clock.now()).await?)
}

/// Admits one request of `key` that charges no tokens.
pub async fn admit_request(state: &AppState, key: &KeyRecord) -> Result<Admission, ApiError> {
    let policy = state.settings.policy_for(key);
    Ok(state.limiter.admit_request(&state.store, key.id, &policy, state.clock.now()).await?)
}
