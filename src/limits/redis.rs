//! Limits shared by several instances: each key's buckets and quota reservations live in
//! Redis and change only inside server-side Lua scripts, so concurrent instances see one
//! consistent state. PostgreSQL (the store) stays the ledger of record: a key's durable quota
//! use is loaded from it whenever Redis lacks it (first use, a new month, a Redis restart,
//! after an admin reset).
//!
//! Layout, under a configurable prefix P: `P:b:{key}` (hash: request and token bucket levels
//! and their times, and `res:{YYYY-MM}`, the sum of the reservations' tokens of that month, kept
//! with the set below by every script that adds or removes one, so that admitting does not read
//! every reservation in flight), `P:q:{key}:{YYYY-MM}` (hash: `used`, a copy of the store's ledger that
//! expires every few seconds), `P:r:{key}` (sorted set of
//! reservations `id|tokens|period`, scored by expiry, so an instance that dies mid-request
//! cannot hold tokens forever), `P:epoch` (a marker whose absence tells that Redis lost its
//! state: see [`ADMIT`]). Times come from the caller's clock.
//!
//! Losing Redis's state (a restart without persistence, a flush, a failover to a replica that
//! missed the last writes) never lets a key past its quota: the store's ledger checks each
//! charge against the monthly limit when the record commits, so a request admitted on lost
//! reservations is refused (402) rather than recorded past the limit. Nor past its request
//! rate: a request bucket lost that way is taken as empty at the moment of the loss.
//!
//! While Redis is unreachable the configured [`FailureMode`]s decide: rate limits fail open by
//! default (requests pass unlimited), the quota fails closed (requests that charge it get 503).

use std::sync::{Arc, LazyLock};
use std::time::Duration;

use redis::aio::ConnectionManager;

use super::{Admission, AdmitError, Holder, RateStatus, Refusal, TokenStatus};
use crate::config::FailureMode;
use crate::policy::{KeyPolicy, REFILL_PERIOD_SECS};
use crate::quota::Period;

use crate::keys::KeyId;
use crate::store::Store;

/// How long a reservation is held if its instance never settles nor refunds it.
const RESERVATION_TTL_MS: i64 = 120_000;
/// How long Redis trusts its copy of a key's durable quota use before reloading it from
/// storage. Between reloads it is exact (settles add to it); a reload bounds any drift left by
/// a crashed instance or a Redis restart. Unsettled work stays counted through its reservation,
/// so drift can only make the limiter stricter, never let a key past its quota.
const QUOTA_CACHE_MS: i64 = 10_000;

/// Why the limiter is degraded, for `/health`.
#[derive(Debug, Clone, PartialEq)]
pub struct RedisFailure {
    pub reason: String,
    /// Whether some requests are refused meanwhile (a failure mode is `closed`).
    pub refuses: bool,
}

#[derive(Clone)]
pub struct RedisLimiter {
    conn: ConnectionManager,
    prefix: Arc<str>,
    rates_on_failure: FailureMode,
    quota_on_failure: FailureMode,
    /// The epoch marker's id this instance last saw in Redis (empty before the first answer):
    /// a different or missing one means Redis lost its state meanwhile.
    epoch: Arc<std::sync::Mutex<String>>,
}

/// Lua: `unreserve(buckets, member)` takes a reservation `id|tokens|period` that just left the
/// set off its month's sum in the buckets hash (a sum never goes below zero, and a month's
/// field goes when nothing of it is reserved).
macro_rules! unreserve_lua {
    () => {
        r#"
local function unreserve(buckets, m)
  local tok, per = string.match(m, '^[^|]*|(%d+)|(.*)$')
  if not tok then return end
  local field = 'res:' .. per
  if redis.call('HINCRBY', buckets, field, -tonumber(tok)) <= 0 then redis.call('HDEL', buckets, field) end
end
"#
    };
}

