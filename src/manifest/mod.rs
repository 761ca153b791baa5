//! Function manifests: raw YAML becomes a validated, typed [`Manifest`] in
//! one step. Durations and sizes are parsed, paths resolved and kept inside
//! the function folder, globs compiled, triggers checked; every problem is
//! reported with its file and field path, and unknown fields are warnings
//! (so a typo like `timout:` is caught without refusing the function).
//!
//! The format keeps every field of the reference design, so its manifests
//! load unchanged.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_yaml_ng::{Mapping, Value};

use crate::units::parse_size;

mod check;
mod triggers;

use check::{Checker, Field, kind_of};
pub use triggers::{Hook, HookMode, HookType, Route, Schedule, ScheduleType, Verification};

/// The manifest file name inside a function folder.
pub const FILE_NAME: &str = "manifest.yaml";

/// A validated manifest.
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest {
    pub name: String,
    /// The function folder.
    pub dir: PathBuf,
    /// Export called for an invocation (default `handle`).
    pub entrypoint: String,
    /// `None` = the server's default.
    pub timeout: Option<Duration>,
    /// Cap on linear memory in bytes; `None` = the server's default.
    pub memory: Option<u64>,
    pub env: BTreeMap<String, String>,
    pub dependencies: Vec<String>,
    pub config: BTreeMap<String, String>,
    pub allowed_hosts: Vec<String>,
    /// The plugin file, inside `dir`.
    pub plugin: PathBuf,
    pub build: Option<Build>,
    pub routes: Vec<Route>,
    pub hooks: Vec<Hook>,
    pub schedules: Vec<Schedule>,
}

/// How to build the plugin from sources (`alyx dev`, `alyx build`).
#[derive(Debug, Clone, PartialEq)]
pub struct Build {
    pub command: String,
    pub args: Vec<String>,
    /// Globs relative to the function folder.
    pub watch: Vec<glob::Pattern>,
    /// The built plugin, inside the function folder.
    pub output: PathBuf,
}

/// How bad a problem is: errors refuse the function, warnings do not.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Severity {
    Error,
    Warning,
}

/// One problem in one manifest, with the field path.
#[derive(Debug, Clone, PartialEq)]
pub struct Problem {
    pub file: PathBuf,
    /// Field path like `hooks[1].verification.secret`; empty for the file.
    pub field: String,
    pub message: String,
    pub severity: Severity,
}

impl fmt::Display for Problem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let level = match self.severity {
            Severity::Error => "",
            Severity::Warning => "warning: ",
        };
        match self.field.as_str() {
            "" => write!(f, "{}: {level}{}", self.file.display(), self.message),
            field => write!(f, "{}: {level}{field}: {}", self.file.display(), self.message),
        }
    }
}

// --- reading ------------------------------------------------------------------

/// The top-level fields as read so far; [`finish`] makes the manifest.
#[derive(Default)]
struct Fields {
    name: Option<String>,
    entrypoint: String,
    timeout: Option<Duration>,
    memory: Option<u64>,
    env: BTreeMap<String, String>,
    dependencies: Vec<String>,
    config: BTreeMap<String, String>,
    allowed_hosts: Vec<String>,
    build: Option<Build>,
    plugin: Option<PathBuf>,
    routes: Vec<Route>,
    hooks: Vec<Hook>,
    schedules: Vec<Schedule>,
}

/// Every top-level field, in checking order: the one list that both the
/// reading and the unknown-field warnings come from.
const FIELDS: &[Field<Fields>] = &[
    Field { key: "name", read: |c, f, v, d| d.name = read_name(c, f, v) },
    Field { key: "runtime", read: |c, f, v, _| check_runtime(c, f, v) },
    Field {
        key: "entrypoint",
        read: |c, f, v, d| d.entrypoint = c.opt_string(f, v).unwrap_or_else(|| "handle".into()),
    },
    Field { key: "timeout", read: |c, f, v, d| d.timeout = c.duration(f, v) },
    Field { key: "memory", read: |c, f, v, d| d.memory = read_memory(c, f, v) },
    Field { key: "env", read: |c, f, v, d| d.env = c.map(f, v) },
    Field { key: "dependencies", read: |c, f, v, d| d.dependencies = c.strings(f, v) },
    Field { key: "config", read: |c, f, v, d| d.config = c.map(f, v) },
    Field { key: "allowed_hosts", read: |c, f, v, d| d.allowed_hosts = read_hosts(c, f, v) },
    Field { key: "build", read: |c, f, v, d| d.build = read_build(c, f, v) },
    Field { key: "plugin", read: |c, f, v, d| d.plugin = read_plugin(c, f, v, d.build.as_ref()) },
    Field { key: "routes", read: |c, f, v, d| d.routes = c.each(f, v, triggers::read_route) },
    Field { key: "hooks", read: |c, f, v, d| d.hooks = c.each(f, v, triggers::read_hook) },
    Field { key: "schedules", read: |c, f, v, d| d.schedules = c.each(f, v, triggers::read_schedule) },
];

