"""IP, TCP and UDP headers with valid checksums, MAC addresses and DNS messages, for the
capture generators under captures/ (make_gateway.py, make_tunnels.py, make_wifi.py,
make_wpa2.py, make_wpa3.py, make_tkip.py; the last four through wlankit.py too), and the
Luhn check of their synthetic IMEIs. Standard library only; addresses are strings (IPv4,
IPv6 or MAC), headers, packets and messages bytes.
"""

import struct
from ipaddress import IPv4Address, IPv6Address, ip_address

FIN, SYN, RST, PSH, ACK = 1, 2, 4, 8, 16


def luhn_ok(digits):
    """Whether a string of digits passes the Luhn check (an IMEI's last digit)."""
    total = 0
    for i, c in enumerate(reversed(digits)):
        d = int(c) * (2 if i % 2 else 1)
        total += d - 9 if d > 9 else d
    return total % 10 == 0


def csum(data):
    """Internet checksum (RFC 1071)."""
    if len(data) % 2:
        data += b"\0"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return (~s) & 0xFFFF


def ipv4_header(src, dst, proto, payload_len, ident, flags_frag=0x4000, ttl=64):
    h = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + payload_len, ident, flags_frag, ttl,
                    proto, 0, IPv4Address(src).packed, IPv4Address(dst).packed)
    return h[:10] + struct.pack("!H", csum(h)) + h[12:]


def ipv6_header(src, dst, nh, payload_len, hlim=64):
    return struct.pack("!IHBB16s16s", 0x60000000, payload_len, nh, hlim,
                       IPv6Address(src).packed, IPv6Address(dst).packed)


def pseudo(src, dst, proto, length):
    """The pseudo-header of the TCP and UDP checksums, IPv4 or IPv6."""
    a, b = ip_address(src), ip_address(dst)
    if a.version == 4:
        return struct.pack("!4s4sBBH", a.packed, b.packed, 0, proto, length)
    return struct.pack("!16s16sIxxxB", a.packed, b.packed, length, proto)


def tcp_segment(src, dst, sport, dport, seq, ack, flags, payload=b"", window=64240, opts=b""):
    off = (20 + len(opts)) // 4
    h = struct.pack("!HHIIBBHHH", sport, dport, seq & 0xFFFFFFFF, ack & 0xFFFFFFFF,
                    off << 4, flags, window, 0, 0) + opts
    c = csum(pseudo(src, dst, 6, len(h) + len(payload)) + h + payload)
    return h[:16] + struct.pack("!H", c) + h[18:] + payload


def udp_datagram(src, dst, sport, dport, payload):
    h = struct.pack("!HHHH", sport, dport, 8 + len(payload), 0)
    c = csum(pseudo(src, dst, 17, 8 + len(payload)) + h + payload) or 0xFFFF
    return h[:6] + struct.pack("!H", c) + payload


def mac(s):
    """A MAC address written "02:00:00:aa:cc:07" as its 6 bytes, in transmission order
    (IEEE 802-2014 8.1)."""
    return bytes(int(x, 16) for x in s.split(":"))


def qname(name):
    """A domain name as a sequence of labels, uncompressed (RFC 1035 3.1, 4.1.2)."""
    out = b""
    for label in name.rstrip(".").split("."):
        out += bytes([len(label)]) + label.encode()
    return out + b"\0"


def dns_message(txid, name, answer_ip=None):
    """A query (RD) for name's A record, or the answer (QR, RD, RA) with one A record
    whose name is a compression pointer to the question (0xC00C) (RFC 1035 4.1, 4.1.4)."""
    if answer_ip is None:
        return struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + qname(name) + \
            struct.pack("!HH", 1, 1)
    return struct.pack("!HHHHHH", txid, 0x8180, 1, 1, 0, 0) + qname(name) + \
        struct.pack("!HH", 1, 1) + struct.pack("!HHHIH4s", 0xC00C, 1, 1, 300, 4,
                                               IPv4Address(answer_ip).packed)
