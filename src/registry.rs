//! The registry of functions being served: discovery results turned into
//! loaded plugins, with their status, stats and last load error.
//!
//! What a function serves is one immutable [`Version`] (manifest, plugin
//! pool and plugin info) behind one lock, swapped whole: an invocation takes
//! one snapshot and never mixes a new plugin with an old entrypoint, env or
//! config. Loading never unloads first: a new version is compiled and
//! instantiated beside the running one and swapped in only on success, so a
//! bad plugin or manifest leaves the last good version serving, with the
//! error kept for the API. A function whose first load failed is `failed`.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant, SystemTime};

use crate::crypto::sha256_hex;
use crate::discovery;
use crate::manifest::{Manifest, Problem};
use crate::runtime::HttpClient;
use crate::runtime::{self, Limits, LogLevel, Plugin, PluginSpec, Pool, Vars};
use crate::stats::Stats;
use crate::sync::{lock, read, write};

/// Idle instances each function keeps however long they are idle, so its
/// next call finds one ready.
const KEEP_IDLE: usize = 1;

/// Server-wide defaults for what a manifest leaves out.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub timeout: Duration,
    pub memory: u64,
    pub instances: usize,
    pub log_level: LogLevel,
    /// Idle instances beyond one per function are dropped after this long.
    pub idle_instance_ttl: Duration,
    /// Function names discovery refuses (the HTTP API's own paths).
    pub reserved: &'static [&'static str],
}

/// The plugin file a version was loaded from.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInfo {
    /// SHA-256 of the plugin file, lower-case hex.
    pub hash: String,
    pub loaded_at: SystemTime,
    pub size: u64,
}

/// One loaded version of a function: everything an invocation needs, never
/// changed after it is built.
pub struct Version {
    pub manifest: Arc<Manifest>,
    pub pool: Arc<Pool>,
    pub plugin: PluginInfo,
}

impl Version {
    /// Whether this version is the plugin with `hash` under `manifest`.
    fn is(&self, hash: &str, manifest: &Manifest) -> bool {
        self.plugin.hash == hash && *self.manifest == *manifest
    }
}

/// Why a version could not be loaded.
#[derive(Debug, Clone, PartialEq)]
pub enum LoadError {
    /// The plugin file could not be read.
    Read { path: PathBuf, message: String },
    /// The plugin did not compile or instantiate.
    Plugin(runtime::Error),
    /// The manifest has errors.
    Manifest(Vec<Problem>),
    /// The plugin has no callable export named by `entrypoint`: every call
    /// would fail, so it is not loaded. Lists the exports it has.
    NoEntrypoint { entrypoint: String, exports: Vec<String> },
}

impl fmt::Display for LoadError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            LoadError::Read { path, message } => write!(f, "cannot read {}: {message}", path.display()),
            LoadError::Plugin(error) => write!(f, "{error}"),
            LoadError::Manifest(problems) => {
                let lines: Vec<String> = problems.iter().map(ToString::to_string).collect();
                write!(f, "{}", lines.join("; "))
            }
            LoadError::NoEntrypoint { entrypoint, exports } if exports.is_empty() => {
                write!(f, "the plugin has no export {entrypoint:?} to call, and no callable export at all")
            }
            LoadError::NoEntrypoint { entrypoint, exports } => write!(
                f,
                "the plugin has no export {entrypoint:?} to call (its callable exports: {}); \
                 set `entrypoint:` in the manifest to one of them",
                exports.join(", ")
            ),
        }
    }
}

impl std::error::Error for LoadError {}

/// Whether a function serves.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    Loaded,
    /// No version loaded (its first load failed).
    Failed,
}

impl Status {
    /// The name the API and metrics use.
    pub fn as_str(self) -> &'static str {
        match self {
            Status::Loaded => "loaded",
            Status::Failed => "failed",
        }
    }
}

/// The last build of a function (dev loop).
#[derive(Debug, Clone, PartialEq)]
pub struct BuildInfo {
    pub ok: bool,
    pub duration: Duration,
    pub finished_at: SystemTime,
    /// Why it failed, in one line.
    pub failure: Option<String>,
    /// The tail of the build's output.
    pub output: String,
}

