//! The plugin runtime against our own test plugins (`testdata/plugins`),
//! one behaviour of the Extism ABI per test. Outcomes and fuel are asserted,
//! never wall time.

mod common;

use std::sync::{Arc, Mutex, mpsc};
use std::time::Duration;

use alyx::runtime::{
    CallReport, Error, HostFunction, Instance, Limits, LogLevel, MemoryLimit, ModuleSource, Plugin,
    PluginSpec, Pool, TimeLimit, Value, ValueType, Vars,
};
use common::{TestServer, plugin_bytes};

fn spec(file: &str) -> PluginSpec {
    let mut spec = PluginSpec::new(file, plugin_bytes(file));
    spec.limits = Limits { timeout: Some(Duration::from_secs(10)), ..Limits::default() };
    spec
}

fn compile(spec: PluginSpec) -> Plugin {
    Plugin::compile(spec).expect("plugin compiles")
}

fn instance(file: &str) -> Instance {
    compile(spec(file)).instantiate().expect("plugin instantiates")
}

fn call(file: &str, export: &str, input: &str) -> CallReport {
    instance(file).call(export, input.as_bytes())
}

#[track_caller]
fn output(report: &CallReport) -> String {
    match &report.result {
        Ok(bytes) => String::from_utf8_lossy(bytes).into_owned(),
        Err(e) => panic!("expected success, got {:?}: {e}", e.kind()),
    }
}

#[track_caller]
fn failure(report: CallReport) -> Error {
    match report.result {
        Ok(bytes) => panic!("expected failure, got output {:?}", String::from_utf8_lossy(&bytes)),
        Err(e) => e,
    }
}

#[track_caller]
fn load_error(spec: PluginSpec) -> String {
    match Plugin::compile(spec) {
        Err(Error::Load { message }) => message,
        Err(other) => panic!("expected a load error, got {other:?}"),
        Ok(_) => panic!("expected a load error, the plugin compiled"),
    }
}

// --- input and output -------------------------------------------------------

#[test]
fn echo_copies_input_read_in_u64_chunks() {
    assert_eq!(output(&call("echo.wat", "echo", "hello, wasm world")), "hello, wasm world");
}

#[test]
fn echo_through_input_offset_and_load() {
    assert_eq!(output(&call("echo.wat", "echo_offset", "abcdefghijk")), "abcdefghijk");
}

#[test]
fn empty_input_is_length_zero() {
    assert_eq!(output(&call("echo.wat", "input_len", "")), "0");
    assert_eq!(output(&call("echo.wat", "input_len", "12345")), "5");
}

#[test]
fn output_may_be_empty_or_never_set() {
    assert_eq!(output(&call("echo.wat", "empty", "x")), "");
    assert_eq!(output(&call("echo.wat", "noop", "x")), "");
}

#[test]
fn output_span_may_start_inside_a_block() {
    assert_eq!(output(&call("echo.wat", "span", "hello")), "llo");
}

#[test]
fn exports_returning_nothing_are_callable() {
    assert_eq!(output(&call("echo.wat", "unit", "")), "unit");
}

#[test]
fn binary_input_round_trips() {
    let bytes: Vec<u8> = (0..=255).collect();
    let report = instance("echo.wat").call("echo", &bytes);
    assert_eq!(report.result.unwrap(), bytes);
}

// --- config and vars --------------------------------------------------------

#[test]
fn config_values_are_readable() {
    let mut spec = spec("config.wat");
    spec.config.insert("greeting".into(), "hi there".into());
    let mut instance = compile(spec).instantiate().unwrap();
    assert_eq!(output(&instance.call("get", b"greeting")), "hi there");
    let missing = failure(instance.call("get", b"nope"));
    assert_eq!(missing, Error::Plugin { message: "missing config key".into(), rc: 1 });
}

#[test]
fn vars_persist_across_calls() {
    let mut instance = instance("vars.wat");
    let counts: Vec<String> = (0..3).map(|_| output(&instance.call("incr", b""))).collect();
    assert_eq!(counts, ["1", "2", "3"]);
    assert_eq!(output(&instance.call("clear", b"")), "");
    assert_eq!(output(&instance.call("incr", b"")), "1");
    assert_eq!(output(&instance.call("get_missing", b"")), "absent");
}

#[test]
fn vars_are_shared_by_the_instances_of_a_function() {
    let plugin = compile(spec("vars.wat"));
    let vars = Vars::new();
    let mut a = plugin.instantiate_sharing(vars.clone()).unwrap();
    let mut b = plugin.instantiate_sharing(vars.clone()).unwrap();
    assert_eq!(output(&a.call("incr", b"")), "1");
    assert_eq!(output(&b.call("incr", b"")), "2");
    assert_eq!(output(&a.call("incr", b"")), "3");
    assert_eq!(vars.get("n"), Some(3u64.to_le_bytes().to_vec()));
    let mut other = plugin.instantiate().unwrap();
    assert_eq!(output(&other.call("incr", b"")), "1", "another function's vars are its own");
}

#[test]
fn var_store_is_capped() {
    let mut spec = spec("vars.wat");
    spec.limits.max_var_bytes = 1024;
    let mut instance = compile(spec).instantiate().unwrap();
    assert_eq!(output(&instance.call("big", &[b'x'; 100])), "");
    let error = failure(instance.call("big", &[b'x'; 5000]));
    assert_eq!(error, Error::MemoryLimit { which: MemoryLimit::Vars, limit_bytes: 1024 });
}

