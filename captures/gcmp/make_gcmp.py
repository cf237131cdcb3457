#!/usr/bin/env python3
"""Writes the "gcmp" sample capture of consentry's pcap tap: a Wi-Fi 6/7 lab access point
whose RSN element offers the ciphers of 802.11ac and later (group GCMP-256; pairwise
GCMP-256, GCMP-128 and CCMP-256; AKMs PSK and PSK-SHA256; management frame protection
capable) in monitor mode (radiotap + 802.11), two phones and a tablet joining it, each
with another pairwise cipher, from before their authentication, so that their handshakes
are in the capture and their traffic can be decrypted with the network's passphrase;
another station, associated before the capture began, stays closed.

Outputs, next to this script:
  gcmp.pcap       classic pcap (magic 0xA1B2C3D4, little-endian, microseconds, snaplen
                  65535), link type 127 (radiotap).
  consentry.toml  the case: the phone, the tablet and the second phone (phone2), each
                  known only by its Wi-Fi MAC address; the phone's user refuses at +2 s.
  80211_keys      the key as Wireshark's 802.11 keys file holds it (one line,
                  "wpa-pwd","<passphrase>:<ssid>"; neither has ':' or '%', which
                  Wireshark would write as %3a and %25).
  expected.json   the PMK; per station (phone, tablet, phone2, stranger): MAC, IPv4
                  address, AKM, key descriptor version, pairwise cipher, the line of the
                  keys file that opens it (in_keys_file: "wpa-pwd" or null), PMKID, PTK,
                  KCK, KEK, TK (32 octets for GCMP-256 and CCMP-256, 16 for GCMP-128), the
                  frames of its 4-way handshake (the stranger's, which has none in the
                  capture: its frames and made-up TK, and as tk_line the same 32 octets,
                  the value of a Wireshark "tk" line that opens its frames); the GTK (key id
                  1, GCMP-256, 32 octets; the frames that give it and the frame sent under
                  it) and the IGTK (key id 4, BIP-GMAC-256, 32 octets); every HTTP request
                  (frame, time, host, method, path, identifier types, device, cipher,
                  consent state "not-asked" or "after-refusal"); the DNS queries and
                  answers; the frames that must not give packets ("negative": the
                  stranger's, kind "wlan-protected", and the group ARP request, decrypted
                  but no IP packet); counts: frames decrypted with the passphrase, pairwise
                  (protected_frames, per station in pairwise_frames) and group
                  (group_frames), their sum (decrypted_frames), all protected frames
                  (all_protected_frames, the stranger's included), 4-way handshakes
                  completed with the given key (handshakes_with_key: 3) and with none
                  (handshakes_no_key: 0).

Story (from 2026-11-30T09:00:00Z): the AP "consentry-lab-gcmp" beacons with its RSN
element; the stranger (in no case) exchanges an NTP request and answer with the router
under its own GCMP-256 key (it has been sending for a while: its PNs are high); the phone
authenticates (open system), associates asking for PSK and GCMP-256 and runs the 4-way
handshake (key descriptor version 2), whose message 3 gives it the GTK and the IGTK; the
AP sends a group-addressed ARP request under the GTK; the phone resolves a tracker and
sends it its advertising id (GET), then POSTs its Android id to another in a JSON body;
the tablet authenticates, associates asking for PSK-SHA256 and CCMP-256, runs the 4-way
handshake (version 3), resolves a third tracker and sends it its IMEI; the second phone
authenticates, associates asking for PSK and GCMP-128, runs the 4-way handshake (version
2) and POSTs its advertising id in a JSON body; the stranger sends another NTP request;
the phone's user refuses at +2 s; the phone sends its IMEI to a fourth tracker. Every
unicast frame is acknowledged by an ACK; every protected frame is a QoS data frame of TID
0 (the group frame's QoS control 0x0020, ack policy No Ack); each transmitter counts the
PNs of each key from 1 (the stranger and the AP's frames to it from where they were).

Byte layouts (IEEE 802.11-2020):
  radiotap        version 0, length 14, present = Flags | Rate | Channel; Flags 0x10:
                  the frame ends with its FCS (CRC-32, little-endian, over the MPDU as
                  transmitted, protected frames included); rate 54 Mb/s; 2437 MHz.
  RSN element     (9.4.2.24) version 1 | group GCMP-256 00-0F-AC:9 | pairwise suites |
                  AKM suites | capabilities 0x0080 (MFPC) | PMKID count 0 | group
                  management cipher BIP-GMAC-256 00-0F-AC:12:
                    the AP's (beacons, every M3): 30 26, 3 pairwise GCMP-256, GCMP-128
                    00-0F-AC:8 and CCMP-256 00-0F-AC:10, 2 AKMs PSK 00-0F-AC:2 and
                    PSK-SHA256 00-0F-AC:6;
                    the stations' (association request, M2): 30 1a, their one pairwise
                    cipher and one AKM: the phone GCMP-256 and PSK, the tablet CCMP-256
                    and PSK-SHA256, phone2 GCMP-128 and PSK.
  association     (9.3.3.6, 9.3.3.7) open system authentication (algorithm 0,
                  transactions 1 and 2, status 0); request: capability 0x0431, listen
                  interval 10, SSID, Supported Rates, the station's RSN element; response:
                  capability 0x0411, status 0, AID 1 (phone), 2 (tablet), 3 (phone2) |
                  0xC000, Supported Rates.
  EAPOL-Key       (12.7.2) LLC/SNAP AA AA 03 00 00 00 88 8E, 802.1X version (2 from the
                  AP, 1 from the stations, as hostapd and wpa_supplicant send them), type
                  3, length; descriptor type 2 (RSN); the 4-way handshake (12.7.6) in QoS
                  data frames of TID 7, unprotected; key information for version 2 |
                  version 3:
                    M1 0x008A | 0x008B Pairwise|ACK, key length = the TK's (32 for
                       GCMP-256 and CCMP-256, 16 for GCMP-128), replay counter 1, ANonce,
                       key data = PMKID KDE (dd 14 00-0F-AC 04, the PMKID: HMAC-SHA1-128
                       (PSK) or HMAC-SHA256-128 (PSK-SHA256) of the PMK over "PMK Name" ||
                       AA || SPA, 12.7.1.3); no MIC;
                    M2 0x010A | 0x010B Pairwise|MIC, replay counter 1, SNonce, key data =
                       the station's RSN element;
                    M3 0x13CA | 0x13CB Pairwise|Install|ACK|MIC|Secure|Encrypted, key
                       length the TK's, replay counter 2, ANonce, key RSC = the GTK's last
                       PN (0 for the phone, 1 for the tablet and phone2), key data = AES
                       key wrap (RFC 3394) under the KEK of: the AP's RSN element || GTK
                       KDE (dd 26 00-0F-AC 01, key id 1, reserved 0, the 32-octet
                       GCMP-256 GTK) || IGTK KDE (dd 2c 00-0F-AC 09, key id 4 as 16-bit
                       LE, IPN 0 (6 octets), the 32-octet BIP-GMAC-256 IGTK) || 0xdd 0x00...
                       padding: 128 octets, 136 wrapped;
                    M4 0x030A | 0x030B Pairwise|MIC|Secure, replay counter 2, zero nonce.
                  The MIC: version 2 HMAC-SHA1(KCK, the 802.1X frame with a zero
                  MIC)[:16]; version 3 AES-128-CMAC(KCK, the same) (RFC 4493).
  keys            (12.7.1.2, 12.7.1.3, 12.7.1.7.2, table 12-8) PMK =
                  PBKDF2-HMAC-SHA1(passphrase, SSID, 4096, 32); PTK = PRF-n (PSK: HMAC-SHA1
                  of label || 0 || data || i, i = 0, 1, ...) or KDF-SHA-256-n (PSK-SHA256:
                  HMAC-SHA256 of i || label || data || n, i = 1, 2, ..., i and n 16-bit
                  LE) of the PMK, "Pairwise key expansion" and min(AA,SPA) || max(AA,SPA)
                  || min(ANonce,SNonce) || max(ANonce,SNonce), n = 512 bits for the
                  256-bit ciphers (the phone's PRF-512, the tablet's KDF-SHA-256-512): KCK
                  0:16, KEK 16:32, TK 32:64; n = 384 for GCMP-128 (phone2's PRF-384): TK
                  32:48. AA = the BSSID, SPA = the station. Nonces, the GTK, the IGTK and
                  the stranger's TK from random.Random(20261201).
  GCMP MPDU       (12.5.5) MAC header with the Protected bit, GCMP header PN0 PN1 00
                  (key id << 6 | 0x20 ExtIV) PN2 PN3 PN4 PN5 (the CCMP header's layout),
                  AES-GCM ciphertext of LLC/SNAP + payload, 16-octet MIC, FCS; nonce = A2
                  || PN5..PN0 (12 octets), AAD as CCMP's (12.5.3.3.3: frame control with
                  the subtype bits, Retry, PwrMgt and MoreData masked, Protected set, Order
                  masked || A1 A2 A3 || sequence control reduced to the fragment number ||
                  QoS control reduced to the TID). GCMP-256 with a 32-octet TK: the phone's
                  frames and the AP's to it (key id 0), the stranger's, the group ARP
                  request (key id 1, the GTK); GCMP-128 with a 16-octet TK: phone2's.
  CCMP-256 MPDU   (12.5.3) the tablet's frames, key id 0: AES-256-CCM (L = 2, M = 16),
                  the 13-octet nonce priority || A2 || PN5..PN0 and the AAD of CCMP-128,
                  16-octet MIC.

The crypto is captures/wpakit.py's, which checks itself on import; for this capture:
GCMP against GCMP test MPDU #2 of IEEE Std 802.11ad-2012 M.11.1 (ciphertext and MIC) and
the GCMP-256 test vector of IEEE P802.11ac/D7.0 M.11.1 (the whole encrypted MPDU),
CCMP-256 against the CCMP-256 test vector of P802.11ac/D7.0 M.6.4 (the whole encrypted
MPDU), as hostapd's wlantest/test_vectors.c carries them; PBKDF2, PRF and the pairwise key
derivation against IEEE 802.11's annex J, KDF-SHA256 against iwd's unit test vector and
annex J.10, AES-CMAC against RFC 4493, AES key wrap against RFC 3394. The script checks
with asserts before writing: every EAPOL MIC (HMAC-SHA1-128 and AES-CMAC); the key wrap
of each M3, which holds the AP's RSN element, the GTK and IGTK KDEs; each M1's PMKID;
each station's PTK against a second, independent writing of PRF-512, PRF-384 and
KDF-SHA-256-512 from the nonces read back from the written frames; and, frame by frame in
the written capture (wpakit.WpaLab.check), every FCS, that every protected frame decrypts
back to its plaintext with its key and with none of the capture's other keys of its
cipher family (GCMP: the phone's, the stranger's and phone2's TKs and the GTK, each as
long as it is; CCMP: the tablet's), each transmitter's PNs running on by one, and the
identifiers of each request.

Checked with tshark 4.0.17 (KEY below stands for
'uat:80211_keys:"wpa-pwd","amber walrus quietly juggles:consentry-lab-gcmp"'):
  tshark -r gcmp.pcap -o wlan.enable_decryption:TRUE -o KEY -Y http.request -T fields \\
      -e frame.number -e wlan.sa -e http.host -e http.request.uri
lists the five requests at the frames of expected.json: 34 (phone, t.appsflyer.com,
GCMP-256), 50 (phone, ulogs.umeng.com, POST, GCMP-256), 87 (tablet, rt.applovin.com,
CCMP-256), 119 (phone2, api2.amplitude.com, POST, GCMP-128) and 138 (phone, sdk.e.qq.com,
after the refusal);
  tshark -r gcmp.pcap -o wlan.enable_decryption:TRUE -o KEY -Y eapol -T fields \\
      -e frame.number -e wlan_rsna_eapol.keydes.msgnr -e wlan_rsna_eapol.keydes.key_info \\
      -e eapol.keydes.key_len -e wlan.rsn.ie.gtk_kde.gtk -e wlan.rsn.ie.igtk.kde.keyid
shows the three 4-way handshakes, messages 1 to 4: the phone's at 15-21 (0x008a 0x010a
0x13ca 0x030a, key length 32), the tablet's at 69-75 (0x008b 0x010b 0x13cb 0x030b, key
length 32), phone2's at 105-111 (0x008a ..., key length 16); it unwraps each M3 to the
32-octet GTK of expected.json and IGTK key id 4;
  tshark -r gcmp.pcap -o wlan.enable_decryption:TRUE -o KEY -Y 'wlan.fc.protected == 1' \\
      -T fields -e frame.number -e wlan.analysis.tk -e wlan.analysis.gtk
of the 48 protected frames, 44 are decrypted with a TK (26 with the phone's 32-octet
GCMP-256 TK, 10 with the tablet's CCMP-256 TK, 8 with phone2's GCMP-128 TK, each the TK
of expected.json) and 1 with the GTK (frame 23, the ARP request, shown as "GCMP
parameters", key index 1), while the stranger's 3 (3, 5, 129) stay "QoS Data";
-Y 'wlan.fc.protected == 1 && llc' counts the same 45; with the 80211_keys file in a
profile (XDG_CONFIG_HOME=DIR, DIR/wireshark/80211_keys) instead of -o KEY, the same five
requests and 45 frames; with only a "tk" line of the stranger's tk_line, its three frames
open; without a key, no frame is decrypted and -Y 'http.request || dns || arp || udp'
lists nothing;
  tshark -r gcmp.pcap -o wlan.enable_decryption:TRUE -o KEY -o wlan.check_checksum:TRUE \\
      -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE -o tcp.check_checksum:TRUE \\
      -q -z expert
reports no errors and no warnings (only the chats and notes of TCP connection set-up and
tear-down, and the HTTP request and response lines); every FCS (148) and IP, UDP and
TCP checksum good, no malformed packet.
Run: python3 captures/gcmp/make_gcmp.py
"""
import hashlib
import hmac
import json
import os
import random
import sys
from datetime import datetime, timezone

