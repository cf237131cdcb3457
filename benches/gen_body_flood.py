#!/usr/bin/env python3
"""Writes a pcap of many HTTP/1.1 uploads in progress at once, or of many connections
opened and left, for the memory check of the pcap tap (README, "Memory under floods of
uploads"; benches/flood_memory.sh).

Every connection (client 10.1.x.y, server 10.9.9.9:80, picked up mid-stream: no
handshake) sends a POST head, then its body arrives in 1 400-byte segments taken in
turn from every connection, so that all bodies are being read at the same time.

Shapes (--shape):
  open     each body announces 4 x --body bytes and gets --body of them: it never
           completes before the capture ends;
  pending  each body is complete (--body bytes) and no response ever comes: the
           requests wait for their responses;
  claim    each head announces 1 000 000 bytes and --body bytes follow: a flood of
           large announcements with nearly nothing behind them;
  syn      each connection is one SYN and nothing more (a port scan, a SYN flood):
           only the flow table's own state;
  tls      each connection (to port 443) sends a TLS record header claiming
           18 432 bytes and the first 66 bytes of a ClientHello, nothing more: read
           with a key log, every connection gets a decryptor;
  raw      each connection speaks a binary protocol no parser reads (a 4-byte
           header, then --body bytes): its bytes are kept in parts for the search;
  head     each connection sends a request line and --body bytes of header fields
           that never end (no blank line): heads being read at once (keep --body
           under the parser's 64 KiB head limit to hold them all);
  hpack    each connection speaks HTTP/2 with prior knowledge (h2c): the server
           announces a 64 KiB header table, and the client fills it with --body
           bytes of header fields indexed into it, in requests of 15 000 bytes of
           fields each: dynamic tables held at once;
  dns      each connection (to port 53) sends one DNS query over TCP, and the
           resolver answers with a message whose length prefix announces 65 535
           bytes, of which --body arrive: DNS-over-TCP messages held at once.

The bodies are filler text; nothing personal is in them.
Usage: gen_body_flood.py --out FILE [--connections N] [--body BYTES] [--shape S]
"""

import argparse
import struct

SEGMENT = 1400
SERVER = bytes([10, 9, 9, 9])


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True)
    ap.add_argument("--connections", type=int, default=1000)
    ap.add_argument("--body", type=int, default=1_000_000)
    ap.add_argument(
        "--shape",
        choices=["open", "pending", "claim", "syn", "tls", "raw", "head", "hpack", "dns"],
        default="open",
    )
    args = ap.parse_args()
    if not 0 < args.connections <= 1 << 20:
        ap.error("--connections must be 1..1048576")

    announced = {
        "open": args.body * 4,
        "pending": args.body,
        "claim": 1_000_000,
        "syn": 0,
        "tls": 0,
        "raw": 0,
        "head": 0,
        "hpack": 0,
        "dns": 0,
    }[args.shape]
    clock = [1_700_000_000, 0]

    with open(args.out, "wb") as f:
        # pcap, microseconds, Ethernet.
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))

        def packet(conn, seq, payload, flags=0x18, server_port=80, from_server=False):
            # 10.1.0.0/16 and 40 000 ports: a million distinct connections.
            client = bytes([10, 1, (conn >> 8) & 0xFF, conn & 0xFF])
            port = 20000 + conn % 40000
            ack = 0 if flags == 0x02 else 1
            ports = (server_port, port) if from_server else (port, server_port)
            tcp = struct.pack(
                "!HHIIBBHHH", *ports, seq, ack, 5 << 4, flags, 65535, 0, 0
            )
            length = 20 + len(tcp) + len(payload)
            ends = (SERVER, client) if from_server else (client, SERVER)
            ip = struct.pack("!BBHHHBBH4s4s", 0x45, 0, length, 0, 0, 64, 6, 0, *ends)
            eth = b"\x02\x00\x00\x00\x00\x02\x02\x00\x00\x00\x00\x01\x08\x00"
            frame = eth + ip + tcp + payload
            clock[1] += 1
            if clock[1] == 1_000_000:
                clock[0] += 1
                clock[1] = 0
            f.write(struct.pack("<IIII", clock[0], clock[1], len(frame), len(frame)))
            f.write(frame)

        if args.shape == "syn":
            for conn in range(args.connections):
                packet(conn, 999, b"", flags=0x02)
            return
        if args.shape == "tls":
            # Handshake record of 0x4800 bytes; a ClientHello of 0x47fc, TLS 1.2.
            start = b"\x16\x03\x01\x48\x00" + b"\x01\x00\x47\xfc\x03\x03" + bytes(60)
            for conn in range(args.connections):
                packet(conn, 1000, start, server_port=443)
            return
        if args.shape == "hpack":
            hpack_flood(packet, args.connections, args.body)
            return
        if args.shape == "dns":
            dns_flood(packet, args.connections, args.body)
            return
        seqs = []
        for conn in range(args.connections):
            head = (
                b"POST /upload HTTP/1.1\r\nHost: upload.example\r\n"
                b"Content-Type: application/octet-stream\r\n"
                b"Content-Length: %d\r\n\r\n" % announced
            )
            if args.shape == "raw":
                head = b"\x00\x01\x00\x2a"
            if args.shape == "head":
                head = b"GET /feed HTTP/1.1\r\nHost: upload.example\r\nX-Filler: "
            packet(conn, 1000, head)
            seqs.append(1000 + len(head))
        filler = b"x" * (SEGMENT - 1) + b"\n"
        if args.shape == "head":
            # Header field lines, never the blank line that ends a head.
            filler = b"x" * (SEGMENT - 2) + b"\r\n"
        sent = 0
        while sent < args.body:
            take = min(SEGMENT, args.body - sent)
            for conn in range(args.connections):
                packet(conn, seqs[conn], filler[:take])
                seqs[conn] += take
            sent += take


