#!/usr/bin/env python3
"""Writes the "gateway span port" sample capture of consentry's pcap tap (issue 3).

Outputs, next to this script:
  gateway.pcapng   two interfaces: 0 = Ethernet span port (802.1Q VLAN 10, one flow
                   QinQ 100/10; nanosecond timestamps), 1 = Linux cooked SLL2 of a
                   guest tunnel (microsecond timestamps). Some packets carry EPB
                   comments naming the test they belong to.
  gateway.pcap     the same packets in the same order (same frame numbers), classic
                   pcap, nanosecond magic, all Ethernet (interface 1's traffic as
                   VLAN 20 frames).
  consentry.toml   the case: two test phones, one refusal halfway.
  expected.json    what a correct analyser must find, computed while writing.
  EXPECTED.md      the same rows as a table.

Story (times from 2026-11-28T09:30:00Z): phone "pixel7" (192.168.60.23 and
fd00:60::23, VLAN 10) and phone "redmi" (guest range 10.20.30.4/30, tunnel interface)
run "Example Shop"; an unknown laptop (192.168.60.77) reads the news. pixel7's user
refuses all purposes at +60.5 s; redmi's user is never asked. The traffic exercises
what the tap must handle: DNS (A, AAAA, a CNAME chain, a truncated answer retried
over TCP), HTTP/1.1 on 80 and 8080 (keep-alive, pipelining, chunked+gzip, form,
query, 100-continue, close-delimited response, mid-stream pickup), TCP reordering,
retransmission, consistent overlap, an identifier split over two segments, a body
in many small segments, an IPv4 fragmented request, IPv6, TLS (real ClientHellos
from Python's ssl module; ServerHello written by hand; encrypted records opaque)
on 443 and 8443, ARP.

Deterministic: fixed seed and times; the random parts of the ClientHellos (random,
session id, key share) are overwritten from the seed, so the output depends only on
the OpenSSL version's ClientHello layout. All personal data is synthetic.
Run: python3 captures/gateway/make_gateway.py
"""
import gzip
import hashlib
import json
import os
import random
import ssl
import struct
import sys
from datetime import datetime, timedelta, timezone
from ipaddress import IPv4Address, IPv6Address

HERE = os.path.dirname(os.path.abspath(__file__))
# captures/pcapkit.py: the packet-building helpers the capture generators share.
sys.path.insert(0, os.path.dirname(HERE))
from pcapkit import (ACK, FIN, PSH, SYN, ipv4_header, ipv6_header, luhn_ok, mac,  # noqa: E402
                     qname, tcp_segment, udp_datagram)
T0 = datetime(2026, 11, 28, 9, 30, 0, tzinfo=timezone.utc)
T0_NS = int(T0.timestamp()) * 1_000_000_000
REFUSAL_S = 60.5
GRACE_MS = 1000
rng = random.Random(20261128)


def luhn_complete(prefix14):
    for c in "0123456789":
        if luhn_ok(prefix14 + c):
            return prefix14 + c
    raise AssertionError


def md5(s):
    return hashlib.md5(s.encode()).hexdigest()


# --- the case ------------------------------------------------------------------
PIXEL = {
    "advertising_id": "38400000-8cf0-11bd-b23e-10b96e40000d",
    "android_id": "9774d56d682e549c",
    "imei": "490154203237518",
    "oaid": "a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b",
    "phone": "+8613800138000",
    "email": "tester@example.org",
    "location": (31.230416, 121.473701),
}
REDMI = {
    "advertising_id": "6f1c2a3b-4d5e-4f60-8a7b-9c0d1e2f3a4b",
    "android_id": "3e1f5a7c9b2d4e60",
    "imei": luhn_complete("86453703124569"),
    "oaid": "f0e1d2c3-b4a5-4968-8776-655443322110",
    "phone": "+8613800000001",
    "email": "qa-redmi@example.org",
    "location": (39.908722, 116.397499),
}
assert luhn_ok(PIXEL["imei"]) and luhn_ok(REDMI["imei"])

FIRST_PARTY = ["example-shop.com", "exshop-cdn.net"]

# --- addresses -------------------------------------------------------------------
GW_MAC = "02:00:00:00:00:01"


class Node:
    def __init__(self, name, mac, ip4, ip6=None, iface=0, tags=((0x8100, 10),), device=None):
        self.name, self.mac, self.ip4, self.ip6 = name, mac, ip4, ip6
        self.iface, self.tags, self.device = iface, tags, device


P = Node("pixel7", "02:00:00:44:55:66", "192.168.60.23", "fd00:60::23", device="pixel7")
R = Node("redmi", "02:00:00:77:88:99", "10.20.30.5", iface=1, tags=((0x8100, 20),),
         device="redmi")
U = Node("laptop", "02:00:00:aa:bb:cc", "192.168.60.77")
RESOLVER = {0: "192.168.60.1", 1: "10.20.30.1"}

# host -> (CNAME chain, A, AAAA)
DNS = {
    "api.example-shop.com": (["api-gw.exshop-cdn.net", "edge-7.exshop-cdn.net"],
                             "198.51.100.10", "2001:db8:10::10"),
    "ulogs.umeng.com": ([], "203.0.113.21", None),
    "rt.applovin.com": (["rt.applovin.com.cdn.cloudflare.net"], "203.0.113.31", None),
    "t.appsflyer.com": ([], "203.0.113.41", None),
    "sdk.e.qq.com": ([], "203.0.113.51", None),
    "api2.amplitude.com": ([], "203.0.113.61", None),
    "app-measurement.com": ([], "203.0.113.71", "2001:db8:71::71"),
    "api16-access-sg.pangle.io": (["api16-access-sg.pangle.io.edgekey.net",
                                   "e1234.a.akamaiedge.net"], "203.0.113.81", None),
    "news.example.net": ([], "198.51.100.90", None),
    "updates.example.net": ([], "198.51.100.91", None),
}


def ip_of(host, v6=False):
    return DNS[host][2 if v6 else 1]


# --- packets (headers, checksums, MAC addresses: captures/pcapkit.py) -----------------
class Pkt:
    """One captured frame before link encapsulation."""
    order = 0

    def __init__(self, t, node, outbound, ethertype, l3, comment=None):
        self.t = t
        self.node = node          # the local (client side) node of the frame
        self.outbound = outbound  # True: from the node towards the gateway
        self.ethertype = ethertype
        self.l3 = l3
        self.comment = comment
        self.frame = None
        Pkt.order += 1
        self.order = Pkt.order


