//! One plugin instance and the call sequence: reset the kernel, write the
//! input, run the guest initialiser once, call the export in fuel slices
//! under the deadline, then turn what happened into output or a typed error
//! (ABI sections 5-7 and 12).
//!
//! Why fuel slices: wasmi has no interrupts. Each slice of fuel runs out
//! after a bounded amount of work; wasmi 2 then pauses the call resumably,
//! and we either refill and resume or, past the deadline, give up.
//!
//! Whether an instance may serve another call is decided here too
//! ([`Instance::is_reusable`]): not after a call spent it, and not while it
//! holds much more memory than it started with, because wasmi never shrinks
//! a linear memory and the kernel keeps its arena, so an idle instance would
//! keep its peak memory for as long as it lives.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use wasmi::{Func, Linker, ResumableCall, Store, TrapCode, Val};

use super::binary::START_EXPORT;
use super::error::{Error, HostError, MemoryLimit, TimeLimit};
use super::plugin::Plugin;
use super::signature::{describe, is_callable};
use super::state::{HostState, LogLine, Vars};

/// Fuel per slice: small enough that the deadline is checked about every
/// millisecond and that the stack frames `memory.grow` and `table.grow`
/// keep until a pause stay few (see `plugin::GROW_FUEL`), large enough that
/// refilling costs nothing measurable.
pub(crate) const FUEL_SLICE: u64 = 250_000;

/// The guest initialisers, in the order of preference (ABI section 7.2).
const INITIALISERS: [&str; 2] = ["_initialize", "__wasm_call_ctors"];

/// 64 MiB: the most either memory of an instance may hold when it goes back
/// to its pool, unless it started bigger. A function's idle instances then
/// hold at most `instances` × 64 MiB of each, whatever its memory cap.
const MAX_KEPT_BYTES: u64 = 64 << 20;

/// 1 MiB: growth up to this never makes an instance go. The kernel starts
/// empty and ordinary calls grow small memories a little; making a new
/// instance to save less than this costs more than it saves.
const SMALL_BYTES: u64 = 1 << 20;

/// What one call produced.
#[derive(Debug)]
pub struct CallReport {
    /// The output bytes, or why the call failed.
    pub result: Result<Vec<u8>, Error>,
    /// Lines the plugin logged during the call.
    pub logs: Vec<LogLine>,
    /// Fuel consumed by the call (initialiser included).
    pub fuel_used: u64,
}

/// A live plugin instance: one wasmi store with its modules and kernel.
/// Used by one call at a time (`&mut self`).
pub struct Instance {
    plugin: Plugin,
    store: Store<HostState>,
    main: wasmi::Instance,
    initialised: bool,
    /// Set by [`Ending::spends_instance`]: the instance must not be reused.
    spent: bool,
    /// Its memory right after instantiation and initialisers.
    start: Footprint,
    callables: HashMap<String, Callable>,
    /// The shard this instance stands in for, made on shard 0 while that
    /// one was compiling (see `Pool::create`).
    pub(crate) stand_in_for: Option<usize>,
}

/// The memory an instance holds: all its linear memories, and the Extism
/// memory the kernel keeps between calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Footprint {
    linear: u64,
    kernel: u64,
}

impl Footprint {
    /// The memory rule for reuse: an instance goes when either memory grew
    /// past twice its start (and past [`SMALL_BYTES`]), or past
    /// [`MAX_KEPT_BYTES`] (unless it started bigger, then past its start).
    fn outgrew(self, start: Footprint) -> bool {
        self.linear > keep_limit(start.linear) || self.kernel > keep_limit(start.kernel)
    }
}

/// The most a memory that measured `start` right after instantiation may
/// hold when its instance goes back to the pool.
fn keep_limit(start: u64) -> u64 {
    let relative = start.saturating_mul(2).max(SMALL_BYTES);
    let absolute = MAX_KEPT_BYTES.max(start);
    relative.min(absolute)
}

/// How a call ended: its result, and whether the export's run stopped (a
/// trap, a timeout, `proc_exit`) instead of returning.
struct Ending {
    result: Result<Vec<u8>, Error>,
    stopped: bool,
}

impl Ending {
    fn returned(result: Result<Vec<u8>, Error>) -> Ending {
        Ending { result, stopped: false }
    }

