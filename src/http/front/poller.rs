//! The poller: one thread that owns the listening socket and every
//! connection, waits on epoll (through rustix, so our crate stays free of
//! `unsafe`), reads and writes without blocking, and hands a connection's
//! request to a worker only once it is complete. Idle and slow clients cost
//! a buffer here, never a thread. Accept errors (EMFILE, ENFILE, ENOMEM...)
//! pause accepting with a backoff (5 ms doubling to 1 s); nothing ends the
//! loop but a stop.

use std::collections::HashMap;
use std::io::{ErrorKind, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::fd::OwnedFd;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, TryRecvError};
use std::time::{Duration, Instant};

use rustix::event::Timespec;
use rustix::event::epoll::{self, EventData, EventFlags};

use super::conn::{Conn, Limits, Step};
use super::parse::Reject;
use super::wire::encode;
use super::workers::{Done, Job, Lanes};
use super::{Handler, Lane};

const LISTENER: u64 = 0;
const WAKE: u64 = 1;
/// How often deadlines are checked.
const SWEEP: Duration = Duration::from_millis(100);
const FIRST_BACKOFF: Duration = Duration::from_millis(5);
const MAX_BACKOFF: Duration = Duration::from_secs(1);

/// A message from the front's owner.
pub enum Control {
    /// Stop accepting, finish requests in flight until `deadline`.
    Stop { deadline: Instant },
}

/// Everything the poller thread owns.
pub struct Poller<H: Handler> {
    pub epoll: OwnedFd,
    pub wake: Arc<OwnedFd>,
    pub listener: Option<TcpListener>,
    pub handler: Arc<H>,
    pub lanes: Option<Lanes<H::Ticket>>,
    pub done: Receiver<Done>,
    pub control: Receiver<Control>,
    pub limits: Limits,
    pub max_connections: usize,
    conns: HashMap<u64, Conn>,
    next_id: u64,
    backoff: Duration,
    accept_resumes: Option<Instant>,
    stopping: Option<Instant>,
}

