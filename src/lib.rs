//! alyx: a small, fast, trustworthy server for WebAssembly functions.
//!
//! The crate is a library (so benchmarks and tests reach its parts) plus the
//! `alyx` binary in `main.rs`, which only parses arguments and dispatches.

#![forbid(unsafe_code)]

pub mod cli;
pub mod cmd;
pub mod config;
pub mod crypto;
pub mod data_dir;
pub mod dev;
pub mod discovery;
pub mod echo;
pub mod error;
pub mod form;
pub mod history;
pub mod http;
pub mod invoke;
pub mod janitor;
pub mod journal;
pub mod manifest;
pub mod quote;
pub mod random;
pub mod registry;
pub mod runtime;
pub mod stats;
pub mod sync;
pub mod templates;
#[cfg(test)]
pub(crate) mod testutil;
pub mod tokens;
pub mod triggers;
pub mod units;
pub mod wiring;
