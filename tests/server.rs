//! `alyx serve` as a client sees it: the real binary on a free port in a
//! fresh functions folder, spoken to over HTTP. Waits are on conditions
//! with deadlines; on failure the server's stderr is printed.

mod common;

use std::process::Command;

use serde_json::Value;

use common::alyx::Folder;

fn examples() -> Folder {
    let folder = Folder::new();
    for name in ["hello", "counter", "fetch"] {
        let src = format!("{}/testdata/functions/{name}", env!("CARGO_MANIFEST_DIR"));
        let dst = folder.0.join(name);
        std::fs::create_dir_all(&dst).unwrap();
        for file in ["manifest.yaml", "plugin.wat"] {
            std::fs::copy(format!("{src}/{file}"), dst.join(file)).unwrap();
        }
    }
    folder
}

// --- invocation ---------------------------------------------------------------

#[test]
fn the_bundled_examples_answer() {
    let alyx = examples().serve(&[]);
    let (status, body) = alyx.post("/api/functions/hello", r#"{"input": {"name": "Ada"}}"#);
    assert_eq!((status, body["success"].clone()), (200, Value::Bool(true)));
    assert_eq!(body["output"]["greeting"], "Hello, Ada!");
    assert!(body["duration_ms"].as_f64().is_some() && body["logs"].is_array());
    let (_, body) = alyx.get("/api/functions/hello?name=Bob");
    assert_eq!(body["output"]["greeting"], "Hello, Bob!");
    assert_eq!(alyx.get("/hello/Cy").1, serde_json::json!({"greeting": "Hello, Cy!"}), "through its route");
    assert_eq!(
        alyx.post("/api/functions/counter", "").1["output"],
        serde_json::json!({"label": "visits", "count": 1})
    );
    assert_eq!(alyx.post("/api/functions/counter", "").1["output"]["count"], 2);
    let (status, body) = alyx.post("/api/functions/fetch", "");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["output"]["status"], "ok", "fetch called back into alyx: {body}");
}

