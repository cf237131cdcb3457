#!/usr/bin/env python3
"""Writes captures/gateway/trailers.pcap: identifiers in HTTP/1.1 trailer fields.

The case is gateway/consentry.toml (pixel7 at 192.168.60.23, no decision before
09:31, so everything here, at 2026-11-28T09:26:00Z, is before consent). A chunked
message may end with trailer fields (RFC 9112 section 7.1.2), header fields that
come after the body: an upload SDK that streams its batch sends there what it knows
only at the end (a checksum) and, here, the device's Android id.

One keep-alive connection from pixel7 to upload.ads-sdk.example (203.0.113.41:80):
  +0 s    POST /v1/upload, `Transfer-Encoding: chunked`, `Trailer: X-Device-Id,
          X-Checksum`: a JSON batch with nothing personal in two chunks, then the
          last chunk and the trailer section with `X-Device-Id: <Android id>` and
          `X-Checksum`; the request spans three segments, the second ending inside
          the Android id. Answered `200`, chunked, with the trailer field
          `X-Upload-Status: stored`.
  +0.5 s  GET /v1/ping on the same connection: nothing personal, answered `204`.

What a correct analyser finds: the Android id, in plain, in the trailer field
X-Device-Id of the first request (share-before-consent); nothing in the second, which
shows the parser found the end of the trailer section.

Deterministic, standard library only; IP and TCP headers from captures/pcapkit.py
with valid checksums (through make_dhcp.py's helpers). Classic pcap, microsecond
timestamps, Ethernet.
"""

import hashlib
import os
from datetime import datetime, timezone

import make_dhcp
from make_dhcp import TcpConn
from pcapkit import ACK, FIN, PSH, SYN

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = datetime(2026, 11, 28, 9, 26, 0, tzinfo=timezone.utc).timestamp()
PHONE = ("02:00:5e:10:00:23", "192.168.60.23", 51301)
SERVER = ("203.0.113.41", 80)
ANDROID_ID = b"9774d56d682e549c"


def chunk(data):
    return b"%x\r\n" % len(data) + data + b"\r\n"


def main():
    batch = [b'{"events":[{"name":"app_open","ts":1795857960},',
             b'{"name":"screen_view","screen":"home","ts":1795857961}]}']
    checksum = hashlib.sha256(b"".join(batch)).hexdigest().encode()
    head = (b"POST /v1/upload HTTP/1.1\r\nHost: upload.ads-sdk.example\r\n"
            b"Content-Type: application/json\r\nTransfer-Encoding: chunked\r\n"
            b"Trailer: X-Device-Id, X-Checksum\r\n\r\n")
    trailer = (b"0\r\nX-Device-Id: " + ANDROID_ID + b"\r\nX-Checksum: sha256=" + checksum
               + b"\r\n\r\n")
    request = head + chunk(batch[0]) + chunk(batch[1]) + trailer
    # The second segment ends inside the Android id.
    cut2 = request.index(ANDROID_ID) + 6
    segments = [request[:len(head)], request[len(head):cut2], request[cut2:]]
    response = (b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n"
                b"Trailer: X-Upload-Status\r\n\r\n" + chunk(b'{"ok":true}')
                + b"0\r\nX-Upload-Status: stored\r\n\r\n")
    ping = b"GET /v1/ping HTTP/1.1\r\nHost: upload.ads-sdk.example\r\n\r\n"
    pong = b"HTTP/1.1 204 No Content\r\n\r\n"

    c = TcpConn(T0, PHONE, SERVER, (3000, 8000), 900)
    c.send(True, SYN, dt=0.010)
    c.send(False, SYN | ACK, dt=0.001)
    c.send(True, ACK, dt=0.001)
    for i, seg in enumerate(segments):
        c.send(True, PSH | ACK if i == len(segments) - 1 else ACK, seg, dt=0.002)
    c.send(False, PSH | ACK, response, dt=0.001)
    c.send(True, ACK, dt=0.5)
    c.send(True, PSH | ACK, ping, dt=0.010)
    c.send(False, PSH | ACK, pong, dt=0.001)
    c.send(True, FIN | ACK, dt=0.009)
    c.send(False, FIN | ACK, dt=0.001)
    c.send(True, ACK)
    make_dhcp.write_pcap(os.path.join(HERE, "trailers.pcap"))


if __name__ == "__main__":
    main()
