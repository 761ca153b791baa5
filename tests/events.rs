//! Event hooks end to end, against the real binary: sync chains (modify,
//! reject, on_failure, timeouts, wildcards and priority), async delivery
//! (history, retries, the failed list, retry and drop, a full queue), the
//! depth limit, and a crash: events accepted under load, SIGKILL, restart,
//! every accepted event delivered.

mod common;

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::TestServer;
use common::alyx::{Alyx, Folder};
use serde_json::{Value, json};

/// A hook.wat function answering `answer` (as its config) from `hooks`.
fn hook(folder: Folder, name: &str, export: &str, answer: &str, hooks: &str) -> Folder {
    let extra = format!("config: {{answer: '{answer}'}}\nhooks: {hooks}\n");
    folder.function(name, "hook.wat", export, &extra)
}

fn raise(alyx: &Alyx, event: Value) -> (u16, Value) {
    alyx.post("/api/events", &event.to_string())
}

fn custom(action: &str, data: Value) -> Value {
    json!({"type": "custom", "source": "shop", "action": action, "data": data})
}

/// `(function, outcome)` of each hook line of an answer (or of an error's
/// details).
fn lines(hooks: &Value) -> Vec<(String, String)> {
    let lines = hooks.as_array().cloned().unwrap_or_default();
    lines
        .iter()
        .map(|l| (l["function"].as_str().unwrap().into(), l["outcome"].as_str().unwrap().into()))
        .collect()
}

fn pairs(expected: &[(&str, &str)]) -> Vec<(String, String)> {
    expected.iter().map(|(f, o)| (f.to_string(), o.to_string())).collect()
}

#[test]
fn a_sync_chain_modifies_in_priority_order_then_a_rejection_stops_it() {
    let folder = Folder::new();
    let folder = hook(folder, "stamp", "wrap", "", "[{type: custom, source: shop, priority: 10}]");
    let folder = hook(folder, "last", "wrap", "", "[{type: custom, source: shop, action: '*'}]");
    let refuse = r#"{"reject": true, "reason": "out of stock"}"#;
    let alyx =
        hook(folder, "guard", "answer", refuse, "[{type: custom, source: shop, action: order, priority: 5}]")
            .serve(&[]);

    let (status, body) = raise(&alyx, custom("paid", json!({"n": 1})));
    assert_eq!(status, 200, "{body}");
    assert_eq!(lines(&body["hooks"]), pairs(&[("stamp", "modified"), ("last", "modified")]));
    let data = &body["data"];
    assert_eq!(data["function"], "last", "the last hook's data is the answer");
    let seen_by_last = &data["input"]["event"]["data"];
    assert_eq!(
        (seen_by_last["function"].clone(), seen_by_last["input"]["event"]["data"].clone()),
        (json!("stamp"), json!({"n": 1}))
    );
    assert_eq!(data["input"]["event"]["id"], body["event_id"]);
    assert_eq!(body["queued"], 0);

    let (status, body) = raise(&alyx, custom("order", json!({"n": 2})));
    assert_eq!(status, 422, "{body}");
    let error = &body["error"];
    assert_eq!(error["code"], "EVENT_REJECTED");
    assert_eq!(
        (error["details"]["function"].clone(), error["details"]["reason"].clone()),
        (json!("guard"), json!("out of stock"))
    );
    assert!(error["message"].as_str().unwrap().contains("out of stock"), "{error}");
    assert_eq!(
        lines(&error["details"]["hooks"]),
        pairs(&[("stamp", "modified"), ("guard", "rejected")]),
        "last never ran"
    );
}

