//! One run of the real binary as a user runs it (`alyx call`, `alyx
//! validate`...): its stdout, stderr and exit code. When a test fails, each
//! run prints its command, its folder (kept) and both output streams.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};

use super::TempDir;

/// One finished run of the binary.
pub struct Run {
    command: String,
    /// The folder it ran in.
    folder: PathBuf,
    output: Output,
    /// The fresh folder made for this run alone, if it was.
    _own: Option<TempDir>,
}

impl Run {
    pub fn stdout(&self) -> String {
        String::from_utf8_lossy(&self.output.stdout).into_owned()
    }

    pub fn stderr(&self) -> String {
        String::from_utf8_lossy(&self.output.stderr).into_owned()
    }

    pub fn code(&self) -> Option<i32> {
        self.output.status.code()
    }

    #[track_caller]
    pub fn expect(&self, code: i32) -> &Run {
        assert_eq!(self.code(), Some(code), "exit code of {}", self.command);
        self
    }
}

/// Whatever failed, the report: dropped while the test panics.
impl Drop for Run {
    fn drop(&mut self) {
        if std::thread::panicking() {
            eprintln!(
                "--- the test failed; ran:\n{}\n--- in the folder: {}",
                self.command,
                self.folder.display()
            );
            eprintln!("--- exit: {:?}\n--- stdout:\n{}", self.code(), self.stdout());
            eprintln!("--- stderr:\n{}", self.stderr());
        }
    }
}

/// `alyx ARGS` in a fresh folder of its own, with `stdin` as its input
/// (else an empty one).
pub fn alyx(args: &[&str], stdin: Option<&[u8]>) -> Run {
    let folder = TempDir::new("cli");
    let mut run = run_alyx(&folder, &[], args, stdin);
    run._own = Some(folder);
    run
}

/// `alyx ARGS` in `folder` with extra environment variables.
pub fn alyx_in(folder: &Path, env: &[(&str, &str)], args: &[&str]) -> Run {
    run_alyx(folder, env, args, None)
}

fn run_alyx(folder: &Path, env: &[(&str, &str)], args: &[&str], stdin: Option<&[u8]>) -> Run {
    let mut command = Command::new(env!("CARGO_BIN_EXE_alyx"));
    command.args(args).current_dir(folder).envs(env.iter().copied());
    let mut child = command
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("alyx starts");
    let mut pipe = child.stdin.take().expect("stdin");
    if let Some(bytes) = stdin {
        pipe.write_all(bytes).expect("write stdin");
    }
    drop(pipe);
    let output = child.wait_with_output().expect("alyx finishes");
    let env: String = env.iter().map(|(k, v)| format!("{k}={v} ")).collect();
    let command = format!("{env}alyx {}", args.join(" "));
    Run { command, folder: folder.to_path_buf(), output, _own: None }
}
