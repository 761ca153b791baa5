//! Randomness from the operating system, for WASI `random_get`, the key of
//! internal tokens and request ids. No crate needed: `/dev/urandom`, with
//! std's randomly keyed hasher as a fallback where it cannot be read.

use std::hash::{BuildHasher, Hasher};
use std::io::Read;
use std::time::{SystemTime, UNIX_EPOCH};

/// Fills `buf` with random bytes.
pub fn fill(buf: &mut [u8]) {
    if let Ok(mut f) = std::fs::File::open("/dev/urandom")
        && f.read_exact(buf).is_ok()
    {
        return;
    }
    let keys = std::collections::hash_map::RandomState::new();
    let now = SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_nanos());
    for (i, chunk) in buf.chunks_mut(8).enumerate() {
        let mut h = keys.build_hasher();
        h.write_usize(i);
        h.write_u128(now);
        chunk.copy_from_slice(&h.finish().to_le_bytes()[..chunk.len()]);
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn bytes_are_not_all_zero_and_differ() {
        let (mut a, mut b) = ([0u8; 32], [0u8; 32]);
        super::fill(&mut a);
        super::fill(&mut b);
        assert_ne!(a, [0u8; 32]);
        assert_ne!(a, b);
    }
}
