//! Running a function's build: `build.command` with `build.args` in the
//! function folder, stdout and stderr captured together (the last 64 KiB
//! kept), killed with its whole process group after a timeout or when the
//! dev loop stops ([`Cancel`]).

use std::collections::HashSet;
use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use crate::sync::lock;

use crate::manifest::Build;

/// How much build output is kept (the tail).
const OUTPUT_CAP: usize = 64 << 10;

/// Default limit on one build.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(300);

/// What a build did.
#[derive(Debug, Clone, PartialEq)]
pub struct BuildResult {
    pub ok: bool,
    pub duration: Duration,
    /// The last [`OUTPUT_CAP`] bytes of stdout and stderr, interleaved.
    pub output: String,
    /// Why it failed, in one line (exit status, timeout, could not start).
    pub failure: Option<String>,
}

/// The process groups of the builds running now, so a stop can kill them
/// (a build runs in its own group, which Ctrl-C does not reach).
#[derive(Debug, Default)]
pub struct Cancel {
    state: Mutex<Running>,
}

#[derive(Debug, Default)]
struct Running {
    stopped: bool,
    groups: HashSet<u32>,
}

impl Cancel {
    /// Kills every running build and refuses new ones.
    pub fn stop(&self) {
        let mut running = lock(&self.state);
        running.stopped = true;
        for group in running.groups.drain() {
            kill_group(group);
        }
    }

    pub fn is_stopped(&self) -> bool {
        lock(&self.state).stopped
    }

    /// Registers a started build; false (and the build is killed) after a stop.
    fn started(&self, group: u32) -> bool {
        let mut running = lock(&self.state);
        if running.stopped {
            kill_group(group);
            return false;
        }
        running.groups.insert(group)
    }

    fn ended(&self, group: u32) {
        lock(&self.state).groups.remove(&group);
    }
}

/// Runs one build in `dir`, waiting at most `timeout`, killed early when
/// `cancel` stops.
pub fn run(build: &Build, dir: &std::path::Path, timeout: Duration, cancel: &Cancel) -> BuildResult {
    let start = Instant::now();
    let failed = |failure: String, output: String| BuildResult {
        ok: false,
        duration: start.elapsed(),
        output,
        failure: Some(failure),
    };
    let (reader, writer) = match std::io::pipe() {
        Ok(pipe) => pipe,
        Err(e) => return failed(format!("cannot create a pipe: {e}"), String::new()),
    };
    let mut command = Command::new(&build.command);
    command.args(&build.args).current_dir(dir).stdin(Stdio::null()).process_group(0);
    let spawned = writer.try_clone().map(|w| command.stdout(w).stderr(writer)).and_then(|c| c.spawn());
    let mut child = match spawned {
        Ok(child) => child,
        Err(e) => return failed(format!("cannot run {:?}: {e}", build.command), String::new()),
    };
    drop(command);
    let pid = child.id();
    cancel.started(pid);
    let output = std::thread::Builder::new().name("build-output".into()).spawn(move || read_tail(reader));
    let (done, exited) = mpsc::channel();
    let waiter = std::thread::Builder::new().name("build-wait".into()).spawn(move || {
        let _ = done.send(child.wait());
    });
    let status = match exited.recv_timeout(timeout) {
        Ok(status) => status.map_err(|e| e.to_string()),
        Err(_) => {
            kill_group(pid);
            let _ = exited.recv();
            Err(format!("timed out after {} s; the build was killed", timeout.as_secs()))
        }
    };
    cancel.ended(pid);
    if let Ok(waiter) = waiter {
        let _ = waiter.join();
    }
    let output = output.ok().and_then(|o| o.join().ok()).unwrap_or_default();
    match status {
        _ if cancel.is_stopped() => failed("cancelled: alyx is stopping".into(), output),
        Ok(s) if s.success() => BuildResult { ok: true, duration: start.elapsed(), output, failure: None },
        Ok(s) => failed(format!("{:?} failed ({s})", build.command), output),
        Err(message) => failed(message, output),
    }
}

/// Reads everything, keeping the last [`OUTPUT_CAP`] bytes.
fn read_tail(mut reader: impl Read) -> String {
    let mut kept = Vec::new();
    let mut buf = [0u8; 8192];
    while let Ok(n) = reader.read(&mut buf) {
        if n == 0 {
            break;
        }
        kept.extend_from_slice(&buf[..n]);
        if kept.len() > 2 * OUTPUT_CAP {
            kept.drain(..kept.len() - OUTPUT_CAP);
        }
    }
    let start = kept.len().saturating_sub(OUTPUT_CAP);
    String::from_utf8_lossy(&kept[start..]).into_owned()
}

