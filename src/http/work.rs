//! Where a request's engine work runs, so that large requests cannot starve small ones.
//!
//! Work is sorted by the bytes it reads:
//! - up to [`INLINE_MAX_BYTES`] it runs inline on the async executor (a few milliseconds);
//! - up to [`STANDARD_MAX_BYTES`] on the blocking pool, at most one job per core at a time
//!   (the *standard* lane), and at most half of them (at least one) for one key, so one
//!   client's many medium requests leave a core to the others;
//! - above, on the blocking pool in the *large* lane: one job fewer than the cores (at least
//!   one), and at most one large job per key at a time, so one client's many large requests
//!   take turns with another client's instead of queueing ahead of them.
//!
//! A small or medium request therefore never waits behind a large one: it only shares the CPU
//! with it. A permit is held by the blocking job itself, not by the request, so a client that
//! hangs up does not free a permit while its job still runs.
//!
//! A job whose request is dropped before the job starts (the server drops a request when its
//! client hangs up) is dropped with it: it leaves its key's queue and the lane's, never runs,
//! and is counted in `omnimemory_engine_jobs_abandoned_total{lane}`. A job that has started
//! runs to its end (the engine has no cancellation), but its result goes nowhere, and a
//! `/compress` job stops after its count when no admission comes (`Job::run_gated`).
//!
//! It does not bound the work of one job (the handlers refuse inputs beyond the documented
//! limits) nor how many requests a key may send (the limiter does).
//!
//! Observable in `/metrics` as `omnimemory_engine_jobs{lane, state}` (`state` is `waiting` or
//! `running`), `omnimemory_engine_jobs_finished_total{lane}` and
//! `omnimemory_engine_jobs_abandoned_total{lane}`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use tokio::sync::{OwnedSemaphorePermit, Semaphore};

use super::error::ApiError;
use crate::keys::KeyId;

/// Work on at most this many bytes runs inline.
pub const INLINE_MAX_BYTES: usize = 32 * 1024;
/// Work on at most this many bytes runs in the standard lane; above, in the large lane.
pub const STANDARD_MAX_BYTES: usize = 256 * 1024;

/// The two lanes of the blocking pool and their per-key turns.
#[derive(Clone)]
pub struct EngineLanes {
    standard: Arc<Semaphore>,
    large: Arc<Semaphore>,
    /// How many standard jobs one key may run at once.
    standard_per_key: usize,
    /// Per lane and key with work waiting or running there, the key's permits in that lane
    /// (one in the large lane, `standard_per_key` in the standard one); removed when its last
    /// holder is done.
    turns: Turns,
}

type Turns = Arc<Mutex<HashMap<(Lane, Option<KeyId>), Arc<Semaphore>>>>;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Lane {
    Inline,
    Standard,
    Large,
}

impl Lane {
    pub fn for_bytes(bytes: usize) -> Lane {
        if bytes <= INLINE_MAX_BYTES {
            Lane::Inline
        } else if bytes <= STANDARD_MAX_BYTES {
            Lane::Standard
        } else {
            Lane::Large
        }
    }

    fn name(self) -> &'static str {
        match self {
            Lane::Inline => "inline",
            Lane::Standard => "standard",
            Lane::Large => "large",
        }
    }
}

impl EngineLanes {
    /// Lanes for a machine with `cores` cores: `cores` standard jobs (half of them, at least
    /// one, for one key) and `cores - 1` large ones (at least one; one per key) at a time.
    pub fn new(cores: usize) -> EngineLanes {
        let cores = cores.max(1);
        EngineLanes {
            standard: Arc::new(Semaphore::new(cores)),
            large: Arc::new(Semaphore::new((cores - 1).max(1))),
            standard_per_key: (cores / 2).max(1),
            turns: Arc::default(),
        }
    }

    pub fn for_this_machine() -> EngineLanes {
        EngineLanes::new(std::thread::available_parallelism().map_or(2, std::num::NonZeroUsize::get))
    }

