//! The SQL backends (see the parent module for the guarantees): one implementation over
//! sqlx's `Any` driver, for SQLite and PostgreSQL. Queries use `$N` placeholders, which both
//! understand; the few statements that differ (schemas, the health probe, reading a JSON tag)
//! come from [`Dialect`]. The one exception is the SQLite usage batch, written by a thread of
//! its own over rusqlite (`sqlite_writer`), with the same statements (`batch`).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::any::{AnyPoolOptions, AnyRow};
use sqlx::sqlite::{SqliteConnectOptions, SqliteJournalMode};
use sqlx::{AnyPool, AssertSqlSafe, Connection as _, Executor as _, Row};

use super::{
    Charge, Completion, DatabaseFile, DatabaseInfo, ErrorClass, ModelUsage, Outage, StoreError, StoredAnswer, TagUsage,
    Unwritten, UsageRecord, UsageSummary, format_timestamp, parse_timestamp,
};
use crate::keys::{KeyHash, KeyId, KeyRecord, LimitOverride, NewKey, Tier};
use crate::policy::{Bucket, KeySnapshot};
use crate::quota::Period;

pub mod alerts;
mod batch;
pub mod export;
pub mod last_use;
pub mod reports;
pub mod rotation;
mod sqlite_writer;

use batch::Batch;
use sqlite_writer::SqliteWriter;
pub(super) use sqlite_writer::class_of as sqlite_class_of;

const SQLITE_KEYS_SCHEMA: &[&str] = &[
    "
CREATE TABLE api_keys (
    id                   INTEGER PRIMARY KEY,
    key_hash             BLOB NOT NULL UNIQUE,
    public_id            TEXT NOT NULL UNIQUE,
    user_id              TEXT NOT NULL,
    tier                 TEXT NOT NULL CHECK (tier IN ('free', 'pro', 'enterprise')),
    email                TEXT,
    company              TEXT,
    active               INTEGER NOT NULL DEFAULT 1,
    created_at           TEXT NOT NULL,
    expires_at           TEXT,
    -- the key's own limits; NULL means the tier's
    monthly_tokens       INTEGER,
    requests_per_second  REAL,
    burst                INTEGER
);
CREATE INDEX api_keys_user_id ON api_keys (user_id);
",
    PROBE_TABLE,
    rotation::SQLITE_RETIRED_KEYS,
    last_use::LAST_USE_COLUMNS,
];

/// One row that the health probe rewrites: proof that a durable write goes through.
const PROBE_TABLE: &str = "CREATE TABLE storage_probe (id INTEGER PRIMARY KEY, at TEXT NOT NULL)";
/// The answers of `/compress` requests sent with an `Idempotency-Key`, written in the same
/// transaction as their usage records (one schema step, the same text on both backends).
const ANSWERS_TABLE: &str = "CREATE TABLE idempotent_answers (
    key_id       BIGINT NOT NULL,
    idem_key     TEXT NOT NULL,
    body_sha256  TEXT NOT NULL,
    request_id   TEXT NOT NULL,
    answer       TEXT NOT NULL,
    created_at   TEXT NOT NULL,
    PRIMARY KEY (key_id, idem_key)
)";

const PROBE_WRITE: &str =
    "INSERT INTO storage_probe (id, at) VALUES (1, $1) ON CONFLICT (id) DO UPDATE SET at = excluded.at";

const SQLITE_USAGE_SCHEMA: &[&str] = &[
    "
CREATE TABLE usage_records (
    id                 INTEGER PRIMARY KEY,
    request_id         TEXT NOT NULL,
    api_key            TEXT NOT NULL,
    key_id             INTEGER NOT NULL,
    user_id            TEXT NOT NULL,
    operation          TEXT NOT NULL,
    original_tokens    INTEGER NOT NULL,
    compressed_tokens  INTEGER NOT NULL,
    tokens_saved       INTEGER NOT NULL,
    model_id           TEXT NOT NULL,
    compression_ratio  REAL NOT NULL,
    quality_score      REAL,
    tool_id            TEXT,
    session_id         TEXT,
    metadata           TEXT,
    timestamp          TEXT NOT NULL
);
CREATE INDEX usage_records_key_time ON usage_records (key_id, timestamp);
CREATE INDEX usage_records_time ON usage_records (timestamp);
-- used = the sum of original_tokens of the key's records in the period, updated in the same
-- transaction as the records (or zeroed by an admin reset, which appends to quota_resets).
CREATE TABLE quota_ledger (
    key_id  INTEGER NOT NULL,
    period  TEXT NOT NULL,
    used    INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, period)
);
CREATE TABLE quota_resets (
    id      INTEGER PRIMARY KEY,
    key_id  INTEGER,
    period  TEXT NOT NULL,
    at      TEXT NOT NULL
);
CREATE TABLE rate_buckets (
    key_id          INTEGER PRIMARY KEY,
    requests_level  REAL NOT NULL,
    requests_at_ms  INTEGER NOT NULL,
    tokens_level    REAL,
    tokens_at_ms    INTEGER
);
",
    PROBE_TABLE,
    ANSWERS_TABLE,
    alerts::SQLITE_ALERT_OUTBOX,
];