from cryptography.hazmat.primitives.keywrap import aes_key_wrap

HERE = os.path.dirname(os.path.abspath(__file__))
# captures/pcapkit.py: the packet-building helpers the capture generators share;
# captures/wlankit.py: the 802.11 ones of make_wifi.py and the WPA captures, and their lab
# network; captures/wpakit.py: the WPA keys, EAPOL-Key frames, CCMP, GCMP and the
# protected lab network of the WPA captures (it checks itself against the IEEE test
# vectors on import).
sys.path.insert(0, os.path.dirname(HERE))
from pcapkit import luhn_ok, mac  # noqa: E402
from wlankit import MAC_ONLY, SNAP_ARP, Capture, arp_request  # noqa: E402
from wpakit import (AKM_PSK, AKM_PSK_SHA256, BIP_GMAC_256, CCMP_256, GCMP_128,  # noqa: E402
                    GCMP_256, MFPC, Conn, Station as WpaStation, WpaLab, aes_cmac, eapol_key,
                    eapol_mic_ok, gtk_kde, hmac_sha1_128, igtk_kde, key_data_of, pad_key_data,
                    pmk_of, pmkid_kde, pmkid_of, ptk_of, rsn_element, write_80211_keys)

T0 = datetime(2026, 11, 30, 9, 0, 0, tzinfo=timezone.utc)
REFUSAL_S = 2.0