#[test]
fn a_failing_hook_stops_the_chain_or_is_skipped_as_on_failure_says() {
    let folder = Folder::new();
    let folder = hook(folder, "strict", "fail", "", "[{type: auth, source: login, priority: 2}]");
    let folder = hook(
        folder,
        "lenient",
        "fail",
        "",
        "[{type: auth, source: logout, priority: 2, config: {on_failure: continue}}]",
    );
    let folder = hook(folder, "after", "answer", r#"{"data": "after ran"}"#, "[{type: auth}]");
    let slow = "hooks: [{type: database, source: users, config: {timeout: 300ms}}]\n";
    let alyx = folder.function("slow", "loop.wat", "spin", slow).serve(&[]);

    let auth = |source: &str| json!({"type": "auth", "source": source, "action": "attempt"});
    let (status, body) = raise(&alyx, auth("login"));
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["code"], "EVENT_HOOK_FAILED");
    assert_eq!(body["error"]["details"]["function"], "strict");
    assert_eq!(body["error"]["details"]["cause"]["code"], "PLUGIN_ERROR");
    assert_eq!(lines(&body["error"]["details"]["hooks"]), pairs(&[("strict", "failed")]));

    let (status, body) = raise(&alyx, auth("logout"));
    assert_eq!(status, 200, "{body}");
    assert_eq!(lines(&body["hooks"]), pairs(&[("lenient", "failed_continued"), ("after", "modified")]));
    assert_eq!(body["hooks"][0]["error"]["message"], "hook failed");
    assert_eq!(body["data"], "after ran");

    let started = Instant::now();
    let (status, body) = raise(&alyx, json!({"type": "database", "source": "users", "action": "insert"}));
    assert_eq!(status, 502, "{body}");
    assert_eq!(body["error"]["details"]["cause"]["code"], "TIMEOUT", "{body}");
    assert!(started.elapsed() < Duration::from_secs(10), "the hook's 300 ms, not the function's 30 s");
}

#[test]
fn wildcards_match_and_priority_then_name_orders_the_chain() {
    let mut folder = Folder::new();
    for (name, hooks) in [
        ("any_action", "[{type: database, source: users, action: '*'}]"),
        ("any_source", "[{type: database, source: '*', action: insert, priority: 3}]"),
        ("exact", "[{type: database, source: users, action: insert, priority: 3}]"),
        ("other_action", "[{type: database, source: users, action: delete, priority: 9}]"),
        ("other_type", "[{type: auth, priority: 9}]"),
    ] {
        folder = hook(folder, name, "answer", "{}", hooks);
    }
    let alyx = folder.serve(&[]);
    let (status, body) = raise(&alyx, json!({"type": "database", "source": "users", "action": "insert"}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(lines(&body["hooks"]), pairs(&[("any_source", "ok"), ("exact", "ok"), ("any_action", "ok")]));
    let (status, body) = raise(&alyx, json!({"type": "custom", "source": "users", "action": "insert"}));
    assert_eq!((status, body["hooks"].clone()), (200, json!([])), "no custom hooks: accepted, nothing ran");
}

#[test]
fn bad_events_and_unknown_ids_are_refused_clearly() {
    let alyx = Folder::new().serve(&[]);
    let (status, body) = alyx.post("/api/events", r#"{"type":"custom","source":"s"}"#);
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("BAD_EVENT")));
    assert!(body["error"]["message"].as_str().unwrap().contains("action: required"), "{body}");
    let (status, body) = alyx.post("/api/events", "{not json");
    assert_eq!((status, body["error"]["code"].clone()), (400, json!("BAD_JSON")));
    let (status, body) = alyx.post("/api/events/nope/retry", "");
    assert_eq!((status, body["error"]["code"].clone()), (404, json!("EVENT_NOT_FOUND")));
    let (status, _, _) = alyx.request("DELETE", "/api/events/nope", &[], b"");
    assert_eq!(status, 404);
}

#[test]
fn events_need_an_api_key_when_the_server_has_keys() {
    let alyx = hook(Folder::new(), "f", "answer", "{}", "[{type: custom}]").serve(&["--api-keys", "k1"]);
    let body = custom("a", Value::Null).to_string();
    let (status, _, _) = alyx.request("POST", "/api/events", &[], body.as_bytes());
    assert_eq!(status, 401);
    let (status, _, _) =
        alyx.request("POST", "/api/events", &[("Authorization", "Bearer k1")], body.as_bytes());
    assert_eq!(status, 200);
    let (status, _, _) = alyx.request("GET", "/api/events/failed", &[], b"");
    assert_eq!(status, 401);
}

/// The execution records of event `id`'s deliveries.
fn records_of(alyx: &Alyx, id: &str) -> Vec<Value> {
    let (_, body) = alyx.get("/api/executions?trigger=event&limit=1000");
    let all = body["executions"].as_array().cloned().unwrap_or_default();
    all.into_iter().filter(|r| r["trigger"]["event"] == id).collect()
}

#[test]
fn async_hooks_are_delivered_after_the_answer_and_recorded() {
    let folder = hook(Folder::new(), "sync_one", "wrap", "", "[{type: custom, source: shop}]");
    let alyx =
        hook(folder, "later", "answer", "{}", "[{type: custom, source: shop, mode: async}]").serve(&[]);
    let (status, body) = raise(&alyx, custom("paid", json!({"n": 1})));
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        (body["queued"].clone(), lines(&body["hooks"])),
        (json!(1), pairs(&[("sync_one", "modified")]))
    );
    let id = body["event_id"].as_str().unwrap().to_string();
    alyx.wait_for("the async delivery in the history", |a| {
        records_of(a, &id).iter().any(|r| r["function"] == "later" && r["outcome"] == "ok")
    });
    let (_, failed) = alyx.get("/api/events/failed");
    assert_eq!(failed["count"], 0);
}

