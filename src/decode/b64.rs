//! Recognising base64 blobs inside field values (DESIGN.md §2: "base64 blobs in
//! parameters").
//!
//! A value is decoded only when it could be base64 and what comes out is worth
//! searching. The heuristic, in order:
//! 1. at least [`MIN_LEN`] characters, all from one alphabet (standard `+/` or URL-safe
//!    `-_`), `=` padding only at the end, a length that base64 can have;
//! 2. not a plain hex string, UUID or number (ids that merely fit the alphabet);
//! 3. a digit, a symbol, padding or both letter cases (ordinary lowercase words fail);
//! 4. the decoded bytes are text (UTF-8 without control characters), mostly printable
//!    ASCII (≥ 80 %: binary formats such as protobuf with string fields), or start
//!    with a gzip or zstd magic number. Random bytes are printable ASCII only 37 % of
//!    the time, so words that happen to decode give garbage and are rejected; zlib's
//!    two-byte header is too weak a sign and is left to the caller (who keeps the
//!    result only if it inflates).

use base64::alphabet;
use base64::engine::general_purpose::{GeneralPurpose, GeneralPurposeConfig};
use base64::engine::DecodePaddingMode;
use base64::Engine;

use super::content;

mod classes;
#[cfg(target_arch = "x86_64")]
mod short_ssse3;

/// Shortest value considered (9 decoded bytes).
pub const MIN_LEN: usize = 12;

const LENIENT: GeneralPurposeConfig = GeneralPurposeConfig::new()
    .with_decode_padding_mode(DecodePaddingMode::Indifferent)
    .with_decode_allow_trailing_bits(true);
const STANDARD: GeneralPurpose = GeneralPurpose::new(&alphabet::STANDARD, LENIENT);
const URL_SAFE: GeneralPurpose = GeneralPurpose::new(&alphabet::URL_SAFE, LENIENT);

// Character classes of the base64 alphabets (0: not base64).
const STD_SYM: u8 = 1; // `+`, `/`, or a space that was a `+` before query decoding
const URL_SYM: u8 = 2; // `-`, `_`
const DIGIT: u8 = 4;
const UPPER: u8 = 8;
const LOWER: u8 = 16;
/// Not a hex digit (nor `-`, as in UUIDs): rules out hex ids that fit the alphabet.
const NON_HEX: u8 = 32;
/// A space (a `+` before query decoding).
const SPACE: u8 = 64;

const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = match c {
            b'+' | b'/' => STD_SYM | NON_HEX,
            b' ' => STD_SYM | NON_HEX | SPACE,
            b'-' => URL_SYM,
            b'_' => URL_SYM | NON_HEX,
            b'0'..=b'9' => DIGIT,
            b'A'..=b'F' => UPPER,
            b'G'..=b'Z' => UPPER | NON_HEX,
            b'a'..=b'f' => LOWER,
            b'g'..=b'z' => LOWER | NON_HEX,
            _ => 0,
        };
        b += 1;
    }
    t
};

/// What the decoded bytes of a blob look like.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Content {
    Text,
    MostlyText,
    /// Starts with a compression magic number (or a zlib header: check it inflates).
    Compressed,
}

/// A cheap pre-check: whether `s` could be base64 (or a JWT) at all.
pub fn candidate(s: &[u8]) -> bool {
    s.len() >= MIN_LEN && all_candidate(s)
}

/// Whether every byte of `s` is a [`CANDIDATE`]. Out of line, and one branch per
/// eight bytes: it runs on every long JSON string, inside the JSON walk whose
/// registers it would otherwise spill.
#[inline(never)]
fn all_candidate(s: &[u8]) -> bool {
    let mut chunks = s.chunks_exact(8);
    for chunk in &mut chunks {
        let mut ok = true;
        for &b in chunk {
            ok &= CANDIDATE[usize::from(b)];
        }
        if !ok {
            return false;
        }
    }
    chunks
        .remainder()
        .iter()
        .all(|&b| CANDIDATE[usize::from(b)])
}

/// The bytes [`candidate`] accepts: the base64 alphabets (the class table), padding,
/// and JWT dots.
const CANDIDATE: [bool; 256] = {
    let mut t = [false; 256];
    let mut b = 0;
    while b < 256 {
        t[b] = CLASS[b] != 0 || b == b'=' as usize || b == b'.' as usize;
        b += 1;
    }
    t
};

/// What [`screen`] learnt about a value that passed it, for [`decode_screened`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Screened {
    /// Characters before the `=` padding.
    body_len: usize,
    /// The union of the [`CLASS`]es of those characters.
    seen: u8,
}

