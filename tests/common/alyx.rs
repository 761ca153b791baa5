//! The real `alyx serve`/`alyx dev` for integration tests: a functions
//! folder built per test, the binary started on a free port in it, an HTTP
//! client, and waits on conditions with deadlines. When a test fails, the
//! command, the folder (kept) and both output streams of alyx are printed.

use std::io::{BufRead, BufReader, Read};
use std::process::{Child, ChildStderr, ChildStdout, Command, Stdio};
use std::sync::{Mutex, mpsc};
use std::time::{Duration, Instant};

use serde_json::Value;

use super::{TempDir, plugin_bytes};

/// A functions folder built for one test; kept if the test fails.
pub struct Folder(pub TempDir, pub Vec<(String, String)>);

impl Folder {
    pub fn new() -> Folder {
        Folder(TempDir::new("server"), Vec::new())
    }

    /// A function named `name` running `export` of a test plugin.
    pub fn function(self, name: &str, plugin: &str, export: &str, extra: &str) -> Folder {
        self.0.write(&format!("{name}/plugin.wat"), plugin_bytes(plugin));
        let manifest = format!("name: {name}\nentrypoint: {export}\nplugin: plugin.wat\n{extra}");
        self.0.write(&format!("{name}/manifest.yaml"), manifest);
        self
    }

    /// An environment variable for the alyx process.
    pub fn env(mut self, name: &str, value: &str) -> Folder {
        self.1.push((name.to_string(), value.to_string()));
        self
    }

    pub fn file(self, path: &str, text: &str) -> Folder {
        self.0.write(path, text);
        self
    }

    pub fn serve(self, flags: &[&str]) -> Alyx {
        Alyx::start(self, "serve", flags, None)
    }

    /// `alyx serve` with its soft and hard open-file limits at `limit`.
    pub fn serve_with_open_files(self, limit: u64, flags: &[&str]) -> Alyx {
        Alyx::start(self, "serve", flags, Some(limit))
    }

    /// `alyx dev` on this folder.
    pub fn dev(self, flags: &[&str]) -> Alyx {
        Alyx::start(self, "dev", flags, None)
    }
}

/// A running `alyx serve`, killed on drop.
pub struct Alyx {
    child: Child,
    /// The command line, as a user would type it.
    command: String,
    pub base: String,
    pub folder: Folder,
    /// Lines alyx printed to stdout after the address.
    pub lines: Mutex<mpsc::Receiver<String>>,
    /// All of stdout, once alyx has closed it.
    stdout: Mutex<mpsc::Receiver<String>>,
    /// All of stderr, once alyx has closed it.
    stderr: Mutex<mpsc::Receiver<String>>,
}

