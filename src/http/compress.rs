//! `POST /compress`, `POST /count-tokens`, `POST /validate`: the engine behind HTTP.
//!
//! Each request's engine work is bounded before it starts: a `query` of at most
//! [`MAX_QUERY_BYTES`] (the engine reads the query against every passage, so its cost grows
//! with query × context), and `/validate` texts within the engine's comparison bound. The work
//! then runs in its lane (`work.rs`), so large requests never queue small ones.

use std::collections::{BTreeMap, HashSet};
use std::sync::{Arc, Mutex};

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, header};
use axum::response::{IntoResponse, Response};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::error::ApiError;
use super::json::{ApiJson, BodyReader};
use super::limits::{Admissible, admit, admit_request, owed_a_stored_answer};
use super::rate_headers::rate_headers;
use super::token_floor::TokenFloor;
use super::work::{Lane, STANDARD_MAX_BYTES};
use crate::api::{CompressBody, CountResponse, DEFAULT_MODEL, check_model_id};
use crate::keys::KeyId;
use crate::limits::{Admission, RateStatus};
use crate::store::{ANSWERS_KEPT_FOR, Completion, StoredAnswer, UsageRecord};
use crate::usage::{Committed, WriteError};
use omnimemory_engine::compress;
use omnimemory_engine::tokens::PieceCounter;
use std::time::Instant;

/// `query` (on `/compress` and `/validate`) is at most this many bytes: a question or a
/// search phrase of a few hundred words. A 2.5 MB context with a 4 KB query of distinct words
/// takes about twice as long as with none; with the context itself as the query, a minute.
pub const MAX_QUERY_BYTES: usize = 4096;

/// The query, if within [`MAX_QUERY_BYTES`]; the refusal names the field and the bound.
fn check_query(query: Option<&str>) -> Result<(), ApiError> {
    match query {
        Some(q) if q.len() > MAX_QUERY_BYTES => Err(ApiError::InvalidRequest(format!(
            "query must be at most {MAX_QUERY_BYTES} bytes (got {} bytes); send the question, not the context",
            q.len()
        ))),
        _ => Ok(()),
    }
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty())
}