packets = []


def ns(t):
    """Capture time (seconds from T0) -> ns since epoch; µs-aligned (interface 1 is µs)."""
    return T0_NS + int(round(t * 1_000_000)) * 1000


def emit(t, node, outbound, ethertype, l3, comment=None):
    p = Pkt(t, node, outbound, ethertype, l3, comment)
    packets.append(p)
    return p


def ethernet(p, tags):
    src, dst = (p.node.mac, GW_MAC) if p.outbound else (GW_MAC, p.node.mac)
    out = mac(dst) + mac(src)
    for tpid, vid in tags:
        out += struct.pack("!HH", tpid, vid)
    return out + struct.pack("!H", p.ethertype) + p.l3


def sll2(p):
    # SLL2: protocol, reserved, ifindex, ARPHRD_ETHER, packet type, addr len, addr[8]
    pkttype = 0 if p.outbound else 4  # PACKET_HOST towards us / PACKET_OUTGOING
    addr = mac(p.node.mac if p.outbound else GW_MAC)
    return struct.pack("!HHIHBB8s", p.ethertype, 0, 3, 1, pkttype, 6, addr) + p.l3


# --- TCP connections ----------------------------------------------------------------
class Tcp:
    """A TCP connection between a local node and a server; times in seconds from T0."""
    next_port = 40000

    def __init__(self, node, server, sport_srv, t, v6=False, tags=None, host=None):
        Tcp.next_port += rng.randrange(1, 40)
        self.node, self.server, self.dport = node, server, sport_srv
        self.cport = Tcp.next_port
        self.cip = node.ip6 if v6 else node.ip4
        self.v6 = v6
        self.tags = tags
        self.t = t
        self.host = host
        self.seq = {True: rng.getrandbits(32), False: rng.getrandbits(32)}  # next seq by side
        self.ident = rng.randrange(1, 60000)

    def _ip(self, from_client, seg, flags_frag=0x4000, ident=None):
        src, dst = (self.cip, self.server) if from_client else (self.server, self.cip)
        if self.v6:
            return 0x86DD, ipv6_header(src, dst, 6, len(seg)) + seg
        if ident is None:
            self.ident = (self.ident + 1) & 0xFFFF
            ident = self.ident
        return 0x0800, ipv4_header(src, dst, 6, len(seg), ident, flags_frag) + seg

    def raw(self, from_client, flags, payload=b"", seq=None, dt=0.0002, opts=b"", comment=None):
        """Emits one segment (seq defaults to the side's next) and returns its Pkt."""
        s = self.seq[from_client] if seq is None else seq
        a = self.seq[not from_client] if flags & ACK else 0
        src, dst = (self.cip, self.server) if from_client else (self.server, self.cip)
        sp, dp = (self.cport, self.dport) if from_client else (self.dport, self.cport)
        seg = tcp_segment(src, dst, sp, dp, s, a, flags, payload, opts=opts)
        et, l3 = self._ip(from_client, seg)
        p = emit(self.t, self.node, from_client, et, l3, comment)
        p.tags = self.tags
        self.t += dt
        return p

    def handshake(self, comment=None):
        mss = struct.pack("!BBH", 2, 4, 1440 if self.v6 else 1460) + b"\x04\x02\x01\x01"
        self.raw(True, SYN, opts=mss, dt=0.030, comment=comment)
        self.seq[True] += 1
        self.raw(False, SYN | ACK, opts=mss, dt=0.0003)
        self.seq[False] += 1
        self.raw(True, ACK, dt=0.001)

    def send(self, from_client, data, mss=1448, order=None, ack=True, dt=0.0002, comment=None):
        """Sends data in MSS-sized segments (emitted in `order` if given); the peer
        acknowledges at the end. Returns the data segments' Pkts in sequence order."""
        chunks = []
        base = self.seq[from_client]
        for i in range(0, len(data), mss):
            chunks.append((base + i, data[i:i + mss]))
        idx = list(range(len(chunks))) if order is None else order
        out = {}
        for n, i in enumerate(idx):
            s, chunk = chunks[i]
            out[i] = self.raw(from_client, PSH | ACK if i == len(chunks) - 1 else ACK, chunk,
                              seq=s, dt=dt, comment=comment if n == 0 else None)
        self.seq[from_client] = base + len(data)
        if ack:
            self.t += 0.0005
            self.raw(not from_client, ACK, dt=0.001)
        return [out[i] for i in range(len(chunks))]

    def close(self, client_first=True):
        self.t += 0.002
        self.raw(client_first, FIN | ACK, dt=0.0003)
        self.seq[client_first] += 1
        self.raw(not client_first, FIN | ACK, dt=0.0003)
        self.seq[not client_first] += 1
        self.raw(client_first, ACK, dt=0.0003)

    def rtt(self, s=0.035):
        self.t += s


# --- DNS (qname: captures/pcapkit.py) ---------------------------------------------------
def dns_message(txid, name, qtype, answers=None, tc=False):
    if answers is None:
        flags = 0x0100  # query, RD
        an = []
    else:
        flags = 0x8180 | (0x0200 if tc else 0)  # response, RD, RA (+TC)
        an = answers
    out = struct.pack("!HHHHHH", txid, flags, 1, len(an), 0, 0) + qname(name)
    out += struct.pack("!HH", qtype, 1)
    for rname, rtype, rdata in an:
        out += qname(rname) + struct.pack("!HHIH", rtype, 1, 300, len(rdata)) + rdata
    return out


def dns_answers(name, qtype):
    chain, a, aaaa = DNS[name]
    ans, cur = [], name
    for c in chain:
        ans.append((cur, 5, qname(c)))
        cur = c
    if qtype == 1:
        ans.append((cur, 1, IPv4Address(a).packed))
    elif aaaa:
        ans.append((cur, 28, IPv6Address(aaaa).packed))
    return ans


def udp_pkt(t, node, from_node, sport, dport, payload, server, comment=None):
    src, dst = (node.ip4, server) if from_node else (server, node.ip4)
    seg = udp_datagram(src, dst, sport, dport, payload)
    l3 = ipv4_header(src, dst, 17, len(seg), rng.randrange(1, 65535), 0x4000) + seg
    p = emit(t, node, from_node, 0x0800, l3, comment)
    p.tags = None
    return p


