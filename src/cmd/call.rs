//! `alyx call`: run one export of a plugin from the command line, with the
//! Extism CLI's `call` flags. Arguments become [`CallOptions`] in one step;
//! the output goes to stdout, plugin logs to stderr.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use crate::cli::{Args, Opt};
use crate::error::Error;
use crate::runtime::{self, LogLevel, LogLine, ModuleSource, Plugin, PluginSpec};
use crate::units::{parse_duration, parse_pages_or_size};

pub const USAGE: &str = "\
usage: alyx call <FUNCTION> [--input JSON] [--dir DIR]
       alyx call <plugin.wasm> <export> [options]

With one argument, calls a function as the server would: FUNCTION is a
function folder, or the name of one in --dir (default ./functions). Its
manifest applies (entrypoint, config, allowed hosts, env, limits); the
input (--input, --input-file or --stdin; JSON, empty = null) becomes the
request envelope's `input`, and the response envelope is printed, as
`POST /api/functions/NAME` answers it. context.auth is null and alyx_url
is http://127.0.0.1:8090. Exits 1 if the call failed.

With two, calls <export> of an Extism plugin (a .wasm binary or .wat text) and writes
its output to stdout. Plugin logs go to stderr. On failure the error kind and
message go to stderr and the exit code is non-zero (the plugin's own code
when it called proc_exit).

options:
  -i, --input STRING         input bytes for the call (default: empty)
      --input-file FILE      read the input from FILE
      --stdin                read the input from standard input
  -c, --config KEY=VALUE     a config value (repeatable)
      --allow-host PATTERN   allow outbound HTTP to hosts matching the glob
                             PATTERN (repeatable; default: deny all)
      --timeout DURATION     wall-clock limit per call: 500ms, 2s, or plain
                             milliseconds; 0 = none (default: 30s)
      --fuel UNITS           deterministic instruction budget per call
      --memory-max SIZE      cap on each linear memory and on Extism memory:
                             pages (plain number) or a size like 64MiB
                             (default: 256MiB)
      --link NAME=FILE       link another module under NAME (repeatable)
      --wasi                 accepted for compatibility; WASI is always on
      --log-level LEVEL      trace, debug, info, warn, error or off
                             (default: info)
      --loop N               call N times on one instance, one output a line
      --http-response-headers  let the plugin read response headers
      --dir DIR              where a FUNCTION name is looked up
                             (default: ./functions)
  -h, --help                 show this help";

/// `alyx call`, parsed.
#[derive(Debug, Clone, PartialEq)]
pub struct CallOptions {
    pub plugin: String,
    pub export: String,
    pub input: InputSource,
    pub config: BTreeMap<String, String>,
    pub allowed_hosts: Vec<String>,
    pub timeout: Option<Duration>,
    pub fuel: Option<u64>,
    pub memory_bytes: Option<u64>,
    pub links: Vec<(String, String)>,
    pub log_level: LogLevel,
    pub repeat: usize,
    pub http_response_headers: bool,
}

/// Where the call's input comes from.
#[derive(Debug, Clone, PartialEq)]
pub enum InputSource {
    Text(String),
    File(String),
    Stdin,
}

/// The options `alyx call` reads.
pub fn options() -> &'static [Opt] {
    const OPTIONS: &[Opt] = &[
        Opt::value("input").short('i'),
        Opt::value("input-file"),
        Opt::switch("stdin"),
        Opt::value("config").short('c'),
        Opt::value("allow-host"),
        Opt::value("timeout"),
        Opt::value("fuel"),
        Opt::value("memory-max"),
        Opt::value("link"),
        Opt::switch("wasi"),
        Opt::value("log-level"),
        Opt::value("loop"),
        Opt::switch("http-response-headers"),
        Opt::value("dir"),
    ];
    OPTIONS
}

pub fn help() -> String {
    USAGE.to_string()
}

/// `alyx call`: parse, call, print; the exit code is the plugin's own.
pub fn run(args: Args) -> Result<i32, Error> {
    match args.positionals.as_slice() {
        [function] => super::call_function::run(function, &args),
        _ => call(&parse(&args)?),
    }
}

