//! Read-only reports behind the dashboard: a key's usage per day, its most recent records and
//! the metadata tags it uses; every key's use this month and its last use.
//!
//! Every figure is aggregated by the database, over the `(key_id, timestamp)` index: no query
//! here brings a key's records into Rust to be summed. The one exception to "one query per
//! report" is the last use of each key, one index probe per key (`MAX(timestamp)` of a key is
//! the last entry of its index range), so it costs the number of keys listed, not of records.

use std::collections::HashMap;

use sqlx::{AssertSqlSafe, Row};

use super::{Dialect, Store, get_u64, tags_at};
use crate::keys::KeyId;
use crate::quota::Period;
use crate::store::{StoreError, format_timestamp, parse_timestamp};

/// One UTC day's totals of a key's records.
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct DailyUsage {
    /// `YYYY-MM-DD`, UTC.
    pub date: String,
    pub requests: u64,
    pub original_tokens: u64,
    pub compressed_tokens: u64,
    pub tokens_saved: u64,
}

/// One usage record as a customer sees it: no internal ids, no other key's data.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct RecentRecord {
    pub timestamp: jiff::Timestamp,
    pub request_id: String,
    pub operation: String,
    pub model_id: String,
    pub original_tokens: u64,
    pub compressed_tokens: u64,
    pub tokens_saved: u64,
    pub compression_ratio: f64,
    pub quality_score: Option<f64>,
    pub tool_id: Option<String>,
    pub session_id: Option<String>,
    /// The request's cost-allocation tags (empty when it had none).
    pub metadata: serde_json::Map<String, serde_json::Value>,
}

/// A metadata tag name used by a key's records, and by how many of the records read.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TagName {
    pub name: String,
    pub count: u64,
}

/// Most tag names a report lists (a request carries at most 32 tags).
const MAX_TAG_NAMES: i64 = 64;
/// How many of the latest tagged records the tag names are read from.
const TAG_NAME_SAMPLE: i64 = 1000;
/// Keys per last-use statement (one bound parameter each).
const KEYS_PER_STATEMENT: usize = 500;

