//! One plugin instance and the call sequence: reset the kernel, write the
//! input, run the guest initialiser once, call the export in fuel slices
//! under the deadline, then turn what happened into output or a typed error
//! (ABI sections 5-7 and 12).
//!
//! Why fuel slices: wasmi has no interrupts. Each slice of fuel runs out
//! after a bounded amount of work; wasmi 2 then pauses the call resumably,
//! and we either refill and resume or, past the deadline, give up.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use wasmi::{Func, Linker, ResumableCall, Store, TrapCode, Val};

use super::binary::START_EXPORT;
use super::error::{Error, HostError, MemoryLimit, TimeLimit};
use super::plugin::Plugin;
use super::signature::{describe, is_callable};
use super::state::{HostState, LogLine, Vars};

/// Fuel per slice: small enough that the deadline is checked every few
/// milliseconds, large enough that refilling costs nothing measurable.
const FUEL_SLICE: u64 = 1_000_000;

/// The guest initialisers, in the order of preference (ABI section 7.2).
const INITIALISERS: [&str; 2] = ["_initialize", "__wasm_call_ctors"];

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
    callables: HashMap<String, Callable>,
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
        Ok(Instance {
            plugin: plugin.clone(),
            store,
            main,
            initialised: false,
            spent: false,
            callables: HashMap::new(),
        })
    }

    /// False once a call spent the instance (see `Ending::spends_instance`):
    /// drop it.
    pub fn is_reusable(&self) -> bool {
        !self.spent
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
}