#[test]
fn the_request_envelope_reaches_the_function() {
    let alyx = Folder::new().function("echo", "echo.wat", "echo", "env: {STAGE: test}\n").serve(&[]);
    let (status, headers, body) =
        alyx.request("POST", "/api/functions/echo", &[("X-Request-ID", "my-id-1")], br#"{"input": [1, 2]}"#);
    assert_eq!(status, 200);
    assert!(headers.contains(&("x-request-id".into(), "my-id-1".into())));
    let body: Value = serde_json::from_slice(&body).unwrap();
    let envelope = &body["output"];
    assert_eq!(
        (envelope["request_id"].clone(), envelope["function"].clone()),
        ("my-id-1".into(), "echo".into())
    );
    assert_eq!(envelope["input"], serde_json::json!([1, 2]));
    assert_eq!(envelope["context"]["env"]["STAGE"], "test");
    assert_eq!(envelope["context"]["alyx_url"], alyx.base);
    assert!(envelope["context"]["internal_token"].as_str().is_some_and(|t| t.len() > 20));
    let (_, headers, _) = alyx.request("POST", "/api/functions/echo", &[], b"");
    assert!(headers.iter().any(|(k, v)| k == "x-request-id" && v.len() == 16), "generated when absent");
}

#[test]
fn failures_have_status_codes_a_client_can_act_on() {
    let alyx = Folder::new()
        .function("trap", "errors.wat", "trap", "")
        .function("fails", "errors.wat", "error_rc1", "")
        .function("slow", "loop.wat", "spin", "timeout: 200ms\n")
        .function("greedy", "memory.wat", "alloc_bomb", "memory: 2mb\n")
        .function("broken", "bad_import.wat", "handle", "")
        .serve(&["--max-body", "1KiB"]);
    let expect = |path: &str, body: &str, status: u16, code: &str| {
        let (s, b) = alyx.post(path, body);
        assert_eq!((s, b["error"]["code"].as_str().unwrap_or("")), (status, code), "{path}: {b}");
        assert_eq!(b["success"], false);
    };
    expect("/api/functions/trap", "", 500, "EXECUTION_ERROR");
    expect("/api/functions/fails", "", 500, "PLUGIN_ERROR");
    expect("/api/functions/slow", "", 504, "TIMEOUT");
    expect("/api/functions/greedy", "", 500, "MEMORY_LIMIT");
    expect("/api/functions/nope", "", 404, "FUNCTION_NOT_FOUND");
    expect("/api/functions/trap", "{not json", 400, "BAD_JSON");
    expect("/api/functions/trap", &format!("\"{}\"", "x".repeat(2000)), 413, "PAYLOAD_TOO_LARGE");
    let (status, headers, _) = alyx.request("POST", "/api/functions/broken", &[], b"");
    assert_eq!(status, 503);
    assert!(headers.iter().any(|(k, _)| k == "retry-after"));
    let (status, headers, _) = alyx.request("DELETE", "/api/functions/trap", &[], b"");
    assert_eq!(status, 405);
    assert!(headers.contains(&("allow".into(), "GET, POST".into())));
    assert_eq!(alyx.get("/no/such/route").0, 404);
}

#[test]
fn a_full_queue_answers_503_with_retry_after() {
    let alyx = Folder::new().function("slow", "loop.wat", "spin", "timeout: 2s\n").serve(&[
        "--instances",
        "1",
        "--queue-depth",
        "0",
    ]);
    let base = alyx.base.clone();
    let first = std::thread::spawn(move || {
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .build()
            .new_agent()
            .post(format!("{base}/api/functions/slow"))
            .send_empty()
            .map(|r| r.status().as_u16())
    });
    alyx.wait_for("the first call to hold the only instance", |a| {
        a.get("/api/functions/stats").1["functions"]["slow"]["instances"]["busy"] == 1
    });
    let (status, headers, body) = alyx.request("POST", "/api/functions/slow", &[], b"");
    assert_eq!(status, 503, "{}", String::from_utf8_lossy(&body));
    assert!(headers.iter().any(|(k, v)| k == "retry-after" && v == "1"));
    assert_eq!(first.join().unwrap().unwrap(), 504);
}

#[test]
fn concurrent_invocations_never_share_an_instance() {
    let alyx = Folder::new().function("echo", "echo.wat", "echo", "").serve(&["--instances", "3"]);
    std::thread::scope(|s| {
        for t in 0..6 {
            let alyx = &alyx;
            s.spawn(move || {
                for i in 0..15 {
                    let id = format!("t{t}-{i}");
                    let (status, _, body) =
                        alyx.request("POST", "/api/functions/echo", &[("X-Request-ID", &id)], b"{}");
                    let body: Value = serde_json::from_slice(&body).unwrap();
                    assert_eq!(status, 200);
                    assert_eq!(body["output"]["request_id"], id.as_str(), "each call sees its own input");
                }
            });
        }
    });
    let stats = alyx.get("/api/functions/stats").1;
    assert_eq!(stats["functions"]["echo"]["calls"], 90);
    let busy_plus_idle = stats["functions"]["echo"]["instances"]["busy"].as_u64().unwrap()
        + stats["functions"]["echo"]["instances"]["idle"].as_u64().unwrap();
    assert!(busy_plus_idle <= 3, "{stats}");
}

// --- auth -------------------------------------------------------------------------

#[test]
fn api_keys_and_internal_tokens_authorise_invocations() {
    let alyx = Folder::new().function("echo", "echo.wat", "echo", "").serve(&["--api-keys", "k1,k2"]);
    let (status, headers, _) = alyx.request("POST", "/api/functions/echo", &[], b"");
    assert_eq!(status, 401);
    assert!(headers.iter().any(|(k, v)| k == "www-authenticate" && v == "Bearer"));
    assert_eq!(alyx.post_auth("/api/functions/echo", "wrong").0, 401);
    let (status, body) = alyx.post_auth("/api/functions/echo", "k2");
    assert_eq!(status, 200);
    assert_eq!(body["output"]["context"]["auth"]["type"], "api_key");
    let token = body["output"]["context"]["internal_token"].as_str().unwrap().to_string();
    let (status, body) = alyx.post_auth("/api/functions/echo", &token);
    assert_eq!(status, 200, "a function can call back with its internal token");
    assert_eq!(body["output"]["context"]["auth"]["type"], "internal");
    assert_eq!(alyx.get("/health").0, 200, "health needs no key");
}

#[test]
fn reload_needs_the_admin_token_and_picks_up_new_functions() {
    let alyx = Folder::new().function("echo", "echo.wat", "echo", "").serve(&["--admin-token", "s3cret"]);
    assert_eq!(alyx.post("/api/functions/reload", "").0, 401);
    assert_eq!(alyx.post_auth("/api/functions/reload", "nope").0, 401);
    let dir = alyx.folder.0.join("late");
    std::fs::create_dir_all(&dir).unwrap();
    // A lone .wasm: a function with every default, so it exports `handle`.
    let hello =
        std::fs::read(format!("{}/testdata/functions/hello/plugin.wat", env!("CARGO_MANIFEST_DIR"))).unwrap();
    std::fs::write(dir.join("plugin.wasm"), wat::parse_bytes(&hello).unwrap()).unwrap();
    let (status, body) = alyx.post_auth("/api/functions/reload", "s3cret");
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["loaded"], serde_json::json!(["late"]));
    assert_eq!(body["unchanged"], serde_json::json!(["echo"]));
    assert_eq!(alyx.get("/api/functions/late").1["status"], "loaded");
}

