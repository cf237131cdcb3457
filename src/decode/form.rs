//! Percent-decoding and the `name=value` syntaxes: URL query strings,
//! `application/x-www-form-urlencoded` bodies, and `Cookie` headers.
//!
//! Values come back as `Cow`: borrowed from the message when nothing needed decoding.

use std::borrow::Cow;

#[cfg(target_arch = "x86_64")]
mod percent_avx2;
#[cfg(target_arch = "x86_64")]
mod percent_ssse3;

/// Percent-decodes `s`; with `plus_is_space`, `+` becomes a space (query and form
/// syntax). Invalid escapes are kept as they are. Borrows when there is nothing to do.
pub fn percent_decode(s: &[u8], plus_is_space: bool) -> Cow<'_, [u8]> {
    let needs = if plus_is_space {
        memchr::memchr2(b'%', b'+', s).is_some()
    } else {
        memchr::memchr(b'%', s).is_some()
    };
    if !needs {
        return Cow::Borrowed(s);
    }
    // Form bodies carry whole percent-encoded JSON documents (an escape every few
    // bytes): escapes take a table lookup per digit; from a plain byte on, eight bytes
    // are copied at once and the output advanced past the plain ones among them (the
    // rest is overwritten next). The output is never longer than the input, so it is
    // written into a buffer of that size: no capacity check per byte, no memmove call
    // per run.
    let mut out = vec![0u8; s.len()];
    let mut n = 0;
    let mut i = 0;
    // Whole 32-byte windows with AVX2, then 16-byte ones with SSSE3; the byte loop
    // below does the rest.
    #[cfg(target_arch = "x86_64")]
    if s.len() >= 32
        && std::arch::is_x86_feature_detected!("avx2")
        && std::arch::is_x86_feature_detected!("popcnt")
    {
        // SAFETY: AVX2 and POPCNT are present (checked just above), `out` is as long
        // as `s`, and `n == i == 0`.
        unsafe { percent_avx2::decode_windows(s, &mut out, &mut i, &mut n, plus_is_space) };
    }
    #[cfg(target_arch = "x86_64")]
    if s.len().saturating_sub(i) >= 16
        && std::arch::is_x86_feature_detected!("ssse3")
        && std::arch::is_x86_feature_detected!("popcnt")
    {
        // SAFETY: SSSE3 and POPCNT are present (checked just above), `out` is as long
        // as `s`, and `n <= i` (the AVX2 windows keep it so).
        unsafe { percent_ssse3::decode_windows(s, &mut out, &mut i, &mut n, plus_is_space) };
    }
    while let Some(&b) = s.get(i) {
        if b == b'%' {
            let h = s.get(i + 1).map_or(NOT_HEX, |&c| HEX_VALUE[usize::from(c)]);
            let l = s.get(i + 2).map_or(NOT_HEX, |&c| HEX_VALUE[usize::from(c)]);
            // Both are hex digits (< 16) exactly when neither is NOT_HEX.
            if h | l < 16 {
                out[n] = h << 4 | l;
                i += 3;
            } else {
                out[n] = b'%';
                i += 1;
            }
            n += 1;
            continue;
        }
        if b == b'+' && plus_is_space {
            out[n] = b' ';
            n += 1;
            i += 1;
            continue;
        }
        // Invariant: n <= i (the output never outgrows the input), so n + 8 <=
        // i + 8 <= s.len() = out.len() whenever the input has eight more bytes.
        match (s.get(i..i + 8), out.get_mut(n..n + 8)) {
            (Some(chunk), Some(dst)) => {
                let mut w = [0u8; 8];
                w.copy_from_slice(chunk);
                let w = u64::from_le_bytes(w);
                let mut special = zero_bytes(w ^ PERCENTS);
                if plus_is_space {
                    special |= zero_bytes(w ^ PLUSES);
                }
                dst.copy_from_slice(chunk);
                // The lowest flagged byte is exact (see `zero_bytes`); byte 0 is plain,
                // so at least one byte is taken.
                let plain = (special.trailing_zeros() / 8) as usize;
                n += plain;
                i += plain;
            }
            _ => {
                out[n] = b;
                n += 1;
                i += 1;
            }
        }
    }
    out.truncate(n);
    Cow::Owned(out)
}

const PERCENTS: u64 = u64::from_ne_bytes([b'%'; 8]);
const PLUSES: u64 = u64::from_ne_bytes([b'+'; 8]);

