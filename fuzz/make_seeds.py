#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/.

fuzz/corpus is git-ignored: run this once before `cargo fuzz run` (see README.md).
Seeds come from the project's own sample captures and case file (synthetic data) and
from small inputs written here; nothing from outside the repository.
"""

import base64
import gzip
import hashlib
import json
import os
import struct
import zlib

FUZZ = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(FUZZ)
DEMO = os.path.join(ROOT, "captures", "demo")

# Layout of a `decode` input: see decode_exchange in fuzz/src/lib.rs. Indexes into
# its tables: content type 1 json, 2 form, 3 multipart (boundary XyZ), 7 octet-stream;
# encoding 1 gzip, 2 deflate; transfer 1 chunked.
CT_NONE, CT_JSON, CT_FORM, CT_MULTIPART, CT_OCTET = 0, 1, 2, 3, 7
CE_NONE, CE_GZIP, CE_DEFLATE = 0, 1, 2
TE_NONE, TE_CHUNKED = 0, 1

ADID = "38400000-8cf0-11bd-b23e-10b96e40000d"
IMEI = "490154203237518"
EMAIL = "tester@example.org"


def write(target, name, data):
    d = os.path.join(FUZZ, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(data if isinstance(data, bytes) else data.encode())


def decode_input(ct, ce, te, flags, text, body):
    text = text.encode()[:255]
    return bytes([ct, ce, te, flags, len(text)]) + text + body


def chunked(data, size=7):
    out = b""
    for i in range(0, len(data), size):
        piece = data[i : i + size]
        out += b"%x\r\n" % len(piece) + piece + b"\r\n"
    return out + b"0\r\n\r\n"


T0 = "2026-11-28T10:15:29.112345Z"

# Entries exercising what demo.har lacks: websocket messages, base64 and params
# bodies, queryString and cookies to synthesise, relative URLs, odd types.
HAR_ENTRIES = {
    "websocket": {
        "startedDateTime": T0,
        "request": {"method": "GET", "url": "wss://ws.example/socket?x=1", "headers": []},
        "response": {"status": 101, "headers": []},
        "_webSocketMessages": [
            {"type": "send", "time": 1795860929.5, "opcode": 1, "data": json.dumps({"imei": IMEI})},
            {"type": "send", "time": 3.25, "opcode": 2, "data": base64.b64encode(ADID.encode()).decode()},
            {"type": "receive", "time": 4, "opcode": 1, "data": "ok"},
        ],
    },
    "base64-post": {
        "startedDateTime": T0,
        "request": {
            "method": "POST", "url": "https://t.example/c", "httpVersion": "HTTP/2",
            "headers": [{"name": ":authority", "value": "t.example:443"}, {"name": "Content-Encoding", "value": "gzip"}],
            "postData": {"mimeType": "application/json", "encoding": "base64", "text": base64.b64encode(gzip.compress(json.dumps({"mail": EMAIL}).encode())).decode()},
        },
        "response": {"status": "200", "headers": [], "content": {"size": 2, "text": "e30=", "encoding": "base64"}},
        "serverIPAddress": "[2001:db8::1]",
    },
    "tracing": {
        "startedDateTime": T0,
        "request": {
            "method": "POST", "url": "https://browser-intake-datadoghq.com/api/v2/rum",
            "headers": [{"name": "x-datadog-trace-id", "value": "4111111111111111"},
                        {"name": "traceparent", "value": "00-0af7651916cd43dd8448eb211c80319c-4111111111111111-01"},
                        {"name": "X-Trace-Id", "value": "490154203237518"}],
            "postData": {"mimeType": "application/json", "text": json.dumps({"_dd": {"trace_id": "4111111111111111", "spanId": 490154203237518}, "card": "4111111111111111"})},
        },
    },
    "params": {
        "startedDateTime": T0,
        "request": {
            "method": "POST", "url": "/rel/path", "headers": [{"name": ":scheme", "value": "https"}, {"name": "Host", "value": "h.example"}],
            "queryString": [{"name": "aaid", "value": ADID}, {"name": "sp ace", "value": "%"}],
            "cookies": [{"name": "uid", "value": IMEI}],
            "postData": {"mimeType": "multipart/form-data", "params": [{"name": "e", "value": EMAIL}, {"name": "f", "fileName": "a.txt", "value": "x", "contentType": "text/plain"}]},
        },
    },
    "odd-types": {
        "startedDateTime": "2026-11-28 10:15:29",
        "request": {"method": 5, "url": "https://o.example/#frag", "headers": 5, "cookies": {}, "postData": []},
        "response": {"status": [], "headers": None},
    },
}


def zstd_rle(byte, blocks, block=128 * 1024):
    """A zstd frame of RLE blocks: `blocks * block` bytes from a few bytes each."""
    out = b"\x28\xb5\x2f\xfd" + b"\x00" + b"\x38"  # no FCS; window 2^(10+7)
    for i in range(blocks):
        last = 1 if i == blocks - 1 else 0
        header = last | (1 << 1) | (block << 3)
        out += header.to_bytes(3, "little") + bytes([byte])
    return out


def zstd_sequence_bomb(sequences=2000):
    """A zstd frame whose second block holds `sequences` matches of 131 074 bytes each
    (RLE-coded sequence tables, every extra bit set): far past the 128 KiB a block may
    decode to (ruzstd 0.7 built it all in memory)."""
    out = b"\x28\xb5\x2f\xfd\x00\x38" + (8 << 3).to_bytes(3, "little") + b"A" * 8
    if sequences < 0x7F00:
        count = bytes([0x80 | sequences >> 8, sequences & 0xFF])
    else:
        count = bytes([0xFF]) + (sequences - 0x7F00).to_bytes(2, "little")
    block = b"\x00" + count + bytes([0x54, 0, 0, 52]) + b"\xff" * (2 * sequences) + b"\x01"
    return out + (1 | 2 << 1 | len(block) << 3).to_bytes(3, "little") + block


def zstd_raw(data, block=128 * 1024):
    """A zstd frame of raw blocks (no checksum, 128 KiB window)."""
    out = b"\x28\xb5\x2f\xfd\x00\x38"
    pieces = [data[i:i + block] for i in range(0, len(data), block)] or [b""]
    for i, piece in enumerate(pieces):
        last = 1 if i == len(pieces) - 1 else 0
        out += (last | len(piece) << 3).to_bytes(3, "little") + piece
    return out


def main():
    demo_har = open(os.path.join(DEMO, "demo.har"), "rb").read()
    demo_case = open(os.path.join(DEMO, "consentry.toml"), "rb").read()

    # har, analyze: the demo capture whole and one HAR per entry (small inputs mutate faster).
    har = json.loads(demo_har)
    for target in ("har", "analyze"):
        write(target, "demo.har", demo_har)
        for i, entry in enumerate(har["log"]["entries"]):
            one = {"log": {"version": "1.2", "entries": [entry]}}
            write(target, f"entry-{i:02}.har", json.dumps(one))
        write(target, "empty.har", '{"log":{"entries":[]}}')
        for name, entry in HAR_ENTRIES.items():
            one = {"log": {"creator": {"name": "fuzz", "version": "1"}, "entries": [entry]}}
            write(target, f"feature-{name}.har", json.dumps(one))

    # case: the demo case file, and its sections alone.
    write("case", "demo.toml", demo_case)
    for i, section in enumerate(demo_case.split(b"\n\n")):
        write("case", f"section-{i:02}.toml", section)

    # decode: one seed per kind of body and header.
    js = json.dumps({"device": {"adid": ADID, "imei": IMEI}, "n": [1, 2.5, None]}).encode()
    form = f"aaid={ADID}&email=tester%40example.org&d={base64.b64encode(js).decode()}".encode()
    multipart = (
        b"--XyZ\r\nContent-Disposition: form-data; name=\"imei\"\r\n\r\n" + IMEI.encode()
        + b"\r\n--XyZ\r\nContent-Disposition: form-data; name=\"f\"; filename=\"a.json\"\r\n"
        b"Content-Type: application/json\r\n\r\n" + js + b"\r\n--XyZ--\r\n"
    )
    q = f"/v1/e?aaid={ADID}&e={base64.urlsafe_b64encode(EMAIL.encode()).decode()}&flag"
    seeds = {
        "json": decode_input(CT_JSON, CE_NONE, TE_NONE, 0, "/track", js),
        "form": decode_input(CT_FORM, CE_NONE, TE_NONE, 1, "/c?x=1", form),
        "multipart": decode_input(CT_MULTIPART, CE_NONE, TE_NONE, 0, "/up", multipart),
        "gzip-json": decode_input(CT_JSON, CE_GZIP, TE_NONE, 0, "/g", gzip.compress(js)),
        "deflate-form": decode_input(CT_FORM, CE_DEFLATE, TE_NONE, 0, "/d", zlib.compress(form)),
        "chunked-json": decode_input(CT_JSON, CE_NONE, TE_CHUNKED, 0, "/ch", chunked(js)),
        "chunked-gzip": decode_input(CT_JSON, CE_GZIP, TE_CHUNKED, 0, "/cg", chunked(gzip.compress(js))),
        "query-cookie": decode_input(CT_NONE, CE_NONE, TE_NONE, 7, q, b""),
        "b64-gzip-body": decode_input(CT_OCTET, CE_NONE, TE_NONE, 0, "/b", base64.b64encode(gzip.compress(js))),
        "jwt": decode_input(CT_NONE, CE_NONE, TE_NONE, 2, "Bearer eyJhbGciOiJub25lIn0." + base64.urlsafe_b64encode(js).decode().rstrip("=") + ".", b""),
    }
    # Decompression bombs: 8 MiB of zeros (gzip), gzip of gzip, 12.5 MiB of zstd RLE.
    bomb = gzip.compress(bytes(8 << 20), 9)
    seeds["gzip-bomb"] = decode_input(CT_JSON, CE_GZIP, TE_NONE, 0, "/bomb", bomb)
    seeds["gzip-gzip-bomb"] = decode_input(CT_NONE, 9, TE_NONE, 0, "/bb", gzip.compress(gzip.compress(bomb)))
    # Codings in two header lines each (flag bit 5): `gzip, gzip` + `gzip` content
    # codings, then `gzip` + `chunked` transfer codings.
    four = gzip.compress(gzip.compress(gzip.compress(gzip.compress(js, mtime=0), mtime=0), mtime=0), mtime=0)
    seeds["codings-in-two-lines"] = decode_input(CT_JSON, 9, 2, 32, "/two", chunked(four))
    seeds["zstd-rle-bomb"] = decode_input(CT_NONE, 4, TE_NONE, 0, "/z", zstd_rle(0x41, 100))
    seeds["zstd-sequence-bomb"] = decode_input(CT_NONE, 4, TE_NONE, 0, "/zs", zstd_sequence_bomb())
    seeds["b64-zstd-query"] = decode_input(CT_NONE, CE_NONE, TE_NONE, 0, "/q?d=" + base64.b64encode(zstd_rle(0x30, 3)).decode(), b"")
    for name, data in seeds.items():
        write("decode", name, data)

    # pii: identifier values in several encodings, a location pair, pattern-like data.
    md5 = hashlib.md5(ADID.encode()).hexdigest()
    sha256 = hashlib.sha256(IMEI.encode()).hexdigest().upper()
    pii = {
        "plain": f'{{"adid":"{ADID}","imei":"{IMEI}","mail":"{EMAIL}"}}',
        "hashes": f"m={md5}&s={sha256}&mac=020000445566",
        "b64": base64.b64encode(f"{EMAIL} {IMEI}".encode()).decode(),
        "url": "e=tester%40example.org&p=%2B8613800138000&n=Zhang%20San",
        "location": '{"lat":31.230416,"lng":121.473701} loc=31.2304,121.4737',
        "patterns": "id 11010519491231002X card 4111111111111111 mail a.b@c.cn tel +8613912345678",
        "tracing": '{"_dd":{"trace_id":"4111111111111111","span_id":490154203237518},"card":"4111111111111111"}',
    }
    for name, data in pii.items():
        write("pii", name, data)

    # capture / packet: small pcap and pcapng files of frames built here.
    for name, data in capture_seeds().items():
        write("capture", name, data)

    # udp_export: captures sent as PCAPdroid's exporter sends them, a datagram per
    # record or block (the pcapng preamble in one), each behind a 2-byte length.
    for name, data in udp_export_seeds().items():
        write("udp_export", name, data)

    # tcp_export: captures sent as PCAPdroid's TCP exporter sends them, a connection
    # per capture, each behind its read size and a 2-byte length.
    for name, data in tcp_export_seeds().items():
        write("tcp_export", name, data)

    # capture_chain: sample captures cut into files as editcap -c cuts them, in order
    # and reversed, each file behind a 2-byte length.
    for name, data in capture_chain_seeds().items():
        write("capture_chain", name, data)
    for name, data in packet_seeds().items():
        write("packet", name, data)


    # http1: steps of client data, server data and gaps (control bytes, see fuzz/src/lib.rs).
    def step(server, data):
        out = b""
        while data:
            piece, data = data[:62], data[62:]
            out += bytes([(0x80 if server else 0) | len(piece)]) + piece
        return out

    def gap(server, n):
        return bytes([(0x80 if server else 0) | 0x40 | (n - 1)])

    req = b"POST /t?aaid=" + ADID.encode() + b" HTTP/1.1\r\nHost: a.example\r\nContent-Length: 5\r\n\r\nhello"
    chunked_resp = b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n0\r\n\r\n"
    http1 = {
        "pipelined": step(False, req + b"HEAD / HTTP/1.1\r\n\r\n") + step(True, chunked_resp + b"HTTP/1.1 200 OK\r\nContent-Length: 9\r\n\r\n"),
        "continue": step(False, b"PUT /x HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 2\r\n\r\n")
        + step(True, b"HTTP/1.1 100 Continue\r\n\r\n") + step(False, b"ok") + step(True, b"HTTP/1.0 200 OK\r\n\r\nbody until close"),
        "connect": step(False, b"CONNECT a:443 HTTP/1.1\r\n\r\n\x16\x03\x01\x00\x05") + step(True, b"HTTP/1.1 200 OK\r\n\r\n\x16\x03\x03"),
        "upgrade": step(False, b"GET /ws HTTP/1.1\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\nGET /n HTTP/1.1\r\n\r\n")
        + step(True, b"HTTP/1.1 426 No\r\nContent-Length: 0\r\n\r\nHTTP/1.1 101 Switching\r\n\r\n"),
        # `Connection` in two lines, a message sent before the 101.
        "upgrade-two-lines": step(False, b"GET /ws HTTP/1.1\r\nConnection: keep-alive\r\nUpgrade: websocket\r\n"
                                  b"Connection: Upgrade\r\n\r\n\x81\x05hello")
        + step(True, b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n\r\n\x81\x02hi"),
        # Bytes written into a CONNECT tunnel before its answer, over three steps
        # (frames): refused with a 407 they are read as requests, each from its own
        # frames; then a second CONNECT, held over two steps, opened.
        "connect-held-segments": step(False, b"CONNECT a:80 HTTP/1.1\r\n\r\nGET /x HTTP/1.1\r\n")
        + step(False, b"Host: a\r\n\r\nCONNECT a:80 HTTP/1.1\r\n\r\n") + step(False, b"\x16\x03\x01")
        + step(True, b"HTTP/1.1 407 Auth\r\nContent-Length: 0\r\n\r\n") + step(False, b"\x00\x05")
        + step(True, b"HTTP/1.1 204 No Content\r\n\r\nHTTP/1.1 200 OK\r\n\r\n"),
        "gaps": step(False, req[:60]) + gap(False, 20) + step(False, b"}GET /y HTTP/1.1\r\n\r\n")
        + step(True, chunked_resp[:50]) + gap(True, 3) + step(True, b"xHTTP/1.1 204 No Content\r\n\r\n"),
        # Trailer fields after chunked bodies, both ways, then a message after them.
        "trailers": step(False, b"POST /u HTTP/1.1\r\nTransfer-Encoding: chunked\r\nTrailer: X-Id\r\n\r\n"
                         b"5\r\nhello\r\n0\r\nX-Id: " + ADID.encode() + b"\r\nX-Sum: 1\n\r\nGET /n HTTP/1.1\r\n\r\n")
        + step(True, chunked_resp[:-2] + b"grpc-status: 0\r\n\r\nHTTP/1.1 204 No Content\r\n\r\n"),
    }
    for name, data in http1.items():
        write("http1", name, data)

    # dns: a response with a compressed CNAME chain and A/AAAA records; the same over TCP.
    q = b"\x03www\x07example\x03com\x00"
    resp = (b"\x12\x34\x81\x80\x00\x01\x00\x03\x00\x00\x00\x00" + q + b"\x00\x01\x00\x01"
            + b"\xc0\x0c\x00\x05\x00\x01\x00\x00\x01\x2c\x00\x06\x03cdn\xc0\x10"
            + b"\xc0\x2d\x00\x01\x00\x01\x00\x00\x00\x3c\x00\x04\x5d\xb8\xd8\x22"
            + b"\xc0\x2d\x00\x1c\x00\x01\x00\x00\x00\x3c\x00\x10" + bytes(15) + b"\x01")
    write("dns", "response", resp)
    write("dns", "tcp", len(resp).to_bytes(2, "big") + resp + b"\x00\x11" + resp[:17])
    # dns, as HTTP DNS answers (net::http_dns): a JSON API answer with a CNAME, an
    # HTTPDNS batch, DNSPod's batch text, Alibaba's newer and Baidu's forms, a JSON
    # API's short form; the JSON API's gzipped, and deflated then gzipped (the
    # harness's `deflate, gzip`); a lookup's posted form.
    json_api = (b'{"Status":0,"Question":[{"name":"a.example.","type":1}],"Answer":['
                b'{"name":"a.example.","type":5,"TTL":60,"data":"b.example."},'
                b'{"name":"b.example.","type":1,"TTL":60,"data":"192.0.2.1"},'
                b'{"name":"b.example.","type":28,"TTL":60,"data":"2001:db8::1"}]}')
    write("dns", "json-api", json_api)
    write("dns", "json-api-gzip", gzip.compress(json_api, mtime=0))
    write("dns", "json-api-deflate-gzip", gzip.compress(zlib.compress(json_api), mtime=0))
    write("dns", "httpdns-batch",
          b'{"dns":[{"host":"a.example","ips":["192.0.2.2"],"ipsv6":["fd00::2"],"ttl":46},'
          b'{"host":"b.example","ips":[],"ttl":46}]}')
    write("dns", "dnspod-batch", b"a.example.:192.0.2.3;fd00::3,60\nb.example.:0,60\n")
    write("dns", "httpdns-v2",
          b'{"code":"success","mode":0,"data":{"answers":[{"dn":"a.example",'
          b'"v4":{"ips":["192.0.2.4"],"ttl":60},"v6":{"ttl":60,"no_ip_code":"RRNotExist"}}]}}')
    write("dns", "httpdns-baidu",
          b'{"msg":"ok","data":{"a.example":{"ip":["192.0.2.5"],"ipv6":["fd00::5"],"ttl":300},'
          b'"b.example":{"ip":[],"ttl":300}}}')
    write("dns", "json-api-short", b'["192.0.2.6","2001:db8::6"]')
    write("dns", "httpdns-form", b"dn=a.example,b.example&id=100000")
    # mDNS: the rawtcp capture's announcements (wireless debugging's, the system's;
    # a file-sharing SDK's), UDP from port 5353 in Ethernet and IPv4 without options.
    rawtcp = os.path.join(ROOT, "captures", "rawtcp", "rawtcp.pcap")
    mdns = [f[42:] for f in pcap_frames(rawtcp)
            if len(f) > 42 and f[23] == 17 and f[34:36] == (5353).to_bytes(2, "big")]
    for i, message in enumerate(mdns):
        write("dns", "mdns-%d" % i, message)
    # tap: the rawtcp capture's frames in file order, eight to a seed, on Ethernet
    # (link index 0), 0.1 s apart (byte 1), each frame stuffed (`tap_frames`).
    def tap_seeds(name, path):
        frames = pcap_frames(path)
        for i in range(0, len(frames), 8):
            write("tap", "%s-%03d" % (name, i),
                  bytes([0, 1]) + b"\xfe".join(stuffed(f) for f in frames[i:i + 8]))
    tap_seeds("rawtcp", rawtcp)
    # ... and the gateway's DHCP capture's (a laptop joining, a lease renewed), its
    # HTTP DNS capture's, and the capture of real network stacks (`captures/netns`:
    # VLAN and QinQ tags, lost, resent and reordered segments, fragments).
    tap_seeds("dhcp", os.path.join(ROOT, "captures", "gateway", "dhcp.pcap"))
    tap_seeds("httpdns", os.path.join(ROOT, "captures", "gateway", "httpdns.pcap"))
    tap_seeds("netns", os.path.join(ROOT, "captures", "netns", "netns.pcap"))

    # tls_hello: a ClientHello from Python's ssl module (see net::tls tests).
    import ssl
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    i, o = ssl.MemoryBIO(), ssl.MemoryBIO()
    s = ctx.wrap_bio(i, o, server_hostname="tracker.example.com")
    try:
        s.do_handshake()
    except ssl.SSLWantReadError:
        pass
    hello = o.read()
    write("tls_hello", "client-hello", hello)
    write("tls_hello", "two-records", hello[:5 + 100].replace(b"\x16\x03\x01\x02\x00", b"\x16\x03\x01\x00\x64", 1)
          + b"\x16\x03\x01" + (len(hello) - 105).to_bytes(2, "big") + hello[105:])
    # ... and a server's first flight in clear (OpenSSL's TLS 1.2 ServerHello,
    # Certificate, ServerKeyExchange, ServerHelloDone) for ServerFlightReader and the
    # certificate parser: the first connection of captures/tls/openssl.pcap.
    write("tls_hello", "server-flight-openssl",
          server_stream(os.path.join(ROOT, "captures", "tls", "openssl.pcap"))[:4096])

    # tls_decrypt: the RFC 8448 §3 connection (hex constants of the decryptor's tests),
    # as steps of at most 126 bytes: ClientHello, server flight, client's answer.
    import re
    src = open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "src", "net",
                            "tls_decrypt", "tests.rs")).read()
    r = {m.group(1): bytes.fromhex(re.sub(r"\s", "", m.group(2)))
         for m in re.finditer(r'const (R8448_[A-Z_]+): &str =\s*"([0-9a-f \n]+)";', src)}
    ch = r["R8448_CH"]
    client_hello = b"\x16\x03\x01" + len(ch).to_bytes(2, "big") + ch
    server = r["R8448_SH_REC"] + r["R8448_FLIGHT_REC"] + r["R8448_NST_REC"] + r["R8448_S_APP_REC"]
    client = r["R8448_CFIN_REC"] + r["R8448_C_APP_REC"] + r["R8448_C_ALERT_REC"]

    def steps(server_side, data):
        out = b""
        for i in range(0, len(data), 126):
            piece = data[i:i + 126]
            out += bytes([len(piece) | (0x80 if server_side else 0)]) + piece
        return out
    write("tls_decrypt", "rfc8448", steps(False, client_hello) + steps(True, server) + steps(False, client))
    write("tls_decrypt", "rfc8448-client-first", steps(False, client_hello + client) + steps(True, server))
    # quic: the client datagrams of the QUIC sample capture as they are (mode 0), and
    # the ClientHello above as CRYPTO frames for the target to protect (mode 1: one
    # packet; 0x11: cut in two, coalesced; 0x03: v2).
    for i, d in enumerate(quic_client_datagrams()):
        write("quic", f"datagram-{i:02}", b"\x00" + d)
    # gquic: the client datagrams of the gQUIC sample capture (CHLOs, later packets).
    for i, d in enumerate(quic_client_datagrams("gquic.pcap")):
        write("gquic", f"datagram-{i:02}", d)
    ch = hello[5:]
    def crypto(off, data):
        return b"\x06" + (0x4000 | off).to_bytes(2, "big") + (0x4000 | len(data)).to_bytes(2, "big") + data
    write("quic", "frames-one", b"\x01" + b"\x01\x00\x00" + crypto(0, ch))
    write("quic", "frames-two-coalesced", b"\x11" + crypto(100, ch[100:]) + b"\xfe\xfd" + crypto(0, ch[:100]))
    write("quic", "frames-v2-ack", b"\x03" + b"\x02\x05\x00\x01\x02\x03\x01" + crypto(0, ch))

    # tcp: op sequences for the layout of `tcp` in fuzz/src/lib.rs (flags, i16 delta,
    # length), from an ISN near the wrap point.
    def tcp_input(max_bytes_div4, max_segs, isn, ops):
        out = bytes([max_bytes_div4, max_segs]) + isn.to_bytes(4, "little")
        for flags, delta, length in ops:
            out += bytes([flags]) + delta.to_bytes(2, "little", signed=True) + bytes([length])
        return out

    tcp = {
        "in-order": [(2, -1, 0)] + [(0, 0, 100)] * 6 + [(1, 0, 0)],
        "reordered": [(2, -1, 0), (0, 50, 40), (0, -140, 50), (0, 40, 10), (0, -60, 50)],
        "overlap-altered": [(0, 0, 60), (0, 20, 30), (0x20, -70, 80), (0, -100, 120)],
        "holes-limit": [(0, 0, 10)] + [(0, 5, 20)] * 12 + [(4, 0, 0)],
        "jump": [(0, 0, 30), (0x10, 3, 40), (0, 0, 40), (0, -10, 5)],
        "fin-then-data": [(0, 0, 20), (0, 20, 20), (1, -40, 20), (0, 0, 50), (4, 0, 0)],
        "shrink": [(0, 0, 5), (0, 10, 40), (0, 10, 40), (8, 0, 30), (8, 0, 0)],
    }
    for name, ops in tcp.items():
        write("tcp", name, tcp_input(16, 3, 0xFFFFFF80, ops))


def ipv4_tcp(payload, frag=0, more=False, ident=1):
    tcp = struct.pack(">HHIIBBHHH", 40000, 80, 1000, 1, 0x50, 0x18, 65535, 0, 0) + payload
    flags = (0x2000 if more else 0) | (frag // 8)
    return struct.pack(">BBHHHBBH4s4s", 0x45, 0, 20 + len(tcp), ident, flags, 64, 6, 0,
                       bytes([10, 0, 0, 1]), bytes([10, 0, 0, 2])) + tcp


def ether(payload, ethertype=0x0800, vlans=()):
    head = bytes([2, 0, 0, 0, 0, 2, 2, 0, 0, 0, 0, 1])
    for tpid, vid in vlans:
        head += struct.pack(">HH", tpid, vid)
    return head + struct.pack(">H", ethertype) + payload


def pcap(frames, link=1, endian="<", nanos=False):
    magic = 0xA1B23C4D if nanos else 0xA1B2C3D4
    out = struct.pack(endian + "IHHiIII", magic, 2, 4, 0, 0, 65535, link)
    for i, f in enumerate(frames):
        out += struct.pack(endian + "IIII", 1700000000 + i, 1000 * i, len(f), len(f)) + f
    return out


def ng_block(btype, body, endian="<"):
    body += bytes(-len(body) % 4)
    n = 12 + len(body)
    return struct.pack(endian + "II", btype, n) + body + struct.pack(endian + "I", n)


def pcapng(frames, endian="<"):
    shb = ng_block(0x0A0D0D0A, struct.pack(endian + "IHHq", 0x1A2B3C4D, 1, 0, -1), endian)
    idb0 = ng_block(1, struct.pack(endian + "HHI", 1, 0, 0), endian)
    opts = struct.pack(endian + "HH", 9, 1) + bytes([9, 0, 0, 0]) + bytes(4)
    idb1 = ng_block(1, struct.pack(endian + "HHI", 101, 0, 0) + opts, endian)
    out = shb + idb0 + idb1
    for i, (iface, f) in enumerate(frames):
        out += ng_block(6, struct.pack(endian + "IIIII", iface, 0, i, len(f), len(f)) + f, endian)
    out += ng_block(0xA, struct.pack(endian + "II", 0x544C534B, 6) + b"KEYLOG", endian)
    out += ng_block(3, struct.pack(endian + "I", 20) + ipv4_tcp(b"")[:20], endian)
    return out


def capture_seeds():
    get = ipv4_tcp(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
    return {
        "pcap-le": pcap([ether(get), ether(get, vlans=[(0x8100, 7)])]),
        "pcap-be-ns": pcap([ether(get)], endian=">", nanos=True),
        "pcap-raw": pcap([get], link=101),
        "pcapng-le": pcapng([(0, ether(get)), (1, get)]),
        "pcapng-be": pcapng([(1, get)], endian=">"),
    }


def framed(datagrams):
    return b"".join(struct.pack(">H", len(d)) + d for d in datagrams)


def pcapng_datagrams(data):
    blocks, at = [], 0
    while at + 8 <= len(data):
        (length,) = struct.unpack_from("<I", data, at + 4)
        blocks.append(data[at:at + length])
        at += length
    head = 0
    while head < len(blocks) and struct.unpack_from("<I", blocks[head])[0] in (0x0A0D0D0A, 1):
        head += 1
    return [b"".join(blocks[:head])] + blocks[head:]


def pcap_datagrams(data):
    out, at = [data[:24]], 24
    while at + 16 <= len(data):
        (caplen,) = struct.unpack_from("<I", data, at + 8)
        out.append(data[at:at + 16 + caplen])
        at += 16 + caplen
    return out


def udp_export_seeds():
    d = os.path.join(ROOT, "captures", "pcapdroid")
    ng = open(os.path.join(d, "pcapdroid.pcapng"), "rb").read()
    pcap_file = open(os.path.join(d, "pcapdroid.pcap"), "rb").read()
    seeds = {
        "pcapdroid-pcapng": framed(pcapng_datagrams(ng)),
        "pcapdroid-pcap": framed(pcap_datagrams(pcap_file)),
        # A collector started late: records without their header.
        "pcapdroid-pcap-headless": framed(pcap_datagrams(pcap_file)[1:]),
    }
    for name, data in capture_seeds().items():
        if name.startswith("pcapng"):
            if name.endswith("le"):
                seeds[name] = framed(pcapng_datagrams(data))
        else:
            seeds[name] = framed([data])
    return seeds


def connections(conns):
    """Connections of the tcp_export target: a read size, a 2-byte length, the bytes."""
    return b"".join(bytes([read]) + struct.pack(">H", len(d)) + d for read, d in conns)


def tcp_export_seeds():
    d = os.path.join(ROOT, "captures", "pcapdroid")
    ng = open(os.path.join(d, "pcapdroid.pcapng"), "rb").read()
    pcap_file = open(os.path.join(d, "pcapdroid.pcap"), "rb").read()
    half = pcap_datagrams(pcap_file)
    cut = len(half) // 2
    seeds = {
        "pcapdroid-pcapng": connections([(97, ng[:65535])]),
        "pcapdroid-pcap": connections([(255, pcap_file[:65535])]),
        # Two captures: the first broken off inside a record, the second with its
        # header again.
        "pcapdroid-pcap-two": connections([
            (64, b"".join(half[:cut]) + half[cut][:20]),
            (13, half[0] + b"".join(half[cut:]))]),
    }
    for name, data in capture_seeds().items():
        seeds[name] = connections([(31, data[:65535])])
    return seeds


def chain_files(files):
    """Files of the capture_chain target: a 2-byte big-endian length, the bytes."""
    return b"".join(struct.pack(">H", len(f)) + f for f in files)


def pcap_pieces(data, per_file):
    """A little-endian pcap cut into files of per_file records."""
    records = pcap_datagrams(data)
    return [records[0] + b"".join(records[i:i + per_file])
            for i in range(1, len(records), per_file)]


def pcapng_pieces(data, per_file):
    """A little-endian pcapng cut into files of per_file blocks, each file with the
    leading section and interface blocks."""
    blocks = pcapng_datagrams(data)
    return [blocks[0] + b"".join(blocks[i:i + per_file])
            for i in range(1, len(blocks), per_file)]


def capture_chain_seeds():
    caps = os.path.join(ROOT, "captures")
    read = lambda *p: open(os.path.join(caps, *p), "rb").read()
    pieces = {
        # Cut within 64 KiB files; the key log block and PCAPdroid's app blocks
        # land before some file's first packet.
        "gateway": pcap_pieces(read("gateway", "gateway.pcap")[:60000], 25),
        "tls-dsb": pcapng_pieces(read("tls", "tls-dsb.pcapng"), 12),
        "pcapdroid": pcapng_pieces(read("pcapdroid", "pcapdroid.pcapng"), 6),
        "tls": pcap_pieces(read("tls", "tls.pcap"), 30),
    }
    seeds = {}
    for name, files in pieces.items():
        seeds[name] = chain_files(files)
        seeds[name + "-reversed"] = chain_files(files[::-1])
    return seeds


def quic_client_datagrams(name="quic.pcap"):
    """UDP payloads the phone sends in captures/quic/NAME (classic pcap, Ethernet,
    IPv4 without options)."""
    data = open(os.path.join(ROOT, "captures", "quic", name), "rb").read()
    at, out = 24, []
    while at + 16 <= len(data):
        n = struct.unpack("<I", data[at + 8:at + 12])[0]
        frame = data[at + 16:at + 16 + n]
        at += 16 + n
        if frame[26:30] == bytes([192, 168, 70, 23]) and frame[23] == 17:
            out.append(frame[42:])
    return out


def server_stream(path):
    """The TCP payload port 443 sent on the first connection of a pcap file of this
    repository (Ethernet, IPv4, in order), joined."""
    out, client = b"", None
    for f in pcap_frames(path):
        if len(f) < 34 or f[12:14] != b"\x08\x00" or f[23] != 6:
            continue
        tcp = 14 + (f[14] & 0x0F) * 4
        sport, dport = struct.unpack(">HH", f[tcp:tcp + 4])
        if sport != 443:
            continue
        if client is None:
            client = dport
        if dport == client:
            out += f[tcp + (f[tcp + 12] >> 4) * 4:]
    return out


def stuffed(frame):
    """A frame as the `tap` target's input carries it: `FD` as `FD 00`, `FE` (the
    frame separator) as `FD 01` (see `tap_frames` in fuzz/src/lib.rs)."""
    return frame.replace(b"\xfd", b"\xfd\x00").replace(b"\xfe", b"\xfd\x01")


def pcap_frames(path):
    """The frames of a classic little-endian pcap file of this repository."""
    data = open(path, "rb").read()
    at, frames = 24, []
    while at + 16 <= len(data):
        n = struct.unpack("<I", data[at + 8:at + 12])[0]
        frames.append(data[at + 16:at + 16 + n])
        at += 16 + n
    return frames


def sample_frames(name):
    """Frames of captures/NAME/NAME.pcap: each request's and each odd frame of its
    expected.json."""
    d = os.path.join(ROOT, "captures", name)
    frames = pcap_frames(os.path.join(d, name + ".pcap"))
    expected = json.load(open(os.path.join(d, "expected.json")))
    out = {r.get("flow", "request-%d" % i): frames[r["frame"] - 1]
           for i, r in enumerate(expected["requests"])}
    for i, n in enumerate(expected["negative"]):
        out["negative-%d" % i] = frames[n["frame"] - 1]
    return out


def wpa2_session():
    d = os.path.join(ROOT, "captures", "wpa2")
    frames = pcap_frames(os.path.join(d, "wpa2.pcap"))
    expected = json.load(open(os.path.join(d, "expected.json")))
    numbers = expected["handshake"] + [expected["requests"][0]["frame"]]
    return b"\xfe\xfd".join(frames[n - 1] for n in numbers)


def wpa3_session():
    """The phone's SAE handshake, its first request, the group key handshake in its
    protected frames and the group frame under the new key."""
    d = os.path.join(ROOT, "captures", "wpa3")
    frames = pcap_frames(os.path.join(d, "wpa3.pcap"))
    expected = json.load(open(os.path.join(d, "expected.json")))
    numbers = (expected["stations"]["phone"]["handshake"] + [expected["requests"][0]["frame"]]
               + expected["group_key_handshake"] + [expected["negative"][3]["frame"]])
    return b"\xfe\xfd".join(frames[n - 1] for n in numbers)


def tkip_session():
    """The phone's WPA1 handshake, its group key handshake inside TKIP frames, the group
    ARP under the TKIP GTK, its first request, the tablet's WPA2 handshake (the same GTK
    in message 3), the group broadcast and a stranger's TKIP frame."""
    d = os.path.join(ROOT, "captures", "tkip")
    frames = pcap_frames(os.path.join(d, "tkip.pcap"))
    expected = json.load(open(os.path.join(d, "expected.json")))
    stations = expected["stations"]
    numbers = (stations["phone"]["handshake"] + expected["group_key_handshake"]
               + [expected["gtk"]["frames"][0], expected["requests"][0]["frame"]]
               + stations["tablet"]["handshake"] + [expected["gtk"]["frames"][1]]
               + stations["stranger"]["frames"][:1])
    return b"\xfe\xfd".join(frames[n - 1] for n in numbers)


