//! `alyx build [NAME...]`: run the functions' builds once (all functions
//! with a `build` section by default), one line per function, for Makefiles
//! and CI. Exit 1 if a build fails or a manifest has an error.

use std::path::PathBuf;
use std::time::Duration;

use crate::cli::{Args, Opt};
use crate::config;
use crate::dev::build::{self, Cancel, DEFAULT_TIMEOUT};
use crate::discovery;
use crate::error::Error;
use crate::manifest::Manifest;
use crate::units::parse_duration;

const USAGE: &str = "usage: alyx build [NAME...] [options]

Runs the build command of each named function (all by default) once, in
its folder, and prints one line per function; a failed build's output goes
to stderr. Exits 1 if a build fails.

options:
  --dir DIR            the functions folder (default: the dir setting, ./functions)
  --timeout DURATION   kill a build running longer (default: 5m)
  --config FILE        settings file (default: ./alyx.yaml if present)
  -h, --help           show this help";

pub fn help() -> String {
    USAGE.to_string()
}

pub fn options() -> &'static [Opt] {
    const OPTIONS: &[Opt] = &[Opt::value("dir"), Opt::value("timeout"), Opt::value("config")];
    OPTIONS
}

pub fn run(args: Args) -> Result<i32, Error> {
    let (dir, timeout) = settings(&args)?;
    let found = discovery::discover(&dir, crate::http::router::RESERVED_NAMES);
    for problem in &found.problems {
        eprintln!("{problem}");
    }
    let names = &args.positionals;
    let chosen: Vec<&Manifest> =
        found.functions.iter().filter(|m| names.is_empty() || names.contains(&m.name)).collect();
    if let Some(missing) = names.iter().find(|n| !chosen.iter().any(|m| &m.name == *n)) {
        eprintln!("alyx build: no function named {missing:?} in {}", dir.display());
        return Ok(1);
    }
    let failures = chosen.iter().filter(|m| !build_one(m, timeout)).count();
    Ok(i32::from(failures > 0 || found.has_errors()))
}

/// The folder and timeout: flags, else the configuration (alyx.yaml, env).
fn settings(args: &Args) -> Result<(PathBuf, Duration), Error> {
    let options = args.options.iter().filter(|(n, _)| *n != "timeout").cloned().collect();
    let config_args = Args { options, ..Args::default() };
    let config = config::load(&config_args)?;
    let timeout = match args.value("timeout") {
        Some(text) => parse_duration(text).map_err(|e| Error::Usage(format!("--timeout: {e}")))?,
        None if config.build_timeout.is_zero() => DEFAULT_TIMEOUT,
        None => config.build_timeout,
    };
    Ok((config.dir, timeout))
}

/// Builds one function if it has a build; false if that build failed.
fn build_one(manifest: &Manifest, timeout: Duration) -> bool {
    let Some(spec) = &manifest.build else { return true };
    let result = build::run(spec, &manifest.dir, timeout, &Cancel::default());
    println!("{}", build::summary(&manifest.name, &result));
    if !result.ok {
        eprint!("{}", result.output);
    }
    result.ok
}
