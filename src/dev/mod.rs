//! The dev loop (`alyx dev`): watch each function's sources, run its build,
//! and hot-reload the new plugin beside the running one, keeping the old
//! version when a build or a load fails. Stopping it kills the builds that
//! run (their process groups) and joins every thread within a grace period.

pub mod build;
pub mod debounce;
pub mod generated;
pub mod watcher;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, SystemTime};

use crate::error::Error;
use crate::registry::{BuildInfo, Load, Registry};
use crate::sync::lock;
use build::Cancel;
use debounce::Builds;
use generated::Generated;
use watcher::{Watcher, function_dir};

/// Timing of the dev loop.
#[derive(Debug, Clone, Copy)]
pub struct DevOptions {
    /// Quiet period after a source change before building (default 100 ms).
    pub source_delay: Duration,
    /// Quiet period after a plugin or manifest change before reloading
    /// (default 200 ms).
    pub plugin_delay: Duration,
    /// Longest a build may run before it is killed (default 5 min).
    pub build_timeout: Duration,
}

/// What the plugins watcher reacts to.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
enum PluginEvent {
    /// A function's manifest changed.
    Manifest(PathBuf),
    /// A function's plugin changed. Ignored while its build runs: the
    /// build writes it and loads it itself (two loads would race).
    Plugin(PathBuf),
    /// A folder appeared or disappeared: rediscover.
    Rescan,
}

/// The running dev loop: two watchers and the builds they started.
/// [`DevLoop::stop`] (or dropping it) kills running builds, stops the
/// watchers and joins their threads.
pub struct DevLoop {
    sources: Option<Watcher<PathBuf>>,
    plugins: Option<Watcher<PluginEvent>>,
    builder: Arc<Builder>,
}

impl DevLoop {
    /// Stops within `grace`; false if a thread was still running then.
    pub fn stop(mut self, grace: Duration) -> bool {
        self.halt(grace)
    }

    fn halt(&mut self, grace: Duration) -> bool {
        self.builder.cancel.stop();
        drop(self.sources.take());
        drop(self.plugins.take());
        self.builder.join(grace)
    }
}

impl Drop for DevLoop {
    fn drop(&mut self) {
        self.halt(Duration::from_secs(10));
    }
}

/// Starts watching `root` (an absolute path; the registry's folder).
pub fn start(registry: Arc<Registry>, root: &Path, options: DevOptions) -> Result<DevLoop, Error> {
    let builder = Arc::new(Builder {
        registry: registry.clone(),
        generated: Generated::default(),
        builds: Mutex::new(Builds::new()),
        threads: Mutex::new(Vec::new()),
        timeout: options.build_timeout,
        cancel: Cancel::default(),
    });
    let (r, root_path) = (registry.clone(), root.to_path_buf());
    let (b, classify) = (builder.clone(), builder.clone());
    let sources = Watcher::start(
        "sources",
        root,
        options.source_delay,
        move |path| source_of(&r, &classify.generated, &root_path, path),
        move |dirs| dirs.into_iter().for_each(|dir| b.request(dir)),
    )?;
    let (r, root_path, b) = (registry.clone(), root.to_path_buf(), builder.clone());
    let plugins = Watcher::start(
        "plugins",
        root,
        options.plugin_delay,
        move |path| plugin_event(&r, &root_path, path),
        move |events| reload(&b, events),
    )?;
    builder.build_missing();
    Ok(DevLoop { sources: Some(sources), plugins: Some(plugins), builder })
}

/// The function folder whose build `path` is a source of: it matches the
/// function's `build.watch` globs and is not something the build writes.
fn source_of(registry: &Registry, generated: &Generated, root: &Path, path: &Path) -> Option<PathBuf> {
    let dir = function_dir(root, path)?;
    let manifest = registry.by_dir(&dir)?.manifest();
    let build = manifest.build.as_ref()?;
    let relative = path.strip_prefix(&dir).ok()?;
    let written = [&build.output, &manifest.plugin].iter().any(|p| p.as_path() == path)
        || relative == Path::new(crate::manifest::FILE_NAME)
        || generated.is_generated(&dir, path);
    (!written && build.watch.iter().any(|glob| glob.matches_path(relative))).then_some(dir)
}

fn plugin_event(registry: &Registry, root: &Path, path: &Path) -> Option<PluginEvent> {
    if path.parent() == Some(root) {
        return Some(PluginEvent::Rescan);
    }
    let dir = function_dir(root, path)?;
    let is_manifest = path.file_name().is_some_and(|n| n == crate::manifest::FILE_NAME);
    match registry.by_dir(&dir) {
        Some(_) if is_manifest => Some(PluginEvent::Manifest(dir)),
        Some(f) if f.manifest().plugin == path => Some(PluginEvent::Plugin(dir)),
        Some(_) => None,
        None => {
            let plugin_like = path.extension().is_some_and(|e| e == "wasm" || e == "wat");
            (is_manifest || plugin_like).then_some(PluginEvent::Rescan)
        }
    }
}

