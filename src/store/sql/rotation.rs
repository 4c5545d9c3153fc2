//! Key rotation: a key gets a new secret (a new hash in `api_keys`) and keeps its row, so its
//! user, tier, limits, quota ledger and usage history stay; the old secret's hash moves to
//! `retired_keys` with the end of its grace period. Until then it authenticates as the key;
//! after, it is known as rotated (refused with its own code, not as an unknown key).

use sqlx::{AssertSqlSafe, Row as _};

use super::{KEY_COLUMNS, Store, key_from_row};
use crate::keys::{KeyHash, KeyId, KeyRecord};
use crate::store::{StoreError, format_timestamp, parse_timestamp};

/// Schema step (keys database): the retired secrets of rotated keys.
pub const SQLITE_RETIRED_KEYS: &str = "
CREATE TABLE retired_keys (
    key_hash     BLOB PRIMARY KEY,
    key_id       INTEGER NOT NULL,
    retired_at   TEXT NOT NULL,
    valid_until  TEXT NOT NULL
);
CREATE INDEX retired_keys_key_id ON retired_keys (key_id);
";

pub const POSTGRES_RETIRED_KEYS: &str = "
CREATE TABLE retired_keys (
    key_hash     BYTEA PRIMARY KEY,
    key_id       BIGINT NOT NULL,
    retired_at   TEXT NOT NULL,
    valid_until  TEXT NOT NULL
);
CREATE INDEX retired_keys_key_id ON retired_keys (key_id);
";

impl Store {
    /// Gives key `key_id` the secret hashed as `new_hash`; its current secret keeps working
    /// until `valid_until`, and so do earlier retired ones, but none past `valid_until` (a
    /// rotation after a leak ends them all). Returns false when no key has this id.
    pub async fn rotate_key(
        &self,
        key_id: KeyId,
        new_hash: &KeyHash,
        now: jiff::Timestamp,
        valid_until: jiff::Timestamp,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write(&self.keys).await?;
        let old: Option<Vec<u8>> = sqlx::query_scalar("SELECT key_hash FROM api_keys WHERE id = $1")
            .bind(key_id.row())
            .fetch_optional(&mut *tx.conn)
            .await?;
        let Some(old) = old else { return Ok(false) };
        let until = format_timestamp(valid_until);
        sqlx::query("UPDATE retired_keys SET valid_until = $1 WHERE key_id = $2 AND valid_until > $1")
            .bind(&until)
            .bind(key_id.row())
            .execute(&mut *tx.conn)
            .await?;
        sqlx::query("INSERT INTO retired_keys (key_hash, key_id, retired_at, valid_until) VALUES ($1, $2, $3, $4)")
            .bind(old)
            .bind(key_id.row())
            .bind(format_timestamp(now))
            .bind(&until)
            .execute(&mut *tx.conn)
            .await?;
        sqlx::query("UPDATE api_keys SET key_hash = $1 WHERE id = $2")
            .bind(new_hash.0.to_vec())
            .bind(key_id.row())
            .execute(&mut *tx.conn)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// The key a retired secret still stands for at `now` (within its grace period).
    pub async fn key_in_grace(&self, hash: &KeyHash, now: jiff::Timestamp) -> Result<Option<KeyRecord>, StoreError> {
        let row = sqlx::query(AssertSqlSafe(format!(
            "SELECT {KEY_COLUMNS} FROM api_keys
             WHERE id = (SELECT key_id FROM retired_keys WHERE key_hash = $1 AND valid_until > $2)"
        )))
        .bind(hash.0.to_vec())
        .bind(format_timestamp(now))
        .fetch_optional(&self.keys)
        .await?;
        row.as_ref().map(key_from_row).transpose()
    }

    /// When a retired secret stopped (or stops) working; `None` for a hash never retired.
    pub async fn retired_until(&self, hash: &KeyHash) -> Result<Option<jiff::Timestamp>, StoreError> {
        let row = sqlx::query("SELECT valid_until FROM retired_keys WHERE key_hash = $1")
            .bind(hash.0.to_vec())
            .fetch_optional(&self.keys)
            .await?;
        row.map(|r| parse_timestamp(&r.try_get::<String, _>(0)?)).transpose()
    }
}
