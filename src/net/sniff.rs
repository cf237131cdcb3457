//! Which application protocol a TCP connection speaks, guessed from its first bytes,
//! not its port: HTTP on 8080 and TLS on 8443 are the rule in app traffic.
//!
//! The flow table calls [`sniff_client`] with the first in-order client bytes until it
//! answers something other than [`Sniff::NeedMore`], and hands the connection to the
//! matching parser (`http1`, `tls`, `dns`); when the server speaks first (or the
//! client's bytes were lost) [`sniff_server_with_ports`] looks at the server's, held
//! likewise until it answers.
//!
//! Signatures (all need at most 24 bytes):
//! - HTTP/1: a known method (RFC 9110, WebDAV, CONNECT …, see `http1::METHODS`)
//!   followed by a space; servers: `HTTP/1.`.
//! - HTTP/2 with prior knowledge: the client preface `PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n`
//!   (all 24 bytes); a server's first SETTINGS frame on stream 0.
//! - TLS: a handshake record (type 22, version 3.0–3.4, length 1..=2^14+2048) whose
//!   first handshake message is a ClientHello (servers: ServerHello, or an alert).
//! - SOCKS5: a client greeting (version 5, 1 to [`MAX_SOCKS_METHODS`] authentication
//!   methods, each one IANA assigns or a private one). Three bytes are a weak
//!   signature; the server's answers confirm it ([`super::socks::Handshake`]), and a
//!   connection they do not is searched as a protocol no parser reads.
//! - SOCKS4 and 4a: a request (version 4, `CONNECT` or `BIND`, a port and an address
//!   not zero, a printable user id), confirmed by the server's reply likewise.
//! - DNS over TCP: content alone is too weak (a 2-byte length and a 12-byte header fit
//!   many binary protocols), so it is only recognised when the caller's port hint says
//!   53 is involved ([`sniff_client_with_ports`]) and the bytes parse as a query
//!   header with a length prefix that fits. Any content signature wins over the port:
//!   HTTP on port 53 is HTTP. Port 853 is a hint too: DNS over TLS (RFC 7858) frames
//!   its plaintext as DNS over TCP does, so a key log that opens it yields DNS. From
//!   the server ([`sniff_server_with_ports`], same hint): a response header with its
//!   question, when the client's bytes were not captured.
//! - SSH: the identification string of either side, `SSH-2.0-` (or `SSH-1.99-`, a
//!   server that also speaks SSH 1; RFC 4253 §5.1). Encrypted after the key exchange,
//!   so nothing in it is searched: such a connection is one metadata exchange, not
//!   the parts of a protocol no parser reads.
//! - WireGuard, DTLS and STUN (UDP, [`encrypted_udp`]): a WireGuard handshake message
//!   (its type, 1 to 3, three zero bytes, and the length that type has), a DTLS
//!   1.0/1.2 record header whose length fits the datagram, or a STUN message (RFC
//!   8489: a message type with its two top bits clear, a length that is the rest of
//!   the datagram and a multiple of 4, the magic cookie `2112A442`). Encrypted, or
//!   (STUN) the start of a WebRTC flow whose DTLS and SRTP follow on the same ports:
//!   such a flow's later datagrams are not parts to search.
//! - QUIC (UDP, [`sniff_udp_client`]): a long-header client Initial packet of QUIC v1
//!   or v2 ([`quic::looks_like_initial`]); any port, 443 is not required. Decrypting
//!   the packet (which `quic` does next) is the real proof.

use super::http1::METHODS;
use super::quic;

/// Application protocols the tap can parse (or recognise).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AppProtocol {
    Http1,
    Http2PriorKnowledge,
    Tls,
    Dns,
    /// QUIC (over UDP): only its Initial packets are read, for the server name.
    Quic,
    /// A SOCKS5 client's greeting: the tunnel it opens carries the connection.
    Socks5,
    /// A SOCKS4 or 4a client's request: likewise.
    Socks4,
    /// SSH: recognised, not read (encrypted).
    Ssh,
    /// WireGuard (UDP): recognised, not read (encrypted).
    WireGuard,
    /// DTLS (UDP: WebRTC, some VPNs): recognised, not read (encrypted).
    Dtls,
    /// Google QUIC (UDP, before IETF QUIC): its CHLO's server name read, the rest
    /// encrypted ([`super::gquic`]).
    GQuic,
    /// STUN (UDP: ICE and TURN, which start WebRTC's media flows): recognised, not
    /// read; the DTLS and SRTP after it on the flow are encrypted.
    Stun,
    /// HTTP over UDP (HTTPU: SSDP's `M-SEARCH` and `NOTIFY`, UPnP's discovery): each
    /// client datagram one request ([`udp_http_request`]).
    Httpu,
    /// DHCP or DHCPv6 between a client and its server ([`dhcp_message`]): the
    /// operating system setting up its network, not an app: recognised, not searched.
    Dhcp,
    Unknown,
}

