//! The journal: a durable keyed store of opaque records (id → payload) in
//! one append-only file, for work that must survive a crash or `kill -9`
//! (async event delivery keeps a record per delivery here). It knows nothing
//! about what it stores.
//!
//! [`Journal::put`] and [`Journal::remove`] return only once their record
//! is written and fsynced; concurrent callers share one fsync (group
//! commit on one writer thread, [`writer`]). Each record carries its length
//! and a CRC-32 ([`record`] has the format). [`open`] replays the file: a
//! torn or corrupt tail (power loss mid-write) is reported in
//! [`Recovered::problems`], copied aside and cut off, never a panic or a
//! refusal to start ([`recover`]). Compaction rewrites the live entries
//! once the file passes [`Options::compact_after_bytes`] and more than
//! twice the live bytes, so the file stays within max(compact_after_bytes,
//! 2 × live bytes) plus one batch.
//!
//! Costs: the live records are held in memory (about their size on disk),
//! so this is for sets bounded by their owner (the event queue). One
//! process per journal file: nothing locks it against a second one.

mod crc32;
mod error;
mod live;
mod record;
mod recover;
mod writer;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, SyncSender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

pub use error::JournalError;
pub use record::{MAX_BODY, MAX_ID};

use crate::sync::lock;
use record::{Op, Record};
use writer::{Message, Store};

/// Calls waiting for the writer at most; more callers block until it
/// catches up.
const QUEUE: usize = 1024;

/// How a journal behaves; [`Options::default`] is what the server uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Options {
    /// The file is compacted once it passes this many bytes and holds more
    /// than twice the live bytes. Default 1 MiB.
    pub compact_after_bytes: u64,
    /// fsync each batch (and the folder after creating or renaming files).
    /// Default on; off only for tests and measurements, where a record is
    /// then safe from a crash of the process but not of the machine.
    pub sync: bool,
}

impl Default for Options {
    fn default() -> Options {
        Options { compact_after_bytes: 1 << 20, sync: true }
    }
}

/// What [`open`] found in the file.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Recovered {
    /// The live entries, in the order their ids were first put, each with
    /// its latest payload.
    pub entries: Vec<(String, Vec<u8>)>,
    /// Damage found and dealt with, one line each, for the owner to report
    /// (a torn tail at byte N, M bytes skipped, where the copy is kept).
    pub problems: Vec<String>,
}

/// Figures for metrics and tests, as of the last batch.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Stats {
    /// Live entries.
    pub live: usize,
    /// Bytes the live entries take in the file.
    pub live_bytes: u64,
    /// Bytes of the file.
    pub file_bytes: u64,
    /// Batches written (each with one fsync when `sync` is on).
    pub commits: u64,
    pub compactions: u64,
}

/// A handle on an open journal: cheap to clone, shared by many threads.
/// [`Journal::close`] stops it; so does dropping the last handle.
#[derive(Debug, Clone)]
pub struct Journal {
    shared: Arc<Shared>,
}

#[derive(Debug)]
struct Shared {
    tx: SyncSender<Message>,
    stats: Arc<Mutex<Stats>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

/// Opens the journal `name` (a file name) in `dir`, creating both if
/// missing, and starts its writer thread. Returns the live entries and what
/// recovery found. Fails only on I/O errors (an unusable folder, a full
/// disk), never on damaged contents.
pub fn open(dir: &Path, name: &str, options: Options) -> Result<(Journal, Recovered), JournalError> {
    let paths = Paths::new(dir, name);
    let opened = recover::open(&paths, options.sync)?;
    let recovered = Recovered { entries: opened.live.entries(), problems: opened.problems.clone() };
    let store = Store::new(paths.clone(), options, opened);
    let stats = Arc::new(Mutex::new(store.stats()));
    let (tx, rx) = mpsc::sync_channel(QUEUE);
    let thread = std::thread::Builder::new()
        .name("journal".into())
        .spawn({
            let stats = Arc::clone(&stats);
            move || writer::run(&rx, store, &stats)
        })
        .map_err(JournalError::io("start the writer thread of", &paths.file))?;
    let shared = Shared { tx, stats, thread: Mutex::new(Some(thread)) };
    Ok((Journal { shared: Arc::new(shared) }, recovered))
}

impl Journal {
    /// Writes `id → payload` (new, or replacing the payload in place) and
    /// returns once it is on disk.
    pub fn put(&self, id: &str, payload: &[u8]) -> Result<(), JournalError> {
        self.write(vec![Record::encode(Op::Put, id, payload)?])
    }

