//! A request as the HTTP core sees it: our own type, no library types, so
//! routing, auth and handlers are tested without sockets and the front can
//! change without touching them.

/// Why a request has no body to hand to a handler.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum BodyError {
    /// Longer than `max_body`.
    TooLarge,
    /// The connection failed while the body was read.
    Unreadable,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    /// Upper case (`GET`, `POST`...).
    pub method: String,
    /// The path, without the query string, still percent-encoded.
    pub path: String,
    /// The query string after `?`, if there was a `?`.
    pub query: Option<String>,
    /// Names as received; look them up with [`Request::header`].
    pub headers: Vec<(String, String)>,
    /// The body, read by the front within `max_body`.
    pub body: Result<Vec<u8>, BodyError>,
    /// The client's address, when the front knows it.
    pub remote_addr: Option<std::net::SocketAddr>,
}

impl Request {
    /// A request for `target` (`/path?query`) with no headers and no body.
    pub fn new(method: &str, target: &str) -> Request {
        let (path, query) = match target.split_once('?') {
            Some((path, query)) => (path, Some(query.to_string())),
            None => (target, None),
        };
        Request {
            method: method.to_ascii_uppercase(),
            path: path.to_string(),
            query,
            headers: Vec::new(),
            body: Ok(Vec::new()),
            remote_addr: None,
        }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Request {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    pub fn with_body(mut self, body: impl Into<Vec<u8>>) -> Request {
        self.body = Ok(body.into());
        self
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn targets_split_into_path_and_query() {
        let r = Request::new("get", "/api/functions/x?a=1&b");
        assert_eq!(
            (r.method.as_str(), r.path.as_str(), r.query.as_deref()),
            ("GET", "/api/functions/x", Some("a=1&b"))
        );
        assert_eq!(Request::new("GET", "/x?").query.as_deref(), Some(""));
        assert_eq!(Request::new("GET", "/x").query, None);
    }

    #[test]
    fn headers_are_found_whatever_their_case() {
        let r = Request::new("GET", "/").with_header("X-Request-ID", "a").with_header("x-request-id", "b");
        assert_eq!(r.header("x-REQUEST-id"), Some("a"));
        assert_eq!(r.header("missing"), None);
    }
}
