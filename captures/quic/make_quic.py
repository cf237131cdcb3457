#!/usr/bin/env python3
"""Writes the QUIC sample capture of consentry's pcap tap (issue 7 item 5).

Outputs, next to this script:
  quic.pcap        classic pcap (microseconds, Ethernet): one test phone's QUIC
                   connections, whose client Initial packets carry the server names.
  consentry.toml   the case: one phone, a refusal of all purposes at +10 s.

Story (times from 2026-11-28T11:00:00Z), phone "pixel7" (192.168.70.23):
  +1 s   QUIC v1 to app-measurement.com: one Initial packet with the whole
         ClientHello; the server answers with its Initial (ServerHello) coalesced
         with an opaque Handshake packet.
  +2 s   Chrome-shaped QUIC v1 to graph.facebook.com: a post-quantum key share
         (X25519MLKEM768) makes the ClientHello 1.4 kB, so it spans two Initial
         packets in two datagrams; its CRYPTO frames are cut in pieces and shuffled
         among PING and PADDING frames (Chrome's "chaos protection").
  +3 s   QUIC v2 (RFC 9369) to www.example-shop.com (the app's first party).
  +4 s   QUIC v1 to api.mixpanel.com: the Initial coalesced with an (opaque) 0-RTT
         packet in one datagram.
  +5 s   UDP to 203.0.113.50:443 that is not QUIC (no server name to be found).
  +10 s  the user refuses all purposes (case file).
  +12 s  QUIC v1 to app-measurement.com again, from another port.
Expected: four exchanges named by their SNI with scheme `quic` plus one `udp`
exchange named by its address; `tracker-contact-before-consent` for the three
contacts with app-measurement.com (x2) and graph.facebook.com and the one with
api.mixpanel.com; none for the first party or the address.

Packets are protected as RFC 9001 §5 prescribes (Initial keys from the client's
DCID, AES-128-GCM, AES header protection), with the `cryptography` package.
Deterministic (fixed seed); all data synthetic. Checked with tshark 4.0:
  tshark -r quic.pcap -Y 'tls.handshake.type == 1' -T fields -e frame.number \
      -e quic.version -e tls.handshake.extensions_server_name
Run: python3 captures/quic/make_quic.py
"""
import hashlib
import hmac
import os
import random
import struct
from datetime import datetime, timezone

from cryptography.hazmat.primitives.ciphers import Cipher, algorithms, modes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = int(datetime(2026, 11, 28, 11, 0, 0, tzinfo=timezone.utc).timestamp())
rng = random.Random(20261128)

V1, V2 = 0x00000001, 0x6B3343CF
SALT = {
    V1: bytes.fromhex("38762cf7f55934b34d179ae6a4c80cadccbb7f0a"),
    V2: bytes.fromhex("0dede3def700a6db819381be6e269dcbf9bd2ed9"),
}
LABEL = {V1: b"quic ", V2: b"quicv2 "}
# Long header type bits per version: Initial, 0-RTT, Handshake (RFC 9369 §3.2).
TYPE = {V1: {"initial": 0, "0rtt": 1, "handshake": 2}, V2: {"initial": 1, "0rtt": 2, "handshake": 3}}

PHONE = "192.168.70.23"
PHONE_MAC = bytes.fromhex("020000467017")
GW_MAC = bytes.fromhex("0200000000fe")


