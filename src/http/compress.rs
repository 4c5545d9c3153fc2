//! `POST /compress`, `POST /count-tokens`, `POST /validate`: the engine behind HTTP.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue};
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Authenticated;
use super::error::ApiError;
use super::json::ApiJson;
use super::limits::{admit, rate_headers};
use crate::usage::UsageRecord;
use omnimemory_engine::compress::{self, Budget, CompressRequest};

const DEFAULT_MODEL: &str = "gpt-4";
const DEFAULT_TARGET: f64 = 0.944;
/// Above this many bytes a compression runs on the blocking pool, off the async executor.
const INLINE_LIMIT_BYTES: usize = 32 * 1024;

/// The request body. Optional fields accept `null` as absent; unknown fields are ignored.
#[derive(Debug, Deserialize)]
pub struct CompressBody {
    pub context: String,
    pub query: Option<String>,
    pub model_id: Option<String>,
    pub target_compression: Option<f64>,
    pub target_tokens: Option<u64>,
    pub tool_id: Option<String>,
    pub session_id: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
}

#[derive(Debug, Serialize)]
pub struct CompressResponse {
    pub original_tokens: usize,
    pub compressed_tokens: usize,
    pub compression_ratio: f64,
    pub quality_score: f64,
    pub compressed_text: String,
    pub model_id: String,
    pub content_type: &'static str,
    pub tokenizer: &'static str,
    pub is_exact_tokenization: bool,
    pub tokenizer_strategy: &'static str,
    pub retained_indices: Vec<usize>,
    /// The budget the request asked for, in tokens.
    pub budget_tokens: usize,
    /// True when the protected content alone exceeded the budget and was kept anyway.
    pub over_budget: bool,
}

/// Parses the budget fields into the engine's `Budget`.
fn budget_of(body: &CompressBody) -> Result<Budget, ApiError> {
    if let Some(tokens) = body.target_tokens {
        if tokens == 0 {
            return Err(ApiError::InvalidRequest("target_tokens must be at least 1".into()));
        }
        return Ok(Budget::Tokens(usize::try_from(tokens).unwrap_or(usize::MAX)));
    }
    let ratio = body.target_compression.unwrap_or(DEFAULT_TARGET);
    if !(0.0..1.0).contains(&ratio) {
        return Err(ApiError::InvalidRequest(format!("target_compression must be a number in [0, 1), got {ratio}")));
    }
    Ok(Budget::Ratio(ratio))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers.get(name).and_then(|v| v.to_str().ok()).filter(|v| !v.is_empty())
}

pub async fn compress(
    State(state): State<AppState>,
    Authenticated(key): Authenticated,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<CompressBody>,
) -> Result<(HeaderMap, axum::Json<CompressResponse>), ApiError> {
    let budget = budget_of(&body)?;
    let metadata = metadata_of(body.metadata.take())?;
    let tool_id = header_str(&headers, "x-tool-id").map(str::to_string).or(body.tool_id.take());
    let session_id = header_str(&headers, "x-session-id").map(str::to_string).or(body.session_id.take());
    let model_id = body.model_id.take().unwrap_or_else(|| DEFAULT_MODEL.to_string());
    let encoding = state.registry.resolve(&model_id).encoding;
    let large = body.context.len() > INLINE_LIMIT_BYTES;

    let original_tokens = if large {
        let context = body.context.clone();
        run_blocking(move || encoding.count(&context)).await?
    } else {
        encoding.count(&body.context)
    };
    let admission = admit(&state, &key, original_tokens as u64, true).await?;
    let timestamp = state.clock.now();

    let run = move || {
        let request = CompressRequest { context: &body.context, query: body.query.as_deref(), budget };
        compress::compress(&request, encoding)
    };
    let out = if large { run_blocking(run).await? } else { run() };
    let response = response_of(out, model_id, encoding);

    let request_id = format!("{:032x}", rand::random::<u128>());
    let record = UsageRecord {
        request_id: request_id.clone(),
        api_key: key.public_id.clone(),
        key_id: key.id,
        user_id: key.user_id.clone(),
        operation: "compress",
        original_tokens: original_tokens as u64,
        compressed_tokens: response.compressed_tokens as u64,
        model_id: response.model_id.clone(),
        compression_ratio: response.compression_ratio,
        quality_score: Some(response.quality_score),
        tool_id,
        session_id,
        metadata,
        timestamp,
    };
    let mut out_headers = HeaderMap::new();
    rate_headers(&mut out_headers, &admission.status);
    state.writer.record(record, admission).await?;
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        out_headers.insert("x-request-id", v);
    }
    Ok((out_headers, axum::Json(response)))
}

