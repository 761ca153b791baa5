//! Compiling a plugin: bytes (or WAT text) in, a validated, linked,
//! immutable [`Plugin`] out, shared by all its instances.
//!
//! Everything that can be known before running is checked here, so a bad
//! plugin fails at load with a message naming the problem: invalid Wasm, an
//! `extism:host/env` import that is not in the ABI or has the wrong type, a
//! user host function nobody defined, a linked module that is missing.

use std::collections::{BTreeMap, HashMap};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, OnceLock};

use wasmi::{
    CompilationMode, Config, CustomFuelCosts, Engine, ExternType, FuncType, Linker, Module, OperatorCost,
};

use super::binary;
use super::error::Error;
use super::host_env;
use super::hosts::AllowedHosts;
use super::instance::FUEL_SLICE;
use super::limits::Limits;
use super::outbound::HttpClient;
use super::signature::{self, describe, is_callable};
use super::state::{HostState, LogLevel, Shared, Vars};
use super::user::{self, HostFunction};
use super::wasi;

/// One module of a plugin: its link name and its bytes (binary or WAT).
#[derive(Debug, Clone)]
pub struct ModuleSource {
    pub name: Option<String>,
    pub wasm: Vec<u8>,
}

/// Reads a plugin's modules again, for an engine shard built after load,
/// so the bytes need not stay in memory until then. It must return the
/// very modules of the spec, or an error (the registry re-reads the file
/// and checks its hash). What it returns is validated again all the same.
pub type Reread = Arc<dyn Fn() -> Result<Vec<ModuleSource>, String> + Send + Sync>;

/// Everything needed to compile a plugin.
#[derive(Clone)]
pub struct PluginSpec {
    /// Name used in logs and messages (the function's name).
    pub name: String,
    /// The modules; the main one is named `main`, else the last one.
    pub modules: Vec<ModuleSource>,
    pub limits: Limits,
    pub config: BTreeMap<String, String>,
    /// Host name globs outbound HTTP may reach; empty denies all.
    pub allowed_hosts: Vec<String>,
    /// Whether `http_headers` returns the last response's headers.
    pub http_response_headers: bool,
    pub log_level: LogLevel,
    pub host_functions: Vec<HostFunction>,
    /// The HTTP client to share (one agent per process); a new one if `None`.
    pub http: Option<Arc<HttpClient>>,
    /// Engine shards to spread parallel calls over (see [`Compiled`]).
    pub engines: usize,
    /// Where later shards get the modules from; `None` keeps the bytes.
    pub reread: Option<Reread>,
}

impl std::fmt::Debug for PluginSpec {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PluginSpec")
            .field("name", &self.name)
            .field("modules", &self.modules.len())
            .field("limits", &self.limits)
            .field("engines", &self.engines)
            .field("reread", &self.reread.is_some())
            .finish_non_exhaustive()
    }
}

impl PluginSpec {
    /// A single-module plugin with default limits and no host access.
    pub fn new(name: &str, wasm: Vec<u8>) -> PluginSpec {
        PluginSpec {
            name: name.to_string(),
            modules: vec![ModuleSource { name: None, wasm }],
            limits: Limits::default(),
            config: BTreeMap::new(),
            allowed_hosts: Vec::new(),
            http_response_headers: false,
            log_level: LogLevel::Info,
            host_functions: Vec::new(),
            http: None,
            engines: default_engines(),
            reread: None,
        }
    }
}

/// A compiled module ready to instantiate.
pub(crate) struct LinkedModule {
    /// The link name (`None` for the main module).
    pub name: Option<String>,
    pub module: Module,
    /// Whether a start section was detached (run as [`binary::START_EXPORT`]).
    pub has_start: bool,
}

/// A module ready to compile: link name and bytes, start section detached.
struct Prepared {
    name: Option<String>,
    label: String,
    wasm: Vec<u8>,
    has_start: bool,
}

/// One compiled copy of the plugin on its own engine.
pub(crate) struct Shard {
    pub engine: Engine,
    pub linker: Linker<HostState>,
    /// Dependencies first, the main module last.
    pub modules: Vec<LinkedModule>,
}

