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

const CLASS: [u8; 256] = {
    let mut t = [0u8; 256];
    let mut b = 0;
    while b < 256 {
        let c = b as u8;
        t[b] = match c {
            b'+' | b'/' | b' ' => STD_SYM | NON_HEX,
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
    // The base64 alphabets (the class table), padding, and JWT dots.
    s.len() >= MIN_LEN
        && s.iter()
            .all(|&b| CLASS[usize::from(b)] != 0 || b == b'=' || b == b'.')
}

/// Decodes `s` if it looks like base64 of something worth searching.
pub fn decode(s: &[u8]) -> Option<(Vec<u8>, Content)> {
    if s.len() < MIN_LEN {
        return None;
    }
    let body_len = s.len() - s.iter().rev().take_while(|&&b| b == b'=').count();
    let body = &s[..body_len];
    let padding = s.len() - body_len;
    if padding > 2 || (padding > 0 && s.len() % 4 != 0) || body_len % 4 == 1 {
        return None;
    }
    // One table lookup per character, OR-ed together: this runs on every candidate
    // value of every request, most of which are rejected here.
    let mut seen = 0u8;
    for &b in body {
        let class = CLASS[usize::from(b)];
        if class == 0 {
            return None;
        }
        seen |= class;
    }
    let has = |flag: u8| seen & flag != 0;
    let (std_sym, url_sym) = (has(STD_SYM), has(URL_SYM));
    if std_sym && url_sym || !has(NON_HEX) {
        return None;
    }
    if !(has(DIGIT) || std_sym || url_sym || padding > 0 || (has(UPPER) && has(LOWER))) {
        return None;
    }
    let engine = if url_sym { &URL_SAFE } else { &STANDARD };
    // Most candidates are random tokens. A short one is decoded and judged on the
    // stack, a long one by its first 48 bytes: rejections never allocate.
    let spaced = memchr::memchr(b' ', body).is_some();
    let mut buf = [0u8; PREFIX_CHARS / 4 * 3];
    if !spaced && body.len() <= PREFIX_CHARS {
        let n = engine.decode_slice(body, &mut buf).ok()?;
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
    let out = if memchr::memchr(b' ', body).is_some() {
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
    if memchr::memchr(b' ', body).is_some() && (kind == Content::MostlyText || s.len() < 16) {
        return None;
    }
    Some((out, kind))
}

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
    let text = match std::str::from_utf8(d) {
        Ok(s) => Some(s),
        Err(e) if e.error_len().is_none() => std::str::from_utf8(&d[..e.valid_up_to()]).ok(),
        Err(_) => None,
    };
    if let Some(s) = text {
        if s.chars()
            .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
        {
            return true;
        }
    }
    let printable = d
        .iter()
        .filter(|&&b| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r'))
        .count();
    printable * 2 >= d.len()
}

fn classify(d: &[u8]) -> Option<Content> {
    if content::is_gzip(d) || content::is_zstd(d) || content::is_zlib(d) {
        return Some(Content::Compressed);
    }
    // Printable ASCII (the usual decoded text) is text without a UTF-8 pass.
    if d.iter()
        .all(|&b| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r'))
    {
        return Some(Content::Text);
    }
    if let Ok(s) = std::str::from_utf8(d) {
        if s.chars()
            .all(|c| !c.is_control() || matches!(c, '\t' | '\n' | '\r'))
        {
            return Some(Content::Text);
        }
    }
    let printable = d
        .iter()
        .filter(|&&b| (0x20..0x7f).contains(&b) || matches!(b, b'\t' | b'\n' | b'\r'))
        .count();
    (printable * 5 >= d.len() * 4).then_some(Content::MostlyText)
}

#[cfg(test)]
mod tests {
    use super::*;
    use base64::engine::general_purpose as gp;

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
}
