//! Asks the CPU to start loading the next event's memory while the current one is
//! handled.
//!
//! Why: the proxy's analysis thread reads each exchange just after a runtime thread,
//! often on the other core, wrote it, so the first read of each of its cache lines
//! misses: two thirds of the samples of the record JSON's string escaping sat on the
//! load of the raw heads' bytes. Asked for one event ahead, the lines arrive while
//! the event before is judged and stored. A prefetch changes no result, only when
//! the bytes are in the cache.

use crate::exchange::Exchange;

/// Bytes per cache line.
const LINE: usize = 64;
/// Most bytes asked for per range: a head may be 64 KiB, and each line asked for is
/// an instruction.
const MAX_BYTES: usize = 4096;

/// The parts of `x` the analysis thread reads first: the exchange itself, its raw
/// heads (escaped into the stored record) and the strings the record and the finding
/// carry.
pub fn exchange(x: &Exchange) {
    value(x);
    for head in [&x.evidence.request_head, &x.evidence.response_head]
        .into_iter()
        .flatten()
    {
        if let Some(text) = &head.text {
            bytes(text.as_bytes());
        }
        bytes(head.sha256.as_bytes());
    }
    for s in [&x.id, &x.host, &x.path, &x.evidence.locator] {
        bytes(s.as_bytes());
    }
}

/// The memory of `v` itself (not what it points to).
pub fn value<T>(v: &T) {
    range(std::ptr::from_ref(v).cast(), std::mem::size_of::<T>());
}

/// The bytes of `b` (at most the first [`MAX_BYTES`]).
pub fn bytes(b: &[u8]) {
    range(b.as_ptr(), b.len());
}

/// Every cache line holding a byte of `start .. start + len`, up to [`MAX_BYTES`].
fn range(start: *const u8, len: usize) {
    for offset in offsets(len) {
        line(start.wrapping_add(offset));
    }
}

/// The offsets asked for in a range of `len` bytes: every 64th byte and the last one
/// (the range need not begin at a line's start), within [`MAX_BYTES`].
fn offsets(len: usize) -> impl Iterator<Item = usize> {
    let len = len.min(MAX_BYTES);
    (0..len).step_by(LINE).chain(len.checked_sub(1))
}

#[cfg(target_arch = "x86_64")]
fn line(at: *const u8) {
    use std::arch::x86_64::{_mm_prefetch, _MM_HINT_T0};
    // SAFETY: PREFETCHT0 is a hint: it reads nothing the program sees and never
    // faults, whatever the address (Intel SDM, "PREFETCHh"); `at` was made with
    // `wrapping_add`, without a dereference. Its target feature, SSE, is part of the
    // x86_64 baseline, so every CPU this build runs on has it.
    unsafe { _mm_prefetch::<_MM_HINT_T0>(at.cast()) };
}

#[cfg(not(target_arch = "x86_64"))]
fn line(_at: *const u8) {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_line_of_a_range_is_asked_for_at_any_alignment() {
        for align in 0..LINE {
            for len in (0..300).chain([MAX_BYTES - 1, MAX_BYTES, MAX_BYTES + 1, 1 << 16]) {
                let asked: Vec<usize> = offsets(len).map(|o| (align + o) / LINE).collect();
                for byte in 0..len.min(MAX_BYTES) {
                    assert!(
                        asked.contains(&((align + byte) / LINE)),
                        "align {align}, len {len}: byte {byte}'s line not asked for"
                    );
                }
                assert!(asked.len() <= len.min(MAX_BYTES) / LINE + 2);
            }
        }
    }
}
