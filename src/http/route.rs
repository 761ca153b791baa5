//! A user route over HTTP: the request becomes the input a function sees
//! (`{trigger: "route", method, path, route, params, query, headers, body,
//! ...}`), and the function's output becomes the response, either one it
//! describes (`{status, headers, body}`) or its output as JSON. Headers a
//! function may not set are dropped with a warning, never passed through.

use serde_json::{Map, Value, json};

use super::front::wire::valid_header;
use super::invoke::{reject, respond};
use super::reply::Reply;
use super::request::Request;
use super::respond::ApiError;
use crate::crypto::{base64, base64_decode};
use crate::invoke::{Admission, Caller, Invocation, Invoker, Outcome, Trigger};
use crate::triggers::path::Params;

/// The route a request matched.
#[derive(Debug, Clone, PartialEq)]
pub struct Matched {
    pub function: String,
    /// The route's path pattern as written.
    pub route: String,
    pub params: Params,
}

impl Matched {
    /// The trigger of a call through this route.
    pub fn trigger(&self, request: &Request) -> Trigger {
        Trigger::Route { method: request.method.clone(), route: self.route.clone() }
    }
}

/// Invokes the matched route's function and maps its output.
pub fn call(
    invoker: &Invoker,
    request: &Request,
    matched: Matched,
    caller: Caller,
    request_id: &str,
    admission: Option<Admission>,
) -> Reply {
    let rejected = |error| reject(invoker, &matched.function, matched.trigger(request), request_id, 0, error);
    let body = match &request.body {
        Ok(body) => body,
        Err(error) => return rejected(ApiError::from(*error)),
    };
    let input = input(request, &matched, body);
    let invocation = Invocation {
        admission,
        ..Invocation::new(&matched.function, input, matched.trigger(request), request_id.to_string(), caller)
    };
    reply(invoker.run(invocation))
}

/// What the function sees as `input`.
pub fn input(request: &Request, matched: &Matched, body: &[u8]) -> Value {
    let params: Map<String, Value> =
        matched.params.iter().map(|(k, v)| (k.clone(), Value::String(v.clone()))).collect();
    let query = crate::form::query_lists(request.query.as_deref().unwrap_or(""));
    let mut input = json!({
        "trigger": "route",
        "method": request.method,
        "path": request.path,
        "route": matched.route,
        "params": params,
        "query": query,
        "headers": headers(request),
        "remote_addr": request.remote_addr.map(|a| a.to_string()),
    });
    match std::str::from_utf8(body) {
        Ok(text) => {
            input["body"] = json!(text);
            if let Ok(parsed) = serde_json::from_str::<Value>(text) {
                input["json"] = parsed;
            }
        }
        Err(_) => {
            input["body"] = json!(base64(body));
            input["body_encoding"] = json!("base64");
        }
    }
    input
}

/// Header names lower-cased; a repeated header's values joined by `, `.
fn headers(request: &Request) -> Map<String, Value> {
    let mut map: Map<String, Value> = Map::new();
    for (name, value) in &request.headers {
        let name = name.to_ascii_lowercase();
        match map.get_mut(&name) {
            Some(Value::String(all)) => {
                all.push_str(", ");
                all.push_str(value);
            }
            _ => {
                map.insert(name, Value::String(value.clone()));
            }
        }
    }
    map
}

/// The response for a route's outcome: a failed call gets the error
/// envelope and the error table's status.
pub fn reply(outcome: Outcome) -> Reply {
    match &outcome.result {
        Ok(output) => from_output(output, &outcome.request_id),
        Err(_) => respond(outcome),
    }
}

/// An object with an integer `status` describes the response; any other
/// JSON is sent as JSON with 200; other bytes as they are.
fn from_output(output: &[u8], request_id: &str) -> Reply {
    match serde_json::from_slice::<Value>(output) {
        Ok(Value::Object(map)) if status(&map).is_some() => described(map, request_id),
        Ok(value) => Reply::json(200, &value),
        Err(_) => match std::str::from_utf8(output) {
            Ok(text) => Reply::text(200, "text/plain; charset=utf-8", text.to_string()),
            Err(_) => Reply {
                status: 200,
                headers: content_type("application/octet-stream"),
                body: output.to_vec(),
            },
        },
    }
}

fn status(map: &Map<String, Value>) -> Option<u16> {
    map.get("status")?.as_u64().filter(|s| (100..=599).contains(s)).map(|s| s as u16)
}

fn content_type(value: &str) -> Vec<(String, String)> {
    vec![("Content-Type".into(), value.into())]
}

/// `{status, headers, body, body_encoding}` as a response.
fn described(map: Map<String, Value>, request_id: &str) -> Reply {
    let status = status(&map).unwrap_or(200);
    let base64 = map.get("body_encoding").and_then(Value::as_str) == Some("base64");
    let (default_type, body) = match map.get("body") {
        None | Some(Value::Null) => (None, Vec::new()),
        Some(Value::String(text)) if base64 => match base64_decode(text) {
            Some(bytes) => (Some("application/octet-stream"), bytes),
            None => {
                log::warn!("a route's function answered body_encoding base64 with a body that is not base64");
                return ApiError::BadFunctionResponse { reason: "body_encoding is base64, the body is not" }
                    .reply(request_id);
            }
        },
        Some(Value::String(text)) => (Some("text/plain; charset=utf-8"), text.clone().into_bytes()),
        Some(other) => (Some("application/json"), serde_json::to_vec(other).unwrap_or_default()),
    };
    let mut headers = allowed_headers(map.get("headers"));
    if let Some(default_type) = default_type
        && !headers.iter().any(|(n, _)| n.eq_ignore_ascii_case("content-type"))
    {
        headers.push(("Content-Type".into(), default_type.into()));
    }
    Reply { status, headers, body }
}

