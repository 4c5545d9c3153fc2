//! `omnimemory bench writer`: how many usage records per second the group-commit writer makes
//! durable, with many requests waiting on it at once (the request path's pattern).
//!
//! Runs against a fresh SQLite data folder in a temporary directory; prints the figures the
//! README quotes. HTTP load is measured by `scripts/load.sh` instead.

use std::time::Instant;

use crate::clock::{Clock as _, SystemClock};
use crate::keys::{KeyRequest, LimitOverride, Tier};
use crate::limits::{Limiter, LocalLimiter};
use crate::policy::{KeyPolicy, TierLimits};
use crate::store::{Store, UsageRecord};
use crate::usage::UsageWriter;

pub struct WriterReport {
    pub records: u64,
    pub concurrency: usize,
    pub seconds: f64,
}

impl WriterReport {
    pub fn per_second(&self) -> f64 {
        self.records as f64 / self.seconds
    }
}

pub async fn usage_writer(records: u64, concurrency: usize) -> anyhow::Result<WriterReport> {
    let dir = tempfile::tempdir()?;
    let store = Store::open(dir.path(), None).await?;
    let request = KeyRequest::parse("bench", "enterprise", None, None)?;
    let (_key, new) = KeyRequest { limits: LimitOverride::default(), ..request }.issue(SystemClock.now());
    let key = store.insert_key(&new).await?;
    let mut limits = TierLimits::default_for(Tier::Enterprise);
    (limits.monthly_tokens, limits.requests_per_second, limits.burst) = (None, 1e12, u32::MAX);
    let policy = KeyPolicy::new(Tier::Enterprise, limits);
    let local = LocalLimiter::default();
    local.load(key.id, &policy, None, 0, SystemClock.now());
    let limiter = Limiter::in_process(local.clone());
    let (writer, task) = UsageWriter::start(store.clone(), limiter);

    let started = Instant::now();
    let mut workers = Vec::new();
    let per_worker = records.div_ceil(concurrency as u64);
    for w in 0..concurrency {
        let (writer, limiter, key) = (writer.clone(), local.clone(), key.clone());
        workers.push(tokio::spawn(async move {
            for i in 0..per_worker {
                let admission = limiter
                    .admit(key.id, &policy, 2_500, SystemClock.now())
                    .map_err(|r| anyhow::anyhow!("refused: {r:?}"))?;
                let record = UsageRecord {
                    request_id: format!("{w:04}-{i:08}"),
                    api_key: key.public_id.clone(),
                    key_id: key.id,
                    user_id: key.user_id.clone(),
                    operation: "compress",
                    original_tokens: 2_500,
                    compressed_tokens: 140,
                    model_id: "gpt-4".into(),
                    compression_ratio: 0.944,
                    quality_score: Some(0.9),
                    tool_id: None,
                    session_id: None,
                    metadata: Some(r#"{"team":"bench"}"#.into()),
                    timestamp: SystemClock.now(),
                    answer: None,
                };
                writer.record(record, admission).await?;
            }
            anyhow::Ok(())
        }));
    }
    for w in workers {
        w.await??;
    }
    let seconds = started.elapsed().as_secs_f64();
    drop(writer);
    task.await?;
    store.close().await;
    Ok(WriterReport { records: per_worker * concurrency as u64, concurrency, seconds })
}
