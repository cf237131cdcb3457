//! Variants of a known device value: the byte strings under which an app may send it
//! (DESIGN.md §3). Each value yields textual forms (case, separators, phone formats),
//! and each textual form is expanded into encodings (percent-encoding, base64, hex,
//! JSON escapes) and digests (MD5, SHA-1, SHA-256, SHA-512 as hex and base64). The
//! detector compiles all variants of all devices into one [`super::matcher::Matcher`].
//!
//! Rules worth knowing:
//! - Case and separator changes still report the encoding `plain`, as do JSON escapes
//!   (the JSON decoder would have undone them).
//! - Textual forms shorter than [`MIN_PLAIN_LEN`] bytes are not expanded into plain,
//!   url, base64, hex or JSON variants: a 1–3 byte string occurs everywhere. Their
//!   digests are still matched (a digest is specific whatever the input length).
//! - Phone numbers: the E.164 form (`+8613800138000`), the same without `+`
//!   (`8613800138000`) and with `00` (`008613800138000`), and the national form
//!   (`13800138000`). The country code is taken from [`COUNTRY_CODES`] by longest
//!   prefix; the national form gets the country's trunk prefix where it has one
//!   (`+44 20…` → `020…`). A number written without `+` or `00` is kept as given (and
//!   without separators): its country cannot be known.
//! - Locations: see [`location_variants`].
//! - Placeholder values (one character repeated, e.g. the all-zero advertising id of
//!   a device with limited ad tracking) yield no variants: see [`is_placeholder`].

use std::collections::HashMap;

use base64::engine::general_purpose::{STANDARD, STANDARD_NO_PAD, URL_SAFE, URL_SAFE_NO_PAD};
use base64::Engine;
use md5::Md5;
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use sha1::Sha1;
use sha2::{Digest, Sha256, Sha512};

use crate::case::{IdentifierKind, IdentifierValue};

/// Shortest textual form expanded into plain/url/base64/hex/JSON variants.
pub const MIN_PLAIN_LEN: usize = 4;

/// Decimals of the coordinate strings matched (fewer is not a precise location).
pub const LOCATION_DECIMALS: std::ops::RangeInclusive<usize> = 3..=7;

/// Country calling codes understood when deriving a national phone number, with the
/// trunk prefix dialled before national numbers (`""` where there is none). CN and
/// NANP first; the rest are common test-phone origins.
pub const COUNTRY_CODES: &[(&str, &str)] = &[
    ("86", ""),
    ("1", ""),
    ("852", ""),
    ("853", ""),
    ("886", "0"),
    ("44", "0"),
    ("49", "0"),
    ("33", "0"),
    ("39", ""),
    ("34", ""),
    ("31", "0"),
    ("7", "8"),
    ("81", "0"),
    ("82", "0"),
    ("91", "0"),
    ("61", "0"),
    ("65", ""),
];

/// What part of a value a variant stands for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Role {
    /// The whole value.
    Value,
    /// The latitude of a location (matched only together with a longitude).
    Lat,
    /// The longitude of a location.
    Lon,
    /// Latitude as an E6/E7 integer: must not be followed by a digit either.
    LatInt,
    /// Longitude as an E6/E7 integer.
    LonInt,
}

/// One byte string to search for, and how it encodes the value.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Variant {
    pub bytes: Vec<u8>,
    /// `plain`, `url`, `base64`, `hex`, `md5`, `sha1`, `sha256`, `sha512`.
    pub encoding: &'static str,
    pub role: Role,
}

/// Simplicity rank of an encoding: when two variants are the same bytes the simpler
/// label is kept.
pub fn encoding_rank(encoding: &str) -> u8 {
    match encoding {
        "plain" => 0,
        "url" => 1,
        "hex" => 2,
        "base64" => 3,
        "md5" => 4,
        "sha1" => 5,
        "sha256" => 6,
        "sha512" => 7,
        _ => 8,
    }
}

