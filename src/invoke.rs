//! The one invocation path: every trigger (HTTP today; routes, webhooks,
//! events and schedules next) builds an [`Invocation`] and calls
//! [`Invoker::run`], which looks the function up, takes one snapshot of its
//! version, admits or refuses the call, wraps the input in the reference
//! design's request envelope, calls the entrypoint on a pooled instance and
//! records the statistics. What comes back is an [`Outcome`]; turning it
//! into an HTTP response is the caller's business.
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
    /// A database or auth hook: its source and action.
    #[serde(rename = "event")]
    Event { source: String, action: String },
    /// A schedule of a manifest, by name.
    #[serde(rename = "schedule")]
    Schedule { name: String },
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
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Caller {
    Anonymous,
    ApiKey,
    Internal,
    Admin,
}

impl Caller {
    /// The `context.auth` value handed to functions.
    pub fn to_json(self) -> Value {
        match self {
            Caller::Anonymous => Value::Null,
            Caller::ApiKey => json!({"type": "api_key"}),
            Caller::Internal => json!({"type": "internal"}),
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
}

/// A function's place for one call, taken by [`Invoker::admit`] and given
/// back when dropped.
pub struct Admission {
    function: Arc<Function>,
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

/// Runs invocations against a registry.
pub struct Invoker {
    registry: Arc<Registry>,
    tokens: Arc<InternalTokens>,
    alyx_url: String,
    queue_depth: usize,
}

impl Invoker {
    /// `alyx_url` is handed to functions; `queue_depth` calls may wait for
    /// a busy function before it refuses more.
    pub fn new(
        registry: Arc<Registry>,
        tokens: Arc<InternalTokens>,
        alyx_url: String,
        queue_depth: usize,
    ) -> Invoker {
        Invoker { registry, tokens, alyx_url, queue_depth }
    }

    pub fn registry(&self) -> &Arc<Registry> {
        &self.registry
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
            Ok(_) => Ok(Admission { function: entry }),
            Err(_) => Err(Failure::QueueFull { function: named() }),
        }
    }

    /// Look up → admit → snapshot → envelope → call → record.
    pub fn run(&self, mut invocation: Invocation) -> Outcome {
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
        let report = version.pool.call(&version.manifest.entrypoint, envelope.to_string().as_bytes());
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
                "internal_token": self.tokens.issue(SystemTime::now()),
            },
        })
    }
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
        Invoker::new(registry, Arc::new(InternalTokens::new()), "http://alyx".into(), queue_depth)
    }

    fn call(invoker: &Invoker, function: &str, input: Value) -> Outcome {
        invoker.run(Invocation {
            function: function.into(),
            input,
            trigger: Trigger::Http,
            request_id: "r1".into(),
            caller: Caller::ApiKey,
            admission: None,
        })
    }

    fn write_version(root: &TempDir, export: &str) {
        root.write("f/plugin.wat", &answering(export));
        root.write("f/manifest.yaml", &format!("plugin: plugin.wat\nentrypoint: {export}\n"));
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
            Trigger::Event { source: "users".into(), action: "insert".into() },
            Trigger::Schedule { name: "nightly".into() },
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
        assert_eq!(seen["context"]["auth"], json!({"type": "api_key"}));
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
        write_version(&root, "a");
        root.write("f/manifest.yaml", "plugin: plugin.wat\nentrypoint: missing\n");
        let invoker = invoker(&root, 4);
        let outcome = call(&invoker, "f", Value::Null);
        assert_eq!(
            outcome.result,
            Err(Failure::Runtime(runtime::Error::MissingExport { name: "missing".into() }))
        );
        let function = invoker.registry().get("f").unwrap();
        assert_eq!(function.stats.outcomes().get("missing_export"), Some(&1));
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
            function: "f".into(),
            input: Value::Null,
            trigger: Trigger::Http,
            request_id: "r".into(),
            caller: Caller::Anonymous,
            admission: Some(admission),
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
                assert!(matches!(
                    invoker.registry().reload_dir(&dir),
                    Some((_, crate::registry::Load::Loaded { .. }))
                ));
            }
            stop.store(true, std::sync::atomic::Ordering::Relaxed);
            for caller in callers {
                let seen = caller.join().expect("no mixed call");
                assert!(seen[0] + seen[1] > 0);
            }
        });
    }
}
