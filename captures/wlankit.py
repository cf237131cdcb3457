"""802.11 helpers of the monitor-mode capture generators under captures/ (make_wifi.py,
make_wpa2.py, make_wpa3.py, make_tkip.py): radiotap and 802.11 frames with their FCS,
the capture being written (clock, frames, sequence numbers, classic pcap of link type
127), and what they tell alike of the lab devices: their TCP connections and HTTP
requests to trackers, their DNS lookups and the case file. Standard library and
captures/pcapkit.py only; MAC addresses are strings ("02:00:00:aa:cc:07"), frames bytes.
Sections: IEEE 802.11-2020. The WPA keys, EAPOL-Key frames, CCMP and TKIP are in
captures/wpakit.py.
"""

import struct
import zlib
from datetime import timedelta

from pcapkit import ACK, FIN, SYN, dns_message, ipv4_header, mac, tcp_segment, udp_datagram

BROADCAST = "ff:ff:ff:ff:ff:ff"
# Radiotap: version 0, pad, length 14, present = Flags | Rate | Channel; Flags 0x10 says
# the frame ends with its FCS; rate 108 (54 Mb/s in units of 500 kb/s); channel 2437 MHz
# (channel 6), flags 2.4 GHz + OFDM.
RADIOTAP = struct.pack("<BBHIBBHH", 0, 0, 14, 0x0000000E, 0x10, 0x6C, 2437, 0x00C0)
# LLC/SNAP (RFC 1042): DSAP, SSAP AA AA, UI, OUI 00-00-00, then the EtherType.
SNAP = bytes([0xAA, 0xAA, 0x03, 0, 0, 0])
SNAP_IPV4 = SNAP + b"\x08\x00"


def radiotap(mpdu):
    """Radiotap header + MPDU + FCS (9.2.4.8: CRC-32, little-endian)."""
    return RADIOTAP + mpdu + struct.pack("<I", zlib.crc32(mpdu) & 0xFFFFFFFF)


def ack(to):
    """An Ack frame (9.3.1.3) to `to`: frame control, duration 0, RA; behind radiotap."""
    return radiotap(bytes([0xD4, 0]) + struct.pack("<H", 0) + mac(to))


def element(eid, body):
    """An element (9.4.2.1): element ID, length, body."""
    return bytes([eid, len(body)]) + body


def beacon_body(timestamp, capability, ssid, rates, channel, rsn=b""):
    """The body of a beacon (9.3.3.2): timestamp, beacon interval 100 TU, capability
    information, the SSID, Supported Rates and DSSS Parameter Set elements (9.4.2.2,
    9.4.2.3, 9.4.2.4) and, when given, an RSN element (9.4.2.24)."""
    return (struct.pack("<QHH", timestamp, 100, capability) + element(0, ssid.encode())
            + element(1, bytes(rates)) + element(3, bytes([channel])) + rsn)


class Capture:
    """The capture being written: its frames ((seconds from t0, radiotap + MPDU + FCS)),
    the clock `t` (seconds from t0) of the next one, and the sequence numbers of the
    stations on the air: one counter per transmitter, or with seq_per_transmitter=False
    one for all."""

    def __init__(self, t0, seq_per_transmitter=True):
        self.t0, self.t, self.frames = t0, 0.0, []
        self.seq_per_transmitter, self.seq_no = seq_per_transmitter, {}

    def seq_ctl(self, transmitter):
        """Sequence control (9.2.4.4): the transmitter's next sequence number (12 bits,
        from 1), fragment 0."""
        key = transmitter if self.seq_per_transmitter else None
        self.seq_no[key] = (self.seq_no.get(key, 0) + 1) & 0xFFF
        return struct.pack("<H", self.seq_no[key] << 4)

    def mac_header(self, fc0, flags, a1, a2, a3, qos=None, duration=None):
        """A MAC header of three addresses (9.2.3): frame control, duration (by default 0
        for group-addressed frames, 44 us else), A1 A2 A3, the transmitter's (A2's)
        sequence control, QoS control when given."""
        if duration is None:
            duration = 0 if mac(a1)[0] & 1 else 44
        return (bytes([fc0, flags]) + struct.pack("<H", duration) + mac(a1) + mac(a2)
                + mac(a3) + self.seq_ctl(a2) + (struct.pack("<H", qos) if qos is not None
                                                else b""))

    def emit(self, data, dt=0.0003):
        """Appends a frame at the clock, then advances it by dt; the frame's number."""
        self.frames.append((self.t, data))
        self.t += dt
        return len(self.frames)

    def iso(self, seconds):
        """The time `seconds` after t0, ISO 8601 UTC with microseconds."""
        x = self.t0 + timedelta(microseconds=int(round(seconds * 1_000_000)))
        return x.strftime("%Y-%m-%dT%H:%M:%S.%fZ")

    def write_pcap(self, path):
        """Classic pcap: magic 0xA1B2C3D4 (little-endian, microseconds), version 2.4,
        snaplen 65535, link type 127 (radiotap)."""
        t0 = int(self.t0.timestamp())
        out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 127)]
        for seconds, data in self.frames:
            us = int(round(seconds * 1_000_000))
            out.append(struct.pack("<IIII", t0 + us // 1_000_000, us % 1_000_000, len(data),
                                   len(data)) + data)
        with open(path, "wb") as f:
            f.write(b"".join(out))


