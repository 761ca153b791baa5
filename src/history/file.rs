//! The history file: records as JSON lines, appended in batches and rotated
//! to `<file>.1` (replacing the previous one) when the next line would take
//! the file past its cap. Only the writer thread uses it.
//!
//! Nothing here may fail an invocation, so nothing here returns an error:
//! a file that cannot be opened (a missing or unwritable folder), a failed
//! write (a full disk) or a failed rotation is logged once per kind until
//! writing works again, and the lines it cost are returned for counting. A
//! failed write is cut back off the file, which so holds whole lines only.

use std::fs::{File, OpenOptions};
use std::io::{self, Write};
use std::path::PathBuf;

use super::FileSettings;

/// What went wrong with the file, each logged once until a write succeeds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Problem {
    Open,
    Write,
    Rotate,
}

impl Problem {
    fn what(self) -> &'static str {
        match self {
            Problem::Open => "cannot open it",
            Problem::Write => "cannot write to it",
            Problem::Rotate => "cannot rotate it",
        }
    }
}

#[derive(Debug)]
pub struct JsonLines {
    settings: FileSettings,
    file: Option<File>,
    /// Bytes in the file: whole lines, as far as we know.
    size: u64,
    /// Lines waiting to be written, and how many.
    pending: Vec<u8>,
    pending_lines: u64,
    /// The kinds of problem logged since the last successful write.
    logged: Vec<Problem>,
    /// Warnings logged so far.
    pub warnings: usize,
}

impl JsonLines {
    pub fn new(settings: FileSettings) -> JsonLines {
        JsonLines {
            settings,
            file: None,
            size: 0,
            pending: Vec::new(),
            pending_lines: 0,
            logged: Vec::new(),
            warnings: 0,
        }
    }

    /// Opens the file now, so a bad path is logged when the server starts
    /// rather than at its first record.
    pub fn open_early(&mut self) {
        if let Err((problem, error)) = self.open().map(|_| ()) {
            self.log(problem, &error);
        }
    }

    /// Bytes waiting to be written.
    pub fn pending_bytes(&self) -> usize {
        self.pending.len()
    }

    /// Queues one line (ending in a newline), writing what is queued and
    /// rotating first when the line would take the file past its cap. The
    /// lines lost on the way.
    pub fn push(&mut self, line: &[u8]) -> u64 {
        let held = self.size + self.pending.len() as u64;
        let mut lost = 0;
        if held > 0 && held + line.len() as u64 > self.settings.max_bytes {
            lost = self.flush();
            self.rotate();
        }
        self.pending.extend_from_slice(line);
        self.pending_lines += 1;
        lost
    }

    /// Writes the queued lines; the lines lost when that fails.
    pub fn flush(&mut self) -> u64 {
        if self.pending.is_empty() {
            return 0;
        }
        let lines = std::mem::take(&mut self.pending_lines);
        let batch = std::mem::take(&mut self.pending);
        let lost = match self.write(&batch) {
            Ok(()) => {
                self.size += batch.len() as u64;
                self.recovered();
                0
            }
            Err((problem, error)) => {
                self.log(problem, &error);
                lines
            }
        };
        self.pending = batch;
        self.pending.clear();
        lost
    }

    fn write(&mut self, batch: &[u8]) -> Result<(), (Problem, io::Error)> {
        let (file, size) = self.open()?;
        file.write_all(batch).map_err(|error| {
            // Part of the batch may be in: cut it off, for whole lines only.
            let _ = file.set_len(size);
            (Problem::Write, error)
        })
    }

    /// The open file and its size, opened (for appending) if it was not.
    fn open(&mut self) -> Result<(&mut File, u64), (Problem, io::Error)> {
        let file = match self.file.take() {
            Some(file) => file,
            None => {
                let opened = OpenOptions::new().create(true).append(true).open(&self.settings.path);
                let file = opened.map_err(|e| (Problem::Open, e))?;
                self.size = file.metadata().map_or(0, |m| m.len());
                file
            }
        };
        let size = self.size;
        Ok((self.file.insert(file), size))
    }

    /// Closes the file and renames it to `<file>.1`; the next write opens
    /// a new one. If the rename fails, writing goes on in the old file.
    fn rotate(&mut self) {
        self.file = None;
        match std::fs::rename(&self.settings.path, self.rotated()) {
            Ok(()) => self.size = 0,
            Err(error) if error.kind() == io::ErrorKind::NotFound => self.size = 0,
            Err(error) => self.log(Problem::Rotate, &error),
        }
    }

    /// `<file>.1`.
    fn rotated(&self) -> PathBuf {
        let mut name = self.settings.path.clone().into_os_string();
        name.push(".1");
        PathBuf::from(name)
    }

