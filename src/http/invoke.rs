//! Invocation over HTTP: parse the input, wrap it in the reference design's
//! request envelope, call the function's entrypoint on a pooled instance,
//! and turn the outcome into the response envelope with a status code a
//! client can act on.

use std::time::{Instant, SystemTime};

use serde_json::{Map, Value, json};

use super::auth::Caller;
use super::reply::Reply;
use crate::registry::Function;
use crate::runtime::{CallReport, Error, LogLine};
use crate::units::format_rfc3339;

/// What the server passes along with each invocation.
pub struct Context<'a> {
    pub request_id: &'a str,
    pub caller: Caller,
    pub alyx_url: &'a str,
    pub internal_token: String,
    pub queue_depth: usize,
}

/// The input of an invocation: a JSON body (`{"input": ...}` or a bare
/// value; empty means null), or the query parameters of a GET.
pub fn parse_input(method: &str, query: &str, body: &[u8]) -> Result<Value, String> {
    if method == "GET" {
        return Ok(Value::Object(query_params(query)));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Value::Null);
    }
    let value: Value =
        serde_json::from_slice(body).map_err(|e| format!("request body is not valid JSON: {e}"))?;
    match value {
        Value::Object(mut map) if map.len() == 1 && map.contains_key("input") => {
            Ok(map.remove("input").unwrap_or(Value::Null))
        }
        other => Ok(other),
    }
}

fn query_params(query: &str) -> Map<String, Value> {
    query
        .split('&')
        .filter(|p| !p.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
            (percent_decode(k), Value::String(percent_decode(v)))
        })
        .collect()
}

