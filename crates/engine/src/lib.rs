//! OmniMemory's engine: token counting (`tokens`) and context compression (`compress`).
//!
//! Pure and synchronous: no HTTP, no storage, no async runtime, no I/O except reading
//! an optional model-registry file when asked to. The service crate wraps it.

pub mod compress;
pub mod eval;
pub mod tokens;
