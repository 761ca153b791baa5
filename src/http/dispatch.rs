//! The HTTP core: from our [`Request`] to our [`Reply`] (route → auth →
//! handler) over the parts of the server that handlers need ([`App`]). No
//! sockets here: the front parses bytes into a `Request`, asks
//! [`App::admit`] (on its poller: route, auth, a function's place) and runs
//! [`App::handle`] on a worker. [`dispatch`] does both in one step, for
//! tests.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use super::auth::{Auth, bearer};
use super::front::{Handler, Lane, Reject};
use super::invoke;
use super::reply::Reply;
use super::request::Request;
use super::respond::ApiError;
use super::route::{self, Matched};
use super::router::{EventRoute, Route, route};
use super::webhook;
use super::{api, events, executions, schedules};
use crate::config::ApiKey;
use crate::invoke::{Admission, Caller, Invoker, Refusal, Refused, Trigger};
use crate::manifest::{RouteAccess, Webhook};
use crate::random::unique_id;
use crate::registry::Registry;
use crate::triggers::Routes;
use crate::triggers::events::Events;
use crate::triggers::routes::{Kind, Lookup};
use crate::triggers::schedules::Schedules;

/// Request counters for `/health/stats`.
#[derive(Debug)]
pub struct Traffic {
    started: Instant,
    requests: AtomicU64,
    in_flight: AtomicU64,
}

impl Default for Traffic {
    fn default() -> Traffic {
        Traffic { started: Instant::now(), requests: AtomicU64::new(0), in_flight: AtomicU64::new(0) }
    }
}

impl Traffic {
    /// Seconds since the server started, requests so far, and in flight.
    pub fn snapshot(&self) -> (u64, u64, u64) {
        (self.started.elapsed().as_secs(), self.requests.load(Ordering::Relaxed), self.in_flight())
    }

    /// Requests being handled now.
    pub fn in_flight(&self) -> u64 {
        self.in_flight.load(Ordering::SeqCst)
    }

    fn enter(&self) -> InFlight<'_> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        InFlight(&self.in_flight)
    }
}

/// Counts a request in flight for as long as it lives.
struct InFlight<'a>(&'a AtomicU64);

impl Drop for InFlight<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

/// What handlers work with.
pub struct App {
    pub registry: Arc<Registry>,
    pub invoker: Arc<Invoker>,
    pub auth: Auth,
    pub routes: Routes,
    pub schedules: Arc<Schedules>,
    pub traffic: Traffic,
    /// Event hooks; without them (some tests) `/api/events` is not a route.
    pub events: Option<Arc<Events>>,
}

impl App {
    /// The HTTP core over `invoker`: its registry, that registry's routes
    /// and schedules (run by hand only, until [`App::with_schedules`]),
    /// and auth that accepts the internal tokens the invoker issues.
    pub fn new(invoker: Arc<Invoker>, api_keys: Vec<ApiKey>, admin_token: Option<String>) -> App {
        let registry = invoker.registry().clone();
        App {
            auth: Auth::new(api_keys, admin_token, invoker.tokens().clone()),
            routes: Routes::new(registry.clone()),
            schedules: Arc::new(Schedules::by_hand(invoker.clone())),
            registry,
            invoker,
            traffic: Traffic::default(),
            events: None,
        }
    }

    /// This app with the events API over `events`.
    pub fn with_events(self, events: Arc<Events>) -> App {
        App { events: Some(events), ..self }
    }

    /// The same app over `schedules` (the scheduler's, when it runs).
    pub fn with_schedules(self, schedules: Arc<Schedules>) -> App {
        App { schedules, ..self }
    }
}

/// The fair queue's key for event chains: not a function name (no `/` in
/// those), so chains take turns with functions on the invoke workers.
const EVENTS_LANE: &str = "/api/events";

/// Where a request goes: one of alyx's own endpoints, a user route, or a
/// webhook.
enum Target {
    Api(Route),
    User(Matched),
    Webhook(Matched, Webhook),
}