/// The verdict on a prefix.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Sniff {
    Known(AppProtocol),
    /// A signature may still match with more bytes.
    NeedMore,
    /// No signature can match.
    Unknown,
}

/// The HTTP/2 connection preface (RFC 9113 §3.4).
pub const H2_PREFACE: &[u8] = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
/// Largest TLS record fragment (2^14 plus the expansion RFC 8446 allows).
const MAX_RECORD: u16 = (1 << 14) + 2048;

/// Port conventionally used by DNS.
pub const DNS_PORT: u16 = 53;
/// Port of DNS over TLS (RFC 7858).
pub const DOT_PORT: u16 = 853;

/// Guesses from the client's first bytes, content only (never DNS; see the module doc).
pub fn sniff_client(prefix: &[u8]) -> Sniff {
    let mut verdicts = [
        http1_request(prefix),
        h2_preface(prefix),
        tls_record(prefix, &[1]),
        socks5_greeting(prefix),
        socks4_head(prefix),
        prefix_of(prefix, b"SSH-2.0-", AppProtocol::Ssh),
        prefix_of(prefix, b"SSH-1.99-", AppProtocol::Ssh),
    ];
    pick(&mut verdicts)
}

/// Like [`sniff_client`], with the connection's ports as a hint: when one is 53 (or
/// 853, whose decrypted plaintext is framed the same way), a DNS-over-TCP query is
/// also recognised.
pub fn sniff_client_with_ports(prefix: &[u8], src_port: u16, dst_port: u16) -> Sniff {
    with_dns_hint(sniff_client(prefix), (src_port, dst_port), || {
        dns_tcp_query(prefix)
    })
}

/// `content`, the verdict of the content signatures, unless it is not yet known and
/// a port is DNS's (53, or 853, whose decrypted plaintext is framed the same way):
/// then `dns` may tell DNS over TCP too.
fn with_dns_hint(content: Sniff, (a, b): (u16, u16), dns: impl FnOnce() -> Sniff) -> Sniff {
    let dns_port = |p: u16| p == DNS_PORT || p == DOT_PORT;
    if matches!(content, Sniff::Known(_)) || !(dns_port(a) || dns_port(b)) {
        return content;
    }
    pick(&mut [content, dns()])
}

/// Like [`sniff_server`], with the connection's ports as a hint: when one is 53 or
/// 853, a DNS-over-TCP response is also recognised (a capture that holds only the
/// resolver's side of the connection, or lost the query).
pub fn sniff_server_with_ports(prefix: &[u8], src_port: u16, dst_port: u16) -> Sniff {
    with_dns_hint(sniff_server(prefix), (src_port, dst_port), || {
        dns_tcp_response(prefix)
    })
}

/// Guesses from the server's first bytes (a server that speaks first, or the client
/// side was not seen).
pub fn sniff_server(prefix: &[u8]) -> Sniff {
    let mut verdicts = [
        prefix_of(prefix, b"HTTP/1.", AppProtocol::Http1),
        tls_record(prefix, &[2]),
        tls_alert(prefix),
        h2_settings(prefix),
        prefix_of(prefix, b"SSH-2.0-", AppProtocol::Ssh),
        prefix_of(prefix, b"SSH-1.99-", AppProtocol::Ssh),
    ];
    pick(&mut verdicts)
}

/// Guesses from a UDP flow's first client datagram: QUIC or nothing (DNS is told by
/// its port; see the flow table).
pub fn sniff_udp_client(datagram: &[u8]) -> Sniff {
    if quic::looks_like_initial(datagram) {
        Sniff::Known(AppProtocol::Quic)
    } else {
        Sniff::Unknown
    }
}

/// BOOTP's ports (RFC 951): DHCP clients send from 68 to 67.
const DHCP_CLIENT_PORT: u16 = 68;
pub const DHCP_SERVER_PORT: u16 = 67;
/// DHCPv6's ports (RFC 8415 §7.2): clients send from 546 to 547.
const DHCPV6_CLIENT_PORT: u16 = 546;
pub const DHCPV6_SERVER_PORT: u16 = 547;
/// DHCP's magic cookie (RFC 2131 §3), after BOOTP's 236 fixed bytes.
const DHCP_MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];

