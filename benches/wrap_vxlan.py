#!/usr/bin/env python3
"""Wraps every frame of a classic Ethernet pcap in VXLAN, as a cloud traffic mirror
delivers it: outer Ethernet / IPv4 (valid header checksum, DF) / UDP to port 4789
(source port from a hash of the inner addresses and ports, as VTEPs choose it; UDP
checksum 0, allowed over IPv4) / VXLAN (VNI 4242) / the frame unchanged.

For benchmarks of tunnel decoding (README.md, "Packet captures against peer tools"):
the same traffic, with and without the tunnel, for consentry and the peers.

Usage: python3 benches/wrap_vxlan.py IN.pcap OUT.pcap
Streams: memory stays small whatever the file's size.
"""

import struct
import sys
import zlib

OUTER_SRC_MAC = bytes.fromhex("020000000a01")
OUTER_DST_MAC = bytes.fromhex("020000000a02")
OUTER_SRC_IP = bytes([10, 200, 0, 1])
OUTER_DST_IP = bytes([10, 200, 0, 2])
VXLAN_PORT = 4789
VNI = 4242
OVERHEAD = 14 + 20 + 8 + 8


def ones_complement_sum(data):
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


# The outer IPv4 header's words other than total length and identification.
IP_PARTIAL = ones_complement_sum(
    struct.pack("!BBHHHBBH4s4s", 0x45, 0, 0, 0, 0x4000, 64, 17, 0, OUTER_SRC_IP, OUTER_DST_IP)
)
VXLAN = struct.pack("!B3sI", 0x08, b"\0\0\0", VNI << 8)
ETHERNET = OUTER_DST_MAC + OUTER_SRC_MAC + b"\x08\x00"


def entropy_port(frame):
    """A source port from the inner IPv4 addresses and ports (RFC 7348 §5), the same
    for both directions of a connection."""
    if len(frame) >= 38 and frame[12:14] == b"\x08\x00":
        a, b = frame[26:30] + frame[34:36], frame[30:34] + frame[36:38]
        key = min(a, b) + max(a, b)
    else:
        key = frame[:14]
    return 49152 + zlib.crc32(key) % 16384


def wrap(frame, ident):
    total = 20 + 8 + 8 + len(frame)
    s = IP_PARTIAL + total + ident
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, total, ident, 0x4000, 64, 17, ~s & 0xFFFF,
                     OUTER_SRC_IP, OUTER_DST_IP)
    udp = struct.pack("!HHHH", entropy_port(frame), VXLAN_PORT, 8 + 8 + len(frame), 0)
    return ETHERNET + ip + udp + VXLAN + frame


def main():
    if len(sys.argv) != 3:
        sys.exit(__doc__)
    with open(sys.argv[1], "rb") as src, open(sys.argv[2], "wb") as dst:
        header = src.read(24)
        if len(header) < 24:
            sys.exit("%s: not a pcap file (%d bytes)" % (sys.argv[1], len(header)))
        magic = header[:4]
        endian = {b"\xd4\xc3\xb2\xa1": "<", b"\xa1\xb2\xc3\xd4": ">",
                  b"\x4d\x3c\xb2\xa1": "<", b"\xa1\xb2\x3c\x4d": ">"}.get(magic)
        if endian is None:
            sys.exit("%s: not a classic pcap file (magic %s)" % (sys.argv[1], magic.hex()))
        snaplen, link = struct.unpack(endian + "II", header[16:24])
        if link != 1:
            sys.exit("%s: link type %d, only Ethernet (1) is wrapped" % (sys.argv[1], link))
        dst.write(header[:16] + struct.pack(endian + "II", min(snaplen + OVERHEAD, 262144), 1))
        ident, frames = 0, 0
        while True:
            record = src.read(16)
            if len(record) < 16:
                break
            sec, frac, caplen, origlen = struct.unpack(endian + "IIII", record)
            frame = src.read(caplen)
            if len(frame) < caplen:
                sys.exit("%s: frame %d cut short" % (sys.argv[1], frames + 1))
            if len(frame) + OVERHEAD - 14 > 65535:
                sys.exit("%s: frame %d too long for an IPv4 packet once wrapped"
                         % (sys.argv[1], frames + 1))
            ident = (ident + 1) & 0xFFFF
            out = wrap(frame, ident)
            dst.write(struct.pack(endian + "IIII", sec, frac, len(out), origlen + OVERHEAD))
            dst.write(out)
            frames += 1
    print("%s: %d frames wrapped in VXLAN" % (sys.argv[2], frames))


if __name__ == "__main__":
    main()
