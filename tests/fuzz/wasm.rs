//! Target `wasm_modules`: Wasm modules through the runtime, compile →
//! instantiate → call every callable export, under tight limits.
//!
//! Inputs are modules from wasm-smith (configured for what our wasmi runs:
//! no GC, threads, exceptions, memory64 or tail calls; small; importing the
//! host's own functions, or random names that must fail to load) and
//! mutated versions of our test plugins. The invariant: compiling fails
//! only with `load_error`; a callable export is never missing or of the
//! wrong type; no step runs far past its limits; nothing panics (the
//! harness catches).

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::{Duration, Instant};

use alyx::runtime::{Error, HOST_IMPORTS, HttpClient, Instance, Limits, Plugin, PluginSpec};
use arbitrary::Unstructured;

use crate::harness::Target;
use crate::mutate::mutate;
use crate::rng::{Rng, mix};

/// How far past its own limit a step may run before it counts as a hang.
const MARGIN: Duration = Duration::from_secs(5);

/// Compiling has no limit of its own; this is generous for small modules.
const COMPILE_TIME: Duration = Duration::from_secs(5);

/// Exports called per module (wasm-smith may export many).
const MAX_CALLS: usize = 16;

/// The input of every call.
const INPUT: &[u8] = br#"{"input": "fuzz"}"#;

/// Largest mutated module, and the most mutations per case.
const MAX_BYTES: usize = 256 << 10;
const MAX_MUTATIONS: usize = 6;

pub struct Modules {
    /// Our test plugins as binaries (name, bytes).
    corpus: Vec<(String, Vec<u8>)>,
    /// A module importing every host function: what wasm-smith may import.
    host_imports: Vec<u8>,
    /// Modules whose exports wasm-smith must reproduce: Extism's shapes.
    export_shapes: Vec<Vec<u8>>,
    /// One client for every plugin (outbound HTTP is denied: no hosts).
    http: Arc<HttpClient>,
    tally: Tally,
}

impl Modules {
    pub fn new() -> Modules {
        Modules {
            corpus: corpus(),
            host_imports: host_imports(),
            export_shapes: EXPORT_SHAPES
                .iter()
                .map(|wat| wat::parse_str(wat).expect("shape is WAT"))
                .collect(),
            http: Arc::new(HttpClient::new()),
            tally: Tally::default(),
        }
    }

    fn smith(&self, rng: &mut Rng) -> Option<Vec<u8>> {
        let data = rng.bytes(16, 4096);
        let mut config = smith_config(rng);
        if rng.one_in(2) {
            config.available_imports = Some(self.host_imports.clone());
        }
        if rng.one_in(2) {
            config.exports = Some(rng.pick(&self.export_shapes).clone());
        }
        wasm_smith::Module::new(config, &mut Unstructured::new(&data)).ok().map(|m| m.to_bytes())
    }

    fn mutant(&self, rng: &mut Rng) -> Vec<u8> {
        let mut wasm = rng.pick(&self.corpus).1.clone();
        let donor = &rng.pick(&self.corpus).1;
        let start = rng.below(donor.len());
        let chunk = &donor[start..(start + 64).min(donor.len())];
        mutate(rng, &mut wasm, &[chunk, b"\0asm\x01\0\0\0"], MAX_MUTATIONS, MAX_BYTES);
        wasm
    }

    fn spec(&self, wasm: &[u8]) -> PluginSpec {
        let mut spec = PluginSpec::new("fuzz", wasm.to_vec());
        spec.limits = limits_for(wasm);
        spec.http = Some(self.http.clone());
        spec.engines = 1;
        spec
    }

