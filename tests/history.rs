//! The execution history against the real `alyx serve`: calls that succeed,
//! trap, time out or are rejected (a bad body, a forged webhook), queried with every filter and page by
//! page, fetched by id, and the history file with its rotation and its
//! failures. The file is read after alyx has stopped (its writer is joined
//! on shutdown, after the front) or waited for with a deadline.

mod common;

use serde_json::Value;

use common::TempDir;
use common::alyx::{Alyx, Folder};

/// `hello` echoes its envelope (also at the route `POST /greet/{name}`),
/// `trap` traps, `slow` spins until its 1 s timeout.
fn functions() -> Folder {
    Folder::new()
        .function("hello", "echo.wat", "echo", "routes: [{path: \"/greet/{name}\", methods: [POST]}]\n")
        .function("trap", "errors.wat", "trap", "")
        .function("slow", "loop.wat", "spin", "timeout: 1s\n")
}

/// Invokes `function` with `body` as request `id`; the status.
fn invoke(alyx: &Alyx, function: &str, id: &str, body: &str) -> u16 {
    let path = format!("/api/functions/{function}");
    alyx.request("POST", &path, &[("X-Request-ID", id)], body.as_bytes()).0
}

/// The ids of a listing, newest first, and its `next_before`.
#[track_caller]
fn listed(alyx: &Alyx, query: &str) -> (Vec<String>, Value) {
    let (status, body) = alyx.get(&format!("/api/executions{query}"));
    assert_eq!(status, 200, "{query}: {body}");
    let ids = body["executions"].as_array().unwrap().iter().map(|r| r["id"].as_str().unwrap().into());
    (ids.collect(), body["next_before"].clone())
}

#[track_caller]
fn ids(alyx: &Alyx, query: &str) -> Vec<String> {
    listed(alyx, query).0
}

/// The JSON lines of a file, parsed (none if it does not exist).
fn lines(path: &std::path::Path) -> Vec<Value> {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    text.lines().map(|line| serde_json::from_str(line).expect("each line is one JSON record")).collect()
}

fn line_ids(records: &[Value]) -> Vec<String> {
    records.iter().map(|r| r["id"].as_str().unwrap().to_string()).collect()
}

