#!/usr/bin/env python3
"""Writes DNS over TLS (RFC 7858) for consentry's TLS tests: one real OpenSSL TLS 1.3
connection (TLS_AES_256_GCM_SHA384, OpenSSL's first choice) run in memory through Python's ssl module, as
make_openssl_tls.py runs its connections (its helpers are imported), from the phone's
private DNS setting to a resolver on port 853. Inside, DNS over TCP framing (each
message behind its 2-byte length): a lookup of app-measurement.com, answered
203.0.113.80, then a query whose first label is the MD5 of the IMEI
(<md5>.b.metrics-sdk.example, an SDK's beacon), answered 192.0.2.53. Then a TLS
1.3 handshake with 192.0.2.53:443 whose ClientHello names the beacon (SNI, in clear;
no request), and a cleartext TCP connection to 203.0.113.80:7000 carrying a few bytes
with nothing personal, which only the DNS answer inside the TLS connection names.

Outputs, next to this script:
  dot.pcap     the three connections (Ethernet/IPv4/TCP), device 192.168.50.23 of
               captures/tls/consentry.toml, from 2026-11-28T10:03:10Z
  dot.keylog   the TLS connections' NSS key log

Not deterministic (fresh randoms, keys and certificate each run): tests read the
committed output. tshark 4.0 with the key log reads both queries and both answers
(`-o tls.keylog_file:dot.keylog -Y dns`); without it, no DNS; with or without, the
beacon's SNI (`-Y tls.handshake.extensions_server_name`).
Needs python3 (stdlib only) and the openssl command. Run: python3 captures/tls/make_dot.py
"""
import hashlib
import os
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import make_openssl_tls as tls  # noqa: E402
from pcapkit import dns_message  # noqa: E402

START = (tls.BASE_SECS + 90) * 1_000_000  # 2026-11-28T10:03:10Z
RESOLVER = bytes([203, 0, 113, 53])
RESOLVER_NAME = "dot.resolver.example"
SDK_SERVER = bytes([203, 0, 113, 80])
BEACON_SERVER = bytes([192, 0, 2, 53])


def framed(message):
    return struct.pack("!H", len(message)) + message


def main():
    keylog = os.path.join(HERE, "dot.keylog")
    if os.path.exists(keylog):
        os.remove(keylog)
    packets = []
    beacon = hashlib.md5(tls.IMEI.encode()).hexdigest() + ".b.metrics-sdk.example"
    steps = [(True, framed(dns_message(0x0a01, "app-measurement.com"))),
             (False, framed(dns_message(0x0a01, "app-measurement.com", "203.0.113.80"))),
             (True, framed(dns_message(0x0a02, beacon))),
             (False, framed(dns_message(0x0a02, beacon, "192.0.2.53")))]
    with tempfile.TemporaryDirectory() as tmp:
        certs, dh = tls.make_certs(tmp)
        client, ts = tls.tls13_conversation(packets, certs, dh, keylog, RESOLVER_NAME,
                                            (tls.DEVICE_IP, 42_100), (RESOLVER, 853), steps,
                                            START)
        # The SDK then connects to the name it made: TLS whose ClientHello names it
        # in clear (handshake only), where DNS over TLS hid the lookup.
        _, ts = tls.tls13_conversation(packets, certs, dh, keylog, beacon,
                                       (tls.DEVICE_IP, 42_102), (BEACON_SERVER, 443), [],
                                       ts + 50_000)
    # The SDK's server, known only by the answer inside the TLS connection.
    tls.plain_hello(packets, (tls.DEVICE_IP, 42_101), (SDK_SERVER, 7000), ts + 100_000)
    tls.write_pcap(os.path.join(HERE, "dot.pcap"), packets)
    print(f"wrote dot.pcap: {len(packets)} packets, {client.version()} {client.cipher()[0]}, "
          f"beacon {beacon}")


if __name__ == "__main__":
    main()
