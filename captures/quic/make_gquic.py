#!/usr/bin/env python3
"""Writes the Google QUIC (gQUIC) sample capture of consentry's pcap tap.

Output, next to this script:
  gquic.pcap   classic pcap (microseconds, Ethernet): the phone of `consentry.toml`
               (make_quic.py's case: pixel7, 192.168.70.23, a refusal of all purposes
               at +10 s) speaking gQUIC, as Chrome, Cronet and Google's SDKs did
               before IETF QUIC.

Story (times from 2026-11-28T11:00:00Z):
  +1 s   Q043 to googleads.g.doubleclick.net: the client's CHLO (public header,
         message authentication hash, a STREAM frame on stream 1 with big-endian
         lengths, the CHLO's tags PAD, SNI, VER, UAID), padded to 1350 bytes; the
         server's REJ; then two opaque packets each way without the version flag.
  +2 s   Q025 to www.example-shop.com (the app's first party): little-endian frame
         lengths and the private flags byte of versions up to Q033.
  +3 s   Q046 to app-measurement.com: the long header of Q046, then Q043's frames.
  +4 s   Q050 to firebaseinstallations.googleapis.com: an Initial packet laid out
         and protected as QUIC v1's but under Q050's own salt, its CHLO in a CRYPTO
         frame (gQUIC's type 0x08); a DNS answer at +3.9 s names the address too.
  +5 s   T051 (gQUIC with TLS) to www.example-shop.com: the same under T051's salt,
         a TLS ClientHello in the CRYPTO frame.
  +6 s   Q050 whose Initial does not authenticate (its last byte flipped): named by
         the DNS answer, as a flow picked up without its handshake would be.
  +10 s  the user refuses all purposes (case file).
  +12 s  Q043 to googleads.g.doubleclick.net again, from another port.
Expected (tests/pcap_quic.rs): one metadata-only exchange per flow, scheme `quic`,
tls.version `gQUIC Q043` / `Q025` / `Q046` / `Q050` / `T051`, named by the server
name of the client's CHLO or ClientHello (the broken Q050 one by DNS);
`tracker-contact-before-consent` for the tracker flows (googleads twice,
app-measurement.com, firebaseinstallations.googleapis.com twice), none for the first
party.

Deterministic (fixed seed). IP and UDP headers from captures/pcapkit.py (every
checksum valid); the Q050 and T051 Initials with make_quic.py's packet protection
(needs the `cryptography` package). Checked with tshark 4.0:
  tshark -r gquic.pcap -Y 'gquic.tag.sni or tls.handshake.type == 1' -T fields \
      -e frame.number -e gquic.version -e gquic.tag.sni -e tls.handshake.extensions_server_name
lists the Q043, Q025, Q046 and Q050 CHLOs and the T051 ClientHello with their server
names; it fails to decrypt the broken Q050 Initial.
Run: python3 captures/quic/make_gquic.py
"""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from pcapkit import dns_message, ipv4_header, mac, udp_datagram  # noqa: E402

sys.path.insert(0, HERE)
import make_quic as mq  # noqa: E402

# gQUIC's IETF-style versions, their Initial salts (as Chromium, Wireshark and nDPI
# have them) and QUIC v1's labels and packet types, taught to make_quic's protection.
Q050, T051 = int.from_bytes(b"Q050", "big"), int.from_bytes(b"T051", "big")
mq.SALT[Q050] = bytes.fromhex("504574efd066fe2f9d945cfcdbd3a7f0d3b56b45")
mq.SALT[T051] = bytes.fromhex("7a4edef4e7ccee5fa4506c19124fc8ccda6e033d")
for v in (Q050, T051):
    mq.LABEL[v] = mq.LABEL[mq.V1]
    mq.TYPE[v] = mq.TYPE[mq.V1]

PHONE, PHONE_MAC = "192.168.70.23", "02:00:00:46:70:17"
GATEWAY, GATEWAY_MAC = "192.168.70.1", "02:00:00:00:00:fe"
UAID = b"Chrome/46.0.2490.80 Linux x86_64"

frames = []


def emit(t, src, dst, sport, dport, payload, up):
    udp = udp_datagram(src, dst, sport, dport, payload)
    ip = ipv4_header(src, dst, 17, len(udp), 0x4100 + len(frames)) + udp
    macs = mac(GATEWAY_MAC) + mac(PHONE_MAC) if up else mac(PHONE_MAC) + mac(GATEWAY_MAC)
    frames.append((t, macs + b"\x08\x00" + ip))


def handshake_message(tag, entries):
    """A QUIC Crypto handshake message: tag, entry count, padding, (tag, end offset)
    pairs, values; all little-endian."""
    out = tag + struct.pack("<HH", len(entries), 0)
    end = 0
    for t, v in entries:
        end += len(v)
        out += t + struct.pack("<I", end)
    return out + b"".join(v for _, v in entries)


