//! What is due when: the [`Board`] of every schedule the server knows, with
//! its next run, its last run, its counters and its runs in flight. Pure:
//! every method takes `now`, so the rules are unit-tested with fixed
//! instants and no threads:
//!
//! - an interval keeps its cadence from the last scheduled run (across a
//!   restart too); a cron schedule runs at its next time after now;
//! - missed cron and interval runs are not caught up: after a stall or a
//!   forward clock jump the next run is the next one after now;
//! - a clock set back does not repeat cron times already run (the next
//!   time stays where it was); an interval whose next run is suddenly more
//!   than one interval away is brought back to one interval from now;
//! - a one-time schedule runs once: the state file remembers that it ran,
//!   and one that came due while alyx was stopped runs at start, late. One
//!   whose time had passed before alyx ever saw it never runs (a stale
//!   date in a copied folder must not fire);
//! - with `skip_if_running`, a run that comes due while the schedule's last
//!   run still goes (running, queued or waiting to retry) is skipped and
//!   counted; a one-time run skipped so is done (remembered as if it ran),
//!   so it does not run late at the next start;
//! - a failed run is retried `max_retries` times, after 1 s, 2 s, 4 s...
//!   (at most a minute), with the same `scheduled_for`.

use std::collections::BTreeMap;
use std::time::Duration;

use jiff::{SignedDuration, Timestamp};
use serde_json::Value;

use super::when::{When, Zone, next_after};
use crate::history::Outcome;
use crate::manifest::Schedule;
use crate::random::unique_id;

/// A schedule's identity: its function and its name.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Key {
    pub function: String,
    pub name: String,
}

/// One run of a schedule, handed to whoever runs it.
#[derive(Debug, Clone, PartialEq)]
pub struct Run {
    pub key: Key,
    /// The time the run was due (a late one-time run: its original time).
    pub scheduled_for: Timestamp,
    /// 1 for the run itself, 2 for its first retry...
    pub attempt: u32,
    /// A one-time run that came due while alyx was stopped.
    pub late: bool,
    /// Started by `POST /api/schedules/{function}/{name}/trigger`.
    pub manual: bool,
    /// The request id of its execution record.
    pub request_id: String,
    /// `config.input`, handed to the function as `input.payload`.
    pub payload: Value,
    /// The schedule's zone, in which `scheduled_for` is shown.
    pub zone: Zone,
}

/// The last run of a schedule, as the API shows it and the state file
/// keeps it.
#[derive(Debug, Clone, PartialEq)]
pub struct LastRun {
    pub scheduled_for: Timestamp,
    pub started_at: Timestamp,
    pub request_id: String,
    pub attempt: u32,
    pub late: bool,
    pub manual: bool,
    /// `None` while it runs.
    pub outcome: Option<Outcome>,
    /// The error code of a failed run.
    pub error: Option<String>,
}

/// A one-time schedule's instant, and whether its run has started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OneTime {
    pub at: Timestamp,
    pub ran: bool,
}

/// What the state file keeps of one schedule.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Saved {
    pub last: Option<LastRun>,
    pub one_time: Option<OneTime>,
}

/// Why a schedule cannot be run by hand now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Refused {
    /// The function has no schedule of that name.
    Unknown,
    /// Its last run still goes, and it has `skip_if_running`.
    Running,
}

/// One schedule as `GET /api/schedules` shows it.
#[derive(Debug, Clone, PartialEq)]
pub struct View {
    pub key: Key,
    pub schedule: Schedule,
    pub next_run: Option<Timestamp>,
    pub retry_at: Option<Timestamp>,
    pub last: Option<LastRun>,
    pub runs: u64,
    pub skips: u64,
    pub running: bool,
}

/// A retry waiting for its time.
#[derive(Debug, Clone)]
struct Retry {
    at: Timestamp,
    run: Run,
}

/// One schedule on the board.
#[derive(Debug, Clone)]
struct Entry {
    schedule: Schedule,
    /// When it runs next by itself; `None`: never (disabled, done, or the
    /// scheduler is off).
    next: Option<Timestamp>,
    /// Set when `next` is a late run: the time it was due.
    late_for: Option<Timestamp>,
    runs: u64,
    skips: u64,
    /// Runs handed out and not finished.
    in_flight: u32,
    retry: Option<Retry>,
}

