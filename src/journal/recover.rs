//! Opening a journal file: create it if missing, check its header, replay
//! its records into the live map and cut off a damaged tail.
//!
//! Damage is reported as data (one line in `problems`), never a panic or a
//! refusal to start. Reading stops at the first bad record (a torn write, a
//! checksum mismatch...): everything from there to the end is the damaged
//! tail. The whole file is first copied aside as `<name>.damaged-<unix
//! seconds>` (the newest [`KEPT_COPIES`] are kept), then the journal is cut
//! after its last good record, so new appends follow good data. A file with
//! a wrong header is moved aside whole and the journal starts empty. A
//! leftover `<name>.tmp` (a compaction cut short) is removed: the journal
//! it was to replace is still whole.

use std::fs::{self, File, OpenOptions};
use std::io::{self, BufReader, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use super::error::JournalError;
use super::live::Live;
use super::record::{self, Damage, HEADER_LEN};
use super::{Paths, sync_folder};

/// Damaged copies kept of each journal; older ones are removed.
pub const KEPT_COPIES: usize = 3;

/// A journal file ready for appending, and what was in it.
#[derive(Debug)]
pub struct Opened {
    /// Opened for appending (and reading).
    pub file: File,
    /// Bytes of good data: the file's length.
    pub len: u64,
    pub live: Live,
    pub problems: Vec<String>,
}

/// Opens (or creates) the journal at `paths.file`; fsyncs what it changes
/// unless `sync` is off.
pub fn open(paths: &Paths, sync: bool) -> Result<Opened, JournalError> {
    fs::create_dir_all(&paths.dir).map_err(JournalError::io("create the folder", &paths.dir))?;
    remove_if_present(&paths.tmp)?;
    let file = open_for_append(&paths.file)?;
    let size = file.metadata().map_err(JournalError::io("read", &paths.file))?.len();
    if size == 0 {
        return start_empty(file, paths, sync, Vec::new());
    }
    match read_header(&file, &paths.file)? {
        Some(problem) => move_aside_and_start_empty(file, paths, sync, &problem),
        None => replay(file, size, paths, sync),
    }
}

fn open_for_append(path: &Path) -> Result<File, JournalError> {
    OpenOptions::new().read(true).append(true).create(true).open(path).map_err(JournalError::io("open", path))
}

fn remove_if_present(path: &Path) -> Result<(), JournalError> {
    match fs::remove_file(path) {
        Err(e) if e.kind() != io::ErrorKind::NotFound => Err(JournalError::io("remove", path)(e)),
        _ => Ok(()),
    }
}

/// Why the file's header is wrong, or `None` when it is ours.
fn read_header(file: &File, path: &Path) -> Result<Option<String>, JournalError> {
    let mut start = Vec::with_capacity(HEADER_LEN as usize);
    file.take(HEADER_LEN).read_to_end(&mut start).map_err(JournalError::io("read", path))?;
    Ok(record::header_problem(&start))
}

/// Writes the header to an empty file.
fn start_empty(file: File, paths: &Paths, sync: bool, problems: Vec<String>) -> Result<Opened, JournalError> {
    (&file).write_all(&record::header()).map_err(JournalError::io("write to", &paths.file))?;
    if sync {
        file.sync_data().map_err(JournalError::io("sync", &paths.file))?;
        sync_folder(&paths.dir)?;
    }
    Ok(Opened { file, len: HEADER_LEN, live: Live::default(), problems })
}

fn move_aside_and_start_empty(
    file: File,
    paths: &Paths,
    sync: bool,
    why: &str,
) -> Result<Opened, JournalError> {
    drop(file);
    let aside = aside_path(paths, SystemTime::now());
    fs::rename(&paths.file, &aside).map_err(JournalError::io("move aside", &paths.file))?;
    prune_copies(paths);
    let problem =
        format!("{}: {why}; moved aside to {}, starting empty", paths.file.display(), aside.display());
    start_empty(open_for_append(&paths.file)?, paths, sync, vec![problem])
}

/// Reads every record after the header into the live map, up to the end
/// or the first damaged one.
fn replay(file: File, size: u64, paths: &Paths, sync: bool) -> Result<Opened, JournalError> {
    let mut reader = BufReader::new(&file);
    reader.seek(SeekFrom::Start(HEADER_LEN)).map_err(JournalError::io("read", &paths.file))?;
    let mut live = Live::default();
    let mut at = HEADER_LEN;
    while at < size {
        match record::read(&mut reader, size - at).map_err(JournalError::io("read", &paths.file))? {
            Ok(record) => {
                at += record.bytes.len() as u64;
                live.apply(record);
            }
            Err(damage) => {
                let problem = cut_tail(&file, paths, sync, Tail { at, size, damage })?;
                return Ok(Opened { file, len: at, live, problems: vec![problem] });
            }
        }
    }
    Ok(Opened { file, len: at, live, problems: Vec::new() })
}

/// Where the damage starts and what it is.
struct Tail {
    at: u64,
    size: u64,
    damage: Damage,
}

/// Copies the file aside, then truncates it at `tail.at`; returns the problem.
fn cut_tail(file: &File, paths: &Paths, sync: bool, tail: Tail) -> Result<String, JournalError> {
    let copy = keep_copy(paths, sync)?;
    file.set_len(tail.at).map_err(JournalError::io("truncate", &paths.file))?;
    if sync {
        file.sync_all().map_err(JournalError::io("sync", &paths.file))?;
    }
    Ok(format!(
        "{}: {} in the record at byte {}; skipped the last {} bytes (the damaged file is kept as {})",
        paths.file.display(),
        tail.damage,
        tail.at,
        tail.size - tail.at,
        copy.display()
    ))
}

/// Copies the journal aside (synced) and prunes older copies.
fn keep_copy(paths: &Paths, sync: bool) -> Result<PathBuf, JournalError> {
    let copy = aside_path(paths, SystemTime::now());
    fs::copy(&paths.file, &copy).map_err(JournalError::io("copy aside", &paths.file))?;
    if sync {
        let copied = File::open(&copy).map_err(JournalError::io("open", &copy))?;
        copied.sync_all().map_err(JournalError::io("sync", &copy))?;
        sync_folder(&paths.dir)?;
    }
    prune_copies(paths);
    Ok(copy)
}

/// `<name>.damaged-<unix seconds>`, or with `-2`, `-3`... when taken.
fn aside_path(paths: &Paths, now: SystemTime) -> PathBuf {
    let seconds = now.duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs());
    let stem = format!("{}.damaged-{seconds}", paths.name);
    let mut path = paths.dir.join(&stem);
    for n in 2.. {
        if !path.exists() {
            break;
        }
        path = paths.dir.join(format!("{stem}-{n}"));
    }
    path
}

