//! Outbound HTTP for plugins: the `allowed_hosts` policy, one shared ureq
//! agent (so connections are pooled across calls and functions), and the
//! caps a plugin cannot lift: the call's remaining time and a response size.
//!
//! Redirects are not followed: a redirect to a host outside `allowed_hosts`
//! would otherwise bypass the policy. The plugin sees the 3xx response.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use serde::Deserialize;
use ureq::http;

/// Longest a request may take when the call itself has no deadline.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);

/// Host name globs a plugin may reach; empty denies everything.
#[derive(Debug, Clone)]
pub struct AllowedHosts {
    patterns: Vec<String>,
    compiled: Vec<glob::Pattern>,
}

impl AllowedHosts {
    /// Compiles the patterns; an invalid glob is an error naming it.
    pub fn new(patterns: &[String]) -> Result<AllowedHosts, String> {
        let compiled = patterns
            .iter()
            .map(|p| glob::Pattern::new(p).map_err(|e| format!("allowed_hosts: invalid pattern {p:?}: {e}")))
            .collect::<Result<_, _>>()?;
        Ok(AllowedHosts { patterns: patterns.to_vec(), compiled })
    }

    pub fn deny_all() -> AllowedHosts {
        AllowedHosts { patterns: Vec::new(), compiled: Vec::new() }
    }

    /// True when the host name (no port) equals a pattern or matches its
    /// glob, where `*` spans dots.
    pub fn allows(&self, host: &str) -> bool {
        self.patterns.iter().zip(&self.compiled).any(|(text, glob)| text == host || glob.matches(host))
    }

    pub fn patterns(&self) -> &[String] {
        &self.patterns
    }
}

/// A request a plugin wants sent.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpRequest {
    pub method: String,
    pub url: String,
    pub headers: Vec<(String, String)>,
    pub body: Option<Vec<u8>>,
}

/// What came back.
#[derive(Debug, Clone, PartialEq)]
pub struct HttpResponse {
    pub status: u16,
    pub status_text: String,
    /// Lower-case names, in wire order, repeats kept.
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl HttpResponse {
    /// `{name: value}`, repeated headers joined with `,` (RFC 9110 lists).
    pub fn headers_joined(&self) -> BTreeMap<String, String> {
        let mut out: BTreeMap<String, String> = BTreeMap::new();
        for (name, value) in &self.headers {
            out.entry(name.clone())
                .and_modify(|v| {
                    v.push(',');
                    v.push_str(value);
                })
                .or_insert_with(|| value.clone());
        }
        out
    }

    /// The first value of each header.
    pub fn headers_first(&self) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        for (name, value) in &self.headers {
            out.entry(name.clone()).or_insert_with(|| value.clone());
        }
        out
    }
}

/// Why a request was not answered.
#[derive(Debug, Clone, PartialEq)]
pub enum HttpError {
    Denied { host: String, url: String },
    InvalidUrl { url: String, reason: String },
    Timeout { after: Duration },
    TooLarge { limit: u64 },
    Transport { url: String, message: String },
}

impl fmt::Display for HttpError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HttpError::Denied { host, url } => write!(
                f,
                "http: request to {url} is not allowed: host {host:?} is not in allowed_hosts \
                 (add it to the function's allowed_hosts, or --allow-host)"
            ),
            HttpError::InvalidUrl { url, reason } => {
                write!(f, "http: invalid URL {url:?}: {reason}")
            }
            HttpError::Timeout { after } => {
                write!(f, "http: timed out after {} ms", after.as_millis())
            }
            HttpError::TooLarge { limit } => {
                write!(f, "http: response body exceeds the limit of {limit} bytes")
            }
            HttpError::Transport { url, message } => {
                write!(f, "http: request to {url} failed: {message}")
            }
        }
    }
}

impl std::error::Error for HttpError {}