/// Why shards: every call on a wasmi engine touches state the engine shares
/// between its stores (a stack cache behind a mutex, a type registry behind
/// a lock, the engine's reference count). Instances on one engine therefore
/// slow each other down when they run in parallel: two threads calling one
/// QuickJS plugin on one engine ran 1.1x one thread, on two engines 1.2x;
/// count_vowels 1.03x and 1.9x. Each shard is a separate engine with its
/// own copy of the compiled code; the pool spreads concurrent calls over
/// them. Shard 0 is compiled (and so validated) at load; the others only
/// once calls run in parallel (the pool builds them in the background while
/// shard 0 stands in, never on a call's path).
pub(crate) struct Compiled {
    later: Later,
    shards: Vec<OnceLock<Shard>>,
    host_functions: Vec<HostFunction>,
    pub shared: Arc<Shared>,
    /// Export → internal function name of the main module (name section).
    pub export_names: HashMap<String, String>,
}

/// Where shards after the first are compiled from.
enum Later {
    /// There are none.
    Nothing,
    /// The prepared modules, kept (validated with shard 0).
    Kept(Vec<Prepared>),
    /// Read again when needed: a 2.2 MB QuickJS plugin does not keep its
    /// bytes for a shard most functions never build.
    Reread(Reread),
}

/// A compiled plugin version: cheap to clone, immutable, `Send + Sync`.
#[derive(Clone)]
pub struct Plugin {
    pub(crate) inner: Arc<Compiled>,
}

impl std::fmt::Debug for Plugin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Plugin({})", self.inner.shared.name)
    }
}

/// Engine shards by default: one per core, at most 4 (each costs a copy of
/// the compiled code; beyond a few, contention is no longer the limit).
pub fn default_engines() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get()).min(4)
}

impl Plugin {
    /// Compiles and links a plugin; fails with [`Error::Load`].
    pub fn compile(spec: PluginSpec) -> Result<Plugin, Error> {
        let prepared = prepare(&spec.modules)?;
        let main_wasm = &prepared.last().expect("prepare returns at least one module").wasm;
        let export_names = binary::export_function_names(main_wasm);
        let shared = Arc::new(shared_state(&spec)?);
        let first = build_shard(&prepared, &spec.limits, &spec.host_functions, Validation::Eager)?;
        check_imports(&first.modules, &spec.host_functions)?;
        let shards: Vec<OnceLock<Shard>> = (0..spec.engines.max(1)).map(|_| OnceLock::new()).collect();
        let _ = shards[0].set(first);
        let later = match (shards.len(), spec.reread) {
            (1, _) => Later::Nothing,
            (_, Some(reread)) => Later::Reread(reread),
            (_, None) => Later::Kept(prepared),
        };
        let host_functions = spec.host_functions;
        let compiled = Compiled { later, shards, host_functions, shared, export_names };
        Ok(Plugin { inner: Arc::new(compiled) })
    }

    /// The name given in the spec.
    pub fn name(&self) -> &str {
        &self.inner.shared.name
    }

    pub fn limits(&self) -> &Limits {
        &self.inner.shared.limits
    }

    /// How many engine shards instances are spread over.
    pub fn engines(&self) -> usize {
        self.inner.shards.len()
    }

    /// Names of the main module's callable exports (`() -> ()`/`() -> i32`).
    pub fn exports(&self) -> Vec<String> {
        let main = &self.first().modules.last().expect("a plugin has a main module").module;
        main.exports()
            .filter(|e| matches!(e.ty(), ExternType::Func(f) if is_callable(f)))
            .map(|e| e.name().to_string())
            .filter(|n| n != binary::START_EXPORT)
            .collect()
    }

    /// Creates a fresh instance with its own vars.
    pub fn instantiate(&self) -> Result<super::Instance, Error> {
        self.instantiate_sharing(Vars::new())
    }

    /// Creates a fresh instance using `vars`, shared with other instances
    /// (as a [`super::Pool`] does for the instances of one function).
    pub fn instantiate_sharing(&self, vars: Arc<Vars>) -> Result<super::Instance, Error> {
        let deadline = self.limits().timeout.map(|t| std::time::Instant::now() + t);
        super::Instance::new(self, 0, vars, deadline)
    }

    fn first(&self) -> &Shard {
        self.inner.shards[0].get().expect("shard 0 is compiled at load")
    }

    /// Whether shard `index` (modulo the shard count) is compiled.
    pub(crate) fn has_shard(&self, index: usize) -> bool {
        self.inner.shards[index % self.inner.shards.len()].get().is_some()
    }

