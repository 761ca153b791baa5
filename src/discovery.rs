//! Discovery: finds the functions in a folder, and owns every rule that
//! needs the disk. Each subfolder with a `manifest.yaml` (or, without one,
//! exactly one `.wasm` file) is a function; its manifest is read here,
//! parsed by `crate::manifest` (which reads no file), then checked on disk:
//! a manifest that names no plugin gets `build.output`, else the folder's
//! only `.wasm` file, else `plugin.wasm`.
//!
//! No file is read through a link that leaves the function folder: not the
//! manifest, not a path it names, not a plugin it gets by default. What is
//! read is bounded: a manifest over [`MAX_MANIFEST_BYTES`], or anything but
//! a regular file (a FIFO would block the load forever), is refused unread.
//! Partial failure is data: the good manifests and every problem come back
//! together, so one bad manifest never stops the others.

use std::fs::File;
use std::io::Read;
use std::path::{Path, PathBuf};

use crate::manifest::{self, LocalPath, Manifest, Problem, Unresolved};
use crate::units::format_size;

/// The largest manifest read (1 MiB): real ones are a few hundred bytes,
/// and a bigger one would cost seconds of parsing at every reload.
pub const MAX_MANIFEST_BYTES: u64 = 1 << 20;

/// What a functions folder holds.
#[derive(Debug, Default)]
pub struct Discovered {
    pub functions: Vec<Manifest>,
    /// Errors (the function is left out) and warnings (it is kept).
    pub problems: Vec<Problem>,
}

impl Discovered {
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(Problem::is_error)
    }
}

/// Discovers every function below `root`, in folder-name order. A function
/// may not take a name in `reserved` (the HTTP API's own paths).
pub fn discover(root: &Path, reserved: &[&str]) -> Discovered {
    let mut found = Discovered::default();
    let dirs = match function_dirs(root) {
        Ok(dirs) => dirs,
        Err(message) => {
            found.problems.push(Problem::error(root, "", message));
            return found;
        }
    };
    for dir in dirs {
        let (manifest, problems) = load(&dir, reserved);
        found.problems.extend(problems);
        if let Some(m) = manifest {
            add(&mut found, m);
        }
    }
    found
}

/// Loads the function in one folder (manifest or lone plugin); a name in
/// `reserved` is an error.
pub fn load(dir: &Path, reserved: &[&str]) -> (Option<Manifest>, Vec<Problem>) {
    let file = dir.join(manifest::FILE_NAME);
    if let Err(e) = std::fs::symlink_metadata(&file)
        && e.kind() == std::io::ErrorKind::NotFound
    {
        return without_manifest(dir, reserved);
    }
    match read_manifest(dir, &file) {
        Ok(text) => with_manifest(dir, &file, &text, reserved),
        Err(message) => (None, vec![Problem::error(&file, "", message)]),
    }
}

/// The manifest's text, unless it is a link out of `dir`, not a regular
/// file, too large or not UTF-8 (refused without reading what it holds).
fn read_manifest(dir: &Path, file: &Path) -> Result<String, String> {
    if let Some(target) = outside(dir, file) {
        return Err(format!("must stay inside the function folder (it is a link to {})", target.display()));
    }
    let mut opened = open_regular(file).map_err(|e| format!("cannot read: {e}"))?;
    let size = opened.metadata().map_err(|e| format!("cannot read: {e}"))?.len();
    let too_large = |size: u64| {
        let limit = format_size(MAX_MANIFEST_BYTES);
        format!("is {size} bytes; a manifest may have at most {limit} (is this the right file?)")
    };
    if size > MAX_MANIFEST_BYTES {
        return Err(too_large(size));
    }
    let mut text = String::new();
    // Bounded again: the file may grow between the check and the read.
    let read = opened.by_ref().take(MAX_MANIFEST_BYTES + 1).read_to_string(&mut text);
    read.map_err(|e| format!("cannot read: {e}"))?;
    match text.len() as u64 {
        size if size > MAX_MANIFEST_BYTES => Err(too_large(size)),
        _ => Ok(text),
    }
}

/// Opens `path` for reading if it is a regular file (through links).
fn open_regular(path: &Path) -> std::io::Result<File> {
    let file = File::open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    Ok(file)
}

