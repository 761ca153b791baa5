//! `alyx validate [DIR]`: report every problem in a functions folder
//! (manifests, and plugins that do not load) without serving it. Reads the
//! same configuration as `alyx serve` (alyx.yaml, ALYX_*, flags), so the
//! defaults it checks against are the ones the server would use. Errors
//! (a function left out or not loading) fail it; warnings (an unknown
//! field, ignored) fail it only with `--strict`.

use std::path::PathBuf;
use std::sync::OnceLock;

use crate::cli::{Args, Opt};
use crate::config;
use crate::discovery;
use crate::error::Error;
use crate::manifest::{Manifest, Problem};
use crate::registry::{LoadError, Registry};
use crate::wiring::defaults;

const USAGE: &str = "usage: alyx validate [DIR] [--strict] [options]

Prints every problem in a functions folder (DIR, else --dir or the dir
setting): errors (a manifest that is refused, a plugin that does not
compile) and warnings (an unknown field, which is ignored; a plugin not
built yet, which its build section makes). Exits 1 if
there is an error, 0 if there are only warnings (1 with --strict).
Takes the options of `alyx serve`.
";

pub fn help() -> String {
    format!("{USAGE}\n  --strict                 warnings fail too (exit 1)\n{}", config::help())
}

/// The options of `alyx serve`, and `--strict`.
pub fn options() -> &'static [Opt] {
    static OPTIONS: OnceLock<Vec<Opt>> = OnceLock::new();
    OPTIONS.get_or_init(|| {
        let mut options = vec![Opt::switch("strict")];
        options.extend_from_slice(config::options());
        options
    })
}

pub fn run(args: Args) -> Result<i32, Error> {
    let strict = args.flag("strict");
    let mut config = config::load(&args)?;
    match args.positionals.as_slice() {
        [] => {}
        [dir] => config.dir = PathBuf::from(dir),
        [_, extra, ..] => return Err(Error::Usage(format!("unexpected argument {extra:?}"))),
    }
    let dir = config.dir.clone();
    let found = discovery::discover(&dir, crate::http::router::RESERVED_NAMES);
    let (errors, warnings): (Vec<&Problem>, Vec<&Problem>) =
        found.problems.iter().partition(|p| p.is_error());
    let mut errors: Vec<String> = errors.iter().map(ToString::to_string).collect();
    let mut warnings: Vec<String> = warnings.iter().map(ToString::to_string).collect();
    let registry = Registry::new(&dir, defaults(&config));
    let summary = registry.reload();
    let mut unbuilt = 0;
    for function in summary.failed.iter().filter_map(|name| registry.get(name)) {
        let Some(error) = function.last_error() else { continue };
        let at = format!("{}/{}", dir.display(), function.name);
        if not_built(&function.manifest(), &error) {
            unbuilt += 1;
            warnings.push(format!("{at}: warning: {error}"));
        } else {
            errors.push(format!("{at}: {error}"));
        }
    }
    errors.iter().for_each(|error| println!("{error}"));
    warnings.iter().for_each(|warning| println!("{warning}"));
    let ok = found.functions.len() - summary.failed.len() + unbuilt;
    println!(
        "{ok} {} ok, {}, {}",
        plural(ok, "function"),
        count(errors.len(), "error"),
        count(warnings.len(), "warning")
    );
    Ok(i32::from(!errors.is_empty() || (strict && !warnings.is_empty())))
}

/// A plugin missing because its build has not run yet: the manifest is
/// fine, and `alyx build` or `alyx dev` makes the plugin.
fn not_built(manifest: &Manifest, error: &LoadError) -> bool {
    matches!(error, LoadError::Read { .. }) && manifest.build.is_some() && !manifest.plugin.exists()
}

fn count(n: usize, what: &str) -> String {
    format!("{n} {}", plural(n, what))
}

fn plural(n: usize, what: &str) -> String {
    if n == 1 { what.to_string() } else { format!("{what}s") }
}