/// Admit (or, with `peek`, only report). KEYS: buckets, quota, reservations, epoch.
/// ARGV: now_ms, req_cap, req_rate, has_tok, tok_cap, tok_rate, amount, charge, limit (-1 =
/// unlimited), member, ttl_ms, db_used (-1 = unknown), period, peek, quota_cache_ms,
/// known_epoch (the epoch this instance last saw, or empty), new_epoch (an id to use if none).
/// Returns {kind, req_level, tok_level, used, reserved, extra, epoch}; kind `load` asks for db_used.
///
/// The epoch marker tells a Redis that lost its state (restart, flush, failover to a replica
/// without it) from one that never had any: it is `id|lost_at_ms`, created when missing, with
/// `lost_at_ms` the current time when the caller had seen another epoch (state was lost) and 0
/// otherwise (a new deployment). A request bucket missing after a loss is taken as emptied at
/// the loss and refilled since, never as full: its true level then was at least 0, so no key
/// gets a second burst. Token buckets start full (their capacity is the monthly limit, which
/// the ledger of record enforces at commit), and lost reservations are covered by that same
/// check.
static ADMIT: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(concat!(
        unreserve_lua!(),
        r#"
local now = tonumber(ARGV[1])
local req_cap, req_rate = tonumber(ARGV[2]), tonumber(ARGV[3])
local has_tok = ARGV[4] == '1'
local tok_cap, tok_rate = tonumber(ARGV[5]), tonumber(ARGV[6])
local amount = tonumber(ARGV[7])
local charge = ARGV[8] == '1'
local limit = tonumber(ARGV[9])
local member, ttl = ARGV[10], tonumber(ARGV[11])
local db_used = tonumber(ARGV[12])
local period = ARGV[13]
local peek = ARGV[14] == '1'

local known, fresh = ARGV[16], ARGV[17]
local epoch = redis.call('GET', KEYS[4])
if not epoch then
  epoch = fresh .. '|' .. (known ~= '' and ARGV[1] or '0')
  redis.call('SET', KEYS[4], epoch)
elseif known ~= '' and string.match(epoch, '^[^|]*') ~= known and string.match(epoch, '|0$') then
  -- Recreated by an instance that had seen no epoch, yet this caller had: the state was lost.
  epoch = string.match(epoch, '^[^|]*') .. '|' .. ARGV[1]
  redis.call('SET', KEYS[4], epoch)
end
local lost_at = tonumber(string.match(epoch, '|(%d+)$')) or 0
local epoch_id = string.match(epoch, '^[^|]*')

-- A bucket never seen is full, unless the state was lost: then it was emptied at the loss.
local function level(lf, tf, cap, rate, since)
  local l = redis.call('HGET', KEYS[1], lf)
  if not l then
    if since > 0 then return math.min(cap, math.max(0, now - since) / 1000.0 * rate) end
    return cap
  end
  local t = tonumber(redis.call('HGET', KEYS[1], tf)) or now
  return math.min(cap, tonumber(l) + math.max(0, now - t) / 1000.0 * rate)
end
-- A caller whose clock is behind never moves a bucket's time backwards (that would refill it
-- twice for the same interval when a caller with a later clock comes next).
local function stamp(tf)
  local t = tonumber(redis.call('HGET', KEYS[1], tf))
  if t and t > now then return t end
  return now
end
local function wait(missing, rate, cap, amt)
  if amt > cap or rate <= 0 then return -1 end
  return math.max(1, math.ceil(missing / rate))
end

local used = 0
if charge or peek then
  local u = redis.call('HGET', KEYS[2], 'used')
  if not u then
    if db_used < 0 then return {'load', '0', '0', '0', '0', '0', epoch_id} end
    redis.call('HSET', KEYS[2], 'used', db_used)
    redis.call('PEXPIRE', KEYS[2], tonumber(ARGV[15]))
    u = db_used
  end
  used = tonumber(u)
end
-- Expired reservations leave the set and their month's sum.
local expired = redis.call('ZRANGEBYSCORE', KEYS[3], '-inf', now)
if #expired > 0 then
  for _, m in ipairs(expired) do unreserve(KEYS[1], m) end
  redis.call('ZREMRANGEBYSCORE', KEYS[3], '-inf', now)
end
local reserved = tonumber(redis.call('HGET', KEYS[1], 'res:' .. period)) or 0
local req = level('rl', 'rt', req_cap, req_rate, lost_at)
local tok = -1
if has_tok then tok = level('tl', 'tt', tok_cap, tok_rate, 0) end
local function reply(kind, extra)
  return {kind, tostring(req), tostring(tok), tostring(used), tostring(reserved), tostring(extra), epoch_id}
end
if peek then return reply('peek', 0) end
if req < 1 then return reply('requests', wait(1 - req, req_rate, req_cap, 1)) end
if charge then
  if limit >= 0 and used + reserved + amount > limit then return reply('quota', used + reserved) end
  if has_tok and tok < amount then return reply('tokens', wait(amount - tok, tok_rate, tok_cap, amount)) end
end
req = req - 1
redis.call('HSET', KEYS[1], 'rl', tostring(req), 'rt', stamp('rt'))
if charge and has_tok then
  tok = tok - amount
  redis.call('HSET', KEYS[1], 'tl', tostring(tok), 'tt', stamp('tt'))
end
if charge and amount > 0 then
  redis.call('ZADD', KEYS[3], now + ttl, member)
  redis.call('HINCRBY', KEYS[1], 'res:' .. period, amount)
  reserved = reserved + amount
end
return reply('ok', 0)
"#
    ))
});

