#!/usr/bin/env python3
"""Generates a large, realistic HAR for measuring `consentry analyze` end to end.

Usage: python3 benches/gen_har.py OUT.har [SIZE_MB]   (default 200)
Writes OUT.har and OUT.har.toml (its case file: one device, all identifier types,
a refusal halfway). Deterministic (fixed seed). Bodies are JSON, form and query
payloads of 0.5–16 KiB with ids, timestamps and base64 blobs; about 5 % of requests
carry one of the device's identifiers in some encoding. All data synthetic.
"""
import base64
import hashlib
import json
import random
import sys
from datetime import datetime, timedelta, timezone

out = sys.argv[1]
target = int(sys.argv[2] if len(sys.argv) > 2 else 200) * 1024 * 1024
rng = random.Random(20261128)
T0 = datetime(2026, 11, 28, 10, 0, 0, tzinfo=timezone.utc)

IDS = {
    "advertising_id": "38400000-8cf0-11bd-b23e-10b96e40000d",
    "android_id": "9774d56d682e549c",
    "imei": "490154203237518",
    "oaid": "a1b2c3d4-0000-4e5f-8a9b-0c1d2e3f4a5b",
    "mac": "02:00:00:44:55:66",
    "phone": "+8613800138000",
    "email": "tester@example.org",
    "serial": "R58M12ABCDE",
}
HOSTS = ["api.example-shop.com", "img.exshop-cdn.net", "graph.facebook.com",
         "app-measurement.com", "ulogs.umeng.com", "t.appsflyer.com",
         "api2.amplitude.com", "sdk.e.qq.com", "api.mixpanel.com",
         "o1.ingest.sentry.io", "log.unknown-partner.io", "ads.mintegral.net"]


def encode(value):
    kind = rng.randrange(6)
    if kind == 0:
        return value
    if kind == 1:
        return hashlib.md5(value.encode()).hexdigest()
    if kind == 2:
        return hashlib.sha256(value.encode()).hexdigest()
    if kind == 3:
        return base64.b64encode(value.encode()).decode()
    if kind == 4:
        return value.upper()
    return hashlib.sha1(value.encode()).hexdigest().upper()


def noise(n):
    words = []
    size = 0
    while size < n:
        k = rng.randrange(5)
        if k == 0:
            w = "%016x" % rng.getrandbits(64)
        elif k == 1:
            w = str(1795860000000 + rng.randrange(10**8))
        elif k == 2:
            w = base64.b64encode(rng.randbytes(24)).decode()
        elif k == 3:
            w = "%08x-%04x-%04x-%04x-%012x" % (rng.getrandbits(32), rng.getrandbits(16),
                                               rng.getrandbits(16), rng.getrandbits(16),
                                               rng.getrandbits(48))
        else:
            w = rng.choice(["click", "view", "session_start", "zh_CN", "Android", "arm64-v8a",
                            "com.example.shop", "4.2.0", "wifi", "true", "false", "null"])
        words.append(w)
        size += len(w) + 8
    return words


def body(pii):
    words = noise(rng.choice([512, 1024, 2048, 4096, 8192, 16384]))
    doc = {"ts": 1795860000 + rng.randrange(10**5), "events": []}
    for i in range(0, len(words), 4):
        doc["events"].append({"k": words[i], "v": words[i + 1:i + 4]})
    if pii:
        name, value = pii
        doc["device"] = {name: encode(value)}
    return json.dumps(doc, separators=(",", ":"))


written = 0
n = 0
with open(out, "w") as f:
    f.write('{"log":{"version":"1.2","creator":{"name":"gen_har.py","version":"1"},"entries":[\n')
    while written < target:
        t = T0 + timedelta(milliseconds=n * 37)
        host = rng.choice(HOSTS)
        pii = rng.choice(list(IDS.items())) if rng.random() < 0.05 else None
        text = body(pii)
        entry = {
            "startedDateTime": t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
            "time": 20,
            "request": {
                "method": "POST",
                "url": "https://%s/v1/collect?seq=%d&sdk=4.2.0" % (host, n),
                "httpVersion": "HTTP/1.1",
                "headers": [{"name": "Host", "value": host},
                            {"name": "User-Agent", "value": "ExampleShop/4.2.0 (Android 14)"},
                            {"name": "Content-Type", "value": "application/json"}],
                "queryString": [], "cookies": [], "headersSize": -1, "bodySize": len(text),
                "postData": {"mimeType": "application/json", "text": text},
            },
            "response": {"status": 200, "statusText": "OK", "httpVersion": "HTTP/1.1",
                         "headers": [{"name": "Content-Type", "value": "application/json"}],
                         "cookies": [], "content": {"size": 11, "mimeType": "application/json",
                                                    "text": '{"ok":true}'},
                         "redirectURL": "", "headersSize": -1, "bodySize": 11},
            "cache": {}, "timings": {"send": 1, "wait": 15, "receive": 4},
        }
        line = ("," if n else "") + json.dumps(entry, separators=(",", ":")) + "\n"
        f.write(line)
        written += len(line)
        n += 1
    f.write("]}}\n")

half = T0 + timedelta(milliseconds=n * 37 // 2)
with open(out + ".toml", "w") as f:
    f.write('[case]\nid = "bench"\n\n[app]\nname = "Example Shop"\nfirst_party = ["example-shop.com", "exshop-cdn.net"]\n\n')
    f.write('[[device]]\nid = "phone"\n[device.identifiers]\n')
    for k, v in IDS.items():
        f.write('%s = "%s"\n' % (k, v))
    f.write('\n[[consent]]\ndevice = "phone"\nat = "%s"\ndecision = "refused"\n'
            % half.isoformat().replace("+00:00", "Z"))
print("wrote %s: %d entries, %.1f MB" % (out, n, written / 1048576))
