#!/usr/bin/env python3
"""Writes captures/gateway/httpdns.pcap: SDKs that resolve names over HTTP APIs.

The case is gateway/consentry.toml (pixel7 at 192.168.60.23, no decision before
09:31, so everything here, at 2026-11-28T09:20:00Z, is before consent). Mobile SDKs
often skip the network's resolver and ask an HTTP service for addresses instead
(HTTPDNS), then connect to the address they got; a capture shows such a connection
by address only.

  +0 s  GET http://203.0.113.53/d?dn=<MD5 of the IMEI>.b.metrics-sdk.example,
        push.metrics-sdk.example&ttl=1 (Tencent DNSPod's HTTPDNS form): answered in
        DNSPod's batch text, one line per name, `name.:address,ttl`.
  +1 s  a TCP connection to 203.0.113.92:5224 (the push name's address) in the push
        SDK's own protocol: a login line with the advertising id.
  +2 s  GET http://203.0.113.54/resolve?name=config.metrics-sdk.example&type=A (a
        resolver's JSON API), answered gzipped: a CNAME to cfg.edge.example and its
        address 203.0.113.93.
  +3 s  a TCP connection to 203.0.113.93:7000, a ping with nothing personal.
  +4 s  GET http://203.0.113.55/api/user?name=alice&host=shop.example answered with a
        JSON document that is no DNS answer: an ordinary request, nothing named by it.
  +5 s  a TCP connection to 203.0.113.94:7000 (an address no answer gave), a ping.
  +6 s  GET http://203.0.113.57/v3/resolve?account_id=100000&dn=sync.ads-sdk.example
        &t=1795857600&sign=… (Baidu Cloud's HTTPDNS form): answered by JSON keyed by
        the name, `{"msg":"ok","data":{name:{"ip":[…],"ttl":…}}}`.
  +7 s  a TCP connection to 203.0.113.95:7000 (that answer's address): the Android
        id in the SDK's own protocol.
  +8 s  GET http://203.0.113.58/resolve?name=cdn.ads-sdk.example&type=1&short=1 (a
        public resolver's JSON API, short form): answered `["203.0.113.96"]`.
  +9 s  a TCP connection to 203.0.113.96:7000, a ping.
  +10 s POST http://203.0.113.59/d with the form `dn=log.ads-sdk.example&id=100000`
        (DNSPod's HTTPDNS takes its parameters posted too): answered in DNSPod's
        text, `203.0.113.97,60`.
  +11 s a TCP connection to 203.0.113.97:7000, a ping.

What a correct analyser finds: the HTTPDNS request (the IMEI's MD5 in its query, to
203.0.113.53), the name carrying it as an exchange of its own (host
<MD5>.b.metrics-sdk.example, as a DNS query over UDP with that name would be), and
the push login named push.metrics-sdk.example (the advertising id), the Android id
at +7 s named sync.ads-sdk.example; the connection at +3 s named
config.metrics-sdk.example, the one at +9 s cdn.ads-sdk.example, the one at +11 s
log.ads-sdk.example, the one at +5 s by its address.

Deterministic, standard library only; IP and TCP headers from captures/pcapkit.py
with valid checksums (through make_dhcp.py's helpers). Classic pcap, microsecond
timestamps, Ethernet.
"""

import gzip
import hashlib
import os
from datetime import datetime, timezone

import make_dhcp
from make_dhcp import http

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = datetime(2026, 11, 28, 9, 20, 0, tzinfo=timezone.utc).timestamp()
PHONE_MAC, PHONE_IP = "02:00:5e:10:00:23", "192.168.60.23"
IMEI = b"490154203237518"
AD_ID = b"38400000-8cf0-11bd-b23e-10b96e40000d"
ANDROID_ID = b"9774d56d682e549c"


def get(host, target, extra=b""):
    return b"GET " + target + b" HTTP/1.1\r\nHost: " + host + b"\r\n" + extra + b"\r\n"


def ok(body, extra=b""):
    return (b"HTTP/1.1 200 OK\r\nContent-Length: " + str(len(body)).encode() + b"\r\n"
            + extra + b"\r\n" + body)


