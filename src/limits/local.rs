//! The in-process limiter: a request bucket, a token bucket and a quota ledger per key, checked
//! together under one lock so that a request refused by one check consumes nothing of the
//! others. An [`Admission`] holds what a request took; dropping it unsettled gives it back.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard};

use super::{Admission, Holder};
use crate::policy::{Bucket, KeyPolicy, KeySnapshot};
use crate::quota::{Ledger, Period};

use super::{RateStatus, Refusal, TokenStatus};
use crate::keys::KeyId;

struct KeyState {
    requests: Bucket,
    tokens: Option<Bucket>,
    ledger: Ledger,
}

#[derive(Clone, Default)]
pub struct LocalLimiter {
    keys: Arc<Mutex<HashMap<KeyId, KeyState>>>,
}

impl LocalLimiter {
    fn lock(&self) -> MutexGuard<'_, HashMap<KeyId, KeyState>> {
        self.keys.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn is_loaded(&self, key_id: KeyId) -> bool {
        self.lock().contains_key(&key_id)
    }

    /// Installs a key's state from storage, unless another request did so first.
    /// Missing buckets start full; `used` is the key's durable usage in `period`.
    pub fn load(&self, key_id: KeyId, policy: &KeyPolicy, saved: Option<KeySnapshot>, used: u64, now: jiff::Timestamp) {
        let now_ms = now.as_millisecond();
        let period = Period::of(now);
        self.lock().entry(key_id).or_insert_with(|| KeyState {
            requests: saved.map_or(Bucket::full(policy.requests, now_ms), |s| s.requests),
            tokens: policy.tokens.map(|rate| saved.and_then(|s| s.tokens).unwrap_or(Bucket::full(rate, now_ms))),
            ledger: Ledger::new(period, used),
        });
    }

    /// Replaces a key's durable `used` (after an admin reset), keeping its reservations.
    pub fn reload_used(&self, key_id: KeyId, period: Period, used: u64) {
        if let Some(state) = self.lock().get_mut(&key_id) {
            state.ledger.period = period;
            state.ledger.used = used;
        }
    }

    pub fn loaded_keys(&self) -> Vec<KeyId> {
        self.lock().keys().copied().collect()
    }

    /// Takes one request, and `tokens` from the token bucket and the quota; all or nothing.
    /// The key must be loaded.
    pub fn admit(
        &self,
        key_id: KeyId,
        policy: &KeyPolicy,
        tokens: u64,
        now: jiff::Timestamp,
    ) -> Result<Admission, Refusal> {
        self.take(key_id, policy, Some(tokens), now)
    }

    /// Takes one request only, for a request that charges no tokens. The key must be loaded.
    pub fn admit_request(&self, key_id: KeyId, policy: &KeyPolicy, now: jiff::Timestamp) -> Result<Admission, Refusal> {
        self.take(key_id, policy, None, now)
    }

    /// Takes one request, and the tokens of `charge` (if any); all or nothing.
    fn take(
        &self,
        key_id: KeyId,
        policy: &KeyPolicy,
        charge: Option<u64>,
        now: jiff::Timestamp,
    ) -> Result<Admission, Refusal> {
        let now_ms = now.as_millisecond();
        let period = Period::of(now);
        let mut keys = self.lock();
        let state = keys.entry(key_id).or_insert_with(|| KeyState {
            requests: Bucket::full(policy.requests, now_ms),
            tokens: policy.tokens.map(|r| Bucket::full(r, now_ms)),
            ledger: Ledger::new(period, 0),
        });
        let before = (state.requests, state.tokens);

        if let Err(denied) = state.requests.take(policy.requests, 1.0, now_ms) {
            let retry_after = denied.retry_secs();
            return Err(Refusal::RequestRate { retry_after, status: Box::new(status_of(state, policy, now)) });
        }
        if let Some(tokens) = charge {
            if let Err(e) = state.ledger.reserve(policy.monthly_limit, tokens, period) {
                (state.requests, state.tokens) = before;
                return Err(Refusal::QuotaExceeded {
                    limit: e.limit,
                    used: e.used,
                    requested: Some(tokens),
                    resets_at: Period::of(now).resets_at(),
                    status: Box::new(status_of(state, policy, now)),
                });
            }
            if let (Some(rate), Some(bucket)) = (policy.tokens, state.tokens.as_mut())
                && let Err(denied) = bucket.take(rate, tokens as f64, now_ms)
            {
                state.ledger.refund(tokens);
                (state.requests, state.tokens) = before;
                let retry_after = denied.retry_secs();
                return Err(Refusal::TokenRate { retry_after, status: Box::new(status_of(state, policy, now)) });
            }
        }
        let status = status_of(state, policy, now);
        let tokens = charge.unwrap_or(0);
        Ok(Admission::new(Holder::Local(self.clone()), key_id, *policy, tokens, period, status))
    }

    /// Current state of a loaded key.
    pub fn status(&self, key_id: KeyId, policy: &KeyPolicy, now: jiff::Timestamp) -> Option<RateStatus> {
        self.lock().get(&key_id).map(|s| status_of(s, policy, now))
    }

    pub fn snapshot(&self, key_id: KeyId) -> Option<KeySnapshot> {
        self.lock().get(&key_id).map(|s| KeySnapshot { key_id, requests: s.requests, tokens: s.tokens })
    }

