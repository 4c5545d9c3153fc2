//! The contract's wire types for compression and counting, shared by the HTTP service and the
//! local commands (`omnimemory compress`, `count-tokens`), so both answer the same shape.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use omnimemory_engine::compress::chat::{
    ChatMessage, CompressedMessages, Keep, compress_messages_counted, join_contents, messages_tokens,
};
use omnimemory_engine::compress::{self, Budget, CompressRequest, Granularity};
use omnimemory_engine::tokens::{Encoding, PieceCounter, Registry};

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

/// A `messages` array holds 1 to this many messages.
pub const MAX_MESSAGES: usize = 10_000;
/// A message's `role` is 1 to this many bytes with no control characters.
pub const MAX_ROLE_BYTES: usize = 64;

/// The `/compress` request body. Optional fields accept `null` as absent; unknown fields
/// (those of older clients included) are ignored. Exactly one of `context` and `messages` is
/// given.
#[derive(Debug, Clone, Deserialize)]
pub struct CompressBody {
    pub context: Option<String>,
    /// OpenAI-style `[{"role": "...", "content": "..."}]`; kept as sent until [`Self::job`]
    /// checks each item, so that a refusal names the item (`messages[3].content`) in HTTP and
    /// batch mode alike. Other fields of an item (`name`, …) are ignored.
    pub messages: Option<Vec<serde_json::Value>>,
    /// With `messages`: system and developer messages are kept whole (default true).
    pub keep_system: Option<bool>,
    /// With `messages`: the last `user` message is kept whole (default true).
    pub keep_last_user: Option<bool>,
    pub query: Option<String>,
    pub model_id: Option<String>,
    /// The share of the context's tokens to remove, in [0, 1): 0.75 keeps at most a quarter.
    /// "Ratio" means this share, removed, everywhere in the API (see `compression_ratio`).
    pub target_compression: Option<f64>,
    /// At most this many tokens kept; wins over `target_compression`.
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

    /// Checks what the engine needs and takes it out of the body (`context` or `messages`, and
    /// `query`); the message explains a refusal and names the field.
    pub fn job(&mut self) -> Result<Job, String> {
        let budget = self.budget()?;
        let granularity = self.granularity()?;
        let input = match (self.context.take(), self.messages.take()) {
            (Some(_), Some(_)) => return Err("give either context or messages, not both".into()),
            (None, None) => return Err("context (a string) or messages (an array) is required".into()),
            (Some(context), None) => Input::Context(context),
            (None, Some(items)) => {
                if granularity == Granularity::Word {
                    return Err("granularity \"word\" applies to context only; messages are compressed by whole \
                                messages and sentences"
                        .into());
                }
                let keep =
                    Keep { system: self.keep_system.unwrap_or(true), last_user: self.keep_last_user.unwrap_or(true) };
                Input::Messages { messages: messages_of(items)?, keep }
            }
        };
        Ok(Job { input, query: self.query.take(), budget, granularity })
    }

    /// Compresses with no limits or records: what the local command does.
    pub fn run(mut self, registry: &Registry) -> Result<CompressResponse, String> {
        let job = self.job()?;
        let model_id = check_model_id(self.model_id())?.to_string();
        let encoding = registry.resolve(&model_id).encoding;
        Ok(job.run(encoding, model_id))
    }
}