/// PostgreSQL keeps everything in one database; same tables and columns as SQLite.
const POSTGRES_SCHEMA: &[&str] = &[
    "
CREATE TABLE api_keys (
    id                   BIGSERIAL PRIMARY KEY,
    key_hash             BYTEA NOT NULL UNIQUE,
    public_id            TEXT NOT NULL UNIQUE,
    user_id              TEXT NOT NULL,
    tier                 TEXT NOT NULL CHECK (tier IN ('free', 'pro', 'enterprise')),
    email                TEXT,
    company              TEXT,
    active               BOOLEAN NOT NULL DEFAULT TRUE,
    created_at           TEXT NOT NULL,
    expires_at           TEXT,
    monthly_tokens       BIGINT,
    requests_per_second  DOUBLE PRECISION,
    burst                BIGINT
);
CREATE INDEX api_keys_user_id ON api_keys (user_id);
CREATE TABLE usage_records (
    id                 BIGSERIAL PRIMARY KEY,
    request_id         TEXT NOT NULL,
    api_key            TEXT NOT NULL,
    key_id             BIGINT NOT NULL,
    user_id            TEXT NOT NULL,
    operation          TEXT NOT NULL,
    original_tokens    BIGINT NOT NULL,
    compressed_tokens  BIGINT NOT NULL,
    tokens_saved       BIGINT NOT NULL,
    model_id           TEXT NOT NULL,
    compression_ratio  DOUBLE PRECISION NOT NULL,
    quality_score      DOUBLE PRECISION,
    tool_id            TEXT,
    session_id         TEXT,
    metadata           TEXT,
    timestamp          TEXT NOT NULL
);
CREATE INDEX usage_records_key_time ON usage_records (key_id, timestamp);
CREATE INDEX usage_records_time ON usage_records (timestamp);
CREATE TABLE quota_ledger (
    key_id  BIGINT NOT NULL,
    period  TEXT NOT NULL,
    used    BIGINT NOT NULL DEFAULT 0,
    PRIMARY KEY (key_id, period)
);
CREATE TABLE quota_resets (
    id      BIGSERIAL PRIMARY KEY,
    key_id  BIGINT,
    period  TEXT NOT NULL,
    at      TEXT NOT NULL
);
CREATE TABLE rate_buckets (
    key_id          BIGINT PRIMARY KEY,
    requests_level  DOUBLE PRECISION NOT NULL,
    requests_at_ms  BIGINT NOT NULL,
    tokens_level    DOUBLE PRECISION,
    tokens_at_ms    BIGINT
);
",
    PROBE_TABLE,
    ANSWERS_TABLE,
    rotation::POSTGRES_RETIRED_KEYS,
    last_use::LAST_USE_COLUMNS,
    alerts::POSTGRES_ALERT_OUTBOX,
];

const KEY_COLUMNS: &str = "id, public_id, user_id, tier, email, company, \
                           CASE WHEN active THEN 1 ELSE 0 END AS active, created_at, expires_at, \
                           monthly_tokens, requests_per_second, burst, last_used_at, last_used_model";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dialect {
    Sqlite,
    Postgres,
}

#[derive(Debug, Clone)]
pub struct Store {
    dialect: Dialect,
    /// Where the data is: the data folder (SQLite) or the server (PostgreSQL, no credentials).
    location: String,
    home: Option<PathBuf>,
    /// Where the health probe connects (it never borrows a pooled connection).
    probe_urls: Vec<String>,
    keys: AnyPool,
    /// The same pool as `keys` on PostgreSQL.
    usage: AnyPool,
    /// Quota alert thresholds (percent), when alerts are on: crossings are queued in the
    /// transaction that charges them (`alerts.rs`).
    alert_thresholds: Option<std::sync::Arc<[u32]>>,
    /// SQLite: the thread that writes usage batches on a connection of its own.
    sqlite_writer: Option<std::sync::Arc<SqliteWriter>>,
}

impl Store {
    /// SQLite in `home` (created on first use), or PostgreSQL when `database_url` is given;
    /// migrates the schema forward either way.
    pub async fn open(home: &Path, database_url: Option<&str>) -> Result<Store, StoreError> {
        sqlx::any::install_default_drivers();
        match database_url {
            Some(url) => Self::open_postgres(url).await,
            None => Self::open_sqlite(home).await,
        }
    }

    async fn open_sqlite(home: &Path) -> Result<Store, StoreError> {
        create_private_dir(home)?;
        let probe_urls = ["api_keys.db", "usage.db"].map(|f| sqlite_url(&home.join(f))).to_vec();
        let keys = open_sqlite_pool(&home.join("api_keys.db")).await?;
        migrate_sqlite(&keys, SQLITE_KEYS_SCHEMA).await?;
        let usage_path = home.join("usage.db");
        let usage = open_sqlite_pool(&usage_path).await?;
        migrate_sqlite(&usage, SQLITE_USAGE_SCHEMA).await?;
        let sqlite_writer = Some(std::sync::Arc::new(SqliteWriter::start(usage_path)?));
        let location = home.display().to_string();
        let home = Some(home.to_path_buf());
        let alert_thresholds = None;
        Ok(Store { dialect: Dialect::Sqlite, location, home, probe_urls, keys, usage, alert_thresholds, sqlite_writer })
    }

