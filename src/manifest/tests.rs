//! Tests of [`parse`](super::parse): whole manifests in, the typed result
//! and every problem (as the user reads it) out, with no file touched.

use super::check::every_field;
use super::*;
use crate::testutil::TempDir;

/// A folder that does not exist: parsing must not need it.
const DIR: &str = "/nonexistent/functions/hello";

fn parse_text(text: &str) -> (Option<Unresolved>, Vec<String>) {
    let parsed = parse(Path::new(DIR), Path::new("functions/hello/manifest.yaml"), text);
    (parsed.manifest, parsed.problems.iter().map(ToString::to_string).collect())
}

#[test]
fn a_full_reference_manifest_loads() {
    let (m, problems) = parse_text(
        r#"
name: hello
runtime: wasm
entrypoint: handle
timeout: 30s
memory: 256mb
env: {KEY: value}
dependencies: []
config: {key: value}
allowed_hosts: ["api.example.com", "*.internal"]
build: {command: make, args: [], watch: ["src/**/*.c"], output: plugin.wasm}
routes: [{path: /hello, methods: [GET, post]}]
hooks:
  - {type: database, source: users, action: insert, mode: sync, config: {timeout: 5s}}
  - {type: webhook, verification: {type: hmac-sha256, header: X-Signature, secret: s3cret}}
schedules: [{name: nightly, type: cron, expression: "0 3 * * *", timezone: Europe/Berlin}]
"#,
    );
    assert!(problems.is_empty(), "{problems:?}");
    let m = m.unwrap();
    assert_eq!(
        (m.name.as_str(), m.timeout, m.memory),
        ("hello", Some(Duration::from_secs(30)), Some(256 << 20))
    );
    assert_eq!(m.routes[0].methods, ["GET", "POST"]);
    assert_eq!(m.hooks[0].timeout, Some(Duration::from_secs(5)));
    assert_eq!(m.hooks[1].verification.as_ref().unwrap().secret, "s3cret");
    assert!(m.build.as_ref().unwrap().watch[0].matches("src/lib/x.c"));
    assert_eq!(m.build.unwrap().output, Path::new(DIR).join("plugin.wasm"));
    assert_eq!(m.plugin, None, "no plugin named: discovery picks it");
}

#[test]
fn parsing_reads_no_file() {
    let folder = TempDir::new("manifest");
    folder.write("lone.wasm", "");
    std::os::unix::fs::symlink("/etc/hostname", folder.path().join("p.wasm")).unwrap();
    let text = "name: hello\nplugin: p.wasm\nbuild: {command: make}\ntimeout: 5s";
    let on_disk = parse(folder.path(), Path::new("m.yaml"), text);
    assert!(on_disk.problems.is_empty(), "links are for discovery to check: {:?}", on_disk.problems);
    let on_disk = on_disk.manifest.unwrap();
    assert_eq!(on_disk.plugin, Some(folder.path().join("p.wasm")));
    assert_eq!(on_disk.build.as_ref().unwrap().output, folder.path().join("plugin.wasm"));
    let nowhere = parse(Path::new(DIR), Path::new("m.yaml"), text).manifest.unwrap();
    let (dir, plugin, build) = (on_disk.dir.clone(), on_disk.plugin.clone(), on_disk.build.clone());
    assert_eq!(on_disk, Manifest { dir, plugin, build, ..nowhere }, "the same but for the folder");
    let unnamed = parse(folder.path(), Path::new("m.yaml"), "").manifest.unwrap();
    assert_eq!(unnamed.plugin, None, "the lone .wasm is for discovery to find");
}

#[test]
fn named_paths_are_handed_to_discovery() {
    let parsed = parse(Path::new(DIR), Path::new("m.yaml"), "plugin: p.wasm\nbuild: {command: make}");
    let paths: Vec<(&str, &str)> =
        parsed.paths.iter().map(|p| (p.field.as_str(), p.written.as_str())).collect();
    assert_eq!(paths, [("build.output", "plugin.wasm"), ("plugin", "p.wasm")]);
    assert_eq!(parsed.paths[1].path, Path::new(DIR).join("p.wasm"));
}

#[test]
fn every_known_field_is_read_without_a_warning() {
    let text = every_field(FIELDS, top_level_sample);
    let (m, problems) = parse_text(&text);
    assert!(problems.is_empty(), "{text}\n{problems:?}");
    assert!(m.is_some());
}

/// A valid value for each top-level field; a new field needs one here.
fn top_level_sample(key: &str) -> String {
    let sample = match key {
        "name" => "hello",
        "runtime" => "wasm",
        "entrypoint" => "run",
        "timeout" => "5s",
        "memory" => "1mb",
        "env" | "config" => "{a: b}",
        "dependencies" => "[x]",
        "allowed_hosts" => "[example.com]",
        "build" => return every_field(BUILD_FIELDS, build_sample),
        "plugin" => "p.wasm",
        "routes" => "[{path: /x}]",
        "hooks" => "[{type: auth}]",
        "schedules" => "[{name: n, type: interval, expression: 5m}]",
        other => panic!("no sample value for the new field `{other}`; add one"),
    };
    sample.to_string()
}

