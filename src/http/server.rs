//! The HTTP server: a fixed pool of named worker threads, each looping on
//! tiny_http's `recv()`. Shutdown sends one `unblock()` per worker (queued
//! behind the requests already accepted, so those are still answered) and
//! joins the workers within a grace period. A panic while handling a request
//! is caught: it costs that request, never a worker.

use std::io::Read;
use std::net::SocketAddr;
use std::panic::AssertUnwindSafe;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, mpsc};
use std::thread::JoinHandle;
use std::time::{Duration, Instant, SystemTime};

use super::api;
use super::auth::{Auth, Caller, bearer, random_id};
use super::invoke::{self, Context};
use super::reply::Reply;
use super::router::{Route, route};
use crate::config::ServeConfig;
use crate::registry::Registry;

/// What every worker shares.
struct Shared {
    registry: Arc<Registry>,
    config: Arc<ServeConfig>,
    auth: Auth,
    alyx_url: String,
    started: Instant,
    requests: AtomicU64,
    in_flight: AtomicU64,
    stopping: AtomicBool,
}

/// A running server; [`Server::shutdown`] stops it.
pub struct Server {
    http: Arc<tiny_http::Server>,
    shared: Arc<Shared>,
    workers: Vec<JoinHandle<()>>,
    addr: SocketAddr,
}

impl Server {
    /// Binds the listening socket and starts the workers.
    pub fn start(config: Arc<ServeConfig>, registry: Arc<Registry>) -> Result<Server, String> {
        let http = tiny_http::Server::http(&config.listen)
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let addr = http.server_addr().to_ip().ok_or("the listening address is not an IP address")?;
        let http = Arc::new(http);
        let alyx_url = config.public_url.clone().unwrap_or_else(|| format!("http://{addr}"));
        let shared = Arc::new(Shared {
            auth: Auth::new(config.api_keys.clone(), config.admin_token.clone()),
            registry,
            alyx_url,
            started: Instant::now(),
            requests: AtomicU64::new(0),
            in_flight: AtomicU64::new(0),
            stopping: AtomicBool::new(false),
            config: config.clone(),
        });
        let workers = (0..config.workers)
            .map(|i| {
                let (http, shared) = (http.clone(), shared.clone());
                std::thread::Builder::new()
                    .name(format!("http-{i}"))
                    .spawn(move || work(&http, &shared))
                    .map_err(|e| format!("cannot start a worker thread: {e}"))
            })
            .collect::<Result<Vec<_>, _>>()?;
        Ok(Server { http, shared, workers, addr })
    }

    /// The address actually bound (port 0 resolved).
    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// Stops accepting work, lets requests in flight finish and joins the
    /// workers; false if some were still busy when the grace period ended.
    pub fn shutdown(self, grace: Duration) -> bool {
        self.shared.stopping.store(true, Ordering::SeqCst);
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
            let busy = self.shared.in_flight.load(Ordering::SeqCst);
            log::warn!(
                "shutdown: {busy} requests still running after the {} s grace period",
                grace.as_secs()
            );
        }
        clean
    }
}

fn work(http: &tiny_http::Server, shared: &Shared) {
    loop {
        match http.recv() {
            Ok(request) => {
                let handled = std::panic::catch_unwind(AssertUnwindSafe(|| handle(request, shared)));
                if handled.is_err() {
                    log::error!("a request handler panicked; the request was dropped");
                }
            }
            Err(_) if shared.stopping.load(Ordering::SeqCst) => return,
            Err(e) => log::error!("http: {e}"),
        }
    }
}

/// Counts a request in flight for as long as it lives.
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

fn handle(mut request: tiny_http::Request, shared: &Shared) {
    shared.requests.fetch_add(1, Ordering::Relaxed);
    shared.in_flight.fetch_add(1, Ordering::SeqCst);
    let _guard = InFlight(&shared.in_flight);
    let start = Instant::now();
    let request_id =
        header(&request, "X-Request-ID").filter(|id| valid_request_id(id)).unwrap_or_else(random_id);
    let reply = dispatch(&mut request, shared, &request_id).with_header("X-Request-ID", &request_id);
    let (method, url, status) = (request.method().to_string(), request.url().to_string(), reply.status);
    let took = start.elapsed().as_secs_f64() * 1000.0;
    if status >= 500 {
        log::warn!("{method} {url} -> {status} ({took:.1} ms, request {request_id})");
    } else {
        log::debug!("{method} {url} -> {status} ({took:.1} ms, request {request_id})");
    }
    let _ = request.respond(to_response(reply));
}

/// Request ids we echo: 1 to 128 visible ASCII characters.
fn valid_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

fn header(request: &tiny_http::Request, name: &str) -> Option<String> {
    request
        .headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str().to_string())
}

