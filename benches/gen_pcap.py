#!/usr/bin/env python3
"""Generates a large, realistic HTTP capture for benchmarking the pcap tap against
peer tools (issue 3; benches/compare_pcap.sh runs them).

Usage:
  python3 benches/gen_pcap.py --size-mb 520 --out /tmp/bench.pcap \
      --case-out /tmp/bench.toml --id-needle-out /tmp/bench.needle

Writes a classic pcap (microseconds, Ethernet) of at least N×10^6 bytes, streaming
(memory stays small whatever the size): 10 devices (10.77.0.11–20) talk to a dozen
first- and third-party hosts over thousands of interleaved TCP connections (keep-alive,
1–6 requests each; MSS-sized segments, delayed ACKs, correct IPv4/TCP checksums),
with DNS over UDP before some of them and TLS connections (real ClientHellos from
Python's ssl module, opaque records after) to a few. Requests are JSON and form POSTs
and GETs of 0.3–16 KB built from templates varied per request; about 10 % carry one
of the sending device's identifiers as plain text, URL-encoded, base64 or MD5 hex,
and a third of those are placed so that the value straddles a TCP segment boundary
(per-packet matchers such as ngrep or tshark `frame contains` miss them).

--case-out writes the matching case file (all 10 devices with their identifiers, a
refusal per device halfway through); --id-needle-out writes one identifier string
(device 0's advertising id, plain) for the peer tools' single-content rule. The
summary on stderr says how many requests carry it and how many of those are split.
Deterministic (fixed seed); stdlib only. All data synthetic.
"""
import argparse
import base64
import hashlib
import random
import ssl
import struct
import sys
import time
from array import array
from datetime import datetime, timezone
from urllib.parse import quote

MSS = 1460
T0 = int(datetime(2026, 11, 28, 12, 0, 0, tzinfo=timezone.utc).timestamp())
GW_MAC = bytes.fromhex("020000000001")
ACTIVE_FLOWS = 160


def luhn_complete(prefix14):
    for c in "0123456789":
        digits = prefix14 + c
        total = 0
        for i, ch in enumerate(reversed(digits)):
            x = int(ch) * (2 if i % 2 else 1)
            total += x - 9 if x > 9 else x
        if total % 10 == 0:
            return digits
    raise AssertionError


def make_devices(rng):
    devs = []
    for i in range(10):
        r = random.Random(1000 + i)
        devs.append({
            "id": "phone%02d" % i,
            "ip": "10.77.0.%d" % (11 + i),
            "mac": bytes([2, 0, 0, 0x77, 0, 11 + i]),
            "ids": {
                "advertising_id": "%08x-%04x-4%03x-a%03x-%012x" % (
                    r.getrandbits(32), r.getrandbits(16), r.getrandbits(12),
                    r.getrandbits(12), r.getrandbits(48)),
                "android_id": "%016x" % r.getrandbits(64),
                "imei": luhn_complete("35%012d" % r.randrange(10**12)),
                "oaid": "%08x-%04x-%04x-%04x-%012x" % (
                    r.getrandbits(32), r.getrandbits(16), r.getrandbits(16),
                    r.getrandbits(16), r.getrandbits(48)),
                "phone": "+86138%08d" % r.randrange(10**8),
                "email": "tester%02d@example.org" % i,
            },
            "location": (round(31.1 + r.random() * 0.3, 6), round(121.3 + r.random() * 0.3, 6)),
        })
    return devs


HOSTS = [  # (host, server ip, port)
    ("api.example-shop.com", "198.51.100.10", 80),
    ("img.exshop-cdn.net", "198.51.100.11", 80),
    ("ulogs.umeng.com", "203.0.113.21", 80),
    ("rt.applovin.com", "203.0.113.31", 80),
    ("t.appsflyer.com", "203.0.113.41", 80),
    ("sdk.e.qq.com", "203.0.113.51", 80),
    ("api2.amplitude.com", "203.0.113.61", 80),
    ("app-measurement.com", "203.0.113.71", 80),
    ("api16-access-sg.pangle.io", "203.0.113.81", 8080),
    ("graph.facebook.com", "203.0.113.91", 80),
    ("api.mixpanel.com", "203.0.113.101", 80),
    ("log.unknown-partner.io", "203.0.113.111", 8080),
]
TLS_HOSTS = ["api.example-shop.com", "graph.facebook.com", "ulogs.umeng.com",
             "app-measurement.com", "firebaseinstallations.googleapis.com"]
