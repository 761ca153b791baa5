//! `alyx serve`: load the functions folder and serve it over HTTP until
//! SIGINT or SIGTERM (with `dev`, also watch, build and hot-reload; see
//! `cmd/dev.rs`). Shutdown runs in reverse order of start: the dev loop
//! stops (killing builds), then the janitor, then the scheduler (no new
//! runs; those in flight get the grace period), then the front drains
//! within the grace period, then the history file's writer writes what the
//! last calls recorded and stops.

use std::io::Write;
use std::sync::{Arc, mpsc};

use crate::cli::Args;
use crate::config::{self, LogFormat, ServeConfig};
use crate::error::Error;
use crate::janitor::Janitor;
use crate::registry::Registry;
use crate::wiring::{defaults, dev_options, start_history, start_server};

const USAGE: &str = "usage: alyx serve [options]

Serves the functions in a folder over HTTP. Prints `listening on
http://ADDR` once the socket is bound, then loads the functions (see
/health/ready). SIGINT or SIGTERM stops it gracefully.
";

pub fn help() -> String {
    format!("{USAGE}\n{}", config::help())
}

pub fn run(args: Args) -> Result<i32, Error> {
    super::no_positionals(&args)?;
    serve(config::load(&args)?, false)
}

/// Serves until a signal; with `dev`, runs the dev loop beside.
pub fn serve(config: ServeConfig, dev: bool) -> Result<i32, Error> {
    if !config.dir.is_dir() {
        let dir = config.dir.display();
        let fix = "create it, pass --dir DIR, or run `alyx new NAME` to make one with a function";
        return Err(Error::Config(format!("dir: the functions folder {dir} does not exist ({fix})")));
    }
    init_logging(config.log_format);
    let (stop, stopped) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })
    .map_err(|e| Error::Signals(e.to_string()))?;
    // Absolute, so file events (absolute paths) match function folders.
    let dir = config.dir.canonicalize().unwrap_or_else(|_| config.dir.clone());
    let registry = Arc::new(Registry::new(&dir, defaults(&config)));
    let (history, history_writer) = start_history(&config)?;
    let server = start_server(&config, registry.clone(), history)?;
    say(&format!("listening on http://{}", server.addr()));
    let janitor = Janitor::start(registry.clone())?;
    let summary = registry.reload();
    log::info!(
        "{} functions loaded, {} failed, {} problems in {}",
        summary.loaded.len(),
        summary.failed.len(),
        summary.problems,
        config.dir.display()
    );
    let watching = match dev {
        true => Some(crate::dev::start(registry.clone(), &dir, dev_options(&config))?),
        false => None,
    };
    if watching.is_some() {
        say(&format!("watching {} for changes", dir.display()));
    }
    let _ = stopped.recv();
    log::info!("shutting down");
    if let Some(watching) = watching {
        watching.stop(config.grace);
    }
    janitor.stop();
    server.shutdown(config.grace);
    if let Some(writer) = history_writer {
        writer.stop();
    }
    Ok(0)
}

/// A line on stdout, flushed (scripts wait for it).
fn say(line: &str) {
    println!("{line}");
    let _ = std::io::stdout().flush();
}

/// `[2026-11-25T20:11:07.783Z INFO  alyx::registry] message` on stderr, or
/// one JSON object per line (`--log-format json`), filtered by `RUST_LOG`
/// (default `info`). The time is formatted by `units` (env_logger's own
/// timestamps would pull in another crate).
fn init_logging(format: LogFormat) {
    use std::io::Write as _;
    let env = env_logger::Env::default().default_filter_or("info");
    let _ = env_logger::Builder::from_env(env)
        .format(move |out, record| {
            let at = crate::units::format_rfc3339_millis(std::time::SystemTime::now());
            let (level, target) = (record.level(), record.target());
            match format {
                LogFormat::Text => writeln!(out, "[{at} {level:<5} {target}] {}", record.args()),
                LogFormat::Json => {
                    let line = serde_json::json!({
                        "time": at,
                        "level": level.as_str(),
                        "target": target,
                        "message": record.args().to_string(),
                    });
                    writeln!(out, "{line}")
                }
            }
        })
        .try_init();
}
