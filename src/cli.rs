//! The command line: one argument reader for every subcommand, `--help`
//! and `alyx help CMD` everywhere, and the one place that turns a command's
//! result into an exit code and prefixes its errors with the command
//! (`alyx dev: cannot listen on ...`).

use crate::cmd::{self, Command};
use crate::error::Error;

/// One option a command accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Opt {
    /// The long name without dashes (`input` for `--input`).
    pub long: &'static str,
    pub short: Option<char>,
    /// Takes a value (`--k v` or `--k=v`); else a switch.
    pub takes_value: bool,
}

impl Opt {
    pub const fn value(long: &'static str) -> Opt {
        Opt { long, short: None, takes_value: true }
    }

    pub const fn switch(long: &'static str) -> Opt {
        Opt { long, short: None, takes_value: false }
    }

    pub const fn short(self, short: char) -> Opt {
        Opt { short: Some(short), ..self }
    }
}

/// A command line read against a command's options.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Args {
    /// Options in the order given: long name and value (`None` for a switch).
    pub options: Vec<(&'static str, Option<String>)>,
    pub positionals: Vec<String>,
    pub help: bool,
}

impl Args {
    /// Reads `--k v`, `--k=v`, `-k v`, switches, `--help`/`-h`, and
    /// positionals (everything after `--` is positional).
    pub fn parse(raw: &[String], opts: &[Opt]) -> Result<Args, Error> {
        let mut args = Args::default();
        let mut it = raw.iter();
        while let Some(arg) = it.next() {
            match arg.as_str() {
                "--" => args.positionals.extend(it.by_ref().cloned()),
                "-h" | "--help" => args.help = true,
                a if a.starts_with('-') && a.len() > 1 => args.option(a, opts, &mut it)?,
                _ => args.positionals.push(arg.clone()),
            }
        }
        Ok(args)
    }

    fn option<'a>(
        &mut self,
        arg: &str,
        opts: &[Opt],
        rest: &mut impl Iterator<Item = &'a String>,
    ) -> Result<(), Error> {
        let (name, inline) = match arg.strip_prefix("--") {
            Some(long) => match long.split_once('=') {
                Some((name, value)) => (name, Some(value.to_string())),
                None => (long, None),
            },
            None => (&arg[1..], None),
        };
        let opt = opts
            .iter()
            .find(|o| {
                same_name(o.long, name) || (name.chars().count() == 1 && o.short == name.chars().next())
            })
            .ok_or_else(|| Error::Usage(format!("unknown option {arg}")))?;
        let value = match (opt.takes_value, inline) {
            (true, Some(value)) => Some(value),
            (true, None) => {
                Some(rest.next().cloned().ok_or_else(|| Error::Usage(format!("{arg} needs a value")))?)
            }
            (false, None) => None,
            (false, Some(_)) => return Err(Error::Usage(format!("--{name} takes no value"))),
        };
        self.options.push((opt.long, value));
        Ok(())
    }

    /// The last value given for `long`.
    pub fn value(&self, long: &str) -> Option<&str> {
        self.options.iter().rev().find(|(name, _)| *name == long).and_then(|(_, v)| v.as_deref())
    }

    /// Every value given for `long`, in order.
    pub fn values(&self, long: &str) -> Vec<&str> {
        self.options.iter().filter(|(name, _)| *name == long).filter_map(|(_, v)| v.as_deref()).collect()
    }

    /// Whether the switch `long` was given.
    pub fn flag(&self, long: &str) -> bool {
        self.options.iter().any(|(name, _)| *name == long)
    }
}

/// `max_body`, `max-body`: the same option.
fn same_name(long: &str, given: &str) -> bool {
    long.len() == given.len()
        && long.bytes().zip(given.bytes()).all(|(a, b)| a == b || (a == b'_' && b == b'-'))
}

const USAGE: &str = "alyx: a small, fast, trustworthy server for WebAssembly functions";

