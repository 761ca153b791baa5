//! `alyx dev` with real files: sources edited, builds run (our stand-in
//! compiler `testdata/build/word.sh`), plugins reloaded while requests keep
//! being served. Every wait is on a condition with a deadline.

mod common;

use std::path::Path;
use std::process::Command;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use serde_json::Value;

use common::alyx::{Alyx, Folder};
use common::plugin_bytes;

const MANIFEST: &str =
    "plugin: plugin.wat\nbuild: {command: sh, args: [build.sh], watch: [\"src/**\"], output: plugin.wat}\n";

/// A function `name` whose plugin answers `word`, built once already.
fn word_function(folder: Folder, name: &str, word: &str) -> Folder {
    let folder = folder
        .file(&format!("{name}/src/word.txt"), word)
        .file(&format!("{name}/build.sh"), include_str!("../testdata/build/word.sh"))
        .file(&format!("{name}/manifest.yaml"), &format!("name: {name}\n{MANIFEST}"));
    let built = Command::new("sh").arg("build.sh").current_dir(folder.0.join(name)).status().unwrap();
    assert!(built.success());
    folder
}

fn answer(alyx: &Alyx, name: &str) -> String {
    let (status, body) = alyx.post(&format!("/api/functions/{name}"), "");
    assert_eq!(status, 200, "{body}");
    body["output"].as_str().unwrap_or_default().to_string()
}

fn edit(alyx: &Alyx, path: &str, text: &str) {
    std::fs::write(alyx.folder.0.join(path), text).unwrap();
}

fn builds(dir: &Path) -> usize {
    std::fs::read_to_string(dir.join("builds.log")).unwrap_or_default().lines().count()
}

fn describe(alyx: &Alyx, name: &str) -> Value {
    alyx.get(&format!("/api/functions/{name}")).1
}

#[test]
fn editing_a_source_builds_and_the_next_call_sees_it() {
    let alyx = word_function(Folder::new(), "word", "alpha").dev(&[]);
    alyx.expect_line("watching");
    assert_eq!(answer(&alyx, "word"), "alpha");
    edit(&alyx, "word/src/word.txt", "beta");
    let line = alyx.expect_line("word: build ok");
    assert!(line.contains("→ reloaded (plugin "), "{line}");
    assert_eq!(answer(&alyx, "word"), "beta");
    let build = &describe(&alyx, "word")["last_build"];
    assert_eq!(build["ok"], true, "{build}");
}

#[test]
fn rapid_edits_coalesce_into_one_build() {
    let alyx = word_function(Folder::new(), "word", "alpha").dev(&[]);
    alyx.expect_line("watching");
    for word in ["b1", "b2", "b3", "b4", "b5"] {
        edit(&alyx, "word/src/word.txt", word);
    }
    alyx.expect_line("word: build ok");
    assert_eq!(answer(&alyx, "word"), "b5");
    assert_eq!(builds(&alyx.folder.0.join("word")), 2, "the initial build and exactly one more");
}

#[test]
fn a_failing_build_keeps_the_old_version_serving() {
    let alyx = word_function(Folder::new(), "word", "alpha").dev(&[]);
    alyx.expect_line("watching");
    edit(&alyx, "word/src/word.txt", "FAIL");
    alyx.expect_line("word: build failed");
    assert_eq!(answer(&alyx, "word"), "alpha");
    let build = &describe(&alyx, "word")["last_build"];
    assert_eq!(build["ok"], false);
    assert!(build["output"].as_str().unwrap().contains("refusing to build FAIL"), "{build}");
}

#[test]
fn a_corrupt_plugin_keeps_the_old_version_serving() {
    let alyx = word_function(Folder::new(), "word", "alpha").dev(&[]);
    alyx.expect_line("watching");
    edit(&alyx, "word/plugin.wat", "(module (func (export \"handle\"");
    let line = alyx.expect_line("word: reload failed, still serving plugin");
    assert!(line.contains("not valid WAT"), "{line}");
    assert_eq!(answer(&alyx, "word"), "alpha");
    assert!(describe(&alyx, "word")["last_error"].as_str().is_some());
}

#[test]
fn manifest_edits_apply_and_bad_ones_keep_the_last_good() {
    let alyx = word_function(Folder::new(), "word", "alpha").dev(&[]);
    alyx.expect_line("watching");
    edit(&alyx, "word/manifest.yaml", &format!("name: word\ntimeout: 2s\n{MANIFEST}"));
    alyx.wait_for("the new limit", |a| describe(a, "word")["limits"]["timeout_ms"] == 2000);
    edit(&alyx, "word/manifest.yaml", &format!("name: word\ntimeout: soon\n{MANIFEST}"));
    alyx.wait_for("the problem to be reported", |a| {
        describe(a, "word")["last_error"].as_str().is_some_and(|e| e.contains("timeout"))
    });
    assert_eq!(describe(&alyx, "word")["limits"]["timeout_ms"], 2000, "the last good manifest still applies");
    assert_eq!(answer(&alyx, "word"), "alpha");
}

