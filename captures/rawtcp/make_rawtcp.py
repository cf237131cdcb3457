#!/usr/bin/env python3
"""Writes the "rawtcp" sample capture of consentry's pcap tap: a test phone whose SDKs
send personal data over their own cleartext TCP protocols and over a WebSocket, not in
HTTP requests, the way push and analytics SDKs keep long connections of their own.

Outputs, next to this script:
  rawtcp.pcap     classic pcap, link type 1 (Ethernet), microsecond timestamps.
  consentry.toml  the case: one phone, five identifiers, a refusal of everything at +10 s.
  expected.json   what a correct analyser must find, computed while writing: per TCP
                  connection its server, how many bytes the client sends, and its
                  exchanges, each with its method, time, first and last frame, and the
                  rule and data items (type, encoding, where) it must give.

Story (from 2026-12-04T09:00:00Z; the phone is 192.168.70.5, its resolver 192.168.70.1):
the phone resolves each server's name, then opens one TCP connection to it, sends its
bytes, reads a short answer and closes (FIN both ways). But for the WebSocket, no
connection speaks HTTP, TLS or DNS, so each is a metadata-only exchange whose client
bytes are searched (frames: SYN to the last FIN), or several, one per part of its
client bytes (a part ends after a second without any, five seconds after it began,
at 64 KiB or at the end):
  +1 s  JPush (s.jpush.cn, port 7000): an 8-byte binary header, then a JSON login with
        the IMEI and the Android id, sent in two segments that cut the IMEI in two.
  +2 s  Getui (sdk.open.getui.net, 5224): a text line with the OAID in base64.
  +3 s  Umeng (alog.umeng.com, 8080): a JSON document alone, advertising id inside.
  +4 s  Tencent GDT (mi.gdt.qq.com, 9443): a 4-byte ping, nothing personal.
  +5 s  Umeng over a WebSocket (ws.umeng.com, port 80): the HTTP upgrade offering
        permessage-deflate and its 101, then the client's masked messages — a text
        message in two fragments around a ping (the Android id), two compressed
        binary messages sharing the compressor's window (the advertising id; the
        second also the IMEI, and its advertising id only back-references into the
        first message), the second's frame cut across two segments — with the
        server's own message and the close between them. The upgrade is an HTTP
        exchange, each client message one more (method WS), as behind the proxy.
  +6 s  Umeng over UDP (plbslog.umeng.com, 8125): one datagram, a text report with
        the OAID; a UDP flow's first client datagram is searched at once.
  +7 s  Tencent GDT on port 80: a request whose line ends in `HTTP/1.` (not HTTP/1.x,
        though it starts like it), with the Android id in a header: searched as the
        connection's payload.
  +8 s  JPush again, a long connection (port 7000): a text login with the IMEI, a
        ping 0.4 s later (one part with the login), then after 2.6 s of silence, at
        +11 s, a message with the OAID: a part of its own, after the refusal.
  +10 s the user refuses all purposes (the case file).
  +12 s Tencent GDT again: a binary header and the MD5 of the Android id, in hex.
  +13 s Umeng through a SOCKS4a proxy on the gateway (192.168.70.1:1080): the request
        names ulogs.umeng.com:80, the proxy grants it, and the tunnel carries an HTTP
        POST with the OAID in a form (read as HTTP, named by its Host).
  +14 s Getui again: 70 000 bytes of heartbeats, then the IMEI: the first 64 KiB are
        one part (nothing personal: an advertising id line at its end is cut in two
        by the part's end), the rest with the IMEI the next, which also finds the
        advertising id from the end of the part before (`payload-across-parts`).
  +15 s Umeng over UDP again, the same flow: a second datagram with the IMEI, the
        flow's second part.
  +7 s  a DNS query for <MD5 of the IMEI>.b.metrics-sdk.example (an SDK sending an
        identifier in a name it looks up): the only lookup over UDP that is an
        exchange.
  +0.5 s the phone's DHCPREQUEST (broadcast from 0.0.0.0), its host name
        `android-<Android id>`: the system's, not the app's, not searched (the case
        lists the phone's MAC address, which names it before it has its address).
  +11 s DNS over TCP to the resolver: a plain lookup, then a query for <SHA-1 of the
        advertising id>.t.metrics-sdk.example, after the refusal: an exchange of its
        own (the lookup before it none).
  +8.6 s DNS over TCP of which the tap saw only the resolver's side (asymmetric routing):
        its answer for cnlogs.umeng.com, its first byte arriving last; at +9 s a
        connection to that address (port 7001) with the OAID, named by the answer.
  +2 s  Android's wireless debugging announcing itself by mDNS (`_adb-tls-connect._tcp`,
        its instance named by the serial number, which the case lists): the system's,
        not the app's, so no exchange and no finding.
  +15 s an mDNS announcement the phone multicasts (224.0.0.251:5353): a file-sharing
        SDK's service instance, the Android id in its TXT record.
  +3 s and +15 s: SSDP (HTTP over UDP) to the multicast group 239.255.255.250:1900: a
        search for casting receivers (nothing personal; a NUL after it), and a casting
        SDK's announcement of the phone as a media renderer whose UPnP device UUID is
        the advertising id (after the refusal): each an HTTP request (scheme `httpu`).
Every IPv4 header and TCP/UDP checksum is valid. Deterministic, standard library only,
all values synthetic (DESIGN.md section 10's examples).

Checked with tshark 4.0: `tshark -r rawtcp.pcap -q -z conv,tcp` lists the thirteen
TCP connections (`conv,udp` the UDP report, the SSDP datagrams and the DNS lookups;
`-Y 'tcp.port == 53 && dns'` the two queries over TCP and their answers, and with
`-o tcp.reassemble_out_of_order:TRUE` also the answer seen from the resolver only;
`-Y ssdp` reads the search and the NOTIFY as HTTP requests, `-Y mdns -V` the
announcement's PTR and TXT records); `-Y websocket -V` shows the three client messages unmasked, joined and
inflated (the Android id; the advertising id; the advertising id and the IMEI);
`-z expert` shows no errors and one warning: tshark, which picks dissectors by port,
reads the port-7000 payload as Gryphon and calls it invalid. Apart from that, the
WebSocket's upgrade and the port-80 connection (which tshark reads as an HTTP request
and its 400, where consentry sees no valid request line), no frame dissects as
anything above TCP but DNS and "data".
Run: python3 captures/rawtcp/make_rawtcp.py
"""
import base64
import hashlib
import json
import os
import struct
import sys
import zlib
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
# captures/pcapkit.py: the packet-building helpers the capture generators share.
sys.path.insert(0, os.path.dirname(HERE))
from pcapkit import (ACK, FIN, PSH, SYN, dns_message, ipv4_header, luhn_ok,  # noqa: E402
                     mac, qname, tcp_segment, udp_datagram)

