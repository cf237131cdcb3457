//! Tunnels → what they carry: the decapsulation step of the pcap tap.
//!
//! Cloud traffic mirrors, switch SPAN sessions, gateways and mobile cores often hand a
//! tap the devices' packets inside other packets. [`ip_payload`] and
//! [`UdpTunnelPorts::payload`] recognise the encapsulations Zeek and Suricata decode
//! by default and return the frame or packet inside; [`packet`](super::packet)
//! decodes it as it decoded the outer one, so everything above (flows, HTTP, DNS,
//! TLS, device attribution by address or MAC) sees the inner traffic:
//! - **IP in IP**: IPv4 (protocol 4) and IPv6 (41: 6in4, 6to4, SIT) in IPv4 or IPv6.
//! - **GRE** version 0 (RFC 2784, with RFC 2890's key and sequence number): any
//!   ethertype [`link`] follows (IPv4, IPv6, MPLS, VLAN tags), transparent Ethernet
//!   bridging (0x6558), **ERSPAN** type I and II (0x88be) and III (0x22eb, with its
//!   platform-specific subheader), WCCP redirection (0x883e).
//! - **VXLAN** (RFC 7348, UDP port 4789), **Geneve** (RFC 8926, UDP 6081; options
//!   skipped), **GTP-U** (3GPP TS 29.281, UDP 2152; G-PDUs, extension headers
//!   skipped) and **Teredo** (RFC 4380, UDP 3544; authentication and origin
//!   indication skipped), on those IANA ports unless [`UdpTunnelPorts`] says others.
//!
//! A UDP tunnel is recognised by its port *and* its header: a datagram on one of
//! those ports whose header does not fit (VXLAN without its I flag, a GTP-U message
//! that is no G-PDU, Teredo whose IPv6 length disagrees with the datagram) is left an
//! ordinary datagram. An IP protocol number is not a guess, so a GRE header cut short,
//! or one with RFC 1701 source routing, is an error. GRE version 1 (PPTP's, carrying
//! PPP that is usually compressed and encrypted) is not decoded.
//!
//! Pure: bytes in, borrowed bytes out.

use std::fmt;

use crate::net::link::{self, LinkError, NetProto};

/// IP protocol number of IPv4 encapsulated in IP.
pub const PROTO_IPV4_IN_IP: u8 = 4;
/// IP protocol number of IPv6 encapsulated in IP.
pub const PROTO_IPV6_IN_IP: u8 = 41;
/// IP protocol number of GRE.
pub const PROTO_GRE: u8 = 47;
/// UDP destination port of VXLAN (IANA).
pub const VXLAN_PORT: u16 = 4789;
/// UDP destination port of Geneve (IANA).
pub const GENEVE_PORT: u16 = 6081;
/// UDP port of GTP-U (either side).
pub const GTP_U_PORT: u16 = 2152;
/// UDP port of a Teredo server or relay (either side).
pub const TEREDO_PORT: u16 = 3544;
/// Ports one UDP tunnel may be given (`--tunnel-port`): a configuration's bound.
pub const MAX_PORTS_PER_TUNNEL: usize = 64;

/// GRE protocol type of transparent Ethernet bridging (an Ethernet frame follows).
const ETHERTYPE_TEB: u16 = 0x6558;
const ETHERTYPE_ERSPAN_2: u16 = 0x88be;
const ETHERTYPE_ERSPAN_3: u16 = 0x22eb;
const ETHERTYPE_WCCP: u16 = 0x883e;

const GRE_CHECKSUM: u8 = 0x80;
const GRE_ROUTING: u8 = 0x40;
const GRE_KEY: u8 = 0x20;
const GRE_SEQUENCE: u8 = 0x10;

/// GTP-U message type of a G-PDU (user data).
const GTP_G_PDU: u8 = 0xff;
/// GTP-U extension headers followed before giving up.
const MAX_GTP_EXTENSIONS: usize = 16;

/// A kind of tunnel.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum TunnelKind {
    IpInIp,
    Gre,
    Erspan,
    Vxlan,
    Geneve,
    GtpU,
    Teredo,
}

impl TunnelKind {
    /// Every kind, in [`index`](Self::index) order.
    pub const ALL: [TunnelKind; 7] = [
        TunnelKind::IpInIp,
        TunnelKind::Gre,
        TunnelKind::Erspan,
        TunnelKind::Vxlan,
        TunnelKind::Geneve,
        TunnelKind::GtpU,
        TunnelKind::Teredo,
    ];

    /// Stable name, as a run's summary counts it.
    pub fn name(self) -> &'static str {
        match self {
            TunnelKind::IpInIp => "ip-in-ip",
            TunnelKind::Gre => "gre",
            TunnelKind::Erspan => "erspan",
            TunnelKind::Vxlan => "vxlan",
            TunnelKind::Geneve => "geneve",
            TunnelKind::GtpU => "gtp-u",
            TunnelKind::Teredo => "teredo",
        }
    }

    /// The kind of this [`name`](Self::name).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }

    /// Position in [`ALL`](Self::ALL), for counters kept in an array.
    pub fn index(self) -> usize {
        self as usize
    }
}

/// One tunnel layer: its kind and the number that tells its tunnels apart, where
/// the header has one (GRE key, ERSPAN session, VXLAN or Geneve VNI, GTP-U TEID).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tunnel {
    pub kind: TunnelKind,
    pub id: Option<u32>,
}

