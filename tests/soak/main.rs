//! The soak test (issue 8): one real `alyx serve` under every kind of
//! traffic at once, on loopback, for a while: fast calls on keep-alive
//! connections, slow calls that fill their function's queue, a crowd of idle
//! connections, slowloris heads and bodies, oversized bodies, malformed
//! requests, and hot reloads of the fast function while it is called. It
//! fails on any answer that is not the one promised (a dropped connection
//! included), on more threads than alyx's fixed set, and on memory that
//! keeps growing.
//!
//! `make soak` runs [`soak`] (ignored otherwise) on a release build for
//! `SOAK_SECONDS` (300); [`a_short_soak_holds`] runs the same driver for a
//! few seconds with small numbers inside `make test`.

#[path = "../common/mod.rs"]
mod common;

mod abuse;
mod calls;
mod idle;
mod report;
mod sampler;
mod tally;

mod wire;

use std::time::{Duration, Instant};

use alyx::http::front::workers::CONTROL_WORKERS;

use abuse::Deadlines;
use calls::{ADMIN_TOKEN, Generations};
use common::alyx::{Alyx, Folder};
use idle::Crowd;
use report::Report;
use sampler::Sampler;
use tally::Tally;

/// How long, how many clients of each kind, and the front's deadlines.
#[derive(Debug, Clone)]
struct Plan {
    duration: Duration,
    fast_clients: usize,
    slow_clients: usize,
    /// Clients raising events (a sync and an async hook each).
    event_clients: usize,
    idle: usize,
    tricklers: usize,
    reloads: u64,
    deadlines: Deadlines,
    keepalive: Duration,
    max_body: u64,
}

/// Invoke workers: the harness starts alyx with `--workers 8`.
const WORKERS: usize = 8;
/// alyx's fixed threads besides the invoke workers: the control workers,
/// the poller, the main thread (which waits for a signal), the ctrlc
/// crate's signal thread, the janitor, the scheduler with its runners, and
/// the event workers (`event_workers`, 2) with the journal's writer.
/// Nothing else runs in `alyx serve` (the dev loop's watcher and builds
/// are not there).
const OTHER_THREADS: usize =
    CONTROL_WORKERS + 1 + 1 + 1 + 1 + 1 + alyx::triggers::schedules::RUNNERS + EVENT_THREADS;
/// Event delivery workers (the default 2) and the journal's writer.
const EVENT_THREADS: usize = 2 + 1;
/// A function's instances, and the calls that may wait for one: the slow
/// function admits 6 calls at once, so the slow clients fill its queue, and
/// 6 of the 8 invoke workers at most wait on it (with the default queue of
/// 64, one slow function could hold every invoke worker).
const INSTANCES: &str = "4";
const QUEUE_DEPTH: &str = "2";

/// The soak proper: `SOAK_SECONDS` (default 300) with alyx's default
/// deadlines and body limit.
#[test]
#[ignore = "minutes long; run by `make soak`"]
fn soak() {
    let seconds = std::env::var("SOAK_SECONDS").ok().and_then(|s| s.parse().ok()).unwrap_or(300);
    run(Plan {
        duration: Duration::from_secs(seconds),
        fast_clients: 4,
        slow_clients: 12,
        event_clients: 2,
        idle: 1000,
        tricklers: 8,
        reloads: 10,
        deadlines: Deadlines { header: Duration::from_secs(10), body: Duration::from_secs(10) },
        keepalive: Duration::from_secs(5),
        max_body: 4 << 20,
    });
}

/// A slice of the soak inside `make test`: every kind of traffic, small
/// numbers, short deadlines so each of them fires within the slice.
#[test]
fn a_short_soak_holds() {
    run(Plan {
        duration: Duration::from_secs(8),
        fast_clients: 2,
        slow_clients: 8,
        event_clients: 1,
        idle: 100,
        tricklers: 4,
        reloads: 2,
        deadlines: Deadlines { header: Duration::from_secs(1), body: Duration::from_secs(1) },
        keepalive: Duration::from_secs(1),
        max_body: 64 << 10,
    });
}

