//! `alyx call`: run one export of a plugin from the command line, with the
//! Extism CLI's `call` flags. Raw arguments become [`CallOptions`] in one
//! step; the output goes to stdout, plugin logs to stderr.

use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::time::Duration;

use crate::runtime::{Error, LogLevel, LogLine, ModuleSource, Plugin, PluginSpec};
use crate::units::{parse_duration, parse_pages_or_size};

pub const USAGE: &str = "\
usage: alyx call <plugin.wasm> <export> [options]

Calls <export> of an Extism plugin (a .wasm binary or .wat text) and writes
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

/// Entry point of the mode; returns the exit code.
pub fn main(args: Vec<String>) -> i32 {
    if args.iter().any(|a| a == "-h" || a == "--help") {
        println!("{USAGE}");
        return 0;
    }
    match parse(&args).and_then(|options| run(&options)) {
        Ok(code) => code,
        Err(CallFailure::Usage(message)) => {
            eprintln!("alyx call: {message}\n\n{USAGE}");
            2
        }
        Err(CallFailure::Io(message)) => {
            eprintln!("alyx call: {message}");
            1
        }
    }
}

/// Why `alyx call` could not run a plugin at all.
#[derive(Debug, PartialEq)]
pub enum CallFailure {
    Usage(String),
    Io(String),
}

/// Parses the arguments after `call`.
pub fn parse(args: &[String]) -> Result<CallOptions, CallFailure> {
    let usage = |m: String| CallFailure::Usage(m);
    let mut positional = Vec::new();
    let mut o = CallOptions {
        plugin: String::new(),
        export: String::new(),
        input: InputSource::Text(String::new()),
        config: BTreeMap::new(),
        allowed_hosts: Vec::new(),
        timeout: None,
        fuel: None,
        memory_bytes: None,
        links: Vec::new(),
        log_level: LogLevel::Info,
        repeat: 1,
        http_response_headers: false,
    };
    let mut timeout = Some(Duration::from_secs(30));
    let mut it = args.iter();
    while let Some(arg) = it.next() {
        let (flag, inline) = match arg.split_once('=') {
            Some((f, v)) if f.starts_with("--") => (f, Some(v.to_string())),
            _ => (arg.as_str(), None),
        };
        let mut value = || {
            inline
                .clone()
                .or_else(|| it.next().cloned())
                .ok_or_else(|| usage(format!("{flag} needs a value")))
        };
        match flag {
            "-i" | "--input" => o.input = InputSource::Text(value()?),
            "--input-file" => o.input = InputSource::File(value()?),
            "--stdin" => o.input = InputSource::Stdin,
            "-c" | "--config" => {
                let pair = value()?;
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| usage(format!("--config wants KEY=VALUE, got {pair:?}")))?;
                o.config.insert(k.to_string(), v.to_string());
            }
            "--allow-host" => o.allowed_hosts.push(value()?),
            "--timeout" => {
                let d = parse_duration(&value()?).map_err(|e| usage(format!("--timeout: {e}")))?;
                timeout = (!d.is_zero()).then_some(d);
            }
            "--fuel" => {
                o.fuel = Some(value()?.parse().map_err(|_| usage("--fuel wants a whole number".into()))?)
            }
            "--memory-max" => {
                o.memory_bytes =
                    Some(parse_pages_or_size(&value()?).map_err(|e| usage(format!("--memory-max: {e}")))?)
            }
            "--link" => {
                let pair = value()?;
                let (k, v) = pair
                    .split_once('=')
                    .ok_or_else(|| usage(format!("--link wants NAME=FILE, got {pair:?}")))?;
                o.links.push((k.to_string(), v.to_string()));
            }
            "--wasi" => {}
            "--log-level" => o.log_level = LogLevel::parse(&value()?).map_err(usage)?,
            "--loop" => {
                o.repeat = value()?
                    .parse()
                    .ok()
                    .filter(|n| *n > 0)
                    .ok_or_else(|| usage("--loop wants a number above 0".into()))?
            }
            "--http-response-headers" => o.http_response_headers = true,
            f if f.starts_with('-') && f.len() > 1 => {
                return Err(usage(format!("unknown option {f}")));
            }
            _ => positional.push(arg.clone()),
        }
    }
    o.timeout = timeout;
    match <[String; 2]>::try_from(positional) {
        Ok([plugin, export]) => {
            o.plugin = plugin;
            o.export = export;
            Ok(o)
        }
        Err(p) => Err(usage(format!("expected <plugin.wasm> <export>, got {} arguments", p.len()))),
    }
}

/// Loads the plugin, runs the call(s), prints; returns the exit code.
pub fn run(options: &CallOptions) -> Result<i32, CallFailure> {
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
        written.and_then(|()| stdout.flush()).map_err(|e| CallFailure::Io(format!("writing output: {e}")))?;
        if !instance.is_reusable() && i + 1 < options.repeat {
            instance = plugin.instantiate().map_err(|e| CallFailure::Io(e.to_string()))?;
        }
    }
    Ok(0)
}

fn spec(options: &CallOptions) -> Result<PluginSpec, CallFailure> {
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

fn read_file(path: &str) -> Result<Vec<u8>, CallFailure> {
    std::fs::read(path).map_err(|e| CallFailure::Io(format!("cannot read {path}: {e}")))
}

fn read_input(source: &InputSource) -> Result<Vec<u8>, CallFailure> {
    match source {
        InputSource::Text(text) => Ok(text.as_bytes().to_vec()),
        InputSource::File(path) => read_file(path),
        InputSource::Stdin => {
            let mut buf = Vec::new();
            std::io::stdin()
                .read_to_end(&mut buf)
                .map_err(|e| CallFailure::Io(format!("reading stdin: {e}")))?;
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

fn report_error(error: &Error) -> i32 {
    eprintln!("error: {}: {error}", error.kind());
    error.exit_code()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(text: &str) -> Vec<String> {
        text.split_whitespace().map(String::from).collect()
    }

    #[test]
    fn parses_the_extism_cli_flags() {
        let o = parse(&args(
            "p.wasm count --input hi --config a=1 -c b=2 --allow-host *.x.com --timeout 2s \
             --memory-max 4 --wasi --log-level debug --loop 3 --http-response-headers --fuel 99",
        ))
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
        assert_eq!(parse(&args("p e")).unwrap().timeout, Some(Duration::from_secs(30)));
        assert_eq!(parse(&args("p e --timeout 0")).unwrap().timeout, None);
        assert_eq!(parse(&args("p e --timeout=500ms")).unwrap().timeout, Some(Duration::from_millis(500)));
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
            assert!(matches!(parse(&args(bad)), Err(CallFailure::Usage(_))), "{bad}");
        }
    }
}
