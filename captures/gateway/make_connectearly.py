#!/usr/bin/env python3
"""Writes captures/gateway/connectearly.pcap: a request written into a CONNECT
tunnel before the proxy's `200` came back.

The case is gateway/consentry.toml (pixel7 at 192.168.60.23, no decision before
09:31, so everything here, at 2026-11-28T09:29:00Z, is before consent). An SDK set up
with an explicit HTTP proxy (203.0.113.80:3128) opens a tunnel to
ads.tracker.example:80 and, without waiting for the proxy's answer, writes its
first request into it in the segment of the CONNECT:

  +0 s      CONNECT ads.tracker.example:80, then `POST /v1/events` whose JSON body
            carries the IMEI, in one segment;
  +0.04 s   the proxy's `200 Connection established`;
  +0.09 s   the tracker's `204 No Content` to the POST, through the tunnel;
  +0.5 s    a second `POST /v1/events` `{"event":"ping"}`, nothing personal;
  +0.55 s   its `204`.

What a correct analyser finds: the IMEI, in plain, sent before consent to
ads.tracker.example, dated and located where the POST was captured (the CONNECT's
frame), not where the proxy's `200` that opened the tunnel is; each POST paired with
its `204`.

Deterministic, standard library only; IP and TCP headers from captures/pcapkit.py
with valid checksums (through make_dhcp.py's helpers). Classic pcap, microsecond
timestamps, Ethernet.
"""

import os
from datetime import datetime, timezone

import make_dhcp
from make_dhcp import TcpConn
from pcapkit import ACK, FIN, PSH, SYN

HERE = os.path.dirname(os.path.abspath(__file__))
T0 = datetime(2026, 11, 28, 9, 29, 0, tzinfo=timezone.utc).timestamp()
PHONE = ("02:00:5e:10:00:23", "192.168.60.23", 51520)
PROXY = ("203.0.113.80", 3128)
IMEI = b"490154203237518"


def post(body):
    return (b"POST /v1/events HTTP/1.1\r\nHost: ads.tracker.example\r\n"
            b"Content-Type: application/json\r\nContent-Length: "
            + str(len(body)).encode() + b"\r\n\r\n" + body)


def main():
    connect = (b"CONNECT ads.tracker.example:80 HTTP/1.1\r\n"
               b"Host: ads.tracker.example:80\r\n\r\n")
    first = post(b'{"event":"launch","imei":"' + IMEI + b'"}')
    opened = b"HTTP/1.1 200 Connection established\r\n\r\n"
    no_content = b"HTTP/1.1 204 No Content\r\n\r\n"
    ping = post(b'{"event":"ping"}')

    c = TcpConn(T0, PHONE, PROXY, (7000, 12000), 1210)
    c.send(True, SYN, dt=0.010)
    c.send(False, SYN | ACK, dt=0.001)
    c.send(True, ACK, dt=0.001)
    c.send(True, PSH | ACK, connect + first, dt=0.040)
    c.send(False, PSH | ACK, opened, dt=0.050)
    c.send(False, PSH | ACK, no_content, dt=0.001)
    c.send(True, ACK, dt=0.409)
    c.send(True, PSH | ACK, ping, dt=0.050)
    c.send(False, PSH | ACK, no_content, dt=0.001)
    c.send(True, ACK, dt=0.009)
    c.send(True, FIN | ACK, dt=0.001)
    c.send(False, FIN | ACK, dt=0.001)
    c.send(True, ACK)
    make_dhcp.write_pcap(os.path.join(HERE, "connectearly.pcap"))


if __name__ == "__main__":
    main()
