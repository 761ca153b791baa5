//! The machinery of manifest checking: a [`Checker`] reads YAML values as
//! typed fields and records every problem with its file and field path.
//!
//! Each section of a manifest (the top level, `build`, a route, a hook...)
//! is read through one table of [`Field`]s: a key and the code that reads
//! it. The same table gives the keys the section knows, so an unknown key
//! (a warning with a did-you-mean hint) and a known one that is never read
//! cannot drift apart.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};
use std::time::Duration;

use serde_yaml_ng::{Mapping, Value};

use super::{LocalPath, Problem, Severity};
use crate::quote::{clip, quote};
use crate::units::parse_duration;

/// Reads one field's value (`None` when the key is absent) into the
/// section's draft `D`; the `&str` is the field's path, for messages.
pub(super) type Read<D> = fn(&mut Checker, &str, Option<&Value>, &mut D);

/// One row of a section's field table.
pub(super) struct Field<D> {
    pub key: &'static str,
    pub read: Read<D>,
}

/// Looks up an environment variable (for `${NAME}` secrets): the process
/// environment, or a fixed one in tests.
pub(super) type Env = fn(&str) -> Result<String, std::env::VarError>;

/// The process environment.
pub(super) fn process_env(name: &str) -> Result<String, std::env::VarError> {
    std::env::var(name)
}

/// Collects problems, and the paths to check on disk, while a manifest is
/// checked.
pub(super) struct Checker {
    file: PathBuf,
    /// The function folder: relative paths are joined to it, and its name
    /// is the function's name when the manifest gives none.
    pub(super) dir: PathBuf,
    /// The function's name once read (it is the first field), for defaults
    /// that contain it, like a webhook's path; `None` while unknown or
    /// invalid.
    pub(super) name: Option<String>,
    /// Where `${NAME}` values come from.
    pub(super) env: Env,
    pub(super) problems: Vec<Problem>,
    pub(super) paths: Vec<LocalPath>,
}

impl Checker {
    pub(super) fn new(dir: &Path, file: &Path) -> Checker {
        Checker {
            file: file.to_path_buf(),
            dir: dir.to_path_buf(),
            name: None,
            env: process_env,
            problems: Vec::new(),
            paths: Vec::new(),
        }
    }

    pub(super) fn error(&mut self, field: &str, message: impl Into<String>) {
        self.push(field, message, Severity::Error);
    }

    pub(super) fn warn(&mut self, field: &str, message: impl Into<String>) {
        self.push(field, message, Severity::Warning);
    }

    fn push(&mut self, field: &str, message: impl Into<String>, severity: Severity) {
        let message = message.into();
        let problem = Problem { file: self.file.clone(), field: field.to_string(), message, severity };
        self.problems.push(problem);
    }

    pub(super) fn has_errors(&self) -> bool {
        self.problems.iter().any(Problem::is_error)
    }

    /// `written` joined to the function folder, when it is a relative path
    /// that does not climb out (no `..`, not absolute); recorded in `paths`
    /// so discovery can check that no link leads it out.
    pub(super) fn local_path(&mut self, field: &str, written: &str) -> Option<PathBuf> {
        let path = Path::new(written);
        let climbs = path
            .components()
            .any(|part| matches!(part, Component::ParentDir | Component::RootDir | Component::Prefix(_)));
        if written.is_empty() || path.is_absolute() || climbs {
            self.error(
                field,
                format!("must be a relative path inside the function folder (got {})", quote(written)),
            );
            return None;
        }
        let joined = self.dir.join(path);
        let local =
            LocalPath { field: field.to_string(), written: written.to_string(), path: joined.clone() };
        self.paths.push(local);
        Some(joined)
    }

    /// Reads `map` through its field table into a fresh draft: unknown keys
    /// first (as warnings), then every known field in table order, present
    /// or not, so defaults and "required" are the readers' business.
    pub(super) fn fields<D: Default>(&mut self, path: &str, map: &Mapping, fields: &[Field<D>]) -> D {
        self.unknown_keys(path, map, fields);
        let mut draft = D::default();
        for field in fields {
            (field.read)(self, &join(path, field.key), map.get(field.key), &mut draft);
        }
        draft
    }

    /// [`Checker::fields`] for a value that must be a map (else an error).
    pub(super) fn section<D: Default>(
        &mut self,
        path: &str,
        value: &Value,
        fields: &[Field<D>],
    ) -> Option<D> {
        let map = self.mapping(path, value)?;
        Some(self.fields(path, map, fields))
    }

    fn unknown_keys<D>(&mut self, path: &str, map: &Mapping, fields: &[Field<D>]) {
        let known: Vec<&str> = fields.iter().map(|f| f.key).collect();
        for key in map.keys().map(key_text) {
            if !known.contains(&key.as_str()) {
                self.warn(&join(path, &key), unknown_message(&key, &known));
            }
        }
    }