/// Every variant of one identifier, deduplicated (one entry per distinct byte string,
/// with the simplest encoding label).
pub fn variants(kind: &IdentifierKind, value: &IdentifierValue) -> Vec<Variant> {
    let mut out = Variants::default();
    match value {
        IdentifierValue::Text(text) if is_placeholder(text) => {}
        IdentifierValue::Text(text) => {
            for form in textual_forms(kind, text) {
                expand(&form, &mut out);
            }
        }
        IdentifierValue::Location { lat, lon } => {
            for (bytes, role) in location_variants(*lat, *lon) {
                out.push(bytes, "plain", role);
            }
        }
    }
    out.finish()
}

/// Whether `text` is one character repeated, apart from separators: the all-zero
/// IDFA/advertising id that iOS and Android report when tracking is limited, an empty
/// IMEI `000000000000000`. It identifies nobody, occurs in traffic of every device, and
/// makes the matcher verify a candidate at every sample of a run of that character.
pub fn is_placeholder(text: &str) -> bool {
    let mut chars = text
        .chars()
        .filter(|c| !matches!(c, ':' | '-' | ' ' | '.'))
        .map(|c| c.to_ascii_lowercase());
    match chars.next() {
        None => true,
        Some(first) => chars.all(|c| c == first),
    }
}

#[derive(Default)]
struct Variants {
    index: HashMap<Vec<u8>, usize>,
    list: Vec<Variant>,
}

impl Variants {
    fn push(&mut self, bytes: Vec<u8>, encoding: &'static str, role: Role) {
        if bytes.is_empty() {
            return;
        }
        match self.index.get(&bytes) {
            Some(&i) => {
                if encoding_rank(encoding) < encoding_rank(self.list[i].encoding) {
                    self.list[i].encoding = encoding;
                }
            }
            None => {
                self.index.insert(bytes.clone(), self.list.len());
                self.list.push(Variant {
                    bytes,
                    encoding,
                    role,
                });
            }
        }
    }

    fn finish(self) -> Vec<Variant> {
        self.list
    }
}

/// Kinds whose values are machine ids where separators (`:` `-` space `.`) are
/// formatting, not content.
fn separators_are_formatting(kind: &IdentifierKind) -> bool {
    matches!(
        kind,
        IdentifierKind::AdvertisingId
            | IdentifierKind::Idfa
            | IdentifierKind::Idfv
            | IdentifierKind::AndroidId
            | IdentifierKind::Oaid
            | IdentifierKind::Imei
            | IdentifierKind::Meid
            | IdentifierKind::Imsi
            | IdentifierKind::Iccid
            | IdentifierKind::Serial
            | IdentifierKind::Mac
            | IdentifierKind::Bssid
            | IdentifierKind::BankCard
            | IdentifierKind::ResidentId
    )
}

fn strip(s: &str, chars: &[char]) -> String {
    s.chars().filter(|c| !chars.contains(c)).collect()
}

fn push_unique(forms: &mut Vec<String>, s: String) {
    if !s.is_empty() && !forms.contains(&s) {
        forms.push(s);
    }
}

fn push_cases(forms: &mut Vec<String>, s: &str) {
    push_unique(forms, s.to_string());
    push_unique(forms, s.to_lowercase());
    push_unique(forms, s.to_uppercase());
}

/// The textual forms of a value of `kind` (before encodings).
pub fn textual_forms(kind: &IdentifierKind, text: &str) -> Vec<String> {
    let mut forms = Vec::new();
    let trimmed = text.trim();
    match kind {
        IdentifierKind::Phone => phone_forms(trimmed, &mut forms),
        IdentifierKind::Email => {
            push_unique(&mut forms, trimmed.to_string());
            push_unique(&mut forms, trimmed.to_lowercase());
        }
        _ => {
            push_cases(&mut forms, trimmed);
            if separators_are_formatting(kind) {
                let bare = strip(trimmed, &[':', '-', ' ', '.']);
                push_cases(&mut forms, &bare);
                if matches!(kind, IdentifierKind::Mac | IdentifierKind::Bssid) && bare.len() == 12 {
                    // The other common MAC notations: 02-00-00-44-55-66, 0200.0044.5566.
                    let pairs: Vec<&str> =
                        (0..6).filter_map(|i| bare.get(2 * i..2 * i + 2)).collect();
                    let quads: Vec<&str> =
                        (0..3).filter_map(|i| bare.get(4 * i..4 * i + 4)).collect();
                    push_cases(&mut forms, &pairs.join(":"));
                    push_cases(&mut forms, &pairs.join("-"));
                    push_cases(&mut forms, &quads.join("."));
                }
            }
        }
    }
    forms
}

