//! The writer thread (`journal`) and the file it alone writes.
//!
//! Callers send their encoded records with a reply channel and wait. The
//! thread takes everything queued (up to [`BATCH_BYTES`]), appends it in one
//! write, syncs once, applies it to the live map and answers every caller
//! of the batch with the same result: group commit, so many callers share
//! one fsync and none hears "ok" before its record is synced. A batch that
//! fails is cut back off the file before the next one is written, so the
//! file holds whole records only.
//!
//! Between batches the thread compacts: when the file passes
//! `compact_after_bytes` and holds more than twice the live bytes, the live
//! records go to `<name>.tmp`, which is synced and renamed over the journal,
//! and the folder is synced. The callers of the next batch wait for it (a
//! rewrite of the live bytes and two syncs). A failed compaction is logged
//! and changes nothing; it is tried again once the file has grown by
//! another `compact_after_bytes`. If only the folder's sync failed, the
//! next batch tries it again first and fails if it still fails: no caller
//! hears "ok" for a record in a file whose name may not survive a crash.

use std::fs::{self, File, OpenOptions};
use std::io::{BufWriter, Write};
use std::sync::Mutex;
use std::sync::mpsc::{Receiver, SyncSender};

use super::error::JournalError;
use super::live::Live;
use super::record::{HEADER_LEN, Record, header};
use super::recover::Opened;
use super::{Options, Paths, Stats, sync_folder};
use crate::sync::lock;

/// Bytes of records gathered into one batch at most (a larger single
/// message is written whole).
const BATCH_BYTES: usize = 1 << 20;

#[derive(Debug)]
pub enum Message {
    Write { records: Vec<Record>, reply: SyncSender<Result<(), JournalError>> },
    Stop,
}

/// The thread's loop: a batch, its answers, then compaction if due; until
/// `Stop` (after writing what came before it) or every sender is gone.
pub fn run(rx: &Receiver<Message>, mut store: Store, stats: &Mutex<Stats>) {
    store.compact_if_due();
    *lock(stats) = store.stats();
    while let Ok(first) = rx.recv() {
        let batch = gather(first, rx);
        let result = store.commit(batch.records);
        *lock(stats) = store.stats();
        for reply in batch.replies {
            let _ = reply.send(result.clone());
        }
        if batch.stop {
            return;
        }
        store.compact_if_due();
        *lock(stats) = store.stats();
    }
}

#[derive(Default)]
struct Batch {
    records: Vec<Record>,
    replies: Vec<SyncSender<Result<(), JournalError>>>,
    bytes: usize,
    stop: bool,
}

/// `first` and whatever is queued behind it, up to [`BATCH_BYTES`] or `Stop`.
fn gather(first: Message, rx: &Receiver<Message>) -> Batch {
    let mut batch = Batch::default();
    let mut next = Some(first);
    while let Some(message) = next {
        match message {
            Message::Write { records, reply } => {
                batch.bytes += records.iter().map(|r| r.bytes.len()).sum::<usize>();
                batch.records.extend(records);
                batch.replies.push(reply);
            }
            Message::Stop => {
                batch.stop = true;
                break;
            }
        }
        next = if batch.bytes < BATCH_BYTES { rx.try_recv().ok() } else { None };
    }
    batch
}

/// The journal file and the live map, as the writer thread keeps them.
#[derive(Debug)]
pub struct Store {
    paths: Paths,
    options: Options,
    file: File,
    /// Bytes of good data; the file may hold more after a failed write.
    len: u64,
    /// A write or sync failed: cut the file back to `len` before the next.
    dirty: bool,
    /// A compaction's rename is not known to be synced yet.
    folder_unsynced: bool,
    live: Live,
    commits: u64,
    compactions: u64,
    /// No compaction is tried below this length (after a failed one).
    compact_again_at: u64,
    /// The batch's bytes, reused.
    buffer: Vec<u8>,
}

impl Store {
    pub fn new(paths: Paths, options: Options, opened: Opened) -> Store {
        Store {
            paths,
            options,
            file: opened.file,
            len: opened.len,
            dirty: false,
            folder_unsynced: false,
            live: opened.live,
            commits: 0,
            compactions: 0,
            compact_again_at: 0,
            buffer: Vec::new(),
        }
    }

    pub fn stats(&self) -> Stats {
        Stats {
            live: self.live.len(),
            live_bytes: self.live.bytes(),
            file_bytes: self.len,
            commits: self.commits,
            compactions: self.compactions,
        }
    }

    /// Appends `records` and syncs, then applies them to the live map; on
    /// failure the live map is unchanged.
    fn commit(&mut self, records: Vec<Record>) -> Result<(), JournalError> {
        if records.is_empty() {
            return Ok(());
        }
        self.repair()?;
        self.buffer.clear();
        for record in &records {
            self.buffer.extend_from_slice(&record.bytes);
        }
        self.append()?;
        self.len += self.buffer.len() as u64;
        self.commits += 1;
        records.into_iter().for_each(|record| self.live.apply(record));
        Ok(())
    }

    /// Writes and syncs the buffer; `dirty` until both succeeded.
    fn append(&mut self) -> Result<(), JournalError> {
        self.dirty = true;
        (&self.file).write_all(&self.buffer).map_err(JournalError::io("write to", &self.paths.file))?;
        if self.options.sync {
            self.file.sync_data().map_err(JournalError::io("sync", &self.paths.file))?;
        }
        self.dirty = false;
        Ok(())
    }

