//! Server configuration: `alyx.yaml` (optional) < environment (`ALYX_*`) <
//! command-line flags, merged from one table of settings and then turned
//! into a typed, immutable [`ServeConfig`] in one step. The same table
//! produces `alyx serve --help`, so every setting documents its default.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use std::sync::OnceLock;

use crate::cli::{Args, Opt};
use crate::error::Error;
use crate::runtime::LogLevel;
use crate::units::{parse_duration, parse_size};

/// One setting: its name in the YAML file (and, with `-` for `_`, its
/// flag), its environment variable, its default and its help text.
pub struct Setting {
    pub key: &'static str,
    pub env: &'static str,
    pub default: &'static str,
    pub help: &'static str,
}

/// Every setting of `alyx serve` and `alyx dev`.
pub const SETTINGS: &[Setting] = &[
    Setting {
        key: "listen",
        env: "ALYX_LISTEN",
        default: "127.0.0.1:8090",
        help: "address to listen on; port 0 picks a free port",
    },
    Setting { key: "dir", env: "ALYX_DIR", default: "./functions", help: "the functions folder" },
    Setting { key: "workers", env: "ALYX_WORKERS", default: "8", help: "HTTP worker threads" },
    Setting {
        key: "timeout",
        env: "ALYX_TIMEOUT",
        default: "30s",
        help: "default time limit of one invocation",
    },
    Setting {
        key: "memory",
        env: "ALYX_MEMORY",
        default: "256MiB",
        help: "default memory cap of a function",
    },
    Setting {
        key: "instances",
        env: "ALYX_INSTANCES",
        default: "4",
        help: "most instances of one function at once",
    },
    Setting { key: "max_body", env: "ALYX_MAX_BODY", default: "4MiB", help: "largest request body accepted" },
    Setting {
        key: "max_connections",
        env: "ALYX_MAX_CONNECTIONS",
        default: "10000",
        help: "open connections at most (also bounded by the open-file limit); above: 503",
    },
    Setting {
        key: "max_header_bytes",
        env: "ALYX_MAX_HEADER_BYTES",
        default: "64KiB",
        help: "largest request head (request line and headers); above: 431",
    },
    Setting {
        key: "header_timeout",
        env: "ALYX_HEADER_TIMEOUT",
        default: "10s",
        help: "a request head must arrive within this; else 408",
    },
    Setting {
        key: "body_timeout",
        env: "ALYX_BODY_TIMEOUT",
        default: "10s",
        help: "longest pause between bytes of a request body; else 408",
    },
    Setting {
        key: "keepalive_timeout",
        env: "ALYX_KEEPALIVE_TIMEOUT",
        default: "5s",
        help: "an idle keep-alive connection is closed after this",
    },
    Setting {
        key: "queue_depth",
        env: "ALYX_QUEUE_DEPTH",
        default: "64",
        help: "calls that may wait for a busy function before 503",
    },
    Setting {
        key: "api_keys",
        env: "ALYX_API_KEYS",
        default: "",
        help: "comma-separated keys required to invoke functions (empty: none needed)",
    },
    Setting {
        key: "admin_token",
        env: "ALYX_ADMIN_TOKEN",
        default: "",
        help: "token for admin endpoints (empty: admin endpoints disabled)",
    },
    Setting {
        key: "public_url",
        env: "ALYX_PUBLIC_URL",
        default: "",
        help: "URL functions call back to (default: http://LISTEN)",
    },
    Setting {
        key: "grace",
        env: "ALYX_GRACE",
        default: "10s",
        help: "how long shutdown waits for requests in flight",
    },
    Setting {
        key: "log_level",
        env: "ALYX_LOG_LEVEL",
        default: "info",
        help: "plugin log level: trace, debug, info, warn, error, off",
    },
    Setting {
        key: "log_format",
        env: "ALYX_LOG_FORMAT",
        default: "text",
        help: "server log lines on stderr: text, or json (one object per line)",
    },
    Setting {
        key: "debounce_sources",
        env: "ALYX_DEBOUNCE_SOURCES",
        default: "100ms",
        help: "alyx dev: quiet period after a source change before building",
    },
    Setting {
        key: "debounce_plugins",
        env: "ALYX_DEBOUNCE_PLUGINS",
        default: "200ms",
        help: "alyx dev: quiet period after a plugin or manifest change before reloading",
    },
    Setting {
        key: "build_timeout",
        env: "ALYX_BUILD_TIMEOUT",
        default: "5m",
        help: "alyx dev: a build running longer is killed",
    },
    Setting {
        key: "idle_instance_ttl",
        env: "ALYX_IDLE_INSTANCE_TTL",
        default: "60s",
        help: "idle instances beyond one per function are dropped after this long",
    },
    Setting {
        key: "history",
        env: "ALYX_HISTORY",
        default: "1000",
        help: "execution records kept in memory for /api/executions (0: none)",
    },
    Setting {
        key: "history_file",
        env: "ALYX_HISTORY_FILE",
        default: "",
        help: "also append every execution record to this file as JSON lines (empty: no file)",
    },
    Setting {
        key: "history_file_max",
        env: "ALYX_HISTORY_FILE_MAX",
        default: "10MiB",
        help: "the history file is renamed to FILE.1 (replacing it) before it grows past this",
    },
    Setting {
        key: "data_dir",
        env: "ALYX_DATA_DIR",
        default: "./.alyx",
        help: "where the event journal and schedule state are kept (created if missing)",
    },
    Setting {
        key: "event_workers",
        env: "ALYX_EVENT_WORKERS",
        default: "2",
        help: "threads delivering async events",
    },
    Setting {
        key: "event_queue",
        env: "ALYX_EVENT_QUEUE",
        default: "10000",
        help: "async deliveries waiting at most; above: 503",
    },
    Setting {
        key: "event_queue_bytes",
        env: "ALYX_EVENT_QUEUE_BYTES",
        default: "256MiB",
        help: "the events of async deliveries waiting or failed, at most (memory and journal); above: 503",
    },
    Setting {
        key: "event_depth",
        env: "ALYX_EVENT_DEPTH",
        default: "8",
        help: "events raised from hooks nest at most this deep; deeper: refused",
    },
    Setting {
        key: "schedules",
        env: "ALYX_SCHEDULES",
        default: "true",
        help: "run the manifests' schedules (false: one replica of several schedules; --no-schedules)",
    },
];

