#!/usr/bin/env python3
"""Writes captures/gateway/wsupgrade.pcap: a WebSocket upgrade whose `Connection`
options come in two header lines, and a message sent before the server's `101`.

The case is gateway/consentry.toml (pixel7 at 192.168.60.23, no decision before
09:31, so everything here, at 2026-11-28T09:27:00Z, is before consent). RFC 9110
section 5.3 makes several lines of a list-based field one list: `Connection:
keep-alive` and then `Connection: Upgrade` ask for an upgrade as `Connection:
keep-alive, Upgrade` does. A real-time SDK opens a WebSocket to
rt.ads-sdk.example (203.0.113.43:80) and, without waiting for the answer, sends its
first message in the segment of the upgrade request:

  +0 s     GET /v2/socket with `Connection: keep-alive`, `Upgrade: websocket`,
           `Connection: Upgrade`, then a masked text frame
           `{"event":"hello","android_id":"<Android id>"}`, in one segment;
  +0.03 s  the server's `101 Switching Protocols`;
  +0.5 s   a second text frame `{"event":"ping"}`, nothing personal.

What a correct analyser finds: the Android id, in plain, in the first message
(share-before-consent), as the proxy finds it: the request was an upgrade, so the
bytes after its head are WebSocket frames, not the next HTTP request. One that reads
only the first `Connection` line takes the frame for a malformed request and loses
both messages.

Deterministic, standard library only; IP and TCP headers from captures/pcapkit.py
with valid checksums (through make_dhcp.py's helpers). Classic pcap, microsecond
timestamps, Ethernet.
"""

import os
from datetime import datetime, timezone

import make_dhcp
from make_dhcp import TcpConn
from pcapkit import ACK, FIN, PSH, SYN

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = datetime(2026, 11, 28, 9, 27, 0, tzinfo=timezone.utc).timestamp()
PHONE = ("02:00:5e:10:00:23", "192.168.60.23", 51433)
SERVER = ("203.0.113.43", 80)
ANDROID_ID = b"9774d56d682e549c"
MASK = bytes([0x3c, 0x91, 0x0e, 0xa5])


def text_frame(payload):
    """A final, masked, uncompressed text frame (payloads under 126 bytes)."""
    assert len(payload) < 126
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return bytes([0x81, 0x80 | len(payload)]) + MASK + masked


def main():
    head = (b"GET /v2/socket HTTP/1.1\r\nHost: rt.ads-sdk.example\r\n"
            b"Connection: keep-alive\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            b"Sec-WebSocket-Key: x3JJHMbDL1EzLkh9GBhXDw==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    hello = text_frame(b'{"event":"hello","android_id":"' + ANDROID_ID + b'"}')
    switched = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                b"Connection: Upgrade\r\nSec-WebSocket-Accept: HSmrc0sMlYUkAGmm5OPpG2HaGWk=\r\n\r\n")
    ping = text_frame(b'{"event":"ping"}')

    c = TcpConn(T0, PHONE, SERVER, (4000, 9000), 950)
    c.send(True, SYN, dt=0.010)
    c.send(False, SYN | ACK, dt=0.001)
    c.send(True, ACK, dt=0.001)
    c.send(True, PSH | ACK, head + hello, dt=0.030)
    c.send(False, PSH | ACK, switched, dt=0.001)
    c.send(True, ACK, dt=0.5)
    c.send(True, PSH | ACK, ping, dt=0.001)
    c.send(False, ACK, dt=0.009)
    c.send(True, FIN | ACK, dt=0.001)
    c.send(False, FIN | ACK, dt=0.001)
    c.send(True, ACK)
    make_dhcp.write_pcap(os.path.join(HERE, "wsupgrade.pcap"))


if __name__ == "__main__":
    main()
