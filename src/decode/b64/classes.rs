//! The union of the base64 character classes ([`CLASS`]) of a string's bytes, the
//! core of [`screen`](super::screen): it runs on every JSON string of 12 bytes or
//! more, most of which it rejects (hex ids fit the alphabet and are told apart only
//! by the union). With SSSE3, 16 bytes are classified per step by two nibble-table
//! lookups (`pshufb`) instead of a table load per byte.

use super::{CLASS, DIGIT, LOWER, NON_HEX, SPACE, STD_SYM, UPPER, URL_SYM};

/// The union of the [`CLASS`]es of `body`'s bytes; `None` when one of them has
/// none (is not a base64 character), and also when none of them is [`NON_HEX`]:
/// [`screen`](super::screen) rejects such strings (hex ids, a third of those it
/// sees), and the vector version then skips folding the union into a class.
#[inline]
pub(super) fn classes_with_non_hex(body: &[u8]) -> Option<u8> {
    #[cfg(target_arch = "x86_64")]
    if body.len() >= 8 && std::arch::is_x86_feature_detected!("ssse3") {
        // SAFETY: SSSE3 is present (checked just above); `classes_ssse3` needs
        // `body` to be at least 8 bytes long, which is checked too.
        return unsafe { classes_ssse3(body) };
    }
    classes_bytewise(body).filter(|&seen| seen & NON_HEX != 0)
}

/// The union of the [`CLASS`]es of `body`'s bytes (`None` when one has none), one
/// table lookup per byte, with a branch per eight bytes (the portable version, and
/// with the [`NON_HEX`] filter the model of the vector one).
pub(super) fn classes_bytewise(body: &[u8]) -> Option<u8> {
    let mut seen = 0u8;
    let mut foreign = false;
    let mut octets = body.chunks_exact(8);
    for octet in &mut octets {
        for &b in octet {
            let class = CLASS[usize::from(b)];
            seen |= class;
            foreign |= class == 0;
        }
        if foreign {
            return None;
        }
    }
    for &b in octets.remainder() {
        let class = CLASS[usize::from(b)];
        seen |= class;
        foreign |= class == 0;
    }
    (!foreign).then_some(seen)
}

// Classes for the vector version, each a rectangle of high and low nibbles (so that
// a byte's class is `BY_HIGH[b >> 4] & BY_LOW[b & 15]`): `0`–`9`; the hex letters
// `A`–`F`/`a`–`f`; `G`–`O`/`g`–`o`; `P`–`Z`/`p`–`z`; `+` and `/`; space; `-`; `_`.
// The case of a letter is bit 0x20 of the byte.
const N_DIGIT: u8 = 1;
const N_HEX_LETTER: u8 = 2;
const N_G_TO_O: u8 = 4;
const N_P_TO_Z: u8 = 8;
const N_PLUS_SLASH: u8 = 16;
const N_SPACE: u8 = 32;
const N_DASH: u8 = 64;
const N_UNDERSCORE: u8 = 128;
const N_LETTER: u8 = N_HEX_LETTER | N_G_TO_O | N_P_TO_Z;
/// The nibble classes that are [`NON_HEX`].
const N_NON_HEX: u8 = N_G_TO_O | N_P_TO_Z | N_PLUS_SLASH | N_SPACE | N_UNDERSCORE;

/// Nibble classes by the high nibble of a byte (0 from 8 up: no ASCII).
const BY_HIGH: [u8; 16] = {
    let mut t = [0u8; 16];
    t[2] = N_PLUS_SLASH | N_SPACE | N_DASH;
    t[3] = N_DIGIT;
    t[4] = N_HEX_LETTER | N_G_TO_O;
    t[5] = N_P_TO_Z | N_UNDERSCORE;
    t[6] = N_HEX_LETTER | N_G_TO_O;
    t[7] = N_P_TO_Z;
    t
};