impl Target {
    /// What started a call to this target, as its record names it.
    fn trigger(&self, request: &Request, schedules: &Schedules) -> Trigger {
        match self {
            Target::Api(Route::TriggerSchedule { function, name }) => {
                schedules.refused_by_hand(function, name)
            }
            Target::Api(_) => Trigger::Http,
            Target::User(matched) => matched.trigger(request),
            Target::Webhook(matched, _) => webhook::trigger(matched),
        }
    }
}

/// What [`App::admit`] hands to [`App::handle`]: the request's id, its
/// route and caller, and the function's place for an invocation.
pub struct Ticket {
    id: String,
    target: Target,
    caller: Caller,
    admission: Option<Admission>,
    start: Instant,
}

impl Handler for App {
    type Ticket = Ticket;

    /// Routes and authenticates; an invocation also takes its function's
    /// place now, so calls waiting for a worker count against `queue_depth`.
    /// User routes are looked up first (they cannot claim alyx's paths).
    fn admit(&self, request: &Request) -> Result<(Lane, Ticket), Reply> {
        self.traffic.requests.fetch_add(1, Ordering::Relaxed);
        let start = Instant::now();
        let id = request_id(request);
        let caller = self.auth.identify(request.header("Authorization").and_then(bearer));
        let ticket =
            |target, admission| Ticket { id: id.clone(), target, caller: caller.clone(), admission, start };
        let table = self.routes.table();
        let (function, access, target) = match table.lookup(&request.method, &request.path) {
            Lookup::Found { mount, params } => {
                let matched =
                    Matched { function: mount.function.clone(), route: mount.pattern.to_string(), params };
                match &mount.kind {
                    Kind::Route(access) => (mount.function.clone(), *access, Target::User(matched)),
                    Kind::Webhook(w) => {
                        (mount.function.clone(), RouteAccess::Public, Target::Webhook(matched, w.clone()))
                    }
                }
            }
            Lookup::MethodNotAllowed { allow } => {
                let refused = ApiError::MethodNotAllowed { path: request.path.clone(), allow };
                return Err(finish(request, refused.reply(&id), &id, start));
            }
            Lookup::Missing => match route(&request.method, &request.path, request.query.is_some()) {
                Route::Invoke(name) => (name.clone(), RouteAccess::Default, Target::Api(Route::Invoke(name))),
                raise @ Route::Events(EventRoute::Raise) => {
                    let lane = Lane::Invoke { key: EVENTS_LANE.into(), limit: usize::MAX };
                    return Ok((lane, ticket(Target::Api(raise), None)));
                }
                // A run by hand is a call of the function: its lane and admission.
                Route::TriggerSchedule { function, name } => {
                    let target = Target::Api(Route::TriggerSchedule { function: function.clone(), name });
                    (function, RouteAccess::Default, target)
                }
                other => return Ok((Lane::Control, ticket(Target::Api(other), None))),
            },
        };
        let allowed = match access {
            RouteAccess::Public => Ok(()),
            RouteAccess::Default => self.auth.api(&caller),
        };
        if let Err(refused) = allowed {
            return Err(finish(request, refused.reply(&id), &id, start));
        }
        match self.invoker.admit(&function) {
            Ok(admission) => {
                let lane = Lane::Invoke { key: function, limit: admission.capacity() };
                Ok((lane, ticket(target, Some(admission))))
            }
            Err(failure) => {
                self.invoker.refuse(Refused {
                    function,
                    trigger: target.trigger(request, &self.schedules),
                    request_id: id.clone(),
                    input_bytes: request.body.as_ref().map_or(0, |body| body.len() as u64),
                    why: Refusal::Failure(failure.clone()),
                });
                Err(finish(request, ApiError::Invocation(failure).reply(&id), &id, start))
            }
        }
    }

    fn handle(&self, request: Request, ticket: Ticket) -> Reply {
        let _in_flight = self.traffic.enter();
        let Ticket { id, target, caller, admission, start } = ticket;
        let reply = match target {
            Target::Api(route) => self.run(&request, route, caller, admission, &id),
            Target::User(matched) => route::call(&self.invoker, &request, matched, caller, &id, admission),
            Target::Webhook(matched, hook) => {
                webhook::call(&self.invoker, &request, matched, &hook, &id, admission)
            }
        };
        finish(&request, reply, &id, start)
    }