    /// Runs `f`, which reads `bytes` bytes of a request of key `key` (`None`: a request read
    /// before any key is known, an admin one), in its lane.
    pub async fn run<T: Send + 'static>(
        &self,
        key: impl Into<Option<KeyId>>,
        bytes: usize,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, ApiError> {
        let (lane, key_id) = (Lane::for_bytes(bytes), key.into());
        if lane == Lane::Inline {
            return Ok(f());
        }
        let waiting = JobGauge::new(lane, "waiting");
        // Until the job starts, its request may be dropped (its client hung up): the job is
        // then dropped with it, and counted.
        let abandoned = Abandoned { lane: Some(lane) };
        let turn = match lane {
            Lane::Large => self.take_turn(lane, key_id, 1).await?,
            _ => self.take_turn(lane, key_id, self.standard_per_key).await?,
        };
        let semaphore = if lane == Lane::Large { &self.large } else { &self.standard };
        let permit = semaphore.clone().acquire_owned().await.map_err(|e| ApiError::Internal(e.into()))?;
        drop(waiting);
        let running = JobGauge::new(lane, "running");
        let (done, result) = tokio::sync::oneshot::channel();
        // The request can still go between here and the job's start on a thread of the pool:
        // the job checks before it starts.
        let job_abandoned = Abandoned { lane: Some(lane) };
        tokio::task::spawn_blocking(move || {
            let held = (permit, turn, running);
            if done.is_closed() {
                return;
            }
            job_abandoned.started();
            let out = f();
            // The lane and the key's turn are free before the answer is: whoever it wakes finds
            // them so.
            drop(held);
            metrics::counter!("omnimemory_engine_jobs_finished_total", "lane" => lane.name()).increment(1);
            let _ = done.send(out);
        });
        abandoned.started();
        // The job ended without an answer only if it panicked.
        result
            .await
            .map_err(|_| ApiError::Internal(anyhow::anyhow!("an engine job of the {} lane panicked", lane.name())))
    }

    /// Waits until this key holds fewer than `per_key` jobs of `lane` (waiting for the lane or
    /// running) ahead of this one.
    async fn take_turn(&self, lane: Lane, key_id: Option<KeyId>, per_key: usize) -> Result<KeyTurn, ApiError> {
        let semaphore = {
            let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
            turns.entry((lane, key_id)).or_insert_with(|| Arc::new(Semaphore::new(per_key))).clone()
        };
        let gate = KeyTurnGate { turns: self.turns.clone(), entry: (lane, key_id), semaphore: Some(semaphore.clone()) };
        let permit = semaphore.acquire_owned().await.map_err(|e| ApiError::Internal(e.into()))?;
        Ok(KeyTurn { _permit: permit, _gate: gate })
    }
}

/// A key's turn in a lane: its permit, then its share of the map entry.
struct KeyTurn {
    _permit: OwnedSemaphorePermit,
    _gate: KeyTurnGate,
}

/// One holder of a key's entry in `turns`; the last one to go removes the entry, so the map
/// holds only keys with work in progress.
struct KeyTurnGate {
    turns: Turns,
    entry: (Lane, Option<KeyId>),
    semaphore: Option<Arc<Semaphore>>,
}

impl Drop for KeyTurnGate {
    fn drop(&mut self) {
        let mut turns = self.turns.lock().unwrap_or_else(|e| e.into_inner());
        // Our handle, then the map's: nobody else holds it, so nobody waits for this key.
        drop(self.semaphore.take());
        if turns.get(&self.entry).is_some_and(|s| Arc::strong_count(s) == 1) {
            turns.remove(&self.entry);
        }
    }
}

/// Counts `omnimemory_engine_jobs_abandoned_total{lane}` when dropped still holding its lane:
/// the job it stands for was dropped before it started, because its request was.
struct Abandoned {
    lane: Option<Lane>,
}

impl Abandoned {
    fn started(mut self) {
        self.lane = None;
    }
}

