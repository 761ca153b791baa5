//! Async hooks: deliveries made after an event's answer, durably and at
//! least once. An accepted delivery is in the journal (synced) before the
//! caller hears 202, and leaves it only when its function succeeded or it
//! is dropped; after a crash, the journal's deliveries are made at start.
//! A failed attempt is retried after `retry_delay`, doubled for each next
//! (at most [`MAX_BACKOFF`]), `max_retries` times; then the delivery is
//! kept as failed, listed, until retried or dropped.
//!
//! A fixed set of worker threads takes the deliveries that are due from
//! one queue ordered by due time; they wait on a condition variable until
//! the next is due or one is added, and stop when told (deliveries being
//! made finish; the rest stay in the journal for the next start).

use std::cmp::Reverse;
use std::collections::{BTreeMap, BinaryHeap, HashMap};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use serde::{Deserialize, Serialize};
use serde_json::{Value, json};

use super::chain;
use super::event::Event;
use super::matching::Subscriber;
use crate::invoke::{Caller, Invoker};
use crate::journal::{Journal, JournalError};
use crate::manifest::{EventConfig, HookMode, OnFailure};
use crate::sync::lock;
use crate::units::format_rfc3339;

/// The longest wait between two attempts.
pub const MAX_BACKOFF: Duration = Duration::from_secs(3600);

/// One delivery of one event to one function, as the journal keeps it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
struct Delivery {
    /// The event as hooks see it ([`Event::to_json`]).
    event: Value,
    depth: u32,
    function: String,
    /// Who raised the event: `context.auth` of each attempt.
    caller: CallerKind,
    /// The name of the API key it was raised with (absent in entries
    /// written before keys had names).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    key: Option<String>,
    timeout_ms: u64,
    max_retries: u32,
    retry_delay_ms: u64,
    /// Attempts made so far.
    attempts: u32,
    accepted_at_ms: u64,
    /// Set once the last retry failed.
    failed_at_ms: Option<u64>,
    last_error: Option<(String, String)>,
    /// About the memory (and journal bytes) it holds: its event's size.
    #[serde(skip)]
    size: u64,
}

/// The key name of an API-key caller journaled before keys had names.
const UNNAMED_KEY: &str = "unnamed";

/// A [`Caller`] as the journal spells it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum CallerKind {
    Anonymous,
    ApiKey,
    Internal,
    Admin,
}

impl CallerKind {
    fn of(caller: &Caller) -> CallerKind {
        match caller {
            Caller::Anonymous => CallerKind::Anonymous,
            Caller::ApiKey { .. } => CallerKind::ApiKey,
            Caller::Internal { .. } => CallerKind::Internal,
            Caller::Admin => CallerKind::Admin,
        }
    }

    /// `key`: the API key's name; entries journaled before keys had
    /// names have none, and read back as [`UNNAMED_KEY`].
    fn caller(self, depth: u32, key: Option<&str>) -> Caller {
        match self {
            CallerKind::Anonymous => Caller::Anonymous,
            CallerKind::ApiKey => Caller::ApiKey { name: key.unwrap_or(UNNAMED_KEY).into() },
            CallerKind::Internal => Caller::Internal { depth },
            CallerKind::Admin => Caller::Admin,
        }
    }
}

impl Delivery {
    /// A delivery of `event` from `caller`, for no hook yet: the event is
    /// written as JSON and weighed once, then [`Delivery::to`] each hook.
    fn new(event: &Event, caller: &Caller) -> Delivery {
        let json = event.to_json();
        let size = serde_json::to_vec(&json).map_or(0, |bytes| bytes.len() as u64) + RECORD_OVERHEAD;
        Delivery {
            event: json,
            depth: event.depth,
            function: String::new(),
            caller: CallerKind::of(caller),
            key: match caller {
                Caller::ApiKey { name } => Some(name.to_string()),
                _ => None,
            },
            timeout_ms: 0,
            max_retries: 0,
            retry_delay_ms: 0,
            attempts: 0,
            accepted_at_ms: now_ms(),
            failed_at_ms: None,
            last_error: None,
            size,
        }
    }

