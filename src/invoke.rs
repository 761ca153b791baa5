//! The one invocation path: every trigger (HTTP today; routes, webhooks,
//! events and schedules next) builds an [`Invocation`] and calls
//! [`Invoker::run`], which looks the function up, takes one snapshot of its
//! version, admits or refuses the call, wraps the input in the reference
//! design's request envelope, calls the entrypoint on a pooled instance and
//! records the statistics and the execution record ([`crate::history`]).
//! What comes back is an [`Outcome`]; turning it into an HTTP response is
//! the caller's business. A call that a trigger turns away before `run` (a
//! refused admission, a webhook whose signature fails) is recorded with
//! [`Invoker::refuse`], so the history has every invocation.
//!
//! Admission: a function takes at most `instances + queue_depth` calls at a
//! time, counting every call that runs or waits — for a worker thread or
//! for an instance. A trigger that queues work before it runs (the HTTP
//! front) admits first with [`Invoker::admit`] and carries the
//! [`Admission`] in the invocation, so its queue counts too.

use std::sync::Arc;
use std::sync::atomic::Ordering::SeqCst;
use std::time::{Duration, Instant, SystemTime};

use serde_json::{Value, json};

use crate::echo::Echo;
use crate::history::{self, ErrorInfo, History, Record};
use crate::registry::{Function, Registry, Version};
use crate::runtime::{self, LogLine};
use crate::tokens::InternalTokens;

/// What started an invocation, with what a record needs to tell one start
/// from another. Serialized as `{"type": "http" | "route" | ..., detail}`;
/// the wire names are written out here, never taken from `Debug`.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type")]
pub enum Trigger {
    /// `POST /api/functions/{name}` and its GET forms.
    #[serde(rename = "http")]
    Http,
    /// A user route of a manifest: the request's method and the route's
    /// path pattern.
    #[serde(rename = "route")]
    Route { method: String, route: String },
    /// A webhook hook of a manifest, at its path pattern.
    #[serde(rename = "webhook")]
    Webhook { path: String },
    /// An event hook: the event's id, source and action, and which
    /// attempt this is (1 for sync hooks and first deliveries).
    #[serde(rename = "event")]
    Event { event: String, source: String, action: String, attempt: u32 },
    /// A schedule of a manifest, by name: the time the run was due (RFC
    /// 3339 in the schedule's zone), which attempt (1, then retries), and
    /// whether it ran late (a one-time run missed while alyx was stopped)
    /// or by hand (`POST /api/schedules/.../trigger`).
    #[serde(rename = "schedule")]
    Schedule { name: String, scheduled_for: String, attempt: u32, late: bool, manual: bool },
}

impl Trigger {
    /// Every `type` a trigger can have, as records and filters spell it.
    pub const KINDS: [&'static str; 5] = ["http", "route", "webhook", "event", "schedule"];

    /// The `type` of this trigger: the name records, filters, metrics and
    /// logs use.
    pub fn as_str(&self) -> &'static str {
        match self {
            Trigger::Http => "http",
            Trigger::Route { .. } => "route",
            Trigger::Webhook { .. } => "webhook",
            Trigger::Event { .. } => "event",
            Trigger::Schedule { .. } => "schedule",
        }
    }
}

/// Who asked for an invocation (as authenticated by the trigger).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    /// The bearer of one of the `api_keys`, by its name (`ci`; keys given
    /// as a plain list are named by position: `key1`, `key2`...).
    ApiKey {
        name: Arc<str>,
    },
    /// A function, through its internal token, with its invocation's event
    /// depth (see [`Invocation::depth`]).
    Internal {
        depth: u32,
    },
    Admin,
}

impl Caller {
    /// The event depth of what this caller starts: a function's, or 0.
    pub fn depth(&self) -> u32 {
        match *self {
            Caller::Internal { depth } => depth,
            _ => 0,
        }
    }

    /// The `context.auth` value handed to functions.
    pub fn to_json(&self) -> Value {
        match self {
            Caller::Anonymous => Value::Null,
            Caller::ApiKey { name } => json!({"type": "api_key", "key": &**name}),
            Caller::Internal { .. } => json!({"type": "internal"}),
            Caller::Admin => json!({"type": "admin"}),
        }
    }
}

