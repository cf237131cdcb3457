//! What DHCPv4 (RFC 2131, options RFC 2132) says about the clients of a network: a
//! client's request names its hardware address, often its host name (option 12,
//! `Pixel-7`, `Alices-iPhone`) and its DHCP stack (option 60, `android-dhcp-14`),
//! and the server's ACK the address it leases to that hardware address. A gateway
//! capture's summary uses them to say which machines its unknown clients are (the
//! hardware address is what a case's `addresses` can name). Pure parsing and
//! bounded bookkeeping; no DHCP message is an exchange of the app's.

use std::collections::BTreeMap;
use std::net::{IpAddr, Ipv4Addr};

/// BOOTP's fixed part (RFC 951), then the magic cookie, then the options.
const FIXED: usize = 236;
const MAGIC_COOKIE: [u8; 4] = [99, 130, 83, 99];
/// `op`: a message from a client, from a server.
const BOOTREQUEST: u8 = 1;
const BOOTREPLY: u8 = 2;
/// `htype` of Ethernet, whose `chaddr` is a 6-byte MAC.
const HTYPE_ETHERNET: u8 = 1;
const OPTION_PAD: u8 = 0;
const OPTION_END: u8 = 255;
const OPTION_HOST_NAME: u8 = 12;
const OPTION_REQUESTED_ADDRESS: u8 = 50;
const OPTION_MESSAGE_TYPE: u8 = 53;
const OPTION_VENDOR_CLASS: u8 = 60;
/// DHCP message types (option 53).
const DHCPREQUEST: u8 = 3;
const DHCPACK: u8 = 5;
const DHCPINFORM: u8 = 8;
/// Characters kept of a host name or vendor class.
const MAX_TEXT_CHARS: usize = 64;
/// Clients remembered by hardware address; a network with more keeps the first.
pub const MAX_CLIENTS: usize = 1024;

/// The facts of one DHCPv4 message that name a client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Message {
    /// Sent by a client (`BOOTREQUEST`), else by a server.
    pub from_client: bool,
    /// Option 53, when present.
    pub kind: Option<u8>,
    /// The client's hardware address, when it is an Ethernet MAC.
    pub mac: Option<[u8; 6]>,
    /// `ciaddr`: the address a bound client already uses (not 0.0.0.0).
    pub client_address: Option<Ipv4Addr>,
    /// `yiaddr`: the address a server gives the client (not 0.0.0.0).
    pub your_address: Option<Ipv4Addr>,
    /// Option 50: the address a client asks for.
    pub requested_address: Option<Ipv4Addr>,
    /// Option 12, as text (controls dropped, at most 64 characters).
    pub host_name: Option<String>,
    /// Option 60, likewise.
    pub vendor_class: Option<String>,
}

/// The message of a UDP datagram between DHCP's ports, or `None` when it is not a
/// well-formed DHCPv4 message (options after a malformed one are not read).
pub fn parse(datagram: &[u8]) -> Option<Message> {
    let fixed = datagram.get(..FIXED)?;
    if datagram.get(FIXED..FIXED + 4)? != MAGIC_COOKIE {
        return None;
    }
    let op = fixed[0];
    if op != BOOTREQUEST && op != BOOTREPLY {
        return None;
    }
    let address = |at: usize| {
        let octets: [u8; 4] = fixed.get(at..at + 4)?.try_into().ok()?;
        Some(Ipv4Addr::from(octets)).filter(|a| !a.is_unspecified())
    };
    let mut m = Message {
        from_client: op == BOOTREQUEST,
        mac: (fixed[1] == HTYPE_ETHERNET && fixed[2] == 6)
            .then(|| fixed.get(28..34)?.try_into().ok())
            .flatten(),
        client_address: address(12),
        your_address: address(16),
        ..Message::default()
    };
    let mut options = datagram.get(FIXED + 4..)?;
    while let Some((&code, rest)) = options.split_first() {
        match code {
            OPTION_PAD => {
                options = rest;
                continue;
            }
            OPTION_END => break,
            _ => {}
        }
        let Some((&len, rest)) = rest.split_first() else {
            break;
        };
        let Some(value) = rest.get(..usize::from(len)) else {
            break;
        };
        match code {
            OPTION_MESSAGE_TYPE if len == 1 => m.kind = Some(value[0]),
            OPTION_REQUESTED_ADDRESS => {
                m.requested_address = <[u8; 4]>::try_from(value).ok().map(Ipv4Addr::from);
            }
            OPTION_HOST_NAME => m.host_name = text(value),
            OPTION_VENDOR_CLASS => m.vendor_class = text(value),
            _ => {}
        }
        options = &rest[usize::from(len)..];
    }
    Some(m)
}

/// An option's bytes as text, `None` when nothing printable is left.
fn text(value: &[u8]) -> Option<String> {
    let text: String = super::pcapdroid::name_text(value)
        .trim()
        .chars()
        .take(MAX_TEXT_CHARS)
        .collect();
    (!text.is_empty()).then_some(text)
}

