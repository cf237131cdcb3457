//! The narrow filter's probe eight samples at a time with AVX2, for
//! [`Shard::scan_narrow`](super::Shard::scan_narrow): the short shard (grams of three
//! bytes, a sample every four bytes or so) takes most of the matcher's samples, and
//! nearly all of them are rejected by the filter. Here the eight grams are loaded
//! at once (one 32-byte load when the stride is four, else a gather), hashed by one
//! 32-bit multiply, their filter words gathered, and the passing samples read from a
//! mask, where the scalar probe spent about ten instructions on each sample.

use std::arch::x86_64::{
    _mm256_and_si256, _mm256_castsi256_ps, _mm256_i32gather_epi32, _mm256_loadu_si256,
    _mm256_movemask_ps, _mm256_mullo_epi32, _mm256_set1_epi32, _mm256_setr_epi32,
    _mm256_slli_epi32, _mm256_srl_epi32, _mm256_srli_epi32, _mm256_srlv_epi32, _mm_cvtsi32_si128,
};
use std::ops::ControlFlow;

use super::HASH_MUL32;

/// Probes the samples `0, stride, 2·stride, …` of `hay` with the narrow filter `bits`
/// (`2^(32 − shift)` bits; a gram is its sample's four bytes masked by `keep`) while
/// eight of them lie inside `hay`, and calls `on_pass(at)` for each sample `at` that
/// passes, in increasing order, until it breaks. Returns the first sample not
/// probed, where the scalar loop goes on: the samples probed and their order are
/// those of the scalar loop.
///
/// # Safety
/// The CPU must have AVX2. (`bits` is checked here: a filter of another size, or a
/// stride too large for 32-bit offsets, probes nothing and returns 0.)
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
    // The gathers below read `bits` at `(hash >> shift) / 32 < 2^(32 − shift − 5)`,
    // and `hay` at 32-bit offsets up to `7 * stride`.
    let words_ok = shift <= 27 && bits.len() == 1usize << (27 - shift);
    let Some(span) = stride
        .checked_mul(7)
        .filter(|&span| stride > 0 && i32::try_from(span).is_ok())
    else {
        return ControlFlow::Continue(0);
    };
    if !words_ok {
        return ControlFlow::Continue(0);
    }
    let keep = _mm256_set1_epi32(keep as i32);
    let mul = _mm256_set1_epi32(HASH_MUL32 as i32);
    let shift = _mm_cvtsi32_si128(shift as i32);
    let low5 = _mm256_set1_epi32(31);
    let k = |n: usize| (n * stride) as i32; // at most `span`: fits (checked above)
    let offsets = _mm256_setr_epi32(k(0), k(1), k(2), k(3), k(4), k(5), k(6), k(7));
    let mut p = 0usize;
    // The last of the eight samples' four bytes end at `p + span + 4`.
    while p + span + 4 <= hay.len() {
        let grams = if stride == 4 {
            // SAFETY: `span == 28`: the 32 bytes from `p` lie inside `hay`.
            unsafe { _mm256_loadu_si256(hay.as_ptr().add(p).cast()) }
        } else {
            // SAFETY: each lane reads the four bytes at `p + j·stride`, `j < 8`, all
            // inside `hay` by the loop condition.
            unsafe { _mm256_i32gather_epi32::<1>(hay.as_ptr().add(p).cast(), offsets) }
        };
        // Bit `j` of `pass` set when sample `p + j·stride` passes (the scalar
        // `narrow_passes`, lane by lane).
        let h = _mm256_mullo_epi32(_mm256_and_si256(grams, keep), mul);
        let bit = _mm256_srl_epi32(h, shift);
        // SAFETY: every index `bit / 32` is below `bits.len()` (`words_ok`).
        let words = unsafe {
            _mm256_i32gather_epi32::<4>(bits.as_ptr().cast(), _mm256_srli_epi32::<5>(bit))
        };
        let tested = _mm256_srlv_epi32(words, _mm256_and_si256(bit, low5));
        let mut pass =
            _mm256_movemask_ps(_mm256_castsi256_ps(_mm256_slli_epi32::<31>(tested))) as u32;
        while pass != 0 {
            on_pass(p + pass.trailing_zeros() as usize * stride)?;
            pass &= pass - 1;
        }
        p += 8 * stride;
    }
    ControlFlow::Continue(p)
}