/// Parses and validates the manifest text of the function folder `dir`
/// (`file` is the path used in messages). Returns the manifest when it has
/// no errors, and every problem found (warnings included).
pub fn parse(dir: &Path, file: &Path, text: &str) -> (Option<Manifest>, Vec<Problem>) {
    let mut c = Checker { file: file.to_path_buf(), dir: dir.to_path_buf(), problems: Vec::new() };
    let manifest = top_level(&mut c, text).map(|map| c.fields("", &map, FIELDS)).and_then(|d| finish(&c, d));
    (manifest.filter(|_| !c.has_errors()), c.problems)
}

/// The top-level map of fields (empty for an empty file), or an error.
fn top_level(c: &mut Checker, text: &str) -> Option<Mapping> {
    match serde_yaml_ng::from_str::<Value>(text) {
        Ok(Value::Null) => Some(Mapping::new()),
        Ok(Value::Mapping(map)) => Some(map),
        Ok(other) => {
            c.error("", format!("must be a map of fields, got {}", kind_of(&other)));
            None
        }
        Err(e) => {
            c.error("", format!("not valid YAML: {e}"));
            None
        }
    }
}

fn finish(c: &Checker, d: Fields) -> Option<Manifest> {
    Some(Manifest {
        name: d.name?,
        dir: c.dir.clone(),
        entrypoint: d.entrypoint,
        timeout: d.timeout,
        memory: d.memory,
        env: d.env,
        dependencies: d.dependencies,
        config: d.config,
        allowed_hosts: d.allowed_hosts,
        plugin: d.plugin?,
        build: d.build,
        routes: d.routes,
        hooks: d.hooks,
        schedules: d.schedules,
    })
}

/// The manifest of a folder that has no manifest file but one plugin.
pub fn defaults(dir: &Path, name: &str, plugin: PathBuf) -> Manifest {
    Manifest {
        name: name.to_string(),
        dir: dir.to_path_buf(),
        entrypoint: "handle".into(),
        timeout: None,
        memory: None,
        env: BTreeMap::new(),
        dependencies: Vec::new(),
        config: BTreeMap::new(),
        allowed_hosts: Vec::new(),
        plugin,
        build: None,
        routes: Vec::new(),
        hooks: Vec::new(),
        schedules: Vec::new(),
    }
}

/// Names the HTTP API uses under `/api/functions/`.
pub const RESERVED: &[&str] = &["stats", "reload"];

/// True for names of `[a-z0-9_-]`, 1 to 64 characters.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

/// The `name:` field, else the folder's name.
fn read_name(c: &mut Checker, field: &str, value: Option<&Value>) -> Option<String> {
    let name = match value {
        None | Some(Value::Null) => {
            c.dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default()
        }
        Some(v) => c.string(field, v)?,
    };
    if !valid_name(&name) {
        c.error(field, format!("{name:?} is not a valid name (use 1-64 characters of a-z, 0-9, _ and -)"));
        return None;
    }
    if RESERVED.contains(&name.as_str()) {
        c.error(
            field,
            format!("{name:?} is reserved by the HTTP API (/api/functions/{name}); choose another"),
        );
        return None;
    }
    Some(name)
}

fn check_runtime(c: &mut Checker, field: &str, value: Option<&Value>) {
    if let Some(runtime) = c.opt_string(field, value)
        && runtime != "wasm"
    {
        c.error(field, format!("{runtime:?} is not supported; alyx runs `wasm` functions only"));
    }
}

fn read_memory(c: &mut Checker, field: &str, value: Option<&Value>) -> Option<u64> {
    let text = c.opt_string(field, value)?;
    match parse_size(&text) {
        Ok(bytes) if bytes < crate::units::PAGE => {
            c.error(field, format!("{text:?} is less than one 64 KiB Wasm page"));
            None
        }
        Ok(bytes) => Some(bytes),
        Err(e) => {
            c.error(field, e);
            None
        }
    }
}

