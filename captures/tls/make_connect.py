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

The same device through a SOCKS5 proxy (10.8.0.1:1080), in a second capture:

  1. user name and password (RFC 1929), then `CONNECT app-measurement.com:443` by
     name, answered "succeeded", and in the tunnel a TLS 1.2 connection as above
     (SNI app-measurement.com) with the same two requests;
  2. no authentication, `CONNECT graph.facebook.com:443` refused ("connection not
     allowed by ruleset");
  3. no authentication, `CONNECT api.jpush.cn:7000` and the push login above.

Outputs, next to this script:
  connect.pcap     the HTTP proxy's connections (Ethernet/IPv4/TCP), from
                   2026-11-28T10:03:20Z
  connect.keylog   its TLS connection's NSS key log
  socks5.pcap      the SOCKS5 proxy's connections, from 2026-11-28T10:03:30Z
  socks5.keylog    its TLS connection's NSS key log

Not deterministic (fresh randoms, keys and certificate each run): tests read the
committed output. tshark 4.0 with the key log reads both CONNECTs and the two
requests inside the tunnel with their responses (`-o tls.keylog_file:connect.keylog
-Y http`); in socks5.pcap, the SOCKS5 handshakes and (its SOCKS dissector handing
the tunnel on) the two requests (`-d tcp.port==1080,socks`). Needs python3 (stdlib only) and the openssl command.
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
SOCKS_START = START + 10_000_000  # 2026-11-28T10:03:30Z
PROXY = (bytes([10, 8, 0, 1]), 3128)
SOCKS_PROXY = (bytes([10, 8, 0, 1]), 1080)
TRACKER = "ulogs.umeng.com"
PUSH = "api.jpush.cn"


def connect(target, credentials):
    auth = b"Proxy-Authorization: Basic cGl4ZWw3OnMzY3JldA==\r\n" if credentials else b""
    return (f"CONNECT {target} HTTP/1.1\r\nHost: {target}\r\n".encode() + auth
            + b"User-Agent: ExampleShop/4.2 (Android 14)\r\n\r\n")


REFUSED = (b"HTTP/1.1 407 Proxy Authentication Required\r\n"
           b"Proxy-Authenticate: Basic realm=\"corp\"\r\nContent-Length: 0\r\n\r\n")
ESTABLISHED = b"HTTP/1.1 200 Connection established\r\n\r\n"


def tls_session(conv, ts, host, keylog, tmp):
    """A real TLS 1.2 connection to `host` with two requests, on `conv` from `ts`."""
    certs, dh = tls.make_certs(tmp)
    client_ctx, server_ctx = tls.contexts(certs["rsa"], dh, "ECDHE-RSA-AES128-GCM-SHA256",
                                          tls.V12, True, True, keylog)
    c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
    client = client_ctx.wrap_bio(c_in, c_out, server_side=False, server_hostname=host)
    server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
    for from_client, data in tls.handshake(client, server, c_out, s_in, s_out, c_in):
        conv.data(from_client, data, ts)
        ts += 1_000
    for request in tls.requests(host, 1):
        for from_client, data in [(True, request), (False, tls.RESPONSE)]:
            ts += 100_000
            (client if from_client else server).write(data)
            sent = tls.pump(c_out, s_in) if from_client else tls.pump(s_out, c_in)
            conv.data(from_client, sent, ts)
            assert tls.read_all(server if from_client else client) == data
    return client, ts


def tls_tunnel(packets, keylog, tmp):
    conv = tls.Tcp((tls.DEVICE_IP, 42_100), PROXY, packets)
    conv.open(START)
    ts = START + 1_000
    target = f"{TRACKER}:443"
    for from_client, data in [(True, connect(target, False)), (False, REFUSED),
                              (True, connect(target, True)), (False, ESTABLISHED)]:
        conv.data(from_client, data, ts)
        ts += 20_000
    client, ts = tls_session(conv, ts, TRACKER, keylog, tmp)
    conv.close(ts + 1_000)
    return client


def push_login():
    login = json.dumps({"cmd": "login", "oaid": tls.OAID}).encode()
    return struct.pack(">HH", 0x0101, len(login)) + login


PUSH_ANSWER = b"\x01\x02\x00\x02ok"


def push_tunnel(packets):
    conv = tls.Tcp((tls.DEVICE_IP, 42_101), PROXY, packets)
    ts = START + 2_000_000
    conv.open(ts)
    for from_client, data in [(True, connect(f"{PUSH}:7000", True)), (False, ESTABLISHED),
                              (True, push_login()), (False, PUSH_ANSWER)]:
        ts += 20_000
        conv.data(from_client, data, ts)
    conv.close(ts + 1_000)


# --- SOCKS5 (RFC 1928, RFC 1929) ---------------------------------------------------

def socks_connect(host, port):
    return bytes([5, 1, 0, 3, len(host)]) + host.encode() + struct.pack(">H", port)


SOCKS_SUCCEEDED = bytes([5, 0, 0, 1, 0, 0, 0, 0, 0, 0])
SOCKS_NOT_ALLOWED = bytes([5, 2, 0, 1, 0, 0, 0, 0, 0, 0])


def socks_handshake(credentials, host, port, answer):
    """The (from_client, bytes) of a SOCKS5 handshake, each message in turn."""
    if credentials:
        user, password = b"pixel7", b"s3cret"
        steps = [(True, b"\x05\x02\x00\x02"), (False, b"\x05\x02"),
                 (True, bytes([1, len(user)]) + user + bytes([len(password)]) + password),
                 (False, b"\x01\x00")]
    else:
        steps = [(True, b"\x05\x01\x00"), (False, b"\x05\x00")]
    return steps + [(True, socks_connect(host, port)), (False, answer)]


def socks_capture(packets, keylog, tmp):
    ts = SOCKS_START
    conv = tls.Tcp((tls.DEVICE_IP, 42_200), SOCKS_PROXY, packets)
    conv.open(ts)
    for from_client, data in socks_handshake(True, "app-measurement.com", 443, SOCKS_SUCCEEDED):
        ts += 20_000
        conv.data(from_client, data, ts)
    client, ts = tls_session(conv, ts + 20_000, "app-measurement.com", keylog, tmp)
    conv.close(ts + 1_000)

    ts = SOCKS_START + 2_000_000
    conv = tls.Tcp((tls.DEVICE_IP, 42_201), SOCKS_PROXY, packets)
    conv.open(ts)
    for from_client, data in socks_handshake(False, "graph.facebook.com", 443,
                                             SOCKS_NOT_ALLOWED):
        ts += 20_000
        conv.data(from_client, data, ts)
    conv.close(ts + 1_000)

    ts = SOCKS_START + 3_000_000
    conv = tls.Tcp((tls.DEVICE_IP, 42_202), SOCKS_PROXY, packets)
    conv.open(ts)
    steps = socks_handshake(False, PUSH, 7000, SOCKS_SUCCEEDED)
    for from_client, data in steps + [(True, push_login()), (False, PUSH_ANSWER)]:
        ts += 20_000
        conv.data(from_client, data, ts)
    conv.close(ts + 1_000)
    return client


def main():
    for name, write in [("connect", lambda p, k, t: (tls_tunnel(p, k, t), push_tunnel(p))[0]),
                        ("socks5", socks_capture)]:
        keylog = os.path.join(HERE, f"{name}.keylog")
        if os.path.exists(keylog):
            os.remove(keylog)
        packets = []
        with tempfile.TemporaryDirectory() as tmp:
            client = write(packets, keylog, tmp)
        tls.write_pcap(os.path.join(HERE, f"{name}.pcap"), packets)
        print(f"wrote {name}.pcap: {len(packets)} packets, {client.version()} "
              f"{client.cipher()[0]}")


if __name__ == "__main__":
    main()
