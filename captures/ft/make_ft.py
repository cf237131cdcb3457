#!/usr/bin/env python3
"""Writes the "ft" sample capture of consentry's pcap tap: two access points of one
mobility domain (same SSID, fast BSS transition, IEEE 802.11r, with FT-PSK and
FT-802.1X, CCMP-128) in monitor mode (radiotap + 802.11), a phone that joins the first
with FT-PSK and roams over the air to the second with no EAPOL at all, and a tablet that
joins the first with FT-802.1X; both from before their authentication, so that the keys
of every association, the roam's included, can be derived from the capture and the
network's passphrase and the tablet's MSK.

Outputs, next to this script:
  ft.pcap         classic pcap (magic 0xA1B2C3D4, little-endian, microseconds, snaplen
                  65535), link type 127 (radiotap).
  consentry.toml  the case: the phone and the tablet, each known only by its Wi-Fi MAC
                  address; the phone's user refuses at +2 s.
  80211_keys      the keys as Wireshark's 802.11 keys file holds them, two lines, no
                  comments: "wpa-pwd","<passphrase>:<ssid>" (neither has ':' or '%',
                  which Wireshark would write as %3a and %25), then "msk","<the tablet's
                  64-octet MSK, 128 hex digits>".
  expected.json   the mobility domain (MDID, FT capability and policy), the R0KH-ID; per
                  AP its BSSID (its R1KH-ID) and GTK (key id, value, the frames that give
                  it, the frame sent under it); the PSK; per station: MAC, IPv4 address,
                  AKM, key descriptor version, pairwise cipher, the line of the keys file
                  that opens it (in_keys_file: "wpa-pwd" or "msk"), XXKey, PMK-R0 and
                  PMKR0Name; the phone's initial association to AP1 (association request
                  and response, the 4-way handshake, PMK-R1, PMKR1Name, TK, how many
                  protected frames it opens) and its roam to AP2 (the two FT
                  authentication frames, the reassociation request and response, PMK-R1,
                  PMKR1Name, ANonce, SNonce, PTK, KCK, KEK, TK, the two FTE MICs, how many
                  frames it opens); the tablet's MSK, PMKR1Name, association, EAP-Success,
                  4-way handshake, PTK and TK; every HTTP request (frame, time, host,
                  method, path, identifier types, device, consent state "not-asked" or
                  "after-refusal"); the DNS query and answer; the frames that must not give
                  packets ("negative": the two group ARP requests, decrypted but no IP
                  packet); counts: frames decrypted with the keys of 80211_keys, pairwise
                  (protected_frames, per station in pairwise_frames) and group
                  (group_frames), their sum (decrypted_frames), all protected frames
                  (all_protected_frames), 4-way handshakes completed with a given key
                  (handshakes_with_key: 2) and with none (handshakes_no_key: 0), FT roams
                  (ft_roams: 1).

Story (from 2026-11-30T11:00:00Z): AP1 (02:00:00:00:f7:01) and AP2 (02:00:00:00:f7:02)
beacon "consentry-lab-ft" with the same RSN element and Mobility Domain element; the
phone makes its FT initial mobility domain association with AP1 (open system
authentication, association with the MDE, the 4-way handshake, which gives it AP1's
GTK); AP1 sends a group-addressed ARP request under its GTK; the phone resolves a tracker
and sends it its advertising id; the tablet makes its FT initial mobility domain
association with AP1 with FT-802.1X (its EAP authentication is not in the capture, only
AP1's EAP-Success after the association) and sends its advertising id to another
tracker; the phone roams over the air to AP2 (FT authentication and reassociation: the
PTK comes from the PMK-R1 of AP2 and the nonces of the FT authentication, AP2's GTK in
the reassociation response) and POSTs its Android id to a third tracker via AP2; AP2
sends a group-addressed ARP request under its GTK; the phone's user refuses at +2 s; the
phone sends its IMEI to a fourth tracker via AP2. Every unicast frame is acknowledged by
an ACK; every protected frame is a QoS data frame of TID 0 (the group frames' QoS control
0x0020, ack policy No Ack); each transmitter counts the PNs of each key from 1.

Byte layouts (IEEE 802.11-2020; hostapd's wpa_common.c and ieee802_11_defs.h agree):
  radiotap        version 0, length 14, present = Flags | Rate | Channel; Flags 0x10:
                  the frame ends with its FCS (CRC-32, little-endian, over the MPDU as
                  transmitted, protected frames included); rate 54 Mb/s; 2437 MHz.
  RSN element     (9.4.2.24) version 1 | group CCMP-128 00-0F-AC:4 | 1 pairwise
                  CCMP-128 | AKM suites | capabilities 0 | with a PMKID, count 1 and it:
                    the APs' (beacons; FT authentication transaction 2 with PMKR0Name;
                    message 3 and the reassociation response with PMKR1Name): 2 AKMs
                    FT-802.1X 00-0F-AC:3 and FT-PSK 00-0F-AC:4 (30 18, 30 2a with the
                    PMKID);
                    the stations' (association request; message 2 and the reassociation
                    request with PMKR1Name; FT authentication transaction 1 with
                    PMKR0Name): their one AKM, FT-PSK (phone) or FT-802.1X (tablet) (30
                    14, 30 26).
  Mobility Domain (9.4.2.46) 36 03 | MDID 4c 7a | FT capability and policy 0 (FT over
                  the air only): in beacons, the (re)association frames, the FT
                  authentication frames, messages 2 and 3.
  FT element      (9.4.2.47) 37 | length | MIC Control (reserved 0, element count) |
                  MIC (16) | ANonce (32) | SNonce (32) | subelements id, length, body, in
                  the order of their ids: 1 R1KH-ID (the AP's MAC), 2 GTK (Key Info 2
                  octets LE with the key id in bits 0-1 | Key Length 1 | RSC 8 | the GTK
                  AES-key-wrapped under the KEK, 24 octets), 3 R0KH-ID ("ap1.lab.example",
                  15 octets):
                    association response, messages 2 and 3: count 0, zero MIC and nonces,
                    R1KH-ID (AP1), R0KH-ID (37 6b);
                    FT authentication 1: SNonce, R0KH-ID; 2: ANonce, SNonce, R1KH-ID
                    (AP2), R0KH-ID;
                    reassociation request: count 3, MIC, ANonce, SNonce, R1KH-ID (AP2),
                    R0KH-ID; response: count 3, MIC, ANonce, SNonce, R1KH-ID, GTK (AP2's,
                    key id 2, RSC 0), R0KH-ID (37 90).
  Timeout Interval (9.4.2.48) 38 05 | type | value (LE): 1 reassociation deadline 1000
                  TUs, 2 key lifetime 1209600 s (message 3).
  association     (9.3.3.6-9.3.3.9) open system authentication (algorithm 0,
                  transactions 1 and 2, status 0); association request: capability
                  0x0431, listen interval 10, SSID, Supported Rates, the station's RSN
                  element, MDE; response: capability 0x0411, status 0, AID 1 (phone), 2
                  (tablet) | 0xC000, Supported Rates, MDE, FTE. FT authentication
                  (algorithm 2, 9.3.3.12): transaction 1 (phone to AP2), 2 (AP2, status
                  0), each RSN element, MDE, FTE. Reassociation request (subtype 2):
                  capability, listen interval, current AP (AP1), SSID, Supported Rates,
                  RSN element, MDE, FTE; response (subtype 3): capability, status 0, AID 1
                  | 0xC000, Supported Rates, RSN element, MDE, FTE.
  EAP-Success     AP1 to the tablet after its association: 802.1X version 2, type 0
                  (EAP-Packet), length 4; EAP code 3, identifier 0x2a, length 4; in a
                  QoS data frame of TID 7, unprotected.
  EAPOL-Key       (12.7.2, 12.7.6.2-12.7.6.5) LLC/SNAP AA AA 03 00 00 00 88 8E, 802.1X
                  version (2 from the AP, 1 from the stations), type 3, length;
                  descriptor type 2 (RSN), key descriptor version 3 (AES-128-CMAC MIC over
                  the 802.1X frame with a zero MIC, AES key wrap), in QoS data frames of
                  TID 7, unprotected, the FT initial mobility domain association's:
                    M1 0x008B Pairwise|ACK, key length 16, replay counter 1, ANonce, no
                       key data;
                    M2 0x010B Pairwise|MIC, replay counter 1, SNonce, key data = the
                       station's RSN element with PMKR1Name || MDE || FTE (as in the
                       association response) (154 octets);
                    M3 0x13CB Pairwise|Install|ACK|MIC|Secure|Encrypted, key length 16,
                       replay counter 2, ANonce, key RSC = the GTK's last PN (0 for the
                       phone, 1 for the tablet), key data = AES key wrap (RFC 3394) under
                       the KEK of the AP's RSN element with PMKR1Name || MDE || GTK KDE
                       (dd 16 00-0F-AC 01, key id 1, AP1's GTK) || FTE || TIE (1, 1000) ||
                       TIE (2, 1209600) || 0xdd 0x00... (200 octets, 208 wrapped), in the
                       order hostapd writes them;
                    M4 0x030B Pairwise|MIC|Secure, replay counter 2, zero nonce.
  keys            (12.7.1.7, AKMs 3 and 4 with KDF-SHA-256: HMAC-SHA256(key, i || label
                  || context || length in bits), i and length 16-bit LE) XXKey = the PSK,
                  PBKDF2-HMAC-SHA1(passphrase, SSID, 4096, 32) (FT-PSK), or MSK[32:64]
                  (FT-802.1X; the MSK from random.Random(20261202), as the nonces and the
                  GTKs are); R0-Key-Data = KDF-SHA-256-384(XXKey, "FT-R0", SSIDlength ||
                  SSID || MDID || R0KHlength || R0KH-ID || S0KH-ID), PMK-R0 its first 32
                  octets, PMKR0Name = SHA-256("FT-R0N" || its last 16 octets)[:16];
                  PMK-R1 = KDF-SHA-256-256(PMK-R0, "FT-R1", R1KH-ID || S1KH-ID), PMKR1Name
                  = SHA-256("FT-R1N" || PMKR0Name || R1KH-ID || S1KH-ID)[:16]; PTK =
                  KDF-SHA-256-384(PMK-R1, "FT-PTK", SNonce || ANonce || BSSID || STA-ADDR):
                  KCK 0:16, KEK 16:32, TK 32:48. S0KH-ID = S1KH-ID = the station's MAC.
                  The FTE MIC (13.8.4, 13.8.5) = AES-128-CMAC(KCK, STA-MAC || AP2's MAC ||
                  transaction sequence number (5 for the reassociation request, 6 for
                  the response) || RSN element || MDE || FTE with a zero MIC), whole
                  elements as in the frame.
  CCMP MPDU       (12.5.3) MAC header with the Protected bit, CCMP header PN0 PN1 00
                  (key id << 6 | 0x20 ExtIV) PN2 PN3 PN4 PN5, ciphertext of LLC/SNAP +
                  payload, 8-octet MIC, FCS, as in make_wpa2.py. Pairwise frames: key id 0,
                  the station's TK (the phone's of AP1, then of AP2). Group frames (From
                  DS: A1 broadcast, A2 the AP, A3 router): AP1's under its GTK (key id 1),
                  AP2's under its own (key id 2).

The crypto is captures/wpakit.py's, which checks itself on import (PBKDF2, KDF-SHA256,
AES-CMAC, AES key wrap and CCMP as for make_wpa3.py; no published vector of the FT key
hierarchy with expected outputs was found, so its FT code is checked by tshark below,
which derives every key from the frames alone). The script checks with asserts
before writing: every EAPOL MIC; the key wrap of each M3 (the AP's RSN element with the
station's PMKR1Name, the MDE, AP1's GTK); the GTK subelement's wrapped key back to AP2's
GTK; and, frame by frame in the written capture, every FCS, the two FTE MICs computed
again from the written reassociation frames, that every protected frame decrypts to its
plaintext with its key and with none of the capture's other keys (the phone's two TKs,
the tablet's, the two GTKs), each transmitter's PNs per key running on from 1, and the
identifiers of each request.

Checked with tshark 4.0.17 (PWD and MSK below stand for
'uat:80211_keys:"wpa-pwd","copper kettle drifts north:consentry-lab-ft"' and
'uat:80211_keys:"msk","<the second line's hex digits>"'):
  tshark -r ft.pcap -o wlan.enable_decryption:TRUE -o PWD -o MSK -Y http.request -T fields \\
      -e frame.number -e wlan.sa -e wlan.bssid -e http.host -e http.request.uri
lists the four requests at the frames of expected.json: 32 (phone via AP1,
t.appsflyer.com), 66 (tablet via AP1, rt.applovin.com), 92 (phone via AP2 after the
roam, ulogs.umeng.com, POST) and 111 (phone via AP2, sdk.e.qq.com, after the refusal);
  tshark -r ft.pcap -o wlan.enable_decryption:TRUE -o PWD -o MSK -Y eapol -T fields \\
      -e frame.number -e wlan_rsna_eapol.keydes.msgnr -e wlan_rsna_eapol.keydes.key_info \\
      -e wlan.rsn.ie.gtk_kde.gtk
shows the phone's 4-way handshake at 13-19 and the tablet's at 52-58 (0x008b 0x010b 0x13cb
0x030b), each M3 unwrapped (RSN element with PMKR1Name, MDE, AP1's GTK, FTE, the two
Timeout Interval elements), and the EAP-Success at 50; -Y 'wlan.fixed.auth.alg == 2 ||
wlan.fc.type_subtype == 2 || wlan.fc.type_subtype == 3' shows the FT authentication at 78
and 80 (PMKID PMKR0Name) and the reassociation at 82 and 84 (PMKID PMKR1Name, current AP
AP1, FTE element count 3, the MICs of expected.json, the GTK subelement with key id 2);
  tshark -r ft.pcap -o wlan.enable_decryption:TRUE -o PWD -o MSK \\
      -Y 'wlan.fc.protected == 1' -T fields -e frame.number -e wlan.bssid \\
      -e wlan.analysis.tk -e wlan.analysis.gtk
decrypts all 36 protected frames, each with the key of expected.json: 10 of the phone via
AP1 with its first TK (22-40), 8 of the tablet (60-74), 16 of the phone via AP2 with the
TK tshark derives from the FT authentication and reassociation frames (86-100, 105-119),
frame 21 with AP1's GTK (from message 3) and frame 102 with AP2's (from the GTK
subelement of the reassociation response); -Y 'wlan.fc.protected == 1 && llc' counts
36. With PWD alone: the phone's 26 and the two group frames (28), requests 32, 92 and
111; with MSK alone: the tablet's 8, request 66; with the 80211_keys file in a profile
(XDG_CONFIG_HOME=DIR, DIR/wireshark/80211_keys): the same four requests and 36 frames;
without a key, nothing;
  tshark -r ft.pcap -o wlan.enable_decryption:TRUE -o PWD -o MSK \\
      -o wlan.check_checksum:TRUE -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE \\
      -o tcp.check_checksum:TRUE -q -z expert
reports no errors and no warnings (only the chats and notes of TCP connection set-up and
tear-down, and the HTTP request and response lines); every FCS (122) and IP, UDP and TCP
checksum good, no malformed packet. (hostapd writes the reassociation response's FTE
subelements as R1KH-ID, R0KH-ID, GTK; here they are in the order of their ids.)
Run: python3 captures/ft/make_ft.py
"""
import json
import os
import random
import struct
import sys
from datetime import datetime, timezone

