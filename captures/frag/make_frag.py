#!/usr/bin/env python3
"""Writes the "frag" sample capture of consentry's pcap tap: the WPA/WPA2 mixed-mode lab of
make_tkip.py (a phone joining with WPA and TKIP, a tablet with WPA2 and CCMP, their
handshakes in the capture, a stranger's frames closed), whose transmitters fragment every
MSDU too long for one MPDU (IEEE 802.11-2020, fragmentation): each fragment an MPDU of its
own, encrypted on its own, acknowledged on its own; and four odd cases a receiver must get
right: a fragment sent twice, a fragment the monitor missed, fragments whose CCMP packet
numbers do not run on (802.11's rule for CCMP fragments; FragAttacks, CVE-2020-26146), and a stranger's
fragments that stay closed.

Outputs, next to this script:
  frag.pcap       classic pcap (magic 0xA1B2C3D4, little-endian, microseconds, snaplen
                  65535), link type 127 (radiotap); 209 frames.
  consentry.toml  the case: the phone and the tablet, each known only by its Wi-Fi MAC
                  address; the phone's user refuses at +2 s.
  80211_keys      the key as Wireshark's 802.11 keys file holds it (one line,
                  "wpa-pwd","<passphrase>:<ssid>").
  expected.json   as make_tkip.py's (PMK; per station MAC, IPv4 address, protocol, key
                  descriptor, cipher, keys file line, PTK, KCK, KEK, TK, the phone's
                  Michael keys, its handshake frames; the stranger's frames and made-up
                  CCMP TK; the GTK; the DNS lookups; counts of frames decrypted with the
                  passphrase, pairwise per station and group, and of all protected frames;
                  handshakes), and for the fragments: the fragmentation threshold and the
                  fragment sizes; every request to be reported ("requests": frame and at
                  are those of its FIRST fragment, where consentry reports a packet
                  reassembled from fragments; last_fragment, where tshark shows it;
                  fragments, the frame of each fragment, null for one the capture lacks;
                  fragment_octets; msdu_octets; sequence_number; tscs (TKIP) or pns (CCMP);
                  mic_octets, how many octets of the Michael MIC each TKIP fragment holds;
                  retried, the original and the Retry copy; host, method, path,
                  identifiers, device, cipher, consent state "not-asked" or
                  "after-refusal"; identifiers_cut, {type: [first, last fragment index]}
                  for each identifier a fragment boundary cuts; tshark_frame, where
                  tshark 4.0 reads it, or null; case, the odd case it carries); the two
                  requests NOT to be reported ("unreported_requests", the same fields,
                  case "lost-fragment" or "pn-gap"); every fragmented MSDU
                  ("fragmented_msdus": what, device, transmitter, cipher, the fields
                  above, reassembled: whether a correct reader puts it together); the
                  frames that must give no packet ("negative": frame, kind, what, case:
                  the stranger's fragments and NTP request, kind "wlan-protected"; the
                  Retry copy, kind null, case "retried-fragment"; the received fragments
                  of the MSDU with a lost fragment, case "lost-fragment", and the three of
                  the PN gap, case "pn-gap", the one that shows its MSDU cannot be put
                  together (the first after the gap, the one whose PN jumps) of kind
                  "wlan-fragment-dropped", the others of kind null; the decrypted
                  frames without a request, kind null: the two group key messages, the
                  group ARP request, the group UDP broadcast); "fragments": counts of
                  fragments decrypted (each fragment of the phone and the tablet, the Retry
                  copy included), MSDUs reassembled, fragments dropped (the two received of
                  the lost-fragment MSDU, the three of the PN gap), fragments repeated (1),
                  fragments missing (1) and the stranger's (3); "tshark": what tshark
                  4.0.17 reads (below).

Story (from 2026-11-28T16:00:00Z): the AP "consentry-lab-frag" beacons with an RSN element
and a WPA element as in make_tkip.py; the stranger (associated before the capture, CCMP, in
no case) sends the router a 627-octet syslog message as three CCMP fragments (3, 5, 7); the
phone authenticates, associates with WPA and runs the WPA 4-way handshake (17-23), the AP
gives it the TKIP GTK in the WPA group key handshake (25, 27, inside TKIP frames of its
pairwise key); the AP's group ARP request under the GTK (29); the phone resolves
t.appsflyer.com (30, 32, unfragmented) and GETs it its advertising id in four TKIP
fragments (40, 42, 44, 46: 256, 256, 256 and 3 octets of MSDU || MIC: the Michael MIC cut 5
| 3 between the last two; the advertising id cut 19 | 17 between the second and third), the
answer, a JSON configuration, in three TKIP fragments of 258, 258 and 221 octets (48, 50,
52: data frames); it resolves ulogs.umeng.com and POSTs it its Android id in JSON, four
TKIP fragments (70, 72, 75, 77; the Android id cut 9 | 7 between the third and the fourth,
which holds the whole MIC), of which the second's Ack is not heard: it is sent again with
the Retry bit (73), then acknowledged (ODD CASE 1: the request must be reported once); the
tablet authenticates, associates with WPA2 and runs the RSN 4-way handshake (96-102, M3
with the same TKIP GTK), resolves rt.applovin.com and POSTs it its IMEI in three CCMP
fragments (114, 116, 118; the IMEI cut 9 | 6 between the second and the third), the answer
in three CCMP fragments (120, 122, 124); on a connection of its own it GETs app.adjust.com
its advertising id in three CCMP fragments, of which the monitor missed the second (142, -,
145; PN 13 used, its Ack, 144, heard; the advertising id whole in the first fragment) (ODD
CASE 2: the MSDU is incomplete, the request must not be reported; the server's answer, 147,
and the rest of the connection are there, so TCP sees a gap); on another it POSTs
api2.branch.io its Android id in three CCMP fragments of PNs 20, 22 and 23 (165, 167, 169;
PN 21 in no frame of the capture; the Android id cut 9 | 7 where the PN jumps), each valid
under its key, the MSDU's bytes whole (ODD CASE 3: a receiver discards the MSDU,
802.11's rule for CCMP fragments; the request must not be reported); the router's UDP broadcast under the GTK
(179); the stranger's NTP request (180); the phone's user refuses at +2 s; the phone
resolves sdk.e.qq.com and GETs it its IMEI in three TKIP data frames (193, 195, 197: 258,
258 and 8 octets, the last fragment the Michael MIC alone; the IMEI cut 9 | 6 between the
first and the second), after the refusal; the answer in two TKIP QoS data fragments (199,
201). ODD CASE 4 is the stranger's fragments (3, 5, 7): not decrypted, so not reassembled.
DNS, TCP handshakes and ACKs, EAPOL, ARP, NTP and the short answers stay unfragmented.
Every unicast frame is acknowledged by an Ack. The phone's frames are QoS data of TID 0
(the GET's connection; the AP's answers in data frames), of TID 6 both ways (the POST's) or
data frames (the first lookup, the last connection from the phone; QoS TID 0 from the AP),
as in make_tkip.py, so that both fragment sizes occur; the tablet's and the stranger's, QoS
data of TID 0. Each transmitter counts the TSCs (PNs) of each key from 1 (the stranger from
0x2A11); the lost fragment's PN and the PN the gap skips are used, not seen.

Byte layouts (IEEE 802.11-2020), as make_tkip.py's (radiotap, RSN and WPA elements,
association, EAPOL-Key frames, keys, TKIP and CCMP MPDUs), and for the fragments:
  threshold       dot11FragmentationThreshold 286 octets: an MPDU of at most 286
                  octets before security encapsulation (the TKIP header and ICV, the CCMP
                  header and MIC are not counted): a fragment carries 256 octets in
                  a QoS data frame (26-octet MAC header, 4-octet FCS), 258 in a data frame
                  without QoS control (24-octet header), the last fragment the rest; an
                  MSDU (TKIP: MSDU || MIC) longer than that is fragmented, into 16
                  fragments at most.
  MAC header      all the fragments of an MSDU with its sequence number (the transmitter's
                  next), fragment numbers 0, 1, 2, ... (Sequence Control bits 0-3), More
                  Fragments (frame control flags 0x04) on every fragment but the last, the
                  same addresses and QoS control; Duration of a fragment but the last: its
                  Ack (44 us with SIFS) + SIFS + the next fragment at 54 Mb/s (20 us + 4 us
                  per 216 bits of SERVICE, MPDU and tail) + its Ack; the last's, 44 us.
  TKIP fragments  (12.5.2) the Michael MIC over the WHOLE MSDU (DA || SA
                  || priority || 0 0 0 || MSDU, as of an unfragmented MPDU, under the
                  direction's Michael key) is appended to the MSDU before fragmentation;
                  MSDU || MIC is cut into the fragments, and each is encrypted on its own:
                  TKIP header with its own TSC (consecutive), RC4 under the WEP seed of that
                  TSC of the fragment's plaintext || ICV (CRC-32 of that fragment's
                  plaintext). A receiver decrypts each fragment (ICV), reassembles, then
                  checks the MIC over the MSDU.
  CCMP fragments  (12.5.3) each fragment encrypted on its own under the next PN
                  (consecutive); the AAD keeps More Fragments and the fragment number and
                  masks the sequence number (and Retry, PwrMgt, MoreData: wpakit.mpdu_aad),
                  so a fragment cannot be moved to another place in its MSDU, but can to
                  another MSDU; hence the receiver's rule that the PNs of the fragments of
                  one MSDU run on by one (802.11's rule for CCMP fragments).
  retry           the copy of frame 72 with Retry (0x08) set, byte for byte
                  the same otherwise (same Sequence Control, TSC and ciphertext; TKIP
                  covers no header bit, CCMP's AAD masks Retry), and a new FCS; frame 72
                  has no Ack, 73 has.
  lost fragment   fragment 1 of the MSDU of sequence number 14 of the tablet: its PN (13)
                  used, the frame not written, its Ack (144) written.
  PN gap          fragments 0, 1, 2 of the MSDU of sequence number 20 of the tablet under
                  PNs 20, 22, 23, each a valid CCMP MPDU of its header.

The crypto is captures/wpakit.py's, which checks itself on import (RC4, HMAC-MD5, Michael,
the TKIP key mixing function, PBKDF2, PRF, CCMP, AES key wrap, as for make_tkip.py); the
fragmenting sender is WpaLab.send_fragments. The script checks with asserts before
writing: every EAPOL MIC, the RC4 key data of group message 1, the key wrap of the
tablet's M3; and, frame by frame in the written capture: every FCS; that every protected
frame opens with its key (a TKIP fragment with its ICV, an unfragmented TKIP MPDU with its
ICV and Michael MIC, CCMP with its MIC) and with none of the capture's other keys; that
each transmitter's TSCs (PNs) per key run on from 1, the Retry copy repeating its
original's and the lost fragment's and skipped PNs filling the gaps; that each fragmented
MSDU's fragments carry its sequence number, consecutive fragment numbers and the More
Fragments bits, that they decrypt to its pieces and, for a complete MSDU, make it whole
again (TKIP: its Michael MIC right over the reassembled MSDU); that the Retry copy is its
original but for that bit; that each request carries its identifiers, cut by a fragment
boundary in every request but the lost-fragment one (whole in its received first
fragment), and the TKIP MICs split as said. The outputs are the same bytes run to run.

Checked with tshark 4.0.17 (KEY below stands for
'uat:80211_keys:"wpa-pwd","copper meadow falcon twelve:consentry-lab-frag"'; tshark
reassembles 802.11 fragments by default, wlan.defragment TRUE, and shows a reassembled
MSDU at its last fragment):
  tshark -n -r frag.pcap -o wlan.enable_decryption:TRUE -o KEY -Y http.request -T fields \\
      -e frame.number -e http.request.method -e http.request.uri
prints (the same with -o wlan.check_checksum:TRUE, with -2, and with the 80211_keys file in
a profile instead of -o KEY)
      118     POST    /v1/event
      169     POST    /v1/install
that is the tablet's IMEI POST (fragments 114-118), and the PN-gap POST (165-169), which
tshark reassembles and reads: it does not check that the PNs run on. It reads none of the
phone's three TKIP requests: Wireshark's dot11decrypt takes every TKIP MPDU for a whole
MSDU and removes 8 octets (as the Michael MIC) with the ICV from the end of each, so every
TKIP fragment decrypts (its ICV checked) but loses its last 8 octets: the reassembled
answers at 52, 201 and the POST at 77 lack 8 octets of data per fragment but the last
(tshark -x "Reassembled 802.11": 713 of 729, 378 of 386, 883 of 907 octets: each fragment
less its last 8, byte for byte), whence three expert errors "IPv4 total length exceeds
packet length" (705, 875, 370 bytes) and three "Bad checksum" of TCP, and the POST at 77
stays "[TCP segment of a reassembled PDU]"; the fragments holding 3 octets (46) and 8
octets (197: the MIC alone) are not decrypted at all (46's body, 15 octets, is below
dot11decrypt's minimum of 17; why 197, of 20, is not was not traced; a last fragment of 9,
10, 12, 13, 16 or 20 octets, as tried, decrypts), so the GET of 40-46 and the GET of
193-197 are not reassembled. The lost-fragment MSDU (142, 145) stays "Fragmented IEEE
802.11 frame", no request. The Retry copy 73 gets the expert note "Retransmission (retry)"
and goes into the reassembly at 77 as a fifth fragment overlapping 72 with the same data.
  tshark -n -r frag.pcap -o wlan.enable_decryption:TRUE -o KEY \\
      -Y 'wlan.fc.protected == 1' -T fields -e frame.number -e wlan.analysis.tk \\
      -e wlan.analysis.gtk
of the 87 protected frames (every MPDU, fragments and the Retry copy each one), 79 carry a
TK (42 the phone's TKIP TK, of its 44; 37 the tablet's CCMP TK, all of them) and 2 the GTK
(29, 179): 81 decrypted, expected.json's decrypted_frames (83) less the two short TKIP
fragments 46 and 197; the stranger's 3, 5, 7 and 180 stay closed. The filter
'wlan.fc.protected == 1 && (wlan.analysis.tk || wlan.analysis.gtk)' counts the same 81;
'wlan.fc.protected == 1 && llc', used for make_tkip.py's count, gives 61 here: a fragment
but the last has no LLC layer of its own.
  tshark -n -r frag.pcap -o wlan.enable_decryption:TRUE -o KEY -o wlan.check_checksum:TRUE \\
      -o ip.check_checksum:TRUE -o udp.check_checksum:TRUE -o tcp.check_checksum:TRUE \\
      -q -z expert
every FCS good; errors: only the six of the TKIP reassemblies above (52, 77, 201); warnings:
TCP "ACKed segment that wasn't captured" and "Previous segment(s) not captured", of the
connections whose request or answer tshark could not put together (the TKIP ones and the
lost fragment's); notes: TCP connection closing and the Retransmission (retry) of 73.
Without the key nothing is decrypted ('http.request || dns || arp || udp || tcp' lists
nothing). With -o wlan.defragment:FALSE no request is read.
Run: python3 captures/frag/make_frag.py
"""
import base64
import json
import os
import random
import sys
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
# captures/pcapkit.py: the packet-building helpers the capture generators share;
# captures/wlankit.py: the 802.11 ones and the lab network; captures/wpakit.py: the WPA
# keys, EAPOL-Key frames, CCMP, TKIP and the protected lab network, with its fragmenting
# sender (WpaLab.send_fragments); it checks itself against the IEEE test vectors on import.
sys.path.insert(0, os.path.dirname(HERE))
from pcapkit import ipv4_header, luhn_ok, mac, udp_datagram  # noqa: E402
from wlankit import MAC_ONLY, SNAP_ARP, SNAP_IPV4, Capture, arp_request  # noqa: E402
from wpakit import (AKM_PSK, CCMP_128, TKIP, Conn, Station, WpaLab,  # noqa: E402
                    pmk_of, rsn_element, wpa_element, write_80211_keys)