/// One call of a function, as any trigger describes it.
#[derive(Debug)]
pub struct Invocation {
    pub function: String,
    pub input: Value,
    pub trigger: Trigger,
    pub request_id: String,
    pub caller: Caller,
    /// The place taken by [`Invoker::admit`], if the trigger admitted the
    /// call before queueing it; else `run` admits it.
    pub admission: Option<Admission>,
    /// A time limit of the trigger's own (a hook's `config.timeout`); the
    /// shorter of it and the function's applies.
    pub timeout: Option<Duration>,
    /// The event depth an event raised by this call has: its internal
    /// token carries it. Hooks run at their event's depth + 1; other calls
    /// at their caller's ([`Caller::depth`]).
    pub depth: u32,
}

impl Invocation {
    /// A call of `function` with `input`, started by `trigger` for
    /// `caller`; no time limit of the trigger's own, at the caller's depth.
    pub fn new(
        function: &str,
        input: Value,
        trigger: Trigger,
        request_id: String,
        caller: Caller,
    ) -> Invocation {
        let depth = caller.depth();
        Invocation {
            function: function.to_string(),
            input,
            trigger,
            request_id,
            caller,
            admission: None,
            timeout: None,
            depth,
        }
    }
}

/// A function's place for one call, taken by [`Invoker::admit`] and given
/// back when dropped.
pub struct Admission {
    function: Arc<Function>,
    /// The instances of the version admitted to: how many calls can run.
    capacity: usize,
}

impl Admission {
    pub fn function(&self) -> &str {
        &self.function.name
    }

    /// How many of the function's calls can run at once.
    pub fn capacity(&self) -> usize {
        self.capacity
    }
}

impl Drop for Admission {
    fn drop(&mut self) {
        self.function.admitted.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

impl std::fmt::Debug for Admission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Admission({})", self.function.name)
    }
}

/// Why an invocation produced no output.
#[derive(Debug, Clone, PartialEq)]
pub enum Failure {
    /// No function has that name.
    NotFound { function: String },
    /// The function exists but no version of it is loaded.
    NotLoaded { function: String },
    /// Every instance is busy and `queue_depth` calls already wait.
    QueueFull { function: String },
    /// The call ran and failed.
    Runtime(runtime::Error),
}

/// The code of a failure a plugin reports in its own envelope
/// (`{"success": false, ...}`), for the API and the history alike.
pub const REPORTED: &str = "PLUGIN_ERROR";

impl Failure {
    /// The outcome label statistics and metrics use.
    pub fn label(&self) -> &'static str {
        match self {
            Failure::NotFound { .. } => "not_found",
            Failure::NotLoaded { .. } => "not_loaded",
            Failure::QueueFull { .. } => "queue_full",
            Failure::Runtime(error) => error.kind(),
        }
    }

    /// The wire code: the API's `error.code` and execution records'. Here,
    /// below the HTTP layer, so every trigger and the history name a failure
    /// alike; `http::respond` adds the status and headers.
    pub fn code(&self) -> &'static str {
        use runtime::Error as E;
        match self {
            Failure::NotFound { .. } => "FUNCTION_NOT_FOUND",
            Failure::NotLoaded { .. } => "FUNCTION_NOT_LOADED",
            Failure::QueueFull { .. } => "QUEUE_FULL",
            Failure::Runtime(error) => match error {
                E::Timeout { .. } => "TIMEOUT",
                E::MemoryLimit { .. } => "MEMORY_LIMIT",
                E::Busy { .. } => "BUSY",
                E::Plugin { .. } | E::HostFunction { .. } => "PLUGIN_ERROR",
                E::Load { .. }
                | E::MissingExport { .. }
                | E::BadSignature { .. }
                | E::StackOverflow { .. }
                | E::Trap { .. }
                | E::NonZeroReturn { .. }
                | E::Exit { .. } => "EXECUTION_ERROR",
            },
        }
    }
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::NotFound { function } => write!(f, "no function named {function:?}"),
            Failure::NotLoaded { function } => write!(f, "function {function:?} has no loaded plugin"),
            Failure::QueueFull { function } => {
                write!(f, "function {function:?} is busy and its queue is full")
            }
            Failure::Runtime(error) => write!(f, "{error}"),
        }
    }
}