    async fn open_postgres(url: &str) -> Result<Store, StoreError> {
        let pool =
            AnyPoolOptions::new().max_connections(16).acquire_timeout(Duration::from_secs(5)).connect(url).await?;
        migrate_postgres(&pool).await?;
        let probe_urls = vec![url.to_string()];
        Ok(Store {
            dialect: Dialect::Postgres,
            location: redact_url(url),
            home: None,
            probe_urls,
            keys: pool.clone(),
            usage: pool,
            alert_thresholds: None,
            sqlite_writer: None,
        })
    }

    pub fn dialect(&self) -> Dialect {
        self.dialect
    }

    pub async fn close(&self) {
        if let Some(writer) = &self.sqlite_writer {
            writer.close().await;
        }
        self.keys.close().await;
        self.usage.close().await;
    }

    /// Proves the databases answer and take a durable write within `within` (on SQLite: takes
    /// the write lock and commits one row of `storage_probe` in each file, so a full disk or a
    /// read-only folder shows here, not only on the next request).
    ///
    /// Each probe uses a connection of its own that it closes, and waits for locks only as long
    /// as the database's own timeout allows: a probe that gives up never leaves a half-done
    /// transaction in the pool.
    pub async fn check_health(&self, within: Duration, now: jiff::Timestamp) -> Result<(), StoreError> {
        let ms = within.as_millis().max(1);
        let at = format_timestamp(now);
        let probe = async {
            for url in &self.probe_urls {
                let mut conn = sqlx::AnyConnection::connect(url).await?;
                match self.dialect {
                    Dialect::Sqlite => {
                        conn.execute(AssertSqlSafe(format!("PRAGMA busy_timeout = {ms}"))).await?;
                        conn.execute("BEGIN IMMEDIATE").await?;
                        let wrote = sqlx::query(PROBE_WRITE).bind(&at).execute(&mut conn).await;
                        if wrote.is_err() {
                            let _ = conn.execute("ROLLBACK").await;
                        }
                        wrote?;
                        conn.execute("COMMIT").await?;
                    }
                    Dialect::Postgres => {
                        conn.execute(AssertSqlSafe(format!("SET lock_timeout = {ms}"))).await?;
                        conn.execute("SELECT 1 FROM api_keys LIMIT 1").await?;
                        conn.execute("SELECT 1 FROM usage_records LIMIT 1").await?;
                        sqlx::query(PROBE_WRITE).bind(&at).execute(&mut conn).await?;
                    }
                }
                conn.close().await?;
            }
            Ok::<(), StoreError>(())
        };
        // The outer bound covers a connect that hangs; dropping it drops only the probe's own
        // connection, which closes and so rolls back whatever it had begun.
        let bound = within * (self.probe_urls.len() as u32 + 1);
        tokio::time::timeout(bound, probe).await.map_err(|_| StoreError::Timeout(bound))?
    }

    /// After a write failed for want of space (SQLite): copies what the write-ahead logs hold
    /// into the database files and truncates the logs, giving their space back to the disk. A
    /// failure changes nothing (the disk is still full); the writer tries again later.
    pub async fn give_back_log_space(&self) {
        if self.dialect != Dialect::Sqlite {
            return;
        }
        for pool in [&self.usage, &self.keys] {
            if let Ok(mut conn) = pool.acquire().await
                && let Err(e) = conn.execute("PRAGMA wal_checkpoint(TRUNCATE)").await
            {
                tracing::warn!("cannot truncate the write-ahead log: {e}");
                conn.close_on_drop();
            }
        }
    }

    /// A write transaction on its own pooled connection (see [`WriteTx`]).
    async fn begin_write(&self, pool: &AnyPool) -> Result<WriteTx, StoreError> {
        let begin = match self.dialect {
            // Takes the write lock now: a transaction that read first could not upgrade later.
            Dialect::Sqlite => "BEGIN IMMEDIATE",
            Dialect::Postgres => "BEGIN",
        };
        let mut tx = WriteTx { conn: pool.acquire().await?, committed: false };
        tx.conn.execute(begin).await?;
        Ok(tx)
    }

