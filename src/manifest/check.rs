//! The machinery of manifest checking: a [`Checker`] reads YAML values as
//! typed fields and records every problem with its file and field path;
//! unknown keys become warnings with a did-you-mean hint.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::time::Duration;

use serde_yaml_ng::Value;

use super::{Problem, Severity};
use crate::units::parse_duration;

/// Collects problems while a manifest is checked.
pub(super) struct Checker {
    pub(super) file: PathBuf,
    pub(super) problems: Vec<Problem>,
}

impl Checker {
    pub(super) fn error(&mut self, field: &str, message: impl Into<String>) {
        self.push(field, message, Severity::Error);
    }

    pub(super) fn warn(&mut self, field: &str, message: impl Into<String>) {
        self.push(field, message, Severity::Warning);
    }

    pub(super) fn push(&mut self, field: &str, message: impl Into<String>, severity: Severity) {
        let problem =
            Problem { file: self.file.clone(), field: field.to_string(), message: message.into(), severity };
        self.problems.push(problem);
    }

    pub(super) fn has_errors(&self) -> bool {
        self.problems.iter().any(|p| p.severity == Severity::Error)
    }

    /// A string field; numbers and booleans are accepted as their text.
    pub(super) fn string(&mut self, field: &str, value: &Value) -> Option<String> {
        match value {
            Value::String(s) => Some(s.clone()),
            Value::Number(n) => Some(n.to_string()),
            Value::Bool(b) => Some(b.to_string()),
            _ => {
                self.error(field, format!("must be a string, got {}", kind_of(value)));
                None
            }
        }
    }

    pub(super) fn opt_string(&mut self, field: &str, value: Option<&Value>) -> Option<String> {
        value.filter(|v| !v.is_null()).and_then(|v| self.string(field, v))
    }

    pub(super) fn list<'v>(&mut self, field: &str, value: Option<&'v Value>) -> &'v [Value] {
        match value {
            None | Some(Value::Null) => &[],
            Some(Value::Sequence(items)) => items,
            Some(other) => {
                self.error(field, format!("must be a list, got {}", kind_of(other)));
                &[]
            }
        }
    }

    pub(super) fn strings(&mut self, field: &str, value: Option<&Value>) -> Vec<String> {
        let items = self.list(field, value);
        items.iter().enumerate().filter_map(|(i, v)| self.string(&format!("{field}[{i}]"), v)).collect()
    }

    pub(super) fn map(&mut self, field: &str, value: Option<&Value>) -> BTreeMap<String, String> {
        let mut out = BTreeMap::new();
        match value {
            None | Some(Value::Null) => {}
            Some(Value::Mapping(m)) => {
                for (k, v) in m {
                    let Some(key) = self.string(field, k) else {
                        continue;
                    };
                    if let Some(value) = self.string(&format!("{field}.{key}"), v) {
                        out.insert(key, value);
                    }
                }
            }
            Some(other) => self.error(field, format!("must be a map of strings, got {}", kind_of(other))),
        }
        out
    }

    pub(super) fn duration(&mut self, field: &str, value: Option<&Value>) -> Option<Duration> {
        let text = self.opt_string(field, value)?;
        match parse_duration(&text) {
            Ok(d) if d.is_zero() => {
                self.error(field, "must be above zero");
                None
            }
            Ok(d) => Some(d),
            Err(e) => {
                self.error(field, e);
                None
            }
        }
    }

    /// Unknown keys of a nested mapping, as warnings.
    pub(super) fn unknown_keys(&mut self, field: &str, value: &Value, known: &[&str]) {
        let Value::Mapping(m) = value else { return };
        for key in m.keys().filter_map(Value::as_str) {
            if !known.contains(&key) {
                self.warn(&format!("{field}.{key}"), unknown_message(key, known));
            }
        }
    }

    /// The mapping at `value`, or an error.
    pub(super) fn mapping<'v>(
        &mut self,
        field: &str,
        value: &'v Value,
    ) -> Option<&'v serde_yaml_ng::Mapping> {
        match value {
            Value::Mapping(m) => Some(m),
            other => {
                self.error(field, format!("must be a map, got {}", kind_of(other)));
                None
            }
        }
    }
}

pub(super) fn kind_of(value: &Value) -> &'static str {
    match value {
        Value::Null => "nothing",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Sequence(_) => "a list",
        Value::Mapping(_) => "a map",
        Value::Tagged(_) => "a tagged value",
    }
}

pub(super) fn unknown_message(key: &str, known: &[&str]) -> String {
    match known.iter().find(|k| similar(key, k)) {
        Some(k) => format!("unknown field (did you mean `{k}`?); it is ignored"),
        None => "unknown field; it is ignored".to_string(),
    }
}

/// True when two names differ by at most two edits (for typo hints).
pub(super) fn similar(a: &str, b: &str) -> bool {
    let (a, b): (Vec<char>, Vec<char>) = (a.chars().collect(), b.chars().collect());
    let mut prev: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.iter().enumerate() {
        let mut row = vec![i + 1];
        for (j, cb) in b.iter().enumerate() {
            let cost = usize::from(ca != cb);
            row.push((prev[j] + cost).min(prev[j + 1] + 1).min(row[j] + 1));
        }
        prev = row;
    }
    prev[b.len()] <= 2
}

pub(super) fn get<'v>(m: &'v serde_yaml_ng::Mapping, key: &str) -> Option<&'v Value> {
    m.get(Value::String(key.to_string()))
}
pub(super) fn check_list<T>(
    c: &mut Checker,
    field: &str,
    value: Option<&Value>,
    each: fn(&mut Checker, &str, &Value) -> Option<T>,
) -> Vec<T> {
    let items = c.list(field, value);
    items.iter().enumerate().filter_map(|(i, v)| each(c, &format!("{field}[{i}]"), v)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typo_distance() {
        assert!(similar("timout", "timeout"));
        assert!(!similar("colour", "timeout"));
    }
}