def lookup(t, node, host, aaaa=False):
    """A (and AAAA) query and answer over UDP; returns the time after."""
    resolver = RESOLVER[node.iface]
    for qtype in ([1, 28] if aaaa else [1]):
        txid = rng.getrandbits(16)
        sport = rng.randrange(20000, 60000)
        udp_pkt(t, node, True, sport, 53, dns_message(txid, host, qtype), resolver)
        t += 0.012
        udp_pkt(t, node, False, 53, sport, dns_message(txid, host, qtype, dns_answers(host, qtype)),
                resolver)
        t += 0.002
    return t


# --- TLS ----------------------------------------------------------------------------------
def client_hello(sni):
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.set_alpn_protocols(["h2", "http/1.1"])
    inc, out = ssl.MemoryBIO(), ssl.MemoryBIO()
    obj = ctx.wrap_bio(inc, out, server_hostname=sni)
    try:
        obj.do_handshake()
    except ssl.SSLWantReadError:
        pass
    ch = bytearray(out.read())
    assert ch[0] == 22 and ch[5] == 1
    # Overwrite the random fields from the seed (deterministic output).
    ch[11:43] = rng.randbytes(32)
    sid_len = ch[43]
    ch[44:44 + sid_len] = rng.randbytes(sid_len)
    p = 44 + sid_len
    (cs_len,) = struct.unpack_from("!H", ch, p)
    p += 2 + cs_len
    p += 1 + ch[p]
    (ext_total,) = struct.unpack_from("!H", ch, p)
    p += 2
    end = p + ext_total
    while p < end:
        etype, elen = struct.unpack_from("!HH", ch, p)
        if etype == 0x0033:  # key_share: list of (group, key)
            q = p + 6
            while q < p + 4 + elen:
                _, klen = struct.unpack_from("!HH", ch, q)
                ch[q + 4:q + 4 + klen] = rng.randbytes(klen)
                q += 4 + klen
        p += 4 + elen
    return bytes(ch), bytes(ch[44:44 + sid_len])


def server_hello(sid):
    ext = struct.pack("!HHH", 0x002B, 2, 0x0304)
    ext += struct.pack("!HHHH", 0x0033, 36, 0x001D, 32) + rng.randbytes(32)
    body = struct.pack("!H", 0x0303) + rng.randbytes(32) + bytes([len(sid)]) + sid
    body += struct.pack("!HB", 0x1301, 0) + struct.pack("!H", len(ext)) + ext
    hs = bytes([2]) + struct.pack("!I", len(body))[1:] + body
    return record(22, hs)


def record(ctype, data):
    return struct.pack("!BHH", ctype, 0x0303, len(data)) + data


CCS = record(20, b"\x01")


def app_data(n):
    return record(23, rng.randbytes(n))


def tls_session(conn, sni, comment):
    """Handshake (real ClientHello), a request and a response, all opaque after the
    ServerHello. Returns the Pkts carrying the ClientHello."""
    conn.handshake(comment=comment)
    ch, sid = client_hello(sni)
    frames = conn.send(True, ch, ack=False)
    conn.rtt()
    conn.send(False, server_hello(sid) + CCS + app_data(2400) + app_data(280) + app_data(53))
    conn.send(True, CCS + app_data(53) + app_data(rng.randrange(300, 700)), ack=False)
    conn.rtt(0.06)
    conn.send(False, app_data(rng.randrange(400, 1200)))
    conn.t += 0.5
    conn.send(True, app_data(19), ack=False)  # close_notify (encrypted)
    conn.close()
    return frames


# --- HTTP -----------------------------------------------------------------------------------
UA = "ExampleShop/4.2.0 (Linux; Android 14; Pixel 7)"
UA_R = "ExampleShop/4.2.0 (Linux; Android 13; 22101316C)"


def request(method, host, path, headers=(), body=b"", ua=UA, length=True):
    h = "%s %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\n" % (method, path, host, ua)
    for k, v in headers:
        h += "%s: %s\r\n" % (k, v)
    if body and length:
        h += "Content-Length: %d\r\n" % len(body)
    return (h + "\r\n").encode() + body


def response(body=b'{"code":0,"msg":"ok"}', status="200 OK", ctype="application/json",
             length=True, extra=()):
    h = "HTTP/1.1 %s\r\nServer: nginx\r\nDate: Sat, 28 Nov 2026 09:30:00 GMT\r\n" % status
    if body or length:
        h += "Content-Type: %s\r\n" % ctype
    for k, v in extra:
        h += "%s: %s\r\n" % (k, v)
    if length:
        h += "Content-Length: %d\r\n" % len(body)
    return (h + "\r\n").encode() + body


def jbody(obj):
    return json.dumps(obj, separators=(",", ":")).encode()


JSON_H = [("Content-Type", "application/json; charset=utf-8"), ("Accept", "*/*")]
FORM_H = [("Content-Type", "application/x-www-form-urlencoded")]

# --- expectations ------------------------------------------------------------------------------
rows = []


def expect(pkts, t, conn, method, path, data, note, tls=False):
    """Records one transmission a correct analyser must report."""
    rows.append({"pkts": pkts, "t": t, "conn": conn, "method": method, "path": path,
                 "data": data, "note": note, "tls": tls})


def d(kind, encoding, where):
    return {"type": kind, "encoding": encoding, "where": where}


# =================================================================================================
# The story.
# =================================================================================================

# +0.2 s  mid-stream pickup: a keep-alive connection to GDT opened before the capture.
c = Tcp(P, ip_of("sdk.e.qq.com"), 80, 0.2, host="sdk.e.qq.com")
req = request("GET", "sdk.e.qq.com", "/v2/ping?appid=1101152570&oaid=" + PIXEL["oaid"])
fr = c.send(True, req, comment="mid-stream pickup: no SYN in the capture")
expect(fr, c.t, c, "GET", "/v2/ping", [d("oaid", "plain", "query:oaid")],
       "connection picked up mid-stream (no SYN)")
c.rtt()
c.send(False, response())
c.close()

# +0.9 s  the laptop ARPs for the gateway.
def arp(t, node, target_ip, op, comment=None):
    sha, spa = (mac(node.mac), IPv4Address(node.ip4).packed) if op == 1 else \
        (mac(GW_MAC), IPv4Address(target_ip).packed)
    tha, tpa = (b"\0" * 6, IPv4Address(target_ip).packed) if op == 1 else \
        (mac(node.mac), IPv4Address(node.ip4).packed)
    l3 = struct.pack("!HHBBH6s4s6s4s", 1, 0x0800, 6, 4, op, sha, spa, tha, tpa)
    p = emit(t, node, op == 1, 0x0806, l3, comment)
    p.tags = None
    p.broadcast = op == 1
    return p


