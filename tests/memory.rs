//! Memory `alyx serve` gives back: the real binary, its resident set read
//! from `/proc/PID/status`. Calls that grow linear memory must not leave
//! their peak behind in idle instances: an instance that outgrew its start
//! is dropped when its call ends, and idle instances beyond one per
//! function are dropped after `idle_instance_ttl`.

mod common;

use std::time::{Duration, Instant};

use common::alyx::{Alyx, Folder};

const MIB: u64 = 1 << 20;

/// The resident set of a process, from `/proc/PID/status` (`VmRSS`).
fn rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).expect("/proc/PID/status");
    let line = status.lines().find(|l| l.starts_with("VmRSS:")).expect("a VmRSS line");
    let kib: u64 = line.split_whitespace().nth(1).and_then(|n| n.parse().ok()).expect("VmRSS in kB");
    kib * 1024
}

/// `n` calls of `function` at once, each answering `pages` (its memory size).
fn call_at_once(alyx: &Alyx, function: &str, n: usize, pages: u64) {
    let path = format!("/api/functions/{function}");
    std::thread::scope(|scope| {
        let calls: Vec<_> = (0..n).map(|_| scope.spawn(|| alyx.post(&path, ""))).collect();
        for call in calls {
            let (status, body) = call.join().unwrap();
            assert_eq!((status, body["output"].as_u64()), (200, Some(pages)), "{function}: {body}");
        }
    });
}

fn idle(alyx: &Alyx, function: &str) -> u64 {
    let (_, stats) = alyx.get("/api/functions/stats");
    stats["functions"][function]["instances"]["idle"].as_u64().unwrap_or(u64::MAX)
}

/// Runs `calls` while sampling alyx's RSS and `function`'s idle instances,
/// and samples once more when they are done; returns the highest of each.
fn peaks_during(alyx: &Alyx, function: &str, calls: impl FnOnce()) -> (u64, u64) {
    let done = std::sync::atomic::AtomicBool::new(false);
    let sample = || (rss(alyx.pid()), idle(alyx, function));
    let (rss_peak, idle_peak) = std::thread::scope(|scope| {
        let sampler = scope.spawn(|| {
            let mut peaks = (0, 0);
            while !done.load(std::sync::atomic::Ordering::SeqCst) {
                let (rss, idle) = sample();
                peaks = (peaks.0.max(rss), peaks.1.max(idle));
                std::thread::sleep(Duration::from_millis(20));
            }
            peaks
        });
        calls();
        done.store(true, std::sync::atomic::Ordering::SeqCst);
        sampler.join().unwrap()
    });
    let (rss, idle) = sample();
    (rss_peak.max(rss), idle_peak.max(idle))
}

/// Waits until alyx's RSS is at most `limit`, for at most 20 s; returns it.
#[track_caller]
fn wait_for_rss(alyx: &Alyx, limit: u64, what: &str) -> u64 {
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        let now = rss(alyx.pid());
        if now <= limit {
            return now;
        }
        assert!(
            Instant::now() < deadline,
            "{what}: RSS stayed at {} MiB (limit {} MiB)",
            now / MIB,
            limit / MIB
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

#[test]
fn memory_grown_by_calls_returns_once_they_are_done() {
    // big: each call grows 1 page to 1600 (100 MiB), so its instance
    // outgrew its start. warm: starts at 384 pages (24 MiB, its initialiser)
    // and grows to 704 (44 MiB), which it may keep; the instances beyond the
    // first go after the ttl. Each call holds 300 ms, so calls overlap.
    let alyx = Folder::new()
        .function("big", "grow.wat", "grow", "config: {pages: '1600', hold_ms: '300'}\n")
        .function("warm", "grow.wat", "grow", "config: {init_pages: '384', pages: '704', hold_ms: '300'}\n")
        .serve(&["--idle-instance-ttl", "1s", "--instances", "3"]);
    call_at_once(&alyx, "warm", 1, 704);
    let baseline = rss(alyx.pid());
    let limit = baseline + 30 * MIB;

    let (big_peak, _) = peaks_during(&alyx, "big", || call_at_once(&alyx, "big", 3, 1600));
    assert!(big_peak > baseline + 200 * MIB, "3 calls held 100 MiB each: {} MiB", big_peak / MIB);
    let after_big = wait_for_rss(&alyx, limit, "after 3 calls of big");
    assert_eq!(idle(&alyx, "big"), 0, "no instance of big went back to its pool");

    let (warm_peak, most_idle) = peaks_during(&alyx, "warm", || call_at_once(&alyx, "warm", 3, 704));
    assert!(most_idle >= 2, "warm had {most_idle} idle instances at most");
    let after_warm = wait_for_rss(&alyx, limit, "after 3 calls of warm");
    alyx.wait_for("the ttl to leave warm one idle instance", |a| idle(a, "warm") == 1);
    eprintln!(
        "RSS (MiB): baseline {}, big peak {} then {}, warm peak {} then {}",
        baseline / MIB,
        big_peak / MIB,
        after_big / MIB,
        warm_peak / MIB,
        after_warm / MIB
    );
}
