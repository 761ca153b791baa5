//! `make bench`, dev-loop part (issue 4): reload latency, from the moment a
//! new plugin is fully written (renamed into place) to the first response
//! served by it, and from a source edit through a trivial build to the
//! first response of the result. p50 and max over 20 reloads each, with
//! the default debounce (plugins 200 ms, sources 100 ms).

use std::io::{BufRead, BufReader, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alyx::config::ServeConfig;
use alyx::dev;
use alyx::registry::Registry;
use alyx::runtime::LogLevel;
use alyx::wiring;

#[path = "support/http_client.rs"]
mod http_client;
#[path = "../tests/common/temp_dir.rs"]
mod temp_dir;

use temp_dir::TempDir;

const RELOADS: usize = 20;
const SCRIPT: &str = include_str!("../testdata/build/word.sh");

fn main() {
    let functions = TempDir::new("bench-reload");
    // Builds of new versions happen outside the watched folder.
    let scratch = TempDir::new("bench-reload-scratch");
    let root = functions.path();
    function(&root.join("plain"), "plain", "", "w0");
    function(
        &root.join("built"),
        "built",
        "build: {command: sh, args: [build.sh], watch: [\"src/**\"], output: plugin.wat}\n",
        "w0",
    );
    std::fs::create_dir_all(scratch.join("src")).expect("scratch");
    scratch.write("build.sh", SCRIPT);
    let root = root.canonicalize().expect("root");
    let (addr, _server, _dev) = start(&root);
    println!(
        "alyx reload latency ({RELOADS} reloads each; default debounce: plugins 200 ms, sources 100 ms)"
    );
    let plain = measure(
        |i| {
            let word = format!("p{i}");
            build_in(&scratch, &word);
            std::fs::rename(scratch.join("plugin.wat"), root.join("plain/plugin.wat")).expect("rename");
            (Instant::now(), word)
        },
        addr,
        "plain",
    );
    report("new plugin written -> first response", &plain, Duration::from_millis(200));
    let built = measure(
        |i| {
            let word = format!("s{i}");
            std::fs::write(root.join("built/src/word.txt"), &word).expect("edit");
            (Instant::now(), word)
        },
        addr,
        "built",
    );
    report("source edit -> build -> first response", &built, Duration::from_millis(100));
}

fn function(dir: &Path, name: &str, build: &str, word: &str) {
    std::fs::create_dir_all(dir.join("src")).expect("function dir");
    std::fs::write(dir.join("build.sh"), SCRIPT).expect("script");
    std::fs::write(dir.join("src/word.txt"), word).expect("word");
    std::fs::write(dir.join("manifest.yaml"), format!("name: {name}\nplugin: plugin.wat\n{build}"))
        .expect("manifest");
    build_in(dir, word);
}

fn build_in(dir: &Path, word: &str) {
    std::fs::write(dir.join("src/word.txt"), word).expect("word");
    let ok = Command::new("sh").arg("build.sh").current_dir(dir).status().expect("sh").success();
    assert!(ok, "build in {}", dir.display());
}

fn start(root: &Path) -> (SocketAddr, alyx::wiring::Server, dev::DevLoop) {
    let config = ServeConfig {
        listen: "127.0.0.1:0".into(),
        dir: root.to_path_buf(),
        instances: 2,
        log_level: LogLevel::Off,
        // The schedule state stays in the bench's folder.
        data_dir: root.join(".alyx"),
        ..ServeConfig::default()
    };
    let registry = Arc::new(Registry::new(root, wiring::defaults(&config)));
    registry.reload();
    let (history, no_file) = wiring::start_history(&config).expect("history");
    assert!(no_file.is_none(), "the default history is in memory only");
    let server = wiring::start_server(&config, registry.clone(), history).expect("server");
    let watching = dev::start(registry, root, wiring::dev_options(&config)).expect("dev loop");
    (server.addr(), server, watching)
}

/// For each reload: `change` makes it (returning when it was complete and
/// the word the new version answers); then the function is called until it
/// answers that word.
fn measure(
    mut change: impl FnMut(usize) -> (Instant, String),
    addr: SocketAddr,
    name: &str,
) -> Vec<Duration> {
    let mut stream = TcpStream::connect(addr).expect("connect");
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let request = format!("POST /api/functions/{name} HTTP/1.1\r\nHost: bench\r\nContent-Length: 0\r\n\r\n");
    (1..=RELOADS)
        .map(|i| {
            let (written, word) = change(i);
            let expected = format!("\"output\":\"{word}\"");
            loop {
                stream.write_all(request.as_bytes()).expect("send");
                if read_body(&mut reader).contains(&expected) {
                    return written.elapsed();
                }
                assert!(written.elapsed() < Duration::from_secs(10), "{name} never served {word}");
            }
        })
        .collect()
}

fn read_body(reader: &mut impl BufRead) -> String {
    String::from_utf8_lossy(&http_client::read_response(reader).1).into_owned()
}

fn report(what: &str, times: &[Duration], debounce: Duration) {
    let mut sorted = times.to_vec();
    sorted.sort();
    let (p50, max) = (sorted[sorted.len() / 2], sorted[sorted.len() - 1]);
    let ms = |d: Duration| d.as_secs_f64() * 1000.0;
    println!(
        "{what:<42} p50 {:>6.1} ms  max {:>6.1} ms   beyond the debounce: p50 {:>5.1} ms  max {:>5.1} ms",
        ms(p50),
        ms(max),
        ms(p50.saturating_sub(debounce)),
        ms(max.saturating_sub(debounce))
    );
}
