#!/usr/bin/env python3
"""Writes the HTTP/3 sample captures of consentry's pcap tap: real QUIC v1 + HTTP/3
connections, decryptable with their TLS key logs.

Each connection is run in memory with aioquic's sans-I/O API, no sockets: a client
`QuicConnection` + `H3Connection` (the phone) and a server `QuicConnection` +
`H3Connection` in this process, their datagrams shuttled by this script on a simulated
clock. The capture point is a tap 2 ms from the phone (a gateway span port): a
datagram's pcap time is when it passes the tap, the server is 10 ms further on (RTT
24 ms), datagrams of one burst 0.2 ms apart. Datagrams are wrapped into
Ethernet/IPv4/UDP (headers from `captures/pcapkit.py`, every IPv4 and UDP checksum
valid). The client's TLS secrets go to an NSS key log (`QuicConfiguration(
secrets_log_file=...)`), as a browser's SSLKEYLOGFILE; the server's certificate is a
self-signed P-256 one made at run time (no key file is kept).

Phone "pixel7" (192.168.70.23, the device of captures/quic/consentry.toml); servers
in 203.0.113.0/24. Outputs, next to this script:
  h3.pcap, h3.keylog           2026-11-28T11:00:01Z, launches.appsflyer.com
      (203.0.113.61), TLS_AES_128_GCM_SHA256, max datagram size 1350. Four requests,
      one after the other, each on its own bidirectional stream (0, 4, 8, 12):
        GET  /api/v6.3/androidevent?app_id=...&adid=<advertising id>, custom headers
             x-sdk-version, x-app-id, x-device-model, x-android-id (android id)
             -> 200, JSON, content-encoding: gzip
        POST /api/v6.3/register   JSON with the IMEI and an email address -> 200 JSON
        GET  /api/v6.3/config     the first request's custom headers again -> 200 JSON
        POST /api/v6.3/batch      a ~29 KB JSON body in 23 packets, the advertising id
             at its end -> 202 JSON
      QPACK (both sides allow a 4096-byte dynamic table, 16 blocked streams): the
      first request's fields are literals (pylsqpack inserts a field the second time
      it meets it); the second request's encoding inserts :authority, user-agent and
      x-sdk-version, the third's x-app-id, x-device-model and x-android-id, each
      request referring to its own fresh entries with post-base indexes (its stream
      needs the encoder stream's inserts, sent in the same packet: blocked until they
      are read); the fourth refers to earlier entries only. So the third request's
      android id is only on the client's encoder stream (Huffman-coded), its field
      section holds an index. Then the client closes the connection (H3_NO_ERROR).
  h3_dsb.pcapng                the same packets at the same times as h3.pcap (frame
      numbers identical), as pcapng with h3.keylog in a Decryption Secrets Block
      (type 0x544c534b) before the first packet, as `editcap --inject-secrets
      tls,h3.keylog` writes it.
  h3_chacha.pcap, h3_chacha.keylog   2026-11-28T11:00:04Z, api.mixpanel.com
      (203.0.113.62), TLS_CHACHA20_POLY1305_SHA256 only (client and server). The
      same four requests; after the second response the client updates its 1-RTT
      keys (RFC 9001 6: key phase 1, the server follows), after the third once more
      (key phase 0 again, with the third generation of keys: a reader must not go
      back to the first).
  h3_aes256.pcap, h3_aes256.keylog   2026-11-28T11:00:20Z (after the case's
      refusal), app.adjust.com (203.0.113.63), TLS_AES_256_GCM_SHA384, one POST
      /session (~3 KB JSON: IMEI, advertising id, android id; 3 packets) and its
      ~2.7 KB response (3 packets). The network reorders: the request's first
      packet (its HEADERS frame) passes the tap, and reaches the server, after the
      second; likewise the response's first; the request's last packet passes twice
      (the same IP packet, delivered twice).
  expected.json                per capture what a reader must find, from what was
      sent: addresses, suite, packet count, key updates, reordered and duplicated
      frames, QPACK use, and per HTTP/3 exchange its stream, method, :authority,
      :path, :status, body lengths, the frames carrying its request and response and
      the identifiers planted (type, value, where).

NOT deterministic: aioquic draws fresh connection ids, TLS randoms, key shares and
the certificate's key on every run, so a rerun writes new keys and new bytes (the
requests, their order, sizes, times and frame layout normally stay the same). The
tests only need the pcaps, key logs and expected.json of one run: regenerate them
together and commit them together.

All identifiers are synthetic (the example values of the README's case file).
Checked with tshark 4.0 (it decrypts QUIC and names HTTP/3 frame types, but decodes
no QPACK), e.g.
  tshark -r h3.pcap -o tls.keylog_file:h3.keylog -Y quic -T fields -e frame.number \\
      -e quic.packet_number -e quic.key_phase -e quic.stream.stream_id -e quic.stream.length
  tshark -r h3_dsb.pcapng -Y quic.stream ...   (no key log option: the DSB's)
Needs a virtualenv with aioquic 1.7.2 (it brings pylsqpack 1.0.0 and cryptography):
  python3 -m venv VENV && VENV/bin/pip install aioquic==1.7.2
Run: VENV/bin/python captures/quic/make_h3.py

Benchmark capture (benches/compare_quic.sh; never commit it):
  VENV/bin/python captures/quic/make_h3.py --bench-out DIR [--connections N]
      [--requests M] [--concurrent K] [--seed S]
writes instead DIR/h3bench.pcap, DIR/h3bench.keylog, DIR/consentry.toml (pixel7 with
the identifiers above, consent refused before the capture starts) and DIR/h3bench.json
(what was written, the needle, how long it took). N connections (default 120) from
the phone to five SDK hosts in turn, of every ten six TLS_AES_128_GCM_SHA256, two
TLS_AES_256_GCM_SHA384 and two TLS_CHACHA20_POLY1305_SHA256; each carries M POSTs
(default 60), one after the other on its own stream, with JSON bodies of 1-64 KiB
(smaller likelier) and JSON responses of 1-64 KiB, as benches' TLS capture
(tests/tls_corpus/bulk.rs) has them. One request in eight carries the advertising
id: three in four in the body, at a random place among its events (so it may span
two packets), one in four in the query string (QPACK may Huffman-code it). K
connections (default 8) run at the same time, their packets interleaved; the next K
start when they are done. Sizes and placements come from the seed (default 1); keys
and randoms are fresh on every run. No network faults, key updates or qlog; otherwise
the same Link as the sample captures. The defaults write about 358 MB (335 800
packets) in about a minute on a 2-core AMD EPYC VM.
"""
import argparse
import gzip
import heapq
import io
import json
import os
import random
import ssl
import struct
import sys
import time
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
# captures/pcapkit.py: the packet-building helpers the capture generators share.
sys.path.insert(0, os.path.dirname(HERE))
from pcapkit import ipv4_header, luhn_ok, mac, udp_datagram  # noqa: E402

