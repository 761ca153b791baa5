//! Target `manifests`: YAML through `manifest::parse`.
//!
//! Inputs are random documents built from the manifest's own fields (with
//! values of odd types and sizes), our real manifests and the README's full
//! example mutated as text (anchors, aliases, merge keys, tags, flow and
//! block syntax), deep nesting and alias fan-out, all under 64 KiB. The
//! invariant: no panic; a manifest exactly when no problem is an error; a
//! manifest's name is valid and its paths stay inside the folder.

use std::path::{Component, Path};
use std::time::Duration;

use alyx::manifest::{Parsed, parse, valid_name};
use serde_yaml_ng::{Mapping, Number, Value};

use crate::harness::Target;
use crate::mutate::mutate;
use crate::rng::Rng;

const DIR: &str = "/functions/fuzzed";
const FILE: &str = "/functions/fuzzed/manifest.yaml";

/// Largest document, and the most mutations per case.
const MAX_BYTES: usize = 64 << 10;
const MAX_MUTATIONS: usize = 8;

/// How deep generated values nest before they must be scalars.
const MAX_DEPTH: usize = 6;

/// Keys of every section, so random documents reach the field readers.
const KEYS: &[&str] = &[
    "name",
    "runtime",
    "entrypoint",
    "plugin",
    "timeout",
    "memory",
    "env",
    "dependencies",
    "config",
    "allowed_hosts",
    "build",
    "routes",
    "hooks",
    "schedules",
    "command",
    "args",
    "watch",
    "output",
    "path",
    "methods",
    "type",
    "source",
    "action",
    "mode",
    "verification",
    "header",
    "secret",
    "expression",
    "timezone",
    "input",
    "skip_if_running",
    "max_retries",
    "enabled",
    "timout",
    "<<",
];

/// Scalars near what the readers expect and past it.
const SCALARS: &[&str] = &[
    "",
    "hello",
    "wasm",
    "WASM",
    "handle",
    "plugin.wat",
    "plugin.wasm",
    "../x.wasm",
    "/etc/passwd",
    "a/../../b",
    "./ok/../x",
    "C:\\x",
    "src/**/*.c",
    "[a-z",
    "**/",
    "*",
    "*.internal",
    "host:80",
    "http://x/y",
    "5s",
    "0 3 * * *",
    "*/0 * * * *",
    "0 0 31 2 *",
    "59 23 29 2 MON-FRI/2",
    "@daily",
    "Europe/Berlin",
    "Australia/Lord_Howe",
    "2026-12-01T09:00",
    "2026-03-29T02:30:00+01:00",
    "one_time",
    "interval",
    "cron",
    "0s",
    "-5s",
    "1ms",
    "30 s",
    "5S",
    "1.5m",
    "99999999999999999999h",
    "18446744073709551615ms",
    "16mb",
    "0mb",
    "1kb",
    "64KiB",
    "1e3mb",
    "mb",
    "17179869184gb",
    "18446744073709551616",
    "-1",
    "1e400",
    "0x10",
    "0o7",
    ".inf",
    "-.nan",
    "~",
    "null",
    "true",
    "no",
    "GET",
    "post",
    "BREW",
    "/hello",
    "hello",
    "database",
    "auth",
    "webhook",
    "sync",
    "async",
    "hmac-sha256",
    "X-Signature",
    "cron",
    "interval",
    "one_time",
    "0 3 * * *",
    "* * * *",
    "Europe/Berlin",
    "Not/AZone",
    "stats",
    "reload",
    "a\0b",
    "é",
    "😀",
    "\u{feff}name",
];

/// Tokens spliced into the text: YAML's own syntax.
const TOKENS: &[&[u8]] = &[
    b"&a ",
    b"*a",
    b"<<: *a\n",
    b"!!map ",
    b"!!str ",
    b"!!binary ",
    b"!!int ",
    b"!custom ",
    b"? ",
    b"- ",
    b": ",
    b"{",
    b"}",
    b"[",
    b"]",
    b"|\n",
    b">-\n",
    b"\t",
    b"\n---\n",
    b"\n...\n",
    b"%YAML 1.2\n",
    b"# ",
    b"'",
    b"\"",
    b"\\u0000",
    b"\n  ",
    b"&a [*a]",
    b",",
    b"\xef\xbb\xbf",
    b"\r\n",
    b"name: ",
    b"timeout: ",
    b"memory: ",
    b"hooks:\n  - ",
    b"build: {",
    b"999999999999999999999999",
];

