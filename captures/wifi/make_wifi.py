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
import zlib
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
# captures/pcapkit.py: the packet-building helpers the capture generators share.
sys.path.insert(0, os.path.dirname(HERE))
from pcapkit import ACK, FIN, PSH, SYN, ipv4_header, tcp_segment, udp_datagram  # noqa: E402

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


def mac(s):
    return bytes(int(x, 16) for x in s.split(":"))


# --- 802.11 ------------------------------------------------------------------------------
# Radiotap: version 0, pad, length 14, present = Flags | Rate | Channel; Flags 0x10 says
# the frame ends with its FCS; rate 2 (1 Mb/s units of 500 kb/s); channel 2437 MHz
# (channel 6), flags 2.4 GHz + OFDM.
RADIOTAP = struct.pack("<BBHIBBHH", 0, 0, 14, 0x0000000E, 0x10, 0x6C, 2437, 0x00C0)
SNAP_IPV4 = bytes([0xAA, 0xAA, 0x03, 0, 0, 0, 0x08, 0x00])
seq_no = 0


def seq_ctl():
    """Sequence control: the next sequence number, fragment 0."""
    global seq_no
    seq_no = (seq_no + 1) & 0xFFF
    return struct.pack("<H", seq_no << 4)


def wlan(fc0, flags, a1, a2, a3, body=b"", qos=None):
    """An 802.11 frame: frame control, duration, three addresses, sequence control, QoS
    control when given, body, then the FCS (CRC-32, little-endian), behind radiotap."""
    h = bytes([fc0, flags]) + struct.pack("<H", 44) + mac(a1) + mac(a2) + mac(a3)
    h += seq_ctl() + (struct.pack("<H", qos) if qos is not None else b"") + body
    return RADIOTAP + h + struct.pack("<I", zlib.crc32(h) & 0xFFFFFFFF)


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
    fixed = struct.pack("<QHH", 0x1122334455, 100, 0x0401)
    ssid = b"consentry-lab"
    ies = bytes([0, len(ssid)]) + ssid + bytes([1, 4, 0x82, 0x84, 0x8B, 0x96, 3, 1, 6])
    return wlan(0x80, 0, "ff:ff:ff:ff:ff:ff", AP_MAC, AP_MAC, fixed + ies)


def ack(to):
    h = bytes([0xD4, 0]) + struct.pack("<H", 0) + mac(to)
    return RADIOTAP + h + struct.pack("<I", zlib.crc32(h) & 0xFFFFFFFF)


# --- the capture ---------------------------------------------------------------------------
frames = []          # (seconds from T0, bytes)
requests, negatives = [], []
t = 0.0


def emit(data, dt=0.0003):
    global t
    frames.append((t, data))
    t += dt
    return len(frames)


class Conn:
    """One TCP connection of the phone to `host` on port 80."""
    next_port = 50311

    def __init__(self, host):
        Conn.next_port += 17
        self.host, self.server, self.port = host, TRACKERS[host], Conn.next_port
        self.seq = {True: 0x3A000000 + self.port, False: 0x7B000000 + self.port}
        self.ident = {True: self.port, False: 4000 + self.port}

    def packet(self, up, flags, payload=b""):
        """The next IPv4 packet of the connection."""
        src, dst = (PHONE_IP, self.server) if up else (self.server, PHONE_IP)
        sp, dp = (self.port, 80) if up else (80, self.port)
        ack_no = self.seq[not up] if flags & ACK else 0
        seg = tcp_segment(src, dst, sp, dp, self.seq[up], ack_no, flags, payload)
        self.seq[up] += len(payload) + (1 if flags & (SYN | FIN) else 0)
        self.ident[up] += 1
        return ipv4_header(src, dst, 6, len(seg), self.ident[up] & 0xFFFF) + seg

    def send(self, up, flags, payload=b"", qos=True, dt=0.0004):
        frame = emit(data_frame(up, self.packet(up, flags, payload), qos), dt)
        emit(ack(AP_MAC if not up else PHONE_MAC), 0.0001)
        return frame

    def exchange(self, method, path, body, identifiers, qos=True, amsdu=False):
        """The whole connection; with `amsdu`, the handshake's last ACK and the request
        travel in one A-MSDU."""
        start = t
        self.send(True, SYN, qos=qos)
        self.send(False, SYN | ACK, qos=qos)
        if not amsdu:
            self.send(True, ACK, qos=qos)
        head = "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ExampleShop/5.1.0 (Android 15)\r\n" % (
            method, path, self.host)
        if body:
            head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        request = (head + "\r\n").encode() + body
        for kind in identifiers:
            assert IDS[kind].encode() in request, kind
        request_time = t
        if amsdu:
            frame = emit(amsdu_frame([self.packet(True, ACK),
                                      self.packet(True, PSH | ACK, request)]), 0.02)
            emit(ack(PHONE_MAC), 0.0001)
        else:
            frame = self.send(True, PSH | ACK, request, qos=qos, dt=0.02)
        response = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"
        self.send(False, PSH | ACK, response, qos=qos)
        self.send(True, FIN | ACK, qos=qos)
        self.send(False, FIN | ACK, qos=qos)
        self.send(True, ACK, qos=qos)
        requests.append({"frame": frame, "at": iso(request_time), "host": self.host,
                         "method": method, "path": path.split("?")[0],
                         "identifiers": identifiers, "device": "phone", "a_msdu": amsdu,
                         "consent": "after-refusal" if request_time >= REFUSAL_S
                         else "not-asked"})
        assert start < request_time


