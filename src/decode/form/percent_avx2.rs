//! [`percent_ssse3`](super::percent_ssse3)'s decoder on 32-byte windows with AVX2:
//! the classification of a window (the `%` bytes, the hex digits, their values) is
//! done once per 32 bytes instead of once per 16, and a `%` in the last two bytes
//! cuts a window half as often. The packing stays 8 bytes per `pshufb`, as there.

use std::arch::x86_64::{
    __m128i, __m256i, _mm256_add_epi8, _mm256_alignr_epi8, _mm256_and_si256, _mm256_andnot_si256,
    _mm256_castsi256_si128, _mm256_cmpeq_epi8, _mm256_extracti128_si256, _mm256_loadu_si256,
    _mm256_min_epu8, _mm256_movemask_epi8, _mm256_or_si256, _mm256_permute2x128_si256,
    _mm256_set1_epi8, _mm256_setzero_si256, _mm256_slli_epi16, _mm256_storeu_si256,
    _mm256_sub_epi8, _mm_loadl_epi64, _mm_shuffle_epi8, _mm_srli_si128, _mm_storel_epi64,
};

use super::percent_ssse3::PACK;

/// `v` moved down by `N` bytes as one 32-byte value (AVX2 shifts bytes within each
/// 16-byte lane only), zeros shifted in at the top.
#[target_feature(enable = "avx2")]
#[inline]
fn shift_down<const N: i32>(v: __m256i) -> __m256i {
    // The upper lane moved to the lower one, zeros above: the bytes that come in.
    let next = _mm256_permute2x128_si256::<0x81>(v, v);
    _mm256_alignr_epi8::<N>(next, v)
}

/// Decodes `s` from `*i` into `out` from `*n`, 32 bytes at a time while a whole
/// window is left, and moves both positions past what it decoded, exactly as
/// [`decode_windows`](super::percent_ssse3::decode_windows) does 16 at a time: the
/// caller's shorter steps take over from there with the same result.
///
/// # Safety
/// The CPU must have AVX2 and POPCNT, `out.len() >= s.len()` and `*n <= *i` (the
/// output never outgrows the input, so the stores below stay inside `out`).
#[target_feature(enable = "avx2,popcnt")]
pub(super) unsafe fn decode_windows(
    s: &[u8],
    out: &mut [u8],
    i: &mut usize,
    n: &mut usize,
    plus_is_space: bool,
) {
    let (mut at, mut to) = (*i, *n);
    let set = |b: u8| _mm256_set1_epi8(b as i8);
    while at + 32 <= s.len() {
        debug_assert!(to <= at && out.len() >= s.len());
        // SAFETY: `at + 32 <= s.len()` (loop condition): the load reads inside `s`.
        let v = unsafe { _mm256_loadu_si256(s.as_ptr().add(at).cast()) };
        let pct = _mm256_cmpeq_epi8(v, set(b'%'));
        let plus = if plus_is_space {
            _mm256_cmpeq_epi8(v, set(b'+'))
        } else {
            _mm256_setzero_si256()
        };
        if _mm256_movemask_epi8(_mm256_or_si256(pct, plus)) == 0 {
            // SAFETY: `to <= at`, so `to + 32 <= at + 32 <= s.len() <= out.len()`.
            unsafe { _mm256_storeu_si256(out.as_mut_ptr().add(to).cast(), v) };
            at += 32;
            to += 32;
            continue;
        }
        // Hex digits and their values, as in the 16-byte decoder.
        let d = _mm256_sub_epi8(v, set(b'0'));
        let is_digit = _mm256_cmpeq_epi8(_mm256_min_epu8(d, set(9)), d);
        let a = _mm256_sub_epi8(_mm256_or_si256(v, set(0x20)), set(b'a'));
        let is_letter = _mm256_cmpeq_epi8(_mm256_min_epu8(a, set(5)), a);
        let hex = _mm256_or_si256(is_digit, is_letter);
        let nibble = _mm256_or_si256(
            _mm256_and_si256(is_digit, d),
            _mm256_and_si256(is_letter, _mm256_add_epi8(a, set(10))),
        );
        // Bytes 30 and 31 see zeros shifted in (no hex digit): an escape found here
        // lies inside the window.
        let escape = _mm256_and_si256(
            pct,
            _mm256_and_si256(shift_down::<1>(hex), shift_down::<2>(hex)),
        );
        // Nibbles are at most 15: the 16-bit shift carries nothing into the next byte.
        let value = _mm256_or_si256(
            _mm256_slli_epi16::<4>(shift_down::<1>(nibble)),
            shift_down::<2>(nibble),
        );
        let mut bytes = _mm256_or_si256(
            _mm256_and_si256(escape, value),
            _mm256_andnot_si256(escape, v),
        );
        bytes = _mm256_or_si256(
            _mm256_and_si256(plus, set(b' ')),
            _mm256_andnot_si256(plus, bytes),
        );
        let escapes = _mm256_movemask_epi8(escape) as u32;
        let percents = _mm256_movemask_epi8(pct) as u32;
        // A `%` in byte 30 or 31 may start an escape that the next window holds: the
        // window ends before it.
        let taken = match percents >> 30 {
            0 => 32,
            late => 30 + late.trailing_zeros(),
        };
        let keep = !(escapes << 1 | escapes << 2) & (u64::MAX >> (64 - taken)) as u32;
        let lanes = [
            _mm256_castsi256_si128(bytes),
            _mm256_extracti128_si256::<1>(bytes),
        ];
        for (lane, bytes) in lanes.into_iter().enumerate() {
            let lane_keep = keep >> (16 * lane);
            let (low, high) = (lane_keep & 0xff, lane_keep >> 8 & 0xff);
            // SAFETY: the table rows are 8 bytes; each store writes 8 bytes at
            // `to`, which is at most `at` plus the 8-byte halves before it (the
            // kept bytes of a half are at most 8), so each ends at most at
            // `at + 32 <= s.len() <= out.len()`.
            unsafe {
                let pack =
                    |mask: u32| _mm_loadl_epi64(PACK[mask as usize].as_ptr().cast::<__m128i>());
                let first = _mm_shuffle_epi8(bytes, pack(low));
                _mm_storel_epi64(out.as_mut_ptr().add(to).cast(), first);
                to += low.count_ones() as usize;
                let second = _mm_shuffle_epi8(_mm_srli_si128::<8>(bytes), pack(high));
                _mm_storel_epi64(out.as_mut_ptr().add(to).cast(), second);
                to += high.count_ones() as usize;
            }
        }
        at += taken as usize;
    }
    *i = at;
    *n = to;
}
