#!/usr/bin/env python3
"""Writes DNS over HTTPS (RFC 8484) for consentry's TLS tests: one real OpenSSL TLS 1.3
connection run in memory through Python's ssl module, as make_openssl_tls.py runs its
connections (its helpers are imported), from an app's own resolver (as SDKs that
resolve names themselves do) to dns.resolver.example:443, carrying three HTTP/1.1
DoH exchanges on one keep-alive connection: a POST of a query for
collector.metrics-sdk.example, answered 203.0.113.81, a GET with the query for
app-measurement.com in its `dns` parameter (base64url), answered 203.0.113.80, and a
POST of a query for a name whose first label is the MD5 of the device's IMEI
(<md5>.b.metrics-sdk.example, as SDKs that report through DNS names send it),
answered 203.0.113.82; each answer `application/dns-message`. Then a cleartext TCP
connection to each of the first two addresses (port 7000, a few bytes with nothing
personal), which only the answers inside TLS name.

Outputs, next to this script:
  doh.pcap     the three connections (Ethernet/IPv4/TCP), device 192.168.50.23 of
               captures/tls/consentry.toml, from 2026-11-28T10:03:40Z
  doh.keylog   the TLS connection's NSS key log

Not deterministic (fresh randoms, keys and certificate each run): tests read the
committed output. tshark 4.0 with the key log reads both DoH exchanges and their DNS
answers (`-o tls.keylog_file:doh.keylog -Y dns`); without it, no DNS.
Needs python3 (stdlib only) and the openssl command. Run: python3 captures/tls/make_doh.py
"""
import base64
import hashlib
import os
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import make_openssl_tls as tls  # noqa: E402
from pcapkit import dns_message  # noqa: E402

START = (tls.BASE_SECS + 120) * 1_000_000  # 2026-11-28T10:03:40Z
RESOLVER = bytes([203, 0, 113, 54])
RESOLVER_NAME = "dns.resolver.example"
# (name, answer) of each lookup.
IMEI = "490154203237518"  # captures/tls/consentry.toml's
LOOKUPS = [("collector.metrics-sdk.example", "203.0.113.81"),
           ("app-measurement.com", "203.0.113.80"),
           (hashlib.md5(IMEI.encode()).hexdigest() + ".b.metrics-sdk.example", "203.0.113.82")]


def doh_post(name):
    query = dns_message(0, name)
    return (b"POST /dns-query HTTP/1.1\r\nHost: dns.resolver.example\r\n"
            b"Accept: application/dns-message\r\nContent-Type: application/dns-message\r\n"
            b"Content-Length: %d\r\n\r\n" % len(query)) + query


def doh_response(answer):
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/dns-message\r\n"
            b"Cache-Control: max-age=300\r\nContent-Length: %d\r\n\r\n" % len(answer)) + answer


def main():
    keylog = os.path.join(HERE, "doh.keylog")
    if os.path.exists(keylog):
        os.remove(keylog)
    packets = []
    (post_name, post_ip), (get_name, get_ip), (id_name, id_ip) = LOOKUPS
    get_query = dns_message(0, get_name)  # RFC 8484 §4.1: id 0, for caching
    dns_param = base64.urlsafe_b64encode(get_query).rstrip(b"=")
    steps = [
        (True, doh_post(post_name)),
        (False, doh_response(dns_message(0, post_name, post_ip))),
        (True, b"GET /dns-query?dns=" + dns_param + b" HTTP/1.1\r\nHost: dns.resolver.example\r\n"
               b"Accept: application/dns-message\r\n\r\n"),
        (False, doh_response(dns_message(0, get_name, get_ip))),
        (True, doh_post(id_name)),
        (False, doh_response(dns_message(0, id_name, id_ip))),
    ]
    with tempfile.TemporaryDirectory() as tmp:
        certs, dh = tls.make_certs(tmp)
        client, ts = tls.tls13_conversation(packets, certs, dh, keylog, RESOLVER_NAME,
                                            (tls.DEVICE_IP, 42_200), (RESOLVER, 443), steps,
                                            START)
    # The SDK's servers, known only by the answers inside the TLS connection.
    for port, (_, ip) in zip((42_201, 42_202), LOOKUPS[:2]):
        ts += 100_000
        tls.plain_hello(packets, (tls.DEVICE_IP, port),
                        (bytes(int(x) for x in ip.split(".")), 7000), ts)
    tls.write_pcap(os.path.join(HERE, "doh.pcap"), packets)
    print(f"wrote doh.pcap: {len(packets)} packets, {client.version()} {client.cipher()[0]}")


if __name__ == "__main__":
    main()
