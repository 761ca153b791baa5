//! The read-only endpoints: function listings, statistics, health and
//! Prometheus metrics, rendered from the registry.

use std::fmt::Write;

use serde_json::{Value, json};

use super::dispatch::Traffic;
use super::reply::Reply;
use super::respond::ApiError;
use crate::crypto::REDACTED;
use crate::history::History;
use crate::invoke::Failure;
use crate::manifest::{Hook, HookMode, Manifest, OnFailure, RouteAccess, Scheme, Verification};
use crate::registry::{Function, Registry, Status};
use crate::stats::BUCKETS;
use crate::units::format_rfc3339;

/// One function as `GET /api/functions` and `/api/functions/{name}` show it
/// (its limits are those its calls run under, the server's defaults where
/// the manifest sets none).
pub fn function_json(registry: &Registry, f: &Function) -> Value {
    let version = f.current();
    let plugin = version.as_ref().map(|v| &v.plugin);
    let m = f.manifest();
    let instances = version.as_ref().map(|v| v.pool.stats());
    let builds = f.builds();
    let (timeout, memory) = registry.limits(&m);
    json!({
        "name": f.name,
        "status": f.status().as_str(),
        "plugin_hash": plugin.map(|p| p.hash.clone()),
        "plugin_size": plugin.map(|p| p.size),
        "loaded_at": plugin.map(|p| format_rfc3339(p.loaded_at)),
        "last_error": f.last_error().map(|e| e.to_string()),
        "entrypoint": m.entrypoint,
        "limits": {
            "timeout_ms": timeout.as_millis() as u64,
            "memory_bytes": memory,
        },
        "allowed_hosts": m.allowed_hosts,
        "dependencies": m.dependencies,
        "triggers": triggers(&m),
        "instances": instances.map(|s| json!({"busy": s.busy, "idle": s.idle})),
        "last_build": builds.last.map(|b| json!({
            "ok": b.ok,
            "duration_ms": b.duration.as_millis() as u64,
            "finished_at": format_rfc3339(b.finished_at),
            "failure": b.failure,
            "output": b.output,
        })),
        "builds": {"runs": builds.runs, "busy": builds.busy},
    })
}

fn triggers(m: &Manifest) -> Value {
    let access = |a: RouteAccess| match a {
        RouteAccess::Default => "default",
        RouteAccess::Public => "none",
    };
    let routes: Vec<Value> = m
        .routes
        .iter()
        .map(|r| json!({"path": r.path, "methods": r.methods, "auth": access(r.access)}))
        .collect();
    let hooks: Vec<Value> = m.hooks.iter().map(hook_json).collect();
    let schedules: Vec<Value> = m
        .schedules
        .iter()
        .map(|s| json!({"name": s.name, "type": s.kind.as_str(), "expression": s.expression, "timezone": s.zone.name(), "enabled": s.enabled}))
        .collect();
    json!({"routes": routes, "hooks": hooks, "schedules": schedules})
}

/// A hook; a webhook with its path, methods and verification, whose
/// secret is shown as `<redacted>`, never as itself.
fn hook_json(h: &Hook) -> Value {
    let mut hook = json!({
        "type": h.kind.as_str(),
        "source": h.source,
        "action": h.action,
        "verified": h.webhook.as_ref().is_some_and(|w| w.verification.scheme != Scheme::None),
    });
    if h.webhook.is_none() {
        hook["mode"] = json!(hook_mode(h.mode));
        hook["priority"] = json!(h.priority);
        hook["timeout_ms"] = json!(h.event.timeout.as_millis() as u64);
        hook["on_failure"] = json!(match h.event.on_failure {
            OnFailure::Reject => "reject",
            OnFailure::Continue => "continue",
        });
        hook["max_retries"] = json!(h.event.max_retries);
        hook["retry_delay_ms"] = json!(h.event.retry_delay.as_millis() as u64);
    }
    if let Some(webhook) = &h.webhook {
        hook["path"] = json!(webhook.path);
        hook["methods"] = json!(webhook.methods);
        hook["timeout_ms"] = json!(webhook.timeout.map(|t| t.as_millis() as u64));
        hook["verification"] = verification_json(&webhook.verification);
    }
    hook
}

fn verification_json(v: &Verification) -> Value {
    let has_secret = v.scheme != Scheme::None;
    json!({
        "type": v.scheme.name(),
        "header": v.scheme.header(),
        "secret": has_secret.then_some(REDACTED),
        "tolerance_ms": v.scheme.tolerance().map(|t| t.as_millis() as u64),
        "skip_invalid": v.skip_invalid,
    })
}

/// Wire names, spelt out so renaming a variant cannot change the API.
fn hook_mode(mode: HookMode) -> &'static str {
    match mode {
        HookMode::Sync => "sync",
        HookMode::Async => "async",
    }
}

