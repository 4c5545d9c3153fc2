//! Rate limits: token-bucket math (pure: time is an argument), the `Clock` seam, and the
//! per-key limiters that combine a key's request bucket, token bucket and quota ledger:
//! [`LocalLimiter`] in process memory (one instance; its state is saved to storage by the
//! usage writer), or [`RedisLimiter`] (several instances; state in Redis, updated by scripts).
//!
//! [`Limiter`] is the front the request path uses: it loads what a backend is missing from
//! storage (a key's saved buckets, its durable quota use) and applies the Redis failure policy.

mod local;
mod redis;

pub use local::LocalLimiter;
pub use redis::{FailureMode, RedisFailure, RedisLimiter};

use std::sync::Mutex;

use crate::config::{REFILL_PERIOD_SECS, TierLimits};
use crate::keys::Tier;
use crate::quota::period_of;
use crate::store::{Store, StoreError};

/// Where "now" comes from; tests substitute a fake clock and move it by hand.
pub trait Clock: Send + Sync + 'static {
    fn now(&self) -> jiff::Timestamp;
}

#[derive(Debug, Default, Clone, Copy)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> jiff::Timestamp {
        jiff::Timestamp::now()
    }
}

/// A clock that only moves when told to.
#[derive(Debug)]
pub struct FakeClock(Mutex<jiff::Timestamp>);

impl FakeClock {
    pub fn new(start: jiff::Timestamp) -> FakeClock {
        FakeClock(Mutex::new(start))
    }
    pub fn advance(&self, by: jiff::SignedDuration) {
        let mut now = self.0.lock().unwrap_or_else(|e| e.into_inner());
        *now += by;
    }
    pub fn set(&self, to: jiff::Timestamp) {
        *self.0.lock().unwrap_or_else(|e| e.into_inner()) = to;
    }
}

impl Clock for FakeClock {
    fn now(&self) -> jiff::Timestamp {
        *self.0.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// A bucket's shape: how much it holds and how fast it refills.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Rate {
    pub capacity: f64,
    pub per_second: f64,
}

/// Refused by a bucket: when to try again, in whole seconds (at least 1), or never when the
/// amount exceeds the bucket's capacity.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Denied {
    RetryAfter(u64),
    Never,
}

/// A token bucket's state: its level at an instant (milliseconds since the Unix epoch).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Bucket {
    pub level: f64,
    pub at_ms: i64,
}

impl Bucket {
    pub fn full(rate: Rate, now_ms: i64) -> Bucket {
        Bucket { level: rate.capacity, at_ms: now_ms }
    }

    /// The level at `now_ms`; a clock that went backwards refills nothing.
    pub fn available(&self, rate: Rate, now_ms: i64) -> f64 {
        let elapsed = (now_ms - self.at_ms).max(0) as f64 / 1000.0;
        (self.level + elapsed * rate.per_second).min(rate.capacity)
    }

    /// Takes `amount` if the bucket holds it at `now_ms`; otherwise leaves it untouched.
    pub fn take(&mut self, rate: Rate, amount: f64, now_ms: i64) -> Result<(), Denied> {
        let level = self.available(rate, now_ms);
        if amount <= level {
            *self = Bucket { level: level - amount, at_ms: now_ms.max(self.at_ms) };
            return Ok(());
        }
        if amount > rate.capacity || rate.per_second <= 0.0 {
            return Err(Denied::Never);
        }
        let wait = ((amount - level) / rate.per_second).ceil();
        Err(Denied::RetryAfter((wait as u64).max(1)))
    }

    /// Returns what a refused or failed request took, never above capacity.
    pub fn give_back(&mut self, rate: Rate, amount: f64) {
        self.level = (self.level + amount).min(rate.capacity);
    }

    /// Whole seconds until the bucket is full again (0 when it is full).
    pub fn seconds_to_full(&self, rate: Rate, now_ms: i64) -> u64 {
        let missing = rate.capacity - self.available(rate, now_ms);
        if missing <= 0.0 || rate.per_second <= 0.0 { 0 } else { (missing / rate.per_second).ceil() as u64 }
    }
}