T0 = datetime(2026, 11, 28, 16, 0, 0, tzinfo=timezone.utc)
REFUSAL_S = 2.0

SSID = "consentry-lab-frag"
PASSPHRASE = "copper meadow falcon twelve"
AP_MAC = "02:00:00:00:9f:01"        # the access point (BSSID, the authenticator AA)
ROUTER_MAC = "02:00:00:00:9f:fe"    # the lab's router behind it
ROUTER_IP = "192.168.92.1"
TRACKERS = {"t.appsflyer.com": "203.0.113.81", "ulogs.umeng.com": "203.0.113.82",
            "rt.applovin.com": "203.0.113.83", "app.adjust.com": "203.0.113.84",
            "api2.branch.io": "203.0.113.85", "sdk.e.qq.com": "203.0.113.86"}
# dot11FragmentationThreshold: an MPDU of at most 286 octets before security
# encapsulation: 256 octets of MSDU (TKIP: of MSDU || MIC) in a QoS data frame (26-octet
# header, 4-octet FCS), 258 in a data frame without QoS control (24-octet header).
FRAG_THRESHOLD = 286

rng = random.Random(20261201)


def rand_bytes(n):
    return bytes(rng.getrandbits(8) for _ in range(n))


# The stations (wpakit.Station); the identifiers are make_tkip.py's.
PHONE = Station("phone", "02:00:00:dd:5f:32", "192.168.92.23",
                {"advertising_id": "9b2e4f6a-8c1d-4e3f-a5b7-c9d1e3f5a7b9",
                 "android_id": "c4e6a8b0d2f41357",
                 "imei": "352917064183527"}, 1, 40711)
