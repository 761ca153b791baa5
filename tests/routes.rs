//! User routes against the real binary: parameters, methods and 405, HEAD,
//! reserved paths and conflicts reported, routes following reloads, auth,
//! and the response a function describes.

mod common;

use serde_json::{Value, json};

use common::alyx::{Alyx, Folder};

/// A function `name` whose output is the envelope it got (so the test sees
/// the route input), mounted at `routes`.
fn echo_at(folder: Folder, name: &str, routes: &str) -> Folder {
    folder.function(name, "echo.wat", "echo", &format!("routes: {routes}\n"))
}

/// A function answering `response` (JSON text), mounted at `path`.
fn responding(folder: Folder, name: &str, path: &str, response: &str) -> Folder {
    let config = serde_json::to_string(&json!({"response": response})).unwrap();
    let extra = format!("routes: [{{path: \"{path}\", methods: [GET, POST]}}]\nconfig: {config}\n");
    folder.function(name, "respond.wat", "respond", &extra)
}

fn input(alyx: &Alyx, method: &str, path: &str, body: &[u8]) -> (u16, Value) {
    let (status, _, body) = alyx.request(method, path, &[("X-Trace", "t1")], body);
    let envelope: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    (status, envelope["input"].clone())
}

#[test]
fn a_route_passes_params_query_headers_and_body_to_its_function() {
    let alyx =
        echo_at(Folder::new(), "hello", r#"[{path: "/hello/{name}", methods: [GET, POST]}]"#).serve(&[]);
    let (status, input) = input(&alyx, "POST", "/hello/ada%20l?tag=a&tag=b", br#"{"x": 1}"#);
    assert_eq!(status, 200, "{input}");
    assert_eq!((input["trigger"].clone(), input["method"].clone()), (json!("route"), json!("POST")));
    assert_eq!(
        (input["path"].clone(), input["route"].clone()),
        (json!("/hello/ada%20l"), json!("/hello/{name}"))
    );
    assert_eq!(input["params"], json!({"name": "ada l"}));
    assert_eq!(input["query"], json!({"tag": ["a", "b"]}));
    assert_eq!(input["headers"]["x-trace"], "t1");
    assert_eq!((input["body"].clone(), input["json"].clone()), (json!(r#"{"x": 1}"#), json!({"x": 1})));
    assert!(input["remote_addr"].as_str().is_some_and(|a| a.starts_with("127.0.0.1:")), "{input}");
}

#[test]
fn literals_win_other_methods_get_405_and_head_is_answered_for_get() {
    let alyx =
        echo_at(Folder::new(), "users", r#"[{path: "/users/{id}"}, {path: "/users/me", methods: [POST]}]"#)
            .serve(&[]);
    assert_eq!(input(&alyx, "GET", "/users/7", b"").1["params"], json!({"id": "7"}));
    assert_eq!(input(&alyx, "POST", "/users/me", b"").1["params"], json!({}));
    let (status, headers, _) = alyx.request("GET", "/users/me", &[], b"");
    let allow = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("allow")).map(|(_, v)| v.as_str());
    assert_eq!((status, allow), (405, Some("POST")), "the literal route wins; its methods are listed");
    let (status, headers, body) = alyx.request("DELETE", "/users/7", &[], b"");
    let allow = headers.iter().find(|(n, _)| n.eq_ignore_ascii_case("allow")).map(|(_, v)| v.clone());
    assert_eq!((status, allow.as_deref()), (405, Some("GET, HEAD")), "{}", String::from_utf8_lossy(&body));
    let (status, _, body) = alyx.request("HEAD", "/users/7", &[], b"");
    assert_eq!((status, body.len()), (200, 0));
}

#[test]
fn reserved_paths_and_conflicts_are_reported_and_the_first_by_name_serves() {
    let alyx = echo_at(Folder::new(), "a", r#"[{path: "/same/{x}"}]"#);
    let alyx =
        echo_at(alyx, "b", r#"[{path: "/same/{y}"}, {path: "/api/mine"}, {path: "/metrics"}]"#).serve(&[]);
    assert_eq!(input(&alyx, "GET", "/same/1", b"").1["route"], "/same/{x}", "a serves it");
    let problems = alyx.get("/api/functions").1["problems"].to_string();
    assert!(
        problems.contains("b/manifest.yaml: routes[0].path")
            && problems.contains("already served by function \\\"a\\\""),
        "{problems}"
    );
    assert!(problems.contains("routes[1].path: /api/mine is reserved"), "{problems}");
    assert!(problems.contains("routes[2].path: /metrics is reserved"), "{problems}");
    assert_eq!(alyx.get("/metrics").0, 200, "alyx's own path still answers");
}

#[test]
fn routes_follow_reloads() {
    let alyx = echo_at(Folder::new(), "f", r#"[{path: "/old"}]"#).serve(&["--admin-token", "adm"]);
    assert_eq!(alyx.get("/old").0, 200);
    alyx.folder
        .0
        .write("f/manifest.yaml", "name: f\nentrypoint: echo\nplugin: plugin.wat\nroutes: [{path: /new}]\n");
    assert_eq!(alyx.post_auth("/api/functions/reload", "adm").0, 200);
    assert_eq!((alyx.get("/new").0, alyx.get("/old").0), (200, 404), "re-mounted");
    std::fs::remove_dir_all(alyx.folder.0.join("f")).unwrap();
    assert_eq!(alyx.post_auth("/api/functions/reload", "adm").0, 200);
    assert_eq!(alyx.get("/new").0, 404, "a removed function's routes disappear");
}

#[test]
fn routes_need_an_api_key_unless_they_say_auth_none() {
    let folder = echo_at(Folder::new(), "private", r#"[{path: "/private"}]"#);
    let alyx = echo_at(folder, "public", r#"[{path: "/public", auth: none}]"#).serve(&["--api-keys", "k1"]);
    let (status, headers, _) = alyx.request("GET", "/private", &[], b"");
    assert_eq!(status, 401);
    assert!(headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("www-authenticate") && v == "Bearer"));
    assert_eq!(alyx.request("GET", "/private", &[("Authorization", "Bearer k1")], b"").0, 200);
    assert_eq!(alyx.get("/public").0, 200);
}

#[test]
fn a_function_describes_its_response_and_cannot_set_framing_headers() {
    let folder = responding(
        Folder::new(),
        "made",
        "/made",
        r#"{"status": 201, "headers": {"Location": "/made/1", "Content-Length": "9", "Connection": "close", "X-Bad": "a\r\nb"}, "body": "created"}"#,
    );
    let folder =
        responding(folder, "bin", "/bin", r#"{"status": 200, "body": "AP8A", "body_encoding": "base64"}"#);
    let folder = responding(folder, "plain", "/plain", r#"{"greeting": "hi"}"#);
    let alyx = folder.serve(&[]);
    let (status, headers, body) = alyx.request("POST", "/made", &[], b"");
    let header =
        |name: &str| headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.clone());
    assert_eq!((status, body.as_slice()), (201, &b"created"[..]));
    assert_eq!(header("location").as_deref(), Some("/made/1"));
    assert_eq!(header("content-length").as_deref(), Some("7"), "ours, not the function's");
    assert_eq!((header("connection"), header("x-bad")), (None, None));
    let (status, _, body) = alyx.request("GET", "/bin", &[], b"");
    assert_eq!((status, body.as_slice()), (200, &[0u8, 255, 0][..]));
    let (status, headers, body) = alyx.request("GET", "/plain", &[], b"");
    assert_eq!((status, serde_json::from_slice::<Value>(&body).unwrap()), (200, json!({"greeting": "hi"})));
    assert!(headers.iter().any(|(n, v)| n.eq_ignore_ascii_case("content-type") && v == "application/json"));
}

#[test]
fn a_failed_route_call_gets_the_error_envelope_and_its_status() {
    let alyx = Folder::new()
        .function("spin", "loop.wat", "spin", "timeout: 200ms\nroutes: [{path: /spin}]\n")
        .serve(&[]);
    let (status, body) = alyx.get("/spin");
    assert_eq!((status, body["error"]["code"].as_str()), (504, Some("TIMEOUT")), "{body}");
}
