//! The journal through its API: round trips across reopening, order,
//! group commit, compaction's bound, refused ids, closing. Damage on
//! opening is tested in `recover`.

use std::time::{Duration, Instant};

use super::*;
use crate::testutil::TempDir;

pub const NAME: &str = "test.journal";

/// Options for tests that write much: no fsync.
pub const UNSYNCED: Options = Options { compact_after_bytes: 1 << 20, sync: false };

/// Opens `NAME` in `dir`, asserting it opens.
#[track_caller]
pub fn open_in(dir: &TempDir, options: Options) -> (Journal, Recovered) {
    open(dir.path(), NAME, options).unwrap_or_else(|e| panic!("opening: {e}"))
}

/// Opens, closes, and returns what opening found.
#[track_caller]
pub fn reopen(dir: &TempDir) -> Recovered {
    let (journal, recovered) = open_in(dir, Options::default());
    journal.close();
    recovered
}

/// `pairs` as recovered entries.
pub fn entries(pairs: &[(&str, &str)]) -> Vec<(String, Vec<u8>)> {
    pairs.iter().map(|(id, payload)| (id.to_string(), payload.as_bytes().to_vec())).collect()
}

#[track_caller]
fn assert_entries(recovered: &Recovered, expected: &[(&str, &str)]) {
    assert_eq!(recovered.entries, entries(expected));
    assert_eq!(recovered.problems, Vec::<String>::new());
}

#[test]
fn a_new_journal_opens_empty_and_creates_its_folder() {
    let dir = TempDir::new("journal");
    let nested = dir.path().join("data/dir");
    let (journal, recovered) = open(&nested, NAME, Options::default()).unwrap();
    assert_eq!(recovered, Recovered::default());
    assert_eq!(journal.stats(), Stats { file_bytes: 12, ..Stats::default() });
    journal.close();
    assert_eq!(std::fs::read(nested.join(NAME)).unwrap(), b"ALYXJRNL\x01\x00\x00\x00");
}

#[test]
fn put_replace_and_remove_survive_a_reopen() {
    let dir = TempDir::new("journal");
    let (journal, _) = open_in(&dir, Options::default());
    journal.put("a", b"first").unwrap();
    journal.put("b", b"").unwrap();
    journal.put("c", b"gone").unwrap();
    journal.put("a", b"second").unwrap();
    journal.remove("c").unwrap();
    journal.remove("never put").unwrap();
    assert_eq!((journal.stats().live, journal.stats().commits), (2, 6));
    journal.close();
    assert_entries(&reopen(&dir), &[("a", "second"), ("b", "")]);
}

#[test]
fn entries_come_back_in_the_order_first_put() {
    let dir = TempDir::new("journal");
    let (journal, _) = open_in(&dir, Options::default());
    journal.put_all(&[("z", b"1"), ("y", b"1"), ("x", b"1")]).unwrap();
    journal.put("z", b"2").unwrap();
    journal.remove("y").unwrap();
    journal.put("y", b"3").unwrap();
    journal.close();
    assert_entries(&reopen(&dir), &[("z", "2"), ("x", "1"), ("y", "3")]);
    // The order survives a second round (and the first recovery's state).
    let (journal, _) = open_in(&dir, Options::default());
    journal.put("w", b"4").unwrap();
    journal.close();
    assert_entries(&reopen(&dir), &[("z", "2"), ("x", "1"), ("y", "3"), ("w", "4")]);
}

#[test]
fn put_all_is_one_commit_and_all_or_nothing() {
    let dir = TempDir::new("journal");
    let (journal, _) = open_in(&dir, Options::default());
    let long = "i".repeat(MAX_ID + 1);
    let refused = journal.put_all(&[("a", b"1"), (&long, b"2")]);
    assert!(matches!(refused, Err(JournalError::IdTooLong { bytes: 65536 })), "{refused:?}");
    journal.put_all(&[("a", b"1"), ("b", b"2"), ("c", b"3")]).unwrap();
    assert_eq!((journal.stats().live, journal.stats().commits), (3, 1));
    journal.close();
    assert_entries(&reopen(&dir), &[("a", "1"), ("b", "2"), ("c", "3")]);
}