def wep_session():
    """The WEP sample's first request, its group ARP and the stranger's frame."""
    d = os.path.join(ROOT, "captures", "wep")
    frames = pcap_frames(os.path.join(d, "wep.pcap"))
    expected = json.load(open(os.path.join(d, "expected.json")))
    numbers = ([expected["requests"][0]["frame"]] + expected["group"]["frames"]
               + [n["frame"] for n in expected["negative"] if n["kind"]])
    return b"\xfe\xfd".join(frames[n - 1] for n in numbers)


def gcmp_session():
    """The GCMP sample's phone handshake (GCMP-256 pairwise, the GCMP-256 group key in
    message 3), its first request, the group ARP, the tablet's CCMP-256 handshake and
    request, and a stranger's GCMP-256 frame."""
    d = os.path.join(ROOT, "captures", "gcmp")
    frames = pcap_frames(os.path.join(d, "gcmp.pcap"))
    expected = json.load(open(os.path.join(d, "expected.json")))
    stations = expected["stations"]
    requests = {r["device"]: r["frame"] for r in reversed(expected["requests"])}
    numbers = (stations["phone"]["handshake"] + [requests["phone"]] + expected["gtk"]["frames"]
               + stations["tablet"]["handshake"] + [requests["tablet"]]
               + stations["stranger"]["frames"][:1])
    return b"\xfe\xfd".join(frames[n - 1] for n in numbers)