impl Drop for Abandoned {
    fn drop(&mut self) {
        if let Some(lane) = self.lane {
            metrics::counter!("omnimemory_engine_jobs_abandoned_total", "lane" => lane.name()).increment(1);
        }
    }
}

/// `omnimemory_engine_jobs{lane, state}`, up while this lives.
struct JobGauge {
    lane: Lane,
    state: &'static str,
}

impl JobGauge {
    fn new(lane: Lane, state: &'static str) -> JobGauge {
        metrics::gauge!("omnimemory_engine_jobs", "lane" => lane.name(), "state" => state).increment(1.0);
        JobGauge { lane, state }
    }
}

impl Drop for JobGauge {
    fn drop(&mut self) {
        metrics::gauge!("omnimemory_engine_jobs", "lane" => self.lane.name(), "state" => self.state).decrement(1.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_is_sorted_by_size() {
        assert_eq!(Lane::for_bytes(0), Lane::Inline);
        assert_eq!(Lane::for_bytes(INLINE_MAX_BYTES), Lane::Inline);
        assert_eq!(Lane::for_bytes(40 * 1024), Lane::Standard);
        assert_eq!(Lane::for_bytes(STANDARD_MAX_BYTES + 1), Lane::Large);
    }

    #[test]
    fn large_jobs_leave_a_core_to_the_rest() {
        assert_eq!(EngineLanes::new(1).large.available_permits(), 1);
        assert_eq!(EngineLanes::new(2).large.available_permits(), 1);
        assert_eq!(EngineLanes::new(8).large.available_permits(), 7);
    }

    /// Holds a lane's job until told to finish.
    fn blocked_job(
        lanes: &EngineLanes,
        key: i64,
        bytes: usize,
    ) -> (tokio::task::JoinHandle<()>, std::sync::mpsc::Sender<()>) {
        let (finish, finished) = std::sync::mpsc::channel::<()>();
        let lanes = lanes.clone();
        let job = tokio::spawn(async move {
            lanes
                .run(KeyId::from_row(key), bytes, move || {
                    let _ = finished.recv();
                })
                .await
                .unwrap();
        });
        (job, finish)
    }

    /// How long a test waits for a lane's state or a job's end before it fails instead of hanging.
    const PATIENCE: std::time::Duration = std::time::Duration::from_secs(30);

    /// Whether key `key` has a large job waiting for the lane or running in it.
    fn holds_large_turn(lanes: &EngineLanes, key: i64) -> bool {
        lanes.turns.lock().unwrap().contains_key(&(Lane::Large, Some(KeyId::from_row(key))))
    }

    /// Waits until `done` holds; a condition that never comes fails the test instead of
    /// hanging it.
    async fn until(mut done: impl FnMut() -> bool) {
        let deadline = std::time::Instant::now() + PATIENCE;
        while !done() {
            assert!(std::time::Instant::now() < deadline, "waited {PATIENCE:?} for a lane's state");
            tokio::time::sleep(std::time::Duration::from_millis(5)).await;
        }
    }

    /// Waits for a job's task to end; one that never does fails the test instead of hanging it.
    async fn finished(job: tokio::task::JoinHandle<()>) {
        tokio::time::timeout(PATIENCE, job).await.expect("a job did not finish in time").unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn standard_work_runs_while_every_large_permit_is_taken() {
        let lanes = EngineLanes::new(2);
        let large = STANDARD_MAX_BYTES + 1;
        // Key 1's job holds the only large permit before key 2's is sent, so key 2's is the
        // one that waits (sent together, either could win the permit).
        let (job_a, finish_a) = blocked_job(&lanes, 1, large);
        until(|| lanes.large.available_permits() == 0).await;
        let (job_b, finish_b) = blocked_job(&lanes, 2, large);
        until(|| holds_large_turn(&lanes, 2)).await;
        // Key 2's large job waits; standard and inline work of anyone does not.
        assert_eq!(lanes.run(KeyId::from_row(3), 40 * 1024, || 40).await.unwrap(), 40);
        assert_eq!(lanes.run(KeyId::from_row(2), 100 * 1024, || 100).await.unwrap(), 100);
        assert_eq!(lanes.run(KeyId::from_row(2), 10, || 1).await.unwrap(), 1);
        assert!(!job_b.is_finished());
        finish_a.send(()).unwrap();
        finished(job_a).await;
        finish_b.send(()).unwrap();
        finished(job_b).await;
        assert!(lanes.turns.lock().unwrap().is_empty(), "no key keeps an entry once its work is done");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_key_s_large_jobs_take_turns_with_another_key_s() {
        let lanes = EngineLanes::new(2);
        let large = STANDARD_MAX_BYTES + 1;
        let order = Arc::new(Mutex::new(Vec::new()));
        // Key 1 sends three large jobs; the first holds the lane until released.
        let (first, finish_first) = blocked_job(&lanes, 1, large);
        until(|| lanes.large.available_permits() == 0).await;
        let mut jobs = Vec::new();
        for (key, label) in [(1, "key 1, second"), (1, "key 1, third"), (2, "key 2")] {
            let (lanes, order) = (lanes.clone(), order.clone());
            jobs.push(tokio::spawn(async move {
                lanes.run(KeyId::from_row(key), large, move || order.lock().unwrap().push(label)).await.unwrap();
            }));
        }
        // Key 2's job is queued for the lane (it takes its own turn at once).
        until(|| holds_large_turn(&lanes, 2)).await;
        tokio::time::sleep(std::time::Duration::from_millis(100)).await;
        finish_first.send(()).unwrap();
        finished(first).await;
        for job in jobs {
            finished(job).await;
        }
        // Key 2 sent last but did not wait for all of key 1's queue.
        let order = order.lock().unwrap().clone();
        assert_eq!(order[0], "key 2", "{order:?}");
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_queued_job_dropped_with_its_request_never_runs() {
        let lanes = EngineLanes::new(2);
        let large = STANDARD_MAX_BYTES + 1;
        let (first, finish_first) = blocked_job(&lanes, 1, large);
        until(|| lanes.large.available_permits() == 0).await;
        // The key's next large job waits for its turn; its request goes away meanwhile.
        let ran = Arc::new(Mutex::new(false));
        let queued = tokio::spawn({
            let (lanes, ran) = (lanes.clone(), ran.clone());
            async move { lanes.run(KeyId::from_row(1), large, move || *ran.lock().unwrap() = true).await }
        });
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        queued.abort();
        assert!(queued.await.unwrap_err().is_cancelled());
        finish_first.send(()).unwrap();
        finished(first).await;
        // The key's turn came and went without it.
        assert_eq!(lanes.run(KeyId::from_row(1), large, || 1).await.unwrap(), 1);
        assert!(!*ran.lock().unwrap(), "the dropped job ran");
        assert!(lanes.turns.lock().unwrap().is_empty());
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn one_key_s_standard_jobs_leave_a_core_to_another_key_s() {
        let lanes = EngineLanes::new(2);
        let medium = 100 * 1024;
        // Key 1 runs one standard job and queues three more: on two cores, it holds one slot.
        let (first, finish_first) = blocked_job(&lanes, 1, medium);
        until(|| lanes.standard.available_permits() == 1).await;
        let mut queued = Vec::new();
        for _ in 0..3 {
            queued.push(blocked_job(&lanes, 1, medium));
        }
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
        assert_eq!(lanes.standard.available_permits(), 1, "key 1 took the second slot");
        // Key 2's job runs at once, though it came after key 1's queue.
        assert_eq!(lanes.run(KeyId::from_row(2), medium, || 2).await.unwrap(), 2);
        assert!(queued.iter().all(|(job, _)| !job.is_finished()));
        // Every job may finish now (they take key 1's turn in whatever order they queued).
        finish_first.send(()).unwrap();
        for (_, finish) in &queued {
            finish.send(()).unwrap();
        }
        finished(first).await;
        for (job, _) in queued {
            finished(job).await;
        }
        assert!(lanes.turns.lock().unwrap().is_empty());
    }
}