    /// This delivery, made to `hook`.
    fn to(&self, hook: &Subscriber) -> Delivery {
        Delivery {
            function: hook.function.clone(),
            timeout_ms: millis(hook.config.timeout),
            max_retries: hook.config.max_retries,
            retry_delay_ms: millis(hook.config.retry_delay),
            ..self.clone()
        }
    }

    fn event_id(&self) -> &str {
        self.event["id"].as_str().unwrap_or_default()
    }

    /// The wait after the `attempts`th failed attempt.
    fn backoff(&self) -> Duration {
        let doublings = self.attempts.saturating_sub(1).min(31);
        Duration::from_millis(self.retry_delay_ms.saturating_mul(1 << doublings)).min(MAX_BACKOFF)
    }

    /// The subscriber this delivery was made for, to run it as a hook.
    fn hook(&self) -> Subscriber {
        let config = EventConfig {
            timeout: Duration::from_millis(self.timeout_ms),
            on_failure: OnFailure::Reject,
            max_retries: self.max_retries,
            retry_delay: Duration::from_millis(self.retry_delay_ms),
        };
        Subscriber { function: self.function.clone(), mode: HookMode::Async, priority: 0, config }
    }

    fn encode(&self) -> Vec<u8> {
        serde_json::to_vec(self).expect("a delivery serializes")
    }

    /// As `GET /api/events/failed` lists it.
    fn to_json(&self, id: &str) -> Value {
        let at = |ms: u64| format_rfc3339(UNIX_EPOCH + Duration::from_millis(ms));
        json!({
            "delivery_id": id,
            "event_id": self.event_id(),
            "function": self.function,
            "attempts": self.attempts,
            "accepted_at": at(self.accepted_at_ms),
            "failed_at": self.failed_at_ms.map(at),
            "error": self.last_error.as_ref().map(|(code, message)| json!({"code": code, "message": message})),
            "event": self.event,
        })
    }
}

/// What a delivery of `event` weighs (before the sync chain, an estimate
/// for [`Deliveries::reserve`]): the event as JSON, and room for the rest
/// of the record.
pub fn event_size(event: &Event) -> u64 {
    Delivery::new(event, &Caller::Anonymous).size
}

/// The bytes of a delivery record besides its event (function, settings,
/// times, the last error).
const RECORD_OVERHEAD: u64 = 512;

fn millis(d: Duration) -> u64 {
    u64::try_from(d.as_millis()).unwrap_or(u64::MAX)
}

fn now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, millis)
}

/// The queue of async deliveries and its workers.
pub struct Deliveries {
    shared: Arc<Shared>,
    workers: Mutex<Vec<JoinHandle<()>>>,
}

struct Shared {
    journal: Journal,
    invoker: Arc<Invoker>,
    limits: Limits,
    state: Mutex<State>,
    /// Told when a delivery is added or the workers must stop.
    wake: Condvar,
}

#[derive(Default)]
struct State {
    /// Ids of pending deliveries by due time (with a sequence number so
    /// that equal times keep their order).
    due: BinaryHeap<Reverse<(Instant, u64, String)>>,
    sequence: u64,
    /// Deliveries not yet made (waiting, or being made), by id.
    pending: HashMap<String, Delivery>,
    /// Deliveries whose last retry failed, by id.
    failed: BTreeMap<String, Delivery>,
    /// Places promised by [`Deliveries::reserve`] and not yet used.
    reserved: usize,
    /// The sizes of the pending and failed deliveries.
    bytes: u64,
    /// Bytes promised by [`Deliveries::reserve`] and not yet used.
    reserved_bytes: u64,
    stopping: bool,
}

impl State {
    fn used(&self) -> usize {
        self.pending.len() + self.failed.len() + self.reserved
    }

