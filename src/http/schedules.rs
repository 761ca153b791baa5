//! `GET /api/schedules` (every schedule with its next and last run) and
//! `POST /api/schedules/{function}/{name}/trigger` (one run now, answered
//! like an invocation). Times are RFC 3339 in the schedule's own zone,
//! with its offset, except `started_at`, which is when alyx started the
//! run (UTC, milliseconds, like execution records).

use serde_json::{Value, json};

use super::invoke::respond;
use super::reply::Reply;
use super::respond::ApiError;
use crate::invoke::Admission;
use crate::triggers::schedules::Schedules;
use crate::triggers::schedules::plan::{LastRun, Refused, View};
use crate::triggers::schedules::when::{Zone, utc_millis};

/// Every schedule of the loaded functions, by function and name, and
/// whether this server fires them (`"scheduler": "off"` under
/// `--no-schedules`, where `next_run` is always null).
pub fn list(schedules: &Schedules) -> Reply {
    let views: Vec<Value> = schedules.views().iter().map(view_json).collect();
    let scheduler = if schedules.is_scheduling() { "on" } else { "off" };
    Reply::json(200, &json!({"scheduler": scheduler, "schedules": views}))
}

/// Runs the schedule now (`function` and `name` already decoded by the
/// router) and answers with its outcome, as `POST /api/functions/{name}`
/// would.
pub fn trigger(
    schedules: &Schedules,
    function: String,
    name: String,
    admission: Option<Admission>,
    request_id: &str,
) -> Reply {
    match schedules.trigger(&function, &name, admission, request_id) {
        Ok(outcome) => respond(outcome),
        Err(Refused::Unknown) => ApiError::ScheduleNotFound { function, name }.reply(request_id),
        Err(Refused::Running) => ApiError::ScheduleRunning { function, name }.reply(request_id),
    }
}

fn view_json(view: &View) -> Value {
    let (schedule, zone) = (&view.schedule, &view.schedule.zone);
    json!({
        "function": view.key.function,
        "name": view.key.name,
        "type": schedule.kind.as_str(),
        "expression": schedule.expression,
        "timezone": zone.name(),
        "enabled": schedule.enabled,
        "skip_if_running": schedule.skip_if_running,
        "max_retries": schedule.max_retries,
        "next_run": view.next_run.map(|at| zone.format(at)),
        "retry_at": view.retry_at.map(|at| zone.format(at)),
        "last_run": view.last.as_ref().map(|last| last_json(last, zone)),
        "runs": view.runs,
        "skips": view.skips,
        "running": view.running,
    })
}

fn last_json(last: &LastRun, zone: &Zone) -> Value {
    json!({
        "scheduled_for": zone.format(last.scheduled_for),
        "started_at": utc_millis(last.started_at),
        "outcome": last.outcome.map(|o| o.as_str()),
        "error": last.error,
        "request_id": last.request_id,
        "attempt": last.attempt,
        "late": last.late,
        "manual": last.manual,
    })
}