    /// Compiles every shard now (benches, tests).
    pub fn compile_shards(&self) -> Result<(), Error> {
        (0..self.engines()).try_for_each(|index| self.shard(index).map(drop))
    }

    /// Shard `index` (modulo the shard count), compiled on first use: a
    /// blocking compile, for a background thread (see [`super::Pool`]).
    pub(crate) fn shard(&self, index: usize) -> Result<&Shard, Error> {
        let cell = &self.inner.shards[index % self.inner.shards.len()];
        if let Some(shard) = cell.get() {
            return Ok(shard);
        }
        let inner = &self.inner;
        let (limits, functions) = (&inner.shared.limits, &inner.host_functions);
        let shard = match &inner.later {
            Later::Nothing => unreachable!("a plugin with one shard has shard 0 from load"),
            // Shard 0 validated these very bytes at load.
            Later::Kept(prepared) => build_shard(prepared, limits, functions, Validation::Done)?,
            Later::Reread(reread) => {
                let modules = reread().map_err(|message| Error::Load { message })?;
                build_shard(&prepare(&modules)?, limits, functions, Validation::Eager)?
            }
        };
        // Two threads may compile the same shard at once; either copy will do.
        let _ = cell.set(shard);
        Ok(cell.get().expect("set just above"))
    }
}

/// Whether a shard's modules still need validating: shard 0 validates at
/// load, so a plugin with invalid code fails there; later shards compile
/// the same bytes and skip it.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Validation {
    Eager,
    Done,
}

/// Translation fuel is zero, so a call's fuel counts only the instructions
/// it executes, wherever wasmi translates a function.
const FUEL_COSTS: CustomFuelCosts =
    CustomFuelCosts { bytes_copied_per_fuel: 64, fuel_per_bytes_translated: 0, fuel_per_bytes_validated: 0 };

/// Fuel for each `memory.grow` and `table.grow`, the most wasmi allows.
/// With tail-call dispatch (wasmi 2.0.0, optimised builds) these two
/// handlers, when they fail or grow by nothing, call the next instruction's
/// handler instead of jumping to it, so each such run keeps a native stack
/// frame (176 bytes) until the call pauses or ends; a plugin retrying
/// growth in a loop would overflow the thread's stack and abort the
/// process. Every other handler jumps (checked on the
/// disassembly, README Dependencies). At this price a fuel slice runs at
/// most `FUEL_SLICE / 255` of them: 980 frames, 169 KiB. Fuel is charged
/// per block, and a block is never split over slices, so one function may
/// hold at most that many too ([`MAX_GROWS`], checked at load).
pub(crate) const GROW_FUEL: u8 = u8::MAX;

/// The most `memory.grow` and `table.grow` one function may hold.
const MAX_GROWS: usize = (FUEL_SLICE / GROW_FUEL as u64) as usize;

fn operator_costs() -> OperatorCost {
    OperatorCost { memory_grow: GROW_FUEL, table_grow: GROW_FUEL, ..OperatorCost::default() }
}

fn engine_config(limits: &Limits, validation: Validation) -> Config {
    let mut config = Config::default();
    config.consume_fuel(true);
    config.fuel_cost(FUEL_COSTS);
    config.operator_cost(operator_costs());
    // Functions are translated on their first call, not at load: a QuickJS
    // plugin loads 3-4x faster and an engine holds only the code a plugin
    // runs. Translation charges no fuel (see FUEL_COSTS); its time falls on
    // the first call of each function on each shard.
    config.compilation_mode(match validation {
        Validation::Eager => CompilationMode::LazyTranslation,
        Validation::Done => CompilationMode::Lazy,
    });
    config.set_max_recursion_depth(limits.max_recursion_depth.max(1));
    // wasmi requires max >= its minimum stack height (1000 slots).
    config.set_max_stack_height(limits.max_stack_height.max(1_000));
    // No tail calls: in wasmi 2.0.0 a Wasm function called from Wasm that
    // tail-calls a host function leaves the caller's frame invalid, and the
    // process crashes (SIGSEGV) when the caller goes on. Such plugins fail
    // to load instead (README, Known limitations).
    config.wasm_tail_call(false);
    config
}

