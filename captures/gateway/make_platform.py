#!/usr/bin/env python3
"""Writes captures/gateway/platform.pcap: the phone's own system traffic beside the app's.

The case is gateway/consentry.toml (pixel7 at 192.168.60.23 refuses every purpose at
2026-11-28T09:31:00.5Z). From 09:30:00Z the phone's system checks connectivity
(GET connectivitycheck.gstatic.com/generate_204, 204), Google Play services checks
the device in (POST android.clients.google.com/checkin, a protobuf body with the IMEI
as a string field) and opens its push channel (a TLS ClientHello for mtalk.google.com
to port 5228, nothing readable after it); the app sends its advertising id to
ads.tracker.example. After the refusal (09:31:30Z) the system checks the device in
again, with the IMEI, and the app sends the Android id to its own API.

What a correct analyser finds: the app's two transmissions (before consent to the
tracker, after the refusal to the operator); the system's four exchanges, two of
them with the IMEI, are the platform vendor's collection, not the app's.

Deterministic, standard library only; IP and TCP headers from captures/pcapkit.py
with valid checksums (through make_dhcp.py's helpers). Classic pcap, microsecond
timestamps, Ethernet. The check-in is plain HTTP here (the real one is HTTPS) so
that its body is readable without a key log.
"""

import os
import struct
from datetime import datetime, timezone

import make_dhcp
from make_dhcp import http

T0 = datetime(2026, 11, 28, 9, 30, 0, tzinfo=timezone.utc).timestamp()
PHONE_MAC, PHONE_IP = "02:00:5e:10:00:23", "192.168.60.23"
IMEI = b"490154203237518"
AD_ID = b"38400000-8cf0-11bd-b23e-10b96e40000d"
ANDROID_ID = b"9774d56d682e549c"


def protobuf_string(field, value):
    """A length-delimited protobuf field (wire type 2), lengths below 128."""
    return bytes([field << 3 | 2, len(value)]) + value


def checkin_body(serial):
    """A check-in message: the IMEI (field 2), a build fingerprint (field 3) and a
    request serial (field 4, a varint)."""
    return (protobuf_string(2, IMEI)
            + protobuf_string(3, b"google/panther/panther:14/UQ1A/1:user/release-keys")
            + bytes([4 << 3, serial]))


def post(host, path, content_type, body):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: " + host + b"\r\nContent-Type: "
            + content_type + b"\r\nContent-Length: " + str(len(body)).encode()
            + b"\r\n\r\n" + body)


def client_hello(sni):
    """A TLS 1.3 ClientHello record: fixed random, two suites, the server name and
    supported_versions extensions only."""
    name = sni.encode()
    server_name = struct.pack("!HBH", len(name) + 3, 0, len(name)) + name
    extensions = (struct.pack("!HH", 0x0000, len(server_name)) + server_name
                  + struct.pack("!HHBH", 0x002B, 3, 2, 0x0304))
    body = (struct.pack("!H", 0x0303) + bytes(range(32)) + b"\x00"
            + struct.pack("!HHH", 4, 0x1301, 0x1302) + b"\x01\x00"
            + struct.pack("!H", len(extensions)) + extensions)
    handshake = b"\x01" + len(body).to_bytes(3, "big") + body
    return b"\x16\x03\x01" + struct.pack("!H", len(handshake)) + handshake


def main():
    no_content = b"HTTP/1.1 204 No Content\r\n\r\n"
    ok = b"HTTP/1.1 200 OK\r\nContent-Type: application/x-protobuffer\r\nContent-Length: 0\r\n\r\n"
    protobuf = b"application/x-protobuffer"
    # The system: connectivity check, device check-in, the push channel.
    http(T0 + 0.0, PHONE_MAC, PHONE_IP, 51001, "198.51.100.204",
         b"GET /generate_204 HTTP/1.1\r\nHost: connectivitycheck.gstatic.com\r\n"
         b"User-Agent: Dalvik/2.1.0 (Linux; U; Android 14; Pixel 7)\r\n\r\n",
         no_content, 100)
    http(T0 + 1.0, PHONE_MAC, PHONE_IP, 51002, "198.51.100.101",
         post(b"android.clients.google.com", b"/checkin", protobuf, checkin_body(1)), ok, 200)
    http(T0 + 2.0, PHONE_MAC, PHONE_IP, 51003, "198.51.100.188",
         client_hello("mtalk.google.com"), b"", 300, port=5228)
    # The app, before any decision.
    http(T0 + 3.0, PHONE_MAC, PHONE_IP, 51004, "203.0.113.30",
         b"GET /v1/ad?adid=" + AD_ID + b" HTTP/1.1\r\nHost: ads.tracker.example\r\n\r\n",
         no_content, 400)
    # After the refusal at 09:31:00.5: the system again, and the app.
    http(T0 + 90.0, PHONE_MAC, PHONE_IP, 51005, "198.51.100.101",
         post(b"android.clients.google.com", b"/checkin", protobuf, checkin_body(2)), ok, 500)
    http(T0 + 91.0, PHONE_MAC, PHONE_IP, 51006, "203.0.113.10",
         post(b"api.example-shop.com", b"/v2/session", b"application/json",
              b'{"android_id":"' + ANDROID_ID + b'"}'),
         b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n", 600)
    make_dhcp.write_pcap(os.path.join(make_dhcp.HERE, "platform.pcap"))


if __name__ == "__main__":
    main()
