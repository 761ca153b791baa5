//! `alyx validate [DIR]`: report every problem in a functions folder
//! (manifests, and plugins that do not load) without serving it. Reads the
//! same configuration as `alyx serve` (alyx.yaml, ALYX_*, flags), so the
//! defaults it checks against are the ones the server would use.

use std::path::PathBuf;

use crate::cli::Args;
use crate::config;
use crate::discovery;
use crate::error::Error;
use crate::registry::Registry;
use crate::wiring::defaults;

const USAGE: &str = "usage: alyx validate [DIR] [options]

Prints every problem in a functions folder (DIR, else --dir or the dir
setting): manifest errors and warnings, and plugins that do not compile.
Exits 1 if there is one. Takes the options of `alyx serve`.
";

pub fn help() -> String {
    format!("{USAGE}\n{}", config::help())
}

pub fn run(args: Args) -> Result<i32, Error> {
    let mut config = config::load(&args)?;
    match args.positionals.as_slice() {
        [] => {}
        [dir] => config.dir = PathBuf::from(dir),
        [_, extra, ..] => return Err(Error::Usage(format!("unexpected argument {extra:?}"))),
    }
    let dir = config.dir.clone();
    let found = discovery::discover(&dir, crate::http::router::RESERVED_NAMES);
    let mut problems: Vec<String> = found.problems.iter().map(ToString::to_string).collect();
    let registry = Registry::new(&dir, defaults(&config));
    let summary = registry.reload();
    for name in &summary.failed {
        if let Some(error) = registry.get(name).and_then(|f| f.last_error()) {
            problems.push(format!("{}/{name}: {error}", dir.display()));
        }
    }
    for problem in &problems {
        println!("{problem}");
    }
    let ok = found.functions.len() - summary.failed.len();
    println!("{ok} functions ok, {} problems", problems.len());
    Ok(i32::from(!problems.is_empty()))
}