/// The typed configuration of a server.
#[derive(Debug, Clone, PartialEq)]
pub struct ServeConfig {
    pub listen: String,
    pub dir: PathBuf,
    pub workers: usize,
    pub timeout: Duration,
    pub memory: u64,
    pub instances: usize,
    pub max_body: u64,
    pub max_connections: usize,
    pub max_header_bytes: u64,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub queue_depth: usize,
    pub api_keys: Vec<ApiKey>,
    pub admin_token: Option<String>,
    pub public_url: Option<String>,
    pub grace: Duration,
    pub log_level: LogLevel,
    pub log_format: LogFormat,
    /// Not a setting: where invocations are told (`alyx dev` sets
    /// [`Echo::Terminal`]; by default failures go to the server log).
    pub echo: crate::echo::Echo,
    pub debounce_sources: Duration,
    pub debounce_plugins: Duration,
    pub build_timeout: Duration,
    pub idle_instance_ttl: Duration,
    pub history: usize,
    pub history_file: Option<PathBuf>,
    pub history_file_max: u64,
    pub data_dir: PathBuf,
    pub event_workers: usize,
    pub event_queue: usize,
    pub event_queue_bytes: u64,
    pub event_depth: u32,
    pub schedules: bool,
}

/// One of the `api_keys`: the name functions see in `context.auth.key`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ApiKey {
    pub name: String,
    pub key: String,
}

