#!/usr/bin/env python3
"""Writes captures/gateway/dhcp.pcap: the gateway's network as its clients join it.

The case is gateway/consentry.toml. At 2026-11-28T09:40:00Z the unknown laptop (MAC
02:00:5e:10:00:77) gets 192.168.60.77 from the gateway's DHCP server (192.168.60.1):
DISCOVER, OFFER, REQUEST, ACK, its host name "news-laptop" and vendor class
"MSFT 5.0" in its messages; then it fetches a page over HTTP. The case's phone pixel7
(02:00:5e:10:00:23) renews 192.168.60.23 (REQUEST with ciaddr, ACK; host name
"Pixel-7", vendor class "android-dhcp-14") and sends one request with its
advertising id (a finding: pixel7 has made no decision yet). A third machine
(02:00:5e:10:00:99) gets 192.168.60.99 but sends nothing else.

Deterministic, standard library only; IP, TCP and UDP headers from captures/pcapkit.py
with valid checksums. Classic pcap, microsecond timestamps, Ethernet.
"""

import os
import struct
import sys
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from pcapkit import ACK, FIN, PSH, SYN, ipv4_header, mac, tcp_segment, udp_datagram  # noqa: E402

T0 = datetime(2026, 11, 28, 9, 40, 0, tzinfo=timezone.utc).timestamp()
GATEWAY_MAC = "02:00:5e:10:00:01"
GATEWAY_IP = "192.168.60.1"
BROADCAST_MAC = "ff:ff:ff:ff:ff:ff"
AD_ID = "38400000-8cf0-11bd-b23e-10b96e40000d"

frames = []


def frame(t, src_mac, dst_mac, src_ip, dst_ip, proto, l4, ident):
    ip = ipv4_header(src_ip, dst_ip, proto, len(l4), ident)
    frames.append((t, mac(dst_mac) + mac(src_mac) + b"\x08\x00" + ip + l4))


def dhcp(op, chaddr, kind, xid, ciaddr="0.0.0.0", yiaddr="0.0.0.0", options=()):
    """A DHCPv4 message (RFC 2131): Ethernet hardware address, the options after the
    magic cookie, option 53 first, then END."""
    from ipaddress import IPv4Address
    fixed = struct.pack("!BBBBIHH4s4s4s4s16s64s128s", op, 1, 6, 0, xid, 0, 0x8000,
                        IPv4Address(ciaddr).packed, IPv4Address(yiaddr).packed,
                        IPv4Address(GATEWAY_IP if op == 2 else "0.0.0.0").packed,
                        b"\0" * 4, mac(chaddr) + b"\0" * 10, b"\0" * 64, b"\0" * 128)
    opts = bytes([53, 1, kind])
    for code, value in options:
        opts += bytes([code, len(value)]) + value
    return fixed + bytes([99, 130, 83, 99]) + opts + b"\xff"


def client_dhcp(t, chaddr, src_ip, payload, ident):
    frame(t, chaddr, BROADCAST_MAC, src_ip, "255.255.255.255", 17,
          udp_datagram(src_ip, "255.255.255.255", 68, 67, payload), ident)


def server_dhcp(t, payload, ident):
    frame(t, GATEWAY_MAC, BROADCAST_MAC, GATEWAY_IP, "255.255.255.255", 17,
          udp_datagram(GATEWAY_IP, "255.255.255.255", 67, 68, payload), ident)


def lease_options():
    """Server identifier, lease time, subnet mask and router."""
    from ipaddress import IPv4Address
    return ((54, IPv4Address(GATEWAY_IP).packed), (51, struct.pack("!I", 3600)),
            (1, IPv4Address("255.255.255.0").packed), (3, IPv4Address(GATEWAY_IP).packed))


def http(t, client_mac, client_ip, sport, server_ip, request, response, ident, port=80):
    """A TCP connection through the gateway: handshake, one request and its
    response, both sides closing. (make_platform.py uses it too.)"""
    c, s = 1000, 5000
    steps = [
        (0.000, True, c, 0, SYN, b""),
        (0.010, False, s, c + 1, SYN | ACK, b""),
        (0.011, True, c + 1, s + 1, ACK, b""),
        (0.012, True, c + 1, s + 1, PSH | ACK, request),
        (0.030, False, s + 1, c + 1 + len(request), PSH | ACK, response),
        (0.031, True, c + 1 + len(request), s + 1 + len(response), FIN | ACK, b""),
        (0.040, False, s + 1 + len(response), c + 2 + len(request), FIN | ACK, b""),
        (0.041, True, c + 2 + len(request), s + 2 + len(response), ACK, b""),
    ]
    for i, (dt, up, seq, ack, flags, payload) in enumerate(steps):
        if up:
            seg = tcp_segment(client_ip, server_ip, sport, port, seq, ack, flags, payload)
            frame(t + dt, client_mac, GATEWAY_MAC, client_ip, server_ip, 6, seg, ident + i)
        else:
            seg = tcp_segment(server_ip, client_ip, port, sport, seq, ack, flags, payload)
            frame(t + dt, GATEWAY_MAC, client_mac, server_ip, client_ip, 6, seg, ident + i)


