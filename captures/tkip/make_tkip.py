#!/usr/bin/env python3
"""Writes the "tkip" sample capture of consentry's pcap tap: a WPA/WPA2 mixed-mode lab
access point (TKIP group key; pairwise TKIP for WPA, CCMP or TKIP for WPA2) in monitor mode
(radiotap + 802.11), a phone joining it with WPA (the Wi-Fi Alliance's WPA of draft
802.11i: the WPA element, EAPOL-Key descriptor 254, TKIP, a separate group key handshake)
and a tablet with WPA2 (RSN, CCMP pairwise, the same TKIP group key), both from before
their authentication, so that their handshakes are in the capture and their traffic can
be decrypted with the network's passphrase; another station, associated before the
capture began, stays closed.

Outputs, next to this script:
  tkip.pcap       classic pcap (magic 0xA1B2C3D4, little-endian, microseconds, snaplen
                  65535), link type 127 (radiotap).
  consentry.toml  the case: the phone and the tablet, each known only by its Wi-Fi MAC
                  address; the phone's user refuses at +2 s.
  80211_keys      the key as Wireshark's 802.11 keys file holds it (one line,
                  "wpa-pwd","<passphrase>:<ssid>"; neither has ':' or '%', which
                  Wireshark would write as %3a and %25).
  expected.json   the PMK; per station (phone, tablet, stranger): MAC, IPv4 address,
                  protocol (WPA or RSN), key descriptor type and version, pairwise cipher,
                  the line of the keys file that opens it (in_keys_file: "wpa-pwd" or
                  null), PTK, KCK, KEK, TK (and the phone's two Michael keys), the frames
                  of its 4-way handshake (the phone's also those of its group key
                  handshake; the stranger's, which has none in the capture: its frames and
                  made-up TK, and as tk_line its 32 octets TK || Michael keys, the value
                  of a Wireshark "tk" line that opens its frames); the GTK (key id 1,
                  TKIP, 32 octets; its TK and Michael key,
                  the Key IV of group message 1, the frames that give it and the frames sent
                  under it); every HTTP request (frame, time, host, method, path, identifier
                  types, device, cipher, consent state "not-asked" or "after-refusal"); the
                  DNS queries and answers; the frames that must not give packets
                  ("negative": the stranger's, kind "wlan-protected", and the decrypted
                  frames without a request: the two group key messages, the group ARP
                  request and the group UDP broadcast); counts: frames decrypted with the
                  passphrase, pairwise (protected_frames, per station in pairwise_frames)
                  and group (group_frames), their sum (decrypted_frames), all protected
                  frames (all_protected_frames, the stranger's included), 4-way handshakes
                  completed with the given key (handshakes_with_key: 2) and with none
                  (handshakes_no_key: 0); the forged twin (michael_twin: its file and
                  frame).
  tkip-michael.pcap
                  the same capture but for one frame: the phone's first request sealed
                  again with its TK and TSC under the other direction's Michael key, so
                  that its ICV comes out and its Michael MIC does not, as a frame altered
                  by someone without the Michael key would be (12.5.2.3). A receiver
                  drops it (and counts a Michael failure); tshark 4.0, which checks the
                  ICV only, reads the request in it.

Story (from 2026-11-28T15:00:00Z): the AP "consentry-lab-wpa" beacons with an RSN element
and a WPA element; the stranger (in no case) exchanges an NTP request and answer with the
router under its own TKIP key; the phone authenticates (open system), associates asking
for WPA with TKIP and runs the WPA 4-way handshake, then the AP gives it the GTK in the WPA
group key handshake, both messages inside TKIP-protected frames of the phone's new
pairwise key (as hostapd sends them once that key is installed); the AP sends a
group-addressed ARP request under the GTK; the phone resolves a tracker and sends it its
advertising id (GET), resolves another and POSTs it its Android id in a JSON body; the
tablet authenticates, associates asking for WPA2 with CCMP and runs the RSN 4-way
handshake, whose message 3 carries the same TKIP GTK; it resolves a third tracker and
sends it its IMEI in CCMP frames; the router's UDP broadcast goes out under the GTK; the
stranger sends another NTP request; the phone's user refuses at +2 s; the phone resolves a
fourth tracker and sends it its IMEI. Every unicast frame is acknowledged by an ACK. The
phone's TKIP frames mix QoS data frames of TID 0, 6 and 7 and data frames without QoS, so
Michael's priority field varies: the first lookup in data frames both ways, the GET's
connection in QoS TID 0 from the phone and data frames from the AP; the second lookup and
the POST's connection in QoS TID 6 both ways; the group key messages in TID 7; the last
lookup in data frames, the last connection in data frames from the phone and QoS TID 0
from the AP. Each transmitter counts the TSCs (PNs) of each key from 1 (the stranger,
sending for a while, from 0x1FFFF, so that its second frame has IV32 2 and IV16 0).

Byte layouts (IEEE 802.11-2020; WPA: Wi-Fi Protected Access, as hostapd and
wpa_supplicant implement it):
  radiotap        version 0, length 14, present = Flags | Rate | Channel; Flags 0x10:
                  the frame ends with its FCS (CRC-32, little-endian, over the MPDU as
                  transmitted, protected frames included); rate 54 Mb/s; 2437 MHz.
  RSN element     (9.4.2.24) the AP's (beacons, the tablet's M3): 30 18 | version 1 |
                  group TKIP 00-0F-AC:2 | 2 pairwise CCMP-128 00-0F-AC:4 and TKIP | 1 AKM
                  PSK 00-0F-AC:2 | capabilities 0; the tablet's (association request,
                  M2): 30 14, group TKIP, 1 pairwise CCMP-128, PSK, capabilities 0.
  WPA element     (vendor specific, 9.4.2.25) dd 16 | OUI 00-50-F2 type 1 | version 1
                  (16-bit LE) | group TKIP 00-50-F2:2 | 1 pairwise TKIP 00-50-F2:2 | 1
                  AKM PSK 00-50-F2:2 (no capabilities field): the AP's (beacons, after
                  the RSN element; M3) and the phone's (association request, M2), alike.
  association     (9.3.3.6, 9.3.3.7) open system authentication (algorithm 0,
                  transactions 1 and 2, status 0); request: capability 0x0431, listen
                  interval 10, SSID, Supported Rates, the station's WPA or RSN element;
                  response: capability 0x0411, status 0, AID 1 (phone), 2 (tablet) | 0xC000.
  EAPOL-Key       (12.7.2) LLC/SNAP AA AA 03 00 00 00 88 8E, 802.1X version (2 from the
                  AP, 1 from the stations, as hostapd and wpa_supplicant send them), type 3,
                  length; then descriptor type, key information (big-endian), key length,
                  replay counter, nonce, Key IV (16 octets, at offset 49 of the 802.1X
                  frame), RSC, reserved, MIC (16), key data length and key data.
                  The phone's WPA 4-way handshake, unprotected QoS data frames of TID 7:
                  descriptor type 254 (WPA), version 1 (HMAC-MD5 MIC, RC4 key data
                  encryption), key length 32 in all four (wpa_supplicant copies the AP's
                  into WPA's M2 and M4):
                    M1 0x0089 Pairwise|ACK, replay counter 1, ANonce, no key data;
                    M2 0x0109 Pairwise|MIC, replay counter 1, SNonce, key data = the
                       phone's WPA element;
                    M3 0x01C9 Pairwise|Install|ACK|MIC, replay counter 2, ANonce, key
                       data = the AP's WPA element in plain (WPA's M3 has no GTK and no
                       Secure bit);
                    M4 0x0109 Pairwise|MIC, replay counter 2, zero nonce, no key data
                       (told from M2 by its empty key data).
                  The WPA group key handshake, each message inside a TKIP-protected QoS
                  data frame (TID 7, key id 0, the phone's pairwise key; A3 the BSSID):
                    group message 1 0x0391 ACK|MIC|Secure, key index 1 (key information
                       bits 4-5), key length 32, replay counter 3, GNonce, Key IV (16
                       random octets), RSC 0 (no group frame sent yet), key data = the
                       32-octet GTK encrypted with RC4 keyed by Key IV || KEK, the first
                       256 octets of keystream discarded (no Encrypted Key Data bit: WPA
                       has none; the key data length is the key length);
                    group message 2 0x0311 MIC|Secure, key index 1, key length 32,
                       replay counter 3, zero nonce, no key data.
                  The MIC of version 1 is HMAC-MD5(KCK, the 802.1X frame with a zero
                  MIC), 16 octets.
                  The tablet's RSN 4-way handshake, unprotected QoS data frames of TID 7:
                  descriptor type 2, version 2 (HMAC-SHA1-128, AES key wrap), as in
                  make_wpa2.py: M1 0x008A (key length 16, PMKID KDE), M2 0x010A (its RSN
                  element), M3 0x13CA (key length 16, key RSC 1: the TSC of the one
                  group frame sent under the GTK, key data = AES key wrap (RFC 3394)
                  under the KEK of the AP's RSN element || GTK KDE (dd 26 00-0F-AC 01, key
                  id 1, reserved 0, the 32-octet TKIP GTK) || dd 00... padding: 72
                  octets, 80 wrapped), M4 0x030A.
  keys            (12.7.1.2, 12.7.1.3) PMK = PBKDF2-HMAC-SHA1(passphrase, SSID, 4096,
                  32); PTK = PRF-n(PMK, "Pairwise key expansion", min(AA,SPA) ||
                  max(AA,SPA) || min(ANonce,SNonce) || max(ANonce,SNonce)), PRF-n being
                  HMAC-SHA1(PMK, label || 0 || data || i) for i = 0, 1, ... concatenated
                  and truncated: PRF-512 for the phone (TKIP): KCK 0:16, KEK 16:32, TK
                  32:48, Michael key of the AP's MSDUs to the phone 48:56, of the phone's
                  56:64; PRF-384 for the tablet (CCMP): KCK, KEK, TK. The GTK (TKIP, 32
                  octets): TK 0:16, Michael key of the AP's group MSDUs 16:24, 24:32
                  unused. AA = the BSSID, SPA = the station. Nonces, Key IV, GTK and the
                  stranger's key from random.Random(20261130).
  TKIP MPDU       (12.5.2) MAC header with the Protected bit, TKIP header TSC1,
                  WEPSeed[1] = (TSC1 | 0x20) & 0x7f, TSC0, key id << 6 | 0x20 (ExtIV),
                  TSC2 TSC3 TSC4 TSC5; then RC4, keyed with the 16-octet WEP seed, of
                  LLC/SNAP + payload || Michael MIC (8) || ICV (CRC-32 of the two,
                  little-endian); FCS. The WEP seed: phase 1 of the key mixing function
                  (TK, TA = A2, IV32 = TSC2..TSC5 little-endian) gives the TTAK, phase 2
                  (TTAK, TK, IV16 = TSC1 << 8 | TSC0) the seed, whose first three octets are
                  TSC1, WEPSeed[1], TSC0 (12.5.2.5). Michael (12.5.2.3) covers DA || SA ||
                  priority || 0 0 0 || LLC/SNAP + payload (DA and SA from To DS / From DS:
                  To DS: A3, A2; From DS: A1, A3), the priority being the QoS TID of a QoS
                  data frame and 0 for a data frame. Pairwise frames: key id 0, the
                  phone's TK; Michael key PTK[48:56] on the AP's frames, PTK[56:64] on the
                  phone's. Group frames (From DS: A1 broadcast, A2 BSSID, A3 router; not
                  acknowledged): key id 1, GTK[0:16], Michael key GTK[16:24]: the ARP
                  request in a data frame, the UDP broadcast (192.168.91.1:9 to
                  192.168.91.255:9) in a QoS data frame of QoS control 0x0020 (TID 0, Ack
                  Policy No Ack).
  CCMP MPDU       (12.5.3) the tablet's frames, QoS data of TID 0, key id 0, its TK, as in
                  make_wpa2.py.

The crypto is captures/wpakit.py's, which checks itself on import; for this capture:
RC4 against RFC 6229, HMAC-MD5 against RFC 2202, Michael against the IEEE 802.11i chained
vectors and the MIC of the IEEE 802.11-2012 M.6.3 TKIP test MPDU (From DS, so its DA ||
SA || priority header is checked too), the key mixing function against the eight
802.11i-2004 test vectors (phase 1 and phase 2), and PBKDF2, PRF, CCMP and AES key wrap
as for make_wpa2.py. The script checks with asserts before writing: every EAPOL MIC
(HMAC-MD5 and HMAC-SHA1-128); the RC4 key data of group message 1 back to the GTK; the
key wrap of the tablet's M3 and its GTK KDE; and, frame by frame in the written capture,
every FCS; that every protected frame decrypts back to its plaintext with its key (TKIP:
WEP seed octet, ICV and Michael MIC checked) and with none of the capture's other TKIP
keys (the phone's, the stranger's, the GTK), no CCMP frame with the GTK's TK; that each
transmitter's TSCs (PNs) per key run on from 1 (the stranger's key from where it was);
and that each request carries its identifiers.

Checked with tshark 4.0.17 (KEY below stands for
'uat:80211_keys:"wpa-pwd","violet lantern harbour nine:consentry-lab-wpa"'):
  tshark -r tkip.pcap -o wlan.enable_decryption:TRUE -o KEY -Y http.request -T fields \\
      -e frame.number -e wlan.sa -e http.host -e http.request.uri
lists the four requests at the frames of expected.json: 38 (phone, t.appsflyer.com, TKIP
QoS TID 0), 58 (phone, ulogs.umeng.com, TKIP QoS TID 6), 95 (tablet, rt.applovin.com,
CCMP) and 119 (phone, sdk.e.qq.com, TKIP data frame);
  tshark -r tkip.pcap -o wlan.enable_decryption:TRUE -o KEY -Y eapol -T fields \\
      -e frame.number -e wlan.fc.protected -e eapol.keydes.type \\
      -e wlan_rsna_eapol.keydes.msgnr -e wlan_rsna_eapol.keydes.key_info \\
      -e eapol.keydes.key_len -e wlan.rsn.ie.gtk_kde.gtk
shows the phone's WPA 4-way handshake at 15-21 (type 254, messages 1 to 4, 0x0089
0x0109 0x01c9 0x0109, key length 32), its group messages 1 and 2 decrypted from the
TKIP frames 23 and 25 (0x0391, 0x0311), and the tablet's RSN handshake at 77-83 (type
2, 0x008a 0x010a 0x13ca 0x030a), whose M3 it unwraps to the 32-octet GTK;
  tshark -r tkip.pcap -o wlan.enable_decryption:TRUE -o KEY -Y 'wlan.fc.protected == 1' \\
      -T fields -e frame.number -e wlan.analysis.tk -e wlan.analysis.gtk
of the 47 protected frames, 42 are decrypted with a TK (32 with the phone's TKIP TK,
the two group key messages included, 10 with the tablet's CCMP TK) and 2 with the GTK's
TK (27, the ARP request, and 105, the UDP broadcast), the stranger's 3 (3, 5, 106) stay
"Data"; -Y 'wlan.fc.protected == 1 && llc' counts the same 44; with the 80211_keys
file in a profile (XDG_CONFIG_HOME=DIR, DIR/wireshark/80211_keys) instead of -o KEY,
the same four requests and 44 frames; without the key, no frame is decrypted and -Y
'http.request || dns || arp || udp' lists nothing. tshark 4.0 takes a group key's
cipher from the key descriptor version of the handshake that gave it, so the GTK of the
tablet's (version 2) M3 alone it tries as CCMP: frame 105 opens through the GTK of the
phone's WPA group key handshake (without frames 23-26, it stays closed; a correct
reader opens it either way);
  tshark -r tkip.pcap -o wlan.enable_decryption:TRUE -o KEY -o wlan.check_checksum:TRUE \\
      -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE -o tcp.check_checksum:TRUE \\
      -q -z expert
reports no errors and no warnings (only the chats and notes of TCP connection set-up and
tear-down, and the HTTP request and response lines), every FCS and IP, UDP and TCP
checksum good. tshark 4.0 checks the TKIP ICV, not the Michael MIC; the script checks
both.
Run: python3 captures/tkip/make_tkip.py
"""
import json
import os
import random
import struct
import sys
import zlib
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
# captures/pcapkit.py: the packet-building helpers the capture generators share;
# captures/wlankit.py: the 802.11 ones of make_wifi.py, make_wpa2.py, make_wpa3.py and
# make_tkip.py, and their lab network; captures/wpakit.py: the WPA keys, EAPOL-Key
# frames, CCMP, TKIP and the protected lab network of make_wpa2.py, make_wpa3.py and
# make_tkip.py (it checks itself against the IEEE test vectors on import).
sys.path.insert(0, os.path.dirname(HERE))
from pcapkit import ipv4_header, luhn_ok, udp_datagram  # noqa: E402
from wlankit import MAC_ONLY, SNAP_ARP, SNAP_IPV4, Capture, arp_request  # noqa: E402
from wpakit import (AKM_PSK, CCMP_128, TKIP, Conn, Station, WpaLab,  # noqa: E402
                    header_len, pmk_of, rsn_element, tkip_decrypt, tkip_encrypt, tkip_tsc,
                    wpa_element, write_80211_keys)