#[test]
fn every_call_is_recorded_and_found_by_filter_page_and_id() {
    let files = TempDir::new("history");
    let file = files.join("history.jsonl");
    let alyx = functions().serve(&["--history-file", file.to_str().unwrap()]);
    assert_eq!(invoke(&alyx, "hello", "ok-1", r#"{"input": {"n": 1}}"#), 200);
    assert_eq!(invoke(&alyx, "trap", "trap-1", ""), 500);
    assert_eq!(invoke(&alyx, "slow", "slow-1", ""), 504);
    assert_eq!(invoke(&alyx, "hello", "ok-2", "[1, 2, 3]"), 200);
    assert_eq!(invoke(&alyx, "hello", "bad-1", "{not json"), 400);
    assert_eq!(invoke(&alyx, "nope", "nope-1", ""), 404);
    assert_eq!(alyx.request("POST", "/greet/ada", &[("X-Request-ID", "route-1")], b"").0, 200);

    assert_eq!(ids(&alyx, ""), ["route-1", "nope-1", "bad-1", "ok-2", "slow-1", "trap-1", "ok-1"]);
    assert_eq!(ids(&alyx, "?function=hello"), ["route-1", "bad-1", "ok-2", "ok-1"]);
    assert_eq!(ids(&alyx, "?outcome=ok"), ["route-1", "ok-2", "ok-1"]);
    assert_eq!(ids(&alyx, "?outcome=error"), ["nope-1", "trap-1"]);
    assert_eq!(ids(&alyx, "?outcome=timeout"), ["slow-1"]);
    assert_eq!(ids(&alyx, "?outcome=rejected"), ["bad-1"]);
    assert_eq!(ids(&alyx, "?trigger=http").len(), 6);
    assert_eq!(ids(&alyx, "?trigger=route"), ["route-1"]);
    assert_eq!(ids(&alyx, "?trigger=webhook"), Vec::<String>::new());
    assert_eq!(ids(&alyx, "?function=hello&outcome=ok&trigger=http"), ["ok-2", "ok-1"]);

    let page = |query: &str, newest_first: &[&str], next: Value| {
        let expected: Vec<String> = newest_first.iter().map(|id| id.to_string()).collect();
        assert_eq!(listed(&alyx, query), (expected, next), "{query}");
    };
    page("?limit=3", &["route-1", "nope-1", "bad-1"], "bad-1".into());
    page("?limit=3&before=bad-1", &["ok-2", "slow-1", "trap-1"], "trap-1".into());
    page("?limit=3&before=trap-1", &["ok-1"], Value::Null);
    page("?function=hello&limit=1&before=ok-2", &["ok-1"], Value::Null);

    let route = alyx.get("/api/executions/route-1").1;
    assert_eq!(
        route["trigger"],
        serde_json::json!({"type": "route", "method": "POST", "route": "/greet/{name}"})
    );
    let (status, trap) = alyx.get("/api/executions/trap-1");
    assert_eq!(status, 200);
    assert_eq!(
        (trap["function"].as_str(), trap["trigger"].clone()),
        (Some("trap"), serde_json::json!({"type": "http"}))
    );
    assert_eq!(
        (trap["outcome"].as_str(), trap["error"]["code"].as_str()),
        (Some("error"), Some("EXECUTION_ERROR"))
    );
    assert!(trap["error"]["message"].as_str().is_some_and(|m| !m.is_empty()), "{trap}");
    assert!(trap["started_at"].as_str().is_some_and(|t| t.len() == 24 && t.ends_with('Z')), "{trap}");
    assert_eq!((trap["input_bytes"].as_u64(), trap["output_bytes"].as_u64()), (Some(4), Some(0)), "null in");
    assert!(trap["plugin"].is_string() && trap["duration_ms"].is_number() && trap["logs"].is_array());
    let ok = alyx.get("/api/executions/ok-1").1;
    assert_eq!((ok["outcome"].as_str(), &ok["error"]), (Some("ok"), &Value::Null));
    assert_eq!(ok["input_bytes"], 7, r#"{{"n":1}}"#);
    assert!(ok["output_bytes"].as_u64().is_some_and(|n| n > 100), "the echoed envelope: {ok}");
    let slow = alyx.get("/api/executions/slow-1").1;
    assert_eq!(
        (slow["outcome"].as_str(), slow["error"]["code"].as_str()),
        (Some("timeout"), Some("TIMEOUT"))
    );
    assert!(slow["duration_ms"].as_f64().is_some_and(|ms| ms >= 1000.0), "{slow}");
    let bad = alyx.get("/api/executions/bad-1").1;
    assert_eq!(
        (bad["outcome"].as_str(), bad["error"]["code"].as_str()),
        (Some("rejected"), Some("BAD_JSON"))
    );
    assert_eq!((bad["input_bytes"].as_u64(), &bad["plugin"]), (Some(9), &Value::Null), "the body's size");

    let (status, missing) = alyx.get("/api/executions/never");
    assert_eq!((status, missing["error"]["code"].as_str()), (404, Some("EXECUTION_NOT_FOUND")));
    let (status, bad_query) = alyx.get("/api/executions?outcome=fine");
    assert_eq!((status, bad_query["error"]["code"].as_str()), (400, Some("BAD_QUERY")));

    let (_, _, metrics) = alyx.request("GET", "/metrics", &[], b"");
    let metrics = String::from_utf8(metrics).unwrap();
    for line in [
        r#"alyx_invocations_by_trigger_total{function="hello",trigger="http",outcome="ok"} 2"#,
        r#"alyx_invocations_by_trigger_total{function="hello",trigger="http",outcome="rejected"} 1"#,
        r#"alyx_invocations_by_trigger_total{function="hello",trigger="route",outcome="ok"} 1"#,
        r#"alyx_invocations_by_trigger_total{function="slow",trigger="http",outcome="timeout"} 1"#,
        r#"alyx_invocations_by_trigger_total{function="trap",trigger="http",outcome="error"} 1"#,
        "alyx_history_dropped_total 0",
        "alyx_history_write_failures_total 0",
    ] {
        assert!(metrics.lines().any(|l| l == line), "{line} in:\n{metrics}");
    }
    assert!(!metrics.contains(r#"function="nope""#), "unknown names add no series");

    alyx.wait_for("seven lines in the history file", |_| lines(&file).len() == 7);
    let written = lines(&file);
    assert_eq!(line_ids(&written), ["ok-1", "trap-1", "slow-1", "ok-2", "bad-1", "nope-1", "route-1"]);
    assert_eq!(written[1], trap, "the file has the record the API shows");
}

#[test]
fn a_webhook_whose_signature_fails_is_recorded_as_rejected() {
    let hook = "hooks: [{type: webhook, config: {path: /hooks/signed}, verification: {type: hmac-sha256, \
                header: X-Signature, secret: s3cret}}]\n";
    let alyx = Folder::new().function("signed", "echo.wat", "echo", hook).serve(&[]);
    let body = br#"{"event": "push"}"#;
    let good = alyx::crypto::hex(&alyx::crypto::hmac_sha256(b"s3cret", body));
    let deliver = |id: &str, signature: &str| {
        alyx.request("POST", "/hooks/signed", &[("X-Request-ID", id), ("X-Signature", signature)], body).0
    };
    assert_eq!(deliver("good", &good), 200);
    assert_eq!(deliver("forged", "00"), 401);
    let (_, forged) = alyx.get("/api/executions/forged");
    assert_eq!(forged["trigger"], serde_json::json!({"type": "webhook", "path": "/hooks/signed"}));
    assert_eq!(
        (forged["outcome"].as_str(), forged["error"]["code"].as_str()),
        (Some("rejected"), Some("INVALID_SIGNATURE"))
    );
    assert_eq!((forged["input_bytes"].as_u64(), forged["duration_ms"].as_f64()), (Some(17), Some(0.0)));
    assert_eq!(ids(&alyx, "?trigger=webhook&outcome=ok"), ["good"]);
    assert_eq!(ids(&alyx, "?trigger=webhook"), ["forged", "good"]);
}

#[test]
fn the_history_file_is_rotated_at_its_cap_keeping_one_old_file() {
    let files = TempDir::new("history");
    let file = files.join("history.jsonl");
    let alyx = functions().serve(&["--history-file", file.to_str().unwrap(), "--history-file-max", "1KiB"]);
    let ids: Vec<String> = (0..12).map(|i| format!("call-{i:02}")).collect();
    for id in &ids {
        assert_eq!(invoke(&alyx, "hello", id, ""), 200);
    }
    let (code, _) = alyx.terminate();
    assert_eq!(code, Some(0));
    let (old, new) = (lines(&files.join("history.jsonl.1")), lines(&file));
    assert!(!old.is_empty() && !new.is_empty(), "rotated: {} old and {} new lines", old.len(), new.len());
    let kept = [line_ids(&old), line_ids(&new)].concat();
    assert_eq!(kept, ids[ids.len() - kept.len()..], "the newest records, in order, none lost at shutdown");
    assert!(kept.len() < ids.len(), "older files are not kept");
    for path in [file.clone(), files.join("history.jsonl.1")] {
        let size = std::fs::metadata(&path).unwrap().len();
        assert!(size <= 1024, "{} holds {size} bytes", path.display());
    }
    let names: Vec<_> = std::fs::read_dir(&*files).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names.len(), 2, "{names:?}");
}

#[test]
fn an_unwritable_history_file_fails_no_call_and_is_warned_about_once() {
    let files = TempDir::new("history");
    files.write("not-a-folder", "x");
    let file = files.join("not-a-folder/history.jsonl");
    let alyx = functions().serve(&["--history-file", file.to_str().unwrap()]);
    for id in ["a", "b", "c"] {
        assert_eq!(invoke(&alyx, "hello", id, ""), 200);
    }
    assert_eq!(ids(&alyx, ""), ["c", "b", "a"], "kept in memory all the same");
    alyx.wait_for("three write failures", |a| {
        let (_, _, metrics) = a.request("GET", "/metrics", &[], b"");
        String::from_utf8_lossy(&metrics).lines().any(|l| l == "alyx_history_write_failures_total 3")
    });
    let (code, stderr) = alyx.terminate();
    assert_eq!(code, Some(0));
    let warnings = stderr.lines().filter(|l| l.contains("history file")).count();
    assert_eq!(warnings, 1, "once, not per record:\n{stderr}");
}
