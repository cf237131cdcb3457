#!/usr/bin/env python3
"""A small HTTP/3 server for capturing Chromium's QUIC + HTTP/3 traffic on loopback.

Serves, on 127.0.0.1:4433 (UDP), with aioquic's asyncio API (`aioquic.asyncio.serve`
and `H3Connection`):
  GET  /            a small HTML page whose script, on load, sends
                      (a) fetch GET /collect?adid=<advertising id>&android_id=<android id>
                      (b) fetch POST /v1/events, JSON body with the IMEI and an email
                          address, header x-device-id: <android id>
                      (c) navigator.sendBeacon('/beacon', JSON with the advertising id)
                    and then (a) and (b) a second time (the same header fields, so
                    Chromium's QPACK encoder can refer to its dynamic table)
  GET  /collect     200, small JSON
  POST /v1/events   200, small JSON
  POST /beacon      204, no body
  anything else     404, short text (Chromium may ask for /favicon.ico)
Every response carries `cache-control: no-store`.

The certificate is a throw-away self-signed P-256 one for `localhost`, made at start
with the `cryptography` package in a temporary directory (removed on exit). Its SPKI
SHA-256 (base64), what Chromium's --ignore-certificate-errors-spki-list wants, is
written to --spki-out once the server listens (so that file also says "ready").

Each request is logged as it completes to the JSON file of --log (rewritten whole
after each request, and at exit with the connections' summaries): method, path,
every header field as received (after QPACK decoding), body length and body text,
response status and body length, stream id, the connection it came on. The server's
TLS secrets go to --keylog (NSS key log format) as a cross-check of the client's.

All identifiers are synthetic (the example values of the README's case file).
Needs a virtualenv with aioquic 1.7.2 (brings pylsqpack and cryptography).
Run:  VENV/bin/python h3_server.py --log received.json --keylog server.keylog \
          --spki-out spki.txt
Stops on SIGINT/SIGTERM.
"""
import argparse
import asyncio
import base64
import hashlib
import json
import os
import shutil
import signal
import sys
import tempfile
import time
from datetime import datetime, timedelta, timezone

import aioquic
from aioquic.asyncio import QuicConnectionProtocol, serve
from aioquic.h3.connection import H3_ALPN, H3Connection
from aioquic.h3.events import DataReceived, HeadersReceived
from aioquic.quic.configuration import QuicConfiguration
from aioquic.quic.events import ConnectionTerminated, HandshakeCompleted, ProtocolNegotiated
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

ADVERTISING_ID = "38400000-8cf0-11bd-b23e-10b96e40000d"
ANDROID_ID = "9774d56d682e549c"
IMEI = "490154203237518"
EMAIL = "tester@example.org"

PAGE = """<!doctype html>
<html><head><meta charset="utf-8"><title>consentry HTTP/3 test page</title>
<link rel="icon" href="data:,"></head>
<body><p id="state">loading</p>
<script>
const ADID = "%(adid)s", ANDROID_ID = "%(android_id)s";
const IMEI = "%(imei)s", EMAIL = "%(email)s";
async function round(n) {
  const a = await fetch("/collect?adid=" + ADID + "&android_id=" + ANDROID_ID,
                        {cache: "no-store"});
  await a.text();
  const b = await fetch("/v1/events", {
    method: "POST",
    cache: "no-store",
    headers: {"content-type": "application/json", "x-device-id": ANDROID_ID},
    body: JSON.stringify({event: "page_open", round: n, imei: IMEI, email: EMAIL}),
  });
  await b.text();
}
window.addEventListener("load", async () => {
  try {
    await round(1);
    const queued = navigator.sendBeacon("/beacon",
        JSON.stringify({event: "page_view", adid: ADID}));
    await round(2);
    document.getElementById("state").textContent = "done, beacon queued: " + queued;
  } catch (e) {
    document.getElementById("state").textContent = "failed: " + e;
  }
});
</script></body></html>
""" % {"adid": ADVERTISING_ID, "android_id": ANDROID_ID, "imei": IMEI, "email": EMAIL}