/// What an invocation did.
#[derive(Debug, Clone)]
pub struct Outcome {
    pub request_id: String,
    /// The plugin's output bytes, or why there are none.
    pub result: Result<Vec<u8>, Failure>,
    pub logs: Vec<LogLine>,
    /// Time spent in the call (zero when it never reached the plugin).
    pub duration: Duration,
    /// The plugin hash of the version that ran, when one did.
    pub plugin: Option<String>,
}

impl Outcome {
    /// Why the call failed, as the history records it: a failure, or one
    /// the plugin reported in its own envelope; `None` for a success.
    pub fn error(&self) -> Option<ErrorInfo> {
        judge(&self.result).1
    }

    /// How the call ended as its execution record says: `ok`, `error` or
    /// `timeout`, with the error's code.
    pub fn verdict(&self) -> (history::Outcome, Option<&'static str>) {
        let (outcome, error) = judge(&self.result);
        (outcome, error.map(|e| e.code))
    }
}

/// A call a trigger turned away before [`Invoker::run`], so the function
/// never ran; [`Invoker::refuse`] records it.
#[derive(Debug, Clone, PartialEq)]
pub struct Refused {
    pub function: String,
    pub trigger: Trigger,
    pub request_id: String,
    /// The size of what came with the call (a request body), in bytes.
    pub input_bytes: u64,
    pub why: Refusal,
}

/// Why a trigger turned a call away.
#[derive(Debug, Clone, PartialEq)]
pub enum Refusal {
    /// [`Invoker::admit`] refused it (unknown, not loaded, queue full):
    /// recorded as `error`, with the failure's code.
    Failure(Failure),
    /// The trigger refused the request itself (a webhook whose signature
    /// does not verify, a body that is not JSON): recorded as `rejected`,
    /// with the code the trigger answers with (`http::respond`'s table).
    Rejected { code: &'static str, message: String },
}

/// Runs invocations against a registry and records each in the history.
pub struct Invoker {
    registry: Arc<Registry>,
    tokens: Arc<InternalTokens>,
    alyx_url: String,
    queue_depth: usize,
    history: Arc<History>,
    echo: Echo,
}

impl Invoker {
    /// `alyx_url` is handed to functions; `queue_depth` calls may wait for
    /// a busy function before it refuses more; every call is recorded in
    /// `history`.
    pub fn new(
        registry: Arc<Registry>,
        tokens: Arc<InternalTokens>,
        alyx_url: String,
        queue_depth: usize,
        history: Arc<History>,
    ) -> Invoker {
        Invoker { registry, tokens, alyx_url, queue_depth, history, echo: Echo::default() }
    }

    /// Tells every call (its record) where `echo` says; by default the
    /// failures go to the server log.
    pub fn echoing(self, echo: Echo) -> Invoker {
        Invoker { echo, ..self }
    }

    /// The key internal tokens are issued with (auth verifies them with it).
    pub fn tokens(&self) -> &Arc<InternalTokens> {
        &self.tokens
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
    }

    pub fn history(&self) -> &Arc<History> {
        &self.history
    }

    /// Takes a place among `function`'s calls: refused when the function
    /// does not exist, has no loaded version, or already has `instances +
    /// queue_depth` calls running or waiting.
    pub fn admit(&self, function: &str) -> Result<Admission, Failure> {
        let named = || function.to_string();
        let Some(entry) = self.registry.get(function) else {
            return Err(Failure::NotFound { function: named() });
        };
        let Some(version) = entry.current() else {
            return Err(Failure::NotLoaded { function: named() });
        };
        let limit = version.pool.capacity() + self.queue_depth;
        let taken = entry.admitted.fetch_update(SeqCst, SeqCst, |n| (n < limit).then_some(n + 1));
        match taken {
            Ok(_) => Ok(Admission { function: entry, capacity: version.pool.capacity() }),
            Err(_) => Err(Failure::QueueFull { function: named() }),
        }
    }