def main():
    md5_name = hashlib.md5(IMEI).hexdigest().encode() + b".b.metrics-sdk.example"
    http(T0 + 0.0, PHONE_MAC, PHONE_IP, 51001, "203.0.113.53",
         get(b"203.0.113.53", b"/d?dn=" + md5_name + b",push.metrics-sdk.example&ttl=1"),
         ok(md5_name + b".:203.0.113.91,60\npush.metrics-sdk.example.:203.0.113.92,60",
            b"Content-Type: text/html\r\n"),
         10)
    http(T0 + 1.0, PHONE_MAC, PHONE_IP, 51002, "203.0.113.92",
         b"LOGIN 1 adid=" + AD_ID + b"\n", b"OK\n", 20, port=5224)
    answer = (b'{"Status":0,"TC":false,"Question":[{"name":"config.metrics-sdk.example.",'
              b'"type":1}],"Answer":[{"name":"config.metrics-sdk.example.","type":5,'
              b'"TTL":300,"data":"cfg.edge.example."},{"name":"cfg.edge.example.",'
              b'"type":1,"TTL":60,"data":"203.0.113.93"}]}')
    http(T0 + 2.0, PHONE_MAC, PHONE_IP, 51003, "203.0.113.54",
         get(b"203.0.113.54", b"/resolve?name=config.metrics-sdk.example&type=A",
             b"Accept-Encoding: gzip\r\n"),
         ok(gzip.compress(answer, mtime=0),
            b"Content-Type: application/x-javascript\r\nContent-Encoding: gzip\r\n"),
         30)
    http(T0 + 3.0, PHONE_MAC, PHONE_IP, 51004, "203.0.113.93", b"PING\n", b"PONG\n", 40,
         port=7000)
    http(T0 + 4.0, PHONE_MAC, PHONE_IP, 51005, "203.0.113.55",
         get(b"api.example-shop.com", b"/api/user?name=alice&host=shop.example"),
         ok(b'{"name":"alice","host":"shop.example","ips":"none"}',
            b"Content-Type: application/json\r\n"),
         50)
    http(T0 + 5.0, PHONE_MAC, PHONE_IP, 51006, "203.0.113.94", b"PING\n", b"PONG\n", 60,
         port=7000)
    http(T0 + 6.0, PHONE_MAC, PHONE_IP, 51007, "203.0.113.57",
         get(b"203.0.113.57", b"/v3/resolve?account_id=100000&dn=sync.ads-sdk.example"
             b"&t=1795857600&sign=5d41402abc4b2a76b9719d911017c592"),
         ok(b'{"msg":"ok","data":{"sync.ads-sdk.example":{"ip":["203.0.113.95"],'
            b'"ttl":300}},"clientip":"198.51.100.7","timestamp":1795857300}',
            b"Content-Type: text/plain; charset=utf-8\r\n"),
         70)
    http(T0 + 7.0, PHONE_MAC, PHONE_IP, 51008, "203.0.113.95",
         b"SYNC android_id=" + ANDROID_ID + b"\n", b"OK\n", 80, port=7000)
    http(T0 + 8.0, PHONE_MAC, PHONE_IP, 51009, "203.0.113.58",
         get(b"203.0.113.58", b"/resolve?name=cdn.ads-sdk.example&type=1&short=1"),
         ok(b'["203.0.113.96"]', b"Content-Type: application/json\r\n"),
         90)
    http(T0 + 9.0, PHONE_MAC, PHONE_IP, 51010, "203.0.113.96", b"PING\n", b"PONG\n", 100,
         port=7000)
    form = b"dn=log.ads-sdk.example&id=100000"
    http(T0 + 10.0, PHONE_MAC, PHONE_IP, 51011, "203.0.113.59",
         b"POST /d HTTP/1.1\r\nHost: 203.0.113.59\r\n"
         b"Content-Type: application/x-www-form-urlencoded\r\n"
         b"Content-Length: " + str(len(form)).encode() + b"\r\n\r\n" + form,
         ok(b"203.0.113.97,60", b"Content-Type: text/html\r\n"),
         110)
    http(T0 + 11.0, PHONE_MAC, PHONE_IP, 51012, "203.0.113.97", b"PING\n", b"PONG\n", 120,
         port=7000)
    make_dhcp.write_pcap(os.path.join(HERE, "httpdns.pcap"))


if __name__ == "__main__":
    main()