    fn used_bytes(&self) -> u64 {
        self.bytes + self.reserved_bytes
    }

    fn schedule(&mut self, id: String, delivery: Delivery, at: Instant) {
        self.sequence += 1;
        self.due.push(Reverse((at, self.sequence, id.clone())));
        self.pending.insert(id, delivery);
    }
}

/// How much the async queue holds at most: deliveries waiting or failed,
/// and their bytes (memory and journal alike).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    pub deliveries: usize,
    pub bytes: u64,
}

/// Why [`Deliveries::reserve`] refused: which limit is reached.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum QueueFull {
    Deliveries(usize),
    Bytes(u64),
}

/// Places for one event's async deliveries, taken before its sync chain
/// runs; given back when dropped (a committed reservation's deliveries
/// count by then as held).
pub struct Reservation<'a> {
    deliveries: &'a Deliveries,
    places: usize,
    bytes: u64,
}

impl Drop for Reservation<'_> {
    fn drop(&mut self) {
        let mut state = self.deliveries.state();
        state.reserved -= self.places;
        state.reserved_bytes -= self.bytes;
    }
}

impl Reservation<'_> {
    /// Writes the deliveries of `event` to `hooks` to the journal (synced)
    /// and queues them. Returns how many.
    pub fn commit(self, event: &Event, hooks: &[Subscriber], caller: &Caller) -> Result<usize, JournalError> {
        let accepted = Delivery::new(event, caller);
        let deliveries: Vec<(String, Delivery)> = hooks
            .iter()
            .enumerate()
            .map(|(i, hook)| (format!("{}.{i}", event.id), accepted.to(hook)))
            .collect();
        write_all(&self.deliveries.shared.journal, &deliveries)?;
        let now = Instant::now();
        let mut state = self.deliveries.state();
        for (id, delivery) in deliveries {
            state.bytes += delivery.size;
            state.schedule(id, delivery, now);
        }
        drop(state);
        self.deliveries.shared.wake.notify_all();
        Ok(hooks.len())
    }
}

/// How many of the journal's deliveries were read back at start (those
/// that cannot be read are logged and removed).
pub struct Recovered {
    pub pending: usize,
    pub failed: usize,
}

impl Deliveries {
    /// Starts `workers` threads delivering through `invoker`, with the
    /// journal's `entries` (from [`crate::journal::open`]) queued or listed
    /// as failed.
    pub fn start(
        journal: Journal,
        entries: Vec<(String, Vec<u8>)>,
        invoker: Arc<Invoker>,
        limits: Limits,
        workers: usize,
    ) -> std::io::Result<(Deliveries, Recovered)> {
        let shared = Arc::new(Shared {
            journal,
            invoker,
            limits,
            state: Mutex::new(State::default()),
            wake: Condvar::new(),
        });
        let recovered = shared.recover(entries);
        let mut threads = Vec::with_capacity(workers);
        for n in 0..workers {
            let worker = shared.clone();
            let thread = std::thread::Builder::new().name(format!("event-{n}")).spawn(move || worker.work());
            match thread {
                Ok(thread) => threads.push(thread),
                Err(error) => {
                    let deliveries = Deliveries { shared, workers: Mutex::new(threads) };
                    deliveries.stop();
                    return Err(error);
                }
            }
        }
        Ok((Deliveries { shared, workers: Mutex::new(threads) }, recovered))
    }

