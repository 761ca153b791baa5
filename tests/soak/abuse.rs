//! Clients that break the rules, each on its own connection, each expecting
//! the one answer the front promises, then a close:
//!
//! - slowloris: a head trickled a byte at a time is answered if it is
//!   complete within `header_timeout`, else 408 when that passes; a body
//!   may arrive as slowly as it likes as long as no pause is longer than
//!   `body_timeout`, else 408;
//! - oversized bodies, declared or chunked: 413;
//! - malformed or ambiguous requests: 400, 431 or 505.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::tally::Tally;
use crate::wire::{Conn, Dropped, Response};

/// The front's deadlines the slow clients test.
#[derive(Debug, Clone, Copy)]
pub struct Deadlines {
    pub header: Duration,
    pub body: Duration,
}

/// How long after a deadline its 408 may come (deadlines are checked
/// every 100 ms, and the machine is busy).
const LATE: Duration = Duration::from_secs(2);
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// A refusal is followed by a close within this.
const CLOSE_WITHIN: Duration = Duration::from_secs(2);

/// One slowloris client until `until`; it cycles through the four ways of
/// trickling, starting at `first`, so several clients spread over them.
pub fn trickle(addr: SocketAddr, until: Instant, first: usize, deadlines: Deadlines) -> Tally {
    let mut tally = Tally::default();
    for way in (first..).map(|w| w % 4) {
        if Instant::now() >= until {
            break;
        }
        let Ok(mut conn) = Conn::open(addr).map_err(|e| tally.fail("slowloris: connect failed", e)) else {
            continue;
        };
        match way {
            0 => head_in_time(&mut conn, deadlines, &mut tally),
            1 => head_too_slow(&mut conn, deadlines, &mut tally),
            2 => body_in_time(&mut conn, deadlines, &mut tally),
            _ => body_stalls(&mut conn, deadlines, &mut tally),
        }
    }
    tally
}

const TRICKLED_GET: &[u8] = b"GET /health/live HTTP/1.1\r\nHost: soak\r\nConnection: close\r\n\r\n";

/// The whole head within a quarter of `header_timeout`: answered.
fn head_in_time(conn: &mut Conn, deadlines: Deadlines, tally: &mut Tally) {
    let started = Instant::now();
    let every = deadlines.header / 4 / TRICKLED_GET.len() as u32;
    if let Some(early) = send_slowly(conn, TRICKLED_GET, every) {
        let detail = format!("{} after {:?}", summary(&early), started.elapsed());
        return tally.fail("slowloris: answered before the head was complete", detail);
    }
    expect(conn.response(ANSWER_WITHIN), 200, "trickled head 200", "slowloris: trickled head", tally);
}

/// A head that would take twice `header_timeout`: 408 when it passes.
fn head_too_slow(conn: &mut Conn, deadlines: Deadlines, tally: &mut Tally) {
    let started = Instant::now();
    let every = deadlines.header * 2 / TRICKLED_GET.len() as u32;
    let Some(answer) = send_slowly(conn, TRICKLED_GET, every) else {
        return tally.fail("slowloris: a head slower than header_timeout was not refused", "");
    };
    refused_on_time(conn, answer, started + deadlines.header, "trickled head 408", tally);
}

const BODY: &[u8] = b"\"trickle\"";

/// A body a byte every quarter of `body_timeout`, longer in all than
/// `body_timeout` but never pausing that long: answered.
fn body_in_time(conn: &mut Conn, deadlines: Deadlines, tally: &mut Tally) {
    let head =
        format!("POST /api/functions/sink HTTP/1.1\r\nHost: soak\r\nContent-Length: {}\r\n\r\n", BODY.len());
    if conn.send(head.as_bytes()).is_err() {
        return tally.fail("slowloris: send failed", "the head of a trickled body");
    }
    if let Some(early) = send_slowly(conn, BODY, deadlines.body / 4) {
        return tally.fail("slowloris: answered before the body was complete", summary(&early));
    }
    expect(conn.response(ANSWER_WITHIN), 200, "trickled body 200", "slowloris: trickled body", tally);
}

/// Three bytes of a longer body, then silence: 408 after `body_timeout`.
fn body_stalls(conn: &mut Conn, deadlines: Deadlines, tally: &mut Tally) {
    let head = "POST /api/functions/sink HTTP/1.1\r\nHost: soak\r\nContent-Length: 20\r\n\r\n";
    if conn.send(head.as_bytes()).is_err() {
        return tally.fail("slowloris: send failed", "the head of a stalled body");
    }
    if let Some(early) = send_slowly(conn, b"\"ab", deadlines.body / 4) {
        return tally.fail("slowloris: answered before the body stalled", summary(&early));
    }
    let stalled = Instant::now();
    let answer = conn.response(deadlines.body + LATE + Duration::from_secs(1));
    refused_on_time(conn, answer, stalled + deadlines.body, "stalled body 408", tally);
}