TLS_IPS = {"firebaseinstallations.googleapis.com": "203.0.113.121"}
PATHS = ["/v1/collect", "/unify_logs", "/v2/events", "/api/v6.3/androidevent", "/2/httpapi",
         "/a", "/track", "/v1/batch", "/report", "/launch", "/sdk/config", "/v3/log"]
WORDS = ["click", "view", "session_start", "zh_CN", "Android", "arm64-v8a", "com.example.shop",
         "4.2.0", "wifi", "true", "false", "null", "screen_view", "add_to_cart", "checkout",
         "banner", "interstitial", "rewarded", "feed", "search", "product_detail"]


# --- checksums: RFC 1071 sums are byte-order independent, so sum native 16-bit words
def wsum(b):
    if len(b) & 1:
        return sum(array("H", b[:-1])) + b[-1]  # little-endian host: last byte is low
    return sum(array("H", b))


def fold(s):
    while s >> 16:
        s = (s & 0xFFFF) + (s >> 16)
    return s


assert sys.byteorder == "little", "the checksum shortcut assumes a little-endian host"


class Side:
    """Constant parts of one direction of a flow (addresses, ports, partial sums)."""

    def __init__(self, smac, dmac, sip, dip, sport, dport):
        self.eth = dmac + smac + b"\x08\x00"
        sa, da = bytes(map(int, sip.split("."))), bytes(map(int, dip.split(".")))
        self.addrs = sa + da
        self.ports = struct.pack("!HH", sport, dport)
        self.ip_partial = wsum(b"\x45\x00" + b"\x40\x00" + b"\x40\x06" + sa + da)
        self.ps_partial = wsum(sa + da + b"\x00\x06")
        self.udp_ps = wsum(sa + da + b"\x00\x11")
        self.ident = 0


def tcp_frame(side, seq, ack, flags, payload):
    tlen = 20 + len(payload)
    hdr = side.ports + struct.pack("!IIBBH", seq & 0xFFFFFFFF, ack & 0xFFFFFFFF, 0x50, flags,
                                   64240)
    s = side.ps_partial + wsum(struct.pack("!H", tlen)) + wsum(hdr) + (wsum(payload) if payload else 0)
    tcs = struct.pack("<H", ~fold(s) & 0xFFFF)
    side.ident = (side.ident + 1) & 0xFFFF
    total = 20 + tlen
    ipc = ~fold(side.ip_partial + wsum(struct.pack("!HH", total, side.ident))) & 0xFFFF
    ip = b"\x45\x00" + struct.pack("!HH", total, side.ident) + b"\x40\x00\x40\x06" + \
        struct.pack("<H", ipc) + side.addrs
    return side.eth + ip + hdr + tcs + b"\x00\x00" + payload


def udp_frame(side, payload):
    ulen = 8 + len(payload)
    hdr = side.ports + struct.pack("!H", ulen)
    s = side.udp_ps + wsum(struct.pack("!H", ulen)) + wsum(hdr) + wsum(payload)
    ucs = struct.pack("<H", (~fold(s) & 0xFFFF) or 0xFFFF)
    side.ident = (side.ident + 1) & 0xFFFF
    total = 20 + ulen
    partial = side.ip_partial - wsum(b"\x40\x06") + wsum(b"\x40\x11")
    ipc = ~fold(partial + wsum(struct.pack("!HH", total, side.ident))) & 0xFFFF
    ip = b"\x45\x00" + struct.pack("!HH", total, side.ident) + b"\x40\x00\x40\x11" + \
        struct.pack("<H", ipc) + side.addrs
    return side.eth + ip + hdr + ucs + payload