    /// The one rule for reuse (ABI sections 7.3 and 7.5): an instance is
    /// spent after `_start`, after a run that stopped instead of returning
    /// (even `proc_exit(0)`, which succeeds), and after any error that
    /// [`Error::discards_instance`].
    fn spends_instance(&self, export: &str) -> bool {
        let discards = self.result.as_ref().is_err_and(Error::discards_instance);
        export == "_start" || self.stopped || discards
    }
}

/// Why a run stopped early, before it is classified.
enum Stop {
    Timeout(TimeLimit),
    Wasm(wasmi::Error),
}

/// Fuel bookkeeping for one call.
struct Fuel {
    budget: Option<u64>,
    used: u64,
    given: u64,
}

impl Fuel {
    fn new(budget: Option<u64>) -> Fuel {
        Fuel { budget, used: 0, given: 0 }
    }

    /// Fuel for the next slice, at least `required`; `None` once the budget
    /// cannot pay for it.
    fn next(&mut self, required: u64) -> Option<u64> {
        let slice = FUEL_SLICE.max(required);
        let slice = match self.budget {
            Some(budget) => slice.min(budget.saturating_sub(self.used)),
            None => slice,
        };
        (slice > 0 && slice >= required).then(|| {
            self.given = slice;
            slice
        })
    }

    /// Accounts for what the last slice used, given the fuel left.
    fn settle(&mut self, left: u64) {
        self.used += self.given.saturating_sub(left);
        self.given = 0;
    }
}

impl Instance {
    /// Instantiates every module of the plugin on engine shard `shard` and
    /// runs start functions, all within `deadline`.
    pub(crate) fn new(
        plugin: &Plugin,
        shard: usize,
        vars: Arc<Vars>,
        deadline: Option<Instant>,
    ) -> Result<Instance, Error> {
        let shared = plugin.inner.shared.clone();
        let shard = plugin.shard(shard)?;
        let mut fuel = Fuel::new(shared.limits.fuel);
        let mut store = Store::new(&shard.engine, HostState::new(shared, vars));
        store.limiter(|state| &mut state.limiter);
        store.data_mut().deadline = deadline;
        let mut linker: Option<Linker<HostState>> = None;
        let mut main = None;
        for linked in &shard.modules {
            let current = linker.as_ref().unwrap_or(&shard.linker);
            let instance = current
                .instantiate_and_start(&mut store, &linked.module)
                .map_err(|e| instantiation_error(&store, e))?;
            if linked.has_start {
                run_export(&mut store, instance, START_EXPORT, &mut fuel, "start")?;
            }
            match &linked.name {
                Some(name) => {
                    let l = linker.get_or_insert_with(|| shard.linker.clone());
                    l.instance(&mut store, name, instance)
                        .map_err(|e| Error::Load { message: format!("cannot link module {name:?}: {e}") })?;
                    run_initialiser(&mut store, instance, &mut fuel)?;
                }
                None => main = Some(instance),
            }
        }
        let main = main.ok_or_else(|| Error::Load { message: "no main module".into() })?;
        let start = footprint(&store);
        Ok(Instance {
            plugin: plugin.clone(),
            store,
            main,
            initialised: false,
            spent: false,
            start,
            callables: HashMap::new(),
            stand_in_for: None,
        })
    }

    /// The one rule for whether an instance goes back to its pool: not once
    /// a call spent it (see `Ending::spends_instance`), and not while it
    /// holds much more memory than it started with (see
    /// `Footprint::outgrew`). False means: drop it.
    pub fn is_reusable(&self) -> bool {
        !self.spent && !footprint(&self.store).outgrew(self.start)
    }

    /// The plugin this instance belongs to.
    pub fn plugin(&self) -> &Plugin {
        &self.plugin
    }

    /// Calls `export` with `input`; the plugin's own timeout applies.
    pub fn call(&mut self, export: &str, input: &[u8]) -> CallReport {
        let deadline = self.plugin.limits().timeout.map(|t| Instant::now() + t);
        self.call_until(export, input, deadline)
    }

