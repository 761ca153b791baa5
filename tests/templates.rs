//! The templates of `alyx new`, built and called end to end where their
//! toolchain is on this machine. Where it is not, a test prints a line
//! `SKIPPED: ...` naming what is missing (on stderr, past the harness's
//! capture) and passes: these tests never need the network unless a toolchain does
//! (npm installs the AssemblyScript PDK; without the network it is skipped).

mod common;

use std::path::Path;
use std::process::Command;

use serde_json::{Value, json};

use common::alyx::Folder;

/// `alyx new NAME --lang LANG --dir DIR`.
fn new_function(dir: &Path, name: &str, lang: &str) {
    let out = Command::new(env!("CARGO_BIN_EXE_alyx"))
        .args(["new", name, "--lang", lang, "--dir", dir.to_str().unwrap()])
        .output()
        .unwrap();
    assert!(out.status.success(), "alyx new: {}", String::from_utf8_lossy(&out.stderr));
}

/// Runs `make` in `dir` with `vars`; the output when it failed.
fn make(dir: &Path, vars: &[&str]) -> Result<(), String> {
    let out = Command::new("make")
        .args(vars)
        .current_dir(dir)
        .env("npm_config_fetch_retries", "0")
        .env("npm_config_fetch_timeout", "20000")
        .output()
        .map_err(|e| format!("make: {e}"))?;
    match out.status.success() {
        true => Ok(()),
        false => {
            Err(format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr)))
        }
    }
}

/// Whether `command args` runs and succeeds.
fn runs(command: &str, args: &[&str]) -> bool {
    Command::new(command).args(args).output().is_ok_and(|out| out.status.success())
}

/// Says what was not tested, past the test harness's capture (a write to
/// the stderr handle, not `eprintln!`), so a skip is seen in every run.
fn skip(what: &str) {
    use std::io::Write;
    let _ = writeln!(std::io::stderr(), "SKIPPED: {what}");
}

/// `alyx call FOLDER --input INPUT`: the response envelope.
fn call(folder: &Path, input: &str) -> Value {
    let out = Command::new(env!("CARGO_BIN_EXE_alyx"))
        .args(["call", folder.to_str().unwrap(), "--input", input])
        .output()
        .unwrap();
    let text = String::from_utf8_lossy(&out.stdout);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("not JSON ({e}): {text}"))
}

/// What every template answers: a greeting from the config's word, one
/// log line, and a 422 of its own for an empty name.
#[track_caller]
fn assert_greets(folder: &Path) {
    let answer = call(folder, r#"{"name": "Ada"}"#);
    assert_eq!(answer["output"], json!({"greeting": "Hello, Ada!"}), "{answer}");
    assert_eq!(answer["logs"][0]["message"], "greeting Ada", "{answer}");
    let refused = call(folder, r#"{"name": ""}"#);
    assert_eq!((refused["success"].clone(), refused["error"]["status"].clone()), (json!(false), json!(422)));
}

#[test]
fn the_assemblyscript_template_builds_serves_and_hot_reloads() {
    if !runs("npm", &["--version"]) {
        return skip("assemblyscript template: npm is not installed");
    }
    let folder = Folder::new();
    new_function(&folder.0, "hello", "assemblyscript");
    let dir = folder.0.join("hello");
    // The install is its own target: only its failure (no network) is a
    // skip; the build after it must pass.
    if let Err(output) = make(&dir, &["node_modules/.installed"]) {
        let tail: Vec<&str> = output.lines().rev().take(3).collect();
        return skip(&format!("assemblyscript template: npm could not install its packages: {tail:?}"));
    }
    if let Err(output) = make(&dir, &[]) {
        panic!("assemblyscript template: make failed after npm installed its packages:\n{output}");
    }
    assert_greets(&dir);
    let alyx = folder.dev(&[]);
    alyx.expect_line("watching");
    let (status, body) = alyx.post("/api/functions/hello", r#"{"name": "Ada"}"#);
    assert_eq!((status, body["output"].clone()), (200, json!({"greeting": "Hello, Ada!"})), "{body}");
    assert!(alyx.expect_line("hello (http): ").contains(": ok in "));
    assert_eq!(alyx.expect_line("greeting Ada"), "    info  greeting Ada");
    let (status, _) = alyx.post("/api/functions/hello", r#"{"name": ""}"#);
    assert_eq!(status, 422, "the function's own status");
    let source = dir.join("assembly/index.ts");
    let text =
        std::fs::read_to_string(&source).unwrap().replace("\", \" + name + \"!\"", "\", \" + name + \"!!\"");
    std::fs::write(&source, text).unwrap();
    alyx.expect_line("hello: build ok");
    let (_, body) = alyx.post("/api/functions/hello", r#"{"name": "Ada"}"#);
    assert_eq!(body["output"], json!({"greeting": "Hello, Ada!!"}), "the edit is served");
}

/// Builds `lang`'s template with `vars` and calls it, unless `available`.
fn build_and_call(lang: &str, available: Result<Vec<&str>, String>) {
    let vars = match available {
        Ok(vars) => vars,
        Err(missing) => return skip(&format!("{lang} template: {missing}")),
    };
    let folder = Folder::new();
    new_function(&folder.0, "hello", lang);
    let dir = folder.0.join("hello");
    make(&dir, &vars).unwrap_or_else(|output| panic!("{lang}: make failed:\n{output}"));
    assert_greets(&dir);
}

/// `zig`, else the `ziglang` Python package (`pip install ziglang`).
fn zig() -> Result<&'static str, String> {
    match (runs("zig", &["version"]), runs("python3", &["-m", "ziglang", "version"])) {
        (true, _) => Ok("zig"),
        (false, true) => Ok("python3 -m ziglang"),
        _ => Err("zig is not installed (nor `pip install ziglang`)".into()),
    }
}

#[test]
fn the_c_template_builds_and_answers() {
    build_and_call(
        "c",
        zig().map(|zig| vec![if zig == "zig" { "CC=zig cc" } else { "CC=python3 -m ziglang cc" }]),
    );
}

#[test]
fn the_zig_template_builds_and_answers() {
    build_and_call(
        "zig",
        zig().map(|zig| vec![if zig == "zig" { "ZIG=zig" } else { "ZIG=python3 -m ziglang" }]),
    );
}

#[test]
fn the_rust_template_builds_and_answers() {
    let target = Command::new("rustup").args(["target", "list", "--installed"]).output();
    let has_target =
        target.is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("wasm32-unknown-unknown"));
    let available = match has_target {
        true => Ok(vec![]),
        false => Err(
            "the wasm32-unknown-unknown target is not installed (rustup target add wasm32-unknown-unknown)"
                .into(),
        ),
    };
    build_and_call("rust", available);
}

#[test]
fn the_go_template_builds_and_answers() {
    let available = match (runs("tinygo", &["version"]), runs("go", &["version"])) {
        (true, true) => Ok(vec![]),
        _ => Err("tinygo and go are not both installed".into()),
    };
    build_and_call("go", available);
}

#[test]
fn the_js_template_builds_and_answers() {
    let available = match runs("extism-js", &["--version"]) {
        true => Ok(vec![]),
        false => Err("extism-js is not installed".into()),
    };
    build_and_call("js", available);
}
