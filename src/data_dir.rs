//! The data folder (`data_dir`): where the event journal and the schedule
//! state live. Created if missing, and locked (an exclusive `flock` on its
//! `lock` file) for as long as the server runs, so a second server pointed
//! at the same folder stops at start instead of corrupting the first's
//! journal. The lock goes with the process, however it ends.

use std::fs::{File, OpenOptions, TryLockError};
use std::io::{Read, Seek, Write};
use std::path::{Path, PathBuf};

use crate::error::Error;

/// The lock file's name in the folder.
pub const LOCK: &str = "lock";

/// An open, locked data folder.
#[derive(Debug)]
pub struct DataDir {
    path: PathBuf,
    /// Held open: closing it releases the lock.
    _lock: File,
}

impl DataDir {
    /// Creates `path` if missing and locks it for this process; refuses a
    /// folder another process holds, naming its pid.
    pub fn open(path: &Path) -> Result<DataDir, Error> {
        let failed = |why: String| Error::DataDir { path: path.to_path_buf(), why };
        std::fs::create_dir_all(path).map_err(|e| failed(format!("cannot create it: {e}")))?;
        let file = path.join(LOCK);
        let mut lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&file)
            .map_err(|e| failed(format!("cannot open {}: {e}", file.display())))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => {
                let mut holder = String::new();
                let _ = lock.read_to_string(&mut holder);
                let holder = holder.trim();
                let by = if holder.is_empty() { String::new() } else { format!(" (pid {holder})") };
                return Err(failed(format!("in use by another alyx{by}; give each server its own data_dir")));
            }
            Err(TryLockError::Error(e)) => {
                return Err(failed(format!("cannot lock {}: {e}", file.display())));
            }
        }
        let _ = lock
            .set_len(0)
            .and_then(|()| lock.rewind())
            .and_then(|()| writeln!(lock, "{}", std::process::id()));
        Ok(DataDir { path: path.to_path_buf(), _lock: lock })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    #[test]
    fn a_folder_is_created_and_held_until_dropped() {
        let root = TempDir::new("data");
        let path = root.path().join("nested/.alyx");
        let first = DataDir::open(&path).unwrap();
        assert!(path.join(LOCK).is_file());
        let refused = DataDir::open(&path).unwrap_err().to_string();
        let pid = std::process::id();
        assert!(refused.contains(&format!("in use by another alyx (pid {pid})")), "{refused}");
        drop(first);
        // Free again once the first is gone; a child another test forks at
        // that moment shares the lock until it execs, so allow a moment.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
        while let Err(error) = DataDir::open(&path) {
            assert!(std::time::Instant::now() < deadline, "still held: {error}");
            std::thread::yield_now();
        }
    }

    #[test]
    fn a_file_where_the_folder_should_be_is_a_clear_error() {
        let root = TempDir::new("data");
        root.write("taken", "x");
        let error = DataDir::open(&root.path().join("taken")).unwrap_err().to_string();
        assert!(error.contains("taken") && error.contains("cannot create it"), "{error}");
    }
}
