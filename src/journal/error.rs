//! The journal's one error type. A failed write or sync reaches every caller
//! of its batch, so the error is `Clone` (the `io::Error` is shared).

use std::fmt;
use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use super::record::{MAX_BODY, MAX_ID};

#[derive(Debug, Clone)]
pub enum JournalError {
    /// A file operation failed. `op` is the verb of the message ("write
    /// to", "sync", "create the folder"...); `path` the file or folder.
    Io { op: &'static str, path: PathBuf, source: Arc<io::Error> },
    /// An id longer than [`MAX_ID`] bytes.
    IdTooLong { bytes: usize },
    /// A record whose id and payload together pass [`MAX_BODY`] bytes.
    TooLarge { bytes: u64 },
    /// The journal was closed; nothing was written.
    Closed,
}

impl JournalError {
    /// For `map_err`: an `Io` error of `op` on `path`.
    pub(super) fn io<'a>(op: &'static str, path: &'a Path) -> impl FnOnce(io::Error) -> JournalError + 'a {
        move |source| JournalError::Io { op, path: path.to_path_buf(), source: Arc::new(source) }
    }
}

impl fmt::Display for JournalError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JournalError::Io { op, path, source } => {
                write!(f, "journal: cannot {op} {}: {source}", path.display())
            }
            JournalError::IdTooLong { bytes } => {
                write!(f, "journal: an id has {bytes} bytes; at most {MAX_ID} are allowed")
            }
            JournalError::TooLarge { bytes } => {
                write!(f, "journal: a record of {bytes} bytes; at most {MAX_BODY} are allowed")
            }
            JournalError::Closed => write!(f, "journal: closed"),
        }
    }
}

impl std::error::Error for JournalError {
    fn source(&self) -> Option<&(dyn std::error::Error + 'static)> {
        match self {
            JournalError::Io { source, .. } => Some(&**source),
            _ => None,
        }
    }
}