    /// The mapping at `value`, or an error.
    pub(super) fn mapping<'v>(&mut self, field: &str, value: &'v Value) -> Option<&'v Mapping> {
        match value {
            Value::Mapping(m) => Some(m),
            other => {
                self.error(field, format!("must be a map, got {}", kind_of(other)));
                None
            }
        }
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

    /// A string that must be there: an error when absent (or not a string).
    pub(super) fn required_string(&mut self, field: &str, value: Option<&Value>) -> Option<String> {
        let text = self.opt_string(field, value);
        if text.is_none() {
            self.error(field, "required");
        }
        text
    }

    /// `true` or `false`; `None` when absent (or not a boolean, an error).
    pub(super) fn opt_bool(&mut self, field: &str, value: Option<&Value>) -> Option<bool> {
        match value? {
            Value::Null => None,
            Value::Bool(b) => Some(*b),
            other => {
                self.error(field, format!("must be true or false, got {}", kind_of(other)));
                None
            }
        }
    }

    fn list<'v>(&mut self, field: &str, value: Option<&'v Value>) -> &'v [Value] {
        match value {
            None | Some(Value::Null) => &[],
            Some(Value::Sequence(items)) => items,
            Some(other) => {
                self.error(field, format!("must be a list, got {}", kind_of(other)));
                &[]
            }
        }
    }

    /// A list whose items are read by `read`, each with its `field[i]` path;
    /// the items that fail are left out (their problems are recorded).
    pub(super) fn each<T>(
        &mut self,
        field: &str,
        value: Option<&Value>,
        read: fn(&mut Checker, &str, &Value) -> Option<T>,
    ) -> Vec<T> {
        let items = self.list(field, value);
        items.iter().enumerate().filter_map(|(i, v)| read(self, &format!("{field}[{i}]"), v)).collect()
    }

    pub(super) fn strings(&mut self, field: &str, value: Option<&Value>) -> Vec<String> {
        self.each(field, value, Checker::string)
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
                    if let Some(value) = self.string(&format!("{field}.{}", clip(&key)), v) {
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
}

/// The path of `key` inside the section at `path` (`""` is the top level).
fn join(path: &str, key: &str) -> String {
    match path {
        "" => key.to_string(),
        _ => format!("{path}.{key}"),
    }
}

/// A mapping key as text, for messages (YAML keys need not be strings).
fn key_text(key: &Value) -> String {
    match key {
        Value::String(s) => clip(s),
        Value::Number(n) => n.to_string(),
        Value::Bool(b) => b.to_string(),
        other => kind_of(other).to_string(),
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

fn unknown_message(key: &str, known: &[&str]) -> String {
    match known.iter().find(|k| similar(key, k)) {
        Some(k) => format!("unknown field (did you mean `{k}`?); it is ignored"),
        None => "unknown field; it is ignored".to_string(),
    }
}

/// True when two names differ by at most two edits (for typo hints).
fn similar(a: &str, b: &str) -> bool {
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

/// A YAML flow map giving every key of `fields` its `sample` value.
#[cfg(test)]
pub(super) fn every_field<D>(fields: &[Field<D>], sample: fn(&str) -> String) -> String {
    let entries: Vec<String> = fields.iter().map(|f| format!("{}: {}", f.key, sample(f.key))).collect();
    format!("{{{}}}", entries.join(", "))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Pair {
        left: Option<String>,
        right: Option<String>,
    }

    const PAIR: &[Field<Pair>] = &[
        Field { key: "left", read: |c, f, v, d| d.left = c.opt_string(f, v) },
        Field { key: "right", read: |c, f, v, d| d.right = c.required_string(f, v) },
    ];

    fn read_pair(text: &str) -> (Option<Pair>, Vec<String>) {
        let mut c = Checker::new(Path::new("f"), Path::new("m.yaml"));
        let value: Value = serde_yaml_ng::from_str(text).unwrap();
        let pair = c.section("pair", &value, PAIR);
        (pair, c.problems.iter().map(ToString::to_string).collect())
    }

    #[test]
    fn a_table_reads_its_keys_and_warns_on_others_with_a_hint() {
        let (pair, problems) = read_pair("{left: a, right: b, rigth: c, 7: d}");
        let pair = pair.unwrap();
        assert_eq!((pair.left.as_deref(), pair.right.as_deref()), (Some("a"), Some("b")));
        assert_eq!(
            problems,
            [
                "m.yaml: warning: pair.rigth: unknown field (did you mean `right`?); it is ignored",
                "m.yaml: warning: pair.7: unknown field; it is ignored",
            ]
        );
    }

    #[test]
    fn every_field_of_a_table_is_read_even_when_absent() {
        let (pair, problems) = read_pair("{}");
        assert!(pair.unwrap().right.is_none());
        assert_eq!(problems, ["m.yaml: pair.right: required"]);
    }

    #[test]
    fn a_section_that_is_not_a_map_is_one_error() {
        let (pair, problems) = read_pair("[left]");
        assert!(pair.is_none());
        assert_eq!(problems, ["m.yaml: pair: must be a map, got a list"]);
    }

    #[test]
    fn typo_distance() {
        assert!(similar("timout", "timeout"));
        assert!(!similar("colour", "timeout"));
    }
}
