//! The monthly quota ledger of one key: pure arithmetic over a calendar month (UTC).
//!
//! `used` is what durable usage records account for; `reserved` is what admitted, unfinished
//! requests hold. A request reserves its `original_tokens` before compression; the usage
//! writer settles it (reserved → used) once its record is committed, or it is refunded.
//! `used + reserved` never exceeds the limit, so no mix of concurrent requests can pass it.

/// A billing period: one calendar month in UTC, shown (and stored) as `YYYY-MM`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Period {
    year: i16,
    month: i8,
}

impl Period {
    /// The period `ts` falls in.
    pub fn of(ts: jiff::Timestamp) -> Period {
        let date = jiff::tz::Offset::UTC.to_datetime(ts).date();
        Period { year: date.year(), month: date.month() }
    }

    /// The first instant of the next period: when this one's quota resets.
    pub fn resets_at(self) -> jiff::Timestamp {
        let (year, month) = if self.month == 12 { (self.year + 1, 1) } else { (self.year, self.month + 1) };
        let first = jiff::civil::date(year, month, 1).to_datetime(jiff::civil::Time::midnight());
        jiff::tz::Offset::UTC.to_timestamp(first).unwrap_or(jiff::Timestamp::MAX)
    }
}

impl std::fmt::Display for Period {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{:04}-{:02}", self.year, self.month)
    }
}

impl serde::Serialize for Period {
    fn serialize<S: serde::Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.collect_str(self)
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub period: Period,
    pub used: u64,
    pub reserved: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub limit: u64,
    pub used: u64,
}

impl Ledger {
    pub fn new(period: Period, used: u64) -> Ledger {
        Ledger { period, used, reserved: 0 }
    }

    /// Reserves `amount` in `period` if it fits under `limit` (`None` = unlimited).
    /// A new period starts from zero use; reservations of the old one stay held until settled.
    pub fn reserve(&mut self, limit: Option<u64>, amount: u64, period: Period) -> Result<(), QuotaExceeded> {
        if period != self.period {
            self.period = period;
            self.used = 0;
        }
        if let Some(limit) = limit {
            let committed = self.used.saturating_add(self.reserved);
            if committed.saturating_add(amount) > limit {
                return Err(QuotaExceeded { limit, used: committed });
            }
        }
        self.reserved += amount;
        Ok(())
    }

    /// The reservation's record is durable: move it from reserved to used (if still this period).
    pub fn settle(&mut self, amount: u64, period: Period) {
        self.reserved = self.reserved.saturating_sub(amount);
        if period == self.period {
            self.used += amount;
        }
    }

    pub fn refund(&mut self, amount: u64) {
        self.reserved = self.reserved.saturating_sub(amount);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const NOV: Period = Period { year: 2026, month: 11 };
    const DEC: Period = Period { year: 2026, month: 12 };

    #[test]
    fn reservations_never_pass_the_limit() {
        let mut l = Ledger::new(NOV, 0);
        let admitted = (0..10).filter(|_| l.reserve(Some(250), 100, NOV).is_ok()).count();
        assert_eq!(admitted, 2);
        l.settle(100, NOV);
        assert_eq!((l.used, l.reserved), (100, 100));
        l.refund(100);
        assert_eq!(l.reserve(Some(250), 150, NOV), Ok(()));
        assert_eq!(l.reserve(Some(250), 1, NOV), Err(QuotaExceeded { limit: 250, used: 250 }));
        assert_eq!(l.reserve(None, 10_000, NOV), Ok(()));
    }

    #[test]
    fn the_month_turning_starts_from_zero() {
        let mut l = Ledger::new(NOV, 250);
        assert!(l.reserve(Some(250), 1, NOV).is_err());
        assert_eq!(l.reserve(Some(250), 250, DEC), Ok(()));
        l.settle(250, DEC);
        assert_eq!((l.period.to_string(), l.used), ("2026-12".to_string(), 250));
    }

    #[test]
    fn reset_time_is_the_first_of_next_month_utc() {
        let ts: jiff::Timestamp = "2026-12-31T23:59:59Z".parse().unwrap();
        assert_eq!(Period::of(ts).resets_at().to_string(), "2027-01-01T00:00:00Z");
        assert_eq!(Period::of(ts), DEC);
        assert_eq!((DEC.to_string(), serde_json::to_value(DEC).unwrap()), ("2026-12".to_string(), "2026-12".into()));
        let ts: jiff::Timestamp = "2026-02-10T10:00:00Z".parse().unwrap();
        assert_eq!(Period::of(ts).resets_at().to_string(), "2026-03-01T00:00:00Z");
    }
}