/// Whether a UDP datagram from `src_port` to `dst_port` is a DHCP message between a
/// client and its server: a BOOTREQUEST with DHCP's magic cookie from port 68 to 67
/// or a BOOTREPLY from 67 to 68, or a DHCPv6 message a client sends (Solicit,
/// Request, Confirm, Renew, Rebind, Release, Decline, Information-request) from port
/// 546 to 547 or one a server sends (Advertise, Reply, Reconfigure) from 547 to 546.
/// All are the operating system's, not an app's: the host name a phone puts in one
/// (Android 7 and earlier sent `android-<Android ID>`), or a computer sharing its
/// connection puts in its replies, is the system's disclosure to the local network.
pub fn dhcp_message(datagram: &[u8], src_port: u16, dst_port: u16) -> bool {
    let bootp = |op: u8| {
        datagram.first() == Some(&op) && datagram.get(236..240) == Some(&DHCP_MAGIC_COOKIE)
    };
    let dhcpv6 = |types: &[u8]| datagram.len() >= 4 && types.contains(&datagram[0]);
    match (src_port, dst_port) {
        (DHCP_CLIENT_PORT, DHCP_SERVER_PORT) => bootp(1),
        (DHCP_SERVER_PORT, DHCP_CLIENT_PORT) => bootp(2),
        (DHCPV6_CLIENT_PORT, DHCPV6_SERVER_PORT) => dhcpv6(&[1, 3, 4, 5, 6, 8, 9, 11]),
        (DHCPV6_SERVER_PORT, DHCPV6_CLIENT_PORT) => dhcpv6(&[2, 7, 10]),
        _ => false,
    }
}

/// Longest first line of an HTTPU request looked at ([`udp_http_request`]).
const MAX_HTTPU_LINE: usize = 2048;

/// Whether a UDP datagram starts with a whole HTTP/1.x request line
/// (`METHOD SP target SP HTTP/1.d` and its line end), as SSDP's discovery messages
/// and other HTTPU do. Stricter than [`sniff_client`]'s prefix test, as a datagram
/// holds its whole message: no other protocol is taken for HTTP by its first word.
pub fn udp_http_request(datagram: &[u8]) -> bool {
    if http1_request(datagram) != Sniff::Known(AppProtocol::Http1) {
        return false;
    }
    let window = &datagram[..datagram.len().min(MAX_HTTPU_LINE)];
    let Some(end) = window.iter().position(|&b| b == b'\n') else {
        return false;
    };
    let line = window[..end].strip_suffix(b"\r").unwrap_or(&window[..end]);
    let mut words = line.split(|&b| b == b' ');
    match (words.next(), words.next(), words.next(), words.next()) {
        (Some(_), Some(target), Some(version), None) => {
            !target.is_empty()
                && target.iter().all(|&b| b > b' ' && b != 0x7f)
                && version.len() == 8
                && version.starts_with(b"HTTP/1.")
                && version[7].is_ascii_digit()
        }
        _ => false,
    }
}

/// STUN's magic cookie (RFC 8489 §5).
const STUN_MAGIC_COOKIE: [u8; 4] = [0x21, 0x12, 0xa4, 0x42];

/// A UDP flow's first datagram (from either side) in a protocol whose later
/// datagrams cannot be searched: WireGuard or DTLS (encrypted), or STUN (WebRTC's
/// encrypted media follows it).
pub fn encrypted_udp(datagram: &[u8]) -> Option<AppProtocol> {
    match *datagram {
        // STUN: the message type's two top bits clear, the length of what follows the
        // 20-byte header (attributes are padded to 4 bytes), the magic cookie.
        [t, _, hi, lo, c0, c1, c2, c3, ..]
            if t & 0xc0 == 0 && [c0, c1, c2, c3] == STUN_MAGIC_COOKIE =>
        {
            let len = usize::from(u16::from_be_bytes([hi, lo]));
            (len % 4 == 0 && 20 + len == datagram.len()).then_some(AppProtocol::Stun)
        }
        // WireGuard: a handshake initiation, response or cookie reply, each of its
        // fixed length. Not transport data (type 4, any multiple of 16): a flow
        // picked up mid-stream is not told, rather than taking for WireGuard any
        // protocol that starts with a little-endian 4.
        [kind @ 1..=3, 0, 0, 0, ..] => {
            let length = [148, 92, 64][usize::from(kind - 1)];
            (datagram.len() == length).then_some(AppProtocol::WireGuard)
        }
        // DTLS record: content type, version, epoch, sequence number, length.
        [20..=25, 0xfe, 0xff | 0xfd, _, _, _, _, _, _, _, _, hi, lo, ..] => {
            let fits = 13 + usize::from(u16::from_be_bytes([hi, lo])) <= datagram.len();
            fits.then_some(AppProtocol::Dtls)
        }
        _ => None,
    }
}

/// Known beats NeedMore beats Unknown.
fn pick(v: &mut [Sniff]) -> Sniff {
    if let Some(k) = v.iter().find(|s| matches!(s, Sniff::Known(_))) {
        return *k;
    }
    if v.contains(&Sniff::NeedMore) {
        Sniff::NeedMore
    } else {
        Sniff::Unknown
    }
}