/// Runs `plan`, prints the report and fails with its problems.
#[track_caller]
fn run(plan: Plan) {
    let report = drive(&plan);
    println!("{report}");
    let problems = report.problems();
    assert!(problems.is_empty(), "the soak failed:\n  {}", problems.join("\n  "));
}

/// Starts alyx, opens the idle crowd, lets every client run until the
/// plan's time is up while the fast function is reloaded, and reports.
fn drive(plan: &Plan) -> Report {
    let alyx = start(plan);
    let addr = alyx.addr();
    let crowd = Crowd::open(addr, plan.idle, plan.keepalive);
    let start = Instant::now();
    let until = start + plan.duration;
    let sampler = Sampler::start(alyx.pid(), start);
    let generations = Generations::default();
    let mut tally = std::thread::scope(|scope| {
        let mut clients = vec![scope.spawn(move || crowd.hold(until))];
        for _ in 0..plan.fast_clients {
            clients.push(scope.spawn(|| calls::fast(addr, until, &generations)));
        }
        for _ in 0..plan.slow_clients {
            clients.push(scope.spawn(move || calls::slow(addr, until)));
        }
        for _ in 0..plan.event_clients {
            clients.push(scope.spawn(move || calls::events(addr, until)));
        }
        for first in 0..plan.tricklers {
            clients.push(scope.spawn(move || abuse::trickle(addr, until, first, plan.deadlines)));
        }
        clients.push(scope.spawn(move || abuse::oversized(addr, until, plan.max_body)));
        clients.push(scope.spawn(move || abuse::malformed(addr, until)));
        let mut tally = reload_during(&alyx, plan, start, &generations);
        for client in clients {
            tally.add(client.join().expect("a client does not panic"));
        }
        tally
    });
    let samples = sampler.stop();
    if alyx.get("/health/live").0 != 200 {
        tally.fail("after the soak: /health/live is not 200", "");
    }
    calls::deliveries_done(&alyx, &mut tally);
    Report { duration: plan.duration, tally, samples, thread_bound: WORKERS + OTHER_THREADS, idle: plan.idle }
}

/// `alyx serve` with a fast, a slow and a sink function; the sink hooks
/// the soak's events, once in the chain and once delivered after.
fn start(plan: &Plan) -> Alyx {
    let hooks = "hooks: [{type: custom, source: soak}, {type: custom, source: soak, mode: async}]\n";
    let folder = Folder::new().function("slow", "nap.wat", "nap_500", "").function(
        "sink",
        "echo.wat",
        "input_len",
        hooks,
    );
    calls::write_fast(&folder.0, 0);
    let ms = |d: Duration| format!("{}ms", d.as_millis());
    let (header, body, keepalive) = (ms(plan.deadlines.header), ms(plan.deadlines.body), ms(plan.keepalive));
    let max_body = plan.max_body.to_string();
    folder.serve(&[
        "--admin-token",
        ADMIN_TOKEN,
        "--instances",
        INSTANCES,
        "--queue-depth",
        QUEUE_DEPTH,
        "--header-timeout",
        &header,
        "--body-timeout",
        &body,
        "--keepalive-timeout",
        &keepalive,
        "--max-body",
        &max_body,
    ])
}

/// The plan's reloads, evenly spread over the run.
fn reload_during(alyx: &Alyx, plan: &Plan, start: Instant, generations: &Generations) -> Tally {
    let mut tally = Tally::default();
    for generation in 1..=plan.reloads {
        let at = start + plan.duration.mul_f64(generation as f64 / (plan.reloads + 1) as f64);
        std::thread::sleep(at.saturating_duration_since(Instant::now()));
        calls::reload(alyx, generation, generations, &mut tally);
    }
    tally
}
