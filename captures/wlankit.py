"""802.11 helpers of the monitor-mode capture generators under captures/ (make_wifi.py,
make_wpa2.py, make_wpa3.py, make_tkip.py, make_wep.py, make_gcmp.py, make_ft.py,
make_frag.py): radiotap and 802.11 frames with their FCS, the capture being written (clock,
frames, sequence numbers, classic pcap of link type 127), and what they tell alike of the
lab devices: their TCP connections and HTTP requests to trackers, their DNS lookups and
NTP, the case file; and the lab network of the WPA captures (Lab: the access point's
beacons, authentication, association and reassociation, the stations, the records of
expected.json; a second access point of the same SSID for make_ft.py's roam). Standard
library and captures/pcapkit.py only; MAC addresses are strings ("02:00:00:aa:cc:07"),
frames bytes. Sections: IEEE 802.11-2020. The WPA keys, EAPOL-Key frames, CCMP, GCMP, TKIP
and WEP, the FT elements, and the protected frames of a WPA (or WEP) lab (WpaLab), are in
captures/wpakit.py.
"""

import itertools
import struct
import zlib
from datetime import timedelta
from ipaddress import IPv4Address

from pcapkit import (ACK, FIN, PSH, SYN, dns_message, ipv4_header, mac, tcp_segment,
                     udp_datagram)

BROADCAST = "ff:ff:ff:ff:ff:ff"
# Radiotap: version 0, pad, length 14, present = Flags | Rate | Channel; Flags 0x10 says
# the frame ends with its FCS; rate 108 (54 Mb/s in units of 500 kb/s); channel 2437 MHz
# (channel 6), flags 2.4 GHz + OFDM.
RADIOTAP = struct.pack("<BBHIBBHH", 0, 0, 14, 0x0000000E, 0x10, 0x6C, 2437, 0x00C0)
# LLC/SNAP (RFC 1042): DSAP, SSAP AA AA, UI, OUI 00-00-00, then the EtherType.
SNAP = bytes([0xAA, 0xAA, 0x03, 0, 0, 0])
SNAP_IPV4, SNAP_ARP = SNAP + b"\x08\x00", SNAP + b"\x08\x06"
# Supported Rates of the WPA labs (9.4.2.3): 1, 2, 5.5 and 11 Mb/s (basic), 6, 9, 12 and
# 18 Mb/s.
LAB_RATES = (0x82, 0x84, 0x8B, 0x96, 0x0C, 0x12, 0x18, 0x24)


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

    def emit_acked(self, data, transmitter, dt=0.0003):
        """A unicast frame and, 16 us + its airtime later, the receiver's Ack to its
        transmitter; the clock then advances by dt. The frame's number."""
        n = self.emit(data, 0.0001)
        self.emit(ack(transmitter), dt)
        return n

    def check_fcs(self):
        """Asserts that every frame written ends with the FCS of its MPDU (9.2.4.8), the
        MPDU as transmitted (protected frames included)."""
        for n, (_, data) in enumerate(self.frames, 1):
            rt_len = struct.unpack_from("<H", data, 2)[0]
            assert zlib.crc32(data[rt_len:-4]) == struct.unpack("<I", data[-4:])[0], n

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

    def exchange(self, cap, method, path, body, values, response=HTTP_RESPONSE, **last_ack):
        """The whole connection, each packet put on the air by the subclass's
        send(up, flags, payload=b"", dt=...), which returns its frame number: the TCP
        handshake, the request (http_request, carrying each of `values`; 20 ms after its
        frame), the response (by default HTTP_RESPONSE), the FIN handshake; `last_ack`,
        what send takes besides for the phone's last ACK. The request's frame number and
        time (seconds from cap's t0)."""
        self.send(True, SYN)
        self.send(False, SYN | ACK)
        self.send(True, ACK)
        request = self.http_request(method, path, body, values)
        at = cap.t
        frame = self.send(True, PSH | ACK, request, dt=0.02)
        self.send(False, PSH | ACK, response)
        self.send(True, FIN | ACK)
        self.send(False, FIN | ACK)
        self.send(True, ACK, **last_ack)
        return frame, at


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