impl fmt::Display for Tunnel {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (name, id_name) = match self.kind {
            TunnelKind::IpInIp => ("IP in IP", ""),
            TunnelKind::Gre => ("GRE", "key"),
            TunnelKind::Erspan => ("ERSPAN", "session"),
            TunnelKind::Vxlan => ("VXLAN", "VNI"),
            TunnelKind::Geneve => ("Geneve", "VNI"),
            TunnelKind::GtpU => ("GTP-U", "TEID"),
            TunnelKind::Teredo => ("Teredo", ""),
        };
        match self.id {
            Some(id) if self.kind == TunnelKind::GtpU => write!(f, "{name} {id_name} {id:#010x}"),
            Some(id) => write!(f, "{name} {id_name} {id}"),
            None => f.write_str(name),
        }
    }
}

/// What a tunnel carries.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Inner<'a> {
    /// An Ethernet frame (VXLAN, Geneve and GRE bridging, ERSPAN).
    Ethernet(&'a [u8]),
    /// A network-layer packet, with the VLAN id of any tags before it.
    Net {
        proto: NetProto,
        payload: &'a [u8],
        vlan: Option<u16>,
    },
}

/// A tunnel layer taken off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Decapsulated<'a> {
    pub tunnel: Tunnel,
    pub inner: Inner<'a>,
}

/// A tunnel header that cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TunnelError {
    /// The packet ends inside the header.
    #[error("{layer} header needs {needed} bytes, {len} present")]
    Truncated {
        layer: &'static str,
        needed: usize,
        len: usize,
    },
    /// A header this module does not decode, or one that contradicts itself.
    #[error("{0}")]
    Malformed(String),
    /// The tags after a GRE protocol type.
    #[error(transparent)]
    Link(LinkError),
}

impl TunnelError {
    /// Whether the error is a packet cut short (rather than a bad header).
    pub fn is_truncated(&self) -> bool {
        match self {
            TunnelError::Truncated { .. } => true,
            TunnelError::Link(e) => e.is_truncated(),
            TunnelError::Malformed(_) => false,
        }
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    Some(u32::from_be_bytes(b.get(at..at + 4)?.try_into().ok()?))
}

fn truncated(layer: &'static str, needed: usize, len: usize) -> TunnelError {
    TunnelError::Truncated { layer, needed, len }
}

/// Whether an IP packet of protocol `protocol` may be a tunnel: the per-packet test
/// before [`ip_payload`].
#[inline(always)]
pub fn is_ip_tunnel(protocol: u8) -> bool {
    matches!(protocol, PROTO_IPV4_IN_IP | PROTO_IPV6_IN_IP | PROTO_GRE)
}

/// The payload of an IP packet of protocol `protocol`, if that protocol is a tunnel:
/// `None` for any other protocol (and for GRE version 1).
pub fn ip_payload(protocol: u8, payload: &[u8]) -> Option<Result<Decapsulated<'_>, TunnelError>> {
    let ip_in_ip = |proto| Decapsulated {
        tunnel: Tunnel {
            kind: TunnelKind::IpInIp,
            id: None,
        },
        inner: Inner::Net {
            proto,
            payload,
            vlan: None,
        },
    };
    match protocol {
        PROTO_IPV4_IN_IP => Some(Ok(ip_in_ip(NetProto::Ipv4))),
        PROTO_IPV6_IN_IP => Some(Ok(ip_in_ip(NetProto::Ipv6))),
        PROTO_GRE => gre(payload).transpose(),
        _ => None,
    }
}

/// How the header of a UDP tunnel is read.
type UdpDecoder = for<'a> fn(&'a [u8]) -> Option<Decapsulated<'a>>;

/// The tunnels carried in UDP, in the order their ports are tried: each with its
/// header reader and whether the source port counts too. VXLAN and Geneve are
/// known by their destination port alone (the source port is a hash of the inner
/// flow); GTP-U and Teredo peers send from their port as well.
const UDP_TUNNELS: [(TunnelKind, UdpDecoder, bool); 4] = [
    (TunnelKind::Vxlan, vxlan, false),
    (TunnelKind::Geneve, geneve, false),
    (TunnelKind::GtpU, gtp_u, true),
    (TunnelKind::Teredo, teredo, true),
];

/// A port setting that cannot be.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PortsError {
    #[error(
        "{0} is not carried in UDP: it has no port (UDP tunnels: vxlan, geneve, gtp-u, teredo)"
    )]
    NotUdp(&'static str),
    #[error("port 0 cannot carry a tunnel")]
    PortZero,
    #[error("{given} ports for {kind}: at most {MAX_PORTS_PER_TUNNEL}")]
    TooMany { kind: &'static str, given: usize },
}

/// Which UDP ports are read as which tunnel: IANA's ports by default, as Zeek and
/// Suricata do (VXLAN 4789, Geneve 6081, GTP-U 2152, Teredo 3544), others by
/// [`set`](Self::set) (`--tunnel-port`; Linux's own VXLAN default, which flannel
/// uses, is 8472).
#[derive(Clone)]
pub struct UdpTunnelPorts {
    /// The ports of each tunnel, in [`UDP_TUNNELS`] order.
    ports: [Vec<u16>; 4],
    /// Every one of those ports, a bit each: the per-datagram test.
    any: Box<[u64; 1024]>,
}

impl Default for UdpTunnelPorts {
    fn default() -> Self {
        let mut ports = UdpTunnelPorts {
            ports: [
                vec![VXLAN_PORT],
                vec![GENEVE_PORT],
                vec![GTP_U_PORT],
                vec![TEREDO_PORT],
            ],
            any: Box::new([0; 1024]),
        };
        ports.index();
        ports
    }
}

impl fmt::Debug for UdpTunnelPorts {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for ((kind, ..), ports) in UDP_TUNNELS.iter().zip(&self.ports) {
            map.entry(&kind.name(), ports);
        }
        map.finish()
    }
}