#[test]
fn function_folders_appear_and_disappear() {
    let alyx = word_function(Folder::new(), "word", "alpha").dev(&[]);
    alyx.expect_line("watching");
    let dir = alyx.folder.0.join("late");
    std::fs::create_dir_all(&dir).unwrap();
    std::fs::write(dir.join("plugin.wat"), plugin_bytes("echo.wat")).unwrap();
    std::fs::write(dir.join("manifest.yaml"), "entrypoint: echo\nplugin: plugin.wat\n").unwrap();
    alyx.wait_for("the new function", |a| describe(a, "late")["status"] == "loaded");
    std::fs::remove_dir_all(&dir).unwrap();
    alyx.wait_for("the function to go", |a| a.get("/api/functions/late").0 == 404);
}

#[test]
fn no_request_fails_during_ten_reloads() {
    let alyx = word_function(Folder::new(), "word", "w0").dev(&[]);
    alyx.expect_line("watching");
    let stop = AtomicBool::new(false);
    let (ok, failed) = std::thread::scope(|s| {
        let client = s.spawn(|| {
            let (mut ok, mut failed) = (0, Vec::new());
            while !stop.load(Ordering::SeqCst) {
                match alyx.post("/api/functions/word", "") {
                    (200, _) => ok += 1,
                    other => failed.push(other),
                }
            }
            (ok, failed)
        });
        for i in 1..=10 {
            let word = format!("w{i}");
            edit(&alyx, "word/src/word.txt", &word);
            alyx.wait_for("the new version", |a| answer(a, "word") == word);
        }
        stop.store(true, Ordering::SeqCst);
        client.join().unwrap()
    });
    assert!(failed.is_empty(), "{failed:?}");
    assert!(ok > 10, "requests kept flowing: {ok}");
}

#[test]
fn an_editor_save_by_temp_file_and_rename_builds_once() {
    let alyx = word_function(Folder::new(), "word", "alpha").dev(&[]);
    alyx.expect_line("watching");
    let dir = alyx.folder.0.join("word");
    std::fs::write(dir.join("src/.word.txt.swp"), "gamma").unwrap();
    std::fs::rename(dir.join("src/.word.txt.swp"), dir.join("src/word.txt")).unwrap();
    alyx.expect_line("word: build ok");
    assert_eq!(answer(&alyx, "word"), "gamma");
    assert_eq!(builds(&dir), 2, "the initial build and exactly one more");
}

/// Builds the dev loop finished for `name`, and whether one runs or waits.
fn build_state(alyx: &Alyx, name: &str) -> (u64, bool) {
    let builds = &describe(alyx, name)["builds"];
    (builds["runs"].as_u64().unwrap_or(0), builds["busy"].as_bool().unwrap_or(true))
}

/// Waits until every source event written before now has been handled:
/// an edit of `probe`'s source goes through the same sources watcher after
/// them, and a key that fell quiet earlier fires no later; so once probe's
/// build is done, any build those events asked for is known (busy), and
/// then we wait for `name` to be idle.
fn settle(alyx: &Alyx, name: &str, round: u32) {
    let (before, _) = build_state(alyx, "probe");
    edit(alyx, "probe/src/word.txt", &format!("probe{round}"));
    alyx.wait_for("the probe's build", |a| build_state(a, "probe") == (before + 1, false));
    alyx.wait_for("the function to be idle", |a| !build_state(a, name).1);
}

#[test]
fn build_outputs_inside_the_watch_globs_do_not_loop() {
    // Everything is watched, so the build's own builds.log, temporary file
    // and plugin look like source changes. The first build's writes are not
    // known yet and cause one more build; from then on they are recognised.
    let manifest = "name: word\nplugin: plugin.wat\nbuild: {command: sh, args: [build.sh], watch: [\"**\"], output: plugin.wat}\n";
    let folder = word_function(Folder::new(), "probe", "p0");
    let alyx = word_function(folder, "word", "alpha").file("word/manifest.yaml", manifest).dev(&[]);
    alyx.expect_line("watching");
    let dir = alyx.folder.0.join("word");
    edit(&alyx, "word/src/word.txt", "delta");
    alyx.expect_line("word: build ok");
    settle(&alyx, "word", 1);
    assert_eq!(build_state(&alyx, "word").0, 2, "the edit's build and one for its unknown outputs");
    assert_eq!(builds(&dir), 3, "with the build before the start");
    edit(&alyx, "word/src/word.txt", "epsilon");
    alyx.wait_for("the new word", |a| answer(a, "word") == "epsilon");
    settle(&alyx, "word", 2);
    assert_eq!(build_state(&alyx, "word").0, 3, "known outputs start no build: exactly one per edit");
}

