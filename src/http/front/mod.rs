//! The HTTP/1.1 front: the only code that touches sockets. It sees bytes and
//! a [`Handler`], nothing else, and is bounded everywhere:
//!
//! - one poller thread owns the listener and every connection (epoll);
//!   idle keep-alive and slow clients cost a buffer, never a thread;
//! - a fixed set of workers: `workers` for invocations ([`Lane::Invoke`])
//!   and [`workers::CONTROL_WORKERS`] for the rest, so health checks never
//!   wait behind function calls;
//! - at most `max_connections` connections (above: an immediate 503);
//! - deadlines for the head, the body, idle keep-alive and writes;
//! - strict framing ([`parse`]), so no request can hide behind another.
//!
//! A request reaches a worker only when it is complete and the handler has
//! admitted it ([`Handler::admit`] runs on the poller and must be quick).

pub mod conn;
mod fair;
pub mod parse;
mod poller;
pub mod wire;
pub mod workers;

use std::net::{SocketAddr, TcpListener};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::mpsc::{self, Sender};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use rustix::event::{EventfdFlags, epoll, eventfd};

use crate::error::Error;
use crate::http::reply::Reply;
use crate::http::request::Request;
pub use conn::Limits;
pub use parse::Reject;
use poller::{Control, Poller};

/// Which worker threads run a request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Lane {
    /// Function calls: `workers` threads, at most `limit` of them on one
    /// `key` (a function and its instances) at once.
    Invoke { key: String, limit: usize },
    /// Everything else: a few threads of their own.
    Control,
}

/// What the front calls: the HTTP core behind it.
pub trait Handler: Send + Sync + 'static {
    /// Whatever `admit` hands to `handle` (e.g. a place in a queue).
    type Ticket: Send + 'static;

    /// On the poller thread, as soon as a request is complete: which lane
    /// runs it, or the reply that refuses it now. Must not block.
    fn admit(&self, request: &Request) -> Result<(Lane, Self::Ticket), Reply>;

    /// On a worker thread: the reply.
    fn handle(&self, request: Request, ticket: Self::Ticket) -> Reply;

    /// The reply for a request the front refuses itself.
    fn reject(&self, why: Reject) -> Reply;
}

/// How the front runs.
#[derive(Debug, Clone, Copy)]
pub struct Config {
    pub workers: usize,
    pub max_connections: usize,
    pub limits: Limits,
}

/// A bound listening socket, before any thread runs.
pub struct Bound {
    listener: TcpListener,
    addr: SocketAddr,
}

/// Binds `listen` (port 0 picks a free port).
pub fn bind(listen: &str) -> Result<Bound, Error> {
    let listener = TcpListener::bind(listen).map_err(|source| Error::Bind { addr: listen.into(), source })?;
    let addr = listener.local_addr().map_err(|source| Error::Bind { addr: listen.into(), source })?;
    Ok(Bound { listener, addr })
}

impl Bound {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts the poller and the workers.
    pub fn serve<H: Handler>(self, handler: Arc<H>, config: Config) -> Result<Front, Error> {
        let io = |source: std::io::Error| Error::Bind { addr: self.addr.to_string(), source };
        let epoll_fd = epoll::create(epoll::CreateFlags::CLOEXEC).map_err(|e| io(e.into()))?;
        let wake_fd = eventfd(0, EventfdFlags::CLOEXEC | EventfdFlags::NONBLOCK).map_err(|e| io(e.into()))?;
        let wake_fd = Arc::new(wake_fd);
        let waker = wake_fd.clone();
        let wake: Arc<dyn Fn() + Send + Sync> = Arc::new(move || wake_up(&waker));
        let (done_tx, done_rx) = mpsc::channel();
        let workers::Started { lanes, threads: workers } =
            workers::start(&handler, config.workers, &done_tx, &wake)?;
        let (control, control_rx) = mpsc::channel();
        let max_connections = config.max_connections.min(connection_room());
        let poller = Poller::new(
            epoll_fd,
            wake_fd.clone(),
            self.listener,
            handler,
            lanes,
            done_rx,
            control_rx,
            config.limits,
            max_connections,
        );
        let thread = std::thread::Builder::new()
            .name("http-poller".into())
            .spawn(move || poller.run())
            .map_err(Error::thread("http-poller"))?;
        Ok(Front { addr: self.addr, control, wake: wake_fd, poller: Some(thread), workers })
    }
}

fn wake_up(fd: &OwnedFd) {
    let _ = rustix::io::write(fd, &1u64.to_ne_bytes());
}

/// A running front; [`Front::shutdown`] stops it.
pub struct Front {
    addr: SocketAddr,
    control: Sender<Control>,
    wake: Arc<OwnedFd>,
    poller: Option<JoinHandle<()>>,
    workers: Vec<JoinHandle<()>>,
}

impl Front {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting (the socket closes), lets requests in flight finish
    /// within `grace`, closes the rest and joins the threads; false if some
    /// were still busy when the grace period ended.
    pub fn shutdown(mut self, grace: Duration) -> bool {
        let deadline = Instant::now() + grace;
        let _ = self.control.send(Control::Stop { deadline });
        wake_up(&self.wake);
        let poller = self.poller.take();
        let workers = std::mem::take(&mut self.workers);
        join_by(poller.into_iter().chain(workers).collect(), deadline + Duration::from_millis(100))
    }
}

/// Joins `threads`, waiting until `deadline` at most.
fn join_by(threads: Vec<JoinHandle<()>>, deadline: Instant) -> bool {
    let (done, joined) = mpsc::channel();
    let joiner = std::thread::Builder::new().name("http-join".into()).spawn(move || {
        threads.into_iter().for_each(|t| drop(t.join()));
        let _ = done.send(());
    });
    joiner.is_ok() && joined.recv_timeout(deadline.saturating_duration_since(Instant::now())).is_ok()
}

impl Drop for Front {
    fn drop(&mut self) {
        if self.poller.is_some() {
            let _ = self.control.send(Control::Stop { deadline: Instant::now() });
            wake_up(&self.wake);
        }
    }
}

/// File descriptors kept for everything but client connections (plugins'
/// outbound HTTP, files, the dev loop's watches).
const RESERVED_FDS: u64 = 64;

/// Raises the soft limit on open files to the hard limit; returns how many
/// connections fit under it.
pub fn connection_room() -> usize {
    use rustix::process::{Resource, getrlimit, setrlimit};
    let mut limit = getrlimit(Resource::Nofile);
    if let Some(hard) = limit.maximum
        && limit.current.is_some_and(|soft| soft < hard)
    {
        limit.current = Some(hard);
        if let Err(e) = setrlimit(Resource::Nofile, limit) {
            log::warn!("cannot raise the open-file limit to {hard}: {e}");
        }
    }
    let soft = getrlimit(Resource::Nofile).current.unwrap_or(u64::MAX);
    usize::try_from(soft.saturating_sub(RESERVED_FDS)).unwrap_or(usize::MAX).max(1)
}