    /// Like [`Journal::put`] for many entries, in one batch and one sync.
    /// Nothing is written if one of them is refused.
    pub fn put_all(&self, entries: &[(&str, &[u8])]) -> Result<(), JournalError> {
        let records = entries.iter().map(|(id, payload)| Record::encode(Op::Put, id, payload));
        self.write(records.collect::<Result<_, _>>()?)
    }

    /// Removes `id` (nothing happens if it is not live) and returns once
    /// that is on disk.
    pub fn remove(&self, id: &str) -> Result<(), JournalError> {
        self.write(vec![Record::encode(Op::Remove, id, b"")?])
    }

    /// Like [`Journal::remove`] for many ids, in one batch and one sync.
    pub fn remove_all(&self, ids: &[&str]) -> Result<(), JournalError> {
        let records = ids.iter().map(|id| Record::encode(Op::Remove, id, b""));
        self.write(records.collect::<Result<_, _>>()?)
    }

    /// Removes `id` without waiting for the disk: it goes with the next
    /// batch. For what may be done again if the removal is lost to a crash
    /// (a finished at-least-once delivery); waits only when the writer's
    /// queue is full.
    pub fn forget(&self, id: &str) -> Result<(), JournalError> {
        let (reply, _unheard) = mpsc::sync_channel(1);
        let message = Message::Write { records: vec![Record::encode(Op::Remove, id, b"")?], reply };
        self.shared.tx.send(message).map_err(|_| JournalError::Closed)
    }

    /// Hands the records to the writer thread and waits for its answer.
    fn write(&self, records: Vec<Record>) -> Result<(), JournalError> {
        let (reply, answer) = mpsc::sync_channel(1);
        let message = Message::Write { records, reply };
        self.shared.tx.send(message).map_err(|_| JournalError::Closed)?;
        answer.recv().unwrap_or(Err(JournalError::Closed))
    }

    pub fn stats(&self) -> Stats {
        *lock(&self.shared.stats)
    }

    /// Writes what is queued, stops the writer thread and joins it. Calls
    /// after it, on any handle, fail with [`JournalError::Closed`]. Calling
    /// it again does nothing.
    pub fn close(&self) {
        self.shared.stop();
    }
}

impl Shared {
    fn stop(&self) {
        // Held while joining, so that every `close` returns after the
        // thread is gone; only `stop` takes this lock.
        let mut thread = lock(&self.thread);
        if let Some(thread) = thread.take() {
            let _ = self.tx.send(Message::Stop);
            let _ = thread.join();
        }
    }
}

impl Drop for Shared {
    fn drop(&mut self) {
        self.stop();
    }
}

/// The files of one journal.
#[derive(Debug, Clone)]
struct Paths {
    dir: PathBuf,
    /// The journal's file name.
    name: String,
    file: PathBuf,
    /// Where compaction writes the new file before renaming it.
    tmp: PathBuf,
}

impl Paths {
    fn new(dir: &Path, name: &str) -> Paths {
        Paths {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            file: dir.join(name),
            tmp: dir.join(format!("{name}.tmp")),
        }
    }
}

/// Makes the folder's entries (a created or renamed file) durable.
fn sync_folder(dir: &Path) -> Result<(), JournalError> {
    File::open(dir).and_then(|folder| folder.sync_all()).map_err(JournalError::io("sync the folder", dir))
}

#[cfg(test)]
mod tests;
