//! Admin quota resets, seen by a running server: `admin reset-usage` changes storage only, so a
//! task of its own looks for a newer reset every 250 ms and makes the limiter forget the quota
//! use it held ([`Limiter::after_quota_reset`]). It does nothing else; it stops when aborted.

use std::sync::Arc;
use std::time::Duration;

use super::Limiter;
use crate::clock::Clock;
use crate::store::Store;

/// How often the storage is asked for a newer reset.
const RESET_POLL: Duration = Duration::from_millis(250);

/// Starts the task; abort it at shutdown.
pub fn watch_quota_resets(store: Store, limiter: Limiter, clock: Arc<dyn Clock>) -> tokio::task::JoinHandle<()> {
    tokio::spawn(async move {
        let mut seen = store.latest_quota_reset().await.unwrap_or(0);
        let mut poll = tokio::time::interval(RESET_POLL);
        poll.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            poll.tick().await;
            seen = reload_after_reset(&store, &limiter, clock.now(), seen).await;
        }
    })
}

/// After a reset newer than `seen`, makes the limiter forget the quota use it held; returns the
/// latest reset applied.
async fn reload_after_reset(store: &Store, limiter: &Limiter, now: jiff::Timestamp, seen: i64) -> i64 {
    let latest = match store.latest_quota_reset().await {
        Ok(id) if id > seen => id,
        _ => return seen,
    };
    match limiter.after_quota_reset(store, now).await {
        Ok(()) => latest,
        Err(e) => {
            tracing::error!("cannot reload quota after a reset: {e}");
            seen
        }
    }
}
