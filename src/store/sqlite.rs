//! SQLite backend (see the parent module for the guarantees).

use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Duration;

use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::{AssertSqlSafe, Row};

use super::{
    DatabaseFile, DatabaseInfo, ModelUsage, NewKey, StoreError, TagUsage, UsageSummary, format_timestamp,
    parse_timestamp,
};
use crate::keys::{KeyHash, KeyRecord, LimitOverride, Tier};
use crate::limits::{Bucket, KeySnapshot};
use crate::usage::UsageRecord;

/// Schema steps of `api_keys.db`; step N brings `user_version` from N to N + 1.
const KEYS_SCHEMA: &[&str] = &["
CREATE TABLE api_keys (
    id          INTEGER PRIMARY KEY,
    key_hash    BLOB NOT NULL UNIQUE,
    public_id   TEXT NOT NULL UNIQUE,
    user_id     TEXT NOT NULL,
    tier        TEXT NOT NULL CHECK (tier IN ('free', 'pro', 'enterprise')),
    email       TEXT,
    company     TEXT,
    active      INTEGER NOT NULL DEFAULT 1,
    created_at  TEXT NOT NULL,
    expires_at  TEXT,
    -- the key's own limits; NULL means the tier's
    monthly_tokens       INTEGER,
    requests_per_second  REAL,
    burst                INTEGER
);
CREATE INDEX api_keys_user_id ON api_keys (user_id);
"];

/// Schema steps of `usage.db`.
const USAGE_SCHEMA: &[&str] = &["
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
"];

const KEY_COLUMNS: &str = "id, public_id, user_id, tier, email, company, active, created_at, expires_at, \
                           monthly_tokens, requests_per_second, burst";

#[derive(Debug, Clone)]
pub struct Store {
    home: PathBuf,
    keys: SqlitePool,
    usage: SqlitePool,
}

impl Store {
    /// Opens (creating on first use) the data folder and its databases, migrating them forward.
    pub async fn open(home: &Path) -> Result<Store, StoreError> {
        std::fs::create_dir_all(home)
            .map_err(|source| StoreError::CreateHome { path: home.display().to_string(), source })?;
        let keys = open_pool(&home.join("api_keys.db")).await?;
        migrate(&keys, KEYS_SCHEMA).await?;
        let usage = open_pool(&home.join("usage.db")).await?;
        migrate(&usage, USAGE_SCHEMA).await?;
        Ok(Store { home: home.to_path_buf(), keys, usage })
    }

    pub async fn close(&self) {
        self.keys.close().await;
        self.usage.close().await;
    }

    /// Proves both databases answer and can take a write lock, within `within`.
    pub async fn check_health(&self, within: Duration) -> Result<(), StoreError> {
        let probe = async {
            for pool in [&self.keys, &self.usage] {
                let mut conn = pool.acquire().await?;
                sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
                sqlx::query("ROLLBACK").execute(&mut *conn).await?;
            }
            Ok::<(), StoreError>(())
        };
        tokio::time::timeout(within, probe).await.map_err(|_| StoreError::Timeout(within))?
    }

    pub async fn insert_key(&self, key: &NewKey) -> Result<KeyRecord, StoreError> {
        let now = jiff::Timestamp::now();
        let row = sqlx::query(AssertSqlSafe(format!(
            "INSERT INTO api_keys (key_hash, public_id, user_id, tier, email, company, active, created_at, expires_at,
                                   monthly_tokens, requests_per_second, burst)
             VALUES (?, ?, ?, ?, ?, ?, 1, ?, ?, ?, ?, ?) RETURNING {KEY_COLUMNS}"
        )))
        .bind(&key.hash.0[..])
        .bind(&key.public_id)
        .bind(&key.user_id)
        .bind(key.tier.as_str())
        .bind(&key.email)
        .bind(&key.company)
        .bind(format_timestamp(now))
        .bind(key.expires_at.map(format_timestamp))
        .bind(key.limits.monthly_tokens.map(|m| m as i64))
        .bind(key.limits.requests_per_second)
        .bind(key.limits.burst)
        .fetch_one(&self.keys)
        .await?;
        key_from_row(&row)
    }

    pub async fn key_by_hash(&self, hash: &KeyHash) -> Result<Option<KeyRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE key_hash = ?")))
            .bind(&hash.0[..])
            .fetch_optional(&self.keys)
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    pub async fn key_by_public_id(&self, public_id: &str) -> Result<Option<KeyRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE public_id = ?")))
            .bind(public_id)
            .fetch_optional(&self.keys)
            .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// Returns false when no key has this id.
    pub async fn set_key_active(&self, key_id: i64, active: bool) -> Result<bool, StoreError> {
        let done = sqlx::query("UPDATE api_keys SET active = ? WHERE id = ?")
            .bind(active)
            .bind(key_id)
            .execute(&self.keys)
            .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Newest first.
    pub async fn list_keys(&self, tier: Option<Tier>, limit: u32) -> Result<Vec<KeyRecord>, StoreError> {
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys WHERE (?1 IS NULL OR tier = ?1) ORDER BY id DESC LIMIT ?2"
        )))
        .bind(tier.map(Tier::as_str))
        .bind(limit)
        .fetch_all(&self.keys)
        .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// Totals of one key's records since `since` (inclusive).
    pub async fn usage_summary(&self, key_id: i64, since: jiff::Timestamp) -> Result<UsageSummary, StoreError> {
        let since = format_timestamp(since);
        let totals = sqlx::query(
            "SELECT COUNT(*), COALESCE(SUM(original_tokens), 0), COALESCE(SUM(compressed_tokens), 0),
                    COALESCE(SUM(tokens_saved), 0), COALESCE(AVG(compression_ratio), 0.0),
                    COALESCE(AVG(quality_score), 0.0)
             FROM usage_records WHERE key_id = ? AND timestamp >= ?",
        )
        .bind(key_id)
        .bind(&since)
        .fetch_one(&self.usage)
        .await?;
        let by_model = sqlx::query(
            "SELECT model_id, COUNT(*), COALESCE(SUM(tokens_saved), 0) FROM usage_records
             WHERE key_id = ? AND timestamp >= ? GROUP BY model_id ORDER BY COUNT(*) DESC, model_id",
        )
        .bind(key_id)
        .bind(&since)
        .fetch_all(&self.usage)
        .await?
        .iter()
        .map(|r| {
            Ok(ModelUsage {
                model_id: r.try_get(0)?,
                count: r.try_get::<i64, _>(1)? as u64,
                tokens_saved: r.try_get::<i64, _>(2)? as u64,
            })
        })
        .collect::<Result<Vec<_>, sqlx::Error>>()?;
        Ok(UsageSummary {
            total_compressions: totals.try_get::<i64, _>(0)? as u64,
            total_original_tokens: totals.try_get::<i64, _>(1)? as u64,
            total_compressed_tokens: totals.try_get::<i64, _>(2)? as u64,
            total_tokens_saved: totals.try_get::<i64, _>(3)? as u64,
            avg_compression_ratio: totals.try_get(4)?,
            avg_quality_score: totals.try_get(5)?,
            by_model,
        })
    }

    /// Tokens charged to a key's quota in `period` (`YYYY-MM`, UTC).
    pub async fn quota_used(&self, key_id: i64, period: &str) -> Result<u64, StoreError> {
        let used: Option<i64> = sqlx::query_scalar("SELECT used FROM quota_ledger WHERE key_id = ? AND period = ?")
            .bind(key_id)
            .bind(period)
            .fetch_optional(&self.usage)
            .await?;
        Ok(used.unwrap_or(0) as u64)
    }

    /// Zeroes the current quota usage of the keys in `keys` (all keys when `None`).
    /// Returns how many ledger rows were reset. Usage records, the billing history, stay.
    /// A running server notices through `quota_resets` and reloads its in-memory ledgers.
    pub async fn reset_quota(&self, keys: Option<&[i64]>, period: &str) -> Result<u64, StoreError> {
        let at = format_timestamp(jiff::Timestamp::now());
        let mut tx = self.usage.begin().await?;
        let mut n = 0;
        match keys {
            None => {
                n += sqlx::query("UPDATE quota_ledger SET used = 0 WHERE period = ? AND used <> 0")
                    .bind(period)
                    .execute(&mut *tx)
                    .await?
                    .rows_affected();
                sqlx::query("INSERT INTO quota_resets (key_id, period, at) VALUES (NULL, ?, ?)")
                    .bind(period)
                    .bind(&at)
                    .execute(&mut *tx)
                    .await?;
            }
            Some(ids) => {
                for id in ids {
                    n += sqlx::query("UPDATE quota_ledger SET used = 0 WHERE period = ? AND key_id = ? AND used <> 0")
                        .bind(period)
                        .bind(id)
                        .execute(&mut *tx)
                        .await?
                        .rows_affected();
                    sqlx::query("INSERT INTO quota_resets (key_id, period, at) VALUES (?, ?, ?)")
                        .bind(id)
                        .bind(period)
                        .bind(&at)
                        .execute(&mut *tx)
                        .await?;
                }
            }
        }
        tx.commit().await?;
        Ok(n)
    }

    /// The id of the latest admin quota reset (0 when there was none).
    pub async fn latest_quota_reset(&self) -> Result<i64, StoreError> {
        let id: Option<i64> = sqlx::query_scalar("SELECT MAX(id) FROM quota_resets").fetch_one(&self.usage).await?;
        Ok(id.unwrap_or(0))
    }

    /// A key's saved bucket levels, if it has any.
    pub async fn bucket_snapshot(&self, key_id: i64) -> Result<Option<KeySnapshot>, StoreError> {
        let row = sqlx::query(
            "SELECT requests_level, requests_at_ms, tokens_level, tokens_at_ms FROM rate_buckets WHERE key_id = ?",
        )
        .bind(key_id)
        .fetch_optional(&self.usage)
        .await?;
        let Some(row) = row else { return Ok(None) };
        let tokens = match (row.try_get::<Option<f64>, _>(2)?, row.try_get::<Option<i64>, _>(3)?) {
            (Some(level), Some(at_ms)) => Some(Bucket { level, at_ms }),
            _ => None,
        };
        Ok(Some(KeySnapshot { key_id, requests: Bucket { level: row.try_get(0)?, at_ms: row.try_get(1)? }, tokens }))
    }

    /// Group commit: records, their quota charges and the keys' bucket levels, in one
    /// durable transaction. `charges` are (key_id, period, tokens), summed per key.
    pub async fn commit_usage(
        &self,
        records: &[UsageRecord],
        charges: &[(i64, String, u64)],
        snapshots: &[KeySnapshot],
    ) -> Result<(), StoreError> {
        let mut tx = self.usage.begin().await?;
        for r in records {
            sqlx::query(
                "INSERT INTO usage_records (request_id, api_key, key_id, user_id, operation, original_tokens,
                    compressed_tokens, tokens_saved, model_id, compression_ratio, quality_score, tool_id,
                    session_id, metadata, timestamp)
                 VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            )
            .bind(&r.request_id)
            .bind(&r.api_key)
            .bind(r.key_id)
            .bind(&r.user_id)
            .bind(r.operation)
            .bind(r.original_tokens as i64)
            .bind(r.compressed_tokens as i64)
            .bind(r.original_tokens.saturating_sub(r.compressed_tokens) as i64)
            .bind(&r.model_id)
            .bind(r.compression_ratio)
            .bind(r.quality_score)
            .bind(&r.tool_id)
            .bind(&r.session_id)
            .bind(&r.metadata)
            .bind(format_timestamp(r.timestamp))
            .execute(&mut *tx)
            .await?;
        }
        for (key_id, period, tokens) in charges {
            sqlx::query(
                "INSERT INTO quota_ledger (key_id, period, used) VALUES (?, ?, ?)
                 ON CONFLICT (key_id, period) DO UPDATE SET used = used + excluded.used",
            )
            .bind(key_id)
            .bind(period)
            .bind(*tokens as i64)
            .execute(&mut *tx)
            .await?;
        }
        for s in snapshots {
            sqlx::query(
                "INSERT INTO rate_buckets (key_id, requests_level, requests_at_ms, tokens_level, tokens_at_ms)
                 VALUES (?, ?, ?, ?, ?)
                 ON CONFLICT (key_id) DO UPDATE SET requests_level = excluded.requests_level,
                    requests_at_ms = excluded.requests_at_ms, tokens_level = excluded.tokens_level,
                    tokens_at_ms = excluded.tokens_at_ms",
            )
            .bind(s.key_id)
            .bind(s.requests.level)
            .bind(s.requests.at_ms)
            .bind(s.tokens.map(|t| t.level))
            .bind(s.tokens.map(|t| t.at_ms))
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }

    pub async fn keys_of_user(&self, user_id: &str) -> Result<Vec<KeyRecord>, StoreError> {
        let rows =
            sqlx::query(AssertSqlSafe(format!("SELECT {KEY_COLUMNS} FROM api_keys WHERE user_id = ? ORDER BY id")))
                .bind(user_id)
                .fetch_all(&self.keys)
                .await?;
        rows.iter().map(key_from_row).collect()
    }

    /// One key's totals since `since`, grouped by the value of metadata tag `tag`
    /// (a plain name; the caller validates it).
    pub async fn usage_by_tag(
        &self,
        key_id: i64,
        since: jiff::Timestamp,
        tag: &str,
    ) -> Result<Vec<TagUsage>, StoreError> {
        let path = format!("$.\"{tag}\"");
        let rows = sqlx::query(
            "SELECT json_extract(metadata, ?1) AS tag, COUNT(*), SUM(original_tokens), SUM(compressed_tokens),
                    SUM(tokens_saved)
             FROM usage_records WHERE key_id = ?2 AND timestamp >= ?3
             GROUP BY tag ORDER BY SUM(original_tokens) DESC, tag",
        )
        .bind(path)
        .bind(key_id)
        .bind(format_timestamp(since))
        .fetch_all(&self.usage)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(TagUsage {
                    value: r.try_get(0)?,
                    count: r.try_get::<i64, _>(1)? as u64,
                    original_tokens: r.try_get::<i64, _>(2)? as u64,
                    compressed_tokens: r.try_get::<i64, _>(3)? as u64,
                    tokens_saved: r.try_get::<i64, _>(4)? as u64,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    pub async fn database_info(&self) -> Result<DatabaseInfo, StoreError> {
        let counts = sqlx::query("SELECT tier, COUNT(*), COALESCE(SUM(active), 0) FROM api_keys GROUP BY tier")
            .fetch_all(&self.keys)
            .await?;
        let mut keys_by_tier = Vec::new();
        let (mut total_keys, mut active_keys) = (0, 0);
        for tier in Tier::ALL {
            let row = counts.iter().find(|r| r.try_get::<String, _>(0).is_ok_and(|t| t == tier.as_str()));
            let (n, active) = match row {
                Some(r) => (r.try_get::<i64, _>(1)? as u64, r.try_get::<i64, _>(2)? as u64),
                None => (0, 0),
            };
            keys_by_tier.push((tier, n));
            total_keys += n;
            active_keys += active;
        }
        let usage_records: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM usage_records").fetch_one(&self.usage).await?;
        let schema_version: i64 = sqlx::query_scalar("PRAGMA user_version").fetch_one(&self.usage).await?;
        let files = ["api_keys.db", "usage.db"]
            .iter()
            .map(|name| {
                let path = self.home.join(name);
                let bytes = ["", "-wal"]
                    .iter()
                    .filter_map(|suffix| std::fs::metadata(format!("{}{suffix}", path.display())).ok())
                    .map(|m| m.len())
                    .sum();
                DatabaseFile { path: path.display().to_string(), bytes }
            })
            .collect();
        Ok(DatabaseInfo {
            backend: "sqlite",
            location: self.home.display().to_string(),
            files,
            schema_version,
            total_keys,
            active_keys,
            keys_by_tier,
            usage_records: usage_records as u64,
        })
    }
}

async fn open_pool(path: &Path) -> Result<SqlitePool, StoreError> {
    let options = SqliteConnectOptions::new()
        .filename(path)
        .create_if_missing(true)
        .journal_mode(SqliteJournalMode::Wal)
        .synchronous(SqliteSynchronous::Full)
        .busy_timeout(Duration::from_secs(5))
        .foreign_keys(true);
    Ok(SqlitePoolOptions::new().max_connections(4).connect_with(options).await?)
}

/// Applies the schema steps past the database's `user_version`, each in its own transaction.
async fn migrate(pool: &SqlitePool, steps: &[&'static str]) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    sqlx::query("BEGIN IMMEDIATE").execute(&mut *conn).await?;
    let result = async {
        let version: i64 = sqlx::query_scalar("PRAGMA user_version").fetch_one(&mut *conn).await?;
        if version as usize > steps.len() {
            return Err(StoreError::Corrupt(format!(
                "schema version {version} is newer than this binary knows ({})",
                steps.len()
            )));
        }
        for step in &steps[version as usize..] {
            sqlx::raw_sql(*step).execute(&mut *conn).await?;
        }
        sqlx::raw_sql(AssertSqlSafe(format!("PRAGMA user_version = {}", steps.len()))).execute(&mut *conn).await?;
        Ok(())
    }
    .await;
    let end = if result.is_ok() { "COMMIT" } else { "ROLLBACK" };
    sqlx::query(end).execute(&mut *conn).await?;
    result
}

fn key_from_row(row: &SqliteRow) -> Result<KeyRecord, StoreError> {
    let tier: String = row.try_get("tier")?;
    let created_at: String = row.try_get("created_at")?;
    let expires_at: Option<String> = row.try_get("expires_at")?;
    Ok(KeyRecord {
        id: row.try_get("id")?,
        public_id: row.try_get("public_id")?,
        user_id: row.try_get("user_id")?,
        tier: Tier::from_str(&tier).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        email: row.try_get("email")?,
        company: row.try_get("company")?,
        active: row.try_get("active")?,
        created_at: parse_timestamp(&created_at)?,
        expires_at: expires_at.as_deref().map(parse_timestamp).transpose()?,
        limits: LimitOverride {
            monthly_tokens: row.try_get::<Option<i64>, _>("monthly_tokens")?.map(|m| m.max(0) as u64),
            requests_per_second: row.try_get("requests_per_second")?,
            burst: row.try_get::<Option<i64>, _>("burst")?.map(|b| b.clamp(1, i64::from(u32::MAX)) as u32),
        },
    })
}
