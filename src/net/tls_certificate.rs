//! The server's certificate from a TLS Certificate handshake message: who the server
//! says it is, as Zeek's `x509.log` and Suricata's `tls.log` record it.
//!
//! TLS ≤ 1.2 sends the certificate chain in clear right after the ServerHello
//! (RFC 5246 §7.4.2), so a tap reads it without keys; TLS 1.3 sends it encrypted
//! (RFC 8446 §4.4.2), read when a key log opens the handshake, possibly compressed
//! (`CompressedCertificate`, RFC 8879). Only the first certificate, the server's own
//! (the leaf), is parsed, with `x509-parser`; the others are counted. A connection
//! without a server name in its ClientHello and without a DNS answer for its address is
//! then named by the certificate (see `tap::server_name`).
//!
//! Pure and bounded: the message body is given whole (the caller caps it), the text
//! fields are cut at [`MAX_TEXT`] bytes and at most [`MAX_NAMES`] names are kept.

use std::net::IpAddr;

use sha2::{Digest, Sha256};
use x509_parser::extensions::GeneralName;

use crate::decode::content::{self, Coding, Decoded};
use crate::exchange::ServerCertificate;
use crate::timestamp::Timestamp;

/// Handshake type of `Certificate` (RFC 8446 §4).
pub const CERTIFICATE: u8 = 11;
/// Handshake type of `CompressedCertificate` (RFC 8879 §4).
pub const COMPRESSED_CERTIFICATE: u8 = 25;
/// Most subject-alternative names kept (a CDN's certificate can list hundreds).
pub const MAX_NAMES: usize = 32;
/// Longest subject, issuer or name kept, in bytes; longer ones are cut and end in `…`.
pub const MAX_TEXT: usize = 512;
/// Largest certificate message read, compressed or not: a chain of several
/// certificates with large keys stays well under it.
pub const MAX_MESSAGE: usize = 64 << 10;

/// The server certificate in a `Certificate` message body; `tls13` selects RFC 8446's
/// layout (a request context first, extensions after each entry) over RFC 5246's.
/// `Ok(None)` for an empty list.
pub fn parse_certificate(body: &[u8], tls13: bool) -> Result<Option<ServerCertificate>, String> {
    let mut rest = body;
    if tls13 {
        // The request context: empty in a server's message, skipped whatever it holds.
        take_u8_len(&mut rest).ok_or("certificate request context cut short")?;
    }
    let list = take_u24_len(&mut rest).ok_or("certificate list length cut short")?;
    if !rest.is_empty() {
        return Err(format!("{} bytes after the certificate list", rest.len()));
    }
    let mut entries = list;
    let mut leaf: Option<&[u8]> = None;
    let mut chain = 0u32;
    while !entries.is_empty() {
        let der = take_u24_len(&mut entries)
            .ok_or_else(|| format!("certificate {} cut short", chain + 1))?;
        if tls13 {
            take_u16_len(&mut entries)
                .ok_or_else(|| format!("extensions of certificate {} cut short", chain + 1))?;
        }
        if der.is_empty() {
            return Err(format!("certificate {} is empty", chain + 1));
        }
        leaf.get_or_insert(der);
        chain = chain.saturating_add(1);
    }
    match leaf {
        Some(der) => leaf_certificate(der, chain).map(Some),
        None => Ok(None),
    }
}

