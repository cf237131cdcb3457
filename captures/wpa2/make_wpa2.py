#!/usr/bin/env python3
"""Writes the "wpa2" sample capture of consentry's pcap tap: a test phone joining a
WPA2-Personal lab access point (PSK, CCMP-128, no PMF), captured in monitor mode
(radiotap + 802.11) from before its authentication, so that the 4-way handshake is in
the capture and its traffic can be decrypted with the network's passphrase.

Outputs, next to this script:
  wpa2.pcap       classic pcap (magic 0xA1B2C3D4, little-endian, microseconds, snaplen
                  65535), link type 127 (radiotap).
  consentry.toml  the case: one phone known only by its Wi-Fi MAC address.
  80211_keys      the key as Wireshark's 802.11 keys file holds it (one line,
                  "wpa-pwd","<passphrase>:<ssid>"; neither has ':' or '%', which
                  Wireshark would write as %3a and %25).
  expected.json   PMK, PTK and TK; the frames of the handshake; every HTTP request
                  (frame, time, host, method, path, identifier types, consent state);
                  the DNS queries and answers; the frames that must not give packets;
                  how many frames the phone's pairwise key protects, and the GTK.

Story (from 2026-11-28T13:00:00Z): the AP "consentry-lab-wpa2" beacons with an RSN
element; another station, associated before the capture began (its handshake is not
in it), sends a protected frame; the phone authenticates (open system), associates
with the same RSN element and runs the 4-way handshake; the AP sends a group-addressed
ARP request protected with the new GTK; the phone resolves a tracker and sends it its
advertising id (QoS TID 0), resolves a second and POSTs it its Android id in a JSON
body (TID 6; the phone's frames carry a queue size in the QoS control field and the
last one has its power-management bit set, both masked out of the CCMP AAD); the other
station sends a second protected frame; the user refuses at +2 s; the phone resolves
a third tracker and sends it its IMEI. Every unicast frame is acknowledged by an ACK.
All IP traffic of the phone travels in CCMP-protected QoS data frames: the phone's
and the AP's frames each count their own packet numbers from 1.

Byte layouts (IEEE 802.11-2020):
  radiotap        version 0, length 14, present = Flags | Rate | Channel; Flags 0x10:
                  the frame ends with its FCS (CRC-32, little-endian, over the MPDU
                  as transmitted, protected frames included); rate 54 Mb/s; 2437 MHz.
  RSN element     (9.4.2.24) 30 14 | version 1 | group CCMP 00-0F-AC:4 | 1 pairwise
                  CCMP 00-0F-AC:4 | 1 AKM PSK 00-0F-AC:2 | capabilities 0 (no PMF),
                  in beacons, the association request, M2 and M3.
  EAPOL-Key       (12.7.2) in QoS data frames (TID 7, unprotected), LLC/SNAP
                  AA AA 03 00 00 00 88 8E, then 802.1X version (2 from the AP, 1 from
                  the phone, as hostapd and wpa_supplicant send them), type 3, length;
                  descriptor type 2 (RSN); key information (big-endian) with
                  descriptor version 2 (HMAC-SHA1-128 MIC, AES key wrap):
                    M1 0x008A Pairwise|ACK, key length 16, replay counter 1, ANonce,
                       key data = PMKID KDE (dd 14 00-0F-AC 04, HMAC-SHA1-128(PMK,
                       "PMK Name" || AA || SPA)), no MIC;
                    M2 0x010A Pairwise|MIC, replay counter 1, SNonce, key data = the
                       phone's RSN element;
                    M3 0x13CA Pairwise|Install|ACK|MIC|Secure|Encrypted, key length 16,
                       replay counter 2, ANonce, key data = AES key wrap (RFC 3394)
                       under the KEK of: the AP's RSN element || GTK KDE (dd 16 00-0F-AC
                       01, key id 1, reserved 0, 16-byte GTK) || 0xdd 0x00 padding
                       to a multiple of 8 (48 bytes, 56 wrapped);
                    M4 0x030A Pairwise|MIC|Secure, replay counter 2, zero nonce.
                  The MIC is HMAC-SHA1(KCK, the 802.1X frame with a zero MIC)[:16].
  keys            (12.7.1, annex J) PMK = PBKDF2-HMAC-SHA1(passphrase, SSID, 4096, 32);
                  PTK = PRF-384(PMK, "Pairwise key expansion", min(AA,SPA) ||
                  max(AA,SPA) || min(ANonce,SNonce) || max(ANonce,SNonce)), PRF-n being
                  HMAC-SHA1(PMK, label || 0 || data || i) for i = 0, 1, 2 concatenated;
                  KCK = PTK[0:16], KEK = PTK[16:32], TK = PTK[32:48]. AA = BSSID, SPA =
                  the phone. Nonces and GTK from random.Random(20261128).
  CCMP MPDU       (12.5.3) MAC header with the Protected bit, CCMP header PN0 PN1 00
                  (key id << 6 | 0x20 ExtIV) PN2 PN3 PN4 PN5, ciphertext of
                  LLC/SNAP + packet, 8-byte MIC, FCS. AES-CCM (L = 2, M = 8) with
                  nonce = priority (QoS TID, 0 for non-QoS data) || A2 || PN5..PN0 and
                  AAD = frame control with subtype bits 4-6, Retry, PwrMgt and
                  MoreData cleared and Protected set (Order cleared too when QoS
                  Control is present) || A1 || A2 || A3 || sequence control & 0x000F
                  || A4 if present || QoS control & 0x000F, 0x00 if present.
                  Pairwise frames: key id 0, TK. The AP's group frame: key id 1, GTK.

The key derivation, EAPOL-Key and CCMP code is captures/wpakit.py's, which checks
itself with asserts on import: the PBKDF2 test vectors of IEEE 802.11's annex J, its
PRF test vector and the pairwise key derivation sample of the 802.11 test vectors (AA
a0-a1-a1-a3-a4-a5); its CCMP decryption against four of the IEEE 802.11i CCMP test
MPDUs (1: Retry; 2: subtype and Order; 6: QoS TID 13 in a masked QoS control, PwrMgt;
7: Retry, PwrMgt, MoreData); AES key wrap against RFC 3394 (and more for make_wpa3.py).
The script checks with asserts before writing the EAPOL MICs and the key wrap of M3;
and, frame by frame in the written capture (wpakit.WpaLab.check), every FCS, the
decryption of every protected frame back to its plaintext with its key and with none of
the capture's other keys (TK, GTK, the other station's), each transmitter's PNs running
on by one, and the identifiers of each request.

Checked with tshark 4.0.17 (KEY below stands for
'uat:80211_keys:"wpa-pwd","correct horse battery staple:consentry-lab-wpa2"'):
  tshark -r wpa2.pcap -o wlan.enable_decryption:TRUE -o KEY -Y http.request -T fields \\
      -e frame.number -e wlan.sa -e http.host -e http.request.uri
lists the three requests at the frames of expected.json;
  tshark -r wpa2.pcap -o wlan.enable_decryption:TRUE -o KEY -Y eapol -T fields \\
      -e frame.number -e wlan_rsna_eapol.keydes.msgnr -e wlan_rsna_eapol.keydes.key_info \\
      -e wlan.rsn.ie.gtk_kde.gtk
shows messages 1 to 4 (key information 0x008a, 0x010a, 0x13ca, 0x030a), M3 with the
GTK of its key data, which Wireshark unwraps; with -Y wlan.fc.protected==1 and
-e wlan.analysis.tk -e wlan.analysis.gtk, every frame of the phone is decrypted with
the TK of expected.json (DNS, TCP, HTTP; TID 6, queue size and PwrMgt included), the
AP's group-addressed frame with the GTK (an ARP request), while the other station's
two frames stay "QoS Data" (not decrypted). With the 80211_keys file in a Wireshark
profile (XDG_CONFIG_HOME=DIR, DIR/wireshark/80211_keys) instead of -o KEY, -Y
http.request lists the same three requests;
  tshark -r wpa2.pcap -o wlan.enable_decryption:TRUE -o KEY -o wlan.check_checksum:TRUE \\
      -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE -o tcp.check_checksum:TRUE \\
      -q -z expert
reports no errors and no warnings (only the chats and notes of TCP connection set-up
and tear-down, and the HTTP request and response lines), every FCS and IP, UDP and
TCP checksum good; without the key option, -Y http.request lists nothing.
Run: python3 captures/wpa2/make_wpa2.py
"""
import json
import os
import random
import sys
from datetime import datetime, timezone