impl Entry {
    fn new(schedule: Schedule) -> Entry {
        Entry { schedule, next: None, late_for: None, runs: 0, skips: 0, in_flight: 0, retry: None }
    }

    /// A run goes on: running, handed out, or waiting to retry.
    fn busy(&self) -> bool {
        self.in_flight > 0 || self.retry.is_some()
    }

    fn run(&self, key: &Key, scheduled_for: Timestamp, late: bool, manual: bool) -> Run {
        Run {
            key: key.clone(),
            scheduled_for,
            attempt: 1,
            late,
            manual,
            request_id: unique_id(),
            payload: self.schedule.payload.clone(),
            zone: self.schedule.zone.clone(),
        }
    }
}

/// Every schedule of the loaded functions, and the saved state of every
/// schedule ever seen (so one whose function fails to load for a while
/// keeps its one-time run remembered).
#[derive(Debug, Default)]
pub struct Board {
    entries: BTreeMap<Key, Entry>,
    saved: BTreeMap<Key, Saved>,
    /// Whether runs are planned at all (`false` under `--no-schedules`:
    /// schedules are listed and can be triggered by hand only).
    scheduling: bool,
    /// `saved` changed since it was last taken for the file.
    dirty: bool,
}

/// The longest wait before a retry.
const MAX_BACKOFF: Duration = Duration::from_secs(60);

impl Board {
    /// A board that plans runs (`scheduling`), starting from what the
    /// state file kept.
    pub fn new(saved: BTreeMap<Key, Saved>, scheduling: bool) -> Board {
        Board { entries: BTreeMap::new(), saved, scheduling, dirty: false }
    }

    /// Takes in the schedules of the loaded functions: new ones are
    /// planned, changed ones replanned (a pending retry dropped; runs in
    /// flight finish), unchanged ones keep their plan, and those no longer
    /// there leave the board.
    pub fn sync(&mut self, schedules: Vec<(String, Schedule)>, now: Timestamp) {
        let mut entries = BTreeMap::new();
        for (function, schedule) in schedules {
            let key = Key { function, name: schedule.name.clone() };
            let entry = match self.entries.remove(&key) {
                Some(entry) if entry.schedule == schedule => entry,
                Some(old) => {
                    let (runs, skips, in_flight) = (old.runs, old.skips, old.in_flight);
                    self.plan(&key, Entry { runs, skips, in_flight, ..Entry::new(schedule) }, now)
                }
                None => self.plan(&key, Entry::new(schedule), now),
            };
            entries.insert(key, entry);
        }
        self.entries = entries;
    }

    /// The first run of a schedule new to the board.
    fn plan(&mut self, key: &Key, mut entry: Entry, now: Timestamp) -> Entry {
        if !self.scheduling || !entry.schedule.enabled {
            return entry;
        }
        let saved = self.saved.get(key).cloned().unwrap_or_default();
        let schedule = &entry.schedule;
        let last = saved.last.filter(|last| !last.manual).map(|last| last.scheduled_for);
        entry.next = match &schedule.when {
            When::Interval(every) => Some(match last {
                Some(last) => cadence(last, *every, now),
                None => now + *every,
            }),
            When::Cron(cron) => next_after(cron, &schedule.zone, last.map_or(now, |l| l.max(now))),
            When::Once(at) => {
                let (next, late_for) = self.plan_once(key, *at, saved.one_time, now);
                entry.late_for = late_for;
                next
            }
        };
        entry
    }

    /// A one-time schedule: done, due (late if its time passed while alyx
    /// was stopped), or seen for the first time.
    fn plan_once(
        &mut self,
        key: &Key,
        at: Timestamp,
        known: Option<OneTime>,
        now: Timestamp,
    ) -> (Option<Timestamp>, Option<Timestamp>) {
        match known.filter(|known| known.at == at) {
            Some(OneTime { ran: true, .. }) => (None, None),
            Some(_) if at <= now => (Some(now), Some(at)),
            Some(_) => (Some(at), None),
            None if at <= now => {
                log::warn!(
                    "schedule {}/{}: its one-time run at {} had passed before it was first loaded; it will not run",
                    key.function,
                    key.name,
                    Zone::utc().format(at)
                );
                (None, None)
            }
            None => {
                self.saved.entry(key.clone()).or_default().one_time = Some(OneTime { at, ran: false });
                self.dirty = true;
                (Some(at), None)
            }
        }
    }