    pub async fn insert_key(&self, key: &NewKey) -> Result<KeyRecord, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO api_keys (key_hash, public_id, user_id, tier, email, company, active, created_at, expires_at,
                                   monthly_tokens, requests_per_second, burst)
             VALUES ($1, $2, $3, $4, $5, $6, TRUE, $7, $8, $9, $10, $11) RETURNING {KEY_COLUMNS}"
        )))
        .bind(key.hash.0.to_vec())
        .bind(&key.public_id)
        .bind(&key.user_id)
        .bind(key.tier.as_str())
        .bind(&key.email)
        .bind(&key.company)
        .bind(format_timestamp(key.created_at))
        .bind(key.expires_at.map(format_timestamp))
        .bind(key.limits.monthly_tokens.map(|m| m.min(i64::MAX as u64) as i64))
        .bind(key.limits.requests_per_second)
        .bind(key.limits.burst.map(i64::from))
        .fetch_one(&self.keys)
        .await?;
        key_from_row(&row)
    }

    pub async fn key_by_hash(&self, hash: &KeyHash) -> Result<Option<KeyRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = $1")))
            .bind(hash.0.to_vec())
            .fetch_optional(&self.keys)
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    pub async fn key_by_public_id(&self, public_id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE public_id = $1")))
            .bind(public_id)
            .fetch_optional(&self.keys)
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    pub async fn keys_of_user(&self, user_id: &str) -> Result<Vec<KeyRecord>, StoreError> {
        let rows =
            sqlx::query(AssertSqlSafe(format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = $1 ORDER BY id")))
                .bind(user_id)
                .fetch_all(&self.keys)
                .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Returns false when no key has this id.
    pub async fn set_key_active(&self, key_id: KeyId, active: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE api_keys SET active = $1 WHERE id = $2")
            .bind(active)
            .bind(key_id.row())
            .execute(&self.keys)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Newest first.
    pub async fn list_keys(&self, tier: Option<Tier>, limit: u32) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = match tier {
            Some(tier) => {
                sqlx::query(AssertSqlSafe(format!(
                    "SELECT {KEY_COLUMNS} FROM api_keys WHERE tier = $1 ORDER BY id DESC LIMIT $2"
                )))
                .bind(tier.as_str())
                .bind(i64::from(limit))
                .fetch_all(&self.keys)
                .await?
            }
            None => {
                sqlx::query(AssertSqlSafe(format!("SELECT {KEY_COLUMNS} FROM api_keys ORDER BY id DESC LIMIT $1")))
                    .bind(i64::from(limit))
                    .fetch_all(&self.keys)
                    .await?
            }
        };
        rows.iter().map(key_from_row).collect()
    }

    /// Totals of one key's records since `since` (inclusive).
    pub async fn usage_summary(&self, key_id: KeyId, since: jiff::Timestamp) -> Result<UsageSummary, StoreError> {
        let since = format_timestamp(since);
        let totals = sqlx::query(
            "SELECT COUNT(*), CAST(COALESCE(SUM(original_tokens), 0) AS BIGINT),
                    CAST(COALESCE(SUM(compressed_tokens), 0) AS BIGINT), CAST(COALESCE(SUM(tokens_saved), 0) AS BIGINT),
                    COALESCE(AVG(compression_ratio), 0.0), COALESCE(AVG(quality_score), 0.0)
             FROM usage_records WHERE key_id = $1 AND timestamp >= $2",
        )
        .bind(key_id.row())
        .bind(&since)
        .fetch_one(&self.usage)
        .await?;
        let by_model = sqlx::query(
            "SELECT model_id, COUNT(*), CAST(COALESCE(SUM(tokens_saved), 0) AS BIGINT) FROM usage_records
             WHERE key_id = $1 AND timestamp >= $2 GROUP BY model_id ORDER BY COUNT(*) DESC, model_id",
        )
        .bind(key_id.row())
        .bind(&since)
        .fetch_all(&self.usage)
        .await?
        .iter()
        .map(|r| Ok(ModelUsage { model_id: r.try_get(0)?, count: get_u64(r, 1)?, tokens_saved: get_u64(r, 2)? }))
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(UsageSummary {
            total_compressions: get_u64(&totals, 0)?,
            total_original_tokens: get_u64(&totals, 1)?,
            total_compressed_tokens: get_u64(&totals, 2)?,
            total_tokens_saved: get_u64(&totals, 3)?,
            avg_compression_ratio: totals.try_get(4)?,
            avg_quality_score: totals.try_get(5)?,
            by_model,
        })
    }

    /// One key's totals since `since`, grouped by the value of metadata tag `tag`
    /// (a plain name the caller checked with [`super::is_tag_name`]).
    pub async fn usage_by_tag(
        &self,
        key_id: KeyId,
        since: jiff::Timestamp,
        tag: &str,
    ) -> Result<Vec<TagUsage>, StoreError> {
        let (tag_expr, tag_arg) = match self.dialect {
            Dialect::Sqlite => ("json_extract(metadata, $1)", format!("$.\"{tag}\"")),
            Dialect::Postgres => ("(CAST(metadata AS JSONB) ->> CAST($1 AS TEXT))", tag.to_string()),
        };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {tag_expr} AS tag, COUNT(*), CAST(SUM(original_tokens) AS BIGINT),
                    CAST(SUM(compressed_tokens) AS BIGINT), CAST(SUM(tokens_saved) AS BIGINT)
             FROM usage_records WHERE key_id = $2 AND timestamp >= $3
             GROUP BY 1 ORDER BY 3 DESC, 1"
        )))
        .bind(tag_arg)
        .bind(key_id.row())
        .bind(format_timestamp(since))
        .fetch_all(&self.usage)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TagUsage {
                    value: r.try_get(0)?,
                    count: get_u64(r, 1)?,
                    original_tokens: get_u64(r, 2)?,
                    compressed_tokens: get_u64(r, 3)?,
                    tokens_saved: get_u64(r, 4)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Tokens charged to a key's quota in `period` (`YYYY-MM`, UTC).
    pub async fn quota_used(&self, key_id: KeyId, period: Period) -> Result<u64, StoreError> {
        let used: Option<i64> = sqlx::query_scalar("SELECT used FROM quota_ledger WHERE key_id = $1 AND period = $2")
            .bind(key_id.row())
            .bind(period.to_string())
            .fetch_optional(&self.usage)
            .await?;
        Ok(used.unwrap_or(0).max(0) as u64)
    }

    /// Zeroes the current quota usage of the keys in `keys` (all keys when `None`) and appends
    /// to `quota_resets`, through which running servers notice and reload their ledgers.
    /// Returns how many ledger rows were reset. Usage records, the billing history, stay.
    /// `period` is the month of `now`, when the reset is made.
    pub async fn reset_quota(&self, keys: Option<&[KeyId]>, now: jiff::Timestamp) -> Result<u64, StoreError> {
        let period = Period::of(now).to_string();
        let at = format_timestamp(now);
        let mut tx = self.begin_write(&self.usage).await?;
        let mut n = 0;
        let targets: Vec<Option<i64>> = match keys {
            None => vec![None],
            Some(ids) => ids.iter().map(|id| Some(id.row())).collect(),
        };
        for key_id in targets {
            n += sqlx::query(
                "UPDATE quota_ledger SET used = 0 WHERE period = $1 AND ($2 IS NULL OR key_id = $2) AND used <> 0",
            )
            .bind(period.to_string())
            .bind(key_id)
            .execute(&mut *tx.conn)
            .await?
            .rows_affected();
            sqlx::query("INSERT INTO quota_resets (key_id, period, at) VALUES ($1, $2, $3)")
                .bind(key_id)
                .bind(period.to_string())
                .bind(&at)
                .execute(&mut *tx.conn)
                .await?;
        }
        tx.commit().await?;
        Ok(n)
    }

    /// The answer stored for a key's `Idempotency-Key`, if one was stored at or after `since`.
    pub async fn idempotent_answer(
        &self,
        key_id: KeyId,
        idem_key: &str,
        since: jiff::Timestamp,
    ) -> Result<Option<StoredAnswer>, StoreError> {
        let row = sqlx::query(
            "SELECT body_sha256, request_id, answer FROM idempotent_answers
             WHERE key_id = $1 AND idem_key = $2 AND created_at >= $3",
        )
        .bind(key_id.row())
        .bind(idem_key)
        .bind(format_timestamp(since))
        .fetch_optional(&self.usage)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(StoredAnswer {
            idem_key: idem_key.to_string(),
            body_sha256: row.try_get(0)?,
            request_id: row.try_get(1)?,
            answer: row.try_get(2)?,
        }))
    }

    /// Forgets the idempotent answers stored before `before`.
    pub async fn forget_answers_before(&self, before: jiff::Timestamp) -> Result<u64, StoreError> {
        let done = sqlx::query("DELETE FROM idempotent_answers WHERE created_at < $1")
            .bind(format_timestamp(before))
            .execute(&self.usage)
            .await?;
        Ok(done.rows_affected())
    }

    /// The id of the latest admin quota reset (0 when there was none).
    pub async fn latest_quota_reset(&self) -> Result<i64, StoreError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM quota_resets").fetch_one(&self.usage).await?;
        Ok(id.unwrap_or(0))
    }

    /// A key's saved bucket levels, if it has any.
    pub async fn bucket_snapshot(&self, key_id: KeyId) -> Result<Option<KeySnapshot>, StoreError> {
        let row = sqlx::query(
            "SELECT requests_level, requests_at_ms, tokens_level, tokens_at_ms FROM rate_buckets WHERE key_id = $1",
        )
        .bind(key_id.row())
        .fetch_optional(&self.usage)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let tokens = match (row.try_get::<Option<f64>, _>(2)?, row.try_get::<Option<i64>, _>(3)?) {
            (Some(level), Some(at_ms)) => Some(Bucket { level, at_ms }),
            _ => None,
        };
        Ok(Some(KeySnapshot { key_id, requests: Bucket { level: row.try_get(0)?, at_ms: row.try_get(1)? }, tokens }))
    }

    /// Group commit: records, their quota charges, the answers of requests sent with an
    /// `Idempotency-Key`, and the keys' bucket levels, in one durable transaction. Each record
    /// comes with its charge. Two kinds of record are not written (nor their charge, nor their
    /// answer), and are returned:
    /// - a record whose `Idempotency-Key` already has a live answer, written meanwhile by
    ///   another instance that ran the same request at the same time (the answer row is
    ///   written first, so the second transaction waits for the first and then sees it);
    /// - a record whose charge would take its key's ledger past the monthly limit: the ledger
    ///   of record holds the quota by itself, even when the limiter lost its state (a Redis
    ///   flush with requests in flight).
    ///
    /// `completions` give records of earlier batches their outputs (`UsageWriter::open`); a
    /// batch of completions without records commits without waiting for the disk's flush
    /// (`Batch::needs_flush`).
    pub async fn commit_usage(
        &self,
        records: Vec<(UsageRecord, Charge)>,
        completions: Vec<Completion>,
        snapshots: Vec<KeySnapshot>,
    ) -> Result<Unwritten, StoreError> {
        let batch = Batch { records, completions, snapshots, alert_thresholds: self.alert_thresholds.clone() };
        if let Some(writer) = &self.sqlite_writer {
            return writer.commit(batch).await;
        }
        let mut tx = self.begin_write(&self.usage).await?;
        if !batch.needs_flush() {
            // PostgreSQL's commit then returns before its WAL record is flushed.
            tx.conn.execute("SET LOCAL synchronous_commit = off").await?;
        }
        let unwritten = batch.write(&mut tx, self.dialect).await?;
        tx.commit().await?;
        Ok(unwritten)
    }

    pub async fn database_info(&self) -> Result<DatabaseInfo, StoreError> {
        let counts = sqlx::query(
            "SELECT tier, COUNT(*), CAST(COALESCE(SUM(CASE WHEN active THEN 1 ELSE 0 END), 0) AS BIGINT)
             FROM api_keys GROUP BY tier",
        )
        .fetch_all(&self.keys)
        .await?;
        let mut keys_by_tier = Vec::new();
        let (mut total_keys, mut active_keys) = (0, 0);
        for tier in Tier::ALL {
            let row = counts.iter().find(|r| r.try_get::<String, _>(0).is_ok_and(|t| t == tier.as_str()));
            let (n, active) = match row {
                Some(r) => (get_u64(r, 1)?, get_u64(r, 2)?),
                None => (0, 0),
            };
            keys_by_tier.push((tier, n));
            total_keys += n;
            active_keys += active;
        }
        let usage_records: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM usage_records").fetch_one(&self.usage).await?;
        let schema_version: i64 = match self.dialect {
            Dialect::Sqlite => sqlx::query_scalar("PRAGMA user_version").fetch_one(&self.usage).await?,
            Dialect::Postgres => {
                sqlx::query_scalar("SELECT CAST(MAX(version) AS BIGINT) FROM omnimemory_schema")
                    .fetch_one(&self.usage)
                    .await?
            }
        };
        let files = match &self.home {
            Some(home) => ["api_keys.db", "usage.db"]
                .iter()
                .map(|name| {
                    let path = home.join(name);
                    let bytes = ["", "-wal"]
                        .iter()
                        .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", path.display())).ok())
                        .map(|m| m.len())
                        .sum();
                    DatabaseFile { path: path.display().to_string(), bytes }
                })
                .collect(),
            None => Vec::new(),
        };
        Ok(DatabaseInfo {
            backend: match self.dialect {
                Dialect::Sqlite => "sqlite",
                Dialect::Postgres => "postgres",
            },
            location: self.location.clone(),
            files,
            schema_version,
            total_keys,
            active_keys,
            keys_by_tier,
            usage_records: usage_records.max(0) as u64,
        })
    }
}

