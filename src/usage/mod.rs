//! Usage records and the `UsageWriter`, a group-commit writer: handlers hand it a record with
//! the request's `Admission` and wait; it commits records in batches (one durable transaction
//! per batch, with the quota charges and bucket levels), then settles the admissions and
//! answers. A response is therefore sent only after its record is durable; a failed commit
//! refunds the admissions and the handler answers 503. A request whose engine work takes longer
//! than a commit queues its record before that work (`open`, charged its input's tokens, nothing
//! saved yet), so the flush overlaps it, and its output after (`complete`): a batch of
//! completions alone commits without waiting for the disk's flush. The store checks each charge against
//! the key's monthly limit as it commits: a record that would pass it is not written, and its
//! request is answered 402 (this happens only when the limiter lost its state, see
//! `limits::redis`).
//!
//! A failed commit leaves nothing behind: the store discards the connection it failed on, and
//! the next batch starts on a fresh one, so the writer recovers by itself once storage can
//! write again. It remembers its latest failure for `/health`.
//!
//! That is its one job. On shutdown it drains what it holds; the limiter then saves every key's
//! bucket levels (`Limiter::save_levels`). Admin quota resets are watched by a task of the
//! limiter's (`limits::watch_quota_resets`), expired idempotent answers forgotten by
//! [`start_answer_purge`].

pub mod export;
pub mod last_use;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use tokio::sync::{mpsc, oneshot};

use crate::clock::Clock;
use crate::keys::KeyId;
use crate::limits::{Admission, Limiter};
use crate::quota::Period;
use crate::store::{ANSWERS_KEPT_FOR, Charge, Completion, Outage, OverQuota, Store, StoreError, UsageRecord};

/// The most jobs one transaction takes.
const MAX_BATCH: usize = 1024;
/// How often, at most, a writer facing a full disk truncates the write-ahead log.
const RELIEF_INTERVAL: Duration = Duration::from_secs(1);

/// How often expired answers are forgotten.
const ANSWERS_PURGE: Duration = Duration::from_secs(600);
/// Delivered alerts of the month this long ago and of later months are kept: always last
/// month's and this month's.
const ALERTS_KEPT_FOR: jiff::SignedDuration = jiff::SignedDuration::from_hours(32 * 24);

enum Job {
    Record {
        record: Box<UsageRecord>,
        admission: Admission,
        done: oneshot::Sender<Result<(), WriteError>>,
    },
    /// The output of a request whose record an earlier batch wrote (`UsageWriter::open`).
    Complete {
        completion: Completion,
        done: oneshot::Sender<Result<(), WriteError>>,
    },
    /// Save this key's bucket levels with the next batch (requests that leave no record).
    Touch {
        key_id: KeyId,
        admission: Admission,
    },
}

#[derive(Debug, thiserror::Error)]
pub enum WriteError {
    #[error("usage writer stopped")]
    Stopped,
    /// The ledger of record refused the charge: the key's month is spent. Nothing was written.
    #[error("monthly quota spent ({used} of {limit} tokens used)")]
    OverQuota { limit: u64, used: u64 },
    /// Another instance answered the same `Idempotency-Key` first; its answer is stored.
    /// Nothing was written for this one.
    #[error("answered by another instance")]
    AnsweredElsewhere,
    #[error(transparent)]
    Store(#[from] StoreError),
}

#[derive(Clone)]
pub struct UsageWriter {
    jobs: mpsc::Sender<Job>,
    last_failure: LastFailure,
}

/// The commit of a record or completion queued by [`UsageWriter::open`] or
/// [`UsageWriter::complete`].
pub struct Committed(oneshot::Receiver<Result<(), WriteError>>);

impl Committed {
    /// Waits until the record is durable (its admission then settled).
    pub async fn wait(self) -> Result<(), WriteError> {
        self.0.await.map_err(|_| WriteError::Stopped)?
    }
}

/// The latest batch that failed, cleared by the next one that commits.
type LastFailure = Arc<Mutex<Option<(Instant, Outage)>>>;

impl UsageWriter {
    /// Starts the writer task; it ends once every `UsageWriter` clone is dropped and the
    /// queue is drained.
    pub fn start(store: Store, limiter: Limiter) -> (UsageWriter, tokio::task::JoinHandle<()>) {
        let (tx, rx) = mpsc::channel(8 * MAX_BATCH);
        let last_failure = LastFailure::default();
        let task = tokio::spawn(run(store, limiter, rx, last_failure.clone()));
        (UsageWriter { jobs: tx, last_failure }, task)
    }

