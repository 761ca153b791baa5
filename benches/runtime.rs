//! `make bench`: the plugin runtime's figures (issue 2).
//!
//! Warm call of a trivial export; warm count-vowels on 13 B and 1 MiB; the
//! shapes of real PDK plugins (input and output 8 bytes per host call, an
//! initialiser); loading and instantiating a generated multi-megabyte
//! module; calls per second from one and from two threads on one function.
//! Each row prints its goal (issue 11). Plain `std::time` timing with
//! warm-up and the median of several rounds, so no benchmark crate is needed.

use std::time::{Duration, Instant};

use alyx::runtime::{Limits, Plugin, PluginSpec, Pool, Vars};

const ROUNDS: usize = 7;

fn main() {
    println!("alyx runtime benchmark (median of {ROUNDS} rounds), {}", machine());
    let trivial = plugin("trivial", include_str!("../testdata/plugins/trivial.wat"));
    let vowels = plugin("count_vowels", include_str!("../testdata/plugins/count_vowels.wat"));
    report("warm call, trivial export", per_call(&trivial, "noop", b"", 200_000), "≤ 5 µs");
    report(
        "warm call, count-vowels 13 B",
        per_call(&vowels, "count_only", b"Hello, World!", 200_000),
        "≤ 8 µs",
    );
    let mib = "The quick brown fox jumps over the lazy dog. ".repeat((1 << 20) / 45 + 1);
    let mib = &mib.as_bytes()[..1 << 20];
    report("warm call, count-vowels 1 MiB", per_call(&vowels, "count_only", mib, 50), "—");
    pdk_shapes(mib);
    let (wasm, functions) = large_module();
    let size = format!("{:.1} MB module, {functions} functions, 2000 data segments", wasm.len() as f64 / 1e6);
    let (compile, large) = load(&wasm);
    report(&format!("load (validate) a {size}"), compile, "≤ 20 ms");
    report(&format!("instantiate a {size}"), per_instantiation(&large, 200), "≤ 5 ms");
    throughput(&trivial, &vowels);
}

/// The plugin shapes real PDKs produce (`testdata/plugins/pdk_shapes.wat`):
/// input read 8 bytes per host call, output written 8 bytes per host call,
/// an initialiser that runs before the first call of each instance.
fn pdk_shapes(mib: &[u8]) {
    let pdk = plugin("pdk_shapes", include_str!("../testdata/plugins/pdk_shapes.wat"));
    let warm = per_call(&pdk, "count_vowels", b"Hello, World!", 100_000);
    report("PDK shape: warm count_vowels 13 B", warm, "≤ 8 µs");
    report("PDK shape: count_vowels 1 MiB (8 B per host call)", per_call(&pdk, "count_vowels", mib, 20), "—");
    let traffic = per_call(&pdk, "kernel_traffic", mib, 20);
    report("PDK shape: kernel traffic 1 MiB (in, store, load, out)", traffic, "—");
    // 131072 input_load_u64 + 131072 store_u64 + 131072 load_u64 + 131072 store_u64.
    report("  per host call, loop included", traffic / (4 * 131_072), "tens of ns");
    let first = median(|| {
        let mut instance = pdk.instantiate().expect("instantiates");
        let start = Instant::now();
        instance.call("count_vowels", b"Hello, World!").result.expect("first call succeeds");
        start.elapsed()
    });
    let ratio = first.as_secs_f64() / warm.as_secs_f64();
    let what = format!("PDK shape: first call of a new instance, initialiser ({ratio:.1}x warm)");
    report(&what, first, "≤ 5x warm");
}

/// The date and the machine, for the README's tables.
fn machine() -> String {
    let run = |cmd: &str, args: &[&str]| {
        let out = std::process::Command::new(cmd).args(args).output().ok();
        out.map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string()).unwrap_or_default()
    };
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!(
        "{}, {cores} cores, {} {}",
        run("date", &["-u", "+%F"]),
        run("uname", &["-s"]),
        run("uname", &["-m"])
    )
}

fn plugin(name: &str, wat: &str) -> Plugin {
    let mut spec = PluginSpec::new(name, wat.as_bytes().to_vec());
    spec.limits = Limits { timeout: Some(Duration::from_secs(60)), ..Limits::default() };
    Plugin::compile(spec).expect("benchmark plugin compiles")
}

/// Median time of one call over `ROUNDS` rounds of `n` calls on one instance.
fn per_call(plugin: &Plugin, export: &str, input: &[u8], n: usize) -> Duration {
    let mut instance = plugin.instantiate().expect("instantiates");
    instance.call(export, input).result.expect("warm-up call succeeds");
    median(|| {
        let start = Instant::now();
        for _ in 0..n {
            let report = instance.call(export, input);
            assert!(report.result.is_ok());
        }
        start.elapsed() / n as u32
    })
}