from cryptography.hazmat.primitives.keywrap import aes_key_unwrap, aes_key_wrap

HERE = os.path.dirname(os.path.abspath(__file__))
# captures/pcapkit.py: the packet-building helpers the capture generators share;
# captures/wlankit.py: the 802.11 ones of make_wifi.py and the WPA captures, and their lab
# network; captures/wpakit.py: the WPA keys (the FT key hierarchy among them), EAPOL-Key
# frames, the RSN, Mobility Domain and FT elements, CCMP and the protected lab network of
# the WPA captures (it checks itself against the IEEE test vectors on import).
sys.path.insert(0, os.path.dirname(HERE))
from pcapkit import luhn_ok, mac  # noqa: E402
from wlankit import MAC_ONLY, SNAP_ARP, Capture, arp_request  # noqa: E402
from wpakit import (AKM_FT_8021X, AKM_FT_PSK, Conn, Station as WpaStation,  # noqa: E402
                    WpaLab, aes_cmac, eapol_key, eapol_mic_ok, ft_element, ft_gtk_subelement,
                    ft_mic, ft_pmk_r0, ft_pmk_r1, ft_ptk, gtk_kde, key_data_of,
                    mobility_domain_element, pad_key_data, pmk_of, rsn_element,
                    timeout_interval_element, write_80211_keys)