/// Runs the command line; returns the process exit code.
pub fn run(raw: Vec<String>) -> i32 {
    let Some((name, rest)) = raw.split_first() else {
        out(&overview());
        return 0;
    };
    match name.as_str() {
        "help" | "--help" | "-h" => help(rest.first().map(String::as_str)),
        "version" | "--version" | "-V" => {
            out(&format!("alyx {}", env!("CARGO_PKG_VERSION")));
            0
        }
        other => match cmd::find(other) {
            Some(command) => run_command(command, rest),
            None => {
                eprintln!("alyx: unknown command {other:?}\n\n{}", overview());
                2
            }
        },
    }
}

fn run_command(command: &Command, rest: &[String]) -> i32 {
    let result = Args::parse(rest, (command.options)()).and_then(|args| match args.help {
        true => {
            out(&(command.help)());
            Ok(0)
        }
        false => (command.run)(args),
    });
    match result {
        Ok(code) => code,
        Err(Error::Failed) => 1,
        Err(error @ (Error::Usage(_) | Error::Config(_))) => {
            let (name, synopsis) = (command.name, command.synopsis);
            eprintln!("alyx {name}: {error}\nusage: {synopsis}\nRun `alyx {name} --help` for the options.");
            error.exit_code()
        }
        Err(error) => {
            eprintln!("alyx {}: {error}", command.name);
            error.exit_code()
        }
    }
}

fn help(topic: Option<&str>) -> i32 {
    match topic.map(|t| (t, cmd::find(t))) {
        None => out(&overview()),
        Some(("manifest", _)) => out(crate::manifest::REFERENCE.trim_end()),
        Some((_, Some(command))) => out(&(command.help)()),
        Some((other, None)) => {
            eprintln!("alyx help: no command named {other:?}\n\n{}", overview());
            return 2;
        }
    }
    0
}

/// A text and a line end on stdout; a closed stdout (`alyx help | head`)
/// is not an error worth a word.
pub fn out(text: &str) {
    use std::io::Write;
    let mut stdout = std::io::stdout().lock();
    let _ = writeln!(stdout, "{text}").and_then(|()| stdout.flush());
}

/// The list of commands.
fn overview() -> String {
    let mut out = format!("{USAGE}\n\nusage:\n");
    for command in cmd::COMMANDS {
        out.push_str(&format!("  {:<44} {}\n", command.synopsis, command.summary));
    }
    out.push_str(&format!("  {:<44} {}\n", "alyx help [command]", "show help"));
    out.push_str(&format!("  {:<44} {}\n", "alyx version", "show the version"));
    out.push_str("\nRun `alyx help COMMAND` or `alyx COMMAND --help` for its options.");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: &[Opt] =
        &[Opt::value("input").short('i'), Opt::switch("stdin"), Opt::value("config").short('c')];

    fn parse(text: &str) -> Result<Args, Error> {
        let raw: Vec<String> = text.split_whitespace().map(String::from).collect();
        Args::parse(&raw, OPTS)
    }

    #[test]
    fn values_come_in_every_form() {
        let args = parse("a.wasm --input x -i y --input=z run -c k=v --config=k2=v2").unwrap();
        assert_eq!(args.positionals, ["a.wasm", "run"]);
        assert_eq!(args.value("input"), Some("z"));
        assert_eq!(args.values("config"), ["k=v", "k2=v2"]);
        assert!(!args.help && !args.flag("stdin"));
    }

    #[test]
    fn switches_help_and_the_double_dash() {
        let args = parse("--stdin x --help -- --input -h").unwrap();
        assert!(args.flag("stdin") && args.help);
        assert_eq!(args.positionals, ["x", "--input", "-h"]);
    }

    #[test]
    fn mistakes_are_usage_errors_naming_the_option() {
        let message = |text: &str| match parse(text) {
            Err(Error::Usage(message)) => message,
            other => panic!("{other:?}"),
        };
        assert_eq!(message("--bogus 1"), "unknown option --bogus");
        assert_eq!(message("-x"), "unknown option -x");
        assert_eq!(message("--input"), "--input needs a value");
        assert_eq!(message("--stdin=yes"), "--stdin takes no value");
    }

    #[test]
    fn every_command_has_its_own_help() {
        for command in cmd::COMMANDS {
            let text = (command.help)();
            assert!(text.starts_with(&format!("usage: alyx {}", command.name)), "{}: {text}", command.name);
        }
    }
}
