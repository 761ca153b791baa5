//! The one table from every error the API can answer to its HTTP status,
//! wire code and headers (`Retry-After` is set here and nowhere else), and
//! the JSON error body every failure uses. An invocation's failure brings
//! its own code ([`Failure::code`], below HTTP so the history uses it too).

use serde_json::{Value, json};

use super::reply::Reply;
use super::request::BodyError;
use crate::invoke::{Failure, Refusal};
use crate::quote::quote;
use crate::runtime;
use crate::triggers::events::EventError;
#[cfg(test)]
use crate::triggers::events::delivery::QueueFull;

/// Every failure an API request can end in.
#[derive(Debug, Clone, PartialEq)]
pub enum ApiError {
    /// No route for this path.
    NoRoute { method: String, path: String },
    /// The path exists, not with this method; the methods it accepts.
    MethodNotAllowed { path: String, allow: String },
    /// An API key is required and missing or wrong.
    Unauthorized,
    /// The admin token is required and missing or wrong.
    AdminRequired,
    /// A webhook request whose signature did not verify.
    InvalidSignature { reason: String },
    /// An admin endpoint, with no admin token configured.
    AdminDisabled,
    /// The body is not JSON.
    BadJson { message: String },
    /// The body is longer than `max_body`.
    BodyTooLarge,
    /// The body could not be read.
    BodyUnreadable,
    /// The request is malformed or its framing ambiguous.
    BadRequest { reason: &'static str },
    /// The head or the body did not arrive in time.
    RequestTimeout,
    /// The request head is larger than `max_header_bytes`.
    HeaderTooLarge,
    /// Not HTTP/1.x.
    VersionNotSupported,
    /// Too many connections, or the server is stopping.
    Overloaded,
    /// A handler failed unexpectedly.
    Internal,
    /// The invocation was refused or failed.
    Invocation(Failure),
    /// No record with this id in the execution history.
    ExecutionNotFound { id: String },
    /// A query parameter is unknown or has a bad value; says which.
    BadQuery { message: String },
    /// The function answered with its own `{"success": false}` envelope;
    /// the 4xx status it chose in `error.status`, if any (see
    /// `http::invoke::chosen_status`).
    Reported { status: Option<u16> },
    /// A route's function described a response that cannot be sent.
    BadFunctionResponse { reason: &'static str },
    /// An event was refused, or failed deliveries not found.
    Event(EventError),
    /// The function has no schedule of that name.
    ScheduleNotFound { function: String, name: String },
    /// A run by hand while the schedule's last run still goes, and the
    /// schedule has `skip_if_running`.
    ScheduleRunning { function: String, name: String },
}

impl From<BodyError> for ApiError {
    fn from(error: BodyError) -> ApiError {
        match error {
            BodyError::TooLarge => ApiError::BodyTooLarge,
            BodyError::Unreadable => ApiError::BodyUnreadable,
        }
    }
}

/// How an [`ApiError`] goes on the wire.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Status {
    pub status: u16,
    pub code: &'static str,
    pub headers: &'static [(&'static str, &'static str)],
}

const NONE: &[(&str, &str)] = &[];
const RETRY_SOON: &[(&str, &str)] = &[("Retry-After", "1")];
const RETRY_LATER: &[(&str, &str)] = &[("Retry-After", "5")];
const BEARER: &[(&str, &str)] = &[("WWW-Authenticate", "Bearer")];

const fn status(status: u16, code: &'static str, headers: &'static [(&'static str, &'static str)]) -> Status {
    Status { status, code, headers }
}

/// The table.
pub fn status_of(error: &ApiError) -> Status {
    match error {
        ApiError::NoRoute { .. } => status(404, "NOT_FOUND", NONE),
        ApiError::MethodNotAllowed { .. } => status(405, "METHOD_NOT_ALLOWED", NONE),
        ApiError::Unauthorized | ApiError::AdminRequired => status(401, "UNAUTHORIZED", BEARER),
        ApiError::AdminDisabled => status(403, "ADMIN_DISABLED", NONE),
        ApiError::InvalidSignature { .. } => status(401, "INVALID_SIGNATURE", NONE),
        ApiError::BadJson { .. } => status(400, "BAD_JSON", NONE),
        ApiError::BodyTooLarge => status(413, "PAYLOAD_TOO_LARGE", NONE),
        ApiError::BodyUnreadable | ApiError::BadRequest { .. } => status(400, "BAD_REQUEST", NONE),
        ApiError::RequestTimeout => status(408, "REQUEST_TIMEOUT", NONE),
        ApiError::HeaderTooLarge => status(431, "HEADERS_TOO_LARGE", NONE),
        ApiError::VersionNotSupported => status(505, "HTTP_VERSION_NOT_SUPPORTED", NONE),
        ApiError::Overloaded => status(503, "SERVER_BUSY", RETRY_SOON),
        ApiError::Internal => status(500, "INTERNAL_ERROR", NONE),
        ApiError::Reported { status: chosen } => {
            Status { status: chosen.unwrap_or(500), ..status(500, crate::invoke::REPORTED, NONE) }
        }
        ApiError::BadFunctionResponse { .. } => status(502, "BAD_FUNCTION_RESPONSE", NONE),
        ApiError::Invocation(failure) => invocation_status(failure),
        ApiError::ExecutionNotFound { .. } => status(404, "EXECUTION_NOT_FOUND", NONE),
        ApiError::BadQuery { .. } => status(400, "BAD_QUERY", NONE),
        ApiError::Event(error) => event_status(error),
        ApiError::ScheduleNotFound { .. } => status(404, "SCHEDULE_NOT_FOUND", NONE),
        ApiError::ScheduleRunning { .. } => status(409, "SCHEDULE_RUNNING", NONE),
    }
}

fn event_status(error: &EventError) -> Status {
    match error {
        EventError::Bad { .. } => status(400, "BAD_EVENT", NONE),
        EventError::TooDeep { .. } => status(422, "EVENT_DEPTH_EXCEEDED", NONE),
        EventError::Rejected { .. } => status(422, "EVENT_REJECTED", NONE),
        EventError::HookFailed { .. } => status(502, "EVENT_HOOK_FAILED", NONE),
        EventError::QueueFull(_) => status(503, "EVENT_QUEUE_FULL", RETRY_SOON),
        EventError::Journal { .. } => status(500, "EVENT_JOURNAL_ERROR", NONE),
        EventError::NoFailed { .. } => status(404, "EVENT_NOT_FOUND", NONE),
    }
}

/// The code is the failure's own ([`Failure::code`]); the status and
/// headers are decided here.
fn invocation_status(failure: &Failure) -> Status {
    use runtime::Error as E;
    let (code, headers) = match failure {
        Failure::NotFound { .. } => (404, NONE),
        Failure::NotLoaded { .. } => (503, RETRY_LATER),
        Failure::QueueFull { .. } => (503, RETRY_SOON),
        Failure::Runtime(error) => match error {
            E::Timeout { .. } => (504, NONE),
            E::Busy { .. } => (503, RETRY_SOON),
            E::MemoryLimit { .. }
            | E::Plugin { .. }
            | E::HostFunction { .. }
            | E::Load { .. }
            | E::MissingExport { .. }
            | E::BadSignature { .. }
            | E::StackOverflow { .. }
            | E::Trap { .. }
            | E::NonZeroReturn { .. }
            | E::Exit { .. } => (500, NONE),
        },
    };
    status(code, failure.code(), headers)
}

impl ApiError {
    /// The human-readable message.
    pub fn message(&self) -> String {
        match self {
            ApiError::NoRoute { method, path } => format!("no route for {method} {path}"),
            ApiError::MethodNotAllowed { path, allow } => format!("{path} accepts {allow}"),
            ApiError::Unauthorized => "an API key is required (Authorization: Bearer KEY)".into(),
            ApiError::AdminRequired => "the admin token is required (Authorization: Bearer TOKEN)".into(),
            ApiError::AdminDisabled => "admin endpoints are disabled: set admin_token".into(),
            ApiError::InvalidSignature { reason } => format!("webhook signature refused: {reason}"),
            ApiError::BadJson { message } => message.clone(),
            ApiError::BodyTooLarge => "the request body is larger than max_body".into(),
            ApiError::BodyUnreadable => "the request body could not be read".into(),
            ApiError::BadRequest { reason } => format!("bad request: {reason}"),
            ApiError::RequestTimeout => "the request did not arrive in time".into(),
            ApiError::HeaderTooLarge => "the request head is larger than max_header_bytes".into(),
            ApiError::VersionNotSupported => "only HTTP/1.0 and HTTP/1.1 are supported".into(),
            ApiError::Overloaded => "the server is at its connection limit or stopping".into(),
            ApiError::Internal => "the request failed unexpectedly".into(),
            ApiError::Reported { .. } => "the function reported a failure".into(),
            ApiError::BadFunctionResponse { reason } => {
                format!("the function's response cannot be sent: {reason}")
            }
            ApiError::Invocation(failure) => failure.to_string(),
            ApiError::ExecutionNotFound { id } => {
                format!("no execution {} in the history (it keeps the last `history` records)", quote(id))
            }
            ApiError::BadQuery { message } => message.clone(),
            ApiError::Event(error) => error.to_string(),
            ApiError::ScheduleNotFound { function, name } => {
                format!(
                    "function {} has no schedule named {} (see GET /api/schedules)",
                    quote(function),
                    quote(name)
                )
            }
            ApiError::ScheduleRunning { function, name } => format!(
                "schedule {} of function {} is still running and has skip_if_running; try again when it ends",
                quote(name),
                quote(function)
            ),
        }
    }