/// Kills the build's whole process group (the build ran in its own group,
/// so compilers it started go too).
fn kill_group(pid: u32) {
    let _ = Command::new("kill").args(["-KILL", "--", &format!("-{pid}")]).status();
}

/// The one-line summary the terminal shows for a build.
pub fn summary(name: &str, result: &BuildResult) -> String {
    let seconds = result.duration.as_secs_f64();
    match &result.failure {
        None => format!("{name}: build ok ({seconds:.1}s)"),
        Some(failure) => format!("{name}: build failed ({seconds:.1}s): {failure}"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn build(command: &str, args: &[&str]) -> Build {
        Build {
            command: command.into(),
            args: args.iter().map(|a| a.to_string()).collect(),
            watch: Vec::new(),
            output: "plugin.wasm".into(),
        }
    }

    fn dir() -> std::path::PathBuf {
        std::env::temp_dir()
    }

    fn run(build: &Build, dir: &std::path::Path, timeout: Duration) -> BuildResult {
        super::run(build, dir, timeout, &Cancel::default())
    }

    #[test]
    fn a_stop_kills_a_running_build_and_its_children() {
        let cancel = std::sync::Arc::new(Cancel::default());
        let folder = crate::testutil::TempDir::new("build-cancel");
        let script = "sleep 600 & echo $! > child.pid; echo started > started; wait";
        let build = build("sh", &["-c", script]);
        let (path, stopper) = (folder.path().to_path_buf(), cancel.clone());
        let result = std::thread::scope(|scope| {
            let running = scope.spawn(|| super::run(&build, &path, Duration::from_secs(600), &cancel));
            let started = path.join("started");
            let deadline = Instant::now() + Duration::from_secs(10);
            while !started.exists() && Instant::now() < deadline {
                std::thread::yield_now();
            }
            assert!(started.exists(), "the build did not start");
            stopper.stop();
            running.join().unwrap()
        });
        assert_eq!(result.failure.as_deref(), Some("cancelled: alyx is stopping"));
        let child = std::fs::read_to_string(folder.path().join("child.pid")).unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        while alive(child.trim()) && Instant::now() < deadline {
            std::thread::yield_now();
        }
        assert!(!alive(child.trim()), "the build's child {} survived", child.trim());
    }

    /// A process that exists and is not a zombie (a killed child whose
    /// parent died may wait for a reaper that a container lacks).
    fn alive(pid: &str) -> bool {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        let state = stat.rsplit_once(") ").and_then(|(_, rest)| rest.chars().next());
        state.is_some_and(|s| s != 'Z' && s != 'X')
    }

    #[test]
    fn no_build_starts_after_a_stop() {
        let cancel = Cancel::default();
        cancel.stop();
        let folder = crate::testutil::TempDir::new("build-cancel");
        let r = super::run(
            &build("sh", &["-c", "touch ran; sleep 600"]),
            folder.path(),
            Duration::from_secs(600),
            &cancel,
        );
        assert_eq!(r.failure.as_deref(), Some("cancelled: alyx is stopping"));
    }

    #[test]
    fn a_successful_build_keeps_its_output() {
        let r = run(&build("sh", &["-c", "echo out; echo err >&2"]), &dir(), Duration::from_secs(10));
        assert!(r.ok, "{r:?}");
        assert!(r.output.contains("out") && r.output.contains("err"), "{:?}", r.output);
    }

    #[test]
    fn a_failing_build_says_why() {
        let r = run(&build("sh", &["-c", "echo broken; exit 3"]), &dir(), Duration::from_secs(10));
        assert!(!r.ok);
        assert!(r.failure.as_deref().unwrap().contains("exit status: 3"), "{r:?}");
        assert_eq!(r.output, "broken\n");
        assert!(summary("hello", &r).starts_with("hello: build failed"));
    }

    #[test]
    fn a_missing_command_is_a_failure_not_a_panic() {
        let r = run(&build("/nonexistent/compiler", &[]), &dir(), Duration::from_secs(10));
        assert!(!r.ok);
        assert!(r.failure.unwrap().contains("cannot run"));
    }

    #[test]
    fn a_hanging_build_is_killed_with_its_children() {
        // The shell starts a child that would keep the output pipe open;
        // killing only the shell would leave the reader waiting for it.
        let r = run(&build("sh", &["-c", "sleep 600 & sleep 600"]), &dir(), Duration::from_millis(300));
        assert!(!r.ok);
        assert!(r.failure.unwrap().contains("timed out"));
    }

    #[test]
    fn output_keeps_the_tail() {
        let r = run(
            &build("sh", &["-c", "yes line | head -n 100000; echo last"]),
            &dir(),
            Duration::from_secs(10),
        );
        assert!(r.output.len() <= OUTPUT_CAP);
        assert!(r.output.ends_with("last\n"));
    }
}