pub async fn compress(
    State(state): State<AppState>,
    Admissible(key): Admissible<true>,
    headers: HeaderMap,
    request: Request,
) -> Result<Response, ApiError> {
    let mut body: CompressBody = read_what_the_key_can_pay(&state, &key, &headers, request).await?;
    // With an Idempotency-Key: a retry of an answered request gets that answer, uncharged.
    let idempotency = match idempotency_key(&headers)? {
        Some(idem_key) => {
            let digest = body_digest(&body, &headers);
            let guard = state.idempotent_in_flight.claim(key.id, &idem_key)?;
            if let Some(response) = stored_answer(&state, &key, &idem_key, &digest).await? {
                return Ok(response);
            }
            Some((idem_key, digest, guard))
        }
        None => None,
    };
    // `context` or `messages`, the query, the budget and the granularity, checked and owned.
    let job = body.job().map_err(ApiError::InvalidRequest)?;
    check_query(job.query.as_deref())?;
    let metadata = metadata_of(body.metadata.take())?;
    let tool_id = tag_of("tool_id", header_str(&headers, "x-tool-id").map(str::to_string).or(body.tool_id.take()))?;
    let session_id =
        tag_of("session_id", header_str(&headers, "x-session-id").map(str::to_string).or(body.session_id.take()))?;
    let model_id = check_model_id(body.model_id()).map_err(ApiError::InvalidRequest)?.to_string();
    let encoding = state.registry.resolve(&model_id).encoding;
    let bytes = job.input_bytes() + job.query.as_ref().map_or(0, String::len);

    // The input's tokens (for messages, the sum over their contents) are what is reserved now
    // and charged with the usage record. The input is tokenized once: the engine compresses
    // with the counter that gave the reservation its count.
    let request_id = format!("{:032x}", rand::random::<u128>());
    // The record as it is before the output is known: as if the text came back unchanged.
    let record_of = |original_tokens: usize, timestamp| UsageRecord {
        request_id: request_id.clone(),
        api_key: key.public_id.clone(),
        key_id: key.id,
        user_id: key.user_id.clone(),
        operation: "compress",
        original_tokens: original_tokens as u64,
        compressed_tokens: original_tokens as u64,
        model_id: model_id.clone(),
        compression_ratio: 0.0,
        // Not NULL: through sqlx's Any driver, PostgreSQL refused a NULL here in the records'
        // multi-row insert ("incorrect binary data format in bind parameter 11").
        quality_score: Some(1.0),
        tool_id,
        session_id,
        metadata,
        timestamp,
        answer: None,
    };
    // The inline path's steps, in ms, for the `Server-Timing` header.
    let mut timing: Vec<(&str, f64)> = Vec::new();
    let (original_tokens, recording, response) = match Lane::for_bytes(bytes) {
        Lane::Inline => {
            let t = Instant::now();
            let text = job.text();
            let counter = PieceCounter::new(encoding, &text);
            let original_tokens = job.tokens(&counter);
            timing.push(("count", stage("count", t)));
            let t = Instant::now();
            let admission = admit(&state, &key, original_tokens as u64).await?;
            timing.push(("admit", stage("admit", t)));
            let timestamp = state.clock.now();
            let record = record_of(original_tokens, timestamp);
            let model_id = model_id.clone();
            if original_tokens >= OVERLAPPED_RECORD_TOKENS && idempotency.is_none() {
                // The record and its charge are committed while the engine runs (the flush
                // overlaps the work); the output completes the record after.
                let status = admission.status.clone();
                let committed = state.writer.open(record, admission).await?;
                // Lets the usage writer take the record before the engine holds this thread.
                tokio::task::yield_now().await;
                let t = Instant::now();
                let response = job.run_counted(&counter, encoding, model_id);
                timing.push(("engine", stage("engine", t)));
                (original_tokens, Recording::Opened { committed, status, timestamp }, response)
            } else {
                let t = Instant::now();
                let response = job.run_counted(&counter, encoding, model_id);
                timing.push(("engine", stage("engine", t)));
                (original_tokens, Recording::After(Box::new(record), admission), response)
            }
        }
        // Larger, a context or `messages`: counted once in its lane, which waits there for the
        // admission (made here, on the executor) before it compresses with the same count.
        _ => {
            let (count_tx, count_rx) = tokio::sync::oneshot::channel::<usize>();
            let (go_tx, go_rx) = tokio::sync::oneshot::channel::<bool>();
            let engine_model = model_id.clone();
            let work = state.engine_lanes.run(key.id, bytes, move || {
                job.run_gated(encoding, engine_model, |n| count_tx.send(n).is_ok() && go_rx.blocking_recv() == Ok(true))
            });
            let admission = async {
                // No count: the job never ran (its lane refused it); `work` says why.
                let Ok(n) = count_rx.await else { return None };
                let admitted = admit(&state, &key, n as u64).await;
                let _ = go_tx.send(admitted.is_ok());
                Some(admitted.map(|a| (n, a, state.clock.now())))
            };
            let (work, admission) = tokio::join!(work, admission);
            match (admission, work) {
                (Some(Err(refusal)), _) => return Err(refusal),
                (Some(Ok((n, admission, timestamp))), Ok(Some(response))) => {
                    (n, Recording::After(Box::new(record_of(n, timestamp)), admission), response)
                }
                (_, Err(e)) => return Err(e),
                (_, Ok(_)) => {
                    return Err(ApiError::Internal(anyhow::anyhow!("the engine job ended without its admission")));
                }
            }
        }
    };

    // The `Idempotency-Key` and the body's digest; its claim is held to the answer.
    let (idempotent, _in_flight) = match idempotency {
        Some((idem_key, digest, guard)) => (Some((idem_key, digest)), Some(guard)),
        None => (None, None),
    };
    let replay_of = idempotent.clone();
    let (status, timestamp, recorded) = match recording {
        Recording::After(record, admission) => {
            let mut record = UsageRecord {
                compressed_tokens: response.compressed_tokens as u64,
                compression_ratio: response.compression_ratio,
                quality_score: Some(response.quality_score),
                ..*record
            };
            if let Some((idem_key, body_sha256)) = idempotent {
                let answer = serde_json::to_string(&response).map_err(|e| ApiError::Internal(e.into()))?;
                record.answer = Some(StoredAnswer { idem_key, body_sha256, request_id: request_id.clone(), answer });
            }
            let (status, timestamp) = (admission.status.clone(), record.timestamp);
            let t = Instant::now();
            let recorded = state.writer.record(record, admission).await;
            timing.push(("record", stage("record", t)));
            (status, timestamp, recorded)
        }
        Recording::Opened { committed, status, timestamp } => {
            let t = Instant::now();
            // Queued behind the record, so written in the record's batch or a later one (and
            // even if this request is dropped meanwhile).
            let completion = Completion {
                key_id: key.id,
                timestamp,
                request_id: request_id.clone(),
                compressed_tokens: response.compressed_tokens as u64,
                compression_ratio: response.compression_ratio,
                quality_score: Some(response.quality_score),
            };
            // Not waited for: the record and its charge are durable once `committed` says so;
            // a failed batch is logged by the writer, and the record then shows nothing saved.
            let _ = state.writer.complete(completion).await;
            let recorded = committed.wait().await;
            timing.push(("record", stage("record", t)));
            (status, timestamp, recorded)
        }
    };
    match recorded {
        Ok(()) => {}
        // The ledger of record found the month spent (the limiter had lost its state).
        Err(WriteError::OverQuota { limit, used }) => {
            let resets_at = status.resets_at;
            let requested = Some(original_tokens as u64);
            return Err(ApiError::QuotaExceeded { limit, used, requested, resets_at, status: Box::new(status) });
        }
        // Another instance ran the same request at the same time and committed first: its
        // answer is the answer, and this run is neither charged nor recorded.
        Err(WriteError::AnsweredElsewhere) => {
            let (idem_key, digest) = replay_of.unwrap_or_default();
            return match stored_answer(&state, &key, &idem_key, &digest).await? {
                Some(response) => Ok(response),
                None => Err(ApiError::IdempotentRequestInProgress),
            };
        }
        Err(e) => return Err(e.into()),
    }
    let mut out_headers = HeaderMap::new();
    rate_headers(&mut out_headers, &status);
    metrics::counter!("omnimemory_compress_original_tokens_total").increment(original_tokens as u64);
    metrics::counter!("omnimemory_compress_output_tokens_total").increment(response.compressed_tokens as u64);
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        out_headers.insert("x-request-id", v);
    }
    if !timing.is_empty() {
        let steps: Vec<String> = timing.iter().map(|(name, ms)| format!("{name};dur={ms:.3}")).collect();
        if let Ok(v) = HeaderValue::from_str(&steps.join(", ")) {
            out_headers.insert("server-timing", v);
        }
    }
    // The usage record's time, so the last use and the latest record agree.
    state.last_use.record(key.id, Some(&response.model_id), timestamp);
    Ok((out_headers, axum::Json(response)).into_response())
}

