//! `LastUseTracker`: each key's last successful use (time and model), remembered in memory on
//! every use and written to the key's row at most once a minute per key, so a busy key costs
//! no write per request. A key's first use in this process is written within moments (the
//! writer is woken); later ones when their minute is up (the writer looks every few seconds);
//! whatever is left is written at shutdown. Readers on this instance (`/usage/quota`) see the
//! in-memory value; others see storage's, at most a minute behind.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::keys::{Caller, KeyId};
use crate::store::{LastUse, Store};

/// A key's last use is written at most this often.
pub const WRITE_EVERY: Duration = Duration::from_secs(60);
/// How often the writer looks for uses whose minute is up.
const LOOK_EVERY: Duration = Duration::from_secs(5);

#[derive(Debug)]
struct Entry {
    at: jiff::Timestamp,
    model: Option<String>,
    /// When this process last wrote the key's use.
    written: Option<Instant>,
    /// A use newer than what was written.
    pending: bool,
}

#[derive(Clone)]
pub struct LastUseTracker {
    entries: Arc<Mutex<HashMap<KeyId, Entry>>>,
    store: Store,
    wake: Arc<tokio::sync::Notify>,
}

/// Which of the uses not written yet a write takes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pending {
    /// Those whose key was last written a minute ago or more (or never).
    Due,
    /// All of them (at shutdown).
    All,
}

impl LastUseTracker {
    /// The tracker and its writer task (which runs until aborted; call [`Self::flush`] first).
    pub fn start(store: Store) -> (LastUseTracker, tokio::task::JoinHandle<()>) {
        let tracker = LastUseTracker { entries: Arc::default(), store, wake: Arc::new(tokio::sync::Notify::new()) };
        let writer = tracker.clone();
        let task = tokio::spawn(async move {
            loop {
                tokio::select! {
                    _ = tokio::time::sleep(LOOK_EVERY) => {}
                    _ = writer.wake.notified() => {}
                }
                writer.write(Pending::Due).await;
            }
        });
        (tracker, task)
    }

    /// A successful use of `key_id` at `at`, naming `model` (none for `/validate`).
    pub fn record(&self, key_id: KeyId, model: Option<&str>, at: jiff::Timestamp) {
        if key_id.caller() == Caller::Anonymous {
            return;
        }
        // To the millisecond, as storage keeps it, so both places show the same instant.
        let at = jiff::Timestamp::from_millisecond(at.as_millisecond()).unwrap_or(at);
        let mut entries = self.lock();
        let entry = entries.entry(key_id).or_insert_with(|| Entry { at, model: None, written: None, pending: false });
        if at >= entry.at {
            entry.at = at;
            entry.model = model.map(str::to_string);
        }
        entry.pending = true;
        if entry.written.is_none() {
            self.wake.notify_one();
        }
    }

    /// The latest use of `key_id` seen by this instance.
    pub fn latest(&self, key_id: KeyId) -> Option<(jiff::Timestamp, Option<String>)> {
        self.lock().get(&key_id).map(|e| (e.at, e.model.clone()))
    }

    /// Writes every use not written yet (at shutdown).
    pub async fn flush(&self) {
        self.write(Pending::All).await;
    }

    async fn write(&self, which: Pending) {
        let all = which == Pending::All;
        let due: Vec<LastUse> = {
            let mut entries = self.lock();
            let now = Instant::now();
            entries
                .iter_mut()
                .filter(|(_, e)| e.pending && (all || e.written.is_none_or(|w| now.duration_since(w) >= WRITE_EVERY)))
                .map(|(&key_id, e)| {
                    e.pending = false;
                    e.written = Some(now);
                    LastUse { key_id, at: e.at, model: e.model.clone() }
                })
                .collect()
        };
        if let Err(e) = self.store.record_last_uses(&due).await {
            // Not billing data: the next use (or the next minute) writes it again.
            tracing::warn!("cannot write the last use of {} keys: {e}", due.len());
            let mut entries = self.lock();
            for u in &due {
                if let Some(entry) = entries.get_mut(&u.key_id) {
                    entry.pending = true;
                }
            }
        }
    }

    /// A key's last use from what is known: the time of its latest usage record (no model),
    /// its row in storage (written once a minute), and this instance's memory; the latest wins,
    /// with the model of the latest of the two that know one.
    pub fn latest_of(
        &self,
        key: &crate::keys::KeyRecord,
        latest_record: Option<jiff::Timestamp>,
    ) -> (Option<jiff::Timestamp>, Option<String>) {
        let stored = key.last_used_at.map(|at| (at, key.last_used_model.clone()));
        let with_model = match (self.latest(key.id), stored) {
            (Some(here), Some(there)) if there.0 > here.0 => Some(there),
            (Some(here), _) => Some(here),
            (None, stored) => stored,
        };
        let at = with_model.as_ref().map(|(at, _)| *at).max(latest_record);
        (at, with_model.and_then(|(_, model)| model))
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<KeyId, Entry>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