    /// Calls `export` with `input`, stopping at `deadline`.
    pub fn call_until(&mut self, export: &str, input: &[u8], deadline: Option<Instant>) -> CallReport {
        let mut fuel = Fuel::new(self.plugin.limits().fuel);
        let ending = self.run_call(export, input, deadline, &mut fuel);
        self.spent |= ending.spends_instance(export);
        let max_log_bytes = self.plugin.limits().max_log_bytes;
        let logs = self.store.data_mut().logs.take(max_log_bytes);
        CallReport { result: ending.result, logs, fuel_used: fuel.used }
    }

    fn run_call(&mut self, export: &str, input: &[u8], deadline: Option<Instant>, fuel: &mut Fuel) -> Ending {
        let callable = match self.prepare(export, input, deadline, fuel) {
            Ok(callable) => callable,
            Err(error) => return Ending::returned(Err(error)),
        };
        let mut results = [Val::I32(0)];
        let results = &mut results[..usize::from(callable.returns_code)];
        let run = run_func(&mut self.store, callable.func, results, fuel);
        let rc = match results.first() {
            Some(Val::I32(rc)) => *rc,
            _ => 0,
        };
        match run {
            Ok(()) => Ending::returned(finish(&self.store, rc)),
            Err(stop) => Ending { result: classify(&self.store, stop, export, &self.plugin), stopped: true },
        }
    }

    /// Everything before the export runs: reset, look up the export, write
    /// the input, run the guest initialiser on the first call.
    fn prepare(
        &mut self,
        export: &str,
        input: &[u8],
        deadline: Option<Instant>,
        fuel: &mut Fuel,
    ) -> Result<Callable, Error> {
        if self.spent {
            return Err(Error::Load { message: "instance was discarded after a failure".into() });
        }
        let state = self.store.data_mut();
        state.deadline = deadline;
        state.kernel.reset();
        state.limiter.hit = false;
        let callable = self.callable(export)?;
        if !self.store.data_mut().kernel.set_input(input) {
            let limit_bytes = self.store.data().kernel.max_bytes();
            return Err(Error::MemoryLimit { which: MemoryLimit::Kernel, limit_bytes });
        }
        if !self.initialised && !matches!(export, "_start" | "_initialize") {
            self.initialised = true;
            run_initialiser(&mut self.store, self.main, fuel)?;
            // What the initialiser grew is the instance's starting size.
            self.start.linear = footprint(&self.store).linear;
        }
        self.initialised |= export == "_initialize";
        Ok(callable)
    }

    /// The export as a callable function, or why it cannot be called.
    /// Checked once per export and instance: type lookups take a lock that
    /// all instances of the plugin share.
    fn callable(&mut self, export: &str) -> Result<Callable, Error> {
        if let Some(callable) = self.callables.get(export) {
            return Ok(*callable);
        }
        let func = self
            .main
            .get_func(&self.store, export)
            .filter(|_| export != START_EXPORT)
            .ok_or_else(|| Error::MissingExport { name: export.to_string() })?;
        let ty = func.ty(&self.store);
        if !is_callable(&ty) {
            return Err(Error::BadSignature { name: export.to_string(), signature: describe(&ty) });
        }
        let callable = Callable { func, returns_code: !ty.results().is_empty() };
        self.callables.insert(export.to_string(), callable);
        Ok(callable)
    }
}

fn footprint(store: &Store<HostState>) -> Footprint {
    let state = store.data();
    Footprint { linear: state.limiter.linear_bytes(), kernel: state.kernel.held_bytes() }
}

/// A checked export: `() -> i32` (returns a code) or `() -> ()`.
#[derive(Clone, Copy)]
struct Callable {
    func: Func,
    returns_code: bool,
}

fn result_slots(func: &Func, store: &Store<HostState>) -> Vec<Val> {
    func.ty(store).results().iter().map(|_| Val::I32(0)).collect()
}