/// The dev loop's builds of a function.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Builds {
    pub last: Option<BuildInfo>,
    /// Builds finished since the server started.
    pub runs: u64,
    /// A build is running or waiting to run.
    pub busy: bool,
}

/// The outcome of the last load attempt.
#[derive(Debug, Clone)]
struct Attempt {
    /// The manifest last seen (the one served, unless a newer one failed).
    manifest: Arc<Manifest>,
    error: Option<LoadError>,
}

/// One function: the version it serves, its last load attempt, vars and
/// statistics.
pub struct Function {
    pub name: String,
    current: RwLock<Option<Arc<Version>>>,
    attempt: RwLock<Attempt>,
    vars: Arc<Vars>,
    builds: RwLock<Builds>,
    /// Calls admitted and not finished (running or waiting); see
    /// `invoke::Admission`.
    pub admitted: AtomicUsize,
    pub stats: Stats,
}

impl Function {
    fn new(manifest: Arc<Manifest>) -> Function {
        Function {
            name: manifest.name.clone(),
            current: RwLock::new(None),
            attempt: RwLock::new(Attempt { manifest, error: None }),
            vars: Vars::new(),
            builds: RwLock::new(Builds::default()),
            admitted: AtomicUsize::new(0),
            stats: Stats::default(),
        }
    }

    /// The version serving now; hold the snapshot for a whole invocation.
    pub fn current(&self) -> Option<Arc<Version>> {
        read(&self.current).clone()
    }

    /// The manifest of the version serving, else of the last attempt.
    pub fn manifest(&self) -> Arc<Manifest> {
        match self.current() {
            Some(version) => version.manifest.clone(),
            None => read(&self.attempt).manifest.clone(),
        }
    }

    /// Why the last load failed; `None` after a successful one.
    pub fn last_error(&self) -> Option<LoadError> {
        read(&self.attempt).error.clone()
    }

    pub fn status(&self) -> Status {
        if read(&self.current).is_some() { Status::Loaded } else { Status::Failed }
    }

    /// What the dev loop built of this function.
    pub fn builds(&self) -> Builds {
        read(&self.builds).clone()
    }

    /// Records a finished build.
    pub fn build_finished(&self, info: BuildInfo) {
        let mut builds = write(&self.builds);
        builds.last = Some(info);
        builds.runs += 1;
    }

    /// Marks whether a build is running or waiting.
    pub fn set_build_busy(&self, busy: bool) {
        write(&self.builds).busy = busy;
    }

    /// Makes `version` current, unless the same plugin and manifest serve
    /// already (two loads of one build, by the plugin watcher and by the
    /// build, raced); false then. Calls in flight finish on the old one.
    fn swap(&self, version: Version) -> bool {
        let manifest = version.manifest.clone();
        let old = {
            let mut current = write(&self.current);
            if current.as_ref().is_some_and(|v| v.is(&version.plugin.hash, &version.manifest)) {
                return false;
            }
            current.replace(Arc::new(version))
        };
        // The old version goes outside the lock: its pool waits for a shard
        // it may be compiling.
        drop(old);
        *write(&self.attempt) = Attempt { manifest, error: None };
        true
    }

    /// Records a failed attempt; the serving version (if any) stays.
    fn failed(&self, manifest: Arc<Manifest>, error: LoadError) {
        *write(&self.attempt) = Attempt { manifest, error: Some(error) };
    }
}

/// What a reload did.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct ReloadSummary {
    pub loaded: Vec<String>,
    pub unchanged: Vec<String>,
    pub failed: Vec<String>,
    pub removed: Vec<String>,
    pub problems: usize,
}

/// Tells one watcher of a new generation; false once nobody listens.
type Watcher = Box<dyn Fn(u64) -> bool + Send>;