TABLET = Station("tablet", "02:00:00:dd:b8:4d", "192.168.92.31",
                 {"advertising_id": "1f3e5d7c-9b0a-4c2d-8e6f-a1b3c5d7e9f0",
                  "android_id": "0d2f4b6a8c1e3579",
                  "imei": "864012035571298"}, 2, 38311)
STRANGER = Station("stranger", "02:00:00:66:77:99", "192.168.92.57", None, 3, 41099)
assert luhn_ok(PHONE.ids["imei"]) and luhn_ok(TABLET.ids["imei"])

# The AP's RSN element (group TKIP, pairwise CCMP-128 and TKIP, PSK) and WPA element
# (group and pairwise TKIP, PSK); the phone's WPA element and the tablet's RSN element,
# as in make_tkip.py.
AP_RSN = rsn_element([AKM_PSK], pairwise=(CCMP_128, TKIP), group=TKIP)
assert AP_RSN.hex() == "30180100000fac020200000fac04000fac020100000fac020000"
AP_WPA = wpa_element()
assert AP_WPA.hex() == "dd160050f20101000050f20201000050f20201000050f202"
PHONE_WPA = wpa_element()
TABLET_RSN = rsn_element([AKM_PSK], group=TKIP)
assert TABLET_RSN.hex() == "30140100000fac020100000fac040100000fac020000"
cap = Capture(T0)
lab = WpaLab(cap, SSID, AP_MAC, ROUTER_MAC, ROUTER_IP, TRACKERS, AP_RSN + AP_WPA,
             0x66778899AA, (51442, 29, 0x7C000000, 0x3D000000, 12000), refusal_s=REFUSAL_S,
             request_cipher=True, frag_threshold=FRAG_THRESHOLD)