    fn state(&self) -> MutexGuard<'_, State> {
        lock(&self.shared.state)
    }

    /// Takes `places` deliveries of `size` bytes each for an event, or
    /// refuses when the waiting and failed deliveries would pass a limit.
    pub fn reserve(&self, places: usize, size: u64) -> Result<Reservation<'_>, QueueFull> {
        let Limits { deliveries, bytes } = self.shared.limits;
        let wanted = size.saturating_mul(places as u64);
        let mut state = self.state();
        if places > 0 && state.used() + places > deliveries {
            return Err(QueueFull::Deliveries(deliveries));
        }
        if places > 0 && state.used_bytes().saturating_add(wanted) > bytes {
            return Err(QueueFull::Bytes(bytes));
        }
        state.reserved += places;
        state.reserved_bytes += wanted;
        Ok(Reservation { deliveries: self, places, bytes: wanted })
    }

    /// Deliveries waiting (or being made) and failed.
    pub fn counts(&self) -> (usize, usize) {
        let state = self.state();
        (state.pending.len(), state.failed.len())
    }

    /// The failed deliveries, oldest failure first.
    pub fn failed(&self) -> Vec<Value> {
        let state = self.state();
        let mut failed: Vec<_> = state.failed.iter().collect();
        failed.sort_by_key(|(id, d)| (d.failed_at_ms, *id));
        failed.into_iter().map(|(id, d)| d.to_json(id)).collect()
    }

    /// Queues the failed deliveries of `event_id` again, with their count
    /// of attempts started anew. Returns how many.
    pub fn retry(&self, event_id: &str) -> Result<usize, JournalError> {
        let mut state = self.state();
        let ids = failed_of(&state, event_id);
        let mut again: Vec<(String, Delivery)> = Vec::with_capacity(ids.len());
        for id in ids {
            let mut delivery = state.failed[&id].clone();
            (delivery.attempts, delivery.failed_at_ms) = (0, None);
            again.push((id, delivery));
        }
        write_all(&self.shared.journal, &again)?;
        let now = Instant::now();
        let count = again.len();
        for (id, delivery) in again {
            state.failed.remove(&id);
            state.schedule(id, delivery, now);
        }
        drop(state);
        self.shared.wake.notify_all();
        Ok(count)
    }

    /// Forgets the failed deliveries of `event_id`. Returns how many.
    pub fn drop_failed(&self, event_id: &str) -> Result<usize, JournalError> {
        let mut state = self.state();
        let ids = failed_of(&state, event_id);
        let names: Vec<&str> = ids.iter().map(String::as_str).collect();
        self.shared.journal.remove_all(&names)?;
        for id in &ids {
            if let Some(gone) = state.failed.remove(id) {
                state.bytes -= gone.size;
            }
        }
        Ok(ids.len())
    }

    /// Stops the workers after the deliveries being made and joins them;
    /// the others stay in the journal for the next start. Then closes the
    /// journal.
    pub fn stop(&self) {
        self.state().stopping = true;
        self.shared.wake.notify_all();
        for worker in std::mem::take(&mut *lock(&self.workers)) {
            let _ = worker.join();
        }
        self.shared.journal.close();
    }
}

impl Drop for Deliveries {
    /// Stops as [`Deliveries::stop`] does, if nobody did (a server that
    /// failed to start after its events had).
    fn drop(&mut self) {
        self.stop();
    }
}

/// Puts `deliveries` in the journal in one synced batch.
fn write_all(journal: &Journal, deliveries: &[(String, Delivery)]) -> Result<(), JournalError> {
    let encoded: Vec<(&str, Vec<u8>)> = deliveries.iter().map(|(id, d)| (id.as_str(), d.encode())).collect();
    let entries: Vec<(&str, &[u8])> = encoded.iter().map(|(id, bytes)| (*id, bytes.as_slice())).collect();
    journal.put_all(&entries)
}

fn failed_of(state: &State, event_id: &str) -> Vec<String> {
    state.failed.iter().filter(|(_, d)| d.event_id() == event_id).map(|(id, _)| id.clone()).collect()
}

