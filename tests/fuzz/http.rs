//! Targets `http_requests` and `http_bytes`: requests through the HTTP core
//! (`http::dispatch`: user routes, API routes, auth, handlers, invocation)
//! of an app over a folder with a few small functions.
//!
//! `http_requests` builds our own `Request`s: odd methods, paths with
//! percent escapes and odd characters, queries, headers (request ids, keys),
//! bodies empty, broken, nested, huge, or refused by the front. They are
//! saved as JSON (`Recipe`) so a failure can be replayed. `http_bytes`
//! renders such requests as HTTP/1.1, mutates the bytes and feeds them to
//! the front's connection state machine (`http::front::conn::Conn`: framing,
//! chunked bodies, pipelining), then answers what it hands over.
//!
//! The invariant: no panic; every reply has a status in 100..=599 and one
//! valid `X-Request-ID` (the client's when it sent a valid one); a JSON
//! reply parses (unless nested deeper than serde_json reads); a 405 says
//! `Allow`; nothing stays in flight; the front settles in a bounded number
//! of steps and refuses with a 4xx or 5xx.

use std::net::{TcpListener, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use alyx::http::dispatch::{App, dispatch};
use alyx::http::front::conn::{Conn, Limits, Step};
use alyx::http::front::{Handler, Reject, wire};
use alyx::http::reply::Reply;
use alyx::http::request::{BodyError, Request};
use alyx::http::router::RESERVED_NAMES;
use alyx::invoke::Invoker;
use alyx::registry::{Defaults, Registry};
use alyx::runtime::LogLevel;
use alyx::tokens::InternalTokens;
use alyx::triggers::events::{self, Events};
use serde_json::{Value, json};

use crate::harness::Target;
use crate::mutate::mutate;
use crate::rng::Rng;
use crate::temp_dir::TempDir;

/// The API key and admin token of the app that has them.
const KEY: &str = "k1";
const ADMIN: &str = "adm";

/// Largest huge body (smaller in a debug build, where `make test` runs
/// these cases), and the most mutations of raw bytes.
const HUGE_BODY: usize = if cfg!(debug_assertions) { 1 << 20 } else { 4 << 20 };
const MAX_MUTATIONS: usize = 4;

/// A case may invoke `slow` (50 ms timeout); anything near this has hung.
const MAX_CASE_TIME: Duration = Duration::from_secs(10);

// --- the functions folder and the apps -------------------------------------

const ECHO: &str = r#"(module
  (import "extism:host/env" "input_offset" (func $off (result i64)))
  (import "extism:host/env" "input_length" (func $len (result i64)))
  (import "extism:host/env" "output_set" (func $out (param i64 i64)))
  (func (export "handle") (result i32) (call $out (call $off) (call $len)) (i32.const 0)))"#;

