//! The fixed worker threads: `workers` threads for invocations and a few for
//! everything else (health, metrics, listings, reload), so a slow function
//! never delays a health check. Invocations wait in a [`Fair`] queue, so a
//! slow function never holds every invoke worker either. A worker takes a
//! [`Job`], runs the handler (a panic costs that request a 500, never the
//! worker), and hands the reply back to the poller. The threads end when
//! the poller drops the lanes.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

use super::fair::Fair;
use super::parse::Reject;
use super::{Handler, Lane};
use crate::error::Error;
use crate::http::reply::Reply;
use crate::http::request::Request;
use crate::sync::lock;

/// Threads for [`Lane::Control`].
pub const CONTROL_WORKERS: usize = 2;

/// A request for a worker.
pub struct Job<T> {
    pub conn: u64,
    pub request: Request,
    pub ticket: T,
}

/// A finished job, for the poller.
pub struct Done {
    pub conn: u64,
    pub reply: Reply,
}

/// Where jobs go: the invoke lane's fair queue and the control lane.
pub struct Lanes<T> {
    invoke: Arc<Fair<Job<T>>>,
    control: Sender<Job<T>>,
}

impl<T> Lanes<T> {
    /// Queues a job; false if the workers are gone.
    pub fn send(&self, lane: Lane, job: Job<T>) -> bool {
        match lane {
            Lane::Invoke { key, limit } => {
                self.invoke.push(&key, limit, job);
                true
            }
            Lane::Control => self.control.send(job).is_ok(),
        }
    }
}

impl<T> Drop for Lanes<T> {
    fn drop(&mut self) {
        self.invoke.close();
    }
}

/// The running workers: where to send jobs, and the threads to join.
pub struct Started<T> {
    pub lanes: Lanes<T>,
    pub threads: Vec<JoinHandle<()>>,
}

/// Starts the threads; `done` receives each reply, `wake` is called after.
pub fn start<H: Handler>(
    handler: &Arc<H>,
    workers: usize,
    done: &Sender<Done>,
    wake: &Arc<dyn Fn() + Send + Sync>,
) -> Result<Started<H::Ticket>, Error> {
    let invoke = Arc::new(Fair::default());
    let (control, control_rx) = mpsc::channel();
    let control_rx = Arc::new(Mutex::new(control_rx));
    let mut threads = Vec::new();
    for i in 0..workers + CONTROL_WORKERS {
        let name = match i < workers {
            true => format!("http-invoke-{i}"),
            false => format!("http-control-{}", i - workers),
        };
        let (handler, done, wake) = (handler.clone(), done.clone(), wake.clone());
        let jobs = match i < workers {
            true => Jobs::Fair(invoke.clone()),
            false => Jobs::Channel(control_rx.clone()),
        };
        let thread = std::thread::Builder::new()
            .name(name.clone())
            .spawn(move || work(&*handler, &jobs, &done, &*wake))
            .map_err(Error::thread(&name))?;
        threads.push(thread);
    }
    Ok(Started { lanes: Lanes { invoke, control }, threads })
}

/// Where a worker takes its jobs from.
enum Jobs<T> {
    Fair(Arc<Fair<Job<T>>>),
    Channel(Arc<Mutex<Receiver<Job<T>>>>),
}

impl<T> Jobs<T> {
    /// The next job and its fair-queue key; `None` when the lane ends.
    fn next(&self) -> Option<(Option<String>, Job<T>)> {
        match self {
            Jobs::Fair(fair) => fair.take().map(|(key, job)| (Some(key), job)),
            Jobs::Channel(rx) => lock(rx).recv().ok().map(|job| (None, job)),
        }
    }

    fn finished(&self, key: Option<String>) {
        if let (Jobs::Fair(fair), Some(key)) = (self, key) {
            fair.finished(&key);
        }
    }
}

fn work<H: Handler>(
    handler: &H,
    jobs: &Jobs<H::Ticket>,
    done: &Sender<Done>,
    wake: &(dyn Fn() + Send + Sync),
) {
    while let Some((key, Job { conn, request, ticket })) = jobs.next() {
        let handled = std::panic::catch_unwind(AssertUnwindSafe(|| handler.handle(request, ticket)));
        jobs.finished(key);
        let reply = handled.unwrap_or_else(|_| {
            log::error!("a request handler panicked; answering 500");
            handler.reject(Reject::Internal)
        });
        if done.send(Done { conn, reply }).is_err() {
            return;
        }
        wake();
    }
}