/// A key's effective limits (its tier's, with the key's own override applied).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeyPolicy {
    pub tier: Tier,
    pub requests: Rate,
    /// `None`: the token rate is unlimited.
    pub tokens: Option<Rate>,
    /// `None`: the monthly quota is unlimited.
    pub monthly_limit: Option<u64>,
}

impl KeyPolicy {
    pub fn new(tier: Tier, limits: TierLimits) -> KeyPolicy {
        let token_rate = limits
            .tokens_per_second
            .map(|per_second| Rate { capacity: limits.monthly_tokens.map_or(f64::MAX, |m| m as f64), per_second });
        KeyPolicy {
            tier,
            requests: Rate { capacity: f64::from(limits.burst.max(1)), per_second: limits.requests_per_second },
            tokens: token_rate,
            monthly_limit: limits.monthly_tokens,
        }
    }
}

/// Bucket levels of one key, for storage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeySnapshot {
    pub key_id: i64,
    pub requests: Bucket,
    pub tokens: Option<Bucket>,
}

/// What the rate headers and `/usage/quota` report.
#[derive(Debug, Clone, PartialEq)]
pub struct RateStatus {
    pub tier: Tier,
    pub burst: u64,
    pub requests_per_second: f64,
    pub requests_remaining: u64,
    pub requests_reset_secs: u64,
    /// `None` when the token rate is unlimited.
    pub tokens: Option<TokenStatus>,
    pub monthly_limit: Option<u64>,
    pub used: u64,
    pub reserved: u64,
    pub period: String,
    pub resets_at: jiff::Timestamp,
}

#[derive(Debug, Clone, PartialEq)]
pub struct TokenStatus {
    pub available: f64,
    pub capacity: f64,
    pub per_second: f64,
    pub reset_secs: u64,
}

/// Why a request was refused; each carries what the client needs to know.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    RequestRate {
        retry_after: u64,
        status: Box<RateStatus>,
    },
    TokenRate {
        retry_after: u64,
        status: Box<RateStatus>,
    },
    /// `used` counts what requests in flight reserved too; `requested` is what this request
    /// needed (`None` when refused before its tokens were counted).
    QuotaExceeded {
        limit: u64,
        used: u64,
        requested: Option<u64>,
        resets_at: jiff::Timestamp,
        status: Box<RateStatus>,
    },
}

fn retry_secs(denied: Denied) -> u64 {
    match denied {
        Denied::RetryAfter(s) => s,
        // More than the bucket can ever hold: retrying is pointless before the limits change.
        Denied::Never => REFILL_PERIOD_SECS as u64,
    }
}

/// Who must settle or refund an admission.
enum Holder {
    Local(LocalLimiter),
    Redis {
        limiter: RedisLimiter,
        member: String,
    },
    /// Admitted without limits (Redis unreachable, failing open): nothing to give back.
    Unlimited,
}

/// What one admitted request holds. Settle it once its usage record is durable; dropped
/// unsettled (a failed or abandoned request), it gives everything back.
pub struct Admission {
    holder: Holder,
    pub key_id: i64,
    policy: KeyPolicy,
    pub tokens: u64,
    pub period: String,
    pub status: RateStatus,
    settled: bool,
}

impl Admission {
    fn new(holder: Holder, key_id: i64, policy: KeyPolicy, tokens: u64, period: String, status: RateStatus) -> Self {
        Admission { holder, key_id, policy, tokens, period, status, settled: false }
    }

    /// The key's monthly limit (`None`: unlimited), which the ledger checks again at commit.
    pub fn monthly_limit(&self) -> Option<u64> {
        self.policy.monthly_limit
    }

