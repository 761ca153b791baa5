//! Helpers for unit tests: a scratch folder that is removed when dropped,
//! registry defaults and our test plugins.

// The same scratch folder the integration tests use: removed when dropped,
// kept (and its path printed) when a test fails.
#[path = "../tests/common/temp_dir.rs"]
mod temp_dir;
pub use temp_dir::TempDir;

/// Registry defaults for tests: 5 s, 16 MiB, 2 instances, idle for 60 s,
/// the API's reserved names.
pub fn defaults() -> crate::registry::Defaults {
    crate::registry::Defaults {
        timeout: std::time::Duration::from_secs(5),
        memory: 16 << 20,
        instances: 2,
        log_level: crate::runtime::LogLevel::Info,
        idle_instance_ttl: std::time::Duration::from_secs(60),
        reserved: crate::http::router::RESERVED_NAMES,
    }
}

/// A test plugin from `testdata/plugins`, compiled with `config` and
/// default limits.
pub fn plugin(file: &str, config: &[(&str, &str)]) -> crate::runtime::Plugin {
    let path = format!("{}/testdata/plugins/{file}", env!("CARGO_MANIFEST_DIR"));
    let wasm = std::fs::read(&path).unwrap_or_else(|e| panic!("reading {path}: {e}"));
    let mut spec = crate::runtime::PluginSpec::new(file, wasm);
    spec.config = config.iter().map(|(k, v)| (k.to_string(), v.to_string())).collect();
    crate::runtime::Plugin::compile(spec).unwrap_or_else(|e| panic!("compiling {file}: {e}"))
}

/// Calls `export` of `pool` `n` times at once, one thread each, and asserts
/// that every call succeeded. With a plugin that holds its calls (grow.wat's
/// `hold_ms`), this leaves `n` idle instances.
pub fn call_at_once(pool: &crate::runtime::Pool, export: &str, n: usize) {
    std::thread::scope(|scope| {
        let calls: Vec<_> = (0..n).map(|_| scope.spawn(|| pool.call(export, b""))).collect();
        for call in calls {
            let report = call.join().expect("the call does not panic");
            assert!(report.result.is_ok(), "{export}: {:?}", report.result);
        }
    });
}
