#!/usr/bin/env python3
"""Helpers of benches/proxy_compare.sh (issue 4 proxy benchmarks). Stdlib only; all
personal data is synthetic and generated deterministically.

  proxy_helpers.py case OUT.toml
      Writes a realistic case: 10 devices, every built-in identifier type each plus a
      custom one and a location; phone00 is the benchmark client (address 127.0.0.1)
      and refused consent long ago, so every request carrying its advertising id is a
      finding. Prints that advertising id (for the request URLs).

  proxy_helpers.py idle --proxy HOST:PORT --target HOST:PORT --count N [--cafile PEM]
      Opens N CONNECT tunnels through the proxy, each with a completed TLS handshake
      to TARGET (the proxy's certificate; verified against --cafile if given, else
      not verified), and holds them open. Prints "open K" once all are set up (K =
      how many succeeded), then holds them until SIGTERM.
"""
import argparse
import random
import signal
import socket
import ssl
import sys

KINDS_SIMPLE = ["advertising_id", "idfa", "idfv", "android_id", "oaid", "imei", "meid",
                "imsi", "iccid", "serial", "mac", "bssid", "ssid", "phone", "email", "name",
                "resident_id", "bank_card"]


def luhn_complete(prefix):
    for c in "0123456789":
        digits = prefix + c
        total = 0
        for i, ch in enumerate(reversed(digits)):
            x = int(ch) * (2 if i % 2 else 1)
            total += x - 9 if x > 9 else x
        if total % 10 == 0:
            return digits
    raise AssertionError


def gb11643(first17):
    weights = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2]
    s = sum(int(c) * w for c, w in zip(first17, weights))
    return first17 + "10X98765432"[s % 11]


def uuid(r):
    return "%08x-%04x-4%03x-a%03x-%012x" % (r.getrandbits(32), r.getrandbits(16),
                                            r.getrandbits(12), r.getrandbits(12),
                                            r.getrandbits(48))


def mac(r):
    return ":".join("%02x" % b for b in [2] + [r.getrandbits(8) for _ in range(5)])


def device_ids(i):
    r = random.Random(4000 + i)
    return {
        "advertising_id": uuid(r),
        "idfa": uuid(r).upper(),
        "idfv": uuid(r).upper(),
        "android_id": "%016x" % r.getrandbits(64),
        "oaid": uuid(r),
        "imei": luhn_complete("35%012d" % r.randrange(10**12)),
        "meid": "%014X" % r.getrandbits(56),
        "imsi": "46000%010d" % r.randrange(10**10),
        "iccid": "898600%013d" % r.randrange(10**13),
        "serial": "R58M%08d" % r.randrange(10**8),
        "mac": mac(r),
        "bssid": mac(r),
        "ssid": "LabWiFi-%04d" % r.randrange(10**4),
        "phone": "+86138%08d" % r.randrange(10**8),
        "email": "tester%02d@example.org" % i,
        "name": "Tester Number%02d" % i,
        "resident_id": gb11643("110105199%01d0%01d1%01d%03d" % (
            r.randrange(10), r.randrange(1, 10), r.randrange(10), r.randrange(1000))),
        "bank_card": luhn_complete("622202%09d" % r.randrange(10**9)),
    }


def write_case(out):
    with open(out, "w") as f:
        f.write('# Benchmark case of benches/proxy_compare.sh (synthetic data only).\n'
                '[case]\nid = "bench-proxy"\n\n[app]\nname = "Example Shop"\n'
                'package = "com.example.shop"\n'
                'first_party = ["example-shop.com", "exshop-cdn.net"]\n\n')
        for i in range(10):
            ids = device_ids(i)
            # phone00 is the benchmark client; the others are realistic ballast.
            addr = "127.0.0.1" if i == 0 else "10.77.0.%d" % (11 + i)
            f.write('[[device]]\nid = "phone%02d"\naddresses = ["%s"]\n'
                    'proxy_user = "phone%02d"\n[device.identifiers]\n' % (i, addr, i))
            for k in KINDS_SIMPLE:
                f.write('%s = "%s"\n' % (k, ids[k]))
            f.write("location = { lat = %.6f, lon = %.6f }\n" % (31.1 + i * 0.01, 121.3 + i * 0.01))
            f.write('custom = { user_token = "tok-%016x" }\n\n' % random.Random(i).getrandbits(64))
        for i in range(10):
            f.write('[[consent]]\ndevice = "phone%02d"\nat = "2026-01-01T00:00:00Z"\n'
                    'decision = "refused"\n\n' % i)
        f.write("[rules]\ngrace_ms = 1000\nfrequency_per_minute = 30\n")
    print(device_ids(0)["advertising_id"])


def hostport(s):
    h, p = s.rsplit(":", 1)
    return h, int(p)


def idle(a):
    ph, pp = hostport(a.proxy)
    th, tp = hostport(a.target)
    if a.cafile:
        ctx = ssl.create_default_context(cafile=a.cafile)
    else:
        ctx = ssl.create_default_context()
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
    held, failed = [], 0
    for _ in range(a.count):
        try:
            s = socket.create_connection((ph, pp), timeout=10)
            s.sendall(("CONNECT %s:%d HTTP/1.1\r\nHost: %s:%d\r\n\r\n" % (th, tp, th, tp)).encode())
            head = b""
            while b"\r\n\r\n" not in head:
                chunk = s.recv(4096)
                if not chunk:
                    raise OSError("proxy closed during CONNECT")
                head += chunk
            if b" 200" not in head.split(b"\r\n", 1)[0]:
                raise OSError("CONNECT refused: %r" % head[:60])
            t = ctx.wrap_socket(s, server_hostname=th)
            held.append(t)
        except OSError as e:
            failed += 1
            if failed <= 3:
                print("idle: %s" % e, file=sys.stderr)
    print("open %d" % len(held), flush=True)
    # Hold them, reading nothing, until SIGTERM/SIGINT ends the process.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        signal.pause()


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("case")
    c.add_argument("out")
    i = sub.add_parser("idle")
    i.add_argument("--proxy", required=True)
    i.add_argument("--target", required=True)
    i.add_argument("--count", type=int, default=1000)
    i.add_argument("--cafile")
    a = ap.parse_args()
    if a.cmd == "case":
        write_case(a.out)
    else:
        idle(a)


if __name__ == "__main__":
    main()