/// A write transaction begun and ended with plain statements on a connection of its own.
///
/// Why not sqlx's `Transaction`: after a disk-full or I/O error SQLite may roll the
/// transaction back by itself, and sqlx's count of open transactions on the connection then
/// no longer matches SQLite's. The next `begin` on that connection becomes a `SAVEPOINT` inside
/// a transaction that never ends: its "commit" only releases the savepoint, the answer is 200
/// for records that are not durable, and the connection holds the write lock ("database is
/// locked") until the process dies. Here any failure, and any drop before `commit`, closes the
/// connection instead of returning it to the pool: closing rolls back whatever was open, and
/// the pool opens a fresh connection for the next write.
struct WriteTx {
    conn: sqlx::pool::PoolConnection<sqlx::Any>,
    committed: bool,
}

impl WriteTx {
    async fn commit(mut self) -> Result<(), StoreError> {
        self.conn.execute("COMMIT").await?;
        self.committed = true;
        Ok(())
    }
}

impl Drop for WriteTx {
    fn drop(&mut self) {
        if !self.committed {
            self.conn.close_on_drop();
        }
    }
}

/// The class of a driver error: an outage (storage cannot serve now), a uniqueness conflict,
/// corrupt data (the file or a value), or else a bug.
pub(super) fn class_of(e: &sqlx::Error) -> ErrorClass {
    let outage = match e {
        sqlx::Error::Io(_) | sqlx::Error::Tls(_) | sqlx::Error::Protocol(_) | sqlx::Error::PoolClosed => {
            Some(Outage::Unreachable)
        }
        sqlx::Error::PoolTimedOut => Some(Outage::Busy),
        sqlx::Error::WorkerCrashed | sqlx::Error::BeginFailed => Some(Outage::Failed),
        sqlx::Error::Database(db) => {
            if db.is_unique_violation() {
                return ErrorClass::Conflict;
            }
            let code = db.code();
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                return code.and_then(|c| c.parse::<i32>().ok()).and_then(sqlite_code_class).unwrap_or(ErrorClass::Bug);
            }
            // PostgreSQL's data_corrupted, index_corrupted.
            if code.as_deref().is_some_and(|c| matches!(c, "XX001" | "XX002")) {
                return ErrorClass::Corrupt;
            }
            code.and_then(|c| postgres_outage(&c))
        }
        sqlx::Error::ColumnDecode { .. } | sqlx::Error::Decode(_) => return ErrorClass::Corrupt,
        _ => None,
    };
    outage.map_or(ErrorClass::Bug, ErrorClass::Unavailable)
}