    /// Calls every callable export, then a missing one, each on an instance
    /// that may be reused (a fresh one after a call spent it).
    fn call_exports(&mut self, plugin: &Plugin) -> Result<(), String> {
        let mut exports = plugin.exports();
        exports.truncate(MAX_CALLS);
        let mut instance: Option<Instance> = None;
        for export in exports.iter().map(String::as_str).chain([MISSING]) {
            if !instance.as_ref().is_some_and(Instance::is_reusable) {
                match self.instantiate(plugin)? {
                    Some(fresh) => instance = Some(fresh),
                    None => return Ok(()),
                }
            }
            let started = Instant::now();
            let report = instance.as_mut().expect("instantiated above").call(export, INPUT);
            within(started, plugin.limits(), &format!("calling {export:?}"))?;
            check_call(export, &report.result)?;
            self.tally.record("call", report.result.as_ref().err());
        }
        Ok(())
    }

    /// A new instance; `None` when instantiation failed as it may.
    fn instantiate(&mut self, plugin: &Plugin) -> Result<Option<Instance>, String> {
        let started = Instant::now();
        let result = plugin.instantiate();
        within(started, plugin.limits(), "instantiating")?;
        self.tally.record("instantiate", result.as_ref().err());
        match result {
            Ok(instance) => Ok(Some(instance)),
            Err(e @ (Error::MissingExport { .. } | Error::BadSignature { .. } | Error::Busy { .. })) => {
                Err(format!("instantiating failed with {}: {e}", e.kind()))
            }
            Err(_) => Ok(None),
        }
    }
}

/// An export name no module has (wasm-smith names are short).
const MISSING: &str = "alyx fuzz: not an export";

impl Target for Modules {
    const NAME: &'static str = "wasm_modules";
    const EXTENSION: &'static str = "wasm";
    const MAX_CASE_TIME: Duration = Duration::from_secs(120);

    fn generate(&mut self, rng: &mut Rng) -> Vec<u8> {
        match rng.one_in(2) {
            true => self.smith(rng).unwrap_or_else(|| self.mutant(rng)),
            false => self.mutant(rng),
        }
    }

    fn check(&mut self, wasm: &[u8]) -> Result<(), String> {
        let started = Instant::now();
        let compiled = Plugin::compile(self.spec(wasm));
        if started.elapsed() > COMPILE_TIME {
            return Err(format!("compiling took {:.1} s", started.elapsed().as_secs_f64()));
        }
        self.tally.record("compile", compiled.as_ref().err());
        match compiled {
            Ok(plugin) => self.call_exports(&plugin),
            Err(Error::Load { .. }) => Ok(()),
            Err(e) => Err(format!("compiling failed with {} instead of load_error: {e}", e.kind())),
        }
    }

    fn summary(&self) -> String {
        self.tally.to_string()
    }
}

/// Tight limits, chosen from the module's bytes so a replay gets the same:
/// mostly a fuel budget, and one module in eight on the wall clock alone.
fn limits_for(wasm: &[u8]) -> Limits {
    let hash = wasm.iter().fold(0u64, |h, b| mix(h ^ u64::from(*b)));
    let (timeout, fuel) = match hash % 8 {
        0 => (Duration::from_millis(200), None),
        _ => (Duration::from_secs(1), Some(300_000)),
    };
    Limits {
        timeout: Some(timeout),
        fuel,
        memory_bytes: 1 << 20,
        max_output_bytes: 64 << 10,
        max_var_bytes: 4 << 10,
        max_log_bytes: 4 << 10,
        ..Limits::default()
    }
}

/// Fails when a step ran well past the time limit that should have ended it.
fn within(started: Instant, limits: &Limits, step: &str) -> Result<(), String> {
    let took = started.elapsed();
    let allowed = limits.timeout.unwrap_or_default() + MARGIN;
    match took > allowed {
        true => Err(format!("{step} took {:.1} s (timeout {:?})", took.as_secs_f64(), limits.timeout)),
        false => Ok(()),
    }
}

/// A listed export is never missing or mistyped; the missing one always is
/// missing; no call is refused as busy (there is no pool here).
fn check_call(export: &str, result: &Result<Vec<u8>, Error>) -> Result<(), String> {
    let broken = match result {
        Err(Error::MissingExport { .. }) => export != MISSING,
        Err(Error::BadSignature { .. } | Error::Busy { .. }) => true,
        _ => export == MISSING,
    };
    match (broken, result) {
        (false, _) => Ok(()),
        (true, Ok(_)) => Err(format!("calling {export:?} succeeded")),
        (true, Err(e)) => Err(format!("calling {export:?} failed with {}: {e}", e.kind())),
    }
}