#[test]
fn concurrent_callers_share_syncs() {
    const THREADS: usize = 16;
    const PUTS: usize = 50;
    let dir = TempDir::new("journal");
    let (journal, _) = open_in(&dir, Options::default());
    std::thread::scope(|scope| {
        for t in 0..THREADS {
            let journal = journal.clone();
            scope.spawn(move || {
                for n in 0..PUTS {
                    journal.put(&format!("{t}-{n}"), format!("payload {t} {n}").as_bytes()).unwrap();
                }
            });
        }
    });
    let stats = journal.stats();
    journal.close();
    assert_eq!(stats.live, THREADS * PUTS);
    assert!(stats.commits < (THREADS * PUTS) as u64, "{} commits for {} puts", stats.commits, THREADS * PUTS);
    let recovered = reopen(&dir);
    assert_eq!(recovered.entries.len(), THREADS * PUTS);
    for t in 0..THREADS {
        let ids: Vec<_> =
            recovered.entries.iter().filter(|(id, _)| id.starts_with(&format!("{t}-"))).collect();
        let expected: Vec<_> = (0..PUTS).map(|n| format!("{t}-{n}")).collect();
        assert_eq!(ids.iter().map(|(id, _)| id).collect::<Vec<_>>(), expected.iter().collect::<Vec<_>>());
    }
}

/// The ids of one round of [`the_file_stays_bounded_through_100k_puts_and_removes`].
fn round_ids(round: usize, batch: usize) -> Vec<String> {
    (round * batch..(round + 1) * batch).map(|n| format!("entry-{n}")).collect()
}

#[test]
fn the_file_stays_bounded_through_100k_puts_and_removes() {
    const THRESHOLD: u64 = 16 << 10;
    const BATCH: usize = 100;
    const PAYLOAD: &[u8] = b"a payload of some bytes";
    let dir = TempDir::new("journal");
    let (journal, _) = open_in(&dir, Options { compact_after_bytes: THRESHOLD, sync: false });
    let mut largest = 0;
    for round in 0..100_000 / BATCH {
        let ids = round_ids(round, BATCH);
        journal.put_all(&ids.iter().map(|id| (&id[..], PAYLOAD)).collect::<Vec<_>>()).unwrap();
        largest = largest.max(journal.stats().file_bytes);
        if round > 0 {
            let previous = round_ids(round - 1, BATCH);
            journal.remove_all(&previous.iter().map(|id| &id[..]).collect::<Vec<_>>()).unwrap();
            largest = largest.max(journal.stats().file_bytes);
        }
    }
    let stats = journal.stats();
    journal.close();
    // At most one batch (100 puts of 45 bytes) past the threshold before compacting.
    assert!(largest <= THRESHOLD + (BATCH * 45) as u64, "the file reached {largest} bytes");
    assert!(stats.compactions > 100, "{stats:?}");
    assert_eq!(std::fs::metadata(dir.path().join(NAME)).unwrap().len(), stats.file_bytes);
    let ids: Vec<String> = reopen(&dir).entries.into_iter().map(|(id, _)| id).collect();
    assert_eq!(ids, round_ids(100_000 / BATCH - 1, BATCH));
}

#[test]
fn remove_all_is_one_commit() {
    let dir = TempDir::new("journal");
    let (journal, _) = open_in(&dir, Options::default());
    journal.put_all(&[("a", b"1"), ("b", b"2"), ("c", b"3")]).unwrap();
    journal.remove_all(&["a", "c", "never put"]).unwrap();
    assert_eq!((journal.stats().live, journal.stats().commits), (1, 2));
    journal.close();
    assert_entries(&reopen(&dir), &[("b", "2")]);
}

#[test]
fn compaction_keeps_every_live_entry_and_its_order() {
    let dir = TempDir::new("journal");
    let (journal, _) = open_in(&dir, Options { compact_after_bytes: 1024, ..Options::default() });
    journal.put_all(&[("keep-1", b"a"), ("drop", b"b"), ("keep-2", b"c")]).unwrap();
    for n in 0..100 {
        journal.put("keep-1", format!("a{n}").as_bytes()).unwrap();
    }
    journal.remove("drop").unwrap();
    journal.put("keep-3", b"d").unwrap();
    let stats = journal.stats();
    journal.close();
    assert!(stats.compactions >= 1, "{stats:?}");
    assert!(!dir.path().join("test.journal.tmp").exists());
    assert_entries(&reopen(&dir), &[("keep-1", "a99"), ("keep-2", "c"), ("keep-3", "d")]);
}

#[test]
fn a_journal_opened_too_large_compacts_before_its_first_batch() {
    let dir = TempDir::new("journal");
    let (journal, _) = open_in(&dir, UNSYNCED);
    for n in 0..200 {
        journal.put("same", format!("payload {n}").as_bytes()).unwrap();
    }
    journal.close();
    let options = Options { compact_after_bytes: 1024, sync: true };
    let (journal, recovered) = open_in(&dir, options);
    assert_eq!(recovered.entries, entries(&[("same", "payload 199")]));
    journal.close();
    assert_eq!(journal.stats().compactions, 1);
    assert!(journal.stats().file_bytes < 100, "{:?}", journal.stats());
}

