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
  +4 s   Q050 to 142.250.72.78, named by a DNS answer at +3.9 s
         (firebaseinstallations.googleapis.com): an Initial packet protected with
         gQUIC's own salt (opaque here: consentry recognises it, reads no name in it).
  +10 s  the user refuses all purposes (case file).
  +12 s  Q043 to googleads.g.doubleclick.net again, from another port.
Expected (tests/pcap_quic.rs): one metadata-only exchange per flow, scheme `quic`,
tls.version `gQUIC Q043` / `Q025` / `Q046` / `Q050`, named by the CHLO's server
name (the Q050 one by DNS); `tracker-contact-before-consent` for the three tracker
flows named by their CHLO and for firebaseinstallations.googleapis.com (Google's
Firebase), none for the first party.

Deterministic, standard library only (IP and UDP headers from captures/pcapkit.py,
every checksum valid). Checked with tshark 4.0:
  tshark -r gquic.pcap -Y gquic -T fields -e frame.number -e gquic.version -e gquic.tag.sni
lists the Q043, Q025 and Q046 CHLOs with their server names; tshark tries Q050's
Initial with gQUIC's salt and says its decryption fails (its payload here is opaque
bytes, not a protected CHLO).
Run: python3 captures/quic/make_gquic.py
"""
import os
import struct
import sys
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))
from pcapkit import dns_message, ipv4_header, mac, udp_datagram  # noqa: E402

T0 = int(datetime(2026, 11, 28, 11, 0, 0, tzinfo=timezone.utc).timestamp())
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


def q050_connection(t, server, sport, seed):
    dcid = bytes([seed] * 8)
    header = b"\xc3Q050" + bytes([8]) + dcid + b"\x00" + b"\x00" + b"\x44\xc8" + struct.pack(">I", 1)
    emit(t, PHONE, server, sport, 443, header + opaque(1350 - len(header), seed), True)
    emit(t + 0.03, server, PHONE, 443, sport, b"\x43" + dcid + opaque(700, seed + 1), False)


def main():
    public_connection(1.0, b"Q043", "142.250.72.66", 52001, "googleads.g.doubleclick.net", 0x11)
    public_connection(2.0, b"Q025", "198.51.100.20", 52002, "www.example-shop.com", 0x22)
    q046_connection(3.0, "142.250.72.78", 52003, "app-measurement.com", 0x33)
    emit(3.9, PHONE, GATEWAY, 40053, 53, dns_message(0x5301, "firebaseinstallations.googleapis.com"), True)
    emit(3.905, GATEWAY, PHONE, 53, 40053,
         dns_message(0x5301, "firebaseinstallations.googleapis.com", "142.250.72.95"), False)
    q050_connection(4.0, "142.250.72.95", 52004, 0x44)
    public_connection(12.0, b"Q043", "142.250.72.66", 52005, "googleads.g.doubleclick.net", 0x55)

    frames.sort(key=lambda f: f[0])
    with open(os.path.join(HERE, "gquic.pcap"), "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t, data in frames:
            us = round(t * 1_000_000)
            f.write(struct.pack("<IIII", T0 + us // 1_000_000, us % 1_000_000, len(data), len(data)))
            f.write(data)
    print("wrote gquic.pcap: %d frames" % len(frames))


if __name__ == "__main__":
    main()
