//! Builds the running parts of a server from a [`ServeConfig`], the same way
//! for `alyx serve`, `alyx dev` and the benchmarks: the registry's defaults,
//! the execution history, the HTTP front with its app (invoker, auth,
//! counters) and the dev loop's timing.

use std::sync::Arc;

use crate::config::ServeConfig;
use crate::dev::DevOptions;
use crate::error::Error;
use crate::history::{FileSettings, History, Writer};
use crate::http::dispatch::App;
use crate::http::front::{self, Front};
use crate::invoke::Invoker;
use crate::registry::{Defaults, Registry};
use crate::tokens::InternalTokens;
use crate::triggers::schedules::{Scheduler, Schedules, SystemClock};

/// What the registry applies where a manifest is silent.
pub fn defaults(config: &ServeConfig) -> Defaults {
    Defaults {
        timeout: config.timeout,
        memory: config.memory,
        instances: config.instances,
        log_level: config.log_level,
        idle_instance_ttl: config.idle_instance_ttl,
        reserved: crate::http::router::RESERVED_NAMES,
    }
}

/// The execution history: `history` records in memory and, with
/// `history_file`, the writer thread that appends them (stopped and joined
/// when the [`Writer`] is dropped).
pub fn start_history(config: &ServeConfig) -> Result<(Arc<History>, Option<Writer>), Error> {
    let Some(path) = &config.history_file else {
        return Ok((Arc::new(History::new(config.history)), None));
    };
    let file = FileSettings { path: path.clone(), max_bytes: config.history_file_max };
    let (history, writer) = History::with_file(config.history, file)?;
    Ok((Arc::new(history), Some(writer)))
}

/// What serves: the HTTP front, the invoker every trigger shares, and the
/// scheduler (unless `schedules` is off).
pub struct Server {
    front: Front,
    pub invoker: Arc<Invoker>,
    scheduler: Option<Scheduler>,
}

impl Server {
    pub fn addr(&self) -> std::net::SocketAddr {
        self.front.addr()
    }

    /// Stops the scheduler (its runs in flight get up to `grace`), then
    /// stops taking requests and waits up to `grace` for those in flight.
    pub fn shutdown(self, grace: std::time::Duration) {
        if let Some(scheduler) = self.scheduler {
            scheduler.stop(grace);
        }
        self.front.shutdown(grace);
    }
}

/// Binds the socket, then starts the HTTP front over `registry`, recording
/// into `history`, and the scheduler (with its state in `data_dir`) unless
/// `schedules` is off; the functions' `alyx_url` defaults to the bound
/// address.
pub fn start_server(
    config: &ServeConfig,
    registry: Arc<Registry>,
    history: Arc<History>,
) -> Result<Server, Error> {
    let bound = front::bind(&config.listen)?;
    let alyx_url = config.public_url.clone().unwrap_or_else(|| format!("http://{}", bound.addr()));
    let tokens = Arc::new(InternalTokens::new());
    let invoker = Arc::new(Invoker::new(registry, tokens, alyx_url, config.queue_depth, history));
    let (schedules, scheduler) = start_schedules(config, &invoker)?;
    let app = App::new(invoker.clone(), config.api_keys.clone(), config.admin_token.clone());
    let front = bound.serve(Arc::new(app.with_schedules(schedules)), front_config(config))?;
    Ok(Server { front, invoker, scheduler })
}

/// The schedules the API lists and runs, and the scheduler thread that
/// fires them, unless `schedules` is off (`--no-schedules`: listed and run
/// by hand only, the data folder untouched).
fn start_schedules(
    config: &ServeConfig,
    invoker: &Arc<Invoker>,
) -> Result<(Arc<Schedules>, Option<Scheduler>), Error> {
    if !config.schedules {
        return Ok((Arc::new(Schedules::by_hand(invoker.clone())), None));
    }
    let schedules =
        Arc::new(Schedules::scheduling(invoker.clone(), &config.data_dir, Arc::new(SystemClock))?);
    let scheduler = Scheduler::start(schedules.clone())?;
    Ok((schedules, Some(scheduler)))
}

/// The front's threads, connection cap and per-connection limits.
pub fn front_config(config: &ServeConfig) -> front::Config {
    front::Config {
        workers: config.workers,
        max_connections: config.max_connections,
        limits: front::Limits {
            max_header_bytes: usize::try_from(config.max_header_bytes).unwrap_or(usize::MAX),
            max_body: config.max_body,
            header_timeout: config.header_timeout,
            body_timeout: config.body_timeout,
            keepalive_timeout: config.keepalive_timeout,
            write_timeout: WRITE_TIMEOUT,
        },
    }
}

/// A client that stops reading is given up on after this long without progress.
const WRITE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(10);

/// The dev loop's debounce delays and build timeout.
pub fn dev_options(config: &ServeConfig) -> DevOptions {
    DevOptions {
        source_delay: config.debounce_sources,
        plugin_delay: config.debounce_plugins,
        build_timeout: config.build_timeout,
    }
}