impl PartialEq for UdpTunnelPorts {
    fn eq(&self, other: &Self) -> bool {
        self.ports == other.ports
    }
}

impl Eq for UdpTunnelPorts {}

impl UdpTunnelPorts {
    fn slot(kind: TunnelKind) -> Option<usize> {
        UDP_TUNNELS.iter().position(|(k, ..)| *k == kind)
    }

    /// Reads `kind` on `ports` instead of its present ones; no ports turn it off.
    pub fn set(&mut self, kind: TunnelKind, ports: &[u16]) -> Result<(), PortsError> {
        let slot = Self::slot(kind).ok_or(PortsError::NotUdp(kind.name()))?;
        if ports.contains(&0) {
            return Err(PortsError::PortZero);
        }
        if ports.len() > MAX_PORTS_PER_TUNNEL {
            return Err(PortsError::TooMany {
                kind: kind.name(),
                given: ports.len(),
            });
        }
        let mut ports = ports.to_vec();
        ports.sort_unstable();
        ports.dedup();
        self.ports[slot] = ports;
        self.index();
        Ok(())
    }

    /// The tunnels carried in UDP, whose ports can be set.
    pub fn kinds() -> impl Iterator<Item = TunnelKind> {
        UDP_TUNNELS.iter().map(|(kind, ..)| *kind)
    }

    /// The ports `kind` is read on (none for a tunnel UDP does not carry).
    pub fn ports(&self, kind: TunnelKind) -> &[u16] {
        Self::slot(kind).map_or(&[], |slot| &self.ports[slot])
    }

    /// Whether every tunnel is on its IANA port only.
    pub fn is_default(&self) -> bool {
        *self == Self::default()
    }

    fn index(&mut self) {
        self.any.fill(0);
        for &port in self.ports.iter().flatten() {
            self.any[usize::from(port >> 6)] |= 1 << (port & 63);
        }
    }

    #[inline(always)]
    fn has(&self, port: u16) -> bool {
        (self.any[usize::from(port >> 6)] >> (port & 63)) & 1 != 0
    }

    /// Whether a UDP datagram between these ports may be a tunnel: the per-datagram
    /// test before [`payload`](Self::payload).
    #[inline(always)]
    pub fn may_carry(&self, src_port: u16, dst_port: u16) -> bool {
        self.has(dst_port) || self.has(src_port)
    }

    /// The payload of a UDP datagram, if its port and header say it is a tunnel.
    /// Where several tunnels share a port, the first whose header fits wins.
    pub fn payload<'a>(
        &self,
        src_port: u16,
        dst_port: u16,
        payload: &'a [u8],
    ) -> Option<Decapsulated<'a>> {
        UDP_TUNNELS
            .iter()
            .zip(&self.ports)
            .filter(|((_, _, either_side), ports)| {
                ports.contains(&dst_port) || (*either_side && ports.contains(&src_port))
            })
            .find_map(|((_, decode, _), _)| decode(payload))
    }
}

/// GRE: flags and version (2 bytes), protocol type (2), then the checksum and
/// reserved word (C), key (K) and sequence number (S) when their flags are set.
fn gre(data: &[u8]) -> Result<Option<Decapsulated<'_>>, TunnelError> {
    let (Some(&flags), Some(&version), Some(protocol)) = (data.first(), data.get(1), be16(data, 2))
    else {
        return Err(truncated("GRE", 4, data.len()));
    };
    if version & 0x07 != 0 {
        return Ok(None);
    }
    if flags & GRE_ROUTING != 0 {
        return Err(TunnelError::Malformed(
            "GRE with source routing (RFC 1701) is not decoded".into(),
        ));
    }
    let key_at = if flags & GRE_CHECKSUM != 0 { 8 } else { 4 };
    let seq_at = key_at + if flags & GRE_KEY != 0 { 4 } else { 0 };
    let len = seq_at + if flags & GRE_SEQUENCE != 0 { 4 } else { 0 };
    let rest = data
        .get(len..)
        .ok_or_else(|| truncated("GRE", len, data.len()))?;
    let key = if flags & GRE_KEY != 0 {
        be32(data, key_at)
    } else {
        None
    };
    let gre = |inner| Decapsulated {
        tunnel: Tunnel {
            kind: TunnelKind::Gre,
            id: key,
        },
        inner,
    };
    Ok(Some(match protocol {
        ETHERTYPE_TEB => gre(Inner::Ethernet(rest)),
        ETHERTYPE_ERSPAN_2 if flags & GRE_SEQUENCE != 0 => erspan_2(rest)?,
        // Type I: the mirrored frame right after a GRE header without a sequence number.
        ETHERTYPE_ERSPAN_2 => Decapsulated {
            tunnel: Tunnel {
                kind: TunnelKind::Erspan,
                id: None,
            },
            inner: Inner::Ethernet(rest),
        },
        ETHERTYPE_ERSPAN_3 => erspan_3(rest)?,
        // A 4-byte redirect header, absent in some implementations: then IPv4 follows
        // at once (Wireshark's test: the version nibble).
        ETHERTYPE_WCCP => {
            let payload = if rest.first().map(|b| b >> 4) == Some(4) {
                rest
            } else {
                rest.get(4..)
                    .ok_or_else(|| truncated("WCCP", 4, rest.len()))?
            };
            gre(Inner::Net {
                proto: NetProto::Ipv4,
                payload,
                vlan: None,
            })
        }
        ethertype => {
            let (proto, payload, vlan) =
                link::follow_ethertype(ethertype, rest).map_err(TunnelError::Link)?;
            gre(Inner::Net {
                proto,
                payload,
                vlan,
            })
        }
    }))
}