/// The checks of [`decode`] that need no decoding (heuristic steps 1–3 of the module
/// doc): `None` means [`decode`] returns `None` for `s` without decoding anything.
/// Inlined: the JSON walk's string filter (`decode::want_string`) calls it for every
/// long string, and a call of its own cost a prologue and an epilogue each time.
#[inline(always)]
pub fn screen(s: &[u8]) -> Option<Screened> {
    if s.len() < MIN_LEN {
        return None;
    }
    let body_len = s.len() - s.iter().rev().take_while(|&&b| b == b'=').count();
    let body = &s[..body_len];
    let padding = s.len() - body_len;
    if padding > 2 || (padding > 0 && !s.len().is_multiple_of(4)) || body_len % 4 == 1 {
        return None;
    }
    // This runs on every long JSON string of every request (inside the JSON walk),
    // most of which are rejected here.
    let seen = classes::classes_with_non_hex(body)?;
    let has = |flag: u8| seen & flag != 0;
    let (std_sym, url_sym) = (has(STD_SYM), has(URL_SYM));
    if std_sym && url_sym {
        return None;
    }
    if !(has(DIGIT) || std_sym || url_sym || padding > 0 || (has(UPPER) && has(LOWER))) {
        return None;
    }
    Some(Screened { body_len, seen })
}

/// Whether [`decode`] would decode `s` at all (and judge what comes out): `false`
/// means it certainly returns `None`. Cheap: one table lookup per character.
pub fn worth_decoding(s: &[u8]) -> bool {
    screen(s).is_some()
}

/// Decodes `s` if it looks like base64 of something worth searching.
pub fn decode(s: &[u8]) -> Option<(Vec<u8>, Content)> {
    decode_screened(s, screen(s)?)
}

/// [`decode`] of `s` whose [`screen`] gave `screened` (`screened` must come from
/// `screen(s)`: the same string), without screening it again.
pub fn decode_screened(s: &[u8], screened: Screened) -> Option<(Vec<u8>, Content)> {
    let Screened { body_len, seen } = screened;
    let body = &s[..body_len];
    let has = |flag: u8| seen & flag != 0;
    let url_sym = has(URL_SYM);
    let engine = if url_sym { &URL_SAFE } else { &STANDARD };
    // Most candidates are random tokens. A short one is decoded and judged on the
    // stack, a long one by its first 48 bytes: rejections never allocate.
    let spaced = has(SPACE);
    let mut buf = [0u8; PREFIX_CHARS / 4 * 3];
    if !spaced && body.len() <= PREFIX_CHARS {
        // Every character is in the engine's alphabet (the class check above, no
        // spaces, not both symbol pairs), so this decoding cannot fail; `None` is
        // `classify`'s rejection, known before the end.
        #[cfg(target_arch = "x86_64")]
        if std::arch::is_x86_feature_detected!("ssse3")
            && std::arch::is_x86_feature_detected!("popcnt")
        {
            let mut wide = [0u8; short_ssse3::MAX_CHARS];
            // SAFETY: SSSE3 and POPCNT are present (checked just above).
            let n = unsafe { short_ssse3::decode_judged(body, url_sym, &mut wide) }?;
            let decoded = wide.get(..n)?;
            let kind = classify(decoded)?;
            return Some((decoded.to_vec(), kind));
        }
        let n = decode_short_judged(body, url_sym, &mut buf)?;
        let kind = classify(&buf[..n])?;
        return Some((buf[..n].to_vec(), kind));
    }
    let prefix = &body[..PREFIX_CHARS.min(body.len()) / 4 * 4];
    if !spaced {
        match engine.decode_slice(prefix, &mut buf) {
            Ok(n) if plausible_prefix(&buf[..n]) => {}
            _ => return None,
        }
    }
    let out = if spaced {
        let fixed: Vec<u8> = body
            .iter()
            .map(|&b| if b == b' ' { b'+' } else { b })
            .collect();
        engine.decode(fixed).ok()?
    } else {
        engine.decode(body).ok()?
    };
    let kind = classify(&out)?;
    // Spaces (read as `+`) also occur in plain text such as `Signal Catcher`: then
    // only clean text or compressed data will do.
    if spaced && (kind == Content::MostlyText || s.len() < 16) {
        return None;
    }
    Some((out, kind))
}

