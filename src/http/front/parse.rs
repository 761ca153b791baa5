//! HTTP/1.1 request framing (RFC 9112) as pure code: bytes in, a request
//! head and how its body is framed out, or why the request is refused.
//! httparse reads the request line and headers; the rules that decide
//! framing (and so request smuggling) are ours and strict: one numeric
//! `Content-Length` at most, never together with `Transfer-Encoding`, and
//! `chunked` as the only transfer coding.

/// Why a request is refused before a handler sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Reject {
    /// Malformed or ambiguous: 400, then close.
    BadRequest(&'static str),
    /// The head is larger than `max_header_bytes` (or has too many headers): 431.
    HeaderTooLarge,
    /// Not HTTP/1.x: 505.
    VersionNotSupported,
    /// The body is larger than `max_body`: 413.
    BodyTooLarge,
    /// The head or the body did not arrive in time: 408.
    Timeout,
    /// Too many connections, or the server is stopping: 503, then close.
    Overloaded,
    /// The handler panicked: 500.
    Internal,
}

/// How the body of a request is delimited.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Framing {
    Length(u64),
    Chunked,
}

/// A parsed request head.
#[derive(Debug, Clone, PartialEq)]
pub struct Head {
    /// Upper case.
    pub method: String,
    /// The request target (`/path?query`), valid UTF-8.
    pub target: String,
    pub headers: Vec<(String, String)>,
    /// Bytes of the head, up to and including the empty line.
    pub len: usize,
    pub framing: Framing,
    /// Whether the connection stays open after the response.
    pub keep_alive: bool,
    /// The client waits for `100 Continue` before sending the body.
    pub expect_continue: bool,
}

/// Most headers a request may have.
const MAX_HEADERS: usize = 100;

/// Parses the head at the start of `buf`: `Ok(None)` while it is incomplete.
pub fn parse_head(buf: &[u8], max_header_bytes: usize) -> Result<Option<Head>, Reject> {
    let mut slots = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut request = httparse::Request::new(&mut slots);
    let len = match request.parse(buf) {
        Ok(httparse::Status::Complete(len)) if len <= max_header_bytes => len,
        Ok(httparse::Status::Complete(_)) => return Err(Reject::HeaderTooLarge),
        Ok(httparse::Status::Partial) if buf.len() > max_header_bytes => return Err(Reject::HeaderTooLarge),
        Ok(httparse::Status::Partial) => return Ok(None),
        Err(httparse::Error::TooManyHeaders) => return Err(Reject::HeaderTooLarge),
        Err(httparse::Error::Version) => return Err(version_error(buf)),
        Err(_) => return Err(Reject::BadRequest("malformed request head")),
    };
    let method = request.method.unwrap_or_default().to_ascii_uppercase();
    let target = request.path.unwrap_or_default().to_string();
    if target.is_empty() {
        return Err(Reject::BadRequest("the request target is empty"));
    }
    let minor = request.version.unwrap_or(1);
    let headers = headers(request.headers)?;
    let framing = framing(&headers)?;
    let keep_alive = keep_alive(&headers, minor);
    let expect_continue = header(&headers, "expect").is_some_and(|v| v.eq_ignore_ascii_case("100-continue"));
    Ok(Some(Head { method, target, headers, len, framing, keep_alive, expect_continue }))
}

/// `HTTP/2.0` and other versions: 505; anything else malformed: 400.
fn version_error(buf: &[u8]) -> Reject {
    let line = buf.split(|b| *b == b'\n').next().unwrap_or_default();
    let version = line.rsplit(|b| *b == b' ').next().unwrap_or_default();
    match version.strip_prefix(b"HTTP/") {
        Some([major, ..]) if major.is_ascii_digit() && *major != b'1' => Reject::VersionNotSupported,
        _ => Reject::BadRequest("malformed HTTP version"),
    }
}

fn headers(raw: &[httparse::Header]) -> Result<Vec<(String, String)>, Reject> {
    raw.iter()
        .map(|h| match std::str::from_utf8(h.value) {
            Ok(value) => Ok((h.name.to_string(), value.trim().to_string())),
            Err(_) => Err(Reject::BadRequest("a header value is not valid UTF-8")),
        })
        .collect()
}

