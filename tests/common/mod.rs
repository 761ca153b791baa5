//! Helpers shared by the integration tests: paths to our test plugins, a
//! scratch folder, and a tiny loopback HTTP server that answers a bounded
//! number of requests.

#![allow(dead_code)]

pub mod alyx;
pub mod run;
pub mod temp_dir;

pub use temp_dir::TempDir;

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

/// The path of a test plugin in `testdata/plugins`.
pub fn plugin_path(file: &str) -> String {
    format!("{}/testdata/plugins/{file}", env!("CARGO_MANIFEST_DIR"))
}

/// The bytes of a test plugin.
pub fn plugin_bytes(file: &str) -> Vec<u8> {
    std::fs::read(plugin_path(file)).unwrap_or_else(|e| panic!("reading {file}: {e}"))
}

/// A request as the test server saw it.
#[derive(Debug, Clone)]
pub struct Seen {
    pub method: String,
    pub path: String,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

/// What the test server answers: status, extra header lines, body.
pub type Answer = (u16, Vec<(String, String)>, Vec<u8>);

/// A loopback server answering `count` requests with `answer`, reporting
/// each request it saw on `seen`.
pub struct TestServer {
    pub addr: SocketAddr,
    pub seen: mpsc::Receiver<Seen>,
    thread: Option<JoinHandle<()>>,
}

impl TestServer {
    pub fn start(count: usize, answer: impl Fn(&Seen) -> Answer + Send + 'static) -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (tx, seen) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            for _ in 0..count {
                let Ok((stream, _)) = listener.accept() else {
                    return;
                };
                if let Some(request) = handle(stream, &answer) {
                    let _ = tx.send(request);
                }
            }
        });
        TestServer { addr, seen, thread: Some(thread) }
    }

    /// A server that accepts one connection and never answers (until the
    /// client gives up and closes it).
    pub fn silent() -> TestServer {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let addr = listener.local_addr().expect("local addr");
        let (_tx, seen) = mpsc::channel();
        let thread = std::thread::spawn(move || {
            if let Ok((mut stream, _)) = listener.accept() {
                stream.set_read_timeout(Some(Duration::from_secs(10))).ok();
                let mut sink = Vec::new();
                let _ = stream.read_to_end(&mut sink);
            }
        });
        TestServer { addr, seen, thread: Some(thread) }
    }

    pub fn url(&self, path: &str) -> String {
        format!("http://{}{path}", self.addr)
    }

    /// The next request seen, waiting at most 5 s.
    pub fn next_request(&self) -> Seen {
        self.seen.recv_timeout(Duration::from_secs(5)).expect("the server saw a request")
    }
}

impl Drop for TestServer {
    fn drop(&mut self) {
        // Joining could block on a server still waiting for a connection
        // that will never come; detach instead (the thread ends with the test
        // binary, and every server answers a bounded number of requests).
        drop(self.thread.take());
    }
}

fn handle(stream: TcpStream, answer: &impl Fn(&Seen) -> Answer) -> Option<Seen> {
    stream.set_read_timeout(Some(Duration::from_secs(5))).ok()?;
    let mut reader = BufReader::new(stream.try_clone().ok()?);
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let mut parts = line.split_whitespace();
    let (method, path) = (parts.next()?.to_string(), parts.next()?.to_string());
    let mut headers = Vec::new();
    loop {
        let mut h = String::new();
        reader.read_line(&mut h).ok()?;
        let h = h.trim_end();
        if h.is_empty() {
            break;
        }
        let (k, v) = h.split_once(':')?;
        headers.push((k.trim().to_ascii_lowercase(), v.trim().to_string()));
    }
    let length =
        headers.iter().find(|(k, _)| k == "content-length").and_then(|(_, v)| v.parse().ok()).unwrap_or(0);
    let mut body = vec![0; length];
    reader.read_exact(&mut body).ok()?;
    let seen = Seen { method, path, headers, body };
    let (status, extra, bytes) = answer(&seen);
    let mut response =
        format!("HTTP/1.1 {status} Whatever\r\ncontent-length: {}\r\nconnection: close\r\n", bytes.len());
    for (k, v) in extra {
        response.push_str(&format!("{k}: {v}\r\n"));
    }
    response.push_str("\r\n");
    let mut stream = stream;
    stream.write_all(response.as_bytes()).ok()?;
    stream.write_all(&bytes).ok()?;
    Some(seen)
}
