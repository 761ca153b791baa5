//! Routing: method and path to a [`Route`], as plain code with no I/O.

use crate::form::decode;

/// Function names taken by the API's own paths (`/api/functions/stats`,
/// `/api/functions/reload`); discovery refuses functions with these names.
pub const RESERVED_NAMES: &[&str] = &["stats", "reload"];

/// Every endpoint of the HTTP API.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Route {
    Invoke(String),
    ListFunctions,
    GetFunction(String),
    FunctionStats,
    Reload,
    Health,
    Live,
    Ready,
    HealthStats,
    Metrics,
    ListExecutions,
    /// One execution record, by its id as it appears in the path (still
    /// percent-encoded).
    GetExecution(String),
    /// The events API.
    Events(EventRoute),
    ListSchedules,
    /// Run a schedule now: its function and name, percent-decoded (the
    /// one place they are).
    TriggerSchedule {
        function: String,
        name: String,
    },
    NotFound,
    /// The path exists but not with this method; the allowed methods.
    MethodNotAllowed(&'static str),
}

/// An endpoint of the events API; ids as they appear in the path (still
/// percent-encoded).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum EventRoute {
    /// `POST /api/events`.
    Raise,
    Failed,
    /// Deliver the failed deliveries of an event again.
    Retry(String),
    /// Forget the failed deliveries of an event.
    Drop(String),
}

/// Routes a request. `path` excludes the query string; `has_query` says
/// whether there was one: `GET /api/functions/{name}?…` invokes with the
/// query parameters as input, a bare GET describes the function. `HEAD` is
/// answered like `GET` where that has no side effects, and never invokes.
pub fn route(method: &str, path: &str, has_query: bool) -> Route {
    match (method, route_get_or_post(method, path, has_query)) {
        ("HEAD", Route::Invoke(_)) => Route::MethodNotAllowed("GET, POST"),
        (_, route) => route,
    }
}