T0 = datetime(2026, 12, 4, 9, 0, 0, tzinfo=timezone.utc)
T0_US = int(T0.timestamp()) * 1_000_000
REFUSAL_S = 10

PHONE, PHONE_MAC = "192.168.70.5", "02:00:00:70:00:05"
RESOLVER, GATEWAY_MAC = "192.168.70.1", "02:00:00:70:00:01"
IMEI = "490154203237518"
ANDROID_ID = "9774d56d682e549c"
ADVERTISING_ID = "38400000-8cf0-11bd-b23e-10b96e40000d"
OAID = "a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b"
SERIAL = "R58M123ABC"
# consentry hands a connection's client bytes out in parts of at most this much
# (FlowLimits::max_unparsed_bytes), searching up to 1 MiB of them (max_unparsed_depth).
PART = 64 << 10
# SSDP's IPv4 multicast group and the Ethernet address it maps to (RFC 1112 §6.4).
SSDP_GROUP, SSDP_MAC = "239.255.255.250", "01:00:5e:7f:ff:fa"

packets = []      # (time in µs since T0, Ethernet frame)
connections = []  # expected.json rows


def frame(t_us, from_phone, ip_packet):
    macs = (mac(GATEWAY_MAC), mac(PHONE_MAC)) if from_phone else (mac(PHONE_MAC), mac(GATEWAY_MAC))
    packets.append((t_us, macs[0] + macs[1] + b"\x08\x00" + ip_packet))
    return len(packets)


def ipv4(src, dst, proto, payload):
    return ipv4_header(src, dst, proto, len(payload), len(packets) + 1) + payload


def lookup(t_us, name, address, txid):
    port = 40000 + txid
    q = dns_message(txid, name)
    frame(t_us, True, ipv4(PHONE, RESOLVER, 17, udp_datagram(PHONE, RESOLVER, port, 53, q)))
    a = dns_message(txid, name, address)
    frame(t_us + 2_000, False, ipv4(RESOLVER, PHONE, 17, udp_datagram(RESOLVER, PHONE, 53, port, a)))


def at(t_us):
    return (T0 + timedelta(microseconds=t_us)).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def conversation(t_s, server, port, sport, steps):
    """One TCP connection: handshake, then `steps` — (from_phone, bytes) segments in
    order, 1 ms apart, or (None, µs) for a pause — then FIN both ways. Returns the
    SYN's frame, the last FIN's (the ACK after it belongs to no open connection), and
    per segment step its frame and time."""
    t = t_s * 1_000_000
    cseq, sseq = 1_000_000 + sport, 7_000_000 + port
    c, s = cseq + 1, sseq + 1

    def seg(from_phone, seq, ack, flags, payload=b""):
        nonlocal t
        t += 1_000
        src, dst, sp, dp = (PHONE, server, sport, port) if from_phone else (server, PHONE, port, sport)
        return frame(t, from_phone, ipv4(src, dst, 6, tcp_segment(src, dst, sp, dp, seq, ack, flags, payload)))

    first = seg(True, cseq, 0, SYN)
    seg(False, sseq, cseq + 1, SYN | ACK)
    seg(True, c, s, ACK)
    placed = []
    for from_phone, data in steps:
        if from_phone is None:
            t += data
            continue
        if from_phone:
            n = seg(True, c, s, PSH | ACK, data)
            c += len(data)
        else:
            n = seg(False, s, c, PSH | ACK, data)
            s += len(data)
        placed.append((n, t))
    seg(True, c, s, FIN | ACK)
    last = seg(False, s, c + 1, FIN | ACK)
    seg(True, c + 1, s + 1, ACK)
    return first, last, placed


