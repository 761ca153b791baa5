//! Execution history: one [`Record`] per invocation, kept in a bounded ring
//! in memory (for `GET /api/executions`) and, when `history_file` is set,
//! appended as JSON lines by one background thread ([`writer`]).
//!
//! Records are made in one place, the invocation path (`invoke::Invoker`),
//! for every trigger; this module only keeps them. Keeping must never slow
//! or fail an invocation: the ring is one short lock, and the file gets a
//! record through a bounded channel that drops (and counts) what it cannot
//! take at once. A record holds no bodies, only their sizes, and at most
//! [`MAX_LOG_LINES`] log lines of [`MAX_LOG_BYTES`] in all, so the ring's
//! default 1000 records stay within a few MiB.

mod file;
mod ring;
pub mod writer;

use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::SyncSender;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde::{Serialize, Serializer};

pub use ring::{Page, Query};
pub use writer::Writer;

use crate::error::Error;
use crate::invoke::Trigger;
use crate::runtime::LogLine;
use crate::sync::lock;
use crate::units::format_rfc3339_millis;
use ring::Ring;
use writer::Message;

/// Log lines a record keeps at most (the first ones).
pub const MAX_LOG_LINES: usize = 20;
/// Bytes of log text a record keeps at most; the line that crosses it is cut.
pub const MAX_LOG_BYTES: usize = 4096;
/// Bytes of an error message a record keeps at most.
pub const MAX_ERROR_BYTES: usize = 1024;

/// How an invocation ended, as records and filters spell it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub enum Outcome {
    /// The function ran and succeeded.
    #[serde(rename = "ok")]
    Ok,
    /// It failed, reported a failure, or could not be run (unknown, not
    /// loaded, queue full).
    #[serde(rename = "error")]
    Error,
    /// A time limit ended it.
    #[serde(rename = "timeout")]
    Timeout,
    /// Its trigger refused the request before the function ran (a webhook
    /// whose signature does not verify).
    #[serde(rename = "rejected")]
    Rejected,
}

impl Outcome {
    pub const ALL: [Outcome; 4] = [Outcome::Ok, Outcome::Error, Outcome::Timeout, Outcome::Rejected];

    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Ok => "ok",
            Outcome::Error => "error",
            Outcome::Timeout => "timeout",
            Outcome::Rejected => "rejected",
        }
    }

    pub fn parse(text: &str) -> Option<Outcome> {
        Outcome::ALL.into_iter().find(|o| o.as_str() == text)
    }
}

/// Why an invocation did not succeed: the API's error code and a message.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ErrorInfo {
    pub code: &'static str,
    /// At most [`MAX_ERROR_BYTES`].
    pub message: String,
}

impl ErrorInfo {
    pub fn new(code: &'static str, message: &str) -> ErrorInfo {
        ErrorInfo { code, message: cut(message, MAX_ERROR_BYTES).to_string() }
    }
}

/// One invocation, as `GET /api/executions` and the history file show it.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Record {
    /// The request id (a client's `X-Request-ID`, so not always unique).
    pub id: String,
    pub function: String,
    pub trigger: Trigger,
    #[serde(serialize_with = "rfc3339_millis")]
    pub started_at: SystemTime,
    /// Time spent in the call; zero when the function never ran.
    #[serde(rename = "duration_ms", serialize_with = "millis")]
    pub duration: Duration,
    pub outcome: Outcome,
    pub error: Option<ErrorInfo>,
    /// The first log lines, within [`MAX_LOG_LINES`] and [`MAX_LOG_BYTES`].
    #[serde(serialize_with = "log_lines")]
    pub logs: Vec<LogLine>,
    /// Log lines not kept.
    pub logs_dropped: usize,
    /// The input as JSON (or the request body, when it was never parsed).
    pub input_bytes: u64,
    pub output_bytes: u64,
    /// The plugin hash of the version that ran, when one did.
    pub plugin: Option<String>,
}

/// The first log lines of a call, within the record's limits, and how many
/// were left out.
pub fn cap_logs(logs: &[LogLine]) -> (Vec<LogLine>, usize) {
    let mut budget = MAX_LOG_BYTES;
    let mut kept = Vec::new();
    for line in logs.iter().take(MAX_LOG_LINES) {
        if budget == 0 {
            break;
        }
        let message = cut(&line.message, budget);
        budget = if message.len() < line.message.len() { 0 } else { budget - message.len() };
        kept.push(LogLine { message: message.to_string(), ..line.clone() });
    }
    let dropped = logs.len() - kept.len();
    (kept, dropped)
}

/// At most `bytes` of `text`, cut at a character boundary.
fn cut(text: &str, bytes: usize) -> &str {
    &text[..text.floor_char_boundary(bytes)]
}

fn rfc3339_millis<S: Serializer>(time: &SystemTime, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_str(&format_rfc3339_millis(*time))
}

/// Milliseconds with three decimals, as invocation responses give them.
fn millis<S: Serializer>(duration: &Duration, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(crate::units::millis(*duration))
}

fn log_lines<S: Serializer>(lines: &[LogLine], s: S) -> Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Line<'a> {
        level: &'static str,
        message: &'a str,
        timestamp: String,
    }
    s.collect_seq(lines.iter().map(|l| Line {
        level: l.level.name(),
        message: &l.message,
        timestamp: format_rfc3339_millis(l.timestamp),
    }))
}

