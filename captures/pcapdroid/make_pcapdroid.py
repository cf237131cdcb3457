#!/usr/bin/env python3
"""Writes the "pcapdroid" sample capture of consentry's pcap tap: a test phone's traffic
as PCAPdroid (the no-root Android capture app, running as a VPN) saves it with its dump
extensions on, which name the Android app (UID) behind every packet.

Outputs, next to this script:
  pcapdroid.pcap    classic pcap as PCAPdroid writes it with the extensions: link type
                    1 (Ethernet), microsecond timestamps; each record a made-up Ethernet
                    header (both MACs zero) + the raw IP packet + 0-3 zero bytes (so the
                    trailer starts 4-aligned) + PCAPdroid's 32-byte trailer (magic, UID,
                    the app's label cut to 19 bytes, CRC-32 of all before it).
  pcapdroid.pcapng  the same packets in the same order at the same times (same frame
                    numbers: the custom blocks are not packets), as PCAPdroid writes a
                    pcapng: link type 101 (raw IP), a UID mapping custom block (PEN 62652)
                    before each UID's first packet, every packet commented `u-<uid>`.
  consentry.toml    the case: the app "Example Shop" on one phone, one refusal.
  expected.json     what a correct analyser must find, computed while writing.

The formats follow PCAPdroid's app/src/main/jni/core/pcap_dump.c (dump_packet_pcap,
dump_packet_pcapng, dump_pcapng_uid_mapping, get_pcapng_preamble) and its Wireshark
dissector tools/pcapdroid.lua; the layouts are re-written here from those descriptions,
not copied. The snapshot length and UID -1's names are the VPN mode's (see SNAPLEN and
UNKNOWN below).

Story (from 2026-12-01T10:00:00Z; the phone is PCAPdroid's VPN address 10.215.173.1 and
fd00:2:fd00:1:fd00:1:fd00:1, its DNS server the VPN's virtual 10.215.173.2): four apps
talk to trackers. Example Shop (the app under test) resolves AppLovin and sends it the
advertising id in a query; Google Play services posts the same advertising id to
Firebase over IPv6; Weather Now posts the Android id to Amplitude; a packet PCAPdroid
could not attribute (UID -1) carries the IMEI to Tencent's GDT; Example Shop opens TLS
to AppsFlyer (ClientHello with SNI only: metadata). The user refuses all purposes at
+3 s; then Example Shop posts the Android id to Umeng and Weather Now the IMEI to Pangle.
Each DNS lookup carries the UID of the app that asked (PCAPdroid sees the app's own
socket). Every HTTP request has its own TCP connection (handshake, request, response,
FIN close). Last, a duplicate of the first connection's final ACK whose trailer FCS is
deliberately wrong in the pcap file (its pcapng twin is normal).

Only the case's app and the unattributed UID -1 are judged; the other apps' exchanges
would be findings with --all-apps. Every IPv4 header, TCP and UDP checksum is valid.
Deterministic (fixed seed and times), standard library only, all values synthetic; the
script reads both files back and checks their layout, every checksum and every FCS.

Checked with tshark 4.0: `tshark -r pcapdroid.pcap -Y http.request -T fields
-e frame.number -e http.host -e http.request.uri` lists the six requests at the frames
of expected.json (6, 19, 30, 41, 62, 73), the ClientHello (SNI t.appsflyer.com) is frame
52. Wireshark counts each pcapng custom block as a record of its own, so in
pcapdroid.pcapng the same packets are its frames 7, 21, 33, 45, 66, 77 and 56
(`tshark_pcapng_frame` in expected.json; capinfos counts 79 packets in both). Every IP,
TCP and UDP checksum good, no expert errors or warnings; the only notes: the duplicate
ACK, FIN sequence notes, and in the pcap, for each frame shorter than Ethernet's minimum
(31), "Didn't find padding of zeros, and an undecoded trailer exists" (the trailer sits
where Ethernet padding would). PCAPdroid's own dissector (tools/pcapdroid.lua, loaded
with -X lua_script:) reads each trailer's UID and label ("Google Play service" for UID
10045, nothing for -1; it does not check the FCS), and in the pcapng each mapping block
and, through its comment, each packet's UID, package and label, except UID -1's: the
dissector reads a block's UID unsigned (4294967295), so the `u--1` packets find no
mapping.
Run: python3 captures/pcapdroid/make_pcapdroid.py
"""
import json
import os
import random
import struct
import sys
import zlib
from datetime import datetime, timedelta, timezone
from ipaddress import IPv6Address, ip_address