/// Decodes `body` (unpadded, at most [`PREFIX_CHARS`] characters, all of the standard
/// alphabet or all of the URL-safe one, length not 1 mod 4) into `out`, as the lenient
/// engines do (trailing bits ignored); returns the decoded length. A table-driven
/// loop: the `base64` crate's general decoder was most of the cost for the short
/// random tokens that app traffic is full of. The model of [`decode_short_judged`].
#[cfg(test)]
fn decode_short(body: &[u8], url_safe: bool, out: &mut [u8; PREFIX_CHARS / 4 * 3]) -> usize {
    let table = if url_safe { &URL_VALUE } else { &STD_VALUE };
    let mut n = 0;
    for quad in body.chunks(4) {
        let mut acc = 0u32;
        for &c in quad {
            acc = acc << 6 | u32::from(table[usize::from(c)]);
        }
        // 4 characters give 3 bytes, 3 give 2, 2 give 1 (1 cannot occur). All 3 are
        // written: the buffer holds 3 per group, and the extra bytes of a short last
        // group lie past the returned length.
        acc <<= 6 * (4 - quad.len() as u32);
        let [_, a, b, c] = acc.to_be_bytes();
        if let Some(dst) = out.get_mut(n..n + 3) {
            dst.copy_from_slice(&[a, b, c]);
        }
        n += quad.len().saturating_sub(1);
    }
    n
}

/// Decodes `body` (unpadded, at most [`PREFIX_CHARS`] characters, all of the standard
/// alphabet or all of the URL-safe one, length not 1 mod 4) into `out`, as the lenient
/// engines do (trailing bits ignored), and returns the decoded length — or gives up
/// (`None`) as soon as the bytes decoded so far show that [`classify`] rejects the
/// whole: no compression magic number, an ASCII control character (so no clean text,
/// UTF-8 or not), and more non-printable bytes than [`Content::MostlyText`] allows in
/// the whole decoded length. Random tokens, most of what reaches here, are settled
/// after two or three groups instead of being decoded and judged whole (bench520:
/// 110 593 tokens decoded, 231 kept). A table-driven loop: the `base64` crate's
/// general decoder was most of the cost for such tokens. The tests hold it to the
/// plain table decoder (`decode_short`) and to `classify`.
fn decode_short_judged(
    body: &[u8],
    url_safe: bool,
    out: &mut [u8; PREFIX_CHARS / 4 * 3],
) -> Option<usize> {
    let table = if url_safe { &URL_VALUE } else { &STD_VALUE };
    // Decoded length: 3 per full group, 2 for 3 characters left, 1 for 2.
    let total = body.len() / 4 * 3 + (body.len() % 4).saturating_sub(1);
    let mut n = 0;
    let mut nonprint = 0usize;
    let mut control = 0u8;
    let mut magic = true;
    let mut quads = body.chunks_exact(4);
    for quad in &mut quads {
        let acc = quad
            .iter()
            .fold(0u32, |acc, &c| acc << 6 | u32::from(table[usize::from(c)]));
        let [_, a, b, c] = acc.to_be_bytes();
        if let Some(dst) = out.get_mut(n..n + 3) {
            dst.copy_from_slice(&[a, b, c]);
        }
        n += 3;
        for x in [a, b, c] {
            let j = JUDGE[usize::from(x)];
            nonprint += usize::from(j & NONPRINT);
            control |= j;
        }
        if n == 6 {
            // The magic numbers are judged on at most the first 4 bytes.
            let head = &out[..6];
            magic = content::is_gzip(head) || content::is_zstd(head) || content::is_zlib(head);
        }
        // `n >= 6` once magic is known; MostlyText needs nonprint * 5 <= total.
        if n >= 6 && !magic && control & CONTROL != 0 && nonprint * 5 > total {
            return None;
        }
    }
    let rest = quads.remainder();
    if !rest.is_empty() {
        let mut acc = 0u32;
        for &c in rest {
            acc = acc << 6 | u32::from(table[usize::from(c)]);
        }
        acc <<= 6 * (4 - rest.len() as u32);
        let [_, a, b, c] = acc.to_be_bytes();
        if let Some(dst) = out.get_mut(n..n + 3) {
            dst.copy_from_slice(&[a, b, c]);
        }
        n += rest.len() - 1;
    }
    Some(n)
}

/// [`JUDGE`] flag: not printable ASCII (nor tab, newline, carriage return).
const NONPRINT: u8 = 1;
/// [`JUDGE`] flag: an ASCII control character other than tab, newline, carriage
/// return (never in clean text).
const CONTROL: u8 = 2;
/// How [`decode_short_judged`] counts each decoded byte.
const JUDGE: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let printable = (b >= 0x20 && b < 0x7f) || b == 9 || b == 10 || b == 13;
        t[b] = if printable {
            0
        } else if b < 0x80 {
            NONPRINT | CONTROL
        } else {
            NONPRINT
        };
        b += 1;
    }
    t
};