def ntp_exchange(station_ip, server_ip, ident, answer=True):
    """A station's NTP request (RFC 5905: a 48-octet packet, LI 0, version 4, mode 3
    client, the rest zero) from UDP port 40123 to port 123 and, with `answer`, the
    server's reply (mode 4 server), as IPv4 packets of identification ident and ident + 1:
    [(True, request), (False, reply)]."""
    out = []
    for up in (True, False) if answer else (True,):
        src, dst = (station_ip, server_ip) if up else (server_ip, station_ip)
        udp = udp_datagram(src, dst, *((40123, 123) if up else (123, 40123)),
                           bytes([0x23 if up else 0x24]) + bytes(47))
        out.append((up, ipv4_header(src, dst, 17, len(udp), ident + (not up)) + udp))
    return out


def arp_request(sender_mac, sender_ip, target_ip):
    """An ARP request (RFC 826) for target_ip's MAC address: hardware type 1 (Ethernet),
    protocol 0x0800 (IPv4), lengths 6 and 4, operation 1, the sender's MAC and IPv4
    addresses, target MAC zero, the target's IPv4 address."""
    return struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, 1, mac(sender_mac),
                       IPv4Address(sender_ip).packed, bytes(6), IPv4Address(target_ip).packed)


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


# The case file's comment on a lab phone.
MAC_ONLY = "Known by its Wi-Fi MAC only (randomisation off for the lab network)"


def write_phone_case(path, capture, script, case_id, title, phone_mac, ids, refusal_at):
    """The case file of a lab capture: the Example Shop app on one phone known only by its
    Wi-Fi MAC address, with the identifiers `ids`, its user refusing at `refusal_at`."""
    write_case(path, capture, script, case_id, title,
               [{"id": "phone", "mac": phone_mac, "ids": ids, "comment": MAC_ONLY + "."}],
               [("phone", refusal_at)])


# --- the lab network of the WPA captures ---------------------------------------------------
class Station:
    """A station of a lab capture's story: its name (its case device's id, or the story's
    for a station in no case), MAC and IPv4 address, the identifiers of its case device
    (None: not in the case), its association ID and the UDP port of its DNS lookups; and
    the BSSID of the access point it is with (bssid: None for the lab's access point, or
    another AP of the lab, make_ft.py's roam)."""

    def __init__(self, name, mac_address, ip, ids, aid, dns_port):
        self.name, self.mac, self.ip, self.ids = name, mac_address, ip, ids
        self.aid, self.dns_port = aid, dns_port
        self.bssid = None


