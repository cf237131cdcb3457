#!/usr/bin/env python3
"""Writes the "wep" sample capture of consentry's pcap tap: a test phone joining a WEP lab
access point (WEP-104, one shared key at key id 0, open system authentication), captured in
monitor mode (radiotap + 802.11); WEP has no handshake, so every protected frame opens
with the key alone. Another station's frame, under another WEP key, stays closed.

Outputs, next to this script:
  wep.pcap        classic pcap (magic 0xA1B2C3D4, little-endian, microseconds, snaplen
                  65535), link type 127 (radiotap).
  consentry.toml  the case: one phone known only by its Wi-Fi MAC address; its user
                  refuses at +2 s.
  80211_keys      the key as Wireshark's 802.11 keys file holds it (one line,
                  "wep","<26 hex digits>").
  expected.json   the key (cipher, key id, 13 octets); per station (phone, stranger): MAC,
                  IPv4 address, key, whether the keys file holds it, its first IV and its
                  protected frames, and the AP's first IV; the group frame; every HTTP
                  request (frame, time, host, method, path, identifier types, device,
                  consent state "not-asked" or "after-refusal"); the DNS queries and
                  answers; the frames that must not give packets ("negative": the
                  stranger's, kind "wlan-protected"; the group ARP request, decrypted but
                  no IP packet); counts: frames decrypted with the key (decrypted_frames:
                  the phone's and the AP's to it, station_frames, and the group frame,
                  group_frames) and all protected frames (all_protected_frames, the
                  stranger's included).

Story (from 2026-11-28T16:00:00Z): the AP "consentry-lab-wep" beacons with the Privacy
capability bit and no RSN or WPA element; another station (in no case), associated before
the capture, sends an NTP request to the router under its own WEP-104 key; the phone
authenticates (open system, algorithm 0) and associates (no element); it resolves a
tracker and sends it its advertising id in a GET (data frames both ways), resolves
another and POSTs it its Android id in a JSON body (QoS data frames of TID 6 both ways);
the AP sends a group-addressed ARP request under the same key; the phone's user refuses
at +2 s; the phone resolves a third tracker and sends it its IMEI (its frames data
frames, the AP's QoS data of TID 0). Every unicast frame is acknowledged by an ACK.

Byte layouts (IEEE 802.11-2020):
  radiotap        version 0, length 14, present = Flags | Rate | Channel; Flags 0x10:
                  the frame ends with its FCS (CRC-32, little-endian, over the MPDU as
                  transmitted, protected frames included); rate 54 Mb/s; 2437 MHz.
  beacon          (9.3.3.2) capability 0x0411 (ESS, Privacy, short slot time), SSID,
                  Supported Rates, DSSS Parameter Set (channel 6); no RSN element.
  association     (9.3.3.6, 9.3.3.7) open system authentication (algorithm 0,
                  transactions 1 and 2, status 0); request: capability 0x0431, listen
                  interval 10, SSID, Supported Rates; response: capability 0x0411, status
                  0, AID 1 | 0xC000.
  WEP MPDU        (12.3.2) MAC header with the Protected bit; IV (3 octets, the
                  transmitter's 24-bit counter, most significant octet first, as Linux's
                  mac80211 writes it), key id octet (key id << 6, ExtIV 0: 0x00); then
                  RC4, keyed with IV || key (16 octets), of LLC/SNAP + payload || ICV
                  (CRC-32 of LLC/SNAP + payload, little-endian); FCS. Each transmitter (the
                  AP, the phone, the stranger) counts its IV from a start drawn from
                  random.Random(20261128), as the key and the stranger's key are; the AP's
                  unicast and group frames share its counter. The group frame (From DS: A1
                  broadcast, A2 BSSID, A3 router; not acknowledged): a data frame, key id 0.

The crypto is captures/wpakit.py's, which checks itself on import (for WEP: RC4 against
RFC 6229, the WEP encapsulation example of IEEE Std 802.11-2012 annex M, a WEP-104 round
trip). The script checks with asserts, frame by frame in the written capture: every FCS;
that every protected frame decrypts back to its plaintext with its key (ICV checked) and
not with the other key; that each transmitter's IVs run on by one; that each request
carries its identifiers.

Checked with tshark 4.0.17 (KEY below stands for
'uat:80211_keys:"wep","<the key of expected.json>"'):
  tshark -r wep.pcap -o wlan.enable_decryption:TRUE -o KEY -Y http.request -T fields \\
      -e frame.number -e http.host
lists the three requests at the frames of expected.json: 23 (t.appsflyer.com, data
frame), 43 (ulogs.umeng.com, QoS TID 6) and 66 (sdk.e.qq.com, after the refusal);
  tshark -r wep.pcap -o wlan.enable_decryption:TRUE -o KEY \\
      -Y 'wlan.fc.protected == 1 && llc'
lists 31 of the 32 protected frames, expected.json's decrypted_frames (30 of the phone
and the AP's to it, the group ARP request 54); the stranger's frame 3 stays "Data";
without the key, none; -Y arp shows frame 54; with -o wlan.check_checksum:TRUE
-o ip.check_checksum:TRUE -o udp.check_checksum:TRUE -o tcp.check_checksum:TRUE
-q -z expert: every FCS good, no errors or warnings (only TCP's chats and notes and the
HTTP request and response lines).
Run: python3 captures/wep/make_wep.py
"""
import json
import os
import random
import sys
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
# captures/pcapkit.py: the packet-building helpers; captures/wlankit.py: the 802.11 ones
# and the lab network; captures/wpakit.py: RC4, WEP and the protected lab network (it
# checks itself against published test vectors on import).
sys.path.insert(0, os.path.dirname(HERE))
from pcapkit import luhn_ok  # noqa: E402
from wlankit import MAC_ONLY, SNAP_ARP, Capture, arp_request  # noqa: E402
from wpakit import Conn, Station, WpaLab  # noqa: E402