/// Nibble classes by the low nibble of a byte.
const BY_LOW: [u8; 16] = {
    let mut t = [0u8; 16];
    let mut lo = 0;
    while lo < 16 {
        let mut c = 0;
        if lo <= 9 {
            c |= N_DIGIT;
        }
        if lo >= 1 && lo <= 6 {
            c |= N_HEX_LETTER;
        }
        if lo >= 7 {
            c |= N_G_TO_O;
        }
        if lo <= 10 {
            c |= N_P_TO_Z;
        }
        if lo == 0xb || lo == 0xf {
            c |= N_PLUS_SLASH;
        }
        if lo == 0 {
            c |= N_SPACE;
        }
        if lo == 0xd {
            c |= N_DASH;
        }
        if lo == 0xf {
            c |= N_UNDERSCORE;
        }
        t[lo] = c;
        lo += 1;
    }
    t
};

/// [`CLASS`] bits from the union of nibble classes (letters' case aside).
const FROM_NIBBLES: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut n = 0;
    while n < 256 {
        let has = n as u8;
        let mut c = 0;
        if has & N_DIGIT != 0 {
            c |= DIGIT;
        }
        if has & N_NON_HEX != 0 {
            c |= NON_HEX;
        }
        if has & (N_PLUS_SLASH | N_SPACE) != 0 {
            c |= STD_SYM;
        }
        if has & (N_DASH | N_UNDERSCORE) != 0 {
            c |= URL_SYM;
        }
        if has & N_SPACE != 0 {
            c |= SPACE;
        }
        t[n] = c;
        n += 1;
    }
    t
};