# The network's keys: the PMK of the passphrase, the TKIP GTK (TK || Michael key of the
# AP's group MSDUs || unused), the stranger's made-up CCMP TK.
PMK = pmk_of(PASSPHRASE, SSID)
GTK = rand_bytes(32)
STRANGER.cipher, STRANGER.key = "CCMP", rand_bytes(16)
# Filler the apps' requests carry (session blobs, signatures), drawn once: the requests
# take prefixes of it, as long as the fragment boundaries asked for need.
B64 = base64.urlsafe_b64encode(rand_bytes(600)).decode().rstrip("=")
HEX = rand_bytes(300).hex()
group_frames = []
STRANGER_WHAT = ("CCMP-protected fragment of the stranger, associated before the capture "
                 "began (its handshake is not in it): not decrypted, not reassembled")


# --- requests cut where the capture needs them --------------------------------------------
def layout(conn, method, build, want):
    """The request of `conn` (wlankit.TcpConn.http_request) that build(a, b) gives, a and b
    the lengths of the filler before and after its identifier, for the first (a, b) by a +
    b, then by a, for which want(data) holds: data the MSDU the request goes in (LLC/SNAP
    8, IPv4 20 and TCP 20 octets, whose contents do not matter here, then the request)
    followed, for a TKIP station, by 8 octets for its Michael MIC. (path, body)."""
    tail = bytes(8 if conn.st.cipher == "TKIP" else 0)
    for total in range(0, 600):
        for a in range(0, total + 1):
            path, body = build(a, total - a)
            if want(bytes(48) + conn.http_request(method, path, body, []) + tail):
                return path, body
    raise AssertionError("no layout")


def pieces_of(data, value, size):
    """The indexes of the fragments of `size` octets that hold the identifier `value` in
    data (first, last)."""
    at = data.find(value.encode())
    assert at >= 0, value
    return at // size, (at + len(value) - 1) // size


def cut_in_middle(data, value, size, boundary=None):
    """Whether a fragment boundary (the one after fragment `boundary`, if given) falls in
    the middle of the identifier: at least len // 2 - 1 of its octets on either side."""
    at, margin = data.find(value.encode()), len(value) // 2 - 1
    return at >= 0 and any(at + margin <= b <= at + len(value) - margin
                           for b in range(size, len(data) + size, size)
                           if boundary is None or b == (boundary + 1) * size)