#[test]
fn stopping_during_a_build_kills_it_and_exits_within_the_grace_period() {
    let script = "sleep 600 &\necho $! > child.pid.tmp && mv child.pid.tmp child.pid\nwait\n";
    let alyx = Folder::new()
        .file("slow/build.sh", script)
        .file("slow/manifest.yaml", &format!("name: slow\n{MANIFEST}"))
        .dev(&["--grace", "2s"]);
    let pid_file = alyx.folder.0.join("slow/child.pid");
    alyx.wait_for("the build to start", |_| pid_file.exists());
    let child = std::fs::read_to_string(&pid_file).unwrap().trim().to_string();
    assert!(alive(&child), "the build runs");
    let stopping = Instant::now();
    let (code, stderr) = alyx.terminate();
    let took = stopping.elapsed();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(took < Duration::from_secs(10), "a 600 s build held the exit for {took:?}");
    let deadline = Instant::now() + Duration::from_secs(10);
    while alive(&child) && Instant::now() < deadline {
        std::thread::yield_now();
    }
    assert!(!alive(&child), "the build's process {child} survived the stop");
    assert!(!stderr.contains("slow: loaded"), "nothing loads after the stop: {stderr}");
}

/// A process that exists and is not a zombie.
fn alive(pid: &str) -> bool {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
    state.is_some_and(|s| s != 'Z' && s != 'X')
}

#[test]
fn functions_without_a_built_plugin_are_built_at_start() {
    let alyx = Folder::new()
        .file("fresh/src/word.txt", "zeta")
        .file("fresh/build.sh", include_str!("../testdata/build/word.sh"))
        .file("fresh/manifest.yaml", &format!("name: fresh\n{MANIFEST}"))
        .dev(&[]);
    alyx.expect_line("fresh: build ok");
    alyx.wait_for("the built plugin", |a| describe(a, "fresh")["status"] == "loaded");
    assert_eq!(answer(&alyx, "fresh"), "zeta");
    let (_, stderr) = alyx.terminate();
    let warned = stderr.lines().any(|line| line.contains("WARN") && line.contains("fresh"));
    assert!(!warned, "a plugin not built yet is no warning: {stderr}");
    assert!(stderr.contains("not built yet: `alyx build fresh`"), "{stderr}");
}

#[test]
fn a_manifest_reload_keeps_its_warnings() {
    let alyx = word_function(Folder::new(), "word", "alpha").dev(&[]);
    alyx.expect_line("watching");
    edit(&alyx, "word/manifest.yaml", &format!("name: word\ntimout: 2s\n{MANIFEST}"));
    let line = alyx.expect_line("timout");
    assert!(line.contains("warning: timout: unknown field (did you mean `timeout`?)"), "{line}");
    let problems = alyx.get("/api/functions").1["problems"].clone();
    let listed = problems.as_array().unwrap().iter().filter_map(Value::as_str).any(|p| p.contains("timout"));
    assert!(listed, "the warning is listed after the reload: {problems}");
    edit(&alyx, "word/manifest.yaml", &format!("name: word\n{MANIFEST}"));
    alyx.wait_for("the warning to go", |a| a.get("/api/functions").1["problems"] == serde_json::json!([]));
}

#[test]
fn every_call_prints_a_line_with_its_logs_and_failures_their_code() {
    let alyx = Folder::new()
        .function("talk", "logs.wat", "log", "")
        .function("fails", "errors.wat", "error_rc1", "")
        .dev(&[]);
    alyx.expect_line("watching");
    alyx.post("/api/functions/talk", "");
    let line = alyx.expect_line("talk (http): ");
    assert!(line.starts_with("talk (http): ok in ") && line.ends_with(" ms"), "{line}");
    assert_eq!(alyx.expect_line("info line"), "    info  info line");
    assert_eq!(alyx.expect_line("warn line"), "    warn  warn line");
    alyx.post("/api/functions/fails", "");
    let line = alyx.expect_line("fails (http): ");
    assert!(
        line.starts_with("fails (http): error in ") && line.ends_with(": PLUGIN_ERROR: bad input"),
        "{line}"
    );
}

#[test]
fn a_function_added_while_running_is_built_like_those_at_start() {
    let alyx = word_function(Folder::new(), "word", "alpha").dev(&[]);
    alyx.expect_line("watching");
    let dir = alyx.folder.0.join("late");
    std::fs::create_dir_all(dir.join("src")).unwrap();
    std::fs::write(dir.join("src/word.txt"), "eta").unwrap();
    std::fs::write(dir.join("build.sh"), include_str!("../testdata/build/word.sh")).unwrap();
    std::fs::write(dir.join("manifest.yaml"), format!("name: late\n{MANIFEST}")).unwrap();
    alyx.expect_line("late: build ok");
    alyx.wait_for("the built plugin", |a| describe(a, "late")["status"] == "loaded");
    assert_eq!(answer(&alyx, "late"), "eta");
}
