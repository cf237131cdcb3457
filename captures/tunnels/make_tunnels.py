#!/usr/bin/env python3
"""Writes the "tunnels" sample capture of consentry's pcap tap: test phones' traffic
that reaches the capture point only inside tunnels.

Outputs, next to this script:
  tunnels.pcap    classic pcap (microsecond magic, Ethernet, snaplen 65535).
  consentry.toml  the case: three test phones, one refusal halfway.
  expected.json   every HTTP request the capture carries (frame, tunnel, device,
                  inner addresses, host, method, path, identifier types), the DNS
                  exchange inside GTP-U, and the frames that must NOT be decapsulated
                  or are malformed ("negative"), computed while writing; under
                  "flannel", the request of flannel.pcap.
  flannel.pcap    one request inside VXLAN to UDP port 8472 (Linux's and flannel's
                  VXLAN port, not IANA's): read only with --tunnel-port.

Story (times from 2026-11-28T10:00:00Z): a lab collector sees a cloud traffic mirror
(VXLAN, Geneve), a router's GRE tunnels, a switch's ERSPAN sessions, a 5G core's N3
interface (GTP-U), IP-in-IP and 6in4 tunnels and Teredo. Inside them three test phones
run "Example Shop" and its SDKs, each inner flow one full TCP connection (handshake,
one HTTP/1.1 request with a device identifier in the query or a JSON body, a 200 JSON
response, FIN handshake) to a tracker:
  a54     known ONLY by its MAC address 02:00:00:aa:bb:01 (a cloud VM-hosted phone
          emulator behind VXLAN): its inner IP is in no case address, so only the inner
          Ethernet source MAC attributes it. VXLAN, GRE-carried VXLAN, and a VXLAN
          datagram whose outer IPv4 packet is fragmented.
  reno10  a phone on the 5G test core, known by its carrier-grade NAT range
          100.72.16.0/24 (CIDR): DNS and HTTP inside GTP-U.
  pixel9  known by its addresses (IPv4, IPv6, Teredo): Geneve (IPv6), GRE with key and
          sequence, GRE transparent Ethernet bridging with an 802.1Q tag and checksum,
          ERSPAN type II and III, IP-in-IP, 6in4, Teredo. Its user refuses all purposes
          at +3.5 s: five of its flows are before, three after.
Between the flows, four frames that are not tunnels to open or are malformed: UDP to
4789 without the VXLAN I flag, a GRE header cut after 2 bytes, PPTP's enhanced GRE
(version 1), a VXLAN packet whose inner Ethernet frame has 10 bytes.

Every IPv4 header, UDP and TCP checksum (IPv4 and IPv6 pseudo-headers) is valid, outer
and inner; the GRE checksum too. The byte layouts are documented at each builder.
Deterministic (fixed seed, no clock): byte-identical run to run. Standard library only.
All addresses and identifier values are synthetic (documentation and private ranges,
made-up identifiers).

Checked with tshark 4.0, default dissector settings (VXLAN 4789, Geneve 6081, GTP-U 2152
and Teredo 3544 are decoded by port, GRE protocols 0x0800/0x6558/0x88BE/0x22EB, IP
protocols 4 and 41 natively): all 12 requests at the frames of expected.json with
  tshark -r tunnels.pcap -o tcp.reassemble_out_of_order:TRUE -Y http.request -T fields \
      -e frame.number -e ip.src -e ipv6.src -e http.host -e http.request.uri
every IPv4/UDP/TCP checksum good (-o ip.check_checksum:TRUE -o udp.check_checksum:TRUE
-o tcp.check_checksum:TRUE; the GRE checksum is shown as correct), and `-z expert` reports
only the two intended malformed frames (cut GRE header, 10-byte inner Ethernet). Wireshark
decodes UDP 4789 as VXLAN whatever its flags, so it shows the I-flag-less probe as VXLAN
with an unknown inner frame; consentry must not. flannel.pcap: tshark decodes nothing
inside by default either; with -d udp.port==8472,vxlan it reads the request at frame 4,
all checksums good and no expert errors.
Run: python3 captures/tunnels/make_tunnels.py
"""
import json
import os
import random
import struct
import sys
import zlib
from datetime import datetime, timedelta, timezone
from ipaddress import IPv4Address, IPv6Address

HERE = os.path.dirname(os.path.abspath(__file__))
# captures/pcapkit.py: the packet-building helpers the capture generators share.
sys.path.insert(0, os.path.dirname(HERE))
from pcapkit import (ACK, FIN, PSH, SYN, csum, dns_message, ipv4_header,  # noqa: E402
                     ipv6_header, mac, tcp_segment, udp_datagram)
T0 = datetime(2026, 11, 28, 10, 0, 0, tzinfo=timezone.utc)
T0_US = int(T0.timestamp()) * 1_000_000
REFUSAL_S = 3.5
rng = random.Random(20261128)


def luhn_complete(prefix14):
    """The 15-digit IMEI whose last digit makes the Luhn check pass."""
    for c in "0123456789":
        total = 0
        for i, ch in enumerate(reversed(prefix14 + c)):
            d = int(ch) * (2 if i % 2 else 1)
            total += d - 9 if d > 9 else d
        if total % 10 == 0:
            return prefix14 + c
    raise AssertionError


# --- the case (all values synthetic) ------------------------------------------------------
FIRST_PARTY = ["example-shop.com"]
A54_MAC = "02:00:00:aa:bb:01"
DEVICES = {
    "pixel9": {
        "addresses": ["192.168.77.23", "fd00:77::23", "2001:0:c000:22d:0:63be:3fff:fdb2"],
        "note": "lab Wi-Fi; IPv6 also through a 6in4 tunnel and Teredo",
        "ids": {"advertising_id": "0b7e4d2a-51c3-4f8e-9a6d-3c2b1e0f9d84",
                "android_id": "5c0ffee15eed1234",
                "imei": luhn_complete("35391811004562"),
                "oaid": "d3c2b1a0-9f8e-4d7c-8b6a-5f4e3d2c1b0a",
                "email": "qa-pixel9@example.org"},
    },
    "a54": {
        "addresses": [A54_MAC],
        "note": "known only by its MAC: a cloud-hosted test phone behind VXLAN",
        "ids": {"advertising_id": "7a9c3e51-2b4d-4f60-8e1a-c5d7f9b0a2e4",
                "android_id": "a54e0d1c2b3a4f56",
                "imei": luhn_complete("35210977001234")},
    },
    "reno10": {
        "addresses": ["100.72.16.0/24"],
        "note": "5G test core: known by its carrier-grade NAT range",
        "ids": {"advertising_id": "e4f5a6b7-c8d9-4e0f-a1b2-c3d4e5f6a7b8",
                "imei": luhn_complete("86940305123456"),
                "imsi": "001010123456789",
                "oaid": "1f2e3d4c5b6a79881f2e3d4c5b6a7988",
                "phone": "+8613900000010"},
    },
}
PIXEL9_IP4, PIXEL9_IP6, PIXEL9_TEREDO = DEVICES["pixel9"]["addresses"]
PIXEL9_MAC = "02:00:00:77:00:23"     # not in the case: pixel9 is known by its addresses
A54_IP = "172.31.7.23"               # in no case address: only the MAC attributes a54
RENO10_IP = "100.72.16.35"           # inside reno10's range 100.72.16.0/24
INNER_GW_MAC = "02:00:00:fe:00:01"   # the inner networks' router

