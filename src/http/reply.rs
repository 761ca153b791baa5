//! What a handler answers: status, headers and body, independent of the
//! HTTP library, plus the JSON error body every failure uses.

use serde_json::{Value, json};

#[derive(Debug, Clone, PartialEq)]
pub struct Reply {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl Reply {
    pub fn json(status: u16, value: &Value) -> Reply {
        let body = serde_json::to_vec(value).unwrap_or_default();
        Reply { status, headers: vec![("Content-Type".into(), "application/json".into())], body }
    }

    pub fn text(status: u16, content_type: &str, body: String) -> Reply {
        Reply { status, headers: vec![("Content-Type".into(), content_type.into())], body: body.into_bytes() }
    }

    /// `{"success": false, "error": {"code", "message"}, "request_id"}`.
    pub fn error(status: u16, code: &str, message: &str, request_id: &str) -> Reply {
        let body = json!({
            "success": false,
            "error": {"code": code, "message": message},
            "request_id": request_id,
        });
        Reply::json(status, &body)
    }

    pub fn with_header(mut self, name: &str, value: &str) -> Reply {
        self.headers.push((name.to_string(), value.to_string()));
        self
    }
}
