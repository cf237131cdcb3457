//! The narrow filter's probe eight samples at a time with AVX2, for
//! [`Shard::scan_narrow`](super::Shard::scan_narrow): the short shard (grams of three
//! bytes, a sample every four bytes) takes most of the matcher's samples, and nearly
//! all of them are rejected by the filter. Here the eight grams are one 32-byte
//! load, hashed by one 32-bit multiply, their filter words gathered, and the passing
//! samples read from a mask, where the scalar probe spent about ten instructions on
//! each sample.

use std::arch::x86_64::{
    _mm256_and_si256, _mm256_castsi256_ps, _mm256_i32gather_epi32, _mm256_loadu_si256,
    _mm256_movemask_ps, _mm256_mullo_epi32, _mm256_set1_epi32, _mm256_slli_epi32, _mm256_srl_epi32,
    _mm256_srli_epi32, _mm256_srlv_epi32, _mm_cvtsi32_si128,
};
use std::ops::ControlFlow;

use super::HASH_MUL32;

/// Probes the samples `0, 4, 8, …` of `hay` (a shard of stride 4) with the narrow
/// filter `bits` (`2^(32 − shift)` bits; a gram is its sample's four bytes masked by
/// `keep`) while 32 bytes are left, and calls `on_pass(at)` for each sample `at` that
/// passes, in increasing order, until it breaks. Returns the first sample not
/// probed, where the scalar loop goes on: the samples probed and their order are
/// those of the scalar loop.
///
/// Only stride 4 (a case's shortest short variants, 6-byte coordinates) is taken:
/// its eight grams are one 32-byte load. Other strides need a gather of the grams
/// from the haystack, and that did not pay: with 4-byte grams for the middle shard
/// (stride 10) and such a gather, instructions fell 30 M on the 32 MB bench capture
/// but user CPU did not (2.15 → 2.19 s, nine pairs).
///
/// # Safety
/// The CPU must have AVX2. (`stride` and `bits` are checked here: another stride or
/// a filter of another size probes nothing and returns 0.)
#[target_feature(enable = "avx2")]
pub(super) unsafe fn probe<F>(
    hay: &[u8],
    stride: usize,
    keep: u32,
    bits: &[u32],
    shift: u32,
    mut on_pass: F,
) -> ControlFlow<(), usize>
where
    F: FnMut(usize) -> ControlFlow<()>,
{
    // The gather below reads `bits` at `(hash >> shift) / 32 < 2^(32 − shift − 5)`.
    if stride != 4 || shift > 27 || bits.len() != 1usize << (27 - shift) {
        return ControlFlow::Continue(0);
    }
    let keep = _mm256_set1_epi32(keep as i32);
    let mul = _mm256_set1_epi32(HASH_MUL32 as i32);
    let shift = _mm_cvtsi32_si128(shift as i32);
    let low5 = _mm256_set1_epi32(31);
    let mut p = 0usize;
    while p + 32 <= hay.len() {
        // SAFETY: the 32 bytes from `p` lie inside `hay` (loop condition).
        let grams = unsafe { _mm256_loadu_si256(hay.as_ptr().add(p).cast()) };
        // Bit `j` of `pass` set when sample `p + 4·j` passes (the scalar
        // `narrow_passes`, lane by lane).
        let h = _mm256_mullo_epi32(_mm256_and_si256(grams, keep), mul);
        let bit = _mm256_srl_epi32(h, shift);
        // SAFETY: every index `bit / 32` is below `bits.len()` (checked above).
        let words = unsafe {
            _mm256_i32gather_epi32::<4>(bits.as_ptr().cast(), _mm256_srli_epi32::<5>(bit))
        };
        let tested = _mm256_srlv_epi32(words, _mm256_and_si256(bit, low5));
        let mut pass =
            _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32::<31>(tested))) as u32;
        while pass != 0 {
            on_pass(p + 4 * pass.trailing_zeros() as usize)?;
            pass &= pass - 1;
        }
        p += 32;
    }
    ControlFlow::Continue(p)
}
