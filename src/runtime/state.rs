//! What host functions see: the state kept in each wasmi `Store` (kernel,
//! deadline, captured logs, last HTTP response, memory limiter) and the state
//! shared by all instances of a plugin (config, vars, policy).

use std::collections::{BTreeMap, HashMap};
use std::sync::{Arc, Mutex};
use std::time::{Instant, SystemTime};

use wasmi_core::LimiterError;

use super::error::{HostError, MemoryLimit};
use super::hosts::AllowedHosts;
use super::kernel::Kernel;
use super::limits::Limits;
use super::outbound::HttpClient;

/// Log levels, numbered as `get_log_level` reports them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum LogLevel {
    Trace = 0,
    Debug = 1,
    Info = 2,
    Warn = 3,
    Error = 4,
    /// Nothing is logged; `get_log_level` answers `i32::MAX`.
    Off = 5,
}

impl LogLevel {
    /// The value `get_log_level` returns for this threshold.
    pub fn abi_value(self) -> i32 {
        match self {
            LogLevel::Off => i32::MAX,
            level => level as i32,
        }
    }

    pub fn parse(text: &str) -> Result<LogLevel, String> {
        match text.to_ascii_lowercase().as_str() {
            "trace" => Ok(LogLevel::Trace),
            "debug" => Ok(LogLevel::Debug),
            "info" => Ok(LogLevel::Info),
            "warn" | "warning" => Ok(LogLevel::Warn),
            "error" => Ok(LogLevel::Error),
            "off" | "none" => Ok(LogLevel::Off),
            other => Err(format!("unknown log level {other:?} (use trace, debug, info, warn, error or off)")),
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            LogLevel::Trace => "trace",
            LogLevel::Debug => "debug",
            LogLevel::Info => "info",
            LogLevel::Warn => "warn",
            LogLevel::Error => "error",
            LogLevel::Off => "off",
        }
    }
}

/// One line a plugin logged (through `log_*` or WASI stdout/stderr).
#[derive(Debug, Clone, PartialEq)]
pub struct LogLine {
    pub level: LogLevel,
    pub message: String,
    pub timestamp: SystemTime,
}

/// A WASI output stream of the plugin, captured as log lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stream {
    Stdout,
    Stderr,
}

impl Stream {
    /// The level a stream's lines are logged at, defined here only: stdout
    /// is the plugin's ordinary output, stderr its complaints.
    pub fn level(self) -> LogLevel {
        match self {
            Stream::Stdout => LogLevel::Info,
            Stream::Stderr => LogLevel::Warn,
        }
    }

    fn index(self) -> usize {
        self as usize
    }
}

/// The lines of one call, bounded in total size; partial WASI lines are
/// buffered per stream until a newline or the end of the call.
#[derive(Debug, Default)]
pub struct LogSink {
    lines: Vec<LogLine>,
    bytes: usize,
    dropped: usize,
    partial: [Vec<u8>; 2],
}

impl LogSink {
    /// Records a line unless the byte budget is spent (then counts it).
    pub fn push(&mut self, level: LogLevel, message: String, max_bytes: usize) {
        if self.bytes + message.len() > max_bytes {
            self.dropped += 1;
            return;
        }
        self.bytes += message.len();
        self.lines.push(LogLine { level, message, timestamp: SystemTime::now() });
    }

    /// Appends WASI output of `stream`, one line per newline, at its level.
    pub fn write_stream(&mut self, stream: Stream, bytes: &[u8], max: usize) {
        let partial = &mut self.partial[stream.index()];
        partial.extend_from_slice(bytes);
        let mut lines = Vec::new();
        while let Some(pos) = partial.iter().position(|b| *b == b'\n') {
            let line: Vec<u8> = partial.drain(..=pos).collect();
            lines.push(String::from_utf8_lossy(&line[..line.len() - 1]).into_owned());
        }
        if partial.len() > max {
            lines.push(String::from_utf8_lossy(partial).into_owned());
            partial.clear();
        }
        for text in lines {
            self.push(stream.level(), text, max);
        }
    }

    /// Flushes partial stream lines and returns everything logged.
    pub fn take(&mut self, max: usize) -> Vec<LogLine> {
        for stream in [Stream::Stdout, Stream::Stderr] {
            let partial = std::mem::take(&mut self.partial[stream.index()]);
            if !partial.is_empty() {
                self.push(stream.level(), String::from_utf8_lossy(&partial).into_owned(), max);
            }
        }
        if self.dropped > 0 {
            let note = format!("[alyx: {} log lines dropped, log cap reached]", self.dropped);
            self.lines.push(LogLine { level: LogLevel::Warn, message: note, timestamp: SystemTime::now() });
        }
        self.bytes = 0;
        self.dropped = 0;
        std::mem::take(&mut self.lines)
    }
}

