//! Link layer → network layer: strips a frame's link header and says what it carries.
//!
//! Second stage of the pcap tap, between [`capture`](super::capture) (frames with a
//! [`LinkType`]) and [`ip`](super::ip). [`decode`] handles:
//! - **Ethernet II** (`etherparse`'s header slice), with any stack of 802.1Q / 802.1ad
//!   / old QinQ (0x9100, 0x9200) tags up to [`MAX_TAGS`]; the **outer** VLAN id is
//!   kept, as a gateway's per-VLAN device mapping needs it. 802.3 frames with LLC/SNAP
//!   carrying an ethertype, MPLS label stacks (IP guessed from the version nibble after
//!   the bottom label) and PPPoE sessions are unwrapped too.
//! - **Linux cooked capture** v1 (16 bytes) and v2 (20 bytes), both shimmed here:
//!   etherparse has no SLL2, and its SLL parser rejects the ARPHRD_LOOPBACK, NONE and
//!   PPP hardware types that `tcpdump -i any` records for `lo` and VPN `tun`
//!   interfaces. Only the source link address exists; it is a MAC when the hardware
//!   type is Ethernet and its length 6.
//! - **Raw IP** (the version nibble decides), raw IPv4, raw IPv6.
//! - **BSD loopback**: NULL has the address family in the capturing host's byte order
//!   (we read it in the order that gives a value below 2^16, as Wireshark does), LOOP
//!   in network order. AF_INET is 2; AF_INET6 is 24, 28 or 30 depending on the BSD.
//!
//! - **Linux NFLOG** (link type 239, `LinkType::Other(239)`): the packet TLV, IP
//!   version from the header's address family.
//! - **802.11**, bare (105) or behind radiotap (127): data frames, in
//!   [`wlan`].
//!
//! Non-IP traffic (ARP, LLDP, …) is [`NetProto::Other`], not an error. The payload is
//! a borrowed slice of the frame (Ethernet padding included: the IP layer cuts it by
//! its total length).

use etherparse::Ethernet2HeaderSlice;

use crate::net::capture::LinkType;
use crate::net::wlan;

/// Most VLAN tags, MPLS labels and other shims unwrapped before giving up.
pub const MAX_TAGS: usize = 8;

/// Ethertype of IPv4.
pub const ETHERTYPE_IPV4: u16 = 0x0800;
/// Ethertype of IPv6.
pub const ETHERTYPE_IPV6: u16 = 0x86dd;
const VLAN_TPIDS: [u16; 4] = [0x8100, 0x88a8, 0x9100, 0x9200];
const ETHERTYPE_MPLS: [u16; 2] = [0x8847, 0x8848];
const ETHERTYPE_PPPOE_SESSION: u16 = 0x8864;
const ARPHRD_ETHER: u16 = 1;
/// LINKTYPE of Linux NFLOG captures (`tcpdump -i nflog:N`), decoded as a shim.
pub const LINKTYPE_NFLOG: u32 = 239;
const NFULA_PAYLOAD: u16 = 9;
const ARPHRD_NETLINK: u16 = 824;

/// What a frame carries above the link layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NetProto {
    /// IPv4.
    Ipv4,
    /// IPv6.
    Ipv6,
    /// Anything else, with its ethertype (or link protocol number) when known.
    Other(u16),
    /// An 802.11 A-MSDU: subframes, each with its own addresses and LLC/SNAP
    /// header, that [`wlan::msdus`] takes apart.
    WlanAggregate,
    /// A protected 802.11 data frame, whole (header included), whose encrypted body
    /// starts at this offset: for [`wpa`](super::wpa) to decrypt.
    WlanProtected(u16),
    /// A fragment of an 802.11 MSDU, unprotected, whole (header included), whose
    /// body starts at this offset: for [`wlan_defrag`](super::wlan_defrag) to put
    /// together with the others.
    WlanFragment(u16),
    /// An 802.11 management frame that [`wpa`](super::wpa) reads, whole: one that
    /// names its network (beacon, probe response, association request), whose SSID
    /// keys are derived with, or a reassociation, which carries the keys of a fast
    /// BSS transition. [`wlan::management`] reads it.
    WlanManagement,
}