#[test]
fn a_failing_delivery_is_retried_then_listed_then_retried_or_dropped() {
    let hooks = "[{type: custom, source: shop, mode: async, config: {max_retries: 2, retry_delay: 50ms}}]";
    let alyx = hook(Folder::new(), "flaky", "fail", "", hooks).serve(&["--admin-token", "adm"]);
    let (status, first) = raise(&alyx, custom("paid", json!(1)));
    assert_eq!(status, 202, "{first}");
    let (_, second) = raise(&alyx, custom("paid", json!(2)));
    let first = first["event_id"].as_str().unwrap().to_string();
    let second = second["event_id"].as_str().unwrap().to_string();
    alyx.wait_for("both deliveries to fail for good", |a| a.get("/api/events/failed").1["count"] == 2);
    let (_, _, metrics) = alyx.request("GET", "/metrics", &[], b"");
    let metrics = String::from_utf8(metrics).unwrap();
    assert!(metrics.contains("alyx_event_deliveries{state=\"failed\"} 2\n"), "{metrics}");
    assert!(metrics.contains("alyx_event_deliveries{state=\"pending\"} 0\n"), "{metrics}");
    let (_, failed) = alyx.get("/api/events/failed");
    let mine = failed["failed"].as_array().unwrap().iter().find(|f| f["event_id"] == first).cloned().unwrap();
    assert_eq!((mine["function"].clone(), mine["attempts"].clone()), (json!("flaky"), json!(3)));
    assert_eq!(mine["error"], json!({"code": "PLUGIN_ERROR", "message": "hook failed"}));
    assert_eq!(mine["event"]["data"], 1);
    let attempts = records_of(&alyx, &first);
    let numbers: Vec<u64> =
        attempts.iter().rev().map(|r| r["trigger"]["attempt"].as_u64().unwrap()).collect();
    assert_eq!(numbers, [1, 2, 3], "the first attempt and 2 retries, newest first in the history");
    assert!(attempts.iter().all(|r| r["outcome"] == "error"));

    // Fix the function, then deliver the first event again.
    let manifest = "name: flaky\nentrypoint: answer\nplugin: plugin.wat\n".to_string()
        + "config: {answer: '{}'}\nhooks: "
        + hooks
        + "\n";
    alyx.folder.0.write("flaky/manifest.yaml", manifest);
    assert_eq!(alyx.post_auth("/api/functions/reload", "adm").0, 200);
    let (status, body) = alyx.post(&format!("/api/events/{first}/retry"), "");
    assert_eq!((status, body["retried"].clone()), (202, json!(1)), "{body}");
    alyx.wait_for("the retried delivery to succeed", |a| {
        records_of(a, &first).iter().any(|r| r["outcome"] == "ok")
    });
    alyx.wait_for("the failed list to lose it", |a| a.get("/api/events/failed").1["count"] == 1);

    let (status, _, body) = alyx.request("DELETE", &format!("/api/events/{second}"), &[], b"");
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(alyx.get("/api/events/failed").1["count"], 0);
    assert!(records_of(&alyx, &second).iter().all(|r| r["outcome"] == "error"), "dropped, never delivered");
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let hooks = "hooks: [{type: custom, source: shop, mode: async, config: {timeout: 5s}}]\n";
    let alyx = Folder::new().function("slow", "nap.wat", "nap_1000", hooks).serve(&[
        "--event-queue",
        "2",
        "--event-workers",
        "1",
    ]);
    let event = custom("paid", Value::Null).to_string();
    for _ in 0..2 {
        assert_eq!(alyx.post("/api/events", &event).0, 202);
    }
    let (status, headers, body) = alyx.request("POST", "/api/events", &[], event.as_bytes());
    let body: Value = serde_json::from_slice(&body).unwrap();
    assert_eq!((status, body["error"]["code"].clone()), (503, json!("EVENT_QUEUE_FULL")), "{body}");
    assert!(headers.iter().any(|(k, v)| k == "retry-after" && v == "1"), "{headers:?}");
    alyx.wait_for("room again once deliveries finish", |a| a.post("/api/events", &event).0 == 202);
}