    /// Why the latest batch failed, if it did within `window` and none has committed since.
    pub fn recent_failure(&self, window: Duration) -> Option<Outage> {
        let last = *self.last_failure.lock().unwrap_or_else(|e| e.into_inner());
        last.filter(|(at, _)| at.elapsed() < window).map(|(_, outage)| outage)
    }

    /// Queues the record and waits until it is durable (its admission then settled).
    pub async fn record(&self, record: UsageRecord, admission: Admission) -> Result<(), WriteError> {
        self.open(record, admission).await?.wait().await
    }

    /// Queues the record of a request that is still running and returns at once: its commit,
    /// with the disk's flush, overlaps the rest of the request, whose output then follows with
    /// [`UsageWriter::complete`]. The record's charge is the admission's, known before the
    /// output; until completed, the record reads as an unchanged text (nothing saved).
    pub async fn open(&self, record: UsageRecord, admission: Admission) -> Result<Committed, WriteError> {
        let (done, wait) = oneshot::channel();
        self.jobs
            .send(Job::Record { record: Box::new(record), admission, done })
            .await
            .map_err(|_| WriteError::Stopped)?;
        Ok(Committed(wait))
    }

    /// Queues the output of a request whose record was queued by [`UsageWriter::open`]; it
    /// is committed with that record or after it, without the disk's flush (the record and its
    /// charge are flushed when written).
    pub async fn complete(&self, completion: Completion) -> Result<Committed, WriteError> {
        let (done, wait) = oneshot::channel();
        self.jobs.send(Job::Complete { completion, done }).await.map_err(|_| WriteError::Stopped)?;
        Ok(Committed(wait))
    }

    /// Settles an admission that leaves no record (it charged no tokens) and saves the
    /// key's bucket levels with the next batch, without waiting.
    pub fn touch(&self, admission: Admission) {
        let key_id = admission.key_id;
        if let Err(mpsc::error::TrySendError::Full(Job::Touch { admission, .. })) =
            self.jobs.try_send(Job::Touch { key_id, admission })
        {
            // The queue is full: the request still happened, so it keeps what it took.
            admission.settle();
        }
    }
}

async fn run(store: Store, limiter: Limiter, mut rx: mpsc::Receiver<Job>, last_failure: LastFailure) {
    let mut batch = Vec::with_capacity(MAX_BATCH);
    let mut log_space_asked: Option<Instant> = None;
    while let Some(first) = rx.recv().await {
        batch.push(first);
        while batch.len() < MAX_BATCH {
            match rx.try_recv() {
                Ok(job) => batch.push(job),
                Err(_) => break,
            }
        }
        let outcome = commit(&store, &limiter, &mut batch).await;
        *last_failure.lock().unwrap_or_else(|e| e.into_inner()) = outcome.map(|outage| (Instant::now(), outage));
        // A full disk: the write-ahead log may hold much of what space there is; ask for it back,
        // at most once a second.
        if outcome == Some(Outage::CannotWrite) && log_space_asked.is_none_or(|at| at.elapsed() >= RELIEF_INTERVAL) {
            store.give_back_log_space().await;
            log_space_asked = Some(Instant::now());
        }
    }
}

/// Starts the task that forgets, every ten minutes, the idempotent answers older than
/// [`ANSWERS_KEPT_FOR`] and the delivered quota alerts of months before last month; abort it
/// at shutdown.
pub fn start_answer_purge(store: Store, clock: Arc<dyn Clock>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut every = tokio::time::interval_at(tokio::time::Instant::now() + ANSWERS_PURGE, ANSWERS_PURGE);
        every.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            every.tick().await;
            let now = clock.now();
            if let Err(e) = store.forget_answers_before(now - ANSWERS_KEPT_FOR).await {
                tracing::warn!("cannot forget expired idempotent answers: {e}");
            }
            // Last month's rows stay: a request admitted in its last seconds may still be
            // charged to it, and must not alert a second time.
            if let Err(e) = store.forget_delivered_alerts_before(Period::of(now - ALERTS_KEPT_FOR)).await {
                tracing::warn!("cannot forget delivered quota alerts: {e}");
            }
        }
    })
}