impl Store {
    /// One key's records since `since` (inclusive), summed per UTC day; days without records
    /// are absent. Days come in order.
    pub async fn usage_by_day(&self, key_id: KeyId, since: jiff::Timestamp) -> Result<Vec<DailyUsage>, StoreError> {
        // Stored timestamps are UTC text `YYYY-MM-DDTHH:MM:SS.mmmZ`: the first ten bytes are the day.
        let rows = sqlx::query(
            "SELECT substr(timestamp, 1, 10) AS day, COUNT(*), CAST(SUM(original_tokens) AS BIGINT),
                    CAST(SUM(compressed_tokens) AS BIGINT), CAST(SUM(tokens_saved) AS BIGINT)
             FROM usage_records WHERE key_id = $1 AND timestamp >= $2
             GROUP BY 1 ORDER BY 1",
        )
        .bind(key_id.row())
        .bind(format_timestamp(since))
        .fetch_all(&self.usage)
        .await?;
        rows.iter()
            .map(|r| {
                Ok(DailyUsage {
                    date: r.try_get(0)?,
                    requests: get_u64(r, 1)?,
                    original_tokens: get_u64(r, 2)?,
                    compressed_tokens: get_u64(r, 3)?,
                    tokens_saved: get_u64(r, 4)?,
                })
            })
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// One key's `limit` most recent records, newest first.
    pub async fn recent_usage(&self, key_id: KeyId, limit: u32) -> Result<Vec<RecentRecord>, StoreError> {
        let rows = sqlx::query(
            "SELECT timestamp, request_id, operation, model_id, original_tokens, compressed_tokens, tokens_saved,
                    compression_ratio, quality_score, tool_id, session_id, metadata
             FROM usage_records WHERE key_id = $1 ORDER BY timestamp DESC, id DESC LIMIT $2",
        )
        .bind(key_id.row())
        .bind(i64::from(limit))
        .fetch_all(&self.usage)
        .await?;
        rows.iter()
            .map(|r| {
                let timestamp: String = r.try_get(0)?;
                Ok(RecentRecord {
                    timestamp: parse_timestamp(&timestamp)?,
                    request_id: r.try_get(1)?,
                    operation: r.try_get(2)?,
                    model_id: r.try_get(3)?,
                    original_tokens: get_u64(r, 4)?,
                    compressed_tokens: get_u64(r, 5)?,
                    tokens_saved: get_u64(r, 6)?,
                    compression_ratio: r.try_get(7)?,
                    quality_score: r.try_get(8)?,
                    tool_id: r.try_get(9)?,
                    session_id: r.try_get(10)?,
                    metadata: tags_at(r, 11)?,
                })
            })
            .collect()
    }

    /// The metadata tag names on one key's latest tagged records since `since` (at most
    /// [`TAG_NAME_SAMPLE`] of them), most used first. A sample, not every record: reading the
    /// tags of a busy key's whole range means parsing the JSON of every one of its records.
    pub async fn tag_names(&self, key_id: KeyId, since: jiff::Timestamp) -> Result<Vec<TagName>, StoreError> {
        let keys_of = match self.dialect {
            Dialect::Sqlite => "json_each(u.metadata) AS t",
            Dialect::Postgres => "jsonb_each_text(CAST(u.metadata AS JSONB)) AS t",
        };
        let rows = sqlx::query(AssertSqlSafe(format!(
            "SELECT t.key, COUNT(*)
             FROM (SELECT metadata FROM usage_records
                   WHERE key_id = $1 AND timestamp >= $2 AND metadata IS NOT NULL
                   ORDER BY timestamp DESC LIMIT $3) AS u, {keys_of}
             GROUP BY t.key ORDER BY 2 DESC, 1 LIMIT $4"
        )))
        .bind(key_id.row())
        .bind(format_timestamp(since))
        .bind(TAG_NAME_SAMPLE)
        .bind(MAX_TAG_NAMES)
        .fetch_all(&self.usage)
        .await?;
        rows.iter()
            .map(|r| Ok(TagName { name: r.try_get(0)?, count: get_u64(r, 1)? }))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// Tokens charged in `period` (`YYYY-MM`) to every key that has been charged any.
    pub async fn quota_used_by_key(&self, period: Period) -> Result<HashMap<KeyId, u64>, StoreError> {
        let rows = sqlx::query("SELECT key_id, used FROM quota_ledger WHERE period = $1")
            .bind(period.to_string())
            .fetch_all(&self.usage)
            .await?;
        rows.iter()
            .map(|r| Ok((KeyId::from_row(r.try_get(0)?), get_u64(r, 1)?)))
            .collect::<Result<_, sqlx::Error>>()
            .map_err(StoreError::from)
    }

    /// The time of each listed key's latest usage record (absent: none).
    pub async fn last_use_by_key(&self, key_ids: &[KeyId]) -> Result<HashMap<KeyId, jiff::Timestamp>, StoreError> {
        let mut found = HashMap::new();
        for chunk in key_ids.chunks(KEYS_PER_STATEMENT) {
            // A correlated MAX per key is one probe at the end of the key's index range.
            let values: Vec<String> = (1..=chunk.len()).map(|i| format!("(${i})")).collect();
            let sql = format!(
                "SELECT v.column1, (SELECT MAX(u.timestamp) FROM usage_records AS u WHERE u.key_id = v.column1)
                 FROM (VALUES {}) AS v",
                values.join(", ")
            );
            let mut query = sqlx::query(AssertSqlSafe(sql));
            for id in chunk {
                query = query.bind(id.row());
            }
            for row in query.fetch_all(&self.usage).await? {
                let at: Option<String> = row.try_get(1)?;
                if let Some(at) = at {
                    found.insert(KeyId::from_row(row.try_get(0)?), parse_timestamp(&at)?);
                }
            }
        }
        Ok(found)
    }
}
