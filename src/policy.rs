//! A key's limits, as pure values: what a tier allows ([`TierLimits`], with an operator's or a
//! key's `LimitOverride` applied), the effective [`KeyPolicy`] that admission enforces, and
//! the token-bucket maths (time is an argument, never read here).
//!
//! No I/O, no clock, no storage: `config` builds a key's policy from these
//! (`Settings::policy_for`), the limiters in `limits` apply it.

use crate::keys::{KeyId, LimitOverride, Tier};

/// Seconds in the 30-day month the token bucket refills over.
pub const REFILL_PERIOD_SECS: f64 = 2_592_000.0;

/// The token-bucket refill per second that spreads `monthly` tokens over the refill period:
/// a tier's default token rate, and the rate a monthly override moves it to.
pub fn monthly_refill(monthly: u64) -> f64 {
    monthly as f64 / REFILL_PERIOD_SECS
}

/// Limits of one tier; `None` for a token figure means unlimited.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct TierLimits {
    pub monthly_tokens: Option<u64>,
    pub requests_per_second: f64,
    pub burst: u32,
    /// Token-bucket refill per second; `None` = unlimited, else monthly / 30 days.
    pub tokens_per_second: Option<f64>,
}

impl TierLimits {
    /// These limits with `over` applied; a monthly override also moves the token refill rate
    /// (monthly / 30 days) unless the token rate is unlimited.
    pub fn with_override(mut self, over: &LimitOverride) -> TierLimits {
        if let Some(m) = over.monthly_tokens {
            self.monthly_tokens = Some(m);
            if self.tokens_per_second.is_some() {
                self.tokens_per_second = Some(monthly_refill(m));
            }
        }
        self.requests_per_second = over.requests_per_second.unwrap_or(self.requests_per_second);
        self.burst = over.burst.unwrap_or(self.burst);
        self
    }

    pub fn default_for(tier: Tier) -> TierLimits {
        let (monthly, requests_per_second, burst) = match tier {
            Tier::Free => (1_000_000, 1.0, 1),
            Tier::Pro => (100_000_000, 10.0, 10),
            Tier::Enterprise => (1_000_000_000, 100.0, 100),
        };
        // Enterprise keys have no token rate, only their monthly quota.
        let tokens_per_second = (tier != Tier::Enterprise).then(|| monthly_refill(monthly));
        TierLimits { monthly_tokens: Some(monthly), requests_per_second, burst, tokens_per_second }
    }
}

/// A key's effective limits (its tier's, with the operator's and the key's overrides applied),
/// in the shape the limiters enforce. `Settings::policy_for` is the one place that builds it
/// for a caller.
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

    /// Requests the request bucket holds when full.
    pub fn burst(&self) -> u32 {
        self.requests.capacity as u32
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

impl Denied {
    /// Whole seconds to wait before retrying; for an amount the bucket can never hold, the refill
    /// period (retrying is pointless before the limits change).
    pub fn retry_secs(self) -> u64 {
        match self {
            Denied::RetryAfter(s) => s,
            Denied::Never => REFILL_PERIOD_SECS as u64,
        }
    }
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

/// Bucket levels of one key, for storage.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct KeySnapshot {
    pub key_id: KeyId,
    pub requests: Bucket,
    pub tokens: Option<Bucket>,
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

    #[test]
    fn a_monthly_override_moves_the_token_rate_unless_it_is_unlimited() {
        let pro = TierLimits::default_for(Tier::Pro)
            .with_override(&LimitOverride { monthly_tokens: Some(2_592_000), ..Default::default() });
        assert_eq!((pro.monthly_tokens, pro.tokens_per_second, pro.burst), (Some(2_592_000), Some(1.0), 10));
        let enterprise = TierLimits::default_for(Tier::Enterprise).with_override(&LimitOverride {
            monthly_tokens: Some(5),
            burst: Some(3),
            requests_per_second: Some(2.0),
        });
        assert_eq!(enterprise.tokens_per_second, None);
        let policy = KeyPolicy::new(Tier::Enterprise, enterprise);
        assert_eq!((policy.burst(), policy.requests.per_second, policy.monthly_limit), (3, 2.0, Some(5)));
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