arp(0.9, U, "192.168.60.1", 1, comment="unknown device (laptop): ARP")
arp(0.9004, U, "192.168.60.1", 2)

# +1.0 s  pixel7 resolves the app's API (CNAME chain, A and AAAA) and opens TLS to it.
t = lookup(1.0, P, "api.example-shop.com", aaaa=True)
c = Tcp(P, ip_of("api.example-shop.com"), 443, t + 0.2, host="api.example-shop.com")
fr = tls_session(c, "api.example-shop.com", "TLS 443 to the first party")
expect(fr, fr[0].t, c, None, None, [], "TLS to the first party: metadata only, no finding", tls=True)

# +3.0 s  keep-alive: three requests on one connection to the first party (port 80).
c = Tcp(P, ip_of("api.example-shop.com"), 80, 3.0, host="api.example-shop.com")
c.handshake(comment="HTTP keep-alive, 3 requests")
c.send(True, request("GET", "api.example-shop.com", "/v1/config?platform=android&v=4.2.0",
                     [("Accept", "application/json")]), ack=False)
c.rtt()
c.send(False, response(jbody({"privacy_dialog": True, "features": ["feed", "cart"]})))
c.rtt(0.4)
b = jbody({"android_id": PIXEL["android_id"], "model": "Pixel 7", "locale": "zh_CN"})
fr = c.send(True, request("POST", "api.example-shop.com", "/v1/device/register", JSON_H, b),
            ack=False)
expect(fr, fr[0].t, c, "POST", "/v1/device/register",
       [d("android_id", "plain", "body:$.android_id")], "keep-alive, 2nd request")
c.rtt()
c.send(False, response())
c.rtt(0.8)
c.send(True, request("GET", "api.example-shop.com", "/v1/feed?page=1"), ack=False)
c.rtt()
c.send(False, response(jbody({"items": [{"title": "Winter sale", "price": "99.00"}]})))
c.t += 2
c.close()

# +6.0 s  Umeng on port 8080 (protocol by content): two pipelined requests.
t = lookup(6.0, P, "ulogs.umeng.com")
c = Tcp(P, ip_of("ulogs.umeng.com"), 8080, t + 0.05, host="ulogs.umeng.com")
c.handshake(comment="HTTP on 8080, pipelining")
b = jbody({"header": {"appkey": "5f8e7d6c5b4a39281706f5e4", "oaid": PIXEL["oaid"],
                      "os": "Android", "os_version": "14"},
           "content": {"analytics": {"sessions": [{"id": "S1"}]}}})
fr = c.send(True, request("POST", "ulogs.umeng.com", "/unify_logs", JSON_H, b), ack=False)
expect(fr, fr[0].t, c, "POST", "/unify_logs", [d("oaid", "plain", "body:$.header.oaid")],
       "pipelined request 1 of 2 on port 8080")
c.send(True, request("GET", "ulogs.umeng.com", "/ping?seq=1"), ack=False)
c.rtt()
c.send(False, response() + response(b"pong", ctype="text/plain"))
c.t += 1
c.close()

# +8.0 s  TLS to Umeng (tracker contact, metadata only).
c = Tcp(P, ip_of("ulogs.umeng.com"), 443, 8.0, host="ulogs.umeng.com")
fr = tls_session(c, "ulogs.umeng.com", "TLS 443 to a tracker (Umeng), before the refusal")
expect(fr, fr[0].t, c, None, None, [], "TLS to a tracker: metadata only", tls=True)

# +10 s  AppLovin: chunked + gzip JSON body with the advertising id.
t = lookup(10.0, P, "rt.applovin.com")
c = Tcp(P, ip_of("rt.applovin.com"), 80, t + 0.05, host="rt.applovin.com")
c.handshake(comment="chunked + gzip request body")
z = gzip.compress(jbody({"app": {"bundle": "com.example.shop"},
                         "device": {"ifa": PIXEL["advertising_id"], "os": "android",
                                    "lmt": 0},
                         "events": [{"name": "app_open"}] * 12}), mtime=0)
chunked = b""
for i in range(0, len(z), 100):
    piece = z[i:i + 100]
    chunked += b"%x\r\n" % len(piece) + piece + b"\r\n"
chunked += b"0\r\n\r\n"
req = request("POST", "rt.applovin.com", "/v2/events",
              JSON_H + [("Content-Encoding", "gzip"), ("Transfer-Encoding", "chunked")],
              chunked, length=False)
fr = c.send(True, req, ack=False)
expect(fr, fr[0].t, c, "POST", "/v2/events",
       [d("advertising_id", "plain", "body:$.device.ifa")],
       "Transfer-Encoding: chunked + Content-Encoding: gzip")
c.rtt()
c.send(False, response())
c.close()

# +12 s  TLS to AppLovin on 8443 (protocol by content).
c = Tcp(P, ip_of("rt.applovin.com"), 8443, 12.0, host="rt.applovin.com")
fr = tls_session(c, "rt.applovin.com", "TLS on 8443 to a tracker (AppLovin)")
expect(fr, fr[0].t, c, None, None, [], "TLS on 8443 to a tracker: metadata only", tls=True)

# +15 s  AppsFlyer: form POST with the IMEI, Expect: 100-continue.
t = lookup(15.0, P, "t.appsflyer.com")
c = Tcp(P, ip_of("t.appsflyer.com"), 80, t + 0.05, host="t.appsflyer.com")
c.handshake(comment="form POST with Expect: 100-continue")
b = ("app_id=com.example.shop&event=af_install&imei=%s&sdk=6.12.1&platform=android"
     % PIXEL["imei"]).encode()
head = request("POST", "t.appsflyer.com", "/api/v6.3/androidevent",
               FORM_H + [("Expect", "100-continue"), ("Content-Length", str(len(b)))],
               length=False)
fr = c.send(True, head, ack=False)
c.rtt()
c.send(False, b"HTTP/1.1 100 Continue\r\n\r\n", ack=False)
c.t += 0.001
fr += c.send(True, b, ack=False)
expect(fr, fr[0].t, c, "POST", "/api/v6.3/androidevent", [d("imei", "plain", "form:imei")],
       "form body after 100 Continue")