HERE = os.path.dirname(os.path.abspath(__file__))
# captures/pcapkit.py: the packet-building helpers the capture generators share.
sys.path.insert(0, os.path.dirname(HERE))
from pcapkit import (ACK, FIN, PSH, SYN, csum, dns_message, ipv4_header,  # noqa: E402
                     ipv6_header, luhn_ok, pseudo, qname, tcp_segment, udp_datagram)

T0 = datetime(2026, 12, 1, 10, 0, 0, tzinfo=timezone.utc)
T0_US = int(T0.timestamp()) * 1_000_000
REFUSAL_US = 3_000_000
rng = random.Random(20261201)

# --- PCAPdroid's constants (pcap_dump.h) -------------------------------------------------
TRAILER_MAGIC = 0x01072021
PEN = 62652                   # PCAPdroid's IANA Private Enterprise Number
BLOCK_VERSION, BLOCK_UID_MAP = 1, 1
CUSTOM_BLOCK = 0x00000BAD     # pcapng Custom Block, copyable
LABEL_FIELD = 20              # the trailer's appname: 19 bytes of text and a NUL
LINKTYPE_ETHERNET, LINKTYPE_RAW = 1, 101
# PCAPdroid in VPN mode caps its snaplen at VPN_BUFFER_SIZE (pcapdroid.c) and writes
# that; no packet here comes near it.
SNAPLEN = 32768
# What PCAPdroid's pcapng section header says of the phone (shb_hardware, shb_os,
# shb_userappl: Utils.getDeviceModel, getOsVersion, getAppVersionString).
SHB_HARDWARE = "Google Pixel 7"
SHB_OS = "Android 14 (SDK 34)"
SHB_USERAPPL = "PCAPdroid v1.9.1"

# --- the phone and its apps -----------------------------------------------------------------
PHONE4 = "10.215.173.1"                   # CaptureService.VPN_IP_ADDRESS
PHONE6 = "fd00:2:fd00:1:fd00:1:fd00:1"    # CaptureService.VPN_IP6_ADDRESS
DNS_SERVER = "10.215.173.2"               # CaptureService.VPN_VIRTUAL_DNS_SERVER


class App:
    """An Android app as PCAPdroid names it: UID, package name, label."""

    def __init__(self, uid, package, label, judged):
        self.uid, self.package, self.label, self.judged = uid, package, label, judged

    def trailer_label(self):
        """The label as the pcap trailer holds it: cut to 19 bytes (a NUL ends it)."""
        return self.label.encode()[:LABEL_FIELD - 1]


SHOP = App(10123, "com.example.shop", "Example Shop", True)
# A label of 20 bytes: the pcap trailer carries only its first 19.
GMS = App(10045, "com.google.android.gms", "Google Play services", False)
WEATHER = App(10210, "com.example.weather", "Weather Now", False)
# UID -1 is PCAPdroid's "unknown" (the connection's owner was not found): its
# AppsResolver names it as a virtual app, label "Unknown", package "unknown", and
# writes those. Judged as the app's own traffic, since it may be.
UNKNOWN = App(-1, "unknown", "Unknown", True)
APPS = [SHOP, GMS, WEATHER, UNKNOWN]
assert len(GMS.label.encode()) == 20 and GMS.trailer_label() == b"Google Play service"


def luhn_complete(prefix14):
    for c in "0123456789":
        if luhn_ok(prefix14 + c):
            return prefix14 + c
    raise AssertionError(prefix14)


IDS = {"advertising_id": "7d3f1b29-c6e4-4a58-9b0d-2e8f4a6c1d93",
       "android_id": "b8e2d4f6a1c35079",
       "imei": luhn_complete("35846211234567")}
assert luhn_ok(IDS["imei"])

# Trackers (hosts consentry's tracker signatures know) and their documentation-range
# addresses; Firebase also has an IPv6 address for Google Play services' IPv6 flow.
HOSTS = {"rt.applovin.com": "203.0.113.31", "app-measurement.com": "203.0.113.71",
         "api2.amplitude.com": "203.0.113.61", "sdk.e.qq.com": "203.0.113.51",
         "t.appsflyer.com": "203.0.113.41", "ulogs.umeng.com": "203.0.113.21",
         "api16-access-sg.pangle.io": "203.0.113.81"}