fn per_instantiation(plugin: &Plugin, n: usize) -> Duration {
    median(|| {
        let start = Instant::now();
        for _ in 0..n {
            drop(plugin.instantiate().expect("instantiates"));
        }
        start.elapsed() / n as u32
    })
}

fn median(mut round: impl FnMut() -> Duration) -> Duration {
    let mut times: Vec<Duration> = (0..ROUNDS).map(|_| round()).collect();
    times.sort();
    times[ROUNDS / 2]
}

fn report(what: &str, time: Duration, goal: &str) {
    println!("{what:<72} {:>12.2} µs   goal {goal}", time.as_secs_f64() * 1e6);
}

/// Calls per second from 1 and 2 threads through one shared pool (what the
/// server does; instances spread over engine shards), and, for comparison,
/// two private instances on one engine (wasmi's shared engine state).
fn throughput(trivial: &Plugin, vowels: &Plugin) {
    for (label, plugin, export, input) in [
        ("trivial export", trivial, "noop", &b""[..]),
        ("count-vowels 13 B", vowels, "count_only", &b"Hello, World!"[..]),
    ] {
        let pool = Pool::new(plugin.clone(), Vars::new(), 2).expect("pool");
        let pooled = |threads| rate(threads, &|| assert!(pool.call(export, input).result.is_ok()));
        let (one, two) = (median_rate(|| pooled(1)), median_rate(|| pooled(2)));
        println!("{:<40} {:>10.0} calls/s", format!("1 thread, pool, {label}"), one);
        println!("{:<40} {:>10.0} calls/s  ({:.2}x)", format!("2 threads, pool, {label}"), two, two / one);
        let private = |threads| {
            rate_with(threads, &|| {
                let mut instance = plugin.instantiate().expect("instance");
                move || assert!(instance.call(export, input).result.is_ok())
            })
        };
        let (one, two) = (median_rate(|| private(1)), median_rate(|| private(2)));
        println!(
            "{:<40} {:>10.0} calls/s  ({:.2}x)",
            format!("2 threads, 2 instances, 1 engine, {label}"),
            two,
            two / one
        );
    }
}

fn median_rate(mut round: impl FnMut() -> f64) -> f64 {
    let mut rates: Vec<f64> = (0..3).map(|_| round()).collect();
    rates.sort_by(f64::total_cmp);
    rates[1]
}

/// Calls per second of `call` from `threads` threads over a fixed window.
fn rate(threads: usize, call: &(dyn Fn() + Sync)) -> f64 {
    rate_with(threads, &|| call)
}

/// Like [`rate`], where each thread first makes its own caller.
fn rate_with<F: FnMut()>(threads: usize, make: &(dyn Fn() -> F + Sync)) -> f64 {
    let window = Duration::from_millis(1000);
    let start = Instant::now();
    let calls: u64 = std::thread::scope(|s| {
        let workers: Vec<_> = (0..threads)
            .map(|_| {
                s.spawn(|| {
                    let mut call = make();
                    let mut calls = 0u64;
                    while start.elapsed() < window {
                        for _ in 0..1000 {
                            call();
                        }
                        calls += 1000;
                    }
                    calls
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("worker")).sum()
    });
    calls as f64 / start.elapsed().as_secs_f64()
}

/// A generated module of about 2.3 MB: many functions and data segments.
/// Returns its bytes and its function count.
fn large_module() -> (Vec<u8>, usize) {
    let mut wat = String::from("(module (memory (export \"memory\") 40)\n");
    for i in 0..8000 {
        wat.push_str(&format!(
            "(func $f{i} (param i32) (result i32) local.get 0 i32.const {i} i32.add i32.const 7 i32.mul \
             i32.const 3 i32.xor local.get 0 i32.const 1 i32.shl i32.add)\n"
        ));
    }
    let chunk = "x".repeat(1000);
    for i in 0..2000 {
        wat.push_str(&format!("(data (i32.const {}) \"{chunk}\")\n", i * 1000));
    }
    wat.push_str("(func (export \"noop\") (result i32) i32.const 0))");
    (wat::parse_str(&wat).expect("generated module is valid"), 8001)
}

/// Median time to load (compile) `wasm`, and the plugin.
fn load(wasm: &[u8]) -> (Duration, Plugin) {
    let compile = || {
        let mut spec = PluginSpec::new("large", wasm.to_vec());
        spec.limits.memory_bytes = 64 << 20;
        Plugin::compile(spec).expect("large module compiles")
    };
    let time = median(|| {
        let start = Instant::now();
        drop(compile());
        start.elapsed()
    });
    (time, compile())
}