def dns_flood(packet, connections, body):
    """The `dns` shape: see the module doc."""
    name = b"\x07example\x03org\x00"
    query = struct.pack("!HHHHHH", 1, 0x0100, 1, 0, 0, 0) + name + b"\x00\x01\x00\x01"
    # An answer to it with a long TXT record, announced whole, never finished.
    answer = struct.pack("!HHHHHH", 1, 0x8180, 1, 1, 0, 0) + name + b"\x00\x01\x00\x01"
    seqs = []
    for conn in range(connections):
        packet(conn, 1000, struct.pack("!H", len(query)) + query, server_port=53)
        start = struct.pack("!H", 0xFFFF) + answer
        packet(conn, 5000, start, server_port=53, from_server=True)
        seqs.append(5000 + len(start))
    filler = b"x" * SEGMENT
    sent = 0
    while sent < body:
        take = min(SEGMENT, body - sent)
        for conn in range(connections):
            packet(conn, seqs[conn], filler[:take], server_port=53, from_server=True)
            seqs[conn] += take
        sent += take


def h2_frame(kind, flags, stream, payload):
    return struct.pack("!I", len(payload))[1:] + bytes([kind, flags]) + \
        struct.pack("!I", stream) + payload


def hpack_integer(flags, bits, value):
    limit = (1 << bits) - 1
    if value < limit:
        return bytes([flags | value])
    out = [flags | limit]
    value -= limit
    while value >= 128:
        out.append(value % 128 | 128)
        value //= 128
    out.append(value)
    return bytes(out)


def hpack_flood(packet, connections, body):
    """The `hpack` shape: see the module doc."""
    table = 65536
    settings = h2_frame(4, 0, 0, struct.pack("!HI", 1, table))  # HEADER_TABLE_SIZE
    preface = b"PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n" + h2_frame(4, 0, 0, b"")
    # Requests of 15 000 bytes of fields: :method GET (indexed), :path / (indexed),
    # then literal fields indexed into the table, 1 000-byte values.
    requests = []
    stream, filled = 1, 0
    while filled < body:
        block = b"\x82\x84"
        if stream == 1:
            block = hpack_integer(0x20, 5, table) + block  # table size update
        while len(block) < 15_000 and filled < body:
            name = b"x-f%05d" % (filled // 1000)
            value = b"v" * 1000
            block += b"\x40" + hpack_integer(0, 7, len(name)) + name + \
                hpack_integer(0, 7, len(value)) + value
            filled += len(name) + len(value) + 32
        requests.append(h2_frame(1, 0x05, stream, block))  # END_STREAM | END_HEADERS
        stream += 2
    for conn in range(connections):
        seq = 1000
        packet(conn, seq, preface)
        seq += len(preface)
        packet(conn, 5000, settings, from_server=True)
        for frame in requests:
            # In segments of at most 1 400 bytes.
            for i in range(0, len(frame), 1400):
                packet(conn, seq, frame[i:i + 1400])
                seq += len(frame[i:i + 1400])


if __name__ == "__main__":
    main()