def connection(t_s, host, server, port, sport, pieces, answer, rule, data, note):
    """A connection in a protocol no parser reads: the client's `pieces` (a segment
    each), then the server's `answer`. One metadata-only exchange, SYN to last FIN."""
    steps = [(True, p) for p in pieces] + [(False, answer)]
    first, last, placed = conversation(t_s, server, port, sport, steps)
    connections.append({
        "host": host,
        "server": f"{server}:{port}",
        "client_bytes": sum(len(p) for p in pieces),
        "note": note,
        "exchanges": [{"method": "", "at": at(placed[0][1]), "frames": [first, last],
                       "rule": rule, "data": data}],
    })


def udp_report(t_s, host, server, port, sport, report, rule, data, note):
    """One datagram from the phone and the server's answer: a UDP flow, reported at
    its first datagram with that datagram searched. Returns its row, for
    `udp_later`."""
    t = t_s * 1_000_000 + 4_000
    first = frame(t, True, ipv4(PHONE, server, 17, udp_datagram(PHONE, server, sport, port, report)))
    frame(t + 1_000, False, ipv4(server, PHONE, 17, udp_datagram(server, PHONE, port, sport, b"OK")))
    row = {
        "host": host,
        "server": f"{server}:{port}",
        "transport": "udp",
        "client_bytes": len(report),
        "note": note,
        "exchanges": [{"method": "", "at": at(t), "frames": [first, first],
                       "rule": rule, "data": data}],
    }
    connections.append(row)
    return row


def udp_later(row, t_s, server, port, sport, report, rule, data, note):
    """A later datagram of `row`'s flow and its answer: the flow's next part, from
    that datagram to the flow's last frame (the answer: the flow ends with the
    capture)."""
    t = t_s * 1_000_000 + 4_000
    first = frame(t, True, ipv4(PHONE, server, 17, udp_datagram(PHONE, server, sport, port, report)))
    last = frame(t + 1_000, False, ipv4(server, PHONE, 17, udp_datagram(server, PHONE, port, sport, b"OK")))
    row["client_bytes"] += len(report)
    row["note"] += "; " + note
    row["exchanges"].append({"method": "", "at": at(t), "frames": [first, last],
                             "rule": rule, "data": data})


def ws_frame(opcode, payload, fin=True, rsv1=False, key=None):
    """A WebSocket frame (RFC 6455 5.2); masked with `key` when given (a client's)."""
    head = bytes([(0x80 if fin else 0) | (0x40 if rsv1 else 0) | opcode])
    mask = 0x80 if key else 0
    n = len(payload)
    if n < 126:
        head += bytes([mask | n])
    elif n <= 0xFFFF:
        head += bytes([mask | 126]) + struct.pack("!H", n)
    else:
        head += bytes([mask | 127]) + struct.pack("!Q", n)
    if key:
        return head + key + bytes(b ^ key[i % 4] for i, b in enumerate(payload))
    return head + payload


