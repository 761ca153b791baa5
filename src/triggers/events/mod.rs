//! Event hooks: an event (`POST /api/events`) reaches the hooks of its
//! type, source and action ([`matching`]); the sync ones run as a chain
//! before the answer ([`chain`]), the async ones are delivered after it,
//! durably ([`delivery`], over the [`crate::journal`] in the data folder).
//! Events raised from inside hooks carry their depth, and past
//! `event_depth` they are refused, so hooks cannot loop.

pub mod chain;
pub mod delivery;
pub mod event;
pub mod matching;

use std::path::Path;
use std::sync::Arc;

use serde_json::Value;

use crate::error::Error;
use crate::history::ErrorInfo;
use crate::invoke::{Caller, Invoker};
use crate::journal::{self, JournalError};
use crate::manifest::HookMode;
use crate::random::unique_id;
use chain::{Line, Verdict};
use delivery::{Deliveries, Limits, QueueFull};
use event::Event;

/// The journal's file name in the data folder.
pub const JOURNAL: &str = "events.journal";

/// How the events part of a server is set up.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Threads delivering async hooks.
    pub workers: usize,
    /// Async deliveries waiting or failed, at most.
    pub queue: usize,
    /// The bytes of those deliveries (their events), at most.
    pub queue_bytes: u64,
    /// The deepest an event raised from hooks may be.
    pub max_depth: u32,
}

fn limits(settings: &Settings) -> Limits {
    Limits { deliveries: settings.queue, bytes: settings.queue_bytes }
}

/// Why an event was not accepted.
#[derive(Debug, Clone, PartialEq)]
pub enum EventError {
    /// The body is not an event; says what is wrong.
    Bad { message: String },
    /// Raised from hooks nested deeper than `event_depth`.
    TooDeep { depth: u32, limit: u32 },
    /// A sync hook refused the event.
    Rejected { function: String, reason: String, lines: Vec<Line> },
    /// A sync hook failed and its `on_failure` is `reject`.
    HookFailed { function: String, error: ErrorInfo, lines: Vec<Line> },
    /// The async queue is full.
    QueueFull(QueueFull),
    /// The journal could not be written: the event was not accepted.
    Journal { message: String },
    /// No failed deliveries of this event (retry, drop).
    NoFailed { id: String },
}

impl std::fmt::Display for EventError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EventError::Bad { message } => write!(f, "not an event: {message}"),
            EventError::TooDeep { depth, limit } => write!(
                f,
                "event raised {depth} hooks deep; event_depth allows {limit} (do hooks raise each other's events in a loop?)"
            ),
            EventError::Rejected { function, reason, .. } => {
                write!(f, "{function} rejected the event: {reason}")
            }
            EventError::HookFailed { function, error, .. } => {
                write!(f, "hook {function} failed: {}: {}", error.code, error.message)
            }
            EventError::QueueFull(QueueFull::Deliveries(limit)) => {
                write!(f, "{limit} async deliveries are waiting or failed (event_queue); try again later")
            }
            EventError::QueueFull(QueueFull::Bytes(limit)) => write!(
                f,
                "the async deliveries waiting or failed hold {} (event_queue_bytes); try again later",
                crate::units::format_size(*limit)
            ),
            EventError::Journal { message } => write!(f, "the event journal cannot be written: {message}"),
            EventError::NoFailed { id } => {
                write!(f, "no failed deliveries of event {}", crate::quote::quote(id))
            }
        }
    }
}

impl From<JournalError> for EventError {
    fn from(error: JournalError) -> EventError {
        EventError::Journal { message: error.to_string() }
    }
}

/// An accepted event: its final data, what each sync hook did, and how
/// many async deliveries were queued.
#[derive(Debug)]
pub struct Accepted {
    pub event: Event,
    pub lines: Vec<Line>,
    pub queued: usize,
}

/// The events part of a server.
pub struct Events {
    invoker: Arc<Invoker>,
    max_depth: u32,
    deliveries: Deliveries,
}

impl Events {
    /// Opens the journal in `data_dir` (reporting any damage found), queues
    /// what it holds, and starts the delivery workers.
    pub fn start(invoker: Arc<Invoker>, data_dir: &Path, settings: &Settings) -> Result<Events, Error> {
        let (journal, found) =
            journal::open(data_dir, JOURNAL, journal::Options::default()).map_err(Error::Journal)?;
        for problem in &found.problems {
            log::error!("events: {problem}");
        }
        let (deliveries, recovered) =
            Deliveries::start(journal, found.entries, invoker.clone(), limits(settings), settings.workers)
                .map_err(|source| Error::Thread { name: "event delivery".into(), source })?;
        if recovered.pending + recovered.failed > 0 {
            log::info!(
                "events: {} deliveries to make and {} failed, from {}",
                recovered.pending,
                recovered.failed,
                data_dir.join(JOURNAL).display()
            );
        }
        Ok(Events { invoker, max_depth: settings.max_depth, deliveries })
    }

    /// Takes an event from `caller`: runs its sync hooks, then queues its
    /// async ones durably.
    pub fn raise(&self, body: Value, caller: Caller) -> Result<Accepted, EventError> {
        let depth = caller.depth();
        if depth > self.max_depth {
            return Err(EventError::TooDeep { depth, limit: self.max_depth });
        }
        let mut event =
            Event::parse(body, unique_id(), depth).map_err(|message| EventError::Bad { message })?;
        let hooks = matching::subscribers(self.invoker.registry(), &event);
        let (sync, later): (Vec<_>, Vec<_>) = hooks.into_iter().partition(|h| h.mode == HookMode::Sync);
        let size = if later.is_empty() { 0 } else { delivery::event_size(&event) };
        let reservation = self.deliveries.reserve(later.len(), size).map_err(EventError::QueueFull)?;
        let (verdict, lines) = chain::run(&self.invoker, &mut event, &sync, &caller);
        match verdict {
            Verdict::Passed => {}
            Verdict::Rejected { function, reason } => {
                return Err(EventError::Rejected { function, reason, lines });
            }
            Verdict::Failed { function, error } => {
                return Err(EventError::HookFailed { function, error, lines });
            }
        }
        let queued = reservation.commit(&event, &later, &caller)?;
        Ok(Accepted { event, lines, queued })
    }

    /// Async deliveries waiting (or being made), and failed.
    pub fn counts(&self) -> (usize, usize) {
        self.deliveries.counts()
    }

    /// The failed deliveries, as `GET /api/events/failed` lists them.
    pub fn failed(&self) -> Vec<Value> {
        self.deliveries.failed()
    }

    /// Delivers the failed deliveries of event `id` again.
    pub fn retry(&self, id: &str) -> Result<usize, EventError> {
        match self.deliveries.retry(id)? {
            0 => Err(EventError::NoFailed { id: id.to_string() }),
            n => Ok(n),
        }
    }

    /// Forgets the failed deliveries of event `id`.
    pub fn drop_failed(&self, id: &str) -> Result<usize, EventError> {
        match self.deliveries.drop_failed(id)? {
            0 => Err(EventError::NoFailed { id: id.to_string() }),
            n => Ok(n),
        }
    }

    /// Stops the delivery workers (deliveries being made finish) and closes
    /// the journal.
    pub fn stop(&self) {
        self.deliveries.stop();
    }
}
