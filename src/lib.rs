//! OmniMemory: an LLM-context compression service with API keys, limits, quotas and usage.
//!
//! The engine (`compress`, `tokens`) lives in the `omnimemory-engine` crate and is re-exported
//! here; this crate adds configuration, keys, storage, the HTTP service and the admin CLI.

pub mod admin;
pub(crate) mod alerts;
pub(crate) mod api;
pub mod bench;
pub mod clock;
pub mod config;
pub mod http;
pub(crate) mod keys;
pub(crate) mod limits;
pub mod local;
pub(crate) mod policy;
pub(crate) mod quota;
pub(crate) mod store;
pub(crate) mod usage;

pub use omnimemory_engine::{compress, tokens};
