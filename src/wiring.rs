//! Builds the running parts of a server from a [`ServeConfig`], the same way
//! for `alyx serve`, `alyx dev` and the benchmarks: the registry's defaults,
//! the execution history, the HTTP front with its app (invoker, auth,
//! counters) and the dev loop's timing.

use std::sync::Arc;

use crate::config::ServeConfig;
use crate::data_dir::DataDir;
use crate::dev::DevOptions;
use crate::error::Error;
use crate::history::{FileSettings, History, Writer};
use crate::http::dispatch::App;
use crate::http::front::{self, Front};
use crate::invoke::Invoker;
use crate::registry::{Defaults, Registry};
use crate::tokens::InternalTokens;
use crate::triggers::events::{self, Events};
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

/// What serves: the HTTP front, the invoker every trigger shares, the
/// events part, and the scheduler (unless `schedules` is off).
pub struct Server {
    front: Front,
    events: Arc<Events>,
    pub invoker: Arc<Invoker>,
    /// Locked until the server is gone.
    _data: DataDir,
    scheduler: Option<Scheduler>,
}

impl Server {
    pub fn addr(&self) -> std::net::SocketAddr {
        self.front.addr()
    }

    /// The events part: its counts, for benchmarks and tests.
    pub fn events(&self) -> &Events {
        &self.events
    }

    /// Stops the scheduler (its runs in flight get up to `grace`), then
    /// stops taking requests and waits up to `grace` for those in flight,
    /// then stops delivering events (deliveries being made finish; the
    /// rest wait in the journal for the next start).
    pub fn shutdown(self, grace: std::time::Duration) {
        if let Some(scheduler) = self.scheduler {
            scheduler.stop(grace);
        }
        self.front.shutdown(grace);
        self.events.stop();
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
    let data = DataDir::open(&config.data_dir)?;
    let bound = front::bind(&config.listen)?;
    let alyx_url = config.public_url.clone().unwrap_or_else(|| format!("http://{}", bound.addr()));
    let tokens = Arc::new(InternalTokens::new());
    let invoker =
        Arc::new(Invoker::new(registry, tokens, alyx_url, config.queue_depth, history).echoing(config.echo));
    let events = Arc::new(Events::start(invoker.clone(), data.path(), &event_settings(config))?);
    // On an error below, dropping `events` stops its workers.
    let (schedules, scheduler) = start_schedules(config, data.path(), &invoker)?;
    let app = App::new(invoker.clone(), config.api_keys.clone(), config.admin_token.clone())
        .with_events(events.clone())
        .with_schedules(schedules);
    let front = match bound.serve(Arc::new(app), front_config(config)) {
        Ok(front) => front,
        Err(error) => {
            if let Some(scheduler) = scheduler {
                scheduler.stop(config.grace);
            }
            return Err(error);
        }
    };
    Ok(Server { front, events, invoker, _data: data, scheduler })
}

/// The event delivery's workers, queue and depth limit.
pub fn event_settings(config: &ServeConfig) -> events::Settings {
    events::Settings {
        workers: config.event_workers,
        queue: config.event_queue,
        queue_bytes: config.event_queue_bytes,
        max_depth: config.event_depth,
    }
}

/// The schedules the API lists and runs, and the scheduler thread that
/// fires them (its state in `data_dir`), unless `schedules` is off
/// (`--no-schedules`: listed and run by hand only).
fn start_schedules(
    config: &ServeConfig,
    data_dir: &std::path::Path,
    invoker: &Arc<Invoker>,
) -> Result<(Arc<Schedules>, Option<Scheduler>), Error> {
    if !config.schedules {
        return Ok((Arc::new(Schedules::by_hand(invoker.clone())), None));
    }
    let schedules = Arc::new(Schedules::scheduling(invoker.clone(), data_dir, Arc::new(SystemClock))?);
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
