//! [`decode_short_judged`](super::decode_short_judged) with SSSE3: 16 characters are
//! turned into 12 bytes per step (a nibble-table lookup for the 6-bit values, two
//! multiply-adds to pack them, a shuffle to drop the gaps), and the decoded bytes are
//! judged with compares and a population count instead of a table load per byte.
//! The scalar loop cost about 280 instructions per call (bench30: 117 k calls, most
//! of them random tokens of 16, 32 or 64 characters that it rejects).
//!
//! Its answer is the scalar one's: that loop gives up at the first group boundary
//! (from 6 decoded bytes on) where no magic number was seen, a control character was,
//! and the non-printable bytes so far are more than a fifth of the decoded length.
//! Both counts only grow from one boundary to the next, so that test holds at some
//! boundary exactly when it holds at the last one, which is where this tests it.

use std::arch::x86_64::{
    __m128i, _mm_add_epi8, _mm_and_si128, _mm_cmpeq_epi8, _mm_cvtsi128_si64, _mm_loadu_si128,
    _mm_madd_epi16, _mm_maddubs_epi16, _mm_set1_epi32, _mm_set1_epi8, _mm_setr_epi8,
    _mm_shuffle_epi8, _mm_srli_epi16, _mm_storeu_si128,
};

use super::content;

/// The longest body taken (the caller's [`PREFIX_CHARS`](super::PREFIX_CHARS)).
pub(super) const MAX_CHARS: usize = 64;

/// [`decode_short_judged`](super::decode_short_judged) of `body` into `out`: the
/// decoded length, or `None` where that function gives up. `body` must be as that
/// function requires (all of one alphabet, `url_safe` saying which, no padding,
/// length not 1 mod 4) and at most [`MAX_CHARS`] long; a longer one gives `None`.
/// Bytes of `out` past the returned length are unspecified.
///
/// # Safety
/// The CPU must have SSSE3 and POPCNT.
#[target_feature(enable = "ssse3,popcnt")]
pub(super) unsafe fn decode_judged(
    body: &[u8],
    url_safe: bool,
    out: &mut [u8; MAX_CHARS],
) -> Option<usize> {
    let len = body.len();
    if len > MAX_CHARS {
        return None;
    }
    // SAFETY (whole block): SSSE3 is enabled for this function; every load reads 16
    // bytes of a slice or array checked to hold them, every store writes 16 bytes at
    // `12 * block` of `out`, at most 36 + 16 = 52 of its 64 bytes (`block` < 4 since
    // `len` <= 64).
    unsafe {
        let (high_offsets, fix_char, fix_delta) = if url_safe {
            // `-` (0x2d) is 62: +17 for the 0x2_ row; `_` (0x5f) is 63: -32, not the
            // -65 of the letters in its row.
            (offsets(17), b'_', (-32i8).wrapping_sub(-65))
        } else {
            // `+` (0x2b) is 62: +19 for the 0x2_ row; `/` (0x2f) is 63: +16.
            (offsets(19), b'/', 16i8 - 19)
        };
        let fix_char = _mm_set1_epi8(fix_char as i8);
        let fix_delta = _mm_set1_epi8(fix_delta);
        // From each 32-bit lane of three packed bytes (low byte last in the text),
        // the three bytes in text order, twelve per block; the last four unused.
        let gather = _mm_setr_epi8(2, 1, 0, 6, 5, 4, 10, 9, 8, 14, 13, 12, -1, -1, -1, -1);
        // Over the decoded bytes, 12 bits per block: not printable ASCII (nor tab,
        // newline, carriage return), and >= 0x80; the first 8 bytes.
        let mut nonprint = 0u64;
        let mut high = 0u64;
        let mut head = [0u8; 8];
        let mut block = 0;
        while block * 16 < len {
            let start = block * 16;
            let v = match body.get(start..start + 16) {
                Some(chars) => _mm_loadu_si128(chars.as_ptr().cast()),
                None => {
                    // The last, partial block: `A` (value 0) after the characters,
                    // as the scalar decoder shifts a short group's bits up.
                    let mut tail = [b'A'; 16];
                    let rest = body.get(start..).unwrap_or_default();
                    if let Some(dst) = tail.get_mut(..rest.len()) {
                        dst.copy_from_slice(rest);
                    }
                    _mm_loadu_si128(tail.as_ptr().cast())
                }
            };
            let nibbles = _mm_and_si128(_mm_srli_epi16(v, 4), _mm_set1_epi8(0x0f));
            let fix = _mm_and_si128(_mm_cmpeq_epi8(v, fix_char), fix_delta);
            let offset = _mm_add_epi8(_mm_shuffle_epi8(high_offsets, nibbles), fix);
            let values = _mm_add_epi8(v, offset);
            // Pairs of 6-bit values into 12 bits, pairs of those into 24.
            let pairs = _mm_maddubs_epi16(values, _mm_set1_epi32(0x0140_0140));
            let triples = _mm_madd_epi16(pairs, _mm_set1_epi32(0x0001_1000));
            let bytes = _mm_shuffle_epi8(triples, gather);
            if let Some(dst) = out.get_mut(block * 12..block * 12 + 16) {
                _mm_storeu_si128(dst.as_mut_ptr().cast(), bytes);
            }
            // Judged here, from the register: loaded back from `out` across two
            // overlapping stores, the bytes waited for a failed store forwarding.
            let (p, h) = judge16(bytes);
            nonprint |= (p & 0xfff) << (12 * block);
            high |= (h & 0xfff) << (12 * block);
            if block == 0 {
                head = _mm_cvtsi128_si64(bytes).to_le_bytes();
            }
            block += 1;
        }
        let total = len / 4 * 3 + (len % 4).saturating_sub(1);
        // The bytes of whole groups: those the scalar loop has judged at its last
        // boundary (it judges from 6 on; fewer never give up).
        let judged = len / 4 * 3;
        if judged < 6 {
            return Some(total);
        }
        let within = (1u64 << judged) - 1;
        let nonprint = nonprint & within;
        let control = nonprint & !high;
        let head = head.get(..6).unwrap_or_default();
        let magic = content::is_gzip(head) || content::is_zstd(head) || content::is_zlib(head);
        if !magic && control != 0 && nonprint.count_ones() as usize * 5 > total {
            return None;
        }
        Some(total)
    }
}

/// The offsets from a character to its 6-bit value by the character's high nibble,
/// with `row2` for the symbol of the 0x2_ row (the other symbol is fixed up).
#[target_feature(enable = "ssse3")]
fn offsets(row2: i8) -> __m128i {
    // Digits +4; `A`-`Z` -65; `a`-`z` -71; other rows hold no alphabet character.
    _mm_setr_epi8(0, 0, row2, 4, -65, -65, -71, -71, 0, 0, 0, 0, 0, 0, 0, 0)
}

/// Bit masks over the 16 bytes of `v`: bytes that are not printable ASCII (nor tab,
/// newline, carriage return), and bytes >= 0x80.
#[target_feature(enable = "ssse3")]
fn judge16(v: __m128i) -> (u64, u64) {
    let (printable, high) = super::printable_masks16(v);
    (u64::from(!printable & 0xffff), u64::from(high))
}
