//! Fuzzing on stable Rust: random and mutated inputs through the parts of
//! alyx that read untrusted bytes, each checked against its invariant.
//!
//! | target | input | invariant |
//! | --- | --- | --- |
//! | `wasm_modules` | wasm-smith modules, mutated test plugins | typed errors, no panic, no call far past its limits |
//! | `manifests` | random and mutated YAML | a manifest or its problems, never both, no panic |
//! | `http_requests` | random `Request`s through `dispatch` | a status in 100..=599 and an `X-Request-ID`, no panic |
//! | `http_bytes` | raw HTTP/1.1 bytes, once the front parses them | as `http_requests` |
//!
//! Inside `make test` each target runs about a second from a fixed seed;
//! `make fuzz` runs them in release mode for `FUZZ_SECONDS` (600) in all.
//! Settings and the replay of a saved failure are in `harness.rs`.

mod harness;
mod http;
mod manifests;
mod mutate;
mod rng;
#[path = "../common/temp_dir.rs"]
mod temp_dir;
mod wasm;

/// The targets that run now; `FUZZ_SECONDS` is split evenly over them.
fn active_targets() -> u32 {
    3 + u32::from(http::FRONT_PARSER.is_some())
}

#[test]
fn wasm_modules() {
    harness::run(&mut wasm::Modules::new());
}

#[test]
fn manifests() {
    harness::run(&mut manifests::Manifests::new());
}

#[test]
fn http_requests() {
    harness::run(&mut http::Requests::new());
}

#[test]
fn http_bytes() {
    match http::Bytes::new() {
        Some(mut target) => harness::run(&mut target),
        None => eprintln!(
            "fuzz http_bytes: skipped, no raw-bytes parser yet (see FRONT_PARSER in tests/fuzz/http.rs)"
        ),
    }
}