/// Reads a function's plugin file: a regular file inside the function
/// folder (checked again here, as it may have changed since discovery).
pub fn read_plugin(m: &Manifest) -> Result<Vec<u8>, String> {
    if let Some(target) = outside(&m.dir, &m.plugin) {
        return Err(format!("must stay inside the function folder (it is a link to {})", target.display()));
    }
    let mut bytes = Vec::new();
    open_regular(&m.plugin).and_then(|mut f| f.read_to_end(&mut bytes)).map_err(|e| e.to_string())?;
    Ok(bytes)
}

/// Parses the manifest, checks its name and its paths on disk, and
/// resolves its plugin (a default one is held to the same rule as a
/// named one: no link out of the folder).
fn with_manifest(dir: &Path, file: &Path, text: &str, reserved: &[&str]) -> (Option<Manifest>, Vec<Problem>) {
    let parsed = manifest::parse(dir, file, text);
    let mut problems = parsed.problems;
    problems.extend(parsed.name.and_then(|name| reserved_name(file, &name, reserved)));
    problems.extend(parsed.paths.iter().filter_map(|local| link_out(dir, file, local)));
    if problems.iter().any(Problem::is_error) {
        return (None, problems);
    }
    let Some(m) = parsed.manifest.map(resolve_plugin) else {
        return (None, problems);
    };
    match link_out(dir, file, &plugin_path(&m)) {
        Some(problem) => {
            problems.push(problem);
            (None, problems)
        }
        None => (Some(m), problems),
    }
}

/// The resolved plugin as a path the manifest could have named.
fn plugin_path(m: &Manifest) -> LocalPath {
    let written = m.plugin.strip_prefix(&m.dir).unwrap_or(&m.plugin).display().to_string();
    LocalPath { field: "plugin".into(), written, path: m.plugin.clone() }
}

/// An error when `name` is one the server reserves.
fn reserved_name(file: &Path, name: &str, reserved: &[&str]) -> Option<Problem> {
    let message = format!("{name:?} is reserved by the HTTP API (/api/functions/{name}); choose another");
    reserved.contains(&name).then(|| Problem::error(file, "name", message))
}

/// An error when `local` exists and a link leads it out of `dir`.
fn link_out(dir: &Path, file: &Path, local: &LocalPath) -> Option<Problem> {
    let real = outside(dir, &local.path)?;
    let message =
        format!("must stay inside the function folder ({:?} is a link to {})", local.written, real.display());
    Some(Problem::error(file, &local.field, message))
}

/// Where `path` really is, when it exists and links lead it out of `dir`.
fn outside(dir: &Path, path: &Path) -> Option<PathBuf> {
    let (Ok(real), Ok(root)) = (path.canonicalize(), dir.canonicalize()) else {
        return None;
    };
    (!real.starts_with(&root)).then_some(real)
}

/// The plugin file: as named, else `build.output`, else the folder's only
/// `.wasm` file, else `plugin.wasm`.
fn resolve_plugin(m: Unresolved) -> Manifest {
    let plugin = match (&m.plugin, &m.build) {
        (Some(plugin), _) => plugin.clone(),
        (None, Some(build)) => build.output.clone(),
        (None, None) => single_wasm(&m.dir).unwrap_or_else(|| m.dir.join(manifest::DEFAULT_PLUGIN)),
    };
    m.with_plugin(plugin)
}

/// The folder's only `.wasm` file, if it has exactly one.
fn single_wasm(dir: &Path) -> Option<PathBuf> {
    let mut found = std::fs::read_dir(dir)
        .ok()?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| p.extension().is_some_and(|e| e == "wasm") && p.is_file());
    let first = found.next()?;
    found.next().is_none().then_some(first)
}

fn without_manifest(dir: &Path, reserved: &[&str]) -> (Option<Manifest>, Vec<Problem>) {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let Some(plugin) = single_wasm(dir) else {
        let message = "no manifest.yaml and not exactly one .wasm file; the folder is ignored";
        return (None, vec![Problem::warning(dir, "", message)]);
    };
    if !manifest::valid_name(&name) || reserved.contains(&name.as_str()) {
        return (None, vec![Problem::error(dir, "", bad_folder_name(&name, reserved))]);
    }
    let m = manifest::defaults(dir, &name, plugin);
    match link_out(dir, dir, &plugin_path(&m)) {
        Some(problem) => (None, vec![problem]),
        None => (Some(m), Vec::new()),
    }
}