#[test]
fn big_events_fill_the_queue_by_their_bytes_too() {
    let hooks = "hooks: [{type: custom, source: shop, mode: async, config: {timeout: 5s}}]\n";
    let alyx = Folder::new().function("slow", "nap.wat", "nap_1000", hooks).serve(&[
        "--event-queue-bytes",
        "8KiB",
        "--event-workers",
        "1",
    ]);
    let big = custom("paid", json!("x".repeat(3000))).to_string();
    assert_eq!(alyx.post("/api/events", &big).0, 202);
    assert_eq!(alyx.post("/api/events", &big).0, 202);
    let (status, body) = alyx.post("/api/events", &big);
    assert_eq!((status, body["error"]["code"].clone()), (503, json!("EVENT_QUEUE_FULL")), "{body}");
    assert!(body["error"]["message"].as_str().unwrap().contains("hold 8 KiB (event_queue_bytes)"), "{body}");
    let small = custom("paid", Value::Null).to_string();
    assert_eq!(alyx.post("/api/events", &small).0, 202, "a small one still fits");
    let sync_only = json!({"type": "custom", "source": "elsewhere", "action": "a", "data": "x".repeat(3000)});
    assert_eq!(raise(&alyx, sync_only).0, 200, "events with no async hooks are not held back");
}

#[test]
fn events_raised_from_hooks_nest_at_most_event_depth_deep() {
    // `wrap` answers the envelope it got as the event's data, internal
    // token included: the token a hook would raise its own events with.
    let alyx = hook(Folder::new(), "relay", "wrap", "", "[{type: custom}]").serve(&["--event-depth", "2"]);
    let body = custom("hop", Value::Null).to_string();
    let mut token: Option<String> = None;
    for depth in 0..=3 {
        let bearer = token.as_ref().map(|t| format!("Bearer {t}"));
        let headers: Vec<(&str, &str)> = bearer.iter().map(|b| ("Authorization", b.as_str())).collect();
        let (status, _, answer) = alyx.request("POST", "/api/events", &headers, body.as_bytes());
        let answer: Value = serde_json::from_slice(&answer).unwrap();
        if depth <= 2 {
            assert_eq!(status, 200, "depth {depth}: {answer}");
            token = answer["data"]["context"]["internal_token"].as_str().map(String::from);
        } else {
            assert_eq!(status, 422, "depth {depth}: {answer}");
            assert_eq!(answer["error"]["code"], "EVENT_DEPTH_EXCEEDED");
            assert_eq!(answer["error"]["details"], json!({"depth": 3, "limit": 2}));
        }
    }
}

/// Event ids in the bodies the sink saw (each body is a hook's envelope).
fn delivered_ids(seen: &std::sync::mpsc::Receiver<common::Seen>, into: &mut BTreeSet<String>) {
    while let Ok(request) = seen.try_recv() {
        insert_id(&request, into);
    }
}

fn insert_id(request: &common::Seen, into: &mut BTreeSet<String>) {
    let envelope: Value = serde_json::from_slice(&request.body).unwrap();
    into.insert(envelope["input"]["event"]["id"].as_str().unwrap().to_string());
}

