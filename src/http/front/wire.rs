//! A [`Reply`] as bytes on the wire: status line, headers (ours win over
//! a handler's framing headers), `Content-Length` and the body.

use crate::http::reply::Reply;

/// Headers the front sets itself; a handler's copies are dropped.
const FRAMING: &[&str] = &["content-length", "transfer-encoding", "connection"];

/// Encodes `reply`; `head_only` for HEAD (the length of the body that a GET
/// would get, no body); `close` adds `Connection: close`.
pub fn encode(reply: &Reply, head_only: bool, close: bool) -> Vec<u8> {
    let mut out = Vec::with_capacity(128 + reply.body.len());
    out.extend_from_slice(format!("HTTP/1.1 {} {}\r\n", reply.status, reason(reply.status)).as_bytes());
    for (name, value) in &reply.headers {
        if FRAMING.iter().any(|f| name.eq_ignore_ascii_case(f)) || !valid_header(name, value) {
            continue;
        }
        out.extend_from_slice(name.as_bytes());
        out.extend_from_slice(b": ");
        out.extend_from_slice(value.as_bytes());
        out.extend_from_slice(b"\r\n");
    }
    out.extend_from_slice(format!("Content-Length: {}\r\n", reply.body.len()).as_bytes());
    if close {
        out.extend_from_slice(b"Connection: close\r\n");
    }
    out.extend_from_slice(b"\r\n");
    if !head_only {
        out.extend_from_slice(&reply.body);
    }
    out
}

/// No control characters anywhere (no response splitting), a token name.
pub fn valid_header(name: &str, value: &str) -> bool {
    let token = |b: u8| b.is_ascii_alphanumeric() || b"!#$%&'*+-.^_`|~".contains(&b);
    !name.is_empty() && name.bytes().all(token) && value.bytes().all(|b| b == b'\t' || !b.is_ascii_control())
}

/// The standard reason phrase.
pub fn reason(status: u16) -> &'static str {
    match status {
        100 => "Continue",
        200 => "OK",
        201 => "Created",
        202 => "Accepted",
        204 => "No Content",
        301 => "Moved Permanently",
        302 => "Found",
        304 => "Not Modified",
        400 => "Bad Request",
        401 => "Unauthorized",
        403 => "Forbidden",
        404 => "Not Found",
        405 => "Method Not Allowed",
        408 => "Request Timeout",
        409 => "Conflict",
        413 => "Content Too Large",
        422 => "Unprocessable Content",
        429 => "Too Many Requests",
        431 => "Request Header Fields Too Large",
        500 => "Internal Server Error",
        502 => "Bad Gateway",
        503 => "Service Unavailable",
        504 => "Gateway Timeout",
        505 => "HTTP Version Not Supported",
        _ => "",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply() -> Reply {
        Reply::text(200, "text/plain", "hello".into())
            .with_header("Content-Length", "999")
            .with_header("X-Bad", "a\r\nSet-Cookie: x")
            .with_header("X-Good", "yes")
    }

    #[test]
    fn replies_are_framed_by_us_and_never_split() {
        let text = String::from_utf8(encode(&reply(), false, false)).unwrap();
        assert_eq!(
            text,
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nX-Good: yes\r\nContent-Length: 5\r\n\r\nhello"
        );
    }

    #[test]
    fn head_replies_keep_the_length_and_drop_the_body_and_close_is_announced() {
        let text = String::from_utf8(encode(&reply(), true, true)).unwrap();
        assert!(text.ends_with("Content-Length: 5\r\nConnection: close\r\n\r\n"), "{text}");
    }
}