def ft_session():
    """The FT sample's phone: its association (the SSID and mobility domain), 4-way
    handshake and first request via the first access point, its roam (FT
    authentication, reassociation with the second access point's GTK) and a request
    and the group ARP via the second."""
    d = os.path.join(ROOT, "captures", "ft")
    frames = pcap_frames(os.path.join(d, "ft.pcap"))
    expected = json.load(open(os.path.join(d, "expected.json")))
    phone = expected["stations"]["phone"]
    initial, roam = phone["initial"], phone["roam"]
    via_ap2 = [r["frame"] for r in expected["requests"] if r["frame"] > roam["reassociation"][1]]
    numbers = (initial["association"] + initial["handshake"] + [expected["requests"][0]["frame"]]
               + roam["ft_authentication"] + roam["reassociation"] + via_ap2[:1]
               + expected["aps"]["ap2"]["gtk"]["frames"])
    return b"\xfe\xfd".join(frames[n - 1] for n in numbers)


def frag_session():
    """The fragments sample's phone handshake, its first request in four TKIP fragments
    (the Michael MIC cut across the last two), its POST with a fragment repeated, the
    tablet's handshake and its request in three CCMP fragments, and the MSDU whose
    packet numbers skip one."""
    d = os.path.join(ROOT, "captures", "frag")
    frames = pcap_frames(os.path.join(d, "frag.pcap"))
    expected = json.load(open(os.path.join(d, "expected.json")))
    stations = expected["stations"]
    msdus = {m["what"]: m for m in expected["fragmented_msdus"]}
    by_case = {r["case"]: r for r in expected["unreported_requests"]}
    requests = expected["requests"]
    retried = next(m for m in msdus.values() if m.get("retried"))
    numbers = (stations["phone"]["handshake"] + requests[0]["fragments"]
               + sorted(retried["fragments"] + [r["retry"] for r in retried["retried"]])
               + stations["tablet"]["handshake"] + requests[2]["fragments"]
               + by_case["pn-gap"]["fragments"])
    return b"\xfe\xfd".join(frames[n - 1] for n in numbers)