    fn reject(&self, why: Reject) -> Reply {
        let error = match why {
            Reject::BadRequest(reason) => ApiError::BadRequest { reason },
            Reject::HeaderTooLarge => ApiError::HeaderTooLarge,
            Reject::VersionNotSupported => ApiError::VersionNotSupported,
            Reject::BodyTooLarge => ApiError::BodyTooLarge,
            Reject::Timeout => ApiError::RequestTimeout,
            Reject::Overloaded => ApiError::Overloaded,
            Reject::Internal => ApiError::Internal,
        };
        let id = unique_id();
        error.reply(&id).with_header("X-Request-ID", &id)
    }
}

/// Answers one request in one step (admit, then handle): what the front
/// does, without sockets or threads.
pub fn dispatch(request: &Request, app: &App) -> Reply {
    match app.admit(request) {
        Ok((_, ticket)) => app.handle(request.clone(), ticket),
        Err(refused) => refused,
    }
}

/// The client's `X-Request-ID` when it is 1 to 128 visible characters,
/// else a new one.
fn request_id(request: &Request) -> String {
    match request.header("X-Request-ID") {
        Some(id) if valid_request_id(id) => id.to_string(),
        _ => unique_id(),
    }
}

/// Adds `X-Request-ID` and logs the outcome.
fn finish(request: &Request, reply: Reply, id: &str, start: Instant) -> Reply {
    let took = start.elapsed().as_secs_f64() * 1000.0;
    let (method, path, status) = (&request.method, &request.path, reply.status);
    if status >= 500 {
        log::warn!("{method} {path} -> {status} ({took:.1} ms, request {id})");
    } else {
        log::debug!("{method} {path} -> {status} ({took:.1} ms, request {id})");
    }
    reply.with_header("X-Request-ID", id)
}

/// Request ids we echo: 1 to 128 visible ASCII characters.
fn valid_request_id(id: &str) -> bool {
    (1..=128).contains(&id.len()) && id.bytes().all(|b| b.is_ascii_graphic())
}

