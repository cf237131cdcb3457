#!/usr/bin/env python3
"""Compares what `consentry exchanges` reads from third-party captures with what
tshark read from them, as recorded in `*.tshark.json` oracle files beside them.

Usage: benches/oracle_check.py [--consentry BIN] [--verbose] ROOT...

ROOT is a directory searched for `expected/<capture>.tshark.json` files (the layout
of the shared test data: the capture one level up, the key log named in the oracle
beside it). Each oracle holds tshark 4.0's HTTP/1 and HTTP/2 header records and, per
TCP stream, the TLS server name and version. For each capture this runs
`consentry exchanges --format jsonl` (with `--keylog` when the oracle names one) and
compares, as multisets:

  http1 requests   (method, host, path)   tshark's http.request.method / http.host /
                                          http.request.uri; an absolute-form URI is
                                          compared as its path
  http1 responses  status code            of the exchanges that carry a response
  http2 requests   (method, authority, path)
  tls              (client, server, sni)  of the streams that sent a ClientHello with
                                          SNI (as a set: a decrypted connection is
                                          several exchanges, the output has no
                                          connection id)
  tls versions     (client, server, version)  where tshark saw a ServerHello (a set);
                                          consentry also names the version a
                                          ClientHello offered when no ServerHello
                                          was seen, which shows as `+`

Hosts are compared without their port; a request without a Host header, or whose
Host is an address, counts under "(address)" (consentry then names the server's
address, which the oracle does not record per request). One capture may have several
oracle files (read without and with a key log): each is one comparison.

A difference is printed as `-` (tshark only) or `+` (consentry only). Each is a lead
to read, not a verdict: tshark and consentry differ on purpose in places (consentry
guesses HTTP/2 by its preface on any port, tshark needs "decode as"; tshark shows
responses whose request it never saw, consentry records them as an anomaly). The
README's "Checked against Wireshark" lists the differences of the last run. Exit
status: 0 when every comparison agrees, 1 otherwise, 2 on a usage error.
"""

import argparse
import collections
import ipaddress
import json
import os
import subprocess
import sys
from urllib.parse import urlsplit

TLS_VERSIONS = {
    "0x0300": "SSL 3.0",
    "0x0301": "TLS 1.0",
    "0x0302": "TLS 1.1",
    "0x0303": "TLS 1.2",
    "0x0304": "TLS 1.3",
}


# What is compared, in the order printed.
CHECKS = ("http1 requests", "http1 responses", "http2 requests", "tls", "tls versions")

# The host of a request without a Host header, or whose Host is an address.
ADDRESS = "(address)"


def oracle_files(roots):
    for root in roots:
        for dirpath, _dirs, files in os.walk(root):
            if os.path.basename(dirpath) != "expected":
                continue
            for name in sorted(files):
                if name.endswith(".tshark.json"):
                    yield os.path.join(dirpath, name)


def host_of(endpoint):
    """`192.168.1.4:80` or `[2001:db8::1]:443` or `2001:db8::1:443` -> the address."""
    if endpoint.startswith("["):
        return endpoint[1 : endpoint.index("]")]
    return endpoint.rsplit(":", 1)[0]


def as_list(value):
    if value is None:
        return []
    return value if isinstance(value, list) else [value]


def hostname(host):
    """A Host header's name without its port, lower case: consentry keeps the name."""
    host = host.strip().lower()
    if host.startswith("["):
        return host[1 : host.index("]")] if "]" in host else host
    if host.count(":") == 1:
        return host.split(":")[0]
    return host


def named(host):
    """A host name as is; an address or nothing as ADDRESS (which address consentry
    falls back to, the oracle does not record per request)."""
    try:
        ipaddress.ip_address(host)
        return ADDRESS
    except ValueError:
        return host or ADDRESS


def tls_version(code):
    if code in TLS_VERSIONS:
        return TLS_VERSIONS[code]
    # Drafts of TLS 1.3: 0x7fNN (IETF drafts) and 0xfbNN (Facebook's Fizz).
    if code.startswith("0x7f") or code.startswith("0xfb"):
        return "TLS 1.3 draft"
    return code


def path_of(uri):
    if "://" in uri:
        parts = urlsplit(uri)
        return (parts.path or "/") + ("?" + parts.query if parts.query else "")
    return uri


def expected(oracle):
    http1 = collections.Counter()
    statuses = collections.Counter()
    for rec in oracle.get("http1") or []:
        # A frame that ends several messages lists each field once per message.
        methods = as_list(rec.get("http.request.method"))
        hosts = as_list(rec.get("http.host"))
        uris = as_list(rec.get("http.request.uri"))
        for i, method in enumerate(methods):
            host = hosts[i] if i < len(hosts) else ""
            uri = uris[i] if i < len(uris) else ""
            # Without a Host header consentry names the server by its address.
            host = named(hostname(host))
            http1[(method, host, path_of(uri))] += 1
        for code in as_list(rec.get("http.response.code")):
            # Interim responses (100 Continue, 102, 103) are not exchanges of their
            # own; 101 Switching Protocols is the final one.
            if int(code) == 101 or not 100 <= int(code) < 200:
                statuses[int(code)] += 1
    http2 = collections.Counter()
    for rec in oracle.get("http2") or []:
        headers = dict((k, v) for k, v in rec.get("headers") or [] if k.startswith(":"))
        if ":method" in headers:
            authority = named(hostname(headers.get(":authority", "")))
            http2[(headers[":method"], authority, headers.get(":path", ""))] += 1
    tls = collections.Counter()
    versions = collections.Counter()
    for s in oracle.get("streams") or []:
        if "client" not in s:
            continue
        pair = (host_of(s["client"]), host_of(s["server"]))
        if s.get("sni"):
            tls[pair + (s["sni"].lower(),)] = 1
        v = s.get("server_hello_version")
        if v:
            versions[pair + (tls_version(v),)] = 1
    return dict(zip(CHECKS, (http1, statuses, http2, tls, versions)))