/// The `Certificate` message inside a `CompressedCertificate` body (RFC 8879 §4):
/// zlib, brotli or zstd, at most [`MAX_MESSAGE`] bytes once decompressed.
pub fn decompress_certificate(body: &[u8]) -> Result<Vec<u8>, String> {
    let mut rest = body;
    let algorithm = take_u16(&mut rest).ok_or("compressed certificate cut short")?;
    let length = take_u24(&mut rest).ok_or("compressed certificate cut short")?;
    let compressed = take_u24_len(&mut rest).ok_or("compressed certificate cut short")?;
    if length > MAX_MESSAGE {
        return Err(format!(
            "compressed certificate of {length} bytes uncompressed"
        ));
    }
    let coding = match algorithm {
        1 => Coding::Deflate,
        2 => Coding::Brotli,
        3 => Coding::Zstd,
        other => return Err(format!("certificate compression algorithm {other}")),
    };
    // One byte over the announced length tells a message longer than announced.
    match content::decode(coding, compressed, length + 1) {
        Decoded::Complete(out) if out.len() == length => Ok(out),
        Decoded::Complete(out) | Decoded::Limited(out) => Err(format!(
            "compressed certificate: {} bytes where {length} were announced",
            out.len()
        )),
        Decoded::Failed { error, .. } => Err(format!("compressed certificate: {error}")),
        Decoded::Cut(_) => Err("compressed certificate: the stream is cut short".to_string()),
        Decoded::Starved { taken, .. } => Err(format!(
            "compressed certificate: {taken} compressed bytes decode to next to nothing"
        )),
        Decoded::Passthrough => Err(format!(
            "compressed certificate: not {} data",
            coding.name()
        )),
    }
}

/// The facts of the leaf certificate `der`, the first of `chain` (also the proxy's
/// upstream connections', from rustls).
pub fn leaf_certificate(der: &[u8], chain: u32) -> Result<ServerCertificate, String> {
    let (_, cert) = x509_parser::parse_x509_certificate(der)
        .map_err(|e| format!("certificate 1 of {chain}: not an X.509 certificate ({e})"))?;
    let mut names = Vec::new();
    // A malformed extension is left out, the rest of the certificate still read.
    if let Ok(Some(san)) = cert.subject_alternative_name() {
        for name in &san.value.general_names {
            if names.len() == MAX_NAMES {
                break;
            }
            match name {
                GeneralName::DNSName(dns) => names.push(cut(dns)),
                GeneralName::IPAddress(bytes) => {
                    if let Some(ip) = ip_of(bytes) {
                        names.push(ip.to_string());
                    }
                }
                _ => {}
            }
        }
    }
    let common_name = cert
        .subject()
        .iter_common_name()
        .next()
        .and_then(|cn| cn.as_str().ok())
        .map(cut);
    let validity = cert.validity();
    let host = names
        .iter()
        .find(|n| n.parse::<IpAddr>().is_err())
        .or(common_name.as_ref())
        .filter(|n| is_host_name(n))
        .map(|n| n.to_ascii_lowercase());
    Ok(ServerCertificate {
        subject: cut(&cert.subject().to_string()),
        issuer: cut(&cert.issuer().to_string()),
        names,
        not_before: seconds(validity.not_before.timestamp()),
        not_after: seconds(validity.not_after.timestamp()),
        serial: crate::source::hex(trim_zeros(cert.raw_serial())),
        sha256: crate::source::hex(&Sha256::digest(der)),
        chain,
        host,
    })
}

/// Whether `c` is valid for `host` by its subject alternative names (RFC 6125 as
/// browsers apply it: a DNS name equal but for case, or `*.` standing for exactly
/// one whole leftmost label; an address equal to an address name). The common name
/// is not read (browsers stopped in 2017); dates and the issuer are not judged.
pub fn names_host(c: &ServerCertificate, host: &str) -> bool {
    let bare = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .unwrap_or(host);
    if let Ok(address) = bare.parse::<IpAddr>() {
        return c.names.iter().any(|n| n.parse::<IpAddr>() == Ok(address));
    }
    let host = bare.strip_suffix('.').unwrap_or(bare);
    c.names.iter().any(|name| match name.strip_prefix("*.") {
        Some(domain) => host
            .split_once('.')
            .is_some_and(|(first, rest)| !first.is_empty() && rest.eq_ignore_ascii_case(domain)),
        None => name.eq_ignore_ascii_case(host),
    })
}

/// A name that can stand for a host: not an address, DNS labels of letters, digits,
/// `-` and `_`, at least two of them, the first maybe a wildcard (`*.example.com`).
fn is_host_name(name: &str) -> bool {
    let body = name.strip_prefix("*.").unwrap_or(name);
    body.parse::<IpAddr>().is_err()
        && body.contains('.')
        && crate::net::dns::is_host_name_text(body)
}

