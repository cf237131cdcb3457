#!/usr/bin/env python3
"""Writes the "wpa3" sample capture of consentry's pcap tap: a test phone joining a
WPA3-Personal lab access point with SAE, and a tablet joining the same network with the
SHA-256 PSK key management of WPA2 (a WPA3 transition-mode network with management frame
protection), captured in monitor mode (radiotap + 802.11) from before their
authentication, so that their handshakes are in the capture: the tablet's traffic opens
with the network's passphrase, the phone's only with the PMK its SAE exchange gave (the
passphrase alone does not give it: SAE's forward secrecy), and a third station's, whose
PMK nobody has, stays closed.

Outputs, next to this script:
  wpa3.pcap       classic pcap (magic 0xA1B2C3D4, little-endian, microseconds, snaplen
                  65535), link type 127 (radiotap).
  consentry.toml  the case: the phone and the tablet, each known only by its Wi-Fi MAC
                  address; the phone's user refuses at +2 s.
  80211_keys      the keys as Wireshark's 802.11 keys file holds them, two lines, no
                  comments: "wpa-psk","<the phone's SAE PMK, 64 hex digits>" then
                  "wpa-pwd","<passphrase>:<ssid>" (neither has ':' or '%', which
                  Wireshark would write as %3a and %25).
  expected.json   per station (phone, tablet, stranger): MAC, IPv4 address, AKM, key
                  descriptor version, the line of the keys file that opens it
                  (in_keys_file: "wpa-psk", "wpa-pwd" or null), PMK, PMKID, PTK, TK, the
                  frames of its SAE exchange and of its 4-way handshake; the GTKs (key id,
                  value, the frames that give them) and IGTKs; the two frames of the group
                  key handshake; every HTTP request (frame, time, host, method, path,
                  identifier types, device, consent state "not-asked" or
                  "after-refusal"); the DNS queries and answers; the frames that must not
                  give packets ("negative": the stranger's, kind "wlan-protected", and
                  the decrypted frames without IP: the two group-addressed ARP requests
                  and the two group key messages, which also count among
                  protected_frames); counts: frames decrypted with the keys of
                  80211_keys, pairwise (protected_frames, per station in
                  pairwise_frames) and group (group_frames), their sum
                  (decrypted_frames), all CCMP frames (all_protected_frames, the
                  stranger's included), 4-way handshakes completed with a given key
                  (handshakes_with_key: 2) and with none (handshakes_no_key: 1, the
                  stranger's).

Story (from 2026-11-29T09:00:00Z): the AP "consentry-lab-wpa3" beacons with an RSN
element offering SAE and PSK-SHA256; the phone authenticates with SAE (commit and
confirm, each both ways), associates asking for SAE with management frame protection
required, and runs the 4-way handshake, which gives it GTK 1 and IGTK 4; the AP sends a
group-addressed ARP request under GTK 1; the phone resolves a tracker and sends it its
advertising id; the AP rekeys the group: the group key handshake with the phone, both
messages inside CCMP-protected QoS data frames of the phone's pairwise key (as every
EAPOL frame after association is in real networks), gives GTK 2 and IGTK 5, and a
second group-addressed ARP request goes out under GTK 2 before any other station has
it; the tablet authenticates (open system), associates asking for PSK-SHA256, runs the
4-way handshake (its message 3 carries GTK 2 and IGTK 5), resolves another tracker and
POSTs it its Android id in a JSON body; a stranger (in no case) joins with SAE and the
same password (its PMK is its own) and exchanges an NTP request and answer with the
router; the phone's user refuses at +2 s; the phone resolves a third tracker and sends
it its IMEI; the stranger's NTP again. Every unicast frame is acknowledged by an ACK;
every protected frame is a QoS data frame; each transmitter counts the packet numbers
of each key from 1.

Byte layouts (IEEE 802.11-2020):
  radiotap        version 0, length 14, present = Flags | Rate | Channel; Flags 0x10:
                  the frame ends with its FCS (CRC-32, little-endian, over the MPDU as
                  transmitted, protected frames included); rate 54 Mb/s; 2437 MHz.
  RSN element     (9.4.2.24) version 1 | group CCMP-128 00-0F-AC:4 | 1 pairwise
                  CCMP-128 | AKM suites | RSN capabilities | PMKID count 0 | group
                  management cipher BIP-CMAC-128 00-0F-AC:6:
                    the AP's (beacons, every M3): 30 1e, 2 AKMs PSK-SHA256 00-0F-AC:6
                    and SAE 00-0F-AC:8, capabilities 0x0080 (MFPC);
                    the phone's and the stranger's (association request, M2): 30 1a,
                    1 AKM SAE, 0x00C0 (MFPC | MFPR);
                    the tablet's: 30 1a, 1 AKM PSK-SHA256, 0x0080 (MFPC).
  SAE             (9.3.3.12, 9.4.1.1, 12.4.7) authentication frames, algorithm 3,
                  status 0: commit, transaction 1: finite cyclic group 19 (16-bit LE) |
                  scalar (32 octets) | element x || y (64), the station's then the
                  AP's; confirm, transaction 2: send-confirm 1 (16-bit LE) | confirm
                  (32), the station's then the AP's. Computed for real on NIST P-256
                  (captures/wpakit.py): the password element PWE by hunting and pecking
                  (12.4.4.2.2) from the network's passphrase and the two MACs; rand and
                  mask of each side from the seeded rng; scalar = (rand + mask) mod r,
                  element = -(mask * PWE) (12.4.5.3); K = rand * (peer scalar * PWE +
                  peer element), keyseed = HMAC-SHA256(32 zero octets, K.x), KCK || PMK =
                  KDF-SHA-256-512(keyseed, "SAE KCK and PMK", (scalar + peer scalar) mod
                  r), PMKID = the first 16 octets of that sum, big-endian (12.4.5.4);
                  confirm = HMAC-SHA256(KCK, send-confirm || scalar || element || peer
                  scalar || peer element) (12.4.5.5). The PMK is what hostapd -d logs as
                  "SAE: PMK"; it depends on the rands, so the passphrase does not give it.
  open system     authentication algorithm 0, transactions 1 and 2, status 0 (tablet).
  association     (9.3.3.6, 9.3.3.7) request: capability 0x0431, listen interval 10,
                  SSID, Supported Rates, the station's RSN element; response: capability
                  0x0411, status 0, AID 1 (phone), 2 (tablet), 3 (stranger) | 0xC000,
                  Supported Rates.
  EAPOL-Key       (12.7.2) LLC/SNAP AA AA 03 00 00 00 88 8E, 802.1X version (2 from the
                  AP, 1 from the stations, as hostapd and wpa_supplicant send them), type
                  3, length; descriptor type 2 (RSN); key information (big-endian) with
                  descriptor version 0 ("AKM-defined", SAE) or 3 (AES-128-CMAC, AES key
                  wrap; PSK-SHA256). The MIC, 16 octets, is AES-128-CMAC(KCK, the 802.1X
                  frame with a zero MIC) (RFC 4493; 12.7.3, table 12-11) in both.
                  4-way handshake (12.7.6), in QoS data frames of TID 7, unprotected;
                  key information for version 0 | version 3:
                    M1 0x0088 | 0x008B Pairwise|ACK, key length 16, replay counter 1,
                       ANonce, key data = PMKID KDE (dd 14 00-0F-AC 04, PMKID): SAE's
                       (phone, stranger) or HMAC-SHA256(PMK, "PMK Name" || AA ||
                       SPA)[:16] (tablet, 12.7.1.3); no MIC;
                    M2 0x0108 | 0x010B Pairwise|MIC, replay counter 1, SNonce, key data =
                       the station's RSN element;
                    M3 0x13C8 | 0x13CB Pairwise|Install|ACK|MIC|Secure|Encrypted, key
                       length 16, replay counter 2, ANonce, key RSC = the GTK's last PN
                       (0 for GTK 1, 1 for GTK 2), key data = AES key wrap (RFC 3394)
                       under the KEK of: the AP's RSN element || GTK KDE (dd 16 00-0F-AC
                       01, key id, reserved 0, 16-octet GTK) || IGTK KDE (dd 1c 00-0F-AC
                       09, key id 4 or 5 as 16-bit LE, IPN 6 octets (0), 16-octet IGTK) ||
                       0xdd 0x00... padding to a multiple of 8 (88 octets, 96 wrapped);
                    M4 0x0308 | 0x030B Pairwise|MIC|Secure, replay counter 2, zero nonce.
                  Group key handshake (12.7.7) with the phone, version 0, each message
                  inside a CCMP-protected QoS data frame (TID 7, key id 0, the phone's
                  TK; A3 the BSSID):
                    group message 1 0x1380 ACK|MIC|Secure|Encrypted, key length 0,
                       replay counter 3, zero nonce, key RSC 0, key data = wrap under the
                       KEK of GTK KDE (key id 2, the new GTK) || IGTK KDE (key id 5, the
                       new IGTK) || padding (56 octets, 64 wrapped);
                    group message 2 0x0300 MIC|Secure, replay counter 3, no key data.
  keys            (12.7.1.7.2, 12.7.1.6.3) AKMs 6 and 8: PTK = KDF-SHA-256-384(PMK,
                  "Pairwise key expansion", min(AA,SPA) || max(AA,SPA) ||
                  min(ANonce,SNonce) || max(ANonce,SNonce)), KDF-SHA-256-n(K, label,
                  context) being HMAC-SHA256(K, i || label || context || n) for i = 1, 2
                  (i and n 16-bit little-endian) concatenated, truncated to n bits; KCK =
                  PTK[0:16], KEK = PTK[16:32], TK = PTK[32:48]; AA = the BSSID, SPA = the
                  station. The tablet's PMK = PBKDF2-HMAC-SHA1(passphrase, SSID, 4096,
                  32) (J.4.1). Nonces, group keys and SAE rands and masks from
                  random.Random(20261129).
  CCMP MPDU       (12.5.3) MAC header with the Protected bit, CCMP header PN0 PN1 00
                  (key id << 6 | 0x20 ExtIV) PN2 PN3 PN4 PN5, ciphertext of LLC/SNAP +
                  payload, 8-octet MIC, FCS; AES-CCM (L = 2, M = 8), nonce = priority
                  (the QoS TID) || A2 || PN5..PN0, AAD as in make_wpa2.py (QoS control
                  reduced to its TID). Pairwise frames: key id 0, TID 0 (the group key
                  messages TID 7, so nonce priority 7). The AP's two group-addressed ARP
                  requests (From DS: A1 broadcast, A2 BSSID, A3 router): QoS control
                  0x0020 (TID 0, Ack Policy No Ack, masked out of the AAD), not
                  acknowledged; key id 1 with GTK 1, key id 2 with GTK 2.

The crypto is captures/wpakit.py's, which checks itself on import: PBKDF2, PRF and
pairwise key derivation against IEEE 802.11's annex J, CCMP against four IEEE 802.11i
test MPDUs, AES key wrap against RFC 3394, AES-CMAC (through cryptography's CMAC)
against RFC 4493 examples 1 to 4, KDF-SHA256 against iwd's unit test vector and SAE
(hunting and pecking, commit, KCK || PMK from KDF-SHA-256-512, PMKID) against the SAE
test vector of annex J.10. The script checks with asserts before writing: the P-256
points; that both sides of each SAE exchange derive the same KCK, PMK and PMKID, and
each PMKID is the first 16 octets of (station's scalar + AP's scalar) mod r; every
EAPOL MIC; the key wraps of the three M3s and of group message 1 (and that each M3
holds the AP's RSN element and the right GTK); each M1's PMKID; each station's PTK
against a second, independent writing of KDF-SHA-256-384 from the nonces read back
from the written frames; and, frame by frame in the written capture, every FCS, and
that every protected frame decrypts to its plaintext with its key and with no other
of the capture's keys (the stranger's with neither the phone's nor the tablet's TK,
no group frame with a TK, no pairwise frame with a GTK); each request carries its
identifiers.

Checked with tshark 4.0.17 (PSK and PWD below stand for
'uat:80211_keys:"wpa-psk","<the first line's hex digits>"' and
'uat:80211_keys:"wpa-pwd","orange giraffe kettle seventeen:consentry-lab-wpa3"'):
  tshark -r wpa3.pcap -o wlan.enable_decryption:TRUE -o PSK -o PWD -Y http.request \\
      -T fields -e frame.number -e wlan.sa -e http.host -e http.request.uri
lists the three requests at the frames of expected.json: 34 (phone, rt.applovin.com),
76 (tablet, api2.amplitude.com) and 121 (phone, sdk.e.qq.com);
  tshark -r wpa3.pcap -o wlan.enable_decryption:TRUE -o PSK -o PWD -Y eapol -T fields \\
      -e frame.number -e wlan.fc.protected -e wlan_rsna_eapol.keydes.msgnr \\
      -e wlan_rsna_eapol.keydes.key_info -e wlan.rsn.ie.gtk_kde.key_id \\
      -e wlan.rsn.ie.gtk_kde.gtk -e wlan.rsn.ie.igtk.kde.keyid
shows the three 4-way handshakes, messages 1 to 4 (0x0088 0x0108 0x13c8 0x0308 for the
phone at 15-21 and the stranger at 98-104, 0x008b 0x010b 0x13cb 0x030b for the tablet
at 58-64) and, decrypted from the phone's protected frames 45 and 47, group messages 1
and 2 (0x1380, 0x0300); it unwraps the key data of the phone's M3 (GTK key id 1, IGTK
key id 4), of group message 1 and of the tablet's M3 (GTK key id 2, IGTK key id 5), and
not the stranger's M3. With -Y wlan.fc.protected==1 -e wlan.analysis.tk
-e wlan.analysis.gtk: of the 38 protected frames, 32 are decrypted with a TK (22 with
the phone's, the two group key messages included, 10 with the tablet's) and 2 with a
GTK (frame 23 with GTK 1, frame 49 with GTK 2, an ARP request each; frame 49 comes
before the tablet's M3, so GTK 2 came from the protected group message 1), while the
stranger's 4 stay "QoS Data" (given the stranger's PMK as a wpa-psk key, they open:
NTP). With PSK alone: 22 + 2 frames, requests 34 and 121; with PWD alone: the tablet's
10, request 76, no group frame (GTK 1 is only in the phone's M3, and frame 49 precedes
the tablet's M3; with -2, frame 49 opens through it); without either, nothing. With
the 80211_keys file in a profile (XDG_CONFIG_HOME=DIR, DIR/wireshark/80211_keys)
instead of -o PSK -o PWD: the same three requests and 32 + 2 frames;
  tshark -r wpa3.pcap -o wlan.enable_decryption:TRUE -o PSK -o PWD \\
      -o wlan.check_checksum:TRUE -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE \\
      -o tcp.check_checksum:TRUE -q -z expert
reports no errors and no warnings (only the chats and notes of TCP connection set-up
and tear-down, and the HTTP request and response lines), every FCS and IP, UDP and TCP
checksum good. tshark dissects the SAE frames as such (group 19, scalar, element,
send-confirm, confirm), the RSN elements' AKMs, MFPC and MFPR bits and BIP cipher, and
the group frames' QoS control as Ack Policy No Ack.
Run: python3 captures/wpa3/make_wpa3.py
"""
import hashlib
import hmac
import json
import os
import random
import struct
import sys
from datetime import datetime, timezone