/// Removes all but the newest [`KEPT_COPIES`] damaged copies. A copy that
/// cannot be removed is logged and left.
fn prune_copies(paths: &Paths) {
    let mut copies = damaged_copies(paths);
    copies.sort();
    let extra = copies.len().saturating_sub(KEPT_COPIES);
    for (_, path) in copies.into_iter().take(extra) {
        if let Err(e) = fs::remove_file(&path) {
            log::warn!("journal: cannot remove the old copy {}: {e}", path.display());
        }
    }
}

/// The damaged copies in the folder, each with its (seconds, n) for sorting.
fn damaged_copies(paths: &Paths) -> Vec<((u64, u64), PathBuf)> {
    let prefix = format!("{}.damaged-", paths.name);
    let Ok(entries) = fs::read_dir(&paths.dir) else { return Vec::new() };
    let age = |suffix: &str| -> Option<(u64, u64)> {
        let (seconds, n) = suffix.split_once('-').unwrap_or((suffix, "1"));
        Some((seconds.parse().ok()?, n.parse().ok()?))
    };
    entries
        .flatten()
        .filter_map(|entry| {
            let name = entry.file_name().into_string().ok()?;
            Some((age(name.strip_prefix(&prefix)?)?, entry.path()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::journal::Options;
    use crate::journal::tests::{NAME, entries, open_in, reopen};
    use crate::testutil::TempDir;

    /// A journal holding a → 1, b → 2, c → three; returns its bytes and
    /// where c's record starts.
    fn three_entries(dir: &TempDir) -> (Vec<u8>, usize) {
        let (journal, _) = open_in(dir, Options::default());
        journal.put_all(&[("a", b"1"), ("b", b"2")]).unwrap();
        let last = journal.stats().file_bytes as usize;
        journal.put("c", b"three").unwrap();
        journal.close();
        (fs::read(dir.path().join(NAME)).unwrap(), last)
    }

    /// Makes `bytes` the journal, opens it, asserts it holds `expected`
    /// and one problem, and returns the problem.
    #[track_caller]
    fn open_damaged(dir: &TempDir, bytes: &[u8], expected: &[(&str, &str)]) -> String {
        dir.write(NAME, bytes);
        let recovered = reopen(dir);
        assert_eq!(recovered.entries, entries(expected));
        assert_eq!(recovered.problems.len(), 1, "{:?}", recovered.problems);
        recovered.problems.into_iter().next().unwrap()
    }

    #[track_caller]
    fn assert_contains(problem: &str, parts: &[&str]) {
        for part in parts {
            assert!(problem.contains(part), "{part:?} is not in {problem:?}");
        }
    }

    fn journal_len(dir: &TempDir) -> usize {
        fs::metadata(dir.path().join(NAME)).unwrap().len() as usize
    }

    fn paths(dir: &TempDir) -> Paths {
        Paths::new(dir.path(), NAME)
    }

    #[test]
    fn a_tail_cut_anywhere_in_the_last_record_loses_only_that_record() {
        let dir = TempDir::new("journal-recover");
        let (bytes, last) = three_entries(&dir);
        for cut in last + 1..bytes.len() {
            let problem = open_damaged(&dir, &bytes[..cut], &[("a", "1"), ("b", "2")]);
            let skipped = format!("skipped the last {} bytes", cut - last);
            assert_contains(&problem, &["torn record", &format!("at byte {last};"), &skipped]);
            assert_eq!(journal_len(&dir), last, "cut after the last good record");
        }
    }

    #[test]
    fn a_flipped_byte_in_the_last_body_is_a_checksum_mismatch() {
        let dir = TempDir::new("journal-recover");
        let (bytes, last) = three_entries(&dir);
        for at in last + 8..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x20;
            let problem = open_damaged(&dir, &damaged, &[("a", "1"), ("b", "2")]);
            assert_contains(&problem, &["checksum mismatch", &format!("at byte {last};")]);
        }
    }

    #[test]
    fn a_flipped_bit_in_the_last_length_or_checksum_is_detected() {
        let dir = TempDir::new("journal-recover");
        let (bytes, last) = three_entries(&dir);
        for bit in 0..64 {
            let mut damaged = bytes.clone();
            damaged[last + bit / 8] ^= 1 << (bit % 8);
            let problem = open_damaged(&dir, &damaged, &[("a", "1"), ("b", "2")]);
            let skipped = format!("skipped the last {} bytes", bytes.len() - last);
            assert_contains(&problem, &[&format!("at byte {last};"), &skipped]);
        }
    }

    #[test]
    fn garbage_after_the_last_record_is_skipped() {
        let dir = TempDir::new("journal-recover");
        let (bytes, _) = three_entries(&dir);
        let all = [("a", "1"), ("b", "2"), ("c", "three")];
        for (garbage, why) in [
            (vec![0; 100], "impossible record length 0"),
            (vec![0xff; 100], "runs past the end"),
            (b"short".to_vec(), "the file ends 5 bytes into its 8-byte frame"),
            ([&[5, 0, 0, 0, 0, 0, 0, 0][..], b"abcde"].concat(), "checksum mismatch"),
        ] {
            let problem = open_damaged(&dir, &[&bytes[..], &garbage].concat(), &all);
            let skipped = format!("skipped the last {} bytes", garbage.len());
            assert_contains(&problem, &[why, &format!("at byte {};", bytes.len()), &skipped]);
            assert_eq!(journal_len(&dir), bytes.len());
        }
    }

    #[test]
    fn damage_in_an_earlier_record_cuts_everything_after_it() {
        let dir = TempDir::new("journal-recover");
        let (mut bytes, _) = three_entries(&dir);
        bytes[HEADER_LEN as usize + 8] = 9;
        let problem = open_damaged(&dir, &bytes, &[]);
        let skipped = format!("skipped the last {} bytes", bytes.len() - HEADER_LEN as usize);
        assert_contains(&problem, &["checksum mismatch", "at byte 12;", &skipped]);
    }

    #[test]
    fn the_damaged_file_is_kept_before_its_tail_is_cut() {
        let dir = TempDir::new("journal-recover");
        let (bytes, last) = three_entries(&dir);
        let damaged = &bytes[..bytes.len() - 2];
        let problem = open_damaged(&dir, damaged, &[("a", "1"), ("b", "2")]);
        let copies = damaged_copies(&paths(&dir));
        assert_eq!(copies.len(), 1);
        let copy = &copies[0].1;
        assert_eq!(fs::read(copy).unwrap(), damaged);
        assert!(problem.ends_with(&format!("(the damaged file is kept as {})", copy.display())), "{problem}");
        assert_eq!(fs::read(dir.path().join(NAME)).unwrap(), &bytes[..last]);
    }

    #[test]
    fn at_most_three_damaged_copies_are_kept() {
        let dir = TempDir::new("journal-recover");
        let (bytes, _) = three_entries(&dir);
        for old in ["100", "300-2", "200", "300"] {
            dir.write(&format!("{NAME}.damaged-{old}"), "old");
        }
        dir.write("other.journal.damaged-50", "another journal's");
        open_damaged(&dir, &bytes[..bytes.len() - 1], &[("a", "1"), ("b", "2")]);
        let mut copies = damaged_copies(&paths(&dir));
        copies.sort();
        let names: Vec<_> = copies.iter().map(|(_, p)| p.file_name().unwrap().to_str().unwrap()).collect();
        assert_eq!(names[..2], ["test.journal.damaged-300", "test.journal.damaged-300-2"]);
        assert_eq!(names.len(), 3, "{names:?}");
        assert!(dir.path().join("other.journal.damaged-50").exists());
    }

    #[test]
    fn appends_after_a_cut_tail_follow_good_data() {
        let dir = TempDir::new("journal-recover");
        let (bytes, _) = three_entries(&dir);
        dir.write(NAME, &bytes[..bytes.len() - 3]);
        let (journal, recovered) = open_in(&dir, Options::default());
        assert_eq!(recovered.problems.len(), 1);
        journal.put("d", b"4").unwrap();
        journal.close();
        let recovered = reopen(&dir);
        assert_eq!(
            (recovered.entries, recovered.problems),
            (entries(&[("a", "1"), ("b", "2"), ("d", "4")]), vec![])
        );
    }

    #[test]
    fn a_wrong_header_moves_the_file_aside_and_starts_empty() {
        let dir = TempDir::new("journal-recover");
        let (bytes, _) = three_entries(&dir);
        let mut later_version = bytes.clone();
        later_version[8] = 2;
        for (content, why) in [
            (b"not a journal at all".to_vec(), "not a journal (it starts with \"not a jo\""),
            (later_version, "journal version 2; this alyx reads version 1"),
            (bytes[..5].to_vec(), "not a journal (it starts with \"ALYXJ\""),
        ] {
            let problem = open_damaged(&dir, &content, &[]);
            assert_contains(&problem, &[why, "moved aside to", "starting empty"]);
            let mut copies = damaged_copies(&paths(&dir));
            copies.sort();
            assert_eq!(fs::read(&copies.last().unwrap().1).unwrap(), content, "moved aside whole");
            assert_eq!(fs::read(dir.path().join(NAME)).unwrap(), record::header());
        }
        let (journal, _) = open_in(&dir, Options::default());
        journal.put("new", b"1").unwrap();
        journal.close();
        assert_eq!(
            reopen(&dir),
            crate::journal::Recovered { entries: entries(&[("new", "1")]), problems: vec![] }
        );
    }

    #[test]
    fn a_leftover_tmp_file_is_removed() {
        let dir = TempDir::new("journal-recover");
        three_entries(&dir);
        let tmp = dir.write(&format!("{NAME}.tmp"), "half a compaction");
        assert_eq!(reopen(&dir).entries, entries(&[("a", "1"), ("b", "2"), ("c", "three")]));
        assert!(!tmp.exists());
    }
}