c.rtt()
c.send(False, response())
c.close()

# +18 s  redmi (guest tunnel, SLL2): resolves Pangle; the UDP answer is truncated and
# retried over TCP.
t = 18.0
txid = rng.getrandbits(16)
sport = rng.randrange(20000, 60000)
host = "api16-access-sg.pangle.io"
udp_pkt(t, R, True, sport, 53, dns_message(txid, host, 1), RESOLVER[1],
        comment="DNS answer truncated (TC), retried over TCP")
udp_pkt(t + 0.01, R, False, 53, sport, dns_message(txid, host, 1, [], tc=True), RESOLVER[1])
c = Tcp(R, RESOLVER[1], 53, t + 0.02)
c.handshake(comment="DNS over TCP")
q = dns_message(txid, host, 1)
c.send(True, struct.pack("!H", len(q)) + q, ack=False)
c.rtt(0.015)
a = dns_message(txid, host, 1, dns_answers(host, 1))
c.send(False, struct.pack("!H", len(a)) + a)
c.close()
c = Tcp(R, ip_of(host), 443, c.t + 0.05, host=host)
fr = tls_session(c, host, "TLS to a tracker (Pangle), redmi")
expect(fr, fr[0].t, c, None, None, [], "TLS to a tracker after a DNS-over-TCP answer", tls=True)

# +20 s  GDT, QinQ-tagged: GET with android_id and md5(IMEI) in the query; the
# response has no Content-Length and ends with the server's FIN.
c = Tcp(P, ip_of("sdk.e.qq.com"), 80, lookup(20.0, P, "sdk.e.qq.com") + 0.05,
        tags=((0x88A8, 100), (0x8100, 10)), host="sdk.e.qq.com")
c.handshake(comment="QinQ; response ended by close")
path = "/launch?muidtype=1&muid=%s&android_id=%s&appid=1101152570" % (
    md5(PIXEL["imei"]), PIXEL["android_id"])
fr = c.send(True, request("GET", "sdk.e.qq.com", path, [("Connection", "close")]), ack=False)
expect(fr, fr[0].t, c, "GET", "/launch",
       [d("imei", "md5", "query:muid"), d("android_id", "plain", "query:android_id")],
       "QinQ; response without Content-Length, ended by close")
c.rtt()
c.send(False, response(jbody({"ret": 0, "ads": []}), length=False,
                       extra=[("Connection", "close")]))
c.close(client_first=False)

# +25 s  Amplitude: the client's segments arrive out of order (2, 3, 1).
t = lookup(25.0, P, "api2.amplitude.com")
c = Tcp(P, ip_of("api2.amplitude.com"), 80, t + 0.05, host="api2.amplitude.com")
c.handshake(comment="client segments out of order (2,3,1)")
filler = ["session_start", "screen_view", "add_to_cart", "checkout_view"]
b = jbody({"api_key": "0123456789abcdef0123456789abcdef",
           "events": [{"event_type": filler[i % 4], "event_properties": {"n": "x" * 330}}
                      for i in range(8)]
           + [{"event_type": "login", "user_properties": {"email": PIXEL["email"]}}]})
req = request("POST", "api2.amplitude.com", "/2/httpapi", JSON_H, b)
assert 1448 * 2 < len(req) <= 1448 * 3, len(req)
fr = c.send(True, req, order=[1, 2, 0], ack=False)
expect(fr, fr[0].t, c, "POST", "/2/httpapi",
       [d("email", "plain", "body:$.events[8].user_properties.email")],
       "client segments out of order")
c.rtt()
c.send(False, response())
c.close()

# +30 s  IPv6 to the first party: the position.
c = Tcp(P, ip_of("api.example-shop.com", v6=True), 80, 30.0, v6=True,
        host="api.example-shop.com")
c.handshake(comment="IPv6")
lat, lon = PIXEL["location"]
fr = c.send(True, request("POST", "api.example-shop.com", "/v1/stores/nearby", JSON_H,
                          jbody({"lat": lat, "lng": lon, "radius_km": 3})), ack=False)
expect(fr, fr[0].t, c, "POST", "/v1/stores/nearby", [d("location", "plain", "body:$.lat")],
       "IPv6 connection")
c.rtt()
c.send(False, response(jbody({"stores": [{"name": "Nanjing Road"}]})))
c.close()

# +35 s  Google Analytics for Firebase: a retransmitted segment.
t = lookup(35.0, P, "app-measurement.com", aaaa=True)
c = Tcp(P, ip_of("app-measurement.com"), 80, t + 0.05, host="app-measurement.com")
c.handshake(comment="retransmitted segment")
b = jbody({"app_instance_id": "c1a5f0e2b7d94c3e8f6a2b1c0d9e8f7a",
           "adid": PIXEL["advertising_id"], "limit_ad_tracking": False,
           "events": [{"name": "_first_open", "params": {"engagement": "x" * 900}}]})
req = request("POST", "app-measurement.com", "/a", JSON_H, b)
fr = c.send(True, req, ack=False)
c.t += 0.3  # RTO: the first segment again
retx = c.raw(True, ACK, req[:1448], seq=c.seq[True] - len(req),
             comment="retransmission of the first data segment")
fr.append(retx)
c.raw(False, ACK)
expect(fr, fr[0].t, c, "POST", "/a", [d("advertising_id", "plain", "body:$.adid")],
       "one segment retransmitted (same bytes)")
c.rtt()
c.send(False, response(b"", status="204 No Content", length=True))
c.close()

# +40 s  Umeng on port 80: the OAID split across two TCP segments.
c = Tcp(P, ip_of("ulogs.umeng.com"), 80, 40.0, host="ulogs.umeng.com")
c.handshake(comment="identifier split across two segments")
b = jbody({"header": {"appkey": "5f8e7d6c5b4a39281706f5e4", "oaid": PIXEL["oaid"]},
           "content": {"analytics": {"ekv": [{"id": "page_view", "du": "1500"}]}}})
req = request("POST", "ulogs.umeng.com", "/unify_logs", JSON_H, b)
cut = req.index(PIXEL["oaid"].encode()) + 13
s0 = c.seq[True]
fr = [c.raw(True, ACK, req[:cut], seq=s0), c.raw(True, PSH | ACK, req[cut:], seq=s0 + cut)]
c.seq[True] = s0 + len(req)
expect(fr, fr[0].t, c, "POST", "/unify_logs", [d("oaid", "plain", "body:$.header.oaid")],
       "oaid split after 13 of its 36 characters")