fn phone_forms(text: &str, forms: &mut Vec<String>) {
    push_unique(forms, text.to_string());
    let digits: String = text.chars().filter(|c| c.is_ascii_digit()).collect();
    let international = if let Some(rest) = text.strip_prefix('+') {
        Some(strip(rest, &[' ', '-', '.', '(', ')']))
    } else {
        text.strip_prefix("00")
            .map(|rest| strip(rest, &[' ', '-', '.', '(', ')']))
    };
    let Some(intl) = international.filter(|d| d.chars().all(|c| c.is_ascii_digit())) else {
        // Not international: the given form and its digits only.
        push_unique(forms, digits);
        return;
    };
    push_unique(forms, format!("+{intl}"));
    push_unique(forms, intl.clone());
    push_unique(forms, format!("00{intl}"));
    let cc = COUNTRY_CODES
        .iter()
        .filter(|(cc, _)| intl.starts_with(cc))
        .max_by_key(|(cc, _)| cc.len());
    if let Some((cc, trunk)) = cc {
        let national = &intl[cc.len()..];
        push_unique(forms, format!("+{cc} {national}"));
        push_unique(forms, format!("{trunk}{national}"));
        if *cc == "1" && national.len() == 10 {
            // NANP formatting: (415) 555-0100, 415-555-0100.
            let (a, rest) = national.split_at(3);
            let (b, c) = rest.split_at(3);
            push_unique(forms, format!("({a}) {b}-{c}"));
            push_unique(forms, format!("{a}-{b}-{c}"));
        }
    }
}

/// Characters left as they are by percent-encoding (RFC 3986 unreserved).
const URL_KEEP: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');

fn expand(form: &str, out: &mut Variants) {
    let b = form.as_bytes();
    if b.len() >= MIN_PLAIN_LEN {
        out.push(b.to_vec(), "plain", Role::Value);
        let url = utf8_percent_encode(form, URL_KEEP).to_string();
        if url != form {
            out.push(lower_percent_hex(&url).into_bytes(), "url", Role::Value);
            out.push(url.replace("%20", "+").into_bytes(), "url", Role::Value);
            out.push(url.into_bytes(), "url", Role::Value);
        }
        push_base64(b, "base64", out);
        out.push(hex_lower(b).into_bytes(), "hex", Role::Value);
        out.push(hex_lower(b).to_uppercase().into_bytes(), "hex", Role::Value);
        for json in json_escapes(form) {
            out.push(json.into_bytes(), "plain", Role::Value);
        }
    }
    digest::<Md5>(b, "md5", out);
    digest::<Sha1>(b, "sha1", out);
    digest::<Sha256>(b, "sha256", out);
    digest::<Sha512>(b, "sha512", out);
}

fn push_base64(b: &[u8], label: &'static str, out: &mut Variants) {
    out.push(STANDARD.encode(b).into_bytes(), label, Role::Value);
    out.push(STANDARD_NO_PAD.encode(b).into_bytes(), label, Role::Value);
    out.push(URL_SAFE.encode(b).into_bytes(), label, Role::Value);
    out.push(URL_SAFE_NO_PAD.encode(b).into_bytes(), label, Role::Value);
}

fn digest<D: Digest>(b: &[u8], label: &'static str, out: &mut Variants) {
    let d = D::digest(b);
    let hex = hex_lower(&d);
    out.push(hex.to_uppercase().into_bytes(), label, Role::Value);
    out.push(hex.into_bytes(), label, Role::Value);
    push_base64(&d, label, out);
}

/// Lower-case hex of `b`.
pub fn hex_lower(b: &[u8]) -> String {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    let mut s = String::with_capacity(b.len() * 2);
    for &x in b {
        s.push(HEX[usize::from(x >> 4)] as char);
        s.push(HEX[usize::from(x & 15)] as char);
    }
    s
}