def chlo(sni, version):
    return handshake_message(b"CHLO", [
        (b"PAD\x00", b"-" * 64),
        (b"SNI\x00", sni.encode()),
        (b"VER\x00", version),
        (b"UAID", UAID),
    ])


def stream_frame(data, big_endian):
    """A STREAM frame on stream 1 (type 0xa0: data length present, no offset, a
    1-byte stream id)."""
    return b"\xa0\x01" + struct.pack(">H" if big_endian else "<H", len(data)) + data


HASH = bytes(range(0x40, 0x4c))  # the 12-byte message authentication hash (not checked)


def public_packet(cid, version, pn, frames_, with_version=True):
    """A Q024-Q043 packet: flags, 8-byte connection id, version tag, 1-byte packet
    number, hash, private flags up to Q033, frames."""
    number = int(version[2:])
    flags = 0x08 | (0x01 if with_version else 0)
    out = bytes([flags]) + cid + (version if with_version else b"") + bytes([pn]) + HASH
    if number <= 33:
        out += b"\x00"
    return out + frames_


def pad(p, n=1350):
    return p + b"\x00" * (n - len(p))


def opaque(n, seed):
    return bytes((seed * 31 + i * 17) & 0xFF for i in range(n))


def public_connection(t, version, server, sport, sni, seed):
    cid = bytes([seed] * 8)
    big = int(version[2:]) >= 39
    emit(t, PHONE, server, sport, 443, pad(public_packet(cid, version, 1, stream_frame(chlo(sni, version), big))), True)
    rej = handshake_message(b"REJ\x00", [(b"STK\x00", opaque(40, seed)), (b"SNO\x00", opaque(32, seed + 1))])
    emit(t + 0.031, server, PHONE, 443, sport, public_packet(cid, version, 1, stream_frame(rej, big), False), False)
    for i in range(2):
        emit(t + 0.05 + i * 0.02, PHONE, server, sport, 443, bytes([0x08]) + cid + bytes([2 + i]) + opaque(600, seed + i), True)
        emit(t + 0.06 + i * 0.02, server, PHONE, 443, sport, bytes([0x08]) + cid + bytes([2 + i]) + opaque(900, seed + 7 + i), False)


def q046_connection(t, server, sport, sni, seed):
    dcid = bytes([seed] * 8)
    header = b"\xc3Q046\x50" + dcid + struct.pack(">I", 1) + HASH
    emit(t, PHONE, server, sport, 443, pad(header + stream_frame(chlo(sni, b"Q046"), True)), True)
    emit(t + 0.03, server, PHONE, 443, sport, b"\x43" + dcid + opaque(500, seed), False)


def salted_connection(t, version, server, sport, handshake, seed, broken=False):
    """A Q050/T051 flow: the client's Initial (a CRYPTO frame, gQUIC's type 0x08, at
    offset 0 with `handshake`, padded to 1200 bytes), the server's reply, opaque."""
    dcid, scid = bytes([seed] * 8), bytes([seed + 1] * 8)
    keys = mq.initial_keys(version, dcid, b"client in")
    frames_ = b"\x08" + mq.varint(0) + mq.varint(len(handshake)) + handshake
    packet = mq.protect(version, "initial", dcid, scid, 1, frames_, keys, 1200)
    if broken:
        packet = packet[:-1] + bytes([packet[-1] ^ 0xFF])
    emit(t, PHONE, server, sport, 443, packet, True)
    emit(t + 0.03, server, PHONE, 443, sport, b"\x43" + scid + opaque(700, seed + 1), False)


def main():
    public_connection(1.0, b"Q043", "142.250.72.66", 52001, "googleads.g.doubleclick.net", 0x11)
    public_connection(2.0, b"Q025", "198.51.100.20", 52002, "www.example-shop.com", 0x22)
    q046_connection(3.0, "142.250.72.78", 52003, "app-measurement.com", 0x33)
    emit(3.9, PHONE, GATEWAY, 40053, 53, dns_message(0x5301, "firebaseinstallations.googleapis.com"), True)
    emit(3.905, GATEWAY, PHONE, 53, 40053,
         dns_message(0x5301, "firebaseinstallations.googleapis.com", "142.250.72.95"), False)
    firebase = "firebaseinstallations.googleapis.com"
    salted_connection(4.0, Q050, "142.250.72.95", 52004, chlo(firebase, b"Q050"), 0x44)
    salted_connection(5.0, T051, "198.51.100.20", 52006,
                      mq.client_hello("www.example-shop.com", ["h3-T051"]), 0x66)
    salted_connection(6.0, Q050, "142.250.72.95", 52007, chlo(firebase, b"Q050"), 0x77, broken=True)
    public_connection(12.0, b"Q043", "142.250.72.66", 52005, "googleads.g.doubleclick.net", 0x55)

    mq.write_pcap(os.path.join(HERE, "gquic.pcap"), frames)
    print("wrote gquic.pcap: %d frames" % len(frames))


if __name__ == "__main__":
    main()
