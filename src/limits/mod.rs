//! Rate limits: token-bucket math (pure: time is an argument), the `Clock` seam, and the
//! per-key `Limiter` that combines a key's request bucket, token bucket and quota ledger.
//!
//! What this module does not do: talk to storage. The `Limiter` is loaded from and persisted
//! to storage by its callers (the HTTP layer loads a key's state on first use; the usage
//! writer persists bucket snapshots with each batch of records).

mod limiter;

pub use limiter::{Admission, KeyPolicy, KeySnapshot, Limiter, RateStatus, Refusal};

use std::sync::Mutex;

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
