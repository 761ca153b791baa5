//! Which files a build wrote inside its own watch globs, so that their
//! change events do not start another build (no build loops, even with
//! `watch: ["**"]`). A build's writes are found by comparing fingerprints
//! (modification time and length) of the matching files before and after
//! it, plus temporaries: paths that had events during the build but exist
//! neither before nor after it. Events on such a file are ignored while the
//! function builds again, and afterwards as long as the file still has the
//! fingerprint the build left.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::SystemTime;

/// Modification time and length of a file; `None` when it does not exist.
pub type Fingerprint = Option<(SystemTime, u64)>;

/// The matching files of a function folder and their fingerprints.
pub type Snapshot = HashMap<PathBuf, Fingerprint>;

pub fn fingerprint(path: &Path) -> Fingerprint {
    let meta = std::fs::metadata(path).ok()?;
    Some((meta.modified().ok()?, meta.len()))
}

/// Fingerprints every file below `dir` whose relative path matches a glob.
pub fn snapshot(dir: &Path, globs: &[glob::Pattern]) -> Snapshot {
    let mut out = Snapshot::new();
    let mut pending = vec![dir.to_path_buf()];
    while let Some(folder) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&folder) else { continue };
        for entry in entries.filter_map(Result::ok) {
            let path = entry.path();
            match entry.file_type() {
                Ok(t) if t.is_dir() => pending.push(path),
                Ok(t) if t.is_file() => {
                    let relative = path.strip_prefix(dir).unwrap_or(&path);
                    if globs.iter().any(|g| g.matches_path(relative)) {
                        out.insert(path.clone(), fingerprint(&path));
                    }
                }
                _ => {}
            }
        }
    }
    out
}

#[derive(Debug, Default)]
struct Folder {
    building: bool,
    /// Files the last build changed, with the fingerprint it left.
    written: HashMap<PathBuf, Fingerprint>,
    /// Paths with events during the running build.
    seen: std::collections::HashSet<PathBuf>,
}

/// Build-written files per function folder.
#[derive(Debug, Default)]
pub struct Generated {
    folders: Mutex<HashMap<PathBuf, Folder>>,
}

impl Generated {
    pub fn started(&self, dir: &Path) {
        self.lock().entry(dir.to_path_buf()).or_default().building = true;
    }

    /// Records what the build changed between the two snapshots.
    pub fn finished(&self, dir: &Path, before: &Snapshot, after: &Snapshot) {
        let mut written: HashMap<PathBuf, Fingerprint> = after
            .iter()
            .filter(|(p, fp)| before.get(*p) != Some(*fp))
            .map(|(p, fp)| (p.clone(), *fp))
            .collect();
        written.extend(before.keys().filter(|p| !after.contains_key(*p)).map(|p| (p.clone(), None)));
        let mut folders = self.lock();
        let folder = folders.entry(dir.to_path_buf()).or_default();
        let temporaries = folder.seen.drain().filter(|p| !before.contains_key(p) && !after.contains_key(p));
        written.extend(temporaries.map(|p| (p, None)).collect::<Vec<_>>());
        folder.building = false;
        folder.written = written;
    }

    /// True when an event on `path` is the build's own doing. Events seen
    /// during a build are remembered (to find its temporaries).
    pub fn is_generated(&self, dir: &Path, path: &Path) -> bool {
        let mut folders = self.lock();
        let Some(folder) = folders.get_mut(dir) else { return false };
        if folder.building {
            folder.seen.insert(path.to_path_buf());
        }
        let Some(left) = folder.written.get(path) else { return false };
        folder.building || fingerprint(path) == *left
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PathBuf, Folder>> {
        crate::sync::lock(&self.folders)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    /// A scratch function folder with an empty `src`, removed on drop.
    fn folder(name: &str) -> TempDir {
        let dir = TempDir::new(&format!("generated-{name}"));
        std::fs::create_dir_all(dir.path().join("src")).unwrap();
        dir
    }

    #[test]
    fn files_a_build_wrote_are_recognised_until_edited() {
        let scratch = folder("written");
        let dir = scratch.path();
        let all = [glob::Pattern::new("**").unwrap()];
        std::fs::write(dir.join("src/main.c"), "int main;").unwrap();
        let generated = Generated::default();
        let before = snapshot(dir, &all);
        generated.started(dir);
        std::fs::write(dir.join("build.log"), "built").unwrap();
        generated.finished(dir, &before, &snapshot(dir, &all));
        assert!(generated.is_generated(dir, &dir.join("build.log")));
        assert!(!generated.is_generated(dir, &dir.join("src/main.c")), "sources the build only read");
        std::fs::write(dir.join("build.log"), "edited by hand, longer").unwrap();
        assert!(!generated.is_generated(dir, &dir.join("build.log")), "a later edit counts");
    }

    #[test]
    fn while_building_the_last_builds_outputs_are_ignored() {
        let scratch = folder("building");
        let dir = scratch.path();
        let all = [glob::Pattern::new("**").unwrap()];
        let generated = Generated::default();
        let before = snapshot(dir, &all);
        std::fs::write(dir.join("out.o"), "1").unwrap();
        generated.finished(dir, &before, &snapshot(dir, &all));
        generated.started(dir);
        std::fs::write(dir.join("out.o"), "22").unwrap();
        assert!(generated.is_generated(dir, &dir.join("out.o")));
    }

    #[test]
    fn temporaries_of_a_build_are_recognised() {
        let scratch = folder("temporaries");
        let dir = scratch.path();
        let all = [glob::Pattern::new("**").unwrap()];
        let generated = Generated::default();
        let before = snapshot(dir, &all);
        generated.started(dir);
        let temp = dir.join("plugin.tmp");
        assert!(!generated.is_generated(dir, &temp), "unknown the first time");
        generated.finished(dir, &before, &snapshot(dir, &all));
        assert!(generated.is_generated(dir, &temp), "known afterwards");
    }

    #[test]
    fn snapshots_follow_the_globs() {
        let scratch = folder("globs");
        let dir = scratch.path();
        std::fs::write(dir.join("src/a.c"), "a").unwrap();
        std::fs::write(dir.join("notes.txt"), "n").unwrap();
        let shot = snapshot(dir, &[glob::Pattern::new("src/**/*.c").unwrap()]);
        assert_eq!(shot.keys().collect::<Vec<_>>(), [&dir.join("src/a.c")]);
    }
}