fn to_binary(source: &ModuleSource) -> Result<Vec<u8>, Error> {
    if source.wasm.starts_with(b"\0asm") {
        return Ok(source.wasm.clone());
    }
    let text = std::str::from_utf8(&source.wasm)
        .map_err(|e| format!("not UTF-8 (at byte {})", e.valid_up_to()))
        .and_then(parse_wat);
    text.map_err(|e| Error::Load { message: format!("not a Wasm binary, and not valid WAT text: {e}") })
}

/// WAT text to a Wasm binary. An error says what was expected and where,
/// never the line itself: the file may be anything but WAT, and load
/// errors reach logs and the API.
fn parse_wat(text: &str) -> Result<Vec<u8>, String> {
    let at = |e: wast::Error| {
        let (line, column) = e.span().linecol_in(text);
        format!("{} at line {}, column {}", crate::quote::clip(&e.message()), line + 1, column + 1)
    };
    let buffer = wast::parser::ParseBuffer::new(text).map_err(at)?;
    let mut wat = wast::parser::parse::<wast::Wat>(&buffer).map_err(at)?;
    wat.encode().map_err(at)
}

/// Indices of the modules in instantiation order: main last.
fn link_order(modules: &[ModuleSource]) -> Result<Vec<usize>, Error> {
    if modules.is_empty() {
        return Err(Error::Load { message: "no Wasm module given".into() });
    }
    let mut seen = std::collections::HashSet::new();
    for name in modules.iter().filter_map(|m| m.name.as_deref()) {
        if !seen.insert(name) {
            return Err(Error::Load { message: format!("two modules are named {name:?}") });
        }
        if name == host_env::MODULE || name == wasi::MODULE {
            return Err(Error::Load { message: format!("a module may not be named {name:?}") });
        }
    }
    let main = modules.iter().position(|m| m.name.as_deref() == Some("main")).unwrap_or(modules.len() - 1);
    let mut order: Vec<usize> = (0..modules.len()).filter(|i| *i != main).collect();
    order.push(main);
    Ok(order)
}

/// Converts, orders (main last) and detaches start sections, once.
fn prepare(modules: &[ModuleSource]) -> Result<Vec<Prepared>, Error> {
    let order = link_order(modules)?;
    let main = *order.last().expect("link_order returns at least one module");
    order.iter().map(|index| prepare_one(&modules[*index], *index == main)).collect()
}

fn prepare_one(source: &ModuleSource, is_main: bool) -> Result<Prepared, Error> {
    let label = module_label(source);
    let bytes = to_binary(source)?;
    let detached = binary::detach_start(&bytes)
        .map_err(|e| Error::Load { message: format!("invalid Wasm{label}: {e}") })?;
    let name = if is_main { None } else { source.name.clone() };
    if !is_main && name.is_none() {
        return Err(Error::Load {
            message: "every module but the main one needs a name (imports refer to it)".into(),
        });
    }
    if let Some(refused) = binary::refused_code(&bytes, MAX_GROWS) {
        return Err(Error::Load { message: format!("invalid Wasm{label}: {refused}") });
    }
    let has_start = detached.is_some();
    Ok(Prepared { name, label, wasm: detached.unwrap_or(bytes), has_start })
}

/// Compiles every module on a new engine and builds its linker.
fn build_shard(
    prepared: &[Prepared],
    limits: &Limits,
    functions: &[HostFunction],
    validation: Validation,
) -> Result<Shard, Error> {
    let engine = Engine::new(&engine_config(limits, validation));
    let modules = prepared
        .iter()
        .map(|p| {
            let module = compile_module(&engine, p)?;
            Ok(LinkedModule { name: p.name.clone(), module, has_start: p.has_start })
        })
        .collect::<Result<Vec<_>, Error>>()?;
    let linker = build_linker(&engine, functions)?;
    Ok(Shard { engine, linker, modules })
}

/// Compiles one module on `engine`. A panic in wasmi is a load error too:
/// its translator has debug assertions that malformed code reaches (in
/// wasmi 2.0.0, an instruction after a function's final `end`, which
/// validation refuses only later), and loading a bad plugin must not end
/// the thread that loads it. The engine is new and is dropped with the
/// error, so nothing the panic left half-done is used again.
fn compile_module(engine: &Engine, p: &Prepared) -> Result<Module, Error> {
    let invalid =
        |e: &dyn std::fmt::Display| Error::Load { message: format!("invalid Wasm{}: {e}", p.label) };
    match std::panic::catch_unwind(AssertUnwindSafe(|| Module::new(engine, &p.wasm))) {
        Ok(compiled) => compiled.map_err(|e| invalid(&e)),
        Err(_) => Err(invalid(&"the compiler failed on it (wasmi panicked)")),
    }
}