#[test]
fn no_accepted_event_is_lost_to_a_crash() {
    // The hook reports each delivery to a sink in this process, which
    // answers slowly so deliveries are still waiting when alyx is killed.
    let sink = TestServer::start(100_000, |_| {
        std::thread::sleep(Duration::from_millis(5));
        (200, vec![], b"ok".to_vec())
    });
    let request = format!(r#"{{"url": "{}", "method": "POST"}}"#, sink.url("/delivered"));
    let extra = format!(
        "config: {{request: '{request}'}}\nallowed_hosts: ['127.0.0.1']\nhooks: [{{type: custom, source: load, mode: async}}]\n"
    );
    let alyx = Folder::new().function("report", "hook.wat", "report", &extra).serve(&[]);

    let accepted = Arc::new(Mutex::new(BTreeSet::new()));
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..4)
        .map(|_| {
            let (url, accepted, stop) = (alyx.url("/api/events"), accepted.clone(), stop.clone());
            std::thread::spawn(move || post_until_refused(&url, &accepted, &stop))
        })
        .collect();
    let deadline = Instant::now() + Duration::from_secs(20);
    while accepted.lock().unwrap().len() < 200 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(5));
    }
    // Killed while clients are still posting and deliveries still wait.
    alyx.signal("KILL");
    stop.store(true, Ordering::SeqCst);
    for client in clients {
        client.join().unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() >= 200, "only {} events accepted", accepted.len());
    let mut delivered = BTreeSet::new();
    delivered_ids(&sink.seen, &mut delivered);
    let before = accepted.intersection(&delivered).count();
    assert!(before < accepted.len(), "every delivery was made before the crash: nothing tested");
    let alyx = alyx.crash_and_restart(&[]);

    let deadline = Instant::now() + Duration::from_secs(60);
    while !accepted.is_subset(&delivered) {
        assert!(
            Instant::now() < deadline,
            "{} accepted events never delivered",
            accepted.difference(&delivered).count()
        );
        if let Ok(request) = sink.seen.recv_timeout(deadline.saturating_duration_since(Instant::now())) {
            insert_id(&request, &mut delivered);
        }
    }
    let (_, failed) = alyx.get("/api/events/failed");
    assert_eq!(failed["count"], 0);
    println!(
        "{} events accepted before the crash, {before} delivered before it, all delivered after the restart",
        accepted.len()
    );
}

/// Posts events until the server stops answering or `stop` is set;
/// records the ids of the accepted ones (202).
fn post_until_refused(url: &str, accepted: &Mutex<BTreeSet<String>>, stop: &AtomicBool) {
    let agent: ureq::Agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .timeout_global(Some(Duration::from_secs(10)))
        .build()
        .into();
    let body = json!({"type": "custom", "source": "load", "action": "tick"}).to_string();
    while !stop.load(Ordering::SeqCst) {
        let Ok(mut response) = agent.post(url).send(body.as_bytes()) else { return };
        if response.status().as_u16() != 202 {
            continue;
        }
        let Ok(answer) = response.body_mut().read_to_vec() else { return };
        let answer: Value = serde_json::from_slice(&answer).unwrap_or_default();
        accepted.lock().unwrap().insert(answer["event_id"].as_str().unwrap_or_default().to_string());
    }
}

#[test]
fn a_second_server_on_the_same_data_folder_stops_at_start() {
    let alyx = Folder::new().serve(&[]);
    let folder = alyx.folder.0.to_str().unwrap().to_string();
    let second = common::run::alyx_in(
        alyx.folder.0.as_ref(),
        &[],
        &["serve", "--listen", "127.0.0.1:0", "--dir", &folder],
    );
    second.expect(1);
    let pid = alyx.pid();
    assert!(
        second.stderr().contains(&format!("data folder ./.alyx: in use by another alyx (pid {pid})")),
        "{}",
        second.stderr()
    );
    assert_eq!(alyx.get("/health/live").0, 200, "the first goes on");
}

#[test]
fn a_torn_journal_tail_is_reported_and_skipped_and_what_came_before_is_delivered() {
    let hooks = "hooks: [{type: custom, source: shop, mode: async, config: {timeout: 10s}}]\n";
    let folder = Folder::new().function("slow", "nap.wat", "nap_2000", hooks);
    let alyx = hook(folder, "quick", "answer", "{}", "[{type: custom, source: later, mode: async}]")
        .serve(&["--event-workers", "1"]);
    let (status, first) = raise(&alyx, custom("paid", Value::Null));
    assert_eq!(status, 202, "{first}");
    let (status, second) = raise(&alyx, json!({"type": "custom", "source": "later", "action": "x"}));
    assert_eq!(status, 202, "{second}");
    alyx.signal("KILL");
    // A record cut short, as a power loss mid-write leaves it.
    let journal = alyx.folder.0.path().join(".alyx/events.journal");
    let mut file = std::fs::OpenOptions::new().append(true).open(&journal).unwrap();
    std::io::Write::write_all(&mut file, &[200, 0, 0, 0, 1, 2, 3, 4, 1, 9]).unwrap();
    drop(file);
    let alyx = alyx.crash_and_restart(&[]);
    let second = second["event_id"].as_str().unwrap().to_string();
    alyx.wait_for("the delivery queued before the tear", |a| {
        records_of(a, &second).iter().any(|r| r["outcome"] == "ok")
    });
    let (_, stderr) = alyx.terminate();
    assert!(stderr.contains("events: ") && stderr.contains("events.journal.damaged-"), "{stderr}");
}