/// The high bit of each zero byte of `v` (a byte above a zero byte may be flagged
/// too, by the borrow, but the lowest flag is always a true zero byte).
#[inline(always)]
fn zero_bytes(v: u64) -> u64 {
    v.wrapping_sub(0x0101_0101_0101_0101) & !v & 0x8080_8080_8080_8080
}

/// Marks a byte that is no hex digit in [`HEX_VALUE`].
const NOT_HEX: u8 = 0xff;

/// The value of each hex digit byte, [`NOT_HEX`] for other bytes.
const HEX_VALUE: [u8; 256] = {
    let mut t = [NOT_HEX; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = match b as u8 {
            c @ b'0'..=b'9' => c - b'0',
            c @ b'a'..=b'f' => c - b'a' + 10,
            c @ b'A'..=b'F' => c - b'A' + 10,
            _ => NOT_HEX,
        };
        b += 1;
    }
    t
};

fn hex(b: Option<&u8>) -> Option<u8> {
    match *b? {
        b @ b'0'..=b'9' => Some(b - b'0'),
        b @ b'a'..=b'f' => Some(b - b'a' + 10),
        b @ b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

/// Whether `s` contains a valid `%XX` escape.
pub fn has_percent_escape(s: &[u8]) -> bool {
    s.windows(3)
        .any(|w| w[0] == b'%' && hex(Some(&w[1])).is_some() && hex(Some(&w[2])).is_some())
}

/// One `name=value` pair, both still encoded, as slices of the input.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pair<'a> {
    pub name: &'a [u8],
    /// `None` for a bare name without `=`.
    pub value: Option<&'a [u8]>,
}

/// Splits a query string or form body on `&` into pairs; empty pieces are skipped.
pub fn pairs(s: &[u8]) -> impl Iterator<Item = Pair<'_>> {
    Pieces { rest: s, sep: b'&' }
        .filter(|p| !p.is_empty())
        .map(pair)
}

/// One piece between `&`s as a pair: split at its first `=`, if any.
fn pair(piece: &[u8]) -> Pair<'_> {
    match memchr::memchr(b'=', piece) {
        Some(eq) => Pair {
            name: &piece[..eq],
            value: Some(&piece[eq + 1..]),
        },
        None => Pair {
            name: piece,
            value: None,
        },
    }
}

/// The pieces of a text between `sep` bytes, empty ones included, except that an
/// empty text has none (the callers skip empty pieces anyway). The separator is
/// found with `memchr`: a form body's last field is often a whole percent-encoded
/// JSON document of kilobytes, which `slice::split` read a byte at a time.
struct Pieces<'a> {
    rest: &'a [u8],
    sep: u8,
}

impl<'a> Iterator for Pieces<'a> {
    type Item = &'a [u8];

    fn next(&mut self) -> Option<&'a [u8]> {
        if self.rest.is_empty() {
            return None;
        }
        match memchr::memchr(self.sep, self.rest) {
            Some(at) => {
                let (piece, after) = self.rest.split_at(at);
                // A separator at the very end leaves an empty last piece: it would be
                // skipped, so it is not made.
                self.rest = after.get(1..).unwrap_or_default();
                Some(piece)
            }
            None => Some(std::mem::take(&mut self.rest)),
        }
    }
}

/// Splits a `Cookie` header value (`a=1; b=2`) into pairs, names and values trimmed.
pub fn cookies(s: &[u8]) -> impl Iterator<Item = Pair<'_>> {
    s.split(|&b| b == b';')
        .map(|p| p.trim_ascii())
        .filter(|p| !p.is_empty())
        .map(|p| match memchr::memchr(b'=', p) {
            Some(eq) => Pair {
                name: p[..eq].trim_ascii(),
                value: Some(strip_quotes(p[eq + 1..].trim_ascii())),
            },
            None => Pair {
                name: p,
                value: None,
            },
        })
}

fn strip_quotes(v: &[u8]) -> &[u8] {
    if v.len() >= 2 && v[0] == b'"' && v[v.len() - 1] == b'"' {
        &v[1..v.len() - 1]
    } else {
        v
    }
}

