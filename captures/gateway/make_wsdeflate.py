#!/usr/bin/env python3
"""Writes captures/gateway/wsdeflate.pcap: an identifier deep inside a compressed
WebSocket message that inflates past the 8 MiB of a message the analysis keeps.

The case is gateway/consentry.toml: pixel7 (192.168.60.23) refused at 09:31:00.5, so
everything here, at 2026-11-28T09:46:00Z, is after the refusal. A log-streaming SDK
opens a WebSocket to ads.tracker.example (203.0.113.30:80), offering and getting
permessage-deflate (RFC 7692, context takeover both ways), and sends three text
messages, each compressed (RSV1) with one compressor kept across them:

  1. `{"event":"open"}`, nothing personal;
  2. 9 MiB of JSON log lines that compress to about 27 KB, with `"oaid":"<the
     OAID>"` at inflated offset 8 650 000 (past the 8 MiB kept); the value itself
     starts at OAID_AT below;
  3. `{"event":"close","user":"<the e-mail address>"}` repeating the log line's
     field names, so that its compressed bytes refer back into message 2's output:
     it inflates right only if the whole of message 2 went through the window.

What a correct analyser finds: the OAID (plain) in message 2 at that offset of the
inflated message, and the e-mail address in message 3, both sent to
ads.tracker.example after the refusal. The compressed bytes hold neither (a
per-packet or per-frame matcher finds nothing). Frames are masked, as a client's
must be; segments of 1 448 bytes. The server answers the upgrade and sends nothing
else; the phone closes.

Deterministic for one zlib (Python's `zlib`, level 9, raw DEFLATE, a sync flush per
message, the `00 00 ff ff` tail removed as RFC 7692 says); standard library only; IP
and TCP headers from captures/pcapkit.py through make_dhcp.py's helpers, every
checksum valid. Classic pcap, microsecond timestamps, Ethernet.
"""

import os
import struct
import zlib
from datetime import datetime, timezone

import make_dhcp
from make_dhcp import TcpConn
from make_upload import MIB, PHONE_IP, PHONE_MAC, SERVER_IP
from pcapkit import ACK, FIN, PSH, SYN

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = datetime(2026, 11, 28, 9, 46, 0, tzinfo=timezone.utc).timestamp()
SPORT = 50177
OAID = b"a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b"
EMAIL = b"tester@example.org"
SEGMENT = 1448
MASK = bytes([0x5a, 0x13, 0xc4, 0x7e])
LINE = b'{"level":"info","tag":"render","msg":"frame drawn","ms":16}\n'
# Where the OAID's value starts in message 2 once inflated (asserted by
# tests/pcap_gateway.rs).
FIELD_AT = 8_650_000
OAID_AT = FIELD_AT + len(b'{"oaid":"')


class Conn(TcpConn):
    """The phone's one TCP connection to the tracker."""

    def __init__(self, t):
        super().__init__(t, (PHONE_MAC, PHONE_IP, SPORT), (SERVER_IP, 80), (7000, 9000), 700)

    def stream(self, data):
        for i in range(0, len(data), SEGMENT):
            self.send(True, PSH | ACK if i + SEGMENT >= len(data) else ACK,
                      data[i:i + SEGMENT])


def ws_frame(payload):
    """A final text frame with RSV1 (compressed), masked with MASK."""
    head = bytearray([0x80 | 0x40 | 0x1])
    n = len(payload)
    if n < 126:
        head.append(0x80 | n)
    elif n <= 0xFFFF:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    masked = bytes(b ^ MASK[i % 4] for i, b in enumerate(payload))
    return bytes(head) + MASK + masked


def main():
    deflate = zlib.compressobj(9, zlib.DEFLATED, -15, 9)

    def compressed(message):
        out = deflate.compress(message) + deflate.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        return out[:-4]

    logs = (LINE * (9 * MIB // len(LINE) + 1))[:9 * MIB]
    field = b'{"oaid":"' + OAID + b'"}\n'
    two = logs[:FIELD_AT] + field + logs[FIELD_AT + len(field):]
    assert two[OAID_AT:OAID_AT + len(OAID)] == OAID and len(two) == 9 * MIB
    messages = [
        b'{"event":"open"}',
        two,
        b'{"event":"close","level":"info","tag":"render","user":"' + EMAIL + b'"}',
    ]

    conn = Conn(T0)
    conn.send(True, SYN, dt=0.01)
    conn.send(False, SYN | ACK, dt=0.0005)
    conn.send(True, ACK)
    conn.send(True, PSH | ACK,
              b"GET /v1/stream HTTP/1.1\r\nHost: ads.tracker.example\r\n"
              b"Upgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n"
              b"Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n\r\n")
    conn.send(False, PSH | ACK,
              b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\n"
              b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n", 0.02)
    sizes = []
    for i, m in enumerate(messages):
        conn.t = T0 + 1.0 + i
        wire = ws_frame(compressed(m))
        sizes.append(len(wire))
        conn.stream(wire)
        conn.send(False, ACK)
    conn.send(True, FIN | ACK, dt=0.01)
    conn.send(False, FIN | ACK)
    conn.send(True, ACK)

    make_dhcp.write_pcap(os.path.join(HERE, "wsdeflate.pcap"))
    print(f"messages of {sizes} bytes on the wire; the OAID at inflated offset {OAID_AT} "
          f"of message 2")


if __name__ == "__main__":
    main()
