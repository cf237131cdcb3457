//! SOCKS5 (RFC 1928) with user name and password authentication (RFC 1929), sans
//! I/O, three ways: as a client of the proxy speaks it (the messages parsed from the
//! bytes read so far, and the answers to them; `proxy::serve` reads and writes), as
//! the proxy speaks to an upstream SOCKS5 proxy (`--upstream-proxy socks5://`: the
//! requests, and the answers read; `proxy::upstream` reads and writes), and as the
//! pcap tap watches a handshake from the side ([`Handshake`]: both directions, until
//! the tunnel opens and what it carries is read as a connection of its own). The tap
//! watches SOCKS4 and SOCKS4a handshakes too ([`socks4_request`]).
//!
//! Only `CONNECT` is served (a SOCKS5 `CONNECT` becomes the same tunnel as an HTTP
//! `CONNECT`); `BIND` and `UDP ASSOCIATE` get "command not supported". SOCKS4 and 4a
//! clients get SOCKS4's refusal ([`SOCKS4_REFUSAL`]): they cannot give a password,
//! so the proxy could not check them as it checks others.

use std::net::{Ipv4Addr, Ipv6Addr};

/// The first byte of every SOCKS5 client message but the credentials.
pub const VERSION: u8 = 5;
/// Authentication methods (RFC 1928 §3).
pub const NO_AUTHENTICATION: u8 = 0x00;
pub const USER_PASSWORD: u8 = 0x02;
pub const NO_ACCEPTABLE_METHOD: u8 = 0xFF;
/// Reply codes (RFC 1928 §6).
pub const SUCCEEDED: u8 = 0x00;
pub const NOT_ALLOWED: u8 = 0x02;
pub const COMMAND_NOT_SUPPORTED: u8 = 0x07;
pub const ADDRESS_TYPE_NOT_SUPPORTED: u8 = 0x08;

const CMD_CONNECT: u8 = 1;
const ATYP_IPV4: u8 = 1;
const ATYP_DOMAIN: u8 = 3;
const ATYP_IPV6: u8 = 4;
/// The first byte of a SOCKS4 or 4a request.
pub const SOCKS4_VERSION: u8 = 4;
/// SOCKS4's answer "request rejected or failed" (reply version 0, code 91).
pub const SOCKS4_REFUSAL: [u8; 8] = [0, 91, 0, 0, 0, 0, 0, 0];
/// SOCKS4's `CONNECT` command and its reply "request granted".
const SOCKS4_CONNECT: u8 = 1;
const SOCKS4_GRANTED: u8 = 90;
/// Longest user id, and SOCKS4a host name, a SOCKS4 request is taken to have.
pub const MAX_SOCKS4_FIELD: usize = 255;
/// RFC 1929's sub-negotiation version.
const AUTH_VERSION: u8 = 1;