def packet_seeds():
    body = b"x" * 40
    whole = ipv4_tcp(body)
    frag_a = bytearray(whole[:20] + whole[20:44])
    struct.pack_into(">HH", frag_a, 2, 44, 0x2000)
    frag_b = bytearray(whole[:20] + whole[44:])
    struct.pack_into(">HH", frag_b, 2, 20 + len(whole) - 44, 3)
    sep = b"\xfe\xfd"
    return {
        "eth": bytes([0, 0]) + ether(whole),
        "qinq": bytes([0, 0]) + ether(whole, 0x0800, [(0x88A8, 1), (0x8100, 2)]),
        "raw-frags": bytes([3, 1]) + bytes(frag_b) + sep + bytes(frag_a),
        "null": bytes([6, 0]) + struct.pack("<I", 2) + whole,
        # Byte 0 indexes PACKET_LINKS in fuzz/src/lib.rs: 0 Ethernet, 12 radiotap.
        **{"tunnel-" + name: bytes([0, 0]) + f for name, f in sample_frames("tunnels").items()},
        **{"wifi-" + name: bytes([12, 0]) + f for name, f in sample_frames("wifi").items()},
        # The WPA2 handshake and the first request, FE FD between frames: decrypted
        # with the key the target gives its decoder.
        "wpa2-session": bytes([12, 0]) + wpa2_session(),
        "wpa3-session": bytes([12, 0]) + wpa3_session(),
        "tkip-session": bytes([12, 0]) + tkip_session(),
        "wep-session": bytes([12, 0]) + wep_session(),
        "gcmp-session": bytes([12, 0]) + gcmp_session(),
        "ft-session": bytes([12, 0]) + ft_session(),
        "frag-session": bytes([12, 0]) + frag_session(),
    }