/// The vars of one function: shared by all its instances, size-capped.
#[derive(Debug, Default)]
pub struct Vars {
    inner: Mutex<VarMap>,
}

#[derive(Debug, Default)]
struct VarMap {
    map: HashMap<String, Vec<u8>>,
    bytes: u64,
}

/// Why a `var_set` was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VarError {
    Disabled,
    Full,
}

impl Vars {
    pub fn new() -> Arc<Vars> {
        Arc::new(Vars::default())
    }

    pub fn get(&self, key: &str) -> Option<Vec<u8>> {
        self.lock().map.get(key).cloned()
    }

    /// Sets (or with `None` removes) a var. Accounting: key + value bytes of
    /// every entry; refused when the new total would exceed `max_bytes`.
    pub fn set(&self, key: &str, value: Option<&[u8]>, max_bytes: u64) -> Result<(), VarError> {
        if max_bytes == 0 {
            return Err(VarError::Disabled);
        }
        let mut vars = self.lock();
        let old = vars.map.get(key).map_or(0, |v| (key.len() + v.len()) as u64);
        let new = value.map_or(0, |v| (key.len() + v.len()) as u64);
        let total = vars.bytes - old + new;
        if total > max_bytes {
            return Err(VarError::Full);
        }
        vars.bytes = total;
        match value {
            Some(v) => vars.map.insert(key.to_string(), v.to_vec()),
            None => vars.map.remove(key),
        };
        Ok(())
    }

    /// Total key + value bytes stored.
    pub fn bytes(&self) -> u64 {
        self.lock().bytes
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, VarMap> {
        // A panic while holding this lock cannot leave the map half-updated
        // (every update is a single insert/remove), so poisoning is ignored.
        crate::sync::lock(&self.inner)
    }
}

/// What every instance of one plugin shares, fixed at compile time.
#[derive(Debug)]
pub struct Shared {
    pub name: String,
    pub limits: Limits,
    pub config: BTreeMap<String, String>,
    pub allowed_hosts: AllowedHosts,
    pub http: Arc<HttpClient>,
    pub http_response_headers: bool,
    pub log_level: LogLevel,
}

/// Caps every linear memory of an instance and records when the cap refused
/// a growth, so a resulting trap is reported as a memory limit. It also
/// counts the bytes of all linear memories of the store: wasmi asks it
/// before creating or growing any memory (exported or not, in every linked
/// module), and tells it when an allowed growth then failed (out of fuel,
/// which a fuel slice retries, or out of host memory).
#[derive(Debug)]
pub struct Limiter {
    pub memory_bytes: u64,
    pub hit: bool,
    linear_bytes: u64,
    /// The last growth allowed, taken back if wasmi reports it failed.
    pending: u64,
}

impl Limiter {
    pub fn new(memory_bytes: u64) -> Limiter {
        Limiter { memory_bytes, hit: false, linear_bytes: 0, pending: 0 }
    }

    /// Bytes of all linear memories of the store, as they are now.
    pub fn linear_bytes(&self) -> u64 {
        self.linear_bytes
    }
}

/// Table elements one table may grow to (a table bomb is not a memory leak
/// the memory cap would see).
const MAX_TABLE_ELEMENTS: usize = 1 << 20;

/// Instances, tables and memories one store may hold (wasmi's default).
const MAX_PER_STORE: usize = 10_000;

impl wasmi::ResourceLimiter for Limiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        let allowed = desired as u64 <= self.memory_bytes;
        self.hit |= !allowed;
        if allowed {
            self.pending = desired.saturating_sub(current) as u64;
            self.linear_bytes += self.pending;
        }
        Ok(allowed)
    }

    fn memory_grow_failed(&mut self, _error: &wasmi::errors::MemoryError) -> Result<(), LimiterError> {
        self.linear_bytes -= std::mem::take(&mut self.pending);
        Ok(())
    }

    fn table_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> Result<bool, LimiterError> {
        Ok(desired <= MAX_TABLE_ELEMENTS)
    }

    // One store holds one plugin instance: its modules, tables and memories.
    fn instances(&self) -> usize {
        MAX_PER_STORE
    }

    fn tables(&self) -> usize {
        MAX_PER_STORE
    }

    fn memories(&self) -> usize {
        MAX_PER_STORE
    }
}

