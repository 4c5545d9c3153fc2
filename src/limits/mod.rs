//! Admission: the `Clock` seam, and the per-key limiters that enforce a key's `KeyPolicy`
//! (`crate::policy`) over its request bucket, token bucket and quota ledger: [`LocalLimiter`]
//! in process memory (one instance; its state is saved to storage by the usage writer), or
//! [`RedisLimiter`] (several instances; state in Redis, updated by scripts).
//!
//! [`Limiter`] is the front the request path uses: it loads what a backend is missing from
//! storage (a key's saved buckets, its durable quota use) and applies the Redis failure policy.

mod local;
mod redis;

pub use local::LocalLimiter;
pub use redis::{FailureMode, RedisFailure, RedisLimiter};

use std::sync::Mutex;

use crate::keys::Tier;
use crate::policy::{Bucket, KeyPolicy};
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
