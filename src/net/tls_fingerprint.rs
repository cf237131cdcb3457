//! JA3 and JA4 fingerprints of a ClientHello: which TLS stack opened a connection.
//!
//! Both describe the client, not the server: an app's own networking library, the
//! system's, a WebView's and an SDK that brings its own TLS stack each offer their own
//! cipher suites and extensions, so a fingerprint tells them apart where the server
//! name cannot (an SDK and the app talking to the same CDN). Zeek, Suricata, nDPI and
//! Wireshark print the same values, so an investigator can look one up in the lists
//! those tools share.
//!
//! - **JA3** (Salesforce, 2017): the MD5 of `version,ciphers,extensions,groups,point
//!   formats`, each list in wire order as decimal numbers joined by `-`, GREASE
//!   values (RFC 8701) left out. Browsers that shuffle their extensions (Chrome since
//!   version 110) give a new JA3 on every connection.
//! - **JA4** (FoxIO, BSD-3-Clause, `technical_details/JA4.md`): `t13d1516h2_…_…`:
//!   transport, highest offered version, SNI present, counts of ciphers and
//!   extensions, first and last character of the first ALPN, then 12 hex digits of
//!   the SHA-256 of the sorted ciphers and of the sorted extensions (SNI and ALPN
//!   left out) followed by the signature algorithms in wire order. Sorting makes it
//!   stable under shuffled extensions.
//!
//! Pure: computed once from the parsed hello's fields, kept as two small arrays.

use md5::{Digest as _, Md5};
use sha2::Sha256;

use super::text::push_decimal;
use super::tls::{is_grease, EXT_ALPN, EXT_SNI, EXT_SUPPORTED_VERSIONS};
use crate::source::{hex, push_hex};

const EXT_SUPPORTED_GROUPS: u16 = 10;
const EXT_EC_POINT_FORMATS: u16 = 11;
const EXT_SIGNATURE_ALGORITHMS: u16 = 13;

/// What a ClientHello's fingerprints are made of, borrowed from the parsed hello.
#[derive(Debug, Clone, Copy)]
pub struct HelloFields<'a> {
    pub legacy_version: u16,
    /// Offered cipher suites, GREASE included, in wire order.
    pub cipher_suites: &'a [u16],
    /// Every extension, type and data, in wire order.
    pub extensions: &'a [(u16, &'a [u8])],
}

/// The transport a ClientHello travelled over: JA4's first character.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport {
    /// TLS over TCP: `t`.
    Tcp,
    /// QUIC's CRYPTO frames: `q`.
    Quic,
}

/// Length of a JA4 fingerprint after its transport character:
/// `13d1516h2_8daaf6152771_e5627efa2ab1`.
const JA4_REST: usize = 35;

/// The JA3 and JA4 fingerprints of one ClientHello.
#[derive(Clone, Copy, PartialEq, Eq)]
pub struct Fingerprints {
    ja3: [u8; 16],
    /// JA4 without its transport character, which the hello does not tell; ASCII.
    ja4_rest: [u8; JA4_REST],
}

impl std::fmt::Debug for Fingerprints {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Fingerprints")
            .field("ja3", &self.ja3())
            .field("ja4", &self.ja4(Transport::Tcp))
            .finish()
    }
}

impl Fingerprints {
    /// Both fingerprints of a hello.
    pub fn of(hello: &HelloFields<'_>) -> Self {
        let lists = Lists::of(hello);
        Fingerprints {
            ja3: ja3_digest(hello.legacy_version, &lists),
            ja4_rest: ja4_rest(hello.legacy_version, &lists),
        }
    }

    /// JA3: the MD5 of the hello's JA3 string, 32 lower-case hex digits.
    pub fn ja3(&self) -> String {
        hex(&self.ja3)
    }

    /// JA4 for a hello that travelled over `transport`.
    pub fn ja4(&self, transport: Transport) -> String {
        let mut out = String::with_capacity(1 + JA4_REST);
        out.push(match transport {
            Transport::Tcp => 't',
            Transport::Quic => 'q',
        });
        // Built from ASCII only (`ja4_rest`).
        out.extend(self.ja4_rest.iter().map(|&b| char::from(b)));
        out
    }
}

