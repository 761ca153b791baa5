//! The HTTP front under abuse, against the real binary: too many idle
//! connections, slow functions, a full queue, ambiguous or broken requests,
//! HEAD, slow clients, and shutdown. One test per finding of the probe that
//! replaced tiny_http (issue 8); raw sockets where the bytes matter.

mod common;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

use common::alyx::Folder;

/// Sends `bytes` on a new connection and reads until the server closes it
/// or `within` passes; everything the server sent.
fn exchange(addr: SocketAddr, bytes: &[u8], within: Duration) -> String {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.write_all(bytes).expect("send");
    read_until_closed(&mut stream, within)
}

fn read_until_closed(stream: &mut TcpStream, within: Duration) -> String {
    let deadline = Instant::now() + within;
    let mut got = Vec::new();
    let mut buf = [0u8; 4096];
    while Instant::now() < deadline {
        stream
            .set_read_timeout(Some(
                deadline.saturating_duration_since(Instant::now()).max(Duration::from_millis(1)),
            ))
            .unwrap();
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(n) => got.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => break,
            Err(_) => break,
        }
    }
    String::from_utf8_lossy(&got).into_owned()
}

/// The status codes of the responses in `text`, in order.
fn statuses(text: &str) -> Vec<u16> {
    text.match_indices("HTTP/1.1 ").filter_map(|(i, _)| text[i + 9..i + 12].parse().ok()).collect()
}

fn counter() -> Folder {
    Folder::new().function("counter", "vars.wat", "incr", "")
}

#[test]
fn idle_connections_past_the_open_file_limit_never_kill_the_listener() {
    let alyx = counter().serve_with_open_files(128, &[]);
    let addr = alyx.addr();
    let held: Vec<TcpStream> = (0..200).filter_map(|_| TcpStream::connect(addr).ok()).collect();
    let mut last = TcpStream::connect(addr).expect("connect past the cap");
    last.write_all(b"GET /health/live HTTP/1.1\r\n\r\n").unwrap();
    let refused = read_until_closed(&mut last, Duration::from_secs(5));
    assert_eq!(statuses(&refused), [503], "past the cap: an immediate 503: {refused}");
    drop(held);
    alyx.wait_for("the listener to serve again", |a| a.get("/health/live").0 == 200);
}

/// Threads of a process, from /proc.
fn threads(pid: u32) -> usize {
    std::fs::read_dir(format!("/proc/{pid}/task")).map(|d| d.count()).unwrap_or(0)
}

#[test]
fn a_thousand_idle_connections_start_no_threads() {
    let alyx = counter().serve(&[]);
    let before = threads(alyx.pid());
    let held: Vec<TcpStream> = (0..900).map(|_| TcpStream::connect(alyx.addr()).expect("connect")).collect();
    assert_eq!(alyx.get("/health/live").0, 200, "served while {} connections idle", held.len());
    let during = threads(alyx.pid());
    assert_eq!(during, before, "threads: {before} before, {during} with {} idle connections", held.len());
    let scheduler = 1 + alyx::triggers::schedules::RUNNERS;
    let events = 2 + 1;
    assert!(
        during <= 8 + 8 + scheduler + events,
        "8 invoke workers, 2 control, the poller, the scheduler and its runners, 2 event workers and the journal's writer, and a few of our own: {during}"
    );
}

#[test]
fn a_slow_function_does_not_starve_health_checks() {
    let alyx = Folder::new().function("slow", "nap.wat", "nap_1000", "").serve(&["--queue-depth", "200"]);
    std::thread::scope(|scope| {
        let calls: Vec<_> = (0..24).map(|_| scope.spawn(|| alyx.post("/api/functions/slow", "").0)).collect();
        alyx.wait_for("calls to queue up", |a| {
            a.get("/api/functions/stats").1["functions"]["slow"]["instances"]["busy"] == 4
        });
        let asked = Instant::now();
        assert_eq!(alyx.get("/health/live").0, 200);
        let took = asked.elapsed();
        assert!(took < Duration::from_secs(2), "health waited {took:?} behind 24 one-second calls");
        let statuses: Vec<u16> = calls.into_iter().map(|c| c.join().unwrap()).collect();
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    });
}

