//! The registry of functions being served: discovery results turned into
//! loaded plugins, with their status, stats and last error.
//!
//! Loading never unloads first: a new version is compiled and instantiated
//! beside the running one and swapped in only on success, so a bad plugin
//! or manifest leaves the last good version serving, with the error kept
//! for the API. A function whose first load failed is listed as `failed`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use sha2::{Digest, Sha256};

use crate::discovery;
use crate::manifest::{Manifest, Problem};
use crate::runtime::http::HttpClient;
use crate::runtime::{Limits, LogLevel, Plugin, PluginSlot, PluginSpec, Pool, Vars};
use crate::stats::Stats;

/// Server-wide defaults for what a manifest leaves out.
#[derive(Debug, Clone)]
pub struct Defaults {
    pub timeout: Duration,
    pub memory: u64,
    pub instances: usize,
    pub log_level: LogLevel,
    /// Function names discovery refuses (the HTTP API's own paths).
    pub reserved: &'static [&'static str],
}

/// The plugin version a function serves.
#[derive(Debug, Clone, PartialEq)]
pub struct PluginInfo {
    /// SHA-256 of the plugin file, lower-case hex.
    pub hash: String,
    pub loaded_at: SystemTime,
    pub size: u64,
}

/// What the registry knows about a function besides its plugin.
#[derive(Debug, Clone)]
pub struct FunctionState {
    pub manifest: Arc<Manifest>,
    pub plugin: Option<PluginInfo>,
    pub last_error: Option<String>,
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

/// One function: its current plugin version, state and statistics.
pub struct Function {
    pub name: String,
    slot: PluginSlot,
    state: RwLock<FunctionState>,
    vars: Arc<Vars>,
    build: RwLock<Option<BuildInfo>>,
    pub stats: Stats,
}

impl Function {
    /// The pool to call now, if a version is loaded.
    pub fn pool(&self) -> Option<Arc<Pool>> {
        self.slot.current()
    }

    /// The manifest of the version being served.
    pub fn manifest(&self) -> Arc<Manifest> {
        self.state.read().unwrap_or_else(|e| e.into_inner()).manifest.clone()
    }

    pub fn state(&self) -> FunctionState {
        self.state.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    /// `loaded` when a version serves, else `failed`.
    pub fn status(&self) -> &'static str {
        if self.slot.current().is_some() { "loaded" } else { "failed" }
    }

    /// The last build's result, if the dev loop built this function.
    pub fn last_build(&self) -> Option<BuildInfo> {
        self.build.read().unwrap_or_else(|e| e.into_inner()).clone()
    }

    pub fn set_build(&self, info: BuildInfo) {
        *self.build.write().unwrap_or_else(|e| e.into_inner()) = Some(info);
    }

    fn update(&self, change: impl FnOnce(&mut FunctionState)) {
        change(&mut self.state.write().unwrap_or_else(|e| e.into_inner()));
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

/// All functions of one folder.
pub struct Registry {
    dir: PathBuf,
    defaults: Defaults,
    http: Arc<HttpClient>,
    functions: RwLock<BTreeMap<String, Arc<Function>>>,
    problems: RwLock<Vec<Problem>>,
    ready: AtomicBool,
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
        }
    }

    /// True once the first discovery and load finished.
    pub fn is_ready(&self) -> bool {
        self.ready.load(Ordering::SeqCst)
    }

    pub fn get(&self, name: &str) -> Option<Arc<Function>> {
        self.functions.read().unwrap_or_else(|e| e.into_inner()).get(name).cloned()
    }

    pub fn list(&self) -> Vec<Arc<Function>> {
        self.functions.read().unwrap_or_else(|e| e.into_inner()).values().cloned().collect()
    }

    /// Problems found by the last discovery (manifest errors and warnings).
    pub fn problems(&self) -> Vec<Problem> {
        self.problems.read().unwrap_or_else(|e| e.into_inner()).clone()
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
        *self.problems.write().unwrap_or_else(|e| e.into_inner()) = found.problems;
        self.ready.store(true, Ordering::SeqCst);
        summary
    }

    fn remove_missing(&self, present: &[String]) -> Vec<String> {
        let mut functions = self.functions.write().unwrap_or_else(|e| e.into_inner());
        let gone: Vec<String> = functions.keys().filter(|n| !present.contains(n)).cloned().collect();
        for name in &gone {
            functions.remove(name);
            log::info!("{name}: removed");
        }
        gone
    }

