//! The fixed worker threads: `workers` threads for invocations and a few for
//! everything else (health, metrics, listings, reload), so a slow function
//! never delays a health check. A worker takes a [`Job`], runs the handler
//! (a panic costs that request a 500, never the worker), and hands the reply
//! back to the poller. The threads end when the poller drops the senders.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, Receiver, Sender};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;

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

/// The senders of both lanes.
pub struct Lanes<T> {
    invoke: Sender<Job<T>>,
    control: Sender<Job<T>>,
}

impl<T> Lanes<T> {
    /// Queues a job; false if the workers are gone.
    pub fn send(&self, lane: Lane, job: Job<T>) -> bool {
        match lane {
            Lane::Invoke => self.invoke.send(job).is_ok(),
            Lane::Control => self.control.send(job).is_ok(),
        }
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
    let (invoke, invoke_rx) = mpsc::channel();
    let (control, control_rx) = mpsc::channel();
    let mut threads = Vec::new();
    for (lane, count, rx) in [("invoke", workers, invoke_rx), ("control", CONTROL_WORKERS, control_rx)] {
        let rx = Arc::new(Mutex::new(rx));
        for i in 0..count {
            let name = format!("http-{lane}-{i}");
            let (handler, rx, done, wake) = (handler.clone(), rx.clone(), done.clone(), wake.clone());
            let thread = std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || work(&*handler, &rx, &done, &*wake))
                .map_err(Error::thread(&name))?;
            threads.push(thread);
        }
    }
    Ok(Started { lanes: Lanes { invoke, control }, threads })
}

fn work<H: Handler>(
    handler: &H,
    jobs: &Mutex<Receiver<Job<H::Ticket>>>,
    done: &Sender<Done>,
    wake: &(dyn Fn() + Send + Sync),
) {
    loop {
        let next = lock(jobs).recv();
        let Ok(Job { conn, request, ticket }) = next else { return };
        let handled = std::panic::catch_unwind(AssertUnwindSafe(|| handler.handle(request, ticket)));
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