fn dispatch(request: &mut tiny_http::Request, shared: &Shared, id: &str) -> Reply {
    let method = request.method().as_str().to_ascii_uppercase();
    let url = request.url().to_string();
    let (path, query) = url.split_once('?').unwrap_or((&url, ""));
    let has_query = url.contains('?');
    let token = header(request, "Authorization");
    let caller = shared.auth.identify(token.as_deref().and_then(bearer));
    let registry = &shared.registry;
    match route(&method, path, has_query) {
        Route::Health => api::health(registry),
        Route::Live => Reply::json(200, &serde_json::json!({"status": "alive"})),
        Route::Ready => api::ready(registry),
        Route::HealthStats => {
            let (requests, in_flight) =
                (shared.requests.load(Ordering::Relaxed), shared.in_flight.load(Ordering::SeqCst));
            api::health_stats(registry, shared.started, requests, in_flight)
        }
        Route::Metrics => api::metrics(registry),
        Route::ListFunctions => allowed(shared, caller, id).unwrap_or_else(|| api::list(registry)),
        Route::FunctionStats => allowed(shared, caller, id).unwrap_or_else(|| api::stats(registry)),
        Route::GetFunction(name) => {
            allowed(shared, caller, id).unwrap_or_else(|| match registry.get(&name) {
                Some(f) => Reply::json(200, &api::function_json(&f)),
                None => not_found(&name, id),
            })
        }
        Route::Reload => admin(shared, caller, id).unwrap_or_else(|| api::reload_json(&registry.reload())),
        Route::Invoke(name) => allowed(shared, caller, id)
            .unwrap_or_else(|| invocation(request, shared, caller, &name, &method, query, id)),
        Route::NotFound => Reply::error(404, "NOT_FOUND", &format!("no route for {method} {path}"), id),
        Route::MethodNotAllowed(allow) => {
            Reply::error(405, "METHOD_NOT_ALLOWED", &format!("{path} accepts {allow}"), id)
                .with_header("Allow", allow)
        }
    }
}

fn not_found(name: &str, id: &str) -> Reply {
    Reply::error(404, "FUNCTION_NOT_FOUND", &format!("no function named {name:?}"), id)
}

/// `Some(refusal)` when API keys are configured and the caller has none.
fn allowed(shared: &Shared, caller: Caller, id: &str) -> Option<Reply> {
    let refused = shared.auth.keys_required() && caller == Caller::Anonymous;
    refused.then(|| {
        Reply::error(401, "UNAUTHORIZED", "an API key is required (Authorization: Bearer KEY)", id)
            .with_header("WWW-Authenticate", "Bearer")
    })
}

/// `Some(refusal)` unless the caller holds the admin token.
fn admin(shared: &Shared, caller: Caller, id: &str) -> Option<Reply> {
    if !shared.auth.admin_enabled() {
        return Some(Reply::error(
            403,
            "ADMIN_DISABLED",
            "admin endpoints are disabled: set admin_token",
            id,
        ));
    }
    (caller != Caller::Admin).then(|| {
        Reply::error(401, "UNAUTHORIZED", "the admin token is required (Authorization: Bearer TOKEN)", id)
            .with_header("WWW-Authenticate", "Bearer")
    })
}

fn invocation(
    request: &mut tiny_http::Request,
    shared: &Shared,
    caller: Caller,
    name: &str,
    method: &str,
    query: &str,
    id: &str,
) -> Reply {
    let Some(function) = shared.registry.get(name) else { return not_found(name, id) };
    let body = match read_body(request, shared.config.max_body) {
        Ok(body) => body,
        Err(reply) => return reply(id),
    };
    let input = match invoke::parse_input(method, query, &body) {
        Ok(input) => input,
        Err(message) => return Reply::error(400, "BAD_JSON", &message, id),
    };
    let ctx = Context {
        request_id: id,
        caller,
        alyx_url: &shared.alyx_url,
        internal_token: shared.auth.issue_internal(SystemTime::now()),
        queue_depth: shared.config.queue_depth,
    };
    invoke::invoke(&function, input, &ctx)
}

type Refusal = fn(&str) -> Reply;

/// The body, refusing one over `limit` (by its length header when it has
/// one, else while reading).
fn read_body(request: &mut tiny_http::Request, limit: u64) -> Result<Vec<u8>, Refusal> {
    fn too_large(id: &str) -> Reply {
        Reply::error(413, "PAYLOAD_TOO_LARGE", "the request body is larger than max_body", id)
    }
    fn unreadable(id: &str) -> Reply {
        Reply::error(400, "BAD_REQUEST", "the request body could not be read", id)
    }
    if request.body_length().is_some_and(|n| n as u64 > limit) {
        return Err(too_large);
    }
    let mut body = Vec::new();
    request.as_reader().take(limit + 1).read_to_end(&mut body).map_err(|_| unreadable as Refusal)?;
    if body.len() as u64 > limit {
        return Err(too_large);
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_ids_are_bounded_and_visible() {
        assert!(valid_request_id("abc-123"));
        assert!(!valid_request_id(""));
        assert!(!valid_request_id("has space"));
        assert!(!valid_request_id(&"x".repeat(129)));
        assert_eq!(random_id().len(), 16);
    }
}
