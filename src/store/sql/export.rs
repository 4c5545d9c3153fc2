//! Usage records streamed out one by one, for `admin export-usage` and `GET /usage/export`.
//!
//! The rows come from the driver as the database produces them (`fetch`, never `fetch_all`),
//! and each goes into a bounded channel before the next is read: a month of millions of
//! records takes the memory of a few rows here, and a slow reader slows the query down instead
//! of piling rows up. The reader may stop early by dropping its end.

use futures_util::TryStreamExt as _;
use sqlx::{AssertSqlSafe, Row};

use super::{Store, get_u64, tags_at};
use crate::keys::KeyId;
use crate::store::{StoreError, format_timestamp, parse_timestamp};

/// Which records: one key's, or one user's (every key of theirs), or all; within
/// `[since, until)` when given.
#[derive(Debug, Clone, Default)]
pub struct ExportFilter {
    pub key_id: Option<KeyId>,
    pub user_id: Option<String>,
    pub since: Option<jiff::Timestamp>,
    pub until: Option<jiff::Timestamp>,
}

/// One usage record with every column a bill needs (`api_key` is the key's public id).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ExportedRecord {
    /// Always with milliseconds (`2026-12-06T07:00:00.120Z`), as stored: text order is time order.
    #[serde(serialize_with = "fixed_millis")]
    pub timestamp: jiff::Timestamp,
    pub request_id: String,
    pub api_key: String,
    pub user_id: String,
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

impl Store {
    /// Sends each matching record to `to`, oldest first, until the receiver goes away; returns
    /// how many were sent.
    pub async fn export_usage(
        &self,
        filter: &ExportFilter,
        to: tokio::sync::mpsc::Sender<ExportedRecord>,
    ) -> Result<u64, StoreError> {
        let mut conditions = Vec::new();
        let mut n = 0;
        let mut param = || {
            n += 1;
            n
        };
        if filter.key_id.is_some() {
            conditions.push(format!("key_id = ${}", param()));
        }
        if filter.user_id.is_some() {
            conditions.push(format!("user_id = ${}", param()));
        }
        if filter.since.is_some() {
            conditions.push(format!("timestamp >= ${}", param()));
        }
        if filter.until.is_some() {
            conditions.push(format!("timestamp < ${}", param()));
        }
        let filter_sql =
            if conditions.is_empty() { String::new() } else { format!("WHERE {}", conditions.join(" AND ")) };
        let sql = format!(
            "SELECT timestamp, request_id, api_key, user_id, operation, model_id, original_tokens,
                    compressed_tokens, tokens_saved, compression_ratio, quality_score, tool_id, session_id, metadata
             FROM usage_records {filter_sql} ORDER BY timestamp, id"
        );
        let mut query = sqlx::query(AssertSqlSafe(sql));
        if let Some(key_id) = filter.key_id {
            query = query.bind(key_id.row());
        }
        if let Some(user_id) = &filter.user_id {
            query = query.bind(user_id.clone());
        }
        if let Some(since) = filter.since {
            query = query.bind(format_timestamp(since));
        }
        if let Some(until) = filter.until {
            query = query.bind(format_timestamp(until));
        }
        let mut rows = query.fetch(&self.usage);
        let mut handed = 0;
        while let Some(row) = rows.try_next().await? {
            let timestamp: String = row.try_get(0)?;
            let record = ExportedRecord {
                timestamp: parse_timestamp(&timestamp)?,
                request_id: row.try_get(1)?,
                api_key: row.try_get(2)?,
                user_id: row.try_get(3)?,
                operation: row.try_get(4)?,
                model_id: row.try_get(5)?,
                original_tokens: get_u64(&row, 6)?,
                compressed_tokens: get_u64(&row, 7)?,
                tokens_saved: get_u64(&row, 8)?,
                compression_ratio: row.try_get(9)?,
                quality_score: row.try_get(10)?,
                tool_id: row.try_get(11)?,
                session_id: row.try_get(12)?,
                metadata: tags_at(&row, 13)?,
            };
            if to.send(record).await.is_err() {
                break;
            }
            handed += 1;
        }
        Ok(handed)
    }
}

fn fixed_millis<S: serde::Serializer>(at: &jiff::Timestamp, to: S) -> Result<S::Ok, S::Error> {
    to.serialize_str(&format_timestamp(*at))
}
