//! What the usage writer hands the store to commit, and what the store answers: a usage record
//! (with the answer kept for its `Idempotency-Key`), the charge it makes to its key's monthly
//! ledger, and the records the ledger refused. Plain values; `usage` makes them, `sql` writes them.

use crate::keys::KeyId;
use crate::quota::Period;

/// One row of `usage_records` (`tokens_saved` is derived when stored).
#[derive(Debug, Clone, PartialEq)]
pub struct UsageRecord {
    pub request_id: String,
    /// The key's public id, never the secret.
    pub api_key: String,
    pub key_id: KeyId,
    pub user_id: String,
    pub operation: &'static str,
    pub original_tokens: u64,
    pub compressed_tokens: u64,
    pub model_id: String,
    pub compression_ratio: f64,
    pub quality_score: Option<f64>,
    pub tool_id: Option<String>,
    pub session_id: Option<String>,
    /// JSON object of string tags, as text.
    pub metadata: Option<String>,
    pub timestamp: jiff::Timestamp,
    /// With an `Idempotency-Key`: the answer, stored in the same transaction as the record.
    pub answer: Option<StoredAnswer>,
}

/// What a request's output adds to the record written while it ran (`UsageWriter::open`):
/// the record is found by its key, time and request id.
#[derive(Debug, Clone, PartialEq)]
pub struct Completion {
    pub key_id: KeyId,
    pub timestamp: jiff::Timestamp,
    pub request_id: String,
    pub compressed_tokens: u64,
    pub compression_ratio: f64,
    pub quality_score: Option<f64>,
}

/// How long the answer to a request sent with an `Idempotency-Key` is kept for its retries.
pub const ANSWERS_KEPT_FOR: jiff::SignedDuration = jiff::SignedDuration::from_hours(24);

/// What one record charges to its key's monthly ledger, and the most that ledger may hold.
#[derive(Debug, Clone, PartialEq)]
pub struct Charge {
    pub key_id: KeyId,
    /// The billing period the admission reserved in.
    pub period: Period,
    pub tokens: u64,
    /// `None`: unlimited.
    pub limit: Option<u64>,
}

/// A record that was not written: its charge would have taken the key's ledger past its
/// monthly limit (possible only when the limiter lost its state, e.g. a Redis flush while
/// requests were in flight). `used` is the ledger's use at that moment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OverQuota {
    pub index: usize,
    pub limit: u64,
    pub used: u64,
}

/// The records of a batch that the store did not write, by index in the batch.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Unwritten {
    pub over_quota: Vec<OverQuota>,
    /// Their `Idempotency-Key` has a live answer, written by another instance meanwhile.
    pub answered_elsewhere: Vec<usize>,
}

impl Unwritten {
    pub fn contains(&self, index: usize) -> bool {
        self.answered_elsewhere.contains(&index) || self.over_quota.iter().any(|o| o.index == index)
    }
}

/// The answer to a `/compress` request sent with an `Idempotency-Key`.
#[derive(Debug, Clone, PartialEq)]
pub struct StoredAnswer {
    pub idem_key: String,
    /// SHA-256 (hex) of the request's fields: a retry must send the same.
    pub body_sha256: String,
    pub request_id: String,
    /// The response body (JSON).
    pub answer: String,
}
