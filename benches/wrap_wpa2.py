#!/usr/bin/env python3
"""Turns a classic Ethernet pcap into the monitor-mode capture of the same traffic on a
WPA2-Personal network: every frame between a device and the gateway becomes a
CCMP-protected QoS data frame (radiotap, 802.11, LLC/SNAP, the frame's payload, FCS),
each device a station of one access point, whose 4-way handshake (with a GTK in message
3) comes just before its first frame; frames from the gateway to a group address go
under the GTK. With `--cipher tkip`, a WPA1 network instead: TKIP-protected frames, the
WPA 4-way handshake (key descriptor 254, version 1, HMAC-MD5 MICs) and the WPA group key
message (the 32-byte TKIP GTK, RC4-encrypted) of each station.

For benchmarks of WPA decryption (README.md, "Packet captures against peer tools"): the
same traffic, in the clear and protected, for consentry and tshark; the findings must
not change. The keys file for `--wlan-keys` (Wireshark's format: one `wpa-pwd` line) is
written beside.

Usage: python3 benches/wrap_wpa2.py [--cipher ccmp|tkip] IN.pcap OUT.pcap KEYS_OUT
The gateway is the MAC address that sends or receives most frames. Streams: memory
stays small whatever the file's size (a few keys per station). Needs the `cryptography`
package (its ARC4 for TKIP's RC4: wpakit's pure-Python RC4 is too slow for large
files); the 802.11 and WPA building blocks are captures/wlankit.py's and
captures/wpakit.py's.
"""

import os
import struct
import sys
import zlib
from collections import Counter

from cryptography.hazmat.decrepit.ciphers.algorithms import ARC4
from cryptography.hazmat.primitives.ciphers import Cipher
from cryptography.hazmat.primitives.ciphers.aead import AESCCM
from cryptography.hazmat.primitives.keywrap import aes_key_wrap

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "captures"))
from wlankit import RADIOTAP, SNAP, beacon_body  # noqa: E402
from wpakit import (AKM_PSK, CCMP_128, DESC_WPA, ccmp_aad_nonce, ccmp_header,  # noqa: E402
                    eapol_key, gtk_kde, hmac_md5, michael, michael_header, pad_key_data,
                    pmk_of, ptk_of, rc4_key_data, rsn_element, tkip_header, tkip_mic_key,
                    tkip_phase1, tkip_phase2, wpa_element)

SSID = "consentry-bench-wpa2"
PASSPHRASE = "consentry bench passphrase"
BSSID = bytes.fromhex("020000005a01")
RSN = rsn_element([AKM_PSK], 0, None, (CCMP_128,), CCMP_128)
WPA = wpa_element()
GTK = bytes(range(0x40, 0x50))
TKIP_GTK = bytes(range(0x40, 0x60))
KEY_IV = bytes(range(0xa0, 0xb0))
PMK = pmk_of(PASSPHRASE, SSID)
LINKTYPE_IEEE802_11_RADIOTAP = 127


def read_frames(path):
    """(header bytes of each record, frame) of a classic little-endian pcap, and its
    global header."""
    f = open(path, "rb")
    header = f.read(24)
    magic, _, _, _, _, _, link = struct.unpack("<IHHiIII", header)
    if magic not in (0xA1B2C3D4, 0xA1B23C4D) or link != 1:
        sys.exit("%s: only little-endian classic pcap of Ethernet (link type 1) is wrapped"
                 % path)
    yield header
    while True:
        record = f.read(16)
        if len(record) < 16:
            return
        caplen = struct.unpack_from("<I", record, 8)[0]
        yield record, f.read(caplen)