/// Sends `bytes` one at a time, `every` apart (on a fixed schedule, so a
/// late wake-up does not delay the rest), watching for an answer in the
/// pauses; the answer (or how the connection ended) if one came before the
/// last byte. A failed send stops the trickle and reads what came.
fn send_slowly(conn: &mut Conn, bytes: &[u8], every: Duration) -> Option<Result<Response, Dropped>> {
    let start = Instant::now();
    for (i, byte) in bytes.iter().enumerate() {
        if conn.send(&[*byte]).is_err() {
            return Some(conn.response(ANSWER_WITHIN));
        }
        if i + 1 == bytes.len() {
            return None;
        }
        let next = start + every * (i as u32 + 1);
        match conn.response(next.saturating_duration_since(Instant::now())) {
            Err(Dropped::Timeout) => {}
            other => return Some(other),
        }
    }
    None
}

/// A 408 that came when `deadline` passed (not before, not long after),
/// then a close.
fn refused_on_time(
    conn: &mut Conn,
    answer: Result<Response, Dropped>,
    deadline: Instant,
    kind: &'static str,
    tally: &mut Tally,
) {
    let now = Instant::now();
    match answer {
        Ok(r) if r.status != 408 => {
            tally.fail(format!("slowloris: status {} for {kind}", r.status), r.summary())
        }
        Ok(_) if now + Duration::from_millis(100) < deadline => {
            tally.fail("slowloris: 408 before the deadline", format!("{kind}, {:?} early", deadline - now))
        }
        Ok(_) if now > deadline + LATE => {
            tally.fail("slowloris: 408 long after the deadline", format!("{kind}, {:?} late", now - deadline))
        }
        Ok(r) => closed_after(conn, &r, kind, tally),
        Err(dropped) => tally.fail(format!("slowloris: {dropped}"), kind),
    }
}

/// The expected `status`, then a close.
fn expect(answer: Result<Response, Dropped>, status: u16, kind: &'static str, what: &str, tally: &mut Tally) {
    match answer {
        Ok(r) if r.status == status => tally.answer(kind),
        Ok(r) => tally.fail(format!("{what}: status {}", r.status), r.summary()),
        Err(dropped) => tally.fail(format!("{what}: {dropped}"), kind),
    }
}

/// Counts `kind` if `response` announced a close and the close came.
fn closed_after(conn: &mut Conn, response: &Response, kind: &'static str, tally: &mut Tally) {
    match response.closes() && conn.closes_quietly(CLOSE_WITHIN) {
        true => tally.answer(kind),
        false => tally.fail("a refusal without Connection: close and a close", kind),
    }
}

fn summary(answer: &Result<Response, Dropped>) -> String {
    match answer {
        Ok(r) => r.summary(),
        Err(dropped) => dropped.to_string(),
    }
}

/// Pause between two oversized requests.
const OVERSIZED_PACE: Duration = Duration::from_millis(100);

/// One client sending bodies over `max_body` until `until`, declared and
/// chunked in turn; the whole body is sent (as a naive client would) until
/// the server stops taking it.
pub fn oversized(addr: SocketAddr, until: Instant, max_body: u64) -> Tally {
    let mut tally = Tally::default();
    for n in 0.. {
        if Instant::now() >= until {
            break;
        }
        let Ok(mut conn) = Conn::open(addr).map_err(|e| tally.fail("oversized: connect failed", e)) else {
            continue;
        };
        let (kind, wire) = match n % 2 {
            0 => ("declared body 413", declared(max_body + 1)),
            _ => ("chunked body 413", chunked(max_body + 1)),
        };
        for piece in wire.chunks(64 << 10) {
            if conn.send(piece).is_err() {
                break;
            }
        }
        match conn.response(ANSWER_WITHIN) {
            Ok(r) if r.status == 413 => closed_after(&mut conn, &r, kind, &mut tally),
            Ok(r) => tally.fail(format!("oversized: status {} for {kind}", r.status), r.summary()),
            Err(dropped) => tally.fail(format!("oversized: {dropped}"), kind),
        }
        std::thread::sleep(OVERSIZED_PACE);
    }
    tally
}