/// A frame with its link header removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct LinkFrame<'a> {
    /// Source MAC address (Ethernet; SLL when the link address is a MAC).
    pub src_mac: Option<[u8; 6]>,
    /// Destination MAC address (Ethernet only).
    pub dst_mac: Option<[u8; 6]>,
    /// VLAN id of the outermost 802.1Q/802.1ad tag.
    pub vlan: Option<u16>,
    /// The network protocol of `payload`.
    pub proto: NetProto,
    /// The bytes after the link header(s).
    pub payload: &'a [u8],
}

/// A frame whose link layer cannot be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum LinkError {
    /// The frame ends inside a link header.
    #[error("{layer} header needs {needed} bytes, the frame has {len}")]
    Truncated {
        layer: &'static str,
        needed: usize,
        len: usize,
    },
    /// More tags or labels than [`MAX_TAGS`].
    #[error("more than {MAX_TAGS} VLAN tags, MPLS labels or shims")]
    TooManyTags,
    /// A raw-IP frame whose first nibble is neither 4 nor 6.
    #[error("raw IP frame with IP version {0}")]
    BadIpVersion(u8),
    /// A link type this module does not decode.
    #[error("unsupported link type {0}")]
    Unsupported(u32),
    /// A frame of a supported link type in a form not read (802.11 A-MSDU, …).
    #[error("{0} not decoded")]
    NotDecoded(String),
}

impl LinkError {
    /// Whether the error is a short frame (rather than an unknown format).
    pub fn is_truncated(&self) -> bool {
        matches!(self, LinkError::Truncated { .. })
    }
}

fn be16(b: &[u8], at: usize) -> Option<u16> {
    Some(u16::from_be_bytes([*b.get(at)?, *b.get(at + 1)?]))
}

fn need<'a>(data: &'a [u8], n: usize, layer: &'static str) -> Result<&'a [u8], LinkError> {
    data.get(n..).ok_or(LinkError::Truncated {
        layer,
        needed: n,
        len: data.len(),
    })
}

fn ip_by_nibble(payload: &[u8]) -> Result<NetProto, LinkError> {
    match payload.first().map(|b| b >> 4) {
        Some(4) => Ok(NetProto::Ipv4),
        Some(6) => Ok(NetProto::Ipv6),
        Some(v) => Err(LinkError::BadIpVersion(v)),
        None => Err(LinkError::Truncated {
            layer: "IP",
            needed: 1,
            len: 0,
        }),
    }
}