/// What DHCP said about one client.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ClientFacts {
    /// The address it was last given (a server's ACK) or said it uses.
    pub address: Option<Ipv4Addr>,
    pub host_name: Option<String>,
    pub vendor_class: Option<String>,
}

/// The clients DHCP named, by hardware address, at most [`MAX_CLIENTS`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DhcpClients {
    clients: BTreeMap<[u8; 6], ClientFacts>,
}

impl DhcpClients {
    /// Takes in what `m` says about its client.
    pub fn note(&mut self, m: &Message) {
        let Some(mac) = m.mac else {
            return;
        };
        // The address a client holds: leased by an ACK, or in use as a client's
        // REQUEST (renewing) or INFORM says.
        let address = match (m.from_client, m.kind) {
            (false, Some(DHCPACK)) => m.your_address,
            (true, Some(DHCPREQUEST | DHCPINFORM)) => m.client_address,
            _ => None,
        };
        let names = m.from_client && (m.host_name.is_some() || m.vendor_class.is_some());
        if address.is_none() && !names {
            return;
        }
        if !self.clients.contains_key(&mac) && self.clients.len() >= MAX_CLIENTS {
            return;
        }
        if let Some(a) = address {
            // An address is one client's: one it moved from holds it no longer.
            for (other, facts) in self.clients.iter_mut() {
                if *other != mac && facts.address == Some(a) {
                    facts.address = None;
                }
            }
        }
        let facts = self.clients.entry(mac).or_default();
        if address.is_some() {
            facts.address = address;
        }
        if m.from_client {
            if m.host_name.is_some() {
                facts.host_name.clone_from(&m.host_name);
            }
            if m.vendor_class.is_some() {
                facts.vendor_class.clone_from(&m.vendor_class);
            }
        }
    }

    /// The client DHCP last gave `ip`, with its hardware address.
    pub fn holding(&self, ip: IpAddr) -> Option<([u8; 6], &ClientFacts)> {
        let IpAddr::V4(v4) = ip else {
            return None;
        };
        self.clients
            .iter()
            .find(|(_, f)| f.address == Some(v4))
            .map(|(mac, f)| (*mac, f))
    }
}

/// `02:00:5e:10:00:01`.
pub fn mac_text(mac: [u8; 6]) -> String {
    mac.iter()
        .map(|b| format!("{b:02x}"))
        .collect::<Vec<_>>()
        .join(":")
}

/// What DHCP said of a client, for a summary: `host name "Pixel-7", MAC
/// 3c:5a:b4:01:02:03, vendor class "android-dhcp-14"`.
pub fn describe(mac: [u8; 6], facts: &ClientFacts) -> String {
    let mut parts = Vec::new();
    if let Some(h) = &facts.host_name {
        parts.push(format!("host name {h:?}"));
    }
    parts.push(format!("MAC {}", mac_text(mac)));
    if let Some(v) = &facts.vendor_class {
        parts.push(format!("vendor class {v:?}"));
    }
    parts.join(", ")
}

#[cfg(test)]
mod tests {
    use super::*;

    const MAC: [u8; 6] = [0x3c, 0x5a, 0xb4, 0x01, 0x02, 0x03];

    /// A DHCPv4 message: `op`, `ciaddr`, `yiaddr`, Ethernet `chaddr` [`MAC`], then
    /// the options (code, value) and END.
    fn message(op: u8, ciaddr: [u8; 4], yiaddr: [u8; 4], options: &[(u8, &[u8])]) -> Vec<u8> {
        let mut m = vec![0u8; FIXED];
        m[0] = op;
        m[1] = HTYPE_ETHERNET;
        m[2] = 6;
        m[12..16].copy_from_slice(&ciaddr);
        m[16..20].copy_from_slice(&yiaddr);
        m[28..34].copy_from_slice(&MAC);
        m.extend_from_slice(&MAGIC_COOKIE);
        for (code, value) in options {
            m.push(*code);
            m.push(value.len() as u8);
            m.extend_from_slice(value);
        }
        m.push(OPTION_END);
        m
    }

    fn request() -> Vec<u8> {
        message(
            BOOTREQUEST,
            [0; 4],
            [0; 4],
            &[
                (OPTION_MESSAGE_TYPE, &[DHCPREQUEST]),
                (OPTION_REQUESTED_ADDRESS, &[192, 168, 60, 77]),
                (OPTION_HOST_NAME, b"Pixel-7"),
                (OPTION_VENDOR_CLASS, b"android-dhcp-14"),
            ],
        )
    }

    fn ack() -> Vec<u8> {
        message(
            BOOTREPLY,
            [0; 4],
            [192, 168, 60, 77],
            &[(OPTION_MESSAGE_TYPE, &[DHCPACK])],
        )
    }

