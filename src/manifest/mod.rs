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

use serde::Deserialize;
use serde_yaml_ng::Value;

use crate::units::parse_size;

mod check;
mod triggers;

use check::{Checker, check_list, get, unknown_message};
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

// --- raw form ------------------------------------------------------------------

/// Every field as YAML values; unknown fields land in `extra`.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
struct RawManifest {
    name: Option<Value>,
    runtime: Option<Value>,
    entrypoint: Option<Value>,
    timeout: Option<Value>,
    memory: Option<Value>,
    env: Option<Value>,
    dependencies: Option<Value>,
    config: Option<Value>,
    allowed_hosts: Option<Value>,
    plugin: Option<Value>,
    build: Option<Value>,
    routes: Option<Value>,
    hooks: Option<Value>,
    schedules: Option<Value>,
    #[serde(flatten)]
    extra: BTreeMap<String, Value>,
}

// --- validation --------------------------------------------------------------

const TOP_LEVEL: &[&str] = &[
    "name",
    "runtime",
    "entrypoint",
    "timeout",
    "memory",
    "env",
    "dependencies",
    "config",
    "allowed_hosts",
    "plugin",
    "build",
    "routes",
    "hooks",
    "schedules",
];

/// Parses and validates the manifest text of the function folder `dir`
/// (`file` is the path used in messages). Returns the manifest when it has
/// no errors, and every problem found (warnings included).
pub fn parse(dir: &Path, file: &Path, text: &str) -> (Option<Manifest>, Vec<Problem>) {
    let mut c = Checker { file: file.to_path_buf(), problems: Vec::new() };
    let raw: RawManifest = match serde_yaml_ng::from_str::<Option<RawManifest>>(text) {
        Ok(raw) => raw.unwrap_or_default(),
        Err(e) => {
            c.error("", format!("not valid YAML: {e}"));
            return (None, c.problems);
        }
    };
    let manifest = check(&mut c, dir, raw);
    (manifest.filter(|_| !c.has_errors()), c.problems)
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

fn check(c: &mut Checker, dir: &Path, raw: RawManifest) -> Option<Manifest> {
    for key in raw.extra.keys() {
        c.warn(key, unknown_message(key, TOP_LEVEL));
    }
    let folder_name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let name = check_name(c, raw.name.as_ref(), &folder_name);
    if let Some(runtime) = c.opt_string("runtime", raw.runtime.as_ref())
        && runtime != "wasm"
    {
        c.error("runtime", format!("{runtime:?} is not supported; alyx runs `wasm` functions only"));
    }
    let entrypoint = c.opt_string("entrypoint", raw.entrypoint.as_ref()).unwrap_or_else(|| "handle".into());
    let timeout = c.duration("timeout", raw.timeout.as_ref());
    let memory = check_memory(c, raw.memory.as_ref());
    let env = c.map("env", raw.env.as_ref());
    let dependencies = c.strings("dependencies", raw.dependencies.as_ref());
    let config = c.map("config", raw.config.as_ref());
    let allowed_hosts = check_hosts(c, raw.allowed_hosts.as_ref());
    let build = raw.build.as_ref().filter(|v| !v.is_null()).and_then(|v| check_build(c, dir, v));
    let plugin = check_plugin(c, dir, raw.plugin.as_ref(), build.as_ref());
    let routes = check_list(c, "routes", raw.routes.as_ref(), triggers::check_route);
    let hooks = check_list(c, "hooks", raw.hooks.as_ref(), triggers::check_hook);
    let schedules = check_list(c, "schedules", raw.schedules.as_ref(), triggers::check_schedule);
    Some(Manifest {
        name: name?,
        dir: dir.to_path_buf(),
        entrypoint,
        timeout,
        memory,
        env,
        dependencies,
        config,
        allowed_hosts,
        plugin: plugin?,
        build,
        routes,
        hooks,
        schedules,
    })
}

/// Names the HTTP API uses under `/api/functions/`.
pub const RESERVED: &[&str] = &["stats", "reload"];

/// True for names of `[a-z0-9_-]`, 1 to 64 characters.
pub fn valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_' || b == b'-')
}