/// `ci:KEY1,deploy:KEY2` (the YAML map `{ci: KEY1, deploy: KEY2}`), or
/// plain keys named by position (`KEY1,KEY2` are `key1` and `key2`). An
/// entry is named when the part before its first `:` is a name (lowercase
/// letters, digits, `-`, `_`), as base64 and hex keys never hold a `:`.
fn api_keys(text: &str) -> Result<Vec<ApiKey>, String> {
    let mut keys: Vec<ApiKey> = Vec::new();
    let entries = text.split(',').map(str::trim).filter(|k| !k.is_empty());
    for (i, entry) in entries.enumerate() {
        let key = match entry.split_once(':') {
            Some((name, key)) if crate::manifest::valid_name(name) && !key.is_empty() => {
                ApiKey { name: name.to_string(), key: key.to_string() }
            }
            _ => ApiKey { name: format!("key{}", i + 1), key: entry.to_string() },
        };
        if keys.iter().any(|k| k.name == key.name) {
            return Err(format!("api_keys: the name {} is given twice", crate::quote::quote(&key.name)));
        }
        keys.push(key);
    }
    Ok(keys)
}

/// How the server log is written on stderr.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// `[2026-11-25T20:11:07.783Z INFO  alyx::registry] message`
    Text,
    /// `{"time": "…", "level": "INFO", "target": "alyx::registry", "message": "…"}`
    Json,
}

impl Default for ServeConfig {
    /// Every setting at its documented default.
    fn default() -> ServeConfig {
        build(&merge(&BTreeMap::new(), &BTreeMap::new(), &BTreeMap::new()))
            .expect("the documented defaults are valid (tested)")
    }
}

/// The options `alyx serve`, `dev` and `validate` accept: `--config FILE`,
/// `--no-schedules` (the same as `--schedules false`) and one per setting
/// (`--max-body` or `--max_body`).
pub fn options() -> &'static [Opt] {
    static OPTIONS: OnceLock<Vec<Opt>> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let mut options = vec![Opt::value("config"), Opt::switch("no_schedules")];
        options.extend(SETTINGS.iter().map(|s| Opt::value(s.key)));
        options
    })
}

/// Builds the configuration from the parsed flags, the process environment
/// and the configuration file.
pub fn load(args: &Args) -> Result<ServeConfig, Error> {
    let env: BTreeMap<String, String> = std::env::vars().collect();
    let flags = flag_values(args);
    let file_values = read_file(args.value("config")).map_err(Error::Config)?;
    build(&merge(&file_values, &env, &flags)).map_err(Error::Config)
}

/// The settings given as flags; `--no-schedules` is `--schedules false`
/// (the last of the two wins).
fn flag_values(args: &Args) -> BTreeMap<String, String> {
    let mut flags = BTreeMap::new();
    for (name, value) in args.options.iter().filter(|(name, _)| *name != "config") {
        match (*name, value) {
            ("no_schedules", _) => flags.insert("schedules".to_string(), "false".to_string()),
            (name, Some(value)) => flags.insert(name.to_string(), value.clone()),
            (_, None) => None,
        };
    }
    flags
}

/// The YAML file's settings; `alyx.yaml` in the current folder is read if
/// it exists and no file was named.
fn read_file(named: Option<&str>) -> Result<BTreeMap<String, String>, String> {
    let path = named.unwrap_or("alyx.yaml");
    let text = match std::fs::read_to_string(path) {
        Ok(text) => text,
        Err(e) if named.is_none() && e.kind() == std::io::ErrorKind::NotFound => return Ok(BTreeMap::new()),
        Err(e) => return Err(format!("cannot read {path}: {e}")),
    };
    parse_file(path, &text)
}

