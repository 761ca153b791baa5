//! `alyx dev`: `alyx serve` plus the dev loop (watch sources, build,
//! hot-reload); same options.

use crate::cli::Args;
use crate::config;
use crate::error::Error;

const USAGE: &str = "usage: alyx dev [options]

Serves the functions like `alyx serve` and watches the folder: a change to
a function's build.watch sources runs its build, a new plugin or manifest
is loaded beside the running version and swapped in only if it works, and
new or removed function folders are picked up. Every call prints one line
(function, trigger, outcome, duration; a failure's code and message) with
the function's log lines under it. SIGINT or SIGTERM kills
running builds and stops within the grace period.
";

pub fn help() -> String {
    format!("{USAGE}\n{}", config::help())
}

pub fn run(args: Args) -> Result<i32, Error> {
    super::no_positionals(&args)?;
    let config = config::ServeConfig { echo: crate::echo::Echo::Terminal, ..config::load(&args)? };
    super::serve::serve(config, true)
}
