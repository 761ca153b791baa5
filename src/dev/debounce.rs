//! The dev loop's timing rules as plain code: per-key debouncing and
//! per-function build coalescing. Nothing here reads a clock or touches a
//! file; callers pass `now`, so the rules are tested with a fake clock.

use std::collections::{HashMap, HashSet};
use std::hash::Hash;
use std::time::{Duration, Instant};

/// Fires a key once no event for it has arrived for `delay` (a quiet
/// period per key, so one function's edits never delay another's).
#[derive(Debug)]
pub struct Debouncer<K> {
    delay: Duration,
    pending: HashMap<K, Instant>,
}

impl<K: Hash + Eq + Clone> Debouncer<K> {
    pub fn new(delay: Duration) -> Debouncer<K> {
        Debouncer { delay, pending: HashMap::new() }
    }

    /// Records an event for `key` at `now`, restarting its quiet period.
    pub fn event(&mut self, key: K, now: Instant) {
        self.pending.insert(key, now + self.delay);
    }

    /// When the next key falls due, if any is pending: the time to wait
    /// for with `recv_timeout`.
    pub fn next_deadline(&self) -> Option<Instant> {
        self.pending.values().min().copied()
    }

    /// Removes and returns the keys due at `now`.
    pub fn due(&mut self, now: Instant) -> Vec<K> {
        let due: Vec<K> = self.pending.iter().filter(|(_, at)| **at <= now).map(|(k, _)| k.clone()).collect();
        for key in &due {
            self.pending.remove(key);
        }
        due
    }

    pub fn is_idle(&self) -> bool {
        self.pending.is_empty()
    }
}

/// At most one build per function at a time; requests that arrive while a
/// build runs cause exactly one more build after it, however many arrive.
#[derive(Debug, Default)]
pub struct Builds<K> {
    running: HashSet<K>,
    again: HashSet<K>,
}

impl<K: Hash + Eq + Clone> Builds<K> {
    pub fn new() -> Builds<K> {
        Builds { running: HashSet::new(), again: HashSet::new() }
    }

    /// A build of `key` is wanted; true if it should start now.
    pub fn request(&mut self, key: K) -> bool {
        if self.running.contains(&key) {
            self.again.insert(key);
            return false;
        }
        self.running.insert(key);
        true
    }

    /// The build of `key` ended; true if it must run once more (and is
    /// then counted as running again).
    pub fn finished(&mut self, key: &K) -> bool {
        if self.again.remove(key) {
            return true;
        }
        self.running.remove(key);
        false
    }

    pub fn is_running(&self, key: &K) -> bool {
        self.running.contains(key)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MS: Duration = Duration::from_millis(1);

    #[test]
    fn a_burst_of_events_fires_once_after_the_quiet_period() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(100 * MS);
        for i in 0..5 {
            d.event("hello", t0 + i * 30 * MS);
        }
        assert_eq!(d.next_deadline(), Some(t0 + 220 * MS), "the last event restarts the period");
        assert!(d.due(t0 + 219 * MS).is_empty());
        assert_eq!(d.due(t0 + 220 * MS), ["hello"]);
        assert!(d.is_idle());
        assert!(d.due(t0 + 1000 * MS).is_empty(), "fires once");
    }

    #[test]
    fn keys_are_independent() {
        let t0 = Instant::now();
        let mut d = Debouncer::new(100 * MS);
        d.event("a", t0);
        d.event("b", t0 + 50 * MS);
        d.event("b", t0 + 90 * MS);
        assert_eq!(d.next_deadline(), Some(t0 + 100 * MS));
        assert_eq!(d.due(t0 + 100 * MS), ["a"], "b's events do not hold a back");
        assert_eq!(d.next_deadline(), Some(t0 + 190 * MS));
        assert_eq!(d.due(t0 + 190 * MS), ["b"]);
    }

    #[test]
    fn nothing_pending_means_no_deadline() {
        let d: Debouncer<&str> = Debouncer::new(100 * MS);
        assert_eq!(d.next_deadline(), None);
    }

    #[test]
    fn one_build_at_a_time_and_one_more_for_changes_during_it() {
        let mut b = Builds::new();
        assert!(b.request("hello"));
        assert!(!b.request("hello"), "a build is already running");
        assert!(!b.request("hello"), "many requests during it...");
        assert!(b.finished(&"hello"), "...cause exactly one more build");
        assert!(b.is_running(&"hello"));
        assert!(!b.finished(&"hello"), "and no third");
        assert!(!b.is_running(&"hello"));
        assert!(b.request("hello"), "idle again: the next change builds at once");
    }

    #[test]
    fn builds_of_different_functions_run_at_once() {
        let mut b = Builds::new();
        assert!(b.request("a"));
        assert!(b.request("b"));
        assert!(!b.finished(&"a"));
        assert!(b.is_running(&"b"));
    }
}