#[test]
fn calls_waiting_for_a_worker_count_against_the_queue_depth() {
    // 4 instances and a queue of 8: at most 12 calls are taken at once.
    let alyx = Folder::new()
        .function("slow", "nap.wat", "nap_500", "")
        .function("fast", "vars.wat", "incr", "")
        .serve(&["--instances", "4", "--queue-depth", "8"]);
    let statuses: Vec<(u16, bool)> = std::thread::scope(|scope| {
        let calls: Vec<_> = (0..30)
            .map(|_| {
                scope.spawn(|| {
                    let (status, headers, _) = alyx.request("POST", "/api/functions/slow", &[], b"");
                    (status, headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("retry-after")))
                })
            })
            .collect();
        alyx.wait_for("the slow calls to run", |a| {
            a.get("/api/functions/stats").1["functions"]["slow"]["instances"]["busy"] == 4
        });
        assert_eq!(alyx.post("/api/functions/fast", "").0, 200, "another function answers meanwhile");
        calls.into_iter().map(|c| c.join().unwrap()).collect()
    });
    let refused = statuses.iter().filter(|(s, _)| *s == 503).count();
    assert!(statuses.iter().all(|(s, retry)| *s == 200 || (*s == 503 && *retry)), "{statuses:?}");
    assert!((18..=26).contains(&refused), "about 30 - 12 refused at once: {statuses:?}");
}

#[test]
fn a_slow_functions_backlog_does_not_delay_other_functions() {
    // Defaults: 8 workers, 4 instances, queue 64. Forty half-second calls take
    // five seconds to drain; a call to another function must not wait them out.
    let alyx = Folder::new()
        .function("slow", "nap.wat", "nap_500", "")
        .function("fast", "vars.wat", "incr", "")
        .serve(&[]);
    std::thread::scope(|scope| {
        let calls: Vec<_> = (0..40).map(|_| scope.spawn(|| alyx.post("/api/functions/slow", "").0)).collect();
        alyx.wait_for("the slow calls to run", |a| {
            a.get("/api/functions/stats").1["functions"]["slow"]["instances"]["busy"] == 4
        });
        let asked = Instant::now();
        assert_eq!(alyx.post("/api/functions/fast", "").0, 200);
        let took = asked.elapsed();
        assert!(took < Duration::from_secs(1), "the fast call waited {took:?} behind the slow backlog");
        let statuses: Vec<u16> = calls.into_iter().map(|c| c.join().unwrap()).collect();
        assert!(statuses.iter().all(|s| *s == 200), "{statuses:?}");
    });
}

#[test]
fn ambiguous_framing_is_refused_and_the_connection_closed() {
    let alyx = counter().serve(&[]);
    let smuggled = "GET /api/functions/counter?x HTTP/1.1\r\n\r\n";
    for head in [
        "Content-Length: 3\r\nContent-Length: 10\r\n",
        "Content-Length: -1\r\n",
        "Content-Length: +3\r\n",
        "Content-Length: 3\r\nTransfer-Encoding: chunked\r\n",
        "Transfer-Encoding: gzip\r\n",
    ] {
        let request = format!("POST /api/functions/counter HTTP/1.1\r\n{head}\r\n0\r\n\r\n{smuggled}");
        let answer = exchange(alyx.addr(), request.as_bytes(), Duration::from_secs(5));
        assert_eq!(statuses(&answer), [400], "{head:?}: {answer}");
        assert!(answer.contains("Connection: close"), "{answer}");
    }
    assert_eq!(alyx.post("/api/functions/counter", "").1["output"], 1, "no request ran the function");
}

#[test]
fn broken_bytes_get_an_answer_never_a_hang() {
    let alyx = counter().serve(&[]);
    let within = Duration::from_secs(5);
    let mut bad_path = b"GET /caf\xc3\x28 HTTP/1.1\r\n\r\n".to_vec();
    assert_eq!(statuses(&exchange(alyx.addr(), &bad_path, within)), [400]);
    bad_path = b"GET /health HTTP/1.1\r\nX-Name: \xff\xfe\r\n\r\n".to_vec();
    assert_eq!(statuses(&exchange(alyx.addr(), &bad_path, within)), [400]);
    assert_eq!(statuses(&exchange(alyx.addr(), b"GET /health HTTP/2.0\r\n\r\n", within)), [505]);
    let lf = exchange(alyx.addr(), b"GET /health/live HTTP/1.1\nConnection: close\n\n", within);
    assert_eq!(statuses(&lf), [200], "bare LF line endings are accepted");
    let huge = format!("GET / HTTP/1.1\r\nX: {}\r\n\r\n", "a".repeat(70_000));
    assert_eq!(statuses(&exchange(alyx.addr(), huge.as_bytes(), within)), [431]);
}

