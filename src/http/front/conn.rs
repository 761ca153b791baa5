//! One client connection as a state machine over its buffers, free of I/O:
//! the poller reads bytes in and calls [`Conn::advance`], which says what to
//! do next (wait, refuse, or hand a complete request to a worker); replies
//! are queued with [`Conn::reply`] and written by the poller. Each phase has
//! its deadline: the head within `header_timeout`, the body with at most
//! `body_timeout` between bytes, an idle keep-alive connection for
//! `keepalive_timeout`, a write for `write_timeout` without progress.

use std::net::TcpStream;
use std::time::{Duration, Instant};

use super::parse::{Chunked, Framing, Head, Reject, parse_head};
use crate::http::request::Request;

/// The limits of one connection.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_header_bytes: usize,
    pub max_body: u64,
    pub header_timeout: Duration,
    pub body_timeout: Duration,
    pub keepalive_timeout: Duration,
    pub write_timeout: Duration,
}

#[derive(Debug)]
enum Phase {
    /// Waiting for a request head; `idle` until its first byte arrives on a
    /// kept-alive connection.
    Head {
        deadline: Instant,
        idle: bool,
    },
    Body {
        head: Head,
        chunked: Chunked,
        deadline: Instant,
    },
    /// A handler has the request; nothing is read meanwhile.
    Busy,
    /// Writing a reply; then close, or wait for the next request.
    Writing {
        deadline: Instant,
        close: bool,
    },
}

/// What the poller should do after new bytes or a finished write.
#[derive(Debug)]
pub enum Step {
    /// Read more (the connection waits for bytes).
    Read,
    /// Nothing until a worker's reply: the connection is busy.
    Wait,
    /// Write what is queued (`Conn::pending`).
    Write,
    /// A complete request for a worker; `head_only` for HEAD.
    Request(Request),
    /// Refuse with this reason, then close.
    Refuse(Reject),
    /// Close quietly.
    Close,
}

/// Buffers larger than this are given back after a request.
const KEEP_CAPACITY: usize = 64 << 10;

pub struct Conn {
    pub stream: TcpStream,
    input: Vec<u8>,
    /// How much of `input` the head phase has looked at (see `worth_parsing`).
    scanned: usize,
    output: Vec<u8>,
    written: usize,
    phase: Phase,
    keep_alive: bool,
    head_only: bool,
    limits: Limits,
}

impl Conn {
    pub fn new(stream: TcpStream, limits: Limits, now: Instant) -> Conn {
        Conn {
            stream,
            input: Vec::new(),
            scanned: 0,
            output: Vec::new(),
            written: 0,
            phase: Phase::Head { deadline: now + limits.header_timeout, idle: false },
            keep_alive: true,
            head_only: false,
            limits,
        }
    }

    /// Bytes arrived.
    pub fn received(&mut self, bytes: &[u8], now: Instant) {
        self.input.extend_from_slice(bytes);
        match &mut self.phase {
            Phase::Head { deadline, idle: idle @ true } => {
                *idle = false;
                *deadline = now + self.limits.header_timeout;
            }
            Phase::Body { deadline, .. } => *deadline = now + self.limits.body_timeout,
            _ => {}
        }
    }

    /// Parses what has arrived and says what comes next.
    pub fn advance(&mut self, now: Instant) -> Step {
        loop {
            let step = match &mut self.phase {
                Phase::Head { .. } => self.head(now),
                Phase::Body { .. } => self.body(),
                Phase::Busy => return Step::Wait,
                Phase::Writing { .. } => return Step::Write,
            };
            match step {
                Some(step) => return step,
                None => continue,
            }
        }
    }

