#!/usr/bin/env python3
"""Writes TLS 1.3 connections with Encrypted Client Hello (ECH, RFC 9849) for
consentry's TLS tests: what a gateway sees of an app whose TLS stack hides the
server name behind a CDN's public name.

Each connection is a real handshake and real requests between Go's crypto/tls
client and server (ech_peers.go, run on 127.0.0.1), written as the device of
tls/consentry.toml talking to 198.51.100.80:443. Before each, the device asks its
resolver (192.168.50.1) for the inner name's HTTPS record (RFC 9460: alpn, an
ipv4hint of the server, and the `ech` parameter holding the connection's ECHConfig)
and its A record; after those of the first, also for `decoy.example`, whose HTTPS
record gives the same address and config id under another public name (so the
address's latest name in the DNS is the decoy's when the first connection starts):

  1. ClientHelloOuter names `ech.cdn.example`; the encrypted ClientHelloInner names
     `app-measurement.com` (HPKE DHKEM(X25519), HKDF-SHA256, AES-128-GCM, config id
     0x2a); make_openssl_tls.py's two HTTP/1.1 requests (a POST with the
     identifiers, a GET with the e-mail and phone), each answered `200`;
  2. the same public name over `ulogs.umeng.com` (ChaCha20-Poly1305, config id
     0x2b); the server takes only P-256, so the client's first key shares get a
     HelloRetryRequest and a second ClientHelloOuter (its ECH payload sealed with
     the next HPKE nonce); the first of the two requests.

Outputs, next to this script:
  ech.pcap     Ethernet/IPv4/TCP, from 2026-11-28T10:03:40Z
  ech.keylog   Go's NSS key log (TLS 1.3 secrets under each inner ClientHello's
               random) and the ECH_SECRET / ECH_CONFIG lines of the key log draft
               (draft-ietf-tls-keylogfile, section 2.3) under each outer random

Not deterministic (fresh keys and randoms each run): tests read the committed
output. Needs python3 and Go >= 1.24 (`go` on PATH; Debian trixie's golang-1.24).
Run: python3 captures/tls/make_ech.py
"""
import json
import os
import struct
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.dirname(HERE))
import make_openssl_tls as tls  # noqa: E402
import pcapkit  # noqa: E402

START = (tls.BASE_SECS + 120) * 1_000_000  # 2026-11-28T10:03:40Z
SERVER = bytes([198, 51, 100, 80])
RESOLVER = "192.168.50.1"
PUBLIC_NAME = "ech.cdn.example"
CONNS = [
    # (client port, inner name, config id, HPKE AEAD id, HelloRetryRequest, requests)
    (43_000, "app-measurement.com", 0x2A, 0x0001, False, 2),
    (43_001, "ulogs.umeng.com", 0x2B, 0x0003, True, 1),
]


def peers(inner, config_id, aead, retry, n_requests):
    spec = {
        "inner": inner, "public": PUBLIC_NAME, "config_id": config_id, "aead": aead,
        "retry_p256": retry,
        "requests": [r.decode() for r in tls.requests(inner, 1)[:n_requests]],
        "response": tls.RESPONSE.decode(),
    }
    out = subprocess.run(["go", "run", os.path.join(HERE, "ech_peers.go")],
                         input=json.dumps(spec).encode(), capture_output=True, check=True)
    return json.loads(out.stdout)


def udp_frame(from_device, src, dst, sport, dport, payload):
    udp = pcapkit.udp_datagram(src, dst, sport, dport, payload)
    ip = pcapkit.ipv4_header(src, dst, 17, len(udp), sport & 0xFFFF)
    smac, dmac = ((tls.DEVICE_MAC, tls.GATEWAY_MAC) if from_device
                  else (tls.GATEWAY_MAC, tls.DEVICE_MAC))
    return dmac + smac + b"\x08\x00" + ip + udp


def https_record(txid, name, config=None):
    """The query for `name`'s HTTPS record (type 65), or with `config` (an ECHConfig)
    the answer: priority 1, target ".", alpn h2 and http/1.1, ipv4hint SERVER, ech the
    ECHConfigList of that one config (RFC 9460 sections 2.2 and 7; `ech` is key 5)."""
    question = pcapkit.qname(name) + struct.pack("!HH", 65, 1)
    if config is None:
        return struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + question
    params = [(1, b"\x02h2\x08http/1.1"), (4, SERVER),
              (5, struct.pack("!H", len(config)) + config)]
    rdata = struct.pack("!H", 1) + b"\x00" + b"".join(
        struct.pack("!HH", k, len(v)) + v for k, v in params)
    answer = struct.pack("!HHHIH", 0xC00C, 65, 1, 300, len(rdata)) + rdata
    return struct.pack("!HHHHHH", txid, 0x8180, 1, 1, 0, 0) + question + answer


def resolve(packets, ts, port, name, config):
    """The device's HTTPS and A queries for `name` and their answers, from `ts`."""
    device = ".".join(str(b) for b in tls.DEVICE_IP)
    server = ".".join(str(b) for b in SERVER)
    for i, (query, answer) in enumerate([
            (https_record(port, name), https_record(port, name, config)),
            (pcapkit.dns_message(port + 1, name), pcapkit.dns_message(port + 1, name, server)),
    ]):
        sport = port + i
        packets.append((ts, udp_frame(True, device, RESOLVER, sport, 53, query)))
        packets.append((ts + 5_000, udp_frame(False, RESOLVER, device, 53, sport, answer)))
        ts += 10_000
    return ts


def decoy_config(config):
    """`config` with the public name `other.cdn.example`: same config id and key."""
    old = PUBLIC_NAME.encode()
    new = b"other.cdn.example"
    at = config.index(bytes([len(old)]) + old)
    body = config[4:at] + bytes([len(new)]) + new + config[at + 1 + len(old):]
    return config[:2] + struct.pack("!H", len(body)) + body


def main():
    packets, keylog = [], []
    ts = START
    for k, (port, inner, config_id, aead, retry, n) in enumerate(CONNS):
        run = peers(inner, config_id, aead, retry, n)
        config = bytes.fromhex(run["ech_lines"].split("ECH_CONFIG ")[1].split()[1])
        ts = resolve(packets, ts, 52_010 + 10 * k, inner, config)
        if k == 0:
            # Answered last, so the address's latest name is the decoy's.
            ts = resolve(packets, ts, 52_000, "decoy.example", decoy_config(config))
        conv = tls.Tcp((tls.DEVICE_IP, port), (SERVER, 443), packets)
        conv.open(ts)
        ts += 1_000
        for f in run["flights"]:
            conv.data(f["from_client"], bytes.fromhex(f["hex"]), ts)
            ts += 20_000
        conv.close(ts)
        ts += 1_000_000
        keylog.append(run["keylog"] + run["ech_lines"])
        print(f"{inner}: {len(run['flights'])} flights")
    with open(os.path.join(HERE, "ech.keylog"), "w") as f:
        f.write("".join(keylog))
    tls.write_pcap(os.path.join(HERE, "ech.pcap"), packets)
    print(f"wrote ech.pcap: {len(packets)} packets")


if __name__ == "__main__":
    main()
