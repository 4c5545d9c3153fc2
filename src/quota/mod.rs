//! The monthly quota ledger of one key: pure arithmetic over a calendar month (UTC).
//!
//! `used` is what durable usage records account for; `reserved` is what admitted, unfinished
//! requests hold. A request reserves its `original_tokens` before compression; the usage
//! writer settles it (reserved → used) once its record is committed, or it is refunded.
//! `used + reserved` never exceeds the limit, so no mix of concurrent requests can pass it.

/// The quota period a timestamp falls in: its calendar month in UTC, `YYYY-MM`.
pub fn period_of(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m").to_string()
}

/// The first instant of the month after the one `ts` falls in (UTC): when the quota resets.
pub fn resets_at(ts: jiff::Timestamp) -> jiff::Timestamp {
    let utc = jiff::tz::Offset::UTC;
    let first = utc.to_datetime(ts).date().first_of_month();
    let next = first.checked_add(jiff::Span::new().months(1)).unwrap_or(first);
    utc.to_timestamp(next.to_datetime(jiff::civil::Time::midnight())).unwrap_or(ts)
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ledger {
    pub period: String,
    pub used: u64,
    pub reserved: u64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct QuotaExceeded {
    pub limit: u64,
    pub used: u64,
}

impl Ledger {
    pub fn new(period: String, used: u64) -> Ledger {
        Ledger { period, used, reserved: 0 }
    }

    /// Reserves `amount` in `period` if it fits under `limit` (`None` = unlimited).
    /// A new period starts from zero use; reservations of the old one stay held until settled.
    pub fn reserve(&mut self, limit: Option<u64>, amount: u64, period: &str) -> Result<(), QuotaExceeded> {
        if period != self.period {
            self.period = period.to_string();
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
    pub fn settle(&mut self, amount: u64, period: &str) {
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

    #[test]
    fn reservations_never_pass_the_limit() {
        let mut l = Ledger::new("2026-11".into(), 0);
        let admitted = (0..10).filter(|_| l.reserve(Some(250), 100, "2026-11").is_ok()).count();
        assert_eq!(admitted, 2);
        l.settle(100, "2026-11");
        assert_eq!((l.used, l.reserved), (100, 100));
        l.refund(100);
        assert_eq!(l.reserve(Some(250), 150, "2026-11"), Ok(()));
        assert_eq!(l.reserve(Some(250), 1, "2026-11"), Err(QuotaExceeded { limit: 250, used: 250 }));
        assert_eq!(l.reserve(None, 10_000, "2026-11"), Ok(()));
    }

    #[test]
    fn the_month_turning_starts_from_zero() {
        let mut l = Ledger::new("2026-11".into(), 250);
        assert!(l.reserve(Some(250), 1, "2026-11").is_err());
        assert_eq!(l.reserve(Some(250), 250, "2026-12"), Ok(()));
        l.settle(250, "2026-12");
        assert_eq!((l.period.as_str(), l.used), ("2026-12", 250));
    }

    #[test]
    fn reset_time_is_the_first_of_next_month_utc() {
        let ts: jiff::Timestamp = "2026-12-31T23:59:59Z".parse().unwrap();
        assert_eq!(resets_at(ts).to_string(), "2027-01-01T00:00:00Z");
        assert_eq!(period_of(ts), "2026-12");
        let ts: jiff::Timestamp = "2026-02-10T10:00:00Z".parse().unwrap();
        assert_eq!(resets_at(ts).to_string(), "2026-03-01T00:00:00Z");
    }
}
