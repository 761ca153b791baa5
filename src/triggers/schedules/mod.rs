//! Schedules: functions run by cron expressions, intervals and one-time
//! instants from their manifests.
//!
//! The parts: `cron` and `when` read expressions and time zones; `plan`
//! is the board (what is due when: pure, tested with fixed instants);
//! `state` is the state file in the data folder; `runners` are the threads
//! that run; here, [`Schedules`] (the board and the state file, shared
//! with the HTTP API) and the [`Scheduler`] thread.
//!
//! **The scheduler thread** (named `scheduler`) owns the timing and never
//! runs a function. It waits on its one channel with `recv_timeout` until
//! the board's next due time, and wakes early for messages: `Changed` (the
//! registry's watch, fed into the same channel: a version was swapped in
//! or a function removed; the board is re-synced, so a reloaded manifest is
//! rescheduled while its runs in flight finish), `Finished` (a run ended;
//! a retry may now be due) and `Stop`. On each wake it reads the wall clock
//! afresh, so a clock that jumped is re-evaluated (see `plan`); the wait is
//! at most [`MAX_WAIT`], so a clock changed during a long wait is noticed
//! within a minute.
//!
//! **Runs** go to [`RUNNERS`] runner threads through a bounded queue of
//! [`QUEUE`], never onto the scheduler thread, so a slow run delays no
//! other schedule. A fixed set, not a thread per run: schedules are few and
//! most runs short, every run also holds its function's admission (the
//! same `instances + queue_depth` bound as HTTP calls), and four threads
//! let four slow runs go on at once while the rest are handed out; a run
//! that finds the queue full is skipped and counted. A run by hand (`POST
//! /api/schedules/{function}/{name}/trigger`) runs on the HTTP invoke lane
//! instead, like any call, and answers with its outcome.
//!
//! **Stopping**: no new run starts (runs queued are dropped; a one-time run
//! among them stays pending and runs late at the next start); runs in
//! flight get the grace period to finish, and those still running after
//! it are abandoned when the process exits.

pub mod cron;
pub mod plan;
mod runners;
pub mod state;
pub mod when;

use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::Duration;

use jiff::Timestamp;
use serde_json::{Value, json};

use crate::error::Error;
use crate::invoke::{Admission, Caller, Invocation, Invoker, Outcome, Trigger};
use crate::registry::Registry;
use crate::sync::lock;
use plan::{Board, Key, Refused, Run, View};
use runners::Runners;
use state::Store;

/// Runner threads.
pub const RUNNERS: usize = 4;
/// Runs waiting for a runner at most; beyond, a due run is skipped.
pub const QUEUE: usize = 64;
/// The longest the scheduler sleeps without reading the wall clock.
const MAX_WAIT: Duration = Duration::from_secs(60);

/// Where the time comes from: the system's wall clock, or a test's.
pub trait Clock: Send + Sync {
    fn now(&self) -> Timestamp;
}

/// The system's wall clock, to the millisecond (scheduled times are shown
/// with milliseconds at most).
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> Timestamp {
        let now = Timestamp::now();
        Timestamp::from_millisecond(now.as_millisecond()).unwrap_or(now)
    }
}

/// The board of every schedule (kept in step with the registry), the state
/// file, and how to run one: shared by the scheduler thread, its runners
/// and the HTTP API.
pub struct Schedules {
    invoker: Arc<Invoker>,
    board: Mutex<Synced>,
    /// `None` when the scheduler is off: nothing is read or written.
    store: Option<Store>,
    /// Held while the state file is written, so writes keep their order.
    saving: Mutex<()>,
    clock: Arc<dyn Clock>,
}

/// The board and the registry generation it was synced with.
struct Synced {
    generation: u64,
    board: Board,
}

impl Schedules {
    /// Schedules that fire: state from the data folder (created if
    /// missing), kept there as runs start and end.
    pub fn scheduling(
        invoker: Arc<Invoker>,
        data_dir: &std::path::Path,
        clock: Arc<dyn Clock>,
    ) -> Result<Schedules, Error> {
        let (store, saved) = Store::open(data_dir)?;
        Ok(Schedules::with(invoker, Board::new(saved, true), Some(store), clock))
    }