def now_iso():
    return datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def make_certificate(directory):
    """A fresh self-signed P-256 certificate for localhost; PEM files in `directory`.
    Returns (cert path, key path, base64 SHA-256 of the SubjectPublicKeyInfo)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    t0 = datetime.now(timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(t0 - timedelta(days=1)).not_valid_after(t0 + timedelta(days=7))
            .add_extension(x509.SubjectAlternativeName(
                [x509.DNSName("localhost")]), critical=False)
            .sign(key, hashes.SHA256()))
    cert_path = os.path.join(directory, "cert.pem")
    key_path = os.path.join(directory, "key.pem")
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))
    with open(key_path, "wb") as f:
        f.write(key.private_bytes(serialization.Encoding.PEM,
                                  serialization.PrivateFormat.PKCS8,
                                  serialization.NoEncryption()))
    spki = cert.public_key().public_bytes(serialization.Encoding.DER,
                                          serialization.PublicFormat.SubjectPublicKeyInfo)
    return cert_path, key_path, base64.b64encode(hashlib.sha256(spki).digest()).decode()


class Log:
    """The JSON log of what the server received, rewritten whole on every change."""

    def __init__(self, path):
        self.path = path
        self.doc = {
            "server": {
                "software": f"aioquic {aioquic.__version__}",
                "listen": None,
                "started": now_iso(),
                "note": "what the server received, after QUIC decryption and QPACK decoding",
            },
            "connections": [],
            "requests": [],
        }
        self.write()

    def write(self):
        tmp = self.path + ".tmp"
        with open(tmp, "w") as f:
            json.dump(self.doc, f, indent=2)
            f.write("\n")
        os.replace(tmp, self.path)


def text_or_hex(data):
    try:
        return {"body": data.decode("utf-8")}
    except UnicodeDecodeError:
        return {"body_hex": data.hex()}


class H3Server(QuicConnectionProtocol):
    log: Log = None
    connection_count = 0

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self._h3 = None
        self._requests = {}  # stream id -> {"headers": [...], "body": bytearray}
        H3Server.connection_count += 1
        self._conn = {
            "index": H3Server.connection_count,
            "opened": now_iso(),
            "client": None,
            "original_destination_connection_id":
                self._quic.original_destination_connection_id.hex(),
            "alpn": None,
            "session_resumed": None,
            "early_data_accepted": None,
        }
        self.log.doc["connections"].append(self._conn)
        self.log.write()

    def summarise(self):
        """Adds what the connection's end knows: TLS suite, peer SETTINGS, QPACK bytes."""
        quic = self._quic
        try:
            self._conn["cipher_suite"] = quic.tls.key_schedule.cipher_suite.name
        except AttributeError:
            pass
        if self._h3 is not None:
            settings = self._h3.received_settings
            if settings is not None:
                self._conn["client_settings"] = {str(k): v for k, v in settings.items()}
            self._conn["qpack_encoder_stream_bytes_received"] = self._h3._encoder_bytes_received
            self._conn["qpack_decoder_stream_bytes_received"] = self._h3._decoder_bytes_received
            self._conn["qpack_encoder_stream_bytes_sent"] = self._h3._encoder_bytes_sent
            self._conn["qpack_decoder_stream_bytes_sent"] = self._h3._decoder_bytes_sent

    def quic_event_received(self, event):
        if isinstance(event, ProtocolNegotiated):
            self._conn["alpn"] = event.alpn_protocol
            if event.alpn_protocol in H3_ALPN:
                self._h3 = H3Connection(self._quic)
        elif isinstance(event, HandshakeCompleted):
            self._conn["session_resumed"] = event.session_resumed
            self._conn["early_data_accepted"] = event.early_data_accepted
            self._conn["handshake_completed"] = now_iso()
            try:  # the server's socket is shared: the path knows the client's address
                self._conn["client"] = "%s:%d" % self._quic._network_paths[0].addr[:2]
            except (AttributeError, IndexError):
                pass
            self.summarise()
            self.log.write()
        elif isinstance(event, ConnectionTerminated):
            self._conn["closed"] = now_iso()
            self._conn["close"] = {"error_code": event.error_code,
                                   "frame_type": event.frame_type,
                                   "reason_phrase": event.reason_phrase}
            self.summarise()
            self.log.write()
        if self._h3 is not None:
            for h3_event in self._h3.handle_event(event):
                self.h3_event_received(h3_event)

    def h3_event_received(self, event):
        if isinstance(event, HeadersReceived):
            req = self._requests.get(event.stream_id)
            if req is None:
                req = self._requests[event.stream_id] = {
                    "headers": [], "trailers": [], "body": bytearray(),
                    "received": now_iso()}
                req["headers"] = [[k.decode("latin-1"), v.decode("latin-1")]
                                  for k, v in event.headers]
            else:  # a second HEADERS frame: trailers
                req["trailers"] = [[k.decode("latin-1"), v.decode("latin-1")]
                                   for k, v in event.headers]
            if event.stream_ended:
                self.respond(event.stream_id)
        elif isinstance(event, DataReceived):
            req = self._requests.get(event.stream_id)
            if req is None:
                return
            req["body"] += event.data
            if event.stream_ended:
                self.respond(event.stream_id)

    def respond(self, stream_id):
        req = self._requests.pop(stream_id)
        fields = dict((k, v) for k, v in req["headers"] if k.startswith(":"))
        method, path = fields.get(":method", ""), fields.get(":path", "")
        route = path.split("?", 1)[0]
        if method == "GET" and route == "/":
            status, ctype, body = 200, "text/html; charset=utf-8", PAGE.encode()
        elif method == "GET" and route == "/collect":
            status, ctype, body = 200, "application/json", b'{"ok":true,"next":30}'
        elif method == "POST" and route == "/v1/events":
            status, ctype, body = 200, "application/json", b'{"accepted":1}'
        elif method == "POST" and route == "/beacon":
            status, ctype, body = 204, None, b""
        else:
            status, ctype, body = 404, "text/plain", b"not found\n"
        headers = [(b":status", str(status).encode()), (b"server", b"consentry-h3-test"),
                   (b"cache-control", b"no-store")]
        if ctype:
            headers.append((b"content-type", ctype.encode()))
        headers.append((b"content-length", str(len(body)).encode()))
        self._h3.send_headers(stream_id, headers, end_stream=not body)
        if body:
            self._h3.send_data(stream_id, body, end_stream=True)
        self.transmit()
        entry = {
            "seq": len(self.log.doc["requests"]) + 1,
            "connection": self._conn["index"],
            "stream_id": stream_id,
            "received": req["received"],
            "completed": now_iso(),
            "method": method,
            "authority": fields.get(":authority"),
            "scheme": fields.get(":scheme"),
            "path": path,
            "headers": req["headers"],
            "body_length": len(req["body"]),
        }
        if req["trailers"]:
            entry["trailers"] = req["trailers"]
        if req["body"]:
            entry.update(text_or_hex(bytes(req["body"])))
        entry["response"] = {"status": status, "content_type": ctype,
                             "body_length": len(body)}
        self.log.doc["requests"].append(entry)
        self.log.write()
        print(f"{entry['seq']:2d} stream {stream_id:2d} {method} {path} "
              f"body {len(req['body'])} -> {status}", file=sys.stderr, flush=True)