fn read_hosts(c: &mut Checker, field: &str, value: Option<&Value>) -> Vec<String> {
    let hosts = c.strings(field, value);
    for (i, host) in hosts.iter().enumerate() {
        if let Err(e) = glob::Pattern::new(host) {
            c.error(&format!("{field}[{i}]"), format!("invalid pattern {host:?}: {e}"));
        } else if host.contains(':') || host.contains('/') {
            c.warn(
                &format!("{field}[{i}]"),
                format!(
                    "{host:?} has a port, scheme or path; entries match host names only, so it never matches"
                ),
            );
        }
    }
    hosts
}

/// A relative path that stays inside `dir` (no `..`, not absolute, and no
/// symlink pointing out of the folder where the path exists).
fn inside(c: &mut Checker, field: &str, relative: &str) -> Option<PathBuf> {
    let dir = c.dir.clone();
    let path = Path::new(relative);
    let escapes = path.is_absolute()
        || path
            .components()
            .any(|part| matches!(part, Component::ParentDir | Component::RootDir | Component::Prefix(_)));
    if escapes || relative.is_empty() {
        c.error(field, format!("must be a relative path inside the function folder (got {relative:?})"));
        return None;
    }
    let joined = dir.join(path);
    if let (Ok(real), Ok(root)) = (joined.canonicalize(), dir.canonicalize())
        && !real.starts_with(&root)
    {
        c.error(
            field,
            format!("must stay inside the function folder ({relative:?} is a link to {})", real.display()),
        );
        return None;
    }
    Some(joined)
}

/// The `build` section as read so far.
#[derive(Default)]
struct BuildFields {
    command: Option<String>,
    args: Vec<String>,
    watch: Vec<glob::Pattern>,
    output: Option<PathBuf>,
}

/// Every field of `build`, in checking order.
const BUILD_FIELDS: &[Field<BuildFields>] = &[
    Field { key: "command", read: |c, f, v, d| d.command = c.required_string(f, v) },
    Field { key: "args", read: |c, f, v, d| d.args = c.strings(f, v) },
    Field { key: "watch", read: |c, f, v, d| d.watch = c.each(f, v, read_glob) },
    Field { key: "output", read: |c, f, v, d| d.output = read_output(c, f, v) },
];

fn read_build(c: &mut Checker, field: &str, value: Option<&Value>) -> Option<Build> {
    let d = c.section(field, value.filter(|v| !v.is_null())?, BUILD_FIELDS)?;
    Some(Build { command: d.command?, args: d.args, watch: d.watch, output: d.output? })
}

/// The built plugin: `plugin.wasm` unless named.
fn read_output(c: &mut Checker, field: &str, value: Option<&Value>) -> Option<PathBuf> {
    let output = c.opt_string(field, value).unwrap_or_else(|| "plugin.wasm".into());
    inside(c, field, &output)
}

fn read_glob(c: &mut Checker, field: &str, value: &Value) -> Option<glob::Pattern> {
    let glob_text = c.string(field, value)?;
    if glob_text.starts_with('/') || glob_text.split('/').any(|p| p == "..") {
        c.error(field, format!("must be relative to the function folder (got {glob_text:?})"));
        return None;
    }
    glob::Pattern::new(&glob_text)
        .map_err(|e| c.error(field, format!("invalid glob {glob_text:?}: {e}")))
        .ok()
}

/// The plugin: `plugin:` if given, else `build.output`, else the folder's
/// only `.wasm` file, else `plugin.wasm`.
fn read_plugin(
    c: &mut Checker,
    field: &str,
    value: Option<&Value>,
    build: Option<&Build>,
) -> Option<PathBuf> {
    if let Some(plugin) = c.opt_string(field, value) {
        return inside(c, field, &plugin);
    }
    if let Some(build) = build {
        return Some(build.output.clone());
    }
    Some(single_wasm(&c.dir).unwrap_or_else(|| c.dir.join("plugin.wasm")))
}