fn route_get_or_post(method: &str, path: &str, has_query: bool) -> Route {
    let path = path.strip_suffix('/').filter(|p| !p.is_empty()).unwrap_or(path);
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let (get, post) = (method == "GET" || method == "HEAD", method == "POST");
    let delete = method == "DELETE";
    match segments.as_slice() {
        ["health"] if get => Route::Health,
        ["health", "live"] if get => Route::Live,
        ["health", "ready"] if get => Route::Ready,
        ["health", "stats"] if get => Route::HealthStats,
        ["health"] | ["health", "live" | "ready" | "stats"] => Route::MethodNotAllowed("GET"),
        ["metrics"] if get => Route::Metrics,
        ["metrics"] => Route::MethodNotAllowed("GET"),
        ["api", "functions"] if get => Route::ListFunctions,
        ["api", "functions"] => Route::MethodNotAllowed("GET"),
        ["api", "functions", "stats"] if get => Route::FunctionStats,
        ["api", "functions", "stats"] => Route::MethodNotAllowed("GET"),
        ["api", "functions", "reload"] if post => Route::Reload,
        ["api", "functions", "reload"] => Route::MethodNotAllowed("POST"),
        ["api", "functions", name] if post || (get && has_query) => Route::Invoke(name.to_string()),
        ["api", "functions", name] if get => Route::GetFunction(name.to_string()),
        ["api", "functions", _] => Route::MethodNotAllowed("GET, POST"),
        ["api", "functions", name, "invoke"] if get || post => Route::Invoke(name.to_string()),
        ["api", "executions"] if get => Route::ListExecutions,
        ["api", "executions", id] if get => Route::GetExecution(id.to_string()),
        ["api", "executions"] | ["api", "executions", _] => Route::MethodNotAllowed("GET"),
        ["api", "events"] if post => Route::Events(EventRoute::Raise),
        ["api", "events"] => Route::MethodNotAllowed("POST"),
        ["api", "events", "failed"] if get => Route::Events(EventRoute::Failed),
        ["api", "events", "failed"] => Route::MethodNotAllowed("GET"),
        ["api", "events", id] if delete => Route::Events(EventRoute::Drop(id.to_string())),
        ["api", "events", _] => Route::MethodNotAllowed("DELETE"),
        ["api", "events", id, "retry"] if post => Route::Events(EventRoute::Retry(id.to_string())),
        ["api", "events", _, "retry"] => Route::MethodNotAllowed("POST"),
        ["api", "schedules"] if get => Route::ListSchedules,
        ["api", "schedules"] => Route::MethodNotAllowed("GET"),
        ["api", "schedules", function, name, "trigger"] if post => {
            Route::TriggerSchedule { function: decode(function, false), name: decode(name, false) }
        }
        ["api", "schedules", _, _, "trigger"] => Route::MethodNotAllowed("POST"),
        _ => Route::NotFound,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn api_routes() {
        assert_eq!(route("POST", "/api/functions/hello", false), Route::Invoke("hello".into()));
        assert_eq!(route("GET", "/api/functions/hello", false), Route::GetFunction("hello".into()));
        assert_eq!(route("GET", "/api/functions/hello/invoke", false), Route::Invoke("hello".into()));
        assert_eq!(route("GET", "/api/functions/hello", true), Route::Invoke("hello".into()));
        assert_eq!(route("GET", "/api/functions", false), Route::ListFunctions);
        assert_eq!(route("GET", "/api/functions/", false), Route::ListFunctions);
        assert_eq!(route("GET", "/api/functions/stats", false), Route::FunctionStats);
        assert_eq!(route("POST", "/api/functions/reload", false), Route::Reload);
        assert_eq!(route("GET", "/api/executions", true), Route::ListExecutions);
        assert_eq!(route("GET", "/api/executions/ab%2F1", false), Route::GetExecution("ab%2F1".into()));
        assert_eq!(route("HEAD", "/api/executions/x", false), Route::GetExecution("x".into()));
        assert_eq!(route("POST", "/api/executions", false), Route::MethodNotAllowed("GET"));
        assert_eq!(route("DELETE", "/api/executions/x", false), Route::MethodNotAllowed("GET"));
        assert_eq!(route("GET", "/api/schedules", false), Route::ListSchedules);
        assert_eq!(route("POST", "/api/schedules", false), Route::MethodNotAllowed("GET"));
        assert_eq!(
            route("POST", "/api/schedules/hello/nightly/trigger", false),
            Route::TriggerSchedule { function: "hello".into(), name: "nightly".into() }
        );
        assert_eq!(
            route("GET", "/api/schedules/hello/nightly/trigger", false),
            Route::MethodNotAllowed("POST")
        );
        assert_eq!(
            route("HEAD", "/api/schedules/hello/nightly/trigger", false),
            Route::MethodNotAllowed("POST")
        );
        assert_eq!(route("POST", "/api/schedules/hello/nightly", false), Route::NotFound);
        assert_eq!(
            route("POST", "/api/schedules/my%20fn/every%2F5%25/trigger", false),
            Route::TriggerSchedule { function: "my fn".into(), name: "every/5%".into() },
            "decoded once, here"
        );
    }

    #[test]
    fn event_routes() {
        let events = |e| Route::Events(e);
        assert_eq!(route("POST", "/api/events", false), events(EventRoute::Raise));
        assert_eq!(route("GET", "/api/events", false), Route::MethodNotAllowed("POST"));
        assert_eq!(route("GET", "/api/events/failed", false), events(EventRoute::Failed));
        assert_eq!(route("POST", "/api/events/e1/retry", false), events(EventRoute::Retry("e1".into())));
        assert_eq!(route("GET", "/api/events/e1/retry", false), Route::MethodNotAllowed("POST"));
        assert_eq!(route("DELETE", "/api/events/e1", false), events(EventRoute::Drop("e1".into())));
        assert_eq!(route("GET", "/api/events/e1", false), Route::MethodNotAllowed("DELETE"));
    }

    #[test]
    fn health_and_metrics() {
        assert_eq!(route("GET", "/health", false), Route::Health);
        assert_eq!(route("GET", "/health/live", false), Route::Live);
        assert_eq!(route("HEAD", "/health/ready", false), Route::Ready);
        assert_eq!(route("GET", "/health/stats", false), Route::HealthStats);
        assert_eq!(route("GET", "/metrics", false), Route::Metrics);
    }

    #[test]
    fn head_describes_but_never_invokes() {
        assert_eq!(route("HEAD", "/api/functions/hello", false), Route::GetFunction("hello".into()));
        assert_eq!(route("HEAD", "/api/functions/hello", true), Route::MethodNotAllowed("GET, POST"));
        assert_eq!(route("HEAD", "/api/functions/hello/invoke", false), Route::MethodNotAllowed("GET, POST"));
        assert_eq!(route("HEAD", "/health/live", false), Route::Live);
    }

    #[test]
    fn wrong_methods_and_unknown_paths() {
        assert_eq!(route("DELETE", "/api/functions/x", false), Route::MethodNotAllowed("GET, POST"));
        assert_eq!(route("GET", "/api/functions/reload", false), Route::MethodNotAllowed("POST"));
        assert_eq!(route("POST", "/metrics", false), Route::MethodNotAllowed("GET"));
        assert_eq!(route("GET", "/", false), Route::NotFound);
        assert_eq!(route("GET", "/api/functions/a/b/c", false), Route::NotFound);
    }
}