def iso(seconds):
    x = T0 + timedelta(microseconds=int(round(seconds * 1_000_000)))
    return x.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def dns(txid, name, answer):
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0\x00\x01\x00\x01"
    query = struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + q
    reply = struct.pack("!HHHHHH", txid, 0x8180, 1, 1, 0, 0) + q + \
        b"\xc0\x0c\x00\x01\x00\x01" + struct.pack("!IH", 300, 4) + bytes(map(int, answer.split(".")))
    for up, payload in ((True, query), (False, reply)):
        src, dst = (PHONE_IP, ROUTER_IP) if up else (ROUTER_IP, PHONE_IP)
        sp, dp = (40053, 53) if up else (53, 40053)
        udp = udp_datagram(src, dst, sp, dp, payload)
        emit(data_frame(up, ipv4_header(src, dst, 17, len(udp), txid + up) + udp), 0.002)


def negative(frame, kind, what):
    negatives.append({"frame": frame, "kind": kind, "what": what})


emit(beacon(), 0.05)
dns(0x1001, "rt.applovin.com", TRACKERS["rt.applovin.com"])
Conn("rt.applovin.com").exchange(
    "GET", "/v1/ad?format=banner&ifa=%s&os=android" % IDS["advertising_id"], b"",
    ["advertising_id"])
t = 0.5
negative(emit(wlan(0x48, 0x01, AP_MAC, PHONE_MAC, ROUTER_MAC)), None,
         "null-data frame (power save): no network layer, no error")
# Another station's WPA2 (CCMP) data frame: an 8-byte CCMP header, ciphertext, MIC.
ccmp = bytes([0x01, 0x00, 0x00, 0x20, 0, 0, 0, 0]) + bytes(range(64)) + bytes(8)
negative(emit(wlan(0x88, 0x41, AP_MAC, OTHER_MAC, ROUTER_MAC, ccmp, 0)), "wlan-protected",
         "WPA2-protected QoS data frame of another station: not decrypted")
t = 0.8
Conn("api2.amplitude.com").exchange(
    "POST", "/2/httpapi",
    json.dumps({"api_key": "00112233445566778899aabbccddeeff",
                "events": [{"event_type": "app_open", "device_id": IDS["android_id"]}]},
               separators=(",", ":")).encode(),
    ["android_id"], qos=False)
t = 1.5
# The A-MSDU bit (QoS control bit 7) over a plain LLC/SNAP body: read as an aggregate,
# its first subframe's destination would be AA:AA:03:00:00:00. Not read, as Linux
# drops it (CVE-2020-24588).
ntp = udp_datagram(PHONE_IP, ROUTER_IP, 40123, 123, bytes([0x23]) + bytes(47))
spoof = SNAP_IPV4 + ipv4_header(PHONE_IP, ROUTER_IP, 17, len(ntp), 0x0123) + ntp
negative(emit(wlan(0x88, 0x01, AP_MAC, PHONE_MAC, ROUTER_MAC, spoof, 0x0080)),
         "link-not-decoded", "A-MSDU bit over a plain LLC/SNAP body: not read")
emit(beacon(), 0.05)
t = REFUSAL_S + 1.0
Conn("sdk.e.qq.com").exchange(
    "GET", "/v2/ping?appid=1101152570&imei=%s" % IDS["imei"], b"", ["imei"], amsdu=True)


def write_pcap(path):
    t0 = int(T0.timestamp())
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 127)]
    for seconds, data in frames:
        us = int(round(seconds * 1_000_000))
        out.append(struct.pack("<IIII", t0 + us // 1_000_000, us % 1_000_000, len(data),
                               len(data)) + data)
    with open(path, "wb") as f:
        f.write(b"".join(out))


def write_case(path):
    ids = "".join('%s = "%s"\n' % kv for kv in IDS.items())
    text = ("# Case file of the wifi sample capture (make_wifi.py writes it).\n"
            "# All identifier values are synthetic.\n\n"
            '[case]\nid = "wifi-2026-11-28"\n'
            'title = "Example Shop 5.1 on a test phone, open lab Wi-Fi in monitor mode"\n'
            'timezone = "Asia/Shanghai"\n\n'
            '[app]\nname = "Example Shop"\npackage = "com.example.shop"\n'
            'first_party = ["example-shop.com"]\n\n'
            "# Known by its Wi-Fi MAC only (randomisation off for the lab network).\n"
            '[[device]]\nid = "phone"\naddresses = ["%s"]\n[device.identifiers]\n%s\n'
            '[[consent]]\ndevice = "phone"\nat = "%s"\ndecision = "refused"\n'
            'note = "tapped Disagree on the privacy dialog (all purposes)"\n'
            % (PHONE_MAC, ids, iso(REFUSAL_S)))
    with open(path, "w") as f:
        f.write(text)


write_pcap(os.path.join(HERE, "wifi.pcap"))
write_case(os.path.join(HERE, "consentry.toml"))
with open(os.path.join(HERE, "expected.json"), "w") as f:
    json.dump({"capture": "wifi.pcap", "frames": len(frames), "requests": requests,
               "negative": negatives}, f, indent=1)
    f.write("\n")
print("wrote wifi.pcap (%d frames), consentry.toml, expected.json (%d requests)"
      % (len(frames), len(requests)))