/// The 6-bit value of each character of an alphabet (0 for others: never looked up).
const fn values(alphabet: &[u8; 64]) -> [u8; 256] {
    let mut t = [0u8; 256];
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
}

const STD_VALUE: [u8; 256] =
    values(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
const URL_VALUE: [u8; 256] =
    values(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_");

/// Encoded characters judged before a blob is decoded whole (48 decoded bytes).
const PREFIX_CHARS: usize = 64;

/// Whether the start of a decoded blob could begin something [`classify`] accepts:
/// compressed data, text (a multi-byte character may be cut at the end), or at least
/// half printable bytes (a binary header before long text still passes; random bytes,
/// 37 % printable on average, fail 97 % of the time at 48 bytes).
fn plausible_prefix(d: &[u8]) -> bool {
    if content::is_gzip(d) || content::is_zstd(d) || content::is_zlib(d) {
        return true;
    }
    let (printable, high) = printable_ascii(d);
    if printable * 2 >= d.len() {
        return true;
    }
    // Not mostly printable: only text with multi-byte characters can still pass (a
    // character may be cut at the end). Without bytes ≥ 0x80 it holds ASCII controls.
    high && {
        let text = match std::str::from_utf8(d) {
            Ok(s) => Some(s),
            Err(e) if e.error_len().is_none() => std::str::from_utf8(&d[..e.valid_up_to()]).ok(),
            Err(_) => None,
        };
        text.is_some_and(clean_text)
    }
}

/// How many bytes of `d` are printable ASCII (tab, newline and carriage return
/// included), and whether any is ≥ 0x80. One branch-free pass: this judges every
/// base64-looking value of every request, and most are rejected on its counts.
fn printable_ascii(d: &[u8]) -> (usize, bool) {
    let mut printable = 0usize;
    let mut high = 0u8;
    #[cfg(target_arch = "x86_64")]
    let d = {
        // 16 bytes per SSE2 compare: a decoded token is judged here every time.
        let mut lanes = d.chunks_exact(16);
        for lane in &mut lanes {
            let (p, h) = printable16(lane);
            printable += p;
            high |= h;
        }
        lanes.remainder()
    };
    for &b in d {
        let visible = b.wrapping_sub(0x20) < 0x5f;
        let space = b == b'\t' || b == b'\n' || b == b'\r';
        printable += usize::from(visible | space);
        high |= b & 0x80;
    }
    (printable, high != 0)
}

/// [`printable_ascii`] of 16 bytes (`lane.len() == 16`): the count, and a nonzero
/// byte when any is ≥ 0x80.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn printable16(lane: &[u8]) -> (usize, u8) {
    debug_assert_eq!(lane.len(), 16);
    // SAFETY: SSE2 is part of the x86_64 baseline; the load reads the 16 bytes of
    // `lane`, which the caller's `chunks_exact(16)` makes 16 long (unaligned loads are
    // allowed).
    let v = unsafe { std::arch::x86_64::_mm_loadu_si128(lane.as_ptr().cast()) };
    let (printable, high) = printable_masks16(v);
    (printable.count_ones() as usize, u8::from(high != 0) << 7)
}

/// Bit masks over the 16 bytes of `v` (bit `i` for byte `i`): the bytes that
/// [`printable_ascii`] counts (printable ASCII, tab, newline, carriage return), and
/// the bytes ≥ 0x80. SSE2 only; the SSSE3 short decoder judges its output with it too.
#[cfg(target_arch = "x86_64")]
#[inline(always)]
fn printable_masks16(v: std::arch::x86_64::__m128i) -> (u32, u32) {
    use std::arch::x86_64::{
        _mm_cmpeq_epi8, _mm_min_epu8, _mm_movemask_epi8, _mm_or_si128, _mm_set1_epi8, _mm_sub_epi8,
    };
    // SAFETY: SSE2 register operations only, and SSE2 is part of the x86_64 baseline.
    unsafe {
        let set = |b: u8| _mm_set1_epi8(b as i8);
        // b - 0x20 (wrapping) ≤ 0x5e exactly for 0x20..=0x7e: min(x, 0x5e) == x.
        let x = _mm_sub_epi8(v, set(0x20));
        let visible = _mm_cmpeq_epi8(_mm_min_epu8(x, set(0x5e)), x);
        let space = _mm_or_si128(
            _mm_or_si128(_mm_cmpeq_epi8(v, set(b'\t')), _mm_cmpeq_epi8(v, set(b'\n'))),
            _mm_cmpeq_epi8(v, set(b'\r')),
        );
        let printable = _mm_movemask_epi8(_mm_or_si128(visible, space)) as u32;
        (printable, _mm_movemask_epi8(v) as u32)
    }
}

/// Text without control characters other than tab, newline and carriage return.
fn clean_text(s: &str) -> bool {
    s.chars()
        .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
}

/// How a byte counts in [`utf8_balanced`]: a lead byte +1 per continuation byte it
/// needs, a continuation byte −1, ASCII 0, a byte that never occurs in UTF-8 (`C0`,
/// `C1`, `F5`–`FF`) +64.
const UTF8_WEIGHT: [i8; 256] = {
    let mut t = [0i8; 256];
    let mut b = 0x80;
    while b < 256 {
        t[b] = match b {
            0x80..=0xBF => -1,
            0xC2..=0xDF => 1,
            0xE0..=0xEF => 2,
            0xF0..=0xF4 => 3,
            _ => 64,
        };
        b += 1;
    }
    t
};

/// A necessary condition for `d` to be UTF-8, in one branch-free pass: every lead
/// byte's continuation bytes are there, in number. `false` means `from_utf8` fails;
/// `true` decides nothing. Random bytes (a decoded token that is no base64 of text)
/// almost never balance, so they skip the validator's call and its setup.
fn utf8_balanced(d: &[u8]) -> bool {
    d.iter()
        .map(|&b| i64::from(UTF8_WEIGHT[usize::from(b)]))
        .sum::<i64>()
        == 0
}

fn classify(d: &[u8]) -> Option<Content> {
    if content::is_gzip(d) || content::is_zstd(d) || content::is_zlib(d) {
        return Some(Content::Compressed);
    }
    let (printable, high) = printable_ascii(d);
    // Printable ASCII (the usual decoded text) is text without a UTF-8 pass; without
    // bytes ≥ 0x80 anything else holds an ASCII control, so only UTF-8 can be text.
    if printable == d.len()
        || (high && utf8_balanced(d) && std::str::from_utf8(d).is_ok_and(clean_text))
    {
        return Some(Content::Text);
    }
    (printable * 5 >= d.len() * 4).then_some(Content::MostlyText)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose as gp;
    use proptest::strategy::Strategy;

    #[test]
    fn decodes_base64_of_text_in_all_forms() {
        let text = b"{\"imei\":\"490154203237518\"}";
        for enc in [
            gp::STANDARD.encode(text),
            gp::STANDARD_NO_PAD.encode(text),
            gp::URL_SAFE.encode(text),
            gp::URL_SAFE_NO_PAD.encode(text),
        ] {
            let (d, kind) = decode(enc.as_bytes()).unwrap_or_else(|| panic!("{enc}"));
            assert_eq!(d, text);
            assert_eq!(kind, Content::Text);
        }
        let url_only = gp::URL_SAFE_NO_PAD.encode(b"\xfb\xff?>>?email=tester@example.org");
        assert!(url_only.contains(['-', '_']));
        assert_eq!(decode(url_only.as_bytes()).unwrap().1, Content::MostlyText);
    }

    #[test]
    fn ordinary_words_and_ids_stay_undecoded() {
        for s in [
            "ApplicationName",
            "helloworldhello",
            "com_example_shop",
            "SomeLongIdentifierName",
            "0123456789abcdef0123",
            "9774d56d682e549c",
            "38400000-8cf0-11bd-b23e-10b96e40000d",
            "DEADBEEFCAFEBABE1234",
            "12345678901234567890",
            "490154203237518",
            "short",
            "Mozilla5.0Linux",
            "abc+def-ghijklmnop",
            "QUJDREVGR0hJSktM===",
            "hello world how are you",
            " QUJDREVGR0hJSktM",
            "Signal Catcher",
            "Some Thread Name 12",
        ] {
            assert_eq!(decode(s.as_bytes()), None, "{s}");
        }
    }

    #[test]
    fn candidates() {
        assert!(candidate(b"eyJhbGciOi.eyJzdWIi.sig"));
        assert!(candidate(b"QUJDREVGR0hJSktM"));
        assert!(!candidate(b"short"));
        assert!(!candidate(b"https://example.org/x"));
    }

    #[test]
    fn plus_turned_space_is_repaired() {
        let enc = gp::STANDARD.encode(b"{\"k\":\">>>? tester@example.org\"}");
        assert!(enc.contains('+'));
        let spaced = enc.replace('+', " ");
        assert!(decode(spaced.as_bytes()).is_some());
    }

    #[test]
    fn long_blobs_are_judged_by_their_start_then_whole() {
        use base64::engine::general_purpose::STANDARD as B64;
        // Chinese text: the 48-byte prefix cuts a character in two.
        let text =
            "用户设备标识符上报，广告标识 38400000-8cf0-11bd-b23e-10b96e40000d 与手机号一起发送";
        let (out, kind) = decode(B64.encode(text).as_bytes()).expect("text decodes");
        assert_eq!(out, text.as_bytes());
        assert_eq!(kind, Content::Text);
        // A binary header (half printable) before long text is still mostly text.
        let mut mixed: Vec<u8> = (0..24u8).flat_map(|i| [i, b'a' + i]).collect();
        mixed.extend(std::iter::repeat_n(b"imei=490154203237518;".as_slice(), 12).flatten());
        let (out, kind) = decode(B64.encode(&mixed).as_bytes()).expect("mostly text decodes");
        assert_eq!(out, mixed);
        assert_eq!(kind, Content::MostlyText);
        // Long random bytes are rejected from their start.
        let random: Vec<u8> = (0..200u32)
            .map(|i| (i.wrapping_mul(2_654_435_761) >> 13) as u8)
            .collect();
        assert!(decode(B64.encode(&random).as_bytes()).is_none());
    }

    #[test]
    fn random_binary_is_rejected() {
        let bin: Vec<u8> = (0..48u32).map(|i| (i * 97 + 13) as u8 ^ 0xa5).collect();
        assert_eq!(decode(gp::STANDARD.encode(&bin).as_bytes()), None);
    }

    #[test]
    fn compressed_payloads_are_kept() {
        let gz = content::tests::gzip(b"imei=490154203237518");
        let (d, kind) = decode(gp::STANDARD.encode(&gz).as_bytes()).unwrap();
        assert_eq!(d, gz);
        assert_eq!(kind, Content::Compressed);
    }

    #[test]
    fn utf8_balance() {
        assert!(utf8_balanced("plain é名 text 😀".as_bytes()));
        assert!(!utf8_balanced(b"\xe5\x90")); // a character cut short
        assert!(!utf8_balanced(b"\x80abc")); // a stray continuation byte
        assert!(!utf8_balanced(b"\xc0\x80")); // overlong: never in UTF-8
    }

    /// The old, slower judgement of decoded bytes, as the model for [`classify`].
    fn classify_model(d: &[u8]) -> Option<Content> {
        let printable_byte =
            |b: &u8| (0x20..0x7f).contains(b) || matches!(b, b'\t' | b'\n' | b'\r');
        if content::is_gzip(d) || content::is_zstd(d) || content::is_zlib(d) {
            return Some(Content::Compressed);
        }
        if d.iter().all(printable_byte) {
            return Some(Content::Text);
        }
        if std::str::from_utf8(d).is_ok_and(clean_text) {
            return Some(Content::Text);
        }
        let printable = d.iter().filter(|b| printable_byte(b)).count();
        (printable * 5 >= d.len() * 4).then_some(Content::MostlyText)
    }

    #[test]
    fn judged_decoding_gives_up_early_on_binary() {
        let mut out = [0u8; PREFIX_CHARS / 4 * 3];
        // Controls and high bytes: rejected after the second group.
        let body = gp::STANDARD_NO_PAD.encode([
            0x01, 0x90, 0x02, 0xf3, 0x05, 0x9e, b'a', b'b', b'c', b'd', b'e', b'f',
        ]);
        assert_eq!(decode_short_judged(body.as_bytes(), false, &mut out), None);
        assert_eq!(out[6..9], [0; 3], "stopped before the third group");
        // The same bytes after a gzip magic number are decoded whole.
        let body = gp::STANDARD_NO_PAD.encode([0x1f, 0x8b, 8, 0x01, 0x90, 0x02, 0xf3, 0x05, 0x9e]);
        assert_eq!(
            decode_short_judged(body.as_bytes(), false, &mut out),
            Some(9)
        );
        // Text with one control character is still decoded (it may be mostly text).
        let body = gp::URL_SAFE_NO_PAD.encode(b"hello\x01 world, it is me");
        assert_eq!(
            decode_short_judged(body.as_bytes(), true, &mut out),
            Some(22)
        );
    }

    /// Bytes for the judging decoders: random, text, text with a few controls and high
    /// bytes near the 80 % bound, and compression magic numbers before random bytes.
    fn judged_raw() -> impl proptest::strategy::Strategy<Value = Vec<u8>> {
        proptest::prop_oneof![
            proptest::collection::vec(proptest::prelude::any::<u8>(), 9..=48),
            "[ -~]{9,48}".prop_map(String::into_bytes),
            "[ -~\t\n\x00-\x1f\u{80}-\u{9f}é名]{3,16}".prop_map(String::into_bytes),
            // Mostly text: a few controls and high bytes, near the 80 % bound.
            (
                "[ -~]{9,44}",
                proptest::collection::vec(
                    (proptest::prelude::any::<proptest::sample::Index>(), 0u8..64),
                    1..9,
                ),
            )
                .prop_map(|(t, bad)| {
                    let mut r = t.into_bytes();
                    for (at, b) in bad {
                        let b = if b < 32 { b } else { 0x80 + b };
                        r.insert(at.index(r.len() + 1), b);
                    }
                    r
                }),
            (
                proptest::collection::vec(proptest::prelude::any::<u8>(), 9..=44),
                0usize..3
            )
                .prop_map(|(mut r, m)| {
                    let magic: &[u8] = [
                        &[0x1f, 0x8b, 8][..],
                        &[0x28, 0xb5, 0x2f, 0xfd],
                        &[0x78, 0x9c],
                    ][m];
                    r.splice(0..0, magic.iter().copied());
                    r
                }),
        ]
    }

    proptest::proptest! {
        /// The table decoder against the `base64` crate's lenient engines.
        #[test]
        fn short_decoding_agrees_with_the_engines(
            raw in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..=48),
            url in proptest::bool::ANY,
            cut in 0usize..3,
        ) {
            let engine = if url { &gp::URL_SAFE_NO_PAD } else { &gp::STANDARD_NO_PAD };
            let text = engine.encode(&raw);
            // Dropping characters leaves trailing bits, which the lenient engines ignore.
            let mut body = text.as_bytes().to_vec();
            body.truncate(body.len().saturating_sub(cut));
            if body.len() % 4 == 1 {
                body.pop(); // a length base64 cannot have
            }
            let lenient = if url { &URL_SAFE } else { &STANDARD };
            let want = lenient.decode(&body).unwrap();
            let mut out = [0u8; PREFIX_CHARS / 4 * 3];
            let n = decode_short(&body, url, &mut out);
            proptest::prop_assert_eq!(&out[..n], &want[..]);
        }

        /// The judging decoder writes what [`decode_short`] writes, and gives up only
        /// where [`classify`] rejects the whole.
        #[test]
        fn judged_decoding_is_exact(
            raw in judged_raw(),
            url in proptest::bool::ANY,
            cut in 0usize..3,
        ) {
            let engine = if url { &gp::URL_SAFE_NO_PAD } else { &gp::STANDARD_NO_PAD };
            let mut body = engine.encode(&raw).into_bytes();
            body.truncate(body.len().saturating_sub(cut).min(PREFIX_CHARS));
            if body.len() % 4 == 1 {
                body.pop();
            }
            let mut want = [0u8; PREFIX_CHARS / 4 * 3];
            let n = decode_short(&body, url, &mut want);
            let mut got = [0u8; PREFIX_CHARS / 4 * 3];
            match decode_short_judged(&body, url, &mut got) {
                Some(m) => {
                    proptest::prop_assert_eq!(m, n);
                    proptest::prop_assert_eq!(&got[..m], &want[..n]);
                }
                None => proptest::prop_assert_eq!(classify(&want[..n]), None),
            }
        }

        /// The SSSE3 judging decoder answers exactly as the scalar one: the same
        /// length and bytes, and `None` for the same bodies (random and text bodies of
        /// every length up to 64, both alphabets, group boundaries cut anywhere).
        #[cfg(target_arch = "x86_64")]
        #[test]
        fn ssse3_judged_decoding_agrees_with_scalar(
            raw in judged_raw(),
            url in proptest::bool::ANY,
            cut in 0usize..16,
        ) {
            if !(std::arch::is_x86_feature_detected!("ssse3")
                && std::arch::is_x86_feature_detected!("popcnt"))
            {
                return Ok(());
            }
            let engine = if url { &gp::URL_SAFE_NO_PAD } else { &gp::STANDARD_NO_PAD };
            let mut body = engine.encode(&raw).into_bytes();
            body.truncate(body.len().saturating_sub(cut).min(PREFIX_CHARS));
            if body.len() % 4 == 1 {
                body.pop();
            }
            let mut scalar = [0u8; PREFIX_CHARS / 4 * 3];
            let want = decode_short_judged(&body, url, &mut scalar);
            let mut wide = [0u8; short_ssse3::MAX_CHARS];
            // SAFETY: SSSE3 and POPCNT are present (checked above).
            let got = unsafe { short_ssse3::decode_judged(&body, url, &mut wide) };
            proptest::prop_assert_eq!(got, want, "body {:?}", String::from_utf8_lossy(&body));
            if let Some(n) = want {
                proptest::prop_assert_eq!(&wide[..n], &scalar[..n]);
            }
        }

        /// [`screen`] against a straightforward version of heuristic steps 1–3.
        #[test]
        fn screen_agrees_with_the_model(
            s in proptest::prop_oneof![
                "[A-Za-z0-9+/=_ -]{0,40}".prop_map(String::into_bytes),
                "[A-Za-z0-9+/=_ \x00-\x1f\u{80}-\u{ff}.:]{0,40}".prop_map(String::into_bytes),
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40),
            ],
        ) {
            let model = || -> Option<usize> {
                if s.len() < MIN_LEN {
                    return None;
                }
                let body_len = s.len() - s.iter().rev().take_while(|&&b| b == b'=').count();
                let (body, padding) = (&s[..body_len], s.len() - body_len);
                if padding > 2 || (padding > 0 && s.len() % 4 != 0) || body_len % 4 == 1 {
                    return None;
                }
                let any = |f: fn(&u8) -> bool| body.iter().any(f);
                if !body.iter().all(|&b| b.is_ascii_alphanumeric() || b"+/-_ ".contains(&b)) {
                    return None;
                }
                let std_sym = any(|b| b"+/ ".contains(b));
                let url_sym = any(|b| b"-_".contains(b));
                let non_hex = any(|b| !b.is_ascii_hexdigit() && *b != b'-');
                if std_sym && url_sym || !non_hex {
                    return None;
                }
                let mixed = any(u8::is_ascii_uppercase) && any(u8::is_ascii_lowercase);
                let ok = any(u8::is_ascii_digit) || std_sym || url_sym || padding > 0 || mixed;
                ok.then_some(body_len)
            };
            proptest::prop_assert_eq!(screen(&s).map(|sc| sc.body_len), model());
        }

        /// The screen never rejects what [`decode`] would decode, and accepts only
        /// [`candidate`]s (the JSON walk relies on both).
        #[test]
        fn screen_is_exact(
            s in proptest::prop_oneof![
                "[A-Za-z0-9+/=._ -]{0,40}".prop_map(String::into_bytes),
                "[a-f0-9-]{10,40}".prop_map(String::into_bytes),
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)
                    .prop_map(|raw| gp::STANDARD.encode(raw).into_bytes()),
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..40)
                    .prop_map(|raw| gp::URL_SAFE_NO_PAD.encode(raw).into_bytes()),
                "[ -~]{0,40}".prop_map(|t| gp::STANDARD.encode(t).into_bytes()),
            ],
        ) {
            if !worth_decoding(&s) {
                proptest::prop_assert_eq!(decode(&s), None);
            } else {
                proptest::prop_assert!(candidate(&s));
            }
            // Decoding with a screen taken earlier is decoding.
            proptest::prop_assert_eq!(screen(&s).and_then(|sc| decode_screened(&s, sc)), decode(&s));
        }

        /// UTF-8 always balances (what [`classify`] relies on to skip `from_utf8`).
        #[test]
        fn utf8_is_balanced(
            d in proptest::prop_oneof![
                "\\PC{0,24}".prop_map(String::into_bytes),
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..48),
                proptest::collection::vec(proptest::prelude::any::<char>(), 0..12)
                    .prop_map(|cs| cs.into_iter().collect::<String>().into_bytes()),
            ],
        ) {
            if std::str::from_utf8(&d).is_ok() {
                proptest::prop_assert!(utf8_balanced(&d));
            }
        }

        /// [`classify`] and [`plausible_prefix`] against straightforward versions.
        #[test]
        fn judging_agrees_with_the_model(
            d in proptest::prop_oneof![
                proptest::collection::vec(proptest::prelude::any::<u8>(), 0..64),
                "\\PC{0,20}".prop_map(String::into_bytes),
                "[ -~\t\n\x00-\x1f\u{80}-\u{9f}é名]{0,20}".prop_map(String::into_bytes),
            ],
        ) {
            proptest::prop_assert_eq!(classify(&d), classify_model(&d));
            let text = match std::str::from_utf8(&d) {
                Ok(s) => Some(s),
                Err(e) if e.error_len().is_none() => std::str::from_utf8(&d[..e.valid_up_to()]).ok(),
                Err(_) => None,
            };
            let half = d.iter().filter(|&&b| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r')).count() * 2 >= d.len();
            let magic = content::is_gzip(&d) || content::is_zstd(&d) || content::is_zlib(&d);
            proptest::prop_assert_eq!(plausible_prefix(&d), magic || text.is_some_and(clean_text) || half);
        }
    }
}
