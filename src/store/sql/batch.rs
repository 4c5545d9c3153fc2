//! One usage batch's transaction (`Store::commit_usage`): its records, their quota charges, the
//! answers of requests sent with an `Idempotency-Key`, the quota alerts the charges cross and
//! the keys' bucket levels. The logic is written once, over [`Statements`], and runs on two
//! kinds of connection: sqlx's (PostgreSQL), and the SQLite writer thread's own
//! (`sqlite_writer`), whose statements are plain calls into SQLite with no round trip to a
//! driver's worker.

use std::collections::BTreeMap;
use std::sync::Arc;

use sqlx::{AssertSqlSafe, Row as _};

use super::{Dialect, RECORD_COLUMNS, RECORDS_PER_INSERT, WriteTx, insert_records_sql};
use crate::keys::{Caller, KeyId};
use crate::policy::KeySnapshot;
use crate::quota::Period;
use crate::store::{
    ANSWERS_KEPT_FOR, Charge, Completion, OverQuota, StoreError, Unwritten, UsageRecord, format_timestamp,
};

/// A value bound to one of a batch's statements.
#[derive(Debug, Clone, Copy)]
pub(super) enum Arg<'a> {
    Int(i64),
    Real(f64),
    Text(&'a str),
    MaybeInt(Option<i64>),
    MaybeReal(Option<f64>),
    MaybeText(Option<&'a str>),
}

/// The statements of a write transaction that is already open on one connection. A
/// synchronous connection implements them with futures that are ready at once.
pub(super) trait Statements {
    /// Runs a statement that returns no rows; how many rows it changed.
    async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError>;
    /// The first column of the statement's first row (an integer), if it returns a row.
    async fn fetch_i64(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Option<i64>, StoreError>;
}

impl Statements for WriteTx {
    async fn execute(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<u64, StoreError> {
        Ok(sqlx::Executor::execute(&mut *self.conn, any_query(sql, args)).await?.rows_affected())
    }

    async fn fetch_i64(&mut self, sql: &str, args: &[Arg<'_>]) -> Result<Option<i64>, StoreError> {
        let row = sqlx::Executor::fetch_optional(&mut *self.conn, any_query(sql, args)).await?;
        Ok(row.map(|row| row.try_get::<i64, _>(0)).transpose()?)
    }
}

fn any_query<'q>(sql: &str, args: &[Arg<'_>]) -> sqlx::query::Query<'q, sqlx::Any, sqlx::any::AnyArguments> {
    args.iter().fold(sqlx::query(AssertSqlSafe(sql)), |query, arg| match *arg {
        Arg::Int(v) => query.bind(v),
        Arg::Real(v) => query.bind(v),
        Arg::Text(v) => query.bind(v),
        Arg::MaybeInt(v) => query.bind(v),
        Arg::MaybeReal(v) => query.bind(v),
        Arg::MaybeText(v) => query.bind(v),
    })
}

/// What one usage transaction writes (see `Store::commit_usage`).
pub(super) struct Batch {
    pub records: Vec<(UsageRecord, Charge)>,
    /// The outputs of requests whose records earlier batches wrote.
    pub completions: Vec<Completion>,
    pub snapshots: Vec<KeySnapshot>,
    /// Quota alert thresholds (percent), when alerts are on.
    pub alert_thresholds: Option<Arc<[u32]>>,
}

impl Batch {
    /// Whether the commit must wait for the disk's flush. Not for a batch that only completes
    /// records (and saves bucket levels on the way): the records and their charges are durable
    /// already, the commit survives a crash of the process at once, and the next flush (the
    /// next batch with a record, a checkpoint) takes it to the disk.
    pub fn needs_flush(&self) -> bool {
        !self.records.is_empty() || self.completions.is_empty()
    }

    /// Writes the batch inside the transaction open on `tx` (the caller commits it).
    pub async fn write(&self, tx: &mut impl Statements, dialect: Dialect) -> Result<Unwritten, StoreError> {
        let records = &self.records;
        let mut unwritten = Unwritten::default();
        // Answers first, in one order for every transaction (no two wait on each other).
        let mut answered: Vec<usize> = (0..records.len()).filter(|&i| records[i].0.answer.is_some()).collect();
        answered.sort_by_key(|&i| (records[i].0.key_id, records[i].0.answer.as_ref().map(|a| a.idem_key.as_str())));
        for &i in &answered {
            let (r, _) = &records[i];
            let Some(answer) = &r.answer else { continue };
            // An expired answer under the same key gives way; a live one stays.
            let written = tx
                .execute(
                    "INSERT INTO idempotent_answers (key_id, idem_key, body_sha256, request_id, answer, created_at)
                     VALUES ($1, $2, $3, $4, $5, $6)
                     ON CONFLICT (key_id, idem_key) DO UPDATE SET body_sha256 = excluded.body_sha256,
                        request_id = excluded.request_id, answer = excluded.answer, created_at = excluded.created_at
                     WHERE idempotent_answers.created_at < $7",
                    &[
                        Arg::Int(r.key_id.row()),
                        Arg::Text(&answer.idem_key),
                        Arg::Text(&answer.body_sha256),
                        Arg::Text(&r.request_id),
                        Arg::Text(&answer.answer),
                        Arg::Text(&format_timestamp(r.timestamp)),
                        Arg::Text(&format_timestamp(r.timestamp - ANSWERS_KEPT_FOR)),
                    ],
                )
                .await?;
            if written == 0 {
                unwritten.answered_elsewhere.push(i);
            }
        }
        // Charges, summed per key and month; only when a sum does not fit (never while the
        // limiter is exact) is the key's charge taken record by record, in order.
        /// One key's charges of one month in this batch: their sum, the limit, the records.
        #[derive(Default)]
        struct Group {
            total: u64,
            limit: Option<u64>,
            members: Vec<usize>,
        }
        let mut groups: BTreeMap<(KeyId, Period), Group> = BTreeMap::new();
        for (i, (_, c)) in records.iter().enumerate() {
            if unwritten.answered_elsewhere.contains(&i) {
                continue;
            }
            let group = groups.entry((c.key_id, c.period)).or_default();
            group.total += c.tokens;
            group.limit = match (group.limit, c.limit) {
                (Some(a), Some(b)) => Some(a.min(b)),
                (a, b) => a.or(b),
            };
            group.members.push(i);
        }
        for ((key_id, period), Group { total, limit, members }) in groups {
            let first = &records[members[0]].0;
            if charge_ledger(tx, key_id, period, total, limit).await?.is_ok() {
                self.queue_crossed_alerts(tx, first, period, limit).await?;
                continue;
            }
            for i in members {
                if let Err(used) = charge_ledger(tx, key_id, period, records[i].1.tokens, limit).await? {
                    unwritten.over_quota.push(OverQuota { index: i, limit: limit.unwrap_or(0), used });
                    // Its answer was written above: take it back.
                    if let Some(answer) = &records[i].0.answer {
                        tx.execute(
                            "DELETE FROM idempotent_answers WHERE key_id = $1 AND idem_key = $2 AND request_id = $3",
                            &[Arg::Int(key_id.row()), Arg::Text(&answer.idem_key), Arg::Text(&records[i].0.request_id)],
                        )
                        .await?;
                    }
                }
            }
            self.queue_crossed_alerts(tx, first, period, limit).await?;
        }
        let written: Vec<&UsageRecord> =
            records.iter().enumerate().filter(|(i, _)| !unwritten.contains(*i)).map(|(_, (r, _))| r).collect();
        // Multi-row inserts: one statement per chunk instead of one per record. Chunk sizes
        // are powers of two, so a handful of distinct statements stay in the statement cache.
        let mut rest = written.as_slice();
        while !rest.is_empty() {
            let size = RECORDS_PER_INSERT.min(1 << rest.len().ilog2());
            let (chunk, tail) = rest.split_at(size);
            rest = tail;
            let timestamps: Vec<String> = chunk.iter().map(|r| format_timestamp(r.timestamp)).collect();
            let mut args = Vec::with_capacity(chunk.len() * RECORD_COLUMNS);
            for (r, timestamp) in chunk.iter().zip(&timestamps) {
                args.extend([
                    Arg::Text(&r.request_id),
                    Arg::Text(&r.api_key),
                    Arg::Int(r.key_id.row()),
                    Arg::Text(&r.user_id),
                    Arg::Text(r.operation),
                    Arg::Int(r.original_tokens as i64),
                    Arg::Int(r.compressed_tokens as i64),
                    Arg::Int(r.original_tokens.saturating_sub(r.compressed_tokens) as i64),
                    Arg::Text(&r.model_id),
                    Arg::Real(r.compression_ratio),
                    Arg::MaybeReal(r.quality_score),
                    Arg::MaybeText(r.tool_id.as_deref()),
                    Arg::MaybeText(r.session_id.as_deref()),
                    Arg::MaybeText(r.metadata.as_deref()),
                    Arg::Text(timestamp),
                ]);
            }
            tx.execute(&insert_records_sql(chunk.len(), dialect), &args).await?;
        }
        for c in &self.completions {
            // Found by the (key, time) index; a record the ledger refused is not there.
            tx.execute(
                "UPDATE usage_records SET compressed_tokens = $1, tokens_saved = original_tokens - $1,
                    compression_ratio = $2, quality_score = $3
                 WHERE key_id = $4 AND timestamp = $5 AND request_id = $6",
                &[
                    Arg::Int(c.compressed_tokens as i64),
                    Arg::Real(c.compression_ratio),
                    Arg::MaybeReal(c.quality_score),
                    Arg::Int(c.key_id.row()),
                    Arg::Text(&format_timestamp(c.timestamp)),
                    Arg::Text(&c.request_id),
                ],
            )
            .await?;
        }
        for s in &self.snapshots {
            tx.execute(
                "INSERT INTO rate_buckets (key_id, requests_level, requests_at_ms, tokens_level, tokens_at_ms)
                 VALUES ($1, $2, $3, $4, $5)
                 ON CONFLICT (key_id) DO UPDATE SET requests_level = excluded.requests_level,
                    requests_at_ms = excluded.requests_at_ms, tokens_level = excluded.tokens_level,
                    tokens_at_ms = excluded.tokens_at_ms",
                &[
                    Arg::Int(s.key_id.row()),
                    Arg::Real(s.requests.level),
                    Arg::Int(s.requests.at_ms),
                    Arg::MaybeReal(s.tokens.map(|t| t.level)),
                    Arg::MaybeInt(s.tokens.map(|t| t.at_ms)),
                ],
            )
            .await?;
        }
        Ok(unwritten)
    }

    /// Queues the alert of every threshold the key's month has reached (once per period: a
    /// queued one stays as it is). `record` is one of the charged records, for the body.
    async fn queue_crossed_alerts(
        &self,
        tx: &mut impl Statements,
        record: &UsageRecord,
        period: Period,
        limit: Option<u64>,
    ) -> Result<(), StoreError> {
        let (Some(thresholds), Some(limit)) = (&self.alert_thresholds, limit) else { return Ok(()) };
        // Keyless traffic (anonymous access) has no customer to warn.
        if record.key_id.caller() == Caller::Anonymous {
            return Ok(());
        }
        let used = ledger_used(tx, record.key_id, period).await?;
        // Queued when its request was recorded.
        let now = format_timestamp(record.timestamp);
        // The tier is the public id's second part (`om_pro_…`).
        let tier = record.api_key.split('_').nth(1).unwrap_or_default();
        for &threshold in thresholds.iter() {
            if u128::from(used) * 100 < u128::from(threshold) * u128::from(limit) {
                continue;
            }
            let event_id = format!("evt_{:032x}", rand::random::<u128>());
            let body = serde_json::json!({
                "event_id": event_id, "type": "quota.threshold_reached",
                "key_id": record.api_key, "user_id": record.user_id, "tier": tier,
                "threshold": threshold, "used": used, "limit": limit, "period": period, "created_at": now,
            })
            .to_string();
            tx.execute(
                "INSERT INTO alert_outbox (event_id, key_id, period, threshold, body, created_at, next_attempt_at)
                 VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT (key_id, period, threshold) DO NOTHING",
                &[
                    Arg::Text(&event_id),
                    Arg::Int(record.key_id.row()),
                    Arg::Text(&period.to_string()),
                    Arg::Int(i64::from(threshold)),
                    Arg::Text(&body),
                    Arg::Text(&now),
                ],
            )
            .await?;
        }
        Ok(())
    }
}

/// Adds `tokens` to a key's ledger for `period` unless that would take it past `limit`;
/// `Err(used)` (the ledger's use) when it would. Atomic on both backends: the condition is
/// read on the row the upsert has locked.
async fn charge_ledger(
    tx: &mut impl Statements,
    key_id: KeyId,
    period: Period,
    tokens: u64,
    limit: Option<u64>,
) -> Result<Result<(), u64>, StoreError> {
    let period_text = period.to_string();
    let Some(limit) = limit else {
        tx.execute(
            "INSERT INTO quota_ledger (key_id, period, used) VALUES ($1, $2, $3)
             ON CONFLICT (key_id, period) DO UPDATE SET used = quota_ledger.used + excluded.used",
            &[Arg::Int(key_id.row()), Arg::Text(&period_text), Arg::Int(tokens as i64)],
        )
        .await?;
        return Ok(Ok(()));
    };
    if tokens > limit {
        return Ok(Err(ledger_used(tx, key_id, period).await?));
    }
    let limit = limit.min(i64::MAX as u64) as i64;
    let applied = tx
        .fetch_i64(
            "INSERT INTO quota_ledger (key_id, period, used) VALUES ($1, $2, $3)
             ON CONFLICT (key_id, period) DO UPDATE SET used = quota_ledger.used + excluded.used
             WHERE excluded.used = 0 OR quota_ledger.used + excluded.used <= $4
             RETURNING used",
            &[Arg::Int(key_id.row()), Arg::Text(&period_text), Arg::Int(tokens as i64), Arg::Int(limit)],
        )
        .await?;
    match applied {
        Some(_) => Ok(Ok(())),
        None => Ok(Err(ledger_used(tx, key_id, period).await?)),
    }
}

async fn ledger_used(tx: &mut impl Statements, key_id: KeyId, period: Period) -> Result<u64, StoreError> {
    let used = tx
        .fetch_i64(
            "SELECT used FROM quota_ledger WHERE key_id = $1 AND period = $2",
            &[Arg::Int(key_id.row()), Arg::Text(&period.to_string())],
        )
        .await?;
    Ok(used.unwrap_or(0).max(0) as u64)
}
