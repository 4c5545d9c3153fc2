//! Quota alerts by webhook: when a key's monthly use reaches a threshold (default 80% and
//! 100% of its limit), a signed JSON `POST` goes to the operator's URL.
//!
//! The alert is queued in the outbox (`store/sql/alerts.rs`) by the transaction that charges
//! the crossing, so it is as durable as the charge; the [`Deliverer`] task sends what is due,
//! each in a task of its own with a timeout (a slow or dead receiver delays only its own
//! alerts), and after a failure tries again with exponential back-off (base × 2^attempts, at
//! most an hour). Delivery is at least once: a receiver deduplicates by `event_id`. Several
//! instances share the outbox; a lease on each claimed row keeps two from sending it at once.
//!
//! Signature: `X-OmniMemory-Signature: sha256=<hex HMAC-SHA256 of the raw body with the
//! webhook secret>`. The secret is never logged.

use std::sync::Arc;
use std::time::Duration;

use hmac::{Hmac, KeyInit as _, Mac as _};

use crate::clock::Clock;
use crate::config::AlertSettings;
use crate::store::{QueuedAlert, Store};

pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);
/// How long one delivery attempt may take.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a claimed alert is left to its instance before another may try it.
const LEASE: jiff::SignedDuration = jiff::SignedDuration::from_secs(15);
/// How often the outbox is looked at.
const POLL: Duration = Duration::from_millis(250);
const BATCH: u32 = 32;

/// The client alerts are sent with: a timeout per attempt, and the CA file's roots if any.
fn http_client(settings: &AlertSettings) -> reqwest::Client {
    let mut builder = reqwest::Client::builder().timeout(ATTEMPT_TIMEOUT);
    if let Some(pem) = &settings.ca_pem {
        builder = builder.tls_certs_merge(reqwest::Certificate::from_pem_bundle(pem).unwrap_or_default());
    }
    builder.build().expect("an http client")
}

/// `sha256=<hex>` of the HMAC-SHA256 of `body` under `secret`.
pub fn signature(secret: &str, body: &[u8]) -> String {
    let mut mac = Hmac::<sha2::Sha256>::new_from_slice(secret.as_bytes()).expect("HMAC takes a key of any length");
    mac.update(body);
    let tag = mac.finalize().into_bytes();
    format!("sha256={}", tag.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

/// When to try again after `attempts` failed attempts.
pub fn backoff(base: Duration, attempts: u32) -> Duration {
    base.saturating_mul(2u32.saturating_pow(attempts.saturating_sub(1).min(20))).min(MAX_BACKOFF)
}

/// Sends the outbox's alerts; runs until its task is aborted (what it leaves is sent later,
/// by this instance after a restart or by another one).
pub struct Deliverer;

impl Deliverer {
    pub fn start(store: Store, settings: AlertSettings, clock: Arc<dyn Clock>) -> tokio::task::JoinHandle<()> {
        let client = http_client(&settings);
        tokio::spawn(async move {
            loop {
                match store.claim_due_alerts(clock.now(), LEASE, BATCH).await {
                    Ok(due) => {
                        for alert in due {
                            let (store, client, settings, clock) =
                                (store.clone(), client.clone(), settings.clone(), clock.clone());
                            tokio::spawn(async move { deliver(&store, &client, &settings, alert, clock.now()).await });
                        }
                    }
                    Err(e) => tracing::warn!("cannot read the alert outbox: {e}"),
                }
                tokio::time::sleep(POLL).await;
            }
        })
    }
}

/// Posts one alert; `now` is when the attempt started.
async fn deliver(
    store: &Store,
    client: &reqwest::Client,
    settings: &AlertSettings,
    alert: QueuedAlert,
    now: jiff::Timestamp,
) {
    let sent = client
        .post(&settings.url)
        .header("content-type", "application/json")
        .header("x-omnimemory-event-id", &alert.event_id)
        .header("x-omnimemory-signature", signature(&settings.secret, alert.body.as_bytes()))
        .body(alert.body.clone())
        .send()
        .await;
    let failure = match sent {
        Ok(resp) if resp.status().is_success() => None,
        Ok(resp) => Some(format!("the receiver answered {}", resp.status())),
        Err(e) if e.is_timeout() => Some(format!("no answer within {} s", ATTEMPT_TIMEOUT.as_secs())),
        Err(e) if e.is_connect() => Some("cannot connect to the receiver".to_string()),
        Err(_) => Some("the request failed".to_string()),
    };
    let outcome = if failure.is_none() { "delivered" } else { "failed" };
    metrics::counter!("omnimemory_quota_alert_attempts_total", "outcome" => outcome).increment(1);
    let recorded = match &failure {
        None => store.alert_delivered(alert.id, now).await,
        Some(why) => {
            let wait = backoff(settings.retry_base, alert.attempts + 1);
            let retry_at = now + jiff::SignedDuration::try_from(wait).unwrap_or(jiff::SignedDuration::from_secs(3600));
            tracing::warn!(event_id = %alert.event_id, attempts = alert.attempts + 1, "quota alert not delivered ({why}); next try in {wait:?}");
            store.alert_failed(alert.id, retry_at, why).await
        }
    };
    if let Err(e) = recorded {
        // The lease runs out and the alert is tried again: at least once still holds.
        tracing::warn!(event_id = %alert.event_id, "cannot record a quota alert attempt: {e}");
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signatures_are_hex_hmac_sha256() {
        // RFC 4231, test case 2.
        assert_eq!(
            signature("Jefe", b"what do ya want for nothing?"),
            "sha256=5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn back_off_doubles_up_to_an_hour() {
        let base = Duration::from_secs(2);
        assert_eq!(backoff(base, 1), Duration::from_secs(2));
        assert_eq!(backoff(base, 3), Duration::from_secs(8));
        assert_eq!(backoff(base, 40), MAX_BACKOFF);
    }
}
