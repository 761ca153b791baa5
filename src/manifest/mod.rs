//! Function manifests: the text of a `manifest.yaml` becomes a validated,
//! typed manifest in one step. Durations and sizes are parsed, paths joined
//! to the function folder (and refused if they climb out of it), globs
//! compiled, triggers checked; every problem is reported with its file and
//! field path, and unknown fields are warnings (so a typo like `timout:` is
//! caught without refusing the function).
//!
//! Parsing reads no file: what needs the disk (links out of the folder, the
//! folder's lone `.wasm` as default plugin) is `crate::discovery`'s job, and
//! [`Parsed`] hands it what to look at.
//!
//! The format keeps every field of the reference design, so its manifests
//! load unchanged.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_yaml_ng::{Mapping, Value};

use crate::quote::quote;
use crate::units::parse_size;

mod check;
mod triggers;
mod webhook;

use check::{Checker, Env, Field, kind_of};
pub use triggers::{
    EventConfig, Hook, HookMode, HookType, OnFailure, Route, RouteAccess, Schedule, ScheduleType,
};
pub use webhook::{DEFAULT_TOLERANCE, HmacHash, Scheme, Verification, Webhook};

/// The manifest file name inside a function folder.
pub const FILE_NAME: &str = "manifest.yaml";

/// The plugin file name when the manifest names none (`build.output`, and
/// the plugin of a folder that does not have exactly one `.wasm` file).
pub const DEFAULT_PLUGIN: &str = "plugin.wasm";

/// The export called when the manifest names no `entrypoint`.
pub const DEFAULT_ENTRYPOINT: &str = "handle";

/// A validated manifest. `P` is the plugin file: a `PathBuf` once discovery
/// has resolved it (the default, and what every user of a manifest sees),
/// or what the text says in an [`Unresolved`] manifest fresh from [`parse`].
#[derive(Debug, Clone, PartialEq)]
pub struct Manifest<P = PathBuf> {
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
    pub plugin: P,
    pub build: Option<Build>,
    pub routes: Vec<Route>,
    pub hooks: Vec<Hook>,
    pub schedules: Vec<Schedule>,
}

/// A manifest as [`parse`] leaves it: `plugin` is `Some(file)` when the
/// manifest names one, `None` when discovery is to choose the default.
pub type Unresolved = Manifest<Option<PathBuf>>;

impl<P> Manifest<P> {
    /// The same manifest with its plugin file resolved to `plugin`.
    pub fn with_plugin<Q>(self, plugin: Q) -> Manifest<Q> {
        Manifest {
            name: self.name,
            dir: self.dir,
            entrypoint: self.entrypoint,
            timeout: self.timeout,
            memory: self.memory,
            env: self.env,
            dependencies: self.dependencies,
            config: self.config,
            allowed_hosts: self.allowed_hosts,
            plugin,
            build: self.build,
            routes: self.routes,
            hooks: self.hooks,
            schedules: self.schedules,
        }
    }
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

impl Problem {
    pub fn error(file: &Path, field: &str, message: impl Into<String>) -> Problem {
        Problem::new(file, field, message.into(), Severity::Error)
    }

    pub fn warning(file: &Path, field: &str, message: impl Into<String>) -> Problem {
        Problem::new(file, field, message.into(), Severity::Warning)
    }

    fn new(file: &Path, field: &str, message: String, severity: Severity) -> Problem {
        Problem { file: file.to_path_buf(), field: field.to_string(), message, severity }
    }

    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
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

/// What [`parse`] makes of a manifest text.
#[derive(Debug)]
pub struct Parsed {
    /// The manifest, when no error was found.
    pub manifest: Option<Unresolved>,
    /// The function's name when it is valid, even if other fields are not
    /// (discovery checks it against the names the server reserves).
    pub name: Option<String>,
    /// Every problem found, warnings included.
    pub problems: Vec<Problem>,
    /// The paths the manifest names inside the folder, for discovery to
    /// check on disk (even when `manifest` is `None`, so every problem is
    /// reported at once).
    pub paths: Vec<LocalPath>,
}

/// A path named in a manifest. Parsing has checked it lexically (relative,
/// no `..`); whether a link leads it out of the folder needs the disk.
#[derive(Debug, Clone, PartialEq)]
pub struct LocalPath {
    /// The field that names it, like `build.output`.
    pub field: String,
    /// The path as written in the manifest.
    pub written: String,
    /// `written`, joined to the function folder.
    pub path: PathBuf,
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
        read: |c, f, v, d| d.entrypoint = c.opt_string(f, v).unwrap_or_else(|| DEFAULT_ENTRYPOINT.into()),
    },
    Field { key: "timeout", read: |c, f, v, d| d.timeout = c.duration(f, v) },
    Field { key: "memory", read: |c, f, v, d| d.memory = read_memory(c, f, v) },
    Field { key: "env", read: |c, f, v, d| d.env = c.map(f, v) },
    Field { key: "dependencies", read: |c, f, v, d| d.dependencies = c.strings(f, v) },
    Field { key: "config", read: |c, f, v, d| d.config = c.map(f, v) },
    Field { key: "allowed_hosts", read: |c, f, v, d| d.allowed_hosts = read_hosts(c, f, v) },
    Field { key: "build", read: |c, f, v, d| d.build = read_build(c, f, v) },
    Field { key: "plugin", read: |c, f, v, d| d.plugin = read_plugin(c, f, v) },
    Field { key: "routes", read: |c, f, v, d| d.routes = c.each(f, v, triggers::read_route) },
    Field { key: "hooks", read: |c, f, v, d| d.hooks = c.each(f, v, triggers::read_hook) },
    Field { key: "schedules", read: |c, f, v, d| d.schedules = triggers::read_schedules(c, f, v) },
];

/// The reference `alyx manifest` prints: every field with its default.
pub const REFERENCE: &str = include_str!("reference.txt");

/// The top-level field names, as the parser knows them.
pub fn field_names() -> impl Iterator<Item = &'static str> {
    FIELDS.iter().map(|f| f.key)
}

