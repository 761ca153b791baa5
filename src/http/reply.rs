//! What a handler answers: status, headers and body, independent of the
//! HTTP library.

#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    /// `value` written as JSON (straight from a typed value: no `Value`
    /// tree in between unless the handler built one).
    pub fn json(status: u16, value: &impl serde::Serialize) -> Reply {
        let body = serde_json::to_vec(value).unwrap_or_default();
        Reply { status, headers: vec![("Content-Type".into(), "application/json".into())], body }
    }

    pub fn text(status: u16, content_type: &str, body: String) -> Reply {
        Reply { status, headers: vec![("Content-Type".into(), content_type.into())], body: body.into_bytes() }
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }

    /// The first value of header `name` (case-insensitive).
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}
