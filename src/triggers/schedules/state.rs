//! The schedule state file, `DATA_DIR/schedules.json`: the last run of each
//! schedule and whether each one-time schedule has run, so a restart
//! neither repeats nor forgets a one-time run.
//!
//! Written whole and atomically (a temporary file in the same folder,
//! fsync, rename over the old one, fsync of the folder), so a crash leaves
//! the old file or the new one, never half of either. A file that cannot
//! be read as state (corrupt, from a newer alyx) is reported, kept beside
//! as `schedules.json.corrupt`, and treated as empty: alyx starts anyway.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::{Path, PathBuf};

use jiff::Timestamp;
use serde::{Deserialize, Serialize};

use super::plan::{Key, LastRun, OneTime, Saved};
use super::when::utc_millis;
use crate::error::Error;
use crate::history::Outcome;

/// The file's name inside the data folder.
const FILE_NAME: &str = "schedules.json";

/// The format version this alyx writes and reads.
const VERSION: u32 = 1;

/// The state file of one data folder.
#[derive(Debug)]
pub struct Store {
    path: PathBuf,
}

impl Store {
    /// The store in `data_dir` (created if missing) and what it holds.
    pub fn open(data_dir: &Path) -> Result<(Store, BTreeMap<Key, Saved>), Error> {
        std::fs::create_dir_all(data_dir).map_err(|source| Error::Write {
            what: format!("the data folder {}", data_dir.display()),
            source,
        })?;
        let store = Store { path: data_dir.join(FILE_NAME) };
        let saved = store.load();
        Ok((store, saved))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// What the file holds; empty when there is none, or (reported) when
    /// it cannot be read.
    fn load(&self) -> BTreeMap<Key, Saved> {
        let bytes = match std::fs::read(&self.path) {
            Ok(bytes) => bytes,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return BTreeMap::new(),
            Err(e) => {
                log::error!(
                    "{}: cannot read the schedule state ({e}); starting without it",
                    self.path.display()
                );
                return BTreeMap::new();
            }
        };
        match decode(&bytes) {
            Ok(saved) => saved,
            Err(why) => {
                let aside = self.path.with_extension("json.corrupt");
                let kept = std::fs::rename(&self.path, &aside).is_ok();
                log::error!(
                    "{}: not a schedule state file ({why}); starting without it{}",
                    self.path.display(),
                    if kept { format!(" (kept as {})", aside.display()) } else { String::new() }
                );
                BTreeMap::new()
            }
        }
    }

    /// Replaces the file with `saved`, atomically.
    pub fn save(&self, saved: &BTreeMap<Key, Saved>) -> std::io::Result<()> {
        let bytes = encode(saved);
        let temporary = self.path.with_extension("json.tmp");
        let mut file = std::fs::File::create(&temporary)?;
        file.write_all(&bytes)?;
        file.sync_all()?;
        drop(file);
        std::fs::rename(&temporary, &self.path)?;
        // The rename is durable once the folder is.
        if let Some(folder) = self.path.parent() {
            std::fs::File::open(folder)?.sync_all()?;
        }
        Ok(())
    }
}

#[derive(Serialize, Deserialize)]
struct File {
    version: u32,
    schedules: Vec<Entry>,
}

#[derive(Serialize, Deserialize)]
struct Entry {
    function: String,
    name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    last: Option<Last>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    one_time: Option<Once>,
}

#[derive(Serialize, Deserialize)]
struct Last {
    scheduled_for: String,
    started_at: String,
    request_id: String,
    attempt: u32,
    late: bool,
    manual: bool,
    outcome: Option<String>,
    error: Option<String>,
}

#[derive(Serialize, Deserialize)]
struct Once {
    at: String,
    ran: bool,
}

fn encode(saved: &BTreeMap<Key, Saved>) -> Vec<u8> {
    let schedules = saved
        .iter()
        .map(|(key, saved)| Entry {
            function: key.function.clone(),
            name: key.name.clone(),
            last: saved.last.as_ref().map(|last| Last {
                scheduled_for: utc_millis(last.scheduled_for),
                started_at: utc_millis(last.started_at),
                request_id: last.request_id.clone(),
                attempt: last.attempt,
                late: last.late,
                manual: last.manual,
                outcome: last.outcome.map(|o| o.as_str().to_string()),
                error: last.error.clone(),
            }),
            one_time: saved.one_time.map(|o| Once { at: utc_millis(o.at), ran: o.ran }),
        })
        .collect();
    let mut bytes = serde_json::to_vec_pretty(&File { version: VERSION, schedules }).unwrap_or_default();
    bytes.push(b'\n');
    bytes
}

fn decode(bytes: &[u8]) -> Result<BTreeMap<Key, Saved>, String> {
    let file: File = serde_json::from_slice(bytes).map_err(|e| e.to_string())?;
    if file.version != VERSION {
        return Err(format!("version {}, this alyx reads {VERSION}", file.version));
    }
    let mut saved = BTreeMap::new();
    for entry in file.schedules {
        let key = Key { function: entry.function, name: entry.name };
        let last = entry.last.map(last_run).transpose()?;
        let one_time = entry.one_time.map(|o| Ok::<_, String>(OneTime { at: time(&o.at)?, ran: o.ran }));
        saved.insert(key, Saved { last, one_time: one_time.transpose()? });
    }
    Ok(saved)
}

fn last_run(last: Last) -> Result<LastRun, String> {
    let outcome = match last.outcome.as_deref() {
        None => None,
        Some(text) => Some(Outcome::parse(text).ok_or_else(|| format!("unknown outcome {text:?}"))?),
    };
    Ok(LastRun {
        scheduled_for: time(&last.scheduled_for)?,
        started_at: time(&last.started_at)?,
        request_id: last.request_id,
        attempt: last.attempt,
        late: last.late,
        manual: last.manual,
        outcome,
        error: last.error,
    })
}

fn time(text: &str) -> Result<Timestamp, String> {
    text.parse().map_err(|e| format!("bad time {text:?}: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::TempDir;

    fn sample() -> BTreeMap<Key, Saved> {
        let at: Timestamp = "2026-11-26T03:00:00Z".parse().unwrap();
        let last = LastRun {
            scheduled_for: at,
            started_at: "2026-11-26T03:00:00.012Z".parse().unwrap(),
            request_id: "r1".into(),
            attempt: 2,
            late: true,
            manual: false,
            outcome: Some(Outcome::Timeout),
            error: Some("TIMEOUT".into()),
        };
        let key = Key { function: "f".into(), name: "once".into() };
        BTreeMap::from([(key, Saved { last: Some(last), one_time: Some(OneTime { at, ran: true }) })])
    }

    #[test]
    fn what_is_saved_is_read_back_and_the_folder_is_created() {
        let root = TempDir::new("state");
        let data = root.path().join("deep/.alyx");
        let (store, empty) = Store::open(&data).unwrap();
        assert!(empty.is_empty());
        store.save(&sample()).unwrap();
        assert!(!data.join("schedules.json.tmp").exists(), "the temporary file was renamed");
        let (_, read) = Store::open(&data).unwrap();
        assert_eq!(read, sample());
    }

    #[test]
    fn a_corrupt_file_is_set_aside_and_read_as_empty() {
        let root = TempDir::new("state");
        for text in [
            "{\"version\": 1, \"schedules\": [{\"funct",
            "[]",
            "{\"version\": 2, \"schedules\": []}",
            "\u{0}\u{1}",
        ] {
            root.write(".alyx/schedules.json", text);
            let (store, read) = Store::open(&root.path().join(".alyx")).unwrap();
            assert!(read.is_empty(), "{text:?}");
            assert_eq!(std::fs::read_to_string(store.path().with_extension("json.corrupt")).unwrap(), text);
        }
    }

    #[test]
    fn a_bad_time_or_outcome_is_a_corrupt_file() {
        let bad_time = r#"{"version": 1, "schedules": [{"function": "f", "name": "n", "one_time": {"at": "soon", "ran": true}}]}"#;
        assert!(decode(bad_time.as_bytes()).unwrap_err().contains("bad time \"soon\""));
        let text = String::from_utf8(encode(&sample())).unwrap().replace("\"timeout\"", "\"meh\"");
        assert_eq!(decode(text.as_bytes()).unwrap_err(), "unknown outcome \"meh\"");
    }
}