def websocket(t_s, host, server, port, sport):
    """An analytics SDK's WebSocket: the upgrade (permessage-deflate offered and
    accepted), a text message in two fragments around a ping, two compressed binary
    messages sharing the compressor's window (the second mostly back-references into
    the first), the second's frame cut across two segments; the server's own message
    and close between them, which are not read."""
    key = base64.b64encode(bytes(range(16)))
    accept = base64.b64encode(hashlib.sha1(key + b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11").digest())
    upgrade = (f"GET /v1/stream?app=4f7aa3c1e0b0 HTTP/1.1\r\nHost: {host}\r\nUpgrade: websocket\r\n"
               "Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n"
               "Sec-WebSocket-Extensions: permessage-deflate; client_max_window_bits\r\n").encode() + \
        b"Sec-WebSocket-Key: " + key + b"\r\n\r\n"
    switched = (b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                b"Sec-WebSocket-Accept: " + accept + b"\r\nSec-WebSocket-Extensions: permessage-deflate\r\n\r\n")
    masks = [bytes([0x5A, 0xC3, 0x11, n]) for n in range(8)]
    hello = json.dumps({"event": "open", "android_id": ANDROID_ID}, separators=(",", ":")).encode()
    half = len(hello) // 2
    text = (ws_frame(1, hello[:half], fin=False, key=masks[0]) + ws_frame(9, b"", key=masks[1])
            + ws_frame(0, hello[half:], key=masks[2]))
    deflater = zlib.compressobj(6, zlib.DEFLATED, -15)

    def compressed(data):
        out = deflater.compress(data) + deflater.flush(zlib.Z_SYNC_FLUSH)
        assert out.endswith(b"\x00\x00\xff\xff")
        return out[:-4]

    one = json.dumps({"event": "view", "advertising_id": ADVERTISING_ID, "seq": 1},
                     separators=(",", ":")).encode()
    two = json.dumps({"event": "view", "advertising_id": ADVERTISING_ID, "seq": 2, "imei": IMEI},
                     separators=(",", ":")).encode()
    first_msg = ws_frame(2, compressed(one), rsv1=True, key=masks[3])
    two_deflated = compressed(two)
    # The id in the second message is a back-reference into the first: only the
    # shared window makes it readable.
    try:
        alone = zlib.decompressobj(-15).decompress(two_deflated + b"\x00\x00\xff\xff")
    except zlib.error:
        alone = b""
    assert ADVERTISING_ID.encode() not in alone
    second_msg = ws_frame(2, two_deflated, rsv1=True, key=masks[4])
    cut = len(second_msg) // 2
    steps = [(True, upgrade), (False, switched), (True, text),
             (False, ws_frame(1, b'{"ok":1}')), (True, first_msg),
             (True, second_msg[:cut]), (True, second_msg[cut:]),
             (True, ws_frame(8, b"\x03\xe8", key=masks[5])), (False, ws_frame(8, b"\x03\xe8"))]
    first, last, placed = conversation(t_s, server, port, sport, steps)
    path = "/v1/stream?app=4f7aa3c1e0b0"
    rows = [
        {"method": "GET", "path": path, "at": at(placed[0][1]), "frames": [placed[0][0], placed[1][0]],
         "rule": None, "data": []},
        {"method": "WS", "path": path, "at": at(placed[2][1]), "frames": [placed[2][0], placed[2][0]],
         "rule": "share-before-consent", "data": [["android_id", "plain", "body:$.android_id"]]},
        {"method": "WS", "path": path, "at": at(placed[4][1]), "frames": [placed[4][0], placed[4][0]],
         "rule": "share-before-consent",
         "data": [["advertising_id", "plain", "body:$.advertising_id"]]},
        {"method": "WS", "path": path, "at": at(placed[5][1]), "frames": [placed[5][0], placed[6][0]],
         "rule": "share-before-consent",
         "data": [["advertising_id", "plain", "body:$.advertising_id"], ["imei", "plain", "body:$.imei"]]},
    ]
    connections.append({
        "host": host,
        "server": f"{server}:{port}",
        "client_bytes": sum(len(d) for c, d in steps if c),
        "note": "WebSocket: the upgrade is an HTTP exchange, each client message one more "
                "(method WS); the third message's advertising id is only back-references "
                "into the second's window",
        "exchanges": rows,
    })
    return first, last


def socks4a_tunnel(t_s, host, sport):
    """An SDK reaching its server through a SOCKS4a proxy on the gateway (port 1080):
    the request names the host (address 0.0.0.1), the proxy grants it, and the
    tunnel carries an HTTP POST with the OAID in a form: read as HTTP, named by its
    Host, the SOCKS handshake no exchange of its own."""
    request = b"\x04\x01" + struct.pack("!H", 80) + b"\x00\x00\x00\x01" + b"sdk\x00" + host.encode() + b"\x00"
    granted = b"\x00\x5a" + b"\x00" * 6
    body = b"oaid=" + OAID.encode() + b"&v=3"
    post = (f"POST /v2/report HTTP/1.1\r\nHost: {host}\r\n"
            f"Content-Type: application/x-www-form-urlencoded\r\nContent-Length: {len(body)}\r\n\r\n").encode() + body
    ok = b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\n\r\n"
    steps = [(True, request), (False, granted), (True, post), (False, ok)]
    first, last, placed = conversation(t_s, RESOLVER, 1080, sport, steps)
    connections.append({
        "host": host,
        "server": f"{RESOLVER}:1080",
        "client_bytes": sum(len(d) for f, d in steps if f is True),
        "note": "a SOCKS4a tunnel through the gateway's proxy: the request inside is read "
                "as HTTP and named by its Host; after the refusal",
        "exchanges": [
            {"method": "POST", "path": "/v2/report", "at": at(placed[2][1]),
             "frames": [placed[2][0], placed[3][0]],
             "rule": "share-after-refusal", "data": [["oaid", "plain", "form:oaid"]]},
        ],
    })


def ssdp(t_s, sport, message, rule, data, note):
    """A datagram from the phone to SSDP's multicast group (port 1900): HTTP over UDP,
    each datagram one request (scheme `httpu`), with no answer on its flow (devices
    answer a search from their own addresses, to the phone's port)."""
    t = t_s * 1_000_000 + 6_000
    ip = ipv4(PHONE, SSDP_GROUP, 17, udp_datagram(PHONE, SSDP_GROUP, sport, 1900, message))
    packets.append((t, mac(SSDP_MAC) + mac(PHONE_MAC) + b"\x08\x00" + ip))
    n = len(packets)
    method, target = message.split(b" ")[:2]
    connections.append({
        "host": SSDP_GROUP,
        "server": f"{SSDP_GROUP}:1900",
        "transport": "udp",
        "scheme": "httpu",
        "client_bytes": len(message),
        "note": note,
        "exchanges": [{"method": method.decode(), "path": target.decode(), "at": at(t),
                       "frames": [n, n], "rule": rule, "data": data}],
    })


def one_packet_row(host, server, client_bytes, note, t_us, n, rule, data, transport=None,
                   scheme=None):
    """The expected.json row of a flow whose one exchange is metadata only, at frame `n`
    and time `t_us` (`transport` and `scheme` when not TCP's defaults)."""
    row = {"host": host, "server": server}
    if transport:
        row["transport"] = transport
    if scheme:
        row["scheme"] = scheme
    row.update({"client_bytes": client_bytes, "note": note,
                "exchanges": [{"method": "", "at": at(t_us), "frames": [n, n], "rule": rule,
                               "data": data}]})
    connections.append(row)


def dns_beacon(t_s, name, answer, txid, rule, data, note):
    """A DNS query from the phone whose name an SDK made of an identifier, and the
    resolver's answer: an exchange of its own (scheme `dns`, metadata only, the name
    its payload), since the analysis finds personal data in the name; the other
    lookups are not exchanges."""
    t = t_s * 1_000_000 + 8_000
    port = 40000 + txid
    q = dns_message(txid, name)
    n = frame(t, True, ipv4(PHONE, RESOLVER, 17, udp_datagram(PHONE, RESOLVER, port, 53, q)))
    a = dns_message(txid, name, answer)
    frame(t + 2_000, False, ipv4(RESOLVER, PHONE, 17, udp_datagram(RESOLVER, PHONE, 53, port, a)))
    one_packet_row(name, f"{RESOLVER}:53", len(name), note, t, n, rule, data, "udp", "dns")


def dhcp_request(t_us, hostname, note):
    """The phone's DHCPREQUEST (RFC 2131), broadcast from 0.0.0.0:68 before it has its
    address, its host name option holding `hostname`: the system's, not the app's, so
    one metadata exchange whose bytes are not searched (scheme `dhcp`)."""
    chaddr = mac(PHONE_MAC) + bytes(10)
    options = (bytes([53, 1, 3]) + bytes([61, 7, 1]) + mac(PHONE_MAC)
               + bytes([50, 4]) + bytes(int(x) for x in PHONE.split("."))
               + bytes([12, len(hostname)]) + hostname.encode() + bytes([255]))
    bootp = (struct.pack("!BBBBIHH4s4s4s4s", 1, 1, 6, 0, 0x3903F326, 0, 0x8000,
                         bytes(4), bytes(4), bytes(4), bytes(4))
             + chaddr + bytes(64 + 128) + bytes([99, 130, 83, 99]) + options)
    src, dst = "0.0.0.0", "255.255.255.255"
    ip = ipv4(src, dst, 17, udp_datagram(src, dst, 68, 67, bootp))
    packets.append((t_us, mac("ff:ff:ff:ff:ff:ff") + mac(PHONE_MAC) + b"\x08\x00" + ip))
    one_packet_row(dst, f"{dst}:67", 0, note, t_us, len(packets), None, [], "udp", "dhcp")


def dns_tcp_beacon(t_s, sport, lookup_name, name, answer, rule, data, note):
    """DNS over TCP to the resolver (RFC 7766: each message behind its 2-byte length):
    a plain lookup, then a query whose name an SDK made of an identifier, each
    answered. Only the second is an exchange (scheme `dns`, at its segment)."""
    def framed(m):
        return struct.pack("!H", len(m)) + m
    steps = [(True, framed(dns_message(21, lookup_name))),
             (False, framed(dns_message(21, lookup_name, answer))),
             (True, framed(dns_message(22, name))),
             (False, framed(dns_message(22, name, answer)))]
    _, _, placed = conversation(t_s, RESOLVER, 53, sport, steps)
    n, t = placed[2]
    one_packet_row(name, f"{RESOLVER}:53", len(name), note, t, n, rule, data, scheme="dns")


def dns_tcp_answer_only(t_us, sport, name, address):
    """DNS over TCP of which only the resolver's side was captured (asymmetric routing
    past the tap): its SYN-ACK, then its answer for `name` behind the 2-byte length,
    in two segments that arrive in reverse order (the first byte last), then its FIN.
    No exchange; the answer names the later connections to `address`."""
    sseq = 7_000_000 + sport
    answer = struct.pack("!H", len(dns_message(23, name, address))) + dns_message(23, name, address)
    segments = [(sseq, SYN | ACK, b""), (sseq + 2, PSH | ACK, answer[1:]),
                (sseq + 1, PSH | ACK, answer[:1]), (sseq + 1 + len(answer), FIN | ACK, b"")]
    for i, (seq, flags, payload) in enumerate(segments):
        segment = tcp_segment(RESOLVER, PHONE, 53, sport, seq, 1_000_001 + sport, flags, payload)
        frame(t_us + (i + 1) * 1_000, False, ipv4(RESOLVER, PHONE, 6, segment))


def mdns_announcement(t_s, instance, service, txt, rule, data, note):
    """An mDNS response the phone multicasts from port 5353 (RFC 6762): a PTR record
    naming its service instance and the instance's TXT record. An exchange of its own
    (scheme `mdns`, metadata only, the datagram its payload) when the analysis finds
    personal data in it."""
    t = t_s * 1_000_000 + 9_000
    full = f"{instance}.{service}"
    ptr = qname(service) + struct.pack("!HHIH", 12, 1, 120, len(qname(full))) + qname(full)
    strings = b"".join(bytes([len(s)]) + s for s in txt)
    txt_rr = qname(full) + struct.pack("!HHIH", 16, 0x8001, 4500, len(strings)) + strings
    message = struct.pack("!HHHHHH", 0, 0x8400, 0, 2, 0, 0) + ptr + txt_rr
    group = "224.0.0.251"
    ip = ipv4(PHONE, group, 17, udp_datagram(PHONE, group, 5353, 5353, message))
    packets.append((t, mac("01:00:5e:00:00:fb") + mac(PHONE_MAC) + b"\x08\x00" + ip))
    one_packet_row(group, f"{group}:5353", len(message), note, t, len(packets), rule, data,
                   "udp", "mdns")


def mdns_system_announcement(t_s, instance, host):
    """Android's wireless debugging (adbd) announcing itself by mDNS: a PTR record for
    `_adb-tls-connect._tcp` naming the instance `instance` (adb-<serial>-<random>), its
    SRV and TXT records and the host's address. The system's, not the app's: no
    exchange and no finding, though the case lists the serial; counted in the
    summary."""
    t = t_s * 1_000_000 + 9_000
    service = "_adb-tls-connect._tcp.local"
    full = f"{instance}.{service}"
    ip = bytes(int(x) for x in PHONE.split("."))
    records = (qname(service) + struct.pack("!HHIH", 12, 1, 120, len(qname(full))) + qname(full)
               + qname(full) + struct.pack("!HHIH", 33, 0x8001, 120, 6 + len(qname(host)))
               + struct.pack("!HHH", 0, 0, 37_000) + qname(host)
               + qname(full) + struct.pack("!HHIH", 16, 0x8001, 4500, 29)
               + bytes([28]) + b"v=ADB_SECURE_SERVICE_VERSION"
               + qname(host) + struct.pack("!HHIH", 1, 0x8001, 120, 4) + ip)
    message = struct.pack("!HHHHHH", 0, 0x8400, 0, 4, 0, 0) + records
    group = "224.0.0.251"
    packet = ipv4(PHONE, group, 17, udp_datagram(PHONE, group, 5353, 5353, message))
    packets.append((t, mac("01:00:5e:00:00:fb") + mac(PHONE_MAC) + b"\x08\x00" + packet))


def main():
    assert luhn_ok(IMEI)
    lookup(900_000, "s.jpush.cn", "203.0.113.10", 1)
    login = json.dumps({"appkey": "4f7aa3c1e0b0", "platform": "a", "imei": IMEI,
                        "android_id": ANDROID_ID}, separators=(",", ":")).encode()
    header = struct.pack("!IHH", len(login), 0x0001, 1)
    cut = len(header) + login.index(IMEI.encode()) + 7
    whole = header + login
    connection(1, "s.jpush.cn", "203.0.113.10", 7000, 51001, [whole[:cut], whole[cut:]],
               struct.pack("!IHH", 0, 0x8001, 1), "share-before-consent",
               [["imei", "plain", "payload"], ["android_id", "plain", "payload"]],
               "binary header then JSON: searched as raw bytes; the IMEI is cut across two segments")

    lookup(1_900_000, "sdk.open.getui.net", "203.0.113.20", 2)
    line = b"LOGIN 1 cid=7d3b0c oaid=" + base64.b64encode(OAID.encode()) + b"\r\n"
    connection(2, "sdk.open.getui.net", "203.0.113.20", 5224, 51002, [line], b"OK 1\r\n",
               "share-before-consent", [["oaid", "base64", "payload"]],
               "a text line carrying the OAID in base64")

    lookup(2_900_000, "alog.umeng.com", "203.0.113.30", 3)
    doc = json.dumps({"header": {"advertising_id": ADVERTISING_ID, "os": "Android"},
                      "events": [{"id": "launch"}]}, separators=(",", ":")).encode()
    connection(3, "alog.umeng.com", "203.0.113.30", 8080, 51003, [doc], b'{"ok":1}',
               "share-before-consent", [["advertising_id", "plain", "payload:$.header.advertising_id"]],
               "a JSON document alone on port 8080 (not HTTP): walked as JSON")

    lookup(3_900_000, "mi.gdt.qq.com", "203.0.113.40", 4)
    connection(4, "mi.gdt.qq.com", "203.0.113.40", 9443, 51004, [b"\x00\x00\x00\x04ping"],
               b"\x00\x00\x00\x04pong", "tracker-contact-before-consent", [],
               "nothing personal in the bytes: contact with an ad network before any decision")

    lookup(4_900_000, "ws.umeng.com", "203.0.113.31", 5)
    websocket(5, "ws.umeng.com", "203.0.113.31", 80, 51007)

    lookup(5_900_000, "plbslog.umeng.com", "203.0.113.32", 6)
    udp_row = udp_report(6, "plbslog.umeng.com", "203.0.113.32", 8125, 51008,
               b"report|v=2|oaid=" + OAID.encode() + b"|evt=launch", "share-before-consent",
               [["oaid", "plain", "payload"]],
               "UDP, one datagram: a text report with the OAID")

    broken = (b"GET /v1/report?ch=7 HTTP/1.\r\nHost: mi.gdt.qq.com\r\nX-Android-Id: "
              + ANDROID_ID.encode() + b"\r\n\r\n")
    connection(7, "mi.gdt.qq.com", "203.0.113.40", 80, 51009, [broken],
               b"HTTP/1.0 400 Bad Request\r\nContent-Length: 0\r\n\r\n", "share-before-consent",
               [["android_id", "plain", "payload"]],
               "starts like HTTP, but its request line's version is cut: searched as a payload")

    lookup(7_900_000, "s.jpush.cn", "203.0.113.10", 7)
    login = b"LOGIN imei=" + IMEI.encode() + b"\n"
    steps = [(True, login), (False, b"OK\n"), (None, 400_000), (True, b"PING\n"), (False, b"PONG\n"),
             (None, 2_600_000), (True, b"MSG oaid=" + OAID.encode() + b"\n"), (False, b"ACK\n")]
    first, last, placed = conversation(8, "203.0.113.10", 7000, 51010, steps)
    connections.append({
        "host": "s.jpush.cn",
        "server": "203.0.113.10:7000",
        "client_bytes": sum(len(d) for f, d in steps if f is True),
        "note": "a long connection: the login and a ping 0.4 s later are one part, before "
                "the refusal; a message 3 s later, after it, is a part of its own, judged "
                "at its own time",
        "exchanges": [
            {"method": "", "at": at(placed[0][1]), "frames": [first, placed[2][0]],
             "rule": "share-before-consent", "data": [["imei", "plain", "payload"]]},
            {"method": "", "at": at(placed[4][1]), "frames": [placed[4][0], last],
             "rule": "share-after-refusal", "data": [["oaid", "plain", "payload"]]},
        ],
    })

    digest = hashlib.md5(ANDROID_ID.encode()).hexdigest().encode()
    connection(12, "mi.gdt.qq.com", "203.0.113.40", 9443, 51005,
               [struct.pack("!IH", len(digest), 7) + digest], b"\x00\x00\x00\x00",
               "share-after-refusal", [["android_id", "md5", "payload"]],
               "after the refusal: the MD5 of the Android id")

    # Heartbeats, with the advertising id cut by the end of the first 64 KiB part
    # (18 of its 36 characters on each side), then more heartbeats to 70 000 bytes.
    beat = b"HEARTBEAT 0000\n"
    aaid = b"aaid=" + ADVERTISING_ID.encode() + b"\n"
    head = beat * ((PART - 23) // len(beat))
    head += b"PING 01\n"[:PART - 23 - len(head)]
    assert len(head) + len(b"aaid=") + 18 == PART
    filler = head + aaid
    filler += beat * ((70_000 - len(filler)) // len(beat))
    late = b"imei=" + IMEI.encode() + b"\n"
    assert len(filler) > PART
    pieces = [filler[i:i + 1400] for i in range(0, len(filler), 1400)] + [late]
    steps = [(True, p) for p in pieces] + [(False, b"OK\r\n")]
    first, last, placed = conversation(14, "203.0.113.20", 5224, 51006, steps)
    full = (PART - 1) // 1400  # the piece whose bytes fill the first part
    connections.append({
        "host": "sdk.open.getui.net",
        "server": "203.0.113.20:5224",
        "client_bytes": len(filler) + len(late),
        "note": f"the IMEI comes after {len(filler)} bytes: the first {PART} are one part "
                "(contact after the refusal: the advertising id at its end is cut in two), "
                "the rest with the IMEI the next, which also finds the advertising id "
                "across the cut",
        "exchanges": [
            {"method": "", "at": at(placed[0][1]), "frames": [first, placed[full][0]],
             "rule": "tracker-contact-before-consent", "data": []},
            {"method": "", "at": at(placed[full][1]), "frames": [placed[full][0], last],
             "rule": "share-after-refusal",
             "data": [["advertising_id", "plain", "payload-across-parts"],
                      ["imei", "plain", "payload"]]},
        ],
    })

    udp_later(udp_row, 15, "203.0.113.32", 8125, 51008, b"report|v=2|imei=" + IMEI.encode(),
              "share-after-refusal", [["imei", "plain", "payload"]],
              "a second datagram 9 s later, after the refusal, with the IMEI: the flow's next part")

    socks4a_tunnel(13, "ulogs.umeng.com", 51009)

    search = (b"M-SEARCH * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nMAN: \"ssdp:discover\"\r\n"
              b"MX: 1\r\nST: urn:dial-multiscreen-org:service:dial:1\r\n\r\n\x00")
    ssdp(3, 51020, search, None, [],
         "an SSDP search for casting receivers (ending in a NUL, as iOS's do): an HTTPU "
         "request, nothing personal, to no known party")
    notify = (b"NOTIFY * HTTP/1.1\r\nHOST: 239.255.255.250:1900\r\nCACHE-CONTROL: max-age=1800\r\n"
              b"LOCATION: http://192.168.70.5:49152/description.xml\r\nNT: upnp:rootdevice\r\n"
              b"NTS: ssdp:alive\r\nSERVER: Android/12 UPnP/1.0 Cling/2.0\r\n"
              b"USN: uuid:" + ADVERTISING_ID.encode() + b"::upnp:rootdevice\r\n\r\n")
    ssdp(15, 51021, notify, "share-after-refusal", [["advertising_id", "plain", "header:USN"]],
         "a casting SDK announcing the phone as a media renderer to the whole network, "
         "its UPnP device UUID the advertising id: an HTTPU request after the refusal")

    mdns_announcement(15, "Pixel-7", "_sharesdk._tcp.local", [b"aid=" + ANDROID_ID.encode(), b"v=4"],
                      "share-after-refusal", [["android_id", "plain", "payload"]],
                      "a file-sharing SDK announcing the phone's service to the local network by "
                      "mDNS, the Android id in its TXT record: an exchange of its own, after the "
                      "refusal")

    mdns_system_announcement(2, f"adb-{SERIAL}-vWgJpq", "Android-7.local")

    beacon = hashlib.md5(IMEI.encode()).hexdigest() + ".b.metrics-sdk.example"
    dns_beacon(7, beacon, "192.0.2.53", 9, "share-before-consent", [["imei", "md5", "payload"]],
               "a DNS query whose first label is the MD5 of the IMEI (the name reaches the "
               "name servers of metrics-sdk.example, whatever the answer): searched, "
               "an exchange of its own; the other lookups are not")

    beacon = hashlib.sha1(ADVERTISING_ID.encode()).hexdigest() + ".t.metrics-sdk.example"
    dns_tcp_beacon(11, 51030, "cfg.metrics-sdk.example", beacon, "192.0.2.53",
                   "share-after-refusal", [["advertising_id", "sha1", "payload"]],
                   "DNS over TCP: a plain lookup, then a query whose first label is the SHA-1 "
                   "of the advertising id, after the refusal: that query an exchange of its own")

    dns_tcp_answer_only(8_600_000, 51031, "cnlogs.umeng.com", "203.0.113.33")
    connection(9, "cnlogs.umeng.com", "203.0.113.33", 7001, 51032,
               [b"MSG oaid=" + OAID.encode() + b"\n"], b"ACK\n", "share-before-consent",
               [["oaid", "plain", "payload"]],
               "named by an answer over TCP of which only the resolver's side was captured, "
               "its first byte arriving last")

    dhcp_request(500_000, "android-" + ANDROID_ID,
                 "the phone's DHCPREQUEST on joining the network, its host name the Android "
                 "id (as Android 7 and earlier named themselves): the system's, not the app's, "
                 "so not searched and no finding")

    write_pcap(os.path.join(HERE, "rawtcp.pcap"))
    write_case(os.path.join(HERE, "consentry.toml"))
    with open(os.path.join(HERE, "expected.json"), "w") as f:
        json.dump({"capture": "rawtcp.pcap", "device": "phone", "packets": len(packets),
                   "refusal": (T0 + timedelta(seconds=REFUSAL_S)).strftime("%Y-%m-%dT%H:%M:%SZ"),
                   "connections": connections}, f, indent=1)
        f.write("\n")
    print(f"wrote rawtcp.pcap: {len(packets)} packets, {len(connections)} connections")


def write_pcap(path):
    with open(path, "wb") as f:
        f.write(struct.pack("<IHHiIII", 0xA1B2C3D4, 2, 4, 0, 0, 65535, 1))
        for t_us, data in packets:
            t = T0_US + t_us
            f.write(struct.pack("<IIII", t // 1_000_000, t % 1_000_000, len(data), len(data)))
            f.write(data)


def write_case(path):
    refusal = (T0 + timedelta(seconds=REFUSAL_S)).strftime("%Y-%m-%dT%H:%M:%SZ")
    with open(path, "w") as f:
        f.write(f"""# Case file of the rawtcp sample capture (make_rawtcp.py writes it).
# All identifier values are synthetic.

[case]
id = "rawtcp-2026-12-04"
title = "SDKs speaking their own TCP protocols and a WebSocket on one test phone"

[app]
name = "Example Shop"
package = "com.example.shop"
first_party = ["example-shop.com"]

[[device]]
id = "phone"
addresses = ["{PHONE}", "{PHONE_MAC}"]
[device.identifiers]
imei = "{IMEI}"
android_id = "{ANDROID_ID}"
advertising_id = "{ADVERTISING_ID}"
oaid = "{OAID}"
serial = "{SERIAL}"

[[consent]]
device = "phone"
at = "{refusal}"
decision = "refused"
""")


if __name__ == "__main__":
    main()
