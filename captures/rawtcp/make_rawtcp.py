#!/usr/bin/env python3
"""Writes the "rawtcp" sample capture of consentry's pcap tap: a test phone whose SDKs
send personal data over their own cleartext TCP protocols, not HTTP, the way push and
analytics SDKs keep long connections of their own.

Outputs, next to this script:
  rawtcp.pcap     classic pcap, link type 1 (Ethernet), microsecond timestamps.
  consentry.toml  the case: one phone, four identifiers, a refusal of everything at +10 s.
  expected.json   what a correct analyser must find, computed while writing: per TCP
                  connection its frames (SYN to last FIN), time of its first data byte,
                  server, how many bytes the client sends, and the rule and data items
                  (type, encoding, where) it must give.

Story (from 2026-12-04T09:00:00Z; the phone is 192.168.70.5, its resolver 192.168.70.1):
the phone resolves each server's name, then opens one TCP connection to it, sends its
bytes, reads a short answer and closes (FIN both ways). No connection speaks HTTP, TLS
or DNS, so each is a metadata-only exchange whose client bytes are searched:
  +1 s  JPush (s.jpush.cn, port 7000): an 8-byte binary header, then a JSON login with
        the IMEI and the Android id, sent in two segments that cut the IMEI in two.
  +2 s  Getui (sdk.open.getui.net, 5224): a text line with the OAID in base64.
  +3 s  Umeng (alog.umeng.com, 8080): a JSON document alone, advertising id inside.
  +4 s  Tencent GDT (mi.gdt.qq.com, 9443): a 4-byte ping, nothing personal.
  +10 s the user refuses all purposes (the case file).
  +12 s Tencent GDT again: a binary header and the MD5 of the Android id, in hex.
  +14 s Getui again: 70 000 bytes of heartbeats, then the IMEI, past the 64 KiB that
        consentry keeps of such a connection (not found; anomaly payload-not-searched).
Every IPv4 header and TCP/UDP checksum is valid. Deterministic, standard library only,
all values synthetic (DESIGN.md section 10's examples).

Checked with tshark 4.0: `tshark -r rawtcp.pcap -q -z conv,tcp` lists the six
connections, `-z expert` shows no errors or warnings (notes and chats only), and no
frame dissects as HTTP or TLS: above TCP only DNS and "data", but for one frame that
tshark, which picks dissectors by port, calls Gryphon (port 7000).
Run: python3 captures/rawtcp/make_rawtcp.py
"""
import base64
import hashlib
import json
import os
import struct
import sys
from datetime import datetime, timedelta, timezone

HERE = os.path.dirname(os.path.abspath(__file__))
# captures/pcapkit.py: the packet-building helpers the capture generators share.
sys.path.insert(0, os.path.dirname(HERE))
from pcapkit import (ACK, FIN, PSH, SYN, dns_message, ipv4_header, luhn_ok,  # noqa: E402
                     mac, tcp_segment, udp_datagram)

T0 = datetime(2026, 12, 4, 9, 0, 0, tzinfo=timezone.utc)
T0_US = int(T0.timestamp()) * 1_000_000
REFUSAL_S = 10

PHONE, PHONE_MAC = "192.168.70.5", "02:00:00:70:00:05"
RESOLVER, GATEWAY_MAC = "192.168.70.1", "02:00:00:70:00:01"
IMEI = "490154203237518"
ANDROID_ID = "9774d56d682e549c"
ADVERTISING_ID = "38400000-8cf0-11bd-b23e-10b96e40000d"
OAID = "a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b"
# consentry keeps this much of a connection's client bytes (FlowLimits::max_unparsed_bytes).
KEPT = 64 << 10

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


def connection(t_s, host, server, port, sport, pieces, answer, rule, data, note):
    """One TCP connection: handshake, the client's `pieces` (one segment each), the
    server's `answer`, FIN both ways. Returns nothing; records the expected row."""
    t = t_s * 1_000_000
    cseq, sseq = 1_000_000 + sport, 7_000_000 + port

    def seg(from_phone, seq, ack, flags, payload=b""):
        nonlocal t
        t += 1_000
        src, dst, sp, dp = (PHONE, server, sport, port) if from_phone else (server, PHONE, port, sport)
        return frame(t, from_phone, ipv4(src, dst, 6, tcp_segment(src, dst, sp, dp, seq, ack, flags, payload)))

    first = seg(True, cseq, 0, SYN)
    seg(False, sseq, cseq + 1, SYN | ACK)
    seg(True, cseq + 1, sseq + 1, ACK)
    c, s = cseq + 1, sseq + 1
    sent = b""
    for piece in pieces:
        seg(True, c, s, PSH | ACK, piece)
        c += len(piece)
        sent += piece
    seg(False, s, c, PSH | ACK, answer)
    s += len(answer)
    seg(True, c, s, FIN | ACK)
    # The exchange's frames run from the SYN to the last FIN (the ACK after it
    # belongs to no open connection).
    last = seg(False, s, c + 1, FIN | ACK)
    seg(True, c + 1, s + 1, ACK)
    connections.append({
        "at": (T0 + timedelta(seconds=t_s, microseconds=4_000)).strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "frames": [first, last],
        "host": host,
        "server": f"{server}:{port}",
        "client_bytes": len(sent),
        "segments": len(pieces),
        "rule": rule,
        "data": data,
        "note": note,
    })


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

    digest = hashlib.md5(ANDROID_ID.encode()).hexdigest().encode()
    connection(12, "mi.gdt.qq.com", "203.0.113.40", 9443, 51005,
               [struct.pack("!IH", len(digest), 7) + digest], b"\x00\x00\x00\x00",
               "share-after-refusal", [["android_id", "md5", "payload"]],
               "after the refusal: the MD5 of the Android id")

    filler = b"HEARTBEAT 0000\n" * (70_000 // 15)
    late = b"imei=" + IMEI.encode() + b"\n"
    assert len(filler) > KEPT
    pieces = [filler[i:i + 1400] for i in range(0, len(filler), 1400)] + [late]
    connection(14, "sdk.open.getui.net", "203.0.113.20", 5224, 51006, pieces, b"OK\r\n",
               "tracker-contact-before-consent", [],
               f"the IMEI comes after {len(filler)} bytes, past the {KEPT} kept: not found "
               "(anomaly payload-not-searched); contact after the refusal")

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
title = "SDKs speaking their own TCP protocols on one test phone"

[app]
name = "Example Shop"
package = "com.example.shop"
first_party = ["example-shop.com"]

[[device]]
id = "phone"
addresses = ["{PHONE}"]
[device.identifiers]
imei = "{IMEI}"
android_id = "{ANDROID_ID}"
advertising_id = "{ADVERTISING_ID}"
oaid = "{OAID}"

[[consent]]
device = "phone"
at = "{refusal}"
decision = "refused"
""")


if __name__ == "__main__":
    main()