    /// The request's record is committed: its reservation becomes durable use.
    pub fn settle(mut self) {
        self.settled = true;
        match &self.holder {
            Holder::Local(l) => l.settle(self.key_id, self.tokens, &self.period),
            Holder::Redis { limiter, member } => limiter.settle(self.key_id, member, self.tokens, &self.period),
            Holder::Unlimited => {}
        }
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admission").field("key_id", &self.key_id).field("tokens", &self.tokens).finish()
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        if self.settled {
            return;
        }
        match &self.holder {
            Holder::Local(l) => l.refund(self.key_id, &self.policy, self.tokens),
            Holder::Redis { limiter, member } => limiter.refund(self.key_id, &self.policy, member, self.tokens),
            Holder::Unlimited => {}
        }
    }
}

/// Why a request could not be admitted.
#[derive(Debug, thiserror::Error)]
pub enum AdmitError {
    #[error("refused by a limit")]
    Refused(Refusal),
    #[error("rate limiter unavailable: {0}")]
    Unavailable(String),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// The limiter the request path uses (see the module doc).
#[derive(Clone)]
pub enum Limiter {
    Local(LocalLimiter),
    Redis(RedisLimiter),
}

impl Limiter {
    /// Redis when `redis_url` is configured, else in process.
    pub fn from_settings(settings: &crate::config::Settings) -> Result<Limiter, ::redis::RedisError> {
        Ok(match &settings.redis_url {
            Some(url) => Limiter::Redis(RedisLimiter::connect(
                url,
                &settings.redis_prefix,
                settings.redis_rate_failure,
                settings.redis_quota_failure,
            )?),
            None => Limiter::Local(LocalLimiter::default()),
        })
    }

    /// Admits one request of `key_id`, charging `tokens` to its token bucket and quota if
    /// `charge`; all or nothing.
    pub async fn admit(
        &self,
        store: &Store,
        key_id: i64,
        policy: &KeyPolicy,
        tokens: u64,
        charge: bool,
        now: jiff::Timestamp,
    ) -> Result<Admission, AdmitError> {
        match self {
            Limiter::Local(local) => {
                load_local(local, store, key_id, policy, now).await?;
                local.admit(key_id, policy, tokens, charge, now).map_err(AdmitError::Refused)
            }
            Limiter::Redis(redis) => redis.admit(store, key_id, policy, tokens, charge, now).await,
        }
    }

    /// The key's current levels and quota use.
    pub async fn status(
        &self,
        store: &Store,
        key_id: i64,
        policy: &KeyPolicy,
        now: jiff::Timestamp,
    ) -> Result<RateStatus, AdmitError> {
        match self {
            Limiter::Local(local) => {
                load_local(local, store, key_id, policy, now).await?;
                local
                    .status(key_id, policy, now)
                    .ok_or_else(|| AdmitError::Unavailable(format!("limiter state of key {key_id} missing")))
            }
            Limiter::Redis(redis) => redis.status(store, key_id, policy, now).await,
        }
    }

    /// Bucket levels to save with a batch of usage records (the local limiter only; Redis
    /// keeps its own).
    pub fn snapshot(&self, key_id: i64) -> Option<KeySnapshot> {
        match self {
            Limiter::Local(local) => local.snapshot(key_id),
            Limiter::Redis(_) => None,
        }
    }

    pub fn all_snapshots(&self) -> Vec<KeySnapshot> {
        match self {
            Limiter::Local(local) => local.loaded_keys().into_iter().filter_map(|k| local.snapshot(k)).collect(),
            Limiter::Redis(_) => Vec::new(),
        }
    }

    /// After an admin reset of quota use in storage: forget what the limiter held of it.
    pub async fn after_quota_reset(&self, store: &Store, now: jiff::Timestamp) -> Result<(), AdmitError> {
        let period = period_of(now);
        match self {
            Limiter::Local(local) => {
                for key_id in local.loaded_keys() {
                    let used = store.quota_used(key_id, &period).await?;
                    local.reload_used(key_id, &period, used);
                }
                Ok(())
            }
            Limiter::Redis(redis) => redis.forget_quota(&period).await,
        }
    }