/// One ureq agent, shared.
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
    pub fn new() -> HttpClient {
        let config = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .max_redirects(0)
            .timeout_global(Some(DEFAULT_TIMEOUT))
            .build();
        HttpClient { agent: config.new_agent() }
    }

    /// Checks the URL and the policy, then sends within `remaining`.
    pub fn send(
        &self,
        req: &HttpRequest,
        allowed: &AllowedHosts,
        remaining: Option<Duration>,
        max_response_bytes: u64,
    ) -> Result<HttpResponse, HttpError> {
        let uri = parse_url(&req.url)?;
        let host = uri.host().unwrap_or_default().trim_start_matches('[').trim_end_matches(']');
        if !allowed.allows(host) {
            log::warn!("plugin HTTP request to {} denied: {host:?} is not in allowed_hosts", req.url);
            return Err(HttpError::Denied { host: host.to_string(), url: req.url.clone() });
        }
        let timeout = remaining.unwrap_or(DEFAULT_TIMEOUT).min(DEFAULT_TIMEOUT);
        if timeout.is_zero() {
            return Err(HttpError::Timeout { after: Duration::ZERO });
        }
        let request = self.build(req, uri, timeout)?;
        let response = self.agent.run(request).map_err(|e| transport(&req.url, timeout, e))?;
        read_response(response, max_response_bytes).map_err(|e| transport(&req.url, timeout, e))
    }

    fn build(
        &self,
        req: &HttpRequest,
        uri: http::Uri,
        timeout: Duration,
    ) -> Result<http::Request<Vec<u8>>, HttpError> {
        let mut builder = http::Request::builder().method(req.method.as_str()).uri(uri);
        for (name, value) in &req.headers {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let request = builder.body(req.body.clone().unwrap_or_default()).map_err(|e| {
            HttpError::InvalidUrl { url: req.url.clone(), reason: format!("bad method or header: {e}") }
        })?;
        Ok(self.agent.configure_request(request).timeout_global(Some(timeout)).build())
    }
}

fn parse_url(url: &str) -> Result<http::Uri, HttpError> {
    let invalid = |reason: &str| HttpError::InvalidUrl { url: url.to_string(), reason: reason.to_string() };
    let uri: http::Uri = url.parse().map_err(|e: http::uri::InvalidUri| invalid(&e.to_string()))?;
    match uri.scheme_str() {
        Some("http" | "https") => {}
        Some(_) => return Err(invalid("only http and https are supported")),
        None => return Err(invalid("needs a scheme (http:// or https://)")),
    }
    if uri.host().is_none_or(str::is_empty) {
        return Err(invalid("needs a host"));
    }
    Ok(uri)
}

fn read_response(mut response: http::Response<ureq::Body>, limit: u64) -> Result<HttpResponse, ureq::Error> {
    let status = response.status();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| (k.as_str().to_ascii_lowercase(), String::from_utf8_lossy(v.as_bytes()).into_owned()))
        .collect();
    let body = response.body_mut().with_config().limit(limit).read_to_vec()?;
    Ok(HttpResponse {
        status: status.as_u16(),
        status_text: status.canonical_reason().unwrap_or("").to_string(),
        headers,
        body,
    })
}

fn transport(url: &str, timeout: Duration, error: ureq::Error) -> HttpError {
    match error {
        ureq::Error::Timeout(_) => HttpError::Timeout { after: timeout },
        ureq::Error::BodyExceedsLimit(limit) => HttpError::TooLarge { limit },
        ureq::Error::Io(e)
            if matches!(e.kind(), std::io::ErrorKind::TimedOut | std::io::ErrorKind::WouldBlock) =>
        {
            HttpError::Timeout { after: timeout }
        }
        other => HttpError::Transport { url: url.to_string(), message: other.to_string() },
    }
}

/// The Extism `http_request` JSON: `{"url", "method"?, "headers"?}`.
#[derive(Deserialize)]
struct ExtismRequest {
    url: String,
    #[serde(default)]
    method: Option<String>,
    #[serde(default)]
    headers: Option<BTreeMap<String, String>>,
}

/// Parses the Extism request JSON; method defaults to GET, upper-cased.
pub fn parse_extism_request(json: &[u8], body: Option<Vec<u8>>) -> Result<HttpRequest, String> {
    let r: ExtismRequest = serde_json::from_slice(json).map_err(|e| format!("invalid request JSON: {e}"))?;
    Ok(HttpRequest {
        method: r.method.unwrap_or_else(|| "GET".into()).to_ascii_uppercase(),
        url: r.url,
        headers: r.headers.unwrap_or_default().into_iter().collect(),
        body,
    })
}

/// The reference design's `alyx_http_request` JSON.
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

