//! Admission: the per-key limiters that enforce a key's `KeyPolicy` (`crate::policy`) over its
//! request bucket, token bucket and quota ledger: [`LocalLimiter`] in process memory (one
//! instance; its levels are saved to storage with each usage batch and at shutdown), or
//! [`RedisLimiter`] (several instances; state in Redis, updated by scripts).
//!
//! [`Limiter`] is the front the request path uses: it loads what a backend is missing from
//! storage (a key's saved buckets, its durable quota use) and applies the Redis failure policy.

mod local;
mod redis;
mod resets;

pub use local::LocalLimiter;
use redis::RedisFailure;
pub use redis::RedisLimiter;
pub use resets::watch_quota_resets;

use std::sync::Arc;

use crate::keys::{KeyId, Tier};
use crate::policy::{KeyPolicy, KeySnapshot};
use crate::quota::Period;
use crate::store::{Store, StoreError};

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
    pub period: Period,
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
    pub key_id: KeyId,
    policy: KeyPolicy,
    pub tokens: u64,
    pub period: Period,
    pub status: RateStatus,
    settled: bool,
}

impl Admission {
    fn new(holder: Holder, key_id: KeyId, policy: KeyPolicy, tokens: u64, period: Period, status: RateStatus) -> Self {
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
            Holder::Local(l) => l.settle(self.key_id, self.tokens, self.period),
            Holder::Redis { limiter, member } => limiter.settle(self.key_id, member, self.tokens, self.period),
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

/// The limiter the request path uses (see the module doc). Which backend it runs on is its own
/// business: callers ask it what they need to know ([`Limiter::health`],
/// [`Limiter::levels_source`]).
#[derive(Clone)]
pub struct Limiter {
    backend: Backend,
    /// The limiter's copy of a key's durable quota use changes in two ways: admissions settled
    /// once their records commit, and a reload after an admin reset. They take turns, so that a
    /// reload never reads storage between a commit and the settling of its admissions.
    ledger_turn: Arc<tokio::sync::Mutex<()>>,
}

#[derive(Clone)]
enum Backend {
    Local(LocalLimiter),
    Redis(RedisLimiter),
}

/// How the limiter is doing, for `/health`.
#[derive(Debug, Clone, PartialEq)]
pub enum LimiterHealth {
    /// Working; the words say where the limits' state lives.
    Working(&'static str),
    /// Its store is out of reach and every failure mode is open: limits are not enforced.
    FailingOpen { reason: String },
    /// Its store is out of reach and a failure mode is closed: requests that need it are refused.
    Refusing { reason: String },
}

/// Where the levels [`Limiter::status`] reports for a key come from.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LevelsSource {
    /// Shared state, read live (Redis).
    Live,
    /// What a server last saved in storage, refilled up to now.
    Saved,
    /// Nothing saved: the key's buckets are full.
    Fresh,
}

impl LevelsSource {
    pub fn describe(self) -> &'static str {
        match self {
            LevelsSource::Live => "live, from Redis",
            LevelsSource::Saved => "as last saved by the server",
            LevelsSource::Fresh => "full (never used)",
        }
    }
}

impl Limiter {
    /// Redis when `redis_url` is configured, else in process.
    pub fn from_settings(settings: &crate::config::Settings) -> Result<Limiter, ::redis::RedisError> {
        Ok(match &settings.redis_url {
            Some(url) => Limiter::with(Backend::Redis(RedisLimiter::connect(
                url,
                &settings.redis_prefix,
                settings.redis_rate_failure,
                settings.redis_quota_failure,
            )?)),
            None => Limiter::in_process(LocalLimiter::default()),
        })
    }

    /// A limiter over this in-process state (one instance).
    pub fn in_process(local: LocalLimiter) -> Limiter {
        Limiter::with(Backend::Local(local))
    }

    fn with(backend: Backend) -> Limiter {
        Limiter { backend, ledger_turn: Arc::default() }
    }

    /// Admits one request of `key_id`, charging `tokens` to its token bucket and quota; all or
    /// nothing.
    pub async fn admit(
        &self,
        store: &Store,
        key_id: KeyId,
        policy: &KeyPolicy,
        tokens: u64,
        now: jiff::Timestamp,
    ) -> Result<Admission, AdmitError> {
        self.take(store, key_id, policy, Some(tokens), now).await
    }

    /// Admits one request of `key_id` that charges no tokens (its request bucket only).
    pub async fn admit_request(
        &self,
        store: &Store,
        key_id: KeyId,
        policy: &KeyPolicy,
        now: jiff::Timestamp,
    ) -> Result<Admission, AdmitError> {
        self.take(store, key_id, policy, None, now).await
    }

