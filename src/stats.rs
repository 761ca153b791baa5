//! Invocation statistics of one function: counters by outcome and by
//! trigger, a latency histogram (for Prometheus) and a window of recent
//! durations (for p50 and p99 in the JSON API). Recording is a few atomic
//! adds and short locks.

use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use crate::sync::lock;

/// Upper bounds of the histogram buckets, in seconds.
pub const BUCKETS: [f64; 12] = [0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0];

/// How many recent durations the percentiles are computed over.
const WINDOW: usize = 1024;

#[derive(Debug, Default)]
pub struct Stats {
    /// Count per outcome (`success` or an error kind).
    outcomes: Mutex<BTreeMap<&'static str, u64>>,
    buckets: [AtomicU64; BUCKETS.len()],
    count: AtomicU64,
    sum_micros: AtomicU64,
    recent: Mutex<VecDeque<u64>>,
    reloads: Mutex<BTreeMap<&'static str, u64>>,
    /// Count per trigger type and history outcome (`ok`, `error`...),
    /// refusals included.
    by_trigger: Mutex<BTreeMap<(&'static str, &'static str), u64>>,
}

/// A snapshot for the JSON API.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Summary {
    pub calls: u64,
    pub errors: u64,
    pub timeouts: u64,
    pub p50_ms: f64,
    pub p99_ms: f64,
}

impl Stats {
    /// Records one invocation with its outcome (`success` or an error kind).
    pub fn record(&self, outcome: &'static str, took: Duration) {
        *lock(&self.outcomes).entry(outcome).or_default() += 1;
        let seconds = took.as_secs_f64();
        if let Some(i) = BUCKETS.iter().position(|b| seconds <= *b) {
            self.buckets[i].fetch_add(1, Ordering::Relaxed);
        }
        self.count.fetch_add(1, Ordering::Relaxed);
        self.sum_micros.fetch_add(took.as_micros() as u64, Ordering::Relaxed);
        let mut recent = lock(&self.recent);
        if recent.len() == WINDOW {
            recent.pop_front();
        }
        recent.push_back(took.as_micros() as u64);
    }

    /// Records a reload attempt (`ok` or `failed`).
    pub fn record_reload(&self, result: &'static str) {
        *lock(&self.reloads).entry(result).or_default() += 1;
    }

    /// Records one execution record's trigger type and outcome.
    pub fn record_trigger(&self, trigger: &'static str, outcome: &'static str) {
        *lock(&self.by_trigger).entry((trigger, outcome)).or_default() += 1;
    }

    /// Counts by (trigger type, outcome).
    pub fn by_trigger(&self) -> BTreeMap<(&'static str, &'static str), u64> {
        lock(&self.by_trigger).clone()
    }

    pub fn outcomes(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.outcomes).clone()
    }

    pub fn reloads(&self) -> BTreeMap<&'static str, u64> {
        lock(&self.reloads).clone()
    }

    /// Cumulative bucket counts, the total count and the sum in seconds.
    pub fn histogram(&self) -> (Vec<u64>, u64, f64) {
        let mut total = 0;
        let cumulative = self
            .buckets
            .iter()
            .map(|b| {
                total += b.load(Ordering::Relaxed);
                total
            })
            .collect();
        let sum = self.sum_micros.load(Ordering::Relaxed) as f64 / 1e6;
        (cumulative, self.count.load(Ordering::Relaxed), sum)
    }

    pub fn summary(&self) -> Summary {
        let outcomes = self.outcomes();
        let calls: u64 = outcomes.values().sum();
        let errors = calls - outcomes.get("success").copied().unwrap_or(0);
        let timeouts = outcomes.get("timeout").copied().unwrap_or(0);
        let mut recent: Vec<u64> = lock(&self.recent).iter().copied().collect();
        recent.sort_unstable();
        Summary { calls, errors, timeouts, p50_ms: percentile(&recent, 50), p99_ms: percentile(&recent, 99) }
    }
}

/// The `p`th percentile (nearest rank) of sorted microseconds, in ms.
fn percentile(sorted: &[u64], p: usize) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let rank = (sorted.len() * p).div_ceil(100).max(1);
    sorted[rank - 1] as f64 / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_counts_outcomes_and_percentiles() {
        let stats = Stats::default();
        for ms in 1..=100 {
            stats.record("success", Duration::from_millis(ms));
        }
        stats.record("timeout", Duration::from_millis(500));
        stats.record("trap", Duration::from_millis(2));
        let s = stats.summary();
        assert_eq!((s.calls, s.errors, s.timeouts), (102, 2, 1));
        assert_eq!(s.p50_ms, 50.0, "51st of 102 sorted samples (the 2 ms trap adds one low sample)");
        assert_eq!(s.p99_ms, 100.0);
    }

    #[test]
    fn histogram_is_cumulative() {
        let stats = Stats::default();
        stats.record("success", Duration::from_micros(100));
        stats.record("success", Duration::from_millis(3));
        stats.record("success", Duration::from_secs(60));
        let (buckets, count, sum) = stats.histogram();
        assert_eq!((buckets[0], buckets[3], *buckets.last().unwrap(), count), (1, 2, 2, 3));
        assert!((sum - 60.0031).abs() < 1e-6);
    }

    #[test]
    fn the_window_keeps_the_most_recent() {
        let stats = Stats::default();
        for _ in 0..WINDOW {
            stats.record("success", Duration::from_secs(1));
        }
        for _ in 0..WINDOW {
            stats.record("success", Duration::from_millis(1));
        }
        assert_eq!(stats.summary().p99_ms, 1.0);
    }
}