fn declared(length: u64) -> Vec<u8> {
    let mut wire =
        format!("POST /api/functions/sink HTTP/1.1\r\nHost: soak\r\nContent-Length: {length}\r\n\r\n")
            .into_bytes();
    wire.resize(wire.len() + length as usize, b'x');
    wire
}

fn chunked(length: u64) -> Vec<u8> {
    let mut wire =
        b"POST /api/functions/sink HTTP/1.1\r\nHost: soak\r\nTransfer-Encoding: chunked\r\n\r\n".to_vec();
    let mut left = length as usize;
    while left > 0 {
        let size = left.min(16 << 10);
        wire.extend_from_slice(format!("{size:x}\r\n").as_bytes());
        wire.resize(wire.len() + size, b'x');
        wire.extend_from_slice(b"\r\n");
        left -= size;
    }
    wire.extend_from_slice(b"0\r\n\r\n");
    wire
}

/// A request that must be refused, and the statuses it gets.
struct Case {
    name: &'static str,
    wire: Vec<u8>,
    expected: &'static [u16],
    kind: &'static str,
}

fn case(name: &'static str, wire: impl AsRef<[u8]>, expected: &'static [u16], kind: &'static str) -> Case {
    Case { name, wire: wire.as_ref().to_vec(), expected, kind }
}

fn cases() -> Vec<Case> {
    let post = "POST /api/functions/fast HTTP/1.1\r\nHost: soak\r\n";
    let many_headers: String = (0..=100).map(|i| format!("X-{i}: v\r\n")).collect();
    vec![
        case("HTTP/2.0", "GET /health/live HTTP/2.0\r\n\r\n", &[505], "malformed 505"),
        case(
            "two lengths",
            format!("{post}Content-Length: 3\r\nContent-Length: 10\r\n\r\nabc"),
            &[400],
            "malformed 400",
        ),
        case("a signed length", format!("{post}Content-Length: +3\r\n\r\nabc"), &[400], "malformed 400"),
        case(
            "a length and chunked",
            format!("{post}Content-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"),
            &[400],
            "malformed 400",
        ),
        case("gzip coding", format!("{post}Transfer-Encoding: gzip\r\n\r\n"), &[400], "malformed 400"),
        case(
            "a bad chunk size",
            format!("{post}Transfer-Encoding: chunked\r\n\r\nzz\r\n"),
            &[400],
            "malformed 400",
        ),
        case("a path not UTF-8", b"GET /caf\xc3\x28 HTTP/1.1\r\n\r\n", &[400], "malformed 400"),
        case("a TLS hello", b"\x16\x03\x01\x00\xa5\x01\x00\x00\xa1\x03\x03", &[400], "malformed 400"),
        case(
            "a space before a colon",
            "GET /health/live HTTP/1.1\r\nHost : soak\r\n\r\n",
            &[400],
            "malformed 400",
        ),
        case(
            "garbage after a good request",
            "GET /health/live HTTP/1.1\r\nHost: soak\r\n\r\nBAD\r\n\r\n",
            &[200, 400],
            "malformed 400",
        ),
        case(
            "a 70 KB head",
            format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(70_000)),
            &[431],
            "malformed 431",
        ),
        case("101 headers", format!("GET / HTTP/1.1\r\n{many_headers}\r\n"), &[431], "malformed 431"),
    ]
}

/// Pause between two malformed requests.
const MALFORMED_PACE: Duration = Duration::from_millis(20);

/// One client sending each malformed request in turn until `until`.
pub fn malformed(addr: SocketAddr, until: Instant) -> Tally {
    let mut tally = Tally::default();
    for case in cases().iter().cycle() {
        if Instant::now() >= until {
            break;
        }
        match Conn::open(addr) {
            Ok(mut conn) => refused(&mut conn, case, &mut tally),
            Err(e) => tally.fail("malformed: connect failed", e),
        }
        std::thread::sleep(MALFORMED_PACE);
    }
    tally
}

/// The case's statuses in order, the last one closing the connection.
fn refused(conn: &mut Conn, case: &Case, tally: &mut Tally) {
    let _ = conn.send(&case.wire);
    let mut last = None;
    for expected in case.expected {
        match conn.response(ANSWER_WITHIN) {
            Ok(r) if r.status == *expected => last = Some(r),
            Ok(r) => {
                return tally.fail(format!("malformed: {}: status {}", case.name, r.status), r.summary());
            }
            Err(dropped) => return tally.fail(format!("malformed: {}: {dropped}", case.name), expected),
        }
    }
    if let Some(response) = last {
        closed_after(conn, &response, case.kind, tally);
    }
}