T0 = datetime(2026, 11, 28, 15, 0, 0, tzinfo=timezone.utc)
REFUSAL_S = 2.0

SSID = "consentry-lab-wpa"
PASSPHRASE = "violet lantern harbour nine"
AP_MAC = "02:00:00:00:8d:01"        # the access point (BSSID, the authenticator AA)
ROUTER_MAC = "02:00:00:00:8d:fe"    # the lab's router behind it
ROUTER_IP = "192.168.91.1"
TRACKERS = {"t.appsflyer.com": "203.0.113.71", "ulogs.umeng.com": "203.0.113.72",
            "rt.applovin.com": "203.0.113.73", "sdk.e.qq.com": "203.0.113.74"}

rng = random.Random(20261130)


def rand_bytes(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


# The stations (wpakit.Station: once its handshake is written, or made up for the
# stranger, a station's pairwise cipher "TKIP" or "CCMP" and key).
PHONE = Station("phone", "02:00:00:dd:4e:21", "192.168.91.23",
                {"advertising_id": "9b2e4f6a-8c1d-4e3f-a5b7-c9d1e3f5a7b9",
                 "android_id": "c4e6a8b0d2f41357",
                 "imei": "352917064183527"}, 1, 40611)
TABLET = Station("tablet", "02:00:00:dd:a7:3c", "192.168.91.31",
                 {"advertising_id": "1f3e5d7c-9b0a-4c2d-8e6f-a1b3c5d7e9f0",
                  "android_id": "0d2f4b6a8c1e3579",
                  "imei": "864012035571298"}, 2, 38211)
STRANGER = Station("stranger", "02:00:00:66:77:88", "192.168.91.57", None, 3, 40999)
assert luhn_ok(PHONE.ids["imei"]) and luhn_ok(TABLET.ids["imei"])

# --- 802.11 (radiotap, MAC header, FCS, the lab: wlankit.py; RSN, WPA elements: wpakit.py)
# The AP's RSN element: version 1, group TKIP, 2 pairwise CCMP-128 and TKIP, 1 AKM PSK,
# capabilities 0; its WPA element: version 1, group TKIP, 1 pairwise TKIP, 1 AKM PSK.
AP_RSN = rsn_element([AKM_PSK], pairwise=(CCMP_128, TKIP), group=TKIP)
assert AP_RSN.hex() == "30180100000fac020200000fac04000fac020100000fac020000"
AP_WPA = wpa_element()
assert AP_WPA.hex() == "dd160050f20101000050f20201000050f20201000050f202"
PHONE_WPA = wpa_element()           # the phone's (association request, M2): the same
# The tablet's RSN element (association request, M2): group TKIP, pairwise CCMP-128, PSK.
TABLET_RSN = rsn_element([AKM_PSK], group=TKIP)
assert TABLET_RSN.hex() == "30140100000fac020100000fac040100000fac020000"
cap = Capture(T0)
# The lab: beacons with the AP's RSN and WPA elements, TCP ports from 50442 (step 31);
# requests (with the station's pairwise cipher), DNS lookups, negatives and the protected
# frames.
lab = WpaLab(cap, SSID, AP_MAC, ROUTER_MAC, ROUTER_IP, TRACKERS, AP_RSN + AP_WPA,
             0x4455667788, (50442, 31, 0x7B000000, 0x3C000000, 11000), refusal_s=REFUSAL_S,
             request_cipher=True)


# --- the capture --------------------------------------------------------------------------
STRANGER_WHAT = ("TKIP-protected data frame of the stranger, associated before the capture "
                 "began (its handshake is not in it): not decrypted")


def stranger_ntp(answer=True):
    """The stranger's NTP request to the router and, with `answer`, the router's answer,
    in TKIP-protected data frames of its pairwise key."""
    lab.ntp(STRANGER, 0x0C00, STRANGER_WHAT, answer, qos=None)


# The network's keys: the PMK of the passphrase, the TKIP GTK (32 octets: TK || Michael
# key of the AP's group MSDUs || the other, unused), the stranger's made-up pairwise key.
PMK = pmk_of(PASSPHRASE, SSID)
GTK = rand_bytes(32)
STRANGER.cipher, STRANGER.key = "TKIP", rand_bytes(32)
group_frames = []

# 1. Beacons; the stranger's NTP request and answer (it has been sending for a while: its
# TSCs are high, IV32 not 0).
cap.emit(lab.beacon(), 0.1024)
cap.emit(lab.beacon(), 0.03)
lab.tsc_next[(STRANGER.mac, STRANGER.key)] = 0x0001FFFF
lab.tsc_next[(AP_MAC, STRANGER.key)] = 0x00020B31
stranger_ntp()
cap.t = 0.2
# 2. The phone: open system, association with the WPA element, the WPA 4-way handshake
# (descriptor 254, version 1, HMAC-MD5 MICs; key length 32 in all four as hostapd and
# wpa_supplicant write WPA's; M3 carries the AP's WPA element in plain key data, no GTK).
lab.wpa1_handshake(PHONE, PMK, PHONE_WPA, AP_WPA, rand_bytes)
cap.t = 0.26
# 3. The WPA group key handshake, both messages inside TKIP-protected QoS data frames (TID
# 7) of the phone's pairwise key: message 1 with the GTK (key index 1) RC4-encrypted under
# Key IV || KEK, key RSC 0 (no group frame sent yet); message 2 the phone's answer.
group_handshake, KEY_IV = lab.wpa1_group_key_handshake(PHONE, GTK, rand_bytes)
cap.t = 0.3
# 4. The AP's group-addressed ARP request under the GTK (key id 1), a data frame (From DS:
# A1 broadcast, A2 BSSID, A3 router), not acknowledged.
group_frames.append(lab.group_frame(
    SNAP_ARP + arp_request(ROUTER_MAC, ROUTER_IP, "192.168.91.40"), "TKIP", GTK, 1,
    "group-addressed TKIP frame of the AP (GTK, key id 1, from the WPA group key "
    "handshake): decrypted, an ARP request: no IP packet, no error"))
cap.t = 0.35
# 5. The phone's first two requests: DNS in data frames, the GET in QoS data frames of TID
# 0 (the AP's answers in data frames); DNS and a JSON POST in QoS data frames of TID 6.
lab.dns(PHONE, 0x5101, "t.appsflyer.com", None)
Conn(lab, PHONE, "t.appsflyer.com", 0x0000, None).exchange(
    "GET", "/api/v4/androidevent?app_id=com.example.shop&advertiserId=%s"
    % PHONE.ids["advertising_id"], b"", ["advertising_id"])
cap.t = 0.8
lab.dns(PHONE, 0x5102, "ulogs.umeng.com", 0x0006)
Conn(lab, PHONE, "ulogs.umeng.com", 0x0006, 0x0006).exchange(
    "POST", "/unify_logs",
    json.dumps({"appkey": "5f8e3a2b1c0d9e8f7a6b5c4d", "header": {
        "android_id": PHONE.ids["android_id"], "os": "Android", "os_version": "15"}},
        separators=(",", ":")).encode(), ["android_id"])
cap.t = 1.1
cap.emit(lab.beacon(), 0.01)
cap.t = 1.2
# 6. The tablet: open system, association with its RSN element, the RSN 4-way handshake
# (descriptor 2, version 2, HMAC-SHA1-128, pairwise CCMP-128); M3 wraps the AP's RSN
# element and a GTK KDE with the same 32-octet TKIP GTK (key id 1), key RSC 1 (the TSC of
# the one group frame sent).
lab.rsn_handshake_with_tkip_gtk(TABLET, PMK, TABLET_RSN, AP_RSN, GTK, rand_bytes)
cap.t = 1.3
lab.dns(TABLET, 0x6201, "rt.applovin.com", 0x0000)
Conn(lab, TABLET, "rt.applovin.com").exchange(
    "GET", "/v1/ad?format=interstitial&imei=%s&os=android" % TABLET.ids["imei"], b"",
    ["imei"])
cap.t = 1.6
# 7. A second group-addressed frame under the GTK: the router's UDP broadcast (to
# 192.168.91.255, port 9, discard) in a QoS data frame of TID 0, ack policy No Ack.
payload = b"consentry-lab-wpa keepalive"
udp = udp_datagram(ROUTER_IP, "192.168.91.255", 9, 9, payload)
group_frames.append(lab.group_frame(
    SNAP_IPV4 + ipv4_header(ROUTER_IP, "192.168.91.255", 17, len(udp), 0x0D01) + udp, "TKIP",
    GTK, 1, "group-addressed TKIP QoS data frame of the AP (GTK, key id 1): decrypted, "
    "a UDP broadcast to port 9: no request, no error", 0x0020))
cap.t = 1.75
stranger_ntp(answer=False)
cap.t = 2.5
cap.emit(lab.beacon(), 0.01)
# 8. After the refusal (+2 s): the phone's request with its IMEI (its frames data frames,
# the AP's QoS data of TID 0).
cap.t = REFUSAL_S + 1.0
lab.dns(PHONE, 0x5103, "sdk.e.qq.com", None)
Conn(lab, PHONE, "sdk.e.qq.com", None, 0x0000).exchange(
    "GET", "/v2/ping?appid=1101152570&imei=%s" % PHONE.ids["imei"], b"", ["imei"])
cap.emit(lab.beacon())


# --- self-check of the written frames -----------------------------------------------------
# Every FCS; every protected frame opens with its key (TKIP: WEP seed octet, ICV and
# Michael MIC checked) and with no other TKIP key, no CCMP frame with the GTK's TK; the
# requests' identifiers. Each transmitter counts the TSCs (PNs) of each key from 1, the
# stranger and the AP's frames to it from where they were.
counters = lab.check([("TKIP", PHONE.key), ("TKIP", STRANGER.key), ("TKIP", GTK),
                      ("CCMP", TABLET.key), ("CCMP", GTK[:16])], (PHONE, TABLET))
for (ta, key), got in counters.items():
    assert got[0] == 1 or key is STRANGER.key, got

cap.write_pcap(os.path.join(HERE, "tkip.pcap"))

# The forged twin: the phone's first request sealed again with its TK and TSC but the
# Michael key of the AP's MSDUs (the PTK's halves swapped): the ICV, over what was
# encrypted, comes out; the Michael MIC, over DA, SA, priority and the MSDU under the
# phone's own Michael key, does not.
forged_at = lab.requests[0]["frame"]
seconds, data = cap.frames[forged_at - 1]
rt_len = struct.unpack_from("<H", data, 2)[0]
mpdu = data[rt_len:-4]
h = mpdu[:header_len(mpdu)]
swapped = PHONE.key[:16] + PHONE.key[24:32] + PHONE.key[16:24]
forged = h + tkip_encrypt(swapped, 0, tkip_tsc(mpdu[len(h):]), h, tkip_decrypt(PHONE.key, mpdu))
try:
    tkip_decrypt(PHONE.key, forged)
    raise AssertionError("the forged frame opens")
except ValueError as e:
    assert str(e) == "bad Michael MIC", e
genuine = cap.frames
cap.frames = list(genuine)
cap.frames[forged_at - 1] = (seconds, data[:rt_len] + forged
                             + struct.pack("<I", zlib.crc32(forged) & 0xFFFFFFFF))
cap.write_pcap(os.path.join(HERE, "tkip-michael.pcap"))
cap.frames = genuine
lab.write_case(os.path.join(HERE, "consentry.toml"), "tkip", "make_tkip.py",
               "tkip-2026-11-28",
               "Example Shop 5.1 on a test phone and a tablet, WPA/WPA2 (TKIP) lab Wi-Fi in "
               "monitor mode",
               [(PHONE, MAC_ONLY + "; joins with WPA (TKIP)."),
                (TABLET, "The case's Android tablet (with a modem, so an IMEI), known by its "
                         "Wi-Fi MAC too; joins with WPA2 (CCMP, TKIP group key).")])
write_80211_keys(os.path.join(HERE, "80211_keys"), PASSPHRASE, SSID)

counts = lab.counts(("phone", "tablet"))
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump({
        "capture": "tkip.pcap", "frames": len(cap.frames), "ssid": SSID, "bssid": AP_MAC,
        "passphrase": PASSPHRASE, "pmk": PMK.hex(),
        "stations": {
            "phone": {"mac": PHONE.mac, "ip": PHONE.ip, "protocol": "WPA",
                      "key_descriptor_type": 254, "key_descriptor_version": 1,
                      "pairwise_cipher": "TKIP", "in_keys_file": "wpa-pwd",
                      "ptk": PHONE.ptk.hex(), "kck": PHONE.kck.hex(), "kek": PHONE.kek.hex(),
                      "tk": PHONE.ptk[32:48].hex(),
                      "michael_ap_to_station": PHONE.ptk[48:56].hex(),
                      "michael_station_to_ap": PHONE.ptk[56:64].hex(),
                      "handshake": PHONE.handshake, "group_key_handshake": group_handshake},
            "tablet": {"mac": TABLET.mac, "ip": TABLET.ip, "protocol": "RSN",
                       "key_descriptor_type": 2, "key_descriptor_version": 2,
                       "pairwise_cipher": "CCMP-128", "in_keys_file": "wpa-pwd",
                       "pmkid": TABLET.pmkid.hex(), "ptk": TABLET.ptk.hex(),
                       "tk": TABLET.key.hex(), "handshake": TABLET.handshake},
            "stranger": {"mac": STRANGER.mac, "ip": STRANGER.ip, "pairwise_cipher": "TKIP",
                         "in_keys_file": None, "tk": STRANGER.key[:16].hex(),
                         "tk_line": STRANGER.key.hex(),
                         "frames": [p[0] for p in lab.protected if p[4] == "stranger"]}},
        "gtk": {"key_id": 1, "cipher": "TKIP", "gtk": GTK.hex(), "tk": GTK[:16].hex(),
                "michael_ap_to_stations": GTK[16:24].hex(),
                "given_in": [group_handshake[0], TABLET.handshake[2]],
                "key_iv": KEY_IV.hex(), "frames": group_frames},
        "group_key_handshake": group_handshake,
        "requests": lab.requests, "negative": lab.negatives, "dns": lab.dns_log,
        **counts, "handshakes_with_key": 2, "handshakes_no_key": 0,
        "michael_twin": {"capture": "tkip-michael.pcap", "frame": forged_at,
                         "request": lab.requests[0]["host"]}}, f, indent=1)
    f.write("\n")
pairwise = counts["pairwise_frames"]
print("wrote tkip.pcap (%d frames; decrypted with the passphrase: %d pairwise (phone %d TKIP, "
      "tablet %d CCMP), %d group TKIP; %d protected in all), consentry.toml, 80211_keys, "
      "expected.json (%d requests)"
      % (len(cap.frames), counts["protected_frames"], pairwise["phone"], pairwise["tablet"],
         counts["group_frames"], counts["all_protected_frames"], len(lab.requests)))