fn usage(message: String) -> Error {
    Error::Usage(message)
}

/// Typed options from the arguments after `call`.
pub fn parse(args: &Args) -> Result<CallOptions, Error> {
    let [plugin, export] = <[String; 2]>::try_from(args.positionals.clone()).map_err(|p| {
        usage(format!("expected <FUNCTION> or <plugin.wasm> <export>, got {} arguments", p.len()))
    })?;
    let mut o = CallOptions {
        plugin,
        export,
        input: InputSource::Text(String::new()),
        config: BTreeMap::new(),
        allowed_hosts: args.values("allow-host").into_iter().map(String::from).collect(),
        timeout: Some(Duration::from_secs(30)),
        fuel: None,
        memory_bytes: None,
        links: Vec::new(),
        log_level: LogLevel::Info,
        repeat: 1,
        http_response_headers: args.flag("http-response-headers"),
    };
    o.input = input_source(args);
    if args.value("dir").is_some() {
        return Err(usage("--dir is for calling a function by name: alyx call NAME --dir DIR".into()));
    }
    for pair in args.values("config") {
        let (k, v) = split_pair(pair, "--config wants KEY=VALUE")?;
        o.config.insert(k, v);
    }
    for pair in args.values("link") {
        o.links.push(split_pair(pair, "--link wants NAME=FILE")?);
    }
    if let Some(text) = args.value("timeout") {
        let d = parse_duration(text).map_err(|e| usage(format!("--timeout: {e}")))?;
        o.timeout = (!d.is_zero()).then_some(d);
    }
    if let Some(text) = args.value("fuel") {
        o.fuel = Some(text.parse().map_err(|_| usage("--fuel wants a whole number".into()))?);
    }
    if let Some(text) = args.value("memory-max") {
        o.memory_bytes = Some(parse_pages_or_size(text).map_err(|e| usage(format!("--memory-max: {e}")))?);
    }
    if let Some(text) = args.value("log-level") {
        o.log_level = LogLevel::parse(text).map_err(usage)?;
    }
    if let Some(text) = args.value("loop") {
        let n = text.parse().ok().filter(|n| *n > 0);
        o.repeat = n.ok_or_else(|| usage("--loop wants a number above 0".into()))?;
    }
    Ok(o)
}

/// `--input`, `--input-file` or `--stdin`, the last given; else empty.
pub fn input_source(args: &Args) -> InputSource {
    let mut source = InputSource::Text(String::new());
    for (name, value) in &args.options {
        source = match (*name, value) {
            ("input", Some(text)) => InputSource::Text(text.clone()),
            ("input-file", Some(path)) => InputSource::File(path.clone()),
            ("stdin", _) => InputSource::Stdin,
            _ => continue,
        };
    }
    source
}

fn split_pair(pair: &str, wants: &str) -> Result<(String, String), Error> {
    let (k, v) = pair.split_once('=').ok_or_else(|| usage(format!("{wants}, got {pair:?}")))?;
    Ok((k.to_string(), v.to_string()))
}

/// Loads the plugin, runs the call(s), prints; returns the exit code.
pub fn call(options: &CallOptions) -> Result<i32, Error> {
    let input = read_input(&options.input)?;
    let plugin = match Plugin::compile(spec(options)?) {
        Ok(plugin) => plugin,
        Err(e) => return Ok(report_error(&e)),
    };
    let mut instance = match plugin.instantiate() {
        Ok(instance) => instance,
        Err(e) => return Ok(report_error(&e)),
    };
    let mut stdout = std::io::stdout().lock();
    for i in 0..options.repeat {
        let report = instance.call(&options.export, &input);
        print_logs(&report.logs);
        let output = match report.result {
            Ok(output) => output,
            Err(e) => return Ok(report_error(&e)),
        };
        let written =
            stdout.write_all(&output).and_then(|()| match i + 1 < options.repeat || options.repeat > 1 {
                true => stdout.write_all(b"\n"),
                false => Ok(()),
            });
        written
            .and_then(|()| stdout.flush())
            .map_err(|source| Error::Write { what: "the output".into(), source })?;
        if !instance.is_reusable() && i + 1 < options.repeat {
            instance = match plugin.instantiate() {
                Ok(instance) => instance,
                Err(e) => return Ok(report_error(&e)),
            };
        }
    }
    Ok(0)
}