    #[test]
    fn a_request_names_the_client_and_the_ack_its_address() {
        let r = parse(&request()).unwrap();
        assert!(r.from_client);
        assert_eq!(r.kind, Some(DHCPREQUEST));
        assert_eq!(r.mac, Some(MAC));
        assert_eq!(r.requested_address, Some(Ipv4Addr::new(192, 168, 60, 77)));
        assert_eq!(r.host_name.as_deref(), Some("Pixel-7"));
        assert_eq!(r.vendor_class.as_deref(), Some("android-dhcp-14"));
        assert_eq!((r.client_address, r.your_address), (None, None));
        let a = parse(&ack()).unwrap();
        assert!(!a.from_client);
        assert_eq!(a.your_address, Some(Ipv4Addr::new(192, 168, 60, 77)));

        let mut clients = DhcpClients::default();
        clients.note(&r);
        let ip = IpAddr::from([192, 168, 60, 77]);
        assert!(clients.holding(ip).is_none(), "asked for is not given");
        clients.note(&a);
        let (mac, facts) = clients.holding(ip).unwrap();
        assert_eq!(mac, MAC);
        assert_eq!(
            describe(mac, facts),
            r#"host name "Pixel-7", MAC 3c:5a:b4:01:02:03, vendor class "android-dhcp-14""#
        );
        assert!(clients.holding(IpAddr::from([192, 168, 60, 78])).is_none());
        assert!(clients.holding("fd00::77".parse().unwrap()).is_none());
        // A renewal (ciaddr) from the client moves it; an ACK in either order works.
        let renew = message(
            BOOTREQUEST,
            [192, 168, 60, 99],
            [0; 4],
            &[(OPTION_MESSAGE_TYPE, &[DHCPREQUEST])],
        );
        clients.note(&parse(&renew).unwrap());
        assert!(clients.holding(ip).is_none());
        let (_, moved) = clients.holding(IpAddr::from([192, 168, 60, 99])).unwrap();
        assert_eq!(moved.host_name.as_deref(), Some("Pixel-7"), "names kept");
        // Leased to another machine, the address is that machine's.
        let mut other = parse(&ack()).unwrap();
        other.mac = Some([2, 0, 0, 0, 0, 1]);
        other.your_address = Some(Ipv4Addr::new(192, 168, 60, 99));
        clients.note(&other);
        let (mac, facts) = clients.holding(IpAddr::from([192, 168, 60, 99])).unwrap();
        assert_eq!(
            (mac, facts.host_name.as_deref()),
            ([2, 0, 0, 0, 0, 1], None)
        );
        assert_eq!(clients.clients[&MAC].address, None);
    }

    #[test]
    fn hostile_or_odd_messages_are_refused_or_read_safely() {
        let good = request();
        // Cut anywhere: either refused or read without the cut options.
        for end in 0..good.len() {
            if let Some(m) = parse(&good[..end]) {
                assert!(end >= FIXED + 4);
                assert_eq!(m.mac, Some(MAC));
            }
        }
        let mut no_cookie = good.clone();
        no_cookie[FIXED] = 0;
        assert_eq!(parse(&no_cookie), None);
        let mut other_op = good.clone();
        other_op[0] = 7;
        assert_eq!(parse(&other_op), None);
        // A host name with controls and invalid UTF-8, and an over-long one.
        let odd = message(
            BOOTREQUEST,
            [0; 4],
            [0; 4],
            &[
                (OPTION_HOST_NAME, b"A\x1b[31m\xffB"),
                (OPTION_VENDOR_CLASS, &[b'v'; 200]),
                (OPTION_MESSAGE_TYPE, &[1, 2]),
            ],
        );
        let m = parse(&odd).unwrap();
        assert_eq!(m.host_name.as_deref(), Some("A[31m\u{fffd}B"));
        assert_eq!(m.vendor_class.map(|v| v.len()), Some(MAX_TEXT_CHARS));
        assert_eq!(m.kind, None, "a two-byte message type is not one");
        // A non-Ethernet hardware address names no client.
        let mut token_ring = good;
        token_ring[1] = 6;
        let m = parse(&token_ring).unwrap();
        assert_eq!(m.mac, None);
        let mut clients = DhcpClients::default();
        clients.note(&m);
        assert_eq!(clients, DhcpClients::default());
    }

    #[test]
    fn past_the_bound_new_clients_are_not_remembered() {
        let mut clients = DhcpClients::default();
        for i in 0..MAX_CLIENTS + 10 {
            let [.., a, b] = (i as u32).to_be_bytes();
            let mut m = parse(&ack()).unwrap();
            m.mac = Some([2, 0, 0, 0, a, b]);
            m.your_address = Some(Ipv4Addr::new(10, 0, a, b));
            clients.note(&m);
        }
        assert_eq!(clients.clients.len(), MAX_CLIENTS);
        assert!(clients.holding(IpAddr::from([10, 0, 0, 5])).is_some());
        assert!(clients.holding(IpAddr::from([10, 0, 4, 5])).is_none());
    }
}
