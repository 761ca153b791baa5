//! `alyx call <FUNCTION>`: call a function as the server would, without
//! one. FUNCTION is a function folder, or a function's name in `--dir`
//! (default `./functions`). Its manifest applies (entrypoint, config,
//! allowed hosts, env, limits); the input becomes the request envelope and
//! the answer is printed as `POST /api/functions/NAME` would give it.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde_json::Value;

use crate::cli::Args;
use crate::config::ServeConfig;
use crate::error::Error;
use crate::history::History;
use crate::http::invoke::{parse_input, respond};
use crate::invoke::{Caller, Invocation, Invoker, Trigger};
use crate::registry::{Load, Registry, Reloaded};
use crate::tokens::InternalTokens;
use crate::wiring::defaults;

/// The options of the raw mode that a function's manifest decides here.
const MANIFEST_DECIDES: &[&str] = &[
    "config",
    "allow-host",
    "timeout",
    "fuel",
    "memory-max",
    "link",
    "log-level",
    "loop",
    "http-response-headers",
];

/// Calls the function `target` names; exit 0 when it succeeded, else 1.
pub fn run(target: &str, args: &Args) -> Result<i32, Error> {
    if let Some((name, _)) = args.options.iter().find(|(name, _)| MANIFEST_DECIDES.contains(name)) {
        let why = "the function's manifest decides it; edit the manifest, or call a plugin with <plugin.wasm> <export>";
        return Err(Error::Usage(format!("--{name} is for plugins: {why}")));
    }
    let dir = function_dir(target, args.value("dir").unwrap_or("functions"))?;
    let input = parse_input("POST", "", &input_bytes(args)?).map_err(|e| {
        Error::Usage(format!("the input must be JSON (a string in quotes: --input '\"text\"'): {e}"))
    })?;
    let root = dir.parent().unwrap_or(Path::new(".")).to_path_buf();
    let config = ServeConfig::default();
    let registry = Arc::new(Registry::new(&root, defaults(&config)));
    let name = match registry.reload_dir(&dir) {
        Some(Reloaded { load: Load::Failed { error, .. }, .. }) => {
            eprintln!("alyx call: {}: {error}", dir.display());
            return Err(Error::Failed);
        }
        Some(reloaded) => reloaded.name,
        None => {
            for problem in crate::discovery::load(&dir, &[]).1 {
                eprintln!("alyx call: {problem}");
            }
            return Err(Error::Failed);
        }
    };
    let alyx_url = format!("http://{}", config.listen);
    let history = Arc::new(History::new(0));
    let invoker = Invoker::new(registry, Arc::new(InternalTokens::new()), alyx_url, 1, history);
    // The envelope of a call over HTTP, from a caller with no key.
    let invocation =
        Invocation::new(&name, input, Trigger::Http, crate::random::unique_id(), Caller::Anonymous);
    let reply = respond(invoker.run(invocation));
    let body: Value = serde_json::from_slice(&reply.body).unwrap_or(Value::Null);
    let text = serde_json::to_string_pretty(&body).unwrap_or_default();
    let mut stdout = std::io::stdout().lock();
    writeln!(stdout, "{text}")
        .and_then(|()| stdout.flush())
        .map_err(|source| Error::Write { what: "the response".into(), source })?;
    Ok(i32::from(body["success"] != Value::Bool(true)))
}

/// A folder as given, else `dir/NAME`.
fn function_dir(target: &str, dir: &str) -> Result<PathBuf, Error> {
    let candidates = [PathBuf::from(target), Path::new(dir).join(target)];
    let found = candidates.iter().find(|c| c.is_dir());
    let found = found.ok_or_else(|| {
        let looked = format!("no folder {target:?} and no function {target:?} in {dir:?}");
        Error::Usage(format!(
            "{looked} (give a function folder, a name with --dir DIR, or <plugin.wasm> <export>)"
        ))
    })?;
    Ok(found.canonicalize().unwrap_or_else(|_| found.clone()))
}

fn input_bytes(args: &Args) -> Result<Vec<u8>, Error> {
    super::call::read_input(&super::call::input_source(args))
}