# --- payload templates --------------------------------------------------------------
def noise_chunks(rng, n):
    """JSON-ish event fragments, precomputed once and recombined per request."""
    out = []
    for _ in range(n):
        k = rng.randrange(4)
        if k == 0:
            v = '"%016x"' % rng.getrandbits(64)
        elif k == 1:
            v = '"%s"' % base64.b64encode(rng.randbytes(rng.choice([12, 24, 48]))).decode()
        elif k == 2:
            v = str(rng.randrange(10**6))
        else:
            v = '"%s"' % rng.choice(WORDS)
        out.append('{"k":"%s","v":%s,"t":%d}' % (rng.choice(WORDS), v, rng.randrange(10**5)))
    return out


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
    # Random, session id and key share from a seed: deterministic output.
    r = random.Random(sni)
    ch[11:43] = r.randbytes(32)
    sid_len = ch[43]
    ch[44:44 + sid_len] = r.randbytes(sid_len)
    p = 44 + sid_len
    p += 2 + struct.unpack_from("!H", ch, p)[0]  # cipher suites
    p += 1 + ch[p]  # compression methods
    end = p + 2 + struct.unpack_from("!H", ch, p)[0]
    p += 2
    while p < end:
        etype, elen = struct.unpack_from("!HH", ch, p)
        if etype == 0x0033:  # key_share: (group, key) entries after a 2-byte list length
            q = p + 6
            while q < p + 4 + elen:
                klen = struct.unpack_from("!H", ch, q + 2)[0]
                ch[q + 4:q + 4 + klen] = r.randbytes(klen)
                q += 4 + klen
        p += 4 + elen
    return bytes(ch)


def server_hello(rng):
    """A TLS 1.3 ServerHello (what follows it is encrypted, so opaque records do)."""
    ext = struct.pack("!HHH", 0x002B, 2, 0x0304)
    ext += struct.pack("!HHHH", 0x0033, 36, 0x001D, 32) + rng.randbytes(32)
    body = struct.pack("!H", 0x0303) + rng.randbytes(32) + b"\x20" + rng.randbytes(32)
    body += struct.pack("!HB", 0x1301, 0) + struct.pack("!H", len(ext)) + ext
    hs = b"\x02" + struct.pack("!I", len(body))[1:] + body
    return struct.pack("!BHH", 22, 0x0303, len(hs)) + hs


def dns_query(txid, name, answer_ip=None):
    q = b"".join(bytes([len(p)]) + p.encode() for p in name.split(".")) + b"\0"
    if answer_ip is None:
        return struct.pack("!HHHHHH", txid, 0x0100, 1, 0, 0, 0) + q + b"\x00\x01\x00\x01"
    return (struct.pack("!HHHHHH", txid, 0x8180, 1, 1, 0, 0) + q + b"\x00\x01\x00\x01"
            + b"\xc0\x0c\x00\x01\x00\x01" + struct.pack("!IH", 300, 4)
            + bytes(map(int, answer_ip.split("."))))