HOSTS6 = {"app-measurement.com": "2001:db8:71::71"}
# The operator's own domains (none of the exchanges goes there: all are third-party).
FIRST_PARTY = ["example-shop.com"]


# --- packets ------------------------------------------------------------------------------
class Pkt:
    """One packet PCAPdroid saw: its time (µs from T0), the app it charged it to, the raw
    IP packet; `frame` once numbered."""

    def __init__(self, t, app, ip):
        self.t, self.app, self.ip = t, app, ip
        self.frame = None
        self.bad_fcs = False


packets = []


def emit(t, app, ip):
    p = Pkt(t, app, ip)
    packets.append(p)
    return p


def iso(t_us):
    return (T0 + timedelta(microseconds=t_us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class Conn:
    """One TCP connection of `app` from the phone to `server`:`port`. The server's side
    is what PCAPdroid's VPN hands back to the app; both directions are charged to the
    app. Times in µs from T0."""

    def __init__(self, app, host, port, t, v6=False):
        self.app, self.host, self.port, self.t, self.v6 = app, host, port, t, v6
        self.client = PHONE6 if v6 else PHONE4
        self.server = HOSTS6[host] if v6 else HOSTS[host]
        self.cport = rng.randrange(32768, 61000)   # Linux's ephemeral port range
        self.seq = {True: rng.getrandbits(32), False: rng.getrandbits(32)}
        self.ident = {True: rng.randrange(1, 65536), False: rng.randrange(1, 65536)}
        self.last = None

    def seg(self, up, flags, payload=b"", opts=b"", dt=200):
        """One segment (`up`: from the phone), acknowledging all the peer sent."""
        src, dst = (self.client, self.server) if up else (self.server, self.client)
        sp, dp = (self.cport, self.port) if up else (self.port, self.cport)
        ack = self.seq[not up] if flags & ACK else 0
        tcp = tcp_segment(src, dst, sp, dp, self.seq[up], ack, flags, payload, opts=opts)
        self.seq[up] += len(payload) + (1 if flags & (SYN | FIN) else 0)
        if self.v6:
            ip = ipv6_header(src, dst, 6, len(tcp)) + tcp
        else:
            self.ident[up] = (self.ident[up] + 1) & 0xFFFF
            ip = ipv4_header(src, dst, 6, len(tcp), self.ident[up]) + tcp
        p = emit(self.t, self.app, ip)
        self.t += dt
        self.last = (up, flags, payload, opts, p)
        return p

    def open(self):
        # MSS (smaller over IPv6) and SACK permitted, both ways.
        mss = 1440 if self.v6 else 1460
        opts = struct.pack("!BBH", 2, 4, mss) + b"\x04\x02\x01\x01"
        self.seg(True, SYN, opts=opts, dt=31_000)
        self.seg(False, SYN | ACK, opts=opts, dt=250)
        self.seg(True, ACK, dt=600)

    def close(self):
        self.t += 4_000
        self.seg(True, FIN | ACK, dt=29_000)
        self.seg(False, FIN | ACK, dt=180)
        return self.seg(True, ACK, dt=1_000)

    def exchange(self, request, response):
        """Handshake, the request in one segment, the response (acknowledging it), the
        phone's ACK, FIN close. Returns the request's packet."""
        self.open()
        req = self.seg(True, PSH | ACK, request, dt=42_000)
        self.seg(False, PSH | ACK, response, dt=300)
        self.seg(True, ACK)
        self.close()
        return req


# --- DNS (query and A answer: captures/pcapkit.py) --------------------------------------------
def dns_aaaa(txid, name, answer=None):
    """A query for name's AAAA record, or its answer of one AAAA record (RFC 3596)."""
    if answer is None:
        return struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + qname(name) + \
            struct.pack("!HH", 28, 1)
    return struct.pack("!HHHHHH", txid, 0x8180, 1, 1, 0, 0) + qname(name) + \
        struct.pack("!HH", 28, 1) + struct.pack("!HHHIH16s", 0xC00C, 28, 1, 300, 16,
                                                IPv6Address(answer).packed)


dns_log = []


def udp(t, app, up, sport, payload):
    src, dst = (PHONE4, DNS_SERVER) if up else (DNS_SERVER, PHONE4)
    sp, dp = (sport, 53) if up else (53, sport)
    dgram = udp_datagram(src, dst, sp, dp, payload)
    return emit(t, app, ipv4_header(src, dst, 17, len(dgram), rng.randrange(1, 65536)) + dgram)


def lookup(t, app, host, aaaa=False):
    """The app's A (and AAAA) lookup of host through the VPN's DNS server; returns the
    time after the last answer."""
    kinds = [("A", dns_message, HOSTS[host])]
    if aaaa:
        kinds.append(("AAAA", dns_aaaa, HOSTS6[host]))
    for qtype, build, answer in kinds:
        txid, sport = rng.getrandbits(16), rng.randrange(32768, 61000)
        q = udp(t, app, True, sport, build(txid, host))
        a = udp(t + 11_500, app, False, sport, build(txid, host, answer))
        dns_log.append({"query": q, "answer": a, "uid": app.uid, "name": host,
                        "type": qtype, "address": answer})
        t += 12_000
    return t + 2_500


# --- HTTP and TLS ------------------------------------------------------------------------------
def http_request(method, host, path, ua, headers=(), body=b""):
    h = "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n" % (method, path, host, ua)
    for k, v in headers:
        h += "%s: %s\r\n" % (k, v)
    if body:
        h += "Content-Length: %d\r\n" % len(body)
    return (h + "Connection: close\r\n\r\n").encode() + body


def http_response(body=b'{"code":0,"msg":"ok"}'):
    return ("HTTP/1.1 200 OK\r\nServer: nginx\r\nDate: Tue, 01 Dec 2026 10:00:00 GMT\r\n"
            "Content-Type: application/json\r\nContent-Length: %d\r\nConnection: close\r\n"
            "\r\n" % len(body)).encode() + body


def jbody(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


def client_hello(sni):
    """A TLS 1.3 ClientHello (RFC 8446 4.1.2) in a TLS record, written by hand: SNI,
    groups, signature algorithms, ALPN http/1.1, supported versions, PSK modes and an
    X25519 key share, its random parts from the seed."""
    def ext(etype, data):
        return struct.pack("!HH", etype, len(data)) + data

    def vec16(data):
        return struct.pack("!H", len(data)) + data

    name = sni.encode()
    exts = ext(0, vec16(b"\0" + vec16(name)))                          # server_name
    exts += ext(10, vec16(struct.pack("!HH", 0x001D, 0x0017)))         # supported_groups
    exts += ext(13, vec16(struct.pack("!8H", 0x0403, 0x0804, 0x0401, 0x0503, 0x0805,
                                      0x0501, 0x0806, 0x0601)))        # signature_algorithms
    exts += ext(16, vec16(b"\x08http/1.1"))                            # ALPN
    exts += ext(43, b"\x04" + struct.pack("!HH", 0x0304, 0x0303))      # supported_versions
    exts += ext(45, b"\x01\x01")                                       # psk_key_exchange_modes
    exts += ext(51, vec16(struct.pack("!HH", 0x001D, 32) + rng.randbytes(32)))  # key_share
    suites = struct.pack("!9H", 0x1301, 0x1302, 0x1303, 0xC02B, 0xC02F, 0xC02C, 0xC030,
                         0xCCA9, 0xCCA8)
    body = struct.pack("!H", 0x0303) + rng.randbytes(32) + b"\x20" + rng.randbytes(32)
    body += vec16(suites) + b"\x01\x00" + vec16(exts)
    hs = b"\x01" + struct.pack("!I", len(body))[1:] + body
    return struct.pack("!BHH", 22, 0x0301, len(hs)) + hs


UA = {SHOP.uid: "ExampleShop/5.0.0 (Linux; Android 14; Pixel 7)",
      GMS.uid: "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 7 Build/UQ1A.240105.004)",
      WEATHER.uid: "okhttp/4.12.0",
      UNKNOWN.uid: "Dalvik/2.1.0 (Linux; U; Android 14; Pixel 7 Build/UQ1A.240105.004)"}
JSON_H = [("Content-Type", "application/json; charset=utf-8"), ("Accept", "*/*")]
FORM_H = [("Content-Type", "application/x-www-form-urlencoded")]


# --- expectations --------------------------------------------------------------------------
rows = []


def expect(pkt, conn, method, path, data, note):
    """Records one exchange (an HTTP request, or a TLS ClientHello when method is None)."""
    rows.append({"pkt": pkt, "conn": conn, "method": method, "path": path, "data": data,
                 "note": note})


def d(kind, where):
    return {"type": kind, "encoding": "plain", "where": where}


def http(app, host, t, method, path, query, data, note, headers=(), body=b"", v6=False):
    """One HTTP exchange of app on its own connection; returns the connection."""
    c = Conn(app, host, 80, t, v6=v6)
    req = c.exchange(http_request(method, host, path + query, UA[app.uid], headers, body),
                     http_response())
    expect(req, c, method, path, data, note)
    return c


# =================================================================================================
# The story.
# =================================================================================================

# +0.1 s  Example Shop: AppLovin, the advertising id in the query, before any consent.
t = lookup(100_000, SHOP, "rt.applovin.com")
first = http(SHOP, "rt.applovin.com", t, "GET", "/v1/ad",
             "?format=banner&ifa=%s&os=android" % IDS["advertising_id"],
             [d("advertising_id", "query:ifa")],
             "the app under test, before any consent decision")

# +0.6 s  Google Play services: the same advertising id to Firebase, over IPv6.
t = lookup(600_000, GMS, "app-measurement.com", aaaa=True)
http(GMS, "app-measurement.com", t, "POST", "/a", "",
     [d("advertising_id", "body:$.adid")],
     "another app (label of 20 bytes, cut to 19 in the trailer), IPv6: not judged",
     JSON_H, jbody({"app_instance_id": "4f1e2d3c5b6a79880f1e2d3c4b5a6978",
                    "adid": IDS["advertising_id"], "limit_ad_tracking": False,
                    "events": [{"name": "_e", "params": {"_et": 1}}]}), v6=True)

# +1.1 s  Weather Now: its Android id to Amplitude.
t = lookup(1_100_000, WEATHER, "api2.amplitude.com")
http(WEATHER, "api2.amplitude.com", t, "POST", "/2/httpapi", "",
     [d("android_id", "body:$.events[0].device_id")], "another app: not judged",
     JSON_H, jbody({"api_key": "fedcba98765432100123456789abcdef",
                    "events": [{"event_type": "app_open",
                                "device_id": IDS["android_id"]}]}))

# +1.6 s  UID -1 (PCAPdroid found no owner): the IMEI to Tencent's GDT.
t = lookup(1_600_000, UNKNOWN, "sdk.e.qq.com")
http(UNKNOWN, "sdk.e.qq.com", t, "GET", "/v2/ping",
     "?appid=1101152570&imei=%s" % IDS["imei"], [d("imei", "query:imei")],
     "unattributed packets (UID -1): judged as the app's own")

# +2.1 s  Example Shop: TLS to AppsFlyer, the ClientHello answered by an ACK only.
t = lookup(2_100_000, SHOP, "t.appsflyer.com")
c = Conn(SHOP, "t.appsflyer.com", 443, t)
c.open()
hello = c.seg(True, PSH | ACK, client_hello("t.appsflyer.com"), dt=38_000)
c.seg(False, ACK, dt=200_000)
c.close()
expect(hello, c, None, None, [], "TLS ClientHello to a tracker: metadata only")

# ---- +3 s: the user refuses all purposes (consentry.toml) ----

# +3.5 s  Example Shop: the Android id to Umeng after the refusal.
t = lookup(3_500_000, SHOP, "ulogs.umeng.com")
http(SHOP, "ulogs.umeng.com", t, "POST", "/unify_logs", "",
     [d("android_id", "body:$.header.android_id")], "the app under test, after the refusal",
     JSON_H, jbody({"header": {"appkey": "6a7b8c9d0e1f2a3b4c5d6e7f",
                               "android_id": IDS["android_id"], "os": "Android"},
                    "content": {"analytics": {"sessions": [{"id": "S1"}]}}}))

# +4.0 s  Weather Now: the IMEI to Pangle after the refusal (another app: not judged).
t = lookup(4_000_000, WEATHER, "api16-access-sg.pangle.io")
http(WEATHER, "api16-access-sg.pangle.io", t, "POST", "/api/ad/union/sdk/get_ads/", "",
     [d("imei", "form:imei")], "another app after the refusal: not judged", FORM_H,
     ("app_id=5012345&imei=%s&os=android&ad_slot=banner" % IDS["imei"]).encode())

# +4.5 s  The phone repeats the first connection's last ACK; in the pcap file its trailer
# FCS is wrong (a damaged record: its attribution is not to be trusted).
up, flags, payload, opts, last = first.last
assert up and flags == ACK and not payload
first.t = 4_500_000
dup = first.seg(True, ACK)  # the same sequence and acknowledgement numbers
assert dup.ip[20:] == last.ip[20:]
dup.bad_fcs = True


# =================================================================================================
# Writing.
# =================================================================================================
packets.sort(key=lambda p: p.t)  # stable: packets of one instant keep their order
for i, p in enumerate(packets, 1):
    p.frame = i
assert len({p.t for p in packets}) == len(packets), "two packets at one instant"


def ethertype(ip):
    # PCAPdroid picks it from the IP version nibble.
    return 0x0800 if ip[0] >> 4 == 4 else 0x86DD


def pcap_record_data(p):
    """Ethernet header (MACs zero), IP packet, padding, trailer; FCS little-endian."""
    data = bytes(12) + struct.pack("!H", ethertype(p.ip)) + p.ip
    data += bytes(-len(data) % 4)
    data += struct.pack("!Ii", TRAILER_MAGIC, p.app.uid)
    data += p.app.trailer_label().ljust(LABEL_FIELD, b"\0")
    fcs = zlib.crc32(data)
    if p.bad_fcs:
        fcs ^= 0xFFFFFFFF
    return data + struct.pack("<I", fcs)


def write_pcap(path):
    # magic a1b2c3d4 in the phone's (little-endian) order: microsecond timestamps.
    out = [struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, SNAPLEN, LINKTYPE_ETHERNET)]
    for p in packets:
        data = pcap_record_data(p)
        ts = T0_US + p.t
        out.append(struct.pack("<IIII", ts // 1_000_000, ts % 1_000_000, len(data),
                               len(data)) + data)
    with open(path, "wb") as f:
        f.write(b"".join(out))


def opt(code, value):
    return struct.pack("<HH", code, len(value)) + value + bytes(-len(value) % 4)


def block(btype, body):
    assert len(body) % 4 == 0
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def uid_mapping_block(app):
    pkg, label = app.package.encode(), app.label.encode()
    body = struct.pack("<IHBBiBB", PEN, BLOCK_VERSION, BLOCK_UID_MAP, 0, app.uid, len(pkg),
                       len(label)) + pkg + label
    return block(CUSTOM_BLOCK, body + bytes(-len(body) % 4))


mappings = []  # (uid, frame of its first packet)


def write_pcapng(path):
    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
                 + opt(2, SHB_HARDWARE.encode()) + opt(3, SHB_OS.encode())
                 + opt(4, SHB_USERAPPL.encode()) + opt(0, b"")),
           # One interface, raw IP, no options (microseconds, the default resolution).
           block(1, struct.pack("<HHI", LINKTYPE_RAW, 0, SNAPLEN))]
    mapped = set()
    for p in packets:
        if p.app.uid not in mapped:
            mapped.add(p.app.uid)
            mappings.append((p.app.uid, p.frame))
            out.append(uid_mapping_block(p.app))
        ts = T0_US + p.t
        body = struct.pack("<IIIII", 0, ts >> 32, ts & 0xFFFFFFFF, len(p.ip), len(p.ip))
        body += p.ip + bytes(-len(p.ip) % 4)
        # VPN mode: no flags option (PCAPdroid writes the direction in root mode only).
        body += opt(1, b"u-%d" % p.app.uid) + opt(0, b"")
        out.append(block(6, body))
    with open(path, "wb") as f:
        f.write(b"".join(out))