/// What the bytes read so far hold.
#[derive(Debug, PartialEq, Eq)]
pub enum Parsed<T> {
    /// A message not complete yet: read more.
    Incomplete,
    /// A message, and its length.
    Done(T, usize),
    /// Not a valid message: why (the connection is closed).
    Invalid(&'static str),
}

/// The client's greeting: the authentication methods it offers.
pub fn greeting(p: &[u8]) -> Parsed<Vec<u8>> {
    let [version, count, ..] = *p else {
        return Parsed::Incomplete;
    };
    if version != VERSION {
        return Parsed::Invalid("not SOCKS version 5");
    }
    if count == 0 {
        return Parsed::Invalid("a greeting without authentication methods");
    }
    let end = 2 + usize::from(count);
    match p.get(2..end) {
        Some(methods) => Parsed::Done(methods.to_vec(), end),
        None => Parsed::Incomplete,
    }
}

/// The user name and password of RFC 1929's request.
pub fn credentials(p: &[u8]) -> Parsed<(Vec<u8>, Vec<u8>)> {
    let [version, user_len, ..] = *p else {
        return Parsed::Incomplete;
    };
    if version != AUTH_VERSION {
        return Parsed::Invalid("not a user name and password request (RFC 1929)");
    }
    let user_end = 2 + usize::from(user_len);
    let Some(&pass_len) = p.get(user_end) else {
        return Parsed::Incomplete;
    };
    let end = user_end + 1 + usize::from(pass_len);
    match (p.get(2..user_end), p.get(user_end + 1..end)) {
        (Some(user), Some(pass)) => Parsed::Done((user.to_vec(), pass.to_vec()), end),
        _ => Parsed::Incomplete,
    }
}

/// A client's request, as far as the proxy answers it.
#[derive(Debug, PartialEq, Eq)]
pub enum Request {
    /// `CONNECT` to `host:port`: the authority of an HTTP `CONNECT` (an IPv6 address
    /// in brackets).
    Connect(String),
    /// Another command, or an address type we do not know: answered with this reply
    /// code and closed.
    Refused(u8),
}

/// The client's request (RFC 1928 §4).
pub fn request(p: &[u8]) -> Parsed<Request> {
    let [version, command, _reserved, address_type, ..] = *p else {
        return Parsed::Incomplete;
    };
    if version != VERSION {
        return Parsed::Invalid("a request that is not SOCKS version 5");
    }
    let (host, port_at) = match address_type {
        ATYP_IPV4 => match p.get(4..8) {
            Some(&[a, b, c, d]) => (Ipv4Addr::new(a, b, c, d).to_string(), 8),
            _ => return Parsed::Incomplete,
        },
        ATYP_IPV6 => match p.get(4..20).and_then(|b| <[u8; 16]>::try_from(b).ok()) {
            Some(octets) => (format!("[{}]", Ipv6Addr::from(octets)), 20),
            None => return Parsed::Incomplete,
        },
        ATYP_DOMAIN => {
            let Some(&len) = p.get(4) else {
                return Parsed::Incomplete;
            };
            let end = 5 + usize::from(len);
            let Some(name) = p.get(5..end) else {
                return Parsed::Incomplete;
            };
            if !is_host_name(name) {
                return Parsed::Invalid("a request for a host name that is not one");
            }
            // Checked ASCII just above.
            (String::from_utf8_lossy(name).into_owned(), end)
        }
        // Its length is unknown: nothing after it can be read.
        _ => return Parsed::Done(Request::Refused(ADDRESS_TYPE_NOT_SUPPORTED), p.len()),
    };
    let Some(&[high, low]) = p.get(port_at..port_at + 2) else {
        return Parsed::Incomplete;
    };
    let len = port_at + 2;
    if command != CMD_CONNECT {
        return Parsed::Done(Request::Refused(COMMAND_NOT_SUPPORTED), len);
    }
    let port = u16::from_be_bytes([high, low]);
    Parsed::Done(Request::Connect(format!("{host}:{port}")), len)
}

/// A SOCKS4 or SOCKS4a request (as the pcap tap reads one; the proxy refuses them):
/// version 4, a command, the port, an IPv4 address and a user id ending in NUL,
/// and when the address is `0.0.0.x` (x not 0: SOCKS4a) a host name ending in NUL.
/// `CONNECT`'s target as `host:port`; `BIND` is `Refused` (code 91). The user id is
/// printable ASCII of at most [`MAX_SOCKS4_FIELD`] bytes, the port and address not
/// zero: signatures to tell the request from other bytes that start with 4.
pub fn socks4_request(p: &[u8]) -> Parsed<Request> {
    let [version, command, ..] = *p else {
        return Parsed::Incomplete;
    };
    if version != SOCKS4_VERSION {
        return Parsed::Invalid("not SOCKS version 4");
    }
    if !matches!(command, 1 | 2) {
        return Parsed::Invalid("a SOCKS4 request with an unknown command");
    }
    let Some(&[high, low, a, b, c, d]) = p.get(2..8) else {
        return Parsed::Incomplete;
    };
    let port = u16::from_be_bytes([high, low]);
    if port == 0 || [a, b, c, d] == [0; 4] {
        return Parsed::Invalid("a SOCKS4 request to port or address 0");
    }
    let user_end = match nul_terminated(p, 8) {
        Parsed::Done((), end) => end,
        Parsed::Incomplete => return Parsed::Incomplete,
        Parsed::Invalid(why) => return Parsed::Invalid(why),
    };
    let (host, len) = if [a, b, c] == [0; 3] {
        let host_end = match nul_terminated(p, user_end) {
            Parsed::Done((), end) => end,
            Parsed::Incomplete => return Parsed::Incomplete,
            Parsed::Invalid(why) => return Parsed::Invalid(why),
        };
        let name = p.get(user_end..host_end - 1).unwrap_or_default();
        if !is_host_name(name) {
            return Parsed::Invalid("a SOCKS4a request for a host name that is not one");
        }
        (String::from_utf8_lossy(name).into_owned(), host_end)
    } else {
        (Ipv4Addr::new(a, b, c, d).to_string(), user_end)
    };
    if command != SOCKS4_CONNECT {
        return Parsed::Done(Request::Refused(SOCKS4_REFUSAL[1]), len);
    }
    Parsed::Done(Request::Connect(format!("{host}:{port}")), len)
}

/// The end (past its NUL) of a printable field of at most [`MAX_SOCKS4_FIELD`]
/// bytes starting at `from`.
fn nul_terminated(p: &[u8], from: usize) -> Parsed<()> {
    let field = p.get(from..).unwrap_or_default();
    for (i, &b) in field.iter().enumerate().take(MAX_SOCKS4_FIELD + 1) {
        match b {
            0 => return Parsed::Done((), from + i + 1),
            0x20..=0x7e if i < MAX_SOCKS4_FIELD => {}
            _ => return Parsed::Invalid("a SOCKS4 field that is not printable or too long"),
        }
    }
    Parsed::Incomplete
}

/// What a SOCKS4 reply code says.
fn socks4_reply_text(code: u8) -> &'static str {
    match code {
        91 => "request rejected or failed",
        92 => "the client's identd could not be reached",
        93 => "the client's identd gave another user id",
        _ => "an unknown reply code",
    }
}