/// Decodes `%XX` escapes and `+` as a space (form encoding); a malformed
/// escape is kept as it is.
fn percent_decode(text: &str) -> String {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        let escaped = match bytes.get(i + 1..i + 3) {
            Some([h, l]) if bytes[i] == b'%' => hex_digit(*h).zip(hex_digit(*l)).map(|(h, l)| h << 4 | l),
            _ => None,
        };
        match (escaped, bytes[i]) {
            (Some(byte), _) => {
                out.push(byte);
                i += 3;
            }
            (None, b'+') => {
                out.push(b' ');
                i += 1;
            }
            (None, byte) => {
                out.push(byte);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn hex_digit(c: u8) -> Option<u8> {
    (c as char).to_digit(16).map(|d| d as u8)
}

/// Runs one invocation of `function` with `input`.
pub fn invoke(function: &Function, input: Value, ctx: &Context) -> Reply {
    let Some(pool) = function.pool() else {
        let message = format!("function {:?} has no loaded plugin", function.name);
        return Reply::error(503, "FUNCTION_NOT_LOADED", &message, ctx.request_id)
            .with_header("Retry-After", "5");
    };
    if pool.waiting() >= ctx.queue_depth && pool.stats().idle == 0 {
        let message = format!("function {:?} is busy and its queue is full", function.name);
        return Reply::error(503, "QUEUE_FULL", &message, ctx.request_id).with_header("Retry-After", "1");
    }
    let manifest = function.manifest();
    let envelope = json!({
        "request_id": ctx.request_id,
        "function": function.name,
        "input": input,
        "context": {
            "auth": ctx.caller.to_json(),
            "env": manifest.env,
            "alyx_url": ctx.alyx_url,
            "internal_token": ctx.internal_token,
        },
    });
    let start = Instant::now();
    let report = pool.call(&manifest.entrypoint, envelope.to_string().as_bytes());
    let took = start.elapsed();
    let outcome = report.result.as_ref().map_or_else(Error::kind, |_| "success");
    function.stats.record(outcome, took);
    respond(report, took.as_secs_f64() * 1000.0, ctx.request_id)
}

/// The response envelope for a call's report.
pub fn respond(report: CallReport, duration_ms: f64, request_id: &str) -> Reply {
    let logs: Vec<Value> = report.logs.iter().map(log_json).collect();
    let (status, mut body) = match report.result {
        Ok(output) => from_output(&output),
        Err(error) => from_error(&error),
    };
    body.insert("logs".into(), Value::Array(logs));
    body.insert("duration_ms".into(), json!((duration_ms * 1000.0).round() / 1000.0));
    body.insert("request_id".into(), json!(request_id));
    let mut reply = Reply::json(status, &Value::Object(body));
    if status == 503 {
        reply = reply.with_header("Retry-After", "1");
    }
    reply
}

/// A plugin's output: its own envelope if it returned one, else the output.
fn from_output(output: &[u8]) -> (u16, Map<String, Value>) {
    let value = serde_json::from_slice::<Value>(output)
        .unwrap_or_else(|_| Value::String(String::from_utf8_lossy(output).into_owned()));
    if let Value::Object(map) = &value
        && let Some(Value::Bool(success)) = map.get("success")
    {
        let mut body = Map::new();
        body.insert("success".into(), json!(success));
        body.insert("output".into(), map.get("output").cloned().unwrap_or_else(|| plugin_fields(map)));
        body.insert("error".into(), map.get("error").cloned().unwrap_or(Value::Null));
        return (if *success { 200 } else { 500 }, body);
    }
    let mut body = Map::new();
    body.insert("success".into(), json!(true));
    body.insert("output".into(), value);
    body.insert("error".into(), Value::Null);
    (200, body)
}

/// The fields of a plugin's envelope other than the envelope's own, as the
/// output (the reference design's examples put their data beside `success`).
fn plugin_fields(map: &Map<String, Value>) -> Value {
    let rest: Map<String, Value> = map
        .iter()
        .filter(|(k, _)| !matches!(k.as_str(), "success" | "error"))
        .map(|(k, v)| (k.clone(), v.clone()))
        .collect();
    if rest.is_empty() { Value::Null } else { Value::Object(rest) }
}

/// The HTTP status and error code of each failure kind, in one place.
pub fn status_of(error: &Error) -> (u16, &'static str) {
    match error {
        Error::Timeout { .. } => (504, "TIMEOUT"),
        Error::MemoryLimit { .. } => (500, "MEMORY_LIMIT"),
        Error::Busy { .. } => (503, "BUSY"),
        Error::Plugin { .. } | Error::HostFunction { .. } => (500, "PLUGIN_ERROR"),
        Error::Load { .. }
        | Error::MissingExport { .. }
        | Error::BadSignature { .. }
        | Error::StackOverflow { .. }
        | Error::Trap { .. }
        | Error::NonZeroReturn { .. }
        | Error::Exit { .. } => (500, "EXECUTION_ERROR"),
    }
}

fn from_error(error: &Error) -> (u16, Map<String, Value>) {
    let (status, code) = status_of(error);
    let mut body = Map::new();
    body.insert("success".into(), json!(false));
    body.insert("output".into(), Value::Null);
    body.insert(
        "error".into(),
        json!({"code": code, "message": error.to_string(), "details": {"kind": error.kind()}}),
    );
    (status, body)
}

fn log_json(line: &LogLine) -> Value {
    json!({
        "level": line.level.name(),
        "message": line.message,
        "timestamp": timestamp(line.timestamp),
    })
}

/// RFC 3339 with milliseconds.
fn timestamp(time: SystemTime) -> String {
    let millis = time.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.subsec_millis());
    let seconds = format_rfc3339(time);
    format!("{}.{millis:03}Z", seconds.trim_end_matches('Z'))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{MemoryLimit, TimeLimit};
    use std::time::Duration;

    fn report(result: Result<Vec<u8>, Error>) -> CallReport {
        CallReport { result, logs: Vec::new(), fuel_used: 0 }
    }

    fn body(reply: &Reply) -> Value {
        serde_json::from_slice(&reply.body).unwrap()
    }

    #[test]
    fn input_forms() {
        assert_eq!(parse_input("POST", "", br#"{"input": {"name": "x"}}"#), Ok(json!({"name": "x"})));
        assert_eq!(parse_input("POST", "", br#"{"name": "x"}"#), Ok(json!({"name": "x"})));
        assert_eq!(parse_input("POST", "", b"[1,2]"), Ok(json!([1, 2])));
        assert_eq!(parse_input("POST", "", b"  "), Ok(Value::Null));
        assert!(parse_input("POST", "", b"{nope").unwrap_err().contains("not valid JSON"));
        assert_eq!(
            parse_input("GET", "name=J%C3%BCrgen&x=a+b&flag", b""),
            Ok(json!({"name": "Jürgen", "x": "a b", "flag": ""}))
        );
        assert_eq!(parse_input("GET", "bad=%zz%4&u=%E2%82%AC", b""), Ok(json!({"bad": "%zz%4", "u": "€"})));
    }

    #[test]
    fn outputs_become_the_envelope() {
        let reply = respond(report(Ok(br#"{"greeting":"hi"}"#.to_vec())), 1.5, "r1");
        assert_eq!(reply.status, 200);
        let b = body(&reply);
        assert_eq!((b["success"].clone(), b["output"]["greeting"].clone()), (json!(true), json!("hi")));
        assert_eq!((b["request_id"].clone(), b["duration_ms"].clone()), (json!("r1"), json!(1.5)));
        let text = body(&respond(report(Ok(b"plain text".to_vec())), 0.0, "r"));
        assert_eq!(text["output"], "plain text");
    }

    #[test]
    fn plugin_envelopes_are_used_as_they_are() {
        let ok = body(&respond(report(Ok(br#"{"success":true,"message":"Hello"}"#.to_vec())), 0.0, "r"));
        assert_eq!(ok["output"], json!({"message": "Hello"}));
        let failed = respond(
            report(Ok(br#"{"success":false,"error":{"code":"BAD","message":"no"}}"#.to_vec())),
            0.0,
            "r",
        );
        assert_eq!(failed.status, 500);
        assert_eq!(body(&failed)["error"]["code"], "BAD");
    }

    #[test]
    fn errors_map_to_actionable_statuses() {
        let cases = [
            (Error::Timeout { limit: TimeLimit::WallClock(Duration::from_secs(1)) }, 504, "TIMEOUT"),
            (Error::MemoryLimit { which: MemoryLimit::LinearMemory, limit_bytes: 1 }, 500, "MEMORY_LIMIT"),
            (Error::Busy { waited: Duration::from_secs(1) }, 503, "BUSY"),
            (Error::Plugin { message: "x".into(), rc: 1 }, 500, "PLUGIN_ERROR"),
            (Error::NonZeroReturn { rc: 2 }, 500, "EXECUTION_ERROR"),
        ];
        for (error, status, code) in cases {
            let reply = respond(report(Err(error)), 0.0, "r");
            assert_eq!(reply.status, status);
            assert_eq!(body(&reply)["error"]["code"], code);
        }
    }
}
