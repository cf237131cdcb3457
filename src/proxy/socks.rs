//! SOCKS5 (RFC 1928) with user name and password authentication (RFC 1929), both
//! ways: as a client of the proxy speaks it (the messages parsed from the bytes read
//! so far, and the answers to them; [`super::serve`] reads and writes), and as the
//! proxy speaks to an upstream SOCKS5 proxy (`--upstream-proxy socks5://`: the
//! requests, and the answers read; [`super::upstream`] reads and writes). Sans-I/O.
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

/// A host name as DNS and URLs allow it (letters, digits, `-`, `.`, `_`), so it
/// reads as an HTTP authority.
fn is_host_name(name: &[u8]) -> bool {
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
        /// Any bytes: no panic, a message never longer than what was read, and more
        /// bytes never change a decided message (what the reading loop relies on).
        #[test]
        fn any_bytes_parse_to_a_decision_that_more_bytes_keep(
            p in proptest::collection::vec(proptest::num::u8::ANY, 0..300),
            more in proptest::collection::vec(proptest::num::u8::ANY, 0..8),
        ) {
            let longer = [&p[..], &more[..]].concat();
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
}