/// How an inline request of this many tokens or more is recorded: its record and charge are
/// committed while the engine runs ([`UsageWriter::open`](crate::usage::UsageWriter::open)),
/// so the disk's flush is off its path. A smaller request's engine work is shorter than the
/// flush; it is recorded after, in one commit.
const OVERLAPPED_RECORD_TOKENS: usize = 1000;

/// How a request's usage record is written.
enum Recording {
    /// After the engine, whole, with its admission (and the answer for an `Idempotency-Key`).
    After(Box<UsageRecord>, Admission),
    /// Committed while the engine ran; its output completes it.
    Opened { committed: Committed, status: RateStatus, timestamp: jiff::Timestamp },
}

/// How long a step of an inline `/compress` took (`omnimemory_compress_stage_seconds{stage}`):
/// `count` (the context's tokens), `admit` (rate and quota), `engine`, `record` (the usage
/// record committed). What the handler adds beyond them is read off the request's own latency.
/// Returns the step's time in milliseconds.
fn stage(name: &'static str, since: Instant) -> f64 {
    let seconds = since.elapsed().as_secs_f64();
    // One handle per step, looked up once: a lookup by name and label on every request cost
    // more than the recording itself.
    static HANDLES: std::sync::OnceLock<[(&'static str, metrics::Histogram); 4]> = std::sync::OnceLock::new();
    let handles = HANDLES.get_or_init(|| {
        ["count", "admit", "engine", "record"]
            .map(|s| (s, metrics::histogram!("omnimemory_compress_stage_seconds", "stage" => s)))
    });
    if let Some((_, h)) = handles.iter().find(|(s, _)| *s == name) {
        h.record(seconds);
    }
    seconds * 1e3
}

/// The body, read as it arrives. Once more than [`STANDARD_MAX_BYTES`] have come (a request
/// for the large lane), a lower bound on the tokens it will be charged is kept over what has
/// come (`TokenFloor`: a byte scan of the charged strings, tens of milliseconds for 10 MB where
/// the exact count takes about a second), and the request is refused, with `admit`'s refusal
/// and headers, as soon as that bound passes what the key's quota or token bucket has left:
/// the rest is neither read nor parsed. When the bound stays within it, the key has no such
/// limit, or the limiter cannot say, nothing is decided here; `admit` decides on the exact
/// count as always. Smaller bodies are read and parsed as before, with no look at the limits.
async fn read_what_the_key_can_pay(
    state: &AppState,
    key: &crate::keys::KeyRecord,
    headers: &HeaderMap,
    request: Request,
) -> Result<CompressBody, ApiError> {
    let mut body = BodyReader::new(request, state)?;
    // `None` until the body is large; then the key's headroom, or nothing to watch.
    let mut watch: Option<Option<Headroom>> = None;
    while body.read_more().await? {
        if body.received().len() <= STANDARD_MAX_BYTES {
            continue;
        }
        let headroom = match &mut watch {
            Some(headroom) => headroom,
            None => watch.insert(Headroom::of(state, key).await),
        };
        let Some(room) = headroom else { continue };
        let at_least = room.scan(body.received());
        if at_least <= room.left {
            continue;
        }
        // A retry owed its stored answer is never refused by the limits; its body is compared.
        if !owed_a_stored_answer(headers, state, key).await {
            // `admit` refuses it with the refusal (and headers) it would give the exact count;
            // if the buckets filled up meanwhile, the admission is given back and the exact
            // count decides.
            drop(admit(state, key, at_least).await?);
        }
        *headroom = None;
    }
    body.parse(state).await
}

/// What a key's quota and token bucket have left, and the running bound on a body's charge.
struct Headroom {
    left: u64,
    floor: TokenFloor,
    /// How many bytes of the body `floor` has read.
    scanned: usize,
}

impl Headroom {
    /// The key's headroom now; `None` when it has no quota or token rate, or the limiter cannot
    /// say.
    async fn of(state: &AppState, key: &crate::keys::KeyRecord) -> Option<Headroom> {
        let status = state
            .limiter
            .status(&state.store, key.id, &state.settings.policy_for(key), state.clock.now())
            .await
            .ok()?;
        let quota_left = status.monthly_limit.map(|limit| limit.saturating_sub(status.used + status.reserved));
        let bucket_left = status.tokens.as_ref().map(|t| t.available.max(0.0).floor() as u64);
        let left = quota_left.into_iter().chain(bucket_left).min()?;
        Some(Headroom { left, floor: TokenFloor::default(), scanned: 0 })
    }

    /// The bound over `received`, the body so far (which starts with what was scanned before).
    fn scan(&mut self, received: &[u8]) -> u64 {
        self.floor.feed(&received[self.scanned..]);
        self.scanned = received.len();
        self.floor.at_least() as u64
    }
}

const MAX_IDEMPOTENCY_KEY_BYTES: usize = 255;

/// The `Idempotency-Key` header: 1 to 255 visible ASCII characters.
fn idempotency_key(headers: &HeaderMap) -> Result<Option<String>, ApiError> {
    let Some(value) = headers.get("idempotency-key") else { return Ok(None) };
    let bytes = value.as_bytes();
    if bytes.is_empty() || bytes.len() > MAX_IDEMPOTENCY_KEY_BYTES || !bytes.iter().all(|b| b.is_ascii_graphic()) {
        return Err(ApiError::InvalidRequest(format!(
            "Idempotency-Key must be 1 to {MAX_IDEMPOTENCY_KEY_BYTES} visible ASCII characters (got {} bytes)",
            bytes.len()
        )));
    }
    Ok(Some(String::from_utf8_lossy(bytes).into_owned()))
}

/// SHA-256 (hex) of what decides a `/compress` answer and its record: the body's fields and
/// the tag headers. A retry must send the same.
fn body_digest(body: &CompressBody, headers: &HeaderMap) -> String {
    use sha2::Digest as _;
    let mut fields = serde_json::json!([
        body.context,
        body.query,
        body.model_id,
        body.target_compression,
        body.target_tokens,
        body.tool_id,
        body.session_id,
        body.metadata,
        header_str(headers, "x-tool-id"),
        header_str(headers, "x-session-id"),
    ]);
    // Fields added later are digested only when present, so that a body without them digests
    // as it did before they existed (answers stored then still match their retries).
    if body.messages.is_some()
        || body.keep_system.is_some()
        || body.keep_last_user.is_some()
        || body.granularity.is_some()
    {
        let later = serde_json::json!([body.messages, body.keep_system, body.keep_last_user, body.granularity]);
        if let Some(all) = fields.as_array_mut() {
            all.push(later);
        }
    }
    let digest = sha2::Sha256::digest(fields.to_string().as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The live answer stored under this `Idempotency-Key`, replayed, if there is one; 422 when it
/// answered another body.
async fn stored_answer(
    state: &AppState,
    key: &crate::keys::KeyRecord,
    idem_key: &str,
    digest: &str,
) -> Result<Option<Response>, ApiError> {
    let since = state.clock.now() - ANSWERS_KEPT_FOR;
    let Some(stored) = state.store.idempotent_answer(key.id, idem_key, since).await? else { return Ok(None) };
    if stored.body_sha256 != digest {
        return Err(ApiError::IdempotencyKeyReused);
    }
    let mut response = replay(stored);
    // Not admitted again, so nothing taken: the headers tell the key's levels now.
    let policy = state.settings.policy_for(key);
    if let Ok(status) = state.limiter.status(&state.store, key.id, &policy, state.clock.now()).await {
        rate_headers(response.headers_mut(), &status);
    }
    Ok(Some(response))
}

/// The stored answer, sent again: same body and `X-Request-Id`, marked as a replay.
fn replay(stored: StoredAnswer) -> Response {
    let mut response = ([(header::CONTENT_TYPE, "application/json")], stored.answer).into_response();
    if let Ok(v) = HeaderValue::from_str(&stored.request_id) {
        response.headers_mut().insert("x-request-id", v);
    }
    response.headers_mut().insert("idempotent-replayed", HeaderValue::from_static("true"));
    response
}

/// The `Idempotency-Key`s of requests running in this process: a second request with the same
/// key waits for no one, it is told to retry (409), so one key is never charged twice here.
#[derive(Clone, Default)]
pub struct InFlight {
    keys: Arc<Mutex<HashSet<(KeyId, String)>>>,
}

/// Releases its key when the request ends, however it ends.
pub struct InFlightGuard {
    keys: Arc<Mutex<HashSet<(KeyId, String)>>>,
    entry: (KeyId, String),
}

impl InFlight {
    fn claim(&self, key_id: KeyId, idem_key: &str) -> Result<InFlightGuard, ApiError> {
        let entry = (key_id, idem_key.to_string());
        if !self.keys.lock().unwrap_or_else(|e| e.into_inner()).insert(entry.clone()) {
            return Err(ApiError::IdempotentRequestInProgress);
        }
        Ok(InFlightGuard { keys: self.keys.clone(), entry })
    }
}

impl Drop for InFlightGuard {
    fn drop(&mut self) {
        self.keys.lock().unwrap_or_else(|e| e.into_inner()).remove(&self.entry);
    }
}

pub const MAX_TAG_BYTES: usize = 256;

/// `tool_id` / `session_id`: at most 256 bytes, stored as given.
fn tag_of(name: &str, value: Option<String>) -> Result<Option<String>, ApiError> {
    match value {
        Some(v) if v.len() > MAX_TAG_BYTES => Err(ApiError::InvalidRequest(format!(
            "{name} must be at most {MAX_TAG_BYTES} bytes (got {} bytes)",
            v.len()
        ))),
        other => Ok(other),
    }
}

const MAX_METADATA_ENTRIES: usize = 32;
const MAX_METADATA_KEY: usize = 64;
const MAX_METADATA_VALUE: usize = 512;

/// Cost-allocation tags, stored as a JSON object of strings.
fn metadata_of(tags: Option<BTreeMap<String, String>>) -> Result<Option<String>, ApiError> {
    let Some(tags) = tags.filter(|t| !t.is_empty()) else { return Ok(None) };
    let refuse = |message: String| Err(ApiError::InvalidRequest(message));
    if tags.len() > MAX_METADATA_ENTRIES {
        return refuse(format!("metadata takes at most {MAX_METADATA_ENTRIES} tags (got {})", tags.len()));
    }
    for (k, v) in &tags {
        if k.is_empty() || k.len() > MAX_METADATA_KEY {
            return refuse(format!("metadata keys must be 1 to {MAX_METADATA_KEY} bytes (got {} bytes)", k.len()));
        }
        if v.len() > MAX_METADATA_VALUE {
            return refuse(format!(
                "metadata value of {k:?} must be at most {MAX_METADATA_VALUE} bytes (got {} bytes)",
                v.len()
            ));
        }
    }
    serde_json::to_string(&tags).map(Some).map_err(|e| ApiError::Internal(e.into()))
}

#[derive(Debug, Deserialize)]
pub struct CountBody {
    pub text: String,
    pub model_id: Option<String>,
}

pub async fn count_tokens(
    State(state): State<AppState>,
    Admissible(key): Admissible<false>,
    ApiJson(body): ApiJson<CountBody>,
) -> Result<(HeaderMap, axum::Json<CountResponse>), ApiError> {
    let model_id = body.model_id.unwrap_or_else(|| DEFAULT_MODEL.to_string());
    check_model_id(&model_id).map_err(ApiError::InvalidRequest)?;
    let admission = admit_request(&state, &key).await?;
    let mut headers = HeaderMap::new();
    rate_headers(&mut headers, &admission.status);
    state.writer.touch(admission);
    let registry = state.registry.clone();
    let bytes = body.text.len();
    let count = move || CountResponse::count(&registry, &model_id, &body.text);
    let response = state.engine_lanes.run(key.id, bytes, count).await?;
    state.last_use.record(key.id, Some(&response.model_id), state.clock.now());
    Ok((headers, axum::Json(response)))
}

#[derive(Debug, Deserialize)]
pub struct ValidateBody {
    pub original: String,
    pub compressed: String,
    pub query: Option<String>,
    /// Which metrics to report in `details` (all when absent); `bertscore` is accepted and
    /// reported as `bertscore_f1: null`.
    pub metrics: Option<Vec<String>>,
}

#[derive(Debug, Serialize)]
pub struct ValidateResponse {
    pub passed: bool,
    pub rouge_l_score: f64,
    /// Not computed: this service runs no embedding model on the request path.
    pub bertscore_f1: Option<f64>,
    pub details: serde_json::Map<String, serde_json::Value>,
}

pub async fn validate(
    State(state): State<AppState>,
    Admissible(key): Admissible<false>,
    ApiJson(body): ApiJson<ValidateBody>,
) -> Result<(HeaderMap, axum::Json<ValidateResponse>), ApiError> {
    let metrics = match &body.metrics {
        None => compress::Metric::ALL.to_vec(),
        Some(names) => names
            .iter()
            .filter(|n| !n.eq_ignore_ascii_case("bertscore"))
            .map(|n| {
                compress::Metric::parse(n).ok_or_else(|| {
                    ApiError::InvalidRequest(format!(
                        "metrics: unknown metric {n:?}; known: rouge-l, unigram_recall, number_retention, \
                         entity_retention, query_coverage, novel_word_rate, length, bertscore"
                    ))
                })
            })
            .collect::<Result<Vec<_>, _>>()?,
    };
    check_query(body.query.as_deref())?;
    let admission = admit_request(&state, &key).await?;
    let mut headers = HeaderMap::new();
    rate_headers(&mut headers, &admission.status);
    state.writer.touch(admission);
    let bytes = body.original.len() + body.compressed.len();
    let run =
        move || compress::validate(&body.original, &body.compressed, body.query.as_deref()).map(|v| v.only(&metrics));
    let v = state.engine_lanes.run(key.id, bytes, run).await??;
    state.last_use.record(key.id, None, state.clock.now());
    Ok((
        headers,
        axum::Json(ValidateResponse {
            passed: v.passed,
            rouge_l_score: v.rouge_l_score,
            bertscore_f1: None,
            details: v.details,
        }),
    ))
}