/// The folder's only `.wasm` file, if it has exactly one.
pub fn single_wasm(dir: &Path) -> Option<PathBuf> {
    let mut found = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file());
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse_text(text: &str) -> (Option<Manifest>, Vec<String>) {
        let dir = std::env::temp_dir().join("alyx-manifest-tests/hello");
        std::fs::create_dir_all(&dir).unwrap();
        let (m, problems) = parse(&dir, Path::new("functions/hello/manifest.yaml"), text);
        (m, problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_full_reference_manifest_loads() {
        let (m, problems) = parse_text(
            r#"
name: hello
runtime: wasm
entrypoint: handle
timeout: 30s
memory: 256mb
env: {KEY: value}
dependencies: []
config: {key: value}
allowed_hosts: ["api.example.com", "*.internal"]
build: {command: make, args: [], watch: ["src/**/*.c"], output: plugin.wasm}
routes: [{path: /hello, methods: [GET, post]}]
hooks:
  - {type: database, source: users, action: insert, mode: sync, config: {timeout: 5s}}
  - {type: webhook, verification: {type: hmac-sha256, header: X-Signature, secret: s3cret}}
schedules: [{name: nightly, type: cron, expression: "0 3 * * *", timezone: Europe/Berlin}]
"#,
        );
        assert!(problems.is_empty(), "{problems:?}");
        let m = m.unwrap();
        assert_eq!(
            (m.name.as_str(), m.timeout, m.memory),
            ("hello", Some(Duration::from_secs(30)), Some(256 << 20))
        );
        assert_eq!(m.routes[0].methods, ["GET", "POST"]);
        assert_eq!(m.hooks[0].timeout, Some(Duration::from_secs(5)));
        assert_eq!(m.hooks[1].verification.as_ref().unwrap().secret, "s3cret");
        assert!(m.build.as_ref().unwrap().watch[0].matches("src/lib/x.c"));
        assert!(m.plugin.ends_with("hello/plugin.wasm"));
    }

    #[test]
    fn errors_name_file_and_field_path() {
        let (m, problems) =
            parse_text("hooks: [{type: auth}, {type: webhook, verification: {header: X-Sig}}]");
        assert!(m.is_none());
        assert_eq!(problems, ["functions/hello/manifest.yaml: hooks[1].verification.secret: required"]);
    }

    #[test]
    fn unknown_fields_are_warnings_with_a_hint() {
        let (m, problems) = parse_text("timout: 5s\nbuild: {command: make, outptu: x.wasm}");
        assert!(m.is_some());
        assert_eq!(
            problems,
            [
                "functions/hello/manifest.yaml: warning: timout: unknown field (did you mean `timeout`?); it is ignored",
                "functions/hello/manifest.yaml: warning: build.outptu: unknown field (did you mean `output`?); it is ignored",
            ]
        );
    }

    #[test]
    fn paths_must_stay_inside_the_function_folder() {
        for text in [
            "build: {command: make, output: ../x.wasm}",
            "plugin: /etc/passwd",
            "build: {command: make, watch: [\"../**\"]}",
        ] {
            let (m, problems) = parse_text(text);
            assert!(m.is_none(), "{text}");
            assert!(problems[0].contains("function folder"), "{problems:?}");
        }
    }

    #[test]
    fn a_symlink_out_of_the_folder_is_refused() {
        let dir = std::env::temp_dir().join(format!("alyx-manifest-link-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        std::os::unix::fs::symlink("/etc/hostname", dir.join("plugin.wasm")).unwrap();
        let (m, problems) = parse(&dir, Path::new("manifest.yaml"), "plugin: plugin.wasm");
        assert!(m.is_none());
        assert!(problems[0].message.contains("is a link to /etc/hostname"), "{problems:?}");
    }

    #[test]
    fn reserved_names_are_refused() {
        let (m, problems) = parse_text("name: stats");
        assert!(m.is_none());
        assert!(problems[0].contains("reserved"), "{problems:?}");
    }

    #[test]
    fn bad_values_are_reported_each() {
        let (m, problems) = parse_text(
            "name: Hello World\nruntime: python\ntimeout: soon\nmemory: 10\nschedules: [{name: x, type: cron, expression: nope}]",
        );
        assert!(m.is_none());
        let fields: Vec<&str> = problems.iter().map(|p| p.split(": ").nth(1).unwrap()).collect();
        assert_eq!(fields, ["name", "runtime", "timeout", "memory", "schedules[0].expression"]);
    }

    #[test]
    fn empty_manifest_takes_defaults_from_the_folder() {
        let (m, problems) = parse_text("");
        assert!(problems.is_empty(), "{problems:?}");
        let m = m.unwrap();
        assert_eq!((m.name.as_str(), m.entrypoint.as_str()), ("hello", "handle"));
    }

    #[test]
    fn invalid_yaml_is_one_error() {
        let (m, problems) = parse_text("name: [unclosed");
        assert!(m.is_none());
        assert!(problems[0].contains("not valid YAML"), "{problems:?}");
    }
}