try:
    import aioquic
    from aioquic.buffer import Buffer
    from aioquic.h3.connection import H3_ALPN, H3Connection
    from aioquic.h3.events import DataReceived, HeadersReceived
    from aioquic.quic.configuration import QuicConfiguration
    from aioquic.quic.connection import QuicConnection
    from aioquic.quic.logger import QuicLogger
    from aioquic.quic.packet import pull_quic_header
    from aioquic.tls import CipherSuite, Epoch
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID
except ImportError as e:  # pragma: no cover
    sys.exit(f"make_h3.py needs aioquic (pip install aioquic in a virtualenv): {e}")

PHONE, PHONE_MAC = "192.168.70.23", "02:00:00:46:70:17"
GATEWAY_MAC = "02:00:00:00:00:fe"
ADVERTISING_ID = "38400000-8cf0-11bd-b23e-10b96e40000d"
ANDROID_ID = "9774d56d682e549c"
IMEI = "490154203237518"
EMAIL = "tester@example.org"

PHONE_TO_TAP = 0.002     # s, phone <-> tap
TAP_TO_SERVER = 0.010    # s, tap <-> server
GAP = 0.0002             # s between the datagrams of one burst
THINK = 0.25             # s between a response and the next request
QUIET = 1.0              # a pump ends when the next timer is further away (idle timers)
MAX_DATAGRAM = 1350