fn header<'h>(headers: &'h [(String, String)], name: &str) -> Option<&'h str> {
    headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// The body's framing; refuses every ambiguous combination.
fn framing(headers: &[(String, String)]) -> Result<Framing, Reject> {
    let lengths: Vec<&str> = all(headers, "content-length").collect();
    let codings: Vec<&str> = all(headers, "transfer-encoding").collect();
    match (lengths.as_slice(), codings.as_slice()) {
        ([], []) => Ok(Framing::Length(0)),
        ([length], []) => content_length(length).map(Framing::Length),
        ([], [coding]) if coding.eq_ignore_ascii_case("chunked") => Ok(Framing::Chunked),
        ([], _) => Err(Reject::BadRequest("unsupported Transfer-Encoding (only chunked)")),
        ([_], _) => Err(Reject::BadRequest("Content-Length together with Transfer-Encoding")),
        _ => Err(Reject::BadRequest("more than one Content-Length")),
    }
}

fn all<'h>(headers: &'h [(String, String)], name: &'h str) -> impl Iterator<Item = &'h str> + 'h {
    headers.iter().filter(move |(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
}

/// Digits only: no sign, no spaces inside, no list.
fn content_length(text: &str) -> Result<u64, Reject> {
    let digits = !text.is_empty() && text.len() <= 19 && text.bytes().all(|b| b.is_ascii_digit());
    match digits {
        true => text.parse().map_err(|_| Reject::BadRequest("invalid Content-Length")),
        false => Err(Reject::BadRequest("invalid Content-Length")),
    }
}

/// HTTP/1.1 stays open unless `Connection: close`; HTTP/1.0 closes unless
/// `Connection: keep-alive`.
fn keep_alive(headers: &[(String, String)], minor: u8) -> bool {
    let tokens = || all(headers, "connection").flat_map(|v| v.split(',')).map(str::trim);
    match minor {
        0 => tokens().any(|t| t.eq_ignore_ascii_case("keep-alive")),
        _ => !tokens().any(|t| t.eq_ignore_ascii_case("close")),
    }
}

/// An incremental decoder of a chunked body; feed it the bytes after the
/// head as they arrive.
#[derive(Debug, Default)]
pub struct Chunked {
    /// How far into the body bytes the decoder has read.
    pub consumed: usize,
    pub body: Vec<u8>,
    state: ChunkState,
}

#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
enum ChunkState {
    #[default]
    Size,
    Data(u64),
    DataEnd,
    Trailers,
    Done,
}

impl Chunked {
    /// Reads what it can of `bytes` (all body bytes so far, from the
    /// start); true once the last chunk and the trailers are in.
    pub fn feed(&mut self, bytes: &[u8], max_body: u64, max_trailers: usize) -> Result<bool, Reject> {
        loop {
            let rest = &bytes[self.consumed..];
            let progressed = match self.state {
                ChunkState::Size => self.size(rest, max_body)?,
                ChunkState::Data(left) => self.data(rest, left),
                ChunkState::DataEnd => self.data_end(rest)?,
                ChunkState::Trailers => self.trailers(rest, max_trailers)?,
                ChunkState::Done => return Ok(true),
            };
            if !progressed {
                return Ok(false);
            }
        }
    }

    fn size(&mut self, rest: &[u8], max_body: u64) -> Result<bool, Reject> {
        match httparse::parse_chunk_size(rest) {
            Ok(httparse::Status::Complete((used, size))) => {
                if self.body.len() as u64 + size > max_body {
                    return Err(Reject::BodyTooLarge);
                }
                self.consumed += used;
                self.state = if size == 0 { ChunkState::Trailers } else { ChunkState::Data(size) };
                Ok(true)
            }
            Ok(httparse::Status::Partial) if rest.len() > 1024 => {
                Err(Reject::BadRequest("invalid chunk size"))
            }
            Ok(httparse::Status::Partial) => Ok(false),
            Err(_) => Err(Reject::BadRequest("invalid chunk size")),
        }
    }

    fn data(&mut self, rest: &[u8], left: u64) -> bool {
        let take = rest.len().min(usize::try_from(left).unwrap_or(usize::MAX));
        if take == 0 {
            return false;
        }
        self.body.extend_from_slice(&rest[..take]);
        self.consumed += take;
        let left = left - take as u64;
        self.state = if left == 0 { ChunkState::DataEnd } else { ChunkState::Data(left) };
        true
    }

    fn data_end(&mut self, rest: &[u8]) -> Result<bool, Reject> {
        match rest {
            [b'\r', b'\n', ..] => self.consumed += 2,
            [b'\n', ..] => self.consumed += 1,
            [] | [b'\r'] => return Ok(false),
            _ => return Err(Reject::BadRequest("a chunk is longer than its size")),
        }
        self.state = ChunkState::Size;
        Ok(true)
    }

    /// Trailer lines are read and dropped, up to an empty line.
    fn trailers(&mut self, rest: &[u8], max_trailers: usize) -> Result<bool, Reject> {
        let Some(end) = rest.iter().position(|b| *b == b'\n') else {
            return match rest.len() > max_trailers {
                true => Err(Reject::HeaderTooLarge),
                false => Ok(false),
            };
        };
        let line = &rest[..end];
        self.consumed += end + 1;
        if line.is_empty() || line == b"\r" {
            self.state = ChunkState::Done;
        }
        Ok(true)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAX: usize = 64 << 10;

    #[track_caller]
    fn head(text: &str) -> Head {
        parse_head(text.as_bytes(), MAX).unwrap().unwrap()
    }

    #[track_caller]
    fn refused(text: &str) -> Reject {
        parse_head(text.as_bytes(), MAX).unwrap_err()
    }

    #[test]
    fn a_simple_request_parses() {
        let h = head("get /api/functions/x?a=1 HTTP/1.1\r\nHost: a\r\nX-Y: z \r\n\r\nbody");
        assert_eq!((h.method.as_str(), h.target.as_str()), ("GET", "/api/functions/x?a=1"));
        assert_eq!(h.headers, [("Host".to_string(), "a".to_string()), ("X-Y".into(), "z".into())]);
        assert_eq!(
            (h.len, h.framing, h.keep_alive, h.expect_continue),
            (55, Framing::Length(0), true, false)
        );
    }

    #[test]
    fn an_incomplete_head_waits_and_an_oversized_one_is_431() {
        assert_eq!(parse_head(b"GET / HTTP/1.1\r\nHost: a\r\n", MAX), Ok(None));
        let long = format!("GET / HTTP/1.1\r\nX: {}\r\n", "a".repeat(MAX));
        assert_eq!(parse_head(long.as_bytes(), MAX), Err(Reject::HeaderTooLarge));
        let many: String = (0..=MAX_HEADERS).map(|i| format!("X-{i}: v\r\n")).collect();
        assert_eq!(refused(&format!("GET / HTTP/1.1\r\n{many}\r\n")), Reject::HeaderTooLarge);
    }

    #[test]
    fn bare_line_feeds_are_accepted() {
        let h = head("POST /x HTTP/1.1\nContent-Length: 2\n\nhi");
        assert_eq!((h.framing, h.len), (Framing::Length(2), 36));
    }

    #[test]
    fn ambiguous_framing_is_refused() {
        let bad = |headers: &str| refused(&format!("POST / HTTP/1.1\r\n{headers}\r\n"));
        assert!(matches!(bad("Content-Length: 3\r\nContent-Length: 10\r\n"), Reject::BadRequest(_)));
        assert!(matches!(bad("Content-Length: 3\r\nContent-Length: 3\r\n"), Reject::BadRequest(_)));
        for value in ["-1", "+3", "3 ", "0x10", "1,2", "", "99999999999999999999"] {
            let r = parse_head(format!("POST / HTTP/1.1\r\nContent-Length:{value}\r\n\r\n").as_bytes(), MAX);
            if value == "3 " {
                assert_eq!(r.unwrap().unwrap().framing, Framing::Length(3), "trailing space is trimmed");
            } else {
                assert!(matches!(r, Err(Reject::BadRequest(_))), "{value:?}: {r:?}");
            }
        }
        assert!(matches!(bad("Content-Length: 3\r\nTransfer-Encoding: chunked\r\n"), Reject::BadRequest(_)));
        assert!(matches!(bad("Transfer-Encoding: gzip, chunked\r\n"), Reject::BadRequest(_)));
        assert!(matches!(
            bad("Transfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n"),
            Reject::BadRequest(_)
        ));
        assert_eq!(head("POST / HTTP/1.1\r\nTransfer-Encoding: Chunked\r\n\r\n").framing, Framing::Chunked);
    }

    #[test]
    fn versions_other_than_1_x_are_505() {
        assert_eq!(refused("GET / HTTP/2.0\r\n\r\n"), Reject::VersionNotSupported);
        assert_eq!(refused("GET / HTTP/3\r\n\r\n"), Reject::VersionNotSupported);
        assert!(matches!(refused("GET / HTTX/1.1\r\n\r\n"), Reject::BadRequest(_)));
    }

    #[test]
    fn non_utf8_in_the_target_or_a_value_is_400() {
        let mut bytes = b"GET /caf".to_vec();
        bytes.extend_from_slice(&[0xff, 0xfe]);
        bytes.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        assert!(matches!(parse_head(&bytes, MAX), Err(Reject::BadRequest(_))));
        let mut bytes = b"GET / HTTP/1.1\r\nX: a".to_vec();
        bytes.extend_from_slice(&[0xc3, 0x28]);
        bytes.extend_from_slice(b"\r\n\r\n");
        assert!(matches!(parse_head(&bytes, MAX), Err(Reject::BadRequest(_))));
    }

    #[test]
    fn keep_alive_follows_the_version_and_connection_header() {
        assert!(head("GET / HTTP/1.1\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.1\r\nConnection: close\r\n\r\n").keep_alive);
        assert!(!head("GET / HTTP/1.0\r\n\r\n").keep_alive);
        assert!(head("GET / HTTP/1.0\r\nConnection: Keep-Alive\r\n\r\n").keep_alive);
        assert!(head("POST / HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 1\r\n\r\n").expect_continue);
    }

    fn dechunk(bytes: &[u8], max_body: u64) -> Result<(bool, Vec<u8>, usize), Reject> {
        let mut chunked = Chunked::default();
        let done = chunked.feed(bytes, max_body, 1024)?;
        Ok((done, chunked.body, chunked.consumed))
    }

    #[test]
    fn chunked_bodies_decode_with_extensions_and_trailers() {
        let wire = b"4;ext=1\r\nWiki\r\n5\r\npedia\r\n0\r\nX-Trailer: y\r\n\r\nNEXT";
        assert_eq!(dechunk(wire, 100), Ok((true, b"Wikipedia".to_vec(), wire.len() - 4)));
    }

    #[test]
    fn chunked_bodies_arrive_byte_by_byte() {
        let wire = b"3\r\nabc\r\n0\r\n\r\n";
        let mut chunked = Chunked::default();
        for end in 1..wire.len() {
            assert_eq!(chunked.feed(&wire[..end], 100, 1024), Ok(false), "after {end} bytes");
        }
        assert_eq!(chunked.feed(wire, 100, 1024), Ok(true));
        assert_eq!((chunked.body.as_slice(), chunked.consumed), (&b"abc"[..], wire.len()));
    }

    #[test]
    fn bad_or_oversized_chunks_are_refused() {
        assert_eq!(dechunk(b"10\r\n", 15), Err(Reject::BodyTooLarge));
        assert!(matches!(dechunk(b"zz\r\n", 100), Err(Reject::BadRequest(_))));
        assert!(matches!(dechunk(b"2\r\nabc\r\n", 100), Err(Reject::BadRequest(_))));
        assert!(matches!(dechunk(&[b'1'; 2000], 100), Err(Reject::BadRequest(_))));
    }
}
