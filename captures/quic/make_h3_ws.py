#!/usr/bin/env python3
"""Writes a WebSocket over HTTP/3 (RFC 9220) for consentry's pcap tap: one real QUIC v1
+ HTTP/3 connection run in memory with aioquic, as make_h3.py runs its connections
(its `Link` is reused: the same tap, clock, addresses and key log). The server
announces SETTINGS_ENABLE_CONNECT_PROTOCOL (aioquic always does); the client opens
stream 0 with an extended CONNECT (`:protocol` websocket, permessage-deflate
offered) to ws.appsflyer.com/v1/stream, answered 200, and sends in DATA frames two
masked WebSocket messages (make_rawtcp.py's frames): a text one with the android id
and a deflated binary one with the advertising id, then a close frame with the end
of the stream. The server answers with one text frame and a close.

Phone "pixel7" (192.168.70.23, captures/quic/consentry.toml), server 203.0.113.66,
2026-11-28T11:00:30Z (after the case's refusal), TLS_AES_128_GCM_SHA256. Outputs,
next to this script: h3_ws.pcap, h3_ws.keylog.

NOT deterministic (fresh connection ids, randoms and keys each run): tests read the
committed output. tshark 4.0 with the key log reads the HTTP/3 connection's QUIC
frames, not the WebSocket messages. Needs the aioquic package (as make_h3.py).
Run: python3 captures/quic/make_h3_ws.py
"""
import json
import os
import sys
import zlib
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
sys.path.insert(0, os.path.join(os.path.dirname(HERE), "rawtcp"))
import make_h3  # noqa: E402
from make_h3 import ADVERTISING_ID, ANDROID_ID, HeadersReceived, DataReceived  # noqa: E402
from make_rawtcp import ws_frame  # noqa: E402
from aioquic.tls import CipherSuite  # noqa: E402

HOST = "ws.appsflyer.com"


class WsLink(make_h3.Link):
    """A `Link` whose server accepts one WebSocket over an extended CONNECT."""

    def serve(self, event):
        if isinstance(event, HeadersReceived):
            headers = dict(event.headers)
            assert headers[b":protocol"] == b"websocket", headers
            self.server_h3.send_headers(event.stream_id, [
                (b":status", b"200"), (b"sec-websocket-extensions", b"permessage-deflate")])
        elif isinstance(event, DataReceived) and event.stream_ended:
            self.server_h3.send_data(event.stream_id, ws_frame(8, b"\x03\xe8"), end_stream=True)

    def receive(self, event):
        if isinstance(event, HeadersReceived):
            self.responses[event.stream_id] = dict(event.headers)


def session(link):
    link.pump()
    sid = link.client.get_next_available_stream_id()
    link.client_h3.send_headers(sid, [
        (b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
        (b":authority", HOST.encode()), (b":path", b"/v1/stream"),
        (b"sec-websocket-version", b"13"),
        (b"sec-websocket-extensions", b"permessage-deflate")])
    link.pump()
    assert link.responses[sid][b":status"] == b"200", link.responses
    text = json.dumps({"android_id": ANDROID_ID}).encode()
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    packed = (deflater.compress(json.dumps({"adid": ADVERTISING_ID}).encode())
              + deflater.flush(zlib.Z_SYNC_FLUSH))[:-4]
    for frame in [ws_frame(1, text, key=b"\x01\x02\x03\x04"),
                  ws_frame(2, packed, rsv1=True, key=b"\x05\x06\x07\x08")]:
        link.now += make_h3.THINK
        link.client_h3.send_data(sid, frame, end_stream=False)
        link.pump()
    link.now += make_h3.THINK
    link.client_h3.send_data(sid, ws_frame(8, b"\x03\xe8", key=b"\x09\x0a\x0b\x0c"),
                             end_stream=True)
    link.pump()
    link.close()


def main():
    make_h3.Link = WsLink
    t0 = datetime(2026, 11, 28, 11, 0, 30, tzinfo=timezone.utc)
    link, packets, _ = make_h3.run("h3_ws", HOST, "203.0.113.66", 51106,
                                   CipherSuite.AES_128_GCM_SHA256, t0, session)
    print(f"wrote h3_ws.pcap: {len(packets)} packets")


if __name__ == "__main__":
    main()
