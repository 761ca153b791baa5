//! Outbound HTTP for plugins: one shared ureq agent (so connections are
//! pooled across calls and functions), checked against the `allowed_hosts`
//! policy (`hosts.rs`), and the caps a plugin cannot lift: the call's
//! remaining time and a response size.
//!
//! The URL is parsed once and that same `Uri` is both checked and sent, so the
//! host the policy approved is the host ureq connects to, and the `Host`
//! header names it too (a plugin's own is dropped). Redirects are not
//! followed: a redirect to a host outside `allowed_hosts` would otherwise get
//! around the policy, so the plugin sees the 3xx response itself.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use ureq::AsSendBody;
use ureq::http::{self, HeaderName, HeaderValue, Uri, header};

use super::hosts::{AllowedHosts, unbracket};

/// Overall budget for one request when the call itself has no deadline.
const NO_DEADLINE_TIMEOUT: Duration = Duration::from_secs(30);

/// Longest wait for a connection (TCP and TLS), whatever time the call has.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(10);

/// A request a plugin wants sent.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// What came back, whatever the status.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    /// The status code's standard reason phrase ("" for unknown codes).
    pub status_text: String,
    /// Lower-case names, repeats kept. Names come in the order they first
    /// appear; the values of a repeated name stay together, in wire order.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// `{name: value}`, repeated headers joined with `,` (RFC 9110 lists).
    pub fn headers_joined(&self) -> BTreeMap<String, String> {
        let mut joined: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &self.headers {
            joined
                .entry(name.clone())
                .and_modify(|all| {
                    all.push(',');
                    all.push_str(value);
                })
                .or_insert_with(|| value.clone());
        }
        joined
    }

    /// The first value of each header (for `alyx_http_request`).
    pub fn headers_first(&self) -> BTreeMap<String, String> {
        let mut first = BTreeMap::new();
        for (name, value) in &self.headers {
            first.entry(name.clone()).or_insert_with(|| value.clone());
        }
        first
    }
}

/// Why a request got no response.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpError {
    /// The host is not in `allowed_hosts`; nothing was sent.
    Denied { host: String, url: String },
    /// The URL does not parse, is not http(s), or has no host; nothing was sent.
    InvalidUrl { url: String, reason: String },
    /// The call's remaining time (or a connect/default cap) ran out.
    Timeout { after: Duration },
    /// The response body is longer than `limit` bytes.
    TooLarge { limit: u64 },
    /// Anything else: refused connection, DNS, TLS, protocol, a method or
    /// header the client cannot send.
    Transport { url: String, message: String },
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Denied { host, url } => write!(
                f,
                "http: request to {url} denied: host {host:?} is not in allowed_hosts \
                 (add it to allowed_hosts in the function's manifest; to `alyx call PLUGIN`, \
                 pass --allow-host {host})"
            ),
            HttpError::InvalidUrl { url, reason } => write!(f, "http: invalid URL {url:?}: {reason}"),
            HttpError::Timeout { after } => write!(f, "http: timed out after {} ms", after.as_millis()),
            HttpError::TooLarge { limit } => {
                write!(f, "http: response body exceeds the limit of {limit} bytes")
            }
            HttpError::Transport { url, message } => write!(f, "http: request to {url} failed: {message}"),
        }
    }
}

impl std::error::Error for HttpError {}

/// One ureq agent, shared by every plugin so connections are reused.
#[derive(Debug)]
pub struct HttpClient {
    agent: ureq::Agent,
}

impl Default for HttpClient {
    fn default() -> HttpClient {
        HttpClient::new()
    }
}

impl HttpClient {
    /// Any status is a response, not an error; no redirects; any method
    /// token. Proxies come from the usual environment variables.
    pub fn new() -> HttpClient {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .allow_non_standard_methods(true)
            .timeout_global(Some(NO_DEADLINE_TIMEOUT))
            .timeout_connect(Some(CONNECT_TIMEOUT))
            .build();
        HttpClient { agent: config.new_agent() }
    }