fn build_sample(key: &str) -> String {
    let sample = match key {
        "command" => "make",
        "args" => "[-s]",
        "watch" => "['src/*.c']",
        "output" => "out.wasm",
        other => panic!("no sample value for the new field `build.{other}`; add one"),
    };
    sample.to_string()
}

#[test]
fn errors_name_file_and_field_path() {
    let (m, problems) = parse_text("hooks: [{type: auth}, {type: webhook, verification: {header: X-Sig}}]");
    assert!(m.is_none());
    assert_eq!(problems, ["functions/hello/manifest.yaml: hooks[1].verification.secret: required"]);
}

#[test]
fn unknown_fields_are_warnings_with_a_hint() {
    let (m, problems) = parse_text("timout: 5s\nbuild: {command: make, outptu: x.wasm}");
    assert!(m.is_some());
    assert_eq!(
        problems,
        [
            "functions/hello/manifest.yaml: warning: timout: unknown field (did you mean `timeout`?); it is ignored",
            "functions/hello/manifest.yaml: warning: build.outptu: unknown field (did you mean `output`?); it is ignored",
        ]
    );
}

#[test]
fn paths_must_stay_inside_the_function_folder() {
    for text in [
        "build: {command: make, output: ../x.wasm}",
        "plugin: /etc/passwd",
        "build: {command: make, watch: [\"../**\"]}",
    ] {
        let (m, problems) = parse_text(text);
        assert!(m.is_none(), "{text}");
        assert!(problems[0].contains("function folder"), "{problems:?}");
    }
}

#[test]
fn the_name_is_handed_to_discovery_even_when_other_fields_fail() {
    let parsed = parse(Path::new(DIR), Path::new("m.yaml"), "name: stats\ntimeout: never");
    assert_eq!((parsed.manifest, parsed.name.as_deref()), (None, Some("stats")));
    let parsed = parse(Path::new("/nonexistent/reload"), Path::new("m.yaml"), "");
    assert_eq!(parsed.name.as_deref(), Some("reload"), "the folder's name when none is given");
}

#[test]
fn bad_values_are_reported_each() {
    let (m, problems) = parse_text(
        "name: Hello World\nruntime: python\ntimeout: soon\nmemory: 10\nschedules: [{name: x, type: cron, expression: nope}]",
    );
    assert!(m.is_none());
    let fields: Vec<&str> = problems.iter().map(|p| p.split(": ").nth(1).unwrap()).collect();
    assert_eq!(fields, ["name", "runtime", "timeout", "memory", "schedules[0].expression"]);
}

#[test]
fn empty_manifest_takes_defaults_from_the_folder() {
    let (m, problems) = parse_text("");
    assert!(problems.is_empty(), "{problems:?}");
    let m = m.unwrap();
    assert_eq!((m.name.as_str(), m.entrypoint.as_str()), ("hello", "handle"));
}

#[test]
fn invalid_yaml_is_one_error() {
    let (m, problems) = parse_text("name: [unclosed");
    assert!(m.is_none());
    assert!(problems[0].contains("not valid YAML"), "{problems:?}");
}

#[test]
fn host_patterns_are_checked_by_the_runtimes_rule() {
    let (m, problems) =
        parse_text(r#"allowed_hosts: ["**.example.com", "::1", "fe80::*", "a.**.com", "x.com:8080"]"#);
    assert!(m.is_none());
    assert_eq!(
        problems,
        [
            "functions/hello/manifest.yaml: allowed_hosts[3]: invalid pattern \"a.**.com\": `**` may only be the first label, as in **.example.com",
            "functions/hello/manifest.yaml: warning: allowed_hosts[4]: \"x.com:8080\" has a port, scheme or path; entries match host names only, so it never matches",
        ]
    );
}

#[test]
fn messages_repeat_at_most_80_characters_of_a_value() {
    let long = "root:x:0:0:root:/root:/bin/bash;".repeat(200);
    let key = "k".repeat(1000);
    let text = format!(
        "runtime: {long}\ntimeout: {long}\n{key}: 1\nenv: {{{key}: [1]}}\nroutes: [{{path: {long}}}]"
    );
    let (m, problems) = parse_text(&text);
    assert!(m.is_none());
    assert_eq!(problems.len(), 5, "{problems:?}");
    for problem in &problems {
        assert!(problem.len() < 250, "{problem}");
    }
    let start = &long[..80];
    assert_eq!(
        problems[1],
        format!(
            "functions/hello/manifest.yaml: runtime: \"{start}\"… (6400 bytes) is not supported; alyx runs `wasm` functions only"
        )
    );
}