    /// Schedules that are listed and run by hand only (`--no-schedules`):
    /// the data folder is neither read nor written, so another replica can
    /// own it.
    pub fn by_hand(invoker: Arc<Invoker>) -> Schedules {
        Schedules::with(invoker, Board::new(Default::default(), false), None, Arc::new(SystemClock))
    }

    fn with(invoker: Arc<Invoker>, board: Board, store: Option<Store>, clock: Arc<dyn Clock>) -> Schedules {
        let synced = Synced { generation: u64::MAX, board };
        Schedules { invoker, board: Mutex::new(synced), store, saving: Mutex::new(()), clock }
    }

    /// Whether schedules fire by themselves here.
    pub fn is_scheduling(&self) -> bool {
        self.store.is_some()
    }

    fn registry(&self) -> &Arc<Registry> {
        self.invoker.registry()
    }

    /// Every schedule, by function and name.
    pub fn views(&self) -> Vec<View> {
        self.board().views()
    }

    /// Runs a schedule now, on the calling thread, within `admission` if
    /// the caller took one, recorded as `request_id`: its outcome.
    pub fn trigger(
        &self,
        function: &str,
        name: &str,
        admission: Option<Admission>,
        request_id: &str,
    ) -> Result<Outcome, Refused> {
        let run = self.board().manual(&key(function, name), self.clock.now(), request_id)?;
        Ok(self.execute(run, admission))
    }

    /// The trigger of a run by hand that was refused before it started
    /// (its function unknown, unloaded or busy): due now, in the
    /// schedule's zone when the board has it, else in UTC.
    pub fn refused_by_hand(&self, function: &str, name: &str) -> Trigger {
        let zone = self.board().zone(&key(function, name)).unwrap_or_else(when::Zone::utc);
        Trigger::Schedule {
            name: name.to_string(),
            scheduled_for: zone.format(self.clock.now()),
            attempt: 1,
            late: false,
            manual: true,
        }
    }

    /// Start (remembered in the state file before the call) → call →
    /// end (remembered, a retry planned if it failed).
    fn execute(&self, run: Run, admission: Option<Admission>) -> Outcome {
        self.board().started(&run, self.clock.now());
        self.save();
        let invocation = Invocation {
            admission,
            ..Invocation::new(
                &run.key.function,
                input(&run),
                trigger(&run),
                run.request_id.clone(),
                Caller::Internal { depth: 0 },
            )
        };
        let outcome = self.invoker.run(invocation);
        let (verdict, code) = outcome.verdict();
        log::info!(
            "schedule {}/{}: {} ({})",
            run.key.function,
            run.key.name,
            verdict.as_str(),
            run.request_id
        );
        self.board().finished(&run, verdict, code, self.clock.now());
        self.save();
        outcome
    }

    /// The board, synced with the registry first if it changed.
    fn board(&self) -> BoardGuard<'_> {
        let generation = self.registry().generation();
        let mut synced = lock(&self.board);
        if synced.generation != generation {
            let schedules = loaded_schedules(self.registry());
            synced.board.sync(schedules, self.clock.now());
            synced.generation = generation;
        }
        BoardGuard(synced)
    }

    /// Writes the state file if the board's state changed. The board is
    /// read under the writing lock, so a later state is never overwritten
    /// by an earlier one.
    fn save(&self) {
        let Some(store) = &self.store else { return };
        let _writing = lock(&self.saving);
        let Some(saved) = self.board().take_changes() else { return };
        if let Err(e) = store.save(&saved) {
            log::error!("{}: cannot write the schedule state: {e}", store.path().display());
        }
    }

    /// Hands out what is due at `now`; how long until the next thing is.
    fn dispatch(&self, now: Timestamp, runners: &Runners) -> Duration {
        let due = self.board().due(now);
        for run in due {
            if let Some(run) = runners.hand(run) {
                log::warn!("schedule {}/{}: skipped, every runner is busy", run.key.function, run.key.name);
                self.board().dropped(&run);
            }
        }
        let next = self.board().next_wake();
        let until = |at: Timestamp| Duration::try_from(at.duration_since(now)).unwrap_or(Duration::ZERO);
        next.map_or(MAX_WAIT, until).min(MAX_WAIT)
    }
}