# Tracker servers (hosts make_gateway.py also uses; documentation addresses).
SERVER = {
    "ulogs.umeng.com": "203.0.113.21",
    "rt.applovin.com": "203.0.113.31",
    "t.appsflyer.com": "203.0.113.41",
    "sdk.e.qq.com": "203.0.113.51",
    "api2.amplitude.com": "203.0.113.61",
    "app-measurement.com": "203.0.113.71",
    "api16-access-sg.pangle.io": "203.0.113.81",
}
SERVER6 = {
    "app-measurement.com": "2001:db8:71::71",
    "sdk.e.qq.com": "2001:db8:51::51",
    "t.appsflyer.com": "2001:db8:41::41",
}


# =========================================================================================
# Packet building (headers, checksums, MACs, DNS messages: captures/pcapkit.py).
# =========================================================================================


def ethernet(dst_mac, src_mac, ethertype, payload, vlan=None, pad=False):
    """Ethernet II: dst(6) src(6) [TPID 0x8100 (2) TCI (2): PCP 3 bits, DEI 1, VID 12]
    ethertype(2) payload. pad=True adds the zero padding of a wire frame shorter than
    60 bytes (no FCS)."""
    out = mac(dst_mac) + mac(src_mac)
    if vlan is not None:
        out += struct.pack("!HH", 0x8100, vlan & 0x0FFF)
    out += struct.pack("!H", ethertype) + payload
    if pad and len(out) < 60:
        out += b"\0" * (60 - len(out))
    return out


# --- the outer network ------------------------------------------------------------------
# Every outer endpoint's MAC is derived from its IPv4 address (02:00 + the 4 octets), as if
# the collector saw them all on one segment; none equals a phone's MAC.
def outer_mac(ip):
    return ":".join("%02x" % b for b in b"\x02\x00" + IPv4Address(ip).packed)


_ident = {}


def outer_ident(src):
    """IPv4 identification: one counter per outer source address."""
    if src not in _ident:
        _ident[src] = rng.randrange(1, 60000)
    _ident[src] = (_ident[src] + 1) & 0xFFFF
    return _ident[src]


def outer_ipv4(src, dst, proto, payload, df=True):
    return ipv4_header(src, dst, proto, len(payload), outer_ident(src),
                       0x4000 if df else 0) + payload


def outer_udp(src, dst, sport, dport, payload, df=True):
    return outer_ipv4(src, dst, 17, udp_datagram(src, dst, sport, dport, payload), df)


