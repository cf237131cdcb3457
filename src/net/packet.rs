//! Frames → TCP segments and UDP datagrams: the link, IP and transport layers tied
//! together.
//!
//! [`PacketDecoder::decode`] takes one frame from [`capture`](super::capture), strips
//! its link layer ([`link`]), parses IP ([`ip`]), feeds
//! fragments to its [`Defragmenter`] (802.11 fragments to its
//! [`WlanDefragmenter`]), takes tunnelled packets out of their tunnels
//! ([`tunnel`]; nested ones too, up to [`MAX_TUNNEL_DEPTH`]), and
//! hands each complete IP packet's transport header and payload to a callback as a
//! [`Packet`], the input of TCP reassembly and of UDP parsers (DNS). Zero-copy: a
//! [`Packet`] borrows the frame, or the reassembled datagram for the duration of the
//! callback.
//!
//! Lengths: a TCP payload ends where the IP total length says (Ethernet padding and
//! trailers are not payload) and starts after the TCP data offset; a UDP payload ends
//! at the smaller of the UDP length and the IP payload. A frame cut short by the
//! snapshot length still yields what it holds, counted in [`PacketStats::truncated`].
//!
//! Errors are per frame: a [`PacketError`] has a stable [`kind`](PacketError::kind)
//! the caller records as an anomaly before going on with the next frame. Non-IP
//! frames (ARP, LLDP …) are counted, not errors.

use std::net::IpAddr;
use std::sync::Arc;

use etherparse::TcpHeaderSlice;

use crate::net::capture::LinkType;
use crate::net::ip::{self, Defragmenter, FragKey, IpError, IpLimits, IpPacket};
use crate::net::link::{self, LinkError, LinkFrame, NetProto};
use crate::net::tunnel::{
    self, Decapsulated, Inner, Tunnel, TunnelError, TunnelKind, UdpTunnelPorts,
};
use crate::net::wlan;
use crate::net::wlan_defrag::{Pushed, Seal, WlanDefragStats, WlanDefragmenter};
use crate::net::wpa::{self, WlanKeys, Wpa, WpaStats};
use crate::timestamp::Timestamp;

/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;
/// Tunnels taken off one frame, one inside the other, before the frame is given up
/// (Zeek stops at 2 by default; Suricata at 16 decoder layers of any kind).
pub const MAX_TUNNEL_DEPTH: usize = 4;

/// A TCP segment's header facts and payload.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TcpSegment<'a> {
    /// Source port.
    pub src_port: u16,
    /// Destination port.
    pub dst_port: u16,
    /// Sequence number.
    pub seq: u32,
    /// Acknowledgment number (meaningful when `ack_flag`).
    pub ack: u32,
    /// SYN flag.
    pub syn: bool,
    /// ACK flag.
    pub ack_flag: bool,
    /// FIN flag.
    pub fin: bool,
    /// RST flag.
    pub rst: bool,
    /// The segment's data.
    pub payload: &'a [u8],
}

/// The transport layer of a packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transport<'a> {
    /// TCP.
    Tcp(TcpSegment<'a>),
    /// UDP.
    Udp {
        src_port: u16,
        dst_port: u16,
        payload: &'a [u8],
    },
    /// Any other protocol (ICMP, ESP, …), by number.
    Other { protocol: u8 },
}

/// One complete (possibly reassembled) IP packet; for a tunnelled packet, the one
/// inside the tunnel(s).
///
/// The MACs and VLAN are those of the link layer that carried the packet: the
/// inner Ethernet frame's for VXLAN, Geneve, GRE bridging and ERSPAN; none for a
/// packet an IP tunnel carried (IP in IP, GRE, GTP-U, Teredo), whose outer link
/// addresses are a tunnel endpoint's, not the device's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Source MAC, when the link layer has one.
    pub src_mac: Option<[u8; 6]>,
    /// Destination MAC, when the link layer has one.
    pub dst_mac: Option<[u8; 6]>,
    /// Outer VLAN id of that link layer.
    pub vlan: Option<u16>,
    /// Source address.
    pub src: IpAddr,
    /// Destination address.
    pub dst: IpAddr,
    /// Transport header and payload.
    pub transport: Transport<'a>,
    /// For a datagram reassembled from fragments: the capture time and frame of its
    /// first fragment (the frame decoded last only completed it).
    pub reassembled_from: Option<(Timestamp, u64)>,
    /// The Android app that sent or received it, by UID, where the capture says
    /// (PCAPdroid's marks, set by the tap; see [`super::pcapdroid`]).
    pub app_uid: Option<i32>,
}

/// Limits of a [`PacketDecoder`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PacketLimits {
    /// Fragment reassembly limits.
    pub ip: IpLimits,
}

/// Counters of a [`PacketDecoder`].
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PacketStats {
    /// Frames decoded.
    pub frames: u64,
    /// Frames carrying something other than IP.
    pub non_ip: u64,
    /// IP packets handed out (reassembled ones once).
    pub packets: u64,
    /// Fragments received.
    pub fragments: u64,
    /// Datagrams reassembled.
    pub reassembled: u64,
    /// Unfinished datagrams dropped (timeout, limits, invalid).
    pub dropped_fragments: u64,
    /// Fragments overlapping bytes already received (ignored: first wins).
    pub overlapping_fragments: u64,
    /// Packets with fewer bytes than their headers claim (still handed out).
    pub truncated: u64,
    /// Frames rejected with a [`PacketError`].
    pub malformed: u64,
    /// Tunnel headers taken off, by [`TunnelKind::index`] (a packet inside two
    /// tunnels counts once for each).
    pub tunnelled: [u64; TunnelKind::ALL.len()],
    /// WPA handshakes followed and frames decrypted (with `--wlan-keys`).
    pub wpa: WpaStats,
    /// 802.11 fragments and the MSDUs put together from them.
    pub wlan_fragments: WlanDefragStats,
}

impl PacketStats {
    /// [`tunnelled`](Self::tunnelled) with the kinds' names, those seen only.
    pub fn tunnels(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
        TunnelKind::ALL
            .iter()
            .zip(self.tunnelled)
            .filter(|(_, n)| *n > 0)
            .map(|(kind, n)| (kind.name(), n))
    }
}

/// Why a frame yields no packet; the caller records it and goes on.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{kind}: {detail}")]
pub struct PacketError {
    kind: &'static str,
    detail: String,
}

impl PacketError {
    fn new(kind: &'static str, detail: impl Into<String>) -> Self {
        PacketError {
            kind,
            detail: detail.into(),
        }
    }

    /// Stable anomaly kind: `packet-truncated`, `link-malformed`, `unsupported-link`,
    /// `link-not-decoded`, `wlan-protected`, `wlan-fragment-dropped`, `ip-malformed`,
    /// `tcp-malformed`, `udp-malformed`, `tunnel-malformed`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Human-readable detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }

    /// The same error, said to be inside `tunnel`. Whatever is cut short inside a
    /// tunnel packet that the snapshot length did not cut is the tunnel's fault.
    fn inside(mut self, tunnel: Tunnel, cut: bool) -> Self {
        if self.kind == "packet-truncated" && !cut {
            self.kind = "tunnel-malformed";
        }
        self.detail = format!("in {tunnel}: {}", self.detail);
        self
    }
}

fn ip_error(e: IpError) -> PacketError {
    match e {
        IpError::Truncated(d) => PacketError::new("packet-truncated", d),
        IpError::Malformed(d) => PacketError::new("ip-malformed", d),
    }
}

fn link_error(e: LinkError) -> PacketError {
    match e {
        LinkError::Truncated { .. } => PacketError::new("packet-truncated", e.to_string()),
        LinkError::Unsupported(_) => PacketError::new("unsupported-link", e.to_string()),
        LinkError::NotDecoded(_) => PacketError::new("link-not-decoded", e.to_string()),
        _ => PacketError::new("link-malformed", e.to_string()),
    }
}

fn tunnel_error(e: TunnelError, cut: bool) -> PacketError {
    let kind = if e.is_truncated() && cut {
        "packet-truncated"
    } else {
        "tunnel-malformed"
    };
    PacketError::new(kind, e.to_string())
}

/// The link layer that carried an IP packet: what its [`Packet`] says of MACs and VLAN.
#[derive(Debug, Clone, Copy)]
struct LinkFacts {
    src_mac: Option<[u8; 6]>,
    dst_mac: Option<[u8; 6]>,
    vlan: Option<u16>,
}

impl LinkFacts {
    fn of(frame: &LinkFrame<'_>) -> Self {
        LinkFacts {
            src_mac: frame.src_mac,
            dst_mac: frame.dst_mac,
            vlan: frame.vlan,
        }
    }
}

/// An 802.11 fragment for [`PacketDecoder::wlan_fragment`]: the whole frame, where
/// it stands in its MSDU, where its cipher header (or body) starts, its body
/// (decrypted when protected), and what opened it.
struct Fragment<'a> {
    frame: &'a [u8],
    of: wlan::FragmentOf,
    body_at: usize,
    body: &'a [u8],
    seal: Option<Seal>,
}

/// Where in a frame an IP packet was found.
#[derive(Debug, Clone, Copy)]
struct Within {
    link: LinkFacts,
    /// Tunnels around it.
    depth: usize,
    /// Whether the snapshot length cut the frame short around it.
    cut: bool,
    /// Capture time and frame of the first fragment of a reassembled datagram that
    /// holds it.
    reassembled_from: Option<(Timestamp, u64)>,
}

/// Decodes frames into packets; owns the defragmenter and the counters.
pub struct PacketDecoder {
    defrag: Defragmenter,
    udp_tunnels: UdpTunnelPorts,
    /// 802.11 decryption, when keys were given.
    wpa: Option<Box<Wpa>>,
    wlan_defrag: WlanDefragmenter,
    stats: PacketStats,
}

/// The transport layer of an IP payload.
fn transport(protocol: u8, payload: &[u8]) -> Result<Transport<'_>, PacketError> {
    match protocol {
        PROTO_TCP => {
            let h = TcpHeaderSlice::from_slice(payload).map_err(|e| match e {
                etherparse::err::tcp::HeaderSliceError::Len(l) => PacketError::new(
                    "packet-truncated",
                    format!(
                        "TCP header needs {} bytes, {} present",
                        l.required_len, l.len
                    ),
                ),
                etherparse::err::tcp::HeaderSliceError::Content(c) => {
                    PacketError::new("tcp-malformed", c.to_string())
                }
            })?;
            let data = payload.get(h.slice().len()..).unwrap_or(&[]);
            Ok(Transport::Tcp(TcpSegment {
                src_port: h.source_port(),
                dst_port: h.destination_port(),
                seq: h.sequence_number(),
                ack: h.acknowledgment_number(),
                syn: h.syn(),
                ack_flag: h.ack(),
                fin: h.fin(),
                rst: h.rst(),
                payload: data,
            }))
        }
        PROTO_UDP => {
            let (Some(h), Some(rest)) = (payload.get(..8), payload.get(8..)) else {
                return Err(PacketError::new(
                    "packet-truncated",
                    format!("UDP header needs 8 bytes, {} present", payload.len()),
                ));
            };
            let len = usize::from(u16::from_be_bytes([h[4], h[5]]));
            // 0 is a jumbogram's (or offload's) "see IP"; a length beyond the packet
            // is a cut frame: keep what is there.
            if (1..8).contains(&len) {
                return Err(PacketError::new(
                    "udp-malformed",
                    format!("UDP length {len} is shorter than its header"),
                ));
            }
            let data = if len == 0 {
                rest
            } else {
                rest.get(..len - 8).unwrap_or(rest)
            };
            Ok(Transport::Udp {
                src_port: u16::from_be_bytes([h[0], h[1]]),
                dst_port: u16::from_be_bytes([h[2], h[3]]),
                payload: data,
            })
        }
        protocol => Ok(Transport::Other { protocol }),
    }
}

impl PacketDecoder {
    /// A decoder with the given limits.
    pub fn new(limits: PacketLimits) -> Self {
        PacketDecoder {
            defrag: Defragmenter::new(limits.ip),
            udp_tunnels: UdpTunnelPorts::default(),
            wpa: None,
            wlan_defrag: WlanDefragmenter::new(),
            stats: PacketStats::default(),
        }
    }

    /// Decrypts WPA-protected 802.11 frames with these keys (`--wlan-keys`).
    pub fn set_wlan_keys(&mut self, keys: Arc<WlanKeys>) {
        self.wpa = (!keys.is_empty()).then(|| Box::new(Wpa::new(keys)));
    }

    /// Reads UDP tunnels on these ports rather than IANA's (`--tunnel-port`).
    pub fn set_udp_tunnel_ports(&mut self, ports: UdpTunnelPorts) {
        self.udp_tunnels = ports;
    }

    /// Counters so far.
    pub fn stats(&self) -> &PacketStats {
        &self.stats
    }

    fn sync_defrag_stats(&mut self) {
        let d = self.defrag.stats();
        self.stats.fragments = d.fragments;
        self.stats.reassembled = d.reassembled;
        self.stats.dropped_fragments = d.dropped();
        self.stats.overlapping_fragments = d.overlaps;
    }