/// The class a SQLite result code (primary or extended) gives, when it is not a statement's
/// own error: corrupt data (SQLITE_CORRUPT, SQLITE_NOTADB) or storage that cannot serve. Read
/// the same from sqlx's errors and from the usage writer's own connection (`sqlite_writer`).
fn sqlite_code_class(code: i32) -> Option<ErrorClass> {
    match code & 0xff {
        11 | 26 => Some(ErrorClass::Corrupt),
        primary => sqlite_outage(primary).map(ErrorClass::Unavailable),
    }
}

/// SQLite primary result codes that describe the storage, not the statement.
fn sqlite_outage(primary: i32) -> Option<Outage> {
    match primary {
        5 | 6 => Some(Outage::Busy),                  // BUSY, LOCKED
        7 | 8 | 10 | 13 => Some(Outage::CannotWrite), // NOMEM, READONLY, IOERR, FULL
        14 | 15 => Some(Outage::Unreachable),         // CANTOPEN, PROTOCOL
        _ => None,
    }
}

/// PostgreSQL SQLSTATEs that describe the server or its resources, not the statement.
fn postgres_outage(code: &str) -> Option<Outage> {
    match code {
        "53100" | "25006" => Some(Outage::CannotWrite), // disk full, read-only transaction
        "57014" => Some(Outage::Slow),                  // statement or lock timeout
        "40001" | "40P01" | "55P03" | "55006" => Some(Outage::Busy),
        c if c.starts_with("58") => Some(Outage::CannotWrite), // system / I/O error
        c if c.starts_with("53") => Some(Outage::Busy),        // out of memory, too many connections
        c if ["08", "57", "28", "3D"].iter().any(|class| c.starts_with(class)) => Some(Outage::Unreachable),
        _ => None,
    }
}