/// The `messages` items as messages: each an object with a string `role` (1 to
/// [`MAX_ROLE_BYTES`] bytes, no control characters) and a string `content`.
fn messages_of(items: Vec<serde_json::Value>) -> Result<Vec<Message>, String> {
    if items.is_empty() || items.len() > MAX_MESSAGES {
        return Err(format!("messages must hold 1 to {MAX_MESSAGES} messages (got {})", items.len()));
    }
    let kind = |v: &Option<serde_json::Value>| match v {
        None => "missing",
        Some(serde_json::Value::Null) => "null",
        Some(serde_json::Value::Bool(_)) => "a boolean",
        Some(serde_json::Value::Number(_)) => "a number",
        Some(serde_json::Value::String(_)) => "a string",
        Some(serde_json::Value::Array(_)) => "an array",
        Some(serde_json::Value::Object(_)) => "an object",
    };
    items
        .into_iter()
        .enumerate()
        .map(|(i, item)| {
            let serde_json::Value::Object(mut fields) = item else {
                return Err(format!("messages[{i}] must be an object with string role and content"));
            };
            let (role, content) = match (fields.remove("role"), fields.remove("content")) {
                (Some(serde_json::Value::String(r)), Some(serde_json::Value::String(c))) => (r, c),
                (Some(serde_json::Value::String(_)), other) => {
                    return Err(format!("messages[{i}].content must be a string (got {})", kind(&other)));
                }
                (other, _) => return Err(format!("messages[{i}].role must be a string (got {})", kind(&other))),
            };
            if role.is_empty() || role.len() > MAX_ROLE_BYTES || role.chars().any(char::is_control) {
                return Err(format!(
                    "messages[{i}].role must be 1 to {MAX_ROLE_BYTES} bytes with no control characters (got {} bytes)",
                    role.len()
                ));
            }
            Ok(Message { role, content })
        })
        .collect()
}

/// One message of a `messages` array, in a request or an answer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub role: String,
    pub content: String,
}

/// What is compressed: a text, or a conversation.
#[derive(Debug, Clone)]
pub enum Input {
    Context(String),
    Messages { messages: Vec<Message>, keep: Keep },
}

/// A checked `/compress` body, owned, so that it can move to a blocking thread.
#[derive(Debug, Clone)]
pub struct Job {
    pub input: Input,
    pub query: Option<String>,
    pub budget: Budget,
    pub granularity: Granularity,
}

impl Job {
    /// Bytes of the text to compress (the messages' contents).
    pub fn input_bytes(&self) -> usize {
        match &self.input {
            Input::Context(context) => context.len(),
            Input::Messages { messages, .. } => messages.iter().map(|m| m.content.len()).sum(),
        }
    }