def json_body(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def json_response(obj):
    """The server's answer: 200 OK with a JSON body (no identifier in it)."""
    body = json_body(obj)
    return (b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: %d\r\n"
            b"\r\n" % len(body)) + body


def ms(seconds):
    """Milliseconds since the epoch at `seconds` after t0 (the apps' timestamps)."""
    return int(T0.timestamp() * 1000 + round(seconds * 1000))


class FragConn(Conn):
    """A connection (wpakit.Conn) whose request MSDU has the odd cases `odd` of
    WpaLab.send_fragments (lost, retried, pn_skip)."""

    def __init__(self, lab_, st, host, up_qos=0, down_qos=0, **odd):
        Conn.__init__(self, lab_, st, host, up_qos, down_qos)
        self.odd = odd

    def send(self, up, flags, payload=b"", dt=0.0004, fc_flags=0):
        odd = self.odd if up and payload else {}
        return Conn.send(self, up, flags, payload, dt, fc_flags, **odd)


MSDUS = []       # (a fragmented MSDU's record of WpaLab.send_fragments, what it is)


def exchange(conn, method, build, want, identifiers, response=None, what=None):
    """The connection's exchange (wpakit.Conn.exchange) with the request that layout(conn,
    method, build, want(data, size)) finds, size the octets of the request's fragments,
    and `response` (None: wlankit's short HTTP_RESPONSE); keeps the MSDUs it fragmented
    in MSDUS (`what`: the odd case of the request). The request's record (lab.requests)
    and its MSDU's (WpaLab.fragmented)."""
    size = lab.fragment_size(conn.qos[True])
    path, body = layout(conn, method, build, lambda data: want(data, size))
    start = len(lab.fragmented)
    conn.exchange(method, path, body, identifiers,
                  **({"response": response} if response else {}))
    r = lab.requests[-1]
    rec = lab.fragments_of[r["frame"]]
    assert rec["ta"] == conn.st.mac
    for m in lab.fragmented[start:]:
        up = m["ta"] == conn.st.mac
        MSDUS.append((m, "%s %s %s%s" % ("request" if up else "response to the", method,
                                         conn.host, " (%s)" % what if what and up else "")))
    return r, rec


def mic_octets(rec):
    """How many octets of a TKIP MSDU's Michael MIC each of its fragments carries."""
    n, out, at = len(rec["msdu"]), [], 0
    for piece in rec["pieces"]:
        out.append(max(0, min(at + len(piece), n + 8) - max(at, n)))
        at += len(piece)
    return out


# --- the capture --------------------------------------------------------------------------
# 1. Beacons; the stranger (associated before the capture, CCMP) sends the router a syslog
# message (an MSDU of 627 octets) in three CCMP fragments (its PNs high: it has been sending).
cap.emit(lab.beacon(), 0.1024)
cap.emit(lab.beacon(), 0.03)
lab.tsc_next[(STRANGER.mac, STRANGER.key)] = 0x2A11
syslog = (b"<134>1 2026-11-28T16:00:00.140Z lab-sensor-7 telemetryd 811 - - "
          + b"sample " + HEX[:520].encode())
udp = udp_datagram(STRANGER.ip, ROUTER_IP, 514, 514, syslog)
first = lab.send(STRANGER, True, ipv4_header(STRANGER.ip, ROUTER_IP, 17, len(udp), 0x0E01) + udp,
                 0x0000, 0.002)
stranger_msdu = lab.fragments_of[first]
MSDUS.append((stranger_msdu, "the stranger's syslog message to the router (UDP port 514)"))
for n in stranger_msdu["frames"]:
    lab.negative(n, "wlan-protected", STRANGER_WHAT)
cap.t = 0.2
# 2. The phone: open system, association with the WPA element, the WPA 4-way handshake
# (descriptor 254, version 1, HMAC-MD5 MICs, key length 32; M3 with the AP's WPA element
# in plain key data).
lab.wpa1_handshake(PHONE, PMK, PHONE_WPA, AP_WPA, rand_bytes)
cap.t = 0.26
# 3. The WPA group key handshake in TKIP QoS data frames (TID 7) of the phone's pairwise
# key: message 1 with the GTK (key index 1) RC4-encrypted under Key IV || KEK, RSC 0.
group_handshake, KEY_IV = lab.wpa1_group_key_handshake(PHONE, GTK, rand_bytes)
cap.t = 0.3
# 4. The AP's group-addressed ARP request under the GTK (key id 1), not fragmented (802.11
# fragments individually addressed MSDUs only).
group_frames.append(lab.group_frame(
    SNAP_ARP + arp_request(ROUTER_MAC, ROUTER_IP, "192.168.92.40"), "TKIP", GTK, 1,
    "group-addressed TKIP frame of the AP (GTK, key id 1, from the WPA group key "
    "handshake): decrypted, an ARP request: no IP packet, no error"))
cap.t = 0.35
# 5. The phone's GET with its advertising id (QoS data TID 0; the AP's answers in data
# frames): TKIP fragments of 256 octets, the last of 3: the MSDU's Michael MIC cut 5 | 3
# between the last two; the advertising id cut in the middle by a boundary. The answer, a
# JSON configuration, in TKIP fragments of 258 octets (data frames).
lab.dns(PHONE, 0x5201, "t.appsflyer.com", None)
ADID = PHONE.ids["advertising_id"]
R1 = exchange(
    FragConn(lab, PHONE, "t.appsflyer.com", 0x0000, None), "GET",
    lambda a, b: ("/api/v4/androidevent?app_id=com.example.shop&buildnumber=6.12.1"
                  "&platform=android&os_version=15&device=Pixel%%208&lang=en_US&country=US"
                  "&network=WIFI&af_timestamp=%d&deviceData=%s&advertiserId=%s"
                  "&isGaidWithGps=true&counter=3&sig=%s" % (ms(cap.t), B64[:a], ADID,
                                                            HEX[:b]), b""),
    lambda data, size: (cut_in_middle(data, ADID, size) and len(data) % size == 3
                        and len(data) > 2 * size),
    ["advertising_id"],
    json_response({"status": "ok", "ttl": 3600, "config": {
        "sdk": "6.12.1", "sampling": 1.0, "flush_interval_s": 30, "batch": 20,
        "endpoints": {"events": "https://t.appsflyer.com/api/v4/androidevent",
                      "attr": "https://attr.appsflyer.com/api/v2.0/androidevent",
                      "reg": "https://register.appsflyer.com/api/v1/androidevent"},
        "features": ["deeplink", "uninstall", "purchase_validation", "ad_revenue"],
        "experiments": [{"id": "exp-%02d" % i, "arm": "b" if i % 2 else "a"}
                        for i in range(1, 9)]}, "server_time": ms(cap.t)}))
assert mic_octets(R1[1])[-2:] == [5, 3]
cap.t = 0.8
# 6. The phone's JSON POST with its Android id (QoS data TID 6 both ways): TKIP fragments,
# the Android id cut in the middle by a boundary, the MIC whole in the last fragment; the
# second fragment's Ack is not heard, so it is sent again with Retry set (the same TSC and
# bytes), then acknowledged.
lab.dns(PHONE, 0x5202, "ulogs.umeng.com", 0x0006)
AID = PHONE.ids["android_id"]
R2 = exchange(
    FragConn(lab, PHONE, "ulogs.umeng.com", 0x0006, 0x0006, retried=(1,)), "POST",
    lambda a, b: ("/unify_logs", json_body({
        "appkey": "5f8e3a2b1c0d9e8f7a6b5c4d", "header": {
            "sdk_type": "Android", "sdk_version": "9.6.3", "device_model": "Pixel 8",
            "device_brand": "google", "os": "Android", "os_version": "15",
            "resolution": "1080*2400", "cpu": "arm64-v8a", "access": "Wi-Fi",
            "carrier": "", "app_version": "5.1.0", "version_code": 510,
            "channel": "GooglePlay", "timezone": 8, "language": "en", "country": "US",
            "session_id": B64[:a], "android_id": AID, "mc": "", "ts": ms(cap.t)},
        "analytics": {"ekv": [{"id": "page_view", "ts": ms(cap.t) - 5210, "du": 5210,
                               "page": "HomeActivity"}], "sign": HEX[:b]}})),
    lambda data, size: (cut_in_middle(data, AID, size) and len(data) > 2 * size
                        and len(data) % size > 40),
    ["android_id"], what="its second fragment sent twice, the copy with Retry set")
assert len(R2[1]["retries"]) == 1 and mic_octets(R2[1])[-1] == 8
cap.t = 1.1
cap.emit(lab.beacon(), 0.01)
cap.t = 1.2
# 7. The tablet: open system, association with its RSN element, the RSN 4-way handshake
# (descriptor 2, version 2, CCMP-128; M3 wraps the AP's RSN element and the TKIP GTK in a
# GTK KDE, key RSC 1: the one group frame sent).
lab.rsn_handshake_with_tkip_gtk(TABLET, PMK, TABLET_RSN, AP_RSN, GTK, rand_bytes)
cap.t = 1.3
# 8. The tablet's JSON POST with its IMEI in CCMP fragments (QoS data TID 0), the IMEI cut
# in the middle by a boundary; the answer in CCMP fragments too.
lab.dns(TABLET, 0x6301, "rt.applovin.com", 0x0000)
IMEI_T = TABLET.ids["imei"]
R3 = exchange(
    FragConn(lab, TABLET, "rt.applovin.com"), "POST",
    lambda a, b: ("/v1/event", json_body({
        "sdk_key": "q8Zr2mWx5KpL0vNt3YbC7dFh9JsA1eGu", "app": {
            "package": "com.example.shop", "version": "5.1.0", "installer":
            "com.android.vending"}, "device": {
            "brand": "samsung", "model": "SM-X710", "os": "android", "os_version": "14",
            "screen": "1600x2560", "locale": "en_US", "tz_offset": 8, "wvvc": 124,
            "session": B64[100:100 + a], "imei": IMEI_T, "network": "wifi"},
        "events": [{"name": "app_open", "ts": ms(cap.t)}, {"name": "mediation_init",
                                                        "ts": ms(cap.t) + 12}],
        "sig": HEX[100:100 + b]})),
    lambda data, size: cut_in_middle(data, IMEI_T, size) and len(data) > 2 * size,
    ["imei"],
    json_response({"status": "ok", "settings": {
        "ad_units": [{"id": "b1c2d3e4f5a6%04d" % i, "format": f, "refresh_s": 30 + i}
                     for i, f in enumerate(["banner", "interstitial", "rewarded", "native"])],
        "consent_flow": {"enabled": True, "terms_url": "https://example-shop.com/terms"},
        "logging": "warn"}, "ts": ms(cap.t)}))
cap.t = 1.5
# 9. The tablet's GET with its advertising id, on a connection of its own: three CCMP
# fragments, of which the monitor missed the second (its PN used, its Ack heard); the
# advertising id whole in the first fragment, which arrives. A receiver drops the MSDU.
# The server answers as if the request arrived (the AP got every fragment).
lab.dns(TABLET, 0x6302, "app.adjust.com", 0x0000)
ADID_T = TABLET.ids["advertising_id"]
R4 = exchange(
    FragConn(lab, TABLET, "app.adjust.com", lost=(1,)), "GET",
    lambda a, b: ("/session?app_token=2fm7g9x4kq1s&gps_adid=%s&tracking_enabled=1"
                  "&created_at=2026-11-28T16%%3A00%%3A01.500Z%%2B0000&os_name=android"
                  "&os_version=14&device_type=tablet&device_name=SM-X710&session_count=4"
                  "&environment=production&callback_params=%s&partner_params=%s"
                  % (ADID_T, B64[200:200 + a], HEX[200:200 + b]), b""),
    lambda data, size: (pieces_of(data, ADID_T, size) == (0, 0)
                        and 2 * size < len(data) <= 3 * size and len(data) % size > 64),
    ["advertising_id"], what="its second fragment not in the capture")
cap.t = 1.7
# 10. The tablet's JSON POST with its Android id, on a connection of its own: three CCMP
# fragments each valid under its key, of PNs p, p + 2, p + 3 (p + 1 in no frame of the
# capture), as fragments mixed from several frames are (FragAttacks, CVE-2020-26146); the
# Android id cut in the middle by the first boundary, where the PN jumps; the MSDU's bytes
# whole, so that a reader that does not check the PNs reads the request.
lab.dns(TABLET, 0x6303, "api2.branch.io", 0x0000)
AID_T = TABLET.ids["android_id"]
R5 = exchange(
    FragConn(lab, TABLET, "api2.branch.io", pn_skip={1: 1}), "POST",
    lambda a, b: ("/v1/install", json_body({
        "metadata": {"s": B64[300:300 + a]}, "hardware_id": AID_T,
        "is_hardware_id_real": True, "branch_key": "key_live_hcnegAumkH7Kv18M8AOHhfgiohpXq5tB",
        "brand": "samsung", "model": "SM-X710", "os": "Android", "os_version": 34,
        "screen_dpi": 320, "screen_height": 2560, "screen_width": 1600, "wifi": True,
        "app_version": "5.1.0", "sdk": "android5.12.0", "local_ip": TABLET.ip,
        "first_install_time": ms(-86400), "latest_install_time": ms(-86400), "update": 0,
        "debug": False, "instrumentation": {"v1/install-qwt": "0"}, "retry_number": 0,
        "cd": {"mv": "-1", "pn": "com.example.shop"}, "sig": HEX[300:300 + b]})),
    lambda data, size: (cut_in_middle(data, AID_T, size, 0)
                        and 2 * size < len(data) <= 3 * size and len(data) % size > 64),
    ["android_id"], what="PNs p, p + 2, p + 3")
cap.t = 1.85
# 11. The router's UDP broadcast under the GTK (QoS data TID 0, No Ack); the stranger's
# NTP request, one CCMP frame.
payload = b"consentry-lab-frag keepalive"
udp = udp_datagram(ROUTER_IP, "192.168.92.255", 9, 9, payload)
group_frames.append(lab.group_frame(
    SNAP_IPV4 + ipv4_header(ROUTER_IP, "192.168.92.255", 17, len(udp), 0x0D01) + udp, "TKIP",
    GTK, 1, "group-addressed TKIP QoS data frame of the AP (GTK, key id 1): decrypted, "
    "a UDP broadcast to port 9: no request, no error", 0x0020))
cap.t = 1.9
lab.ntp(STRANGER, 0x0C00, "CCMP-protected data frame of the stranger (an NTP request, not "
        "fragmented), associated before the capture began: not decrypted", answer=False)
cap.t = 2.5
cap.emit(lab.beacon(), 0.01)
# 12. After the refusal (+2 s): the phone's GET with its IMEI in TKIP data frames (258
# octets a fragment): the IMEI cut in the middle by a boundary, the last fragment the 8
# octets of the Michael MIC alone; the AP's answer in TKIP QoS data frames (TID 0).
cap.t = REFUSAL_S + 1.0
lab.dns(PHONE, 0x5203, "sdk.e.qq.com", None)
IMEI = PHONE.ids["imei"]
R6 = exchange(
    FragConn(lab, PHONE, "sdk.e.qq.com", None, 0x0000), "GET",
    lambda a, b: ("/v2/ping?appid=1101152570&sdk_ver=4.610.1480&os=android&osver=15"
                  "&model=Pixel%%208&brand=google&net=wifi&ts=%d&sess=%s&imei=%s"
                  "&pkg=com.example.shop&ver=5.1.0&ext=%s" % (ms(cap.t), B64[400:400 + a],
                                                             IMEI, HEX[400:400 + b]), b""),
    lambda data, size: (cut_in_middle(data, IMEI, size) and len(data) % size == 8
                        and len(data) > 2 * size),
    ["imei"],
    json_response({"ret": 0, "msg": "ok", "data": {
        "interval": 600, "report_url": "https://sdk.e.qq.com/v2/report",
        "switches": {"crash": 1, "anr": 0, "netlog": 1, "ad_preload": 1},
        "placements": ["%010d" % (7020000000 + 37 * i) for i in range(8)]}}))
assert mic_octets(R6[1])[-1] == 8 and len(R6[1]["pieces"][-1]) == 8
cap.emit(lab.beacon())


# --- self-check of the written frames -----------------------------------------------------
# Every FCS; every protected frame opens with its key and with no other (a TKIP fragment
# by its ICV); each transmitter's TSCs (PNs) run on, those of the frames the capture lacks
# included; every fragmented MSDU's frames (wpakit's check_fragments); the identifiers.
counters = lab.check([("TKIP", PHONE.key), ("TKIP", GTK), ("CCMP", TABLET.key),
                      ("CCMP", STRANGER.key), ("CCMP", GTK[:16])], (PHONE, TABLET))
for (ta, key), got in counters.items():
    assert got[0] == 1 or key is STRANGER.key, got
# The PNs the capture lacks: the lost fragment's and the one the PN gap skips.
assert [(t, k, c) for t, k, c in lab.unseen] == [
    (mac(TABLET.mac), TABLET.key, R4[1]["tscs"][1]),
    (mac(TABLET.mac), TABLET.key, R5[1]["tscs"][0] + 1)]
assert R5[1]["tscs"][1:] == [R5[1]["tscs"][0] + 2, R5[1]["tscs"][0] + 3]
# Each request with its identifier cut by a boundary, but the lost fragment's (whole in
# the fragment that arrives); each request and each fragmented answer in two fragments
# or more.
STATIONS = {"phone": PHONE, "tablet": TABLET}
for r, rec in (R1, R2, R3, R5, R6):
    size = len(rec["pieces"][0])
    first, last = pieces_of(rec["msdu"], STATIONS[r["device"]].ids[r["identifiers"][0]], size)
    assert first != last, r
assert pieces_of(R4[1]["msdu"], ADID_T, 256) == (0, 0) and R4[1]["frames"][1] is None
assert all(len(m["pieces"]) >= 2 for m, _ in MSDUS)

cap.write_pcap(os.path.join(HERE, "frag.pcap"))
lab.write_case(os.path.join(HERE, "consentry.toml"), "frag", "make_frag.py",
               "frag-2026-11-28",
               "Example Shop 5.1 on a test phone and a tablet, WPA/WPA2 lab Wi-Fi with 802.11 "
               "fragmentation, in monitor mode",
               [(PHONE, MAC_ONLY + "; joins with WPA (TKIP)."),
                (TABLET, "The case's Android tablet (with a modem, so an IMEI), known by its "
                         "Wi-Fi MAC too; joins with WPA2 (CCMP, TKIP group key).")])
write_80211_keys(os.path.join(HERE, "80211_keys"), PASSPHRASE, SSID)


# --- expected.json ------------------------------------------------------------------------
def msdu_fields(rec):
    """A fragmented MSDU's record: its frames (null: a fragment the capture lacks), the
    octets of MSDU (TKIP: of MSDU || MIC) each carries, its sequence number, the TSCs or
    PNs of its fragments; for TKIP the MIC octets of each fragment."""
    out = {"fragments": rec["frames"], "fragment_octets": [len(p) for p in rec["pieces"]],
           "msdu_octets": len(rec["msdu"]), "sequence_number": rec["seq"],
           "tscs" if rec["cipher"] == "TKIP" else "pns": rec["tscs"]}
    if rec["cipher"] == "TKIP":
        out["mic_octets"] = mic_octets(rec)
    if rec["retries"]:
        out["retried"] = [{"original": n - 1, "retry": n} for n in rec["retries"]]
    return out


def tshark_view(rec):
    """What tshark 4.0.17 made of a fragmented MSDU of the phone or the tablet (see the
    docstring): it decrypts each fragment on its own, but not a TKIP fragment of 8 octets
    or fewer (frames 46 and 197), and removes 8 octets (a MIC, as it takes it) from the
    end of every TKIP fragment; it reassembles at the last fragment once fragments 0 to
    the last are decrypted, the Retry copy taken as an overlapping fragment; it does not
    look at PNs. The frame it reassembles at and the length it gets, or None."""
    if rec["lost"]:
        return None
    if rec["cipher"] == "TKIP":
        if any(len(p) <= 8 for p in rec["pieces"]):
            return None
        length = sum(len(p) - 8 for p in rec["pieces"])
    else:
        length = len(rec["msdu"])
    return {"frame": rec["frames"][-1], "length": length}


# The odd cases: the requests of the lost fragment and of the PN gap are not to be
# reported; each odd frame is a negative with its case.
CASES = ((R2[1], "retried-fragment"), (R4[1], "lost-fragment"), (R5[1], "pn-gap"))
requests, unreported = [], []
for r, rec in (R1, R2, R3, R4, R5, R6):
    seen = tshark_view(rec)
    item = dict({"frame": r["frame"], "at": r["at"],
                 "last_fragment": [n for n in rec["frames"] if n][-1]},
                **{k: r[k] for k in ("host", "method", "path", "identifiers", "device",
                                     "cipher", "consent")})
    size = len(rec["pieces"][0])
    item["identifiers_cut"] = {k: pieces_of(rec["msdu"], STATIONS[r["device"]].ids[k], size)
                               for k in r["identifiers"]}
    item["identifiers_cut"] = {k: list(v) for k, v in item["identifiers_cut"].items()
                               if v[0] != v[1]}
    item.update(msdu_fields(rec))
    item["tshark_frame"] = seen["frame"] if seen and rec["cipher"] == "CCMP" else None
    case = next((c for m, c in CASES if m is rec), None)
    if case:
        item["case"] = case
    (unreported if case in ("lost-fragment", "pn-gap") else requests).append(item)
lab.requests[:] = []        # replaced by `requests`
for n in R2[1]["retries"]:
    lab.negative(n, None, "the phone's POST's second fragment again, Retry set, the same TSC "
                 "and bytes (its Ack was not heard): a duplicate, ignored; the request is "
                 "reported once, from its first fragment")
# Each dropped MSDU is one anomaly, at the fragment that shows it cannot be put
# together (the first after the gap; the one whose PN jumps); its other fragments
# give no packet and no anomaly of their own.
lost = [n for n in R4[1]["frames"] if n]
for n in lost:
    lab.negative(n, "wlan-fragment-dropped" if n == lost[1] else None,
                 "CCMP fragment of the tablet's GET with its advertising id, whose second "
                 "fragment (PN %d) the capture lacks: the MSDU is incomplete and dropped, "
                 "the request is not reported" % R4[1]["tscs"][1])
for n in R5[1]["frames"]:
    lab.negative(n, "wlan-fragment-dropped" if n == R5[1]["frames"][1] else None,
                 "CCMP fragment of the tablet's POST with its Android id, PNs %s: not "
                 "consecutive (802.11's rule for CCMP fragments), the MSDU is dropped, the request is not reported"
                 % ", ".join(str(t) for t in R5[1]["tscs"]))
case_of = {n: c for m, c in CASES for n in m["frames"] + m["retries"] if n}
case_of.update({n: "stranger" for n in stranger_msdu["frames"]})
negatives = [dict(x, case=case_of.get(x["frame"]))
             for x in sorted(lab.negatives, key=lambda x: x["frame"])]
assert [x["frame"] for x in negatives if x["case"] == "retried-fragment"] == R2[1]["retries"]

counts = lab.counts(("phone", "tablet"))
whose = {"phone", "tablet"}
station_msdus = [m for m, _ in MSDUS if m["whose"] in whose]
fragments = [n for m in station_msdus for n in m["frames"] + m["retries"] if n]
tshark_seen = {m["frames"][-1]: tshark_view(m) for m in station_msdus if tshark_view(m)}
tkip_closed = [n for m in station_msdus if m["cipher"] == "TKIP"
               for n, p in zip(m["frames"], m["pieces"]) if len(p) <= 8]
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump({
        "capture": "frag.pcap", "frames": len(cap.frames), "ssid": SSID, "bssid": AP_MAC,
        "passphrase": PASSPHRASE, "pmk": PMK.hex(),
        "fragmentation": {"threshold": FRAG_THRESHOLD,
                          "fragment_octets": {"qos_data": lab.fragment_size(0),
                                              "data": lab.fragment_size(None)}},
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
            "stranger": {"mac": STRANGER.mac, "ip": STRANGER.ip, "pairwise_cipher": "CCMP-128",
                         "in_keys_file": None, "tk": STRANGER.key.hex(),
                         "frames": [p[0] for p in lab.protected if p[4] == "stranger"]}},
        "gtk": {"key_id": 1, "cipher": "TKIP", "gtk": GTK.hex(), "tk": GTK[:16].hex(),
                "michael_ap_to_stations": GTK[16:24].hex(),
                "given_in": [group_handshake[0], TABLET.handshake[2]],
                "key_iv": KEY_IV.hex(), "frames": group_frames},
        "group_key_handshake": group_handshake,
        "requests": requests, "unreported_requests": unreported,
        "fragmented_msdus": [dict({"what": what, "device": m["whose"],
                                   "transmitter": m["ta"], "cipher": m["cipher"]},
                                  **msdu_fields(m),
                                  reassembled=m["whose"] in whose and not m["lost"]
                                  and m is not R5[1]) for m, what in MSDUS],
        "negative": negatives, "dns": lab.dns_log,
        **counts,
        "fragments": {"decrypted": len(fragments),
                      "msdus_reassembled": sum(1 for m in station_msdus if not m["lost"]
                                               and m is not R5[1]),
                      "dropped": sum(1 for n in R4[1]["frames"] + R5[1]["frames"] if n),
                      "repeated": len(R2[1]["retries"]),
                      "missing": sum(1 for n in R4[1]["frames"] if n is None),
                      "stranger": sum(1 for n in stranger_msdu["frames"] if n)},
        "handshakes_with_key": 2, "handshakes_no_key": 0,
        "tshark": {
            "version": "4.0.17",
            "requests": [{"frame": tshark_seen[r["last_fragment"]]["frame"],
                          "method": r["method"], "host": r["host"], "path": r["path"]}
                         for r in sorted(requests + unreported, key=lambda r: r["frame"])
                         if r["cipher"] == "CCMP" and r["last_fragment"] in tshark_seen],
            "reassembled": [dict(v, msdu_octets=len(m["msdu"]), cipher=m["cipher"])
                            for m in station_msdus for v in [tshark_view(m)] if v],
            "decrypted_frames": counts["decrypted_frames"] - len(tkip_closed),
            "not_decrypted": sorted(tkip_closed + [p[0] for p in lab.protected
                                                   if p[4] == "stranger"]),
            "notes": {
                "tkip": "each TKIP fragment decrypted with its ICV, but 8 octets (a MIC, as "
                        "if each MPDU were a whole MSDU; rightly so only in the last) removed "
                        "from the end of every one: "
                        "the TKIP MSDUs reassembled lack 8 octets per fragment but the last "
                        "('IPv4 total length exceeds packet length', bad TCP checksum) and "
                        "no TKIP request is read; the fragments of %s octets (frames %s) are "
                        "not decrypted, their MSDUs not reassembled"
                        % (" and ".join(str(len(p)) for m in station_msdus for p in m["pieces"]
                                        if m["cipher"] == "TKIP" and len(p) <= 8),
                           " and ".join(str(n) for n in tkip_closed)),
                "retried-fragment": "frame %d: expert note 'Retransmission (retry)'; taken "
                                    "into the reassembly at %d as a fragment overlapping "
                                    "frame %d with the same data (5 fragments counted)"
                                    % (R2[1]["retries"][0], R2[1]["frames"][-1],
                                       R2[1]["retries"][0] - 1),
                "lost-fragment": "frames %s stay 'Fragmented IEEE 802.11 frame': not "
                                 "reassembled, no request" % " and ".join(
                                     str(n) for n in R4[1]["frames"] if n),
                "pn-gap": "reassembled at %d, the POST read: the PNs are not checked"
                          % R5[1]["frames"][-1],
                "stranger": "frames %s not decrypted, not reassembled"
                            % ", ".join(str(n) for n in stranger_msdu["frames"])}}},
              f, indent=1)
    f.write("\n")
pairwise = counts["pairwise_frames"]
print("wrote frag.pcap (%d frames; decrypted with the passphrase: %d pairwise (phone %d TKIP, "
      "tablet %d CCMP), %d group TKIP; %d protected in all; %d fragmented MSDUs), "
      "consentry.toml, 80211_keys, expected.json (%d requests, %d not to be reported)"
      % (len(cap.frames), counts["protected_frames"], pairwise["phone"], pairwise["tablet"],
         counts["group_frames"], counts["all_protected_frames"], len(MSDUS), len(requests),
         len(unreported)))