/// The data of one wasmi `Store`: one plugin instance.
#[derive(Debug)]
pub struct HostState {
    pub kernel: Kernel,
    pub shared: Arc<Shared>,
    pub vars: Arc<Vars>,
    pub limiter: Limiter,
    pub deadline: Option<Instant>,
    pub logs: LogSink,
    pub http_status: u16,
    pub http_headers: Option<BTreeMap<String, String>>,
}

impl HostState {
    pub fn new(shared: Arc<Shared>, vars: Arc<Vars>) -> HostState {
        let memory_bytes = shared.limits.memory_bytes;
        HostState {
            kernel: Kernel::new(memory_bytes),
            shared,
            vars,
            limiter: Limiter::new(memory_bytes),
            deadline: None,
            logs: LogSink::default(),
            http_status: 0,
            http_headers: None,
        }
    }

    /// Logs a plugin line if the threshold lets it through.
    pub fn log(&mut self, level: LogLevel, message: String) {
        if level >= self.shared.log_level && self.shared.log_level != LogLevel::Off {
            let max = self.shared.limits.max_log_bytes;
            self.logs.push(level, message, max);
        }
    }

    /// Fails with a timeout if the call's deadline has passed.
    pub fn check_deadline(&self) -> Result<(), HostError> {
        match self.deadline {
            Some(d) if Instant::now() >= d => Err(HostError::Timeout),
            _ => Ok(()),
        }
    }

    /// Time left before the deadline (`None` = no deadline).
    pub fn remaining(&self) -> Option<std::time::Duration> {
        self.deadline.map(|d| d.saturating_duration_since(Instant::now()))
    }

    /// Copies bytes into a new kernel block, failing on the arena cap.
    pub fn alloc_bytes(&mut self, function: &str, bytes: &[u8]) -> Result<u64, HostError> {
        if bytes.is_empty() {
            return Ok(0);
        }
        match self.kernel.alloc_bytes(bytes) {
            0 => {
                log::debug!("{}: {function}: Extism memory cap reached", self.shared.name);
                Err(HostError::MemoryLimit(MemoryLimit::Kernel))
            }
            handle => Ok(handle),
        }
    }

    /// The bytes of a block passed to a host function; a non-zero handle
    /// that is not a live block is an error naming the function.
    pub fn read_block(&self, function: &str, handle: u64) -> Result<Vec<u8>, HostError> {
        self.kernel.block(handle).map(<[u8]>::to_vec).ok_or_else(|| HostError::bad_handle(function, handle))
    }

    /// Like [`HostState::read_block`], as UTF-8 text.
    pub fn read_text(&self, function: &str, handle: u64) -> Result<String, HostError> {
        let bytes = self.read_block(function, handle)?;
        String::from_utf8(bytes).map_err(|_| HostError::failed(function, "argument is not UTF-8"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vars_count_key_and_value_bytes() {
        let vars = Vars::default();
        vars.set("ab", Some(b"1234"), 10).unwrap();
        assert_eq!(vars.bytes(), 6);
        assert_eq!(vars.set("cd", Some(b"12345"), 10), Err(VarError::Full));
        vars.set("ab", Some(b"12345678"), 10).unwrap();
        assert_eq!(vars.bytes(), 10);
        vars.set("ab", None, 10).unwrap();
        assert_eq!((vars.bytes(), vars.get("ab")), (0, None));
    }

    #[test]
    fn vars_disabled_refuses_even_deletes() {
        assert_eq!(Vars::default().set("k", None, 0), Err(VarError::Disabled));
    }

    #[test]
    fn stream_output_becomes_lines() {
        let mut sink = LogSink::default();
        sink.write_stream(Stream::Stdout, b"hello\nwor", 100);
        sink.write_stream(Stream::Stdout, b"ld\npartial", 100);
        let lines = sink.take(100);
        let text: Vec<_> = lines.iter().map(|l| l.message.as_str()).collect();
        assert_eq!(text, ["hello", "world", "partial"]);
    }

    #[test]
    fn log_budget_drops_and_reports() {
        let mut sink = LogSink::default();
        for _ in 0..10 {
            sink.push(LogLevel::Info, "0123456789".into(), 35);
        }
        let lines = sink.take(35);
        assert_eq!(lines.len(), 4);
        assert!(lines[3].message.contains("7 log lines dropped"));
    }

    #[test]
    fn log_level_abi_values() {
        assert_eq!(LogLevel::Info.abi_value(), 2);
        assert_eq!(LogLevel::Off.abi_value(), i32::MAX);
        assert_eq!(LogLevel::parse("WARN"), Ok(LogLevel::Warn));
        assert!(LogLevel::parse("loud").is_err());
    }
}
