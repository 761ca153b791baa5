# alyx: every command a developer or CI needs. Only the Rust toolchain is
# required; everything else is built from this repository.

CARGO ?= cargo
EXAMPLE_INPUT ?= Hello, World!

.PHONY: build test unit lint bench run release clean

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

## Until the server lands (issue 3): call the bundled count-vowels plugin.
run: build
	./target/release/alyx call testdata/plugins/count_vowels.wat count_vowels --input "$(EXAMPLE_INPUT)"
	@echo

clean:
	$(CARGO) clean