/// The record is durable: drop the reservation, count its tokens as used.
/// KEYS: quota, reservations, buckets. ARGV: member, amount.
static SETTLE: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(concat!(
        unreserve_lua!(),
        r#"
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then unreserve(KEYS[3], ARGV[1]) end
if redis.call('EXISTS', KEYS[1]) == 1 then redis.call('HINCRBY', KEYS[1], 'used', ARGV[2]) end
return 1
"#
    ))
});

/// The request failed: drop the reservation, give back one request and the tokens.
/// KEYS: buckets, reservations. ARGV: member, req_cap, has_tok, tok_cap, amount.
static REFUND: LazyLock<redis::Script> = LazyLock::new(|| {
    redis::Script::new(concat!(
        unreserve_lua!(),
        r#"
if redis.call('ZREM', KEYS[2], ARGV[1]) == 1 then unreserve(KEYS[1], ARGV[1]) end
local rl = redis.call('HGET', KEYS[1], 'rl')
if rl then redis.call('HSET', KEYS[1], 'rl', tostring(math.min(tonumber(ARGV[2]), tonumber(rl) + 1))) end
if ARGV[3] == '1' then
  local tl = redis.call('HGET', KEYS[1], 'tl')
  if tl then
    redis.call('HSET', KEYS[1], 'tl', tostring(math.min(tonumber(ARGV[4]), tonumber(tl) + tonumber(ARGV[5]))))
  end
end
return 1
"#
    ))
});

/// The arguments of one run of the admit script.
struct Call<'a> {
    key_id: KeyId,
    policy: &'a KeyPolicy,
    ask: Ask,
    member: &'a str,
    now: jiff::Timestamp,
}

/// What a run of the admit script is asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Ask {
    /// Only report the levels; change nothing.
    Status,
    /// Take one request.
    Request,
    /// Take one request, and these tokens from the token bucket and the quota.
    Tokens(u64),
}

