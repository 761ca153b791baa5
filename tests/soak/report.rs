//! The soak's verdict: what was answered, what failed, and how the alyx
//! process held up (peak memory and threads, memory early vs late), with
//! every reason the run fails.

use std::fmt;
use std::time::Duration;

use crate::sampler::Sample;
use crate::tally::Tally;

/// Memory may grow this much from the first window to the last.
const RSS_GROWTH_LIMIT: f64 = 0.20;

/// Answers every run must have seen at least once, or it did not test what
/// it promises (e.g. a slow function whose queue never filled).
const REQUIRED: &[&str] = &[
    "fast 200",
    "slow 200",
    "slow 503 + Retry-After",
    "idle closed after keepalive_timeout",
    "trickled head 200",
    "trickled head 408",
    "trickled body 200",
    "stalled body 408",
    "declared body 413",
    "chunked body 413",
    "malformed 400",
    "malformed 431",
    "malformed 505",
    "reload 200",
    "event 202",
    "events all delivered",
];

pub struct Report {
    pub duration: Duration,
    pub tally: Tally,
    pub samples: Vec<Sample>,
    /// Most threads alyx may have (see `thread_bound` in main.rs).
    pub thread_bound: usize,
    pub idle: usize,
}

impl Report {
    /// Every reason the run failed; empty when it passed.
    pub fn problems(&self) -> Vec<String> {
        let mut problems: Vec<String> =
            self.tally.failures.iter().map(|(kind, n)| format!("{n} × {kind}")).collect();
        for kind in REQUIRED.iter().filter(|k| self.tally.count(k) == 0) {
            problems.push(format!("never seen: {kind}"));
        }
        let threads = self.max_threads();
        if threads > self.thread_bound {
            problems.push(format!("{threads} threads, above the bound of {}", self.thread_bound));
        }
        match self.rss_growth() {
            Some((_, _, growth)) if growth > RSS_GROWTH_LIMIT => problems.push(format!(
                "RSS grew {:.0}% (limit {:.0}%)",
                growth * 100.0,
                RSS_GROWTH_LIMIT * 100.0
            )),
            Some(_) => {}
            None => problems.push("too few samples of the alyx process".into()),
        }
        problems
    }

    fn max_threads(&self) -> usize {
        self.samples.iter().map(|s| s.threads).max().unwrap_or(0)
    }

    fn max_rss(&self) -> u64 {
        self.samples.iter().map(|s| s.rss_kib).max().unwrap_or(0)
    }

    /// A minute, or a fifth of shorter runs.
    fn window(&self) -> Duration {
        (self.duration / 5).min(Duration::from_secs(60))
    }

    /// Median RSS (KiB) early and late, and the growth. Early is the
    /// second window: the first is warm-up, with one-time growth that is
    /// not a leak (the poller's connection table doubles once as ids churn,
    /// about a minute in, and malloc gives threads their arenas). The
    /// median, because a sample taken while an oversized body is being read
    /// shows a few MiB that are freed a moment later; a leak moves the
    /// median, a transient does not.
    fn rss_growth(&self) -> Option<(u64, u64, f64)> {
        let window = self.window();
        let early = self.median_rss(window, window * 2)?;
        let late = self.median_rss(self.duration.saturating_sub(window), self.duration)?;
        Some((early, late, late as f64 / early as f64 - 1.0))
    }

    /// Median RSS (KiB) of the samples taken from `from` to `to`.
    fn median_rss(&self, from: Duration, to: Duration) -> Option<u64> {
        let mut rss: Vec<u64> =
            self.samples.iter().filter(|s| s.at >= from && s.at <= to).map(|s| s.rss_kib).collect();
        rss.sort_unstable();
        rss.get(rss.len() / 2).copied()
    }

    /// The median RSS of each tenth of the run, in MiB.
    fn rss_by_tenths(&self) -> String {
        let tenth = |i: u32| self.median_rss(self.duration * i / 10, self.duration * (i + 1) / 10);
        let tenths = (0..10).filter_map(tenth).map(|kib| format!("{:.1}", kib as f64 / 1024.0));
        tenths.collect::<Vec<_>>().join(" ")
    }
}

fn mib(kib: u64) -> String {
    format!("{:.1} MiB", kib as f64 / 1024.0)
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let seconds = self.duration.as_secs_f64();
        let fast = self.tally.count("fast 200");
        writeln!(f, "soak: {seconds:.0} s against one alyx serve, {} idle connections held", self.idle)?;
        writeln!(f, "answered as expected: {} requests", self.tally.answered())?;
        writeln!(f, "  fast calls: {fast} ({:.0}/s)", fast as f64 / seconds)?;
        for (kind, n) in self.tally.answers.iter().filter(|(k, _)| **k != "fast 200") {
            writeln!(f, "  {kind}: {n}")?;
        }
        let failed: u64 = self.tally.failures.values().sum();
        writeln!(f, "failures: {failed}")?;
        for (kind, n) in &self.tally.failures {
            writeln!(f, "  {kind}: {n}")?;
        }
        for example in &self.tally.examples {
            writeln!(f, "  e.g. {example}")?;
        }
        writeln!(f, "threads: max {} (bound {})", self.max_threads(), self.thread_bound)?;
        write!(f, "RSS: max {}", mib(self.max_rss()))?;
        if let Some((early, late, growth)) = self.rss_growth() {
            let window = self.window();
            let (early, late, growth) = (mib(early), mib(late), growth * 100.0);
            let (from, to) = (window, 2 * window);
            write!(
                f,
                "; median {early} from {from:?} to {to:?}, {late} in the last {window:?} ({growth:+.1}%)"
            )?;
        }
        writeln!(f, "\nmedian RSS (MiB) in each tenth of the run: {}", self.rss_by_tenths())
    }
}
