#!/usr/bin/env python3
"""Writes tunnels through an explicit HTTP proxy for consentry's TLS tests: what a
gateway's span port sees of a phone set up with a corporate proxy. One TCP connection
from the device of tls/consentry.toml to the proxy 10.8.0.1:3128 carries:

  1. `CONNECT ulogs.umeng.com:443`, refused `407` (no credentials), then the same
     `CONNECT` with `Proxy-Authorization`, answered `200`;
  2. inside the tunnel, one real OpenSSL TLS 1.2 connection (Python's ssl module in
     memory, ECDHE-RSA-AES128-GCM-SHA256, SNI ulogs.umeng.com, as make_openssl_tls.py
     runs its connections, whose helpers are imported) with make_openssl_tls.py's two
     HTTP/1.1 keep-alive requests (a POST with the identifiers, a GET with the e-mail
     and phone), each answered `200`.

A second connection to the proxy tunnels to `api.jpush.cn:7000` and speaks a push
protocol there that no parser reads (a binary header, then JSON with the OAID).

Outputs, next to this script:
  connect.pcap     both connections (Ethernet/IPv4/TCP), from 2026-11-28T10:03:20Z
  connect.keylog   the TLS connection's NSS key log

Not deterministic (fresh randoms, keys and certificate each run): tests read the
committed output. tshark 4.0 with the key log reads both CONNECTs and the two
requests inside the tunnel with their responses (`-o tls.keylog_file:connect.keylog
-Y http`). Needs python3 (stdlib only) and the openssl command.
Run: python3 captures/tls/make_connect.py
"""
import json
import os
import ssl
import struct
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
import make_openssl_tls as tls  # noqa: E402

START = (tls.BASE_SECS + 100) * 1_000_000  # 2026-11-28T10:03:20Z
PROXY = (bytes([10, 8, 0, 1]), 3128)
TRACKER = "ulogs.umeng.com"
PUSH = "api.jpush.cn"


def connect(target, credentials):
    auth = b"Proxy-Authorization: Basic cGl4ZWw3OnMzY3JldA==\r\n" if credentials else b""
    return (f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n".encode() + auth
            + b"User-Agent: ExampleShop/4.2 (Android 14)\r\n\r\n")


REFUSED = (b"HTTP/1.1 407 Proxy Authentication Required\r\n"
           b"Proxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n")
ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"


def tls_tunnel(packets, keylog, tmp):
    certs, dh = tls.make_certs(tmp)
    client_ctx, server_ctx = tls.contexts(certs["rsa"], dh, "ECDHE-RSA-AES128-GCM-SHA256",
                                          tls.V12, True, True, keylog)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_side=False, server_hostname=TRACKER)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    conv = tls.Tcp((tls.DEVICE_IP, 42_100), PROXY, packets)
    conv.open(START)
    ts = START + 1_000
    target = f"{TRACKER}:443"
    for from_client, data in [(True, connect(target, False)), (False, REFUSED),
                              (True, connect(target, True)), (False, ESTABLISHED)]:
        conv.data(from_client, data, ts)
        ts += 20_000
    for from_client, data in tls.handshake(client, server, c_out, s_in, s_out, c_in):
        conv.data(from_client, data, ts)
        ts += 1_000
    for request in tls.requests(TRACKER, 1):
        for from_client, data in [(True, request), (False, tls.RESPONSE)]:
            ts += 100_000
            (client if from_client else server).write(data)
            sent = tls.pump(c_out, s_in) if from_client else tls.pump(s_out, c_in)
            conv.data(from_client, sent, ts)
            assert tls.read_all(server if from_client else client) == data
    conv.close(ts + 1_000)
    return client


def push_tunnel(packets):
    conv = tls.Tcp((tls.DEVICE_IP, 42_101), PROXY, packets)
    ts = START + 2_000_000
    conv.open(ts)
    login = json.dumps({"cmd": "login", "oaid": tls.OAID}).encode()
    message = struct.pack(">HH", 0x0101, len(login)) + login
    for from_client, data in [(True, connect(f"{PUSH}:7000", True)), (False, ESTABLISHED),
                              (True, message), (False, b"\x01\x02\x00\x02ok")]:
        ts += 20_000
        conv.data(from_client, data, ts)
    conv.close(ts + 1_000)


def main():
    keylog = os.path.join(HERE, "connect.keylog")
    if os.path.exists(keylog):
        os.remove(keylog)
    packets = []
    with tempfile.TemporaryDirectory() as tmp:
        client = tls_tunnel(packets, keylog, tmp)
    push_tunnel(packets)
    tls.write_pcap(os.path.join(HERE, "connect.pcap"), packets)
    print(f"wrote connect.pcap: {len(packets)} packets, {client.version()} {client.cipher()[0]}")


if __name__ == "__main__":
    main()
