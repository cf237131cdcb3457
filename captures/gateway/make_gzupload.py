#!/usr/bin/env python3
"""Writes captures/gateway/gzupload.pcap.gz: identifiers deep inside two compressed uploads.

The case is gateway/consentry.toml: pixel7 (192.168.60.23) refused at 09:31:00.5, so
everything here, at 2026-11-28T09:50:00Z, is after the refusal. An analytics SDK
uploads event batches to ads.tracker.example (203.0.113.30:80) on one keep-alive
connection (make_upload.py's), each body sent with a Content-Encoding and larger on the wire than the
8 MiB of a body the analysis keeps:

  +0 s  POST /v1/batch, Content-Encoding: gzip, Content-Length: events, and at
        offset 9 437 200 of the decoded body `"adid":"<the advertising id>"`;
        answered 200.
  +1 s  POST /v1/batch?part=2, Content-Encoding: deflate (zlib-wrapped), chunked in
        1 MiB chunks: events, and the MD5 of the IMEI in hex at offset 9 800 000 of
        the decoded body; answered 200.
  +2 s  POST /v1/batch?part=3, Content-Encoding: deflate, gzip (zlib-wrapped, then
        gzipped around that in stored blocks), Content-Length: events, and the IMEI
        at offset 9 600 000 of the body with both codings undone; answered 200.

Neither identifier is in the bytes on the wire, in any form: each lies in the part
of its body compressed for real. What a correct analyser finds: the advertising id
(plain) in the first upload, the IMEI (md5) in the second and the IMEI (plain) in
the third, shared with ads.tracker.example after the refusal, at those offsets of
their decoded bodies.
A search of the bytes as sent finds neither.

The first 9 MiB of each decoded body are sent in deflate's stored blocks (as a
compressor at level 0, or one that finds the data incompressible, writes them: a
valid stream whatever its level), and the rest compressed at level 9 in the same
deflate stream: the bodies are larger than 8 MiB on the wire, yet the capture
gzips small. Segments of 65 160 bytes, as make_upload.py. Deterministic,
standard library only; IP and TCP headers from captures/pcapkit.py with valid
checksums (through make_dhcp.py's helpers). Classic pcap, microsecond timestamps,
Ethernet, gzip-compressed (consentry and Wireshark read it as it is).

The stored part repeats 64 events, a heartbeat batch, so that the capture gzips small;
the compressed part's events all differ.
"""

import hashlib
import os
import struct
import zlib
from datetime import datetime, timezone

import make_dhcp
from make_upload import AD_ID, IMEI, MIB, Conn, plant

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = datetime(2026, 11, 28, 9, 50, 0, tzinfo=timezone.utc).timestamp()
SPORT = 50124
STORED = 9 * MIB
# Where the planted values start in their decoded bodies (printed by the script,
# asserted by tests/pcap_gateway.rs).
AD_ID_AT = 9_437_200
IMEI_MD5_AT = 9_800_000
IMEI_AT = 9_600_000


def events(n, seed, period=None):
    """`n` bytes of an SDK's event batch, nothing personal in it; with a `period`, the
    same `period` events over and over (a heartbeat), which gzip makes small."""
    out, i = [], 0
    size = 0
    while size < n:
        k = i % period if period else i
        e = b'{"ev":"screen_view","seq":%d,"ts":%d,"dur":%d},' % (
            k, 1764323400000 + k * 37, (k * 7919 + seed) % 5003)
        out.append(e)
        size += len(e)
        i += 1
    return b"".join(out)[:n]


