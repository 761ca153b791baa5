//! Raw HTTP/1.1 over std sockets, as the soak's clients speak it: send
//! bytes, read one response (framed by `Content-Length`, the only framing
//! alyx sends), and say exactly how a connection ended when no whole
//! response came. Bytes after a response stay buffered for the next one,
//! so pipelined answers are read in order.

use std::fmt;
use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::time::{Duration, Instant};

/// One response.
#[derive(Debug)]
pub struct Response {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Response {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    /// The server announced it closes the connection after this response.
    pub fn closes(&self) -> bool {
        self.header("Connection").is_some_and(|v| v.eq_ignore_ascii_case("close"))
    }

    /// The body as JSON (`Null` if it is not).
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body).unwrap_or(serde_json::Value::Null)
    }

    /// The status and the start of the body, for failure reports.
    pub fn summary(&self) -> String {
        let body = String::from_utf8_lossy(&self.body[..self.body.len().min(160)]).into_owned();
        format!("{} {body}", self.status)
    }
}

/// How a wait for a response ended without one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Dropped {
    /// Closed by the server before it sent a byte.
    Closed,
    /// Closed by the server in the middle of a response.
    Cut,
    /// Reset by the server.
    Reset,
    /// Nothing complete arrived in time (the connection may still be open).
    Timeout,
    /// Bytes that are not an HTTP/1.1 response.
    Garbled,
}

impl fmt::Display for Dropped {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let text = match self {
            Dropped::Closed => "closed without an answer",
            Dropped::Cut => "closed in the middle of an answer",
            Dropped::Reset => "reset without an answer",
            Dropped::Timeout => "no answer in time",
            Dropped::Garbled => "an answer that is not HTTP/1.1",
        };
        f.write_str(text)
    }
}

/// A client connection.
pub struct Conn {
    pub stream: TcpStream,
    buf: Vec<u8>,
}

impl Conn {
    pub fn open(addr: SocketAddr) -> std::io::Result<Conn> {
        let stream = TcpStream::connect(addr)?;
        stream.set_nodelay(true)?;
        Ok(Conn { stream, buf: Vec::new() })
    }

    /// Writes all of `bytes`; an error means the server closed or reset.
    pub fn send(&mut self, bytes: &[u8]) -> std::io::Result<()> {
        self.stream.write_all(bytes)
    }

    /// The next response, waiting at most `within`. On `Timeout` what has
    /// arrived stays buffered, so a later call can finish reading it.
    pub fn response(&mut self, within: Duration) -> Result<Response, Dropped> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(response) = self.parse()? {
                return Ok(response);
            }
            match self.fill(deadline) {
                Ok(true) => {}
                Ok(false) if self.buf.is_empty() => return Err(Dropped::Closed),
                Ok(false) => return Err(Dropped::Cut),
                Err(dropped) => return Err(dropped),
            }
        }
    }

    /// Whether the server closes the connection within `within` without
    /// sending anything more (the end every refusal promises).
    pub fn closes_quietly(&mut self, within: Duration) -> bool {
        let deadline = Instant::now() + within;
        loop {
            match self.fill(deadline) {
                Ok(false) | Err(Dropped::Reset) => return self.buf.is_empty(),
                Ok(true) if self.buf.is_empty() => {}
                _ => return false,
            }
        }
    }

    /// Reads once; false at the end of the stream.
    fn fill(&mut self, deadline: Instant) -> Result<bool, Dropped> {
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Err(Dropped::Timeout);
        }
        self.stream.set_read_timeout(Some(left)).map_err(|_| Dropped::Reset)?;
        let mut chunk = [0u8; 16 << 10];
        match self.stream.read(&mut chunk) {
            Ok(0) => Ok(false),
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                Ok(true)
            }
            Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => {
                Err(Dropped::Timeout)
            }
            Err(e) if e.kind() == ErrorKind::Interrupted => Ok(true),
            Err(_) if self.buf.is_empty() => Err(Dropped::Reset),
            Err(_) => Err(Dropped::Cut),
        }
    }

    /// A whole response at the start of the buffer, taken out of it.
    fn parse(&mut self) -> Result<Option<Response>, Dropped> {
        let mut slots = [httparse::EMPTY_HEADER; 32];
        let mut head = httparse::Response::new(&mut slots);
        let len = match head.parse(&self.buf) {
            Ok(httparse::Status::Complete(len)) => len,
            Ok(httparse::Status::Partial) => return Ok(None),
            Err(_) => return Err(Dropped::Garbled),
        };
        let status = head.code.ok_or(Dropped::Garbled)?;
        let headers: Vec<(String, String)> = head
            .headers
            .iter()
            .map(|h| (h.name.to_string(), String::from_utf8_lossy(h.value).into_owned()))
            .collect();
        let length = match headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("content-length")) {
            Some((_, v)) => v.parse::<usize>().map_err(|_| Dropped::Garbled)?,
            None => return Err(Dropped::Garbled),
        };
        if self.buf.len() < len + length {
            return Ok(None);
        }
        let body = self.buf[len..len + length].to_vec();
        self.buf.drain(..len + length);
        Ok(Some(Response { status, headers, body }))
    }
}