from cryptography.hazmat.primitives.keywrap import aes_key_wrap

HERE = os.path.dirname(os.path.abspath(__file__))
# captures/pcapkit.py: the packet-building helpers the capture generators share;
# captures/wlankit.py: the 802.11 ones of make_wifi.py, make_wpa2.py, make_wpa3.py and
# make_tkip.py, and their lab network; captures/wpakit.py: the WPA keys, SAE, EAPOL-Key
# frames, CCMP and the protected lab network of make_wpa2.py, make_wpa3.py and
# make_tkip.py (it checks itself against the IEEE test vectors on import).
sys.path.insert(0, os.path.dirname(HERE))
from pcapkit import luhn_ok, mac  # noqa: E402
from wlankit import MAC_ONLY, SNAP_ARP, Capture, arp_request  # noqa: E402
from wpakit import (AKM_PSK_SHA256, AKM_SAE, BIP_CMAC_128, MFPC, MFPR, P256_R,  # noqa: E402
                    Conn, Station as WpaStation, WpaLab, aes_cmac, eapol_key, eapol_mic_ok,
                    element_bytes, gtk_kde, igtk_kde, key_data_of, on_curve, pad_key_data,
                    pmk_of, pmkid_kde, pmkid_of, ptk_of, rsn_element, sae_commit, sae_confirm,
                    sae_keys, sae_pwe, write_80211_keys)