/// Reloads what the events name; a rescan also builds the functions that
/// appeared with a build and no plugin, as at start.
fn reload(builder: &Arc<Builder>, events: Vec<PluginEvent>) {
    let registry = &builder.registry;
    if events.contains(&PluginEvent::Rescan) {
        let summary = registry.reload();
        let building = builder.build_missing();
        for name in &summary.loaded {
            println!("{name}: loaded");
        }
        for name in &summary.removed {
            println!("{name}: removed");
        }
        for name in summary.failed.iter().filter(|name| !building.contains(name)) {
            println!("{name}: load failed (see GET /api/functions/{name})");
        }
        for name in &building {
            println!("{name}: found, building");
        }
        return;
    }
    for event in events {
        let dir = match event {
            PluginEvent::Manifest(dir) => dir,
            PluginEvent::Plugin(dir) if !registry.by_dir(&dir).is_some_and(|f| f.builds().busy) => dir,
            PluginEvent::Plugin(_) | PluginEvent::Rescan => continue,
        };
        let Some(reloaded) = registry.reload_dir(&dir) else { continue };
        reloaded.new_problems.iter().for_each(|problem| println!("{problem}"));
        if reloaded.load != Load::Unchanged {
            println!("{}: {}", reloaded.name, describe(&reloaded.load));
        }
    }
}

/// `reloaded (plugin 3f2a91c0…)`, or why not.
fn describe(load: &Load) -> String {
    match load {
        Load::Loaded { hash } => format!("reloaded (plugin {}…)", &hash[..8]),
        Load::Unchanged => "already serving it".into(),
        Load::Failed { error: message, serving: Some(hash) } => {
            format!("reload failed, still serving plugin {}…: {message}", &hash[..8])
        }
        Load::Failed { error: message, serving: None } => format!("load failed: {message}"),
    }
}

/// Runs builds: at most one per function at a time, one more after it for
/// changes that arrived during it; different functions build in parallel.
struct Builder {
    registry: Arc<Registry>,
    generated: Generated,
    builds: Mutex<Builds<PathBuf>>,
    threads: Mutex<Vec<JoinHandle<()>>>,
    timeout: Duration,
    cancel: Cancel,
}

impl Builder {
    /// Builds the functions that have a build, no plugin loaded and no
    /// build yet (a fresh checkout, or a folder added while running);
    /// returns their names.
    fn build_missing(self: &Arc<Self>) -> Vec<String> {
        let never_built = |f: &crate::registry::Function| {
            let builds = f.builds();
            f.current().is_none() && builds.runs == 0 && !builds.busy
        };
        let missing: Vec<_> = self
            .registry
            .list()
            .into_iter()
            .filter(|f| f.manifest().build.is_some() && never_built(f))
            .collect();
        missing.iter().for_each(|f| self.request(f.manifest().dir.clone()));
        missing.iter().map(|f| f.name.clone()).collect()
    }

    fn request(self: &Arc<Self>, dir: PathBuf) {
        let function = self.registry.by_dir(&dir);
        {
            let mut builds = lock(&self.builds);
            if self.cancel.is_stopped() || !builds.request(dir.clone()) {
                return;
            }
            function.iter().for_each(|f| f.set_build_busy(true));
        }
        let builder = self.clone();
        let name = format!("build-{}", function.map_or("?".to_string(), |f| f.name.clone()));
        let spawned = std::thread::Builder::new().name(name).spawn(move || {
            loop {
                builder.build(&dir);
                let mut builds = lock(&builder.builds);
                if !builds.finished(&dir) || builder.cancel.is_stopped() {
                    builder.registry.by_dir(&dir).iter().for_each(|f| f.set_build_busy(false));
                    return;
                }
            }
        });
        match spawned {
            Ok(handle) => {
                let mut threads = lock(&self.threads);
                threads.retain(|t| !t.is_finished());
                threads.push(handle);
            }
            Err(e) => log::error!("cannot start a build thread: {e}"),
        }
    }

    /// One build of the function in `dir`, then a reload if it succeeded.
    fn build(&self, dir: &Path) {
        let Some(function) = self.registry.by_dir(dir) else { return };
        let manifest = function.manifest();
        let Some(build) = &manifest.build else { return };
        let before = generated::snapshot(&manifest.dir, &build.watch);
        self.generated.started(&manifest.dir);
        let result = build::run(build, &manifest.dir, self.timeout, &self.cancel);
        let after = generated::snapshot(&manifest.dir, &build.watch);
        self.generated.finished(&manifest.dir, &before, &after);
        let summary = build::summary(&function.name, &result);
        function.build_finished(BuildInfo {
            ok: result.ok,
            duration: result.duration,
            finished_at: SystemTime::now(),
            failure: result.failure.clone(),
            output: result.output.clone(),
        });
        if self.cancel.is_stopped() {
            return;
        }
        if !result.ok {
            println!("{summary}\n{}", indent(&result.output));
            return;
        }
        match self.registry.reload_dir(dir) {
            Some(reloaded) => {
                reloaded.new_problems.iter().for_each(|problem| println!("{problem}"));
                println!("{summary} → {}", describe(&reloaded.load));
            }
            None => println!("{summary}"),
        }
    }

    /// Joins the build threads within `grace`; false if one still ran.
    fn join(&self, grace: Duration) -> bool {
        let threads: Vec<JoinHandle<()>> = lock(&self.threads).drain(..).collect();
        if threads.is_empty() {
            return true;
        }
        let (done, joined) = mpsc::channel();
        let joiner = std::thread::Builder::new().name("build-join".into()).spawn(move || {
            threads.into_iter().for_each(|t| drop(t.join()));
            let _ = done.send(());
        });
        let clean = joiner.is_ok() && joined.recv_timeout(grace).is_ok();
        if !clean {
            log::warn!("dev: builds still running after the {} s grace period", grace.as_secs());
        }
        clean
    }
}

fn indent(output: &str) -> String {
    let lines: Vec<&str> = output.lines().collect();
    let tail = &lines[lines.len().saturating_sub(20)..];
    tail.iter().map(|l| format!("    {l}")).collect::<Vec<_>>().join("\n")
}
