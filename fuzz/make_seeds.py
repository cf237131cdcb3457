#!/usr/bin/env python3
"""Writes the seed corpora of the fuzz targets into fuzz/corpus/<target>/.

fuzz/corpus is git-ignored: run this once before `cargo fuzz run` (see README.md).
Seeds come from the project's own demo capture and case file (synthetic data) and
from small inputs written here; nothing from outside the repository.
"""

import base64
import gzip
import hashlib
import json
import os
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
    seeds["zstd-rle-bomb"] = decode_input(CT_NONE, 4, TE_NONE, 0, "/z", zstd_rle(0x41, 100))
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
    }
    for name, data in pii.items():
        write("pii", name, data)

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


if __name__ == "__main__":
    main()
