//! Schedules against the real binary: interval and one-time schedules
//! firing (observed in the execution history, waited for with deadlines),
//! skip-if-running, runs by hand, `--no-schedules` beside a server that
//! does schedule, reloads, and restarts on the same data folder that
//! neither repeat nor forget a one-time run.

mod common;

use common::alyx::{Alyx, Folder};
use serde_json::{Value, json};

/// A function answering its envelope (`echo.wat`), with `schedules`.
fn echo(name: &str, schedules: &str) -> Folder {
    Folder::new().function(name, "echo.wat", "echo", &format!("schedules: {schedules}\n"))
}

/// The execution records of schedule runs of `function`, newest first.
fn runs(alyx: &Alyx, function: &str) -> Vec<Value> {
    let (status, body) =
        alyx.get(&format!("/api/executions?trigger=schedule&function={function}&limit=1000"));
    assert_eq!(status, 200, "{body}");
    body["executions"].as_array().cloned().unwrap_or_default()
}

/// Waits (10 s at most) until `function` has at least `count` schedule runs.
#[track_caller]
fn wait_for_runs(alyx: &Alyx, function: &str, count: usize) -> Vec<Value> {
    alyx.wait_for(&format!("{count} scheduled runs of {function}"), |a| runs(a, function).len() >= count);
    runs(alyx, function)
}

/// The schedule `name` of `function` in `GET /api/schedules`.
fn schedule(alyx: &Alyx, function: &str, name: &str) -> Value {
    let (status, body) = alyx.get("/api/schedules");
    assert_eq!(status, 200, "{body}");
    let all = body["schedules"].as_array().cloned().unwrap_or_default();
    all.into_iter().find(|s| s["function"] == function && s["name"] == name).unwrap_or(Value::Null)
}

/// At least `seconds` from now, rounded up to a whole second.
fn in_seconds(seconds: i64) -> jiff::Timestamp {
    let at = jiff::Timestamp::now() + jiff::SignedDuration::from_secs(seconds);
    let up = jiff::TimestampRound::new().smallest(jiff::Unit::Second).mode(jiff::RoundMode::Ceil);
    at.round(up).unwrap()
}

/// A whole second an hour ago.
fn an_hour_ago() -> jiff::Timestamp {
    let at = jiff::Timestamp::now() - jiff::SignedDuration::from_hours(1);
    at.round(jiff::Unit::Second).unwrap()
}

fn millis(text: &Value) -> i64 {
    text.as_str().and_then(|t| t.parse::<jiff::Timestamp>().ok()).expect("a time").as_millisecond()
}

#[test]
fn an_interval_schedule_fires_on_its_cadence_and_is_recorded() {
    let alyx = echo("tick", "[{name: every-second, type: interval, expression: 1s}]").serve(&[]);
    let records = wait_for_runs(&alyx, "tick", 3);
    for record in &records {
        let trigger = &record["trigger"];
        assert_eq!(
            (&trigger["type"], &trigger["name"], &trigger["attempt"], &trigger["late"], &trigger["manual"]),
            (&json!("schedule"), &json!("every-second"), &json!(1), &json!(false), &json!(false)),
            "{record}"
        );
        assert_eq!(record["outcome"], "ok", "{record}");
    }
    let due: Vec<i64> = records.iter().rev().map(|r| millis(&r["trigger"]["scheduled_for"])).collect();
    assert!(due.windows(2).all(|pair| pair[1] - pair[0] == 1000), "one second apart: {due:?}");
    let listed = schedule(&alyx, "tick", "every-second");
    assert_eq!((listed["type"].clone(), listed["timezone"].clone()), (json!("interval"), json!("UTC")));
    assert!(listed["runs"].as_u64().unwrap() >= 3 && listed["next_run"].is_string(), "{listed}");
    assert!(alyx.folder.0.join(".alyx/schedules.json").is_file(), "the state is kept in ./.alyx");
}