const MAX_METADATA_ENTRIES: usize = 32;
const MAX_METADATA_KEY: usize = 64;
const MAX_METADATA_VALUE: usize = 512;

/// Cost-allocation tags, stored as a JSON object of strings.
fn metadata_of(tags: Option<BTreeMap<String, String>>) -> Result<Option<String>, ApiError> {
    let Some(tags) = tags.filter(|t| !t.is_empty()) else { return Ok(None) };
    let fits = tags.len() <= MAX_METADATA_ENTRIES
        && tags.iter().all(|(k, v)| !k.is_empty() && k.len() <= MAX_METADATA_KEY && v.len() <= MAX_METADATA_VALUE);
    if !fits {
        return Err(ApiError::InvalidRequest(format!(
            "metadata takes at most {MAX_METADATA_ENTRIES} tags, keys of 1 to {MAX_METADATA_KEY} bytes, \
             values of at most {MAX_METADATA_VALUE} bytes"
        )));
    }
    serde_json::to_string(&tags).map(Some).map_err(|e| ApiError::Internal(e.into()))
}

async fn run_blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| ApiError::Internal(e.into()))
}

fn response_of(
    out: compress::Compressed,
    model_id: String,
    encoding: omnimemory_engine::tokens::Encoding,
) -> CompressResponse {
    let compression_ratio =
        if out.original_tokens == 0 { 0.0 } else { 1.0 - out.compressed_tokens as f64 / out.original_tokens as f64 };
    CompressResponse {
        original_tokens: out.original_tokens,
        compressed_tokens: out.compressed_tokens,
        compression_ratio,
        quality_score: out.quality_score,
        compressed_text: out.text,
        model_id,
        content_type: out.content_type.as_str(),
        tokenizer: encoding.name(),
        is_exact_tokenization: encoding.is_exact(),
        tokenizer_strategy: encoding.strategy(),
        retained_indices: out.retained_indices,
        budget_tokens: out.budget_tokens,
        over_budget: out.over_budget,
    }
}

#[derive(Debug, Deserialize)]
pub struct CountBody {
    pub text: String,
    pub model_id: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct CountResponse {
    pub token_count: usize,
    pub model_id: String,
    pub tokenizer: &'static str,
    pub strategy_used: &'static str,
    pub is_exact: bool,
    pub metadata: CountMetadata,
}

#[derive(Debug, Serialize)]
pub struct CountMetadata {
    pub family: String,
    pub context_window: u32,
    pub characters: usize,
}

pub async fn count_tokens(
    State(state): State<AppState>,
    Authenticated(key): Authenticated,
    ApiJson(body): ApiJson<CountBody>,
) -> Result<(HeaderMap, axum::Json<CountResponse>), ApiError> {
    let admission = admit(&state, &key, 0, false).await?;
    let mut headers = HeaderMap::new();
    rate_headers(&mut headers, &admission.status);
    state.writer.touch(admission);
    let model_id = body.model_id.unwrap_or_else(|| DEFAULT_MODEL.to_string());
    let info = state.registry.resolve(&model_id);
    let encoding = info.encoding;
    let text = body.text;
    let characters = text.chars().count();
    let token_count = if text.len() > INLINE_LIMIT_BYTES {
        run_blocking(move || encoding.count(&text)).await?
    } else {
        encoding.count(&text)
    };
    Ok((
        headers,
        axum::Json(CountResponse {
            token_count,
            model_id,
            tokenizer: encoding.name(),
            strategy_used: encoding.strategy(),
            is_exact: encoding.is_exact(),
            metadata: CountMetadata { family: info.family, context_window: info.context_window, characters },
        }),
    ))
}

#[derive(Debug, Deserialize)]
pub struct ValidateBody {
    pub original: String,
    pub compressed: String,
    pub query: Option<String>,
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
    Authenticated(key): Authenticated,
    ApiJson(body): ApiJson<ValidateBody>,
) -> Result<(HeaderMap, axum::Json<ValidateResponse>), ApiError> {
    let admission = admit(&state, &key, 0, false).await?;
    let mut headers = HeaderMap::new();
    rate_headers(&mut headers, &admission.status);
    state.writer.touch(admission);
    let large = body.original.len() + body.compressed.len() > INLINE_LIMIT_BYTES;
    let run = move || compress::validate(&body.original, &body.compressed, body.query.as_deref());
    let v = if large { run_blocking(run).await? } else { run() };
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