fn bad_folder_name(name: &str, reserved: &[&str]) -> String {
    let not = match reserved {
        [] => String::new(),
        names => format!("; not {}", names.join(" or ")),
    };
    format!("folder name {name:?} is not a valid function name (use a-z, 0-9, _ and -{not})")
}

fn add(found: &mut Discovered, m: Manifest) {
    if let Some(first) = found.functions.iter().find(|f| f.name == m.name) {
        let message =
            format!("name {:?} is already used by {}; this one is ignored", m.name, first.dir.display());
        found.problems.push(Problem::error(&m.dir.join(manifest::FILE_NAME), "name", message));
        return;
    }
    found.functions.push(m);
}

fn function_dirs(root: &Path) -> Result<Vec<PathBuf>, String> {
    let entries = std::fs::read_dir(root).map_err(|e| format!("cannot read the functions folder: {e}"))?;
    let mut dirs: Vec<PathBuf> =
        entries.filter_map(Result::ok).map(|e| e.path()).filter(|p| p.is_dir() && !is_hidden(p)).collect();
    dirs.sort();
    Ok(dirs)
}

fn is_hidden(path: &Path) -> bool {
    path.file_name().is_some_and(|n| n.to_string_lossy().starts_with('.'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::Severity;
    use crate::testutil::TempDir;

    /// What the HTTP API reserves today.
    const RESERVED: &[&str] = &["stats", "reload"];

    fn tree(files: &[(&str, &str)]) -> TempDir {
        let root = TempDir::new("discovery");
        for (path, text) in files {
            root.write(path, text);
        }
        root
    }

    fn link(root: &TempDir, target: &str, link: &str) {
        std::os::unix::fs::symlink(target, root.path().join(link)).unwrap();
    }

    /// Every problem as `file: field: message`, file relative to `root`.
    fn problems(root: &TempDir, problems: &[Problem]) -> Vec<String> {
        let prefix = format!("{}/", root.path().display());
        problems.iter().map(|p| p.to_string().replacen(&prefix, "", 1)).collect()
    }

    #[test]
    fn bad_manifests_do_not_stop_good_ones() {
        let root = tree(&[
            ("a/manifest.yaml", "name: a"),
            ("b/manifest.yaml", "timeout: never"),
            ("c/plugin.wasm", ""),
            ("d/readme.txt", "nothing here"),
            (".hidden/manifest.yaml", "name: hidden"),
        ]);
        let found = discover(root.path(), RESERVED);
        let names: Vec<&str> = found.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert!(found.has_errors());
        assert_eq!(found.problems.len(), 2, "{:?}", found.problems);
        assert!(found.problems[0].to_string().contains("b/manifest.yaml: timeout:"));
        assert_eq!(found.problems[1].severity, Severity::Warning);
    }

    #[test]
    fn duplicate_names_keep_the_first() {
        let root = tree(&[("one/manifest.yaml", "name: same"), ("two/manifest.yaml", "name: same")]);
        let found = discover(root.path(), RESERVED);
        assert_eq!(found.functions.len(), 1);
        assert!(found.functions[0].dir.ends_with("one"));
        assert!(found.problems[0].message.contains("already used"));
    }

    #[test]
    fn missing_root_is_one_problem() {
        let found = discover(Path::new("/nonexistent/functions"), RESERVED);
        assert!(found.functions.is_empty());
        assert!(found.problems[0].message.contains("cannot read the functions folder"));
    }

    #[test]
    fn a_link_out_of_the_folder_is_refused_with_file_and_field() {
        let root = tree(&[(
            "f/manifest.yaml",
            "plugin: plugin.wasm
build: {command: make, output: out.wasm}",
        )]);
        link(&root, "/etc/hostname", "f/plugin.wasm");
        link(&root, "/etc", "f/out.wasm");
        let (manifest, found) = load(&root.path().join("f"), RESERVED);
        assert!(manifest.is_none());
        assert_eq!(
            problems(&root, &found),
            [
                "f/manifest.yaml: build.output: must stay inside the function folder (\"out.wasm\" is a link to /etc)",
                "f/manifest.yaml: plugin: must stay inside the function folder (\"plugin.wasm\" is a link to /etc/hostname)",
            ]
        );
    }

    #[test]
    fn a_link_inside_the_folder_is_fine() {
        let root = tree(&[("f/manifest.yaml", "plugin: plugin.wasm"), ("f/real.wasm", "")]);
        link(&root, "real.wasm", "f/plugin.wasm");
        let (manifest, found) = load(&root.path().join("f"), RESERVED);
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(manifest.unwrap().plugin, root.path().join("f/plugin.wasm"));
    }

    #[test]
    fn a_default_plugin_linking_out_is_refused_like_a_named_one() {
        let root = tree(&[
            ("default/manifest.yaml", ""),
            ("lone/manifest.yaml", ""),
            ("bare/x", ""),
            ("inside/manifest.yaml", ""),
            ("inside/real.bin", ""),
        ]);
        link(&root, "/etc/hostname", "default/plugin.wasm");
        link(&root, "/etc/hostname", "lone/only.wasm");
        link(&root, "/etc/hostname", "bare/only.wasm");
        link(&root, "real.bin", "inside/plugin.wasm");
        let found = discover(root.path(), RESERVED);
        let names: Vec<&str> = found.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["inside"]);
        assert_eq!(
            problems(&root, &found.problems),
            [
                "bare: plugin: must stay inside the function folder (\"only.wasm\" is a link to /etc/hostname)",
                "default/manifest.yaml: plugin: must stay inside the function folder (\"plugin.wasm\" is a link to /etc/hostname)",
                "lone/manifest.yaml: plugin: must stay inside the function folder (\"only.wasm\" is a link to /etc/hostname)",
            ]
        );
    }

    #[test]
    fn a_manifest_linking_out_is_refused_unread() {
        let root = tree(&[("outside.yaml", "timeout: never"), ("f/plugin.wasm", "")]);
        link(&root, "../outside.yaml", "f/manifest.yaml");
        let (manifest, found) = load(&root.path().join("f"), RESERVED);
        assert!(manifest.is_none());
        let target = root.path().canonicalize().unwrap().join("outside.yaml");
        let expected = format!(
            "f/manifest.yaml: must stay inside the function folder (it is a link to {})",
            target.display()
        );
        assert_eq!(problems(&root, &found), [expected], "one problem: the file was not parsed");
    }

    #[test]
    fn a_manifest_linking_inside_is_read() {
        let root = tree(&[("f/real.yaml", "name: linked"), ("f/plugin.wasm", "")]);
        link(&root, "real.yaml", "f/manifest.yaml");
        let (manifest, found) = load(&root.path().join("f"), RESERVED);
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(manifest.unwrap().name, "linked");
    }

    #[test]
    fn a_manifest_over_1_mib_is_refused_unparsed() {
        let padding = format!("# {}\n", "x".repeat(1 << 20));
        let big = format!("timeout: never\n{padding}");
        let exactly = format!("timeout: 5s\n{}", &padding[..(1 << 20) - 12]);
        let root = tree(&[("big/manifest.yaml", &big), ("ok/manifest.yaml", &exactly)]);
        let found = discover(root.path(), RESERVED);
        assert_eq!(found.functions.len(), 1, "exactly 1 MiB is allowed");
        let size = big.len();
        assert_eq!(
            problems(&root, &found.problems),
            [format!(
                "big/manifest.yaml: is {size} bytes; a manifest may have at most 1 MiB (is this the right file?)"
            )]
        );
    }

    #[test]
    fn a_manifest_or_plugin_that_is_not_a_file_is_refused() {
        let root =
            tree(&[("f/manifest.yaml/x", ""), ("g/manifest.yaml", "plugin: p.wasm"), ("g/p.wasm/x", "")]);
        let (manifest, found) = load(&root.path().join("f"), RESERVED);
        assert!(manifest.is_none());
        assert_eq!(problems(&root, &found), ["f/manifest.yaml: cannot read: not a regular file"]);
        let (manifest, found) = load(&root.path().join("g"), RESERVED);
        assert!(found.is_empty(), "{found:?}");
        assert_eq!(read_plugin(&manifest.unwrap()), Err("not a regular file".to_string()));
    }

    #[test]
    fn reading_the_plugin_checks_the_link_again() {
        let root = tree(&[("f/manifest.yaml", ""), ("f/plugin.wasm", "(module)")]);
        let (manifest, _) = load(&root.path().join("f"), RESERVED);
        let manifest = manifest.unwrap();
        assert_eq!(read_plugin(&manifest), Ok(b"(module)".to_vec()));
        std::fs::remove_file(root.path().join("f/plugin.wasm")).unwrap();
        link(&root, "/etc/hostname", "f/plugin.wasm");
        let error = read_plugin(&manifest).unwrap_err();
        assert_eq!(error, "must stay inside the function folder (it is a link to /etc/hostname)");
    }

    #[test]
    fn links_are_checked_even_when_other_fields_fail() {
        let root = tree(&[(
            "f/manifest.yaml",
            "timeout: never
plugin: p.wasm",
        )]);
        link(&root, "/etc/hostname", "f/p.wasm");
        let (_, found) = load(&root.path().join("f"), RESERVED);
        let fields: Vec<&str> = found.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["timeout", "plugin"]);
    }

    #[test]
    fn reserved_names_are_refused_with_file_and_field() {
        let root = tree(&[
            ("a/manifest.yaml", "name: stats"),
            ("reload/manifest.yaml", ""),
            ("stats/plugin.wasm", ""),
            ("z/manifest.yaml", "name: free"),
        ]);
        let found = discover(root.path(), RESERVED);
        let names: Vec<&str> = found.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["free"]);
        assert_eq!(
            problems(&root, &found.problems),
            [
                "a/manifest.yaml: name: \"stats\" is reserved by the HTTP API (/api/functions/stats); choose another",
                "reload/manifest.yaml: name: \"reload\" is reserved by the HTTP API (/api/functions/reload); choose another",
                "stats: folder name \"stats\" is not a valid function name (use a-z, 0-9, _ and -; not stats or reload)",
            ]
        );
    }

    #[test]
    fn the_reserved_names_are_the_callers() {
        let root = tree(&[("stats/manifest.yaml", ""), ("admin/manifest.yaml", "")]);
        let found = discover(root.path(), &["admin"]);
        let names: Vec<&str> = found.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["stats"]);
        assert_eq!(found.problems[0].field, "name");
        assert!(found.problems[0].message.contains("\"admin\" is reserved"), "{:?}", found.problems);
    }

    #[test]
    fn a_reserved_name_is_reported_beside_other_problems() {
        let root = tree(&[("f/manifest.yaml", "name: stats\ntimeout: never")]);
        let (manifest, found) = load(&root.path().join("f"), RESERVED);
        assert!(manifest.is_none());
        let fields: Vec<&str> = found.iter().map(|p| p.field.as_str()).collect();
        assert_eq!(fields, ["timeout", "name"]);
    }

    #[test]
    fn the_plugin_is_as_named_else_the_build_output_else_the_lone_wasm_else_plugin_wasm() {
        let root = tree(&[
            ("named/manifest.yaml", "plugin: p.wat"),
            ("named/other.wasm", ""),
            ("built/manifest.yaml", "build: {command: make, output: out/b.wasm}"),
            ("built/other.wasm", ""),
            ("lone/manifest.yaml", ""),
            ("lone/only.wasm", ""),
            ("two/manifest.yaml", ""),
            ("two/a.wasm", ""),
            ("two/b.wasm", ""),
        ]);
        let found = discover(root.path(), RESERVED);
        assert!(found.problems.is_empty(), "{:?}", found.problems);
        let plugins: Vec<PathBuf> = found
            .functions
            .iter()
            .map(|f| f.plugin.strip_prefix(root.path()).unwrap().to_path_buf())
            .collect();
        let expected = ["built/out/b.wasm", "lone/only.wasm", "named/p.wat", "two/plugin.wasm"];
        assert_eq!(plugins, expected.map(PathBuf::from));
    }
}