T0 = datetime(2026, 11, 28, 16, 0, 0, tzinfo=timezone.utc)
REFUSAL_S = 2.0

SSID = "consentry-lab-wep"
AP_MAC = "02:00:00:00:9e:01"        # the access point (BSSID)
ROUTER_MAC = "02:00:00:00:9e:fe"    # the lab's router behind it
ROUTER_IP = "192.168.93.1"
TRACKERS = {"t.appsflyer.com": "203.0.113.91", "ulogs.umeng.com": "203.0.113.92",
            "sdk.e.qq.com": "203.0.113.93"}

rng = random.Random(20261128)


def rand_bytes(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


PHONE = Station("phone", "02:00:00:dd:3e:17", "192.168.93.23",
                {"advertising_id": "4c7a9e1b-3d5f-4a8c-9e2b-6d8f0a2c4e61",
                 "android_id": "7e9b1d3f5a2c4e68",
                 "imei": "353847110629570"}, 1, 40733)
STRANGER = Station("stranger", "02:00:00:66:9e:42", "192.168.93.57", None, 2, 40999)
assert luhn_ok(PHONE.ids["imei"])

# The keys (WEP-104, 13 octets): the network's, at key id 0, and the stranger's other one;
# each transmitter's first IV (24 bits, far enough from 2^24 not to wrap).
KEY, KEY_ID = rand_bytes(13), 0
STRANGER_KEY = rand_bytes(13)
assert KEY != STRANGER_KEY
PHONE.cipher, PHONE.key = "WEP", KEY
STRANGER.cipher, STRANGER.key = "WEP", STRANGER_KEY
IV_START = {m: rng.getrandbits(23) for m in (AP_MAC, PHONE.mac, STRANGER.mac)}

cap = Capture(T0)
# The lab: beacons with no element after the DSSS Parameter Set (capability 0x0411: the
# Privacy bit), TCP ports from 51770 (step 29); requests, DNS lookups, negatives and the
# protected frames.
lab = WpaLab(cap, SSID, AP_MAC, ROUTER_MAC, ROUTER_IP, TRACKERS, b"", 0x5566778899,
             (51770, 29, 0x6A000000, 0x2B000000, 13000), refusal_s=REFUSAL_S)
lab.tsc_next[(AP_MAC, KEY)] = IV_START[AP_MAC]
lab.tsc_next[(PHONE.mac, KEY)] = IV_START[PHONE.mac]
lab.tsc_next[(STRANGER.mac, STRANGER_KEY)] = IV_START[STRANGER.mac]

# --- the capture --------------------------------------------------------------------------
# 1. Beacons; the stranger's NTP request under its own key (no answer in the capture).
cap.emit(lab.beacon(), 0.1024)
cap.emit(lab.beacon(), 0.03)
lab.ntp(STRANGER, 0x0E00, "WEP-protected data frame of the stranger under another WEP-104 "
        "key (not in the keys file): not decrypted", answer=False, qos=None)
cap.t = 0.2
# 2. The phone: open system authentication and association (no element: WEP).
lab.join(PHONE, b"")
cap.t = 0.3
# 3. The phone's first two requests: DNS and the GET in data frames both ways; DNS and a
# JSON POST in QoS data frames of TID 6 both ways.
lab.dns(PHONE, 0x7101, "t.appsflyer.com", None)
Conn(lab, PHONE, "t.appsflyer.com", None, None).exchange(
    "GET", "/api/v4/androidevent?app_id=com.example.shop&advertiserId=%s"
    % PHONE.ids["advertising_id"], b"", ["advertising_id"])
cap.t = 0.8
lab.dns(PHONE, 0x7102, "ulogs.umeng.com", 0x0006)
Conn(lab, PHONE, "ulogs.umeng.com", 0x0006, 0x0006).exchange(
    "POST", "/unify_logs",
    json.dumps({"appkey": "5f8e3a2b1c0d9e8f7a6b5c4d", "header": {
        "android_id": PHONE.ids["android_id"], "os": "Android", "os_version": "15"}},
        separators=(",", ":")).encode(), ["android_id"])
cap.t = 1.1
cap.emit(lab.beacon(), 0.01)
cap.t = 1.3
# 4. The AP's group-addressed ARP request under the same key (key id 0), a data frame.
group_frame = lab.group_frame(
    SNAP_ARP + arp_request(ROUTER_MAC, ROUTER_IP, "192.168.93.40"), "WEP", KEY, KEY_ID,
    "group-addressed WEP frame of the AP (the network's key, key id 0): decrypted, an ARP "
    "request: no IP packet, no error")
cap.t = 2.5
cap.emit(lab.beacon(), 0.01)
# 5. After the refusal (+2 s): the phone's request with its IMEI (its frames data frames,
# the AP's QoS data of TID 0).
cap.t = REFUSAL_S + 1.0
lab.dns(PHONE, 0x7103, "sdk.e.qq.com", None)
Conn(lab, PHONE, "sdk.e.qq.com", None, 0x0000).exchange(
    "GET", "/v2/ping?appid=1101152570&imei=%s" % PHONE.ids["imei"], b"", ["imei"])
cap.emit(lab.beacon())

# --- self-check of the written frames -----------------------------------------------------
# Every FCS; every protected frame opens with its key (ICV) and not with the other; each
# transmitter's IVs run on by one from its seeded start; the requests' identifiers.
counters = lab.check([("WEP", KEY), ("WEP", STRANGER_KEY)], (PHONE,))
for (ta, key), got in counters.items():
    assert got[0] == IV_START[":".join("%02x" % b for b in ta)], got
assert len(counters) == 3

cap.write_pcap(os.path.join(HERE, "wep.pcap"))
lab.write_case(os.path.join(HERE, "consentry.toml"), "wep", "make_wep.py", "wep-2026-11-28",
               "Example Shop 5.1 on a test phone, WEP lab Wi-Fi in monitor mode",
               [(PHONE, MAC_ONLY + "; joins with WEP (open system).")])
with open(os.path.join(HERE, "80211_keys"), "w") as f:
    f.write('"wep","%s"\n' % KEY.hex())

counts = {"station_frames": {"phone": lab.count("phone")}, "group_frames": lab.count("group"),
          "decrypted_frames": lab.count("phone") + lab.count("group"),
          "all_protected_frames": len(lab.protected)}
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump({
        "capture": "wep.pcap", "frames": len(cap.frames), "ssid": SSID, "bssid": AP_MAC,
        "key": {"cipher": "WEP-104", "key_id": KEY_ID, "key": KEY.hex()},
        "ap": {"mac": AP_MAC, "first_iv": IV_START[AP_MAC]},
        "stations": {
            "phone": {"mac": PHONE.mac, "ip": PHONE.ip, "cipher": "WEP-104",
                      "key_id": KEY_ID, "key": KEY.hex(), "in_keys_file": "wep",
                      "first_iv": IV_START[PHONE.mac]},
            "stranger": {"mac": STRANGER.mac, "ip": STRANGER.ip, "cipher": "WEP-104",
                         "key_id": 0, "key": STRANGER_KEY.hex(), "in_keys_file": None,
                         "first_iv": IV_START[STRANGER.mac],
                         "frames": [p[0] for p in lab.protected if p[4] == "stranger"]}},
        "group": {"key_id": KEY_ID, "frames": [group_frame]},
        "requests": lab.requests, "negative": lab.negatives, "dns": lab.dns_log,
        **counts}, f, indent=1)
    f.write("\n")
print("wrote wep.pcap (%d frames; decrypted with the key: %d (phone %d, group %d); %d "
      "protected in all), consentry.toml, 80211_keys, expected.json (%d requests)"
      % (len(cap.frames), counts["decrypted_frames"], counts["station_frames"]["phone"],
         counts["group_frames"], counts["all_protected_frames"], len(lab.requests)))