SUITE_NAMES = {
    CipherSuite.AES_128_GCM_SHA256: "TLS_AES_128_GCM_SHA256",
    CipherSuite.AES_256_GCM_SHA384: "TLS_AES_256_GCM_SHA384",
    CipherSuite.CHACHA20_POLY1305_SHA256: "TLS_CHACHA20_POLY1305_SHA256",
}


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def compact(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def certificate(host, t0):
    """A self-signed P-256 certificate for `host`, made fresh (its key is not kept)."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, host)])
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(0x4833)
            .not_valid_before(t0 - timedelta(days=30)).not_valid_after(t0 + timedelta(days=335))
            .add_extension(x509.SubjectAlternativeName([x509.DNSName(host)]), critical=False)
            .sign(key, hashes.SHA256()))
    return cert, key


def varint(data, i):
    """A QUIC variable-length integer (RFC 9000 16) at data[i]."""
    n = 1 << (data[i] >> 6)
    v = data[i] & 0x3F
    for b in data[i + 1:i + n]:
        v = (v << 8) | b
    return v, i + n


def packet_sizes(datagram):
    """The sizes of the QUIC packets coalesced in a datagram (RFC 9000 12.2), without
    the zero bytes that may pad a datagram after its last long-header packet."""
    sizes, i = [], 0
    while i < len(datagram) and datagram[i] & 0x40:
        if not datagram[i] & 0x80:           # short header: the rest of the datagram
            sizes.append(len(datagram) - i)
            break
        j = i + 5
        j += 1 + datagram[j]                  # destination connection id
        j += 1 + datagram[j]                  # source connection id
        if (datagram[i] >> 4) & 3 == 0:       # Initial (v1): token
            n, j = varint(datagram, j)
            j += n
        n, j = varint(datagram, j)
        sizes.append(j + n - i)
        i = j + n
    assert not any(datagram[sum(sizes):]), "datagram ends with something else than padding"
    return sizes


def prefix_int(data, i, bits):
    """An integer with an N-bit prefix (RFC 9204 4.1.1, RFC 7541 5.1) at data[i]."""
    mask = (1 << bits) - 1
    value, i = data[i] & mask, i + 1
    if value < mask:
        return value, i
    shift = 0
    while True:
        b, i = data[i], i + 1
        value += (b & 0x7F) << shift
        shift += 7
        if not b & 0x80:
            return value, i


def skip_string(data, i, bits):
    """Past a string literal whose length has an N-bit prefix (Huffman or not)."""
    n, i = prefix_int(data, i, bits)
    return i + n


def field_lines(block):
    """The encoded Required Insert Count of a QPACK field section and the kind of each
    of its field lines, in order (RFC 9204 4.5): which lines come from the dynamic
    table, without decoding any string."""
    ric, i = prefix_int(block, 0, 8)
    _, i = prefix_int(block, i, 7)  # sign and delta base
    kinds = []
    while i < len(block):
        b = block[i]
        if b & 0x80:
            kinds.append("indexed-static" if b & 0x40 else "indexed-dynamic")
            _, i = prefix_int(block, i, 6)
        elif b & 0x40:
            kinds.append("literal-name-ref-static" if b & 0x10 else "literal-name-ref-dynamic")
            _, i = prefix_int(block, i, 4)
            i = skip_string(block, i, 7)
        elif b & 0x20:
            kinds.append("literal-literal-name")
            i = skip_string(block, i, 3)
            i = skip_string(block, i, 7)
        elif b & 0x10:
            kinds.append("indexed-post-base")
            _, i = prefix_int(block, i, 4)
        else:
            kinds.append("literal-post-base-name-ref")
            _, i = prefix_int(block, i, 3)
            i = skip_string(block, i, 7)
    assert i == len(block)
    return ric, kinds


def encoder_inserts(data):
    """How many entries QPACK encoder instructions add to the dynamic table (RFC 9204
    4.3: inserts with name reference or literal name, duplicates)."""
    n, i = 0, 0
    while i < len(data):
        b = data[i]
        if b & 0x80:                       # insert with name reference
            _, i = prefix_int(data, i, 6)
            i = skip_string(data, i, 7)
            n += 1
        elif b & 0x40:                     # insert with literal name
            i = skip_string(data, i, 5)
            i = skip_string(data, i, 7)
            n += 1
        elif b & 0x20:                     # set dynamic table capacity
            _, i = prefix_int(data, i, 5)
        else:                              # duplicate
            _, i = prefix_int(data, i, 5)
            n += 1
    return n


class RecordingEncoder:
    """pylsqpack's Encoder, recording per stream what it wrote: the encoder stream's
    bytes and the field section."""

    def __init__(self, inner):
        self.inner = inner
        self.encoded = {}
        self.encoder_stream_bytes = 0

    def apply_settings(self, *args, **kw):
        out = self.inner.apply_settings(*args, **kw)
        self.encoder_stream_bytes += len(out)
        return out

    def encode(self, stream_id, headers):
        enc, block = self.inner.encode(stream_id, headers)
        self.encoder_stream_bytes += len(enc)
        self.encoded[stream_id] = (enc, block)
        return enc, block

    def feed_decoder(self, data):
        return self.inner.feed_decoder(data)


class Link:
    """One QUIC connection between the phone and a server, both in this process."""

    def __init__(self, host, server_ip, sport, suite, t0, log=True):
        self.host, self.server_ip, self.sport, self.suite, self.t0 = host, server_ip, sport, suite, t0
        # log=False (the benchmark capture): no qlog, so no per-packet record of what
        # was sent (expected(), key updates and network faults need it). aioquic's
        # logger keeps every event of a connection and flush() copies them each time:
        # on 8 benchmark connections, 45 % more time and 2.4 times the memory.
        self.log = log
        self.last_tap = {"client": -1.0, "server": -1.0}
        self.keylog = io.StringIO()
        self.now = 0.0
        self.queue = []          # (arrival, seq, to_client, datagram)
        self.seq = 0
        self.frames = []         # per datagram at the tap: dict
        self.requests = {}       # stream id -> the request as sent
        self.responses = {}      # stream id -> the response as received
        self.server_requests = {}
        self.generation = {"client": 0, "server": 0}
        self.phase = {"client": 0, "server": 0}
        self.key_updates = []
        # Network faults (h3_aes256): per side, "hold" the next datagram carrying a
        # request/response STREAM frame until the one after it has passed the tap;
        # "dup" the datagram carrying the end of the request twice.
        self.faults = {"client": set(), "server": set()}
        self.held = {"client": None, "server": None}
        cert, key = certificate(host, t0)
        client_cfg = QuicConfiguration(is_client=True, alpn_protocols=H3_ALPN, server_name=host,
                                       cipher_suites=[suite], secrets_log_file=self.keylog,
                                       max_datagram_size=MAX_DATAGRAM, verify_mode=ssl.CERT_NONE,
                                       quic_logger=QuicLogger() if log else None)
        self.server_cfg = QuicConfiguration(is_client=False, alpn_protocols=H3_ALPN,
                                            cipher_suites=[suite], max_datagram_size=MAX_DATAGRAM,
                                            certificate=cert, private_key=key,
                                            quic_logger=QuicLogger() if log else None)
        self.client = QuicConnection(configuration=client_cfg)
        self.client.connect((server_ip, 443), now=self.now)
        self.client_h3 = self.instrument(H3Connection(self.client))
        self.server = self.server_h3 = None
        self.logged = {"client": 0, "server": 0}

    @staticmethod
    def instrument(h3):
        h3._encoder = RecordingEncoder(h3._encoder)
        return h3

    def conn(self, side):
        return self.client if side == "client" else self.server

    # --- the wire --------------------------------------------------------------
    def flush(self, side):
        conn = self.conn(side)
        if conn is None:
            return
        datagrams = conn.datagrams_to_send(now=self.now)
        if not datagrams:
            return
        if not self.log:
            for data, _addr in datagrams:
                self.emit(side, {"from_client": side == "client", "data": data})
            return
        events = list(conn.configuration.quic_logger._traces[0]._events)
        sent = [e["data"] for e in events[self.logged[side]:] if e["name"] == "transport:packet_sent"]
        self.logged[side] = len(events)
        phase = conn._cryptos[Epoch.ONE_RTT].send.key_phase
        if phase != self.phase[side]:
            self.phase[side] = phase
            self.generation[side] += 1
            self.key_updates.append({"side": side, "key_phase": phase,
                                     "generation": self.generation[side]})
        out = []
        for data, _addr in datagrams:
            packets = [sent.pop(0) for _ in packet_sizes(data)]
            assert [p["raw"]["length"] for p in packets] == packet_sizes(data)
            info = {"from_client": side == "client", "packets": [], "data": data}
            for p in packets:
                kind = p["header"]["packet_type"]
                streams = [(f["stream_id"], f["offset"], f["length"], f.get("fin", False))
                           for f in p["frames"] if f["frame_type"] == "stream"]
                row = {"type": kind, "pn": p["header"]["packet_number"],
                       "frames": sorted({f["frame_type"] for f in p["frames"]}),
                       "streams": streams}
                if kind == "1RTT":
                    row["key_phase"] = phase
                    row["generation"] = self.generation[side]
                info["packets"].append(row)
            out.append(info)
        for info in out:
            self.through_tap(side, info)

    def carries_bidi(self, info):
        return any(s[0] % 4 in (0, 1) for p in info["packets"] for s in p["streams"])

    def through_tap(self, side, info):
        faults = self.faults[side]
        if "hold" in faults and self.carries_bidi(info):
            faults.discard("hold")
            self.held[side] = info
            info["reordered"] = "passed the tap after the next datagram of its side"
            return
        self.emit(side, info)
        if self.held[side] is not None and self.carries_bidi(info):
            held, self.held[side] = self.held[side], None
            self.emit(side, held)
        if "dup" in faults and any(s[3] for p in info["packets"] for s in p["streams"]
                                   if s[0] % 4 in (0, 1)):
            faults.discard("dup")
            copy = dict(info, duplicate=True)
            self.emit(side, copy)

    def emit(self, side, info):
        last = self.last_tap[side]   # the latest tap time of this side's datagrams
        if side == "client":
            tap = max(self.now + PHONE_TO_TAP, last + GAP)
            arrival = tap + TAP_TO_SERVER
        else:
            tap = max(self.now + TAP_TO_SERVER, last + GAP)
            arrival = tap + PHONE_TO_TAP
        info["tap"] = self.last_tap[side] = tap
        self.frames.append(info)
        self.seq += 1
        heapq.heappush(self.queue, (arrival, self.seq, side == "server", info["data"]))

    def deliver(self, to_client, data):
        if to_client:
            self.client.receive_datagram(data, (self.server_ip, 443), now=self.now)
            self.events("client")
            return
        if self.server is None:
            header = pull_quic_header(Buffer(data=data), host_cid_length=8)
            self.server = QuicConnection(configuration=self.server_cfg,
                                         original_destination_connection_id=header.destination_cid)
            self.server_h3 = self.instrument(H3Connection(self.server))
        self.server.receive_datagram(data, (PHONE, self.sport), now=self.now)
        self.events("server")

    def events(self, side):
        conn = self.conn(side)
        h3 = self.client_h3 if side == "client" else self.server_h3
        while (event := conn.next_event()) is not None:
            for h in h3.handle_event(event):
                if side == "server":
                    self.serve(h)
                else:
                    self.receive(h)

    def pump(self):
        """Runs both ends until only far timers (idle timeouts) are left."""
        while True:
            self.flush("client")
            self.flush("server")
            timers = [(c.get_timer(), s) for c, s in ((self.client, "client"), (self.server, "server"))
                      if c is not None and c.get_timer() is not None]
            nxt = [t for t, _ in timers]
            if self.queue:
                nxt.append(self.queue[0][0])
            if not nxt or (not self.queue and min(nxt) > self.now + QUIET):
                break
            self.now = max(self.now, min(nxt))
            if self.queue and self.queue[0][0] <= self.now:
                _, _, to_client, data = heapq.heappop(self.queue)
                self.deliver(to_client, data)
                continue
            for t, side in timers:
                if t <= self.now:
                    self.conn(side).handle_timer(now=self.now)
                    self.events(side)
        for side, held in self.held.items():
            assert held is None, f"{side} datagram held back and never released"

    # --- HTTP/3 ----------------------------------------------------------------
    def request(self, method, path, extra, body=b"", identifiers=(), faults=()):
        self.now += THINK
        sid = self.client.get_next_available_stream_id()
        headers = [(b":method", method.encode()), (b":scheme", b"https"),
                   (b":authority", self.host.encode()), (b":path", path.encode()),
                   (b"user-agent", b"ExampleShop/4.2 (Linux; Android 14; Pixel 7)")]
        headers += [(k.encode(), v.encode()) for k, v in extra]
        if body:
            headers += [(b"content-type", b"application/json"),
                        (b"content-length", str(len(body)).encode())]
        for side, fault in faults:
            self.faults[side].add(fault)
        self.requests[sid] = {"method": method, "path": path, "body": body, "headers": headers,
                              "identifiers": list(identifiers), "queued": self.now}
        self.client_h3.send_headers(sid, headers, end_stream=not body)
        if body:
            self.client_h3.send_data(sid, body, end_stream=True)
        self.pump()
        response = self.responses.get(sid)
        assert response and response["ended"], f"no complete response on stream {sid}"
        assert not any(self.faults.values()), f"faults not applied: {self.faults}"
        return sid

    def serve(self, event):
        if isinstance(event, HeadersReceived):
            r = self.server_requests.setdefault(event.stream_id, {"body": b""})
            r["headers"] = dict(event.headers)
        elif isinstance(event, DataReceived):
            r = self.server_requests[event.stream_id]
            r["body"] += event.data
        else:
            return
        if not event.stream_ended:
            return
        r = self.server_requests[event.stream_id]
        status, extra, body = self.answer(r["headers"][b":path"].decode(), r["body"])
        headers = [(b":status", str(status).encode()), (b"server", b"h3-lab"),
                   (b"content-type", b"application/json"),
                   (b"content-length", str(len(body)).encode())] + extra
        self.server_h3.send_headers(event.stream_id, headers, end_stream=False)
        self.server_h3.send_data(event.stream_id, body, end_stream=True)

    def receive(self, event):
        if isinstance(event, HeadersReceived):
            self.responses[event.stream_id] = {"headers": dict(event.headers), "body": b"",
                                               "ended": event.stream_ended}
        elif isinstance(event, DataReceived):
            r = self.responses[event.stream_id]
            r["body"] += event.data
            r["ended"] = event.stream_ended

    answers = {}

    def answer(self, path, body):
        for prefix, (status, extra, payload) in self.answers.items():
            if path.startswith(prefix):
                return status, extra, payload
        return 404, [], b'{"error":"not found"}'

    def close(self):
        self.now += THINK
        self.client.close(error_code=0x100, reason_phrase="")
        self.pump()

    # --- results ---------------------------------------------------------------
    def ordered(self):
        """The tap's frames in time order, numbered from 1."""
        self.frames.sort(key=lambda f: f["tap"])
        for n, f in enumerate(self.frames, 1):
            f["number"] = n
        return self.frames

    def packets(self):
        out, ident, idents = [], 0x4000, {}
        for f in self.ordered():
            if f.get("duplicate"):
                ip_id = idents[id(f["data"])]   # the same IP packet twice
            else:
                ident += 1
                ip_id = idents[id(f["data"])] = ident & 0xFFFF
            if f["from_client"]:
                src, dst, sp, dp, smac, dmac = PHONE, self.server_ip, self.sport, 443, PHONE_MAC, GATEWAY_MAC
            else:
                src, dst, sp, dp, smac, dmac = self.server_ip, PHONE, 443, self.sport, GATEWAY_MAC, PHONE_MAC
            udp = udp_datagram(src, dst, sp, dp, f["data"])
            ip = ipv4_header(src, dst, 17, len(udp), ip_id) + udp
            t_us = round((self.t0.timestamp() + f["tap"]) * 1_000_000)
            out.append((t_us, mac(dmac) + mac(smac) + b"\x08\x00" + ip))
        return out

    def expected(self, capture, keylog):
        frames = self.ordered()
        for u in self.key_updates:
            who = u["side"] == "client"
            u["first_frame"] = min(f["number"] for f in frames if f["from_client"] == who
                                   and any(p.get("generation") == u["generation"] for p in f["packets"]))
        exchanges = []
        client_enc = self.client_h3._encoder
        for sid, req in sorted(self.requests.items()):
            resp = self.responses[sid]
            enc, block = client_enc.encoded[sid]
            ric, kinds = field_lines(block)
            assert len(kinds) == len(req["headers"])

            def carrying(from_client):
                return [f["number"] for f in frames if f["from_client"] == from_client
                        and not f.get("duplicate")
                        and any(s[0] == sid for p in f["packets"] for s in p["streams"])]
            req_frames, resp_frames = carrying(True), carrying(False)
            first = next(f for f in frames if f["number"] == req_frames[0])
            rh = resp["headers"]
            row = {
                "stream_id": sid,
                "method": req["method"],
                "authority": self.host,
                "path": req["path"],
                "at": iso(self.t0 + timedelta(seconds=first["tap"])),
                "request_headers": {k.decode(): v.decode() for k, v in req["headers"]
                                    if not k.startswith(b":")},
                "request_body_length": len(req["body"]),
                "status": int(rh[b":status"]),
                "response_content_type": rh.get(b"content-type", b"").decode(),
                "response_body_length": len(resp["body"]),
                "request_frames": req_frames,
                "response_frames": resp_frames,
                "qpack": {"encoder_stream_bytes": len(enc), "inserts": encoder_inserts(enc),
                          "required_insert_count_encoded": ric,
                          # RFC 9204 4.5.1.1 with MaxEntries 4096 / 32 = 128, fewer than
                          # 256 inserts in all: the count itself is one less.
                          "required_insert_count": max(ric - 1, 0),
                          "field_section_length": len(block),
                          "field_lines": [[k.decode(), kind] for (k, _), kind in zip(req["headers"], kinds)]},
                "identifiers": req["identifiers"],
            }
            if b"content-encoding" in rh:
                row["response_content_encoding"] = rh[b"content-encoding"].decode()
                row["response_body_decoded_length"] = len(gzip.decompress(resp["body"]))
            exchanges.append(row)
        h3c, h3s = self.client_h3, self.server_h3
        return {
            "capture": capture,
            "format": "pcap",
            "keylog": keylog,
            "link_type": 1,
            "packets": len(frames),
            "start": iso(self.t0 + timedelta(seconds=frames[0]["tap"])),
            "end": iso(self.t0 + timedelta(seconds=frames[-1]["tap"])),
            "client": f"{PHONE}:{self.sport}",
            "server": f"{self.server_ip}:443",
            "sni": self.host,
            "alpn": "h3",
            "quic_version": "0x00000001",
            "cipher_suite": SUITE_NAMES[self.suite],
            "client_packets": sum(f["from_client"] for f in frames),
            "server_packets": sum(not f["from_client"] for f in frames),
            "key_updates": self.key_updates,
            "reordered_frames": [f["number"] for f in frames if f.get("reordered")],
            "duplicate_frames": [f["number"] for f in frames if f.get("duplicate")],
            "uni_streams": {
                "client": {"control": h3c._local_control_stream_id,
                           "qpack_encoder": h3c._local_encoder_stream_id,
                           "qpack_decoder": h3c._local_decoder_stream_id},
                "server": {"control": h3s._local_control_stream_id,
                           "qpack_encoder": h3s._local_encoder_stream_id,
                           "qpack_decoder": h3s._local_decoder_stream_id},
            },
            "qpack_encoder_stream_bytes": {"client": h3c._encoder.encoder_stream_bytes,
                                           "server": h3s._encoder.encoder_stream_bytes},
            "exchanges": exchanges,
        }


def ident(kind, value, where):
    return {"type": kind, "value": value, "where": where}


def sdk_session(link, prefix, key_updates=False):
    """The four requests of h3.pcap and h3_chacha.pcap."""
    custom = [("x-sdk-version", "6.12.1"), ("x-app-id", "com.example.shop"),
              ("x-device-model", "Pixel 7"), ("x-android-id", ANDROID_ID)]
    gz = gzip.compress(compact({"ok": True, "campaign": "organic", "deeplink": None,
                                "attribution": {"media_source": "organic", "is_first_launch": True,
                                                "install_time": "2026-11-28 11:00:00.000"}}) * 4,
                       mtime=0)
    config = compact({"features": {f"flag_{i:02d}": i % 3 == 0 for i in range(24)},
                      "ttl": 3600, "endpoints": [f"https://{link.host}/api/v6.3/{p}"
                                                 for p in ("androidevent", "register", "batch")]})
    link.answers = {
        f"{prefix}/androidevent": (200, [(b"content-encoding", b"gzip")], gz),
        f"{prefix}/register": (200, [], compact({"status": "ok", "user": "u-1842"})),
        f"{prefix}/config": (200, [(b"cache-control", b"max-age=3600")], config),
        f"{prefix}/batch": (202, [], compact({"accepted": 200})),
    }
    link.pump()  # handshake, SETTINGS both ways: the encoders know the peer's table size
    link.request("GET", f"{prefix}/androidevent?app_id=com.example.shop&adid={ADVERTISING_ID}&n=1",
                 custom, identifiers=[ident("advertising_id", ADVERTISING_ID, "query:adid"),
                                      ident("android_id", ANDROID_ID, "header:x-android-id")])
    register = compact({"app_id": "com.example.shop", "device": {"imei": IMEI, "model": "Pixel 7"},
                        "user": {"email": EMAIL, "newsletter": False}})
    link.request("POST", f"{prefix}/register", [("x-sdk-version", "6.12.1")], register,
                 identifiers=[ident("imei", IMEI, "body:$.device.imei"),
                              ident("email", EMAIL, "body:$.user.email")])
    if key_updates:
        link.client.request_key_update()
    link.request("GET", f"{prefix}/config?sdk=6.12.1", custom,
                 identifiers=[ident("android_id", ANDROID_ID, "header:x-android-id")])
    if key_updates:
        link.client.request_key_update()
    events = [{"event": "screen_view", "seq": i, "ts": 1795863601000 + i * 250,
               "props": {"screen": f"catalog/item/{1000 + i}", "duration_ms": 1200 + i * 7,
                         "referrer": "catalog/list", "ab": "B"}}
              for i in range(200)]
    batch = compact({"app_id": "com.example.shop", "events": events,
                     "advertising_id": ADVERTISING_ID})
    assert 28_000 < len(batch) < 34_000, len(batch)
    link.request("POST", f"{prefix}/batch", [("x-sdk-version", "6.12.1"), ("content-encoding", "identity")],
                 batch, identifiers=[ident("advertising_id", ADVERTISING_ID, "body:$.advertising_id")])
    link.close()


def adjust_session(link):
    """The one request of h3_aes256.pcap, with the network's reordering."""
    body = compact({"app_token": "2fm9gkqubvpc", "environment": "production",
                    "imei": IMEI, "gps_adid": ADVERTISING_ID, "android_id": ANDROID_ID,
                    "device": {"model": "Pixel 7", "os": "android", "os_version": "14"},
                    "callback_params": {f"p{i:02d}": f"value-{i:04d}-" + "x" * 40 for i in range(44)}})
    assert 2_800 < len(body) < 4_000, len(body)
    reply = compact({"adid": "a9f1c7e2b3d4e5f60718293a4b5c6d7e", "timestamp": "2026-11-28T11:00:20.312Z",
                     "attribution": {"tracker_token": "abc123", "network": "Organic"},
                     "segments": [f"segment-{i:03d}" for i in range(180)]})
    link.answers = {"/session": (200, [], reply)}
    link.pump()
    link.request("POST", "/session", [("client-sdk", "android4.38.0")], body,
                 identifiers=[ident("imei", IMEI, "body:$.imei"),
                              ident("advertising_id", ADVERTISING_ID, "body:$.gps_adid"),
                              ident("android_id", ANDROID_ID, "body:$.android_id")],
                 faults=[("client", "hold"), ("client", "dup"), ("server", "hold")])
    link.close()


def write_pcap(path, packets):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t_us, data in packets:
            f.write(struct.pack("<IIII", t_us // 1_000_000, t_us % 1_000_000, len(data), len(data)))
            f.write(data)


def block(kind, body):
    body += b"\0" * (-len(body) % 4)
    total = 12 + len(body)
    return struct.pack("<II", kind, total) + body + struct.pack("<I", total)


def write_pcapng(path, packets, secrets):
    """pcapng: section header, one Ethernet interface (microseconds), a Decryption
    Secrets Block (TLS key log) before the first packet, then the packets as EPBs."""
    out = block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1))
    out += block(0x00000001, struct.pack("<HHI", 1, 0, 0))
    out += block(0x0000000A, struct.pack("<II", 0x544C534B, len(secrets)) + secrets)
    for t_us, data in packets:
        out += block(0x00000006, struct.pack("<IIIII", 0, t_us >> 32, t_us & 0xFFFFFFFF,
                                             len(data), len(data)) + data)
    with open(path, "wb") as f:
        f.write(out)


def run(name, host, server_ip, sport, suite, t0, session):
    link = Link(host, server_ip, sport, suite, t0)
    session(link)
    negotiated = link.client.tls.key_schedule.cipher_suite
    assert negotiated == suite, (negotiated, suite)
    keylog = link.keylog.getvalue()
    labels = sorted(line.split()[0] for line in keylog.splitlines())
    assert labels == ["CLIENT_HANDSHAKE_TRAFFIC_SECRET", "CLIENT_TRAFFIC_SECRET_0",
                      "SERVER_HANDSHAKE_TRAFFIC_SECRET", "SERVER_TRAFFIC_SECRET_0"], labels
    packets = link.packets()
    write_pcap(os.path.join(HERE, f"{name}.pcap"), packets)
    with open(os.path.join(HERE, f"{name}.keylog"), "w") as f:
        f.write(keylog)
    return link, packets, keylog


# --- the benchmark capture (--bench-out) ------------------------------------------
BENCH_HOSTS = [("launches.appsflyer.com", "203.0.113.61"), ("api.mixpanel.com", "203.0.113.62"),
               ("app.adjust.com", "203.0.113.63"), ("graph.facebook.com", "203.0.113.64"),
               ("app-measurement.com", "203.0.113.65")]
# Of every ten connections: six AES-128-GCM, two AES-256-GCM, two ChaCha20-Poly1305.
_A128, _A256, _CHACHA = (CipherSuite.AES_128_GCM_SHA256, CipherSuite.AES_256_GCM_SHA384,
                         CipherSuite.CHACHA20_POLY1305_SHA256)
BENCH_SUITES = [_A128, _A256, _A128, _CHACHA, _A128, _A128, _A256, _A128, _CHACHA, _A128]
BENCH_T0 = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc)
BENCH_CASE = f"""# Case file of the HTTP/3 benchmark capture (captures/quic/make_h3.py --bench-out
# writes it). All identifier values are synthetic.

[case]
id = "h3-bench-2026-11-28"
title = "Example Shop 4.2: SDK traffic over HTTP/3, with its key log"
timezone = "UTC"

[app]
name = "Example Shop"
package = "com.example.shop"
first_party = ["example-shop.com"]

[[device]]
id = "pixel7"
addresses = ["{PHONE}"]
[device.identifiers]
advertising_id = "{ADVERTISING_ID}"
android_id = "{ANDROID_ID}"

[[consent]]
device = "pixel7"
at = "2026-11-28T11:59:00Z"
decision = "refused"
note = "tapped Disagree on the privacy dialog (all purposes)"
"""


