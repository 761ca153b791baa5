//! Trigger specs in a manifest: HTTP routes, hooks (database, auth,
//! webhook) and schedules, and the checks of each.

use std::collections::BTreeMap;
use std::time::Duration;

use serde_yaml_ng::Value;

use super::check::{Checker, get};
use crate::units::parse_duration;

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    pub path: String,
    pub methods: Vec<String>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookType {
    Database,
    Auth,
    Webhook,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookMode {
    Sync,
    Async,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    pub kind: HookType,
    pub source: Option<String>,
    pub action: Option<String>,
    pub mode: HookMode,
    pub timeout: Option<Duration>,
    pub config: BTreeMap<String, String>,
    pub verification: Option<Verification>,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Verification {
    /// Only `hmac-sha256` for now.
    pub kind: String,
    pub header: String,
    pub secret: String,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleType {
    Cron,
    Interval,
    OneTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    pub name: String,
    pub kind: ScheduleType,
    pub expression: String,
    pub timezone: Option<String>,
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

pub(super) fn check_route(c: &mut Checker, field: &str, value: &Value) -> Option<Route> {
    let m = c.mapping(field, value)?;
    c.unknown_keys(field, value, &["path", "methods"]);
    let path = c.opt_string(&format!("{field}.path"), get(m, "path"));
    let path = match path {
        Some(p) if p.starts_with('/') => Some(p),
        Some(p) => {
            c.error(&format!("{field}.path"), format!("must start with / (got {p:?})"));
            None
        }
        None => {
            c.error(&format!("{field}.path"), "required");
            None
        }
    };
    let mut methods = c.strings(&format!("{field}.methods"), get(m, "methods"));
    methods.iter_mut().for_each(|m| *m = m.to_ascii_uppercase());
    for (i, method) in methods.iter().enumerate() {
        if !METHODS.contains(&method.as_str()) {
            c.error(&format!("{field}.methods[{i}]"), format!("unknown HTTP method {method:?}"));
        }
    }
    if methods.is_empty() {
        methods = vec!["GET".into(), "POST".into()];
    }
    Some(Route { path: path?, methods })
}

pub(super) fn check_hook(c: &mut Checker, field: &str, value: &Value) -> Option<Hook> {
    const KNOWN: &[&str] = &["type", "source", "action", "mode", "config", "verification"];
    let m = c.mapping(field, value)?;
    c.unknown_keys(field, value, KNOWN);
    let kind = match c.opt_string(&format!("{field}.type"), get(m, "type")).as_deref() {
        Some("database") => Some(HookType::Database),
        Some("auth") => Some(HookType::Auth),
        Some("webhook") => Some(HookType::Webhook),
        Some(other) => {
            c.error(
                &format!("{field}.type"),
                format!("{other:?} is not a hook type (use database, auth or webhook)"),
            );
            None
        }
        None => {
            c.error(&format!("{field}.type"), "required");
            None
        }
    };
    let source = c.opt_string(&format!("{field}.source"), get(m, "source"));
    let action = c.opt_string(&format!("{field}.action"), get(m, "action"));
    let mode = match c.opt_string(&format!("{field}.mode"), get(m, "mode")).as_deref() {
        None | Some("async") => Some(HookMode::Async),
        Some("sync") => Some(HookMode::Sync),
        Some(other) => {
            c.error(&format!("{field}.mode"), format!("{other:?} is not a mode (use sync or async)"));
            None
        }
    };
    let mut config = c.map(&format!("{field}.config"), get(m, "config"));
    let timeout = config.remove("timeout").and_then(|t| {
        let v = Value::String(t);
        c.duration(&format!("{field}.config.timeout"), Some(&v))
    });
    let verification = get(m, "verification")
        .filter(|v| !v.is_null())
        .and_then(|v| check_verification(c, &format!("{field}.verification"), v));
    if kind == Some(HookType::Database) && source.is_none() {
        c.error(&format!("{field}.source"), "required for database hooks (the table or collection)");
    }
    Some(Hook { kind: kind?, source, action, mode: mode?, timeout, config, verification })
}

fn check_verification(c: &mut Checker, field: &str, value: &Value) -> Option<Verification> {
    let m = c.mapping(field, value)?;
    c.unknown_keys(field, value, &["type", "header", "secret"]);
    let kind = c.opt_string(&format!("{field}.type"), get(m, "type")).unwrap_or_else(|| "hmac-sha256".into());
    if kind != "hmac-sha256" {
        c.error(&format!("{field}.type"), format!("{kind:?} is not supported (use hmac-sha256)"));
    }
    let header =
        c.opt_string(&format!("{field}.header"), get(m, "header")).unwrap_or_else(|| "X-Signature".into());
    let secret = c.opt_string(&format!("{field}.secret"), get(m, "secret")).filter(|s| !s.is_empty());
    if secret.is_none() {
        c.error(&format!("{field}.secret"), "required");
    }
    Some(Verification { kind, header, secret: secret? })
}

pub(super) fn check_schedule(c: &mut Checker, field: &str, value: &Value) -> Option<Schedule> {
    const KNOWN: &[&str] = &["name", "type", "expression", "timezone"];
    let m = c.mapping(field, value)?;
    c.unknown_keys(field, value, KNOWN);
    let name = c.opt_string(&format!("{field}.name"), get(m, "name"));
    if name.is_none() {
        c.error(&format!("{field}.name"), "required");
    }
    let kind = match c.opt_string(&format!("{field}.type"), get(m, "type")).as_deref() {
        Some("cron") => Some(ScheduleType::Cron),
        Some("interval") => Some(ScheduleType::Interval),
        Some("one_time") => Some(ScheduleType::OneTime),
        Some(other) => {
            let message = format!("{other:?} is not a schedule type (use cron, interval or one_time)");
            c.error(&format!("{field}.type"), message);
            None
        }
        None => {
            c.error(&format!("{field}.type"), "required");
            None
        }
    };
    let expression = c.opt_string(&format!("{field}.expression"), get(m, "expression"));
    let expression = match (kind, expression) {
        (_, None) => {
            c.error(&format!("{field}.expression"), "required");
            None
        }
        (Some(ScheduleType::Cron), Some(e)) if e.split_whitespace().count() != 5 => {
            c.error(&format!("{field}.expression"), format!("{e:?} is not a 5-field cron expression"));
            None
        }
        (Some(ScheduleType::Interval), Some(e)) if parse_duration(&e).is_err() => {
            c.error(&format!("{field}.expression"), format!("{e:?} is not an interval like 5m or 1h"));
            None
        }
        (_, Some(e)) => Some(e),
    };
    let timezone = c.opt_string(&format!("{field}.timezone"), get(m, "timezone"));
    Some(Schedule { name: name?, kind: kind?, expression: expression?, timezone })
}
