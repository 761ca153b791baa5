//! The `alyx` binary: parse the command line, run one mode, exit.

#![forbid(unsafe_code)]

fn main() {
    std::process::exit(alyx::cli::run(std::env::args().skip(1).collect()));
}