/// Parses and validates the manifest text of the function folder `dir`
/// (`file` is the path used in messages). Touches no file: `dir` is only
/// joined to the paths the manifest names and gives the default name. The
/// process environment is read for secrets written `${NAME}`.
pub fn parse(dir: &Path, file: &Path, text: &str) -> Parsed {
    parse_in(dir, file, text, check::process_env)
}

/// [`parse`] with `${NAME}` looked up in `env`.
fn parse_in(dir: &Path, file: &Path, text: &str, env: Env) -> Parsed {
    let mut c = Checker::new(dir, file);
    c.env = env;
    let fields = top_level(&mut c, text).map(|map| c.fields("", &map, FIELDS));
    let name = fields.as_ref().and_then(|d| d.name.clone());
    let manifest = fields.and_then(|d| finish(&c, d)).filter(|_| !c.has_errors());
    Parsed { manifest, name, problems: c.problems, paths: c.paths }
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

fn finish(c: &Checker, d: Fields) -> Option<Unresolved> {
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
        plugin: d.plugin,
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
        entrypoint: DEFAULT_ENTRYPOINT.into(),
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
        c.error(
            field,
            format!("{} is not a valid name (use 1-64 characters of a-z, 0-9, _ and -)", quote(&name)),
        );
        return None;
    }
    c.name = Some(name.clone());
    Some(name)
}

fn check_runtime(c: &mut Checker, field: &str, value: Option<&Value>) {
    if let Some(runtime) = c.opt_string(field, value)
        && runtime != "wasm"
    {
        c.error(field, format!("{} is not supported; alyx runs `wasm` functions only", quote(&runtime)));
    }
}

fn read_memory(c: &mut Checker, field: &str, value: Option<&Value>) -> Option<u64> {
    let text = c.opt_string(field, value)?;
    match parse_size(&text) {
        Ok(bytes) if bytes < crate::units::PAGE => {
            c.error(field, format!("{} is less than one 64 KiB Wasm page", quote(&text)));
            None
        }
        Ok(bytes) => Some(bytes),
        Err(e) => {
            c.error(field, e);
            None
        }
    }
}

/// Host patterns, checked by the runtime's own rule; one that can never
/// match (a port, scheme or path; IPv6 has two colons or more) is a warning.
fn read_hosts(c: &mut Checker, field: &str, value: Option<&Value>) -> Vec<String> {
    let hosts = c.strings(field, value);
    for (i, host) in hosts.iter().enumerate() {
        if let Err(e) = crate::runtime::check_host_pattern(host) {
            c.error(&format!("{field}[{i}]"), format!("invalid pattern {}: {e}", quote(host)));
        } else if host.matches(':').count() == 1 || host.contains('/') {
            c.warn(
                &format!("{field}[{i}]"),
                format!(
                    "{} has a port, scheme or path; entries match host names only, so it never matches",
                    quote(host)
                ),
            );
        }
    }
    hosts
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
    let output = c.opt_string(field, value).unwrap_or_else(|| DEFAULT_PLUGIN.into());
    c.local_path(field, &output)
}

fn read_glob(c: &mut Checker, field: &str, value: &Value) -> Option<glob::Pattern> {
    let glob_text = c.string(field, value)?;
    if glob_text.starts_with('/') || glob_text.split('/').any(|p| p == "..") {
        c.error(field, format!("must be relative to the function folder (got {})", quote(&glob_text)));
        return None;
    }
    glob::Pattern::new(&glob_text)
        .map_err(|e| c.error(field, format!("invalid glob {}: {e}", quote(&glob_text))))
        .ok()
}

/// The plugin file, when `plugin:` names one (discovery picks the default).
fn read_plugin(c: &mut Checker, field: &str, value: Option<&Value>) -> Option<PathBuf> {
    let plugin = c.opt_string(field, value)?;
    c.local_path(field, &plugin)
}

#[cfg(test)]
mod tests;
