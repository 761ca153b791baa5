//! Discovery: finds the functions in a folder. Each subfolder with a
//! `manifest.yaml` (or, without one, exactly one `.wasm` file) is a function.
//! Partial failure is data: the good manifests and every problem come back
//! together, so one bad manifest never stops the others.

use std::path::{Path, PathBuf};

use crate::manifest::{self, Manifest, Problem, Severity};

/// What a functions folder holds.
#[derive(Debug, Default)]
pub struct Discovered {
    pub functions: Vec<Manifest>,
    /// Errors (the function is left out) and warnings (it is kept).
    pub problems: Vec<Problem>,
}

impl Discovered {
    pub fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }
}

/// Discovers every function below `root`, in folder-name order.
pub fn discover(root: &Path) -> Discovered {
    let mut found = Discovered::default();
    let dirs = match function_dirs(root) {
        Ok(dirs) => dirs,
        Err(message) => {
            found.problems.push(problem(root, message, Severity::Error));
            return found;
        }
    };
    for dir in dirs {
        let (manifest, problems) = load(&dir);
        found.problems.extend(problems);
        if let Some(m) = manifest {
            add(&mut found, m);
        }
    }
    found
}

/// Loads the function in one folder (manifest or lone plugin).
pub fn load(dir: &Path) -> (Option<Manifest>, Vec<Problem>) {
    let file = dir.join(manifest::FILE_NAME);
    match std::fs::read_to_string(&file) {
        Ok(text) => manifest::parse(dir, &file, &text),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => without_manifest(dir),
        Err(e) => (None, vec![problem(&file, format!("cannot read: {e}"), Severity::Error)]),
    }
}

fn without_manifest(dir: &Path) -> (Option<Manifest>, Vec<Problem>) {
    let name = dir.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
    let Some(plugin) = manifest::single_wasm(dir) else {
        let message = "no manifest.yaml and not exactly one .wasm file; the folder is ignored";
        return (None, vec![problem(dir, message.into(), Severity::Warning)]);
    };
    if !manifest::valid_name(&name) || manifest::RESERVED.contains(&name.as_str()) {
        let message = format!(
            "folder name {name:?} is not a valid function name (use a-z, 0-9, _ and -; not stats or reload)"
        );
        return (None, vec![problem(dir, message, Severity::Error)]);
    }
    (Some(manifest::defaults(dir, &name, plugin)), Vec::new())
}

fn add(found: &mut Discovered, m: Manifest) {
    if let Some(first) = found.functions.iter().find(|f| f.name == m.name) {
        let message =
            format!("name {:?} is already used by {}; this one is ignored", m.name, first.dir.display());
        found.problems.push(Problem {
            file: m.dir.join(manifest::FILE_NAME),
            field: "name".into(),
            message,
            severity: Severity::Error,
        });
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

fn problem(path: &Path, message: String, severity: Severity) -> Problem {
    Problem { file: path.to_path_buf(), field: String::new(), message, severity }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn tree(name: &str, files: &[(&str, &str)]) -> PathBuf {
        let root = std::env::temp_dir().join(format!("alyx-discovery-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (path, text) in files {
            let path = root.join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        root
    }

    #[test]
    fn bad_manifests_do_not_stop_good_ones() {
        let root = tree(
            "mixed",
            &[
                ("a/manifest.yaml", "name: a"),
                ("b/manifest.yaml", "timeout: never"),
                ("c/plugin.wasm", ""),
                ("d/readme.txt", "nothing here"),
                (".hidden/manifest.yaml", "name: hidden"),
            ],
        );
        let found = discover(&root);
        let names: Vec<&str> = found.functions.iter().map(|f| f.name.as_str()).collect();
        assert_eq!(names, ["a", "c"]);
        assert!(found.has_errors());
        assert_eq!(found.problems.len(), 2, "{:?}", found.problems);
        assert!(found.problems[0].to_string().contains("b/manifest.yaml: timeout:"));
        assert_eq!(found.problems[1].severity, Severity::Warning);
    }

    #[test]
    fn duplicate_names_keep_the_first() {
        let root = tree("dupes", &[("one/manifest.yaml", "name: same"), ("two/manifest.yaml", "name: same")]);
        let found = discover(&root);
        assert_eq!(found.functions.len(), 1);
        assert!(found.functions[0].dir.ends_with("one"));
        assert!(found.problems[0].message.contains("already used"));
    }

    #[test]
    fn missing_root_is_one_problem() {
        let found = discover(Path::new("/nonexistent/functions"));
        assert!(found.functions.is_empty());
        assert!(found.problems[0].message.contains("cannot read the functions folder"));
    }
}