    pub(super) fn settle(&self, key_id: KeyId, tokens: u64, period: Period) {
        if let Some(state) = self.lock().get_mut(&key_id) {
            state.ledger.settle(tokens, period);
        }
    }

    pub(super) fn refund(&self, key_id: KeyId, policy: &KeyPolicy, tokens: u64) {
        if let Some(state) = self.lock().get_mut(&key_id) {
            state.ledger.refund(tokens);
            state.requests.give_back(policy.requests, 1.0);
            if let (Some(rate), Some(bucket)) = (policy.tokens, state.tokens.as_mut()) {
                bucket.give_back(rate, tokens as f64);
            }
        }
    }
}

fn status_of(state: &KeyState, policy: &KeyPolicy, now: jiff::Timestamp) -> RateStatus {
    let now_ms = now.as_millisecond();
    let tokens = match (policy.tokens, state.tokens) {
        (Some(rate), Some(bucket)) => Some(TokenStatus {
            available: bucket.available(rate, now_ms),
            capacity: rate.capacity,
            per_second: rate.per_second,
            reset_secs: bucket.seconds_to_full(rate, now_ms),
        }),
        _ => None,
    };
    let this_period = Period::of(now);
    let used = if state.ledger.period == this_period { state.ledger.used } else { 0 };
    RateStatus {
        tier: policy.tier,
        burst: policy.requests.capacity as u64,
        requests_per_second: policy.requests.per_second,
        requests_remaining: state.requests.available(policy.requests, now_ms).floor() as u64,
        requests_reset_secs: state.requests.seconds_to_full(policy.requests, now_ms),
        tokens,
        monthly_limit: policy.monthly_limit,
        used,
        reserved: state.ledger.reserved,
        period: this_period,
        resets_at: Period::of(now).resets_at(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::LimitOverride;
    use crate::keys::Tier;
    use crate::limits::Refusal;
    use crate::policy::TierLimits;

    fn policy(tier: Tier, monthly: u64, rps: f64, burst: u32) -> KeyPolicy {
        let own = LimitOverride { monthly_tokens: Some(monthly), requests_per_second: Some(rps), burst: Some(burst) };
        KeyPolicy::new(tier, TierLimits::default_for(tier).with_override(&own))
    }

    fn at(s: &str) -> jiff::Timestamp {
        s.parse().unwrap()
    }

    #[test]
    fn a_refusal_by_the_quota_consumes_no_request_and_no_tokens() {
        let limiter = LocalLimiter::default();
        let p = policy(Tier::Pro, 1_000, 10.0, 10);
        let now = at("2026-11-27T10:00:00Z");
        let a = limiter.admit(KeyId::from_row(1), &p, 600, now).unwrap();
        let before = limiter.status(KeyId::from_row(1), &p, now).unwrap();
        let refused = limiter.admit(KeyId::from_row(1), &p, 600, now).unwrap_err();
        assert!(matches!(refused, Refusal::QuotaExceeded { limit: 1_000, used: 600, .. }), "{refused:?}");
        assert_eq!(limiter.status(KeyId::from_row(1), &p, now).unwrap(), before);
        a.settle();
        assert_eq!(limiter.status(KeyId::from_row(1), &p, now).unwrap().used, 600);
    }

    #[test]
    fn a_dropped_admission_gives_everything_back() {
        let limiter = LocalLimiter::default();
        let p = policy(Tier::Free, 1_000, 1.0, 1);
        let now = at("2026-11-27T10:00:00Z");
        drop(limiter.admit(KeyId::from_row(7), &p, 500, now).unwrap());
        let s = limiter.status(KeyId::from_row(7), &p, now).unwrap();
        assert_eq!((s.requests_remaining, s.reserved, s.used), (1, 0, 0));
        assert_eq!(s.tokens.unwrap().available, 1_000.0);
    }

    #[test]
    fn a_request_rate_refusal_says_when_to_retry() {
        let limiter = LocalLimiter::default();
        let p = policy(Tier::Free, 1_000_000, 1.0, 1);
        let now = at("2026-11-27T10:00:00Z");
        limiter.admit(KeyId::from_row(3), &p, 10, now).unwrap().settle();
        match limiter.admit(KeyId::from_row(3), &p, 10, now) {
            Err(Refusal::RequestRate { retry_after, .. }) => assert_eq!(retry_after, 1),
            other => panic!("{:?}", other.err()),
        }
        assert!(limiter.admit(KeyId::from_row(3), &p, 10, now + jiff::SignedDuration::from_secs(1)).is_ok());
    }

    #[test]
    fn the_quota_turns_over_with_the_month() {
        let limiter = LocalLimiter::default();
        let p = policy(Tier::Enterprise, 100, 100.0, 100);
        let nov = at("2026-11-30T23:59:59Z");
        limiter.admit(KeyId::from_row(9), &p, 100, nov).unwrap().settle();
        assert!(matches!(limiter.admit(KeyId::from_row(9), &p, 1, nov), Err(Refusal::QuotaExceeded { .. })));
        let dec = at("2026-12-01T00:00:00Z");
        limiter.admit(KeyId::from_row(9), &p, 100, dec).unwrap().settle();
        assert_eq!(limiter.status(KeyId::from_row(9), &p, dec).unwrap().used, 100);
    }
}
