#!/usr/bin/env python3
"""Writes the "wifi" sample capture of consentry's pcap tap: a test phone on an open
lab access point, captured in monitor mode (radiotap + 802.11, as `tcpdump -I` or
`airodump-ng` record it).

Outputs, next to this script:
  wifi.pcap       classic pcap, link type 127 (radiotap), microsecond timestamps.
  consentry.toml  the case: one phone known only by its Wi-Fi MAC address.
  expected.json   every HTTP request (frame, time, host, method, path, identifier
                  types, consent state) and the frames that must not give packets.

Story (from 2026-11-28T12:00:00Z): the AP "consentry-lab" (open) beacons; the phone
asks DNS for a tracker and sends it its advertising id (a QoS data frame), then its
Android id in a JSON body (a plain data frame), the user refuses at +2 s, and the
phone sends its IMEI afterwards, the request aggregated with the handshake's last
ACK in one A-MSDU (two subframes). Every frame carries a radiotap header (flags, rate,
channel) with a frame check sequence at its end, as most monitor-mode drivers
deliver them. Around them: beacons, ACKs, a null-data frame, a WPA-protected frame
of another station (not readable without keys), and a frame whose A-MSDU bit is set
over a plain LLC/SNAP body (the "FragAttacks" spoof, which Linux drops: not read).
IPv4/TCP/UDP checksums and the 802.11 FCS are valid. Deterministic, standard library
only; all addresses and identifiers synthetic.

Checked with tshark 4.0: every FCS good (`-o wlan.check_checksum:TRUE`), every IP,
TCP and UDP checksum good, no expert errors, and
  tshark -r wifi.pcap -Y http.request -T fields -e frame.number -e wlan.sa \
      -e http.host -e http.request.uri
lists the three requests at the frames of expected.json, the third from the second
subframe of an A-MSDU. It shows the spoofed frame as an A-MSDU of one subframe of
291 bytes without complaint.
Run: python3 captures/wifi/make_wifi.py
"""
import json
import os
import struct
import sys
from datetime import datetime, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
# captures/pcapkit.py: the packet-building helpers the capture generators share;
# captures/wlankit.py: the 802.11 ones make_wifi.py and make_wpa2.py share.
sys.path.insert(0, os.path.dirname(HERE))
from pcapkit import ACK, FIN, PSH, SYN, ipv4_header, mac, udp_datagram  # noqa: E402
from wlankit import (BROADCAST, HTTP_RESPONSE, SNAP_IPV4, Capture, TcpConn, ack,  # noqa: E402
                     beacon_body, dns_lookup, radiotap, write_phone_case)

T0 = datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc)
REFUSAL_S = 2.0

PHONE_MAC = "02:00:00:aa:cc:07"
AP_MAC = "02:00:00:00:5a:01"        # the access point (BSSID)
ROUTER_MAC = "02:00:00:00:5a:fe"    # the lab's router behind it
OTHER_MAC = "02:00:00:33:44:55"     # another station, on WPA elsewhere
PHONE_IP, ROUTER_IP = "192.168.88.23", "192.168.88.1"
IDS = {"advertising_id": "5d9e7c1a-3b2f-4e8d-9a6c-0f1e2d3c4b5a",
       "android_id": "77c0ffee0badf00d",
       "imei": "356938035643809"}
TRACKERS = {"rt.applovin.com": "203.0.113.31", "api2.amplitude.com": "203.0.113.61",
            "sdk.e.qq.com": "203.0.113.51"}

# The frames (seconds from T0), the clock; one sequence counter for all stations.
cap = Capture(T0, seq_per_transmitter=False)


# --- 802.11 (radiotap, MAC header, FCS: captures/wlankit.py) ------------------------------
def wlan(fc0, flags, a1, a2, a3, body=b"", qos=None):
    """An 802.11 frame: frame control, duration (44 us, the beacon's too), three
    addresses, sequence control, QoS control when given, body, then the FCS (CRC-32,
    little-endian), behind radiotap."""
    return radiotap(cap.mac_header(fc0, flags, a1, a2, a3, qos, duration=44) + body)


def data_frame(up, ip_packet, qos=True):
    """The phone's packet to the AP (To DS: A1 BSSID, A2 phone, A3 router) or the AP's
    to the phone (From DS: A1 phone, A2 BSSID, A3 router); QoS data or plain data."""
    fc0 = 0x88 if qos else 0x08
    a = (AP_MAC, PHONE_MAC, ROUTER_MAC) if up else (PHONE_MAC, AP_MAC, ROUTER_MAC)
    return wlan(fc0, 0x01 if up else 0x02, *a, SNAP_IPV4 + ip_packet, 0 if qos else None)


def amsdu_frame(ip_packets):
    """The phone's packets to the router in one A-MSDU (QoS control bit 7): a subframe
    each of DA, SA, length (big-endian), LLC/SNAP + packet, padded to 4 bytes but the
    last (IEEE 802.11-2020 9.3.2.2.2)."""
    subs = []
    for ip in ip_packets:
        msdu = SNAP_IPV4 + ip
        subs.append(mac(ROUTER_MAC) + mac(PHONE_MAC) + struct.pack("!H", len(msdu)) + msdu)
    body = b"".join(sub + bytes(-len(sub) % 4) for sub in subs[:-1]) + subs[-1]
    return wlan(0x88, 0x01, AP_MAC, PHONE_MAC, ROUTER_MAC, body, 0x0080)


def beacon():
    """Open network (capability ESS | short slot, no RSN element), basic rates 1, 2, 5.5
    and 11 Mb/s."""
    body = beacon_body(0x1122334455, 0x0401, "consentry-lab", [0x82, 0x84, 0x8B, 0x96], 6)
    return wlan(0x80, 0, BROADCAST, AP_MAC, AP_MAC, body)