/// Whether `s` reads like a form string `a=b&c=d`: a non-empty field name of name-ish
/// characters before the first `=`, and no whitespace or control bytes anywhere.
pub fn looks_like_form(s: &[u8]) -> bool {
    let Some(eq) = memchr::memchr(b'=', s) else {
        return false;
    };
    let name = &s[..eq];
    // `QUJD=`, `eyJ9==`: base64 padding, not a field.
    let value_starts = !matches!(s.get(eq + 1), None | Some(b'=') | Some(b'&'));
    value_starts
        && !name.is_empty()
        && name.len() <= 256
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || b"_-.%[]+*~".contains(&b))
        && s.iter().all(|&b| b > b' ' && b != 0x7f)
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::strategy::Strategy as _;

    #[test]
    fn percent() {
        assert!(matches!(
            percent_decode(b"abc", true),
            Cow::Borrowed(b"abc")
        ));
        assert_eq!(&*percent_decode(b"a%40b+c", true), b"a@b c");
        assert_eq!(&*percent_decode(b"a%40b+c", false), b"a@b+c");
        assert_eq!(&*percent_decode(b"%zz%4", true), b"%zz%4");
        assert_eq!(&*percent_decode(b"%", true), b"%");
        assert_eq!(&*percent_decode(b"%E5%BC%A0", false), "张".as_bytes());
        assert_eq!(&*percent_decode(b"x%2", false), b"x%2");
        assert_eq!(&*percent_decode(b"x%20", false), b"x ");
        assert!(has_percent_escape(b"a%2Fb"));
        assert!(!has_percent_escape(b"100%"));
    }

    /// The byte-at-a-time decoder that [`percent_decode`] must equal.
    fn naive_percent_decode(s: &[u8], plus_is_space: bool) -> Vec<u8> {
        let mut out = Vec::new();
        let mut i = 0;
        while i < s.len() {
            let b = s[i];
            if b == b'%' {
                if let (Some(h), Some(l)) = (hex(s.get(i + 1)), hex(s.get(i + 2))) {
                    out.push(h << 4 | l);
                    i += 3;
                    continue;
                }
            }
            out.push(if b == b'+' && plus_is_space { b' ' } else { b });
            i += 1;
        }
        out
    }

    /// `percent_decode` gives what the byte-at-a-time model gives.
    fn agrees_with_naive_model(
        s: &[u8],
        plus: bool,
    ) -> Result<(), proptest::test_runner::TestCaseError> {
        proptest::prop_assert_eq!(
            percent_decode(s, plus).into_owned(),
            naive_percent_decode(s, plus)
        );
        Ok(())
    }

    proptest::proptest! {
        #[test]
        fn percent_decode_equals_naive_model(
            s in proptest::collection::vec(
                proptest::sample::select(b"%+aF0z9 \x00\xff".to_vec()), 0..64),
            plus in proptest::bool::ANY,
        ) {
            agrees_with_naive_model(&s, plus)?;
        }

        /// Long inputs with escapes every few bytes (the eight-byte steps), and some
        /// invalid or cut ones.
        #[test]
        fn percent_decode_long_equals_naive_model(
            s in proptest::collection::vec(
                proptest::sample::select(b"%%%+2B7aF0xyzAbcdef-._".to_vec()), 0..300),
            plus in proptest::bool::ANY,
        ) {
            agrees_with_naive_model(&s, plus)?;
        }
    }

    proptest::proptest! {
        /// Any bytes at all (non-UTF-8, controls), with `%` and `+` made common.
        #[test]
        fn percent_decode_any_bytes_equals_naive_model(
            s in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::num::u8::ANY,
                    proptest::sample::select(b"%+".to_vec())
                ],
                0..200),
            plus in proptest::bool::ANY,
        ) {
            agrees_with_naive_model(&s, plus)?;
        }

        /// Escapes, cut escapes and runs of plain bytes of every length across the
        /// eight-byte words, ending anywhere (a `%` or half an escape last).
        #[test]
        fn percent_decode_escape_runs_equal_naive_model(
            pieces in proptest::collection::vec(
                proptest::prop_oneof![
                    proptest::sample::select(vec![
                        &b"%7B"[..], b"%22", b"%3a", b"%", b"%2", b"%g1", b"%%", b"+", b"%+"
                    ]).prop_map(<[u8]>::to_vec),
                    proptest::collection::vec(proptest::sample::select(b"ab9Z-._".to_vec()), 0..12),
                ],
                0..40),
            plus in proptest::bool::ANY,
        ) {
            let s = pieces.concat();
            agrees_with_naive_model(&s, plus)?;
        }
    }

    /// Texts for the window tests: a plain prefix shorter than `window` bytes, then
    /// up to `max_pieces` escapes, cut escapes, `%%`, `+` and plain runs, so every
    /// piece lands at every offset of a window and the text ends anywhere.
    fn windowed_text(
        window: usize,
        max_pieces: usize,
    ) -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        use proptest::strategy::Strategy;
        let piece = proptest::sample::select(vec![
            &b"%7B"[..],
            b"%22",
            b"%3a",
            b"%Ff",
            b"%",
            b"%2",
            b"%g1",
            b"%%41",
            b"+",
            b"%+",
            b"%2%41",
            b"x",
            b"yz",
            b"0123456789abcdef",
        ]);
        (0..window, proptest::collection::vec(piece, 0..max_pieces)).prop_map(|(prefix, pieces)| {
            let mut s = vec![b'.'; prefix];
            s.extend(pieces.concat());
            s
        })
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// The 16-byte windows: a plain prefix of any length puts every escape, cut
        /// escape, `%%` and `+` at every offset of a window, its last two bytes
        /// included, and the text ends anywhere in the next one.
        #[test]
        fn percent_decode_windows_equal_naive_model(
            s in windowed_text(16, 24),
            plus in proptest::bool::ANY,
        ) {
            agrees_with_naive_model(&s, plus)?;
        }
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2000))]

        /// The 32-byte AVX2 windows as above: every piece at every offset of a
        /// window (the lane boundary at 16 and the last two bytes included), the
        /// text ending in the AVX2 windows, the 16-byte ones or the byte loop.
        #[test]
        fn percent_decode_wide_windows_equal_naive_model(
            s in windowed_text(32, 40),
            plus in proptest::bool::ANY,
        ) {
            agrees_with_naive_model(&s, plus)?;
        }
    }

    /// The tests above hold the vector paths to the model only where they run.
    #[cfg(target_arch = "x86_64")]
    #[test]
    fn the_vector_path_runs_here() {
        assert!(std::arch::is_x86_feature_detected!("avx2"));
        assert!(std::arch::is_x86_feature_detected!("ssse3"));
        assert!(std::arch::is_x86_feature_detected!("popcnt"));
    }

    /// The pairs as `pairs` found them with `slice::split`, before `Pieces`.
    fn split_pairs(s: &[u8]) -> Vec<Pair<'_>> {
        s.split(|&b| b == b'&')
            .filter(|p| !p.is_empty())
            .map(pair)
            .collect()
    }

    proptest::proptest! {
        /// Separators anywhere: leading, trailing, doubled, alone.
        #[test]
        fn pairs_equal_split_model(
            s in proptest::collection::vec(proptest::sample::select(b"&&=ab%".to_vec()), 0..80)
        ) {
            proptest::prop_assert_eq!(pairs(&s).collect::<Vec<_>>(), split_pairs(&s));
        }

        #[test]
        fn pieces_are_split_without_empty_ones(
            s in proptest::collection::vec(proptest::sample::select(b";;xy".to_vec()), 0..40)
        ) {
            let got: Vec<&[u8]> = Pieces { rest: &s, sep: b';' }.filter(|p| !p.is_empty()).collect();
            let want: Vec<&[u8]> = s.split(|&b| b == b';').filter(|p| !p.is_empty()).collect();
            proptest::prop_assert_eq!(got, want);
        }
    }

    #[test]
    fn query_pairs() {
        let p: Vec<_> = pairs(b"a=1&&b=&c&d=x=y").collect();
        assert_eq!(
            p,
            vec![
                Pair {
                    name: b"a",
                    value: Some(b"1")
                },
                Pair {
                    name: b"b",
                    value: Some(b"")
                },
                Pair {
                    name: b"c",
                    value: None
                },
                Pair {
                    name: b"d",
                    value: Some(b"x=y")
                },
            ]
        );
    }

    #[test]
    fn cookie_pairs() {
        let p: Vec<_> = cookies(b" sid=abc ; uid=\"q%40x\";flag; =v ;").collect();
        assert_eq!(
            p,
            vec![
                Pair {
                    name: b"sid",
                    value: Some(b"abc")
                },
                Pair {
                    name: b"uid",
                    value: Some(b"q%40x")
                },
                Pair {
                    name: b"flag",
                    value: None
                },
                Pair {
                    name: b"",
                    value: Some(b"v")
                },
            ]
        );
    }

    #[test]
    fn form_sniffing() {
        assert!(looks_like_form(b"a=b&c=d"));
        assert!(looks_like_form(b"imei=490154203237518"));
        assert!(!looks_like_form(b"hello world=1"));
        assert!(!looks_like_form(b"{\"a\":\"b=c\"}"));
        assert!(!looks_like_form(b"=abc"));
        assert!(!looks_like_form(b"no equals"));
        assert!(!looks_like_form(b"eyJhIjoxfQ=="));
        assert!(!looks_like_form(b"QUJDREVGR0g="));
    }
}