/// Follows an ethertype through VLAN tags, LLC/SNAP, MPLS and PPPoE to the network
/// protocol; sets `vlan` to the outermost VLAN id.
fn by_ethertype<'a>(
    mut ethertype: u16,
    mut rest: &'a [u8],
    vlan: &mut Option<u16>,
) -> Result<(NetProto, &'a [u8]), LinkError> {
    for _ in 0..=MAX_TAGS {
        match ethertype {
            ETHERTYPE_IPV4 => return Ok((NetProto::Ipv4, rest)),
            ETHERTYPE_IPV6 => return Ok((NetProto::Ipv6, rest)),
            t if VLAN_TPIDS.contains(&t) => {
                let tci = be16(rest, 0).ok_or(LinkError::Truncated {
                    layer: "VLAN",
                    needed: 4,
                    len: rest.len(),
                })?;
                ethertype = be16(rest, 2).ok_or(LinkError::Truncated {
                    layer: "VLAN",
                    needed: 4,
                    len: rest.len(),
                })?;
                vlan.get_or_insert(tci & 0x0fff);
                rest = need(rest, 4, "VLAN")?;
            }
            t if ETHERTYPE_MPLS.contains(&t) => {
                // Label stack entries of 4 bytes; bit 0 of the third byte marks the last.
                let mut depth = 0;
                loop {
                    let bottom = rest.get(2).ok_or(LinkError::Truncated {
                        layer: "MPLS",
                        needed: 4,
                        len: rest.len(),
                    })? & 1
                        == 1;
                    rest = need(rest, 4, "MPLS")?;
                    depth += 1;
                    if bottom {
                        break;
                    }
                    if depth > MAX_TAGS {
                        return Err(LinkError::TooManyTags);
                    }
                }
                return match rest.first().map(|b| b >> 4) {
                    Some(4) => Ok((NetProto::Ipv4, rest)),
                    Some(6) => Ok((NetProto::Ipv6, rest)),
                    _ => Ok((NetProto::Other(t), rest)),
                };
            }
            ETHERTYPE_PPPOE_SESSION => {
                // 6-byte PPPoE header, then the 2-byte PPP protocol.
                let proto = be16(rest, 6).ok_or(LinkError::Truncated {
                    layer: "PPPoE",
                    needed: 8,
                    len: rest.len(),
                })?;
                rest = need(rest, 8, "PPPoE")?;
                return Ok(match proto {
                    0x0021 => (NetProto::Ipv4, rest),
                    0x0057 => (NetProto::Ipv6, rest),
                    _ => (NetProto::Other(ETHERTYPE_PPPOE_SESSION), rest),
                });
            }
            len if len <= 1500 => {
                // IEEE 802.3 length: LLC, and SNAP with OUI 0 carries an ethertype.
                return match rest.get(..8) {
                    Some([0xaa, 0xaa, 0x03, 0, 0, 0, hi, lo]) => {
                        ethertype = u16::from_be_bytes([*hi, *lo]);
                        rest = need(rest, 8, "SNAP")?;
                        if VLAN_TPIDS.contains(&ethertype) {
                            continue;
                        }
                        match ethertype {
                            ETHERTYPE_IPV4 => Ok((NetProto::Ipv4, rest)),
                            ETHERTYPE_IPV6 => Ok((NetProto::Ipv6, rest)),
                            other => Ok((NetProto::Other(other), rest)),
                        }
                    }
                    _ => Ok((NetProto::Other(len), rest)),
                };
            }
            other => return Ok((NetProto::Other(other), rest)),
        }
    }
    Err(LinkError::TooManyTags)
}

/// What follows an ethertype outside an Ethernet header (a GRE or Geneve protocol
/// type, an 802.11 frame's LLC/SNAP header): the network protocol, its bytes, and
/// the outermost VLAN id on the way.
pub fn follow_ethertype(
    ethertype: u16,
    rest: &[u8],
) -> Result<(NetProto, &[u8], Option<u16>), LinkError> {
    let mut vlan = None;
    let (proto, payload) = by_ethertype(ethertype, rest, &mut vlan)?;
    Ok((proto, payload, vlan))
}

fn mac(b: &[u8]) -> Option<[u8; 6]> {
    b.get(..6)?.try_into().ok()
}

