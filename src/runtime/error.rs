//! Every way loading or calling a plugin can fail, as one typed enum.
//!
//! Variants carry the facts that decide behaviour (which limit, which export,
//! which host function) so callers `match` on them and never on text.

use std::fmt;
use std::time::Duration;

use crate::units::format_size;

/// Which time budget ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeLimit {
    /// The wall-clock timeout.
    WallClock(Duration),
    /// The deterministic fuel budget.
    Fuel(u64),
}

/// Which memory cap ended a call.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MemoryLimit {
    /// A linear memory of the plugin would have grown past the cap.
    LinearMemory,
    /// The kernel arena (Extism memory) refused an allocation.
    Kernel,
    /// The output was larger than allowed.
    Output,
    /// The vars would have outgrown their store.
    Vars,
}

/// A failure to load a plugin or to complete a call.
#[derive(Debug, Clone, PartialEq)]
pub enum Error {
    /// The bytes are not a usable plugin (invalid Wasm, unknown import,
    /// failing start section...). Detected before any call.
    Load { message: String },
    /// The export does not exist.
    MissingExport { name: String },
    /// The export exists but is not `() -> ()` or `() -> i32`.
    BadSignature { name: String, signature: String },
    /// A time budget ran out.
    Timeout { limit: TimeLimit },
    /// A memory cap was reached.
    MemoryLimit { which: MemoryLimit, limit_bytes: u64 },
    /// Wasm recursion or the value stack exceeded the stack limits.
    StackOverflow { export: String },
    /// A Wasm trap (unreachable, out-of-bounds access, division by zero...).
    Trap {
        message: String,
        export: String,
        /// The export's function name from the name section, where present.
        function: Option<String>,
    },
    /// The plugin set an error message (`error_set`), maybe before a trap.
    Plugin { message: String, rc: i32 },
    /// A host function refused the plugin's request (bad handle, denied
    /// HTTP host, full var store...).
    HostFunction { function: String, message: String },
    /// The export returned a non-zero code without an error message.
    NonZeroReturn { rc: i32 },
    /// The plugin called WASI `proc_exit` with a non-zero code (or with 0
    /// after setting an error).
    Exit { code: u32, message: Option<String> },
    /// No instance became free before the call's deadline.
    Busy { waited: Duration },
}

impl Error {
    /// A stable, machine-readable name for the kind of failure.
    pub fn kind(&self) -> &'static str {
        match self {
            Error::Load { .. } => "load_error",
            Error::MissingExport { .. } => "missing_export",
            Error::BadSignature { .. } => "bad_signature",
            Error::Timeout { .. } => "timeout",
            Error::MemoryLimit { .. } => "memory_limit",
            Error::StackOverflow { .. } => "stack_overflow",
            Error::Trap { .. } => "trap",
            Error::Plugin { .. } => "plugin_error",
            Error::HostFunction { .. } => "host_function_error",
            Error::NonZeroReturn { .. } => "non_zero_return",
            Error::Exit { .. } => "exit",
            Error::Busy { .. } => "busy",
        }
    }

    /// True when the instance that produced this error may be inconsistent
    /// and must not be reused (ABI section 7.5). The error half of the one
    /// reuse rule, `Ending::spends_instance` in `instance.rs`, which also
    /// spends the instance after `_start` and after any run that stopped.
    pub fn discards_instance(&self) -> bool {
        !matches!(
            self,
            Error::Plugin { .. }
                | Error::NonZeroReturn { .. }
                | Error::MissingExport { .. }
                | Error::BadSignature { .. }
                | Error::Busy { .. }
        )
    }

    /// The exit code a command-line caller should use for this failure:
    /// the plugin's own exit code where it exited and a process can carry
    /// it (1 to 255), else 1. Never 0: this is a failure.
    pub fn exit_code(&self) -> i32 {
        match self {
            Error::Exit { code, .. } if (1..=255).contains(code) => *code as i32,
            _ => 1,
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::Load { message } => write!(f, "cannot load plugin: {message}"),
            Error::MissingExport { name } => {
                write!(f, "the plugin has no exported function {name:?}")
            }
            Error::BadSignature { name, signature } => write!(
                f,
                "export {name:?} has type {signature}; callable exports take no \
                 parameters and return nothing or one i32"
            ),
            Error::Timeout { limit: TimeLimit::WallClock(d) } => {
                write!(f, "timed out after {} ms", d.as_millis())
            }
            Error::Timeout { limit: TimeLimit::Fuel(units) } => {
                write!(f, "ran out of fuel after {units} units")
            }
            Error::MemoryLimit { which, limit_bytes } => {
                let what = match which {
                    MemoryLimit::LinearMemory => "linear memory",
                    MemoryLimit::Kernel => "Extism memory",
                    MemoryLimit::Output => "output",
                    MemoryLimit::Vars => "var store",
                };
                write!(f, "{what} limit of {} reached", format_size(*limit_bytes))
            }
            Error::StackOverflow { export } => write!(
                f,
                "stack overflow in {export:?} (recursion too deep; \
                 raise the stack limits if this is expected)"
            ),
            Error::Trap { message, export, function } => {
                write!(f, "trap in {export:?}")?;
                if let Some(name) = function.as_ref().filter(|n| *n != export) {
                    write!(f, " (function {name})")?;
                }
                write!(f, ": {message}")
            }
            Error::Plugin { message, .. } => f.write_str(message),
            Error::HostFunction { function, message } => write!(f, "{function}: {message}"),
            Error::NonZeroReturn { rc } => write!(f, "returned non-zero exit code {rc}"),
            Error::Exit { code, message: Some(m) } => write!(f, "exited with code {code}: {m}"),
            Error::Exit { code, message: None } => write!(f, "exited with code {code}"),
            Error::Busy { waited } => {
                write!(f, "no free instance after {} ms (all instances busy)", waited.as_millis())
            }
        }
    }
}