fn lower_percent_hex(url: &str) -> String {
    let mut out = String::with_capacity(url.len());
    let mut after_percent = 0;
    for c in url.chars() {
        if c == '%' {
            after_percent = 2;
            out.push(c);
        } else if after_percent > 0 {
            after_percent -= 1;
            out.push(c.to_ascii_lowercase());
        } else {
            out.push(c);
        }
    }
    out
}

/// JSON string-content escapes of `s` that differ from `s`: the minimal escape
/// (`"` `\` controls), with `/` as `\/` (PHP, some Java encoders), with non-ASCII as
/// `\uXXXX` (Python's `ensure_ascii`), and with HTML-sensitive and other punctuation as
/// `\u00XX` (Go, Gson: `\u0026`, `\u003c`, `\u0040`, `\u003d`), in lower and upper hex.
pub fn json_escapes(s: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    let escape = |slash: bool, non_ascii: bool, punct: bool, upper: bool| -> String {
        let mut e = String::with_capacity(s.len() + 8);
        let u = |e: &mut String, v: u32| {
            if upper {
                e.push_str(&format!("\\u{v:04X}"));
            } else {
                e.push_str(&format!("\\u{v:04x}"));
            }
        };
        for c in s.chars() {
            match c {
                '"' => e.push_str("\\\""),
                '\\' => e.push_str("\\\\"),
                '\n' => e.push_str("\\n"),
                '\r' => e.push_str("\\r"),
                '\t' => e.push_str("\\t"),
                '/' if slash => e.push_str("\\/"),
                c if (c as u32) < 0x20 => u(&mut e, c as u32),
                '@' | '<' | '>' | '&' | '\'' | '=' | '+' if punct => u(&mut e, c as u32),
                c if !c.is_ascii() && non_ascii => {
                    let mut buf = [0u16; 2];
                    for unit in c.encode_utf16(&mut buf) {
                        u(&mut e, u32::from(*unit));
                    }
                }
                c => e.push(c),
            }
        }
        e
    };
    for (slash, non_ascii, punct, upper) in [
        (false, false, false, false),
        (true, false, false, false),
        (false, true, false, false),
        (true, true, false, false),
        (false, true, true, false),
        (false, true, true, true),
    ] {
        let e = escape(slash, non_ascii, punct, upper);
        if e != s && !out.contains(&e) {
            out.push(e);
        }
    }
    out
}

/// Coordinate strings of a location: lat and lon each as decimals truncated and
/// rounded to 3..=7 places (`31.230`, `31.2304`, … `31.2304160`) with role
/// `Lat`/`Lon`, and as E6 and E7 integers (`31230416`, `312304160`) with role
/// `LatInt`/`LonInt`. The detector reports a location only when a lat and a lon
/// variant of the same device occur in the same message, and only where the byte
/// before a hit is not a digit or `-`/`.` (so `131.230` is not latitude `31.230`), and
/// for the integers also the byte after.
pub fn location_variants(lat: f64, lon: f64) -> Vec<(Vec<u8>, Role)> {
    let mut out: Vec<(Vec<u8>, Role)> = Vec::new();
    if !lat.is_finite() || !lon.is_finite() {
        return out;
    }
    for (v, role, int_role) in [
        (lat, Role::Lat, Role::LatInt),
        (lon, Role::Lon, Role::LonInt),
    ] {
        let mut push = |s: String, r: Role| {
            let b = s.into_bytes();
            if !out.iter().any(|(x, _)| *x == b) {
                out.push((b, r));
            }
        };
        let exact = format!("{v}");
        for d in LOCATION_DECIMALS {
            push(format!("{v:.d$}"), role);
            push(truncate_decimal(&exact, d), role);
        }
        push(format!("{}", (v * 1e6).round() as i64), int_role);
        push(format!("{}", (v * 1e7).round() as i64), int_role);
    }
    out
}