    /// `None` when the head is complete and the body phase should run.
    fn head(&mut self, now: Instant) -> Option<Step> {
        if !self.worth_parsing() {
            return Some(match self.input.len() > self.limits.max_header_bytes {
                true => Step::Refuse(Reject::HeaderTooLarge),
                false => Step::Read,
            });
        }
        let head = match parse_head(&self.input, self.limits.max_header_bytes) {
            Ok(Some(head)) => head,
            Ok(None) => return Some(Step::Read),
            Err(reject) => return Some(Step::Refuse(reject)),
        };
        if let Framing::Length(n) = head.framing
            && n > self.limits.max_body
        {
            return Some(Step::Refuse(Reject::BodyTooLarge));
        }
        if head.expect_continue && head.framing != Framing::Length(0) {
            self.output.extend_from_slice(b"HTTP/1.1 100 Continue\r\n\r\n");
        }
        let deadline = now + self.limits.body_timeout;
        self.phase = Phase::Body { head, chunked: Chunked::default(), deadline };
        None
    }

    /// Whether parsing the head now can tell more than before: at its first
    /// bytes and when its request line ends, so bytes that cannot be HTTP
    /// (a TLS hello, a bad method or version) are refused at once, then
    /// once its blank line is in, so a head trickled in byte by byte is
    /// parsed a few times, not once per byte.
    fn worth_parsing(&mut self) -> bool {
        let (seen, new) = self.input.split_at(self.scanned);
        let first_bytes = seen.is_empty();
        let request_line_ends = new.contains(&b'\n') && !seen.contains(&b'\n');
        let from = self.scanned.saturating_sub(3);
        let blank_line = self.input[from..].windows(2).any(|w| w == b"\n\n")
            || self.input[from..].windows(3).any(|w| w == b"\n\r\n");
        self.scanned = self.input.len();
        first_bytes || request_line_ends || blank_line
    }

    fn body(&mut self) -> Option<Step> {
        let Phase::Body { head, chunked, .. } = &mut self.phase else { return None };
        let after_head = &self.input[head.len..];
        let (body, used) = match head.framing {
            Framing::Length(n) if after_head.len() as u64 >= n => {
                (after_head[..n as usize].to_vec(), n as usize)
            }
            Framing::Length(_) => return Some(self.read_or_flush()),
            Framing::Chunked => {
                match chunked.feed(after_head, self.limits.max_body, self.limits.max_header_bytes) {
                    Ok(true) => (std::mem::take(&mut chunked.body), chunked.consumed),
                    Ok(false) => return Some(self.read_or_flush()),
                    Err(reject) => return Some(Step::Refuse(reject)),
                }
            }
        };
        let total = head.len + used;
        let request = self.request(body);
        self.input.drain(..total);
        self.scanned = 0;
        if self.input.capacity() > KEEP_CAPACITY {
            self.input.shrink_to(self.input.len().max(4096));
        }
        Some(Step::Request(request))
    }

    /// While a body is awaited, a queued `100 Continue` goes out first.
    fn read_or_flush(&self) -> Step {
        if self.pending().is_empty() { Step::Read } else { Step::Write }
    }

    /// The request of the current head, with `body`; the connection is busy
    /// until [`Conn::reply`].
    fn request(&mut self, body: Vec<u8>) -> Request {
        let Phase::Body { head, .. } = std::mem::replace(&mut self.phase, Phase::Busy) else {
            unreachable!("request() runs in the body phase")
        };
        self.keep_alive = head.keep_alive;
        self.head_only = head.method == "HEAD";
        let mut request = Request::new(&head.method, &head.target);
        request.headers = head.headers;
        request.body = Ok(body);
        request.remote_addr = self.stream.peer_addr().ok();
        request
    }

    /// The client will send nothing more: close once answered.
    pub fn close_after_reply(&mut self) {
        self.keep_alive = false;
    }

    /// Whether the reply must close the connection.
    pub fn closes(&self) -> bool {
        !self.keep_alive
    }

    /// Whether the request being answered is a HEAD.
    pub fn head_only(&self) -> bool {
        self.head_only
    }

    /// Queues an encoded reply; `close` ends the connection after it.
    pub fn reply(&mut self, bytes: Vec<u8>, close: bool, now: Instant) {
        self.output.extend_from_slice(&bytes);
        self.keep_alive &= !close;
        self.phase = Phase::Writing { deadline: now + self.limits.write_timeout, close: !self.keep_alive };
    }

    /// Bytes still to write.
    pub fn pending(&self) -> &[u8] {
        &self.output[self.written..]
    }