/// `sig` fully present → Known; `prefix` a proper prefix of it → NeedMore.
fn prefix_of(prefix: &[u8], sig: &[u8], p: AppProtocol) -> Sniff {
    if prefix.starts_with(sig) {
        Sniff::Known(p)
    } else if sig.starts_with(prefix) {
        Sniff::NeedMore
    } else {
        Sniff::Unknown
    }
}

fn http1_request(prefix: &[u8]) -> Sniff {
    let mut best = Sniff::Unknown;
    for verdict in METHODS.iter().map(|m| {
        let n = m.len();
        match prefix.get(..n) {
            Some(head) if head == m.as_bytes() => match prefix.get(n) {
                Some(b' ') => Sniff::Known(AppProtocol::Http1),
                Some(_) => Sniff::Unknown,
                None => Sniff::NeedMore,
            },
            Some(_) => Sniff::Unknown,
            None if m.as_bytes().starts_with(prefix) => Sniff::NeedMore,
            None => Sniff::Unknown,
        }
    }) {
        best = pick(&mut [best, verdict]);
    }
    best
}

/// Most authentication methods a SOCKS5 greeting is taken to offer (clients offer
/// one to three; IANA has assigned ten).
pub const MAX_SOCKS_METHODS: u8 = 10;

/// A SOCKS4 or 4a request ([`super::socks::socks4_request`]): known from its 8-byte
/// head and the first byte of its user id (or its end), the server's answer
/// confirming it ([`super::socks::Handshake`]).
fn socks4_head(prefix: &[u8]) -> Sniff {
    use super::socks::{self, Parsed};
    match socks::socks4_request(prefix) {
        Parsed::Done(..) => Sniff::Known(AppProtocol::Socks4),
        Parsed::Incomplete if prefix.len() > 8 => Sniff::Known(AppProtocol::Socks4),
        Parsed::Incomplete => Sniff::NeedMore,
        Parsed::Invalid(_) => Sniff::Unknown,
    }
}

/// A SOCKS5 greeting: version 5, then 1 to [`MAX_SOCKS_METHODS`] methods, each an
/// assigned one (0–9) or a private one (0x80–0xFE).
fn socks5_greeting(prefix: &[u8]) -> Sniff {
    let valid = |m: &u8| *m <= 9 || (0x80..=0xFE).contains(m);
    match prefix {
        [] | [5] => Sniff::NeedMore,
        [5, n, methods @ ..] if (1..=MAX_SOCKS_METHODS).contains(n) => {
            let n = usize::from(*n);
            match methods.get(..n) {
                Some(all) if all.iter().all(valid) => Sniff::Known(AppProtocol::Socks5),
                Some(_) => Sniff::Unknown,
                None if methods.iter().all(valid) => Sniff::NeedMore,
                None => Sniff::Unknown,
            }
        }
        _ => Sniff::Unknown,
    }
}

fn h2_preface(prefix: &[u8]) -> Sniff {
    prefix_of(prefix, H2_PREFACE, AppProtocol::Http2PriorKnowledge)
}

/// A handshake record whose first message type is one of `types`.
fn tls_record(prefix: &[u8], types: &[u8]) -> Sniff {
    match prefix.first() {
        None => return Sniff::NeedMore,
        Some(22) => {}
        Some(_) => return Sniff::Unknown,
    }
    match prefix.get(1) {
        None => return Sniff::NeedMore,
        Some(3) => {}
        Some(_) => return Sniff::Unknown,
    }
    match prefix.get(2) {
        None => return Sniff::NeedMore,
        Some(0..=4) => {}
        Some(_) => return Sniff::Unknown,
    }
    let (Some(&hi), Some(&lo)) = (prefix.get(3), prefix.get(4)) else {
        return Sniff::NeedMore;
    };
    let len = u16::from_be_bytes([hi, lo]);
    if len == 0 || len > MAX_RECORD {
        return Sniff::Unknown;
    }
    match prefix.get(5) {
        None => Sniff::NeedMore,
        Some(t) if types.contains(t) => Sniff::Known(AppProtocol::Tls),
        Some(_) => Sniff::Unknown,
    }
}

/// A server rejecting the handshake straight away: an alert record of 2 bytes.
fn tls_alert(prefix: &[u8]) -> Sniff {
    let sig = [21u8, 3];
    match prefix.get(..2) {
        None => {
            return if sig.starts_with(prefix) {
                Sniff::NeedMore
            } else {
                Sniff::Unknown
            }
        }
        Some(h) if h != sig => return Sniff::Unknown,
        _ => {}
    }
    match prefix.get(2..5) {
        None => Sniff::NeedMore,
        Some([minor, 0, 2]) if *minor <= 4 => Sniff::Known(AppProtocol::Tls),
        Some(_) => Sniff::Unknown,
    }
}