/// All functions of one folder.
pub struct Registry {
    dir: PathBuf,
    defaults: Defaults,
    http: Arc<HttpClient>,
    functions: RwLock<BTreeMap<String, Arc<Function>>>,
    problems: RwLock<Vec<Problem>>,
    ready: AtomicBool,
    /// Counts changes to what is served (versions swapped in, functions
    /// removed), so tables derived from it know when to rebuild.
    generation: AtomicU64,
    /// Told the new generation after each change (see [`Registry::watch`]);
    /// each answers whether its receiver still listens.
    watchers: Mutex<Vec<Watcher>>,
}

impl Registry {
    pub fn new(dir: &Path, defaults: Defaults) -> Registry {
        Registry {
            dir: dir.to_path_buf(),
            defaults,
            http: Arc::new(HttpClient::new()),
            functions: RwLock::new(BTreeMap::new()),
            problems: RwLock::new(Vec::new()),
            ready: AtomicBool::new(false),
            generation: AtomicU64::new(0),
            watchers: Mutex::new(Vec::new()),
        }
    }

    /// Changes with every version swapped in and every function removed.
    pub fn generation(&self) -> u64 {
        self.generation.load(Ordering::SeqCst)
    }

    /// A channel that receives the new generation after every change (a
    /// version swapped in, a function removed), for threads that wait on
    /// messages rather than poll. Dropping the receiver unsubscribes.
    pub fn watch(&self) -> Receiver<u64> {
        let (tx, rx) = channel();
        self.watch_with(tx, |generation| generation);
        rx
    }