/// `text` cut to [`MAX_TEXT`] bytes at a character boundary, `…` marking a cut.
fn cut(text: &str) -> String {
    if text.len() <= MAX_TEXT {
        return text.to_string();
    }
    let mut end = MAX_TEXT;
    while !text.is_char_boundary(end) {
        end -= 1;
    }
    format!("{}…", &text[..end])
}

/// The serial number's bytes without the leading zeros DER adds to keep it positive
/// (one byte stays for a zero serial).
fn trim_zeros(bytes: &[u8]) -> &[u8] {
    let zeros = bytes.iter().take_while(|&&b| b == 0).count();
    bytes
        .get(zeros.min(bytes.len().saturating_sub(1))..)
        .unwrap_or(bytes)
}

fn ip_of(bytes: &[u8]) -> Option<IpAddr> {
    match bytes.len() {
        4 => <[u8; 4]>::try_from(bytes).ok().map(IpAddr::from),
        16 => <[u8; 16]>::try_from(bytes).ok().map(IpAddr::from),
        _ => None,
    }
}

/// Seconds since the epoch as a timestamp, when it is one (years 1 to 9999 are).
fn seconds(s: i64) -> Option<Timestamp> {
    s.checked_mul(1_000_000)
        .map(Timestamp)
        .filter(|t| t.rfc3339().is_some())
}

fn take<'a>(rest: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
    let (head, tail) = rest.split_at_checked(n)?;
    *rest = tail;
    Some(head)
}

fn take_u16(rest: &mut &[u8]) -> Option<usize> {
    let b = take(rest, 2)?;
    Some(usize::from(b[0]) << 8 | usize::from(b[1]))
}

fn take_u24(rest: &mut &[u8]) -> Option<usize> {
    let b = take(rest, 3)?;
    Some(usize::from(b[0]) << 16 | usize::from(b[1]) << 8 | usize::from(b[2]))
}

fn take_u8_len<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = usize::from(*take(rest, 1)?.first()?);
    take(rest, n)
}

fn take_u16_len<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = take_u16(rest)?;
    take(rest, n)
}

fn take_u24_len<'a>(rest: &mut &'a [u8]) -> Option<&'a [u8]> {
    let n = take_u24(rest)?;
    take(rest, n)
}

#[cfg(test)]
pub(crate) mod tests {
    use super::*;

    /// A self-signed certificate for `names` (the first also its common name).
    pub(crate) fn certificate(names: &[&str]) -> Vec<u8> {
        let mut params =
            rcgen::CertificateParams::new(names.iter().map(|n| n.to_string()).collect::<Vec<_>>())
                .expect("names");
        params.distinguished_name = rcgen::DistinguishedName::new();
        params
            .distinguished_name
            .push(rcgen::DnType::CommonName, names[0]);
        params
            .distinguished_name
            .push(rcgen::DnType::OrganizationName, "Example Ads Ltd");
        params.serial_number = Some(rcgen::SerialNumber::from_slice(&[0x00, 0x8a, 0x01]));
        params.not_before = rcgen::date_time_ymd(2026, 1, 2);
        params.not_after = rcgen::date_time_ymd(2027, 3, 4);
        let key = rcgen::KeyPair::generate().expect("key");
        params
            .self_signed(&key)
            .expect("certificate")
            .der()
            .to_vec()
    }

    fn u24(n: usize) -> [u8; 3] {
        [(n >> 16) as u8, (n >> 8) as u8, n as u8]
    }

    /// A TLS 1.2 Certificate message body holding `chain`.
    pub(crate) fn message12(chain: &[&[u8]]) -> Vec<u8> {
        let mut list = Vec::new();
        for der in chain {
            list.extend_from_slice(&u24(der.len()));
            list.extend_from_slice(der);
        }
        let mut body = u24(list.len()).to_vec();
        body.extend_from_slice(&list);
        body
    }