/// A host name as DNS and URLs allow it (letters, digits, `-`, `.`, `_`), so it
/// reads as an HTTP authority.
pub(crate) fn is_host_name(name: &[u8]) -> bool {
    !name.is_empty()
        && name
            .iter()
            .all(|&b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_'))
}

/// The method the proxy picks from those `offered`: user name and password when
/// the client has them (they name its device, as `Proxy-Authorization` does), else
/// none when the proxy lets it in without (`open`).
pub fn choose_method(offered: &[u8], open: bool) -> u8 {
    if offered.contains(&USER_PASSWORD) {
        USER_PASSWORD
    } else if open && offered.contains(&NO_AUTHENTICATION) {
        NO_AUTHENTICATION
    } else {
        NO_ACCEPTABLE_METHOD
    }
}

/// The answer to the greeting.
pub fn method_reply(method: u8) -> [u8; 2] {
    [VERSION, method]
}

/// The answer to the credentials: accepted or not.
pub fn credentials_reply(accepted: bool) -> [u8; 2] {
    [AUTH_VERSION, if accepted { 0 } else { 1 }]
}

/// The answer to a request, with an unspecified bound address (the tunnel is ours,
/// not a socket the client could reach).
pub fn reply(code: u8) -> [u8; 10] {
    [VERSION, code, 0, ATYP_IPV4, 0, 0, 0, 0, 0, 0]
}

/// The client's greeting to an upstream proxy: no authentication, and user name
/// and password when it has them.
pub fn client_greeting(with_credentials: bool) -> Vec<u8> {
    match with_credentials {
        true => vec![VERSION, 2, NO_AUTHENTICATION, USER_PASSWORD],
        false => vec![VERSION, 1, NO_AUTHENTICATION],
    }
}

/// RFC 1929's request; `None` when a part is over 255 bytes or the user name empty.
pub fn client_credentials(user: &[u8], password: &[u8]) -> Option<Vec<u8>> {
    let user_len = u8::try_from(user.len()).ok().filter(|&n| n > 0)?;
    let password_len = u8::try_from(password.len()).ok()?;
    Some(
        [
            &[AUTH_VERSION, user_len][..],
            user,
            &[password_len],
            password,
        ]
        .concat(),
    )
}

/// The `CONNECT` request for `host` (a name, or an address without brackets) and
/// `port`; `None` for a name over 255 bytes. Names go as names: the proxy resolves
/// them (curl's `socks5h://`), as a lab behind `ssh -D` needs.
pub fn client_connect(host: &str, port: u16) -> Option<Vec<u8>> {
    let mut r = vec![VERSION, CMD_CONNECT, 0];
    match host.parse::<std::net::IpAddr>() {
        Ok(std::net::IpAddr::V4(ip)) => {
            r.push(ATYP_IPV4);
            r.extend_from_slice(&ip.octets());
        }
        Ok(std::net::IpAddr::V6(ip)) => {
            r.push(ATYP_IPV6);
            r.extend_from_slice(&ip.octets());
        }
        Err(_) => {
            r.push(ATYP_DOMAIN);
            r.push(u8::try_from(host.len()).ok()?);
            r.extend_from_slice(host.as_bytes());
        }
    }
    r.extend_from_slice(&port.to_be_bytes());
    Some(r)
}

/// The length of the server's reply to a request from its first five bytes (the
/// address type, and a name's length byte), or why it is no reply.
pub fn server_reply_len(head: &[u8; 5]) -> Result<usize, &'static str> {
    if head[0] != VERSION {
        return Err("is not SOCKS version 5");
    }
    match head[3] {
        ATYP_IPV4 => Ok(4 + 4 + 2),
        ATYP_IPV6 => Ok(4 + 16 + 2),
        ATYP_DOMAIN => Ok(4 + 1 + usize::from(head[4]) + 2),
        _ => Err("has an unknown address type"),
    }
}

/// What a SOCKS5 reply code says (RFC 1928 §6).
pub fn reply_text(code: u8) -> &'static str {
    match code {
        SUCCEEDED => "succeeded",
        1 => "general SOCKS server failure",
        NOT_ALLOWED => "connection not allowed by ruleset",
        3 => "network unreachable",
        4 => "host unreachable",
        5 => "connection refused",
        6 => "TTL expired",
        COMMAND_NOT_SUPPORTED => "command not supported",
        ADDRESS_TYPE_NOT_SUPPORTED => "address type not supported",
        _ => "an unknown reply code",
    }
}

/// Bytes of each side a [`Handshake`] holds at most before its tunnel opens: a
/// greeting, credentials and a request take at most 1 032 bytes, the server's answers
/// 266.
pub const MAX_HANDSHAKE: usize = 2048;