# --- reading both files back ------------------------------------------------------------------
def check_ip(ip):
    """Every IPv4 header, TCP and UDP checksum of a packet verifies (sums to zero)."""
    if ip[0] >> 4 == 4:
        assert csum(ip[:20]) == 0
        proto, src, dst, l4 = ip[9], ip[12:16], ip[16:20], ip[20:]
        assert struct.unpack("!H", ip[2:4])[0] == len(ip)
    else:
        proto, src, dst, l4 = ip[6], ip[8:24], ip[24:40], ip[40:]
        assert struct.unpack("!H", ip[4:6])[0] == len(l4)
    ph = pseudo(str(ip_address(src)), str(ip_address(dst)), proto, len(l4))
    assert csum(ph + l4) == 0


def check_pcap(path):
    raw = open(path, "rb").read()
    magic, _, _, _, _, snaplen, link = struct.unpack_from("<IHHiIII", raw)
    assert (magic, snaplen, link) == (0xA1B2C3D4, SNAPLEN, LINKTYPE_ETHERNET)
    off, frames = 24, []
    while off < len(raw):
        sec, usec, incl, orig = struct.unpack_from("<IIII", raw, off)
        data = raw[off + 16:off + 16 + incl]
        off += 16 + incl
        assert incl == orig == len(data) and incl % 4 == 0
        assert data[:12] == bytes(12)
        magic, uid = struct.unpack_from("!Ii", data, len(data) - 32)
        label = data[-24:-4]
        fcs_ok = zlib.crc32(data[:-4]) == struct.unpack("<I", data[-4:])[0]
        frames.append((sec * 1_000_000 + usec, data, magic, uid, label, fcs_ok))
    assert len(frames) == len(packets)
    for p, (ts, data, magic, uid, label, fcs_ok) in zip(packets, frames):
        ip_len = len(p.ip)
        assert ts == T0_US + p.t and data[14:14 + ip_len] == p.ip
        assert struct.unpack("!H", data[12:14])[0] == ethertype(p.ip)
        pad = -(14 + ip_len) % 4
        assert len(data) == 14 + ip_len + pad + 32 and data[14 + ip_len:-32] == bytes(pad)
        assert magic == TRAILER_MAGIC and uid == p.app.uid
        assert label[19] == 0 and label.rstrip(b"\0") == p.app.trailer_label()
        assert fcs_ok != p.bad_fcs
        check_ip(p.ip)