/// wasm-smith settings for what our wasmi runs (no memory64, wide
/// arithmetic, custom page sizes or tail calls), kept small.
fn smith_config(rng: &mut Rng) -> wasm_smith::Config {
    wasm_smith::Config {
        gc_enabled: false,
        threads_enabled: false,
        shared_everything_threads_enabled: false,
        exceptions_enabled: false,
        memory64_enabled: false,
        wide_arithmetic_enabled: false,
        custom_page_sizes_enabled: false,
        custom_descriptors_enabled: false,
        compact_imports_enabled: false,
        // The runtime refuses tail calls (see `engine_config`).
        tail_call_enabled: false,
        max_memories: 2,
        max_memory32_bytes: 4 << 20,
        max_tables: 2,
        max_table_elements: 1_000,
        max_funcs: 20,
        max_instructions: 200,
        max_imports: rng.below(12),
        max_exports: 12,
        max_data_segments: 8,
        max_element_segments: 8,
        max_elements: 64,
        max_globals: 10,
        max_types: 20,
        generate_custom_sections: rng.one_in(4),
        export_everything: rng.one_in(4),
        ..wasm_smith::Config::default()
    }
}

/// Export shapes wasm-smith must give some modules: what Extism calls
/// (`() -> i32`, `() -> ()`), an initialiser, `_start`, a bad signature.
const EXPORT_SHAPES: &[&str] = &[
    r#"(module (func (export "handle") (result i32) unreachable) (func (export "run")))"#,
    r#"(module (memory (export "memory") 1)
         (func (export "_initialize")) (func (export "handle") (result i32) unreachable)
         (func (export "_start")) (func (export "count") (param i32) (result i32) unreachable))"#,
];

/// A module importing every function the host provides.
fn host_imports() -> Vec<u8> {
    let types = |spec: &str| spec.chars().map(|c| if c == 'I' { " i64" } else { " i32" }).collect::<String>();
    let mut wat = String::from("(module\n");
    for (module, functions) in HOST_IMPORTS {
        for (name, params, results) in functions {
            let (params, results) = (types(params), types(results));
            wat.push_str(&format!("(import {module:?} {name:?} (func (param{params}) (result{results})))\n"));
        }
    }
    wat.push(')');
    wat::parse_str(&wat).expect("the host imports are valid WAT")
}

/// Every WAT plugin of `testdata/`, compiled to binary.
fn corpus() -> Vec<(String, Vec<u8>)> {
    let root = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("testdata");
    let folders = std::iter::once(root.join("plugins")).chain(
        std::fs::read_dir(root.join("functions")).expect("testdata/functions").flatten().map(|e| e.path()),
    );
    let mut corpus: Vec<(String, Vec<u8>)> = folders
        .flat_map(|folder| std::fs::read_dir(folder).expect("a testdata folder").flatten())
        .map(|entry| entry.path())
        .filter(|path| path.extension().is_some_and(|e| e == "wat"))
        .map(|path| {
            let wasm = wat::parse_file(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            (path.display().to_string(), wasm)
        })
        .collect();
    corpus.sort();
    assert!(corpus.len() > 10, "the test plugins are in testdata/");
    corpus
}

/// How each step ended, by error kind.
#[derive(Default)]
struct Tally(BTreeMap<(&'static str, &'static str), u64>);

impl Tally {
    fn record(&mut self, step: &'static str, error: Option<&Error>) {
        *self.0.entry((step, error.map_or("ok", Error::kind))).or_default() += 1;
    }
}

impl std::fmt::Display for Tally {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        let mut last = None;
        for ((step, kind), count) in &self.0 {
            match last {
                Some(previous) if previous == step => write!(f, ",")?,
                Some(_) => write!(f, "; {step}:")?,
                None => write!(f, "{step}:")?,
            }
            write!(f, " {kind} {count}")?;
            last = Some(step);
        }
        Ok(())
    }
}