/// A SETTINGS frame on stream 0 without flags, its length a multiple of 6 (RFC 9113
/// §6.5): what an HTTP/2 server sends first.
fn h2_settings(prefix: &[u8]) -> Sniff {
    let Some(h) = prefix.get(..9) else {
        // Decide early when what is there already rules it out.
        let ok = match prefix {
            [] | [_] | [_, _] => true,
            [_, _, _, rest @ ..] => {
                rest.first().is_none_or(|&t| t == 4) && rest.iter().skip(1).all(|&b| b == 0)
            }
        };
        return if ok { Sniff::NeedMore } else { Sniff::Unknown };
    };
    let len = u32::from_be_bytes([0, h[0], h[1], h[2]]);
    if h[3] == 4 && h[4] == 0 && h[5..9] == [0, 0, 0, 0] && len.is_multiple_of(6) && len <= 16_384 {
        Sniff::Known(AppProtocol::Http2PriorKnowledge)
    } else {
        Sniff::Unknown
    }
}

/// A length-prefixed DNS query: QR = 0, opcode 0 (query), Z bit clear; 1 question,
/// 0 answers, 0 authority, at most 2 additional records (EDNS, a cookie or TSIG).
fn dns_tcp_query(prefix: &[u8]) -> Sniff {
    dns_tcp_header(prefix, |flags, count| {
        flags & 0xf840 == 0 && count(6) == 1 && count(8) == 0 && count(10) == 0 && count(12) <= 2
    })
}

/// A length-prefixed DNS response to a query: QR = 1, opcode 0, Z bit clear; the
/// question repeated (RFC 1035 §4.1.1: servers copy it), any number of records.
fn dns_tcp_response(prefix: &[u8]) -> Sniff {
    dns_tcp_header(prefix, |flags, count| {
        flags & 0xf840 == 0x8000 && count(6) == 1
    })
}