impl<H: Handler> Poller<H> {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        epoll: OwnedFd,
        wake: Arc<OwnedFd>,
        listener: TcpListener,
        handler: Arc<H>,
        lanes: Lanes<H::Ticket>,
        done: Receiver<Done>,
        control: Receiver<Control>,
        limits: Limits,
        max_connections: usize,
    ) -> Poller<H> {
        Poller {
            epoll,
            wake,
            listener: Some(listener),
            handler,
            lanes: Some(lanes),
            done,
            control,
            limits,
            max_connections,
            conns: HashMap::new(),
            next_id: WAKE + 1,
            backoff: FIRST_BACKOFF,
            accept_resumes: None,
            stopping: None,
        }
    }

    /// Registers the listener and the wake-up fd, then runs until stopped.
    pub fn run(mut self) {
        if let Err(e) = self.register() {
            log::error!("http: cannot poll the listening socket: {e}");
            return;
        }
        let mut events = Vec::with_capacity(256);
        let mut next_sweep = Instant::now() + SWEEP;
        loop {
            let timeout = self.timeout(next_sweep);
            events.clear();
            match epoll::wait(&self.epoll, rustix::buffer::spare_capacity(&mut events), Some(&timeout)) {
                Ok(_) | Err(rustix::io::Errno::INTR) => {}
                Err(e) => log::error!("http: epoll_wait failed: {e}"),
            }
            for event in &events {
                let (flags, key) = (event.flags, event.data.u64());
                self.on_event(key, flags);
            }
            self.take_replies();
            let now = Instant::now();
            if now >= next_sweep {
                self.sweep(now);
                next_sweep = now + SWEEP;
            }
            self.resume_accepting(now);
            if self.take_control() {
                return;
            }
        }
    }

    fn register(&self) -> std::io::Result<()> {
        if let Some(listener) = &self.listener {
            listener.set_nonblocking(true)?;
            epoll::add(&self.epoll, listener, EventData::new_u64(LISTENER), EventFlags::IN)?;
        }
        epoll::add(&self.epoll, &*self.wake, EventData::new_u64(WAKE), EventFlags::IN)?;
        Ok(())
    }

    fn timeout(&self, next_sweep: Instant) -> Timespec {
        let now = Instant::now();
        let until = self.accept_resumes.map_or(next_sweep, |at| at.min(next_sweep));
        let left = until.saturating_duration_since(now);
        Timespec { tv_sec: left.as_secs() as i64, tv_nsec: left.subsec_nanos().into() }
    }

    fn on_event(&mut self, key: u64, flags: EventFlags) {
        match key {
            LISTENER => self.accept(),
            WAKE => {
                let mut counter = [0u8; 8];
                let _ = rustix::io::read(&*self.wake, &mut counter);
            }
            id => self.on_conn(id, flags),
        }
    }

    /// Accepts until the backlog is empty or an error pauses accepting.
    fn accept(&mut self) {
        loop {
            let Some(listener) = &self.listener else { return };
            match listener.accept() {
                Ok((stream, _)) => {
                    self.backoff = FIRST_BACKOFF;
                    self.admit(stream);
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => return,
                Err(e) if e.kind() == ErrorKind::Interrupted || e.kind() == ErrorKind::ConnectionAborted => {}
                Err(e) => return self.pause_accepting(&e),
            }
        }
    }

    fn pause_accepting(&mut self, error: &std::io::Error) {
        log::warn!("http: accept failed ({error}); retrying in {} ms", self.backoff.as_millis());
        if let Some(listener) = &self.listener {
            let _ = epoll::delete(&self.epoll, listener);
        }
        self.accept_resumes = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(MAX_BACKOFF);
    }

    fn resume_accepting(&mut self, now: Instant) {
        let Some(at) = self.accept_resumes else { return };
        if now < at {
            return;
        }
        self.accept_resumes = None;
        if let Some(listener) = &self.listener {
            let _ = epoll::add(&self.epoll, listener, EventData::new_u64(LISTENER), EventFlags::IN);
            self.accept();
        }
    }

    /// A new connection: registered, or refused with 503 over the cap.
    fn admit(&mut self, stream: TcpStream) {
        if stream.set_nonblocking(true).is_err() {
            return;
        }
        let _ = stream.set_nodelay(true);
        if self.conns.len() >= self.max_connections {
            let reply = self.handler.reject(Reject::Overloaded);
            let _ = (&stream).write(&encode(&reply, false, true));
            return;
        }
        let id = self.next_id;
        self.next_id += 1;
        if epoll::add(&self.epoll, &stream, EventData::new_u64(id), read_flags()).is_ok() {
            self.conns.insert(id, Conn::new(stream, self.limits, Instant::now()));
        }
    }

    fn on_conn(&mut self, id: u64, flags: EventFlags) {
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let now = Instant::now();
        let step = match flags.contains(EventFlags::OUT) && !conn.pending().is_empty() {
            true => write(conn, now),
            false => read(conn, now),
        };
        self.follow(id, step);
    }

    /// Acts on a connection's next step until it waits for the network.
    fn follow(&mut self, id: u64, mut step: Step) {
        loop {
            let Some(conn) = self.conns.get_mut(&id) else { return };
            let now = Instant::now();
            step = match step {
                Step::Read => return self.arm(id, read_flags()),
                Step::Wait => return,
                Step::Write => match write(conn, now) {
                    Step::Write => return self.arm(id, write_flags()),
                    next => next,
                },
                Step::Request(request) => return self.dispatch(id, request),
                Step::Refuse(reject) => {
                    let reply = self.handler.reject(reject);
                    conn.reply(encode(&reply, false, true), true, now);
                    Step::Write
                }
                Step::Close => return self.close(id),
            };
        }
    }

    fn arm(&mut self, id: u64, flags: EventFlags) {
        let Some(conn) = self.conns.get(&id) else { return };
        if epoll::modify(&self.epoll, &conn.stream, EventData::new_u64(id), flags).is_err() {
            self.close(id);
        }
    }

    /// Admits a complete request and queues it, or answers at once.
    fn dispatch(&mut self, id: u64, request: crate::http::request::Request) {
        let admitted = match self.stopping {
            Some(_) => Err(self.handler.reject(Reject::Overloaded)),
            None => self.handler.admit(&request),
        };
        match admitted {
            Ok((lane, ticket)) => self.queue(id, lane, Job { conn: id, request, ticket }),
            Err(reply) => self.answer(id, reply),
        }
    }

    fn queue(&mut self, id: u64, lane: Lane, job: Job<H::Ticket>) {
        let sent = self.lanes.as_ref().is_some_and(|lanes| lanes.send(lane, job));
        if !sent {
            self.close(id);
        }
    }

    /// Writes a reply on connection `id` (it may have gone meanwhile).
    fn answer(&mut self, id: u64, reply: crate::http::reply::Reply) {
        let stopping = self.stopping.is_some();
        let Some(conn) = self.conns.get_mut(&id) else { return };
        let close = conn.closes() || stopping;
        conn.reply(encode(&reply, conn.head_only(), close), close, Instant::now());
        self.follow(id, Step::Write);
    }

    fn take_replies(&mut self) {
        while let Ok(Done { conn, reply }) = self.done.try_recv() {
            self.answer(conn, reply);
        }
    }

    /// Deadlines: 408 for a slow head or body, a quiet close otherwise.
    fn sweep(&mut self, now: Instant) {
        let expired: Vec<(u64, Step)> =
            self.conns.iter().filter_map(|(id, c)| c.expired(now).map(|step| (*id, step))).collect();
        for (id, step) in expired {
            self.follow(id, step);
        }
    }

    fn close(&mut self, id: u64) {
        if let Some(conn) = self.conns.remove(&id) {
            let _ = epoll::delete(&self.epoll, &conn.stream);
        }
    }

    /// Handles a stop; true when the poller should exit.
    fn take_control(&mut self) -> bool {
        match self.control.try_recv() {
            Ok(Control::Stop { deadline }) => self.begin_stop(deadline),
            Err(TryRecvError::Disconnected) if self.stopping.is_none() => self.begin_stop(Instant::now()),
            Err(_) => {}
        }
        let Some(deadline) = self.stopping else { return false };
        let busy = self.conns.values().filter(|c| c.is_busy()).count();
        if busy == 0 {
            return true;
        }
        if Instant::now() >= deadline {
            log::warn!("shutdown: {busy} requests were cut when the grace period ended");
            return true;
        }
        false
    }

    /// Closes the listening socket (new connections are refused) and every
    /// connection without a request in flight.
    fn begin_stop(&mut self, deadline: Instant) {
        self.stopping = Some(deadline);
        if let Some(listener) = self.listener.take() {
            let _ = epoll::delete(&self.epoll, &listener);
        }
        let idle: Vec<u64> = self.conns.iter().filter(|(_, c)| !c.is_busy()).map(|(id, _)| *id).collect();
        for id in idle {
            self.close(id);
        }
    }
}