def main():
    from ipaddress import IPv4Address
    laptop, phone, other = "02:00:5e:10:00:77", "02:00:5e:10:00:23", "02:00:5e:10:00:99"
    named = ((12, b"news-laptop"), (60, b"MSFT 5.0"))
    # The laptop joins: DISCOVER, OFFER, REQUEST, ACK.
    client_dhcp(T0 + 0.0, laptop, "0.0.0.0",
                dhcp(1, laptop, 1, 0x1001, options=named), 1)
    server_dhcp(T0 + 0.1, dhcp(2, laptop, 2, 0x1001, yiaddr="192.168.60.77",
                               options=lease_options()), 2)
    client_dhcp(T0 + 0.2, laptop, "0.0.0.0",
                dhcp(1, laptop, 3, 0x1001, options=((50, IPv4Address("192.168.60.77").packed),
                                                    (54, IPv4Address(GATEWAY_IP).packed))
                     + named), 3)
    server_dhcp(T0 + 0.3, dhcp(2, laptop, 5, 0x1001, yiaddr="192.168.60.77",
                               options=lease_options()), 4)
    # The phone renews its lease (it holds the address: ciaddr, unicast in real
    # networks, broadcast here alike).
    phone_named = ((12, b"Pixel-7"), (60, b"android-dhcp-14"))
    client_dhcp(T0 + 1.0, phone, "192.168.60.23",
                dhcp(1, phone, 3, 0x2002, ciaddr="192.168.60.23", options=phone_named), 5)
    server_dhcp(T0 + 1.1, dhcp(2, phone, 5, 0x2002, ciaddr="192.168.60.23",
                               yiaddr="192.168.60.23",
                               options=lease_options()), 6)
    # A third machine takes an address and stays silent.
    server_dhcp(T0 + 1.5, dhcp(2, other, 5, 0x3003, yiaddr="192.168.60.99",
                               options=lease_options()), 7)
    # The laptop reads the news; the phone reports its advertising id.
    http(T0 + 2.0, laptop, "192.168.60.77", 50077, "198.51.100.20",
         b"GET /today HTTP/1.1\r\nHost: news.example\r\nUser-Agent: Mozilla/5.0\r\n\r\n",
         b"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: 5\r\n\r\nnews\n",
         100)
    http(T0 + 3.0, phone, "192.168.60.23", 50023, "203.0.113.30",
         b"GET /v1/ad?adid=" + AD_ID.encode() +
         b" HTTP/1.1\r\nHost: ads.tracker.example\r\n\r\n",
         b"HTTP/1.1 204 No Content\r\n\r\n", 200)
    write_pcap(os.path.join(HERE, "dhcp.pcap"))


class TcpConn:
    """One TCP connection of a client through the gateway, its segments added to
    `frames` as they go, each `dt` after the one before (make_upload.py and
    make_wsdeflate.py). `client` is (MAC, address, port), `server` (address, port)."""

    def __init__(self, t, client, server, seqs=(1000, 5000), ident=400):
        self.client_mac, self.client_ip, self.sport = client
        self.server_ip, self.port = server
        self.t, (self.c, self.s), self.ident = t, seqs, ident

    def send(self, up, flags, payload=b"", dt=0.0001):
        """A segment from the client (`up`) or the server."""
        ack = (self.s if up else self.c) if flags & ACK else 0
        if up:
            seg = tcp_segment(self.client_ip, self.server_ip, self.sport, self.port,
                              self.c, ack, flags, payload)
            frame(self.t, self.client_mac, GATEWAY_MAC, self.client_ip, self.server_ip, 6,
                  seg, self.ident)
            self.c += len(payload) + (1 if flags & (SYN | FIN) else 0)
        else:
            seg = tcp_segment(self.server_ip, self.client_ip, self.port, self.sport,
                              self.s, ack, flags, payload)
            frame(self.t, GATEWAY_MAC, self.client_mac, self.server_ip, self.client_ip, 6,
                  seg, self.ident)
            self.s += len(payload) + (1 if flags & (SYN | FIN) else 0)
        self.ident += 1
        self.t += dt


def write_pcap(path, gzipped=False):
    """The frames so far as a classic pcap file (µs, Ethernet); `gzipped`: through
    gzip, with no name and time in its header, so the file is the same each run."""
    import gzip
    with open(path, "wb") as raw:
        f = gzip.GzipFile(fileobj=raw, mode="wb", filename="", mtime=0,
                          compresslevel=9) if gzipped else raw
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t, data in frames:
            sec = int(t)
            usec = int(round((t - sec) * 1_000_000))
            f.write(struct.pack("<IIII", sec, usec, len(data), len(data)) + data)
        if gzipped:
            f.close()
    print(f"wrote {path}: {len(frames)} frames")


if __name__ == "__main__":
    main()
