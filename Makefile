# alyx: every command a developer or CI needs. Only the Rust toolchain is
# required; everything else is built from this repository.

CARGO ?= cargo

.PHONY: build test lint bench run clean

build:
	$(CARGO) build --release

## Every test: formatting, lints, unit and integration tests.
test: lint
	$(CARGO) test --lib --bins --tests

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

## Benchmarks (release build); figures go into README.md.
bench:
	$(CARGO) bench --bench runtime

## Serve the bundled example functions on http://127.0.0.1:8090.
run: build
	./target/release/alyx serve --dir testdata/functions

clean:
	$(CARGO) clean