/// [`classes_with_non_hex`] 16 bytes per step.
///
/// # Safety
/// The CPU must have SSSE3, and `body` must be at least 8 bytes long.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "ssse3")]
unsafe fn classes_ssse3(body: &[u8]) -> Option<u8> {
    use std::arch::x86_64::{
        __m128i, _mm_and_si128, _mm_andnot_si128, _mm_cmpeq_epi8, _mm_cvtsi128_si32,
        _mm_loadl_epi64, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8,
        _mm_setzero_si128, _mm_shuffle_epi8, _mm_slli_epi16, _mm_srli_epi16, _mm_srli_si128,
        _mm_unpacklo_epi64,
    };
    let n = body.len();
    let p = body.as_ptr();
    // SAFETY (of the block): SSSE3 is present (the caller's contract); every load
    // reads inside `body`: 16-byte loads at offsets `i` with `i + 16 <= n` and at
    // `n - 16` when `n >= 16`, 8-byte loads at 0 and `n - 8` when `8 <= n < 16`.
    // Reading a byte twice (the overlapping last load) does not change a union.
    unsafe {
        let by_high = _mm_loadu_si128(BY_HIGH.as_ptr().cast());
        let by_low = _mm_loadu_si128(BY_LOW.as_ptr().cast());
        let nibble = _mm_set1_epi8(0x0f);
        let letters = _mm_set1_epi8(N_LETTER as i8);
        let zero = _mm_setzero_si128();
        let ones = _mm_cmpeq_epi8(zero, zero);
        // The union of the nibble classes; bit 0x20 set where a letter had it
        // (lower case) and where a letter had it clear (upper case).
        let mut seen = zero;
        let mut lower = zero;
        let mut upper = zero;
        // Adds the bytes of `v` to the unions; `false` when one has no class.
        let mut add = |v: __m128i| -> bool {
            let hi = _mm_and_si128(_mm_srli_epi16::<4>(v), nibble);
            let lo = _mm_and_si128(v, nibble);
            let c = _mm_and_si128(_mm_shuffle_epi8(by_high, hi), _mm_shuffle_epi8(by_low, lo));
            seen = _mm_or_si128(seen, c);
            let not_letter = _mm_cmpeq_epi8(_mm_and_si128(c, letters), zero);
            let letter = _mm_andnot_si128(not_letter, ones);
            lower = _mm_or_si128(lower, _mm_and_si128(letter, v));
            upper = _mm_or_si128(upper, _mm_andnot_si128(v, letter));
            _mm_movemask_epi8(_mm_cmpeq_epi8(c, zero)) == 0
        };
        if n >= 16 {
            let mut i = 0;
            while i + 16 <= n {
                if !add(_mm_loadu_si128(p.add(i).cast())) {
                    return None;
                }
                i += 16;
            }
            if i < n && !add(_mm_loadu_si128(p.add(n - 16).cast())) {
                return None;
            }
        } else {
            let first = _mm_loadl_epi64(p.cast());
            let last = _mm_loadl_epi64(p.add(n - 8).cast());
            if !add(_mm_unpacklo_epi64(first, last)) {
                return None;
            }
        }
        // Only hex digits (and dashes): rejected without folding the union.
        let non_hex = _mm_set1_epi8(N_NON_HEX as i8);
        if _mm_movemask_epi8(_mm_cmpeq_epi8(_mm_and_si128(seen, non_hex), zero)) == 0xffff {
            return None;
        }
        // Bit 0x20 of each byte moved to its top bit (the 16-bit shift carries
        // across bytes only into bits below the top).
        let any_0x20 = |x: __m128i| _mm_movemask_epi8(_mm_slli_epi16::<2>(x)) != 0;
        let mut folded = _mm_or_si128(seen, _mm_srli_si128::<8>(seen));
        folded = _mm_or_si128(folded, _mm_srli_si128::<4>(folded));
        folded = _mm_or_si128(folded, _mm_srli_si128::<2>(folded));
        folded = _mm_or_si128(folded, _mm_srli_si128::<1>(folded));
        let nibbles = _mm_cvtsi128_si32(folded) as u8;
        let mut class = FROM_NIBBLES[usize::from(nibbles)];
        if any_0x20(lower) {
            class |= LOWER;
        }
        if any_0x20(upper) {
            class |= UPPER;
        }
        Some(class)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3000))]

        /// The vector version against the byte loop, on base64-alphabet strings
        /// with the odd other byte (at every position, so in every lane and in the
        /// overlapping last load) and on arbitrary bytes.
        #[test]
        fn classes_agree_with_the_byte_loop(
            body in proptest::prop_oneof![
                "[A-Za-z0-9+/_ -]{0,70}".prop_map(String::into_bytes),
                "[a-f0-9-]{0,70}".prop_map(String::into_bytes),
                (
                    "[A-Za-z0-9+/_ -]{1,70}".prop_map(String::into_bytes),
                    proptest::prelude::any::<proptest::sample::Index>(),
                    proptest::prelude::any::<u8>(),
                ).prop_map(|(mut s, at, b)| {
                    let at = at.index(s.len());
                    s[at] = b;
                    s
                }),
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..70),
            ],
        ) {
            proptest::prop_assert_eq!(
                classes_with_non_hex(&body),
                classes_bytewise(&body).filter(|&seen| seen & NON_HEX != 0)
            );
        }
    }

    /// Every byte value alone, in each lane of a 16-byte step and of the 8-byte
    /// pair, among base64 characters of every class and among hex ones.
    #[test]
    fn each_byte_in_each_lane() {
        // The second filler is all hex (and dashes): rejected unless `b` is not.
        for (filler, len) in [b"aZ0+-_ 9", b"0a-F9e1B"]
            .into_iter()
            .flat_map(|f| [8, 13, 16, 21, 32].map(|len| (f, len)))
        {
            for at in 0..len {
                for b in 0..=255u8 {
                    let mut s: Vec<u8> = filler.iter().cycle().take(len).copied().collect();
                    s[at] = b;
                    let model = classes_bytewise(&s).filter(|&seen| seen & NON_HEX != 0);
                    assert_eq!(classes_with_non_hex(&s), model, "{s:?}");
                }
            }
        }
    }
}