impl Shared {
    /// Queues the journal's pending deliveries now and lists its failed
    /// ones; entries that cannot be read are logged whole and removed.
    fn recover(&self, entries: Vec<(String, Vec<u8>)>) -> Recovered {
        let mut recovered = Recovered { pending: 0, failed: 0 };
        let mut state = lock(&self.state);
        let now = Instant::now();
        for (id, bytes) in entries {
            let delivery = match serde_json::from_slice::<Delivery>(&bytes) {
                Ok(delivery) => Delivery { size: bytes.len() as u64, ..delivery },
                Err(error) => {
                    let text = String::from_utf8_lossy(&bytes);
                    log::error!(
                        "events: delivery {id} in the journal cannot be read ({error}), dropped: {text}"
                    );
                    let _ = self.journal.remove(&id);
                    continue;
                }
            };
            state.bytes += delivery.size;
            if delivery.failed_at_ms.is_some() {
                state.failed.insert(id, delivery);
                recovered.failed += 1;
            } else {
                state.schedule(id, delivery, now);
                recovered.pending += 1;
            }
        }
        recovered
    }

    /// A worker: makes the deliveries that are due until told to stop.
    fn work(&self) {
        while let Some((id, delivery)) = self.next() {
            self.deliver(id, delivery);
        }
    }

    /// The next due delivery, waiting for it; `None` once stopping.
    fn next(&self) -> Option<(String, Delivery)> {
        let mut state = lock(&self.state);
        loop {
            if state.stopping {
                return None;
            }
            let now = Instant::now();
            let wait = match state.due.peek() {
                Some(Reverse((at, _, _))) if *at <= now => {
                    let Reverse((_, _, id)) = state.due.pop()?;
                    match state.pending.get(&id) {
                        Some(delivery) => return Some((id, delivery.clone())),
                        None => continue,
                    }
                }
                Some(Reverse((at, _, _))) => Some(*at - now),
                None => None,
            };
            state = match wait {
                Some(wait) => self.wake.wait_timeout(state, wait).unwrap_or_else(|e| e.into_inner()).0,
                None => self.wake.wait(state).unwrap_or_else(|e| e.into_inner()),
            };
        }
    }

    /// One attempt, then the delivery done, due again, or failed.
    fn deliver(&self, id: String, mut delivery: Delivery) {
        let event = match Event::from_json(&delivery.event, delivery.depth) {
            Ok(event) => event,
            Err(error) => return self.give_up(id, delivery, ("BAD_EVENT".into(), error)),
        };
        let caller = delivery.caller.caller(delivery.depth, delivery.key.as_deref());
        delivery.attempts += 1;
        let outcome =
            self.invoker.run(chain::invocation(&event, &delivery.hook(), &caller, delivery.attempts));
        let Some(error) = outcome.error() else {
            // Not waited for: if a crash loses it, the delivery is made
            // again, which at-least-once allows.
            if let Err(error) = self.journal.forget(&id) {
                log::error!("events: delivery {id} done but not removed from the journal: {error}");
            }
            let mut state = lock(&self.state);
            if let Some(done) = state.pending.remove(&id) {
                state.bytes -= done.size;
            }
            return;
        };
        let error = (error.code.to_string(), error.message);
        if delivery.attempts > delivery.max_retries {
            return self.give_up(id, delivery, error);
        }
        delivery.last_error = Some(error);
        let at = Instant::now() + delivery.backoff();
        if let Err(error) = self.journal.put(&id, &delivery.encode()) {
            log::error!("events: delivery {id}: attempt {} not recorded: {error}", delivery.attempts);
        }
        lock(&self.state).schedule(id, delivery, at);
    }