/// Echo is also served at user routes, one of them open to anyone.
const ECHO_MANIFEST: &str = "plugin: plugin.wat
routes:
  - {path: \"/echo/{name}\", methods: [GET, POST]}
  - {path: /open, auth: none}
hooks:
  - {type: custom}
  - {type: auth, mode: async, config: {max_retries: 1, retry_delay: 10ms}}
";

/// Function folders: file → contents. `fail` traps, `slow` spins into its
/// timeout, `broken` has a bad manifest, `gone` a missing plugin.
const FUNCTIONS: &[(&str, &str)] = &[
    ("echo/manifest.yaml", ECHO_MANIFEST),
    ("echo/plugin.wat", ECHO),
    ("fail/manifest.yaml", "plugin: plugin.wat"),
    ("fail/plugin.wat", r#"(module (func (export "handle") (result i32) unreachable))"#),
    ("slow/manifest.yaml", "plugin: plugin.wat\ntimeout: 50ms"),
    ("slow/plugin.wat", r#"(module (func (export "handle") (result i32) (loop $l (br $l)) (i32.const 0)))"#),
    ("broken/manifest.yaml", "timeout: never"),
    ("gone/manifest.yaml", "plugin: missing.wasm"),
];

/// A temp folder of functions and two apps over it: one open, one with an
/// API key and an admin token.
struct Fixture {
    apps: [App; 2],
    _folder: TempDir,
}

impl Fixture {
    fn new() -> Fixture {
        let folder = TempDir::new("fuzz-http");
        for (file, text) in FUNCTIONS {
            folder.write(file, text);
        }
        let apps = [app(&folder, 0, &[], None), app(&folder, 1, &[KEY], Some(ADMIN))];
        Fixture { apps, _folder: folder }
    }
}

impl Drop for Fixture {
    fn drop(&mut self) {
        for app in &self.apps {
            if let Some(events) = &app.events {
                events.stop();
            }
        }
    }
}

fn app(folder: &TempDir, n: usize, keys: &[&str], admin: Option<&str>) -> App {
    let defaults = Defaults {
        timeout: Duration::from_secs(5),
        memory: 16 << 20,
        instances: 2,
        log_level: LogLevel::Info,
        idle_instance_ttl: Duration::from_secs(60),
        reserved: RESERVED_NAMES,
    };
    let registry = Arc::new(Registry::new(folder.path(), defaults));
    registry.reload();
    let history = Arc::new(alyx::history::History::new(100));
    let invoker = Invoker::new(registry, Arc::new(InternalTokens::new()), "http://alyx".into(), 4, history);
    let invoker = Arc::new(invoker);
    let settings = events::Settings { workers: 1, queue: 100, queue_bytes: 1 << 20, max_depth: 8 };
    let data = folder.path().join(format!(".alyx-{n}"));
    let events = Events::start(invoker.clone(), &data, &settings).expect("events start");
    let keys = keys.iter().map(|k| alyx::config::ApiKey { name: "fuzz".into(), key: k.to_string() });
    App::new(invoker, keys.collect(), admin.map(String::from)).with_events(Arc::new(events))
}

/// Dispatches `request` to app `index` and checks the reply.
fn check_dispatch(fixture: &Fixture, index: usize, request: &Request) -> Result<Reply, String> {
    let app = &fixture.apps[index % fixture.apps.len()];
    let reply = dispatch(request, app);
    check_reply(request, &reply)?;
    match app.traffic.in_flight() {
        0 => Ok(reply),
        n => Err(format!("{n} requests still in flight")),
    }
}

fn check_reply(request: &Request, reply: &Reply) -> Result<(), String> {
    if !(100..=599).contains(&reply.status) {
        return Err(format!("status {}", reply.status));
    }
    let ids: Vec<&str> = reply
        .headers
        .iter()
        .filter(|(n, _)| n.eq_ignore_ascii_case("X-Request-ID"))
        .map(|(_, v)| v.as_str())
        .collect();
    let [id] = ids[..] else {
        return Err(format!("{} X-Request-ID headers: {ids:?}", ids.len()));
    };
    if !valid_request_id(id) {
        return Err(format!("invalid X-Request-ID {id:?}"));
    }
    if let Some(sent) = request.header("X-Request-ID").filter(|s| valid_request_id(s) && *s != id) {
        return Err(format!("X-Request-ID {sent:?} came back as {id:?}"));
    }
    if reply.header("Content-Type") == Some("application/json") && json_depth(&reply.body) <= JSON_DEPTH {
        serde_json::from_slice::<Value>(&reply.body)
            .map_err(|e| format!("the JSON reply does not parse: {e}"))?;
    }
    if reply.status == 405 && reply.header("Allow").is_none() {
        return Err("405 without Allow".into());
    }
    Ok(())
}

/// The deepest nesting serde_json reads. An input nested nearly that deep
/// comes back deeper inside the envelope: valid JSON that serde_json refuses.
const JSON_DEPTH: usize = 127;

/// How deep arrays and objects nest in `json` (strings skipped).
fn json_depth(json: &[u8]) -> usize {
    let (mut depth, mut deepest, mut in_string, mut escaped) = (0usize, 0, false, false);
    for byte in json {
        match (in_string, escaped, byte) {
            (true, true, _) => escaped = false,
            (true, false, b'\\') => escaped = true,
            (_, false, b'"') => in_string = !in_string,
            (false, _, b'[' | b'{') => {
                depth += 1;
                deepest = deepest.max(depth);
            }
            (false, _, b']' | b'}') => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    deepest
}

/// What the API echoes: 1 to 128 visible ASCII characters.
fn valid_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

// --- target: http_requests ---------------------------------------------------

pub struct Requests {
    fixture: Fixture,
    statuses: std::collections::BTreeMap<u16, u64>,
}

impl Requests {
    pub fn new() -> Requests {
        Requests { fixture: Fixture::new(), statuses: Default::default() }
    }
}

impl Target for Requests {
    const NAME: &'static str = "http_requests";
    const EXTENSION: &'static str = "json";
    const MAX_CASE_TIME: Duration = MAX_CASE_TIME;

    fn generate(&mut self, rng: &mut Rng) -> Vec<u8> {
        let app = rng.below(2);
        Recipe { app, request: request(rng, app) }.encode()
    }

    fn check(&mut self, input: &[u8]) -> Result<(), String> {
        let recipe = Recipe::decode(input)?;
        let reply = check_dispatch(&self.fixture, recipe.app, &recipe.request)?;
        *self.statuses.entry(reply.status).or_default() += 1;
        Ok(())
    }

    fn summary(&self) -> String {
        let statuses: Vec<String> = self.statuses.iter().map(|(s, n)| format!("{s} {n}")).collect();
        format!("statuses: {}", statuses.join(", "))
    }
}

/// One case of `http_requests`: which app, and the request.
struct Recipe {
    app: usize,
    request: Request,
}

impl Recipe {
    fn encode(&self) -> Vec<u8> {
        let r = &self.request;
        let body = match &r.body {
            Ok(bytes) => json!(hex(bytes)),
            Err(BodyError::TooLarge) => json!({"error": "too_large"}),
            Err(BodyError::Unreadable) => json!({"error": "unreadable"}),
        };
        let value = json!({
            "app": self.app, "method": r.method, "path": r.path, "query": r.query,
            "headers": r.headers, "body": body,
        });
        serde_json::to_vec(&value).expect("a recipe is JSON")
    }

    fn decode(input: &[u8]) -> Result<Recipe, String> {
        let value: Value = serde_json::from_slice(input).map_err(|e| format!("not a request recipe: {e}"))?;
        let text = |key: &str| value[key].as_str().map(String::from).ok_or(format!("recipe: no {key}"));
        let body = match &value["body"] {
            Value::String(hex) => Ok(unhex(hex)?),
            other if other["error"] == "too_large" => Err(BodyError::TooLarge),
            _ => Err(BodyError::Unreadable),
        };
        let headers: Vec<(String, String)> =
            serde_json::from_value(value["headers"].clone()).map_err(|e| format!("recipe: headers: {e}"))?;
        let mut request = Request::new("GET", "/");
        (request.method, request.path) = (text("method")?, text("path")?);
        (request.query, request.headers, request.body) =
            (value["query"].as_str().map(String::from), headers, body);
        Ok(Recipe { app: value["app"].as_u64().unwrap_or(0) as usize, request })
    }
}

fn hex(bytes: &[u8]) -> String {
    const DIGITS: &[u8; 16] = b"0123456789abcdef";
    let pairs = bytes.iter().flat_map(|b| [DIGITS[usize::from(b >> 4)], DIGITS[usize::from(b & 15)]]);
    String::from_utf8(pairs.collect()).expect("hex digits are ASCII")
}

fn unhex(text: &str) -> Result<Vec<u8>, String> {
    let digit = |d: u8| char::from(d).to_digit(16).map(|v| v as u8);
    let byte = |pair: &[u8]| Some(digit(pair[0])? << 4 | digit(*pair.get(1)?)?);
    text.as_bytes()
        .chunks(2)
        .map(|pair| byte(pair).ok_or_else(|| format!("recipe: bad hex {pair:?}")))
        .collect()
}

// --- target: http_bytes ------------------------------------------------------

/// Raw bytes through the front's `Conn`, then as `http_requests`.
pub struct Bytes {
    fixture: Fixture,
    /// One end of a loopback connection; each case's `Conn` owns a clone
    /// (it only asks it for the peer's address: nothing is sent).
    stream: TcpStream,
    _listener: TcpListener,
    /// Requests handed over, and refusals.
    seen: [u64; 2],
}

impl Bytes {
    pub fn new() -> Bytes {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind loopback");
        let stream =
            TcpStream::connect(listener.local_addr().expect("local addr")).expect("connect loopback");
        Bytes { fixture: Fixture::new(), stream, _listener: listener, seen: [0; 2] }
    }
}

/// The front's limits for the cases (the server's defaults, smaller).
const FRONT_LIMITS: Limits = Limits {
    max_header_bytes: 16 << 10,
    max_body: HUGE_BODY as u64,
    header_timeout: Duration::from_secs(10),
    body_timeout: Duration::from_secs(10),
    keepalive_timeout: Duration::from_secs(5),
    write_timeout: Duration::from_secs(10),
};

/// Steps one case may take: far more than its pipelined requests need.
const MAX_STEPS: usize = 1_000;

/// HTTP/1.1 syntax spliced into the bytes.
const HTTP_TOKENS: &[&[u8]] = &[
    b"\r\n",
    b"\n",
    b"\r\n\r\n",
    b" ",
    b":",
    b"\0",
    b"%",
    b"%00",
    b"HTTP/1.0",
    b"HTTP/2",
    b"Host: x\r\n",
    b"Transfer-Encoding: chunked\r\n",
    b"0\r\n\r\n",
    b"ffffffffffffffff\r\n",
    b"Content-Length: -1\r\n",
    b"Content-Length: 99999999999999999999\r\n",
    b"Content-Length: 5\r\nContent-Length: 6\r\n",
    b"Expect: 100-continue\r\n",
    b"Connection: close\r\n",
    b"\t",
    b"\xff\xfe",
    b"\xc3\xa9",
];

impl Target for Bytes {
    const NAME: &'static str = "http_bytes";
    const EXTENSION: &'static str = "http";
    const MAX_CASE_TIME: Duration = MAX_CASE_TIME;

    fn generate(&mut self, rng: &mut Rng) -> Vec<u8> {
        let request = request(rng, 0);
        let mut bytes = render(&request, rng);
        if rng.one_in(4) {
            let pipelined = render(&request, rng);
            bytes.extend_from_slice(&pipelined);
        }
        if rng.one_in(2) {
            mutate(rng, &mut bytes, HTTP_TOKENS, MAX_MUTATIONS, HUGE_BODY + (64 << 10));
        }
        bytes
    }

    /// Feeds the bytes to a new connection and plays the poller: every
    /// request handed over is answered (the answer "written" at once); a
    /// refusal is answered and ends the case, and so does a wait for bytes.
    fn check(&mut self, input: &[u8]) -> Result<(), String> {
        let now = Instant::now();
        let stream = self.stream.try_clone().map_err(|e| format!("cloning the loopback stream: {e}"))?;
        let mut conn = Conn::new(stream, FRONT_LIMITS, now);
        conn.received(input, now);
        let mut step = conn.advance(now);
        for _ in 0..MAX_STEPS {
            step = match step {
                Step::Request(request) => {
                    self.seen[0] += 1;
                    let reply = check_dispatch(&self.fixture, input.len(), &request)?;
                    conn.reply(wire::encode(&reply, conn.head_only(), conn.closes()), conn.closes(), now);
                    Step::Write
                }
                Step::Write => conn.wrote(conn.pending().len(), now),
                Step::Refuse(reason) => {
                    self.seen[1] += 1;
                    return check_refusal(&self.fixture.apps[0].reject(reason), reason);
                }
                Step::Read | Step::Wait | Step::Close => return Ok(()),
            };
        }
        Err(format!("the front took more than {MAX_STEPS} steps"))
    }

    fn summary(&self) -> String {
        format!("requests {}, refused {}", self.seen[0], self.seen[1])
    }
}

/// A refusal is a 4xx or 5xx with a request id.
fn check_refusal(reply: &Reply, reason: Reject) -> Result<(), String> {
    let id = reply.header("X-Request-ID").is_some_and(valid_request_id);
    match (400..=599).contains(&reply.status) && id {
        true => Ok(()),
        false => Err(format!("refusal {reason:?} answered {} {:?}", reply.status, reply.headers)),
    }
}

/// A request as HTTP/1.1 bytes, its body framed by `Content-Length` or,
/// one time in four, in chunks.
fn render(request: &Request, rng: &mut Rng) -> Vec<u8> {
    let query = request.query.as_ref().map(|q| format!("?{q}")).unwrap_or_default();
    let mut text = format!("{} {}{query} HTTP/1.1\r\n", request.method, request.path);
    for (name, value) in &request.headers {
        text.push_str(&format!("{name}: {value}\r\n"));
    }
    let body = request.body.clone().unwrap_or_default();
    if !rng.one_in(4) {
        text.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
        return [text.into_bytes(), body].concat();
    }
    text.push_str("Transfer-Encoding: chunked\r\n\r\n");
    let mut bytes = text.into_bytes();
    for chunk in body.chunks(rng.between(1, 4096)) {
        bytes.extend_from_slice(format!("{:x}\r\n", chunk.len()).as_bytes());
        bytes.extend_from_slice(chunk);
        bytes.extend_from_slice(b"\r\n");
    }
    bytes.extend_from_slice(b"0\r\n\r\n");
    bytes
}

// --- generating requests -----------------------------------------------------

const METHODS: &[&str] =
    &["GET", "POST", "HEAD", "PUT", "DELETE", "OPTIONS", "PATCH", "", "get", "G\0T", "POST ", "BREW"];

const SEGMENTS: &[&str] = &[
    "api",
    "functions",
    "echo",
    "fail",
    "slow",
    "broken",
    "gone",
    "nope",
    "stats",
    "reload",
    "invoke",
    "health",
    "live",
    "ready",
    "metrics",
    "",
    ".",
    "..",
    "%2F",
    "%00",
    "%zz",
    "%",
    "%e2%82",
    "%65cho",
    "é",
    "\0",
    ";x",
    "echo%20",
    "ECHO",
    "a b",
    "\u{202e}",
    "😀",
];

const QUERY_PARTS: &[&str] = &[
    "name", "Ada", "=", "&", "&&", "+", "%20", "%", "%zz", "%ff", "a=1", "a=", "=b", "é", "\0", "#", "?",
    "[]",
];

const REQUEST_IDS: &[&str] = &["abc-1", "", " ", "has space", "é", "\u{7f}", "a\tb", "x", "-", "\0"];

const AUTHORIZATIONS: &[&str] = &[
    "Bearer k1",
    "Bearer adm",
    "Bearer ",
    "bearer k1",
    "Bearer  k1",
    "Basic k1",
    "Bearer k2",
    "k1",
    "Bearer k1 ",
];

/// Every endpoint, as a method and the path's segments: most requests
/// start from one, so they get past the router. (`slow` is left to odd
/// paths: each call spends its whole timeout.)
const ENDPOINTS: &[(&str, &[&str])] = &[
    ("POST", &["api", "functions", "echo"]),
    ("GET", &["api", "functions", "echo"]),
    ("GET", &["api", "functions", "echo", "invoke"]),
    ("POST", &["api", "functions", "fail"]),
    ("POST", &["api", "functions", "broken"]),
    ("GET", &["api", "functions", "gone"]),
    ("GET", &["api", "functions"]),
    ("GET", &["api", "functions", "stats"]),
    ("POST", &["api", "functions", "reload"]),
    ("GET", &["health"]),
    ("HEAD", &["health", "live"]),
    ("GET", &["health", "ready"]),
    ("GET", &["health", "stats"]),
    ("GET", &["metrics"]),
    ("GET", &["echo", "ada"]),
    ("POST", &["echo", "ada"]),
    ("GET", &["open"]),
    ("POST", &["api", "events"]),
    ("GET", &["api", "events", "failed"]),
    ("POST", &["api", "events", "e1", "retry"]),
    ("DELETE", &["api", "events", "e1"]),
];

/// A request for `app` (1 has an API key and an admin token): an endpoint,
/// sometimes with an odd method or path, a query, headers and a body.
fn request(rng: &mut Rng, app: usize) -> Request {
    let (method, segments) = rng.pick(ENDPOINTS);
    let mut request = Request::new(method, "/");
    if rng.one_in(4) {
        request.method = odd_string(rng, METHODS, 1024);
    }
    request.path = path(rng, segments);
    request.query = (!rng.one_in(3)).then(|| query(rng));
    request.headers = (0..rng.size(8)).map(|_| header(rng)).collect();
    if app == 1 && rng.one_in(2) {
        let token = rng.pick(&[KEY, ADMIN]);
        request.headers.insert(
            rng.below(request.headers.len() + 1),
            ("Authorization".into(), format!("Bearer {token}")),
        );
    }
    request.body = body(rng);
    request
}

/// One of `common`, or now and then something longer or random.
fn odd_string(rng: &mut Rng, common: &[&str], long: usize) -> String {
    match rng.below(12) {
        0 => rng.pick(common).repeat(rng.between(2, long)),
        1 => String::from_utf8_lossy(&rng.bytes(0, 32)).into_owned(),
        _ => rng.pick(common).to_string(),
    }
}

/// The endpoint's path, one time in three with segments replaced or added.
fn path(rng: &mut Rng, endpoint: &[&str]) -> String {
    let mut segments: Vec<String> = endpoint.iter().map(|s| s.to_string()).collect();
    let changes = if rng.one_in(3) { rng.between(1, 3) } else { 0 };
    for _ in 0..changes {
        let at = rng.below(segments.len() + 1);
        let segment = odd_string(rng, SEGMENTS, 300);
        match rng.one_in(2) && at < segments.len() {
            true => segments[at] = segment,
            false => segments.insert(at, segment),
        }
    }
    let lead = if rng.one_in(8) { *rng.pick(&["", "//"]) } else { "/" };
    let trail = if rng.one_in(8) { *rng.pick(&["/", "//"]) } else { "" };
    format!("{lead}{}{trail}", segments.join("/"))
}

fn query(rng: &mut Rng) -> String {
    if rng.one_in(50) {
        return "a=b&".repeat(rng.between(1, 16 << 10));
    }
    (0..rng.size(8)).map(|_| odd_string(rng, QUERY_PARTS, 64)).collect()
}

fn header(rng: &mut Rng) -> (String, String) {
    match rng.below(6) {
        0 | 1 => ("X-Request-ID".into(), request_id(rng)),
        2 => ("Authorization".into(), odd_string(rng, AUTHORIZATIONS, 64)),
        3 => ("Content-Type".into(), rng.pick(&["application/json", "text/plain", ""]).to_string()),
        _ => (
            odd_string(rng, &["x-request-id", "X-Other", "", "authorization"], 64),
            odd_string(rng, &["v"], 64),
        ),
    }
}

fn request_id(rng: &mut Rng) -> String {
    match rng.below(3) {
        0 => "r".repeat(rng.between(120, 140)),
        _ => odd_string(rng, REQUEST_IDS, 200),
    }
}

fn body(rng: &mut Rng) -> Result<Vec<u8>, BodyError> {
    let text = match rng.below(16) {
        0 => return Err(BodyError::TooLarge),
        1 => return Err(BodyError::Unreadable),
        2 => String::new(),
        3 => format!("{{\"input\": {}}}", nested(rng)),
        4 if rng.one_in(8) => format!("\"{}\"", "x".repeat(rng.between(1 << 20, HUGE_BODY))),
        5 => return Ok(rng.bytes(0, 256)),
        6 => json!({"input": odd_string(rng, SEGMENTS, 64), "success": rng.one_in(2)}).to_string(),
        7 => "{\"input\": ".to_string(),
        8 => event(rng),
        _ => json!({"input": {"name": odd_string(rng, QUERY_PARTS, 64), "n": rng.next_u64()}}).to_string(),
    };
    Ok(text.into_bytes())
}

/// An event, valid or nearly: known and odd types, names and fields.
fn event(rng: &mut Rng) -> String {
    let kind = odd_string(rng, &["custom", "auth", "database", "webhook", "*"], 16);
    let mut event = json!({
        "type": kind,
        "source": odd_string(rng, SEGMENTS, 300),
        "action": odd_string(rng, &["insert", "*", ""], 300),
        "data": {"n": rng.next_u64()},
    });
    if rng.one_in(4) {
        event["metadata"] = json!(odd_string(rng, SEGMENTS, 8));
    }
    if rng.one_in(8) {
        event["extra"] = json!(1);
    }
    event.to_string()
}

/// JSON nested up to twice the depth serde_json accepts.
fn nested(rng: &mut Rng) -> String {
    let depth = rng.below(256);
    format!("{}1{}", "[".repeat(depth), "]".repeat(depth))
}
