//! Black-box tests: the real binary, a temporary data folder, HTTP and the CLI.

mod admin_cli;
mod alerts;
mod backup;
mod compat;
mod compress_api;
mod compress_messages;
mod dashboard;
mod docs;
mod engine_work;
mod foundation;
mod hardening;
mod harness;
mod last_use;
mod layers;
mod limits;
mod local_cli;
mod openapi;
mod rotation;
mod scale_out;
mod usage_export;
