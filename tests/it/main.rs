//! Black-box tests: the real binary, a temporary data folder, HTTP and the CLI.

mod admin_cli;
mod foundation;
mod harness;
mod limits;