    /// Checks the URL and `allowed_hosts` before anything else, then sends
    /// within `remaining` (`None`: the call has no deadline) and reads at
    /// most `max_response_bytes` of body. Any status is `Ok`.
    pub fn send(
        &self,
        req: &HttpRequest,
        allowed: &AllowedHosts,
        remaining: Option<Duration>,
        max_response_bytes: u64,
    ) -> Result<HttpResponse, HttpError> {
        let (uri, host) = parse_url(&req.url)?;
        check_policy(&host, &req.url, allowed)?;
        let budget = Budget::new(remaining)?;
        let head = request_head(req, uri)?;
        let response = self.run(head, req.body.as_deref(), budget).map_err(|e| budget.fail(&req.url, e))?;
        read_response(response, max_response_bytes).map_err(|e| match e {
            ureq::Error::BodyExceedsLimit(_) => HttpError::TooLarge { limit: max_response_bytes },
            other => budget.fail(&req.url, other),
        })
    }

    /// Sends the head and the body as given: a body, even an empty one, goes
    /// with its exact `content-length`; `None` sends no body at all.
    fn run(
        &self,
        head: http::request::Parts,
        body: Option<&[u8]>,
        budget: Budget,
    ) -> Result<http::Response<ureq::Body>, ureq::Error> {
        match body {
            Some(bytes) => self.run_with(http::Request::from_parts(head, bytes), budget),
            None => self.run_with(http::Request::from_parts(head, ()), budget),
        }
    }

    fn run_with(
        &self,
        request: http::Request<impl AsSendBody>,
        budget: Budget,
    ) -> Result<http::Response<ureq::Body>, ureq::Error> {
        let request = self
            .agent
            .configure_request(request)
            .timeout_global(Some(budget.overall))
            .timeout_connect(Some(budget.connect))
            .build();
        self.agent.run(request)
    }
}