/// The hello's lists as both fingerprints read them, GREASE left out.
#[derive(Default)]
struct Lists<'a> {
    ciphers: Vec<u16>,
    /// Extension types in wire order.
    extensions: Vec<u16>,
    groups: Vec<u16>,
    point_formats: &'a [u8],
    signature_algorithms: Vec<u16>,
    supported_versions: Vec<u16>,
    has_sni: bool,
    /// The first ALPN protocol's bytes, when there is one.
    first_alpn: Option<&'a [u8]>,
}

impl<'a> Lists<'a> {
    fn of(hello: &HelloFields<'a>) -> Self {
        let mut l = Lists {
            ciphers: without_grease(hello.cipher_suites.iter().copied()),
            ..Lists::default()
        };
        for &(t, data) in hello.extensions {
            if is_grease(t) {
                continue;
            }
            l.extensions.push(t);
            // A list that does not parse counts as empty: the fingerprint still
            // describes everything else the hello offered.
            match t {
                EXT_SNI => l.has_sni = true,
                EXT_SUPPORTED_GROUPS => l.groups = without_grease(u16_list(vec16(data))),
                EXT_EC_POINT_FORMATS => l.point_formats = vec8(data),
                EXT_SIGNATURE_ALGORITHMS => {
                    l.signature_algorithms = without_grease(u16_list(vec16(data)));
                }
                EXT_SUPPORTED_VERSIONS => {
                    l.supported_versions = without_grease(u16_list(vec8(data)));
                }
                EXT_ALPN => l.first_alpn = first_alpn(data),
                _ => {}
            }
        }
        l
    }
}

fn without_grease(values: impl Iterator<Item = u16>) -> Vec<u16> {
    values.filter(|&v| !is_grease(v)).collect()
}

/// The contents of a vector with a one-byte length, or nothing if it does not fit.
fn vec8(data: &[u8]) -> &[u8] {
    match data.split_first() {
        Some((&n, rest)) => rest.get(..usize::from(n)).unwrap_or_default(),
        None => &[],
    }
}

/// The contents of a vector with a two-byte length, or nothing if it does not fit.
fn vec16(data: &[u8]) -> &[u8] {
    match data {
        [a, b, rest @ ..] => rest
            .get(..usize::from(u16::from_be_bytes([*a, *b])))
            .unwrap_or_default(),
        _ => &[],
    }
}

/// Two-byte values; an odd byte at the end is dropped.
fn u16_list(data: &[u8]) -> impl Iterator<Item = u16> + '_ {
    data.chunks_exact(2)
        .map(|p| u16::from_be_bytes([p[0], p[1]]))
}

/// The first protocol name of an ALPN extension's data.
fn first_alpn(data: &[u8]) -> Option<&[u8]> {
    let list = vec16(data);
    let (&n, rest) = list.split_first()?;
    rest.get(..usize::from(n))
}

/// JA3's string: `771,4865-4866,0-23-65281,29-23,0`. Written by hand, digit by
/// digit: `fmt` machinery made the fingerprints ten times the cost of parsing the
/// hello (benches/tls_decrypt.rs, group `tls_hello`).
fn ja3_string(legacy_version: u16, l: &Lists) -> String {
    fn join(out: &mut String, values: impl Iterator<Item = u16>) {
        for (i, v) in values.enumerate() {
            if i > 0 {
                out.push('-');
            }
            push_decimal(out, v.into());
        }
    }
    let mut s = String::with_capacity(
        8 + 6 * (l.ciphers.len() + l.extensions.len() + l.groups.len()) + 4 * l.point_formats.len(),
    );
    push_decimal(&mut s, legacy_version.into());
    s.push(',');
    join(&mut s, l.ciphers.iter().copied());
    s.push(',');
    join(&mut s, l.extensions.iter().copied());
    s.push(',');
    join(&mut s, l.groups.iter().copied());
    s.push(',');
    join(&mut s, l.point_formats.iter().map(|&p| u16::from(p)));
    s
}

fn ja3_digest(legacy_version: u16, l: &Lists) -> [u8; 16] {
    Md5::digest(ja3_string(legacy_version, l).as_bytes()).into()
}

/// JA4's two-character version: the highest of `supported_versions`, else the
/// hello's own version field.
fn ja4_version(legacy_version: u16, l: &Lists) -> [u8; 2] {
    let version = l
        .supported_versions
        .iter()
        .copied()
        .max()
        .unwrap_or(legacy_version);
    *match version {
        0x0304 => b"13",
        0x0303 => b"12",
        0x0302 => b"11",
        0x0301 => b"10",
        0x0300 => b"s3",
        0x0002 => b"s2",
        0xfeff => b"d1",
        0xfefd => b"d2",
        0xfefc => b"d3",
        _ => b"00",
    }
}

