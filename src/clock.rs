//! Where "now" comes from: the [`Clock`] every part of the service that needs the time is
//! given, [`SystemClock`] in production, and a [`FakeClock`] that tests move by hand (an expired
//! key, a month that turns) instead of sleeping or rewriting stored times.

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