def observed(exchanges):
    http1 = collections.Counter()
    statuses = collections.Counter()
    http2 = collections.Counter()
    tls = collections.Counter()
    versions = collections.Counter()
    for x in exchanges:
        t = x.get("tls")
        pair = (x.get("client", ""), x.get("server", ""))
        # The oracle reads TLS per TCP stream: QUIC and gQUIC flows (UDP, scheme
        # `quic`) are not in it.
        if x.get("scheme") == "quic":
            t = None
        # A decrypted connection carries many exchanges, and the output has no
        # connection id: the TLS facts are compared as sets.
        if t and t.get("sni"):
            tls[pair + (t["sni"].lower(),)] = 1
        if t and t.get("version"):
            versions[pair + (t["version"],)] = 1
        # WebSocket messages (method WS) are no HTTP records of tshark's.
        if x.get("metadata_only") or x.get("method") in ("", None, "WS"):
            continue
        version = x.get("http_version", "")
        key = (x["method"], named(hostname(x.get("host") or "")), x.get("path", ""))
        if version.startswith("HTTP/2"):
            http2[key] += 1
        else:
            http1[key] += 1
            status = (x.get("response") or {}).get("status")
            if status is not None:
                statuses[int(status)] += 1
    return dict(zip(CHECKS, (http1, statuses, http2, tls, versions)))


def run_consentry(binary, capture, keylog):
    cmd = [binary, "exchanges", "--format", "jsonl"]
    if keylog:
        cmd += ["--keylog", keylog]
    cmd.append(capture)
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=600)
    except subprocess.TimeoutExpired:
        return None, [], "no answer within 600 s (a hang?)"
    rows = []
    for n, line in enumerate(proc.stdout.decode("utf-8", "replace").splitlines(), 1):
        line = line.strip()
        if not line:
            continue
        try:
            rows.append(json.loads(line))
        except json.JSONDecodeError as e:
            return proc.returncode, rows, f"output line {n} is not JSON: {e}"
    return proc.returncode, rows, proc.stderr.decode("utf-8", "replace")


def diff(name, want, got):
    lines = []
    for k in sorted(set(want) | set(got), key=repr):
        w, g = want.get(k, 0), got.get(k, 0)
        if w > g:
            lines.append(f"    - {name}: {k!r}" + (f" x{w - g}" if w - g > 1 else ""))
        elif g > w:
            lines.append(f"    + {name}: {k!r}" + (f" x{g - w}" if g - w > 1 else ""))
    return lines


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--consentry", default="target/release/consentry")
    ap.add_argument("--verbose", action="store_true", help="print agreeing captures too")
    ap.add_argument(
        "--skip", action="append", default=[], help="a check to leave out (e.g. 'tls versions')"
    )
    ap.add_argument("roots", nargs="+")
    args = ap.parse_args()
    if not os.access(args.consentry, os.X_OK):
        print(f"oracle_check.py: {args.consentry} is not an executable", file=sys.stderr)
        return 2
    total = same = 0
    for path in oracle_files(args.roots):
        with open(path, encoding="utf-8") as f:
            oracle = json.load(f)
        capture_dir = os.path.dirname(os.path.dirname(path))
        capture = os.path.join(capture_dir, oracle["capture"])
        if not os.path.exists(capture):
            print(f"{path}: capture {capture} missing", file=sys.stderr)
            continue
        keylog = os.path.join(capture_dir, oracle["keylog"]) if oracle.get("keylog") else None
        total += 1
        rc, rows, err = run_consentry(args.consentry, capture, keylog)
        want, got = expected(oracle), observed(rows)
        lines = []
        if rc != 0:
            lines.append(f"    exit status {rc}: {err.strip()[:300]}")
        elif err.startswith("output line"):
            lines.append(f"    {err}")
        for name in want:
            if name in args.skip:
                continue
            lines += diff(name, want[name], got[name])
        rel = os.path.relpath(capture) + (f" (key log {oracle['keylog']})" if keylog else "")
        if lines:
            print(f"{rel}: differs")
            print("\n".join(lines))
        else:
            same += 1
            if args.verbose:
                print(f"{rel}: same")
    print(f"{same} of {total} comparisons agree with tshark's reading")
    return 0 if same == total else 1


if __name__ == "__main__":
    sys.exit(main())