impl<H: Handler> Drop for Poller<H> {
    fn drop(&mut self) {
        // Dropping the senders ends the workers once their jobs are done.
        self.lanes.take();
    }
}

fn read_flags() -> EventFlags {
    EventFlags::IN | EventFlags::ONESHOT
}

fn write_flags() -> EventFlags {
    EventFlags::OUT | EventFlags::ONESHOT
}

/// Reads what is there (at most 64 KiB a turn, so one client cannot hog
/// the poller), then parses. A client that half-closed after a complete
/// request still gets its answer.
fn read(conn: &mut Conn, now: Instant) -> Step {
    if conn.is_busy() {
        return Step::Wait;
    }
    let mut buf = [0u8; 16 << 10];
    let mut ended = false;
    for _ in 0..4 {
        match (&conn.stream).read(&mut buf) {
            Ok(0) => {
                ended = true;
                break;
            }
            Ok(n) => conn.received(&buf[..n], now),
            Err(e) if e.kind() == ErrorKind::WouldBlock => break,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Step::Close,
        }
    }
    match (conn.advance(now), ended) {
        (Step::Request(request), true) => {
            conn.close_after_reply();
            Step::Request(request)
        }
        (_, true) => Step::Close,
        (step, false) => step,
    }
}

/// Writes what is queued until done or the socket is full.
fn write(conn: &mut Conn, now: Instant) -> Step {
    loop {
        if conn.pending().is_empty() {
            return conn.wrote(0, now);
        }
        match (&conn.stream).write(conn.pending()) {
            Ok(0) => return Step::Close,
            Ok(n) => match conn.wrote(n, now) {
                Step::Write => continue,
                next => return next,
            },
            Err(e) if e.kind() == ErrorKind::WouldBlock => return Step::Write,
            Err(e) if e.kind() == ErrorKind::Interrupted => continue,
            Err(_) => return Step::Close,
        }
    }
}