SSID = "consentry-lab-gcmp"
PASSPHRASE = "amber walrus quietly juggles"
AP_MAC = "02:00:00:00:9a:01"        # the access point (BSSID, the authenticator AA)
ROUTER_MAC = "02:00:00:00:9a:fe"    # the lab's router behind it
ROUTER_IP = "192.168.92.1"
TRACKERS = {"t.appsflyer.com": "203.0.113.81", "ulogs.umeng.com": "203.0.113.82",
            "rt.applovin.com": "203.0.113.83", "api2.amplitude.com": "203.0.113.84",
            "sdk.e.qq.com": "203.0.113.85"}

rng = random.Random(20261201)


def rand_bytes(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


# Cipher suite type -> (the name wpakit and expected.json give it, TK length).
CIPHERS = {GCMP_256: ("GCMP-256", 32), GCMP_128: ("GCMP-128", 16), CCMP_256: ("CCMP-256", 32)}


class Station(WpaStation):
    """A station of the story (wpakit.Station) with its AKM, pairwise cipher suite, key
    descriptor version (2 for PSK, 3 for PSK-SHA256) and RSN element; once its handshake
    is written, its keys."""

    def __init__(self, name, mac_address, ip, akm, pairwise, ids, aid, dns_port):
        WpaStation.__init__(self, name, mac_address, ip, ids, aid, dns_port)
        self.akm, self.pairwise = akm, pairwise
        self.cipher, self.tk_len = CIPHERS[pairwise]
        self.version = 2 if akm == AKM_PSK else 3
        self.rsn = rsn_element([akm], MFPC, BIP_GMAC_256, pairwise=(pairwise,), group=GCMP_256)


PHONE = Station("phone", "02:00:00:ee:5b:21", "192.168.92.23", AKM_PSK, GCMP_256,
                {"advertising_id": "5d8c2a91-7e4b-4f06-b3a2-9c1e8d7f6a54",
                 "android_id": "e1c3a5f7092b4d68",
                 "imei": "358912064173523"}, 1, 41123)
TABLET = Station("tablet", "02:00:00:ee:c4:3a", "192.168.92.31", AKM_PSK_SHA256, CCMP_256,
                 {"advertising_id": "a4f0c6e2-1b3d-4a5c-9e7f-0d2b4c6e8a1f",
                  "android_id": "3b5d7f91a2c4e608",
                  "imei": "867315042291843"}, 2, 38311)
PHONE2 = Station("phone2", "02:00:00:ee:71:4d", "192.168.92.27", AKM_PSK, GCMP_128,
                 {"advertising_id": "0f9e8d7c-6b5a-4493-8271-a6b5c4d3e2f1",
                  "android_id": "7a9c1e3f5b2d4068"}, 3, 40233)
STRANGER = Station("stranger", "02:00:00:77:88:99", "192.168.92.57", AKM_PSK, GCMP_256, None,
                   4, 40999)
assert luhn_ok(PHONE.ids["imei"]) and luhn_ok(TABLET.ids["imei"])

# --- 802.11 (radiotap, MAC header, FCS, the lab: wlankit.py; RSN element: wpakit.py) ------
# The AP's RSN element: version 1, group GCMP-256, 3 pairwise GCMP-256, GCMP-128 and
# CCMP-256, 2 AKMs PSK and PSK-SHA256, capabilities MFPC, PMKID count 0, group management
# BIP-GMAC-256.
AP_RSN = rsn_element([AKM_PSK, AKM_PSK_SHA256], MFPC, BIP_GMAC_256,
                     pairwise=(GCMP_256, GCMP_128, CCMP_256), group=GCMP_256)
assert AP_RSN.hex() == ("3026" "0100" "000fac09" "0300000fac09000fac08000fac0a"
                        "0200000fac02000fac06" "8000" "0000" "000fac0c")
assert PHONE.rsn.hex() == "301a0100000fac090100000fac090100000fac0280000000000fac0c"
assert TABLET.rsn.hex() == "301a0100000fac090100000fac0a0100000fac0680000000000fac0c"
assert PHONE2.rsn.hex() == "301a0100000fac090100000fac080100000fac0280000000000fac0c"
cap = Capture(T0)
# The lab: beacons with the AP's RSN element, TCP ports from 50610 (step 37); requests
# (with the station's pairwise cipher), DNS lookups, negatives and the protected frames
# (QoS data frames of TID 0 unless said).
lab = WpaLab(cap, SSID, AP_MAC, ROUTER_MAC, ROUTER_IP, TRACKERS, AP_RSN, 0x5566778899,
             (50610, 37, 0x4D000000, 0x2B000000, 12000), refusal_s=REFUSAL_S,
             request_cipher=True)


# --- the capture --------------------------------------------------------------------------
def four_way(st, pmk, gtk, igtk, rsc):
    """The 4-way handshake (12.7.6), key descriptor version 2 (HMAC-SHA1-128 MICs; PSK,
    PRF) or 3 (AES-128-CMAC MICs; PSK-SHA256, KDF-SHA-256): key information 0x0088,
    0x0108, 0x13C8, 0x0308 plus the version; key length (M1, M3) the TK's; M1 the PMKID
    KDE; M3 wraps the AP's RSN element, the GTK KDE (key id 1) and the IGTK KDE (key id
    4, IPN 0) (key RSC: the GTK's last PN)."""
    anonce, snonce = rand_bytes(32), rand_bytes(32)
    aa, spa = mac(AP_MAC), mac(st.mac)
    st.pmk, st.pmkid = pmk, pmkid_of(pmk, aa, spa, st.akm)
    st.ptk = ptk_of(pmk, aa, spa, anonce, snonce, st.akm, 32 + st.tk_len)
    st.kck, st.kek, st.key = st.ptk[0:16], st.ptk[16:32], st.ptk[32:]
    v, mic = st.version, (hmac_sha1_128 if st.version == 2 else aes_cmac)
    m3_plain = pad_key_data(AP_RSN + gtk_kde(1, gtk) + igtk_kde(4, 0, igtk))
    msgs = [eapol_key(2, 0x0088 | v, st.tk_len, 1, anonce, pmkid_kde(st.pmkid)),
            eapol_key(1, 0x0108 | v, 0, 1, snonce, st.rsn, st.kck, mic=mic),
            eapol_key(2, 0x13C8 | v, st.tk_len, 2, anonce, aes_key_wrap(st.kek, m3_plain),
                      st.kck, rsc, mic=mic),
            eapol_key(1, 0x0308 | v, 0, 2, bytes(32), b"", st.kck, mic=mic)]
    for m in msgs[1:]:
        assert eapol_mic_ok(st.kck, m, mic)
    assert key_data_of(st.kek, msgs[2]) == m3_plain
    lab.handshake(st, msgs)
    st.m3, st.nonces = msgs[2], (anonce, snonce)


STRANGER_WHAT = ("GCMP-256-protected QoS data frame of the stranger, associated before the "
                 "capture began (its handshake is not in it): not decrypted")


def stranger_ntp(answer=True):
    """The stranger's NTP request to the router and, with `answer`, the router's answer,
    in GCMP-256-protected QoS data frames of its pairwise key."""
    lab.ntp(STRANGER, 0x0E00, STRANGER_WHAT, answer)


# The network's keys: the PMK of the passphrase; the GCMP-256 GTK and the BIP-GMAC-256
# IGTK (32 octets each); the stranger's made-up GCMP-256 TK.
PMK = pmk_of(PASSPHRASE, SSID)
GTK, IGTK = rand_bytes(32), rand_bytes(32)
STRANGER.key = rand_bytes(32)

# 1. Beacons; the stranger's NTP request and answer (it has been sending for a while).
cap.emit(lab.beacon(), 0.1024)
cap.emit(lab.beacon(), 0.03)
lab.tsc_next[(STRANGER.mac, STRANGER.key)] = 0x0000000314A7
lab.tsc_next[(AP_MAC, STRANGER.key)] = 0x000000028C02
stranger_ntp()
cap.t = 0.2
# 2. The phone: open system, association (PSK, GCMP-256), 4-way handshake (version 2).
lab.join(PHONE, PHONE.rsn)
four_way(PHONE, PMK, GTK, IGTK, 0)
cap.t = 0.3
# 3. The AP's group-addressed ARP request under the GTK (key id 1), a QoS data frame of ack
# policy No Ack (QoS control 0x0020).
group_arp = lab.group_frame(
    SNAP_ARP + arp_request(ROUTER_MAC, ROUTER_IP, "192.168.92.40"), "GCMP-256", GTK, 1,
    "group-addressed GCMP-256 frame of the AP (GTK, key id 1, from message 3): decrypted, "
    "an ARP request: no IP packet, no error", 0x0020)
cap.t = 0.35
# 4. The phone's first two requests: DNS and a GET with its advertising id, a JSON POST
# with its Android id.
lab.dns(PHONE, 0x7101, "t.appsflyer.com")
Conn(lab, PHONE, "t.appsflyer.com").exchange(
    "GET", "/api/v4/androidevent?app_id=com.example.shop&advertiserId=%s"
    % PHONE.ids["advertising_id"], b"", ["advertising_id"])
cap.t = 0.8
Conn(lab, PHONE, "ulogs.umeng.com").exchange(
    "POST", "/unify_logs",
    json.dumps({"appkey": "5f8e3a2b1c0d9e8f7a6b5c4d", "header": {
        "android_id": PHONE.ids["android_id"], "os": "Android", "os_version": "15"}},
        separators=(",", ":")).encode(), ["android_id"])
cap.t = 1.1
cap.emit(lab.beacon(), 0.01)
cap.t = 1.2
# 5. The tablet: open system, association (PSK-SHA256, CCMP-256), 4-way handshake
# (version 3; key RSC 1, the PN of the one group frame sent); a GET with its IMEI.
lab.join(TABLET, TABLET.rsn)
four_way(TABLET, PMK, GTK, IGTK, lab.tsc_next[(AP_MAC, GTK)] - 1)
cap.t = 1.3
lab.dns(TABLET, 0x7201, "rt.applovin.com")
Conn(lab, TABLET, "rt.applovin.com").exchange(
    "GET", "/v1/ad?format=interstitial&imei=%s&os=android" % TABLET.ids["imei"], b"",
    ["imei"])
cap.t = 1.5
# 6. The second phone: open system, association (PSK, GCMP-128), 4-way handshake (version
# 2); a JSON POST with its advertising id.
lab.join(PHONE2, PHONE2.rsn)
four_way(PHONE2, PMK, GTK, IGTK, lab.tsc_next[(AP_MAC, GTK)] - 1)
cap.t = 1.6
Conn(lab, PHONE2, "api2.amplitude.com").exchange(
    "POST", "/2/httpapi",
    json.dumps({"api_key": "0a1b2c3d4e5f60718293a4b5c6d7e8f9",
                "events": [{"event_type": "session_start",
                            "adid": PHONE2.ids["advertising_id"]}]},
               separators=(",", ":")).encode(), ["advertising_id"])
cap.t = 1.8
stranger_ntp(answer=False)
cap.t = 2.5
cap.emit(lab.beacon(), 0.01)
# 7. After the refusal (+2 s): the phone's request with its IMEI.
cap.t = REFUSAL_S + 1.0
Conn(lab, PHONE, "sdk.e.qq.com").exchange(
    "GET", "/v2/ping?appid=1101152570&imei=%s" % PHONE.ids["imei"], b"", ["imei"])
cap.emit(lab.beacon())


# --- self-check of the written frames -----------------------------------------------------
# Every FCS; every protected frame opens with its key, each GCMP frame with none of the
# other GCMP keys (tried as GCMP-256 or GCMP-128 as their lengths say), the CCMP-256
# frames with the tablet's TK; the requests' identifiers; each transmitter's PNs run on by
# one.
lab.check([("GCMP-256", PHONE.key), ("GCMP-256", STRANGER.key), ("GCMP-256", GTK),
           ("GCMP-128", PHONE2.key), ("CCMP-256", TABLET.key)], (PHONE, TABLET, PHONE2))
for st in (PHONE, TABLET, PHONE2):
    # Message 3's key data: the AP's RSN element, the GTK and IGTK KDEs; M1's PMKID.
    plain = key_data_of(st.kek, st.m3)
    assert plain.startswith(AP_RSN + bytes.fromhex("dd26000fac010100") + GTK)
    assert bytes.fromhex("dd2c000fac09" "0400" "000000000000") + IGTK in plain
    assert cap.frames[st.handshake[0] - 1][1][-4 - 16:-4] == st.pmkid
    # The PTK against a second, independent writing of PRF-512 (AKM 2) or KDF-SHA-256-n
    # (AKM 6), from the nonces read back from the written frames (radiotap 14, QoS data
    # header 26, LLC/SNAP 8, then EAPOL: the nonce at 17).
    anonce, snonce = (cap.frames[st.handshake[i] - 1][1][48 + 17:48 + 49] for i in (0, 1))
    assert (anonce, snonce) == st.nonces
    aa, spa = mac(AP_MAC), mac(st.mac)
    context = b"".join(sorted([aa, spa]) + sorted([anonce, snonce]))
    bits = 8 * (32 + st.tk_len)
    if st.akm == AKM_PSK:
        out = b"".join(hmac.new(PMK, b"Pairwise key expansion\0" + context + bytes([i]),
                                hashlib.sha1).digest() for i in range(4))
    else:
        out = b"".join(hmac.new(PMK, i.to_bytes(2, "little") + b"Pairwise key expansion"
                                + context + bits.to_bytes(2, "little"),
                                hashlib.sha256).digest() for i in (1, 2))
    assert out[:bits // 8] == st.ptk and len(st.key) == st.tk_len

cap.write_pcap(os.path.join(HERE, "gcmp.pcap"))
lab.write_case(os.path.join(HERE, "consentry.toml"), "gcmp", "make_gcmp.py",
               "gcmp-2026-11-30",
               "Example Shop 5.1 on two test phones and a tablet, Wi-Fi 6/7 lab network "
               "(GCMP-256, GCMP-128, CCMP-256) in monitor mode",
               [(PHONE, MAC_ONLY + "; joins with PSK, GCMP-256."),
                (TABLET, "The case's Android tablet (with a modem, so an IMEI), known by its "
                         "Wi-Fi MAC too; joins with PSK-SHA256, CCMP-256."),
                (PHONE2, "The case's second test phone, known by its Wi-Fi MAC too; joins "
                         "with PSK, GCMP-128.")])
write_80211_keys(os.path.join(HERE, "80211_keys"), PASSPHRASE, SSID)


def station_json(st):
    return {"mac": st.mac, "ip": st.ip, "akm": st.akm, "key_descriptor_version": st.version,
            "pairwise_cipher": st.cipher, "in_keys_file": "wpa-pwd", "pmkid": st.pmkid.hex(),
            "ptk": st.ptk.hex(), "kck": st.kck.hex(), "kek": st.kek.hex(), "tk": st.key.hex(),
            "handshake": st.handshake}


counts = lab.counts(("phone", "tablet", "phone2"))
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump({
        "capture": "gcmp.pcap", "frames": len(cap.frames), "ssid": SSID, "bssid": AP_MAC,
        "passphrase": PASSPHRASE, "pmk": PMK.hex(),
        "stations": {
            "phone": station_json(PHONE), "tablet": station_json(TABLET),
            "phone2": station_json(PHONE2),
            "stranger": {"mac": STRANGER.mac, "ip": STRANGER.ip, "pairwise_cipher": "GCMP-256",
                         "in_keys_file": None, "tk": STRANGER.key.hex(),
                         "tk_line": STRANGER.key.hex(),
                         "frames": [p[0] for p in lab.protected if p[4] == "stranger"]}},
        "gtk": {"key_id": 1, "cipher": "GCMP-256", "gtk": GTK.hex(),
                "given_in": [st.handshake[2] for st in (PHONE, TABLET, PHONE2)],
                "frames": [group_arp]},
        "igtk": {"key_id": 4, "cipher": "BIP-GMAC-256", "igtk": IGTK.hex()},
        "requests": lab.requests, "negative": lab.negatives, "dns": lab.dns_log,
        **counts, "handshakes_with_key": 3, "handshakes_no_key": 0}, f, indent=1)
    f.write("\n")
pairwise = counts["pairwise_frames"]
print("wrote gcmp.pcap (%d frames; decrypted with the passphrase: %d pairwise (phone %d "
      "GCMP-256, tablet %d CCMP-256, phone2 %d GCMP-128), %d group GCMP-256; %d protected in "
      "all), consentry.toml, 80211_keys, expected.json (%d requests)"
      % (len(cap.frames), counts["protected_frames"], pairwise["phone"], pairwise["tablet"],
         pairwise["phone2"], counts["group_frames"], counts["all_protected_frames"],
         len(lab.requests)))
