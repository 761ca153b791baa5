//! `make bench`, HTTP part: invoking a trivial function over HTTP with
//! keep-alive from 2 client threads, beside a bare server on the same front
//! (`http::front`) that answers the same bytes without routing, auth or
//! Wasm (the ceiling of our HTTP stack); then alyx again while 1000 idle
//! connections are open. Both servers run in this process with the same
//! worker count; the client is a minimal HTTP/1.1 keep-alive loop over a
//! raw socket.

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alyx::config::ServeConfig;
use alyx::http::front::{self, Front, Handler, Lane, Reject};
use alyx::http::reply::Reply;
use alyx::http::request::Request;
use alyx::registry::Registry;
use alyx::runtime::LogLevel;
use alyx::wiring;

#[path = "support/http_client.rs"]
mod http_client;
#[path = "../tests/common/temp_dir.rs"]
mod temp_dir;

use temp_dir::TempDir;

const CLIENTS: usize = 2;
const WINDOW: Duration = Duration::from_secs(3);
const WORKERS: usize = 4;

fn main() {
    println!(
        "alyx HTTP benchmark: {CLIENTS} keep-alive clients, {} s per run, {WORKERS} server workers",
        WINDOW.as_secs()
    );
    let dir = TempDir::new("bench-http");
    let (alyx, _server, config, body) = start_alyx(&dir);
    let (bare, _bare) = start_bare(body, &config);
    let request = b"POST /api/functions/noop HTTP/1.1\r\nHost: bench\r\nContent-Length: 2\r\n\r\n{}";
    warm_up(alyx, request);
    warm_up(bare, request);
    let bare_run = run(bare, request);
    let alyx_run = run(alyx, request);
    report("bare front, same bytes", &bare_run);
    report("alyx, trivial function", &alyx_run);
    println!("alyx / bare throughput: {:.0}%", alyx_run.rate / bare_run.rate * 100.0);
    let route = b"POST /noop HTTP/1.1\r\nHost: bench\r\nContent-Length: 2\r\n\r\n{}";
    warm_up(alyx, route);
    let route_run = run(alyx, route);
    report("alyx, the same through a route", &route_run);
    println!("route / API throughput: {:.0}%", route_run.rate / alyx_run.rate * 100.0);
    verify_cost();
    let idle: Vec<TcpStream> =
        (0..IDLE).map(|_| TcpStream::connect(alyx).expect("idle connection")).collect();
    let loaded = run(alyx, request);
    report(&format!("alyx, {} idle connections open", idle.len()), &loaded);
}

/// The time to verify an HMAC-SHA256 webhook signature over a 1 MiB body
/// (median of 21).
fn verify_cost() {
    use alyx::crypto::{Secret, hex, hmac_sha256};
    use alyx::manifest::{HmacHash, Scheme, Verification};
    let body = vec![b'x'; 1 << 20];
    let signature = format!("sha256={}", hex(&hmac_sha256(b"secret", &body)));
    let headers = vec![("X-Hub-Signature-256".to_string(), signature)];
    let scheme = Scheme::Hmac {
        hash: HmacHash::Sha256,
        header: "X-Hub-Signature-256".into(),
        secret: Secret::new("secret"),
    };
    let verification = Verification { scheme, skip_invalid: false };
    let mut times: Vec<Duration> = (0..21)
        .map(|_| {
            let start = Instant::now();
            alyx::triggers::verify::verify(&verification, &headers, &body, std::time::SystemTime::now())
                .expect("verifies");
            start.elapsed()
        })
        .collect();
    times.sort();
    println!("verify a webhook signature over 1 MiB: {:.2} ms", times[10].as_secs_f64() * 1000.0);
}

/// Idle connections held open during the last run.
const IDLE: usize = 1000;

struct Run {
    rate: f64,
    p50: Duration,
    p99: Duration,
}

fn report(what: &str, r: &Run) {
    println!(
        "{what:<30} {:>9.0} req/s   p50 {:>6.1} µs   p99 {:>6.1} µs",
        r.rate,
        r.p50.as_secs_f64() * 1e6,
        r.p99.as_secs_f64() * 1e6
    );
}