/// Runs the guest initialiser of one instance, if it exports one: for
/// Haskell `_initialize` then `hs_init`, else the first of [`INITIALISERS`].
fn run_initialiser(
    store: &mut Store<HostState>,
    instance: wasmi::Instance,
    fuel: &mut Fuel,
) -> Result<(), Error> {
    let takes_nothing = |store: &Store<HostState>, name: &str| {
        instance.get_func(store, name).is_some_and(|f| {
            let ty = f.ty(store);
            ty.params().is_empty() && ty.results().is_empty()
        })
    };
    if instance.get_func(&*store, "hs_init").is_some() {
        if takes_nothing(store, "_initialize") {
            run_export(store, instance, "_initialize", fuel, "_initialize")?;
        }
        return run_hs_init(store, instance, fuel);
    }
    match INITIALISERS.iter().find(|name| takes_nothing(store, name)) {
        Some(name) => run_export(store, instance, name, fuel, name),
        None => Ok(()),
    }
}

/// Haskell's `hs_init(argc, argv)` with no arguments.
fn run_hs_init(
    store: &mut Store<HostState>,
    instance: wasmi::Instance,
    fuel: &mut Fuel,
) -> Result<(), Error> {
    let Some(func) = instance.get_func(&*store, "hs_init") else {
        return Ok(());
    };
    let args = [Val::I32(0), Val::I32(0)];
    run_with(store, func, &args, &mut [], fuel).map_err(|stop| classify_init(store, stop, "hs_init"))
}

/// Runs an exported `() -> ()` function to completion (init, start).
fn run_export(
    store: &mut Store<HostState>,
    instance: wasmi::Instance,
    name: &str,
    fuel: &mut Fuel,
    label: &str,
) -> Result<(), Error> {
    let Some(func) = instance.get_func(&*store, name) else {
        return Ok(());
    };
    let mut results = result_slots(&func, store);
    run_func(store, func, &mut results, fuel).map_err(|stop| classify_init(store, stop, label))
}

fn run_func(
    store: &mut Store<HostState>,
    func: Func,
    results: &mut [Val],
    fuel: &mut Fuel,
) -> Result<(), Stop> {
    run_with(store, func, &[], results, fuel)
}

/// The fuel-slice loop: run, and on each out-of-fuel pause check the
/// deadline and the fuel budget, then refill and resume.
fn run_with(
    store: &mut Store<HostState>,
    func: Func,
    args: &[Val],
    results: &mut [Val],
    fuel: &mut Fuel,
) -> Result<(), Stop> {
    let budget = fuel.budget;
    let timeout = store.data().shared.limits.timeout;
    let mut required = 0;
    let mut call = None;
    loop {
        let Some(slice) = fuel.next(required) else {
            return Err(Stop::Timeout(TimeLimit::Fuel(budget.unwrap_or_default())));
        };
        set_fuel(store, slice);
        let step = match call.take() {
            None => func.call_resumable(&mut *store, args, results),
            Some(pending) => wasmi::ResumableCallOutOfFuel::resume(pending, &mut *store, results),
        };
        fuel.settle(store.get_fuel().unwrap_or(0));
        match step.map_err(Stop::Wasm)? {
            ResumableCall::Finished => return Ok(()),
            ResumableCall::HostTrap(trap) => return Err(Stop::Wasm(trap.into_host_error())),
            ResumableCall::OutOfFuel(pending) => {
                if store.data().check_deadline().is_err() {
                    return Err(Stop::Timeout(TimeLimit::WallClock(timeout.unwrap_or_default())));
                }
                required = pending.required_fuel();
                call = Some(pending);
            }
        }
    }
}

fn set_fuel(store: &mut Store<HostState>, fuel: u64) {
    // Fuel metering is always enabled in our engine config.
    let _ = store.set_fuel(fuel);
}

/// Outcome of a normal return (ABI 6.2 step 3).
fn finish(store: &Store<HostState>, rc: i32) -> Result<Vec<u8>, Error> {
    let state = store.data();
    if let Some(message) = state.kernel.error_message() {
        return Err(Error::Plugin { message, rc });
    }
    if rc != 0 {
        return Err(Error::NonZeroReturn { rc });
    }
    let output = state.kernel.output();
    let limit_bytes = state.shared.limits.max_output_bytes;
    if output.len() as u64 > limit_bytes {
        return Err(Error::MemoryLimit { which: MemoryLimit::Output, limit_bytes });
    }
    Ok(output.to_vec())
}

/// Failures during start functions and initialisers.
fn classify_init(store: &Store<HostState>, stop: Stop, label: &str) -> Error {
    match classify_stop(store, stop, label, None) {
        Ok(_) => Error::Load { message: format!("{label} exited with code 0") },
        Err(e) => e,
    }
}

