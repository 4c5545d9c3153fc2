//! Storage: API keys and usage records, behind intention-named methods.
//!
//! The default backend is SQLite in the data folder: `api_keys.db` (keys) and `usage.db`
//! (usage records, quota ledger, bucket state), both in WAL mode with `synchronous=FULL`, so
//! a committed write survives a crash of the process or the machine. Schemas are versioned
//! with `PRAGMA user_version` and migrated forward at open. With `OMNIMEMORY_DATABASE_URL`
//! set, the same tables live in one PostgreSQL database shared by several instances (schema
//! versioned in `omnimemory_schema`, migrated under an advisory lock).
//!
//! Invariants: no full API key is ever written here (keys are stored as SHA-256 hashes);
//! lookups by hash are an indexed query; timestamps are UTC text `YYYY-MM-DDTHH:MM:SS.mmmZ`,
//! so text order is time order.

mod records;
mod sql;

pub use records::{ANSWERS_KEPT_FOR, Charge, Completion, OverQuota, StoredAnswer, Unwritten, UsageRecord};
pub use sql::Store;
pub use sql::alerts::QueuedAlert;
pub use sql::export::{ExportFilter, ExportedRecord};
pub use sql::last_use::LastUse;
pub use sql::reports::{DailyUsage, RecentRecord, TagName};

/// Held by a server on a SQLite data folder for as long as it runs: the kernel's lock on
/// `serve.lock` (released when the process ends, however it ends), so that a second server on
/// the same folder, which would apply every limit a second time on its own, refuses to start.
/// The admin CLI takes no such lock: it works beside a running server.
#[derive(Debug)]
pub struct FolderLock {
    _file: std::fs::File,
}

impl FolderLock {
    pub fn acquire(home: &std::path::Path) -> Result<FolderLock, StoreError> {
        sql::create_private_dir(home)?;
        let path = home.join("serve.lock");
        let failed = |source| StoreError::CreateHome { path: path.display().to_string(), source };
        let mut open = std::fs::OpenOptions::new();
        open.create(true).truncate(false).write(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut open, 0o600);
        let file = open.open(&path).map_err(failed)?;
        match file.try_lock() {
            Ok(()) => Ok(FolderLock { _file: file }),
            Err(std::fs::TryLockError::WouldBlock) => Err(StoreError::FolderInUse { path: home.display().to_string() }),
            Err(std::fs::TryLockError::Error(source)) => Err(failed(source)),
        }
    }
}

use crate::keys::Tier;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("cannot create the data folder {path}: {source}")]
    CreateHome { path: String, source: std::io::Error },
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    /// From the SQLite usage writer's own connection.
    #[error("database error: {0}")]
    Sqlite(#[from] rusqlite::Error),
    #[error("stored data is not valid: {0}")]
    Corrupt(String),
    #[error(
        "another omnimemory server is using the data folder {path} (it holds {path}/serve.lock); \
         stop it, or point this one at another OMNIMEMORY_HOME or at a shared OMNIMEMORY_DATABASE_URL"
    )]
    FolderInUse { path: String },
    #[error("storage did not answer within {0:?}")]
    Timeout(std::time::Duration),
    /// Storage was found unable to serve (the cause was logged once where it was met): what
    /// each request of a failed batch, or each caller of a shared health probe, gets.
    #[error("{}", .0.describe())]
    Unavailable(Outage),
}

/// Why storage cannot serve right now, in words that name no file, database or driver: what
/// `/health` and a 503 tell a client.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outage {
    /// Disk full, read-only, or an I/O error: writes fail.
    CannotWrite,
    /// Another writer holds the lock, or the database is overloaded.
    Busy,
    /// The database refuses or drops connections.
    Unreachable,
    /// Storage did not answer in time.
    Slow,
    /// Anything else that made a storage call fail.
    Failed,
}

impl Outage {
    pub fn describe(self) -> &'static str {
        match self {
            Outage::CannotWrite => "storage cannot write (disk full, read-only or failing)",
            Outage::Busy => "storage is busy",
            Outage::Unreachable => "the database cannot be reached",
            Outage::Slow => "storage did not answer in time",
            Outage::Failed => "a storage operation failed",
        }
    }
}

/// What kind of failure a [`StoreError`] is, decided here so that no caller needs to know the
/// driver's errors: what a caller may do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorClass {
    /// Storage cannot serve now (full, read-only, locked, unreachable, timed out): the same call
    /// may succeed once that clears.
    Unavailable(Outage),
    /// The data's state refuses the call (another server holds the folder; a uniqueness rule).
    Conflict,
    /// What is stored is not what this binary reads (a newer schema, a value out of its domain).
    Corrupt,
    /// Anything else: a statement or decoding bug, which retrying cannot fix.
    Bug,
}