#[test]
fn a_one_time_schedule_fires_once_and_a_restart_does_not_repeat_it() {
    // Time enough for the server to start and see it before it is due.
    let at = in_seconds(5);
    let schedules = format!(
        "[{{name: once, type: one_time, expression: '{at}'}}, {{name: beat, type: interval, expression: 1s}}]"
    );
    let alyx = echo("job", &schedules).serve(&[]);
    alyx.wait_for("the one-time run", |a| {
        runs(a, "job").iter().any(|r| r["trigger"]["name"] == "once" && r["outcome"] == "ok")
    });
    let once: Vec<Value> =
        runs(&alyx, "job").into_iter().filter(|r| r["trigger"]["name"] == "once").collect();
    assert_eq!(once.len(), 1);
    assert_eq!(millis(&once[0]["trigger"]["scheduled_for"]), at.as_millisecond());
    assert_eq!(once[0]["trigger"]["late"], false);
    alyx.wait_for("its outcome saved", |a| schedule(a, "job", "once")["last_run"]["outcome"] == "ok");

    let alyx = alyx.stop_keeping_folder().serve(&[]);
    // The positive control: the interval beside it fires after the restart.
    let after = wait_for_runs(&alyx, "job", 3);
    assert!(
        after.iter().all(|r| r["trigger"]["name"] == "beat"),
        "the one-time run is not repeated: {after:?}"
    );
    let listed = schedule(&alyx, "job", "once");
    assert_eq!(listed["next_run"], Value::Null, "{listed}");
    assert_eq!(listed["last_run"]["request_id"], once[0]["id"], "its last run is remembered: {listed}");
}

#[test]
fn a_one_time_run_missed_while_stopped_runs_at_start_marked_late() {
    // What a server that saw the schedule and was stopped before its time
    // left behind: the run pending, its time now past.
    let at = an_hour_ago();
    let pending = json!({
        "version": 1,
        "schedules": [{"function": "job", "name": "once", "one_time": {"at": at.to_string(), "ran": false}}]
    });
    let folder = echo("job", &format!("[{{name: once, type: one_time, expression: '{at}'}}]"))
        .file(".alyx/schedules.json", &pending.to_string());
    let alyx = folder.serve(&[]);
    let records = wait_for_runs(&alyx, "job", 1);
    assert_eq!(
        (records[0]["trigger"]["late"].clone(), records[0]["outcome"].clone()),
        (json!(true), json!("ok"))
    );
    assert_eq!(millis(&records[0]["trigger"]["scheduled_for"]), at.as_millisecond());
}

#[test]
fn a_run_due_while_the_last_still_goes_is_skipped_and_counted() {
    let manifest = "schedules: [{name: slow, type: interval, expression: 1s}]\n";
    let alyx = Folder::new().function("nap", "nap.wat", "nap_2000", manifest).serve(&[]);
    alyx.wait_for("two skips", |a| schedule(a, "nap", "slow")["skips"].as_u64() >= Some(2));
    let records = wait_for_runs(&alyx, "nap", 2);
    let spans: Vec<(i64, i64)> = records
        .iter()
        .rev()
        .map(|r| {
            let start = millis(&r["started_at"]);
            (start, start + r["duration_ms"].as_f64().unwrap() as i64)
        })
        .collect();
    assert!(spans.windows(2).all(|pair| pair[0].1 <= pair[1].0), "no two runs overlap: {spans:?}");
    let listed = schedule(&alyx, "nap", "slow");
    assert!(listed["skips"].as_u64().unwrap() >= 2, "{listed}");
}