    /// `None` when the limiter works; otherwise why not, and whether requests are refused.
    pub async fn problem(&self) -> Option<RedisFailure> {
        match self {
            Limiter::Local(_) => None,
            Limiter::Redis(redis) => redis.problem().await,
        }
    }
}

/// Loads a key's saved buckets and durable quota use into the local limiter on first use.
async fn load_local(
    local: &LocalLimiter,
    store: &Store,
    key_id: i64,
    policy: &KeyPolicy,
    now: jiff::Timestamp,
) -> Result<(), StoreError> {
    if !local.is_loaded(key_id) {
        let saved = store.bucket_snapshot(key_id).await?;
        let used = store.quota_used(key_id, &period_of(now)).await?;
        local.load(key_id, policy, saved, used, now);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const PRO: Rate = Rate { capacity: 10.0, per_second: 10.0 };
    const FREE: Rate = Rate { capacity: 1.0, per_second: 1.0 };

    #[test]
    fn a_burst_is_admitted_then_refused_until_the_refill() {
        let mut b = Bucket::full(PRO, 0);
        let admitted = (0..12).filter(|_| b.take(PRO, 1.0, 0).is_ok()).count();
        assert_eq!(admitted, 10);
        assert_eq!(b.take(PRO, 1.0, 0), Err(Denied::RetryAfter(1)));
        assert_eq!(b.take(PRO, 1.0, 100), Ok(()));
    }

    #[test]
    fn retry_after_is_whole_seconds_and_at_least_one() {
        let mut b = Bucket::full(FREE, 0);
        b.take(FREE, 1.0, 0).unwrap();
        assert_eq!(b.take(FREE, 1.0, 999), Err(Denied::RetryAfter(1)));
        assert_eq!(b.take(FREE, 1.0, 1000), Ok(()));
        let slow = Rate { capacity: 100.0, per_second: 0.39 };
        let mut t = Bucket { level: 0.0, at_ms: 0 };
        assert_eq!(t.take(slow, 10.0, 0), Err(Denied::RetryAfter(26)));
        assert_eq!(t.take(slow, 101.0, 0), Err(Denied::Never));
    }

    #[test]
    fn a_clock_going_backwards_refills_nothing() {
        let mut b = Bucket { level: 0.0, at_ms: 10_000 };
        assert_eq!(b.available(FREE, 5_000), 0.0);
        assert!(b.take(FREE, 1.0, 5_000).is_err());
    }

    proptest! {
        /// Over any schedule, admitted amount ≤ capacity + rate × elapsed time.
        #[test]
        fn never_admits_more_than_burst_plus_refill(
            steps in proptest::collection::vec((0i64..3_000, 0.0f64..5.0), 1..200),
            capacity in 1.0f64..50.0,
            per_second in 0.1f64..20.0,
        ) {
            let rate = Rate { capacity, per_second };
            let mut b = Bucket::full(rate, 0);
            let (mut now, mut admitted) = (0i64, 0.0f64);
            for (dt, amount) in steps {
                now += dt;
                let before = b;
                match b.take(rate, amount, now) {
                    Ok(()) => admitted += amount,
                    Err(_) => prop_assert_eq!(b, before),
                }
                prop_assert!(b.level >= -1e-9 && b.level <= capacity + 1e-9);
            }
            let bound = capacity + per_second * now as f64 / 1000.0;
            prop_assert!(admitted <= bound + 1e-6, "admitted {} > {}", admitted, bound);
        }

        /// A refusal's Retry-After is honest: waiting that long admits the same request.
        #[test]
        fn retry_after_is_enough(level in 0.0f64..10.0, amount in 0.0f64..10.0, per_second in 0.1f64..20.0) {
            let rate = Rate { capacity: 10.0, per_second };
            let mut b = Bucket { level, at_ms: 0 };
            if let Err(Denied::RetryAfter(s)) = b.take(rate, amount, 0) {
                prop_assert!(s >= 1);
                prop_assert!(b.take(rate, amount, s as i64 * 1000).is_ok());
            }
        }
    }
}