def rand(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


# --- crypto (RFC 5869, RFC 8446 §7.1, RFC 9001 §5) ------------------------------
def hkdf_extract(salt, ikm):
    return hmac.new(salt, ikm, hashlib.sha256).digest()


def hkdf_expand_label(secret, label, length):
    full = b"tls13 " + label
    info = struct.pack("!HB", length, len(full)) + full + b"\x00"
    out, block, i = b"", b"", 1
    while len(out) < length:
        block = hmac.new(secret, block + info + bytes([i]), hashlib.sha256).digest()
        out += block
        i += 1
    return out[:length]


def initial_keys(version, dcid, side):
    initial = hkdf_extract(SALT[version], dcid)
    secret = hkdf_expand_label(initial, side, 32)
    p = LABEL[version]
    return (
        hkdf_expand_label(secret, p + b"key", 16),
        hkdf_expand_label(secret, p + b"iv", 12),
        hkdf_expand_label(secret, p + b"hp", 16),
    )


def varint(v):
    if v < 64:
        return bytes([v])
    if v < 16384:
        return struct.pack("!H", 0x4000 | v)
    return struct.pack("!I", 0x80000000 | v)


def protect(version, kind, dcid, scid, pn, frames, keys, min_payload=0, token=b""):
    """A protected long-header packet (Initial/Handshake/0-RTT) with a 2-byte pn."""
    key, iv, hp = keys
    pn_len = 2
    payload = frames + b"\x00" * max(0, min_payload - len(frames))
    first = 0xC0 | TYPE[version][kind] << 4 | (pn_len - 1)
    header = bytes([first]) + struct.pack("!I", version)
    header += bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid
    if kind == "initial":
        header += varint(len(token)) + token
    header += struct.pack("!H", 0x4000 | (pn_len + len(payload) + 16))
    pn_offset = len(header)
    header += pn.to_bytes(pn_len, "big")
    nonce = bytes(a ^ b for a, b in zip(iv, pn.to_bytes(12, "big")))
    sealed = AESGCM(key).encrypt(nonce, payload, header)
    packet = bytearray(header + sealed)
    sample = bytes(packet[pn_offset + 4 : pn_offset + 20])
    enc = Cipher(algorithms.AES(hp), modes.ECB()).encryptor()
    mask = enc.update(sample) + enc.finalize()
    packet[0] ^= mask[0] & 0x0F
    for i in range(pn_len):
        packet[pn_offset + i] ^= mask[1 + i]
    return bytes(packet)


def opaque_long(version, kind, dcid, scid, n):
    """A long-header packet whose payload nobody without keys can read."""
    first = 0xC0 | TYPE[version][kind] << 4 | 1
    header = bytes([first]) + struct.pack("!I", version)
    header += bytes([len(dcid)]) + dcid + bytes([len(scid)]) + scid
    return header + struct.pack("!H", 0x4000 | n) + rand(n)


# --- TLS messages ------------------------------------------------------------------
def ext(t, data):
    return struct.pack("!HH", t, len(data)) + data


def vec16(b):
    return struct.pack("!H", len(b)) + b


def vec8(b):
    return bytes([len(b)]) + b


def client_hello(sni, alpn, pq=False):
    groups = [0x11EC, 0x001D, 0x0017] if pq else [0x001D, 0x0017]
    shares = b""
    if pq:
        shares += struct.pack("!H", 0x11EC) + vec16(rand(1216))  # X25519MLKEM768
    shares += struct.pack("!H", 0x001D) + vec16(rand(32))
    tp = b"".join(
        varint(i) + vec8(v)
        for i, v in [
            (0x01, varint(30000)),  # max_idle_timeout
            (0x04, varint(15728640)),  # initial_max_data
            (0x08, varint(100)),  # initial_max_streams_bidi
            (0x0F, rand(8)),  # initial_source_connection_id
        ]
    )
    exts = b"".join(
        [
            ext(0x0000, vec16(b"\x00" + vec16(sni.encode()))),
            ext(0x000A, vec16(b"".join(struct.pack("!H", g) for g in groups))),
            ext(0x000D, vec16(bytes.fromhex("040308040401050308050501080606010201"))),
            ext(0x0010, vec16(b"".join(vec8(p.encode()) for p in alpn))),
            ext(0x002B, vec8(bytes.fromhex("0304"))),
            ext(0x002D, vec8(b"\x01")),
            ext(0x0033, vec16(shares)),
            ext(0x0039, tp),  # quic_transport_parameters
        ]
    )
    body = b"\x03\x03" + rand(32) + b"\x00" + vec16(bytes.fromhex("130113021303")) + b"\x01\x00"
    body += vec16(exts)
    return b"\x01" + len(body).to_bytes(3, "big") + body


def server_hello():
    exts = ext(0x002B, bytes.fromhex("0304")) + ext(0x0033, struct.pack("!H", 0x001D) + vec16(rand(32)))
    body = b"\x03\x03" + rand(32) + b"\x00" + bytes.fromhex("1301") + b"\x00" + vec16(exts)
    return b"\x02" + len(body).to_bytes(3, "big") + body


def crypto(offset, data):
    return b"\x06" + varint(offset) + varint(len(data)) + data


# --- frames on the wire ----------------------------------------------------------------
def csum(data):
    if len(data) % 2:
        data += b"\x00"
    s = sum(struct.unpack("!%dH" % (len(data) // 2), data))
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return ~s & 0xFFFF


def ip4(a):
    return bytes(int(x) for x in a.split("."))


ip_id = [0x3000]


def udp_frame(src, sport, dst, dport, payload, up):
    udp_len = 8 + len(payload)
    pseudo = ip4(src) + ip4(dst) + struct.pack("!BBH", 0, 17, udp_len)
    udp = struct.pack("!HHHH", sport, dport, udp_len, 0) + payload
    c = csum(pseudo + udp) or 0xFFFF
    udp = udp[:6] + struct.pack("!H", c) + udp[8:]
    ip_id[0] += 1
    hdr = struct.pack("!BBHHHBBH4s4s", 0x45, 0, 20 + udp_len, ip_id[0], 0x4000, 64, 17, 0, ip4(src), ip4(dst))
    hdr = hdr[:10] + struct.pack("!H", csum(hdr)) + hdr[12:]
    macs = GW_MAC + PHONE_MAC if up else PHONE_MAC + GW_MAC
    return macs + b"\x08\x00" + hdr + udp


frames = []


def emit(t, src, sport, dst, dport, payload, up):
    frames.append((t, udp_frame(src, sport, dst, dport, payload, up)))


def connection(t, version, server_ip, sport, sni, pq=False, coalesce_0rtt=False):
    dcid, scid, server_cid = rand(8), rand(8), rand(8)
    ckeys = initial_keys(version, dcid, b"client in")
    skeys = initial_keys(version, dcid, b"server in")
    hello = client_hello(sni, ["h3"], pq)
    if pq:
        # Two packets; each packet's CRYPTO pieces shuffled among PING and PADDING.
        cut = len(hello) // 2 + 37
        packets = []
        for pn, (lo, hi) in enumerate([(0, cut), (cut, len(hello))]):
            points = sorted(rng.sample(range(lo + 1, hi), 3))
            bounds = [lo] + points + [hi]
            pieces = [crypto(a, hello[a:b]) for a, b in zip(bounds, bounds[1:])]
            pieces += [b"\x01", b"\x00" * 5, b"\x01"]
            rng.shuffle(pieces)
            packets.append(protect(version, "initial", dcid, scid, pn, b"".join(pieces), ckeys, 1200))
        for i, p in enumerate(packets):
            emit(t + i * 0.0002, PHONE, sport, server_ip, 443, p, True)
    else:
        dgram = protect(version, "initial", dcid, scid, 0, crypto(0, hello), ckeys, 0)
        if coalesce_0rtt:
            dgram += opaque_long(version, "0rtt", dcid, scid, 60)
        dgram += b"\x00" * max(0, 1200 - len(dgram))  # datagram padding to 1200 bytes
        emit(t, PHONE, sport, server_ip, 443, dgram, True)
    # The server's Initial (ACK + ServerHello) and an opaque Handshake packet.
    ack = b"\x02" + varint(1 if pq else 0) + b"\x00\x00" + varint(1 if pq else 0)
    sinit = protect(version, "initial", scid, server_cid, 0, ack + crypto(0, server_hello()), skeys)
    shs = opaque_long(version, "handshake", scid, server_cid, 900)
    emit(t + 0.021, server_ip, 443, PHONE, sport, sinit + shs, False)
    # Then 1-RTT packets both ways (short header, opaque).
    emit(t + 0.043, PHONE, sport, server_ip, 443, bytes([0x40 | rng.getrandbits(5)]) + server_cid + rand(40), True)
    emit(t + 0.061, server_ip, 443, PHONE, sport, bytes([0x40 | rng.getrandbits(5)]) + scid + rand(300), False)


CASE = """# Case file of the QUIC sample capture (make_quic.py writes it).
# All identifier values are synthetic.

[case]
id = "quic-2026-11-28"
title = "Example Shop 4.2 over QUIC: server names from Initial packets"
timezone = "Asia/Shanghai"

[app]
name = "Example Shop"
package = "com.example.shop"
first_party = ["example-shop.com"]

[[device]]
id = "pixel7"
addresses = ["192.168.70.23"]
[device.identifiers]
advertising_id = "38400000-8cf0-11bd-b23e-10b96e40000d"
android_id = "9774d56d682e549c"

[[consent]]
device = "pixel7"
at = "2026-11-28T11:00:10Z"
decision = "refused"
note = "tapped Disagree on the privacy dialog (all purposes)"
"""


def write_pcap(path, frames_):
    """A classic pcap (microseconds, Ethernet) of `frames_`, (seconds after T0,
    frame) pairs, in time order."""
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t, data in sorted(frames_, key=lambda fr: fr[0]):
            us = round(t * 1_000_000)
            f.write(struct.pack("<IIII", T0 + us // 1_000_000, us % 1_000_000, len(data), len(data)))
            f.write(data)


def main():
    connection(1.0, V1, "142.250.72.78", 51001, "app-measurement.com")
    connection(2.0, V1, "157.240.1.35", 51002, "graph.facebook.com", pq=True)
    connection(3.0, V2, "198.51.100.20", 51003, "www.example-shop.com")
    connection(4.0, V1, "35.190.25.25", 51004, "api.mixpanel.com", coalesce_0rtt=True)
    emit(5.0, PHONE, 51005, "203.0.113.50", 443, b"\x00\x01" + rand(98), True)
    emit(5.03, "203.0.113.50", 443, PHONE, 51005, b"\x00\x02" + rand(30), False)
    connection(12.0, V1, "142.250.72.78", 51006, "app-measurement.com")

    write_pcap(os.path.join(HERE, "quic.pcap"), frames)
    with open(os.path.join(HERE, "consentry.toml"), "w") as f:
        f.write(CASE)
    print("wrote %d frames" % len(frames))


if __name__ == "__main__":
    main()