def batch(seed):
    """9.5 MiB of events: heartbeats for the stored part, varied ones after it."""
    return events(STORED, seed, period=64) + events(MIB // 2, seed)


def deflate_mixed(plain):
    """Raw deflate of `plain`: its first STORED bytes in stored blocks, the rest
    compressed, one stream (the stored part ends with a sync flush, so the compressed
    blocks start on a byte boundary; they refer to nothing before them)."""
    stored = zlib.compressobj(0, zlib.DEFLATED, -15)
    raw = stored.compress(plain[:STORED]) + stored.flush(zlib.Z_SYNC_FLUSH)
    packed = zlib.compressobj(9, zlib.DEFLATED, -15)
    raw += packed.compress(plain[STORED:]) + packed.flush()
    assert zlib.decompress(raw, -15) == plain
    return raw


def gzip_mixed(plain):
    # No name, no time, OS unknown: the bytes depend on the content only.
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + deflate_mixed(plain)
            + struct.pack("<II", zlib.crc32(plain), len(plain) & 0xFFFFFFFF))


def zlib_mixed(plain):
    return b"\x78\x9c" + deflate_mixed(plain) + struct.pack(">I", zlib.adler32(plain))


def gzip_stored(data):
    """`data` gzipped in stored blocks (level 0), as gzip_mixed without its
    compressed part."""
    stored = zlib.compressobj(0, zlib.DEFLATED, -15)
    raw = stored.compress(data) + stored.flush()
    return (b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x00\xff" + raw
            + struct.pack("<II", zlib.crc32(data), len(data) & 0xFFFFFFFF))


def main():
    conn = Conn(T0, SPORT)

    adid = b'"adid":"' + AD_ID + b'"'
    plain = plant(batch(1), AD_ID_AT - len(b'"adid":"'), adid)
    first = gzip_mixed(plain)
    assert len(first) > 8 * MIB and AD_ID not in first
    assert zlib.decompress(first, 31) == plain
    conn.upload(b"POST /v1/batch HTTP/1.1\r\nHost: ads.tracker.example\r\n"
                b"Content-Type: application/json\r\nContent-Encoding: gzip\r\n"
                b"Content-Length: " + str(len(first)).encode() + b"\r\n\r\n", first)

    conn.t = T0 + 1.0
    md5 = hashlib.md5(IMEI).hexdigest().encode()
    plain = plant(batch(2), IMEI_MD5_AT - len(b'"im":"'), b'"im":"' + md5 + b'"')
    second = zlib_mixed(plain)
    assert len(second) > 8 * MIB and md5 not in second
    assert zlib.decompress(second) == plain
    chunked = b"".join(b"%x\r\n" % len(second[i:i + MIB]) + second[i:i + MIB] + b"\r\n"
                       for i in range(0, len(second), MIB)) + b"0\r\n\r\n"
    conn.upload(b"POST /v1/batch?part=2 HTTP/1.1\r\nHost: ads.tracker.example\r\n"
                b"Content-Type: application/json\r\nContent-Encoding: deflate\r\n"
                b"Transfer-Encoding: chunked\r\n\r\n", chunked)

    conn.t = T0 + 2.0
    plain = plant(batch(3), IMEI_AT - len(b'"imei":"'), b'"imei":"' + IMEI + b'"')
    third = gzip_stored(zlib_mixed(plain))
    assert len(third) > 8 * MIB and IMEI not in third
    assert zlib.decompress(zlib.decompress(third, 31)) == plain
    conn.upload(b"POST /v1/batch?part=3 HTTP/1.1\r\nHost: ads.tracker.example\r\n"
                b"Content-Type: application/json\r\nContent-Encoding: deflate, gzip\r\n"
                b"Content-Length: " + str(len(third)).encode() + b"\r\n\r\n", third)

    conn.close()

    path = os.path.join(HERE, "gzupload.pcap.gz")
    make_dhcp.write_pcap(path, gzipped=True)
    print(f"advertising id at decoded offset {AD_ID_AT}, IMEI MD5 at {IMEI_MD5_AT}, "
          f"IMEI at {IMEI_AT}; bodies of {len(first)}, {len(second)} and {len(third)} "
          f"bytes on the wire")


if __name__ == "__main__":
    main()