/// Headers a function may not set: hop-by-hop ones and the framing the
/// front does itself.
const FORBIDDEN: &[&str] = &[
    "connection",
    "content-length",
    "keep-alive",
    "proxy-authenticate",
    "proxy-authorization",
    "proxy-connection",
    "te",
    "trailer",
    "transfer-encoding",
    "upgrade",
];

/// The function's headers that may pass; the rest are logged and dropped.
fn allowed_headers(headers: Option<&Value>) -> Vec<(String, String)> {
    let Some(Value::Object(headers)) = headers else { return Vec::new() };
    let mut allowed = Vec::new();
    for (name, value) in headers {
        let value = match value {
            Value::String(text) => text.clone(),
            Value::Number(n) => n.to_string(),
            _ => String::new(),
        };
        if may_set(name, &value) {
            allowed.push((name.clone(), value));
        } else {
            log::warn!(
                "a route's function set header {:?}, which is not allowed; dropped",
                crate::quote::clip(name)
            );
        }
    }
    allowed
}

fn may_set(name: &str, value: &str) -> bool {
    !FORBIDDEN.iter().any(|f| name.eq_ignore_ascii_case(f)) && !value.is_empty() && valid_header(name, value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body_of(reply: &Reply) -> String {
        String::from_utf8(reply.body.clone()).unwrap()
    }

    #[test]
    fn a_described_response_sets_status_headers_and_body() {
        let out = br#"{"status": 201, "headers": {"X-Id": "7", "Location": "/x/7"}, "body": "made"}"#;
        let reply = from_output(out, "r");
        assert_eq!((reply.status, body_of(&reply).as_str()), (201, "made"));
        assert_eq!((reply.header("X-Id"), reply.header("Location")), (Some("7"), Some("/x/7")));
        assert_eq!(reply.header("Content-Type"), Some("text/plain; charset=utf-8"));
        let json =
            from_output(br#"{"status": 200, "body": {"a": [1]}, "headers": {"content-type": "x/y"}}"#, "r");
        assert_eq!((body_of(&json).as_str(), json.header("Content-Type")), (r#"{"a":[1]}"#, Some("x/y")));
    }

    #[test]
    fn binary_bodies_come_from_base64() {
        let reply = from_output(br#"{"status": 200, "body": "AP8=", "body_encoding": "base64"}"#, "r");
        assert_eq!(
            (reply.body.as_slice(), reply.header("Content-Type")),
            (&[0u8, 255][..], Some("application/octet-stream"))
        );
        assert_eq!(
            from_output(br#"{"status": 200, "body": "!!", "body_encoding": "base64"}"#, "r").status,
            502
        );
    }

    #[test]
    fn forbidden_and_broken_headers_are_dropped() {
        let out = br#"{"status": 200, "headers": {"Content-Length": "1", "Connection": "close",
            "Transfer-Encoding": "chunked", "X-Split": "a\r\nSet-Cookie: x", "Bad Name": "v", "X-Ok": "fine"}}"#;
        let reply = from_output(out, "r");
        let names: Vec<&str> = reply.headers.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["X-Ok"]);
    }

    #[test]
    fn other_outputs_are_json_text_or_bytes_with_200() {
        let json = from_output(br#"{"status": "ok", "n": 1}"#, "r");
        assert_eq!((json.status, json.header("Content-Type")), (200, Some("application/json")));
        assert_eq!(from_output(br#"{"status": 1000}"#, "r").status, 200, "not an HTTP status: plain JSON");
        assert_eq!(from_output(b"hello", "r").header("Content-Type"), Some("text/plain; charset=utf-8"));
        assert_eq!(from_output(&[0xff, 0], "r").header("Content-Type"), Some("application/octet-stream"));
    }

    #[test]
    fn the_input_has_params_query_lists_lower_case_headers_and_the_body() {
        let mut request = Request::new("POST", "/hello/ada?tag=a&tag=b&x=1")
            .with_header("X-Multi", "1")
            .with_header("x-multi", "2")
            .with_body(r#"{"k": true}"#);
        request.remote_addr = "127.0.0.1:5000".parse().ok();
        let matched = Matched {
            function: "f".into(),
            route: "/hello/{name}".into(),
            params: vec![("name".into(), "ada".into())],
        };
        let input = input(&request, &matched, br#"{"k": true}"#);
        assert_eq!(input["params"], json!({"name": "ada"}));
        assert_eq!(input["query"], json!({"tag": ["a", "b"], "x": "1"}));
        assert_eq!(input["headers"], json!({"x-multi": "1, 2"}));
        assert_eq!(
            (input["body"].clone(), input["json"].clone()),
            (json!(r#"{"k": true}"#), json!({"k": true}))
        );
        assert_eq!(
            (input["route"].clone(), input["remote_addr"].clone()),
            (json!("/hello/{name}"), json!("127.0.0.1:5000"))
        );
        let binary = super::input(&request, &matched, &[0xff, 0x00]);
        assert_eq!(
            (binary["body"].clone(), binary["body_encoding"].clone()),
            (json!("/wA="), json!("base64"))
        );
        assert_eq!(binary.get("json"), None);
    }
}