/// Where the history file goes and when it is rotated.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSettings {
    pub path: PathBuf,
    /// Past this size the file becomes `<path>.1` (replacing the old one).
    pub max_bytes: u64,
}

/// What went missing on the way to the file, for `/metrics`.
#[derive(Debug, Default)]
pub struct Counters {
    /// Records the writer's queue could not take.
    dropped: AtomicU64,
    /// Records the writer could not write (open, write or rotation failed).
    write_failures: AtomicU64,
}

/// The records of a server: the ring, and the way to the file if there is
/// one. Shared by the invoker (which records) and the API (which reads).
#[derive(Debug)]
pub struct History {
    ring: Mutex<Ring>,
    file: Option<SyncSender<Message>>,
    counters: Arc<Counters>,
}

impl History {
    /// A history that keeps the last `capacity` records in memory only.
    pub fn new(capacity: usize) -> History {
        History { ring: Mutex::new(Ring::new(capacity)), file: None, counters: Arc::default() }
    }

    /// A history that also appends every record to a file, through the
    /// writer thread; the [`Writer`] stops and joins it (after writing what
    /// was recorded before) when dropped.
    pub fn with_file(capacity: usize, file: FileSettings) -> Result<(History, Writer), Error> {
        let counters = Arc::new(Counters::default());
        let (writer, sender) = Writer::start(file, counters.clone())?;
        let history = History { ring: Mutex::new(Ring::new(capacity)), file: Some(sender), counters };
        Ok((history, writer))
    }

    /// Keeps a record: into the ring, and onto the writer's queue unless it
    /// is full (then the file misses it, and it is counted).
    pub fn record(&self, record: Record) {
        let record = Arc::new(record);
        if let Some(file) = &self.file
            && file.try_send(Message::Record(record.clone())).is_err()
        {
            self.counters.dropped.fetch_add(1, Ordering::Relaxed);
        }
        lock(&self.ring).push(record);
    }

    /// The newest record with this id.
    pub fn get(&self, id: &str) -> Option<Arc<Record>> {
        lock(&self.ring).get(id)
    }

    /// The records `query` asks for, newest first.
    pub fn list(&self, query: &Query) -> Page {
        lock(&self.ring).list(query)
    }

    /// Records the file missed because the writer's queue was full.
    pub fn dropped(&self) -> u64 {
        self.counters.dropped.load(Ordering::Relaxed)
    }

    /// Records the writer failed to write.
    pub fn write_failures(&self) -> u64 {
        self.counters.write_failures.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;
    use crate::runtime::LogLevel;
    use serde_json::json;

    /// A record of `function` by `trigger` that ended in `outcome`.
    pub fn record(id: &str, function: &str, trigger: Trigger, outcome: Outcome) -> Record {
        Record {
            id: id.into(),
            function: function.into(),
            trigger,
            started_at: SystemTime::UNIX_EPOCH + Duration::from_millis(1_795_741_323_045),
            duration: Duration::from_micros(1_500),
            outcome,
            error: (outcome != Outcome::Ok).then(|| ErrorInfo::new("TIMEOUT", "too slow")),
            logs: Vec::new(),
            logs_dropped: 0,
            input_bytes: 2,
            output_bytes: 5,
            plugin: Some("abc".into()),
        }
    }

    fn line(message: &str) -> LogLine {
        LogLine { level: LogLevel::Info, message: message.into(), timestamp: SystemTime::UNIX_EPOCH }
    }

    #[test]
    fn a_record_serializes_with_its_wire_names() {
        let mut r = record("r1", "f", Trigger::Webhook { path: "/hooks/f".into() }, Outcome::Timeout);
        r.logs = vec![line("hi")];
        assert_eq!(
            serde_json::to_value(&r).unwrap(),
            json!({
                "id": "r1", "function": "f", "trigger": {"type": "webhook", "path": "/hooks/f"},
                "started_at": "2026-11-27T01:02:03.045Z", "duration_ms": 1.5, "outcome": "timeout",
                "error": {"code": "TIMEOUT", "message": "too slow"},
                "logs": [{"level": "info", "message": "hi", "timestamp": "1970-01-01T00:00:00.000Z"}],
                "logs_dropped": 0, "input_bytes": 2, "output_bytes": 5, "plugin": "abc",
            })
        );
        let names: Vec<_> = Outcome::ALL.iter().map(|o| serde_json::to_value(o).unwrap()).collect();
        assert_eq!(names, Outcome::ALL.map(|o| json!(o.as_str())));
        assert_eq!(Outcome::ALL.map(|o| Outcome::parse(o.as_str())), Outcome::ALL.map(Some));
    }

    #[test]
    fn logs_keep_the_first_lines_within_both_caps() {
        let many: Vec<LogLine> = (0..30).map(|i| line(&format!("line {i}"))).collect();
        let (kept, dropped) = cap_logs(&many);
        assert_eq!((kept.len(), dropped, kept[19].message.as_str()), (20, 10, "line 19"));
        let long = [line(&"a".repeat(3000)), line(&"é".repeat(1000)), line("late")];
        let (kept, dropped) = cap_logs(&long);
        assert_eq!((kept.len(), dropped), (2, 1));
        assert_eq!(kept[1].message, "é".repeat(548), "cut at a character boundary within 4096 bytes");
    }

    #[test]
    fn error_messages_are_capped() {
        assert_eq!(ErrorInfo::new("X", &"x".repeat(5000)).message.len(), MAX_ERROR_BYTES);
    }
}