    async fn take(
        &self,
        store: &Store,
        key_id: KeyId,
        policy: &KeyPolicy,
        charge: Option<u64>,
        now: jiff::Timestamp,
    ) -> Result<Admission, AdmitError> {
        match &self.backend {
            Backend::Local(local) => {
                load_local(local, store, key_id, policy, now).await?;
                let admitted = match charge {
                    Some(tokens) => local.admit(key_id, policy, tokens, now),
                    None => local.admit_request(key_id, policy, now),
                };
                admitted.map_err(AdmitError::Refused)
            }
            Backend::Redis(redis) => redis.admit(store, key_id, policy, charge, now).await,
        }
    }

    /// The key's current levels and quota use.
    pub async fn status(
        &self,
        store: &Store,
        key_id: KeyId,
        policy: &KeyPolicy,
        now: jiff::Timestamp,
    ) -> Result<RateStatus, AdmitError> {
        match &self.backend {
            Backend::Local(local) => {
                load_local(local, store, key_id, policy, now).await?;
                local
                    .status(key_id, policy, now)
                    .ok_or_else(|| AdmitError::Unavailable(format!("limiter state of key {key_id} missing")))
            }
            Backend::Redis(redis) => redis.status(store, key_id, policy, now).await,
        }
    }

    /// Where the levels `status` would report for `key_id` come from.
    pub async fn levels_source(&self, store: &Store, key_id: KeyId) -> Result<LevelsSource, StoreError> {
        Ok(match &self.backend {
            Backend::Redis(_) => LevelsSource::Live,
            Backend::Local(_) if store.bucket_snapshot(key_id).await?.is_some() => LevelsSource::Saved,
            Backend::Local(_) => LevelsSource::Fresh,
        })
    }

    /// Bucket levels to save with a batch of usage records (the local limiter only; Redis
    /// keeps its own).
    pub fn snapshot(&self, key_id: KeyId) -> Option<KeySnapshot> {
        match &self.backend {
            Backend::Local(local) => local.snapshot(key_id),
            Backend::Redis(_) => None,
        }
    }

    /// Saves the bucket levels of every key this process used (the local limiter only), so that
    /// a restart is no way around a limit. Once, at shutdown, after the last usage batch.
    pub async fn save_levels(&self, store: &Store) -> Result<(), StoreError> {
        let Backend::Local(local) = &self.backend else { return Ok(()) };
        let snapshots: Vec<_> = local.loaded_keys().into_iter().filter_map(|k| local.snapshot(k)).collect();
        store.commit_usage(Vec::new(), Vec::new(), snapshots).await.map(drop)
    }

    /// Waits for the limiter's copy of durable quota use to be free to change, and holds it:
    /// the usage writer holds it from a batch's commit until its admissions are settled.
    pub async fn ledger_turn(&self) -> tokio::sync::MutexGuard<'_, ()> {
        self.ledger_turn.lock().await
    }

    /// After an admin reset of quota use in storage: forget what the limiter held of it.
    pub async fn after_quota_reset(&self, store: &Store, now: jiff::Timestamp) -> Result<(), AdmitError> {
        let period = Period::of(now);
        let _turn = self.ledger_turn().await;
        match &self.backend {
            Backend::Local(local) => {
                for key_id in local.loaded_keys() {
                    let used = store.quota_used(key_id, period).await?;
                    local.reload_used(key_id, period, used);
                }
                Ok(())
            }
            Backend::Redis(redis) => redis.forget_quota(period).await,
        }
    }

    /// Whether the limiter works, and if not, what that means for requests.
    pub async fn health(&self) -> LimiterHealth {
        match &self.backend {
            Backend::Local(_) => LimiterHealth::Working("in process"),
            Backend::Redis(redis) => match redis.problem().await {
                None => LimiterHealth::Working("redis ok"),
                Some(RedisFailure { reason, refuses: true }) => LimiterHealth::Refusing { reason },
                Some(RedisFailure { reason, refuses: false }) => LimiterHealth::FailingOpen { reason },
            },
        }
    }
}

/// Loads a key's saved buckets and durable quota use into the local limiter on first use.
async fn load_local(
    local: &LocalLimiter,
    store: &Store,
    key_id: KeyId,
    policy: &KeyPolicy,
    now: jiff::Timestamp,
) -> Result<(), StoreError> {
    if !local.is_loaded(key_id) {
        let saved = store.bucket_snapshot(key_id).await?;
        let used = store.quota_used(key_id, Period::of(now)).await?;
        local.load(key_id, policy, saved, used, now);
    }
    Ok(())
}
