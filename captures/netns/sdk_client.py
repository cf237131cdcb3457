#!/usr/bin/env python3
"""An SDK's message in its own protocol, for make_netns.sh: a 4-byte big-endian
length, then a JSON object {"cmd": CMD, KEY: VALUE}, to port 7000 of NAME; the server
answers 4 bytes.

Usage: sdk_client.py NAME CMD KEY VALUE [A|AAAA RESOLVER]

Without a record type the system's resolver finds NAME (glibc: over UDP, then over
TCP when the answer is truncated). With one, a query of this script's own with EDNS (a
4096-byte buffer) to RESOLVER on port 53, whose answer must be longer than the link's
MTU (1400), so that it comes in IP fragments; the first address of the answer is used.
"""
import random
import socket
import struct
import sys

PORT = 7000
TYPES = {"A": (1, socket.AF_INET, 4), "AAAA": (28, socket.AF_INET6, 16)}


def lookup(name, rtype, resolver):
    qtype, family, size = TYPES[rtype]
    qname = b"".join(bytes([len(l)]) + l for l in name.encode().split(b".")) + b"\0"
    query = struct.pack("!HHHHHH", random.randrange(1 << 16), 0x0100, 1, 0, 0, 1)
    query += qname + struct.pack("!HH", qtype, 1)
    query += b"\0" + struct.pack("!HHIH", 41, 4096, 0, 0)  # OPT: a 4096-byte buffer
    u = socket.socket(family, socket.SOCK_DGRAM)
    u.settimeout(5)
    u.sendto(query, (resolver, 53))
    answer = u.recv(65536)
    if len(answer) <= 1400:
        sys.exit(f"sdk_client.py: the answer for {name} is {len(answer)} bytes, not fragmented")
    # The first record follows the question: a compressed name (2 bytes), type, class,
    # TTL and length (10 bytes), then the address.
    at = 12 + len(qname) + 4 + 12
    return socket.inet_ntop(family, answer[at : at + size])


def main(name, cmd, key, value, rtype=None, resolver=None):
    host = lookup(name, rtype, resolver) if rtype else name
    s = socket.create_connection((host, PORT), timeout=30)
    body = ('{"cmd":"%s","%s":"%s"}' % (cmd, key, value)).encode()
    s.sendall(len(body).to_bytes(4, "big") + body)
    s.recv(4)
    s.close()


if __name__ == "__main__":
    if len(sys.argv) not in (5, 7):
        sys.exit(__doc__.strip().splitlines()[4])
    main(*sys.argv[1:])