pub struct Manifests {
    /// Valid manifests to mutate: ours, the README's, and a few with the
    /// syntax the generator does not write (anchors, merge keys).
    seeds: Vec<String>,
    tally: [u64; 2],
}

impl Manifests {
    pub fn new() -> Manifests {
        let mut seeds = testdata_manifests();
        seeds.push(readme_manifest());
        seeds.extend(EXTRA_SEEDS.iter().map(|s| s.to_string()));
        Manifests { seeds, tally: [0; 2] }
    }

    fn mutant(&self, rng: &mut Rng) -> Vec<u8> {
        let mut text = rng.pick(&self.seeds).clone().into_bytes();
        mutate(rng, &mut text, TOKENS, MAX_MUTATIONS, MAX_BYTES);
        text
    }
}

impl Target for Manifests {
    const NAME: &'static str = "manifests";
    const EXTENSION: &'static str = "yaml";
    /// Far above the slowest case (1000 levels of nesting: about 0.15 s
    /// in a debug build), for a busy machine.
    const MAX_CASE_TIME: Duration = Duration::from_secs(10);

    fn generate(&mut self, rng: &mut Rng) -> Vec<u8> {
        let mut text = match rng.below(8) {
            0..=2 => serde_yaml_ng::to_string(&document(rng)).unwrap_or_default().into_bytes(),
            3 => nesting(rng),
            4 => fan_out(rng),
            _ => self.mutant(rng),
        };
        text.truncate(MAX_BYTES);
        text
    }

    fn check(&mut self, input: &[u8]) -> Result<(), String> {
        let text = String::from_utf8_lossy(input);
        let parsed = parse(Path::new(DIR), Path::new(FILE), &text);
        self.tally[usize::from(parsed.manifest.is_some())] += 1;
        check_parsed(&parsed)
    }

    fn summary(&self) -> String {
        format!("valid {}, refused {}", self.tally[1], self.tally[0])
    }
}

fn check_parsed(parsed: &Parsed) -> Result<(), String> {
    let errors: Vec<String> =
        parsed.problems.iter().filter(|p| p.is_error()).map(|p| p.to_string()).collect();
    let has_errors = !errors.is_empty();
    if parsed.manifest.is_some() == has_errors {
        return Err(format!("manifest: {}, errors: {errors:?}", parsed.manifest.is_some()));
    }
    if let Some(problem) = parsed.problems.iter().find(|p| p.file != Path::new(FILE)) {
        return Err(format!("a problem names another file: {problem}"));
    }
    if let Some(name) = parsed.name.as_deref().filter(|n| !valid_name(n)) {
        return Err(format!("invalid name {name:?} taken"));
    }
    for local in &parsed.paths {
        inside(&local.path).map_err(|e| format!("{}: {e}", local.field))?;
    }
    let Some(manifest) = &parsed.manifest else {
        return Ok(());
    };
    let plugin = manifest.plugin.iter();
    let output = manifest.build.iter().map(|b| &b.output);
    plugin.chain(output).try_for_each(|path| inside(path))
}

/// A path joined to the function folder that stays inside it.
fn inside(path: &Path) -> Result<(), String> {
    let climbs = path.components().any(|c| c == Component::ParentDir);
    match path.starts_with(DIR) && !climbs {
        true => Ok(()),
        false => Err(format!("path {} leaves the function folder", path.display())),
    }
}

/// A random document: mostly known keys, values of every type.
fn document(rng: &mut Rng) -> Value {
    let mut map = Mapping::new();
    for _ in 0..rng.between(0, 12) {
        map.insert(key(rng), value(rng, 0));
    }
    Value::Mapping(map)
}

fn key(rng: &mut Rng) -> Value {
    match rng.below(12) {
        0 => value(rng, MAX_DEPTH),
        _ => Value::String(rng.pick(KEYS).to_string()),
    }
}