def h2_frame(ty, flags, stream, payload):
    return struct.pack(">I", len(payload))[1:] + bytes([ty, flags]) + struct.pack(">I", stream) + payload


def h2_literal(name, value):
    # Literal without indexing, literal name, plain strings (lengths < 127).
    return bytes([0x00, len(name)]) + name + bytes([len(value)]) + value


def h2_steps(client, data):
    # `http1`/`http2` input layout: control byte (bit 7 server), 0x3f = 2-byte length.
    return bytes([0x3F | (0 if client else 0x80)]) + struct.pack(">H", len(data)) + data


def h2_seeds():
    """`hpack` and `http2` seeds: RFC 7541 C.3/C.4 blocks, and a small conversation."""
    c3 = bytes.fromhex("828684410f7777772e6578616d706c652e636f6d")
    c4 = bytes.fromhex("828684418cf1e3c2e5f23a6ba0ab90f4ff")
    c4b = bytes.fromhex("828785bf408825a849e95ba97d7f8925a849e95bb8e8b4bf")
    write("hpack", "c3", bytes([64, 64]) + c3 + b"\xfe\xfd" + bytes.fromhex("828684be58086e6f2d6361636865"))
    write("hpack", "c4", bytes([64, 64]) + c4 + b"\xfe\xfd" + c4b)
    headers = h2_literal(b":method", b"POST") + h2_literal(b":path", b"/e?aaid=" + ADID.encode())
    client = (
        h2_frame(4, 0, 0, struct.pack(">HI", 1, 8192))
        + h2_frame(1, 0x4, 1, headers)
        + h2_frame(0, 0x9, 1, bytes([2]) + IMEI.encode() + b"\0\0")
        + h2_frame(1, 0x1, 3, c4)
        + h2_frame(9, 0x4, 3, b"")
    )
    server = (
        h2_frame(4, 0, 0, b"")
        + h2_frame(1, 0x4, 1, h2_literal(b":status", b"200"))
        + h2_frame(0, 0x1, 1, b"ok")
        + h2_frame(3, 0, 3, struct.pack(">I", 8))
        + h2_frame(7, 0, 0, struct.pack(">II", 1, 0))
    )
    write("http2", "conversation", h2_steps(True, client) + h2_steps(False, server))
    write("http2", "client-gap", h2_steps(True, client[:40]) + bytes([0x45]) + h2_steps(True, client[40:]))
    # A WebSocket over HTTP/2 (RFC 8441): extended CONNECT, then masked frames in DATA.
    connect = b"".join(h2_literal(n, v) for n, v in [
        (b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
        (b":path", b"/ws"), (b":authority", b"ws.example"),
        (b"sec-websocket-extensions", b"permessage-deflate")])
    frames = ws_frame(1, b'{"imei":"' + IMEI.encode() + b'"}', fin=False) + ws_frame(0, b"")
    ws_client = (h2_frame(1, 0x4, 1, connect) + h2_frame(0, 0, 1, frames[:9])
                 + h2_frame(0, 0x1, 1, frames[9:]))
    ws_server = h2_frame(1, 0x4, 1, h2_literal(b":status", b"200"))
    write("http2", "websocket", h2_steps(True, ws_client) + h2_steps(False, ws_server))


def ws_frame(opcode, payload, fin=True, rsv1=False, key=b"\x5a\xc3\x11\x07"):
    """A client's WebSocket frame (RFC 6455 5.2), masked with `key`."""
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    n = len(payload)
    if n < 126:
        head += bytes([0x80 | n])
    elif n <= 0xFFFF:
        head += bytes([0x80 | 126]) + struct.pack(">H", n)
    else:
        head += bytes([0x80 | 127]) + struct.pack(">Q", n)
    return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))


