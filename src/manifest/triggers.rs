//! Trigger specs in a manifest: HTTP routes, hooks (database, auth,
//! webhook) and schedules, each read through its own field table. A
//! webhook's `config` and `verification` are read in `webhook.rs`. A
//! schedule's expression and time zone are parsed here, by the scheduler's
//! own parsers (`triggers::schedules::when`), so a bad cron expression or
//! an unknown zone is a manifest problem naming its field.

use std::time::Duration;

use serde_yaml_ng::Value;

use super::check::{Checker, Field, kind_of};
use super::webhook::{self, Verification, Webhook};
use crate::quote::quote;
use crate::triggers::schedules::when::{When, Zone};

#[derive(Debug, Clone, PartialEq)]
pub struct Route {
    /// A path pattern (`/hello/{name}`, `/files/{path...}`), checked.
    pub path: String,
    pub methods: Vec<String>,
    pub access: RouteAccess,
}

/// Who may call a route.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RouteAccess {
    /// Whoever may call the API: an API key when the server has keys.
    Default,
    /// Anyone (`auth: none`): a public endpoint, chosen on purpose.
    Public,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookType {
    Database,
    Auth,
    /// Events of the application's own kinds (`POST /api/events` with
    /// `type: custom`).
    Custom,
    Webhook,
}

impl HookType {
    /// The wire name, spelt out so renaming a variant cannot change it.
    pub fn as_str(self) -> &'static str {
        match self {
            HookType::Database => "database",
            HookType::Auth => "auth",
            HookType::Custom => "custom",
            HookType::Webhook => "webhook",
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HookMode {
    /// Runs before the event's answer, in the chain (the default).
    Sync,
    /// Delivered after the answer, durably, with retries.
    Async,
}

/// What a sync hook's failure (an error or a timeout) does to its chain.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OnFailure {
    /// The chain stops and the event is refused (the default).
    Reject,
    /// The failure is recorded and the next hook runs.
    Continue,
}

/// How an event hook runs: `config.{timeout, on_failure, max_retries,
/// retry_delay}` with their defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct EventConfig {
    pub timeout: Duration,
    pub on_failure: OnFailure,
    /// Async hooks: deliveries retried after the first attempt fails.
    pub max_retries: u32,
    /// Async hooks: the wait before the first retry, doubled for each next.
    pub retry_delay: Duration,
}