/// Parses an absolute http(s) URL into the `Uri` to send and the host name
/// to check (lower-case, IPv6 brackets removed, never with a port).
fn parse_url(url: &str) -> Result<(Uri, String), HttpError> {
    let invalid = |reason: String| HttpError::InvalidUrl { url: url.to_string(), reason };
    let uri: Uri = url.parse().map_err(|e: http::uri::InvalidUri| invalid(e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(other) => return Err(invalid(format!("scheme {other:?} is not supported (use http or https)"))),
        None => return Err(invalid("needs a scheme and a host, like https://example.com/".into())),
    }
    let host = match uri.host() {
        Some(host) if !unbracket(host).is_empty() => host,
        _ => return Err(invalid("needs a host".into())),
    };
    check_port(uri.authority().map_or("", |a| a.as_str()), host).map_err(invalid)?;
    let name = unbracket(host).to_ascii_lowercase();
    Ok((uri, name))
}

/// `http::Uri` accepts `host:abc` and `host:99999` (it then reports no
/// port); such a URL would be sent to the default port, so refuse it.
fn check_port(authority: &str, host: &str) -> Result<(), String> {
    let host_port = authority.rsplit_once('@').map_or(authority, |(_, after)| after);
    match host_port.strip_prefix(host).unwrap_or_default() {
        "" | ":" => Ok(()),
        port => match port.strip_prefix(':').map(str::parse::<u16>) {
            Some(Ok(_)) => Ok(()),
            _ => Err(format!("invalid port {:?}", port.trim_start_matches(':'))),
        },
    }
}

fn check_policy(host: &str, url: &str, allowed: &AllowedHosts) -> Result<(), HttpError> {
    if allowed.allows(host) {
        return Ok(());
    }
    let denied = HttpError::Denied { host: host.to_string(), url: url.to_string() };
    log::warn!("{denied}");
    Err(denied)
}

/// Method, URI and the plugin's headers. A `content-length` from the plugin
/// is dropped: the client sets the true one, and a wrong one would hang the
/// server or fail the send. So is a `host`: the client sends the URL's, the
/// one `allowed_hosts` approved (another would reach a different virtual
/// host, or mislead a proxy, behind an allowed address).
fn request_head(req: &HttpRequest, uri: Uri) -> Result<http::request::Parts, HttpError> {
    let refuse = |message: String| HttpError::Transport { url: req.url.clone(), message };
    let method = http::Method::from_bytes(req.method.as_bytes())
        .map_err(|_| refuse(format!("invalid method {:?}", req.method)))?;
    let mut builder = http::Request::builder().method(method).uri(uri);
    for (name, value) in &req.headers {
        let name = HeaderName::from_bytes(name.as_bytes())
            .map_err(|_| refuse(format!("invalid header name {name:?}")))?;
        let value = HeaderValue::from_str(value)
            .map_err(|_| refuse(format!("invalid value for header {name:?}: {value:?}")))?;
        match name {
            header::CONTENT_LENGTH => {}
            header::HOST => {
                log::debug!("http: the plugin's host header {value:?} is ignored; the URL's is sent")
            }
            _ => builder = builder.header(name, value),
        }
    }
    let request = builder.body(()).map_err(|e| refuse(e.to_string()))?;
    Ok(request.into_parts().0)
}

fn read_response(mut response: http::Response<ureq::Body>, limit: u64) -> Result<HttpResponse, ureq::Error> {
    let status = response.status();
    let headers = response
        .headers()
        .iter()
        .map(|(name, value)| {
            (name.as_str().to_owned(), String::from_utf8_lossy(value.as_bytes()).into_owned())
        })
        .collect();
    let body = response.body_mut().with_config().limit(limit).read_to_vec()?;
    Ok(HttpResponse {
        status: status.as_u16(),
        status_text: status.canonical_reason().unwrap_or_default().to_owned(),
        headers,
        body,
    })
}

/// The time one request may take: all of it, and the connect part.
#[derive(Debug, Clone, Copy)]
struct Budget {
    overall: Duration,
    connect: Duration,
}

impl Budget {
    /// No time left fails here, before anything connects.
    fn new(remaining: Option<Duration>) -> Result<Budget, HttpError> {
        let overall = remaining.unwrap_or(NO_DEADLINE_TIMEOUT);
        if overall.is_zero() {
            return Err(HttpError::Timeout { after: Duration::ZERO });
        }
        Ok(Budget { overall, connect: overall.min(CONNECT_TIMEOUT) })
    }

    /// Maps a ureq failure; timeouts (however reported) say which budget ran out.
    fn fail(&self, url: &str, error: ureq::Error) -> HttpError {
        use std::io::ErrorKind::{TimedOut, WouldBlock};
        match error {
            ureq::Error::Timeout(ureq::Timeout::Connect) => HttpError::Timeout { after: self.connect },
            ureq::Error::Timeout(_) => HttpError::Timeout { after: self.overall },
            ureq::Error::Io(e) if matches!(e.kind(), TimedOut | WouldBlock) => {
                HttpError::Timeout { after: self.overall }
            }
            other => HttpError::Transport { url: url.to_string(), message: other.to_string() },
        }
    }
}

/// The Extism `http_request` JSON. Unknown fields are ignored, as Go does.
#[derive(Deserialize)]
struct ExtismRequest {
    url: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
}

/// Parses `{"url", "method"?, "headers"?}` (`null` = absent); the method
/// defaults to GET and is upper-cased.
pub fn parse_extism_request(json: &[u8], body: Option<Vec<u8>>) -> Result<HttpRequest, String> {
    let raw: ExtismRequest =
        serde_json::from_slice(json).map_err(|e| format!("invalid http_request JSON: {e}"))?;
    Ok(HttpRequest {
        method: method_or_get(raw.method),
        url: raw.url,
        headers: raw.headers.unwrap_or_default().into_iter().collect(),
        body,
    })
}

/// The `alyx_http_request` JSON: Extism's plus a UTF-8 `body`.
#[derive(Deserialize)]
struct AlyxRequest {
    url: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
    #[serde(default)]
    body: Option<String>,
}

/// Parses `{"method"?, "url", "headers"?, "body"?}`; the body string is sent as-is.
pub fn parse_alyx_request(json: &[u8]) -> Result<HttpRequest, String> {
    let raw: AlyxRequest =
        serde_json::from_slice(json).map_err(|e| format!("invalid alyx_http_request JSON: {e}"))?;
    Ok(HttpRequest {
        method: method_or_get(raw.method),
        url: raw.url,
        headers: raw.headers.unwrap_or_default().into_iter().collect(),
        body: raw.body.map(String::into_bytes),
    })
}

fn method_or_get(method: Option<String>) -> String {
    method.map_or_else(|| "GET".to_string(), |m| m.to_ascii_uppercase())
}

/// `{"status","status_text","headers","body"}` for `alyx_http_request`:
/// the first value of each header, the body as (lossy) UTF-8 text.
pub fn alyx_response_json(resp: &HttpResponse) -> Vec<u8> {
    let json = serde_json::json!({
        "status": resp.status,
        "status_text": resp.status_text,
        "headers": resp.headers_first(),
        "body": String::from_utf8_lossy(&resp.body),
    });
    json.to_string().into_bytes()
}

#[cfg(test)]
mod tests {
    use std::io::{BufRead, BufReader, Write};
    use std::net::TcpListener;
    use std::thread::{self, JoinHandle};
    use std::time::Instant;

    use super::*;

    /// Every socket wait in these tests ends by then.
    const BOUND: Duration = Duration::from_secs(5);

    #[track_caller]
    fn hosts(patterns: &[&str]) -> AllowedHosts {
        AllowedHosts::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    fn loopback() -> AllowedHosts {
        hosts(&["127.0.0.1"])
    }

    fn request(method: &str, url: &str, headers: &[(&str, &str)], body: Option<&[u8]>) -> HttpRequest {
        HttpRequest {
            method: method.into(),
            url: url.into(),
            headers: headers.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect(),
            body: body.map(<[u8]>::to_vec),
        }
    }

    fn get(url: &str) -> HttpRequest {
        request("GET", url, &[], None)
    }

    /// Sends to the loopback server with time to spare and a roomy limit.
    #[track_caller]
    fn send_ok(client: &HttpClient, req: &HttpRequest) -> HttpResponse {
        client.send(req, &loopback(), Some(BOUND), 1 << 20).unwrap()
    }

    /// What the loopback server received.
    struct Seen {
        head: String,
        body: Vec<u8>,
    }

    /// A server on 127.0.0.1 that accepts one connection and answers
    /// `rounds` requests on it; `None` from `answer` means "never answer,
    /// wait for the client to hang up".
    struct Loopback {
        url: String,
        thread: JoinHandle<Vec<Seen>>,
    }

    impl Loopback {
        fn start(rounds: usize, answer: impl Fn(&Seen) -> Option<Vec<u8>> + Send + 'static) -> Loopback {
            let listener = TcpListener::bind("127.0.0.1:0").unwrap();
            let url = format!("http://127.0.0.1:{}", listener.local_addr().unwrap().port());
            let serve = move || {
                let (stream, _) = listener.accept().unwrap();
                stream.set_read_timeout(Some(BOUND)).unwrap();
                stream.set_write_timeout(Some(BOUND)).unwrap();
                let mut reader = BufReader::new(stream.try_clone().unwrap());
                let mut writer = stream;
                let mut seen = Vec::new();
                for _ in 0..rounds {
                    let request = read_request(&mut reader);
                    match answer(&request) {
                        Some(bytes) => writer.write_all(&bytes).unwrap(),
                        None => drop(std::io::copy(&mut reader, &mut std::io::sink())),
                    }
                    seen.push(request);
                }
                seen
            };
            let thread = thread::Builder::new().name("loopback".into()).spawn(serve).unwrap();
            Loopback { url, thread }
        }

        /// Answers every request with the same bytes.
        fn fixed(rounds: usize, response: Vec<u8>) -> Loopback {
            Loopback::start(rounds, move |_| Some(response.clone()))
        }

        #[track_caller]
        fn finish(self) -> Vec<Seen> {
            self.thread.join().unwrap()
        }
    }

    fn read_request(reader: &mut impl BufRead) -> Seen {
        let mut head = String::new();
        loop {
            let before = head.len();
            reader.read_line(&mut head).unwrap();
            if head[before..].trim_end().is_empty() {
                break;
            }
        }
        let length = head
            .lines()
            .filter_map(|line| line.split_once(':'))
            .find(|(name, _)| name.eq_ignore_ascii_case("content-length"))
            .map_or(0, |(_, value)| value.trim().parse().unwrap());
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        Seen { head, body }
    }

    /// An HTTP/1.1 response with a content-length.
    fn response(status_line: &str, headers: &[(&str, &str)], body: &[u8]) -> Vec<u8> {
        let mut out = format!("HTTP/1.1 {status_line}\r\ncontent-length: {}\r\n", body.len());
        for (name, value) in headers {
            out.push_str(&format!("{name}: {value}\r\n"));
        }
        out.push_str("\r\n");
        let mut out = out.into_bytes();
        out.extend_from_slice(body);
        out
    }

    #[test]
    fn extism_request_accepts_null_missing_and_unknown_fields() {
        let r = parse_extism_request(br#"{"url":"http://x/","method":null,"headers":null,"extra":1}"#, None);
        assert_eq!(r.unwrap(), get("http://x/"));
        let r = parse_extism_request(br#"{"url":"http://x/"}"#, None);
        assert_eq!(r.unwrap(), get("http://x/"));
    }

    #[test]
    fn extism_request_upper_cases_the_method_and_keeps_headers_and_body() {
        let json = br#"{"url":"http://x/","method":"post","headers":{"a":"1","b":"2"}}"#;
        let r = parse_extism_request(json, Some(b"hi".to_vec())).unwrap();
        assert_eq!(r, request("POST", "http://x/", &[("a", "1"), ("b", "2")], Some(b"hi")));
    }

    #[test]
    fn extism_request_without_url_or_with_bad_json_is_an_error() {
        assert!(parse_extism_request(b"{}", None).unwrap_err().contains("url"));
        assert!(
            parse_extism_request(b"not json", None).unwrap_err().starts_with("invalid http_request JSON")
        );
        assert!(parse_extism_request(br#"{"url":"http://x/","headers":{"a":1}}"#, None).is_err());
    }

    #[test]
    fn alyx_request_sends_its_body_string_as_is() {
        let json = r#"{"url":"http://x/","method":"put","headers":{"k":"v"},"body":"héllo","x":0}"#;
        let r = parse_alyx_request(json.as_bytes()).unwrap();
        assert_eq!(r, request("PUT", "http://x/", &[("k", "v")], Some("héllo".as_bytes())));
        assert_eq!(parse_alyx_request(br#"{"url":"http://x/","body":null}"#).unwrap(), get("http://x/"));
        assert!(parse_alyx_request(br#"{"method":"GET"}"#).is_err());
    }

    fn sample_response() -> HttpResponse {
        HttpResponse {
            status: 201,
            status_text: "Created".into(),
            headers: vec![
                ("set-cookie".into(), "a=1".into()),
                ("set-cookie".into(), "b=2".into()),
                ("x-one".into(), "y".into()),
            ],
            body: b"ok \xff".to_vec(),
        }
    }

    #[test]
    fn repeated_headers_are_joined_or_keep_the_first() {
        let resp = sample_response();
        assert_eq!(resp.headers_joined()["set-cookie"], "a=1,b=2");
        assert_eq!(resp.headers_first()["set-cookie"], "a=1");
        assert_eq!(resp.headers_joined()["x-one"], "y");
    }

    #[test]
    fn alyx_response_json_has_status_first_headers_and_lossy_body() {
        let json: serde_json::Value =
            serde_json::from_slice(&alyx_response_json(&sample_response())).unwrap();
        let expected = serde_json::json!({
            "status": 201,
            "status_text": "Created",
            "headers": {"set-cookie": "a=1", "x-one": "y"},
            "body": "ok \u{fffd}",
        });
        assert_eq!(json, expected);
    }

    #[test]
    fn bad_urls_are_refused_before_anything_is_sent() {
        let client = HttpClient::new();
        for url in ["ftp://x/", "no-scheme", "/path/only", "http://", "http://:80/", "", "http://a b/"] {
            let error = client.send(&get(url), &hosts(&["*"]), None, 10).unwrap_err();
            assert!(matches!(error, HttpError::InvalidUrl { .. }), "{url}: {error:?}");
        }
        for url in ["http://x:abc/", "http://x:99999/"] {
            let error = client.send(&get(url), &hosts(&["*"]), None, 10).unwrap_err();
            assert!(error.to_string().contains("invalid port"), "{url}: {error}");
        }
    }

    #[track_caller]
    fn denied_host(url: &str) -> String {
        match HttpClient::new().send(&get(url), &hosts(&["allowed.example"]), None, 10) {
            Err(HttpError::Denied { host, url: denied_url }) if denied_url == url => host,
            other => panic!("{url}: {other:?}"),
        }
    }

    #[test]
    fn the_policy_sees_the_host_name_only() {
        assert_eq!(denied_host("http://example.com:81/x?y#z"), "example.com");
        assert_eq!(denied_host("https://user:pw@Example.COM/"), "example.com");
        assert_eq!(denied_host("http://allowed.example@evil.example/"), "evil.example");
        assert_eq!(denied_host("http://[::1]:8080/"), "::1");
        assert_eq!(denied_host("http://127.0.0.1/"), "127.0.0.1");
    }

    #[test]
    fn a_denial_names_the_setting_to_change() {
        let message = HttpError::Denied { host: "h.com".into(), url: "http://h.com/".into() }.to_string();
        assert!(message.starts_with("http: "), "{message}");
        assert!(message.contains("allowed_hosts in the function's manifest"), "{message}");
        assert!(message.contains("to `alyx call PLUGIN`, pass --allow-host h.com"), "{message}");
    }

    #[test]
    fn an_empty_allow_list_denies_loopback_too() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://127.0.0.1:{}/", listener.local_addr().unwrap().port());
        let error = HttpClient::new().send(&get(&url), &AllowedHosts::deny_all(), None, 10).unwrap_err();
        assert!(matches!(error, HttpError::Denied { .. }), "{error:?}");
        assert_eq!(listener.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    }

    #[test]
    fn no_time_left_fails_without_connecting() {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let url = format!("http://127.0.0.1:{}/", listener.local_addr().unwrap().port());
        let error = HttpClient::new().send(&get(&url), &loopback(), Some(Duration::ZERO), 10).unwrap_err();
        assert_eq!(error, HttpError::Timeout { after: Duration::ZERO });
        assert_eq!(listener.accept().unwrap_err().kind(), std::io::ErrorKind::WouldBlock);
    }

    #[test]
    fn invalid_methods_and_headers_are_refused_without_connecting() {
        let client = HttpClient::new();
        let url = "http://127.0.0.1:9/";
        for (req, named) in [
            (request("GE T", url, &[], None), "invalid method \"GE T\""),
            (request("GET", url, &[("bad name", "v")], None), "invalid header name \"bad name\""),
            (request("GET", url, &[("x", "a\nb")], None), "invalid value for header"),
        ] {
            let error = client.send(&req, &loopback(), Some(BOUND), 10).unwrap_err();
            assert!(matches!(&error, HttpError::Transport { .. }), "{error:?}");
            assert!(error.to_string().contains(named), "{error}");
        }
    }

    #[test]
    fn the_body_is_sent_with_its_length_and_the_plugins_headers() {
        let server = Loopback::start(1, |seen| Some(response("200 OK", &[], &seen.body)));
        let headers = [("X-Plugin", "yes"), ("Content-Length", "999")];
        let req = request("post", &format!("{}/echo", server.url), &headers, Some(b"hello \x00 body"));
        let resp = send_ok(&HttpClient::new(), &req);
        assert_eq!((resp.status, resp.body.as_slice()), (200, &b"hello \x00 body"[..]));
        let seen = server.finish();
        let head = seen[0].head.to_ascii_lowercase();
        assert!(head.starts_with("post /echo http/1.1\r\n"), "{head}");
        assert!(
            head.contains("\r\ncontent-length: 12\r\n") && head.contains("\r\nx-plugin: yes\r\n"),
            "{head}"
        );
    }

    #[test]
    fn the_host_header_is_always_the_urls() {
        let server = Loopback::start(1, |seen| Some(response("200 OK", &[], seen.head.as_bytes())));
        let req = request("GET", &server.url, &[("Host", "internal.example"), ("HOST", "x")], None);
        let resp = send_ok(&HttpClient::new(), &req);
        let head = String::from_utf8(resp.body).unwrap().to_ascii_lowercase();
        let hosts: Vec<&str> = head.lines().filter(|l| l.starts_with("host:")).collect();
        let port = server.url.rsplit(':').next().unwrap();
        assert_eq!(hosts, [format!("host: 127.0.0.1:{port}")], "{head}");
        server.finish();
    }

    #[test]
    fn a_request_without_a_body_sends_none() {
        let server = Loopback::fixed(1, response("204 No Content", &[], b""));
        let resp = send_ok(&HttpClient::new(), &get(&server.url));
        assert_eq!((resp.status, resp.status_text.as_str(), resp.body.len()), (204, "No Content", 0));
        let head = server.finish().remove(0).head.to_ascii_lowercase();
        assert!(!head.contains("content-length") && !head.contains("transfer-encoding"), "{head}");
    }

    #[test]
    fn an_error_status_is_a_response_with_its_body() {
        let server =
            Loopback::fixed(1, response("404 Not Found", &[("Content-Type", "text/plain")], b"nope"));
        let resp = send_ok(&HttpClient::new(), &get(&format!("{}/missing", server.url)));
        assert_eq!(
            (resp.status, resp.status_text.as_str(), resp.body.as_slice()),
            (404, "Not Found", &b"nope"[..])
        );
        assert_eq!(resp.headers_first()["content-type"], "text/plain");
        server.finish();
    }

    #[test]
    fn redirects_are_returned_not_followed() {
        let server =
            Loopback::fixed(1, response("302 Found", &[("Location", "http://elsewhere.example/")], b""));
        let resp = send_ok(&HttpClient::new(), &get(&server.url));
        assert_eq!(
            (resp.status, resp.headers_first()["location"].as_str()),
            (302, "http://elsewhere.example/")
        );
        server.finish();
    }

    #[test]
    fn a_body_of_exactly_the_limit_is_read() {
        let server = Loopback::fixed(1, response("200 OK", &[], &[b'x'; 100]));
        let resp = HttpClient::new().send(&get(&server.url), &loopback(), Some(BOUND), 100).unwrap();
        assert_eq!(resp.body, [b'x'; 100]);
        server.finish();
    }

    #[test]
    fn a_body_one_byte_over_the_limit_is_too_large() {
        let server = Loopback::fixed(1, response("200 OK", &[], &[b'x'; 101]));
        let error = HttpClient::new().send(&get(&server.url), &loopback(), Some(BOUND), 100).unwrap_err();
        assert_eq!(error, HttpError::TooLarge { limit: 100 });
        server.finish();
    }

    #[test]
    fn a_body_without_a_length_is_limited_too() {
        let mut unframed = b"HTTP/1.1 200 OK\r\nconnection: close\r\n\r\n".to_vec();
        unframed.extend_from_slice(&[b'x'; 101]);
        let server = Loopback::fixed(1, unframed);
        let error = HttpClient::new().send(&get(&server.url), &loopback(), Some(BOUND), 100).unwrap_err();
        assert_eq!(error, HttpError::TooLarge { limit: 100 });
        server.finish();
    }

    #[test]
    fn a_server_that_never_answers_times_out_within_the_remaining_time() {
        let server = Loopback::start(1, |_| None);
        let started = Instant::now();
        let remaining = Duration::from_millis(200);
        let error = HttpClient::new().send(&get(&server.url), &loopback(), Some(remaining), 10).unwrap_err();
        assert_eq!(error, HttpError::Timeout { after: remaining });
        assert!(started.elapsed() < BOUND, "took {:?}", started.elapsed());
        server.finish();
    }

    #[test]
    fn repeated_response_headers_are_kept_and_joined() {
        let headers = [("Set-Cookie", "a=1"), ("X-Multi", "one"), ("Set-Cookie", "b=2"), ("X-Multi", "two")];
        let server = Loopback::fixed(1, response("200 OK", &headers, b""));
        let resp = send_ok(&HttpClient::new(), &get(&server.url));
        let cookies: Vec<&str> =
            resp.headers.iter().filter(|(n, _)| n == "set-cookie").map(|(_, v)| v.as_str()).collect();
        assert_eq!(cookies, ["a=1", "b=2"]);
        let joined = resp.headers_joined();
        assert_eq!((joined["set-cookie"].as_str(), joined["x-multi"].as_str()), ("a=1,b=2", "one,two"));
        assert_eq!(resp.headers_first()["x-multi"], "one");
        server.finish();
    }

    #[test]
    fn one_client_reuses_its_connection() {
        // The server accepts a single connection: a second one would time out.
        let server = Loopback::start(2, |seen| Some(response("200 OK", &[], seen.head.as_bytes())));
        let client = HttpClient::new();
        let first = send_ok(&client, &get(&format!("{}/one", server.url)));
        let second = send_ok(&client, &get(&format!("{}/two", server.url)));
        assert!(first.body.starts_with(b"GET /one ") && second.body.starts_with(b"GET /two "));
        assert_eq!(server.finish().len(), 2);
    }

    #[test]
    fn a_refused_connection_is_a_transport_error() {
        let port = TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let url = format!("http://127.0.0.1:{port}/");
        let error = HttpClient::new().send(&get(&url), &loopback(), Some(BOUND), 10).unwrap_err();
        match &error {
            HttpError::Transport { url: failed, .. } => assert_eq!(failed, &url),
            other => panic!("{other:?}"),
        }
        assert!(error.to_string().starts_with(&format!("http: request to {url} failed: ")), "{error}");
    }
}