async def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=4433)
    parser.add_argument("--log", required=True, help="JSON file of the requests received")
    parser.add_argument("--keylog", help="the server's TLS secrets (NSS key log)")
    parser.add_argument("--spki-out", help="write the certificate's SPKI SHA-256 here")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="h3cert-")
    keylog = open(args.keylog, "w") if args.keylog else None
    try:
        cert_path, key_path, spki = make_certificate(tmp)
        configuration = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN,
                                          secrets_log_file=keylog)
        configuration.load_cert_chain(cert_path, key_path)
        H3Server.log = Log(args.log)
        H3Server.log.doc["server"]["listen"] = f"{args.host}:{args.port}"
        H3Server.log.doc["server"]["certificate_spki_sha256"] = spki
        H3Server.log.write()
        server = await serve(args.host, args.port, configuration=configuration,
                             create_protocol=H3Server)
        if args.spki_out:
            with open(args.spki_out, "w") as f:
                f.write(spki + "\n")
        print(f"listening on {args.host}:{args.port} (UDP), SPKI {spki}",
              file=sys.stderr, flush=True)
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await stop.wait()
        for proto in list(server._protocols.values()):
            if isinstance(proto, H3Server):
                proto.summarise()
        H3Server.log.doc["server"]["stopped"] = now_iso()
        H3Server.log.write()
        server.close()
        time.sleep(0.05)
    finally:
        if keylog:
            keylog.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    asyncio.run(main())
