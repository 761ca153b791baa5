//! The fuzz loop shared by every target: generate an input, check it with
//! panics caught and time measured, save what fails so it can be replayed.
//!
//! Environment:
//! - `FUZZ_SECONDS`: the time for all targets together, split evenly
//!   (unset: about a second per target, as `make test` runs them).
//! - `FUZZ_SEED`: a number (decimal or `0x` hex), or `random`; unset: a
//!   fixed seed, so `make test` checks the same cases every time.
//! - `FUZZ_REPLAY=path`: check one saved input instead of fuzzing; only the
//!   target whose name starts the file name runs it.
//!
//! Case `n` of a run is generated from the seed, the target's name and `n`
//! alone, so a seed gives the same cases whatever the speed of the machine.
//! A failing input is saved as `NAME-SEED-CASE.EXT`; the input being checked
//! is also kept in `NAME-last.EXT` until the run ends, so a run killed by
//! something no `catch_unwind` stops (a stack overflow, an abort) leaves its
//! input behind, and the next run reports it.

use std::fs::File;
use std::os::unix::fs::FileExt;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use crate::rng::{Rng, mix};

/// The seed when `FUZZ_SEED` is unset ("alyx").
const FIXED_SEED: u64 = 0x616c_7978;

/// Time per target when `FUZZ_SECONDS` is unset.
const DEFAULT_SECONDS: f64 = 1.0;

/// A target stops after this many failures: the first few say enough.
const MAX_FAILURES: usize = 3;

/// One thing to fuzz.
pub trait Target {
    /// The test's name; saved inputs start with it.
    const NAME: &'static str;
    /// The file extension of saved inputs.
    const EXTENSION: &'static str;
    /// A case that takes longer has hung.
    const MAX_CASE_TIME: Duration;

    /// One input, from `rng` alone.
    fn generate(&mut self, rng: &mut Rng) -> Vec<u8>;

    /// Runs one input; `Err` says which invariant it broke. Panics are
    /// caught by the harness.
    fn check(&mut self, input: &[u8]) -> Result<(), String>;

    /// What the cases exercised, for the closing line.
    fn summary(&self) -> String {
        String::new()
    }
}

/// The settings of one target's run, from the environment.
struct Settings {
    seconds: f64,
    seed: u64,
    replay: Option<PathBuf>,
    folder: PathBuf,
}

impl Settings {
    fn from_env() -> Settings {
        let total = std::env::var("FUZZ_SECONDS").ok().map(|s| {
            s.parse::<f64>().unwrap_or_else(|_| panic!("FUZZ_SECONDS: not a number of seconds ({s:?})"))
        });
        Settings {
            seconds: total.map_or(DEFAULT_SECONDS, |t| t / f64::from(crate::TARGETS)),
            seed: std::env::var("FUZZ_SEED").map_or(FIXED_SEED, |s| parse_seed(&s)),
            replay: std::env::var_os("FUZZ_REPLAY").map(PathBuf::from),
            folder: Path::new(env!("CARGO_TARGET_TMPDIR")).join("fuzz-failures"),
        }
    }
}

fn parse_seed(text: &str) -> u64 {
    let parsed = match text.strip_prefix("0x") {
        _ if text == "random" => Some(time_seed()),
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => text.parse().ok(),
    };
    parsed.unwrap_or_else(|| panic!("FUZZ_SEED: a number, 0x-hex or `random` (got {text:?})"))
}

fn time_seed() -> u64 {
    let now = SystemTime::now().duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    mix(now.as_nanos() as u64 ^ u64::from(std::process::id()))
}

/// Fuzzes `target` as the environment says, or replays one input; panics
/// (failing the test) if any case broke an invariant.
pub fn run<T: Target>(target: &mut T) {
    let settings = Settings::from_env();
    match &settings.replay {
        Some(path) => replay(target, path),
        None => fuzz(target, &settings),
    }
}

fn replay<T: Target>(target: &mut T, path: &Path) {
    let name = path.file_name().unwrap_or_default().to_string_lossy();
    if !name.starts_with(T::NAME) {
        eprintln!("fuzz {}: skipped, {} is not one of its inputs", T::NAME, path.display());
        return;
    }
    let input =
        std::fs::read(path).unwrap_or_else(|e| panic!("FUZZ_REPLAY: reading {}: {e}", path.display()));
    match check_case(target, &input) {
        Ok(took) => eprintln!("fuzz {}: {} passes ({:.3} s)", T::NAME, path.display(), took.as_secs_f64()),
        Err(failure) => panic!("fuzz {}: {} fails: {failure}", T::NAME, path.display()),
    }
}