def ws_seeds():
    """`websocket`: flags (bit 0 deflate), a cut, then a client's frames: a text message
    in fragments around a ping, a 16-bit length, and two compressed messages sharing
    the window."""
    msg = b'{"event":"open","imei":"' + IMEI.encode() + b'"}'
    plain = (ws_frame(1, msg[:10], fin=False) + ws_frame(9, b"")
             + ws_frame(0, msg[10:]) + ws_frame(2, bytes(range(256)) * 2))
    write("websocket", "fragments", b"\x00\x11" + plain)
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)
    packed = b""
    for body in (msg, msg + b"again"):
        out = deflater.compress(body) + deflater.flush(zlib.Z_SYNC_FLUSH)
        packed += ws_frame(2, out[:-4], rsv1=True)
    write("websocket", "deflate", b"\x01\x05" + packed + ws_frame(8, b"\x03\xe8"))


def qp_int(flags, bits, v):
    """A QPACK/HPACK prefix integer (RFC 9204 4.1.1) with `flags` above its prefix."""
    top = (1 << bits) - 1
    if v < top:
        return bytes([flags | v])
    out, v = [flags | top], v - top
    while v >= 0x80:
        out.append(0x80 | (v & 0x7F))
        v >>= 7
    return bytes(out + [v])


def qp_str(flags, bits, s):
    """A plain (not Huffman-coded) string literal with a `bits`-bit length prefix."""
    return qp_int(flags, bits, len(s)) + s


def quic_varint(v):
    for n, tag in ((1, 0), (2, 0x40), (4, 0x80), (8, 0xC0)):
        if v < 1 << (8 * n - 2):
            return (v | tag << (8 * n - 8)).to_bytes(n, "big")
    raise ValueError(v)


def h3_frame(ty, payload):
    return quic_varint(ty) + quic_varint(len(payload)) + payload


# RFC 9204 Appendix B, in the RFC's hex (the decoder's tests check that
# `net::qpack::encode` writes the same bytes). Its decoder allows 220 bytes.
B1_SECTION = "0000 510b 2f69 6e64 6578 2e68 746d 6c"
B2_ENCODER = "3fbd01 c00f 7777 772e 6578 616d 706c 652e 636f 6d c10c 2f73 616d 706c 652f 7061 7468"
B2_SECTION = "0381 10 11"
B3_ENCODER = "4a63 7573 746f 6d2d 6b65 790c 6375 7374 6f6d 2d76 616c 7565"
B4_ENCODER = "02"
B4_SECTION = "0500 80 c1 81"
B5_ENCODER = "810d 6375 7374 6f6d 2d76 616c 7565 32"
B5_SECTION = "0600 80"
# Huffman-coded strings of RFC 7541 C.4: "www.example.com", "custom-key",
# "custom-value".
HUFF_WWW = bytes.fromhex("f1e3c2e5f23a6ba0ab90f4ff")
HUFF_KEY = bytes.fromhex("25a849e95ba97d7f")
HUFF_VALUE = bytes.fromhex("25a849e95bb8e8b4bf")


def hx(s):
    return bytes.fromhex(s.replace(" ", ""))


def qpack_piece(encoder, data, number):
    """A piece of the `qpack` input: encoder-stream bytes cut at `number` (mod their
    length + 1) in the second decoder, or a section decoded with a list limit of
    `number` * 64 bytes."""
    return bytes([number << 1 | (1 if encoder else 0)]) + data


def h3_event(stream, server, what, data=b"", piece=0, extra=None):
    """An event of the `http3` input: control byte, then the delta (what 4) or the
    byte of what 5-7, then a length, the split run's piece size and the bytes."""
    out = bytes([what << 5 | (0x10 if server else 0) | stream])
    if extra is not None:
        out += bytes([extra & 0xFF])
    if what > 4:
        return out
    length = bytes([len(data)]) if len(data) < 0xFF else b"\xff" + struct.pack(">H", len(data))
    return out + length + bytes([piece]) + data


def h3_stream(stream, server, data, piece=0, fin=True, chunk=200):
    """A stream's bytes as consecutive events of at most `chunk` bytes, FIN on the last."""
    events = b""
    for i in range(0, max(len(data), 1), chunk):
        last = i + chunk >= len(data)
        events += h3_event(stream, server, 3 if fin and last else 0, data[i:i + chunk], piece)
    return events


