//! A small deterministic random generator (SplitMix64): the same seed gives
//! the same inputs on every machine, which is all a fuzz case needs.

pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Rng {
        Rng(seed)
    }

    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        mix(self.0)
    }

    /// A number in `0..n` (0 when `n` is 0).
    pub fn below(&mut self, n: usize) -> usize {
        if n == 0 { 0 } else { (self.next_u64() % n as u64) as usize }
    }

    /// A number in `low..=high`.
    pub fn between(&mut self, low: usize, high: usize) -> usize {
        low + self.below(high - low + 1)
    }

    /// True once in `n` times.
    pub fn one_in(&mut self, n: usize) -> bool {
        self.below(n) == 0
    }

    pub fn pick<'a, T>(&mut self, items: &'a [T]) -> &'a T {
        &items[self.below(items.len())]
    }

    /// Random bytes, `low..=high` of them.
    pub fn bytes(&mut self, low: usize, high: usize) -> Vec<u8> {
        let len = self.between(low, high);
        (0..len).map(|_| self.next_u64() as u8).collect()
    }

    /// A size that is usually small and sometimes up to `max`: sizes near
    /// the edges find more than sizes spread evenly.
    pub fn size(&mut self, max: usize) -> usize {
        match self.below(8) {
            0 => 0,
            1 => max,
            2 | 3 => self.below(max + 1),
            _ => self.below(max.min(16) + 1),
        }
    }
}

/// The SplitMix64 finaliser; also used to derive one seed from several.
pub fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}
