#!/usr/bin/env python3
"""Writes captures/gateway/zstdupload.pcap.gz: two zstd-compressed uploads.

The case is gateway/consentry.toml: pixel7 (192.168.60.23) refused at 09:31:00.5, so
everything here, at 2026-11-28T09:55:00Z, is after the refusal. An analytics SDK
uploads event batches to ads.tracker.example (203.0.113.30:80) on one keep-alive
connection (make_upload.py's), each sent with `Content-Encoding: zstd`:

  +0 s  POST /v1/batch, Content-Length: events, larger on the wire than the 8 MiB
        of a body the analysis keeps, and at offset 9 437 200 of the decoded body
        `"adid":"<the advertising id>"`; answered 200.
  +1 s  POST /v1/batch?part=2, Content-Length: 65 KB whose one compressed block
        claims 32 512 matches of 131 074 bytes each (4.2 GB; a block may decode to
        128 KiB at most); answered 200.

The advertising id is not in the bytes on the wire: it lies in the part of the first
body compressed for real. What a correct analyser finds: the advertising id (plain)
shared with ads.tracker.example after the refusal, at that offset of the decoded
body, and a decoding error for the second body, decoded within bounded memory (no
identifier is in it).

The first body is one zstd frame (2 MiB window, no checksum): its first 9 MiB of
events in raw blocks of 128 KiB, then the blocks of `zstd -3 --no-check` over the
rest. Those blocks refer to nothing before them, and raw blocks leave the decoder's
entropy tables and repeat offsets as a frame starts with them, so the joined frame
decodes to the whole batch (checked with `zstd -d`). Needs the zstd tool (1.5.4 made
the committed file; another version may compress the tail to other bytes, with the
same findings). Otherwise standard library only; IP and TCP headers from
captures/pcapkit.py with valid checksums (through make_dhcp.py's helpers), segments
of 65 160 bytes as make_upload.py. Classic pcap, microsecond timestamps, Ethernet,
gzip-compressed (consentry and Wireshark read it as it is).
"""

import os
import struct
import subprocess
from datetime import datetime, timezone

import make_dhcp
from make_gzupload import STORED, batch
from make_upload import AD_ID, MIB, Conn, plant

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = datetime(2026, 11, 28, 9, 55, 0, tzinfo=timezone.utc).timestamp()
SPORT = 50126
# Where the advertising id's value starts in the decoded body (asserted by
# tests/pcap_gateway.rs).
AD_ID_AT = 9_437_200
MAGIC = b"\x28\xb5\x2f\xfd"
BLOCK = 128 * 1024


def block_header(last, kind, size):
    return struct.pack("<I", int(last) | kind << 1 | size << 3)[:3]


def frame_blocks(frame):
    """The blocks of a frame from the zstd tool (one frame, no dictionary, no
    checksum): everything after its header."""
    assert frame[:4] == MAGIC
    fhd = frame[4]
    assert fhd & 0x07 == 0, "a dictionary id or a checksum"
    single = fhd & 0x20
    size_len = [1 if single else 0, 2, 4, 8][fhd >> 6]
    return frame[5 + (0 if single else 1) + size_len:]


def zstd_mixed(plain):
    """One frame: plain[:STORED] in raw blocks, the rest compressed by the zstd tool."""
    tail = subprocess.run(["zstd", "-q", "-c", "-3", "--no-check", "-T1"],
                          input=plain[STORED:], capture_output=True, check=True).stdout
    # Not a single segment, no checksum, no content size; window descriptor 0x58:
    # 2 MiB, what `zstd -3` uses for an input this size.
    out = bytearray(MAGIC + b"\x00\x58")
    for i in range(0, STORED, BLOCK):
        out += block_header(False, 0, BLOCK) + plain[i:i + BLOCK]
    out += frame_blocks(tail)
    out = bytes(out)
    check = subprocess.run(["zstd", "-q", "-d", "-c"], input=out, capture_output=True,
                           check=True).stdout
    assert check == plain
    return out


def sequence_bomb():
    """8 raw bytes, then one compressed block holding 32 512 matches of 131 074 bytes
    (literal lengths, offsets and match lengths RLE-coded: codes 0, 0, 52, every extra
    bit set)."""
    sequences = 0x7F00
    out = bytearray(MAGIC + b"\x00\x38")
    out += block_header(False, 0, 8) + b"A" * 8
    block = bytes([0x00, 0xFF, 0x00, 0x00, 0x54, 0, 0, 52]) + b"\xff" * (2 * sequences) + b"\x01"
    out += block_header(True, 2, len(block)) + block
    return bytes(out)


def main():
    conn = Conn(T0, SPORT)

    adid = b'"adid":"' + AD_ID + b'"'
    plain = plant(batch(3), AD_ID_AT - len(b'"adid":"'), adid)
    first = zstd_mixed(plain)
    assert len(first) > 8 * MIB and AD_ID not in first
    conn.upload(b"POST /v1/batch HTTP/1.1\r\nHost: ads.tracker.example\r\n"
                b"Content-Type: application/json\r\nContent-Encoding: zstd\r\n"
                b"Content-Length: " + str(len(first)).encode() + b"\r\n\r\n", first)

    conn.t = T0 + 1.0
    second = sequence_bomb()
    conn.upload(b"POST /v1/batch?part=2 HTTP/1.1\r\nHost: ads.tracker.example\r\n"
                b"Content-Type: application/json\r\nContent-Encoding: zstd\r\n"
                b"Content-Length: " + str(len(second)).encode() + b"\r\n\r\n", second)

    conn.close()

    path = os.path.join(HERE, "zstdupload.pcap.gz")
    make_dhcp.write_pcap(path, gzipped=True)
    print(f"advertising id at decoded offset {AD_ID_AT}; bodies of {len(first)} and "
          f"{len(second)} bytes on the wire")


if __name__ == "__main__":
    main()
