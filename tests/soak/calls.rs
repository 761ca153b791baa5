//! Function calls on keep-alive connections, and the hot reloads they must
//! not notice. Fast calls (`fast`: echo.wat `echo`, which returns the
//! envelope) must all be 200, and each names the generation of the manifest
//! that answered it: never older than the last reload that finished before
//! the call was sent, never older than one this client already saw. Slow
//! calls (`slow`: nap.wat `nap_500`) are 200, or 503 with `Retry-After` once
//! the function's instances and queue are full.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, Ordering::SeqCst};
use std::time::{Duration, Instant};

use crate::common::alyx::Alyx;
use crate::common::plugin_bytes;
use crate::tally::Tally;
use crate::wire::{Conn, Response};

const FAST_WITHIN: Duration = Duration::from_secs(10);
/// A slow call may wait for an instance behind the others, within alyx's
/// default 30 s time limit.
const SLOW_WITHIN: Duration = Duration::from_secs(35);
/// A refused slow call is retried after this (sooner than `Retry-After`
/// asks, to keep the queue full).
const RETRY_PAUSE: Duration = Duration::from_millis(100);
pub const ADMIN_TOKEN: &str = "soak-admin-token";

/// Which generations of the fast function may answer.
#[derive(Debug, Default)]
pub struct Generations {
    /// The newest generation written to disk.
    started: AtomicU64,
    /// The newest generation whose reload has answered.
    done: AtomicU64,
}

/// The fast function's manifest and plugin for `generation`, both changed
/// by every reload (the plugin only by a comment).
pub fn write_fast(alyx_folder: &crate::common::TempDir, generation: u64) {
    let manifest =
        format!("name: fast\nentrypoint: echo\nplugin: plugin.wat\nenv: {{GENERATION: \"{generation}\"}}\n");
    let mut plugin = plugin_bytes("echo.wat");
    plugin.extend_from_slice(format!("\n;; generation {generation}\n").as_bytes());
    alyx_folder.write("fast/plugin.wat", plugin);
    alyx_folder.write("fast/manifest.yaml", manifest);
}

/// Rewrites the fast function as `generation` and reloads it.
pub fn reload(alyx: &Alyx, generation: u64, generations: &Generations, tally: &mut Tally) {
    write_fast(&alyx.folder.0, generation);
    generations.started.store(generation, SeqCst);
    let (status, body) = alyx.post_auth("/api/functions/reload", ADMIN_TOKEN);
    let loaded = body["loaded"].as_array().is_some_and(|l| l.iter().any(|n| n == "fast"));
    match (status, loaded) {
        (200, true) => tally.answer("reload 200"),
        _ => tally.fail("reload: fast was not reloaded", format!("{status} {body}")),
    }
    generations.done.store(generation, SeqCst);
}

/// One fast client until `until`.
pub fn fast(addr: SocketAddr, until: Instant, generations: &Generations) -> Tally {
    let mut tally = Tally::default();
    let mut conn = None;
    let mut newest_seen = 0;
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let floor = generations.done.load(SeqCst);
        let body = format!("{{\"input\": {n}}}");
        let request = post("fast", &body);
        match call(&mut conn, addr, request.as_bytes(), FAST_WITHIN) {
            Ok(r) if r.status == 200 => match generation(&r, n) {
                Ok(g) if g < floor => tally.fail("fast: an older version answered after a reload", g),
                Ok(g) if g < newest_seen => tally.fail("fast: the version went backwards", g),
                Ok(g) if g > generations.started.load(SeqCst) => {
                    tally.fail("fast: a version never written", g)
                }
                Ok(g) => {
                    newest_seen = g;
                    tally.answer("fast 200");
                }
                Err(why) => tally.fail("fast: wrong output", why),
            },
            Ok(r) => tally.fail(format!("fast: status {}", r.status), r.summary()),
            Err(kind) => tally.fail(format!("fast: {kind}"), format!("call {n}")),
        }
    }
    tally
}