impl App {
    /// The handler of each route.
    fn run(
        &self,
        request: &Request,
        route: Route,
        caller: Caller,
        admission: Option<Admission>,
        id: &str,
    ) -> Reply {
        let registry = &self.registry;
        let api = |handler: &dyn Fn() -> Reply| match self.auth.api(&caller) {
            Ok(()) => handler(),
            Err(refused) => refused.reply(id),
        };
        match route {
            Route::Health => api::health(registry),
            Route::Live => api::live(),
            Route::Ready => api::ready(registry),
            Route::HealthStats => api::health_stats(registry, &self.traffic),
            Route::Metrics => {
                api::metrics(registry, self.invoker.history(), self.events.as_ref().map(|e| e.counts()))
            }
            Route::ListFunctions => api(&|| api::list(registry, &self.routes.problems())),
            Route::FunctionStats => api(&|| api::stats(registry)),
            Route::GetFunction(name) => api(&|| api::function(registry, &name, id)),
            Route::ListExecutions => {
                api(&|| executions::list(self.invoker.history(), request.query.as_deref(), id))
            }
            Route::GetExecution(execution) => {
                api(&|| executions::get(self.invoker.history(), &execution, id))
            }
            Route::Reload => match self.auth.admin(&caller) {
                Ok(()) => api::reload(registry),
                Err(refused) => refused.reply(id),
            },
            Route::Invoke(name) => invoke::invoke(&self.invoker, request, &name, caller, id, admission),
            Route::Events(endpoint) => match &self.events {
                Some(events) => api(&|| match &endpoint {
                    EventRoute::Raise => events::raise(events, request, caller.clone(), id),
                    EventRoute::Failed => events::failed(events),
                    EventRoute::Retry(event) => events::retry(events, event, id),
                    EventRoute::Drop(event) => events::drop_failed(events, event, id),
                }),
                None => {
                    ApiError::NoRoute { method: request.method.clone(), path: request.path.clone() }.reply(id)
                }
            },
            Route::ListSchedules => api(&|| schedules::list(&self.schedules)),
            Route::TriggerSchedule { function, name } => {
                schedules::trigger(&self.schedules, function, name, admission, id)
            }
            Route::NotFound => {
                ApiError::NoRoute { method: request.method.clone(), path: request.path.clone() }.reply(id)
            }
            Route::MethodNotAllowed(allow) => {
                ApiError::MethodNotAllowed { path: request.path.clone(), allow: allow.into() }.reply(id)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::History;
    use crate::testutil::TempDir;
    use crate::tokens::InternalTokens;
    use serde_json::{Value, json};

    const ECHO: &str = r#"(module
      (import "extism:host/env" "input_offset" (func $off (result i64)))
      (import "extism:host/env" "input_length" (func $len (result i64)))
      (import "extism:host/env" "output_set" (func $out (param i64 i64)))
      (func (export "handle") (result i32) (call $out (call $off) (call $len)) (i32.const 0)))"#;

    fn app(root: &TempDir, keys: &[&str], admin: Option<&str>) -> App {
        root.write("echo/manifest.yaml", "plugin: plugin.wat");
        root.write("echo/plugin.wat", ECHO);
        let registry = Arc::new(Registry::new(root.path(), crate::testutil::defaults()));
        registry.reload();
        let history = Arc::new(History::new(100));
        let invoker =
            Invoker::new(registry, Arc::new(InternalTokens::new()), "http://alyx".into(), 4, history);
        let invoker = Arc::new(invoker);
        let keys = keys
            .iter()
            .enumerate()
            .map(|(i, k)| ApiKey { name: format!("key{}", i + 1), key: k.to_string() });
        App::new(invoker, keys.collect(), admin.map(String::from))
    }

    fn json_of(reply: &Reply) -> Value {
        serde_json::from_slice(&reply.body).unwrap()
    }

    #[test]
    fn an_invocation_answers_with_the_envelope_and_echoes_the_request_id() {
        let root = TempDir::new("dispatch");
        let app = app(&root, &[], None);
        let request = Request::new("POST", "/api/functions/echo")
            .with_header("x-request-id", "abc-1")
            .with_body(r#"{"input": {"n": 1}}"#);
        let reply = dispatch(&request, &app);
        assert_eq!((reply.status, reply.header("X-Request-ID")), (200, Some("abc-1")));
        let body = json_of(&reply);
        assert_eq!(
            (body["success"].clone(), body["output"]["input"].clone()),
            (json!(true), json!({"n": 1}))
        );
        assert_eq!(body["output"]["request_id"], "abc-1");
    }

    #[test]
    fn a_get_with_a_query_invokes_and_a_bare_get_describes() {
        let root = TempDir::new("dispatch");
        let app = app(&root, &[], None);
        let invoked = json_of(&dispatch(&Request::new("GET", "/api/functions/echo?name=Ada"), &app));
        assert_eq!(invoked["output"]["input"], json!({"name": "Ada"}));
        let described = json_of(&dispatch(&Request::new("GET", "/api/functions/echo"), &app));
        assert_eq!(
            (described["name"].clone(), described["status"].clone()),
            (json!("echo"), json!("loaded"))
        );
    }

    #[test]
    fn invalid_request_ids_are_replaced() {
        let root = TempDir::new("dispatch");
        let app = app(&root, &[], None);
        let reply =
            dispatch(&Request::new("GET", "/health/live").with_header("X-Request-ID", "has space"), &app);
        let id = reply.header("X-Request-ID").unwrap();
        assert!(id.len() == 16 && id != "has space", "{id}");
        assert!(valid_request_id(&"x".repeat(128)) && !valid_request_id(&"x".repeat(129)));
    }

    #[test]
    fn keys_guard_the_api_but_not_health() {
        let root = TempDir::new("dispatch");
        let app = app(&root, &["k1"], None);
        let refused = dispatch(&Request::new("POST", "/api/functions/echo"), &app);
        assert_eq!((refused.status, refused.header("WWW-Authenticate")), (401, Some("Bearer")));
        let wrong = Request::new("GET", "/api/functions").with_header("Authorization", "Bearer k2");
        assert_eq!(dispatch(&wrong, &app).status, 401);
        let right = Request::new("GET", "/api/functions").with_header("Authorization", "Bearer k1");
        assert_eq!(dispatch(&right, &app).status, 200);
        assert_eq!(dispatch(&Request::new("GET", "/health"), &app).status, 200);
    }

    #[test]
    fn reload_needs_an_enabled_admin_token() {
        let root = TempDir::new("dispatch");
        let disabled = app(&root, &[], None);
        assert_eq!(dispatch(&Request::new("POST", "/api/functions/reload"), &disabled).status, 403);
        let enabled = app(&root, &[], Some("adm"));
        assert_eq!(dispatch(&Request::new("POST", "/api/functions/reload"), &enabled).status, 401);
        let admin = Request::new("POST", "/api/functions/reload").with_header("Authorization", "Bearer adm");
        let reply = dispatch(&admin, &enabled);
        assert_eq!((reply.status, json_of(&reply)["unchanged"].clone()), (200, json!(["echo"])));
    }

    #[test]
    fn bad_bodies_unknown_functions_and_routes_get_the_tables_answers() {
        let root = TempDir::new("dispatch");
        let app = app(&root, &[], None);
        let code = |request: Request| {
            let reply = dispatch(&request, &app);
            (reply.status, json_of(&reply)["error"]["code"].as_str().unwrap_or_default().to_string())
        };
        assert_eq!(
            code(Request::new("POST", "/api/functions/echo").with_body("{nope")),
            (400, "BAD_JSON".into())
        );
        let mut large = Request::new("POST", "/api/functions/echo");
        large.body = Err(super::super::request::BodyError::TooLarge);
        assert_eq!(code(large), (413, "PAYLOAD_TOO_LARGE".into()));
        assert_eq!(code(Request::new("POST", "/api/functions/nope")), (404, "FUNCTION_NOT_FOUND".into()));
        assert_eq!(code(Request::new("GET", "/nowhere")), (404, "NOT_FOUND".into()));
        let reply = dispatch(&Request::new("DELETE", "/api/functions/echo"), &app);
        assert_eq!((reply.status, reply.header("Allow")), (405, Some("GET, POST")));
    }

    #[test]
    fn executions_are_listed_and_fetched_behind_the_api_keys() {
        let root = TempDir::new("dispatch");
        let app = app(&root, &["k1"], None);
        let key = |r: Request| r.with_header("Authorization", "Bearer k1");
        let invoke =
            |id: &str| key(Request::new("POST", "/api/functions/echo").with_header("X-Request-ID", id));
        assert_eq!(dispatch(&invoke("a/1"), &app).status, 200);
        assert_eq!(dispatch(&invoke("b").with_body("{nope"), &app).status, 400);
        assert_eq!(dispatch(&Request::new("GET", "/api/executions"), &app).status, 401);
        assert_eq!(dispatch(&Request::new("GET", "/api/executions/b"), &app).status, 401);
        let listed = json_of(&dispatch(&key(Request::new("GET", "/api/executions?limit=1")), &app));
        let first = &listed["executions"][0];
        assert_eq!((first["id"].clone(), first["outcome"].clone()), (json!("b"), json!("rejected")));
        assert_eq!(first["error"]["code"], "BAD_JSON");
        assert_eq!(listed["next_before"], "b");
        let one = dispatch(&key(Request::new("GET", "/api/executions/a%2F1")), &app);
        assert_eq!((one.status, json_of(&one)["outcome"].clone()), (200, json!("ok")));
        let unknown = dispatch(&key(Request::new("GET", "/api/executions/zzz")), &app);
        assert_eq!(
            (unknown.status, json_of(&unknown)["error"]["code"].clone()),
            (404, json!("EXECUTION_NOT_FOUND"))
        );
        let bad = dispatch(&key(Request::new("GET", "/api/executions?outcome=meh")), &app);
        assert_eq!((bad.status, json_of(&bad)["error"]["code"].clone()), (400, json!("BAD_QUERY")));
    }

    #[test]
    fn a_refused_admission_is_recorded_as_an_error() {
        let root = TempDir::new("dispatch");
        let app = app(&root, &[], None);
        let request = Request::new("POST", "/api/functions/nope").with_header("X-Request-ID", "n1");
        assert_eq!(dispatch(&request, &app).status, 404);
        let record = app.invoker.history().get("n1").expect("recorded at admission");
        assert_eq!(
            (record.function.as_str(), record.outcome, record.error.as_ref().map(|e| e.code)),
            ("nope", crate::history::Outcome::Error, Some("FUNCTION_NOT_FOUND"))
        );
    }

    #[test]
    fn schedules_are_listed_and_run_by_hand_as_invocations() {
        let root = TempDir::new("dispatch");
        root.write("timed/manifest.yaml", "plugin: plugin.wat\nschedules: [{name: tick, type: interval, expression: 1h, config: {input: 7}}]");
        root.write("timed/plugin.wat", ECHO);
        let app = app(&root, &["k1"], None);
        let key = |r: Request| r.with_header("Authorization", "Bearer k1");
        assert_eq!(dispatch(&Request::new("GET", "/api/schedules"), &app).status, 401);
        let listed = json_of(&dispatch(&key(Request::new("GET", "/api/schedules")), &app));
        assert_eq!(listed["scheduler"], "off", "App::new runs schedules by hand only");
        assert_eq!(
            (listed["schedules"][0]["name"].clone(), listed["schedules"][0]["next_run"].clone()),
            (json!("tick"), Value::Null)
        );
        let trigger =
            |path: &str| dispatch(&key(Request::new("POST", path)).with_header("X-Request-ID", "t1"), &app);
        let ran = trigger("/api/schedules/timed/tick/trigger");
        let input = &json_of(&ran)["output"]["input"];
        assert_eq!(
            (ran.status, input["trigger"].clone(), input["payload"].clone()),
            (200, json!("schedule"), json!(7))
        );
        let record = app.invoker.history().get("t1").expect("recorded under the request's id");
        assert_eq!(record.trigger.as_str(), "schedule");
        let code = |reply: Reply| (reply.status, json_of(&reply)["error"]["code"].clone());
        assert_eq!(code(trigger("/api/schedules/timed/nope/trigger")), (404, json!("SCHEDULE_NOT_FOUND")));
        assert_eq!(code(trigger("/api/schedules/nope/tick/trigger")), (404, json!("FUNCTION_NOT_FOUND")));
        let refused = app.invoker.history().list(&crate::history::Query::all(1)).records[0].clone();
        assert_eq!((refused.function.as_str(), refused.trigger.as_str()), ("nope", "schedule"));
    }

    #[test]
    fn a_run_by_hand_takes_percent_encoded_names_decoded_once() {
        let root = TempDir::new("dispatch");
        root.write(
            "timed/manifest.yaml",
            "plugin: plugin.wat\nschedules: [{name: tick, type: interval, expression: 1h}]",
        );
        root.write("timed/plugin.wat", ECHO);
        let app = app(&root, &[], None);
        let trigger = |path: &str, id: &str| {
            dispatch(&Request::new("POST", path).with_header("X-Request-ID", id), &app)
        };
        let ran = trigger("/api/schedules/t%69med/t%69ck/trigger", "e1");
        assert_eq!((ran.status, json_of(&ran)["output"]["input"]["schedule"].clone()), (200, json!("tick")));
        assert_eq!(app.invoker.history().get("e1").map(|r| r.function.clone()).as_deref(), Some("timed"));
        assert_eq!(trigger("/api/schedules/n%6Fpe/t%69ck/trigger", "e2").status, 404);
        let refused = app.invoker.history().get("e2").expect("recorded at admission");
        let name = match &refused.trigger {
            Trigger::Schedule { name, manual: true, .. } => name.as_str(),
            other => panic!("not a run by hand: {other:?}"),
        };
        assert_eq!((refused.function.as_str(), name), ("nope", "tick"));
    }

    #[test]
    fn requests_are_counted_and_none_stays_in_flight() {
        let root = TempDir::new("dispatch");
        let app = app(&root, &[], None);
        dispatch(&Request::new("GET", "/health"), &app);
        let stats = json_of(&dispatch(&Request::new("GET", "/health/stats"), &app));
        assert_eq!((stats["requests"].clone(), stats["in_flight"].clone()), (json!(2), json!(1)));
        assert_eq!(app.traffic.in_flight(), 0);
    }
}