/// Decodes the link layer of a frame of link type `link`.
pub fn decode(link: LinkType, data: &[u8]) -> Result<LinkFrame<'_>, LinkError> {
    let mut vlan = None;
    let plain = |proto, payload| LinkFrame {
        src_mac: None,
        dst_mac: None,
        vlan: None,
        proto,
        payload,
    };
    match link {
        LinkType::Ethernet => {
            let eth = Ethernet2HeaderSlice::from_slice(data).map_err(|_| LinkError::Truncated {
                layer: "Ethernet",
                needed: 14,
                len: data.len(),
            })?;
            let rest = need(data, 14, "Ethernet")?;
            let (proto, payload) = by_ethertype(eth.ether_type().0, rest, &mut vlan)?;
            Ok(LinkFrame {
                src_mac: Some(eth.source()),
                dst_mac: Some(eth.destination()),
                vlan,
                proto,
                payload,
            })
        }
        LinkType::LinuxSll | LinkType::LinuxSll2 => {
            // v1: type(2) hatype(2) halen(2) addr(8) protocol(2)
            // v2: protocol(2) reserved(2) ifindex(4) hatype(2) type(1) halen(1) addr(8)
            let (len, layer) = if link == LinkType::LinuxSll {
                (16, "Linux SLL")
            } else {
                (20, "Linux SLL2")
            };
            let rest = need(data, len, layer)?;
            let (protocol, hatype, halen, addr) = if link == LinkType::LinuxSll {
                (
                    be16(data, 14),
                    be16(data, 2),
                    be16(data, 4),
                    data.get(6..14),
                )
            } else {
                (
                    be16(data, 0),
                    be16(data, 8),
                    data.get(11).map(|&b| u16::from(b)),
                    data.get(12..20),
                )
            };
            let (Some(protocol), Some(hatype), Some(halen), Some(addr)) =
                (protocol, hatype, halen, addr)
            else {
                return Err(LinkError::Truncated {
                    layer,
                    needed: len,
                    len: data.len(),
                });
            };
            let src_mac = if hatype == ARPHRD_ETHER && halen == 6 {
                mac(addr)
            } else {
                None
            };
            let (proto, payload) = if hatype == ARPHRD_NETLINK {
                (NetProto::Other(protocol), rest)
            } else {
                by_ethertype(protocol, rest, &mut vlan)?
            };
            Ok(LinkFrame {
                src_mac,
                dst_mac: None,
                vlan,
                proto,
                payload,
            })
        }
        LinkType::Raw => Ok(plain(ip_by_nibble(data)?, data)),
        LinkType::Ipv4 => Ok(plain(NetProto::Ipv4, data)),
        LinkType::Ipv6 => Ok(plain(NetProto::Ipv6, data)),
        LinkType::Null | LinkType::Loop => {
            let b: [u8; 4] =
                data.get(..4)
                    .and_then(|b| b.try_into().ok())
                    .ok_or(LinkError::Truncated {
                        layer: "loopback",
                        needed: 4,
                        len: data.len(),
                    })?;
            let (native, swapped) = if link == LinkType::Loop {
                (u32::from_be_bytes(b), u32::from_le_bytes(b))
            } else {
                (u32::from_le_bytes(b), u32::from_be_bytes(b))
            };
            // The writer's byte order is unknown for NULL: the right reading is small.
            let family = if native > 0xffff { swapped } else { native };
            let payload = need(data, 4, "loopback")?;
            let proto = match family {
                2 => NetProto::Ipv4,
                24 | 28 | 30 => NetProto::Ipv6,
                other => NetProto::Other(u16::try_from(other).unwrap_or(u16::MAX)),
            };
            Ok(plain(proto, payload))
        }
        LinkType::Other(LINKTYPE_NFLOG) => nflog(data),
        LinkType::Other(wlan::LINKTYPE_IEEE802_11) => wlan::decode(data),
        LinkType::Other(wlan::LINKTYPE_RADIOTAP) => wlan::radiotap(data),
        LinkType::Other(n) => Err(LinkError::Unsupported(n)),
    }
}