def check_pcapng(path):
    raw = open(path, "rb").read()
    off, epbs, customs = 0, [], []
    while off < len(raw):
        btype, n = struct.unpack_from("<II", raw, off)
        assert n % 4 == 0 and struct.unpack_from("<I", raw, off + n - 4)[0] == n
        body = raw[off + 8:off + n - 4]
        if btype == 1:
            assert struct.unpack_from("<HHI", body) == (LINKTYPE_RAW, 0, SNAPLEN)
        elif btype == CUSTOM_BLOCK:
            pen, ver, typ, _, uid, lp, ll = struct.unpack_from("<IHBBiBB", body)
            assert (pen, ver, typ) == (PEN, BLOCK_VERSION, BLOCK_UID_MAP)
            customs.append((len(epbs) + 1, uid, body[14:14 + lp].decode(),
                            body[14 + lp:14 + lp + ll].decode()))
        elif btype == 6:
            iface, hi, lo, cap, orig = struct.unpack_from("<IIIII", body)
            assert iface == 0 and cap == orig
            data = body[20:20 + cap]
            o = 20 + cap + (-cap % 4)
            code, ln = struct.unpack_from("<HH", body, o)
            assert code == 1
            comment = body[o + 4:o + 4 + ln]
            o += 4 + ln + (-ln % 4)
            assert body[o:] == bytes(4)  # opt_endofopt, nothing after
            epbs.append(((hi << 32) | lo, data, comment))
        off += n
    assert len(epbs) == len(packets)
    for p, (ts, data, comment) in zip(packets, epbs):
        assert ts == T0_US + p.t and data == p.ip and comment == b"u-%d" % p.app.uid
    apps = {a.uid: a for a in APPS}
    assert [(u, f) for f, u, _, _ in customs] == mappings
    assert all((pkg, label) == (apps[u].package, apps[u].label) for _, u, pkg, label in customs)