T0 = datetime(2026, 11, 30, 11, 0, 0, tzinfo=timezone.utc)
REFUSAL_S = 2.0

SSID = "consentry-lab-ft"
PASSPHRASE = "copper kettle drifts north"
AP1_MAC = "02:00:00:00:f7:01"       # the first access point (BSSID, its R1KH-ID)
AP2_MAC = "02:00:00:00:f7:02"       # the second, the phone's target
ROUTER_MAC = "02:00:00:00:f7:fe"    # the lab's router behind both
ROUTER_IP = "192.168.93.1"
MDID = bytes([0x4C, 0x7A])          # the mobility domain (the MDE's two octets)
R0KH_ID = b"ap1.lab.example"        # the R0 key holder of both APs
TRACKERS = {"t.appsflyer.com": "203.0.113.91", "rt.applovin.com": "203.0.113.92",
            "ulogs.umeng.com": "203.0.113.93", "sdk.e.qq.com": "203.0.113.94"}

rng = random.Random(20261202)


def rand_bytes(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


class Station(WpaStation):
    """A station of the story (wpakit.Station) with its FT AKM and RSN element (of its
    association request); once derived, its FT keys."""

    def __init__(self, name, mac_address, ip, akm, ids, aid, dns_port):
        WpaStation.__init__(self, name, mac_address, ip, ids, aid, dns_port)
        self.akm, self.rsn = akm, rsn_element([akm])


PHONE = Station("phone", "02:00:00:fa:3c:21", "192.168.93.23", AKM_FT_PSK,
                {"advertising_id": "8e1f3a5c-7b9d-4e2f-a6c8-0b1d3f5a7c9e",
                 "android_id": "d7f9b1c3e5a20468",
                 "imei": "356409172836457"}, 1, 41211)
TABLET = Station("tablet", "02:00:00:fa:b6:4e", "192.168.93.31", AKM_FT_8021X,
                 {"advertising_id": "2c4e6a8b-0d1f-4a3b-8c5d-7e9f1a3b5c7d",
                  "android_id": "5e7a9c1b3d2f4680",
                  "imei": "861203074462811"}, 2, 38411)
assert luhn_ok(PHONE.ids["imei"]) and luhn_ok(TABLET.ids["imei"])

# --- 802.11 (radiotap, MAC header, FCS, the lab: wlankit.py; elements: wpakit.py) ---------
# The APs' RSN element: version 1, group CCMP-128, 1 pairwise CCMP-128, 2 AKMs FT-802.1X
# (00-0F-AC:3) and FT-PSK (00-0F-AC:4), capabilities 0; the Mobility Domain element: the
# MDID, FT capability and policy 0 (FT over the air only).
AP_RSN = rsn_element([AKM_FT_8021X, AKM_FT_PSK])
assert AP_RSN.hex() == "30180100000fac040100000fac040200000fac03000fac040000"
MDE = mobility_domain_element(MDID)
assert MDE.hex() == "36034c7a00"
assert PHONE.rsn.hex() == "30140100000fac040100000fac040100000fac040000"
assert TABLET.rsn.hex() == "30140100000fac040100000fac040100000fac030000"
AP_TSF0 = {AP1_MAC: 0x6677889900, AP2_MAC: 0x0123456789}
cap = Capture(T0)
# The lab: AP1's beacons (AP2's through lab.beacon(AP2_MAC, ...)) with the RSN element and
# the MDE, TCP ports from 50810 (step 41); requests, DNS lookups, negatives and the
# protected frames (QoS data frames of TID 0 unless said).
lab = WpaLab(cap, SSID, AP1_MAC, ROUTER_MAC, ROUTER_IP, TRACKERS, AP_RSN + MDE,
             AP_TSF0[AP1_MAC], (50810, 41, 0x3E000000, 0x5A000000, 13000), refusal_s=REFUSAL_S)


def beacons():
    """A beacon of each AP (same SSID, RSN element and MDE)."""
    cap.emit(lab.beacon(), 0.0002)
    cap.emit(lab.beacon(AP2_MAC, AP_TSF0[AP2_MAC]), 0.01)


# --- the capture --------------------------------------------------------------------------
def initial_md_association(st, xxkey, gtk, rsc, eap_success=None):
    """The FT initial mobility domain association of the station with AP1 (13.4.2): open
    system authentication; association request with its RSN element and the MDE;
    association response with the MDE and an FTE of R1KH-ID (AP1) and R0KH-ID; with
    `eap_success`, AP1's EAP-Success (after the 802.1X authentication the capture does not
    hold); the 4-way handshake, key descriptor version 3 (AES-128-CMAC MICs, AES key
    wrap; key information 0x008B, 0x010B, 0x13CB, 0x030B): M1 no key data; M2 the
    station's RSN element with PMKR1Name, the MDE and the FTE of the association
    response; M3 wraps the AP's RSN element with PMKR1Name, the MDE, the GTK KDE (key id
    1), the FTE and the Timeout Interval elements of the reassociation deadline and the
    key lifetime, in the order hostapd writes them (key RSC: the GTK's last PN). The keys:
    PMK-R0 from the XXKey, PMK-R1 for AP1, the PTK of the handshake's nonces."""
    sta, ap = mac(st.mac), mac(AP1_MAC)
    st.xxkey = xxkey
    st.pmk_r0, st.pmk_r0_name = ft_pmk_r0(xxkey, SSID, MDID, R0KH_ID, sta)
    st.pmk_r1, st.pmk_r1_name = ft_pmk_r1(st.pmk_r0, st.pmk_r0_name, ap, sta)
    fte = ft_element(r1kh_id=ap, r0kh_id=R0KH_ID)
    st.association = lab.join(st, st.rsn + MDE, MDE + fte)
    if eap_success is not None:
        st.eap_success = cap.emit_acked(lab.eapol_frame(st, False, eap_success), AP1_MAC,
                                        0.004)
    anonce, snonce = rand_bytes(32), rand_bytes(32)
    st.ptk = ft_ptk(st.pmk_r1, snonce, anonce, ap, sta)
    st.kck, st.kek, st.tk = st.ptk[0:16], st.ptk[16:32], st.ptk[32:48]
    st.cipher, st.key = "CCMP", st.tk
    sta_rsn = rsn_element([st.akm], pmkids=(st.pmk_r1_name,))
    ap_rsn = rsn_element([AKM_FT_8021X, AKM_FT_PSK], pmkids=(st.pmk_r1_name,))
    m3_plain = pad_key_data(ap_rsn + MDE + gtk_kde(1, gtk) + fte
                            + timeout_interval_element(1, 1000)
                            + timeout_interval_element(2, 1209600))
    msgs = [eapol_key(2, 0x008B, 16, 1, anonce),
            eapol_key(1, 0x010B, 0, 1, snonce, sta_rsn + MDE + fte, st.kck, mic=aes_cmac),
            eapol_key(2, 0x13CB, 16, 2, anonce, aes_key_wrap(st.kek, m3_plain), st.kck, rsc,
                      mic=aes_cmac),
            eapol_key(1, 0x030B, 0, 2, bytes(32), b"", st.kck, mic=aes_cmac)]
    for m in msgs[1:]:
        assert eapol_mic_ok(st.kck, m, aes_cmac)
    assert key_data_of(st.kek, msgs[2]) == m3_plain
    lab.handshake(st, msgs)
    st.m3, st.m3_kek, st.nonces = msgs[2], st.kek, (anonce, snonce)


def roam(st, target, gtk, gtk_id, rsc):
    """The station's FT protocol over the air to `target` (13.8): FT authentication
    (algorithm 2) transaction 1 (RSN element with PMKR0Name, MDE, FTE with SNonce and
    R0KH-ID) and 2 (the AP's RSN element with PMKR0Name, MDE, FTE with ANonce, SNonce,
    R1KH-ID, R0KH-ID; status 0); the reassociation request (current AP: AP1; RSN element
    with PMKR1Name, MDE, FTE with MIC element count 3, MIC, ANonce, SNonce, R1KH-ID,
    R0KH-ID) and response (the AP's RSN element with PMKR1Name, MDE, FTE with MIC, the
    nonces, R1KH-ID, the GTK subelement (`gtk` wrapped under the new KEK, key id
    `gtk_id`, RSC `rsc`) and R0KH-ID). No EAPOL: the PTK comes from PMK-R1 for the
    target and the nonces of the FT authentication; the MICs are AES-128-CMAC under its
    KCK (wpakit.ft_mic, transaction sequence 5 and 6). The new keys replace the station's
    and it is with the target from then on (Station.bssid)."""
    sta, ap = mac(st.mac), mac(target)
    st.bssid = target
    snonce, anonce = rand_bytes(32), rand_bytes(32)
    frames = [lab.auth(st, True, 2, 1,
                       rsn_element([st.akm], pmkids=(st.pmk_r0_name,)) + MDE
                       + ft_element(snonce=snonce, r0kh_id=R0KH_ID), 0.002),
              lab.auth(st, False, 2, 2,
                       rsn_element([AKM_FT_8021X, AKM_FT_PSK], pmkids=(st.pmk_r0_name,))
                       + MDE + ft_element(anonce=anonce, snonce=snonce, r1kh_id=ap,
                                          r0kh_id=R0KH_ID), 0.002)]
    pmk_r1, pmk_r1_name = ft_pmk_r1(st.pmk_r0, st.pmk_r0_name, ap, sta)
    ptk = ft_ptk(pmk_r1, snonce, anonce, ap, sta)
    kck, kek = ptk[0:16], ptk[16:32]
    sta_rsn = rsn_element([st.akm], pmkids=(pmk_r1_name,))
    ap_rsn = rsn_element([AKM_FT_8021X, AKM_FT_PSK], pmkids=(pmk_r1_name,))
    fte_req = ft_element(3, bytes(16), anonce, snonce, ap, None, R0KH_ID)
    mic_req = ft_mic(kck, sta, ap, 5, sta_rsn, MDE, fte_req)
    fte_req = ft_element(3, mic_req, anonce, snonce, ap, None, R0KH_ID)
    gtk_sub = ft_gtk_subelement(kek, gtk_id, rsc, gtk)
    fte_resp = ft_element(3, bytes(16), anonce, snonce, ap, gtk_sub, R0KH_ID)
    mic_resp = ft_mic(kck, sta, ap, 6, ap_rsn, MDE, fte_resp)
    fte_resp = ft_element(3, mic_resp, anonce, snonce, ap, gtk_sub, R0KH_ID)
    assert aes_key_unwrap(kek, gtk_sub[11:]) == gtk
    frames += lab.associate(st, sta_rsn + MDE + fte_req, ap_rsn + MDE + fte_resp, AP1_MAC)
    st.roam = {"bssid": target, "pmk_r1": pmk_r1, "pmk_r1_name": pmk_r1_name,
               "anonce": anonce, "snonce": snonce, "ptk": ptk, "frames": frames,
               "mic_request": mic_req, "mic_response": mic_resp,
               "elements": (sta_rsn, fte_req, ap_rsn, fte_resp)}
    st.first_key = st.key
    st.kck, st.kek, st.tk = kck, kek, ptk[32:48]
    st.key = st.tk


def eap_success(identifier):
    """An 802.1X EAP-Packet (version 2, type 0, length 4) holding an EAP Success (code 3,
    the identifier, length 4) (IEEE 802.1X-2004 7.5, RFC 3748 4.2)."""
    return struct.pack("!BBH", 2, 0, 4) + struct.pack("!BBH", 3, identifier, 4)


def group_arp(ap_mac, gtk, keyid, target_ip, what):
    """The AP's group-addressed ARP request for the router (From DS: A1 broadcast, A2 the
    BSSID, A3 router) in a QoS data frame of ack policy No Ack (QoS control 0x0020),
    under the AP's GTK."""
    return lab.group_frame(SNAP_ARP + arp_request(ROUTER_MAC, ROUTER_IP, target_ip), "CCMP",
                           gtk, keyid, what, 0x0020, ap_mac)


# The network's keys: the PSK of the passphrase (the XXKey of FT-PSK), the tablet's MSK
# (its XXKey the second half), each AP's GTK.
PSK = pmk_of(PASSPHRASE, SSID)
MSK = rand_bytes(64)
GTK1, GTK2 = rand_bytes(16), rand_bytes(16)
group_frames = {}

# 1. Beacons of both APs.
beacons()
cap.t = 0.1024
beacons()
cap.t = 0.2
# 2. The phone: FT initial mobility domain association to AP1 with FT-PSK.
initial_md_association(PHONE, PSK, GTK1, 0)
cap.t = 0.3
# 3. AP1's group-addressed ARP request under its GTK (key id 1).
group_frames[AP1_MAC] = [group_arp(
    AP1_MAC, GTK1, 1, "192.168.93.40",
    "group-addressed CCMP frame of AP1 (its GTK, key id 1, from the phone's message 3): "
    "decrypted, an ARP request: no IP packet, no error")]
cap.t = 0.35
# 4. The phone's DNS and a GET with its advertising id via AP1.
lab.dns(PHONE, 0x8101, "t.appsflyer.com")
Conn(lab, PHONE, "t.appsflyer.com").exchange(
    "GET", "/api/v4/androidevent?app_id=com.example.shop&advertiserId=%s"
    % PHONE.ids["advertising_id"], b"", ["advertising_id"])
cap.t = 0.7
# 5. The tablet: FT initial mobility domain association to AP1 with FT-802.1X (EAP-Success,
# then the 4-way handshake; key RSC 1, the PN of AP1's one group frame); a GET with its
# advertising id.
initial_md_association(TABLET, MSK[32:64], GTK1, lab.tsc_next[(AP1_MAC, GTK1)] - 1,
                       eap_success(0x2A))
cap.t = 0.8
Conn(lab, TABLET, "rt.applovin.com").exchange(
    "GET", "/v1/ad?format=banner&ifa=%s&os=android" % TABLET.ids["advertising_id"], b"",
    ["advertising_id"])
cap.t = 1.1
beacons()
cap.t = 1.2
# 6. The phone roams over the air to AP2 (FT authentication, reassociation; AP2's GTK key
# id 2, RSC 0), then POSTs its Android id via AP2.
roam(PHONE, AP2_MAC, GTK2, 2, 0)
cap.t = 1.3
Conn(lab, PHONE, "ulogs.umeng.com").exchange(
    "POST", "/unify_logs",
    json.dumps({"appkey": "5f8e3a2b1c0d9e8f7a6b5c4d", "header": {
        "android_id": PHONE.ids["android_id"], "os": "Android", "os_version": "15"}},
        separators=(",", ":")).encode(), ["android_id"])
cap.t = 1.6
# 7. AP2's group-addressed ARP request under its GTK (key id 2).
group_frames[AP2_MAC] = [group_arp(
    AP2_MAC, GTK2, 2, "192.168.93.41",
    "group-addressed CCMP frame of AP2 (its GTK, key id 2, from the phone's reassociation "
    "response): decrypted, an ARP request: no IP packet, no error")]
cap.t = 2.5
beacons()
# 8. After the refusal (+2 s): the phone's request with its IMEI, via AP2.
cap.t = REFUSAL_S + 1.0
Conn(lab, PHONE, "sdk.e.qq.com").exchange(
    "GET", "/v2/ping?appid=1101152570&imei=%s" % PHONE.ids["imei"], b"", ["imei"])
beacons()


# --- self-check of the written frames -----------------------------------------------------
# Every FCS; every protected frame opens with its key and with no other (the phone's two
# PTKs, the tablet's, the two GTKs); the requests' identifiers; PNs from 1 per key.
counters = lab.check([("CCMP", k) for k in (PHONE.first_key, PHONE.key, TABLET.key, GTK1,
                                            GTK2)], (PHONE, TABLET))
assert all(got[0] == 1 for got in counters.values())
for st in (PHONE, TABLET):
    # Message 3's key data: the AP's RSN element with PMKR1Name, the MDE, AP1's GTK.
    plain = key_data_of(st.m3_kek, st.m3)
    assert plain.startswith(rsn_element([AKM_FT_8021X, AKM_FT_PSK], pmkids=(st.pmk_r1_name,))
                            + MDE + bytes.fromhex("dd16000fac010100") + GTK1)


def elements_of(frame_no, fixed):
    """The elements of a written management frame by id (whole: id, length, body), after
    radiotap, the MAC header and `fixed` octets of fixed fields, before the FCS."""
    data = cap.frames[frame_no - 1][1]
    body = data[14 + 24 + fixed:-4]
    out, i = {}, 0
    while i < len(body):
        out[body[i]] = body[i:i + 2 + body[i + 1]]
        i += 2 + body[i + 1]
    return out


# The roam: the FTE MICs again, from the frames as written (the fixed fields: the
# reassociation request's capability, listen interval, current AP; the response's
# capability, status, AID), and the GTK subelement (after the FTE's 82 octets of fixed
# fields and the R1KH-ID subelement) back to AP2's GTK.
req, resp = PHONE.roam["frames"][2:4]
sta, ap2 = mac(PHONE.mac), mac(AP2_MAC)
for n, fixed, seq in ((req, 10, 5), (resp, 6, 6)):
    e = elements_of(n, fixed)
    assert ft_mic(PHONE.kck, sta, ap2, seq, e[48], e[54], e[55]) == e[55][4:20]
e = elements_of(resp, 6)
assert aes_key_unwrap(PHONE.kek, e[55][2 + 82 + 8 + 2 + 11:2 + 82 + 8 + 2 + 11 + 24]) == GTK2
assert e[55][2 + 82 + 8:2 + 82 + 8 + 2 + 11].hex() == "0223" "020010" + "00" * 8

cap.write_pcap(os.path.join(HERE, "ft.pcap"))
lab.write_case(os.path.join(HERE, "consentry.toml"), "ft", "make_ft.py", "ft-2026-11-30",
               "Example Shop 5.1 on a test phone and a tablet, fast BSS transition (802.11r) "
               "lab Wi-Fi in monitor mode",
               [(PHONE, MAC_ONLY + "; FT-PSK, roams from AP1 to AP2."),
                (TABLET, "The case's Android tablet, known by its Wi-Fi MAC too; joins with "
                         "FT-802.1X.")])
write_80211_keys(os.path.join(HERE, "80211_keys"), PASSPHRASE, SSID, msks=[MSK])

phone_ap1 = sum(1 for p in lab.protected if p[2] == PHONE.first_key)
phone_ap2 = sum(1 for p in lab.protected if p[2] == PHONE.key)
counts = lab.counts(("phone", "tablet"))
assert phone_ap1 + phone_ap2 == counts["pairwise_frames"]["phone"]
roam_info = PHONE.roam
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump({
        "capture": "ft.pcap", "frames": len(cap.frames), "ssid": SSID,
        "mobility_domain": {"mdid": MDID.hex(), "ft_capability_policy": 0},
        "r0kh_id": R0KH_ID.decode(),
        "aps": {"ap1": {"bssid": AP1_MAC, "r1kh_id": AP1_MAC,
                        "gtk": {"key_id": 1, "gtk": GTK1.hex(),
                                "given_in": [PHONE.handshake[2], TABLET.handshake[2]],
                                "frames": group_frames[AP1_MAC]}},
                "ap2": {"bssid": AP2_MAC, "r1kh_id": AP2_MAC,
                        "gtk": {"key_id": 2, "gtk": GTK2.hex(),
                                "given_in": [roam_info["frames"][3]],
                                "frames": group_frames[AP2_MAC]}}},
        "passphrase": PASSPHRASE, "psk": PSK.hex(),
        "stations": {
            "phone": {"mac": PHONE.mac, "ip": PHONE.ip, "akm": AKM_FT_PSK,
                      "key_descriptor_version": 3, "pairwise_cipher": "CCMP-128",
                      "in_keys_file": "wpa-pwd", "xxkey": PSK.hex(),
                      "pmk_r0": PHONE.pmk_r0.hex(), "pmk_r0_name": PHONE.pmk_r0_name.hex(),
                      "initial": {"bssid": AP1_MAC, "association": PHONE.association,
                                  "handshake": PHONE.handshake,
                                  "pmk_r1": PHONE.pmk_r1.hex(),
                                  "pmk_r1_name": PHONE.pmk_r1_name.hex(),
                                  "tk": PHONE.first_key.hex(), "frames": phone_ap1},
                      "roam": {"bssid": AP2_MAC,
                               "ft_authentication": roam_info["frames"][0:2],
                               "reassociation": roam_info["frames"][2:4],
                               "pmk_r1": roam_info["pmk_r1"].hex(),
                               "pmk_r1_name": roam_info["pmk_r1_name"].hex(),
                               "anonce": roam_info["anonce"].hex(),
                               "snonce": roam_info["snonce"].hex(),
                               "ptk": roam_info["ptk"].hex(), "kck": PHONE.kck.hex(),
                               "kek": PHONE.kek.hex(), "tk": PHONE.tk.hex(),
                               "mic_request": roam_info["mic_request"].hex(),
                               "mic_response": roam_info["mic_response"].hex(),
                               "frames": phone_ap2}},
            "tablet": {"mac": TABLET.mac, "ip": TABLET.ip, "akm": AKM_FT_8021X,
                       "key_descriptor_version": 3, "pairwise_cipher": "CCMP-128",
                       "in_keys_file": "msk", "msk": MSK.hex(), "xxkey": MSK[32:64].hex(),
                       "pmk_r0_name": TABLET.pmk_r0_name.hex(),
                       "pmk_r1_name": TABLET.pmk_r1_name.hex(), "bssid": AP1_MAC,
                       "association": TABLET.association, "eap_success": TABLET.eap_success,
                       "handshake": TABLET.handshake, "ptk": TABLET.ptk.hex(),
                       "tk": TABLET.tk.hex()}},
        "requests": lab.requests, "negative": lab.negatives, "dns": lab.dns_log,
        **counts, "handshakes_with_key": 2, "handshakes_no_key": 0, "ft_roams": 1},
        f, indent=1)
    f.write("\n")
pairwise = counts["pairwise_frames"]
print("wrote ft.pcap (%d frames; decrypted with the keys: %d pairwise (phone %d: %d via AP1, "
      "%d via AP2 after the roam; tablet %d), %d group (one per AP); %d protected in all), "
      "consentry.toml, 80211_keys, expected.json (%d requests)"
      % (len(cap.frames), counts["protected_frames"], pairwise["phone"], phone_ap1, phone_ap2,
         pairwise["tablet"], counts["group_frames"], counts["all_protected_frames"],
         len(lab.requests)))
