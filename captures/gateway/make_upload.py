#!/usr/bin/env python3
"""Writes captures/gateway/upload.pcap.gz: identifiers deep inside two large uploads.

The case is gateway/consentry.toml: pixel7 (192.168.60.23) refused at 09:31:00.5, so
everything here, at 2026-11-28T09:45:00Z, is after the refusal. A crash-reporting
SDK uploads its logs to ads.tracker.example (203.0.113.30:80) on one keep-alive
connection, each upload larger than the 8 MiB of a body the analysis keeps:

  +0 s  POST /v1/upload, Content-Length 9 MiB: log lines, and at body offset
        8 731 430 (past the cap) `advertising_id=<the advertising id>`, the value
        cut across two TCP segments; answered 200.
  +1 s  POST /v1/upload?part=2, chunked in 1 MiB chunks (9 of them): log lines, and
        the MD5 of the IMEI in hex across the boundary between the eighth and ninth
        chunk, at de-chunked offset 8 388 592, so it straddles the 8 MiB cap too
        (16 bytes before it, 16 after); answered 200.

Nothing personal is in the first 8 MiB of either body. What a correct analyser
finds: the advertising id (plain) in the first upload and the IMEI (md5) in the
second, both shared with ads.tracker.example after the refusal, located at those
offsets of their bodies. A per-packet matcher finds neither: the first is cut by a
segment boundary, the second by the chunk framing.

The segments are 65 160 bytes (45 of 1 448), as a capture taken on a host with
generic receive offload shows them; the request heads go in segments of their own.
Deterministic, standard library only; IP and TCP headers from captures/pcapkit.py with
valid checksums (through make_dhcp.py's helpers). Classic pcap, microsecond
timestamps, Ethernet, gzip-compressed (consentry and Wireshark read it as it is).
"""

import hashlib
import os
from datetime import datetime, timezone

import make_dhcp
from make_dhcp import TcpConn
from pcapkit import ACK, FIN, PSH, SYN

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = datetime(2026, 11, 28, 9, 45, 0, tzinfo=timezone.utc).timestamp()
PHONE_MAC, PHONE_IP = "02:00:5e:10:00:23", "192.168.60.23"
SERVER_IP, SPORT = "203.0.113.30", 50123
IMEI = b"490154203237518"
AD_ID = b"38400000-8cf0-11bd-b23e-10b96e40000d"
MIB = 1 << 20
SEGMENT = 65160
# Where the planted values start in their bodies (printed by the script, asserted by
# tests/pcap_gateway.rs).
AD_ID_AT = 134 * SEGMENT - 10
IMEI_MD5_AT = 8 * MIB - 16


def log_lines(n):
    """`n` bytes of an app's log, nothing personal in it."""
    line = b"I/CrashReporter: heap region mapped, no fault\n"
    return (line * (n // len(line) + 1))[:n]


def plant(body, at, value):
    return body[:at] + value + body[at + len(value):]


class Conn(TcpConn):
    """The phone's one TCP connection to the tracker (from port `sport`), opened with
    a handshake; `make_gzupload.py` uses it too."""

    def __init__(self, t, sport=SPORT):
        super().__init__(t, (PHONE_MAC, PHONE_IP, sport), (SERVER_IP, 80))
        self.send(True, SYN, dt=0.01)
        self.send(False, SYN | ACK, dt=0.0005)
        self.send(True, ACK)

    def upload(self, head, wire_body):
        self.send(True, PSH | ACK, head)
        for i in range(0, len(wire_body), SEGMENT):
            self.send(True, ACK if i + SEGMENT < len(wire_body) else PSH | ACK,
                      wire_body[i:i + SEGMENT])
        self.send(False, PSH | ACK, b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok", 0.02)

    def close(self):
        self.send(True, FIN | ACK, dt=0.01)
        self.send(False, FIN | ACK)
        self.send(True, ACK)


def main():
    conn = Conn(T0)

    first = plant(log_lines(9 * MIB), AD_ID_AT - len(b"advertising_id="),
                  b"advertising_id=" + AD_ID)
    assert AD_ID_AT % SEGMENT != 0 and AD_ID_AT // SEGMENT != (AD_ID_AT + 35) // SEGMENT
    conn.upload(b"POST /v1/upload HTTP/1.1\r\nHost: ads.tracker.example\r\n"
                b"Content-Type: text/plain\r\nContent-Length: " + str(len(first)).encode()
                + b"\r\n\r\n", first)

    conn.t = T0 + 1.0
    md5 = hashlib.md5(IMEI).hexdigest().encode()
    second = plant(log_lines(9 * MIB), IMEI_MD5_AT - len(b"imei="), b"imei=" + md5)
    chunked = b"".join(b"%x\r\n" % MIB + second[i:i + MIB] + b"\r\n"
                       for i in range(0, len(second), MIB)) + b"0\r\n\r\n"
    conn.upload(b"POST /v1/upload?part=2 HTTP/1.1\r\nHost: ads.tracker.example\r\n"
                b"Content-Type: text/plain\r\nTransfer-Encoding: chunked\r\n\r\n", chunked)

    conn.close()

    path = os.path.join(HERE, "upload.pcap.gz")
    make_dhcp.write_pcap(path, gzipped=True)
    print(f"advertising id at body offset {AD_ID_AT}, IMEI MD5 at {IMEI_MD5_AT}")


if __name__ == "__main__":
    main()