    /// Sends `message(generation)` on `tx` after every change: for a thread
    /// whose one channel also carries its other messages (stop, ...).
    /// Dropping the receiver unsubscribes.
    pub fn watch_with<M: Send + 'static>(&self, tx: Sender<M>, message: fn(u64) -> M) {
        lock(&self.watchers).push(Box::new(move |generation| tx.send(message(generation)).is_ok()));
    }

    /// Counts a change and tells the watchers.
    fn changed(&self) {
        let generation = self.generation.fetch_add(1, Ordering::SeqCst) + 1;
        lock(&self.watchers).retain(|tell| tell(generation));
    }

    /// True once the first discovery and load finished.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub fn get(&self, name: &str) -> Option<Arc<Function>> {
        read(&self.functions).get(name).cloned()
    }

    pub fn list(&self) -> Vec<Arc<Function>> {
        read(&self.functions).values().cloned().collect()
    }

    /// The limits a function's calls run under: its manifest's, else the
    /// server's defaults (time limit, memory cap in bytes).
    pub fn limits(&self, manifest: &Manifest) -> (Duration, u64) {
        (manifest.timeout.unwrap_or(self.defaults.timeout), manifest.memory.unwrap_or(self.defaults.memory))
    }

    /// Problems found by the last discovery (manifest errors and warnings).
    pub fn problems(&self) -> Vec<Problem> {
        read(&self.problems).clone()
    }

    /// Rediscovers the folder and loads what changed. Functions whose
    /// folder disappeared stop being served; everything else keeps its
    /// last good version when its new one fails.
    pub fn reload(&self) -> ReloadSummary {
        let found = discovery::discover(&self.dir, self.defaults.reserved);
        let mut summary = ReloadSummary { problems: found.problems.len(), ..ReloadSummary::default() };
        for problem in &found.problems {
            log::warn!("{problem}");
        }
        let names: Vec<String> = found.functions.iter().map(|m| m.name.clone()).collect();
        for manifest in found.functions {
            let name = manifest.name.clone();
            match self.load(manifest) {
                Load::Loaded { .. } => summary.loaded.push(name),
                Load::Unchanged => summary.unchanged.push(name),
                Load::Failed { .. } => summary.failed.push(name),
            }
        }
        summary.removed = self.remove_missing(&names);
        *write(&self.problems) = found.problems;
        self.ready.store(true, Ordering::SeqCst);
        summary
    }

    fn remove_missing(&self, present: &[String]) -> Vec<String> {
        let mut functions = write(&self.functions);
        let gone: Vec<String> = functions.keys().filter(|n| !present.contains(n)).cloned().collect();
        let removed: Vec<_> = gone.iter().filter_map(|name| functions.remove(name)).collect();
        drop(functions);
        // Dropped outside the lock (see `Function::swap`).
        drop(removed);
        gone.iter().for_each(|name| log::info!("{name}: removed"));
        if !gone.is_empty() {
            self.changed();
        }
        gone
    }

    /// Drops the instances idle for `idle_instance_ttl` at `now` beyond one
    /// per function, in the versions serving (a replaced version's pool goes
    /// with its last call). Returns when this is next due: when the next
    /// idle instance expires, else one ttl from now (an instance returned
    /// later cannot expire sooner).
    pub fn trim_idle(&self, now: Instant) -> Instant {
        let ttl = self.defaults.idle_instance_ttl;
        let versions = self.list().into_iter().filter_map(|f| f.current());
        let next = versions.filter_map(|v| v.pool.trim_idle(now, ttl, KEEP_IDLE)).min();
        next.unwrap_or(now + ttl)
    }

    /// The function whose folder is `dir`, if one is known.
    pub fn by_dir(&self, dir: &Path) -> Option<Arc<Function>> {
        self.list().into_iter().find(|f| f.manifest().dir == dir)
    }

    /// Reloads the function in one folder: re-reads its manifest and plugin.
    /// An invalid manifest keeps the last good one serving and records the
    /// problem; `None` when the folder holds no function (or no longer).
    /// Its problems replace that folder's in [`Registry::problems`]; the
    /// ones not reported before come back in [`Reloaded::new_problems`].
    pub fn reload_dir(&self, dir: &Path) -> Option<Reloaded> {
        let (manifest, problems) = discovery::load(dir, self.defaults.reserved);
        let new_problems = self.replace_problems(dir, &problems);
        let (name, load) = match manifest {
            Some(manifest) => (manifest.name.clone(), self.load(manifest)),
            None => {
                let function = self.by_dir(dir)?;
                let manifest = function.manifest();
                let failed = self.fail(&function, manifest, LoadError::Manifest(problems));
                (function.name.clone(), failed)
            }
        };
        Some(Reloaded { name, load, new_problems })
    }

    /// Puts `problems` in place of those of the files in `dir`; returns
    /// the ones that were not there (logged as warnings).
    fn replace_problems(&self, dir: &Path, problems: &[Problem]) -> Vec<Problem> {
        let mut all = write(&self.problems);
        let fresh: Vec<Problem> = problems.iter().filter(|p| !all.contains(p)).cloned().collect();
        all.retain(|p| !p.file.starts_with(dir));
        all.extend(problems.iter().cloned());
        drop(all);
        fresh.iter().for_each(|problem| log::warn!("{problem}"));
        fresh
    }

    /// Loads one function's manifest and plugin beside its current version.
    fn load(&self, manifest: Manifest) -> Load {
        let manifest = Arc::new(manifest);
        let function = self.entry(&manifest);
        let bytes = match discovery::read_plugin(&manifest) {
            Ok(bytes) => bytes,
            Err(message) => {
                // Expected before the first build: said at info, with how.
                let unbuilt = manifest.build.is_some() && !manifest.plugin.exists();
                let message = match unbuilt {
                    true => format!("{message} (not built yet: `alyx build {}`)", manifest.name),
                    false => message,
                };
                let error = LoadError::Read { path: manifest.plugin.clone(), message };
                let level = if unbuilt { log::Level::Info } else { log::Level::Warn };
                return self.fail_at(level, &function, manifest, error);
            }
        };
        let plugin =
            PluginInfo { hash: sha256_hex(&bytes), loaded_at: SystemTime::now(), size: bytes.len() as u64 };
        if function.current().is_some_and(|v| v.is(&plugin.hash, &manifest)) {
            return Load::Unchanged;
        }
        let compiled = match self.compile(&manifest, bytes, &plugin.hash) {
            Ok(plugin) => plugin,
            Err(error) => return self.fail(&function, manifest, LoadError::Plugin(error)),
        };
        let exports = compiled.exports();
        if !exports.contains(&manifest.entrypoint) {
            let error = LoadError::NoEntrypoint { entrypoint: manifest.entrypoint.clone(), exports };
            return self.fail(&function, manifest, error);
        }
        match Pool::new(compiled, function.vars.clone(), self.defaults.instances) {
            Ok(pool) => {
                let hash = plugin.hash.clone();
                if !function.swap(Version { manifest, pool: Arc::new(pool), plugin }) {
                    return Load::Unchanged;
                }
                log::info!("{}: loaded (plugin {})", function.name, &hash[..12]);
                self.changed();
                function.stats.record_reload("ok");
                Load::Loaded { hash }
            }
            Err(error) => self.fail(&function, manifest, LoadError::Plugin(error)),
        }
    }

    /// Records a failed load; the running version (if any) keeps serving.
    fn fail(&self, function: &Function, manifest: Arc<Manifest>, error: LoadError) -> Load {
        self.fail_at(log::Level::Warn, function, manifest, error)
    }

    /// [`Registry::fail`], logged at `level`.
    fn fail_at(
        &self,
        level: log::Level,
        function: &Function,
        manifest: Arc<Manifest>,
        error: LoadError,
    ) -> Load {
        log::log!(level, "{}: {error}", function.name);
        function.failed(manifest, error.clone());
        function.stats.record_reload("failed");
        Load::Failed { error, serving: function.current().map(|v| v.plugin.hash.clone()) }
    }

    /// The function's entry, created (with no version) on first sight.
    fn entry(&self, manifest: &Arc<Manifest>) -> Arc<Function> {
        let mut functions = write(&self.functions);
        let function = functions
            .entry(manifest.name.clone())
            .or_insert_with(|| Arc::new(Function::new(manifest.clone())));
        function.clone()
    }

    fn compile(&self, manifest: &Arc<Manifest>, wasm: Vec<u8>, hash: &str) -> Result<Plugin, runtime::Error> {
        let mut spec = PluginSpec::new(&manifest.name, wasm);
        spec.reread = Some(reread(manifest.clone(), hash));
        let (timeout, memory_bytes) = self.limits(manifest);
        spec.limits = Limits { timeout: Some(timeout), memory_bytes, ..Limits::default() };
        spec.config = manifest.config.clone();
        spec.allowed_hosts = manifest.allowed_hosts.clone();
        spec.log_level = self.defaults.log_level;
        spec.http = Some(self.http.clone());
        spec.engines = spec.engines.min(self.defaults.instances);
        Plugin::compile(spec)
    }
}

