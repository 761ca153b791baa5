//! Running a function's build: `build.command` with `build.args` in the
//! function folder, stdout and stderr captured together (the last 64 KiB
//! kept), killed with its whole process group after a timeout. Also the
//! `alyx build [NAME...]` command, which runs builds once.

use std::io::Read;
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant};

use crate::discovery;
use crate::manifest::{Build, Manifest};
use crate::units::parse_duration;

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

/// Runs one build in `dir`, waiting at most `timeout`.
pub fn run(build: &Build, dir: &std::path::Path, timeout: Duration) -> BuildResult {
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
    let output = std::thread::spawn(move || read_tail(reader));
    let pid = child.id();
    let (done, exited) = mpsc::channel();
    let waiter = std::thread::spawn(move || {
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
    let _ = waiter.join();
    let output = output.join().unwrap_or_default();
    match status {
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

/// `alyx build [NAME...] [--dir DIR] [--timeout DURATION]`: runs the builds
/// once (all functions with a `build` section by default); exit 1 if one
/// fails, 2 for bad usage.
pub fn main(args: Vec<String>) -> i32 {
    let (dir, timeout, names) = match parse(&args) {
        Ok(parsed) => parsed,
        Err(message) => {
            eprintln!("alyx build: {message}\nusage: alyx build [NAME...] [--dir DIR] [--timeout DURATION]");
            return 2;
        }
    };
    let found = discovery::discover(std::path::Path::new(&dir), crate::http::router::RESERVED_NAMES);
    for problem in &found.problems {
        eprintln!("{problem}");
    }
    let chosen: Vec<&Manifest> =
        found.functions.iter().filter(|m| names.is_empty() || names.contains(&m.name)).collect();
    if let Some(missing) = names.iter().find(|n| !chosen.iter().any(|m| &m.name == *n)) {
        eprintln!("alyx build: no function named {missing:?} in {dir}");
        return 1;
    }
    let mut failures = 0;
    for manifest in chosen {
        let Some(build) = &manifest.build else { continue };
        let result = run(build, &manifest.dir, timeout);
        println!("{}", summary(&manifest.name, &result));
        if !result.ok {
            failures += 1;
            eprint!("{}", result.output);
        }
    }
    i32::from(failures > 0 || found.has_errors())
}

fn parse(args: &[String]) -> Result<(String, Duration, Vec<String>), String> {
    let (mut dir, mut timeout, mut names) = ("./functions".to_string(), DEFAULT_TIMEOUT, Vec::new());
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        match arg.as_str() {
            "--dir" => dir = it.next().ok_or("--dir needs a value")?.clone(),
            "--timeout" => timeout = parse_duration(it.next().ok_or("--timeout needs a value")?)?,
            flag if flag.starts_with('-') => return Err(format!("unknown option {flag}")),
            name => names.push(name.to_string()),
        }
    }
    Ok((dir, timeout, names))
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