#[test]
fn a_run_by_hand_answers_like_an_invocation_and_is_recorded() {
    let schedules = "[{name: hourly, type: interval, expression: 1h, timezone: Europe/Berlin, config: {input: {report: daily}}}]";
    let alyx = echo("job", schedules).serve(&["--api-keys", "k1"]);
    let key = [("Authorization", "Bearer k1")];
    let post = |path: &str, headers: &[(&str, &str)]| {
        let (status, headers, body) = alyx.request("POST", path, headers, b"");
        let id = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("x-request-id")).map(|(_, v)| v.clone());
        (status, id.unwrap_or_default(), serde_json::from_slice::<Value>(&body).unwrap_or(Value::Null))
    };
    assert_eq!(post("/api/schedules/job/hourly/trigger", &[]).0, 401, "the API's keys apply");
    let (status, id, body) = post("/api/schedules/job/hourly/trigger", &key);
    assert_eq!(status, 200, "{body}");
    let input = &body["output"]["input"];
    assert_eq!(
        (&input["trigger"], &input["schedule"], &input["payload"], &input["attempt"], &input["late"]),
        (&json!("schedule"), &json!("hourly"), &json!({"report": "daily"}), &json!(1), &json!(false))
    );
    assert!(input["scheduled_for"].as_str().is_some_and(|t| t.ends_with("+01:00") || t.ends_with("+02:00")));
    let record: Value =
        serde_json::from_slice(&alyx.request("GET", &format!("/api/executions/{id}"), &key, b"").2).unwrap();
    assert_eq!((record["trigger"]["manual"].clone(), record["outcome"].clone()), (json!(true), json!("ok")));
    let (status, _, body) = post("/api/schedules/job/nope/trigger", &key);
    assert_eq!((status, body["error"]["code"].clone()), (404, json!("SCHEDULE_NOT_FOUND")));
    let (status, _, body) = post("/api/schedules/nope/hourly/trigger", &key);
    assert_eq!((status, body["error"]["code"].clone()), (404, json!("FUNCTION_NOT_FOUND")));
    assert_eq!(alyx.request("GET", "/api/schedules/job/hourly/trigger", &key, b"").0, 405);
    let (status, _, listed) = alyx.request("GET", "/api/schedules", &key, b"");
    let listed: Value = serde_json::from_slice(&listed).unwrap();
    assert_eq!((status, listed["schedules"][0]["runs"].clone()), (200, json!(1)));
    assert_eq!(listed["schedules"][0]["last_run"]["manual"], true);
}

#[test]
fn a_run_by_hand_while_the_last_still_goes_is_refused_with_409() {
    let manifest = "schedules: [{name: manual, type: interval, expression: 1h}]\n";
    let alyx = Folder::new().function("nap", "nap.wat", "nap_2000", manifest).serve(&[]);
    std::thread::scope(|scope| {
        let first = scope.spawn(|| alyx.post("/api/schedules/nap/manual/trigger", ""));
        alyx.wait_for("the first run to be going", |a| schedule(a, "nap", "manual")["running"] == true);
        let (status, body) = alyx.post("/api/schedules/nap/manual/trigger", "");
        assert_eq!((status, body["error"]["code"].clone()), (409, json!("SCHEDULE_RUNNING")), "{body}");
        assert_eq!(first.join().unwrap().0, 200);
    });
}

#[test]
fn no_schedules_fires_nothing_while_a_sibling_server_does() {
    let schedules = "[{name: beat, type: interval, expression: 1s}]";
    let scheduling = echo("job", schedules).serve(&[]);
    let quiet = echo("job", schedules).serve(&["--no-schedules"]);
    // Three more runs of the sibling: two seconds or more, in which the
    // quiet server, up all along, would have fired twice.
    let before = runs(&scheduling, "job").len();
    wait_for_runs(&scheduling, "job", before + 3);
    assert!(runs(&quiet, "job").is_empty(), "--no-schedules fired a run");
    let (_, listed) = quiet.get("/api/schedules");
    assert_eq!(
        (listed["scheduler"].clone(), listed["schedules"][0]["next_run"].clone()),
        (json!("off"), Value::Null)
    );
    let state = quiet.folder.0.join(".alyx/schedules.json");
    assert!(!state.exists(), "the schedule state is left to the scheduling replica");
    let (status, body) = quiet.post("/api/schedules/job/beat/trigger", "");
    assert_eq!((status, body["success"].clone()), (200, json!(true)), "runs by hand still work");
    assert_eq!(runs(&quiet, "job").len(), 1);
}