def bench_body_size(rng):
    """1-64 KiB, smaller ones likelier (the minimum of two uniform draws)."""
    return 1024 + min(rng.randrange(63 << 10), rng.randrange(63 << 10))


def bench_json(rng, size, adid_at=None):
    """A JSON body of about `size` bytes: event records with hex ids; with `adid_at`,
    the advertising id in an event at about that fraction of the body."""
    events, length, placed = [], 12, adid_at is None
    while length < size:
        if not placed and length >= adid_at * size:
            event = {"name": "ad_context", "advertising_id": ADVERTISING_ID, "limit_tracking": False}
            placed = True
        else:
            event = {"id": f"{rng.getrandbits(128):032x}", "ts": 1795867200000 + rng.randrange(10**6),
                     "name": "screen_view", "value": rng.randrange(10_000)}
        events.append(event)
        length += len(compact(event)) + 1
    if not placed:
        events.append({"name": "ad_context", "advertising_id": ADVERTISING_ID, "limit_tracking": False})
    return compact({"events": events})


def bench_connection(rng, conn, requests, t0, stats):
    """One benchmark connection, run to its close; returns the Link."""
    host, server_ip = BENCH_HOSTS[conn % len(BENCH_HOSTS)]
    suite = BENCH_SUITES[conn % len(BENCH_SUITES)]
    link = Link(host, server_ip, 40000 + conn % 20000, suite, t0, log=False)
    replies = {}
    link.answer = lambda path, body: (200, [], replies.pop(path))
    link.pump()
    for n in range(requests):
        path = f"/v2/events?batch={conn}-{n}"
        where = None
        if rng.randrange(8) == 0:
            where = "query" if rng.randrange(4) == 0 else "body"
        if where == "query":
            path += f"&adid={ADVERTISING_ID}"
        body = bench_json(rng, bench_body_size(rng), rng.random() if where == "body" else None)
        replies[path] = bench_json(rng, bench_body_size(rng))
        stats["request_body_bytes"] += len(body)
        stats["response_body_bytes"] += len(replies[path])
        link.request("POST", path, [("x-sdk-version", "6.12.1")], body)
        stats["requests"] += 1
        if where:
            stats["requests_with_identifier"] += 1
            stats[f"identifier_in_{where}"] += 1
    link.close()
    negotiated = link.client.tls.key_schedule.cipher_suite
    assert negotiated == suite, (negotiated, suite)
    stats["suites"][SUITE_NAMES[suite]] = stats["suites"].get(SUITE_NAMES[suite], 0) + 1
    # The bodies kept for expected() go: packets() needs only the frames.
    link.requests = link.responses = link.server_requests = {}
    return link