c.rtt()
c.send(False, response())
c.close()

# +45 s  Amplitude again: a segment overlapping its predecessor (same bytes in the
# overlap, as a resegmenting retransmission sends them).
c = Tcp(P, ip_of("api2.amplitude.com"), 80, 45.0, host="api2.amplitude.com")
c.handshake(comment="overlapping segment (consistent bytes)")
b = jbody({"api_key": "0123456789abcdef0123456789abcdef",
           "events": [{"event_type": "heartbeat", "device_id": PIXEL["android_id"]},
                      {"event_type": "screen_view", "event_properties": {"n": "y" * 900}}]})
req = request("POST", "api2.amplitude.com", "/2/httpapi", JSON_H, b)
s0 = c.seq[True]
pos = req.index(PIXEL["android_id"].encode())
a1, a2 = pos - 200, pos + 8
assert a1 > 0 and a2 + 300 < len(req)
fr = [c.raw(True, ACK, req[:a2], seq=s0),
      c.raw(True, ACK, req[a1:a2 + 300], seq=s0 + a1, comment="overlaps the previous segment"),
      c.raw(True, PSH | ACK, req[a2 + 300:], seq=s0 + a2 + 300)]
c.seq[True] = s0 + len(req)
expect(fr, fr[0].t, c, "POST", "/2/httpapi",
       [d("android_id", "plain", "body:$.events[0].device_id")],
       "second segment overlaps the first over the android_id")
c.rtt()
c.send(False, response())
c.close()

# +50 s  redmi: first party and Umeng (md5 IMEI and OAID); the laptop ARPs again.
t = lookup(50.0, R, "api.example-shop.com")
c = Tcp(R, ip_of("api.example-shop.com"), 80, t + 0.05, host="api.example-shop.com")
c.handshake(comment="redmi (SLL2 interface)")
fr = c.send(True, request("POST", "api.example-shop.com", "/v1/device/register", JSON_H,
                          jbody({"android_id": REDMI["android_id"], "model": "22101316C"}),
                          ua=UA_R), ack=False)
expect(fr, fr[0].t, c, "POST", "/v1/device/register",
       [d("android_id", "plain", "body:$.android_id")], "redmi on the SLL2 interface")
c.rtt()
c.send(False, response())
c.close()
t = lookup(c.t + 0.5, R, "ulogs.umeng.com")
c = Tcp(R, ip_of("ulogs.umeng.com"), 80, t + 0.05, host="ulogs.umeng.com")
c.handshake()
fr = c.send(True, request("POST", "ulogs.umeng.com", "/unify_logs", JSON_H,
                          jbody({"header": {"imei_md5": md5(REDMI["imei"]),
                                            "oaid": REDMI["oaid"]}}), ua=UA_R), ack=False)
expect(fr, fr[0].t, c, "POST", "/unify_logs",
       [d("imei", "md5", "body:$.header.imei_md5"), d("oaid", "plain", "body:$.header.oaid")],
       "md5 of the IMEI, hex")
c.rtt()
c.send(False, response())
c.close()
arp(52.0, U, "192.168.60.1", 1)
arp(52.0004, U, "192.168.60.1", 2)

# +55 s  the laptop (not in the case): DNS, HTTP and TLS carrying nothing personal.
t = lookup(55.0, U, "news.example.net")
c = Tcp(U, ip_of("news.example.net"), 80, t + 0.05, host="news.example.net")
c.handshake(comment="unknown device: news")
c.send(True, request("GET", "news.example.net", "/today.json",
                     [("Accept", "application/json")],
                     ua="Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0"), ack=False)
c.rtt()
c.send(False, response(jbody({"headlines": ["Snow expected in the north",
                                            "Markets steady"]})))
c.close()
t = lookup(c.t + 0.2, U, "updates.example.net")
c = Tcp(U, ip_of("updates.example.net"), 443, t + 0.05, host="updates.example.net")
tls_session(c, "updates.example.net", "unknown device: TLS")

# ---- +60.5 s: pixel7's user refuses all purposes (consentry.toml) ----

# +65 s  login with the phone number to the first party.
c = Tcp(P, ip_of("api.example-shop.com"), 80, 65.0, host="api.example-shop.com")
c.handshake(comment="after the refusal: phone number to the first party")
fr = c.send(True, request("POST", "api.example-shop.com", "/v1/user/login", JSON_H,
                          jbody({"phone": PIXEL["phone"], "code": "246810"})), ack=False)
expect(fr, fr[0].t, c, "POST", "/v1/user/login", [d("phone", "plain", "body:$.phone")],
       "phone number in the body")
c.rtt()
c.send(False, response(jbody({"token": "opaque-session-token"})))
c.close()

# +70 s  TLS to Umeng after the refusal.
c = Tcp(P, ip_of("ulogs.umeng.com"), 443, 70.0, host="ulogs.umeng.com")
fr = tls_session(c, "ulogs.umeng.com", "TLS to a tracker (Umeng), after the refusal")
expect(fr, fr[0].t, c, None, None, [], "TLS to a tracker after the refusal: metadata only",
       tls=True)

# +75 s  AppLovin: a body arriving in many small segments.
c = Tcp(P, ip_of("rt.applovin.com"), 80, 75.0, host="rt.applovin.com")
c.handshake(comment="body in many small segments")
b = jbody({"device": {"ifa": PIXEL["advertising_id"], "os": "android"},
           "app": {"bundle": "com.example.shop", "ver": "4.2.0"},
           "imp": [{"id": "1", "banner": {"w": 320, "h": 50}}]})
head = request("POST", "rt.applovin.com", "/v1/bid", JSON_H + [("Content-Length", str(len(b)))],
               length=False)
fr = c.send(True, head, ack=False)
fr += c.send(True, b, mss=7, ack=False, dt=0.0004)
expect(fr, fr[0].t, c, "POST", "/v1/bid", [d("advertising_id", "plain", "body:$.device.ifa")],
       "body in %d segments of 7 bytes" % (len(fr) - 1))
c.raw(False, ACK)
c.rtt()
c.send(False, response())
c.close()