    /// The runs due at `now`, with each schedule moved to its next run;
    /// a run due while the last still goes is skipped (and counted) if the
    /// schedule says so.
    pub fn due(&mut self, now: Timestamp) -> Vec<Run> {
        let mut runs = Vec::new();
        for (key, entry) in &mut self.entries {
            if let Some(retry) = entry.retry.take_if(|retry| retry.at <= now) {
                entry.in_flight += 1;
                runs.push(retry.run);
            }
            let Some(at) = entry.next else { continue };
            if let When::Interval(every) = entry.schedule.when
                && at > now + every
            {
                entry.next = Some(now + every);
                continue;
            }
            if at > now {
                continue;
            }
            entry.next = following(&entry.schedule, at, now);
            let scheduled_for = entry.late_for.take();
            if entry.busy() && entry.schedule.skip_if_running {
                entry.skips += 1;
                log::warn!("schedule {}/{}: skipped, its last run still goes", key.function, key.name);
                if let When::Once(at) = entry.schedule.when {
                    self.dirty |= mark_ran(&mut self.saved, key, at);
                }
                continue;
            }
            entry.in_flight += 1;
            runs.push(entry.run(key, scheduled_for.unwrap_or(at), scheduled_for.is_some(), false));
        }
        runs
    }

    /// A run by hand, now, recorded as `request_id`.
    pub fn manual(&mut self, key: &Key, now: Timestamp, request_id: &str) -> Result<Run, Refused> {
        let entry = self.entries.get_mut(key).ok_or(Refused::Unknown)?;
        if entry.busy() && entry.schedule.skip_if_running {
            return Err(Refused::Running);
        }
        entry.in_flight += 1;
        Ok(Run { request_id: request_id.to_string(), ..entry.run(key, now, false, true) })
    }

    /// A run handed out could not start (the runners' queue was full): it
    /// counts as skipped.
    pub fn dropped(&mut self, run: &Run) {
        if let Some(entry) = self.entries.get_mut(&run.key) {
            entry.in_flight = entry.in_flight.saturating_sub(1);
            entry.skips += 1;
        }
    }

    /// A run starts: it becomes the last run, and a one-time schedule's run
    /// is remembered as done (so a crash during it does not repeat it).
    pub fn started(&mut self, run: &Run, now: Timestamp) {
        let saved = self.saved.entry(run.key.clone()).or_default();
        saved.last = Some(LastRun {
            scheduled_for: run.scheduled_for,
            started_at: now,
            request_id: run.request_id.clone(),
            attempt: run.attempt,
            late: run.late,
            manual: run.manual,
            outcome: None,
            error: None,
        });
        if !run.manual {
            mark_ran(&mut self.saved, &run.key, run.scheduled_for);
        }
        if let Some(entry) = self.entries.get_mut(&run.key) {
            entry.runs += 1;
        }
        self.dirty = true;
    }

    /// A run ended with `outcome` (and the error code of a failure); a
    /// failed scheduled run with retries left is retried after its backoff.
    pub fn finished(&mut self, run: &Run, outcome: Outcome, error: Option<&str>, now: Timestamp) {
        let saved = self.saved.entry(run.key.clone()).or_default();
        if let Some(last) = saved.last.as_mut().filter(|last| last.request_id == run.request_id) {
            (last.outcome, last.error) = (Some(outcome), error.map(String::from));
            self.dirty = true;
        }
        let Some(entry) = self.entries.get_mut(&run.key) else { return };
        entry.in_flight = entry.in_flight.saturating_sub(1);
        if outcome != Outcome::Ok && !run.manual && run.attempt <= entry.schedule.max_retries {
            let at = now + backoff(run.attempt);
            let retry = Run { attempt: run.attempt + 1, request_id: unique_id(), ..run.clone() };
            entry.retry = Some(Retry { at, run: retry });
        }
    }

    /// The next time something is due: a run or a retry.
    pub fn next_wake(&self) -> Option<Timestamp> {
        let retries = self.entries.values().filter_map(|e| e.retry.as_ref().map(|r| r.at));
        self.entries.values().filter_map(|e| e.next).chain(retries).min()
    }