#[test]
fn chunked_bodies_continue_and_pipelining_work() {
    let alyx = Folder::new().function("echo", "echo.wat", "echo", "").serve(&[]);
    let chunked = "POST /api/functions/echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n\
                   5\r\n{\"inp\r\n9\r\nut\": \"hi\"\r\n1\r\n}\r\n0\r\n\r\n\
                   GET /health/live HTTP/1.1\r\n\r\n\
                   GET /health/ready HTTP/1.1\r\nConnection: close\r\n\r\n";
    let answer = exchange(alyx.addr(), chunked.as_bytes(), Duration::from_secs(5));
    assert_eq!(statuses(&answer), [200, 200, 200], "{answer}");
    assert!(answer.contains("\"input\":\"hi\""), "the chunked body arrived whole: {answer}");
    let alive = answer.find("alive").unwrap();
    assert!(answer.find("\"input\"").unwrap() < alive && alive < answer.find("ready").unwrap(), "in order");
    let mut stream = TcpStream::connect(alyx.addr()).unwrap();
    stream
        .write_all(b"POST /api/functions/echo HTTP/1.1\r\nContent-Length: 2\r\nExpect: 100-continue\r\n\r\n")
        .unwrap();
    let mut interim = [0u8; 25];
    stream.read_exact(&mut interim).unwrap();
    assert_eq!(&interim, b"HTTP/1.1 100 Continue\r\n\r\n");
    stream.write_all(b"{}").unwrap();
    stream.shutdown(std::net::Shutdown::Write).unwrap();
    assert_eq!(statuses(&read_until_closed(&mut stream, Duration::from_secs(5))), [200]);
}

#[test]
fn head_never_invokes_a_function() {
    let alyx = counter().serve(&[]);
    let (status, _, body) = alyx.request("HEAD", "/api/functions/counter?x=1", &[], b"");
    assert_eq!((status, body.len()), (405, 0));
    assert_eq!(alyx.request("HEAD", "/api/functions/counter", &[], b"").0, 200, "describing is safe");
    assert_eq!(alyx.post("/api/functions/counter", "").1["output"], 1, "HEAD did not count");
}

#[test]
fn slow_and_idle_clients_are_timed_out() {
    let alyx =
        counter().serve(&["--header-timeout", "1s", "--body-timeout", "1s", "--keepalive-timeout", "1s"]);
    let within = Duration::from_secs(5);
    let slow_head = exchange(alyx.addr(), b"GET /health HTTP/1.1\r\nX-Slow: ", within);
    assert_eq!(statuses(&slow_head), [408], "{slow_head}");
    let slow_body =
        exchange(alyx.addr(), b"POST /api/functions/counter HTTP/1.1\r\nContent-Length: 10\r\n\r\n{", within);
    assert_eq!(statuses(&slow_body), [408], "{slow_body}");
    let idle = exchange(alyx.addr(), b"GET /health/live HTTP/1.1\r\n\r\n", within);
    assert_eq!(statuses(&idle), [200], "answered, then closed when idle: {idle}");
}

#[test]
fn shutdown_refuses_new_connections_and_finishes_requests_in_flight() {
    let mut alyx = Folder::new().function("slow", "nap.wat", "nap_2000", "").serve(&["--grace", "10s"]);
    let addr = alyx.addr();
    std::thread::scope(|scope| {
        let call = scope.spawn(|| alyx.post("/api/functions/slow", ""));
        alyx.wait_for("the call to run", |a| {
            a.get("/api/functions/stats").1["functions"]["slow"]["instances"]["busy"] == 1
        });
        alyx.signal("TERM");
        let deadline = Instant::now() + Duration::from_secs(5);
        while TcpStream::connect(addr).is_ok() {
            assert!(Instant::now() < deadline, "new connections are still accepted after SIGTERM");
        }
        let (status, body) = call.join().unwrap();
        assert_eq!((status, body["output"].as_str()), (200, Some("rested")), "{body}");
    });
    assert_eq!(alyx.wait_exit(Duration::from_secs(10)), Some(0));
}