    /// The text the engine tokenizes: the context, or the messages' contents a blank line apart
    /// ([`join_contents`]).
    pub fn text(&self) -> Cow<'_, str> {
        match &self.input {
            Input::Context(context) => Cow::Borrowed(context),
            Input::Messages { .. } => Cow::Owned(join_contents(&self.chat())),
        }
    }

    /// The input's tokens, from `counter`, which counted [`text`](Self::text): for messages,
    /// the sum over the contents, each counted on its own. What is reserved and charged.
    pub fn tokens(&self, counter: &PieceCounter<'_>) -> usize {
        match &self.input {
            Input::Context(_) => counter.source_tokens(),
            Input::Messages { .. } => messages_tokens(&self.chat(), counter),
        }
    }

    /// Compresses with `counter`, which counted [`text`](Self::text) (to reserve its tokens):
    /// the engine reuses those pieces instead of tokenizing again.
    pub fn run_counted(&self, counter: &PieceCounter<'_>, encoding: Encoding, model_id: String) -> CompressResponse {
        match &self.input {
            Input::Context(_) => {
                let request = CompressRequest {
                    context: counter.source(),
                    query: self.query.as_deref(),
                    budget: self.budget,
                    granularity: self.granularity,
                };
                CompressResponse::new(compress::compress_counted(&request, counter), model_id, encoding)
            }
            Input::Messages { keep, .. } => {
                let out = compress_messages_counted(&self.chat(), counter, self.query.as_deref(), self.budget, *keep);
                CompressResponse::from_messages(out, model_id, encoding)
            }
        }
    }

    /// [`run`](Self::run) with a gate between counting and compressing: `admit(tokens)` sees
    /// the input's [`tokens`](Self::tokens) and says whether to go on (`None` when it says
    /// no). The input is tokenized once, for both.
    pub fn run_gated(
        &self,
        encoding: Encoding,
        model_id: String,
        admit: impl FnOnce(usize) -> bool,
    ) -> Option<CompressResponse> {
        let text = self.text();
        let counter = PieceCounter::new(encoding, &text);
        admit(self.tokens(&counter)).then(|| self.run_counted(&counter, encoding, model_id))
    }

    pub fn run(&self, encoding: Encoding, model_id: String) -> CompressResponse {
        let go_on = |_| true;
        self.run_gated(encoding, model_id, go_on).expect("a gate that always goes on")
    }

    /// The messages as the engine takes them (empty for a `context`).
    fn chat(&self) -> Vec<ChatMessage<'_>> {
        match &self.input {
            Input::Context(_) => Vec::new(),
            Input::Messages { messages, .. } => {
                messages.iter().map(|m| ChatMessage { role: &m.role, content: &m.content }).collect()
            }
        }
    }
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct CompressResponse {
    pub original_tokens: usize,
    pub compressed_tokens: usize,
    /// The share of the original tokens removed: 1 − compressed / original (0 for an empty
    /// input), the same measure as the request's `target_compression`.
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
    /// For a `messages` request: the kept messages, in input order, roles as sent, each whole or
    /// as a run of its sentences. Absent for a `context` request.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<Message>>,
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
            messages: None,
        }
    }

    /// The answer to a `messages` request: `messages` holds the kept messages; `compressed_text`
    /// their contents joined by a blank line (for clients that read only the text);
    /// `retained_indices` their indices in the input; the token counts are over the contents.
    pub fn from_messages(out: CompressedMessages, model_id: String, encoding: Encoding) -> CompressResponse {
        let retained_indices = out.messages.iter().map(|m| m.0).collect();
        let text = out.messages.iter().map(|m| m.2.as_str()).collect::<Vec<_>>().join("\n\n");
        let messages = out.messages.into_iter().map(|(_, role, content)| Message { role, content }).collect();
        let compressed = compress::Compressed {
            text,
            original_tokens: out.original_tokens,
            compressed_tokens: out.compressed_tokens,
            budget_tokens: out.budget_tokens,
            over_budget: out.over_budget,
            quality_score: out.quality_score,
            content_type: compress::ContentType::Chat,
            retained_indices,
            unchanged: out.unchanged,
        };
        CompressResponse { messages: Some(messages), ..CompressResponse::new(compressed, model_id, encoding) }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn body(json: serde_json::Value) -> CompressBody {
        serde_json::from_value(json).unwrap()
    }

    fn refusal(json: serde_json::Value) -> String {
        body(json).job().expect_err("refused")
    }

    #[test]
    fn exactly_one_of_context_and_messages_is_taken() {
        let both = refusal(serde_json::json!({"context": "a", "messages": [{"role": "user", "content": "b"}]}));
        assert!(both.contains("context") && both.contains("messages"), "{both}");
        let neither = refusal(serde_json::json!({"context": null, "query": "q"}));
        assert!(neither.contains("context") && neither.contains("messages"), "{neither}");
        assert!(refusal(serde_json::json!({"messages": []})).contains("1 to 10000"));
        let many: Vec<_> = (0..=MAX_MESSAGES).map(|_| serde_json::json!({"role": "user", "content": ""})).collect();
        assert!(refusal(serde_json::json!({ "messages": many })).contains("got 10001"));
    }

    #[test]
    fn a_bad_message_is_named_by_its_index_and_field() {
        let ok = serde_json::json!({"role": "user", "content": "hi"});
        let cases = [
            (serde_json::json!({"role": "user"}), "messages[1].content must be a string (got missing)"),
            (serde_json::json!({"role": "user", "content": 3}), "messages[1].content must be a string (got a number)"),
            (serde_json::json!({"content": "x"}), "messages[1].role must be a string (got missing)"),
            (serde_json::json!({"role": null, "content": "x"}), "messages[1].role must be a string (got null)"),
            (serde_json::json!("user: hi"), "messages[1] must be an object"),
            (serde_json::json!({"role": "", "content": "x"}), "messages[1].role must be 1 to 64 bytes"),
            (serde_json::json!({"role": "r".repeat(65), "content": "x"}), "(got 65 bytes)"),
            (serde_json::json!({"role": "us\ner", "content": "x"}), "no control characters"),
        ];
        for (bad, expected) in cases {
            let detail = refusal(serde_json::json!({ "messages": [ok, bad] }));
            assert!(detail.contains(expected), "{detail}");
        }
        let word = refusal(serde_json::json!({"messages": [ok], "granularity": "word"}));
        assert!(word.contains("granularity"), "{word}");
    }

    #[test]
    fn a_context_counted_once_compresses_as_one_counted_twice() {
        let text = "The committee met on Tuesday to review the budget for the new library. \
                    Several members asked about the cost of the roof, which rose by 12 percent. "
            .repeat(6);
        for encoding in [Encoding::Cl100k, Encoding::O200k, Encoding::Approx] {
            let job = body(serde_json::json!({"context": text, "query": "roof cost", "target_compression": 0.6}))
                .job()
                .unwrap();
            let text = job.text();
            assert!(matches!(text, Cow::Borrowed(_)), "a context is tokenized where it is, not copied");
            let counter = PieceCounter::new(encoding, &text);
            assert_eq!(job.tokens(&counter), encoding.count(&text), "{encoding:?}");
            let once = serde_json::to_value(job.run_counted(&counter, encoding, "m".into())).unwrap();
            let twice = serde_json::to_value(job.run(encoding, "m".into())).unwrap();
            assert_eq!(once, twice, "{encoding:?}");
            assert!(once["compressed_tokens"].as_u64() < once["original_tokens"].as_u64(), "{once}");
            // Gated: the gate sees the same count, and a refusal compresses nothing.
            let mut seen = 0;
            let gated = job.run_gated(encoding, "m".into(), |n| {
                seen = n;
                true
            });
            assert_eq!(serde_json::to_value(gated.unwrap()).unwrap(), twice, "{encoding:?}");
            assert_eq!(seen, encoding.count(&text));
            assert!(job.run_gated(encoding, "m".into(), |_| false).is_none());
        }
    }

    #[test]
    fn the_charged_count_is_the_engines_over_the_contents() {
        let long = "The committee met on Tuesday to review the budget for the new library. \
                    Several members asked about the cost of the roof, which rose by 12 percent. ";
        let messages = serde_json::json!([
            {"role": "system", "content": "You answer questions about the town council."},
            {"role": "user", "content": long.repeat(4)},
            {"role": "assistant", "content": long.repeat(3)},
            {"role": "user", "content": "How much did the roof cost rise?"},
        ]);
        for encoding in [Encoding::Cl100k, Encoding::O200k, Encoding::Approx] {
            let job = body(serde_json::json!({"messages": messages, "target_compression": 0.5})).job().unwrap();
            let out = job.run(encoding, "m".into());
            let each: usize = ["You answer questions about the town council.", "How much did the roof cost rise?"]
                .iter()
                .map(|c| encoding.count(c))
                .sum::<usize>()
                + encoding.count(&long.repeat(4))
                + encoding.count(&long.repeat(3));
            assert_eq!(out.original_tokens, each, "{encoding:?}");
            // Counted once for the reservation, then compressed with the same pieces: the same answer.
            let text = job.text();
            let counter = PieceCounter::new(encoding, &text);
            assert_eq!(job.tokens(&counter), each, "{encoding:?}");
            let once = serde_json::to_value(job.run_counted(&counter, encoding, "m".into())).unwrap();
            assert_eq!(once, serde_json::to_value(&out).unwrap(), "{encoding:?}");
            assert!(out.compressed_tokens <= out.budget_tokens, "{out:?}");
            assert_eq!(out.content_type, "chat");
            let kept = out.messages.as_ref().unwrap();
            assert_eq!(kept.len(), out.retained_indices.len());
            assert_eq!(kept[0].content, "You answer questions about the town council.");
            assert_eq!(kept.last().unwrap().content, "How much did the roof cost rise?");
            let joined: Vec<&str> = kept.iter().map(|m| m.content.as_str()).collect();
            assert_eq!(out.compressed_text, joined.join("\n\n"));
        }
        let context = body(serde_json::json!({"context": "Short."})).job().unwrap();
        let out = context.run(Encoding::Cl100k, "m".into());
        assert!(out.messages.is_none());
        assert!(serde_json::to_value(&out).unwrap().get("messages").is_none());
    }
}