    /// Every schedule, by function and name.
    pub fn views(&self) -> Vec<View> {
        let view = |(key, entry): (&Key, &Entry)| View {
            key: key.clone(),
            schedule: entry.schedule.clone(),
            next_run: entry.next,
            retry_at: entry.retry.as_ref().map(|r| r.at),
            last: self.saved.get(key).and_then(|s| s.last.clone()),
            runs: entry.runs,
            skips: entry.skips,
            running: entry.in_flight > 0,
        };
        self.entries.iter().map(view).collect()
    }

    /// The zone of a schedule on the board.
    pub fn zone(&self, key: &Key) -> Option<Zone> {
        self.entries.get(key).map(|entry| entry.schedule.zone.clone())
    }

    /// What the state file is to hold, when it changed since last taken.
    pub fn take_changes(&mut self) -> Option<BTreeMap<Key, Saved>> {
        std::mem::take(&mut self.dirty).then(|| self.saved.clone())
    }
}

/// Remembers the one-time run at `at` of `key` as done; whether that
/// changed the saved state.
fn mark_ran(saved: &mut BTreeMap<Key, Saved>, key: &Key, at: Timestamp) -> bool {
    let pending = saved.get_mut(key).and_then(|s| s.one_time.as_mut()).filter(|o| o.at == at && !o.ran);
    pending.map(|o| o.ran = true).is_some()
}

/// The first time `last + k × every` (k ≥ 1) after `now`.
fn cadence(last: Timestamp, every: Duration, now: Timestamp) -> Timestamp {
    let next = last + every;
    if next > now {
        return next;
    }
    let behind = now.duration_since(last).as_nanos();
    let steps = behind / every.as_nanos().max(1) as i128 + 1;
    let step = i64::try_from(every.as_nanos() as i128 * steps).unwrap_or(i64::MAX);
    last.checked_add(SignedDuration::from_nanos(step)).unwrap_or(Timestamp::MAX)
}

/// The run after the one due at `at`, as of `now` (no catching up).
fn following(schedule: &Schedule, at: Timestamp, now: Timestamp) -> Option<Timestamp> {
    match &schedule.when {
        When::Interval(every) => Some(cadence(at, *every, now)),
        When::Cron(cron) => next_after(cron, &schedule.zone, at.max(now)),
        When::Once(_) => None,
    }
}