/// Outcome of a call that did not return normally (ABI 6.2 steps 1-2).
fn classify(store: &Store<HostState>, stop: Stop, export: &str, plugin: &Plugin) -> Result<Vec<u8>, Error> {
    let function = plugin.inner.export_names.get(export).cloned();
    classify_stop(store, stop, export, function)
}

fn classify_stop(
    store: &Store<HostState>,
    stop: Stop,
    export: &str,
    function: Option<String>,
) -> Result<Vec<u8>, Error> {
    let state = store.data();
    let limits = &state.shared.limits;
    let error = match stop {
        Stop::Timeout(limit) => return Err(Error::Timeout { limit }),
        Stop::Wasm(error) => error,
    };
    let message = state.kernel.error_message();
    if let Some(host) = error.downcast_ref::<HostError>() {
        return match host {
            HostError::Exit(0) if message.is_none() => finish(store, 0),
            HostError::Exit(code) => Err(Error::Exit { code: *code, message }),
            HostError::Timeout => {
                Err(Error::Timeout { limit: TimeLimit::WallClock(limits.timeout.unwrap_or_default()) })
            }
            HostError::MemoryLimit(which) => Err(memory_limit(state, *which)),
            HostError::Failed { function, message: text } => match message {
                Some(message) => Err(Error::Plugin { message, rc: -1 }),
                None => Err(Error::HostFunction { function: function.clone(), message: text.clone() }),
            },
        };
    }
    if state.limiter.hit {
        return Err(memory_limit(state, MemoryLimit::LinearMemory));
    }
    if state.kernel.limit_hit() {
        return Err(memory_limit(state, MemoryLimit::Kernel));
    }
    match error.as_trap_code() {
        Some(TrapCode::StackOverflow) => Err(Error::StackOverflow { export: export.to_string() }),
        Some(TrapCode::OutOfFuel) => {
            Err(Error::Timeout { limit: TimeLimit::Fuel(limits.fuel.unwrap_or_default()) })
        }
        _ => match message {
            Some(message) => Err(Error::Plugin { message, rc: -1 }),
            None => Err(Error::Trap { message: error.to_string(), export: export.to_string(), function }),
        },
    }
}

fn memory_limit(state: &HostState, which: MemoryLimit) -> Error {
    let limits = &state.shared.limits;
    let limit_bytes = match which {
        MemoryLimit::Vars => limits.max_var_bytes,
        MemoryLimit::Output => limits.max_output_bytes,
        MemoryLimit::LinearMemory | MemoryLimit::Kernel => limits.memory_bytes,
    };
    Error::MemoryLimit { which, limit_bytes }
}