# --- expected.json and the case ---------------------------------------------------------------
def consent_at(t_us):
    return "after-refusal" if t_us >= REFUSAL_US else "not-asked"


def rules_for(row):
    """DESIGN.md §6 for these exchanges: all to third-party trackers, none sensitive."""
    if not row["data"]:
        return ["tracker-contact-before-consent"]
    return ["share-after-refusal" if row["pkt"].t >= REFUSAL_US else "share-before-consent"]


def tshark_pcapng_frame(frame):
    """Wireshark (4.0) shows each pcapng custom block as a record of its own, so in the
    pcapng file its frame numbers run ahead of the packets' by the mapping blocks before."""
    return frame + sum(1 for _, before in mappings if before <= frame)


def exchanges_out():
    out = []
    for r in sorted(rows, key=lambda r: r["pkt"].frame):
        c, p, app = r["conn"], r["pkt"], r["conn"].app
        fmt = "[%s]:%d" if c.v6 else "%s:%d"
        rules = rules_for(r)
        out.append({
            "frame": p.frame,
            "tshark_pcapng_frame": tshark_pcapng_frame(p.frame),
            "at": iso(p.t),
            "uid": app.uid,
            "package": app.package,
            "label": app.label,
            "trailer_label": app.trailer_label().decode(),
            "client": fmt % (c.client, c.cport),
            "server": fmt % (c.server, c.port),
            "host": c.host,
            "tls": r["method"] is None,
            "method": r["method"],
            "path": r["path"],
            "identifiers": [x["type"] for x in r["data"]],
            "data": r["data"],
            "judged": app.judged,
            "consent": consent_at(p.t),
            "rules": rules if app.judged else [],
            "rules_all_apps": rules,
            "note": r["note"],
        })
    return out


