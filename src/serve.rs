//! `alyx serve`: load the functions folder and serve it over HTTP until
//! SIGINT or SIGTERM; and `alyx validate`: report every problem in a
//! functions folder without serving it.

use std::io::Write;
use std::path::Path;
use std::sync::{Arc, mpsc};

use crate::config::{self, ServeConfig};
use crate::http::server::Server;
use crate::registry::{Defaults, Registry};
use crate::{dev, discovery};

pub const USAGE: &str = "usage: alyx serve [options]
       alyx dev [options]

Serves the functions in a folder over HTTP. Prints `listening on
http://ADDR` once the socket is bound, then loads the functions (see
/health/ready). SIGINT or SIGTERM stops it gracefully.

`alyx dev` also watches the folder: a change to a function's build.watch
sources runs its build, a new plugin or manifest is loaded beside the
running version and swapped in only if it works, and new or removed
function folders are picked up.
";

/// Entry point of `alyx serve` (and, with `dev`, of `alyx dev`); returns
/// the exit code.
pub fn main(args: Vec<String>, dev: bool) -> i32 {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}\n{}", config::help());
        return 0;
    }
    let config = match config::load(&args) {
        Ok(config) => Arc::new(config),
        Err(message) => {
            eprintln!("alyx serve: {message}\n\nRun `alyx serve --help` for the options.");
            return 2;
        }
    };
    init_logging();
    match run(config, dev) {
        Ok(()) => 0,
        Err(message) => {
            eprintln!("alyx serve: {message}");
            1
        }
    }
}

fn init_logging() {
    let env = env_logger::Env::default().default_filter_or("info");
    let _ = env_logger::Builder::from_env(env).format_timestamp_millis().try_init();
}

fn defaults(config: &ServeConfig) -> Defaults {
    Defaults {
        timeout: config.timeout,
        memory: config.memory,
        instances: config.instances,
        log_level: config.log_level,
        reserved: crate::http::router::RESERVED_NAMES,
    }
}

fn run(config: Arc<ServeConfig>, dev: bool) -> Result<(), String> {
    let (stop, stopped) = mpsc::channel();
    ctrlc::set_handler(move || {
        let _ = stop.send(());
    })
    .map_err(|e| format!("cannot handle signals: {e}"))?;
    // Absolute, so file events (absolute paths) match function folders.
    let dir = config.dir.canonicalize().unwrap_or_else(|_| config.dir.clone());
    let registry = Arc::new(Registry::new(&dir, defaults(&config)));
    let server = Server::start(config.clone(), registry.clone())?;
    println!("listening on http://{}", server.addr());
    let _ = std::io::stdout().flush();
    let summary = registry.reload();
    log::info!(
        "{} functions loaded, {} failed, {} problems in {}",
        summary.loaded.len(),
        summary.failed.len(),
        summary.problems,
        config.dir.display()
    );
    let watching = match dev {
        true => Some(dev_loop(&registry, &dir, &config)?),
        false => None,
    };
    let _ = stopped.recv();
    log::info!("shutting down");
    drop(watching);
    server.shutdown(config.grace);
    Ok(())
}

fn dev_loop(registry: &Arc<Registry>, dir: &Path, config: &ServeConfig) -> Result<dev::DevLoop, String> {
    let options = dev::DevOptions {
        source_delay: config.debounce_sources,
        plugin_delay: config.debounce_plugins,
        build_timeout: config.build_timeout,
    };
    let watching = dev::start(registry.clone(), dir, options)?;
    println!("watching {} for changes", dir.display());
    let _ = std::io::stdout().flush();
    Ok(watching)
}

/// Entry point of `alyx validate [DIR]`: prints every problem (manifests
/// and plugins that do not load) and exits 1 if there is one.
pub fn validate(args: Vec<String>) -> i32 {
    let dir = args.first().map_or("./functions", String::as_str);
    let found = discovery::discover(Path::new(dir), crate::http::router::RESERVED_NAMES);
    let mut problems: Vec<String> = found.problems.iter().map(ToString::to_string).collect();
    let registry = Registry::new(Path::new(dir), defaults(&ServeConfig::default()));
    let summary = registry.reload();
    for name in &summary.failed {
        if let Some(error) = registry.get(name).and_then(|f| f.state().last_error) {
            problems.push(format!("{dir}/{name}: {error}"));
        }
    }
    for problem in &problems {
        println!("{problem}");
    }
    let ok = found.functions.len() - summary.failed.len();
    println!("{ok} functions ok, {} problems", problems.len());
    i32::from(!problems.is_empty())
}