    /// This error as the reason a trigger turned a call away, for the
    /// history ([`crate::invoke::Invoker::refuse`]): `rejected`, with the
    /// table's code and the message.
    pub fn rejection(&self) -> Refusal {
        Refusal::Rejected { code: status_of(self).code, message: self.message() }
    }

    /// The `error` object of a response body.
    pub fn error_json(&self) -> Value {
        let mut error = json!({"code": status_of(self).code, "message": self.message()});
        if let Some(details) = self.details() {
            error["details"] = details;
        }
        error
    }

    /// The `error.details` of the errors that have more to say.
    fn details(&self) -> Option<Value> {
        match self {
            ApiError::Invocation(Failure::Runtime(e)) => Some(json!({"kind": e.kind()})),
            ApiError::Event(e) => super::events::details(e),
            _ => None,
        }
    }

    /// `{"success": false, "error": {...}, "request_id"}` with the table's
    /// status and headers.
    pub fn reply(&self, request_id: &str) -> Reply {
        let body = json!({"success": false, "error": self.error_json(), "request_id": request_id});
        with_status(self, Reply::json(0, &body))
    }

    /// The request method as `Allow` lists it, for 405.
    fn allow(&self) -> Option<&str> {
        match self {
            ApiError::MethodNotAllowed { allow, .. } => Some(allow),
            _ => None,
        }
    }
}

/// Sets the status and headers of `error` on `reply`.
pub fn with_status(error: &ApiError, mut reply: Reply) -> Reply {
    let Status { status, headers, .. } = status_of(error);
    reply.status = status;
    for (name, value) in headers {
        reply = reply.with_header(name, value);
    }
    match error.allow() {
        Some(allow) => reply.with_header("Allow", allow),
        None => reply,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::runtime::{Error, MemoryLimit, TimeLimit};
    use std::time::Duration;

    /// One of every variant. The `match` is exhaustive, so a new variant
    /// does not compile until it is added here, and so to the test below.
    fn every_error() -> Vec<ApiError> {
        let runtime = [
            Error::Load { message: "m".into() },
            Error::MissingExport { name: "x".into() },
            Error::BadSignature { name: "x".into(), signature: "s".into() },
            Error::Timeout { limit: TimeLimit::WallClock(Duration::from_secs(1)) },
            Error::MemoryLimit { which: MemoryLimit::LinearMemory, limit_bytes: 1 },
            Error::StackOverflow { export: "x".into() },
            Error::Trap { message: "m".into(), export: "x".into(), function: None },
            Error::Plugin { message: "m".into(), rc: 1 },
            Error::HostFunction { function: "f".into(), message: "m".into() },
            Error::NonZeroReturn { rc: 2 },
            Error::Exit { code: 3, message: None },
            Error::Busy { waited: Duration::from_secs(1) },
        ];
        for e in &runtime {
            match e {
                Error::Load { .. }
                | Error::MissingExport { .. }
                | Error::BadSignature { .. }
                | Error::Timeout { .. }
                | Error::MemoryLimit { .. }
                | Error::StackOverflow { .. }
                | Error::Trap { .. }
                | Error::Plugin { .. }
                | Error::HostFunction { .. }
                | Error::NonZeroReturn { .. }
                | Error::Exit { .. }
                | Error::Busy { .. } => {}
            }
        }
        let function = || "f".to_string();
        let mut all = vec![
            ApiError::NoRoute { method: "GET".into(), path: "/x".into() },
            ApiError::MethodNotAllowed { path: "/metrics".into(), allow: "GET".into() },
            ApiError::Unauthorized,
            ApiError::AdminRequired,
            ApiError::AdminDisabled,
            ApiError::InvalidSignature { reason: "r".into() },
            ApiError::BadJson { message: "m".into() },
            ApiError::BodyTooLarge,
            ApiError::BodyUnreadable,
            ApiError::BadRequest { reason: "r" },
            ApiError::RequestTimeout,
            ApiError::HeaderTooLarge,
            ApiError::VersionNotSupported,
            ApiError::Overloaded,
            ApiError::Internal,
            ApiError::Reported { status: None },
            ApiError::Reported { status: Some(422) },
            ApiError::BadFunctionResponse { reason: "r" },
            ApiError::Invocation(Failure::NotFound { function: function() }),
            ApiError::Invocation(Failure::NotLoaded { function: function() }),
            ApiError::Invocation(Failure::QueueFull { function: function() }),
            ApiError::ExecutionNotFound { id: "x".into() },
            ApiError::BadQuery { message: "m".into() },
            ApiError::Event(EventError::Bad { message: "m".into() }),
            ApiError::Event(EventError::TooDeep { depth: 9, limit: 8 }),
            ApiError::Event(EventError::Rejected { function: function(), reason: "r".into(), lines: vec![] }),
            ApiError::Event(EventError::HookFailed {
                function: function(),
                error: crate::history::ErrorInfo::new("TIMEOUT", "m"),
                lines: vec![],
            }),
            ApiError::Event(EventError::QueueFull(QueueFull::Deliveries(1))),
            ApiError::Event(EventError::QueueFull(QueueFull::Bytes(1))),
            ApiError::Event(EventError::Journal { message: "m".into() }),
            ApiError::Event(EventError::NoFailed { id: "e".into() }),
            ApiError::ScheduleNotFound { function: function(), name: "n".into() },
            ApiError::ScheduleRunning { function: function(), name: "n".into() },
        ];
        for e in &all {
            match e {
                ApiError::NoRoute { .. }
                | ApiError::MethodNotAllowed { .. }
                | ApiError::Unauthorized
                | ApiError::AdminRequired
                | ApiError::AdminDisabled
                | ApiError::InvalidSignature { .. }
                | ApiError::BadJson { .. }
                | ApiError::BodyTooLarge
                | ApiError::BodyUnreadable
                | ApiError::BadRequest { .. }
                | ApiError::RequestTimeout
                | ApiError::HeaderTooLarge
                | ApiError::VersionNotSupported
                | ApiError::Overloaded
                | ApiError::Internal
                | ApiError::Reported { .. }
                | ApiError::BadFunctionResponse { .. }
                | ApiError::Invocation(Failure::NotFound { .. } | Failure::NotLoaded { .. })
                | ApiError::Invocation(Failure::QueueFull { .. } | Failure::Runtime(_))
                | ApiError::ExecutionNotFound { .. }
                | ApiError::BadQuery { .. }
                | ApiError::ScheduleNotFound { .. }
                | ApiError::ScheduleRunning { .. } => {}
                ApiError::Event(event) => match event {
                    EventError::Bad { .. }
                    | EventError::TooDeep { .. }
                    | EventError::Rejected { .. }
                    | EventError::HookFailed { .. }
                    | EventError::QueueFull(QueueFull::Deliveries(_) | QueueFull::Bytes(_))
                    | EventError::Journal { .. }
                    | EventError::NoFailed { .. } => {}
                },
            }
        }
        all.extend(runtime.into_iter().map(|e| ApiError::Invocation(Failure::Runtime(e))));
        all
    }

    /// Status, code and headers (other than `Content-Type`) on the wire.
    type Wire = (u16, &'static str, Vec<(String, String)>);

    fn wire(error: &ApiError) -> Wire {
        let reply = error.reply("r");
        let body: Value = serde_json::from_slice(&reply.body).unwrap();
        let code = status_of(error).code;
        assert_eq!(body["error"]["code"], code);
        let headers = reply.headers.into_iter().filter(|(n, _)| n != "Content-Type").collect();
        (reply.status, code, headers)
    }

    fn h(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(n, v)| (n.to_string(), v.to_string())).collect()
    }

    #[test]
    fn every_error_has_its_status_code_and_headers() {
        let expected: Vec<Wire> = vec![
            (404, "NOT_FOUND", h(&[])),
            (405, "METHOD_NOT_ALLOWED", h(&[("Allow", "GET")])),
            (401, "UNAUTHORIZED", h(&[("WWW-Authenticate", "Bearer")])),
            (401, "UNAUTHORIZED", h(&[("WWW-Authenticate", "Bearer")])),
            (403, "ADMIN_DISABLED", h(&[])),
            (401, "INVALID_SIGNATURE", h(&[])),
            (400, "BAD_JSON", h(&[])),
            (413, "PAYLOAD_TOO_LARGE", h(&[])),
            (400, "BAD_REQUEST", h(&[])),
            (400, "BAD_REQUEST", h(&[])),
            (408, "REQUEST_TIMEOUT", h(&[])),
            (431, "HEADERS_TOO_LARGE", h(&[])),
            (505, "HTTP_VERSION_NOT_SUPPORTED", h(&[])),
            (503, "SERVER_BUSY", h(&[("Retry-After", "1")])),
            (500, "INTERNAL_ERROR", h(&[])),
            (500, "PLUGIN_ERROR", h(&[])),
            (422, "PLUGIN_ERROR", h(&[])),
            (502, "BAD_FUNCTION_RESPONSE", h(&[])),
            (404, "FUNCTION_NOT_FOUND", h(&[])),
            (503, "FUNCTION_NOT_LOADED", h(&[("Retry-After", "5")])),
            (503, "QUEUE_FULL", h(&[("Retry-After", "1")])),
            (404, "EXECUTION_NOT_FOUND", h(&[])),
            (400, "BAD_QUERY", h(&[])),
            (400, "BAD_EVENT", h(&[])),
            (422, "EVENT_DEPTH_EXCEEDED", h(&[])),
            (422, "EVENT_REJECTED", h(&[])),
            (502, "EVENT_HOOK_FAILED", h(&[])),
            (503, "EVENT_QUEUE_FULL", h(&[("Retry-After", "1")])),
            (503, "EVENT_QUEUE_FULL", h(&[("Retry-After", "1")])),
            (500, "EVENT_JOURNAL_ERROR", h(&[])),
            (404, "EVENT_NOT_FOUND", h(&[])),
            (404, "SCHEDULE_NOT_FOUND", h(&[])),
            (409, "SCHEDULE_RUNNING", h(&[])),
            (500, "EXECUTION_ERROR", h(&[])),
            (500, "EXECUTION_ERROR", h(&[])),
            (500, "EXECUTION_ERROR", h(&[])),
            (504, "TIMEOUT", h(&[])),
            (500, "MEMORY_LIMIT", h(&[])),
            (500, "EXECUTION_ERROR", h(&[])),
            (500, "EXECUTION_ERROR", h(&[])),
            (500, "PLUGIN_ERROR", h(&[])),
            (500, "PLUGIN_ERROR", h(&[])),
            (500, "EXECUTION_ERROR", h(&[])),
            (500, "EXECUTION_ERROR", h(&[])),
            (503, "BUSY", h(&[("Retry-After", "1")])),
        ];
        let actual: Vec<_> = every_error().iter().map(wire).collect();
        assert_eq!(actual, expected);
    }

    #[test]
    fn every_503_says_when_to_retry() {
        for error in every_error() {
            let reply = error.reply("r");
            assert_eq!(reply.status == 503, reply.header("Retry-After").is_some(), "{error:?}");
        }
    }

    #[test]
    fn an_error_as_a_rejection_keeps_its_code_and_message() {
        let error = ApiError::BadJson { message: "not JSON".into() };
        assert_eq!(error.rejection(), Refusal::Rejected { code: "BAD_JSON", message: "not JSON".into() });
    }

    #[test]
    fn runtime_failures_carry_their_kind() {
        let error = ApiError::Invocation(Failure::Runtime(Error::NonZeroReturn { rc: 2 }));
        assert_eq!(error.error_json()["details"], json!({"kind": "non_zero_return"}));
        assert_eq!(ApiError::BodyTooLarge.error_json().get("details"), None);
    }
}