#[test]
fn admin_endpoints_are_off_without_an_admin_token() {
    let alyx = Folder::new().function("echo", "echo.wat", "echo", "").serve(&[]);
    let (status, body) = alyx.post("/api/functions/reload", "");
    assert_eq!((status, body["error"]["code"].as_str()), (403, Some("ADMIN_DISABLED")));
}

// --- listings, health, metrics ----------------------------------------------------

#[test]
fn bad_manifests_are_reported_beside_good_functions() {
    let alyx = examples()
        .file("typo/manifest.yaml", "name: typo\ntimout: 5s\nplugin: plugin.wat\n")
        .file("typo/plugin.wat", "(module (func (export \"handle\") (result i32) (i32.const 0)))")
        .file("bad/manifest.yaml", "name: bad\ntimeout: soon\n")
        .function("broken", "bad_import.wat", "handle", "")
        .serve(&[]);
    let (status, list) = alyx.get("/api/functions");
    assert_eq!(status, 200);
    let names: Vec<&str> =
        list["functions"].as_array().unwrap().iter().map(|f| f["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["broken", "counter", "fetch", "hello", "typo"]);
    let problems = list["problems"].to_string();
    assert!(problems.contains("bad/manifest.yaml: timeout:"), "{problems}");
    assert!(problems.contains("timout: unknown field (did you mean `timeout`?)"), "{problems}");
    let broken = alyx.get("/api/functions/broken").1;
    assert_eq!(broken["status"], "failed");
    assert!(broken["last_error"].as_str().unwrap().contains("not_a_function"));
    let hello = alyx.get("/api/functions/hello").1;
    assert_eq!(
        (hello["status"].as_str(), hello["plugin_hash"].as_str().map(str::len)),
        (Some("loaded"), Some(64))
    );
    assert_eq!(hello["triggers"]["routes"][0]["path"], "/hello");
    assert_eq!(alyx.post("/api/functions/hello", "").0, 200, "good functions serve");
}

#[test]
fn health_endpoints_and_metrics() {
    let alyx = examples().serve(&[]);
    assert_eq!(alyx.get("/health").1["functions"]["loaded"], 3);
    assert_eq!(alyx.get("/health/live").1["status"], "alive");
    assert_eq!(alyx.get("/health/ready").1["status"], "ready");
    alyx.post("/api/functions/hello", "");
    assert!(alyx.get("/health/stats").1["invocations"].as_u64() >= Some(1));
    let (status, headers, body) = alyx.request("GET", "/metrics", &[], b"");
    assert_eq!(status, 200);
    assert!(headers.iter().any(|(k, v)| k == "content-type" && v.starts_with("text/plain")));
    let text = String::from_utf8(body).unwrap();
    assert!(text.contains("alyx_invocations_total{function=\"hello\",outcome=\"success\"} 1"), "{text}");
    assert!(text.contains("alyx_invocation_duration_seconds_count{function=\"hello\"} 1"));
    assert!(text.contains("alyx_instances{function=\"hello\",state=\"idle\"}"));
    assert!(text.contains("alyx_reloads_total{function=\"hello\",result=\"ok\"} 1"));
    let stats = alyx.get("/api/functions/stats").1;
    assert_eq!(stats["functions"]["hello"]["calls"], 1);
}

// --- shutdown -----------------------------------------------------------------------

#[test]
fn shutdown_lets_requests_in_flight_finish() {
    let alyx = Folder::new().function("slow", "loop.wat", "spin", "timeout: 1s\n").serve(&[]);
    let base = alyx.base.clone();
    let in_flight = std::thread::spawn(move || {
        let agent = ureq::Agent::config_builder().http_status_as_error(false).build().new_agent();
        agent.post(format!("{base}/api/functions/slow")).send_empty().map(|r| r.status().as_u16())
    });
    alyx.wait_for("the call to be in flight", |a| {
        a.get("/api/functions/stats").1["functions"]["slow"]["instances"]["busy"] == 1
    });
    let (code, stderr) = alyx.terminate();
    assert_eq!(in_flight.join().unwrap().unwrap(), 504, "the call in flight got its answer");
    assert_eq!(code, Some(0), "{stderr}");
    assert!(stderr.contains("shutting down"), "{stderr}");
}

#[test]
fn bad_configuration_exits_2_with_a_message() {
    let out = Command::new(env!("CARGO_BIN_EXE_alyx")).args(["serve", "--workers", "none"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("workers: must be a whole number"));
    let help = Command::new(env!("CARGO_BIN_EXE_alyx")).args(["serve", "--help"]).output().unwrap();
    assert!(String::from_utf8_lossy(&help.stdout).contains("ALYX_QUEUE_DEPTH"));
}

#[test]
fn validate_reports_problems_and_fails() {
    let folder = examples().file("bad/manifest.yaml", "timeout: soon\n");
    let out = Command::new(env!("CARGO_BIN_EXE_alyx"))
        .args(["validate", folder.0.to_str().unwrap()])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(text.contains("bad/manifest.yaml: timeout:"), "{text}");
    let good = examples();
    let out = Command::new(env!("CARGO_BIN_EXE_alyx"))
        .args(["validate", good.0.to_str().unwrap()])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0), "{}", String::from_utf8_lossy(&out.stdout));
}

#[test]
fn a_failing_function_chooses_a_4xx_status_and_only_that() {
    let answer = |response: &str| {
        let config = format!("config: {{response: '{response}'}}\n");
        let alyx = Folder::new().function("f", "respond.wat", "respond", &config).serve(&[]);
        let (status, body) = alyx.post("/api/functions/f", "");
        assert_eq!(body["success"], false, "{body}");
        (status, body["error"]["code"].as_str().unwrap_or_default().to_string())
    };
    let chosen = r#"{"success": false, "error": {"code": "BAD_NAME", "message": "no", "status": 422}}"#;
    assert_eq!(answer(chosen), (422, "BAD_NAME".into()));
    let server_status = r#"{"success": false, "error": {"code": "DOWN", "status": 503}}"#;
    assert_eq!(answer(server_status), (500, "DOWN".into()), "a 5xx is not the function's to choose");
}

#[test]
fn json_logs_are_one_object_per_line_and_failures_say_code_and_message() {
    let alyx =
        Folder::new().function("fails", "errors.wat", "error_rc1", "").serve(&["--log-format", "json"]);
    assert_eq!(alyx.post("/api/functions/fails", "").0, 500);
    let (code, stderr) = alyx.terminate();
    assert_eq!(code, Some(0), "{stderr}");
    let lines: Vec<Value> = stderr
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|e| panic!("not JSON ({e}): {line}")))
        .collect();
    assert!(lines.iter().all(|l| l["time"].is_string() && l["target"].is_string()), "{stderr}");
    let failure =
        lines.iter().find(|l| l["message"].as_str().unwrap_or("").starts_with("fails (http): error"));
    let failure = failure.unwrap_or_else(|| panic!("no warning for the failed call: {stderr}"));
    assert_eq!(failure["level"], "WARN");
    assert!(failure["message"].as_str().unwrap().contains("PLUGIN_ERROR: bad input"), "{failure}");
}