/// Creates the data folder readable by its owner only (0700); an existing folder is left as is.
pub(super) fn create_private_dir(home: &Path) -> Result<(), StoreError> {
    let created = |source| StoreError::CreateHome { path: home.display().to_string(), source };
    if home.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    builder.recursive(true);
    #[cfg(unix)]
    std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
    builder.create(home).map_err(created)
}

/// Creates `path` as an empty file (a valid empty SQLite database) readable by its owner only,
/// and takes group and other access away from an existing one and its `-wal` / `-shm` files.
/// SQLite gives the files it creates later the database file's permissions.
fn make_private_file(path: &Path) -> Result<(), StoreError> {
    let failed = |source| StoreError::CreateHome { path: path.display().to_string(), source };
    let mut open = std::fs::OpenOptions::new();
    open.create(true).append(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
    open.open(path).map_err(failed)?;
    #[cfg(unix)]
    for suffix in ["", "-wal", "-shm"] {
        use std::os::unix::fs::PermissionsExt as _;
        let file = PathBuf::from(format!("{}{suffix}", path.display()));
        if let Ok(meta) = std::fs::metadata(&file)
            && meta.permissions().mode() & 0o077 != 0
        {
            let mode = meta.permissions().mode() & 0o700;
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(mode)).map_err(failed)?;
        }
    }
    Ok(())
}

const RECORD_COLUMNS: usize = 15;

/// Most records per multi-row insert (a power of two; 64 × 15 parameters is far below both
/// backends' limits).
const RECORDS_PER_INSERT: usize = 64;

/// The multi-row insert of `rows` records. SQLite gets anonymous `?` placeholders: it finds a
/// numbered parameter's name by walking a list, so binding n `$N` parameters cost n² (at 64
/// rows, 960 parameters: `bench writer` 30k records/s with `$N`, 83k with `?`).
fn insert_records_sql(rows: usize, dialect: Dialect) -> String {
    let mut sql = String::from(
        "INSERT INTO usage_records (request_id, api_key, key_id, user_id, operation, original_tokens, \
         compressed_tokens, tokens_saved, model_id, compression_ratio, quality_score, tool_id, session_id, \
         metadata, timestamp) VALUES ",
    );
    for row in 0..rows {
        sql.push_str(if row == 0 { "(" } else { ", (" });
        for col in 0..RECORD_COLUMNS {
            if col > 0 {
                sql.push_str(", ");
            }
            match dialect {
                Dialect::Sqlite => sql.push('?'),
                Dialect::Postgres => sql.push_str(&format!("${}", row * RECORD_COLUMNS + col + 1)),
            }
        }
        sql.push(')');
    }
    sql
}

fn get_u64(row: &AnyRow, index: usize) -> Result<u64, sqlx::Error> {
    Ok(row.try_get::<i64, _>(index)?.max(0) as u64)
}

/// A record's cost-allocation tags from its `metadata` column at `index` (empty when it had
/// none); anything but a JSON object there is a corrupt record.
fn tags_at(row: &AnyRow, index: usize) -> Result<serde_json::Map<String, serde_json::Value>, StoreError> {
    let metadata: Option<String> = row.try_get(index)?;
    match metadata.as_deref().map(serde_json::from_str::<serde_json::Value>) {
        None => Ok(serde_json::Map::new()),
        Some(Ok(serde_json::Value::Object(tags))) => Ok(tags),
        _ => Err(StoreError::Corrupt(format!("metadata of a record is not an object: {metadata:?}"))),
    }
}

/// `postgres://user:secret@host/db` → `postgres://user@host/db`: the password never leaves.
fn redact_url(url: &str) -> String {
    match url.split_once("://").and_then(|(scheme, rest)| rest.split_once('@').map(|(cred, host)| (scheme, cred, host)))
    {
        Some((scheme, cred, host)) => {
            let user = cred.split(':').next().unwrap_or("");
            format!("{scheme}://{user}@{host}")
        }
        None => url.to_string(),
    }
}