def bench(out, connections, requests, concurrent, seed):
    started = time.monotonic()
    rng = random.Random(seed)
    os.makedirs(out, exist_ok=True)
    capture = os.path.join(out, "h3bench.pcap")
    stats = {"requests": 0, "requests_with_identifier": 0, "identifier_in_body": 0,
             "identifier_in_query": 0, "request_body_bytes": 0, "response_body_bytes": 0,
             "suites": {}}
    keylog, packets, start = [], 0, 0.0   # start: seconds after BENCH_T0
    with open(capture, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for first in range(0, connections, concurrent):
            links = [bench_connection(rng, conn, requests,
                                      BENCH_T0 + timedelta(seconds=start + 0.05 * (conn - first)), stats)
                     for conn in range(first, min(first + concurrent, connections))]
            ends = []
            for t_us, data in heapq.merge(*(link.packets() for link in links)):
                f.write(struct.pack("<IIII", t_us // 1_000_000, t_us % 1_000_000, len(data), len(data)))
                f.write(data)
                packets += 1
            for link in links:
                keylog.append(link.keylog.getvalue())
                ends.append((link.t0 - BENCH_T0).total_seconds() + link.frames[-1]["tap"])
            start = max(ends) + 0.5
            print(f"  {first + len(links)}/{connections} connections, {f.tell() / 1e6:.1f} MB, "
                  f"{time.monotonic() - started:.0f} s", file=sys.stderr)
        size = f.tell()
    with open(os.path.join(out, "h3bench.keylog"), "w") as f:
        f.write("".join(keylog))
    with open(os.path.join(out, "consentry.toml"), "w") as f:
        f.write(BENCH_CASE)
    seconds = time.monotonic() - started
    summary = dict({"generator": "make_h3.py --bench-out", "aioquic": aioquic.__version__,
                    "capture": "h3bench.pcap", "keylog": "h3bench.keylog", "case": "consentry.toml",
                    "bytes": size, "packets": packets, "connections": connections,
                    "requests_per_connection": requests, "concurrent": concurrent, "seed": seed,
                    "needle": ADVERTISING_ID, "start": iso(BENCH_T0),
                    "end": iso(BENCH_T0 + timedelta(seconds=start - 0.5)),
                    "generation_seconds": round(seconds, 1)}, **stats)
    with open(os.path.join(out, "h3bench.json"), "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    print(f"{capture}: {size} bytes, {packets} packets, {connections} connections, "
          f"{stats['requests']} requests ({stats['requests_with_identifier']} with the advertising id: "
          f"{stats['identifier_in_body']} in the body, {stats['identifier_in_query']} in the query), "
          f"{seconds:.0f} s")


def main():
    parser = argparse.ArgumentParser(description="Writes captures/quic's HTTP/3 captures; "
                                     "with --bench-out, the benchmark capture instead.")
    parser.add_argument("--bench-out", metavar="DIR", help="write the benchmark capture to DIR")
    parser.add_argument("--connections", type=int, default=120, metavar="N")
    parser.add_argument("--requests", type=int, default=60, metavar="M", help="per connection")
    parser.add_argument("--concurrent", type=int, default=8, metavar="K",
                        help="connections open at the same time")
    parser.add_argument("--seed", type=int, default=1)
    args = parser.parse_args()
    if args.bench_out:
        if min(args.connections, args.requests, args.concurrent) < 1:
            parser.error("--connections, --requests and --concurrent must be at least 1")
        bench(args.bench_out, args.connections, args.requests, args.concurrent, args.seed)
        return
    assert luhn_ok(IMEI)
    t = datetime(2026, 11, 28, 11, 0, 0, tzinfo=timezone.utc)
    expected = {
        "generator": "make_h3.py",
        "aioquic": aioquic.__version__,
        "note": "from one run of make_h3.py: keys and bytes change on every run, so this file "
                "matches only the pcaps and key logs written with it. Frames are numbered from 1; "
                "request_frames/response_frames list the frames with STREAM frames of the "
                "exchange's stream (duplicates left out); `at` is the time of its first request "
                "frame; identifiers' `where` is query:<name>, header:<name> or body:<JSON path>; "
                "qpack.field_lines gives each request field line's QPACK representation "
                "(RFC 9204 4.5), qpack.inserts the entries the request's encoding added to the "
                "dynamic table (on the client's encoder stream); key_updates' first_frame is the "
                "first frame of that side in that key generation; keylog null: the secrets are "
                "in the file's Decryption Secrets Block (dsb: the key log whose bytes it holds).",
        "device": {"id": "pixel7", "address": PHONE, "case": "consentry.toml"},
        "identifiers": {"advertising_id": ADVERTISING_ID, "android_id": ANDROID_ID,
                        "imei": IMEI, "email": EMAIL},
        "captures": {},
    }

    link, packets, keylog = run("h3", "launches.appsflyer.com", "203.0.113.61", 51101,
                                CipherSuite.AES_128_GCM_SHA256, t + timedelta(seconds=1),
                                lambda l: sdk_session(l, "/api/v6.3"))
    exp = link.expected("h3.pcap", "h3.keylog")
    # The dynamic table must be in use: inserts on the client's encoder stream, and the
    # third request's android id header a reference to an entry of it.
    assert sum(x["qpack"]["inserts"] for x in exp["exchanges"]) > 0
    lines = dict(exp["exchanges"][2]["qpack"]["field_lines"])
    assert lines["x-android-id"] in ("indexed-dynamic", "indexed-post-base"), lines
    assert len(exp["exchanges"][3]["request_frames"]) >= 20
    expected["captures"]["h3"] = exp
    write_pcapng(os.path.join(HERE, "h3_dsb.pcapng"), packets, keylog.encode())
    # The same packets, frames and exchanges; the key log (h3.keylog's bytes) in a
    # Decryption Secrets Block of type 0x544c534b before the first packet.
    dsb = dict(exp, capture="h3_dsb.pcapng", format="pcapng", keylog=None, dsb="h3.keylog")
    expected["captures"]["h3_dsb"] = dsb

    link, _, _ = run("h3_chacha", "api.mixpanel.com", "203.0.113.62", 51102,
                     CipherSuite.CHACHA20_POLY1305_SHA256, t + timedelta(seconds=4),
                     lambda l: sdk_session(l, "/api/v6.3", key_updates=True))
    exp = link.expected("h3_chacha.pcap", "h3_chacha.keylog")
    assert [u["side"] for u in exp["key_updates"]] == ["client", "server", "client", "server"], \
        exp["key_updates"]
    expected["captures"]["h3_chacha"] = exp

    link, _, _ = run("h3_aes256", "app.adjust.com", "203.0.113.63", 51103,
                     CipherSuite.AES_256_GCM_SHA384, t + timedelta(seconds=20), adjust_session)
    exp = link.expected("h3_aes256.pcap", "h3_aes256.keylog")
    assert len(exp["reordered_frames"]) == 2 and len(exp["duplicate_frames"]) == 1, exp
    expected["captures"]["h3_aes256"] = exp

    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump(expected, f, indent=1)
        f.write("\n")
    for name, c in expected["captures"].items():
        print(f"{name}: {c['packets']} packets, {c['cipher_suite']}, {len(c['exchanges'])} exchanges, "
              f"key updates {len(c['key_updates'])}, reordered {c['reordered_frames']}, "
              f"duplicates {c['duplicate_frames']}")


if __name__ == "__main__":
    main()