impl RedisLimiter {
    /// Connects lazily: a server starts even while Redis is down (and applies the failure modes).
    pub fn connect(
        url: &str,
        prefix: &str,
        rates_on_failure: FailureMode,
        quota_on_failure: FailureMode,
    ) -> Result<RedisLimiter, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = redis::aio::ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_millis(500)))
            .set_response_timeout(Some(Duration::from_millis(500)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_millis(200));
        let conn = ConnectionManager::new_lazy_with_config(client, config)?;
        let epoch = Arc::default();
        Ok(RedisLimiter { conn, prefix: prefix.into(), rates_on_failure, quota_on_failure, epoch })
    }

    /// The key's buckets, its quota copy for `period`, its reservations.
    fn keys(&self, key_id: KeyId, period: Period) -> [String; 3] {
        let [buckets, reservations] = self.period_free_keys(key_id);
        [buckets, format!("{}:q:{key_id}:{period}", self.prefix), reservations]
    }

    /// The key's buckets and its reservations.
    fn period_free_keys(&self, key_id: KeyId) -> [String; 2] {
        let p = &self.prefix;
        [format!("{p}:b:{key_id}"), format!("{p}:r:{key_id}")]
    }

    fn known_epoch(&self) -> String {
        self.epoch.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }

    fn saw_epoch(&self, reply: &[String]) {
        if let Some(id) = reply.get(6) {
            let mut known = self.epoch.lock().unwrap_or_else(|e| e.into_inner());
            if *known != *id {
                if !known.is_empty() {
                    tracing::warn!("redis lost the limiter state; request buckets refill from empty");
                }
                id.clone_into(&mut known);
            }
        }
    }

    async fn run_admit(
        &self,
        store: &Store,
        call: Call<'_>,
    ) -> Result<Result<Vec<String>, redis::RedisError>, AdmitError> {
        let Call { key_id, policy, ask, member, now } = call;
        let tokens = match ask {
            Ask::Tokens(n) => n,
            Ask::Status | Ask::Request => 0,
        };
        let period = Period::of(now);
        let [buckets, quota, reservations] = self.keys(key_id, period);
        let mut db_used = -1i64;
        loop {
            let mut inv = ADMIT.prepare_invoke();
            inv.key(&buckets).key(&quota).key(&reservations).key(format!("{}:epoch", self.prefix));
            inv.arg(now.as_millisecond())
                .arg(policy.requests.capacity)
                .arg(policy.requests.per_second)
                .arg(u8::from(policy.tokens.is_some()))
                .arg(policy.tokens.map_or(0.0, |t| t.capacity))
                .arg(policy.tokens.map_or(0.0, |t| t.per_second))
                .arg(tokens)
                .arg(u8::from(matches!(ask, Ask::Tokens(_))))
                .arg(policy.monthly_limit.map_or(-1, |l| l.min(i64::MAX as u64) as i64))
                .arg(member)
                .arg(RESERVATION_TTL_MS)
                .arg(db_used)
                .arg(period.to_string())
                .arg(u8::from(ask == Ask::Status))
                .arg(QUOTA_CACHE_MS)
                .arg(self.known_epoch())
                .arg(format!("{:016x}", rand::random::<u64>()));
            let reply: Vec<String> = match inv.invoke_async(&mut self.conn.clone()).await {
                Ok(r) => r,
                Err(e) => return Ok(Err(e)),
            };
            self.saw_epoch(&reply);
            if reply.first().map(String::as_str) == Some("load") && db_used < 0 {
                db_used = store.quota_used(key_id, period).await? as i64;
                continue;
            }
            return Ok(Ok(reply));
        }
    }

    /// Takes one request, and `charge`'s tokens if any; all or nothing.
    pub(super) async fn admit(
        &self,
        store: &Store,
        key_id: KeyId,
        policy: &KeyPolicy,
        charge: Option<u64>,
        now: jiff::Timestamp,
    ) -> Result<Admission, AdmitError> {
        let period = Period::of(now);
        let tokens = charge.unwrap_or(0);
        let member = format!("{:016x}|{tokens}|{period}", rand::random::<u64>());
        let ask = charge.map_or(Ask::Request, Ask::Tokens);
        let call = Call { key_id, policy, ask, member: &member, now };
        let reply = match self.run_admit(store, call).await? {
            Ok(reply) => reply,
            Err(e) => {
                let closed = self.rates_on_failure == FailureMode::Closed
                    || (charge.is_some() && self.quota_on_failure == FailureMode::Closed);
                tracing::warn!("redis unreachable ({e}); failing {}", if closed { "closed" } else { "open" });
                if closed {
                    return Err(AdmitError::Unavailable(format!("redis unreachable: {e}")));
                }
                let status = full_status(policy, now);
                return Ok(Admission::new(Holder::Unlimited, key_id, *policy, tokens, period, status));
            }
        };
        let (kind, status, extra) = parse_reply(&reply, policy, now)?;
        match kind.as_str() {
            "ok" => {
                let holder = Holder::Redis { limiter: self.clone(), member };
                Ok(Admission::new(holder, key_id, *policy, tokens, period, status))
            }
            "requests" => Err(AdmitError::Refused(Refusal::RequestRate {
                retry_after: retry_of(extra),
                status: Box::new(status),
            })),
            "tokens" => {
                Err(AdmitError::Refused(Refusal::TokenRate { retry_after: retry_of(extra), status: Box::new(status) }))
            }
            "quota" => Err(AdmitError::Refused(Refusal::QuotaExceeded {
                limit: policy.monthly_limit.unwrap_or(0),
                used: extra.max(0.0) as u64,
                requested: Some(tokens),
                resets_at: Period::of(now).resets_at(),
                status: Box::new(status),
            })),
            other => Err(AdmitError::Unavailable(format!("unexpected limiter reply {other:?}"))),
        }
    }

    pub(super) async fn status(
        &self,
        store: &Store,
        key_id: KeyId,
        policy: &KeyPolicy,
        now: jiff::Timestamp,
    ) -> Result<RateStatus, AdmitError> {
        let call = Call { key_id, policy, ask: Ask::Status, member: "", now };
        let mut status = match self.run_admit(store, call).await? {
            Ok(reply) => parse_reply(&reply, policy, now)?.1,
            Err(e) => return Err(AdmitError::Unavailable(format!("redis unreachable: {e}"))),
        };
        // Report use from the ledger of record, not from Redis's cached copy.
        status.used = store.quota_used(key_id, status.period).await?;
        Ok(status)
    }

    pub(super) fn settle(&self, key_id: KeyId, member: &str, tokens: u64, period: Period) {
        let [buckets, quota, reservations] = self.keys(key_id, period);
        let (member, mut conn) = (member.to_string(), self.conn.clone());
        spawn_script(async move {
            let mut settle = SETTLE.prepare_invoke();
            settle.key(quota).key(reservations).key(buckets).arg(member).arg(tokens);
            settle.invoke_async::<i64>(&mut conn).await
        });
    }

    pub(super) fn refund(&self, key_id: KeyId, policy: &KeyPolicy, member: &str, tokens: u64) {
        let [buckets, reservations] = self.period_free_keys(key_id);
        let (member, mut conn, policy) = (member.to_string(), self.conn.clone(), *policy);
        spawn_script(async move {
            REFUND
                .key(buckets)
                .key(reservations)
                .arg(member)
                .arg(policy.requests.capacity)
                .arg(u8::from(policy.tokens.is_some()))
                .arg(policy.tokens.map_or(0.0, |t| t.capacity))
                .arg(tokens)
                .invoke_async::<i64>(&mut conn)
                .await
        });
    }

    /// Drops every key's cached quota use of `period`; the next request reloads it from storage.
    pub(super) async fn forget_quota(&self, period: Period) -> Result<(), AdmitError> {
        let pattern = format!("{}:q:*:{period}", self.prefix);
        let mut conn = self.conn.clone();
        let mut cursor = 0u64;
        loop {
            let (next, keys): (u64, Vec<String>) = redis::cmd("SCAN")
                .arg(cursor)
                .arg("MATCH")
                .arg(&pattern)
                .arg("COUNT")
                .arg(1000)
                .query_async(&mut conn)
                .await
                .map_err(|e| AdmitError::Unavailable(e.to_string()))?;
            if !keys.is_empty() {
                redis::cmd("DEL")
                    .arg(&keys)
                    .query_async::<i64>(&mut conn)
                    .await
                    .map_err(|e| AdmitError::Unavailable(e.to_string()))?;
            }
            if next == 0 {
                return Ok(());
            }
            cursor = next;
        }
    }

    pub(super) async fn problem(&self) -> Option<RedisFailure> {
        let mut conn = self.conn.clone();
        let cmd = redis::cmd("PING");
        let ping = tokio::time::timeout(Duration::from_secs(1), cmd.query_async::<String>(&mut conn));
        let reason = match ping.await {
            Ok(Ok(_)) => return None,
            Ok(Err(e)) => {
                // The driver's words stay in the log; /health shows anyone only the kind of problem.
                tracing::warn!("redis health check failed: {e}");
                "redis unreachable".to_string()
            }
            Err(_) => "redis did not answer within 1 s".to_string(),
        };
        let refuses = self.rates_on_failure == FailureMode::Closed || self.quota_on_failure == FailureMode::Closed;
        Some(RedisFailure { reason, refuses })
    }
}