fn module_label(source: &ModuleSource) -> String {
    source.name.as_ref().map(|n| format!(" in module {n:?}")).unwrap_or_default()
}

fn shared_state(spec: &PluginSpec) -> Result<Shared, Error> {
    let allowed_hosts = AllowedHosts::new(&spec.allowed_hosts).map_err(|message| Error::Load { message })?;
    Ok(Shared {
        name: spec.name.clone(),
        limits: spec.limits.clone(),
        config: spec.config.clone(),
        allowed_hosts,
        http: spec.http.clone().unwrap_or_else(|| Arc::new(HttpClient::new())),
        http_response_headers: spec.http_response_headers,
        log_level: spec.log_level,
    })
}

fn build_linker(engine: &Engine, functions: &[HostFunction]) -> Result<Linker<HostState>, Error> {
    let mut linker = Linker::new(engine);
    let defined = host_env::define(&mut linker)
        .and_then(|()| wasi::define(&mut linker))
        .and_then(|()| user::define(&mut linker, functions));
    defined.map_err(|e| Error::Load { message: format!("cannot define host functions: {e}") })?;
    Ok(linker)
}

/// Every import must be provided by the host or by a linked module, with
/// the exact type.
fn check_imports(modules: &[LinkedModule], functions: &[HostFunction]) -> Result<(), Error> {
    for (position, linked) in modules.iter().enumerate() {
        for import in linked.module.imports() {
            let (module, name) = (import.module(), import.name());
            let provider = modules[..position].iter().find(|m| m.name.as_deref() == Some(module));
            let provided = match provider {
                Some(dep) => dep.module.get_export(name),
                None => host_signature(module, name, functions).map(ExternType::Func),
            };
            check_import(module, name, import.ty(), provided, provider.is_some())?;
        }
    }
    Ok(())
}

/// The type of a host-provided function, if the host provides it.
fn host_signature(module: &str, name: &str, functions: &[HostFunction]) -> Option<FuncType> {
    match module {
        host_env::MODULE => signature::lookup(host_env::SIGNATURES, name),
        wasi::MODULE => signature::lookup(wasi::SIGNATURES, name),
        _ => user::signature(module, name, functions),
    }
}

fn check_import(
    module: &str,
    name: &str,
    wanted: &ExternType,
    provided: Option<ExternType>,
    from_module: bool,
) -> Result<(), Error> {
    let wanted_text = describe_extern(wanted);
    let load = |message: String| Err(Error::Load { message });
    match provided {
        None if module == host_env::MODULE => load(format!(
            "unknown import {module}::{name} {wanted_text}: not part of the Extism ABI alyx \
             implements (the plugin may be built with a newer PDK)"
        )),
        None if from_module => load(format!(
            "unknown import {module}::{name} {wanted_text}: module {module:?} does not export it"
        )),
        None => load(format!(
            "unknown import {module}::{name} {wanted_text}: no host function or linked module provides it"
        )),
        Some(ExternType::Func(have)) => match wanted {
            ExternType::Func(want) if *want == have => Ok(()),
            _ => load(format!(
                "import {module}::{name} has type {wanted_text}, but alyx provides {}",
                describe(&have)
            )),
        },
        Some(_) if from_module => Ok(()),
        Some(_) => load(format!("import {module}::{name}: only functions can be imported from the host")),
    }
}

