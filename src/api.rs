//! The contract's wire types for compression and counting, shared by the HTTP service and the
//! local commands (`omnimemory compress`, `count-tokens`), so both answer the same shape.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use omnimemory_engine::compress::{self, Budget, CompressRequest, Granularity};
use omnimemory_engine::tokens::{Encoding, Registry};

pub const DEFAULT_MODEL: &str = "gpt-4";
pub const DEFAULT_TARGET: f64 = 0.944;
/// `model_id` is echoed in every answer and stored in every usage record.
pub const MAX_MODEL_ID_BYTES: usize = 128;

/// A `model_id` as given, if it is 1 to [`MAX_MODEL_ID_BYTES`] bytes with no control
/// characters; the message names the field and the bound.
pub fn check_model_id(model_id: &str) -> Result<&str, String> {
    if model_id.is_empty() || model_id.len() > MAX_MODEL_ID_BYTES || model_id.chars().any(char::is_control) {
        return Err(format!(
            "model_id must be 1 to {MAX_MODEL_ID_BYTES} bytes with no control characters (got {} bytes)",
            model_id.len()
        ));
    }
    Ok(model_id)
}

/// The `/compress` request body. Optional fields accept `null` as absent; unknown fields
/// (those of older clients included) are ignored.
#[derive(Debug, Clone, Deserialize)]
pub struct CompressBody {
    pub context: String,
    pub query: Option<String>,
    pub model_id: Option<String>,
    pub target_compression: Option<f64>,
    pub target_tokens: Option<u64>,
    pub tool_id: Option<String>,
    pub session_id: Option<String>,
    pub metadata: Option<BTreeMap<String, String>>,
    /// `"sentence"` (default: whole sentences, lines, items, rows) or `"word"` (opt-in word
    /// pruning inside sentences).
    pub granularity: Option<String>,
}

impl CompressBody {
    /// The budget fields as the engine's `Budget`; the message explains a refusal.
    pub fn budget(&self) -> Result<Budget, String> {
        if let Some(tokens) = self.target_tokens {
            if tokens == 0 {
                return Err("target_tokens must be at least 1".into());
            }
            return Ok(Budget::Tokens(usize::try_from(tokens).unwrap_or(usize::MAX)));
        }
        let ratio = self.target_compression.unwrap_or(DEFAULT_TARGET);
        if !(0.0..1.0).contains(&ratio) {
            return Err(format!("target_compression must be a number in [0, 1), got {ratio}"));
        }
        Ok(Budget::Ratio(ratio))
    }

    /// The `granularity` field as the engine's `Granularity`; the message explains a refusal.
    pub fn granularity(&self) -> Result<Granularity, String> {
        match self.granularity.as_deref() {
            None | Some("sentence") => Ok(Granularity::Sentence),
            Some("word") => Ok(Granularity::Word),
            Some(other) => Err(format!("granularity must be \"sentence\" or \"word\", got {other:?}")),
        }
    }

    pub fn model_id(&self) -> &str {
        self.model_id.as_deref().unwrap_or(DEFAULT_MODEL)
    }

    /// Compresses with no limits or records: what the local command does.
    pub fn run(&self, registry: &Registry) -> Result<CompressResponse, String> {
        let budget = self.budget()?;
        let granularity = self.granularity()?;
        check_model_id(self.model_id())?;
        let encoding = registry.resolve(self.model_id()).encoding;
        let request = CompressRequest { context: &self.context, query: self.query.as_deref(), budget, granularity };
        Ok(CompressResponse::new(compress::compress(&request, encoding), self.model_id().to_string(), encoding))
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompressResponse {
    pub original_tokens: usize,
    pub compressed_tokens: usize,
    pub compression_ratio: f64,
    pub quality_score: f64,
    pub compressed_text: String,
    pub model_id: String,
    pub content_type: String,
    pub tokenizer: String,
    pub is_exact_tokenization: bool,
    pub tokenizer_strategy: String,
    pub retained_indices: Vec<usize>,
    /// The budget the request asked for, in tokens.
    pub budget_tokens: usize,
    /// True when the protected content alone exceeded the budget and was kept anyway.
    pub over_budget: bool,
    /// True when the text came back as it was sent: blank, under 16 tokens, or already within
    /// the budget.
    pub unchanged: bool,
}

impl CompressResponse {
    pub fn new(out: compress::Compressed, model_id: String, encoding: Encoding) -> CompressResponse {
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
            content_type: out.content_type.as_str().to_string(),
            tokenizer: encoding.name().to_string(),
            is_exact_tokenization: encoding.is_exact(),
            tokenizer_strategy: encoding.strategy().to_string(),
            retained_indices: out.retained_indices,
            budget_tokens: out.budget_tokens,
            over_budget: out.over_budget,
            unchanged: out.unchanged,
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CountResponse {
    pub token_count: usize,
    pub model_id: String,
    pub tokenizer: String,
    pub strategy_used: String,
    pub is_exact: bool,
    pub metadata: CountMetadata,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CountMetadata {
    pub family: String,
    pub context_window: u32,
    pub characters: usize,
}

impl CountResponse {
    pub fn count(registry: &Registry, model_id: &str, text: &str) -> CountResponse {
        let info = registry.resolve(model_id);
        let encoding = info.encoding;
        CountResponse {
            token_count: encoding.count(text),
            model_id: model_id.to_string(),
            tokenizer: encoding.name().to_string(),
            strategy_used: encoding.strategy().to_string(),
            is_exact: encoding.is_exact(),
            metadata: CountMetadata {
                family: info.family,
                context_window: info.context_window,
                characters: text.chars().count(),
            },
        }
    }
}