/// A SOCKS5 (or SOCKS4/4a) handshake watched from the side (the pcap tap): both
/// directions' bytes as they come, until the tunnel opens, the server refuses, or
/// they turn out not to be SOCKS. A client may send its next message before the
/// server's answer to the last one: each side is read on its own.
#[derive(Debug, Default)]
pub struct Handshake {
    client: Vec<u8>,
    server: Vec<u8>,
}

/// What a watched handshake has come to.
#[derive(Debug, PartialEq, Eq)]
pub enum Watched {
    NeedMore,
    /// The tunnel to `target` (`host:port`, an IPv6 address in brackets) is open;
    /// the bytes after the handshake, each way, are the first of the tunnel's.
    Tunnel {
        target: String,
        client_rest: Vec<u8>,
        server_rest: Vec<u8>,
    },
    /// The server refused (or the client asked for something other than a tunnel):
    /// why, the target when the client had named one, and every client byte seen (a
    /// protocol that only looked like SOCKS5 loses nothing to the search).
    Refused {
        why: &'static str,
        target: Option<String>,
        client: Vec<u8>,
    },
    /// Not SOCKS5 (or a method whose messages are not read): every client byte seen.
    NotSocks {
        client: Vec<u8>,
    },
}

/// Where a handshake stands in the bytes of both sides.
enum Step {
    NeedMore,
    Tunnel {
        target: String,
        client_at: usize,
        server_at: usize,
    },
    Refused(&'static str, Option<String>),
    NotSocks,
}

impl Handshake {
    /// The next bytes of one side. Held until the handshake is decided: at most
    /// [`MAX_HANDSHAKE`] bytes a side and the last push.
    pub fn push(&mut self, from_client: bool, bytes: &[u8]) -> Watched {
        let side = if from_client {
            &mut self.client
        } else {
            &mut self.server
        };
        side.extend_from_slice(bytes);
        match step(&self.client, &self.server) {
            Step::NeedMore if self.client.len().max(self.server.len()) <= MAX_HANDSHAKE => {
                Watched::NeedMore
            }
            Step::NeedMore | Step::NotSocks => Watched::NotSocks {
                client: std::mem::take(&mut self.client),
            },
            Step::Refused(why, target) => Watched::Refused {
                why,
                target,
                client: std::mem::take(&mut self.client),
            },
            Step::Tunnel {
                target,
                client_at,
                server_at,
            } => Watched::Tunnel {
                target,
                client_rest: self.client.get(client_at..).unwrap_or_default().to_vec(),
                server_rest: self.server.get(server_at..).unwrap_or_default().to_vec(),
            },
        }
    }

    /// The client's bytes so far.
    pub fn take_client(&mut self) -> Vec<u8> {
        std::mem::take(&mut self.client)
    }