/// JA4's ALPN characters: the first and last of the first protocol name when both
/// are ASCII letters or digits, else the first and last hex digit of its bytes;
/// `00` for none or an empty name.
fn ja4_alpn(alpn: Option<&[u8]>) -> [u8; 2] {
    let Some((&first, &last)) = alpn.and_then(|name| Some((name.first()?, name.last()?))) else {
        return *b"00";
    };
    if first.is_ascii_alphanumeric() && last.is_ascii_alphanumeric() {
        return [first, last];
    }
    // The first and the last of the four hex digits of the two bytes.
    match hex(&[first, last]).as_bytes() {
        &[a, _, _, d] => [a, d],
        _ => *b"00",
    }
}

/// Twelve hex digits of the SHA-256 of `text`, or twelve zeros for nothing.
fn truncated_sha256(text: &[u8]) -> [u8; 12] {
    let mut out = [b'0'; 12];
    if !text.is_empty() {
        let digest = Sha256::digest(text);
        let digits = hex(digest.get(..6).unwrap_or_default());
        for (o, d) in out.iter_mut().zip(digits.bytes()) {
            *o = d;
        }
    }
    out
}

/// Lower-case four-digit hex values, comma-separated, appended to `out`.
fn push_hex_list(out: &mut String, values: &[u16]) {
    for (i, &v) in values.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_hex(out, &v.to_be_bytes());
    }
}

/// JA4 after its transport character.
fn ja4_rest(legacy_version: u16, l: &Lists) -> [u8; JA4_REST] {
    let mut ciphers = l.ciphers.clone();
    ciphers.sort_unstable();
    let mut extensions: Vec<u16> = l
        .extensions
        .iter()
        .copied()
        .filter(|&t| t != EXT_SNI && t != EXT_ALPN)
        .collect();
    extensions.sort_unstable();
    let mut text = String::with_capacity(5 * (ciphers.len() + extensions.len()) + 5 * 32);
    push_hex_list(&mut text, &ciphers);
    let b = truncated_sha256(text.as_bytes());
    text.clear();
    // Twelve zeros when no extension is left, signature algorithms or not.
    if !extensions.is_empty() {
        push_hex_list(&mut text, &extensions);
        if !l.signature_algorithms.is_empty() {
            text.push('_');
            push_hex_list(&mut text, &l.signature_algorithms);
        }
    }
    let c = truncated_sha256(text.as_bytes());
    let mut out = [0u8; JA4_REST];
    let mut at = 0;
    let mut put = |bytes: &[u8]| {
        out[at..at + bytes.len()].copy_from_slice(bytes);
        at += bytes.len();
    };
    put(&ja4_version(legacy_version, l));
    put(if l.has_sni { b"d" } else { b"i" });
    put(&two_digits(l.ciphers.len()));
    put(&two_digits(l.extensions.len()));
    put(&ja4_alpn(l.first_alpn));
    put(b"_");
    put(&b);
    put(b"_");
    put(&c);
    out
}