fn spawn_script<F>(run: F)
where
    F: std::future::Future<Output = Result<i64, redis::RedisError>> + Send + 'static,
{
    match tokio::runtime::Handle::try_current() {
        Ok(handle) => {
            handle.spawn(async move {
                if let Err(e) = run.await {
                    tracing::warn!("redis limiter update lost ({e}); the reservation expires by itself");
                }
            });
        }
        Err(_) => tracing::warn!("no runtime to update the redis limiter; the reservation expires by itself"),
    }
}

fn retry_of(extra: f64) -> u64 {
    if extra < 0.0 { REFILL_PERIOD_SECS as u64 } else { (extra as u64).max(1) }
}

/// `{kind, req_level, tok_level, used, reserved, extra}` → the kind, the status, `extra`.
fn parse_reply(
    reply: &[String],
    policy: &KeyPolicy,
    now: jiff::Timestamp,
) -> Result<(String, RateStatus, f64), AdmitError> {
    let num = |i: usize| -> Result<f64, AdmitError> {
        reply
            .get(i)
            .and_then(|s| s.parse::<f64>().ok())
            .ok_or_else(|| AdmitError::Unavailable(format!("malformed limiter reply {reply:?}")))
    };
    let (req, tok, used, reserved, extra) = (num(1)?, num(2)?, num(3)?, num(4)?, num(5)?);
    let mut status = full_status(policy, now);
    status.requests_remaining = req.max(0.0).floor() as u64;
    status.requests_reset_secs = seconds_to(policy.requests.capacity - req, policy.requests.per_second);
    if let (Some(rate), Some(t)) = (policy.tokens, status.tokens.as_mut()) {
        t.available = tok.max(0.0);
        t.reset_secs = seconds_to(rate.capacity - tok, rate.per_second);
    }
    status.used = used.max(0.0) as u64;
    status.reserved = reserved.max(0.0) as u64;
    Ok((reply[0].clone(), status, extra))
}