def fragment(packet, mtu):
    """Splits an IPv4 packet (20-byte header) into fragments of at most `mtu` bytes, as
    the tunnel endpoint's IP layer does: every fragment but the last carries a multiple
    of 8 payload bytes and MF; the offset is in 8-byte units; same identification."""
    ver_ihl, tos, total, ident, _, ttl, proto, _, src, dst = struct.unpack(
        "!BBHHHBBH4s4s", packet[:20])
    body = packet[20:total]
    step = (mtu - 20) // 8 * 8
    out = []
    for off in range(0, len(body), step):
        chunk = body[off:off + step]
        more = 0x2000 if off + step < len(body) else 0
        out.append(ipv4_header(str(IPv4Address(src)), str(IPv4Address(dst)), proto,
                               len(chunk), ident, more | (off // 8), ttl) + chunk)
    return out


def entropy_port(key):
    """RFC 7348 §5 / RFC 8926 §3.3: the outer UDP source port is a hash of the inner
    flow, in the dynamic range 49152-65535."""
    return 49152 + zlib.crc32(key.encode()) % 16384


# =========================================================================================
# One builder per encapsulation. Each returns the outer IPv4 packet(s) of one inner
# packet or frame; `up` is True from the phone (client) towards the server.
# =========================================================================================
class Tunnel:
    """wrap(up, inner, key, t) -> the outer IPv4 packets carrying `inner` (an IP packet or
    an Ethernet frame, see `carries`); `key` names the inner flow (for entropy ports),
    `t` is the capture time (ERSPAN III timestamps)."""
    kind = "?"
    names = ()      # the TunnelKind names of src/net/tunnel.rs, outermost first
    carries = "ip"  # "ip": an IP packet; "ether": an Ethernet frame
    vlan = None     # 802.1Q tag of the inner frame (ether only)
    pad = False     # inner Ethernet frames padded to 60 bytes (mirrored wire frames)


class Vxlan(Tunnel):
    """VXLAN (RFC 7348 §5): outer IPv4 / UDP (src = entropy port, dst 4789 or `port`) /
        byte 0     flags: 0x08 = I (VNI valid), other bits reserved (0)
        bytes 1-3  reserved (0)
        bytes 4-6  VNI (24 bits)
        byte 7     reserved (0)
    / inner Ethernet frame (no FCS). RFC 7348 says the UDP checksum SHOULD be sent as 0
    but, when non-zero, MUST be correct: it is computed here, like every checksum.
    mtu: when set, an outer IPv4 packet larger than it is fragmented (DF clear)."""
    kind, names, carries = "vxlan", ("vxlan",), "ether"

    def __init__(self, vtep_client, vtep_server, vni, mtu=None, port=4789):
        self.a, self.b, self.vni, self.mtu = vtep_client, vtep_server, vni, mtu
        self.port = port

    def wrap(self, up, inner, key, t):
        src, dst = (self.a, self.b) if up else (self.b, self.a)
        hdr = struct.pack("!B3sI", 0x08, b"\0\0\0", self.vni << 8)
        pkt = outer_udp(src, dst, entropy_port(key + str(up)), self.port, hdr + inner,
                        df=self.mtu is None)
        if self.mtu and len(pkt) > self.mtu:
            return fragment(pkt, self.mtu)
        return [pkt]


class Geneve(Tunnel):
    """Geneve (RFC 8926 §3.4): outer IPv4 / UDP (src = entropy port, dst 6081) /
        byte 0     Ver (2 bits) = 0 | Opt Len (6 bits) = option bytes / 4 = 2
        byte 1     O (control) = 0 | C (critical options) = 0 | Rsvd (6) = 0
        bytes 2-3  Protocol Type = 0x6558 (Transparent Ethernet Bridging)
        bytes 4-6  VNI (24 bits)
        byte 7     reserved
      one option TLV (§3.5), 8 bytes:
        bytes 0-1  Option Class = 0x0108
        byte 2     Type = 0x01 (high bit clear: not critical)
        byte 3     R (3 bits) = 0 | Length (5 bits) = 1 (4-byte words after the TLV header)
        bytes 4-7  option data
    / inner Ethernet frame."""
    kind, names, carries = "geneve", ("geneve",), "ether"

    def __init__(self, nve_client, nve_server, vni):
        self.a, self.b, self.vni = nve_client, nve_server, vni

    def wrap(self, up, inner, key, t):
        src, dst = (self.a, self.b) if up else (self.b, self.a)
        option = struct.pack("!HBB4s", 0x0108, 0x01, 1, bytes.fromhex("0a0b0c0d"))
        assert len(option) == 8
        hdr = struct.pack("!BBHI", (0 << 6) | (len(option) // 4), 0, 0x6558, self.vni << 8)
        return [outer_udp(src, dst, entropy_port(key + str(up)), 6081, hdr + option + inner)]


def gre_header(proto, payload, checksum=False, key=None, seq=None, version=0):
    """GRE (RFC 2784 §2, RFC 2890 §2):
        bits 0-15  C (0x8000) | reserved (0x4000) | K (0x2000) | S (0x1000) |
                   Reserved0 (9 bits) | Ver (3 bits)
        bytes 2-3  Protocol Type (an ethertype)
        [C] Checksum (2) + Reserved1 (2): the Internet checksum of the GRE header and
            payload, computed with the checksum field 0
        [K] Key (4)
        [S] Sequence Number (4)
    followed by the payload."""
    flags = (0x8000 if checksum else 0) | (0x2000 if key is not None else 0) | \
        (0x1000 if seq is not None else 0) | version
    h = struct.pack("!HH", flags, proto)
    if checksum:
        h += b"\0\0\0\0"
    if key is not None:
        h += struct.pack("!I", key)
    if seq is not None:
        h += struct.pack("!I", seq)
    if checksum:
        h = h[:4] + struct.pack("!H", csum(h + payload)) + h[6:]
    return h + payload


class Gre(Tunnel):
    """GRE over IPv4 (IP protocol 47), version 0, Protocol Type 0x0800 (the inner IPv4
    packet follows), with optional K (key) and S (sequence, one counter per direction)."""
    kind, names = "gre", ("gre",)

    def __init__(self, client_end, server_end, key=None, sequence=False):
        self.a, self.b, self.key = client_end, server_end, key
        self.seq = {True: 0, False: 0} if sequence else None

    def _seq(self, up):
        if self.seq is None:
            return None
        self.seq[up] += 1
        return self.seq[up]

    def wrap(self, up, inner, key, t):
        src, dst = (self.a, self.b) if up else (self.b, self.a)
        return [outer_ipv4(src, dst, 47, gre_header(0x0800, inner, key=self.key,
                                                    seq=self._seq(up)))]


class GreTeb(Gre):
    """GRE version 0 with C (checksum + reserved1), Protocol Type 0x6558 (transparent
    Ethernet bridging): the payload is an Ethernet frame, here with one 802.1Q tag."""
    kind, carries = "gre-teb", "ether"

    def __init__(self, client_end, server_end, vlan):
        super().__init__(client_end, server_end)
        self.vlan = vlan

    def wrap(self, up, inner, key, t):
        src, dst = (self.a, self.b) if up else (self.b, self.a)
        return [outer_ipv4(src, dst, 47, gre_header(0x6558, inner, checksum=True))]


class ErspanII(Tunnel):
    """ERSPAN type II (draft-foschiano-erspan-03 §4.1; Wireshark packet-erspan.c):
    outer IPv4 / GRE with S only (flags 0x1000; sequence increments per packet of the
    session), Protocol Type 0x88BE / 8-byte ERSPAN header:
        bits 0-3   Ver = 1          bits 4-15  VLAN (12) = 0
        bits 16-18 COS = 0          bits 19-20 En = 0 (originally without VLAN tag)
        bit 21     T = 0            bits 22-31 Session ID (10) = 7
        bits 32-43 Reserved = 0     bits 44-63 Index (20) = 0
    / the mirrored Ethernet frame (as on the wire: padded to 60 bytes, no FCS).
    A switch mirrors both directions of the phone's port, so every packet goes from the
    switch to the collector."""
    kind, names, carries, pad = "erspan-ii", ("erspan",), "ether", True
    proto = 0x88BE

    def __init__(self, switch, collector, session):
        self.switch, self.collector, self.session = switch, collector, session
        self.seq = 0

    def header(self, up, t):
        return struct.pack("!HHI", (1 << 12) | 0, (0 << 13) | (0 << 11) | (0 << 10)
                           | self.session, (0 << 20) | 0)

    def wrap(self, up, inner, key, t):
        self.seq += 1
        payload = gre_header(self.proto, self.header(up, t) + inner, seq=self.seq)
        return [outer_ipv4(self.switch, self.collector, 47, payload)]


class ErspanIII(ErspanII):
    """ERSPAN type III (draft-foschiano-erspan-03 §4.2; Wireshark packet-erspan.c):
    outer IPv4 / GRE with S only, Protocol Type 0x22EB / 12-byte ERSPAN III header:
        bits 0-3   Ver = 2          bits 4-15  VLAN (12) = 0
        bits 16-18 COS = 0          bits 19-20 BSO = 0 (good frame)
        bit 21     T = 0            bits 22-31 Session ID (10) = 9
        bits 32-63 Timestamp: low 32 bits of the capture time in 100 µs units
        bits 64-79 SGT (security group tag) = 50
        bit 80     P = 1 (Ethernet PDU)   bits 81-85 FT (frame type) = 0 (Ethernet)
        bits 86-91 Hw ID = 5        bit 92 D: 0 ingress (from the phone), 1 egress
        bits 93-94 Gra = 0 (100 µs) bit 95 O = 1: a platform-specific subheader follows
      8-byte platform-specific subheader, Platform ID 3 (as Wireshark decodes it):
        bits 0-5   Platf ID = 3     bits 6-17 reserved = 0   bits 18-31 Port ID/Index = 12
        bits 32-63 upper 32 bits of the 100 µs timestamp
    / the mirrored Ethernet frame (padded to 60 bytes, no FCS)."""
    kind = "erspan-iii"
    proto = 0x22EB
    SGT, HW_ID, PORT_INDEX = 50, 5, 12

    def header(self, up, t):
        ts = (T0_US + int(round(t * 1_000_000))) // 100  # 100 µs units since 1970
        word0 = ((2 << 28) | (0 << 16) | (0 << 13) | (0 << 11) | (0 << 10) | self.session)
        flags = (1 << 15) | (0 << 10) | (self.HW_ID << 4) | ((0 if up else 1) << 3) \
            | (0 << 1) | 1
        base = struct.pack("!IIHH", word0, ts & 0xFFFFFFFF, self.SGT, flags)
        sub = struct.pack("!II", (3 << 26) | (0 << 14) | self.PORT_INDEX, ts >> 32)
        return base + sub


class GtpU(Tunnel):
    """GTP-U (3GPP TS 29.281 §5.1, §5.2; TS 38.415 §5.5.2) on N3, UDP src and dst 2152:
        byte 0     Version (3) = 1 | PT (1) = 1 | spare (1) = 0 | E = 1 | S = 0 | PN = 0
                   = 0x34
        byte 1     Message Type = 0xFF (G-PDU)
        bytes 2-3  Length: octets after the first 8 (optional fields, extension
                   headers and the T-PDU)
        bytes 4-7  TEID (the receiver's)
        bytes 8-9  Sequence Number (0: S is clear)   byte 10  N-PDU Number (0)
        byte 11    Next Extension Header Type = 0x85 (PDU Session Container)
      PDU Session Container (4 bytes):
        byte 0     Length = 1 (in 4-byte units)
        byte 1     PDU Type (4 bits): 0 = DL PDU SESSION INFORMATION, 1 = UL; flags 0
        byte 2     DL: PPP | RQI | QFI (6 bits); UL: N3/N9 delay | new IE | QFI = 9
        byte 3     Next Extension Header Type = 0 (none)
    / the T-PDU: the phone's IPv4 packet.
    Uplink (gNB -> UPF) carries the UPF's TEID, downlink the gNB's."""
    kind, names = "gtp-u", ("gtp-u",)
    QFI = 9

    def __init__(self, gnb, upf, teid_ul, teid_dl):
        self.gnb, self.upf, self.teid_ul, self.teid_dl = gnb, upf, teid_ul, teid_dl

    def wrap(self, up, inner, key, t):
        src, dst = (self.gnb, self.upf) if up else (self.upf, self.gnb)
        teid = self.teid_ul if up else self.teid_dl
        ext = struct.pack("!BBBB", 1, (1 if up else 0) << 4, self.QFI, 0)
        rest = struct.pack("!HBB", 0, 0, 0x85) + ext + inner
        hdr = struct.pack("!BBHI", 0x34, 0xFF, len(rest), teid)
        return [outer_udp(src, dst, 2152, 2152, hdr + rest)]


class IpInIp(Tunnel):
    """IPv4-in-IPv4 (RFC 2003): outer IPv4 with protocol 4, then the inner IPv4 packet."""
    kind, names = "ipip", ("ip-in-ip",)

    def __init__(self, client_end, server_end):
        self.a, self.b = client_end, server_end

    def wrap(self, up, inner, key, t):
        src, dst = (self.a, self.b) if up else (self.b, self.a)
        return [outer_ipv4(src, dst, 4, inner)]


class SixInFour(IpInIp):
    """6in4 (RFC 4213 §3.5): outer IPv4 with protocol 41, then the inner IPv6 packet."""
    kind = "6in4"

    def wrap(self, up, inner, key, t):
        src, dst = (self.a, self.b) if up else (self.b, self.a)
        return [outer_ipv4(src, dst, 41, inner)]


class Teredo(Tunnel):
    """Teredo (RFC 4380 §5.1.1): the IPv6 packet is the payload of an IPv4/UDP datagram
    between the client's mapped address and the Teredo side (here a relay on port 3544).
    Towards the client an origin indication precedes it (8 bytes):
        bytes 0-1  0x0000 (indicator type)
        bytes 2-3  origin UDP port, obfuscated (XOR 0xFFFF)
        bytes 4-7  origin IPv4 address, obfuscated (XOR 0xFFFFFFFF)
    Towards the relay the IPv6 packet is alone. The client's Teredo address
    (2001:0:<server IPv4>:<flags>:<~port>:<~IPv4>) encodes the same mapping."""
    kind, names = "teredo", ("teredo",)

    def __init__(self, client_mapped, client_port, relay, relay_port=3544):
        self.c, self.cp, self.r, self.rp = client_mapped, client_port, relay, relay_port

    def wrap(self, up, inner, key, t):
        if up:
            return [outer_udp(self.c, self.r, self.cp, self.rp, inner, df=False)]
        origin = struct.pack("!HH4s", 0x0000, self.rp ^ 0xFFFF,
                             bytes(b ^ 0xFF for b in IPv4Address(self.r).packed))
        return [outer_udp(self.r, self.c, self.rp, self.cp, origin + inner, df=False)]


def teredo_address(server, flags, mapped, port):
    raw = struct.pack("!HH4sHH4s", 0x2001, 0, IPv4Address(server).packed, flags,
                      port ^ 0xFFFF, bytes(b ^ 0xFF for b in IPv4Address(mapped).packed))
    return str(IPv6Address(raw))


class Nested(Tunnel):
    """A tunnel inside a tunnel: `inner_tunnel`'s outer IPv4 packets are the payload of
    `outer_tunnel` (here GRE, Protocol Type 0x0800, carrying IPv4/UDP 4789/VXLAN)."""

    def __init__(self, outer_tunnel, inner_tunnel):
        self.outer, self.inner = outer_tunnel, inner_tunnel
        self.kind = "%s+%s" % (outer_tunnel.kind, inner_tunnel.kind)
        self.names = outer_tunnel.names + inner_tunnel.names
        self.carries = inner_tunnel.carries

    def wrap(self, up, inner, key, t):
        out = []
        for p in self.inner.wrap(up, inner, key, t):
            out += self.outer.wrap(up, p, key, t)
        return out


# =========================================================================================
# Frames, flows, expectations.
# =========================================================================================
class Pkt:
    """One captured frame: time (s from T0), the Ethernet bytes."""
    order = 0

    def __init__(self, t, data):
        self.t, self.data, self.frame = t, data, None
        Pkt.order += 1
        self.order = Pkt.order


packets = []


def emit_ip(t, ip_packet):
    """Frames an outer IPv4 packet in Ethernet (MACs derived from its addresses)."""
    src = str(IPv4Address(ip_packet[12:16]))
    dst = str(IPv4Address(ip_packet[16:20]))
    p = Pkt(t, ethernet(outer_mac(dst), outer_mac(src), 0x0800, ip_packet))
    packets.append(p)
    return p


requests, dns_rows, negatives = [], [], []


class Flow:
    """One inner TCP connection of a phone, carried by `tunnel`; times in s from T0."""
    next_port = 41000

    def __init__(self, name, tunnel, device, client_ip, client_mac, host, t, v6=False,
                 mss=None):
        Flow.next_port += rng.randrange(3, 300)
        self.name, self.tunnel, self.device = name, tunnel, device
        self.cip, self.cmac, self.host, self.t = client_ip, client_mac, host, t
        self.server = (SERVER6 if v6 else SERVER)[host]
        self.v6 = v6
        self.cport, self.sport = Flow.next_port, 80
        self.mss = mss or (1440 if v6 else 1460)
        self.seq = {True: rng.getrandbits(32), False: rng.getrandbits(32)}
        self.ident = {True: rng.randrange(1, 60000), False: rng.randrange(1, 60000)}
        self.key = "%s:%d>%s:%d/tcp" % (client_ip, self.cport, self.server, self.sport)
        self.sent = 0  # inner packets, each taken out of every tunnel around it

    def ip(self, up, proto, l4, peer=None):
        """The inner IP packet between the phone and `peer` (default: the server)."""
        peer = peer or self.server
        src, dst = (self.cip, peer) if up else (peer, self.cip)
        if self.v6:
            return ipv6_header(src, dst, proto, len(l4)) + l4
        self.ident[up] = (self.ident[up] + 1) & 0xFFFF
        return ipv4_header(src, dst, proto, len(l4), self.ident[up]) + l4

    def inner(self, up, ip_packet):
        if self.tunnel.carries == "ip":
            return ip_packet
        et = 0x86DD if self.v6 else 0x0800
        src, dst = (self.cmac, INNER_GW_MAC) if up else (INNER_GW_MAC, self.cmac)
        return ethernet(dst, src, et, ip_packet, vlan=self.tunnel.vlan, pad=self.tunnel.pad)

    def send_ip(self, up, ip_packet, dt):
        """Wraps one inner packet; returns the frames (several if fragmented)."""
        inner = self.inner(up, ip_packet)
        self.sent += 1
        outs = self.tunnel.wrap(up, inner, self.key, self.t)
        frames = [emit_ip(self.t + 0.00005 * i, p) for i, p in enumerate(outs)]
        self.t += dt
        return frames

    def tcp(self, up, flags, payload=b"", dt=0.0003, opts=b""):
        src, dst = (self.cip, self.server) if up else (self.server, self.cip)
        sp, dp = (self.cport, self.sport) if up else (self.sport, self.cport)
        ack = self.seq[not up] if flags & ACK else 0
        seg = tcp_segment(src, dst, sp, dp, self.seq[up], ack, flags, payload, opts=opts)
        self.seq[up] += len(payload) + (1 if flags & (SYN | FIN) else 0)
        return self.send_ip(up, self.ip(up, 6, seg), dt)

    def udp(self, up, peer, sport, dport, payload, dt):
        src, dst = (self.cip, peer) if up else (peer, self.cip)
        l4 = udp_datagram(src, dst, sport, dport, payload)
        return self.send_ip(up, self.ip(up, 17, l4, peer), dt)

    def exchange(self, method, path, query, body, identifiers, headers=()):
        """The whole connection: handshake, request, response, FIN handshake."""
        opts = struct.pack("!BBH", 2, 4, self.mss) + b"\x04\x02\x01\x01"  # MSS, SACK ok
        self.tcp(True, SYN, opts=opts, dt=0.018)
        self.tcp(False, SYN | ACK, opts=opts, dt=0.0004)
        self.tcp(True, ACK, dt=0.002)
        uri = path + ("?" + query if query else "")
        req = http_request(method, self.host, uri, body, headers, UA[self.device])
        frames = self.tcp(True, PSH | ACK, req, dt=0.019)
        self.request_frames = frames
        expect(self, frames, method, path, identifiers, req)
        self.tcp(False, ACK, dt=0.004)
        self.tcp(False, PSH | ACK, http_response(self.t), dt=0.0008)
        self.tcp(True, ACK, dt=0.006)
        self.tcp(True, FIN | ACK, dt=0.018)
        self.tcp(False, FIN | ACK, dt=0.0005)
        self.tcp(True, ACK)
        return frames[-1]


UA = {"pixel9": "ExampleShop/5.1.0 (Linux; Android 15; Pixel 9)",
      "a54": "ExampleShop/5.1.0 (Linux; Android 14; SM-A546B)",
      "reno10": "ExampleShop/5.1.0 (Linux; Android 14; CPH2531)"}


def http_request(method, host, uri, body, headers, ua):
    h = "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: */*\r\n" % (
        method, uri, host, ua)
    if body:
        h += "Content-Type: application/json; charset=utf-8\r\nContent-Length: %d\r\n" % len(body)
    for k, v in headers:
        h += "%s: %s\r\n" % (k, v)
    return (h + "\r\n").encode() + body


def http_response(t, body=b'{"code":0,"msg":"ok"}'):
    date = (T0 + timedelta(seconds=int(t))).strftime("%a, %d %b %Y %H:%M:%S GMT")
    return ("HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: %s\r\nContent-Type: application/json"
            "\r\nContent-Length: %d\r\n\r\n" % (date, len(body))).encode() + body


def jbody(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def iso(t):
    x = T0 + timedelta(microseconds=int(round(t * 1_000_000)))
    return x.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def expect(flow, frames, method, path, identifiers, req):
    """A request, sent in `frames` (several when the outer packet is fragmented)."""
    ids = DEVICES[flow.device]["ids"]
    for kind in identifiers:  # the request really carries each identifier listed
        assert ids[kind].encode() in req, (flow.name, kind)
    requests.append({"flow": flow.name, "tunnel": flow.tunnel.kind,
                     "kinds": list(flow.tunnel.names), "pkt": frames[-1],
                     "first_pkt": frames[0], "flow_obj": flow,
                     "device": flow.device, "client": flow.cip, "server": flow.server,
                     "host": flow.host, "method": method, "path": path,
                     "identifiers": identifiers})


def negative(pkt, outcome, what, expected, kinds=()):
    """A frame that must not be decapsulated (outcome "not-decapsulated") or whose
    tunnel is malformed (outcome "malformed"); `kinds`: the tunnels taken off it
    before it fails."""
    negatives.append({"pkt": pkt, "outcome": outcome, "what": what, "expected": expected,
                      "kinds": list(kinds)})


# =========================================================================================
# The story.
# =========================================================================================
PX, A54, RENO = DEVICES["pixel9"]["ids"], DEVICES["a54"]["ids"], DEVICES["reno10"]["ids"]
assert teredo_address("192.0.2.45", 0, "192.0.2.77", 40001) == PIXEL9_TEREDO

# +0.1 s  1. VXLAN (cloud traffic mirror overlay, VNI 4242): a54, advertising id in the query.
vxlan_4242 = Vxlan("10.0.2.11", "10.0.2.12", 4242)
f = Flow("vxlan", vxlan_4242, "a54", A54_IP, A54_MAC, "rt.applovin.com", 0.1)
f.exchange("GET", "/v1/ad", "format=banner&ifa=%s&os=android" % A54["advertising_id"], b"",
           ["advertising_id"])

# +0.5 s  a. UDP to 4789 from a monitoring probe: first byte 0x00, no I flag -> not VXLAN.
probe = b"\x00" * 8 + b"probe:path-check seq=0001 ttl=64 not-vxlan"
p = emit_ip(0.5, outer_udp("10.0.2.50", "10.0.2.12", 33434, 4789, probe))
negative(p, "not-decapsulated",
         "UDP datagram to port 4789 whose first payload byte is 0x00 (VXLAN I flag clear): "
         "a path probe, not VXLAN",
         "not decapsulated; stays a plain UDP datagram; no error, no finding")

# +0.6 s  2. Geneve (VNI 77, one option): pixel9 over IPv6, advertising id in a JSON body.
f = Flow("geneve", Geneve("10.0.3.21", "10.0.3.22", 77), "pixel9", PIXEL9_IP6, PIXEL9_MAC,
         "app-measurement.com", 0.6, v6=True)
f.exchange("POST", "/a", None,
           jbody({"app_instance_id": "4d1c7e2f9a0b4c3d8e5f6a7b8c9d0e1f",
                  "adid": PX["advertising_id"], "limit_ad_tracking": False,
                  "events": [{"name": "_first_open"}]}), ["advertising_id"])

# +1.0 s  3. GRE with key 0x01020304 and sequence numbers: OAID to Umeng.
f = Flow("gre-key-seq", Gre("10.255.0.1", "10.255.0.2", key=0x01020304, sequence=True),
         "pixel9", PIXEL9_IP4, PIXEL9_MAC, "ulogs.umeng.com", 1.0)
f.exchange("POST", "/unify_logs", None,
           jbody({"header": {"appkey": "6a7b8c9d0e1f2a3b4c5d6e7f", "oaid": PX["oaid"],
                             "os": "Android", "os_version": "15"},
                  "content": {"analytics": {"sessions": [{"id": "S1"}]}}}), ["oaid"])

# +1.4 s  b. GRE header truncated after 2 bytes (IPv4 total length 22).
p = emit_ip(1.4, outer_ipv4("10.255.0.1", "10.255.0.2", 47, b"\x00\x00"))
negative(p, "malformed",
         "IPv4 protocol 47 (GRE) whose payload is 2 bytes: the GRE header is cut after its "
         "flags",
         "malformed tunnel header: reported as malformed, nothing decapsulated, no crash")

# +1.5 s  4. GRE transparent Ethernet bridging (0x6558) with checksum; inner 802.1Q VLAN 30.
f = Flow("gre-teb-vlan", GreTeb("10.255.1.1", "10.255.1.2", vlan=30), "pixel9", PIXEL9_IP4,
         PIXEL9_MAC, "t.appsflyer.com", 1.5)
f.exchange("POST", "/api/v6.3/androidevent", "app_id=com.example.shop",
           jbody({"advertiserId": PX["advertising_id"], "android_id": PX["android_id"],
                  "eventName": "af_app_opened"}), ["advertising_id", "android_id"])

# +1.9 s  5. ERSPAN type II (session 7): IMEI in the query to Tencent GDT.
f = Flow("erspan-ii", ErspanII("10.10.0.2", "10.10.0.100", 7), "pixel9", PIXEL9_IP4,
         PIXEL9_MAC, "sdk.e.qq.com", 1.9)
f.exchange("GET", "/v2/ping", "appid=1101152570&imei=%s&os=android" % PX["imei"], b"",
           ["imei"])

# +2.3 s  6. ERSPAN type III (session 9, platform subheader): Android id and e-mail to
# Amplitude.
f = Flow("erspan-iii", ErspanIII("10.10.0.3", "10.10.0.100", 9), "pixel9", PIXEL9_IP4,
         PIXEL9_MAC, "api2.amplitude.com", 2.3)
f.exchange("POST", "/2/httpapi", None,
           jbody({"api_key": "fedcba9876543210fedcba9876543210",
                  "events": [{"event_type": "login", "device_id": PX["android_id"],
                              "user_properties": {"email": PX["email"]}}]}),
           ["android_id", "email"])

# +2.7 s  c. PPTP's enhanced GRE (version 1, Protocol Type 0x880B, RFC 2637 §4.1):
# flags K|S|ver 1 = 0x3001, payload length (2), call id (2), sequence (4), then PPP
# (address 0xFF, control 0x03, protocol 0x00FD: MPPE-compressed data).
ppp = b"\xff\x03\x00\xfd" + bytes.fromhex("9f3a1c5e7b20d4")
pptp = struct.pack("!HHHHI", 0x3001, 0x880B, len(ppp), 0x4a21, 17) + ppp
p = emit_ip(2.7, outer_ipv4("10.9.0.5", "10.9.0.1", 47, pptp))
negative(p, "not-decapsulated",
         "GRE version 1 (PPTP enhanced GRE, protocol 0x880B) with 11 bytes of PPP",
         "not decapsulated (only version 0 is); no error, no finding")

# +2.8 s  7. GTP-U on N3: reno10 resolves Pangle, then an IMSI and OAID in a JSON body.
gtp = GtpU("10.200.0.11", "10.200.0.1", teid_ul=0x1A2B3C4D, teid_dl=0x00C0FFEE)
f = Flow("gtp-u", gtp, "reno10", RENO10_IP, None, "api16-access-sg.pangle.io", 2.8)
txid, dport = 0x5EED, 52011
host = "api16-access-sg.pangle.io"
q = f.udp(True, "10.53.0.53", dport, 53, dns_message(txid, host), dt=0.011)
a = f.udp(False, "10.53.0.53", 53, dport, dns_message(txid, host, SERVER[host]), dt=0.03)
dns_rows.append({"query_frame": q[0], "answer_frame": a[0], "tunnel": "gtp-u",
                 "device": "reno10", "client": RENO10_IP, "resolver": "10.53.0.53",
                 "name": host, "type": "A", "answer": SERVER[host]})
f.exchange("POST", "/api/ad/union/sdk/get_ads/", None,
           jbody({"app": {"appid": "5123456", "package_name": "com.example.shop"},
                  "device": {"imsi": RENO["imsi"], "oaid": RENO["oaid"],
                             "os": "Android", "conn_type": 5}}), ["imsi", "oaid"])

# +3.3 s  11. nested: GRE (0x0800) carrying IPv4/UDP 4789/VXLAN (VNI 5001): a54's IMEI.
nested = Nested(Gre("10.255.2.1", "10.255.2.2"), Vxlan("10.0.4.11", "10.0.4.12", 5001))
f = Flow("gre-vxlan", nested, "a54", A54_IP, A54_MAC, "ulogs.umeng.com", 3.3)
f.exchange("POST", "/unify_logs", None,
           jbody({"header": {"appkey": "6a7b8c9d0e1f2a3b4c5d6e7f", "imei": A54["imei"],
                             "os": "Android"},
                  "content": {"analytics": {"ekv": [{"id": "page_view"}]}}}), ["imei"])

# ---- +3.5 s: pixel9's user refuses all purposes (consentry.toml) ----

# +3.8 s  d. VXLAN with the I flag whose inner Ethernet frame is cut to 10 bytes.
cut = ethernet(INNER_GW_MAC, A54_MAC, 0x0800, b"")[:10]
p = emit_ip(3.8, outer_udp("10.0.2.11", "10.0.2.12", entropy_port("cut"), 4789,
                           struct.pack("!B3sI", 0x08, b"\0\0\0", 4242 << 8) + cut))
negative(p, "malformed",
         "VXLAN (I flag, VNI 4242) whose inner Ethernet frame has only 10 bytes",
         "malformed inner frame: reported as malformed, nothing attributed, no crash",
         kinds=["vxlan"])

# +4.0 s  12. VXLAN whose outer IPv4 packet is fragmented: one inner TCP segment of about
# 2.7 kB (jumbo MSS inside the cloud network), the tunnel path MTU is 1500.
f = Flow("vxlan-outer-fragments", Vxlan("10.0.2.11", "10.0.2.12", 4242, mtu=1500), "a54",
         A54_IP, A54_MAC, "api2.amplitude.com", 4.0, mss=8961)
events = [{"event_type": ["session_start", "screen_view", "add_to_cart"][i % 3],
           "time": 1795860004000 + i * 250, "event_properties": {"pad": "x" * 150}}
          for i in range(10)]
body = jbody({"api_key": "0f1e2d3c4b5a69780f1e2d3c4b5a6978", "events": events,
              "device": {"device_id": A54["android_id"], "adid": A54["advertising_id"]}})
assert 2400 <= len(body) <= 2600 and body.index(A54["android_id"].encode()) > len(body) // 2
f.exchange("POST", "/2/httpapi", None, body, ["android_id", "advertising_id"])
assert len(f.request_frames) == 2  # the request's outer IPv4 packet: two fragments

# +4.6 s  8. IP-in-IP: pixel9 (after the refusal) sends its advertising id to AppLovin.
f = Flow("ipip", IpInIp("10.66.0.1", "10.66.0.2"), "pixel9", PIXEL9_IP4, None,
         "rt.applovin.com", 4.6)
f.exchange("POST", "/v1/bid", None,
           jbody({"device": {"ifa": PX["advertising_id"], "os": "android"},
                  "app": {"bundle": "com.example.shop", "ver": "5.1.0"}}),
           ["advertising_id"])

# +5.0 s  9. 6in4: pixel9's IPv6 through a tunnel broker; OAID in the query.
f = Flow("6in4", SixInFour("192.0.2.66", "198.51.100.66"), "pixel9", PIXEL9_IP6, None,
         "sdk.e.qq.com", 5.0, v6=True)
f.exchange("GET", "/v2/ping", "appid=1101152570&oaid=%s" % PX["oaid"], b"", ["oaid"])

# +5.4 s  10. Teredo: pixel9's Teredo address (server 192.0.2.45, mapped 192.0.2.77:40001)
# through the relay 192.0.2.99:3544; IMEI and Android id in a JSON body to AppsFlyer.
f = Flow("teredo", Teredo("192.0.2.77", 40001, "192.0.2.99"), "pixel9", PIXEL9_TEREDO, None,
         "t.appsflyer.com", 5.4, v6=True)
f.exchange("POST", "/api/v6.3/androidevent", "app_id=com.example.shop",
           jbody({"imei": PX["imei"], "android_id": PX["android_id"],
                  "eventName": "af_purchase"}), ["imei", "android_id"])

# =========================================================================================
# Writing.
# =========================================================================================
def number_frames():
    packets.sort(key=lambda p: (p.t, p.order))
    for i, p in enumerate(packets, 1):
        p.frame = i
    for a, b in zip(packets, packets[1:]):
        assert us(a.t) < us(b.t), (a.frame, b.frame)


def us(t):
    return T0_US + int(round(t * 1_000_000))


def write_pcap(path):
    # Global header: magic a1b2c3d4 (microseconds), version 2.4, thiszone 0, sigfigs 0,
    # snaplen 65535, link type 1 (Ethernet); little-endian like the gateway capture.
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1)]
    for p in packets:
        t = us(p.t)
        assert len(p.data) <= 65535
        out.append(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(p.data),
                               len(p.data)) + p.data)
    with open(path, "wb") as f:
        f.write(b"".join(out))


def write_case(path):
    text = ("# Case file of the tunnels sample capture (make_tunnels.py writes it).\n"
            "# All identifier values are synthetic.\n\n"
            '[case]\nid = "tunnels-2026-11-28"\n'
            'title = "Example Shop 5.1 on three test phones seen through tunnels"\n'
            'timezone = "Asia/Shanghai"\n\n'
            '[app]\nname = "Example Shop"\npackage = "com.example.shop"\n'
            'first_party = [%s]\n\n' % ", ".join('"%s"' % s for s in FIRST_PARTY))
    for id_, d in DEVICES.items():
        text += "# %s\n" % d["note"]
        text += '[[device]]\nid = "%s"\naddresses = [%s]\n[device.identifiers]\n' % (
            id_, ", ".join('"%s"' % a for a in d["addresses"]))
        for k, v in d["ids"].items():
            text += '%s = "%s"\n' % (k, v)
        text += "\n"
    text += ('[[consent]]\ndevice = "pixel9"\nat = "%s"\ndecision = "refused"\n'
             'note = "tapped Disagree on the privacy dialog (all purposes)"\n\n'
             % iso(REFUSAL_S))
    text += "[rules]\ngrace_ms = 1000\nfrequency_per_minute = 30\n"
    with open(path, "w") as f:
        f.write(text)


def request_rows():
    rows = []
    for r in requests:
        # The request's time is its first byte's: its first frame's.
        t = r["first_pkt"].t
        consent = ("not-asked" if r["device"] != "pixel9"
                   else "after-refusal" if t >= REFUSAL_S else "before-refusal")
        rows.append({"flow": r["flow"], "tunnel": r["tunnel"], "kinds": r["kinds"],
                     "packets": r["flow_obj"].sent,
                     "frame": r["pkt"].frame, "at": iso(t),
                     **{k: r[k] for k in ["device", "client", "server", "host", "method",
                                          "path", "identifiers"]},
                     "consent": consent})
    rows.sort(key=lambda r: r["frame"])
    return rows


def expected_doc(rows):
    return {
        "capture": "tunnels.pcap",
        "generator": "captures/tunnels/make_tunnels.py",
        "frames": len(packets),
        "refusal": {"device": "pixel9", "at": iso(REFUSAL_S)},
        "notes": ["frame: the pcap frame completing the request (the second outer IPv4 "
                  "fragment for vxlan-outer-fragments); at: the time of its first frame",
                  "client/server: the inner (tunnelled) IP addresses; server port 80",
                  "path: without the query string",
                  "tunnel: this capture's name of the encapsulation; kinds: the tunnel "
                  "kinds consentry names (src/net/tunnel.rs), outermost first",
                  "packets: the flow's inner packets (DNS included), each taken out of "
                  "every tunnel in kinds",
                  "a54 is attributed by the inner Ethernet source MAC only"],
        "requests": rows,
        "dns": [{"query_frame": d["query_frame"].frame, "answer_frame": d["answer_frame"].frame,
                 **{k: v for k, v in d.items() if not k.endswith("_frame")}}
                for d in dns_rows],
        "negative": [{"frame": n["pkt"].frame, "outcome": n["outcome"], "what": n["what"],
                      "expected": n["expected"], "kinds": n["kinds"]} for n in negatives],
    }


number_frames()
write_pcap(os.path.join(HERE, "tunnels.pcap"))
write_case(os.path.join(HERE, "consentry.toml"))
rows = request_rows()
doc = expected_doc(rows)
print("wrote tunnels.pcap (%d frames), consentry.toml (%d requests, %d negative frames)"
      % (len(packets), len(rows), len(negatives)))

# =========================================================================================
# flannel.pcap: VXLAN on Linux's own default port, 8472 (flannel, kernel `ip link add
# type vxlan` without dstport), not IANA's 4789. Read as a tunnel only when told
# (`--tunnel-port vxlan=4789,8472`); otherwise its datagrams are ordinary UDP.
# =========================================================================================
packets.clear()
requests.clear()
Pkt.order = 0

# +0.2 s  a54, hosted on a Kubernetes node, behind flannel's VXLAN (VNI 1): its IMEI and
# advertising id to Pangle, before any consent.
f = Flow("vxlan-8472", Vxlan("10.0.5.11", "10.0.5.12", 1, port=8472), "a54", A54_IP,
         A54_MAC, "api16-access-sg.pangle.io", 0.2)
f.exchange("POST", "/api/ad/union/sdk/get_ads/", None,
           jbody({"app": {"appid": "5123456", "package_name": "com.example.shop"},
                  "device": {"imei": A54["imei"], "gaid": A54["advertising_id"],
                             "os": "Android"}}), ["imei", "advertising_id"])
number_frames()
write_pcap(os.path.join(HERE, "flannel.pcap"))
flannel_rows = request_rows()
doc["flannel"] = {
    "capture": "flannel.pcap",
    "frames": len(packets),
    "port": 8472,
    "notes": ["VXLAN to UDP 8472: decoded only with --tunnel-port vxlan=4789,8472; "
              "without it, every frame is an ordinary UDP datagram between the two nodes"],
    "requests": flannel_rows,
}
with open(os.path.join(HERE, "expected.json"), "w") as out:
    json.dump(doc, out, indent=1)
    out.write("\n")
print("wrote flannel.pcap (%d frames, %d request), expected.json"
      % (len(packets), len(flannel_rows)))
