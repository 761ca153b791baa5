//! The plugin runtime: runs unmodified Extism plugins on the wasmi
//! interpreter with hard limits. This folder is the only code that talks to
//! wasmi, so an upgrade touches nothing else.
//!
//! Data path: [`PluginSpec`] → [`Plugin::compile`] (validate, link) →
//! [`Pool`] of [`Instance`]s (bounded, reused; the registry swaps whole
//! versions that hold one) → [`Instance::call`] → [`CallReport`].

mod binary;
mod error;
mod host_env;
mod hosts;
mod instance;
mod kernel;
mod limits;
mod outbound;
mod plugin;
mod pool;
mod signature;
mod state;
mod user;
mod wasi;

pub use error::{Error, MemoryLimit, TimeLimit};
pub use hosts::check_pattern as check_host_pattern;
pub use instance::{CallReport, Instance};
pub use limits::{DEFAULT_MEMORY_BYTES, Limits};
pub use outbound::HttpClient;
pub use plugin::{ModuleSource, Plugin, PluginSpec, Reread};
pub use pool::{Pool, PoolStats};
pub use signature::Signature;
pub use state::{LogLevel, LogLine, Vars};
pub use user::{HostCall, HostFunction, USER_MODULE, Value, ValueType};

/// Every function the host gives plugins without configuration, as
/// `(module, functions)`: the Extism ABI and WASI preview 1. For tools that
/// generate plugins (the fuzz tests import from these).
pub const HOST_IMPORTS: [(&str, &[Signature]); 2] =
    [(host_env::MODULE, host_env::SIGNATURES), (wasi::MODULE, wasi::SIGNATURES)];
