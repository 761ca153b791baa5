//! The front: the only code that touches tiny_http. A fixed pool of named
//! worker threads loops on `recv()`, turns each tiny_http request into our
//! [`Request`] (reading the body within `max_body`), calls
//! [`dispatch`] and writes the [`Reply`] back. Shutdown sends one
//! `unblock()` per worker (queued behind the requests already accepted, so
//! those are still answered) and joins the workers within a grace period. A
//! panic while handling a request costs that request, never a worker.

use std::io::Read;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::Duration;

use super::dispatch::{App, dispatch};
use super::reply::Reply;
use super::request::{BodyError, Request};
use crate::error::Error;

/// A bound socket, accepting connections, with no workers yet.
pub struct Bound {
    http: Arc<tiny_http::Server>,
    addr: SocketAddr,
}

/// Binds `listen` (port 0 picks a free port).
pub fn bind(listen: &str) -> Result<Bound, Error> {
    let http = tiny_http::Server::http(listen).map_err(|e| Error::Bind {
        addr: listen.to_string(),
        source: std::io::Error::other(e.to_string()),
    })?;
    let addr = http.server_addr().to_ip().ok_or_else(|| Error::Bind {
        addr: listen.to_string(),
        source: std::io::Error::other("the listening address is not an IP address"),
    })?;
    Ok(Bound { http: Arc::new(http), addr })
}

impl Bound {
    /// The address actually bound.
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Starts `workers` threads answering with `app`.
    pub fn serve(self, app: Arc<App>, workers: usize, max_body: u64) -> Result<Server, Error> {
        let stopping = Arc::new(AtomicBool::new(false));
        let mut server = Server { http: self.http, app, stopping, workers: Vec::new(), addr: self.addr };
        for i in 0..workers {
            let name = format!("http-{i}");
            let (http, app, stopping) = (server.http.clone(), server.app.clone(), server.stopping.clone());
            let worker = std::thread::Builder::new()
                .name(name.clone())
                .spawn(move || work(&http, &app, &stopping, max_body))
                .map_err(Error::thread(&name))?;
            server.workers.push(worker);
        }
        Ok(server)
    }
}

/// A running server; [`Server::shutdown`] stops it.
pub struct Server {
    http: Arc<tiny_http::Server>,
    app: Arc<App>,
    stopping: Arc<AtomicBool>,
    workers: Vec<JoinHandle<()>>,
    addr: SocketAddr,
}

impl Server {
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting work, lets requests in flight finish and joins the
    /// workers; false if some were still busy when the grace period ended.
    pub fn shutdown(self, grace: Duration) -> bool {
        self.stopping.store(true, Ordering::SeqCst);
        for _ in &self.workers {
            self.http.unblock();
        }
        let (done, finished) = mpsc::channel();
        let workers = self.workers;
        let joiner = std::thread::Builder::new().name("http-join".into()).spawn(move || {
            for worker in workers {
                let _ = worker.join();
            }
            let _ = done.send(());
        });
        if joiner.is_err() {
            return false;
        }
        let clean = finished.recv_timeout(grace).is_ok();
        if !clean {
            let busy = self.app.traffic.in_flight();
            log::warn!(
                "shutdown: {busy} requests still running after the {} s grace period",
                grace.as_secs()
            );
        }
        clean
    }
}

fn work(http: &tiny_http::Server, app: &App, stopping: &AtomicBool, max_body: u64) {
    loop {
        match http.recv() {
            Ok(request) => {
                let handled = std::panic::catch_unwind(AssertUnwindSafe(|| answer(request, app, max_body)));
                if handled.is_err() {
                    log::error!("a request handler panicked; the request was dropped");
                }
            }
            Err(_) if stopping.load(Ordering::SeqCst) => return,
            Err(e) => log::error!("http: {e}"),
        }
    }
}

fn answer(mut raw: tiny_http::Request, app: &App, max_body: u64) {
    let request = to_request(&mut raw, max_body);
    let reply = dispatch(&request, app);
    let _ = raw.respond(to_response(reply));
}

fn to_request(raw: &mut tiny_http::Request, max_body: u64) -> Request {
    let mut request = Request::new(raw.method().as_str(), raw.url());
    request.headers =
        raw.headers().iter().map(|h| (h.field.as_str().to_string(), h.value.as_str().to_string())).collect();
    request.body = read_body(raw, max_body);
    request
}

/// The body, refused when over `limit` (by its length header when it has
/// one, else while reading).
fn read_body(raw: &mut tiny_http::Request, limit: u64) -> Result<Vec<u8>, BodyError> {
    if raw.body_length().is_some_and(|n| n as u64 > limit) {
        return Err(BodyError::TooLarge);
    }
    let mut body = Vec::new();
    raw.as_reader().take(limit + 1).read_to_end(&mut body).map_err(|_| BodyError::Unreadable)?;
    if body.len() as u64 > limit {
        return Err(BodyError::TooLarge);
    }
    Ok(body)
}

fn to_response(reply: Reply) -> tiny_http::Response<std::io::Cursor<Vec<u8>>> {
    let mut response = tiny_http::Response::from_data(reply.body).with_status_code(reply.status);
    for (name, value) in reply.headers {
        if let Ok(header) = tiny_http::Header::from_bytes(name.as_bytes(), value.as_bytes()) {
            response.add_header(header);
        }
    }
    response
}