def h3_seeds():
    """`qpack`: RFC 9204 Appendix B's encoder stream and sections, in order, blocked
    first, and with Huffman strings; `http3`: a request and its response on stream 0
    with both sides' control (SETTINGS) and encoder streams, a blocked request, a
    gap, a reset and a close."""
    # Byte 0: the cap (16 * 14 = 224 bytes); byte 1: the announced 220 (4 * 55).
    head = bytes([14, 55])
    sep = b"\xfe\xfd"
    appendix_b = [
        qpack_piece(False, hx(B1_SECTION), 64),
        qpack_piece(True, hx(B2_ENCODER), 5),
        qpack_piece(False, hx(B2_SECTION), 64),
        qpack_piece(True, hx(B3_ENCODER), 3),
        qpack_piece(True, hx(B4_ENCODER), 0),
        qpack_piece(False, hx(B4_SECTION), 64),
        qpack_piece(True, hx(B5_ENCODER), 9),
        qpack_piece(False, hx(B5_SECTION), 64),
        qpack_piece(False, hx("0600 84"), 64),  # the evicted entry 0
    ]
    write("qpack", "appendix-b", head + sep.join(appendix_b))
    # The sections before the inserts they need: blocked, then decoded.
    write("qpack", "appendix-b-blocked", head + sep.join([
        qpack_piece(False, hx(B2_SECTION), 1),
        qpack_piece(False, hx(B4_SECTION), 2),
        qpack_piece(True, hx(B2_ENCODER) + hx(B3_ENCODER), 20),
        qpack_piece(True, hx(B4_ENCODER) + hx(B5_ENCODER), 1),
    ]))
    huffman = (hx("3fbd01") + b"\xc0" + qp_int(0x80, 7, len(HUFF_WWW)) + HUFF_WWW
               + qp_int(0x60, 5, len(HUFF_KEY)) + HUFF_KEY + qp_int(0x80, 7, len(HUFF_VALUE))
               + HUFF_VALUE)
    # Required Insert Count 2, Base 2: relative 1 and 0, a never-indexed literal with a
    # literal name, a literal with a static name; then post-base references from Base 0.
    section = (b"\x03\x00\x81\x80" + qp_str(0x30, 3, b"x-secret") + qp_str(0, 7, b"v")
               + b"\x5f\x1d" + qp_str(0, 7, b"text/plain"))
    write("qpack", "huffman", head + sep.join([
        qpack_piece(True, huffman, 7),
        qpack_piece(False, section, 3),
        qpack_piece(False, b"\x03\x81\x10\x11", 64),
    ]))

    # http3: uni stream ids 2, 6 (client) and 3, 7 (server); request streams 0, 4.
    def control(capacity):
        return quic_varint(0) + h3_frame(4, quic_varint(1) + quic_varint(capacity))

    def encoder(stream):
        return quic_varint(2) + stream

    request = h3_frame(1, hx(B2_SECTION) + b"\xd1" + qp_str(0x20, 3, b"x-device-id")
                       + qp_str(0, 7, b"cafe-0001")) + h3_frame(0, b'{"imei":"' + IMEI.encode() + b'"}')
    response = (h3_frame(1, b"\x00\x00\xd9") + h3_frame(0x21, b"grease")
                + h3_frame(0, b"ok") + h3_frame(1, b"\x00\x00" + qp_str(0x20, 3, b"x-trailer") + b"\x01t"))
    settings_first = (h3_stream(2, False, control(220), fin=False)
                      + h3_stream(3, True, control(220), fin=False)
                      + h3_stream(6, False, encoder(hx(B2_ENCODER)), piece=3, fin=False))
    write("http3", "request-response", settings_first
          + h3_stream(0, False, request, piece=7) + h3_stream(0, True, response, piece=5))
    # The request's HEADERS before the inserts it needs: blocked until the encoder
    # stream comes, its type varint cut from its instructions.
    blocked = h3_frame(1, hx(B4_SECTION) + b"\xd1") + h3_frame(0, b"body")
    write("http3", "blocked", h3_stream(3, True, control(220), fin=False)
          + h3_stream(4, False, blocked, piece=2) + h3_stream(4, True, h3_frame(1, b"\x00\x00\xd9"))
          + h3_event(6, False, 0, b"\x02", 1)
          + h3_event(6, False, 0, hx(B2_ENCODER) + hx(B3_ENCODER) + hx(B4_ENCODER), 4)
          + h3_event(3, True, 7, extra=0))
    write("http3", "gap-reset-close", settings_first
          + h3_event(0, False, 0, request[:20], 4) + h3_event(0, False, 5, extra=9)
          + h3_event(0, False, 3, request[30:], 3)
          + h3_stream(4, False, request, fin=False) + h3_event(4, True, 6, extra=0x0C)
          + h3_stream(8, False, request, fin=False) + h3_event(8, False, 4, request[:9], 2, extra=-3)
          + h3_stream(1, True, b"\x00\x00") + h3_event(12, False, 0, request)
          + h3_event(0, True, 7, extra=0x81))
    # A WebSocket over HTTP/3 (RFC 9220): extended CONNECT, masked frames in DATA.
    connect = b"\x00\x00" + b"".join(qp_str(0x20, 3, n) + qp_str(0, 7, v) for n, v in [
        (b":method", b"CONNECT"), (b":protocol", b"websocket"), (b":scheme", b"https"),
        (b":authority", b"ws.example"), (b":path", b"/ws")])
    frames = ws_frame(1, b'{"imei":"' + IMEI.encode() + b'"}', fin=False) + ws_frame(0, b"")
    ws = h3_frame(1, connect) + h3_frame(0, frames[:7]) + h3_frame(0, frames[7:])
    write("http3", "websocket", settings_first + h3_stream(0, False, ws, piece=5)
          + h3_stream(0, True, h3_frame(1, b"\x00\x00\xd9")))


def quic_stream(stream, offset, data, fin=False):
    """A STREAM frame with offset and length (RFC 9000 19.8)."""
    return (bytes([0x0E | (1 if fin else 0)]) + quic_varint(stream) + quic_varint(offset)
            + quic_varint(len(data)) + data)


def qc_server_hello(suite):
    """A TLS 1.3 ServerHello naming `suite`, in a CRYPTO frame at offset 0."""
    body = b"\x03\x03" + b"\x7a" * 32 + b"\x00" + struct.pack(">H", suite) + b"\x00"
    body += b"\x00\x06\x00\x2b\x00\x02\x03\x04"
    msg = b"\x02" + len(body).to_bytes(3, "big") + body
    return b"\x06\x00" + quic_varint(len(msg)) + msg


# Piece kinds of the `quic_conn` sealed mode (see quic_conn in fuzz/src/lib.rs).
QC_C1RTT, QC_S1RTT, QC_0RTT, QC_SINITIAL, QC_CHS, QC_SHS, QC_CINITIAL, QC_RETRY = range(8)


def qc_piece(kind, frames, pn=0, pn_len=1, updates=0, join=False, cid=0, broken=False,
             flush=False, flip=False, pad=False, twice=False):
    """A sealed-mode piece of `quic_conn`: three header bytes (kind, packet number
    length, key updates, coalescing; packet number delta; connection ID choice and
    flags), then the frames the target seals."""
    h0 = kind | (pn_len - 1) << 3 | updates << 5 | (0x80 if join else 0)
    h2 = (cid | broken << 3 | flush << 4 | flip << 5 | pad << 6 | twice << 7)
    return bytes([h0, pn & 0xFF, h2]) + frames


def first_certificate_der(stream):
    """The first certificate of the first TLS 1.2 Certificate message in a server's
    stream of TLS records."""
    hs, i = b"", 0
    while i + 5 <= len(stream):
        n = struct.unpack(">H", stream[i + 3:i + 5])[0]
        if stream[i] == 22:
            hs += stream[i + 5:i + 5 + n]
        i += 5 + n
    i = 0
    while i + 4 <= len(hs):
        n = int.from_bytes(hs[i + 1:i + 4], "big")
        if hs[i] == 11:
            body = hs[i + 4:i + 4 + n]
            der_len = int.from_bytes(body[3:6], "big")
            return body[6:6 + der_len]
        i += 4 + n
    raise ValueError("no Certificate message")


def quic_crypto(offset, data):
    """A CRYPTO frame (RFC 9000 19.6)."""
    return b"\x06" + quic_varint(offset) + quic_varint(len(data)) + data


def qc_input(config, pieces):
    for p in pieces:
        assert b"\xfe\xfd" not in p, p
    return bytes([config]) + b"\xfe\xfd".join(pieces)


