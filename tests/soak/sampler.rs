//! The alyx process from outside, once a second: resident memory
//! (`VmRSS` in /proc/PID/status) and threads (entries of /proc/PID/task).
//! The thread waits on its stop channel with a timeout, so stopping is a
//! message and a join, never a polled flag.

use std::sync::mpsc::{self, RecvTimeoutError, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

const EVERY: Duration = Duration::from_secs(1);

/// One reading.
#[derive(Debug, Clone, Copy)]
pub struct Sample {
    /// Since the traffic started (samples before it are not taken).
    pub at: Duration,
    pub rss_kib: u64,
    pub threads: usize,
}

/// A running sampler; [`Sampler::stop`] returns what it read.
pub struct Sampler {
    stop: Sender<()>,
    thread: JoinHandle<Vec<Sample>>,
}

impl Sampler {
    /// Samples `pid` now and every second after, times measured from `start`.
    pub fn start(pid: u32, start: Instant) -> Sampler {
        let (stop, stopped) = mpsc::channel();
        let thread = std::thread::Builder::new()
            .name("soak-sampler".into())
            .spawn(move || {
                let mut samples = Vec::new();
                let mut next = Instant::now();
                loop {
                    if let Some(sample) = sample(pid, start) {
                        samples.push(sample);
                    }
                    next += EVERY;
                    match stopped.recv_timeout(next.saturating_duration_since(Instant::now())) {
                        Err(RecvTimeoutError::Timeout) => {}
                        Ok(()) | Err(RecvTimeoutError::Disconnected) => return samples,
                    }
                }
            })
            .expect("the sampler starts");
        Sampler { stop, thread }
    }

    pub fn stop(self) -> Vec<Sample> {
        let _ = self.stop.send(());
        self.thread.join().expect("the sampler does not panic")
    }
}

/// One reading of `pid`; `None` once the process is gone.
fn sample(pid: u32, start: Instant) -> Option<Sample> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let rss_kib = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())?;
    let threads = std::fs::read_dir(format!("/proc/{pid}/task")).ok()?.count();
    Some(Sample { at: start.elapsed(), rss_kib, threads })
}