from cryptography.hazmat.primitives.keywrap import aes_key_wrap

HERE = os.path.dirname(os.path.abspath(__file__))
# captures/pcapkit.py: the packet-building helpers the capture generators share;
# captures/wlankit.py: the 802.11 ones of make_wifi.py, make_wpa2.py, make_wpa3.py and
# make_tkip.py, and their lab network; captures/wpakit.py: the WPA keys, EAPOL-Key
# frames, CCMP and the protected lab network of make_wpa2.py, make_wpa3.py and
# make_tkip.py (it checks itself against the IEEE test vectors on import).
sys.path.insert(0, os.path.dirname(HERE))
from pcapkit import luhn_ok, mac  # noqa: E402
from wlankit import SNAP_ARP, Capture, arp_request, write_phone_case  # noqa: E402
from wpakit import (AKM_PSK, Conn, Station, WpaLab, eapol_key, eapol_mic_ok,  # noqa: E402
                    gtk_kde, key_data_of, pad_key_data, pmk_of, pmkid_of, ptk_of, pmkid_kde,
                    rsn_element, write_80211_keys)

T0 = datetime(2026, 11, 28, 13, 0, 0, tzinfo=timezone.utc)
REFUSAL_S = 2.0

SSID = "consentry-lab-wpa2"
PASSPHRASE = "correct horse battery staple"
PHONE_MAC = "02:00:00:bb:dd:17"
AP_MAC = "02:00:00:00:6b:01"        # the access point (BSSID, the authenticator AA)
ROUTER_MAC = "02:00:00:00:6b:fe"    # the lab's router behind it
OTHER_MAC = "02:00:00:44:55:66"     # another station, associated before the capture
PHONE_IP, ROUTER_IP, OTHER_IP = "192.168.89.23", "192.168.89.1", "192.168.89.57"
IDS = {"advertising_id": "c3a1e2f4-5b6d-4c8e-9f0a-1b2c3d4e5f60",
       "android_id": "a2f4c6e8b0d21357",
       "imei": "353284112039741"}