/// The verdict of `fits` on the header of a length-prefixed DNS message (RFC 1035
/// §4.2.2) long enough to hold a question (12 bytes of header, a name of at least
/// one byte, type and class).
fn dns_tcp_header(prefix: &[u8], fits: impl Fn(u16, &dyn Fn(usize) -> u16) -> bool) -> Sniff {
    let Some(h) = prefix.get(..14) else {
        return Sniff::NeedMore;
    };
    let len = u16::from_be_bytes([h[0], h[1]]);
    let flags = u16::from_be_bytes([h[4], h[5]]);
    let count = |i: usize| u16::from_be_bytes([h[i], h[i + 1]]);
    if len >= 17 && fits(flags, &count) {
        Sniff::Known(AppProtocol::Dns)
    } else {
        Sniff::Unknown
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every proper prefix of a recognised input answers NeedMore (or already Known).
    fn check_prefixes(input: &[u8], f: impl Fn(&[u8]) -> Sniff, want: AppProtocol) {
        assert_eq!(f(input), Sniff::Known(want), "{input:?}");
        let mut known = false;
        for n in 0..input.len() {
            match f(&input[..n]) {
                Sniff::Known(p) => {
                    assert_eq!(p, want);
                    known = true;
                }
                Sniff::NeedMore => assert!(!known, "NeedMore after Known at {n}"),
                Sniff::Unknown => panic!("prefix of {n} bytes of {input:?} called Unknown"),
            }
        }
    }

    #[test]
    fn http_methods() {
        for m in [
            "GET /",
            "POST /x",
            "PROPFIND /dav",
            "CONNECT a:443",
            "M-SEARCH *",
            "OPTIONS *",
            "PATCH /",
        ] {
            check_prefixes(m.as_bytes(), sniff_client, AppProtocol::Http1);
        }
        assert_eq!(sniff_client(b"GETX /"), Sniff::Unknown);
        assert_eq!(sniff_client(b"get /"), Sniff::Unknown);
        assert_eq!(sniff_client(b""), Sniff::NeedMore);
    }

    #[test]
    fn ssh_by_either_sides_identification() {
        for id in [
            &b"SSH-2.0-OpenSSH_9.2p1\r\n"[..],
            b"SSH-1.99-Cisco-1.25\r\n",
        ] {
            check_prefixes(id, sniff_client, AppProtocol::Ssh);
            check_prefixes(id, sniff_server, AppProtocol::Ssh);
        }
        assert_eq!(sniff_client(b"SSH-1.5-old"), Sniff::Unknown);
        assert_eq!(sniff_client(b"SSH-2.1-"), Sniff::Unknown);
    }

    #[test]
    fn h2_preface_and_server_settings() {
        check_prefixes(H2_PREFACE, sniff_client, AppProtocol::Http2PriorKnowledge);
        assert_eq!(sniff_client(b"PRI * HTTP/2.1"), Sniff::Unknown);
        check_prefixes(
            b"\x00\x00\x12\x04\x00\x00\x00\x00\x00",
            sniff_server,
            AppProtocol::Http2PriorKnowledge,
        );
        assert_eq!(
            sniff_server(b"\x00\x00\x13\x04\x00\x00\x00\x00\x00"),
            Sniff::Unknown
        );
    }

    #[test]
    fn tls_client_and_server() {
        check_prefixes(b"\x16\x03\x01\x02\x00\x01", sniff_client, AppProtocol::Tls);
        assert_eq!(
            sniff_client(b"\x16\x03\x01\x02\x00\x02"),
            Sniff::Unknown,
            "ServerHello from a client"
        );
        assert_eq!(
            sniff_client(b"\x16\x03\x01\x7f\xff\x01"),
            Sniff::Unknown,
            "record too long"
        );
        assert_eq!(sniff_client(b"\x16\x02"), Sniff::Unknown);
        check_prefixes(b"\x16\x03\x03\x00\x7a\x02", sniff_server, AppProtocol::Tls);
        check_prefixes(b"\x15\x03\x03\x00\x02", sniff_server, AppProtocol::Tls);
        check_prefixes(b"HTTP/1.1 200 OK", sniff_server, AppProtocol::Http1);
        assert_eq!(sniff_server(b"HTTP/2"), Sniff::Unknown);
        assert_eq!(sniff_server(b"220 smtp.example.com ESMTP"), Sniff::Unknown);
    }

    #[test]
    fn socks5_greetings() {
        // curl (none and user/password), Chromium (none), a private method.
        for g in [&b"\x05\x02\x00\x02"[..], b"\x05\x01\x00", b"\x05\x01\x80"] {
            check_prefixes(g, sniff_client, AppProtocol::Socks5);
        }
        assert_eq!(sniff_client(b"\x05\x00"), Sniff::Unknown, "no method");
        assert_eq!(
            sniff_client(b"\x05\x0b"),
            Sniff::Unknown,
            "too many methods"
        );
        assert_eq!(
            sniff_client(b"\x05\x02\x00\x20"),
            Sniff::Unknown,
            "unassigned"
        );
        assert_eq!(
            sniff_client(b"\x05\x01\xff"),
            Sniff::Unknown,
            "the refusal code"
        );
    }

    #[test]
    fn socks4_requests() {
        // curl's SOCKS4a request: CONNECT, port 80, 0.0.0.1, an empty user id, a name.
        let request = b"\x04\x01\x00\x50\x00\x00\x00\x01\x00sdk.open.getui.net\x00";
        for n in 1..=8 {
            assert_eq!(sniff_client(&request[..n]), Sniff::NeedMore, "{n}");
        }
        for n in 9..=request.len() {
            assert_eq!(
                sniff_client(&request[..n]),
                Sniff::Known(AppProtocol::Socks4),
                "{n}"
            );
        }
        assert_eq!(
            sniff_client(b"\x04\x01\x00\x00\x0a\x00\x00\x01"),
            Sniff::Unknown,
            "port 0"
        );
        assert_eq!(sniff_client(b"\x04\x09\x00\x50"), Sniff::Unknown, "command");
        assert_eq!(
            sniff_client(b"\x04\x01\x00\x50\x0a\x00\x00\x01\xff"),
            Sniff::Unknown,
            "a user id that is not text"
        );
    }

    fn dns_query() -> Vec<u8> {
        let mut q = vec![0x12, 0x34, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0];
        q.extend_from_slice(b"\x07example\x03com\x00\x00\x01\x00\x01");
        [&(q.len() as u16).to_be_bytes()[..], &q].concat()
    }

    #[test]
    fn dhcp_clients_and_servers_by_ports_and_content() {
        let mut request = vec![0u8; 240];
        request[0] = 1; // BOOTREQUEST
        request[236..240].copy_from_slice(&DHCP_MAGIC_COOKIE);
        assert!(dhcp_message(&request, 68, 67));
        // A reply, another port, no cookie, a cut message: not a client's DHCP.
        let mut reply = request.clone();
        reply[0] = 2;
        assert!(!dhcp_message(&reply, 68, 67));
        assert!(!dhcp_message(&request, 40_000, 67));
        assert!(!dhcp_message(&request[..239], 68, 67));
        let mut bootp = request.clone();
        bootp[236] = 0;
        assert!(!dhcp_message(&bootp, 68, 67));
        // DHCPv6: a Solicit (1) with its transaction id; an Advertise (2) is a
        // server's.
        assert!(dhcp_message(&[1, 0xaa, 0xbb, 0xcc], 546, 547));
        assert!(!dhcp_message(&[2, 0xaa, 0xbb, 0xcc], 546, 547));
        assert!(!dhcp_message(&[1, 0xaa], 546, 547));
        assert!(!dhcp_message(&[1, 0xaa, 0xbb, 0xcc], 547, 546));
        // A server's answers, each its way: a BOOTREPLY from 67 to 68, a DHCPv6
        // Advertise or Reply from 547 to 546; not the other way round.
        assert!(dhcp_message(&reply, 67, 68));
        assert!(!dhcp_message(&request, 67, 68));
        assert!(!dhcp_message(&reply, 67, 67));
        assert!(dhcp_message(&[2, 0xaa, 0xbb, 0xcc], 547, 546));
        assert!(dhcp_message(&[7, 0xaa, 0xbb, 0xcc], 547, 546));
        assert!(!dhcp_message(&[7, 0xaa], 547, 546));
    }

    #[test]
    fn dns_needs_the_port_hint() {
        let q = dns_query();
        assert_eq!(sniff_client(&q), Sniff::Unknown);
        assert_eq!(sniff_client_with_ports(&q, 40_000, 8053), Sniff::Unknown);
        check_prefixes(
            &q,
            |p| sniff_client_with_ports(p, 40_000, 53),
            AppProtocol::Dns,
        );
        // DNS over TLS's plaintext (port 853) is framed the same way.
        assert_eq!(
            sniff_client_with_ports(&q, 40_000, DOT_PORT),
            Sniff::Known(AppProtocol::Dns)
        );
        // Content wins over the port.
        assert_eq!(
            sniff_client_with_ports(b"GET / HTTP/1.1", 40_000, 53),
            Sniff::Known(AppProtocol::Http1)
        );
        // A response (QR set) from the client is not a query.
        let mut r = q.clone();
        r[4] |= 0x80;
        assert_eq!(sniff_client_with_ports(&r, 40_000, 53), Sniff::Unknown);
    }

    #[test]
    fn dns_responses_from_the_server_need_the_port_hint() {
        // The query's answer: QR set, one answer record (a pointer to the question's
        // name, A, IN, TTL, 4 bytes of address).
        let mut r = dns_query()[2..].to_vec();
        r[2] = 0x81;
        r[3] = 0x80;
        r[7] = 1;
        r.extend_from_slice(&[
            0xc0, 0x0c, 0, 1, 0, 1, 0, 0, 0x0e, 0x10, 0, 4, 93, 184, 216, 34,
        ]);
        let r = [&(r.len() as u16).to_be_bytes()[..], &r].concat();
        assert_eq!(sniff_server(&r), Sniff::Unknown);
        assert_eq!(sniff_server_with_ports(&r, 8053, 40_000), Sniff::Unknown);
        check_prefixes(
            &r,
            |p| sniff_server_with_ports(p, 53, 40_000),
            AppProtocol::Dns,
        );
        assert_eq!(
            sniff_server_with_ports(&r, DOT_PORT, 40_000),
            Sniff::Known(AppProtocol::Dns)
        );
        // A server's content signature wins over the port.
        assert_eq!(
            sniff_server_with_ports(b"HTTP/1.1 200 OK\r\n", 53, 40_000),
            Sniff::Known(AppProtocol::Http1)
        );
        // A query from the server's side, a response without its question, and
        // another opcode (NOTIFY) are not answers to read.
        assert_eq!(
            sniff_server_with_ports(&dns_query(), 53, 40_000),
            Sniff::Unknown
        );
        let mut bare = r.clone();
        bare[7] = 0;
        assert_eq!(sniff_server_with_ports(&bare, 53, 40_000), Sniff::Unknown);
        let mut notify = r.clone();
        notify[4] |= 4 << 3;
        assert_eq!(sniff_server_with_ports(&notify, 53, 40_000), Sniff::Unknown);
    }

    #[test]
    fn quic_initials_by_content() {
        let hello = crate::net::quic::tests::client_hello("q.example", &["h3"], 0);
        let frames = crate::net::quic::tests::crypto_frame(0, &hello);
        for version in [quic::QUIC_V1, quic::QUIC_V2] {
            let p = crate::net::quic::tests::protect_initial(
                version,
                &[1; 8],
                &[],
                0,
                1,
                &frames,
                1162,
            );
            assert_eq!(sniff_udp_client(&p), Sniff::Known(AppProtocol::Quic));
        }
        assert_eq!(sniff_udp_client(b"\x40short header"), Sniff::Unknown);
        assert_eq!(sniff_udp_client(&dns_query()), Sniff::Unknown);
        assert_eq!(sniff_udp_client(b""), Sniff::Unknown);
    }

    #[test]
    fn httpu_requests_by_their_whole_request_line() {
        for ok in [
            &b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\n\r\n"[..],
            b"NOTIFY * HTTP/1.1\r\n\r\n",
            b"GET /desc.xml HTTP/1.0\n\n",
        ] {
            assert!(udp_http_request(ok), "{:?}", String::from_utf8_lossy(ok));
        }
        for not in [
            &b"M-SEARCH * HTTP/1.1"[..],                 // no line end
            b"M-SEARCH *\r\n\r\n",                       // no version
            b"M-SEARCH  * HTTP/1.1\r\n",                 // two spaces
            b"M-SEARCH * HTTP/2.0\r\n",                  // not HTTP/1.x
            b"M-SEARCH * HTTP/1.1 x\r\n",                // a fourth word
            b"FETCH * HTTP/1.1\r\n",                     // no such method
            b"GET \x01 HTTP/1.1\r\n",                    // a control in the target
            b"\x16\x03\x01\x00\x05\x01\x00\x00\x01\x00", // TLS
            b"",
        ] {
            assert!(!udp_http_request(not), "{:?}", String::from_utf8_lossy(not));
        }
        // The line end must come within the first 2 KiB.
        let mut long = b"GET /".to_vec();
        long.resize(MAX_HTTPU_LINE + 10, b'a');
        long.extend_from_slice(b" HTTP/1.1\r\n\r\n");
        assert!(!udp_http_request(&long));
    }

    #[test]
    fn wireguard_and_dtls_by_their_headers() {
        let wg = |kind: u8, len: usize| {
            let mut m = vec![0u8; len];
            m[0] = kind;
            m[4..].fill(0xa5);
            m
        };
        for (kind, len) in [(1, 148), (2, 92), (3, 64)] {
            assert_eq!(
                encrypted_udp(&wg(kind, len)),
                Some(AppProtocol::WireGuard),
                "{kind} {len}"
            );
        }
        // Transport data is not told (a flow picked up mid-stream).
        for (kind, len) in [(1, 149), (2, 148), (4, 32), (4, 1440), (5, 148)] {
            assert_eq!(encrypted_udp(&wg(kind, len)), None, "{kind} {len}");
        }
        let mut initiation = wg(1, 148);
        initiation[2] = 1;
        assert_eq!(encrypted_udp(&initiation), None, "reserved bytes are zero");
        // A DTLS 1.2 ClientHello record of 120 bytes, and one claiming more than it has.
        let mut dtls = vec![22, 0xfe, 0xfd, 0, 0, 0, 0, 0, 0, 0, 0, 0, 120];
        dtls.resize(13 + 120, 1);
        assert_eq!(encrypted_udp(&dtls), Some(AppProtocol::Dtls));
        dtls[0] = 23;
        assert_eq!(encrypted_udp(&dtls), Some(AppProtocol::Dtls));
        dtls[12] = 121;
        assert_eq!(encrypted_udp(&dtls), None);
        assert_eq!(encrypted_udp(b"report|v=2|oaid=a1b2"), None);
        assert_eq!(encrypted_udp(&[]), None);
    }

    #[test]
    fn stun_by_its_magic_cookie_and_length() {
        // A Binding request with one 8-byte attribute (a USERNAME of ICE).
        let mut binding = vec![0x00, 0x01, 0x00, 0x0c, 0x21, 0x12, 0xa4, 0x42];
        binding.extend([0x5a; 12]); // transaction id
        binding.extend([0x00, 0x06, 0x00, 0x08]);
        binding.extend(b"ufr:peer");
        assert_eq!(encrypted_udp(&binding), Some(AppProtocol::Stun));
        // A Binding success response without attributes.
        let mut response = vec![0x01, 0x01, 0x00, 0x00, 0x21, 0x12, 0xa4, 0x42];
        response.extend([0x33; 12]);
        assert_eq!(encrypted_udp(&response), Some(AppProtocol::Stun));
        let mut wrong_length = binding.clone();
        wrong_length[3] = 0x10;
        assert_eq!(encrypted_udp(&wrong_length), None, "a length past the end");
        let mut unpadded = response.clone();
        unpadded[3] = 2;
        unpadded.extend([0, 0]);
        assert_eq!(encrypted_udp(&unpadded), None, "not a multiple of 4");
        let mut cookie = binding.clone();
        cookie[7] = 0x43;
        assert_eq!(encrypted_udp(&cookie), None, "no magic cookie");
        let mut channel_data = binding.clone();
        channel_data[0] = 0x40;
        assert_eq!(
            encrypted_udp(&channel_data),
            None,
            "TURN ChannelData is not a message"
        );
    }
}
