//! The commands as a user runs them: the real binary in a fresh folder, its
//! stdout, stderr and exit code. When a test fails, each
//! run prints its command, its folder (kept) and both output streams.

mod common;

use common::run::{Run, alyx, alyx_in};
use common::{TempDir, plugin_path};
use serde_json::Value;

fn call(file: &str, export: &str, extra: &[&str]) -> Run {
    let path = plugin_path(file);
    let mut args = vec!["call", path.as_str(), export];
    args.extend_from_slice(extra);
    alyx(&args, None)
}

#[test]
fn call_prints_the_output() {
    let run = call("count_vowels.wat", "count_vowels", &["--input", "Hello, World!"]);
    run.expect(0);
    assert_eq!(run.stdout(), r#"{"count":3,"total":3,"vowels":"aeiouAEIOU"}"#);
}

#[test]
fn loop_calls_one_instance_and_prints_a_line_each() {
    let run = call("vars.wat", "incr", &["--loop", "3"]);
    run.expect(0);
    assert_eq!(run.stdout(), "1\n2\n3\n");
}

#[test]
fn input_from_stdin_and_from_a_file() {
    let path = plugin_path("echo.wat");
    let run = alyx(&["call", &path, "echo", "--stdin"], Some(b"from standard input"));
    assert_eq!(run.expect(0).stdout(), "from standard input");
    let dir = TempDir::new("cli-input");
    let file = dir.write("input.txt", "from a file!");
    let run = alyx_in(&dir, &[], &["call", &path, "echo", "--input-file", file.to_str().unwrap()]);
    assert_eq!(run.expect(0).stdout(), "from a file!");
}

#[test]
fn config_flags_reach_the_plugin() {
    let run = call("config.wat", "get", &["--config", "name=alyx", "--input", "name"]);
    assert_eq!(run.expect(0).stdout(), "alyx");
}

#[test]
fn plugin_logs_go_to_stderr() {
    let run = call("logs.wat", "log", &["--log-level", "warn"]);
    run.expect(0);
    assert_eq!(run.stdout(), "logged");
    assert_eq!(run.stderr(), "warn: warn line\nerror: error line\n");
}

#[test]
fn exit_code_is_the_plugins_own() {
    let run = call("wasi.wat", "exit", &["--input", "3"]);
    run.expect(3);
    assert!(run.stderr().contains("exit"), "{}", run.stderr());
}

#[test]
fn exit_zero_after_an_error_still_fails() {
    let run = call("wasi.wat", "exit_after_error", &[]);
    run.expect(1);
    assert_eq!(run.stderr(), "error: exit: exited with code 0: dying\n");
}

#[test]
fn failures_print_kind_and_message() {
    let run = call("errors.wat", "error_rc1", &[]);
    run.expect(1);
    assert_eq!(run.stderr(), "error: plugin_error: bad input\n");
    let run = call("loop.wat", "spin", &["--fuel", "100000"]);
    run.expect(1);
    assert!(run.stderr().starts_with("error: timeout:"), "{}", run.stderr());
}

#[test]
fn memory_max_takes_pages() {
    let run = call("memory.wat", "grow", &["--memory-max", "2", "--input", "5"]);
    run.expect(1);
    assert!(run.stderr().contains("memory_limit"), "{}", run.stderr());
    call("memory.wat", "grow", &["--memory-max", "8MiB", "--input", "5"]).expect(0);
}

#[test]
fn linked_modules_from_the_command_line() {
    let lib = format!("lib={}", plugin_path("lib.wat"));
    let run = call("main_linked.wat", "handle", &["--link", &lib, "--input", "ada"]);
    assert_eq!(run.expect(0).stdout(), "Ada");
}

#[test]
fn bad_usage_exits_2_with_help() {
    let run = alyx(&["call", "only-one-argument"], None);
    run.expect(2);
    assert!(run.stderr().contains("usage: alyx call"), "{}", run.stderr());
    alyx(&["frobnicate"], None).expect(2);
}

#[test]
fn unreadable_plugin_is_a_clear_error() {
    let run = alyx(&["call", "/nonexistent/x.wasm", "run"], None);
    run.expect(1);
    assert!(run.stderr().contains("cannot read /nonexistent/x.wasm"), "{}", run.stderr());
}

#[test]
fn load_errors_are_reported_as_such() {
    let run = call("bad_import.wat", "handle", &[]);
    run.expect(1);
    assert!(run.stderr().starts_with("error: load_error:"), "{}", run.stderr());
}

#[test]
fn build_runs_manifest_builds_and_fails_when_one_fails() {
    let dir = TempDir::new("cli-build");
    dir.write(
        "good/manifest.yaml",
        "build: {command: sh, args: [-c, 'cp src.wat plugin.wat'], output: plugin.wat}\n",
    );
    dir.write("good/src.wat", "(module)");
    dir.write(
        "bad/manifest.yaml",
        "build: {command: sh, args: [-c, 'echo compile error; exit 1'], output: plugin.wasm}\n",
    );
    let root = dir.to_str().unwrap();
    let run = alyx_in(&dir, &[], &["build", "--dir", root, "good"]);
    run.expect(0);
    assert!(run.stdout().starts_with("good: build ok ("), "{}", run.stdout());
    assert!(dir.join("good/plugin.wat").exists(), "the build really ran in the function folder");
    let run = alyx_in(&dir, &[], &["build", "--dir", root]);
    run.expect(1);
    assert!(run.stdout().contains("bad: build failed"), "{}", run.stdout());
    assert!(run.stderr().contains("compile error"), "the failing output is shown: {}", run.stderr());
    alyx_in(&dir, &[], &["build", "--dir", root, "nope"]).expect(1);
}

#[test]
fn every_command_has_its_own_help_also_through_alyx_help() {
    for command in ["new", "serve", "dev", "validate", "build", "call"] {
        let own = alyx(&[command, "--help"], None);
        own.expect(0);
        assert!(own.stdout().starts_with(&format!("usage: alyx {command}")), "{}", own.stdout());
        let through_help = alyx(&["help", command], None);
        assert_eq!(through_help.expect(0).stdout(), own.stdout());
    }
    alyx(&["help", "nope"], None).expect(2);
}

#[test]
fn the_manifest_reference_is_printed_by_its_command_and_by_help() {
    let reference = alyx(&["manifest"], None);
    let text = reference.expect(0).stdout();
    for field in ["name:", "entrypoint:", "allowed_hosts:", "build:", "schedules:"] {
        assert!(text.lines().any(|line| line.starts_with(field)), "{field} in {text}");
    }
    assert_eq!(alyx(&["help", "manifest"], None).expect(0).stdout(), text);
    assert!(alyx(&["manifest", "--help"], None).expect(0).stdout().starts_with("usage: alyx manifest"));
}

#[test]
fn usage_errors_exit_2_and_name_the_command() {
    let cases: [(&[&str], &str); 4] = [
        (&["dev", "--bogus", "1"], "alyx dev: unknown option --bogus"),
        (&["build", "--timeout"], "alyx build: --timeout needs a value"),
        (&["validate", "a", "b"], "alyx validate: unexpected argument \"b\""),
        (&["serve", "--workers", "0"], "alyx serve: workers: must be a whole number above 0"),
    ];
    for (args, message) in cases {
        let run = alyx(args, None);
        run.expect(2);
        assert!(run.stderr().starts_with(message), "{}", run.stderr());
    }
}

#[test]
fn validate_reads_the_same_configuration_as_serve() {
    let dir = TempDir::new("cli-validate-config");
    std::fs::create_dir_all(dir.join("other")).unwrap();
    dir.write("fns/bad/manifest.yaml", "timeout: soon\n");
    dir.write("alyx.yaml", "dir: fns\n");
    let run = alyx_in(&dir, &[], &["validate"]);
    run.expect(1);
    assert!(run.stdout().contains("bad/manifest.yaml: timeout:"), "the dir from alyx.yaml: {}", run.stdout());
    let run = alyx_in(&dir, &[("ALYX_DIR", "other")], &["validate"]);
    assert_eq!(
        run.expect(0).stdout(),
        "0 functions ok, 0 errors, 0 warnings\n",
        "the environment beats the file"
    );
    dir.write("alyx.yaml", "wrokers: 2\n");
    let run = alyx_in(&dir, &[], &["validate"]);
    run.expect(2);
    assert!(
        run.stderr().starts_with("alyx validate: alyx.yaml: wrokers: unknown setting"),
        "{}",
        run.stderr()
    );
}

#[test]
fn validate_fails_on_errors_and_on_warnings_only_when_strict() {
    let dir = TempDir::new("cli-validate-warnings");
    dir.write("fns/echo/plugin.wat", std::fs::read(plugin_path("echo.wat")).unwrap());
    dir.write("fns/echo/manifest.yaml", "entrypoint: echo\nplugin: plugin.wat\ntimout: 2s\n");
    let run = alyx_in(&dir, &[], &["validate", "fns"]);
    let lines: Vec<String> = run.expect(0).stdout().lines().map(String::from).collect();
    assert!(
        lines[0].ends_with("warning: timout: unknown field (did you mean `timeout`?); it is ignored"),
        "{lines:?}"
    );
    assert_eq!(lines[1], "1 function ok, 0 errors, 1 warning");
    alyx_in(&dir, &[], &["validate", "fns", "--strict"]).expect(1);
    dir.write("fns/bad/manifest.yaml", "timeout: soon\n");
    let run = alyx_in(&dir, &[], &["validate", "fns"]);
    assert!(run.expect(1).stdout().ends_with("1 function ok, 1 error, 1 warning\n"), "{}", run.stdout());
}

// --- alyx call FUNCTION ------------------------------------------------------

/// A functions folder with `name` running `export` of a test plugin.
fn function(dir: &TempDir, name: &str, plugin: &str, export: &str, extra: &str) {
    dir.write(&format!("functions/{name}/plugin.wat"), std::fs::read(plugin_path(plugin)).unwrap());
    let manifest = format!("entrypoint: {export}\nplugin: plugin.wat\n{extra}");
    dir.write(&format!("functions/{name}/manifest.yaml"), manifest);
}

fn envelope(run: &Run) -> serde_json::Value {
    serde_json::from_str(&run.stdout()).unwrap_or_else(|e| panic!("not JSON ({e}): {}", run.stdout()))
}

#[test]
fn call_a_function_by_name_or_folder_with_its_envelope() {
    let dir = TempDir::new("cli-call-function");
    function(&dir, "echo", "echo.wat", "echo", "env: {STAGE: test}\n");
    let run = alyx_in(&dir, &[], &["call", "echo", "--input", r#"{"name": "Ada"}"#]);
    let seen = &envelope(run.expect(0))["output"];
    assert_eq!((seen["function"].clone(), seen["input"]["name"].clone()), ("echo".into(), "Ada".into()));
    assert_eq!(
        (seen["context"]["env"]["STAGE"].clone(), seen["context"]["auth"].clone()),
        ("test".into(), Value::Null)
    );
    let other = TempDir::new("cli-call-elsewhere");
    let folder = dir.join("functions/echo");
    let run = alyx_in(&other, &[], &["call", folder.to_str().unwrap()]);
    assert_eq!(envelope(run.expect(0))["output"]["input"], Value::Null, "a folder, and no input is null");
    let functions = dir.join("functions");
    let run = alyx_in(&other, &[], &["call", "echo", "--dir", functions.to_str().unwrap(), "--input", "[1]"]);
    assert_eq!(envelope(run.expect(0))["output"]["input"], serde_json::json!([1]), "a name in --dir");
}

#[test]
fn call_a_function_applies_its_config_and_allowed_hosts() {
    let dir = TempDir::new("cli-call-manifest");
    function(&dir, "configured", "respond.wat", "respond", "config: {response: '{\"greeting\": \"hi\"}'}\n");
    let run = alyx_in(&dir, &[], &["call", "configured"]);
    assert_eq!(envelope(run.expect(0))["output"], serde_json::json!({"greeting": "hi"}));
    // fetch GETs <alyx_url>/health: 127.0.0.1, which only the second allows.
    let fetch = std::fs::read_to_string(format!(
        "{}/testdata/functions/fetch/plugin.wat",
        env!("CARGO_MANIFEST_DIR")
    ));
    dir.write("functions/denied/plugin.wat", fetch.as_ref().unwrap());
    dir.write(
        "functions/denied/manifest.yaml",
        "entrypoint: handle\nplugin: plugin.wat\nallowed_hosts: [localhost]\n",
    );
    dir.write("functions/allowed/plugin.wat", fetch.as_ref().unwrap());
    dir.write(
        "functions/allowed/manifest.yaml",
        "entrypoint: handle\nplugin: plugin.wat\nallowed_hosts: [127.0.0.1]\ntimeout: 5s\n",
    );
    let denied = alyx_in(&dir, &[], &["call", "denied"]);
    let message = envelope(denied.expect(1))["error"]["message"].as_str().unwrap_or_default().to_string();
    assert!(message.contains("is not in allowed_hosts"), "{message}");
    let allowed = alyx_in(&dir, &[], &["call", "allowed"]);
    let body = envelope(&allowed);
    assert!(
        !body["error"]["message"].as_str().unwrap_or_default().contains("is not in allowed_hosts"),
        "{body}"
    );
}

#[test]
fn call_a_function_refuses_plugin_flags_and_unknown_names() {
    let dir = TempDir::new("cli-call-refusals");
    function(&dir, "echo", "echo.wat", "echo", "");
    let run = alyx_in(&dir, &[], &["call", "echo", "--config", "a=b"]);
    assert!(run.expect(2).stderr().starts_with("alyx call: --config is for plugins"), "{}", run.stderr());
    let run = alyx_in(&dir, &[], &["call", "nothere"]);
    assert!(run.expect(2).stderr().contains("no function \"nothere\" in \"functions\""), "{}", run.stderr());
    dir.write("functions/broken/manifest.yaml", "timeout: soon\n");
    let run = alyx_in(&dir, &[], &["call", "broken"]);
    assert!(run.expect(1).stderr().contains("timeout:"), "{}", run.stderr());
}

#[test]
fn serve_and_dev_refuse_a_functions_folder_that_does_not_exist() {
    let dir = TempDir::new("cli-no-folder");
    for command in ["serve", "dev"] {
        let run = alyx_in(&dir, &[], &[command, "--dir", "nowhere", "--listen", "127.0.0.1:0"]);
        let expected = format!("alyx {command}: dir: the functions folder nowhere does not exist");
        assert!(run.expect(2).stderr().starts_with(&expected), "{}", run.stderr());
    }
}

// --- alyx new ------------------------------------------------------------------

const LANGS: [&str; 6] = ["assemblyscript", "rust", "go", "js", "c", "zig"];

#[test]
fn new_writes_a_function_folder_that_validates_for_every_language() {
    for lang in LANGS {
        let dir = TempDir::new("cli-new");
        let run = alyx_in(&dir, &[], &["new", "greeter", "--lang", lang]);
        assert!(
            run.expect(0).stdout().starts_with(&format!("created functions/greeter ({lang})")),
            "{}",
            run.stdout()
        );
        let manifest = std::fs::read_to_string(dir.join("functions/greeter/manifest.yaml")).unwrap();
        assert!(manifest.contains("build: {command: make"), "{lang}: {manifest}");
        assert!(
            dir.join("functions/greeter/Makefile").is_file()
                && dir.join("functions/greeter/README.md").is_file()
        );
        let run = alyx_in(&dir, &[], &["validate"]);
        let out = run.expect(0).stdout();
        assert!(
            out.ends_with("1 function ok, 0 errors, 1 warning\n"),
            "{lang}: not built yet is a warning only: {out}"
        );
        assert!(out.contains("not built yet"), "{lang}: {out}");
    }
}

#[test]
fn new_lists_its_languages_and_refuses_what_it_cannot_write() {
    let list = alyx(&["new", "--list"], None);
    let text = list.expect(0).stdout();
    for lang in LANGS {
        assert!(text.lines().any(|l| l.starts_with(lang) && l.contains("needs")), "{lang}: {text}");
    }
    let dir = TempDir::new("cli-new-refusals");
    let refused = |args: &[&str], message: &str| {
        let run = alyx_in(&dir, &[], args);
        assert!(run.expect(2).stderr().starts_with(message), "{}", run.stderr());
    };
    refused(&["new", "x", "--lang", "cobol"], "alyx new: no template for \"cobol\"");
    refused(&["new", "Bad Name"], "alyx new: \"Bad Name\" cannot name a function");
    refused(&["new", "stats"], "alyx new: \"stats\" is reserved");
    alyx_in(&dir, &[], &["new", "twice"]).expect(0);
    refused(&["new", "twice"], "alyx new: functions/twice exists already");
}