impl std::error::Error for Error {}

/// An error raised inside a host function; it unwinds the Wasm call and is
/// turned into an [`Error`] where the call returns.
#[derive(Debug)]
pub(crate) enum HostError {
    /// WASI `proc_exit(code)`.
    Exit(u32),
    /// The call's deadline passed inside a blocking host function.
    Timeout,
    /// A memory cap refused what the host function was asked to do.
    MemoryLimit(MemoryLimit),
    /// A host function refused the plugin's arguments.
    Failed { function: String, message: String },
}

impl HostError {
    pub(crate) fn failed(function: &str, message: impl Into<String>) -> HostError {
        HostError::Failed { function: function.to_string(), message: message.into() }
    }

    pub(crate) fn bad_handle(function: &str, handle: u64) -> HostError {
        HostError::failed(function, format!("invalid handle {handle} (not a live block)"))
    }
}

impl fmt::Display for HostError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            HostError::Exit(code) => write!(f, "exit({code})"),
            HostError::Timeout => f.write_str("deadline passed in a host call"),
            HostError::MemoryLimit(which) => write!(f, "{which:?} limit reached"),
            HostError::Failed { function, message } => write!(f, "{function}: {message}"),
        }
    }
}

impl wasmi::errors::HostError for HostError {}

impl From<HostError> for wasmi::Error {
    fn from(e: HostError) -> wasmi::Error {
        wasmi::Error::host(e)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ordinary_returns_keep_the_instance() {
        assert!(!Error::Plugin { message: "x".into(), rc: 1 }.discards_instance());
        assert!(!Error::NonZeroReturn { rc: 2 }.discards_instance());
        assert!(Error::Timeout { limit: TimeLimit::Fuel(5) }.discards_instance());
        assert!(Error::Exit { code: 0, message: None }.discards_instance());
    }

    #[test]
    fn messages_say_which_limit() {
        let e = Error::MemoryLimit { which: MemoryLimit::LinearMemory, limit_bytes: 2 << 20 };
        assert_eq!(e.to_string(), "linear memory limit of 2 MiB reached");
        let t = Error::Timeout { limit: TimeLimit::WallClock(Duration::from_millis(250)) };
        assert_eq!(t.to_string(), "timed out after 250 ms");
    }

    #[test]
    fn exit_code_is_the_plugins_own_when_a_process_can_carry_it() {
        assert_eq!(Error::Exit { code: 3, message: None }.exit_code(), 3);
        assert_eq!(Error::Exit { code: 256, message: None }.exit_code(), 1);
        assert_eq!(Error::Exit { code: 0, message: Some("x".into()) }.exit_code(), 1);
        assert_eq!(Error::NonZeroReturn { rc: 9 }.exit_code(), 1);
    }
}
