#!/usr/bin/env python3
"""Tags the Ethernet frames of a pcap as a span port on a trunk would deliver them.

Usage: vlan_tag.py IN.pcap OUT.pcap

IPv4 and ARP frames get one 802.1Q tag (VLAN 42); IPv6 frames two, QinQ (an 802.1ad
service tag, VLAN 100, around an 802.1Q tag, VLAN 42). Other frames, and everything
after each frame's MAC addresses, are copied unchanged, with their capture times. The
input must be a classic pcap of link type Ethernet (1), either byte order, µs or ns
(tcpdump's output). Used by make_netns.sh, whose kernel has no 802.1Q support.
"""
import struct
import sys

VLAN = 42
SERVICE_VLAN = 100
TAG_8021Q = struct.pack("!HH", 0x8100, VLAN)
TAG_QINQ = struct.pack("!HH", 0x88A8, SERVICE_VLAN) + TAG_8021Q
TYPE_IPV4, TYPE_ARP, TYPE_IPV6 = 0x0800, 0x0806, 0x86DD


def tag(frame):
    if len(frame) < 14:
        return frame
    (ethertype,) = struct.unpack_from("!H", frame, 12)
    if ethertype in (TYPE_IPV4, TYPE_ARP):
        return frame[:12] + TAG_8021Q + frame[12:]
    if ethertype == TYPE_IPV6:
        return frame[:12] + TAG_QINQ + frame[12:]
    return frame


def main(src, dst):
    data = open(src, "rb").read()
    magic = data[:4]
    if magic in (b"\xd4\xc3\xb2\xa1", b"\x4d\x3c\xb2\xa1"):
        end = "<"
    elif magic in (b"\xa1\xb2\xc3\xd4", b"\xa1\xb2\x3c\x4d"):
        end = ">"
    else:
        sys.exit(f"vlan_tag.py: {src} is not a classic pcap")
    major, minor, zone, sigfigs, snaplen, link = struct.unpack_from(end + "HHiIII", data, 4)
    if link != 1:
        sys.exit(f"vlan_tag.py: {src} has link type {link}, not Ethernet (1)")
    out = [data[:16], struct.pack(end + "II", snaplen + 8, link)]
    pos = 24
    while pos + 16 <= len(data):
        sec, frac, caplen, origlen = struct.unpack_from(end + "IIII", data, pos)
        frame = data[pos + 16 : pos + 16 + caplen]
        if len(frame) < caplen:
            sys.exit(f"vlan_tag.py: {src} is cut short in the record at byte {pos}")
        tagged = tag(frame)
        grown = len(tagged) - len(frame)
        out.append(struct.pack(end + "IIII", sec, frac, caplen + grown, origlen + grown))
        out.append(tagged)
        pos += 16 + caplen
    open(dst, "wb").write(b"".join(out))


if __name__ == "__main__":
    if len(sys.argv) != 3:
        sys.exit(__doc__.strip().splitlines()[2])
    main(sys.argv[1], sys.argv[2])
