//! The history file's writer: one named thread (`history`) that reads
//! records from a bounded channel, turns them into JSON lines and writes
//! them in batches (whatever arrived while it was writing, up to
//! [`BATCH`] bytes), so invocations never wait for the disk. When the
//! channel is full the record is dropped and counted by the sender
//! ([`super::History::record`]). [`Writer`] owns the thread: dropping it
//! sends `Stop` after what is queued, and joins.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::sync::mpsc::{self, Receiver, SyncSender, TryRecvError};
use std::thread::JoinHandle;

use super::file::JsonLines;
use super::{Counters, FileSettings, Record};
use crate::error::Error;

/// Records waiting for the writer at most; more are dropped and counted.
const QUEUE: usize = 4096;
/// Bytes of lines gathered before they are written, at most.
const BATCH: usize = 64 << 10;

#[derive(Debug)]
pub(super) enum Message {
    Record(Arc<Record>),
    Stop,
}

/// The running writer thread; stops and joins it when dropped.
#[derive(Debug)]
pub struct Writer {
    tx: SyncSender<Message>,
    thread: Option<JoinHandle<()>>,
}

impl Writer {
    /// Starts the thread; the sender is for the history to record with.
    pub(super) fn start(
        file: FileSettings,
        counters: Arc<Counters>,
    ) -> Result<(Writer, SyncSender<Message>), Error> {
        let (tx, rx) = mpsc::sync_channel(QUEUE);
        let file = JsonLines::new(file);
        let thread = std::thread::Builder::new()
            .name("history".into())
            .spawn(move || run(&rx, file, &counters))
            .map_err(Error::thread("history"))?;
        Ok((Writer { tx: tx.clone(), thread: Some(thread) }, tx))
    }

    /// Writes what was recorded so far, then stops the thread and joins it.
    pub fn stop(self) {
        drop(self);
    }
}

/// Waits for a record when nothing is pending; otherwise takes what is
/// queued without waiting and writes the batch once the queue is empty or
/// the batch full.
fn run(rx: &Receiver<Message>, mut file: JsonLines, counters: &Counters) {
    file.open_early();
    let lost = |n: u64| counters.write_failures.fetch_add(n, Ordering::Relaxed);
    loop {
        let next = match file.pending_bytes() {
            0 => rx.recv().ok(),
            n if n >= BATCH => {
                lost(file.flush());
                continue;
            }
            _ => match rx.try_recv() {
                Ok(message) => Some(message),
                Err(TryRecvError::Empty) => {
                    lost(file.flush());
                    continue;
                }
                Err(TryRecvError::Disconnected) => None,
            },
        };
        match next {
            Some(Message::Record(record)) => match serde_json::to_vec(&*record) {
                Ok(mut line) => {
                    line.push(b'\n');
                    lost(file.push(&line));
                }
                Err(_) => {
                    lost(1);
                }
            },
            Some(Message::Stop) | None => {
                lost(file.flush());
                return;
            }
        }
    }
}

impl Drop for Writer {
    fn drop(&mut self) {
        let _ = self.tx.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::tests::record;
    use super::super::{History, Outcome};
    use super::*;
    use crate::invoke::Trigger;
    use crate::testutil::TempDir;

    #[test]
    fn records_reach_the_file_before_stop_returns_and_later_ones_are_counted() {
        let dir = TempDir::new("history-writer");
        let path = dir.path().join("h.jsonl");
        let settings = FileSettings { path: path.clone(), max_bytes: 1 << 20 };
        let (history, writer) = History::with_file(10, settings).unwrap();
        for id in ["a", "b", "c"] {
            history.record(record(id, "f", Trigger::Http, Outcome::Ok));
        }
        writer.stop();
        let text = std::fs::read_to_string(&path).unwrap();
        let ids: Vec<String> = text
            .lines()
            .map(|l| serde_json::from_str::<serde_json::Value>(l).unwrap()["id"].as_str().unwrap().into())
            .collect();
        assert_eq!(ids, ["a", "b", "c"]);
        assert_eq!((history.dropped(), history.write_failures()), (0, 0));
        history.record(record("d", "f", Trigger::Http, Outcome::Ok));
        assert_eq!(history.dropped(), 1, "the writer is gone: counted, not blocking");
        assert_eq!(history.get("d").map(|r| r.id.clone()), Some("d".into()), "still in memory");
    }

    #[test]
    fn an_unwritable_file_counts_failures_and_never_blocks_recording() {
        let dir = TempDir::new("history-writer");
        dir.write("file", "x");
        let settings = FileSettings { path: dir.path().join("file/h.jsonl"), max_bytes: 1 << 20 };
        let (history, writer) = History::with_file(10, settings).unwrap();
        for id in ["a", "b"] {
            history.record(record(id, "f", Trigger::Http, Outcome::Error));
        }
        writer.stop();
        assert_eq!((history.dropped(), history.write_failures()), (0, 2));
        assert_eq!(history.list(&super::super::Query::all(10)).records.len(), 2);
    }
}
