//! Each key's last successful use (time and model), kept on the key's row. Written by the
//! service's `LastUseTracker` at most once a minute per key, never once per request.

use super::Store;
use crate::keys::KeyId;
use crate::store::{StoreError, format_timestamp};

/// Schema step (keys database, both backends).
pub const LAST_USE_COLUMNS: &str = "
ALTER TABLE api_keys ADD COLUMN last_used_at TEXT;
ALTER TABLE api_keys ADD COLUMN last_used_model TEXT;
";

/// One key's latest use, to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct LastUse {
    pub key_id: KeyId,
    pub at: jiff::Timestamp,
    pub model: Option<String>,
}

impl Store {
    /// Writes the uses in one transaction; a use older than the one stored changes nothing
    /// (instances may write out of order).
    pub async fn record_last_uses(&self, uses: &[LastUse]) -> Result<(), StoreError> {
        if uses.is_empty() {
            return Ok(());
        }
        let mut tx = self.begin_write(&self.keys).await?;
        for u in uses {
            let at = format_timestamp(u.at);
            sqlx::query(
                "UPDATE api_keys SET last_used_at = $1, last_used_model = $2
                 WHERE id = $3 AND (last_used_at IS NULL OR last_used_at < $1)",
            )
            .bind(&at)
            .bind(u.model.clone())
            .bind(u.key_id.row())
            .execute(&mut *tx.conn)
            .await?;
        }
        tx.commit().await?;
        Ok(())
    }
}