class Lab:
    """The lab network of a capture `cap`: the access point (BSSID ap_mac, the SSID), the
    router behind it (router_mac, router_ip), the trackers' IPv4 addresses (host ->
    address), the device `refuser` whose user refuses all purposes at refusal_s (seconds
    from t0), the port and initial sequence numbers of the stations' TCP connections
    (`tcp`: the first connection's port, the step to the next, then TcpConn's isn_up,
    isn_down and ident_down); and what expected.json tells of the capture: its HTTP
    requests, DNS lookups (dns_log) and the frames that must give no packet (negatives).

    Beacons (9.3.3.2): timestamp tsf0 (plus the clock, in microseconds, with tsf_ticks),
    capability ESS | Privacy | short slot time (0x0411), LAB_RATES, channel 6, then
    `elements` (the RSN element, the WPA element). Association (9.3.3.6, 9.3.3.7):
    request capability 0x0431, listen interval 10, SSID, Supported Rates, the station's
    element; response capability 0x0411, status 0, the station's AID | 0xC000, Supported
    Rates. Each management frame with A3 the BSSID, acknowledged. A lab of several access
    points of one SSID (make_ft.py): each station is with the lab's AP (ap_mac) or the
    BSSID it names (Station.bssid), its frames addressed accordingly; beacon and
    group_frame take the other AP's address."""

    def __init__(self, cap, ssid, ap_mac, router_mac, router_ip, trackers, elements, tsf0,
                 tcp, tsf_ticks=True, refuser="phone", refusal_s=2.0):
        self.cap, self.ssid, self.ap_mac, self.elements = cap, ssid, ap_mac, elements
        self.router_mac, self.router_ip, self.trackers = router_mac, router_ip, trackers
        self.tsf0, self.tsf_ticks = tsf0, tsf_ticks
        self.refuser, self.refusal_s = refuser, refusal_s
        self.ports, self.isns = itertools.count(tcp[0], tcp[1]), tcp[2:]
        self.ssid_ie, self.rates_ie = element(0, ssid.encode()), element(1, bytes(LAB_RATES))
        self.requests, self.negatives, self.dns_log = [], [], []

    def beacon(self, ap_mac=None, tsf0=None, elements=None):
        """A beacon of the AP (or of another AP of the lab: its BSSID, TSF origin and
        elements), behind radiotap."""
        ap_mac = ap_mac or self.ap_mac
        tsf = (self.tsf0 if tsf0 is None else tsf0) + (
            int(round(self.cap.t * 1_000_000)) if self.tsf_ticks else 0)
        body = beacon_body(tsf, 0x0411, self.ssid, LAB_RATES, 6,
                           self.elements if elements is None else elements)
        return radiotap(self.cap.mac_header(0x80, 0, BROADCAST, ap_mac, ap_mac) + body)

    def bss(self, st):
        """The BSSID of the AP the station is with: its own (Station.bssid) or the lab's."""
        return st.bssid or self.ap_mac

    def addresses(self, st, up, a3):
        """Frame control flags and A1 A2 A3 of a data frame between the station and the AP
        (9.3.2.1): To DS (`up`: A1 BSSID, A2 station, A3 destination) or From DS (A1
        station, A2 BSSID, A3 source)."""
        ap = self.bss(st)
        return (0x01, ap, st.mac, a3) if up else (0x02, st.mac, ap, a3)

    def mgmt(self, subtype, st, up, body, dt=0.0003):
        """A management frame between the station and the AP (`up`: the station's),
        acknowledged; its frame number."""
        ap = self.bss(st)
        a = (ap, st.mac) if up else (st.mac, ap)
        return self.cap.emit_acked(
            radiotap(self.cap.mac_header(subtype, 0, a[0], a[1], ap) + body), a[1], dt)

    def auth(self, st, up, algorithm, seq, fields=b"", dt=0.0003):
        """An authentication frame (9.3.3.12): algorithm, transaction sequence, status 0,
        then `fields`."""
        return self.mgmt(0xB0, st, up, struct.pack("<HHH", algorithm, seq, 0) + fields, dt)

    def associate(self, st, element_ie, response_ies=b"", current_ap=None):
        """The association request with the station's element (RSN or WPA; or elements:
        RSN, Mobility Domain, FT) and the response giving it its AID, then
        `response_ies`; with `current_ap` (the MAC of the AP the station leaves), a
        reassociation request (9.3.3.8: the current AP address after the listen interval)
        and response (9.3.3.9). Their frame numbers."""
        head = struct.pack("<HH", 0x0431, 10)
        if current_ap:
            head += mac(current_ap)
        request = self.mgmt(0x20 if current_ap else 0x00, st, True,
                            head + self.ssid_ie + self.rates_ie + element_ie)
        response = self.mgmt(0x30 if current_ap else 0x10, st, False,
                             struct.pack("<HHH", 0x0411, 0, 0xC000 | st.aid) + self.rates_ie
                             + response_ies, 0.002)
        return [request, response]

    def join(self, st, element_ie, response_ies=b""):
        """Open system authentication (algorithm 0, transactions 1 and 2), then the
        association; the frame numbers of the association request and response."""
        self.auth(st, True, 0, 1)
        self.auth(st, False, 0, 2)
        return self.associate(st, element_ie, response_ies)

    def next_tcp(self):
        """The port and initial numbers of the next TCP connection (TcpConn's port,
        isn_up, isn_down, ident_down)."""
        return (next(self.ports),) + self.isns

    def record_request(self, st, frame, at, host, method, path, identifiers, **fields):
        """Records an HTTP request of the station: its frame, time (ISO 8601), host, method,
        path (without the query), the types of the identifiers it carries, the device,
        `fields` (what a script adds), and the consent state: "after-refusal" for the
        refuser's requests at or after the refusal, else "not-asked"."""
        refused = st.name == self.refuser and at >= self.refusal_s
        self.requests.append(dict(
            {"frame": frame, "at": self.cap.iso(at), "host": host, "method": method,
             "path": path.split("?")[0], "identifiers": identifiers, "device": st.name},
            **fields, consent="after-refusal" if refused else "not-asked"))

    def negative(self, frame, kind, what):
        """Records a frame that must give no packet: kind (None: none expected), why."""
        self.negatives.append({"frame": frame, "kind": kind, "what": what})

    def write_case(self, path, capture, script, case_id, title, devices):
        """The case file (write_case) of the stations of `devices`, (station, the comment
        above it) pairs, each known by its MAC address; the refuser refusing at
        refusal_s."""
        write_case(path, capture, script, case_id, title,
                   [{"id": st.name, "mac": st.mac, "ids": st.ids, "comment": comment}
                    for st, comment in devices],
                   [(self.refuser, self.cap.iso(self.refusal_s))])
