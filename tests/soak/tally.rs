//! What the clients saw: answers counted by kind, and failures counted by
//! kind with the first few in full. Each client thread keeps its own tally
//! and they are added up at the end, so counting takes no lock.

use std::collections::BTreeMap;
use std::fmt::Display;

/// Failures kept in full (the rest are only counted).
const EXAMPLES: usize = 20;

#[derive(Debug, Default)]
pub struct Tally {
    /// Expected answers by kind (`fast 200`, `slow 503`...).
    pub answers: BTreeMap<&'static str, u64>,
    /// Everything else by kind (`fast: status 500`...).
    pub failures: BTreeMap<String, u64>,
    /// The first failures, with their details.
    pub examples: Vec<String>,
}

impl Tally {
    /// An answer that was what it should be.
    pub fn answer(&mut self, kind: &'static str) {
        *self.answers.entry(kind).or_default() += 1;
    }

    /// A failure of `kind` (few distinct kinds), with what was seen.
    pub fn fail(&mut self, kind: impl Into<String>, detail: impl Display) {
        let kind = kind.into();
        if self.examples.len() < EXAMPLES {
            self.examples.push(format!("{kind}: {detail}"));
        }
        *self.failures.entry(kind).or_default() += 1;
    }

    pub fn add(&mut self, other: Tally) {
        for (kind, n) in other.answers {
            *self.answers.entry(kind).or_default() += n;
        }
        for (kind, n) in other.failures {
            *self.failures.entry(kind).or_default() += n;
        }
        let room = EXAMPLES.saturating_sub(self.examples.len());
        self.examples.extend(other.examples.into_iter().take(room));
    }

    pub fn count(&self, kind: &str) -> u64 {
        self.answers.get(kind).copied().unwrap_or(0)
    }

    /// Every expected answer (the idle connections' reopenings excluded).
    pub fn answered(&self) -> u64 {
        self.answers.iter().filter(|(k, _)| !k.starts_with("idle closed")).map(|(_, n)| n).sum()
    }
}