    /// Undoes what a failed batch or compaction left: bytes past `len`, an
    /// unsynced rename. Until this succeeds, no batch is written.
    fn repair(&mut self) -> Result<(), JournalError> {
        if self.dirty {
            self.file.set_len(self.len).map_err(JournalError::io("truncate", &self.paths.file))?;
            self.dirty = false;
        }
        if self.folder_unsynced {
            self.sync_folder()?;
        }
        Ok(())
    }

    fn sync_folder(&mut self) -> Result<(), JournalError> {
        if self.options.sync {
            sync_folder(&self.paths.dir)?;
        }
        self.folder_unsynced = false;
        Ok(())
    }

    fn compact_if_due(&mut self) {
        let live = HEADER_LEN + self.live.bytes();
        let due = self.len > self.options.compact_after_bytes && self.len > 2 * live;
        if !due || self.len < self.compact_again_at {
            return;
        }
        match self.compact() {
            Ok(()) => self.compactions += 1,
            Err(e) => {
                log::warn!("{e}; the journal stays as it is and compacts later");
                self.compact_again_at = self.len + self.options.compact_after_bytes;
            }
        }
    }

    /// Writes the live records to the temporary file, syncs it and renames
    /// it over the journal, then appends to it.
    fn compact(&mut self) -> Result<(), JournalError> {
        let (file, len) = self.write_tmp().inspect_err(|_| {
            let _ = fs::remove_file(&self.paths.tmp);
        })?;
        if let Err(e) = fs::rename(&self.paths.tmp, &self.paths.file) {
            let _ = fs::remove_file(&self.paths.tmp);
            return Err(JournalError::io("rename", &self.paths.tmp)(e));
        }
        (self.file, self.len, self.dirty) = (file, len, false);
        self.folder_unsynced = true;
        if let Err(e) = self.sync_folder() {
            log::warn!("{e}; trying again before the next write");
        }
        Ok(())
    }

    fn write_tmp(&self) -> Result<(File, u64), JournalError> {
        let tmp = &self.paths.tmp;
        let _ = fs::remove_file(tmp);
        let file = OpenOptions::new()
            .read(true)
            .append(true)
            .create_new(true)
            .open(tmp)
            .map_err(JournalError::io("create", tmp))?;
        let mut out = BufWriter::with_capacity(1 << 16, &file);
        out.write_all(&header()).map_err(JournalError::io("write to", tmp))?;
        for record in self.live.records() {
            out.write_all(record).map_err(JournalError::io("write to", tmp))?;
        }
        out.flush().map_err(JournalError::io("write to", tmp))?;
        drop(out);
        if self.options.sync {
            file.sync_all().map_err(JournalError::io("sync", tmp))?;
        }
        Ok((file, HEADER_LEN + self.live.bytes()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::record::Op;
    use crate::testutil::TempDir;

    fn put(id: &str) -> Record {
        Record::encode(Op::Put, id, b"payload").unwrap()
    }

    /// A store on `file.journal` in `dir`, whose file handle is `file`.
    fn store(dir: &TempDir, file: File) -> Store {
        let paths = Paths::new(dir.path(), "file.journal");
        let opened = Opened { file, len: HEADER_LEN, live: Live::default(), problems: Vec::new() };
        Store::new(paths, Options::default(), opened)
    }

    #[test]
    fn a_failed_write_fails_its_batch_and_changes_nothing() {
        let dir = TempDir::new("journal-writer");
        let path = dir.write("file.journal", header());
        let mut store = store(&dir, File::open(&path).unwrap());
        let failed = store.commit(vec![put("a"), put("b")]);
        assert!(matches!(&failed, Err(JournalError::Io { op: "write to", .. })), "{failed:?}");
        assert_eq!(store.stats(), Stats { file_bytes: HEADER_LEN, ..Stats::default() });
        assert!(store.dirty, "the next batch first cuts the file back");
    }

    #[test]
    fn a_batch_after_a_failed_one_cuts_the_file_back_first() {
        let dir = TempDir::new("journal-writer");
        let path = dir.write("file.journal", header());
        let mut store = store(&dir, OpenOptions::new().append(true).open(&path).unwrap());
        (&store.file).write_all(b"half a record").unwrap();
        store.dirty = true;
        store.commit(vec![put("a")]).unwrap();
        let expected = [&header()[..], &put("a").bytes].concat();
        assert_eq!(fs::read(&path).unwrap(), expected);
        assert_eq!(store.stats().file_bytes, expected.len() as u64);
    }

    #[test]
    fn one_batch_takes_everything_queued_up_to_stop() {
        let (tx, rx) = std::sync::mpsc::sync_channel(8);
        let (reply, _answers) = std::sync::mpsc::sync_channel(8);
        for id in ["a", "b"] {
            tx.send(Message::Write { records: vec![put(id)], reply: reply.clone() }).unwrap();
        }
        tx.send(Message::Stop).unwrap();
        tx.send(Message::Write { records: vec![put("c")], reply }).unwrap();
        let batch = gather(rx.recv().unwrap(), &rx);
        let ids: Vec<&str> = batch.records.iter().map(|r| r.id.as_str()).collect();
        assert_eq!((ids, batch.replies.len(), batch.stop), (vec!["a", "b"], 2, true));
    }
}