    /// `n` more bytes were written; says what comes next.
    pub fn wrote(&mut self, n: usize, now: Instant) -> Step {
        self.written += n;
        if let Phase::Writing { deadline, .. } = &mut self.phase {
            *deadline = now + self.limits.write_timeout;
        }
        if !self.pending().is_empty() {
            return Step::Write;
        }
        self.output.clear();
        if self.output.capacity() > KEEP_CAPACITY {
            self.output = Vec::new();
        }
        self.written = 0;
        match self.phase {
            Phase::Writing { close: true, .. } => Step::Close,
            Phase::Writing { close: false, .. } => {
                self.phase = Phase::Head { deadline: now + self.limits.keepalive_timeout, idle: true };
                match self.input.is_empty() {
                    true => Step::Read,
                    false => self.advance(now),
                }
            }
            _ => self.advance(now),
        }
    }

    /// Whether a deadline passed, and what to do: 408 for a slow head or
    /// body, a quiet close for an idle or stalled connection.
    pub fn expired(&self, now: Instant) -> Option<Step> {
        match &self.phase {
            Phase::Head { deadline, idle: true } if now >= *deadline => Some(Step::Close),
            Phase::Head { deadline, .. } | Phase::Body { deadline, .. } if now >= *deadline => {
                Some(Step::Refuse(Reject::Timeout))
            }
            Phase::Writing { deadline, .. } if now >= *deadline => Some(Step::Close),
            _ => None,
        }
    }

    /// A handler holds this connection's request.
    pub fn is_busy(&self) -> bool {
        matches!(self.phase, Phase::Busy | Phase::Writing { .. })
    }