fn sqlite_url(path: &Path) -> String {
    format!("sqlite://{}", path.display())
}

/// What every connection to a SQLite file sets: durable commits, a wait for the write lock,
/// foreign keys (the pool's connections and the usage writer's own).
const SQLITE_CONNECTION_PRAGMAS: &str =
    "PRAGMA synchronous = FULL; PRAGMA busy_timeout = 5000; PRAGMA foreign_keys = ON";

/// A pool on one SQLite file: created if missing (owner-only), WAL (a persistent property of
/// the file, set once here), `synchronous=FULL` and a busy timeout on every connection.
async fn open_sqlite_pool(path: &Path) -> Result<AnyPool, StoreError> {
    make_private_file(path)?;
    let setup = SqliteConnectOptions::new().filename(path).create_if_missing(true).journal_mode(SqliteJournalMode::Wal);
    sqlx::SqliteConnection::connect_with(&setup).await?.close().await?;
    let url = sqlite_url(path);
    let pool = AnyPoolOptions::new()
        .max_connections(4)
        .after_connect(|conn, _| {
            Box::pin(async move {
                conn.execute(SQLITE_CONNECTION_PRAGMAS).await?;
                Ok(())
            })
        })
        .connect(&url)
        .await?;
    Ok(pool)
}

/// Applies the schema steps past the file's `user_version` in one write transaction.
async fn migrate_sqlite(pool: &AnyPool, steps: &[&'static str]) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    conn.execute("BEGIN IMMEDIATE").await?;
    let result = async {
        let version: i64 = sqlx::query_scalar("PRAGMA user_version").fetch_one(&mut *conn).await?;
        check_version(version, steps.len())?;
        for step in &steps[version as usize..] {
            conn.execute(*step).await?;
        }
        conn.execute(AssertSqlSafe(format!("PRAGMA user_version = {}", steps.len()))).await?;
        Ok(())
    }
    .await;
    conn.execute(if result.is_ok() { "COMMIT" } else { "ROLLBACK" }).await?;
    result
}

/// Applies the schema steps past `omnimemory_schema`'s version under an advisory lock, so
/// instances starting together migrate once.
async fn migrate_postgres(pool: &AnyPool) -> Result<(), StoreError> {
    let mut tx = pool.begin().await?;
    tx.execute("SELECT pg_advisory_xact_lock(7207305917)").await?;
    tx.execute("CREATE TABLE IF NOT EXISTS omnimemory_schema (version BIGINT NOT NULL)").await?;
    let version: Option<i64> =
        sqlx::query_scalar("SELECT CAST(MAX(version) AS BIGINT) FROM omnimemory_schema").fetch_one(&mut *tx).await?;
    let version = version.unwrap_or(0);
    check_version(version, POSTGRES_SCHEMA.len())?;
    for step in &POSTGRES_SCHEMA[version as usize..] {
        tx.execute(*step).await?;
    }
    sqlx::query("DELETE FROM omnimemory_schema").execute(&mut *tx).await?;
    sqlx::query("INSERT INTO omnimemory_schema (version) VALUES ($1)")
        .bind(POSTGRES_SCHEMA.len() as i64)
        .execute(&mut *tx)
        .await?;
    tx.commit().await?;
    Ok(())
}

fn check_version(version: i64, known: usize) -> Result<(), StoreError> {
    if version < 0 || version as usize > known {
        return Err(StoreError::Corrupt(format!("schema version {version} is newer than this binary knows ({known})")));
    }
    Ok(())
}

fn key_from_row(row: &AnyRow) -> Result<KeyRecord, StoreError> {
    let tier: String = row.try_get("tier")?;
    let created_at: String = row.try_get("created_at")?;
    let expires_at: Option<String> = row.try_get("expires_at")?;
    Ok(KeyRecord {
        id: KeyId::from_row(row.try_get("id")?),
        public_id: row.try_get("public_id")?,
        user_id: row.try_get("user_id")?,
        tier: Tier::from_str(&tier).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        email: row.try_get("email")?,
        company: row.try_get("company")?,
        active: row.try_get::<i64, _>("active")? != 0,
        created_at: parse_timestamp(&created_at)?,
        expires_at: expires_at.as_deref().map(parse_timestamp).transpose()?,
        last_used_at: row.try_get::<Option<String>, _>("last_used_at")?.as_deref().map(parse_timestamp).transpose()?,
        last_used_model: row.try_get("last_used_model")?,
        limits: LimitOverride {
            monthly_tokens: row.try_get::<Option<i64>, _>("monthly_tokens")?.map(|m| m.max(0) as u64),
            requests_per_second: row.try_get("requests_per_second")?,
            burst: row.try_get::<Option<i64>, _>("burst")?.map(|b| b.clamp(1, i64::from(u32::MAX)) as u32),
        },
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn database_urls_lose_their_password() {
        assert_eq!(super::redact_url("postgres://u:pw@h:5432/db"), "postgres://u@h:5432/db");
        assert_eq!(super::redact_url("postgres://h/db"), "postgres://h/db");
    }
}