fn value(rng: &mut Rng, depth: usize) -> Value {
    let nested = depth < MAX_DEPTH;
    match rng.below(10) {
        0 | 1 if nested => Value::Sequence((0..rng.size(6)).map(|_| value(rng, depth + 1)).collect()),
        2 | 3 if nested => {
            let pairs = (0..rng.size(6)).map(|_| (key(rng), value(rng, depth + 1)));
            Value::Mapping(pairs.collect())
        }
        4 => number(rng),
        5 => Value::Bool(rng.one_in(2)),
        6 => Value::Null,
        7 if nested => {
            let tag = serde_yaml_ng::value::Tag::new(*rng.pick(&["binary", "x", "!", "str"]));
            Value::Tagged(Box::new(serde_yaml_ng::value::TaggedValue { tag, value: value(rng, depth + 1) }))
        }
        8 => Value::String(rng.pick(SCALARS).repeat(rng.size(3).max(1))),
        _ => Value::String(rng.pick(SCALARS).to_string()),
    }
}

fn number(rng: &mut Rng) -> Value {
    let numbers: [Number; 10] = [
        0.into(),
        (-1).into(),
        i64::MIN.into(),
        u64::MAX.into(),
        65536.into(),
        f64::NAN.into(),
        f64::INFINITY.into(),
        (-0.0).into(),
        1e308.into(),
        (rng.next_u64() as i64).into(),
    ];
    Value::Number(rng.pick(&numbers).clone())
}

/// A field nested deep, in flow or block style: mostly around serde_yaml's
/// limit of 128 levels, sometimes far past it.
fn nesting(rng: &mut Rng) -> Vec<u8> {
    let depth = match rng.one_in(4) {
        true => rng.between(1, 1_000),
        false => rng.between(100, 160),
    };
    let field = rng.pick(&["name", "config", "hooks", "env", "build"]);
    let body = match rng.below(3) {
        0 => format!("{}x{}", "[".repeat(depth), "]".repeat(depth)),
        1 => format!("{}x{}", "{a: ".repeat(depth), "}".repeat(depth)),
        _ => (0..depth.min(200)).map(|i| format!("\n{}- ", "  ".repeat(i))).collect::<String>() + "x",
    };
    format!("{field}: {body}\n").into_bytes()
}

/// Aliases that fan out: each level repeats the one before `width` times
/// (a "billion laughs" when nothing bounds it).
fn fan_out(rng: &mut Rng) -> Vec<u8> {
    let (levels, width) = (rng.between(1, 12), rng.between(2, 10));
    let mut text = String::from("name: laughs\nenv:\n  l0: &l0 [\"lol\"]\n");
    for level in 1..=levels {
        let refs = vec![format!("*l{}", level - 1); width].join(", ");
        text.push_str(&format!("  l{level}: &l{level} [{refs}]\n"));
    }
    let field = rng.pick(&["config", "dependencies", "allowed_hosts", "routes"]);
    text.push_str(&format!("{field}: *l{levels}\n"));
    text.into_bytes()
}

/// The syntax that random documents never contain.
const EXTRA_SEEDS: &[&str] = &[
    "base: &base {timeout: 5s, memory: 16mb}\nname: merged\n<<: *base\nconfig: {<<: {a: b}, c: d}\n",
    "name: tagged\ntimeout: !!str 5s\nmemory: !!binary aGVsbG8=\nenv: !!map {A: !!str 1}\n",
    "? name\n: complex\nroutes:\n  - path: /x\n    methods: [GET, POST, ?]\n",
    "---\nname: one\n...\n---\nname: two\n",
    "name: block\nconfig:\n  text: |\n    line one\n    line two\n  folded: >-\n    a\n    b\n",
];

fn testdata_manifests() -> Vec<String> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata/functions");
    let mut seeds: Vec<String> = std::fs::read_dir(root)
        .expect("testdata/functions")
        .flatten()
        .filter_map(|entry| std::fs::read_to_string(entry.path().join("manifest.yaml")).ok())
        .collect();
    seeds.sort();
    assert!(!seeds.is_empty(), "testdata/functions has manifests");
    seeds
}

/// The README's manifest with every field.
fn readme_manifest() -> String {
    let readme =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("README.md")).expect("README.md");
    let block = readme
        .split("```yaml\n")
        .skip(1)
        .filter_map(|rest| rest.split_once("```").map(|(yaml, _)| yaml))
        .find(|yaml| yaml.contains("schedules:"));
    block.expect("the README has a full manifest example").to_string()
}