#[test]
fn ids_longer_than_64_kib_are_refused() {
    let dir = TempDir::new("journal");
    let (journal, _) = open_in(&dir, Options::default());
    let longest = "i".repeat(MAX_ID);
    journal.put(&longest, b"fits").unwrap();
    let long = "i".repeat(MAX_ID + 1);
    let refused = journal.put(&long, b"");
    assert!(matches!(refused, Err(JournalError::IdTooLong { bytes: 65536 })), "{refused:?}");
    assert!(matches!(journal.remove(&long), Err(JournalError::IdTooLong { bytes: 65536 })));
    assert_eq!(refused.unwrap_err().to_string(), "journal: an id has 65536 bytes; at most 65535 are allowed");
    journal.close();
    assert_eq!(reopen(&dir).entries, vec![(longest, b"fits".to_vec())]);
}

#[test]
fn after_close_every_call_fails_with_closed_and_nothing_is_lost() {
    let dir = TempDir::new("journal");
    let (journal, _) = open_in(&dir, Options::default());
    let other = journal.clone();
    journal.put("a", b"1").unwrap();
    journal.close();
    journal.close();
    assert!(matches!(other.put("b", b"2"), Err(JournalError::Closed)));
    assert!(matches!(other.put_all(&[("c", b"3")]), Err(JournalError::Closed)));
    assert!(matches!(journal.remove("a"), Err(JournalError::Closed)));
    assert_eq!(journal.stats().live, 1, "the last figures stay readable");
    assert_eq!(JournalError::Closed.to_string(), "journal: closed");
    assert_entries(&reopen(&dir), &[("a", "1")]);
}

#[test]
fn a_forgotten_entry_is_gone_after_the_next_batch_or_close() {
    let dir = TempDir::new("journal");
    let (journal, _) = open_in(&dir, Options::default());
    journal.put_all(&[("a", b"1"), ("b", b"2"), ("c", b"3")]).unwrap();
    journal.forget("a").unwrap();
    journal.put("d", b"4").unwrap();
    assert_eq!(journal.stats().live, 3, "written with the batch after it, in order");
    journal.forget("b").unwrap();
    journal.close();
    assert!(matches!(journal.forget("c"), Err(JournalError::Closed)));
    assert_entries(&reopen(&dir), &[("c", "3"), ("d", "4")]);
}

#[test]
fn dropping_the_last_handle_stops_the_writer() {
    let dir = TempDir::new("journal");
    let (journal, _) = open_in(&dir, Options::default());
    let other = journal.clone();
    drop(journal);
    other.put("a", b"1").unwrap();
    other.put("b", b"2").unwrap();
    // Not waited for: only a drop that lets the writer finish and joins it
    // makes the removal reach the file before the journal is read again.
    other.forget("a").unwrap();
    drop(other);
    assert_entries(&reopen(&dir), &[("b", "2")]);
}

#[test]
fn an_unusable_folder_is_an_io_error_naming_it() {
    let dir = TempDir::new("journal");
    let file = dir.write("not-a-folder", "x");
    let failed = open(&file.join("sub"), NAME, Options::default()).unwrap_err();
    let JournalError::Io { op, path, .. } = &failed else { panic!("{failed:?}") };
    assert_eq!((*op, path), ("create the folder", &file.join("sub")));
    let message = failed.to_string();
    assert!(
        message.starts_with(&format!("journal: cannot create the folder {}: ", path.display())),
        "{message}"
    );
}

/// Puts 200-byte payloads from `threads` threads for two seconds.
fn measure(threads: usize, options: Options) -> (f64, Stats) {
    let dir = TempDir::new("journal-speed");
    let (journal, _) = open_in(&dir, options);
    let start = Instant::now();
    let deadline = start + Duration::from_secs(2);
    let puts: usize = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let journal = journal.clone();
                scope.spawn(move || {
                    let mut n = 0;
                    while Instant::now() < deadline {
                        journal.put(&format!("event-{t}-{n}"), &[b'x'; 200]).unwrap();
                        n += 1;
                    }
                    n
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).sum()
    });
    let stats = journal.stats();
    journal.close();
    (puts as f64 / start.elapsed().as_secs_f64(), stats)
}

#[test]
#[ignore = "a measurement: cargo test --release --lib journal::tests::puts_per_second -- --ignored --nocapture"]
fn puts_per_second() {
    for (sync, label) in [(true, "synced"), (false, "unsynced")] {
        for threads in [1, 16] {
            let options = Options { sync, ..Options::default() };
            let (rate, stats) = measure(threads, options);
            let per_commit = stats.live as f64 / stats.commits as f64;
            println!("{label}, {threads:2} threads: {rate:9.0} puts/s, {per_commit:5.1} puts per commit");
        }
    }
}