    /// Bytes held of both sides.
    pub fn held(&self) -> usize {
        self.client.len() + self.server.len()
    }
}

/// Reads the handshake from the client's bytes `c` and the server's `s`.
fn step(c: &[u8], s: &[u8]) -> Step {
    if c.first() == Some(&SOCKS4_VERSION) {
        return step4(c, s);
    }
    let (methods, mut ci) = match greeting(c) {
        Parsed::Done(methods, n) => (methods, n),
        Parsed::Incomplete => return Step::NeedMore,
        Parsed::Invalid(_) => return Step::NotSocks,
    };
    let Some(&[version, method]) = s.get(..2) else {
        return Step::NeedMore;
    };
    if version != VERSION {
        return Step::NotSocks;
    }
    if method == NO_ACCEPTABLE_METHOD {
        return Step::Refused("no acceptable authentication method", None);
    }
    if !methods.contains(&method) {
        return Step::NotSocks;
    }
    let mut si = 2;
    match method {
        NO_AUTHENTICATION => {}
        USER_PASSWORD => {
            match credentials(c.get(ci..).unwrap_or_default()) {
                Parsed::Done(_, n) => ci += n,
                Parsed::Incomplete => return Step::NeedMore,
                Parsed::Invalid(_) => return Step::NotSocks,
            }
            let Some(&[auth_version, status]) = s.get(si..si + 2) else {
                return Step::NeedMore;
            };
            if auth_version != AUTH_VERSION {
                return Step::NotSocks;
            }
            if status != 0 {
                return Step::Refused("credentials rejected", None);
            }
            si += 2;
        }
        // GSSAPI or a private method: its messages are not read.
        _ => return Step::NotSocks,
    }
    let target = match request(c.get(ci..).unwrap_or_default()) {
        Parsed::Done(Request::Connect(target), n) => {
            ci += n;
            target
        }
        Parsed::Done(Request::Refused(_), _) => {
            return Step::Refused(
                "not a CONNECT (BIND, UDP ASSOCIATE or an unknown address type)",
                None,
            )
        }
        Parsed::Incomplete => return Step::NeedMore,
        Parsed::Invalid(_) => return Step::NotSocks,
    };
    let Some(head) = s.get(si..si + 5).and_then(|h| <[u8; 5]>::try_from(h).ok()) else {
        return Step::NeedMore;
    };
    let Ok(len) = server_reply_len(&head) else {
        return Step::NotSocks;
    };
    if s.len() < si + len {
        return Step::NeedMore;
    }
    if head[1] != SUCCEEDED {
        return Step::Refused(reply_text(head[1]), Some(target));
    }
    Step::Tunnel {
        target,
        client_at: ci,
        server_at: si + len,
    }
}

/// [`step`] for SOCKS4 and 4a: the request, then the server's 8-byte reply (version
/// 0, a code: 90 granted, 91–93 refused).
fn step4(c: &[u8], s: &[u8]) -> Step {
    let (target, ci) = match socks4_request(c) {
        Parsed::Done(Request::Connect(target), n) => (target, n),
        Parsed::Done(Request::Refused(_), _) => {
            return Step::Refused("not a CONNECT (a SOCKS4 BIND)", None)
        }
        Parsed::Incomplete => return Step::NeedMore,
        Parsed::Invalid(_) => return Step::NotSocks,
    };
    let Some(&[version, code, ..]) = s.get(..8) else {
        return Step::NeedMore;
    };
    match (version, code) {
        (0, SOCKS4_GRANTED) => Step::Tunnel {
            target,
            client_at: ci,
            server_at: 8,
        },
        (0, 91..=93) => Step::Refused(socks4_reply_text(code), Some(target)),
        _ => Step::NotSocks,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every prefix of a complete message is incomplete, and the message parses
    /// the same with bytes after it.
    fn whole<T: std::fmt::Debug + PartialEq>(parse: fn(&[u8]) -> Parsed<T>, msg: &[u8]) -> T {
        for cut in 0..msg.len() {
            assert_eq!(parse(&msg[..cut]), Parsed::Incomplete, "cut at {cut}");
        }
        let mut more = msg.to_vec();
        more.extend_from_slice(b"\x16\x03\x01");
        let Parsed::Done(a, len) = parse(&more) else {
            panic!("{msg:?} does not parse");
        };
        assert_eq!(len, msg.len());
        a
    }

    #[test]
    fn greetings_give_their_methods() {
        assert_eq!(whole(greeting, &[5, 2, 0, 2]), vec![0, 2]);
        assert_eq!(greeting(&[4, 1, 0]), Parsed::Invalid("not SOCKS version 5"));
        assert!(matches!(greeting(&[5, 0]), Parsed::Invalid(_)));
    }

    #[test]
    fn credentials_give_user_and_password() {
        let msg = [&[1, 5][..], b"alice", &[3], b"p:w"].concat();
        assert_eq!(
            whole(credentials, &msg),
            (b"alice".to_vec(), b"p:w".to_vec())
        );
        assert_eq!(whole(credentials, &[1, 0, 0]), (vec![], vec![]));
        assert!(matches!(credentials(&[5, 1, 0]), Parsed::Invalid(_)));
    }

    #[test]
    fn requests_give_the_authority_of_their_target() {
        let v4 = [5, 1, 0, 1, 127, 0, 0, 1, 0x1f, 0x90];
        assert_eq!(
            whole(request, &v4),
            Request::Connect("127.0.0.1:8080".into())
        );
        let mut v6 = vec![5, 1, 0, 4];
        v6.extend_from_slice(&Ipv6Addr::LOCALHOST.octets());
        v6.extend_from_slice(&443u16.to_be_bytes());
        assert_eq!(whole(request, &v6), Request::Connect("[::1]:443".into()));
        let name = [&[5, 1, 0, 3, 19][..], b"app-measurement.com", &[1, 187]].concat();
        assert_eq!(
            whole(request, &name),
            Request::Connect("app-measurement.com:443".into())
        );
        let bind = [5, 2, 0, 1, 10, 0, 0, 1, 0, 80];
        assert_eq!(
            whole(request, &bind),
            Request::Refused(COMMAND_NOT_SUPPORTED)
        );
        assert_eq!(
            request(&[5, 1, 0, 9, 1, 2, 3]),
            Parsed::Done(Request::Refused(ADDRESS_TYPE_NOT_SUPPORTED), 7)
        );
        let bad = [&[5, 1, 0, 3, 9][..], b"a.com/x?y", &[0, 80]].concat();
        assert!(matches!(request(&bad), Parsed::Invalid(_)));
        assert!(matches!(
            request(&[5, 1, 0, 3, 0, 0, 80]),
            Parsed::Invalid(_)
        ));
        assert!(matches!(request(&[4, 1, 0, 1]), Parsed::Invalid(_)));
    }

    proptest::proptest! {
        /// However the two sides' bytes are cut and interleaved, the watched
        /// handshake opens the same tunnel, and the bytes after it are the tunnel's.
        #[test]
        fn a_handshake_cut_anywhere_opens_the_same_tunnel(
            credentials in proptest::bool::ANY,
            socks4a in proptest::bool::ANY,
            cut_client in 1usize..40,
            cut_server in 1usize..20,
            server_first in proptest::bool::ANY,
            tunnel in proptest::collection::vec(proptest::num::u8::ANY, 0..16),
        ) {
            let (c, s) = if socks4a {
                let request = socks4(1, 443, [0, 0, 0, 7], b"sdk", Some(b"tracker.example"));
                (vec![request], vec![vec![0, SOCKS4_GRANTED, 1, 187, 0, 0, 0, 0]])
            } else {
                exchange(credentials, ("tracker.example", 443), SUCCEEDED)
            };
            let client = [c.concat(), tunnel.clone()].concat();
            let server = s.concat();
            let mut h = Handshake::default();
            let (mut ci, mut si) = (0, 0);
            let mut turn = server_first;
            let decided = loop {
                let (from_client, bytes) = if (turn && si < server.len()) || ci >= client.len() {
                    let end = (si + cut_server).min(server.len());
                    let b = &server[si..end];
                    si = end;
                    (false, b)
                } else {
                    let end = (ci + cut_client).min(client.len());
                    let b = &client[ci..end];
                    ci = end;
                    (true, b)
                };
                turn = !turn;
                match h.push(from_client, bytes) {
                    Watched::NeedMore => {
                        proptest::prop_assert!(ci < client.len() || si < server.len());
                    }
                    other => break other,
                }
            };
            let Watched::Tunnel { target, client_rest, server_rest } = decided else {
                return Err(proptest::test_runner::TestCaseError::fail(format!("{decided:?}")));
            };
            proptest::prop_assert_eq!(target, "tracker.example:443");
            proptest::prop_assert_eq!([client_rest, client[ci..].to_vec()].concat(), tunnel);
            proptest::prop_assert!(server_rest.is_empty() && si == server.len());
        }

        /// Any pushes: no panic, and nothing held past the bound (and a push).
        #[test]
        fn any_pushes_are_decided_within_the_bound(
            pushes in proptest::collection::vec(
                (proptest::bool::ANY, proptest::collection::vec(proptest::num::u8::ANY, 0..300)),
                0..40,
            ),
        ) {
            let mut h = Handshake::default();
            for (from_client, bytes) in pushes {
                if h.push(from_client, &bytes) != Watched::NeedMore {
                    break;
                }
                proptest::prop_assert!(h.client.len().max(h.server.len()) <= MAX_HANDSHAKE);
            }
        }

        /// Any bytes: no panic, a message never longer than what was read, and more
        /// bytes never change a decided message (what the reading loop relies on).
        #[test]
        fn any_bytes_parse_to_a_decision_that_more_bytes_keep(
            p in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            more in proptest::collection::vec(proptest::num::u8::ANY, 0..8),
        ) {
            let longer = [&p[..], &more[..]].concat();
            if let Parsed::Done(_, len) = socks4_request(&p) {
                proptest::prop_assert!(len <= p.len());
                proptest::prop_assert_eq!(socks4_request(&p), socks4_request(&longer));
            }
            if let Parsed::Done(_, len) = greeting(&p) {
                proptest::prop_assert!(len <= p.len());
                proptest::prop_assert_eq!(greeting(&p), greeting(&longer));
            }
            if let Parsed::Done(_, len) = credentials(&p) {
                proptest::prop_assert!(len <= p.len());
                proptest::prop_assert_eq!(credentials(&p), credentials(&longer));
            }
            match request(&p) {
                // An unknown address type ends the reading: its length is unknown.
                Parsed::Done(Request::Refused(ADDRESS_TYPE_NOT_SUPPORTED), _) => {}
                Parsed::Done(_, len) => {
                    proptest::prop_assert!(len <= p.len());
                    proptest::prop_assert_eq!(request(&p), request(&longer));
                }
                Parsed::Invalid(_) => proptest::prop_assert!(matches!(request(&longer), Parsed::Invalid(_))),
                Parsed::Incomplete => {}
            }
        }
    }

    /// What the client side sends is what the server side reads.
    #[test]
    fn client_requests_parse_as_the_server_reads_them() {
        assert_eq!(whole(greeting, &client_greeting(true)), vec![0, 2]);
        assert_eq!(whole(greeting, &client_greeting(false)), vec![0]);
        let creds = client_credentials(b"alice", b"pw").unwrap();
        assert_eq!(
            whole(credentials, &creds),
            (b"alice".to_vec(), b"pw".to_vec())
        );
        assert_eq!(client_credentials(b"", b"pw"), None);
        assert_eq!(client_credentials(&[b'u'; 256], b"pw"), None);
        for (host, port, want) in [
            ("tracker.example", 443, "tracker.example:443"),
            ("10.0.0.7", 80, "10.0.0.7:80"),
            ("2001:db8::1", 8443, "[2001:db8::1]:8443"),
        ] {
            let r = client_connect(host, port).unwrap();
            assert_eq!(whole(request, &r), Request::Connect(want.into()));
        }
        assert_eq!(client_connect(&"a".repeat(256), 443), None);
        let mut head = [0u8; 5];
        head.copy_from_slice(&reply(SUCCEEDED)[..5]);
        assert_eq!(server_reply_len(&head), Ok(10));
        assert_eq!(server_reply_len(&[5, 0, 0, 3, 7]), Ok(14));
        assert_eq!(server_reply_len(&[5, 0, 0, 4, 0]), Ok(22));
        assert!(server_reply_len(&[4, 0, 0, 1, 0]).is_err());
        assert!(server_reply_len(&[5, 0, 0, 9, 0]).is_err());
        assert_eq!(reply_text(5), "connection refused");
    }

    #[test]
    fn the_method_is_the_clients_credentials_when_it_has_them() {
        assert_eq!(choose_method(&[0, 2], true), USER_PASSWORD);
        assert_eq!(choose_method(&[2], false), USER_PASSWORD);
        assert_eq!(choose_method(&[0], true), NO_AUTHENTICATION);
        assert_eq!(choose_method(&[0], false), NO_ACCEPTABLE_METHOD);
        assert_eq!(choose_method(&[1], true), NO_ACCEPTABLE_METHOD);
    }

    /// A whole handshake: client and server messages, as a client and a proxy send them.
    fn exchange(credentials: bool, target: (&str, u16), code: u8) -> (Vec<Vec<u8>>, Vec<Vec<u8>>) {
        let mut client = vec![client_greeting(credentials)];
        let mut server: Vec<Vec<u8>> = vec![method_reply(if credentials {
            USER_PASSWORD
        } else {
            NO_AUTHENTICATION
        })
        .to_vec()];
        if credentials {
            client.push(client_credentials(b"pixel7", b"s3cret").unwrap());
            server.push(credentials_reply(true).to_vec());
        }
        client.push(client_connect(target.0, target.1).unwrap());
        server.push(reply(code).to_vec());
        (client, server)
    }

    /// Feeds the messages in turn (each client message before the server's answer),
    /// the last client message followed by `tunnel` bytes in the same push.
    fn watch(client: &[Vec<u8>], server: &[Vec<u8>], tunnel: &[u8]) -> Vec<Watched> {
        let mut h = Handshake::default();
        let mut seen = Vec::new();
        for (i, (c, s)) in client.iter().zip(server).enumerate() {
            let mut c = c.clone();
            if i + 1 == client.len() {
                c.extend_from_slice(tunnel);
            }
            seen.push(h.push(true, &c));
            seen.push(h.push(false, s));
        }
        seen
    }

    /// A SOCKS4 request (SOCKS4a when `host` is given) to `ip:port` from `user`.
    fn socks4(command: u8, port: u16, ip: [u8; 4], user: &[u8], host: Option<&[u8]>) -> Vec<u8> {
        let mut m = vec![SOCKS4_VERSION, command];
        m.extend(port.to_be_bytes());
        m.extend(ip);
        m.extend(user);
        m.push(0);
        if let Some(host) = host {
            m.extend(host);
            m.push(0);
        }
        m
    }

    #[test]
    fn socks4_and_4a_requests_give_their_targets() {
        let plain = socks4(1, 443, [203, 0, 113, 9], b"phone", None);
        assert_eq!(
            whole(socks4_request, &plain),
            Request::Connect("203.0.113.9:443".into())
        );
        let named = socks4(1, 80, [0, 0, 0, 1], b"", Some(b"sdk.open.getui.net"));
        assert_eq!(
            whole(socks4_request, &named),
            Request::Connect("sdk.open.getui.net:80".into())
        );
        let bind = socks4(2, 80, [198, 51, 100, 7], b"", None);
        assert_eq!(whole(socks4_request, &bind), Request::Refused(91));
        let invalid = [
            socks4(3, 80, [198, 51, 100, 7], b"", None),
            socks4(1, 0, [198, 51, 100, 7], b"", None),
            socks4(1, 80, [0, 0, 0, 0], b"", None),
            socks4(1, 80, [198, 51, 100, 7], b"a\x01b", None),
            socks4(
                1,
                80,
                [198, 51, 100, 7],
                &[b'u'; MAX_SOCKS4_FIELD + 1],
                None,
            ),
            socks4(1, 80, [0, 0, 0, 9], b"", Some(b"not a host")),
            socks4(1, 80, [0, 0, 0, 9], b"", Some(b"")),
            b"\x05\x01\x00".to_vec(),
        ];
        for m in invalid {
            assert!(matches!(socks4_request(&m), Parsed::Invalid(_)), "{m:?}");
        }
        let longest = socks4(1, 80, [198, 51, 100, 7], &[b'u'; MAX_SOCKS4_FIELD], None);
        assert!(matches!(socks4_request(&longest), Parsed::Done(..)));
    }

    #[test]
    fn a_watched_socks4_handshake_opens_its_tunnel_or_says_why_not() {
        let request = socks4(1, 80, [0, 0, 0, 1], b"", Some(b"sdk.open.getui.net"));
        let granted = [0, 90, 0, 0, 0, 0, 0, 0];
        let seen = watch(
            std::slice::from_ref(&request),
            &[[&granted[..], b"HTTP/1.1"].concat()],
            b"GET /",
        );
        assert_eq!(
            seen.last(),
            Some(&Watched::Tunnel {
                target: "sdk.open.getui.net:80".into(),
                client_rest: b"GET /".to_vec(),
                server_rest: b"HTTP/1.1".to_vec(),
            })
        );
        let refused = watch(
            std::slice::from_ref(&request),
            &[vec![0, 91, 0, 0, 0, 0, 0, 0]],
            b"",
        );
        assert_eq!(
            refused.last(),
            Some(&Watched::Refused {
                why: "request rejected or failed",
                target: Some("sdk.open.getui.net:80".into()),
                client: request.clone(),
            })
        );
        // The server answers something else: not SOCKS, the client's bytes searched.
        let other = watch(
            std::slice::from_ref(&request),
            &[b"HELLO 1\r\n".to_vec()],
            b"",
        );
        assert_eq!(other.last(), Some(&Watched::NotSocks { client: request }));
    }

    #[test]
    fn a_watched_handshake_opens_its_tunnel_to_the_target() {
        for credentials in [false, true] {
            let (c, s) = exchange(credentials, ("app-measurement.com", 443), SUCCEEDED);
            let seen = watch(&c, &s, b"\x16\x03\x01");
            let (last, before) = seen.split_last().unwrap();
            assert!(before.iter().all(|w| *w == Watched::NeedMore), "{before:?}");
            assert_eq!(
                *last,
                Watched::Tunnel {
                    target: "app-measurement.com:443".into(),
                    client_rest: b"\x16\x03\x01".to_vec(),
                    server_rest: Vec::new(),
                }
            );
        }
        // All at once, byte by byte: the same tunnel.
        let (c, s) = exchange(true, ("2001:db8::1", 8443), SUCCEEDED);
        let mut h = Handshake::default();
        let (c, s) = (c.concat(), s.concat());
        let mut last = Watched::NeedMore;
        for b in &c {
            assert_eq!(h.push(true, &[*b]), Watched::NeedMore);
        }
        for b in &s {
            last = h.push(false, &[*b]);
        }
        assert_eq!(
            last,
            Watched::Tunnel {
                target: "[2001:db8::1]:8443".into(),
                client_rest: Vec::new(),
                server_rest: Vec::new(),
            }
        );
    }

    #[test]
    fn refusals_and_strangers_are_told_apart() {
        let (c, s) = exchange(false, ("tracker.example", 443), NOT_ALLOWED);
        assert_eq!(
            watch(&c, &s, b"").pop(),
            Some(Watched::Refused {
                why: "connection not allowed by ruleset",
                target: Some("tracker.example:443".into()),
                client: c.concat(),
            })
        );
        let mut h = Handshake::default();
        h.push(true, &client_greeting(true));
        assert_eq!(
            h.push(false, &method_reply(NO_ACCEPTABLE_METHOD)),
            Watched::Refused {
                why: "no acceptable authentication method",
                target: None,
                client: client_greeting(true),
            }
        );
        let mut h = Handshake::default();
        h.push(true, &client_greeting(true));
        h.push(false, &method_reply(USER_PASSWORD));
        h.push(true, &client_credentials(b"u", b"wrong").unwrap());
        assert!(matches!(
            h.push(false, &credentials_reply(false)),
            Watched::Refused { .. }
        ));
        // A server that answers something else: the client's bytes go on as they are.
        let mut h = Handshake::default();
        h.push(true, b"\x05\x01\x00");
        assert_eq!(
            h.push(false, b"HTTP/1.1 400 Bad Request\r\n"),
            Watched::NotSocks {
                client: b"\x05\x01\x00".to_vec()
            }
        );
        // A method the server did not get offered, and one whose messages are not read.
        for method in [USER_PASSWORD, 1] {
            let mut h = Handshake::default();
            h.push(true, &[5, 2, 0, 1]);
            let w = h.push(false, &method_reply(method));
            assert!(matches!(w, Watched::NotSocks { .. }), "{method}: {w:?}");
        }
    }

    #[test]
    fn a_handshake_that_never_ends_is_not_held_beyond_its_bound() {
        let mut h = Handshake::default();
        assert_eq!(h.push(true, &[5, 1, 0]), Watched::NeedMore);
        // The server stays silent while the client sends on.
        let mut last = Watched::NeedMore;
        let mut sent = 3;
        while last == Watched::NeedMore {
            last = h.push(true, &[0xAB; 100]);
            sent += 100;
            assert!(sent <= MAX_HANDSHAKE + 100, "held past the bound");
        }
        let Watched::NotSocks { client } = last else {
            panic!("{last:?}")
        };
        assert_eq!(client.len(), sent, "every client byte handed on");
    }
}