fn describe_extern(ty: &ExternType) -> String {
    match ty {
        ExternType::Func(f) => describe(f),
        ExternType::Memory(_) => "(memory)".into(),
        ExternType::Table(_) => "(table)".into(),
        ExternType::Global(_) => "(global)".into(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn two_shards(reread: Option<Reread>) -> Plugin {
        let mut spec = PluginSpec::new("two", b"(module (func (export \"run\")))".to_vec());
        spec.engines = 2;
        spec.reread = reread;
        Plugin::compile(spec).unwrap()
    }

    #[test]
    fn later_shards_compile_on_demand_from_the_kept_bytes() {
        let plugin = two_shards(None);
        assert!(plugin.has_shard(0) && !plugin.has_shard(1), "only shard 0 at load");
        plugin.shard(3).unwrap();
        assert!(plugin.has_shard(1), "indices wrap around the shard count");
    }

    #[test]
    fn later_shards_read_the_modules_again_and_validate_them() {
        let reads = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let counted = reads.clone();
        let plugin = two_shards(Some(Arc::new(move || {
            counted.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            Ok(vec![ModuleSource { name: None, wasm: b"(module (func (export \"run\")))".to_vec() }])
        })));
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 0, "nothing read again at load");
        plugin.shard(1).unwrap();
        plugin.shard(1).unwrap();
        assert_eq!(reads.load(std::sync::atomic::Ordering::SeqCst), 1, "once, for the shard");

        let failing = two_shards(Some(Arc::new(|| Err("plugin.wasm changed since it was loaded".into()))));
        let error = failing.shard(1).err().expect("no shard without its modules");
        assert_eq!(error, Error::Load { message: "plugin.wasm changed since it was loaded".into() });
        assert!(!failing.has_shard(1));

        let invalid =
            two_shards(Some(Arc::new(|| Ok(vec![ModuleSource { name: None, wasm: b"\0asm\x01".to_vec() }]))));
        assert!(matches!(invalid.shard(1), Err(Error::Load { .. })), "what is read again is validated again");
    }

    /// (module name, its signature table)
    type Table = (&'static str, &'static [signature::Signature]);

    /// A module importing every function of `tables` with the table's types.
    fn importer(tables: &[Table]) -> Vec<u8> {
        let wat_type =
            |spec: &str| spec.chars().map(|c| if c == 'I' { " i64" } else { " i32" }).collect::<String>();
        let mut wat = String::from("(module\n");
        for (module, table) in tables {
            for (name, params, results) in *table {
                let (p, r) = (wat_type(params), wat_type(results));
                wat.push_str(&format!("(import \"{module}\" \"{name}\" (func (param{p}) (result{r})))\n"));
            }
        }
        wat.push_str("(memory (export \"memory\") 1))");
        wat.into_bytes()
    }

    #[test]
    fn the_linker_defines_every_name_of_the_signature_tables() {
        let wasm = importer(&[(host_env::MODULE, host_env::SIGNATURES), (wasi::MODULE, wasi::SIGNATURES)]);
        let plugin = Plugin::compile(PluginSpec::new("all", wasm)).expect("every import is known");
        plugin.instantiate().expect("and the linker provides each with that type");
    }

    #[track_caller]
    fn load_error(source: &[u8]) -> String {
        match Plugin::compile(PluginSpec::new("p", source.to_vec())) {
            Err(Error::Load { message }) => message,
            Err(other) => panic!("{other:?}"),
            Ok(_) => panic!("{:?} loaded", String::from_utf8_lossy(source)),
        }
    }

    #[test]
    fn a_file_that_is_not_wasm_is_refused_without_repeating_it() {
        let secret = b"root:x:0:0:root:/root:/bin/bash\ndaemon:x:1:1::/usr/sbin:/usr/sbin/nologin\n";
        assert_eq!(
            load_error(secret),
            "not a Wasm binary, and not valid WAT text: expected `(` at line 1, column 1"
        );
        assert_eq!(
            load_error(b"(module\n  (func (export \"f\") (result i32)\n    (i32.const oops)))"),
            "not a Wasm binary, and not valid WAT text: expected a i32 at line 3, column 16"
        );
        assert_eq!(
            load_error(b"\xff\xfe("),
            "not a Wasm binary, and not valid WAT text: not UTF-8 (at byte 0)"
        );
    }

    #[test]
    fn a_long_wat_message_is_clipped() {
        let name = "x".repeat(10_000);
        let message = load_error(format!("(module (func (call ${name})))").as_bytes());
        assert!(message.len() < 200 && message.contains("failed to find name `$xxx"), "{message}");
    }

    #[test]
    fn the_abi_has_32_env_functions_and_wasi_is_complete() {
        assert_eq!(host_env::SIGNATURES.len(), 32);
        assert_eq!(wasi::SIGNATURES.len(), 46, "every preview1 function");
    }
}
