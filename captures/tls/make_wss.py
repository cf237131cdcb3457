#!/usr/bin/env python3
"""Writes a WebSocket inside TLS for consentry's TLS tests: one real OpenSSL
connection (TLS 1.2, ECDHE-RSA-AES128-GCM-SHA256) run in memory through Python's ssl
module, as make_openssl_tls.py runs its connections (its helpers are imported), that
upgrades to a WebSocket (permessage-deflate offered) and sends two client messages:
a text message with the IMEI, and a compressed binary one with the Android id.

Outputs, next to this script:
  wss.pcap     the connection (Ethernet/IPv4/TCP, port 443), device 192.168.50.23 of
               captures/tls/consentry.toml, from 2026-11-28T10:02:30Z
  wss.keylog   its NSS key log

Not deterministic (fresh randoms, keys and certificate each run): tests read the
committed output. tshark 4.0 with the key log reads the upgrade, the 101 and both
messages, the binary one inflated (`-o tls.keylog_file:wss.keylog -Y websocket -V`).
Needs python3 (stdlib only) and the openssl command. Run: python3 captures/tls/make_wss.py
"""
import json
import os
import ssl
import sys
import tempfile
import zlib

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "rawtcp"))
import make_openssl_tls as tls  # noqa: E402
from make_rawtcp import ws_frame  # noqa: E402

START = (tls.BASE_SECS + 50) * 1_000_000  # 2026-11-28T10:02:30Z


def main():
    keylog = os.path.join(HERE, "wss.keylog")
    if os.path.exists(keylog):
        os.remove(keylog)
    packets = []
    with tempfile.TemporaryDirectory() as tmp:
        certs, dh = tls.make_certs(tmp)
        client_ctx, server_ctx = tls.contexts(certs["rsa"], dh, "ECDHE-RSA-AES128-GCM-SHA256",
                                              tls.V12, True, True, keylog)
        c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
        client = client_ctx.wrap_bio(c_in, c_out, server_side=False, server_hostname="ws.umeng.com")
        server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
        flights = tls.handshake(client, server, c_out, s_in, s_out, c_in)
        conv = tls.Tcp((tls.DEVICE_IP, 42_000), (bytes([203, 0, 113, 31]), 443), packets)
        conv.open(START)
        ts = START + 1_000
        for from_client, data in flights:
            conv.data(from_client, data, ts)
            ts += 1_000
        upgrade = (b"GET /v1/stream HTTP/1.1\r\nHost: ws.umeng.com\r\nUpgrade: websocket\r\n"
                   b"Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
                   b"Sec-WebSocket-Extensions: permessage-deflate\r\n"
                   b"Sec-WebSocket-Key: AAECAwQFBgcICQoLDA0ODw==\r\n\r\n")
        switched = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                    b"Connection: Upgrade\r\nSec-WebSocket-Accept: Bz3qJYTGdOe8gUSpLosEdiLKDrk=\r\n"
                    b"Sec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
        text = json.dumps({"imei": tls.IMEI}).encode()
        deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
        packed = (deflater.compress(json.dumps({"android_id": tls.ANDROID_ID}).encode())
                  + deflater.flush(zlib.Z_SYNC_FLUSH))[:-4]
        steps = [(True, upgrade), (False, switched),
                 (True, ws_frame(1, text, key=b"\x01\x02\x03\x04")),
                 (True, ws_frame(2, packed, rsv1=True, key=b"\x05\x06\x07\x08"))]
        for from_client, data in steps:
            ts += 100_000
            (client if from_client else server).write(data)
            sent = tls.pump(c_out, s_in) if from_client else tls.pump(s_out, c_in)
            conv.data(from_client, sent, ts)
            assert tls.read_all(server if from_client else client) == data
        conv.close(ts + 1_000)
    tls.write_pcap(os.path.join(HERE, "wss.pcap"), packets)
    print(f"wrote wss.pcap: {len(packets)} packets, {client.version()} {client.cipher()[0]}")


if __name__ == "__main__":
    main()