fn fuzz<T: Target>(target: &mut T, settings: &Settings) {
    std::fs::create_dir_all(&settings.folder).expect("creating the fuzz-failures folder");
    let last = LastInput::open(&settings.folder, T::NAME, T::EXTENSION);
    let base = mix(settings.seed ^ mix(name_hash(T::NAME)));
    let (start, budget) = (Instant::now(), Duration::from_secs_f64(settings.seconds));
    let mut failures = Vec::new();
    let mut cases = 0u64;
    while start.elapsed() < budget && failures.len() < MAX_FAILURES {
        let input = target.generate(&mut Rng::new(mix(base ^ cases)));
        last.keep(&input);
        if let Err(failure) = check_case(target, &input) {
            failures.push(save_failure::<T>(settings, cases, &input, &failure));
        }
        cases += 1;
    }
    last.remove();
    report::<T>(target, settings.seed, cases, start.elapsed(), &failures);
}

fn report<T: Target>(target: &T, seed: u64, cases: u64, took: Duration, failures: &[String]) {
    let rate = cases as f64 / took.as_secs_f64().max(1e-9);
    let summary = target.summary();
    let summary = if summary.is_empty() { summary } else { format!("; {summary}") };
    eprintln!(
        "fuzz {}: {cases} cases in {:.1} s ({rate:.0}/s), seed {seed:#x}, {} failures{summary}",
        T::NAME,
        took.as_secs_f64(),
        failures.len()
    );
    assert!(failures.is_empty(), "fuzz {}: {} failures:\n{}", T::NAME, failures.len(), failures.join("\n"));
}

/// Checks one input with panics caught; `Ok(time taken)` or what failed.
fn check_case<T: Target>(target: &mut T, input: &[u8]) -> Result<Duration, String> {
    let start = Instant::now();
    let outcome = catch_unwind(AssertUnwindSafe(|| target.check(input)));
    let took = start.elapsed();
    match outcome {
        Ok(Ok(())) if took > T::MAX_CASE_TIME => {
            Err(format!("took {:.1} s (a case may take {:?})", took.as_secs_f64(), T::MAX_CASE_TIME))
        }
        Ok(Ok(())) => Ok(took),
        Ok(Err(broken)) => Err(broken),
        Err(payload) => Err(format!("panic: {}", panic_message(payload.as_ref()))),
    }
}

fn panic_message(payload: &(dyn std::any::Any + Send)) -> String {
    match (payload.downcast_ref::<&str>(), payload.downcast_ref::<String>()) {
        (Some(text), _) => text.to_string(),
        (_, Some(text)) => text.clone(),
        _ => "(not a string)".into(),
    }
}

/// Saves a failing input and returns the message that says how to replay it.
fn save_failure<T: Target>(settings: &Settings, case: u64, input: &[u8], failure: &str) -> String {
    let file = format!("{}-{:x}-{case}.{}", T::NAME, settings.seed, T::EXTENSION);
    let path = settings.folder.join(file);
    std::fs::write(&path, input).unwrap_or_else(|e| panic!("saving {}: {e}", path.display()));
    let message = format!(
        "case {case} (seed {:#x}): {failure}\n  input: {}\n  replay: FUZZ_REPLAY={} cargo test --test fuzz {}",
        settings.seed,
        path.display(),
        path.display(),
        T::NAME
    );
    eprintln!("fuzz {}: {message}", T::NAME);
    message
}

fn name_hash(name: &str) -> u64 {
    name.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

/// The input being checked, kept on disk while it runs (one write per case
/// into an open file: cheap next to any case).
struct LastInput {
    path: PathBuf,
    file: File,
}

impl LastInput {
    fn open(folder: &Path, name: &str, extension: &str) -> LastInput {
        let path = folder.join(format!("{name}-last.{extension}"));
        if path.exists() {
            let kept = folder.join(format!("{name}-died-{}.{extension}", time_seed()));
            let _ = std::fs::rename(&path, &kept);
            eprintln!(
                "fuzz {name}: an earlier run died while checking {}; replay: FUZZ_REPLAY={} cargo test --test fuzz {name}",
                kept.display(),
                kept.display()
            );
        }
        let file = File::create(&path).unwrap_or_else(|e| panic!("creating {}: {e}", path.display()));
        LastInput { path, file }
    }

    fn keep(&self, input: &[u8]) {
        let _ = self.file.set_len(0).and_then(|()| self.file.write_all_at(input, 0));
    }

    fn remove(self) {
        let _ = std::fs::remove_file(&self.path);
    }
}