    /// Loads one function's manifest and plugin beside its current version.
    fn load(&self, manifest: Manifest) -> Load {
        let manifest = Arc::new(manifest);
        let function = self.entry(&manifest);
        let bytes = match std::fs::read(&manifest.plugin) {
            Ok(bytes) => bytes,
            Err(e) => {
                let message = format!("cannot read {}: {e}", manifest.plugin.display());
                return self.fail(&function, manifest, message);
            }
        };
        let hash = hex_sha256(&bytes);
        let state = function.state();
        let same_plugin = state.plugin.as_ref().is_some_and(|p| p.hash == hash);
        if same_plugin && *state.manifest == *manifest && function.pool().is_some() {
            return Load::Unchanged;
        }
        let size = bytes.len() as u64;
        match self.compile(&manifest, bytes).and_then(|plugin| self.pool(&function, plugin)) {
            Ok(pool) => {
                function.slot.swap(pool);
                let info = PluginInfo { hash: hash.clone(), loaded_at: SystemTime::now(), size };
                log::info!("{}: loaded (plugin {})", function.name, &info.hash[..12]);
                function.update(|s| {
                    s.manifest = manifest;
                    s.plugin = Some(info);
                    s.last_error = None;
                });
                function.stats.record_reload("ok");
                Load::Loaded { hash }
            }
            Err(message) => self.fail(&function, manifest, message),
        }
    }

    /// Records a failed load; the running version (if any) keeps serving.
    fn fail(&self, function: &Function, manifest: Arc<Manifest>, message: String) -> Load {
        log::warn!("{}: {message}", function.name);
        let serving = function.pool().is_some();
        function.update(|s| {
            if !serving {
                s.manifest = manifest;
            }
            s.last_error = Some(message.clone());
        });
        function.stats.record_reload("failed");
        let serving = function.state().plugin.filter(|_| serving).map(|p| p.hash);
        Load::Failed { message, serving }
    }

    /// The function whose folder is `dir`, if one is known.
    pub fn by_dir(&self, dir: &Path) -> Option<Arc<Function>> {
        self.list().into_iter().find(|f| f.manifest().dir == dir)
    }

    /// Reloads the function in one folder: re-reads its manifest and plugin.
    /// An invalid manifest keeps the last good one serving and records the
    /// problem; `None` when the folder holds no function (or no longer).
    pub fn reload_dir(&self, dir: &Path) -> Option<(String, Load)> {
        let (manifest, problems) = discovery::load(dir, self.defaults.reserved);
        if let Some(manifest) = manifest {
            let name = manifest.name.clone();
            return Some((name, self.load(manifest)));
        }
        let function = self.by_dir(dir)?;
        let message = problems.iter().map(ToString::to_string).collect::<Vec<_>>().join("; ");
        let manifest = function.manifest();
        Some((function.name.clone(), self.fail(&function, manifest, message)))
    }

    /// The function's entry, created (empty) on first sight.
    fn entry(&self, manifest: &Arc<Manifest>) -> Arc<Function> {
        let mut functions = self.functions.write().unwrap_or_else(|e| e.into_inner());
        let function = functions.entry(manifest.name.clone()).or_insert_with(|| {
            Arc::new(Function {
                name: manifest.name.clone(),
                slot: PluginSlot::empty(),
                state: RwLock::new(FunctionState {
                    manifest: manifest.clone(),
                    plugin: None,
                    last_error: None,
                }),
                vars: Vars::new(),
                build: RwLock::new(None),
                stats: Stats::default(),
            })
        });
        function.clone()
    }

    fn compile(&self, manifest: &Manifest, wasm: Vec<u8>) -> Result<Plugin, String> {
        let mut spec = PluginSpec::new(&manifest.name, wasm);
        spec.limits = Limits {
            timeout: Some(manifest.timeout.unwrap_or(self.defaults.timeout)),
            memory_bytes: manifest.memory.unwrap_or(self.defaults.memory),
            ..Limits::default()
        };
        spec.config = manifest.config.clone();
        spec.allowed_hosts = manifest.allowed_hosts.clone();
        spec.log_level = self.defaults.log_level;
        spec.http = Some(self.http.clone());
        spec.engines = spec.engines.min(self.defaults.instances);
        Plugin::compile(spec).map_err(|e| e.to_string())
    }