/// A count as JA4 writes it: two digits, at most `99`.
fn two_digits(n: usize) -> [u8; 2] {
    let n = n.min(99) as u8;
    [b'0' + n / 10, b'0' + n % 10]
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The ClientHello of JA4.md's example: its ciphers and extensions in wire order,
    /// with a GREASE cipher and extension added (which change nothing).
    fn spec_example() -> (Vec<u16>, Vec<(u16, Vec<u8>)>) {
        let ciphers = vec![
            0x0a0a, 0x1301, 0x1302, 0x1303, 0xc02b, 0xc02f, 0xc02c, 0xc030, 0xcca9, 0xcca8, 0xc013,
            0xc014, 0x009c, 0x009d, 0x002f, 0x0035,
        ];
        let sigs: &[u16] = &[
            0x0403, 0x0804, 0x0401, 0x0503, 0x0805, 0x0501, 0x0806, 0x0601,
        ];
        let mut exts = Vec::new();
        for t in [
            0x1a1a, 0x001b, 0x0000, 0x0033, 0x0010, 0x4469, 0x0017, 0x002d, 0x000d, 0x0005, 0x0023,
            0x0012, 0x002b, 0xff01, 0x000b, 0x000a, 0x0015,
        ] {
            let data = match t {
                0x0000 => sni_data(b"example.com"),
                0x0010 => alpn_data(&[b"h2", b"http/1.1"]),
                0x000d => list16(sigs),
                0x002b => [vec![6], 0x2a2au16.to_be_bytes().to_vec(), vec![3, 4, 3, 3]].concat(),
                _ => Vec::new(),
            };
            exts.push((t, data));
        }
        (ciphers, exts)
    }

    fn sni_data(name: &[u8]) -> Vec<u8> {
        let entry = [
            vec![0],
            (name.len() as u16).to_be_bytes().to_vec(),
            name.to_vec(),
        ]
        .concat();
        [(entry.len() as u16).to_be_bytes().to_vec(), entry].concat()
    }

    fn alpn_data(names: &[&[u8]]) -> Vec<u8> {
        let list: Vec<u8> = names
            .iter()
            .flat_map(|n| [vec![n.len() as u8], n.to_vec()].concat())
            .collect();
        [(list.len() as u16).to_be_bytes().to_vec(), list].concat()
    }

    fn list16(values: &[u16]) -> Vec<u8> {
        let body: Vec<u8> = values.iter().flat_map(|v| v.to_be_bytes()).collect();
        [(body.len() as u16).to_be_bytes().to_vec(), body].concat()
    }

    fn fingerprints(legacy: u16, ciphers: &[u16], exts: &[(u16, Vec<u8>)]) -> Fingerprints {
        let borrowed: Vec<(u16, &[u8])> = exts.iter().map(|(t, d)| (*t, d.as_slice())).collect();
        Fingerprints::of(&HelloFields {
            legacy_version: legacy,
            cipher_suites: ciphers,
            extensions: &borrowed,
        })
    }

    #[test]
    fn ja4_of_the_specifications_example() {
        let (ciphers, exts) = spec_example();
        let f = fingerprints(0x0303, &ciphers, &exts);
        // JA4.md: "t13d1516h2_8daaf6152771_e5627efa2ab1".
        assert_eq!(
            f.ja4(Transport::Tcp),
            "t13d1516h2_8daaf6152771_e5627efa2ab1"
        );
        assert_eq!(
            f.ja4(Transport::Quic),
            "q13d1516h2_8daaf6152771_e5627efa2ab1"
        );
    }

    #[test]
    fn ja4_hash_parts_match_the_specifications_strings() {
        assert_eq!(
            truncated_sha256(
                b"002f,0035,009c,009d,1301,1302,1303,c013,c014,c02b,c02c,c02f,c030,cca8,cca9"
            ),
            *b"8daaf6152771"
        );
        // Without signature algorithms the list ends without an underscore.
        assert_eq!(
            truncated_sha256(
                b"0005,000a,000b,000d,0012,0015,0017,001b,0023,002b,002d,0033,4469,ff01"
            ),
            *b"6d807ffa2a79"
        );
    }

    #[test]
    fn ja4_without_signature_algorithms_sni_or_alpn() {
        let (ciphers, exts) = spec_example();
        // Signature algorithms as an empty list: hashed without them.
        let exts: Vec<_> = exts
            .into_iter()
            .filter(|(t, _)| *t != 0x0000 && *t != 0x0010)
            .map(|(t, d)| {
                if t == 0x000d {
                    (t, list16(&[]))
                } else {
                    (t, d)
                }
            })
            .collect();
        let f = fingerprints(0x0303, &ciphers, &exts);
        assert_eq!(
            f.ja4(Transport::Tcp),
            "t13i151400_8daaf6152771_6d807ffa2a79"
        );
    }

    #[test]
    fn ja4_version_from_supported_versions_else_the_hello() {
        let (ciphers, exts) = spec_example();
        let without: Vec<_> = exts.into_iter().filter(|(t, _)| *t != 0x002b).collect();
        for (legacy, v) in [
            (0x0303, "12"),
            (0x0301, "10"),
            (0x0300, "s3"),
            (0x7f1c, "00"),
        ] {
            let f = fingerprints(legacy, &ciphers, &without);
            assert_eq!(&f.ja4(Transport::Tcp)[1..3], v, "{legacy:#06x}");
        }
    }

    #[test]
    fn ja4_empty_lists_are_twelve_zeros() {
        let f = fingerprints(0x0303, &[0x0a0a], &[]);
        assert_eq!(
            f.ja4(Transport::Tcp),
            "t12i000000_000000000000_000000000000"
        );
        // Only SNI and ALPN: counted, but nothing left to hash.
        let exts = vec![
            (0x0000, sni_data(b"a.example")),
            (0x0010, alpn_data(&[b"h2"])),
        ];
        let f = fingerprints(0x0303, &[0x1301], &exts);
        assert_eq!(&f.ja4(Transport::Tcp)[..10], "t12d0102h2");
        assert!(f.ja4(Transport::Tcp).ends_with("_000000000000"));
    }

    #[test]
    fn ja4_counts_stop_at_99() {
        let ciphers: Vec<u16> = (1..=150).collect();
        let exts: Vec<(u16, Vec<u8>)> = (0x100..0x200).map(|t| (t, Vec::new())).collect();
        let f = fingerprints(0x0303, &ciphers, &exts);
        assert_eq!(&f.ja4(Transport::Tcp)[4..8], "9999");
        assert_eq!(f.ja4(Transport::Tcp).len(), 36);
    }

    #[test]
    fn ja4_alpn_characters_as_the_specification_lists_them() {
        // JA4.md's examples of names whose first or last byte is not alphanumeric.
        for (name, want) in [
            (&b"h2"[..], "h2"),
            (b"http/1.1", "h1"),
            (b"h", "hh"),
            (b"\xab", "ab"),
            (b"\x20", "20"),
            (b"\xab\xcd", "ad"),
            (b"\x20\x61", "21"),
            (b"\x30\xab", "3b"),
            (b"\x61\x20", "60"),
            (b"\x30\x31\xab\xcd", "3d"),
            (b"\x30\xab\xcd\x31", "01"),
        ] {
            assert_eq!(ja4_alpn(Some(name)), want.as_bytes(), "{name:?}");
        }
        assert_eq!(&ja4_alpn(Some(b"")), b"00");
        assert_eq!(&ja4_alpn(None), b"00");
    }

    #[test]
    fn ja3_string_and_digest() {
        // A hello with GREASE in every list JA3 reads.
        let exts = vec![
            (0x0a0a, Vec::new()),
            (0x0000, sni_data(b"a.example")),
            (0x000a, list16(&[0x2a2a, 29, 23, 24])),
            (0x000b, vec![1, 0]),
            (0xff01, vec![0]),
        ];
        let ciphers = [0x3a3a, 0x1301, 0xc02b];
        let borrowed: Vec<(u16, &[u8])> = exts.iter().map(|(t, d)| (*t, d.as_slice())).collect();
        let lists = Lists::of(&HelloFields {
            legacy_version: 0x0303,
            cipher_suites: &ciphers,
            extensions: &borrowed,
        });
        let s = ja3_string(0x0303, &lists);
        assert_eq!(s, "771,4865-49195,0-10-11-65281,29-23-24,0");
        let f = fingerprints(0x0303, &ciphers, &exts);
        assert_eq!(f.ja3(), hex(&Md5::digest(s.as_bytes())));
        assert_eq!(f.ja3().len(), 32);
    }

    #[test]
    fn ja3_of_a_hello_without_extensions() {
        let lists = Lists::of(&HelloFields {
            legacy_version: 0x0301,
            cipher_suites: &[0x002f, 0x0035],
            extensions: &[],
        });
        assert_eq!(ja3_string(0x0301, &lists), "769,47-53,,,");
        // Every width of a decimal value.
        let lists = Lists::of(&HelloFields {
            legacy_version: 0,
            cipher_suites: &[9, 10, 99, 100, 65535],
            extensions: &[],
        });
        assert_eq!(ja3_string(0, &lists), "0,9-10-99-100-65535,,,");
    }

    #[test]
    fn malformed_lists_count_as_empty() {
        // Groups announced longer than the data; an odd signature list; a cut ALPN.
        let exts: [(u16, &[u8]); 4] = [
            (0x000a, &[0, 9, 0, 29]),
            (0x000d, &[0, 3, 4, 3, 8]),
            (0x0010, &[0, 5, 4, b'h']),
            (0x002b, &[]),
        ];
        let hello = HelloFields {
            legacy_version: 0x0303,
            cipher_suites: &[0x1301],
            extensions: &exts,
        };
        let lists = Lists::of(&hello);
        assert!(lists.groups.is_empty());
        assert_eq!(lists.signature_algorithms, [0x0403]);
        assert_eq!(lists.first_alpn, None);
        let f = Fingerprints::of(&hello);
        assert_eq!(&f.ja4(Transport::Tcp)[..10], "t12i010400");
    }
}
