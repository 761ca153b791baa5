//! Byte-level mutations shared by the targets: flips, interesting values,
//! cuts, copies, and splices of tokens from a target's own dictionary.

use crate::rng::Rng;

/// Bytes that often sit on a boundary (sign bits, LEB128 continuation,
/// ASCII controls).
const INTERESTING: &[u8] = &[0x00, 0x01, 0x7f, 0x80, 0xff, 0xfe, b'\n', b'\r', b' ', b'%', b'"', b'\\'];

/// Applies 1 to `max` random mutations to `bytes`, never growing it past
/// `limit` bytes.
pub fn mutate(rng: &mut Rng, bytes: &mut Vec<u8>, dictionary: &[&[u8]], max: usize, limit: usize) {
    for _ in 0..rng.between(1, max) {
        mutate_once(rng, bytes, dictionary);
    }
    bytes.truncate(limit);
}

fn mutate_once(rng: &mut Rng, bytes: &mut Vec<u8>, dictionary: &[&[u8]]) {
    let at = rng.below(bytes.len() + 1);
    match rng.below(9) {
        0 if at < bytes.len() => bytes[at] ^= 1 << rng.below(8),
        1 if at < bytes.len() => bytes[at] = *rng.pick(INTERESTING),
        2 => bytes.truncate(at),
        3 => {
            let end = (at + rng.between(1, 64)).min(bytes.len());
            bytes.drain(at.min(end)..end);
        }
        4 => {
            let end = (at + rng.between(1, 64)).min(bytes.len());
            let copy = bytes[at.min(end)..end].to_vec();
            let to = rng.below(bytes.len() + 1);
            bytes.splice(to..to, copy);
        }
        5 if !dictionary.is_empty() => {
            let token = rng.pick(dictionary).to_vec();
            bytes.splice(at..at, token);
        }
        6 if !dictionary.is_empty() && at < bytes.len() => {
            let token = rng.pick(dictionary).to_vec();
            let end = (at + token.len()).min(bytes.len());
            bytes.splice(at..end, token);
        }
        7 => {
            // A maximal LEB128 (u64::MAX): lengths and counts at their limit.
            let leb = [0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01];
            let end = (at + rng.between(1, 5)).min(bytes.len());
            bytes.splice(at..end, leb);
        }
        _ => {
            let random = rng.bytes(1, 8);
            bytes.splice(at..at, random);
        }
    }
}