/// Linux NFLOG: family (1), version (1), resource id (2), then TLVs of a host-order
/// (little-endian in practice) length and type, padded to 4 bytes; type 9 holds the
/// packet, whose IP version the family gives.
fn nflog(data: &[u8]) -> Result<LinkFrame<'_>, LinkError> {
    let short = |needed| LinkError::Truncated {
        layer: "NFLOG",
        needed,
        len: data.len(),
    };
    let family = *data.first().ok_or(short(4))?;
    let mut at = 4;
    // Each TLV is at least 4 bytes long, so this ends.
    while at + 4 <= data.len() {
        let len = usize::from(u16::from_le_bytes([data[at], data[at + 1]]));
        let kind = u16::from_le_bytes([data[at + 2], data[at + 3]]);
        if len < 4 {
            break;
        }
        let end = at + len;
        if kind == NFULA_PAYLOAD {
            let payload = data.get(at + 4..end).ok_or(short(end))?;
            let proto = match family {
                2 => NetProto::Ipv4,
                10 => NetProto::Ipv6,
                _ => ip_by_nibble(payload).unwrap_or(NetProto::Other(u16::from(family))),
            };
            return Ok(LinkFrame {
                src_mac: None,
                dst_mac: None,
                vlan: None,
                proto,
                payload,
            });
        }
        at = end.saturating_add(3) & !3;
    }
    Ok(LinkFrame {
        src_mac: None,
        dst_mac: None,
        vlan: None,
        proto: NetProto::Other(0),
        payload: &[],
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const DST: [u8; 6] = [0x02, 0, 0, 0, 0, 0x01];
    const SRC: [u8; 6] = [0x02, 0, 0, 0, 0, 0x02];
    const IP4: [u8; 4] = [0x45, 0, 0, 20];
    const IP6: [u8; 4] = [0x60, 0, 0, 0];

    fn eth(ethertype: u16, rest: &[u8]) -> Vec<u8> {
        let mut v = DST.to_vec();
        v.extend_from_slice(&SRC);
        v.extend_from_slice(&ethertype.to_be_bytes());
        v.extend_from_slice(rest);
        v
    }

    fn tag(tpid: u16, vid: u16, inner: u16) -> Vec<u8> {
        let mut v = Vec::new();
        v.extend_from_slice(&(0x2000 | vid).to_be_bytes()); // PCP 1
        v.extend_from_slice(&inner.to_be_bytes());
        let _ = tpid;
        v
    }

    #[test]
    fn ethernet_ipv4_and_ipv6() {
        let f = eth(0x0800, &IP4);
        let d = decode(LinkType::Ethernet, &f).unwrap();
        assert_eq!(d.proto, NetProto::Ipv4);
        assert_eq!(d.src_mac, Some(SRC));
        assert_eq!(d.dst_mac, Some(DST));
        assert_eq!(d.vlan, None);
        assert_eq!(d.payload, &IP4);
        let f = eth(0x86dd, &IP6);
        assert_eq!(
            decode(LinkType::Ethernet, &f).unwrap().proto,
            NetProto::Ipv6
        );
    }

    #[test]
    fn ethernet_non_ip_is_reported_not_an_error() {
        let arp = eth(0x0806, &[0; 28]);
        assert_eq!(
            decode(LinkType::Ethernet, &arp).unwrap().proto,
            NetProto::Other(0x0806)
        );
        let lldp = eth(0x88cc, &[0; 10]);
        assert_eq!(
            decode(LinkType::Ethernet, &lldp).unwrap().proto,
            NetProto::Other(0x88cc)
        );
        // 802.3 with plain LLC (spanning tree).
        let stp = eth(38, &[0x42, 0x42, 0x03, 0, 0, 0, 0, 0]);
        assert_eq!(
            decode(LinkType::Ethernet, &stp).unwrap().proto,
            NetProto::Other(38)
        );
    }

    #[test]
    fn snap_carries_ip() {
        let mut rest = vec![0xaa, 0xaa, 0x03, 0, 0, 0, 0x08, 0x00];
        rest.extend_from_slice(&IP4);
        let f = eth(50, &rest);
        let d = decode(LinkType::Ethernet, &f).unwrap();
        assert_eq!(d.proto, NetProto::Ipv4);
        assert_eq!(d.payload, &IP4);
    }

    #[test]
    fn single_vlan_and_qinq_keep_the_outer_id() {
        let mut rest = tag(0x8100, 42, 0x0800);
        rest.extend_from_slice(&IP4);
        let f = eth(0x8100, &rest);
        let d = decode(LinkType::Ethernet, &f).unwrap();
        assert_eq!(
            (d.vlan, d.proto, d.payload),
            (Some(42), NetProto::Ipv4, &IP4[..])
        );

        // 802.1ad outer 100, 802.1Q inner 200, then IPv6.
        let mut rest = tag(0x88a8, 100, 0x8100);
        rest.extend(tag(0x8100, 200, 0x86dd));
        rest.extend_from_slice(&IP6);
        let f = eth(0x88a8, &rest);
        let d = decode(LinkType::Ethernet, &f).unwrap();
        assert_eq!(
            (d.vlan, d.proto, d.payload),
            (Some(100), NetProto::Ipv6, &IP6[..])
        );

        // Three tags (old 0x9100 QinQ outside).
        let mut rest = tag(0x9100, 7, 0x88a8);
        rest.extend(tag(0x88a8, 8, 0x8100));
        rest.extend(tag(0x8100, 9, 0x0800));
        rest.extend_from_slice(&IP4);
        let f = eth(0x9100, &rest);
        let d = decode(LinkType::Ethernet, &f).unwrap();
        assert_eq!((d.vlan, d.proto), (Some(7), NetProto::Ipv4));
    }

    #[test]
    fn too_many_tags_and_short_tags_are_errors() {
        let mut rest = Vec::new();
        for _ in 0..MAX_TAGS + 1 {
            rest.extend(tag(0x8100, 1, 0x8100));
        }
        rest.extend(tag(0x8100, 1, 0x0800));
        assert_eq!(
            decode(LinkType::Ethernet, &eth(0x8100, &rest)),
            Err(LinkError::TooManyTags)
        );
        let short = eth(0x8100, &[0x00, 0x2a, 0x08]);
        assert!(decode(LinkType::Ethernet, &short)
            .unwrap_err()
            .is_truncated());
        assert!(decode(LinkType::Ethernet, &DST).unwrap_err().is_truncated());
    }

    #[test]
    fn mpls_and_pppoe() {
        // Two labels, the second bottom-of-stack.
        let mut rest = vec![0, 0x01, 0x00, 64, 0, 0x02, 0x01, 64];
        rest.extend_from_slice(&IP4);
        let f = eth(0x8847, &rest);
        let d = decode(LinkType::Ethernet, &f).unwrap();
        assert_eq!((d.proto, d.payload), (NetProto::Ipv4, &IP4[..]));
        let mut rest = vec![0x11, 0, 0, 1, 0, 6, 0x00, 0x57];
        rest.extend_from_slice(&IP6);
        let f = eth(0x8864, &rest);
        let d = decode(LinkType::Ethernet, &f).unwrap();
        assert_eq!((d.proto, d.payload), (NetProto::Ipv6, &IP6[..]));
    }

    fn sll(hatype: u16, halen: u16, protocol: u16, rest: &[u8]) -> Vec<u8> {
        let mut v = vec![0, 0];
        v.extend_from_slice(&hatype.to_be_bytes());
        v.extend_from_slice(&halen.to_be_bytes());
        v.extend_from_slice(&SRC);
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(&protocol.to_be_bytes());
        v.extend_from_slice(rest);
        v
    }

    fn sll2(hatype: u16, halen: u8, protocol: u16, rest: &[u8]) -> Vec<u8> {
        let mut v = protocol.to_be_bytes().to_vec();
        v.extend_from_slice(&[0, 0, 0, 0, 0, 3]);
        v.extend_from_slice(&hatype.to_be_bytes());
        v.push(4); // outgoing
        v.push(halen);
        v.extend_from_slice(&SRC);
        v.extend_from_slice(&[0, 0]);
        v.extend_from_slice(rest);
        v
    }

    #[test]
    fn linux_sll_v1() {
        let f = sll(1, 6, 0x0800, &IP4);
        let d = decode(LinkType::LinuxSll, &f).unwrap();
        assert_eq!(
            (d.src_mac, d.dst_mac, d.proto, d.payload),
            (Some(SRC), None, NetProto::Ipv4, &IP4[..])
        );
        // Loopback (772) and tun (0xfffe): no MAC, still IP.
        let f = sll(772, 0, 0x86dd, &IP6);
        let d = decode(LinkType::LinuxSll, &f).unwrap();
        assert_eq!((d.src_mac, d.proto), (None, NetProto::Ipv6));
        let f = sll(0xfffe, 0, 0x0800, &IP4);
        assert_eq!(
            decode(LinkType::LinuxSll, &f).unwrap().proto,
            NetProto::Ipv4
        );
        let f = sll(824, 0, 0x0800, &IP4);
        assert_eq!(
            decode(LinkType::LinuxSll, &f).unwrap().proto,
            NetProto::Other(0x0800)
        );
        assert!(decode(LinkType::LinuxSll, &f[..15])
            .unwrap_err()
            .is_truncated());
    }

    #[test]
    fn linux_sll_v2() {
        let f = sll2(1, 6, 0x86dd, &IP6);
        let d = decode(LinkType::LinuxSll2, &f).unwrap();
        assert_eq!(
            (d.src_mac, d.proto, d.payload),
            (Some(SRC), NetProto::Ipv6, &IP6[..])
        );
        let mut rest = tag(0x8100, 5, 0x0800);
        rest.extend_from_slice(&IP4);
        let f = sll2(1, 6, 0x8100, &rest);
        let d = decode(LinkType::LinuxSll2, &f).unwrap();
        assert_eq!((d.vlan, d.proto), (Some(5), NetProto::Ipv4));
        assert!(decode(LinkType::LinuxSll2, &f[..19])
            .unwrap_err()
            .is_truncated());
    }

    #[test]
    fn raw_ip_by_version_nibble() {
        assert_eq!(decode(LinkType::Raw, &IP4).unwrap().proto, NetProto::Ipv4);
        assert_eq!(decode(LinkType::Raw, &IP6).unwrap().proto, NetProto::Ipv6);
        assert_eq!(
            decode(LinkType::Raw, &[0x55]),
            Err(LinkError::BadIpVersion(5))
        );
        assert!(decode(LinkType::Raw, &[]).unwrap_err().is_truncated());
        assert_eq!(decode(LinkType::Ipv4, &IP4).unwrap().payload, &IP4);
        assert_eq!(decode(LinkType::Ipv6, &IP6).unwrap().proto, NetProto::Ipv6);
        assert_eq!(
            decode(LinkType::from_number(12), &IP4).unwrap().proto,
            NetProto::Ipv4
        );
    }

    #[test]
    fn bsd_loopback_in_both_byte_orders() {
        for (fam, proto) in [
            (2u32, NetProto::Ipv4),
            (24, NetProto::Ipv6),
            (28, NetProto::Ipv6),
            (30, NetProto::Ipv6),
        ] {
            for bytes in [fam.to_le_bytes(), fam.to_be_bytes()] {
                let mut f = bytes.to_vec();
                f.extend_from_slice(&IP4);
                let d = decode(LinkType::Null, &f).unwrap();
                assert_eq!((d.proto, d.payload), (proto, &IP4[..]));
            }
            let mut f = fam.to_be_bytes().to_vec();
            f.extend_from_slice(&IP6);
            assert_eq!(decode(LinkType::Loop, &f).unwrap().proto, proto);
        }
        assert_eq!(
            decode(LinkType::Null, &[7, 0, 0, 0]).unwrap().proto,
            NetProto::Other(7)
        );
        assert!(decode(LinkType::Null, &[2, 0]).unwrap_err().is_truncated());
    }

    #[test]
    fn nflog_packet_tlv() {
        let mut f = vec![2, 0, 0, 0];
        f.extend_from_slice(&[8, 0, 1, 0, 0x08, 0, 1, 0]); // packet header TLV
        f.extend_from_slice(&[7, 0, 10, 0, b'p', b'r', b'e']); // prefix, padded
        f.push(0);
        f.extend_from_slice(&[8, 0, 9, 0]);
        f.extend_from_slice(&IP4);
        let d = decode(LinkType::Other(LINKTYPE_NFLOG), &f).unwrap();
        assert_eq!((d.proto, d.payload), (NetProto::Ipv4, &IP4[..]));
        // A payload TLV running past the frame; a frame without one.
        assert!(decode(LinkType::Other(LINKTYPE_NFLOG), &f[..f.len() - 1])
            .unwrap_err()
            .is_truncated());
        let d = decode(LinkType::Other(LINKTYPE_NFLOG), &f[..12]).unwrap();
        assert_eq!(d.proto, NetProto::Other(0));
        let zero_len = [2, 0, 0, 0, 0, 0, 9, 0];
        assert_eq!(
            decode(LinkType::Other(LINKTYPE_NFLOG), &zero_len)
                .unwrap()
                .proto,
            NetProto::Other(0)
        );
    }

    #[test]
    fn other_link_types_are_unsupported() {
        assert_eq!(
            decode(LinkType::Other(119), &[0; 40]),
            Err(LinkError::Unsupported(119))
        );
    }
}