#[test]
fn a_function_sees_which_named_api_key_called_it() {
    let alyx =
        Folder::new().function("echo", "echo.wat", "echo", "").serve(&["--api-keys", "ci:s3cret,pl41n"]);
    let auth =
        |token: &str| alyx.post_auth("/api/functions/echo", token).1["output"]["context"]["auth"].clone();
    assert_eq!(auth("s3cret"), serde_json::json!({"type": "api_key", "key": "ci"}));
    assert_eq!(auth("pl41n"), serde_json::json!({"type": "api_key", "key": "key2"}), "named by position");
    assert_eq!(alyx.post("/api/functions/echo", "").0, 401);
}

#[test]
fn a_functions_limits_are_the_ones_its_calls_run_under() {
    let alyx = Folder::new()
        .function("plain", "echo.wat", "echo", "")
        .function("own", "echo.wat", "echo", "timeout: 2s\nmemory: 1MiB\n")
        .serve(&["--timeout", "7s", "--memory", "64MiB"]);
    let limits = |name: &str| alyx.get(&format!("/api/functions/{name}")).1["limits"].clone();
    assert_eq!(
        limits("plain"),
        serde_json::json!({"timeout_ms": 7000, "memory_bytes": 64 << 20}),
        "the server's"
    );
    assert_eq!(
        limits("own"),
        serde_json::json!({"timeout_ms": 2000, "memory_bytes": 1 << 20}),
        "the manifest's"
    );
}