# +80 s  TLS to Pangle from pixel7 after the refusal (CNAME chain).
t = lookup(80.0, P, "api16-access-sg.pangle.io")
c = Tcp(P, ip_of("api16-access-sg.pangle.io"), 443, t + 0.05, host="api16-access-sg.pangle.io")
fr = tls_session(c, "api16-access-sg.pangle.io", "TLS to a tracker (Pangle), after the refusal")
expect(fr, fr[0].t, c, None, None, [], "TLS to a tracker after the refusal (CNAME chain)",
       tls=True)

# +85 s  AppsFlyer: the request's segment travels as two IPv4 fragments, split inside
# the advertising id.
c = Tcp(P, ip_of("t.appsflyer.com"), 80, 85.0, host="t.appsflyer.com")
c.handshake(comment="IPv4 fragments")
b = jbody({"advertiserId": PIXEL["advertising_id"], "android_id": PIXEL["android_id"],
           "eventName": "af_app_opened", "deviceData": {"arch": "arm64", "dim": "z" * 500}})
req = request("POST", "t.appsflyer.com", "/api/v6.3/androidevent?app_id=com.example.shop",
              JSON_H, b)
seg = tcp_segment(c.cip, c.server, c.cport, c.dport, c.seq[True], c.seq[False], PSH | ACK, req)
cut = 20 + req.index(PIXEL["advertising_id"].encode()) + 10
cut -= cut % 8
c.ident += 1
f1 = emit(c.t, P, True, 0x0800,
          ipv4_header(c.cip, c.server, 6, cut, c.ident, 0x2000) + seg[:cut],
          "fragment 1 of 2 (MF)")