#[test]
fn disabled_vars_refuse_var_set() {
    let mut spec = spec("vars.wat");
    spec.limits.max_var_bytes = 0;
    let error = failure(compile(spec).instantiate().unwrap().call("incr", b""));
    assert!(matches!(&error, Error::HostFunction { function, .. } if function == "var_set"), "{error:?}");
}

#[test]
fn count_vowels_counts_and_keeps_a_running_total() {
    let mut instance = instance("count_vowels.wat");
    let first = output(&instance.call("count_vowels", b"Hello, World!"));
    assert_eq!(first, r#"{"count":3,"total":3,"vowels":"aeiouAEIOU"}"#);
    let second = output(&instance.call("count_vowels", b"aeiou"));
    assert_eq!(second, r#"{"count":5,"total":8,"vowels":"aeiouAEIOU"}"#);
    assert_eq!(output(&instance.call("count_only", b"xyz AEIOU")), r#"{"count":5}"#);
}

// --- errors and return codes -----------------------------------------------

/// The shapes of real PDK plugins (the bench plugin of issue 11): input
/// read 8 bytes per host call, output written 8 bytes per host call, a
/// table the initialiser fills.
#[test]
fn pdk_shaped_plugin_counts_after_its_initialiser() {
    let mut instance = instance("pdk_shapes.wat");
    assert_eq!(output(&instance.call("count_vowels", b"Hello, World!")), r#"{"count":3}"#);
    let long = "aeiou xyz ".repeat(10_000);
    assert_eq!(output(&instance.call("count_vowels", long.as_bytes())), r#"{"count":50000}"#);
    assert_eq!(output(&instance.call("count_vowels", b"")), r#"{"count":0}"#);
}

#[test]
fn pdk_shaped_kernel_traffic_round_trips_every_length() {
    let mut instance = instance("pdk_shapes.wat");
    for len in [0, 1, 7, 8, 9, 100_003] {
        let input: Vec<u8> = (0..len).map(|i| (i * 7 % 251) as u8).collect();
        let report = instance.call("kernel_traffic", &input);
        assert_eq!(report.result.expect("succeeds"), input, "{len} bytes");
    }
}

#[test]
fn error_set_with_rc_zero_is_a_failure() {
    assert_eq!(failure(call("errors.wat", "error_rc0", "")), Error::Plugin { message: "boom".into(), rc: 0 });
}

#[test]
fn error_set_with_rc_one_keeps_the_message() {
    assert_eq!(
        failure(call("errors.wat", "error_rc1", "")),
        Error::Plugin { message: "bad input".into(), rc: 1 }
    );
}

#[test]
fn non_zero_return_without_error_is_a_failure() {
    assert_eq!(failure(call("errors.wat", "nonzero", "")), Error::NonZeroReturn { rc: 7 });
}

#[test]
fn cleared_error_is_success() {
    assert_eq!(output(&call("errors.wat", "set_then_clear", "")), "ok");
}

#[test]
fn unreachable_is_a_trap_and_discards_the_instance() {
    let mut instance = instance("errors.wat");
    let error = failure(instance.call("trap", b""));
    assert!(
        matches!(&error, Error::Trap { export, message, .. } if export == "trap" && message.contains("unreachable")),
        "{error:?}"
    );
    assert!(!instance.is_reusable());
}

#[test]
fn division_by_zero_is_a_trap() {
    assert!(matches!(failure(call("errors.wat", "div0", "")), Error::Trap { .. }));
}

#[test]
fn error_set_before_a_trap_wins() {
    assert_eq!(
        failure(call("errors.wat", "error_then_trap", "")),
        Error::Plugin { message: "custom message".into(), rc: -1 }
    );
}

#[test]
fn plugin_errors_keep_the_instance() {
    let mut instance = instance("errors.wat");
    failure(instance.call("error_rc1", b""));
    failure(instance.call("nonzero", b""));
    assert!(instance.is_reusable());
    assert_eq!(output(&instance.call("set_then_clear", b"")), "ok");
}

#[test]
fn wrong_signatures_and_missing_exports_are_typed() {
    let mut instance = instance("errors.wat");
    let e = failure(instance.call("i64_result", b""));
    assert_eq!(e, Error::BadSignature { name: "i64_result".into(), signature: "() -> i64".into() });
    let e = failure(instance.call("with_param", b""));
    assert_eq!(e, Error::BadSignature { name: "with_param".into(), signature: "(i32) -> i32".into() });
    assert_eq!(failure(instance.call("absent", b"")), Error::MissingExport { name: "absent".into() });
}

// --- time limits --------------------------------------------------------------

#[test]
fn infinite_loop_stops_at_the_fuel_budget_exactly() {
    let mut spec = spec("loop.wat");
    spec.limits.fuel = Some(5_000_000);
    let plugin = compile(spec);
    let report = plugin.instantiate().unwrap().call("spin", b"");
    let again = plugin.instantiate().unwrap().call("spin", b"");
    assert_eq!((report.fuel_used, again.fuel_used), (5_000_000, 5_000_000));
    assert_eq!(failure(report), Error::Timeout { limit: TimeLimit::Fuel(5_000_000) });
}

#[test]
fn infinite_loop_stops_at_the_wall_clock_timeout() {
    let mut spec = spec("loop.wat");
    spec.limits.timeout = Some(Duration::from_millis(200));
    let error = failure(compile(spec).instantiate().unwrap().call("spin", b""));
    assert_eq!(error, Error::Timeout { limit: TimeLimit::WallClock(Duration::from_millis(200)) });
}

#[test]
fn loop_calling_the_host_still_times_out() {
    let mut spec = spec("loop.wat");
    spec.limits.timeout = Some(Duration::from_millis(200));
    let error = failure(compile(spec).instantiate().unwrap().call("spin_in_host", b""));
    assert!(matches!(error, Error::Timeout { .. }), "{error:?}");
}

#[test]
fn looping_start_section_is_stopped_by_the_timeout() {
    let mut spec = spec("start_loop.wat");
    spec.limits.timeout = Some(Duration::from_millis(200));
    let plugin = compile(spec);
    let error = plugin.instantiate().err().expect("instantiation must fail");
    assert!(matches!(error, Error::Timeout { limit: TimeLimit::WallClock(_) }), "{error:?}");
    assert!(Pool::new(plugin, Vars::new(), 1).is_err(), "a pool refuses a plugin it cannot instantiate");
}

#[test]
fn looping_start_section_is_stopped_by_fuel() {
    let mut spec = spec("start_loop.wat");
    spec.limits.fuel = Some(2_000_000);
    let error = compile(spec).instantiate().err().expect("instantiation must fail");
    assert_eq!(error, Error::Timeout { limit: TimeLimit::Fuel(2_000_000) });
}

#[test]
fn start_section_runs_once_per_instance() {
    let mut instance = instance("start_ok.wat");
    assert_eq!(output(&instance.call("handle", b"")), "5");
    assert_eq!(output(&instance.call("bump", b"")), "6");
    assert_eq!(output(&instance.call("bump", b"")), "7");
}

#[test]
fn deep_recursion_is_a_stack_overflow() {
    assert_eq!(failure(call("loop.wat", "recurse", "")), Error::StackOverflow { export: "recurse".into() });
}

#[test]
fn fuel_used_is_the_same_cold_and_warm() {
    let mut instance = instance("count_vowels.wat");
    let cold = instance.call("count_only", b"Hello, World!").fuel_used;
    let warm = instance.call("count_only", b"Hello, World!").fuel_used;
    assert!(cold > 0);
    assert_eq!(cold, warm, "compilation is not charged to the first call");
}

// --- memory limits -----------------------------------------------------------

fn with_memory(file: &str, bytes: u64) -> Instance {
    let mut spec = spec(file);
    spec.limits.memory_bytes = bytes;
    compile(spec).instantiate().unwrap()
}

#[test]
fn memory_grow_within_the_cap_succeeds() {
    assert_eq!(output(&with_memory("memory.wat", 4 << 16).call("grow", b"3")), "grown");
}

#[test]
fn memory_grow_past_the_cap_is_a_memory_limit() {
    let error = failure(with_memory("memory.wat", 4 << 16).call("grow", b"4"));
    assert_eq!(error, Error::MemoryLimit { which: MemoryLimit::LinearMemory, limit_bytes: 4 << 16 });
}

/// Found by `tests/fuzz` (`wasm_modules`, release build): with wasmi's
/// tail-call dispatch each `memory.grow` or `table.grow` that fails or grows
/// by nothing keeps a native stack frame (176 bytes) until the call pauses
/// (measured: 200 grows by 0 kept 35200 bytes, by 1 page 1504), so these
/// loops overflowed the stack and aborted the process. Each now costs 255
/// fuel, so a fuel slice holds at most 980 such frames (169 KiB). The loops
/// run on a thread with a 512 KiB stack, a quarter of a Rust thread's
/// default, and must end by their limit, by fuel or by time (many slices).
/// Tests build wasmi optimised, so they dispatch by tail calls as the
/// release binary does.
#[test]
fn growth_in_a_loop_ends_by_its_limit_on_a_small_stack() {
    let run = |export: &'static str, fuel: Option<u64>, timeout: Duration| {
        let thread = std::thread::Builder::new().stack_size(512 << 10).spawn(move || {
            let mut spec = spec("memory.wat");
            spec.limits.memory_bytes = 4 << 16;
            spec.limits.fuel = fuel;
            spec.limits.timeout = Some(timeout);
            failure(compile(spec).instantiate().unwrap().call(export, b""))
        });
        thread.unwrap().join().unwrap()
    };
    for export in ["grow_retry", "table_grow_retry", "grow_zero_retry"] {
        let error = run(export, Some(5_000_000), Duration::from_secs(60));
        assert_eq!(error, Error::Timeout { limit: TimeLimit::Fuel(5_000_000) }, "{export}");
        let limit = Duration::from_millis(200);
        let error = run(export, None, limit);
        assert_eq!(error, Error::Timeout { limit: TimeLimit::WallClock(limit) }, "{export}");
    }
}

/// wasmi's tail-call dispatch on stable Rust relies on LLVM turning every
/// handler's call of the next handler into a jump; a handler where it does
/// not keeps a native stack frame per instruction run (a build where
/// `call` did so overflowed the stack within one fuel slice of a plain
/// loop). This measures, through a host function, how much deeper the
/// native stack is after 5000 runs of each kind of instruction than before
/// them (on a thread with a big stack, so a leak is measured, not a crash).
/// Growth is the known exception, bounded by its fuel price (`GROW_FUEL`).
#[test]
fn the_native_stack_does_not_grow_with_the_instructions_run() {
    type Depths = std::sync::Arc<std::sync::Mutex<Vec<usize>>>;
    let depths: Depths = Default::default();
    let recorded = depths.clone();
    let depth = HostFunction::new("depth", &[ValueType::I32], &[], move |_, _| {
        let marker = std::hint::black_box(0u8);
        recorded.lock().unwrap().push(std::ptr::addr_of!(marker) as usize);
        Ok(vec![])
    });
    let mut spec = spec("dispatch.wat");
    spec.host_functions = vec![depth];
    let plugin = compile(spec);
    let deepened = |export: &'static str| {
        let plugin = plugin.clone();
        let run = move || plugin.instantiate().unwrap().call(export, b"input").result;
        let result = std::thread::Builder::new().stack_size(64 << 20).spawn(run).unwrap().join().unwrap();
        assert_eq!(result, Ok(Vec::new()), "{export}");
        let seen = std::mem::take(&mut *depths.lock().unwrap());
        assert_eq!(seen.len(), 2, "{export}: depth recorded before and after the loop");
        seen[0].saturating_sub(seen[1])
    };
    for export in ["calls", "indirect", "branches", "memory_ops", "host"] {
        let deeper = deepened(export);
        assert!(deeper < 4096, "{export}: the native stack grew by {deeper} bytes over 5000 iterations");
    }
    // 5000 × 3 grows cross slices; a slice runs at most 250000 / 255. Each
    // keeps 176 bytes (if a wasmi release stops doing so, the first
    // assertion says so: then GROW_FUEL and MAX_GROWS can go).
    let deeper = deepened("grows");
    assert!(deeper > 100 * 128, "grows: {deeper} bytes: the probe no longer sees the frames growth keeps");
    assert!(deeper <= 980 * 256, "grows: {deeper} bytes, more than one fuel slice's worth");
}

/// Fuel is charged per block and a block is never split over slices, so
/// growth in one long block would pause nowhere: 12000 `memory.grow` in a
/// row aborted the process on a 2 MiB stack. More than 980 in one function
/// is refused at load; 980 run (on a 512 KiB stack).
#[test]
fn a_function_with_more_growth_than_a_slice_allows_fails_at_load() {
    let module = |grows: usize| {
        let body = "(drop (memory.grow (local.get 0)))".repeat(grows);
        format!(
            r#"(module (memory 1) (func (export "handle") (result i32) (local i32) {body} (i32.const 0)))"#
        )
    };
    let message = load_error(PluginSpec::new("grows", module(12_000).into_bytes()));
    assert!(message.contains("has 12000 memory.grow and table.grow; alyx allows at most 980"), "{message}");
    let plugin = compile(PluginSpec::new("grows", module(980).into_bytes()));
    let run = move || plugin.instantiate().unwrap().call("handle", b"").result;
    let thread = std::thread::Builder::new().stack_size(512 << 10).spawn(run).unwrap();
    assert_eq!(thread.join().unwrap(), Ok(Vec::new()));
}

#[test]
fn alloc_bomb_is_stopped_by_the_kernel_cap() {
    let error = failure(with_memory("memory.wat", 8 << 20).call("alloc_bomb", b""));
    assert_eq!(error, Error::MemoryLimit { which: MemoryLimit::Kernel, limit_bytes: 8 << 20 });
}

#[test]
fn alloc_zero_returns_zero() {
    assert_eq!(output(&call("memory.wat", "alloc_zero", "")), "zero");
}

#[test]
fn huge_output_is_capped() {
    let mut spec = spec("memory.wat");
    spec.limits.max_output_bytes = 1 << 20;
    let mut instance = compile(spec).instantiate().unwrap();
    assert_eq!(instance.call("huge_output", b"1048576").result.unwrap().len(), 1 << 20);
    let error = failure(instance.call("huge_output", b"1048577"));
    assert_eq!(error, Error::MemoryLimit { which: MemoryLimit::Output, limit_bytes: 1 << 20 });
}

#[test]
fn initial_memory_above_the_cap_fails_to_instantiate() {
    let mut spec = spec("memory.wat");
    spec.limits.memory_bytes = 1000;
    let error = compile(spec).instantiate().err().expect("must not instantiate");
    assert!(matches!(error, Error::MemoryLimit { which: MemoryLimit::LinearMemory, .. }), "{error:?}");
}

#[test]
fn input_larger_than_the_kernel_cap_is_refused() {
    let error = failure(with_memory("echo.wat", 1 << 16).call("echo", &vec![b'x'; 1 << 17]));
    assert!(matches!(error, Error::MemoryLimit { which: MemoryLimit::Kernel, .. }), "{error:?}");
}

// --- WASI --------------------------------------------------------------------

#[test]
fn wasi_stdout_and_stderr_become_log_lines() {
    let report = call("wasi.wat", "print", "");
    assert_eq!(output(&report), "printed");
    let lines: Vec<_> = report.logs.iter().map(|l| (l.level, l.message.as_str())).collect();
    assert_eq!(lines, [(LogLevel::Info, "hello stdout"), (LogLevel::Warn, "oops")]);
}

#[test]
fn proc_exit_zero_is_success_and_discards_the_instance() {
    let mut instance = instance("wasi.wat");
    assert_eq!(output(&instance.call("exit", b"0")), "");
    assert!(!instance.is_reusable());
}

#[test]
fn proc_exit_codes_are_reported() {
    assert_eq!(failure(call("wasi.wat", "exit", "3")), Error::Exit { code: 3, message: None });
    assert_eq!(failure(call("wasi.wat", "exit", "500")), Error::Exit { code: 500, message: None });
}

#[test]
fn proc_exit_zero_after_error_set_is_a_failure() {
    assert_eq!(
        failure(call("wasi.wat", "exit_after_error", "")),
        Error::Exit { code: 0, message: Some("dying".into()) }
    );
}

#[test]
fn wasi_clock_advances() {
    assert_eq!(output(&call("wasi.wat", "clock", "")), "ok");
}

#[test]
fn wasi_random_is_random() {
    let mut instance = instance("wasi.wat");
    let a = instance.call("random", b"").result.unwrap();
    let b = instance.call("random", b"").result.unwrap();
    assert_eq!(a.len(), 16);
    assert_ne!(a, b);
}

#[test]
fn wasi_fdstat_preopen_scan_and_seek_behave() {
    assert_eq!(output(&call("wasi.wat", "fdstat", "")), "ok");
}

#[test]
fn poll_oneoff_sleeps() {
    assert_eq!(output(&call("wasi.wat", "sleep", "5")), "slept");
}

#[test]
fn poll_oneoff_sleep_is_bounded_by_the_deadline() {
    let mut spec = spec("wasi.wat");
    spec.limits.timeout = Some(Duration::from_millis(100));
    let error = failure(compile(spec).instantiate().unwrap().call("sleep", b"60000"));
    assert!(matches!(error, Error::Timeout { limit: TimeLimit::WallClock(_) }), "{error:?}");
}

#[test]
fn start_runs_as_a_command_and_spends_the_instance() {
    let mut instance = instance("wasi.wat");
    let report = instance.call("_start", b"");
    assert_eq!(output(&report), "");
    assert_eq!(report.logs[0].message, "command ran");
    assert!(!instance.is_reusable());
}

// --- initialisers ------------------------------------------------------------

#[test]
fn initialize_runs_once_and_is_preferred_over_ctors() {
    let mut instance = instance("init.wat");
    assert_eq!(output(&instance.call("handle", b"")), "42");
    assert_eq!(output(&instance.call("handle", b"")), "42");
    assert_eq!(output(&instance.call("count", b"")), "2");
}

#[test]
fn wasm_call_ctors_runs_when_it_is_the_only_initialiser() {
    assert_eq!(output(&call("init_ctors.wat", "handle", "")), "7");
}

#[test]
fn haskell_init_runs_after_initialize() {
    assert_eq!(output(&call("init_hs.wat", "handle", "")), "12");
}

// --- host functions and linking ------------------------------------------------

fn user_functions() -> Vec<HostFunction> {
    let mult =
        HostFunction::new(
            "mult",
            &[ValueType::I64, ValueType::I64],
            &[ValueType::I64],
            |_, args| match args {
                [Value::I64(a), Value::I64(b)] => Ok(vec![Value::I64(a * b)]),
                _ => Err("mult wants two i64".into()),
            },
        );
    let upper = HostFunction::new("to_upper", &[ValueType::I64], &[ValueType::I64], |call, args| {
        let [Value::I64(handle)] = args else {
            return Err("to_upper wants one handle".into());
        };
        let text = call.read(*handle as u64).ok_or("bad handle")?;
        let handle = call.write(&text.to_ascii_uppercase())?;
        Ok(vec![Value::I64(handle as i64)])
    });
    vec![mult, upper]
}

#[test]
fn user_host_functions_are_called() {
    let mut spec = spec("host_user.wat");
    spec.host_functions = user_functions();
    let mut instance = compile(spec).instantiate().unwrap();
    assert_eq!(output(&instance.call("mult", b"")), "42");
    assert_eq!(output(&instance.call("upper", b"hello host")), "HELLO HOST");
}

#[test]
fn a_failing_user_host_function_names_itself() {
    let mut spec = spec("host_user.wat");
    let mut functions = user_functions();
    functions[0] = HostFunction::new("mult", &[ValueType::I64, ValueType::I64], &[ValueType::I64], |_, _| {
        Err("refused".into())
    });
    spec.host_functions = functions;
    let error = failure(compile(spec).instantiate().unwrap().call("mult", b""));
    assert_eq!(error, Error::HostFunction { function: "mult".into(), message: "refused".into() });
}

#[test]
fn missing_user_host_function_fails_at_load() {
    let message = load_error(spec("missing_user.wat"));
    assert!(message.contains("extism:host/user::nope"), "{message}");
}

#[test]
fn unknown_env_import_fails_at_load_naming_it() {
    let message = load_error(spec("bad_import.wat"));
    assert!(message.contains("extism:host/env::not_a_function"), "{message}");
}

#[test]
fn wrongly_typed_env_import_fails_at_load() {
    let message = load_error(spec("bad_type.wat"));
    assert!(message.contains("alloc") && message.contains("(i64) -> i64"), "{message}");
}

#[test]
fn invalid_bytes_fail_at_load() {
    let message = load_error(PluginSpec::new("junk", b"\0asm\x01\0\0\0\x01\xff".to_vec()));
    assert!(message.contains("invalid Wasm"), "{message}");
    let message = load_error(PluginSpec::new("junk", b"not wasm at all".to_vec()));
    assert!(message.contains("not valid WAT"), "{message}");
}

/// Found by `tests/fuzz` (`wasm_modules`): in a debug build wasmi 2.0.0
/// panics on an instruction after a function's final `end`.
#[test]
fn code_after_a_functions_end_fails_at_load() {
    // (type (func)) (func) with the body `end nop end`.
    let wasm = b"\0asm\x01\0\0\0\x01\x04\x01\x60\0\0\x03\x02\x01\0\x0a\x07\x01\x05\0\x0b\x01\x01\x0b";
    let message = load_error(PluginSpec::new("junk", wasm.to_vec()));
    assert!(message.starts_with("invalid Wasm: "), "{message}");
}

/// Found by `make fuzz` (`wasm_modules`): in wasmi 2.0.0 this crashed the
/// process when `handle` went on after `$reset_tail` returned.
#[test]
fn tail_calls_fail_at_load() {
    let wat = r#"(module
      (import "extism:host/env" "reset" (func $reset))
      (func $reset_tail (return_call $reset))
      (func (export "handle") (result i32) (call $reset_tail) (i32.const 0)))"#;
    let message = load_error(PluginSpec::new("tail", wat.as_bytes().to_vec()));
    assert!(message.starts_with("invalid Wasm: ") && message.contains("tail call"), "{message}");
}

/// Found by `make fuzz` (`wasm_modules`): wasmi 2.0.0 did not bounds-check
/// these stores (an address from a local; a second memory, or an offset of
/// 64 KiB or more) and wrote outside the linear memory; the process crashed
/// with SIGSEGV.
#[test]
fn unchecked_lane_stores_fail_at_load() {
    let module = |store: &str| {
        format!(
            r#"(module (memory 8) (memory 1)
              (func (export "handle") (result i32) (local i32)
                (local.set 0 (i32.const 500000))
                ({store} 3 (local.get 0) (v128.const i64x2 1 2))
                (i32.const 0)))"#
        )
    };
    for (store, refused) in [
        ("v128.store8_lane offset=70000", "v128.store8_lane on memory 0 with offset 70000"),
        ("v128.store16_lane 1", "v128.store16_lane on memory 1 with offset 0"),
    ] {
        let message = load_error(PluginSpec::new("lane", module(store).into_bytes()));
        assert!(message.contains(refused), "{message}");
    }
    let checked = PluginSpec::new("lane", module("v128.store8_lane 0 offset=60000").into_bytes());
    let error = failure(compile(checked).instantiate().unwrap().call("handle", b""));
    assert_eq!(error.kind(), "trap", "memory 0 and an offset under 64 KiB: out of bounds traps");
}

fn linked(main: &str) -> PluginSpec {
    let mut spec = spec(main);
    spec.modules.insert(0, ModuleSource { name: Some("lib".into()), wasm: plugin_bytes("lib.wat") });
    spec
}

#[test]
fn modules_link_by_name() {
    let mut instance = compile(linked("main_linked.wat")).instantiate().unwrap();
    assert_eq!(output(&instance.call("handle", b"benjamin")), "Benjamin");
}

#[test]
fn missing_linked_module_fails_at_load() {
    let message = load_error(spec("main_linked.wat"));
    assert!(message.contains("lib::capitalize"), "{message}");
}

#[test]
fn main_module_is_the_one_named_main() {
    let mut spec = linked("main_linked.wat");
    let main = spec.modules.remove(1);
    spec.modules = vec![ModuleSource { name: Some("main".into()), wasm: main.wasm }, spec.modules.remove(0)];
    assert_eq!(output(&compile(spec).instantiate().unwrap().call("handle", b"zed")), "Zed");
}

// --- bad handles ---------------------------------------------------------------

#[test]
fn bad_handles_to_host_functions_are_errors_naming_them() {
    let mut spec = spec("bad_handles.wat");
    spec.allowed_hosts = vec!["*".into()];
    let plugin = compile(spec);
    let host = [
        ("config_get", "config_get"),
        ("var_get", "var_get"),
        ("var_set_key", "var_set"),
        ("var_set_value", "var_set"),
        ("log_info", "log_info"),
        ("log_warn", "log_warn"),
        ("log_error", "log_error"),
        ("alyx_http_request", "alyx_http_request"),
        ("http_request", "http_request"),
    ];
    for (export, function) in host {
        let error = failure(plugin.instantiate().unwrap().call(export, b""));
        match error {
            Error::HostFunction { function: f, message } => {
                assert_eq!(f, function, "{export}");
                assert!(message.contains("invalid handle"), "{export}: {message}");
            }
            other => panic!("{export}: expected a host function error, got {other:?}"),
        }
    }
}

#[test]
fn bad_handles_to_kernel_functions_are_harmless() {
    let plugin = compile(spec("bad_handles.wat"));
    for export in
        ["length", "free", "load_u8", "load_u64", "store_u8", "store_u64", "input_load_u64", "output_set"]
    {
        let report = plugin.instantiate().unwrap().call(export, b"input");
        assert!(report.result.is_ok(), "{export}: {:?}", report.result);
    }
}

#[test]
fn error_set_with_a_bad_handle_is_not_a_message() {
    let report = compile(spec("bad_handles.wat")).instantiate().unwrap().call("error_set", b"");
    assert!(report.result.is_ok(), "{:?}", report.result);
}

// --- logging -------------------------------------------------------------------

fn log_levels(level: LogLevel) -> Vec<(LogLevel, String)> {
    let mut spec = spec("logs.wat");
    spec.log_level = level;
    let report = compile(spec).instantiate().unwrap().call("log", b"");
    assert_eq!(output(&report), "logged");
    report.logs.into_iter().map(|l| (l.level, l.message)).collect()
}

#[test]
fn logs_below_the_threshold_are_dropped() {
    let lines = log_levels(LogLevel::Info);
    let expected = [
        (LogLevel::Info, "info line"),
        (LogLevel::Warn, "warn line"),
        (LogLevel::Error, "error line"),
        (LogLevel::Info, ""),
    ];
    assert_eq!(lines, expected.map(|(l, m)| (l, m.to_string())));
}

#[test]
fn debug_threshold_lets_debug_through() {
    assert!(log_levels(LogLevel::Debug).contains(&(LogLevel::Debug, "debug line".to_string())));
}

#[test]
fn off_silences_everything() {
    assert!(log_levels(LogLevel::Off).is_empty());
}

#[test]
fn get_log_level_defaults_to_info() {
    assert_eq!(output(&call("logs.wat", "level", "")), "2");
}

// --- outbound HTTP -------------------------------------------------------------

fn http_spec(hosts: &[&str]) -> PluginSpec {
    let mut spec = spec("http.wat");
    spec.allowed_hosts = hosts.iter().map(|h| h.to_string()).collect();
    spec
}

fn request_json(url: &str, method: &str) -> Vec<u8> {
    format!(r#"{{"url":"{url}","method":"{method}","headers":{{"x-test":"yes"}}}}"#).into_bytes()
}

#[test]
fn http_request_to_an_allowed_host_sends_the_body() {
    let server = TestServer::start(1, |seen| (200, vec![], [b"got: ".as_slice(), &seen.body].concat()));
    let mut instance = compile(http_spec(&["127.0.0.*"])).instantiate().unwrap();
    let report = instance.call("request", &request_json(&server.url("/echo"), "post"));
    assert_eq!(output(&report), "got: hello body");
    let seen = server.next_request();
    assert_eq!((seen.method.as_str(), seen.path.as_str()), ("POST", "/echo"));
    assert!(seen.headers.contains(&("x-test".into(), "yes".into())));
}

#[test]
fn http_status_is_readable_and_any_status_is_success() {
    let server = TestServer::start(1, |_| (404, vec![], b"not here".to_vec()));
    let mut instance = compile(http_spec(&["127.0.0.1"])).instantiate().unwrap();
    assert_eq!(output(&instance.call("status", &request_json(&server.url("/"), "GET"))), "404");
}

#[test]
fn http_headers_are_opt_in_and_joined() {
    let answer = |_: &common::Seen| {
        (200, vec![("x-multi".into(), "a".into()), ("x-multi".into(), "b".into())], vec![])
    };
    let server = TestServer::start(2, answer);
    let mut off = compile(http_spec(&["127.0.0.1"])).instantiate().unwrap();
    assert_eq!(output(&off.call("headers", &request_json(&server.url("/"), "GET"))), "none");
    let mut spec = http_spec(&["127.0.0.1"]);
    spec.http_response_headers = true;
    let mut on = compile(spec).instantiate().unwrap();
    let headers = output(&on.call("headers", &request_json(&server.url("/"), "GET")));
    let json: serde_json::Value = serde_json::from_str(&headers).unwrap();
    assert_eq!(json["x-multi"], "a,b");
}

#[test]
fn http_request_to_a_denied_host_fails_and_says_which_setting() {
    let server = TestServer::start(1, |_| (200, vec![], b"should not be reached".to_vec()));
    for hosts in [&[][..], &["example.com"][..]] {
        let report = compile(http_spec(hosts))
            .instantiate()
            .unwrap()
            .call("request", &request_json(&server.url("/"), "GET"));
        assert!(
            report.logs.iter().any(|l| l.level == LogLevel::Warn && l.message.contains("allowed_hosts")),
            "{:?}",
            report.logs
        );
        let error = failure(report);
        assert!(
            matches!(&error, Error::HostFunction { function, .. } if function == "http_request"),
            "{error:?}"
        );
    }
    assert!(server.seen.try_recv().is_err(), "no request was sent");
}

#[test]
fn http_request_is_capped_by_the_remaining_time() {
    let server = TestServer::silent();
    let mut spec = http_spec(&["127.0.0.1"]);
    spec.limits.timeout = Some(Duration::from_millis(300));
    let error =
        failure(compile(spec).instantiate().unwrap().call("request", &request_json(&server.url("/"), "GET")));
    assert!(matches!(error, Error::Timeout { limit: TimeLimit::WallClock(_) }), "{error:?}");
}

#[test]
fn http_response_size_is_capped() {
    let server = TestServer::start(1, |_| (200, vec![], vec![b'z'; 2000]));
    let mut spec = http_spec(&["127.0.0.1"]);
    spec.limits.max_http_response_bytes = 1000;
    let error =
        failure(compile(spec).instantiate().unwrap().call("request", &request_json(&server.url("/"), "GET")));
    assert!(
        matches!(&error, Error::HostFunction { function, .. } if function == "http_request"),
        "{error:?}"
    );
}

#[test]
fn alyx_http_request_sends_the_body_and_returns_json() {
    let server = TestServer::start(1, |seen| (201, vec![("x-reply".into(), "1".into())], seen.body.clone()));
    let mut spec = spec("alyx_http.wat");
    spec.allowed_hosts = vec!["127.0.0.1".into()];
    let request =
        format!(r#"{{"method":"PUT","url":"{}","headers":{{"a":"b"}},"body":"payload!"}}"#, server.url("/x"));
    let reply = output(&compile(spec).instantiate().unwrap().call("handle", request.as_bytes()));
    let json: serde_json::Value = serde_json::from_str(&reply).unwrap();
    assert_eq!((json["status"].as_u64(), json["body"].as_str()), (Some(201), Some("payload!")));
    assert_eq!(json["headers"]["x-reply"], "1");
    assert_eq!(server.next_request().method, "PUT");
}

#[test]
fn alyx_http_request_denied_returns_zero_to_the_plugin() {
    let report = call("alyx_http.wat", "handle", r#"{"method":"GET","url":"http://127.0.0.1:9/"}"#);
    assert_eq!(failure(report), Error::Plugin { message: "request failed".into(), rc: 1 });
}

// --- pools and swapping ------------------------------------------------------

#[test]
fn pool_never_exceeds_its_bound_and_reuses_instances() {
    let pool = Pool::new(compile(spec("count_vowels.wat")), Vars::new(), 2).unwrap();
    std::thread::scope(|s| {
        for _ in 0..4 {
            s.spawn(|| {
                for _ in 0..25 {
                    assert!(pool.call("count_only", b"aaa").result.is_ok());
                    let stats = pool.stats();
                    assert!(stats.busy + stats.idle <= 2, "{stats:?}");
                }
            });
        }
    });
    let stats = pool.stats();
    assert_eq!(stats.busy, 0);
    assert!(stats.idle >= 1 && stats.idle <= 2);
}

#[test]
fn failed_instances_are_discarded_and_replaced() {
    let pool = Pool::new(compile(spec("errors.wat")), Vars::new(), 1).unwrap();
    failure(pool.call("trap", b""));
    assert_eq!(pool.stats().idle, 0, "the trapped instance is gone");
    assert_eq!(output(&pool.call("set_then_clear", b"")), "ok");
    assert_eq!(pool.stats().idle, 1);
}

#[test]
fn a_full_pool_answers_busy_at_the_deadline() {
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (release, release_rx) = mpsc::channel::<()>();
    let (entered_tx, release_rx) = (Mutex::new(entered_tx), Mutex::new(release_rx));
    let mut spec = spec("host_user.wat");
    let mut functions = user_functions();
    let types = [ValueType::I64, ValueType::I64];
    // `mult` holds the pool's only instance until the test releases it.
    functions[0] = HostFunction::new("mult", &types, &[ValueType::I64], move |_, _| {
        entered_tx.lock().unwrap().send(()).unwrap();
        release_rx.lock().unwrap().recv_timeout(Duration::from_secs(10)).unwrap();
        Ok(vec![Value::I64(42)])
    });
    spec.host_functions = functions;
    spec.limits.timeout = Some(Duration::from_millis(200));
    let pool = Arc::new(Pool::new(compile(spec), Vars::new(), 1).unwrap());
    let holder = {
        let pool = pool.clone();
        std::thread::spawn(move || pool.call("mult", b""))
    };
    entered.recv_timeout(Duration::from_secs(5)).expect("the first call holds the instance");
    assert!(matches!(failure(pool.call("upper", b"x")), Error::Busy { .. }));
    release.send(()).unwrap();
    assert_eq!(output(&holder.join().unwrap()), "42");
}

#[test]
fn concurrent_calls_spread_over_engine_shards() {
    let (entered_tx, entered) = mpsc::channel::<()>();
    let (release, release_rx) = mpsc::channel::<()>();
    let (entered_tx, release_rx) = (Mutex::new(entered_tx), Mutex::new(release_rx));
    let mut spec = spec("host_user.wat");
    spec.engines = 3;
    let mut functions = user_functions();
    let types = [ValueType::I64, ValueType::I64];
    functions[0] = HostFunction::new("mult", &types, &[ValueType::I64], move |_, _| {
        entered_tx.lock().unwrap().send(()).unwrap();
        release_rx.lock().unwrap().recv_timeout(Duration::from_secs(10)).unwrap();
        Ok(vec![Value::I64(42)])
    });
    spec.host_functions = functions;
    let plugin = compile(spec);
    assert_eq!(plugin.engines(), 3);
    // Shards 1 and 2 would otherwise compile in the background while shard 0 serves.
    plugin.compile_shards().unwrap();
    let pool = Arc::new(Pool::new(plugin, Vars::new(), 3).unwrap());
    let callers: Vec<_> = (0..3)
        .map(|_| {
            let pool = pool.clone();
            std::thread::spawn(move || pool.call("mult", b""))
        })
        .collect();
    for _ in 0..3 {
        entered.recv_timeout(Duration::from_secs(5)).expect("three calls run at once");
    }
    assert_eq!(pool.stats().busy, 3);
    for _ in 0..3 {
        release.send(()).unwrap();
    }
    for caller in callers {
        assert_eq!(output(&caller.join().unwrap()), "42");
    }
    assert_eq!(pool.stats(), alyx::runtime::PoolStats { busy: 0, idle: 3 });
    // Each instance went back to the shard it was created on.
    let per_shard = pool.idle_per_shard();
    let used = per_shard.iter().filter(|n| **n > 0).count();
    assert!(used > 1, "the three instances share one shard: {per_shard:?}");
}
