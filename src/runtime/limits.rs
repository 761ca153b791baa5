//! The resource limits of one plugin, each default documented where it is set.
//!
//! Limits are fixed when a plugin is compiled and shared by all its instances.

use std::time::Duration;

/// Hard limits applied to every call of a plugin.
#[derive(Debug, Clone, PartialEq)]
pub struct Limits {
    /// Wall-clock budget of one call, covering instantiation and guest
    /// initialisers when they happen in that call. `None` = unlimited.
    pub timeout: Option<Duration>,
    /// Optional deterministic budget of wasmi fuel units per call (roughly one
    /// per executed instruction). `None` = only the wall clock applies.
    pub fuel: Option<u64>,
    /// Cap on each linear memory of the plugin, in bytes, and separately on
    /// the kernel arena (Extism memory).
    pub memory_bytes: u64,
    /// Cap on the output of one call.
    pub max_output_bytes: u64,
    /// Cap on the total size of the vars (key + value bytes); 0 disables
    /// `var_set`.
    pub max_var_bytes: u64,
    /// Cap on one outbound HTTP response body.
    pub max_http_response_bytes: u64,
    /// Cap on the log text captured per call (plugin logs and WASI stdio).
    pub max_log_bytes: usize,
    /// Maximum nesting of Wasm calls before a stack-overflow trap.
    pub max_recursion_depth: usize,
    /// Maximum value-stack height (in slots) before a stack-overflow trap.
    pub max_stack_height: usize,
}

/// 256 MiB: the reference design's `memory: 256mb` default.
pub const DEFAULT_MEMORY_BYTES: u64 = 256 << 20;

impl Default for Limits {
    fn default() -> Limits {
        Limits {
            // 30 s: the reference design's per-call context timeout.
            timeout: Some(Duration::from_secs(30)),
            fuel: None,
            memory_bytes: DEFAULT_MEMORY_BYTES,
            // 64 MiB: far above any JSON answer, far below the host's memory.
            max_output_bytes: 64 << 20,
            // 1 MiB: the Extism default for `max_var_bytes`.
            max_var_bytes: 1 << 20,
            // 50 MiB: the Extism default for `max_http_response_bytes`.
            max_http_response_bytes: 50 << 20,
            // 64 KiB of log text per call is plenty to debug, small to keep.
            max_log_bytes: 64 << 10,
            // wasmi's own defaults (1000 frames, 1M value slots): a clean
            // trap for runaway recursion; raise them for deeply recursive code.
            max_recursion_depth: 1000,
            max_stack_height: 1_000_000,
        }
    }
}