/// ERSPAN type II: version (4 bits, 1) and VLAN (12); CoS, encapsulation, truncated
/// flag and session id (10 bits); reserved and index (4 bytes); the mirrored frame.
fn erspan_2(data: &[u8]) -> Result<Decapsulated<'_>, TunnelError> {
    let (Some(&first), Some(session), Some(frame)) = (data.first(), be16(data, 2), data.get(8..))
    else {
        return Err(truncated("ERSPAN type II", 8, data.len()));
    };
    if first >> 4 != 1 {
        return Err(TunnelError::Malformed(format!(
            "ERSPAN type II header with version {}",
            first >> 4
        )));
    }
    Ok(erspan(session, frame))
}

/// ERSPAN type III: version (4 bits, 2), VLAN, CoS, BSO, T, session id (10 bits),
/// timestamp (4 bytes), SGT (2), flags (2) whose last bit, O, says an 8-byte
/// platform-specific subheader follows; then the mirrored frame.
fn erspan_3(data: &[u8]) -> Result<Decapsulated<'_>, TunnelError> {
    let (Some(&first), Some(session), Some(&flags)) = (data.first(), be16(data, 2), data.get(11))
    else {
        return Err(truncated("ERSPAN type III", 12, data.len()));
    };
    if first >> 4 != 2 {
        return Err(TunnelError::Malformed(format!(
            "ERSPAN type III header with version {}",
            first >> 4
        )));
    }
    let len = if flags & 1 != 0 { 20 } else { 12 };
    let frame = data
        .get(len..)
        .ok_or_else(|| truncated("ERSPAN type III", len, data.len()))?;
    Ok(erspan(session, frame))
}

fn erspan(session: u16, frame: &[u8]) -> Decapsulated<'_> {
    Decapsulated {
        tunnel: Tunnel {
            kind: TunnelKind::Erspan,
            id: Some(u32::from(session & 0x03ff)),
        },
        inner: Inner::Ethernet(frame),
    }
}

/// VXLAN: flags (1 byte; I, 0x08, says the VNI is valid), reserved (3), VNI (3),
/// reserved (1), then an Ethernet frame. Other flag bits (group policy) are allowed.
fn vxlan(payload: &[u8]) -> Option<Decapsulated<'_>> {
    let h = payload.get(..8)?;
    if h[0] & 0x08 == 0 {
        return None;
    }
    Some(Decapsulated {
        tunnel: Tunnel {
            kind: TunnelKind::Vxlan,
            id: Some(u32::from_be_bytes([0, h[4], h[5], h[6]])),
        },
        inner: Inner::Ethernet(payload.get(8..)?),
    })
}

/// Geneve: version (2 bits, 0) and options length (6 bits, 4-byte words); O (a
/// control message, no user data) and C flags; protocol type (2 bytes, an
/// ethertype); VNI (3); reserved (1); options; the payload.
fn geneve(payload: &[u8]) -> Option<Decapsulated<'_>> {
    let h = payload.get(..8)?;
    if h[0] >> 6 != 0 || h[1] & 0x80 != 0 {
        return None;
    }
    let rest = payload.get(8 + usize::from(h[0] & 0x3f) * 4..)?;
    let inner = match u16::from_be_bytes([h[2], h[3]]) {
        ETHERTYPE_TEB => Inner::Ethernet(rest),
        ethertype => {
            let (proto, payload, vlan) = link::follow_ethertype(ethertype, rest).ok()?;
            Inner::Net {
                proto,
                payload,
                vlan,
            }
        }
    };
    Some(Decapsulated {
        tunnel: Tunnel {
            kind: TunnelKind::Geneve,
            id: Some(u32::from_be_bytes([0, h[4], h[5], h[6]])),
        },
        inner,
    })
}