    /// Decodes one frame; a complete (possibly reassembled) IP packet is handed to
    /// `out`; a fragment that completes nothing hands nothing.
    pub fn decode(
        &mut self,
        ts: Timestamp,
        link: LinkType,
        data: &[u8],
        out: &mut dyn FnMut(Packet<'_>),
    ) -> Result<(), PacketError> {
        self.decode_frame(ts, 0, link, data, out)
    }

    /// [`decode`](Self::decode) of capture frame number `frame`, so that reassembled
    /// datagrams can name the frame of their first fragment.
    pub fn decode_frame(
        &mut self,
        ts: Timestamp,
        frame: u64,
        link: LinkType,
        data: &[u8],
        out: &mut dyn FnMut(Packet<'_>),
    ) -> Result<(), PacketError> {
        self.stats.frames += 1;
        let r = self.decode_inner(ts, frame, link, data, out);
        if r.is_err() {
            self.stats.malformed += 1;
        }
        r
    }

    fn decode_inner(
        &mut self,
        ts: Timestamp,
        frame_number: u64,
        link: LinkType,
        data: &[u8],
        out: &mut dyn FnMut(Packet<'_>),
    ) -> Result<(), PacketError> {
        let frame = link::decode(link, data).map_err(link_error)?;
        let within = Within {
            link: LinkFacts::of(&frame),
            depth: 0,
            cut: false,
            reassembled_from: None,
        };
        self.network(ts, frame_number, frame.proto, frame.payload, within, out)
    }

    /// The IP layer of a frame, or of what a tunnel carried.
    ///
    /// `network` and `upper` are inlined both into `decode_inner` and into
    /// `decapsulated`, which alone calls itself: a frame without a tunnel (nearly
    /// all) makes no call of its own until its packet is handed out.
    #[inline(always)]
    fn network(
        &mut self,
        ts: Timestamp,
        frame_number: u64,
        proto: NetProto,
        data: &[u8],
        within: Within,
        out: &mut dyn FnMut(Packet<'_>),
    ) -> Result<(), PacketError> {
        let ipp: IpPacket<'_> = match proto {
            NetProto::Ipv4 => ip::parse_ipv4(data).map_err(ip_error)?,
            NetProto::Ipv6 => ip::parse_ipv6(data).map_err(ip_error)?,
            NetProto::Other(ethertype) => {
                self.stats.non_ip += 1;
                if ethertype == wpa::ETHERTYPE_EAPOL {
                    self.eapol(within, data);
                } else if ethertype == wpa::ETHERTYPE_TDLS {
                    self.tdls(data);
                }
                return Ok(());
            }
            NetProto::WlanAggregate => return self.msdus(ts, frame_number, data, within, out),
            NetProto::WlanManagement => {
                self.stats.non_ip += 1;
                self.management(data);
                return Ok(());
            }
            NetProto::WlanProtected(body_at) => {
                let body_at = usize::from(body_at);
                return self.protected(ts, frame_number, data, body_at, within, out);
            }
            NetProto::WlanFragment(body_at) => {
                let Some(of) = wlan::fragment_of(data) else {
                    return Err(PacketError::new(
                        "packet-truncated",
                        "802.11 fragment cut short in its header",
                    ));
                };
                let body = data.get(usize::from(body_at)..).unwrap_or_default();
                let fragment = Fragment {
                    frame: data,
                    of,
                    body_at: usize::from(body_at),
                    body,
                    seal: None,
                };
                return self.wlan_fragment(ts, frame_number, fragment, within, out);
            }
        };
        if ipp.truncated {
            self.stats.truncated += 1;
        }
        let within = Within {
            cut: within.cut || ipp.truncated,
            ..within
        };
        let Some(frag) = ipp.fragment else {
            return self.upper(
                ts,
                frame_number,
                (ipp.src, ipp.dst),
                ipp.protocol,
                ipp.payload,
                within,
                out,
            );
        };
        if ipp.truncated {
            // A fragment without all its bytes would leave a hole of zeros.
            return Err(PacketError::new(
                "packet-truncated",
                "fragment cut short by the snapshot length",
            ));
        }
        let key = FragKey {
            src: ipp.src,
            dst: ipp.dst,
            protocol: ipp.protocol,
            id: frag.id,
        };
        // A fragment inside a reassembled datagram arrived with that datagram's first.
        let (first_ts, first_frame) = within.reassembled_from.unwrap_or((ts, frame_number));
        let whole = self
            .defrag
            .push_frame(first_ts, first_frame, key, frag, ipp.payload);
        self.sync_defrag_stats();
        let Some(ip::Reassembled {
            data: whole,
            first_ts,
            first_frame,
        }) = whole
        else {
            return Ok(());
        };
        // An IPv6 datagram's fragmentable part may start with more extension headers.
        let (protocol, start) = if ipp.src.is_ipv6() {
            ip::ipv6_upper_layer(ipp.protocol, &whole).map_err(ip_error)?
        } else {
            (ipp.protocol, 0)
        };
        let within = Within {
            reassembled_from: Some((first_ts, first_frame)),
            ..within
        };
        let payload = whole.get(start..).unwrap_or(&[]);
        self.upper(
            ts,
            frame_number,
            (ipp.src, ipp.dst),
            protocol,
            payload,
            within,
            out,
        )
    }

    /// Follows a WPA handshake's EAPOL frame, when there are keys to use it with.
    #[inline(never)]
    fn eapol(&mut self, within: Within, data: &[u8]) {
        let link = within.link;
        if let (Some(wpa), Some(src), Some(dst)) = (&mut self.wpa, link.src_mac, link.dst_mac) {
            wpa.eapol(src, dst, data);
            self.stats.wpa = *wpa.stats();
        }
    }

    /// Follows a TDLS setup frame, when there are keys (the frame was decrypted).
    #[inline(never)]
    fn tdls(&mut self, data: &[u8]) {
        if let Some(wpa) = &mut self.wpa {
            wpa.tdls(data);
            self.stats.wpa = *wpa.stats();
        }
    }

    /// Shows the WPA tracker a management frame: the SSID an access point names,
    /// and the keys of a fast BSS transition's reassociation.
    #[inline(never)]
    fn management(&mut self, frame: &[u8]) {
        if let (Some(wpa), Some(frame)) = (&mut self.wpa, wlan::management(frame)) {
            wpa.management(&frame);
            self.stats.wpa = *wpa.stats();
        }
    }

    /// A protected 802.11 data frame, decrypted when its station's key is known.
    #[inline(never)]
    fn protected(
        &mut self,
        ts: Timestamp,
        frame_number: u64,
        frame: &[u8],
        body_at: usize,
        within: Within,
        out: &mut dyn FnMut(Packet<'_>),
    ) -> Result<(), PacketError> {
        let Some(wpa) = &mut self.wpa else {
            return Err(PacketError::new(
                "wlan-protected",
                "802.11 protected frame (WEP/WPA), not decrypted: no --wlan-keys",
            ));
        };
        if let Some(of) = wlan::fragment_of(frame) {
            let opened = wpa.decrypt_fragment(frame, body_at);
            self.stats.wpa = *wpa.stats();
            let opened = opened.map_err(|e| PacketError::new("wlan-protected", e.to_string()))?;
            let fragment = Fragment {
                frame,
                of,
                body_at,
                body: &opened.body,
                seal: Some(Seal {
                    key: opened.key,
                    pn: opened.pn,
                }),
            };
            return self.wlan_fragment(ts, frame_number, fragment, within, out);
        }
        let decrypted = wpa.decrypt(frame, body_at);
        self.stats.wpa = *wpa.stats();
        let plain = decrypted.map_err(|e| PacketError::new("wlan-protected", e.to_string()))?;
        let (proto, payload, vlan) = wlan::body_of(frame, &plain).map_err(link_error)?;
        let within = Within {
            link: LinkFacts {
                vlan,
                ..within.link
            },
            ..within
        };
        self.network(ts, frame_number, proto, payload, within, out)
    }

    /// A fragment of an 802.11 MSDU, decrypted when protected: kept until its MSDU is
    /// complete, then the MSDU's packet, at the time and frame of its first fragment
    /// (as for IP fragments).
    #[inline(never)]
    fn wlan_fragment(
        &mut self,
        ts: Timestamp,
        frame_number: u64,
        fragment: Fragment<'_>,
        within: Within,
        out: &mut dyn FnMut(Packet<'_>),
    ) -> Result<(), PacketError> {
        let Fragment {
            frame,
            of,
            body_at,
            body,
            seal,
        } = fragment;
        let pushed = self.wlan_defrag.push(ts, frame_number, of, body, seal);
        self.stats.wlan_fragments = *self.wlan_defrag.stats();
        let msdu = match pushed {
            Pushed::Complete(msdu) => msdu,
            Pushed::Pending | Pushed::Repeated | Pushed::Discarded => return Ok(()),
            Pushed::Dropped(why) => {
                return Err(PacketError::new("wlan-fragment-dropped", why.to_string()))
            }
        };
        let data = match (&mut self.wpa, msdu.seal.and_then(|seal| seal.key)) {
            (Some(wpa), Some(key)) if key.cipher() == wpa::Cipher::Tkip => {
                let checked = wpa.tkip_msdu(frame, body_at, &key, msdu.data);
                self.stats.wpa = *wpa.stats();
                checked.map_err(|e| PacketError::new("wlan-protected", e.to_string()))?
            }
            _ => msdu.data,
        };
        let (proto, payload, vlan) = wlan::body_of(frame, &data).map_err(link_error)?;
        let within = Within {
            link: LinkFacts {
                vlan,
                ..within.link
            },
            reassembled_from: Some((msdu.first_ts, msdu.first_frame)),
            ..within
        };
        self.network(ts, frame_number, proto, payload, within, out)
    }

    /// The packets of an 802.11 A-MSDU, each with its subframe's addresses. A subframe
    /// that cannot be read is the frame's error once the others are handed out.
    #[inline(never)]
    fn msdus(
        &mut self,
        ts: Timestamp,
        frame_number: u64,
        body: &[u8],
        within: Within,
        out: &mut dyn FnMut(Packet<'_>),
    ) -> Result<(), PacketError> {
        let mut failed = None;
        for msdu in wlan::msdus(body) {
            let handed = msdu.map_err(link_error).and_then(|frame| {
                let within = Within {
                    link: LinkFacts::of(&frame),
                    ..within
                };
                self.network(ts, frame_number, frame.proto, frame.payload, within, out)
            });
            if let Err(e) = handed {
                failed.get_or_insert(e);
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// What a complete IP packet carries: a tunnel, or the packet to hand out.
    #[allow(clippy::too_many_arguments)]
    #[inline(always)]
    fn upper(
        &mut self,
        ts: Timestamp,
        frame_number: u64,
        (src, dst): (IpAddr, IpAddr),
        protocol: u8,
        payload: &[u8],
        within: Within,
        out: &mut dyn FnMut(Packet<'_>),
    ) -> Result<(), PacketError> {
        if tunnel::is_ip_tunnel(protocol) {
            if let Some(tunnelled) = tunnel::ip_payload(protocol, payload) {
                let tunnelled = tunnelled.map_err(|e| tunnel_error(e, within.cut))?;
                return self.decapsulated(ts, frame_number, tunnelled, within, out);
            }
        }
        let transport = transport(protocol, payload)?;
        if let Transport::Udp {
            src_port,
            dst_port,
            payload,
        } = transport
        {
            if self.udp_tunnels.may_carry(src_port, dst_port) {
                if let Some(tunnelled) = self.udp_tunnels.payload(src_port, dst_port, payload) {
                    return self.decapsulated(ts, frame_number, tunnelled, within, out);
                }
            }
        }
        self.stats.packets += 1;
        out(Packet {
            src_mac: within.link.src_mac,
            dst_mac: within.link.dst_mac,
            vlan: within.link.vlan,
            src,
            dst,
            transport,
            reassembled_from: within.reassembled_from,
            app_uid: None,
        });
        Ok(())
    }

    /// Decodes what a tunnel carried as the frame itself was decoded.
    #[inline(never)]
    fn decapsulated(
        &mut self,
        ts: Timestamp,
        frame_number: u64,
        tunnelled: Decapsulated<'_>,
        within: Within,
        out: &mut dyn FnMut(Packet<'_>),
    ) -> Result<(), PacketError> {
        let tunnel = tunnelled.tunnel;
        if within.depth >= MAX_TUNNEL_DEPTH {
            return Err(PacketError::new(
                "tunnel-malformed",
                format!("more than {MAX_TUNNEL_DEPTH} tunnels inside each other (the innermost {tunnel})"),
            ));
        }
        self.stats.tunnelled[tunnel.kind.index()] += 1;
        let depth = within.depth + 1;
        let decoded = match tunnelled.inner {
            Inner::Ethernet(frame) => link::decode(LinkType::Ethernet, frame)
                .map_err(link_error)
                .and_then(|frame| {
                    let within = Within {
                        link: LinkFacts::of(&frame),
                        depth,
                        ..within
                    };
                    self.network(ts, frame_number, frame.proto, frame.payload, within, out)
                }),
            Inner::Net {
                proto,
                payload,
                vlan,
            } => {
                let within = Within {
                    link: LinkFacts {
                        src_mac: None,
                        dst_mac: None,
                        vlan,
                    },
                    depth,
                    ..within
                };
                self.network(ts, frame_number, proto, payload, within, out)
            }
        };
        decoded.map_err(|e| e.inside(tunnel, within.cut))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use etherparse::PacketBuilder;

    const SRC_MAC: [u8; 6] = [2, 0, 0, 0, 0, 1];
    const DST_MAC: [u8; 6] = [2, 0, 0, 0, 0, 2];

    fn collect(d: &mut PacketDecoder, link: LinkType, data: &[u8]) -> Vec<String> {
        let mut got = Vec::new();
        d.decode(Timestamp(0), link, data, &mut |p| got.push(describe(&p)))
            .unwrap();
        got
    }

    fn describe(p: &Packet<'_>) -> String {
        match p.transport {
            Transport::Tcp(t) => format!(
                "{}:{} > {}:{} tcp seq={} syn={} ack={} fin={} rst={} vlan={:?} {:?}",
                p.src,
                t.src_port,
                p.dst,
                t.dst_port,
                t.seq,
                t.syn,
                t.ack_flag,
                t.fin,
                t.rst,
                p.vlan,
                String::from_utf8_lossy(t.payload)
            ),
            Transport::Udp {
                src_port,
                dst_port,
                payload,
            } => format!(
                "{}:{src_port} > {}:{dst_port} udp {:?}",
                p.src,
                p.dst,
                String::from_utf8_lossy(payload)
            ),
            Transport::Other { protocol } => format!("{} > {} proto {protocol}", p.src, p.dst),
        }
    }

    fn tcp_v4(payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
            .ipv4([192, 168, 1, 10], [93, 184, 216, 34], 64)
            .tcp(40000, 80, 1000, 65535)
            .ack(5)
            .psh();
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    #[test]
    fn tcp_over_ethernet_with_padding_stripped() {
        let mut f = tcp_v4(b"GET");
        f.extend_from_slice(&[0; 10]); // Ethernet padding / FCS
        let mut d = PacketDecoder::new(PacketLimits::default());
        let mut seen = None;
        d.decode(Timestamp(0), LinkType::Ethernet, &f, &mut |p| {
            assert_eq!(p.src_mac, Some(SRC_MAC));
            assert_eq!(p.dst_mac, Some(DST_MAC));
            if let Transport::Tcp(t) = p.transport {
                seen = Some((t.seq, t.ack, t.ack_flag, t.payload.to_vec()));
            }
        })
        .unwrap();
        assert_eq!(seen, Some((1000, 5, true, b"GET".to_vec())));
        assert_eq!(d.stats().packets, 1);
    }

    #[test]
    fn tcp_options_respect_the_data_offset() {
        let b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64)
            .tcp(1, 2, 7, 100)
            .syn()
            .options(&[etherparse::TcpOptionElement::MaximumSegmentSize(1460)])
            .unwrap();
        let mut v = Vec::new();
        b.write(&mut v, b"x").unwrap();
        let mut d = PacketDecoder::new(PacketLimits::default());
        let got = collect(&mut d, LinkType::Raw, &v);
        assert_eq!(got, ["10.0.0.1:1 > 10.0.0.2:2 tcp seq=7 syn=true ack=false fin=false rst=false vlan=None \"x\""]);
        // A data offset beyond the packet is malformed or truncated, never a panic.
        let mut bad = v.clone();
        bad[20 + 12] = 0xf0;
        let e = d
            .decode(Timestamp(0), LinkType::Raw, &bad, &mut |_| panic!())
            .unwrap_err();
        assert_eq!(e.kind(), "packet-truncated");
        bad[20 + 12] = 0x10; // data offset 1 < 5
        let e = d
            .decode(Timestamp(0), LinkType::Raw, &bad, &mut |_| panic!())
            .unwrap_err();
        assert_eq!(e.kind(), "tcp-malformed");
        assert_eq!(d.stats().malformed, 2);
    }

    #[test]
    fn udp_over_ipv6_vlan_and_sll() {
        let b = PacketBuilder::ethernet2(SRC_MAC, DST_MAC)
            .single_vlan(etherparse::VlanId::try_new(300).unwrap())
            .ipv6([0x20; 16], [0x30; 16], 64)
            .udp(5353, 53);
        let mut v = Vec::new();
        b.write(&mut v, b"dns").unwrap();
        let mut d = PacketDecoder::new(PacketLimits::default());
        let mut got = Vec::new();
        d.decode(Timestamp(0), LinkType::Ethernet, &v, &mut |p| {
            got.push((p.vlan, describe(&p)))
        })
        .unwrap();
        assert_eq!(got.len(), 1);
        assert_eq!(got[0].0, Some(300));
        assert!(
            got[0]
                .1
                .ends_with(":5353 > 3030:3030:3030:3030:3030:3030:3030:3030:53 udp \"dns\""),
            "{}",
            got[0].1
        );

        let b = PacketBuilder::linux_sll(
            etherparse::LinuxSllPacketType::OUTGOING,
            6,
            [2, 0, 0, 0, 0, 9, 0, 0],
        )
        .ipv4([10, 0, 0, 1], [8, 8, 8, 8], 64)
        .udp(1234, 53);
        let mut v = Vec::new();
        b.write(&mut v, b"q").unwrap();
        let got = collect(&mut d, LinkType::LinuxSll, &v);
        assert_eq!(got, ["10.0.0.1:1234 > 8.8.8.8:53 udp \"q\""]);
    }

    #[test]
    fn non_ip_and_unsupported_links() {
        let mut d = PacketDecoder::new(PacketLimits::default());
        let mut arp = vec![0xff; 6];
        arp.extend_from_slice(&SRC_MAC);
        arp.extend_from_slice(&[0x08, 0x06]);
        arp.extend_from_slice(&[0; 28]);
        assert!(collect(&mut d, LinkType::Ethernet, &arp).is_empty());
        assert_eq!(d.stats().non_ip, 1);
        let e = d
            .decode(Timestamp(0), LinkType::Other(119), &[0; 30], &mut |_| {})
            .unwrap_err();
        assert_eq!(e.kind(), "unsupported-link");
        // An encrypted Wi-Fi data frame (radiotap, then a protected frame to the AP).
        let mut wifi = vec![0, 0, 8, 0, 0, 0, 0, 0, 0x08, 0x41];
        wifi.resize(8 + 24 + 16, 0);
        let e = d
            .decode(Timestamp(0), LinkType::Other(127), &wifi, &mut |_| {})
            .unwrap_err();
        assert_eq!(e.kind(), "wlan-protected");
        let e = d
            .decode(Timestamp(0), LinkType::Ethernet, &[0; 5], &mut |_| {})
            .unwrap_err();
        assert_eq!(e.kind(), "packet-truncated");
        let e = d
            .decode(Timestamp(0), LinkType::Raw, &[0x75, 0], &mut |_| {})
            .unwrap_err();
        assert_eq!(e.kind(), "link-malformed");
    }

    #[test]
    fn an_a_msdu_gives_a_packet_per_subframe_with_its_macs() {
        let other = [2, 0, 0, 0, 0, 9];
        // Ethernet frames to subframes: the same addresses, LLC/SNAP for the type.
        let subframe = |eth: &[u8]| {
            let msdu = [&[0xaa, 0xaa, 3, 0, 0, 0][..], &eth[12..]].concat();
            let len = (msdu.len() as u16).to_be_bytes();
            let mut v = [&eth[..12], &len[..], &msdu].concat();
            v.resize(v.len().next_multiple_of(4), 0);
            v
        };
        let first = subframe(&inner_frame(SRC_MAC, b"one"));
        let second = subframe(&inner_frame(other, b"two"));
        // QoS data to the AP with the A-MSDU bit, behind an empty radiotap header.
        let mut wifi = vec![0, 0, 8, 0, 0, 0, 0, 0, 0x88, 0x01, 0, 0];
        wifi.extend_from_slice(&[[2, 0, 0, 0, 0, 0xfe], SRC_MAC, DST_MAC].concat());
        wifi.extend_from_slice(&[0x10, 0, 0x80, 0]);
        let aggregate = [&wifi[..], &first, &second].concat();
        let mut d = PacketDecoder::new(PacketLimits::default());
        let mut got = Vec::new();
        d.decode(Timestamp(0), LinkType::Other(127), &aggregate, &mut |p| {
            got.push((p.src_mac, p.dst_mac, describe(&p)))
        })
        .unwrap();
        assert_eq!(got.len(), 2, "{got:?}");
        assert_eq!((got[0].0, got[0].1), (Some(SRC_MAC), Some(DST_MAC)));
        assert!(got[0].2.ends_with("\"one\""), "{got:?}");
        assert_eq!(got[1].0, Some(other));
        assert!(got[1].2.ends_with("\"two\""), "{got:?}");
        assert_eq!(d.stats().packets, 2);

        // The second subframe cut short: the first is handed out, the frame is an error.
        let cut = &aggregate[..aggregate.len() - 8];
        let mut n = 0;
        let e = d
            .decode(Timestamp(0), LinkType::Other(127), cut, &mut |_| n += 1)
            .unwrap_err();
        assert_eq!((n, e.kind()), (1, "packet-truncated"));
    }

    /// The 802.11 fragments (QoS data, TID 3, to the AP, sequence number 9, behind an
    /// empty radiotap header) of the MSDU of Ethernet frame `eth`, `part` bytes each.
    fn wlan_fragments(eth: &[u8], part: usize) -> Vec<Vec<u8>> {
        let msdu = [&[0xaa, 0xaa, 3, 0, 0, 0][..], &eth[12..]].concat();
        let parts: Vec<&[u8]> = msdu.chunks(part).collect();
        parts
            .iter()
            .enumerate()
            .map(|(i, body)| {
                let more = if i + 1 < parts.len() { 0x04 } else { 0 };
                let mut v = vec![0, 0, 8, 0, 0, 0, 0, 0, 0x88, 0x01 | more, 0, 0];
                v.extend_from_slice(&[[2, 0, 0, 0, 0, 0xfe], SRC_MAC, DST_MAC].concat());
                v.extend_from_slice(&((9u16 << 4) | i as u16).to_le_bytes());
                v.extend_from_slice(&[3, 0]);
                v.extend_from_slice(body);
                v
            })
            .collect()
    }

    #[test]
    fn wlan_fragments_give_their_msdus_packet_at_the_first() {
        let eth = inner_frame(SRC_MAC, b"a request cut into three fragments");
        let fragments = wlan_fragments(&eth, 30);
        assert_eq!(fragments.len(), 3);
        let mut d = PacketDecoder::new(PacketLimits::default());
        let mut got = Vec::new();
        for (i, f) in fragments.iter().enumerate() {
            let ts = Timestamp(100 + i as i64);
            d.decode_frame(ts, 7 + i as u64, LinkType::Other(127), f, &mut |p| {
                got.push((p.src_mac, p.reassembled_from, describe(&p)))
            })
            .unwrap();
        }
        assert_eq!(got.len(), 1, "{got:?}");
        assert_eq!(
            (got[0].0, got[0].1),
            (Some(SRC_MAC), Some((Timestamp(100), 7)))
        );
        assert!(
            got[0].2.ends_with("\"a request cut into three fragments\""),
            "{got:?}"
        );
        let stats = d.stats().wlan_fragments;
        assert_eq!(
            (stats.fragments, stats.reassembled, stats.dropped()),
            (3, 1, 0)
        );

        // The middle fragment missing: nothing, and the last is an anomaly.
        let mut d = PacketDecoder::new(PacketLimits::default());
        let mut n = 0;
        d.decode(
            Timestamp(0),
            LinkType::Other(127),
            &fragments[0],
            &mut |_| n += 1,
        )
        .unwrap();
        let e = d
            .decode(
                Timestamp(1),
                LinkType::Other(127),
                &fragments[2],
                &mut |_| n += 1,
            )
            .unwrap_err();
        assert_eq!((n, e.kind()), (0, "wlan-fragment-dropped"));
        assert!(e.detail().contains("fragment 2 of MSDU 9"), "{e}");
        assert_eq!(d.stats().wlan_fragments.dropped(), 2);
    }

    /// IPv4 fragments of a UDP datagram carrying `payload`, in 16-byte pieces.
    fn v4_fragments(payload: &[u8], id: u16) -> Vec<Vec<u8>> {
        let b = PacketBuilder::ipv4([10, 0, 0, 1], [10, 0, 0, 2], 64).udp(7, 9);
        let mut whole = Vec::new();
        b.write(&mut whole, payload).unwrap();
        let body = &whole[20..];
        body.chunks(16)
            .enumerate()
            .map(|(i, c)| {
                let mut h = whole[..20].to_vec();
                h[2..4].copy_from_slice(&((20 + c.len()) as u16).to_be_bytes());
                h[4..6].copy_from_slice(&id.to_be_bytes());
                let more = (i + 1) * 16 < body.len();
                let off = (i * 2) as u16 | if more { 0x2000 } else { 0 };
                h[6..8].copy_from_slice(&off.to_be_bytes());
                h.extend_from_slice(c);
                h
            })
            .collect()
    }

    #[test]
    fn ipv4_fragments_in_and_out_of_order() {
        let payload = b"0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJ";
        let frags = v4_fragments(payload, 77);
        assert_eq!(frags.len(), 4);
        for order in [[0, 1, 2, 3], [3, 2, 1, 0], [2, 0, 3, 1]] {
            let mut d = PacketDecoder::new(PacketLimits::default());
            let mut got = Vec::new();
            for i in order {
                got.extend(collect(&mut d, LinkType::Raw, &frags[i]));
            }
            let want = format!(
                "10.0.0.1:7 > 10.0.0.2:9 udp {:?}",
                std::str::from_utf8(payload).unwrap()
            );
            assert_eq!(got, [want]);
            assert_eq!(d.stats().fragments, 4);
            assert_eq!(d.stats().reassembled, 1);
        }
    }

    #[test]
    fn reassembled_datagram_names_its_first_fragment() {
        let frags = v4_fragments(b"0123456789abcdefghijklmnopqrstuvwxyz-ABCDEFGHIJ", 78);
        let mut d = PacketDecoder::new(PacketLimits::default());
        let mut origins = Vec::new();
        // Frame 10 at t=5 carries the second fragment, the others follow later.
        for (frame, (t, i)) in [(5, 1), (6, 0), (7, 3), (8, 2)].into_iter().enumerate() {
            let frame = 10 + frame as u64;
            d.decode_frame(Timestamp(t), frame, LinkType::Raw, &frags[i], &mut |p| {
                origins.push(p.reassembled_from)
            })
            .unwrap();
        }
        assert_eq!(origins, [Some((Timestamp(5), 10))]);
        let whole = v4_fragments(b"short", 79);
        let mut plain = Vec::new();
        d.decode_frame(Timestamp(9), 20, LinkType::Raw, &whole[0], &mut |p| {
            plain.push(p.reassembled_from)
        })
        .unwrap();
        assert_eq!(plain, [None], "an unfragmented packet is its own origin");
    }

    #[test]
    fn ipv6_fragments_with_extension_header_inside() {
        // Fragmentable part: destination options (8 bytes) then UDP.
        let mut part = vec![17, 0, 0, 0, 0, 0, 0, 0];
        let udp_payload = b"the quick brown fox jumps over";
        let len = (8 + udp_payload.len()) as u16;
        part.extend_from_slice(&[0, 7, 0, 9]);
        part.extend_from_slice(&len.to_be_bytes());
        part.extend_from_slice(&[0, 0]);
        part.extend_from_slice(udp_payload);
        let make = |offset: usize, more: bool, piece: &[u8]| {
            let mut v = vec![0x60, 0, 0, 0];
            v.extend_from_slice(&((8 + piece.len()) as u16).to_be_bytes());
            v.extend_from_slice(&[44, 64]);
            v.extend_from_slice(&[0xfe, 0x80]);
            v.extend_from_slice(&[0; 13]);
            v.push(1);
            v.extend_from_slice(&[0xfe, 0x80]);
            v.extend_from_slice(&[0; 13]);
            v.push(2);
            let off = ((offset / 8) << 3) as u16 | u16::from(more);
            v.push(60);
            v.push(0);
            v.extend_from_slice(&off.to_be_bytes());
            v.extend_from_slice(&0xdead_beefu32.to_be_bytes());
            v.extend_from_slice(piece);
            v
        };
        let a = make(0, true, &part[..24]);
        let b = make(24, false, &part[24..]);
        let mut d = PacketDecoder::new(PacketLimits::default());
        assert!(collect(&mut d, LinkType::Ipv6, &b).is_empty());
        let got = collect(&mut d, LinkType::Ipv6, &a);
        assert_eq!(
            got,
            [format!(
                "fe80::1:7 > fe80::2:9 udp {:?}",
                std::str::from_utf8(udp_payload).unwrap()
            )]
        );
    }

    #[test]
    fn fragments_timeout_by_capture_time() {
        let frags = v4_fragments(&[b'x'; 40], 5);
        let mut d = PacketDecoder::new(PacketLimits::default());
        d.decode(Timestamp(0), LinkType::Raw, &frags[0], &mut |_| panic!())
            .unwrap();
        // An unrelated fragment 60 s later expires the first datagram.
        let other = v4_fragments(&[b'y'; 40], 6);
        d.decode(
            Timestamp(60_000_000),
            LinkType::Raw,
            &other[0],
            &mut |_| panic!(),
        )
        .unwrap();
        assert_eq!(d.stats().dropped_fragments, 1);
        for f in &frags[1..] {
            d.decode(Timestamp(60_000_000), LinkType::Raw, f, &mut |_| panic!())
                .unwrap();
        }
        assert_eq!(d.stats().reassembled, 0);
    }

    #[test]
    fn truncated_packets_are_still_handed_out() {
        let f = tcp_v4(b"GET / HTTP/1.1\r\n");
        let cut = &f[..f.len() - 5];
        let mut d = PacketDecoder::new(PacketLimits::default());
        let got = collect(&mut d, LinkType::Ethernet, cut);
        assert!(got[0].ends_with("\"GET / HTTP/\""), "{got:?}");
        assert_eq!(d.stats().truncated, 1);
    }

    /// An Ethernet frame from `mac` carrying IPv4/TCP with `payload`.
    fn inner_frame(mac: [u8; 6], payload: &[u8]) -> Vec<u8> {
        let b = PacketBuilder::ethernet2(mac, DST_MAC)
            .ipv4([10, 9, 0, 5], [203, 0, 113, 7], 64)
            .tcp(41000, 80, 7, 65535)
            .ack(1);
        let mut v = Vec::new();
        b.write(&mut v, payload).unwrap();
        v
    }

    /// An IPv4 packet from 192.0.2.1 to 192.0.2.2 of protocol `protocol`.
    fn outer_ip(protocol: u8, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .write(&mut v, etherparse::IpNumber(protocol), payload)
            .unwrap();
        v
    }

    /// A UDP datagram to `port` in IPv4, raw.
    fn outer_udp(port: u16, payload: &[u8]) -> Vec<u8> {
        let mut v = Vec::new();
        PacketBuilder::ipv4([192, 0, 2, 1], [192, 0, 2, 2], 64)
            .udp(50123, port)
            .write(&mut v, payload)
            .unwrap();
        v
    }

    /// An Ethernet frame of the outer network carrying `ip`, with a VLAN tag if given.
    fn ethernet(vlan: Option<u16>, ip: &[u8]) -> Vec<u8> {
        let mut f = [DST_MAC, SRC_MAC].concat();
        if let Some(id) = vlan {
            f.extend_from_slice(&[0x81, 0x00]);
            f.extend_from_slice(&id.to_be_bytes());
        }
        f.extend_from_slice(&[0x08, 0x00]);
        f.extend_from_slice(ip);
        f
    }

    fn vxlan(vni: u32, frame: &[u8]) -> Vec<u8> {
        let v = vni.to_be_bytes();
        [&[0x08, 0, 0, 0, v[1], v[2], v[3], 0][..], frame].concat()
    }

    #[test]
    fn vxlan_hands_out_the_inner_packet_with_the_inner_macs() {
        let device = [2, 0, 0, 0xaa, 0xbb, 1];
        let outer = outer_udp(4789, &vxlan(4242, &inner_frame(device, b"GET / HTTP/1.1")));
        let frame = ethernet(Some(10), &outer);
        let mut d = PacketDecoder::new(PacketLimits::default());
        let mut got = Vec::new();
        d.decode(Timestamp(0), LinkType::Ethernet, &frame, &mut |p| {
            got.push((p.src_mac, p.dst_mac, p.vlan, describe(&p)))
        })
        .unwrap();
        assert_eq!(
            got,
            [(
                Some(device),
                Some(DST_MAC),
                None,
                "10.9.0.5:41000 > 203.0.113.7:80 tcp seq=7 syn=false ack=true fin=false \
                 rst=false vlan=None \"GET / HTTP/1.1\""
                    .to_string()
            )]
        );
        let vxlan = TunnelKind::Vxlan.index();
        assert_eq!(d.stats().tunnelled[vxlan], 1);
        assert_eq!(d.stats().tunnels().collect::<Vec<_>>(), [("vxlan", 1)]);
        assert_eq!(d.stats().packets, 1);
    }

    #[test]
    fn udp_tunnels_are_read_on_the_ports_set() {
        let frame = |port| outer_udp(port, &vxlan(1, &inner_frame(SRC_MAC, b"x")));
        let mut d = PacketDecoder::new(PacketLimits::default());
        let flannel = collect(&mut d, LinkType::Raw, &frame(8472));
        assert!(flannel[0].starts_with("192.0.2.1:50123 > 192.0.2.2:8472 udp"));

        let mut ports = UdpTunnelPorts::default();
        ports.set(TunnelKind::Vxlan, &[8472]).unwrap();
        d.set_udp_tunnel_ports(ports);
        for port in [8472, 4789] {
            let got = collect(&mut d, LinkType::Raw, &frame(port));
            let inner = got[0].starts_with("10.9.0.5:41000 > 203.0.113.7:80 tcp");
            assert_eq!(inner, port == 8472, "port {port}: {got:?}");
        }
        assert_eq!(d.stats().tunnels().collect::<Vec<_>>(), [("vxlan", 1)]);
    }

    #[test]
    fn ip_tunnels_hand_out_the_inner_packet_without_macs() {
        let inner = &inner_frame(SRC_MAC, b"hi")[14..];
        let gre = [&[0x20, 0, 0x08, 0x00, 0, 0, 0, 5][..], inner].concat();
        for (protocol, payload) in [(4, inner.to_vec()), (47, gre)] {
            let frame = ethernet(None, &outer_ip(protocol, &payload));
            let mut d = PacketDecoder::new(PacketLimits::default());
            let mut got = Vec::new();
            d.decode(Timestamp(0), LinkType::Ethernet, &frame, &mut |p| {
                got.push((p.src_mac, p.src, p.dst))
            })
            .unwrap();
            assert_eq!(
                got,
                [(
                    None,
                    "10.9.0.5".parse().unwrap(),
                    "203.0.113.7".parse().unwrap()
                )],
                "protocol {protocol}"
            );
        }
    }

    #[test]
    fn tunnels_inside_tunnels_up_to_the_limit() {
        // VXLAN inside GRE inside IPv4.
        let vx = outer_udp(4789, &vxlan(1, &inner_frame(SRC_MAC, b"x")));
        let gre = outer_ip(47, &[&[0, 0, 0x08, 0x00][..], &vx].concat());
        let mut d = PacketDecoder::new(PacketLimits::default());
        assert_eq!(collect(&mut d, LinkType::Raw, &gre).len(), 1);
        assert_eq!(
            d.stats().tunnels().collect::<Vec<_>>(),
            [("gre", 1), ("vxlan", 1)]
        );

        // IP in IP, MAX_TUNNEL_DEPTH deep, then once more.
        let mut packet = inner_frame(SRC_MAC, b"deep")[14..].to_vec();
        for _ in 0..MAX_TUNNEL_DEPTH {
            packet = outer_ip(4, &packet);
        }
        assert_eq!(collect(&mut d, LinkType::Raw, &packet).len(), 1);
        let too_deep = outer_ip(4, &packet);
        let e = d
            .decode(Timestamp(0), LinkType::Raw, &too_deep, &mut |_| {
                panic!("handed out")
            })
            .unwrap_err();
        assert_eq!(e.kind(), "tunnel-malformed");
        assert!(e.detail().contains("more than 4 tunnels"), "{e}");
    }

    #[test]
    fn errors_inside_a_tunnel_say_which_tunnel() {
        let cut = outer_udp(4789, &vxlan(4242, &inner_frame(SRC_MAC, b"x")[..10]));
        let mut d = PacketDecoder::new(PacketLimits::default());
        let e = d
            .decode(Timestamp(0), LinkType::Raw, &cut, &mut |_| {
                panic!("handed out")
            })
            .unwrap_err();
        assert_eq!(e.kind(), "tunnel-malformed");
        assert_eq!(
            e.detail(),
            "in VXLAN VNI 4242: Ethernet header needs 14 bytes, the frame has 10"
        );
        // The same datagram cut by the snapshot length: a truncated packet.
        let mut snapped = outer_udp(4789, &vxlan(4242, &inner_frame(SRC_MAC, b"x")));
        snapped.truncate(20 + 8 + 8 + 10);
        let e = d
            .decode(Timestamp(0), LinkType::Raw, &snapped, &mut |_| {
                panic!("handed out")
            })
            .unwrap_err();
        assert_eq!(e.kind(), "packet-truncated");
        let short_gre = outer_ip(47, &[0, 0]);
        let e = d
            .decode(Timestamp(0), LinkType::Raw, &short_gre, &mut |_| {
                panic!("handed out")
            })
            .unwrap_err();
        assert_eq!(
            (e.kind(), e.detail()),
            ("tunnel-malformed", "GRE header needs 4 bytes, 2 present")
        );
        let gre = outer_ip(47, &[0x40, 0, 0x08, 0, 0, 0, 0, 0]);
        let e = d
            .decode(Timestamp(0), LinkType::Raw, &gre, &mut |_| {
                panic!("handed out")
            })
            .unwrap_err();
        assert_eq!(e.kind(), "tunnel-malformed");
        assert_eq!(d.stats().malformed, 4);
        // Not VXLAN after all (no I flag): an ordinary datagram.
        let plain = outer_udp(4789, &[0; 30]);
        assert_eq!(
            collect(&mut d, LinkType::Raw, &plain),
            [format!(
                "192.0.2.1:50123 > 192.0.2.2:4789 udp {:?}",
                "\0".repeat(30)
            )]
        );
        // Only the two cut VXLAN packets above were taken out of a tunnel.
        assert_eq!(d.stats().tunnels().collect::<Vec<_>>(), [("vxlan", 2)]);
    }

    #[test]
    fn a_fragmented_tunnel_packet_is_reassembled_first() {
        let body = vec![b'b'; 300];
        let vx = vxlan(7, &inner_frame(SRC_MAC, &body));
        let whole = outer_udp(4789, &vx);
        // Two fragments of the outer datagram: 200 bytes of its payload, then the rest.
        let (head, payload) = whole.split_at(20);
        let fragment = |part: &[u8], offset: usize, more: bool| {
            let mut h = head.to_vec();
            h[2..4].copy_from_slice(&((20 + part.len()) as u16).to_be_bytes());
            h[4..6].copy_from_slice(&99u16.to_be_bytes());
            let flags = (offset / 8) as u16 | if more { 0x2000 } else { 0 };
            h[6..8].copy_from_slice(&flags.to_be_bytes());
            [&h[..], part].concat()
        };
        let first = fragment(&payload[..200], 0, true);
        let second = fragment(&payload[200..], 200, false);
        let mut d = PacketDecoder::new(PacketLimits::default());
        let mut got = Vec::new();
        for (frame, data) in [(3, &first), (4, &second)] {
            d.decode_frame(
                Timestamp(frame),
                frame as u64,
                LinkType::Raw,
                data,
                &mut |p| {
                    if let Transport::Tcp(seg) = p.transport {
                        got.push((p.reassembled_from, seg.payload.to_vec()));
                    }
                },
            )
            .unwrap();
        }
        assert_eq!(got, [(Some((Timestamp(3), 3)), body)]);
    }

    #[test]
    fn bsd_loopback_and_other_protocols() {
        let b = PacketBuilder::ipv6([0; 16], [0; 16], 64).icmpv6_echo_request(1, 1);
        let mut v = 30u32.to_le_bytes().to_vec();
        b.write(&mut v, b"").unwrap();
        let mut d = PacketDecoder::new(PacketLimits::default());
        assert_eq!(collect(&mut d, LinkType::Null, &v), [":: > :: proto 58"]);
    }
}
