//! The runner threads: [`RUNNERS`] named threads (`schedule-runner`)
//! taking runs from one bounded queue and running them, so the scheduler
//! thread only keeps time. Each tells the scheduler when a run ends (a
//! retry may be due) and, when it exits, tells its owner, who waits for
//! that up to the grace period and joins the runners that made it.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{self, Receiver, Sender, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use super::plan::Run;
use super::{Message, QUEUE, RUNNERS, Schedules};
use crate::error::Error;
use crate::history::Outcome;
use crate::sync::lock;

/// The runner threads and their queue.
pub(super) struct Runners {
    queue: SyncSender<Run>,
    /// Set at stop: runs still queued are dropped, not started.
    stopping: Arc<AtomicBool>,
    /// One message from each runner as it exits.
    exited: Receiver<usize>,
    threads: Vec<Option<JoinHandle<()>>>,
}

impl Runners {
    pub(super) fn start(schedules: Arc<Schedules>, scheduler: Sender<Message>) -> Result<Runners, Error> {
        let (queue, runs) = mpsc::sync_channel(QUEUE);
        let runs = Arc::new(Mutex::new(runs));
        let stopping = Arc::new(AtomicBool::new(false));
        let (exit_tx, exited) = mpsc::channel();
        let mut threads = Vec::with_capacity(RUNNERS);
        for i in 0..RUNNERS {
            let runner = Runner {
                index: i,
                runs: runs.clone(),
                schedules: schedules.clone(),
                scheduler: scheduler.clone(),
                stopping: stopping.clone(),
                exited: exit_tx.clone(),
            };
            let thread = std::thread::Builder::new()
                .name("schedule-runner".into())
                .spawn(move || runner.work())
                .map_err(Error::thread("schedule-runner"))?;
            threads.push(Some(thread));
        }
        Ok(Runners { queue, stopping, exited, threads })
    }

    /// Queues a run: `None`, or the run given back when the queue is full.
    pub(super) fn hand(&self, run: Run) -> Option<Run> {
        match self.queue.try_send(run) {
            Ok(()) => None,
            Err(TrySendError::Full(run) | TrySendError::Disconnected(run)) => Some(run),
        }
    }

    /// Starts no more runs, waits up to `grace` for those in flight and
    /// joins every runner that exited; the others are abandoned.
    pub(super) fn stop(self, grace: Duration) {
        let Runners { queue, stopping, exited, mut threads } = self;
        stopping.store(true, Ordering::SeqCst);
        drop(queue);
        let deadline = Instant::now() + grace;
        let mut left = threads.len();
        while left > 0 {
            match exited.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
                Ok(index) => {
                    if let Some(thread) = threads[index].take() {
                        let _ = thread.join();
                    }
                    left -= 1;
                }
                Err(_) => {
                    log::warn!("{left} scheduled runs still going after the grace period; abandoned");
                    return;
                }
            }
        }
    }
}

/// One runner thread.
struct Runner {
    index: usize,
    runs: Arc<Mutex<Receiver<Run>>>,
    schedules: Arc<Schedules>,
    scheduler: Sender<Message>,
    stopping: Arc<AtomicBool>,
    exited: Sender<usize>,
}

impl Runner {
    fn work(self) {
        while let Ok(run) = self.next() {
            if self.stopping.load(Ordering::SeqCst) {
                self.schedules.board().dropped(&run);
                continue;
            }
            self.run(run);
            let _ = self.scheduler.send(Message::Finished);
        }
        let _ = self.exited.send(self.index);
    }

    /// The next run; an error once the queue is closed and empty.
    fn next(&self) -> Result<Run, mpsc::RecvError> {
        lock(&self.runs).recv()
    }

    /// Runs one; a panic (a bug) fails the run, never the runner.
    fn run(&self, run: Run) {
        let ran = catch_unwind(AssertUnwindSafe(|| self.schedules.execute(run.clone(), None)));
        if ran.is_err() {
            log::error!("schedule {}/{}: the run panicked", run.key.function, run.key.name);
            self.schedules.board().finished(
                &run,
                Outcome::Error,
                Some("INTERNAL"),
                self.schedules.clock.now(),
            );
        }
    }
}
