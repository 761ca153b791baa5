//! What one invocation says outside its response, so a developer sees what
//! happened without reading response bodies: under `alyx dev` one line per
//! call on stdout with the function's log lines indented under it; under
//! `alyx serve` a warning in the server log for each failure (its code and
//! message), and the rest at debug.

use std::io::Write;

use crate::history::{Outcome, Record};

/// Where invocations are told.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Echo {
    /// The server log: failures at warn, successes and log lines at debug.
    #[default]
    Log,
    /// Stdout, every call and its log lines (`alyx dev`).
    Terminal,
}

impl Echo {
    pub fn tell(self, record: &Record) {
        match self {
            // A closed terminal loses the line, never the worker.
            Echo::Terminal => {
                let _ = writeln!(std::io::stdout().lock(), "{}", terminal(record));
            }
            Echo::Log => log(record),
        }
    }
}

/// `hello (http): ok in 1.2 ms`, or
/// `hello (http): error in 0.4 ms: PLUGIN_ERROR: no such user`,
/// then the function's log lines, indented.
pub fn terminal(record: &Record) -> String {
    let mut out = summary(record);
    for line in &record.logs {
        out.push_str(&format!("\n    {:<5} {}", line.level.name(), line.message));
    }
    if record.logs_dropped > 0 {
        out.push_str(&format!("\n    ({} more log lines not kept)", record.logs_dropped));
    }
    out
}

fn summary(record: &Record) -> String {
    let took = crate::units::millis(record.duration);
    let head = format!(
        "{} ({}): {} in {took} ms",
        record.function,
        record.trigger.as_str(),
        record.outcome.as_str()
    );
    match &record.error {
        Some(error) => format!("{head}: {}: {}", error.code, error.message),
        None => head,
    }
}

fn log(record: &Record) {
    let id = &record.id;
    match record.outcome {
        Outcome::Ok => log::debug!("{} (request {id})", summary(record)),
        _ => log::warn!("{} (request {id})", summary(record)),
    }
    for line in &record.logs {
        log::debug!("{} (request {id}): {}: {}", record.function, line.level.name(), line.message);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::history::ErrorInfo;
    use crate::invoke::Trigger;
    use crate::runtime::{LogLevel, LogLine};
    use std::time::{Duration, SystemTime};

    fn record(outcome: Outcome, error: Option<ErrorInfo>, logs: &[(LogLevel, &str)]) -> Record {
        let logs = logs
            .iter()
            .map(|(level, message)| LogLine {
                level: *level,
                message: message.to_string(),
                timestamp: SystemTime::UNIX_EPOCH,
            })
            .collect();
        Record {
            id: "r1".into(),
            function: "hello".into(),
            trigger: Trigger::Http,
            started_at: SystemTime::UNIX_EPOCH,
            duration: Duration::from_micros(1200),
            outcome,
            error,
            logs,
            logs_dropped: 0,
            input_bytes: 2,
            output_bytes: 2,
            plugin: None,
        }
    }

    #[test]
    fn a_call_is_one_line_with_its_logs_under_it() {
        let ok = record(Outcome::Ok, None, &[(LogLevel::Info, "greeting Ada"), (LogLevel::Warn, "slow")]);
        assert_eq!(terminal(&ok), "hello (http): ok in 1.2 ms\n    info  greeting Ada\n    warn  slow");
    }

    #[test]
    fn a_failure_shows_its_code_and_message() {
        let failed = record(Outcome::Error, Some(ErrorInfo::new("PLUGIN_ERROR", "no such user")), &[]);
        assert_eq!(terminal(&failed), "hello (http): error in 1.2 ms: PLUGIN_ERROR: no such user");
    }
}