fn parse_file(path: &str, text: &str) -> Result<BTreeMap<String, String>, String> {
    let map: Option<BTreeMap<String, serde_yaml_ng::Value>> = serde_yaml_ng::from_str(text)
        .map_err(|e| format!("{path}: not valid YAML: {}", crate::quote::clip(&e.to_string())))?;
    let mut out = BTreeMap::new();
    for (key, value) in map.unwrap_or_default() {
        if !SETTINGS.iter().any(|s| s.key == key) {
            return Err(format!("{path}: {key}: unknown setting (see `alyx serve --help`)"));
        }
        let text = match value {
            serde_yaml_ng::Value::String(s) => s,
            serde_yaml_ng::Value::Number(n) => n.to_string(),
            serde_yaml_ng::Value::Bool(b) => b.to_string(),
            serde_yaml_ng::Value::Null => String::new(),
            serde_yaml_ng::Value::Sequence(items) => {
                items.iter().filter_map(|v| v.as_str().map(String::from)).collect::<Vec<_>>().join(",")
            }
            // Only api_keys reads `name:value` entries; elsewhere they fail.
            serde_yaml_ng::Value::Mapping(entries) => entries
                .iter()
                .filter_map(|(k, v)| Some(format!("{}:{}", scalar(k)?, scalar(v)?)))
                .collect::<Vec<_>>()
                .join(","),
            _ => return Err(format!("{path}: {key}: must be a value, a list or a map")),
        };
        out.insert(key, text);
    }
    Ok(out)
}

/// A YAML scalar as text.
fn scalar(value: &serde_yaml_ng::Value) -> Option<String> {
    match value {
        serde_yaml_ng::Value::String(s) => Some(s.clone()),
        serde_yaml_ng::Value::Number(n) => Some(n.to_string()),
        serde_yaml_ng::Value::Bool(b) => Some(b.to_string()),
        _ => None,
    }
}

/// Defaults < file < environment < flags.
fn merge(
    file: &BTreeMap<String, String>,
    env: &BTreeMap<String, String>,
    flags: &BTreeMap<String, String>,
) -> BTreeMap<&'static str, String> {
    SETTINGS
        .iter()
        .map(|s| {
            let value = flags
                .get(s.key)
                .or_else(|| env.get(s.env))
                .or_else(|| file.get(s.key))
                .cloned()
                .unwrap_or_else(|| s.default.to_string());
            (s.key, value)
        })
        .collect()
}

fn build(v: &BTreeMap<&'static str, String>) -> Result<ServeConfig, String> {
    let get = |key: &str| v.get(key).map(String::as_str).unwrap_or_default();
    let number = |key: &str| -> Result<usize, String> {
        get(key)
            .trim()
            .parse()
            .ok()
            .filter(|n| *n > 0)
            .ok_or_else(|| format!("{key}: must be a whole number above 0"))
    };
    let duration = |key: &str| parse_duration(get(key)).map_err(|e| format!("{key}: {e}"));
    let size = |key: &str| parse_size(get(key)).map_err(|e| format!("{key}: {e}"));
    let optional = |key: &str| Some(get(key).trim().to_string()).filter(|s| !s.is_empty());
    Ok(ServeConfig {
        listen: get("listen").to_string(),
        dir: PathBuf::from(get("dir")),
        workers: number("workers")?,
        timeout: duration("timeout")?,
        memory: size("memory")?,
        instances: number("instances")?,
        max_body: size("max_body")?,
        max_connections: number("max_connections")?,
        max_header_bytes: size("max_header_bytes")?,
        header_timeout: duration("header_timeout")?,
        body_timeout: duration("body_timeout")?,
        keepalive_timeout: duration("keepalive_timeout")?,
        queue_depth: get("queue_depth").trim().parse().map_err(|_| "queue_depth: must be a whole number")?,
        api_keys: api_keys(get("api_keys"))?,
        admin_token: optional("admin_token"),
        public_url: optional("public_url"),
        grace: duration("grace")?,
        log_level: LogLevel::parse(get("log_level")).map_err(|e| format!("log_level: {e}"))?,
        log_format: match get("log_format").trim() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            other => {
                return Err(format!("log_format: must be text or json (got {})", crate::quote::quote(other)));
            }
        },
        echo: crate::echo::Echo::default(),
        debounce_sources: duration("debounce_sources")?,
        debounce_plugins: duration("debounce_plugins")?,
        build_timeout: duration("build_timeout")?,
        idle_instance_ttl: Some(duration("idle_instance_ttl")?)
            .filter(|ttl| !ttl.is_zero())
            .ok_or("idle_instance_ttl: must be above 0")?,
        history: get("history").trim().parse().map_err(|_| "history: must be a whole number")?,
        history_file: optional("history_file").map(PathBuf::from),
        history_file_max: Some(size("history_file_max")?)
            .filter(|max| *max > 0)
            .ok_or("history_file_max: must be above 0")?,
        data_dir: PathBuf::from(get("data_dir")),
        event_workers: number("event_workers")?,
        event_queue: number("event_queue")?,
        event_queue_bytes: Some(size("event_queue_bytes")?)
            .filter(|max| *max > 0)
            .ok_or("event_queue_bytes: must be above 0")?,
        event_depth: u32::try_from(number("event_depth")?).map_err(|_| "event_depth: too large")?,
        schedules: match get("schedules").trim() {
            "true" | "yes" | "on" | "1" => true,
            "false" | "no" | "off" | "0" => false,
            other => {
                return Err(format!("schedules: must be true or false (got {})", crate::quote::quote(other)));
            }
        },
    })
}