/// alyx serving one trivial function from `dir`; returns its address and
/// the bytes of one response body (for the bare server to answer).
fn start_alyx(dir: &TempDir) -> (SocketAddr, wiring::Server, ServeConfig, Vec<u8>) {
    dir.write("noop/plugin.wat", include_str!("../testdata/plugins/trivial.wat"));
    dir.write(
        "noop/manifest.yaml",
        "entrypoint: noop\nplugin: plugin.wat\nroutes: [{path: /noop, methods: [POST]}]\n",
    );
    let config = ServeConfig {
        listen: "127.0.0.1:0".into(),
        dir: dir.to_path_buf(),
        workers: WORKERS,
        instances: WORKERS,
        log_level: LogLevel::Off,
        // The schedule state stays in the bench's folder.
        data_dir: dir.join(".alyx"),
        ..ServeConfig::default()
    };
    let registry = Arc::new(Registry::new(dir, wiring::defaults(&config)));
    registry.reload();
    let (history, no_file) = wiring::start_history(&config).expect("history");
    assert!(no_file.is_none(), "the default history is in memory only");
    let server = wiring::start_server(&config, registry, history).expect("alyx starts");
    let addr = server.addr();
    let body = one_response_body(addr);
    (addr, server, config, body)
}

fn one_response_body(addr: SocketAddr) -> Vec<u8> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream
        .write_all(b"POST /api/functions/noop HTTP/1.1\r\nHost: bench\r\nContent-Length: 2\r\n\r\n{}")
        .expect("send");
    let mut reader = BufReader::new(stream);
    read_response(&mut reader)
}

/// The same front and worker count answering `body` to everything.
fn start_bare(body: Vec<u8>, config: &ServeConfig) -> (SocketAddr, Front) {
    let bound = front::bind("127.0.0.1:0").expect("bare server");
    let addr = bound.addr();
    let server = bound.serve(Arc::new(Bare(body)), wiring::front_config(config)).expect("bare server starts");
    (addr, server)
}

struct Bare(Vec<u8>);

impl Handler for Bare {
    type Ticket = ();

    fn admit(&self, _: &Request) -> Result<(Lane, ()), Reply> {
        Ok((Lane::Invoke { key: String::new(), limit: usize::MAX }, ()))
    }

    fn handle(&self, _: Request, _: ()) -> Reply {
        Reply {
            status: 200,
            headers: vec![("Content-Type".into(), "application/json".into())],
            body: self.0.clone(),
        }
    }

    fn reject(&self, _: Reject) -> Reply {
        Reply { status: 400, headers: Vec::new(), body: Vec::new() }
    }
}

fn warm_up(addr: SocketAddr, request: &[u8]) {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    for _ in 0..2000 {
        stream.write_all(request).expect("send");
        read_response(&mut reader);
    }
}

/// `CLIENTS` threads, each on one keep-alive connection, for `WINDOW`.
fn run(addr: SocketAddr, request: &'static [u8]) -> Run {
    let start = Instant::now();
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            std::thread::spawn(move || {
                let mut stream = TcpStream::connect(addr).expect("connect");
                stream.set_nodelay(true).expect("nodelay");
                let mut reader = BufReader::new(stream.try_clone().expect("clone"));
                let mut latencies = Vec::new();
                while start.elapsed() < WINDOW {
                    let sent = Instant::now();
                    stream.write_all(request).expect("send");
                    read_response(&mut reader);
                    latencies.push(sent.elapsed());
                }
                latencies
            })
        })
        .collect();
    let mut latencies: Vec<Duration> = clients.into_iter().flat_map(|c| c.join().expect("client")).collect();
    let elapsed = start.elapsed();
    latencies.sort();
    let at = |p: usize| latencies[(latencies.len() * p / 100).min(latencies.len() - 1)];
    Run { rate: latencies.len() as f64 / elapsed.as_secs_f64(), p50: at(50), p99: at(99) }
}

/// Reads one response, which must be a 200; returns the body.
fn read_response(reader: &mut impl BufRead) -> Vec<u8> {
    let (status, body) = http_client::read_response(reader);
    assert_eq!(status, 200, "unexpected response: {}", String::from_utf8_lossy(&body));
    body
}
