//! Percent-decoding 16 input bytes per SSSE3 step, for [`percent_decode`]: form
//! bodies carry whole percent-encoded JSON documents, where three bytes in four
//! belong to an escape (`%7B%22k%22%3A…`), and the byte loop paid a branch and two
//! table lookups per escape. Here each window is classified at once (the `%` bytes,
//! the hex digits and their values), the escapes are decoded in place, and the bytes
//! kept are packed together by two `pshufb`s, one per half of the window.
//!
//! [`percent_decode`]: super::percent_decode

use std::arch::x86_64::{
    __m128i, _mm_add_epi8, _mm_and_si128, _mm_andnot_si128, _mm_cmpeq_epi8, _mm_loadl_epi64,
    _mm_loadu_si128, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
    _mm_setzero_si128, _mm_shuffle_epi8, _mm_slli_epi16, _mm_srli_si128, _mm_storel_epi64,
    _mm_storeu_si128, _mm_sub_epi8,
};

/// For each 8-bit mask, the indexes of its set bits in order (the `pshufb` control
/// that packs the bytes an 8-byte half keeps to its front), `0x80` after them.
pub(super) const PACK: [[u8; 8]; 256] = {
    let mut t = [[0x80u8; 8]; 256];
    let mut m = 0;
    while m < 256 {
        let mut k = 0;
        let mut bit = 0;
        while bit < 8 {
            if m & (1 << bit) != 0 {
                t[m][k] = bit as u8;
                k += 1;
            }
            bit += 1;
        }
        m += 1;
    }
    t
};

/// Decodes `s` from `*i` into `out` from `*n`, a 16-byte window at a time while a
/// whole window is left, and moves both positions past what it decoded: the byte
/// loop of [`percent_decode`](super::percent_decode) takes over from there, with the
/// same result as if it had done it all (a window is only taken up to the first `%`
/// whose escape could reach past it, so no escape is cut).
///
/// # Safety
/// The CPU must have SSSE3 and POPCNT, `out.len() >= s.len()` and `*n <= *i` (the output never
/// outgrows the input, so the stores below stay inside `out`).
#[target_feature(enable = "ssse3,popcnt")]
pub(super) unsafe fn decode_windows(
    s: &[u8],
    out: &mut [u8],
    i: &mut usize,
    n: &mut usize,
    plus_is_space: bool,
) {
    let (mut at, mut to) = (*i, *n);
    let set = |b: u8| _mm_set1_epi8(b as i8);
    let zero = _mm_setzero_si128();
    while at + 16 <= s.len() {
        debug_assert!(to <= at && out.len() >= s.len());
        // SAFETY: `at + 16 <= s.len()` (loop condition): the load reads inside `s`.
        let v = unsafe { _mm_loadu_si128(s.as_ptr().add(at).cast()) };
        let pct = _mm_cmpeq_epi8(v, set(b'%'));
        let plus = if plus_is_space {
            _mm_cmpeq_epi8(v, set(b'+'))
        } else {
            zero
        };
        if _mm_movemask_epi8(_mm_or_si128(pct, plus)) == 0 {
            // SAFETY: `to <= at`, so `to + 16 <= at + 16 <= s.len() <= out.len()`.
            unsafe { _mm_storeu_si128(out.as_mut_ptr().add(to).cast(), v) };
            at += 16;
            to += 16;
            continue;
        }
        // Hex digits and their values (0 for other bytes): `0`–`9` are `v - '0'` up to
        // 9; letters are `(v | 0x20) - 'a'` up to 5, which only `A`–`F` and `a`–`f`
        // give.
        let d = _mm_sub_epi8(v, set(b'0'));
        let is_digit = _mm_cmpeq_epi8(_mm_min_epu8(d, set(9)), d);
        let a = _mm_sub_epi8(_mm_or_si128(v, set(0x20)), set(b'a'));
        let is_letter = _mm_cmpeq_epi8(_mm_min_epu8(a, set(5)), a);
        let hex = _mm_or_si128(is_digit, is_letter);
        let nibble = _mm_or_si128(
            _mm_and_si128(is_digit, d),
            _mm_and_si128(is_letter, _mm_add_epi8(a, set(10))),
        );
        // An escape is a `%` with hex digits in the next two bytes; byte 14 and 15
        // see zeros shifted in, so an escape found here lies inside the window.
        let escape = _mm_and_si128(
            pct,
            _mm_and_si128(_mm_srli_si128::<1>(hex), _mm_srli_si128::<2>(hex)),
        );
        // Nibbles are at most 15: the 16-bit shift carries nothing into the next byte.
        let value = _mm_or_si128(
            _mm_slli_epi16::<4>(_mm_srli_si128::<1>(nibble)),
            _mm_srli_si128::<2>(nibble),
        );
        let mut bytes = _mm_or_si128(_mm_and_si128(escape, value), _mm_andnot_si128(escape, v));
        bytes = _mm_or_si128(
            _mm_and_si128(plus, set(b' ')),
            _mm_andnot_si128(plus, bytes),
        );
        let escapes = _mm_movemask_epi8(escape) as u32;
        let percents = _mm_movemask_epi8(pct) as u32;
        // A `%` in byte 14 or 15 may start an escape that the next window holds: the
        // window ends before it. No escape found here reaches past that end either
        // (its digits would be that `%`).
        let taken = match percents >> 14 {
            0 => 16,
            late => 14 + late.trailing_zeros(),
        };
        let keep = !(escapes << 1 | escapes << 2) & ((1u32 << taken) - 1);
        let (low, high) = (keep & 0xff, keep >> 8 & 0xff);
        // SAFETY: the table rows are 8 bytes; the first store writes 8 bytes at
        // `to <= at`, the second at `to + low.count_ones() <= at + 8`, both ending at
        // most at `at + 16 <= s.len() <= out.len()`.
        unsafe {
            let pack = |mask: u32| _mm_loadl_epi64(PACK[mask as usize].as_ptr().cast::<__m128i>());
            let first = _mm_shuffle_epi8(bytes, pack(low));
            _mm_storel_epi64(out.as_mut_ptr().add(to).cast(), first);
            to += low.count_ones() as usize;
            let second = _mm_shuffle_epi8(_mm_srli_si128::<8>(bytes), pack(high));
            _mm_storel_epi64(out.as_mut_ptr().add(to).cast(), second);
            to += high.count_ones() as usize;
        }
        at += taken as usize;
    }
    *i = at;
    *n = to;
}
