//! Invocation over HTTP, a thin adapter over [`crate::invoke`]: the body
//! or query becomes the input, and the outcome becomes the reference
//! design's response envelope with a status from the error table.

use serde_json::{Map, Value, json};

use super::reply::Reply;
use super::request::Request;
use super::respond::{ApiError, with_status};
use crate::crypto::base64;
use crate::invoke::{Admission, Caller, Failure, Invocation, Invoker, Outcome, Refused, Trigger};
use crate::runtime::LogLine;
use crate::units::format_rfc3339_millis;

/// The input of an invocation: a JSON body (`{"input": ...}` or a bare
/// value; empty means null), or the query parameters of a GET.
pub fn parse_input(method: &str, query: &str, body: &[u8]) -> Result<Value, String> {
    if method == "GET" {
        return Ok(Value::Object(crate::form::query_object(query)));
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

/// Invokes over HTTP: the body (or query) becomes the input of one
/// [`Invocation`], and its [`Outcome`] becomes the response envelope. A
/// body that cannot be the input is answered here and recorded as a
/// rejected call.
pub fn invoke(
    invoker: &Invoker,
    request: &Request,
    name: &str,
    caller: Caller,
    request_id: &str,
    admission: Option<Admission>,
) -> Reply {
    let rejected = |error, input_bytes| reject(invoker, name, Trigger::Http, request_id, input_bytes, error);
    let body = match &request.body {
        Ok(body) => body,
        Err(error) => return rejected(ApiError::from(*error), 0),
    };
    let input = match parse_input(&request.method, request.query.as_deref().unwrap_or(""), body) {
        Ok(input) => input,
        Err(message) => return rejected(ApiError::BadJson { message }, body.len()),
    };
    let invocation = Invocation {
        admission,
        ..Invocation::new(name, input, Trigger::Http, request_id.to_string(), caller)
    };
    respond(invoker.run(invocation))
}

/// Answers `error` to a call that its trigger refused before the function
/// ran (`input_bytes` came with it), and records it as rejected.
pub fn reject(
    invoker: &Invoker,
    function: &str,
    trigger: Trigger,
    request_id: &str,
    input_bytes: usize,
    error: ApiError,
) -> Reply {
    invoker.refuse(Refused {
        function: function.to_string(),
        trigger,
        request_id: request_id.to_string(),
        input_bytes: input_bytes as u64,
        why: error.rejection(),
    });
    error.reply(request_id)
}

/// The response envelope for an outcome: `{success, output, error, logs,
/// duration_ms, request_id}`. A refusal before the call (unknown, not
/// loaded, queue full) is the plain error body.
pub fn respond(outcome: Outcome) -> Reply {
    let (reported, mut body) = match outcome.result {
        Ok(output) => from_output(&output),
        Err(Failure::Runtime(error)) => (Some(ApiError::Invocation(Failure::Runtime(error))), Map::new()),
        Err(refused) => return ApiError::Invocation(refused).reply(&outcome.request_id),
    };
    if let Some(error) = &reported
        && !body.contains_key("success")
    {
        body.insert("success".into(), json!(false));
        body.insert("output".into(), Value::Null);
        body.insert("error".into(), error.error_json());
    }
    let logs: Vec<Value> = outcome.logs.iter().map(log_json).collect();
    body.insert("logs".into(), Value::Array(logs));
    body.insert("duration_ms".into(), json!(crate::units::millis(outcome.duration)));
    body.insert("request_id".into(), json!(outcome.request_id));
    let reply = Reply::json(200, &Value::Object(body));
    match reported {
        Some(error) => with_status(&error, reply),
        None => reply,
    }
}

/// A plugin's output: its own envelope if it returned one (a failure there
/// is [`ApiError::Reported`]), else the output; output that is not JSON is
/// a string, in base64 when it is not text (see [`not_json`]).
fn from_output(output: &[u8]) -> (Option<ApiError>, Map<String, Value>) {
    let (value, encoding) = match serde_json::from_slice::<Value>(output) {
        Ok(value) => (value, None),
        Err(_) => not_json(output),
    };
    if let Value::Object(map) = &value
        && let Some(Value::Bool(success)) = map.get("success")
    {
        let mut body = Map::new();
        body.insert("success".into(), json!(success));
        body.insert("output".into(), map.get("output").cloned().unwrap_or_else(|| plugin_fields(map)));
        let error = map.get("error").cloned().unwrap_or(Value::Null);
        let reported = ApiError::Reported { status: chosen_status(&error) };
        body.insert("error".into(), error);
        return ((!success).then_some(reported), body);
    }
    let mut body = Map::new();
    body.insert("success".into(), json!(true));
    body.insert("output".into(), value);
    if let Some(encoding) = encoding {
        body.insert("output_encoding".into(), json!(encoding));
    }
    body.insert("error".into(), Value::Null);
    (None, body)
}

/// The status a failing function chose: `error.status`, a client error
/// (400 to 499). Anything else is ignored and the failure answers 500: a
/// function says what was wrong with the request, never that the server
/// or a gateway failed (those statuses belong to the error table).
fn chosen_status(error: &Value) -> Option<u16> {
    let status = error.get("status")?.as_u64()?;
    (400..=499).contains(&status).then_some(status as u16)
}

/// Output that is not JSON, as a string: UTF-8 text as it is (tabs, line
/// ends and other control characters escaped), unless the escapes would
/// more than double its length (mostly NUL or other control bytes, six
/// bytes each in JSON); then, as for bytes that are not UTF-8, base64, named
/// by `output_encoding`. So output that is not JSON never takes more than
/// twice its size in the response.
fn not_json(output: &[u8]) -> (Value, Option<&'static str>) {
    match std::str::from_utf8(output) {
        Ok(text) if escaped_len(text) <= 2 * text.len() => (json!(text), None),
        _ => (json!(base64(output)), Some("base64")),
    }
}

/// The length of `text` inside a JSON string, as serde_json escapes it.
fn escaped_len(text: &str) -> usize {
    let escaped = |b: &u8| match b {
        b'"' | b'\\' | b'\n' | b'\r' | b'\t' | 0x08 | 0x0c => 2,
        0x00..=0x1f => 6,
        _ => 1,
    };
    text.as_bytes().iter().map(escaped).sum()
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

fn log_json(line: &LogLine) -> Value {
    json!({
        "level": line.level.name(),
        "message": line.message,
        "timestamp": format_rfc3339_millis(line.timestamp),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Error, TimeLimit};
    use std::time::Duration;

    fn outcome(result: Result<Vec<u8>, Failure>) -> Outcome {
        Outcome {
            request_id: "r1".into(),
            result,
            logs: Vec::new(),
            duration: Duration::from_micros(1500),
            plugin: None,
        }
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
        let reply = respond(outcome(Ok(br#"{"greeting":"hi"}"#.to_vec())));
        assert_eq!(reply.status, 200);
        let b = body(&reply);
        assert_eq!((b["success"].clone(), b["output"]["greeting"].clone()), (json!(true), json!("hi")));
        assert_eq!((b["request_id"].clone(), b["duration_ms"].clone()), (json!("r1"), json!(1.5)));
        assert_eq!(body(&respond(outcome(Ok(b"plain text".to_vec()))))["output"], "plain text");
    }

    #[test]
    fn text_that_is_not_json_is_a_string_control_characters_and_all() {
        let b = body(&respond(outcome(Ok("tab\there\r\nnul \0 bell \x07 é".as_bytes().to_vec()))));
        assert_eq!(b["output"], "tab\there\r\nnul \0 bell \x07 é");
        assert_eq!(b.get("output_encoding"), None);
    }

    #[test]
    fn bytes_that_are_not_utf8_are_base64_and_say_so() {
        let b = body(&respond(outcome(Ok(b"\xff\xfe ok".to_vec()))));
        assert_eq!((b["output"].clone(), b["output_encoding"].clone()), (json!("//4gb2s="), json!("base64")));
        assert_eq!(b["success"], true);
    }

    #[test]
    fn text_that_escaping_would_blow_up_is_base64_too() {
        let b = body(&respond(outcome(Ok(vec![0; 6]))));
        assert_eq!((b["output"].clone(), b["output_encoding"].clone()), (json!("AAAAAAAA"), json!("base64")));
    }

    #[test]
    fn output_that_is_not_json_at_most_doubles() {
        let envelope = respond(outcome(Ok(Vec::new()))).body.len();
        let outputs = [[0u8; 4], [0xff; 4], *b"\t\n\r\"", *b"\x01ab\x1f", *b"\x01abc"];
        for output in outputs.map(|pattern| pattern.repeat(1 << 18)) {
            let size = respond(outcome(Ok(output.clone()))).body.len();
            assert!(size <= 2 * output.len() + envelope + 64, "{size} bytes for {:?}…", &output[..4]);
        }
    }

    #[test]
    fn the_escaped_length_is_what_serde_json_writes() {
        let text = "a\"\\\n\r\t\x08\x0c\0\x1f\x7f é€";
        assert_eq!(escaped_len(text), serde_json::to_string(text).unwrap().len() - 2);
    }

    #[test]
    fn plugin_envelopes_are_used_as_they_are() {
        let ok = body(&respond(outcome(Ok(br#"{"success":true,"message":"Hello"}"#.to_vec()))));
        assert_eq!(ok["output"], json!({"message": "Hello"}));
        let failed =
            respond(outcome(Ok(br#"{"success":false,"error":{"code":"BAD","message":"no"}}"#.to_vec())));
        assert_eq!(failed.status, 500);
        assert_eq!(body(&failed)["error"]["code"], "BAD");
    }

    #[test]
    fn a_failing_function_may_choose_a_4xx_status_and_nothing_else() {
        let status = |error: &str| {
            let output = format!(r#"{{"success":false,"error":{error}}}"#);
            let reply = respond(outcome(Ok(output.into_bytes())));
            assert_eq!(body(&reply)["error"], serde_json::from_str::<Value>(error).unwrap());
            reply.status
        };
        assert_eq!(status(r#"{"code":"BAD_NAME","message":"no","status":422}"#), 422);
        assert_eq!(status(r#"{"code":"GONE","status":410}"#), 410);
        assert_eq!(status(r#"{"code":"X","status":200}"#), 500, "not a failure status");
        assert_eq!(status(r#"{"code":"X","status":503}"#), 500, "5xx belong to the server");
        assert_eq!(status(r#"{"code":"X","status":"404"}"#), 500, "a number, not a string");
        assert_eq!(status(r#"{"code":"X"}"#), 500);
        assert_eq!(status(r#""just text""#), 500);
    }

    #[test]
    fn runtime_failures_keep_the_envelope_and_take_the_tables_status() {
        let timeout = Error::Timeout { limit: TimeLimit::WallClock(Duration::from_secs(1)) };
        let reply = respond(outcome(Err(Failure::Runtime(timeout))));
        assert_eq!(reply.status, 504);
        let b = body(&reply);
        assert_eq!((b["success"].clone(), b["output"].clone()), (json!(false), Value::Null));
        assert_eq!(
            (b["error"]["code"].clone(), b["error"]["details"]["kind"].clone()),
            (json!("TIMEOUT"), json!("timeout"))
        );
        assert_eq!((b["logs"].clone(), b["request_id"].clone()), (json!([]), json!("r1")));
    }

    #[test]
    fn refusals_before_the_call_are_plain_errors() {
        let reply = respond(outcome(Err(Failure::QueueFull { function: "f".into() })));
        assert_eq!((reply.status, reply.header("Retry-After")), (503, Some("1")));
        let b = body(&reply);
        assert_eq!((b["error"]["code"].clone(), b.get("logs")), (json!("QUEUE_FULL"), None));
    }
}
