//! The rate-limit headers of a key's answer, on successes and on refusals alike: what the key's
//! buckets hold now, from the limiter's `RateStatus`.

use axum::http::{HeaderMap, HeaderName, HeaderValue};

use crate::limits::RateStatus;

/// `X-RateLimit-*` (request bucket) and the IETF `RateLimit-Policy` / `RateLimit` fields
/// (request bucket, and token bucket when the key has a token rate).
pub fn rate_headers(headers: &mut HeaderMap, status: &RateStatus) {
    let mut put = |name: &'static str, value: String| {
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(HeaderName::from_static(name), v);
        }
    };
    put("x-ratelimit-limit", status.burst.to_string());
    put("x-ratelimit-remaining", status.requests_remaining.to_string());
    put("x-ratelimit-reset", status.requests_reset_secs.to_string());
    let window = (status.burst as f64 / status.requests_per_second.max(f64::MIN_POSITIVE)).ceil().max(1.0);
    let mut policy = format!("\"requests\";q={};w={window}", status.burst);
    let mut current = format!("\"requests\";r={};t={}", status.requests_remaining, status.requests_reset_secs);
    if let Some(t) = &status.tokens {
        let window = (t.capacity / t.per_second.max(f64::MIN_POSITIVE)).ceil();
        policy.push_str(&format!(", \"tokens\";q={};w={window}", t.capacity as u64));
        current.push_str(&format!(", \"tokens\";r={};t={}", t.available.floor() as u64, t.reset_secs));
    }
    put("ratelimit-policy", policy);
    put("ratelimit", current);
}