impl Default for EventConfig {
    fn default() -> EventConfig {
        EventConfig {
            timeout: Duration::from_secs(5),
            on_failure: OnFailure::Reject,
            max_retries: 3,
            retry_delay: Duration::from_secs(1),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Hook {
    pub kind: HookType,
    /// As written; `*` or none matches every source.
    pub source: Option<String>,
    /// As written; `*` or none matches every action.
    pub action: Option<String>,
    pub mode: HookMode,
    /// Higher runs first; ties by function name.
    pub priority: i64,
    /// How an event hook runs; defaults for webhooks, which do not use it.
    pub event: EventConfig,
    /// Path, methods and verification: `Some` exactly for webhook hooks.
    pub webhook: Option<Webhook>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ScheduleType {
    Cron,
    Interval,
    OneTime,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Schedule {
    /// 1-64 letters, digits, `_`, `-` and `.`; unique in the manifest.
    pub name: String,
    pub kind: ScheduleType,
    /// As written.
    pub expression: String,
    /// The expression, parsed for its type.
    pub when: When,
    /// `timezone`: cron times and a one-time schedule's civil time are read
    /// in it (default UTC).
    pub zone: Zone,
    /// `config.input`, handed to the function as `input.payload` (default
    /// null).
    pub payload: serde_json::Value,
    /// `config.skip_if_running` (default true): a run due while the last
    /// one still goes is skipped and counted.
    pub skip_if_running: bool,
    /// `config.max_retries` (default 0): retries of a failed run, with
    /// backoff.
    pub max_retries: u32,
    /// `config.enabled` (default true): false keeps the schedule listed and
    /// triggerable by hand, but it never fires by itself.
    pub enabled: bool,
}

impl ScheduleType {
    /// The type as manifests and the API spell it.
    pub fn as_str(self) -> &'static str {
        match self {
            ScheduleType::Cron => "cron",
            ScheduleType::Interval => "interval",
            ScheduleType::OneTime => "one_time",
        }
    }
}

const METHODS: &[&str] = &["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"];

/// A route as read so far.
#[derive(Default)]
struct RouteFields {
    path: Option<String>,
    methods: Vec<String>,
    public: bool,
}

/// Every field of a route, in checking order.
const ROUTE_FIELDS: &[Field<RouteFields>] = &[
    Field { key: "path", read: |c, f, v, d| d.path = read_route_path(c, f, v) },
    Field { key: "methods", read: |c, f, v, d| d.methods = read_methods(c, f, v, &["GET"]) },
    Field { key: "auth", read: |c, f, v, d| d.public = read_route_auth(c, f, v) },
];

pub(super) fn read_route(c: &mut Checker, field: &str, value: &Value) -> Option<Route> {
    let d = c.section(field, value, ROUTE_FIELDS)?;
    let access = if d.public { RouteAccess::Public } else { RouteAccess::Default };
    Some(Route { path: d.path?, methods: d.methods, access })
}

fn read_route_path(c: &mut Checker, field: &str, value: Option<&Value>) -> Option<String> {
    let path = c.required_string(field, value)?;
    check_path(c, field, path)
}

/// A path pattern (see `triggers::path`): segments, `{name}`, a last
/// `{rest...}`; routes and webhooks alike.
pub(super) fn check_path(c: &mut Checker, field: &str, path: String) -> Option<String> {
    match crate::triggers::path::Pattern::parse(&path) {
        Ok(_) => Some(path),
        Err(why) => {
            c.error(field, format!("{why} (got {})", quote(&path)));
            None
        }
    }
}

/// `auth: none` makes a route public; the only other value is `default`.
fn read_route_auth(c: &mut Checker, field: &str, value: Option<&Value>) -> bool {
    match c.opt_string(field, value).as_deref() {
        None | Some("default") => false,
        Some("none") => true,
        Some(other) => {
            c.error(field, format!("must be none or default (got {})", quote(other)));
            false
        }
    }
}

/// Upper-cased HTTP methods, each a known one; `default` when none are
/// given (routes: `GET`; webhooks: `POST`).
pub(super) fn read_methods(
    c: &mut Checker,
    field: &str,
    value: Option<&Value>,
    default: &[&str],
) -> Vec<String> {
    let mut methods = c.strings(field, value);
    methods.iter_mut().for_each(|m| *m = m.to_ascii_uppercase());
    for (i, method) in methods.iter().enumerate() {
        if !METHODS.contains(&method.as_str()) {
            c.error(&format!("{field}[{i}]"), format!("unknown HTTP method {}", quote(method)));
        }
    }
    if methods.is_empty() {
        methods = default.iter().map(|m| m.to_string()).collect();
    }
    methods
}

/// A hook as read so far.
#[derive(Default)]
struct HookFields {
    kind: Option<HookType>,
    source: Option<String>,
    action: Option<String>,
    mode: Option<HookMode>,
    priority: i64,
    event: EventConfig,
    timeout: Option<Duration>,
    /// A webhook's path and methods, from its `config`.
    path: Option<String>,
    methods: Vec<String>,
    verification: Option<Verification>,
}

/// Every field of a hook, in checking order.
const HOOK_FIELDS: &[Field<HookFields>] = &[
    Field { key: "type", read: |c, f, v, d| d.kind = read_hook_type(c, f, v) },
    Field { key: "source", read: |c, f, v, d| d.source = c.opt_string(f, v) },
    Field { key: "action", read: |c, f, v, d| d.action = c.opt_string(f, v) },
    Field { key: "mode", read: |c, f, v, d| d.mode = read_hook_mode(c, f, v) },
    Field { key: "priority", read: |c, f, v, d| d.priority = read_priority(c, f, v) },
    Field { key: "config", read: read_hook_config },
    Field {
        key: "verification",
        read: |c, f, v, d| d.verification = webhook::read_verification(c, f, v, d.kind),
    },
];

pub(super) fn read_hook(c: &mut Checker, field: &str, value: &Value) -> Option<Hook> {
    let d = c.section(field, value, HOOK_FIELDS)?;
    if d.kind == Some(HookType::Database) && d.source.is_none() {
        c.error(&format!("{field}.source"), "required for database hooks (the table or collection)");
    }
    let webhook = match d.kind? {
        HookType::Webhook => {
            let (path, methods, timeout) = (d.path?, d.methods, d.timeout);
            Some(Webhook { path, methods, verification: d.verification?, timeout })
        }
        HookType::Database | HookType::Auth | HookType::Custom => None,
    };
    Some(Hook {
        kind: d.kind?,
        source: d.source,
        action: d.action,
        mode: d.mode?,
        priority: d.priority,
        event: d.event,
        webhook,
    })
}

fn read_hook_type(c: &mut Checker, field: &str, value: Option<&Value>) -> Option<HookType> {
    match c.required_string(field, value)?.as_str() {
        "database" => Some(HookType::Database),
        "auth" => Some(HookType::Auth),
        "custom" => Some(HookType::Custom),
        "webhook" => Some(HookType::Webhook),
        other => {
            let message =
                format!("{} is not a hook type (use database, auth, custom or webhook)", quote(other));
            c.error(field, message);
            None
        }
    }
}

/// `sync` unless `async` is asked for.
fn read_hook_mode(c: &mut Checker, field: &str, value: Option<&Value>) -> Option<HookMode> {
    match c.opt_string(field, value).as_deref() {
        None | Some("sync") => Some(HookMode::Sync),
        Some("async") => Some(HookMode::Async),
        Some(other) => {
            c.error(field, format!("{} is not a mode (use sync or async)", quote(other)));
            None
        }
    }
}

/// A whole number, 0 when absent.
fn read_priority(c: &mut Checker, field: &str, value: Option<&Value>) -> i64 {
    match value {
        None | Some(Value::Null) => 0,
        Some(Value::Number(n)) if n.as_i64().is_some() => n.as_i64().unwrap_or_default(),
        Some(other) => {
            c.error(field, format!("must be a whole number, got {}", kind_of(other)));
            0
        }
    }
}

/// Every field of an event hook's `config`, in checking order.
const EVENT_CONFIG_FIELDS: &[Field<EventConfig>] = &[
    Field {
        key: "timeout",
        read: |c, f, v, d| d.timeout = c.duration(f, v).unwrap_or(EventConfig::default().timeout),
    },
    Field { key: "on_failure", read: |c, f, v, d| d.on_failure = read_on_failure(c, f, v) },
    Field {
        key: "max_retries",
        read: |c, f, v, d| {
            d.max_retries =
                read_retries(c, f, v, MAX_HOOK_RETRIES).unwrap_or(EventConfig::default().max_retries)
        },
    },
    Field {
        key: "retry_delay",
        read: |c, f, v, d| d.retry_delay = c.duration(f, v).unwrap_or(EventConfig::default().retry_delay),
    },
];

/// The hook's config: a webhook's is a section of its own (`path`,
/// `methods`, `timeout`); an event hook's is [`EVENT_CONFIG_FIELDS`].
fn read_hook_config(c: &mut Checker, field: &str, value: Option<&Value>, d: &mut HookFields) {
    if d.kind == Some(HookType::Webhook) {
        let config = webhook::read_config(c, field, value);
        (d.path, d.methods, d.timeout) = (config.path, config.methods, config.timeout);
        return;
    }
    d.event = match value.filter(|v| !v.is_null()) {
        None => EventConfig::default(),
        Some(v) => c.section(field, v, EVENT_CONFIG_FIELDS).unwrap_or_default(),
    };
}

fn read_on_failure(c: &mut Checker, field: &str, value: Option<&Value>) -> OnFailure {
    match c.opt_string(field, value).as_deref() {
        None | Some("reject") => OnFailure::Reject,
        Some("continue") => OnFailure::Continue,
        Some(other) => {
            c.error(field, format!("{} is not a choice (use reject or continue)", quote(other)));
            OnFailure::Reject
        }
    }
}

/// The most retries a hook may ask for (the delay doubles each time).
pub const MAX_HOOK_RETRIES: u32 = 20;

/// A schedule as read so far.
#[derive(Default)]
struct ScheduleFields {
    name: Option<String>,
    kind: Option<ScheduleType>,
    zone: Option<Zone>,
    expression: Option<(String, When)>,
    config: ScheduleConfig,
}

/// Every field of a schedule, in checking order (`type` and `timezone`
/// before `expression`, whose reading depends on them).
const SCHEDULE_FIELDS: &[Field<ScheduleFields>] = &[
    Field { key: "name", read: |c, f, v, d| d.name = read_schedule_name(c, f, v) },
    Field { key: "type", read: |c, f, v, d| d.kind = read_schedule_type(c, f, v) },
    Field { key: "timezone", read: |c, f, v, d| d.zone = read_zone(c, f, v) },
    Field { key: "expression", read: |c, f, v, d| d.expression = read_expression(c, f, v, d) },
    Field {
        key: "config",
        read: |c, f, v, d| {
            if let Some(value) = v.filter(|v| !v.is_null()) {
                d.config = c.section(f, value, SCHEDULE_CONFIG_FIELDS).unwrap_or_default();
            }
        },
    },
];

/// A schedule's `config` as read so far; `None` is the default.
#[derive(Default)]
struct ScheduleConfig {
    input: serde_json::Value,
    skip_if_running: Option<bool>,
    max_retries: Option<u32>,
    enabled: Option<bool>,
}

/// Every field of a schedule's `config`.
const SCHEDULE_CONFIG_FIELDS: &[Field<ScheduleConfig>] = &[
    Field { key: "input", read: |c, f, v, d| d.input = read_input(c, f, v) },
    Field { key: "skip_if_running", read: |c, f, v, d| d.skip_if_running = c.opt_bool(f, v) },
    Field { key: "max_retries", read: |c, f, v, d| d.max_retries = read_retries(c, f, v, MAX_RETRIES) },
    Field { key: "enabled", read: |c, f, v, d| d.enabled = c.opt_bool(f, v) },
];

/// Most retries of one run: with backoff doubling from 1 s (capped at a
/// minute), 10 retries span about 6 minutes.
pub const MAX_RETRIES: u32 = 10;

/// The `schedules` list: each schedule, and no name twice.
pub(super) fn read_schedules(c: &mut Checker, field: &str, value: Option<&Value>) -> Vec<Schedule> {
    let schedules = c.each(field, value, read_schedule);
    for (i, schedule) in schedules.iter().enumerate() {
        if schedules[..i].iter().any(|s| s.name == schedule.name) {
            c.error(
                &format!("{field}[{i}].name"),
                format!("{} is used twice; names must be unique", quote(&schedule.name)),
            );
        }
    }
    schedules
}

pub(super) fn read_schedule(c: &mut Checker, field: &str, value: &Value) -> Option<Schedule> {
    let d = c.section(field, value, SCHEDULE_FIELDS)?;
    let (expression, when) = d.expression?;
    let config = d.config;
    Some(Schedule {
        name: d.name?,
        kind: d.kind?,
        expression,
        when,
        zone: d.zone?,
        payload: config.input,
        skip_if_running: config.skip_if_running.unwrap_or(true),
        max_retries: config.max_retries.unwrap_or(0),
        enabled: config.enabled.unwrap_or(true),
    })
}

/// A name that is safe in a URL path and a file: 1-64 of `[A-Za-z0-9_.-]`.
fn read_schedule_name(c: &mut Checker, field: &str, value: Option<&Value>) -> Option<String> {
    let name = c.required_string(field, value)?;
    let valid = (1..=64).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_alphanumeric() || matches!(b, b'_' | b'-' | b'.'));
    if !valid {
        c.error(
            field,
            format!("{} is not a valid name (use 1-64 letters, digits, _, - and .)", quote(&name)),
        );
        return None;
    }
    Some(name)
}

fn read_schedule_type(c: &mut Checker, field: &str, value: Option<&Value>) -> Option<ScheduleType> {
    match c.required_string(field, value)?.as_str() {
        "cron" => Some(ScheduleType::Cron),
        "interval" => Some(ScheduleType::Interval),
        "one_time" => Some(ScheduleType::OneTime),
        other => {
            c.error(
                field,
                format!("{} is not a schedule type (use cron, interval or one_time)", quote(other)),
            );
            None
        }
    }
}

/// An IANA zone; UTC when absent.
fn read_zone(c: &mut Checker, field: &str, value: Option<&Value>) -> Option<Zone> {
    let Some(name) = c.opt_string(field, value) else {
        return Some(Zone::utc());
    };
    Zone::parse(&name).map_err(|why| c.error(field, why)).ok()
}

/// The expression, parsed for the schedule's type (unread when the type or
/// the zone is wrong: that problem is already reported).
fn read_expression(
    c: &mut Checker,
    field: &str,
    value: Option<&Value>,
    d: &ScheduleFields,
) -> Option<(String, When)> {
    let expression = c.required_string(field, value)?;
    let parsed = match (d.kind?, &d.zone) {
        (ScheduleType::Cron, _) => When::cron(&expression),
        (ScheduleType::Interval, _) => When::interval(&expression),
        (ScheduleType::OneTime, Some(zone)) => When::once(&expression, zone),
        (ScheduleType::OneTime, None) => return None,
    };
    match parsed {
        Ok(when) => Some((expression, when)),
        Err(why) => {
            c.error(field, why);
            None
        }
    }
}

/// Any YAML value that JSON can hold (maps with string keys); null when
/// absent.
fn read_input(c: &mut Checker, field: &str, value: Option<&Value>) -> serde_json::Value {
    let Some(value) = value else {
        return serde_json::Value::Null;
    };
    serde_json::to_value(value).unwrap_or_else(|e| {
        c.error(field, format!("must be a value JSON can hold (maps need string keys): {e}"));
        serde_json::Value::Null
    })
}

/// A count of retries, 0 to `max`; `None` when absent (or wrong: an error).
fn read_retries(c: &mut Checker, field: &str, value: Option<&Value>, max: u32) -> Option<u32> {
    match value? {
        Value::Null => None,
        Value::Number(n) if n.as_u64().is_some_and(|n| n <= u64::from(max)) => n.as_u64().map(|n| n as u32),
        other => {
            let got = match other {
                Value::Number(n) => n.to_string(),
                other => kind_of(other).to_string(),
            };
            c.error(field, format!("must be a whole number from 0 to {max}, got {got}"));
            None
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::check::every_field;
    use super::*;

    /// Reads `text` (one trigger) with `read`; the problems as the user sees them.
    fn read_one<T>(
        text: &str,
        read: fn(&mut Checker, &str, &Value) -> Option<T>,
    ) -> (Option<T>, Vec<String>) {
        let mut c = Checker::new("/nonexistent/f".as_ref(), "m.yaml".as_ref());
        c.name = Some("f".into());
        let value: Value = serde_yaml_ng::from_str(text).unwrap();
        let trigger = read(&mut c, "t", &value);
        (trigger, c.problems.iter().map(ToString::to_string).collect())
    }

    #[track_caller]
    fn accepted<T>(text: &str, read: fn(&mut Checker, &str, &Value) -> Option<T>) -> T {
        let (trigger, problems) = read_one(text, read);
        assert!(problems.is_empty(), "{text}\n{problems:?}");
        trigger.unwrap()
    }

    #[test]
    fn routes_default_to_get_and_to_the_servers_auth() {
        let route = accepted(r#"{path: "/hello/{name}"}"#, read_route);
        assert_eq!((route.methods, route.access), (vec!["GET".to_string()], RouteAccess::Default));
        let public = accepted("{path: /p, methods: [post, GET], auth: none}", read_route);
        assert_eq!(
            (public.methods, public.access),
            (vec!["POST".to_string(), "GET".to_string()], RouteAccess::Public)
        );
    }

    #[test]
    fn bad_route_paths_and_auth_values_name_the_field() {
        for (text, expected) in [
            (r#"{path: "/a/{x...}/b"}"#, "t.path: {x...} must be the last segment"),
            ("{path: nope}", "t.path: must start with /"),
            ("{path: /a, auth: open}", "t.auth: must be none or default"),
        ] {
            let (_, problems) = read_one(text, read_route);
            assert!(problems.iter().any(|p| p.contains(expected)), "{text}: {problems:?}");
        }
    }

    #[test]
    fn every_known_trigger_field_is_read_without_a_warning() {
        accepted(&every_field(ROUTE_FIELDS, route_sample), read_route);
        let hook = accepted(&every_field(HOOK_FIELDS, hook_sample), read_hook);
        assert_eq!(hook.webhook.unwrap().timeout, Some(Duration::from_secs(5)));
        let config = every_field(EVENT_CONFIG_FIELDS, event_config_sample);
        let event = accepted(&format!("{{type: custom, config: {config}}}"), read_hook);
        let expected = EventConfig {
            timeout: Duration::from_secs(2),
            on_failure: OnFailure::Continue,
            max_retries: 7,
            retry_delay: Duration::from_millis(50),
        };
        assert_eq!(event.event, expected);
        accepted(&every_field(SCHEDULE_FIELDS, schedule_sample), read_schedule);
    }

    /// Valid values for each table's fields; a new field needs one here.
    fn route_sample(key: &str) -> String {
        match key {
            "path" => "/x".into(),
            "methods" => "[get]".into(),
            "auth" => "none".into(),
            other => panic!("no sample value for the new route field `{other}`; add one"),
        }
    }

    /// A webhook, the one hook type that reads every field (the fields of
    /// its `config` and `verification` are sampled in `webhook.rs`).
    fn hook_sample(key: &str) -> String {
        match key {
            "type" => "webhook".into(),
            "source" => "stripe".into(),
            "action" => "payment".into(),
            "mode" => "sync".into(),
            "priority" => "3".into(),
            "config" => "{timeout: 5s, path: /in}".into(),
            "verification" => "{type: stripe, secret: s3cret}".into(),
            other => panic!("no sample value for the new hook field `{other}`; add one"),
        }
    }

    fn event_config_sample(key: &str) -> String {
        match key {
            "timeout" => "2s".into(),
            "on_failure" => "continue".into(),
            "max_retries" => "7".into(),
            "retry_delay" => "50ms".into(),
            other => panic!("no sample value for the new event hook config field `{other}`; add one"),
        }
    }

    fn schedule_sample(key: &str) -> String {
        match key {
            "name" => "nightly".into(),
            "type" => "cron".into(),
            "expression" => "'0 3 * * *'".into(),
            "timezone" => "Europe/Berlin".into(),
            "config" => every_field(SCHEDULE_CONFIG_FIELDS, schedule_config_sample),
            other => panic!("no sample value for the new schedule field `{other}`; add one"),
        }
    }

    fn schedule_config_sample(key: &str) -> String {
        match key {
            "input" => "{report: daily}".into(),
            "skip_if_running" => "false".into(),
            "max_retries" => "2".into(),
            "enabled" => "false".into(),
            other => panic!("no sample value for the new schedule config field `{other}`; add one"),
        }
    }

    #[test]
    fn event_hooks_default_to_sync_reject_and_match_anything_left_out() {
        let hook = accepted("{type: auth}", read_hook);
        assert_eq!((hook.mode, hook.priority, hook.source, hook.action), (HookMode::Sync, 0, None, None));
        assert_eq!(hook.event, EventConfig::default());
        assert_eq!(hook.event.timeout, Duration::from_secs(5));
        let star =
            accepted("{type: database, source: '*', action: '*', mode: async, priority: -2}", read_hook);
        assert_eq!((star.mode, star.priority), (HookMode::Async, -2));
        assert_eq!((star.source.as_deref(), star.action.as_deref()), (Some("*"), Some("*")));
    }

    #[test]
    fn bad_event_hook_fields_name_the_field() {
        let problems = |text| read_one(text, read_hook).1;
        assert_eq!(
            problems("{type: custom, priority: high}"),
            ["m.yaml: t.priority: must be a whole number, got a string"]
        );
        assert_eq!(
            problems("{type: custom, config: {on_failure: ignore}}"),
            ["m.yaml: t.config.on_failure: \"ignore\" is not a choice (use reject or continue)"]
        );
        assert_eq!(
            problems("{type: custom, config: {max_retries: 99}}"),
            ["m.yaml: t.config.max_retries: must be a whole number from 0 to 20, got 99"]
        );
        assert_eq!(
            problems("{type: custom, config: {timeout: 0s}}"),
            ["m.yaml: t.config.timeout: must be above zero"]
        );
        let unknown = problems("{type: custom, config: {timout: 1s}}");
        assert!(unknown[0].starts_with("m.yaml: warning: t.config.timout: unknown field"), "{unknown:?}");
        assert_eq!(
            problems("{type: custom, verification: {secret: x}}"),
            ["m.yaml: warning: t.verification: only webhook hooks are verified; it is ignored"]
        );
        assert_eq!(
            problems("{type: cron}"),
            ["m.yaml: t.type: \"cron\" is not a hook type (use database, auth, custom or webhook)"]
        );
    }

    #[test]
    fn schedules_default_to_utc_and_their_config_defaults() {
        let schedule = accepted("{name: tick, type: interval, expression: 30s}", read_schedule);
        assert_eq!(
            (schedule.zone.name(), schedule.when, schedule.payload),
            ("UTC", When::Interval(Duration::from_secs(30)), serde_json::Value::Null)
        );
        assert_eq!((schedule.skip_if_running, schedule.max_retries, schedule.enabled), (true, 0, true));
        let text = "{name: n, type: cron, expression: '@daily', timezone: europe/berlin, config: {input: {a: [1]}, skip_if_running: false, max_retries: 3, enabled: false}}";
        let schedule = accepted(text, read_schedule);
        assert_eq!((schedule.zone.name(), schedule.expression.as_str()), ("Europe/Berlin", "@daily"));
        assert_eq!(schedule.payload, serde_json::json!({"a": [1]}));
        assert_eq!((schedule.skip_if_running, schedule.max_retries, schedule.enabled), (false, 3, false));
    }

    #[test]
    fn a_one_time_civil_time_is_read_in_the_schedules_zone() {
        let text = "{name: n, type: one_time, expression: '2026-12-01T09:00', timezone: Europe/Berlin}";
        let schedule = accepted(text, read_schedule);
        assert_eq!(schedule.when, When::Once("2026-12-01T08:00:00Z".parse().unwrap()));
    }

    #[test]
    fn bad_schedules_name_the_field() {
        for (text, expected) in [
            (
                "{name: n, type: cron, expression: '99 * * * *'}",
                "t.expression: \"99 * * * *\": the minute field \"99\": 99 is outside 0-59",
            ),
            ("{name: n, type: cron, expression: '* * *'}", "t.expression: \"* * *\": has 3 fields"),
            ("{name: n, type: interval, expression: soon}", "t.expression: \"soon\" is not an interval"),
            (
                "{name: n, type: one_time, expression: tomorrow}",
                "t.expression: \"tomorrow\" is not a date-time",
            ),
            (
                "{name: n, type: cron, expression: '@daily', timezone: Not/AZone}",
                "t.timezone: \"Not/AZone\" is not an IANA time zone",
            ),
            ("{name: n, type: weekly, expression: x}", "t.type: \"weekly\" is not a schedule type"),
            ("{name: 'a b', type: cron, expression: '@daily'}", "t.name: \"a b\" is not a valid name"),
            (
                "{name: n, type: cron, expression: '@daily', config: {max_retries: 11}}",
                "t.config.max_retries: must be a whole number from 0 to 10, got 11",
            ),
            (
                "{name: n, type: cron, expression: '@daily', config: {enabled: maybe}}",
                "t.config.enabled: must be true or false",
            ),
            (
                "{name: n, type: cron, expression: '@daily', config: {retries: 1}}",
                "warning: t.config.retries: unknown field",
            ),
        ] {
            let (_, problems) = read_one(text, read_schedule);
            assert!(problems.iter().any(|p| p.contains(expected)), "{text}: {problems:?}");
        }
    }

    #[test]
    fn schedule_names_are_unique_in_a_manifest() {
        let mut c = Checker::new("/nonexistent/f".as_ref(), "m.yaml".as_ref());
        let value: Value = serde_yaml_ng::from_str(
            "[{name: a, type: interval, expression: 1m}, {name: a, type: interval, expression: 2m}]",
        )
        .unwrap();
        read_schedules(&mut c, "schedules", Some(&value));
        let problems: Vec<String> = c.problems.iter().map(ToString::to_string).collect();
        assert_eq!(problems, ["m.yaml: schedules[1].name: \"a\" is used twice; names must be unique"]);
    }
}
