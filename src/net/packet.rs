//! Frames → TCP segments and UDP datagrams: the link, IP and transport layers tied
//! together.
//!
//! [`PacketDecoder::decode`] takes one frame from [`capture`](super::capture), strips
//! its link layer ([`link`](super::link)), parses IP ([`ip`](super::ip)), feeds
//! fragments to its [`Defragmenter`], and hands each complete IP packet's transport
//! header and payload to a callback as a [`Packet`], the input of TCP reassembly and
//! of UDP parsers (DNS). Zero-copy: a [`Packet`] borrows the frame, or the
//! reassembled datagram for the duration of the callback.
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

use etherparse::TcpHeaderSlice;

use crate::net::capture::LinkType;
use crate::net::ip::{self, Defragmenter, FragKey, IpError, IpLimits, IpPacket};
use crate::net::link::{self, LinkError, NetProto};
use crate::timestamp::Timestamp;

/// IP protocol number of TCP.
pub const PROTO_TCP: u8 = 6;
/// IP protocol number of UDP.
pub const PROTO_UDP: u8 = 17;

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

/// One complete (possibly reassembled) IP packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Packet<'a> {
    /// Source MAC, when the link layer has one.
    pub src_mac: Option<[u8; 6]>,
    /// Destination MAC, when the link layer has one.
    pub dst_mac: Option<[u8; 6]>,
    /// Outer VLAN id.
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
    /// `ip-malformed`, `tcp-malformed`, `udp-malformed`.
    pub fn kind(&self) -> &'static str {
        self.kind
    }

    /// Human-readable detail.
    pub fn detail(&self) -> &str {
        &self.detail
    }
}

fn ip_error(e: IpError) -> PacketError {
    match e {
        IpError::Truncated(d) => PacketError::new("packet-truncated", d),
        IpError::Malformed(d) => PacketError::new("ip-malformed", d),
    }
}

/// Decodes frames into packets; owns the defragmenter and the counters.
pub struct PacketDecoder {
    defrag: Defragmenter,
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
            stats: PacketStats::default(),
        }
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
        let frame = link::decode(link, data).map_err(|e| match e {
            LinkError::Truncated { .. } => PacketError::new("packet-truncated", e.to_string()),
            LinkError::Unsupported(_) => PacketError::new("unsupported-link", e.to_string()),
            _ => PacketError::new("link-malformed", e.to_string()),
        })?;
        let ipp: IpPacket<'_> = match frame.proto {
            NetProto::Ipv4 => ip::parse_ipv4(frame.payload).map_err(ip_error)?,
            NetProto::Ipv6 => ip::parse_ipv6(frame.payload).map_err(ip_error)?,
            NetProto::Other(_) => {
                self.stats.non_ip += 1;
                return Ok(());
            }
        };
        if ipp.truncated {
            self.stats.truncated += 1;
        }
        let packet = |transport, reassembled_from| Packet {
            src_mac: frame.src_mac,
            dst_mac: frame.dst_mac,
            vlan: frame.vlan,
            src: ipp.src,
            dst: ipp.dst,
            transport,
            reassembled_from,
        };
        let Some(frag) = ipp.fragment else {
            let t = transport(ipp.protocol, ipp.payload)?;
            self.stats.packets += 1;
            out(packet(t, None));
            return Ok(());
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
        let whole = self
            .defrag
            .push_frame(ts, frame_number, key, frag, ipp.payload);
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
        let t = transport(protocol, whole.get(start..).unwrap_or(&[]))?;
        self.stats.packets += 1;
        out(packet(t, Some((first_ts, first_frame))));
        Ok(())
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
            .decode(Timestamp(0), LinkType::Other(105), &[0; 30], &mut |_| {})
            .unwrap_err();
        assert_eq!(e.kind(), "unsupported-link");
        let e = d
            .decode(Timestamp(0), LinkType::Ethernet, &[0; 5], &mut |_| {})
            .unwrap_err();
        assert_eq!(e.kind(), "packet-truncated");
        let e = d
            .decode(Timestamp(0), LinkType::Raw, &[0x75, 0], &mut |_| {})
            .unwrap_err();
        assert_eq!(e.kind(), "link-malformed");
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

    #[test]
    fn bsd_loopback_and_other_protocols() {
        let b = PacketBuilder::ipv6([0; 16], [0; 16], 64).icmpv6_echo_request(1, 1);
        let mut v = 30u32.to_le_bytes().to_vec();
        b.write(&mut v, b"").unwrap();
        let mut d = PacketDecoder::new(PacketLimits::default());
        assert_eq!(collect(&mut d, LinkType::Null, &v), [":: > :: proto 58"]);
    }
}