/// Parses `{"method"?, "url", "headers"?, "body"?}`; the body is sent as-is.
pub fn parse_alyx_request(json: &[u8]) -> Result<HttpRequest, String> {
    let r: AlyxRequest = serde_json::from_slice(json).map_err(|e| format!("invalid request JSON: {e}"))?;
    Ok(HttpRequest {
        method: r.method.unwrap_or_else(|| "GET".into()).to_ascii_uppercase(),
        url: r.url,
        headers: r.headers.unwrap_or_default().into_iter().collect(),
        body: r.body.map(String::into_bytes),
    })
}

/// `{"status","status_text","headers","body"}` for `alyx_http_request`.
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
    use super::*;

    fn hosts(patterns: &[&str]) -> AllowedHosts {
        AllowedHosts::new(&patterns.iter().map(|p| p.to_string()).collect::<Vec<_>>()).unwrap()
    }

    #[test]
    fn host_globs_match_as_the_reference_does() {
        assert!(hosts(&["api.example.com"]).allows("api.example.com"));
        assert!(hosts(&["*.internal"]).allows("db.eu.internal"));
        assert!(hosts(&["jsonplaceholder.*.com"]).allows("jsonplaceholder.typicode.com"));
        assert!(hosts(&["*"]).allows("anything.at.all"));
        assert!(hosts(&["127.0.0.*"]).allows("127.0.0.1"));
        assert!(!hosts(&["127.0.0.1:8080"]).allows("127.0.0.1"));
        assert!(!hosts(&["localhost"]).allows("127.0.0.1"));
        assert!(!hosts(&[]).allows("example.com"));
        assert!(!AllowedHosts::deny_all().allows("example.com"));
    }

    #[test]
    fn invalid_patterns_are_named() {
        let error = AllowedHosts::new(&["[oops".to_string()]).unwrap_err();
        assert!(error.contains("[oops"), "{error}");
    }

    #[test]
    fn extism_request_json_accepts_nulls_and_unknown_fields() {
        let r = parse_extism_request(br#"{"url":"http://x/","method":null,"headers":null,"extra":1}"#, None)
            .unwrap();
        assert_eq!((r.method.as_str(), r.headers.len()), ("GET", 0));
        let r = parse_extism_request(
            br#"{"url":"http://x/","method":"post","headers":{"a":"b"}}"#,
            Some(b"x".to_vec()),
        )
        .unwrap();
        assert_eq!((r.method.as_str(), r.headers[0].0.as_str(), r.body), ("POST", "a", Some(b"x".to_vec())));
        assert!(parse_extism_request(b"{}", None).is_err());
    }

    #[test]
    fn urls_are_checked_before_anything_is_sent() {
        let client = HttpClient::new();
        let all = hosts(&["*"]);
        for bad in ["ftp://x/", "no-scheme", "http://", ""] {
            let req = HttpRequest { method: "GET".into(), url: bad.into(), headers: vec![], body: None };
            assert!(matches!(client.send(&req, &all, None, 10), Err(HttpError::InvalidUrl { .. })), "{bad}");
        }
    }

    #[test]
    fn denial_names_the_setting() {
        let req = HttpRequest {
            method: "GET".into(),
            url: "http://example.com:81/x".into(),
            headers: vec![],
            body: None,
        };
        let error = HttpClient::new().send(&req, &hosts(&["other.com"]), None, 10).unwrap_err();
        assert_eq!(error, HttpError::Denied { host: "example.com".into(), url: req.url.clone() });
        assert!(error.to_string().contains("allowed_hosts"));
    }

    #[test]
    fn no_time_left_fails_without_connecting() {
        let req = HttpRequest {
            method: "GET".into(),
            url: "http://127.0.0.1:9/".into(),
            headers: vec![],
            body: None,
        };
        let error =
            HttpClient::new().send(&req, &hosts(&["127.0.0.1"]), Some(Duration::ZERO), 10).unwrap_err();
        assert_eq!(error, HttpError::Timeout { after: Duration::ZERO });
    }

    #[test]
    fn repeated_headers_join_or_keep_the_first() {
        let resp = HttpResponse {
            status: 200,
            status_text: "OK".into(),
            headers: vec![
                ("x-multi".into(), "a".into()),
                ("x-multi".into(), "b".into()),
                ("y".into(), "c".into()),
            ],
            body: vec![],
        };
        assert_eq!(resp.headers_joined()["x-multi"], "a,b");
        assert_eq!(resp.headers_first()["x-multi"], "a");
    }
}