    fn log(&mut self, problem: Problem, error: &io::Error) {
        if self.logged.contains(&problem) {
            return;
        }
        self.logged.push(problem);
        self.warnings += 1;
        log::warn!(
            "history file {}: {}: {error} (records stay in memory; lost ones are counted in \
             alyx_history_write_failures_total, and this is logged again only after writing works)",
            self.settings.path.display(),
            problem.what()
        );
    }

    fn recovered(&mut self) {
        if !self.logged.is_empty() {
            self.logged.clear();
            log::info!("history file {}: writing again", self.settings.path.display());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn lines(path: &std::path::Path) -> Vec<String> {
        let text = std::fs::read_to_string(path).unwrap_or_default();
        text.lines().map(String::from).collect()
    }

    fn file(path: PathBuf, max_bytes: u64) -> JsonLines {
        JsonLines::new(FileSettings { path, max_bytes })
    }

    #[test]
    fn lines_are_appended_and_rotated_before_the_cap_is_passed() {
        let dir = TempDir::new("history-file");
        let path = dir.path().join("h.jsonl");
        std::fs::write(&path, "{\"old\":0}\n").unwrap();
        let mut jsonl = file(path.clone(), 30);
        jsonl.open_early();
        let lost: u64 = ["{\"n\":1}\n", "{\"n\":2}\n", "{\"n\":3}\n", "{\"n\":4}\n"]
            .iter()
            .map(|line| jsonl.push(line.as_bytes()))
            .sum::<u64>()
            + jsonl.flush();
        assert_eq!(lost, 0);
        assert_eq!(lines(&dir.path().join("h.jsonl.1")), ["{\"old\":0}", "{\"n\":1}", "{\"n\":2}"]);
        assert_eq!(lines(&path), ["{\"n\":3}", "{\"n\":4}"]);
        let rotated_again = (5..=8).map(|n| jsonl.push(format!("{{\"n\":{n}}}\n").as_bytes())).sum::<u64>();
        assert_eq!(rotated_again + jsonl.flush(), 0);
        assert_eq!(lines(&dir.path().join("h.jsonl.1")), ["{\"n\":3}", "{\"n\":4}", "{\"n\":5}"]);
        assert_eq!(lines(&path), ["{\"n\":6}", "{\"n\":7}", "{\"n\":8}"], "one old file is kept");
    }

    #[test]
    fn a_line_over_the_cap_gets_a_file_of_its_own() {
        let dir = TempDir::new("history-file");
        let path = dir.path().join("h.jsonl");
        let mut jsonl = file(path.clone(), 4);
        assert_eq!(jsonl.push(b"{\"long\":1}\n") + jsonl.push(b"{\"long\":2}\n") + jsonl.flush(), 0);
        assert_eq!(
            (lines(&dir.path().join("h.jsonl.1")), lines(&path)),
            (vec!["{\"long\":1}".into()], vec!["{\"long\":2}".to_string()])
        );
    }

    #[test]
    fn an_unwritable_path_loses_lines_counts_them_and_warns_once() {
        let dir = TempDir::new("history-file");
        dir.write("not-a-folder", "x");
        let mut jsonl = file(dir.path().join("not-a-folder/h.jsonl"), 1 << 20);
        jsonl.open_early();
        assert_eq!(jsonl.push(b"{}\n") + jsonl.push(b"{}\n") + jsonl.flush(), 2);
        assert_eq!(jsonl.push(b"{}\n") + jsonl.flush(), 1);
        assert_eq!(jsonl.warnings, 1, "once per kind, not per record");
    }

    #[test]
    fn a_full_disk_loses_lines_counts_them_and_warns_once() {
        // Writes to /dev/full fail with ENOSPC; the cap is never reached, so
        // it is never renamed.
        let mut jsonl = file(PathBuf::from("/dev/full"), u64::MAX);
        assert_eq!(jsonl.push(b"{}\n") + jsonl.flush(), 1);
        assert_eq!(jsonl.push(b"{}\n") + jsonl.push(b"{}\n") + jsonl.flush(), 2);
        assert_eq!(jsonl.warnings, 1);
    }

    #[test]
    fn writing_again_after_a_failure_warns_again_on_the_next_one() {
        let dir = TempDir::new("history-file");
        let path = dir.path().join("later/h.jsonl");
        let mut jsonl = file(path.clone(), 1 << 20);
        assert_eq!(jsonl.push(b"{\"lost\":1}\n") + jsonl.flush(), 1);
        std::fs::create_dir(dir.path().join("later")).unwrap();
        assert_eq!(jsonl.push(b"{\"kept\":1}\n") + jsonl.flush(), 0);
        assert_eq!(lines(&path), ["{\"kept\":1}"]);
        std::fs::remove_dir_all(dir.path().join("later")).unwrap();
        jsonl.file = None;
        assert_eq!(jsonl.push(b"{}\n") + jsonl.flush(), 1);
        assert_eq!(jsonl.warnings, 2);
    }
}