fn check_name(c: &mut Checker, value: Option<&Value>, folder: &str) -> Option<String> {
    let name = match value {
        None | Some(Value::Null) => folder.to_string(),
        Some(v) => c.string("name", v)?,
    };
    if !valid_name(&name) {
        c.error("name", format!("{name:?} is not a valid name (use 1-64 characters of a-z, 0-9, _ and -)"));
        return None;
    }
    if RESERVED.contains(&name.as_str()) {
        c.error(
            "name",
            format!("{name:?} is reserved by the HTTP API (/api/functions/{name}); choose another"),
        );
        return None;
    }
    Some(name)
}

fn check_memory(c: &mut Checker, value: Option<&Value>) -> Option<u64> {
    let text = c.opt_string("memory", value)?;
    match parse_size(&text) {
        Ok(bytes) if bytes < crate::units::PAGE => {
            c.error("memory", format!("{text:?} is less than one 64 KiB Wasm page"));
            None
        }
        Ok(bytes) => Some(bytes),
        Err(e) => {
            c.error("memory", e);
            None
        }
    }
}

fn check_hosts(c: &mut Checker, value: Option<&Value>) -> Vec<String> {
    let hosts = c.strings("allowed_hosts", value);
    for (i, host) in hosts.iter().enumerate() {
        if let Err(e) = glob::Pattern::new(host) {
            c.error(&format!("allowed_hosts[{i}]"), format!("invalid pattern {host:?}: {e}"));
        } else if host.contains(':') || host.contains('/') {
            c.warn(
                &format!("allowed_hosts[{i}]"),
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
fn inside(c: &mut Checker, dir: &Path, field: &str, relative: &str) -> Option<PathBuf> {
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

fn check_build(c: &mut Checker, dir: &Path, value: &Value) -> Option<Build> {
    const KNOWN: &[&str] = &["command", "args", "watch", "output"];
    let m = c.mapping("build", value)?;
    c.unknown_keys("build", value, KNOWN);
    let command = c.opt_string("build.command", get(m, "command"));
    if command.is_none() {
        c.error("build.command", "required");
    }
    let args = c.strings("build.args", get(m, "args"));
    let watch = c
        .strings("build.watch", get(m, "watch"))
        .iter()
        .enumerate()
        .filter_map(|(i, g)| check_glob(c, &format!("build.watch[{i}]"), g))
        .collect();
    let output = c.opt_string("build.output", get(m, "output")).unwrap_or_else(|| "plugin.wasm".into());
    let output = inside(c, dir, "build.output", &output)?;
    Some(Build { command: command?, args, watch, output })
}

fn check_glob(c: &mut Checker, field: &str, glob_text: &str) -> Option<glob::Pattern> {
    if glob_text.starts_with('/') || glob_text.split('/').any(|p| p == "..") {
        c.error(field, format!("must be relative to the function folder (got {glob_text:?})"));
        return None;
    }
    glob::Pattern::new(glob_text).map_err(|e| c.error(field, format!("invalid glob {glob_text:?}: {e}"))).ok()
}

/// The plugin: `plugin:` if given, else `build.output`, else the folder's
/// only `.wasm` file, else `plugin.wasm`.
fn check_plugin(
    c: &mut Checker,
    dir: &Path,
    value: Option<&Value>,
    build: Option<&Build>,
) -> Option<PathBuf> {
    if let Some(plugin) = c.opt_string("plugin", value) {
        return inside(c, dir, "plugin", &plugin);
    }
    if let Some(build) = build {
        return Some(build.output.clone());
    }
    Some(single_wasm(dir).unwrap_or_else(|| dir.join("plugin.wasm")))
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