    /// A TLS 1.3 Certificate message body holding `chain`, each entry with an empty
    /// extension block but the first, which carries a 4-byte one.
    pub(crate) fn message13(chain: &[&[u8]]) -> Vec<u8> {
        let mut list = Vec::new();
        for (i, der) in chain.iter().enumerate() {
            list.extend_from_slice(&u24(der.len()));
            list.extend_from_slice(der);
            if i == 0 {
                list.extend_from_slice(&[0, 4, 0, 5, 0, 0]);
            } else {
                list.extend_from_slice(&[0, 0]);
            }
        }
        let mut body = vec![0];
        body.extend_from_slice(&u24(list.len()));
        body.extend_from_slice(&list);
        body
    }

    #[test]
    fn the_leaf_of_a_tls12_chain_is_read_and_the_chain_counted() {
        let leaf = certificate(&["ads.example.com", "*.ads.example.com", "203.0.113.9"]);
        let other = certificate(&["ca.example.org"]);
        let cert = parse_certificate(&message12(&[&leaf, &other]), false)
            .expect("parses")
            .expect("a certificate");
        assert_eq!(cert.subject, "CN=ads.example.com, O=Example Ads Ltd");
        assert_eq!(cert.issuer, cert.subject, "self-signed");
        assert_eq!(
            cert.names,
            ["ads.example.com", "*.ads.example.com", "203.0.113.9"]
        );
        assert_eq!(cert.host.as_deref(), Some("ads.example.com"));
        assert_eq!(cert.serial, "8a01", "DER's leading zero dropped");
        assert_eq!(cert.sha256, crate::source::hex(&Sha256::digest(&leaf)));
        assert_eq!(cert.chain, 2);
        let text =
            |t: Option<Timestamp>| t.and_then(|t| t.rfc3339()).map(|t| t.as_str().to_string());
        assert_eq!(
            text(cert.not_before).as_deref(),
            Some("2026-01-02T00:00:00.000000Z")
        );
        assert_eq!(
            text(cert.not_after).as_deref(),
            Some("2027-03-04T00:00:00.000000Z")
        );
    }

    #[test]
    fn tls13_layout_skips_the_context_and_each_entrys_extensions() {
        let leaf = certificate(&["cdn.example.net"]);
        let other = certificate(&["ca.example.org"]);
        let read = |body: &[u8], tls13| {
            parse_certificate(body, tls13)
                .expect("parses")
                .expect("one")
        };
        let cert = read(&message13(&[&leaf, &other]), true);
        assert_eq!(cert.chain, 2);
        assert_eq!(cert, read(&message12(&[&leaf, &other]), false));
        // Either layout read as the other fails, it does not misread.
        assert!(parse_certificate(&message13(&[&leaf]), false).is_err());
        assert!(parse_certificate(&message12(&[&leaf]), true).is_err());
    }

    #[test]
    fn a_wildcard_or_common_name_names_the_host_an_address_does_not() {
        let cert = |names: &[&str]| {
            parse_certificate(&message12(&[&certificate(names)]), false)
                .expect("parses")
                .expect("one")
        };
        assert_eq!(
            cert(&["*.Tracker.Example"]).host.as_deref(),
            Some("*.tracker.example")
        );
        assert_eq!(
            cert(&["192.0.2.1", "api.example.com"]).host.as_deref(),
            Some("api.example.com")
        );
        assert_eq!(cert(&["192.0.2.1"]).host, None, "only an address");
        assert_eq!(
            cert(&["localhost"]).host,
            None,
            "one label is no host name here"
        );
    }

    #[test]
    fn a_certificate_names_a_host_by_its_alternative_names() {
        let cert = |names: &[&str]| ServerCertificate {
            subject: "CN=ignored.example".into(),
            issuer: "CN=CA".into(),
            names: names.iter().map(|n| n.to_string()).collect(),
            not_before: None,
            not_after: None,
            serial: "01".into(),
            sha256: String::new(),
            chain: 1,
            host: None,
        };
        let c = cert(&[
            "Graph.Facebook.com",
            "*.fbcdn.net",
            "192.0.2.7",
            "2001:db8::1",
        ]);
        for host in ["graph.facebook.com", "GRAPH.facebook.com.", "a.fbcdn.net"] {
            assert!(names_host(&c, host), "{host}");
        }
        for address in ["192.0.2.7", "[2001:db8::1]", "2001:0db8::1"] {
            assert!(names_host(&c, address), "{address}");
        }
        for host in [
            "facebook.com",
            "fbcdn.net",
            "a.b.fbcdn.net",
            ".fbcdn.net",
            "xgraph.facebook.com",
            "192.0.2.8",
            "ignored.example",
            "",
        ] {
            assert!(!names_host(&c, host), "{host}");
        }
        assert!(
            !names_host(&cert(&[]), "ignored.example"),
            "the CN is not read"
        );
    }