impl StoreError {
    /// The failure's class (see [`ErrorClass`]).
    pub fn class(&self) -> ErrorClass {
        match self {
            StoreError::Timeout(_) => ErrorClass::Unavailable(Outage::Slow),
            StoreError::Unavailable(outage) => ErrorClass::Unavailable(*outage),
            StoreError::CreateHome { .. } => ErrorClass::Unavailable(Outage::CannotWrite),
            StoreError::FolderInUse { .. } => ErrorClass::Conflict,
            StoreError::Corrupt(_) => ErrorClass::Corrupt,
            StoreError::Database(e) => sql::class_of(e),
            StoreError::Sqlite(e) => sql::sqlite_class_of(e),
        }
    }

    /// `Some` when the failure is storage being unable to serve (class `Unavailable`).
    pub fn outage(&self) -> Option<Outage> {
        match self.class() {
            ErrorClass::Unavailable(outage) => Some(outage),
            ErrorClass::Conflict | ErrorClass::Corrupt | ErrorClass::Bug => None,
        }
    }
}

/// Totals of a key's usage records over a period (all zeros when there are none).
#[derive(Debug, Clone, Default, PartialEq, serde::Serialize)]
pub struct UsageSummary {
    pub total_compressions: u64,
    pub total_original_tokens: u64,
    pub total_compressed_tokens: u64,
    pub total_tokens_saved: u64,
    pub avg_compression_ratio: f64,
    pub avg_quality_score: f64,
    pub by_model: Vec<ModelUsage>,
}

#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct ModelUsage {
    pub model_id: String,
    pub count: u64,
    pub tokens_saved: u64,
}

/// Whether `tag` may name a metadata tag to group usage by: 1 to 64 of `A-Z a-z 0-9 _ - .`
/// (it ends up inside a JSON path, so nothing else is let through).
pub fn is_tag_name(tag: &str) -> bool {
    (1..=64).contains(&tag.len()) && tag.bytes().all(|b| b.is_ascii_alphanumeric() || b"_-.".contains(&b))
}

/// Totals of the records carrying one value of a metadata tag (`value: None` = untagged).
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct TagUsage {
    pub value: Option<String>,
    pub count: u64,
    pub original_tokens: u64,
    pub compressed_tokens: u64,
    pub tokens_saved: u64,
}

/// What `admin database-info` shows.
#[derive(Debug, Clone, serde::Serialize)]
pub struct DatabaseInfo {
    pub backend: &'static str,
    pub location: String,
    pub files: Vec<DatabaseFile>,
    pub schema_version: i64,
    pub total_keys: u64,
    pub active_keys: u64,
    pub keys_by_tier: Vec<(Tier, u64)>,
    pub usage_records: u64,
}

#[derive(Debug, Clone, serde::Serialize)]
pub struct DatabaseFile {
    pub path: String,
    pub bytes: u64,
}

/// Formats a timestamp the way every table stores it.
pub fn format_timestamp(ts: jiff::Timestamp) -> String {
    ts.strftime("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

pub fn parse_timestamp(s: &str) -> Result<jiff::Timestamp, StoreError> {
    s.parse().map_err(|e| StoreError::Corrupt(format!("timestamp {s:?}: {e}")))
}

#[cfg(test)]
mod tests {
    use super::{ErrorClass, Outage, StoreError};

    #[tokio::test]
    async fn the_store_sorts_its_failures_into_classes() {
        use sqlx::{Connection as _, Executor as _};
        let mut db = sqlx::SqliteConnection::connect("sqlite::memory:").await.unwrap();
        db.execute("CREATE TABLE t (k TEXT UNIQUE); INSERT INTO t VALUES ('a')").await.unwrap();
        let twice = db.execute("INSERT INTO t VALUES ('a')").await.unwrap_err();
        assert_eq!(StoreError::Database(twice).class(), ErrorClass::Conflict);
        let bad_sql = db.execute("SELEKT 1").await.unwrap_err();
        assert_eq!(StoreError::Database(bad_sql).class(), ErrorClass::Bug);
        assert_eq!(StoreError::Database(sqlx::Error::PoolTimedOut).class(), ErrorClass::Unavailable(Outage::Busy));
        assert_eq!(StoreError::Corrupt("x".into()).class(), ErrorClass::Corrupt);
        assert_eq!(StoreError::FolderInUse { path: "/x".into() }.class(), ErrorClass::Conflict);
        let slow = StoreError::Timeout(std::time::Duration::from_secs(1));
        assert_eq!((slow.class(), slow.outage()), (ErrorClass::Unavailable(Outage::Slow), Some(Outage::Slow)));
    }

    #[test]
    fn tag_names_are_plain() {
        assert!(super::is_tag_name("team") && super::is_tag_name("cost.center-2_b"));
        for bad in ["", "a\"b", "a b", "$.x", "é", &"t".repeat(65)] {
            assert!(!super::is_tag_name(bad), "{bad:?}");
        }
    }
}