fn spec(options: &CallOptions) -> Result<PluginSpec, Error> {
    let mut spec = PluginSpec::new(&options.plugin, read_file(&options.plugin)?);
    if !options.links.is_empty() {
        let mut modules = Vec::new();
        for (name, path) in &options.links {
            modules.push(ModuleSource { name: Some(name.clone()), wasm: read_file(path)? });
        }
        modules.append(&mut spec.modules);
        spec.modules = modules;
    }
    spec.config = options.config.clone();
    spec.allowed_hosts = options.allowed_hosts.clone();
    spec.limits.timeout = options.timeout;
    spec.limits.fuel = options.fuel;
    if let Some(bytes) = options.memory_bytes {
        spec.limits.memory_bytes = bytes;
    }
    spec.log_level = options.log_level;
    spec.http_response_headers = options.http_response_headers;
    Ok(spec)
}

fn read_file(path: &str) -> Result<Vec<u8>, Error> {
    std::fs::read(path).map_err(|source| Error::Read { path: path.into(), source })
}

pub fn read_input(source: &InputSource) -> Result<Vec<u8>, Error> {
    match source {
        InputSource::Text(text) => Ok(text.as_bytes().to_vec()),
        InputSource::File(path) => read_file(path),
        InputSource::Stdin => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|source| Error::Read { path: "standard input".into(), source })?;
            Ok(buf)
        }
    }
}

fn print_logs(logs: &[LogLine]) {
    let mut stderr = std::io::stderr().lock();
    for line in logs {
        let _ = writeln!(stderr, "{}: {}", line.level.name(), line.message);
    }
}

fn report_error(error: &runtime::Error) -> i32 {
    eprintln!("error: {}: {error}", error.kind());
    error.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn parse(text: &str) -> Result<CallOptions, Error> {
        let raw: Vec<String> = text.split_whitespace().map(String::from).collect();
        super::parse(&Args::parse(&raw, options())?)
    }

    #[test]
    fn parses_the_extism_cli_flags() {
        let o = parse(
            "p.wasm count --input hi --config a=1 -c b=2 --allow-host *.x.com --timeout 2s \
             --memory-max 4 --wasi --log-level debug --loop 3 --http-response-headers --fuel 99",
        )
        .unwrap();
        assert_eq!((o.plugin.as_str(), o.export.as_str()), ("p.wasm", "count"));
        assert_eq!(o.input, InputSource::Text("hi".into()));
        assert_eq!(o.config.get("b").map(String::as_str), Some("2"));
        assert_eq!(o.allowed_hosts, ["*.x.com"]);
        assert_eq!(o.timeout, Some(Duration::from_secs(2)));
        assert_eq!(o.memory_bytes, Some(4 * 65536));
        assert_eq!((o.log_level, o.repeat, o.fuel), (LogLevel::Debug, 3, Some(99)));
        assert!(o.http_response_headers);
    }

    #[test]
    fn timeout_defaults_to_30s_and_zero_disables_it() {
        assert_eq!(parse("p e").unwrap().timeout, Some(Duration::from_secs(30)));
        assert_eq!(parse("p e --timeout 0").unwrap().timeout, None);
        assert_eq!(parse("p e --timeout=500ms").unwrap().timeout, Some(Duration::from_millis(500)));
    }

    #[test]
    fn bad_arguments_are_usage_errors() {
        for bad in [
            "p",
            "p e x",
            "p e --config novalue",
            "p e --loop 0",
            "p e --bogus",
            "p e --timeout soon",
            "p e --input",
        ] {
            assert!(matches!(parse(bad), Err(Error::Usage(_))), "{bad}");
        }
    }
}
