//! The events API: `POST /api/events` (raise one), `GET /api/events/failed`
//! (failed async deliveries), `POST /api/events/{id}/retry` and
//! `DELETE /api/events/{id}` (retry or drop an event's failed deliveries).

use serde_json::{Value, json};

use super::reply::Reply;
use super::request::Request;
use super::respond::ApiError;
use crate::form::decode;
use crate::invoke::Caller;
use crate::triggers::events::chain::Line;
use crate::triggers::events::{EventError, Events};

/// `POST /api/events`: 200 once the sync hooks passed it; 202 when async
/// deliveries were also queued (written to the journal first).
pub fn raise(events: &Events, request: &Request, caller: Caller, request_id: &str) -> Reply {
    let body = match &request.body {
        Ok(body) => body,
        Err(error) => return ApiError::from(*error).reply(request_id),
    };
    let body: Value = match serde_json::from_slice(body) {
        Ok(body) => body,
        Err(e) => {
            return ApiError::BadJson { message: format!("request body is not valid JSON: {e}") }
                .reply(request_id);
        }
    };
    match events.raise(body, caller) {
        Ok(accepted) => {
            let status = if accepted.queued > 0 { 202 } else { 200 };
            Reply::json(
                status,
                &json!({
                    "success": true,
                    "event_id": accepted.event.id,
                    "data": accepted.event.data,
                    "hooks": lines_json(&accepted.lines),
                    "queued": accepted.queued,
                    "request_id": request_id,
                }),
            )
        }
        Err(error) => ApiError::Event(error).reply(request_id),
    }
}

/// `GET /api/events/failed`.
pub fn failed(events: &Events) -> Reply {
    let failed = events.failed();
    Reply::json(200, &json!({"count": failed.len(), "failed": failed}))
}

/// `POST /api/events/{id}/retry`.
pub fn retry(events: &Events, id: &str, request_id: &str) -> Reply {
    let id = decode(id, false);
    match events.retry(&id) {
        Ok(n) => Reply::json(202, &json!({"success": true, "event_id": id, "retried": n})),
        Err(error) => ApiError::Event(error).reply(request_id),
    }
}

/// `DELETE /api/events/{id}`.
pub fn drop_failed(events: &Events, id: &str, request_id: &str) -> Reply {
    let id = decode(id, false);
    match events.drop_failed(&id) {
        Ok(n) => Reply::json(200, &json!({"success": true, "event_id": id, "dropped": n})),
        Err(error) => ApiError::Event(error).reply(request_id),
    }
}

/// One line per sync hook run.
pub fn lines_json(lines: &[Line]) -> Value {
    let line = |l: &Line| {
        let mut line = json!({
            "function": l.function,
            "outcome": l.outcome.as_str(),
            "duration_ms": crate::units::millis(l.duration),
            "request_id": l.request_id,
        });
        if let Some(error) = &l.error {
            line["error"] = json!({"code": error.code, "message": error.message});
        }
        line
    };
    Value::Array(lines.iter().map(line).collect())
}

/// The `error.details` of a refused event: the function that refused it,
/// and what each hook did.
pub fn details(error: &EventError) -> Option<Value> {
    match error {
        EventError::Rejected { function, reason, lines } => {
            Some(json!({"function": function, "reason": reason, "hooks": lines_json(lines)}))
        }
        EventError::HookFailed { function, error, lines } => Some(json!({
            "function": function,
            "cause": {"code": error.code, "message": error.message},
            "hooks": lines_json(lines),
        })),
        EventError::TooDeep { depth, limit } => Some(json!({"depth": depth, "limit": limit})),
        _ => None,
    }
}