/// The wait before retry `attempt` (1 s, doubling, at most a minute).
fn backoff(attempt: u32) -> Duration {
    Duration::from_secs(1u64 << attempt.saturating_sub(1).min(6)).min(MAX_BACKOFF)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::ScheduleType;

    fn ts(text: &str) -> Timestamp {
        text.parse().unwrap()
    }

    fn schedule(name: &str, kind: ScheduleType, expression: &str, zone: &str) -> Schedule {
        let zone = Zone::parse(zone).unwrap();
        let when = match kind {
            ScheduleType::Cron => When::cron(expression),
            ScheduleType::Interval => When::interval(expression),
            ScheduleType::OneTime => When::once(expression, &zone),
        };
        Schedule {
            name: name.into(),
            kind,
            expression: expression.into(),
            when: when.unwrap(),
            zone,
            payload: Value::Null,
            skip_if_running: true,
            max_retries: 0,
            enabled: true,
        }
    }

    fn interval(expression: &str) -> Schedule {
        schedule("s", ScheduleType::Interval, expression, "UTC")
    }

    fn cron(expression: &str, zone: &str) -> Schedule {
        schedule("s", ScheduleType::Cron, expression, zone)
    }

    fn once(expression: &str) -> Schedule {
        schedule("s", ScheduleType::OneTime, expression, "UTC")
    }

    fn key() -> Key {
        Key { function: "f".into(), name: "s".into() }
    }

    fn board_with(schedule: Schedule, saved: BTreeMap<Key, Saved>, now: &str) -> Board {
        let mut board = Board::new(saved, true);
        board.sync(vec![("f".into(), schedule)], ts(now));
        board
    }

    fn board_at(schedule: Schedule, now: &str) -> Board {
        board_with(schedule, BTreeMap::new(), now)
    }

    /// Runs what is due at `now` to completion; their scheduled times.
    fn tick(board: &mut Board, now: &str) -> Vec<String> {
        let runs = board.due(ts(now));
        for run in &runs {
            board.started(run, ts(now));
            board.finished(run, Outcome::Ok, None, ts(now));
        }
        runs.iter().map(|r| r.zone.format(r.scheduled_for)).collect()
    }

    fn next(board: &Board) -> Option<String> {
        board.next_wake().map(|at| Zone::utc().format(at))
    }

    #[test]
    fn an_interval_runs_one_interval_after_load_and_keeps_its_cadence() {
        let mut board = board_at(interval("10s"), "2026-01-01T00:00:00Z");
        assert_eq!(next(&board).as_deref(), Some("2026-01-01T00:00:10+00:00"));
        assert!(tick(&mut board, "2026-01-01T00:00:09Z").is_empty());
        assert_eq!(tick(&mut board, "2026-01-01T00:00:10.2Z"), ["2026-01-01T00:00:10+00:00"]);
        assert_eq!(next(&board).as_deref(), Some("2026-01-01T00:00:20+00:00"), "the cadence, not now + 10s");
    }

    #[test]
    fn missed_interval_and_cron_runs_are_not_caught_up() {
        let mut board = board_at(interval("10s"), "2026-01-01T00:00:00Z");
        assert_eq!(
            tick(&mut board, "2026-01-01T00:01:05Z"),
            ["2026-01-01T00:00:10+00:00"],
            "one run, not six"
        );
        assert_eq!(next(&board).as_deref(), Some("2026-01-01T00:01:10+00:00"));
        let mut board = board_at(cron("*/5 * * * *", "UTC"), "2026-01-01T00:00:00Z");
        assert_eq!(tick(&mut board, "2026-01-01T01:02:00Z"), ["2026-01-01T00:05:00+00:00"]);
        assert_eq!(next(&board).as_deref(), Some("2026-01-01T01:05:00+00:00"));
    }

    #[test]
    fn a_clock_set_back_repeats_no_cron_time_and_does_not_stall_an_interval() {
        let mut board = board_at(cron("0 * * * *", "UTC"), "2026-01-01T00:30:00Z");
        assert_eq!(tick(&mut board, "2026-01-01T01:00:00Z"), ["2026-01-01T01:00:00+00:00"]);
        assert!(tick(&mut board, "2026-01-01T00:40:00Z").is_empty(), "the clock went back 20 minutes");
        assert_eq!(next(&board).as_deref(), Some("2026-01-01T02:00:00+00:00"), "01:00 is not run again");
        let mut board = board_at(interval("10s"), "2026-01-01T01:00:00Z");
        assert!(tick(&mut board, "2026-01-01T00:00:00Z").is_empty(), "the clock went back an hour");
        assert_eq!(next(&board).as_deref(), Some("2026-01-01T00:00:10+00:00"));
    }

    #[test]
    fn cron_runs_follow_the_zone_through_a_daylight_saving_change() {
        let mut board = board_at(cron("30 2 * * *", "Europe/Berlin"), "2026-03-28T12:00:00Z");
        assert_eq!(tick(&mut board, "2026-03-29T01:00:00Z"), ["2026-03-29T03:00:00+02:00"]);
        assert_eq!(next(&board).as_deref(), Some("2026-03-30T00:30:00+00:00"));
    }

    #[test]
    fn a_run_due_while_the_last_still_goes_is_skipped_and_counted() {
        let mut board = board_at(interval("1s"), "2026-01-01T00:00:00Z");
        let first = board.due(ts("2026-01-01T00:00:01Z"));
        assert_eq!(first.len(), 1);
        board.started(&first[0], ts("2026-01-01T00:00:01Z"));
        assert!(board.due(ts("2026-01-01T00:00:02Z")).is_empty());
        assert!(board.due(ts("2026-01-01T00:00:03Z")).is_empty());
        board.finished(&first[0], Outcome::Ok, None, ts("2026-01-01T00:00:03.5Z"));
        assert_eq!(board.due(ts("2026-01-01T00:00:04Z")).len(), 1);
        let view = &board.views()[0];
        assert_eq!((view.runs, view.skips, view.running), (1, 2, true));
    }

    #[test]
    fn without_skip_if_running_runs_overlap() {
        let mut schedule = interval("1s");
        schedule.skip_if_running = false;
        let mut board = board_at(schedule, "2026-01-01T00:00:00Z");
        assert_eq!(board.due(ts("2026-01-01T00:00:01Z")).len(), 1);
        assert_eq!(board.due(ts("2026-01-01T00:00:02Z")).len(), 1);
        assert_eq!(board.views()[0].skips, 0);
    }

    #[test]
    fn a_one_time_run_happens_once_and_is_remembered() {
        let mut board = board_at(once("2026-01-01T00:10:00Z"), "2026-01-01T00:00:00Z");
        let pending = board.take_changes().expect("the pending run is saved at once");
        assert_eq!(pending[&key()].one_time, Some(OneTime { at: ts("2026-01-01T00:10:00Z"), ran: false }));
        assert_eq!(tick(&mut board, "2026-01-01T00:10:00Z"), ["2026-01-01T00:10:00+00:00"]);
        assert_eq!(board.next_wake(), None);
        let saved = board.take_changes().unwrap();
        assert_eq!(saved[&key()].one_time.map(|o| o.ran), Some(true));
        // After a restart with that state: nothing more.
        let mut restarted = board_with(once("2026-01-01T00:10:00Z"), saved, "2026-01-01T01:00:00Z");
        assert!(tick(&mut restarted, "2026-01-01T01:00:00Z").is_empty());
        assert_eq!(restarted.views()[0].last.as_ref().map(|l| l.outcome), Some(Some(Outcome::Ok)));
    }

    #[test]
    fn a_one_time_run_missed_while_stopped_runs_at_start_marked_late() {
        let mut board = board_at(once("2026-01-01T00:10:00Z"), "2026-01-01T00:00:00Z");
        let saved = board.take_changes().unwrap();
        let mut restarted = board_with(once("2026-01-01T00:10:00Z"), saved, "2026-01-01T02:00:00Z");
        let runs = restarted.due(ts("2026-01-01T02:00:00Z"));
        assert_eq!(runs.len(), 1);
        assert_eq!((runs[0].scheduled_for, runs[0].late), (ts("2026-01-01T00:10:00Z"), true));
    }

    #[test]
    fn a_one_time_run_skipped_for_a_run_by_hand_is_done_and_not_run_late_after_a_restart() {
        let mut board = board_at(once("2026-01-01T00:10:00Z"), "2026-01-01T00:00:00Z");
        let by_hand = board.manual(&key(), ts("2026-01-01T00:09:00Z"), "m1").unwrap();
        board.started(&by_hand, ts("2026-01-01T00:09:00Z"));
        assert!(board.due(ts("2026-01-01T00:10:00Z")).is_empty(), "skipped: the run by hand still goes");
        assert_eq!((board.views()[0].skips, board.next_wake()), (1, None));
        let saved = board.take_changes().expect("the skip is saved");
        assert_eq!(saved[&key()].one_time, Some(OneTime { at: ts("2026-01-01T00:10:00Z"), ran: true }));
        let mut restarted = board_with(once("2026-01-01T00:10:00Z"), saved, "2026-01-01T01:00:00Z");
        assert!(restarted.due(ts("2026-01-01T01:00:00Z")).is_empty(), "not run late");
        assert_eq!(restarted.next_wake(), None);
    }

    #[test]
    fn a_one_time_schedule_first_seen_after_its_time_never_runs() {
        let mut board = board_at(once("2026-01-01T00:10:00Z"), "2026-01-02T00:00:00Z");
        assert!(board.due(ts("2026-01-02T00:00:00Z")).is_empty());
        assert_eq!(board.next_wake(), None);
    }

    #[test]
    fn a_changed_one_time_expression_is_a_new_run() {
        let mut board = board_at(once("2026-01-01T00:10:00Z"), "2026-01-01T00:00:00Z");
        tick(&mut board, "2026-01-01T00:10:00Z");
        board.sync(vec![("f".into(), once("2026-01-01T00:20:00Z"))], ts("2026-01-01T00:11:00Z"));
        assert_eq!(tick(&mut board, "2026-01-01T00:20:00Z"), ["2026-01-01T00:20:00+00:00"]);
    }

    #[test]
    fn failed_runs_are_retried_with_backoff_then_given_up() {
        let mut schedule = once("2026-01-01T00:00:10Z");
        schedule.max_retries = 2;
        let mut board = board_at(schedule, "2026-01-01T00:00:00Z");
        let mut attempts = Vec::new();
        let mut now = ts("2026-01-01T00:00:10Z");
        for _ in 0..3 {
            let runs = board.due(now);
            assert_eq!(runs.len(), 1, "at {now}");
            board.started(&runs[0], now);
            board.finished(&runs[0], Outcome::Error, Some("TRAP"), now);
            attempts.push((runs[0].attempt, runs[0].scheduled_for));
            now = board.next_wake().unwrap_or(now);
        }
        let first = ts("2026-01-01T00:00:10Z");
        assert_eq!(attempts, [(1, first), (2, first), (3, first)]);
        assert_eq!(board.next_wake(), None, "two retries, then no more");
        let last = board.views()[0].last.clone().unwrap();
        assert_eq!(
            (last.attempt, last.outcome, last.error.as_deref()),
            (3, Some(Outcome::Error), Some("TRAP"))
        );
        assert_eq!([backoff(1), backoff(2), backoff(3), backoff(9)].map(|d| d.as_secs()), [1, 2, 4, 60]);
    }

    #[test]
    fn runs_by_hand_need_a_known_schedule_and_no_run_going() {
        let mut board = board_at(interval("1h"), "2026-01-01T00:00:00Z");
        let other = Key { function: "f".into(), name: "nope".into() };
        assert_eq!(board.manual(&other, ts("2026-01-01T00:00:00Z"), "m0"), Err(Refused::Unknown));
        let run = board.manual(&key(), ts("2026-01-01T00:00:05Z"), "m1").unwrap();
        assert_eq!(
            (run.manual, run.scheduled_for, run.request_id.as_str()),
            (true, ts("2026-01-01T00:00:05Z"), "m1")
        );
        assert_eq!(board.manual(&key(), ts("2026-01-01T00:00:06Z"), "m2"), Err(Refused::Running));
        board.started(&run, ts("2026-01-01T00:00:05Z"));
        board.finished(&run, Outcome::Error, None, ts("2026-01-01T00:00:06Z"));
        assert_eq!(next(&board).as_deref(), Some("2026-01-01T01:00:00+00:00"), "no retry, plan unchanged");
    }

    #[test]
    fn disabled_schedules_and_a_board_that_does_not_schedule_plan_nothing() {
        let mut disabled = interval("1s");
        disabled.enabled = false;
        assert_eq!(board_at(disabled, "2026-01-01T00:00:00Z").next_wake(), None);
        let mut off = Board::new(BTreeMap::new(), false);
        off.sync(vec![("f".into(), once("2026-01-01T00:10:00Z"))], ts("2026-01-01T00:00:00Z"));
        assert_eq!((off.next_wake(), off.take_changes()), (None, None), "nothing planned or saved");
        assert!(off.manual(&key(), ts("2026-01-01T00:00:00Z"), "m3").is_ok(), "but it runs by hand");
    }

    #[test]
    fn reloads_keep_unchanged_schedules_and_replan_changed_ones() {
        let mut board = board_at(interval("10s"), "2026-01-01T00:00:00Z");
        tick(&mut board, "2026-01-01T00:00:10Z");
        board.sync(vec![("f".into(), interval("10s"))], ts("2026-01-01T00:00:15Z"));
        assert_eq!(next(&board).as_deref(), Some("2026-01-01T00:00:20+00:00"), "unchanged");
        board.sync(vec![("f".into(), interval("1m"))], ts("2026-01-01T00:00:15Z"));
        assert_eq!(next(&board).as_deref(), Some("2026-01-01T00:01:10+00:00"), "from the last run");
        assert_eq!(board.views()[0].runs, 1, "counters stay");
        board.sync(Vec::new(), ts("2026-01-01T00:00:16Z"));
        assert!(board.views().is_empty());
    }

    #[test]
    fn an_interval_restarted_keeps_the_cadence_of_its_last_run() {
        let mut board = board_at(interval("10s"), "2026-01-01T00:00:00Z");
        tick(&mut board, "2026-01-01T00:00:10Z");
        let saved = board.take_changes().unwrap();
        let restarted = board_with(interval("10s"), saved, "2026-01-01T00:00:43Z");
        assert_eq!(next(&restarted).as_deref(), Some("2026-01-01T00:00:50+00:00"));
    }
}