T0 = datetime(2026, 11, 29, 9, 0, 0, tzinfo=timezone.utc)
REFUSAL_S = 2.0

SSID = "consentry-lab-wpa3"
PASSPHRASE = "orange giraffe kettle seventeen"   # the network's, for SAE and for PSK-SHA256
AP_MAC = "02:00:00:00:7c:01"        # the access point (BSSID, the authenticator AA)
ROUTER_MAC = "02:00:00:00:7c:fe"    # the lab's router behind it
ROUTER_IP = "192.168.90.1"
TRACKERS = {"rt.applovin.com": "203.0.113.33", "api2.amplitude.com": "203.0.113.63",
            "sdk.e.qq.com": "203.0.113.53"}

rng = random.Random(20261129)


def rand_bytes(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


def rand_scalar():
    """A number in [2, r) from 32 random bytes."""
    return int.from_bytes(rand_bytes(32), "big") % (P256_R - 2) + 2


class Station(WpaStation):
    """A station of the story (wpakit.Station) with its AKM, key descriptor version and
    RSN element; once its handshake is written, its keys."""

    def __init__(self, name, mac_address, ip, akm, ids, aid, dns_port):
        WpaStation.__init__(self, name, mac_address, ip, ids, aid, dns_port)
        self.akm = akm
        self.version = 0 if akm == AKM_SAE else 3     # key descriptor version
        self.rsn = rsn_element([akm], MFPC | (MFPR if akm == AKM_SAE else 0), BIP_CMAC_128)
        self.sae = None


PHONE = Station("phone", "02:00:00:cc:e3:19", "192.168.90.23", AKM_SAE,
                {"advertising_id": "e7b2c9d4-1f3a-4b5c-8d6e-7f8091a2b3c4",
                 "android_id": "b3d5f7091a2c4e68",
                 "imei": "358764092145738"}, 1, 41071)
TABLET = Station("tablet", "02:00:00:cc:7a:b5", "192.168.90.31", AKM_PSK_SHA256,
                 {"advertising_id": "0c9d8e7f-6a5b-4c3d-9e2f-1a0b9c8d7e6f",
                  "android_id": "6e4c2a0f8d6b4921"}, 2, 39127)
STRANGER = Station("stranger", "02:00:00:55:66:77", "192.168.90.57", AKM_SAE, None, 3,
                   40999)
assert luhn_ok(PHONE.ids["imei"])

# --- 802.11 (radiotap, MAC header, FCS, the lab: wlankit.py; RSN element: wpakit.py) ------
# The AP's RSN element: version 1, group CCMP-128, 1 pairwise CCMP-128, 2 AKMs
# PSK-SHA256 and SAE, capabilities MFPC, PMKID count 0, group management BIP-CMAC-128.
AP_RSN = rsn_element([AKM_PSK_SHA256, AKM_SAE], MFPC, BIP_CMAC_128)
assert AP_RSN.hex() == ("301e" "0100" "000fac04" "0100000fac04" "0200000fac06000fac08" "8000"
                        "0000" "000fac06")
assert PHONE.rsn.hex() == "301a0100000fac040100000fac040100000fac08c0000000000fac06"
assert TABLET.rsn.hex() == "301a0100000fac040100000fac040100000fac0680000000000fac06"
cap = Capture(T0)
# The lab: beacons with the AP's RSN element, TCP ports from 50340 (step 29); requests,
# DNS lookups, negatives and the protected frames (QoS data frames of TID 0 unless said).
lab = WpaLab(cap, SSID, AP_MAC, ROUTER_MAC, ROUTER_IP, TRACKERS, AP_RSN, 0x3344556677,
             (50340, 29, 0x6A000000, 0x1E000000, 9000), refusal_s=REFUSAL_S)


# --- the capture --------------------------------------------------------------------------
def sae(st):
    """SAE authentication (12.4.8): both commits (group 19, scalar, element), then both
    confirms (send-confirm 1, confirm); the PMK and PMKID of the exchange."""
    pwe = sae_pwe(PASSPHRASE.encode(), mac(st.mac), mac(AP_MAC))
    assert on_curve(pwe)
    sides = {}
    for who in ("sta", "ap"):
        rand, mask = rand_scalar(), rand_scalar()
        sides[who] = (rand,) + sae_commit(pwe, rand, mask)
    commit = {who: struct.pack("<H", 19) + s[1].to_bytes(32, "big") + element_bytes(s[2])
              for who, s in sides.items()}
    frames = [lab.auth(st, True, 3, 1, commit["sta"], 0.002),
              lab.auth(st, False, 3, 1, commit["ap"], 0.002)]
    (r_s, s_s, e_s), (r_a, s_a, e_a) = sides["sta"], sides["ap"]
    kck, pmk, pmkid = sae_keys(pwe, r_s, s_s, s_a, e_a)
    assert (kck, pmk, pmkid) == sae_keys(pwe, r_a, s_a, s_s, e_s)   # both sides agree
    confirm_sta = sae_confirm(kck, 1, s_s, e_s, s_a, e_a)
    confirm_ap = sae_confirm(kck, 1, s_a, e_a, s_s, e_s)
    frames += [lab.auth(st, True, 3, 2, struct.pack("<H", 1) + confirm_sta),
               lab.auth(st, False, 3, 2, struct.pack("<H", 1) + confirm_ap, 0.002)]
    st.sae = {"commit": frames[:2], "confirm": frames[2:], "kck": kck.hex(),
              "scalars": [s_s.to_bytes(32, "big").hex(), s_a.to_bytes(32, "big").hex()]}
    return pmk, pmkid


def four_way(st, pmk, pmkid, gtk_id, gtk, igtk_id, igtk, rsc):
    """The 4-way handshake (12.7.6), key descriptor version 0 (SAE) or 3 (PSK-SHA256):
    key information 0x0088, 0x0108, 0x13C8, 0x0308 plus the version; MICs AES-128-CMAC
    with the KCK of the KDF-SHA256 PTK; M3 wraps the AP's RSN element, the GTK and IGTK
    KDEs (key RSC: the GTK's last PN)."""
    anonce, snonce = rand_bytes(32), rand_bytes(32)
    aa, spa = mac(AP_MAC), mac(st.mac)
    st.pmk, st.pmkid = pmk, pmkid
    st.ptk = ptk_of(pmk, aa, spa, anonce, snonce, st.akm)
    st.kck, st.kek, st.tk = st.ptk[0:16], st.ptk[16:32], st.ptk[32:48]
    st.cipher, st.key = "CCMP", st.tk
    v = st.version
    m3_plain = pad_key_data(AP_RSN + gtk_kde(gtk_id, gtk) + igtk_kde(igtk_id, 0, igtk))
    msgs = [eapol_key(2, 0x0088 | v, 16, 1, anonce, pmkid_kde(pmkid)),
            eapol_key(1, 0x0108 | v, 0, 1, snonce, st.rsn, st.kck, mic=aes_cmac),
            eapol_key(2, 0x13C8 | v, 16, 2, anonce, aes_key_wrap(st.kek, m3_plain), st.kck,
                      rsc, mic=aes_cmac),
            eapol_key(1, 0x0308 | v, 0, 2, bytes(32), b"", st.kck, mic=aes_cmac)]
    for m in msgs[1:]:
        assert eapol_mic_ok(st.kck, m, aes_cmac)
    assert key_data_of(st.kek, msgs[2]) == m3_plain
    lab.handshake(st, msgs)
    st.m3 = msgs[2]


def group_arp(target_ip, gtk, keyid, what):
    """The AP's group-addressed ARP request (From DS: A1 broadcast, A2 BSSID, A3 router) in
    a QoS data frame of ack policy No Ack (QoS control 0x0020), protected with the GTK."""
    return lab.group_frame(SNAP_ARP + arp_request(ROUTER_MAC, ROUTER_IP, target_ip), "CCMP",
                           gtk, keyid, what, 0x0020)


STRANGER_WHAT = ("CCMP-protected QoS data frame of the stranger, whose SAE PMK is in no key "
                 "(its handshake is in the capture and matches none): not decrypted")


def stranger_ntp():
    """The stranger's NTP request to the router and the answer, with its pairwise key."""
    lab.ntp(STRANGER, 0x0B00, STRANGER_WHAT)


# The group keys: GTK 1 and IGTK 4 until the rekeying, then GTK 2 and IGTK 5.
GTK1, IGTK4 = rand_bytes(16), rand_bytes(16)

# 1. Beacons.
cap.emit(lab.beacon(), 0.1024)
cap.emit(lab.beacon(), 0.05)
cap.t = 0.2
# 2. The phone: SAE, association, 4-way handshake (version 0).
phone_pmk, phone_pmkid = sae(PHONE)
lab.associate(PHONE, PHONE.rsn)
four_way(PHONE, phone_pmk, phone_pmkid, 1, GTK1, 4, IGTK4, 0)
cap.t = 0.3
# 3. The AP's group-addressed ARP request under GTK 1.
group_arp("192.168.90.40", GTK1, 1,
          "group-addressed CCMP frame of the AP (GTK, key id 1, from the phone's message 3): "
          "decrypted, an ARP request: no IP packet, no error")
cap.t = 0.35
# 4. The phone's first request.
lab.dns(PHONE, 0x3101, "rt.applovin.com")
Conn(lab, PHONE, "rt.applovin.com").exchange(
    "GET", "/v1/ad?format=banner&ifa=%s&os=android" % PHONE.ids["advertising_id"], b"",
    ["advertising_id"])
cap.t = 0.8
cap.emit(lab.beacon(), 0.01)
cap.t = 1.0
# 5. Group key handshake (12.7.7) to the phone, both messages protected with its TK.
GTK2, IGTK5 = rand_bytes(16), rand_bytes(16)
g1_plain = pad_key_data(gtk_kde(2, GTK2) + igtk_kde(5, 0, IGTK5))
G = [eapol_key(2, 0x1380, 0, 3, bytes(32), aes_key_wrap(PHONE.kek, g1_plain), PHONE.kck, 0,
               mic=aes_cmac),
     eapol_key(1, 0x0300, 0, 3, bytes(32), b"", PHONE.kck, mic=aes_cmac)]
for g in G:
    assert eapol_mic_ok(PHONE.kck, g, aes_cmac)
assert key_data_of(PHONE.kek, G[0]) == g1_plain
group_handshake = lab.group_key_handshake(
    PHONE, G, ("group key message 1 (the AP's: GTK key id 2 and IGTK key id 5 wrapped)",
               "group key message 2 (the phone's)"))
cap.t = 1.05
# 6. A group-addressed ARP request under GTK 2.
group_arp("192.168.90.41", GTK2, 2,
          "group-addressed CCMP frame of the AP (GTK, key id 2, from the group key handshake): "
          "decrypted, an ARP request: no IP packet, no error")
cap.t = 1.2
# 7. The tablet: open system authentication, association, 4-way handshake (version 3);
# its message 3 carries GTK 2 (RSC: the one frame sent under it) and IGTK 5.
lab.join(TABLET, TABLET.rsn)
tablet_pmk = pmk_of(PASSPHRASE, SSID)
four_way(TABLET, tablet_pmk, pmkid_of(tablet_pmk, mac(AP_MAC), mac(TABLET.mac), AKM_PSK_SHA256),
         2, GTK2, 5, IGTK5, lab.tsc_next[(AP_MAC, GTK2)] - 1)
cap.t = 1.3
lab.dns(TABLET, 0x4201, "api2.amplitude.com")
Conn(lab, TABLET, "api2.amplitude.com").exchange(
    "POST", "/2/httpapi",
    json.dumps({"api_key": "0123456789abcdeffedcba9876543210",
                "events": [{"event_type": "session_start",
                            "device_id": TABLET.ids["android_id"]}]},
               separators=(",", ":")).encode(),
    ["android_id"])
cap.t = 1.6
# 8. The stranger: SAE with the same password (its PMK is its own), association, 4-way
# handshake (version 0), two protected frames.
stranger_pmk, stranger_pmkid = sae(STRANGER)
lab.associate(STRANGER, STRANGER.rsn)
four_way(STRANGER, stranger_pmk, stranger_pmkid, 2, GTK2, 5, IGTK5,
         lab.tsc_next[(AP_MAC, GTK2)] - 1)
cap.t = 1.75
stranger_ntp()
cap.t = 2.5
cap.emit(lab.beacon(), 0.01)
# 9. After the refusal (+2 s): the phone's request with its IMEI.
cap.t = REFUSAL_S + 1.0
lab.dns(PHONE, 0x3102, "sdk.e.qq.com")
Conn(lab, PHONE, "sdk.e.qq.com").exchange(
    "GET", "/v2/ping?appid=1101152570&imei=%s" % PHONE.ids["imei"], b"", ["imei"])
cap.t = 3.2
stranger_ntp()
cap.emit(lab.beacon())


# --- self-check of the written frames -----------------------------------------------------
# Every FCS; every protected frame opens with its key and with no other: neither station's
# TK the stranger's frames, nor a TK a group frame; the requests' identifiers.
lab.check([("CCMP", k) for k in (PHONE.tk, TABLET.tk, STRANGER.tk, GTK1, GTK2)],
          (PHONE, TABLET))
for st in (PHONE, TABLET, STRANGER):      # the key data of each message 3 and the PMKIDs
    plain = key_data_of(st.kek, st.m3)
    assert plain.startswith(AP_RSN) and (GTK1 if st is PHONE else GTK2) in plain
    m1 = cap.frames[st.handshake[0] - 1][1]
    assert m1[-4 - 16:-4] == st.pmkid
# The SAE PMKID is the first 16 octets of (phone's scalar + AP's scalar) mod r.
for st in (PHONE, STRANGER):
    total = (int(st.sae["scalars"][0], 16) + int(st.sae["scalars"][1], 16)) % P256_R
    assert st.pmkid == total.to_bytes(32, "big")[:16]
# KDF-SHA256-384 of the PTKs against a second, independent writing of 12.7.1.7.2.
for st in (PHONE, TABLET, STRANGER):
    aa, spa = mac(AP_MAC), mac(st.mac)
    # radiotap 14, QoS data header 26, LLC/SNAP 8, then EAPOL: the nonce at 17.
    anonce, snonce = (cap.frames[st.handshake[i] - 1][1][48 + 17:48 + 49] for i in (0, 1))
    context = b"".join(sorted([aa, spa]) + sorted([anonce, snonce]))
    blocks = [hmac.new(st.pmk, i.to_bytes(2, "little") + b"Pairwise key expansion" + context
                       + (384).to_bytes(2, "little"), hashlib.sha256).digest() for i in (1, 2)]
    assert (blocks[0] + blocks[1])[:48] == st.ptk

cap.write_pcap(os.path.join(HERE, "wpa3.pcap"))
lab.write_case(os.path.join(HERE, "consentry.toml"), "wpa3", "make_wpa3.py",
               "wpa3-2026-11-29",
               "Example Shop 5.1 on a test phone and a tablet, WPA3 lab Wi-Fi in monitor mode",
               [(PHONE, MAC_ONLY + "; joins with SAE."),
                (TABLET, "The case's Android tablet, known by its Wi-Fi MAC too; joins with "
                         "PSK-SHA256.")])
write_80211_keys(os.path.join(HERE, "80211_keys"), PASSPHRASE, SSID, [PHONE.pmk])


def station_json(st, keys_file):
    out = {"mac": st.mac, "ip": st.ip, "akm": st.akm, "key_descriptor_version": st.version,
           "in_keys_file": keys_file, "pmk": st.pmk.hex(), "pmkid": st.pmkid.hex(),
           "ptk": st.ptk.hex(), "tk": st.tk.hex(), "handshake": st.handshake}
    if st.sae:
        out["sae"] = {"commit": st.sae["commit"], "confirm": st.sae["confirm"]}
    return out


counts = lab.counts(("phone", "tablet"))
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump({"capture": "wpa3.pcap", "frames": len(cap.frames), "ssid": SSID,
               "bssid": AP_MAC, "passphrase": PASSPHRASE,
               "stations": {"phone": station_json(PHONE, "wpa-psk"),
                            "tablet": station_json(TABLET, "wpa-pwd"),
                            "stranger": station_json(STRANGER, None)},
               "gtks": [{"key_id": 1, "gtk": GTK1.hex(), "given_in": [PHONE.handshake[2]]},
                        {"key_id": 2, "gtk": GTK2.hex(),
                         "given_in": [group_handshake[0], TABLET.handshake[2],
                                      STRANGER.handshake[2]]}],
               "igtks": [{"key_id": 4, "igtk": IGTK4.hex()},
                         {"key_id": 5, "igtk": IGTK5.hex()}],
               "group_key_handshake": group_handshake,
               "requests": lab.requests, "negative": lab.negatives, "dns": lab.dns_log,
               **counts, "handshakes_with_key": 2, "handshakes_no_key": 1},
              f, indent=1)
    f.write("\n")
pairwise = counts["pairwise_frames"]
print("wrote wpa3.pcap (%d frames; decrypted with the keys: %d pairwise (phone %d, tablet %d), "
      "%d group; %d protected in all), consentry.toml, 80211_keys, expected.json (%d requests)"
      % (len(cap.frames), counts["protected_frames"], pairwise["phone"], pairwise["tablet"],
         counts["group_frames"], counts["all_protected_frames"], len(lab.requests)))
