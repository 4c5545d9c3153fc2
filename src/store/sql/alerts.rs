//! The quota-alert outbox: one row per key, quota period and threshold crossed, queued in the
//! same transaction as the charge that crossed it (so neither a crash nor a slow receiver can
//! lose one), unique per `(key_id, period, threshold)` (so an alert fires once per period and
//! never again when usage is reset and climbs back: no flapping). `alerts::Deliverer` sends
//! the rows and records each attempt here.

use sqlx::Row as _;

use super::Store;
use crate::quota::Period;
use crate::store::{StoreError, format_timestamp};

/// Schema step (usage database).
pub const SQLITE_ALERT_OUTBOX: &str = "
CREATE TABLE alert_outbox (
    id               INTEGER PRIMARY KEY,
    event_id         TEXT NOT NULL UNIQUE,
    key_id           INTEGER NOT NULL,
    period           TEXT NOT NULL,
    threshold        INTEGER NOT NULL,
    body             TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    attempts         INTEGER NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    delivered_at     TEXT,
    last_error       TEXT,
    UNIQUE (key_id, period, threshold)
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE delivered_at IS NULL;
";

pub const POSTGRES_ALERT_OUTBOX: &str = "
CREATE TABLE alert_outbox (
    id               BIGSERIAL PRIMARY KEY,
    event_id         TEXT NOT NULL UNIQUE,
    key_id           BIGINT NOT NULL,
    period           TEXT NOT NULL,
    threshold        BIGINT NOT NULL,
    body             TEXT NOT NULL,
    created_at       TEXT NOT NULL,
    attempts         BIGINT NOT NULL DEFAULT 0,
    next_attempt_at  TEXT NOT NULL,
    delivered_at     TEXT,
    last_error       TEXT,
    UNIQUE (key_id, period, threshold)
);
CREATE INDEX alert_outbox_due ON alert_outbox (next_attempt_at) WHERE delivered_at IS NULL;
";

/// An alert to send: its row, its body (signed as is), and how often it was tried.
#[derive(Debug, Clone)]
pub struct QueuedAlert {
    pub id: i64,
    pub event_id: String,
    pub body: String,
    pub attempts: u32,
}

impl Store {
    /// Quota alerts on: a charge that takes a key's month to or past a threshold (percent of
    /// its monthly limit) queues that threshold's alert.
    pub fn with_quota_alerts(mut self, thresholds: &[u32]) -> Store {
        self.alert_thresholds = Some(thresholds.into());
        self
    }

    /// Claims up to `max` undelivered alerts due at `now`, each for `lease` (another instance
    /// skips it meanwhile; if this one dies, the lease runs out and the alert is tried again).
    pub async fn claim_due_alerts(
        &self,
        now: jiff::Timestamp,
        lease: jiff::SignedDuration,
        max: u32,
    ) -> Result<Vec<QueuedAlert>, StoreError> {
        let due_at = format_timestamp(now);
        let rows = sqlx::query(
            "SELECT id, event_id, body, attempts, next_attempt_at FROM alert_outbox
             WHERE delivered_at IS NULL AND next_attempt_at <= $1 ORDER BY next_attempt_at, id LIMIT $2",
        )
        .bind(&due_at)
        .bind(i64::from(max))
        .fetch_all(&self.usage)
        .await?;
        let leased_until = format_timestamp(now + lease);
        let mut claimed = Vec::new();
        for row in rows {
            let (id, was): (i64, String) = (row.try_get(0)?, row.try_get(4)?);
            let done = sqlx::query(
                "UPDATE alert_outbox SET next_attempt_at = $1 WHERE id = $2 AND next_attempt_at = $3 AND delivered_at IS NULL",
            )
            .bind(&leased_until)
            .bind(id)
            .bind(&was)
            .execute(&self.usage)
            .await?;
            if done.rows_affected() == 1 {
                let attempts: i64 = row.try_get(3)?;
                claimed.push(QueuedAlert {
                    id,
                    event_id: row.try_get(1)?,
                    body: row.try_get(2)?,
                    attempts: attempts.clamp(0, i64::from(u32::MAX)) as u32,
                });
            }
        }
        Ok(claimed)
    }

    /// Forgets the delivered alerts of the months before `period`; undelivered ones stay until
    /// they are delivered. A row only keeps its month's threshold from alerting twice.
    pub async fn forget_delivered_alerts_before(&self, period: Period) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM alert_outbox WHERE delivered_at IS NOT NULL AND period < $1")
            .bind(period.to_string())
            .execute(&self.usage)
            .await?;
        Ok(done.rows_affected())
    }

    pub async fn alert_delivered(&self, id: i64, at: jiff::Timestamp) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE alert_outbox SET delivered_at = $1, attempts = attempts + 1, last_error = NULL WHERE id = $2",
        )
        .bind(format_timestamp(at))
        .bind(id)
        .execute(&self.usage)
        .await?;
        Ok(())
    }

    /// A failed attempt: tried again at `retry_at`.
    pub async fn alert_failed(&self, id: i64, retry_at: jiff::Timestamp, error: &str) -> Result<(), StoreError> {
        let error: String = error.chars().take(500).collect();
        sqlx::query(
            "UPDATE alert_outbox SET attempts = attempts + 1, next_attempt_at = $1, last_error = $2 WHERE id = $3",
        )
        .bind(format_timestamp(retry_at))
        .bind(error)
        .bind(id)
        .execute(&self.usage)
        .await?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn only_the_delivered_alerts_of_earlier_months_are_forgotten() {
        let home = tempfile::tempdir().unwrap();
        let store = Store::open(home.path(), None).await.unwrap();
        let rows = [
            ("a", "2026-09", 80, true),
            ("b", "2026-09", 90, false),
            ("c", "2026-10", 80, true),
            ("d", "2026-11", 80, true),
        ];
        for (event_id, period, threshold, delivered) in rows {
            let at = "2026-11-01T00:00:00.000Z";
            sqlx::query(
                "INSERT INTO alert_outbox (event_id, key_id, period, threshold, body, created_at, next_attempt_at,
                    delivered_at) VALUES ($1, 1, $2, $3, '{}', $4, $4, $5)",
            )
            .bind(event_id)
            .bind(period)
            .bind(threshold)
            .bind(at)
            .bind(delivered.then_some(at))
            .execute(&store.usage)
            .await
            .unwrap();
        }
        let october = Period::of("2026-10-15T00:00:00Z".parse().unwrap());
        assert_eq!(store.forget_delivered_alerts_before(october).await.unwrap(), 1);
        let left: Vec<String> = sqlx::query_scalar("SELECT event_id FROM alert_outbox ORDER BY event_id")
            .fetch_all(&store.usage)
            .await
            .unwrap();
        assert_eq!(left, ["b", "c", "d"], "an undelivered alert and the later months stay");
    }
}