fn seconds_to(missing: f64, per_second: f64) -> u64 {
    if missing <= 0.0 || per_second <= 0.0 { 0 } else { (missing / per_second).ceil() as u64 }
}

/// The status of a key with full buckets and no use (reported when admitted unlimited).
fn full_status(policy: &KeyPolicy, now: jiff::Timestamp) -> RateStatus {
    RateStatus {
        tier: policy.tier,
        burst: policy.requests.capacity as u64,
        requests_per_second: policy.requests.per_second,
        requests_remaining: policy.requests.capacity as u64,
        requests_reset_secs: 0,
        tokens: policy.tokens.map(|rate| TokenStatus {
            available: rate.capacity,
            capacity: rate.capacity,
            per_second: rate.per_second,
            reset_secs: 0,
        }),
        monthly_limit: policy.monthly_limit,
        used: 0,
        reserved: 0,
        period: Period::of(now),
        resets_at: Period::of(now).resets_at(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::keys::Tier;
    use crate::policy::Rate;

    /// The month's running sum of reservations, as the admit script reads it.
    async fn reserved_sum(limiter: &RedisLimiter, key_id: KeyId, period: Period) -> Option<i64> {
        let [buckets, _] = limiter.period_free_keys(key_id);
        let field = format!("res:{period}");
        redis::cmd("HGET").arg(buckets).arg(field).query_async(&mut limiter.conn.clone()).await.unwrap()
    }

    /// An instance that dies mid-request leaves its reservation: it holds the quota until it
    /// expires, then leaves the running sum as well as the set, and a settled request leaves
    /// nothing behind.
    #[tokio::test]
    #[cfg_attr(not(omnimemory_test_redis), ignore = "needs OMNIMEMORY_TEST_REDIS_URL")]
    async fn a_dead_instances_reservation_holds_the_quota_until_it_expires() {
        let url = std::env::var("OMNIMEMORY_TEST_REDIS_URL").expect("the cfg says it is set");
        let prefix = format!("omnimemory-test-{:016x}", rand::random::<u64>());
        let limiter = RedisLimiter::connect(&url, &prefix, FailureMode::Closed, FailureMode::Closed).unwrap();
        let home = tempfile::tempdir().unwrap();
        let store = Store::open(home.path(), None).await.unwrap();
        let policy = KeyPolicy {
            tier: Tier::Pro,
            requests: Rate { capacity: 100.0, per_second: 100.0 },
            tokens: None,
            monthly_limit: Some(100),
        };
        let key_id = KeyId::from_row(7);
        let t0: jiff::Timestamp = "2026-12-06T10:00:00Z".parse().unwrap();
        let period = Period::of(t0);
        let at = |ms: i64| t0 + jiff::SignedDuration::from_millis(ms);

        // Its instance dies: neither settled nor refunded.
        std::mem::forget(limiter.admit(&store, key_id, &policy, Some(60), t0).await.unwrap());
        assert_eq!(reserved_sum(&limiter, key_id, period).await, Some(60));
        let refused = limiter.admit(&store, key_id, &policy, Some(60), at(1_000)).await;
        assert!(matches!(refused, Err(AdmitError::Refused(Refusal::QuotaExceeded { .. }))), "{refused:?}");

        // Once it has expired, the quota is whole again.
        let admitted = limiter.admit(&store, key_id, &policy, Some(60), at(RESERVATION_TTL_MS + 1_000)).await.unwrap();
        assert_eq!(reserved_sum(&limiter, key_id, period).await, Some(60), "only the new reservation");
        admitted.settle();
        // Settling runs in the background.
        for _ in 0..100 {
            if reserved_sum(&limiter, key_id, period).await.is_none() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        assert_eq!(reserved_sum(&limiter, key_id, period).await, None);
    }
}