/// `GET /api/functions/{name}`.
pub fn function(registry: &Registry, name: &str, request_id: &str) -> Reply {
    match registry.get(name) {
        Some(f) => Reply::json(200, &function_json(registry, &f)),
        None => ApiError::Invocation(Failure::NotFound { function: name.to_string() }).reply(request_id),
    }
}

/// `GET /api/functions`: every function, and the problems of the last
/// discovery and of mounting routes.
pub fn list(registry: &Registry, route_problems: &[crate::manifest::Problem]) -> Reply {
    let functions: Vec<Value> = registry.list().iter().map(|f| function_json(registry, f)).collect();
    let problems: Vec<String> =
        registry.problems().iter().chain(route_problems).map(ToString::to_string).collect();
    Reply::json(200, &json!({"functions": functions, "problems": problems}))
}

pub fn stats(registry: &Registry) -> Reply {
    let mut out = serde_json::Map::new();
    for f in registry.list() {
        let instances = f.current().map(|v| v.pool.stats());
        let mut summary = serde_json::to_value(f.stats.summary()).unwrap_or(Value::Null);
        summary["instances"] = json!({
            "busy": instances.map_or(0, |s| s.busy),
            "idle": instances.map_or(0, |s| s.idle),
        });
        out.insert(f.name.clone(), summary);
    }
    Reply::json(200, &json!({"functions": out}))
}

/// `POST /api/functions/reload`: rediscover and load what changed.
pub fn reload(registry: &Registry) -> Reply {
    let summary = registry.reload();
    Reply::json(
        200,
        &json!({
            "success": true,
            "loaded": summary.loaded,
            "unchanged": summary.unchanged,
            "failed": summary.failed,
            "removed": summary.removed,
            "problems": summary.problems,
        }),
    )
}

fn counts(registry: &Registry) -> (usize, usize) {
    let functions = registry.list();
    let loaded = functions.iter().filter(|f| f.status() == Status::Loaded).count();
    (loaded, functions.len() - loaded)
}

pub fn health(registry: &Registry) -> Reply {
    let (loaded, failed) = counts(registry);
    let status = if registry.is_ready() { "ok" } else { "starting" };
    Reply::json(200, &json!({"status": status, "functions": {"loaded": loaded, "failed": failed}}))
}

pub fn live() -> Reply {
    Reply::json(200, &json!({"status": "alive"}))
}

pub fn ready(registry: &Registry) -> Reply {
    match registry.is_ready() {
        true => Reply::json(200, &json!({"status": "ready"})),
        false => Reply::json(503, &json!({"status": "starting"})).with_header("Retry-After", "1"),
    }
}

pub fn health_stats(registry: &Registry, traffic: &Traffic) -> Reply {
    let (uptime, requests, in_flight) = traffic.snapshot();
    let (loaded, failed) = counts(registry);
    let calls: u64 = registry.list().iter().map(|f| f.stats.summary().calls).sum();
    Reply::json(
        200,
        &json!({
            "uptime_seconds": uptime,
            "requests": requests,
            "in_flight": in_flight,
            "invocations": calls,
            "functions": {"loaded": loaded, "failed": failed},
            "version": env!("CARGO_PKG_VERSION"),
        }),
    )
}

