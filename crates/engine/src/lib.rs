//! OmniMemory's engine: token counting (`tokens`), context compression (`compress`) and the
//! answer-retention evaluation (`eval`).
//!
//! Pure and synchronous: no HTTP, no storage, no async runtime, no I/O except reading an
//! optional model-registry file ([`tokens::Registry::load`]) and an evaluation data file
//! ([`eval::load_jsonl`]) when asked to. The service crate wraps it.

pub mod compress;
pub mod eval;
pub mod tokens;