    fn pool(&self, function: &Function, plugin: Plugin) -> Result<Pool, String> {
        Pool::new(plugin, function.vars.clone(), self.defaults.instances).map_err(|e| e.to_string())
    }
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
        message: String,
        serving: Option<String>,
    },
}

/// SHA-256 of `bytes` as lower-case hex.
pub fn hex_sha256(bytes: &[u8]) -> String {
    Sha256::digest(bytes).iter().map(|b| format!("{b:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const HELLO: &str = r#"(module
      (import "extism:host/env" "output_set" (func $out (param i64 i64)))
      (import "extism:host/env" "input_offset" (func $off (result i64)))
      (import "extism:host/env" "input_length" (func $len (result i64)))
      (func (export "handle") (result i32) (call $out (call $off) (call $len)) (i32.const 0)))"#;

    fn folder(name: &str) -> PathBuf {
        let root = std::env::temp_dir().join(format!("alyx-registry-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        std::fs::create_dir_all(&root).unwrap();
        root
    }

    fn write(root: &Path, path: &str, text: &str) {
        let path = root.join(path);
        std::fs::create_dir_all(path.parent().unwrap()).unwrap();
        std::fs::write(path, text).unwrap();
    }

    fn registry(root: &Path) -> Registry {
        let defaults = Defaults {
            timeout: Duration::from_secs(5),
            memory: 16 << 20,
            instances: 2,
            log_level: LogLevel::Info,
            reserved: crate::http::router::RESERVED_NAMES,
        };
        Registry::new(root, defaults)
    }

    #[test]
    fn loads_good_functions_and_lists_failed_ones() {
        let root = folder("mixed");
        write(&root, "good/manifest.yaml", "plugin: plugin.wat");
        write(&root, "good/plugin.wat", HELLO);
        write(&root, "bad/manifest.yaml", "plugin: plugin.wat");
        write(&root, "bad/plugin.wat", "(module (import \"extism:host/env\" \"nope\" (func)))");
        let registry = registry(&root);
        let summary = registry.reload();
        assert_eq!((summary.loaded, summary.failed), (vec!["good".to_string()], vec!["bad".to_string()]));
        assert!(registry.is_ready());
        assert_eq!(registry.get("good").unwrap().status(), "loaded");
        let bad = registry.get("bad").unwrap();
        assert_eq!(bad.status(), "failed");
        assert!(bad.state().last_error.unwrap().contains("extism:host/env::nope"));
    }

    #[test]
    fn a_failed_reload_keeps_the_old_version() {
        let root = folder("keep");
        write(&root, "f/manifest.yaml", "plugin: plugin.wat");
        write(&root, "f/plugin.wat", HELLO);
        let registry = registry(&root);
        registry.reload();
        let hash = registry.get("f").unwrap().state().plugin.unwrap().hash;
        write(&root, "f/plugin.wat", "(module (func (export \"handle\") (result i32) (i32.const 0))");
        let summary = registry.reload();
        assert_eq!(summary.failed, ["f"]);
        let f = registry.get("f").unwrap();
        assert_eq!(f.status(), "loaded");
        assert_eq!(f.state().plugin.unwrap().hash, hash, "still the old version");
        assert!(f.state().last_error.is_some());
        assert_eq!(f.pool().unwrap().call("handle", b"still here").result.unwrap(), b"still here");
    }

    #[test]
    fn unchanged_functions_are_not_reloaded_and_removed_ones_go() {
        let root = folder("unchanged");
        write(&root, "a/manifest.yaml", "plugin: plugin.wat");
        write(&root, "a/plugin.wat", HELLO);
        write(&root, "b/plugin.wasm", "");
        let registry = registry(&root);
        registry.reload();
        let summary = registry.reload();
        assert_eq!(summary.unchanged, ["a"]);
        std::fs::remove_dir_all(root.join("a")).unwrap();
        assert_eq!(registry.reload().removed, ["a"]);
        assert!(registry.get("a").is_none());
    }

    #[test]
    fn sha256_is_the_standard_one() {
        assert_eq!(hex_sha256(b"abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    }
}
