//! `admin rotate-key KEY [--grace-hours H]`: a new secret for a key, shown once (as at
//! creation); the key keeps its id, user, tier, limits, quota ledger and usage history, and
//! its old secret works for the grace period (default 24 hours; 0 ends it at once), after
//! which a server refuses it with `api_key_rotated`.

use serde_json::json;

use super::render::Page;
use super::{Outcome, find_key};
use crate::keys::ApiKey;
use crate::store::Store;

pub async fn rotate_key(store: &Store, given: &str, grace_hours: u32, now: jiff::Timestamp) -> anyhow::Result<Outcome> {
    let record = match find_key(store, given).await? {
        Ok(record) => record,
        Err(outcome) => return Ok(outcome),
    };
    let new = ApiKey::rotate(&record.public_id)?;
    let valid_until = now + jiff::SignedDuration::from_hours(i64::from(grace_hours));
    if !store.rotate_key(record.id, &new.hash(), now, valid_until).await? {
        return Ok(Outcome::failed("Key not found", json!({"rotated": false, "error": "not_found"})));
    }
    let old_secret = if grace_hours == 0 {
        "refused from now on (within half a second on running servers)".to_string()
    } else {
        format!("works until {valid_until} ({grace_hours} h)")
    };
    let text = Page::default()
        .banner("✓ API key rotated")
        .field("API Key", new.expose_secret())
        .field("Key ID", &record.public_id)
        .field("User ID", &record.user_id)
        .field("Tier", record.tier)
        .field("Old secret", old_secret)
        .line("\n  Store this key now: it is shown only once. Usage, quota and limits carry over.")
        .finish();
    let json = json!({
        "rotated": true, "api_key": new.expose_secret(), "key_id": record.public_id,
        "user_id": record.user_id, "tier": record.tier, "rotated_at": now,
        "grace_hours": grace_hours, "previous_key_valid_until": valid_until,
    });
    Ok(Outcome::ok(text, json))
}