/// Instantiation failures: a memory over the cap, or a link/type error.
fn instantiation_error(store: &Store<HostState>, error: wasmi::Error) -> Error {
    if store.data().limiter.hit {
        return memory_limit(store.data(), MemoryLimit::LinearMemory);
    }
    Error::Load { message: format!("cannot instantiate: {error}") }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::testutil::plugin;
    use crate::units::PAGE;

    const MIB: u64 = 1 << 20;

    fn ending(result: Result<Vec<u8>, Error>, stopped: bool) -> Ending {
        Ending { result, stopped }
    }

    #[test]
    fn a_call_that_returned_keeps_the_instance() {
        assert!(!ending(Ok(Vec::new()), false).spends_instance("run"));
        let plugin_error = || Err(Error::Plugin { message: "x".into(), rc: 1 });
        assert!(!ending(plugin_error(), false).spends_instance("run"));
        assert!(!ending(Err(Error::NonZeroReturn { rc: 2 }), false).spends_instance("run"));
    }

    #[test]
    fn start_a_stopped_run_or_a_discarding_error_spends_it() {
        assert!(ending(Ok(Vec::new()), false).spends_instance("_start"));
        assert!(ending(Ok(Vec::new()), true).spends_instance("run"), "proc_exit(0) succeeds, but stopped");
        let plugin_error = Err(Error::Plugin { message: "x".into(), rc: -1 });
        assert!(ending(plugin_error, true).spends_instance("run"), "error_set, then a trap");
        let timeout = Err(Error::Timeout { limit: TimeLimit::Fuel(5) });
        assert!(ending(timeout, false).spends_instance("run"), "in the initialiser");
    }

    /// A new instance of a test plugin after one successful call.
    #[track_caller]
    fn after_call(file: &str, config: &[(&str, &str)], export: &str, input: &str) -> Instance {
        let mut instance = plugin(file, config).instantiate().unwrap();
        let report = instance.call(export, input.as_bytes());
        assert!(report.result.is_ok(), "{export}({input}): {:?}", report.result);
        instance
    }

    fn linear_bytes(instance: &Instance) -> u64 {
        footprint(&instance.store).linear
    }

    #[test]
    fn memory_may_double_from_1_mib_up_to_64_mib_unless_it_started_bigger() {
        assert_eq!(keep_limit(0), MIB, "the kernel starts empty");
        assert_eq!(keep_limit(PAGE), MIB);
        assert_eq!(keep_limit(10 * MIB), 20 * MIB);
        assert_eq!(keep_limit(40 * MIB), 64 * MIB);
        assert_eq!(keep_limit(70 * MIB), 70 * MIB);
        let start = Footprint { linear: 10 * MIB, kernel: 0 };
        assert!(!Footprint { linear: 20 * MIB, kernel: MIB }.outgrew(start));
        assert!(Footprint { linear: 20 * MIB + 1, kernel: 0 }.outgrew(start));
        assert!(Footprint { linear: 10 * MIB, kernel: MIB + 1 }.outgrew(start));
    }

    #[test]
    fn an_instance_that_grew_a_little_goes_back() {
        let instance = after_call("memory.wat", &[], "grow", "8");
        assert_eq!(linear_bytes(&instance), 9 * PAGE);
        assert!(instance.is_reusable());
        assert!(after_call("memory.wat", &[], "huge_output", "100000").is_reusable());
    }

    #[test]
    fn an_instance_whose_linear_memory_grew_past_twice_its_start_is_dropped() {
        let instance = after_call("memory.wat", &[], "grow", "17");
        assert_eq!(linear_bytes(&instance), 18 * PAGE);
        assert!(!instance.is_reusable(), "1 page at the start, 18 pages (1.1 MiB) now");
    }

    #[test]
    fn an_instance_whose_extism_memory_grew_past_its_limit_is_dropped() {
        let instance = after_call("memory.wat", &[], "huge_output", &(2 * MIB).to_string());
        assert!(instance.store.data().kernel.held_bytes() >= 2 * MIB);
        assert!(!instance.is_reusable(), "the kernel arena keeps 2 MiB after the call");
    }

    #[test]
    fn a_growth_that_waits_for_fuel_is_counted_once() {
        // 1100 pages cost more fuel than one slice: wasmi fails the growth,
        // pauses, and grows again when the call resumes.
        let instance = after_call("memory.wat", &[], "grow", "1100");
        let memory = instance.main.get_memory(&instance.store, "memory").unwrap();
        assert_eq!(linear_bytes(&instance), memory.data_size(&instance.store) as u64);
        assert_eq!(linear_bytes(&instance), 1101 * PAGE);
        assert!(!instance.is_reusable(), "68.8 MiB is past 64 MiB");
    }

    #[test]
    fn what_the_initialiser_grew_counts_as_the_start() {
        let grown = [("init_pages", "101"), ("pages", "151")];
        let instance = after_call("grow.wat", &grown, "grow", "");
        assert_eq!((instance.start.linear, linear_bytes(&instance)), (101 * PAGE, 151 * PAGE));
        assert!(instance.is_reusable(), "151 pages is less than twice 101");
        let instance = after_call("grow.wat", &[("pages", "51")], "grow", "");
        assert!(!instance.is_reusable(), "51 pages is more than 1 MiB and twice 1 page");
    }

    #[test]
    fn a_spent_instance_is_not_reused_whatever_its_memory() {
        let mut instance = plugin("memory.wat", &[]).instantiate().unwrap();
        assert!(instance.is_reusable());
        assert!(instance.call("alloc_bomb", b"").result.is_err());
        assert!(!instance.is_reusable());
    }
}