def quic_conn_seeds():
    """`quic_conn`: frame sequences of a connection the target seals (a request and
    its response with SETTINGS, ACK, NEW_CONNECTION_ID and CONNECTION_CLOSE; 0-RTT
    coalesced with 1-RTT and key updates; streams out of order past the limits with
    resets and flushes; a Retry and the server's Initial in v2; every frame type), and
    raw datagrams the reader must skip."""
    sealed, hello = 0x01, 0x08
    aes128, aes256, chacha, unsupported = 0 << 1, 1 << 1, 2 << 1, 3 << 1
    v2, other_version = 0x10, 0x20
    settings = quic_varint(0) + h3_frame(4, quic_varint(1) + quic_varint(220))
    request = h3_frame(1, hx(B1_SECTION)) + h3_frame(0, b'{"imei":"' + IMEI.encode() + b'"}')
    response = h3_frame(1, b"\x00\x00\xd9") + h3_frame(0, b"ok")
    ack = b"\x02\x03\x00\x00\x03"
    ncid = b"\x18\x01\x00\x08" + b"\xab" * 8 + b"\xcd" * 16
    close = b"\x1d\x00\x00"
    der = first_certificate_der(server_stream(os.path.join(ROOT, "captures", "tls", "openssl.pcap")))
    entry = len(der).to_bytes(3, "big") + der + b"\x00\x00"
    certificate = b"\x00" + len(entry).to_bytes(3, "big") + entry
    tls13_flight = (b"\x08\x00\x00\x02\x00\x00"
                    + b"\x0b" + len(certificate).to_bytes(3, "big") + certificate)
    seeds = {
        "request-response": qc_input(sealed | hello | aes128, [
            qc_piece(QC_C1RTT, quic_stream(2, 0, settings) + quic_stream(0, 0, request, True)),
            qc_piece(QC_S1RTT, ack + quic_stream(3, 0, settings) + ncid),
            qc_piece(QC_S1RTT, quic_stream(0, 0, response, True)),
            # To the server's new 8-byte connection ID (choice 4).
            qc_piece(QC_C1RTT, ack + close, cid=4),
        ]),
        "zero-rtt-key-updates": qc_input(sealed | hello | chacha, [
            qc_piece(QC_0RTT, quic_stream(0, 0, request[:10]), pn_len=2),
            qc_piece(QC_C1RTT, quic_stream(0, 10, request[10:], True), join=True),
            qc_piece(QC_S1RTT, quic_stream(0, 0, response, True), updates=1),
            qc_piece(QC_C1RTT, quic_stream(4, 0, request, True), updates=1, pn_len=4),
            # A late packet of the previous phase, then the next phase.
            qc_piece(QC_C1RTT, b"\x01", pn=0xFE),
            qc_piece(QC_C1RTT, close, updates=2, pn=3),
        ]),
        "out-of-order-limits": qc_input(sealed | aes128, [
            qc_piece(QC_C1RTT, quic_stream(0, 10, b"0123456789") + quic_stream(0, 30, b"x" * 5)),
            qc_piece(QC_C1RTT, b"".join(quic_stream(4 * i, 3, b"y" * 200) for i in range(1, 10))),
            qc_piece(QC_C1RTT, b"".join(quic_stream(8, 205 + 2 * i, b"z") for i in range(20)),
                     flush=True),
            qc_piece(QC_C1RTT, quic_stream(0, 0, b"abcdefghij") + b"\x04\x04\x00\x05"),
            qc_piece(QC_S1RTT, quic_stream(0, 0, response, True) + b"\x04\x00\x10\x00", twice=True),
        ]),
        "retry-v2": qc_input(sealed | aes256 | v2, [
            qc_piece(QC_RETRY, b"token", cid=4),
            qc_piece(QC_SINITIAL, ack + qc_server_hello(0x1302), cid=4, pn_len=2),
            qc_piece(QC_SHS, b"\x06\x00\x04cert", join=True, cid=4, pad=True),
            qc_piece(QC_CINITIAL, ack, pn_len=4),
            qc_piece(QC_CHS, b"\x06\x00\x03fin", join=True, cid=4),
            qc_piece(QC_C1RTT, quic_stream(0, 0, request, True), join=True, cid=4),
            qc_piece(QC_S1RTT, b"\x1e" + quic_stream(0, 0, response, True)),
        ]),
        # The server's TLS 1.3 flight in two Handshake packets, the later first: an
        # EncryptedExtensions and a Certificate holding openssl.pcap's certificate.
        "server-certificate": qc_input(sealed | hello | aes128, [
            qc_piece(QC_SHS, quic_crypto(400, tls13_flight[400:]), pn=1),
            qc_piece(QC_SHS, quic_crypto(0, tls13_flight[:400]), pn=0xFE),
            qc_piece(QC_S1RTT, quic_stream(0, 0, response, True)),
        ]),
        "negotiated-version": qc_input(sealed | hello | other_version, [
            qc_piece(QC_0RTT, quic_stream(0, 0, request, True)),
            qc_piece(QC_S1RTT, quic_stream(0, 0, response, True), broken=True),
            qc_piece(QC_S1RTT, quic_stream(0, 0, response, True), pn=0xFF),
        ]),
        "unsupported-suite": qc_input(sealed | hello | unsupported, [
            qc_piece(QC_0RTT, quic_stream(0, 0, request, True)),
            qc_piece(QC_C1RTT, close),
        ]),
        "every-frame": qc_input(sealed | hello, [qc_piece(QC_S1RTT,
            b"\x00\x00\x01" + b"\x02\x40\x64\x05\x02\x01\x03\x04\x01\x00"
            + b"\x03\x10\x00\x00\x00\x01\x02\x03" + b"\x04\x05\x11\x20" + b"\x05\x00\x11"
            + b"\x06\x00\x06ticket" + b"\x07\x03\x01\x02\x03" + b"\x10\x44\x00"
            + b"\x11\x00\x50\x00" + b"\x12\x10\x13\x03" + b"\x14\x01\x15\x00\x01\x16\x01\x17\x01"
            + ncid + b"\x19\x00" + b"\x1a" + bytes(range(1, 9)) + b"\x1b" + bytes(range(8, 0, -1))
            + b"\x31\x02\xde\xad" + b"\x1e" + quic_stream(3, 0, b"\x00\x04\x00")
            + b"\x0d\x07\x02to the end")]),
        "pn-jumps": qc_input(sealed | hello, [
            qc_piece(QC_C1RTT, quic_stream(0, 0, b"a"), pn_len=4),
            # The farthest ahead each length reads (0x80), then back and forth.
            qc_piece(QC_C1RTT, quic_stream(0, 1, b"b"), pn=0x80, pn_len=2),
            qc_piece(QC_C1RTT, quic_stream(0, 2, b"c"), pn=0x80, pn_len=4),
            qc_piece(QC_C1RTT, quic_stream(0, 3, b"d"), pn=0x7F, pn_len=1),
            qc_piece(QC_C1RTT, quic_stream(0, 4, b"e", True), pn=0x81, pn_len=1),
        ]),
        # Raw datagrams: Version Negotiation, a Retry, a 0-RTT header longer than its
        # datagram, a short header that does not authenticate.
        "raw-datagrams": qc_input(hello, [
            b"\x00\x80\x00\x00\x00\x00\x04\xc1\xc1\xc1\xc1\x00\x00\x00\x00\x01",
            b"\x00\xf0\x00\x00\x00\x01\x04\xc1\xc1\xc1\xc1\x08" + b"\x3e" * 8 + b"tok" + b"\x11" * 16,
            b"\x01\xd0\x00\x00\x00\x01\x08" + b"\x0d" * 8 + b"\x04" + b"\xc1" * 4 + b"\x7f\xff",
            b"\x03\x40" + b"\x5e" * 6 + bytes(range(40)),
        ]),
    }
    return seeds


def unseeded_targets():
    """Seeds of the targets `main` has none for: consent strings (the IAB's TCF v2
    example and the GPP strings of `consent::gpp`'s tests, a US Privacy string),
    request bodies for `pii_stream` (identifiers of `PII_CASE` around the cap) and,
    compressed, for `decoded_tail`, and
    the TLS sample captures for `tls_tap`."""
    for name, text in {
        "tcf": "COvFyGBOvFyGBAbAAAENAPCAAOAAAAAAAAAAAEEUACCKAAA",
        "gpp-tcf": "DBABMA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA",
        "gpp-two": "DBACNYA~CPXxRfAPXxRfAAfKABENB-CgAAAAAAAAAAYgAAAAAAAA~1YNN",
        "usp": "1YNN",
    }.items():
        write("consent", name, text)
    body = ('{"adid":"%s","imei":"%s","email":"%s","pad":"%s"}'
            % (ADID, IMEI, EMAIL, "x" * 200)).encode()
    # Cap 40 bytes (byte 0 × 4): the advertising id straddles it; pieces of 9 bytes.
    write("pii_stream", "straddle", bytes([10, 1]) + body)
    write("pii_stream", "tail", bytes([60, 0]) + b"k" * 300 + body)
    # `decoded_tail`: the body compressed, the identifiers in its tail; byte 0 picks
    # gzip (0), deflate (1), zstd (3) or `deflate, gzip` (6), byte 1 a cap of 16
    # bytes, byte 2 pieces of 9.
    events = b"".join(b'{"ev":"view","n":%d},' % i for i in range(300)) + body
    write("decoded_tail", "gzip", bytes([0, 1, 1]) + gzip.compress(events, mtime=0))
    write("decoded_tail", "zlib", bytes([1, 1, 1]) + zlib.compress(events))
    raw = zlib.compressobj(6, zlib.DEFLATED, -15)
    write("decoded_tail", "raw", bytes([1, 2, 0]) + raw.compress(events) + raw.flush())
    # zstd (byte 0: 3): raw blocks of 4 KiB, and the block bomb past a cap of 16 bytes.
    write("decoded_tail", "zstd", bytes([3, 1, 1]) + zstd_raw(events, 4096))
    write("decoded_tail", "zstd-sequence-bomb", bytes([3, 1, 10]) + zstd_sequence_bomb())
    # Two codings (byte 0: 6, `deflate, gzip`): zlib, then gzip around it.
    write("decoded_tail", "deflate-gzip",
          bytes([6, 1, 1]) + gzip.compress(zlib.compress(events), mtime=0))
    for folder in ("tls", "pcapdroid"):
        d = os.path.join(ROOT, "captures", folder)
        for name in sorted(os.listdir(d)):
            if ".pcap" in name:
                write("tls_tap", name, open(os.path.join(d, name), "rb").read())


if __name__ == "__main__":
    main()
    h2_seeds()
    unseeded_targets()
    ws_seeds()
    h3_seeds()
    for name, data in quic_conn_seeds().items():
        write("quic_conn", name, data)
