# alyx: every command a developer or CI needs. Only the Rust toolchain is
# required; everything else is built from this repository.

CARGO ?= cargo

.PHONY: build install uninstall test lint bench soak fuzz run release clean

# Where cargo puts what it builds (it honours CARGO_TARGET_DIR).
TARGET_DIR ?= $(or $(CARGO_TARGET_DIR),target)

build:
	$(CARGO) build --release

## Install the release binary as $(PREFIX)/bin/alyx (DESTDIR for packagers).
PREFIX ?= /usr/local
install: build
	install -d $(DESTDIR)$(PREFIX)/bin
	install -m 755 $(TARGET_DIR)/release/alyx $(DESTDIR)$(PREFIX)/bin/alyx

uninstall:
	rm -f $(DESTDIR)$(PREFIX)/bin/alyx

## Every test: formatting, lints, unit and integration tests.
test: lint
	$(CARGO) test --lib --bins --tests

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --all-targets -- -D warnings

## Benchmarks (release build); figures go into README.md.
bench:
	$(CARGO) bench --bench runtime --bench http --bench reload --bench events

## The soak test: one release `alyx serve` (target/release/alyx) under every
## kind of traffic at once for SOAK_SECONDS; prints its figures, fails on a
## wrong answer, a dropped connection, extra threads or growing memory.
SOAK_SECONDS ?= 300
soak:
	SOAK_SECONDS=$(SOAK_SECONDS) $(CARGO) test --release --test soak -- --ignored --nocapture

## Fuzzing (release build; not part of `make test`, which runs a fixed-seed
## second of each target): FUZZ_SECONDS in all, split over the targets, from
## a new seed each run. Replay a saved failure with FUZZ_REPLAY=path.
FUZZ_SECONDS ?= 600
FUZZ_SEED ?= random
fuzz:
	FUZZ_SECONDS=$(FUZZ_SECONDS) FUZZ_SEED=$(FUZZ_SEED) $(CARGO) test --release --test fuzz -- --nocapture --test-threads=1

## Serve the bundled example functions on http://127.0.0.1:8090.
run: build
	$(TARGET_DIR)/release/alyx serve --dir testdata/functions

## A stripped, statically linked x86_64 binary that needs no shared libraries.
## Position-independent (static-pie, so ASLR applies), with its relocations
## packed (DT_RELR: binutils 2.38+, glibc 2.36+), which saves ~300 KB.
RELEASE_TARGET ?= x86_64-unknown-linux-gnu
RELEASE_BIN = $(TARGET_DIR)/$(RELEASE_TARGET)/release/alyx
RELEASE_FLAGS = -C target-feature=+crt-static -C link-arg=-Wl,-z,pack-relative-relocs
release:
	RUSTFLAGS="$(RELEASE_FLAGS)" $(CARGO) build --release --target $(RELEASE_TARGET)
	strip $(RELEASE_BIN)
	@ls -l $(RELEASE_BIN) | awk '{ printf "%s: %.2f MB\n", $$9, $$5 / 1000000 }'
	@file $(RELEASE_BIN) 2>/dev/null || true

clean:
	$(CARGO) clean