impl Alyx {
    fn start(folder: Folder, mode: &str, flags: &[&str], open_files: Option<u64>) -> Alyx {
        let dir = folder.0.to_str().unwrap().to_string();
        let mut args = vec![mode, "--listen", "127.0.0.1:0", "--dir", &dir, "--workers", "8"];
        args.extend_from_slice(flags);
        let mut command = Command::new(env!("CARGO_BIN_EXE_alyx"));
        if let Some(limit) = open_files {
            // `prlimit` (util-linux) sets both limits, so alyx cannot raise them.
            command = Command::new("prlimit");
            command.arg(format!("--nofile={limit}:{limit}")).arg(env!("CARGO_BIN_EXE_alyx"));
        }
        let mut child = command
            .args(&args)
            .env("RUST_LOG", "info")
            .envs(folder.1.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .current_dir(&folder.0)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("alyx starts");
        let (lines, stdout) = read_lines(child.stdout.take().unwrap());
        let stderr = read_all(child.stderr.take().unwrap());
        let command = format!("RUST_LOG=info alyx {}", args.join(" "));
        let (lines, stdout, stderr) = (Mutex::new(lines), Mutex::new(stdout), Mutex::new(stderr));
        // Built before the first wait, so a failing start is reported too.
        let mut alyx = Alyx { child, command, base: String::new(), folder, lines, stdout, stderr };
        let first = alyx.lines.lock().unwrap().recv_timeout(Duration::from_secs(20));
        let first = first.expect("alyx prints its address");
        alyx.base = first.strip_prefix("listening on ").expect("the first line is the address").to_string();
        alyx.wait_for("the functions to load", |a| a.get("/health/ready").0 == 200);
        alyx
    }

    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.base)
    }

    /// The address alyx listens on.
    pub fn addr(&self) -> std::net::SocketAddr {
        self.base.trim_start_matches("http://").parse().expect("an address")
    }

    /// The process id of alyx.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Sends `signal` (e.g. `TERM`) without waiting.
    pub fn signal(&self, signal: &str) {
        let pid = self.child.id().to_string();
        Command::new("kill").args([&format!("-{signal}"), &pid]).status().expect("kill runs");
    }

    /// Waits up to `within` for alyx to exit; its exit code.
    pub fn wait_exit(&mut self, within: Duration) -> Option<i32> {
        let deadline = Instant::now() + within;
        loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                return status.code();
            }
            assert!(Instant::now() < deadline, "alyx did not exit within {within:?}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    /// The next stdout line containing `text`, waiting at most 20 s.
    #[track_caller]
    pub fn expect_line(&self, text: &str) -> String {
        let deadline = Instant::now() + Duration::from_secs(20);
        let lines = self.lines.lock().unwrap();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match lines.recv_timeout(left) {
                Ok(line) if line.contains(text) => return line,
                Ok(_) => {}
                Err(_) => panic!("alyx printed no line containing {text:?}"),
            }
        }
    }

    /// Polls `ready` until it holds, for at most 10 s.
    #[track_caller]
    pub fn wait_for(&self, what: &str, ready: impl Fn(&Alyx) -> bool) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !ready(self) {
            assert!(Instant::now() < deadline, "timed out waiting for {what}");
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    pub fn request(
        &self,
        method: &str,
        path: &str,
        headers: &[(&str, &str)],
        body: &[u8],
    ) -> (u16, Vec<(String, String)>, Vec<u8>) {
        let agent: ureq::Agent = ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(30)))
            .build()
            .into();
        let mut builder = ureq::http::Request::builder().method(method).uri(self.url(path));
        for (k, v) in headers {
            builder = builder.header(*k, *v);
        }
        let mut response = agent.run(builder.body(body.to_vec()).unwrap()).expect("the server answers");
        let status = response.status().as_u16();
        let headers = response
            .headers()
            .iter()
            .map(|(k, v)| (k.as_str().to_string(), v.to_str().unwrap_or("").to_string()))
            .collect();
        let body = response.body_mut().with_config().limit(64 << 20).read_to_vec().unwrap();
        (status, headers, body)
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let (status, _, body) = self.request("GET", path, &[], b"");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    pub fn post(&self, path: &str, body: &str) -> (u16, Value) {
        let (status, _, body) = self.request("POST", path, &[], body.as_bytes());
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    pub fn post_auth(&self, path: &str, token: &str) -> (u16, Value) {
        let bearer = format!("Bearer {token}");
        let (status, _, body) = self.request("POST", path, &[("Authorization", &bearer)], b"");
        (status, serde_json::from_slice(&body).unwrap_or(Value::Null))
    }

    /// Kills alyx with SIGKILL (no shutdown at all: a crash) and starts
    /// `alyx serve` again in the same folder with `flags`.
    pub fn crash_and_restart(mut self, flags: &[&str]) -> Alyx {
        self.signal("KILL");
        let _ = self.child.wait();
        let folder = std::mem::replace(&mut self.folder, Folder(TempDir::new("unused"), Vec::new()));
        drop(self);
        Alyx::start(folder, "serve", flags, None)
    }

    /// SIGTERM; waits for the exit and returns its code and stderr.
    pub fn terminate(mut self) -> (Option<i32>, String) {
        self.stop()
    }

    /// Stops alyx (SIGTERM, waiting for a clean exit) and gives its folder
    /// back, to be served again with the same `./.alyx` data folder.
    pub fn stop_keeping_folder(mut self) -> Folder {
        let (code, stderr) = self.stop();
        assert_eq!(code, Some(0), "alyx stopped cleanly:\n{stderr}");
        std::mem::replace(&mut self.folder, Folder::new())
    }

    fn stop(&mut self) -> (Option<i32>, String) {
        let pid = self.child.id().to_string();
        Command::new("kill").args(["-TERM", &pid]).status().expect("kill runs");
        let deadline = Instant::now() + Duration::from_secs(20);
        let status = loop {
            if let Some(status) = self.child.try_wait().unwrap() {
                break status;
            }
            assert!(Instant::now() < deadline, "alyx did not exit after SIGTERM");
            std::thread::sleep(Duration::from_millis(10));
        };
        let stderr = self.stderr.lock().unwrap().recv_timeout(Duration::from_secs(5)).unwrap_or_default();
        (status.code(), stderr)
    }
}

impl Drop for Alyx {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        if std::thread::panicking() {
            let stream = |rx: &Mutex<mpsc::Receiver<String>>| {
                let rx = rx.lock().unwrap_or_else(|e| e.into_inner());
                rx.recv_timeout(Duration::from_secs(2)).unwrap_or_else(|_| "(not captured)\n".into())
            };
            let (stdout, stderr) = (stream(&self.stdout), stream(&self.stderr));
            let (command, folder) = (&self.command, self.folder.0.display());
            eprintln!("--- the test failed; alyx ran as:\n{command}\n--- in the folder: {folder}");
            eprintln!("--- alyx stdout:\n{stdout}--- alyx stderr:\n{stderr}");
        }
    }
}

/// Forwards each stdout line as it comes, and all of stdout at its end.
fn read_lines(stdout: ChildStdout) -> (mpsc::Receiver<String>, mpsc::Receiver<String>) {
    let (line_tx, lines) = mpsc::channel();
    let (all_tx, all) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        for line in BufReader::new(stdout).lines().map_while(Result::ok) {
            text.push_str(&line);
            text.push('\n');
            let _ = line_tx.send(line);
        }
        let _ = all_tx.send(text);
    });
    (lines, all)
}

/// All of stderr, sent when alyx closes it.
fn read_all(mut stderr: ChildStderr) -> mpsc::Receiver<String> {
    let (tx, all) = mpsc::channel();
    std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        let _ = tx.send(text);
    });
    all
}
