//! Fuzzing on stable Rust: random and mutated inputs through the parts of
//! alyx that read untrusted bytes, each checked against its invariant.
//!
//! | target | input | invariant |
//! | --- | --- | --- |
//! | `wasm_modules` | wasm-smith modules, mutated test plugins | typed errors, no panic, no call far past its limits |
//! | `manifests` | random and mutated YAML | a manifest or its problems, never both, no panic |
//! | `http_requests` | random `Request`s through `dispatch` | a status in 100..=599 and an `X-Request-ID`, no panic |
//! | `http_bytes` | raw HTTP/1.1 bytes through the front's connection | as `http_requests`; refusals are 4xx/5xx |
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

/// How many targets `FUZZ_SECONDS` is split over.
const TARGETS: u32 = 4;

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
    harness::run(&mut http::Bytes::new());
}