def write_expected(path, out):
    apps = {}
    for a in APPS:
        mine = [x for x in out if x["uid"] == a.uid]
        apps[str(a.uid)] = {
            "package": a.package, "label": a.label,
            "trailer_label": a.trailer_label().decode(), "judged": a.judged,
            "frames": [p.frame for p in packets if p.app is a],
            "mapping_block_before_frame": dict(mappings)[a.uid],
            "exchanges": len(mine),
            "http_requests": sum(1 for x in mine if not x["tls"]),
            "tls_connections": sum(1 for x in mine if x["tls"]),
            "dns_lookups": sum(1 for x in dns_log if x["uid"] == a.uid),
        }
    doc = {
        "capture": ["pcapdroid.pcap", "pcapdroid.pcapng"],
        "generator": "captures/pcapdroid/make_pcapdroid.py",
        "frames": len(packets),
        "pcapng_custom_blocks": len(mappings),
        "frame_note": "frame: the packet's number in either file (custom blocks are no "
                      "packets); tshark_pcapng_frame: Wireshark's number in the pcapng, "
                      "which counts each UID mapping block as a record",
        "device": {"id": "phone", "addresses": [PHONE4, PHONE6], "dns_server": DNS_SERVER},
        "refusal": {"device": "phone", "at": iso(REFUSAL_US), "purposes": "all"},
        "apps": apps,
        "bad_fcs_frames": [p.frame for p in packets if p.bad_fcs],
        "bad_fcs_note": "pcap only: the trailer's FCS is flipped (the frame is a duplicate "
                        "ACK of the first connection, uid %d); the pcapng twin is normal, "
                        "commented u-%d" % (SHOP.uid, SHOP.uid),
        "dns": [{"frames": [x["query"].frame, x["answer"].frame], "uid": x["uid"],
                 "name": x["name"], "type": x["type"], "address": x["address"]}
                for x in dns_log],
        "exchanges": out,
    }
    with open(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def write_case(path):
    text = ("# Case file of the pcapdroid sample capture (make_pcapdroid.py writes it).\n"
            "# All identifier values are synthetic.\n\n"
            '[case]\nid = "pcapdroid-2026-12-01"\n'
            'title = "Example Shop 5.0 on a test phone, captured with PCAPdroid"\n'
            'timezone = "Asia/Shanghai"\n\n'
            '[app]\nname = "%s"\npackage = "%s"\nfirst_party = [%s]\n\n'
            % (SHOP.label, SHOP.package, ", ".join('"%s"' % s for s in FIRST_PARTY)))
    text += ("# PCAPdroid's VPN addresses: every packet of the capture is the phone's.\n"
             '[[device]]\nid = "phone"\naddresses = ["%s", "%s"]\n[device.identifiers]\n'
             % (PHONE4, PHONE6))
    text += "".join('%s = "%s"\n' % kv for kv in IDS.items()) + "\n"
    text += ('[[consent]]\ndevice = "phone"\nat = "%s"\ndecision = "refused"\n'
             'note = "tapped Disagree on the privacy dialog (all purposes)"\n'
             % iso(REFUSAL_US))
    with open(path, "w") as f:
        f.write(text)


write_pcap(os.path.join(HERE, "pcapdroid.pcap"))
write_pcapng(os.path.join(HERE, "pcapdroid.pcapng"))
check_pcap(os.path.join(HERE, "pcapdroid.pcap"))
check_pcapng(os.path.join(HERE, "pcapdroid.pcapng"))
write_case(os.path.join(HERE, "consentry.toml"))
out = exchanges_out()
write_expected(os.path.join(HERE, "expected.json"), out)
print("wrote pcapdroid.pcap, pcapdroid.pcapng (%d frames, %d UID mapping blocks), "
      "consentry.toml, expected.json (%d exchanges)" % (len(packets), len(mappings), len(out)))
for x in out:
    print(("  frame %3d  %-6d %-26s %s %s" % (x["frame"], x["uid"], x["host"],
                                              x["method"] or "TLS", x["path"] or "")).rstrip())