/// GTP-U: flags (version 3 bits = 1, PT = 1, spare, E, S, PN), message type, length
/// of what follows the first 8 bytes, TEID (4); when E, S or PN is set, sequence
/// number (2), N-PDU number (1) and next extension header type (1), then extension
/// headers (length in 4-byte units, content, next type); then the user's IP packet.
fn gtp_u(payload: &[u8]) -> Option<Decapsulated<'_>> {
    let h = payload.get(..8)?;
    if h[0] >> 5 != 1 || h[0] & 0x10 == 0 || h[1] != GTP_G_PDU {
        return None;
    }
    // A frame cut by the snapshot length keeps what it has.
    let end = (8 + usize::from(u16::from_be_bytes([h[2], h[3]]))).min(payload.len());
    let mut at = 8;
    if h[0] & 0x07 != 0 {
        let mut next = *payload.get(11)?;
        at = 12;
        for _ in 0..MAX_GTP_EXTENSIONS {
            if next == 0 {
                break;
            }
            let len = usize::from(*payload.get(at)?) * 4;
            if len == 0 {
                return None;
            }
            next = *payload.get(at + len - 1)?;
            at += len;
        }
        if next != 0 {
            return None;
        }
    }
    let pdu = payload.get(at..end)?;
    let proto = match pdu.first()? >> 4 {
        4 => NetProto::Ipv4,
        6 => NetProto::Ipv6,
        // Ethernet and unstructured PDU sessions carry no version nibble to go by.
        _ => return None,
    };
    Some(Decapsulated {
        tunnel: Tunnel {
            kind: TunnelKind::GtpU,
            id: Some(u32::from_be_bytes([h[4], h[5], h[6], h[7]])),
        },
        inner: Inner::Net {
            proto,
            payload: pdu,
            vlan: None,
        },
    })
}