    /// Look up → admit → snapshot → envelope → call → record.
    pub fn run(&self, invocation: Invocation) -> Outcome {
        let start = Start::of(&invocation);
        let outcome = self.call(invocation);
        self.record(start, &outcome);
        outcome
    }

    /// Records a call that a trigger turned away before [`Invoker::run`]
    /// (which records every other call).
    pub fn refuse(&self, refused: Refused) {
        let (outcome, error) = match &refused.why {
            Refusal::Failure(failure) => (history::Outcome::Error, failure_info(failure)),
            Refusal::Rejected { code, message } => {
                (history::Outcome::Rejected, ErrorInfo::new(code, message))
            }
        };
        self.keep(Record {
            id: refused.request_id,
            function: refused.function,
            trigger: refused.trigger,
            started_at: SystemTime::now(),
            duration: Duration::ZERO,
            outcome,
            error: Some(error),
            logs: Vec::new(),
            logs_dropped: 0,
            input_bytes: refused.input_bytes,
            output_bytes: 0,
            plugin: None,
        });
    }

    /// Admit (unless the trigger did) → snapshot → envelope → call → stats.
    fn call(&self, mut invocation: Invocation) -> Outcome {
        let admission = match invocation.admission.take() {
            Some(admission) => admission,
            None => match self.admit(&invocation.function) {
                Ok(admission) => admission,
                Err(failure) => return refused(invocation, failure),
            },
        };
        let function = admission.function.clone();
        let Some(version) = function.current() else {
            return refused(invocation, Failure::NotLoaded { function: function.name.clone() });
        };
        let envelope = self.envelope(&invocation, &version);
        let start = Instant::now();
        let input = envelope.to_string();
        let report =
            version.pool.call_within(&version.manifest.entrypoint, input.as_bytes(), invocation.timeout);
        let duration = start.elapsed();
        let result = report.result.map_err(Failure::Runtime);
        function.stats.record(result.as_ref().map_or_else(Failure::label, |_| "success"), duration);
        Outcome {
            request_id: invocation.request_id,
            result,
            logs: report.logs,
            duration,
            plugin: Some(version.plugin.hash.clone()),
        }
    }

    /// The record of a call `run` made or refused.
    fn record(&self, start: Start, outcome: &Outcome) {
        let (verdict, error) = judge(&outcome.result);
        let (logs, logs_dropped) = history::cap_logs(&outcome.logs);
        self.keep(Record {
            id: outcome.request_id.clone(),
            function: start.function,
            trigger: start.trigger,
            started_at: start.at,
            duration: outcome.duration,
            outcome: verdict,
            error,
            logs,
            logs_dropped,
            input_bytes: start.input_bytes,
            output_bytes: outcome.result.as_ref().map_or(0, |output| output.len() as u64),
            plugin: outcome.plugin.clone(),
        });
    }

    /// Counts a record by trigger (for functions that exist, so unknown
    /// names add no metric series) and keeps it.
    fn keep(&self, record: Record) {
        if let Some(function) = self.registry.get(&record.function) {
            function.stats.record_trigger(record.trigger.as_str(), record.outcome.as_str());
        }
        self.echo.tell(&record);
        self.history.record(record);
    }