/// The options part of `alyx serve --help`.
pub fn help() -> String {
    let mut out = String::from("options (flag, environment variable, default):\n");
    out.push_str("  --config FILE            settings file (default: ./alyx.yaml if present)\n");
    out.push_str("  --no-schedules           the same as --schedules false\n");
    for s in SETTINGS {
        let flag = format!("--{} VALUE", s.key.replace('_', "-"));
        let default = if s.default.is_empty() { "none" } else { s.default };
        out.push_str(&format!("  {flag:<24} {}\n  {:<24} {}, default {default}\n", s.help, "", s.env));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect()
    }

    /// The flags of a command line, as `load` takes them.
    fn parse_flags(text: &str) -> Result<(BTreeMap<String, String>, Option<String>), String> {
        let raw: Vec<String> = text.split_whitespace().map(String::from).collect();
        let args = Args::parse(&raw, options()).map_err(|e| e.to_string())?;
        Ok((flag_values(&args), args.value("config").map(String::from)))
    }

    #[test]
    fn no_schedules_means_schedules_false() {
        let built = |text: &str| build(&merge(&map(&[]), &map(&[]), &parse_flags(text).unwrap().0)).unwrap();
        assert!(built("").schedules);
        assert!(!built("--no-schedules").schedules);
        assert!(!built("--schedules false").schedules);
        assert!(!built("--schedules true --no-schedules").schedules);
        let env = map(&[("ALYX_SCHEDULES", "true")]);
        let flags = parse_flags("--no_schedules").unwrap().0;
        assert!(!build(&merge(&map(&[]), &env, &flags)).unwrap().schedules, "the flag beats the environment");
        assert!(parse_flags("--no-schedules=yes").unwrap_err().contains("takes no value"));
    }

    #[test]
    fn defaults_make_a_valid_config() {
        let c = build(&merge(&map(&[]), &map(&[]), &map(&[]))).unwrap();
        assert_eq!(c.listen, "127.0.0.1:8090");
        assert_eq!((c.timeout, c.memory, c.admin_token), (Duration::from_secs(30), 256 << 20, None));
        assert_eq!(c.idle_instance_ttl, Duration::from_secs(60));
        assert_eq!((c.history, c.history_file, c.history_file_max), (1000, None, 10 << 20));
        assert_eq!(c.data_dir, PathBuf::from("./.alyx"));
        assert_eq!((c.event_workers, c.event_queue, c.event_depth, c.schedules), (2, 10000, 8, true));
    }

    #[test]
    fn flags_beat_environment_beat_file() {
        let file = map(&[("listen", "0.0.0.0:1"), ("workers", "3"), ("timeout", "5s")]);
        let env = map(&[("ALYX_LISTEN", "0.0.0.0:2"), ("ALYX_WORKERS", "4")]);
        let (flags, _) = parse_flags("--listen 0.0.0.0:3").unwrap();
        let c = build(&merge(&file, &env, &flags)).unwrap();
        assert_eq!((c.listen.as_str(), c.workers, c.timeout), ("0.0.0.0:3", 4, Duration::from_secs(5)));
    }

    #[test]
    fn flags_accept_both_forms_and_dashes() {
        let (flags, file) = parse_flags("--max-body=1MiB --queue-depth 3 --config x.yaml").unwrap();
        assert_eq!(flags["max_body"], "1MiB");
        assert_eq!(flags["queue_depth"], "3");
        assert_eq!(file.as_deref(), Some("x.yaml"));
        assert!(parse_flags("--bogus 1").unwrap_err().contains("--bogus"));
        assert!(parse_flags("--listen").unwrap_err().contains("needs a value"));
    }

    #[test]
    fn file_lists_and_unknown_keys() {
        let values = parse_file("alyx.yaml", "api_keys: [a, b]\nworkers: 2").unwrap();
        assert_eq!(values["api_keys"], "a,b");
        let c = build(&merge(&values, &map(&[]), &map(&[]))).unwrap();
        let names: Vec<(&str, &str)> = c.api_keys.iter().map(|k| (&*k.name, &*k.key)).collect();
        assert_eq!(names, [("key1", "a"), ("key2", "b")], "plain keys are named by position");
        assert!(parse_file("alyx.yaml", "wrokers: 2").unwrap_err().contains("wrokers"));
    }

    #[test]
    fn api_keys_have_names() {
        let keys = |yaml: &str| {
            let values = parse_file("alyx.yaml", yaml).unwrap();
            let c = build(&merge(&values, &map(&[]), &map(&[])))?;
            Ok::<_, String>(
                c.api_keys.into_iter().map(|k| format!("{}={}", k.name, k.key)).collect::<Vec<_>>(),
            )
        };
        assert_eq!(keys("api_keys: {ci: s3cret, deploy: 12345}").unwrap(), ["ci=s3cret", "deploy=12345"]);
        assert_eq!(keys("api_keys: 'ci:abc, k2Zm+/=='").unwrap(), ["ci=abc", "key2=k2Zm+/=="]);
        assert_eq!(keys("api_keys: [ci:abc, 'Not A Name:x']").unwrap(), ["ci=abc", "key2=Not A Name:x"]);
        assert!(keys("api_keys: [ci:a, ci:b]").unwrap_err().contains("\"ci\" is given twice"));
    }

    #[test]
    fn bad_values_name_the_setting() {
        let bad = |k: &str, v: &str| build(&merge(&map(&[(k, v)]), &map(&[]), &map(&[]))).unwrap_err();
        assert!(bad("workers", "0").starts_with("workers:"));
        assert!(bad("timeout", "soon").starts_with("timeout:"));
        assert!(bad("memory", "lots").starts_with("memory:"));
        assert!(bad("log_level", "loud").starts_with("log_level:"));
        assert_eq!(bad("idle_instance_ttl", "0s"), "idle_instance_ttl: must be above 0");
        assert_eq!(bad("history", "-1"), "history: must be a whole number");
        assert_eq!(bad("history_file_max", "0"), "history_file_max: must be above 0");
        assert!(bad("schedules", "maybe").starts_with("schedules: must be true or false"));
        assert!(bad("event_queue", "0").starts_with("event_queue:"));
    }

    #[test]
    fn help_lists_every_setting_with_its_default() {
        let text = help();
        for s in SETTINGS {
            assert!(text.contains(s.env), "{}", s.key);
        }
        assert!(text.contains("127.0.0.1:8090"));
    }
}
