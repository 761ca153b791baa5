//! The subcommands, one file each, and the table the command line reads:
//! name, synopsis, options, help and the function that runs it. A command
//! returns its exit code or an [`Error`]; `cli` prints and maps errors.

pub mod build;
pub mod call;
pub mod call_function;
pub mod dev;
pub mod manifest;
pub mod new;
pub mod serve;
pub mod validate;

use crate::cli::{Args, Opt};
use crate::error::Error;

/// One subcommand.
pub struct Command {
    pub name: &'static str,
    pub synopsis: &'static str,
    pub summary: &'static str,
    pub options: fn() -> &'static [Opt],
    pub help: fn() -> String,
    pub run: fn(Args) -> Result<i32, Error>,
}

pub const COMMANDS: &[Command] = &[
    Command {
        name: "new",
        synopsis: "alyx new NAME [--lang L] [--dir DIR]",
        summary: "write a new function folder from a template (--list: languages)",
        options: new::options,
        help: new::help,
        run: new::run,
    },
    Command {
        name: "serve",
        synopsis: "alyx serve [options]",
        summary: "serve the functions folder over HTTP",
        options: crate::config::options,
        help: serve::help,
        run: serve::run,
    },
    Command {
        name: "dev",
        synopsis: "alyx dev [options]",
        summary: "serve, and watch, build and hot-reload",
        options: crate::config::options,
        help: dev::help,
        run: dev::run,
    },
    Command {
        name: "validate",
        synopsis: "alyx validate [DIR] [--strict] [options]",
        summary: "report every problem in a functions folder",
        options: validate::options,
        help: validate::help,
        run: validate::run,
    },
    Command {
        name: "build",
        synopsis: "alyx build [NAME...] [--dir DIR]",
        summary: "run the functions' builds once",
        options: build::options,
        help: build::help,
        run: build::run,
    },
    Command {
        name: "call",
        synopsis: "alyx call FUNCTION | PLUGIN EXPORT",
        summary: "call a function as the server would, or one export of a plugin",
        options: call::options,
        help: call::help,
        run: call::run,
    },
    Command {
        name: "manifest",
        synopsis: "alyx manifest",
        summary: "print the manifest reference (every field, its default)",
        options: manifest::options,
        help: manifest::help,
        run: manifest::run,
    },
];

/// The command named `name`.
pub fn find(name: &str) -> Option<&'static Command> {
    COMMANDS.iter().find(|c| c.name == name)
}

/// Refuses positional arguments a command does not take.
pub fn no_positionals(args: &Args) -> Result<(), Error> {
    match args.positionals.first() {
        Some(extra) => Err(Error::Usage(format!("unexpected argument {extra:?}"))),
        None => Ok(()),
    }
}
