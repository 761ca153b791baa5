//! The idle crowd: keep-alive connections that each make one request
//! (`GET /health/live`) and then say nothing. alyx must close each one
//! quietly once `keepalive_timeout` has passed (not before it, and not long
//! after); a new one takes its place at once, so the crowd stays the same
//! size all the run. One thread waits on all of them with poll(2).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use rustix::event::{PollFd, PollFlags, Timespec, poll};

use crate::tally::Tally;
use crate::wire::Conn;

const PROBE: &[u8] = b"GET /health/live HTTP/1.1\r\nHost: soak\r\n\r\n";
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// How much later than `keepalive_timeout` a close may come (the poller
/// checks deadlines every 100 ms; this thread may be busy reopening).
const LATE: Duration = Duration::from_secs(3);

/// One idle connection, answered at `since`.
struct Held {
    conn: Conn,
    since: Instant,
}

pub struct Crowd {
    addr: SocketAddr,
    size: usize,
    keepalive: Duration,
    held: Vec<Held>,
    tally: Tally,
}

impl Crowd {
    /// Opens `size` idle connections.
    pub fn open(addr: SocketAddr, size: usize, keepalive: Duration) -> Crowd {
        let mut crowd =
            Crowd { addr, size, keepalive, held: Vec::with_capacity(size), tally: Tally::default() };
        crowd.top_up();
        crowd
    }

    /// Holds the crowd until `until`, reopening what alyx closes.
    pub fn hold(mut self, until: Instant) -> Tally {
        while let Some(left) = until.checked_duration_since(Instant::now()) {
            for i in self.ready(left.min(Duration::from_secs(1))).into_iter().rev() {
                let held = self.held.swap_remove(i);
                self.closed(held);
            }
            self.top_up();
        }
        self.tally
    }

    /// Opens connections until the crowd is whole (or one fails).
    fn top_up(&mut self) {
        while self.held.len() < self.size {
            match self.open_one() {
                Some(held) => self.held.push(held),
                None => return,
            }
        }
    }

    fn open_one(&mut self) -> Option<Held> {
        let mut conn = Conn::open(self.addr).map_err(|e| self.tally.fail("idle: connect failed", e)).ok()?;
        conn.send(PROBE).map_err(|e| self.tally.fail("idle: send failed", e)).ok()?;
        match conn.response(ANSWER_WITHIN) {
            Ok(r) if r.status == 200 && !r.closes() => {
                self.tally.answer("idle 200");
                Some(Held { conn, since: Instant::now() })
            }
            Ok(r) => {
                self.tally.fail(format!("idle: status {}", r.status), r.summary());
                None
            }
            Err(dropped) => {
                self.tally.fail(format!("idle: {dropped}"), "GET /health/live");
                None
            }
        }
    }

    /// Indexes of the connections with something to read (or closed).
    fn ready(&self, within: Duration) -> Vec<usize> {
        let mut fds: Vec<PollFd> =
            self.held.iter().map(|h| PollFd::new(&h.conn.stream, PollFlags::IN)).collect();
        let timeout = Timespec { tv_sec: within.as_secs() as i64, tv_nsec: within.subsec_nanos().into() };
        if poll(&mut fds, Some(&timeout)).is_err() {
            return Vec::new();
        }
        fds.iter().enumerate().filter(|(_, fd)| !fd.revents().is_empty()).map(|(i, _)| i).collect()
    }

    /// A connection alyx closed, or wrote to: it must be a quiet close
    /// once `keepalive_timeout` has passed.
    fn closed(&mut self, mut held: Held) {
        if !held.conn.closes_quietly(Duration::from_secs(1)) {
            return self.tally.fail("idle: bytes on an idle connection", "expected a quiet close");
        }
        let lived = held.since.elapsed();
        let keepalive = self.keepalive;
        if lived < keepalive.mul_f64(0.9) {
            self.tally.fail("idle: closed before keepalive_timeout", format!("{lived:?} < {keepalive:?}"));
        } else if lived > keepalive + LATE {
            self.tally
                .fail("idle: closed long after keepalive_timeout", format!("{lived:?} > {keepalive:?}"));
        } else {
            self.tally.answer("idle closed after keepalive_timeout");
        }
    }
}
