//! The crate's error type for everything outside a plugin call: bad command
//! lines and settings, sockets, threads, signals and file watching. Each
//! variant carries the facts a message needs; the command line maps them to
//! exit codes in one place ([`Error::exit_code`]).

use std::fmt;
use std::path::PathBuf;

#[derive(Debug)]
pub enum Error {
    /// The command line is wrong (unknown option, missing value...).
    Usage(String),
    /// A setting has a bad value; names the setting.
    Config(String),
    /// The listening socket could not be bound.
    Bind { addr: String, source: std::io::Error },
    /// A thread could not be started.
    Thread { name: String, source: std::io::Error },
    /// SIGINT/SIGTERM could not be handled.
    Signals(String),
    /// A folder could not be watched.
    Watch { path: PathBuf, message: String },
    /// A file could not be read.
    Read { path: PathBuf, source: std::io::Error },
    /// Output could not be written (`what`: stdout, a file...).
    Write { what: String, source: std::io::Error },
    /// The data folder cannot be created or is in use by another server.
    DataDir { path: PathBuf, why: String },
    /// The event journal in the data folder could not be opened.
    Journal(crate::journal::JournalError),
    /// The command ran and found problems it reported (validate, build):
    /// nothing more to print, exit 1.
    Failed,
}

impl Error {
    /// 2 for a command line or setting the user must fix, else 1.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Usage(_) | Error::Config(_) => 2,
            _ => 1,
        }
    }

    pub fn thread(name: &str) -> impl FnOnce(std::io::Error) -> Error + '_ {
        move |source| Error::Thread { name: name.to_string(), source }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Usage(message) | Error::Config(message) => write!(f, "{message}"),
            Error::Bind { addr, source } => write!(f, "cannot listen on {addr}: {source}"),
            Error::Thread { name, source } => write!(f, "cannot start the {name} thread: {source}"),
            Error::Signals(message) => write!(f, "cannot handle signals: {message}"),
            Error::Watch { path, message } => write!(f, "cannot watch {}: {message}", path.display()),
            Error::Read { path, source } => write!(f, "cannot read {}: {source}", path.display()),
            Error::Write { what, source } => write!(f, "cannot write {what}: {source}"),
            Error::DataDir { path, why } => write!(f, "data folder {}: {why}", path.display()),
            Error::Journal(error) => write!(f, "{error}"),
            Error::Failed => write!(f, "failed"),
        }
    }
}

impl std::error::Error for Error {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_the_user_must_fix_exits_2_the_rest_1() {
        assert_eq!(Error::Usage("x".into()).exit_code(), 2);
        assert_eq!(Error::Config("x".into()).exit_code(), 2);
        let refused = std::io::Error::from(std::io::ErrorKind::AddrInUse);
        let bind = Error::Bind { addr: "127.0.0.1:1".into(), source: refused };
        assert_eq!(bind.exit_code(), 1);
        assert!(bind.to_string().starts_with("cannot listen on 127.0.0.1:1: "), "{bind}");
        assert_eq!(Error::Failed.exit_code(), 1);
    }
}