/// Reads the plugin file again for a later engine shard, if it still has
/// the hash it was loaded with (a file changed since is the next version's,
/// loaded on the next reload, never mixed into this one).
fn reread(manifest: Arc<Manifest>, hash: &str) -> runtime::Reread {
    let hash = hash.to_string();
    Arc::new(move || {
        let wasm = discovery::read_plugin(&manifest)?;
        match sha256_hex(&wasm) == hash {
            true => Ok(vec![runtime::ModuleSource { name: None, wasm }]),
            false => Err(format!("{} changed since it was loaded", manifest.plugin.display())),
        }
    })
}

/// What reloading one function folder did.
#[derive(Debug, Clone, PartialEq)]
pub struct Reloaded {
    pub name: String,
    pub load: Load,
    /// Problems of its manifest not reported by the reload before.
    pub new_problems: Vec<Problem>,
}

/// What loading one function did.
#[derive(Debug, Clone, PartialEq)]
pub enum Load {
    /// A new version serves; its plugin hash.
    Loaded {
        hash: String,
    },
    Unchanged,
    /// Nothing changed in what is served; the hash still serving, if any.
    Failed {
        error: LoadError,
        serving: Option<String>,
    },
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    const HELLO: &str = r#"(module
      (import "extism:host/env" "output_set" (func $out (param i64 i64)))
      (import "extism:host/env" "input_offset" (func $off (result i64)))
      (import "extism:host/env" "input_length" (func $len (result i64)))
      (func (export "handle") (result i32) (call $out (call $off) (call $len)) (i32.const 0)))"#;

    fn registry(root: &TempDir) -> Registry {
        Registry::new(root.path(), crate::testutil::defaults())
    }

    #[test]
    fn loads_good_functions_and_lists_failed_ones() {
        let root = TempDir::new("registry");
        root.write("good/manifest.yaml", "plugin: plugin.wat");
        root.write("good/plugin.wat", HELLO);
        root.write("bad/manifest.yaml", "plugin: plugin.wat");
        root.write("bad/plugin.wat", "(module (import \"extism:host/env\" \"nope\" (func)))");
        let registry = registry(&root);
        let summary = registry.reload();
        assert_eq!((summary.loaded, summary.failed), (vec!["good".to_string()], vec!["bad".to_string()]));
        assert!(registry.is_ready());
        assert_eq!(registry.get("good").unwrap().status(), Status::Loaded);
        let bad = registry.get("bad").unwrap();
        assert_eq!(bad.status(), Status::Failed);
        match bad.last_error() {
            Some(LoadError::Plugin(runtime::Error::Load { message })) => {
                assert!(message.contains("extism:host/env::nope"), "{message}")
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn watchers_hear_of_loads_and_removals_but_not_of_failures() {
        let root = TempDir::new("registry");
        root.write("f/manifest.yaml", "plugin: plugin.wat");
        root.write("f/plugin.wat", HELLO);
        let registry = registry(&root);
        let changes = registry.watch();
        registry.reload();
        assert_eq!(changes.try_recv(), Ok(registry.generation()), "the load");
        root.write("f/plugin.wat", "(module");
        registry.reload();
        assert!(changes.try_recv().is_err(), "a failed load changes nothing served");
        std::fs::remove_dir_all(root.path().join("f")).unwrap();
        registry.reload();
        assert_eq!(changes.try_recv(), Ok(registry.generation()), "the removal");
        drop(changes);
        root.write("f/manifest.yaml", "plugin: plugin.wat");
        root.write("f/plugin.wat", HELLO);
        registry.reload();
        assert!(lock(&registry.watchers).is_empty(), "a dropped watcher is forgotten at the next change");
    }

    #[test]
    fn a_failed_reload_keeps_the_old_version() {
        let root = TempDir::new("registry");
        root.write("f/manifest.yaml", "plugin: plugin.wat");
        root.write("f/plugin.wat", HELLO);
        let registry = registry(&root);
        registry.reload();
        let before = registry.get("f").unwrap().current().unwrap();
        root.write("f/plugin.wat", "(module (func (export \"handle\") (result i32) (i32.const 0))");
        let summary = registry.reload();
        assert_eq!(summary.failed, ["f"]);
        let f = registry.get("f").unwrap();
        assert_eq!(f.status(), Status::Loaded);
        let after = f.current().unwrap();
        assert!(Arc::ptr_eq(&before, &after), "still the old version");
        assert!(matches!(f.last_error(), Some(LoadError::Plugin(_))));
        assert_eq!(after.pool.call("handle", b"still here").result.unwrap(), b"still here");
    }

    #[test]
    fn a_snapshot_taken_before_a_reload_keeps_its_version() {
        let root = TempDir::new("registry");
        root.write("f/manifest.yaml", "plugin: plugin.wat\nentrypoint: handle\n");
        root.write(
            "f/plugin.wat",
            HELLO.replace(r#"(export "handle")"#, r#"(export "handle") (export "other")"#),
        );
        let registry = registry(&root);
        registry.reload();
        let f = registry.get("f").unwrap();
        let in_flight = f.current().unwrap();
        root.write("f/manifest.yaml", "plugin: plugin.wat\nentrypoint: other\n");
        registry.reload();
        assert_eq!(f.current().unwrap().manifest.entrypoint, "other", "new calls see the new version");
        assert_eq!(in_flight.manifest.entrypoint, "handle");
        assert_eq!(in_flight.pool.call("handle", b"old").result.unwrap(), b"old", "the old one still runs");
    }

    #[test]
    fn a_missing_plugin_is_a_read_error_naming_the_file() {
        let root = TempDir::new("registry");
        root.write("f/manifest.yaml", "plugin: plugin.wasm");
        let registry = registry(&root);
        registry.reload();
        match registry.get("f").unwrap().last_error() {
            Some(LoadError::Read { path, .. }) => assert_eq!(path, root.path().join("f/plugin.wasm")),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn unchanged_functions_are_not_reloaded_and_removed_ones_go() {
        let root = TempDir::new("registry");
        root.write("a/manifest.yaml", "plugin: plugin.wat");
        root.write("a/plugin.wat", HELLO);
        root.write("b/plugin.wasm", "");
        let registry = registry(&root);
        registry.reload();
        let summary = registry.reload();
        assert_eq!(summary.unchanged, ["a"]);
        std::fs::remove_dir_all(root.path().join("a")).unwrap();
        assert_eq!(registry.reload().removed, ["a"]);
        assert!(registry.get("a").is_none());
    }

    #[test]
    fn a_plugin_without_its_entrypoint_is_not_loaded_and_its_exports_are_named() {
        let root = TempDir::new("registry");
        root.write("f/manifest.yaml", "plugin: plugin.wat\nentrypoint: greet");
        root.write("f/plugin.wat", HELLO);
        let registry = registry(&root);
        assert_eq!(registry.reload().failed, ["f"]);
        let error = registry.get("f").unwrap().last_error().unwrap();
        assert_eq!(
            error,
            LoadError::NoEntrypoint { entrypoint: "greet".into(), exports: vec!["handle".into()] }
        );
        assert_eq!(
            error.to_string(),
            "the plugin has no export \"greet\" to call (its callable exports: handle); \
             set `entrypoint:` in the manifest to one of them"
        );
    }

    #[test]
    fn a_second_load_of_what_serves_already_swaps_nothing() {
        let root = TempDir::new("registry");
        root.write("f/manifest.yaml", "plugin: plugin.wat");
        root.write("f/plugin.wat", HELLO);
        let registry = registry(&root);
        registry.reload();
        let f = registry.get("f").unwrap();
        let serving = f.current().unwrap();
        let same = Version {
            manifest: serving.manifest.clone(),
            pool: serving.pool.clone(),
            plugin: serving.plugin.clone(),
        };
        assert!(!f.swap(same), "the load that lost the race is unchanged");
        assert!(Arc::ptr_eq(&f.current().unwrap(), &serving));
    }

    #[test]
    fn a_manifest_change_alone_is_a_new_version() {
        let root = TempDir::new("registry");
        root.write("f/manifest.yaml", "plugin: plugin.wat");
        root.write("f/plugin.wat", HELLO);
        let registry = registry(&root);
        registry.reload();
        root.write("f/manifest.yaml", "plugin: plugin.wat\nenv: {A: b}");
        let reloaded = registry.reload_dir(&root.path().join("f")).map(|r| r.load);
        assert!(matches!(reloaded, Some(Load::Loaded { .. })));
        let version = registry.get("f").unwrap().current().unwrap();
        assert_eq!(version.manifest.env.get("A").map(String::as_str), Some("b"));
    }

    #[test]
    fn trimming_keeps_one_idle_instance_per_function() {
        let root = TempDir::new("registry");
        root.write("f/manifest.yaml", "plugin: plugin.wat\nentrypoint: grow\nconfig: {hold_ms: '200'}\n");
        let wat =
            std::fs::read_to_string(format!("{}/testdata/plugins/grow.wat", env!("CARGO_MANIFEST_DIR")));
        root.write("f/plugin.wat", wat.unwrap());
        let registry = registry(&root);
        registry.reload();
        let pool = registry.get("f").unwrap().current().unwrap().pool.clone();
        crate::testutil::call_at_once(&pool, "grow", 2);
        assert_eq!(pool.stats().idle, 2);
        let now = Instant::now();
        let ttl = Duration::from_secs(60);
        assert!(registry.trim_idle(now) < now + ttl, "due when the first instance expires");
        assert_eq!(pool.stats().idle, 2, "not yet");
        let later = now + ttl;
        assert_eq!(registry.trim_idle(later), later + ttl, "nothing left to expire");
        assert_eq!(pool.stats().idle, 1);
    }
}