    #[test]
    fn names_past_the_cap_are_dropped() {
        let many: Vec<String> = (0..MAX_NAMES + 5)
            .map(|i| format!("h{i}.example.com"))
            .collect();
        let refs: Vec<&str> = many.iter().map(String::as_str).collect();
        let cert = parse_certificate(&message12(&[&certificate(&refs)]), false)
            .expect("parses")
            .expect("one");
        assert_eq!(cert.names.len(), MAX_NAMES);
        assert_eq!(
            cert.names[MAX_NAMES - 1],
            format!("h{}.example.com", MAX_NAMES - 1)
        );
    }

    #[test]
    fn an_empty_list_is_no_certificate() {
        assert_eq!(parse_certificate(&[0, 0, 0], false), Ok(None));
        assert_eq!(parse_certificate(&[0, 0, 0, 0], true), Ok(None));
    }

    #[test]
    fn malformed_messages_say_what_is_wrong() {
        let leaf = certificate(&["ads.example.com"]);
        let whole = message12(&[&leaf]);
        let err = |body: &[u8]| parse_certificate(body, false).expect_err("malformed");
        assert_eq!(err(&[]), "certificate list length cut short");
        assert_eq!(
            err(&whole[..whole.len() - 1]),
            "certificate list length cut short"
        );
        let mut trailing = whole.clone();
        trailing.push(0);
        assert_eq!(err(&trailing), "1 bytes after the certificate list");
        assert_eq!(err(&[0, 0, 3, 0, 0, 0]), "certificate 1 is empty");
        assert_eq!(
            err(&[0, 0, 4, 0, 0, 1, 0x30]).split(" (").next(),
            Some("certificate 1 of 1: not an X.509 certificate")
        );
        assert_eq!(err(&[0, 0, 2, 0, 0]), "certificate 1 cut short");
    }

    #[test]
    fn compressed_certificates_are_inflated_within_their_announced_length() {
        let body = message13(&[&certificate(&["cdn.example.net"])]);
        let wrap = |algorithm: u16, compressed: &[u8], length: usize| {
            let mut m = algorithm.to_be_bytes().to_vec();
            m.extend_from_slice(&u24(length));
            m.extend_from_slice(&u24(compressed.len()));
            m.extend_from_slice(compressed);
            m
        };
        let zlib = crate::decode::content::tests::zlib(&body);
        let brotli = crate::decode::content::tests::brotli(&body);
        assert_eq!(
            decompress_certificate(&wrap(1, &zlib, body.len())),
            Ok(body.clone())
        );
        assert_eq!(
            decompress_certificate(&wrap(2, &brotli, body.len())),
            Ok(body.clone())
        );
        assert!(decompress_certificate(&wrap(2, &brotli, body.len() - 1))
            .expect_err("longer than announced")
            .contains("announced"));
        assert!(decompress_certificate(&wrap(1, &zlib, body.len() + 1)).is_err());
        assert_eq!(
            decompress_certificate(&wrap(9, &zlib, body.len())),
            Err("certificate compression algorithm 9".to_string())
        );
        assert!(decompress_certificate(&wrap(1, &zlib, MAX_MESSAGE + 1)).is_err());
        assert!(decompress_certificate(&[0, 1, 0]).is_err());
    }

    #[test]
    fn long_text_is_cut_at_a_character_boundary() {
        let long = "é".repeat(MAX_TEXT);
        let out = cut(&long);
        assert!(out.ends_with('…'));
        assert!(out.len() <= MAX_TEXT + '…'.len_utf8());
        assert_eq!(cut("short"), "short");
        assert_eq!(trim_zeros(&[0, 0]), &[0]);
        assert_eq!(trim_zeros(&[]), &[] as &[u8]);
    }
}