class Air:
    """The network being written: per transmitter sequence numbers, per transmitter and
    key packet numbers, the stations' keys."""

    def __init__(self, out, tkip):
        self.out, self.seq, self.pn, self.tks, self.frames = out, Counter(), Counter(), {}, 0
        self.ccm, self.tkip, self.ttak = {}, tkip, {}

    def emit(self, times, mpdu):
        frame = RADIOTAP + mpdu + struct.pack("<I", zlib.crc32(mpdu) & 0xFFFFFFFF)
        self.out.write(struct.pack("<IIII", times[0], times[1], len(frame), len(frame)))
        self.out.write(frame)
        self.frames += 1

    def header(self, fc0, flags, a1, a2, a3, qos=None):
        self.seq[a2] = (self.seq[a2] + 1) & 0xFFF
        return (bytes([fc0, flags]) + struct.pack("<H", 44) + a1 + a2 + a3
                + struct.pack("<H", self.seq[a2] << 4)
                + (struct.pack("<H", qos) if qos is not None else b""))

    def protected(self, times, flags, a1, a2, a3, plaintext, key, key_id):
        h = self.header(0x88, flags | 0x40, a1, a2, a3, 0)
        self.pn[(a2, key)] += 1
        pn = self.pn[(a2, key)]
        if self.tkip:
            self.emit(times, h + self.tkip_body(key, key_id, pn, h, plaintext))
            return
        aad, nonce = ccmp_aad_nonce(h, pn)
        ccm = self.ccm.setdefault(key, AESCCM(key, tag_length=8))
        self.emit(times, h + ccmp_header(pn, key_id) + ccm.encrypt(nonce, plaintext, aad))

    def tkip_body(self, key, key_id, tsc, h, msdu):
        """wpakit.tkip_encrypt with the phase 1 key kept per key, transmitter and IV32,
        and RC4 by `cryptography`."""
        tk, ta = key[:16], h[10:16]
        ttak = self.ttak.get((tk, ta, tsc >> 16))
        if ttak is None:
            ttak = self.ttak[(tk, ta, tsc >> 16)] = tkip_phase1(tk, ta, tsc >> 16)
        plain = msdu + michael(tkip_mic_key(key, h), michael_header(h) + msdu)
        plain += struct.pack("<I", zlib.crc32(plain) & 0xFFFFFFFF)
        seed = tkip_phase2(tk, ttak, tsc & 0xFFFF)
        rc4 = Cipher(ARC4(seed), mode=None).encryptor()
        return tkip_header(tsc, key_id) + rc4.update(plain)

    def join(self, times, station):
        """Open-system authentication is left out; the 4-way handshake gives the TK."""
        if self.tkip:
            self.join_wpa1(times, station)
            return
        anonce = zlib.crc32(station).to_bytes(4, "big") * 8
        snonce = zlib.crc32(station[::-1]).to_bytes(4, "big") * 8
        ptk = ptk_of(PMK, BSSID, station, anonce, snonce)
        kck, kek = ptk[:16], ptk[16:32]
        m3_data = aes_key_wrap(kek, pad_key_data(RSN + gtk_kde(1, GTK)))
        for from_ap, m in ((True, eapol_key(2, 0x008A, 16, 1, anonce)),
                           (False, eapol_key(1, 0x010A, 0, 1, snonce, RSN, kck)),
                           (True, eapol_key(2, 0x13CA, 16, 2, anonce, m3_data, kck)),
                           (False, eapol_key(1, 0x030A, 0, 2, bytes(32), b"", kck))):
            a = (station, BSSID, BSSID) if from_ap else (BSSID, station, BSSID)
            h = self.header(0x88, 0x02 if from_ap else 0x01, *a, 7)
            self.emit(times, h + SNAP + b"\x88\x8e" + m)
        self.tks[station] = ptk[32:48]

    def join_wpa1(self, times, station):
        """WPA1's 4-way handshake (no GTK in message 3), then its group key message 1
        with the TKIP GTK and message 2; the station's key is PTK[32:64]."""
        anonce = zlib.crc32(station).to_bytes(4, "big") * 8
        snonce = zlib.crc32(station[::-1]).to_bytes(4, "big") * 8
        ptk = ptk_of(PMK, BSSID, station, anonce, snonce, length=64)
        kck, kek = ptk[:16], ptk[16:32]
        gtk_data = rc4_key_data(kek, KEY_IV, TKIP_GTK)

        def key(version, info, replay, nonce, data=b"", mic_key=None, iv=bytes(16)):
            return eapol_key(version, info, 32, replay, nonce, data, mic_key, mic=hmac_md5,
                             iv=iv, descriptor=DESC_WPA)
        for from_ap, m in ((True, key(1, 0x0089, 1, anonce)),
                           (False, key(1, 0x0109, 1, snonce, WPA, kck)),
                           (True, key(1, 0x01C9, 2, anonce, WPA, kck)),
                           (False, key(1, 0x0109, 2, bytes(32), b"", kck)),
                           (True, key(1, 0x0391, 3, bytes(32), gtk_data, kck, KEY_IV)),
                           (False, key(1, 0x0311, 3, bytes(32), b"", kck))):
            a = (station, BSSID, BSSID) if from_ap else (BSSID, station, BSSID)
            h = self.header(0x88, 0x02 if from_ap else 0x01, *a, 7)
            self.emit(times, h + SNAP + b"\x88\x8e" + m)
        self.tks[station] = ptk[32:64]


def main():
    args = sys.argv[1:]
    tkip = args[:2] == ["--cipher", "tkip"]
    if args[:2] in (["--cipher", "tkip"], ["--cipher", "ccmp"]):
        args = args[2:]
    if len(args) != 3:
        sys.exit(__doc__.split("\n\n")[2])
    sys.argv[1:] = args
    frames = read_frames(sys.argv[1])
    header = next(frames)
    # The gateway: the address in most frames (a first pass over the addresses only).
    counts = Counter()
    for _, frame in frames:
        counts.update([frame[0:6], frame[6:12]])
    gateway = counts.most_common(1)[0][0]

    frames = read_frames(sys.argv[1])
    next(frames)
    out = open(sys.argv[2], "wb")
    out.write(header[:20] + struct.pack("<I", LINKTYPE_IEEE802_11_RADIOTAP))
    air = Air(out, tkip)
    security = WPA if tkip else RSN
    group_key = TKIP_GTK if tkip else GTK
    skipped = 0
    for i, (record, frame) in enumerate(frames):
        times = struct.unpack_from("<II", record)
        if i == 0:
            beacon = beacon_body(0, 0x0411, SSID, [0x82, 0x84, 0x8B, 0x96], 6, security)
            air.emit(times, air.header(0x80, 0, b"\xff" * 6, BSSID, BSSID) + beacon)
        dst, src = frame[0:6], frame[6:12]
        plaintext = SNAP + frame[12:]
        if src == gateway and dst[0] & 1:
            air.protected(times, 0x02, dst, BSSID, src, plaintext, group_key, 1)
            continue
        if gateway not in (src, dst) or src == dst or (src != gateway and src[0] & 1):
            skipped += 1
            continue
        up = src != gateway
        station = src if up else dst
        if station not in air.tks:
            air.join(times, station)
        tk = air.tks[station]
        if up:
            air.protected(times, 0x01, BSSID, station, dst, plaintext, tk, 0)
        else:
            air.protected(times, 0x02, station, BSSID, src, plaintext, tk, 0)
    out.close()
    with open(sys.argv[3], "w") as f:
        f.write('"wpa-pwd","%s:%s"\n' % (PASSPHRASE, SSID))
    print("%s: %d frames, %d stations with their handshakes; %d frames not to or from "
          "the gateway left out; keys in %s"
          % (sys.argv[2], air.frames, len(air.tks), skipped, sys.argv[3]))


if __name__ == "__main__":
    main()
