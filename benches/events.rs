//! `make bench`, events part: a sync event through a chain of 3 trivial
//! hooks (latency, one keep-alive client); async events accepted per second
//! with the journal synced (8 keep-alive clients, one trivial async hook);
//! and events delivered per second from a journal backlog (a server stopped
//! with deliveries waiting, started again). Servers run in this process;
//! the data folder is on the same disk as the temporary folder.

use std::io::{BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use alyx::config::ServeConfig;
use alyx::registry::Registry;
use alyx::runtime::LogLevel;
use alyx::wiring::{self, Server};

#[path = "support/http_client.rs"]
mod http_client;
#[path = "../tests/common/temp_dir.rs"]
mod temp_dir;

use temp_dir::TempDir;

const CLIENTS: usize = 8;
const WINDOW: Duration = Duration::from_secs(3);
const CHAIN_CALLS: usize = 2000;
const BACKLOG: usize = 5000;

fn main() {
    println!("alyx events benchmark ({} cores)", std::thread::available_parallelism().map_or(1, |n| n.get()));
    chain_latency();
    accepted_per_second();
    delivered_per_second();
}

const HOOK: &str = include_str!("../testdata/plugins/hook.wat");

fn function(dir: &TempDir, name: &str, export: &str, hooks: &str) {
    dir.write(&format!("{name}/plugin.wat"), HOOK);
    let manifest =
        format!("entrypoint: {export}\nplugin: plugin.wat\nconfig: {{answer: '{{}}'}}\nhooks: {hooks}\n");
    dir.write(&format!("{name}/manifest.yaml"), manifest);
}

fn serve(dir: &TempDir, workers: usize) -> Server {
    let config = ServeConfig {
        listen: "127.0.0.1:0".into(),
        dir: dir.to_path_buf(),
        log_level: LogLevel::Off,
        data_dir: dir.path().join(".alyx"),
        event_workers: workers,
        // Accepting outpaces delivering: room for the whole run.
        event_queue: 1 << 20,
        ..ServeConfig::default()
    };
    let registry = Arc::new(Registry::new(dir, wiring::defaults(&config)));
    registry.reload();
    let (history, _) = wiring::start_history(&config).expect("history");
    wiring::start_server(&config, registry, history).expect("alyx starts")
}

fn event_request(source: &str) -> Vec<u8> {
    let body = format!(r#"{{"type":"custom","source":"{source}","action":"a","data":{{"n":1}}}}"#);
    format!("POST /api/events HTTP/1.1\r\nHost: bench\r\nContent-Length: {}\r\n\r\n{body}", body.len())
        .into_bytes()
}

/// Sends `request` on a keep-alive connection; the status.
fn send(stream: &mut TcpStream, reader: &mut BufReader<TcpStream>, request: &[u8]) -> u16 {
    stream.write_all(request).expect("send");
    http_client::read_response(reader).0
}

fn connect(addr: SocketAddr) -> (TcpStream, BufReader<TcpStream>) {
    let stream = TcpStream::connect(addr).expect("connect");
    stream.set_nodelay(true).expect("nodelay");
    let reader = BufReader::new(stream.try_clone().expect("clone"));
    (stream, reader)
}

fn chain_latency() {
    let dir = TempDir::new("bench-events-chain");
    for (name, priority) in [("a", 3), ("b", 2), ("c", 1)] {
        function(&dir, name, "answer", &format!("[{{type: custom, source: chain, priority: {priority}}}]"));
    }
    let server = serve(&dir, 1);
    let (mut stream, mut reader) = connect(server.addr());
    let request = event_request("chain");
    for _ in 0..200 {
        assert_eq!(send(&mut stream, &mut reader, &request), 200);
    }
    let mut times: Vec<Duration> = (0..CHAIN_CALLS)
        .map(|_| {
            let start = Instant::now();
            assert_eq!(send(&mut stream, &mut reader, &request), 200);
            start.elapsed()
        })
        .collect();
    times.sort();
    let at = |q: f64| times[((times.len() as f64 * q) as usize).min(times.len() - 1)].as_secs_f64() * 1e6;
    println!(
        "sync event, chain of 3 trivial hooks: p50 {:.0} µs   p99 {:.0} µs   ({CHAIN_CALLS} events, 1 client)",
        at(0.5),
        at(0.99)
    );
    server.shutdown(Duration::from_secs(5));
}

fn accepted_per_second() {
    let dir = TempDir::new("bench-events-async");
    function(&dir, "later", "answer", "[{type: custom, source: async, mode: async}]");
    let server = serve(&dir, 2);
    let addr = server.addr();
    let (accepted, stop) = (Arc::new(AtomicU64::new(0)), Arc::new(AtomicBool::new(false)));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (accepted, stop) = (accepted.clone(), stop.clone());
            std::thread::spawn(move || {
                let (mut stream, mut reader) = connect(addr);
                let request = event_request("async");
                while !stop.load(Ordering::Relaxed) {
                    assert_eq!(send(&mut stream, &mut reader, &request), 202);
                    accepted.fetch_add(1, Ordering::Relaxed);
                }
            })
        })
        .collect();
    std::thread::sleep(WINDOW);
    stop.store(true, Ordering::Relaxed);
    for client in clients {
        client.join().expect("client");
    }
    let n = accepted.load(Ordering::Relaxed);
    let (waiting, _) = server.events().counts();
    println!(
        "async events accepted, journal synced: {:.0} /s   ({CLIENTS} clients, {} s; {waiting} still to deliver at the end)",
        n as f64 / WINDOW.as_secs_f64(),
        WINDOW.as_secs()
    );
    server.shutdown(Duration::from_secs(5));
}

fn delivered_per_second() {
    let dir = TempDir::new("bench-events-backlog");
    // A hook too slow to make progress while the backlog is written.
    dir.write("later/plugin.wat", include_str!("../testdata/plugins/nap.wat"));
    dir.write(
        "later/manifest.yaml",
        "entrypoint: nap_500\nplugin: plugin.wat\nhooks: [{type: custom, source: backlog, mode: async}]\n",
    );
    let server = serve(&dir, 1);
    let (mut stream, mut reader) = connect(server.addr());
    let request = event_request("backlog");
    for _ in 0..BACKLOG {
        assert_eq!(send(&mut stream, &mut reader, &request), 202);
    }
    drop((stream, reader));
    server.shutdown(Duration::from_secs(5));
    function(&dir, "later", "answer", "[{type: custom, source: backlog, mode: async}]");
    let start = Instant::now();
    let server = serve(&dir, 2);
    let waiting = server.events().counts().0;
    while server.events().counts().0 > 0 {
        std::thread::sleep(Duration::from_millis(1));
    }
    let took = start.elapsed();
    println!(
        "events delivered from a journal backlog: {:.0} /s   ({waiting} deliveries, 2 workers, start included)",
        waiting as f64 / took.as_secs_f64()
    );
    server.shutdown(Duration::from_secs(5));
}