    /// Keeps a delivery as failed after its last attempt.
    fn give_up(&self, id: String, mut delivery: Delivery, error: (String, String)) {
        log::warn!(
            "events: delivery of event {} to {} failed after {} attempts: {}: {}",
            delivery.event_id(),
            delivery.function,
            delivery.attempts,
            error.0,
            error.1
        );
        (delivery.failed_at_ms, delivery.last_error) = (Some(now_ms()), Some(error));
        if let Err(error) = self.journal.put(&id, &delivery.encode()) {
            log::error!("events: failed delivery {id} not recorded: {error}");
        }
        let mut state = lock(&self.state);
        state.pending.remove(&id);
        state.failed.insert(id, delivery);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::manifest::EventConfig;

    fn delivery(retry_delay: Duration, attempts: u32) -> Delivery {
        let body = json!({"type": "custom", "source": "s", "action": "a"});
        let event = Event::parse(body, "e1".into(), 2).unwrap();
        let config = EventConfig { retry_delay, ..EventConfig::default() };
        let hook = Subscriber { function: "f".into(), mode: HookMode::Async, priority: 0, config };
        Delivery { attempts, ..Delivery::new(&event, &Caller::Internal { depth: 2 }).to(&hook) }
    }

    #[test]
    fn the_wait_doubles_after_each_failed_attempt_up_to_an_hour() {
        let waits: Vec<u64> =
            (1..=5).map(|n| delivery(Duration::from_millis(100), n).backoff().as_millis() as u64).collect();
        assert_eq!(waits, [100, 200, 400, 800, 1600]);
        assert_eq!(delivery(Duration::from_secs(60), 40).backoff(), MAX_BACKOFF);
        assert_eq!(delivery(Duration::from_millis(u64::MAX), 3).backoff(), MAX_BACKOFF, "no overflow");
    }

    #[test]
    fn a_delivery_reads_back_from_its_journal_bytes_with_its_caller_and_hook() {
        let written = delivery(Duration::from_millis(250), 1);
        let read: Delivery = serde_json::from_slice(&written.encode()).unwrap();
        assert_eq!(read.size, 0, "the size is not stored: recovery takes the record's");
        assert!(written.size > 500, "its event and room for the rest: {}", written.size);
        assert_eq!(Delivery { size: written.size, ..read.clone() }, written);
        assert_eq!(read.caller.caller(read.depth, read.key.as_deref()), Caller::Internal { depth: 2 });
        let hook = read.hook();
        assert_eq!((hook.function.as_str(), hook.config.retry_delay), ("f", Duration::from_millis(250)));
        assert_eq!(hook.config.timeout, EventConfig::default().timeout);
        let event = Event::from_json(&read.event, read.depth).unwrap();
        assert_eq!((event.id.as_str(), event.depth), ("e1", 2));
    }

    #[test]
    fn an_api_key_caller_keeps_its_name_and_old_entries_without_one_still_read() {
        let body = json!({"type": "custom", "source": "s", "action": "a"});
        let event = Event::parse(body, "e1".into(), 0).unwrap();
        let hook = Subscriber {
            function: "f".into(),
            mode: HookMode::Async,
            priority: 0,
            config: Default::default(),
        };
        let ci = Caller::ApiKey { name: "ci".into() };
        let written = Delivery::new(&event, &ci).to(&hook);
        let read: Delivery = serde_json::from_slice(&written.encode()).unwrap();
        assert_eq!(read.caller.caller(read.depth, read.key.as_deref()), ci);
        let mut old: Value = serde_json::from_slice(&written.encode()).unwrap();
        old.as_object_mut().unwrap().remove("key");
        let read: Delivery = serde_json::from_value(old).unwrap();
        assert_eq!(
            read.caller.caller(read.depth, read.key.as_deref()),
            Caller::ApiKey { name: "unnamed".into() }
        );
    }

    #[test]
    fn a_failed_delivery_lists_its_attempts_and_last_error() {
        let mut failed = delivery(Duration::from_secs(1), 4);
        (failed.failed_at_ms, failed.last_error) = (Some(0), Some(("TIMEOUT".into(), "timed out".into())));
        let listed = failed.to_json("e1.0");
        assert_eq!(
            (listed["delivery_id"].clone(), listed["event_id"].clone(), listed["attempts"].clone()),
            (json!("e1.0"), json!("e1"), json!(4))
        );
        assert_eq!(listed["error"], json!({"code": "TIMEOUT", "message": "timed out"}));
        assert_eq!(listed["failed_at"], "1970-01-01T00:00:00Z");
    }
}
