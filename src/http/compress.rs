//! `POST /compress`, `POST /count-tokens`, `POST /validate`: the engine behind HTTP.

use std::collections::BTreeMap;

use axum::extract::State;
use axum::http::HeaderMap;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::auth::Authenticated;
use super::error::ApiError;
use super::json::ApiJson;
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
            return Err(ApiError::InvalidRequest(
                "target_tokens must be at least 1".into(),
            ));
        }
        return Ok(Budget::Tokens(
            usize::try_from(tokens).unwrap_or(usize::MAX),
        ));
    }
    let ratio = body.target_compression.unwrap_or(DEFAULT_TARGET);
    if !(0.0..1.0).contains(&ratio) {
        return Err(ApiError::InvalidRequest(format!(
            "target_compression must be a number in [0, 1), got {ratio}"
        )));
    }
    Ok(Budget::Ratio(ratio))
}

fn header_str<'a>(headers: &'a HeaderMap, name: &str) -> Option<&'a str> {
    headers
        .get(name)
        .and_then(|v| v.to_str().ok())
        .filter(|v| !v.is_empty())
}

pub async fn compress(
    State(state): State<AppState>,
    Authenticated(_key): Authenticated,
    headers: HeaderMap,
    ApiJson(mut body): ApiJson<CompressBody>,
) -> Result<axum::Json<CompressResponse>, ApiError> {
    let budget = budget_of(&body)?;
    if let Some(tool) = header_str(&headers, "x-tool-id") {
        body.tool_id = Some(tool.to_string());
    }
    if let Some(session) = header_str(&headers, "x-session-id") {
        body.session_id = Some(session.to_string());
    }
    let model_id = body
        .model_id
        .take()
        .unwrap_or_else(|| DEFAULT_MODEL.to_string());
    let encoding = state.registry.resolve(&model_id).encoding;
    let large = body.context.len() > INLINE_LIMIT_BYTES;
    let run = move || {
        let request = CompressRequest {
            context: &body.context,
            query: body.query.as_deref(),
            budget,
        };
        compress::compress(&request, encoding)
    };
    let out = if large {
        run_blocking(run).await?
    } else {
        run()
    };
    let out = out_with_model(out, model_id, encoding);
    Ok(axum::Json(out))
}

async fn run_blocking<T: Send + 'static>(
    f: impl FnOnce() -> T + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f)
        .await
        .map_err(|e| ApiError::Internal(e.into()))
}

fn out_with_model(
    out: compress::Compressed,
    model_id: String,
    encoding: omnimemory_engine::tokens::Encoding,
) -> CompressResponse {
    let compression_ratio = if out.original_tokens == 0 {
        0.0
    } else {
        1.0 - out.compressed_tokens as f64 / out.original_tokens as f64
    };
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
    Authenticated(_key): Authenticated,
    ApiJson(body): ApiJson<CountBody>,
) -> Result<axum::Json<CountResponse>, ApiError> {
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
    Ok(axum::Json(CountResponse {
        token_count,
        model_id,
        tokenizer: encoding.name(),
        strategy_used: encoding.strategy(),
        is_exact: encoding.is_exact(),
        metadata: CountMetadata {
            family: info.family,
            context_window: info.context_window,
            characters,
        },
    }))
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
    Authenticated(_key): Authenticated,
    ApiJson(body): ApiJson<ValidateBody>,
) -> Result<axum::Json<ValidateResponse>, ApiError> {
    let large = body.original.len() + body.compressed.len() > INLINE_LIMIT_BYTES;
    let run = move || compress::validate(&body.original, &body.compressed, body.query.as_deref());
    let v = if large {
        run_blocking(run).await?
    } else {
        run()
    };
    Ok(axum::Json(ValidateResponse {
        passed: v.passed,
        rouge_l_score: v.rouge_l_score,
        bertscore_f1: None,
        details: v.details,
    }))
}