    /// The reference design's request envelope.
    fn envelope(&self, invocation: &Invocation, version: &Version) -> Value {
        json!({
            "request_id": invocation.request_id,
            "function": invocation.function,
            "input": invocation.input,
            "context": {
                "auth": invocation.caller.to_json(),
                "env": version.manifest.env,
                "alyx_url": self.alyx_url,
                "internal_token": self.tokens.issue(SystemTime::now(), invocation.depth),
            },
        })
    }
}

/// What a record needs from an invocation, taken before it runs.
struct Start {
    function: String,
    trigger: Trigger,
    at: SystemTime,
    input_bytes: u64,
}

impl Start {
    fn of(invocation: &Invocation) -> Start {
        Start {
            function: invocation.function.clone(),
            trigger: invocation.trigger.clone(),
            at: SystemTime::now(),
            input_bytes: json_len(&invocation.input),
        }
    }
}

/// The length of `value` as JSON, counted without building the text.
fn json_len(value: &Value) -> u64 {
    struct Count(u64);
    impl std::io::Write for Count {
        fn write(&mut self, bytes: &[u8]) -> std::io::Result<usize> {
            self.0 += bytes.len() as u64;
            Ok(bytes.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let mut count = Count(0);
    let _ = serde_json::to_writer(&mut count, value);
    count.0
}

/// How a call ended, as the history tells it: a time limit is `timeout`,
/// any other failure (and a failure the plugin reported in its own
/// envelope) is `error`.
fn judge(result: &Result<Vec<u8>, Failure>) -> (history::Outcome, Option<ErrorInfo>) {
    match result {
        Ok(output) => match reported_failure(output) {
            Some(message) => (history::Outcome::Error, Some(ErrorInfo::new(REPORTED, &message))),
            None => (history::Outcome::Ok, None),
        },
        Err(failure @ Failure::Runtime(runtime::Error::Timeout { .. })) => {
            (history::Outcome::Timeout, Some(failure_info(failure)))
        }
        Err(failure) => (history::Outcome::Error, Some(failure_info(failure))),
    }
}

fn failure_info(failure: &Failure) -> ErrorInfo {
    ErrorInfo::new(failure.code(), &failure.to_string())
}

/// The message of a failure a plugin reported in the reference design's
/// envelope (`{"success": false, "error": ...}`), which HTTP answers with
/// [`REPORTED`]. Only output that starts like an object is parsed, and
/// only `success` and `error` are kept.
fn reported_failure(output: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Envelope {
        success: Option<Value>,
        error: Option<Value>,
    }
    if output.iter().find(|b| !b.is_ascii_whitespace()) != Some(&b'{') {
        return None;
    }
    let envelope: Envelope = serde_json::from_slice(output).ok()?;
    if envelope.success != Some(Value::Bool(false)) {
        return None;
    }
    Some(match envelope.error {
        Some(Value::String(message)) => message,
        Some(Value::Object(error)) if error.get("message").is_some_and(Value::is_string) => {
            error["message"].as_str().unwrap_or_default().to_string()
        }
        None | Some(Value::Null) => "the function reported a failure".into(),
        Some(other) => other.to_string(),
    })
}

fn refused(invocation: Invocation, failure: Failure) -> Outcome {
    Outcome {
        request_id: invocation.request_id,
        result: Err(failure),
        logs: Vec::new(),
        duration: Duration::ZERO,
        plugin: None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    /// The caller of the API key named `ci`.
    fn ci() -> Caller {
        Caller::ApiKey { name: "ci".into() }
    }

    /// A plugin whose only export, `name`, answers `name`.
    fn answering(name: &str) -> String {
        format!(
            r#"(module
              (import "extism:host/env" "alloc" (func $alloc (param i64) (result i64)))
              (import "extism:host/env" "store_u8" (func $store (param i64 i32)))
              (import "extism:host/env" "output_set" (func $out (param i64 i64)))
              (func (export "{name}") (result i32) (local $h i64)
                (local.set $h (call $alloc (i64.const 1)))
                (call $store (local.get $h) (i32.const {byte}))
                (call $out (local.get $h) (i64.const 1))
                (i32.const 0)))"#,
            byte = name.as_bytes()[0]
        )
    }

    fn invoker(root: &TempDir, queue_depth: usize) -> Invoker {
        let registry = Arc::new(Registry::new(root.path(), crate::testutil::defaults()));
        registry.reload();
        let history = Arc::new(History::new(100));
        Invoker::new(registry, Arc::new(InternalTokens::new()), "http://alyx".into(), queue_depth, history)
    }

    fn call(invoker: &Invoker, function: &str, input: Value) -> Outcome {
        invoker.run(Invocation::new(function, input, Trigger::Http, "r1".into(), ci()))
    }

    fn write_version(root: &TempDir, export: &str) {
        root.write("f/plugin.wat", answering(export));
        root.write("f/manifest.yaml", format!("plugin: plugin.wat\nentrypoint: {export}\n"));
    }

    fn copy_plugin(root: &TempDir, function: &str, plugin: &str, manifest: &str) {
        let source = format!("{}/testdata/plugins/{plugin}", env!("CARGO_MANIFEST_DIR"));
        root.write(&format!("{function}/plugin.wat"), std::fs::read_to_string(source).unwrap());
        root.write(&format!("{function}/manifest.yaml"), format!("plugin: plugin.wat\n{manifest}"));
    }

    #[test]
    fn the_internal_token_carries_the_calls_depth() {
        let root = TempDir::new("invoke");
        copy_plugin(&root, "f", "echo.wat", "entrypoint: echo\n");
        let invoker = invoker(&root, 4);
        let internal = Caller::Internal { depth: 5 };
        for (invocation, depth) in [
            (Invocation::new("f", Value::Null, Trigger::Http, "a".into(), ci()), 0),
            (Invocation::new("f", Value::Null, Trigger::Http, "b".into(), internal.clone()), 5),
            (
                Invocation {
                    depth: 6,
                    ..Invocation::new("f", Value::Null, Trigger::Http, "c".into(), internal)
                },
                6,
            ),
        ] {
            let envelope: Value = serde_json::from_slice(&invoker.run(invocation).result.unwrap()).unwrap();
            let token = envelope["context"]["internal_token"].as_str().unwrap();
            assert_eq!(invoker.tokens().verify(token, SystemTime::now()), Some(depth));
        }
    }

    #[test]
    fn a_triggers_time_limit_ends_a_call_sooner() {
        let root = TempDir::new("invoke");
        copy_plugin(&root, "f", "loop.wat", "entrypoint: spin\ntimeout: 30s\n");
        let invoker = invoker(&root, 4);
        let limit = Duration::from_millis(100);
        let invocation = Invocation::new("f", Value::Null, Trigger::Http, "r".into(), ci());
        let outcome = invoker.run(Invocation { timeout: Some(limit), ..invocation });
        let expected = runtime::Error::Timeout { limit: runtime::TimeLimit::WallClock(limit) };
        assert_eq!(outcome.result, Err(Failure::Runtime(expected)));
    }

    #[test]
    fn triggers_serialize_with_their_type_and_detail() {
        let text = |t: &Trigger| serde_json::to_value(t).unwrap();
        let route = Trigger::Route { method: "GET".into(), route: "/hello/{name}".into() };
        assert_eq!(text(&route), json!({"type": "route", "method": "GET", "route": "/hello/{name}"}));
        let all = [
            Trigger::Http,
            route,
            Trigger::Webhook { path: "/hooks/x".into() },
            Trigger::Event {
                event: "e1".into(),
                source: "users".into(),
                action: "insert".into(),
                attempt: 1,
            },
            Trigger::Schedule {
                name: "nightly".into(),
                scheduled_for: "2026-11-26T03:00:00+01:00".into(),
                attempt: 1,
                late: false,
                manual: false,
            },
        ];
        let types: Vec<Value> = all.iter().map(|t| text(t)["type"].clone()).collect();
        assert_eq!(types, Trigger::KINDS.map(Value::from));
        assert!(all.iter().zip(Trigger::KINDS).all(|(t, kind)| t.as_str() == kind));
    }

    #[test]
    fn the_function_gets_the_reference_envelope() {
        let root = TempDir::new("invoke");
        root.write("echo/manifest.yaml", "plugin: plugin.wat\nenv: {MODE: test}\n");
        root.write(
            "echo/plugin.wat",
            r#"(module
              (import "extism:host/env" "input_offset" (func $off (result i64)))
              (import "extism:host/env" "input_length" (func $len (result i64)))
              (import "extism:host/env" "output_set" (func $out (param i64 i64)))
              (func (export "handle") (result i32) (call $out (call $off) (call $len)) (i32.const 0)))"#,
        );
        let outcome = call(&invoker(&root, 4), "echo", json!({"x": 1}));
        let seen: Value = serde_json::from_slice(&outcome.result.unwrap()).unwrap();
        assert_eq!(seen["request_id"], "r1");
        assert_eq!((seen["function"].clone(), seen["input"].clone()), (json!("echo"), json!({"x": 1})));
        assert_eq!(seen["context"]["auth"], json!({"type": "api_key", "key": "ci"}));
        assert_eq!(seen["context"]["env"], json!({"MODE": "test"}));
        assert_eq!(seen["context"]["alyx_url"], "http://alyx");
        assert!(seen["context"]["internal_token"].as_str().is_some_and(|t| t.contains('.')));
    }

    #[test]
    fn unknown_and_unloaded_functions_are_refused_without_a_call() {
        let root = TempDir::new("invoke");
        root.write("broken/manifest.yaml", "plugin: plugin.wasm");
        let invoker = invoker(&root, 4);
        let nope = call(&invoker, "nope", Value::Null);
        assert_eq!(nope.result, Err(Failure::NotFound { function: "nope".into() }));
        let broken = call(&invoker, "broken", Value::Null);
        assert_eq!(broken.result, Err(Failure::NotLoaded { function: "broken".into() }));
        assert_eq!((broken.duration, broken.plugin), (Duration::ZERO, None));
    }

    #[test]
    fn runtime_failures_are_recorded_in_the_stats_by_kind() {
        let root = TempDir::new("invoke");
        copy_plugin(&root, "f", "errors.wat", "entrypoint: nonzero\n");
        let invoker = invoker(&root, 4);
        let outcome = call(&invoker, "f", Value::Null);
        assert_eq!(outcome.result, Err(Failure::Runtime(runtime::Error::NonZeroReturn { rc: 7 })));
        let function = invoker.registry().get("f").unwrap();
        assert_eq!(function.stats.outcomes().get("non_zero_return"), Some(&1));
    }

    #[test]
    fn every_run_is_recorded_with_its_trigger_sizes_and_outcome() {
        let root = TempDir::new("invoke");
        write_version(&root, "a");
        let invoker = invoker(&root, 4);
        let outcome = call(&invoker, "f", json!({"x": 1}));
        let record = invoker.history().get("r1").expect("recorded");
        assert_eq!(
            (record.function.as_str(), &record.trigger, record.outcome, &record.error),
            ("f", &Trigger::Http, history::Outcome::Ok, &None)
        );
        assert_eq!((record.input_bytes, record.output_bytes), (7, 1), "the input as JSON, the output bytes");
        assert_eq!((record.duration, &record.plugin), (outcome.duration, &outcome.plugin));
        call(&invoker, "nope", Value::Null);
        let refused = &invoker.history().list(&history::Query::all(10)).records[0];
        assert_eq!((refused.function.as_str(), refused.outcome), ("nope", history::Outcome::Error));
        assert_eq!(refused.error.as_ref().map(|e| e.code), Some("FUNCTION_NOT_FOUND"));
        let counts = invoker.registry().get("f").unwrap().stats.by_trigger();
        assert_eq!(counts.into_iter().collect::<Vec<_>>(), [(("http", "ok"), 1)]);
    }

    #[test]
    fn a_time_limit_is_a_timeout_and_a_reported_failure_an_error() {
        let timeout =
            Failure::Runtime(runtime::Error::Timeout { limit: runtime::TimeLimit::Fuel(5_000_000) });
        let (outcome, error) = judge(&Err(timeout));
        assert_eq!((outcome, error.map(|e| e.code)), (history::Outcome::Timeout, Some("TIMEOUT")));
        let busy = Failure::Runtime(runtime::Error::Busy { waited: Duration::from_secs(1) });
        assert_eq!(judge(&Err(busy)).0, history::Outcome::Error);
        let reported = |output: &str| judge(&Ok(output.as_bytes().to_vec()));
        assert_eq!(
            reported(r#" {"success": false, "error": {"message": "no such user"}}"#),
            (history::Outcome::Error, Some(ErrorInfo::new(REPORTED, "no such user")))
        );
        assert_eq!(reported(r#"{"success": false, "error": "bad"}"#).1.unwrap().message, "bad");
        assert_eq!(reported(r#"{"success": true, "output": 1}"#), (history::Outcome::Ok, None));
        assert_eq!(reported(r#"{"success": "no"}"#), (history::Outcome::Ok, None));
        assert_eq!(reported("[false]"), (history::Outcome::Ok, None));
        assert_eq!(reported("not json"), (history::Outcome::Ok, None));
    }

    #[test]
    fn refusals_are_recorded_as_errors_or_rejections() {
        let root = TempDir::new("invoke");
        write_version(&root, "a");
        let invoker = invoker(&root, 4);
        let refused = |id: &str, why: Refusal| Refused {
            function: "f".into(),
            trigger: Trigger::Webhook { path: "/hooks/f".into() },
            request_id: id.into(),
            input_bytes: 12,
            why,
        };
        invoker.refuse(refused("full", Refusal::Failure(Failure::QueueFull { function: "f".into() })));
        let signature = Refusal::Rejected { code: "INVALID_SIGNATURE", message: "no match".into() };
        invoker.refuse(refused("forged", signature));
        let full = invoker.history().get("full").unwrap();
        assert_eq!(
            (full.outcome, full.error.as_ref().unwrap().code),
            (history::Outcome::Error, "QUEUE_FULL")
        );
        let forged = invoker.history().get("forged").unwrap();
        assert_eq!(
            (forged.outcome, forged.error.clone(), forged.input_bytes, forged.duration),
            (
                history::Outcome::Rejected,
                Some(ErrorInfo::new("INVALID_SIGNATURE", "no match")),
                12,
                Duration::ZERO
            )
        );
        let counts = invoker.registry().get("f").unwrap().stats.by_trigger();
        assert_eq!(
            counts.into_iter().collect::<Vec<_>>(),
            [(("webhook", "error"), 1), (("webhook", "rejected"), 1)]
        );
    }

    #[test]
    fn admission_counts_running_and_waiting_calls_up_to_instances_plus_depth() {
        let root = TempDir::new("invoke");
        write_version(&root, "a");
        let invoker = invoker(&root, 1);
        let places: Vec<Admission> = (0..3).map(|_| invoker.admit("f").unwrap()).collect();
        assert_eq!(invoker.admit("f").unwrap_err(), Failure::QueueFull { function: "f".into() });
        let refused = call(&invoker, "f", Value::Null);
        assert_eq!(refused.result, Err(Failure::QueueFull { function: "f".into() }), "run admits too");
        drop(places);
        let admission = invoker.admit("f").unwrap();
        let outcome = invoker.run(Invocation {
            admission: Some(admission),
            ..Invocation::new("f", Value::Null, Trigger::Http, "r".into(), Caller::Anonymous)
        });
        assert_eq!(outcome.result, Ok(b"a".to_vec()));
        assert_eq!(invoker.registry().get("f").unwrap().admitted.load(SeqCst), 0, "every place given back");
        assert_eq!(invoker.admit("nope").unwrap_err(), Failure::NotFound { function: "nope".into() });
    }

    /// Versions `a` and `b` differ in plugin and entrypoint together: a call
    /// that combined one's plugin with the other's entrypoint would fail
    /// with a missing export.
    #[test]
    fn reloads_under_load_never_mix_two_versions() {
        let root = TempDir::new("invoke");
        write_version(&root, "a");
        let invoker = invoker(&root, 64);
        let dir = root.path().join("f");
        let stop = std::sync::atomic::AtomicBool::new(false);
        std::thread::scope(|scope| {
            let callers: Vec<_> = (0..2)
                .map(|_| {
                    scope.spawn(|| {
                        let mut seen = [0usize; 2];
                        while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                            match call(&invoker, "f", Value::Null).result {
                                Ok(out) if out == b"a" => seen[0] += 1,
                                Ok(out) if out == b"b" => seen[1] += 1,
                                other => panic!("a mixed or failed call: {other:?}"),
                            }
                        }
                        seen
                    })
                })
                .collect();
            for round in 0..200 {
                write_version(&root, if round % 2 == 0 { "b" } else { "a" });
                let reloaded = invoker.registry().reload_dir(&dir).map(|r| r.load);
                assert!(matches!(reloaded, Some(crate::registry::Load::Loaded { .. })));
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            for caller in callers {
                let seen = caller.join().expect("no mixed call");
                assert!(seen[0] + seen[1] > 0);
            }
        });
    }
}