f2 = emit(c.t + 0.0001, P, True, 0x0800,
          ipv4_header(c.cip, c.server, 6, len(seg) - cut, c.ident, cut // 8) + seg[cut:],
          "fragment 2 of 2")
f1.tags = f2.tags = None
c.t += 0.0002
c.seq[True] += len(req)
expect([f1, f2], f1.t, c, "POST", "/api/v6.3/androidevent",
       [d("advertising_id", "plain", "body:$.advertiserId"),
        d("android_id", "plain", "body:$.android_id")],
       "one segment in two IPv4 fragments; the cut is inside the advertising id")
c.raw(False, ACK)
c.rtt()
c.send(False, response())
c.close()

# +95 s  redmi: advertising id in a query to AppLovin; +100 s profile to the first party.
t = lookup(95.0, R, "rt.applovin.com")
c = Tcp(R, ip_of("rt.applovin.com"), 80, t + 0.05, host="rt.applovin.com")
c.handshake()
fr = c.send(True, request("GET", "rt.applovin.com",
                          "/v1/ad?format=banner&ifa=%s&os=android" % REDMI["advertising_id"],
                          ua=UA_R), ack=False)
expect(fr, fr[0].t, c, "GET", "/v1/ad", [d("advertising_id", "plain", "query:ifa")],
       "redmi, advertising id in the query")
c.rtt()
c.send(False, response())
c.close()
c = Tcp(R, ip_of("api.example-shop.com"), 80, 100.0, host="api.example-shop.com")
c.handshake()
fr = c.send(True, request("POST", "api.example-shop.com", "/v1/user/profile", JSON_H,
                          jbody({"email": REDMI["email"], "phone": REDMI["phone"]}), ua=UA_R),
            ack=False)
expect(fr, fr[0].t, c, "POST", "/v1/user/profile",
       [d("email", "plain", "body:$.email"), d("phone", "plain", "body:$.phone")],
       "redmi profile: e-mail and phone")
c.rtt()
c.send(False, response())
c.close()

# +110 s  pixel7: first-party TLS again (h2), so the capture ends ~2 minutes in.
c = Tcp(P, ip_of("api.example-shop.com"), 443, 110.0, host="api.example-shop.com")
fr = tls_session(c, "api.example-shop.com", "TLS 443 to the first party, after the refusal")
expect(fr, fr[0].t, c, None, None, [], "TLS to the first party: metadata only, no finding",
       tls=True)

# =================================================================================================
# Writing.
# =================================================================================================
packets.sort(key=lambda p: (p.t, p.order))
for i, p in enumerate(packets, 1):
    p.frame = i
for a, b in zip(packets, packets[1:]):
    assert ns(a.t) <= ns(b.t)


def classic_frame(p):
    if p.node.iface == 1:
        return ethernet(p, p.node.tags)
    if getattr(p, "broadcast", False):
        return b"\xff" * 6 + ethernet(p, p.node.tags)[6:]
    return ethernet(p, p.tags if p.tags is not None else p.node.tags)


def ng_frame(p):
    if p.node.iface == 1:
        return sll2(p)
    return classic_frame(p)


def opt(code, value):
    pad = (-len(value)) % 4
    return struct.pack("<HH", code, len(value)) + value + b"\0" * pad


def block(btype, body):
    pad = (-len(body)) % 4
    body += b"\0" * pad
    n = 12 + len(body)
    return struct.pack("<II", btype, n) + body + struct.pack("<I", n)


def write_pcapng(path):
    out = [block(0x0A0D0D0A, struct.pack("<IHHq", 0x1A2B3C4D, 1, 0, -1)
                 + opt(4, b"consentry captures/gateway/make_gateway.py")
                 + opt(3, b"synthetic") + opt(0, b""))]
    out.append(block(1, struct.pack("<HHI", 1, 0, 262144) + opt(2, b"span0")
                     + opt(9, b"\x09") + opt(0, b"")))
    out.append(block(1, struct.pack("<HHI", 276, 0, 262144) + opt(2, b"guest-tun0")
                     + opt(0, b"")))
    for p in packets:
        data = ng_frame(p)
        iface = p.node.iface
        ts = ns(p.t) if iface == 0 else ns(p.t) // 1000
        body = struct.pack("<IIIII", iface, ts >> 32, ts & 0xFFFFFFFF, len(data), len(data))
        body += data + b"\0" * ((-len(data)) % 4)
        if p.comment:
            body += opt(1, p.comment.encode()) + opt(0, b"")
        out.append(block(6, body))
    with open(path, "wb") as f:
        f.write(b"".join(out))


def write_pcap(path):
    out = [struct.pack("<IHHiIII", 0xA1B23C4D, 2, 4, 0, 0, 262144, 1)]
    for p in packets:
        data = classic_frame(p)
        t = ns(p.t)
        out.append(struct.pack("<IIII", t // 1_000_000_000, t % 1_000_000_000, len(data),
                               len(data)) + data)
    with open(path, "wb") as f:
        f.write(b"".join(out))


def iso(t):
    x = T0 + timedelta(microseconds=int(round(t * 1_000_000)))
    return x.strftime("%Y-%m-%dT%H:%M:%S.%fZ")


TRACKERS = {"ulogs.umeng.com": "Umeng", "rt.applovin.com": "AppLovin",
            "t.appsflyer.com": "AppsFlyer", "sdk.e.qq.com": "Tencent GDT",
            "api2.amplitude.com": "Amplitude",
            "app-measurement.com": "Google Analytics for Firebase",
            "api16-access-sg.pangle.io": "Pangle (ByteDance)"}
SENSITIVE = {"phone", "location"}


def expected_rules(device, host, data, tls, t):
    first = any(host == s or host.endswith("." + s) for s in FIRST_PARTY)
    refused = device == "pixel7" and t >= REFUSAL_S
    if not data:
        if tls and host in TRACKERS:
            return ["tracker-contact-before-consent"]
        return []
    rules = [("collect" if first else "share") + ("-after-refusal" if refused else "-before-consent")]
    if any(x["type"] in SENSITIVE for x in data):
        rules.append("sensitive-without-consent")
    return rules


def rows_out():
    out = []
    for r in sorted(rows, key=lambda r: r["pkts"][0].frame):
        c = r["conn"]
        dev = c.node.device
        v6 = c.v6
        cl = ("[%s]:%d" if v6 else "%s:%d") % (c.cip, c.cport)
        sv = ("[%s]:%d" if v6 else "%s:%d") % (c.server, c.dport)
        t = r["pkts"][0].t
        out.append({
            "frames": sorted({p.frame for p in r["pkts"]}),
            "at": iso(t),
            "device": dev,
            "client": cl,
            "server": sv,
            "host": c.host,
            "tls": r["tls"],
            "metadata_only": r["tls"],
            "method": r["method"],
            "path": r["path"],
            "party": "first" if any(c.host.endswith(s) for s in FIRST_PARTY) else "third",
            "consent": ("after-refusal" if dev == "pixel7" and t >= REFUSAL_S
                        else "before-refusal" if dev == "pixel7" else "not-asked"),
            "data": r["data"],
            "rules": expected_rules(dev, c.host, r["data"], r["tls"], t),
            "note": r["note"],
        })
    return out


def write_case(path):
    def dev(id_, addrs, ids):
        lat, lon = ids["location"]
        s = '[[device]]\nid = "%s"\naddresses = [%s]\n[device.identifiers]\n' % (
            id_, ", ".join('"%s"' % a for a in addrs))
        for k in ["advertising_id", "android_id", "imei", "oaid", "phone", "email"]:
            s += '%s = "%s"\n' % (k, ids[k])
        return s + "location = { lat = %s, lon = %s }\n\n" % (lat, lon)

    text = ("# Case file of the gateway sample capture (make_gateway.py writes it).\n"
            "# All identifier values are synthetic.\n\n"
            '[case]\nid = "gateway-span-2026-11-28"\n'
            'title = "Example Shop 4.2 on two test phones behind a gateway span port"\n'
            'timezone = "Asia/Shanghai"\n\n'
            '[app]\nname = "Example Shop"\npackage = "com.example.shop"\n'
            'first_party = [%s]\n\n' % ", ".join('"%s"' % s for s in FIRST_PARTY))
    text += dev("pixel7", [P.ip4, P.ip6], PIXEL)
    text += "# The guest tunnel's range: the phone is known by its network, not its address.\n"
    text += dev("redmi", ["10.20.30.4/30"], REDMI)
    text += ('[[consent]]\ndevice = "pixel7"\nat = "%s"\ndecision = "refused"\n'
             'note = "tapped Disagree on the privacy dialog (all purposes)"\n\n'
             % iso(REFUSAL_S))
    text += "[rules]\ngrace_ms = %d\nfrequency_per_minute = 30\n" % GRACE_MS
    with open(path, "w") as f:
        f.write(text)


def write_expected(json_path, md_path, out):
    doc = {
        "capture": ["gateway.pcapng", "gateway.pcap"],
        "frames": len(packets),
        "refusal": {"device": "pixel7", "at": iso(REFUSAL_S)},
        "unknown_devices": [U.ip4],
        "generator": "captures/gateway/make_gateway.py",
        "transmissions": out,
    }
    with open(json_path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")
    lines = [
        "# gateway capture: what a correct analyser must find",
        "",
        "Written by `make_gateway.py` (same rows as `expected.json`). Frame numbers are",
        "the same in `gateway.pcapng` and `gateway.pcap` (%d frames). `frames` are the"
        % len(packets),
        "frames carrying the request (or the ClientHello); pixel7's user refuses all",
        "purposes at %s; redmi is never asked; the laptop %s is not in the case"
        % (iso(REFUSAL_S), U.ip4),
        "(ARP, DNS, HTTP, TLS without personal data: counted as an unknown device, no findings).",
        "`rules` follow DESIGN.md §6 for these states (metadata-only rows: TLS without keys).",
        "",
        "| frames | time (UTC) | device | client → server | host | request | data (type, encoding, where) | consent | expected rules | what it tests |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in out:
        fr = r["frames"]
        frs = ", ".join(map(str, fr)) if len(fr) <= 4 else "%d–%d (%d)" % (fr[0], fr[-1], len(fr))
        reqs = "TLS ClientHello (SNI)" if r["tls"] else "%s %s" % (r["method"], r["path"])
        data = "; ".join("%s, %s, `%s`" % (x["type"], x["encoding"], x["where"])
                         for x in r["data"]) or "— (metadata only)"
        lines.append("| %s | %s | %s | %s → %s | %s | %s | %s | %s | %s | %s |" % (
            frs, r["at"][11:23], r["device"], r["client"], r["server"], r["host"], reqs,
            data, r["consent"], ", ".join(r["rules"]) or "none", r["note"]))
    with open(md_path, "w") as f:
        f.write("\n".join(lines) + "\n")


write_pcapng(os.path.join(HERE, "gateway.pcapng"))
write_pcap(os.path.join(HERE, "gateway.pcap"))
write_case(os.path.join(HERE, "consentry.toml"))
out = rows_out()
write_expected(os.path.join(HERE, "expected.json"), os.path.join(HERE, "EXPECTED.md"), out)
print("wrote gateway.pcapng, gateway.pcap (%d frames), consentry.toml, expected.json, "
      "EXPECTED.md (%d rows)" % (len(packets), len(out)))
