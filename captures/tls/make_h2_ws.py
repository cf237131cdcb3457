#!/usr/bin/env python3
"""Writes a WebSocket over HTTP/2 (RFC 8441) inside TLS for consentry's TLS tests: one
real OpenSSL TLS 1.3 connection (ALPN h2) run in memory through Python's ssl module,
as make_openssl_tls.py runs its connections (its helpers are imported), carrying an
HTTP/2 connection made by the `h2` library (client and server). The server announces
SETTINGS_ENABLE_CONNECT_PROTOCOL; the client opens stream 1 with an extended CONNECT
(`:protocol` websocket, permessage-deflate offered) and, once answered 200, sends on
it the frames of make_wss.py's two messages (make_rawtcp.py's WebSocket frames): a
text message with the IMEI and a compressed binary one with the Android id, then a
close frame and the end of the stream. The server answers with one text frame and
ends its side. A plain GET on stream 3 goes alongside.

Outputs, next to this script:
  h2ws.pcap     the connection (Ethernet/IPv4/TCP, port 443), device 192.168.50.23 of
                captures/tls/consentry.toml, from 2026-11-28T10:03:50Z
  h2ws.keylog   its NSS key log

Not deterministic (fresh randoms, keys and certificate each run): tests read the
committed output. tshark 4.0 with the key log reads the HTTP/2 streams (the CONNECT
with `:protocol` and its DATA frames) but not the WebSocket messages inside them.
Needs python3 with the `h2` package (PyPI) and the openssl command.
Run: python3 captures/tls/make_h2_ws.py
"""
import json
import os
import ssl
import sys
import tempfile
import zlib

import h2.config
import h2.connection
import h2.settings

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "rawtcp"))
import make_openssl_tls as tls  # noqa: E402
from make_rawtcp import ws_frame  # noqa: E402

START = (tls.BASE_SECS + 130) * 1_000_000  # 2026-11-28T10:03:50Z
HOST = "ws.umeng.com"


def main():
    keylog = os.path.join(HERE, "h2ws.keylog")
    if os.path.exists(keylog):
        os.remove(keylog)
    packets = []
    with tempfile.TemporaryDirectory() as tmp:
        certs, dh = tls.make_certs(tmp)
        client_ctx, server_ctx = tls.contexts(certs["rsa"], dh, "ECDHE-RSA-AES128-GCM-SHA256",
                                              ssl.TLSVersion.TLSv1_3, True, True, keylog)
        client_ctx.set_alpn_protocols(["h2"])
        server_ctx.set_alpn_protocols(["h2"])
        c_in, c_out, s_in, s_out = (ssl.MemoryBIO() for _ in range(4))
        client = client_ctx.wrap_bio(c_in, c_out, server_side=False, server_hostname=HOST)
        server = server_ctx.wrap_bio(s_in, s_out, server_side=True)
        flights = tls.handshake(client, server, c_out, s_in, s_out, c_in)
        assert client.selected_alpn_protocol() == "h2"
        conv = tls.Tcp((tls.DEVICE_IP, 42_300), (bytes([203, 0, 113, 32]), 443), packets)
        conv.open(START)
        ts = START + 1_000
        for from_client, data in flights:
            conv.data(from_client, data, ts)
            ts += 1_000

        h2c = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
        h2s = h2.connection.H2Connection(h2.config.H2Configuration(client_side=False))
        h2s.local_settings = h2.settings.Settings(
            client=False,
            initial_values={h2.settings.SettingCodes.ENABLE_CONNECT_PROTOCOL: 1})

        def send(from_client):
            """What one side's h2 connection has to send, through TLS, to the other."""
            nonlocal ts
            sender, receiver = (h2c, h2s) if from_client else (h2s, h2c)
            data = sender.data_to_send()
            if not data:
                return []
            ts += 20_000
            (client if from_client else server).write(data)
            sent = tls.pump(c_out, s_in) if from_client else tls.pump(s_out, c_in)
            conv.data(from_client, sent, ts)
            assert tls.read_all(server if from_client else client) == data
            return receiver.receive_data(data)

        h2c.initiate_connection()
        send(True)
        h2s.initiate_connection()
        send(False)
        send(True)  # the client's SETTINGS ACK
        send(False)

        h2c.send_headers(1, [(":method", "CONNECT"), (":protocol", "websocket"),
                             (":scheme", "https"), (":path", "/v1/stream"),
                             (":authority", HOST), ("sec-websocket-version", "13"),
                             ("sec-websocket-extensions", "permessage-deflate")])
        h2c.send_headers(3, [(":method", "GET"), (":scheme", "https"),
                             (":path", "/v1/config"), (":authority", HOST)],
                         end_stream=True)
        send(True)
        h2s.send_headers(1, [(":status", "200"),
                             ("sec-websocket-extensions", "permessage-deflate")])
        h2s.send_headers(3, [(":status", "200"), ("content-type", "application/json")])
        h2s.send_data(3, b"{}", end_stream=True)
        send(False)

        text = json.dumps({"imei": tls.IMEI}).encode()
        deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
        packed = (deflater.compress(json.dumps({"android_id": tls.ANDROID_ID}).encode())
                  + deflater.flush(zlib.Z_SYNC_FLUSH))[:-4]
        h2c.send_data(1, ws_frame(1, text, key=b"\x01\x02\x03\x04"))
        send(True)
        h2s.send_data(1, ws_frame(1, b"ok"))
        send(False)
        h2c.send_data(1, ws_frame(2, packed, rsv1=True, key=b"\x05\x06\x07\x08"))
        h2c.send_data(1, ws_frame(8, b"\x03\xe8", key=b"\x09\x0a\x0b\x0c"), end_stream=True)
        send(True)
        h2s.send_data(1, ws_frame(8, b"\x03\xe8"), end_stream=True)
        send(False)
        conv.close(ts + 1_000)
    tls.write_pcap(os.path.join(HERE, "h2ws.pcap"), packets)
    print(f"wrote h2ws.pcap: {len(packets)} packets, {client.version()} {client.cipher()[0]}")


if __name__ == "__main__":
    main()