    /// Between requests (nothing of the next one has arrived).
    pub fn is_idle(&self) -> bool {
        matches!(self.phase, Phase::Head { idle: true, .. }) && self.input.is_empty()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::TcpListener;

    const LIMITS: Limits = Limits {
        max_header_bytes: 1024,
        max_body: 16,
        header_timeout: Duration::from_secs(10),
        body_timeout: Duration::from_secs(10),
        keepalive_timeout: Duration::from_secs(5),
        write_timeout: Duration::from_secs(10),
    };

    fn conn(now: Instant) -> Conn {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let stream = TcpStream::connect(listener.local_addr().unwrap()).unwrap();
        Conn::new(stream, LIMITS, now)
    }

    #[track_caller]
    fn request(step: Step) -> Request {
        match step {
            Step::Request(request) => request,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_request_trickling_in_is_handed_over_when_complete() {
        let now = Instant::now();
        let mut c = conn(now);
        for byte in b"POST /x?q=1 HTTP/1.1\r\nContent-Length: 3\r\n\r\nab" {
            c.received(&[*byte], now);
            assert!(matches!(c.advance(now), Step::Read));
        }
        c.received(b"c", now);
        let r = request(c.advance(now));
        assert_eq!((r.method.as_str(), r.path.as_str(), r.query.as_deref()), ("POST", "/x", Some("q=1")));
        assert_eq!(r.body, Ok(b"abc".to_vec()));
        assert!(c.is_busy() && !c.closes());
    }

    #[test]
    fn pipelined_requests_are_answered_one_after_another() {
        let now = Instant::now();
        let mut c = conn(now);
        c.received(b"GET /a HTTP/1.1\r\n\r\nGET /b HTTP/1.1\r\n\r\n", now);
        assert_eq!(request(c.advance(now)).path, "/a");
        assert!(matches!(c.advance(now), Step::Wait), "nothing more while busy");
        c.reply(b"reply-a".to_vec(), false, now);
        assert_eq!(c.pending(), b"reply-a");
        assert_eq!(request(c.wrote(7, now)).path, "/b");
    }

    #[test]
    fn close_after_the_reply_when_asked_or_when_the_client_said_so() {
        let now = Instant::now();
        let mut c = conn(now);
        c.received(b"GET / HTTP/1.1\r\nConnection: close\r\n\r\n", now);
        request(c.advance(now));
        assert!(c.closes());
        c.reply(b"bye".to_vec(), false, now);
        assert!(matches!(c.wrote(3, now), Step::Close));
    }

    #[test]
    fn a_head_without_its_blank_line_waits_until_the_limit() {
        let now = Instant::now();
        let mut c = conn(now);
        c.received(b"GET / HTTP/1.1\r\nX: ", now);
        assert!(matches!(c.advance(now), Step::Read));
        c.received(&[b'a'; 1024], now);
        assert!(matches!(c.advance(now), Step::Refuse(Reject::HeaderTooLarge)));
    }

    #[test]
    fn bytes_that_cannot_start_a_request_are_refused_before_any_blank_line() {
        let now = Instant::now();
        let mut c = conn(now);
        c.received(b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", now);
        assert!(matches!(c.advance(now), Step::Refuse(Reject::BadRequest(_))), "a TLS hello");
        let mut c = conn(now);
        c.received(b"GET / HT", now);
        assert!(matches!(c.advance(now), Step::Read));
        c.received(b"XP/1.1\r\nHost: a\r\n", now);
        assert!(matches!(c.advance(now), Step::Refuse(Reject::BadRequest(_))), "a bad version");
    }

    #[test]
    fn buffers_grown_by_a_large_request_are_given_back() {
        let now = Instant::now();
        let limits = Limits { max_body: 1 << 20, ..LIMITS };
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let mut c = Conn::new(TcpStream::connect(listener.local_addr().unwrap()).unwrap(), limits, now);
        c.received(b"POST / HTTP/1.1\r\nContent-Length: 1000000\r\n\r\n", now);
        c.received(&vec![b'x'; 1_000_000], now);
        request(c.advance(now));
        assert!(c.input.capacity() <= KEEP_CAPACITY, "input kept {} bytes", c.input.capacity());
        c.reply(vec![b'y'; 1_000_000], false, now);
        c.wrote(1_000_000, now);
        assert!(c.output.capacity() <= KEEP_CAPACITY, "output kept {} bytes", c.output.capacity());
    }

    #[test]
    fn a_large_declared_body_is_refused_before_it_is_read() {
        let now = Instant::now();
        let mut c = conn(now);
        c.received(b"POST / HTTP/1.1\r\nContent-Length: 17\r\n\r\n", now);
        assert!(matches!(c.advance(now), Step::Refuse(Reject::BodyTooLarge)));
    }

    #[test]
    fn expect_continue_queues_100_before_the_body() {
        let now = Instant::now();
        let mut c = conn(now);
        c.received(b"POST / HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n", now);
        assert!(matches!(c.advance(now), Step::Write));
        assert_eq!(c.pending(), b"HTTP/1.1 100 Continue\r\n\r\n");
        assert!(matches!(c.wrote(25, now), Step::Read));
        c.received(b"hi", now);
        assert_eq!(request(c.advance(now)).body, Ok(b"hi".to_vec()));
    }

    #[test]
    fn deadlines_by_phase() {
        let now = Instant::now();
        let mut c = conn(now);
        assert!(c.expired(now + Duration::from_secs(9)).is_none());
        assert!(matches!(c.expired(now + LIMITS.header_timeout), Some(Step::Refuse(Reject::Timeout))));
        c.received(b"POST / HTTP/1.1\r\nContent-Length: 5\r\n\r\nab", now);
        c.advance(now);
        let later = now + Duration::from_secs(8);
        c.received(b"c", later);
        assert!(c.expired(now + LIMITS.body_timeout).is_none(), "bytes moved the body deadline");
        assert!(matches!(c.expired(later + LIMITS.body_timeout), Some(Step::Refuse(Reject::Timeout))));
        c.received(b"de", later);
        request(c.advance(later));
        assert!(c.expired(later + Duration::from_secs(3600)).is_none(), "a busy connection has no deadline");
        c.reply(b"ok".to_vec(), false, later);
        assert!(matches!(c.wrote(2, later), Step::Read));
        assert!(c.is_idle());
        assert!(
            matches!(c.expired(later + LIMITS.keepalive_timeout), Some(Step::Close)),
            "idle: a quiet close"
        );
    }
}