/// Commits one batch and answers its jobs; returns the outage when it failed.
async fn commit(store: &Store, limiter: &Limiter, batch: &mut Vec<Job>) -> Option<Outage> {
    let mut records: Vec<(UsageRecord, Charge)> = Vec::new();
    let (mut completions, mut completed) = (Vec::new(), Vec::new());
    let mut waiting = Vec::with_capacity(batch.len());
    let mut touched = BTreeSet::new();
    for job in batch.drain(..) {
        match job {
            Job::Record { record, admission, done } => {
                let charge = Charge {
                    key_id: record.key_id,
                    period: admission.period,
                    tokens: admission.tokens,
                    limit: admission.monthly_limit(),
                };
                touched.insert(record.key_id);
                records.push((*record, charge));
                waiting.push((admission, Some(done)));
            }
            Job::Complete { completion, done } => {
                completions.push(completion);
                completed.push(done);
            }
            Job::Touch { key_id, admission } => {
                touched.insert(key_id);
                waiting.push((admission, None));
            }
        }
    }
    let (count, completing) = (records.len(), completions.len());
    // Held until the batch's admissions are settled (see `Limiter::ledger_turn`).
    let _turn = limiter.ledger_turn().await;
    let snapshots: Vec<_> = touched.into_iter().filter_map(|k| limiter.snapshot(k)).collect();
    let result = store.commit_usage(records, completions, snapshots).await;
    metrics::histogram!("omnimemory_usage_batch_records").record(count as f64);
    // Logged once here with the driver's words; the waiting requests get only the kind of outage.
    let failure = result.as_ref().err().map(|e| {
        tracing::error!("usage batch of {count} records and {completing} outputs not committed: {e}");
        e.outage().unwrap_or(Outage::Failed)
    });
    let mut over_quota: BTreeMap<usize, OverQuota> = BTreeMap::new();
    let mut answered_elsewhere = BTreeSet::new();
    if let Ok(unwritten) = &result {
        if !unwritten.over_quota.is_empty() {
            let n = unwritten.over_quota.len();
            tracing::warn!("{n} records refused by the quota ledger (the limiter had lost state)");
        }
        over_quota.extend(unwritten.over_quota.iter().map(|o| (o.index, *o)));
        answered_elsewhere.extend(unwritten.answered_elsewhere.iter().copied());
    }
    for done in completed {
        let _ = done.send(failure.map_or(Ok(()), |outage| Err(WriteError::Store(StoreError::Unavailable(outage)))));
    }
    let mut index = 0;
    for (admission, done) in waiting {
        // A touch leaves no record: it is settled whatever became of the batch.
        let Some(done) = done else {
            admission.settle();
            continue;
        };
        let outcome = match (failure, over_quota.get(&index)) {
            (Some(outage), _) => Err(WriteError::Store(StoreError::Unavailable(outage))),
            (None, Some(o)) => Err(WriteError::OverQuota { limit: o.limit, used: o.used }),
            (None, None) if answered_elsewhere.contains(&index) => Err(WriteError::AnsweredElsewhere),
            (None, None) => Ok(()),
        };
        index += 1;
        // Settled only when written; dropped, it gives back what it reserved.
        match outcome {
            Ok(()) => admission.settle(),
            Err(_) => drop(admission),
        }
        let _ = done.send(outcome);
    }
    failure
}