#[test]
fn a_reloaded_manifest_is_rescheduled() {
    let alyx = echo("job", "[{name: beat, type: interval, expression: 1h}]").serve(&["--admin-token", "adm"]);
    assert!(schedule(&alyx, "job", "beat")["next_run"].is_string());
    let manifest = "name: job\nentrypoint: echo\nplugin: plugin.wat\nschedules: [{name: beat, type: interval, expression: 1s}]\n";
    alyx.folder.0.write("job/manifest.yaml", manifest);
    assert_eq!(alyx.post_auth("/api/functions/reload", "adm").0, 200);
    assert_eq!(schedule(&alyx, "job", "beat")["expression"], "1s");
    wait_for_runs(&alyx, "job", 2);
}

#[test]
fn bad_schedules_are_manifest_problems_naming_the_field() {
    let schedules = "[{name: bad, type: cron, expression: '0 25 * * *', timezone: Mars/Olympus}]";
    let alyx = echo("job", schedules).serve(&[]);
    let (_, listed) = alyx.get("/api/functions");
    let problems: Vec<&str> =
        listed["problems"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
    let named = |text: &str| problems.iter().any(|p| p.contains(text));
    assert!(named("schedules[0].timezone: \"Mars/Olympus\" is not an IANA time zone"), "{problems:?}");
    assert!(
        named("schedules[0].expression: \"0 25 * * *\": the hour field \"25\": 25 is outside 0-23"),
        "{problems:?}"
    );
    let (_, schedules) = alyx.get("/api/schedules");
    assert_eq!(schedules["schedules"], json!([]));
}

#[test]
fn the_bundled_scheduled_example_lists_its_schedules_and_runs_by_hand() {
    let example = format!("{}/testdata/functions/heartbeat", env!("CARGO_MANIFEST_DIR"));
    let folder = Folder::new();
    for file in ["manifest.yaml", "plugin.wat"] {
        folder.0.write(&format!("heartbeat/{file}"), std::fs::read(format!("{example}/{file}")).unwrap());
    }
    let alyx = folder.serve(&[]);
    let nightly = schedule(&alyx, "heartbeat", "nightly");
    assert_eq!(
        (nightly["type"].clone(), nightly["timezone"].clone()),
        (json!("cron"), json!("Europe/Berlin"))
    );
    let next = nightly["next_run"].as_str().unwrap();
    assert!(next.contains("T03:00:00+01:00") || next.contains("T03:00:00+02:00"), "{next}");
    assert!(schedule(&alyx, "heartbeat", "every-minute")["next_run"].is_string());
    let (status, body) = alyx.post("/api/schedules/heartbeat/nightly/trigger", "");
    assert_eq!(status, 200, "{body}");
    let beat = body["output"]["beat"].as_str().unwrap();
    assert_eq!(body["logs"][0]["message"], format!("heartbeat: due at {beat}"));
}

#[test]
fn a_corrupt_state_file_is_reported_and_alyx_schedules_anyway() {
    let folder = echo("job", "[{name: beat, type: interval, expression: 1s}]");
    let alyx = folder.file(".alyx/schedules.json", "{\"version\": 1, \"schedules\": [{\"func").serve(&[]);
    wait_for_runs(&alyx, "job", 1);
    let aside = std::fs::read_to_string(alyx.folder.0.join(".alyx/schedules.json.corrupt")).unwrap();
    assert!(aside.starts_with("{\"version\": 1"), "the corrupt file is kept aside: {aside}");
    let (_, stderr) = alyx.terminate();
    assert!(stderr.contains("not a schedule state file"), "{stderr}");
}