/// Teredo: an optional authentication indicator (0x0001, client id length, auth
/// value length, client id, auth value, nonce (8), confirmation (1)) and origin
/// indication (0x0000, port (2), address (4)), then an IPv6 packet that must fill the
/// datagram exactly (Zeek's test: a Teredo port alone proves little).
fn teredo(payload: &[u8]) -> Option<Decapsulated<'_>> {
    let mut rest = payload;
    if rest.starts_with(&[0, 1]) {
        let id_len = usize::from(*rest.get(2)?);
        let auth_len = usize::from(*rest.get(3)?);
        rest = rest.get(4 + id_len + auth_len + 9..)?;
    }
    if rest.starts_with(&[0, 0]) {
        rest = rest.get(8..)?;
    }
    let ip = rest.get(..40)?;
    if ip[0] >> 4 != 6 || 40 + usize::from(u16::from_be_bytes([ip[4], ip[5]])) != rest.len() {
        return None;
    }
    Some(Decapsulated {
        tunnel: Tunnel {
            kind: TunnelKind::Teredo,
            id: None,
        },
        inner: Inner::Net {
            proto: NetProto::Ipv6,
            payload: rest,
            vlan: None,
        },
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    const FRAME: &[u8] = b"\x02\0\0\0\0\x02\x02\0\0\0\0\x01\x08\x00inner";
    const IP4: &[u8] = &[
        0x45, 0, 0, 20, 0, 0, 0, 0, 64, 6, 0, 0, 10, 0, 0, 1, 10, 0, 0, 2,
    ];

    /// What a tunnel carried, owned, so that tests can build inputs in place.
    #[derive(Debug, PartialEq, Eq)]
    enum Got {
        Ethernet(Vec<u8>),
        Net(NetProto, Vec<u8>, Option<u16>),
    }

    fn got(d: Decapsulated<'_>) -> (Tunnel, Got) {
        let inner = match d.inner {
            Inner::Ethernet(f) => Got::Ethernet(f.to_vec()),
            Inner::Net {
                proto,
                payload,
                vlan,
            } => Got::Net(proto, payload.to_vec(), vlan),
        };
        (d.tunnel, inner)
    }

    fn ip(protocol: u8, data: &[u8]) -> Option<Result<(Tunnel, Got), TunnelError>> {
        ip_payload(protocol, data).map(|r| r.map(got))
    }

    fn gre(data: &[u8]) -> (Tunnel, Got) {
        ip(47, data).expect("GRE").expect("a GRE packet")
    }

    fn gre_error(data: &[u8]) -> TunnelError {
        ip(47, data).expect("GRE").expect_err("a bad GRE packet")
    }

    fn udp(src_port: u16, dst_port: u16, data: &[u8]) -> Option<(Tunnel, Got)> {
        UdpTunnelPorts::default()
            .payload(src_port, dst_port, data)
            .map(got)
    }

    fn ipv4(payload: &[u8]) -> Got {
        Got::Net(NetProto::Ipv4, payload.to_vec(), None)
    }

    fn ethernet(frame: &[u8]) -> Got {
        Got::Ethernet(frame.to_vec())
    }

    fn ipv6(payload_len: usize) -> Vec<u8> {
        let mut v = vec![0x60, 0, 0, 0];
        v.extend_from_slice(&(payload_len as u16).to_be_bytes());
        v.extend_from_slice(&[59, 64]);
        v.extend_from_slice(&[0; 32]);
        v.extend(std::iter::repeat_n(0xab, payload_len));
        v
    }

    fn cat(parts: &[&[u8]]) -> Vec<u8> {
        parts.concat()
    }

    fn tunnel(kind: TunnelKind, id: Option<u32>) -> Tunnel {
        Tunnel { kind, id }
    }

    #[test]
    fn ip_in_ip_by_protocol_number() {
        let plain = tunnel(TunnelKind::IpInIp, None);
        assert_eq!(ip(4, IP4).unwrap(), Ok((plain, ipv4(IP4))));
        let six = ipv6(0);
        assert_eq!(
            ip(41, &six).unwrap(),
            Ok((plain, Got::Net(NetProto::Ipv6, six, None)))
        );
        assert!(ip(6, IP4).is_none());
        assert!(ip(17, IP4).is_none());
    }

    #[test]
    fn gre_plain_and_with_checksum_key_and_sequence() {
        assert_eq!(
            gre(&cat(&[&[0, 0, 0x08, 0x00], IP4])),
            (tunnel(TunnelKind::Gre, None), ipv4(IP4))
        );

        // C, K and S: checksum + reserved, key 0x01020304, sequence 9.
        let h = [
            0xb0, 0, 0x86, 0xdd, 0xaa, 0xbb, 0, 0, 1, 2, 3, 4, 0, 0, 0, 9,
        ];
        let six = ipv6(0);
        let (t, inner) = gre(&cat(&[&h, &six]));
        assert_eq!(t, tunnel(TunnelKind::Gre, Some(0x0102_0304)));
        assert_eq!(t.to_string(), "GRE key 16909060");
        assert_eq!(inner, Got::Net(NetProto::Ipv6, six, None));

        // Only S: no key, the payload starts after 8 bytes.
        assert_eq!(
            gre(&cat(&[&[0x10, 0, 0x08, 0, 0, 0, 0, 1], IP4])),
            (tunnel(TunnelKind::Gre, None), ipv4(IP4))
        );
    }

    #[test]
    fn gre_bridging_vlan_mpls_and_other_types() {
        assert_eq!(gre(&cat(&[&[0, 0, 0x65, 0x58], FRAME])).1, ethernet(FRAME));
        // A VLAN tag straight after GRE (ethertype 0x8100).
        assert_eq!(
            gre(&cat(&[&[0, 0, 0x81, 0x00, 0, 30, 0x08, 0x00], IP4])).1,
            Got::Net(NetProto::Ipv4, IP4.to_vec(), Some(30))
        );
        // MPLS (bottom of stack), then IPv4.
        assert_eq!(
            gre(&cat(&[&[0, 0, 0x88, 0x47, 0, 0x01, 0x01, 64], IP4])).1,
            ipv4(IP4)
        );
        // Not IP: taken off, but nothing the IP layer takes.
        assert_eq!(
            gre(&[0, 0, 0x08, 0x06, 1, 2]).1,
            Got::Net(NetProto::Other(0x0806), vec![1, 2], None)
        );
    }

    #[test]
    fn gre_errors_and_version_1() {
        for cut in [&[][..], &[0], &[0, 0, 8]] {
            let e = gre_error(cut);
            assert!(e.is_truncated(), "{e}");
        }
        // K flag without the key.
        assert_eq!(
            gre_error(&[0x20, 0, 8, 0, 1, 2]).to_string(),
            "GRE header needs 8 bytes, 6 present"
        );
        let e = gre_error(&[0x40, 0, 8, 0, 0, 0, 0, 0]);
        assert!(!e.is_truncated());
        assert!(e.to_string().contains("source routing"), "{e}");
        // A VLAN tag cut short after GRE is a truncated packet too.
        assert!(gre_error(&[0, 0, 0x81, 0x00, 0]).is_truncated());
        // PPTP's enhanced GRE (version 1) is left alone.
        assert!(ip(47, &[0x30, 0x81, 0x88, 0x0b, 0, 4, 0, 7, 0, 0, 0, 1]).is_none());
    }

    #[test]
    fn erspan_types_one_two_and_three() {
        // Type I: no sequence number, the frame at once.
        assert_eq!(
            gre(&cat(&[&[0, 0, 0x88, 0xbe], FRAME])),
            (tunnel(TunnelKind::Erspan, None), ethernet(FRAME))
        );

        // Type II, session 7.
        let gre2 = [0x10, 0, 0x88, 0xbe, 0, 0, 0, 1];
        let erspan = [0x10, 0, 0x00, 0x07, 0, 0, 0, 0];
        let (t, inner) = gre(&cat(&[&gre2, &erspan, FRAME]));
        assert_eq!(t.to_string(), "ERSPAN session 7");
        assert_eq!(inner, ethernet(FRAME));
        let bad = [0x20, 0, 0x00, 0x07, 0, 0, 0, 0];
        assert_eq!(
            gre_error(&cat(&[&gre2, &bad, FRAME])).to_string(),
            "ERSPAN type II header with version 2"
        );
        assert!(gre_error(&cat(&[&gre2, &erspan[..7]])).is_truncated());

        // Type III, session 9, without and with the platform subheader.
        let gre3 = [0x10, 0, 0x22, 0xeb, 0, 0, 0, 1];
        let mut h3 = [0x20, 0, 0x00, 0x09, 1, 2, 3, 4, 0, 0, 0, 0];
        assert_eq!(
            gre(&cat(&[&gre3, &h3, FRAME])),
            (tunnel(TunnelKind::Erspan, Some(9)), ethernet(FRAME))
        );
        h3[11] = 1;
        assert_eq!(
            gre(&cat(&[&gre3, &h3, &[0xee; 8], FRAME])).1,
            ethernet(FRAME)
        );
        assert!(gre_error(&cat(&[&gre3, &h3, &[0xee; 7]])).is_truncated());
        h3[0] = 0x10;
        assert!(!gre_error(&cat(&[&gre3, &h3, &[0xee; 8], FRAME])).is_truncated());
    }

    #[test]
    fn wccp_with_and_without_its_redirect_header() {
        for redirect in [&[][..], &[0, 0, 0, 0]] {
            assert_eq!(
                gre(&cat(&[&[0, 0, 0x88, 0x3e], redirect, IP4])).1,
                ipv4(IP4)
            );
        }
    }

    #[test]
    fn vxlan_needs_its_i_flag() {
        let h = [0x08, 0, 0, 0, 0, 0x10, 0x92, 0];
        let (t, inner) = udp(50000, 4789, &cat(&[&h, FRAME])).unwrap();
        assert_eq!(t.to_string(), "VXLAN VNI 4242");
        assert_eq!(inner, ethernet(FRAME));
        // Group policy flag as well: still VXLAN.
        let gbp = [0x88, 0, 0, 5, 0, 0, 1, 0];
        assert!(udp(50000, 4789, &cat(&[&gbp, FRAME])).is_some());
        let no_i = [0, 0, 0, 0, 0, 0x10, 0x92, 0];
        assert!(udp(50000, 4789, &cat(&[&no_i, FRAME])).is_none());
        assert!(udp(50000, 4789, &h[..7]).is_none());
        // Only the destination port counts.
        assert!(udp(4789, 50000, &cat(&[&h, FRAME])).is_none());
    }

    #[test]
    fn geneve_skips_options_and_control_messages() {
        // One option of 2 words (class 0x0108, type 1, length 1, 4 bytes of data).
        let h = [0x02, 0, 0x65, 0x58, 0, 0, 77, 0];
        let opt = [0x01, 0x08, 0x01, 0x01, 1, 2, 3, 4];
        let (t, inner) = udp(40000, 6081, &cat(&[&h, &opt, FRAME])).unwrap();
        assert_eq!(t.to_string(), "Geneve VNI 77");
        assert_eq!(inner, ethernet(FRAME));
        let ip = [0x00, 0, 0x08, 0x00, 0, 0, 1, 0];
        assert_eq!(udp(40000, 6081, &cat(&[&ip, IP4])).unwrap().1, ipv4(IP4));
        let oam = [0x00, 0x80, 0x65, 0x58, 0, 0, 77, 0];
        assert!(udp(40000, 6081, &cat(&[&oam, FRAME])).is_none());
        let version1 = [0x40, 0, 0x65, 0x58, 0, 0, 77, 0];
        assert!(udp(40000, 6081, &cat(&[&version1, FRAME])).is_none());
        // Options longer than the datagram.
        assert!(udp(40000, 6081, &[0x3f, 0, 0x65, 0x58, 0, 0, 77, 0, 1]).is_none());
    }

    #[test]
    fn gtp_u_g_pdus_with_extension_headers() {
        let len = |n: usize| (n as u16).to_be_bytes();
        // No optional fields.
        let l = len(IP4.len());
        let h = [0x30, 0xff, l[0], l[1], 0xde, 0xad, 0xbe, 0xef];
        let (t, inner) = udp(2152, 2152, &cat(&[&h, IP4])).unwrap();
        assert_eq!(t.to_string(), "GTP-U TEID 0xdeadbeef");
        assert_eq!(inner, ipv4(IP4));

        // E flag: optional word, then a PDU session container (1 word), then IPv4.
        let l = len(4 + 4 + IP4.len());
        let h = [0x34, 0xff, l[0], l[1], 0, 0, 0, 1, 0, 0, 0, 0x85];
        let ext = [1, 0x10, 0x05, 0];
        assert_eq!(
            udp(2152, 2152, &cat(&[&h, &ext, IP4])).unwrap().1,
            ipv4(IP4)
        );

        // Bytes past the length field are not the user's packet.
        let l = len(IP4.len());
        let h = [0x30, 0xff, l[0], l[1], 0, 0, 0, 1];
        assert_eq!(
            udp(2152, 2152, &cat(&[&h, IP4, &[0xff; 3]])).unwrap().1,
            ipv4(IP4)
        );

        // Not user data, bad extension chains, no IP inside: plain UDP.
        let echo = [0x32, 0x01, 0, 4, 0, 0, 0, 0, 0, 1, 0, 0];
        assert!(udp(2152, 2152, &echo).is_none());
        let h = [0x34, 0xff, 0, 20, 0, 0, 0, 1, 0, 0, 0, 0x85];
        assert!(udp(2152, 2152, &cat(&[&h, &[0, 0, 0, 0], IP4])).is_none());
        assert!(udp(2152, 2152, &cat(&[&h, &[1, 0, 0, 0x85]])).is_none());
        let l = len(3);
        assert!(udp(
            2152,
            2152,
            &[0x30, 0xff, l[0], l[1], 0, 0, 0, 1, 0x12, 0, 0]
        )
        .is_none());
        assert!(udp(2152, 2152, &[0x50, 0xff, 0, 0, 0, 0, 0, 1]).is_none());
    }

    #[test]
    fn teredo_with_authentication_and_origin_indication() {
        let six = ipv6(4);
        let teredo = |data: &[u8]| Got::Net(NetProto::Ipv6, data.to_vec(), None);
        assert_eq!(
            udp(3544, 50000, &six),
            Some((tunnel(TunnelKind::Teredo, None), teredo(&six)))
        );
        let origin = [0, 0, 0xf2, 0x27, 0x3f, 0x57, 0xfe, 0x53];
        let auth = [0, 1, 2, 3, 0xa, 0xb, 1, 2, 3, 0, 0, 0, 0, 0, 0, 0, 0, 0];
        assert_eq!(
            udp(50000, 3544, &cat(&[&auth, &origin, &six])).unwrap().1,
            teredo(&six)
        );
        // The IPv6 length must fill the datagram.
        assert!(udp(3544, 50000, &six[..six.len() - 1]).is_none());
        assert!(udp(3544, 50000, &cat(&[&six, &[0]])).is_none());
        assert!(udp(3544, 50000, IP4).is_none());
    }

    #[test]
    fn udp_tunnels_on_other_ports_or_none() {
        let vxlan = cat(&[&[0x08, 0, 0, 0, 0, 0x10, 0x92, 0], FRAME]);
        let mut ports = UdpTunnelPorts::default();
        assert!(ports.is_default());
        assert!(!ports.may_carry(50000, 8472));
        ports.set(TunnelKind::Vxlan, &[8472, 4789, 8472]).unwrap();
        assert!(!ports.is_default());
        assert_eq!(ports.ports(TunnelKind::Vxlan), [4789, 8472]);
        assert!(ports.may_carry(50000, 8472));
        for dst in [4789, 8472] {
            let (t, _) = ports.payload(50000, dst, &vxlan).map(got).unwrap();
            assert_eq!(t.to_string(), "VXLAN VNI 4242");
        }
        // Still by the destination port only.
        assert!(ports.payload(8472, 50000, &vxlan).is_none());

        // No ports: not decoded at all, nor tested for.
        ports.set(TunnelKind::GtpU, &[]).unwrap();
        assert!(ports.ports(TunnelKind::GtpU).is_empty());
        assert!(!ports.may_carry(2152, 2152));
        let mut g_pdu = vec![0x30, 0xff, 0, IP4.len() as u8, 0, 0, 0, 1];
        g_pdu.extend_from_slice(IP4);
        assert!(ports.payload(2152, 2152, &g_pdu).is_none());
        // GTP-U moved: either side's port still counts.
        ports.set(TunnelKind::GtpU, &[3386]).unwrap();
        assert!(ports.payload(3386, 40000, &g_pdu).is_some());
        assert!(ports.payload(40000, 3386, &g_pdu).is_some());
        assert_eq!(
            format!("{ports:?}"),
            r#"{"vxlan": [4789, 8472], "geneve": [6081], "gtp-u": [3386], "teredo": [3544]}"#
        );
    }

    #[test]
    fn tunnels_sharing_a_port_are_told_apart_by_their_headers() {
        let mut ports = UdpTunnelPorts::default();
        ports.set(TunnelKind::Geneve, &[4789]).unwrap();
        let vxlan = cat(&[&[0x08, 0, 0, 0, 0, 0, 7, 0], FRAME]);
        let geneve = cat(&[&[0, 0, 0x65, 0x58, 0, 0, 7, 0], FRAME]);
        let kind = |data: &[u8]| ports.payload(1, 4789, data).map(|d| d.tunnel.kind);
        assert_eq!(kind(&vxlan), Some(TunnelKind::Vxlan));
        // No I flag, so no VXLAN; a Geneve header fits.
        assert_eq!(kind(&geneve), Some(TunnelKind::Geneve));
    }

    #[test]
    fn port_settings_that_cannot_be() {
        let mut ports = UdpTunnelPorts::default();
        assert_eq!(
            ports.set(TunnelKind::Gre, &[4754]),
            Err(PortsError::NotUdp("gre"))
        );
        assert_eq!(
            ports.set(TunnelKind::Vxlan, &[0]),
            Err(PortsError::PortZero)
        );
        let many: Vec<u16> = (1..=65).collect();
        assert_eq!(
            ports
                .set(TunnelKind::Teredo, &many)
                .unwrap_err()
                .to_string(),
            "65 ports for teredo: at most 64"
        );
        assert!(ports.is_default(), "a refused setting changes nothing");
        assert!(ports.ports(TunnelKind::Gre).is_empty());
    }

    proptest! {
        #[test]
        fn never_panics_and_stays_inside_the_input(
            data in proptest::collection::vec(any::<u8>(), 0..96),
            // Any port `set` takes (it refuses 0).
            port in prop_oneof![Just(4789u16), Just(6081), Just(2152), Just(3544), 1..=u16::MAX],
        ) {
            let inside = |d: &Decapsulated<'_>| {
                let inner = match d.inner {
                    Inner::Ethernet(f) => f,
                    Inner::Net { payload, .. } => payload,
                };
                let (start, end) = (data.as_ptr() as usize, data.as_ptr() as usize + data.len());
                let (a, b) = (inner.as_ptr() as usize, inner.as_ptr() as usize + inner.len());
                start <= a && b <= end
            };
            for protocol in [4, 6, 17, 41, 47, 50] {
                if let Some(tunnel) = ip_payload(protocol, &data) {
                    prop_assert!(is_ip_tunnel(protocol));
                    if let Ok(d) = tunnel {
                        prop_assert!(inside(&d));
                    }
                }
            }
            let mut ports = UdpTunnelPorts::default();
            ports.set(TunnelKind::Teredo, &[port, 8472]).unwrap();
            for (src, dst) in [(1234, port), (port, 1234)] {
                // The quick test never hides a tunnel.
                if let Some(d) = ports.payload(src, dst, &data) {
                    prop_assert!(ports.may_carry(src, dst));
                    prop_assert!(inside(&d));
                }
            }
        }
    }
}
