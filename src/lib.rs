//! OmniMemory: an LLM-context compression service with API keys, limits, quotas and usage.
//!
//! The engine (`compress`, `tokens`) lives in the `omnimemory-engine` crate and is re-exported
//! here; this crate adds configuration, keys, storage, the HTTP service and the admin CLI.

pub mod admin;
pub mod alerts;
pub mod api;
pub mod bench;
pub mod clock;
pub mod config;
pub mod http;
pub mod keys;
pub mod limits;
pub mod local;
pub mod policy;
pub mod quota;
pub mod store;
pub mod usage;

pub use omnimemory_engine::{compress, tokens};