/// The generation that answered call `n`, if the output is the envelope of `n`.
fn generation(response: &Response, n: u64) -> Result<u64, String> {
    let body = response.json();
    let output = &body["output"];
    let generation = output["context"]["env"]["GENERATION"].as_str().and_then(|g| g.parse().ok());
    match generation {
        Some(g) if output["input"] == n => Ok(g),
        _ => Err(response.summary()),
    }
}

/// One slow client until `until`.
pub fn slow(addr: SocketAddr, until: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut conn = None;
    let request = post("slow", "");
    while Instant::now() < until {
        match call(&mut conn, addr, request.as_bytes(), SLOW_WITHIN) {
            Ok(r) if r.status == 200 && r.json()["output"] == "rested" => tally.answer("slow 200"),
            Ok(r) if r.status == 503 && r.header("Retry-After").is_some() => {
                tally.answer("slow 503 + Retry-After");
                std::thread::sleep(RETRY_PAUSE);
            }
            Ok(r) if r.status == 503 => tally.fail("slow: 503 without Retry-After", r.summary()),
            Ok(r) => tally.fail(format!("slow: status {}", r.status), r.summary()),
            Err(kind) => tally.fail(format!("slow: {kind}"), "POST /api/functions/slow"),
        }
    }
    tally
}

/// One client raising events until `until`: each passes the sync hook and
/// queues one async delivery (202, `queued: 1`).
pub fn events(addr: SocketAddr, until: Instant) -> Tally {
    let mut tally = Tally::default();
    let mut conn = None;
    let mut n = 0u64;
    while Instant::now() < until {
        n += 1;
        let body = format!(r#"{{"type":"custom","source":"soak","action":"tick","data":{n}}}"#);
        let length = body.len();
        let request =
            format!("POST /api/events HTTP/1.1\r\nHost: soak\r\nContent-Length: {length}\r\n\r\n{body}");
        match call(&mut conn, addr, request.as_bytes(), FAST_WITHIN) {
            Ok(r) if r.status == 202 && r.json()["queued"] == 1 && r.json()["data"] == n => {
                tally.answer("event 202")
            }
            Ok(r) => tally.fail(format!("event: status {}", r.status), r.summary()),
            Err(kind) => tally.fail(format!("event: {kind}"), format!("event {n}")),
        }
    }
    tally
}

/// After the run: every accepted event's async delivery is made (none
/// waiting, none failed) within a deadline.
pub fn deliveries_done(alyx: &Alyx, tally: &mut Tally) {
    let deadline = Instant::now() + Duration::from_secs(60);
    loop {
        let (_, _, metrics) = alyx.request("GET", "/metrics", &[], b"");
        let metrics = String::from_utf8_lossy(&metrics);
        let done = metrics.contains("alyx_event_deliveries{state=\"pending\"} 0\n")
            && metrics.contains("alyx_event_deliveries{state=\"failed\"} 0\n");
        if done {
            return tally.answer("events all delivered");
        }
        if Instant::now() > deadline {
            let states: Vec<&str> =
                metrics.lines().filter(|l| l.starts_with("alyx_event_deliveries")).collect();
            return tally.fail("events: deliveries left 60 s after the run", states.join(", "));
        }
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// `POST /api/functions/{function}` with `body`, keeping the connection open.
pub fn post(function: &str, body: &str) -> String {
    let length = body.len();
    format!("POST /api/functions/{function} HTTP/1.1\r\nHost: soak\r\nContent-Length: {length}\r\n\r\n{body}")
}

/// Sends `request` on `conn` (opened if needed) and reads the response;
/// the connection is dropped when it fails or the server closes it.
fn call(
    conn: &mut Option<Conn>,
    addr: SocketAddr,
    request: &[u8],
    within: Duration,
) -> Result<Response, String> {
    let open = match conn {
        Some(open) => open,
        None => conn.insert(Conn::open(addr).map_err(|e| format!("connect failed ({e})"))?),
    };
    let answer = match open.send(request) {
        Ok(()) => open.response(within).map_err(|d| d.to_string()),
        Err(e) => Err(format!("send failed ({})", e.kind())),
    };
    if answer.as_ref().map_or(true, Response::closes) {
        *conn = None;
    }
    answer
}