/// The board, locked (and synced).
struct BoardGuard<'a>(MutexGuard<'a, Synced>);

impl std::ops::Deref for BoardGuard<'_> {
    type Target = Board;
    fn deref(&self) -> &Board {
        &self.0.board
    }
}

impl std::ops::DerefMut for BoardGuard<'_> {
    fn deref_mut(&mut self) -> &mut Board {
        &mut self.0.board
    }
}

fn key(function: &str, name: &str) -> Key {
    Key { function: function.to_string(), name: name.to_string() }
}

/// The schedules of every loaded version, by function.
fn loaded_schedules(registry: &Registry) -> Vec<(String, crate::manifest::Schedule)> {
    let versions = registry.list().into_iter().filter_map(|function| function.current());
    versions
        .flat_map(|version| {
            let name = version.manifest.name.clone();
            version.manifest.schedules.iter().map(move |s| (name.clone(), s.clone())).collect::<Vec<_>>()
        })
        .collect()
}

/// What the function gets as `input`.
fn input(run: &Run) -> Value {
    json!({
        "trigger": "schedule",
        "schedule": run.key.name,
        "scheduled_for": run.zone.format(run.scheduled_for),
        "payload": run.payload,
        "attempt": run.attempt,
        "late": run.late,
    })
}

/// What its execution record says started it.
fn trigger(run: &Run) -> Trigger {
    Trigger::Schedule {
        name: run.key.name.clone(),
        scheduled_for: run.zone.format(run.scheduled_for),
        attempt: run.attempt,
        late: run.late,
        manual: run.manual,
    }
}

/// What the scheduler thread hears.
enum Message {
    /// The registry changed.
    Changed,
    /// A run ended.
    Finished,
    /// Stop; runs in flight get this long to finish.
    Stop(Duration),
}

/// The running scheduler thread and its runners. [`Scheduler::stop`] (or
/// dropping it, with no grace) stops and joins them.
pub struct Scheduler {
    tx: Sender<Message>,
    thread: Option<JoinHandle<()>>,
}

impl Scheduler {
    /// Starts the scheduler over `schedules`, which must be
    /// [`Schedules::scheduling`].
    pub fn start(schedules: Arc<Schedules>) -> Result<Scheduler, Error> {
        let (tx, rx) = mpsc::channel();
        schedules.registry().watch_with(tx.clone(), |_| Message::Changed);
        let runners = Runners::start(schedules.clone(), tx.clone())?;
        let thread = std::thread::Builder::new()
            .name("scheduler".into())
            .spawn(move || run(&rx, &schedules, runners))
            .map_err(Error::thread("scheduler"))?;
        Ok(Scheduler { tx, thread: Some(thread) })
    }

    /// Starts no new run, waits up to `grace` for runs in flight, and joins
    /// the threads (those still running a function after `grace` are left
    /// to end with the process).
    pub fn stop(mut self, grace: Duration) {
        self.stop_within(grace);
    }

    fn stop_within(&mut self, grace: Duration) {
        let _ = self.tx.send(Message::Stop(grace));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for Scheduler {
    fn drop(&mut self) {
        self.stop_within(Duration::ZERO);
    }
}

/// The scheduler thread: hand out what is due, save, wait for the next due
/// time or a message.
fn run(rx: &Receiver<Message>, schedules: &Schedules, runners: Runners) {
    loop {
        let wait = schedules.dispatch(schedules.clock.now(), &runners);
        schedules.save();
        match rx.recv_timeout(wait) {
            Ok(Message::Changed | Message::Finished) | Err(RecvTimeoutError::Timeout) => {}
            Ok(Message::Stop(grace)) => return runners.stop(grace),
            Err(RecvTimeoutError::Disconnected) => return runners.stop(Duration::ZERO),
        }
    }
}