TRACKERS = {"rt.applovin.com": "203.0.113.32", "api2.amplitude.com": "203.0.113.62",
            "sdk.e.qq.com": "203.0.113.52"}

rng = random.Random(20261128)


def rand_bytes(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


assert luhn_ok(IDS["imei"])
# The phone (AID 1, DNS from port 41053) and the other station (wpakit.Station).
PHONE = Station("phone", PHONE_MAC, PHONE_IP, IDS, 1, 41053)
OTHER = Station("other", OTHER_MAC, OTHER_IP, None, None, None)


# --- 802.11 (radiotap, MAC header, FCS, the lab: wlankit.py; RSN element: wpakit.py) ------
# RSN element: version 1, group CCMP, 1 pairwise CCMP, 1 AKM PSK, capabilities 0.
RSN_IE = rsn_element([AKM_PSK])
assert RSN_IE == bytes([0x30, 20, 1, 0, 0x00, 0x0F, 0xAC, 4, 1, 0, 0x00, 0x0F, 0xAC, 4,
                        1, 0, 0x00, 0x0F, 0xAC, 2, 0, 0])
# The frames (seconds from T0), the clock, a sequence counter per transmitter.
cap = Capture(T0)
# The lab: beacons with the RSN element and a fixed timestamp, TCP ports from 51230 (step
# 23); requests, DNS lookups (no device: one phone), negatives and the protected frames,
# all QoS data frames but the group frame.
lab = WpaLab(cap, SSID, AP_MAC, ROUTER_MAC, ROUTER_IP, TRACKERS, RSN_IE, 0x2233445566,
             (51230, 23, 0x5C000000, 0x2D000000, 7000), tsf_ticks=False, refusal_s=REFUSAL_S,
             dns_device=False)


# --- the capture ---------------------------------------------------------------------------
# The handshake's values.
PMK = pmk_of(PASSPHRASE, SSID)
ANONCE, SNONCE, GTK = rand_bytes(32), rand_bytes(32), rand_bytes(16)
OTHER_TK = rand_bytes(16)          # the other station's key: not derivable from the capture
AA, SPA = mac(AP_MAC), mac(PHONE_MAC)
PTK = ptk_of(PMK, AA, SPA, ANONCE, SNONCE)
KCK, KEK, TK = PTK[0:16], PTK[16:32], PTK[32:48]
PMKID = pmkid_of(PMK, AA, SPA)
PHONE.cipher, PHONE.key = "CCMP", TK
OTHER.cipher, OTHER.key = "CCMP", OTHER_TK
OTHER_WHAT = ("CCMP-protected QoS data frame of another station whose handshake is not in the "
              "capture: not decrypted")

# 1. Beacons; another station's protected frame (UDP, NTP to the router).
cap.emit(lab.beacon(), 0.1024)
cap.emit(lab.beacon(), 0.03)
lab.tsc_next[(OTHER_MAC, OTHER_TK)] = 0x01C3         # it has been sending for a while
lab.ntp(OTHER, 0x0A00, OTHER_WHAT, answer=False)
cap.t = 0.2
# 2. Open system authentication and association (management frames, unprotected).
lab.join(PHONE, RSN_IE)
# 3. The 4-way handshake (12.7.6).
m3_plain = pad_key_data(RSN_IE + gtk_kde(1, GTK))
assert len(m3_plain) % 8 == 0 and len(m3_plain) >= 16
M = [eapol_key(2, 0x008A, 16, 1, ANONCE, pmkid_kde(PMKID)),
     eapol_key(1, 0x010A, 0, 1, SNONCE, RSN_IE, KCK),
     eapol_key(2, 0x13CA, 16, 2, ANONCE, aes_key_wrap(KEK, m3_plain), KCK),
     eapol_key(1, 0x030A, 0, 2, bytes(32), b"", KCK)]
handshake = lab.handshake(PHONE, M)
for m in M[1:]:                     # MICs, and the GTK back from M3's key data
    assert eapol_mic_ok(KCK, m)
assert key_data_of(KEK, M[2]).find(GTK) == len(RSN_IE) + 8
cap.t = 0.3
# 4. The AP's group-addressed ARP request, protected with the GTK (key id 1), in a data
# frame.
lab.group_frame(SNAP_ARP + arp_request(ROUTER_MAC, ROUTER_IP, "192.168.89.40"), "CCMP", GTK,
                1, "group-addressed CCMP frame of the AP (GTK, key id 1, from message 3): "
                "decrypted, an ARP request: no IP packet, no error")
cap.t = 0.35
# 5. The phone's traffic: two requests before the refusal, one after. The POST's frames
# are of TID 6, the phone's with a queue size in their QoS control (0x0210: bit 4 and
# queue size 2), which the CCMP AAD masks out.
lab.dns(PHONE, 0x2101, "rt.applovin.com")
Conn(lab, PHONE, "rt.applovin.com").exchange(
    "GET", "/v1/ad?format=banner&ifa=%s&os=android" % IDS["advertising_id"], b"",
    ["advertising_id"])
cap.t = 0.9
lab.dns(PHONE, 0x2102, "api2.amplitude.com")
Conn(lab, PHONE, "api2.amplitude.com", 0x0210 | 6, 6).exchange(
    "POST", "/2/httpapi",
    json.dumps({"api_key": "ffeeddccbbaa99887766554433221100",
                "events": [{"event_type": "app_open", "device_id": IDS["android_id"]}]},
               separators=(",", ":")).encode(),
    ["android_id"], doze=True)
cap.t = 1.5
cap.emit(lab.beacon(), 0.01)
lab.ntp(OTHER, 0x0A00, OTHER_WHAT, answer=False)
cap.t = REFUSAL_S + 1.0
lab.dns(PHONE, 0x2103, "sdk.e.qq.com")
Conn(lab, PHONE, "sdk.e.qq.com").exchange(
    "GET", "/v2/ping?appid=1101152570&imei=%s" % IDS["imei"], b"", ["imei"])
cap.emit(lab.beacon())


# --- self-check of the written frames -------------------------------------------------------
# Every FCS; every protected frame opens with its key and with neither other (the group
# frame not with the TK); the requests' identifiers.
lab.check([("CCMP", k) for k in (TK, GTK, OTHER_TK)], (PHONE,))

cap.write_pcap(os.path.join(HERE, "wpa2.pcap"))
write_phone_case(os.path.join(HERE, "consentry.toml"), "wpa2", "make_wpa2.py",
                 "wpa2-2026-11-28",
                 "Example Shop 5.1 on a test phone, WPA2-Personal lab Wi-Fi in monitor mode",
                 PHONE_MAC, IDS, cap.iso(REFUSAL_S))
write_80211_keys(os.path.join(HERE, "80211_keys"), PASSPHRASE, SSID)
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump({"capture": "wpa2.pcap", "frames": len(cap.frames), "ssid": SSID,
               "passphrase": PASSPHRASE, "pmk": PMK.hex(), "ptk": PTK.hex(), "tk": TK.hex(),
               "handshake": handshake, "requests": lab.requests, "negative": lab.negatives,
               "protected_frames": lab.count("phone"), "group_frames": lab.count("group"),
               "dns": lab.dns_log},
              f, indent=1)
    f.write("\n")
print("wrote wpa2.pcap (%d frames, %d protected with the phone's pairwise key), "
      "consentry.toml, 80211_keys, expected.json (%d requests)"
      % (len(cap.frames), lab.count("phone"), len(lab.requests)))