/// `31.230416` truncated to `d` decimals, padded with zeros (`31.2304160` for 7).
fn truncate_decimal(s: &str, d: usize) -> String {
    let (int, frac) = s.split_once('.').unwrap_or((s, ""));
    let mut frac: String = frac.chars().take(d).collect();
    while frac.len() < d {
        frac.push('0');
    }
    format!("{int}.{frac}")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn has(vs: &[Variant], bytes: &str, encoding: &str) -> bool {
        vs.iter()
            .any(|v| v.bytes == bytes.as_bytes() && v.encoding == encoding)
    }

    fn text(s: &str) -> IdentifierValue {
        IdentifierValue::Text(s.to_string())
    }

    #[test]
    fn android_id_digests_and_encodings() {
        let vs = variants(&IdentifierKind::AndroidId, &text("9774d56d682e549c"));
        // Expected values computed with python3 hashlib / base64.
        assert!(has(&vs, "9774d56d682e549c", "plain"));
        assert!(has(&vs, "9774D56D682E549C", "plain"));
        assert!(has(&vs, "cf95dc53f383f9a836fd749f3ef439cd", "md5"));
        assert!(has(&vs, "CF95DC53F383F9A836FD749F3EF439CD", "md5"));
        assert!(has(&vs, "z5XcU/OD+ag2/XSfPvQ5zQ==", "md5"));
        assert!(has(&vs, "z5XcU_OD-ag2_XSfPvQ5zQ", "md5"));
        assert!(has(&vs, "41e29575c7361b2924f701502ca6d932b45b9e51", "sha1"));
        assert!(has(
            &vs,
            "4d853cd5e7d688e75b3dca9abc2fa52ac8bafb750b6d4dc01b78e2e7bb335f8f",
            "sha256"
        ));
        assert!(has(&vs, "OTc3NGQ1NmQ2ODJlNTQ5Yw==", "base64"));
        assert!(has(&vs, "OTc3NGQ1NmQ2ODJlNTQ5Yw", "base64"));
        assert!(has(&vs, "39373734643536643638326535343963", "hex"));
        // No URL variant: nothing to escape.
        assert!(!vs.iter().any(|v| v.encoding == "url"));
        // Every byte string once.
        let mut seen: Vec<&[u8]> = vs.iter().map(|v| v.bytes.as_slice()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), vs.len());
    }

    #[test]
    fn mac_separators_and_cases() {
        let vs = variants(&IdentifierKind::Mac, &text("02:00:00:44:55:aa"));
        for s in [
            "02:00:00:44:55:aa",
            "02:00:00:44:55:AA",
            "0200004455aa",
            "0200004455AA",
            "02-00-00-44-55-aa",
            "0200.0044.55aa",
        ] {
            assert!(has(&vs, s, "plain"), "{s}");
        }
        assert!(has(&vs, "02%3A00%3A00%3A44%3A55%3Aaa", "url"));
        assert!(has(&vs, "02%3a00%3a00%3a44%3a55%3aaa", "url"));
    }

    #[test]
    fn uuid_without_dashes_and_sha256() {
        let vs = variants(
            &IdentifierKind::AdvertisingId,
            &text("38400000-8cf0-11bd-b23e-10b96e40000d"),
        );
        assert!(has(&vs, "384000008cf011bdb23e10b96e40000d", "plain"));
        assert!(has(&vs, "384000008CF011BDB23E10B96E40000D", "plain"));
        assert!(has(&vs, "d027619991422ce711935e2df6c57e5a", "md5"));
        assert!(vs.iter().filter(|v| v.encoding == "sha512").count() >= 6);
    }

    #[test]
    fn phone_forms_cn_and_us() {
        let f = textual_forms(&IdentifierKind::Phone, "+86 138-0013-8000");
        for s in [
            "+8613800138000",
            "8613800138000",
            "13800138000",
            "008613800138000",
        ] {
            assert!(f.contains(&s.to_string()), "{s} in {f:?}");
        }
        let f = textual_forms(&IdentifierKind::Phone, "+14155550100");
        for s in [
            "4155550100",
            "14155550100",
            "(415) 555-0100",
            "415-555-0100",
        ] {
            assert!(f.contains(&s.to_string()), "{s} in {f:?}");
        }
        let f = textual_forms(&IdentifierKind::Phone, "+442079460000");
        assert!(f.contains(&"02079460000".to_string()));
        let f = textual_forms(&IdentifierKind::Phone, "138 0013 8000");
        assert!(f.contains(&"13800138000".to_string()));
    }

    #[test]
    fn email_lowercased_and_json_escaped() {
        let vs = variants(&IdentifierKind::Email, &text(" Tester@Example.org "));
        assert!(has(&vs, "tester@example.org", "plain"));
        assert!(has(&vs, "Tester@Example.org", "plain"));
        assert!(has(&vs, "tester\\u0040example.org", "plain"));
        assert!(has(&vs, "tester%40example.org", "url"));
        // md5("tester@example.org"), python3 hashlib.
        assert!(has(&vs, "889759bfc8304d238a5fa51d52c62ce0", "md5"));
    }

    #[test]
    fn short_values_only_digests() {
        let vs = variants(&IdentifierKind::Custom("x".into()), &text("ab"));
        assert!(vs
            .iter()
            .all(|v| matches!(v.encoding, "md5" | "sha1" | "sha256" | "sha512")));
        // md5("ab") = 187ef4436122d1cc2f40dc2b92f0eba0
        assert!(has(&vs, "187ef4436122d1cc2f40dc2b92f0eba0", "md5"));
    }

    #[test]
    fn location_strings() {
        let vs = location_variants(31.230416, 121.473701);
        let has_loc = |s: &str, r: Role| vs.iter().any(|(b, role)| b == s.as_bytes() && *role == r);
        assert!(has_loc("31.230", Role::Lat));
        assert!(has_loc("31.2304", Role::Lat));
        assert!(has_loc("31.2304160", Role::Lat));
        assert!(has_loc("31230416", Role::LatInt));
        assert!(has_loc("312304160", Role::LatInt));
        assert!(has_loc("121.474", Role::Lon)); // rounded
        assert!(has_loc("121.473", Role::Lon)); // truncated
        assert!(has_loc("1214737010", Role::LonInt));
    }

    #[test]
    fn every_kind_has_plain_forms_and_digests() {
        let sample = |k: &IdentifierKind| match k {
            IdentifierKind::Phone => "+8613800138000",
            IdentifierKind::Email => "tester@example.org",
            IdentifierKind::Imei | IdentifierKind::Meid => "49-015420-323751-8",
            IdentifierKind::Mac | IdentifierKind::Bssid => "02:00:00:44:55:66",
            IdentifierKind::ResidentId => "11010519491231002x",
            IdentifierKind::BankCard => "6222 0212 3456 7890 128",
            IdentifierKind::Ssid => "Lab WiFi 5G",
            IdentifierKind::Name => "Zhang San",
            IdentifierKind::Serial => "R58M12ABCDE",
            _ => "a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b",
        };
        for kind in IdentifierKind::BUILTIN
            .iter()
            .filter(|k| **k != IdentifierKind::Location)
        {
            let value = sample(kind);
            let vs = variants(kind, &text(value));
            assert!(has(&vs, value, "plain"), "{kind}: as-is");
            let md5 = hex_lower(&Md5::digest(value.as_bytes()));
            assert!(has(&vs, &md5, "md5"), "{kind}: md5 of as-is");
            assert!(
                has(&vs, &STANDARD.encode(value), "base64"),
                "{kind}: base64"
            );
            if separators_are_formatting(kind) {
                let bare = strip(value, &[':', '-', ' ', '.']);
                assert!(has(&vs, &bare.to_uppercase(), "plain"), "{kind}: {bare}");
            }
        }
        // Resident id: the check character in both cases.
        let vs = variants(&IdentifierKind::ResidentId, &text("11010519491231002x"));
        assert!(has(&vs, "11010519491231002X", "plain"));
    }

    #[test]
    fn placeholders_yield_nothing() {
        let zero = text("00000000-0000-0000-0000-000000000000");
        assert!(variants(&IdentifierKind::Idfa, &zero).is_empty());
        assert!(variants(&IdentifierKind::Imei, &text("000000000000000")).is_empty());
        assert!(!variants(&IdentifierKind::Imei, &text("490154203237518")).is_empty());
        assert!(!is_placeholder("aA1"));
    }

    #[test]
    fn json_escape_forms() {
        let e = json_escapes("a/b@c");
        assert!(e.contains(&"a\\/b@c".to_string()));
        assert!(e.contains(&"a/b\\u0040c".to_string()));
        let e = json_escapes("张三");
        assert!(e.contains(&"\\u5f20\\u4e09".to_string()));
        assert!(json_escapes("plain").is_empty());
    }
}