# --- the capture ---------------------------------------------------------------------------
requests, negatives = [], []


class Conn(TcpConn):
    """One TCP connection of the phone to `host` on port 80 (packets: wlankit.TcpConn)."""
    next_port = 50311

    def __init__(self, host):
        Conn.next_port += 17
        TcpConn.__init__(self, PHONE_IP, host, TRACKERS[host], Conn.next_port,
                         0x3A000000, 0x7B000000, 4000)

    def send(self, up, flags, payload=b"", qos=True, dt=0.0004):
        frame = cap.emit(data_frame(up, self.packet(up, flags, payload), qos), dt)
        cap.emit(ack(AP_MAC if not up else PHONE_MAC), 0.0001)
        return frame

    def exchange(self, method, path, body, identifiers, qos=True, amsdu=False):
        """The whole connection; with `amsdu`, the handshake's last ACK and the request
        travel in one A-MSDU."""
        start = cap.t
        self.send(True, SYN, qos=qos)
        self.send(False, SYN | ACK, qos=qos)
        if not amsdu:
            self.send(True, ACK, qos=qos)
        request = self.http_request(method, path, body, [IDS[k] for k in identifiers])
        request_time = cap.t
        if amsdu:
            frame = cap.emit(amsdu_frame([self.packet(True, ACK),
                                          self.packet(True, PSH | ACK, request)]), 0.02)
            cap.emit(ack(PHONE_MAC), 0.0001)
        else:
            frame = self.send(True, PSH | ACK, request, qos=qos, dt=0.02)
        self.send(False, PSH | ACK, HTTP_RESPONSE, qos=qos)
        self.send(True, FIN | ACK, qos=qos)
        self.send(False, FIN | ACK, qos=qos)
        self.send(True, ACK, qos=qos)
        requests.append({"frame": frame, "at": cap.iso(request_time), "host": self.host,
                         "method": method, "path": path.split("?")[0],
                         "identifiers": identifiers, "device": "phone", "a_msdu": amsdu,
                         "consent": "after-refusal" if request_time >= REFUSAL_S
                         else "not-asked"})
        assert start < request_time


def dns(txid, name, answer):
    for up, ip in dns_lookup(PHONE_IP, ROUTER_IP, 40053, txid, name, answer):
        cap.emit(data_frame(up, ip), 0.002)


def negative(frame, kind, what):
    negatives.append({"frame": frame, "kind": kind, "what": what})


cap.emit(beacon(), 0.05)
dns(0x1001, "rt.applovin.com", TRACKERS["rt.applovin.com"])
Conn("rt.applovin.com").exchange(
    "GET", "/v1/ad?format=banner&ifa=%s&os=android" % IDS["advertising_id"], b"",
    ["advertising_id"])
cap.t = 0.5
negative(cap.emit(wlan(0x48, 0x01, AP_MAC, PHONE_MAC, ROUTER_MAC)), None,
         "null-data frame (power save): no network layer, no error")
# Another station's WPA2 (CCMP) data frame: an 8-byte CCMP header, ciphertext, MIC.
ccmp = bytes([0x01, 0x00, 0x00, 0x20, 0, 0, 0, 0]) + bytes(range(64)) + bytes(8)
negative(cap.emit(wlan(0x88, 0x41, AP_MAC, OTHER_MAC, ROUTER_MAC, ccmp, 0)),
         "wlan-protected", "WPA2-protected QoS data frame of another station: not decrypted")
cap.t = 0.8
Conn("api2.amplitude.com").exchange(
    "POST", "/2/httpapi",
    json.dumps({"api_key": "00112233445566778899aabbccddeeff",
                "events": [{"event_type": "app_open", "device_id": IDS["android_id"]}]},
               separators=(",", ":")).encode(),
    ["android_id"], qos=False)
cap.t = 1.5
# The A-MSDU bit (QoS control bit 7) over a plain LLC/SNAP body: read as an aggregate,
# its first subframe's destination would be AA:AA:03:00:00:00. Not read, as Linux
# drops it (CVE-2020-24588).
ntp = udp_datagram(PHONE_IP, ROUTER_IP, 40123, 123, bytes([0x23]) + bytes(47))
spoof = SNAP_IPV4 + ipv4_header(PHONE_IP, ROUTER_IP, 17, len(ntp), 0x0123) + ntp
negative(cap.emit(wlan(0x88, 0x01, AP_MAC, PHONE_MAC, ROUTER_MAC, spoof, 0x0080)),
         "link-not-decoded", "A-MSDU bit over a plain LLC/SNAP body: not read")
cap.emit(beacon(), 0.05)
cap.t = REFUSAL_S + 1.0
Conn("sdk.e.qq.com").exchange(
    "GET", "/v2/ping?appid=1101152570&imei=%s" % IDS["imei"], b"", ["imei"], amsdu=True)

cap.write_pcap(os.path.join(HERE, "wifi.pcap"))
write_phone_case(os.path.join(HERE, "consentry.toml"), "wifi", "make_wifi.py",
                 "wifi-2026-11-28",
                 "Example Shop 5.1 on a test phone, open lab Wi-Fi in monitor mode",
                 PHONE_MAC, IDS, cap.iso(REFUSAL_S))
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump({"capture": "wifi.pcap", "frames": len(cap.frames), "requests": requests,
               "negative": negatives}, f, indent=1)
    f.write("\n")
print("wrote wifi.pcap (%d frames), consentry.toml, expected.json (%d requests)"
      % (len(cap.frames), len(requests)))