# --- the lab phone's traffic ---------------------------------------------------------------
HTTP_RESPONSE = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class TcpConn:
    """A TCP connection of the phone (IPv4) to port 80 of a tracker, each direction (True:
    the phone's) with its sequence number, from isn + port, and IPv4 identification, from
    port (the phone's) and ident_down + port. The scripts subclass it with how its packets
    go on the air."""

    def __init__(self, phone_ip, host, server, port, isn_up, isn_down, ident_down):
        self.phone_ip, self.host, self.server, self.port = phone_ip, host, server, port
        self.seq = {True: isn_up + port, False: isn_down + port}
        self.ident = {True: port, False: ident_down + port}

    def packet(self, up, flags, payload=b""):
        """The next IPv4 packet of the connection."""
        src, dst = (self.phone_ip, self.server) if up else (self.server, self.phone_ip)
        sp, dp = (self.port, 80) if up else (80, self.port)
        ack_no = self.seq[not up] if flags & ACK else 0
        seg = tcp_segment(src, dst, sp, dp, self.seq[up], ack_no, flags, payload)
        self.seq[up] += len(payload) + (1 if flags & (SYN | FIN) else 0)
        self.ident[up] += 1
        return ipv4_header(src, dst, 6, len(seg), self.ident[up] & 0xFFFF) + seg

    def http_request(self, method, path, body, values):
        """The app's HTTP/1.1 request to the host, a JSON body when given; asserts that it
        carries each identifier value of `values`."""
        head = "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: ExampleShop/5.1.0 (Android 15)\r\n" % (
            method, path, self.host)
        if body:
            head += "Content-Type: application/json\r\nContent-Length: %d\r\n" % len(body)
        request = (head + "\r\n").encode() + body
        for value in values:
            assert value.encode() in request, value
        return request


def dns_lookup(phone_ip, resolver_ip, port, txid, name, address):
    """The phone's query (from UDP port `port`) for name's A record and the resolver's
    answer `address`, as IPv4 packets of identification txid and txid + 1:
    [(True, query), (False, answer)]."""
    out = []
    query, answer = dns_message(txid, name), dns_message(txid, name, address)
    for up, message in ((True, query), (False, answer)):
        src, dst = (phone_ip, resolver_ip) if up else (resolver_ip, phone_ip)
        sp, dp = (port, 53) if up else (53, port)
        udp = udp_datagram(src, dst, sp, dp, message)
        out.append((up, ipv4_header(src, dst, 17, len(udp), txid + up) + udp))
    return out


def write_case(path, capture, script, case_id, title, devices, refusals):
    """The case file of a lab capture: the Example Shop app on `devices`, each a dict with
    its id, its Wi-Fi MAC address `mac` (the only address it is known by), its identifiers
    `ids` and a `comment` line above it; and one refusal of all purposes for each (device
    id, time) of `refusals`."""
    text = ("# Case file of the %s sample capture (%s writes it).\n"
            "# All identifier values are synthetic.\n\n"
            '[case]\nid = "%s"\ntitle = "%s"\ntimezone = "Asia/Shanghai"\n\n'
            '[app]\nname = "Example Shop"\npackage = "com.example.shop"\n'
            'first_party = ["example-shop.com"]\n\n' % (capture, script, case_id, title))
    for d in devices:
        text += ('# %s\n[[device]]\nid = "%s"\naddresses = ["%s"]\n[device.identifiers]\n%s\n'
                 % (d["comment"], d["id"], d["mac"],
                    "".join('%s = "%s"\n' % kv for kv in d["ids"].items())))
    text += "\n".join('[[consent]]\ndevice = "%s"\nat = "%s"\ndecision = "refused"\n'
                      'note = "tapped Disagree on the privacy dialog (all purposes)"\n'
                      % refusal for refusal in refusals)
    with open(path, "w") as f:
        f.write(text)


def write_phone_case(path, capture, script, case_id, title, phone_mac, ids, refusal_at):
    """The case file of a lab capture: the Example Shop app on one phone known only by its
    Wi-Fi MAC address, with the identifiers `ids`, its user refusing at `refusal_at`."""
    write_case(path, capture, script, case_id, title,
               [{"id": "phone", "mac": phone_mac, "ids": ids,
                 "comment": "Known by its Wi-Fi MAC only (randomisation off for the lab "
                            "network)."}],
               [("phone", refusal_at)])