/// Prometheus text exposition format, version 0.0.4.
/// `events`: async deliveries waiting and failed, when the server has an
/// events part.
pub fn metrics(registry: &Registry, history: &History, events: Option<(usize, usize)>) -> Reply {
    let functions = registry.list();
    let mut out = String::new();
    header(&mut out, "alyx_invocations_total", "counter", "Invocations by function and outcome.");
    for f in &functions {
        for (outcome, n) in f.stats.outcomes() {
            let _ =
                writeln!(out, "alyx_invocations_total{{function=\"{}\",outcome=\"{outcome}\"}} {n}", f.name);
        }
    }
    let help = "Execution records by function, trigger type and outcome (refusals included).";
    header(&mut out, "alyx_invocations_by_trigger_total", "counter", help);
    for f in &functions {
        for ((trigger, outcome), n) in f.stats.by_trigger() {
            let _ = writeln!(
                out,
                "alyx_invocations_by_trigger_total{{function=\"{}\",trigger=\"{trigger}\",outcome=\"{outcome}\"}} {n}",
                f.name
            );
        }
    }
    header(&mut out, "alyx_invocation_duration_seconds", "histogram", "Invocation duration.");
    for f in &functions {
        let (buckets, count, sum) = f.stats.histogram();
        for (le, n) in BUCKETS.iter().zip(&buckets) {
            let _ = writeln!(
                out,
                "alyx_invocation_duration_seconds_bucket{{function=\"{}\",le=\"{le}\"}} {n}",
                f.name
            );
        }
        let _ = writeln!(
            out,
            "alyx_invocation_duration_seconds_bucket{{function=\"{}\",le=\"+Inf\"}} {count}",
            f.name
        );
        let _ = writeln!(out, "alyx_invocation_duration_seconds_sum{{function=\"{}\"}} {sum}", f.name);
        let _ = writeln!(out, "alyx_invocation_duration_seconds_count{{function=\"{}\"}} {count}", f.name);
    }
    header(&mut out, "alyx_instances", "gauge", "Plugin instances by state.");
    for f in &functions {
        let s = f.current().map(|v| v.pool.stats());
        for (state, n) in [("busy", s.map_or(0, |s| s.busy)), ("idle", s.map_or(0, |s| s.idle))] {
            let _ = writeln!(out, "alyx_instances{{function=\"{}\",state=\"{state}\"}} {n}", f.name);
        }
    }
    header(&mut out, "alyx_reloads_total", "counter", "Plugin loads by function and result.");
    for f in &functions {
        for (result, n) in f.stats.reloads() {
            let _ = writeln!(out, "alyx_reloads_total{{function=\"{}\",result=\"{result}\"}} {n}", f.name);
        }
    }
    let (loaded, failed) = counts(registry);
    header(&mut out, "alyx_functions", "gauge", "Functions by status.");
    let _ = writeln!(
        out,
        "alyx_functions{{status=\"loaded\"}} {loaded}\nalyx_functions{{status=\"failed\"}} {failed}"
    );
    let help = "Execution records the history file missed because its writer was behind.";
    header(&mut out, "alyx_history_dropped_total", "counter", help);
    let _ = writeln!(out, "alyx_history_dropped_total {}", history.dropped());
    let help = "Execution records the history file writer could not write.";
    header(&mut out, "alyx_history_write_failures_total", "counter", help);
    let _ = writeln!(out, "alyx_history_write_failures_total {}", history.write_failures());
    if let Some((pending, failed)) = events {
        header(&mut out, "alyx_event_deliveries", "gauge", "Async event deliveries by state.");
        let _ = writeln!(out, "alyx_event_deliveries{{state=\"pending\"}} {pending}");
        let _ = writeln!(out, "alyx_event_deliveries{{state=\"failed\"}} {failed}");
    }
    Reply::text(200, "text/plain; version=0.0.4", out)
}

fn header(out: &mut String, name: &str, kind: &str, help: &str) {
    let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} {kind}");
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};

    use super::*;

    fn manifest(text: &str) -> Manifest {
        let parsed = crate::manifest::parse(Path::new("/nonexistent/shop"), Path::new("m.yaml"), text);
        parsed.manifest.expect("a valid manifest").with_plugin(PathBuf::from("p.wasm"))
    }

    #[test]
    fn webhooks_are_listed_with_path_methods_and_scheme_but_never_the_secret() {
        let m = manifest(
            "hooks:
  - {type: webhook, source: stripe, verification: {type: stripe, secret: sk-hunter2}}
  - {type: webhook, config: {path: /in/gh, methods: [put]}, verification: {type: hmac-sha1, header: X-Hub-Signature, secret: gh-hunter3, skip_invalid: true}}
  - {type: webhook, config: {path: /open, timeout: 2s}, verification: {type: none}}
  - {type: auth, action: login}",
        );
        let listed = triggers(&m);
        assert_eq!(
            listed["hooks"],
            json!([
                {"type": "webhook", "source": "stripe", "action": null, "verified": true,
                 "path": "/api/webhooks/shop", "methods": ["POST"], "timeout_ms": null,
                 "verification": {"type": "stripe", "header": "Stripe-Signature", "secret": "<redacted>",
                                  "tolerance_ms": 300_000, "skip_invalid": false}},
                {"type": "webhook", "source": null, "action": null, "verified": true,
                 "path": "/in/gh", "methods": ["PUT"], "timeout_ms": null,
                 "verification": {"type": "hmac-sha1", "header": "X-Hub-Signature", "secret": "<redacted>",
                                  "tolerance_ms": null, "skip_invalid": true}},
                {"type": "webhook", "source": null, "action": null, "verified": false,
                 "path": "/open", "methods": ["POST"], "timeout_ms": 2000,
                 "verification": {"type": "none", "header": null, "secret": null,
                                  "tolerance_ms": null, "skip_invalid": false}},
                {"type": "auth", "source": null, "action": "login", "verified": false, "mode": "sync",
                 "priority": 0, "timeout_ms": 5000, "on_failure": "reject", "max_retries": 3,
                 "retry_delay_ms": 1000},
            ])
        );
        let text = listed.to_string();
        assert!(!text.contains("hunter"), "{text}");
    }
}