class Gen:
    def __init__(self, seed=20261128):
        self.rng = random.Random(seed)
        self.devices = make_devices(self.rng)
        self.noise = noise_chunks(self.rng, 4000)
        self.hellos = {h: client_hello(h) for h in TLS_HOSTS}
        self.needle = self.devices[0]["ids"]["advertising_id"]
        self.stats = {"requests": 0, "carrying": 0, "needle_requests": 0, "needle_split": 0,
                      "split": 0, "flows": 0, "tls_flows": 0, "dns": 0}
        self.next_port = {}

    # -- request bodies ---------------------------------------------------------------
    def encode(self, kind, value, form):
        rng = self.rng
        enc = rng.choice(["plain", "plain", "url", "base64", "md5"])
        if enc == "md5":
            return enc, hashlib.md5(value.encode()).hexdigest()
        if enc == "base64":
            return enc, base64.b64encode(value.encode()).decode()
        if enc == "url":
            return enc, quote(value, safe="")
        return enc, value

    def body(self, dev, carry, form):
        """Returns (body bytes, carried text or None)."""
        rng = self.rng
        target = rng.choice([300, 600, 1200, 2500, 4000, 6000, 9000, 16000])
        parts = []
        size = 0
        noise = self.noise
        while size < target:
            c = noise[rng.randrange(len(noise))]
            parts.append(c)
            size += len(c) + 1
        ts = 1795910400 + rng.randrange(10**5)
        carried = None
        if carry:
            kind = rng.choice(list(dev["ids"]))
            if dev is self.devices[0] and rng.random() < 0.5:
                kind = "advertising_id"  # the needle, often enough to count
            value = dev["ids"][kind]
            if dev is self.devices[0] and kind == "advertising_id":
                enc = "plain"  # the needle: always as is, so peers can find it
            else:
                enc, value = self.encode(kind, value, form)
            carried = (kind, enc, value)
        if form:
            fields = ["sdk=4.2.0", "ts=%d" % ts, "seq=%d" % self.stats["requests"]]
            if carried:
                v = carried[2] if carried[1] != "plain" else quote(carried[2], safe="-@")
                fields.append("%s=%s" % (carried[0], v))
            fields.append("events=" + quote("[" + ",".join(parts) + "]", safe=""))
            return "&".join(fields).encode(), carried
        head = '{"ts":%d,"app":"com.example.shop","v":"4.2.0"' % ts
        if carried:
            head += ',"device":{"%s":"%s"}' % (carried[0], carried[2])
        return (head + ',"events":[' + ",".join(parts) + "]}").encode(), carried

    def request(self, host, dev):
        rng = self.rng
        self.stats["requests"] += 1
        carry = rng.random() < 0.10
        kind = rng.random()
        path = rng.choice(PATHS)
        ua = "ExampleShop/4.2.0 (Linux; Android 14; %s)" % dev["id"]
        if kind < 0.15:  # GET with a query
            q = "?appid=1101152570&sdk=4.2.0&seq=%d" % self.stats["requests"]
            carried = None
            if carry:
                k = rng.choice(list(dev["ids"]))
                enc, v = self.encode(k, dev["ids"][k], True)
                if dev is self.devices[0] and k == "advertising_id":
                    enc, v = "plain", dev["ids"][k]
                carried = (k, enc, v)
                q += "&%s=%s" % (k, quote(v, safe="-@") if enc != "url" else v)
            head = ("GET %s%s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nAccept: */*\r\n"
                    "Accept-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n"
                    % (path, q, host, ua)).encode()
            return head, carried, None
        form = kind < 0.35
        body, carried = self.body(dev, carry, form)
        ctype = "application/x-www-form-urlencoded" if form else "application/json; charset=utf-8"
        head = ("POST %s HTTP/1.1\r\nHost: %s\r\nUser-Agent: %s\r\nContent-Type: %s\r\n"
                "Content-Length: %d\r\nAccept-Encoding: gzip\r\nConnection: keep-alive\r\n\r\n"
                % (path, host, ua, ctype, len(body))).encode()
        return head, carried, body

    def place_split(self, head, body, value):
        """Pads the body's start so the carried value straddles a segment boundary."""
        raw = head + body
        pos = raw.find(value.encode())
        if pos < 0:
            return head, body, False
        boundary = (pos // MSS + 1) * MSS
        want = boundary - len(value) // 2  # value starts here to be cut in its middle
        pad = want - pos
        if pad < 0:
            pad += MSS
        if body.startswith(b"{"):
            body = b'{"pad":"' + b"p" * max(pad - 10, 0) + b'",' + body[1:]
            # pad - 10 + 10 chars of wrapper = pad (when pad >= 10)
        else:
            body = b"pad=" + b"p" * max(pad - 5, 0) + b"&" + body
        head = head.replace(b"Content-Length: %d" % (len(raw) - len(head)),
                            b"Content-Length: %d" % len(body))
        raw2 = head + body
        p2 = raw2.find(value.encode())
        return head, body, p2 // MSS != (p2 + len(value) - 1) // MSS

    # -- flows ---------------------------------------------------------------------------
    def port_for(self, dev):
        p = self.next_port.get(dev["id"], 32768 + self.rng.randrange(2000))
        p = 32768 + (p - 32768 + 1) % 28000
        self.next_port[dev["id"]] = p
        return p

    def http_flow(self, dev, host, sip, sport):
        rng = self.rng
        cport = self.port_for(dev)
        c = Side(dev["mac"], GW_MAC, dev["ip"], sip, cport, sport)
        s = Side(GW_MAC, dev["mac"], sip, dev["ip"], sport, cport)
        cs, ss = rng.getrandbits(32), rng.getrandbits(32)
        yield tcp_frame(c, cs, 0, 0x02, b"")
        yield tcp_frame(s, ss, cs + 1, 0x12, b"")
        cs += 1
        ss += 1
        yield tcp_frame(c, cs, ss, 0x10, b"")
        for _ in range(rng.choice([1, 1, 2, 3, 4, 6])):
            head, carried, body = self.request(host, dev)
            body = body or b""
            split = False
            if carried:
                self.stats["carrying"] += 1
                if body and rng.random() < 0.35:
                    head, body, split = self.place_split(head, body, carried[2])
                self.stats["split"] += split
                if carried[2] == self.needle:
                    self.stats["needle_requests"] += 1
                    self.stats["needle_split"] += split
            data = head + body
            n = 0
            for i in range(0, len(data), MSS):
                chunk = data[i:i + MSS]
                last = i + MSS >= len(data)
                yield tcp_frame(c, cs, ss, 0x18 if last else 0x10, chunk)
                cs += len(chunk)
                n += 1
                if n % 2 == 0 and not last:
                    yield tcp_frame(s, ss, cs, 0x10, b"")
            rb = ('{"code":0,"msg":"ok","id":"%016x"}' % rng.getrandbits(64)).encode()
            if rng.random() < 0.2:
                rb = ('{"code":0,"config":[' + ",".join(
                    self.noise[rng.randrange(len(self.noise))] for _ in range(rng.randrange(5, 60)))
                    + "]}").encode()
            resp = (b"HTTP/1.1 200 OK\r\nServer: nginx\r\nContent-Type: application/json\r\n"
                    b"Content-Length: %d\r\nConnection: keep-alive\r\n\r\n" % len(rb)) + rb
            for i in range(0, len(resp), MSS):
                chunk = resp[i:i + MSS]
                yield tcp_frame(s, ss, cs, 0x18 if i + MSS >= len(resp) else 0x10, chunk)
                ss += len(chunk)
            yield tcp_frame(c, cs, ss, 0x10, b"")
        yield tcp_frame(c, cs, ss, 0x11, b"")
        yield tcp_frame(s, ss, cs + 1, 0x11, b"")
        yield tcp_frame(c, cs + 1, ss + 1, 0x10, b"")

    def tls_flow(self, dev, host, sip):
        rng = self.rng
        cport = self.port_for(dev)
        c = Side(dev["mac"], GW_MAC, dev["ip"], sip, cport, 443)
        s = Side(GW_MAC, dev["mac"], sip, dev["ip"], 443, cport)
        cs, ss = rng.getrandbits(32), rng.getrandbits(32)
        yield tcp_frame(c, cs, 0, 0x02, b"")
        yield tcp_frame(s, ss, cs + 1, 0x12, b"")
        cs += 1
        ss += 1
        yield tcp_frame(c, cs, ss, 0x10, b"")
        msgs = [(True, self.hellos[host])]
        rec = lambda n: struct.pack("!BHH", 23, 0x0303, n) + rng.randbytes(n)
        msgs.append((False, server_hello(rng) + b"\x14\x03\x03\x00\x01\x01"
                     + rec(rng.randrange(2000, 4000))))
        for _ in range(rng.randrange(1, 5)):
            msgs.append((True, rec(rng.randrange(200, 3000))))
            msgs.append((False, rec(rng.randrange(100, 8000))))
        for from_c, data in msgs:
            for i in range(0, len(data), MSS):
                chunk = data[i:i + MSS]
                if from_c:
                    yield tcp_frame(c, cs, ss, 0x18, chunk)
                    cs += len(chunk)
                else:
                    yield tcp_frame(s, ss, cs, 0x18, chunk)
                    ss += len(chunk)
            yield (tcp_frame(s, ss, cs, 0x10, b"") if from_c else tcp_frame(c, cs, ss, 0x10, b""))
        yield tcp_frame(c, cs, ss, 0x11, b"")
        yield tcp_frame(s, ss, cs + 1, 0x11, b"")
        yield tcp_frame(c, cs + 1, ss + 1, 0x10, b"")

    def dns(self, dev, host, ip):
        txid = self.rng.getrandbits(16)
        sport = self.rng.randrange(20000, 60000)
        c = Side(dev["mac"], GW_MAC, dev["ip"], "10.77.0.1", sport, 53)
        s = Side(GW_MAC, dev["mac"], "10.77.0.1", dev["ip"], 53, sport)
        self.stats["dns"] += 1
        yield udp_frame(c, dns_query(txid, host))
        yield udp_frame(s, dns_query(txid, host, ip))

    def new_flow(self):
        rng = self.rng
        dev = self.devices[rng.randrange(10)]
        self.stats["flows"] += 1
        if rng.random() < 0.12:
            host = rng.choice(TLS_HOSTS)
            ip = TLS_IPS.get(host) or next(h[1] for h in HOSTS if h[0] == host)
            self.stats["tls_flows"] += 1
            flow = self.tls_flow(dev, host, ip)
        else:
            host, ip, port = HOSTS[rng.randrange(len(HOSTS))]
            flow = self.http_flow(dev, host, ip, port)
        if rng.random() < 0.3:
            return chain(self.dns(dev, host, ip), flow)
        return flow


def chain(*gens):
    for g in gens:
        yield from g


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size-mb", type=float, default=520, help="minimum size, 10^6 bytes")
    ap.add_argument("--out", required=True)
    ap.add_argument("--case-out")
    ap.add_argument("--id-needle-out")
    ap.add_argument("--seed", type=int, default=20261128,
                    help="another seed gives other flows, hosts and bodies with the same devices; "
                         "the profile-guided build trains on one, so it never sees the benchmark's")
    a = ap.parse_args()
    target = int(a.size_mb * 1_000_000)
    g = Gen(a.seed)
    rng = g.rng
    started = time.time()
    t_us = 0
    written = 24
    packets = 0
    with open(a.out, "wb", buffering=1 << 22) as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 262144, 1))
        active = [g.new_flow() for _ in range(ACTIVE_FLOWS)]
        buf = []
        pack = struct.Struct("<IIII").pack
        while written < target:
            i = rng.randrange(ACTIVE_FLOWS)
            try:
                frame = next(active[i])
            except StopIteration:
                active[i] = g.new_flow()
                continue
            t_us += rng.randrange(5, 400)
            ts = T0 + t_us // 1_000_000
            buf.append(pack(ts, t_us % 1_000_000, len(frame), len(frame)))
            buf.append(frame)
            written += 16 + len(frame)
            packets += 1
            if len(buf) >= 8192:
                f.write(b"".join(buf))
                buf.clear()
        # Finish the open flows so every connection closes cleanly.
        for flow in active:
            for frame in flow:
                t_us += rng.randrange(5, 400)
                buf.append(pack(T0 + t_us // 1_000_000, t_us % 1_000_000, len(frame), len(frame)))
                buf.append(frame)
                written += 16 + len(frame)
                packets += 1
        f.write(b"".join(buf))
    end_iso = datetime.fromtimestamp(T0 + t_us / 2e6, timezone.utc)
    if a.case_out:
        with open(a.case_out, "w") as f:
            f.write('# Case of the benchmark capture written by benches/gen_pcap.py (synthetic).\n'
                    '[case]\nid = "bench-pcap"\n\n[app]\nname = "Example Shop"\n'
                    'package = "com.example.shop"\n'
                    'first_party = ["example-shop.com", "exshop-cdn.net"]\n\n')
            for dev in g.devices:
                f.write('[[device]]\nid = "%s"\naddresses = ["%s"]\n[device.identifiers]\n'
                        % (dev["id"], dev["ip"]))
                for k, v in dev["ids"].items():
                    f.write('%s = "%s"\n' % (k, v))
                f.write("location = { lat = %s, lon = %s }\n\n" % dev["location"])
            for dev in g.devices:
                f.write('[[consent]]\ndevice = "%s"\nat = "%s"\ndecision = "refused"\n\n'
                        % (dev["id"], end_iso.strftime("%Y-%m-%dT%H:%M:%S.%fZ")))
            f.write("[rules]\ngrace_ms = 1000\nfrequency_per_minute = 30\n")
    if a.id_needle_out:
        with open(a.id_needle_out, "w") as f:
            f.write(g.needle + "\n")
    st = g.stats
    print("wrote %s: %.1f MB, %d packets, %d flows (%d TLS), %d DNS exchanges, %d requests, "
          "%d carrying an identifier (%d split across segments); needle %s in %d requests "
          "(%d split); %.1f s"
          % (a.out, written / 1e6, packets, st["flows"], st["tls_flows"], st["dns"],
             st["requests"], st["carrying"], st["split"], g.needle, st["needle_requests"],
             st["needle_split"], time.time() - started), file=sys.stderr)


if __name__ == "__main__":
    main()
