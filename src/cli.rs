//! The command line: picks the mode from the first argument and maps its
//! result to an exit code. One entry function per mode.

use crate::{call, serve};

const USAGE: &str = "\
alyx: a small, fast, trustworthy server for WebAssembly functions

usage:
  alyx serve [options]                         serve the functions folder over HTTP
  alyx dev [options]                           serve, and watch, build and hot-reload
  alyx validate [DIR]                          report every problem in a functions folder
  alyx build [NAME...] [--dir DIR]             run the functions' builds once
  alyx call <plugin.wasm> <export> [options]   call one export of an Extism plugin
  alyx help [command]                          show help
  alyx version                                 show the version

Run `alyx serve --help` or `alyx call --help` for their options.";

/// Runs the command line; returns the process exit code.
pub fn run(args: Vec<String>) -> i32 {
    let (command, rest) = match args.split_first() {
        Some((command, rest)) => (command.as_str(), rest.to_vec()),
        None => ("help", Vec::new()),
    };
    match command {
        "call" => call::main(rest),
        "serve" => serve::main(rest, false),
        "dev" => serve::main(rest, true),
        "validate" => serve::validate(rest),
        "build" => crate::dev::build::main(rest),
        "version" | "--version" | "-V" => {
            println!("alyx {}", env!("CARGO_PKG_VERSION"));
            0
        }
        "help" | "--help" | "-h" => help(rest.first().map(String::as_str)),
        other => {
            eprintln!("alyx: unknown command {other:?}\n\n{USAGE}");
            2
        }
    }
}

fn help(topic: Option<&str>) -> i32 {
    match topic {
        Some("call") => println!("{}", call::USAGE),
        Some("serve" | "dev") => println!("{}\n{}", serve::USAGE, crate::config::help()),
        _ => println!("{USAGE}"),
    }
    0
}
